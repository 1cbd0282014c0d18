#!/usr/bin/env bash
# bench/graph-create.sh - create_entities latency at 1k vs 10k stored entities
# (bench/bench_graph_create.c): p50 must stay flat as the graph grows.
# Normally started by `bench/run graph-create`, which provides
# BENCH_NEO4J_URI/_USER/_PASSWORD and builds bench_graph_create.
#
# Settings: BENCH_GRAPH_SAMPLES (200), BENCH_GRAPH_SIZES (1000,10000),
# BENCH_GRAPH_MAX_RATIO (2.0).  Final stdout line: one JSON object.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

: "${BENCH_NEO4J_URI:?run through bench/run graph-create, or set BENCH_NEO4J_URI/_USER/_PASSWORD}"
PROG="$BENCH_BUILD_DIR/bench_graph_create"
[[ -x "$PROG" ]] || bench_die "$PROG not built (run through bench/run graph-create)"
bench_log "create_entities p50 at ${BENCH_GRAPH_SIZES:-1000,10000} stored entities"
"$PROG" "${BENCH_GRAPH_SAMPLES:-200}" "${BENCH_GRAPH_SIZES:-1000,10000}" "${BENCH_GRAPH_MAX_RATIO:-2.0}" |
    while IFS= read -r line; do
        case "$line" in
            "{"*) printf '%s\n' "$line" ;;
            *) bench_log "$line" ;;
        esac
    done
