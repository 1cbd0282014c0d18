#!/usr/bin/env bash
# demo.sh - the end of `make run`: a real MCP client drives `engram serve`
# over stdio (see tools/demo/demo.mjs).  Expects NEO4J_URI/USERNAME/PASSWORD.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec node "$root/tools/demo/demo.mjs" "$root/build/engram"
