/*
 * export.c - a namespace's graph as JSON lines, streamed from one read
 * transaction (see graph.h, graph_export).
 *
 * Consistency: every statement runs in one explicit read transaction.
 * Neo4j's isolation is read committed, not a snapshot: writes committed
 * while the export runs may or may not be in it (a relation without an
 * entity created meanwhile, say), so the file is exact only for a quiet
 * namespace.
 * Memory: each statement streams (PULL of EXPORT_FETCH records at a time)
 * and each record becomes one line handed to the caller and freed: the
 * export holds one record at a time, whatever the size of the graph.  The
 * transaction is never retried: lines already written cannot be taken back,
 * so an error ends the export (the caller reports it).
 */
#include "graph/graph_int.h"

#include "bolt/packstream.h"
#include "core/alloc.h"

#include <string.h>

#define EXPORT_FETCH 500

/* Each statement returns one map per row, named x; ordered for diffable files. */
static const char Q_NOW[] = "RETURN timestamp() AS x";

static const char Q_ENTITIES_OFFICIAL[] =
    "MATCH (e:Entity {namespace: $ns}) " GRAPH_NS_SEEK("e") " "
    "RETURN e {.name, .entityType, .observations} AS x ORDER BY e.name";

static const char Q_RELATIONS_OFFICIAL[] =
    "MATCH (a:Entity {namespace: $ns})-[r:RELATES_TO]->(b:Entity) WHERE a.name IS NOT NULL "
    "RETURN {from: a.name, to: b.name, relationType: r.relationType} AS x "
    "ORDER BY a.name, b.name, r.relationType";

static const char Q_ENTITIES[] =
    "MATCH (e:Entity {namespace: $ns}) " GRAPH_NS_SEEK("e") " "
    "RETURN e {.id, .name, .entityType, .observations, .version, .createdAt, .updatedAt, .validFrom, "
    "  .changedBy, embedding: CASE WHEN $vectors THEN e.embedding END, "
    "  embeddingModel: CASE WHEN $vectors THEN e.embeddingModel END, "
    "  embeddingHash: CASE WHEN $vectors THEN e.embeddingHash END} AS x "
    "ORDER BY e.name";

static const char Q_ENTITY_VERSIONS[] =
    "MATCH (h:EntityVersion {namespace: $ns}) WHERE h.entityId IS NOT NULL " /* GRAPH_NS_SEEK's reason */
    /* the format keeps each version's list: rebuilt from the records */
    "RETURN h {.entityId, .name, .version, .entityType, observations: " GRAPH_VERSION_OBS("h") ", "
    "  .createdAt, .updatedAt, .validFrom, .validTo, .changedBy, .deleted} AS x "
    "ORDER BY h.entityId, h.version";

static const char Q_RELATIONS[] =
    "MATCH (a:Entity {namespace: $ns})-[r:RELATES_TO]->(b:Entity) WHERE a.name IS NOT NULL "
    "RETURN {from: a.name, to: b.name, relationType: r.relationType, id: r.id, strength: r.strength, "
    "  confidence: r.confidence, metadata: r.metadata, version: r.version, createdAt: r.createdAt, "
    "  updatedAt: r.updatedAt, validFrom: r.validFrom, changedBy: r.changedBy} AS x "
    "ORDER BY a.name, b.name, r.relationType";

static const char Q_RELATION_VERSIONS[] =
    "MATCH (h:RelationVersion {namespace: $ns}) WHERE h.relationId IS NOT NULL "
    "RETURN h {.relationId, .from, .to, .relationType, .version, .strength, .confidence, .metadata, "
    "  .createdAt, .updatedAt, .validFrom, .validTo, .changedBy, .deleted} AS x "
    "ORDER BY h.relationId, h.version";

/* memento stored observations as JSON text: the official format wants a list. */
static void observations_as_list(json_t *x)
{
    json_t *o = json_object_get(x, "observations");
    if (json_is_string(o)) {
        json_t *d = json_loads(json_string_value(o), 0, NULL);
        json_object_set_new(x, "observations", json_is_array(d) ? d : json_array());
        if (!json_is_array(d))
            json_decref(d);
    } else if (!json_is_array(o)) {
        json_object_set_new(x, "observations", json_array());
    }
}

/* Drop null members: a line carries what the record has. */
static void drop_nulls(json_t *x)
{
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(x, tmp, k, v)
    {
        if (json_is_null(v))
            json_object_del(x, k);
    }
}

/* The line with its keys in a fixed, readable order (then any others). */
static json_t *ordered(const char *type, json_t *x)
{
    static const char *const keys[] = {"name", "from", "to", "relationType", "entityType", "observations",
                                       "id", "entityId", "relationId", "version", "strength", "confidence",
                                       "metadata", "createdAt", "updatedAt", "validFrom", "validTo",
                                       "changedBy", "deleted", "embeddingModel", "embeddingHash", "embedding",
                                       NULL};
    json_t *line = json_pack("{s:s}", "type", type);
    for (size_t i = 0; line && keys[i]; i++) {
        json_t *v = json_object_get(x, keys[i]);
        if (v && json_object_set(line, keys[i], v) != 0) {
            json_decref(line);
            return NULL;
        }
    }
    if (line && json_object_update_missing(line, x) != 0) {
        json_decref(line);
        return NULL;
    }
    return line;
}

typedef struct export_run {
    bolt_conn *c;
    const bolt_tx_opts *tx;
    bolt_params *p;
    graph_export_line_fn fn;
    void *ctx;
    bool official;
} export_run;

typedef struct stream_ctx {
    export_run *r;
    const char *type;
    int64_t *n;
} stream_ctx;

/* One row's x, typed, to the caller. */
static int stream_row(void *ctx, const bolt_value *rec, eg_error *err)
{
    stream_ctx *s = ctx;
    json_t *x = bolt_value_to_json(bolt_value_at(rec, 0));
    if (!json_is_object(x)) {
        json_decref(x);
        return eg_error_oom(err);
    }
    drop_nulls(x);
    /* memento-era text observations: a list, as both formats want */
    if (!strcmp(s->type, "entity") || !strcmp(s->type, "entityVersion"))
        observations_as_list(x);
    json_t *line = ordered(s->type, x);
    json_decref(x);
    if (!line)
        return eg_error_oom(err);
    int rc = s->r->fn(s->r->ctx, line, err);
    json_decref(line);
    if (rc == 0 && s->n)
        (*s->n)++;
    return rc;
}

/* Stream one statement: each row's x, typed, to the caller.  *n counts rows. */
static int stream(export_run *r, const char *q, const char *type, int64_t *n, eg_error *err)
{
    stream_ctx s = {r, type, n};
    return graph__stream(r->c, q, r->p, r->tx, stream_row, &s, err);
}

int graph_export(graph_store *g, const graph_req *req, const graph_export_opts *o, graph_export_line_fn fn,
                 void *ctx, graph_export_stats *st, eg_error *err)
{
    memset(st, 0, sizeof *st);
    graph_ctx cx;
    int rc = graph__ctx_init(&cx, g, req, err);
    if (rc != 0)
        return rc;
    bolt_conn *c = NULL;
    if ((rc = bolt_pool_acquire(g->pool, &c, err)) != 0)
        return rc;
    bolt_tx_opts tx = BOLT_TX_OPTS_INIT;
    tx.database = g->opts.database;
    tx.read_only = true;
    tx.fetch_size = EXPORT_FETCH;
    bolt_params *p = graph__params(err);
    rc = p ? 0 : EG_ENOMEM;
    if (rc == 0) {
        bolt_params_str(p, "ns", cx.ns);
        bolt_params_bool(p, "vectors", o && o->vectors);
        rc = graph__params_check(p, err);
    }
    if (rc == 0)
        rc = bolt_conn_begin(c, &tx, err);
    export_run r = {c, &tx, p, fn, ctx, o && o->format == GRAPH_EXPORT_OFFICIAL};
    if (rc == 0 && !r.official) {
        /* The header: what the file holds and as of when (database clock). */
        json_t *rows = NULL;
        rc = graph__q(c, Q_NOW, NULL, &rows, err);
        int64_t now = graph__jint(json_array_get(rows, 0), "x", 0);
        json_decref(rows);
        json_t *h = rc == 0 ? json_pack("{s:s, s:i, s:s, s:I, s:b}", "type", "engram-export", "format", 1,
                                        "namespace", cx.ns, "exportedAt", (json_int_t)now, "vectors",
                                        o && o->vectors)
                            : NULL;
        if (rc == 0 && !h)
            rc = eg_error_oom(err);
        if (rc == 0)
            rc = fn(ctx, h, err);
        json_decref(h);
    }
    if (rc == 0)
        rc = stream(&r, r.official ? Q_ENTITIES_OFFICIAL : Q_ENTITIES, "entity", &st->entities, err);
    if (rc == 0 && !r.official)
        rc = stream(&r, Q_ENTITY_VERSIONS, "entityVersion", &st->entity_versions, err);
    if (rc == 0)
        rc = stream(&r, r.official ? Q_RELATIONS_OFFICIAL : Q_RELATIONS, "relation", &st->relations, err);
    if (rc == 0 && !r.official)
        rc = stream(&r, Q_RELATION_VERSIONS, "relationVersion", &st->relation_versions, err);
    if (rc == 0)
        rc = bolt_conn_commit(c, NULL, err);
    else
        bolt_conn_rollback(c, NULL);
    bolt_params_free(p);
    bolt_pool_release(g->pool, c);
    return rc;
}
