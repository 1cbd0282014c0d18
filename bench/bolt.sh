#!/usr/bin/env bash
# bench/bolt.sh - engram's Bolt client (bench_bolt) vs the official Neo4j
# JavaScript driver (bench/js/bolt.js), same server, same run.  Normally
# started by `bench/run bolt`, which provides BENCH_NEO4J_URI/_USER/_PASSWORD
# and builds bench_bolt into $BENCH_BUILD_DIR.
#
# Workloads (both sides): (a) BENCH_BOLT_ROUNDTRIPS sequential auto-commit
# `RETURN $x`; (b) as many `RETURN $x` pipelined in one transaction, in windows
# of BENCH_BOLT_DEPTH requests; (c) stream BENCH_BOLT_ROWS rows of
# `UNWIND range(1, n) AS i RETURN i, toString(i)`.  With BENCH_BOLT_ROUTED=1
# (the default) both sides also run (a) and (c) through a bolt:// and a
# neo4j:// connection pool/driver to the same server, alternating, for the
# routed figures: routed_*_ratio = ours routed / driver routed, and
# routed_overhead = our routed round-trip time / our direct (bolt:// pool)
# time - 1 (routed_stream_overhead the same for the stream).
#
# After one unmeasured pass of each side (BENCH_BOLT_WARM=1, the default: a
# fresh server's first passes run on cold JIT), the two sides alternate
# BENCH_RUNS times, which one goes first flipping from run to run, so server
# warm-up and background load hit both alike; each figure is the median.
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
ROUTED="${BENCH_BOLT_ROUTED:-1}"
ARGS=(--roundtrips "$ROUNDTRIPS" --pipelined "$PIPELINED" --depth "$DEPTH" --rows "$ROWS" --routed "$ROUTED")
WARM="${BENCH_BOLT_WARM:-1}"
WARM_ARGS=(--roundtrips "$ROUNDTRIPS" --pipelined "$PIPELINED" --depth "$DEPTH" --rows "$ROWS" --routed 0)

OURS="$BENCH_BUILD_DIR/bench_bolt"
[[ -x "$OURS" ]] || bench_die "$OURS not built (run through bench/run bolt)"
bench_js_install

keys=(roundtrip_qps pipelined_qps stream_rows_s pipelined_client_cpu_us pipelined_server_cpu_us)
routed_keys=()
((ROUTED)) && routed_keys=(routed_roundtrip_qps routed_stream_rows_s pool_roundtrip_qps pool_stream_rows_s
                           routed_overhead routed_stream_overhead)
keys+=("${routed_keys[@]}")
# ours only (CPU time of this side plus the server's; needs BENCH_NEO4J_PID)
ours_keys=()
((ROUTED)) && ours_keys=(routed_cpu_overhead routed_stream_cpu_overhead)
# ours with the read spin off (bolt_config.read_spin_us): the pipelined figures
SPIN_AB="${BENCH_BOLT_SPIN_AB:-1}"
((SPIN_AB)) && ours_keys+=(nospin_pipelined_qps nospin_pipelined_client_cpu_us nospin_pipelined_server_cpu_us)
declare -A ours_v driver_v
for k in "${keys[@]}"; do ours_v[$k]=""; driver_v[$k]=""; done
for k in "${ours_keys[@]}"; do ours_v[$k]=""; done
driver_name="" server=""

run_ours() {
    bench_log "run $r/$RUNS: ours"
    line="$("$OURS" "${ARGS[@]}" --order "$r" | tail -n1)" || bench_die "bench_bolt failed"
    bench_log "  $line"
    for k in "${keys[@]}" "${ours_keys[@]}"; do
        [[ "$k" == nospin_* ]] || ours_v[$k]+=" $(bench_json_get "$line" "$k")"
    done
    if ((SPIN_AB)); then
        bench_log "run $r/$RUNS: ours, pipelined with the read spin off"
        line="$("$OURS" --roundtrips 0 --rows 0 --routed 0 --pipelined "$PIPELINED" --depth "$DEPTH" --spin-us 0 |
            tail -n1)" || bench_die "bench_bolt failed (spin off)"
        bench_log "  $line"
        for k in pipelined_qps pipelined_client_cpu_us pipelined_server_cpu_us; do
            ours_v[nospin_$k]+=" $(bench_json_get "$line" "$k")"
        done
    fi
}
run_driver() {
    bench_log "run $r/$RUNS: driver"
    line="$(node "$HERE/js/bolt.js" "${ARGS[@]}" --order "$r" | tail -n1)" || bench_die "bolt.js failed"
    bench_log "  $line"
    for k in "${keys[@]}"; do driver_v[$k]+=" $(bench_json_get "$line" "$k")"; done
    driver_name="$(bench_json_get "$line" driver)"
    server="$(bench_json_get "$line" server)"
}

# A fresh Neo4j runs its first passes interpreted or half compiled: one
# unmeasured pass of each side first, so that no measured run is the cold one.
if ((WARM)); then
    bench_log "warm-up pass (not measured): ours, driver"
    "$OURS" "${WARM_ARGS[@]}" >/dev/null || bench_die "bench_bolt failed (warm-up)"
    node "$HERE/js/bolt.js" "${WARM_ARGS[@]}" >/dev/null || bench_die "bolt.js failed (warm-up)"
fi
# Which side goes first alternates from run to run.
for ((r = 1; r <= RUNS; r++)); do
    if ((r % 2)); then run_ours; run_driver; else run_driver; run_ours; fi
done

out=(bench=bolt)
med() { # side key -> median of that side's values (overheads to 4 decimals)
    local -n v="$1"
    if [[ "$2" == *_overhead ]]; then
        # shellcheck disable=SC2086  # word splitting of the collected values wanted
        printf '%s\n' ${v[$2]} | sort -g | awk '{v[NR] = $1} END {
            if (NR == 0) print "null"; else printf "%.4f\n", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
    else
        # shellcheck disable=SC2086
        bench_median ${v[$2]}
    fi
}
for k in "${keys[@]}"; do
    o="$(med ours_v "$k")"
    d="$(med driver_v "$k")"
    case "$k" in
        *_overhead) out+=("$k=$o" "driver_$k=$d"); continue ;;
        stream_rows_s) base=stream ;;
        routed_stream_rows_s) base=routed_stream ;;
        pool_* | *_cpu_us) out+=("$k=$o" "driver_$k=$d"); continue ;;
        *) base="${k%_*}" ;;          # roundtrip, pipelined, routed_roundtrip
    esac
    out+=("$k=$o" "driver_$k=$d" "${base}_ratio=$(bench_ratio "$o" "$d")")
done
for k in "${ours_keys[@]}"; do
    v="$(med ours_v "$k")"
    [[ -n "${ours_v[$k]// /}" ]] || v=null
    out+=("$k=$v")
done
((SPIN_AB)) && out+=("nospin_pipelined_ratio=$(bench_ratio "$(med ours_v nospin_pipelined_qps)" "$(med driver_v pipelined_qps)")")
out+=("runs=$RUNS" "roundtrips=$ROUNDTRIPS" "pipelined=$PIPELINED" "depth=$DEPTH" "rows=$ROWS" "routed=$ROUTED"
      "driver=$driver_name" "server=$server")
bench_json "${out[@]}"
