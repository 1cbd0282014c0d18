#!/usr/bin/env bash
# The Streamable HTTP server under hostile clients (security review of
# issue 14): `engram serve --transport http` with a bearer token, attacked
# with 15 MiB unauthenticated uploads, 1,000 connections that never finish
# their headers, and endless chunked bodies (hostile_http.py).  Each attack
# must fail while an authenticated client is still served within 1 s and
# the server's RSS stays under 200 MB.  Bounded: about 30 s.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../mcp/lib.sh"
command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 1; }
# 1,000 attack sockets on our side: raise the soft descriptor limit.
ulimit -n 4096 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [[ "$(ulimit -n)" != unlimited && "$(ulimit -n)" -lt 2100 ]]; then
  echo "the open-file hard limit ($(ulimit -Hn)) is too low for 1,000 connections" >&2
  exit 1
fi
tokfile="$(mktemp)"
token="hostile-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
printf '%s\n' "$token" >"$tokfile"
# Under AddressSanitizer (make test's build) freed blocks wait in a 256 MB
# quarantine, which would count against the RSS bound without being
# engram's memory: keep it small.
# Under ThreadSanitizer every byte has shadow memory: scale the bound.
if "$ENGRAM_BIN" --version | grep -q 'sanitize=[a-z,]*thread'; then export HOSTILE_RSS_FACTOR=4; fi
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8" ENGRAM_MCP_TOKEN_FILE="$tokfile" mcp_start_http
trap 'kill "$mcp_http_pid" 2>/dev/null || true; wait "$mcp_http_pid" 2>/dev/null || true; rm -f "$tokfile"' EXIT
timeout 180 python3 "$here/hostile_http.py" "$mcp_http_pid" "$mcp_http_port" "$token"
kill -0 "$mcp_http_pid" # still alive after everything
