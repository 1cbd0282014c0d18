/*
 * schema_migrate.c - the graph's schema: its migrations, registered with
 * schema/ as module "graph" (graph_schema_register, graph_schema_statements),
 * applying them (graph_schema_apply) and checking the indexes against the
 * configuration (graph_schema_check).  Not the memento import: that is
 * migrate.c.
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
 *   6  the namespaces' vector model records: unique namespace
 *   7  the full-text index with the English analyzer (stemming, for term search)
 *   8  trigram text index for the substring pass of search_nodes
 *   9  observation records: unique id, lookup by entity
 *  10  vector index on live :Observation(embedding), from config
 *  11  full-text index on live :Observation(text), English analyzer
 *  12  data: observation records for everything written before them
 *      (obs_convert.c), a C function rather than statements (schema.h)
 */
#include "graph/graph_int.h"

#include "core/alloc.h"
#include "core/buf.h"
#include "schema/schema.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

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

/*
 * Observation records (docs/data-model.md): every record carries
 * :ObservationRecord for life (history reads it by entity); the live ones
 * also carry :Observation, the label the observation vector and full-text
 * indexes cover, so a closed record leaves both indexes by losing a label.
 */
static const char *const M9[] = {
    "CREATE CONSTRAINT graph_observation_id IF NOT EXISTS FOR (o:ObservationRecord) REQUIRE o.id IS UNIQUE",
    "CREATE INDEX graph_observation_entity IF NOT EXISTS FOR (o:ObservationRecord) ON (o.namespace, o.entityId)",
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
        return eg_error_oom(err);
    for (size_t i = 0; i < n; i++) {
        v[i] = eg_strdup(src[i]);
        if (v[i] == NULL) {
            graph_strv_free(v, i);
            return eg_error_oom(err);
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
        return eg_error_oom(err);
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
        return eg_error_oom(err);
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
    } else if (version == 9) {
        return strv_from_static(M9, stmts_out, n_out, err);
    } else if (version == 10) {
        /* Same model, dimensions and similarity as the entity index: one
         * namespace model record (vector_model.c) governs both. */
        rc = eg_buf_printf(&b,
                           "CREATE VECTOR INDEX %s IF NOT EXISTS FOR (o:Observation) ON (o.embedding) "
                           "OPTIONS {indexConfig: {`vector.dimensions`: %zu, "
                           "`vector.similarity_function`: '%s'}}",
                           opts->obs_vector_index, opts->vector_dimensions,
                           opts->similarity == GRAPH_SIM_EUCLIDEAN ? "euclidean" : "cosine");
    } else if (version == 11) {
        /* The settings the entity index reached by migrations 5 and 7:
         * eventually consistent (commit latency) and the English analyzer. */
        rc = eg_buf_printf(&b,
                           "CREATE FULLTEXT INDEX %s IF NOT EXISTS FOR (o:Observation) ON EACH [o.text] "
                           "OPTIONS {indexConfig: {`fulltext.analyzer`: 'english', "
                           "`fulltext.eventually_consistent`: true}}",
                           opts->obs_fulltext_index);
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
        return eg_error_oom(err);
    }
    char **v = eg_calloc(1, sizeof *v);
    if (v == NULL) {
        eg_buf_free(&b);
        return eg_error_oom(err);
    }
    v[0] = eg_buf_detach(&b, NULL);
    if (v[0] == NULL) {
        eg_free(v);
        eg_buf_free(&b);
        return eg_error_oom(err);
    }
    *stmts_out = v;
    *n_out = 1;
    return 0;
}

static int build3(const void *ctx, char ***out, size_t *n, eg_error *err)
{
    return graph_schema_statements(&((const graph_store *)ctx)->opts, 3, out, n, err);
}

static int build4(const void *ctx, char ***out, size_t *n, eg_error *err)
{
    return graph_schema_statements(&((const graph_store *)ctx)->opts, 4, out, n, err);
}

static int build5(const void *ctx, char ***out, size_t *n, eg_error *err)
{
    return graph_schema_statements(&((const graph_store *)ctx)->opts, 5, out, n, err);
}

static int build7(const void *ctx, char ***out, size_t *n, eg_error *err)
{
    return graph_schema_statements(&((const graph_store *)ctx)->opts, 7, out, n, err);
}

static int build10(const void *ctx, char ***out, size_t *n, eg_error *err)
{
    return graph_schema_statements(&((const graph_store *)ctx)->opts, 10, out, n, err);
}

static int build11(const void *ctx, char ***out, size_t *n, eg_error *err)
{
    return graph_schema_statements(&((const graph_store *)ctx)->opts, 11, out, n, err);
}

/*
 * Migration 12 runs on the pool schema_apply was given (the store the
 * registry holds may have been made for another one), with the store's
 * options and queue: the migrated observations' jobs need the queue.
 */
static int with_store(bolt_pool *p, void *ctx, graph_store **out, eg_error *err)
{
    const graph_store *g = ctx;
    return graph_store_new(out, p, g->queue, &g->opts, err);
}

static int run12(bolt_pool *p, void *ctx, eg_error *err)
{
    graph_store *g = NULL;
    int rc = with_store(p, ctx, &g, err);
    if (rc == 0)
        rc = graph_obs_convert(g, NULL, 0, NULL, err);
    graph_store_free(g);
    return rc;
}

static int count12(bolt_pool *p, void *ctx, int64_t *todo, eg_error *err)
{
    graph_store *g = NULL;
    int rc = with_store(p, ctx, &g, err);
    if (rc == 0)
        rc = graph_obs_convert_count(g, NULL, todo, err);
    graph_store_free(g);
    return rc;
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
    {.version = 9, .description = "observation records: unique id, lookup by entity", .statements = M9},
    {.version = 10, .description = "vector index on live :Observation(embedding) from configuration",
     .build = build10, .follows_config = true},
    {.version = 11, .description = "full-text index on live :Observation(text), English analyzer",
     .build = build11},
    /* data: before engram serves a write, which would write a version
     * without a copy for an entity whose older observations have no record */
    {.version = 12, .description = "observation records for entities written before them (data)", .run = run12,
     .count = count12},
};

int graph_schema_register(graph_store *g, eg_error *err)
{
    /* The registry borrows the module struct: keep one per process.  The
     * last registered store (options and queue) wins (re-registering replaces). */
    static schema_module mod;
    mod.name = "graph";
    mod.migrations = GRAPH_MIGRATIONS;
    mod.n = sizeof GRAPH_MIGRATIONS / sizeof GRAPH_MIGRATIONS[0];
    mod.ctx = g;
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
    bolt_params *p = graph__params(err);
    if (p == NULL)
        return EG_ENOMEM;
    bolt_params_str(p, "v", w->g->opts.vector_index);
    bolt_params_str(p, "f", w->g->opts.fulltext_index);
    bolt_params_str(p, "ov", w->g->opts.obs_vector_index);
    bolt_params_str(p, "of", w->g->opts.obs_fulltext_index);
    int rc = graph__q(c,
                     "SHOW INDEXES YIELD name, type, state, labelsOrTypes, properties, options "
                     "WHERE name IN [$v, $f, $ov, $of] OR (type = 'VECTOR' AND 'Entity' IN labelsOrTypes) "
                     "RETURN name, type, state, labelsOrTypes, properties, "
                     "options.indexConfig AS config",
                     p, &w->rows, err);
    bolt_params_free(p);
    return rc;
}

/* The index covers exactly :label, on prop alone (prop NULL: any properties). */
static bool is_on(const json_t *row, const char *label, const char *prop)
{
    const json_t *l = json_object_get(row, "labelsOrTypes"), *pr = json_object_get(row, "properties");
    return json_array_size(l) == 1 && json_array_size(pr) >= 1 &&
           strcmp(json_string_value(json_array_get(l, 0)) ? json_string_value(json_array_get(l, 0)) : "",
                  label) == 0 &&
           (prop == NULL || (json_array_size(pr) == 1 && json_string_value(json_array_get(pr, 0)) &&
                             strcmp(json_string_value(json_array_get(pr, 0)), prop) == 0));
}

static bool is_entity_on(const json_t *row, const char *prop)
{
    return is_on(row, "Entity", prop);
}

/*
 * The observation indexes (migrations 10 and 11): the vector index follows
 * the same model as the entity one, so the same dimensions and similarity;
 * the full-text index must exist.  Checked after the entity indexes, whose
 * problems name the more common fix.
 */
static void obs_problem(const graph_opts *o, const json_t *ovec, const json_t *oft, char *problem, size_t cap)
{
    const char *want_sim = o->similarity == GRAPH_SIM_EUCLIDEAN ? "euclidean" : "cosine";
    json_t *cfg = json_object_get(ovec, "config");
    int64_t dims = graph__jint(cfg, "vector.dimensions", -1);
    const char *sim = graph__jstr(cfg, "vector.similarity_function");
    if (ovec == NULL)
        snprintf(problem, cap, "observation vector index %s does not exist (apply the schema)", o->obs_vector_index);
    else if (strcmp(graph__jstr(ovec, "type") ? graph__jstr(ovec, "type") : "", "VECTOR") != 0 ||
             !is_on(ovec, "Observation", "embedding"))
        snprintf(problem, cap, "index %s is not a vector index on :Observation(embedding)", o->obs_vector_index);
    else if (dims != (int64_t)o->vector_dimensions)
        snprintf(problem, cap,
                 "observation vector index %s has %" PRId64 " dimensions but the configured model needs %zu; "
                 "run `engram reembed --switch-model` (it resizes both vector indexes and re-embeds)",
                 o->obs_vector_index, dims, o->vector_dimensions);
    else if (sim == NULL || strcasecmp(sim, want_sim) != 0)
        snprintf(problem, cap, "observation vector index %s uses %s similarity but NEO4J_SIMILARITY_FUNCTION is %s",
                 o->obs_vector_index, sim ? sim : "unknown", want_sim);
    else if (oft == NULL || !is_on(oft, "Observation", "text"))
        snprintf(problem, cap, "full-text index %s on :Observation(text) does not exist (apply the schema)",
                 o->obs_fulltext_index);
}

int graph_schema_check(graph_store *g, json_t **report_out, eg_error *err)
{
    if (report_out)
        *report_out = NULL;
    check_work w = {g, NULL};
    int rc = graph__read(g, check_fn, &w, err);
    if (rc != 0)
        return rc;
    const json_t *vec = NULL, *ft = NULL, *other_vec = NULL, *ovec = NULL, *oft = NULL;
    size_t i;
    json_t *row;
    json_array_foreach(w.rows, i, row)
    {
        const char *name = graph__jstr(row, "name");
        if (name && strcmp(name, g->opts.vector_index) == 0)
            vec = row;
        else if (name && strcmp(name, g->opts.fulltext_index) == 0)
            ft = row;
        else if (name && strcmp(name, g->opts.obs_vector_index) == 0)
            ovec = row;
        else if (name && strcmp(name, g->opts.obs_fulltext_index) == 0)
            oft = row;
        else if (is_entity_on(row, "embedding"))
            other_vec = row;
    }
    const char *want_sim = g->opts.similarity == GRAPH_SIM_EUCLIDEAN ? "euclidean" : "cosine";
    json_t *cfg = json_object_get(vec, "config");
    int64_t dims = graph__jint(cfg, "vector.dimensions", -1);
    const char *sim = graph__jstr(cfg, "vector.similarity_function");
    char problem[EG_ERR_MSG_MAX] = "";
    if (vec == NULL && other_vec != NULL)
        snprintf(problem, sizeof problem,
                 "vector index %s does not exist, but %s indexes :Entity(embedding); set "
                 "NEO4J_VECTOR_INDEX=%s or drop that index",
                 g->opts.vector_index, graph__jstr(other_vec, "name"), graph__jstr(other_vec, "name"));
    else if (vec == NULL)
        snprintf(problem, sizeof problem, "vector index %s does not exist (apply the schema)",
                 g->opts.vector_index);
    else if (strcmp(graph__jstr(vec, "type") ? graph__jstr(vec, "type") : "", "VECTOR") != 0 ||
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
    else
        obs_problem(&g->opts, ovec, oft, problem, sizeof problem);
    if (report_out) {
        *report_out = json_pack("{s:{s:s,s:O,s:I,s:s?},s:{s:s,s:O},s:b}", "vectorIndex", "name",
                                g->opts.vector_index, "state",
                                vec ? json_object_get(vec, "state") : json_null(), "dimensions",
                                (json_int_t)dims, "similarity", sim, "fulltextIndex", "name",
                                g->opts.fulltext_index, "state",
                                ft ? json_object_get(ft, "state") : json_null(), "ok",
                                problem[0] == '\0');
        /* The observation indexes, as additions to the report. */
        json_t *ocfg = json_object_get(ovec, "config");
        if (*report_out)
            json_object_set_new(
                *report_out, "observationVectorIndex",
                json_pack("{s:s,s:O,s:I,s:s?}", "name", g->opts.obs_vector_index, "state",
                          ovec ? json_object_get(ovec, "state") : json_null(), "dimensions",
                          (json_int_t)graph__jint(ocfg, "vector.dimensions", -1), "similarity",
                          graph__jstr(ocfg, "vector.similarity_function")));
        if (*report_out)
            json_object_set_new(*report_out, "observationFulltextIndex",
                                json_pack("{s:s,s:O}", "name", g->opts.obs_fulltext_index, "state",
                                          oft ? json_object_get(oft, "state") : json_null()));
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
    bolt_params *p = graph__params(err);
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
