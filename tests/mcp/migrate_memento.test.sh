#!/usr/bin/env bash
# `engram migrate memento` on a graph written by the real memento-mcp
# (0.3.9, from bench/js): versions from add/delete_observations and
# update_relation, relations left on archived nodes, and two live nodes of
# one name (memento's race, injected with the Neo4j driver).  Then engram
# serves the migrated graph and the SDK client checks it.  Runs on a
# private Neo4j: memento creates its own index and constraint, which must
# not leak into the shared test database.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"
mcp_need_node
src="$(cd "$here/../.." && pwd)"
memento="$src/bench/js/node_modules/@gannonh/memento-mcp/dist/index.js"
driver="$src/bench/js/node_modules/neo4j-driver/lib/index.js"
W="${ENGRAM_NEO4J_LOCAL:-$src/tools/neo4j-local/neo4j}"
if [[ ! -f "$memento" || ! -f "$driver" ]]; then
  echo "memento-mcp or neo4j-driver missing in bench/js (run scripts/setup.sh)" >&2
  [[ "${ENGRAM_REQUIRE_NEO4J:-0}" == 1 ]] && exit 1
  exit 77
fi
if ! command -v java >/dev/null; then
  [[ "${ENGRAM_REQUIRE_NEO4J:-0}" == 1 ]] && { echo "java missing" >&2; exit 1; }
  echo "skipped: java not installed"; exit 77
fi
dir="$(mktemp -d "${TMPDIR:-/tmp}/engram-migrate-test.XXXXXX")"
pw="mig-$RANDOM-$RANDOM"
trap '"$W" stop --data "$dir" --timeout 30 >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
uri="$(NEO4J_PASSWORD="$pw" "$W" start --data "$dir" --port 0 --watch-pid $$)"
node "$here/migrate_memento.mjs" "$ENGRAM_BIN" "$memento" "$driver" "$uri" neo4j "$pw"
