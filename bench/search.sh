#!/usr/bin/env bash
# bench/search.sh - search_nodes at a large graph (bench/bench_search.c):
# a word present in 10 entities, an absent word, a word fragment, and the
# namespace scan the substring pass used to be (the anchor, same run).
# Normally started by `bench/run search`, which provides
# BENCH_NEO4J_URI/_USER/_PASSWORD and builds bench_search.
#
# Settings: BENCH_SEARCH_SAMPLES (100), BENCH_SEARCH_SIZE (100000).
# Final stdout line: one JSON object.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

: "${BENCH_NEO4J_URI:?run through bench/run search, or set BENCH_NEO4J_URI/_USER/_PASSWORD}"
PROG="$BENCH_BUILD_DIR/bench_search"
[[ -x "$PROG" ]] || bench_die "$PROG not built (run through bench/run search)"
bench_log "search_nodes at ${BENCH_SEARCH_SIZE:-100000} stored entities"
"$PROG" "${BENCH_SEARCH_SAMPLES:-100}" "${BENCH_SEARCH_SIZE:-100000}" |
    while IFS= read -r line; do
        case "$line" in
            "{"*) printf '%s\n' "$line" ;;
            *) bench_log "$line" ;;
        esac
    done
