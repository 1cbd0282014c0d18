#!/usr/bin/env bash
# docs_tools.test.sh - docs/tools.md is exactly what scripts/gen-tools-doc.py
# makes from the tool definitions (src/mcp/tools/*.json), its hand-written
# parts (docs/tools.intro.md, docs/tools.notes.md) and real calls against
# this build's `engram serve --backend memory`.  A definition, a result shape
# or a note changed without regenerating the page fails here, with the diff;
# the fix is `scripts/gen-tools-doc.py` after a build.
set -euo pipefail
: "${ENGRAM_BIN:?ENGRAM_BIN must point at the engram binary}"
root="${ENGRAM_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
command -v python3 >/dev/null || { echo "FAIL: python3 is needed to generate docs/tools.md" >&2; exit 1; }
exec python3 "$root/scripts/gen-tools-doc.py" --engram "$ENGRAM_BIN" --check
