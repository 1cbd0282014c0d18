// Driver of migrate_memento.test.sh: memento-mcp writes a graph, engram
// migrates it, engram serves it.  Prints
//   migrate-memento: names=N entities=N history=N relations=N checks=N failures=N
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { execFileSync } from "node:child_process";

const [bin, mementoEntry, driverPath, uri, user, password] = process.argv.slice(2);
const { default: neo4j } = await import(driverPath);
let failures = 0, checks = 0;
const check = (ok, msg) => { checks++; if (!ok) { failures++; console.error(`FAIL: ${msg}`); } };
const neoEnv = { NEO4J_URI: uri, NEO4J_USERNAME: user, NEO4J_PASSWORD: password };

async function connect(command, args, extraEnv) {
  const transport = new StdioClientTransport({ command, args, env: { ...process.env, ...neoEnv, ...extraEnv },
    stderr: "ignore" });
  const client = new Client({ name: "engram-migrate-test", version: "1.0.0" });
  await client.connect(transport);
  return client;
}
async function call(client, name, args) {
  const res = await client.callTool({ name, arguments: args });
  if (res.isError) throw new Error(`${name}: ${JSON.stringify(res.content)}`);
  if (res.structuredContent) return res.structuredContent;
  const text = res.content?.[0]?.text ?? "null";
  try { return JSON.parse(text); } catch { return text; } // memento answers some calls with a sentence
}
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

// ---- 1. memento writes ----
const meta = { source: "migrate-test", createdAt: Date.now(), updatedAt: Date.now() };
const memento = await connect(process.execPath, [mementoEntry], { MOCK_EMBEDDINGS: "true", DEBUG: "false" });
// memento initialises its schema asynchronously at start
await sleep(1500);
await call(memento, "create_entities", { entities: [
  { name: "Ada", entityType: "person", observations: ["wrote the first program"] },
  { name: "Engine", entityType: "machine", observations: ["mechanical computer", "never finished"] },
  { name: "Babbage", entityType: "person", observations: ["designed the engine"] }] });
await call(memento, "create_relations", { relations: [
  // memento's Cypher needs every relation field as a parameter
  { from: "Ada", to: "Engine", relationType: "programmed", strength: 0.9, confidence: 0.95, metadata: meta },
  { from: "Babbage", to: "Engine", relationType: "designed", strength: 0.9, confidence: 0.95, metadata: meta }] });
await sleep(5);
await call(memento, "add_observations", { observations: [{ entityName: "Ada", contents: ["translated Menabrea"] }] });
await sleep(5);
await call(memento, "update_relation", { relation: { from: "Babbage", to: "Engine", relationType: "designed",
  strength: 0.5, confidence: 0.95, metadata: meta } });
await sleep(5);
await call(memento, "delete_observations", { deletions: [{ entityName: "Engine", observations: ["mechanical computer"] }] });
await memento.close();

// memento's race: two live nodes named Twin (its constraint cannot stop it)
const driver = neo4j.driver(uri, neo4j.auth.basic(user, password));
const session = driver.session();
await session.run(`CREATE (:Entity {id: randomUUID(), name: 'Twin', entityType: 'thing', observations: '["older twin"]',
  version: 1, createdAt: 1000, updatedAt: 1000, validFrom: 1000}),
  (:Entity {id: randomUUID(), name: 'Twin', entityType: 'thing', observations: '["newer twin"]',
  version: 1, createdAt: 2000, updatedAt: 2000, validFrom: 2000})`);
const before = (await session.run(
  "MATCH (e:Entity) RETURN count(e) AS n, sum(CASE WHEN e.validTo IS NULL THEN 1 ELSE 0 END) AS live")).records[0];
console.error(`memento wrote ${before.get("n")} entity nodes (${before.get("live")} live)`);

// ---- 2. migrate ----
const run = (...args) => JSON.parse(execFileSync(bin, ["migrate", "memento", ...args, "--json"], {
  env: { ...process.env, ...neoEnv, MOCK_EMBEDDINGS: "true", ENGRAM_LOG_LEVEL: "warning" } }).toString().trim());
const plan = run("--dry-run");
check(plan.names === 4 && plan.duplicateNames === 1 && plan.conflicts === 0,
  `dry run: ${JSON.stringify(plan)}`);
const unchanged = (await session.run("MATCH (e:Entity) WHERE e.namespace IS NULL RETURN count(e) AS n")).records[0].get("n");
check(Number(unchanged) === Number(before.get("n")), "the dry run changed nothing");
const mig = run();
console.error(`migrate: ${JSON.stringify(mig)}`);
// jobs: one per entity and one per live observation record (Ada 2, Engine, Babbage, Twin)
check(mig.names === 4 && mig.entities === 4 && mig.duplicates === 1 && mig.jobs === 9, `migrate entities: ${JSON.stringify(mig)}`);
// records: Ada 2, Engine 2 (one closed), Babbage 1, Twin 2 (the older twin's closed)
check(mig.observationRecords === 7, `observation records: ${JSON.stringify(mig)}`);
check(mig.relations === 2 && mig.relationHistory >= 1, `migrate relations: ${JSON.stringify(mig)}`);
const again = run();
check(again.names === 0 && again.relationships === 0 && again.jobs === 0, `second run does nothing: ${JSON.stringify(again)}`);
const left = (await session.run(`MATCH (e:Entity) WHERE e.namespace IS NULL RETURN count(e) AS a`)).records[0].get("a");
check(Number(left) === 0, `no memento entity node left (${left})`);
const phantom = (await session.run(`MATCH (:EntityVersion)-[r:RELATES_TO]-() RETURN count(r) AS n`)).records[0].get("n");
check(Number(phantom) === 0, `no relationship left on history nodes (${phantom})`);
const copies = (await session.run(`MATCH (h:EntityVersion) WHERE h.observations IS NOT NULL RETURN count(h) AS n`))
  .records[0].get("n");
check(Number(copies) === 0, `no version keeps a copy of its list (${copies})`);
await session.close();
await driver.close();

// ---- 3. engram serves it ----
const engram = await connect(bin, ["serve"], { MOCK_EMBEDDINGS: "true", ENGRAM_LOG_LEVEL: "warning" });
const g = await call(engram, "read_graph", {});
const byName = Object.fromEntries(g.entities.map((e) => [e.name, e]));
check(JSON.stringify(Object.keys(byName).sort()) === JSON.stringify(["Ada", "Babbage", "Engine", "Twin"]),
  `live entities: ${Object.keys(byName)}`);
check(JSON.stringify(byName.Ada?.observations) === JSON.stringify(["wrote the first program", "translated Menabrea"]),
  `Ada's observations: ${JSON.stringify(byName.Ada?.observations)}`);
check(JSON.stringify(byName.Engine?.observations) === JSON.stringify(["never finished"]),
  `Engine's observations: ${JSON.stringify(byName.Engine?.observations)}`);
check(JSON.stringify(byName.Twin?.observations) === JSON.stringify(["newer twin"]), "the newest twin wins");
const rels = g.relations.map((r) => `${r.from}-${r.relationType}->${r.to}`).sort();
check(JSON.stringify(rels) === JSON.stringify(["Ada-programmed->Engine", "Babbage-designed->Engine"]),
  `live relations: ${rels}`);
const designed = g.relations.find((r) => r.relationType === "designed");
check(designed?.strength === 0.5, `update_relation's strength survives: ${designed?.strength}`);
for (const [name, n] of [["Ada", 2], ["Engine", 2], ["Twin", 2], ["Babbage", 1]]) {
  const h = await call(engram, "get_entity_history", { entityName: name });
  check(h.history.length === n, `${name} has ${h.history.length} versions, want ${n}`);
}
const rh = await call(engram, "get_relation_history", { from: "Babbage", to: "Engine", relationType: "designed" });
check(rh.history.length >= 2 && rh.history[rh.history.length - 1].strength === 0.5,
  `designed history: ${JSON.stringify(rh.history.map((x) => x.strength))}`);
// engram keeps working on the migrated graph
await call(engram, "add_observations", { observations: [{ entityName: "Ada", contents: ["born 1815"] }] });
const h3 = await call(engram, "get_entity_history", { entityName: "Ada" });
check(h3.history.length === 3, `a change after migration adds version 3 (${h3.history.length})`);
// the in-server workers embed the migrated entities; semantic search finds them
let emb = null;
for (let i = 0; i < 120 && !emb; i++) {
  const r = await engram.callTool({ name: "get_entity_embedding", arguments: { entity_name: "Babbage" } });
  if (!r.isError && r.structuredContent && r.structuredContent.stale === false) emb = r.structuredContent;
  else await sleep(250);
}
if (!emb) {
  const r = await engram.callTool({ name: "get_entity_embedding", arguments: { entity_name: "Babbage" } });
  console.error(`get_entity_embedding: ${JSON.stringify(r.structuredContent ?? r.content)}`);
  console.error(`queue_status: ${JSON.stringify((await engram.callTool({ name: "queue_status", arguments: {} })).structuredContent)}`);
  console.error(`debug_embedding_config: ${JSON.stringify((await engram.callTool({ name: "debug_embedding_config", arguments: {} })).structuredContent)}`);
}
check(emb !== null, "Babbage got a current embedding from the queued job");
const s = await call(engram, "semantic_search", { query: "designed the engine", hybrid_search: false, min_similarity: 0, limit: 3 });
check(s.entities?.[0]?.name === "Babbage", `semantic search: ${s.entities?.map((e) => e.name)}`);
await engram.close();

console.log(`migrate-memento: names=${mig.names} entities=${mig.entities} history=${mig.history} ` +
  `relations=${mig.relations} relation_history=${mig.relationHistory} checks=${checks} failures=${failures}`);
process.exit(failures ? 1 : 0);
