/*
 * mutate.c - entity mutations (create, observations, delete) with temporal
 * history and the embedding-job outbox; relations are in relations.c, the
 * helpers both use in mutate_int.h.
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
#include "graph/mutate_int.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "queue/neo4j_store.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define LOCK_RETURN                                                                             \
    "RETURN now, e.id AS id, e.version AS version, e.entityType AS entityType, "              \
    "e.observations AS observations, coalesce(e.obsSeq, 0) AS obsSeq, " GRAPH_ENTITY_PROJ("e") " AS entity"

/* `$now` null: the call's first statement takes the database clock (and
 * returns it), which saves a statement of its own. */
static const char Q_MERGE_LOCK[] =
    "WITH coalesce($now, timestamp()) AS now "
    "MERGE (e:Entity {namespace: $ns, name: $name}) "
    "ON CREATE SET e.id = randomUUID(), e.version = 0, e.entityType = $type, "
    "e.observations = [], e.createdAt = now "
    "SET e.lockSeq = coalesce(e.lockSeq, 0) + 1 " LOCK_RETURN;

static const char Q_MATCH_LOCK[] =
    "WITH coalesce($now, timestamp()) AS now "
    "MATCH (e:Entity {namespace: $ns, name: $name}) "
    "SET e.lockSeq = coalesce(e.lockSeq, 0) + 1 " LOCK_RETURN;

/*
 * The new version stores what changed, not a copy of the list: the added
 * observations become records ($added, from graph__obs_records) and the
 * removed ones' live records are closed ($removed: their hashes) -- they
 * lose :Observation and their vector, so both observation indexes drop
 * them, and keep their text and interval for history.  The EntityVersion
 * holds no observations; history rebuilds them from the records (read.c).
 */
#define OBS_RECORD_CREATE(r, by, now, version)                                                     \
    "CREATE (:ObservationRecord:Observation {namespace: $ns, entityId: e.id, id: " r ".id, "       \
    "seq: " r ".seq, text: " r ".text, contentHash: " r ".hash, validFrom: " now ", fromVersion: " \
    version ", changedBy: " by "})"
static const char Q_WRITE_ENTITY[] =
    QUEUE_NEO4J_PFX
    "MATCH (e:Entity {namespace: $ns, name: $name}) "
    "SET e.observations = $obs, e.entityType = $type, e.version = $version, e.obsSeq = $obsSeq, "
    "e.updatedAt = $now, e.validFrom = $now, e.changedBy = $by, e.contentHash = $hash "
    "SET e:" GRAPH_SEARCH_STALE_LABEL " "
    "WITH e "
    "OPTIONAL MATCH (old:EntityVersion {namespace: $ns, entityId: e.id}) WHERE old.validTo IS NULL "
    "SET old.validTo = $now "
    "WITH DISTINCT e "
    "CREATE (h:EntityVersion {namespace: $ns, name: e.name, entityId: e.id, version: e.version, "
    "entityType: e.entityType, createdAt: e.createdAt, "
    "updatedAt: $now, validFrom: $now, changedBy: $by, deleted: false}) "
    "WITH e "
    "CALL { WITH e UNWIND $added AS r " OBS_RECORD_CREATE("r", "$by", "$now", "$version") " } "
    /* through the record index (ObservationRecord (namespace, entityId)): a
     * bare :Observation match would scan every live observation; an add
     * ($removed empty) skips it, as it reads every record of the entity */
    "CALL { WITH e WITH e WHERE size($removed) > 0 "
    "  MATCH (o:ObservationRecord {namespace: $ns, entityId: e.id}) "
    "  WHERE o:Observation AND o.contentHash IN $removed "
    "  SET o.validTo = $now, o.toVersion = $version, o.closedBy = $by REMOVE o:Observation, o.embedding } "
    /* the jobs of the new version and records, in this statement */
    "WITH e, $qjobs AS qrows " QUEUE_NEO4J_ENQUEUE_CALL("qrows")
    "RETURN " GRAPH_ENTITY_PROJ("e") " AS entity, qres";

/* ---- job enqueue ---- */

int graph__outbox_add(json_t *outbox, const char *entity_id, int64_t version, const char *name,
                     const char *hash, eg_error *err)
{
    json_t *o = json_pack("{sssIssss}", "id", entity_id, "version", (json_int_t)version, "name",
                          name, "hash", hash);
    if (o == NULL || json_array_append_new(outbox, o) != 0)
        return eg_error_oom(err);
    return 0;
}

int graph__obs_records(const char *name, const char *type, const json_t *texts, int64_t first_seq,
                       json_t *outbox, json_t **recs_out, eg_error *err)
{
    *recs_out = NULL;
    json_t *recs = json_array();
    int rc = recs ? 0 : eg_error_oom(err);
    size_t i;
    json_t *x;
    json_array_foreach(rc == 0 ? texts : NULL, i, x)
    {
        char id[33], hash[65], *text = NULL;
        if (eg_rand_hex(id, (sizeof id - 1) / 2) != 0) {
            rc = eg_error_set(err, EG_EINTERNAL, EG_CLASS_CLIENT, "no randomness");
            break;
        }
        rc = graph_observation_text(name, type, json_string_value(x) ? json_string_value(x) : "", &text, hash, err);
        eg_free(text);
        if (rc != 0)
            break;
        json_t *r = json_pack("{s:s, s:I, s:O, s:s}", "id", id, "seq", (json_int_t)(first_seq + (int64_t)i), "text",
                              x, "hash", hash);
        if (r == NULL || json_array_append_new(recs, r) != 0) {
            rc = eg_error_oom(err);
            break;
        }
        /* An observation's text never changes, so its job is version 1 of
         * the record, and the hash fences the vector for life. */
        json_t *o = json_pack("{sssIssssss}", "id", id, "version", (json_int_t)1, "name", name, "hash", hash,
                              "kind", "observation");
        if (o == NULL || json_array_append_new(outbox, o) != 0) {
            rc = eg_error_oom(err);
            break;
        }
    }
    if (rc != 0) {
        json_decref(recs);
        return rc;
    }
    *recs_out = recs;
    return 0;
}

int graph__obs_hashes(const char *name, const char *type, const json_t *texts, json_t **out, eg_error *err)
{
    *out = json_array();
    int rc = *out ? 0 : eg_error_oom(err);
    size_t i;
    json_t *x;
    json_array_foreach(rc == 0 ? texts : NULL, i, x)
    {
        char hash[65], *text = NULL;
        rc = graph_observation_text(name, type, json_string_value(x) ? json_string_value(x) : "", &text, hash, err);
        eg_free(text);
        if (rc == 0 && json_array_append_new(*out, json_string(hash)) != 0)
            rc = eg_error_oom(err);
        if (rc != 0)
            break;
    }
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

/* The queue requests of an outbox (graph__outbox_add entries); the strings
 * they point to live in the outbox, ver and payload (eg_free each payload). */
static int outbox_reqs(const graph_store *g, const char *ns, const json_t *outbox, queue_enqueue_req *reqs,
                       char (*ver)[24], char **payload, eg_error *err)
{
    for (size_t i = 0; i < json_array_size(outbox); i++) {
        const json_t *it = json_array_get(outbox, i);
        snprintf(ver[i], sizeof ver[i], "%" PRId64, graph__jint(it, "version", 0));
        json_t *pl = json_pack("{sOsO}", "name", json_object_get(it, "name"), "hash",
                               json_object_get(it, "hash"));
        if (pl != NULL && json_object_get(it, "kind") != NULL)
            json_object_set(pl, "kind", json_object_get(it, "kind"));
        payload[i] = pl ? json_dumps(pl, JSON_COMPACT) : NULL;
        json_decref(pl);
        if (payload[i] == NULL)
            return eg_error_oom(err);
        reqs[i].ns = ns;
        reqs[i].entity = graph__jstr(it, "id");
        reqs[i].version = ver[i];
        reqs[i].model = g->opts.embedding_model;
        reqs[i].payload = payload[i];
        /* The version was read under the entity's lock: it orders this job
         * against the entity's other jobs (never supersede a newer one). */
        reqs[i].seq = graph__jint(it, "version", 0);
    }
    return 0;
}

/* Convert an outbox and hand its requests to fn (with ctx). */
typedef int (*outbox_fn)(graph_store *g, const queue_enqueue_req *reqs, size_t n, void *ctx, eg_error *err);
static int with_outbox_reqs(graph_store *g, const char *ns, const json_t *outbox, outbox_fn fn, void *ctx,
                            eg_error *err)
{
    size_t n = json_array_size(outbox);
    queue_enqueue_req *reqs = eg_calloc(n ? n : 1, sizeof *reqs);
    char (*ver)[24] = eg_calloc(n ? n : 1, sizeof *ver);
    char **payload = eg_calloc(n ? n : 1, sizeof *payload);
    int rc = (reqs && ver && payload) ? outbox_reqs(g, ns, outbox, reqs, ver, payload, err) : eg_error_oom(err);
    if (rc == 0)
        rc = fn(g, reqs, n, ctx, err);
    for (size_t i = 0; payload && i < n; i++)
        eg_free(payload[i]); /* json_dumps memory: jansson allocates through eg_malloc */
    eg_free(payload);
    eg_free(ver);
    eg_free(reqs);
    return rc;
}

typedef struct flush_ctx {
    bolt_conn *c;
    json_t *job_ids;
    size_t *created_out;
} flush_ctx;

static int flush_reqs(graph_store *g, const queue_enqueue_req *reqs, size_t n, void *ctx, eg_error *err)
{
    flush_ctx *f = ctx;
    queue_enqueue_result *res = eg_calloc(n, sizeof *res);
    if (res == NULL)
        return eg_error_oom(err);
    /* One queue_enqueue for the whole call: one round trip, same transaction. */
    queue_tx tx = QUEUE_TX_BOLT(f->c);
    int rc = queue_enqueue(g->queue, &tx, reqs, n, res, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (res[i].created && f->created_out)
            (*f->created_out)++;
        if (f->job_ids != NULL && res[i].id[0] != '\0')
            json_array_append_new(f->job_ids, json_string(res[i].id));
    }
    eg_free(res);
    return rc;
}

int graph__outbox_flush(graph_store *g, bolt_conn *c, const char *ns, const json_t *outbox,
                       json_t *job_ids, size_t *created_out, eg_error *err)
{
    if (created_out)
        *created_out = 0;
    if (g->queue == NULL || json_array_size(outbox) == 0)
        return 0;
    flush_ctx f = {c, job_ids, created_out};
    return with_outbox_reqs(g, ns, outbox, flush_reqs, &f, err);
}

static int rows_reqs(graph_store *g, const queue_enqueue_req *reqs, size_t n, void *ctx, eg_error *err)
{
    return queue_neo4j_job_rows(g->queue, reqs, n, (json_t **)ctx, err);
}

/*
 * The jobs of `outbox` as the job rows of the statement's own enqueue
 * (QUEUE_NEO4J_ENQUEUE_CALL), so the write and its jobs take one statement.
 * *rows_out (new): the rows, [] without a queue; NULL (and 0 returned) when
 * the queue cannot take jobs that way (the memory store): the caller then
 * keeps the jobs in the call's outbox, flushed before commit.
 */
static int outbox_rows(graph_store *g, const char *ns, const json_t *outbox, json_t **rows_out, eg_error *err)
{
    *rows_out = NULL;
    if (g->queue == NULL || json_array_size(outbox) == 0) {
        *rows_out = json_array();
        return *rows_out ? 0 : eg_error_oom(err);
    }
    if (!queue_neo4j_inline(g->queue))
        return 0;
    return with_outbox_reqs(g, ns, outbox, rows_reqs, rows_out, err);
}

/* The job ids of a statement's qres (QUEUE_NEO4J_ENQUEUE_CALL) onto job_ids. */
static int qres_ids(const json_t *qres, json_t *job_ids, eg_error *err)
{
    size_t i;
    const json_t *x;
    json_array_foreach(job_ids ? qres : NULL, i, x)
    {
        const char *id = graph__jstr(x, "id");
        if (id != NULL && *id != '\0' && json_array_append_new(job_ids, json_string(id)) != 0)
            return eg_error_oom(err);
    }
    return 0;
}

/* After a write: its jobs went in the statement (qres: their ids), or, when
 * the queue took none there (rows NULL), they join the call's outbox. */
static int jobs_done(const json_t *rows, const json_t *qres, json_t *mine, json_t *outbox, json_t *job_ids,
                     eg_error *err)
{
    if (rows != NULL)
        return qres_ids(qres, job_ids, err);
    return json_array_extend(outbox, mine) == 0 ? 0 : eg_error_oom(err);
}

/* What the writes of one entity's new state take: $ns $name $type $obs $by $hash. */
static void params_write(bolt_params *p, const graph_ctx *cx, const char *name, const char *type, const json_t *obs,
                         const char *by, const char *hash)
{
    bolt_params_str(p, "ns", cx->ns);
    bolt_params_str(p, "name", name);
    bolt_params_str(p, "type", type);
    bolt_params_json(p, "obs", obs);
    bolt_params_str(p, "by", by);
    bolt_params_str(p, "hash", hash);
}

/* $now: the call's database time, or null before its first statement
 * (which then takes the clock: coalesce($now, timestamp())). */
static void params_now(bolt_params *p, int64_t now)
{
    if (now > 0)
        bolt_params_int(p, "now", now);
    else
        bolt_params_null(p, "now");
}

/* $qjobs (rows NULL: none, the jobs stay in the outbox) and $queue. */
static void params_queue(const graph_store *g, bolt_params *p, const json_t *rows)
{
    const queue_opts *qo = g->queue ? queue_store_opts(g->queue) : NULL;
    bolt_params_str(p, "queue", qo ? qo->name : "");
    if (rows != NULL) {
        bolt_params_json(p, "qjobs", rows);
    } else {
        json_t *none = json_array();
        bolt_params_json(p, "qjobs", none);
        json_decref(none);
    }
}

/* A new entity id: a random (version 4) UUID, made here rather than by
 * randomUUID() so the entity's job can name it in the creating statement. */
static int new_entity_id(char out[37], eg_error *err)
{
    char h[33];
    if (eg_rand_hex(h, 16) != 0)
        return eg_error_set(err, EG_EINTERNAL, EG_CLASS_CLIENT, "no randomness");
    h[12] = '4';
    h[16] = "89ab"[(h[16] >= 'a' ? h[16] - 'a' + 10 : h[16] - '0') & 3];
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
    return 0;
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
        return eg_error_oom(err);
    for (size_t i = 0; i < n; i++)
        v[i] = json_string_value(json_array_get(obs, i));
    char *text = NULL;
    int rc = graph_embedding_text(name, type, v, n, &text, hash, err);
    eg_free(v);
    eg_free(text);
    return rc;
}

/*
 * Lock, compute, write one entity.  *now: the call's database time, 0
 * before its first statement (the lock then takes it).  The new version's
 * jobs go in the write statement (their ids onto job_ids), or into outbox
 * when the queue cannot take them there.
 */
static int apply_entity(graph_ctx *cx, bolt_conn *c, int64_t *now, apply_kind kind, const char *name,
                        const char *type_in, const json_t *obs_in, const char *by, json_t *outbox,
                        json_t *job_ids, apply_out *out, eg_error *err)
{
    memset(out, 0, sizeof *out);
    bolt_params *p = graph__params(err);
    if (p == NULL)
        return EG_ENOMEM;
    bolt_params_str(p, "ns", cx->ns);
    bolt_params_str(p, "name", name);
    params_now(p, *now);
    if (kind == APPLY_MERGE)
        bolt_params_str(p, "type", type_in);
    json_t *rows = NULL;
    int rc = graph__q_params(c, kind == APPLY_MERGE ? Q_MERGE_LOCK : Q_MATCH_LOCK, p, &rows, err);
    if (rc != 0)
        return rc;
    json_t *row = json_array_get(rows, 0);
    if (row == NULL) {
        json_decref(rows);
        out->status = ST_NOTFOUND;
        return 0;
    }
    *now = graph__jint(row, "now", 0);
    const char *id = graph__jstr(row, "id");
    int64_t version = graph__jint(row, "version", 0);
    const char *cur_type = graph__jstr(row, "entityType");
    json_t *cur = stored_obs(json_object_get(row, "observations"));
    json_t *next = NULL, *delta = NULL;
    if (id == NULL || *now <= 0) {
        json_decref(cur);
        json_decref(rows);
        return eg_error_set(err, EG_EPROTO, EG_CLASS_DATABASE, "entity without id");
    }
    rc = cur ? graph__obs_apply(cur, obs_in, kind == APPLY_DELETE, &next, &delta, err) : eg_error_oom(err);
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
        out->entity = graph__entity_out(json_incref(json_object_get(row, "entity")));
        json_decref(next);
        json_decref(rows);
        return 0;
    }
    char hash[65];
    rc = text_hash(name, type, next, hash, err);
    char *id_copy = eg_strdup(id);
    char *type_copy = eg_strdup(type);
    int64_t seq = graph__jint(row, "obsSeq", 0);
    json_decref(rows);
    if (rc == 0 && (id_copy == NULL || type_copy == NULL))
        rc = eg_error_oom(err);
    json_t *added = NULL, *removed = NULL, *mine = json_array(), *qrows = NULL;
    if (rc == 0 && mine == NULL)
        rc = eg_error_oom(err);
    if (rc == 0 && kind == APPLY_DELETE) {
        rc = graph__obs_hashes(name, type_copy, delta, &removed, err);
        added = rc == 0 ? json_array() : NULL;
    } else if (rc == 0) {
        rc = graph__obs_records(name, type_copy, delta, seq + 1, mine, &added, err);
        seq += (int64_t)json_array_size(delta);
        removed = rc == 0 ? json_array() : NULL;
    }
    if (rc == 0 && (added == NULL || removed == NULL))
        rc = eg_error_oom(err);
    if (rc == 0)
        rc = graph__outbox_add(mine, id_copy, version + 1, name, hash, err);
    if (rc == 0)
        rc = outbox_rows(cx->g, cx->ns, mine, &qrows, err);
    if (rc == 0 && (p = graph__params(err)) == NULL)
        rc = EG_ENOMEM;
    if (rc == 0) {
        params_write(p, cx, name, type_copy, next, by, hash);
        bolt_params_int(p, "version", version + 1);
        bolt_params_int(p, "obsSeq", seq);
        bolt_params_int(p, "now", *now);
        bolt_params_json(p, "added", added);
        bolt_params_json(p, "removed", removed);
        params_queue(cx->g, p, qrows);
        rc = graph__q_params(c, Q_WRITE_ENTITY, p, &rows, err);
        if (rc == 0) {
            const json_t *r0 = json_array_get(rows, 0);
            out->entity = graph__entity_out(json_incref(json_object_get(r0, "entity")));
            if (out->entity == NULL)
                rc = eg_error_set(err, EG_EPROTO, EG_CLASS_DATABASE, "entity vanished while locked");
            else
                rc = jobs_done(qrows, json_object_get(r0, "qres"), mine, outbox, job_ids, err);
            json_decref(rows);
        }
    }
    json_decref(mine);
    json_decref(qrows);
    json_decref(added);
    json_decref(removed);
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

const char *graph__item_by(const graph_ctx *cx, const json_t *item)
{
    const char *s = graph__jstr(item, "changedBy");
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
 * clock here and return it, saving a round trip.  The jobs of a created
 * entity are all of ids made for this statement (its UUID, its records'),
 * so they are CREATEd with it (QUEUE_NEO4J_CREATE_FRESH): no dedupe lookup or
 * supersede subquery per job, as in the bulk statement.
 */
static const char Q_CREATE_FAST[] =
    QUEUE_NEO4J_PFX
    "WITH coalesce($now, timestamp()) AS now "
    "MERGE (e:Entity {namespace: $ns, name: $name}) "
    "ON CREATE SET e.id = $id, e.version = 1, e.entityType = $type, e.observations = $obs, "
    "e.createdAt = now, e.updatedAt = now, e.validFrom = now, e.changedBy = $by, "
    "e.contentHash = $hash "
    /* the id is new (new_entity_id): the node holds it only if ON CREATE ran */
    "WITH e, now, e.id = $id AS created "
    "FOREACH (_ IN CASE WHEN created THEN [1] ELSE [] END | "
    "SET e:" GRAPH_SEARCH_STALE_LABEL ", e.obsSeq = size($recs) "
    "CREATE (:EntityVersion {namespace: $ns, name: e.name, entityId: e.id, version: 1, "
    "entityType: e.entityType, createdAt: now, updatedAt: now, "
    "validFrom: now, changedBy: $by, deleted: false}) "
    "FOREACH (r IN $recs | " OBS_RECORD_CREATE("r", "$by", "now", "1") ") "
    QUEUE_NEO4J_CREATE_FRESH("$qjobs") ") "
    "RETURN created, now, e.id AS id, " GRAPH_ENTITY_PROJ("e") " AS entity";

/* What a first-time create writes beside the entity, made in C. */
typedef struct new_entity {
    char id[37], hash[65];
    json_t *recs;  /* its observation records ($recs) */
    json_t *mine;  /* its jobs as outbox entries: the entity's first, then its records' */
    json_t *qrows; /* the same as the statement's job rows; NULL: the queue takes them only by the outbox */
} new_entity;

static void new_entity_clear(new_entity *ne)
{
    json_t *owned[] = {ne->recs, ne->mine, ne->qrows};
    for (size_t i = 0; i < sizeof owned / sizeof *owned; i++)
        json_decref(owned[i]);
    memset(ne, 0, sizeof *ne);
}

static int new_entity_prepare(graph_ctx *cx, const json_t *it, new_entity *ne, eg_error *err)
{
    memset(ne, 0, sizeof *ne);
    const char *name = graph__jstr(it, "name"), *type = graph__jstr(it, "entityType");
    const json_t *obs = json_object_get(it, "observations");
    int rc = text_hash(name, type, obs, ne->hash, err);
    if (rc == 0)
        rc = new_entity_id(ne->id, err);
    if (rc == 0)
        rc = (ne->mine = json_array()) ? graph__outbox_add(ne->mine, ne->id, 1, name, ne->hash, err)
                                       : eg_error_oom(err);
    if (rc == 0)
        rc = graph__obs_records(name, type, obs, 1, ne->mine, &ne->recs, err);
    if (rc == 0)
        rc = outbox_rows(cx->g, cx->ns, ne->mine, &ne->qrows, err);
    if (rc != 0)
        new_entity_clear(ne);
    return rc;
}

static int create_fast(graph_ctx *cx, bolt_conn *c, int64_t *now, const json_t *it, const char *by,
                       json_t *outbox, json_t *job_ids, apply_out *out, bool *created, eg_error *err)
{
    memset(out, 0, sizeof *out);
    *created = false;
    /* The jobs the entity gets if this statement makes it; if the name
     * exists they are not written (and the merge path makes its own). */
    new_entity ne;
    int rc = new_entity_prepare(cx, it, &ne, err);
    bolt_params *p = rc == 0 ? graph__params(err) : NULL;
    if (rc == 0 && p == NULL)
        rc = EG_ENOMEM;
    json_t *rows = NULL;
    if (rc == 0) {
        params_write(p, cx, graph__jstr(it, "name"), graph__jstr(it, "entityType"),
                     json_object_get(it, "observations"), by, ne.hash);
        bolt_params_json(p, "recs", ne.recs);
        params_now(p, *now);
        bolt_params_str(p, "id", ne.id);
        params_queue(cx->g, p, ne.qrows);
        rc = graph__q_params(c, Q_CREATE_FAST, p, &rows, err);
    }
    json_t *row = json_array_get(rows, 0);
    if (rc == 0 && (*now = graph__jint(row, "now", 0)) <= 0)
        rc = eg_error_set(err, EG_EPROTO, EG_CLASS_DATABASE, "create returned no row");
    if (rc == 0 && json_is_true(json_object_get(row, "created"))) {
        *created = true;
        out->status = ST_CREATED;
        out->version = 1;
        out->entity = graph__entity_out(json_incref(json_object_get(row, "entity")));
        /* the jobs in the statement are its own rows (QUEUE_NEO4J_CREATE_FRESH) */
        rc = jobs_done(ne.qrows, ne.qrows, ne.mine, outbox, job_ids, err);
    }
    new_entity_clear(&ne);
    json_decref(rows);
    return rc;
}

/*
 * The same first-time create for a whole batch in one statement (UNWIND),
 * the rows' jobs with it: a bulk create of hundreds of entities then costs
 * one round trip and one plan instead of one of each per entity.
 * created[i] says which rows made their entity (outs[i] filled, job ids on
 * job_ids); the others exist already (or repeat an earlier row's name: the
 * node then holds that row's id) and take the per-entity merge.  A created
 * row's jobs are all of ids made for this statement (the entity's and its
 * records'), so they are CREATEd in the row's own FOREACH
 * (QUEUE_NEO4J_CREATE_FRESH), with no dedupe lookup or supersede subquery
 * per job; their ids are the rows'.
 */
static const char Q_CREATE_BULK[] =
    QUEUE_NEO4J_PFX
    "WITH coalesce($now, timestamp()) AS now "
    "UNWIND $rows AS r "
    "MERGE (e:Entity {namespace: $ns, name: r.name}) "
    "ON CREATE SET e.id = r.id, e.version = 1, e.entityType = r.type, e.observations = r.obs, "
    "e.createdAt = now, e.updatedAt = now, e.validFrom = now, e.changedBy = r.by, "
    "e.contentHash = r.hash "
    "WITH e, now, r, e.id = r.id AS created "
    "FOREACH (_ IN CASE WHEN created THEN [1] ELSE [] END | "
    "SET " GRAPH_SEARCH_SET("e") ", e.obsSeq = size(r.recs) "
    "CREATE (:EntityVersion {namespace: $ns, name: e.name, entityId: e.id, version: 1, "
    "entityType: e.entityType, createdAt: now, updatedAt: now, "
    "validFrom: now, changedBy: r.by, deleted: false}) "
    "FOREACH (o IN r.recs | " OBS_RECORD_CREATE("o", "r.by", "now", "1") ") "
    QUEUE_NEO4J_CREATE_FRESH("r.qjobs") ") "
    "RETURN r.i AS i, created, now, e.id AS id, " GRAPH_ENTITY_PROJ("e") " AS entity";

/* Row i of the bulk statement (new); *mine: its jobs when the queue takes
 * them only by the outbox, else NULL. */
static int bulk_row(graph_ctx *cx, const json_t *it, size_t i, json_t **mine, json_t **row_out, eg_error *err)
{
    *row_out = NULL;
    *mine = NULL;
    new_entity ne;
    int rc = new_entity_prepare(cx, it, &ne, err);
    if (rc != 0)
        return rc;
    json_t *r = json_pack("{s:I, s:s, s:O, s:O, s:O, s:s?, s:s, s:O, s:o}", "i", (json_int_t)i, "id", ne.id, "name",
                          json_object_get(it, "name"), "type", json_object_get(it, "entityType"), "obs",
                          json_object_get(it, "observations"), "by", graph__item_by(cx, it), "hash", ne.hash,
                          "recs", ne.recs, "qjobs", ne.qrows ? json_incref(ne.qrows) : json_array());
    if (r == NULL)
        rc = eg_error_oom(err);
    else if (ne.qrows == NULL)
        *mine = json_incref(ne.mine);
    new_entity_clear(&ne);
    *row_out = r;
    return rc;
}

static int create_bulk(graph_ctx *cx, bolt_conn *c, int64_t *now, const json_t *items, json_t *outbox,
                       json_t *job_ids, apply_out *outs, bool *created, eg_error *err)
{
    size_t n = json_array_size(items);
    json_t **mine = eg_calloc(n ? n : 1, sizeof *mine); /* per row, when not in the statement */
    json_t *rows = json_array();
    int rc = mine && rows ? 0 : eg_error_oom(err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        json_t *r = NULL;
        rc = bulk_row(cx, json_array_get(items, i), i, &mine[i], &r, err);
        if (rc == 0 && json_array_append_new(rows, r) != 0)
            rc = eg_error_oom(err);
    }
    bolt_params *p = rc == 0 ? graph__params(err) : NULL;
    if (rc == 0 && !p)
        rc = EG_ENOMEM;
    json_t *res = NULL;
    if (rc == 0) {
        params_now(p, *now);
        bolt_params_str(p, "ns", cx->ns);
        bolt_params_json(p, "rows", rows);
        params_queue(cx->g, p, NULL); /* $queue; the jobs are in the rows */
        rc = graph__params_check(p, err);
        if (rc == 0)
            rc = graph__q(c, Q_CREATE_BULK, p, &res, err);
    }
    bolt_params_free(p);
    size_t k;
    json_t *row;
    json_array_foreach(rc == 0 ? res : NULL, k, row)
    {
        int64_t i = graph__jint(row, "i", -1), t = graph__jint(row, "now", 0);
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
        outs[i].entity = graph__entity_out(json_incref(json_object_get(row, "entity")));
        /* the jobs in the statement are the row's own (QUEUE_NEO4J_CREATE_FRESH) */
        rc = jobs_done(mine[i] ? NULL : rows, json_object_get(json_array_get(rows, (size_t)i), "qjobs"), mine[i],
                       outbox, job_ids, err);
        if (rc != 0)
            break;
    }
    if (rc == 0 && json_array_size(res) != n)
        rc = eg_error_set(err, EG_EPROTO, EG_CLASS_DATABASE, "bulk create returned %zu rows for %zu",
                          json_array_size(res), n);
    json_decref(res);
    json_decref(rows);
    for (size_t i = 0; mine && i < n; i++)
        json_decref(mine[i]);
    eg_free(mine);
    return rc;
}

/* A create call's answer, made afresh for each attempt of its unit of work. */
static int create_result_reset(graph_mut_work *w, eg_error *err)
{
    json_decref(w->result);
    w->result = json_pack("{s[]s[]s[]s[]s[]}", "entities", "created", "updated", "unchanged", "jobIds");
    return w->result ? 0 : eg_error_oom(err);
}

/* One entity's outcome into the answer: its name under its status, the entity if it changed. */
static void create_result_add(json_t *result, const char *name, const apply_out *ao)
{
    static const char *const keys[] = {"created", "updated", "unchanged", "unchanged"};
    json_array_append_new(json_object_get(result, keys[ao->status]), json_string(name));
    if (ao->status != ST_UNCHANGED && ao->entity)
        json_array_append(json_object_get(result, "entities"), ao->entity);
}

static int create_entities_fn(bolt_conn *c, void *payload, eg_error *err)
{
    graph_mut_work *w = payload;
    if (create_result_reset(w, err) != 0)
        return EG_ENOMEM;
    int64_t now = 0; /* taken from the database by the first statement */
    int rc = 0;
    json_t *job_ids = json_object_get(w->result, "jobIds");
    json_t *outbox = json_array();
    if (outbox == NULL)
        rc = eg_error_oom(err);
    size_t i, n = json_array_size(w->items);
    json_t *it;
    /* Several entities: every first-time create in one statement; one: the
     * single-row statement (the common call, its plan cached). */
    apply_out *bulk = NULL;
    bool *made = NULL;
    if (rc == 0 && n > 1) {
        bulk = eg_calloc(n, sizeof *bulk);
        made = eg_calloc(n, sizeof *made);
        rc = bulk && made ? create_bulk(&w->cx, c, &now, w->items, outbox, job_ids, bulk, made, err)
                          : eg_error_oom(err);
    }
    json_array_foreach(w->items, i, it)
    {
        if (rc != 0)
            break;
        apply_out ao;
        memset(&ao, 0, sizeof ao);
        const char *name = graph__jstr(it, "name");
        bool created = false;
        if (bulk) {
            created = made[i];
            ao = bulk[i];
            memset(&bulk[i], 0, sizeof bulk[i]); /* ao owns it now */
        } else {
            rc = create_fast(&w->cx, c, &now, it, graph__item_by(&w->cx, it), outbox, job_ids, &ao, &created, err);
        }
        if (rc == 0 && !created)
            rc = apply_entity(&w->cx, c, &now, APPLY_MERGE, name, graph__jstr(it, "entityType"),
                              json_object_get(it, "observations"), graph__item_by(&w->cx, it), outbox, job_ids,
                              &ao, err);
        if (rc == 0)
            create_result_add(w->result, name, &ao);
        apply_out_clear(&ao);
    }
    for (size_t k = 0; bulk && k < n; k++)
        apply_out_clear(&bulk[k]);
    eg_free(bulk);
    eg_free(made);
    /* only what the queue could not take in the statements (memory store) */
    if (rc == 0)
        rc = graph__outbox_flush(w->cx.g, c, w->cx.ns, outbox, job_ids, NULL, err);
    json_decref(outbox);
    return rc;
}

/*
 * One name whose jobs the job store takes in the statement (or no store):
 * a first-time create is then the whole unit of work, one statement, and
 * runs as an auto-commit query -- one round trip where a transaction takes
 * two (its COMMIT).  When the name exists the statement wrote nothing
 * (Q_CREATE_FAST) and `missed` sends the call to the transaction, which
 * merges.
 */
typedef struct create_one_work {
    graph_mut_work m;
    bool missed;
} create_one_work;

static int create_one_auto_fn(bolt_conn *c, void *payload, eg_error *err)
{
    create_one_work *w = payload;
    graph_mut_work *m = &w->m;
    if (create_result_reset(m, err) != 0)
        return EG_ENOMEM;
    json_t *outbox = json_array();
    if (outbox == NULL)
        return eg_error_oom(err);
    const json_t *it = json_array_get(m->items, 0);
    int64_t now = 0;
    bool created = false;
    apply_out ao;
    int rc = create_fast(&m->cx, c, &now, it, graph__item_by(&m->cx, it), outbox,
                         json_object_get(m->result, "jobIds"), &ao, &created, err);
    w->missed = rc == 0 && !created;
    if (rc == 0 && created)
        create_result_add(m->result, graph__jstr(it, "name"), &ao);
    /* the statement took every job: a job left for the outbox would be lost */
    if (rc == 0 && json_array_size(outbox) != 0)
        rc = eg_error_set(err, EG_EINTERNAL, EG_CLASS_CLIENT, "create: jobs left outside the statement");
    apply_out_clear(&ao);
    json_decref(outbox);
    return rc;
}

int graph_create_entities(graph_store *g, const graph_req *req, const json_t *entities,
                          json_t **out, eg_error *err)
{
    *out = NULL;
    create_one_work co = {0};
    graph_mut_work *w = &co.m;
    int rc = graph__ctx_init(&w->cx, g, req, err);
    if (rc == 0)
        rc = graph_validate_entities(entities, &w->items, err);
    bool one = rc == 0 && json_array_size(w->items) == 1 && (g->queue == NULL || queue_neo4j_inline(g->queue));
    /* Two first-time MERGEs of one name can race into a constraint violation
     * (the loser's index lookup ran before the winner committed); re-running
     * the unit finds the winner's node and merges into it. */
    eg_error e;
    eg_error_clear(&e);
    for (int attempt = 0; rc == 0; attempt++) {
        co.missed = !one;
        if (one)
            rc = graph__write_auto(g, create_one_auto_fn, &co, &e);
        if (rc == 0 && co.missed)
            rc = graph__write(g, create_entities_fn, w, &e);
        if (rc == 0 || attempt >= 4 || strstr(e.neo4j_code, "ConstraintValidationFailed") == NULL)
            break;
        rc = 0;
        eg_error_clear(&e);
        eg_sleep_ms(5 + (int64_t)(eg_rand_unit() * 20));
    }
    if (rc != 0 && err != NULL && e.code != 0)
        eg_error_copy(err, &e);
    json_decref(w->items);
    if (rc != 0) {
        json_decref(w->result);
        return rc;
    }
    graph__indexer_poke(g, w->cx.ns);
    *out = w->result;
    return 0;
}

/* ---- add / delete observations ---- */

typedef struct obs_work {
    graph_mut_work m;
    bool is_delete;
    char missing[GRAPH_MAX_NAME_BYTES + 1];
} obs_work;

static int observations_fn(bolt_conn *c, void *payload, eg_error *err)
{
    obs_work *w = payload;
    json_decref(w->m.result);
    w->m.result = json_pack("{s[]s[]s[]}", "results", "notFound", "jobIds");
    if (w->m.result == NULL)
        return eg_error_oom(err);
    int64_t now = 0; /* taken by the first lock */
    int rc = 0;
    json_t *job_ids = json_object_get(w->m.result, "jobIds");
    json_t *outbox = json_array();
    if (outbox == NULL)
        rc = eg_error_oom(err);
    size_t i;
    json_t *it;
    const char *field = w->is_delete ? "observations" : "contents";
    json_array_foreach(w->m.items, i, it)
    {
        if (rc != 0)
            break;
        apply_out ao;
        const char *name = graph__jstr(it, "entityName");
        rc = apply_entity(&w->m.cx, c, &now, w->is_delete ? APPLY_DELETE : APPLY_ADD, name, NULL,
                          json_object_get(it, field), w->m.cx.changed_by, outbox, job_ids, &ao, err);
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
        rc = graph__outbox_flush(w->m.cx.g, c, w->m.cx.ns, outbox, job_ids, NULL, err);
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
    int rc = graph__ctx_init(&w.m.cx, g, req, err);
    if (rc == 0)
        rc = graph_validate_observations(items, is_delete ? "observations" : "contents", &w.m.items,
                                         err);
    rc = graph__run(g, GRAPH_TX_WRITE, observations_fn, &w, rc, &w.m.result, out, err);
    json_decref(w.m.items);
    if (rc == 0)
        graph__indexer_poke(g, w.m.cx.ns);
    return rc;
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
    /* the records outlive the entity for history; toVersion is one past the
     * last version, which history shows (deleted) with its observations */
    "CALL { WITH e MATCH (o:ObservationRecord {namespace: $ns, entityId: e.id}) WHERE o:Observation "
    "  SET o.validTo = $now, o.toVersion = e.version + 1 REMOVE o:Observation, o.embedding } "
    "DETACH DELETE e "
    "RETURN count(*) AS n";

int graph__run_items(bolt_conn *c, graph_mut_work *w, const char *cypher, graph_item_params_fn fill,
                     json_t ***rows_out, eg_error *err)
{
    *rows_out = NULL;
    json_decref(w->result);
    w->result = json_pack("{s[]s[]}", "deleted", "notFound");
    if (w->result == NULL)
        return eg_error_oom(err);
    int64_t now = 0;
    int rc = graph__now(c, &now, err);
    size_t n = json_array_size(w->items);
    bolt_params **ps = eg_calloc(n ? n : 1, sizeof *ps);
    json_t **rows = eg_calloc(n ? n : 1, sizeof *rows);
    if (rc == 0 && (!ps || !rows))
        rc = eg_error_oom(err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if ((ps[i] = graph__params(err)) == NULL) {
            rc = EG_ENOMEM;
            break;
        }
        fill(ps[i], w, json_array_get(w->items, i), now);
        rc = graph__params_check(ps[i], err);
    }
    if (rc == 0)
        rc = graph__q_many(c, cypher, ps, n, rows, err);
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

void graph__free_item_rows(json_t **rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        json_decref(rows[i]);
    eg_free(rows);
}

static void delete_entity_params(bolt_params *p, const graph_mut_work *w, const json_t *item, int64_t now)
{
    bolt_params_str(p, "ns", w->cx.ns);
    bolt_params_json(p, "name", item);
    bolt_params_int(p, "now", now);
}

static int delete_entities_fn(bolt_conn *c, void *payload, eg_error *err)
{
    graph_mut_work *w = payload;
    json_t **rows = NULL;
    int rc = graph__run_items(c, w, Q_DELETE_ENTITY, delete_entity_params, &rows, err);
    size_t i;
    json_t *it;
    json_array_foreach(rc == 0 ? w->items : NULL, i, it)
    {
        bool hit = graph__jint(json_array_get(rows[i], 0), "n", 0) > 0;
        json_array_append(json_object_get(w->result, hit ? "deleted" : "notFound"), it);
    }
    graph__free_item_rows(rows, json_array_size(w->items));
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
    return *out ? 0 : eg_error_oom(err);
}

int graph__validate_names(const json_t *names, json_t **out, eg_error *err)
{
    return validate_names(names, out, err);
}

int graph_delete_entities(graph_store *g, const graph_req *req, const json_t *names, json_t **out,
                          eg_error *err)
{
    *out = NULL;
    graph_mut_work w = {0};
    int rc = graph__ctx_init(&w.cx, g, req, err);
    if (rc == 0)
        rc = validate_names(names, &w.items, err);
    rc = graph__run(g, GRAPH_TX_WRITE, delete_entities_fn, &w, rc, &w.result, out, err);
    json_decref(w.items);
    return rc;
}
