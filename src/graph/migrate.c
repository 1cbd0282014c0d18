/*
 * migrate.c - convert a memento-mcp graph into engram's model, in place.
 *
 * memento keeps every version of an entity as an (:Entity) node (validTo set
 * on the old ones, no namespace), observations as JSON text, and relations
 * as RELATES_TO between version nodes - re-created per version pair on
 * add_observations and update_relation, left on archived nodes by
 * delete_observations.  Its constraint cannot stop two live nodes of one
 * name.  engram wants one live (:Entity) per (namespace, name) with a native
 * observation list, one (:EntityVersion) per version, one live RELATES_TO per
 * (from, to, relationType) between live entities and one (:RelationVersion)
 * per relation version (docs/data-model.md).
 *
 * Phase 1, entities, per batch of names in one write transaction:
 *   - the newest live node (validTo null, latest validFrom) stays the live
 *     :Entity (its id, embedding and timestamps are kept) and gets the
 *     namespace, the decoded observations, its content hash and a current
 *     :EntityVersion; an embedding job is queued in the same transaction;
 *   - the lists of those versions become observation records in the same
 *     transaction (obs_convert.c, as graph migration 12 does), each live
 *     one with its embedding job;
 *   - every other node of the name (archived versions, and live duplicates
 *     memento let through) becomes an :EntityVersion of it, renumbered
 *     1..k in validFrom order; a duplicate's validTo is its successor's
 *     validFrom;
 *   - names that already exist as engram entities in the target namespace
 *     are not touched (reported as conflicts).
 * Phase 2, relations, per batch of (from name, to name, type) groups:
 *   - all memento relationships of a group (on live or archived nodes;
 *     copies with the same id count once) become :RelationVersion nodes,
 *     the newest live one the current version; one RELATES_TO with its
 *     properties joins the two live entities (when both are live), and the
 *     old relationships are deleted.
 *
 * Every statement is parameterised; nodes are addressed by elementId read
 * in the same transaction.  Re-running is harmless: phase 1 picks nodes
 * without a namespace, phase 2 relationships without a RelationVersion.
 * memento must not write while this runs.
 */
#include "graph/graph_int.h"

#include "core/alloc.h"
#include "core/log.h"

#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* ---- plan (read-only counts) ---- */

static const char Q_PLAN[] =
    "CALL { MATCH (e:Entity) WHERE e.namespace IS NULL AND e.name IS NOT NULL "
    "  RETURN count(e) AS nodes, count(DISTINCT e.name) AS names, "
    "  sum(CASE WHEN e.validTo IS NULL THEN 1 ELSE 0 END) AS live } "
    "CALL { MATCH (e:Entity) WHERE e.namespace IS NULL AND e.name IS NOT NULL AND e.validTo IS NULL "
    "  WITH e.name AS name, count(*) AS c WHERE c > 1 RETURN count(*) AS dupNames } "
    "CALL { MATCH (e:Entity) WHERE e.namespace IS NULL AND e.name IS NOT NULL "
    "  WITH DISTINCT e.name AS name "
    "  MATCH (x:Entity {namespace: $ns, name: name}) RETURN count(x) AS conflicts } "
    "CALL { MATCH (e:Entity)-[r:RELATES_TO]-() WHERE e.namespace IS NULL "
    "  RETURN count(DISTINCT r) AS rels } "
    "RETURN nodes, names, live, dupNames, conflicts, rels";

static int plan_fn(bolt_conn *c, void *payload, eg_error *err)
{
    graph_migrate_stats *st = ((void **)payload)[0];
    const char *ns = ((void **)payload)[1];
    bolt_params *p = graph__params(err);
    if (!p)
        return EG_ENOMEM;
    bolt_params_str(p, "ns", ns);
    json_t *rows = NULL;
    int rc = graph__q_params(c, Q_PLAN, p, &rows, err);
    if (rc == 0) {
        json_t *r = json_array_get(rows, 0);
        st->memento_nodes = graph__jint(r, "nodes", 0);
        st->names = graph__jint(r, "names", 0);
        st->duplicate_names = graph__jint(r, "dupNames", 0);
        st->conflicts = graph__jint(r, "conflicts", 0);
        st->relationships = graph__jint(r, "rels", 0);
        st->entities = graph__jint(r, "live", 0) > 0 ? st->names - st->conflicts : 0;
    }
    json_decref(rows);
    return rc;
}

int graph_migrate_memento_plan(graph_store *g, const char *ns, graph_migrate_stats *out, eg_error *err)
{
    memset(out, 0, sizeof *out);
    void *pl[2] = {out, (void *)(ns ? ns : g->opts.ns)};
    return graph__read(g, plan_fn, pl, err);
}

/* ---- shared helpers ---- */

/* A sort key for versions: validFrom, else createdAt, else 0. */
static int64_t vfrom(const json_t *row)
{
    int64_t t = graph__jint(row, "validFrom", -1);
    return t >= 0 ? t : graph__jint(row, "createdAt", 0);
}

static int cmp_rows(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int64_t p = vfrom(x), q = vfrom(y);
    if (p != q)
        return p < q ? -1 : 1;
    int64_t v = graph__jint(x, "version", 0), w = graph__jint(y, "version", 0);
    return v < w ? -1 : v > w;
}

static bool is_live(const json_t *row)
{
    json_t *t = json_object_get(row, "validTo");
    return !t || json_is_null(t);
}

/* memento's observations: JSON text of an array (or, rarely, already a
 * list).  Anything else is kept as one observation rather than lost. */
static json_t *decode_observations(const json_t *v)
{
    json_t *out = json_array();
    if (!out)
        return NULL;
    json_t *arr = NULL, *owned = NULL;
    if (json_is_array(v)) {
        arr = (json_t *)v;
    } else if (json_is_string(v)) {
        owned = json_loads(json_string_value(v), JSON_DECODE_ANY, NULL);
        if (json_is_array(owned))
            arr = owned;
        else if (json_string_length(v) > 0)
            json_array_append(out, (json_t *)v);
    }
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x)
    {
        if (json_is_string(x)) {
            json_array_append(out, x);
        } else if (!json_is_null(x)) {
            char *s = json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY);
            if (s)
                json_array_append_new(out, json_string(s));
            eg_free(s);
        }
    }
    json_decref(owned);
    return out;
}

static json_t *copy_or_null(const json_t *row, const char *key)
{
    json_t *v = json_object_get(row, key);
    return v ? json_incref(v) : json_null();
}

/* ---- phase 1: entities ---- */

static const char Q_NAMES[] =
    "MATCH (e:Entity) WHERE e.namespace IS NULL AND e.name IS NOT NULL AND NOT e.name IN $skip "
    "WITH DISTINCT e.name AS name ORDER BY name LIMIT $lim RETURN collect(name) AS names";

static const char Q_CONFLICTS[] =
    "UNWIND $names AS name MATCH (x:Entity {namespace: $ns, name: name}) RETURN collect(x.name) AS names";

static const char Q_NODES[] =
    "UNWIND $names AS name MATCH (e:Entity {name: name}) WHERE e.namespace IS NULL "
    "RETURN name, elementId(e) AS eid, e.id AS id, e.entityType AS entityType, e.observations AS obs, "
    "e.version AS version, e.createdAt AS createdAt, e.validFrom AS validFrom, e.validTo AS validTo";

static const char Q_HISTORY[] =
    "UNWIND $rows AS h MATCH (e) WHERE elementId(e) = h.eid "
    "SET e:EntityVersion, e.namespace = $ns, e.entityId = h.entityId, e.version = h.version, "
    "e.observations = h.obs, e.validTo = h.validTo, e.deleted = h.deleted, "
    "e.validFrom = coalesce(e.validFrom, e.createdAt) "
    "REMOVE e:Entity, e.id, e.embedding "
    "RETURN count(*) AS n";

static const char Q_LIVE[] =
    "UNWIND $rows AS l MATCH (e) WHERE elementId(e) = l.eid "
    "SET e.namespace = $ns, e.observations = l.obs, e.version = l.version, e.contentHash = l.hash, "
    "e.lockSeq = coalesce(e.lockSeq, 0) + 1, e.validFrom = coalesce(e.validFrom, e.createdAt), "
    "e.updatedAt = coalesce(e.updatedAt, e.validFrom, e.createdAt) "
    "SET " GRAPH_SEARCH_SET("e") " "
    "REMOVE e.validTo "
    "CREATE (v:EntityVersion {namespace: $ns, name: e.name, entityId: e.id, version: l.version, "
    "  entityType: e.entityType, observations: l.obs, createdAt: e.createdAt, updatedAt: e.updatedAt, "
    "  validFrom: e.validFrom, changedBy: e.changedBy, deleted: false}) "
    "RETURN count(*) AS n";

typedef struct mig_work {
    graph_store *g;
    const char *ns;
    size_t batch;
    json_t *skip;             /* names (phase 1) or [f, t, type] (phase 2) left alone */
    size_t done;              /* names or groups handled by this unit of work */
    graph_migrate_stats delta; /* this unit's counts (added to *st after commit) */
} mig_work;

/* Plan one name: rows sorted; returns the history and live rows to write. */
static int plan_name(mig_work *w, const char *name, json_t **rows, size_t n, json_t *hist, json_t *live,
                     json_t *outbox, json_t *conv, eg_error *err)
{
    qsort(rows, n, sizeof *rows, cmp_rows);
    ssize_t win = -1;
    for (size_t i = 0; i < n; i++)
        if (is_live(rows[i]))
            win = (ssize_t)i; /* the newest live node */
    const json_t *idsrc = win >= 0 ? rows[win] : rows[n - 1];
    const char *entity_id = graph__jstr(idsrc, "id");
    if (!entity_id)
        entity_id = graph__jstr(idsrc, "eid");
    /* its versions' lists become observation records once written */
    if (json_array_append_new(conv, json_string(entity_id)) != 0)
        return eg_error_oom(err);
    int64_t version = 0;
    for (size_t i = 0; i < n; i++) {
        if ((ssize_t)i == win)
            continue;
        version++;
        /* a live duplicate ends where the next version begins */
        json_t *vt = copy_or_null(rows[i], "validTo");
        if (json_is_null(vt)) {
            json_decref(vt);
            size_t next = i + 1 < n && (ssize_t)(i + 1) == win && i + 2 < n ? i + 2 : i + 1;
            int64_t end = next < n ? vfrom(rows[next]) : (win >= 0 ? vfrom(rows[win]) : vfrom(rows[i]));
            vt = json_integer(end);
            w->delta.duplicates++;
        }
        bool last_deleted = win < 0 && i == n - 1; /* no live node: the entity is gone */
        json_t *h = json_pack("{s:O,s:s,s:I,s:o,s:o,s:b}", "eid", json_object_get(rows[i], "eid"), "entityId",
                              entity_id, "version", (json_int_t)version, "obs",
                              decode_observations(json_object_get(rows[i], "obs")), "validTo", vt, "deleted",
                              last_deleted);
        if (!h || json_array_append_new(hist, h))
            return eg_error_oom(err);
        w->delta.history++;
    }
    if (win < 0)
        return 0;
    json_t *obs = decode_observations(json_object_get(rows[win], "obs"));
    if (!obs)
        return eg_error_oom(err);
    size_t no = json_array_size(obs);
    const char **v = eg_calloc(no ? no : 1, sizeof *v);
    if (!v) {
        json_decref(obs);
        return eg_error_oom(err);
    }
    for (size_t k = 0; k < no; k++)
        v[k] = json_string_value(json_array_get(obs, k));
    const char *type = graph__jstr(rows[win], "entityType");
    char *text = NULL, hash[65];
    int rc = graph_embedding_text(name, type ? type : "", v, no, &text, hash, err);
    eg_free(v);
    eg_free(text);
    if (rc) {
        json_decref(obs);
        return rc;
    }
    version++;
    json_t *l = json_pack("{s:O,s:I,s:o,s:s}", "eid", json_object_get(rows[win], "eid"), "version",
                          (json_int_t)version, "obs", obs, "hash", hash);
    if (!l || json_array_append_new(live, l))
        return eg_error_oom(err);
    w->delta.entities++;
    return graph__outbox_add(outbox, entity_id, version, name, hash, err);
}

static int run_rows(bolt_conn *c, const char *q, const char *ns, json_t *rows, eg_error *err)
{
    if (json_array_size(rows) == 0)
        return 0;
    bolt_params *p = graph__params(err);
    if (!p)
        return EG_ENOMEM;
    bolt_params_str(p, "ns", ns);
    bolt_params_json(p, "rows", rows);
    int rc = graph__x_params(c, q, p, err);
    return rc;
}

/*
 * Start a unit of work: reset its counts, build the parameters every
 * statement of the batch shares (ns, skip, lim) into *p_out (new), and run
 * the selection query q, whose one row holds the batch as list column col
 * (*list_out, new; w->done = its size).
 */
static int next_batch(bolt_conn *c, mig_work *w, const char *q, const char *col, bolt_params **p_out,
                      json_t **list_out, eg_error *err)
{
    memset(&w->delta, 0, sizeof w->delta);
    w->done = 0;
    *list_out = NULL;
    bolt_params *p = *p_out = graph__params(err);
    if (!p)
        return EG_ENOMEM;
    bolt_params_str(p, "ns", w->ns);
    bolt_params_json(p, "skip", w->skip);
    bolt_params_int(p, "lim", (int64_t)w->batch);
    json_t *rows = NULL;
    int rc = graph__params_check(p, err);
    if (!rc)
        rc = graph__q(c, q, p, &rows, err);
    if (!rc) {
        *list_out = json_incref(json_object_get(json_array_get(rows, 0), col));
        w->done = json_array_size(*list_out);
    }
    json_decref(rows);
    return rc;
}

static int entities_fn(bolt_conn *c, void *payload, eg_error *err)
{
    mig_work *w = payload;
    json_t *rows = NULL, *names = NULL, *hist = json_array(), *live = json_array(), *outbox = json_array();
    json_t *conv = json_array();
    json_t **grp = NULL;
    bolt_params *p = NULL;
    int rc = hist && live && outbox && conv ? next_batch(c, w, Q_NAMES, "names", &p, &names, err)
                                            : eg_error_oom(err);
    if (!rc && w->done) {
        /* names that engram already has in this namespace: leave them */
        bolt_params_json(p, "names", names);
        rc = graph__params_check(p, err);
        if (!rc)
            rc = graph__q(c, Q_CONFLICTS, p, &rows, err);
        json_t *taken = rc ? NULL : json_object_get(json_array_get(rows, 0), "names");
        size_t i;
        json_t *x;
        json_array_foreach(taken, i, x)
        {
            json_array_append(w->skip, x);
            w->delta.conflicts++;
            EG_WARN("migrate", "'%s' already exists in namespace %s: its memento nodes are left as they are",
                    json_string_value(x), w->ns);
        }
        json_decref(rows);
        rows = NULL;
        if (!rc)
            rc = graph__q(c, Q_NODES, p, &rows, err);
    }
    /* rows come grouped by name only by accident: group in C */
    size_t nr = rc ? 0 : json_array_size(rows);
    if (!rc && nr) {
        grp = eg_calloc(nr, sizeof *grp);
        if (!grp)
            rc = eg_error_oom(err);
    }
    size_t ni;
    json_t *nm;
    json_array_foreach(rc ? NULL : names, ni, nm)
    {
        const char *name = json_string_value(nm);
        size_t k = 0;
        for (size_t r = 0; r < nr; r++)
            if (strcmp(graph__jstr(json_array_get(rows, r), "name"), name) == 0)
                grp[k++] = json_array_get(rows, r);
        if (k == 0)
            continue; /* a conflict */
        w->delta.names++;
        if ((rc = plan_name(w, name, grp, k, hist, live, outbox, conv, err)))
            break;
    }
    /* history first: it takes the :Entity label off the losers before the
     * winner joins the namespace's uniqueness constraint */
    if (!rc)
        rc = run_rows(c, Q_HISTORY, w->ns, hist, err);
    if (!rc)
        rc = run_rows(c, Q_LIVE, w->ns, live, err);
    graph_obs_convert_stats cs = {0};
    if (!rc)
        rc = graph__obs_convert_tx(c, w->ns, conv, outbox, &cs, err);
    w->delta.records = cs.records;
    size_t created = 0;
    if (!rc && json_array_size(outbox)) {
        json_t *ids = json_array();
        rc = ids ? graph__outbox_flush(w->g, c, w->ns, outbox, ids, &created, err) : eg_error_oom(err);
        json_decref(ids);
    }
    w->delta.jobs = (int64_t)created;
    bolt_params_free(p);
    eg_free(grp);
    json_decref(rows);
    json_decref(names);
    json_decref(hist);
    json_decref(live);
    json_decref(outbox);
    json_decref(conv);
    return rc;
}

/* ---- phase 2: relations ---- */

static const char Q_GROUPS[] =
    "MATCH (x)-[r:RELATES_TO]->(y) "
    "WHERE (x:Entity OR x:EntityVersion) AND x.namespace = $ns AND y.namespace = $ns "
    "  AND r.relationType IS NOT NULL "
    "  AND NOT EXISTS { MATCH (rv:RelationVersion {namespace: $ns, relationId: r.id}) } "
    "  AND NOT [x.name, y.name, r.relationType] IN $skip "
    "WITH DISTINCT x.name AS f, y.name AS t, r.relationType AS type ORDER BY f, t, type LIMIT $lim "
    "RETURN collect([f, t, type]) AS groups";

static const char Q_GROUP_RELS[] =
    "UNWIND range(0, size($groups) - 1) AS gi "
    "WITH gi, $groups[gi] AS g "
    "CALL { WITH g MATCH (x:Entity {namespace: $ns, name: g[0]}) RETURN x "
    "       UNION WITH g MATCH (x:EntityVersion {namespace: $ns, name: g[0]}) RETURN x } "
    "MATCH (x)-[r:RELATES_TO]->(y) WHERE r.relationType = g[2] AND y.namespace = $ns AND y.name = g[1] "
    "  AND (y:Entity OR y:EntityVersion) "
    "  AND NOT EXISTS { MATCH (rv:RelationVersion {namespace: $ns, relationId: r.id}) } "
    "RETURN gi, elementId(r) AS eid, r.id AS id, r.strength AS strength, r.confidence AS confidence, "
    "r.metadata AS metadata, r.version AS version, r.createdAt AS createdAt, r.updatedAt AS updatedAt, "
    "r.validFrom AS validFrom, r.validTo AS validTo, r.changedBy AS changedBy, "
    "EXISTS { MATCH (:Entity {namespace: $ns, name: g[0]}) } AND "
    "EXISTS { MATCH (:Entity {namespace: $ns, name: g[1]}) } AS endsLive";

static const char Q_REL_HISTORY[] =
    "UNWIND $rows AS h "
    "CREATE (:RelationVersion {namespace: $ns, from: h.f, to: h.t, relationType: h.type, "
    "  relationId: h.relationId, version: h.version, strength: h.strength, confidence: h.confidence, "
    "  metadata: h.metadata, createdAt: h.createdAt, updatedAt: h.updatedAt, validFrom: h.validFrom, "
    "  validTo: h.validTo, changedBy: h.changedBy, deleted: h.deleted}) "
    "RETURN count(*) AS n";

static const char Q_REL_LIVE[] =
    "UNWIND $rows AS l "
    "MATCH (a:Entity {namespace: $ns, name: l.f}) MATCH (b:Entity {namespace: $ns, name: l.t}) "
    "CREATE (a)-[:RELATES_TO {id: l.relationId, relationType: l.type, strength: l.strength, "
    "  confidence: l.confidence, metadata: l.metadata, version: l.version, createdAt: l.createdAt, "
    "  updatedAt: l.updatedAt, validFrom: l.validFrom, changedBy: l.changedBy}]->(b) "
    "CREATE (:RelationVersion {namespace: $ns, from: l.f, to: l.t, relationType: l.type, "
    "  relationId: l.relationId, version: l.version, strength: l.strength, confidence: l.confidence, "
    "  metadata: l.metadata, createdAt: l.createdAt, updatedAt: l.updatedAt, validFrom: l.validFrom, "
    "  changedBy: l.changedBy, deleted: false}) "
    "RETURN count(*) AS n";

static const char Q_REL_DELETE[] =
    "UNWIND $rows AS eid MATCH ()-[r:RELATES_TO]->() WHERE elementId(r) = eid DELETE r RETURN count(*) AS n";

/* Fields of a relation version row, from a memento relationship row. */
static json_t *rel_row(const json_t *g, const json_t *r, const char *relation_id, int64_t version, json_t *valid_to,
                       bool deleted)
{
    json_t *o = json_pack("{s:O,s:O,s:O,s:s,s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:b}", "f", json_array_get(g, 0), "t",
                          json_array_get(g, 1), "type", json_array_get(g, 2), "relationId", relation_id, "version",
                          (json_int_t)version, "strength", copy_or_null(r, "strength"), "confidence",
                          copy_or_null(r, "confidence"), "metadata", copy_or_null(r, "metadata"), "createdAt",
                          copy_or_null(r, "createdAt"), "updatedAt", copy_or_null(r, "updatedAt"), "validFrom",
                          json_integer(vfrom(r)), "changedBy", copy_or_null(r, "changedBy"), "deleted", deleted);
    if (o && valid_to)
        json_object_set_new(o, "validTo", valid_to);
    else
        json_decref(valid_to);
    return o;
}

/* Plan one group: distinct versions by id, newest live one current. */
static int plan_group(mig_work *w, const json_t *g, json_t **rs, size_t n, json_t *hist, json_t *live, json_t *del,
                      eg_error *err)
{
    /* every old relationship goes; copies of one version (same id) count once */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (json_array_append(del, json_object_get(rs[i], "eid")))
            return eg_error_oom(err);
        const char *id = graph__jstr(rs[i], "id");
        bool seen = false;
        for (size_t k = 0; k < m && id; k++)
            seen = seen || (graph__jstr(rs[k], "id") && strcmp(graph__jstr(rs[k], "id"), id) == 0);
        if (!seen)
            rs[m++] = rs[i];
    }
    qsort(rs, m, sizeof *rs, cmp_rows);
    bool ends_live = json_is_true(json_object_get(rs[0], "endsLive"));
    ssize_t win = -1;
    for (size_t i = 0; i < m; i++)
        if (is_live(rs[i]) && ends_live)
            win = (ssize_t)i;
    const json_t *idsrc = win >= 0 ? rs[win] : rs[m - 1];
    const char *relation_id = graph__jstr(idsrc, "id") ? graph__jstr(idsrc, "id") : graph__jstr(idsrc, "eid");
    int64_t version = 0;
    for (size_t i = 0; i < m; i++) {
        if ((ssize_t)i == win)
            continue;
        version++;
        json_t *vt = copy_or_null(rs[i], "validTo");
        if (json_is_null(vt)) {
            json_decref(vt);
            size_t next = i + 1 < m && (ssize_t)(i + 1) == win && i + 2 < m ? i + 2 : i + 1;
            vt = json_integer(next < m ? vfrom(rs[next]) : (win >= 0 ? vfrom(rs[win]) : vfrom(rs[i])));
        }
        json_t *h = rel_row(g, rs[i], relation_id, version, vt, win < 0 && i == m - 1);
        if (!h || json_array_append_new(hist, h))
            return eg_error_oom(err);
        w->delta.relation_history++;
    }
    if (win >= 0) {
        json_t *l = rel_row(g, rs[win], relation_id, version + 1, NULL, false);
        if (!l || json_array_append_new(live, l))
            return eg_error_oom(err);
        w->delta.relations++;
    }
    return 0;
}

static int relations_fn(bolt_conn *c, void *payload, eg_error *err)
{
    mig_work *w = payload;
    json_t *rows = NULL, *groups = NULL, *hist = json_array(), *live = json_array(), *del = json_array();
    json_t **grp = NULL;
    bolt_params *p = NULL;
    int rc = hist && live && del ? next_batch(c, w, Q_GROUPS, "groups", &p, &groups, err) : eg_error_oom(err);
    if (!rc && w->done) {
        bolt_params_json(p, "groups", groups);
        rc = graph__params_check(p, err);
        if (!rc)
            rc = graph__q(c, Q_GROUP_RELS, p, &rows, err);
    }
    size_t nr = rc ? 0 : json_array_size(rows);
    if (!rc && nr && !(grp = eg_calloc(nr, sizeof *grp)))
        rc = eg_error_oom(err);
    for (size_t gi = 0; !rc && gi < w->done; gi++) {
        json_t *g = json_array_get(groups, gi);
        size_t k = 0;
        for (size_t r = 0; r < nr; r++)
            if ((size_t)graph__jint(json_array_get(rows, r), "gi", -1) == gi)
                grp[k++] = json_array_get(rows, r);
        if (k == 0) {
            /* nothing matched by name after all (odd names): never pick it again */
            json_array_append(w->skip, g);
            continue;
        }
        rc = plan_group(w, g, grp, k, hist, live, del, err);
    }
    if (!rc)
        rc = run_rows(c, Q_REL_HISTORY, w->ns, hist, err);
    if (!rc)
        rc = run_rows(c, Q_REL_LIVE, w->ns, live, err);
    if (!rc)
        rc = run_rows(c, Q_REL_DELETE, w->ns, del, err);
    w->delta.relationships = (int64_t)json_array_size(del);
    bolt_params_free(p);
    eg_free(grp);
    json_decref(rows);
    json_decref(groups);
    json_decref(hist);
    json_decref(live);
    json_decref(del);
    return rc;
}

static void add_stats(graph_migrate_stats *a, const graph_migrate_stats *d)
{
    a->names += d->names;
    a->entities += d->entities;
    a->history += d->history;
    a->duplicates += d->duplicates;
    a->conflicts += d->conflicts;
    a->records += d->records;
    a->jobs += d->jobs;
    a->relationships += d->relationships;
    a->relations += d->relations;
    a->relation_history += d->relation_history;
}

int graph_migrate_memento(graph_store *g, const char *ns, size_t batch, graph_migrate_progress_fn progress,
                          void *ctx, graph_migrate_stats *out, eg_error *err)
{
    memset(out, 0, sizeof *out);
    mig_work w = {.g = g, .ns = ns ? ns : g->opts.ns, .batch = batch ? batch : 200};
    if (!(w.skip = json_array()))
        return eg_error_oom(err);
    int rc = 0;
    /* Each unit of work starts from what is committed, so a retried or
     * interrupted batch is simply picked up again. */
    for (;;) {
        rc = graph__write(g, entities_fn, &w, err);
        if (rc)
            break;
        add_stats(out, &w.delta);
        if (progress)
            progress(ctx, out, false);
        if (w.done == 0)
            break;
    }
    json_array_clear(w.skip);
    for (; rc == 0;) {
        rc = graph__write(g, relations_fn, &w, err);
        if (rc)
            break;
        add_stats(out, &w.delta);
        if (progress)
            progress(ctx, out, false);
        if (w.done == 0)
            break;
    }
    json_decref(w.skip);
    if (rc == 0 && progress)
        progress(ctx, out, true);
    return rc;
}
