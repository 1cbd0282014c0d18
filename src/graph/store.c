/*
 * store.c - graph store lifecycle, configuration and the small
 * query/JSON/cursor helpers every other graph file uses.  The graph's
 * schema (its migrations, applying and checking them) is in schema_migrate.c.
 */
#include "graph/graph_int.h"

#include "core/alloc.h"
#include "core/env.h"
#include "core/limits.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- configuration ---- */

/* A positive size up to max: 0 is never a valid page, budget or delay here. */
static int env_size(const char *name, size_t *out, size_t max, eg_error *err)
{
    int64_t x;
    int rc = eg_env_int(name, 1, (int64_t)max, &x, err);
    if (rc == 1)
        *out = (size_t)x;
    return rc < 0 ? rc : 0;
}

static int env_double(const char *name, double *out, double min, double max, eg_error *err)
{
    int rc = eg_env_double(name, min, max, out, err);
    return rc < 0 ? rc : 0;
}

int graph_opts_from_env(graph_opts *out, eg_error *err)
{
    graph_opts o = GRAPH_OPTS_INIT;
    o.ns = eg_env_str("ENGRAM_NAMESPACE", o.ns);
    o.vector_index = eg_env_str("NEO4J_VECTOR_INDEX", o.vector_index);
    o.fulltext_index = eg_env_str("ENGRAM_FULLTEXT_INDEX", o.fulltext_index);
    o.obs_vector_index = eg_env_str("ENGRAM_OBSERVATION_VECTOR_INDEX", o.obs_vector_index);
    o.obs_fulltext_index = eg_env_str("ENGRAM_OBSERVATION_FULLTEXT_INDEX", o.obs_fulltext_index);
    o.embedding_model = eg_env_str("OPENAI_EMBEDDING_MODEL", o.embedding_model);
    o.changed_by = eg_env_str("ENGRAM_CHANGED_BY", NULL);
    o.database = eg_env_str("NEO4J_DATABASE", NULL);
    const char *sub = eg_env_str("ENGRAM_SEARCH_SUBSTRING", "1");
    if (strcmp(sub, "0") == 0 || strcmp(sub, "false") == 0)
        o.substring_search = false;
    else if (strcmp(sub, "1") == 0 || strcmp(sub, "true") == 0)
        o.substring_search = true;
    else
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "ENGRAM_SEARCH_SUBSTRING must be 0 or 1");
    const char *sim = eg_env_str("NEO4J_SIMILARITY_FUNCTION", "cosine");
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
    /* 0 (the server's own timeout) or at least a second: the server checks
     * timeouts every few seconds, so less would only read as "instant". */
    int64_t t = o.tx_timeout_ms;
    if ((rc = eg_env_int("ENGRAM_GRAPH_TX_TIMEOUT_MS", 0, 86400000, &t, err)) < 0)
        return rc;
    if (t != 0 && t < 1000)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "ENGRAM_GRAPH_TX_TIMEOUT_MS must be 0 or at least 1000");
    o.tx_timeout_ms = t;
    if ((rc = eg_env_int("ENGRAM_SEARCH_INDEX_GRACE_MS", 0, 86400000, &o.index_grace_ms, err)) < 0)
        return rc;
    if ((rc = graph_opts_validate(&o, err)) != 0)
        return rc;
    *out = o;
    return 0;
}

/* Two indexes of one name would make the second CREATE ... IF NOT EXISTS a silent no-op. */
static bool distinct_index_names(const graph_opts *o)
{
    const char *v[] = {o->vector_index, o->fulltext_index, o->obs_vector_index, o->obs_fulltext_index};
    for (size_t i = 0; i < 4; i++)
        for (size_t j = i + 1; j < 4; j++)
            if (strcmp(v[i], v[j]) == 0)
                return false;
    return true;
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
    if (!graph_identifier_valid(o->obs_vector_index) || !graph_identifier_valid(o->obs_fulltext_index))
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "observation index names must match ^[A-Za-z_][A-Za-z0-9_]*$");
    if (!distinct_index_names(o))
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "the four index names (entity and observation, vector and full-text) must differ");
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
        return eg_error_oom(err);
    g->pool = pool;
    g->queue = queue;
    g->opts = *opts;
    g->s_ns = eg_strdup(opts->ns);
    g->s_vector_index = eg_strdup(opts->vector_index);
    g->s_fulltext_index = eg_strdup(opts->fulltext_index);
    g->s_obs_vector_index = eg_strdup(opts->obs_vector_index);
    g->s_obs_fulltext_index = eg_strdup(opts->obs_fulltext_index);
    g->s_model = eg_strdup(opts->embedding_model);
    g->s_changed_by = opts->changed_by ? eg_strdup(opts->changed_by) : NULL;
    g->s_database = opts->database ? eg_strdup(opts->database) : NULL;
    if (!g->s_ns || !g->s_vector_index || !g->s_fulltext_index || !g->s_obs_vector_index ||
        !g->s_obs_fulltext_index || !g->s_model ||
        (opts->changed_by && !g->s_changed_by) || (opts->database && !g->s_database)) {
        graph_store_free(g);
        return eg_error_oom(err);
    }
    g->opts.ns = g->s_ns;
    g->opts.vector_index = g->s_vector_index;
    g->opts.fulltext_index = g->s_fulltext_index;
    g->opts.obs_vector_index = g->s_obs_vector_index;
    g->opts.obs_fulltext_index = g->s_obs_fulltext_index;
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
    eg_free(g->s_obs_vector_index);
    eg_free(g->s_obs_fulltext_index);
    eg_free(g->s_model);
    eg_free(g->s_changed_by);
    eg_free(g->s_database);
    eg_free(g);
}

const graph_opts *graph_store_opts(const graph_store *g)
{
    return &g->opts;
}

int graph__ctx_init(graph_ctx *cx, graph_store *g, const graph_req *req, eg_error *err)
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

/*
 * Every graph transaction carries the store's tx_timeout: an engram server
 * whose link to Neo4j is cut between a statement and its COMMIT otherwise
 * keeps the locks it took (an entity's node, its name in the unique
 * constraint) until the server's TCP notices, which can take hours, and
 * every other server writing that entity waits as long.
 */
int graph__write(graph_store *g, bolt_work_fn fn, void *payload, eg_error *err)
{
    bolt_tx_opts tx = BOLT_TX_OPTS_INIT;
    tx.database = g->opts.database;
    tx.timeout_ms = g->opts.tx_timeout_ms;
    return bolt_pool_execute_write(g->pool, &tx, NULL, fn, payload, err);
}

int graph__write_auto(graph_store *g, bolt_work_fn fn, void *payload, eg_error *err)
{
    bolt_tx_opts tx = BOLT_TX_OPTS_INIT;
    tx.database = g->opts.database;
    tx.timeout_ms = g->opts.tx_timeout_ms;
    return bolt_pool_execute_write_autocommit(g->pool, &tx, NULL, fn, payload, err);
}

int graph__read(graph_store *g, bolt_work_fn fn, void *payload, eg_error *err)
{
    bolt_tx_opts tx = BOLT_TX_OPTS_INIT;
    tx.database = g->opts.database;
    tx.timeout_ms = g->opts.tx_timeout_ms;
    tx.read_only = true;
    /* auto-commit statements: no COMMIT round trip (bolt/pool.h says why
     * nothing is lost); graph__q and its kin pass the unit's options */
    return bolt_pool_execute_read_autocommit(g->pool, &tx, NULL, fn, payload, err);
}

int graph__run(graph_store *g, graph_tx_mode mode, bolt_work_fn fn, void *work, int rc, json_t **result,
               json_t **out, eg_error *err)
{
    if (rc == 0)
        rc = mode == GRAPH_TX_WRITE ? graph__write(g, fn, work, err) : graph__read(g, fn, work, err);
    if (rc != 0) {
        json_decref(*result);
        *result = NULL;
        *out = NULL;
        return rc;
    }
    *out = *result;
    *result = NULL;
    return 0;
}

int graph__q(bolt_conn *c, const char *cypher, const bolt_params *p, json_t **rows, eg_error *err)
{
    *rows = NULL;
    /* inside an auto-commit unit (graph__write_auto, graph__read) its options, else none */
    return bolt_conn_query_json(c, cypher, p, bolt_conn_unit_opts(c), rows, err);
}

int graph__q_many(bolt_conn *c, const char *cypher, bolt_params *const *ps, size_t n, json_t **rows,
                 eg_error *err)
{
    return bolt_conn_query_json_many(c, cypher, (const bolt_params *const *)ps, n, bolt_conn_unit_opts(c), rows,
                                     err);
}

int graph__q_each(bolt_conn *c, const char *const *cyphers, bolt_params *const *ps, size_t n, json_t **rows,
                  eg_error *err)
{
    enum { EACH_MAX = 8 };
    const char *cy[EACH_MAX];
    const bolt_params *pa[EACH_MAX];
    json_t *got[EACH_MAX] = {0};
    size_t k = 0;
    if (n > EACH_MAX)
        return eg_error_set(err, EG_EINTERNAL, EG_CLASS_NONE, "graph__q_each: more than %d statements", EACH_MAX);
    for (size_t i = 0; i < n; i++) {
        rows[i] = NULL;
        if (cyphers[i]) {
            cy[k] = cyphers[i];
            pa[k++] = ps[i];
        }
    }
    int rc = k ? bolt_conn_query_json_each(c, cy, pa, k, bolt_conn_unit_opts(c), got, err) : 0;
    for (size_t i = 0, j = 0; rc == 0 && i < n; i++)
        if (cyphers[i])
            rows[i] = got[j++];
    return rc;
}

int graph__x(bolt_conn *c, const char *cypher, const bolt_params *p, eg_error *err)
{
    return bolt_conn_exec(c, cypher, p, bolt_conn_unit_opts(c), NULL, err);
}

int graph__stream(bolt_conn *c, const char *cypher, const bolt_params *p, const bolt_tx_opts *tx, graph_row_fn fn,
                  void *ctx, eg_error *err)
{
    bolt_result *res = NULL;
    int rc = bolt_conn_run(c, cypher, p, tx ? tx : bolt_conn_unit_opts(c), &res, err);
    const bolt_value *rec = NULL;
    while (rc == 0) {
        int got = bolt_result_next(res, &rec, err);
        if (got <= 0) {
            rc = got;
            break;
        }
        rc = fn(ctx, rec, err);
    }
    bolt_result_free(res);
    return rc;
}

int graph__now(bolt_conn *c, int64_t *now, eg_error *err)
{
    json_t *rows = NULL;
    int rc = graph__q(c, "RETURN timestamp() AS now", NULL, &rows, err);
    if (rc != 0)
        return rc;
    *now = graph__jint(json_array_get(rows, 0), "now", 0);
    json_decref(rows);
    if (*now <= 0)
        return eg_error_set(err, EG_EPROTO, EG_CLASS_DATABASE, "timestamp() returned nothing");
    return 0;
}

bolt_params *graph__params(eg_error *err)
{
    bolt_params *p = bolt_params_new();
    if (p == NULL)
        eg_error_oom(err);
    return p;
}

int graph__params_check(bolt_params *p, eg_error *err)
{
    int rc = bolt_params_error(p);
    if (rc != 0)
        return eg_error_set(err, rc, EG_CLASS_CLIENT, "building query parameters: %s",
                            eg_strerror(rc));
    return 0;
}

int graph__q_params(bolt_conn *c, const char *cypher, bolt_params *p, json_t **rows, eg_error *err)
{
    int rc = graph__params_check(p, err);
    if (rc == 0)
        rc = graph__q(c, cypher, p, rows, err);
    bolt_params_free(p);
    return rc;
}

int graph__x_params(bolt_conn *c, const char *cypher, bolt_params *p, eg_error *err)
{
    int rc = graph__params_check(p, err);
    if (rc == 0)
        rc = graph__x(c, cypher, p, err);
    bolt_params_free(p);
    return rc;
}

int64_t graph__jint(const json_t *o, const char *key, int64_t def)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_real(v))
        return (int64_t)json_real_value(v);
    return def;
}

const char *graph__jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

size_t graph__json_size(const json_t *j)
{
    return json_dumpb(j, NULL, 0, JSON_COMPACT);
}

json_t *graph__entity_out(json_t *e)
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

json_t *graph__relation_out(json_t *r)
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

size_t graph__page_limit(const graph_store *g, const graph_page *p, size_t def)
{
    size_t l = (p && p->limit) ? p->limit : (def ? def : g->opts.default_limit);
    return l > GRAPH_MAX_LIMIT ? GRAPH_MAX_LIMIT : l;
}

size_t graph__page_budget(const graph_store *g, const graph_page *p)
{
    return (p && p->max_bytes) ? p->max_bytes : g->opts.max_response_bytes;
}

char *graph__cursor_offset(size_t off)
{
    char buf[32];
    snprintf(buf, sizeof buf, "o%zu", off);
    return eg_strdup(buf);
}

char *graph__cursor_name(const char *name)
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

int graph__cursor_parse_offset(const char *cur, size_t *off, eg_error *err)
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

int graph__cursor_parse_name(const char *cur, char **name_out, eg_error *err)
{
    *name_out = NULL;
    if (cur == NULL || *cur == '\0')
        return 0;
    size_t n = strlen(cur);
    if (cur[0] != 'n' || (n - 1) % 2 != 0 || n - 1 > 2 * GRAPH_MAX_NAME_BYTES)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "invalid cursor");
    char *o = eg_malloc((n - 1) / 2 + 1);
    if (o == NULL)
        return eg_error_oom(err);
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

const char graph__q_relations_among[] =
    "UNWIND $names AS n "
    "MATCH (a:Entity {namespace: $ns, name: n})-[r:RELATES_TO]->(b:Entity) "
    "WHERE b.namespace = $ns AND b.name IN $names "
    "RETURN " GRAPH_REL_PROJ " AS rel ORDER BY a.name, b.name, r.relationType";

int graph__relations_among_params(const char *ns, const json_t *names, bolt_params **out, eg_error *err)
{
    *out = NULL;
    if (json_array_size(names) == 0)
        return 0;
    bolt_params *p = graph__params(err);
    if (p == NULL)
        return EG_ENOMEM;
    bolt_params_str(p, "ns", ns);
    bolt_params_json(p, "names", names);
    int rc = graph__params_check(p, err);
    if (rc != 0) {
        bolt_params_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int graph__relations_from_rows(const json_t *rows, json_t **out, eg_error *err)
{
    *out = NULL;
    json_t *arr = json_array();
    if (arr == NULL)
        return eg_error_oom(err);
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        json_array_append(arr, graph__relation_out(json_object_get(row, "rel")));
    }
    *out = arr;
    return 0;
}

int graph__relations_touching(bolt_conn *c, const char *ns, const json_t *names, size_t limit, json_t **rels_out,
                             json_t **neighbours_out, bool *truncated, eg_error *err)
{
    *rels_out = *neighbours_out = NULL;
    *truncated = false;
    bolt_params *p = graph__params(err);
    if (p == NULL)
        return EG_ENOMEM;
    bolt_params_str(p, "ns", ns);
    bolt_params_json(p, "names", names);
    bolt_params_int(p, "lim", (int64_t)limit + 1);
    int rc = graph__params_check(p, err);
    json_t *rows = NULL;
    /* Both directions from each name; a relation between two of the names
     * is met twice, hence DISTINCT.  The limit bounds a hub's fan-out. */
    if (rc == 0)
        rc = graph__q(c,
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
        json_array_append(rels, graph__relation_out(rel));
        const char *ends[2] = {graph__jstr(rel, "from"), graph__jstr(rel, "to")};
        const char *types[2] = {graph__jstr(row, "at"), graph__jstr(row, "bt")};
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
