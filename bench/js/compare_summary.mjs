// compare_summary.mjs - the final JSON line of `bench/run compare`, from the
// parts in the environment (each a JSON object): FLOOR (bench_compare, on
// the warm JVM) and FLOOR_COLD (its first run),
// ENGRAM_SIDE, OFFICIAL, MEMENTO (compare.mjs), HTTP (http_load.mjs) and
// JVM_RSS_KB.  The sides are kept whole under their names; the headline keys
// the issue names are computed here, null when a side did not reach the size.
const part = (k) => { try { return JSON.parse(process.env[k] || '{}'); } catch { return {}; } };
const floor = part('FLOOR'), floorCold = part('FLOOR_COLD'), engram = part('ENGRAM_SIDE'), official = part('OFFICIAL');
const memento = part('MEMENTO'), http = part('HTTP'), vfloor = part('VECTOR_FLOOR'), ofloor = part('OBS_VECTOR_FLOOR');
const jvm = Number(process.env.JVM_RSS_KB) || null;

const get = (side, size, w, q = 'p50') => side.sizes?.[size]?.[w]?.[q] ?? null;
const ratio = (a, b) => (a != null && b != null && b > 0 ? +(a / b).toFixed(3) : null);

// create p50 over a floor, worst size
const worstOver = (floorMs, w = 'create') => {
  let worst = null;
  for (const size of Object.keys(engram.sizes ?? {})) {
    const r = ratio(get(engram, size, w), floorMs);
    if (r != null && (worst == null || r > worst)) worst = r;
  }
  return worst;
};
const worst = worstOver(floor.write_p50_ms);
const largest = (side) => Math.max(...Object.keys(side.sizes ?? {}).map(Number).filter((s) => side.sizes[s].create));
const engBulk = Object.values(engram.sizes ?? {}).map((r) => r.bulk_entities_s).filter((x) => x);
// the bulk load counted until its embeddings are stored too (drain_ms: the
// wait for the queue to be idle after it)
const engBulkEmbedded = Object.values(engram.sizes ?? {})
  .filter((r) => r.bulk_entities_s && r.bulk_s > 0 && r.drain_ms != null)
  .map((r) => Math.round((r.bulk_entities_s * r.bulk_s) / (r.bulk_s + r.drain_ms / 1000)));
const maxOf = (a) => (a.length ? Math.max(...a) : null);

const out = {
  bench: 'compare',
  floor_write_p50_ms: floor.write_p50_ms ?? null,
  floor_concurrent_commits_s_50: floor.concurrent_commits_s_50 ?? null,
  floor_bulk_nodes_s: floor.bulk_nodes_s ?? null,
  create_p50_ratio_to_floor_max: worst,
  floor_guarded_write_p50_ms: floor.guarded_write_p50_ms ?? null,
  // the same floors measured first, on the just-started JVM (compare.sh)
  floor_cold_write_p50_ms: floorCold.write_p50_ms ?? null,
  floor_cold_guarded_write_p50_ms: floorCold.guarded_write_p50_ms ?? null,
  floor_guarded_bulk_entities_s: floor.guarded_bulk_entities_s ?? null,
  // the floor of a bulk create: everything one entity with two observations writes
  floor_guarded_full_bulk_entities_s: floor.guarded_full_bulk_entities_s ?? null,
  create_p50_ratio_to_guarded_floor_max: worstOver(floor.guarded_write_p50_ms),
  // the same with each call made once the embedding of the calls before it is done
  create_idle_p50_ratio_to_floor_max: worstOver(floor.write_p50_ms, 'create_idle'),
  create_idle_p50_ratio_to_guarded_floor_max: worstOver(floor.guarded_write_p50_ms, 'create_idle'),
  // the write floor made 50 ms after the previous one: an idle machine's, under the _idle workloads
  floor_idle_write_p50_ms: floor.idle_write_p50_ms ?? null,
  create_idle_p50_ratio_to_idle_floor_max: worstOver(floor.idle_write_p50_ms, 'create_idle'),
  // the warm-up phase (compare.mjs --warm-s): the first and last 100 creates of
  // a fresh server (and, for engram, a Neo4j JVM that had not run its statements)
  cold_create_p50_ms_engram: engram.warm?.first100_create_p50 ?? null,
  warm_create_p50_ms_engram: engram.warm?.last100_create_p50 ?? null,
  cold_create_p50_ms_official: official.warm?.first100_create_p50 ?? null,
  warm_create_p50_ms_official: official.warm?.last100_create_p50 ?? null,
  speedup_vs_official_create_cold: ratio(official.warm?.first100_create_p50, engram.warm?.first100_create_p50),
  speedup_vs_official_create_idle_1k: ratio(get(official, 1000, 'create_idle'), get(engram, 1000, 'create_idle')),
  speedup_vs_official_create_idle_10k: ratio(get(official, 10000, 'create_idle'), get(engram, 10000, 'create_idle')),
  speedup_vs_official_create_1k: ratio(get(official, 1000, 'create'), get(engram, 1000, 'create')),
  speedup_vs_official_create_10k: ratio(get(official, 10000, 'create'), get(engram, 10000, 'create')),
  speedup_vs_official_create_100k: ratio(get(official, 100000, 'create'), get(engram, 100000, 'create')),
  speedup_vs_official_search_1k: ratio(get(official, 1000, 'search_hit'), get(engram, 1000, 'search_hit')),
  speedup_vs_official_search_10k: ratio(get(official, 10000, 'search_hit'), get(engram, 10000, 'search_hit')),
  speedup_vs_official_search_100k: ratio(get(official, 100000, 'search_hit'), get(engram, 100000, 'search_hit')),
  speedup_vs_memento_create_10k: ratio(get(memento, 10000, 'create'), get(engram, 10000, 'create')),
  search_p95_ms_100k: Math.max(get(engram, 100000, 'search_hit', 'p95') ?? -1, get(engram, 100000, 'search_miss', 'p95') ?? -1),
  semantic_p95_ms_100k: get(engram, 100000, 'semantic', 'p95'),
  hybrid_p95_ms_100k: get(engram, 100000, 'hybrid', 'p95'),
  // the entity index's (100,000 vectors at 100k) and the observation
  // index's, the one semantic_search reads (about three per entity)
  floor_vector_query_p95_ms: vfloor.vector_query_p95_ms ?? null,
  floor_vector_query_vectors: vfloor.vectors ?? null,
  semantic_p95_ratio_to_vector_floor_100k: ratio(get(engram, 100000, 'semantic', 'p95'), vfloor.vector_query_p95_ms),
  floor_obs_vector_query_p95_ms: ofloor.vector_query_p95_ms ?? null,
  floor_obs_vector_query_vectors: ofloor.vectors ?? null,
  semantic_p95_ratio_to_obs_vector_floor_100k: ratio(get(engram, 100000, 'semantic', 'p95'), ofloor.vector_query_p95_ms),
  bulk_entities_s: engBulk.length ? Math.max(...engBulk) : null,
  bulk_ratio_to_floor: ratio(engBulk.length ? Math.max(...engBulk) : null, floor.bulk_nodes_s),
  bulk_ratio_to_guarded_floor: ratio(engBulk.length ? Math.max(...engBulk) : null, floor.guarded_full_bulk_entities_s),
  // what storing the embeddings costs the database (bench_compare's embedded
  // floor: each entity's three vectors and job completions, at embed_dims),
  // and the floor of writing then embedding each entity
  floor_embed_dims: floor.embed_dims ?? null,
  floor_embedded_entities_s: floor.embedded_entities_s ?? null,
  floor_guarded_full_embedded_entities_s: floor.guarded_full_embedded_entities_s ?? null,
  bulk_embedded_entities_s: maxOf(engBulkEmbedded),
  bulk_embedded_ratio_to_floor: ratio(maxOf(engBulkEmbedded), floor.guarded_full_embedded_entities_s),
  rss_kb_engram: engram.rss_peak_kb ?? null,
  rss_kb_neo4j_jvm: jvm,
  rss_kb_memento: memento.rss_peak_kb ?? null,
  rss_kb_official: official.rss_peak_kb ?? null,
  rss_ratio_to_memento: ratio(engram.rss_peak_kb, memento.rss_peak_kb),
  http1_calls_s: http.http1_calls_s ?? null,
  http10_calls_s: http.http10_calls_s ?? null,
  http50_calls_s: http.http50_calls_s ?? null,
  http50_p50_ms: http.http50_p50_ms ?? null,
  http50_p99_ms: http.http50_p99_ms ?? null,
  http50_errors: http.http50_errors ?? null,
  // embedding jobs still pending as the last call answered, and the ms the
  // workers then took to store them (work the calls/s figure leaves out)
  http50_backlog_jobs: http.http50_backlog_jobs ?? null,
  http50_drain_ms: http.http50_drain_ms ?? null,
  http50_ratio_to_floor: ratio(http.http50_calls_s, floor.concurrent_commits_s_50),
  // the CPU each call cost (ms) and the rate at which that fills every core
  http50_cpu_ms_engram: http.http50_cpu_ms_engram ?? null,
  http50_cpu_ms_neo4j: http.http50_cpu_ms_neo4j ?? null,
  http50_cpu_ms_client: http.http50_cpu_ms_client ?? null,
  http50_cpu_ceiling_calls_s: http.http50_cpu_ceiling_calls_s ?? null,
  http50_ratio_to_cpu_ceiling: http.http50_ratio_to_cpu_ceiling ?? null,
  official_largest_size: Number.isFinite(largest(official)) ? largest(official) : null,
  memento_largest_size: Number.isFinite(largest(memento)) ? largest(memento) : null,
  memento_stop_reason: memento.stop_reason ?? null,
  official_stop_reason: official.stop_reason ?? null,
  // the sizes measured with the database's JVM still busy (compare.mjs --settle-s)
  engram_settle_capped_sizes: Object.keys(engram.sizes ?? {}).filter((s) => engram.sizes[s].settle_capped).map(Number),
  floor,
  floor_cold: floorCold,
  vector_floor: vfloor,
  obs_vector_floor: ofloor,
  engram,
  official,
  memento,
  http,
};
if (out.search_p95_ms_100k < 0) out.search_p95_ms_100k = null;
console.log(JSON.stringify(out));
