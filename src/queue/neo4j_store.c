/*
 * neo4j_store.c - the job store on Neo4j (see neo4j_store.h, docs/queue.md).
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
#include "queue/neo4j_store.h"
#include "queue/store_impl.h"

#include "bolt/conn.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "schema/schema.h"

#include <stdio.h>
#include <string.h>

#define PFX "CYPHER runtime = slotted "

/* Step 3 of the idiom above: after locking candidate `c`, continue with a
 * fresh variable `v` for the same node, matched by element id. */
#define REREAD(c, v) "WITH elementId(" c ") AS eid MATCH (" v ":EmbedJob) WHERE elementId(" v ") = eid "

typedef struct neo_store {
    struct queue_store base;
    bolt_pool *pool;
} neo_store;

#define N(s) ((neo_store *)(s))
#define OOM(err) eg_error_set(err, EG_ENOMEM, EG_CLASS_NONE, "out of memory")

/* ---- small helpers ---- */

static int params_check(bolt_params *p, eg_error *err)
{
    if (!p)
        return OOM(err);
    if (bolt_params_error(p))
        return eg_error_set(err, bolt_params_error(p), EG_CLASS_CLIENT, "building query parameters failed");
    return 0;
}

typedef int (*row_fn)(const bolt_value *rec, void *ctx, eg_error *err);

/* Run q with p on c, calling fn for each record (fn may be NULL). */
static int run(bolt_conn *c, const char *q, const bolt_params *p, row_fn fn, void *ctx, eg_error *err)
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

/* Columns of a job in the order decode_job reads them. */
#define JOB_COLS                                                                                   \
    "j.id, j.namespace, j.entity, j.version, j.model, j.dedupeKey, j.payload, j.state, "           \
    "j.attempts, j.maxAttempts, j.runAt, j.leaseOwner, j.leaseToken, j.leaseUntil, j.lastError, "  \
    "j.lastErrorCategory, j.createdAt, j.updatedAt, j.completedAt, j.seq"

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

/* A growable array of jobs filled from rows. */
typedef struct job_vec {
    queue_job *v;
    size_t n, cap;
    size_t col;      /* first job column in the row */
    bool locator;    /* the row has elementId(j) after the job columns */
} job_vec;

static int push_job_row(const bolt_value *rec, void *ctx, eg_error *err)
{
    job_vec *jv = ctx;
    if (jv->n == jv->cap) {
        size_t nc = jv->cap ? jv->cap * 2 : 16;
        queue_job *nv = eg_realloc(jv->v, nc * sizeof *nv);
        if (!nv)
            return OOM(err);
        jv->v = nv;
        jv->cap = nc;
    }
    queue_job *j = &jv->v[jv->n];
    if (decode_job(rec, jv->col, j) || (jv->locator && !vdup_ok(&j->locator, bolt_value_at(rec, jv->col + 20)))) {
        queue_job_clear(j);
        return OOM(err);
    }
    jv->n++;
    return 0;
}

static void job_vec_reset(job_vec *jv)
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
    return run(c, "RETURN timestamp() AS now", NULL, now_row, payload, err);
}

static int neo_now(queue_store *s, int64_t *out, eg_error *err)
{
    now_ctx nc = {0};
    int rc = bolt_pool_execute_read(N(s)->pool, NULL, NULL, now_work, &nc, err);
    *out = nc.now;
    return rc;
}

static int neo_tx_begin(queue_store *s, queue_tx *tx, eg_error *err)
{
    bolt_conn *c = NULL;
    int rc = bolt_pool_acquire(N(s)->pool, &c, err);
    if (rc)
        return rc;
    if ((rc = bolt_conn_begin(c, NULL, err))) {
        bolt_pool_release(N(s)->pool, c);
        return rc;
    }
    tx->conn = c;
    return 0;
}

static int neo_tx_commit(queue_store *s, queue_tx *tx, eg_error *err)
{
    int rc = bolt_conn_commit(tx->conn, NULL, err);
    bolt_pool_release(N(s)->pool, tx->conn);
    tx->conn = NULL;
    return rc;
}

static void neo_tx_rollback(queue_store *s, queue_tx *tx)
{
    bolt_conn_rollback(tx->conn, NULL);
    bolt_pool_release(N(s)->pool, tx->conn);
    tx->conn = NULL;
}

/* ---- enqueue ---- */

static const char *const Q_ENQUEUE =
    PFX "UNWIND $jobs AS r "
    "MERGE (j:EmbedJob {dedupeKey: r.key}) "
    "ON CREATE SET j.id = r.id, j.queue = $queue, j.namespace = r.ns, j.entity = r.entity, "
    "  j.version = r.version, j.model = r.model, j.payload = r.payload, j.state = 'pending', "
    "  j.attempts = 0, j.maxAttempts = r.maxAttempts, j.runAt = timestamp() + r.delay, "
    "  j.seq = r.seq, j.createdAt = timestamp(), j.updatedAt = timestamp() "
    "WITH r, j, j.id = r.id AS created "
    /* Never supersede a job for a newer version (job_store.h): a job with
     * an unknown seq (0) supersedes nothing, and older jobs without a seq
     * (queued before seq existed) count as oldest. */
    "CALL { "
    "  WITH j, created, r "
    "  MATCH (c:EmbedJob {namespace: j.namespace, entity: j.entity, model: j.model, queue: j.queue}) "
    "  WHERE created AND r.seq > 0 AND c.state = 'pending' AND c.id <> j.id "
    "    AND coalesce(c.seq, 0) <= r.seq "
    "  SET c.queue = c.queue "
    "  " REREAD("c", "o")
    "  WITH o WHERE o.state = 'pending' "
    "  SET o.state = 'superseded', o.runAt = timestamp(), o.updatedAt = timestamp(), "
    "      o.completedAt = timestamp() "
    "  RETURN count(o) AS sup "
    "} "
    "RETURN r.idx AS idx, j.id AS id, j.state AS state, created, sup";

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

static int enq_on(bolt_conn *c, enq_ctx *e, eg_error *err)
{
    for (size_t i = 0; i < e->n; i++)
        memset(&e->out[i], 0, sizeof e->out[i]);
    bolt_params *p = bolt_params_new();
    if (p) {
        bolt_params_str(p, "queue", e->s->opts.name);
        bolt_ps_writer *w = bolt_params_add(p, "jobs");
        if (w) {
            bolt_ps_list_begin(w, e->n);
            for (size_t i = 0; i < e->n; i++) {
                const queue_enqueue_req *r = &e->reqs[i];
                bolt_ps_map_begin(w, 11);
                bolt_ps_str(w, "idx");
                bolt_ps_int(w, (int64_t)i);
                bolt_ps_str(w, "id");
                bolt_ps_str(w, e->ids[i]);
                bolt_ps_str(w, "key");
                bolt_ps_str(w, e->keys[i]);
                bolt_ps_str(w, "ns");
                bolt_ps_str(w, r->ns);
                bolt_ps_str(w, "entity");
                bolt_ps_str(w, r->entity);
                bolt_ps_str(w, "version");
                bolt_ps_str(w, r->version);
                bolt_ps_str(w, "model");
                bolt_ps_str(w, r->model);
                bolt_ps_str(w, "payload");
                bolt_ps_str(w, r->payload);
                bolt_ps_str(w, "maxAttempts");
                bolt_ps_int(w, r->max_attempts > 0 ? r->max_attempts : e->s->opts.max_attempts);
                bolt_ps_str(w, "delay");
                bolt_ps_int(w, r->delay_ms);
                bolt_ps_str(w, "seq");
                bolt_ps_int(w, r->seq > 0 ? r->seq : 0);
            }
        }
    }
    int rc = params_check(p, err);
    if (!rc)
        rc = run(c, Q_ENQUEUE, p, enq_row, e, err);
    bolt_params_free(p);
    return rc;
}

static int enq_work(bolt_conn *c, void *payload, eg_error *err)
{
    return enq_on(c, payload, err);
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
        rc = OOM(err);
        goto out;
    }
    int64_t now = eg_wall_ms();
    for (size_t i = 0; i < n; i++) {
        /* The id only orders jobs (list pagination); the wall clock is fine. */
        queue_new_id(e.ids[i], now);
        if (queue_dedupe_key(e.keys[i], s->opts.name, reqs[i].ns, reqs[i].entity, reqs[i].version, reqs[i].model)) {
            rc = eg_error_set(err, EG_EINTERNAL, EG_CLASS_NONE, "enqueue: the dedupe key could not be hashed");
            goto out;
        }
    }
    if (tx) {
        rc = enq_on(tx->conn, &e, err);
    } else {
        /* Two first-time MERGEs of one key can still race into a constraint
         * violation on some versions; re-running finds the winner's job. */
        for (int attempt = 0; attempt < 3; attempt++) {
            eg_error_clear(err);
            rc = bolt_pool_execute_write(N(s)->pool, NULL, NULL, enq_work, &e, err);
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
    PFX "MATCH (p:EmbedJob) "
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
    REREAD("c", "j")
    "WITH j WHERE j.state = 'pending' "
    "SET j.state = 'leased', j.leaseToken = $token, j.leaseOwner = $owner, "
    "    j.leaseUntil = timestamp() + $leaseMs, j.runAt = timestamp() + $leaseMs, "
    "    j.attempts = j.attempts + 1, j.updatedAt = timestamp() "
    "RETURN " JOB_COLS ", elementId(j)";

typedef struct lease_ctx {
    queue_store *s;
    const queue_lease_opts *o;
    job_vec jv;
} lease_ctx;

static int lease_work(bolt_conn *c, void *payload, eg_error *err)
{
    lease_ctx *l = payload;
    job_vec_reset(&l->jv);
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
    int rc = params_check(p, err);
    if (!rc)
        rc = run(c, Q_LEASE, p, push_job_row, &l->jv, err);
    bolt_params_free(p);
    return rc;
}

static int neo_lease(queue_store *s, const queue_lease_opts *o, queue_job **jobs_out,
                     size_t *n_out, eg_error *err)
{
    lease_ctx l = {.s = s, .o = o, .jv = {.locator = true}};
    int rc = bolt_pool_execute_write(N(s)->pool, NULL, NULL, lease_work, &l, err);
    if (rc) {
        job_vec_reset(&l.jv);
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
    PFX "UNWIND $leases AS l " find "SET j.queue = j.queue "                                       \
    "WITH j, l WHERE j.id = l.id AND j.state = 'leased' AND j.leaseOwner = $owner "                \
    "  AND j.leaseToken = l.token "                                                                \
    "SET j.leaseUntil = timestamp() + $leaseMs, j.runAt = timestamp() + $leaseMs "                 \
    "RETURN l.idx"
static const char *const Q_HEARTBEAT[2] = BOTH_WAYS(HEARTBEAT);

#define RELEASE(find)                                                                              \
    PFX "UNWIND $leases AS l " find "SET j.queue = j.queue "                                       \
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
    int rc = params_check(p, err);
    if (!rc)
        rc = run(c, f->query, p, idx_row, &f->x, err);
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
        return OOM(err);
    int rc = bolt_pool_execute_write(N(s)->pool, NULL, NULL, fenced_work, &f, err);
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
    return fenced(s, Q_HEARTBEAT[by_locator(leases, n)], owner, leases, n, "leaseMs", lease_ms ? lease_ms : s->opts.lease_ms,
                  lost_out, held_out, err);
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
    PFX "UNWIND $leases AS l " find "SET j.queue = j.queue "                                       \
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
    PFX "UNWIND $ids AS id MATCH (j:EmbedJob {id: id}) "
    "SET j.state = 'superseded' RETURN count(j)";

typedef struct complete_ctx {
    queue_store *s;
    const char *owner;
    const queue_lease_ref *leases;
    size_t n;
    queue_result_fn write_fn;
    void *payload;
    job_vec jv;
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
    int rc = push_job_row(rec, &c->jv, err);
    if (rc)
        return rc;
    c->idx[c->jv.n - 1] = (size_t)i;
    c->seen[i] = true;
    return 0;
}

static int complete_work(bolt_conn *conn, void *payload, eg_error *err)
{
    complete_ctx *c = payload;
    job_vec_reset(&c->jv);
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
    int rc = params_check(p, err);
    if (!rc)
        rc = run(conn, (c->write_fn ? Q_COMPLETE : Q_COMPLETE_MIN)[by_locator(c->leases, c->n)], p,
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
        return OOM(err);
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
    rc = params_check(p, err);
    if (!rc)
        rc = run(conn, Q_SUPERSEDE, p, NULL, NULL, err);
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
        rc = OOM(err);
        goto out;
    }
    rc = bolt_pool_execute_write(N(s)->pool, NULL, NULL, complete_work, &c, err);
    if (!rc && outcome_out) {
        for (size_t i = 0; i < n; i++)
            outcome_out[i] = c.prior[i];
        for (size_t k = 0; k < c.jv.n; k++)
            outcome_out[c.idx[k]] = c.sup[k] ? QUEUE_OUT_SUPERSEDED : QUEUE_OUT_OK;
    }
out:
    job_vec_reset(&c.jv);
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
    PFX "UNWIND $fails AS f "
    "MATCH (j:EmbedJob {id: f.id}) "
    "SET j.queue = j.queue "
    "WITH j, f WHERE j.state = 'leased' AND j.leaseOwner = $owner AND j.leaseToken = f.token "
    BACKOFF_AND_FINISH "RETURN f.idx, dead";

static const char *const Q_RECLAIM =
    PFX "MATCH (c:EmbedJob) "
    "WHERE c.queue = $queue AND c.state = 'leased' AND c.runAt < timestamp() "
    "WITH c LIMIT $limit "
    "SET c.queue = $queue "
    REREAD("c", "j")
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
    int rc = params_check(p, err);
    if (!rc)
        rc = run(c, f->fails ? Q_FAIL : Q_RECLAIM, p, fail_row, f, err);
    bolt_params_free(p);
    return rc;
}

static int neo_fail(queue_store *s, const char *owner, const queue_failure *fails, size_t n,
                    queue_outcome *outcome_out, eg_error *err)
{
    fail_ctx f = {.s = s, .owner = owner, .fails = fails, .n = n, .oc = outcome_out};
    return bolt_pool_execute_write(N(s)->pool, NULL, NULL, fail_work, &f, err);
}

static int neo_reclaim(queue_store *s, size_t limit, queue_reclaim_result *out, eg_error *err)
{
    fail_ctx f = {.s = s, .limit = limit};
    int rc = bolt_pool_execute_write(N(s)->pool, NULL, NULL, fail_work, &f, err);
    if (!rc) {
        out->dead = f.dead;
        out->requeued = f.requeued;
    }
    return rc;
}

/* ---- status ---- */

typedef struct status_ctx {
    queue_store *s;
    const char *ns; /* NULL: every namespace */
    queue_status *st;
    job_vec dead;
} status_ctx;

static int status_count_row(const bolt_value *rec, void *ctx, eg_error *err)
{
    status_ctx *c = ctx;
    queue_status *st = c->st;
    const char *model = bolt_value_cstr(bolt_value_at(rec, 0));
    int state = queue_state_parse(bolt_value_cstr(bolt_value_at(rec, 1)));
    int64_t n = bolt_value_int(bolt_value_at(rec, 2), 0);
    if (state < 0)
        return 0;
    if (!model)
        model = "";
    st->count[state] += n;
    size_t mi = 0;
    while (mi < st->nmodels && strcmp(st->models[mi].model, model))
        mi++;
    if (mi == st->nmodels) {
        queue_model_status *nm = eg_realloc(st->models, (st->nmodels + 1) * sizeof *nm);
        if (!nm)
            return OOM(err);
        st->models = nm;
        memset(&nm[mi], 0, sizeof nm[mi]);
        if (!(nm[mi].model = eg_strdup(model)))
            return OOM(err);
        st->nmodels++;
    }
    st->models[mi].count[state] += n;
    return 0;
}

static int status_agg_row(const bolt_value *rec, void *ctx, eg_error *err)
{
    (void)err;
    queue_status *st = ((status_ctx *)ctx)->st;
    st->now = bolt_value_int(bolt_value_at(rec, 0), 0);
    st->ready = bolt_value_int(bolt_value_at(rec, 1), 0);
    const bolt_value *oldest = bolt_value_at(rec, 2);
    st->oldest_pending_age_ms = bolt_value_is_null(oldest) ? -1 : st->now - bolt_value_int(oldest, 0);
    st->next_run_at = bolt_value_int(bolt_value_at(rec, 3), 0);
    st->expired_leases = bolt_value_int(bolt_value_at(rec, 4), 0);
    return 0;
}

static const char *const Q_STATUS_COUNTS =
    PFX "MATCH (j:EmbedJob) WHERE j.queue = $queue AND j.state IS NOT NULL AND j.runAt IS NOT NULL "
    "  AND ($ns IS NULL OR j.namespace = $ns) "
    "RETURN j.model AS model, j.state AS state, count(*) AS n ORDER BY model, state";

static const char *const Q_STATUS_AGG =
    PFX "WITH timestamp() AS now "
    "CALL { WITH now MATCH (j:EmbedJob) WHERE j.queue = $queue AND j.state = 'pending' "
    "  AND j.runAt <= now AND ($ns IS NULL OR j.namespace = $ns) "
    "  RETURN count(j) AS ready, min(j.runAt) AS oldest } "
    "CALL { WITH now MATCH (j:EmbedJob) WHERE j.queue = $queue AND j.state = 'pending' "
    "  AND j.runAt > now AND ($ns IS NULL OR j.namespace = $ns) RETURN min(j.runAt) AS nextRun } "
    "CALL { WITH now MATCH (j:EmbedJob) WHERE j.queue = $queue AND j.state = 'leased' "
    "  AND j.runAt < now AND ($ns IS NULL OR j.namespace = $ns) RETURN count(j) AS expired } "
    "RETURN now, ready, oldest, nextRun, expired";

/* Completed jobs of the last hour by 5-minute bucket: the claim index
 * (queue, state, runAt) bounds it, since a completed job's runAt is when it
 * completed. */
static const char *const Q_STATUS_RECENT =
    PFX "WITH timestamp() AS now "
    "MATCH (j:EmbedJob) WHERE j.queue = $queue AND j.state = 'completed' AND j.runAt > now - $window "
    "  AND ($ns IS NULL OR j.namespace = $ns) "
    "RETURN (now - j.runAt) / $bucket AS bucket, count(*) AS n";

static int status_recent_row(const bolt_value *rec, void *ctx, eg_error *err)
{
    (void)err;
    queue_status *st = ((status_ctx *)ctx)->st;
    int64_t b = bolt_value_int(bolt_value_at(rec, 0), -1);
    if (b >= 0 && b < QUEUE_STATUS_BUCKETS)
        st->completed_recent[b] += bolt_value_int(bolt_value_at(rec, 1), 0);
    return 0;
}

static const char *const Q_STATUS_DEAD =
    PFX "MATCH (j:EmbedJob) WHERE j.queue = $queue AND j.state = 'dead' AND j.runAt IS NOT NULL "
    "  AND ($ns IS NULL OR j.namespace = $ns) "
    "WITH j ORDER BY j.queue DESC, j.state DESC, j.runAt DESC LIMIT 20 RETURN " JOB_COLS;

static int status_work(bolt_conn *c, void *payload, eg_error *err)
{
    status_ctx *sc = payload;
    queue_status_clear(sc->st);
    job_vec_reset(&sc->dead);
    bolt_params *p = bolt_params_new();
    if (p) {
        bolt_params_str(p, "queue", sc->s->opts.name);
        bolt_params_str(p, "ns", sc->ns);
        bolt_params_int(p, "window", (int64_t)QUEUE_STATUS_BUCKETS * QUEUE_STATUS_BUCKET_MS);
        bolt_params_int(p, "bucket", QUEUE_STATUS_BUCKET_MS);
    }
    int rc = params_check(p, err);
    if (!rc)
        rc = run(c, Q_STATUS_COUNTS, p, status_count_row, sc, err);
    if (!rc)
        rc = run(c, Q_STATUS_AGG, p, status_agg_row, sc, err);
    if (!rc)
        rc = run(c, Q_STATUS_RECENT, p, status_recent_row, sc, err);
    if (!rc)
        rc = run(c, Q_STATUS_DEAD, p, push_job_row, &sc->dead, err);
    bolt_params_free(p);
    return rc;
}

static int cmp_model(const void *a, const void *b)
{
    return strcmp(((const queue_model_status *)a)->model, ((const queue_model_status *)b)->model);
}

static int neo_status(queue_store *s, const char *ns, queue_status *out, eg_error *err)
{
    status_ctx sc = {.s = s, .ns = ns, .st = out};
    int rc = bolt_pool_execute_read(N(s)->pool, NULL, NULL, status_work, &sc, err);
    if (rc) {
        queue_status_clear(out);
        job_vec_reset(&sc.dead);
        return rc;
    }
    out->dead = sc.dead.v;
    out->ndead = sc.dead.n;
    if (out->nmodels > 1)
        qsort(out->models, out->nmodels, sizeof *out->models, cmp_model);
    return 0;
}

/* ---- list ---- */

static const char *const Q_LIST =
    PFX "MATCH (j:EmbedJob) WHERE j.queue = $queue "
    "  AND ($state IS NULL OR j.state = $state) AND ($model IS NULL OR j.model = $model) "
    "  AND ($ns IS NULL OR j.namespace = $ns) AND ($entity IS NULL OR j.entity = $entity) "
    "  AND j.id > coalesce($after, '') "
    "WITH j ORDER BY j.id LIMIT $limit RETURN " JOB_COLS;

typedef struct list_ctx {
    queue_store *s;
    const queue_list_filter *f;
    job_vec jv;
} list_ctx;

static int list_work(bolt_conn *c, void *payload, eg_error *err)
{
    list_ctx *l = payload;
    job_vec_reset(&l->jv);
    bolt_params *p = bolt_params_new();
    if (p) {
        bolt_params_str(p, "queue", l->s->opts.name);
        bolt_params_str(p, "state", l->f->state >= 0 ? queue_state_name((queue_state)l->f->state) : NULL);
        bolt_params_str(p, "model", l->f->model);
        bolt_params_str(p, "ns", l->f->ns);
        bolt_params_str(p, "entity", l->f->entity);
        bolt_params_str(p, "after", l->f->after_id);
        bolt_params_int(p, "limit", (int64_t)l->f->limit + 1); /* one more: is there a next page? */
    }
    int rc = params_check(p, err);
    if (!rc)
        rc = run(c, Q_LIST, p, push_job_row, &l->jv, err);
    bolt_params_free(p);
    return rc;
}

static int neo_list(queue_store *s, const queue_list_filter *f, queue_job **jobs_out,
                    size_t *n_out, char *next_cursor, eg_error *err)
{
    list_ctx l = {.s = s, .f = f};
    int rc = bolt_pool_execute_read(N(s)->pool, NULL, NULL, list_work, &l, err);
    if (rc) {
        job_vec_reset(&l.jv);
        return rc;
    }
    if (l.jv.n > f->limit) {
        queue_job_clear(&l.jv.v[f->limit]);
        l.jv.n = f->limit;
        if (next_cursor)
            snprintf(next_cursor, QUEUE_ID_MAX, "%s", l.jv.v[f->limit - 1].id);
    }
    *jobs_out = l.jv.v;
    *n_out = l.jv.n;
    if (*n_out == 0) {
        eg_free(*jobs_out);
        *jobs_out = NULL;
    }
    return 0;
}

/* ---- retry and prune ---- */

static const char *const Q_RETRY =
    PFX "MATCH (c:EmbedJob) WHERE c.queue = $queue AND c.state = 'dead' AND c.runAt IS NOT NULL "
    "  AND ($ids IS NULL OR c.id IN $ids) AND ($model IS NULL OR c.model = $model) "
    "  AND ($ns IS NULL OR c.namespace = $ns) "
    "WITH c LIMIT $batch "
    "SET c.queue = $queue "
    REREAD("c", "j")
    "WITH j WHERE j.state = 'dead' "
    "SET j.state = 'pending', j.attempts = 0, j.runAt = timestamp(), j.updatedAt = timestamp() "
    "RETURN count(j)";

static const char *const Q_PRUNE =
    PFX "MATCH (c:EmbedJob) WHERE c.queue = $queue AND c.state IN ['completed', 'superseded'] "
    "  AND c.runAt < timestamp() - $age "
    "WITH c LIMIT $batch "
    "SET c.queue = $queue "
    REREAD("c", "j")
    "WITH j WHERE j.state IN ['completed', 'superseded'] "
    "DETACH DELETE j RETURN count(*)";

/* The prune turn lives on the queue's node: lock it (the no-op SET), then
 * read the turn's time again, as the lock makes it current.  $age is the
 * hold (ms); < 0 hands the turn back. */
static const char *const Q_PRUNE_TURN =
    PFX "MERGE (q:EmbedQueue {name: $queue}) "
    "SET q.name = $queue "
    "WITH elementId(q) AS eid MATCH (r:EmbedQueue) WHERE elementId(r) = eid "
    "WITH r, timestamp() AS now "
    "WHERE $age < 0 OR coalesce(r.pruneAfter, 0) <= now "
    "SET r.pruneAfter = CASE WHEN $age < 0 THEN now ELSE now + $age END "
    "RETURN count(r)";

typedef struct batch_ctx {
    queue_store *s;
    const char *query;
    const char *const *ids;
    size_t nids;
    const char *model;
    const char *ns; /* NULL: every namespace */
    int64_t age;
    size_t batch;
    size_t max_batches; /* 0: until a batch is not full */
    int64_t count;
} batch_ctx;

static int count_row(const bolt_value *rec, void *ctx, eg_error *err)
{
    (void)err;
    ((batch_ctx *)ctx)->count = bolt_value_int(bolt_value_at(rec, 0), 0);
    return 0;
}

static int batch_work(bolt_conn *c, void *payload, eg_error *err)
{
    batch_ctx *b = payload;
    b->count = 0;
    bolt_params *p = bolt_params_new();
    if (p) {
        bolt_params_str(p, "queue", b->s->opts.name);
        bolt_params_int(p, "batch", (int64_t)b->batch);
        bolt_params_int(p, "age", b->age);
        bolt_params_str(p, "model", b->model);
        bolt_params_str(p, "ns", b->ns);
        if (b->ids) {
            bolt_ps_writer *w = bolt_params_add(p, "ids");
            if (w)
                bolt_ps_str_list(w, b->ids, b->nids);
        } else {
            bolt_params_null(p, "ids");
        }
    }
    int rc = params_check(p, err);
    if (!rc)
        rc = run(c, b->query, p, count_row, b, err);
    bolt_params_free(p);
    return rc;
}

static int batched(queue_store *s, batch_ctx *b, int64_t *total, eg_error *err)
{
    size_t rounds = b->max_batches ? b->max_batches : 1000000;
    for (size_t guard = 0; guard < rounds; guard++) {
        int rc = bolt_pool_execute_write(N(s)->pool, NULL, NULL, batch_work, b, err);
        if (rc)
            return rc;
        *total += b->count;
        if ((size_t)b->count < b->batch)
            return 0;
    }
    return 0;
}

static int neo_retry_dead(queue_store *s, const char *const *ids, size_t n, const char *model,
                          const char *ns, int64_t *count_out, eg_error *err)
{
    batch_ctx b = {.s = s, .query = Q_RETRY, .ids = ids, .nids = n, .model = model, .ns = ns, .batch = 1000};
    return batched(s, &b, count_out, err);
}

static int neo_prune(queue_store *s, int64_t older_than_ms, size_t batch, size_t max_batches,
                     int64_t *deleted_out, eg_error *err)
{
    batch_ctx b = {.s = s, .query = Q_PRUNE, .age = older_than_ms, .batch = batch, .max_batches = max_batches};
    return batched(s, &b, deleted_out, err);
}

static int neo_prune_turn(queue_store *s, int64_t hold_ms, bool *won, eg_error *err)
{
    /* batch_work binds the hold as $age */
    batch_ctx b = {.s = s, .query = Q_PRUNE_TURN, .age = hold_ms, .batch = 1};
    int rc = bolt_pool_execute_write(N(s)->pool, NULL, NULL, batch_work, &b, err);
    *won = rc == 0 && b.count > 0 && hold_ms >= 0;
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
    .status = neo_status,
    .list = neo_list,
    .retry_dead = neo_retry_dead,
    .prune = neo_prune,
    .prune_turn = neo_prune_turn,
};

int queue_neo4j_new(queue_store **out, bolt_pool *pool, const queue_opts *opts, eg_error *err)
{
    if (!out || !pool)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "queue_neo4j_new: NULL argument");
    queue_opts def = QUEUE_OPTS_INIT;
    if (opts && !queue_name_valid(opts->name))
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "invalid queue name");
    neo_store *n = eg_calloc(1, sizeof *n);
    if (!n)
        return OOM(err);
    n->base.ops = &neo_ops;
    n->base.opts = opts ? *opts : def;
    n->pool = pool;
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
