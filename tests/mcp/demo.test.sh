#!/usr/bin/env bash
# The `make run` demo (tools/demo/demo.mjs) as a newcomer meets it: engram's
# default provider with no API key, which is the built-in sentence encoder
# (make test installs its weights), on the real Neo4j.  The demo must end
# with the paraphrase "who looked after the sick animals?" finding the
# entity whose observation is "worked as a veterinarian" first, by vector
# search alone: no shared content word, so only real sentence embeddings
# can find it.
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
pw="demo-$RANDOM-$RANDOM"
trap '"$W" stop --data "$dir" --timeout 30 >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
uri="$("$W" start --data "$dir" --port 0 --password "$pw" --watch-pid $$)"
export NEO4J_URI="$uri"
export NEO4J_USERNAME=neo4j NEO4J_PASSWORD="$pw"
out="$(node "$demo/demo.mjs" "$ENGRAM_BIN" 2>&1)" || { echo "$out"; echo "demo failed" >&2; exit 1; }
echo "$out" | sed -n '/sick animals/,/search_nodes/p'
if ! grep -q 'found by meaning' <<<"$out"; then
  echo "$out"
  echo "FAIL: the demo did not find the paraphrase first" >&2
  exit 1
fi
grep -q 'provider local' <<<"$out" || { echo "FAIL: the demo did not run on the local encoder" >&2; exit 1; }
echo "demo: paraphrase found first by the local encoder"
