#!/usr/bin/env bash
# HTTP sessions per client (issue 14, finding 13): a client cannot evict
# another client's sessions, and no active session is ever evicted.  Runs
# a server with small limits (8 sessions, 4 per address, active for 1 s
# after a request) and clients on three loopback addresses.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"
command -v curl >/dev/null || { echo "skipped: curl not installed"; exit 77; }
ENGRAM_MCP_HTTP_SESSIONS=8 ENGRAM_MCP_HTTP_SESSIONS_PER_CLIENT=4 ENGRAM_MCP_HTTP_SESSION_ACTIVE=1 mcp_start_http
url="http://127.0.0.1:$mcp_http_port/mcp"
fails=0 checks=0
expect() { # name expected actual
  checks=$((checks + 1))
  if [[ "$2" != "$3" ]]; then echo "FAIL: $1: expected $2, got $3" >&2; fails=$((fails + 1)); fi
}
init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'
# new ADDRESS -> "status session-id"
new() {
  local h code sid
  h="$(curl -s -D - -o /dev/null --interface "$1" -X POST "$url" -H 'Content-Type: application/json' -d "$init")"
  code="$(head -1 <<<"$h" | awk '{print $2}')"
  sid="$(awk 'tolower($1)=="mcp-session-id:"{print $2}' <<<"$h" | tr -d '\r')"
  echo "$code $sid"
}
ping() { # SESSION -> status
  curl -s -o /dev/null -w '%{http_code}' -X POST "$url" -H 'Content-Type: application/json' -H "MCP-Session-Id: $1" \
    -d '{"jsonrpc":"2.0","id":2,"method":"ping"}'
}
read -r code a <<<"$(new 127.0.0.1)"
expect "client A's session" 200 "$code"
b=()
for i in 1 2 3 4; do
  read -r code sid <<<"$(new 127.0.0.2)"
  expect "client B's session $i" 200 "$code"
  b+=("$sid")
done
read -r code _ <<<"$(new 127.0.0.2)"
expect "B's fifth while its four are active: refused, nothing evicted" 503 "$code"
expect "B's first still served" 200 "$(ping "${b[0]}")"
sleep 1.3 # B's sessions (and A's) become inactive
read -r code _ <<<"$(new 127.0.0.2)"
expect "B's fifth once its sessions are inactive" 200 "$code"
expect "B's least recently used session was retired" 404 "$(ping "${b[1]}")"
expect "B's recently used session kept" 200 "$(ping "${b[0]}")"
expect "A's session untouched by B" 200 "$(ping "$a")"
# the table (8) now holds A 1 + B 4; C fills it and is then refused: nobody else's session goes
sleep 1.3
for i in 1 2 3; do
  read -r code _ <<<"$(new 127.0.0.3)"
  expect "client C's session $i" 200 "$code"
done
read -r code _ <<<"$(new 127.0.0.3)"
expect "table full of other clients' sessions: refused" 503 "$code"
expect "A's inactive session survives a full table" 200 "$(ping "$a")"
expect "B's sessions survive a full table" 200 "$(ping "${b[0]}")"
# a client that opens session after session (70, more than any table here) evicts nobody else's
for i in $(seq 70); do
  curl -s -o /dev/null --interface 127.0.0.4 -X POST "$url" -H 'Content-Type: application/json' -d "$init"
done
expect "A's session survives another client's 70 initializes" 200 "$(ping "$a")"
expect "B's session survives another client's 70 initializes" 200 "$(ping "${b[0]}")"
echo "mcp-http-sessions: checks=$checks failures=$fails"
[[ $fails -eq 0 ]]
