#!/usr/bin/env bash
# The data migration to observation records (graph schema migration 12) on a
# database written by the previous engram, through the MCP tools, before and
# after (obs_migration.mjs says what is checked).  The previous engram is
# built once from git at a pinned commit into the build directory
# (prev-engram-<commit>; ENGRAM_PREV_BIN names a ready one instead).  Runs on
# a private Neo4j: the migration converts every namespace and must start
# from a database no newer engram has touched.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"
mcp_need_node
src="$(cd "$here/../.." && pwd)"
driver="$src/bench/js/node_modules/neo4j-driver/lib/index.js"
W="${ENGRAM_NEO4J_LOCAL:-$src/tools/neo4j-local/neo4j}"
need() { # what is missing: a skip, or a failure when Neo4j is required
  echo "$1" >&2
  [[ "${ENGRAM_REQUIRE_NEO4J:-0}" == 1 ]] && exit 1
  exit 77
}
[[ -f "$driver" ]] || need "neo4j-driver missing in bench/js (run scripts/setup.sh)"
command -v java >/dev/null || need "java missing"
[[ -x "$W" ]] || need "no local Neo4j launcher ($W)"

# The last engram before observation records (issue 13).
prev_commit=5b34f97c1b3853565dd549482f129123381e6fb2
prev="${ENGRAM_PREV_BIN:-}"
if [[ -z "$prev" ]]; then
  cache="${ENGRAM_BUILD_DIR:-$src/build}/prev-engram-$prev_commit"
  prev="$cache/build/engram"
  mkdir -p "$cache"
  (
    flock 9 # two test runs sharing a build directory build it once
    if [[ ! -x "$prev" ]]; then
      git -C "$src" cat-file -e "$prev_commit^{commit}" 2>/dev/null ||
        need "commit $prev_commit is not in this clone (a shallow clone?): set ENGRAM_PREV_BIN"
      rm -rf "$cache/src" "$cache/build"
      mkdir -p "$cache/src"
      git -C "$src" archive "$prev_commit" | tar -x -C "$cache/src"
      echo "building the previous engram ($prev_commit) into $cache" >&2
      cmake -S "$cache/src" -B "$cache/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null 2>&1
      cmake --build "$cache/build" -j "${ENGRAM_TEST_JOBS:-2}" --target engram >/dev/null
    fi
  ) 9>"$cache/.lock"
fi
[[ -x "$prev" ]] || { echo "the previous engram did not build ($prev)" >&2; exit 1; }

dir="$(mktemp -d "${TMPDIR:-/tmp}/engram-obsmig-test.XXXXXX")"
pw="obs-$RANDOM-$RANDOM"
trap '"$W" stop --data "$dir" --timeout 30 >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
uri="$(NEO4J_PASSWORD="$pw" "$W" start --data "$dir" --port 0 --watch-pid $$)"
node "$here/obs_migration.mjs" "$ENGRAM_BIN" "$prev" "$driver" "$uri" neo4j "$pw"
