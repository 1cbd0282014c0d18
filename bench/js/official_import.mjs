// official_import.mjs - the anchor of `bench/run import`: the same
// memory.jsonl fed to the official memory server through its own tools,
// create_entities then create_relations in batches, over stdio with the
// official SDK client, its memory in a fresh file.
//
// usage: node official_import.mjs FILE BATCH MAX_SECONDS
// Prints one JSON line: {"entities":N,"relations":N,"seconds":S,"entities_s":R,"stopped":null|why}
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { createReadStream, mkdtempSync, rmSync } from "node:fs";
import { createInterface } from "node:readline";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { createRequire } from "node:module";

const [file, batchArg, maxArg] = process.argv.slice(2);
const batch = Number(batchArg ?? 500), maxSeconds = Number(maxArg ?? 600);
const require = createRequire(import.meta.url);
const pkg = require.resolve("@modelcontextprotocol/server-memory/package.json");
const server = join(dirname(pkg), require(pkg).bin?.["mcp-server-memory"] ?? "dist/index.js");
const dir = mkdtempSync(join(tmpdir(), "official-memory-"));
const transport = new StdioClientTransport({ command: process.execPath, args: [server],
  env: { ...process.env, MEMORY_FILE_PATH: join(dir, "memory.jsonl") }, stderr: "ignore" });
const client = new Client({ name: "engram-bench-import", version: "1.0.0" });
await client.connect(transport);

let entities = 0, relations = 0, stopped = null;
const t0 = performance.now();
const elapsed = () => (performance.now() - t0) / 1000;
async function send(tool, key, items) {
  const r = await client.callTool({ name: tool, arguments: { [key]: items } }, undefined, { timeout: 600000 });
  if (r.isError) throw new Error(`${tool}: ${r.content?.[0]?.text}`);
}
// entities first, then relations, as engram import does
for (const pass of ["entity", "relation"]) {
  let buf = [];
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  for await (const line of rl) {
    if (stopped) break;
    if (!line.trim()) continue;
    const r = JSON.parse(line);
    if (r.type !== pass) continue;
    delete r.type;
    buf.push(r);
    if (buf.length >= batch) {
      await send(pass === "entity" ? "create_entities" : "create_relations", pass === "entity" ? "entities" : "relations", buf);
      if (pass === "entity") entities += buf.length; else relations += buf.length;
      buf = [];
      if (elapsed() > maxSeconds) stopped = `passed ${maxSeconds} s`;
    }
  }
  if (buf.length && !stopped) {
    await send(pass === "entity" ? "create_entities" : "create_relations", pass === "entity" ? "entities" : "relations", buf);
    if (pass === "entity") entities += buf.length; else relations += buf.length;
  }
}
const seconds = elapsed();
await client.close();
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ entities, relations, seconds: Number(seconds.toFixed(2)),
  entities_s: Number((entities / seconds).toFixed(1)), stopped }));
