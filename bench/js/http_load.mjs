// http_load.mjs - many MCP clients at once over Streamable HTTP (the
// official SDK client), each making --calls mixed calls in sequence
// (create_entities with one entity, then search_nodes, alternating), for
// each client count in --clients.
//
// usage: node http_load.mjs --url http://127.0.0.1:PORT/mcp [--clients 1,10,50] [--calls 30]
//        [--mix mixed|create|search]   (create or search only: to see which costs what)
//        [--cpu engram=PID,neo4j=PID]  (processes whose CPU time to count, from /proc)
// Prints one JSON line: {httpK_calls_s, httpK_p50_ms, httpK_p99_ms, httpK_errors} per K,
// and with --cpu where the CPU went, per call: httpK_cpu_ms_<name> for each
// process and httpK_cpu_ms_client for this one (the load generator shares the
// machine), their sum over the cores as httpK_cpu_ceiling_calls_s (the rate at
// which these processes would fill every core), and httpK_ratio_to_cpu_ceiling.
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
const pct = (s, p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];

async function oneClient(k, c, lat) {
  const transport = new StreamableHTTPClientTransport(url);
  const client = new Client({ name: `load-${k}-${c}`, version: '1.0.0' });
  await client.connect(transport);
  let errors = 0;
  for (let j = 0; j < perClient; j++) {
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
  await client.close();
  return errors;
}

const out = {};
for (const k of counts) {
  const lat = [];
  const t0 = Date.now();
  const c0 = cpuNow();
  const errs = await Promise.all(Array.from({ length: k }, (_, c) => oneClient(k, c, lat)));
  const sec = (Date.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  out[`http${k}_calls_s`] = +(lat.length / sec).toFixed(1);
  out[`http${k}_p50_ms`] = +pct(lat, 50).toFixed(2);
  out[`http${k}_p99_ms`] = +pct(lat, 99).toFixed(2);
  out[`http${k}_errors`] = errs.reduce((a, b) => a + b, 0);
  if (cpuPids.length) {
    const c1 = cpuNow();
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
console.log(JSON.stringify(out));
