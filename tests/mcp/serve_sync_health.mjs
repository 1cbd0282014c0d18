// serve_sync_health.mjs - `engram serve` with in-server workers in
// synchronous mode and its /health + /metrics endpoint, through the official
// SDK client over stdio against the real Neo4j.
//
// Checks: create_entities returns only after the embedding is written (the
// very next get_entity_embedding sees a vector of the index's dimensions);
// add_observations likewise gets the new version's vector; /health answers 200
// with the documented JSON; /metrics is Prometheus text with job counters.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import net from 'node:net';

const bin = process.argv[2];
const ns = `sync-${process.pid}-${Date.now().toString(36)}`;
const freePort = () => new Promise((res, rej) => {
  const s = net.createServer();
  s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); });
  s.on('error', rej);
});
const port = await freePort();
const env = {
  ...process.env,
  NEO4J_URI: process.env.ENGRAM_TEST_NEO4J_URI,
  NEO4J_USERNAME: process.env.ENGRAM_TEST_NEO4J_USER || 'neo4j',
  NEO4J_PASSWORD: process.env.ENGRAM_TEST_NEO4J_PASSWORD || '',
  ENGRAM_NAMESPACE: ns,
  MOCK_EMBEDDINGS: 'true',
  ENGRAM_EMBED_SYNC: '1',
  ENGRAM_EMBED_SYNC_TIMEOUT_MS: '20000',
  ENGRAM_HEALTH_PORT: String(port),
};
let failures = 0;
const check = (cond, what) => { if (!cond) { failures++; console.error(`FAIL: ${what}`); } else console.log(`ok: ${what}`); };

const client = new Client({ name: 'serve-sync-health', version: '1.0.0' });
await client.connect(new StdioClientTransport({ command: bin, args: ['serve', '--workers', '2'], env, stderr: 'inherit' }));
const call = async (name, args) => {
  const r = await client.callTool({ name, arguments: args }, undefined, { timeout: 60000 });
  if (r.isError) throw new Error(`${name}: ${r.content?.[0]?.text}`);
  return r.structuredContent;
};

try {
  const created = await call('create_entities', { entities: [
    { name: 'Sync Probe', entityType: 'test', observations: ['written before the call returns'] }] });
  // one job for the entity, one for its observation record (issue 13)
  check((created.jobIds ?? []).length === 2, 'create_entities enqueued two jobs (entity, observation record)');
  const emb = await call('get_entity_embedding', { entity_name: 'Sync Probe' });
  check(Array.isArray(emb.embedding) && emb.embedding.length === emb.dimensions && emb.dimensions > 0,
    `vector present right after create_entities (dims=${emb.dimensions})`);
  await call('add_observations', { observations: [{ entityName: 'Sync Probe', contents: ['a second fact'] }] });
  const emb2 = await call('get_entity_embedding', { entity_name: 'Sync Probe' });
  check(Array.isArray(emb2.embedding) && emb2.embedding.some((x, i) => x !== emb.embedding[i]),
    'the new version has its own vector right after add_observations');

  const h = await fetch(`http://127.0.0.1:${port}/health`);
  const body = await h.json();
  check(h.status === 200, `/health is 200 (got ${h.status}: ${JSON.stringify(body).slice(0, 300)})`);
  check(typeof body === 'object' && body !== null && 'status' in body, '/health body is the JSON report');
  const m = await fetch(`http://127.0.0.1:${port}/metrics`);
  const text = await m.text();
  check(m.status === 200 && /# TYPE \S+ /.test(text), '/metrics is Prometheus text');
  check(/completed/.test(text), '/metrics reports completed jobs');
  await call('delete_entities', { entityNames: ['Sync Probe'] });
} finally {
  await client.close();
}
console.log(`serve-sync-health: checks failed=${failures}`);
process.exit(failures ? 1 : 0);
