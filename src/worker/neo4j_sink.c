/*
 * neo4j_sink.c - load texts and write vectors on Neo4j (neo4j_sink.h).
 */
#include "worker/neo4j_sink.h"

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

/* Every vector index; index_fn keeps the configured entity index by name:
 * the observation records' index is a second VECTOR index, which has the
 * same dimensions by construction (graph migration 10, and the model switch
 * resizes both), but must never be the one read by accident. */
static const char Q_INDEX[] = "SHOW INDEXES YIELD name, type, options WHERE type = 'VECTOR' "
                              "RETURN name, options";

typedef struct load_work {
    worker_item *items;
    size_t n;
    int dims;
} load_work;

/* Decide what a job needs from what the graph holds for its entity. */
static void fill_item(worker_item *it, graph_embed_input *in, int dims)
{
    const queue_job *j = it->job;
    if (!in->found) {
        it->state = WORKER_LOAD_GONE;
        return;
    }
    snprintf(it->hash, sizeof it->hash, "%s", in->content_hash);
    char jh[65];
    worker_job_hash(j, jh);
    if (!in->content_hash[0] || strcmp(in->content_hash, jh) != 0) {
        it->state = WORKER_LOAD_STALE;
        return;
    }
    if (!worker_job_forced(j) && in->has_vector && strcmp(in->embedding_hash, in->content_hash) == 0 &&
        strcmp(in->embedding_model, j->model) == 0 && in->embedding_dims == dims) {
        it->state = WORKER_LOAD_CURRENT;
        return;
    }
    it->text = in->text; /* ownership moves to the item */
    in->text = NULL;
    it->state = WORKER_LOAD_EMBED;
}

/* graph_load_embed_inputs_tx: the graph's one batched reader, one round trip. */
static int load_fn(bolt_conn *c, void *payload, eg_error *err)
{
    load_work *w = payload;
    worker_items_clear(w->items, w->n); /* the unit of work may run again */
    graph_embed_ref *refs = eg_calloc(w->n ? w->n : 1, sizeof *refs);
    graph_embed_input *in = eg_calloc(w->n ? w->n : 1, sizeof *in);
    int rc = refs && in ? 0 : eg_error_oom(err);
    for (size_t i = 0; rc == 0 && i < w->n; i++)
        refs[i] = (graph_embed_ref){w->items[i].job->ns, w->items[i].job->entity};
    if (rc == 0)
        rc = graph_load_embed_inputs_tx(c, refs, w->n, in, err);
    for (size_t i = 0; rc == 0 && i < w->n; i++)
        fill_item(&w->items[i], &in[i], w->dims);
    for (size_t i = 0; in && i < w->n; i++)
        graph_embed_input_clear(&in[i]);
    eg_free(refs);
    eg_free(in);
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
    int rc = rows && st && hash ? 0 : eg_error_oom(err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        worker_job_hash(ws[i].job, hash[i]);
        rows[i] = (graph_embedding_row){.ns = ws[i].job->ns, .entity_id = ws[i].job->entity, .hash = hash[i],
                                        .model = ws[i].job->model, .vec = ws[i].vec, .dims = (size_t)ws[i].dims,
                                        .tokens = ws[i].tokens, .truncated = ws[i].truncated};
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
        const char *name = json_string_value(json_object_get(row, "name"));
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
        return eg_error_oom(err);
    k->base.vt = &neo4j_vt;
    k->base.impl = k;
    k->pool = pool;
    k->database = database ? eg_strdup(database) : NULL;
    k->index = eg_strdup(vector_index ? vector_index : "entity_embeddings");
    if ((database && !k->database) || !k->index) {
        n_free(&k->base);
        return eg_error_oom(err);
    }
    *out = &k->base;
    return 0;
}
