#!/usr/bin/env bash
# serve_start.test.sh - what `engram serve` says at start on the Neo4j
# backend: ENGRAM_EMBED_SYNC without in-server workers cannot hold and is
# named in a warning (issue #14, found in review: it was silently off); with
# workers it is announced as synchronous mode.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export ENGRAM_NAMESPACE="serve-start-$RANDOM" ENGRAM_QUEUE_NAME="serve-start-$RANDOM"

# stdin at EOF: the server starts, finds no client input and stops
log="$(ENGRAM_EMBED_SYNC=1 "$BIN" serve --workers 0 </dev/null 2>&1 >/dev/null)" || fail "serve --workers 0 exited $?: $log"
grep -q 'WARNING.*ENGRAM_EMBED_SYNC is set but this server runs no workers' <<<"$log" ||
    fail "no warning for ENGRAM_EMBED_SYNC without workers: $log"
log="$(ENGRAM_EMBED_SYNC=1 "$BIN" serve --workers 1 </dev/null 2>&1 >/dev/null)" || fail "serve --workers 1 exited $?: $log"
grep -q 'ENGRAM_EMBED_SYNC is set but' <<<"$log" && fail "warning with workers: $log"
grep -q '(synchronous mode)' <<<"$log" || fail "synchronous mode not announced: $log"

# A tokens file (docs/security.md) that others may read, or that is
# malformed, stops the HTTP server before it listens; it cannot be combined
# with the single token.
tdir="$(mktemp -d)"
trap 'rm -rf "$tdir"' EXIT
printf '{"tokens":[{"token":"0123456789abcdef0123","namespaces":["a"],"write":true}]}' >"$tdir/tokens.json"
chmod 644 "$tdir/tokens.json"
log="$(ENGRAM_MCP_TOKENS_FILE="$tdir/tokens.json" "$BIN" serve --transport http --port 1 </dev/null 2>&1)"
[[ $? == 2 ]] || fail "a world-readable tokens file was accepted: $log"
grep -q 'chmod 600' <<<"$log" || fail "no reason for the refused tokens file: $log"
grep -q '0123456789abcdef0123' <<<"$log" && fail "the token was printed: $log"
chmod 600 "$tdir/tokens.json"
log="$(ENGRAM_MCP_TOKENS_FILE="$tdir/tokens.json" ENGRAM_MCP_TOKEN=another-token-0123456789 "$BIN" serve --transport http --port 1 </dev/null 2>&1)"
[[ $? == 2 ]] || fail "tokens file and single token together were accepted: $log"
printf '{"tokens":[{"token":"short","namespaces":["a"]}]}' >"$tdir/tokens.json"
log="$(ENGRAM_MCP_TOKENS_FILE="$tdir/tokens.json" "$BIN" serve --transport http --port 1 </dev/null 2>&1)"
[[ $? == 2 ]] || fail "a malformed tokens file was accepted: $log"
grep -q 'entry 1 needs a "token" of at least 16' <<<"$log" || fail "no reason for the malformed tokens file: $log"
echo "ok"
