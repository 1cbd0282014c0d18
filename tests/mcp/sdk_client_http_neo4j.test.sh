#!/usr/bin/env bash
# The official MCP TypeScript SDK over Streamable HTTP against
# `engram serve --transport http` on the Neo4j backend: the HTTP transport's
# call threads, suspended connections and sessions in front of the real
# store (the same checks as the stdio client test).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"
mcp_need_neo4j
mcp_need_node
exec node "$here/sdk_client.mjs" "$ENGRAM_BIN" neo4j http
