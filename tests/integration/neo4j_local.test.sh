#!/usr/bin/env bash
# neo4j_local.test.sh - the private-Neo4j wrapper (tools/neo4j-local/neo4j)
# really starts Neo4j, speaks Bolt, refuses a second instance on the same data
# directory (at the wrapper and at the launcher), survives kill + restart on
# the same port, and stops leaving no process behind.
#
# Skips (exit 77) when java or mvn is missing, unless ENGRAM_REQUIRE_NEO4J=1.
set -uo pipefail

SRC="${ENGRAM_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
W="${ENGRAM_NEO4J_LOCAL:-$SRC/tools/neo4j-local/neo4j}"

if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
    if [[ "${ENGRAM_REQUIRE_NEO4J:-0}" == 1 ]]; then
        echo "FAIL: java/mvn missing and ENGRAM_REQUIRE_NEO4J=1" >&2
        exit 1
    fi
    echo "SKIP: java or mvn not installed" >&2
    exit 77
fi

DIR="$(mktemp -d "${TMPDIR:-/tmp}/engram-neo4j-test.XXXXXX")"
PW="test-$RANDOM-$RANDOM"
FAILS=0
cleanup() {
    "$W" stop --data "$DIR" --timeout 30 >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
trap cleanup EXIT

# Alive and not a zombie (an exited JVM can linger unreaped for a moment
# after being re-parented).
alive() {
    kill -0 "$1" 2>/dev/null || return 1
    [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]
}

fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
ok() { echo "ok: $*"; }

# Bolt handshake: magic + four proposals (5.8..5.0 range, 4.4); the server
# must answer with a 4-byte version whose last byte is 5 or 4.
bolt_handshake() { # port -> prints agreed "major.minor"
    local port=$1 reply
    exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
    printf '\x60\x60\xb0\x17\x00\x08\x08\x05\x00\x00\x04\x04\x00\x00\x00\x00\x00\x00\x00\x00' >&3
    reply="$(timeout 10 head -c 4 <&3 | od -An -tu1 | tr -s ' ')"
    exec 3>&-
    # reply " 0 0 MINOR MAJOR"
    set -- $reply
    (($# == 4)) || return 1
    echo "$4.$3"
}

# The class archive a start maps (docs/neo4j-local.md#start-time), from the
# JVM's command line; empty when it has none.
archive_of() { tr '\0' '\n' <"/proc/$1/cmdline" 2>/dev/null | sed -n 's/^-XX:SharedArchiveFile=//p'; }

# --- start on a free port -------------------------------------------------------
# -Xshare:on: a class archive the JVM cannot map is fatal instead of silently
# skipped, so this start proves the archive the build made works.
uri="$(NEO4J_PASSWORD="$PW" ENGRAM_NEO4J_JAVA_OPTS="${ENGRAM_NEO4J_JAVA_OPTS:-} -Xshare:on" \
       "$W" start --data "$DIR" --port 0 --timeout 240)"
rc=$?
if ((rc != 0)) || [[ ! "$uri" =~ ^bolt://127\.0\.0\.1:[0-9]+$ ]]; then
    fail "start: rc=$rc uri='$uri'"
    tail -n 40 "$DIR/neo4j.log" >&2
    exit 1
fi
port="${uri##*:}"
((port != 0)) || fail "start reported port 0"
ok "started at $uri"
pid="$(cat "$DIR/neo4j.pid")"
[[ -n "$pid" ]] && alive "$pid" || fail "pid file does not name a live process"

# The archive `build` (make test's setup) or this first start trained: in
# place, checked, and nothing of the training left beside it.
if [[ "${ENGRAM_NEO4J_CDS:-1}" != 0 ]]; then
    arch="$(archive_of "$pid")"
    cds="${arch%/*}"
    if [[ -n "$arch" && -s "$arch" ]] && ! compgen -G "$cds/*.tmp.*" >/dev/null &&
       ! compgen -G "$cds/train.*/" >/dev/null; then
        ok "started on the class archive ${arch##*/} ($(du -m "$arch" | cut -f1) MB)"
    else
        fail "no class archive in use: '$arch'; ${cds:-its directory} has: $(ls -A "${cds:-/nonexistent}" 2>&1 | tr '\n' ' ')"
        tail -n 20 "$cds/train.log" >&2 2>/dev/null
    fi
fi

st="$("$W" status --data "$DIR")"; rc=$?
((rc == 0)) && [[ "$st" == "running $uri pid $pid" ]] || fail "status: rc=$rc '$st'"
ok "status: $st"

ver="$(bolt_handshake "$port")" || fail "no Bolt handshake on $port"
[[ "$ver" == 5.* ]] || fail "handshake agreed '$ver', want 5.x"
ok "Bolt handshake agreed $ver"

# engram doctor on a database nothing has touched yet (what `make run` meets
# on a fresh machine): the schema is pending and the indexes do not exist,
# which is information, not a problem - exit 0
if [[ -n "${ENGRAM_BIN:-}" ]]; then
    dout="$(NEO4J_URI="$uri" NEO4J_USERNAME=neo4j NEO4J_PASSWORD="$PW" "$ENGRAM_BIN" doctor 2>&1)"
    drc=$?
    if ((drc == 0)) && grep -q '^schema: .*pending' <<<"$dout" && ! grep -q PROBLEM <<<"$dout"; then
        ok "doctor on a fresh database: schema pending, no problem, exit 0"
    else
        fail "doctor on a fresh database: exit $drc: $dout"
    fi
fi

# Neo4j logs its non-default settings at start; our bounded log retention
# must be among them (unbounded logs filled a disk once)
if grep -q 'db.tx_log.rotation.retention_policy=1G size' "$DIR/logs/debug.log" 2>/dev/null; then
    ok "transaction log retention bounded (1G size)"
else
    fail "db.tx_log.rotation.retention_policy=1G size not in $DIR/logs/debug.log"
fi

# --- second start on the same directory is refused ------------------------------
out="$(NEO4J_PASSWORD="$PW" "$W" start --data "$DIR" --port 0 2>&1)"; rc=$?
((rc != 0)) || fail "second start succeeded: $out"
[[ "$out" == *"already running"* ]] || fail "second start message: $out"
ok "wrapper refused second start (rc=$rc)"

# Bypass the wrapper's pid check: the launcher's own lock must refuse.
mv "$DIR/neo4j.pid" "$DIR/neo4j.pid.keep"
out="$(NEO4J_PASSWORD="$PW" "$W" start --data "$DIR" --port 0 --timeout 120 2>&1)"; rc=$?
[[ -f "$DIR/neo4j.pid" ]] && fail "failed start left a pid file"
mv "$DIR/neo4j.pid.keep" "$DIR/neo4j.pid"
((rc != 0)) || fail "launcher allowed a second instance: $out"
[[ "$out" == *"already in use"* ]] || fail "launcher refusal message: $out"
alive "$pid" || fail "first instance died during the refused start"
st="$("$W" status --data "$DIR")" || fail "status after refused start: $st"
ok "launcher refused second instance (rc=$rc), first still $st"

# --- kill -9, then restart on the same port --------------------------------------
"$W" kill --data "$DIR" >/dev/null 2>&1 || fail "kill"
alive "$pid" && fail "pid $pid alive after kill"
st="$("$W" status --data "$DIR")"; rc=$?
((rc == 3)) && [[ "$st" == stopped ]] || fail "status after kill: rc=$rc '$st'"
ok "killed; status: $st"

# The restart finds its class archive damaged (a truncated copy in a
# directory of its own): the JVM dies mapping it, and the wrapper sets it
# aside and starts once more without it.
broken=""
if [[ "${ENGRAM_NEO4J_CDS:-1}" != 0 && -n "${arch:-}" && -s "${arch:-}" ]]; then
    broken="$DIR/cds-broken"
    mkdir -p "$broken" && head -c 1000000 "$arch" >"$broken/${arch##*/}"
fi
uri2="$(ENGRAM_NEO4J_CDS_DIR="${broken:-${ENGRAM_NEO4J_CDS_DIR:-}}" "$W" restart --data "$DIR" --timeout 240 2>"$DIR/restart.err")"; rc=$?
((rc == 0)) && [[ "$uri2" == "$uri" ]] || fail "restart: rc=$rc '$uri2' (want $uri): $(cat "$DIR/restart.err")"
pid2="$(cat "$DIR/neo4j.pid" 2>/dev/null)"
if [[ -n "$broken" ]]; then
    if [[ -e "$broken/${arch##*/}.failed" && ! -e "$broken/${arch##*/}" && -z "$(archive_of "$pid2")" ]] &&
       grep -q 'broke the start' "$DIR/restart.err"; then
        ok "a damaged class archive was set aside and the restart ran without it"
    else
        fail "damaged class archive: $(ls -A "$broken" | tr '\n' ' '); archive in use '$(archive_of "$pid2")'; $(cat "$DIR/restart.err")"
    fi
    compgen -G "$DIR/hs_err_pid*.log" >/dev/null || fail "the crashed JVM's hs_err file is not in the data directory"
fi

ver="$(bolt_handshake "$port")" || fail "no Bolt handshake after restart"
ok "restarted after crash at $uri2 (pid $pid2, Bolt $ver)"

# `run` becomes the JVM, so it checks the archive before: a damaged one is
# set aside there too.  (An unknown setting stops Neo4j at once after that:
# a second or two of JVM instead of a whole start.)
if [[ -n "$broken" ]]; then
    rm -f "$broken"/*.failed
    head -c 1000000 "$arch" >"$broken/${arch##*/}"
    out="$(ENGRAM_NEO4J_CDS_DIR="$broken" timeout 120 "$W" run --data "$DIR/run" --port 0 --conf engram.no.such.setting=1 2>&1)"
    if [[ "$out" == *"does not map: set aside"* && -e "$broken/${arch##*/}.failed" && ! -e "$broken/${arch##*/}" ]]; then
        ok "run set a damaged class archive aside before starting"
    else
        fail "run on a damaged class archive: $(ls -A "$broken" | tr '\n' ' '); $(head -c 2000 <<<"$out")"
    fi
fi

# --- stop ------------------------------------------------------------------------
"$W" stop --data "$DIR" --timeout 60 || fail "stop rc=$?"
[[ -n "$pid2" ]] && alive "$pid2" && fail "pid $pid2 still alive after stop"
[[ -e "$DIR/neo4j.pid" ]] && fail "pid file left after stop"
[[ -e "$DIR/neo4j.uri" ]] && fail "uri file left after stop"
st="$("$W" status --data "$DIR")"; rc=$?
((rc == 3)) || fail "status after stop: rc=$rc '$st'"
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && fail "port $port still open after stop"
ok "stopped; pid gone; status: $st"

# --- --watch-pid: the owner dies (as a SIGKILLed test would), Neo4j follows -------
sleep 600 &
owner=$!
uri3="$("$W" start --data "$DIR" --port 0 --timeout 240 --watch-pid "$owner")" || fail "start with --watch-pid"
pid3="$(cat "$DIR/neo4j.pid" 2>/dev/null)"
[[ -n "$pid3" ]] && alive "$pid3" || fail "no JVM after start with --watch-pid"
kill -KILL "$owner"
wait "$owner" 2>/dev/null || true
gone=0
for _ in $(seq 60); do
    alive "$pid3" || { gone=1; break; }
    sleep 0.5
done
((gone)) || fail "JVM $pid3 still alive 30 s after the watched process died"
[[ -e "$DIR/neo4j.uri" ]] && fail "uri file left: the watchdog did not shut down cleanly"
grep -q "watched process $owner is gone" "$DIR/neo4j.log" || fail "no watchdog line in neo4j.log"
((gone)) && ok "watched owner $owner killed; Neo4j at $uri3 stopped by itself"
# the wrapper rejects a bad pid before starting anything
"$W" start --data "$DIR" --watch-pid nope >/dev/null 2>&1 && fail "--watch-pid nope accepted"

# --- which release, on which Java ------------------------------------------------
# (The compatibility pass of make test runs this whole file with
# ENGRAM_NEO4J_VERSION=2025.10.1 exported; these checks name their own.)
java_major() { "$1" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1; }
out="$(ENGRAM_NEO4J_VERSION=5.26 "$W" java 2>&1)" && fail "version '5.26' accepted"
[[ "$out" == *"bad ENGRAM_NEO4J_VERSION"* ]] || fail "bad version message: $out"
# 5.x runs on 17 or 21
j="$(ENGRAM_NEO4J_VERSION=5.26.5 "$W" java)" || fail "no Java for 5.26.5"
[[ "$(java_major "$j")" =~ ^(17|21)$ ]] || fail "5.26.5 would run on $j (Java $(java_major "$j"))"
# a calendar release refuses Java 17 and says what it needs
out="$(env -u JAVA_HOME -u ENGRAM_NEO4J_JAVA ENGRAM_NEO4J_VERSION=2025.10.1 ENGRAM_NEO4J_JVM_DIR="$DIR/no-jdks" "$W" java 2>&1)"
rc=$?
if [[ "$(java_major "$(command -v java)")" == 17 ]]; then
    ((rc != 0)) || fail "2025.10.1 accepted Java 17: $out"
    [[ "$out" == *"needs Java 21 or 25"* ]] || fail "no-Java message: $out"
    ok "2025.10.1 without Java 21+: $out"
fi
# and, with a JDK it supports installed, runs on that one
if j="$(env -u ENGRAM_NEO4J_JAVA ENGRAM_NEO4J_VERSION=2025.10.1 "$W" java 2>/dev/null)"; then
    [[ "$(java_major "$j")" =~ ^(21|25)$ ]] || fail "2025.10.1 would run on $j (Java $(java_major "$j"))"
    ok "2025.10.1 would run on $j"
fi

if ((FAILS)); then
    echo "neo4j_local: $FAILS failure(s)" >&2
    exit 1
fi
echo "neo4j_local: all checks passed"
