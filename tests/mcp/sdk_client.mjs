// sdk_client.mjs - drives `engram serve` over stdio with the official MCP
// TypeScript SDK: initialize, paginated tools/list, every tool called,
// every structuredContent validated against its outputSchema with ajv,
// plus error paths (invalid arguments, unknown tool), loose inputs, ping
// and logging/setLevel.  (Progress and cancellation are covered by
// tests/unit/mcp/test_server.c: the SDK dispatches notifications in a
// microtask, so a progress notification that arrives in the same read as
// the response of a fast call is reported as "unknown token".)
//
// usage: node sdk_client.mjs <engram-binary> <backend: memory|neo4j> [stdio|http]
// Prints: mcp-sdk: tools=N calls=N schema_checked=N failures=N
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { spawn } from "node:child_process";
import Ajv from "ajv";
import { randomBytes } from "node:crypto";

const [bin, backend = "memory", transportKind = "stdio"] = process.argv.slice(2);
if (!bin) {
  console.error("usage: node sdk_client.mjs <engram> <memory|neo4j>");
  process.exit(2);
}
const run = randomBytes(4).toString("hex");
const ns = `mcp-sdk-${run}`;
const A = `Ada-${run}`, B = `Engine-${run}`;

const env = { ...process.env, ENGRAM_NAMESPACE: ns, ENGRAM_MCP_PAGE_SIZE: "7", ENGRAM_LOG_LEVEL: "warning" };
if (backend === "neo4j") {
  env.NEO4J_URI = process.env.ENGRAM_TEST_NEO4J_URI;
  env.NEO4J_USERNAME = process.env.ENGRAM_TEST_NEO4J_USER ?? "neo4j";
  env.NEO4J_PASSWORD = process.env.ENGRAM_TEST_NEO4J_PASSWORD;
  env.MOCK_EMBEDDINGS = "true";
}

let failures = 0, calls = 0, checked = 0;
function fail(msg) {
  failures++;
  console.error(`FAIL: ${msg}`);
}

const ajv = new Ajv({ strict: false, allowUnionTypes: true, allErrors: true });
let transport, child, port;
// Over HTTP the server requires a bearer token (ENGRAM_MCP_TOKEN): the SDK
// client sends it through requestInit, as a real deployment would.
const token = randomBytes(24).toString("hex");
if (transportKind === "http") {
  env.ENGRAM_MCP_TOKEN = token;
  const { connect } = await import("node:net");
  const isUp = (p) => new Promise((ok) => {
    const sock = connect(p, "127.0.0.1", () => { sock.destroy(); ok(true); });
    sock.on("error", () => ok(false));
  });
  // a random port; one taken by someone else makes the server exit at once: try another
  for (let attempt = 0; attempt < 5 && !port; attempt++) {
    const p = 20000 + Math.floor(Math.random() * 20000);
    child = spawn(bin, ["serve", "--backend", backend, "--transport", "http", "--port", String(p)], {
      env, stdio: ["ignore", "ignore", "pipe"] });
    child.stderr.on("data", (d) => process.stderr.write(d));
    let exited = false;
    child.on("exit", () => (exited = true));
    // wait until the port accepts connections (logs may be silenced by ENGRAM_LOG_LEVEL)
    for (let i = 0; i < 150 && !exited; i++) {
      if (await isUp(p)) { port = p; break; }
      await new Promise((ok) => setTimeout(ok, 100));
    }
    if (!port) child.kill("SIGTERM");
  }
  if (!port) { console.error("FAIL: engram serve --transport http did not start"); process.exit(1); }
  process.on("exit", () => child.kill("SIGTERM"));
  const url = new URL(`http://127.0.0.1:${port}/mcp`);
  const anon = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 0, method: "ping" }) });
  if (anon.status !== 401) fail(`a request without the bearer token got HTTP ${anon.status}, want 401`);
  transport = new StreamableHTTPClientTransport(url, { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
} else {
  transport = new StdioClientTransport({ command: bin, args: ["serve", "--backend", backend], env, stderr: "inherit" });
}
const client = new Client({ name: "engram-sdk-test", version: "1.0.0" });
await client.connect(transport);

const sv = client.getServerVersion();
if (sv?.name !== "engram") fail(`serverInfo.name = ${sv?.name}`);
if (!client.getServerCapabilities()?.tools) fail("no tools capability");

// tools/list, following nextCursor (page size 7 forces several pages)
const tools = [];
let cursor, pages = 0;
do {
  const page = await client.listTools(cursor ? { cursor } : {});
  tools.push(...page.tools);
  cursor = page.nextCursor;
  pages++;
} while (cursor && pages < 50);
if (pages < 2) fail(`expected several tools/list pages, got ${pages}`);
const byName = new Map(tools.map((t) => [t.name, t]));
if (byName.size !== tools.length) fail("duplicate tool names");
const memento = ["create_entities", "create_relations", "add_observations", "delete_entities", "delete_observations",
  "delete_relations", "get_relation", "update_relation", "read_graph", "search_nodes", "open_nodes", "semantic_search",
  "get_entity_embedding", "get_entity_history", "get_relation_history", "get_graph_at_time", "get_decayed_graph",
  "force_generate_embedding", "debug_embedding_config", "diagnose_vector_search"];
for (const n of [...memento, "hybrid_search", "queue_status", "queue_list_jobs", "queue_retry_dead"])
  if (!byName.has(n)) fail(`missing tool ${n}`);
const validators = new Map();
for (const t of tools) {
  if (!t.description || t.description.length < 20) fail(`${t.name}: no useful description`);
  if (t.inputSchema?.type !== "object") fail(`${t.name}: inputSchema.type`);
  if (!t.outputSchema) { fail(`${t.name}: no outputSchema`); continue; }
  const a = t.annotations ?? {};
  if (typeof a.readOnlyHint !== "boolean" || a.openWorldHint !== false) fail(`${t.name}: annotations`);
  if (a.readOnlyHint && a.destructiveHint) fail(`${t.name}: read-only and destructive`);
  try {
    ajv.compile(t.inputSchema);
    validators.set(t.name, ajv.compile(t.outputSchema));
  } catch (e) {
    fail(`${t.name}: schema does not compile: ${e.message}`);
  }
}

const called = new Set();
async function call(name, args, { expectError = false, opts = {} } = {}) {
  calls++;
  called.add(name);
  let res;
  try {
    res = await client.callTool({ name, arguments: args }, undefined, opts);
  } catch (e) {
    fail(`${name}: threw ${e.message}`);
    return null;
  }
  if (expectError) {
    if (!res.isError) fail(`${name}: expected isError, got ${JSON.stringify(res).slice(0, 200)}`);
    return res;
  }
  if (res.isError) {
    fail(`${name}: isError: ${res.content?.[0]?.text}`);
    return null;
  }
  const sc = res.structuredContent;
  const v = validators.get(name);
  if (!sc || !v) fail(`${name}: no structuredContent`);
  else {
    checked++;
    if (!v(sc)) fail(`${name}: structuredContent violates outputSchema: ${ajv.errorsText(v.errors)}`);
    const text = res.content?.find((c) => c.type === "text")?.text;
    try {
      if (JSON.stringify(JSON.parse(text)) !== JSON.stringify(sc)) fail(`${name}: text differs from structuredContent`);
    } catch {
      fail(`${name}: text block is not the JSON`);
    }
  }
  return sc;
}

await client.ping();
await client.setLoggingLevel("warning");

let progress = 0;
let sc = await call("create_entities", {
  entities: [
    { name: A, entityType: "person", observations: ["wrote the first computer program", "mathematician"] },
    // loose input a real client sends: observations as a JSON string (memento #118)
    { name: B, entityType: "machine", observations: JSON.stringify(["analytical engine", "designed by Babbage"]) },
  ],
}, { opts: { onprogress: () => progress++ } });
// Over HTTP a call with a progress token is answered as an SSE stream, so the
// notifications reach the client before the response (the memory backend
// reports one step per entity).
if (transportKind === "http" && backend === "memory" && progress < 2) fail(`expected 2 progress notifications, got ${progress}`);
if (sc && sc.created?.length !== 2) fail(`create_entities created ${JSON.stringify(sc?.created)}`);
await call("create_relations", { relations: [{ from: A, to: B, relationType: "programmed", strength: "0.8", confidence: 0.9 }] });
await call("add_observations", { observations: [{ entityName: A, contents: ["born 1815"] }] });
await call("delete_observations", { deletions: [{ entityName: A, observations: ["born 1815"] }] });
sc = await call("get_relation", { from: A, to: B, relationType: "programmed" });
if (sc && !sc.found) fail("get_relation did not find the relation");
await call("update_relation", { relation: { from: A, to: B, relationType: "programmed", confidence: 0.7 } });
await call("read_graph", {});
sc = await call("search_nodes", { query: "first computer" });
if (sc && !sc.entities?.some((e) => e.name === A)) fail("search_nodes did not find the entity");
await call("open_nodes", { names: [A, B] });
await call("force_generate_embedding", { entity_name: A });
// Without a name: backfill (entities without a current vector, bounded by limit).
sc = await call("force_generate_embedding", { limit: 5 });
if (sc && !(Array.isArray(sc.entities) && sc.entities.length <= 5)) fail(`backfill reported ${JSON.stringify(sc)}`);
// embeddings may be produced asynchronously: wait a little for one
let emb = null;
for (let i = 0; i < 40 && !emb; i++) {
  const r = await client.callTool({ name: "get_entity_embedding", arguments: { entity_name: A } });
  if (!r.isError) emb = r;
  else await new Promise((ok) => setTimeout(ok, 250));
}
await call("get_entity_embedding", { entity_name: A }, { expectError: !emb });
await call("semantic_search", { query: "computer program", min_similarity: 0, limit: "5" });
await call("hybrid_search", { query: "computer program", semantic_weight: 0.5 });
await call("get_entity_history", { entityName: A });
await call("get_relation_history", { from: A, to: B, relationType: "programmed" });
await call("get_graph_at_time", { timestamp: Date.now() });
await call("get_decayed_graph", { decay_factor: 10 });
await call("debug_embedding_config", {});
await call("diagnose_vector_search", {});
await call("queue_status", {});
await call("queue_list_jobs", { limit: 5 });
await call("queue_retry_dead", {});
await call("delete_relations", { relations: [{ from: A, to: B, relationType: "programmed" }] });
// error paths: validation failures come back as isError results that say how to fix the call
let res = await call("create_entities", { entities: [{ name: "x" }] }, { expectError: true });
if (res && !/entityType/.test(res.content?.[0]?.text ?? "")) fail("validation error does not name the missing field");
await call("open_nodes", { names: [A], bogus: 1 }, { expectError: true });
try {
  await client.callTool({ name: "no_such_tool", arguments: {} });
  fail("unknown tool did not raise a JSON-RPC error");
} catch (e) {
  if (!/no_such_tool|Unknown tool/i.test(e.message)) fail(`unknown tool error: ${e.message}`);
}
sc = await call("delete_entities", { entityNames: [A, B] });
if (sc && sc.deleted?.length !== 2) fail(`cleanup deleted ${JSON.stringify(sc?.deleted)}`);

for (const t of tools) if (!called.has(t.name)) fail(`tool ${t.name} was never called`);
if (transportKind === "http") await transport.terminateSession().catch((e) => fail(`DELETE session: ${e.message}`));
await client.close();
console.log(`mcp-sdk: transport=${transportKind} backend=${backend} tools=${tools.length} calls=${calls} schema_checked=${checked} failures=${failures}`);
process.exit(failures ? 1 : 0);
