#!/usr/bin/env bash
# bench/queue.sh - the embedding job queue's cost on a real Neo4j
# (bench/bench_queue.c).  Normally started by `bench/run queue`, which builds
# bench_queue into $BENCH_BUILD_DIR and provides BENCH_NEO4J_URI/_USER/_PASSWORD
# (a private Neo4j); works standalone with those variables set.
#
#   (1) 20,000 jobs, no-op embedder, 1/2/4/8 workers: enqueue jobs/s,
#       lease+complete jobs/s, p50/p99 latency of a lease call;
#   (2) enqueue->lease latency with the best worker count polling;
#   (3) 1536-dimension vectors written on completion vs the raw floor (same
#       vectors, same entities, same batch sizes, no queue), alternating,
#       after one unmeasured pass of each; server CPU per job when
#       BENCH_NEO4J_PID is known (bench/run sets it).  Twice: with a plain
#       unindexed property (the head figures) and with engram's own write
#       (:Entity, vector index; entity_*).
#
# Settings: BENCH_QUEUE_JOBS (20000), BENCH_QUEUE_WORKERS (1,2,4,8),
# BENCH_QUEUE_BATCH (200 jobs per lease/complete), BENCH_QUEUE_VECTOR_JOBS
# (20000), BENCH_QUEUE_DIM (1536), BENCH_QUEUE_LATENCY_JOBS (500),
# BENCH_QUEUE_WRITE (both | entity | plain), BENCH_RUNS (3 alternating
# vector/raw rounds; medians).
# Final stdout line: one JSON object (see bench/README.md).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

: "${BENCH_NEO4J_URI:?run through bench/run queue, or set BENCH_NEO4J_URI/_USER/_PASSWORD}"
BIN="${BENCH_BUILD_DIR:-$BENCH_ROOT/build-bench}/bench_queue"
[[ -x "$BIN" ]] || bench_die "$BIN not built (run through bench/run queue)"

bench_log "queue: jobs=${BENCH_QUEUE_JOBS:-20000} workers=${BENCH_QUEUE_WORKERS:-1,2,4,8} batch=${BENCH_QUEUE_BATCH:-200}"
"$BIN" --jobs "${BENCH_QUEUE_JOBS:-20000}" --workers "${BENCH_QUEUE_WORKERS:-1,2,4,8}" \
    --batch "${BENCH_QUEUE_BATCH:-200}" --vector-jobs "${BENCH_QUEUE_VECTOR_JOBS:-20000}" \
    --dim "${BENCH_QUEUE_DIM:-1536}" --latency-jobs "${BENCH_QUEUE_LATENCY_JOBS:-500}" \
    --write "${BENCH_QUEUE_WRITE:-both}" --rounds "${BENCH_RUNS:-3}" | tail -n1
