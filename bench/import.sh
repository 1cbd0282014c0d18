#!/usr/bin/env bash
# bench/import.sh - `engram import` of the official memory server's
# memory.jsonl, against the official server's own create_entities /
# create_relations (bench/js/official_import.mjs), in the same run.
#
# A generated file of BENCH_IMPORT_SIZE (100000) entities, each with two
# observations, and SIZE/2 relations.  Reported:
#   import_entities_s    entities/s of `engram import` (wall time, both passes
#                        and the check pass, jobs enqueued in the same
#                        transactions)
#   official_entities_s  the same file through the official server, batches
#                        of BENCH_IMPORT_BATCH (500); it may stop after
#                        BENCH_IMPORT_OFFICIAL_MAX_S (600) and says so
#   jobs_per_request     the import's embedding jobs worked by `engram worker
#                        --drain` against a loopback OpenAI-compatible fake:
#                        jobs per provider request (the queue's batching)
#   export_rss_growth    peak RSS of `engram export` of the 100k namespace
#                        over that of a 10k one (flat memory: ~1)
# Final stdout line: one JSON object.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

: "${BENCH_NEO4J_URI:?run through bench/run import, or set BENCH_NEO4J_URI/_USER/_PASSWORD}"
SIZE="${BENCH_IMPORT_SIZE:-100000}"
BATCH="${BENCH_IMPORT_BATCH:-500}"
OFFICIAL_MAX="${BENCH_IMPORT_OFFICIAL_MAX_S:-600}"
SMALL=$((SIZE / 10))
BIN="$BENCH_BUILD_DIR/engram"
[[ -x "$BIN" ]] || bench_die "$BIN not built"
bench_js_install
work="$(mktemp -d)"
fake_pid=""
cleanup() { [[ -n "$fake_pid" ]] && kill "$fake_pid" 2>/dev/null; rm -rf "$work"; }
trap 'cleanup; bench_neo4j_stop' EXIT

export NEO4J_URI="$BENCH_NEO4J_URI" NEO4J_USERNAME="${BENCH_NEO4J_USER:-neo4j}" NEO4J_PASSWORD="$BENCH_NEO4J_PASSWORD"
export NEO4J_VECTOR_DIMENSIONS=64 ENGRAM_EMBED_DIMENSIONS=64 ENGRAM_LOG_LEVEL=warning
export ENGRAM_EMBED_PROVIDER=openai OPENAI_API_KEY=bench-key OPENAI_EMBEDDING_MODEL=bench-fake ENGRAM_EMBED_ENCODING=float

bench_log "generating $SIZE entities and $((SIZE / 2)) relations"
python3 - "$SIZE" "$work/memory.jsonl" <<'PY'
import json, random, sys
n, path = int(sys.argv[1]), sys.argv[2]
rnd = random.Random(7)
topics = ["gardening", "chess", "sourdough", "climbing", "jazz", "taxes", "the office", "birds"]
with open(path, "w") as f:
    for i in range(n):
        f.write(json.dumps({"type": "entity", "name": f"person-{i:06d}", "entityType": "person",
                            "observations": [f"likes {topics[i % 8]}", f"joined in {1990 + i % 35}"]}) + "\n")
    for i in range(n // 2):
        a, b = rnd.randrange(n), rnd.randrange(n)
        f.write(json.dumps({"type": "relation", "from": f"person-{a:06d}", "to": f"person-{b:06d}",
                            "relationType": "knows"}) + "\n")
PY
head -n "$SMALL" "$work/memory.jsonl" >"$work/small.jsonl"

bench_log "engram import of $SIZE entities"
t0=$(date +%s.%N)
out="$("$BIN" import "$work/memory.jsonl" --namespace bench-import --batch "$BATCH" --json)"
t1=$(date +%s.%N)
import_s="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')"
created="$(bench_json_get "$out" entitiesCreated)"
jobs="$(bench_json_get "$out" jobs)"
rel="$(bench_json_get "$out" relationsCreated)"
import_rate="$(awk -v n="$created" -v s="$import_s" 'BEGIN { printf "%.1f", n / s }')"
bench_log "import: $created entities, $rel relations, $jobs jobs in $import_s s ($import_rate entities/s)"

bench_log "engram worker --drain against a loopback fake provider"
node "$HERE/js/fake_openai.mjs" "$work/port" &
fake_pid=$!
for _ in $(seq 100); do [[ -s "$work/port" ]] && break; sleep 0.1; done
port="$(cat "$work/port")"
t0=$(date +%s.%N)
OPENAI_BASE_URL="http://127.0.0.1:$port/v1" "$BIN" worker --drain --no-health --concurrency 2 --batch 100 \
    --max-seconds 1800 >/dev/null
t1=$(date +%s.%N)
drain_s="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')"
stats="$(curl -s "http://127.0.0.1:$port/stats")"
requests="$(bench_json_get "$stats" requests)"
inputs="$(bench_json_get "$stats" inputs)"
jpr="$(bench_ratio "$inputs" "$requests")"
bench_log "worker: $inputs texts in $requests requests ($jpr per request), $drain_s s"

bench_log "export memory: $SMALL vs $SIZE entities"
"$BIN" import "$work/small.jsonl" --namespace bench-export-small --batch "$BATCH" --json >/dev/null
rss_small="$( { /usr/bin/time -f '%M' "$BIN" export --namespace bench-export-small >/dev/null; } 2>&1 | tail -1)"
rss_large="$( { /usr/bin/time -f '%M' "$BIN" export --namespace bench-import >/dev/null; } 2>&1 | tail -1)"
growth="$(bench_ratio "$rss_large" "$rss_small")"
bench_log "export peak RSS: $rss_small KB at $SMALL, $rss_large KB at $SIZE (x$growth)"

bench_log "the official server's create_entities/create_relations (batches of $BATCH, at most $OFFICIAL_MAX s)"
off="$(cd "$HERE/js" && node official_import.mjs "$work/memory.jsonl" "$BATCH" "$OFFICIAL_MAX")"
off_rate="$(bench_json_get "$off" entities_s)"
off_n="$(bench_json_get "$off" entities)"
off_stop="$(bench_json_get "$off" stopped)"
bench_log "official: $off_n entities at $off_rate entities/s (stopped: $off_stop)"

bench_json bench=import size="$SIZE" batch="$BATCH" import_entities_s="$import_rate" import_seconds="$import_s" \
    import_jobs="$jobs" import_relations="$rel" official_entities_s="$off_rate" official_entities="$off_n" \
    official_stopped="${off_stop:-null}" speedup_vs_official="$(bench_ratio "$import_rate" "$off_rate")" \
    jobs_per_request="$jpr" provider_requests="$requests" drain_seconds="$drain_s" \
    export_rss_kb_small="$rss_small" export_rss_kb_large="$rss_large" export_rss_growth="$growth"
