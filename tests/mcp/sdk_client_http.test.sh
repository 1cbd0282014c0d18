#!/usr/bin/env bash
# The official MCP TypeScript SDK over Streamable HTTP
# (StreamableHTTPClientTransport) against `engram serve --transport http`
# on the memory backend: the same checks as the stdio client test.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"
mcp_need_node
exec node "$here/sdk_client.mjs" "$ENGRAM_BIN" memory http
