// sdk_modern.mjs - the MCP 2026-07-28 era against `engram serve` with the
// official TypeScript SDK v2 (@modelcontextprotocol/client), which speaks
// it: no initialize, the version and capabilities in every request's
// _meta, server/discover.  Over stdio and Streamable HTTP, with the version
// pinned (modern only: fails if the server is not modern) and with 'auto'
// (probe with server/discover, fall back to initialize only on a legacy
// answer), then the v2 client in its default legacy mode against the same
// server: a dual-era server serves both.
//
// usage: node sdk_modern.mjs <engram-binary> <http-url>
// Prints: mcp-modern: connections=N calls=N failures=N
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { randomBytes } from "node:crypto";

const [bin, url] = process.argv.slice(2);
if (!bin || !url) {
  console.error("usage: node sdk_modern.mjs <engram> <http-url>");
  process.exit(2);
}
let failures = 0, calls = 0, connections = 0;
const fail = (m) => { failures++; console.error(`FAIL: ${m}`); };
const env = { ...process.env, ENGRAM_MCP_PAGE_SIZE: "7", ENGRAM_LOG_LEVEL: "warning" };

async function exercise(label, mode, transport, wantEra) {
  const c = new Client({ name: "engram-modern-test", version: "1" }, { versionNegotiation: { mode } });
  await c.connect(transport);
  connections++;
  const era = c.getProtocolEra();
  if (era !== wantEra) fail(`${label}: era ${era}, want ${wantEra}`);
  if (wantEra === "modern") {
    if (c.getNegotiatedProtocolVersion() !== "2026-07-28")
      fail(`${label}: negotiated ${c.getNegotiatedProtocolVersion()}`);
    const d = c.getDiscoverResult();
    if (!d?.supportedVersions?.includes("2026-07-28") || !d.supportedVersions.includes("2025-11-25"))
      fail(`${label}: discover versions ${JSON.stringify(d?.supportedVersions)}`);
    if (!d?.capabilities?.tools) fail(`${label}: discover has no tools capability`);
  }
  // every page (page size 7): the cursor works the same in both eras
  let tools = [], cursor;
  do {
    const page = await c.listTools(cursor ? { cursor } : {});
    tools = tools.concat(page.tools);
    cursor = page.nextCursor;
  } while (cursor);
  if (tools.length < 20 || !tools.some((t) => t.name === "semantic_search"))
    fail(`${label}: ${tools.length} tools`);
  const name = `modern-${randomBytes(4).toString("hex")}`;
  const made = await c.callTool({ name: "create_entities", arguments: { entities: [{ name, entityType: "t", observations: ["o1"] }] } });
  calls++;
  if (made.isError || made.structuredContent?.entities?.[0]?.name !== name)
    fail(`${label}: create_entities ${JSON.stringify(made).slice(0, 200)}`);
  const opened = await c.callTool({ name: "open_nodes", arguments: { names: [name] } });
  calls++;
  if (opened.isError || !JSON.stringify(opened.structuredContent).includes('"o1"'))
    fail(`${label}: open_nodes ${JSON.stringify(opened).slice(0, 200)}`);
  const bad = await c.callTool({ name: "create_entities", arguments: { entities: "nope" } });
  calls++;
  if (!bad.isError) fail(`${label}: invalid arguments not reported as a tool error`);
  let unknown = false;
  try {
    const r = await c.callTool({ name: "no_such_tool", arguments: {} });
    unknown = r.isError === true;
  } catch {
    unknown = true;
  }
  calls++;
  if (!unknown) fail(`${label}: unknown tool accepted`);
  await c.close();
}

const stdio = () => new StdioClientTransport({ command: bin, args: ["serve", "--backend", "memory"], env, stderr: "ignore" });
const http = () => new StreamableHTTPClientTransport(new URL(url));
try {
  await exercise("stdio pinned", { pin: "2026-07-28" }, stdio(), "modern");
  await exercise("stdio auto", "auto", stdio(), "modern");
  await exercise("stdio legacy", "legacy", stdio(), "legacy");
  await exercise("http pinned", { pin: "2026-07-28" }, http(), "modern");
  await exercise("http auto", "auto", http(), "modern");
  await exercise("http legacy", "legacy", http(), "legacy");
} catch (e) {
  fail(`unexpected: ${e?.stack ?? e}`);
}
console.log(`mcp-modern: connections=${connections} calls=${calls} failures=${failures}`);
process.exit(failures ? 1 : 0);
