/*
 * vector_model.c - which model a namespace's vectors come from, and the
 * switch from one model to another.
 *
 * Vectors of two models are not comparable: a query embedded by one model
 * against vectors of another returns confident nonsense.  So each
 * namespace's model is recorded on one (:EngramVectorModel {namespace})
 * node (unique), claimed by the first engram that starts on it (from the
 * vectors already stored, if any; otherwise from its configuration).  Per
 * namespace, because a vector search is always filtered to one namespace:
 * what must never mix is the vectors a query can be compared with.  Three
 * guards use the record:
 *   - a server configured for another model says so at start, starts no
 *     embedding workers and embeds no query (keyword search only);
 *   - the vector search statement only runs when the record names the
 *     query's model, so a server that outlived a switch finds nothing
 *     rather than nonsense;
 *   - the fenced vector writer (embedding.c) writes a vector only when the
 *     record names its model; other jobs end superseded.  So no worker, of
 *     whatever configuration, can put a second model into a namespace.
 *   doctor reports a mismatch as a problem.
 *
 * The switch (`engram reembed --switch-model`): mark the record (searches
 * of the namespace stop asking the index), remove the namespace's old
 * vectors (entities' and observation records') in bounded batches,
 * recreate the two vector indexes if the dimension changes, record the new
 * model; the command then re-embeds every entity and live record through
 * the durable queue.  Keyword search keeps working all along; semantic search
 * returns only entities already re-embedded, never a vector of the old
 * model.  (Re-embedding into a staging property first and switching after
 * would keep semantic search whole during the switch; not done yet.)
 */
#include "graph/graph_int.h"

#include "core/alloc.h"

#include <stdio.h>
#include <string.h>

static const char Q_CLAIM[] =
    "OPTIONAL MATCH (e:Entity {namespace: $ns}) " GRAPH_NS_SEEK("e") " AND e.embeddingModel IS NOT NULL "
    "WITH e.embeddingModel AS em, e.embeddingDimensions AS ed LIMIT 1 "
    "MERGE (m:EngramVectorModel {namespace: $ns}) "
    "ON CREATE SET m.model = coalesce(em, $model), m.dimensions = coalesce(ed, $dims), "
    "  m.createdAt = timestamp() "
    "RETURN m.model AS model, m.dimensions AS dims, m.switchingTo AS switchingTo";

/* Read-only (doctor): the record, else the stored vectors' model, else nothing. */
static const char Q_PEEK[] =
    "OPTIONAL MATCH (e:Entity {namespace: $ns}) " GRAPH_NS_SEEK("e") " AND e.embeddingModel IS NOT NULL "
    "WITH e.embeddingModel AS em, e.embeddingDimensions AS ed LIMIT 1 "
    "OPTIONAL MATCH (m:EngramVectorModel {namespace: $ns}) "
    "RETURN coalesce(m.model, em) AS model, coalesce(m.dimensions, ed) AS dims, m.switchingTo AS switchingTo";

/* Run one of this file's statements with the store's namespace, model and
 * dimension (every statement here takes the same parameters). */
static int run_ns(bolt_conn *c, const graph_store *g, const char *cypher, json_t **rows, eg_error *err)
{
    *rows = NULL;
    bolt_params *p = graph__params(err);
    if (!p)
        return EG_ENOMEM;
    bolt_params_str(p, "ns", g->opts.ns);
    bolt_params_str(p, "model", g->opts.embedding_model);
    bolt_params_int(p, "dims", (int64_t)g->opts.vector_dimensions);
    bolt_params_int(p, "lim", 2000);
    int rc = graph__params_check(p, err);
    if (rc == 0)
        rc = graph__q(c, cypher, p, rows, err);
    bolt_params_free(p);
    return rc;
}

typedef struct claim_work {
    graph_store *g;
    graph_vector_model *out;
    bool claim;
} claim_work;

static int claim_fn(bolt_conn *c, void *payload, eg_error *err)
{
    claim_work *w = payload;
    json_t *rows = NULL;
    int rc = run_ns(c, w->g, w->claim ? Q_CLAIM : Q_PEEK, &rows, err);
    if (rc == 0) {
        json_t *r = json_array_get(rows, 0);
        const char *m = graph__jstr(r, "model"), *sw = graph__jstr(r, "switchingTo");
        snprintf(w->out->model, sizeof w->out->model, "%s", m ? m : "");
        snprintf(w->out->switching_to, sizeof w->out->switching_to, "%s", sw ? sw : "");
        w->out->dims = graph__jint(r, "dims", 0);
    }
    json_decref(rows);
    return rc;
}

int graph_vector_model_check(graph_store *g, bool claim, graph_vector_model *out, eg_error *err)
{
    memset(out, 0, sizeof *out);
    claim_work w = {g, out, claim};
    int rc = claim ? graph__write(g, claim_fn, &w, err) : graph__read(g, claim_fn, &w, err);
    if (rc)
        return rc;
    const char *want = g->opts.embedding_model;
    if (!out->model[0]) /* nothing recorded, nothing stored: any model may come */
        return 0;
    if (out->switching_to[0])
        return eg_error_set(err, EG_ECONFLICT, EG_CLASS_CLIENT,
                            "namespace %s is being switched to model %s; finish it with "
                            "`engram reembed --switch-model` (configured for %s)",
                            g->opts.ns, out->switching_to, out->switching_to);
    if (strcmp(out->model, want) != 0)
        return eg_error_set(err, EG_ECONFLICT, EG_CLASS_CLIENT,
                            "namespace %s holds vectors of model %s (%lld dimensions) but engram is "
                            "configured for %s (%zu dimensions); vectors of two models are never mixed: "
                            "run `engram reembed --switch-model` to re-embed everything with %s, or configure "
                            "%s again (ENGRAM_EMBED_PROVIDER, ENGRAM_LOCAL_MODEL, OPENAI_EMBEDDING_MODEL)",
                            g->opts.ns, out->model, (long long)out->dims, want,
                            g->opts.vector_dimensions, want, out->model);
    return 0;
}

/* ---- the switch ---- */

static const char Q_MARK[] =
    "MERGE (m:EngramVectorModel {namespace: $ns}) ON CREATE SET m.createdAt = timestamp() "
    "SET m.switchingTo = $model, m.switchStartedAt = timestamp()";
static const char Q_DROP_VECTORS[] =
    "MATCH (e:Entity {namespace: $ns}) " GRAPH_NS_SEEK("e") " AND e.embedding IS NOT NULL "
    "WITH e LIMIT $lim "
    "REMOVE e.embedding, e.embeddingModel, e.embeddingDimensions, e.embeddingHash, e.embeddingVersion, "
    "  e.embeddingUpdatedAt "
    "RETURN count(e) AS n";
/* The records' vectors too (live ones; a closed record has none), through
 * the (namespace, entityId) index. */
static const char Q_DROP_OBS_VECTORS[] =
    "MATCH (o:ObservationRecord {namespace: $ns}) WHERE o.entityId IS NOT NULL AND o.embedding IS NOT NULL "
    "WITH o LIMIT $lim "
    "REMOVE o.embedding, o.embeddingModel, o.embeddingDimensions, o.embeddingHash, o.embeddingUpdatedAt "
    "RETURN count(o) AS n";
static const char Q_DONE[] =
    "MATCH (m:EngramVectorModel {namespace: $ns}) "
    "SET m.model = $model, m.dimensions = $dims, m.switchedAt = timestamp() "
    "REMOVE m.switchingTo, m.switchStartedAt";

typedef struct switch_work {
    graph_store *g;
    const char *cypher;
    int64_t n;   /* Q_DROP_VECTORS: vectors removed by this batch */
} switch_work;

static int switch_fn(bolt_conn *c, void *payload, eg_error *err)
{
    switch_work *w = payload;
    json_t *rows = NULL;
    int rc = run_ns(c, w->g, w->cypher, &rows, err);
    w->n = rc == 0 ? graph__jint(json_array_get(rows, 0), "n", 0) : 0;
    json_decref(rows);
    return rc;
}

/* A schema statement (DROP/CREATE INDEX) in its own transaction. */
static int ddl_fn(bolt_conn *c, void *payload, eg_error *err) { return graph__x(c, payload, NULL, err); }

int graph_vector_model_switch(graph_store *g, graph_switch_progress_fn progress, void *ctx, eg_error *err)
{
    /* Marked first: from here on the search guard keeps every query of this
     * namespace off the index until the switch is done. */
    switch_work w = {g, Q_MARK, 0};
    int rc = graph__write(g, switch_fn, &w, err);
    if (rc)
        return rc;
    int64_t removed = 0;
    const char *drops[2] = {Q_DROP_VECTORS, Q_DROP_OBS_VECTORS};
    for (size_t k = 0; k < 2; k++) {
        w.cypher = drops[k];
        do {
            if ((rc = graph__write(g, switch_fn, &w, err)) != 0)
                return rc;
            removed += w.n;
            if (progress)
                progress(ctx, removed);
        } while (w.n > 0);
    }
    /* An index holds one dimension: a new one means a new index.  Both
     * vector indexes (entities, observation records) follow the one model. */
    json_t *rep = NULL;
    eg_error cerr;
    graph_schema_check(g, &rep, &cerr);
    const char *keys[2] = {"vectorIndex", "observationVectorIndex"};
    const char *names[2] = {g->opts.vector_index, g->opts.obs_vector_index};
    const int migration[2] = {4, 10}; /* graph_schema_statements: the CREATE of each */
    json_int_t have[2];
    for (size_t k = 0; k < 2; k++)
        have[k] = json_integer_value(json_object_get(json_object_get(rep, keys[k]), "dimensions"));
    json_decref(rep);
    for (size_t k = 0; k < 2; k++) {
        if (have[k] == (json_int_t)g->opts.vector_dimensions)
            continue;
        char drop[256];
        snprintf(drop, sizeof drop, "DROP INDEX %s IF EXISTS", names[k]); /* validated identifier */
        char **stmts = NULL;
        size_t n = 0;
        if ((rc = graph__write(g, ddl_fn, drop, err)) != 0 ||
            (rc = graph_schema_statements(&g->opts, migration[k], &stmts, &n, err)) != 0)
            return rc;
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = graph__write(g, ddl_fn, stmts[i], err);
        graph_strv_free(stmts, n);
        if (rc)
            return rc;
    }
    w.cypher = Q_DONE;
    return graph__write(g, switch_fn, &w, err);
}
