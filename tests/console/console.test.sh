#!/usr/bin/env bash
# The console in a real browser (console.mjs): Debian's Chromium driven by
# Playwright against `engram serve --transport http` on the test Neo4j.
# Screenshots are kept in $ENGRAM_TEST_ARTIFACTS/console (default: the build
# directory's test-artifacts/console).  Skipped (77) without Chromium, Node
# or Neo4j, unless CI=true or ENGRAM_REQUIRE_BROWSER=1: then a missing
# browser is a failure (scripts/test.sh installs it).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${ENGRAM_BIN:?ENGRAM_BIN must point at the engram binary}"
source "$here/../mcp/lib.sh"
mcp_need_neo4j
chromium="${ENGRAM_CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$chromium" ]] || ! command -v node >/dev/null; then
  if [[ "${CI:-}" == true || "${ENGRAM_REQUIRE_BROWSER:-0}" == 1 ]]; then
    echo "no Chromium at $chromium (or no node): scripts/setup.sh with ENGRAM_SETUP_BROWSER=1 installs it" >&2
    exit 1
  fi
  echo "skipped: no Chromium at $chromium"
  exit 77
fi
if [[ ! -d "$here/node_modules/playwright-core" || ! -d "$here/node_modules/@modelcontextprotocol/sdk" ]]; then
  (cd "$here" && npm install --no-package-lock --no-audit --no-fund --loglevel=error >&2)
fi
artifacts="${ENGRAM_TEST_ARTIFACTS:-$(dirname "$ENGRAM_BIN")/test-artifacts}/console"
exec timeout 300 node "$here/console.mjs" "$ENGRAM_BIN" "$artifacts"
