#!/usr/bin/env bash
# `engram serve --transport http`: status codes and headers of the
# Streamable HTTP transport (sessions, Origin check, protocol-version
# header, GET/DELETE, notifications, framing errors; the 2026-07-28 era's
# session-less requests and header validation), driven with curl.
set -euo pipefail
# A step that fails outside `expect` ends the test (set -e): say which.
trap 'echo "FAIL: http.test.sh line $LINENO: exit $?" >&2' ERR
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"
command -v curl >/dev/null || { echo "skipped: curl not installed"; exit 77; }
hdr="$(mktemp)"
mcp_start_http
port=$mcp_http_port
url="http://127.0.0.1:$port/mcp"
trap 'kill "$mcp_http_pid" 2>/dev/null || true; wait "$mcp_http_pid" 2>/dev/null || true; rm -f "$hdr"' EXIT
fails=0 checks=0
json='Content-Type: application/json'
expect() { # name expected actual
  checks=$((checks + 1))
  if [[ "$2" != "$3" ]]; then echo "FAIL: $1: expected $2, got $3" >&2; fails=$((fails + 1)); fi
}
# raw HOST PORT HEADER-LINE...: send a request's headers only (no body byte
# follows) and print the status the server answers within 2 s, or "none".
# A server that waits for the body before checking the headers says none.
raw() {
  local h=$1 p=$2 line=""
  shift 2
  exec 5<>"/dev/tcp/$h/$p"
  printf '%s\r\n' "$@" "" >&5
  IFS= read -r -t 2 line <&5 || true
  exec 5<&- 5>&-
  line=${line%$'\r'}
  if [[ "$line" =~ ^HTTP/1\.[01]\ ([0-9]{3}) ]]; then echo "${BASH_REMATCH[1]}"; else echo none; fi
}
post() { curl -s -o /dev/null -w '%{http_code}' -X POST "$url" -H 'Content-Type: application/json' \
  -H 'Accept: application/json, text/event-stream' "$@"; }

init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'
body="$(curl -s -D "$hdr" -X POST "$url" -H 'Content-Type: application/json' -d "$init")"
sid="$(awk 'tolower($1)=="mcp-session-id:"{print $2}' "$hdr" | tr -d '\r')"
expect "session id issued" 64 "${#sid}"
expect "initialize result" 1 "$(grep -c '"protocolVersion":"2025-11-25"' <<<"$body")"
expect "initialized notification" 202 "$(post -H "MCP-Session-Id: $sid" -d '{"jsonrpc":"2.0","method":"notifications/initialized"}')"
expect "tools/list" 200 "$(post -H "MCP-Session-Id: $sid" -H 'MCP-Protocol-Version: 2025-11-25' -d '{"jsonrpc":"2.0","id":2,"method":"tools/list"}')"
expect "missing session" 400 "$(post -d '{"jsonrpc":"2.0","id":3,"method":"ping"}')"
expect "unknown session" 404 "$(post -H 'MCP-Session-Id: nope' -d '{"jsonrpc":"2.0","id":3,"method":"ping"}')"
expect "foreign Origin" 403 "$(post -H "MCP-Session-Id: $sid" -H 'Origin: http://evil.example' -d '{"jsonrpc":"2.0","id":4,"method":"ping"}')"
expect "loopback Origin" 200 "$(post -H "MCP-Session-Id: $sid" -H 'Origin: http://localhost:6274' -d '{"jsonrpc":"2.0","id":5,"method":"ping"}')"
expect "unsupported protocol version" 400 "$(post -H "MCP-Session-Id: $sid" -H 'MCP-Protocol-Version: 1999-01-01' -d '{"jsonrpc":"2.0","id":6,"method":"ping"}')"
expect "parse error" 400 "$(post -d '{oops')"
expect "GET stream" 405 "$(curl -s -o /dev/null -w '%{http_code}' "$url")"
expect "other path" 404 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/other" -d '{}')"
big="$(head -c $((17 * 1024 * 1024)) /dev/zero | tr '\0' 'a')"
expect "body over 16 MiB" 413 "$(printf '{"x":"%s"}' "$big" | post -H "MCP-Session-Id: $sid" --data-binary @-)"
# A chunked body has no length to refuse up front: it is cut at the cap and the connection closed.
# (curl reports 000, or 100 when the 100 Continue was the last status it saw)
code="$(printf '{"x":"%s"}' "$big" | post -H "MCP-Session-Id: $sid" -H 'Transfer-Encoding: chunked' --data-binary @- || true)"
expect "chunked body over 16 MiB: closed without an answer" closed "$([[ $code == 000 || $code == 100 ]] && echo closed || echo "$code")"
unset big
# ---- headers decide before the body (finding 1): answers arrive with no body byte sent ----
hl=("Host: 127.0.0.1:$port" "Content-Length: 15728640")
expect "413 on Content-Length, before the body" 413 "$(raw 127.0.0.1 "$port" "POST /mcp HTTP/1.1" "Host: 127.0.0.1:$port" "$json" "Content-Length: 17825792")"
expect "415 before the body" 415 "$(raw 127.0.0.1 "$port" "POST /mcp HTTP/1.1" "${hl[@]}" "Content-Type: text/plain")"
expect "405 before the body" 405 "$(raw 127.0.0.1 "$port" "PUT /mcp HTTP/1.1" "${hl[@]}" "$json")"
expect "404 before the body" 404 "$(raw 127.0.0.1 "$port" "POST /other HTTP/1.1" "${hl[@]}" "$json")"
expect "403 (Origin) before the body" 403 "$(raw 127.0.0.1 "$port" "POST /mcp HTTP/1.1" "${hl[@]}" "$json" "Origin: http://evil.example")"
expect "a refusal closes the connection" 1 "$(curl -s -D - -o /dev/null -X POST "$url" -H 'Content-Type: text/plain' -d '{}' | grep -ci '^connection: close')"
# ---- Origin parsed, Host checked, JSON required (finding 14) ----
expect "Origin with userinfo (localhost:1@evil.example)" 403 "$(post -H "MCP-Session-Id: $sid" -H 'Origin: http://localhost:1@evil.example' -d '{"jsonrpc":"2.0","id":40,"method":"ping"}')"
expect "Origin https://[::1]" 200 "$(post -H "MCP-Session-Id: $sid" -H 'Origin: https://[::1]' -d '{"jsonrpc":"2.0","id":41,"method":"ping"}')"
expect "Origin http://127.0.0.1:6274" 200 "$(post -H "MCP-Session-Id: $sid" -H 'Origin: http://127.0.0.1:6274' -d '{"jsonrpc":"2.0","id":42,"method":"ping"}')"
expect "Origin with a path" 403 "$(post -H "MCP-Session-Id: $sid" -H 'Origin: http://localhost/x' -d '{"jsonrpc":"2.0","id":43,"method":"ping"}')"
expect "Origin localhost.evil.example" 403 "$(post -H "MCP-Session-Id: $sid" -H 'Origin: http://localhost.evil.example' -d '{"jsonrpc":"2.0","id":44,"method":"ping"}')"
expect "Origin null" 403 "$(post -H "MCP-Session-Id: $sid" -H 'Origin: null' -d '{"jsonrpc":"2.0","id":45,"method":"ping"}')"
expect "Host of another name on a loopback bind (DNS rebinding)" 403 "$(post -H "MCP-Session-Id: $sid" -H 'Host: evil.example:8765' -d '{"jsonrpc":"2.0","id":46,"method":"ping"}')"
expect "Host localhost" 200 "$(post -H "MCP-Session-Id: $sid" -H "Host: localhost:$port" -d '{"jsonrpc":"2.0","id":47,"method":"ping"}')"
expect "Content-Type missing" 415 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url" -H 'Content-Type:' -H "MCP-Session-Id: $sid" --data-binary '{"jsonrpc":"2.0","id":48,"method":"ping"}')"
expect "Content-Type text/plain" 415 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url" -H 'Content-Type: text/plain' -H "MCP-Session-Id: $sid" -d '{"jsonrpc":"2.0","id":49,"method":"ping"}')"
expect "Content-Type with a charset" 200 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url" -H 'Content-Type: Application/JSON; charset=utf-8' -H "MCP-Session-Id: $sid" -d '{"jsonrpc":"2.0","id":50,"method":"ping"}')"
# sessions per client: tests/mcp/http_sessions.test.sh
expect "tool call" 1 "$(curl -s -X POST "$url" -H "$json" -H "MCP-Session-Id: $sid" -d '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"create_entities","arguments":{"entities":[{"name":"h","entityType":"t","observations":[]}]}}}' | grep -c '"created":\["h"\]')"
sse="$(curl -s -N -X POST "$url" -H "$json" -H "MCP-Session-Id: $sid" -H 'Accept: application/json, text/event-stream' \
  -d '{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"create_entities","arguments":{"entities":[{"name":"s1","entityType":"t","observations":[]},{"name":"s2","entityType":"t","observations":[]}]},"_meta":{"progressToken":"p9"}}}')"
expect "SSE progress events" 2 "$(grep -c '"method":"notifications/progress","params":{"progressToken":"p9"' <<<"$sse")"
expect "SSE ends with the response" 1 "$(grep '^data: ' <<<"$sse" | tail -1 | grep -c '"id":9,"result"')"
expect "no SSE without a progress token" 0 "$(curl -s -X POST "$url" -H "$json" -H "MCP-Session-Id: $sid" -H 'Accept: application/json, text/event-stream' \
  -d '{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"open_nodes","arguments":{"names":["s1"]}}}' | grep -c '^event:')"
# ---- the modern era (2026-07-28): no session, version and headers per request ----
meta='"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}'
mpost() { # method [name] body -> "code body"
  local m=$1 name=$2 b=$3
  local args=(-H "MCP-Protocol-Version: 2026-07-28" -H "Mcp-Method: $m")
  [[ -n "$name" ]] && args+=(-H "Mcp-Name: $name")
  curl -s -w ' %{http_code}' -X POST "$url" -H 'Content-Type: application/json' "${args[@]}" -d "$b"
}
out="$(mpost server/discover "" '{"jsonrpc":"2.0","id":20,"method":"server/discover","params":{'"$meta"'}}')"
expect "modern discover, no session" 200 "${out##* }"
expect "discover lists 2026-07-28 first" 1 "$(grep -c '"supportedVersions":\["2026-07-28","2025-11-25"' <<<"$out")"
expect "discover is complete and cacheable" 1 "$(grep '"resultType":"complete"' <<<"$out" | grep '"cacheScope":"public"' | grep -c '"ttlMs":')"
expect "no session minted" 0 "$(curl -s -D - -o /dev/null -X POST "$url" -H "$json" -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: server/discover' -d '{"jsonrpc":"2.0","id":21,"method":"server/discover","params":{'"$meta"'}}' | grep -ci '^mcp-session-id:')"
out="$(mpost tools/call create_entities '{"jsonrpc":"2.0","id":22,"method":"tools/call","params":{"name":"create_entities","arguments":{"entities":[{"name":"m1","entityType":"t","observations":[]}]},'"$meta"'}}')"
expect "modern tools/call" 200 "${out##* }"
expect "modern tools/call result" 1 "$(grep '"created":\["m1"\]' <<<"$out" | grep -c '"resultType":"complete"')"
out="$(mpost tools/call '=?base64?b3Blbl9ub2Rlcw==?=' '{"jsonrpc":"2.0","id":23,"method":"tools/call","params":{"name":"open_nodes","arguments":{"names":["m1"]},'"$meta"'}}')"
expect "Mcp-Name in the base64 form" 200 "${out##* }"
out="$(mpost tools/call read_graph '{"jsonrpc":"2.0","id":24,"method":"tools/call","params":{"name":"open_nodes","arguments":{"names":["m1"]},'"$meta"'}}')"
expect "Mcp-Name differs from the body" "400 -32020" "${out##* } $(grep -o '"code":-32020' <<<"$out" | cut -d: -f2)"
expect "header mismatch answers the request's id" 1 "$(grep -c '"id":24,"error"' <<<"$out")"
out="$(curl -s -w ' %{http_code}' -X POST "$url" -H "$json" -H 'MCP-Protocol-Version: 2026-07-28' -d '{"jsonrpc":"2.0","id":25,"method":"tools/list","params":{'"$meta"'}}')"
expect "Mcp-Method missing" "400 -32020" "${out##* } $(grep -o '"code":-32020' <<<"$out" | cut -d: -f2)"
out="$(curl -s -w ' %{http_code}' -X POST "$url" -H "$json" -H 'MCP-Protocol-Version: 2025-11-25' -H 'Mcp-Method: tools/list' -d '{"jsonrpc":"2.0","id":26,"method":"tools/list","params":{'"$meta"'}}')"
expect "version header differs from _meta" "400 -32020" "${out##* } $(grep -o '"code":-32020' <<<"$out" | cut -d: -f2)"
out="$(curl -s -w ' %{http_code}' -X POST "$url" -H "$json" -H 'MCP-Protocol-Version: 2027-01-01' -H 'Mcp-Method: tools/list' -d '{"jsonrpc":"2.0","id":27,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2027-01-01"}}}')"
expect "unknown version" "400 -32022" "${out##* } $(grep -o '"code":-32022' <<<"$out" | cut -d: -f2)"
expect "unknown version lists ours" 1 "$(grep -c '"supported":\["2026-07-28"' <<<"$out")"
out="$(mpost ping "" '{"jsonrpc":"2.0","id":28,"method":"ping","params":{'"$meta"'}}')"
expect "ping is gone in 2026-07-28" "404 -32601" "${out##* } $(grep -o '"code":-32601' <<<"$out" | cut -d: -f2)"
sse="$(curl -s -N -X POST "$url" -H "$json" -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2026-07-28' \
  -H 'Mcp-Method: tools/call' -H 'Mcp-Name: create_entities' \
  -d '{"jsonrpc":"2.0","id":30,"method":"tools/call","params":{"name":"create_entities","arguments":{"entities":[{"name":"p1","entityType":"t","observations":[]},{"name":"p2","entityType":"t","observations":[]}]},"_meta":{"progressToken":"p30","io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}')"
expect "modern SSE progress events" 2 "$(grep -c '"method":"notifications/progress","params":{"progressToken":"p30"' <<<"$sse")"
expect "modern SSE ends with the complete result" 1 "$(grep '^data: ' <<<"$sse" | tail -1 | grep '"id":30,"result"' | grep -c '"resultType":"complete"')"
expect "modern notification" 202 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$url" -H "$json" -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: notifications/cancelled' -d '{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":99,'"$meta"'}}')"
expect "legacy session still served" 200 "$(post -H "MCP-Session-Id: $sid" -d '{"jsonrpc":"2.0","id":29,"method":"ping"}')"

expect "DELETE session" 204 "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$url" -H "MCP-Session-Id: $sid")"
expect "after DELETE" 404 "$(post -H "MCP-Session-Id: $sid" -d '{"jsonrpc":"2.0","id":8,"method":"ping"}')"

# ---- bearer token (ENGRAM_MCP_TOKEN / ENGRAM_MCP_TOKEN_FILE, --host) ----
kill "$mcp_http_pid" 2>/dev/null; wait "$mcp_http_pid" 2>/dev/null || true
token="t0k-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
tokfile="$(mktemp)"
printf '%s\n' "$token" >"$tokfile"
# 127.0.0.2 is loopback too: --host is honoured and no token is needed there
mcp_http_host=127.0.0.2 ENGRAM_MCP_TOKEN_FILE="$tokfile" mcp_start_http
# (after mcp_start_http, which sets its own; the server may be gone by then,
# and under set -e a failing kill would become the exit status)
trap 'kill "$mcp_http_pid" 2>/dev/null || true; wait "$mcp_http_pid" 2>/dev/null || true; rm -f "$hdr" "$tokfile"' EXIT
url="http://127.0.0.2:$mcp_http_port/mcp"
expect "no token" 401 "$(post -d "$init")"
expect "WWW-Authenticate on 401" 1 "$(curl -s -D - -o /dev/null -X POST "$url" -H "$json" -d "$init" | grep -ci '^www-authenticate: bearer')"
expect "wrong token" 401 "$(post -H "Authorization: Bearer ${token}x" -d "$init")"
expect "token of another scheme" 401 "$(post -H "Authorization: Basic $token" -d "$init")"
expect "401 before the body" 401 "$(raw 127.0.0.2 "$mcp_http_port" "POST /mcp HTTP/1.1" "Host: 127.0.0.2" "$json" "Content-Length: 15728640")"
expect "401 before the path is looked at" 401 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.2:$mcp_http_port/other" -d '{}')"
expect "right token" 200 "$(post -H "Authorization: Bearer $token" -d "$init")"
# the console's page: its files hold no data and need no token; MCP still does
curl_code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
expect "console page without a token" 200 "$(curl_code "http://127.0.0.2:$mcp_http_port/console/")"
expect "console redirect" 308 "$(curl_code "http://127.0.0.2:$mcp_http_port/console")"
expect "console script" 200 "$(curl_code "http://127.0.0.2:$mcp_http_port/console/app.js")"
expect "console unknown file" 404 "$(curl_code --path-as-is "http://127.0.0.2:$mcp_http_port/console/../mcp")"
expect "console POST refused" 405 "$(curl_code -X POST "http://127.0.0.2:$mcp_http_port/console/" -d x)"
expect "console CSP" 1 "$(curl -s -D - -o /dev/null "http://127.0.0.2:$mcp_http_port/console/" | grep -ci "^content-security-policy: default-src 'none'; script-src 'self'")"
expect "console foreign Host (rebinding)" 403 "$(curl_code -H 'Host: evil.example' "http://127.0.0.2:$mcp_http_port/console/")"
expect "the page's own origin may post" 200 "$(post -H "Authorization: Bearer $token" -H "Origin: http://127.0.0.2:$mcp_http_port" -d "$init")"
expect "token not in the listing of the process" 0 "$(tr '\0' ' ' <"/proc/$mcp_http_pid/environ" | grep -c "$token" || true)"
kill "$mcp_http_pid" 2>/dev/null; wait "$mcp_http_pid" 2>/dev/null || true
# refusals: nothing is bound, so these never listen beyond loopback
out="$("$ENGRAM_BIN" serve --backend memory --transport http --host 0.0.0.0 --port 1 2>&1 >/dev/null; echo "rc=$?")"
expect "non-loopback host without a token is refused" 1 "$(grep -c 'rc=2' <<<"$out")"
expect "the refusal says why" 1 "$(grep -c 'without a bearer token' <<<"$out")"
out="$(ENGRAM_MCP_TOKEN=short "$ENGRAM_BIN" serve --backend memory --transport http --port 1 2>&1 >/dev/null; echo "rc=$?")"
expect "short token refused" 1 "$(grep -c 'at least 16 characters' <<<"$out")"
out="$("$ENGRAM_BIN" serve --backend memory --transport http --host localhost --port 1 2>&1 >/dev/null; echo "rc=$?")"
expect "host must be an IP literal" 1 "$(grep -c 'must be an IP address' <<<"$out")"
# a page budget larger than one MCP message can carry is refused (finding 8)
out="$(ENGRAM_MAX_RESPONSE_BYTES=268435456 NEO4J_URI=bolt://127.0.0.1:1 "$ENGRAM_BIN" serve --transport http --port 1 2>&1 >/dev/null; echo "rc=$?")"
expect "ENGRAM_MAX_RESPONSE_BYTES over the message cap" 1 "$(grep -c 'ENGRAM_MAX_RESPONSE_BYTES must be an integer in 1..4194304' <<<"$out")"
# ENGRAM_MCP_CONSOLE=0: no page; /console is then just another path behind the token
mcp_http_host=127.0.0.1 ENGRAM_MCP_CONSOLE=0 mcp_start_http
expect "console off" 404 "$(curl_code "http://127.0.0.1:$mcp_http_port/console/")"
kill "$mcp_http_pid" 2>/dev/null; wait "$mcp_http_pid" 2>/dev/null || true
out="$(ENGRAM_MCP_HTTP_PER_IP=0 "$ENGRAM_BIN" serve --backend memory --transport http --port 1 2>&1 >/dev/null; echo "rc=$?")"
expect "a limit of 0 is refused" 1 "$(grep -c 'ENGRAM_MCP_HTTP_PER_IP must be' <<<"$out")"

echo "mcp-http: checks=$checks failures=$fails"
[[ $fails -eq 0 ]]
