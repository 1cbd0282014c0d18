/*
 * neo4j_store.c - the job store on Neo4j (see neo4j_store.h, docs/queue.md):
 * its hot path (enqueue, claim, heartbeat, release, complete, fail, reclaim),
 * the ops table and the schema.  Status, list, retry and prune are in
 * neo4j_store_admin.c; what both use is in neo4j_store_int.h.
 *
 * The one locking idiom used everywhere a decision depends on a job's
 * current state ("lock, then re-check"): Neo4j is read-committed and a
 * WHERE evaluated before a write lock is not protected, and the planner
 * caches property values read from an index (or an earlier WHERE) and
 * reuses them after later writes.  So every fenced statement
 *
 *   1. selects candidates (c) by index,
 *   2. writes the job's `queue` property with the value it already has
 *      (SET c.queue = $queue) - this takes the node's write lock, waiting for
 *      any writer that holds it to commit, and changes nothing (no index
 *      update); tests/integration/test_queue_locking.c checks that an
 *      equal-value SET still blocks a concurrent writer,
 *   3. re-reads the node through a *fresh variable* (MATCH (j) WHERE
 *      elementId(j) = elementId(c): a record lookup (measured: docs/queue.md),
 *      cheaper than the id index), whose properties have not been read yet
 *      and so come from the latest committed state,
 *   4. filters on the re-read state and only then writes.
 *
 * Statements that start from a lease ref (complete, fail, heartbeat,
 * release) read nothing but the id (or the element id, FIND_BY_EID) before
 * the lock, so they lock (SET j.queue = j.queue) and re-check the same
 * variable - the id included.
 *
 * Claims additionally serialise on the queue's mutex node (EmbedQueue):
 * `SET q.claims = q.claims + 1` takes its lock first, and the candidate
 * read happens in a CALL subquery that runs after it, so every claim reads
 * the committed result of the previous one; no two claimers ever pick the
 * same job, and claimers never deadlock with each other.
 */
#include "queue/neo4j_store_int.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "schema/schema.h"

#include <stdio.h>
#include <string.h>

/* ---- small helpers ---- */

int queue__neo_params_check(bolt_params *p, eg_error *err)
{
    if (!p)
        return eg_error_oom(err);
    if (bolt_params_error(p))
        return eg_error_set(err, bolt_params_error(p), EG_CLASS_CLIENT, "building query parameters failed");
    return 0;
}

/* Run q with p on c, calling fn for each record (fn may be NULL). */
int queue__neo_run(bolt_conn *c, const char *q, const bolt_params *p, queue_neo_row_fn fn, void *ctx,
                   eg_error *err)
{
    bolt_result *r = NULL;
    bolt_tx_opts txo = BOLT_TX_OPTS_INIT;
    txo.fetch_size = -1;
    int rc = bolt_conn_run(c, q, p, &txo, &r, err);
    if (rc)
        return rc;
    const bolt_value *rec;
    while ((rc = bolt_result_next(r, &rec, err)) == 1) {
        if (fn && (rc = fn(rec, ctx, err)) != 0)
            break;
    }
    bolt_result_free(r);
    return rc < 0 ? rc : 0;
}

static char *vdup(const bolt_value *v)
{
    const char *s = bolt_value_cstr(v);
    return s ? eg_strdup(s) : NULL;
}

static bool vdup_ok(char **dst, const bolt_value *v)
{
    *dst = vdup(v);
    return *dst || !bolt_value_cstr(v);
}

static int decode_job(const bolt_value *rec, size_t o, queue_job *j)
{
    memset(j, 0, sizeof *j);
    bool ok = vdup_ok(&j->id, bolt_value_at(rec, o + 0)) && vdup_ok(&j->ns, bolt_value_at(rec, o + 1)) &&
              vdup_ok(&j->entity, bolt_value_at(rec, o + 2)) &&
              vdup_ok(&j->version, bolt_value_at(rec, o + 3)) &&
              vdup_ok(&j->model, bolt_value_at(rec, o + 4)) &&
              vdup_ok(&j->dedupe_key, bolt_value_at(rec, o + 5)) &&
              vdup_ok(&j->payload, bolt_value_at(rec, o + 6));
    int st = queue_state_parse(bolt_value_cstr(bolt_value_at(rec, o + 7)));
    j->state = st < 0 ? QUEUE_PENDING : (queue_state)st;
    j->attempts = (int)bolt_value_int(bolt_value_at(rec, o + 8), 0);
    j->max_attempts = (int)bolt_value_int(bolt_value_at(rec, o + 9), 0);
    j->run_at = bolt_value_int(bolt_value_at(rec, o + 10), 0);
    ok = ok && vdup_ok(&j->lease_owner, bolt_value_at(rec, o + 11)) &&
         vdup_ok(&j->lease_token, bolt_value_at(rec, o + 12));
    j->lease_until = bolt_value_int(bolt_value_at(rec, o + 13), 0);
    ok = ok && vdup_ok(&j->last_error, bolt_value_at(rec, o + 14)) &&
         vdup_ok(&j->last_error_category, bolt_value_at(rec, o + 15));
    j->created_at = bolt_value_int(bolt_value_at(rec, o + 16), 0);
    j->updated_at = bolt_value_int(bolt_value_at(rec, o + 17), 0);
    j->completed_at = bolt_value_int(bolt_value_at(rec, o + 18), 0);
    j->seq = bolt_value_int(bolt_value_at(rec, o + 19), 0);
    if (!ok) {
        queue_job_clear(j);
        return EG_ENOMEM;
    }
    return 0;
}

int queue__neo_push_job_row(const bolt_value *rec, void *ctx, eg_error *err)
{
    queue_neo_job_vec *jv = ctx;
    if (jv->n == jv->cap) {
        size_t nc = jv->cap ? jv->cap * 2 : 16;
        queue_job *nv = eg_realloc(jv->v, nc * sizeof *nv);
        if (!nv)
            return eg_error_oom(err);
        jv->v = nv;
        jv->cap = nc;
    }
    queue_job *j = &jv->v[jv->n];
    if (decode_job(rec, jv->col, j) || (jv->locator && !vdup_ok(&j->locator, bolt_value_at(rec, jv->col + 20)))) {
        queue_job_clear(j);
        return eg_error_oom(err);
    }
    jv->n++;
    return 0;
}

void queue__neo_job_vec_reset(queue_neo_job_vec *jv)
{
    queue_jobs_free(jv->v, jv->n);
    jv->v = NULL;
    jv->n = jv->cap = 0;
}

/* Write a list of {idx, id, token, eid} maps for lease refs. */
static void put_refs(bolt_params *p, const char *key, const queue_lease_ref *l, size_t n)
{
    bolt_ps_writer *w = bolt_params_add(p, key);
    if (!w)
        return;
    bolt_ps_list_begin(w, n);
    for (size_t i = 0; i < n; i++) {
        bolt_ps_map_begin(w, 4);
        bolt_ps_str(w, "idx");
        bolt_ps_int(w, (int64_t)i);
        bolt_ps_str(w, "id");
        bolt_ps_str(w, l[i].id);
        bolt_ps_str(w, "token");
        bolt_ps_str(w, l[i].token);
        bolt_ps_str(w, "eid");
        if (l[i].locator)
            bolt_ps_str(w, l[i].locator);
        else
            bolt_ps_null(w);
    }
}

/* ---- store basics ---- */

static void neo_free(queue_store *s)
{
    eg_free(s);
}

typedef struct now_ctx {
    int64_t now;
} now_ctx;

static int now_row(const bolt_value *rec, void *ctx, eg_error *err)
{
    (void)err;
    ((now_ctx *)ctx)->now = bolt_value_int(bolt_value_at(rec, 0), 0);
    return 0;
}

static int now_work(bolt_conn *c, void *payload, eg_error *err)
{
    return queue__neo_run(c, "RETURN timestamp() AS now", NULL, now_row, payload, err);
}

static int neo_now(queue_store *s, int64_t *out, eg_error *err)
{
    now_ctx nc = {0};
    int rc = bolt_pool_execute_read(QUEUE_NEO(s)->pool, NULL, NULL, now_work, &nc, err);
    *out = nc.now;
    return rc;
}

static int neo_tx_begin(queue_store *s, queue_tx *tx, eg_error *err)
{
    bolt_conn *c = NULL;
    int rc = bolt_pool_acquire(QUEUE_NEO(s)->pool, &c, err);
    if (rc)
        return rc;
    if ((rc = bolt_conn_begin(c, NULL, err))) {
        bolt_pool_release(QUEUE_NEO(s)->pool, c);
        return rc;
    }
    tx->conn = c;
    return 0;
}

static int neo_tx_commit(queue_store *s, queue_tx *tx, eg_error *err)
{
    int rc = bolt_conn_commit(tx->conn, NULL, err);
    bolt_pool_release(QUEUE_NEO(s)->pool, tx->conn);
    tx->conn = NULL;
    return rc;
}

static void neo_tx_rollback(queue_store *s, queue_tx *tx)
{
    bolt_conn_rollback(tx->conn, NULL);
    bolt_pool_release(QUEUE_NEO(s)->pool, tx->conn);
    tx->conn = NULL;
}

/* ---- enqueue ---- */

static const char *const Q_ENQUEUE =
    QUEUE_NEO_PFX "UNWIND $jobs AS qr " QUEUE_NEO4J_ENQUEUE_BODY
    "RETURN qr.idx AS idx, qj.id AS id, qj.state AS state, qcreated AS created, qsup AS sup";

typedef struct enq_ctx {
    queue_store *s;
    const queue_enqueue_req *reqs;
    size_t n;
    queue_enqueue_result *out;
    char (*ids)[QUEUE_ID_MAX];
    char (*keys)[65];
} enq_ctx;

static int enq_row(const bolt_value *rec, void *ctx, eg_error *err)
{
    enq_ctx *e = ctx;
    int64_t idx = bolt_value_int(bolt_value_at(rec, 0), -1);
    if (idx < 0 || (size_t)idx >= e->n)
        return eg_error_set(err, EG_EINTERNAL, EG_CLASS_NONE, "enqueue: bad row index");
    queue_enqueue_result *o = &e->out[idx];
    const char *id = bolt_value_cstr(bolt_value_at(rec, 1));
    snprintf(o->id, QUEUE_ID_MAX, "%s", id ? id : "");
    int st = queue_state_parse(bolt_value_cstr(bolt_value_at(rec, 2)));
    o->state = st < 0 ? QUEUE_PENDING : (queue_state)st;
    o->created = bolt_value_bool(bolt_value_at(rec, 3), false);
    o->superseded = bolt_value_int(bolt_value_at(rec, 4), 0);
    return 0;
}

/* The rows of reqs[0..n) under the given ids and dedupe keys (new array). */
static json_t *job_rows(const queue_store *s, const queue_enqueue_req *reqs, size_t n, char (*ids)[QUEUE_ID_MAX],
                        char (*keys)[65])
{
    json_t *rows = json_array();
    for (size_t i = 0; rows && i < n; i++) {
        const queue_enqueue_req *r = &reqs[i];
        json_t *row = json_pack("{sI ss ss ss ss ss ss ss sI sI sI}", "idx", (json_int_t)i, "id", ids[i], "key",
                                keys[i], "ns", r->ns, "entity", r->entity, "version", r->version, "model", r->model,
                                "payload", r->payload ? r->payload : "", "maxAttempts",
                                (json_int_t)(r->max_attempts > 0 ? r->max_attempts : s->opts.max_attempts), "delay",
                                (json_int_t)r->delay_ms, "seq", (json_int_t)(r->seq > 0 ? r->seq : 0));
        if (!r->payload && row)
            json_object_set_new(row, "payload", json_null());
        if (!row || json_array_append_new(rows, row) != 0) {
            json_decref(rows);
            rows = NULL;
        }
    }
    return rows;
}

static int enq_on(bolt_conn *c, enq_ctx *e, eg_error *err)
{
    for (size_t i = 0; i < e->n; i++)
        memset(&e->out[i], 0, sizeof e->out[i]);
    bolt_params *p = bolt_params_new();
    json_t *rows = job_rows(e->s, e->reqs, e->n, e->ids, e->keys);
    if (p && rows) {
        bolt_params_str(p, "queue", e->s->opts.name);
        bolt_params_json(p, "jobs", rows);
    } else if (p) {
        bolt_params_free(p);
        p = NULL;
    }
    json_decref(rows);
    int rc = queue__neo_params_check(p, err);
    if (!rc)
        rc = queue__neo_run(c, Q_ENQUEUE, p, enq_row, e, err);
    bolt_params_free(p);
    return rc;
}

static int enq_work(bolt_conn *c, void *payload, eg_error *err)
{
    return enq_on(c, payload, err);
}

/* New job ids and the dedupe keys of reqs[0..n). */
static int ids_and_keys(const queue_store *s, const queue_enqueue_req *reqs, size_t n, char (*ids)[QUEUE_ID_MAX],
                        char (*keys)[65], eg_error *err)
{
    int64_t now = eg_wall_ms();
    for (size_t i = 0; i < n; i++) {
        /* The id only orders jobs (list pagination); the wall clock is fine. */
        queue_new_id(ids[i], now);
        if (queue_dedupe_key(keys[i], s->opts.name, reqs[i].ns, reqs[i].entity, reqs[i].version, reqs[i].model))
            return eg_error_set(err, EG_EINTERNAL, EG_CLASS_NONE, "enqueue: the dedupe key could not be hashed");
    }
    return 0;
}

bool queue_neo4j_inline(const queue_store *s)
{
    return s != NULL && strcmp(queue_store_kind(s), "neo4j") == 0;
}

int queue_neo4j_job_rows(queue_store *s, const queue_enqueue_req *reqs, size_t n, json_t **rows_out,
                         eg_error *err)
{
    *rows_out = NULL;
    if (!queue_neo4j_inline(s))
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "queue_neo4j_job_rows: not a Neo4j job store");
    int rc = queue_enqueue_check(reqs, n, err);
    if (rc)
        return rc;
    char(*ids)[QUEUE_ID_MAX] = eg_malloc((n ? n : 1) * sizeof *ids);
    char(*keys)[65] = eg_malloc((n ? n : 1) * sizeof *keys);
    rc = ids && keys ? ids_and_keys(s, reqs, n, ids, keys, err) : eg_error_oom(err);
    if (!rc && !(*rows_out = job_rows(s, reqs, n, ids, keys)))
        rc = eg_error_oom(err);
    eg_free(ids);
    eg_free(keys);
    return rc;
}

static int neo_enqueue(queue_store *s, queue_tx *tx, const queue_enqueue_req *reqs, size_t n,
                       queue_enqueue_result *out, eg_error *err)
{
    if (tx && !tx->conn)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "neo4j store: the transaction has no connection (use QUEUE_TX_BOLT)");
    enq_ctx e = {.s = s, .reqs = reqs, .n = n, .out = out};
    e.ids = eg_malloc(n * sizeof *e.ids);
    e.keys = eg_malloc(n * sizeof *e.keys);
    int rc = 0;
    if (!e.ids || !e.keys) {
        rc = eg_error_oom(err);
        goto out;
    }
    if ((rc = ids_and_keys(s, reqs, n, e.ids, e.keys, err)))
        goto out;
    if (tx) {
        rc = enq_on(tx->conn, &e, err);
    } else {
        /* Two first-time MERGEs of one key can still race into a constraint
         * violation on some versions; re-running finds the winner's job. */
        for (int attempt = 0; attempt < 3; attempt++) {
            eg_error_clear(err);
            rc = bolt_pool_execute_write(QUEUE_NEO(s)->pool, NULL, NULL, enq_work, &e, err);
            if (!(rc && err && strstr(err->neo4j_code, "ConstraintValidationFailed")))
                break;
        }
    }
out:
    eg_free(e.ids);
    eg_free(e.keys);
    return rc;
}

/* ---- lease ---- */

static const char *const Q_LEASE =
    /* An idle poll must not take the mutex: first check, lock-free, that a
     * due job exists at all (one index entry); no row, no lock. */
    QUEUE_NEO_PFX "MATCH (p:EmbedJob) "
    "WHERE p.queue = $queue AND p.state = 'pending' AND p.runAt <= timestamp() "
    "  AND ($model IS NULL OR p.model = $model) "
    "WITH p ORDER BY p.queue, p.state, p.runAt LIMIT 1 "
    "MERGE (q:EmbedQueue {name: $queue}) "
    "SET q.claims = coalesce(q.claims, 0) + 1 "
    "WITH q "
    "CALL { "
    "  WITH q "
    "  MATCH (c:EmbedJob) "
    "  WHERE c.queue = $queue AND c.state = 'pending' AND c.runAt <= timestamp() "
    "    AND ($model IS NULL OR c.model = $model) "
    /* ordering by the whole index key lets the planner read the range
     * index in order and stop after $max entries (ORDER BY runAt alone
     * plans a Top over every due job: O(queue length) per claim) */
    "  RETURN c ORDER BY c.queue, c.state, c.runAt LIMIT $max "
    "} "
    "SET c.queue = $queue "
    QUEUE_NEO_REREAD("c", "j")
    "WITH j WHERE j.state = 'pending' "
    "SET j.state = 'leased', j.leaseToken = $token, j.leaseOwner = $owner, "
    "    j.leaseUntil = timestamp() + $leaseMs, j.runAt = timestamp() + $leaseMs, "
    "    j.attempts = j.attempts + 1, j.updatedAt = timestamp() "
    "RETURN " QUEUE_NEO_JOB_COLS ", elementId(j)";

typedef struct lease_ctx {
    queue_store *s;
    const queue_lease_opts *o;
    queue_neo_job_vec jv;
} lease_ctx;

static int lease_work(bolt_conn *c, void *payload, eg_error *err)
{
    lease_ctx *l = payload;
    queue__neo_job_vec_reset(&l->jv);
    l->jv.locator = true;
    char token[QUEUE_TOKEN_MAX];
    queue_new_token(token);
    bolt_params *p = bolt_params_new();
    if (p) {
        bolt_params_str(p, "queue", l->s->opts.name);
        bolt_params_str(p, "model", l->o->model);
        bolt_params_int(p, "max", (int64_t)l->o->max_jobs);
        bolt_params_str(p, "token", token);
        bolt_params_str(p, "owner", l->o->owner);
        bolt_params_int(p, "leaseMs", l->o->lease_ms ? l->o->lease_ms : l->s->opts.lease_ms);
    }
    int rc = queue__neo_params_check(p, err);
    if (!rc)
        rc = queue__neo_run(c, Q_LEASE, p, queue__neo_push_job_row, &l->jv, err);
    bolt_params_free(p);
    return rc;
}

static int neo_lease(queue_store *s, const queue_lease_opts *o, queue_job **jobs_out,
                     size_t *n_out, eg_error *err)
{
    lease_ctx l = {.s = s, .o = o, .jv = {.locator = true}};
    int rc = bolt_pool_execute_write(QUEUE_NEO(s)->pool, QUEUE_NEO_WORKER_TX(s), NULL, lease_work, &l, err);
    if (rc) {
        queue__neo_job_vec_reset(&l.jv);
        return rc;
    }
    *jobs_out = l.jv.v;
    *n_out = l.jv.n;
    return 0;
}

/* ---- fenced updates: heartbeat, release ---- */

/*
 * How a fenced statement finds the job of lease ref `l`: by its id through
 * the unique index, or - when every ref of the call carries the element id
 * the lease returned - straight by element id (a record lookup instead of
 * an index seek; docs/queue.md has what it measured).  Element ids are
 * reused after a node is deleted, so every fence also checks j.id = l.id: a
 * job that is gone reads as lost, never as another job (the other job's
 * node is locked by the equal-value SET for the rest of the transaction and
 * otherwise left alone).  [0] by id, [1] by element id.
 */
#define FIND_BY_ID "MATCH (j:EmbedJob {id: l.id}) "
#define FIND_BY_EID "MATCH (j:EmbedJob) WHERE elementId(j) = l.eid "
#define BOTH_WAYS(m) {m(FIND_BY_ID), m(FIND_BY_EID)}

/* 1 when every ref carries a locator. */
static int by_locator(const queue_lease_ref *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!l[i].locator)
            return 0;
    return n > 0;
}

typedef struct idx_ctx {
    bool *hit;     /* per input index: row returned */
    size_t n;
    size_t count;
} idx_ctx;

static int idx_row(const bolt_value *rec, void *ctx, eg_error *err)
{
    (void)err;
    idx_ctx *x = ctx;
    int64_t i = bolt_value_int(bolt_value_at(rec, 0), -1);
    if (i >= 0 && (size_t)i < x->n && !x->hit[i]) {
        x->hit[i] = true;
        x->count++;
    }
    return 0;
}

#define HEARTBEAT(find)                                                                            \
    QUEUE_NEO_PFX "UNWIND $leases AS l " find "SET j.queue = j.queue "                             \
    "WITH j, l WHERE j.id = l.id AND j.state = 'leased' AND j.leaseOwner = $owner "                \
    "  AND j.leaseToken = l.token "                                                                \
    "SET j.leaseUntil = timestamp() + $leaseMs, j.runAt = timestamp() + $leaseMs "                 \
    "RETURN l.idx"
static const char *const Q_HEARTBEAT[2] = BOTH_WAYS(HEARTBEAT);

#define RELEASE(find)                                                                              \
    QUEUE_NEO_PFX "UNWIND $leases AS l " find "SET j.queue = j.queue "                             \
    "WITH j, l WHERE j.id = l.id AND j.state = 'leased' AND j.leaseOwner = $owner "                \
    "  AND j.leaseToken = l.token "                                                                \
    "SET j.state = 'pending', j.leaseToken = null, j.leaseOwner = null, j.leaseUntil = null, "     \
    "    j.attempts = CASE WHEN j.attempts > 0 THEN j.attempts - 1 ELSE 0 END, "                   \
    "    j.runAt = timestamp() + $delay, j.updatedAt = timestamp() "                               \
    "RETURN l.idx"
static const char *const Q_RELEASE[2] = BOTH_WAYS(RELEASE);

typedef struct fenced_ctx {
    queue_store *s;
    const char *query;
    const char *owner;
    const queue_lease_ref *leases;
    size_t n;
    int64_t ms;        /* leaseMs or delay */
    const char *ms_key;
    idx_ctx x;
} fenced_ctx;

static int fenced_work(bolt_conn *c, void *payload, eg_error *err)
{
    fenced_ctx *f = payload;
    memset(f->x.hit, 0, f->n * sizeof *f->x.hit);
    f->x.count = 0;
    bolt_params *p = bolt_params_new();
    if (p) {
        bolt_params_str(p, "owner", f->owner);
        bolt_params_int(p, f->ms_key, f->ms);
        put_refs(p, "leases", f->leases, f->n);
    }
    int rc = queue__neo_params_check(p, err);
    if (!rc)
        rc = queue__neo_run(c, f->query, p, idx_row, &f->x, err);
    bolt_params_free(p);
    return rc;
}

static int fenced(queue_store *s, const char *query, const char *owner, const queue_lease_ref *l,
                  size_t n, const char *ms_key, int64_t ms, bool *lost_out, size_t *held_out,
                  eg_error *err)
{
    fenced_ctx f = {.s = s, .query = query, .owner = owner, .leases = l, .n = n, .ms = ms,
                    .ms_key = ms_key};
    f.x.n = n;
    f.x.hit = eg_calloc(n, sizeof *f.x.hit);
    if (!f.x.hit)
        return eg_error_oom(err);
    int rc = bolt_pool_execute_write(QUEUE_NEO(s)->pool, QUEUE_NEO_WORKER_TX(s), NULL, fenced_work, &f, err);
    if (!rc) {
        for (size_t i = 0; i < n && lost_out; i++)
            lost_out[i] = !f.x.hit[i];
        if (held_out)
            *held_out = f.x.count;
    }
    eg_free(f.x.hit);
    return rc;
}

static int neo_heartbeat(queue_store *s, const char *owner, const queue_lease_ref *leases,
                         size_t n, int64_t lease_ms, bool *lost_out, size_t *held_out,
                         eg_error *err)
{
    return fenced(s, Q_HEARTBEAT[by_locator(leases, n)], owner, leases, n, "leaseMs",
                  lease_ms ? lease_ms : s->opts.lease_ms, lost_out, held_out, err);
}

static int neo_release(queue_store *s, const char *owner, const queue_lease_ref *leases,
                       size_t n, int64_t delay_ms, bool *lost_out, eg_error *err)
{
    return fenced(s, Q_RELEASE[by_locator(leases, n)], owner, leases, n, "delay", delay_ms, lost_out, NULL, err);
}

/* ---- complete ---- */

/*
 * Fence and complete in one statement (returning only what a writer gets:
 * the first seven job columns, in decode_job's order); the caller's writer then runs in the
 * same transaction and anything it reports superseded is flipped after.
 * A writer error rolls the whole transaction back, completions included.
 */
#define COMPLETE_FENCED(find)                                                                      \
    QUEUE_NEO_PFX "UNWIND $leases AS l " find "SET j.queue = j.queue "                             \
    "WITH j, l WHERE j.id = l.id AND j.leaseOwner = $owner AND j.leaseToken = l.token "            \
    "  AND j.state IN ['leased', 'completed', 'superseded'] "                                      \
    /* already completed under this very lease: a retried unit of work whose */                   \
    /* first COMMIT went through; report it, change nothing */                                     \
    "WITH j, l, j.state <> 'leased' AS again, j.state AS was "                                     \
    "SET j.state = CASE WHEN again THEN was ELSE 'completed' END, "                                \
    "    j.runAt = CASE WHEN again THEN j.runAt ELSE timestamp() END, "                            \
    "    j.completedAt = CASE WHEN again THEN j.completedAt ELSE timestamp() END, "                \
    "    j.updatedAt = CASE WHEN again THEN j.updatedAt ELSE timestamp() END "

#define COMPLETE(find)                                                                             \
    COMPLETE_FENCED(find) "RETURN l.idx, again, was, j.id, j.namespace, j.entity, j.version, "     \
    "j.model, j.dedupeKey, j.payload"
static const char *const Q_COMPLETE[2] = BOTH_WAYS(COMPLETE);

/* The same without a writer: only which jobs were held. */
#define COMPLETE_MIN(find) COMPLETE_FENCED(find) "RETURN l.idx, again, was, j.id"
static const char *const Q_COMPLETE_MIN[2] = BOTH_WAYS(COMPLETE_MIN);

static const char *const Q_SUPERSEDE =
    QUEUE_NEO_PFX "UNWIND $ids AS id MATCH (j:EmbedJob {id: id}) "
    "SET j.state = 'superseded' RETURN count(j)";

typedef struct complete_ctx {
    queue_store *s;
    const char *owner;
    const queue_lease_ref *leases;
    size_t n;
    queue_result_fn write_fn;
    void *payload;
    queue_neo_job_vec jv;
    size_t *idx;       /* jv row k -> input index */
    bool *seen;        /* per input index */
    bool *sup;
    queue_outcome *prior;  /* per input: completed earlier under this lease (retried unit) */
} complete_ctx;

static int complete_row(const bolt_value *rec, void *ctx, eg_error *err)
{
    complete_ctx *c = ctx;
    int64_t i = bolt_value_int(bolt_value_at(rec, 0), -1);
    if (i < 0 || (size_t)i >= c->n)
        return 0;
    if (bolt_value_bool(bolt_value_at(rec, 1), false)) {
        const char *was = bolt_value_cstr(bolt_value_at(rec, 2));
        c->prior[i] = was && strcmp(was, "superseded") == 0 ? QUEUE_OUT_SUPERSEDED : QUEUE_OUT_OK;
        return 0;
    }
    int rc = queue__neo_push_job_row(rec, &c->jv, err);
    if (rc)
        return rc;
    c->idx[c->jv.n - 1] = (size_t)i;
    c->seen[i] = true;
    return 0;
}

static int complete_work(bolt_conn *conn, void *payload, eg_error *err)
{
    complete_ctx *c = payload;
    queue__neo_job_vec_reset(&c->jv);
    c->jv.col = 3;
    memset(c->seen, 0, c->n * sizeof *c->seen);
    for (size_t i = 0; i < c->n; i++)
        c->prior[i] = QUEUE_OUT_LOST;
    memset(c->sup, 0, c->n * sizeof *c->sup);
    bolt_params *p = bolt_params_new();
    if (p) {
        bolt_params_str(p, "owner", c->owner);
        put_refs(p, "leases", c->leases, c->n);
    }
    int rc = queue__neo_params_check(p, err);
    if (!rc)
        rc = queue__neo_run(conn, (c->write_fn ? Q_COMPLETE : Q_COMPLETE_MIN)[by_locator(c->leases, c->n)], p,
                            complete_row, c, err);
    bolt_params_free(p);
    if (rc || !c->write_fn || c->jv.n == 0)
        return rc;
    /* The writer sees the jobs as they were leased (state leased, token). */
    for (size_t k = 0; k < c->jv.n; k++) {
        c->jv.v[k].state = QUEUE_LEASED;
        eg_free(c->jv.v[k].lease_token);
        c->jv.v[k].lease_token = eg_strdup(c->leases[c->idx[k]].token);
    }
    queue_tx tx = {.conn = conn, .impl = NULL, .store = c->s};
    if ((rc = c->write_fn(&tx, c->jv.v, c->jv.n, c->sup, c->payload, err)))
        return rc;
    size_t nsup = 0;
    for (size_t k = 0; k < c->jv.n; k++)
        nsup += c->sup[k];
    if (!nsup)
        return 0;
    const char **ids = eg_malloc(nsup * sizeof *ids);
    if (!ids)
        return eg_error_oom(err);
    size_t m = 0;
    for (size_t k = 0; k < c->jv.n; k++)
        if (c->sup[k])
            ids[m++] = c->jv.v[k].id;
    p = bolt_params_new();
    if (p) {
        bolt_ps_writer *w = bolt_params_add(p, "ids");
        if (w)
            bolt_ps_str_list(w, ids, m);
    }
    rc = queue__neo_params_check(p, err);
    if (!rc)
        rc = queue__neo_run(conn, Q_SUPERSEDE, p, NULL, NULL, err);
    bolt_params_free(p);
    eg_free(ids);
    return rc;
}

static int neo_complete(queue_store *s, const char *owner, const queue_lease_ref *leases,
                        size_t n, queue_result_fn write_fn, void *payload,
                        queue_outcome *outcome_out, eg_error *err)
{
    complete_ctx c = {.s = s, .owner = owner, .leases = leases, .n = n, .write_fn = write_fn,
                      .payload = payload};
    c.idx = eg_calloc(n, sizeof *c.idx);
    c.seen = eg_calloc(n, sizeof *c.seen);
    c.sup = eg_calloc(n, sizeof *c.sup);
    c.prior = eg_calloc(n, sizeof *c.prior);
    int rc;
    if (!c.idx || !c.seen || !c.sup || !c.prior) {
        rc = eg_error_oom(err);
        goto out;
    }
    rc = bolt_pool_execute_write(QUEUE_NEO(s)->pool, QUEUE_NEO_WORKER_TX(s), NULL, complete_work, &c, err);
    if (!rc && outcome_out) {
        for (size_t i = 0; i < n; i++)
            outcome_out[i] = c.prior[i];
        for (size_t k = 0; k < c.jv.n; k++)
            outcome_out[c.idx[k]] = c.sup[k] ? QUEUE_OUT_SUPERSEDED : QUEUE_OUT_OK;
    }
out:
    queue__neo_job_vec_reset(&c.jv);
    eg_free(c.idx);
    eg_free(c.seen);
    eg_free(c.sup);
    eg_free(c.prior);
    return rc;
}

/* ---- fail and reclaim ---- */

/*
 * Backoff in Cypher so it uses the attempts the database holds:
 * full = min(cap, base * 2^(attempts-1)); delay = full/2 + rand()*full/2
 * (equal jitter, the same formula as queue_backoff_ms).
 */
#define BACKOFF_AND_FINISH                                                                         \
    "WITH j, f, timestamp() AS now, (f.permanent OR j.attempts >= j.maxAttempts) AS dead, "        \
    "  CASE WHEN $base * 2.0 ^ (CASE WHEN j.attempts < 1 THEN 0 ELSE j.attempts - 1 END) > $cap " \
    "  THEN toFloat($cap) "                                                                        \
    "  ELSE $base * 2.0 ^ (CASE WHEN j.attempts < 1 THEN 0 ELSE j.attempts - 1 END) END AS full "  \
    "WITH j, f, now, dead, toInteger(full / 2.0 + rand() * (full / 2.0)) AS d "                    \
    "SET j.state = CASE WHEN dead THEN 'dead' ELSE 'pending' END, "                                \
    "    j.runAt = CASE WHEN dead THEN now "                                                   \
    "      ELSE now + CASE WHEN d < f.retryAfter THEN f.retryAfter ELSE d END END, "               \
    "    j.lastError = f.error, j.lastErrorCategory = f.category, j.updatedAt = now, "             \
    "    j.leaseOwner = null, j.leaseToken = null, j.leaseUntil = null "

static const char *const Q_FAIL =
    QUEUE_NEO_PFX "UNWIND $fails AS f "
    "MATCH (j:EmbedJob {id: f.id}) "
    "SET j.queue = j.queue "
    "WITH j, f WHERE j.state = 'leased' AND j.leaseOwner = $owner AND j.leaseToken = f.token "
    BACKOFF_AND_FINISH "RETURN f.idx, dead";

static const char *const Q_RECLAIM =
    QUEUE_NEO_PFX "MATCH (c:EmbedJob) "
    "WHERE c.queue = $queue AND c.state = 'leased' AND c.runAt < timestamp() "
    "WITH c LIMIT $limit "
    "SET c.queue = $queue "
    QUEUE_NEO_REREAD("c", "j")
    "WITH j WHERE j.state = 'leased' AND j.leaseUntil < timestamp() "
    "WITH j, {permanent: false, retryAfter: 0, error: 'lease expired (owner ' + "
    "  coalesce(j.leaseOwner, '?') + ')', category: 'expired', idx: 0} AS f "
    BACKOFF_AND_FINISH "RETURN f.idx, dead";

typedef struct fail_ctx {
    queue_store *s;
    const char *owner;
    const queue_failure *fails;
    size_t n;
    size_t limit;
    queue_outcome *oc;       /* per input (fail) */
    int64_t dead, requeued;  /* reclaim */
} fail_ctx;

static int fail_row(const bolt_value *rec, void *ctx, eg_error *err)
{
    (void)err;
    fail_ctx *f = ctx;
    bool dead = bolt_value_bool(bolt_value_at(rec, 1), false);
    if (dead)
        f->dead++;
    else
        f->requeued++;
    int64_t i = bolt_value_int(bolt_value_at(rec, 0), -1);
    if (f->oc && i >= 0 && (size_t)i < f->n)
        f->oc[i] = dead ? QUEUE_OUT_DEAD : QUEUE_OUT_RETRY;
    return 0;
}

static int fail_work(bolt_conn *c, void *payload, eg_error *err)
{
    fail_ctx *f = payload;
    f->dead = f->requeued = 0;
    for (size_t i = 0; f->oc && i < f->n; i++)
        f->oc[i] = QUEUE_OUT_LOST;
    bolt_params *p = bolt_params_new();
    if (p) {
        bolt_params_int(p, "base", f->s->opts.backoff_base_ms);
        bolt_params_int(p, "cap", f->s->opts.backoff_cap_ms);
        if (f->fails) {
            bolt_params_str(p, "owner", f->owner);
            bolt_ps_writer *w = bolt_params_add(p, "fails");
            if (w) {
                bolt_ps_list_begin(w, f->n);
                for (size_t i = 0; i < f->n; i++) {
                    const queue_failure *x = &f->fails[i];
                    char msg[2001];
                    snprintf(msg, sizeof msg, "%s", x->error ? x->error : "");
                    bolt_ps_map_begin(w, 7);
                    bolt_ps_str(w, "idx");
                    bolt_ps_int(w, (int64_t)i);
                    bolt_ps_str(w, "id");
                    bolt_ps_str(w, x->id);
                    bolt_ps_str(w, "token");
                    bolt_ps_str(w, x->token);
                    bolt_ps_str(w, "error");
                    bolt_ps_str(w, msg);
                    bolt_ps_str(w, "category");
                    bolt_ps_str(w, queue_err_category_name(x->category));
                    bolt_ps_str(w, "permanent");
                    bolt_ps_bool(w, x->category == QUEUE_ERR_PERMANENT);
                    bolt_ps_str(w, "retryAfter");
                    bolt_ps_int(w, x->retry_after_ms > 0 ? x->retry_after_ms : 0);
                }
            }
        } else {
            bolt_params_str(p, "queue", f->s->opts.name);
            bolt_params_int(p, "limit", (int64_t)f->limit);
        }
    }
    int rc = queue__neo_params_check(p, err);
    if (!rc)
        rc = queue__neo_run(c, f->fails ? Q_FAIL : Q_RECLAIM, p, fail_row, f, err);
    bolt_params_free(p);
    return rc;
}

static int neo_fail(queue_store *s, const char *owner, const queue_failure *fails, size_t n,
                    queue_outcome *outcome_out, eg_error *err)
{
    fail_ctx f = {.s = s, .owner = owner, .fails = fails, .n = n, .oc = outcome_out};
    return bolt_pool_execute_write(QUEUE_NEO(s)->pool, QUEUE_NEO_WORKER_TX(s), NULL, fail_work, &f, err);
}

static int neo_reclaim(queue_store *s, size_t limit, queue_reclaim_result *out, eg_error *err)
{
    fail_ctx f = {.s = s, .limit = limit};
    int rc = bolt_pool_execute_write(QUEUE_NEO(s)->pool, QUEUE_NEO_WORKER_TX(s), NULL, fail_work, &f, err);
    if (!rc) {
        out->dead = f.dead;
        out->requeued = f.requeued;
    }
    return rc;
}

static const queue_store_ops neo_ops = {
    .kind = "neo4j",
    .free = neo_free,
    .now = neo_now,
    .tx_begin = neo_tx_begin,
    .tx_commit = neo_tx_commit,
    .tx_rollback = neo_tx_rollback,
    .enqueue = neo_enqueue,
    .lease = neo_lease,
    .heartbeat = neo_heartbeat,
    .complete = neo_complete,
    .fail = neo_fail,
    .release = neo_release,
    .reclaim = neo_reclaim,
    .status = queue__neo_status,
    .list = queue__neo_list,
    .retry_dead = queue__neo_retry_dead,
    .prune = queue__neo_prune,
    .prune_turn = queue__neo_prune_turn,
};

int queue_neo4j_new(queue_store **out, bolt_pool *pool, const queue_opts *opts, eg_error *err)
{
    if (!out || !pool)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "queue_neo4j_new: NULL argument");
    queue_opts def = QUEUE_OPTS_INIT;
    if (opts && !queue_name_valid(opts->name))
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "invalid queue name");
    queue_neo_store *n = eg_calloc(1, sizeof *n);
    if (!n)
        return eg_error_oom(err);
    n->base.ops = &neo_ops;
    n->base.opts = opts ? *opts : def;
    n->pool = pool;
    n->worker_tx = (bolt_tx_opts)BOLT_TX_OPTS_INIT;
    n->worker_tx.timeout_ms = n->base.opts.tx_timeout_ms > 0 ? n->base.opts.tx_timeout_ms : 0;
    *out = &n->base;
    return 0;
}

/* ---- schema ---- */

static const char *const queue_v1[] = {
    "CREATE CONSTRAINT embedjob_id IF NOT EXISTS FOR (j:EmbedJob) REQUIRE j.id IS UNIQUE",
    "CREATE CONSTRAINT embedjob_dedupe IF NOT EXISTS FOR (j:EmbedJob) REQUIRE j.dedupeKey IS UNIQUE",
    "CREATE CONSTRAINT embedqueue_name IF NOT EXISTS FOR (q:EmbedQueue) REQUIRE q.name IS UNIQUE",
    "CREATE INDEX embedjob_claim IF NOT EXISTS FOR (j:EmbedJob) ON (j.queue, j.state, j.runAt)",
    "CREATE INDEX embedjob_lease IF NOT EXISTS FOR (j:EmbedJob) ON (j.queue, j.state, j.leaseUntil)",
    "CREATE INDEX embedjob_done IF NOT EXISTS FOR (j:EmbedJob) ON (j.queue, j.state, j.updatedAt)",
    "CREATE INDEX embedjob_entity IF NOT EXISTS FOR (j:EmbedJob) ON (j.namespace, j.entity, j.model)",
    NULL,
};

/*
 * v2: one index serves claim, expiry sweep, dead list and prune.  runAt is
 * "when this job's next transition is due": pending - may run; leased - the
 * lease expires (= leaseUntil); completed/superseded/dead - when it got there.
 * Every lease and completion then updates one composite index instead of
 * three.
 */
static const char *const queue_v2[] = {
    "DROP INDEX embedjob_lease IF EXISTS",
    "DROP INDEX embedjob_done IF EXISTS",
    NULL,
};

static const schema_migration queue_migrations[] = {
    {.version = 1,
     .description = "EmbedJob: unique id and dedupe key, claim/lease/prune/entity range indexes; "
                    "EmbedQueue mutex",
     .statements = queue_v1},
    {.version = 2,
     .description = "EmbedJob: runAt doubles as lease expiry and completion time; drop the "
                    "lease and done indexes",
     .statements = queue_v2},
};

static const schema_module queue_module = {
    .name = "queue",
    .migrations = queue_migrations,
    .n = sizeof queue_migrations / sizeof queue_migrations[0],
};

int queue_schema_register(eg_error *err)
{
    return schema_register(&queue_module, err);
}
