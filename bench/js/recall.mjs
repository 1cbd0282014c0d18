// recall.mjs - retrieval quality on LoCoMo through engram's own MCP tools
// (driven by bench/recall.sh).
//
// For each embedding model and each conversation: a fresh namespace, one
// `engram serve` over stdio (the official SDK client) with in-server
// workers; one entity per session (its turns as observations that keep
// speaker and dia_id: "[D1:3] Caroline: ..."), stored as an agent would
// store them with create_entities; the time until the durable queue has
// embedded everything; then every question of categories 1-4 asked with
// semantic_search in three modes:
//   hybrid   hybrid_search: true (engram's fusion of its two legs)
//   vector   hybrid_search: false
//   keyword  hybrid_search: true, semantic_weight: 0, keeping only the
//            entities the keyword leg found (keywordRank set)
// Metrics (category 1-4 questions):
//   session level: R@5, R@10, nDCG@10 (binary relevance: the sessions that
//   hold an evidence turn), MRR, over the ranked sessions;
//   turn level: the matched observations of the returned entities
//   (matchedObservations, at most 5 per entity), all of them ordered by their
//   score across entities (ties: entity rank, then their order in the
//   entity), are the ranked turns (the dia_id is read from the text; the
//   "session date" observation is not a turn); keyword mode keeps those the
//   keyword leg matched (keywordRank set); R@5, R@10, nDCG@10 and MRR of the
//   evidence turns among them; turn_in_context orders them by their score
//   plus their entity's score instead (hybrid scores already hold half of
//   their entity's, so this counts it twice).
// Reference line, computed here: plain BM25 (k1 1.2, b 0.75, lower-cased
// word tokens, no stop list) over the same session texts and over single
// turns.
//
// usage: node recall.mjs --engram BIN --data FILE --models m1,m2 [--out FILE]
// NEO4J_* in the environment.  Progress on stderr; the last stdout line is
// one JSON object.  The data file is read, never copied.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) =>
  (v.startsWith('--') ? [...a, [v.slice(2), all[i + 1]]] : a), []));
const bin = args.engram;
const data = JSON.parse(readFileSync(args.data, 'utf8'));
const models = (args.models || 'offline,all-MiniLM-L6-v2,bge-small-en-v1.5').split(',');
const K = 10;
// BENCH_RECALL_DUMP=FILE: also write each question's keyword and vector
// session rankings (40 deep, with each leg's own scores: BM25, similarity)
// as JSON lines, to study the fusion offline.
const dumpFile = process.env.BENCH_RECALL_DUMP;
const dump = [];
const say = (s) => process.stderr.write(`[recall] ${s}\n`);

// ---- the dataset ----------------------------------------------------------

function sessionsOf(conv) {
  const out = [];
  for (let k = 1; conv[`session_${k}`]; k++) {
    const turns = conv[`session_${k}`].map((t) => ({
      dia: t.dia_id,
      text: `${t.speaker}: ${t.text}${t.blip_caption ? ` [shares a photo: ${t.blip_caption}]` : ''}`,
    }));
    out.push({ k, date: conv[`session_${k}_date_time`] || '', turns });
  }
  return out;
}
const sessionOfDia = (dia) => Number(/^D(\d+):/.exec(dia)?.[1]);
const questions = (sample) => sample.qa.filter((q) => [1, 2, 3, 4].includes(q.category) && q.evidence?.length);

// ---- metrics ---------------------------------------------------------------

function score(ranked, relevant) {
  // ranked: ids in rank order; relevant: Set of ids
  const hitAt = (k) => ranked.slice(0, k).some((x) => relevant.has(x)) ? 1 : 0;
  let dcg = 0;
  ranked.slice(0, K).forEach((x, i) => { if (relevant.has(x)) dcg += 1 / Math.log2(i + 2); });
  let idcg = 0;
  for (let i = 0; i < Math.min(relevant.size, K); i++) idcg += 1 / Math.log2(i + 2);
  const first = ranked.findIndex((x) => relevant.has(x));
  return { r5: hitAt(5), r10: hitAt(10), ndcg10: idcg ? dcg / idcg : 0, mrr: first >= 0 ? 1 / (first + 1) : 0 };
}
function mean(list) {
  const out = { r5: 0, r10: 0, ndcg10: 0, mrr: 0 };
  for (const s of list) for (const k in out) out[k] += s[k];
  for (const k in out) out[k] = Number((out[k] / Math.max(1, list.length)).toFixed(4));
  return out;
}
const pct = (xs, p) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return Number(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))].toFixed(2));
};

// ---- the BM25 reference line ---------------------------------------------

const tokens = (s) => s.toLowerCase().match(/[\p{L}\p{N}]+/gu) || [];
function bm25(docs, k1 = 1.2, b = 0.75) {
  const toks = docs.map((d) => tokens(d.text));
  const avg = toks.reduce((a, t) => a + t.length, 0) / Math.max(1, toks.length);
  const df = new Map();
  for (const t of toks) for (const w of new Set(t)) df.set(w, (df.get(w) || 0) + 1);
  const tf = toks.map((t) => { const m = new Map(); for (const w of t) m.set(w, (m.get(w) || 0) + 1); return m; });
  const N = docs.length;
  return (query) => {
    const q = [...new Set(tokens(query))];
    return docs.map((d, i) => {
      let s = 0;
      for (const w of q) {
        const f = tf[i].get(w);
        if (!f) continue;
        const idf = Math.log(1 + (N - df.get(w) + 0.5) / (df.get(w) + 0.5));
        s += idf * ((f * (k1 + 1)) / (f + k1 * (1 - b + (b * toks[i].length) / avg)));
      }
      return { id: d.id, s };
    }).filter((x) => x.s > 0).sort((a, b) => b.s - a.s).map((x) => x.id);
  };
}

function bm25Reference() {
  const sess = [], turn = [];
  for (const sample of data) {
    const ss = sessionsOf(sample.conversation);
    const sRank = bm25(ss.map((s) => ({ id: s.k, text: s.turns.map((t) => t.text).join('\n') })));
    const tRank = bm25(ss.flatMap((s) => s.turns.map((t) => ({ id: t.dia, text: t.text }))));
    for (const q of questions(sample)) {
      sess.push(score(sRank(q.question), new Set(q.evidence.map(sessionOfDia))));
      turn.push(score(tRank(q.question), new Set(q.evidence)));
    }
  }
  return { session: mean(sess), turn: mean(turn) };
}

// ---- engram ----------------------------------------------------------------

// The turns a search returned, best first: every matched observation of every
// returned entity, by its score across entities; a sort that keeps equal
// scores in entity rank, then in-entity order.
function rankedTurns(ents, mode, inContext = false) {
  const all = [];
  for (const e of ents) {
    for (const o of e.matchedObservations ?? []) {
      if (mode === 'keyword' && o.keywordRank == null) continue;
      const dia = /^\[(D\d+:\d+)\]/.exec(o.text)?.[1];
      if (dia) all.push({ dia, s: o.score + (inContext ? e.score : 0) });
    }
  }
  all.sort((a, b) => b.s - a.s);
  return [...new Set(all.map((x) => x.dia))];
}

async function connect(env) {
  const transport = new StdioClientTransport({ command: bin, args: ['serve'], env, stderr: 'ignore' });
  const client = new Client({ name: 'engram-recall-bench', version: '1.0.0' });
  await client.connect(transport);
  const tool = async (name, a = {}) => {
    const res = await client.callTool({ name, arguments: a });
    if (res.isError) throw new Error(`${name}: ${res.content?.[0]?.text}`);
    return res.structuredContent ?? JSON.parse(res.content[0].text);
  };
  return { client, tool };
}

function envFor(model, ns) {
  const env = { ...process.env, ENGRAM_NAMESPACE: ns, ENGRAM_WORKERS: process.env.ENGRAM_WORKERS || '2' };
  delete env.OPENAI_API_KEY;
  delete env.MOCK_EMBEDDINGS;
  delete env.NEO4J_VECTOR_DIMENSIONS;
  if (model === 'offline') {
    env.ENGRAM_EMBED_PROVIDER = 'offline';
  } else {
    env.ENGRAM_EMBED_PROVIDER = 'local';
    env.ENGRAM_LOCAL_MODEL = model;
  }
  return env;
}

async function runModel(model, tag) {
  const perMode = {};
  for (const m of ['hybrid', 'vector', 'keyword']) perMode[m] = { s: [], t: [], tc: [], ms: [] };
  for (const wx of (process.env.BENCH_RECALL_WEIGHTS || '').split(',').filter(Boolean)) {
    perMode[`hybrid@${wx}`] = { s: [], t: [], tc: [], ms: [] };
  }
  let embedMs = 0, entities = 0;
  for (const [ci, sample] of data.entries()) {
    const ns = `recall-${tag}-${sample.sample_id}`;
    const env = envFor(model, ns);
    if (ci === 0) {
      // The vector index holds one dimension: size it for this model (a
      // switch on the still empty namespace does that and nothing else).
      execFileSync(bin, ['reembed', '--switch-model', '--namespace', ns], { env, stdio: ['ignore', 'ignore', 'ignore'] });
    }
    const { client, tool } = await connect(env);
    const sessions = sessionsOf(sample.conversation);
    const name = (s) => `${sample.sample_id} session ${s.k}`;
    await tool('delete_entities', { entityNames: sessions.map(name) });
    const t0 = Date.now();
    await tool('create_entities', {
      entities: sessions.map((s) => ({
        name: name(s), entityType: 'session',
        observations: [`session date: ${s.date}`, ...s.turns.map((t) => `[${t.dia}] ${t.text}`)],
      })),
    });
    entities += sessions.length;
    for (;;) {
      const c = (await tool('queue_status')).counts || {};
      if (!(c.pending || c.leased)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    embedMs += Date.now() - t0;
    const bySession = new Map(sessions.map((s) => [name(s), s]));
    for (const q of questions(sample)) {
      const relS = new Set(q.evidence.map(sessionOfDia));
      const relT = new Set(q.evidence);
      for (const mode of Object.keys(perMode)) {
        const a = { query: q.question, limit: K, min_similarity: 0 };
        if (mode === 'vector') a.hybrid_search = false;
        else a.hybrid_search = true;
        if (mode === 'keyword') a.semantic_weight = 0;
        if (mode.startsWith('hybrid@')) a.semantic_weight = Number(mode.slice(7));
        const t1 = process.hrtime.bigint();
        const res = await tool('semantic_search', a);
        perMode[mode].ms.push(Number(process.hrtime.bigint() - t1) / 1e6);
        let ents = res.entities ?? res.matches ?? [];
        if (mode === 'keyword') ents = ents.filter((e) => e.keywordRank != null);
        const ranked = ents.map((e) => bySession.get(e.name)).filter(Boolean);
        perMode[mode].s.push(score(ranked.map((s) => s.k), relS));
        perMode[mode].t.push(score(rankedTurns(ents, mode), relT));
        perMode[mode].tc.push(score(rankedTurns(ents, mode, true), relT));
      }
    }
    if (dumpFile) {
      for (const q of questions(sample)) {
        const legs = {};
        for (const [leg, a] of [['keyword', { hybrid_search: true, semantic_weight: 0 }], ['vector', { hybrid_search: false }]]) {
          const res = await tool('semantic_search', { query: q.question, limit: 40, min_similarity: 0, ...a });
          let ents = res.entities ?? [];
          if (leg === 'keyword') ents = ents.filter((e) => e.keywordRank != null);
          ents = ents.filter((e) => bySession.has(e.name));
          legs[leg] = ents.map((e) => bySession.get(e.name).k);
          if (leg === 'vector') legs.vector_similarity = ents.map((e) => e.score);
          else legs.keyword_score = ents.map((e) => e.keywordScore);
        }
        dump.push({ model, conv: sample.sample_id, category: q.category, q: q.question, rel: [...new Set(q.evidence.map(sessionOfDia))], ...legs });
      }
    }
    await tool('delete_entities', { entityNames: sessions.map(name) });
    await client.close();
    say(`${model}: ${sample.sample_id} done (${sessions.length} sessions)`);
  }
  const out = { embed_ms: embedMs, entities };
  for (const [mode, v] of Object.entries(perMode)) {
    out[mode] = { session: mean(v.s), turn: mean(v.t), turn_in_context: mean(v.tc), p50_ms: pct(v.ms, 50), p95_ms: pct(v.ms, 95), questions: v.s.length };
  }
  return out;
}

const result = { bench: 'recall', data: args.data.split('/').pop(), k: K, models: {} };
result.bm25 = bm25Reference();
say(`BM25 reference: session R@10 ${result.bm25.session.r10}, turn R@10 ${result.bm25.turn.r10}`);
const tag = Date.now().toString(36);
for (const m of models) {
  say(`model ${m}`);
  result.models[m] = await runModel(m, `${tag}-${m.replace(/[^a-z0-9]/gi, '').slice(0, 12)}`);
  const h = result.models[m].hybrid;
  say(`  hybrid session R@10 ${h.session.r10} R@5 ${h.session.r5}, turn R@10 ${h.turn.r10}, p95 ${h.p95_ms} ms`);
}
if (dumpFile) (await import('node:fs')).writeFileSync(dumpFile, dump.map((d) => JSON.stringify(d)).join('\n') + '\n');
process.stdout.write(`${JSON.stringify(result)}\n`);
