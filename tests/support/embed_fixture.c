/*
 * embed_fixture.c - see embed_fixture.h.
 */
#include "support/embed_fixture.h"

#include "bolt/packstream.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "embed/provider_impl.h"
#include "graph/graph.h"
#include "queue/neo4j_store.h"
#include "schema/schema.h"
#include "support/testenv.h"
#include "worker/neo4j_sink.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const topics[] = {
    "drinks espresso coffee every morning", "plays chess in the park on weekends",
    "maintains the postgres database cluster", "grows tomatoes and basil in the garden",
    "writes rust code for embedded devices", "runs marathons and trains daily",
    "reads science fiction novels at night", "plays jazz piano in a quartet",
};

int efx_open(efx *f, const char *tag, const char *model, const queue_opts *qo, size_t max_conns)
{
    memset(f, 0, sizeof *f);
    bolt_config cfg;
    int rc = eg_testenv_neo4j(&cfg);
    if (rc)
        return rc;
    return efx_open_cfg(f, &cfg, tag, model, qo, max_conns);
}

int efx_open_cfg(efx *f, const bolt_config *cfgp, const char *tag, const char *model, const queue_opts *qo,
                 size_t max_conns)
{
    memset(f, 0, sizeof *f);
    bolt_config cfg = *cfgp;
    bolt_pool_opts po = BOLT_POOL_OPTS_INIT;
    po.max_size = max_conns;
    eg_error err = {0};
    graph_opts go;
    graph_store *g = NULL;
    if (graph_opts_from_env(&go, &err) || bolt_pool_new(&f->pool, &cfg, &po, &err) ||
        bolt_pool_verify(f->pool, &err) || queue_schema_register(&err) ||
        graph_store_new(&g, f->pool, NULL, &go, &err) || graph_schema_apply(g, 120000, &err)) {
        fprintf(stderr, "FAIL: Neo4j fixture: %s %s\n", err.message, err.neo4j_code);
        graph_store_free(g);
        return 1;
    }
    graph_store_free(g);
    char hex[13];
    eg_rand_hex(hex, 6);
    snprintf(f->ns, sizeof f->ns, "t_%.20s_%s", tag, hex);
    snprintf(f->queue, sizeof f->queue, "t_%.20s_%s", tag, hex);
    snprintf(f->model, sizeof f->model, "%s", model);
    snprintf(f->index, sizeof f->index, "%s", go.vector_index);
    snprintf(f->obs_index, sizeof f->obs_index, "%s", go.obs_vector_index);
    if (qo) {
        f->qo = *qo;
    } else {
        queue_opts d = QUEUE_OPTS_INIT;
        d.backoff_base_ms = 100;
        d.backoff_cap_ms = 1000;
        f->qo = d;
    }
    snprintf(f->qo.name, sizeof f->qo.name, "%s", f->queue);
    if (queue_neo4j_new(&f->store, f->pool, &f->qo, &err)) {
        fprintf(stderr, "FAIL: queue store: %s\n", err.message);
        return 1;
    }
    worker_sink *s = NULL;
    if (worker_neo4j_sink_new(&s, f->pool, go.database, go.vector_index, &err) ||
        s->vt->index_dims(s, &f->index_dims, &err)) {
        fprintf(stderr, "FAIL: index dims: %s\n", err.message);
        worker_sink_free(s);
        return 1;
    }
    worker_sink_free(s);
    if (f->index_dims <= 0) {
        fprintf(stderr, "FAIL: vector index %s missing\n", f->index);
        return 1;
    }
    return 0;
}

static int del_fn(bolt_conn *c, void *payload, eg_error *err)
{
    efx *f = payload;
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "ns", f->ns);
    bolt_params_str(p, "q", f->queue);
    int rc = bolt_conn_exec(c, "MATCH (e:Entity {namespace: $ns}) DETACH DELETE e", p, NULL, NULL, err);
    if (rc == 0) /* observation records (live or closed) outlive their entity */
        rc = bolt_conn_exec(c, "MATCH (o:ObservationRecord {namespace: $ns}) DETACH DELETE o", p, NULL, NULL, err);
    if (rc == 0)
        rc = bolt_conn_exec(c, "MATCH (j:EmbedJob) WHERE j.queue = $q DETACH DELETE j", p, NULL, NULL, err);
    if (rc == 0)
        rc = bolt_conn_exec(c, "MATCH (q:EmbedQueue {name: $q}) DETACH DELETE q", p, NULL, NULL, err);
    bolt_params_free(p);
    return rc;
}

void efx_close(efx *f)
{
    if (f->pool) {
        eg_error err = {0};
        if (f->ns[0] && bolt_pool_execute_write(f->pool, NULL, NULL, del_fn, f, &err))
            fprintf(stderr, "cleanup failed: %s\n", err.message);
    }
    queue_store_free(f->store);
    bolt_pool_free(f->pool);
    memset(f, 0, sizeof *f);
}

typedef struct create_work {
    efx *f;
    int from, to;
    const char *const *special;
    int nspecial;
    int upd;          /* >= 0: update this entity with upd_obs */
    const char *upd_obs;
} create_work;

static void ent_obs(const create_work *w, int i, const char **obs)
{
    *obs = i < w->nspecial && w->special && w->special[i] ? w->special[i] : topics[i % 8];
}

static int create_fn(bolt_conn *c, void *payload, eg_error *err)
{
    create_work *w = payload;
    efx *f = w->f;
    int n = w->upd >= 0 ? 1 : w->to - w->from;
    char (*names)[32] = eg_calloc((size_t)n, sizeof *names);
    char (*ids)[96] = eg_calloc((size_t)n, sizeof *ids);
    char (*hashes)[65] = eg_calloc((size_t)n, sizeof *hashes);
    const char **obs = eg_calloc((size_t)n, sizeof *obs);
    queue_enqueue_req *reqs = eg_calloc((size_t)n, sizeof *reqs);
    queue_enqueue_result *res = eg_calloc((size_t)n, sizeof *res);
    bolt_params *p = bolt_params_new();
    bolt_ps_writer *pw = bolt_params_add(p, "rows");
    bolt_ps_list_begin(pw, (size_t)n);
    int rc = 0;
    for (int k = 0; k < n; k++) {
        int i = w->upd >= 0 ? w->upd : w->from + k;
        snprintf(names[k], sizeof names[0], "ent%d", i);
        snprintf(ids[k], sizeof ids[0], "%s-id-%d", f->ns, i);
        if (w->upd >= 0)
            obs[k] = w->upd_obs;
        else
            ent_obs(w, i, &obs[k]);
        char *text = NULL;
        if ((rc = graph_embedding_text(names[k], "thing", &obs[k], 1, &text, hashes[k], err)))
            break;
        eg_free(text);
        bolt_ps_map_begin(pw, 4);
        bolt_ps_str(pw, "id");
        bolt_ps_str(pw, ids[k]);
        bolt_ps_str(pw, "name");
        bolt_ps_str(pw, names[k]);
        bolt_ps_str(pw, "obs");
        bolt_ps_str_list(pw, &obs[k], 1);
        bolt_ps_str(pw, "hash");
        bolt_ps_str(pw, hashes[k]);
        reqs[k] = (queue_enqueue_req){.ns = f->ns, .entity = ids[k], .version = hashes[k], .model = f->model};
    }
    bolt_params_str(p, "ns", f->ns);
    if (rc == 0)
        rc = bolt_conn_exec(c,
                            "UNWIND $rows AS r "
                            "MERGE (e:Entity {namespace: $ns, name: r.name}) "
                            "ON CREATE SET e.id = r.id, e.entityType = 'thing', e.version = 0, "
                            "  e.createdAt = timestamp() "
                            "SET e.observations = r.obs, e.contentHash = r.hash, e.version = e.version + 1, "
                            "  e.updatedAt = timestamp(), e.validFrom = timestamp()",
                            p, NULL, NULL, err);
    if (rc == 0) {
        /* The outbox: the jobs commit with the entities. */
        queue_tx qtx = QUEUE_TX_BOLT(c);
        rc = queue_enqueue(f->store, &qtx, reqs, (size_t)n, res, err);
    }
    bolt_params_free(p);
    eg_free(names);
    eg_free(ids);
    eg_free(hashes);
    eg_free(obs);
    eg_free(reqs);
    eg_free(res);
    return rc;
}

int efx_create_range(efx *f, int from, int to, const char *const *special, int nspecial)
{
    eg_error err = {0};
    for (int a = from; a < to; a += 500) {
        create_work w = {f, a, a + 500 < to ? a + 500 : to, special, nspecial, -1, NULL};
        int rc = bolt_pool_execute_write(f->pool, NULL, NULL, create_fn, &w, &err);
        if (rc) {
            fprintf(stderr, "create entities failed: %s\n", err.message);
            return rc;
        }
    }
    return 0;
}

int efx_update(efx *f, int i, const char *obs)
{
    eg_error err = {0};
    create_work w = {f, 0, 0, NULL, 0, i, obs};
    int rc = bolt_pool_execute_write(f->pool, NULL, NULL, create_fn, &w, &err);
    if (rc)
        fprintf(stderr, "update entity failed: %s\n", err.message);
    return rc;
}

typedef struct check_work {
    efx *f;
    efx_report *r;
    const char *cypher; /* one of the two counts below */
} check_work;

/* The vector counts of the namespace's entities or live observation records:
 * the same columns for both labels. */
#define VECTOR_COUNTS(label)                                                                                   \
    "MATCH (x:" label " {namespace: $ns}) RETURN count(x) AS n, "                                             \
    "count(CASE WHEN x.embedding IS NOT NULL AND x.embeddingHash = x.contentHash AND "                        \
    "  x.embeddingModel = $model AND x.embeddingDimensions = $dims AND size(x.embedding) = $dims "            \
    "  THEN 1 END) AS cur, "                                                                                   \
    "count(CASE WHEN x.embedding IS NOT NULL AND x.embeddingHash <> x.contentHash THEN 1 END) AS stale, "     \
    "count(CASE WHEN x.embedding IS NULL THEN 1 END) AS none"

static int check_fn(bolt_conn *c, void *payload, eg_error *err)
{
    check_work *w = payload;
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "ns", w->f->ns);
    bolt_params_str(p, "model", w->f->model);
    bolt_params_int(p, "dims", w->f->index_dims);
    json_t *rows = NULL;
    int rc = bolt_conn_query_json(c, w->cypher, p, NULL, &rows, err);
    bolt_params_free(p);
    if (rc == 0) {
        json_t *row = json_array_get(rows, 0);
        w->r->entities = json_integer_value(json_object_get(row, "n"));
        w->r->with_current_vector = json_integer_value(json_object_get(row, "cur"));
        w->r->stale_vector = json_integer_value(json_object_get(row, "stale"));
        w->r->no_vector = json_integer_value(json_object_get(row, "none"));
    }
    json_decref(rows);
    return rc;
}

int efx_obs_check(efx *f, efx_report *out)
{
    memset(out, 0, sizeof *out);
    eg_error err = {0};
    check_work w = {f, out, VECTOR_COUNTS("Observation")};
    int rc = bolt_pool_execute_read(f->pool, NULL, NULL, check_fn, &w, &err);
    if (rc)
        fprintf(stderr, "observation check failed: %s\n", err.message);
    return rc;
}

int efx_check(efx *f, efx_report *out)
{
    memset(out, 0, sizeof *out);
    eg_error err = {0};
    check_work w = {f, out, VECTOR_COUNTS("Entity")};
    int rc = bolt_pool_execute_read(f->pool, NULL, NULL, check_fn, &w, &err);
    if (rc)
        fprintf(stderr, "check failed: %s\n", err.message);
    return rc;
}

typedef struct search_work {
    efx *f;
    const float *vec;
    char *name;
    size_t cap;
    bool obs; /* the observation index: name_out gets the record's text */
} search_work;

static int search_fn(bolt_conn *c, void *payload, eg_error *err)
{
    search_work *w = payload;
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "ns", w->f->ns);
    bolt_params_str(p, "index", w->obs ? w->f->obs_index : w->f->index);
    bolt_params_float32_list(p, "vec", w->vec, (size_t)w->f->index_dims);
    json_t *rows = NULL;
    int rc = bolt_conn_query_json(c,
                                  "CALL db.index.vector.queryNodes($index, 500, $vec) YIELD node, score "
                                  "WHERE node.namespace = $ns "
                                  "RETURN coalesce(node.name, node.text) AS name, score "
                                  "ORDER BY score DESC LIMIT 1",
                                  p, NULL, &rows, err);
    bolt_params_free(p);
    w->name[0] = '\0';
    if (rc == 0 && json_array_size(rows) > 0)
        snprintf(w->name, w->cap, "%s", json_string_value(json_object_get(json_array_get(rows, 0), "name")));
    json_decref(rows);
    return rc;
}

static int search_top(efx *f, const char *text, char *name_out, size_t cap, bool obs);

int efx_search_top(efx *f, const char *text, char *name_out, size_t cap)
{
    return search_top(f, text, name_out, cap, false);
}

int efx_obs_search_top(efx *f, const char *text, char *text_out, size_t cap)
{
    return search_top(f, text, text_out, cap, true);
}

static int search_top(efx *f, const char *text, char *name_out, size_t cap, bool obs)
{
    float *v = eg_malloc((size_t)f->index_dims * sizeof *v);
    embed_offline_vector(text, f->index_dims, v);
    eg_error err = {0};
    search_work w = {f, v, name_out, cap, obs};
    int rc = 0;
    /* The vector index is refreshed shortly after commit: retry briefly. */
    for (int i = 0; i < 50; i++) {
        rc = bolt_pool_execute_read(f->pool, NULL, NULL, search_fn, &w, &err);
        if (rc || name_out[0])
            break;
        eg_sleep_ms(100);
    }
    if (rc)
        fprintf(stderr, "search failed: %s\n", err.message);
    eg_free(v);
    return rc;
}

typedef struct count_work {
    efx *f;
    int64_t *counts;
} count_work;

static int counts_fn(bolt_conn *c, void *payload, eg_error *err)
{
    count_work *w = payload;
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "q", w->f->queue);
    json_t *rows = NULL;
    int rc = bolt_conn_query_json(c, "MATCH (j:EmbedJob) WHERE j.queue = $q RETURN j.state AS s, count(*) AS n",
                                  p, NULL, &rows, err);
    bolt_params_free(p);
    for (int i = 0; i < QUEUE_STATE_COUNT; i++)
        w->counts[i] = 0;
    for (size_t r = 0; rc == 0 && r < json_array_size(rows); r++) {
        json_t *row = json_array_get(rows, r);
        int s = queue_state_parse(json_string_value(json_object_get(row, "s")));
        if (s >= 0)
            w->counts[s] = json_integer_value(json_object_get(row, "n"));
    }
    json_decref(rows);
    return rc;
}

int efx_counts(efx *f, int64_t counts[QUEUE_STATE_COUNT])
{
    eg_error err = {0};
    count_work w = {f, counts};
    int rc = bolt_pool_execute_read(f->pool, NULL, NULL, counts_fn, &w, &err);
    if (rc)
        fprintf(stderr, "counts failed: %s\n", err.message);
    return rc;
}

void efx_child_env(const efx *f, const char *base_url)
{
    char dims[16];
    snprintf(dims, sizeof dims, "%d", f->index_dims);
    setenv("NEO4J_URI", getenv("ENGRAM_TEST_NEO4J_URI"), 1);
    setenv("NEO4J_USERNAME", getenv("ENGRAM_TEST_NEO4J_USER") ? getenv("ENGRAM_TEST_NEO4J_USER") : "neo4j", 1);
    setenv("NEO4J_PASSWORD", getenv("ENGRAM_TEST_NEO4J_PASSWORD") ? getenv("ENGRAM_TEST_NEO4J_PASSWORD") : "", 1);
    setenv("ENGRAM_EMBED_PROVIDER", "openai", 1);
    setenv("OPENAI_API_KEY", "sk-fake", 1);
    setenv("OPENAI_BASE_URL", base_url, 1);
    setenv("OPENAI_EMBEDDING_MODEL", "text-embedding-3-small", 1);
    setenv("ENGRAM_EMBED_DIMENSIONS", dims, 1);
    setenv("ENGRAM_QUEUE_NAME", f->queue, 1);
    setenv("ENGRAM_QUEUE_LEASE_MS", "3000", 1);
    setenv("ENGRAM_QUEUE_HEARTBEAT_MS", "1000", 1);
    setenv("ENGRAM_QUEUE_RECLAIM_MS", "500", 1);
    setenv("ENGRAM_QUEUE_BACKOFF_BASE_MS", "100", 1);
    setenv("ENGRAM_QUEUE_BACKOFF_CAP_MS", "1000", 1);
    setenv("ENGRAM_LOG_LEVEL", "debug", 1);
    unsetenv("MOCK_EMBEDDINGS");
}

void efx_child_log(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        dup2(fd, 2);
        dup2(fd, 1);
        close(fd);
    }
}

void efx_ids_add(efx_ids *l, const char *s, size_t len)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->v = eg_realloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = eg_strndup(s, len);
}

void efx_ids_free(efx_ids *l)
{
    for (size_t i = 0; i < l->n; i++)
        eg_free(l->v[i]);
    eg_free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_id(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void efx_ids_sort(efx_ids *l)
{
    if (l->n)
        qsort(l->v, l->n, sizeof *l->v, cmp_id);
}

bool efx_ids_has(const efx_ids *sorted, const char *id)
{
    return sorted->n && bsearch(&id, sorted->v, sorted->n, sizeof *sorted->v, cmp_id) != NULL;
}

size_t efx_ids_distinct(const efx_ids *sorted)
{
    size_t d = 0;
    for (size_t i = 0; i < sorted->n; i++)
        if (i == 0 || strcmp(sorted->v[i], sorted->v[i - 1]) != 0)
            d++;
    return d;
}

void efx_log_completions(const char *path, efx_ids *out)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return;
    char line[4096];
    while (fgets(line, sizeof line, fp)) {
        char *p = strstr(line, "job completed job=");
        if (!p)
            continue;
        p += strlen("job completed job=");
        efx_ids_add(out, p, strcspn(p, " \n\""));
    }
    fclose(fp);
}
