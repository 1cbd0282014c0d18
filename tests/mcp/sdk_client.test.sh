#!/usr/bin/env bash
# The official MCP TypeScript SDK against `engram serve` on Neo4j (namespace
# unique per run, entities deleted at the end).  Skips (77) without
# ENGRAM_TEST_NEO4J_URI unless ENGRAM_REQUIRE_NEO4J=1.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"
mcp_need_neo4j
mcp_need_node
exec node "$here/sdk_client.mjs" "$ENGRAM_BIN" neo4j
