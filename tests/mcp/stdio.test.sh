#!/usr/bin/env bash
# `engram serve` over real pipes: framing, exit on EOF after answering,
# stdout purity, and hostile input (garbage, invalid UTF-8, deep nesting, a
# line over the 16 MiB cap) answered with JSON-RPC errors without stopping.
set -euo pipefail
: "${ENGRAM_BIN:?}"
command -v node >/dev/null || { echo "skipped: node not installed"; exit 77; }
exec node - "$ENGRAM_BIN" <<'JS'
const { spawnSync } = require("child_process");
const bin = process.argv[2];
const fails = [];
const req = (id, method, params) => JSON.stringify({ jsonrpc: "2.0", id, method, ...(params ? { params } : {}) });
const init = req(1, "initialize", { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } });
const parts = [
  Buffer.from(init + "\n"),
  Buffer.from('{"jsonrpc":"2.0","method":"notifications/initialized"}\n'),
  Buffer.from("{oops\n"),                                               // -32700
  Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":3,"method":"p'), Buffer.from([0xff, 0xfe]), Buffer.from('"}\n')]), // -32700
  Buffer.from('{"jsonrpc":"2.0","id":4,"method":"x","params":{"a":' + "[".repeat(5000) + "]".repeat(5000) + "}}\n"), // -32600
  Buffer.from('{"jsonrpc":"2.0","id":5,"method":"ping","params":{"pad":"' + "a".repeat(17 * 1024 * 1024) + '"}}\n'), // too large
  Buffer.from(req(6, "ping") + "\r\n"),                                 // CRLF tolerated
  Buffer.from("\n   \n"),                                                // blank lines ignored
  Buffer.from(req(7, "tools/call", { name: "create_entities", arguments: { entities: [{ name: "a", entityType: "t", observations: "[\"x\"]" }] } }) + "\n"),
  // tool calls run concurrently on the worker pool, so the last message must not depend on id 7
  Buffer.from(req(8, "tools/list")), // last line without newline
];
const r = spawnSync(bin, ["serve", "--backend", "memory"], { input: Buffer.concat(parts), maxBuffer: 64 << 20, timeout: 60000 });
if (r.status !== 0) fails.push(`exit status ${r.status} signal ${r.signal}`);
const lines = r.stdout.toString("utf8").split("\n").filter((l) => l.length);
const msgs = [];
for (const l of lines) {
  try { msgs.push(JSON.parse(l)); } catch { fails.push(`stdout line is not JSON: ${l.slice(0, 80)}`); }
}
const byId = new Map(msgs.filter((m) => m.id !== undefined && m.id !== null).map((m) => [m.id, m]));
const nullErrs = msgs.filter((m) => m.id === null).map((m) => m.error?.code);
if (byId.get(1)?.result?.protocolVersion !== "2025-06-18") fails.push("initialize");
if (nullErrs.filter((c) => c === -32700).length !== 2) fails.push(`parse errors: ${JSON.stringify(nullErrs)}`);
// deep nesting and the oversized line are refused before parsing, so their ids are unknown (null)
if (nullErrs.filter((c) => c === -32600).length !== 2) fails.push(`deep/oversized not answered with -32600: ${JSON.stringify(nullErrs)}`);
if (byId.has(4)) fails.push("deeply nested message was processed");
if (byId.has(5)) fails.push("oversized line was processed");
if (!byId.get(6)?.result) fails.push("ping after hostile input");
if (byId.get(7)?.result?.structuredContent?.created?.[0] !== "a") fails.push(`create_entities: ${JSON.stringify(byId.get(7))}`);
if (!(byId.get(8)?.result?.tools?.length >= 24)) fails.push("last line without newline not served");
if (!/serving MCP on stdio/.test(r.stderr.toString())) fails.push("no log on stderr");
for (const f of fails) console.error("FAIL: " + f);
console.log(`mcp-stdio: messages=${msgs.length} failures=${fails.length}`);
process.exit(fails.length ? 1 : 0);
JS
