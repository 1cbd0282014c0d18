/*
 * read.c - bounded reads: read_graph, open_nodes, get_relation, histories,
 * graph at a time, decayed graph.
 *
 * Every read is a managed read unit (auto-commit queries, graph__read) and
 * every answer is bounded by a row limit and a byte budget.  Pages of the
 * live graph are keyed by entity name (unique per namespace), so the cursor
 * is stable under concurrent writes: a page never repeats or skips an
 * entity that existed throughout.
 * Relations travel with their *source* entity's page, so each appears once.
 */
#include "graph/graph_int.h"

#include "core/alloc.h"
#include "core/clock.h"

#include <string.h>

/* ---- page assembly ---- */

/*
 * Take entities in order (the query fetched limit+1 to know whether more
 * exist) with their outgoing relations (rels_by_src: name -> array), keep as
 * many as fit in `budget` bytes (at least one), and fill out with
 * entities/relations/nextCursor/truncated.
 */
/*
 * partial: the entity whose relations the capped relation query cut off
 * (NULL: none).  It ends the page - before it, or with it as the page's only
 * entity, its relations marked incomplete ("relationsTruncated").
 */
static int assemble_page(json_t *entities, json_t *rels_by_src, size_t limit, size_t budget,
                         const char *partial, json_t *out, eg_error *err)
{
    json_t *ents = json_array(), *rels = json_array();
    if (ents == NULL || rels == NULL) {
        json_decref(ents);
        json_decref(rels);
        return eg_error_oom(err);
    }
    size_t used = 0, n = json_array_size(entities), kept = 0;
    bool truncated = false;
    for (size_t i = 0; i < n && i < limit; i++) {
        json_t *e = json_array_get(entities, i);
        const char *name = graph__jstr(e, "name");
        bool cut = partial && name && strcmp(name, partial) == 0;
        json_t *er = json_object_get(rels_by_src, name);
        size_t sz = graph__json_size(e) + (er ? graph__json_size(er) : 0);
        if (kept > 0 && (cut || used + sz > budget)) {
            truncated = true;
            break;
        }
        used += sz;
        json_array_append(ents, e);
        if (er)
            json_array_extend(rels, er);
        kept++;
        if (cut) {
            truncated = true;
            json_object_set_new(out, "relationsTruncated", json_true());
            break;
        }
    }
    json_object_set_new(out, "entities", ents);
    json_object_set_new(out, "relations", rels);
    if (kept > 0 && (truncated || n > kept)) {
        char *cur = graph__cursor_name(graph__jstr(json_array_get(ents, kept - 1), "name"));
        if (cur == NULL)
            return eg_error_oom(err);
        json_object_set_new(out, "nextCursor", json_string(cur));
        eg_free(cur);
    }
    if (truncated)
        json_object_set_new(out, "truncated", json_true());
    return 0;
}

/* Group relation rows {src, rel} into an object name -> [rel...]. New. */
static json_t *group_rels(json_t *rows, bool history)
{
    json_t *by = json_object();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *src = graph__jstr(row, "src");
        if (src == NULL)
            continue;
        json_t *arr = json_object_get(by, src);
        if (arr == NULL) {
            arr = json_array();
            json_object_set_new(by, src, arr);
        }
        json_t *rel = json_incref(json_object_get(row, "rel"));
        graph__relation_out(rel);
        if (!history)
            json_object_set_new(rel, "validTo", json_null());
        json_array_append_new(arr, rel);
    }
    return by;
}

static json_t *names_of(const json_t *entities, size_t limit)
{
    json_t *names = json_array();
    for (size_t i = 0; i < json_array_size(entities) && i < limit; i++)
        json_array_append(names, json_object_get(json_array_get(entities, i), "name"));
    return names;
}

/* The entities of rows (each row's `key`, or each row itself when key is
 * NULL), normalised (graph__entity_out); new. */
static json_t *entity_rows(json_t *rows, const char *key)
{
    json_t *arr = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        json_array_append_new(arr, graph__entity_out(json_incref(key ? json_object_get(row, key) : row)));
    }
    return arr;
}

/* ---- read_graph / decayed graph ---- */

typedef struct page_work {
    graph_ctx cx;
    const graph_page *page;
    int64_t t;          /* graph at time; 0 = live */
    json_t *result;
} page_work;

/*
 * A page of the live graph in one statement, so one round trip and one
 * snapshot (reads are auto-commit: as three statements, the total and the
 * relations could each see a later graph than the page):
 *   ents  - the page, GRAPH_NS_SEEK and ordered by the whole index key so it
 *           is read in index order and stops at $lim ($after is '' for the
 *           first page: names are never empty);
 *   rels  - the outgoing relations of its first $plim entities, {src, rel},
 *           capped at $rlim: no more can fit in the byte budget (page_fn);
 *   total - the namespace's entities.
 * Each is an aggregating subquery, so the statement answers one row.
 */
static const char Q_LIVE_PAGE[] =
    "CALL { MATCH (e:Entity) WHERE e.namespace = $ns AND e.name > $after "
    "  WITH e ORDER BY e.namespace, e.name LIMIT $lim "
    "  RETURN collect(" GRAPH_ENTITY_PROJ("e") ") AS ents } "
    "CALL { WITH ents UNWIND [x IN ents[0..$plim] | x.name] AS n "
    "  MATCH (a:Entity {namespace: $ns, name: n})-[r:RELATES_TO]->(b:Entity) "
    "  WITH a, r, b ORDER BY a.name, b.name, r.relationType LIMIT $rlim "
    "  RETURN collect({src: a.name, rel: " GRAPH_REL_PROJ "}) AS rels } "
    "CALL { MATCH (e:Entity {namespace: $ns}) " GRAPH_NS_SEEK("e") " RETURN count(e) AS total } "
    "RETURN ents, rels, total";

#define VERSION_PROJ(v)                                                                         \
    v " {.name, .entityType, observations: " GRAPH_VERSION_OBS(v) ", id: " v ".entityId, .version, "     \
      ".createdAt, .updatedAt, .validFrom, .validTo, .changedBy, .deleted}"
#define REL_VERSION_PROJ(v)                                                                     \
    v " {.from, .to, .relationType, .strength, .confidence, .metadata, id: " v ".relationId, " \
      ".version, .createdAt, .updatedAt, .validFrom, .validTo, .changedBy, .deleted}"

static const char Q_AT_PAGE[] =
    "MATCH (h:EntityVersion {namespace: $ns}) "
    "WHERE h.validFrom <= $t AND (h.validTo IS NULL OR h.validTo > $t) "
    "AND h.name > $after "
    "RETURN " VERSION_PROJ("h") " AS entity ORDER BY h.name LIMIT $lim";

static const char Q_AT_RELS[] =
    "MATCH (h:RelationVersion {namespace: $ns}) "
    "WHERE h.from IN $names AND h.validFrom <= $t AND (h.validTo IS NULL OR h.validTo > $t) "
    "RETURN h.from AS src, " REL_VERSION_PROJ("h") " AS rel ORDER BY h.from, h.to, h.relationType LIMIT $rlim";

/* Relations are read only as far as they can fit in the byte budget (each
 * takes at least GRAPH_REL_MIN_BYTES of JSON): a hub with 100 000 relations
 * must not be loaded to answer one page. */
static int64_t page_rel_cap(size_t budget)
{
    return (int64_t)(budget / GRAPH_REL_MIN_BYTES) + 2;
}

/* The page's entities (entity_rows) and relation rows {src, rel} into out
 * (assemble_page); rrows are capped at rlim rows, so when the cap was
 * reached the last source's relations may be incomplete. */
static int page_out(json_t *ents, json_t *rrows, int64_t rlim, bool history, size_t limit, size_t budget,
                    json_t *out, eg_error *err)
{
    size_t nr = json_array_size(rrows);
    const char *partial = (int64_t)nr == rlim ? graph__jstr(json_array_get(rrows, nr - 1), "src") : NULL;
    json_t *by = group_rels(rrows, history);
    int rc = ents && by ? assemble_page(ents, by, limit, budget, partial, out, err) : eg_error_oom(err);
    json_decref(by);
    return rc;
}

static int live_page(bolt_conn *c, page_work *w, size_t limit, const char *after, eg_error *err)
{
    size_t budget = graph__page_budget(w->cx.g, w->page);
    int64_t rlim = page_rel_cap(budget);
    bolt_params *p = graph__params(err);
    if (p == NULL)
        return EG_ENOMEM;
    bolt_params_str(p, "ns", w->cx.ns);
    bolt_params_str(p, "after", after);
    bolt_params_int(p, "lim", (int64_t)limit + 1);
    bolt_params_int(p, "plim", (int64_t)limit);
    bolt_params_int(p, "rlim", rlim);
    json_t *rows = NULL;
    int rc = graph__q_params(c, Q_LIVE_PAGE, p, &rows, err);
    const json_t *row = json_array_get(rows, 0);
    json_t *ents = rc == 0 ? entity_rows(json_object_get(row, "ents"), NULL) : NULL;
    if (rc == 0)
        rc = page_out(ents, json_object_get(row, "rels"), rlim, false, limit, budget, w->result, err);
    json_decref(ents);
    if (rc == 0)
        json_object_set_new(w->result, "total", json_integer(graph__jint(row, "total", 0)));
    json_decref(rows);
    return rc;
}

/* A page of the graph at w->t: the versions valid then, then their relations. */
static int at_page(bolt_conn *c, page_work *w, size_t limit, const char *after, eg_error *err)
{
    bolt_params *p = graph__params(err);
    if (p == NULL)
        return EG_ENOMEM;
    bolt_params_str(p, "ns", w->cx.ns);
    bolt_params_str(p, "after", after);
    bolt_params_int(p, "lim", (int64_t)limit + 1);
    bolt_params_int(p, "t", w->t);
    json_t *rows = NULL, *rrows = NULL, *ents = NULL, *names = NULL;
    int rc = graph__q_params(c, Q_AT_PAGE, p, &rows, err);
    size_t budget = graph__page_budget(w->cx.g, w->page);
    int64_t rlim = page_rel_cap(budget);
    if (rc == 0) {
        ents = entity_rows(rows, "entity");
        names = names_of(ents, limit);
        if ((p = graph__params(err)) == NULL)
            rc = EG_ENOMEM;
    }
    if (rc == 0) {
        bolt_params_str(p, "ns", w->cx.ns);
        bolt_params_json(p, "names", names);
        bolt_params_int(p, "t", w->t);
        bolt_params_int(p, "rlim", rlim);
        rc = graph__q_params(c, Q_AT_RELS, p, &rrows, err);
    }
    if (rc == 0)
        rc = page_out(ents, rrows, rlim, true, limit, budget, w->result, err);
    json_decref(rows);
    json_decref(rrows);
    json_decref(ents);
    json_decref(names);
    return rc;
}

static int page_fn(bolt_conn *c, void *payload, eg_error *err)
{
    page_work *w = payload;
    json_decref(w->result);
    w->result = json_object();
    if (w->result == NULL)
        return eg_error_oom(err);
    size_t limit = graph__page_limit(w->cx.g, w->page, 0);
    char *after = NULL;
    int rc = graph__cursor_parse_name(w->page ? w->page->cursor : NULL, &after, err);
    if (rc != 0)
        return rc;
    rc = w->t ? at_page(c, w, limit, after ? after : "", err) : live_page(c, w, limit, after ? after : "", err);
    eg_free(after);
    return rc;
}

static int run_page(graph_store *g, const graph_req *req, const graph_page *page, int64_t t,
                    json_t **out, eg_error *err)
{
    *out = NULL;
    page_work w = {0};
    int rc = graph__ctx_init(&w.cx, g, req, err);
    w.page = page;
    w.t = t;
    int64_t t0 = eg_mono_ms();
    rc = graph__run(g, GRAPH_TX_READ, page_fn, &w, rc, &w.result, out, err);
    if (rc == 0)
        json_object_set_new(*out, "timeTaken", json_integer(eg_mono_ms() - t0));
    return rc;
}

int graph_read_graph(graph_store *g, const graph_req *req, const graph_page *page, json_t **out,
                     eg_error *err)
{
    return run_page(g, req, page, 0, out, err);
}

int graph_get_graph_at_time(graph_store *g, const graph_req *req, int64_t t_ms,
                            const graph_page *page, json_t **out, eg_error *err)
{
    if (t_ms <= 0)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "timestamp must be positive ms");
    int rc = run_page(g, req, page, t_ms, out, err);
    if (rc == 0)
        json_object_set_new(*out, "timestamp", json_integer(t_ms));
    return rc;
}

int graph_get_decayed_graph(graph_store *g, const graph_req *req, const graph_decay_opts *d,
                            const graph_page *page, json_t **out, eg_error *err)
{
    *out = NULL;
    graph_decay_opts def = GRAPH_DECAY_OPTS_INIT;
    if (d == NULL)
        d = &def;
    double hl_days = d->half_life_days > 0 ? d->half_life_days : g->opts.decay_half_life_days;
    double floor_ = d->min_confidence >= 0 ? d->min_confidence : g->opts.decay_min_confidence;
    int64_t ref = d->reference_time_ms;
    json_t *res = NULL;
    int rc = run_page(g, req, page, 0, &res, err);
    if (rc != 0)
        return rc;
    if (ref <= 0) {
        /* The database clock is what stamped validFrom; ask it. */
        bolt_conn *c = NULL;
        rc = bolt_pool_acquire(g->pool, &c, err);
        if (rc == 0) {
            bolt_tx_opts tx = BOLT_TX_OPTS_INIT;
            tx.database = g->opts.database;
            json_t *rows = NULL;
            rc = bolt_conn_query_json(c, "RETURN timestamp() AS now", NULL, &tx, &rows, err);
            ref = graph__jint(json_array_get(rows, 0), "now", eg_wall_ms());
            json_decref(rows);
            bolt_pool_release(g->pool, c);
        }
        if (rc != 0) {
            json_decref(res);
            return rc;
        }
    }
    double hl_ms = hl_days * 86400000.0;
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(res, "relations"), i, r)
    {
        const json_t *cv = json_object_get(r, "confidence");
        double conf = json_is_number(cv) ? json_number_value(cv) : 1.0;
        int64_t from = graph__jint(r, "validFrom", graph__jint(r, "createdAt", ref));
        double dec = graph_decay(conf, (double)(ref - from), hl_ms, floor_);
        json_object_set_new(r, "originalConfidence", json_is_number(cv) ? json_real(conf) : json_null());
        json_object_set_new(r, "confidence", json_real(dec));
    }
    json_object_set_new(res, "decay",
                        json_pack("{sIsfsf}", "referenceTime", (json_int_t)ref, "halfLifeDays",
                                  hl_days, "minConfidence", floor_));
    *out = res;
    return 0;
}

/* ---- open_nodes ---- */

typedef struct open_work {
    graph_ctx cx;
    const graph_page *page;
    json_t *names;
    bool neighbours;
    json_t *result;
} open_work;

#define GRAPH_NEIGHBOURHOOD_MAX 200 /* relations of a neighbourhood answer */

static const char Q_OPEN_ENTITIES[] =
    "UNWIND range(0, size($names) - 1) AS i "
    "MATCH (e:Entity {namespace: $ns, name: $names[i]}) "
    "RETURN " GRAPH_ENTITY_PROJ("e") " AS entity ORDER BY i";

static int open_fn(bolt_conn *c, void *payload, eg_error *err)
{
    open_work *w = payload;
    json_decref(w->result);
    w->result = json_object();
    if (w->result == NULL)
        return eg_error_oom(err);
    size_t off = 0, limit = graph__page_limit(w->cx.g, w->page, GRAPH_MAX_LIMIT);
    int rc = graph__cursor_parse_offset(w->page ? w->page->cursor : NULL, &off, err);
    if (rc != 0)
        return rc;
    json_t *slice = json_array();
    for (size_t i = off; i < json_array_size(w->names) && i < off + limit; i++)
        json_array_append(slice, json_array_get(w->names, i));
    bolt_params *p = graph__params(err);
    if (p == NULL) {
        json_decref(slice);
        return EG_ENOMEM;
    }
    bolt_params_str(p, "ns", w->cx.ns);
    bolt_params_json(p, "names", slice);
    json_t *rows = NULL, *rels = NULL, *rrows = NULL;
    rc = graph__params_check(p, err);
    /* The relations among the asked names are those among the found ones
     * (a relation needs both its entities), so without neighbours both
     * statements go in one round trip. */
    bolt_params *rp = NULL;
    if (rc == 0 && !w->neighbours)
        rc = graph__relations_among_params(w->cx.ns, slice, &rp, err);
    if (rc == 0) {
        const char *cy[2] = {Q_OPEN_ENTITIES, rp ? graph__q_relations_among : NULL};
        bolt_params *ps[2] = {p, rp};
        json_t *got[2] = {NULL, NULL};
        rc = graph__q_each(c, cy, ps, 2, got, err);
        rows = got[0];
        rrows = got[1];
    }
    bolt_params_free(p);
    bolt_params_free(rp);
    json_t *ents = NULL, *found = NULL;
    if (rc == 0) {
        ents = entity_rows(rows, "entity");
        found = names_of(ents, SIZE_MAX);
        if (!w->neighbours)
            rc = rrows ? graph__relations_from_rows(rrows, &rels, err)
                       : ((rels = json_array()) ? 0 : eg_error_oom(err));
        else if (json_array_size(found) == 0)
            rels = json_array();
        else {
            json_t *nb = NULL;
            bool cut = false;
            rc = graph__relations_touching(c, w->cx.ns, found, GRAPH_NEIGHBOURHOOD_MAX, &rels, &nb, &cut, err);
            if (rc == 0) {
                json_object_set_new(w->result, "neighbours", nb);
                if (cut)
                    json_object_set_new(w->result, "neighboursTruncated", json_true());
            }
        }
    }
    if (rc == 0) {
        /* Budget: entities first, then relations while they fit. */
        size_t budget = graph__page_budget(w->cx.g, w->page), used = 0, kept = 0;
        json_t *ke = json_array(), *kr = json_array(), *nf = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(ents, i, e)
        {
            size_t sz = graph__json_size(e);
            if (kept > 0 && used + sz > budget)
                break;
            used += sz;
            kept++;
            json_array_append(ke, e);
        }
        bool truncated = kept < json_array_size(ents);
        /* Entities cut by the budget are reached through the cursor: the
         * page ends at the slice position of the first one left out. */
        size_t end = json_array_size(slice);
        if (truncated) {
            const char *first_out = graph__jstr(json_array_get(ents, kept), "name");
            for (size_t j = 0; j < json_array_size(slice); j++)
                if (first_out && strcmp(json_string_value(json_array_get(slice, j)), first_out) == 0) {
                    end = j;
                    break;
                }
        }
        json_array_foreach(rels, i, e)
        {
            size_t sz = graph__json_size(e);
            if (used + sz > budget) {
                truncated = true;
                break;
            }
            used += sz;
            json_array_append(kr, e);
        }
        json_array_foreach(slice, i, e)
        {
            if (i >= end)
                break;
            if (!json_array_size(found))
                json_array_append(nf, e);
            else {
                bool hit = false;
                size_t j;
                json_t *f;
                json_array_foreach(found, j, f) if (json_equal(f, e)) hit = true;
                if (!hit)
                    json_array_append(nf, e);
            }
        }
        json_object_set_new(w->result, "entities", ke);
        json_object_set_new(w->result, "relations", kr);
        if (json_array_size(nf))
            json_object_set_new(w->result, "notFound", nf);
        else
            json_decref(nf);
        if (truncated)
            json_object_set_new(w->result, "truncated", json_true());
        if (off + end < json_array_size(w->names)) {
            char *cur = graph__cursor_offset(off + end);
            json_object_set_new(w->result, "nextCursor", json_string(cur ? cur : ""));
            eg_free(cur);
        }
    }
    json_decref(slice);
    json_decref(rows);
    json_decref(rrows);
    json_decref(rels);
    json_decref(ents);
    json_decref(found);
    return rc;
}

int graph_open_nodes(graph_store *g, const graph_req *req, const json_t *names,
                     const graph_page *page, json_t **out, eg_error *err)
{
    return graph_open_nodes_with(g, req, names, page, false, out, err);
}

int graph_open_nodes_with(graph_store *g, const graph_req *req, const json_t *names, const graph_page *page,
                          bool neighbours, json_t **out, eg_error *err)
{
    *out = NULL;
    open_work w = {0};
    w.page = page;
    w.neighbours = neighbours;
    int rc = graph__ctx_init(&w.cx, g, req, err);
    if (rc == 0)
        rc = graph__validate_names(names, &w.names, err);
    rc = graph__run(g, GRAPH_TX_READ, open_fn, &w, rc, &w.result, out, err);
    json_decref(w.names);
    return rc;
}

/* ---- get_relation, histories ---- */

typedef struct q_work {
    graph_ctx cx;
    const char *cypher;
    const char *a, *b, *c; /* from/to/type or name */
    size_t off, lim;
    json_t *rows;
} q_work;

static int q_fn(bolt_conn *c, void *payload, eg_error *err)
{
    q_work *w = payload;
    json_decref(w->rows);
    w->rows = NULL;
    bolt_params *p = graph__params(err);
    if (p == NULL)
        return EG_ENOMEM;
    bolt_params_str(p, "ns", w->cx.ns);
    if (w->a)
        bolt_params_str(p, "a", w->a);
    if (w->b)
        bolt_params_str(p, "b", w->b);
    if (w->c)
        bolt_params_str(p, "c", w->c);
    bolt_params_int(p, "off", (int64_t)w->off);
    bolt_params_int(p, "lim", (int64_t)w->lim);
    int rc = graph__params_check(p, err);
    if (rc == 0)
        rc = graph__q(c, w->cypher, p, &w->rows, err);
    bolt_params_free(p);
    return rc;
}

static int check_name(const char *s, const char *what, eg_error *err)
{
    if (s == NULL || *s == '\0' || strlen(s) > GRAPH_MAX_NAME_BYTES)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "%s must be a non-empty string", what);
    return 0;
}

/* A relation is named by its two ends and its type. */
static int check_relation_key(const char *from, const char *to, const char *relation_type, eg_error *err)
{
    int rc = check_name(from, "from", err);
    if (rc == 0)
        rc = check_name(to, "to", err);
    if (rc == 0)
        rc = check_name(relation_type, "relationType", err);
    return rc;
}

int graph_get_relation(graph_store *g, const graph_req *req, const char *from, const char *to,
                       const char *relation_type, json_t **out, eg_error *err)
{
    *out = NULL;
    q_work w = {0};
    int rc = graph__ctx_init(&w.cx, g, req, err);
    if (rc == 0)
        rc = check_relation_key(from, to, relation_type, err);
    if (rc != 0)
        return rc;
    w.cypher = "MATCH (a:Entity {namespace: $ns, name: $a})-[r:RELATES_TO {relationType: $c}]->"
               "(b:Entity {namespace: $ns, name: $b}) RETURN " GRAPH_REL_PROJ " AS rel LIMIT 1";
    w.a = from;
    w.b = to;
    w.c = relation_type;
    rc = graph__read(g, q_fn, &w, err);
    if (rc == 0 && json_array_size(w.rows) == 0)
        rc = eg_error_set(err, EG_ENOTFOUND, EG_CLASS_CLIENT, "Relation not found: %s -[%s]-> %s",
                          from, relation_type, to);
    if (rc == 0)
        *out = graph__relation_out(json_incref(json_object_get(json_array_get(w.rows, 0), "rel")));
    json_decref(w.rows);
    return rc;
}

static int history_common(graph_store *g, q_work *w, const graph_page *page,
                          bool is_rel, json_t **out, eg_error *err)
{
    *out = NULL;
    size_t limit = graph__page_limit(g, page, 0);
    int rc = graph__cursor_parse_offset(page ? page->cursor : NULL, &w->off, err);
    if (rc != 0)
        return rc;
    w->lim = limit + 1;
    rc = graph__read(g, q_fn, w, err);
    if (rc != 0) {
        json_decref(w->rows);
        return rc;
    }
    json_t *hist = json_array();
    size_t budget = graph__page_budget(g, page), used = 0, kept = 0;
    bool truncated = false;
    for (size_t i = 0; i < json_array_size(w->rows) && i < limit; i++) {
        json_t *v = json_incref(json_object_get(json_array_get(w->rows, i), "v"));
        if (is_rel)
            graph__relation_out(v);
        else
            graph__entity_out(v);
        size_t sz = graph__json_size(v);
        if (kept > 0 && used + sz > budget) {
            json_decref(v);
            truncated = true;
            break;
        }
        used += sz;
        kept++;
        json_array_append_new(hist, v);
    }
    json_t *res = json_pack("{so}", "history", hist);
    if (truncated || json_array_size(w->rows) > kept) {
        char *cur = graph__cursor_offset(w->off + kept);
        json_object_set_new(res, "nextCursor", json_string(cur ? cur : ""));
        eg_free(cur);
    }
    if (truncated)
        json_object_set_new(res, "truncated", json_true());
    json_decref(w->rows);
    *out = res;
    return 0;
}

int graph_get_entity_history(graph_store *g, const graph_req *req, const char *name,
                             const graph_page *page, json_t **out, eg_error *err)
{
    *out = NULL;
    q_work w = {0};
    int rc = graph__ctx_init(&w.cx, g, req, err);
    if (rc == 0)
        rc = check_name(name, "entityName", err);
    if (rc != 0)
        return rc;
    w.cypher = "MATCH (h:EntityVersion {namespace: $ns, name: $a}) "
               "RETURN " VERSION_PROJ("h") " AS v ORDER BY h.validFrom, h.version SKIP $off LIMIT $lim";
    w.a = name;
    return history_common(g, &w, page, false, out, err);
}

int graph_get_relation_history(graph_store *g, const graph_req *req, const char *from,
                               const char *to, const char *relation_type, const graph_page *page,
                               json_t **out, eg_error *err)
{
    *out = NULL;
    q_work w = {0};
    int rc = graph__ctx_init(&w.cx, g, req, err);
    if (rc == 0)
        rc = check_relation_key(from, to, relation_type, err);
    if (rc != 0)
        return rc;
    w.cypher = "MATCH (h:RelationVersion {namespace: $ns, from: $a, to: $b, relationType: $c}) "
               "RETURN " REL_VERSION_PROJ("h") " AS v ORDER BY h.validFrom, h.version "
               "SKIP $off LIMIT $lim";
    w.a = from;
    w.b = to;
    w.c = relation_type;
    return history_common(g, &w, page, true, out, err);
}
