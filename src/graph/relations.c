/*
 * relations.c - relation mutations (create, delete, update) with temporal
 * history (RelationVersion).  Each runs in one managed write transaction,
 * as the entity mutations of mutate.c do; what both use is in mutate_int.h.
 */
#include "graph/mutate_int.h"

#include "core/alloc.h"
#include "core/clock.h"

#include <stdlib.h>

#define REL_VERSION_CREATE                                                                      \
    "CREATE (:RelationVersion {namespace: $ns, from: a.name, to: b.name, "                    \
    "relationType: r.relationType, relationId: r.id, version: r.version, strength: r.strength, " \
    "confidence: r.confidence, metadata: r.metadata, createdAt: r.createdAt, "                \
    "updatedAt: r.updatedAt, validFrom: r.validFrom, changedBy: r.changedBy, deleted: false})"

static const char Q_ENDPOINTS[] =
    "OPTIONAL MATCH (a:Entity {namespace: $ns, name: $from}) "
    "OPTIONAL MATCH (b:Entity {namespace: $ns, name: $to}) "
    "RETURN a IS NOT NULL AS hasFrom, b IS NOT NULL AS hasTo";

static const char Q_CREATE_REL[] =
    "MATCH (a:Entity {namespace: $ns, name: $from}) "
    "MATCH (b:Entity {namespace: $ns, name: $to}) "
    "MERGE (a)-[r:RELATES_TO {relationType: $type}]->(b) "
    "ON CREATE SET r.id = randomUUID(), r.version = 1, r.strength = $strength, "
    "r.confidence = $confidence, r.metadata = $metadata, r.createdAt = $now, r.updatedAt = $now, "
    "r.validFrom = $now, r.changedBy = $by, r.createdBy = $token "
    "WITH a, b, r, coalesce(r.createdBy = $token, false) AS created "
    "REMOVE r.createdBy "
    "FOREACH (_ IN CASE WHEN created THEN [1] ELSE [] END | " REL_VERSION_CREATE ") "
    "RETURN created, " GRAPH_REL_PROJ " AS rel";

static void rel_key_params(bolt_params *p, const graph_ctx *cx, const json_t *it)
{
    bolt_params_str(p, "ns", cx->ns);
    bolt_params_str(p, "from", graph__jstr(it, "from"));
    bolt_params_str(p, "to", graph__jstr(it, "to"));
    bolt_params_str(p, "type", graph__jstr(it, "relationType"));
}

static void num_or_null(bolt_params *p, const char *key, const json_t *v)
{
    if (json_is_number(v))
        bolt_params_float(p, key, json_number_value(v));
    else
        bolt_params_null(p, key);
}

static void metadata_param(bolt_params *p, const json_t *m)
{
    char *s = json_is_object(m) ? json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (s != NULL)
        bolt_params_str(p, "metadata", s);
    else
        bolt_params_null(p, "metadata");
    eg_free(s);
}

/*
 * A batch of relations in two statements instead of two per relation: the
 * endpoints of every row, then one MERGE over the rows whose endpoints
 * exist.  Rows are answered in input order, as the one-by-one path does;
 * each row marks its own creation, so a relation given twice counts once.
 */
static const char Q_ENDPOINTS_BULK[] =
    "UNWIND $rows AS row "
    "OPTIONAL MATCH (a:Entity {namespace: $ns, name: row.from}) "
    "OPTIONAL MATCH (b:Entity {namespace: $ns, name: row.to}) "
    "RETURN row.i AS i, a IS NOT NULL AS hasFrom, b IS NOT NULL AS hasTo";

static const char Q_CREATE_REL_BULK[] =
    "UNWIND $rows AS row "
    "MATCH (a:Entity {namespace: $ns, name: row.from}) "
    "MATCH (b:Entity {namespace: $ns, name: row.to}) "
    "MERGE (a)-[r:RELATES_TO {relationType: row.type}]->(b) "
    "ON CREATE SET r.id = randomUUID(), r.version = 1, r.strength = row.strength, "
    "r.confidence = row.confidence, r.metadata = row.metadata, r.createdAt = $now, r.updatedAt = $now, "
    "r.validFrom = $now, r.changedBy = row.by, r.createdBy = $token + ':' + toString(row.i) "
    "WITH a, b, r, row, coalesce(r.createdBy = $token + ':' + toString(row.i), false) AS created "
    "REMOVE r.createdBy "
    "FOREACH (_ IN CASE WHEN created THEN [1] ELSE [] END | " REL_VERSION_CREATE ") "
    "RETURN row.i AS i, created, " GRAPH_REL_PROJ " AS rel";

static int create_relations_bulk(graph_mut_work *w, bolt_conn *c, int64_t now, const char *token, eg_error *err)
{
    size_t n = json_array_size(w->items);
    json_t *rows = json_array(), *res = NULL, *ok = json_array();
    json_t **answer = eg_calloc(n, sizeof *answer); /* per row: its relation, or its skip record */
    bool *created = eg_calloc(n, sizeof *created);
    int rc = rows && ok && answer && created ? 0 : eg_error_oom(err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const json_t *it = json_array_get(w->items, i);
        const json_t *m = json_object_get(it, "metadata");
        char *meta = json_is_object(m) ? json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        const json_t *st = json_object_get(it, "strength"), *cf = json_object_get(it, "confidence");
        json_t *r = json_pack("{s:I, s:O, s:O, s:O, s:o, s:o, s:s?, s:s?}", "i", (json_int_t)i, "from",
                              json_object_get(it, "from"), "to", json_object_get(it, "to"), "type",
                              json_object_get(it, "relationType"), "strength",
                              json_is_number(st) ? json_real(json_number_value(st)) : json_null(), "confidence",
                              json_is_number(cf) ? json_real(json_number_value(cf)) : json_null(), "metadata", meta,
                              "by", graph__item_by(&w->cx, it));
        eg_free(meta);
        if (!r || json_array_append_new(rows, r) != 0)
            rc = eg_error_oom(err);
    }
    bolt_params *p = rc == 0 ? graph__params(err) : NULL;
    if (rc == 0 && !p)
        rc = EG_ENOMEM;
    if (rc == 0) {
        bolt_params_str(p, "ns", w->cx.ns);
        bolt_params_json(p, "rows", rows);
        rc = graph__params_check(p, err);
        if (rc == 0)
            rc = graph__q(c, Q_ENDPOINTS_BULK, p, &res, err);
    }
    bolt_params_free(p);
    size_t k;
    json_t *row;
    json_array_foreach(rc == 0 ? res : NULL, k, row)
    {
        int64_t i = graph__jint(row, "i", -1);
        if (i < 0 || (size_t)i >= n)
            continue;
        bool hf = json_is_true(json_object_get(row, "hasFrom")), ht = json_is_true(json_object_get(row, "hasTo"));
        const json_t *it = json_array_get(w->items, (size_t)i);
        if (hf && ht) {
            json_array_append(ok, json_array_get(rows, (size_t)i));
            continue;
        }
        answer[i] = json_pack("{sOsOsOss}", "from", json_object_get(it, "from"), "to", json_object_get(it, "to"),
                              "relationType", json_object_get(it, "relationType"), "reason",
                              !hf ? "from entity not found" : "to entity not found");
    }
    json_decref(res);
    res = NULL;
    if (rc == 0 && json_array_size(ok) > 0) {
        p = graph__params(err);
        rc = p ? 0 : EG_ENOMEM;
        if (rc == 0) {
            bolt_params_str(p, "ns", w->cx.ns);
            bolt_params_json(p, "rows", ok);
            bolt_params_int(p, "now", now);
            bolt_params_str(p, "token", token);
            rc = graph__params_check(p, err);
            if (rc == 0)
                rc = graph__q(c, Q_CREATE_REL_BULK, p, &res, err);
        }
        bolt_params_free(p);
    }
    json_array_foreach(rc == 0 ? res : NULL, k, row)
    {
        int64_t i = graph__jint(row, "i", -1);
        if (i < 0 || (size_t)i >= n || answer[i])
            continue;
        created[i] = json_is_true(json_object_get(row, "created"));
        answer[i] = graph__relation_out(json_incref(json_object_get(row, "rel")));
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!answer[i]) /* an endpoint was deleted between the two statements: nothing made */
            answer[i] = json_pack("{sOsOsOss}", "from", json_object_get(json_array_get(w->items, i), "from"), "to",
                                  json_object_get(json_array_get(w->items, i), "to"), "relationType",
                                  json_object_get(json_array_get(w->items, i), "relationType"), "reason",
                                  "an entity was deleted during the call");
        if (!answer[i]) {
            rc = eg_error_oom(err);
            break;
        }
        const char *key = json_object_get(answer[i], "reason") ? "skipped" : created[i] ? "relations" : "existing";
        json_array_append(json_object_get(w->result, key), answer[i]);
    }
    for (size_t i = 0; answer && i < n; i++)
        json_decref(answer[i]);
    eg_free(answer);
    eg_free(created);
    json_decref(res);
    json_decref(rows);
    json_decref(ok);
    return rc;
}

static int create_relations_fn(bolt_conn *c, void *payload, eg_error *err)
{
    graph_mut_work *w = payload;
    json_decref(w->result);
    w->result = json_pack("{s[]s[]s[]}", "relations", "existing", "skipped");
    if (w->result == NULL)
        return eg_error_oom(err);
    int64_t now = 0;
    int rc = graph__now(c, &now, err);
    char token[33];
    if (rc == 0 && eg_rand_hex(token, (sizeof token - 1) / 2) != 0)
        rc = eg_error_set(err, EG_EINTERNAL, EG_CLASS_CLIENT, "no randomness");
    if (rc == 0 && json_array_size(w->items) > 1)
        return create_relations_bulk(w, c, now, token, err);
    size_t i;
    json_t *it;
    json_array_foreach(w->items, i, it)
    {
        if (rc != 0)
            break;
        bolt_params *p = graph__params(err);
        if (p == NULL)
            return EG_ENOMEM;
        rel_key_params(p, &w->cx, it);
        json_t *rows = NULL;
        rc = graph__params_check(p, err);
        if (rc == 0)
            rc = graph__q(c, Q_ENDPOINTS, p, &rows, err);
        if (rc != 0) {
            bolt_params_free(p);
            break;
        }
        json_t *row = json_array_get(rows, 0);
        bool hf = json_is_true(json_object_get(row, "hasFrom"));
        bool ht = json_is_true(json_object_get(row, "hasTo"));
        json_decref(rows);
        rows = NULL;
        if (!hf || !ht) {
            bolt_params_free(p);
            json_t *s = json_pack("{sOsOsOss}", "from", json_object_get(it, "from"), "to",
                                  json_object_get(it, "to"), "relationType",
                                  json_object_get(it, "relationType"), "reason",
                                  !hf ? "from entity not found" : "to entity not found");
            json_array_append_new(json_object_get(w->result, "skipped"), s);
            continue;
        }
        num_or_null(p, "strength", json_object_get(it, "strength"));
        num_or_null(p, "confidence", json_object_get(it, "confidence"));
        metadata_param(p, json_object_get(it, "metadata"));
        bolt_params_int(p, "now", now);
        bolt_params_str(p, "by", graph__item_by(&w->cx, it));
        bolt_params_str(p, "token", token);
        rc = graph__q_params(c, Q_CREATE_REL, p, &rows, err);
        if (rc == 0) {
            json_t *r = json_array_get(rows, 0);
            bool created = json_is_true(json_object_get(r, "created"));
            json_t *rel = graph__relation_out(json_incref(json_object_get(r, "rel")));
            if (rel != NULL)
                json_array_append_new(json_object_get(w->result, created ? "relations" : "existing"),
                                      rel);
        }
        json_decref(rows);
    }
    return rc;
}

int graph_create_relations(graph_store *g, const graph_req *req, const json_t *relations,
                           json_t **out, eg_error *err)
{
    *out = NULL;
    graph_mut_work w = {0};
    int rc = graph__ctx_init(&w.cx, g, req, err);
    if (rc == 0)
        rc = graph_validate_relations(relations, false, &w.items, err);
    if (rc == 0 && !json_is_array(relations) && !json_is_string(relations))
        rc = eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "relations must be an array");
    rc = graph__run(g, GRAPH_TX_WRITE, create_relations_fn, &w, rc, &w.result, out, err);
    json_decref(w.items);
    return rc;
}

static const char Q_DELETE_REL[] =
    "MATCH (a:Entity {namespace: $ns, name: $from})-[r:RELATES_TO {relationType: $type}]->"
    "(b:Entity {namespace: $ns, name: $to}) "
    "WITH a, b, r, " GRAPH_REL_PROJ " AS rel "
    "OPTIONAL MATCH (rv:RelationVersion {namespace: $ns, relationId: r.id}) WHERE rv.validTo IS NULL "
    "SET rv.validTo = $now, rv.deleted = true "
    "WITH DISTINCT r, rel "
    "DELETE r "
    "RETURN rel";

static void delete_relation_params(bolt_params *p, const graph_mut_work *w, const json_t *item, int64_t now)
{
    rel_key_params(p, &w->cx, item);
    bolt_params_int(p, "now", now);
}

static int delete_relations_fn(bolt_conn *c, void *payload, eg_error *err)
{
    graph_mut_work *w = payload;
    json_t **rows = NULL;
    int rc = graph__run_items(c, w, Q_DELETE_REL, delete_relation_params, &rows, err);
    size_t i;
    json_t *it;
    json_array_foreach(rc == 0 ? w->items : NULL, i, it)
    {
        if (json_array_size(rows[i]) == 0) {
            json_array_append(json_object_get(w->result, "notFound"), it);
            continue;
        }
        size_t j;
        json_t *row;
        json_array_foreach(rows[i], j, row)
        {
            json_array_append_new(json_object_get(w->result, "deleted"),
                                  graph__relation_out(json_incref(json_object_get(row, "rel"))));
        }
    }
    graph__free_item_rows(rows, json_array_size(w->items));
    return rc;
}

int graph_delete_relations(graph_store *g, const graph_req *req, const json_t *relations,
                           json_t **out, eg_error *err)
{
    *out = NULL;
    graph_mut_work w = {0};
    int rc = graph__ctx_init(&w.cx, g, req, err);
    if (rc == 0)
        rc = graph_validate_relations(relations, true, &w.items, err);
    rc = graph__run(g, GRAPH_TX_WRITE, delete_relations_fn, &w, rc, &w.result, out, err);
    json_decref(w.items);
    return rc;
}

static const char Q_UPDATE_REL[] =
    "MATCH (a:Entity {namespace: $ns, name: $from})-[r:RELATES_TO {relationType: $type}]->"
    "(b:Entity {namespace: $ns, name: $to}) "
    "SET r.version = coalesce(r.version, 0) + 1 "
    "SET r.strength = CASE WHEN $setStrength THEN $strength ELSE r.strength END, "
    "r.confidence = CASE WHEN $setConfidence THEN $confidence ELSE r.confidence END, "
    "r.metadata = CASE WHEN $setMetadata THEN $metadata ELSE r.metadata END, "
    "r.updatedAt = $now, r.validFrom = $now, r.changedBy = $by, "
    "r.createdAt = coalesce(r.createdAt, $now), r.id = coalesce(r.id, randomUUID()) "
    "WITH a, b, r "
    "OPTIONAL MATCH (rv:RelationVersion {namespace: $ns, relationId: r.id}) WHERE rv.validTo IS NULL "
    "SET rv.validTo = $now "
    "WITH DISTINCT a, b, r " REL_VERSION_CREATE " "
    "RETURN " GRAPH_REL_PROJ " AS rel";

static int update_relation_fn(bolt_conn *c, void *payload, eg_error *err)
{
    graph_mut_work *w = payload;
    json_decref(w->result);
    w->result = NULL;
    int64_t now = 0;
    int rc = graph__now(c, &now, err);
    if (rc != 0)
        return rc;
    json_t *it = json_array_get(w->items, 0);
    bolt_params *p = graph__params(err);
    if (p == NULL)
        return EG_ENOMEM;
    rel_key_params(p, &w->cx, it);
    const json_t *s = json_object_get(it, "strength"), *cf = json_object_get(it, "confidence"),
                 *m = json_object_get(it, "metadata");
    bolt_params_bool(p, "setStrength", s != NULL);
    num_or_null(p, "strength", s);
    bolt_params_bool(p, "setConfidence", cf != NULL);
    num_or_null(p, "confidence", cf);
    bolt_params_bool(p, "setMetadata", m != NULL);
    metadata_param(p, m);
    bolt_params_int(p, "now", now);
    bolt_params_str(p, "by", graph__item_by(&w->cx, it));
    json_t *rows = NULL;
    rc = graph__q_params(c, Q_UPDATE_REL, p, &rows, err);
    if (rc != 0)
        return rc;
    if (json_array_size(rows) == 0) {
        json_decref(rows);
        return eg_error_set(err, EG_ENOTFOUND, EG_CLASS_CLIENT, "Relation not found: %s -[%s]-> %s",
                            graph__jstr(it, "from"), graph__jstr(it, "relationType"),
                            graph__jstr(it, "to"));
    }
    w->result = graph__relation_out(json_incref(json_object_get(json_array_get(rows, 0), "rel")));
    json_decref(rows);
    return 0;
}

int graph_update_relation(graph_store *g, const graph_req *req, const json_t *relation,
                          json_t **out, eg_error *err)
{
    *out = NULL;
    graph_mut_work w = {0};
    int rc = graph__ctx_init(&w.cx, g, req, err);
    if (rc == 0 && !json_is_object(relation))
        rc = eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "relation must be an object");
    if (rc == 0)
        rc = graph_validate_relations(relation, false, &w.items, err);
    rc = graph__run(g, GRAPH_TX_WRITE, update_relation_fn, &w, rc, &w.result, out, err);
    json_decref(w.items);
    return rc;
}
