/*
 * neo4j_store_admin.c - the operator side of the job store on Neo4j
 * (neo4j_store.h, docs/queue.md): status, list, retry of dead jobs, prune
 * and the prune turn.  They follow the locking idiom described in
 * neo4j_store.c; the hot path (enqueue, claim, heartbeat, complete, fail)
 * is there too.
 */
#include "queue/neo4j_store_int.h"

#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- status ---- */

typedef struct status_ctx {
    queue_store *s;
    const char *ns; /* NULL: every namespace */
    queue_status *st;
    queue_neo_job_vec dead;
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
            return eg_error_oom(err);
        st->models = nm;
        memset(&nm[mi], 0, sizeof nm[mi]);
        if (!(nm[mi].model = eg_strdup(model)))
            return eg_error_oom(err);
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
    QUEUE_NEO_PFX "MATCH (j:EmbedJob) WHERE j.queue = $queue AND j.state IS NOT NULL AND j.runAt IS NOT NULL "
    "  AND ($ns IS NULL OR j.namespace = $ns) "
    "RETURN j.model AS model, j.state AS state, count(*) AS n ORDER BY model, state";

static const char *const Q_STATUS_AGG =
    QUEUE_NEO_PFX "WITH timestamp() AS now "
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
    QUEUE_NEO_PFX "WITH timestamp() AS now "
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
    QUEUE_NEO_PFX "MATCH (j:EmbedJob) WHERE j.queue = $queue AND j.state = 'dead' AND j.runAt IS NOT NULL "
    "  AND ($ns IS NULL OR j.namespace = $ns) "
    "WITH j ORDER BY j.queue DESC, j.state DESC, j.runAt DESC LIMIT 20 RETURN " QUEUE_NEO_JOB_COLS;

static int status_work(bolt_conn *c, void *payload, eg_error *err)
{
    status_ctx *sc = payload;
    queue_status_clear(sc->st);
    queue__neo_job_vec_reset(&sc->dead);
    bolt_params *p = bolt_params_new();
    if (p) {
        bolt_params_str(p, "queue", sc->s->opts.name);
        bolt_params_str(p, "ns", sc->ns);
        bolt_params_int(p, "window", (int64_t)QUEUE_STATUS_BUCKETS * QUEUE_STATUS_BUCKET_MS);
        bolt_params_int(p, "bucket", QUEUE_STATUS_BUCKET_MS);
    }
    int rc = queue__neo_params_check(p, err);
    if (!rc)
        rc = queue__neo_run(c, Q_STATUS_COUNTS, p, status_count_row, sc, err);
    if (!rc)
        rc = queue__neo_run(c, Q_STATUS_AGG, p, status_agg_row, sc, err);
    if (!rc)
        rc = queue__neo_run(c, Q_STATUS_RECENT, p, status_recent_row, sc, err);
    if (!rc)
        rc = queue__neo_run(c, Q_STATUS_DEAD, p, queue__neo_push_job_row, &sc->dead, err);
    bolt_params_free(p);
    return rc;
}

static int cmp_model(const void *a, const void *b)
{
    return strcmp(((const queue_model_status *)a)->model, ((const queue_model_status *)b)->model);
}

int queue__neo_status(queue_store *s, const char *ns, queue_status *out, eg_error *err)
{
    status_ctx sc = {.s = s, .ns = ns, .st = out};
    int rc = bolt_pool_execute_read(QUEUE_NEO(s)->pool, NULL, NULL, status_work, &sc, err);
    if (rc) {
        queue_status_clear(out);
        queue__neo_job_vec_reset(&sc.dead);
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
    QUEUE_NEO_PFX "MATCH (j:EmbedJob) WHERE j.queue = $queue "
    "  AND ($state IS NULL OR j.state = $state) AND ($model IS NULL OR j.model = $model) "
    "  AND ($ns IS NULL OR j.namespace = $ns) AND ($entity IS NULL OR j.entity = $entity) "
    "  AND j.id > coalesce($after, '') "
    "WITH j ORDER BY j.id LIMIT $limit RETURN " QUEUE_NEO_JOB_COLS;

typedef struct list_ctx {
    queue_store *s;
    const queue_list_filter *f;
    queue_neo_job_vec jv;
} list_ctx;

static int list_work(bolt_conn *c, void *payload, eg_error *err)
{
    list_ctx *l = payload;
    queue__neo_job_vec_reset(&l->jv);
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
    int rc = queue__neo_params_check(p, err);
    if (!rc)
        rc = queue__neo_run(c, Q_LIST, p, queue__neo_push_job_row, &l->jv, err);
    bolt_params_free(p);
    return rc;
}

int queue__neo_list(queue_store *s, const queue_list_filter *f, queue_job **jobs_out,
                    size_t *n_out, char *next_cursor, eg_error *err)
{
    list_ctx l = {.s = s, .f = f};
    int rc = bolt_pool_execute_read(QUEUE_NEO(s)->pool, NULL, NULL, list_work, &l, err);
    if (rc) {
        queue__neo_job_vec_reset(&l.jv);
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
    QUEUE_NEO_PFX "MATCH (c:EmbedJob) WHERE c.queue = $queue AND c.state = 'dead' AND c.runAt IS NOT NULL "
    "  AND ($ids IS NULL OR c.id IN $ids) AND ($model IS NULL OR c.model = $model) "
    "  AND ($ns IS NULL OR c.namespace = $ns) "
    "WITH c LIMIT $batch "
    "SET c.queue = $queue "
    QUEUE_NEO_REREAD("c", "j")
    "WITH j WHERE j.state = 'dead' "
    "SET j.state = 'pending', j.attempts = 0, j.runAt = timestamp(), j.updatedAt = timestamp() "
    "RETURN count(j)";

static const char *const Q_PRUNE =
    QUEUE_NEO_PFX "MATCH (c:EmbedJob) WHERE c.queue = $queue AND c.state IN ['completed', 'superseded'] "
    "  AND c.runAt < timestamp() - $age "
    "WITH c LIMIT $batch "
    "SET c.queue = $queue "
    QUEUE_NEO_REREAD("c", "j")
    "WITH j WHERE j.state IN ['completed', 'superseded'] "
    "DETACH DELETE j RETURN count(*)";

/* The prune turn lives on the queue's node: lock it (the no-op SET), then
 * read the turn's time again, as the lock makes it current.  $age is the
 * hold (ms); < 0 hands the turn back. */
static const char *const Q_PRUNE_TURN =
    QUEUE_NEO_PFX "MERGE (q:EmbedQueue {name: $queue}) "
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
    int rc = queue__neo_params_check(p, err);
    if (!rc)
        rc = queue__neo_run(c, b->query, p, count_row, b, err);
    bolt_params_free(p);
    return rc;
}

static int batched(queue_store *s, batch_ctx *b, int64_t *total, eg_error *err)
{
    size_t rounds = b->max_batches ? b->max_batches : 1000000;
    for (size_t guard = 0; guard < rounds; guard++) {
        int rc = bolt_pool_execute_write(QUEUE_NEO(s)->pool, QUEUE_NEO_WORKER_TX(s), NULL, batch_work, b, err);
        if (rc)
            return rc;
        *total += b->count;
        if ((size_t)b->count < b->batch)
            return 0;
    }
    return 0;
}

int queue__neo_retry_dead(queue_store *s, const char *const *ids, size_t n, const char *model,
                          const char *ns, int64_t *count_out, eg_error *err)
{
    batch_ctx b = {.s = s, .query = Q_RETRY, .ids = ids, .nids = n, .model = model, .ns = ns, .batch = 1000};
    return batched(s, &b, count_out, err);
}

int queue__neo_prune(queue_store *s, int64_t older_than_ms, size_t batch, size_t max_batches,
                     int64_t *deleted_out, eg_error *err)
{
    batch_ctx b = {.s = s, .query = Q_PRUNE, .age = older_than_ms, .batch = batch, .max_batches = max_batches};
    return batched(s, &b, deleted_out, err);
}

int queue__neo_prune_turn(queue_store *s, int64_t hold_ms, bool *won, eg_error *err)
{
    /* batch_work binds the hold as $age */
    batch_ctx b = {.s = s, .query = Q_PRUNE_TURN, .age = hold_ms, .batch = 1};
    int rc = bolt_pool_execute_write(QUEUE_NEO(s)->pool, QUEUE_NEO_WORKER_TX(s), NULL, batch_work, &b, err);
    *won = rc == 0 && b.count > 0 && hold_ms >= 0;
    return rc;
}
