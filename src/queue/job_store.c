/*
 * job_store.c - what both stores share: settings, backoff, ids, dedupe keys,
 * and the dispatch functions that validate arguments once for every store.
 */
#include "queue/store_impl.h"

#include "core/alloc.h"
#include "core/env.h"
#include "core/clock.h"
#include "core/sha256.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- settings ---- */

bool queue_name_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= QUEUE_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-", s[i]))
            return false;
    return true;
}

/* A positive integer, stored times scale (hours to ms). */
static int env_i64(const char *name, int64_t *dst, int64_t scale, eg_error *err)
{
    int64_t x;
    int rc = eg_env_int(name, 1, INT64_MAX / scale, &x, err);
    if (rc == 1)
        *dst = x * scale;
    return rc < 0 ? rc : 0;
}

int queue_opts_from_env(queue_opts *out, eg_error *err)
{
    queue_opts o = QUEUE_OPTS_INIT;
    int64_t attempts = o.max_attempts, batch = o.prune_batch;
    int rc;
    if ((rc = env_i64("ENGRAM_QUEUE_LEASE_MS", &o.lease_ms, 1, err)) ||
        (rc = env_i64("ENGRAM_QUEUE_HEARTBEAT_MS", &o.heartbeat_ms, 1, err)) ||
        (rc = env_i64("ENGRAM_QUEUE_MAX_ATTEMPTS", &attempts, 1, err)) ||
        (rc = env_i64("ENGRAM_QUEUE_BACKOFF_BASE_MS", &o.backoff_base_ms, 1, err)) ||
        (rc = env_i64("ENGRAM_QUEUE_BACKOFF_CAP_MS", &o.backoff_cap_ms, 1, err)) ||
        (rc = env_i64("ENGRAM_QUEUE_RETENTION_HOURS", &o.retention_ms, 3600000, err)) ||
        (rc = env_i64("ENGRAM_QUEUE_PRUNE_BATCH", &batch, 1, err)) ||
        (rc = env_i64("ENGRAM_QUEUE_RECLAIM_MS", &o.reclaim_ms, 1, err)) ||
        (rc = env_i64("ENGRAM_QUEUE_PRUNE_INTERVAL_MS", &o.prune_interval_ms, 1, err)) ||
        (rc = env_i64("ENGRAM_QUEUE_TX_TIMEOUT_MS", &o.tx_timeout_ms, 1, err)))
        return rc;
    const char *qn = getenv("ENGRAM_QUEUE_NAME");
    if (qn && *qn) {
        if (!queue_name_valid(qn))
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                                "ENGRAM_QUEUE_NAME must match [A-Za-z0-9_.:-]{1,63}");
        snprintf(o.name, sizeof o.name, "%s", qn);
    }
    if (attempts > 1000)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "ENGRAM_QUEUE_MAX_ATTEMPTS must be <= 1000");
    if (batch > 100000)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "ENGRAM_QUEUE_PRUNE_BATCH must be <= 100000");
    o.max_attempts = (int)attempts;
    o.prune_batch = (int)batch;
    /* A heartbeat at or past the lease would let every lease lapse between beats. */
    if (o.heartbeat_ms >= o.lease_ms)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "ENGRAM_QUEUE_HEARTBEAT_MS (%" PRId64 ") must be below ENGRAM_QUEUE_LEASE_MS (%" PRId64 ")",
                            o.heartbeat_ms, o.lease_ms);
    /* Neo4j's transaction timeout has a granularity of its monitor (2 s by
     * default): below a second it would end transactions that are merely slow. */
    if (o.tx_timeout_ms < 1000)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "ENGRAM_QUEUE_TX_TIMEOUT_MS must be >= 1000");
    if (o.backoff_cap_ms < o.backoff_base_ms)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "ENGRAM_QUEUE_BACKOFF_CAP_MS must be >= ENGRAM_QUEUE_BACKOFF_BASE_MS");
    *out = o;
    return 0;
}

int64_t queue_backoff_ms(const queue_opts *o, int attempts, double unit)
{
    if (attempts < 1)
        attempts = 1;
    int64_t d = o->backoff_base_ms > 0 ? o->backoff_base_ms : 1;
    for (int i = 1; i < attempts && d < o->backoff_cap_ms; i++)
        d = d > INT64_MAX / 2 ? INT64_MAX : d * 2;
    if (d > o->backoff_cap_ms)
        d = o->backoff_cap_ms;
    if (unit < 0)
        unit = 0;
    if (unit >= 1)
        unit = 0.999999;
    int64_t half = d / 2;
    return half + (int64_t)((double)(d - half) * unit);
}

/* ---- names ---- */

static const char *const state_names[QUEUE_STATE_COUNT] = {"pending", "leased", "completed", "dead",
                                                           "superseded"};

const char *queue_state_name(queue_state s)
{
    return (unsigned)s < QUEUE_STATE_COUNT ? state_names[s] : "unknown";
}

int queue_state_parse(const char *s)
{
    for (int i = 0; s && i < QUEUE_STATE_COUNT; i++)
        if (strcmp(s, state_names[i]) == 0)
            return i;
    return -1;
}

const char *queue_err_category_name(queue_err_category c)
{
    return c == QUEUE_ERR_PERMANENT ? "permanent" : "transient";
}

/* ---- jobs ---- */

void queue_job_clear(queue_job *j)
{
    if (!j)
        return;
    eg_free(j->id);
    eg_free(j->ns);
    eg_free(j->entity);
    eg_free(j->version);
    eg_free(j->model);
    eg_free(j->dedupe_key);
    eg_free(j->payload);
    eg_free(j->lease_owner);
    eg_free(j->lease_token);
    eg_free(j->last_error);
    eg_free(j->last_error_category);
    eg_free(j->locator);
    memset(j, 0, sizeof *j);
}

queue_lease_ref queue_job_ref(const queue_job *j)
{
    return (queue_lease_ref){.id = j->id, .token = j->lease_token, .locator = j->locator};
}

void queue_jobs_free(queue_job *jobs, size_t n)
{
    if (!jobs)
        return;
    for (size_t i = 0; i < n; i++)
        queue_job_clear(&jobs[i]);
    eg_free(jobs);
}

void queue_status_clear(queue_status *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->nmodels; i++)
        eg_free(st->models[i].model);
    eg_free(st->models);
    queue_jobs_free(st->dead, st->ndead);
    memset(st, 0, sizeof *st);
}

static void hash_part(eg_sha256 *h, const char *s)
{
    uint64_t len = s ? strlen(s) : 0;
    unsigned char pre[8];
    for (int i = 0; i < 8; i++)
        pre[i] = (unsigned char)(len >> (56 - 8 * i));
    eg_sha256_update(h, pre, sizeof pre);
    eg_sha256_update(h, s, len);
}

int queue_dedupe_key(char out[65], const char *queue, const char *ns, const char *entity,
                     const char *version, const char *model)
{
    eg_sha256 *h;
    out[0] = '\0';
    int rc = eg_sha256_new(&h);
    if (rc)
        return rc;
    if (queue && strcmp(queue, "default") != 0)
        hash_part(h, queue);
    hash_part(h, ns);
    hash_part(h, entity);
    hash_part(h, version);
    hash_part(h, model);
    rc = eg_sha256_final_hex(h, out);
    eg_sha256_free(h);
    return rc;
}

void queue_new_id(char out[QUEUE_ID_MAX], int64_t now_ms)
{
    char rnd[17];
    if (eg_rand_hex(rnd, 8) != 0)
        snprintf(rnd, sizeof rnd, "%016" PRIx64, (uint64_t)(eg_rand_unit() * 18446744073709551615.0));
    snprintf(out, QUEUE_ID_MAX, "j%013" PRIx64 "%s", (uint64_t)now_ms, rnd);
}

void queue_new_token(char out[QUEUE_TOKEN_MAX])
{
    if (eg_rand_hex(out, 16) != 0) {
        for (int i = 0; i < 32; i++)
            out[i] = "0123456789abcdef"[(int)(eg_rand_unit() * 16)];
        out[32] = '\0';
    }
}

/* ---- dispatch ---- */

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, __VA_ARGS__);                     \
    } while (0)

void queue_store_free(queue_store *s)
{
    if (s)
        s->ops->free(s);
}

const char *queue_store_kind(const queue_store *s)
{
    return s ? s->ops->kind : "none";
}

const queue_opts *queue_store_opts(const queue_store *s)
{
    return &s->opts;
}

int queue_store_now(queue_store *s, int64_t *out, eg_error *err)
{
    CHECK(s && out, "queue_store_now: NULL argument");
    return s->ops->now(s, out, err);
}

int queue_tx_begin(queue_store *s, queue_tx **out, eg_error *err)
{
    CHECK(s && out, "queue_tx_begin: NULL argument");
    queue_tx *tx = eg_calloc(1, sizeof *tx);
    if (!tx)
        return eg_error_oom(err);
    tx->store = s;
    int rc = s->ops->tx_begin(s, tx, err);
    if (rc) {
        eg_free(tx);
        return rc;
    }
    *out = tx;
    return 0;
}

int queue_tx_commit(queue_tx *tx, eg_error *err)
{
    CHECK(tx && tx->store, "queue_tx_commit: not a queue_tx_begin transaction");
    int rc = tx->store->ops->tx_commit(tx->store, tx, err);
    eg_free(tx);
    return rc;
}

void queue_tx_rollback(queue_tx *tx)
{
    if (!tx || !tx->store)
        return;
    tx->store->ops->tx_rollback(tx->store, tx);
    eg_free(tx);
}

int queue_enqueue_check(const queue_enqueue_req *reqs, size_t n, eg_error *err)
{
    CHECK(n == 0 || reqs, "queue_enqueue: NULL argument");
    for (size_t i = 0; i < n; i++) {
        CHECK(reqs[i].ns && reqs[i].entity && reqs[i].version && reqs[i].model,
              "queue_enqueue: request %zu lacks namespace, entity, version or model", i);
        CHECK(reqs[i].max_attempts >= 0 && reqs[i].delay_ms >= 0,
              "queue_enqueue: request %zu has a negative max_attempts or delay", i);
    }
    return 0;
}

int queue_enqueue(queue_store *s, queue_tx *tx, const queue_enqueue_req *reqs, size_t n,
                  queue_enqueue_result *out, eg_error *err)
{
    CHECK(s && (n == 0 || (reqs && out)), "queue_enqueue: NULL argument");
    int rc = queue_enqueue_check(reqs, n, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++)
        memset(&out[i], 0, sizeof out[i]);
    if (n == 0)
        return 0;
    return s->ops->enqueue(s, tx, reqs, n, out, err);
}

int queue_lease(queue_store *s, const queue_lease_opts *o, queue_job **jobs_out, size_t *n_out,
                eg_error *err)
{
    CHECK(s && o && jobs_out && n_out, "queue_lease: NULL argument");
    *jobs_out = NULL;
    *n_out = 0;
    CHECK(o->owner && *o->owner, "queue_lease: owner required");
    CHECK(o->max_jobs >= 1 && o->max_jobs <= QUEUE_LEASE_MAX, "queue_lease: max_jobs must be 1..%d",
          QUEUE_LEASE_MAX);
    CHECK(o->lease_ms >= 0, "queue_lease: negative lease");
    return s->ops->lease(s, o, jobs_out, n_out, err);
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * A job may be named at most once per call: a store applies a batch as one
 * statement, and two rows for one job would see each other's fence.
 */
static int check_unique(const char *const *ids, size_t n, eg_error *err)
{
    if (n < 2)
        return 0;
    const char **v = eg_malloc(n * sizeof *v);
    if (!v)
        return eg_error_oom(err);
    memcpy(v, ids, n * sizeof *v);
    qsort(v, n, sizeof *v, cmp_str_ptr);
    int rc = 0;
    for (size_t i = 1; i < n && !rc; i++)
        if (strcmp(v[i - 1], v[i]) == 0)
            rc = eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "job %s named twice in one call", v[i]);
    eg_free(v);
    return rc;
}

static int check_refs(const queue_lease_ref *l, size_t n, eg_error *err)
{
    for (size_t i = 0; i < n; i++)
        CHECK(l[i].id && l[i].token, "lease %zu lacks id or token", i);
    if (n < 2)
        return 0;
    const char **ids = eg_malloc(n * sizeof *ids);
    if (!ids)
        return eg_error_oom(err);
    for (size_t i = 0; i < n; i++)
        ids[i] = l[i].id;
    int rc = check_unique(ids, n, err);
    eg_free(ids);
    return rc;
}

int queue_heartbeat(queue_store *s, const char *owner, const queue_lease_ref *leases, size_t n,
                    int64_t lease_ms, bool *lost_out, size_t *held_out, eg_error *err)
{
    CHECK(s && owner && *owner && (n == 0 || leases), "queue_heartbeat: bad argument");
    CHECK(lease_ms >= 0, "queue_heartbeat: negative lease");
    if (held_out)
        *held_out = 0;
    int rc = check_refs(leases, n, err);
    if (rc || n == 0)
        return rc;
    return s->ops->heartbeat(s, owner, leases, n, lease_ms, lost_out, held_out, err);
}

int queue_complete(queue_store *s, const char *owner, const queue_lease_ref *leases, size_t n,
                   queue_result_fn write_fn, void *payload, queue_outcome *outcome_out,
                   eg_error *err)
{
    CHECK(s && owner && *owner && (n == 0 || leases), "queue_complete: bad argument");
    int rc = check_refs(leases, n, err);
    if (rc || n == 0)
        return rc;
    return s->ops->complete(s, owner, leases, n, write_fn, payload, outcome_out, err);
}

int queue_fail(queue_store *s, const char *owner, const queue_failure *fails, size_t n,
               queue_outcome *outcome_out, eg_error *err)
{
    CHECK(s && owner && *owner && (n == 0 || fails), "queue_fail: bad argument");
    for (size_t i = 0; i < n; i++)
        CHECK(fails[i].id && fails[i].token, "failure %zu lacks id or token", i);
    if (n == 0)
        return 0;
    if (n > 1) {
        const char **ids = eg_malloc(n * sizeof *ids);
        if (!ids)
            return eg_error_oom(err);
        for (size_t i = 0; i < n; i++)
            ids[i] = fails[i].id;
        int rc = check_unique(ids, n, err);
        eg_free(ids);
        if (rc)
            return rc;
    }
    return s->ops->fail(s, owner, fails, n, outcome_out, err);
}

int queue_release(queue_store *s, const char *owner, const queue_lease_ref *leases, size_t n,
                  int64_t delay_ms, bool *lost_out, eg_error *err)
{
    CHECK(s && owner && *owner && (n == 0 || leases), "queue_release: bad argument");
    CHECK(delay_ms >= 0, "queue_release: negative delay");
    int rc = check_refs(leases, n, err);
    if (rc || n == 0)
        return rc;
    return s->ops->release(s, owner, leases, n, delay_ms, lost_out, err);
}

int queue_reclaim_expired(queue_store *s, size_t limit, queue_reclaim_result *out, eg_error *err)
{
    CHECK(s, "queue_reclaim_expired: NULL store");
    queue_reclaim_result dummy;
    if (!out)
        out = &dummy;
    memset(out, 0, sizeof *out);
    if (limit == 0)
        limit = 1000;
    CHECK(limit <= 100000, "queue_reclaim_expired: limit too large");
    return s->ops->reclaim(s, limit, out, err);
}

int queue_status_get(queue_store *s, queue_status *out, eg_error *err)
{
    return queue_status_get_ns(s, NULL, out, err);
}

int queue_status_get_ns(queue_store *s, const char *ns, queue_status *out, eg_error *err)
{
    CHECK(s && out, "queue_status_get: NULL argument");
    memset(out, 0, sizeof *out);
    return s->ops->status(s, ns, out, err);
}

int queue_list(queue_store *s, const queue_list_filter *f, queue_job **jobs_out, size_t *n_out,
               char *next_cursor, eg_error *err)
{
    CHECK(s && f && jobs_out && n_out, "queue_list: NULL argument");
    *jobs_out = NULL;
    *n_out = 0;
    if (next_cursor)
        next_cursor[0] = '\0';
    CHECK(f->state >= -1 && f->state < QUEUE_STATE_COUNT, "queue_list: bad state");
    CHECK(f->limit <= 1000, "queue_list: limit must be <= 1000");
    queue_list_filter g = *f;
    if (g.limit == 0)
        g.limit = 50;
    return s->ops->list(s, &g, jobs_out, n_out, next_cursor, err);
}

int queue_retry_dead(queue_store *s, const char *const *ids, size_t n, const char *model,
                     int64_t *count_out, eg_error *err)
{
    return queue_retry_dead_ns(s, ids, n, model, NULL, count_out, err);
}

int queue_retry_dead_ns(queue_store *s, const char *const *ids, size_t n, const char *model,
                        const char *ns, int64_t *count_out, eg_error *err)
{
    CHECK(s && (n == 0 || ids), "queue_retry_dead: bad argument");
    for (size_t i = 0; i < n; i++)
        CHECK(ids[i], "queue_retry_dead: id %zu is NULL", i);
    int64_t dummy;
    if (!count_out)
        count_out = &dummy;
    *count_out = 0;
    if (ids && n == 0)
        return 0;
    return s->ops->retry_dead(s, ids, n, model, ns, count_out, err);
}

int queue_prune(queue_store *s, int64_t older_than_ms, size_t batch, int64_t *deleted_out,
                eg_error *err)
{
    CHECK(s, "queue_prune: NULL store");
    int64_t dummy;
    if (!deleted_out)
        deleted_out = &dummy;
    *deleted_out = 0;
    if (older_than_ms < 0)
        older_than_ms = s->opts.retention_ms;
    if (batch == 0)
        batch = (size_t)s->opts.prune_batch;
    CHECK(batch <= 100000, "queue_prune: batch too large");
    return s->ops->prune(s, older_than_ms, batch, 0, deleted_out, err);
}

int queue_prune_tick(queue_store *s, size_t max_batches, int64_t budget_ms, bool *ran_out,
                     int64_t *deleted_out, eg_error *err)
{
    CHECK(s && max_batches > 0, "queue_prune_tick: bad argument");
    bool dummy_ran;
    int64_t dummy_del;
    if (!ran_out)
        ran_out = &dummy_ran;
    if (!deleted_out)
        deleted_out = &dummy_del;
    *ran_out = false;
    *deleted_out = 0;
    int rc = s->ops->prune_turn(s, s->opts.prune_interval_ms, ran_out, err);
    if (rc || !*ran_out)
        return rc;
    size_t batch = (size_t)s->opts.prune_batch;
    int64_t t0 = eg_mono_ms();
    bool more = false;
    for (size_t i = 0; i < max_batches; i++) {
        int64_t n = 0;
        if ((rc = s->ops->prune(s, s->opts.retention_ms, batch, 1, &n, err)))
            break;
        *deleted_out += n;
        more = (size_t)n == batch;
        if (!more || eg_mono_ms() - t0 >= budget_ms)
            break;
    }
    /* stopped with work left (or failed): the next tick, of any process, goes on */
    if (more || rc) {
        bool ignored;
        eg_error e2;
        eg_error_clear(&e2);
        s->ops->prune_turn(s, -1, &ignored, &e2);
    }
    return rc;
}
