/*
 * backend_graph.c - MCP tool slots over graph/, queue/ and embed/ (see
 * backend_graph.h).  Each slot maps validated arguments onto one graph_*
 * call and reshapes the result into the tool's outputSchema; all domain
 * rules (versioning, dedupe, fencing, escaping) live in graph/ and queue/.
 */
#include "mcp/backend_graph.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "worker/health.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

typedef struct gb {
    mcp_graph_deps d;
    pthread_mutex_t emu;       /* guards prov */
    embed_provider *prov;      /* NULL: no query vectors */
    bool prov_tried;
} gb;

static const char *arg_str(const json_t *a, const char *k)
{
    return json_string_value(json_object_get(a, k));
}

static void page_from(const json_t *a, graph_page *p)
{
    *p = (graph_page)GRAPH_PAGE_INIT;
    if (json_is_integer(json_object_get(a, "limit")))
        p->limit = (size_t)json_integer_value(json_object_get(a, "limit"));
    p->cursor = arg_str(a, "cursor");
}

/*
 * After a mutation committed: wake the in-server workers; in synchronous
 * mode also wait (bounded) until they wrote the vectors.  The provider call
 * still happens outside the mutation's transaction, in a worker: the
 * synchronous mode only changes when the tool call returns.
 */
static void notify(gb *b, const json_t *out)
{
    const json_t *ids = json_object_get(out, "jobIds");
    size_t n = json_array_size(ids);
    if (!b->d.workers || n == 0)
        return;
    worker_manager_notify(b->d.workers);
    if (b->d.sync_timeout_ms <= 0)
        return;
    const char **v = eg_calloc(n, sizeof *v);
    if (!v)
        return; /* the jobs stay queued: asynchronous fallback */
    for (size_t i = 0; i < n; i++)
        v[i] = json_string_value(json_array_get(ids, i));
    if (worker_manager_wait_jobs(b->d.workers, v, n, b->d.sync_timeout_ms) != 0)
        EG_DEBUG("mcp", "synchronous embedding timed out; %zu job(s) stay queued", n);
    eg_free(v);
}

/* The call's namespace: tools.c put the one the caller may use in the
 * arguments (or none: the store's own). */
#define PRELUDE                                            \
    gb *b = self;                                          \
    graph_req req = GRAPH_REQ_INIT;                        \
    req.ns = arg_str(a, "namespace");                      \
    (void)b;                                               \
    (void)req;                                             \
    if (mcp_call_cancelled(ctx))                           \
        return EG_ECANCELED;
#define CALL_NS (req.ns ? req.ns : graph_store_opts(b->d.graph)->ns)

static int s_create_entities(void *self, const json_t *a, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PRELUDE;
    int rc = graph_create_entities(b->d.graph, &req, json_object_get(a, "entities"), out, err);
    if (rc == 0)
        notify(b, *out);
    return rc;
}

static int s_create_relations(void *self, const json_t *a, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PRELUDE;
    return graph_create_relations(b->d.graph, &req, json_object_get(a, "relations"), out, err);
}

static int s_add_observations(void *self, const json_t *a, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PRELUDE;
    int rc = graph_add_observations(b->d.graph, &req, json_object_get(a, "observations"), out, err);
    if (rc == 0)
        notify(b, *out);
    return rc;
}

static int s_delete_entities(void *self, const json_t *a, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PRELUDE;
    return graph_delete_entities(b->d.graph, &req, json_object_get(a, "entityNames"), out, err);
}

static int s_delete_observations(void *self, const json_t *a, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PRELUDE;
    int rc = graph_delete_observations(b->d.graph, &req, json_object_get(a, "deletions"), out, err);
    if (rc == 0)
        notify(b, *out);
    return rc;
}

static int s_delete_relations(void *self, const json_t *a, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PRELUDE;
    return graph_delete_relations(b->d.graph, &req, json_object_get(a, "relations"), out, err);
}

static int s_get_relation(void *self, const json_t *a, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PRELUDE;
    json_t *rel = NULL;
    eg_error e2;
    eg_error_clear(&e2);
    int rc = graph_get_relation(b->d.graph, &req, arg_str(a, "from"), arg_str(a, "to"), arg_str(a, "relationType"),
                                &rel, &e2);
    if (rc == EG_ENOTFOUND) {
        *out = json_pack("{s:b, s:n}", "found", 0, "relation");
        return *out ? 0 : EG_ENOMEM;
    }
    if (rc) {
        eg_error_copy(err, &e2);
        return rc;
    }
    *out = json_pack("{s:b, s:o}", "found", 1, "relation", rel);
    return *out ? 0 : EG_ENOMEM;
}

static int s_update_relation(void *self, const json_t *a, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PRELUDE;
    json_t *rel = NULL;
    int rc = graph_update_relation(b->d.graph, &req, json_object_get(a, "relation"), &rel, err);
    if (rc)
        return rc;
    *out = json_pack("{s:o}", "relation", rel);
    return *out ? 0 : EG_ENOMEM;
}

static int s_read_graph(void *self, const json_t *a, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PRELUDE;
    graph_page p;
    page_from(a, &p);
    return graph_read_graph(b->d.graph, &req, &p, out, err);
}

static int s_search_nodes(void *self, const json_t *a, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PRELUDE;
    graph_page p;
    page_from(a, &p);
    return graph_search_nodes(b->d.graph, &req, arg_str(a, "query"), &p, out, err);
}

static int s_open_nodes(void *self, const json_t *a, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PRELUDE;
    graph_page p;
    page_from(a, &p);
    return graph_open_nodes_with(b->d.graph, &req, json_object_get(a, "names"), &p,
                                 json_is_true(json_object_get(a, "neighbours")), out, err);
}

/* Embed the query; NULL (with *why set) when no vector can be had. New. */
static float *query_vector(gb *b, const char *text, size_t *dims, const char **why)
{
    *why = NULL;
    float *v = NULL;
    if (b->d.vector_conflict) {
        *why = b->d.vector_conflict;
        return NULL;
    }
    pthread_mutex_lock(&b->emu);
    if (!b->prov && !b->prov_tried && b->d.embed) {
        b->prov_tried = true;
        eg_error e;
        if (embed_provider_new(&b->prov, b->d.embed, &e) != 0) {
            EG_WARN("mcp", "no embedding provider for query vectors: %s", e.message);
            b->prov = NULL;
        }
    }
    if (!b->prov) {
        *why = "no embedding provider configured";
    } else {
        int d = embed_provider_dims(b->prov);
        v = d > 0 ? eg_malloc((size_t)d * sizeof *v) : NULL;
        embed_status st;
        embed_status_clear(&st);
        eg_error e;
        eg_error_clear(&e);
        if (v && embed_provider_embed_query(b->prov, text, v, &st, &e) == 0) {
            *dims = (size_t)d;
        } else {
            eg_free(v);
            v = NULL;
            *why = "the embedding provider failed for the query";
            EG_WARN("mcp", "query embedding failed: %s", st.message[0] ? st.message : e.message);
        }
    }
    pthread_mutex_unlock(&b->emu);
    return v;
}

/* Add the "matches" summary (name, type, scores) the outputSchema promises. */
static void add_matches(json_t *res, const char *why)
{
    json_t *m = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(res, "entities"), i, e)
    {
        json_t *x = json_pack("{s:s?, s:s?, s:f}", "name", arg_str(e, "name"), "entityType", arg_str(e, "entityType"),
                              "score", json_number_value(json_object_get(e, "score")));
        json_t *sim = json_object_get(e, "similarity");
        if (!sim && json_is_string(json_object_get(res, "searchType")) &&
            strcmp(arg_str(res, "searchType"), "semantic") == 0)
            sim = json_object_get(e, "score");
        json_object_set_new(x, "vectorScore", json_is_number(sim) ? json_real(json_number_value(sim)) : json_null());
        json_array_append_new(m, x);
    }
    json_object_set_new(res, "matches", m);
    if (why && !json_object_get(res, "note"))
        json_object_set_new(res, "note", json_string(why));
}

/*
 * Hybrid search's query vector, computed on a thread of its own while the
 * keyword legs run in Neo4j (graph_hybrid_search_deferred): the local
 * encoder spends ~20 ms of one core on a query, Neo4j its own core on the
 * full-text legs, so a search costs the longer of the two instead of their
 * sum.  Without a thread (pthread_create failed) the vector is computed
 * when the search asks for it, as before.
 */
typedef struct query_vec_job {
    gb *b;
    const char *text;
    mcp_call_ctx *ctx;
    pthread_t thread;
    bool started; /* the thread runs (join it) */
    bool done;    /* vec, dims, why are set */
    float *vec;   /* owned: eg_free */
    size_t dims;
    const char *why;
} query_vec_job;

static void *query_vec_main(void *arg)
{
    query_vec_job *j = arg;
    int64_t t0 = eg_mono_us();
    j->vec = query_vector(j->b, j->text, &j->dims, &j->why);
    EG_DEBUG("mcp", "query embedded in %.1f ms", (double)(eg_mono_us() - t0) / 1e3);
    return NULL;
}

/* The vector, once computed; safe to call more than once. */
static void query_vec_finish(query_vec_job *j)
{
    if (j->started) {
        pthread_join(j->thread, NULL);
        j->started = false;
        j->done = true;
    }
    if (!j->done) {
        j->vec = query_vector(j->b, j->text, &j->dims, &j->why);
        j->done = true;
    }
}

/* graph_vec_source: wait for the vector; the search stops here if the client gave up meanwhile. */
static int query_vec_source(void *arg, const float **vec, size_t *dims, eg_error *err)
{
    query_vec_job *j = arg;
    query_vec_finish(j);
    /* The provider call can take seconds (remote API): report it. */
    mcp_call_progress(j->ctx, 1, 2, j->vec ? "query embedded" : "no query vector; keyword search");
    if (mcp_call_cancelled(j->ctx))
        return eg_error_set(err, EG_ECANCELED, EG_CLASS_CLIENT, "the client cancelled the search");
    *vec = j->vec;
    *dims = j->vec ? j->dims : 0;
    return 0;
}

static int do_search(gb *b, const json_t *a, mcp_call_ctx *ctx, bool hybrid, double def_min, json_t **out,
                     eg_error *err)
{
    graph_req req = GRAPH_REQ_INIT;
    graph_search_opts so = GRAPH_SEARCH_OPTS_INIT;
    if (json_is_integer(json_object_get(a, "limit")))
        so.limit = (size_t)json_integer_value(json_object_get(a, "limit"));
    so.min_similarity = json_is_number(json_object_get(a, "min_similarity"))
                            ? json_number_value(json_object_get(a, "min_similarity"))
                            : def_min;
    so.entity_types = json_object_get(a, "entity_types");
    if (json_is_number(json_object_get(a, "semantic_weight")))
        so.semantic_weight = json_number_value(json_object_get(a, "semantic_weight"));
    const char *q = arg_str(a, "query");
    if (hybrid) {
        query_vec_job j = {.b = b, .text = q, .ctx = ctx};
        j.started = pthread_create(&j.thread, NULL, query_vec_main, &j) == 0;
        int rc = graph_hybrid_search_deferred(b->d.graph, &req, q, query_vec_source, &j, &so, out, err);
        query_vec_finish(&j); /* the search may have ended before it asked */
        eg_free(j.vec);
        if (rc == 0)
            add_matches(*out, j.why);
        return rc;
    }
    size_t dims = 0;
    const char *why = NULL;
    float *v = query_vector(b, q, &dims, &why);
    /* The provider call can take seconds (remote API): report it, and stop
     * here if the client gave up meanwhile. */
    mcp_call_progress(ctx, 1, 2, v ? "query embedded" : "no query vector; keyword search");
    if (mcp_call_cancelled(ctx)) {
        eg_free(v);
        return EG_ECANCELED;
    }
    int rc;
    if (!v)
        rc = graph_hybrid_search(b->d.graph, &req, q, v, dims, &so, out, err);
    else
        rc = graph_semantic_search(b->d.graph, &req, v, dims, &so, out, err);
    eg_free(v);
    if (rc == 0)
        add_matches(*out, why);
    return rc;
}

static int s_semantic_search(void *self, const json_t *a, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PRELUDE;
    const json_t *h = json_object_get(a, "hybrid_search");
    bool hybrid = h ? json_is_true(h) : true;
    return do_search(b, a, ctx, hybrid, hybrid ? 0.0 : 0.6, out, err);
}

static int s_hybrid_search(void *self, const json_t *a, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PRELUDE;
    return do_search(b, a, ctx, true, 0.0, out, err);
}

static int s_get_entity_embedding(void *self, const json_t *a, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PRELUDE;
    return graph_get_entity_embedding(b->d.graph, &req, arg_str(a, "entity_name"), out, err);
}

static int s_get_entity_history(void *self, const json_t *a, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PRELUDE;
    graph_page p;
    page_from(a, &p);
    int rc = graph_get_entity_history(b->d.graph, &req, arg_str(a, "entityName"), &p, out, err);
    if (rc == 0)
        json_object_set_new(*out, "entityName", json_string(arg_str(a, "entityName")));
    return rc;
}

static int s_get_relation_history(void *self, const json_t *a, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PRELUDE;
    graph_page p;
    page_from(a, &p);
    int rc = graph_get_relation_history(b->d.graph, &req, arg_str(a, "from"), arg_str(a, "to"),
                                        arg_str(a, "relationType"), &p, out, err);
    if (rc == 0) {
        json_object_set_new(*out, "from", json_string(arg_str(a, "from")));
        json_object_set_new(*out, "to", json_string(arg_str(a, "to")));
        json_object_set_new(*out, "relationType", json_string(arg_str(a, "relationType")));
    }
    return rc;
}

static int s_get_graph_at_time(void *self, const json_t *a, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PRELUDE;
    graph_page p;
    page_from(a, &p);
    return graph_get_graph_at_time(b->d.graph, &req, (int64_t)json_number_value(json_object_get(a, "timestamp")), &p,
                                   out, err);
}

static int s_get_decayed_graph(void *self, const json_t *a, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PRELUDE;
    graph_decay_opts d = GRAPH_DECAY_OPTS_INIT;
    if (json_is_number(json_object_get(a, "reference_time")))
        d.reference_time_ms = (int64_t)json_number_value(json_object_get(a, "reference_time"));
    if (json_is_number(json_object_get(a, "decay_factor")))
        d.half_life_days = json_number_value(json_object_get(a, "decay_factor"));
    graph_page p;
    page_from(a, &p);
    return graph_get_decayed_graph(b->d.graph, &req, &d, &p, out, err);
}

static int s_force_generate_embedding(void *self, const json_t *a, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PRELUDE;
    json_t *r = NULL;
    const char *name = arg_str(a, "entity_name");
    json_int_t limit = json_integer_value(json_object_get(a, "limit"));
    int rc = graph_force_generate_embedding(b->d.graph, &req, name, limit > 0 ? (size_t)limit : 0, true, &r,
                                            err);
    if (rc)
        return rc;
    json_t *ids = json_object_get(r, "jobIds");
    bool queued = true;
    if (b->d.workers && json_array_size(ids) > 0) {
        /* With in-server workers, wait briefly so the tool behaves like
         * memento's synchronous one; otherwise the job stays queued. */
        worker_manager_notify(b->d.workers);
        mcp_call_progress(ctx, 1, 2, "embedding job queued; waiting for a worker");
        size_t n = json_array_size(ids);
        const char **v = eg_calloc(n, sizeof *v);
        for (size_t i = 0; v && i < n; i++)
            v[i] = json_string_value(json_array_get(ids, i));
        if (v && worker_manager_wait_jobs(b->d.workers, v, n, 10000) == 0)
            queued = false;
        eg_free(v);
    }
    /* The graph's report (jobIds, entities, created, existing) plus the
     * memento-shaped fields. */
    *out = r;
    json_object_set_new(r, "success", json_true());
    json_object_set_new(r, "queued", json_boolean(queued));
    if (name)
        json_object_set_new(r, "entity", json_string(name));
    if (!json_object_get(r, "jobIds"))
        json_object_set_new(r, "jobIds", json_array());
    return 0;
}

static int s_debug_embedding_config(void *self, const json_t *a, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PRELUDE;
    int rc = graph_debug_embedding_config(b->d.graph, &req, out, err);
    if (rc == 0 && b->d.embed) {
        json_object_set_new(*out, "provider", json_string(embed_kind_name(b->d.embed->kind)));
        json_object_set_new(*out, "providerModel", json_string(b->d.embed->model ? b->d.embed->model : ""));
        json_object_set_new(*out, "apiKeyPresent", json_boolean(b->d.embed->api_key && b->d.embed->api_key[0]));
        json_object_set_new(*out, "inServerWorkers", json_boolean(b->d.workers != NULL));
        json_object_set_new(*out, "fallback", b->d.embed->fallback ? json_string(b->d.embed->fallback) : json_null());
    }
    return rc;
}

static int s_diagnose_vector_search(void *self, const json_t *a, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PRELUDE;
    return graph_diagnose_vector_search(b->d.graph, &req, out, err);
}

static int s_queue_status(void *self, const json_t *a, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PRELUDE;
    queue_status st;
    memset(&st, 0, sizeof st);
    int rc = queue_status_get_ns(b->d.queue, CALL_NS, &st, err);
    if (rc)
        return rc;
    json_t *counts = json_object();
    for (int i = 0; i < QUEUE_STATE_COUNT; i++)
        json_object_set_new(counts, queue_state_name((queue_state)i), json_integer(st.count[i]));
    json_t *dead = json_array();
    for (size_t i = 0; i < st.ndead; i++)
        json_array_append_new(dead,
                              json_pack("{s:s, s:s?, s:s?, s:i}", "id", st.dead[i].id, "entity", st.dead[i].entity,
                                        "lastError", st.dead[i].last_error, "attempts", st.dead[i].attempts));
    *out = json_pack("{s:o, s:I, s:I, s:o}", "counts", counts, "ready", (json_int_t)st.ready, "expiredLeases",
                     (json_int_t)st.expired_leases, "recentDead", dead);
    if (*out)
        json_object_set_new(*out, "oldestPendingAgeMs",
                            st.oldest_pending_age_ms >= 0 ? json_integer(st.oldest_pending_age_ms) : json_null());
    worker_health_input hi;
    memset(&hi, 0, sizeof hi);
    if (*out && b->d.workers) {
        worker_manager_get_stats(b->d.workers, &hi.ws);
        hi.have_workers = true;
        json_object_set_new(*out, "workers",
                            json_pack("{s:i, s:I, s:I, s:i, s:s}", "concurrency", hi.ws.concurrency, "completed",
                                      (json_int_t)hi.ws.completed, "failed", (json_int_t)hi.ws.failed,
                                      "consecutiveFailures", hi.ws.consecutive_failures, "provider", hi.ws.provider));
    }
    if (*out) {
        json_t *buckets = json_array();
        for (int i = 0; i < QUEUE_STATUS_BUCKETS; i++)
            json_array_append_new(buckets, json_integer(st.completed_recent[i]));
        json_object_set_new(
            *out, "throughput",
            json_pack("{s:I, s:o}", "bucketMs", (json_int_t)QUEUE_STATUS_BUCKET_MS, "completed", buckets));
        /* The verdict /health gives, over this namespace's jobs, so the
         * console and an agent see the same health an operator's probe does. */
        worker_health_opts ho;
        if (worker_health_opts_from_env(&ho, NULL) == 0) {
            hi.queue_ok = true;
            hi.qs = st;
            hi.now_wall_ms = eg_wall_ms();
            hi.stall_ms = ho.stall_ms;
            hi.unhealthy_failures = ho.unhealthy_failures;
            json_t *doc = NULL;
            bool healthy = worker_health_evaluate(&hi, &doc);
            json_object_set_new(*out, "healthy", json_boolean(healthy));
            if (doc)
                json_object_set_new(*out, "health", doc);
        }
    }
    queue_status_clear(&st);
    return *out ? 0 : EG_ENOMEM;
}

static int s_queue_list_jobs(void *self, const json_t *a, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PRELUDE;
    queue_list_filter f;
    memset(&f, 0, sizeof f);
    f.state = arg_str(a, "status") ? queue_state_parse(arg_str(a, "status")) : -1;
    f.ns = CALL_NS;
    json_t *limit = json_object_get(a, "limit");
    f.limit = json_is_integer(limit) ? (size_t)json_integer_value(limit) : 50;
    queue_job *jobs = NULL;
    size_t n = 0;
    int rc = queue_list(b->d.queue, &f, &jobs, &n, NULL, err);
    if (rc)
        return rc;
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *payload = jobs[i].payload ? json_loads(jobs[i].payload, 0, NULL) : NULL;
        json_t *j = json_pack("{s:s, s:s, s:s?, s:s?, s:i, s:s?, s:I}", "id", jobs[i].id, "status",
                              queue_state_name(jobs[i].state), "entityId", jobs[i].entity, "model", jobs[i].model,
                              "attempts", jobs[i].attempts, "lastError", jobs[i].last_error, "createdAt",
                              (json_int_t)jobs[i].created_at);
        if (j && json_is_string(json_object_get(payload, "name")))
            json_object_set(j, "entityName", json_object_get(payload, "name"));
        json_decref(payload);
        json_array_append_new(arr, j);
    }
    queue_jobs_free(jobs, n);
    *out = json_pack("{s:o}", "jobs", arr);
    return *out ? 0 : EG_ENOMEM;
}

static int s_queue_retry_dead(void *self, const json_t *a, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    PRELUDE;
    const json_t *ids = json_object_get(a, "jobIds");
    size_t n = json_array_size(ids);
    const char **v = n ? eg_calloc(n, sizeof *v) : NULL;
    if (n && !v)
        return eg_error_oom(err);
    for (size_t i = 0; i < n; i++)
        v[i] = json_string_value(json_array_get(ids, i));
    int64_t count = 0;
    int rc = queue_retry_dead_ns(b->d.queue, ids ? v : NULL, n, NULL, CALL_NS, &count, err);
    eg_free(v);
    if (rc)
        return rc;
    if (count > 0 && b->d.workers)
        worker_manager_notify(b->d.workers);
    *out = json_pack("{s:I}", "retried", (json_int_t)count);
    return *out ? 0 : EG_ENOMEM;
}

int mcp_backend_graph_new(mcp_backend *out, const mcp_graph_deps *deps, eg_error *err)
{
    memset(out, 0, sizeof *out);
    if (!deps || !deps->graph)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "graph backend needs a graph store");
    gb *b = eg_calloc(1, sizeof *b);
    if (!b)
        return eg_error_oom(err);
    b->d = *deps;
    pthread_mutex_init(&b->emu, NULL);
    out->self = b;
    out->create_entities = s_create_entities;
    out->create_relations = s_create_relations;
    out->add_observations = s_add_observations;
    out->delete_entities = s_delete_entities;
    out->delete_observations = s_delete_observations;
    out->delete_relations = s_delete_relations;
    out->get_relation = s_get_relation;
    out->update_relation = s_update_relation;
    out->read_graph = s_read_graph;
    out->search_nodes = s_search_nodes;
    out->open_nodes = s_open_nodes;
    out->semantic_search = s_semantic_search;
    out->get_entity_embedding = s_get_entity_embedding;
    out->get_entity_history = s_get_entity_history;
    out->get_relation_history = s_get_relation_history;
    out->get_graph_at_time = s_get_graph_at_time;
    out->get_decayed_graph = s_get_decayed_graph;
    out->force_generate_embedding = s_force_generate_embedding;
    out->debug_embedding_config = s_debug_embedding_config;
    out->diagnose_vector_search = s_diagnose_vector_search;
    out->hybrid_search = s_hybrid_search;
    if (deps->queue) {
        out->queue_status = s_queue_status;
        out->queue_list_jobs = s_queue_list_jobs;
        out->queue_retry_dead = s_queue_retry_dead;
    }
    return 0;
}

void mcp_backend_graph_free(mcp_backend *be)
{
    if (!be || !be->self)
        return;
    gb *b = be->self;
    embed_provider_free(b->prov);
    pthread_mutex_destroy(&b->emu);
    eg_free(b);
    be->self = NULL;
}
