// wipe.js - empty the benchmark's private Neo4j between the two sides of a
// benchmark: every node, constraint and index (so each side sets up its own
// schema exactly as it would on a fresh database).  Only ever pointed at the
// throwaway instance bench/run starts.
const neo4j = require('neo4j-driver');

async function main() {
  const uri = process.env.BENCH_NEO4J_URI;
  const driver = neo4j.driver(uri, neo4j.auth.basic(process.env.BENCH_NEO4J_USER || 'neo4j',
    process.env.BENCH_NEO4J_PASSWORD || ''));
  const session = driver.session();
  try {
    await session.run('MATCH (n) CALL { WITH n DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS');
    for (const kind of ['CONSTRAINTS', 'INDEXES']) {
      const res = await session.run(`SHOW ${kind} YIELD name, type RETURN name, type`);
      for (const r of res.records) {
        if (r.get('type') === 'LOOKUP') continue; // built-in token lookup indexes
        await session.run(`DROP ${kind === 'CONSTRAINTS' ? 'CONSTRAINT' : 'INDEX'} \`${r.get('name').replace(/`/g, '``')}\` IF EXISTS`);
      }
    }
  } finally {
    await session.close();
    await driver.close();
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
