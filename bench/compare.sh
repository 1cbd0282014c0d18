#!/usr/bin/env bash
# bench/compare.sh - engram against the official memory server
# (@modelcontextprotocol/server-memory, pinned in bench/js/package.json) and
# memento-mcp 0.3.9, over stdio with the official SDK client, at 100, 1,000,
# 10,000 and 100,000 stored entities (bench/js/compare.mjs: create, add
# observations, search present/absent, open 5, read_graph's first page,
# semantic and hybrid search, bulk load, peak RSS).  Normally started by
# `bench/run compare`.
#
# In the same run, on the same Neo4j:
#   floors (bench_compare), first on the fresh JVM and again after engram's
#   side (the warm ones are the headline floors; the first are floor_cold):
#   one pipelined single-node write transaction
#     through our Bolt client; concurrent single-node write commits with 1,
#     10 and 50 clients; Neo4j's bulk create rate (UNWIND, 500 per tx);
#     the guarded floors (engram's nodes and indexes) and the embedded floor
#     (storing their vectors, at EMBED_DIMS);
#   engram over Streamable HTTP with 1, 10 and 50 clients
#     (bench/js/http_load.mjs), against the 50-client commit floor, and
#     where the CPU went per call (engram, the Neo4j JVM, the load generator)
#     with the rate at which that work would fill every core.
# The two Neo4j servers get the database wiped before their side; memento
# and the official server may stop early (a call past BENCH_STOP_MS, 5 s, or
# a bulk load past BENCH_BULK_BUDGET_S): the JSON says where and why.
# memento runs with MOCK_EMBEDDINGS=true (its semantic figures are of mock
# vectors); engram with its built-in n-gram provider (ENGRAM_EMBED_PROVIDER,
# default offline) and its default 2 in-server workers, measured after the
# queue is idle.
#
# Knobs: BENCH_SIZES (100,1000,10000,100000), BENCH_SAMPLES (30),
# BENCH_ANCHOR_SAMPLES (10: memento), BENCH_SIDES (engram,official,memento),
# BENCH_HTTP (1: run the HTTP load), BENCH_RESULTS (bench/results/ file to
# write the JSON line to, default bench/results/<date>-compare.json),
# BENCH_ENGRAM (the engram binary, default the one bench/run built: another
# build for an A/B run on the same machine), BENCH_WARM_S (180: every side
# first runs its workloads for this long on scratch entities it then
# deletes, so the sizes are measured warm -- a fresh Neo4j JVM compiles its
# write path over the first ~10,000 writes; the JSON keeps the first and
# last 100 creates' p50 of that phase as cold_/warm_create_p50_ms_*; 0 turns
# it off), BENCH_SETTLE_S (120: at each size, the longest wait for the
# database's JVM to go quiet after the load and its embeddings; a size whose
# wait ran out says settle_capped, and the summary lists those sizes).
# Final stdout line: one JSON object with every figure and the ratios.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

: "${BENCH_NEO4J_URI:?run through bench/run compare}"
[[ "${BENCH_NEO4J_PRIVATE:-0}" == 1 || "${BENCH_ALLOW_WIPE:-0}" == 1 ]] ||
    bench_die "this benchmark wipes the database: run it through bench/run (private Neo4j) or set BENCH_ALLOW_WIPE=1"
SIZES="${BENCH_SIZES:-100,1000,10000,100000}"
SAMPLES="${BENCH_SAMPLES:-30}"
ANCHOR_SAMPLES="${BENCH_ANCHOR_SAMPLES:-10}"
SIDES="${BENCH_SIDES:-engram,official,memento}"
STOP_MS="${BENCH_STOP_MS:-5000}"
BUDGET="${BENCH_BULK_BUDGET_S:-900}"
ENGRAM="${BENCH_ENGRAM:-$BENCH_BUILD_DIR/engram}"
FLOOR="$BENCH_BUILD_DIR/bench_compare"
[[ -x "$ENGRAM" && -x "$FLOOR" ]] || bench_die "engram / bench_compare not built (run through bench/run compare)"
bench_js_install
JS="$HERE/js"
tmp="$(mktemp -d)"
http_pid=""
trap '[[ -n "$http_pid" ]] && kill "$http_pid" 2>/dev/null; rm -rf "$tmp"' EXIT

export NEO4J_URI="$BENCH_NEO4J_URI" NEO4J_USERNAME="$BENCH_NEO4J_USER" NEO4J_PASSWORD="$BENCH_NEO4J_PASSWORD"
unset OPENAI_API_KEY
export ENGRAM_EMBED_PROVIDER="${ENGRAM_EMBED_PROVIDER:-offline}" ENGRAM_LOG_LEVEL=warning
# The embedded floor's vectors have the dimensions engram's side stores:
# the local encoders' 384, else the offline provider's 1536, unless set.
EMBED_DIMS="${NEO4J_VECTOR_DIMENSIONS:-${ENGRAM_EMBED_DIMENSIONS:-}}"
[[ -n "$EMBED_DIMS" ]] || { [[ "$ENGRAM_EMBED_PROVIDER" == local ]] && EMBED_DIMS=384 || EMBED_DIMS=1536; }

bench_log "wiping database; floors (bench_compare)"
node "$JS/wipe.js"
floor="$("$FLOOR" --writes 2000 --seconds 5 --bulk 100000 --dims "$EMBED_DIMS" | tail -n1)" || bench_die "bench_compare failed"
bench_log "  $floor"

side() { # label samples command...
    local label="$1" n="$2"
    shift 2
    node "$JS/compare.mjs" --label "$label" --sizes "$SIZES" --samples "$n" --stop-ms "$STOP_MS" \
        --bulk-budget-s "$BUDGET" --warm-s "${BENCH_WARM_S:-180}" --settle-s "${BENCH_SETTLE_S:-120}" -- "$@" | tail -n1
}

engram='{}' official='{}' memento='{}' http='{}' jvm_rss_kb=null vector_floor='{}' obs_vector_floor='{}' floor_cold='{}'
if [[ ",$SIDES," == *,engram,* ]]; then
    bench_log "wiping database; engram side"
    node "$JS/wipe.js"
    engram="$(ENGRAM_NAMESPACE=compare side engram "$SAMPLES" "$ENGRAM" serve)" || bench_die "engram side failed"
    # Neo4j's own vector query on what the engram side stored (its largest
    # size): on the observation index, the one semantic_search reads (the
    # floor under it), and on the entity index, the smaller one
    obs_vector_floor="$("$FLOOR" --vector-index observation_embeddings --vector-samples 30 | tail -n1)" || obs_vector_floor='{}'
    bench_log "  vector floor, observation index: $obs_vector_floor"
    vector_floor="$("$FLOOR" --vector-index entity_embeddings --vector-samples 30 | tail -n1)" || vector_floor='{}'
    bench_log "  vector floor, entity index: $vector_floor"
    # The floors again, now that the JVM has compiled the write path (the
    # first run met a fresh one): these are the ones engram is set against;
    # the first stay in the JSON as floor_cold.
    bench_log "floors again, on the warm JVM"
    floor_cold="$floor"
    floor="$("$FLOOR" --writes 2000 --seconds 5 --bulk 100000 --dims "$EMBED_DIMS" | tail -n1)" || bench_die "bench_compare failed"
    bench_log "  $floor"
    bench_log "  engram: $engram"
    if [[ -n "${BENCH_NEO4J_PID:-}" ]]; then
        jvm_rss_kb="$(awk '/VmHWM/ {print $2}' "/proc/$BENCH_NEO4J_PID/status" 2>/dev/null || echo null)"
    fi
    if [[ "${BENCH_HTTP:-1}" == 1 ]]; then
        # What engram's side left in the queue (the jobs of its last
        # measured calls, in its own namespace) is embedded first: else the
        # HTTP server's workers take it on during the first phase, whose
        # calls would pay for it (http_load.mjs drains its own namespace
        # between phases and waits for the database to be calm).
        "$ENGRAM" worker --drain --no-health --max-seconds 300 2>>"$tmp/http.log" ||
            bench_die "draining the queue before the HTTP load failed: $(tail -3 "$tmp/http.log")"
        port=$((20000 + RANDOM % 20000))
        ENGRAM_NAMESPACE=compare-http ENGRAM_MCP_HTTP_PER_IP=256 "$ENGRAM" serve --transport http --port "$port" \
            2>"$tmp/http.log" &
        http_pid=$!
        for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
        bench_log "engram over HTTP: 1, 10, 50 clients x 30 calls"
        http="$(node "$JS/http_load.mjs" --url "http://127.0.0.1:$port/mcp" --clients 1,10,50 --calls 30 \
            --cpu "engram=$http_pid${BENCH_NEO4J_PID:+,neo4j=$BENCH_NEO4J_PID}" | tail -n1)" ||
            bench_die "HTTP load failed: $(tail -3 "$tmp/http.log")"
        kill "$http_pid"; wait "$http_pid" 2>/dev/null || true; http_pid=""
        bench_log "  $http"
    fi
fi
if [[ ",$SIDES," == *,official,* ]]; then
    bench_log "official server-memory side (JSONL file)"
    official="$(MEMORY_FILE_PATH="$tmp/memory.jsonl" side official "$SAMPLES" \
        node "$JS/node_modules/@modelcontextprotocol/server-memory/dist/index.js")" || bench_die "official side failed"
    bench_log "  official: $official"
fi
if [[ ",$SIDES," == *,memento,* ]]; then
    bench_log "wiping database; memento-mcp side (mock embeddings)"
    node "$JS/wipe.js"
    memento="$(MOCK_EMBEDDINGS=true side memento "$ANCHOR_SAMPLES" \
        node "$JS/node_modules/@gannonh/memento-mcp/dist/index.js")" || bench_die "memento side failed"
    bench_log "  memento: $memento"
fi

# Everything into one line: the sides as they are, then the keys the issue
# names, computed from them.
line="$(FLOOR="$floor" FLOOR_COLD="$floor_cold" VECTOR_FLOOR="$vector_floor" OBS_VECTOR_FLOOR="$obs_vector_floor" ENGRAM_SIDE="$engram" OFFICIAL="$official" MEMENTO="$memento" HTTP="$http" \
    JVM_RSS_KB="$jvm_rss_kb" node "$JS/compare_summary.mjs")" || bench_die "summary failed"
results="${BENCH_RESULTS:-$BENCH_ROOT/bench/results/$(date -u +%F)-compare.json}"
mkdir -p "$(dirname "$results")"
printf '%s\n' "$line" >>"$results"
bench_log "appended to ${results#$BENCH_ROOT/}"
printf '%s\n' "$line"
