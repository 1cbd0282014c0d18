#!/usr/bin/env bash
# What one large JSON-RPC message costs the HTTP server (issue 14, finding
# 3): a 15 MiB message must not cost more than 3 times its size.  The body
# is parsed once (no second parse in the server core, no deep copy of the
# arguments) and a message of many tiny values is refused by the pre-scan
# before jansson builds a tree 30-80 times its size.  Each case runs on a
# fresh server; the cost is VmHWM after the request minus VmRSS before it.
set -euo pipefail
# A failed command (a curl that could not connect) must say where, not end the test silently.
trap 'echo "FAIL: http_memory.test.sh line $LINENO: exit $?" >&2' ERR
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"
command -v curl >/dev/null || { echo "skipped: curl not installed"; exit 77; }
command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 1; }
dir="$(mktemp -d)"
trap 'kill "$mcp_http_pid" 2>/dev/null || true; wait "$mcp_http_pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
fails=0 checks=0
kb() { awk -v k="$2:" '$1==k{print $2}' "/proc/$1/status"; }
# cost NAME FILE EXPECT: post FILE to a fresh server, check the answer contains EXPECT and the cost
cost() {
  local name=$1 file=$2 want=$3 size before after out
  # ASan (make test's build) keeps freed blocks in a quarantine that is not engram's memory
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8" mcp_start_http
  local url="http://127.0.0.1:$mcp_http_port/mcp"
  curl -s -o /dev/null -X POST "$url" -H 'Content-Type: application/json' -d '{"jsonrpc":"2.0","id":0,"method":"ping"}'
  before=$(kb "$mcp_http_pid" VmRSS)
  size=$(stat -c %s "$file")
  out="$(curl -s -X POST "$url" -H 'Content-Type: application/json' -H 'MCP-Protocol-Version: 2026-07-28' \
    -H 'Mcp-Method: tools/call' -H 'Mcp-Name: open_nodes' --data-binary @"$file" | head -c 300)"
  after=$(kb "$mcp_http_pid" VmHWM)
  kill "$mcp_http_pid"; wait "$mcp_http_pid" 2>/dev/null || true
  local grow=$(((after - before) * 1024))
  checks=$((checks + 2))
  if ! grep -q "$want" <<<"$out"; then echo "FAIL: $name: answer lacks '$want': $out" >&2; fails=$((fails + 1)); fi
  if ((grow > 3 * size)); then
    echo "FAIL: $name: a $((size >> 20)) MiB message cost $((grow >> 20)) MiB (more than 3 times its size)" >&2
    fails=$((fails + 1))
  fi
  echo "mcp-http-memory: $name message_mb=$((size >> 20)) cost_mb=$((grow >> 20))"
}
python3 - "$dir" <<'PY'
import sys
d = sys.argv[1]
meta = '"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}'
head = '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"open_nodes",' + meta + ',"arguments":{"names":['
# 900 names of 16 KiB: a large message of the ordinary shape
with open(f"{d}/names.json", "w") as f:
    f.write(head + ",".join('"%04d%s"' % (i, "n" * 16380) for i in range(900)) + "]}}}")
# 7.5 million zeros: the same size in tiny values (worst case for a parser)
with open(f"{d}/tiny.json", "w") as f:
    f.write(head + ",".join(["0"] * 7_500_000) + "]}}}")
PY
cost "large names" "$dir/names.json" '"id":2,"result"'
cost "tiny values" "$dir/tiny.json" 'too many JSON values'
echo "mcp-http-memory: checks=$checks failures=$fails"
[[ $fails -eq 0 ]]
