#!/usr/bin/env bash
# Many teams on one HTTP server (docs/security.md): a tokens file, 50
# concurrent SDK clients under two tokens on the Neo4j backend, nothing
# crossing between the namespaces, every call answered (http_teams.mjs).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"
mcp_need_neo4j
mcp_need_node
exec timeout 300 node "$here/http_teams.mjs" "$ENGRAM_BIN"
