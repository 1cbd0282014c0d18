/*
 * bench_queue.c - what the embedding job queue costs, on a real Neo4j.
 *
 *   (1) queue only: enqueue N jobs (batches of --enqueue-batch), then W
 *       workers (threads, one pool) lease --batch jobs at a time and complete
 *       them with a no-op "embedder"; W in --workers (default 1,2,4,8), a
 *       fresh queue per W.  Reports enqueue jobs/s, lease+complete jobs/s,
 *       p50/p99 latency of a lease call.
 *   (2) enqueue->lease latency: the best W workers poll an idle queue while
 *       a producer enqueues --latency-jobs jobs one at a time; latency =
 *       leaseTime - createdAt, both from the database clock.
 *   (3) vectors: V entities get 1536-dimension vectors.  "raw floor": W
 *       threads write the vectors straight to the entities, --batch per
 *       transaction, no queue.  "vector": the same vectors to the same
 *       entities in the same batches, but through the queue: lease, then
 *       complete with a writer that writes the vectors in the completing
 *       transaction.  The two alternate per round so machine load hits both
 *       alike, after one unmeasured pass of each (--warmup 1).  With
 *       BENCH_NEO4J_PID set, each pass also reports the server's CPU time
 *       per job.  Two write modes (--write both, the default):
 *         plain  - a version-fenced SET of a list property on :BenchEntity
 *                  nodes, no index; the head figures of the JSON line;
 *         entity - engram's own write (worker_sink_write: the graph's fenced
 *                  writer into the :Entity vector index) on :Entity nodes
 *                  of a bench namespace, every pass on an empty vector
 *                  index; skipped when the database holds other entities;
 *                  the entity_* figures.
 *
 * Every job is checked: each completed exactly once, each entity has its
 * vector; a run with a lost or duplicated job exits 1 instead of posting a
 * number.  Last stdout line: one JSON object (see bench/README.md).
 *
 * Usage: bench_queue [--jobs N] [--workers 1,2,4,8] [--batch B]
 *        [--vector-jobs V] [--dim D] [--latency-jobs L] [--rounds R] [--warmup 0|1]
 *        [--write both|entity|plain]
 * Neo4j from BENCH_NEO4J_URI / _USER / _PASSWORD.
 */
#include "bolt/pool.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "graph/graph.h"
#include "queue/neo4j_store.h"
#include "schema/schema.h"
#include "worker/neo4j_sink.h"

#include "bench_cpu.h"
#include "bench_server.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bolt_pool *g_pool;
static size_t g_batch = 200;
static int g_dim = 1536;

/*
 * How the vector figure writes.  PLAIN: a list property on :BenchEntity
 * with no index (what the queue adds to the cheapest possible write).
 * ENTITY: engram's own write - worker_sink_write, i.e. the graph's fenced
 * writer, setNodeVectorProperty into the :Entity vector index - on
 * :Entity nodes of a bench namespace (what the queue adds to the write
 * engram really does on every completion).
 */
typedef enum write_mode { WRITE_PLAIN, WRITE_ENTITY } write_mode;
static write_mode g_mode = WRITE_PLAIN;
static char g_prefix[48] = "e";       /* entity name/id: prefix + index */
static char g_ns[40];                 /* ENTITY: the bench namespace */
static worker_sink *g_sink;           /* ENTITY: the workers' sink */
static graph_opts g_graph;            /* ENTITY: vector index name, similarity */
static graph_store *g_store;          /* ENTITY: owns the graph schema */

static void die(const char *what, const eg_error *err)
{
    fprintf(stderr, "bench_queue: %s: %s %s\n", what, err ? err->message : "", err ? err->neo4j_code : "");
    exit(1);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(int64_t *v, size_t n, double p)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof *v, cmp_i64);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return (double)v[i];
}

static queue_store *new_queue(const char *tag, char *name_out)
{
    queue_opts o = QUEUE_OPTS_INIT;
    char hex[9];
    eg_rand_hex(hex, 4);
    snprintf(o.name, sizeof o.name, "bench_%s_%s", tag, hex);
    if (name_out)
        snprintf(name_out, QUEUE_NAME_MAX, "%s", o.name);
    queue_store *s = NULL;
    eg_error err = {0};
    if (queue_neo4j_new(&s, g_pool, &o, &err))
        die("store", &err);
    return s;
}

/* Enqueue n jobs for entities "<prefix><i>" in batches; returns seconds. */
static double enqueue_all(queue_store *s, const char *ns, size_t n, size_t ebatch)
{
    queue_enqueue_req *r = eg_calloc(ebatch, sizeof *r);
    queue_enqueue_result *out = eg_calloc(ebatch, sizeof *out);
    char (*names)[64] = eg_calloc(ebatch, sizeof *names);
    if (!r || !out || !names)
        die("oom", NULL);
    int64_t t0 = eg_mono_us();
    for (size_t base = 0; base < n; base += ebatch) {
        size_t k = n - base < ebatch ? n - base : ebatch;
        for (size_t i = 0; i < k; i++) {
            snprintf(names[i], sizeof names[i], "%s%zu", g_prefix, base + i);
            r[i] = (queue_enqueue_req){.ns = g_mode == WRITE_ENTITY ? g_ns : ns, .entity = names[i],
                                       .version = "v1", .model = "bench"};
        }
        eg_error err = {0};
        if (queue_enqueue(s, NULL, r, k, out, &err))
            die("enqueue", &err);
        for (size_t i = 0; i < k; i++)
            if (!out[i].created)
                die("enqueue: a fresh key reported existing", NULL);
    }
    double sec = (double)(eg_mono_us() - t0) / 1e6;
    eg_free(r);
    eg_free(out);
    eg_free(names);
    return sec;
}

/* ---- workers ---- */

typedef struct worker {
    queue_store *s;
    char owner[32];
    bool vectors;
    _Atomic int64_t *done;
    int64_t target;
    int64_t *lat_us;
    size_t nlat, caplat;
    int64_t *e2l_ms;           /* enqueue -> lease, DB clock */
    size_t ne2l, cape2l;
    int64_t lost, errors;
    int64_t idle_poll_ms;
    _Atomic bool *stop;
    int64_t lease_us, complete_us;   /* time spent in each call */
} worker;

static void fill_vector(double *v, int dim, size_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (int i = 0; i < dim; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v[i] = (double)(x >> 11) / 9007199254740992.0 - 0.5;
    }
}

/* Write vectors for the held jobs: the same statement as the raw floor,
 * plus the version fence the real worker uses. */
static const char *const Q_VEC =
    "CYPHER runtime = slotted UNWIND $rows AS r "
    "MATCH (e:BenchEntity {name: r.name}) WHERE e.version = r.version "
    "SET e.embedding = r.vec RETURN count(e)";

/* The number at the end of an entity name ("e17", "bq..-e17" -> 17): the
 * vector's seed, so both passes write the same vector to each entity. */
static size_t entity_index(const char *name)
{
    size_t n = strlen(name);
    while (n > 0 && isdigit((unsigned char)name[n - 1]))
        n--;
    return (size_t)strtoull(name + n, NULL, 10);
}

static int write_plain(bolt_conn *c, const char *const *names, const char *const *versions, size_t n,
                       int dim, eg_error *err)
{
    bolt_params *p = bolt_params_new();
    if (!p)
        return EG_ENOMEM;
    double *v = eg_malloc((size_t)dim * sizeof *v);
    bolt_ps_writer *w = bolt_params_add(p, "rows");
    if (w && v) {
        bolt_ps_list_begin(w, n);
        for (size_t i = 0; i < n; i++) {
            fill_vector(v, dim, entity_index(names[i]));
            bolt_ps_map_begin(w, 3);
            bolt_ps_str(w, "name");
            bolt_ps_str(w, names[i]);
            bolt_ps_str(w, "version");
            bolt_ps_str(w, versions[i]);
            bolt_ps_str(w, "vec");
            bolt_ps_float_list(w, v, (size_t)dim);
        }
    }
    int rc = bolt_params_error(p) || !v ? EG_ENOMEM : 0;
    if (!rc)
        rc = bolt_conn_exec(c, Q_VEC, p, NULL, NULL, err);
    eg_free(v);
    bolt_params_free(p);
    return rc;
}

/* engram's own write: the workers' sink, fenced on the content hash (the
 * jobs' version, "v1", which the bench entities carry as contentHash). */
static int write_entity(bolt_conn *c, const char *const *names, const char *const *versions, size_t n,
                        int dim, eg_error *err)
{
    queue_job *jobs = eg_calloc(n, sizeof *jobs);
    worker_write *ws = eg_calloc(n, sizeof *ws);
    bool *sup = eg_calloc(n, sizeof *sup);
    float *vf = eg_malloc(n * (size_t)dim * sizeof *vf);
    double *v = eg_malloc((size_t)dim * sizeof *v);
    int rc = jobs && ws && sup && vf && v ? 0 : EG_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        fill_vector(v, dim, entity_index(names[i]));
        for (int k = 0; k < dim; k++)
            vf[i * (size_t)dim + (size_t)k] = (float)v[k];
        jobs[i] = (queue_job){.ns = g_ns, .entity = (char *)names[i], .version = (char *)versions[i],
                              .model = "bench"};
        ws[i] = (worker_write){.job = &jobs[i], .vec = vf + i * (size_t)dim, .dims = dim};
    }
    if (rc == 0) {
        queue_tx tx = QUEUE_TX_BOLT(c);
        rc = worker_sink_write(g_sink, &tx, ws, n, sup, err);
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (sup[i])
            rc = eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "bench entity not written (hash fence)");
    eg_free(jobs);
    eg_free(ws);
    eg_free(sup);
    eg_free(vf);
    eg_free(v);
    return rc;
}

static int write_vectors(bolt_conn *c, const char *const *names, const char *const *versions, size_t n,
                         int dim, eg_error *err)
{
    return g_mode == WRITE_ENTITY ? write_entity(c, names, versions, n, dim, err)
                                  : write_plain(c, names, versions, n, dim, err);
}

static int vec_write_fn(queue_tx *tx, const queue_job *held, size_t n, bool *sup, void *payload,
                        eg_error *err)
{
    (void)sup;
    (void)payload;
    const char **names = eg_malloc(n * sizeof *names);
    const char **vers = eg_malloc(n * sizeof *vers);
    if (!names || !vers) {
        eg_free(names);
        eg_free(vers);
        return EG_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        names[i] = held[i].entity;
        vers[i] = held[i].version;
    }
    int rc = write_vectors(tx->conn, names, vers, n, g_dim, err);
    eg_free(names);
    eg_free(vers);
    return rc;
}

static void *work(void *p)
{
    worker *w = p;
    queue_lease_ref *refs = eg_calloc(g_batch, sizeof *refs);
    queue_outcome *oc = eg_calloc(g_batch, sizeof *oc);
    int64_t deadline = eg_mono_ms() + 900000;
    while (eg_mono_ms() < deadline && atomic_load(w->done) < w->target && !(w->stop && atomic_load(w->stop))) {
        queue_lease_opts lo = {.owner = w->owner, .max_jobs = g_batch, .lease_ms = 300000};
        queue_job *jobs = NULL;
        size_t n = 0;
        eg_error err = {0};
        int64_t t0 = eg_mono_us();
        if (queue_lease(w->s, &lo, &jobs, &n, &err)) {
            fprintf(stderr, "lease: %s\n", err.message);
            w->errors++;
            break;
        }
        int64_t dt = eg_mono_us() - t0;
        w->lease_us += dt;
        if (n == 0) {
            eg_sleep_ms(w->idle_poll_ms);
            continue;
        }
        if (w->nlat < w->caplat)
            w->lat_us[w->nlat++] = dt;
        for (size_t i = 0; i < n; i++) {
            refs[i] = queue_job_ref(&jobs[i]);
            /* the lease's DB time is leaseUntil - lease */
            if (w->ne2l < w->cape2l)
                w->e2l_ms[w->ne2l++] = jobs[i].lease_until - 300000 - jobs[i].created_at;
        }
        int64_t tc = eg_mono_us();
        int crc = queue_complete(w->s, w->owner, refs, n, w->vectors ? vec_write_fn : NULL, NULL, oc, &err);
        w->complete_us += eg_mono_us() - tc;
        if (crc) {
            fprintf(stderr, "complete: %s\n", err.message);
            w->errors++;
            queue_jobs_free(jobs, n);
            break;
        }
        int64_t ok = 0;
        for (size_t i = 0; i < n; i++)
            ok += oc[i] == QUEUE_OUT_OK;
        w->lost += (int64_t)n - ok;
        atomic_fetch_add(w->done, ok);
        queue_jobs_free(jobs, n);
    }
    eg_free(refs);
    eg_free(oc);
    return NULL;
}

typedef struct pass_result {
    double jobs_s, p50_ms, p99_ms, e2l_p50_ms, e2l_p99_ms;
    int64_t errors, lost;
    double lease_s, complete_s;   /* summed over workers */
} pass_result;

static pass_result run_workers(queue_store *s, int nw, int64_t target, bool vectors)
{
    worker *w = eg_calloc((size_t)nw, sizeof *w);
    pthread_t *th = eg_calloc((size_t)nw, sizeof *th);
    _Atomic int64_t done = 0;
    int64_t t0 = eg_mono_us();
    for (int i = 0; i < nw; i++) {
        w[i] = (worker){.s = s, .vectors = vectors, .done = &done, .target = target, .caplat = 100000,
                        .cape2l = 0, .idle_poll_ms = 5};
        w[i].lat_us = eg_calloc(w[i].caplat, sizeof *w[i].lat_us);
        snprintf(w[i].owner, sizeof w[i].owner, "bench-%d", i);
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    pass_result r = {0};
    int64_t *lat = NULL;
    size_t nlat = 0;
    for (int i = 0; i < nw; i++) {
        pthread_join(th[i], NULL);
        lat = eg_realloc(lat, (nlat + w[i].nlat + 1) * sizeof *lat);
        memcpy(lat + nlat, w[i].lat_us, w[i].nlat * sizeof *lat);
        nlat += w[i].nlat;
        r.errors += w[i].errors;
        r.lost += w[i].lost;
        r.lease_s += (double)w[i].lease_us / 1e6;
        r.complete_s += (double)w[i].complete_us / 1e6;
        eg_free(w[i].lat_us);
    }
    double sec = (double)(eg_mono_us() - t0) / 1e6;
    r.jobs_s = (double)atomic_load(&done) / sec;
    r.p50_ms = pct(lat, nlat, 0.50) / 1000.0;
    r.p99_ms = pct(lat, nlat, 0.99) / 1000.0;
    if (atomic_load(&done) != target)
        r.lost += target - atomic_load(&done);
    eg_free(lat);
    eg_free(w);
    eg_free(th);
    return r;
}

/* ---- cleanup and checks ---- */

typedef struct q_ctx {
    const char *q;
    bolt_params *p;
    int64_t n;
} q_ctx;

static int q_work(bolt_conn *c, void *payload, eg_error *err)
{
    q_ctx *x = payload;
    json_t *rows = NULL;
    int rc = bolt_conn_query_json(c, x->q, x->p, NULL, &rows, err);
    x->n = 0;
    if (!rc && json_array_size(rows))
        x->n = json_integer_value(json_object_get(json_array_get(rows, 0), "n"));
    json_decref(rows);
    return rc;
}

static int64_t q1(const char *q, const char *key, const char *val)
{
    q_ctx x = {.q = q, .p = bolt_params_new()};
    if (key)
        bolt_params_str(x.p, key, val);
    eg_error err = {0};
    if (bolt_pool_execute_write(g_pool, NULL, NULL, q_work, &x, &err))
        die(q, &err);
    bolt_params_free(x.p);
    return x.n;
}

static void drop_queue(const char *name)
{
    while (q1("MATCH (j:EmbedJob) WHERE j.queue = $q WITH j LIMIT 10000 DETACH DELETE j RETURN count(*) AS n",
              "q", name) == 10000)
        ;
    q1("MATCH (q:EmbedQueue {name: $q}) DETACH DELETE q RETURN 0 AS n", "q", name);
}

static int64_t completed_once(const char *name)
{
    return q1("MATCH (j:EmbedJob) WHERE j.queue = $q AND j.state = 'completed' AND j.attempts = 1 "
              "RETURN count(j) AS n",
              "q", name);
}

/* ---- raw floor ---- */

typedef struct raw_arg {
    size_t from, to;
    int64_t errors;
} raw_arg;

typedef struct raw_ctx {
    const char *const *names;
    const char *const *vers;
    size_t n;
} raw_ctx;

static int raw_work(bolt_conn *c, void *payload, eg_error *err)
{
    raw_ctx *r = payload;
    return write_vectors(c, r->names, r->vers, r->n, g_dim, err);
}

static void *raw_thread(void *p)
{
    raw_arg *a = p;
    const char **names = eg_calloc(g_batch, sizeof *names);
    const char **vers = eg_calloc(g_batch, sizeof *vers);
    char (*buf)[64] = eg_calloc(g_batch, sizeof *buf);
    for (size_t base = a->from; base < a->to; base += g_batch) {
        size_t k = a->to - base < g_batch ? a->to - base : g_batch;
        for (size_t i = 0; i < k; i++) {
            snprintf(buf[i], sizeof buf[i], "%s%zu", g_prefix, base + i);
            names[i] = buf[i];
            vers[i] = "v1";
        }
        raw_ctx r = {names, vers, k};
        eg_error err = {0};
        if (bolt_pool_execute_write(g_pool, NULL, NULL, raw_work, &r, &err)) {
            fprintf(stderr, "raw: %s\n", err.message);
            a->errors++;
            break;
        }
    }
    eg_free(names);
    eg_free(vers);
    eg_free(buf);
    return NULL;
}

static double raw_floor(int nw, size_t n)
{
    raw_arg *a = eg_calloc((size_t)nw, sizeof *a);
    pthread_t *th = eg_calloc((size_t)nw, sizeof *th);
    /* contiguous slices in batch units, so batches are the same as the queue's */
    size_t per = ((n / (size_t)nw) / g_batch + 1) * g_batch;
    int64_t t0 = eg_mono_us();
    for (int i = 0; i < nw; i++) {
        a[i].from = (size_t)i * per < n ? (size_t)i * per : n;
        a[i].to = a[i].from + per < n ? a[i].from + per : n;
        pthread_create(&th[i], NULL, raw_thread, &a[i]);
    }
    int64_t errors = 0;
    for (int i = 0; i < nw; i++) {
        pthread_join(th[i], NULL);
        errors += a[i].errors;
    }
    double sec = (double)(eg_mono_us() - t0) / 1e6;
    eg_free(a);
    eg_free(th);
    if (errors)
        die("raw floor failed", NULL);
    return (double)n / sec;
}

/* ENTITY: the vector index exactly as engram's graph schema creates it
 * (its migration statement), with `dims` dimensions. */
static void create_vector_index(size_t dims)
{
    graph_opts o = g_graph;
    o.vector_dimensions = dims;
    char **stmts = NULL;
    size_t n = 0;
    eg_error err = {0};
    if (graph_schema_statements(&o, 4 /* the vector index */, &stmts, &n, &err))
        die("vector index statement", &err);
    for (size_t i = 0; i < n; i++)
        q1(stmts[i], NULL, NULL);
    graph_strv_free(stmts, n);
    q1("CALL db.awaitIndexes(300)", NULL, NULL);
}

static void drop_vector_index(void)
{
    char q[256];
    snprintf(q, sizeof q, "DROP INDEX %s IF EXISTS", g_graph.vector_index);
    q1(q, NULL, NULL);
}

static void delete_entities(void)
{
    if (g_mode == WRITE_ENTITY)
        while (q1("MATCH (e:Entity) WHERE e.namespace = $ns WITH e LIMIT 5000 DETACH DELETE e "
                  "RETURN count(*) AS n",
                  "ns", g_ns) == 5000)
            ;
    else
        while (q1("MATCH (e:BenchEntity) WITH e LIMIT 5000 DETACH DELETE e RETURN count(*) AS n", NULL, NULL) ==
               5000)
            ;
}

/* The entities the vector figure writes to; false when the ENTITY mode
 * must be skipped (the database holds other entities: resetting the
 * vector index between passes would take theirs too). */
static bool make_entities(size_t n)
{
    if (g_mode == WRITE_ENTITY) {
        if (q1("MATCH (e:Entity) WHERE e.namespace <> $ns WITH e LIMIT 1 RETURN count(e) AS n", "ns", g_ns) > 0)
            return false;
    } else {
        q1("CREATE INDEX bench_entity_name IF NOT EXISTS FOR (e:BenchEntity) ON (e.name)", NULL, NULL);
        q1("CALL db.awaitIndexes(300)", NULL, NULL);
    }
    delete_entities();
    for (size_t base = 0; base < n; base += 5000) {
        char q[320];
        size_t k = n - base < 5000 ? n - base : 5000;
        if (g_mode == WRITE_ENTITY)
            snprintf(q, sizeof q,
                     "UNWIND range(%zu, %zu) AS i CREATE (:Entity {namespace: $ns, id: $ns + '-e' + toString(i), "
                     "name: 'e' + toString(i), entityType: 'bench', observations: [], contentHash: 'v1', "
                     "version: 1}) RETURN count(*) AS n",
                     base, base + k - 1);
        else
            snprintf(q, sizeof q,
                     "UNWIND range(%zu, %zu) AS i CREATE (:BenchEntity {name: 'e' + toString(i), "
                     "version: 'v1'}) RETURN count(*) AS n",
                     base, base + k - 1);
        q1(q, "ns", g_ns);
    }
    return true;
}

static int64_t entities_with_vectors(void)
{
    if (g_mode == WRITE_ENTITY)
        return q1("MATCH (e:Entity) WHERE e.namespace = $ns AND e.embedding IS NOT NULL RETURN count(e) AS n",
                  "ns", g_ns);
    return q1("MATCH (e:BenchEntity) WHERE e.embedding IS NOT NULL RETURN count(e) AS n", NULL, NULL);
}

/*
 * Before each pass: no entity has a vector.  ENTITY also starts every pass
 * on an empty vector index (dropped and created again): an HNSW graph
 * keeps removed vectors until Lucene merges its segments, so each pass
 * would otherwise insert into a bigger, slower graph than the one before
 * and whichever side ran second would look slower.
 */
static void clear_vectors(void)
{
    if (g_mode == WRITE_ENTITY) {
        while (q1("MATCH (e:Entity) WHERE e.namespace = $ns AND e.embedding IS NOT NULL WITH e LIMIT 2000 "
                  "REMOVE e.embedding RETURN count(*) AS n",
                  "ns", g_ns) == 2000)
            ;
        drop_vector_index();
        create_vector_index((size_t)g_dim);
        return;
    }
    while (q1("MATCH (e:BenchEntity) WHERE e.embedding IS NOT NULL WITH e LIMIT 2000 "
              "REMOVE e.embedding RETURN count(*) AS n",
              NULL, NULL) == 2000)
        ;
}

/* One raw pass on entities without vectors: jobs/s; *cpu_s = server CPU
 * seconds it took (-1 when unknown).  Exits when a vector is missing. */
static double timed_raw(int nw, size_t n, double *cpu_s)
{
    clear_vectors();
    double c0 = server_cpu_s();
    double jobs_s = raw_floor(nw, n);
    *cpu_s = c0 < 0 ? -1 : server_cpu_s() - c0;
    if (entities_with_vectors() != (int64_t)n)
        die("raw floor wrote the wrong number of vectors", NULL);
    return jobs_s;
}

/* One pass through a fresh queue whose completions write the vectors;
 * *cpu_s as above, *got = entities with a vector afterwards, *once = jobs
 * completed exactly once.  The queue is dropped afterwards. */
static pass_result timed_queue(int nw, size_t n, size_t ebatch, double *cpu_s, int64_t *got, int64_t *once)
{
    clear_vectors();
    char qn[QUEUE_NAME_MAX];
    queue_store *s = new_queue("vec", qn);
    char ns[QUEUE_NAME_MAX + 8];
    snprintf(ns, sizeof ns, "v_%s", qn);
    enqueue_all(s, ns, n, ebatch);
    double c0 = server_cpu_s();
    pass_result r = run_workers(s, nw, (int64_t)n, true);
    *cpu_s = c0 < 0 ? -1 : server_cpu_s() - c0;
    *got = entities_with_vectors();
    *once = completed_once(qn);
    drop_queue(qn);
    queue_store_free(s);
    return r;
}

/* ---- enqueue -> lease latency ---- */

typedef struct lat_result {
    double p50, p99;
} lat_result;

static lat_result latency_pass(int nw, size_t njobs)
{
    char qn[QUEUE_NAME_MAX];
    queue_store *s = new_queue("lat", qn);
    worker *w = eg_calloc((size_t)nw, sizeof *w);
    pthread_t *th = eg_calloc((size_t)nw, sizeof *th);
    _Atomic int64_t done = 0;
    _Atomic bool stop = false;
    for (int i = 0; i < nw; i++) {
        w[i] = (worker){.s = s, .done = &done, .target = (int64_t)njobs, .cape2l = njobs, .idle_poll_ms = 2,
                        .stop = &stop};
        w[i].e2l_ms = eg_calloc(njobs, sizeof *w[i].e2l_ms);
        snprintf(w[i].owner, sizeof w[i].owner, "lat-%d", i);
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    char ns[QUEUE_NAME_MAX + 8];
    snprintf(ns, sizeof ns, "lat_%s", qn + 10);
    for (size_t i = 0; i < njobs; i++) {
        char ent[32];
        snprintf(ent, sizeof ent, "e%zu", i);
        queue_enqueue_req r = {.ns = ns, .entity = ent, .version = "v1", .model = "bench"};
        queue_enqueue_result out;
        eg_error err = {0};
        if (queue_enqueue(s, NULL, &r, 1, &out, &err))
            die("enqueue", &err);
        eg_sleep_ms(5);
    }
    int64_t deadline = eg_mono_ms() + 60000;
    while (atomic_load(&done) < (int64_t)njobs && eg_mono_ms() < deadline)
        eg_sleep_ms(10);
    atomic_store(&stop, true);
    int64_t *all = eg_calloc(njobs + 1, sizeof *all);
    size_t n = 0;
    for (int i = 0; i < nw; i++) {
        pthread_join(th[i], NULL);
        for (size_t k = 0; k < w[i].ne2l && n < njobs; k++)
            all[n++] = w[i].e2l_ms[k];
        eg_free(w[i].e2l_ms);
    }
    lat_result r = {pct(all, n, 0.5), pct(all, n, 0.99)};
    eg_free(all);
    eg_free(w);
    eg_free(th);
    drop_queue(qn);
    queue_store_free(s);
    return r;
}

typedef struct vec_figure {
    bool ran;
    double vec_jobs_s, raw_jobs_s;   /* medians over rounds */
    double ratio;                    /* median of the per-round raw / vector */
    double cpu_ratio;                /* median of per-round server CPU queue / raw; 0 unknown */
    double raw_cpu_us, vec_cpu_us;   /* median server CPU per job; 0 unknown */
} vec_figure;

static double median_of(const double *v, int n)
{
    if (n <= 0)
        return 0;
    int64_t *tmp = eg_calloc((size_t)n, sizeof *tmp);
    for (int i = 0; i < n; i++)
        tmp[i] = (int64_t)(v[i] * 1e6);
    double m = pct(tmp, (size_t)n, 0.5) / 1e6;
    eg_free(tmp);
    return m;
}

/*
 * The vector figure in one write mode: `rounds` pairs of a raw pass and a
 * queue pass, alternating which goes first, after one unmeasured pass of
 * each (--warmup 1).  Exits when a pass loses or duplicates work.
 */
static vec_figure vector_figure(write_mode mode, int nw, size_t nvec, size_t ebatch, int rounds, int warmup)
{
    vec_figure f = {0};
    const char *tag = mode == WRITE_ENTITY ? "entity" : "plain";
    g_mode = mode;
    if (mode == WRITE_ENTITY) {
        char hex[9];
        eg_rand_hex(hex, 4);
        snprintf(g_ns, sizeof g_ns, "bq%s", hex);
        snprintf(g_prefix, sizeof g_prefix, "%s-e", g_ns);
    } else {
        g_ns[0] = '\0';
        snprintf(g_prefix, sizeof g_prefix, "e");
    }
    if (!make_entities(nvec)) {
        fprintf(stderr, "%s: skipped - the database holds other :Entity nodes, and each pass starts on an "
                        "empty vector index (run on the private Neo4j of bench/run)\n", tag);
        return f;
    }
    if (warmup) {
        /* One unmeasured pass of each kind: the first 1536-d writes into a
         * fresh store cost 2-3x (store files grow, the JIT compiles the
         * write path; 555 vs 200-240 us of server CPU per job measured),
         * which made whichever side ran first in round 1 look slow. */
        double ignored;
        int64_t wgot, wonce;
        timed_raw(nw, nvec, &ignored);
        pass_result wr = timed_queue(nw, nvec, ebatch, &ignored, &wgot, &wonce);
        if (wr.lost || wr.errors || wgot != (int64_t)nvec || wonce != (int64_t)nvec)
            die("warm-up pass lost work", NULL);
        fprintf(stderr, "%s warm-up: one raw and one queue pass of %zu vectors (not counted)\n", tag, nvec);
    }
    double *vec = eg_calloc((size_t)rounds, sizeof *vec), *raw = eg_calloc((size_t)rounds, sizeof *raw);
    double *ratio = eg_calloc((size_t)rounds, sizeof *ratio), *cpu = eg_calloc((size_t)rounds, sizeof *cpu);
    double *rcpu = eg_calloc((size_t)rounds, sizeof *rcpu), *vcpu = eg_calloc((size_t)rounds, sizeof *vcpu);
    int ncpu = 0;
    for (int round = 0; round < rounds; round++) {
        /* alternate which side goes first, so warm-up and drift hit both */
        double raw_s = 0, raw_cpu = -1, vec_cpu = -1;
        int64_t got = 0, once = 0;
        if (round % 2 == 0)
            raw_s = timed_raw(nw, nvec, &raw_cpu);
        pass_result r = timed_queue(nw, nvec, ebatch, &vec_cpu, &got, &once);
        if (round % 2 == 1)
            raw_s = timed_raw(nw, nvec, &raw_cpu);
        fprintf(stderr, "%s round %d: raw floor=%.0f jobs/s vector=%.0f jobs/s (ratio %.3f) vectors=%lld "
                        "completed_once=%lld (worker time: lease %.2f s, complete+write %.2f s)\n",
                tag, round + 1, raw_s, r.jobs_s, raw_s / r.jobs_s, (long long)got, (long long)once, r.lease_s,
                r.complete_s);
        if (raw_cpu > 0 && vec_cpu > 0) {
            fprintf(stderr, "%s round %d: server CPU per job: raw %.0f us, queue %.0f us (ratio %.3f)\n", tag,
                    round + 1, raw_cpu * 1e6 / (double)nvec, vec_cpu * 1e6 / (double)nvec, vec_cpu / raw_cpu);
            rcpu[ncpu] = raw_cpu * 1e6 / (double)nvec;
            vcpu[ncpu] = vec_cpu * 1e6 / (double)nvec;
            cpu[ncpu++] = vec_cpu / raw_cpu;
        }
        if (got != (int64_t)nvec || once != (int64_t)nvec || r.lost || r.errors)
            die("vector pass lost or duplicated work", NULL);
        vec[round] = r.jobs_s;
        raw[round] = raw_s;
        /* the pair ran back to back: the ratio within a round cancels the
         * machine's drift, its median is the overhead figure */
        ratio[round] = raw_s / r.jobs_s;
    }
    f = (vec_figure){.ran = true,
                     .vec_jobs_s = median_of(vec, rounds),
                     .raw_jobs_s = median_of(raw, rounds),
                     .ratio = median_of(ratio, rounds),
                     .cpu_ratio = median_of(cpu, ncpu),
                     .raw_cpu_us = median_of(rcpu, ncpu),
                     .vec_cpu_us = median_of(vcpu, ncpu)};
    eg_free(vec);
    eg_free(raw);
    eg_free(ratio);
    eg_free(cpu);
    eg_free(rcpu);
    eg_free(vcpu);
    delete_entities();
    if (mode == WRITE_ENTITY) {
        /* leave the index as the graph schema made it */
        drop_vector_index();
        create_vector_index(g_graph.vector_dimensions);
    }
    return f;
}

int main(int argc, char **argv)
{
    size_t njobs = 20000, nvec = 20000, nlat = 500, ebatch = 1000;
    int rounds = 1;
    int warmup = 1;
    int modes = 3;   /* 1 entity, 2 plain */
    const char *workers_arg = "1,2,4,8";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--jobs"))
            njobs = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--workers"))
            workers_arg = argv[i + 1];
        else if (!strcmp(argv[i], "--batch"))
            g_batch = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--vector-jobs"))
            nvec = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--dim"))
            g_dim = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--latency-jobs"))
            nlat = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--enqueue-batch"))
            ebatch = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--rounds"))
            rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--warmup"))
            warmup = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--write"))
            modes = !strcmp(argv[i + 1], "entity") ? 1 : !strcmp(argv[i + 1], "plain") ? 2
                    : !strcmp(argv[i + 1], "both")   ? 3
                                                     : 0;
        else {
            fprintf(stderr, "bench_queue: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (g_batch < 1 || g_batch > QUEUE_LEASE_MAX || ebatch < 1 || rounds < 1 || !modes) {
        fprintf(stderr, "bench_queue: bad option value (--write takes entity, plain or both)\n");
        return 2;
    }
    bolt_config cfg = BOLT_CONFIG_INIT;
    cfg.uri = getenv("BENCH_NEO4J_URI");
    cfg.user = getenv("BENCH_NEO4J_USER") ? getenv("BENCH_NEO4J_USER") : "neo4j";
    cfg.password = getenv("BENCH_NEO4J_PASSWORD") ? getenv("BENCH_NEO4J_PASSWORD") : "";
    if (!cfg.uri)
        die("BENCH_NEO4J_URI not set", NULL);
    bolt_pool_opts po = BOLT_POOL_OPTS_INIT;
    po.max_size = 24;
    eg_error err = {0};
    /* the graph's schema too: ENTITY writes through engram's own writer,
     * which needs the :Entity constraints and vector index */
    if (graph_opts_from_env(&g_graph, &err))
        die("graph options", &err);
    if (bolt_pool_new(&g_pool, &cfg, &po, &err) || bolt_pool_verify(g_pool, &err) ||
        queue_schema_register(&err) || graph_store_new(&g_store, g_pool, NULL, &g_graph, &err) ||
        graph_schema_apply(g_store, 120000, &err) ||
        worker_neo4j_sink_new(&g_sink, g_pool, NULL, g_graph.vector_index, &err))
        die("connect/schema", &err);

    int ws[8];
    int nws = 0;
    for (const char *p = workers_arg; *p && nws < 8;) {
        ws[nws++] = atoi(p);
        const char *c = strchr(p, ',');
        if (!c)
            break;
        p = c + 1;
    }
    /* (1) queue only */
    double best = 0, best_enq = 0, best_p50 = 0, best_p99 = 0;
    int best_w = 0;

    for (int i = 0; i < nws; i++) {
        char qn[QUEUE_NAME_MAX];
        queue_store *s = new_queue("noop", qn);
        char ns[QUEUE_NAME_MAX + 8];
        snprintf(ns, sizeof ns, "b_%s", qn);
        double esec = enqueue_all(s, ns, njobs, ebatch);
        double enq = (double)njobs / esec;
        pass_result r = run_workers(s, ws[i], (int64_t)njobs, false);
        int64_t once = completed_once(qn);
        fprintf(stderr, "workers=%d enqueue=%.0f jobs/s lease+complete=%.0f jobs/s claim p50=%.1f ms "
                        "p99=%.1f ms completed_once=%lld lost=%lld errors=%lld\n",
                ws[i], enq, r.jobs_s, r.p50_ms, r.p99_ms, (long long)once, (long long)r.lost,
                (long long)r.errors);
        printf("{\"phase\":\"queue\",\"jobs\":%zu,\"batch\":%zu,\"workers\":%d,\"enqueue_jobs_s\":%.0f,"
               "\"claim_complete_jobs_s\":%.0f,\"claim_p50_ms\":%.2f,\"claim_p99_ms\":%.2f}\n",
               njobs, g_batch, ws[i], enq, r.jobs_s, r.p50_ms, r.p99_ms);
        fflush(stdout);
        if (once != (int64_t)njobs || r.lost || r.errors)
            die("a job was lost or completed twice", NULL);
        if (enq > best_enq)
            best_enq = enq;
        if (r.jobs_s > best) {
            best = r.jobs_s;
            best_w = ws[i];
            best_p50 = r.p50_ms;
            best_p99 = r.p99_ms;
        }
        drop_queue(qn);
        queue_store_free(s);
    }
    /* (2) latency */
    lat_result lat = {0};
    if (nlat) {
        lat = latency_pass(best_w, nlat);
        fprintf(stderr, "enqueue->lease p50=%.1f ms p99=%.1f ms (%d workers polling every 2 ms)\n", lat.p50,
                lat.p99, best_w);
    }
    /* (3) vectors vs raw floor, alternating: the plain write (the head
     * figures: what the queue adds to the cheapest write), then engram's
     * own write into the vector index (entity_*; docs/queue.md says why it
     * is not the head figure: the index's segment merges run behind the
     * writes, outside any pass's clock) */
    vec_figure ent = {0}, plain = {0};
    if (nvec && (modes & 2))
        plain = vector_figure(WRITE_PLAIN, best_w, nvec, ebatch, rounds, warmup);
    if (nvec && (modes & 1))
        ent = vector_figure(WRITE_ENTITY, best_w, nvec, ebatch, rounds, warmup);
    vec_figure *head = plain.ran ? &plain : &ent;
    char server[64];
    bench_server_agent(g_pool, server, sizeof server);
    /* the entity figures next to the head one when both modes ran */
    char extra[400] = "";
    if (ent.ran && plain.ran)
        snprintf(extra, sizeof extra,
                 ",\"entity_vector_jobs_s\":%.0f,\"entity_raw_floor_jobs_s\":%.0f,\"entity_overhead_ratio\":%.3f,"
                 "\"entity_server_cpu_ratio\":%.3f,\"entity_raw_cpu_us_per_job\":%.0f,"
                 "\"entity_queue_cpu_us_per_job\":%.0f",
                 ent.vec_jobs_s, ent.raw_jobs_s, ent.ratio, ent.cpu_ratio, ent.raw_cpu_us, ent.vec_cpu_us);
    printf("{\"bench\":\"queue\",\"enqueue_jobs_s\":%.0f,\"claim_complete_jobs_s\":%.0f,\"best_workers\":%d,"
           "\"claim_p50_ms\":%.2f,\"claim_p99_ms\":%.2f,\"enqueue_to_lease_p50_ms\":%.1f,"
           "\"enqueue_to_lease_p99_ms\":%.1f,\"vector_write\":\"%s\",\"vector_jobs_s\":%.0f,"
           "\"raw_floor_jobs_s\":%.0f,\"overhead_ratio\":%.3f,\"overhead_ratio_of_medians\":%.3f,"
           "\"server_cpu_ratio\":%.3f,\"raw_cpu_us_per_job\":%.0f,\"queue_cpu_us_per_job\":%.0f%s,"
           "\"jobs\":%zu,\"vector_jobs\":%zu,\"dim\":%d,\"batch\":%zu,\"rounds\":%d,\"warmup\":%d,"
           "\"server\":\"%s\"}\n",
           best_enq, best, best_w, best_p50, best_p99, lat.p50, lat.p99,
           !head->ran ? "none" : head == &plain ? "plain" : "entity", head->vec_jobs_s, head->raw_jobs_s,
           head->ratio, head->vec_jobs_s > 0 ? head->raw_jobs_s / head->vec_jobs_s : 0.0, head->cpu_ratio,
           head->raw_cpu_us, head->vec_cpu_us, extra, njobs, nvec, g_dim, g_batch, rounds, warmup, server);
    worker_sink_free(g_sink);
    graph_store_free(g_store);
    bolt_pool_free(g_pool);
    return 0;
}
