# lib.sh - shared setup for the MCP client tests (sourced, not run).
# Installs the pinned npm packages (package.json) once; node_modules is
# gitignored.  Skips (77) when node/npm are missing.
: "${ENGRAM_BIN:?ENGRAM_BIN must point at the engram binary}"
mcp_need_node() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "skipped: node/npm not installed"
    exit 77
  fi
  if [[ ! -d "$here/node_modules/@modelcontextprotocol/sdk" || ! -d "$here/node_modules/@modelcontextprotocol/client" || ! -d "$here/node_modules/@modelcontextprotocol/inspector" || ! -d "$here/node_modules/@modelcontextprotocol/conformance" ]]; then
    (cd "$here" && npm install --no-audit --no-fund --loglevel=error >&2)
  fi
}

# mcp_start_http: start `engram serve --backend memory --transport http` on
# a random free port (sets $mcp_http_port and $mcp_http_pid; stopped on
# exit) and wait until it listens.  A port taken by someone else makes the
# server exit: another port is tried.
#
# "It listens" means this server holds the listening socket (mcp_listens),
# not that a connection to the port succeeds: another test's server, or a
# Neo4j on an ephemeral port, can hold the port while ours is still starting
# up to fail there, and under a loaded ASan pass that took longer than the
# 0.2 s the earlier probe allowed (a compatibility pass of clean-clone CI-N
# had mcp_http exit silently after 2.4 s).
mcp_start_http() { # [extra serve options...]; binds $mcp_http_host (default 127.0.0.1)
  local try i
  mcp_http_host="${mcp_http_host:-127.0.0.1}"
  for try in 1 2 3 4 5; do
    mcp_http_port=$((20000 + RANDOM % 20000))
    "$ENGRAM_BIN" serve --backend memory --transport http --host "$mcp_http_host" --port "$mcp_http_port" "$@" \
      >/dev/null 2>/dev/null &
    mcp_http_pid=$!
    trap 'kill "$mcp_http_pid" 2>/dev/null || true; wait "$mcp_http_pid" 2>/dev/null || true' EXIT
    for i in $(seq 150); do
      kill -0 "$mcp_http_pid" 2>/dev/null || break
      mcp_listens "$mcp_http_pid" "$mcp_http_port" && return 0
      sleep 0.1
    done
    kill "$mcp_http_pid" 2>/dev/null; wait "$mcp_http_pid" 2>/dev/null || true
  done
  echo "engram serve --transport http did not start" >&2
  exit 1
}

# mcp_listens PID PORT: whether process PID holds a listening TCP socket on
# PORT (IPv4 or IPv6), from /proc/net/tcp* and the process's descriptors.
mcp_listens() {
  local pid=$1 hex inode fds
  hex="$(printf ':%04X' "$2")"
  fds="$(ls -l "/proc/$pid/fd" 2>/dev/null)" || return 1
  for inode in $(awk -v p="$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { print $10 }' \
                   /proc/net/tcp /proc/net/tcp6 2>/dev/null); do
    [[ "$fds" == *"socket:[$inode]"* ]] && return 0
  done
  return 1
}

# mcp_need_neo4j: the test needs the real Neo4j that `make test` starts;
# without ENGRAM_TEST_NEO4J_URI it is skipped (77), or fails when
# ENGRAM_REQUIRE_NEO4J=1 (a broken fixture must not look green).
mcp_need_neo4j() {
  [[ -n "${ENGRAM_TEST_NEO4J_URI:-}" ]] && return 0
  if [[ "${ENGRAM_REQUIRE_NEO4J:-0}" == 1 ]]; then
    echo "ENGRAM_TEST_NEO4J_URI is not set but ENGRAM_REQUIRE_NEO4J=1" >&2
    exit 1
  fi
  echo "skipped: ENGRAM_TEST_NEO4J_URI not set"
  exit 77
}
