# bench/lib.sh - helpers shared by bench/run and the bench/<name>.sh scripts.
# Source it (bash); it sets no options of its own.
#
#   bench_log MSG...                 progress line on stderr (stdout is for the JSON result)
#   bench_die MSG...                 log and exit 1
#   bench_build [TARGET...]          cmake Release build in $BENCH_BUILD_DIR (default build-bench/)
#   bench_neo4j_start                private Neo4j on a temp dir + free port; exports BENCH_NEO4J_*
#   bench_neo4j_stop                 stops it and removes the temp dir (idempotent; used by traps)
#   bench_js_install                 npm install in bench/js when package.json changed
#   bench_median N...                median of numbers (mean of the middle two for even counts)
#   bench_ratio A B                  A/B with 3 decimals ("null" when B is 0 or empty)
#   bench_json_get JSON KEY          a top-level number/string from a one-line JSON object
#   bench_json KEY=VALUE...          one-line JSON object; numbers/null/true/false stay raw,
#                                    anything else becomes a string
#
# Environment: BENCH_BUILD_DIR, BENCH_KEEP_NEO4J=1 (leave the private Neo4j running
# for inspection), BENCH_NEO4J_URI (if already set, bench_neo4j_start uses that
# server instead of starting one; then _USER/_PASSWORD should be set too).

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH_ROOT="$(cd "$BENCH_DIR/.." && pwd)"
BENCH_BUILD_DIR="${BENCH_BUILD_DIR:-$BENCH_ROOT/build-bench}"
BENCH_NEO4J_WRAPPER="${ENGRAM_NEO4J_LOCAL:-$BENCH_ROOT/tools/neo4j-local/neo4j}"
BENCH_NEO4J_OWNED=0
# Kept when inherited: bench/run starts Neo4j and exports its data directory;
# the benchmark script it runs sources this file again (and owns nothing).
BENCH_NEO4J_DIR="${BENCH_NEO4J_DIR:-}"

bench_log() { printf '[bench %s] %s\n' "$(date -u +%T)" "$*" >&2; }
bench_die() { bench_log "ERROR: $*"; exit 1; }

bench_build() {
    local gen=()
    command -v ninja >/dev/null && gen=(-G Ninja)
    if [[ ! -f "$BENCH_BUILD_DIR/CMakeCache.txt" ]]; then
        bench_log "configuring $BENCH_BUILD_DIR (Release)"
        cmake -S "$BENCH_ROOT" -B "$BENCH_BUILD_DIR" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release >&2 ||
            bench_die "cmake configure failed"
    fi
    local targets=()
    local t
    for t in "$@"; do targets+=(--target "$t"); done
    bench_log "building ${*:-all}"
    cmake --build "$BENCH_BUILD_DIR" -j2 "${targets[@]}" >&2 || bench_die "build failed"
}

bench_neo4j_start() {
    if [[ -n "${BENCH_NEO4J_URI:-}" && "$BENCH_NEO4J_OWNED" == 0 ]]; then
        export BENCH_NEO4J_USER="${BENCH_NEO4J_USER:-neo4j}"
        export BENCH_NEO4J_PASSWORD="${BENCH_NEO4J_PASSWORD:-}"
        bench_log "using external Neo4j $BENCH_NEO4J_URI"
        return 0
    fi
    BENCH_NEO4J_DIR="$(mktemp -d "${TMPDIR:-/tmp}/engram-bench-neo4j.XXXXXX")"
    export BENCH_NEO4J_DIR # benchmarks that measure the store's size on disk read it
    BENCH_NEO4J_OWNED=1
    # Tells the benchmark scripts (child processes) that the server is a
    # throwaway one of ours, so they may wipe it.
    export BENCH_NEO4J_PRIVATE=1
    local pw uri
    pw="bench-$(od -An -tx1 -N12 /dev/urandom | tr -d ' \n')"
    bench_log "starting private Neo4j in $BENCH_NEO4J_DIR"
    # --watch-pid: a benchmark killed hard does not leave its JVM running
    uri="$(NEO4J_PASSWORD="$pw" "$BENCH_NEO4J_WRAPPER" start --data "$BENCH_NEO4J_DIR" --port 0 --watch-pid $$)" ||
        bench_die "could not start Neo4j (log: $BENCH_NEO4J_DIR/neo4j.log)"
    export BENCH_NEO4J_URI="$uri" BENCH_NEO4J_USER=neo4j BENCH_NEO4J_PASSWORD="$pw"
    # the JVM's pid: benchmarks read its CPU time from /proc to report
    # server CPU per job, which machine noise and lock waits blur less
    BENCH_NEO4J_PID="$(tr -dc '0-9' <"$BENCH_NEO4J_DIR/neo4j.pid" 2>/dev/null || true)"
    export BENCH_NEO4J_PID
    bench_log "Neo4j ready at $uri"
}

bench_neo4j_stop() {
    [[ "$BENCH_NEO4J_OWNED" == 1 && -n "$BENCH_NEO4J_DIR" ]] || return 0
    if [[ "${BENCH_KEEP_NEO4J:-0}" == 1 ]]; then
        bench_log "leaving Neo4j running: $BENCH_NEO4J_URI, data $BENCH_NEO4J_DIR (stop: $BENCH_NEO4J_WRAPPER stop --data $BENCH_NEO4J_DIR)"
        return 0
    fi
    "$BENCH_NEO4J_WRAPPER" stop --data "$BENCH_NEO4J_DIR" >/dev/null 2>&1 || true
    rm -rf "$BENCH_NEO4J_DIR"
    BENCH_NEO4J_OWNED=0
    BENCH_NEO4J_DIR=""
    unset BENCH_NEO4J_URI BENCH_NEO4J_PASSWORD BENCH_NEO4J_PRIVATE BENCH_NEO4J_PID
}

bench_js_install() {
    local js="$BENCH_DIR/js"
    command -v node >/dev/null || bench_die "node not found (install nodejs >= 18)"
    command -v npm >/dev/null || bench_die "npm not found"
    if [[ ! -d "$js/node_modules" || "$js/package.json" -nt "$js/node_modules" ]]; then
        bench_log "npm install in bench/js"
        (cd "$js" && npm install --no-package-lock --no-audit --no-fund --loglevel=error >&2) || bench_die "npm install failed"
        touch "$js/node_modules"
    fi
}

bench_median() {
    (($#)) || { echo null; return; }
    printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
        if (NR % 2) m = v[(NR + 1) / 2]; else m = (v[NR / 2] + v[NR / 2 + 1]) / 2;
        printf "%.1f\n", m }'
}

bench_ratio() {
    awk -v a="${1:-}" -v b="${2:-}" 'BEGIN {
        if (a == "" || b == "" || a == "null" || b == "null" || b + 0 == 0) print "null";
        else printf "%.3f\n", a / b }'
}

bench_json_get() { # json key -> value (numbers/strings/null of top-level keys only)
    printf '%s\n' "$1" | awk -v k="$2" '{
        if (match($0, "\"" k "\":[ ]*(\"[^\"]*\"|[-+0-9.eE]+|null|true|false)")) {
            s = substr($0, RSTART, RLENGTH); sub("^\"" k "\":[ ]*", "", s); gsub(/^"|"$/, "", s); print s
        } }'
}

bench_json() {
    local out="{" sep="" kv k v
    for kv in "$@"; do
        k="${kv%%=*}"
        v="${kv#*=}"
        if [[ "$v" =~ ^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$ || "$v" == null || "$v" == true || "$v" == false ]]; then
            out+="$sep\"$k\":$v"
        else
            v="${v//\\/\\\\}"
            v="${v//\"/\\\"}"
            out+="$sep\"$k\":\"$v\""
        fi
        sep=","
    done
    printf '%s}\n' "$out"
}
