#!/usr/bin/env bash
# bench/graph-create.sh - create_entities latency at 1k vs 10k stored entities
# (bench/bench_graph_create.c): p50 must stay flat as the graph grows; with
# add_observations latency and the bulk create rate, beside the floors of
# bench_compare measured first on the same Neo4j (a single-node write
# transaction, the guarded write and the guarded bulk rate).
# Normally started by `bench/run graph-create`, which provides
# BENCH_NEO4J_URI/_USER/_PASSWORD and builds bench_graph_create.
#
# Settings: BENCH_GRAPH_SAMPLES (200), BENCH_GRAPH_SIZES (1000,10000),
# BENCH_GRAPH_MAX_RATIO (2.0), BENCH_GRAPH_FLOOR (1: measure the floors).
# Final stdout line: one JSON object.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

: "${BENCH_NEO4J_URI:?run through bench/run graph-create, or set BENCH_NEO4J_URI/_USER/_PASSWORD}"
PROG="$BENCH_BUILD_DIR/bench_graph_create"
[[ -x "$PROG" ]] || bench_die "$PROG not built (run through bench/run graph-create)"
floor='{}'
if [[ "${BENCH_GRAPH_FLOOR:-1}" == 1 ]]; then
    bench_build bench_compare
    bench_log "floors (bench_compare: 200 writes, 20,000 bulk nodes, 2,000 guarded bulk entities)"
    floor="$("$BENCH_BUILD_DIR/bench_compare" --writes 200 --seconds 1 --threads 1 --bulk 20000 | tail -n1)" ||
        bench_die "bench_compare failed"
    bench_log "  $floor"
fi
bench_log "create_entities p50 at ${BENCH_GRAPH_SIZES:-1000,10000} stored entities"
status=0
line="$("$PROG" "${BENCH_GRAPH_SAMPLES:-200}" "${BENCH_GRAPH_SIZES:-1000,10000}" "${BENCH_GRAPH_MAX_RATIO:-2.0}" |
    while IFS= read -r l; do
        case "$l" in
            "{"*) printf '%s\n' "$l" ;;
            *) bench_log "$l" ;;
        esac
    done)" || status=$? # a ratio over the limit: print the line, then fail
[[ -n "$line" ]] || bench_die "bench_graph_create printed no result"
# the floors, and the ratios to them, into the one line
FLOOR="$floor" LINE="$line" node -e '
const r = JSON.parse(process.env.LINE), f = JSON.parse(process.env.FLOOR);
const ratio = (a, b) => (a > 0 && b > 0 ? Math.round((a / b) * 1000) / 1000 : null);
const worst = (b) => {
  const v = Object.keys(r).filter((k) => /^p50_ms_/.test(k)).map((k) => ratio(r[k], b));
  return v.length && v.every((x) => x !== null) ? Math.max(...v) : null;
};
r.floor = f;
r.create_p50_ratio_to_floor_max = worst(f.write_p50_ms);
r.create_p50_ratio_to_guarded_floor_max = worst(f.guarded_write_p50_ms);
r.bulk_ratio_to_guarded_floor = ratio(r.bulk_entities_s, f.guarded_full_bulk_entities_s);
console.log(JSON.stringify(r));'
exit "$status"
