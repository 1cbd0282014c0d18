/*
 * mutate.c - entity and relation mutations with temporal history and the
 * embedding-job outbox.
 *
 * Every mutation runs in one managed write transaction (bolt_pool_execute_write,
 * retried as a whole on transient errors, so the work functions rebuild their
 * outputs from scratch on each attempt).  Per entity:
 *
 *   1. lock + read   MERGE/MATCH the live :Entity, bump e.lockSeq (taking the
 *                    node's write lock *before* reading, so two concurrent
 *                    add_observations cannot lose each other's update: Neo4j
 *                    is read-committed) and return its state.
 *   2. compute       new observation list, version, embedding text + sha256 in C.
 *   3. write         SET the live node, close the open EntityVersion
 *                    (validTo = now), CREATE the new EntityVersion.
 *   4. enqueue       queue_enqueue on the same connection/transaction.
 *
 * Only the touched entity is ever read: nothing scales with the graph size
 * (memento loaded the whole graph on every create_entities).
 */
#include "graph/graph_int.h"

#include "core/alloc.h"
#include "core/clock.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define LOCK_RETURN                                                                             \
    "RETURN e.id AS id, e.version AS version, e.entityType AS entityType, "                   \
    "e.observations AS observations, " GRAPH_ENTITY_PROJ("e") " AS entity"

static const char Q_MERGE_LOCK[] =
    "MERGE (e:Entity {namespace: $ns, name: $name}) "
    "ON CREATE SET e.id = randomUUID(), e.version = 0, e.entityType = $type, "
    "e.observations = [], e.createdAt = $now "
    "SET e.lockSeq = coalesce(e.lockSeq, 0) + 1 " LOCK_RETURN;

static const char Q_MATCH_LOCK[] =
    "MATCH (e:Entity {namespace: $ns, name: $name}) "
    "SET e.lockSeq = coalesce(e.lockSeq, 0) + 1 " LOCK_RETURN;

static const char Q_WRITE_ENTITY[] =
    "MATCH (e:Entity {namespace: $ns, name: $name}) "
    "SET e.observations = $obs, e.entityType = $type, e.version = $version, "
    "e.updatedAt = $now, e.validFrom = $now, e.changedBy = $by, e.contentHash = $hash "
    "SET e:" GRAPH_SEARCH_STALE_LABEL " "
    "WITH e "
    "OPTIONAL MATCH (old:EntityVersion {namespace: $ns, entityId: e.id}) WHERE old.validTo IS NULL "
    "SET old.validTo = $now "
    "WITH DISTINCT e "
    "CREATE (h:EntityVersion {namespace: $ns, name: e.name, entityId: e.id, version: e.version, "
    "entityType: e.entityType, observations: e.observations, createdAt: e.createdAt, "
    "updatedAt: $now, validFrom: $now, changedBy: $by, deleted: false}) "
    "RETURN " GRAPH_ENTITY_PROJ("e") " AS entity";

/* ---- job enqueue ---- */

int graph_outbox_add(json_t *outbox, const char *entity_id, int64_t version, const char *name,
                     const char *hash, eg_error *err)
{
    json_t *o = json_pack("{sssIssss}", "id", entity_id, "version", (json_int_t)version, "name",
                          name, "hash", hash);
    if (o == NULL || json_array_append_new(outbox, o) != 0)
        return graph_oom(err);
    return 0;
}

int graph_outbox_flush(graph_store *g, bolt_conn *c, const char *ns, const json_t *outbox,
                       json_t *job_ids, size_t *created_out, eg_error *err)
{
    if (created_out)
        *created_out = 0;
    size_t n = json_array_size(outbox);
    if (g->queue == NULL || n == 0)
        return 0;
    /* One queue_enqueue for the whole call: one round trip, same transaction. */
    queue_enqueue_req *reqs = eg_calloc(n, sizeof *reqs);
    queue_enqueue_result *res = eg_calloc(n, sizeof *res);
    char (*ver)[24] = eg_calloc(n, sizeof *ver);
    char **payload = eg_calloc(n, sizeof *payload);
    int rc = (reqs && res && ver && payload) ? 0 : graph_oom(err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const json_t *it = json_array_get(outbox, i);
        snprintf(ver[i], sizeof ver[i], "%" PRId64, graph_jint(it, "version", 0));
        json_t *pl = json_pack("{sOsO}", "name", json_object_get(it, "name"), "hash",
                               json_object_get(it, "hash"));
        payload[i] = pl ? json_dumps(pl, JSON_COMPACT) : NULL;
        json_decref(pl);
        if (payload[i] == NULL) {
            rc = graph_oom(err);
            break;
        }
        reqs[i].ns = ns;
        reqs[i].entity = graph_jstr(it, "id");
        reqs[i].version = ver[i];
        reqs[i].model = g->opts.embedding_model;
        reqs[i].payload = payload[i];
        /* The version was read under the entity's lock: it orders this job
         * against the entity's other jobs (never supersede a newer one). */
        reqs[i].seq = graph_jint(it, "version", 0);
    }
    if (rc == 0) {
        queue_tx tx = QUEUE_TX_BOLT(c);
        rc = queue_enqueue(g->queue, &tx, reqs, n, res, err);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (res[i].created && created_out)
            (*created_out)++;
        if (job_ids != NULL && res[i].id[0] != '\0')
            json_array_append_new(job_ids, json_string(res[i].id));
    }
    for (size_t i = 0; payload && i < n; i++)
        free(payload[i]); /* json_dumps memory comes from jansson's allocator (malloc) */
    eg_free(payload);
    eg_free(ver);
    eg_free(res);
    eg_free(reqs);
    return rc;
}

/* ---- observation lists ---- */

/* Stored observations as an array (memento stored a JSON string). New reference. */
static json_t *stored_obs(const json_t *v)
{
    if (json_is_array(v))
        return json_incref((json_t *)v);
    if (json_is_string(v)) {
        json_t *d = json_loads(json_string_value(v), 0, NULL);
        if (json_is_array(d))
            return d;
        json_decref(d);
    }
    return json_array();
}

typedef enum apply_kind { APPLY_MERGE, APPLY_ADD, APPLY_DELETE } apply_kind;
typedef enum apply_status { ST_CREATED, ST_UPDATED, ST_UNCHANGED, ST_NOTFOUND } apply_status;

typedef struct apply_out {
    apply_status status;
    json_t *entity;   /* new: resulting live entity */
    json_t *delta;    /* new: observations added/removed */
    int64_t version;
} apply_out;

static int text_hash(const char *name, const char *type, const json_t *obs, char hash[65],
                     eg_error *err)
{
    size_t n = json_array_size(obs);
    const char **v = eg_calloc(n ? n : 1, sizeof *v);
    if (v == NULL)
        return graph_oom(err);
    for (size_t i = 0; i < n; i++)
        v[i] = json_string_value(json_array_get(obs, i));
    char *text = NULL;
    int rc = graph_embedding_text(name, type, v, n, &text, hash, err);
    eg_free(v);
    eg_free(text);
    return rc;
}

static int apply_entity(graph_ctx *cx, bolt_conn *c, int64_t now, apply_kind kind, const char *name,
                        const char *type_in, const json_t *obs_in, const char *by, json_t *outbox,
                        apply_out *out, eg_error *err)
{
    memset(out, 0, sizeof *out);
    bolt_params *p = graph_params(err);
    if (p == NULL)
        return EG_ENOMEM;
    bolt_params_str(p, "ns", cx->ns);
    bolt_params_str(p, "name", name);
    bolt_params_int(p, "now", now);
    if (kind == APPLY_MERGE)
        bolt_params_str(p, "type", type_in);
    int rc = graph_params_check(p, err);
    json_t *rows = NULL;
    if (rc == 0)
        rc = graph_q(c, kind == APPLY_MERGE ? Q_MERGE_LOCK : Q_MATCH_LOCK, p, &rows, err);
    bolt_params_free(p);
    if (rc != 0)
        return rc;
    json_t *row = json_array_get(rows, 0);
    if (row == NULL) {
        json_decref(rows);
        out->status = ST_NOTFOUND;
        return 0;
    }
    const char *id = graph_jstr(row, "id");
    int64_t version = graph_jint(row, "version", 0);
    const char *cur_type = graph_jstr(row, "entityType");
    json_t *cur = stored_obs(json_object_get(row, "observations"));
    json_t *next = NULL, *delta = NULL;
    if (id == NULL) {
        json_decref(cur);
        json_decref(rows);
        return eg_error_set(err, EG_EPROTO, EG_CLASS_DATABASE, "entity without id");
    }
    rc = cur ? graph_obs_apply(cur, obs_in, kind == APPLY_DELETE, &next, &delta, err) : graph_oom(err);
    json_decref(cur);
    /* The cap holds for the merged list, not only for one call's input: else
     * repeated add_observations grow an entity without bound (until it no
     * longer fits a Bolt message).  Removing is always allowed. */
    if (rc == 0 && kind != APPLY_DELETE && json_array_size(delta) > 0 &&
        json_array_size(next) > GRAPH_MAX_OBSERVATIONS)
        rc = eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                          "entity '%s' would have %zu observations; at most %u are allowed per entity: "
                          "delete some (delete_observations) or store the facts on another entity",
                          name, json_array_size(next), GRAPH_MAX_OBSERVATIONS);
    if (rc != 0) {
        json_decref(next);
        json_decref(delta);
        json_decref(rows);
        return rc;
    }
    const char *type = (version == 0 && type_in) ? type_in : (cur_type ? cur_type : "");
    bool changed = version == 0 || json_array_size(delta) > 0;
    out->delta = delta;
    if (!changed) {
        out->status = ST_UNCHANGED;
        out->version = version;
        out->entity = graph_entity_out(json_incref(json_object_get(row, "entity")));
        json_decref(next);
        json_decref(rows);
        return 0;
    }
    char hash[65];
    rc = text_hash(name, type, next, hash, err);
    char *id_copy = eg_strdup(id);
    char *type_copy = eg_strdup(type);
    json_decref(rows);
    if (rc == 0 && (id_copy == NULL || type_copy == NULL))
        rc = graph_oom(err);
    if (rc == 0 && (p = graph_params(err)) == NULL)
        rc = EG_ENOMEM;
    if (rc == 0) {
        bolt_params_str(p, "ns", cx->ns);
        bolt_params_str(p, "name", name);
        bolt_params_json(p, "obs", next);
        bolt_params_str(p, "type", type_copy);
        bolt_params_int(p, "version", version + 1);
        bolt_params_int(p, "now", now);
        bolt_params_str(p, "by", by);
        bolt_params_str(p, "hash", hash);
        rc = graph_params_check(p, err);
        if (rc == 0)
            rc = graph_q(c, Q_WRITE_ENTITY, p, &rows, err);
        bolt_params_free(p);
        if (rc == 0) {
            out->entity = graph_entity_out(json_incref(json_object_get(json_array_get(rows, 0), "entity")));
            json_decref(rows);
            if (out->entity == NULL)
                rc = eg_error_set(err, EG_EPROTO, EG_CLASS_DATABASE, "entity vanished while locked");
        }
    }
    if (rc == 0)
        rc = graph_outbox_add(outbox, id_copy, version + 1, name, hash, err);
    json_decref(next);
    eg_free(id_copy);
    eg_free(type_copy);
    out->status = version == 0 ? ST_CREATED : ST_UPDATED;
    out->version = version + 1;
    return rc;
}

static void apply_out_clear(apply_out *o)
{
    json_decref(o->entity);
    json_decref(o->delta);
    memset(o, 0, sizeof *o);
}

static const char *item_by(const graph_ctx *cx, const json_t *item)
{
    const char *s = graph_jstr(item, "changedBy");
    return s ? s : cx->changed_by;
}

/* ---- create_entities ---- */

/*
 * Fast path for the common case, a name that does not exist yet: one
 * statement creates the entity and its first EntityVersion with the hash
 * computed in C from the input.  It labels the entity :SearchStale rather
 * than set searchText (indexer.c: the TEXT index's refresh would be most of
 * this commit's cost); the bulk statement below sets it directly.  When the name exists, nothing is written
 * (ON CREATE did not fire) and the caller takes the lock/compute/write path.
 * `$now` null means "this is the call's first statement": take the database
 * clock here and return it, saving a round trip.
 */
static const char Q_CREATE_FAST[] =
    "WITH coalesce($now, timestamp()) AS now "
    "MERGE (e:Entity {namespace: $ns, name: $name}) "
    "ON CREATE SET e.id = randomUUID(), e.version = 1, e.entityType = $type, e.observations = $obs, "
    "e.createdAt = now, e.updatedAt = now, e.validFrom = now, e.changedBy = $by, "
    "e.contentHash = $hash, e.createdBy = $token "
    "WITH e, now, coalesce(e.createdBy = $token, false) AS created "
    "REMOVE e.createdBy "
    "FOREACH (_ IN CASE WHEN created THEN [1] ELSE [] END | "
    "SET e:" GRAPH_SEARCH_STALE_LABEL " "
    "CREATE (:EntityVersion {namespace: $ns, name: e.name, entityId: e.id, version: 1, "
    "entityType: e.entityType, observations: e.observations, createdAt: now, updatedAt: now, "
    "validFrom: now, changedBy: $by, deleted: false})) "
    "RETURN created, now, e.id AS id, " GRAPH_ENTITY_PROJ("e") " AS entity";

static int create_fast(graph_ctx *cx, bolt_conn *c, int64_t *now, const json_t *it, const char *by,
                       const char *token, json_t *outbox, apply_out *out, bool *created,
                       eg_error *err)
{
    memset(out, 0, sizeof *out);
    *created = false;
    const char *name = graph_jstr(it, "name"), *type = graph_jstr(it, "entityType");
    const json_t *obs = json_object_get(it, "observations");
    char hash[65];
    int rc = text_hash(name, type, obs, hash, err);
    if (rc != 0)
        return rc;
    bolt_params *p = graph_params(err);
    if (p == NULL)
        return EG_ENOMEM;
    if (*now > 0)
        bolt_params_int(p, "now", *now);
    else
        bolt_params_null(p, "now");
    bolt_params_str(p, "ns", cx->ns);
    bolt_params_str(p, "name", name);
    bolt_params_str(p, "type", type);
    bolt_params_json(p, "obs", obs);
    bolt_params_str(p, "by", by);
    bolt_params_str(p, "hash", hash);
    bolt_params_str(p, "token", token);
    json_t *rows = NULL;
    rc = graph_params_check(p, err);
    if (rc == 0)
        rc = graph_q(c, Q_CREATE_FAST, p, &rows, err);
    bolt_params_free(p);
    if (rc != 0)
        return rc;
    json_t *row = json_array_get(rows, 0);
    *now = graph_jint(row, "now", 0);
    if (row == NULL || *now <= 0) {
        json_decref(rows);
        return eg_error_set(err, EG_EPROTO, EG_CLASS_DATABASE, "create returned no row");
    }
    if (json_is_true(json_object_get(row, "created"))) {
        *created = true;
        out->status = ST_CREATED;
        out->version = 1;
        out->entity = graph_entity_out(json_incref(json_object_get(row, "entity")));
        rc = graph_outbox_add(outbox, graph_jstr(row, "id"), 1, name, hash, err);
    }
    json_decref(rows);
    return rc;
}

/*
 * The same first-time create for a whole batch in one statement (UNWIND):
 * a bulk create of hundreds of entities then costs one round trip and one
 * plan instead of one of each per entity.  created[i] says which rows made
 * their entity (outs[i] filled, job in the outbox); the others exist
 * already (or repeat an earlier row's name) and take the per-entity merge.
 */
static const char Q_CREATE_BULK[] =
    "WITH coalesce($now, timestamp()) AS now "
    "UNWIND $rows AS r "
    "MERGE (e:Entity {namespace: $ns, name: r.name}) "
    "ON CREATE SET e.id = randomUUID(), e.version = 1, e.entityType = r.type, e.observations = r.obs, "
    "e.createdAt = now, e.updatedAt = now, e.validFrom = now, e.changedBy = r.by, "
    "e.contentHash = r.hash, e.createdBy = $token + ':' + toString(r.i) "
    /* the row's own mark: a later row of the same name finds the node made
     * by an earlier one in this statement, and must not count as its maker */
    "WITH e, now, r, coalesce(e.createdBy = $token + ':' + toString(r.i), false) AS created "
    "REMOVE e.createdBy "
    "FOREACH (_ IN CASE WHEN created THEN [1] ELSE [] END | "
    "SET " GRAPH_SEARCH_SET("e") " "
    "CREATE (:EntityVersion {namespace: $ns, name: e.name, entityId: e.id, version: 1, "
    "entityType: e.entityType, observations: e.observations, createdAt: now, updatedAt: now, "
    "validFrom: now, changedBy: r.by, deleted: false})) "
    "RETURN r.i AS i, created, now, e.id AS id, " GRAPH_ENTITY_PROJ("e") " AS entity";

static int create_bulk(graph_ctx *cx, bolt_conn *c, int64_t *now, const json_t *items, const char *token,
                       json_t *outbox, apply_out *outs, bool *created, eg_error *err)
{
    size_t n = json_array_size(items);
    char (*hash)[65] = eg_calloc(n ? n : 1, sizeof *hash);
    json_t *rows = json_array();
    int rc = hash && rows ? 0 : graph_oom(err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const json_t *it = json_array_get(items, i);
        const char *by = item_by(cx, it);
        rc = text_hash(graph_jstr(it, "name"), graph_jstr(it, "entityType"), json_object_get(it, "observations"),
                       hash[i], err);
        json_t *r = rc == 0 ? json_pack("{s:I, s:O, s:O, s:O, s:s?, s:s}", "i", (json_int_t)i, "name",
                                        json_object_get(it, "name"), "type", json_object_get(it, "entityType"), "obs",
                                        json_object_get(it, "observations"), "by", by, "hash", hash[i])
                          : NULL;
        if (rc == 0 && (!r || json_array_append_new(rows, r) != 0))
            rc = graph_oom(err);
    }
    bolt_params *p = rc == 0 ? graph_params(err) : NULL;
    if (rc == 0 && !p)
        rc = EG_ENOMEM;
    json_t *res = NULL;
    if (rc == 0) {
        if (*now > 0)
            bolt_params_int(p, "now", *now);
        else
            bolt_params_null(p, "now");
        bolt_params_str(p, "ns", cx->ns);
        bolt_params_str(p, "token", token);
        bolt_params_json(p, "rows", rows);
        rc = graph_params_check(p, err);
        if (rc == 0)
            rc = graph_q(c, Q_CREATE_BULK, p, &res, err);
    }
    bolt_params_free(p);
    size_t k;
    json_t *row;
    json_array_foreach(rc == 0 ? res : NULL, k, row)
    {
        int64_t i = graph_jint(row, "i", -1), t = graph_jint(row, "now", 0);
        if (i < 0 || (size_t)i >= n || t <= 0) {
            rc = eg_error_set(err, EG_EPROTO, EG_CLASS_DATABASE, "bulk create returned a bad row");
            break;
        }
        *now = t;
        if (!json_is_true(json_object_get(row, "created")))
            continue;
        created[i] = true;
        outs[i].status = ST_CREATED;
        outs[i].version = 1;
        outs[i].entity = graph_entity_out(json_incref(json_object_get(row, "entity")));
        rc = graph_outbox_add(outbox, graph_jstr(row, "id"), 1, graph_jstr(json_array_get(items, (size_t)i), "name"),
                              hash[i], err);
        if (rc != 0)
            break;
    }
    if (rc == 0 && json_array_size(res) != n)
        rc = eg_error_set(err, EG_EPROTO, EG_CLASS_DATABASE, "bulk create returned %zu rows for %zu", json_array_size(res), n);
    json_decref(res);
    json_decref(rows);
    eg_free(hash);
    return rc;
}

typedef struct mut_work {
    graph_ctx cx;
    json_t *items;   /* validated input (owned) */
    json_t *result;  /* rebuilt on every attempt */
} mut_work;

static int create_entities_fn(bolt_conn *c, void *payload, eg_error *err)
{
    mut_work *w = payload;
    json_decref(w->result);
    w->result = json_pack("{s[]s[]s[]s[]s[]}", "entities", "created", "updated", "unchanged",
                          "jobIds");
    if (w->result == NULL)
        return graph_oom(err);
    int64_t now = 0; /* taken from the database by the first statement */
    int rc = 0;
    char token[33];
    if (eg_rand_hex(token, (sizeof token - 1) / 2) != 0)
        rc = eg_error_set(err, EG_EINTERNAL, EG_CLASS_CLIENT, "no randomness");
    json_t *outbox = json_array();
    if (outbox == NULL)
        rc = graph_oom(err);
    size_t i, n = json_array_size(w->items);
    json_t *it;
    /* Several entities: every first-time create in one statement; one: the
     * single-row statement (the common call, its plan cached). */
    apply_out *bulk = NULL;
    bool *made = NULL;
    if (rc == 0 && n > 1) {
        bulk = eg_calloc(n, sizeof *bulk);
        made = eg_calloc(n, sizeof *made);
        rc = bulk && made ? create_bulk(&w->cx, c, &now, w->items, token, outbox, bulk, made, err) : graph_oom(err);
    }
    json_array_foreach(w->items, i, it)
    {
        if (rc != 0)
            break;
        apply_out ao;
        memset(&ao, 0, sizeof ao);
        const char *name = graph_jstr(it, "name");
        bool created = false;
        if (bulk) {
            created = made[i];
            ao = bulk[i];
            memset(&bulk[i], 0, sizeof bulk[i]); /* ao owns it now */
        } else {
            rc = create_fast(&w->cx, c, &now, it, item_by(&w->cx, it), token, outbox, &ao, &created, err);
        }
        if (rc == 0 && !created)
            rc = apply_entity(&w->cx, c, now, APPLY_MERGE, name, graph_jstr(it, "entityType"),
                              json_object_get(it, "observations"), item_by(&w->cx, it), outbox,
                              &ao, err);
        if (rc == 0) {
            static const char *const keys[] = {"created", "updated", "unchanged", "unchanged"};
            json_array_append_new(json_object_get(w->result, keys[ao.status]), json_string(name));
            if (ao.status != ST_UNCHANGED && ao.entity)
                json_array_append(json_object_get(w->result, "entities"), ao.entity);
        }
        apply_out_clear(&ao);
    }
    for (size_t k = 0; bulk && k < n; k++)
        apply_out_clear(&bulk[k]);
    eg_free(bulk);
    eg_free(made);
    if (rc == 0)
        rc = graph_outbox_flush(w->cx.g, c, w->cx.ns, outbox, json_object_get(w->result, "jobIds"),
                                NULL, err);
    json_decref(outbox);
    return rc;
}

int graph_create_entities(graph_store *g, const graph_req *req, const json_t *entities,
                          json_t **out, eg_error *err)
{
    *out = NULL;
    mut_work w = {0};
    int rc = graph_ctx_init(&w.cx, g, req, err);
    if (rc == 0)
        rc = graph_validate_entities(entities, &w.items, err);
    /* Two first-time MERGEs of one name can race into a constraint violation
     * (the loser's index lookup ran before the winner committed); re-running
     * the unit finds the winner's node and merges into it. */
    eg_error e;
    eg_error_clear(&e);
    for (int attempt = 0; rc == 0; attempt++) {
        rc = graph_write(g, create_entities_fn, &w, &e);
        if (rc == 0 || attempt >= 4 || strstr(e.neo4j_code, "ConstraintValidationFailed") == NULL)
            break;
        rc = 0;
        eg_error_clear(&e);
        eg_sleep_ms(5 + (int64_t)(eg_rand_unit() * 20));
    }
    if (rc != 0 && err != NULL && e.code != 0)
        eg_error_copy(err, &e);
    json_decref(w.items);
    if (rc != 0) {
        json_decref(w.result);
        return rc;
    }
    graph_indexer_poke(g);
    *out = w.result;
    return 0;
}

/* ---- add / delete observations ---- */

typedef struct obs_work {
    mut_work m;
    bool is_delete;
    char missing[GRAPH_MAX_NAME_BYTES + 1];
} obs_work;

static int observations_fn(bolt_conn *c, void *payload, eg_error *err)
{
    obs_work *w = payload;
    json_decref(w->m.result);
    w->m.result = json_pack("{s[]s[]s[]}", "results", "notFound", "jobIds");
    if (w->m.result == NULL)
        return graph_oom(err);
    int64_t now = 0;
    int rc = graph_now(c, &now, err);
    json_t *outbox = json_array();
    if (outbox == NULL)
        rc = graph_oom(err);
    size_t i;
    json_t *it;
    const char *field = w->is_delete ? "observations" : "contents";
    json_array_foreach(w->m.items, i, it)
    {
        if (rc != 0)
            break;
        apply_out ao;
        const char *name = graph_jstr(it, "entityName");
        rc = apply_entity(&w->m.cx, c, now, w->is_delete ? APPLY_DELETE : APPLY_ADD, name, NULL,
                          json_object_get(it, field), w->m.cx.changed_by, outbox, &ao, err);
        if (rc == 0 && ao.status == ST_NOTFOUND) {
            if (!w->is_delete) {
                snprintf(w->missing, sizeof w->missing, "%s", name);
                rc = eg_error_set(err, EG_ENOTFOUND, EG_CLASS_CLIENT,
                                  "Entity with name %s not found", name);
            } else {
                json_array_append_new(json_object_get(w->m.result, "notFound"), json_string(name));
            }
        } else if (rc == 0) {
            json_t *r = json_pack("{sssOsI}", "entityName", name,
                                  w->is_delete ? "deletedObservations" : "addedObservations",
                                  ao.delta, "version", (json_int_t)ao.version);
            json_array_append_new(json_object_get(w->m.result, "results"), r);
        }
        apply_out_clear(&ao);
    }
    if (!w->is_delete)
        json_object_del(w->m.result, "notFound");
    if (rc == 0)
        rc = graph_outbox_flush(w->m.cx.g, c, w->m.cx.ns, outbox,
                                json_object_get(w->m.result, "jobIds"), NULL, err);
    json_decref(outbox);
    return rc;
}

static int observations_common(graph_store *g, const graph_req *req, const json_t *items,
                               bool is_delete, json_t **out, eg_error *err)
{
    *out = NULL;
    obs_work w;
    memset(&w, 0, sizeof w);
    w.is_delete = is_delete;
    int rc = graph_ctx_init(&w.m.cx, g, req, err);
    if (rc == 0)
        rc = graph_validate_observations(items, is_delete ? "observations" : "contents", &w.m.items,
                                         err);
    if (rc == 0)
        rc = graph_write(g, observations_fn, &w, err);
    json_decref(w.m.items);
    if (rc != 0) {
        json_decref(w.m.result);
        return rc;
    }
    graph_indexer_poke(g);
    *out = w.m.result;
    return 0;
}

int graph_add_observations(graph_store *g, const graph_req *req, const json_t *observations,
                           json_t **out, eg_error *err)
{
    return observations_common(g, req, observations, false, out, err);
}

int graph_delete_observations(graph_store *g, const graph_req *req, const json_t *deletions,
                              json_t **out, eg_error *err)
{
    return observations_common(g, req, deletions, true, out, err);
}

/* ---- delete_entities ---- */

static const char Q_DELETE_ENTITY[] =
    "MATCH (e:Entity {namespace: $ns, name: $name}) "
    "SET e.lockSeq = coalesce(e.lockSeq, 0) + 1 "
    "WITH e "
    "OPTIONAL MATCH (e)-[r:RELATES_TO]-() "
    "WITH e, collect(DISTINCT r.id) AS rids "
    "OPTIONAL MATCH (rv:RelationVersion {namespace: $ns}) "
    "WHERE rv.relationId IN rids AND rv.validTo IS NULL "
    "SET rv.validTo = $now, rv.deleted = true "
    "WITH DISTINCT e "
    "OPTIONAL MATCH (h:EntityVersion {namespace: $ns, entityId: e.id}) WHERE h.validTo IS NULL "
    "SET h.validTo = $now, h.deleted = true "
    "WITH DISTINCT e "
    "DETACH DELETE e "
    "RETURN count(*) AS n";

/*
 * The per-item statements of a delete, all sent at once: they still run one
 * after the other in the transaction (a name given twice is deleted by the
 * first and not found by the second), in one round trip instead of n.
 * params_fn fills item i's parameters.  Resets w->result to the empty
 * {deleted, notFound} answer first.  *rows_out: n row arrays (new).
 */
typedef void (*item_params_fn)(bolt_params *p, const mut_work *w, const json_t *item, int64_t now);

static int run_items(bolt_conn *c, mut_work *w, const char *cypher, item_params_fn fill, json_t ***rows_out,
                     eg_error *err)
{
    *rows_out = NULL;
    json_decref(w->result);
    w->result = json_pack("{s[]s[]}", "deleted", "notFound");
    if (w->result == NULL)
        return graph_oom(err);
    int64_t now = 0;
    int rc = graph_now(c, &now, err);
    size_t n = json_array_size(w->items);
    bolt_params **ps = eg_calloc(n ? n : 1, sizeof *ps);
    json_t **rows = eg_calloc(n ? n : 1, sizeof *rows);
    if (rc == 0 && (!ps || !rows))
        rc = graph_oom(err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if ((ps[i] = graph_params(err)) == NULL) {
            rc = EG_ENOMEM;
            break;
        }
        fill(ps[i], w, json_array_get(w->items, i), now);
        rc = graph_params_check(ps[i], err);
    }
    if (rc == 0)
        rc = graph_q_many(c, cypher, ps, n, rows, err);
    for (size_t i = 0; ps && i < n; i++)
        bolt_params_free(ps[i]);
    eg_free(ps);
    if (rc != 0) {
        eg_free(rows);
        return rc;
    }
    *rows_out = rows;
    return 0;
}

static void free_item_rows(json_t **rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        json_decref(rows[i]);
    eg_free(rows);
}

static void delete_entity_params(bolt_params *p, const mut_work *w, const json_t *item, int64_t now)
{
    bolt_params_str(p, "ns", w->cx.ns);
    bolt_params_json(p, "name", item);
    bolt_params_int(p, "now", now);
}

static int delete_entities_fn(bolt_conn *c, void *payload, eg_error *err)
{
    mut_work *w = payload;
    json_t **rows = NULL;
    int rc = run_items(c, w, Q_DELETE_ENTITY, delete_entity_params, &rows, err);
    size_t i;
    json_t *it;
    json_array_foreach(rc == 0 ? w->items : NULL, i, it)
    {
        bool hit = graph_jint(json_array_get(rows[i], 0), "n", 0) > 0;
        json_array_append(json_object_get(w->result, hit ? "deleted" : "notFound"), it);
    }
    free_item_rows(rows, json_array_size(w->items));
    return rc;
}

static int validate_names(const json_t *names, json_t **out, eg_error *err)
{
    *out = NULL;
    json_t *owned = NULL;
    if (json_is_string(names)) {
        owned = json_loads(json_string_value(names), 0, NULL);
        if (!json_is_array(owned)) {
            json_decref(owned);
            owned = json_pack("[O]", names);
        }
        names = owned;
    }
    if (!json_is_array(names)) {
        json_decref(owned);
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "names must be an array of strings");
    }
    if (json_array_size(names) > GRAPH_MAX_BATCH) {
        json_decref(owned);
        return eg_error_set(err, EG_ETOOBIG, EG_CLASS_CLIENT, "at most %u names per call",
                            GRAPH_MAX_BATCH);
    }
    size_t i;
    json_t *x;
    json_array_foreach(names, i, x)
    {
        if (!json_is_string(x) || json_string_length(x) == 0 ||
            json_string_length(x) > GRAPH_MAX_NAME_BYTES ||
            strlen(json_string_value(x)) != json_string_length(x)) {
            json_decref(owned);
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                                "names[%zu] must be a non-empty string without NUL", i);
        }
    }
    *out = owned ? owned : json_deep_copy(names);
    return *out ? 0 : graph_oom(err);
}

int graph_validate_names(const json_t *names, json_t **out, eg_error *err)
{
    return validate_names(names, out, err);
}

int graph_delete_entities(graph_store *g, const graph_req *req, const json_t *names, json_t **out,
                          eg_error *err)
{
    *out = NULL;
    mut_work w = {0};
    int rc = graph_ctx_init(&w.cx, g, req, err);
    if (rc == 0)
        rc = validate_names(names, &w.items, err);
    if (rc == 0)
        rc = graph_write(g, delete_entities_fn, &w, err);
    json_decref(w.items);
    if (rc != 0) {
        json_decref(w.result);
        return rc;
    }
    *out = w.result;
    return 0;
}

/* ---- relations ---- */

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
    bolt_params_str(p, "from", graph_jstr(it, "from"));
    bolt_params_str(p, "to", graph_jstr(it, "to"));
    bolt_params_str(p, "type", graph_jstr(it, "relationType"));
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
    free(s);
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

static int create_relations_bulk(mut_work *w, bolt_conn *c, int64_t now, const char *token, eg_error *err)
{
    size_t n = json_array_size(w->items);
    json_t *rows = json_array(), *res = NULL, *ok = json_array();
    json_t **answer = eg_calloc(n, sizeof *answer); /* per row: its relation, or its skip record */
    bool *created = eg_calloc(n, sizeof *created);
    int rc = rows && ok && answer && created ? 0 : graph_oom(err);
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
                              "by", item_by(&w->cx, it));
        free(meta);
        if (!r || json_array_append_new(rows, r) != 0)
            rc = graph_oom(err);
    }
    bolt_params *p = rc == 0 ? graph_params(err) : NULL;
    if (rc == 0 && !p)
        rc = EG_ENOMEM;
    if (rc == 0) {
        bolt_params_str(p, "ns", w->cx.ns);
        bolt_params_json(p, "rows", rows);
        rc = graph_params_check(p, err);
        if (rc == 0)
            rc = graph_q(c, Q_ENDPOINTS_BULK, p, &res, err);
    }
    bolt_params_free(p);
    size_t k;
    json_t *row;
    json_array_foreach(rc == 0 ? res : NULL, k, row)
    {
        int64_t i = graph_jint(row, "i", -1);
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
        p = graph_params(err);
        rc = p ? 0 : EG_ENOMEM;
        if (rc == 0) {
            bolt_params_str(p, "ns", w->cx.ns);
            bolt_params_json(p, "rows", ok);
            bolt_params_int(p, "now", now);
            bolt_params_str(p, "token", token);
            rc = graph_params_check(p, err);
            if (rc == 0)
                rc = graph_q(c, Q_CREATE_REL_BULK, p, &res, err);
        }
        bolt_params_free(p);
    }
    json_array_foreach(rc == 0 ? res : NULL, k, row)
    {
        int64_t i = graph_jint(row, "i", -1);
        if (i < 0 || (size_t)i >= n || answer[i])
            continue;
        created[i] = json_is_true(json_object_get(row, "created"));
        answer[i] = graph_relation_out(json_incref(json_object_get(row, "rel")));
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!answer[i]) /* an endpoint was deleted between the two statements: nothing made */
            answer[i] = json_pack("{sOsOsOss}", "from", json_object_get(json_array_get(w->items, i), "from"), "to",
                                  json_object_get(json_array_get(w->items, i), "to"), "relationType",
                                  json_object_get(json_array_get(w->items, i), "relationType"), "reason",
                                  "an entity was deleted during the call");
        if (!answer[i]) {
            rc = graph_oom(err);
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
    mut_work *w = payload;
    json_decref(w->result);
    w->result = json_pack("{s[]s[]s[]}", "relations", "existing", "skipped");
    if (w->result == NULL)
        return graph_oom(err);
    int64_t now = 0;
    int rc = graph_now(c, &now, err);
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
        bolt_params *p = graph_params(err);
        if (p == NULL)
            return EG_ENOMEM;
        rel_key_params(p, &w->cx, it);
        json_t *rows = NULL;
        rc = graph_params_check(p, err);
        if (rc == 0)
            rc = graph_q(c, Q_ENDPOINTS, p, &rows, err);
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
        bolt_params_str(p, "by", item_by(&w->cx, it));
        bolt_params_str(p, "token", token);
        rc = graph_params_check(p, err);
        if (rc == 0)
            rc = graph_q(c, Q_CREATE_REL, p, &rows, err);
        bolt_params_free(p);
        if (rc == 0) {
            json_t *r = json_array_get(rows, 0);
            bool created = json_is_true(json_object_get(r, "created"));
            json_t *rel = graph_relation_out(json_incref(json_object_get(r, "rel")));
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
    mut_work w = {0};
    int rc = graph_ctx_init(&w.cx, g, req, err);
    if (rc == 0)
        rc = graph_validate_relations(relations, false, &w.items, err);
    if (rc == 0 && !json_is_array(relations) && !json_is_string(relations))
        rc = eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "relations must be an array");
    if (rc == 0)
        rc = graph_write(g, create_relations_fn, &w, err);
    json_decref(w.items);
    if (rc != 0) {
        json_decref(w.result);
        return rc;
    }
    *out = w.result;
    return 0;
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

static void delete_relation_params(bolt_params *p, const mut_work *w, const json_t *item, int64_t now)
{
    rel_key_params(p, &w->cx, item);
    bolt_params_int(p, "now", now);
}

static int delete_relations_fn(bolt_conn *c, void *payload, eg_error *err)
{
    mut_work *w = payload;
    json_t **rows = NULL;
    int rc = run_items(c, w, Q_DELETE_REL, delete_relation_params, &rows, err);
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
                                  graph_relation_out(json_incref(json_object_get(row, "rel"))));
        }
    }
    free_item_rows(rows, json_array_size(w->items));
    return rc;
}

int graph_delete_relations(graph_store *g, const graph_req *req, const json_t *relations,
                           json_t **out, eg_error *err)
{
    *out = NULL;
    mut_work w = {0};
    int rc = graph_ctx_init(&w.cx, g, req, err);
    if (rc == 0)
        rc = graph_validate_relations(relations, true, &w.items, err);
    if (rc == 0)
        rc = graph_write(g, delete_relations_fn, &w, err);
    json_decref(w.items);
    if (rc != 0) {
        json_decref(w.result);
        return rc;
    }
    *out = w.result;
    return 0;
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
    mut_work *w = payload;
    json_decref(w->result);
    w->result = NULL;
    int64_t now = 0;
    int rc = graph_now(c, &now, err);
    if (rc != 0)
        return rc;
    json_t *it = json_array_get(w->items, 0);
    bolt_params *p = graph_params(err);
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
    bolt_params_str(p, "by", item_by(&w->cx, it));
    json_t *rows = NULL;
    rc = graph_params_check(p, err);
    if (rc == 0)
        rc = graph_q(c, Q_UPDATE_REL, p, &rows, err);
    bolt_params_free(p);
    if (rc != 0)
        return rc;
    if (json_array_size(rows) == 0) {
        json_decref(rows);
        return eg_error_set(err, EG_ENOTFOUND, EG_CLASS_CLIENT, "Relation not found: %s -[%s]-> %s",
                            graph_jstr(it, "from"), graph_jstr(it, "relationType"),
                            graph_jstr(it, "to"));
    }
    w->result = graph_relation_out(json_incref(json_object_get(json_array_get(rows, 0), "rel")));
    json_decref(rows);
    return 0;
}

int graph_update_relation(graph_store *g, const graph_req *req, const json_t *relation,
                          json_t **out, eg_error *err)
{
    *out = NULL;
    mut_work w = {0};
    int rc = graph_ctx_init(&w.cx, g, req, err);
    if (rc == 0 && !json_is_object(relation))
        rc = eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "relation must be an object");
    if (rc == 0)
        rc = graph_validate_relations(relation, false, &w.items, err);
    if (rc == 0)
        rc = graph_write(g, update_relation_fn, &w, err);
    json_decref(w.items);
    if (rc != 0) {
        json_decref(w.result);
        return rc;
    }
    *out = w.result;
    return 0;
}
