#!/usr/bin/env bash
# The official MCP TypeScript SDK against `engram serve --backend memory`
# (no database needed): every tool listed, called and its structuredContent
# validated against its outputSchema.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"
mcp_need_node
exec node "$here/sdk_client.mjs" "$ENGRAM_BIN" memory
