/*
 * search.c - keyword (full-text + substring), semantic (vector) and hybrid
 * (weighted sum of normalised scores, graph_score_fuse) search, plus the embedding tools:
 * get_entity_embedding, force_generate_embedding, debug_embedding_config,
 * diagnose_vector_search.
 *
 * search_nodes takes the user's text literally: every Lucene metacharacter
 * is escaped and the text is searched as a phrase in the full-text index
 * (name, entityType, observations).  Because memento matched substrings
 * ("ell" finds "hello"), a case-insensitive CONTAINS pass fills the page
 * when the index returns fewer hits; a trigram TEXT index finds its
 * candidates, so it does not scan the namespace.
 *
 * The keyword leg of hybrid search ranks by terms instead (term_hits): a
 * question is not a phrase any text contains.
 *
 * Vector search: Neo4j 5.26's vector index cannot pre-filter, so we ask it
 * for more neighbours than needed and filter by namespace/entity type/score
 * afterwards, growing the request (x4, up to 10000) while the filters leave
 * the page short, the index still had more to give, and its last neighbour
 * still scored at least min_similarity.
 */
#include "graph/graph_int.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"

#include <math.h>
#include <string.h>

#define VEC_FETCH_CAP 10000

/* ---- keyword ---- */

static const char Q_FULLTEXT[] =
    "CALL db.index.fulltext.queryNodes($index, $q) YIELD node, score "
    "WHERE node.namespace = $ns "
    "RETURN " GRAPH_ENTITY_PROJ("node") " AS entity, score LIMIT $lim";

/*
 * The legs of vector and hybrid search return an entity's name and type
 * only (ENTITY_REF): they bring up to 3 x limit candidates each, of which
 * only `limit` are answered, and projecting every candidate's observation
 * list cost more than the legs themselves (LoCoMo sessions: ~2 ms of a
 * 4 ms full-text leg).  fetch_entities reads the answered ones whole.
 */
#define ENTITY_REF(v) v " {.name, .entityType}"

static const char Q_FULLTEXT_REF[] =
    "CALL db.index.fulltext.queryNodes($index, $q) YIELD node, score "
    "WHERE node.namespace = $ns "
    "RETURN " ENTITY_REF("node") " AS entity, score LIMIT $lim";

static const char Q_FETCH_ENTITIES[] =
    "UNWIND $names AS n MATCH (e:Entity {namespace: $ns, name: n}) "
    "RETURN " GRAPH_ENTITY_PROJ("e") " AS entity";

/*
 * Candidates come from the trigram TEXT index on searchText (graph_int.h),
 * plus the namespace's few entities too long for it (searchOverflow), plus
 * those written since the indexer last ran (:SearchStale, indexer.c); the
 * exact predicate is then checked on each, so the index only narrows.  At
 * most SUBSTRING_CANDIDATES matches are sorted for the page: a fragment
 * found in more entities than that yields a page of some of them, still
 * ordered by name, without sorting the whole namespace.
 */
#define SUBSTRING_CANDIDATES "1000"
static const char Q_SUBSTRING[] =
    "WITH toLower($q) AS lq "
    "CALL { WITH lq "
    "  MATCH (e:Entity) USING TEXT INDEX e:Entity(searchText) "
    "  WHERE e.searchText CONTAINS lq AND e.namespace = $ns RETURN e "
    "  UNION "
    "  WITH lq MATCH (e:Entity {namespace: $ns, searchOverflow: true}) RETURN e "
    "  UNION "
    "  WITH lq MATCH (e:Entity:" GRAPH_SEARCH_STALE_LABEL ") WHERE e.namespace = $ns RETURN e } "
    "WITH e, lq WHERE NOT e.name IN $seen AND (toLower(e.name) CONTAINS lq "
    "OR toLower(e.entityType) CONTAINS lq "
    "OR any(o IN e.observations WHERE toLower(o) CONTAINS lq)) "
    "WITH e LIMIT " SUBSTRING_CANDIDATES " "
    "RETURN " GRAPH_ENTITY_PROJ("e") " AS entity ORDER BY e.name LIMIT $lim";

/*
 * search_nodes' usual case (a phrase, the substring fill on) in one
 * statement, so one round trip: the full-text leg's page, and only when it
 * came back short (an aggregating subquery yields its one row, [] when its
 * filter let nothing through), the substring pass over the names it did not
 * find, at most $lim of them by name; the caller keeps the first
 * $lim - size(ft).
 */
#define KEYWORD_LEGS \
    "CALL { CALL db.index.fulltext.queryNodes($index, $q) YIELD node, score " \
    "  WHERE node.namespace = $ns WITH node, score LIMIT $lim " \
    "  RETURN collect({entity: " GRAPH_ENTITY_PROJ("node") ", score: score}) AS ft } " \
    "CALL { WITH ft WITH ft WHERE size(ft) < $lim " \
    "  WITH toLower($raw) AS lq, [x IN ft | x.entity.name] AS seen " \
    "  CALL { WITH lq " \
    "    MATCH (e:Entity) USING TEXT INDEX e:Entity(searchText) " \
    "    WHERE e.searchText CONTAINS lq AND e.namespace = $ns RETURN e " \
    "    UNION " \
    "    WITH lq MATCH (e:Entity {namespace: $ns, searchOverflow: true}) RETURN e " \
    "    UNION " \
    "    WITH lq MATCH (e:Entity:" GRAPH_SEARCH_STALE_LABEL ") WHERE e.namespace = $ns RETURN e } " \
    "  WITH e, lq, seen WHERE NOT e.name IN seen AND (toLower(e.name) CONTAINS lq " \
    "  OR toLower(e.entityType) CONTAINS lq " \
    "  OR any(o IN e.observations WHERE toLower(o) CONTAINS lq)) " \
    "  WITH e LIMIT " SUBSTRING_CANDIDATES " " \
    "  WITH e ORDER BY e.name LIMIT $lim " \
    "  RETURN collect(" GRAPH_ENTITY_PROJ("e") ") AS sub } "

static const char Q_KEYWORD[] = KEYWORD_LEGS "RETURN ft, sub";

static const char Q_ALL_BY_NAME[] =
    "MATCH (e:Entity {namespace: $ns}) " GRAPH_NS_SEEK("e") " "
    "RETURN " GRAPH_ENTITY_PROJ("e") " AS entity ORDER BY e.namespace, e.name LIMIT $lim";

/* The full-text statements' parameters, KEYWORD_LEGS' with query (new;
 * NULL on OOM, err set). */
static bolt_params *keyword_params(graph_store *g, const char *ns, const char *query, const char *phrase,
                                   size_t want, eg_error *err)
{
    bolt_params *p = graph__params(err);
    if (p == NULL)
        return NULL;
    bolt_params_str(p, "ns", ns);
    bolt_params_str(p, "index", g->opts.fulltext_index);
    bolt_params_str(p, "q", phrase);
    bolt_params_str(p, "raw", query);
    bolt_params_int(p, "lim", (int64_t)want);
    return p;
}

/*
 * Run a full-text statement (Q_FULLTEXT, or Q_ALL_BY_NAME for an empty
 * query) and append its entities, each with its score, to hits, and their
 * names to seen when seen is not NULL.
 */
static int fulltext_into(bolt_conn *c, graph_store *g, const char *cypher, const char *ns, const char *q,
                         size_t want, json_t *hits, json_t *seen, eg_error *err)
{
    bolt_params *p = keyword_params(g, ns, NULL, q, want, err); /* $raw unused: null */
    if (p == NULL)
        return EG_ENOMEM;
    json_t *rows = NULL;
    int rc = graph__q_params(c, cypher, p, &rows, err);
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        json_t *e = graph__entity_out(json_incref(json_object_get(row, "entity")));
        const json_t *sc = json_object_get(row, "score");
        json_object_set_new(e, "score", json_real(json_is_number(sc) ? json_number_value(sc) : 0.0));
        if (seen)
            json_array_append(seen, json_object_get(e, "name"));
        json_array_append_new(hits, e);
    }
    json_decref(rows);
    return rc;
}

/* A substring hit: score 0 and match "substring", appended to hits. */
static void append_substring_hit(json_t *hits, json_t *entity)
{
    json_t *e = graph__entity_out(json_incref(entity));
    json_object_set_new(e, "score", json_real(0.0));
    json_object_set_new(e, "match", json_string("substring"));
    json_array_append_new(hits, e);
}

/* A Q_KEYWORD row's ft and sub lists as hits: the full-text ones with their
 * score, then substring ones, want in all at most. */
static void keyword_row_hits(const json_t *row, size_t want, json_t *hits)
{
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(row, "ft"), i, x)
    {
        json_t *e = graph__entity_out(json_incref(json_object_get(x, "entity")));
        const json_t *sc = json_object_get(x, "score");
        json_object_set_new(e, "score", json_real(json_is_number(sc) ? json_number_value(sc) : 0.0));
        json_array_append_new(hits, e);
    }
    json_array_foreach(json_object_get(row, "sub"), i, x)
    {
        if (json_array_size(hits) >= want)
            break;
        append_substring_hit(hits, x);
    }
}

/* Q_KEYWORD: the full-text page of `phrase`, then the substring fill of
 * `query`, appended to hits (at most want in all). */
static int keyword_one_trip(bolt_conn *c, graph_store *g, const char *ns, const char *query, const char *phrase,
                            size_t want, json_t *hits, eg_error *err)
{
    bolt_params *p = keyword_params(g, ns, query, phrase, want, err);
    if (p == NULL)
        return EG_ENOMEM;
    json_t *rows = NULL;
    int rc = graph__q_params(c, Q_KEYWORD, p, &rows, err);
    keyword_row_hits(json_array_get(rows, 0), want, hits);
    json_decref(rows);
    return rc;
}

int graph__keyword_hits(bolt_conn *c, graph_store *g, const char *ns, const char *query,
                       size_t want, json_t **out, eg_error *err)
{
    *out = NULL;
    json_t *hits = json_array(), *seen = json_array();
    if (hits == NULL || seen == NULL) {
        json_decref(hits);
        json_decref(seen);
        return eg_error_oom(err);
    }
    char *phrase = NULL;
    int rc = 0;
    bool empty = query == NULL || query[0] == '\0';
    if (!empty)
        rc = graph_lucene_phrase(query, &phrase, err);
    json_t *rows = NULL;
    bolt_params *p = NULL;
    /* a phrase with the substring fill on: both legs in one statement */
    bool one_trip = rc == 0 && !empty && phrase != NULL && g->opts.substring_search;
    if (one_trip)
        rc = keyword_one_trip(c, g, ns, query, phrase, want, hits, err);
    else if (rc == 0 && (empty || phrase != NULL))
        rc = fulltext_into(c, g, empty ? Q_ALL_BY_NAME : Q_FULLTEXT, ns, phrase, want, hits, seen, err);
    bool phrase_was_null = phrase == NULL; /* punctuation only: substring is all we have */
    eg_free(phrase);
    if (rc == 0 && !one_trip && !empty && json_array_size(hits) < want &&
        (g->opts.substring_search || phrase_was_null)) {
        if ((p = graph__params(err)) == NULL)
            rc = EG_ENOMEM;
        if (rc == 0) {
            bolt_params_str(p, "ns", ns);
            bolt_params_str(p, "q", query);
            bolt_params_json(p, "seen", seen);
            bolt_params_int(p, "lim", (int64_t)(want - json_array_size(hits)));
            rc = graph__q_params(c, Q_SUBSTRING, p, &rows, err);
        }
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row)
            append_substring_hit(hits, json_object_get(row, "entity"));
        json_decref(rows);
    }
    json_decref(seen);
    if (rc != 0) {
        json_decref(hits);
        return rc;
    }
    *out = hits;
    return 0;
}

/*
 * The keyword leg of hybrid search: BM25 over the full-text index with one
 * term per word (graph_lucene_terms), so a question finds the entities that
 * share its words, ranked by how rare and how frequent those words are.  Only
 * when no term matches (a fragment of a word, a query of punctuation) does it
 * fall back to search_nodes' phrase and substring matching.
 */
static int term_hits(bolt_conn *c, graph_store *g, const char *ns, const char *query, size_t want, json_t **out,
                     eg_error *err)
{
    *out = NULL;
    char *terms = NULL;
    int rc = query && *query ? graph_lucene_terms(query, &terms, err) : 0;
    json_t *hits = json_array();
    if (hits == NULL)
        rc = eg_error_oom(err);
    if (rc == 0 && terms != NULL)
        rc = fulltext_into(c, g, Q_FULLTEXT_REF, ns, terms, want, hits, NULL, err);
    eg_free(terms);
    if (rc == 0 && json_array_size(hits) == 0 && query && *query) {
        json_decref(hits);
        return graph__keyword_hits(c, g, ns, query, want, out, err);
    }
    if (rc != 0) {
        json_decref(hits);
        return rc;
    }
    *out = hits;
    return 0;
}

/* Slice hits[off .. off+limit) under a byte budget into res (entities, nextCursor, truncated). */
static int slice_hits(json_t *hits, size_t off, size_t limit, size_t budget, json_t *res,
                      eg_error *err)
{
    json_t *ents = json_array();
    size_t used = 0, kept = 0, n = json_array_size(hits);
    bool truncated = false;
    for (size_t i = off; i < n && kept < limit; i++) {
        json_t *e = json_array_get(hits, i);
        size_t sz = graph__json_size(e);
        if (kept > 0 && used + sz > budget) {
            truncated = true;
            break;
        }
        used += sz;
        kept++;
        json_array_append(ents, e);
    }
    json_object_set_new(res, "entities", ents);
    if (off + kept < n) {
        char *cur = graph__cursor_offset(off + kept);
        if (cur == NULL)
            return eg_error_oom(err);
        json_object_set_new(res, "nextCursor", json_string(cur));
        eg_free(cur);
    }
    if (truncated)
        json_object_set_new(res, "truncated", json_true());
    return 0;
}

/*
 * The answered entities whole (GRAPH_ENTITY_PROJ) in place of the legs'
 * references: each hit keeps its scores, ranks and matched observations and
 * gains the entity's fields (Q_FETCH_ENTITIES).  A hit whose entity is gone
 * meanwhile (deleted by a concurrent write) is dropped.  *out: the
 * statement's parameters (new), NULL when there are no hits.
 */
static int fetch_params(const char *ns, const json_t *hits, bolt_params **out, eg_error *err)
{
    *out = NULL;
    if (json_array_size(hits) == 0)
        return 0;
    json_t *names = json_array();
    if (names == NULL)
        return eg_error_oom(err);
    size_t i;
    json_t *e;
    json_array_foreach(hits, i, e) json_array_append(names, json_object_get(e, "name"));
    bolt_params *p = graph__params(err);
    if (p != NULL) {
        bolt_params_str(p, "ns", ns);
        bolt_params_json(p, "names", names);
    }
    json_decref(names);
    if (p == NULL)
        return EG_ENOMEM;
    int rc = graph__params_check(p, err);
    if (rc != 0) {
        bolt_params_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

static int fetch_apply(json_t *hits, const json_t *rows, eg_error *err)
{
    json_t *by = json_object(), *row, *e;
    if (by == NULL)
        return eg_error_oom(err);
    size_t i;
    json_array_foreach(rows, i, row)
    {
        json_t *full = json_object_get(row, "entity");
        const char *name = graph__jstr(full, "name");
        if (name)
            json_object_set(by, name, full);
    }
    int rc = 0;
    for (i = 0; i < json_array_size(hits);) {
        e = json_array_get(hits, i);
        json_t *full = json_object_get(by, graph__jstr(e, "name"));
        if (full == NULL) {
            json_array_remove(hits, i);
            continue;
        }
        /* The entity's fields first, in their usual order, then the hit's own. */
        json_t *merged = graph__entity_out(json_deep_copy(full));
        if (merged == NULL || json_object_update_missing(merged, e) != 0) {
            json_decref(merged);
            rc = eg_error_oom(err);
            break;
        }
        if (json_array_set_new(hits, i, merged) != 0) { /* it took merged, even failing */
            rc = eg_error_oom(err);
            break;
        }
        i++;
    }
    json_decref(by);
    return rc;
}

/*
 * Of rels (the relations among a superset of the answered names, in their
 * order), those whose two ends were both answered, as res's "relations",
 * while they fit in what the entities left of the byte budget ("truncated"
 * when not all did).
 */
static int keep_relations(json_t *res, const json_t *rels, size_t budget, eg_error *err)
{
    json_t *names = json_object(), *kept = json_array(), *e;
    if (names == NULL || kept == NULL) {
        json_decref(names);
        json_decref(kept);
        return eg_error_oom(err);
    }
    size_t i, used = graph__json_size(json_object_get(res, "entities"));
    json_array_foreach(json_object_get(res, "entities"), i, e)
    {
        const char *name = graph__jstr(e, "name");
        if (name)
            json_object_set_new(names, name, json_true());
    }
    json_array_foreach(rels, i, e)
    {
        const char *from = graph__jstr(e, "from"), *to = graph__jstr(e, "to");
        if (!from || !to || !json_object_get(names, from) || !json_object_get(names, to))
            continue;
        size_t sz = graph__json_size(e);
        if (used + sz > budget) {
            json_object_set_new(res, "truncated", json_true());
            break;
        }
        used += sz;
        json_array_append(kept, e);
    }
    json_decref(names);
    json_object_set_new(res, "relations", kept);
    return 0;
}

typedef struct search_work {
    graph_ctx cx;
    const char *query;
    const graph_page *page;
    const float *vec;
    size_t dims;
    const graph_search_opts *so;
    graph_vec_source vec_src; /* hybrid: the vector comes from here, while the keyword legs run */
    void *vec_arg;
    bool vec_asked; /* vec_src was called (a retried transaction does not ask again) */
    json_t *result;
} search_work;

/*
 * search_nodes' matchedObservations: the phrase's hits on the observation
 * full-text index among the page's entities (by BM25, best first, at most
 * GRAPH_MATCHED_OBS_MAX each).  Entities found by name or type only, or by
 * the substring pass, get an empty list.
 */
static const char Q_PAGE_OBS[] =
    "CALL db.index.fulltext.queryNodes($index, $q) YIELD node, score "
    "WHERE node.namespace = $ns AND node:Observation AND node.entityId IN $ids "
    "WITH node, score LIMIT $k "
    "WITH node, score ORDER BY score DESC "
    "WITH node.entityId AS eid, collect({text: node.text, score: score})[0..$per] AS obs "
    "RETURN eid, obs";

/* Q_PAGE_OBS for the page's entities (each gets an empty matchedObservations
 * first); *out new, NULL when there is nothing to ask (no phrase, no ids). */
static int page_obs_params(graph_store *g, const char *ns, const char *query, json_t *page, bolt_params **out,
                           eg_error *err)
{
    *out = NULL;
    json_t *ids = json_array(), *e;
    if (ids == NULL)
        return eg_error_oom(err);
    size_t i;
    json_array_foreach(page, i, e)
    {
        json_object_set_new(e, "matchedObservations", json_array());
        if (json_is_string(json_object_get(e, "id")))
            json_array_append(ids, json_object_get(e, "id"));
    }
    char *phrase = NULL;
    int rc = query && *query && json_array_size(ids) ? graph_lucene_phrase(query, &phrase, err) : 0;
    if (rc == 0 && phrase != NULL) {
        bolt_params *p = graph__params(err);
        if (p == NULL) {
            rc = EG_ENOMEM;
        } else {
            bolt_params_str(p, "index", g->opts.obs_fulltext_index);
            bolt_params_str(p, "q", phrase);
            bolt_params_str(p, "ns", ns);
            bolt_params_json(p, "ids", ids);
            bolt_params_int(p, "k", (int64_t)(json_array_size(ids) * GRAPH_MATCHED_OBS_MAX * 4));
            bolt_params_int(p, "per", GRAPH_MATCHED_OBS_MAX);
            if ((rc = graph__params_check(p, err)) != 0)
                bolt_params_free(p);
            else
                *out = p;
        }
    }
    eg_free(phrase);
    json_decref(ids);
    return rc;
}

static void page_obs_apply(json_t *page, const json_t *rows)
{
    size_t i, j;
    json_t *row, *e;
    json_array_foreach(rows, i, row)
    {
        json_array_foreach(page, j, e)
        {
            if (json_equal(json_object_get(e, "id"), json_object_get(row, "eid")))
                json_object_set(e, "matchedObservations", json_object_get(row, "obs"));
        }
    }
}

/* What a page asks first, besides its relations. */
typedef enum page_first {
    PAGE_MATCHED_OBS, /* search_nodes: the phrase's observation hits (Q_PAGE_OBS) */
    PAGE_FETCH        /* vector and hybrid: the entities whole (Q_FETCH_ENTITIES) */
} page_first;

/*
 * A result page: hits[off .. off+limit) sliced under the byte budget into
 * res (entities, nextCursor, truncated), with the relations among the
 * answered entities.  The page's two statements, `first` and the relations
 * among its candidates, go in one round trip: the relations are asked for
 * every candidate, before the budget has cut any, and only those whose two
 * ends were answered are kept.  PAGE_FETCH reads every hit whole (its
 * callers pass the page alone: off 0, at most limit hits).
 */
static int finish_page(bolt_conn *c, graph_store *g, const char *ns, page_first first, const char *query,
                       json_t *hits, size_t off, size_t limit, size_t budget, json_t *res, eg_error *err)
{
    json_t *page = json_array(), *names = json_array();
    int rc = page && names ? 0 : eg_error_oom(err);
    for (size_t i = off; rc == 0 && i < json_array_size(hits) && i < off + limit; i++) {
        json_array_append(page, json_array_get(hits, i));
        json_array_append(names, json_object_get(json_array_get(hits, i), "name"));
    }
    bolt_params *ps[2] = {NULL, NULL};
    const char *cy[2] = {NULL, NULL};
    json_t *rows[2] = {NULL, NULL};
    if (rc == 0)
        rc = first == PAGE_FETCH ? fetch_params(ns, hits, &ps[0], err)
                                 : page_obs_params(g, ns, query, page, &ps[0], err);
    if (ps[0])
        cy[0] = first == PAGE_FETCH ? Q_FETCH_ENTITIES : Q_PAGE_OBS;
    if (rc == 0 && (rc = graph__relations_among_params(ns, names, &ps[1], err)) == 0 && ps[1])
        cy[1] = graph__q_relations_among;
    if (rc == 0)
        rc = graph__q_each(c, cy, ps, 2, rows, err);
    if (rc == 0 && first == PAGE_FETCH && cy[0])
        rc = fetch_apply(hits, rows[0], err);
    else if (rc == 0 && first == PAGE_MATCHED_OBS)
        page_obs_apply(page, rows[0]);
    if (rc == 0)
        rc = slice_hits(hits, off, limit, budget, res, err);
    json_t *rels = NULL;
    if (rc == 0)
        rc = graph__relations_from_rows(rows[1], &rels, err);
    if (rc == 0)
        rc = keep_relations(res, rels, budget, err);
    json_decref(rels);
    for (size_t i = 0; i < 2; i++) {
        bolt_params_free(ps[i]);
        json_decref(rows[i]);
    }
    json_decref(page);
    json_decref(names);
    return rc;
}

/*
 * The relations among `names` (a list the statement bound before), as
 * `rels`: graph__q_relations_among's rows in its order, in an aggregating
 * subquery that answers [] when there are no names.
 */
#define RELS_AMONG_NAMES \
    "CALL { WITH names WITH names WHERE size(names) > 0 " \
    "  UNWIND names AS n " \
    "  MATCH (a:Entity {namespace: $ns, name: n})-[r:RELATES_TO]->(b:Entity) " \
    "  WHERE b.namespace = $ns AND b.name IN names " \
    "  WITH a, r, b ORDER BY a.name, b.name, r.relationType " \
    "  RETURN collect(" GRAPH_REL_PROJ ") AS rels } "

/* A row's `rels` (RELS_AMONG_NAMES), each relation normalised in place
 * (graph__relation_out); borrowed from the row, NULL when it has none. */
static json_t *row_relations(const json_t *row)
{
    json_t *rels = json_object_get(row, "rels");
    size_t i;
    json_t *r;
    json_array_foreach(rels, i, r) graph__relation_out(r);
    return rels;
}

/*
 * search_nodes' whole page in one statement, when the keyword legs are
 * Q_KEYWORD's: the legs, then for the page's entities (hits
 * [$off .. $end)) what finish_page asks in its second exchange, the
 * phrase's observation hits (Q_PAGE_OBS) and the relations among them
 * (graph__q_relations_among), each an aggregating subquery answering []
 * for an empty page.
 */
static const char Q_SEARCH_PAGE[] =
    KEYWORD_LEGS
    "WITH ft, sub[0..($lim - size(ft))] AS sub "
    "WITH ft, sub, ([x IN ft | x.entity] + sub)[$off..$end] AS page "
    "WITH ft, sub, [p IN page | p.id] AS ids, [p IN page | p.name] AS names "
    "CALL { WITH ids WITH ids WHERE size(ids) > 0 "
    "  CALL db.index.fulltext.queryNodes($oindex, $q) YIELD node, score "
    "  WHERE node.namespace = $ns AND node:Observation AND node.entityId IN ids "
    "  WITH node, score LIMIT $k "
    "  WITH node, score ORDER BY score DESC "
    "  WITH node.entityId AS eid, collect({text: node.text, score: score})[0..$per] AS obs "
    "  RETURN collect({eid: eid, obs: obs}) AS mobs } "
    RELS_AMONG_NAMES
    "RETURN ft, sub, mobs, rels";

/* Q_SEARCH_PAGE into res: the page of `query` (phrase: its Lucene phrase)
 * from off, at most limit entities under budget, with their relations. */
static int search_page_one_trip(bolt_conn *c, graph_store *g, const char *ns, const char *query,
                                const char *phrase, size_t off, size_t limit, size_t budget, json_t *res,
                                eg_error *err)
{
    size_t want = off + limit + 1; /* one more than the page: is there a next one? */
    bolt_params *p = keyword_params(g, ns, query, phrase, want, err);
    if (p == NULL)
        return EG_ENOMEM;
    bolt_params_str(p, "oindex", g->opts.obs_fulltext_index);
    bolt_params_int(p, "off", (int64_t)off);
    bolt_params_int(p, "end", (int64_t)(off + limit));
    bolt_params_int(p, "k", (int64_t)(limit * GRAPH_MATCHED_OBS_MAX * 4));
    bolt_params_int(p, "per", GRAPH_MATCHED_OBS_MAX);
    json_t *rows = NULL;
    int rc = graph__q_params(c, Q_SEARCH_PAGE, p, &rows, err);
    json_t *hits = json_array();
    if (rc == 0 && hits == NULL)
        rc = eg_error_oom(err);
    const json_t *row = json_array_get(rows, 0);
    if (rc == 0) {
        keyword_row_hits(row, want, hits);
        for (size_t i = off; i < json_array_size(hits) && i < off + limit; i++)
            json_object_set_new(json_array_get(hits, i), "matchedObservations", json_array());
        page_obs_apply(hits, json_object_get(row, "mobs"));
        rc = slice_hits(hits, off, limit, budget, res, err);
    }
    if (rc == 0)
        rc = keep_relations(res, row_relations(row), budget, err);
    json_decref(hits);
    json_decref(rows);
    return rc;
}

static int search_nodes_fn(bolt_conn *c, void *payload, eg_error *err)
{
    search_work *w = payload;
    json_decref(w->result);
    w->result = json_object();
    if (w->result == NULL)
        return eg_error_oom(err);
    size_t off = 0, limit = graph__page_limit(w->cx.g, w->page, 10);
    int rc = graph__cursor_parse_offset(w->page ? w->page->cursor : NULL, &off, err);
    json_t *hits = NULL;
    size_t budget = graph__page_budget(w->cx.g, w->page);
    char *phrase = NULL;
    if (rc == 0 && w->query && *w->query && w->cx.g->opts.substring_search)
        rc = graph_lucene_phrase(w->query, &phrase, err);
    if (phrase != NULL) {
        rc = search_page_one_trip(c, w->cx.g, w->cx.ns, w->query, phrase, off, limit, budget, w->result, err);
        eg_free(phrase);
        return rc;
    }
    if (rc == 0)
        rc = graph__keyword_hits(c, w->cx.g, w->cx.ns, w->query, off + limit + 1, &hits, err);
    if (rc == 0)
        rc = finish_page(c, w->cx.g, w->cx.ns, PAGE_MATCHED_OBS, w->query, hits, off, limit, budget, w->result,
                         err);
    json_decref(hits);
    return rc;
}

static int check_query(const char *q, eg_error *err)
{
    if (q != NULL && strlen(q) > GRAPH_MAX_QUERY_BYTES)
        return eg_error_set(err, EG_ETOOBIG, EG_CLASS_CLIENT, "query longer than %u bytes",
                            GRAPH_MAX_QUERY_BYTES);
    return 0;
}

int graph_search_nodes(graph_store *g, const graph_req *req, const char *query,
                       const graph_page *page, json_t **out, eg_error *err)
{
    *out = NULL;
    search_work w = {0};
    w.query = query;
    w.page = page;
    int rc = graph__ctx_init(&w.cx, g, req, err);
    if (rc == 0)
        rc = check_query(query, err);
    return graph__run(g, GRAPH_TX_READ, search_nodes_fn, &w, rc, &w.result, out, err);
}

/* ---- vector ---- */

/* The guard in front of the index: only when the namespace's model record
 * names the query's model (or there is no record yet) is the index asked at
 * all, so a server that outlived a model switch finds nothing rather than
 * nonsense (vector_model.c). */
static const char Q_VECTOR[] =
    "OPTIONAL MATCH (m:EngramVectorModel {namespace: $ns}) "
    "WITH m WHERE m IS NULL OR (m.model = $model AND m.switchingTo IS NULL) "
    "CALL db.index.vector.queryNodes($index, $k, $vec) YIELD node, score "
    "WITH collect([node, score]) AS hits "
    "WITH size(hits) AS raw, CASE WHEN size(hits) > 0 THEN hits[-1][1] END AS lowest, "
    "size([h IN hits WHERE h[0].namespace = $ns]) AS inns, "
    "[h IN hits WHERE h[0].namespace = $ns AND h[1] >= $min "
    "AND (size($types) = 0 OR h[0].entityType IN $types)][0..$lim] AS kept "
    /* one row even when nothing is kept: the caller needs raw, inns and lowest */
    "UNWIND CASE WHEN size(kept) = 0 THEN [null] ELSE kept END AS h "
    "WITH raw, lowest, inns, h[0] AS node, h[1] AS score "
    "RETURN raw, lowest, inns, CASE WHEN node IS NOT NULL THEN " GRAPH_ENTITY_PROJ("node") " END AS entity, score "
    "ORDER BY score DESC";

static int check_vec(const graph_store *g, const float *vec, size_t dims, eg_error *err)
{
    if (vec == NULL || dims == 0)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "query vector missing");
    if (dims != g->opts.vector_dimensions)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "query vector has %zu dimensions, the index expects %zu", dims,
                            g->opts.vector_dimensions);
    for (size_t i = 0; i < dims; i++)
        if (!isfinite(vec[i]))
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "query vector has non-finite values");
    return 0;
}

static json_t *types_or_empty(const json_t *t)
{
    json_t *a = json_array();
    size_t i;
    json_t *x;
    json_array_foreach(t, i, x)
    {
        if (json_is_string(x))
            json_array_append(a, x);
    }
    return a;
}

/*
 * Grow a vector request: asking deeper helps only when the filters
 * (namespace, types) left the page short: the index returns neighbours best
 * first, so once its last one scores under min_similarity no deeper one
 * reaches it (and a request for 10,000 neighbours is slow).  When every
 * neighbour was the namespace's and no type filter applies, the page is
 * short because the namespace has few entities near the query (an entity may
 * own many of the neighbours): deeper ones are farther than all of those.
 */
static bool vec_deeper(size_t got, size_t want, size_t *k, const json_t *first, bool typed, double min_sim)
{
    int64_t raw = graph__jint(first, "raw", 0);
    const json_t *lowest = json_object_get(first, "lowest");
    bool foreign = graph__jint(first, "inns", raw) < raw;
    if (got >= want || *k >= VEC_FETCH_CAP || raw < (int64_t)*k || (!foreign && !typed) ||
        (json_is_number(lowest) && json_number_value(lowest) < min_sim))
        return false;
    *k = *k * 4 > VEC_FETCH_CAP ? VEC_FETCH_CAP : *k * 4;
    return true;
}

static bolt_params *vec_params(const graph_store *g, const char *index, const char *ns, const float *vec,
                               size_t dims, double min_sim, const json_t *types, size_t k, size_t want,
                               eg_error *err)
{
    bolt_params *p = graph__params(err);
    if (p == NULL)
        return NULL;
    bolt_params_str(p, "index", index);
    bolt_params_str(p, "model", g->opts.embedding_model);
    bolt_params_int(p, "k", (int64_t)k);
    bolt_params_float32_list(p, "vec", vec, dims);
    bolt_params_str(p, "ns", ns);
    bolt_params_float(p, "min", min_sim);
    bolt_params_json(p, "types", types);
    bolt_params_int(p, "lim", (int64_t)want);
    bolt_params_int(p, "per", GRAPH_MATCHED_OBS_MAX);
    return p;
}

/* How many entities a vector statement's rows kept (rows: one per entity, or one with "ents"). */
static size_t kept_entities(const json_t *rows, bool grouped)
{
    if (grouped)
        return json_array_size(json_object_get(json_array_get(rows, 0), "ents"));
    size_t got = 0;
    for (size_t r = 0; r < json_array_size(rows); r++)
        got += json_is_object(json_object_get(json_array_get(rows, r), "entity"));
    return got;
}

/*
 * Run a vector statement (Q_VECTOR, Q_OBS_VECTOR) on `index`, first `k`
 * neighbours deep, deeper while the filters leave fewer than `want`
 * entities (vec_deeper).  *rows (new) are the last answer's; none when the
 * model guard refused the index.
 */
static int vec_query(bolt_conn *c, graph_store *g, const char *cypher, const char *index, bool grouped,
                     const char *ns, const float *vec, size_t dims, double min_sim, const json_t *types,
                     size_t want, size_t k, json_t **rows, eg_error *err)
{
    *rows = NULL;
    json_t *ty = types_or_empty(types);
    if (k > VEC_FETCH_CAP)
        k = VEC_FETCH_CAP;
    int rc = 0;
    for (;;) {
        bolt_params *p = vec_params(g, index, ns, vec, dims, min_sim, ty, k, want, err);
        if (p == NULL) {
            rc = EG_ENOMEM;
            break;
        }
        json_decref(*rows);
        *rows = NULL;
        rc = graph__q_params(c, cypher, p, rows, err);
        if (rc != 0)
            break;
        const json_t *first = json_array_get(*rows, 0);
        if (first == NULL) /* the model guard refused the index */
            break;
        if (!vec_deeper(kept_entities(*rows, grouped), want, &k, first, json_array_size(ty) > 0, min_sim))
            break;
    }
    json_decref(ty);
    if (rc != 0) {
        json_decref(*rows);
        *rows = NULL;
    }
    return rc;
}

/* Vector hits on the whole-entity index (entities + "score"), best first, up to `want`. */
static int vector_hits(bolt_conn *c, graph_store *g, const char *ns, const float *vec, size_t dims,
                       double min_sim, const json_t *types, size_t want, json_t **out,
                       eg_error *err)
{
    *out = NULL;
    json_t *rows = NULL;
    int rc = vec_query(c, g, Q_VECTOR, g->opts.vector_index, false, ns, vec, dims, min_sim, types, want,
                       want * 4 < 100 ? 100 : want * 4, &rows, err);
    if (rc != 0)
        return rc;
    json_t *hits = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        if (!json_is_object(json_object_get(row, "entity")))
            continue;
        json_t *e = graph__entity_out(json_incref(json_object_get(row, "entity")));
        json_object_set(e, "score", json_object_get(row, "score"));
        json_array_append_new(hits, e);
    }
    json_decref(rows);
    *out = hits;
    return 0;
}

/* ---- observation legs ----
 *
 * Both return, best entity first, {"entity": <entity>, "obs": [{id, text,
 * score}]}: the entity's best-matching live observations (at most
 * GRAPH_MATCHED_OBS_MAX, best first), the entity's own place given by its
 * best one.  Only the indexes are read: the vector index over-fetches like
 * the entity one (it cannot pre-filter either), the full-text one streams
 * its hits best first and stops at $k of the namespace's.  A hit must still
 * be :Observation: the full-text index is eventually consistent, so it may
 * return a record closed a moment ago.  The vector leg groups its hits by
 * entity id before it reads the entities: one seek per entity, not one per
 * neighbour (hundreds).
 */

#define OBS_VECTOR_LEG(proj) \
    "OPTIONAL MATCH (m:EngramVectorModel {namespace: $ns}) " \
    "WITH m WHERE m IS NULL OR (m.model = $model AND m.switchingTo IS NULL) " \
    "CALL db.index.vector.queryNodes($index, $k, $vec) YIELD node, score " \
    "WITH collect([node, score]) AS hits " \
    "WITH size(hits) AS raw, CASE WHEN size(hits) > 0 THEN hits[-1][1] END AS lowest, " \
    "size([h IN hits WHERE h[0].namespace = $ns]) AS inns, " \
    "[h IN hits WHERE h[0].namespace = $ns AND h[1] >= $min AND h[0]:Observation] AS kept " \
    "CALL { WITH kept UNWIND kept AS h " \
    "  WITH h[0] AS o, h[1] AS score ORDER BY score DESC " \
    "  WITH o.entityId AS eid, collect({id: o.id, text: o.text, score: score})[0..$per] AS obs " \
    "  MATCH (e:Entity {id: eid}) WHERE e.namespace = $ns AND (size($types) = 0 OR e.entityType IN $types) " \
    "  WITH e, obs ORDER BY obs[0].score DESC LIMIT $lim " \
    "  RETURN collect({entity: " proj ", obs: obs}) AS ents } "

static const char Q_OBS_VECTOR[] = OBS_VECTOR_LEG(ENTITY_REF("e")) "RETURN raw, lowest, inns, ents";

/*
 * Vector-only search's whole answer in one statement: the leg keeps at most
 * $lim entities (the page), so it reads them whole, and the relations among
 * them, instead of a second exchange for both (finish_page).
 */
static const char Q_OBS_VECTOR_PAGE[] =
    OBS_VECTOR_LEG(GRAPH_ENTITY_PROJ("e"))
    "WITH raw, lowest, inns, ents, [x IN ents | x.entity.name] AS names "
    RELS_AMONG_NAMES
    "RETURN raw, lowest, inns, ents, rels";

/* With entity_types the type filter must apply before $k, so each hit reads its entity. */
static const char Q_OBS_FULLTEXT_TYPED[] =
    "CALL db.index.fulltext.queryNodes($index, $q) YIELD node, score "
    "WHERE node.namespace = $ns AND node:Observation "
    "MATCH (e:Entity {id: node.entityId}) WHERE e.namespace = $ns AND e.entityType IN $types "
    "WITH e, node, score LIMIT $k "
    "WITH e, node, score ORDER BY score DESC "
    "WITH e, collect({id: node.id, text: node.text, score: score})[0..$per] AS obs "
    "ORDER BY obs[0].score DESC LIMIT $lim "
    "RETURN " ENTITY_REF("e") " AS entity, obs";

/* Without: the first $k hits, grouped by entity id, then one seek per entity. */
static const char Q_OBS_FULLTEXT[] =
    "CALL db.index.fulltext.queryNodes($index, $q) YIELD node, score "
    "WHERE node.namespace = $ns AND node:Observation "
    "WITH node, score LIMIT $k "
    "WITH node, score ORDER BY score DESC "
    "WITH node.entityId AS eid, collect({id: node.id, text: node.text, score: score})[0..$per] AS obs "
    "MATCH (e:Entity {id: eid}) WHERE e.namespace = $ns "
    "WITH e, obs ORDER BY obs[0].score DESC LIMIT $lim "
    "RETURN " ENTITY_REF("e") " AS entity, obs";

/* Normalise rows {entity, obs} of an observation leg into *out (new). */
static json_t *obs_leg_out(const json_t *rows)
{
    json_t *out = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const json_t *obs = json_object_get(row, "obs");
        if (!json_is_object(json_object_get(row, "entity")) || json_array_size(obs) == 0)
            continue;
        json_t *e = graph__entity_out(json_deep_copy(json_object_get(row, "entity")));
        json_array_append_new(out, json_pack("{s:o, s:O}", "entity", e, "obs", obs));
    }
    return out;
}

/*
 * Vector hits on the observation index: entities with their best-matching
 * observations, up to `want`.  rels NULL: the entities are references (the
 * leg of hybrid search); else they are whole (Q_OBS_VECTOR_PAGE) and *rels
 * (new, NULL when there are none) the relations among them.
 */
static int obs_vector_leg(bolt_conn *c, graph_store *g, const char *ns, const float *vec, size_t dims,
                          double min_sim, const json_t *types, size_t want, json_t **out, json_t **rels,
                          eg_error *err)
{
    *out = NULL;
    json_t *rows = NULL;
    /* An entity may hold many of the nearest observations: ten neighbours per entity wanted. */
    int rc = vec_query(c, g, rels ? Q_OBS_VECTOR_PAGE : Q_OBS_VECTOR, g->opts.obs_vector_index, true, ns, vec,
                       dims, min_sim, types, want, want * 10 < 100 ? 100 : want * 10, &rows, err);
    const json_t *row = json_array_get(rows, 0);
    if (rc == 0 && (*out = obs_leg_out(json_object_get(row, "ents"))) == NULL)
        rc = eg_error_oom(err);
    if (rc == 0 && rels != NULL)
        *rels = json_incref(row_relations(row));
    json_decref(rows);
    return rc;
}

/* Full-text hits on the observation index for a Lucene query (terms or phrase), up to `want` entities. */
static int obs_keyword_leg(bolt_conn *c, graph_store *g, const char *ns, const char *lucene, const json_t *types,
                           size_t want, json_t **out, eg_error *err)
{
    *out = NULL;
    bolt_params *p = graph__params(err);
    if (p == NULL)
        return EG_ENOMEM;
    json_t *ty = types_or_empty(types);
    bolt_params_str(p, "index", g->opts.obs_fulltext_index);
    bolt_params_str(p, "q", lucene);
    bolt_params_str(p, "ns", ns);
    bolt_params_json(p, "types", ty);
    /* As many observations as the vector leg looks at, so the two legs see alike depths. */
    bolt_params_int(p, "k", (int64_t)(want * 10 < 100 ? 100 : want * 10));
    bolt_params_int(p, "lim", (int64_t)want);
    bolt_params_int(p, "per", GRAPH_MATCHED_OBS_MAX);
    bool typed = json_array_size(ty) > 0;
    json_decref(ty);
    json_t *rows = NULL;
    int rc = graph__q_params(c, typed ? Q_OBS_FULLTEXT_TYPED : Q_OBS_FULLTEXT, p, &rows, err);
    if (rc == 0 && (*out = obs_leg_out(rows)) == NULL)
        rc = eg_error_oom(err);
    json_decref(rows);
    return rc;
}

/* ---- assembling observation-level results ---- */

static int ranked_desc(const void *a, const void *b)
{
    const graph_ranked *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return strcmp(x->key, y->key);
}

/*
 * The observations of a leg as one ranking (keys: observation ids, best
 * first across entities), and into `info` id -> {text, entity name}.
 * *out is new (eg_free), *n its length.
 */
static int obs_ranking(const json_t *leg, json_t *info, graph_ranked **out, size_t *n, eg_error *err)
{
    size_t total = 0, i, j, m = 0;
    json_t *x, *o;
    json_array_foreach(leg, i, x) total += json_array_size(json_object_get(x, "obs"));
    graph_ranked *r = eg_calloc(total + 1, sizeof *r);
    if (r == NULL)
        return eg_error_oom(err);
    json_array_foreach(leg, i, x)
    {
        const char *name = graph__jstr(json_object_get(x, "entity"), "name");
        json_array_foreach(json_object_get(x, "obs"), j, o)
        {
            const char *id = graph__jstr(o, "id");
            if (id == NULL || name == NULL)
                continue;
            if (json_object_get(info, id) == NULL &&
                json_object_set_new(info, id, json_pack("{s:O, s:s}", "text", json_object_get(o, "text"),
                                                        "entity", name)) != 0) {
                eg_free(r);
                return eg_error_oom(err);
            }
            /* The id is borrowed from the leg, which outlives the ranking. */
            r[m].key = id;
            r[m].score = json_number_value(json_object_get(o, "score"));
            m++;
        }
    }
    qsort(r, m, sizeof *r, ranked_desc);
    *out = r;
    *n = m;
    return 0;
}

/*
 * matchedObservations for every entity: the observations of both legs fused
 * one by one (graph_score_fuse, the same weight as the entities), so a
 * score compares across entities; per entity the best GRAPH_MATCHED_OBS_MAX.
 * With vector_only the score is the similarity itself, as the entities' is in
 * semantic search.  *out (new): entity name -> [{text, score, ...}].
 */
static int matched_observations(const json_t *kw_leg, const json_t *vec_leg, double weight, bool vector_only,
                                json_t **out, eg_error *err)
{
    *out = NULL;
    json_t *info = json_object(), *by = json_object();
    graph_ranked *rk = NULL, *rv = NULL;
    graph_fused *f = NULL;
    size_t nk = 0, nv = 0, nf = 0;
    int rc = info && by ? 0 : eg_error_oom(err);
    if (rc == 0)
        rc = obs_ranking(kw_leg, info, &rk, &nk, err);
    if (rc == 0)
        rc = obs_ranking(vec_leg, info, &rv, &nv, err);
    if (rc == 0)
        rc = graph_score_fuse(rk, nk, rv, nv, weight, &f, &nf, err);
    for (size_t i = 0; rc == 0 && i < nf; i++) {
        const json_t *in = json_object_get(info, f[i].key);
        const char *name = graph__jstr(in, "entity");
        json_t *list = json_object_get(by, name);
        if (list == NULL) {
            list = json_array();
            if (list == NULL || json_object_set_new(by, name, list) != 0) {
                rc = eg_error_oom(err);
                break;
            }
        }
        if (json_array_size(list) >= GRAPH_MATCHED_OBS_MAX)
            continue;
        json_t *m = json_pack("{s:O, s:f}", "text", json_object_get(in, "text"), "score",
                              vector_only ? f[i].vector_score : f[i].score);
        if (m == NULL) {
            rc = eg_error_oom(err);
            break;
        }
        if (f[i].vector_rank) {
            json_object_set_new(m, "similarity", json_real(f[i].vector_score));
            json_object_set_new(m, "vectorRank", json_integer(f[i].vector_rank));
        }
        if (f[i].keyword_rank) {
            json_object_set_new(m, "keywordScore", json_real(f[i].keyword_score));
            json_object_set_new(m, "keywordRank", json_integer(f[i].keyword_rank));
        }
        json_array_append_new(list, m);
    }
    eg_free(rk);
    eg_free(rv);
    eg_free(f);
    json_decref(info);
    if (rc != 0) {
        json_decref(by);
        return rc;
    }
    *out = by;
    return 0;
}

/*
 * The vector ranking of entities: each entity by its best similarity, over
 * its observations (the observation index) and, with the whole-entity
 * vector kept, its own vector as one more candidate text.  `pool` collects
 * name -> entity.  *out (new): [{name, score}] best first.
 */
static json_t *entity_vector_ranking(const json_t *obs_leg, const json_t *ent_hits, json_t *pool)
{
    json_t *best = json_object(), *out = json_array();
    size_t i;
    json_t *x;
    json_array_foreach(obs_leg, i, x)
    {
        json_t *e = json_object_get(x, "entity");
        const char *name = graph__jstr(e, "name");
        double s = json_number_value(json_object_get(json_array_get(json_object_get(x, "obs"), 0), "score"));
        if (name == NULL)
            continue;
        json_object_set_new(best, name, json_real(s));
        if (json_object_get(pool, name) == NULL)
            json_object_set(pool, name, e);
    }
    json_array_foreach(ent_hits, i, x)
    {
        const char *name = graph__jstr(x, "name");
        double s = json_number_value(json_object_get(x, "score"));
        if (name == NULL)
            continue;
        const json_t *had = json_object_get(best, name);
        if (had == NULL || json_number_value(had) < s)
            json_object_set_new(best, name, json_real(s));
        if (json_object_get(pool, name) == NULL)
            json_object_set(pool, name, x);
    }
    const char *k;
    json_t *v;
    json_object_foreach(best, k, v) json_array_append_new(out, json_pack("{s:s, s:O}", "name", k, "score", v));
    json_decref(best);
    return out;
}

/* Flatten [{name, score}] or [entity + score] into graph_ranked, sorted best first when `sort`. */
static graph_ranked *ranked_of(const json_t *list, bool sort)
{
    size_t n = json_array_size(list);
    graph_ranked *r = eg_calloc(n + 1, sizeof *r);
    if (r == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        r[i].key = graph__jstr(json_array_get(list, i), "name");
        r[i].score = json_number_value(json_object_get(json_array_get(list, i), "score"));
    }
    if (sort)
        qsort(r, n, sizeof *r, ranked_desc);
    return r;
}

static double norm_min(const graph_search_opts *so)
{
    double m = so ? so->min_similarity : 0.6;
    return (isnan(m) || m < 0) ? 0.0 : m;
}

static size_t norm_limit(const graph_search_opts *so)
{
    size_t l = (so && so->limit) ? so->limit : 10;
    return l > GRAPH_MAX_LIMIT ? GRAPH_MAX_LIMIT : l;
}

static size_t norm_budget(const graph_store *g, const graph_search_opts *so)
{
    return (so && so->max_bytes) ? so->max_bytes : g->opts.max_response_bytes;
}

/* Both vector legs: the observation index and (GRAPH_SEARCH_ENTITY_VECTOR) the whole-entity one. */
static int vector_legs(bolt_conn *c, graph_store *g, const char *ns, const float *vec, size_t dims,
                       const graph_search_opts *so, size_t want, json_t **obs_leg, json_t **ent_hits, eg_error *err)
{
    const json_t *types = so ? so->entity_types : NULL;
    int rc = obs_vector_leg(c, g, ns, vec, dims, norm_min(so), types, want, obs_leg, NULL, err);
    if (rc == 0 && GRAPH_SEARCH_ENTITY_VECTOR)
        rc = vector_hits(c, g, ns, vec, dims, norm_min(so), types, want, ent_hits, err);
    else if (rc == 0)
        *ent_hits = json_array();
    if (rc == 0 && *ent_hits == NULL)
        rc = eg_error_oom(err);
    return rc;
}

static int semantic_fn(bolt_conn *c, void *payload, eg_error *err)
{
    search_work *w = payload;
    json_decref(w->result);
    w->result = json_pack("{ss}", "searchType", "semantic");
    if (w->result == NULL)
        return eg_error_oom(err);
    size_t limit = norm_limit(w->so);
    json_t *oleg = NULL, *ehits = NULL, *pool = json_object(), *ranking = NULL, *matched = NULL,
           *hits = json_array(), *rels = NULL;
    int rc = pool && hits ? 0 : eg_error_oom(err);
    /* When the observation leg alone ranks, the page is its entities: one
     * statement reads them whole with their relations (Q_OBS_VECTOR_PAGE);
     * ehits stays NULL, no entity-index hits. */
    bool one_trip = !GRAPH_SEARCH_ENTITY_VECTOR;
    if (rc == 0 && one_trip)
        rc = obs_vector_leg(c, w->cx.g, w->cx.ns, w->vec, w->dims, norm_min(w->so),
                            w->so ? w->so->entity_types : NULL, limit, &oleg, &rels, err);
    else if (rc == 0)
        rc = vector_legs(c, w->cx.g, w->cx.ns, w->vec, w->dims, w->so, limit, &oleg, &ehits, err);
    if (rc == 0 && (ranking = entity_vector_ranking(oleg, ehits, pool)) == NULL)
        rc = eg_error_oom(err);
    if (rc == 0)
        rc = matched_observations(NULL, oleg, 1.0, true, &matched, err);
    graph_ranked *r = rc == 0 ? ranked_of(ranking, true) : NULL;
    if (rc == 0 && r == NULL)
        rc = eg_error_oom(err);
    for (size_t i = 0; rc == 0 && i < json_array_size(ranking) && i < limit; i++) {
        json_t *e = json_deep_copy(json_object_get(pool, r[i].key));
        json_object_set_new(e, "score", json_real(r[i].score));
        json_t *mo = json_object_get(matched, r[i].key);
        json_object_set_new(e, "matchedObservations", mo ? json_incref(mo) : json_array());
        json_array_append_new(hits, e);
    }
    eg_free(r);
    size_t budget = norm_budget(w->cx.g, w->so);
    if (rc == 0 && one_trip) {
        rc = slice_hits(hits, 0, limit, budget, w->result, err);
        if (rc == 0)
            rc = keep_relations(w->result, rels, budget, err);
    } else if (rc == 0) {
        rc = finish_page(c, w->cx.g, w->cx.ns, PAGE_FETCH, NULL, hits, 0, limit, budget, w->result, err);
    }
    json_object_del(w->result, "nextCursor"); /* vector results are not paged */
    json_decref(rels);
    json_decref(oleg);
    json_decref(ehits);
    json_decref(pool);
    json_decref(ranking);
    json_decref(matched);
    json_decref(hits);
    return rc;
}

int graph_semantic_search(graph_store *g, const graph_req *req, const float *vec, size_t dims,
                          const graph_search_opts *o, json_t **out, eg_error *err)
{
    *out = NULL;
    search_work w = {0};
    w.vec = vec;
    w.dims = dims;
    w.so = o;
    int rc = graph__ctx_init(&w.cx, g, req, err);
    if (rc == 0)
        rc = check_vec(g, vec, dims, err);
    return graph__run(g, GRAPH_TX_READ, semantic_fn, &w, rc, &w.result, out, err);
}

/*
 * Whether the namespace has any vector (an entity's, else an observation's):
 * without one, hybrid search says it is keyword search.  While nothing is
 * embedded yet this reads the namespace's entities (and observations) once.
 */
static int has_vectors(bolt_conn *c, const char *ns, bool *out, eg_error *err)
{
    static const char *const q[] = {
        "MATCH (e:Entity {namespace: $ns}) " GRAPH_NS_SEEK("e") " AND e.embedding IS NOT NULL "
        "RETURN e.name AS n LIMIT 1",
        "MATCH (o:ObservationRecord:Observation) WHERE o.namespace = $ns AND o.embedding IS NOT NULL "
        "RETURN o.id AS n LIMIT 1",
    };
    *out = false;
    int rc = 0;
    for (size_t i = 0; rc == 0 && !*out && i < sizeof q / sizeof q[0]; i++) {
        bolt_params *p = graph__params(err);
        if (p == NULL)
            return EG_ENOMEM;
        bolt_params_str(p, "ns", ns);
        json_t *rows = NULL;
        rc = graph__q_params(c, q[i], p, &rows, err);
        if (rc == 0)
            *out = json_array_size(rows) > 0;
        json_decref(rows);
    }
    return rc;
}

/* Keep the hits whose entityType is one of types (none given: all). New. */
static json_t *filter_types(json_t *hits, const json_t *types)
{
    json_t *f = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(hits, i, e)
    {
        size_t j;
        json_t *t;
        bool ok = json_array_size(types) == 0;
        json_array_foreach(types, j, t) if (json_equal(t, json_object_get(e, "entityType"))) ok = true;
        if (ok)
            json_array_append(f, e);
    }
    return f;
}

/* The keyword legs of hybrid search: entities by terms (entity index) and observations by terms. */
static int keyword_legs(bolt_conn *c, search_work *w, size_t want, json_t **kw, json_t **okw, eg_error *err)
{
    const json_t *types = w->so ? w->so->entity_types : NULL;
    json_t *all = NULL;
    int rc = term_hits(c, w->cx.g, w->cx.ns, w->query, want, &all, err);
    /* entity_types applies to the keyword leg too. */
    if (rc == 0 && (*kw = filter_types(all, types)) == NULL)
        rc = eg_error_oom(err);
    json_decref(all);
    char *terms = NULL;
    if (rc == 0 && w->query && *w->query)
        rc = graph_lucene_terms(w->query, &terms, err);
    if (rc == 0 && terms != NULL)
        rc = obs_keyword_leg(c, w->cx.g, w->cx.ns, terms, types, want, okw, err);
    else if (rc == 0 && (*okw = json_array()) == NULL)
        rc = eg_error_oom(err);
    eg_free(terms);
    return rc;
}

/* keyword_legs as a unit of work of its own, for graph__beside. */
typedef struct keyword_legs_work {
    search_work *w;
    size_t want;
    json_t *kw, *okw;
    int64_t us; /* how long the legs took, for the debug line */
} keyword_legs_work;

static int keyword_legs_fn(bolt_conn *c, void *payload, eg_error *err)
{
    keyword_legs_work *k = payload;
    json_decref(k->kw);
    json_decref(k->okw);
    k->kw = k->okw = NULL;
    int64_t t0 = eg_mono_us();
    int rc = keyword_legs(c, k->w, k->want, &k->kw, &k->okw, err);
    k->us = eg_mono_us() - t0;
    return rc;
}

static void set_hybrid_type(search_work *w, bool vectors, double weight)
{
    if (w->vec != NULL && vectors) {
        json_object_set_new(w->result, "searchType", json_string("hybrid"));
        json_object_set_new(w->result, "semanticWeight", json_real(weight < 0 ? 0 : weight > 1 ? 1 : weight));
        return;
    }
    json_object_set_new(w->result, "searchType", json_string("keyword"));
    json_object_set_new(w->result, "fallback", json_string("keyword"));
    json_object_set_new(w->result, "note",
                        json_string(w->vec == NULL ? "no query vector (embedding provider unavailable); "
                                                     "keyword search only"
                                                   : "no entity in this namespace has an embedding yet; "
                                                     "keyword search only"));
}

/* One fused entity as a result: its entity with the scores, ranks and matched observations. */
static json_t *fused_entity(const graph_fused *f, const json_t *pool, const json_t *matched)
{
    json_t *e = json_deep_copy(json_object_get(pool, f->key));
    if (e == NULL)
        return NULL;
    json_object_set_new(e, "score", json_real(f->score));
    json_object_set_new(e, "keywordRank", f->keyword_rank ? json_integer(f->keyword_rank) : json_null());
    json_object_set_new(e, "keywordScore", f->keyword_rank ? json_real(f->keyword_score) : json_null());
    json_object_set_new(e, "vectorRank", f->vector_rank ? json_integer(f->vector_rank) : json_null());
    if (f->vector_rank)
        json_object_set_new(e, "similarity", json_real(f->vector_score));
    else
        json_object_del(e, "similarity");
    json_object_del(e, "match");
    json_t *mo = json_deep_copy(json_object_get(matched, f->key));
    if (mo == NULL)
        mo = json_array();
    /* An observation's score is read in its entity's context: the mean of
     * its own fused score and its entity's.  A turn of a session that
     * matches the query as a whole is likelier the one asked about than an
     * equally scored turn of a session that does not (passage retrieval's
     * old lesson), and a client that ranks the matched observations of all
     * results together gets that order.  Equal weights, not fitted; within
     * one entity the order is unchanged.  The own score stays readable. */
    size_t i;
    json_t *o;
    json_array_foreach(mo, i, o)
    {
        double own = json_number_value(json_object_get(o, "score"));
        json_object_set_new(o, "observationScore", json_real(own));
        json_object_set_new(o, "score", json_real((own + f->score) / 2.0));
    }
    json_object_set_new(e, "matchedObservations", mo);
    return e;
}

static int hybrid_fn(bolt_conn *c, void *payload, eg_error *err)
{
    search_work *w = payload;
    json_decref(w->result);
    w->result = json_object();
    if (w->result == NULL)
        return eg_error_oom(err);
    size_t limit = norm_limit(w->so);
    size_t want = limit * 3 < 30 ? 30 : limit * 3;
    if (want > 3 * GRAPH_MAX_LIMIT)
        want = 3 * GRAPH_MAX_LIMIT;
    double weight = w->so ? w->so->semantic_weight : GRAPH_SEMANTIC_WEIGHT;
    json_t *kw = NULL, *okw = NULL, *oleg = NULL, *ehits = NULL, *vrank = NULL, *matched = NULL;
    json_t *pool = json_object(), *hits = json_array();
    bool vectors = false;
    int rc = pool && hits ? 0 : eg_error_oom(err);
    /* The keyword legs run beside the rest (graph__beside): on 2 cores
     * Neo4j answers them while this thread waits for the query vector and
     * asks the vector index, so the search costs the longer side, not the
     * sum.  Where the time went, at debug level: the wait for the query
     * vector, the vector leg, the wait for the keyword legs (and their own
     * time), fusion, the page (docs/operations.md). */
    keyword_legs_work kl = {.w = w, .want = want};
    graph_beside kb;
    if (rc == 0)
        graph__beside_start(&kb, w->cx.g, keyword_legs_fn, &kl);
    bool kb_started = rc == 0;
    int64_t t0 = eg_mono_us(), t_wait = 0, t_vec = 0, t_kw = 0, t_fuse = 0;
    if (rc == 0 && w->vec_src != NULL && !w->vec_asked) {
        w->vec_asked = true;
        rc = w->vec_src(w->vec_arg, &w->vec, &w->dims, err);
        if (rc == 0 && w->vec != NULL)
            rc = check_vec(w->cx.g, w->vec, w->dims, err);
        if (rc != 0)
            err->retryable = false; /* the caller's verdict, not Neo4j's: never retried */
    }
    t_wait = eg_mono_us();
    if (rc == 0 && w->vec != NULL)
        rc = vector_legs(c, w->cx.g, w->cx.ns, w->vec, w->dims, w->so, want, &oleg, &ehits, err);
    t_vec = eg_mono_us();
    if (kb_started) {
        eg_error ignored; /* after a failure here, the keyword legs' own is not the answer */
        eg_error_clear(&ignored);
        int krc = graph__beside_join(&kb, rc == 0 ? c : NULL, rc == 0 ? err : &ignored);
        if (rc == 0)
            rc = krc;
        kw = kl.kw;
        okw = kl.okw;
    }
    t_kw = eg_mono_us();
    /* A vector leg that finds anything proves the namespace has vectors;
     * only an empty one needs the question asked (one statement less on
     * every search that matters). */
    if (rc == 0 && w->vec != NULL) {
        vectors = json_array_size(oleg) > 0 || json_array_size(ehits) > 0;
        if (!vectors)
            rc = has_vectors(c, w->cx.ns, &vectors, err);
    }
    double wt = w->vec && vectors ? weight : 0.0;
    /* Keyword entities first: an entity both legs found keeps the keyword
     * leg's copy, as before (it may carry "match"; fused_entity drops it). */
    size_t i;
    json_t *x;
    json_array_foreach(kw, i, x)
    {
        json_object_set(pool, graph__jstr(x, "name"), x);
    }
    json_array_foreach(okw, i, x)
    {
        json_t *e = json_object_get(x, "entity");
        if (json_object_get(pool, graph__jstr(e, "name")) == NULL)
            json_object_set(pool, graph__jstr(e, "name"), e);
    }
    if (rc == 0 && (vrank = entity_vector_ranking(oleg, ehits, pool)) == NULL)
        rc = eg_error_oom(err);
    if (rc == 0)
        rc = matched_observations(okw, oleg, wt, false, &matched, err);
    graph_ranked *rk = rc == 0 ? ranked_of(kw, false) : NULL, *rv = rc == 0 ? ranked_of(vrank, true) : NULL;
    graph_fused *fused = NULL;
    size_t nf = 0;
    if (rc == 0 && (rk == NULL || rv == NULL))
        rc = eg_error_oom(err);
    if (rc == 0)
        rc = graph_score_fuse(rk, json_array_size(kw), rv, json_array_size(vrank), wt, &fused, &nf, err);
    for (i = 0; rc == 0 && i < nf && i < limit; i++) {
        json_t *e = fused_entity(&fused[i], pool, matched);
        if (e == NULL || json_array_append_new(hits, e) != 0)
            rc = eg_error_oom(err);
    }
    eg_free(rk);
    eg_free(rv);
    eg_free(fused);
    size_t budget = norm_budget(w->cx.g, w->so);
    t_fuse = eg_mono_us();
    if (rc == 0)
        rc = finish_page(c, w->cx.g, w->cx.ns, PAGE_FETCH, NULL, hits, 0, limit, budget, w->result, err);
    json_object_del(w->result, "nextCursor");
    if (rc == 0)
        set_hybrid_type(w, vectors, weight);
    int64_t t_end = eg_mono_us();
    EG_DEBUG("graph",
             "hybrid search: waited %.1f ms for the query vector, vector leg %.1f ms, then %.1f ms for the "
             "keyword legs (beside, %.1f ms of their own), fusion %.1f ms, the page (entities whole and their "
             "relations, one round trip) %.1f ms",
             (double)(t_wait - t0) / 1e3, (double)(t_vec - t_wait) / 1e3, (double)(t_kw - t_vec) / 1e3,
             (double)kl.us / 1e3, (double)(t_fuse - t_kw) / 1e3, (double)(t_end - t_fuse) / 1e3);
    json_decref(kw);
    json_decref(okw);
    json_decref(oleg);
    json_decref(ehits);
    json_decref(vrank);
    json_decref(matched);
    json_decref(pool);
    json_decref(hits);
    return rc;
}

/* Either a vector given up front (vec, may be NULL) or one asked of src while the keyword legs run. */
static int hybrid_run(graph_store *g, const graph_req *req, const char *query, const float *vec, size_t dims,
                      graph_vec_source src, void *arg, const graph_search_opts *o, json_t **out, eg_error *err)
{
    *out = NULL;
    search_work w = {0};
    w.query = query;
    w.vec = vec;
    w.dims = dims;
    w.vec_src = src;
    w.vec_arg = arg;
    w.so = o;
    int rc = graph__ctx_init(&w.cx, g, req, err);
    if (rc == 0)
        rc = check_query(query, err);
    if (rc == 0 && vec != NULL)
        rc = check_vec(g, vec, dims, err);
    return graph__run(g, GRAPH_TX_READ, hybrid_fn, &w, rc, &w.result, out, err);
}

int graph_hybrid_search(graph_store *g, const graph_req *req, const char *query, const float *vec,
                        size_t dims, const graph_search_opts *o, json_t **out, eg_error *err)
{
    return hybrid_run(g, req, query, vec, dims, NULL, NULL, o, out, err);
}

int graph_hybrid_search_deferred(graph_store *g, const graph_req *req, const char *query, graph_vec_source src,
                                 void *arg, const graph_search_opts *o, json_t **out, eg_error *err)
{
    if (src == NULL) {
        *out = NULL;
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "no vector source");
    }
    return hybrid_run(g, req, query, NULL, 0, src, arg, o, out, err);
}
