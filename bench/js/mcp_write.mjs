// mcp_write.mjs - latency of create_entities (one entity, five observations)
// over stdio, with 1,000 and with 10,000 entities already stored.
//
// usage: node mcp_write.mjs --label NAME --samples N -- COMMAND [ARGS...]
// The server inherits this process's environment (NEO4J_* etc.).
// Prints one JSON line: {"label", "p50_ms_1k", "p95_ms_1k", "p50_ms_10k",
// "p95_ms_10k", "growth", "samples", "queue_drain_ms_1k", "queue_drain_ms_10k"}.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const argv = process.argv.slice(2);
const sep = argv.indexOf('--');
const opts = Object.fromEntries(
  argv.slice(0, sep).reduce((acc, a, i, arr) => (a.startsWith('--') ? [...acc, [a.slice(2), arr[i + 1]]] : acc), []));
const [command, ...args] = argv.slice(sep + 1);
const label = opts.label || command;
const samples = Number(opts.samples || 200);
const prefillBatch = Number(opts.batch || 250);
const run = Date.now().toString(36);

const transport = new StdioClientTransport({ command, args, env: process.env, stderr: 'ignore' });
const client = new Client({ name: 'engram-bench', version: '1.0.0' });
await client.connect(transport);

let stored = 0;
const obs = (i) => [1, 2, 3, 4, 5].map((k) => `observation ${k} about item ${i} of run ${run}`);

async function call(args_) {
  const res = await client.callTool({ name: 'create_entities', arguments: args_ }, undefined, { timeout: 600000 });
  if (res.isError) throw new Error(`create_entities failed: ${JSON.stringify(res.content).slice(0, 500)}`);
  return res;
}

async function prefillTo(n) {
  while (stored < n) {
    const k = Math.min(prefillBatch, n - stored);
    const entities = [];
    for (let i = 0; i < k; i++) {
      const id = stored + i;
      entities.push({ name: `pre-${run}-${id}`, entityType: 'bench', observations: obs(id) });
    }
    await call({ entities });
    stored += k;
  }
}

// Servers with an embedding queue (engram) work off the prefill's backlog in
// the background; measuring while that runs would time the embedding load,
// not create_entities.  Wait (bounded) until the queue is idle, so both sides
// are measured in steady state.  Servers without queue_status skip this.
async function waitQueueIdle() {
  const { tools } = await client.listTools();
  if (!tools.some((t) => t.name === 'queue_status')) return 0;
  const t0 = Date.now();
  while (Date.now() - t0 < 300000) {
    const r = await client.callTool({ name: 'queue_status', arguments: {} });
    const c = r.structuredContent?.counts ?? {};
    if (!(c.pending || c.leased)) break;
    await new Promise((res) => setTimeout(res, 250));
  }
  return Date.now() - t0;
}

function pct(sorted, p) {
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

async function measure(tag) {
  const lat = [];
  // A few warm-up calls are not counted (JIT, caches, pool).
  for (let j = 0; j < samples + 5; j++) {
    const t0 = process.hrtime.bigint();
    await call({ entities: [{ name: `m-${tag}-${run}-${j}`, entityType: 'bench', observations: obs(j) }] });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (j >= 5) lat.push(ms);
  }
  stored += samples + 5;
  lat.sort((a, b) => a - b);
  return { p50: pct(lat, 50), p95: pct(lat, 95) };
}

await prefillTo(1000);
const drain1k = await waitQueueIdle();
const a = await measure('1k');
await prefillTo(10000);
const drain10k = await waitQueueIdle();
const b = await measure('10k');
await client.close();
const r3 = (x) => Math.round(x * 1000) / 1000;
console.log(JSON.stringify({
  label, samples, p50_ms_1k: r3(a.p50), p95_ms_1k: r3(a.p95), p50_ms_10k: r3(b.p50), p95_ms_10k: r3(b.p95),
  growth: r3(b.p50 / a.p50), queue_drain_ms_1k: drain1k, queue_drain_ms_10k: drain10k,
}));
