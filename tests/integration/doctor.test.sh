#!/usr/bin/env bash
# doctor.test.sh - `engram doctor` against a real Neo4j: human and --json
# output, and a clean one-line failure (without the password) for a wrong
# password and for an unreachable server.
set -uo pipefail

if [[ -z "${ENGRAM_TEST_NEO4J_URI:-}" ]]; then
    if [[ "${ENGRAM_REQUIRE_NEO4J:-}" == 1 ]]; then
        echo "FAIL: ENGRAM_REQUIRE_NEO4J=1 but ENGRAM_TEST_NEO4J_URI is not set" >&2
        exit 1
    fi
    echo "SKIP: no Neo4j (set ENGRAM_TEST_NEO4J_URI)" >&2
    exit 77
fi
BIN="${ENGRAM_BIN:?ENGRAM_BIN not set}"
fail() { echo "FAIL: $*" >&2; exit 1; }

export NEO4J_URI="$ENGRAM_TEST_NEO4J_URI"
export NEO4J_USERNAME="${ENGRAM_TEST_NEO4J_USER:-neo4j}"
export NEO4J_PASSWORD="${ENGRAM_TEST_NEO4J_PASSWORD:-}"
# its own namespace: the suite shares one Neo4j, and a test that ran before
# may have claimed the default namespace for another embedding model
export ENGRAM_NAMESPACE="doctor-$$-$RANDOM"

out="$("$BIN" doctor)" || fail "doctor exited $?"
grep -q '^server agent: *Neo4j/' <<<"$out" || fail "no server agent in: $out"
grep -Eq '^bolt version: *[45]\.[0-9]+' <<<"$out" || fail "no bolt version in: $out"
grep -q '^component: *Neo4j Kernel' <<<"$out" || fail "no component in: $out"
for check in neo4j schema indexes "vector model" embeddings queue; do
    grep -q "^$check: " <<<"$out" || fail "no $check check in: $out"
done
grep -q 'PROBLEM' <<<"$out" && fail "a healthy setup reported a problem: $out"
# the suite runs on the release lines the policy calls tested (5.26, and
# 2025.10 in make test's compatibility pass)
grep -Eq '^neo4j: +Neo4j (5\.26|2025\.10)\.[0-9]+: ' <<<"$out" || fail "release not reported as tested: $out"

json="$("$BIN" doctor --json)" || fail "doctor --json exited $?"
python3 - "$json" <<'PY' || fail "bad JSON: $json"
import json, sys
o = json.loads(sys.argv[1])
assert o["server_agent"].startswith("Neo4j/"), o
assert o["bolt_version"].split(".")[0] in ("4", "5"), o
assert o["connection_id"], o
assert o["components"][0]["name"] == "Neo4j Kernel", o
assert [c["check"] for c in o["checks"]] == ["neo4j", "schema", "indexes", "vector model", "embeddings", "queue"], o
assert o["checks"][0]["level"] == "ok", o
assert o["ok"] is True, o
assert all(c["level"] in ("ok", "info") for c in o["checks"]), o
PY

# an embedding size that disagrees with the vector index: reported, exit 3
out="$(ENGRAM_EMBED_DIMENSIONS=7 "$BIN" doctor)"
rc=$?
[[ $rc -eq 3 ]] || fail "dimension conflict: exit $rc, want 3: $out"
grep -q '^embeddings: *PROBLEM: .*7 dimensions.*ENGRAM_EMBED_DIMENSIONS' <<<"$out" ||
    fail "dimension conflict not named: $out"

secret="wrong-$RANDOM-password"
err="$(NEO4J_PASSWORD="$secret" "$BIN" doctor 2>&1 >/dev/null)"
rc=$?
[[ $rc -ne 0 ]] || fail "wrong password: exit 0"
[[ "$(wc -l <<<"$err")" -eq 1 ]] || fail "wrong password: not one line: $err"
grep -q "authentication failed" <<<"$err" || fail "wrong password: unclear message: $err"
grep -q -- "$secret" <<<"$err" && fail "the password leaked: $err"

# NEO4J_IMPERSONATED_USER reaches the server: Community refuses
# impersonation (Enterprise, with no such user, refuses it too), and doctor
# says so in one line instead of connecting as the authenticating user.
err="$(NEO4J_IMPERSONATED_USER="nobody-$RANDOM" "$BIN" doctor 2>&1 >/dev/null)"
rc=$?
[[ $rc -ne 0 ]] || fail "impersonation: exit 0"
grep -qi "imperson" <<<"$err" || fail "impersonation: the server's refusal not shown: $err"

err="$(NEO4J_URI=bolt://127.0.0.1:1 "$BIN" doctor 2>&1 >/dev/null)"
rc=$?
[[ $rc -ne 0 ]] || fail "unreachable: exit 0"
grep -q "cannot connect" <<<"$err" || fail "unreachable: unclear message: $err"
# ENGRAM_NEO4J_READ_SPIN_US: 0 (off) and a bound connect; a bad value is
# refused by name before any connection
out="$(ENGRAM_NEO4J_READ_SPIN_US=0 "$BIN" doctor 2>&1)" || fail "doctor with the read spin off exited $?: $out"
grep -q '^server agent: *Neo4j/' <<<"$out" || fail "read spin off: not connected: $out"
out="$(ENGRAM_NEO4J_READ_SPIN_US=2000 "$BIN" doctor 2>&1)" || fail "doctor with a 2 ms read spin exited $?: $out"
for bad in -1 abc 10001; do
    err="$(ENGRAM_NEO4J_READ_SPIN_US=$bad "$BIN" doctor 2>&1 >/dev/null)"
    rc=$?
    [[ $rc -ne 0 ]] || fail "ENGRAM_NEO4J_READ_SPIN_US=$bad: exit 0"
    grep -q 'ENGRAM_NEO4J_READ_SPIN_US' <<<"$err" || fail "ENGRAM_NEO4J_READ_SPIN_US=$bad: unclear message: $err"
done
# NEO4J_PASSWORD_FILE: the password from a file (first line), which wins over
# NEO4J_PASSWORD (issue #14 finding 15)
pwdir="$(mktemp -d)"
trap 'rm -rf "$pwdir"' EXIT
printf '%s\n' "$NEO4J_PASSWORD" >"$pwdir/pw"
out="$(env -u NEO4J_PASSWORD NEO4J_PASSWORD_FILE="$pwdir/pw" "$BIN" doctor 2>&1)" ||
    fail "doctor with NEO4J_PASSWORD_FILE exited $?: $out"
grep -q '^server agent: *Neo4j/' <<<"$out" || fail "NEO4J_PASSWORD_FILE: not connected: $out"
out="$(NEO4J_PASSWORD="wrong-$RANDOM" NEO4J_PASSWORD_FILE="$pwdir/pw" "$BIN" queue status 2>&1)" ||
    fail "NEO4J_PASSWORD_FILE does not win over NEO4J_PASSWORD: $out"
err="$(NEO4J_PASSWORD_FILE="$pwdir/missing" "$BIN" doctor 2>&1 >/dev/null)"
rc=$?
[[ $rc -ne 0 ]] || fail "missing password file: exit 0"
grep -q 'NEO4J_PASSWORD_FILE' <<<"$err" || fail "missing password file: unclear message: $err"

# credentials written into NEO4J_URI's user info are never echoed (issue #14
# finding 18): not by the report, not by --json, not by a connection error
uri_secret="uri-$RANDOM-secret"
with_userinfo="${NEO4J_URI/:\/\//://neo4j:$uri_secret@}"
[[ "$with_userinfo" == *"$uri_secret@"* ]] || fail "test setup: no user info in $with_userinfo"
out="$(NEO4J_URI="$with_userinfo" "$BIN" doctor 2>&1)" || fail "doctor with user info exited $?: $out"
grep -q -- "$uri_secret" <<<"$out" && fail "URI credentials leaked by doctor: $out"
grep -q '^uri: *bolt://\*\*\*@' <<<"$out" || fail "redacted URI not shown: $out"
out="$(NEO4J_URI="$with_userinfo" "$BIN" doctor --json 2>&1)"
grep -q -- "$uri_secret" <<<"$out" && fail "URI credentials leaked by doctor --json: $out"
err="$(NEO4J_URI="bolt://neo4j:$uri_secret@127.0.0.1:1" "$BIN" doctor 2>&1 >/dev/null)"
grep -q -- "$uri_secret" <<<"$err" && fail "URI credentials leaked by a connection error: $err"
err="$(NEO4J_URI="bolt://neo4j:$uri_secret@127.0.0.1:1" "$BIN" queue status 2>&1 >/dev/null)"
grep -q -- "$uri_secret" <<<"$err" && fail "URI credentials leaked by queue status: $err"
grep -q '\*\*\*@127.0.0.1:1' <<<"$err" || fail "connection error does not name the redacted URI: $err"

# neo4j:// prints the routing table (Community routes everything to itself)
routed="neo4j://${NEO4J_URI#*://}"
out="$(NEO4J_URI="$routed" "$BIN" doctor)" || fail "doctor on $routed exited $?: $out"
grep -q '^routing table:' <<<"$out" || fail "no routing table for $routed: $out"
grep -q '^  writers: .*:[0-9]' <<<"$out" || fail "routing table without a writer: $out"
json="$(NEO4J_URI="$routed" "$BIN" doctor --json)" || fail "doctor --json on $routed exited $?"
python3 -c 'import json,sys; t=json.load(sys.stdin)["routing"]; assert t["writers"] and t["routers"] and t["ttl_s"] > 0' <<<"$json" ||
    fail "doctor --json routing: $json"
out="$("$BIN" doctor --json)"
python3 -c 'import json,sys; assert json.load(sys.stdin).get("routing") is None' <<<"$out" || fail "bolt:// doctor shows a routing table"
echo "ok"
