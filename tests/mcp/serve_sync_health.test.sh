#!/usr/bin/env bash
# `engram serve` on Neo4j with in-server workers in synchronous mode, and its
# /health + /metrics endpoint.  Skips (77) without ENGRAM_TEST_NEO4J_URI
# unless ENGRAM_REQUIRE_NEO4J=1.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"
mcp_need_neo4j
mcp_need_node
exec node "$here/serve_sync_health.mjs" "$ENGRAM_BIN"
