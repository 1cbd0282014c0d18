// demo.mjs - the `make run` demo: a real MCP client (the official SDK)
// drives `engram serve` over stdio, with in-server embedding workers and
// engram's default provider: the built-in sentence encoder when no
// OPENAI_API_KEY is set (the n-gram fallback, said loudly, when its weights
// are not installed).  It creates a few entities and relations, watches
// their embedding jobs complete, searches, prints the queue status, and ends
// with how to connect Claude Desktop, Cursor or the Inspector.
//
// The last search asks a paraphrase that shares no content word with the
// stored observation ("who looked after the sick animals?" against "worked
// as a veterinarian"): only real sentence embeddings find it, so it is the
// newcomer's proof that semantic memory works.  With a sentence encoder the
// demo fails (exit 1) when that entity is not ranked first.
//
// usage: node demo.mjs ENGRAM_BINARY      (NEO4J_* come from the environment)
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const bin = process.argv[2];
const ns = process.env.ENGRAM_DEMO_NAMESPACE || 'engram-demo';
const env = { ...process.env, ENGRAM_NAMESPACE: ns };

const transport = new StdioClientTransport({ command: bin, args: ['serve'], env, stderr: 'inherit' });
const client = new Client({ name: 'engram-demo', version: '1.0.0' });
const say = (s) => process.stdout.write(`${s}\n`);

async function tool(name, args = {}) {
  const res = await client.callTool({ name, arguments: args });
  if (res.isError) throw new Error(`${name}: ${res.content?.[0]?.text}`);
  return res.structuredContent ?? JSON.parse(res.content[0].text);
}

await client.connect(transport);
const info = client.getServerVersion();
say(`\n== connected to ${info.name} ${info.version} over stdio`);
const { tools } = await client.listTools();
say(`   ${tools.length} tools: ${tools.map((t) => t.name).join(', ')}`);

const entities = [
  { name: 'Ada Lovelace', entityType: 'person',
    observations: ['Wrote the first published computer program, for the Analytical Engine',
      'Mathematician who described loops and subroutines for a mechanical computer'] },
  { name: 'Analytical Engine', entityType: 'machine',
    observations: ['A general-purpose mechanical computer designed by Charles Babbage',
      'Programs were to be given on punched cards'] },
  { name: 'Neo4j', entityType: 'database',
    observations: ['A graph database that stores nodes and relationships',
      'Queried with the Cypher language over the Bolt protocol'] },
  { name: 'engram', entityType: 'project',
    observations: ['A knowledge-graph memory for LLM agents written in C',
      'Stores its memory and its embedding job queue in Neo4j'] },
  { name: 'Maria Santos', entityType: 'person',
    observations: ['Worked as a veterinarian in Lisbon for twenty years'] },
  { name: 'Tom Becker', entityType: 'person',
    observations: ['Repairs bicycles in a small shop near the harbour'] },
];
// Start from a clean slate in the demo namespace, so the demo can be rerun.
await tool('delete_entities', { entityNames: entities.map((e) => e.name) });
const created = await tool('create_entities', { entities });
say(`\n== create_entities: ${entities.length} entities, embedding jobs ${JSON.stringify(created.jobIds ?? [])}`);
await tool('create_relations', { relations: [
  { from: 'Ada Lovelace', to: 'Analytical Engine', relationType: 'wrote_programs_for', strength: 0.9, confidence: 0.95 },
  { from: 'engram', to: 'Neo4j', relationType: 'stores_memory_in' },
] });
say('== create_relations: Ada Lovelace -wrote_programs_for-> Analytical Engine, engram -stores_memory_in-> Neo4j');

say('\n== waiting for the embedding jobs (in-server workers)');
const t0 = Date.now();
let status;
for (;;) {
  status = await tool('queue_status');
  const c = status.counts || {};
  say(`   pending=${c.pending ?? 0} leased=${c.leased ?? 0} completed=${c.completed ?? 0} dead=${c.dead ?? 0}`);
  if (!(c.pending || c.leased)) break;
  if (Date.now() - t0 > 60000) { say('   (still running after 60 s; continuing)'); break; }
  await new Promise((r) => setTimeout(r, 500));
}
say(`   done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

const question = 'who wrote programs for a mechanical computer?';
const sem = await tool('semantic_search', { query: question, limit: 3, min_similarity: 0 });
say(`\n== semantic_search "${question}"`);
say(`   (${sem.searchType} search: keyword and vector rankings fused; vector = cosine similarity score)`);
for (const m of sem.matches ?? []) {
  say(`   vector ${(m.vectorScore ?? 0).toFixed(3)}  fused ${(m.score ?? 0).toFixed(4)}  ${m.name ?? m.entityName}`);
}

// The paraphrase: no content word in common with the stored observation.
const cfg = await tool('debug_embedding_config');
const paraphrase = 'who looked after the sick animals?';
const para = await tool('semantic_search', { query: paraphrase, limit: 3, min_similarity: 0, hybrid_search: false });
say(`\n== semantic_search "${paraphrase}" (vector only; provider ${cfg.provider}, model ${cfg.providerModel ?? cfg.model})`);
for (const m of para.matches ?? []) {
  say(`   vector ${(m.vectorScore ?? m.score ?? 0).toFixed(3)}  ${m.name ?? m.entityName}`);
}
const top = para.matches?.[0]?.name ?? para.matches?.[0]?.entityName;
const encoder = !cfg.fallback && !/offline|n-gram|hash/i.test(`${cfg.provider} ${cfg.providerModel ?? cfg.model}`);
if (top === 'Maria Santos') {
  say('   found by meaning: "worked as a veterinarian" shares no word with the question');
} else if (encoder) {
  say(`   FAILED: expected "Maria Santos" first, got ${JSON.stringify(top)}`);
  process.exitCode = 1;
} else {
  say('   not found: the n-gram fallback only matches words.  Install the local sentence encoder');
  say('   (scripts/install-models.sh, run by scripts/setup.sh) for semantic recall.');
}

const kw = await tool('search_nodes', { query: 'Cypher' });
say('\n== search_nodes "Cypher"');
for (const e of kw.entities ?? []) say(`   ${e.name} (${e.entityType})`);

status = await tool('queue_status');
say(`\n== queue_status\n${JSON.stringify(status, null, 2).split('\n').map((l) => `   ${l}`).join('\n')}`);
await client.close();

const neo = { NEO4J_URI: env.NEO4J_URI, NEO4J_USERNAME: env.NEO4J_USERNAME || 'neo4j', NEO4J_PASSWORD: '<your password>' };
say(`
== connect your agent
Claude Desktop (claude_desktop_config.json) or Cursor (.cursor/mcp.json):
${JSON.stringify({ mcpServers: { engram: { command: bin, args: ['serve'], env: neo } } }, null, 2)}

MCP Inspector:
  npx @modelcontextprotocol/inspector@0.15.0 ${bin} serve
(the demo wrote into namespace "${ns}"; your agent uses ENGRAM_NAMESPACE, default "default")`);
