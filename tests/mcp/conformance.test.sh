#!/usr/bin/env bash
# The official MCP conformance suite (@modelcontextprotocol/conformance
# 0.1.13, the last release that runs on Node 20) against
# `engram serve --transport http` (memory backend).  The scenarios that
# apply to a tools-only server: initialize, ping, logging/setLevel,
# tools/list and DNS-rebinding protection.  (The other scenarios assume the
# "everything" reference server's tools, resources and prompts.)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"
mcp_need_node
mcp_start_http
port=$mcp_http_port
passed=0 failed=0
for sc in server-initialize ping logging-set-level tools-list dns-rebinding-protection; do
  if out="$(timeout 120 "$here/node_modules/.bin/conformance" server --url "http://127.0.0.1:$port/mcp" --scenario "$sc" 2>&1)" \
     && grep -q ", 0 failed" <<<"$out"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $sc" >&2
    echo "$out" >&2
  fi
done
echo "mcp-conformance: scenarios=$((passed + failed)) passed=$passed failed=$failed"
[[ $failed -eq 0 ]]
