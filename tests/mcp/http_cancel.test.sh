#!/usr/bin/env bash
# Calls end with their client (issue 14, finding 12): a tools/call whose
# client goes away - from an SSE stream or a plain JSON POST - is cancelled,
# and SIGTERM while a call runs cancels it, joins the call threads and exits
# promptly.  The memory backend's read_graph is made slow with
# ENGRAM_MEM_DELAY_MS (it logs when cancelled during the wait).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"
command -v curl >/dev/null || { echo "skipped: curl not installed"; exit 77; }
log="$(mktemp)"
fails=0 checks=0
expect() { # name expected actual
  checks=$((checks + 1))
  if [[ "$2" != "$3" ]]; then echo "FAIL: $1: expected $2, got $3" >&2; fails=$((fails + 1)); fi
}
start() {
  port=$((20000 + RANDOM % 20000))
  : >"$log"
  ENGRAM_MEM_DELAY_MS=30000 "$ENGRAM_BIN" serve --backend memory --transport http --port "$port" 2>"$log" &
  pid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "server did not start" >&2
  cat "$log" >&2
  exit 1
}
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
# wait_log PATTERN SECONDS -> 1 when the log shows it in time, else 0
wait_log() {
  for _ in $(seq $(($2 * 10))); do
    grep -q "$1" "$log" && { echo 1; return; }
    sleep 0.1
  done
  echo 0
}
url() { echo "http://127.0.0.1:$port/mcp"; }
init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'
session() {
  curl -s -D - -o /dev/null -X POST "$(url)" -H 'Content-Type: application/json' -d "$init" |
    awk 'tolower($1)=="mcp-session-id:"{print $2}' | tr -d '\r'
}
call='{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_graph","arguments":{},"_meta":{"progressToken":"p"}}}'

start
sid="$(session)"
# SSE: the stream opens with a progress event, then the client leaves after 1 s
curl -s -N --max-time 1 -X POST "$(url)" -H 'Content-Type: application/json' -H "MCP-Session-Id: $sid" \
  -H 'Accept: application/json, text/event-stream' -d "$call" >/dev/null || true
expect "SSE call cancelled when its client leaves" 1 "$(wait_log 'read_graph cancelled during' 3)"
: >"$log"
# JSON mode: the connection is suspended while the call runs; a hang-up cancels it
curl -s --max-time 1 -X POST "$(url)" -H 'Content-Type: application/json' -H "MCP-Session-Id: $sid" \
  -d '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"read_graph","arguments":{}}}' >/dev/null || true
expect "JSON call cancelled when its client leaves" 1 "$(wait_log 'read_graph cancelled during' 3)"
: >"$log"
# the server still serves after both
expect "still serving" 200 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$(url)" -H 'Content-Type: application/json' -H "MCP-Session-Id: $sid" -d '{"jsonrpc":"2.0","id":3,"method":"ping"}')"

# SIGTERM while a call runs: the call is cancelled and joined, the process exits 0 at once
curl -s -N --max-time 20 -X POST "$(url)" -H 'Content-Type: application/json' -H "MCP-Session-Id: $sid" \
  -H 'Accept: application/json, text/event-stream' -d "$call" >/dev/null &
cpid=$!
sleep 1
t0=$(date +%s%N)
kill -TERM "$pid"
rc=0
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then rc=timeout; kill -KILL "$pid"; fi
wait "$pid" 2>/dev/null || rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
expect "exit status after SIGTERM during a call" 0 "$rc"
expect "exits within 3 s of SIGTERM during a call" 1 "$((ms < 3000))"
expect "the running call was cancelled at shutdown" 1 "$(grep -c 'read_graph cancelled during' "$log")"
kill "$cpid" 2>/dev/null || true
wait "$cpid" 2>/dev/null || true

echo "mcp-http-cancel: checks=$checks failures=$fails"
[[ $fails -eq 0 ]]
