#!/usr/bin/env bash
# The local encoder end to end, on a private Neo4j as `make run` has it:
#
# 1. A memory embedded by the n-gram provider (1536 dimensions), as every
#    engram before the encoder made it.
# 2. The default configuration now (no API key: the built-in encoder, 384
#    dimensions) refuses to mix: doctor reports it (exit 3) and says what to
#    run; serve refuses to start.
# 3. `engram reembed --switch-model` moves the namespace, with progress.
# 4. The `make run` demo (tools/demo/demo.mjs) on the default provider: the
#    paraphrase "who looked after the sick animals?" must find the entity
#    whose observation is "worked as a veterinarian" first, by vector search
#    alone (no shared content word: only sentence embeddings find it).
# 5. A change between two models of the same dimension (bge -> MiniLM):
#    doctor reports it, serve starts with keyword search only, the switch
#    moves it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"
mcp_need_neo4j
mcp_need_node
demo="$ENGRAM_SOURCE_DIR/tools/demo"
if [[ ! -d "$demo/node_modules/@modelcontextprotocol/sdk" ]]; then
  (cd "$demo" && npm install --no-package-lock --no-audit --no-fund --loglevel=error >&2)
fi
unset OPENAI_API_KEY ENGRAM_EMBED_PROVIDER MOCK_EMBEDDINGS NEO4J_VECTOR_DIMENSIONS ENGRAM_EMBED_DIMENSIONS
unset NEO4J_VECTOR_INDEX ENGRAM_FULLTEXT_INDEX
# A private Neo4j, as `make run` has: the suite's shared one holds a vector
# index sized for the n-gram provider the other tests use, and a database
# has one vector index on :Entity(embedding).
W="${ENGRAM_NEO4J_LOCAL:-$ENGRAM_SOURCE_DIR/tools/neo4j-local/neo4j}"
dir="$(mktemp -d "${TMPDIR:-/tmp}/engram-demo-test.XXXXXX")"
export NEO4J_PASSWORD="demo-$RANDOM-$RANDOM" NEO4J_USERNAME=neo4j
trap '"$W" stop --data "$dir" --timeout 30 >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
uri="$("$W" start --data "$dir" --port 0 --watch-pid $$)"
export NEO4J_URI="$uri"
ns="demo-test-$$"
export ENGRAM_DEMO_NAMESPACE="$ns" ENGRAM_NAMESPACE="$ns"
step() { echo "== $*" >&2; }

step "1. a memory embedded by the n-gram provider"
ENGRAM_EMBED_PROVIDER=offline node "$demo/demo.mjs" "$ENGRAM_BIN" >/dev/null 2>&1 || { echo "offline demo failed" >&2; exit 1; }

step "2. the default (local encoder) refuses to mix"
set +e
doc="$("$ENGRAM_BIN" doctor 2>&1)"; drc=$?
serve_out="$(timeout 20 "$ENGRAM_BIN" serve </dev/null 2>&1)"; src=$?
set -e
echo "$doc" | grep -E "vector model|indexes" >&2
[[ $drc == 3 ]] || { echo "FAIL: doctor exit $drc, expected 3" >&2; exit 1; }
grep -q "engram-offline-ngram-v1" <<<"$doc" && grep -q "reembed --switch-model" <<<"$doc" ||
  { echo "FAIL: doctor does not name the stored model and the command" >&2; exit 1; }
[[ $src != 0 ]] && grep -q "reembed --switch-model" <<<"$serve_out" ||
  { echo "$serve_out"; echo "FAIL: serve started on another model's index" >&2; exit 1; }

step "3. the switch"
sw="$("$ENGRAM_BIN" reembed --switch-model 2>&1 | tr '\r' '\n')"
echo "$sw" | grep -E "^switch: namespace|done, 0 left|^reembed:" >&2
# 6 entities and their observation records (each has its own vector now)
grep -qE "([0-9]+) of \1 done, 0 left" <<<"$sw" && ! grep -qE " [0-6] of [0-6] done, 0 left" <<<"$sw" ||
  { echo "$sw"; echo "FAIL: the switch did not re-embed the 6 entities and their observations" >&2; exit 1; }
"$ENGRAM_BIN" doctor | grep -q "holds vectors of bge-small-en-v1.5" || { echo "FAIL: not on bge" >&2; exit 1; }
# both vector indexes were resized (1536 -> 384)
"$ENGRAM_BIN" doctor | grep -q "observation vector index observation_embeddings: 384 dimensions" ||
  { "$ENGRAM_BIN" doctor; echo "FAIL: the observation index was not resized" >&2; exit 1; }

step "4. the demo on the default provider"
out="$(node "$demo/demo.mjs" "$ENGRAM_BIN" 2>&1)" || { echo "$out"; echo "demo failed" >&2; exit 1; }
echo "$out" | sed -n '/sick animals/,/search_nodes/p'
if ! grep -q 'found by meaning' <<<"$out"; then
  echo "$out"
  echo "FAIL: the demo did not find the paraphrase first" >&2
  exit 1
fi
grep -q 'provider local' <<<"$out" || { echo "FAIL: the demo did not run on the local encoder" >&2; exit 1; }
echo "demo: paraphrase found first by the local encoder"

step "5. same dimension, other model: bge -> MiniLM"
export ENGRAM_LOCAL_MODEL=all-MiniLM-L6-v2
set +e
doc="$("$ENGRAM_BIN" doctor 2>&1)"; drc=$?
set -e
[[ $drc == 3 ]] && grep -q "holds vectors of model bge-small-en-v1.5" <<<"$doc" ||
  { echo "$doc"; echo "FAIL: doctor missed the model change" >&2; exit 1; }
serve_log="$(mktemp)"
(sleep 2) | timeout 20 "$ENGRAM_BIN" serve 2>"$serve_log" || true
grep -q "keyword search only" "$serve_log" || { cat "$serve_log"; echo "FAIL: serve did not say it" >&2; exit 1; }
rm -f "$serve_log"
sw="$("$ENGRAM_BIN" reembed --switch-model 2>&1 | tr '\r' '\n')"
grep -q "done, 0 left" <<<"$sw" || { echo "$sw"; echo "FAIL: second switch" >&2; exit 1; }
"$ENGRAM_BIN" doctor | grep -q "holds vectors of all-MiniLM-L6-v2" || { echo "FAIL: not on MiniLM" >&2; exit 1; }
echo "local-encoder: demo and model switches passed"
