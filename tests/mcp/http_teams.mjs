// http_teams.mjs - many teams on one HTTP server, on the Neo4j backend.
//
// usage: node http_teams.mjs <engram-binary>
//
// `engram serve --transport http` with a tokens file (ENGRAM_MCP_TOKENS_FILE):
// token A may write namespace A, token B namespace B, token R may read both.
// 50 clients (25 per team token) run at once, each through the official SDK:
// create, add, search, open (its own entity and the other team's), read the
// graph, and one call naming the other team's namespace.  Every call must
// answer; nothing may cross between the namespaces; the cross-namespace
// call, the read-only token's write and another token's session must be
// refused.  Prints "http-teams: clients=N calls=N refused=N failures=N ms=N".
import { startServeHttp } from "./serve_http.mjs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const bin = process.argv[2];
if (!bin) { console.error("usage: node http_teams.mjs <engram>"); process.exit(2); }
const CLIENTS = 50;
const run = randomBytes(4).toString("hex");
const nsA = `teams-a-${run}`, nsB = `teams-b-${run}`;
const tok = { A: randomBytes(20).toString("hex"), B: randomBytes(20).toString("hex"), R: randomBytes(20).toString("hex") };
const dir = mkdtempSync(join(tmpdir(), "engram-teams-"));
const tokensFile = join(dir, "tokens.json");
writeFileSync(tokensFile, JSON.stringify({ tokens: [
  { name: "team-a", token: tok.A, namespaces: [nsA], write: true },
  { name: "team-b", token: tok.B, namespaces: [nsB], write: true },
  { name: "audit", token: tok.R, namespaces: [nsA, nsB] },
] }), { mode: 0o600 });

let failures = 0, calls = 0, refused = 0;
const fail = (m) => { failures++; console.error(`FAIL: ${m}`); };

const env = {
  ...process.env,
  NEO4J_URI: process.env.ENGRAM_TEST_NEO4J_URI,
  NEO4J_USERNAME: process.env.ENGRAM_TEST_NEO4J_USER ?? "neo4j",
  NEO4J_PASSWORD: process.env.ENGRAM_TEST_NEO4J_PASSWORD,
  ENGRAM_NAMESPACE: `teams-none-${run}`, // in no grant: each token falls back to its first namespace
  ENGRAM_MCP_TOKENS_FILE: tokensFile,
  // every client comes from 127.0.0.1, as behind a proxy
  ENGRAM_MCP_HTTP_PER_IP: "512",
  ENGRAM_MCP_HTTP_SESSIONS_PER_CLIENT: "256",
  ENGRAM_LOG_LEVEL: "warning",
};
delete env.ENGRAM_MCP_TOKEN;
delete env.ENGRAM_MCP_TOKEN_FILE;

const started = await startServeHttp(bin, ["--backend", "neo4j", "--workers", "1"], env);
if (!started) { console.error("FAIL: engram serve did not start"); process.exit(1); }
const { child, port } = started;
process.on("exit", () => { child.kill("SIGTERM"); rmSync(dir, { recursive: true, force: true }); });
const url = new URL(`http://127.0.0.1:${port}/mcp`);

async function connectAs(t, name) {
  const transport = new StreamableHTTPClientTransport(url, { requestInit: { headers: { Authorization: `Bearer ${t}` } } });
  const client = new Client({ name, version: "1.0.0" });
  await client.connect(transport);
  return { client, transport };
}
async function call(c, name, args) {
  calls++;
  const r = await c.client.callTool({ name, arguments: args });
  return r;
}
const names = (r) => (r.structuredContent?.entities ?? []).map((e) => e.name);
const text = (r) => r.content?.[0]?.text ?? "";

// an unknown token never gets in
const anon = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json", Authorization: "Bearer not-a-token-at-all-000" },
  body: JSON.stringify({ jsonrpc: "2.0", id: 0, method: "ping" }) });
if (anon.status !== 401) fail(`an unknown token got HTTP ${anon.status}, want 401`);

const t0 = Date.now();
async function teamClient(i) {
  const team = i % 2 ? "B" : "A";
  const own = team === "A" ? nsA : nsB, other = team === "A" ? nsB : nsA;
  const me = `${team}-client-${i}`, peer = `${team === "A" ? "B" : "A"}-client-${i ^ 1}`;
  const c = await connectAs(tok[team], me);
  try {
    let r = await call(c, "create_entities", { entities: [{ name: me, entityType: "agent", observations: [`secret plan of team ${team} number ${i}`] }] });
    if (r.isError) fail(`${me} create: ${text(r)}`);
    r = await call(c, "add_observations", { observations: [{ entityName: me, contents: [`second note of team ${team}`] }] });
    if (r.isError) fail(`${me} add: ${text(r)}`);
    r = await call(c, "search_nodes", { query: "secret plan" });
    if (r.isError) fail(`${me} search: ${text(r)}`);
    for (const n of names(r)) if (!n.startsWith(`${team}-`)) fail(`${me} search saw ${n} of the other team`);
    r = await call(c, "open_nodes", { names: [me, peer] });
    const got = names(r);
    if (!got.includes(me)) fail(`${me} cannot open itself`);
    if (got.includes(peer)) fail(`${me} opened ${peer} of the other team`);
    r = await call(c, "read_graph", {});
    for (const n of names(r)) if (!n.startsWith(`${team}-`)) fail(`${me} read_graph saw ${n}`);
    r = await call(c, "read_graph", { namespace: other });
    if (!r.isError || !/not open to this token/.test(text(r))) fail(`${me} read the other namespace: ${text(r).slice(0, 200)}`);
    else refused++;
    r = await call(c, "queue_status", { namespace: own });
    if (r.isError) fail(`${me} queue_status: ${text(r)}`);
    return c;
  } catch (e) {
    fail(`${me}: ${e.message}`);
    return c;
  }
}
const clients = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => teamClient(i)));

// a session belongs to the token that made it
const sidA = clients[0].transport.sessionId;
const hijack = await fetch(url, { method: "POST",
  headers: { "Content-Type": "application/json", Accept: "application/json, text/event-stream", Authorization: `Bearer ${tok.B}`,
    "MCP-Session-Id": sidA, "MCP-Protocol-Version": "2025-06-18" },
  body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/call", params: { name: "read_graph", arguments: {} } }) });
if (hijack.status !== 404) fail(`token B using token A's session got HTTP ${hijack.status}, want 404`);
else refused++;

// the read-only token sees both teams, apart, and writes nowhere
const ro = await connectAs(tok.R, "audit");
for (const [ns, team] of [[nsA, "A"], [nsB, "B"]]) {
  const r = await call(ro, "read_graph", { namespace: ns, limit: 100 });
  const ns_names = names(r);
  if (ns_names.length !== CLIENTS / 2) fail(`audit sees ${ns_names.length} entities in ${team}, want ${CLIENTS / 2}`);
  for (const n of ns_names) if (!n.startsWith(`${team}-`)) fail(`namespace ${team} holds ${n}`);
}
let r = await call(ro, "create_entities", { namespace: nsA, entities: [{ name: "intruder", entityType: "x", observations: [] }] });
if (!r.isError || !/may only read/.test(text(r))) fail(`the read-only token wrote: ${text(r).slice(0, 200)}`);
else refused++;

// clean up: each team deletes its own entities
for (const [team, ns] of [["A", nsA], ["B", nsB]]) {
  const c = clients[team === "A" ? 0 : 1];
  const all = Array.from({ length: CLIENTS }, (_, i) => i).filter((i) => (i % 2 ? "B" : "A") === team).map((i) => `${team}-client-${i}`);
  r = await call(c, "delete_entities", { entityNames: all });
  if (r.isError) fail(`cleanup ${team}: ${text(r)}`);
}
await Promise.all(clients.map((c) => c.transport.terminateSession().catch(() => {})));
await ro.transport.terminateSession().catch(() => {});
console.log(`http-teams: clients=${CLIENTS} calls=${calls} refused=${refused} failures=${failures} ms=${Date.now() - t0}`);
process.exit(failures ? 1 : 0);
