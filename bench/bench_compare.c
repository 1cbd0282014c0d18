/*
 * bench_compare.c - the floors `bench/run compare` sets engram's figures
 * against, measured on the same Neo4j in the same run through our own Bolt
 * client (what no server built on that Neo4j can beat):
 *
 *   write     : one single-node write transaction at a time on one
 *               connection, BEGIN + RUN + PULL + COMMIT pipelined (the RUN
 *               is queued lazily and discarded, so the four messages leave in
 *               one write and the commit's answer ends the round trip);
 *               p50/p95 ms over --writes transactions; then the same
 *               write 60 times, each 50 ms after the last (idle_write_p50_ms)
 *   concurrent: --threads lists client counts (e.g. 1,10,50); each thread
 *               owns a connection and commits single-node write transactions
 *               for --seconds; commits/s in all, per count
 *   bulk      : --bulk nodes created 500 per transaction (UNWIND), one
 *               connection; nodes/s
 *   guarded   : the same single write and bulk rate for what one engram
 *               entity must write whatever the server: the entity, its
 *               first history version and its embedding job, in one
 *               statement, on labels carrying the indexes engram's labels
 *               carry (BenchFloorEntity/Version/Job, created here and
 *               dropped at the end) but the TEXT index a one-entity write
 *               leaves to the search indexer; --writes / 4 transactions,
 *               --bulk / 10 entities
 *   guarded full: the bulk rate of what one entity of a bulk create
 *               writes (GUARD_FULL_WRITE: the above, its searchText under
 *               the TEXT index, two observation records and the jobs of
 *               the entity and of each record: 7 nodes, engram's
 *               properties); --bulk / 10 entities
 *   embedded  : what embedding those entities costs the database, with
 *               --dims (1536) dimensions: the vector of each entity and of
 *               each of its two records (vector indexes on the floor's
 *               labels, as engram's), written through
 *               db.create.setNodeVectorProperty with the embedding
 *               properties engram sets, and the three jobs marked
 *               completed; EMBED_BATCH vectors per transaction (a worker's
 *               batch), min(--bulk / 10, EMBED_MAX) entities; entities/s.
 *               No claim (lease) and no provider: the least any
 *               implementation of the queue pays to store its results.
 *               --dims 0 skips it.
 *
 * With --vector-index NAME it measures only the vector floor instead:
 * db.index.vector.queryNodes(NAME, 100, v) for --vector-samples (30)
 * vectors already stored on :Entity nodes (the database as a benchmark left
 * it), one auto-commit query each; p50/p95 ms, and how many vectors the
 * index holds (its label's nodes with an embedding).  It writes nothing.
 *
 * Every node it writes carries the label BenchFloor and this run's id and is
 * deleted at the end.  Connection: BENCH_NEO4J_URI/_USER/_PASSWORD.  Prints
 * one JSON line on stdout; errors on stderr, exit 1.
 *
 * Thread-safety: the concurrent floor's threads share only atomics.
 */
#include "bench_graph.h"
#include "bolt/conn.h"
#include "bolt/packstream.h"
#include "core/alloc.h"
#include "core/clock.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char g_run[32];

static int fail(const char *what, const eg_error *err)
{
    fprintf(stderr, "bench_compare: %s: %s %s\n", what, err->message, err->neo4j_code);
    return -1;
}

#define PLAIN_WRITE "CREATE (:BenchFloor {run: $run, i: $i})"

/* One write transaction of `cypher` (parameters $run, $i), its four
 * messages in one write. */
static int write_one(bolt_conn *c, const char *cypher, int64_t i, eg_error *err)
{
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "run", g_run);
    bolt_params_int(p, "i", i);
    int rc = bolt_conn_begin(c, NULL, err);
    bolt_result *res = NULL;
    if (rc == 0)
        rc = bolt_conn_run_lazy(c, cypher, p, NULL, &res, err);
    bolt_result_free(res);
    if (rc == 0)
        rc = bolt_conn_commit(c, NULL, err);
    bolt_params_free(p);
    return rc;
}

/* n write_one transactions ($i from base), each gap_ms after the last
 * finished (0: back to back); p50 and p95 (may be NULL) in ms. */
static int timed_loop(bolt_conn *c, const char *cypher, int64_t base, int n, int gap_ms, double *p50, double *p95,
                      eg_error *err)
{
    int64_t *lat = eg_calloc((size_t)n, sizeof *lat);
    int rc = lat ? 0 : EG_ENOMEM;
    for (int i = 0; i < n && rc == 0; i++) {
        if (gap_ms > 0)
            eg_sleep_ms(gap_ms);
        int64_t t0 = eg_mono_us();
        rc = write_one(c, cypher, base + i, err);
        lat[i] = eg_mono_us() - t0;
    }
    if (rc == 0) {
        qsort(lat, (size_t)n, sizeof *lat, bench_cmp_i64);
        *p50 = (double)lat[n / 2] / 1000.0;
        if (p95)
            *p95 = (double)lat[(size_t)n * 95 / 100] / 1000.0;
    }
    eg_free(lat);
    return rc;
}

/*
 * p50/p95 ms of n write_one transactions ($i from base), after a warm-up of
 * at least 20 transactions and 3 s (at most 20,000; $i below base).  The
 * floors run first on a just-started Neo4j, whose JVM is still compiling the
 * write path, while engram's figures are taken after its fill: with 20
 * warm-ups the write floor read 1.6-1.8 ms there against 0.6-0.8 ms on a warm
 * server, which flattered every ratio to it.
 */
static int timed_writes(bolt_conn *c, const char *cypher, int64_t base, int n, double *p50, double *p95,
                        eg_error *err)
{
    int rc = 0;
    int64_t warm_until = eg_mono_ms() + 3000;
    for (int k = 0; rc == 0 && k < 20000 && (k < 20 || eg_mono_ms() < warm_until); k++)
        rc = write_one(c, cypher, base - 1 - k, err);
    return rc ? rc : timed_loop(c, cypher, base, n, 0, p50, p95, err);
}

/*
 * The same write made IDLE_GAP_MS after the previous one finished, IDLE_N
 * times (p50 ms): an agent's calls come seconds apart, and on an idle
 * machine every thread the write passes through (ours, Neo4j's network and
 * worker threads) has to be woken -- on the 2-vCPU VM that cost ~2-3 ms per
 * transaction, the JavaScript driver's as much as ours.  The floor under
 * bench/js/compare.mjs's _idle workloads.
 */
enum { IDLE_N = 60, IDLE_GAP_MS = 50 };

static int write_floor(const bolt_config *cfg, int n, double *p50, double *p95, double *idle_p50)
{
    eg_error err = {0};
    bolt_conn *c = NULL;
    if (bolt_conn_open(&c, cfg, &err))
        return fail("connect", &err);
    int rc = timed_writes(c, PLAIN_WRITE, 0, n, p50, p95, &err);
    if (rc == 0)
        rc = timed_loop(c, PLAIN_WRITE, 3000000, IDLE_N, IDLE_GAP_MS, idle_p50, NULL, &err);
    if (rc)
        fail("write floor", &err);
    bolt_conn_free(c);
    return rc ? -1 : 0;
}

typedef struct conc_run {
    const bolt_config *cfg;
    int64_t until_ms;
    atomic_llong commits;
    atomic_int failed;
} conc_run;

static void *conc_thread(void *p)
{
    conc_run *r = p;
    eg_error err = {0};
    bolt_conn *c = NULL;
    if (bolt_conn_open(&c, r->cfg, &err)) {
        fail("connect", &err);
        atomic_fetch_add(&r->failed, 1);
        return NULL;
    }
    int64_t i = 1000000;
    while (eg_mono_ms() < r->until_ms) {
        if (write_one(c, PLAIN_WRITE, i++, &err)) {
            fail("concurrent write", &err);
            atomic_fetch_add(&r->failed, 1);
            break;
        }
        atomic_fetch_add(&r->commits, 1);
    }
    bolt_conn_free(c);
    return NULL;
}

/* Commits/s with `threads` clients for `seconds`; < 0 on error. */
static double concurrent_floor(const bolt_config *cfg, int threads, int seconds)
{
    conc_run r = {.cfg = cfg};
    atomic_init(&r.commits, 0);
    atomic_init(&r.failed, 0);
    pthread_t *th = eg_calloc((size_t)threads, sizeof *th);
    int64_t t0 = eg_mono_ms();
    r.until_ms = t0 + (int64_t)seconds * 1000;
    int started = 0;
    for (; started < threads; started++)
        if (pthread_create(&th[started], NULL, conc_thread, &r) != 0)
            break;
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    double sec = (double)(eg_mono_ms() - t0) / 1000.0;
    eg_free(th);
    if (started < threads || atomic_load(&r.failed))
        return -1;
    return (double)atomic_load(&r.commits) / sec;
}

/* Rows $a..$b of `cypher` (an UNWIND over them), 500 per transaction on c,
 * after one untimed transaction of 500 more (the statement's planning and
 * compilation are not the rate); rows/s, or < 0 with err filled. */
static double unwind_rate(bolt_conn *c, const char *cypher, int base, int n, eg_error *err)
{
    int64_t t0 = eg_mono_us();
    int rc = 0;
    for (int from = -500; from < n && rc == 0; from += 500) {
        if (from == 0)
            t0 = eg_mono_us();
        bolt_params *p = bolt_params_new();
        bolt_params_str(p, "run", g_run);
        /* the untimed rows come after the timed ones */
        int a = from < 0 ? n : from, b = from < 0 ? n + 500 : (from + 500 < n ? from + 500 : n);
        bolt_params_int(p, "a", base + a);
        bolt_params_int(p, "b", base + b - 1);
        rc = bolt_conn_begin(c, NULL, err);
        if (rc == 0)
            rc = bolt_conn_exec(c, cypher, p, NULL, NULL, err);
        if (rc == 0)
            rc = bolt_conn_commit(c, NULL, err);
        bolt_params_free(p);
    }
    return rc ? -1 : (double)n / ((double)(eg_mono_us() - t0) / 1e6);
}

static double bulk_floor(const bolt_config *cfg, int n)
{
    eg_error err = {0};
    bolt_conn *c = NULL;
    if (bolt_conn_open(&c, cfg, &err))
        return fail("connect", &err);
    double r = unwind_rate(c, "UNWIND range($a, $b) AS i CREATE (:BenchFloor {run: $run, i: i})", 2000000, n, &err);
    bolt_conn_free(c);
    return r < 0 ? fail("bulk floor", &err) : r;
}

/* ---- the guarded floor ---- */

/* engram's indexes on these three kinds of node (src/graph/store.c,
 * src/queue/neo4j_store.c), on the floor's own labels. */
static const char *const GUARD_SCHEMA[] = {
    "CREATE CONSTRAINT bench_floor_e_ns_name IF NOT EXISTS FOR (e:BenchFloorEntity) "
    "REQUIRE (e.namespace, e.name) IS UNIQUE",
    "CREATE CONSTRAINT bench_floor_e_id IF NOT EXISTS FOR (e:BenchFloorEntity) REQUIRE e.id IS UNIQUE",
    "CREATE FULLTEXT INDEX bench_floor_e_ft IF NOT EXISTS FOR (e:BenchFloorEntity) "
    "ON EACH [e.name, e.entityType, e.observations] "
    "OPTIONS {indexConfig: {`fulltext.analyzer`: 'english', `fulltext.eventually_consistent`: true}}",
    "CREATE INDEX bench_floor_v_ns_id IF NOT EXISTS FOR (v:BenchFloorVersion) ON (v.namespace, v.entityId)",
    "CREATE INDEX bench_floor_v_ns_name IF NOT EXISTS FOR (v:BenchFloorVersion) ON (v.namespace, v.name)",
    "CREATE INDEX bench_floor_v_ns_from IF NOT EXISTS FOR (v:BenchFloorVersion) ON (v.namespace, v.validFrom)",
    "CREATE CONSTRAINT bench_floor_j_key IF NOT EXISTS FOR (j:BenchFloorJob) REQUIRE j.dedupeKey IS UNIQUE",
    "CREATE CONSTRAINT bench_floor_j_id IF NOT EXISTS FOR (j:BenchFloorJob) REQUIRE j.id IS UNIQUE",
    "CREATE INDEX bench_floor_j_claim IF NOT EXISTS FOR (j:BenchFloorJob) ON (j.queue, j.state, j.runAt)",
    "CREATE INDEX bench_floor_j_entity IF NOT EXISTS FOR (j:BenchFloorJob) ON (j.namespace, j.entity, j.model)",
    /* what a bulk create adds: the substring pass's TEXT index (a batch sets
     * searchText itself) and the observation records' indexes */
    "CREATE TEXT INDEX bench_floor_e_search IF NOT EXISTS FOR (e:BenchFloorEntity) ON (e.searchText)",
    "CREATE INDEX bench_floor_e_overflow IF NOT EXISTS FOR (e:BenchFloorEntity) ON (e.namespace, e.searchOverflow)",
    "CREATE CONSTRAINT bench_floor_o_id IF NOT EXISTS FOR (o:BenchFloorRecord) REQUIRE o.id IS UNIQUE",
    "CREATE INDEX bench_floor_o_entity IF NOT EXISTS FOR (o:BenchFloorRecord) ON (o.namespace, o.entityId)",
    "CREATE FULLTEXT INDEX bench_floor_o_ft IF NOT EXISTS FOR (o:BenchFloorObservation) ON EACH [o.text] "
    "OPTIONS {indexConfig: {`fulltext.analyzer`: 'english', `fulltext.eventually_consistent`: true}}",
    "CALL db.awaitIndexes(300)",
    NULL};
static const char *const GUARD_DROP[] = {
    "DROP CONSTRAINT bench_floor_e_ns_name IF EXISTS", "DROP CONSTRAINT bench_floor_e_id IF EXISTS",
    "DROP INDEX bench_floor_e_ft IF EXISTS",           "DROP INDEX bench_floor_v_ns_id IF EXISTS",
    "DROP INDEX bench_floor_v_ns_name IF EXISTS",      "DROP INDEX bench_floor_v_ns_from IF EXISTS",
    "DROP CONSTRAINT bench_floor_j_key IF EXISTS",     "DROP CONSTRAINT bench_floor_j_id IF EXISTS",
    "DROP INDEX bench_floor_j_claim IF EXISTS",        "DROP INDEX bench_floor_j_entity IF EXISTS",
    "DROP INDEX bench_floor_e_search IF EXISTS",       "DROP INDEX bench_floor_e_overflow IF EXISTS",
    "DROP CONSTRAINT bench_floor_o_id IF EXISTS",      "DROP INDEX bench_floor_o_entity IF EXISTS",
    "DROP INDEX bench_floor_o_ft IF EXISTS",           "DROP INDEX bench_floor_e_vec IF EXISTS",
    "DROP INDEX bench_floor_o_vec IF EXISTS",
    NULL};

#define GUARD_WRITE                                                                                       \
    "CREATE (e:BenchFloorEntity {namespace: $run, name: 'e' + toString(i), id: randomUUID(), "          \
    "entityType: 'thing', observations: ['likes tea', 'number ' + toString(i)], version: 1, "           \
    "createdAt: timestamp(), updatedAt: timestamp()}) "                                                 \
    "CREATE (:BenchFloorVersion {namespace: $run, name: e.name, entityId: e.id, version: 1, "           \
    "entityType: e.entityType, observations: e.observations, validFrom: timestamp()}) "                 \
    "CREATE (:BenchFloorJob {dedupeKey: e.id + ':1', id: randomUUID(), queue: 'bench-floor', "          \
    "state: 'pending', runAt: timestamp(), namespace: $run, entity: e.id, model: 'm', attempts: 0})"

/*
 * What one entity of a bulk create must write (bench/js/compare.mjs and
 * bench_graph_create load entities with two observations each), with the
 * properties engram gives each node (src/graph/mutate.c, the queue's
 * QUEUE_NEO4J_ENQUEUE_BODY; hashes and keys as long as engram's): the
 * entity with the searchText a batch sets (TEXT index), its first version,
 * one observation record per observation (id constraint, entity index,
 * full-text index) and one embedding job for the entity and for each
 * record: seven nodes.  CREATE, not engram's MERGE on the name: the
 * constraints still refuse a duplicate, and the lookup a MERGE adds is
 * engram's own cost.
 */
#define GUARD_HASH "'0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'"
#define GUARD_FULL_WRITE                                                                                  \
    "CREATE (e:BenchFloorEntity {namespace: $run, name: 'e' + toString(i), id: randomUUID(), "          \
    "entityType: 'thing', observations: ['likes tea', 'number ' + toString(i)], version: 1, "           \
    "createdAt: timestamp(), updatedAt: timestamp(), validFrom: timestamp(), changedBy: 'bench', "      \
    "contentHash: " GUARD_HASH ", obsSeq: 2}) "                                                        \
    "SET e.searchText = toLower(e.name + '\\n' + e.entityType + '\\n' + e.observations[0] + '\\n' + "  \
    "e.observations[1]) "                                                                               \
    "CREATE (:BenchFloorVersion {namespace: $run, name: e.name, entityId: e.id, version: 1, "           \
    "entityType: e.entityType, createdAt: e.createdAt, updatedAt: e.createdAt, validFrom: e.createdAt, " \
    "changedBy: 'bench', deleted: false}) "                                                             \
    "FOREACH (k IN range(0, size(e.observations) - 1) | "                                               \
    "CREATE (:BenchFloorRecord:BenchFloorObservation {namespace: $run, entityId: e.id, "                \
    "id: e.id + ':' + toString(k), seq: k + 1, text: e.observations[k], contentHash: " GUARD_HASH ", "  \
    "validFrom: e.createdAt, fromVersion: 1, changedBy: 'bench'})) "                                    \
    "FOREACH (k IN range(0, size(e.observations)) | "                                                   \
    "CREATE (:BenchFloorJob {dedupeKey: e.id + ':' + toString(k) + ':0123456789abcdef0123456789', "     \
    "id: 'j' + toString(timestamp()) + e.id + toString(k), queue: 'bench-floor', namespace: $run, "                   \
    "entity: e.id + ':' + toString(k), version: '1', model: 'text-embedding-3-small', "                  \
    "payload: '{\"name\":\"' + e.name + '\",\"hash\":\"' + e.contentHash + '\",\"kind\":\"observation\"}', "   \
    "state: 'pending', attempts: 0, maxAttempts: 8, runAt: timestamp(), seq: 1, createdAt: timestamp(), " \
    "updatedAt: timestamp()}))"

static int exec_all(const bolt_config *cfg, const char *const *stmts, const char *what)
{
    eg_error err = {0};
    bolt_conn *c = NULL;
    if (bolt_conn_open(&c, cfg, &err))
        return fail("connect", &err);
    int rc = 0;
    for (size_t i = 0; stmts[i] && rc == 0; i++)
        if ((rc = bolt_conn_exec(c, stmts[i], NULL, NULL, NULL, &err)) != 0)
            fail(what, &err);
    bolt_conn_free(c);
    return rc ? -1 : 0;
}

/* p50/p95 of one guarded write per transaction, pipelined like write_one;
 * then entities/s of the same write 500 per transaction (*eps), and of a
 * bulk create's whole entity write, GUARD_FULL_WRITE (*full_eps). */
static int guarded_floor(const bolt_config *cfg, int n, int bulk, double *p50, double *p95, double *eps,
                         double *full_eps)
{
    if (exec_all(cfg, GUARD_SCHEMA, "guarded floor schema"))
        return -1;
    eg_error err = {0};
    bolt_conn *c = NULL;
    if (bolt_conn_open(&c, cfg, &err))
        return fail("connect", &err);
    int rc = timed_writes(c, "WITH $i AS i " GUARD_WRITE, 3000000, n, p50, p95, &err);
    if (rc == 0 && (*eps = unwind_rate(c, "UNWIND range($a, $b) AS i " GUARD_WRITE, 4000000, bulk, &err)) < 0)
        rc = -1;
    if (rc == 0 &&
        (*full_eps = unwind_rate(c, "UNWIND range($a, $b) AS i " GUARD_FULL_WRITE, 5000000, bulk, &err)) < 0)
        rc = -1;
    if (rc)
        fail("guarded floor", &err);
    bolt_conn_free(c);
    return rc ? -1 : 0;
}

/* ---- the embedded floor ---- */

enum { EMBED_BATCH = 99, EMBED_MAX = 2000 }; /* 33 entities of 3 vectors: a worker's 100-job batch */

/*
 * Vectors for the guarded full entities $run made (names 'e' + i): row k 0
 * is the entity's, 1 and 2 its records' (seq k).  The node's lock, its
 * vector and embedding properties, then its job, as engram's completion
 * writes them (src/graph/embedding.c Q_WRITE_VECS, the queue's COMPLETE).
 */
static const char Q_EMBED_WRITE[] =
    "UNWIND $rows AS r "
    "MATCH (e:BenchFloorEntity {namespace: $run, name: 'e' + toString(r.i)}) "
    "OPTIONAL MATCH (o:BenchFloorRecord {namespace: $run, entityId: e.id}) WHERE o.seq = r.k "
    "WITH r, e, CASE WHEN r.k = 0 THEN e ELSE o END AS n "
    "SET n.lockSeq = coalesce(n.lockSeq, 0) + 1 "
    "WITH r, e, n "
    "CALL db.create.setNodeVectorProperty(n, 'embedding', r.vec) "
    "SET n.embeddingModel = 'text-embedding-3-small', n.embeddingDimensions = size(r.vec), "
    "n.embeddingHash = n.contentHash, n.embeddingUpdatedAt = timestamp(), n.embeddingTokens = 12, "
    "n.embeddingTruncated = false "
    "WITH r, e "
    "MATCH (j:BenchFloorJob {dedupeKey: e.id + ':' + toString(r.k) + ':0123456789abcdef0123456789'}) "
    "SET j.state = 'completed', j.completedAt = timestamp(), j.updatedAt = timestamp(), "
    "j.leaseOwner = null, j.leaseToken = null, j.leaseUntil = null "
    "RETURN count(j) AS n";

/* A pseudo-random unit vector per (entity, k): a fixed seed, so every run
 * indexes the same vectors. */
static void floor_vector(float *v, int dims, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15u + 1;
    double norm = 0;
    for (int d = 0; d < dims; d++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v[d] = (float)((double)(x >> 11) / 9007199254740992.0 - 0.5);
        norm += (double)v[d] * v[d];
    }
    for (int d = 0; d < dims; d++)
        v[d] = (float)(v[d] / sqrt(norm));
}

/* One transaction embedding entities [from, to) of the full floor's range. */
static int embed_batch(bolt_conn *c, int base, int from, int to, int dims, float *vec, eg_error *err)
{
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "run", g_run);
    bolt_ps_writer *w = bolt_params_add(p, "rows");
    if (w) {
        bolt_ps_list_begin(w, (size_t)(to - from) * 3);
        for (int i = from; i < to; i++)
            for (int k = 0; k < 3; k++) {
                floor_vector(vec, dims, (uint64_t)i * 3 + (uint64_t)k);
                bolt_ps_map_begin(w, 3);
                bolt_ps_str(w, "i");
                bolt_ps_int(w, base + i);
                bolt_ps_str(w, "k");
                bolt_ps_int(w, k);
                bolt_ps_str(w, "vec");
                bolt_ps_float32_list(w, vec, (size_t)dims);
            }
    }
    json_t *rows = NULL;
    int rc = bolt_conn_begin(c, NULL, err);
    if (rc == 0)
        rc = bolt_conn_query_json(c, Q_EMBED_WRITE, p, NULL, &rows, err);
    /* every row must have found its node and job: a floor that wrote
     * nothing would read as fast as no floor at all */
    json_int_t done = json_integer_value(json_object_get(json_array_get(rows, 0), "n"));
    if (rc == 0 && done != (json_int_t)(to - from) * 3)
        rc = eg_error_set(err, EG_EPROTO, EG_CLASS_CLIENT, "embedded floor: %lld of %d vectors written",
                          (long long)done, (to - from) * 3);
    if (rc == 0)
        rc = bolt_conn_commit(c, NULL, err);
    else
        bolt_conn_rollback(c, NULL);
    json_decref(rows);
    bolt_params_free(p);
    return rc;
}

/*
 * Entities/s of embedding n of the guarded full entities (made from $i
 * base), the first batch untimed (planning); < 0 on failure.  The vector
 * indexes are made here, with dims, and dropped by cleanup().
 */
static double embedded_floor(const bolt_config *cfg, int base, int n, int dims)
{
    char ddl[2][320];
    const char *labels[2][2] = {{"bench_floor_e_vec", "BenchFloorEntity"}, {"bench_floor_o_vec", "BenchFloorObservation"}};
    for (int k = 0; k < 2; k++)
        snprintf(ddl[k], sizeof ddl[k],
                 "CREATE VECTOR INDEX %s IF NOT EXISTS FOR (n:%s) ON (n.embedding) "
                 "OPTIONS {indexConfig: {`vector.dimensions`: %d, `vector.similarity_function`: 'cosine'}}",
                 labels[k][0], labels[k][1], dims);
    const char *const schema[] = {ddl[0], ddl[1], "CALL db.awaitIndexes(300)", NULL};
    if (exec_all(cfg, schema, "embedded floor schema"))
        return -1;
    eg_error err = {0};
    bolt_conn *c = NULL;
    if (bolt_conn_open(&c, cfg, &err))
        return fail("connect", &err);
    float *vec = eg_calloc((size_t)dims, sizeof *vec);
    int rc = vec ? 0 : EG_ENOMEM;
    int per = EMBED_BATCH / 3;
    /* the untimed batch: the entities after the timed ones */
    if (rc == 0)
        rc = embed_batch(c, base, n, n + per, dims, vec, &err);
    int64_t t0 = eg_mono_us();
    for (int from = 0; rc == 0 && from < n; from += per)
        rc = embed_batch(c, base, from, from + per < n ? from + per : n, dims, vec, &err);
    double eps = (double)n / ((double)(eg_mono_us() - t0) / 1e6);
    if (rc)
        fail("embedded floor", &err);
    eg_free(vec);
    bolt_conn_free(c);
    return rc ? -1 : eps;
}

static void cleanup(const bolt_config *cfg)
{
    eg_error err = {0};
    bolt_conn *c = NULL;
    if (bolt_conn_open(&c, cfg, &err)) {
        fail("cleanup connect", &err);
        return;
    }
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "run", g_run);
    json_t *rows = NULL;
    static const char *const del[] = {
        "MATCH (n:BenchFloor {run: $run}) WITH n LIMIT 10000 DELETE n RETURN count(*) AS n",
        "MATCH (n:BenchFloorEntity|BenchFloorVersion|BenchFloorRecord {namespace: $run}) WITH n LIMIT 10000 DELETE n "
        "RETURN count(*) AS n",
        "MATCH (n:BenchFloorJob {namespace: $run}) WITH n LIMIT 10000 DELETE n RETURN count(*) AS n"};
    for (size_t d = 0; d < sizeof del / sizeof *del;) {
        if (bolt_conn_query_json(c, del[d], p, NULL, &rows, &err)) {
            fail("cleanup", &err);
            break;
        }
        json_int_t k = json_integer_value(json_object_get(json_array_get(rows, 0), "n"));
        json_decref(rows);
        if (k == 0)
            d++;
    }
    bolt_params_free(p);
    bolt_conn_free(c);
    exec_all(cfg, GUARD_DROP, "guarded floor drop");
}

/* The vector floor: Neo4j's own k=100 query on the stored vectors. */
static int vector_floor(const bolt_config *cfg, const char *index, int n)
{
    eg_error err = {0};
    bolt_conn *c = NULL;
    if (bolt_conn_open(&c, cfg, &err))
        return fail("connect", &err);
    bolt_params *p = bolt_params_new();
    bolt_params_int(p, "n", n);
    json_t *vecs = NULL;
    int rc = bolt_conn_query_json(c,
                                  "MATCH (e:Entity) WHERE e.embedding IS NOT NULL "
                                  "RETURN e.embedding AS v LIMIT $n",
                                  p, NULL, &vecs, &err);
    bolt_params_free(p);
    /* The index's size: engram's two vector indexes are on :Entity and on
     * :Observation, each over `embedding`. */
    json_t *label = NULL, *size = NULL;
    p = bolt_params_new();
    bolt_params_str(p, "index", index);
    if (rc == 0)
        rc = bolt_conn_query_json(c,
                                  "SHOW INDEXES YIELD name, labelsOrTypes WHERE name = $index "
                                  "RETURN 'Observation' IN labelsOrTypes AS obs",
                                  p, NULL, &label, &err);
    bolt_params_free(p);
    bool obs = json_is_true(json_object_get(json_array_get(label, 0), "obs"));
    if (rc == 0)
        rc = bolt_conn_query_json(c,
                                  obs ? "MATCH (o:Observation) WHERE o.embedding IS NOT NULL RETURN count(*) AS total"
                                      : "MATCH (x:Entity) WHERE x.embedding IS NOT NULL RETURN count(*) AS total",
                                  NULL, NULL, &size, &err);
    long long total = (long long)json_integer_value(json_object_get(json_array_get(size, 0), "total"));
    json_decref(label);
    json_decref(size);
    size_t got = json_array_size(vecs);
    int64_t *lat = eg_calloc(got ? got : 1, sizeof *lat);
    for (size_t i = 0; rc == 0 && i < got; i++) {
        p = bolt_params_new();
        bolt_params_str(p, "index", index);
        bolt_params_json(p, "v", json_object_get(json_array_get(vecs, i), "v"));
        json_t *rows = NULL;
        int64_t t0 = eg_mono_us();
        rc = bolt_conn_query_json(c, "CALL db.index.vector.queryNodes($index, 100, $v) YIELD node, score RETURN count(*) AS n",
                                  p, NULL, &rows, &err);
        lat[i] = eg_mono_us() - t0;
        json_decref(rows);
        bolt_params_free(p);
    }
    if (rc == 0 && got > 0) {
        qsort(lat, got, sizeof *lat, bench_cmp_i64);
        printf("{\"vector_query_p50_ms\":%.3f,\"vector_query_p95_ms\":%.3f,\"vectors\":%lld,\"samples\":%zu}\n",
               (double)lat[got / 2] / 1000.0, (double)lat[got * 95 / 100] / 1000.0, total, got);
    } else if (rc == 0) {
        printf("{\"vectors\":0}\n");
    } else {
        fail("vector floor", &err);
    }
    eg_free(lat);
    json_decref(vecs);
    bolt_conn_free(c);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    int writes = 2000, seconds = 5, bulk = 100000, vsamples = 30, dims = 1536;
    const char *threads = "1,10,50", *vindex = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--writes"))
            writes = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--bulk"))
            bulk = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads"))
            threads = argv[i + 1];
        else if (!strcmp(argv[i], "--vector-index"))
            vindex = argv[i + 1];
        else if (!strcmp(argv[i], "--vector-samples"))
            vsamples = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dims"))
            dims = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: bench_compare [--writes N] [--seconds S] [--bulk N] [--threads 1,10,50] [--dims D]\n"
                            "       bench_compare --vector-index NAME [--vector-samples N]\n");
            return 2;
        }
    }
    if (writes < 20 || seconds < 1 || bulk < 500 || dims < 0 || dims > 4096) {
        fprintf(stderr, "bench_compare: --writes >= 20, --seconds >= 1, --bulk >= 500, --dims 0..4096\n");
        return 2;
    }
    bolt_config cfg = BOLT_CONFIG_INIT;
    if (!bench_graph_config(&cfg)) {
        fprintf(stderr, "bench_compare: set BENCH_NEO4J_URI (run through bench/run compare)\n");
        return 1;
    }
    if (vindex != NULL)
        return vector_floor(&cfg, vindex, vsamples > 0 ? vsamples : 30);
    snprintf(g_run, sizeof g_run, "floor-%lld", (long long)eg_wall_ms());
    double p50 = 0, p95 = 0, idle_p50 = 0;
    if (write_floor(&cfg, writes, &p50, &p95, &idle_p50)) {
        cleanup(&cfg);
        return 1;
    }
    printf("{\"write_p50_ms\":%.3f,\"write_p95_ms\":%.3f,\"idle_write_p50_ms\":%.3f", p50, p95, idle_p50);
    char list[64];
    snprintf(list, sizeof list, "%s", threads);
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int k = atoi(t);
        double cps = k > 0 ? concurrent_floor(&cfg, k, seconds) : -1;
        if (cps < 0) {
            printf("}\n");
            cleanup(&cfg);
            fprintf(stderr, "bench_compare: concurrent floor with %d clients failed\n", k);
            return 1;
        }
        printf(",\"concurrent_commits_s_%d\":%.1f", k, cps);
    }
    double bps = bulk_floor(&cfg, bulk);
    printf(",\"bulk_nodes_s\":%.1f", bps);
    double gp50 = 0, gp95 = 0, geps = 0, gfull = 0;
    int grc = guarded_floor(&cfg, writes / 4 > 20 ? writes / 4 : 20, bulk / 10 > 500 ? bulk / 10 : 500, &gp50, &gp95,
                            &geps, &gfull);
    if (grc == 0)
        printf(",\"guarded_write_p50_ms\":%.3f,\"guarded_write_p95_ms\":%.3f,\"guarded_bulk_entities_s\":%.1f,"
               "\"guarded_full_bulk_entities_s\":%.1f",
               gp50, gp95, geps, gfull);
    /* the full floor made bulk / 10 entities from 5000000 (guarded_floor) */
    int full_n = bulk / 10 > 500 ? bulk / 10 : 500;
    double embed_eps = grc == 0 && dims > 0 ? embedded_floor(&cfg, 5000000, full_n < EMBED_MAX ? full_n : EMBED_MAX, dims) : 0;
    if (embed_eps > 0)
        /* writing and then embedding each entity, one after the other */
        printf(",\"embed_dims\":%d,\"embedded_entities_s\":%.1f,\"guarded_full_embedded_entities_s\":%.1f", dims,
               embed_eps, 1.0 / (1.0 / gfull + 1.0 / embed_eps));
    printf("}\n");
    cleanup(&cfg);
    return bps < 0 || grc != 0 || embed_eps < 0 ? 1 : 0;
}
