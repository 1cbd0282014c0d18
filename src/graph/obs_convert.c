/*
 * obs_convert.c - observation records for data written before them
 * (graph.h, graph_obs_convert): graph schema migration 12, the end of an
 * import of an engram export (cmd_io.c) and the memento migration
 * (migrate.c, in its own transactions) all turn observation lists into
 * records here, so there is one definition of how a history becomes records.
 *
 * Before observation records, every :EntityVersion copied the entity's whole
 * list.  A record is one observation over one interval of versions: it
 * starts at the version that added it and ends at the first version without
 * it.  Walking an entity's versions in order and diffing consecutive lists
 * gives those intervals; the records are numbered (seq) in the order added,
 * and an entity's list only ever grows at its end (graph__obs_apply), so
 * every version's list is its live records in seq order - which is how
 * history reads a version without a copy (read.c, GRAPH_VERSION_OBS).  A
 * list that is not in that order (an entry moved, a duplicate) closes the
 * records from the first entry out of order and opens new ones, so the
 * answer stays exactly the copy.
 *
 * A version without a copy in an entity that still has copies was written by
 * an engram that had records but ran before this conversion: its list is the
 * previous one with the records it opened added and the ones it closed
 * removed (what it closed of the older observations had no record to close:
 * that part of history is lost, the live list still wins at the end).  Its
 * records are rebuilt with the rest (the old ones deleted, their queued jobs
 * then find no record and end as gone).
 *
 * The live list wins: the entity's current version is its live list, even
 * where the history's copy of that version says otherwise (counted as
 * repaired), because every live read already answers with the live list.
 *
 * Each batch is one write transaction that takes the live entities' locks
 * first (as every write does), so a write racing the conversion waits for
 * it and then sees records.  What is converted no longer matches the
 * selection (no copy left, obsSeq set), so re-running converts nothing
 * twice and a crash resumes with what is left.
 */
#include "graph/graph_int.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define CONVERT_BATCH 200
#define CONVERT_LOG_MS 2000

/* The entities that still need converting (graph.h). */
#define NEEDS_CONVERT_                                                                                            \
    "CALL { MATCH (h:EntityVersion) WHERE h.observations IS NOT NULL AND h.entityId IS NOT NULL "               \
    "  AND h.namespace IS NOT NULL AND ($ns IS NULL OR h.namespace = $ns) "                                      \
    "  RETURN h.namespace AS ns, h.entityId AS id "                                                            \
    "  UNION MATCH (e:Entity) WHERE e.obsSeq IS NULL AND e.id IS NOT NULL AND e.namespace IS NOT NULL "         \
    "  AND ($ns IS NULL OR e.namespace = $ns) RETURN e.namespace AS ns, e.id AS id } "
static const char Q_TODO[] = NEEDS_CONVERT_ "RETURN ns, id ORDER BY ns, id";
static const char Q_TODO_COUNT[] = NEEDS_CONVERT_ "RETURN count(*) AS n";

/* The live entities' locks first, as every write takes them; then which of
 * the entities still need converting (another run may have done some since
 * the list was made), then the state of the live ones. */
static const char Q_LOCK[] =
    "UNWIND $keys AS k MATCH (e:Entity {id: k.id}) WHERE e.namespace = $ns "
    "SET e.lockSeq = coalesce(e.lockSeq, 0) + 1";

static const char Q_STILL[] =
    "UNWIND $keys AS k OPTIONAL MATCH (e:Entity {id: k.id}) WHERE e.namespace = $ns "
    "WITH k, e WHERE (e IS NOT NULL AND e.obsSeq IS NULL) OR EXISTS { MATCH (h:EntityVersion "
    "  {namespace: $ns, entityId: k.id}) WHERE h.observations IS NOT NULL } "
    "RETURN k.id AS id ORDER BY k.i";

static const char Q_LIVE[] =
    "UNWIND $keys AS k MATCH (e:Entity {id: k.id}) WHERE e.namespace = $ns "
    "RETURN k.i AS i, e.name AS name, e.entityType AS type, e.observations AS obs, e.version AS version, "
    "coalesce(e.validFrom, e.updatedAt, e.createdAt) AS validFrom, e.changedBy AS changedBy";

/* One map per version, streamed in (entity, version) order. */
static const char Q_VERSIONS[] =
    "UNWIND $keys AS k MATCH (h:EntityVersion {namespace: $ns, entityId: k.id}) "
    "WITH k, h ORDER BY k.i, h.version "
    "RETURN {i: k.i, version: h.version, name: h.name, type: h.entityType, "
    "  validFrom: coalesce(h.validFrom, h.createdAt), validTo: h.validTo, changedBy: h.changedBy, "
    "  obs: h.observations, "
    "  added: CASE WHEN h.observations IS NULL THEN COLLECT { MATCH (o:ObservationRecord "
    "    {namespace: $ns, entityId: k.id}) WHERE o.fromVersion = h.version RETURN o.text ORDER BY o.seq } END, "
    "  removed: CASE WHEN h.observations IS NULL THEN COLLECT { MATCH (o:ObservationRecord "
    "    {namespace: $ns, entityId: k.id}) WHERE o.toVersion = h.version RETURN o.text } END} AS x";

static const char Q_DROP[] =
    "UNWIND $keys AS k MATCH (o:ObservationRecord {namespace: $ns, entityId: k.id}) DETACH DELETE o";

/* Absent values (validTo, toVersion, closedBy of a live record) are null in
 * $recs, and CREATE leaves a null property unset. */
static const char Q_CREATE[] =
    "UNWIND $recs AS r "
    "CREATE (o:ObservationRecord {namespace: $ns, entityId: r.entityId, id: r.id, seq: r.seq, text: r.text, "
    "  contentHash: r.hash, validFrom: r.validFrom, fromVersion: r.fromVersion, changedBy: r.changedBy, "
    "  validTo: r.validTo, toVersion: r.toVersion, closedBy: r.closedBy}) "
    "WITH o, r WHERE r.live SET o:Observation";

static const char Q_FINISH[] =
    "UNWIND $live AS x MATCH (e:Entity {id: x.id}) WHERE e.namespace = $ns SET e.obsSeq = x.seq";

static const char Q_STRIP[] =
    "UNWIND $keys AS k MATCH (h:EntityVersion {namespace: $ns, entityId: k.id}) "
    "WHERE h.observations IS NOT NULL REMOVE h.observations RETURN count(h) AS n";

/* ---- one entity's walk ---- */

typedef struct cv_rec {
    json_t *text;       /* a string (owned reference) */
    int64_t seq, from_version;
    json_t *valid_from; /* owned reference, may be JSON null */
    json_t *by;         /* owned reference or NULL */
} cv_rec;

/* The batch's outputs (rebuilt on each attempt of the transaction). */
typedef struct cv_out {
    json_t *recs;    /* rows of Q_CREATE */
    json_t *live;    /* rows of Q_FINISH: {id, seq} */
    json_t *outbox;  /* embedding jobs of the live records (borrowed) */
    graph_obs_convert_stats *delta;
} cv_out;

typedef struct cv_entity {
    const char *id;        /* borrowed */
    const json_t *row;     /* the live entity's lock row (borrowed), NULL: deleted */
    const char *name, *type;
    json_t *named_by;      /* the version row name and type came from (owned), NULL: the live row */
    cv_rec *cur;           /* open records, in seq order */
    size_t n;
    int64_t seq, last_version;
    json_t *pending;       /* the last version row, not applied yet (owned) */
} cv_entity;

static void rec_clear(cv_rec *r)
{
    json_decref(r->text);
    json_decref(r->valid_from);
    json_decref(r->by);
    memset(r, 0, sizeof *r);
}

static void entity_clear(cv_entity *x)
{
    for (size_t i = 0; i < x->n; i++)
        rec_clear(&x->cur[i]);
    eg_free(x->cur);
    json_decref(x->named_by);
    json_decref(x->pending);
    memset(x, 0, sizeof *x);
}

static bool same_text(const json_t *a, const json_t *b)
{
    size_t n = json_string_length(a);
    return n == json_string_length(b) && memcmp(json_string_value(a), json_string_value(b), n) == 0;
}

/* A list as stored: a list, or (memento) JSON text of one.  New reference. */
static json_t *as_list(const json_t *v)
{
    if (json_is_array(v))
        return json_incref((json_t *)v);
    json_t *d = json_is_string(v) ? json_loads(json_string_value(v), 0, NULL) : NULL;
    if (json_is_array(d))
        return d;
    json_decref(d);
    return json_array();
}

/*
 * Emit record r: closed (to_version > 0: at that version; valid_to and
 * closed_by borrowed, each may be NULL) or live (to_version 0: labelled
 * :Observation, with an embedding job).  Takes r's references.
 */
static int emit(cv_entity *x, cv_rec *r, int64_t to_version, json_t *valid_to, json_t *closed_by, cv_out *o,
                eg_error *err)
{
    char id[33], hash[65], *text = NULL;
    int rc = eg_rand_hex(id, (sizeof id - 1) / 2) == 0
                 ? 0
                 : eg_error_set(err, EG_EINTERNAL, EG_CLASS_NONE, "observation records: no randomness");
    if (rc == 0)
        rc = graph_observation_text(x->name ? x->name : "", x->type ? x->type : "", json_string_value(r->text),
                                    &text, hash, err);
    eg_free(text);
    bool live = to_version == 0;
    json_t *row = rc == 0 ? json_pack("{s:s, s:s, s:I, s:O, s:s, s:I, s:O, s:O?, s:o, s:O?, s:O?, s:b}",
                                      "entityId", x->id, "id", id, "seq", (json_int_t)r->seq, "text", r->text,
                                      "hash", hash, "fromVersion", (json_int_t)r->from_version, "validFrom",
                                      r->valid_from, "changedBy", r->by, "toVersion",
                                      live ? json_null() : json_integer(to_version), "validTo", valid_to,
                                      "closedBy", closed_by, "live", live)
                          : NULL;
    rec_clear(r);
    if (rc != 0)
        return rc;
    if (row == NULL || json_array_append_new(o->recs, row) != 0)
        return eg_error_oom(err);
    o->delta->records++;
    if (!live)
        return 0;
    o->delta->live++;
    /* The job of a new record (graph__obs_records): version 1, kind observation. */
    rc = graph__outbox_add(o->outbox, id, 1, x->name ? x->name : "", hash, err);
    json_t *job = json_array_get(o->outbox, json_array_size(o->outbox) - 1);
    if (rc == 0 && (job == NULL || json_object_set_new(job, "kind", json_string("observation")) != 0))
        rc = eg_error_oom(err);
    return rc;
}

/*
 * Version `version` (valid from valid_from, written by by) has `list`: keep
 * the open records that start the list in seq order, close the others at
 * this version, open new records for the rest of the list.
 */
static int step(cv_entity *x, const json_t *list, int64_t version, json_t *valid_from, json_t *by, cv_out *o,
                eg_error *err)
{
    size_t n = json_array_size(list), nn = 0, j = 0;
    cv_rec *next = eg_calloc(x->n + n + 1, sizeof *next);
    if (next == NULL)
        return eg_error_oom(err);
    bool keeping = true;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_t *t = json_array_get(list, i);
        if (!json_is_string(t))
            continue; /* not an observation (memento's odd values were turned into strings before) */
        if (keeping) {
            size_t k = j;
            while (k < x->n && !same_text(x->cur[k].text, t))
                k++;
            if (k < x->n) {
                /* the ones skipped are not in this version (or out of order): closed here */
                for (; j < k && rc == 0; j++)
                    rc = emit(x, &x->cur[j], version, valid_from, by, o, err);
                next[nn++] = x->cur[k];
                memset(&x->cur[k], 0, sizeof x->cur[k]);
                j = k + 1;
                continue;
            }
            keeping = false; /* everything from here on is newer than every open record */
        }
        cv_rec *r = &next[nn++];
        r->text = json_incref(t);
        r->seq = ++x->seq;
        r->from_version = version;
        r->valid_from = json_incref(valid_from);
        r->by = by ? json_incref(by) : NULL;
    }
    for (; j < x->n && rc == 0; j++)
        rc = emit(x, &x->cur[j], version, valid_from, by, o, err);
    for (size_t i = 0; i < x->n; i++)
        rec_clear(&x->cur[i]);
    eg_free(x->cur);
    x->cur = next;
    x->n = nn;
    x->last_version = version;
    return rc;
}

/* The open records' texts, in seq order (new). */
static json_t *open_texts(const cv_entity *x)
{
    json_t *l = json_array();
    for (size_t i = 0; l && i < x->n; i++)
        if (json_array_append(l, x->cur[i].text) != 0) {
            json_decref(l);
            return NULL;
        }
    return l;
}

/* A version row's list: its copy, or (written with records) the open list
 * with the records it closed taken out and the ones it opened added. New. */
static json_t *row_list(const cv_entity *x, const json_t *row)
{
    const json_t *copy = json_object_get(row, "obs");
    if (copy != NULL && !json_is_null(copy))
        return as_list(copy);
    json_t *l = open_texts(x);
    size_t i;
    json_t *t;
    json_array_foreach(l ? json_object_get(row, "removed") : NULL, i, t)
    {
        for (size_t k = 0; k < json_array_size(l); k++)
            if (json_is_string(t) && same_text(json_array_get(l, k), t)) {
                json_array_remove(l, k);
                break;
            }
    }
    if (l && json_array_extend(l, json_object_get(row, "added")) != 0) {
        json_decref(l);
        return NULL;
    }
    return l;
}

static int apply_row(cv_entity *x, const json_t *row, const json_t *list, cv_out *o, eg_error *err)
{
    json_t *owned = list ? NULL : row_list(x, row);
    if (list == NULL && owned == NULL)
        return eg_error_oom(err);
    int64_t v = graph__jint(row, "version", x->last_version + 1);
    json_t *vf = json_object_get(row, "validFrom");
    json_t *by = json_object_get(row, "changedBy");
    int rc = step(x, list ? list : owned, v, vf ? vf : json_null(), json_is_null(by) ? NULL : by, o, err);
    json_decref(owned);
    return rc;
}

/* The next version row of x: the one before it can now be applied. */
static int version_row(cv_entity *x, json_t *row, cv_out *o, eg_error *err)
{
    int rc = x->pending ? apply_row(x, x->pending, NULL, o, err) : 0;
    json_decref(x->pending);
    x->pending = json_incref(row);
    if (x->row == NULL && x->named_by == NULL) {
        x->named_by = json_incref(row);
        x->name = graph__jstr(row, "name");
        x->type = graph__jstr(row, "type");
    }
    return rc;
}

/* x's history is read: write its ending (see the file comment). */
static int finish(cv_entity *x, cv_out *o, eg_error *err)
{
    int rc = 0;
    o->delta->entities++;
    if (x->row == NULL) {
        /* deleted: its records end one past its last version (as
         * delete_entities closes them), at that version's end */
        if (x->pending == NULL)
            return 0; /* gone meanwhile: nothing left to convert */
        rc = apply_row(x, x->pending, NULL, o, err);
        json_t *vt = json_object_get(x->pending, "validTo");
        int64_t end = x->last_version + 1;
        /* (emit clears each record it writes: entity_clear frees the rest) */
        for (size_t i = 0; i < x->n && rc == 0; i++)
            rc = emit(x, &x->cur[i], end, vt, NULL, o, err);
        return rc;
    }
    json_t *live = as_list(json_object_get(x->row, "obs"));
    if (live == NULL)
        return eg_error_oom(err);
    int64_t v = graph__jint(x->row, "version", 0);
    if (x->pending && graph__jint(x->pending, "version", 0) >= v) {
        /* the current version: the live list wins over its copy */
        json_t *said = row_list(x, x->pending);
        if (said == NULL)
            rc = eg_error_oom(err);
        else if (!json_equal(said, live))
            o->delta->repaired++;
        json_decref(said);
        if (rc == 0)
            rc = apply_row(x, x->pending, live, o, err);
    } else {
        bool had_history = x->pending != NULL;
        if (x->pending)
            rc = apply_row(x, x->pending, NULL, o, err);
        json_t *said = rc == 0 && had_history ? open_texts(x) : NULL;
        if (said && !json_equal(said, live))
            o->delta->repaired++;
        json_decref(said);
        /* no version for the live state: it counts from the entity's own */
        json_t *vf = json_object_get(x->row, "validFrom"), *by = json_object_get(x->row, "changedBy");
        if (rc == 0)
            rc = step(x, live, v > x->last_version ? v : x->last_version + 1, vf ? vf : json_null(),
                      json_is_null(by) ? NULL : by, o, err);
    }
    json_decref(live);
    for (size_t i = 0; i < x->n && rc == 0; i++)
        rc = emit(x, &x->cur[i], 0, NULL, NULL, o, err);
    json_t *fin = rc == 0 ? json_pack("{s:s, s:I}", "id", x->id, "seq", (json_int_t)x->seq) : NULL;
    if (rc == 0 && (fin == NULL || json_array_append_new(o->live, fin) != 0))
        rc = eg_error_oom(err);
    return rc;
}

/* ---- one batch, inside a write transaction ---- */

static void begin_entity(cv_entity *x, const json_t *keys, json_t *const *lock_by_i, size_t i)
{
    memset(x, 0, sizeof *x);
    x->id = graph__jstr(json_array_get(keys, i), "id");
    x->row = lock_by_i[i];
    if (x->row) {
        x->name = graph__jstr(x->row, "name");
        x->type = graph__jstr(x->row, "type");
    }
}

typedef struct walk_ctx {
    const json_t *keys;
    json_t *const *lock_by_i;
    cv_out *o;
    cv_entity x;   /* the entity being walked */
    size_t at;     /* its index in keys */
} walk_ctx;

/* Entity w->at is read: finish it and start the next. */
static int walk_next(walk_ctx *w, eg_error *err)
{
    int rc = finish(&w->x, w->o, err);
    entity_clear(&w->x);
    if (++w->at < json_array_size(w->keys))
        begin_entity(&w->x, w->keys, w->lock_by_i, w->at);
    return rc;
}

static int walk_row(void *ctx, const bolt_value *rec, eg_error *err)
{
    walk_ctx *w = ctx;
    json_t *row = bolt_value_to_json(bolt_value_at(rec, 0));
    int64_t i = graph__jint(row, "i", -1);
    int rc = 0;
    if (row == NULL)
        rc = eg_error_oom(err);
    else if (i < 0 || (size_t)i >= json_array_size(w->keys) || (size_t)i < w->at)
        rc = eg_error_set(err, EG_EPROTO, EG_CLASS_DATABASE, "observation records: version row out of order");
    while (rc == 0 && w->at < (size_t)i)
        rc = walk_next(w, err);
    if (rc == 0)
        rc = version_row(&w->x, row, w->o, err);
    json_decref(row);
    return rc;
}

/* Stream the versions of the batch's entities and walk each (o filled). */
static int walk(bolt_conn *c, const bolt_params *p, const json_t *keys, json_t *const *lock_by_i, cv_out *o,
                eg_error *err)
{
    walk_ctx w = {keys, lock_by_i, o, {0}, 0};
    begin_entity(&w.x, keys, lock_by_i, 0);
    int rc = graph__stream(c, Q_VERSIONS, p, NULL, walk_row, &w, err);
    while (rc == 0 && w.at < json_array_size(keys))
        rc = walk_next(&w, err);
    entity_clear(&w.x);
    return rc;
}

/* keys for ids: [{i, id}] (new). */
static json_t *keys_of(const json_t *ids)
{
    json_t *keys = json_array();
    for (size_t i = 0; keys && i < json_array_size(ids); i++) {
        json_t *k = json_pack("{s:I, s:O}", "i", (json_int_t)i, "id", json_array_get(ids, i));
        if (k == NULL || json_array_append_new(keys, k) != 0) {
            json_decref(keys);
            return NULL;
        }
    }
    return keys;
}

/* $ns and $keys for ids (new); *keys_out (new) the keys. */
static bolt_params *key_params(const char *ns, const json_t *ids, json_t **keys_out, eg_error *err)
{
    *keys_out = keys_of(ids);
    bolt_params *p = *keys_out ? graph__params(err) : NULL;
    if (*keys_out == NULL)
        eg_error_oom(err);
    if (p != NULL) {
        bolt_params_str(p, "ns", ns);
        bolt_params_json(p, "keys", *keys_out);
        if (graph__params_check(p, err) != 0) {
            bolt_params_free(p);
            p = NULL;
        }
    }
    if (p == NULL) {
        json_decref(*keys_out);
        *keys_out = NULL;
    }
    return p;
}

/* Lock the live ones among ids, keep those still to convert: *still new. */
static int lock_still(bolt_conn *c, const char *ns, const json_t *ids, json_t **still, eg_error *err)
{
    *still = NULL;
    json_t *keys = NULL, *rows = NULL;
    bolt_params *p = key_params(ns, ids, &keys, err);
    int rc = p ? graph__x(c, Q_LOCK, p, err) : EG_ENOMEM;
    if (rc == 0)
        rc = graph__q(c, Q_STILL, p, &rows, err);
    if (rc == 0 && (*still = json_array()) == NULL)
        rc = eg_error_oom(err);
    size_t i;
    json_t *row;
    json_array_foreach(rc == 0 ? rows : NULL, i, row)
    {
        if (json_array_append(*still, json_object_get(row, "id")) != 0) {
            rc = eg_error_oom(err);
            break;
        }
    }
    if (rc != 0) {
        json_decref(*still);
        *still = NULL;
    }
    json_decref(rows);
    json_decref(keys);
    bolt_params_free(p);
    return rc;
}

/* Write what the walk made: records, obsSeq, no copies left. */
static int write_out(bolt_conn *c, const char *ns, const bolt_params *p, cv_out *o, eg_error *err)
{
    /* the records of an entity converted halfway (see the file comment) go first */
    int rc = graph__x(c, Q_DROP, p, err);
    bolt_params *q = rc == 0 ? graph__params(err) : NULL;
    if (rc == 0 && q == NULL)
        rc = EG_ENOMEM;
    if (rc == 0) {
        bolt_params_str(q, "ns", ns);
        bolt_params_json(q, "recs", o->recs);
        bolt_params_json(q, "live", o->live);
        rc = graph__params_check(q, err);
    }
    if (rc == 0 && json_array_size(o->recs) > 0)
        rc = graph__x(c, Q_CREATE, q, err);
    if (rc == 0 && json_array_size(o->live) > 0)
        rc = graph__x(c, Q_FINISH, q, err);
    bolt_params_free(q);
    json_t *stripped = NULL;
    if (rc == 0)
        rc = graph__q(c, Q_STRIP, p, &stripped, err);
    if (rc == 0)
        o->delta->versions += graph__jint(json_array_get(stripped, 0), "n", 0);
    json_decref(stripped);
    return rc;
}

int graph__obs_convert_tx(bolt_conn *c, const char *ns, const json_t *ids, json_t *outbox,
                          graph_obs_convert_stats *delta, eg_error *err)
{
    if (json_array_size(ids) == 0)
        return 0;
    json_t *still = NULL, *keys = NULL, *live = NULL;
    int rc = lock_still(c, ns, ids, &still, err);
    size_t n = json_array_size(still);
    if (rc != 0 || n == 0) {
        json_decref(still);
        return rc;
    }
    json_t **lock_by_i = eg_calloc(n, sizeof *lock_by_i);
    cv_out o = {json_array(), json_array(), outbox, delta};
    bolt_params *p = NULL;
    rc = lock_by_i && o.recs && o.live ? 0 : eg_error_oom(err);
    if (rc == 0 && (p = key_params(ns, still, &keys, err)) == NULL)
        rc = EG_ENOMEM;
    if (rc == 0)
        rc = graph__q(c, Q_LIVE, p, &live, err);
    size_t k;
    json_t *row;
    json_array_foreach(rc == 0 ? live : NULL, k, row)
    {
        int64_t i = graph__jint(row, "i", -1);
        if (i >= 0 && (size_t)i < n)
            lock_by_i[i] = row;
    }
    if (rc == 0)
        rc = walk(c, p, keys, lock_by_i, &o, err);
    if (rc == 0)
        rc = write_out(c, ns, p, &o, err);
    bolt_params_free(p);
    json_decref(live);
    json_decref(keys);
    json_decref(still);
    json_decref(o.recs);
    json_decref(o.live);
    eg_free(lock_by_i);
    return rc;
}

/* ---- the driver ---- */

typedef struct todo_list {
    char **ns, **id; /* ns[i] points at an interned string (owned by the first of its run) */
    bool *ns_owner;
    size_t n, cap;
} todo_list;

static void todo_free(todo_list *t)
{
    for (size_t i = 0; i < t->n; i++) {
        if (t->ns_owner[i])
            eg_free(t->ns[i]);
        eg_free(t->id[i]);
    }
    eg_free(t->ns);
    eg_free(t->id);
    eg_free(t->ns_owner);
    memset(t, 0, sizeof *t);
}

static int todo_add(todo_list *t, const char *ns, const char *id, eg_error *err)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        char **a = eg_realloc(t->ns, cap * sizeof *a);
        if (a)
            t->ns = a;
        char **b = eg_realloc(t->id, cap * sizeof *b);
        if (b)
            t->id = b;
        bool *c = eg_realloc(t->ns_owner, cap * sizeof *c);
        if (c)
            t->ns_owner = c;
        if (!a || !b || !c)
            return eg_error_oom(err);
        t->cap = cap;
    }
    bool same = t->n > 0 && strcmp(t->ns[t->n - 1], ns) == 0; /* rows come ordered by namespace */
    t->ns[t->n] = same ? t->ns[t->n - 1] : eg_strdup(ns);
    t->ns_owner[t->n] = !same;
    t->id[t->n] = eg_strdup(id);
    if (!t->ns[t->n] || !t->id[t->n]) {
        if (!same)
            eg_free(t->ns[t->n]);
        eg_free(t->id[t->n]);
        return eg_error_oom(err);
    }
    t->n++;
    return 0;
}

typedef struct todo_work {
    const char *ns;
    todo_list list;
    int64_t count;
    bool count_only;
} todo_work;

static int todo_row(void *ctx, const bolt_value *rec, eg_error *err)
{
    todo_work *w = ctx;
    if (w->count_only) {
        w->count = bolt_value_int(bolt_value_at(rec, 0), 0);
        return 0;
    }
    const char *ns = bolt_value_cstr(bolt_value_at(rec, 0)), *id = bolt_value_cstr(bolt_value_at(rec, 1));
    return ns && id ? todo_add(&w->list, ns, id, err) : 0;
}

static int todo_fn(bolt_conn *c, void *payload, eg_error *err)
{
    todo_work *w = payload;
    todo_free(&w->list);
    w->count = 0;
    bolt_params *p = graph__params(err);
    if (p == NULL)
        return EG_ENOMEM;
    bolt_params_str(p, "ns", w->ns);
    int rc = graph__params_check(p, err);
    if (rc == 0)
        rc = graph__stream(c, w->count_only ? Q_TODO_COUNT : Q_TODO, p, NULL, todo_row, w, err);
    bolt_params_free(p);
    if (!w->count_only)
        w->count = (int64_t)w->list.n;
    return rc;
}

int graph_obs_convert_count(graph_store *g, const char *ns, int64_t *total, eg_error *err)
{
    *total = 0;
    todo_work w = {.ns = ns, .count_only = true};
    int rc = graph__read(g, todo_fn, &w, err);
    *total = w.count;
    return rc;
}

typedef struct batch_work {
    graph_store *g;
    const char *ns;
    json_t *ids;
    graph_obs_convert_stats delta;
} batch_work;

static int batch_fn(bolt_conn *c, void *payload, eg_error *err)
{
    batch_work *w = payload;
    memset(&w->delta, 0, sizeof w->delta);
    json_t *outbox = json_array();
    int rc = outbox ? graph__obs_convert_tx(c, w->ns, w->ids, outbox, &w->delta, err) : eg_error_oom(err);
    size_t jobs = 0;
    if (rc == 0)
        rc = graph__outbox_flush(w->g, c, w->ns, outbox, NULL, &jobs, err);
    w->delta.jobs = (int64_t)jobs;
    json_decref(outbox);
    return rc;
}

static void add_stats(graph_obs_convert_stats *a, const graph_obs_convert_stats *d)
{
    a->entities += d->entities;
    a->records += d->records;
    a->live += d->live;
    a->versions += d->versions;
    a->repaired += d->repaired;
    a->jobs += d->jobs;
}

static void log_progress(const graph_obs_convert_stats *s, int64_t t0)
{
    double secs = (double)(eg_mono_ms() - t0) / 1000.0;
    EG_INFO("graph",
            "observation records: %" PRId64 "/%" PRId64 " entities converted (%" PRId64 " records, %" PRId64
            " live, %" PRId64 " version copies removed, %.0f entities/s)",
            s->entities, s->total, s->records, s->live, s->versions, secs > 0 ? (double)s->entities / secs : 0.0);
}

int graph_obs_convert(graph_store *g, const char *ns, size_t batch, graph_obs_convert_stats *st, eg_error *err)
{
    graph_obs_convert_stats sum = {0};
    if (st)
        *st = sum;
    if (batch == 0)
        batch = CONVERT_BATCH;
    int64_t t0 = eg_mono_ms(), last_log = t0;
    todo_work tw = {.ns = ns};
    int rc = graph__read(g, todo_fn, &tw, err);
    sum.total = tw.count;
    if (rc == 0 && sum.total > 0)
        EG_INFO("graph", "observation records: %" PRId64 " entities to convert, %zu per transaction", sum.total,
                batch);
    batch_work w = {.g = g};
    for (size_t at = 0; rc == 0 && at < tw.list.n;) {
        /* a batch: up to `batch` entities of one namespace (the queue's jobs are per namespace) */
        w.ns = tw.list.ns[at];
        w.ids = json_array();
        size_t end = at;
        while (w.ids && end < tw.list.n && end - at < batch && tw.list.ns[end] == w.ns)
            if (json_array_append_new(w.ids, json_string(tw.list.id[end++])) != 0)
                break;
        if (w.ids == NULL || json_array_size(w.ids) != end - at)
            rc = eg_error_oom(err);
        if (rc == 0)
            rc = graph__write(g, batch_fn, &w, err);
        json_decref(w.ids);
        if (rc != 0)
            break;
        add_stats(&sum, &w.delta);
        at = end;
        if (eg_mono_ms() - last_log >= CONVERT_LOG_MS || at == tw.list.n) {
            log_progress(&sum, t0);
            last_log = eg_mono_ms();
        }
    }
    if (rc == 0 && sum.repaired > 0)
        EG_WARN("graph",
                "observation records: %" PRId64 " entities had a history that disagreed with their live "
                "observations; their current version now shows the live list (docs/data-model.md)",
                sum.repaired);
    todo_free(&tw.list);
    if (st)
        *st = sum;
    return rc;
}
