/*
 * neo4j_sink.c - load texts and write vectors on Neo4j (neo4j_sink.h).
 */
#include "worker/neo4j_sink.h"

#include "bolt/packstream.h"
#include "core/alloc.h"
#include "graph/graph.h"

#include <stdio.h>
#include <string.h>

typedef struct neo4j_sink {
    worker_sink base;
    bolt_pool *pool;
    char *database;
    char *index;
} neo4j_sink;

static const char Q_LOAD[] =
    "UNWIND $rows AS r "
    "OPTIONAL MATCH (e:Entity {id: r.id}) WHERE e.namespace = r.ns "
    "RETURN r.i AS i, e IS NOT NULL AS found, e.name AS name, e.entityType AS entityType, "
    "e.observations AS observations, e.contentHash AS hash, e.embeddingHash AS embHash, "
    "e.embeddingModel AS embModel, e.embeddingDimensions AS embDims, e.embedding IS NOT NULL AS hasVec";

static const char Q_INDEX[] = "SHOW INDEXES YIELD name, type, options WHERE type = 'VECTOR' "
                              "RETURN name, options";

typedef struct load_work {
    worker_item *items;
    size_t n;
    int dims;
} load_work;

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static int fill_item(worker_item *it, const json_t *row, int dims, eg_error *err)
{
    const queue_job *j = it->job;
    if (!json_is_true(json_object_get(row, "found"))) {
        it->state = WORKER_LOAD_GONE;
        return 0;
    }
    const char *hash = jstr(row, "hash");
    snprintf(it->hash, sizeof it->hash, "%s", hash ? hash : "");
    char jh[65];
    worker_job_hash(j, jh);
    if (!hash || strcmp(hash, jh) != 0) {
        it->state = WORKER_LOAD_STALE;
        return 0;
    }
    const char *eh = jstr(row, "embHash"), *em = jstr(row, "embModel");
    json_t *ed = json_object_get(row, "embDims");
    if (!worker_job_forced(j) && json_is_true(json_object_get(row, "hasVec")) && eh && strcmp(eh, hash) == 0 && em &&
        strcmp(em, j->model) == 0 && json_is_integer(ed) && json_integer_value(ed) == dims) {
        it->state = WORKER_LOAD_CURRENT;
        return 0;
    }
    /* Observations: a native list, or memento's JSON-encoded string. */
    json_t *obs = json_object_get(row, "observations");
    json_t *dec = NULL;
    if (json_is_string(obs)) {
        dec = json_loads(json_string_value(obs), 0, NULL);
        obs = dec;
    }
    size_t nobs = json_is_array(obs) ? json_array_size(obs) : 0;
    const char **v = eg_calloc(nobs ? nobs : 1, sizeof *v);
    if (!v) {
        json_decref(dec);
        return eg_error_set(err, EG_ENOMEM, EG_CLASS_CLIENT, "out of memory");
    }
    for (size_t k = 0; k < nobs; k++) {
        const char *s = json_string_value(json_array_get(obs, k));
        v[k] = s ? s : "";
    }
    const char *name = jstr(row, "name"), *type = jstr(row, "entityType");
    char h[65];
    int rc = graph_embedding_text(name ? name : "", type ? type : "", v, nobs, &it->text, h, err);
    eg_free(v);
    json_decref(dec);
    if (rc == 0)
        it->state = WORKER_LOAD_EMBED;
    return rc;
}

static int load_fn(bolt_conn *c, void *payload, eg_error *err)
{
    load_work *w = payload;
    worker_items_clear(w->items, w->n); /* the unit of work may run again */
    bolt_params *p = bolt_params_new();
    if (!p)
        return eg_error_set(err, EG_ENOMEM, EG_CLASS_CLIENT, "out of memory");
    bolt_ps_writer *pw = bolt_params_add(p, "rows");
    if (pw) {
        bolt_ps_list_begin(pw, w->n);
        for (size_t i = 0; i < w->n; i++) {
            bolt_ps_map_begin(pw, 3);
            bolt_ps_str(pw, "i");
            bolt_ps_int(pw, (int64_t)i);
            bolt_ps_str(pw, "id");
            bolt_ps_str(pw, w->items[i].job->entity);
            bolt_ps_str(pw, "ns");
            bolt_ps_str(pw, w->items[i].job->ns);
        }
    }
    if (bolt_params_error(p)) {
        bolt_params_free(p);
        return eg_error_set(err, EG_ENOMEM, EG_CLASS_CLIENT, "encoding parameters failed");
    }
    json_t *rows = NULL;
    int rc = bolt_conn_query_json(c, Q_LOAD, p, NULL, &rows, err);
    bolt_params_free(p);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < w->n; i++)
        w->items[i].state = WORKER_LOAD_GONE;
    for (size_t r = 0; r < json_array_size(rows) && rc == 0; r++) {
        json_t *row = json_array_get(rows, r);
        json_int_t i = json_integer_value(json_object_get(row, "i"));
        if (i < 0 || (size_t)i >= w->n)
            continue;
        rc = fill_item(&w->items[i], row, w->dims, err);
    }
    json_decref(rows);
    return rc;
}

static int n_load(worker_sink *s, worker_item *items, size_t n, int dims, eg_error *err)
{
    neo4j_sink *k = (neo4j_sink *)s;
    load_work w = {items, n, dims};
    bolt_tx_opts tx = BOLT_TX_OPTS_INIT;
    tx.database = k->database;
    tx.read_only = true;
    int rc = bolt_pool_execute_read(k->pool, &tx, NULL, load_fn, &w, err);
    if (rc < 0)
        worker_items_clear(items, n);
    return rc;
}

/* The graph's one fenced writer (graph_write_embeddings_tx), one round trip. */
static int n_write(worker_sink *s, queue_tx *tx, const worker_write *ws, size_t n, bool *superseded_out,
                   eg_error *err)
{
    (void)s;
    if (!tx || !tx->conn)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "neo4j sink needs a Neo4j transaction");
    graph_embedding_row *rows = eg_calloc(n ? n : 1, sizeof *rows);
    graph_write_status *st = eg_calloc(n ? n : 1, sizeof *st);
    char (*hash)[65] = eg_calloc(n ? n : 1, sizeof *hash);
    int rc = rows && st && hash ? 0 : eg_error_set(err, EG_ENOMEM, EG_CLASS_CLIENT, "out of memory");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        worker_job_hash(ws[i].job, hash[i]);
        rows[i] = (graph_embedding_row){.ns = ws[i].job->ns, .entity_id = ws[i].job->entity, .hash = hash[i],
                                        .model = ws[i].job->model, .vec = ws[i].vec, .dims = (size_t)ws[i].dims};
    }
    if (rc == 0)
        rc = graph_write_embeddings_tx(tx->conn, rows, n, st, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        superseded_out[i] = st[i] != GRAPH_EMBED_WRITTEN;
    eg_free(rows);
    eg_free(st);
    eg_free(hash);
    return rc;
}

typedef struct index_work {
    const char *name;
    int dims;
} index_work;

static int index_fn(bolt_conn *c, void *payload, eg_error *err)
{
    index_work *w = payload;
    w->dims = 0;
    json_t *rows = NULL;
    int rc = bolt_conn_query_json(c, Q_INDEX, NULL, NULL, &rows, err);
    if (rc < 0)
        return rc;
    for (size_t r = 0; r < json_array_size(rows); r++) {
        json_t *row = json_array_get(rows, r);
        const char *name = jstr(row, "name");
        if (!name || strcmp(name, w->name) != 0)
            continue;
        json_t *cfg = json_object_get(json_object_get(row, "options"), "indexConfig");
        json_t *d = json_object_get(cfg, "vector.dimensions");
        if (json_is_integer(d))
            w->dims = (int)json_integer_value(d);
        else if (json_is_real(d))
            w->dims = (int)json_real_value(d);
    }
    json_decref(rows);
    return 0;
}

static int n_index_dims(worker_sink *s, int *dims_out, eg_error *err)
{
    neo4j_sink *k = (neo4j_sink *)s;
    index_work w = {k->index, 0};
    bolt_tx_opts tx = BOLT_TX_OPTS_INIT;
    tx.database = k->database;
    tx.read_only = true;
    int rc = bolt_pool_execute_read(k->pool, &tx, NULL, index_fn, &w, err);
    *dims_out = rc == 0 ? w.dims : 0;
    return rc;
}

static void n_free(worker_sink *s)
{
    neo4j_sink *k = (neo4j_sink *)s;
    eg_free(k->database);
    eg_free(k->index);
    eg_free(k);
}

static const worker_sink_vtable neo4j_vt = {n_load, n_write, n_index_dims, n_free};

int worker_neo4j_sink_new(worker_sink **out, bolt_pool *pool, const char *database, const char *vector_index,
                          eg_error *err)
{
    *out = NULL;
    neo4j_sink *k = eg_calloc(1, sizeof *k);
    if (!k)
        return eg_error_set(err, EG_ENOMEM, EG_CLASS_CLIENT, "out of memory");
    k->base.vt = &neo4j_vt;
    k->base.impl = k;
    k->pool = pool;
    k->database = database ? eg_strdup(database) : NULL;
    k->index = eg_strdup(vector_index ? vector_index : "entity_embeddings");
    if ((database && !k->database) || !k->index) {
        n_free(&k->base);
        return eg_error_set(err, EG_ENOMEM, EG_CLASS_CLIENT, "out of memory");
    }
    *out = &k->base;
    return 0;
}
