// http_load.mjs - many MCP clients at once over Streamable HTTP (the
// official SDK client), each making --calls mixed calls in sequence
// (create_entities with one entity, then search_nodes, alternating), for
// each client count in --clients.
//
// usage: node http_load.mjs --url http://127.0.0.1:PORT/mcp [--clients 1,10,50] [--calls 30]
//        [--mix mixed|create|search]   (create or search only: to see which costs what)
//        [--cpu engram=PID,neo4j=PID]  (processes whose CPU time to count, from /proc)
//        [--drain 0]                   (do not wait for the queue: a server without workers)
// Prints one JSON line: {httpK_calls_s, httpK_p50_ms, httpK_p99_ms, httpK_errors} per K,
// and with --cpu where the CPU went, per call: httpK_cpu_ms_<name> for each
// process and httpK_cpu_ms_client for this one (the load generator shares the
// machine), their sum over the cores as httpK_cpu_ceiling_calls_s (the rate at
// which these processes would fill every core), and httpK_ratio_to_cpu_ceiling.
//
// Every count starts from the same state, after 6 untimed warm-up calls: no
// embedding job of the server's namespace pending or leased (its workers
// embedded what the count before left) and, with a neo4j PID in --cpu, that
// process calm (under 15% of a core over two consecutive half seconds, as
// compare.mjs waits after a bulk load).  Else a count pays for the last
// one's embeddings and Lucene merges.  What a count leaves is reported, not
// hidden: httpK_backlog_jobs (jobs pending or leased as its last call
// answered) and httpK_drain_ms (how long the workers then took to embed
// them: work the calls/s figure does not include; null past 5 minutes).
// A server without workers never drains: --drain 0 skips the waits.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

const argv = process.argv.slice(2);
const opts = {};
for (let i = 0; i < argv.length; i += 2) opts[argv[i].replace(/^--/, '')] = argv[i + 1];
const url = new URL(opts.url);
const counts = (opts.clients || '1,10,50').split(',').map(Number);
const perClient = Number(opts.calls || 30);
const mix = opts.mix || 'mixed';
const run = Date.now().toString(36);
const cpuPids = (opts.cpu || '').split(',').filter(Boolean).map((kv) => kv.split('='));
// utime + stime of a process in ms (fields 14 and 15 of /proc/PID/stat, in
// clock ticks: 100 per second on Linux); null once it is gone.
function procCpuMs(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch { return null; }
}
const cpuNow = () => {
  const c = process.cpuUsage();
  const v = { client: (c.user + c.system) / 1000 };
  for (const [name, pid] of cpuPids) v[name] = procCpuMs(pid);
  return v;
};
const drain = opts.drain !== '0';
const neo4jPid = cpuPids.find(([name]) => name === 'neo4j')?.[1];
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

// One MCP client for the queue's state between phases (not timed).
const control = new Client({ name: 'load-control', version: '1.0.0' });
const controlTransport = new StreamableHTTPClientTransport(url);
await control.connect(controlTransport);
async function queueBacklog() {
  const r = await control.callTool({ name: 'queue_status', arguments: {} }, undefined, { timeout: 120000 });
  const c = r.structuredContent?.counts ?? {};
  return (c.pending ?? 0) + (c.leased ?? 0);
}
// Until the queue is idle (at most maxMs: bounded, a server without workers
// never drains); the ms it took, or null when it did not drain.
async function waitQueueIdle(maxMs = 300000) {
  const t0 = Date.now();
  while (Date.now() - t0 < maxMs) {
    if ((await queueBacklog()) === 0) return Date.now() - t0;
    await sleep(100);
  }
  return null;
}
async function waitDbCalm(maxMs = 120000) {
  if (!neo4jPid) return;
  const t0 = Date.now();
  let calm = 0, last = procCpuMs(neo4jPid);
  while (last != null && Date.now() - t0 < maxMs && calm < 2) {
    await sleep(500);
    const now = procCpuMs(neo4jPid);
    calm = now - last < 0.15 * 500 ? calm + 1 : 0;
    last = now;
  }
}

const pct = (s, p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];

async function oneClient(k, c, lat, calls = perClient) {
  const transport = new StreamableHTTPClientTransport(url);
  const client = new Client({ name: `load-${k}-${c}`, version: '1.0.0' });
  await client.connect(transport);
  let errors = 0;
  for (let j = 0; j < calls; j++) {
    const a = (mix === 'mixed' ? j % 2 === 0 : mix === 'create')
      ? ['create_entities', { entities: [{ name: `h-${run}-${k}-${c}-${j}`, entityType: 'bench', observations: [`client ${c} call ${j}`] }] }]
      : ['search_nodes', { query: `client ${c}` }];
    const t0 = process.hrtime.bigint();
    try {
      const r = await client.callTool({ name: a[0], arguments: a[1] }, undefined, { timeout: 120000 });
      if (r.isError) errors++;
    } catch { errors++; }
    lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  // end the session (DELETE), as a well-behaved client does: the server
  // keeps at most ENGRAM_MCP_HTTP_SESSIONS_PER_CLIENT (64) per address, and
  // a second run against the same server would otherwise be refused
  await transport.terminateSession().catch(() => {});
  await client.close();
  return errors;
}

// Untimed first: a few calls of each kind, so the database has planned
// their statements (a schema change, such as the floors' index DDL just
// before this load in bench/run compare, empties Neo4j's plan cache, and
// planning search_nodes' one statement took 0.23-0.27 s here) and the
// server's workers have run.  The stdio side warms up the same way.
await oneClient('warm', 0, [], 6);

const out = {};
for (const k of counts) {
  if (drain && (await waitQueueIdle()) == null) throw new Error('the queue did not drain in 5 minutes (no workers? --drain 0)');
  await waitDbCalm();
  const lat = [];
  const t0 = Date.now();
  const c0 = cpuNow();
  const errs = await Promise.all(Array.from({ length: k }, (_, c) => oneClient(k, c, lat)));
  const sec = (Date.now() - t0) / 1000;
  const c1 = cpuNow();
  out[`http${k}_backlog_jobs`] = await queueBacklog();
  out[`http${k}_drain_ms`] = drain ? await waitQueueIdle() : null;
  lat.sort((a, b) => a - b);
  out[`http${k}_calls_s`] = +(lat.length / sec).toFixed(1);
  out[`http${k}_p50_ms`] = +pct(lat, 50).toFixed(2);
  out[`http${k}_p99_ms`] = +pct(lat, 99).toFixed(2);
  out[`http${k}_errors`] = errs.reduce((a, b) => a + b, 0);
  if (cpuPids.length) {
    let sum = 0;
    for (const name of Object.keys(c1)) {
      const ms = c1[name] == null || c0[name] == null ? null : (c1[name] - c0[name]) / lat.length;
      out[`http${k}_cpu_ms_${name}`] = ms == null ? null : +ms.toFixed(3);
      sum += ms ?? 0;
    }
    const ceiling = sum > 0 ? (availableParallelism() * 1000) / sum : null;
    out[`http${k}_cpu_ceiling_calls_s`] = ceiling == null ? null : +ceiling.toFixed(1);
    out[`http${k}_ratio_to_cpu_ceiling`] = ceiling == null ? null : +(lat.length / sec / ceiling).toFixed(3);
  }
  process.stderr.write(`[http-load] ${k} clients: ${JSON.stringify(out)}\n`);
}
await controlTransport.terminateSession().catch(() => {});
await control.close();
console.log(JSON.stringify(out));
