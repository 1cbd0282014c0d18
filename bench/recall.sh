#!/usr/bin/env bash
# bench/recall.sh - retrieval quality on LoCoMo through engram's own MCP tools:
# session- and turn-level R@5, R@10, nDCG@10 and MRR for keyword-only,
# vector-only and hybrid search, for each embedding model (the n-gram
# provider and both local encoders), beside a plain BM25 ranking of the same
# texts computed by the benchmark; query latency p50/p95; the time to embed
# the dataset through the queue.  Normally started by `bench/run recall`.
#
#   bench/run recall [--data FILE]
#
# --data: a LoCoMo-format file (default: the development half,
# $LOCOMO_DIR/locomo-dev.json with LOCOMO_DIR defaulting to ../shared/data/locomo
# beside the repository).  It is read, never copied.  BENCH_RECALL_MODELS picks
# the models (default: offline,all-MiniLM-L6-v2,bge-small-en-v1.5).  The top
# level of the final JSON line holds the default model's hybrid figures.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

: "${BENCH_NEO4J_URI:?run through bench/run recall, or set BENCH_NEO4J_URI/_USER/_PASSWORD}"
data="${LOCOMO_DIR:-$BENCH_ROOT/../shared/data/locomo}/locomo-dev.json"
while (($#)); do
    case "$1" in
        --data) data="${2:?--data needs a file}"; shift 2 ;;
        *) bench_die "unknown option $1" ;;
    esac
done
[[ -f "$data" ]] || bench_die "no LoCoMo file at $data (set LOCOMO_DIR or pass --data FILE)"
ENGRAM="$BENCH_BUILD_DIR/engram"
[[ -x "$ENGRAM" ]] || bench_die "$ENGRAM not built (run through bench/run recall)"
bench_js_install
models="${BENCH_RECALL_MODELS:-offline,all-MiniLM-L6-v2,bge-small-en-v1.5}"
default_model="$(sed -n 's/^#define EMBED_LOCAL_DEFAULT_MODEL EMBED_LOCAL_\([A-Z]*\)$/\1/p' "$BENCH_ROOT/src/embed/local_model.h")"
case "$default_model" in
    BGE) default_model=bge-small-en-v1.5 ;;
    MINILM) default_model=all-MiniLM-L6-v2 ;;
    *) bench_die "cannot read EMBED_LOCAL_DEFAULT_MODEL" ;;
esac

export NEO4J_URI="$BENCH_NEO4J_URI" NEO4J_USERNAME="$BENCH_NEO4J_USER" NEO4J_PASSWORD="$BENCH_NEO4J_PASSWORD"
bench_log "LoCoMo file $(basename "$data"); models $models; default $default_model"
line="$(node "$HERE/js/recall.mjs" --engram "$ENGRAM" --data "$data" --models "$models" | tail -n1)" ||
    bench_die "recall run failed"

# The head figures (default model, hybrid), then everything.
python3 - "$line" "$default_model" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); m = sys.argv[2]
d = r["models"].get(m)
head = {"bench": "recall", "model": m}
if d:
    h = d["hybrid"]
    head.update(session_r10=h["session"]["r10"], session_r5=h["session"]["r5"],
                session_ndcg10=h["session"]["ndcg10"], session_mrr=h["session"]["mrr"],
                turn_r10=h["turn"]["r10"], turn_r5=h["turn"]["r5"],
                turn_in_context_r10=h["turn_in_context"]["r10"], turn_in_context_r5=h["turn_in_context"]["r5"],
                query_p50_ms=h["p50_ms"], query_p95_ms=h["p95_ms"],
                keyword_session_r10=d["keyword"]["session"]["r10"],
                vector_session_r10=d["vector"]["session"]["r10"],
                keyword_turn_r10=d["keyword"]["turn"]["r10"], vector_turn_r10=d["vector"]["turn"]["r10"],
                embed_dataset_ms=d["embed_ms"])
head.update(bm25_session_r10=r["bm25"]["session"]["r10"], bm25_session_r5=r["bm25"]["session"]["r5"],
            bm25_turn_r10=r["bm25"]["turn"]["r10"])
head.update({k: v for k, v in r.items() if k != "bench"})
print(json.dumps(head))
PY
