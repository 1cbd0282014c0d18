#!/usr/bin/env bash
# serve_start.test.sh - what `engram serve` says at start on the Neo4j
# backend: ENGRAM_EMBED_SYNC without in-server workers cannot hold and is
# named in a warning (issue #14, found in review: it was silently off); with
# workers it is announced as synchronous mode.
set -uo pipefail
if [[ -z "${ENGRAM_TEST_NEO4J_URI:-}" ]]; then
    [[ "${ENGRAM_REQUIRE_NEO4J:-}" == 1 ]] && { echo "FAIL: ENGRAM_TEST_NEO4J_URI not set" >&2; exit 1; }
    echo "SKIP: no Neo4j" >&2
    exit 77
fi
BIN="${ENGRAM_BIN:?ENGRAM_BIN not set}"
fail() { echo "FAIL: $*" >&2; exit 1; }
export NEO4J_URI="$ENGRAM_TEST_NEO4J_URI" NEO4J_USERNAME="${ENGRAM_TEST_NEO4J_USER:-neo4j}"
export NEO4J_PASSWORD="${ENGRAM_TEST_NEO4J_PASSWORD:-}" ENGRAM_EMBED_PROVIDER=offline
export ENGRAM_NAMESPACE="serve-start-$RANDOM" ENGRAM_QUEUE_NAME="serve-start-$RANDOM"

# stdin at EOF: the server starts, finds no client input and stops
log="$(ENGRAM_EMBED_SYNC=1 "$BIN" serve --workers 0 </dev/null 2>&1 >/dev/null)" || fail "serve --workers 0 exited $?: $log"
grep -q 'WARNING.*ENGRAM_EMBED_SYNC is set but this server runs no workers' <<<"$log" ||
    fail "no warning for ENGRAM_EMBED_SYNC without workers: $log"
log="$(ENGRAM_EMBED_SYNC=1 "$BIN" serve --workers 1 </dev/null 2>&1 >/dev/null)" || fail "serve --workers 1 exited $?: $log"
grep -q 'ENGRAM_EMBED_SYNC is set but' <<<"$log" && fail "warning with workers: $log"
grep -q '(synchronous mode)' <<<"$log" || fail "synchronous mode not announced: $log"
echo "ok"
