// search_ab.mjs - two engram binaries, one database: which searches faster.
//
//   node bench/js/search_ab.mjs OLD_ENGRAM NEW_ENGRAM
//   node bench/js/search_ab.mjs --fill FILE [N]
//
// --fill writes compare.mjs's 10 needles and N (100,000) entities as an
// official memory.jsonl, for `engram import` (the database's filling).
// Both serve over stdio (no in-server workers) the namespace ENGRAM_NAMESPACE
// (default "abh") of the Neo4j that NEO4J_URI/_USERNAME/_PASSWORD name, filled
// beforehand (bench/README.md, "A/B of a search change").  After 40 untimed
// calls each, AB_ROUNDS (6) rounds alternate the binaries (which one goes
// first alternates too), each round 20 hybrid and 20 vector-only
// semantic_search calls per binary with compare.mjs's queries.  Prints one
// JSON line: p50/p95 per binary and kind, and new/old ratios.  A change
// that does not touch vector-only search should leave that pair equal: the
// control for the machine's noise.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { writeFileSync } from 'node:fs';
import { benchEntity, needleEntity, benchQuery } from './compare_data.mjs';

if (process.argv[2] === '--fill') {
  const file = process.argv[3], n = Number(process.argv[4] || 100000);
  if (!file || !(n > 0)) {
    console.error('usage: node search_ab.mjs --fill FILE [N]');
    process.exit(2);
  }
  const lines = [];
  for (let k = 0; k < 10; k++) {
    lines.push(JSON.stringify({ type: 'entity', ...needleEntity('needle-ab', k) }));
  }
  for (let i = 0; i < n; i++) {
    lines.push(JSON.stringify({ type: 'entity', ...benchEntity('e-ab', i) }));
  }
  writeFileSync(file, lines.join('\n') + '\n');
  process.exit(0);
}
const [oldBin, newBin] = process.argv.slice(2);
if (!oldBin || !newBin) {
  console.error('usage: node search_ab.mjs OLD_ENGRAM NEW_ENGRAM | --fill FILE [N]');
  process.exit(2);
}
const rnd = (n) => Math.floor(Math.random() * n);
const ns = process.env.ENGRAM_NAMESPACE || 'abh';

async function open(bin) {
  const transport = new StdioClientTransport({ command: bin, args: ['serve'],
    env: { ...process.env, ENGRAM_WORKERS: '0', ENGRAM_NAMESPACE: ns }, stderr: 'ignore' });
  const client = new Client({ name: 'search-ab', version: '1' });
  await client.connect(transport);
  return client;
}

const clients = { old: await open(oldBin), new: await open(newBin) };
async function one(side, kind) {
  const query = benchQuery(rnd);
  const args = kind === 'hybrid' ? { query, limit: 10 } : { query, limit: 10, hybrid_search: false };
  const t0 = process.hrtime.bigint();
  const r = await clients[side].callTool({ name: 'semantic_search', arguments: args });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.isError) throw new Error(`${side} ${kind}: ${JSON.stringify(r.content)}`);
  return ms;
}

for (const side of ['old', 'new']) {
  for (let i = 0; i < 40; i++) {
    await one(side, 'hybrid');
    await one(side, 'semantic');
  }
}
const lat = {};
const rounds = Number(process.env.AB_ROUNDS || 6);
for (let r = 0; r < rounds; r++) {
  for (const side of (r % 2 ? ['new', 'old'] : ['old', 'new'])) {
    for (const kind of ['hybrid', 'semantic']) {
      for (let i = 0; i < 20; i++) (lat[`${side}_${kind}`] ??= []).push(await one(side, kind));
    }
  }
}
const pct = (a, p) => {
  const s = [...a].sort((x, y) => x - y);
  return +s[Math.min(s.length - 1, Math.floor(s.length * p))].toFixed(2);
};
const out = { bench: 'search_ab', rounds };
for (const [k, a] of Object.entries(lat)) {
  out[`${k}_p50_ms`] = pct(a, 0.5);
  out[`${k}_p95_ms`] = pct(a, 0.95);
  out[`${k}_n`] = a.length;
}
for (const kind of ['hybrid', 'semantic']) {
  for (const p of ['p50', 'p95']) {
    out[`${kind}_${p}_new_over_old`] = +(out[`new_${kind}_${p}_ms`] / out[`old_${kind}_${p}_ms`]).toFixed(3);
  }
}
console.log(JSON.stringify(out));
for (const c of Object.values(clients)) await c.close();
