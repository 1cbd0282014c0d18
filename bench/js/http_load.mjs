// http_load.mjs - many MCP clients at once over Streamable HTTP (the
// official SDK client), each making --calls mixed calls in sequence
// (create_entities with one entity, then search_nodes, alternating), for
// each client count in --clients.
//
// usage: node http_load.mjs --url http://127.0.0.1:PORT/mcp [--clients 1,10,50] [--calls 30]
// Prints one JSON line: {httpK_calls_s, httpK_p50_ms, httpK_p99_ms, httpK_errors} per K.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const argv = process.argv.slice(2);
const opts = {};
for (let i = 0; i < argv.length; i += 2) opts[argv[i].replace(/^--/, '')] = argv[i + 1];
const url = new URL(opts.url);
const counts = (opts.clients || '1,10,50').split(',').map(Number);
const perClient = Number(opts.calls || 30);
const run = Date.now().toString(36);
const pct = (s, p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];

async function oneClient(k, c, lat) {
  const transport = new StreamableHTTPClientTransport(url);
  const client = new Client({ name: `load-${k}-${c}`, version: '1.0.0' });
  await client.connect(transport);
  let errors = 0;
  for (let j = 0; j < perClient; j++) {
    const a = j % 2 === 0
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
  const errs = await Promise.all(Array.from({ length: k }, (_, c) => oneClient(k, c, lat)));
  const sec = (Date.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  out[`http${k}_calls_s`] = +(lat.length / sec).toFixed(1);
  out[`http${k}_p50_ms`] = +pct(lat, 50).toFixed(2);
  out[`http${k}_p99_ms`] = +pct(lat, 99).toFixed(2);
  out[`http${k}_errors`] = errs.reduce((a, b) => a + b, 0);
  process.stderr.write(`[http-load] ${k} clients: ${JSON.stringify(out)}\n`);
}
console.log(JSON.stringify(out));
