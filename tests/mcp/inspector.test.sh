#!/usr/bin/env bash
# Smoke test with the MCP Inspector CLI (@modelcontextprotocol/inspector
# 0.15.0, the last release that runs on Node 20): tools/list and a
# tools/call round trip against `engram serve` over stdio.  Runs on the
# memory backend, and on Neo4j too when ENGRAM_TEST_NEO4J_URI is set.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"
mcp_need_node
insp="$here/node_modules/.bin/mcp-inspector"
run_id="$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
name="inspector-$run_id"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

check() { # backend, env...
  local backend="$1"; shift
  local envs=(-e "ENGRAM_NAMESPACE=mcp-inspector-$run_id" "$@")
  timeout 120 "$insp" --cli "${envs[@]}" "$ENGRAM_BIN" serve --backend "$backend" --method tools/list >"$out/list.json"
  timeout 120 "$insp" --cli "${envs[@]}" "$ENGRAM_BIN" serve --backend "$backend" --method tools/call \
    --tool-name create_entities \
    --tool-arg "entities=[{\"name\":\"$name\",\"entityType\":\"test\",\"observations\":[\"seen by the inspector\"]}]" \
    >"$out/call.json"
  timeout 120 "$insp" --cli "${envs[@]}" "$ENGRAM_BIN" serve --backend "$backend" --method tools/call \
    --tool-name delete_entities --tool-arg "entityNames=[\"$name\"]" >"$out/del.json"
  node - "$out" "$name" "$backend" <<'JS'
const fs = require("fs");
const [dir, name, backend] = process.argv.slice(2);
const list = JSON.parse(fs.readFileSync(`${dir}/list.json`, "utf8"));
const call = JSON.parse(fs.readFileSync(`${dir}/call.json`, "utf8"));
const del = JSON.parse(fs.readFileSync(`${dir}/del.json`, "utf8"));
const fails = [];
if (!Array.isArray(list.tools) || list.tools.length < 24) fails.push(`tools/list returned ${list.tools?.length} tools`);
if (call.isError) fails.push(`tools/call isError: ${JSON.stringify(call.content)}`);
if (!call.structuredContent?.entities?.some((e) => e.name === name)) fails.push("created entity not in structuredContent");
if (!call.content?.some((c) => c.type === "text")) fails.push("no text content");
if (!del.structuredContent?.deleted) fails.push("cleanup failed");
// the memory backend keeps nothing between processes: the delete finds nothing there
if (backend === "neo4j" && !del.structuredContent.deleted.includes(name)) fails.push("entity not persisted across processes");
for (const f of fails) console.error(`FAIL: ${f}`);
console.log(`mcp-inspector: backend=${backend} tools=${list.tools?.length} calls=2 failures=${fails.length}`);
process.exit(fails.length ? 1 : 0);
JS
}

check memory
if [[ -n "${ENGRAM_TEST_NEO4J_URI:-}" ]]; then
  # the inspector takes the server's environment as arguments (-e): pass the
  # password as a file, so that no command line shows it
  pwfile="$(mktemp)"
  trap 'rm -rf "$out" "$pwfile"' EXIT
  printf '%s\n' "${ENGRAM_TEST_NEO4J_PASSWORD:-}" >"$pwfile"
  check neo4j -e "NEO4J_URI=$ENGRAM_TEST_NEO4J_URI" -e "NEO4J_USERNAME=${ENGRAM_TEST_NEO4J_USER:-neo4j}" \
    -e "NEO4J_PASSWORD_FILE=$pwfile" -e MOCK_EMBEDDINGS=true
fi
