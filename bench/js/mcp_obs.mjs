// mcp_obs.mjs - the cost of observations as records (issue 13) over stdio,
// in two phases (bench/mcp-write.sh runs them):
//
//  --phase adds: add_observations latency (one observation added to one
//     existing entity) with 1,000 and with --large (100,000) observations
//     stored in the namespace (10 per entity), each measured once the
//     embedding queue is idle; obs_growth = p50 at 100k / p50 at 1k.
//  --phase single --entity NAME --count N: N add_observations calls of one
//     observation each to entity NAME (created if absent), then waits for the
//     queue to be idle; reports the latencies of the first and last 1,000.
//     The shell measures the store between phases (Neo4j stopped cleanly, so
//     everything is on disk), giving bytes per observation.
//
// usage: node mcp_obs.mjs --phase adds|single [--samples N] [--large N]
//        [--entity NAME --count N] -- COMMAND [ARGS...]
// Prints one JSON line.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const argv = process.argv.slice(2);
const sep = argv.indexOf('--');
const opts = Object.fromEntries(
  argv.slice(0, sep).reduce((acc, a, i, arr) => (a.startsWith('--') ? [...acc, [a.slice(2), arr[i + 1]]] : acc), []));
const [command, ...args] = argv.slice(sep + 1);
const samples = Number(opts.samples || 200);
const large = Number(opts.large || 100000);
const phase = opts.phase || 'adds';
const run = Date.now().toString(36);

const transport = new StdioClientTransport({ command, args, env: process.env, stderr: 'ignore' });
const client = new Client({ name: 'engram-bench-obs', version: '1.0.0' });
await client.connect(transport);

async function tool(name, args_) {
  const res = await client.callTool({ name, arguments: args_ }, undefined, { timeout: 600000 });
  if (res.isError) throw new Error(`${name} failed: ${JSON.stringify(res.content).slice(0, 500)}`);
  return res;
}

const PER_ENTITY = 10;
let entities = 0;
async function fillTo(observations) {
  while (entities * PER_ENTITY < observations) {
    const k = Math.min(250, observations / PER_ENTITY - entities);
    const batch = [];
    for (let i = 0; i < k; i++) {
      const id = entities + i;
      batch.push({ name: `obs-${run}-${id}`, entityType: 'bench',
        observations: Array.from({ length: PER_ENTITY }, (_, j) => `fact ${j} of entity ${id} in run ${run}`) });
    }
    await tool('create_entities', { entities: batch });
    entities += k;
  }
}

async function waitQueueIdle() {
  const t0 = Date.now();
  while (Date.now() - t0 < 600000) {
    const r = await tool('queue_status', {});
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

let added = 0;
async function measureAdds(tag) {
  const lat = [];
  for (let j = 0; j < samples + 5; j++) {
    const target = `obs-${run}-${(j * 7919) % entities}`;
    const t0 = process.hrtime.bigint();
    await tool('add_observations', { observations: [{ entityName: target, contents: [`added ${tag} ${j} ${added++}`] }] });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (j >= 5) lat.push(ms);
  }
  lat.sort((a, b) => a - b);
  return { p50: pct(lat, 50), p95: pct(lat, 95) };
}

const r3 = (x) => (x == null ? null : Math.round(x * 1000) / 1000);
if (phase === 'adds') {
  await fillTo(1000);
  const drain1k = await waitQueueIdle();
  const a = await measureAdds('1k');
  await fillTo(large);
  const drainLarge = await waitQueueIdle();
  const b = await measureAdds('100k');
  await client.close();
  console.log(JSON.stringify({
    samples, stored_large: large,
    obs_p50_ms_1k: r3(a.p50), obs_p95_ms_1k: r3(a.p95), obs_p50_ms_100k: r3(b.p50), obs_p95_ms_100k: r3(b.p95),
    obs_growth: r3(b.p50 / a.p50), obs_queue_drain_ms_1k: drain1k, obs_queue_drain_ms_100k: drainLarge,
  }));
} else {
  const one = opts.entity;
  const count = Number(opts.count || 1000);
  await tool('create_entities', { entities: [{ name: one, entityType: 'bench', observations: [] }] });
  const lat = [];
  const t0 = Date.now();
  const from = Number(opts.from || 0);
  for (let i = 0; i < count; i++) {
    const t = process.hrtime.bigint();
    await tool('add_observations', { observations: [{ entityName: one,
      contents: [`note ${from + i}: a fact of about sixty characters, stored alone`] }] });
    lat.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  const ms = Date.now() - t0;
  const drain = await waitQueueIdle();
  await client.close();
  const p50Of = (xs) => (xs.length ? pct([...xs].sort((x, y) => x - y), 50) : null);
  console.log(JSON.stringify({ count, ms, queue_drain_ms: drain,
    p50_ms_first_1k: r3(p50Of(lat.slice(0, 1000))), p50_ms_last_1k: r3(p50Of(lat.slice(-1000))) }));
}
