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
# (BENCH_ANCHOR_SAMPLES).  Then engram's observations (js/mcp_obs.mjs):
# add_observations at 1k and 100k stored observations and the store's bytes
# per observation over 10,000 single additions to one entity
# (BENCH_OBS_SINGLE).  Final stdout line: one JSON object; growth =
# p50_ms_10k / p50_ms_1k, obs_growth = add p50 at 100k / at 1k (flat is ~1.0).
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

# Observations as records (issue 13): add_observations at 1k and 100k stored
# observations; then the store's bytes per observation over 10,000 single
# additions to one entity, measured on disk with Neo4j stopped cleanly (its
# shutdown checkpoint puts everything in the store files; Community has no
# checkpoint procedure) before, after the first 1,000 and after all.
bench_log "wiping database"
node "$HERE/js/wipe.js"
bench_log "engram: add_observations at 1k and 100k stored observations"
obs="$(node "$HERE/js/mcp_obs.mjs" --phase adds --samples "$SAMPLES" --large "${BENCH_OBS_LARGE:-100000}" \
    -- "$ENGRAM" serve | tail -n1)" || bench_die "engram observation side failed"
bench_log "  $obs"

store_bytes() { # stop Neo4j cleanly, measure its store files, start it again on the same port
    [[ -n "${BENCH_NEO4J_DIR:-}" ]] || { echo null; return; }
    local port
    port="$(cat "$BENCH_NEO4J_DIR/neo4j.port")"
    "$BENCH_NEO4J_WRAPPER" stop --data "$BENCH_NEO4J_DIR" >/dev/null || bench_die "could not stop Neo4j"
    du -sb "$BENCH_NEO4J_DIR/data/databases/neo4j" | cut -f1
    NEO4J_PASSWORD="$BENCH_NEO4J_PASSWORD" "$BENCH_NEO4J_WRAPPER" start --data "$BENCH_NEO4J_DIR" --port "$port" \
        --watch-pid "$PPID" >/dev/null || bench_die "could not restart Neo4j"
}
single_total="${BENCH_OBS_SINGLE:-10000}"
single_first=$((single_total < 1000 ? single_total : 1000))
single_name="single-$RANDOM$RANDOM"
bench_log "engram: $single_total single additions to one entity (store measured at 0, $single_first, $single_total)"
s0="$(store_bytes)"
one1="$(node "$HERE/js/mcp_obs.mjs" --phase single --entity "$single_name" --count "$single_first" \
    -- "$ENGRAM" serve | tail -n1)" || bench_die "single additions failed"
s1="$(store_bytes)"
one2="$(node "$HERE/js/mcp_obs.mjs" --phase single --entity "$single_name" --from "$single_first" \
    --count "$((single_total - single_first))" -- "$ENGRAM" serve | tail -n1)" || bench_die "single additions failed"
s2="$(store_bytes)"
bench_log "  store bytes $s0 -> $s1 -> $s2; first $one1; rest $one2"
per_obs() { [[ "$1" == null || "$2" == null || "$3" -le 0 ]] && echo null || echo $((($2 - $1) / $3)); }
bpo_first="$(per_obs "$s0" "$s1" "$single_first")"
bpo_rest="$(per_obs "$s1" "$s2" "$((single_total - single_first))")"

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
    obs_p50_ms_1k="$(g "$obs" obs_p50_ms_1k)" obs_p95_ms_1k="$(g "$obs" obs_p95_ms_1k)" \
    obs_p50_ms_100k="$(g "$obs" obs_p50_ms_100k)" obs_p95_ms_100k="$(g "$obs" obs_p95_ms_100k)" \
    obs_growth="$(g "$obs" obs_growth)" \
    bytes_per_observation_first_1k="$bpo_first" bytes_per_observation_at_10k="$bpo_rest" \
    single_p50_ms_first_1k="$(g "$one1" p50_ms_first_1k)" single_p50_ms_last_1k="$(g "$one2" p50_ms_last_1k)" \
    memento_samples="$ANCHOR_SAMPLES" \
    memento_p50_ms_1k="$(g "$anchor" p50_ms_1k)" memento_p95_ms_1k="$(g "$anchor" p95_ms_1k)" \
    memento_p50_ms_10k="$(g "$anchor" p50_ms_10k)" memento_p95_ms_10k="$(g "$anchor" p95_ms_10k)" \
    memento_growth="$(g "$anchor" growth)" \
    speedup_p50_10k="$(bench_ratio "$(g "$anchor" p50_ms_10k)" "$(g "$ours" p50_ms_10k)")"
