#!/usr/bin/env bash
# MCP 2026-07-28 with the official TypeScript SDK v2 over stdio and
# Streamable HTTP (pinned, auto-negotiated, and legacy mode against the same
# dual-era server); see sdk_modern.mjs.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"
mcp_need_node
ENGRAM_MCP_PAGE_SIZE=7 mcp_start_http
node "$here/sdk_modern.mjs" "$ENGRAM_BIN" "http://127.0.0.1:$mcp_http_port/mcp"
