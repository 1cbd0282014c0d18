#!/usr/bin/env bash
# bench/bolt.sh - engram's Bolt client (bench_bolt) vs the official Neo4j
# JavaScript driver (bench/js/bolt.js), same server, same run.  Normally
# started by `bench/run bolt`, which provides BENCH_NEO4J_URI/_USER/_PASSWORD
# and builds bench_bolt into $BENCH_BUILD_DIR.
#
# Workloads (both sides): (a) BENCH_BOLT_ROUNDTRIPS sequential auto-commit
# `RETURN $x`; (b) as many `RETURN $x` pipelined in one transaction, in windows
# of BENCH_BOLT_DEPTH requests; (c) stream BENCH_BOLT_ROWS rows of
# `UNWIND range(1, n) AS i RETURN i, toString(i)`.
#
# The two sides alternate (ours, driver, ours, driver, ...) BENCH_RUNS times so
# server warm-up and background load hit both alike; each figure is the median.
# Final stdout line: one JSON object (ratio = ours / driver; > 1 means we win).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

: "${BENCH_NEO4J_URI:?run through bench/run bolt, or set BENCH_NEO4J_URI/_USER/_PASSWORD}"
RUNS="${BENCH_RUNS:-3}"
ROUNDTRIPS="${BENCH_BOLT_ROUNDTRIPS:-20000}"
PIPELINED="${BENCH_BOLT_PIPELINED:-$ROUNDTRIPS}"
DEPTH="${BENCH_BOLT_DEPTH:-100}"
ROWS="${BENCH_BOLT_ROWS:-1000000}"
ARGS=(--roundtrips "$ROUNDTRIPS" --pipelined "$PIPELINED" --depth "$DEPTH" --rows "$ROWS")

OURS="$BENCH_BUILD_DIR/bench_bolt"
[[ -x "$OURS" ]] || bench_die "$OURS not built (run through bench/run bolt)"
bench_js_install

keys=(roundtrip_qps pipelined_qps stream_rows_s)
declare -A ours_v driver_v
for k in "${keys[@]}"; do ours_v[$k]=""; driver_v[$k]=""; done
driver_name="" server=""

for ((r = 1; r <= RUNS; r++)); do
    bench_log "run $r/$RUNS: ours"
    line="$("$OURS" "${ARGS[@]}" | tail -n1)" || bench_die "bench_bolt failed"
    bench_log "  $line"
    for k in "${keys[@]}"; do ours_v[$k]+=" $(bench_json_get "$line" "$k")"; done

    bench_log "run $r/$RUNS: driver"
    line="$(node "$HERE/js/bolt.js" "${ARGS[@]}" | tail -n1)" || bench_die "bolt.js failed"
    bench_log "  $line"
    for k in "${keys[@]}"; do driver_v[$k]+=" $(bench_json_get "$line" "$k")"; done
    driver_name="$(bench_json_get "$line" driver)"
    server="$(bench_json_get "$line" server)"
done

out=(bench=bolt)
for k in "${keys[@]}"; do
    # shellcheck disable=SC2086  # word splitting of the collected values wanted
    o="$(bench_median ${ours_v[$k]})"
    # shellcheck disable=SC2086
    d="$(bench_median ${driver_v[$k]})"
    base="${k%_*}"                    # roundtrip, pipelined, stream
    [[ "$k" == stream_rows_s ]] && base=stream
    out+=("$k=$o" "driver_$k=$d" "${base}_ratio=$(bench_ratio "$o" "$d")")
done
out+=("runs=$RUNS" "roundtrips=$ROUNDTRIPS" "pipelined=$PIPELINED" "depth=$DEPTH" "rows=$ROWS"
      "driver=$driver_name" "server=$server")
bench_json "${out[@]}"
