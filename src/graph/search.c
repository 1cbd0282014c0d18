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

#include <math.h>
#include <string.h>

#define VEC_FETCH_CAP 10000

/* ---- keyword ---- */

static const char Q_FULLTEXT[] =
    "CALL db.index.fulltext.queryNodes($index, $q) YIELD node, score "
    "WHERE node.namespace = $ns "
    "RETURN " GRAPH_ENTITY_PROJ("node") " AS entity, score LIMIT $lim";

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

static const char Q_ALL_BY_NAME[] =
    "MATCH (e:Entity {namespace: $ns}) " GRAPH_NS_SEEK("e") " "
    "RETURN " GRAPH_ENTITY_PROJ("e") " AS entity ORDER BY e.namespace, e.name LIMIT $lim";

/*
 * Run a full-text statement (Q_FULLTEXT, or Q_ALL_BY_NAME for an empty
 * query) and append its entities, each with its score, to hits, and their
 * names to seen when seen is not NULL.
 */
static int fulltext_into(bolt_conn *c, graph_store *g, const char *cypher, const char *ns, const char *q,
                         size_t want, json_t *hits, json_t *seen, eg_error *err)
{
    bolt_params *p = graph__params(err);
    if (p == NULL)
        return EG_ENOMEM;
    bolt_params_str(p, "ns", ns);
    bolt_params_str(p, "index", g->opts.fulltext_index);
    bolt_params_str(p, "q", q);
    bolt_params_int(p, "lim", (int64_t)want);
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
    if (rc == 0 && (empty || phrase != NULL))
        rc = fulltext_into(c, g, empty ? Q_ALL_BY_NAME : Q_FULLTEXT, ns, phrase, want, hits, seen, err);
    bool phrase_was_null = phrase == NULL; /* punctuation only: substring is all we have */
    eg_free(phrase);
    if (rc == 0 && !empty && json_array_size(hits) < want && (g->opts.substring_search || phrase_was_null)) {
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
        {
            json_t *e = graph__entity_out(json_incref(json_object_get(row, "entity")));
            json_object_set_new(e, "score", json_real(0.0));
            json_object_set_new(e, "match", json_string("substring"));
            json_array_append_new(hits, e);
        }
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
        rc = fulltext_into(c, g, Q_FULLTEXT, ns, terms, want, hits, NULL, err);
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

static int add_relations(bolt_conn *c, const char *ns, json_t *res, size_t budget, eg_error *err)
{
    json_t *names = json_array();
    size_t i, used = graph__json_size(json_object_get(res, "entities"));
    json_t *e;
    json_array_foreach(json_object_get(res, "entities"), i, e)
    {
        json_array_append(names, json_object_get(e, "name"));
    }
    json_t *rels = NULL;
    int rc = graph__relations_among(c, ns, names, &rels, err);
    json_decref(names);
    if (rc != 0)
        return rc;
    json_t *kept = json_array();
    json_array_foreach(rels, i, e)
    {
        size_t sz = graph__json_size(e);
        if (used + sz > budget) {
            json_object_set_new(res, "truncated", json_true());
            break;
        }
        used += sz;
        json_array_append(kept, e);
    }
    json_decref(rels);
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
    json_t *result;
} search_work;

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
    if (rc == 0)
        rc = graph__keyword_hits(c, w->cx.g, w->cx.ns, w->query, off + limit + 1, &hits, err);
    size_t budget = graph__page_budget(w->cx.g, w->page);
    if (rc == 0)
        rc = slice_hits(hits, off, limit, budget, w->result, err);
    if (rc == 0)
        rc = add_relations(c, w->cx.ns, w->result, budget, err);
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
    "[h IN hits WHERE h[0].namespace = $ns AND h[1] >= $min "
    "AND (size($types) = 0 OR h[0].entityType IN $types)][0..$lim] AS kept "
    /* one row even when nothing is kept: the caller needs raw and lowest */
    "UNWIND CASE WHEN size(kept) = 0 THEN [null] ELSE kept END AS h "
    "WITH raw, lowest, h[0] AS node, h[1] AS score "
    "RETURN raw, lowest, CASE WHEN node IS NOT NULL THEN " GRAPH_ENTITY_PROJ("node") " END AS entity, score "
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

/* Vector hits (entities + "score"), best first, up to `want`. */
static int vector_hits(bolt_conn *c, graph_store *g, const char *ns, const float *vec, size_t dims,
                       double min_sim, const json_t *types, size_t want, json_t **out,
                       eg_error *err)
{
    *out = NULL;
    json_t *ty = types_or_empty(types);
    size_t k = want * 4 < 100 ? 100 : want * 4;
    if (k > VEC_FETCH_CAP)
        k = VEC_FETCH_CAP;
    int rc = 0;
    json_t *rows = NULL;
    for (;;) {
        bolt_params *p = graph__params(err);
        if (p == NULL) {
            rc = EG_ENOMEM;
            break;
        }
        bolt_params_str(p, "index", g->opts.vector_index);
        bolt_params_str(p, "model", g->opts.embedding_model);
        bolt_params_int(p, "k", (int64_t)k);
        bolt_params_float32_list(p, "vec", vec, dims);
        bolt_params_str(p, "ns", ns);
        bolt_params_float(p, "min", min_sim);
        bolt_params_json(p, "types", ty);
        bolt_params_int(p, "lim", (int64_t)want);
        rc = graph__params_check(p, err);
        json_decref(rows);
        rows = NULL;
        if (rc == 0)
            rc = graph__q(c, Q_VECTOR, p, &rows, err);
        bolt_params_free(p);
        if (rc != 0)
            break;
        /* No row: the model guard refused the index. */
        const json_t *first = json_array_get(rows, 0);
        if (first == NULL)
            break;
        size_t got = 0;
        for (size_t r = 0; r < json_array_size(rows); r++)
            got += json_is_object(json_object_get(json_array_get(rows, r), "entity"));
        int64_t raw = graph__jint(first, "raw", 0);
        const json_t *lowest = json_object_get(first, "lowest");
        /* Asking deeper helps only when the filters (namespace, types) left
         * the page short: the index returns neighbours best first, so once
         * its last one scores under min_similarity no deeper one reaches it
         * (and a request for 10,000 neighbours is slow). */
        if (got >= want || k >= VEC_FETCH_CAP || raw < (int64_t)k ||
            (json_is_number(lowest) && json_number_value(lowest) < min_sim))
            break;
        k = k * 4 > VEC_FETCH_CAP ? VEC_FETCH_CAP : k * 4;
    }
    json_decref(ty);
    if (rc != 0) {
        json_decref(rows);
        return rc;
    }
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

static int semantic_fn(bolt_conn *c, void *payload, eg_error *err)
{
    search_work *w = payload;
    json_decref(w->result);
    w->result = json_pack("{ss}", "searchType", "semantic");
    if (w->result == NULL)
        return eg_error_oom(err);
    size_t limit = norm_limit(w->so);
    json_t *hits = NULL;
    int rc = vector_hits(c, w->cx.g, w->cx.ns, w->vec, w->dims, norm_min(w->so),
                         w->so ? w->so->entity_types : NULL, limit, &hits, err);
    size_t budget = norm_budget(w->cx.g, w->so);
    if (rc == 0)
        rc = slice_hits(hits, 0, limit, budget, w->result, err);
    json_object_del(w->result, "nextCursor"); /* vector results are not paged */
    if (rc == 0)
        rc = add_relations(c, w->cx.ns, w->result, budget, err);
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

static int has_vectors(bolt_conn *c, const char *ns, bool *out, eg_error *err)
{
    *out = false;
    bolt_params *p = graph__params(err);
    if (p == NULL)
        return EG_ENOMEM;
    bolt_params_str(p, "ns", ns);
    json_t *rows = NULL;
    int rc = graph__q(c,
                     "MATCH (e:Entity {namespace: $ns}) " GRAPH_NS_SEEK("e") " AND e.embedding IS NOT NULL "
                     "RETURN e.name AS n LIMIT 1",
                     p, &rows, err);
    bolt_params_free(p);
    if (rc == 0)
        *out = json_array_size(rows) > 0;
    json_decref(rows);
    return rc;
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
    json_t *kw = NULL, *vh = NULL;
    bool vectors = false;
    int rc = term_hits(c, w->cx.g, w->cx.ns, w->query, want, &kw, err);
    if (rc == 0 && w->vec != NULL)
        rc = has_vectors(c, w->cx.ns, &vectors, err);
    if (rc == 0 && w->vec != NULL && vectors)
        rc = vector_hits(c, w->cx.g, w->cx.ns, w->vec, w->dims, norm_min(w->so),
                         w->so ? w->so->entity_types : NULL, want, &vh, err);
    if (rc != 0) {
        json_decref(kw);
        json_decref(vh);
        return rc;
    }
    /* entity_types applies to the keyword leg too. */
    const json_t *types = w->so ? w->so->entity_types : NULL;
    if (json_array_size(types) > 0) {
        json_t *f = json_array();
        size_t i;
        json_t *e;
        json_array_foreach(kw, i, e)
        {
            size_t j;
            json_t *t;
            bool ok = false;
            json_array_foreach(types, j, t) if (json_equal(t, json_object_get(e, "entityType"))) ok = true;
            if (ok)
                json_array_append(f, e);
        }
        json_decref(kw);
        kw = f;
    }
    size_t nk = json_array_size(kw), nv = json_array_size(vh);
    graph_ranked *rk = eg_calloc(nk + 1, sizeof *rk), *rv = eg_calloc(nv + 1, sizeof *rv);
    graph_fused *fused = NULL;
    size_t nf = 0;
    if (rk == NULL || rv == NULL)
        rc = eg_error_oom(err);
    for (size_t i = 0; rc == 0 && i < nk; i++) {
        rk[i].key = graph__jstr(json_array_get(kw, i), "name");
        rk[i].score = json_number_value(json_object_get(json_array_get(kw, i), "score"));
    }
    for (size_t i = 0; rc == 0 && i < nv; i++) {
        rv[i].key = graph__jstr(json_array_get(vh, i), "name");
        rv[i].score = json_number_value(json_object_get(json_array_get(vh, i), "score"));
    }
    if (rc == 0)
        rc = graph_score_fuse(rk, nk, rv, nv, w->vec && vectors ? weight : 0.0, &fused, &nf, err);
    json_t *hits = json_array();
    for (size_t i = 0; rc == 0 && i < nf && i < limit; i++) {
        json_t *src = NULL;
        if (fused[i].vector_rank)
            src = json_array_get(vh, (size_t)fused[i].vector_rank - 1);
        else
            src = json_array_get(kw, (size_t)fused[i].keyword_rank - 1);
        /* Ranks count unique keys; the lists hold no duplicates (names are unique). */
        json_t *e = json_deep_copy(src);
        json_object_set_new(e, "score", json_real(fused[i].score));
        json_object_set_new(e, "keywordRank",
                            fused[i].keyword_rank ? json_integer(fused[i].keyword_rank) : json_null());
        json_object_set_new(e, "keywordScore",
                            fused[i].keyword_rank ? json_real(fused[i].keyword_score) : json_null());
        json_object_set_new(e, "vectorRank",
                            fused[i].vector_rank ? json_integer(fused[i].vector_rank) : json_null());
        if (fused[i].vector_rank)
            json_object_set_new(e, "similarity", json_real(fused[i].vector_score));
        json_object_del(e, "match");
        json_array_append_new(hits, e);
    }
    eg_free(rk);
    eg_free(rv);
    eg_free(fused);
    json_decref(kw);
    json_decref(vh);
    size_t budget = norm_budget(w->cx.g, w->so);
    if (rc == 0)
        rc = slice_hits(hits, 0, limit, budget, w->result, err);
    json_object_del(w->result, "nextCursor");
    json_decref(hits);
    if (rc == 0)
        rc = add_relations(c, w->cx.ns, w->result, budget, err);
    if (rc == 0) {
        if (w->vec != NULL && vectors) {
            json_object_set_new(w->result, "searchType", json_string("hybrid"));
            json_object_set_new(w->result, "semanticWeight", json_real(weight < 0 ? 0 : weight > 1 ? 1 : weight));
        } else {
            json_object_set_new(w->result, "searchType", json_string("keyword"));
            json_object_set_new(w->result, "fallback", json_string("keyword"));
            json_object_set_new(w->result, "note",
                                json_string(w->vec == NULL
                                                ? "no query vector (embedding provider unavailable); "
                                                  "keyword search only"
                                                : "no entity in this namespace has an embedding yet; "
                                                  "keyword search only"));
        }
    }
    return rc;
}

int graph_hybrid_search(graph_store *g, const graph_req *req, const char *query, const float *vec,
                        size_t dims, const graph_search_opts *o, json_t **out, eg_error *err)
{
    *out = NULL;
    search_work w = {0};
    w.query = query;
    w.vec = vec;
    w.dims = dims;
    w.so = o;
    int rc = graph__ctx_init(&w.cx, g, req, err);
    if (rc == 0)
        rc = check_query(query, err);
    if (rc == 0 && vec != NULL)
        rc = check_vec(g, vec, dims, err);
    return graph__run(g, GRAPH_TX_READ, hybrid_fn, &w, rc, &w.result, out, err);
}
