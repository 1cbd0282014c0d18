// read_ab.mjs - A/B of two engram builds on the reads of a small graph:
// read_graph's first page and open_nodes of 5 names, over stdio with the
// official SDK client, the two builds alternated round by round (which one
// goes first flipping) on the same Neo4j, so that a change to a read path is
// measured against its parent in the same minutes.  Not a bench/run target.
//
// usage: NEO4J_URI=... NEO4J_USERNAME=... NEO4J_PASSWORD=... ENGRAM_NAMESPACE=ns \
//        node read_ab.mjs SIZE SAMPLES ROUNDS ENGRAM_A ENGRAM_B
//
// It first stores SIZE entities (two observations each) and a chain of up
// to 200 relations through build A, then per round and build: 30 unmeasured
// calls of each read, SAMPLES measured ones.  Prints one JSON line: each
// build's p50 per round, and for each read the median over the rounds of B's p50
// over A's in the same round.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
const [size, n, rounds, a, b] = process.argv.slice(2);
if (!b || !(+size > 0) || !(+n > 0) || !(+rounds > 0)) {
  process.stderr.write('usage: node read_ab.mjs SIZE SAMPLES ROUNDS ENGRAM_A ENGRAM_B\n');
  process.exit(2);
}
const pct = (s, p) => s[Math.min(s.length - 1, Math.ceil(p / 100 * s.length) - 1)];
async function connect(bin) {
  const t = new StdioClientTransport({ command: bin, args: ['serve'], env: process.env, stderr: 'inherit' });
  const c = new Client({ name: 'ab', version: '1' });
  await c.connect(t);
  return c;
}
const run = Date.now().toString(36);
{
  const c = await connect(a);
  for (let i = 0; i < +size; i += 500) {
    const k = Math.min(500, +size - i);
    await c.callTool({ name: 'create_entities', arguments: { entities: Array.from({ length: k }, (_, j) => ({
      name: `e-${run}-${i + j}`, entityType: 'bench', observations: [`observation about item ${i + j}`, `likes tea ${j % 16}`] })) } });
  }
  const rels = Array.from({ length: Math.min(+size - 1, 200) }, (_, i) => ({ from: `e-${run}-${i}`, to: `e-${run}-${i + 1}`, relationType: 'next' }));
  await c.callTool({ name: 'create_relations', arguments: { relations: rels } });
  await c.close();
}
async function time(c, tool, argf, k) {
  const lat = [];
  for (let i = 0; i < k; i++) {
    const s = process.hrtime.bigint();
    const r = await c.callTool({ name: tool, arguments: argf() });
    if (r.isError) throw new Error(JSON.stringify(r).slice(0, 300));
    lat.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  lat.sort((x, y) => x - y);
  return +pct(lat, 50).toFixed(3);
}
const res = { A: { read: [], open: [] }, B: { read: [], open: [] } };
const names = () => [0, 1, 2, 3, 4].map(() => `e-${run}-${Math.floor(Math.random() * Math.min(+size, 200))}`);
for (let r = 0; r < +rounds; r++) {
  for (const [lab, bin] of r % 2 ? [['B', b], ['A', a]] : [['A', a], ['B', b]]) {
    const c = await connect(bin);
    await time(c, 'read_graph', () => ({}), 30);
    await time(c, 'open_nodes', () => ({ names: names() }), 30);
    res[lab].read.push(await time(c, 'read_graph', () => ({}), +n));
    res[lab].open.push(await time(c, 'open_nodes', () => ({ names: names() }), +n));
    await c.close();
  }
}
// B over A within each round (the pair shares the machine's minute), median over the rounds
const med = (x) => { const s = [...x].sort((p, q) => p - q), m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const ratio = (k) => +med(res.B[k].map((v, i) => v / res.A[k][i])).toFixed(3);
console.log(JSON.stringify({ size: +size, A: res.A, B: res.B, read_ratio: ratio('read'), open_ratio: ratio('open') }));
