#!/usr/bin/env bash
# bench/mcp-write.sh - create_entities latency over stdio (one entity, five
# observations) with 1,000 and with 10,000 entities already stored: engram
# against memento-mcp 0.3.9 (the anchor it replaces), same Neo4j, same run.
# Normally started by `bench/run mcp-write`.
#
# Both servers use offline/mock embeddings; engram's in-server workers first
# work off the prefill's embedding backlog (timed as queue_drain_ms_*), so
# both sides are measured in steady state.  The database is wiped (nodes,
# constraints, indexes) before each side so each starts fresh.  memento loads
# the whole graph on every create_entities, so its side takes fewer samples
# (BENCH_ANCHOR_SAMPLES).  Final stdout line: one JSON object; growth =
# p50_ms_10k / p50_ms_1k (flat is ~1.0).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

: "${BENCH_NEO4J_URI:?run through bench/run mcp-write, or set BENCH_NEO4J_URI/_USER/_PASSWORD}"
SAMPLES="${BENCH_SAMPLES:-200}"
ANCHOR_SAMPLES="${BENCH_ANCHOR_SAMPLES:-20}"
RUN_ANCHOR="${BENCH_ANCHOR:-1}"
ENGRAM="$BENCH_BUILD_DIR/engram"
[[ -x "$ENGRAM" ]] || bench_die "$ENGRAM not built (run through bench/run mcp-write)"
bench_js_install
[[ "${BENCH_NEO4J_PRIVATE:-0}" == 1 || "${BENCH_ALLOW_WIPE:-0}" == 1 ]] ||
    bench_die "this benchmark wipes the database: run it through bench/run (private Neo4j) or set BENCH_ALLOW_WIPE=1"

export NEO4J_URI="$BENCH_NEO4J_URI" NEO4J_USERNAME="$BENCH_NEO4J_USER" NEO4J_PASSWORD="$BENCH_NEO4J_PASSWORD"
export MOCK_EMBEDDINGS=true
unset OPENAI_API_KEY

bench_log "wiping database"
node "$HERE/js/wipe.js"
bench_log "engram: $SAMPLES samples at 1k and 10k stored entities"
ours="$(node "$HERE/js/mcp_write.mjs" --label engram --samples "$SAMPLES" -- "$ENGRAM" serve | tail -n1)" ||
    bench_die "engram side failed"
bench_log "  $ours"

anchor='{}'
if [[ "$RUN_ANCHOR" == 1 ]]; then
    bench_log "wiping database"
    node "$HERE/js/wipe.js"
    bench_log "memento-mcp: $ANCHOR_SAMPLES samples at 1k and 10k stored entities"
    anchor="$(node "$HERE/js/mcp_write.mjs" --label memento --samples "$ANCHOR_SAMPLES" --batch 1000 -- \
        node "$HERE/js/node_modules/@gannonh/memento-mcp/dist/index.js" | tail -n1)" ||
        bench_die "memento side failed"
    bench_log "  $anchor"
fi

g() { bench_json_get "$1" "$2"; }
bench_json bench=mcp-write samples="$SAMPLES" \
    p50_ms_1k="$(g "$ours" p50_ms_1k)" p95_ms_1k="$(g "$ours" p95_ms_1k)" \
    p50_ms_10k="$(g "$ours" p50_ms_10k)" p95_ms_10k="$(g "$ours" p95_ms_10k)" \
    growth="$(g "$ours" growth)" \
    memento_samples="$ANCHOR_SAMPLES" \
    memento_p50_ms_1k="$(g "$anchor" p50_ms_1k)" memento_p95_ms_1k="$(g "$anchor" p95_ms_1k)" \
    memento_p50_ms_10k="$(g "$anchor" p50_ms_10k)" memento_p95_ms_10k="$(g "$anchor" p95_ms_10k)" \
    memento_growth="$(g "$anchor" growth)" \
    speedup_p50_10k="$(bench_ratio "$(g "$anchor" p50_ms_10k)" "$(g "$ours" p50_ms_10k)")"
