// console.mjs - the console in a real browser (issue #18 item 4).
//
// usage: node console.mjs <engram-binary> <artifacts-dir>
//
// Starts `engram serve --transport http` on the test Neo4j with a bearer
// token, the suite's embedding provider and no in-server workers, seeds a memory
// through the official MCP SDK (entities, relations, an entity changed
// twice), embeds it with a standalone `engram worker --drain`, and makes one
// job die: a worker whose provider (an OpenAI-compatible fake on loopback,
// same model name and dimensions) answers 400.  Then it drives Debian's
// Chromium through Playwright:
//   log in (a wrong token first), keyword / semantic / hybrid search with
//   scores and marked observations, open an entity (observations, relations,
//   history timeline, the graph drawn by cytoscape, a click on a neighbour),
//   the queue page (counts, throughput, health, the dead job and its error),
//   retry the dead job and see it complete.
// Every request the page makes must go to the server's own origin, and no
// Content-Security-Policy violation or page error may happen.  Screenshots
// go to <artifacts-dir>.  Prints "console-browser: checks=N failures=N".
import { startServeHttp } from "../mcp/serve_http.mjs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { chromium } from "playwright-core";
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { join } from "node:path";

const [bin, artifacts] = process.argv.slice(2);
if (!bin || !artifacts) { console.error("usage: node console.mjs <engram> <artifacts-dir>"); process.exit(2); }
mkdirSync(artifacts, { recursive: true });
const run = randomBytes(4).toString("hex");
const ns = `console-${run}`;
const token = randomBytes(20).toString("hex");
let checks = 0, failures = 0;
const check = (ok, what) => { checks++; if (!ok) { failures++; console.error(`FAIL: ${what}`); } };
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

// ---- a provider that refuses everything (HTTP 400: a permanent error) ----
const refuser = createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    res.writeHead(400, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ error: { message: "input rejected by the test provider", type: "invalid_request_error" } }));
  });
});
await new Promise((ok) => refuser.listen(0, "127.0.0.1", ok));

// ---- the server ----
const env = {
  ...process.env,
  NEO4J_URI: process.env.ENGRAM_TEST_NEO4J_URI,
  NEO4J_USERNAME: process.env.ENGRAM_TEST_NEO4J_USER ?? "neo4j",
  NEO4J_PASSWORD: process.env.ENGRAM_TEST_NEO4J_PASSWORD,
  ENGRAM_NAMESPACE: ns,
  ENGRAM_QUEUE_NAME: `console-${run}`,
  ENGRAM_MCP_TOKEN: token,
  ENGRAM_CHANGED_BY: "console-test",
  ENGRAM_LOG_LEVEL: "warning",
};
// The suite's provider (scripts/test.sh: the n-gram one): a database has one
// vector index, sized for it.
for (const k of ["OPENAI_API_KEY", "MOCK_EMBEDDINGS"]) delete env[k];
env.ENGRAM_EMBED_PROVIDER ??= "offline";
delete env.ENGRAM_MCP_TOKEN_FILE;
delete env.ENGRAM_MCP_TOKENS_FILE;

const started = await startServeHttp(bin, ["--backend", "neo4j", "--workers", "0"], env);
if (!started) { console.error("FAIL: engram serve did not start"); process.exit(1); }
const { child, port } = started;
let browser;
const cleanup = () => { child.kill("SIGTERM"); refuser.close(); };
process.on("exit", cleanup);
const origin = `http://127.0.0.1:${port}`;

// ---- seed through the official SDK ----
const transport = new StreamableHTTPClientTransport(new URL(`${origin}/mcp`),
  { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
const mcp = new Client({ name: "console-seed", version: "1.0.0" });
await mcp.connect(transport);
const call = async (name, args) => {
  const r = await mcp.callTool({ name, arguments: args });
  if (r.isError) throw new Error(`${name}: ${r.content?.[0]?.text}`);
  return r.structuredContent ?? JSON.parse(r.content[0].text);
};
await call("create_entities", { entities: [
  { name: "Ada Lovelace", entityType: "person", observations: ["Drinks espresso every morning", "Writes the analytical engine notes"] },
  { name: "Analytical Engine", entityType: "machine", observations: ["Designed by Charles Babbage", "Never finished in his lifetime"] },
  { name: "Charles Babbage", entityType: "person", observations: ["Mathematician and inventor"] },
  { name: "London", entityType: "city", observations: ["Capital of England"] },
  { name: "Espresso Bar", entityType: "place", observations: ["Serves the strongest espresso in London"] },
] });
await call("create_relations", { relations: [
  { from: "Ada Lovelace", to: "Analytical Engine", relationType: "wrote_about" },
  { from: "Charles Babbage", to: "Analytical Engine", relationType: "designed" },
  { from: "Ada Lovelace", to: "London", relationType: "lived_in" },
  { from: "Ada Lovelace", to: "Espresso Bar", relationType: "visits" },
] });
// two more versions of Ada: an observation added, one removed
await call("add_observations", { observations: [{ entityName: "Ada Lovelace", contents: ["Corresponded with Babbage for years"] }] });
await call("delete_observations", { deletions: [{ entityName: "Ada Lovelace", observations: ["Drinks espresso every morning"] }] });

async function waitQueue(pred, what, ms = 60000) {
  const end = Date.now() + ms;
  let st;
  while (Date.now() < end) {
    st = await call("queue_status", {});
    if (pred(st)) return st;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}: ${JSON.stringify(st?.counts)}`);
}
// A standalone worker until the queue is empty; extra: its environment.
function drain(extra) {
  return new Promise((ok, bad) => {
    const w = spawn(bin, ["worker", "--drain", "--no-health", "--concurrency", "1", "--max-seconds", "120"],
      { env: { ...env, ...extra }, stdio: ["ignore", "ignore", "pipe"] });
    w.stderr.on("data", (d) => { if (!/job dead/.test(String(d))) process.stderr.write(d); });
    w.on("exit", (code) => (code === 0 ? ok() : bad(new Error(`engram worker exited ${code}`))));
  });
}
await drain({});
await waitQueue((s) => s.counts.pending === 0 && s.counts.leased === 0 && s.counts.completed > 0, "the seed's embeddings");
const cfg = await call("debug_embedding_config", {});
// one job that dies: a worker of the same model and size whose provider refuses
// no observations: each observation record would have a job of its own (issue 13), and this
// part is about exactly one dead job
await call("create_entities", { entities: [{ name: "Rejected Note", entityType: "note", observations: [] }] });
await drain({ ENGRAM_EMBED_PROVIDER: "openai", OPENAI_API_KEY: "sk-console-test", OPENAI_EMBEDDING_MODEL: cfg.providerModel,
  OPENAI_BASE_URL: `http://127.0.0.1:${refuser.address().port}/v1`, ENGRAM_EMBED_DIMENSIONS: String(cfg.vectorDimensions) });
await waitQueue((s) => s.counts.dead === 1, "the refused job to die");
const completedBefore = (await call("queue_status", {})).counts.completed;

// ---- the browser ----
browser = await chromium.launch({
  executablePath: process.env.ENGRAM_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"], // Playwright gives it a fresh, empty profile
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const foreign = [], pageErrors = [];
page.on("request", (r) => { if (!r.url().startsWith(origin + "/") && !r.url().startsWith("data:")) foreign.push(r.url()); });
page.on("pageerror", (e) => pageErrors.push(String(e)));
// The refused logins answer 401, which Chromium logs as a failed load: expected.
page.on("console", (m) => { if (m.type() === "error" && !/status of 401/.test(m.text())) pageErrors.push(m.text()); });
const shot = (name) => page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
const timeout = { timeout: 15000 };

try {
  // log in: a wrong token is refused, the right one opens the console
  await page.goto(`${origin}/console`);
  await page.waitForSelector("#login:not([hidden])", timeout);
  check(page.url() === `${origin}/console/`, "/console redirects to /console/");
  await page.fill("#token", "wrong-token-wrong-token");
  await page.click("#login-button");
  await page.waitForFunction(() => document.getElementById("login-error").textContent.length > 0, null, timeout);
  check((await page.textContent("#login-error")).includes("Wrong token"), "a wrong token is refused");
  await shot("01-login-refused");
  await page.fill("#token", token);
  await page.click("#login-button");
  await page.waitForSelector("#search-view:not([hidden])", timeout);
  check((await page.textContent("#who")).includes(ns), "logged in, in the server's namespace");

  // keyword search: results with scores and the matched observation marked
  await page.fill("#q", "espresso");
  await page.selectOption("#mode", "keyword");
  await page.click("#search-button");
  await page.waitForSelector("#results li.result", timeout);
  const kw = await page.$$eval("#results li.result .entity-link", (as) => as.map((a) => a.textContent));
  check(kw.includes("Espresso Bar"), `keyword search finds Espresso Bar (got ${kw})`);
  check(!kw.includes("Ada Lovelace"), "keyword search does not find Ada's removed observation");
  check(await page.$$eval("#results mark", (ms) => ms.some((m) => m.textContent.toLowerCase() === "espresso")),
    "the matched observation is marked");
  check((await page.$$("#results .score")).length > 0, "keyword results carry scores");
  await shot("02-search-keyword");

  for (const mode of ["semantic", "hybrid"]) {
    await page.fill("#q", "analytical engine designer");
    await page.selectOption("#mode", mode);
    await page.click("#search-button");
    await page.waitForFunction((m) => document.getElementById("search-note").textContent.includes(`(${m})`), mode, timeout);
    const names = await page.$$eval("#results li.result .entity-link", (as) => as.map((a) => a.textContent));
    const scores = await page.$$eval("#results .score", (ss) => ss.map((s) => s.textContent));
    check(names.includes("Analytical Engine"), `${mode} search finds the Analytical Engine (got ${names})`);
    check(scores.length === names.length && scores.every((s) => /score \d/.test(s)), `${mode} results all carry scores`);
    if (mode === "hybrid") check(scores.some((s) => s.includes("vector") || s.includes("keyword")), "hybrid shows its parts");
    check((await page.textContent("#search-note")).includes(mode), `${mode}: the note names the search type`);
    await shot(`03-search-${mode}`);
  }

  // open an entity from the results: observations, relations, history, graph
  await page.fill("#q", "Lovelace");
  await page.selectOption("#mode", "keyword");
  await page.click("#search-button");
  await page.waitForSelector("#results li.result .entity-link", timeout);
  await page.click("#results .entity-link >> text=Ada Lovelace");
  await page.waitForSelector("#entity-view:not([hidden]) #history li.version", timeout);
  const obs = await page.$$eval("#observations li", (ls) => ls.map((l) => l.textContent));
  check(obs.includes("Corresponded with Babbage for years") && !obs.includes("Drinks espresso every morning"),
    `the entity shows its current observations (got ${obs})`);
  const rels = await page.$$eval("#relations tbody tr", (rs) => rs.length);
  check(rels === 3, `Ada's three relations are listed (got ${rels})`);
  const versions = await page.$$eval("#history li.version", (ls) => ls.map((l) => l.textContent));
  check(versions.length === 3, `the timeline has three versions (got ${versions.length})`);
  check(versions[1]?.includes("+ Corresponded with Babbage for years"), "version 2 shows the added observation");
  check(versions[2]?.includes("− Drinks espresso every morning"), "version 3 shows the removed observation");
  check(versions.every((v) => v.includes("by console-test")), "each version says who changed it");
  await page.waitForFunction(() => window.engramGraph && window.engramGraph.nodes > 0, null, timeout);
  const g = await page.evaluate(() => window.engramGraph);
  check(g.nodes === 4 && g.edges === 3, `the graph draws Ada and her 3 neighbours (got ${JSON.stringify(g)})`);
  check(await page.$eval("#graph canvas", (c) => c.width > 0 && c.height > 0).catch(() => false), "the graph is drawn on a canvas");
  await shot("04-entity");
  // a neighbour's page through its link
  await page.click("#relations >> text=Analytical Engine");
  await page.waitForFunction(() => document.getElementById("entity-name").textContent === "Analytical Engine", null, timeout);
  await page.waitForFunction(() => window.engramGraph && window.engramGraph.nodes === 3, null, timeout);
  check(true, "a neighbour opens with its own neighbourhood");
  await shot("05-neighbour");

  // the queue: counts, throughput, health, the dead job with its error
  await page.click("#nav-queue");
  await page.waitForSelector("#queue-view:not([hidden]) #dead tbody tr.dead-job", timeout);
  const deadRows = await page.$$eval("#dead tbody tr.dead-job", (rs) => rs.map((r) => r.textContent));
  check(deadRows.length === 1 && deadRows[0].includes("Rejected Note"), `one dead job, for Rejected Note (got ${deadRows})`);
  check(deadRows[0]?.includes("400") || deadRows[0]?.toLowerCase().includes("rejected"), "the dead job shows its error");
  const completedShown = Number(await page.textContent('#counts td[data-state="completed"]'));
  check(completedShown === completedBefore, `completed count shown (${completedShown}, tool says ${completedBefore})`);
  const bars = await page.$$eval("#throughput div", (ds) => ds.length);
  check(bars === 12, `twelve 5-minute throughput bars (got ${bars})`);
  check((await page.textContent("#throughput-note")).startsWith(`${completedBefore} embeddings`), "throughput counts the hour's completions");
  const health = await page.textContent("#health-status");
  check(health === "degraded", `health is degraded by the dead job (got ${health})`);
  check((await page.textContent("#health")).includes("no workers run inside this server"), "the page says where workers run");
  await shot("06-queue");

  // retry: the job goes back to the queue, and a worker with a working provider completes it
  await page.click("#dead button.retry");
  await page.waitForFunction(() => document.getElementById("queue-message").textContent.includes("retried 1"), null, timeout);
  check(true, "retry answered: retried 1 job");
  await drain({});
  await waitQueue((s) => s.counts.dead === 0 && s.counts.completed === completedBefore + 1, "the retried job to complete");
  await page.click("#nav-search");
  await page.click("#nav-queue");
  const after = await page.waitForFunction((n) => {
    const td = document.querySelector('#counts td[data-state="completed"]');
    return td && Number(td.textContent) === n && !document.querySelector("#dead tbody tr.dead-job");
  }, completedBefore + 1, timeout).then(() => true, () => false);
  check(after, "the retried job is completed and no dead job is left");
  check(await page.textContent("#health-status") === "ok", "health is ok again");
  await shot("07-queue-after-retry");

  // the page took nothing from elsewhere and broke no rule of its policy
  check(foreign.length === 0, `every request stayed on the server's origin (others: ${foreign})`);
  check(pageErrors.length === 0, `no page errors or CSP violations (${pageErrors})`);
  const csp = (await page.request.get(`${origin}/console/`)).headers()["content-security-policy"] || "";
  check(csp.includes("default-src 'none'") && csp.includes("script-src 'self'"), "the page is served with its CSP");
  const unauth = await page.request.post(`${origin}/mcp`, { data: { jsonrpc: "2.0", id: 1, method: "ping" } });
  check(unauth.status() === 401, "the MCP endpoint still needs the token");
} catch (e) {
  failures++;
  console.error(`FAIL: ${e.stack || e}`);
  await shot("99-failure").catch(() => {});
}
await browser.close();
await mcp.close();
console.log(`console-browser: checks=${checks} failures=${failures}`);
process.exit(failures ? 1 : 0);
