// compare.mjs - one side of `bench/run compare`: an MCP memory server over
// stdio, driven by the official SDK client, sequential calls, at growing
// sizes of stored entities.
//
// usage: node compare.mjs --label NAME [--sizes 100,1000,10000,100000]
//          [--samples N] [--stop-ms 5000] [--bulk-batch 500]
//          [--bulk-budget-s 900] [--warmup-first 20] [--warm-s 0] [--settle-s 120] -- COMMAND [ARGS...]
//
// --settle-s S: at each size, after the bulk load and its embeddings, wait
// at most S seconds for the database's JVM to go quiet (waitDbSettled);
// settle_capped in the size's row says the wait ran out with the JVM still
// busy (at 100,000 entities its vector index merges segments for minutes),
// so that size's figures share the machine with that work.
//
// --warm-s S: before the first size, S seconds of every workload's calls
// round-robin on scratch entities (w-...), deleted afterwards, so that the
// sizes measure a warm server and database.  Neo4j's JVM compiles the
// statement, kernel and Lucene paths of a one-entity write over the first
// ~10,000 of them: measured on the 2-vCPU VM, create p50 fell from 10.7 ms
// (first 1,000) to 2.3 ms (after 12,000), with the JIT's compiler threads
// busy all along.  The phase reports the cold figures too: `warm` holds the
// p50 of the first and of the last 100 creates of the phase and how many
// calls it made.
//
// At each size it first bulk-loads up to it (create_entities, --bulk-batch
// per call, timed), waits until an embedding queue (a server with
// queue_status) is idle and the database has settled (waitDbSettled), then
// times --samples calls of each workload (3
// warm-up calls not counted; --warmup-first at the first size, so a cold
// server and database are not what the smallest size measures):
//   create      create_entities with one entity
//   add_obs     add_observations, one observation to a stored entity
//   create_idle, add_obs_idle
//               the same, each call made once the embedding jobs of the
//               calls before it are done (queue_status idle, polled every
//               5 ms, not timed): an agent's calls come seconds apart, so
//               the embedding a call causes is done before the next one.
//               The plain workloads run back to back and each call shares
//               the server with the embedding of the ones before it.  A
//               server without queue_status gets the same as the plain ones
//   search_hit  search_nodes for a word that 10 stored entities contain
//   search_miss search_nodes for a word no entity contains
//   open5       open_nodes of 5 stored names
//   read_page   read_graph's first page (a server without pages: everything)
//   semantic    semantic_search, vectors only (when the server has it)
//   hybrid      hybrid_search, or semantic_search with hybrid_search=true
// A workload whose call passes --stop-ms stops being sampled, and the side
// stops after that size (the reason is reported); so does a bulk load past
// --bulk-budget-s.  The server inherits this process's environment.
// Prints one JSON line: {label, sizes: {N: {workload: {p50, p95, n}, ...,
// bulk_s, bulk_entities_s, drain_ms, hits}}, stopped_after, stop_reason,
// rss_peak_kb}.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { readFileSync } from 'node:fs';
import { WORDS, benchEntity, needleEntity, benchQuery } from './compare_data.mjs';

const argv = process.argv.slice(2);
const sep = argv.indexOf('--');
const opts = {};
for (let i = 0; i < sep; i += 2) opts[argv[i].replace(/^--/, '')] = argv[i + 1];
const [command, ...args] = argv.slice(sep + 1);
const label = opts.label || command;
const sizes = (opts.sizes || '100,1000,10000,100000').split(',').map(Number);
const samples = Number(opts.samples || 30);
const stopMs = Number(opts['stop-ms'] || 5000);
const bulkBatch = Number(opts['bulk-batch'] || 500);
const warmFirst = Number(opts['warmup-first'] || 20);
const warmS = Number(opts['warm-s'] || 0);
const settleS = Number(opts['settle-s'] || 120);
const bulkBudgetMs = Number(opts['bulk-budget-s'] || 900) * 1000;
const run = Date.now().toString(36);

const transport = new StdioClientTransport({ command, args, env: process.env, stderr: 'pipe' });
// the server's last words, for the report when it dies mid-run
let stderrTail = '';
transport.stderr?.on('data', (d) => { stderrTail = (stderrTail + d.toString()).slice(-2000); });
const client = new Client({ name: 'engram-compare', version: '1.0.0' });
await client.connect(transport);
const pid = transport.pid;
const { tools } = await client.listTools();
const has = (n) => tools.some((t) => t.name === n);

async function call(name, a) {
  const res = await client.callTool({ name, arguments: a }, undefined, { timeout: 900000 });
  if (res.isError) throw new Error(`${name} failed: ${JSON.stringify(res.content).slice(0, 300)}`);
  return res;
}

// Peak resident memory of the server process (VmHWM), in kB.
function rssPeakKb() {
  try {
    const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch { return null; }
}

const entity = (i) => benchEntity(`e-${run}`, i);
let stored = 0;
// the 10 entities every search_hit must find, stored first
await call('create_entities', { entities: Array.from({ length: 10 }, (_, k) => needleEntity(`needle-${run}`, k)) });
stored = 10;

// Until the queue has nothing pending or leased, polling every pollMs, at
// most maxMs (bounded: a server without workers never drains); the ms it
// took.  After a bulk load every 250 ms for up to 5 min; between the calls
// of an _idle workload every 5 ms for up to 10 s (not timed).
async function waitQueueIdle(pollMs = 250, maxMs = 300000) {
  if (!has('queue_status')) return 0;
  const t0 = Date.now();
  while (Date.now() - t0 < maxMs) {
    const c = (await call('queue_status', {})).structuredContent?.counts ?? {};
    if (!(c.pending || c.leased)) break;
    await new Promise((ok) => setTimeout(ok, pollMs));
  }
  return Date.now() - t0;
}

// After a bulk load the database keeps working for a while (Lucene merges
// the segments of its full-text, TEXT and vector indexes on background
// threads), and on 2 cores that work competes with every call measured.
// With BENCH_NEO4J_PID set, wait (at most 120 s) until that process used
// under 15% of one core over two consecutive half seconds: the sizes are
// then measured in steady state, the same for every side on this Neo4j.
function cpuTicks(p) {
  try {
    const f = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ');
    return Number(f[11]) + Number(f[12]); // utime + stime, in clock ticks (100/s)
  } catch { return null; }
}
// How long it waited, and whether the JVM was still busy when --settle-s ran out.
async function waitDbSettled() {
  const p = process.env.BENCH_NEO4J_PID;
  if (!p || cpuTicks(p) == null) return { ms: null, capped: null };
  const t0 = Date.now();
  let calm = 0, last = cpuTicks(p);
  while (Date.now() - t0 < settleS * 1000 && calm < 2) {
    await new Promise((ok) => setTimeout(ok, 500));
    const now = cpuTicks(p);
    calm = now - last < 0.15 * 50 ? calm + 1 : 0;
    last = now;
  }
  return { ms: Date.now() - t0, capped: calm < 2 };
}

const pct = (s, p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
const rnd = (n) => Math.floor(Math.random() * n);
const storedName = () => `e-${run}-${rnd(stored - 10)}`;

const out = { label, samples, stop_ms: stopMs, sizes: {}, stopped_after: null, stop_reason: null };
let seq = 0;
const workloads = [
  ['create', () => ['create_entities', { entities: [{ name: `c-${run}-${seq++}`, entityType: 'bench',
    observations: [`created while measuring, call ${seq}`] }] }]],
  ['add_obs', () => ['add_observations', { observations: [{ entityName: storedName(), contents: [`added ${seq++}`] }] }]],
  ['create_idle', () => ['create_entities', { entities: [{ name: `c-${run}-${seq++}`, entityType: 'bench',
    observations: [`created while measuring, call ${seq}`] }] }], true],
  ['add_obs_idle', () => ['add_observations', { observations: [{ entityName: storedName(),
    contents: [`added ${seq++}`] }] }], true],
  ['search_hit', () => ['search_nodes', { query: 'quokka' }]],
  ['search_miss', () => ['search_nodes', { query: 'xylophonist' }]],
  ['open5', () => ['open_nodes', { names: [0, 1, 2, 3, 4].map(storedName) }]],
  ['read_page', () => ['read_graph', {}]],
];
if (has('semantic_search')) {
  workloads.push(['semantic', () => ['semantic_search', { query: benchQuery(rnd),
    limit: 10, hybrid_search: false }]]);
  workloads.push(has('hybrid_search')
    ? ['hybrid', () => ['hybrid_search', { query: benchQuery(rnd), limit: 10 }]]
    : ['hybrid', () => ['semantic_search', { query: benchQuery(rnd),
      limit: 10, hybrid_search: true }]]);
}

// The warm-up phase (--warm-s): the workloads' calls round-robin, their
// writes on scratch entities that are deleted at the end (a server whose
// cost grows with its size then measures the first size at that size).
async function warmUp() {
  const t0 = Date.now();
  const creates = [];
  let calls = 0, made = 0;
  const scratch = (i) => `w-${run}-${i}`;
  // writes weigh most: their path is the longest to compile
  const create = () => ['create_entities', { entities: [{ name: scratch(made++), entityType: 'bench',
    observations: [`warming call ${calls}, likes ${WORDS[calls % 16]}`] }] }];
  const addObs = () => ['add_observations', { observations: [{ entityName: scratch(rnd(made)), contents: [`warm ${calls}`] }] }];
  const phase = [create, addObs, create, addObs, create, create,
    ...workloads.filter(([w]) => !/^(create|add_obs)/.test(w)).map(([, make]) => make)];
  while (Date.now() - t0 < warmS * 1000 && calls < 50000) {
    for (let k = 0; k < phase.length; k++) {
      const [tool, a] = phase[k]();
      const s = process.hrtime.bigint();
      await call(tool, a);
      if (phase[k] === create) creates.push(Number(process.hrtime.bigint() - s) / 1e6);
      calls++;
    }
  }
  for (let i = 0; i < made; i += 500)
    await call('delete_entities', { entityNames: Array.from({ length: Math.min(500, made - i) }, (_, j) => scratch(i + j)) });
  const p50of = (a) => (a.length ? +pct([...a].sort((x, y) => x - y), 50).toFixed(3) : null);
  return { seconds: (Date.now() - t0) / 1000, calls, creates: creates.length,
    first100_create_p50: p50of(creates.slice(0, 100)), last100_create_p50: p50of(creates.slice(-100)) };
}

// A server that dies (or fails a call) ends its side, not the benchmark:
// the sizes measured so far are reported with the reason.
let current = null;
try {
  if (warmS > 0) {
    current = 'warm-up';
    out.warm = await warmUp();
    process.stderr.write(`[compare ${label}] warm-up: ${JSON.stringify(out.warm)}\n`);
  }
  for (const size of sizes) {
    current = size;
    const row = {};
    // bulk load up to this size
    const t0 = Date.now();
    const from = stored;
    let over = false;
    while (stored - 10 < size) {
      const k = Math.min(bulkBatch, size - (stored - 10));
      await call('create_entities', { entities: Array.from({ length: k }, (_, j) => entity(stored - 10 + j)) });
      stored += k;
      if (Date.now() - t0 > bulkBudgetMs) { over = true; break; }
    }
    row.bulk_s = (Date.now() - t0) / 1000;
    row.bulk_entities_s = row.bulk_s > 0 ? Math.round((stored - from) / row.bulk_s) : null;
    if (over) {
      out.stopped_after = sizes[sizes.indexOf(size) - 1] ?? null;
      out.stop_reason = `bulk load to ${size} passed ${bulkBudgetMs / 1000} s (reached ${stored - 10})`;
      out.sizes[size] = row;
      break;
    }
    row.drain_ms = await waitQueueIdle();
    const settled = await waitDbSettled();
    row.settle_ms = settled.ms;
    row.settle_capped = settled.capped;
    let slow = null;
    for (const [wname, make, idle] of workloads) {
      const lat = [];
      // the first size also warms up the server (and its database: a fresh
      // JVM plans and compiles every statement on first use), not only the call
      const warm = size === sizes[0] ? warmFirst : 3;
      for (let j = 0; j < samples + warm; j++) {
        const [tool, a] = make();
        if (idle) await waitQueueIdle(5, 10000);
        const s = process.hrtime.bigint();
        const res = await call(tool, a);
        const ms = Number(process.hrtime.bigint() - s) / 1e6;
        if (wname === 'search_hit' && j === 0) {
          const sc = res.structuredContent ?? JSON.parse(res.content?.[0]?.text ?? '{}');
          row.hits = (sc.entities ?? []).length;
        }
        if (j >= warm) lat.push(ms);
        if (ms > stopMs) { slow = slow ?? `${wname} took ${Math.round(ms)} ms at ${size}`; break; }
      }
      lat.sort((a, b) => a - b);
      row[wname] = lat.length ? { p50: +pct(lat, 50).toFixed(3), p95: +pct(lat, 95).toFixed(3), n: lat.length } : null;
    }
    // measuring created entities: count them as stored for the next size
    out.sizes[size] = row;
    process.stderr.write(`[compare ${label}] ${size}: ${JSON.stringify(row)}\n`);
    if (slow) { out.stopped_after = size; out.stop_reason = `${slow} (> ${stopMs} ms)`; break; }
  }
} catch (e) {
  const last = Object.keys(out.sizes).filter((k) => out.sizes[k].create).map(Number).pop() ?? null;
  out.stopped_after = last;
  const tail = stderrTail.trim().split('\n').slice(-3).join(' | ');
  out.stop_reason = `failed at ${current}: ${e.message}${tail ? ` (server stderr: ${tail.slice(0, 400)})` : ''}`;
  process.stderr.write(`[compare ${label}] ${out.stop_reason}\n`);
}
out.rss_peak_kb = rssPeakKb();
await client.close().catch(() => {});
console.log(JSON.stringify(out));
