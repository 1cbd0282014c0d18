/*
 * store.c - graph store lifecycle, configuration, schema migrations and the
 * small query/JSON/cursor helpers every other graph file uses.
 *
 * Schema (registered with schema/ as module "graph"):
 *   1  :Entity unique (namespace, name) and unique id.  History lives on other
 *      labels, so the constraint covers exactly the live entities (memento's
 *      (name, validTo) constraint ignored live nodes: validTo is null there).
 *   2  range indexes for history (EntityVersion/RelationVersion) and RELATES_TO.id
 *   3  full-text index over name, entityType, observations (LIST<STRING>)
 *   4  vector index on :Entity(embedding), name/dimensions/similarity from config
 *   5  the full-text index recreated eventually consistent (a synchronous Lucene
 *      update cost more than the rest of a create_entities commit)
 */
#include "graph/graph_int.h"

#include "core/alloc.h"
#include "core/limits.h"
#include "core/buf.h"
#include "schema/schema.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- configuration ---- */

static int env_size(const char *name, size_t *out, size_t max, eg_error *err)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return 0;
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || x == 0 || x > max || v[0] == '-')
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "%s must be an integer in 1..%zu", name, max);
    *out = (size_t)x;
    return 0;
}

static int env_double(const char *name, double *out, double min, double max, eg_error *err)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return 0;
    char *end = NULL;
    errno = 0;
    double x = strtod(v, &end);
    if (errno != 0 || end == v || *end != '\0' || !(x >= min && x <= max))
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "%s must be a number in [%g, %g]",
                            name, min, max);
    *out = x;
    return 0;
}

static const char *env_str(const char *name, const char *def)
{
    const char *v = getenv(name);
    return (v != NULL && *v != '\0') ? v : def;
}

int graph_opts_from_env(graph_opts *out, eg_error *err)
{
    graph_opts o = GRAPH_OPTS_INIT;
    o.ns = env_str("ENGRAM_NAMESPACE", o.ns);
    o.vector_index = env_str("NEO4J_VECTOR_INDEX", o.vector_index);
    o.fulltext_index = env_str("ENGRAM_FULLTEXT_INDEX", o.fulltext_index);
    o.embedding_model = env_str("OPENAI_EMBEDDING_MODEL", o.embedding_model);
    o.changed_by = env_str("ENGRAM_CHANGED_BY", NULL);
    o.database = env_str("NEO4J_DATABASE", NULL);
    const char *sub = env_str("ENGRAM_SEARCH_SUBSTRING", "1");
    if (strcmp(sub, "0") == 0 || strcmp(sub, "false") == 0)
        o.substring_search = false;
    else if (strcmp(sub, "1") == 0 || strcmp(sub, "true") == 0)
        o.substring_search = true;
    else
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "ENGRAM_SEARCH_SUBSTRING must be 0 or 1");
    const char *sim = env_str("NEO4J_SIMILARITY_FUNCTION", "cosine");
    if (strcmp(sim, "cosine") == 0)
        o.similarity = GRAPH_SIM_COSINE;
    else if (strcmp(sim, "euclidean") == 0)
        o.similarity = GRAPH_SIM_EUCLIDEAN;
    else
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "NEO4J_SIMILARITY_FUNCTION must be cosine or euclidean");
    int rc;
    if ((rc = env_size("NEO4J_VECTOR_DIMENSIONS", &o.vector_dimensions, GRAPH_MAX_VECTOR_DIMS, err)) ||
        (rc = env_size("ENGRAM_PAGE_LIMIT", &o.default_limit, GRAPH_MAX_LIMIT, err)) ||
        (rc = env_size("ENGRAM_MAX_RESPONSE_BYTES", &o.max_response_bytes, EG_LIMIT_RESPONSE_BUDGET, err)) ||
        (rc = env_double("ENGRAM_DECAY_HALF_LIFE_DAYS", &o.decay_half_life_days, 1e-6, 1e6, err)) ||
        (rc = env_double("ENGRAM_DECAY_MIN_CONFIDENCE", &o.decay_min_confidence, 0.0, 1.0, err)) ||
        (rc = env_size("ENGRAM_SEARCH_INDEX_LINGER_MS", &o.index_linger_ms, 60000, err)) ||
        (rc = env_size("ENGRAM_SEARCH_INDEX_POLL_MS", &o.index_poll_ms, 3600000, err)))
        return rc;
    if ((rc = graph_opts_validate(&o, err)) != 0)
        return rc;
    *out = o;
    return 0;
}

int graph_opts_validate(const graph_opts *o, eg_error *err)
{
    if (o == NULL)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "graph: NULL options");
    if (!graph_identifier_valid(o->vector_index))
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "vector index name must match ^[A-Za-z_][A-Za-z0-9_]*$");
    if (!graph_identifier_valid(o->fulltext_index))
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "full-text index name must match ^[A-Za-z_][A-Za-z0-9_]*$");
    if (o->vector_dimensions == 0 || o->vector_dimensions > GRAPH_MAX_VECTOR_DIMS)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "vector dimensions must be 1..%u",
                            GRAPH_MAX_VECTOR_DIMS);
    if (o->similarity != GRAPH_SIM_COSINE && o->similarity != GRAPH_SIM_EUCLIDEAN)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "unknown similarity function");
    if (o->max_response_bytes > EG_LIMIT_RESPONSE_BUDGET)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "the response byte budget must be at most %u (a page must fit one MCP message)",
                            EG_LIMIT_RESPONSE_BUDGET);
    if (o->ns == NULL || o->ns[0] == '\0' || strlen(o->ns) > GRAPH_MAX_NAMESPACE_BYTES)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "namespace must be 1..%u bytes",
                            GRAPH_MAX_NAMESPACE_BYTES);
    if (o->embedding_model == NULL || o->embedding_model[0] == '\0')
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "embedding model must be set");
    return 0;
}

/* ---- lifecycle ---- */

int graph_store_new(graph_store **out, bolt_pool *pool, queue_store *queue, const graph_opts *opts,
                    eg_error *err)
{
    *out = NULL;
    graph_opts def = GRAPH_OPTS_INIT;
    if (opts == NULL)
        opts = &def;
    if (pool == NULL)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "graph: NULL pool");
    int rc = graph_opts_validate(opts, err);
    if (rc != 0)
        return rc;
    graph_store *g = eg_calloc(1, sizeof *g);
    if (g == NULL)
        return graph_oom(err);
    g->pool = pool;
    g->queue = queue;
    g->opts = *opts;
    g->s_ns = eg_strdup(opts->ns);
    g->s_vector_index = eg_strdup(opts->vector_index);
    g->s_fulltext_index = eg_strdup(opts->fulltext_index);
    g->s_model = eg_strdup(opts->embedding_model);
    g->s_changed_by = opts->changed_by ? eg_strdup(opts->changed_by) : NULL;
    g->s_database = opts->database ? eg_strdup(opts->database) : NULL;
    if (!g->s_ns || !g->s_vector_index || !g->s_fulltext_index || !g->s_model ||
        (opts->changed_by && !g->s_changed_by) || (opts->database && !g->s_database)) {
        graph_store_free(g);
        return graph_oom(err);
    }
    g->opts.ns = g->s_ns;
    g->opts.vector_index = g->s_vector_index;
    g->opts.fulltext_index = g->s_fulltext_index;
    g->opts.embedding_model = g->s_model;
    g->opts.changed_by = g->s_changed_by;
    g->opts.database = g->s_database;
    if (g->opts.default_limit == 0)
        g->opts.default_limit = 100;
    if (g->opts.max_response_bytes == 0)
        g->opts.max_response_bytes = 1024u * 1024u;
    *out = g;
    return 0;
}

void graph_store_free(graph_store *g)
{
    if (g == NULL)
        return;
    graph_indexer_stop(g);
    eg_free(g->s_ns);
    eg_free(g->s_vector_index);
    eg_free(g->s_fulltext_index);
    eg_free(g->s_model);
    eg_free(g->s_changed_by);
    eg_free(g->s_database);
    eg_free(g);
}

const graph_opts *graph_store_opts(const graph_store *g)
{
    return &g->opts;
}

int graph_ctx_init(graph_ctx *cx, graph_store *g, const graph_req *req, eg_error *err)
{
    if (g == NULL)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "graph: NULL store");
    cx->g = g;
    cx->ns = (req && req->ns) ? req->ns : g->opts.ns;
    cx->changed_by = (req && req->changed_by) ? req->changed_by : g->opts.changed_by;
    size_t n = strlen(cx->ns);
    if (n == 0 || n > GRAPH_MAX_NAMESPACE_BYTES)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "namespace must be 1..%u bytes",
                            GRAPH_MAX_NAMESPACE_BYTES);
    return 0;
}

/* ---- transactions and queries ---- */

int graph_write(graph_store *g, bolt_work_fn fn, void *payload, eg_error *err)
{
    bolt_tx_opts tx = BOLT_TX_OPTS_INIT;
    tx.database = g->opts.database;
    return bolt_pool_execute_write(g->pool, &tx, NULL, fn, payload, err);
}

int graph_read(graph_store *g, bolt_work_fn fn, void *payload, eg_error *err)
{
    bolt_tx_opts tx = BOLT_TX_OPTS_INIT;
    tx.database = g->opts.database;
    tx.read_only = true;
    return bolt_pool_execute_read(g->pool, &tx, NULL, fn, payload, err);
}

int graph_q(bolt_conn *c, const char *cypher, const bolt_params *p, json_t **rows, eg_error *err)
{
    *rows = NULL;
    return bolt_conn_query_json(c, cypher, p, NULL, rows, err);
}

int graph_q_many(bolt_conn *c, const char *cypher, bolt_params *const *ps, size_t n, json_t **rows,
                 eg_error *err)
{
    return bolt_conn_query_json_many(c, cypher, (const bolt_params *const *)ps, n, NULL, rows, err);
}

int graph_x(bolt_conn *c, const char *cypher, const bolt_params *p, eg_error *err)
{
    return bolt_conn_exec(c, cypher, p, NULL, NULL, err);
}

int graph_now(bolt_conn *c, int64_t *now, eg_error *err)
{
    json_t *rows = NULL;
    int rc = graph_q(c, "RETURN timestamp() AS now", NULL, &rows, err);
    if (rc != 0)
        return rc;
    *now = graph_jint(json_array_get(rows, 0), "now", 0);
    json_decref(rows);
    if (*now <= 0)
        return eg_error_set(err, EG_EPROTO, EG_CLASS_DATABASE, "timestamp() returned nothing");
    return 0;
}

bolt_params *graph_params(eg_error *err)
{
    bolt_params *p = bolt_params_new();
    if (p == NULL)
        graph_oom(err);
    return p;
}

int graph_params_check(bolt_params *p, eg_error *err)
{
    int rc = bolt_params_error(p);
    if (rc != 0)
        return eg_error_set(err, rc, EG_CLASS_CLIENT, "building query parameters: %s",
                            eg_strerror(rc));
    return 0;
}

int graph_oom(eg_error *err)
{
    return eg_error_set(err, EG_ENOMEM, EG_CLASS_CLIENT, "out of memory");
}

int64_t graph_jint(const json_t *o, const char *key, int64_t def)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_real(v))
        return (int64_t)json_real_value(v);
    return def;
}

const char *graph_jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

size_t graph_json_size(const json_t *j)
{
    return json_dumpb(j, NULL, 0, JSON_COMPACT);
}

json_t *graph_entity_out(json_t *e)
{
    if (!json_is_object(e))
        return e;
    json_t *obs = json_object_get(e, "observations");
    if (json_is_string(obs)) {
        /* memento stored observations as JSON text: decode, never crash (issue #118). */
        json_t *dec = json_loads(json_string_value(obs), 0, NULL);
        if (!json_is_array(dec)) {
            json_decref(dec);
            dec = json_pack("[O]", obs);
        }
        json_object_set_new(e, "observations", dec ? dec : json_array());
    } else if (!json_is_array(obs)) {
        json_object_set_new(e, "observations", json_array());
    }
    if (json_object_get(e, "validTo") == NULL)
        json_object_set_new(e, "validTo", json_null());
    if (json_object_get(e, "changedBy") == NULL)
        json_object_set_new(e, "changedBy", json_null());
    return e;
}

json_t *graph_relation_out(json_t *r)
{
    if (!json_is_object(r))
        return r;
    json_t *m = json_object_get(r, "metadata");
    if (json_is_string(m)) {
        json_t *dec = json_loads(json_string_value(m), 0, NULL);
        if (dec != NULL)
            json_object_set_new(r, "metadata", dec);
        else
            json_object_del(r, "metadata");
    } else if (m != NULL && !json_is_object(m)) {
        json_object_del(r, "metadata");
    }
    if (json_is_null(json_object_get(r, "strength")))
        json_object_del(r, "strength");
    if (json_is_null(json_object_get(r, "confidence")))
        json_object_del(r, "confidence");
    if (json_object_get(r, "validTo") == NULL)
        json_object_set_new(r, "validTo", json_null());
    return r;
}

/* ---- pages and cursors ---- */

size_t graph_page_limit(const graph_store *g, const graph_page *p, size_t def)
{
    size_t l = (p && p->limit) ? p->limit : (def ? def : g->opts.default_limit);
    return l > GRAPH_MAX_LIMIT ? GRAPH_MAX_LIMIT : l;
}

size_t graph_page_budget(const graph_store *g, const graph_page *p)
{
    return (p && p->max_bytes) ? p->max_bytes : g->opts.max_response_bytes;
}

char *graph_cursor_offset(size_t off)
{
    char buf[32];
    snprintf(buf, sizeof buf, "o%zu", off);
    return eg_strdup(buf);
}

char *graph_cursor_name(const char *name)
{
    static const char hx[] = "0123456789abcdef";
    size_t n = strlen(name);
    char *o = eg_malloc(2 * n + 2);
    if (o == NULL)
        return NULL;
    o[0] = 'n';
    for (size_t i = 0; i < n; i++) {
        o[1 + 2 * i] = hx[(unsigned char)name[i] >> 4];
        o[2 + 2 * i] = hx[(unsigned char)name[i] & 15];
    }
    o[1 + 2 * n] = '\0';
    return o;
}

int graph_cursor_parse_offset(const char *cur, size_t *off, eg_error *err)
{
    *off = 0;
    if (cur == NULL || *cur == '\0')
        return 0;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(cur + 1, &end, 10);
    if (cur[0] != 'o' || errno != 0 || end == cur + 1 || *end != '\0' || v > 100000)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "invalid cursor");
    *off = (size_t)v;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int graph_cursor_parse_name(const char *cur, char **name_out, eg_error *err)
{
    *name_out = NULL;
    if (cur == NULL || *cur == '\0')
        return 0;
    size_t n = strlen(cur);
    if (cur[0] != 'n' || (n - 1) % 2 != 0 || n - 1 > 2 * GRAPH_MAX_NAME_BYTES)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "invalid cursor");
    char *o = eg_malloc((n - 1) / 2 + 1);
    if (o == NULL)
        return graph_oom(err);
    for (size_t i = 0; i < (n - 1) / 2; i++) {
        int hi = hexval(cur[1 + 2 * i]), lo = hexval(cur[2 + 2 * i]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            eg_free(o);
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "invalid cursor");
        }
        o[i] = (char)(hi << 4 | lo);
    }
    o[(n - 1) / 2] = '\0';
    *name_out = o;
    return 0;
}

/* ---- relations among names ---- */

int graph_relations_among(bolt_conn *c, const char *ns, const json_t *names, json_t **out,
                          eg_error *err)
{
    *out = NULL;
    if (json_array_size(names) == 0) {
        *out = json_array();
        return *out ? 0 : graph_oom(err);
    }
    bolt_params *p = graph_params(err);
    if (p == NULL)
        return EG_ENOMEM;
    bolt_params_str(p, "ns", ns);
    bolt_params_json(p, "names", names);
    int rc = graph_params_check(p, err);
    json_t *rows = NULL;
    if (rc == 0)
        rc = graph_q(c,
                     "UNWIND $names AS n "
                     "MATCH (a:Entity {namespace: $ns, name: n})-[r:RELATES_TO]->(b:Entity) "
                     "WHERE b.namespace = $ns AND b.name IN $names "
                     "RETURN " GRAPH_REL_PROJ " AS rel ORDER BY a.name, b.name, r.relationType",
                     p, &rows, err);
    bolt_params_free(p);
    if (rc != 0)
        return rc;
    json_t *arr = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        json_array_append(arr, graph_relation_out(json_object_get(row, "rel")));
    }
    json_decref(rows);
    *out = arr;
    return 0;
}

int graph_relations_touching(bolt_conn *c, const char *ns, const json_t *names, size_t limit, json_t **rels_out,
                             json_t **neighbours_out, bool *truncated, eg_error *err)
{
    *rels_out = *neighbours_out = NULL;
    *truncated = false;
    bolt_params *p = graph_params(err);
    if (p == NULL)
        return EG_ENOMEM;
    bolt_params_str(p, "ns", ns);
    bolt_params_json(p, "names", names);
    bolt_params_int(p, "lim", (int64_t)limit + 1);
    int rc = graph_params_check(p, err);
    json_t *rows = NULL;
    /* Both directions from each name; a relation between two of the names
     * is met twice, hence DISTINCT.  The limit bounds a hub's fan-out. */
    if (rc == 0)
        rc = graph_q(c,
                     "UNWIND $names AS n "
                     "MATCH (:Entity {namespace: $ns, name: n})-[r:RELATES_TO]-(:Entity {namespace: $ns}) "
                     "WITH DISTINCT r LIMIT $lim "
                     "MATCH (a:Entity)-[r]->(b:Entity) "
                     "RETURN " GRAPH_REL_PROJ " AS rel, a.entityType AS at, b.entityType AS bt "
                     "ORDER BY a.name, b.name, r.relationType",
                     p, &rows, err);
    bolt_params_free(p);
    if (rc != 0)
        return rc;
    json_t *rels = json_array(), *seen = json_object(), *nb = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        if (i >= limit) {
            *truncated = true;
            break;
        }
        json_t *rel = json_object_get(row, "rel");
        json_array_append(rels, graph_relation_out(rel));
        const char *ends[2] = {graph_jstr(rel, "from"), graph_jstr(rel, "to")};
        const char *types[2] = {graph_jstr(row, "at"), graph_jstr(row, "bt")};
        for (int k = 0; k < 2; k++) {
            bool opened = false;
            size_t j;
            json_t *nm;
            json_array_foreach(names, j, nm) if (ends[k] && !strcmp(json_string_value(nm), ends[k])) opened = true;
            if (!ends[k] || opened || json_object_get(seen, ends[k]))
                continue;
            json_object_set_new(seen, ends[k], json_true());
            json_array_append_new(nb, json_pack("{s:s, s:s?}", "name", ends[k], "entityType", types[k]));
        }
    }
    json_decref(rows);
    json_decref(seen);
    *rels_out = rels;
    *neighbours_out = nb;
    return 0;
}

/* ---- schema ---- */

static const char *const M1[] = {
    "CREATE CONSTRAINT graph_entity_ns_name IF NOT EXISTS FOR (e:Entity) "
    "REQUIRE (e.namespace, e.name) IS UNIQUE",
    "CREATE CONSTRAINT graph_entity_id IF NOT EXISTS FOR (e:Entity) REQUIRE e.id IS UNIQUE",
    NULL};

/* One record per namespace of the model its vectors come from (vector_model.c). */
static const char *const M6[] = {
    "CREATE CONSTRAINT graph_vector_model_ns IF NOT EXISTS FOR (m:EngramVectorModel) REQUIRE m.namespace IS UNIQUE",
    NULL};

/*
 * The substring pass's index (graph_int.h, GRAPH_SEARCH_SET): a trigram TEXT
 * index on the lower-cased text, the overflow flag per namespace, and the
 * text of every entity written before (one transaction: a few hundred bytes
 * per entity).
 */
static const char *const M8[] = {
    "CREATE TEXT INDEX graph_entity_search_text IF NOT EXISTS FOR (e:Entity) ON (e.searchText)",
    "CREATE INDEX graph_entity_search_overflow IF NOT EXISTS FOR (e:Entity) ON (e.namespace, e.searchOverflow)",
    "MATCH (e:Entity) WHERE e.searchText IS NULL AND e.searchOverflow IS NULL SET " GRAPH_SEARCH_SET("e"),
    NULL};

static const char *const M2[] = {
    "CREATE INDEX graph_entity_version_ns_name IF NOT EXISTS FOR (h:EntityVersion) "
    "ON (h.namespace, h.name)",
    "CREATE INDEX graph_entity_version_ns_id IF NOT EXISTS FOR (h:EntityVersion) "
    "ON (h.namespace, h.entityId)",
    "CREATE INDEX graph_entity_version_ns_from IF NOT EXISTS FOR (h:EntityVersion) "
    "ON (h.namespace, h.validFrom)",
    "CREATE INDEX graph_relation_version_ns_id IF NOT EXISTS FOR (h:RelationVersion) "
    "ON (h.namespace, h.relationId)",
    "CREATE INDEX graph_relation_version_ns_key IF NOT EXISTS FOR (h:RelationVersion) "
    "ON (h.namespace, h.from, h.to, h.relationType)",
    "CREATE INDEX graph_relation_version_ns_from IF NOT EXISTS FOR (h:RelationVersion) "
    "ON (h.namespace, h.validFrom)",
    "CREATE INDEX graph_relates_to_id IF NOT EXISTS FOR ()-[r:RELATES_TO]-() ON (r.id)",
    NULL};

void graph_strv_free(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        eg_free(v[i]);
    eg_free(v);
}

static int strv_from_static(const char *const *src, char ***out, size_t *n_out, eg_error *err)
{
    size_t n = 0;
    while (src[n])
        n++;
    char **v = eg_calloc(n ? n : 1, sizeof *v);
    if (v == NULL)
        return graph_oom(err);
    for (size_t i = 0; i < n; i++) {
        v[i] = eg_strdup(src[i]);
        if (v[i] == NULL) {
            graph_strv_free(v, i);
            return graph_oom(err);
        }
    }
    *out = v;
    *n_out = n;
    return 0;
}

/*
 * Drop the full-text index and create it again with `config` (index-config
 * entries, each followed by ", ") and eventual consistency: the full-text
 * index's settings cannot be altered in place.  The index is rebuilt from the
 * nodes, so nothing is lost.
 */
static int fulltext_recreate(const graph_opts *opts, const char *config, char ***stmts_out, size_t *n_out,
                             eg_error *err)
{
    char **v = eg_calloc(2, sizeof *v);
    if (v == NULL)
        return graph_oom(err);
    eg_buf b = EG_BUF_INIT(4096), b2 = EG_BUF_INIT(4096);
    /* Identifier validated by the caller: the only thing spliced into Cypher. */
    int rc = eg_buf_printf(&b, "DROP INDEX %s IF EXISTS", opts->fulltext_index);
    rc |= eg_buf_printf(&b2,
                        "CREATE FULLTEXT INDEX %s IF NOT EXISTS FOR (e:Entity) "
                        "ON EACH [e.name, e.entityType, e.observations] "
                        "OPTIONS {indexConfig: {%s`fulltext.eventually_consistent`: true}}",
                        opts->fulltext_index, config);
    v[0] = rc ? NULL : eg_buf_detach(&b, NULL);
    v[1] = rc ? NULL : eg_buf_detach(&b2, NULL);
    eg_buf_free(&b);
    eg_buf_free(&b2);
    if (v[0] == NULL || v[1] == NULL) {
        graph_strv_free(v, 2);
        return graph_oom(err);
    }
    *stmts_out = v;
    *n_out = 2;
    return 0;
}

int graph_schema_statements(const graph_opts *opts, int version, char ***stmts_out, size_t *n_out,
                            eg_error *err)
{
    *stmts_out = NULL;
    *n_out = 0;
    int rc = graph_opts_validate(opts, err);
    if (rc != 0)
        return rc;
    if (version == 1)
        return strv_from_static(M1, stmts_out, n_out, err);
    if (version == 2)
        return strv_from_static(M2, stmts_out, n_out, err);
    eg_buf b = EG_BUF_INIT(4096);
    if (version == 3) {
        /* Identifier validated above: the only thing spliced into Cypher. */
        rc = eg_buf_printf(&b,
                           "CREATE FULLTEXT INDEX %s IF NOT EXISTS FOR (e:Entity) "
                           "ON EACH [e.name, e.entityType, e.observations]",
                           opts->fulltext_index);
    } else if (version == 4) {
        rc = eg_buf_printf(&b,
                           "CREATE VECTOR INDEX %s IF NOT EXISTS FOR (e:Entity) ON (e.embedding) "
                           "OPTIONS {indexConfig: {`vector.dimensions`: %zu, "
                           "`vector.similarity_function`: '%s'}}",
                           opts->vector_index, opts->vector_dimensions,
                           opts->similarity == GRAPH_SIM_EUCLIDEAN ? "euclidean" : "cosine");
    } else if (version == 5) {
        /* Replace the synchronous full-text index by an eventually consistent
         * one: a synchronous Lucene update per commit took most of a create
         * (measured: docs/data-model.md, migration 5).  Keyword search
         * may lag a write by a moment; the substring pass covers fresh writes. */
        return fulltext_recreate(opts, "", stmts_out, n_out, err);
    } else if (version == 6) {
        return strv_from_static(M6, stmts_out, n_out, err);
    } else if (version == 8) {
        return strv_from_static(M8, stmts_out, n_out, err);
    } else if (version == 7) {
        /* The English analyzer (Lucene's EnglishAnalyzer: possessives, a
         * short stop list, Porter stemming) so that the keyword leg's terms
         * match their other forms: "painted" finds "painting".  On the
         * development half of LoCoMo it lifts keyword-only session R@10 from
         * 0.958 to 0.971 (docs/architecture.md, "Hybrid search"). */
        return fulltext_recreate(opts, "`fulltext.analyzer`: 'english', ", stmts_out, n_out, err);
    } else {
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "no graph migration %d", version);
    }
    if (rc != 0) {
        eg_buf_free(&b);
        return graph_oom(err);
    }
    char **v = eg_calloc(1, sizeof *v);
    if (v == NULL) {
        eg_buf_free(&b);
        return graph_oom(err);
    }
    v[0] = eg_buf_detach(&b, NULL);
    if (v[0] == NULL) {
        eg_free(v);
        eg_buf_free(&b);
        return graph_oom(err);
    }
    *stmts_out = v;
    *n_out = 1;
    return 0;
}

static int build3(const void *ctx, char ***out, size_t *n, eg_error *err)
{
    return graph_schema_statements(ctx, 3, out, n, err);
}

static int build4(const void *ctx, char ***out, size_t *n, eg_error *err)
{
    return graph_schema_statements(ctx, 4, out, n, err);
}

static int build5(const void *ctx, char ***out, size_t *n, eg_error *err)
{
    return graph_schema_statements(ctx, 5, out, n, err);
}

static int build7(const void *ctx, char ***out, size_t *n, eg_error *err)
{
    return graph_schema_statements(ctx, 7, out, n, err);
}

static const schema_migration GRAPH_MIGRATIONS[] = {
    {.version = 1, .description = "live :Entity unique (namespace, name) and id", .statements = M1},
    {.version = 2, .description = "history and relation indexes", .statements = M2},
    {.version = 3, .description = "full-text index on name, entityType, observations", .build = build3},
    /* follows configuration: recreated at start after an operator drops it
     * to change NEO4J_VECTOR_DIMENSIONS or the similarity function */
    {.version = 4, .description = "vector index on :Entity(embedding) from configuration", .build = build4,
     .follows_config = true},
    {.version = 5, .description = "full-text index made eventually consistent (commit latency)",
     .build = build5},
    {.version = 6, .description = "the namespaces' vector model records: unique namespace", .statements = M6},
    {.version = 7, .description = "full-text index with the English analyzer (stemming, for term search)",
     .build = build7},
    {.version = 8, .description = "trigram text index for the substring pass of search_nodes", .statements = M8},
};

int graph_schema_register(graph_store *g, eg_error *err)
{
    /* The registry borrows the module struct: keep one per process.  The
     * last registered store's options win (re-registering replaces). */
    static schema_module mod;
    mod.name = "graph";
    mod.migrations = GRAPH_MIGRATIONS;
    mod.n = sizeof GRAPH_MIGRATIONS / sizeof GRAPH_MIGRATIONS[0];
    mod.ctx = &g->opts;
    return schema_register(&mod, err);
}

/* ---- schema check ---- */

typedef struct check_work {
    graph_store *g;
    json_t *rows;
} check_work;

static int check_fn(bolt_conn *c, void *payload, eg_error *err)
{
    check_work *w = payload;
    json_decref(w->rows);
    w->rows = NULL;
    bolt_params *p = graph_params(err);
    if (p == NULL)
        return EG_ENOMEM;
    bolt_params_str(p, "v", w->g->opts.vector_index);
    bolt_params_str(p, "f", w->g->opts.fulltext_index);
    int rc = graph_q(c,
                     "SHOW INDEXES YIELD name, type, state, labelsOrTypes, properties, options "
                     "WHERE name IN [$v, $f] OR (type = 'VECTOR' AND 'Entity' IN labelsOrTypes) "
                     "RETURN name, type, state, labelsOrTypes, properties, "
                     "options.indexConfig AS config",
                     p, &w->rows, err);
    bolt_params_free(p);
    return rc;
}

static bool is_entity_on(const json_t *row, const char *prop)
{
    const json_t *l = json_object_get(row, "labelsOrTypes"), *pr = json_object_get(row, "properties");
    return json_array_size(l) == 1 && json_array_size(pr) >= 1 &&
           strcmp(json_string_value(json_array_get(l, 0)) ? json_string_value(json_array_get(l, 0)) : "",
                  "Entity") == 0 &&
           (prop == NULL || (json_array_size(pr) == 1 && json_string_value(json_array_get(pr, 0)) &&
                             strcmp(json_string_value(json_array_get(pr, 0)), prop) == 0));
}

int graph_schema_check(graph_store *g, json_t **report_out, eg_error *err)
{
    if (report_out)
        *report_out = NULL;
    check_work w = {g, NULL};
    int rc = graph_read(g, check_fn, &w, err);
    if (rc != 0)
        return rc;
    const json_t *vec = NULL, *ft = NULL, *other_vec = NULL;
    size_t i;
    json_t *row;
    json_array_foreach(w.rows, i, row)
    {
        const char *name = graph_jstr(row, "name");
        if (name && strcmp(name, g->opts.vector_index) == 0)
            vec = row;
        else if (name && strcmp(name, g->opts.fulltext_index) == 0)
            ft = row;
        else if (is_entity_on(row, "embedding"))
            other_vec = row;
    }
    const char *want_sim = g->opts.similarity == GRAPH_SIM_EUCLIDEAN ? "euclidean" : "cosine";
    json_t *cfg = json_object_get(vec, "config");
    int64_t dims = graph_jint(cfg, "vector.dimensions", -1);
    const char *sim = graph_jstr(cfg, "vector.similarity_function");
    char problem[EG_ERR_MSG_MAX] = "";
    if (vec == NULL && other_vec != NULL)
        snprintf(problem, sizeof problem,
                 "vector index %s does not exist, but %s indexes :Entity(embedding); set "
                 "NEO4J_VECTOR_INDEX=%s or drop that index",
                 g->opts.vector_index, graph_jstr(other_vec, "name"), graph_jstr(other_vec, "name"));
    else if (vec == NULL)
        snprintf(problem, sizeof problem, "vector index %s does not exist (apply the schema)",
                 g->opts.vector_index);
    else if (strcmp(graph_jstr(vec, "type") ? graph_jstr(vec, "type") : "", "VECTOR") != 0 ||
             !is_entity_on(vec, "embedding"))
        snprintf(problem, sizeof problem, "index %s is not a vector index on :Entity(embedding)",
                 g->opts.vector_index);
    else if (dims != (int64_t)g->opts.vector_dimensions)
        snprintf(problem, sizeof problem,
                 "vector index %s has %" PRId64 " dimensions but the configured model needs %zu; "
                 "to move to it, run `engram reembed --switch-model` (it re-embeds through the queue "
                 "and resizes the index), or configure the index's model again",
                 g->opts.vector_index, dims, g->opts.vector_dimensions);
    else if (sim == NULL || strcasecmp(sim, want_sim) != 0)
        snprintf(problem, sizeof problem,
                 "vector index %s uses %s similarity but NEO4J_SIMILARITY_FUNCTION is %s",
                 g->opts.vector_index, sim ? sim : "unknown", want_sim);
    else if (ft == NULL || !is_entity_on(ft, NULL))
        snprintf(problem, sizeof problem, "full-text index %s on :Entity does not exist",
                 g->opts.fulltext_index);
    if (report_out) {
        *report_out = json_pack("{s:{s:s,s:O,s:I,s:s?},s:{s:s,s:O},s:b}", "vectorIndex", "name",
                                g->opts.vector_index, "state",
                                vec ? json_object_get(vec, "state") : json_null(), "dimensions",
                                (json_int_t)dims, "similarity", sim, "fulltextIndex", "name",
                                g->opts.fulltext_index, "state",
                                ft ? json_object_get(ft, "state") : json_null(), "ok",
                                problem[0] == '\0');
        if (*report_out && problem[0])
            json_object_set_new(*report_out, "problem", json_string(problem));
    }
    json_decref(w.rows);
    if (problem[0])
        return eg_error_set(err, EG_ECONFLICT, EG_CLASS_CLIENT, "%s", problem);
    return 0;
}

int graph_schema_apply(graph_store *g, int timeout_ms, eg_error *err)
{
    int rc = graph_schema_register(g, err);
    if (rc != 0)
        return rc;
    rc = schema_apply(g->pool, NULL, NULL, err);
    if (rc != 0)
        return rc;
    bolt_conn *c = NULL;
    rc = bolt_pool_acquire(g->pool, &c, err);
    if (rc != 0)
        return rc;
    bolt_params *p = graph_params(err);
    if (p == NULL) {
        bolt_pool_release(g->pool, c);
        return EG_ENOMEM;
    }
    bolt_params_int(p, "t", timeout_ms > 0 ? (timeout_ms + 999) / 1000 : 60);
    bolt_tx_opts tx = BOLT_TX_OPTS_INIT;
    tx.database = g->opts.database;
    rc = bolt_conn_exec(c, "CALL db.awaitIndexes($t)", p, &tx, NULL, err);
    bolt_params_free(p);
    bolt_pool_release(g->pool, c);
    if (rc == 0)
        rc = graph_schema_check(g, NULL, err);
    return rc;
}
