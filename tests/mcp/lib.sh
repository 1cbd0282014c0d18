# lib.sh - shared setup for the MCP client tests (sourced, not run).
# Installs the pinned npm packages (package.json) once; node_modules is
# gitignored.  Skips (77) when node/npm are missing.
: "${ENGRAM_BIN:?ENGRAM_BIN must point at the engram binary}"
mcp_need_node() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "skipped: node/npm not installed"
    exit 77
  fi
  if [[ ! -d "$here/node_modules/@modelcontextprotocol/sdk" || ! -d "$here/node_modules/@modelcontextprotocol/inspector" || ! -d "$here/node_modules/@modelcontextprotocol/conformance" ]]; then
    (cd "$here" && npm install --no-audit --no-fund --loglevel=error >&2)
  fi
}
