// Driver of obs_migration.test.sh: the data migration to observation records
// (graph schema migration 12) on a database written by the previous engram,
// through the MCP tools, before and after.
//
//   1. the previous engram (no observation records) writes a history through
//      create_entities, add/delete_observations, delete_entities and
//      create_relations, and answers get_entity_history, get_graph_at_time
//      (at every version's start and just before it), open_nodes, read_graph;
//   2. the new engram starts (`engram serve` applies migration 12) and must
//      answer the same, byte for byte once canonicalised;
//   3. in the database: one record per (observation, interval) with the
//      intervals the history implies, no :EntityVersion copy left, obsSeq
//      set, an embedding job per live record;
//   4. re-running converts nothing; an entity put back as unconverted (a
//      crash between batches) is converted alone on the next run;
//   (and: an entity whose live list disagrees with its history gets the live
//   list for its current version; a live entity without history gets records)
//   5. a change after the migration keeps history right;
//   6. an entity half converted (changed by an engram with records before
//      this migration ran) is rebuilt with its whole history.
//
// usage: node obs_migration.mjs <new engram> <previous engram> <neo4j-driver> <uri> <user> <password>
// Prints: obs-migration: entities=N records=N checks=N failures=N
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { execFileSync, spawnSync } from "node:child_process";

const [bin, prevBin, driverPath, uri, user, password] = process.argv.slice(2);
const { default: neo4j } = await import(driverPath);
let failures = 0, checks = 0;
const check = (ok, msg) => { checks++; if (!ok) { failures++; console.error(`FAIL: ${msg}`); } };
const ns = "obsmig";
const env = { ...process.env, NEO4J_URI: uri, NEO4J_USERNAME: user, NEO4J_PASSWORD: password, ENGRAM_NAMESPACE: ns,
  ENGRAM_EMBED_PROVIDER: "offline", MOCK_EMBEDDINGS: "true", ENGRAM_LOG_LEVEL: "info" };
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

let lastStderr = "";
async function connect(command, namespace = ns) {
  // no in-server workers: the jobs the migration queues stay in the queue to be counted
  const transport = new StdioClientTransport({ command, args: ["serve", "--workers", "0"],
    env: { ...env, ENGRAM_NAMESPACE: namespace }, stderr: "pipe" });
  lastStderr = "";
  transport.stderr?.on("data", (d) => { lastStderr += d.toString(); });
  const client = new Client({ name: "engram-obs-migration-test", version: "1.0.0" });
  await client.connect(transport);
  return client;
}
async function call(client, name, args) {
  const res = await client.callTool({ name, arguments: args });
  if (res.isError) throw new Error(`${name}: ${JSON.stringify(res.content)}`);
  return res.structuredContent ?? JSON.parse(res.content?.[0]?.text ?? "null");
}
// Answers compared as canonical JSON: keys sorted, timings dropped.
function canon(v) {
  if (Array.isArray(v)) return v.map(canon);
  if (v && typeof v === "object") {
    const o = {};
    for (const k of Object.keys(v).sort()) if (k !== "timeTaken") o[k] = canon(v[k]);
    return o;
  }
  return v;
}
const same = (a, b) => JSON.stringify(canon(a)) === JSON.stringify(canon(b));

// ---- 1. the previous engram writes ----
const prev = await connect(prevBin);
const step = async (name, args) => { const r = await call(prev, name, args); await sleep(3); return r; };
await step("create_entities", { entities: [
  { name: "Ada", entityType: "person", observations: ["wrote the first program", "met Babbage in 1833"] },
  { name: "Engine", entityType: "machine", observations: ["mechanical computer", "never finished"] },
  { name: "Babbage", entityType: "person", observations: ["designed the engine"] },
  { name: "Draft", entityType: "note", observations: ["to be thrown away"] },
  { name: "Empty", entityType: "note", observations: [] }] });
await step("create_relations", { relations: [
  { from: "Ada", to: "Engine", relationType: "programmed" }, { from: "Babbage", to: "Engine", relationType: "designed" }] });
await step("add_observations", { observations: [{ entityName: "Ada", contents: ["translated Menabrea", "born 1815"] }] });
await step("delete_observations", { deletions: [{ entityName: "Ada", observations: ["met Babbage in 1833"] }] });
await step("add_observations", { observations: [{ entityName: "Draft", contents: ["second thought"] }] });
// removed, then added again: two intervals of one text
await step("add_observations", { observations: [{ entityName: "Ada", contents: ["met Babbage in 1833"] }] });
await step("delete_observations", { deletions: [{ entityName: "Engine", observations: ["mechanical computer"] }] });
await step("delete_entities", { entityNames: ["Draft"] });
// a longer history: one observation at a time
for (let i = 1; i <= 12; i++)
  await step("add_observations", { observations: [{ entityName: "Babbage", contents: [`fact ${i}`] }] });
await step("delete_observations", { deletions: [{ entityName: "Babbage", observations: ["fact 3", "fact 7"] }] });
await step("create_entities", { entities: [{ name: "Odd", entityType: "note", observations: ["x"] }] });

// Data no engram writes, but a database may hold: a live list that its
// history does not know (Odd), a live entity without history (Lonely).
const driver = neo4j.driver(uri, neo4j.auth.basic(user, password));
const session = driver.session();
const q = async (cypher, params = {}) => (await session.run(cypher, params)).records.map((r) => r.toObject());
const num = (x) => (x === null || x === undefined ? x : neo4j.isInt(x) ? x.toNumber() : x);
await q("MATCH (e:Entity {namespace: $ns, name: 'Odd'}) SET e.observations = ['x', 'y']", { ns });
await q(`CREATE (:Entity {namespace: $ns, name: 'Lonely', id: randomUUID(), entityType: 'note', observations: ['a', 'b'],
  version: 1, createdAt: timestamp(), updatedAt: timestamp(), validFrom: timestamp()})`, { ns });
const total = 7; // the five below, Odd and Lonely

const names = ["Ada", "Engine", "Babbage", "Draft", "Empty"];
async function answers(client) {
  const a = { history: {}, at: {}, open: null, read: null };
  for (const n of names) a.history[n] = await call(client, "get_entity_history", { entityName: n });
  a.open = await call(client, "open_nodes", { names: ["Ada", "Engine", "Babbage", "Empty", "Draft", "Lonely"] });
  a.read = await call(client, "read_graph", {});
  return a;
}
const before = await answers(prev);
// every version's start, the instant before it, and after the last one
const times = new Set();
for (const n of names)
  for (const h of before.history[n].history ?? []) { times.add(h.validFrom); times.add(h.validFrom - 1); }
times.add(Math.max(...times) + 10);
const sortedTimes = [...times].sort((x, y) => x - y);
for (const t of sortedTimes) before.at[t] = await call(prev, "get_graph_at_time", { timestamp: t });
check(before.history.Ada.history.length === 4, `Ada has 4 versions before (${before.history.Ada.history.length})`);
check(before.history.Draft.history.length === 2 && before.history.Draft.history[1].deleted === true,
  "Draft's history ends deleted");
await prev.close();
// an export by the previous engram: each version with its list
const exportDir = process.env.TMPDIR ?? "/tmp";
const oldExport = `${exportDir}/obsmig-old-${process.pid}.jsonl`, newExport = `${exportDir}/obsmig-new-${process.pid}.jsonl`;
execFileSync(prevBin, ["export", "--output", oldExport], { env: { ...env, ENGRAM_LOG_LEVEL: "warning" } });

const copies0 = num((await q("MATCH (h:EntityVersion {namespace: $ns}) WHERE h.observations IS NOT NULL RETURN count(h) AS n",
  { ns }))[0].n);
const versions0 = num((await q("MATCH (h:EntityVersion {namespace: $ns}) RETURN count(h) AS n", { ns }))[0].n);
check(copies0 === versions0 && versions0 > 20, `the previous engram copied every list (${copies0}/${versions0})`);
check(num((await q("MATCH (o:ObservationRecord) RETURN count(o) AS n"))[0].n) === 0, "no records before");

// ---- 2. the new engram: status, then serve (migration 12 at start) ----
const engram = (...args) => spawnSync(bin, args, { env: { ...env, ENGRAM_LOG_LEVEL: "warning" }, encoding: "utf8" });
const status = JSON.parse(engram("schema", "status", "--json").stdout);
const m12 = status.find((m) => m.id === "graph:12");
check(m12?.state === "pending" && m12?.data === true && m12?.todo === total,
  `schema status shows graph:12 pending with ${total} entities to convert: ${JSON.stringify(m12)}`);
const t0 = Date.now();
const eng = await connect(bin);
const startMs = Date.now() - t0;
const progress = lastStderr.split("\n").filter((l) => l.includes("observation records:"));
check(progress.some((l) => l.includes(`${total}/${total} entities converted`)),
  `progress on stderr with done/total: ${JSON.stringify(progress)}`);
const after = { history: {}, at: {}, open: null, read: null };
Object.assign(after, await answers(eng));
for (const t of sortedTimes) after.at[t] = await call(eng, "get_graph_at_time", { timestamp: t });
for (const n of names)
  check(same(before.history[n], after.history[n]),
    `get_entity_history(${n}) unchanged:\n before ${JSON.stringify(canon(before.history[n]))}\n after  ${JSON.stringify(canon(after.history[n]))}`);
// Odd's current version changes on purpose (the live list wins): checked below
const noOdd = (g) => ({ ...g, entities: g.entities.filter((e) => e.name !== "Odd") });
check(progress.some((l) => l.includes("1 entities had a history that disagreed")), "the repaired entity is logged");
for (const t of sortedTimes)
  check(same(noOdd(before.at[t]), noOdd(after.at[t])), `get_graph_at_time(${t}) unchanged:\n before ${JSON.stringify(canon(before.at[t]))}\n after  ${JSON.stringify(canon(after.at[t]))}`);
check(same(before.open, after.open), "open_nodes unchanged");
check(same(before.read, after.read), "read_graph unchanged");
const odd = (await call(eng, "get_entity_history", { entityName: "Odd" })).history;
check(odd.length === 1 && JSON.stringify(odd[0].observations) === JSON.stringify(["x", "y"]),
  `Odd's current version is its live list: ${JSON.stringify(odd)}`);

// ---- 3. the database ----
check(num((await q("MATCH (h:EntityVersion) WHERE h.observations IS NOT NULL RETURN count(h) AS n"))[0].n) === 0,
  "no :EntityVersion keeps an observations copy");
const recs = await q(`MATCH (e:EntityVersion {namespace: $ns}) WITH DISTINCT e.name AS name, e.entityId AS id
  MATCH (o:ObservationRecord {namespace: $ns, entityId: id})
  RETURN name, o.text AS text, o.seq AS seq, o.fromVersion AS fromV, o.toVersion AS toV, o.validFrom AS vf,
    o.validTo AS vt, o.changedBy AS by, o.closedBy AS closedBy, o:Observation AS live, o.contentHash AS hash, o.id AS id
  ORDER BY name, seq`, { ns });
const of = (n) => recs.filter((r) => r.name === n).map((r) => ({ ...r, seq: num(r.seq), fromV: num(r.fromV),
  toV: num(r.toV), vf: num(r.vf), vt: num(r.vt) }));
const iv = (n) => of(n).map((r) => `${r.text}@${r.fromV}-${r.toV ?? ""}${r.live ? "*" : ""}`);
const vfrom = (n, v) => before.history[n].history.find((h) => h.version === v)?.validFrom;
check(JSON.stringify(iv("Ada")) === JSON.stringify(["wrote the first program@1-*", "met Babbage in 1833@1-3",
  "translated Menabrea@2-*", "born 1815@2-*", "met Babbage in 1833@4-*"]), `Ada's records: ${JSON.stringify(iv("Ada"))}`);
const ada = of("Ada");
check(ada[1].vf === vfrom("Ada", 1) && ada[1].vt === vfrom("Ada", 3) && ada[4].vf === vfrom("Ada", 4) && ada[4].vt == null,
  `Ada's intervals follow the versions' times: ${JSON.stringify(ada.map((r) => [r.vf, r.vt]))}`);
check(JSON.stringify(iv("Draft")) === JSON.stringify(["to be thrown away@1-3", "second thought@2-3"]),
  `Draft (deleted) records end one past its last version: ${JSON.stringify(iv("Draft"))}`);
const draftEnd = before.history.Draft.history[1].validTo;
check(of("Draft").every((r) => r.vt === draftEnd && r.closedBy == null), "Draft's records end at its deletion");
check(JSON.stringify(iv("Engine")) === JSON.stringify(["mechanical computer@1-2", "never finished@1-*"]),
  `Engine's records: ${JSON.stringify(iv("Engine"))}`);
check(of("Babbage").length === 13 && of("Babbage").filter((r) => r.live).length === 11,
  `Babbage: 13 records, 11 live (${of("Babbage").length})`);
check(of("Empty").length === 0, "Empty has no records");
check(JSON.stringify(iv("Odd")) === JSON.stringify(["x@1-*", "y@1-*"]), `Odd's records: ${JSON.stringify(iv("Odd"))}`);
const lonely = (await q(`MATCH (e:Entity {namespace: $ns, name: 'Lonely'})
  MATCH (o:ObservationRecord:Observation {namespace: $ns, entityId: e.id})
  RETURN o.text AS text, o.fromVersion AS v, o.validFrom = e.validFrom AS vf ORDER BY o.seq`, { ns }));
check(JSON.stringify(lonely.map((r) => [r.text, num(r.v), r.vf])) === JSON.stringify([["a", 1, true], ["b", 1, true]]),
  `Lonely (no history) has live records from its own version: ${JSON.stringify(lonely)}`);
check(recs.every((r) => /^[0-9a-f]{64}$/.test(r.hash) && /^[0-9a-f]{32}$/.test(r.id)), "hashes and ids are hex");
const seqs = await q("MATCH (e:Entity {namespace: $ns}) RETURN e.name AS name, e.obsSeq AS s ORDER BY name", { ns });
check(JSON.stringify(seqs.map((r) => [r.name, num(r.s)])) ===
  JSON.stringify([["Ada", 5], ["Babbage", 13], ["Empty", 0], ["Engine", 2], ["Lonely", 2], ["Odd", 2]]), `obsSeq: ${JSON.stringify(seqs.map((r) => [r.name, num(r.s)]))}`);
const liveRecs = recs.filter((r) => r.live);
const jobs = num((await q(`MATCH (j:EmbedJob) WHERE j.entity IN $ids RETURN count(j) AS n`,
  { ids: liveRecs.map((r) => r.id) }))[0].n);
check(jobs === liveRecs.length, `one embedding job per live record (${jobs}/${liveRecs.length})`);

// ---- 4. re-running ----
const recCount = async () => num((await q("MATCH (o:ObservationRecord) RETURN count(o) AS n"))[0].n);
const n0 = await recCount();
const status2 = JSON.parse(engram("schema", "status", "--json").stdout);
check(status2.find((m) => m.id === "graph:12")?.state === "applied", "graph:12 recorded as applied");
// the migration itself again (its record removed): converts nothing
await q("MATCH (m:SchemaMigration {id: 'graph:12'}) DELETE m");
let r = engram("schema", "apply");
check(r.status === 0, `schema apply again: ${r.stderr}`);
const ids1 = (await q("MATCH (o:ObservationRecord) RETURN o.id AS id ORDER BY id")).map((x) => x.id);
check(await recCount() === n0 && ids1.length === n0, `re-running creates nothing (${n0} -> ${ids1.length})`);
check(num((await q("MATCH (j:EmbedJob) RETURN count(j) AS n"))[0].n) >= jobs, "jobs kept");
// a crash between batches: Engine as if never converted - only it is converted again
await q(`MATCH (e:Entity {namespace: $ns, name: 'Engine'}) REMOVE e.obsSeq WITH e
  MATCH (o:ObservationRecord {namespace: $ns, entityId: e.id}) DETACH DELETE o`, { ns });
await q(`MATCH (e:Entity {namespace: $ns, name: 'Engine'}) MATCH (h:EntityVersion {namespace: $ns, entityId: e.id})
  SET h.observations = CASE h.version WHEN 1 THEN ['mechanical computer', 'never finished'] ELSE ['never finished'] END`, { ns });
await q("MATCH (m:SchemaMigration {id: 'graph:12'}) DELETE m");
const status3 = JSON.parse(engram("schema", "status", "--json").stdout);
check(status3.find((m) => m.id === "graph:12")?.todo === 1, "status: one entity left to convert");
r = spawnSync(bin, ["schema", "apply"], { env, encoding: "utf8" });
check(r.status === 0 && r.stderr.includes("1/1 entities converted"), `resume converts the one left: ${r.stderr}`);
check(JSON.stringify(iv("Engine")) === JSON.stringify(["mechanical computer@1-2", "never finished@1-*"]) &&
  await recCount() === n0, "Engine converted again, the others untouched");
check(same(before.history.Engine, await call(eng, "get_entity_history", { entityName: "Engine" })),
  "Engine's history after the resumed run");

// ---- exports: the new one lists every version as the old one did; the old one imports ----
execFileSync(bin, ["export", "--output", newExport], { env: { ...env, ENGRAM_LOG_LEVEL: "warning" } });
const { readFileSync, unlinkSync } = await import("node:fs");
const lines = (f) => readFileSync(f, "utf8").trim().split("\n").map((l) => JSON.parse(l))
  .filter((j) => j.type !== "engram-export" && !(j.type === "entityVersion" && j.name === "Odd"));
check(same(lines(oldExport), lines(newExport)), "the new engram exports what the previous one did");
const imp = JSON.parse(execFileSync(bin, ["import", oldExport, "--namespace", "obsmig-copy", "--json"],
  { env: { ...env, ENGRAM_LOG_LEVEL: "warning" } }).toString().trim().split("\n").pop());
check(imp.entitiesRestored === 6 && imp.observationRecords === n0, `old export imported with records: ${JSON.stringify(imp)}`);
const noIds = (h) => ({ ...h, history: h.history.map((x) => ({ ...x, id: null })) });
const copy = await connect(bin, "obsmig-copy");
for (const n of names)
  check(same(noIds(before.history[n]), noIds(await call(copy, "get_entity_history", { entityName: n }))),
    `get_entity_history(${n}) of the imported old export`);
await copy.close();
check(num((await q("MATCH (h:EntityVersion) WHERE h.observations IS NOT NULL RETURN count(h) AS n"))[0].n) === 0,
  "the import left no copy");
unlinkSync(oldExport);
unlinkSync(newExport);

// ---- 5. a change after the migration ----
await call(eng, "add_observations", { observations: [{ entityName: "Ada", contents: ["died 1852"] }] });
await call(eng, "delete_observations", { deletions: [{ entityName: "Ada", observations: ["wrote the first program"] }] });
const h = (await call(eng, "get_entity_history", { entityName: "Ada" })).history;
check(h.length === 6, `Ada has 6 versions (${h.length})`);
check(same(h.slice(0, 4).map((x) => ({ ...x, validTo: null })),
  before.history.Ada.history.map((x) => ({ ...x, validTo: null }))), "the old versions keep their lists");
const want5 = [...before.history.Ada.history[3].observations, "died 1852"];
check(JSON.stringify(h[4].observations) === JSON.stringify(want5), `version 5: ${JSON.stringify(h[4].observations)}`);
check(JSON.stringify(h[5].observations) === JSON.stringify(want5.slice(1)), `version 6: ${JSON.stringify(h[5].observations)}`);
// (Ada's version 4 has ended since: only its validTo differs)
const noEnd = (g) => ({ ...g, entities: g.entities.map((e) => ({ ...e, validTo: null })) });
for (const t of sortedTimes) {
  const g = await call(eng, "get_graph_at_time", { timestamp: t });
  check(same(noEnd(before.at[t]), noEnd(g)), `graph at ${t} after a new change:\n before ${JSON.stringify(canon(before.at[t]))}\n after  ${JSON.stringify(canon(g))}`);
}
const live = (await call(eng, "open_nodes", { names: ["Ada"] })).entities[0].observations;
check(JSON.stringify(live) === JSON.stringify(want5.slice(1)), `Ada live: ${JSON.stringify(live)}`);

// ---- 6. half converted: versions 5 and 6 as an engram with records but before this migration wrote
// them on an unconverted entity - versions 1-4 with their copies and no records, 5's added record
// numbered from 1, and 6's delete closing nothing (the record it would close did not exist) ----
await q(`MATCH (e:Entity {namespace: $ns, name: 'Ada'})
  MATCH (h:EntityVersion {namespace: $ns, entityId: e.id}) WHERE h.version <= 4
  WITH e, h, $lists[h.version - 1] AS list SET h.observations = list
  WITH DISTINCT e MATCH (o:ObservationRecord {namespace: $ns, entityId: e.id}) WHERE o.fromVersion <= 4 DETACH DELETE o
  WITH DISTINCT e MATCH (o:ObservationRecord {namespace: $ns, entityId: e.id}) SET o.seq = 1, e.obsSeq = 1`,
  { ns, lists: before.history.Ada.history.map((x) => x.observations) });
await q("MATCH (m:SchemaMigration {id: 'graph:12'}) DELETE m");
r = spawnSync(bin, ["schema", "apply"], { env, encoding: "utf8" });
check(r.status === 0 && r.stderr.includes("1/1 entities converted"), `the half-converted entity is converted: ${r.stderr}`);
const h2 = (await call(eng, "get_entity_history", { entityName: "Ada" })).history;
check(same(h, h2), `Ada's history after converting the half-converted entity:\n before ${JSON.stringify(canon(h))}\n after  ${JSON.stringify(canon(h2))}`);
const ada2 = (await q(`MATCH (e:Entity {namespace: $ns, name: 'Ada'}) MATCH (o:ObservationRecord {namespace: $ns, entityId: e.id})
  RETURN o.text AS text, o.fromVersion AS f, o.toVersion AS t, o:Observation AS live ORDER BY o.seq`, { ns }))
  .map((x) => `${x.text}@${num(x.f)}-${num(x.t) ?? ""}${x.live ? "*" : ""}`);
check(JSON.stringify(ada2) === JSON.stringify(["wrote the first program@1-6", "met Babbage in 1833@1-3",
  "translated Menabrea@2-*", "born 1815@2-*", "met Babbage in 1833@4-*", "died 1852@5-*"]),
  `Ada's records rebuilt: ${JSON.stringify(ada2)}`);
await eng.close();
await session.close();
await driver.close();

console.log(`obs-migration: entities=${total} records=${n0} serve_start_ms=${startMs} checks=${checks} ` +
  `failures=${failures}`);
process.exit(failures ? 1 : 0);
