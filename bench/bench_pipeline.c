/*
 * bench_pipeline.c - the embedding pipeline end to end on a real Neo4j.
 *
 * N entities with --observations K (default 3) observations each are
 * created through the graph (graph_create_entities: the entity, its K
 * observation records and their jobs in one transaction: one job for the
 * entity's own vector and one per observation record, so N x (1 + K) jobs),
 * then workers start on the backlog and we measure the time until every job
 * is completed, every entity and every live observation record has its
 * current vector, and both vector indexes (the entity index and
 * obs_vector_index, ENGRAM_OBSERVATION_VECTOR_INDEX) return the last
 * entity's and its last observation's.  The job counts are read from the
 * queue after the backlog (a payload with "kind":"observation" is an
 * observation job), not assumed.  The provider is a fake OpenAI-compatible
 * server in this process answering every request after --latency-ms
 * (default 50) with deterministic vectors; it counts requests.
 *
 *   --mode inserver    W worker threads in this process (engram serve --workers W)
 *   --mode processes   W `engram worker --concurrency 1` processes (ENGRAM_BIN)
 *
 * jobs_per_request = jobs / provider_requests; jobs_s = jobs / seconds.
 * ideal_seconds = provider_requests x latency / W (the provider's time when
 * W requests are always in flight); ratio_to_ideal = seconds / ideal.
 *
 * --provider local: the workers embed with engram's own sentence encoder
 * (ENGRAM_LOCAL_MODEL, default EMBED_LOCAL_DEFAULT_MODEL; 384 dimensions)
 * instead of the fake server.  Before the floor, the encoder alone embeds
 * the first 1,000 jobs' texts (entity and observation texts in queue
 * order) on this thread, --batch per call: encoder_texts_s, its own batched
 * rate; ratio_to_encoder = jobs_s / encoder_texts_s, and ideal_seconds =
 * jobs / (encoder_texts_s x min(W, cores)).  Progress is then read from the
 * queue every 500 ms.
 *
 * Vector floor (--floor 1, the default): before the pipeline, as many other
 * nodes as there are jobs - N plain :Entity nodes and N x K
 * :ObservationRecord:Observation nodes in a namespace of their own, no jobs,
 * interleaved as the pipeline's jobs are - get the same kind of vectors
 * through the workers' own write (worker_sink_write: lock, content-hash
 * check, setNodeVectorProperty into the two vector indexes, bookkeeping)
 * from W threads, --batch per transaction - no queue, no provider.
 * floor_seconds is what Neo4j needs just to store and index those vectors
 * here; ratio_to_floor = seconds / floor_seconds says how much the queue,
 * the provider and the rest of the pipeline add to it.  The floor goes
 * first, so the pipeline inserts into the larger indexes; the pipeline's
 * clock starts once the server has finished the index merges the floor
 * left behind (settle_before_s).
 * Prints one JSON line.  Needs BENCH_NEO4J_URI/_USER/_PASSWORD.
 */
#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "embed/local_model.h"
#include "embed/provider_impl.h"
#include "graph/graph.h"
#include "queue/neo4j_store.h"
#include "schema/schema.h"
#include "worker/manager.h"
#include "worker/neo4j_sink.h"

#include "bench_cpu.h"
#include "bench_server.h"

/* The tests' fake HTTP server, compiled in (bench programs link engram_lib only). */
#include "../tests/support/fake_http.c"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const words[] = {"espresso", "chess",  "garden",  "rust",     "marathon", "novel",
                                    "jazz",     "compiler", "tomato", "database", "piano",    "bicycle",
                                    "mountain", "harbor", "violin",  "kernel"};

static int die(const char *what, const eg_error *err)
{
    fprintf(stderr, "bench_pipeline: %s: %s\n", what, err ? err->message : "");
    return 1;
}

/* The i-th word, cycling (i >= 0). */
static const char *word(int i)
{
    return words[i % 16];
}

/* Observation k of bench entity i: distinct per entity and per k. */
static void obs_text(int i, int k, char *buf, size_t n)
{
    snprintf(buf, n, "likes %s and %s, item %d, fact %d", word(i + k), word(i / 16), i, k);
}

typedef struct count_ctx {
    const char *ns;
    const char *index, *obs_index;
    int dims;
    int64_t embedded, obs_embedded;
    const char *probe_name, *probe_obs; /* entity n-1's name; its last observation (NULL: none) */
    const float *probe_vec, *probe_obs_vec;
    bool found, obs_found;
} count_ctx;

static int64_t first_int(const json_t *rows, const char *key)
{
    return json_integer_value(json_object_get(json_array_get(rows, 0), key));
}

/* Is the node named (an entity) or worded (an observation record) `value`
 * among the 50 nearest to vec in `index`? */
static int probe(bolt_conn *c, const count_ctx *x, const char *index, const float *vec, const char *value,
                 bool *found, eg_error *err)
{
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "ns", x->ns);
    bolt_params_str(p, "index", index);
    bolt_params_float32_list(p, "vec", vec, (size_t)x->dims);
    bolt_params_str(p, "value", value);
    json_t *rows = NULL;
    int rc = bolt_conn_query_json(c,
                                  "CALL db.index.vector.queryNodes($index, 50, $vec) YIELD node, score "
                                  "WHERE node.namespace = $ns AND coalesce(node.name, node.text) = $value "
                                  "RETURN count(*) AS n",
                                  p, NULL, &rows, err);
    if (rc == 0)
        *found = first_int(rows, "n") > 0;
    json_decref(rows);
    bolt_params_free(p);
    return rc;
}

static int count_fn(bolt_conn *c, void *payload, eg_error *err)
{
    count_ctx *x = payload;
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "ns", x->ns);
    json_t *rows = NULL;
    int rc = bolt_conn_query_json(c,
                                  "CALL { MATCH (e:Entity {namespace: $ns}) WHERE e.embeddingHash = e.contentHash "
                                  "RETURN count(e) AS n } "
                                  "CALL { MATCH (o:ObservationRecord {namespace: $ns}) WHERE o:Observation "
                                  "AND o.embeddingHash = o.contentHash RETURN count(o) AS m } "
                                  "RETURN n, m",
                                  p, NULL, &rows, err);
    if (rc == 0) {
        x->embedded = first_int(rows, "n");
        x->obs_embedded = first_int(rows, "m");
    }
    json_decref(rows);
    bolt_params_free(p);
    if (rc == 0 && x->probe_vec)
        rc = probe(c, x, x->index, x->probe_vec, x->probe_name, &x->found, err);
    if (rc == 0 && x->probe_obs_vec)
        rc = probe(c, x, x->obs_index, x->probe_obs_vec, x->probe_obs, &x->obs_found, err);
    return rc;
}

/* The jobs the backlog enqueued on queue q: all, and those for observation
 * records (graph__outbox_flush writes "kind":"observation" in their payload). */
typedef struct jobs_ctx {
    const char *queue;
    int64_t jobs, obs_jobs;
} jobs_ctx;

static int jobs_fn(bolt_conn *c, void *payload, eg_error *err)
{
    jobs_ctx *x = payload;
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "q", x->queue);
    bolt_params_str(p, "kind", "\"kind\":\"observation\"");
    json_t *rows = NULL;
    int rc = bolt_conn_query_json(c,
                                  "MATCH (j:EmbedJob) WHERE j.queue = $q RETURN count(j) AS n, "
                                  "sum(CASE WHEN j.payload CONTAINS $kind THEN 1 ELSE 0 END) AS m",
                                  p, NULL, &rows, err);
    if (rc == 0) {
        x->jobs = first_int(rows, "n");
        x->obs_jobs = first_int(rows, "m");
    }
    json_decref(rows);
    bolt_params_free(p);
    return rc;
}

typedef struct clean_ctx {
    const char *ns, *queue;
    int64_t deleted;
} clean_ctx;

static int clean_fn(bolt_conn *c, void *payload, eg_error *err)
{
    clean_ctx *x = payload;
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "ns", x->ns);
    bolt_params_str(p, "q", x->queue);
    bolt_params_str(p, "kind", "\"kind\":\"observation\"");
    json_t *rows = NULL;
    int rc = bolt_conn_query_json(c,
                                  "CALL { MATCH (e:Entity {namespace: $ns}) RETURN e AS n LIMIT 2000 "
                                  "UNION MATCH (v:EntityVersion {namespace: $ns}) RETURN v AS n LIMIT 2000 "
                                  "UNION MATCH (o:ObservationRecord {namespace: $ns}) RETURN o AS n LIMIT 2000 "
                                  "UNION MATCH (j:EmbedJob) WHERE j.queue = $q RETURN j AS n LIMIT 2000 } "
                                  "DETACH DELETE n RETURN count(*) AS d",
                                  p, NULL, &rows, err);
    x->deleted = rc == 0 ? json_integer_value(json_object_get(json_array_get(rows, 0), "d")) : 0;
    json_decref(rows);
    if (rc == 0 && x->deleted == 0)
        rc = bolt_conn_exec(c, "MATCH (q:EmbedQueue {name: $q}) DETACH DELETE q", p, NULL, NULL, err);
    bolt_params_free(p);
    return rc;
}

/* ---- the vector floor: the workers' write with no queue and no provider ---- */

/*
 * Floor item j of n x (1 + K): j % (1 + K) == 0 is entity j / (1 + K)'s own
 * vector, the others its observation records' - the mix and the order in
 * which the backlog enqueues the pipeline's jobs.
 */
typedef struct floor_run {
    bolt_pool *pool;
    worker_sink *sink;
    const char *ns;
    int n, nobs, batch, dims;  /* n entities with nobs records each */
    int items;                 /* n x (1 + nobs) vectors */
    float *vecs;               /* items x dims, computed before the clock starts */
    _Atomic int next;          /* next batch start */
    _Atomic long long written, failed;
} floor_run;

typedef struct floor_batch {
    floor_run *r;
    int from, k;
} floor_batch;

/* Floor item j's node id and content hash (floor_create_fn made them). */
static void floor_item(const floor_run *r, int j, char *id, size_t idn, char *hash, size_t hn)
{
    int i = j / (1 + r->nobs), k = j % (1 + r->nobs) - 1;
    if (k < 0) {
        snprintf(id, idn, "%s-%d", r->ns, i);
        snprintf(hash, hn, "h%d", i);
    } else {
        snprintf(id, idn, "%s-%d-o%d", r->ns, i, k);
        snprintf(hash, hn, "h%d-o%d", i, k);
    }
}

static int floor_write_fn(bolt_conn *c, void *payload, eg_error *err)
{
    floor_batch *b = payload;
    floor_run *r = b->r;
    queue_job *jobs = eg_calloc((size_t)b->k, sizeof *jobs);
    worker_write *ws = eg_calloc((size_t)b->k, sizeof *ws);
    bool *sup = eg_calloc((size_t)b->k, sizeof *sup);
    char (*ids)[64] = eg_calloc((size_t)b->k, sizeof *ids);
    char (*hash)[32] = eg_calloc((size_t)b->k, sizeof *hash);
    int rc = EG_ENOMEM;
    if (jobs && ws && sup && ids && hash) {
        for (int i = 0; i < b->k; i++) {
            floor_item(r, b->from + i, ids[i], sizeof ids[i], hash[i], sizeof hash[i]);
            jobs[i] = (queue_job){.ns = (char *)r->ns, .entity = ids[i], .version = hash[i],
                                  .model = "text-embedding-3-small"};
            ws[i] = (worker_write){.job = &jobs[i], .vec = r->vecs + (size_t)(b->from + i) * (size_t)r->dims,
                                   .dims = r->dims};
        }
        queue_tx tx = QUEUE_TX_BOLT(c);
        rc = worker_sink_write(r->sink, &tx, ws, (size_t)b->k, sup, err);
        long long bad = 0;
        for (int i = 0; rc == 0 && i < b->k; i++)
            bad += sup[i];
        if (rc == 0)
            atomic_fetch_add(&r->failed, bad);
    }
    eg_free(jobs);
    eg_free(ws);
    eg_free(sup);
    eg_free(ids);
    eg_free(hash);
    return rc;
}

static void *floor_thread(void *p)
{
    floor_run *r = p;
    for (;;) {
        int from = atomic_fetch_add(&r->next, r->batch);
        if (from >= r->items)
            break;
        floor_batch b = {r, from, from + r->batch <= r->items ? r->batch : r->items - from};
        eg_error err = {0};
        if (bolt_pool_execute_write(r->pool, NULL, NULL, floor_write_fn, &b, &err)) {
            fprintf(stderr, "bench_pipeline: floor write: %s\n", err.message);
            atomic_fetch_add(&r->failed, b.k);
            continue;
        }
        atomic_fetch_add(&r->written, b.k);
    }
    return NULL;
}

/* Entities [from, from + k) and their records: ids and hashes as floor_item. */
static int floor_create_fn(bolt_conn *c, void *payload, eg_error *err)
{
    floor_batch *b = payload;
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "ns", b->r->ns);
    bolt_params_int(p, "a", b->from);
    bolt_params_int(p, "b", b->from + b->k - 1);
    bolt_params_int(p, "k", b->r->nobs);
    int rc = bolt_conn_exec(c,
                            "UNWIND range($a, $b) AS i "
                            "CREATE (e:Entity {namespace: $ns, id: $ns + '-' + toString(i), "
                            "name: 'floor-' + toString(i), entityType: 'thing', contentHash: 'h' + toString(i)}) "
                            "WITH e, i UNWIND range(0, $k - 1) AS k "
                            "CREATE (:ObservationRecord:Observation {namespace: $ns, entityId: e.id, "
                            "id: e.id + '-o' + toString(k), seq: k, text: 'floor ' + toString(i) + ' ' + toString(k), "
                            "contentHash: 'h' + toString(i) + '-o' + toString(k)})",
                            p, NULL, NULL, err);
    bolt_params_free(p);
    return rc;
}

/* Seconds to store and index the vectors of n entities with nobs records
 * each with `workers` threads; < 0 on error. */
static double vector_floor(bolt_pool *pool, const char *ns, int n, int nobs, int workers, int batch, int dims)
{
    floor_run r = {.pool = pool, .ns = ns, .n = n, .nobs = nobs, .items = n * (1 + nobs), .batch = batch,
                   .dims = dims};
    eg_error err = {0};
    if (worker_neo4j_sink_new(&r.sink, pool, NULL, "unused", &err))
        return -1;
    for (int a = 0; a < n; a += 2000) {
        floor_batch b = {&r, a, a + 2000 <= n ? 2000 : n - a};
        if (bolt_pool_execute_write(pool, NULL, NULL, floor_create_fn, &b, &err)) {
            fprintf(stderr, "bench_pipeline: floor entities: %s\n", err.message);
            worker_sink_free(r.sink);
            return -1;
        }
    }
    r.vecs = eg_malloc((size_t)r.items * (size_t)dims * sizeof *r.vecs);
    if (!r.vecs) {
        worker_sink_free(r.sink);
        return -1;
    }
    for (int j = 0; j < r.items; j++) {
        char text[160];
        snprintf(text, sizeof text, "floor item %d: likes %s and %s", j, word(j), word(j / 16));
        embed_offline_vector(text, dims, r.vecs + (size_t)j * (size_t)dims);
    }
    pthread_t *th = eg_calloc((size_t)workers, sizeof *th);
    int64_t t0 = eg_mono_ms();
    for (int i = 0; i < workers; i++)
        pthread_create(&th[i], NULL, floor_thread, &r);
    for (int i = 0; i < workers; i++)
        pthread_join(th[i], NULL);
    double sec = (double)(eg_mono_ms() - t0) / 1000.0;
    eg_free(th);
    eg_free(r.vecs);
    worker_sink_free(r.sink);
    if (atomic_load(&r.written) != r.items || atomic_load(&r.failed) != 0) {
        fprintf(stderr, "bench_pipeline: floor wrote %lld of %d vectors (%lld rejected)\n",
                (long long)atomic_load(&r.written), r.items, (long long)atomic_load(&r.failed));
        return -1;
    }
    return sec;
}

/*
 * The text a worker embeds for job j of bench entity i: j < 0 the entity's
 * own (graph_embedding_text of its nobs observations), else observation
 * j's record (graph_observation_text) - the graph's own definitions, so
 * the probes match what the workers wrote.  New string (eg_free); NULL on
 * failure.
 */
static char *job_text(int i, int j, int nobs)
{
    char name[32], obs[64][96];
    const char *v[64];
    snprintf(name, sizeof name, "entity-%05d", i);
    if (nobs > 64)
        return NULL;
    for (int k = 0; k < nobs; k++) {
        obs_text(i, k, obs[k], sizeof obs[k]);
        v[k] = obs[k];
    }
    char *text = NULL, hash[65];
    eg_error err = {0};
    int rc = j < 0 ? graph_embedding_text(name, "thing", v, (size_t)nobs, &text, hash, &err)
                   : graph_observation_text(name, "thing", obs[j], &text, hash, &err);
    return rc == 0 ? text : NULL;
}

/* The local encoder's own rate: texts/s for the first min(jobs, 1000)
 * jobs' texts in the order the backlog enqueues them (each entity, then its
 * nobs records), `batch` per call, on this thread.  Fills probe and
 * probe_obs (dims floats each) with entity n-1's vector and its last
 * record's (if nobs > 0).  -1 on failure. */
static double encoder_rate(const embed_config *ec, int n, int nobs, int batch, float *probe, float *probe_obs)
{
    eg_error err = {0};
    embed_local_model *m = NULL;
    if (embed_local_model_open(&m, ec->model_dir, ec->model, &err) ||
        embed_local_model_set_engine(m, (embed_local_engine)ec->local_engine, &err)) {
        fprintf(stderr, "bench_pipeline: local model: %s\n", err.message);
        embed_local_model_close(m);
        return -1;
    }
    int jobs = n * (1 + nobs);
    int k = jobs < 1000 ? jobs : 1000, dims = embed_local_model_dims(m);
    char **texts = eg_calloc((size_t)k, sizeof *texts);
    float *out = eg_malloc((size_t)batch * (size_t)dims * sizeof *out);
    double rate = -1;
    int rc = texts && out ? 0 : EG_ENOMEM;
    for (int j = 0; rc == 0 && j < k; j++)
        if (!(texts[j] = job_text(j / (1 + nobs), j % (1 + nobs) - 1, nobs)))
            rc = EG_ENOMEM;
    if (rc == 0) {
        const char **tv = (const char **)texts;
        rc = embed_local_model_embed(m, tv, 1, out, NULL, NULL, &err); /* warm-up */
        int64_t t0 = eg_mono_us();
        for (int i = 0; rc == 0 && i < k; i += batch)
            rc = embed_local_model_embed(m, tv + i, (size_t)(k - i < batch ? k - i : batch), out, NULL, NULL,
                                         &err);
        int64_t us = eg_mono_us() - t0;
        for (int j = -1; rc == 0 && j < nobs; j += nobs > 0 ? nobs : 1) {
            char *t = job_text(n - 1, j, nobs);
            const char *one[1] = {t};
            rc = t ? embed_local_model_embed(m, one, 1, j < 0 ? probe : probe_obs, NULL, NULL, &err) : EG_ENOMEM;
            eg_free(t);
        }
        if (rc == 0 && us > 0)
            rate = (double)k * 1e6 / (double)us;
    }
    if (rate < 0)
        fprintf(stderr, "bench_pipeline: local model: %s\n", err.message);
    for (int j = 0; texts && j < k; j++)
        eg_free(texts[j]);
    eg_free(texts);
    eg_free(out);
    embed_local_model_close(m);
    return rate;
}

static pid_t spawn(const char *bin, const char *queue, const char *url, int dims, int batch, bool local)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    char d[16], b[16];
    snprintf(d, sizeof d, "%d", dims);
    snprintf(b, sizeof b, "%d", batch);
    setenv("NEO4J_URI", getenv("BENCH_NEO4J_URI"), 1);
    setenv("NEO4J_USERNAME", getenv("BENCH_NEO4J_USER") ? getenv("BENCH_NEO4J_USER") : "neo4j", 1);
    setenv("NEO4J_PASSWORD", getenv("BENCH_NEO4J_PASSWORD") ? getenv("BENCH_NEO4J_PASSWORD") : "", 1);
    if (local) {
        setenv("ENGRAM_EMBED_PROVIDER", "local", 1);
        unsetenv("OPENAI_API_KEY");
    } else {
        setenv("ENGRAM_EMBED_PROVIDER", "openai", 1);
        setenv("OPENAI_API_KEY", "sk-bench", 1);
        setenv("OPENAI_BASE_URL", url, 1);
        setenv("OPENAI_EMBEDDING_MODEL", "text-embedding-3-small", 1);
    }
    setenv("ENGRAM_EMBED_DIMENSIONS", d, 1);
    setenv("ENGRAM_QUEUE_NAME", queue, 1);
    setenv("ENGRAM_WORKER_POLL_MS", "50", 1);
    setenv("ENGRAM_RATE_LIMIT_RPM", "0", 1);
    setenv("ENGRAM_RATE_LIMIT_TPM", "0", 1);
    setenv("ENGRAM_LOG_LEVEL", "warning", 1);
    execl(bin, bin, "worker", "--concurrency", "1", "--batch", b, "--no-health", (char *)NULL);
    _exit(127);
}

int main(int argc, char **argv)
{
    int n = 10000, nobs = 3, workers = 1, latency = 50, batch = 100, dims = 0, floor = 1;
    const char *mode = "inserver";
    const char *provider = "fake";
    const char *cleanup_ns = NULL; /* --cleanup bench_<hex>: delete a run's leftovers and exit */
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--entities"))
            n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--observations"))
            nobs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--workers"))
            workers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--latency-ms"))
            latency = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch"))
            batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dims"))
            dims = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--mode"))
            mode = argv[i + 1];
        else if (!strcmp(argv[i], "--cleanup"))
            cleanup_ns = argv[i + 1];
        else if (!strcmp(argv[i], "--floor"))
            floor = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--provider"))
            provider = argv[i + 1];
    }
    if (n < 1 || nobs < 0 || nobs > 64)
        return die("--entities must be >= 1 and --observations 0..64", NULL);
    bool local = strcmp(provider, "local") == 0;
    if (!local && strcmp(provider, "fake") != 0)
        return die("--provider must be fake or local", NULL);
    bool procs = strcmp(mode, "processes") == 0;
    eg_log_init_from_env();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *uri = getenv("BENCH_NEO4J_URI");
    if (!uri)
        return die("BENCH_NEO4J_URI not set", NULL);
    bolt_config cfg = BOLT_CONFIG_INIT;
    cfg.uri = uri;
    cfg.auth = BOLT_AUTH_BASIC;
    cfg.user = getenv("BENCH_NEO4J_USER") ? getenv("BENCH_NEO4J_USER") : "neo4j";
    cfg.password = getenv("BENCH_NEO4J_PASSWORD") ? getenv("BENCH_NEO4J_PASSWORD") : "";
    eg_error err = {0};
    bolt_pool *pool = NULL;
    bolt_pool_opts po = BOLT_POOL_OPTS_INIT;
    po.max_size = (size_t)workers * 2 + 6;
    if (cleanup_ns) {
        clean_ctx cl = {.ns = cleanup_ns, .queue = cleanup_ns};
        if (bolt_pool_new(&pool, &cfg, &po, &err))
            return die("pool", &err);
        do {
            if (bolt_pool_execute_write(pool, NULL, NULL, clean_fn, &cl, &err))
                return die("cleanup", &err);
        } while (cl.deleted > 0);
        bolt_pool_free(pool);
        return 0;
    }
    graph_opts go;
    if (graph_opts_from_env(&go, &err))
        return die("graph opts", &err);
    embed_config lec;
    if (local) {
        setenv("ENGRAM_EMBED_PROVIDER", "local", 1);
        if (embed_config_from_env(&lec, &err))
            return die("local provider", &err);
        dims = lec.dimensions;
    }
    if (dims > 0)
        go.vector_dimensions = (size_t)dims;
    dims = (int)go.vector_dimensions;
    go.embedding_model = local ? lec.model : "text-embedding-3-small";
    char hex[13], ns[64];
    eg_rand_hex(hex, 6);
    snprintf(ns, sizeof ns, "bench_%s", hex);
    queue_opts qo;
    if (queue_opts_from_env(&qo, &err))
        return die("queue opts", &err);
    snprintf(qo.name, sizeof qo.name, "bench_%s", hex);
    queue_store *store = NULL;
    graph_store *g = NULL;
    if (bolt_pool_new(&pool, &cfg, &po, &err) || bolt_pool_verify(pool, &err) || queue_schema_register(&err) ||
        queue_neo4j_new(&store, pool, &qo, &err) || graph_store_new(&g, pool, store, &go, &err) ||
        graph_schema_apply(g, 120000, &err))
        return die("setup", &err);

    fake_embed *srv = NULL;
    fake_embed_opts fo = {.dims = dims, .latency_ms = latency};
    if (fake_embed_start(&srv, &fo))
        return die("fake provider", NULL);

    /* The probes: entity n-1's vector and its last observation's, as the
     * workers will compute them. */
    float *pv = eg_malloc((size_t)dims * sizeof *pv), *pov = eg_malloc((size_t)dims * sizeof *pov);
    char last_obs[96] = "";
    if (nobs > 0)
        obs_text(n - 1, nobs - 1, last_obs, sizeof last_obs);
    double enc_rate = 0;
    if (local) {
        enc_rate = encoder_rate(&lec, n, nobs, batch, pv, pov);
        if (enc_rate < 0)
            return die("local encoder", NULL);
        fprintf(stderr, "bench_pipeline: encoder alone: %.1f texts/s (%s, one thread, %d per call)\n", enc_rate,
                lec.model, batch);
    } else {
        for (int j = -1; j < nobs; j += nobs > 0 ? nobs : 1) {
            char *t = job_text(n - 1, j, nobs);
            if (!t)
                return die("probe text", NULL);
            embed_offline_vector(t, dims, j < 0 ? pv : pov);
            eg_free(t);
        }
    }
    int64_t want_jobs = (int64_t)n * (1 + nobs);

    /* 0. the floor: the same number of vectors stored without the pipeline */
    char floor_ns[80];
    snprintf(floor_ns, sizeof floor_ns, "%s_floor", ns);
    double floor_s = 0, floor_cpu = -1;
    if (floor) {
        double c0 = server_cpu_s();
        floor_s = vector_floor(pool, floor_ns, n, nobs, workers, batch, dims);
        floor_cpu = c0 < 0 ? -1 : server_cpu_s() - c0;
        if (floor_s < 0)
            return die("vector floor", NULL);
        fprintf(stderr, "bench_pipeline: vector floor: %lld vectors in %.2f s (%d threads, %d per transaction)\n",
                (long long)want_jobs, floor_s, workers, batch);
    }

    /* 1. the backlog: N entities with K observations each, their jobs (one
     * per entity, one per observation record) enqueued in the same
     * transactions */
    int64_t t0 = eg_mono_ms();
    graph_req req = {.ns = ns, .changed_by = NULL};
    for (int a = 0; a < n; a += 500) {
        json_t *arr = json_array();
        for (int i = a; i < n && i < a + 500; i++) {
            char name[32], obs[96];
            snprintf(name, sizeof name, "entity-%05d", i);
            json_t *ol = json_array();
            for (int k = 0; k < nobs; k++) {
                obs_text(i, k, obs, sizeof obs);
                json_array_append_new(ol, json_string(obs));
            }
            json_array_append_new(arr, json_pack("{s:s,s:s,s:o}", "name", name, "entityType", "thing",
                                                 "observations", ol));
        }
        json_t *out = NULL;
        if (graph_create_entities(g, &req, arr, &out, &err))
            return die("create entities", &err);
        json_decref(out);
        json_decref(arr);
    }
    double create_s = (double)(eg_mono_ms() - t0) / 1000.0;
    /* What the backlog enqueued, from the queue: every job is waited for */
    jobs_ctx jc = {.queue = qo.name};
    if (bolt_pool_execute_read(pool, NULL, NULL, jobs_fn, &jc, &err))
        return die("count jobs", &err);
    int64_t jobs = jc.jobs, obs_jobs = jc.obs_jobs, ent_jobs = jc.jobs - jc.obs_jobs;
    fprintf(stderr, "bench_pipeline: %d entities, %d observations each, created in %.1f s (ns %s): %lld jobs "
            "(%lld entity, %lld observation)\n", n, nobs, create_s, ns, (long long)jobs, (long long)ent_jobs,
            (long long)obs_jobs);
    if (jobs != want_jobs || obs_jobs != (int64_t)n * nobs) {
        fprintf(stderr, "bench_pipeline: expected %lld jobs (%d entity, %lld observation)\n",
                (long long)want_jobs, n, (long long)n * nobs);
        return die("backlog", NULL);
    }

    /* 2. workers on the backlog - once the server is idle: the floor's
     * vector writes leave seconds of Lucene segment merges behind
     * (server_settle), which ran into the pipeline's clock before */
    double settle_s = server_settle(0.10, 120);
    fprintf(stderr, "bench_pipeline: server idle after %.1f s\n", settle_s);
    worker_sink *sink = NULL;
    worker_manager *m = NULL;
    pid_t *pids = NULL;
    double cpu0 = server_cpu_s();
    int64_t t1 = eg_mono_ms();
    if (procs) {
        const char *bin = getenv("ENGRAM_BIN");
        char path[4096];
        if (!bin) {
            snprintf(path, sizeof path, "%s/engram", getenv("BENCH_BUILD_DIR") ? getenv("BENCH_BUILD_DIR") : ".");
            bin = path;
        }
        pids = calloc((size_t)workers, sizeof *pids);
        for (int i = 0; i < workers; i++)
            pids[i] = spawn(bin, qo.name, fake_embed_openai_url(srv), dims, batch, local);
    } else {
        embed_config ec = {.kind = EMBED_PROVIDER_OPENAI, .base_url = fake_embed_openai_url(srv),
                           .api_key = "sk-bench", .model = "text-embedding-3-small", .dimensions = dims,
                           .timeout_ms = 30000};
        if (local)
            ec = lec;
        worker_opts wo;
        if (worker_opts_from_env(&wo, local ? EMBED_PROVIDER_LOCAL : EMBED_PROVIDER_OFFLINE, &err))
            return die("worker opts", &err);
        wo.concurrency = workers;
        wo.batch = batch;
        wo.poll_ms = 50;
        if (worker_neo4j_sink_new(&sink, pool, go.database, go.vector_index, &err) ||
            worker_manager_new(&m, &wo, &ec, store, sink, &err) || worker_manager_start(m, &err))
            return die("workers", &err);
    }

    /* 3. until every job is completed, every entity and observation record
     * has its current vector, and each index finds the last one */
    char probe_name[32];
    snprintf(probe_name, sizeof probe_name, "entity-%05d", n - 1);
    count_ctx cx = {.ns = ns, .index = go.vector_index, .obs_index = go.obs_vector_index, .dims = dims};
    int64_t deadline = eg_mono_ms() + 1800000;
    double embedded_s = 0;
    int64_t next_poll = 0;
    for (;;) {
        /* Progress from the fake provider first: it costs Neo4j nothing, and
         * polling the queue's status every 50 ms while the workers run took
         * server CPU from them (each status call counts every job).  Then
         * the queue (indexed), then the entity check and the vector-index
         * probe once every job is done. */
        fake_embed_stats ps;
        fake_embed_stats_get(srv, &ps);
        int64_t done = 0;
        /* The local provider makes no requests to count: ask the queue,
         * every 500 ms. */
        bool ask = local ? eg_mono_ms() >= next_poll : ps.inputs >= (uint64_t)jobs;
        if (ask) {
            next_poll = eg_mono_ms() + 500;
            queue_status qs;
            memset(&qs, 0, sizeof qs);
            if (queue_status_get(store, &qs, &err))
                return die("queue status", &err);
            done = qs.count[QUEUE_COMPLETED];
            queue_status_clear(&qs);
        }
        if (done >= jobs) {
            cx.probe_vec = pv;
            cx.probe_name = probe_name;
            if (nobs > 0) {
                cx.probe_obs_vec = pov;
                cx.probe_obs = last_obs;
            }
            if (bolt_pool_execute_read(pool, NULL, NULL, count_fn, &cx, &err))
                return die("count", &err);
            bool all = cx.embedded >= n && cx.obs_embedded >= obs_jobs;
            if (all && embedded_s == 0)
                embedded_s = (double)(eg_mono_ms() - t1) / 1000.0;
            if (all && cx.found && (nobs == 0 || cx.obs_found))
                break;
        }
        for (int i = 0; procs && i < workers; i++) {
            int wst = 0;
            if (pids[i] > 0 && waitpid(pids[i], &wst, WNOHANG) == pids[i]) {
                fprintf(stderr, "bench_pipeline: worker process %d exited (status %d); is ENGRAM_BIN right?\n",
                        (int)pids[i], wst);
                pids[i] = -1;
                deadline = 0;
            }
        }
        if (eg_mono_ms() > deadline)
            return die("timeout waiting for embeddings (rerun with --cleanup to remove this run's data)", NULL);
        eg_sleep_ms(20);
    }
    double seconds = (double)(eg_mono_ms() - t1) / 1000.0;
    double pipe_cpu = cpu0 < 0 ? -1 : server_cpu_s() - cpu0;
    fake_embed_stats st;
    fake_embed_stats_get(srv, &st);

    if (procs) {
        for (int i = 0; i < workers; i++)
            if (pids[i] > 0)
                kill(pids[i], SIGTERM);
        for (int i = 0; i < workers; i++)
            if (pids[i] > 0)
                waitpid(pids[i], NULL, 0);
        free(pids);
    } else {
        worker_manager_stop(m, 5000);
        worker_manager_free(m);
        worker_sink_free(sink);
    }
    double ideal = (double)st.requests * latency / 1000.0 / workers;
    if (local) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        int busy = cores > 0 && cores < workers ? (int)cores : workers;
        ideal = enc_rate > 0 ? (double)jobs / (enc_rate * busy) : 0;
    }
    char server[64];
    bench_server_agent(pool, server, sizeof server);
    printf("{\"bench\":\"pipeline\",\"mode\":\"%s\",\"workers\":%d,\"entities\":%d,"
           "\"observations_per_entity\":%d,\"jobs\":%lld,\"entity_jobs\":%lld,\"observation_jobs\":%lld,"
           "\"entity_vectors\":%lld,\"observation_vectors\":%lld,\"seconds\":%.3f,"
           "\"embedded_seconds\":%.3f,\"create_seconds\":%.3f,\"provider_requests\":%llu,"
           "\"provider_inputs\":%llu,\"jobs_per_request\":%.1f,\"jobs_s\":%.1f,\"ideal_seconds\":%.3f,"
           "\"ratio_to_ideal\":%.3f,\"floor_vectors\":%lld,\"floor_seconds\":%.3f,\"floor_jobs_s\":%.1f,"
           "\"ratio_to_floor\":%.3f,"
           "\"server_cpu_s\":%.2f,\"floor_server_cpu_s\":%.2f,\"server_cpu_ratio_to_floor\":%.3f,"
           "\"latency_ms\":%d,\"batch\":%d,\"dims\":%d,\"max_inflight\":%llu,\"settle_before_s\":%.1f,"
           "\"provider\":\"%s\",\"model\":\"%s\",\"encoder_texts_s\":%.1f,\"ratio_to_encoder\":%.3f,"
           "\"server\":\"%s\"}\n",
           mode, workers, n, nobs, (long long)jobs, (long long)ent_jobs, (long long)obs_jobs,
           (long long)cx.embedded, (long long)cx.obs_embedded, seconds, embedded_s, create_s,
           (unsigned long long)st.requests, (unsigned long long)st.inputs,
           st.requests ? (double)jobs / (double)st.requests : 0.0, seconds > 0 ? (double)jobs / seconds : 0.0, ideal,
           ideal > 0 ? seconds / ideal : 0.0, floor ? (long long)want_jobs : 0LL, floor_s,
           floor_s > 0 ? (double)want_jobs / floor_s : 0.0, floor_s > 0 ? seconds / floor_s : 0.0, pipe_cpu,
           floor_cpu, pipe_cpu > 0 && floor_cpu > 0 ? pipe_cpu / floor_cpu : 0.0, latency, batch, dims,
           (unsigned long long)st.max_inflight, settle_s, local ? "local" : "fake", go.embedding_model, enc_rate,
           enc_rate > 0 && seconds > 0 ? (double)jobs / seconds / enc_rate : 0.0, server);
    fflush(stdout);
    eg_free(pv);
    eg_free(pov);
    fake_embed_stop(srv);
    if (!getenv("BENCH_PIPELINE_KEEP")) {
        clean_ctx cls[2] = {{.ns = ns, .queue = qo.name}, {.ns = floor_ns, .queue = floor_ns}};
        for (int k = 0; k < 2; k++) {
            do {
                if (bolt_pool_execute_write(pool, NULL, NULL, clean_fn, &cls[k], &err)) {
                    fprintf(stderr, "bench_pipeline: cleanup: %s\n", err.message);
                    break;
                }
            } while (cls[k].deleted > 0);
        }
    }
    graph_store_free(g);
    queue_store_free(store);
    bolt_pool_free(pool);
    curl_global_cleanup();
    return 0;
}
