/*
 * mem_store.c - the in-memory job store (see mem_store.h).
 *
 * Jobs live in a growable array of pointers plus two string hash tables (id
 * and dedupe key -> job).  One recursive mutex guards everything: recursive
 * because queue_complete runs the caller's writer with the lock held (the
 * fence must hold across the write, as the Neo4j transaction's locks do),
 * and that writer may enqueue through the same store.
 */
#include "queue/mem_store.h"
#include "queue/store_impl.h"

#include "core/alloc.h"
#include "core/clock.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a small chained string hash table ---- */

typedef struct hent {
    const char *key;   /* borrowed from the job */
    queue_job *job;
    struct hent *next;
} hent;

typedef struct htab {
    hent **b;
    size_t nb, n;
} htab;

static uint64_t hstr(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int h_grow(htab *t)
{
    size_t nb = t->nb ? t->nb * 2 : 256;
    hent **b = eg_calloc(nb, sizeof *b);
    if (!b)
        return EG_ENOMEM;
    for (size_t i = 0; i < t->nb; i++) {
        for (hent *e = t->b[i], *nx; e; e = nx) {
            nx = e->next;
            size_t k = hstr(e->key) & (nb - 1);
            e->next = b[k];
            b[k] = e;
        }
    }
    eg_free(t->b);
    t->b = b;
    t->nb = nb;
    return 0;
}

static queue_job *h_get(const htab *t, const char *key)
{
    if (!t->nb)
        return NULL;
    for (hent *e = t->b[hstr(key) & (t->nb - 1)]; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e->job;
    return NULL;
}

static int h_put(htab *t, const char *key, queue_job *job)
{
    if (t->n + 1 > t->nb && h_grow(t))
        return EG_ENOMEM;
    hent *e = eg_malloc(sizeof *e);
    if (!e)
        return EG_ENOMEM;
    size_t k = hstr(key) & (t->nb - 1);
    e->key = key;
    e->job = job;
    e->next = t->b[k];
    t->b[k] = e;
    t->n++;
    return 0;
}

static void h_del(htab *t, const char *key)
{
    if (!t->nb)
        return;
    for (hent **pp = &t->b[hstr(key) & (t->nb - 1)]; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->key, key) == 0) {
            hent *e = *pp;
            *pp = e->next;
            eg_free(e);
            t->n--;
            return;
        }
    }
}

static void h_free(htab *t)
{
    for (size_t i = 0; i < t->nb; i++)
        for (hent *e = t->b[i], *nx; e; e = nx) {
            nx = e->next;
            eg_free(e);
        }
    eg_free(t->b);
    memset(t, 0, sizeof *t);
}

/* ---- the store ---- */

typedef struct mem_store {
    struct queue_store base;
    pthread_mutex_t mu;
    queue_job **jobs;
    size_t n, cap;
    htab by_id, by_key;
    queue_clock_fn clock;
    void *clock_ctx;
    double jitter;      /* <0: random */
    int64_t prune_after; /* store clock: the prune turn is free from then on */
} mem_store;

/* Staged enqueues of one transaction. */
typedef struct mem_tx {
    queue_job *staged;
    size_t n, cap;
} mem_tx;

#define S(s) ((mem_store *)(s))

static int64_t now_of(mem_store *m)
{
    return m->clock ? m->clock(m->clock_ctx) : eg_wall_ms();
}

static double jit(mem_store *m)
{
    return m->jitter >= 0 ? m->jitter : eg_rand_unit();
}

static char *dup0(const char *s)
{
    return s ? eg_strdup(s) : NULL;
}

/* Replace *dst with a copy of src; false on OOM. */
static bool set_str(char **dst, const char *src)
{
    char *c = NULL;
    if (src && !(c = eg_strdup(src)))
        return false;
    eg_free(*dst);
    *dst = c;
    return true;
}

static int copy_job(queue_job *dst, const queue_job *src)
{
    memset(dst, 0, sizeof *dst);
    *dst = *src;
    dst->id = dup0(src->id);
    dst->ns = dup0(src->ns);
    dst->entity = dup0(src->entity);
    dst->version = dup0(src->version);
    dst->model = dup0(src->model);
    dst->dedupe_key = dup0(src->dedupe_key);
    dst->payload = dup0(src->payload);
    dst->lease_owner = dup0(src->lease_owner);
    dst->lease_token = dup0(src->lease_token);
    dst->last_error = dup0(src->last_error);
    dst->last_error_category = dup0(src->last_error_category);
    if ((src->id && !dst->id) || (src->ns && !dst->ns) || (src->entity && !dst->entity) ||
        (src->version && !dst->version) || (src->model && !dst->model) ||
        (src->dedupe_key && !dst->dedupe_key) || (src->payload && !dst->payload) ||
        (src->lease_owner && !dst->lease_owner) || (src->lease_token && !dst->lease_token) ||
        (src->last_error && !dst->last_error) ||
        (src->last_error_category && !dst->last_error_category)) {
        queue_job_clear(dst);
        return EG_ENOMEM;
    }
    return 0;
}

static void mem_free(queue_store *s)
{
    mem_store *m = S(s);
    for (size_t i = 0; i < m->n; i++) {
        queue_job_clear(m->jobs[i]);
        eg_free(m->jobs[i]);
    }
    eg_free(m->jobs);
    h_free(&m->by_id);
    h_free(&m->by_key);
    pthread_mutex_destroy(&m->mu);
    eg_free(m);
}

static int mem_now(queue_store *s, int64_t *out, eg_error *err)
{
    (void)err;
    *out = now_of(S(s));
    return 0;
}

static int build_job(mem_store *m, queue_job *j, const queue_enqueue_req *r, const char *key,
                     int64_t now)
{
    memset(j, 0, sizeof *j);
    char id[QUEUE_ID_MAX];
    queue_new_id(id, now);
    j->id = eg_strdup(id);
    j->ns = eg_strdup(r->ns);
    j->entity = eg_strdup(r->entity);
    j->version = eg_strdup(r->version);
    j->model = eg_strdup(r->model);
    j->dedupe_key = eg_strdup(key);
    j->payload = dup0(r->payload);
    j->seq = r->seq > 0 ? r->seq : 0;
    j->state = QUEUE_PENDING;
    j->max_attempts = r->max_attempts > 0 ? r->max_attempts : m->base.opts.max_attempts;
    j->run_at = now + r->delay_ms;
    j->created_at = j->updated_at = now;
    if (!j->id || !j->ns || !j->entity || !j->version || !j->model || !j->dedupe_key ||
        (r->payload && !j->payload)) {
        queue_job_clear(j);
        return EG_ENOMEM;
    }
    return 0;
}

/* Does the new job n make the older job o obsolete?  Never when o is for a
 * newer version of the entity (job_store.h, queue_enqueue). */
static bool supersedes(const queue_job *n, const queue_job *o)
{
    return n->seq > 0 && o->state == QUEUE_PENDING && o->seq <= n->seq && strcmp(o->ns, n->ns) == 0 &&
           strcmp(o->entity, n->entity) == 0 && strcmp(o->model, n->model) == 0;
}

/* Insert a built job (steals j's strings); supersedes older pending versions. */
static int insert_job(mem_store *m, queue_job *j, int64_t now, int64_t *superseded)
{
    if (m->n == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 64;
        queue_job **nj = eg_realloc(m->jobs, nc * sizeof *nj);
        if (!nj)
            return EG_ENOMEM;
        m->jobs = nj;
        m->cap = nc;
    }
    queue_job *p = eg_malloc(sizeof *p);
    if (!p)
        return EG_ENOMEM;
    *p = *j;
    if (h_put(&m->by_id, p->id, p)) {
        eg_free(p);
        return EG_ENOMEM;
    }
    if (h_put(&m->by_key, p->dedupe_key, p)) {
        h_del(&m->by_id, p->id);
        eg_free(p);
        return EG_ENOMEM;
    }
    memset(j, 0, sizeof *j);
    for (size_t i = 0; i < m->n; i++) {
        queue_job *o = m->jobs[i];
        if (supersedes(p, o)) {
            o->state = QUEUE_SUPERSEDED;
            o->updated_at = o->completed_at = o->run_at = now;
            (*superseded)++;
        }
    }
    m->jobs[m->n++] = p;
    return 0;
}

static int mem_tx_begin(queue_store *s, queue_tx *tx, eg_error *err)
{
    (void)s;
    mem_tx *t = eg_calloc(1, sizeof *t);
    if (!t)
        return eg_error_oom(err);
    tx->impl = t;
    return 0;
}

static void mem_tx_drop(queue_tx *tx)
{
    mem_tx *t = tx->impl;
    if (!t)
        return;
    queue_jobs_free(t->staged, t->n);
    eg_free(t);
    tx->impl = NULL;
}

static int mem_tx_commit(queue_store *s, queue_tx *tx, eg_error *err)
{
    mem_store *m = S(s);
    mem_tx *t = tx->impl;
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    int64_t now = now_of(m);
    for (size_t i = 0; i < t->n && !rc; i++) {
        /* The key may have been committed by someone else meanwhile: then
         * the Neo4j store's MERGE would have found it too. */
        if (h_get(&m->by_key, t->staged[i].dedupe_key))
            continue;
        int64_t sup = 0;
        rc = insert_job(m, &t->staged[i], now, &sup);
    }
    pthread_mutex_unlock(&m->mu);
    mem_tx_drop(tx);
    return rc ? eg_error_oom(err) : 0;
}

static void mem_tx_rollback(queue_store *s, queue_tx *tx)
{
    (void)s;
    mem_tx_drop(tx);
}

static int mem_enqueue(queue_store *s, queue_tx *tx, const queue_enqueue_req *reqs, size_t n,
                       queue_enqueue_result *out, eg_error *err)
{
    mem_store *m = S(s);
    mem_tx *t = tx ? tx->impl : NULL;
    if (tx && !t)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "memory store: transaction not from queue_tx_begin on this store");
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    int64_t now = now_of(m);
    for (size_t i = 0; i < n && !rc; i++) {
        char key[65];
        if ((rc = queue_dedupe_key(key, s->opts.name, reqs[i].ns, reqs[i].entity, reqs[i].version, reqs[i].model)))
            break;
        queue_job *ex = h_get(&m->by_key, key);
        if (!ex && t)
            for (size_t k = 0; k < t->n && !ex; k++)
                if (strcmp(t->staged[k].dedupe_key, key) == 0)
                    ex = &t->staged[k];
        if (ex) {
            out[i].created = false;
            out[i].state = ex->state;
            snprintf(out[i].id, QUEUE_ID_MAX, "%s", ex->id);
            continue;
        }
        queue_job j;
        if ((rc = build_job(m, &j, &reqs[i], key, now)))
            break;
        out[i].created = true;
        out[i].state = QUEUE_PENDING;
        snprintf(out[i].id, QUEUE_ID_MAX, "%s", j.id);
        if (t) {
            if (t->n == t->cap) {
                size_t nc = t->cap ? t->cap * 2 : 8;
                queue_job *ns = eg_realloc(t->staged, nc * sizeof *ns);
                if (!ns) {
                    queue_job_clear(&j);
                    rc = EG_ENOMEM;
                    break;
                }
                t->staged = ns;
                t->cap = nc;
            }
            t->staged[t->n++] = j;
            /* Superseding happens at commit, like the Neo4j transaction's
             * effects become visible at commit. */
            for (size_t k = 0; k < m->n; k++) {
                queue_job *o = m->jobs[k];
                if (supersedes(&j, o))
                    out[i].superseded++;
            }
        } else {
            rc = insert_job(m, &j, now, &out[i].superseded);
            if (rc)
                queue_job_clear(&j);
        }
    }
    pthread_mutex_unlock(&m->mu);
    if (rc == EG_EINTERNAL)
        return eg_error_set(err, rc, EG_CLASS_NONE, "enqueue: the dedupe key could not be hashed");
    return rc ? eg_error_oom(err) : 0;
}

/* Order for the claim: runAt, then id. */
static bool before(const queue_job *a, const queue_job *b)
{
    if (a->run_at != b->run_at)
        return a->run_at < b->run_at;
    return strcmp(a->id, b->id) < 0;
}

static int mem_lease(queue_store *s, const queue_lease_opts *o, queue_job **jobs_out,
                     size_t *n_out, eg_error *err)
{
    mem_store *m = S(s);
    int64_t lease_ms = o->lease_ms ? o->lease_ms : s->opts.lease_ms;
    queue_job **pick = eg_malloc(o->max_jobs * sizeof *pick);
    if (!pick)
        return eg_error_oom(err);
    size_t np = 0;
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    int64_t now = now_of(m);
    for (size_t i = 0; i < m->n; i++) {
        queue_job *j = m->jobs[i];
        if (j->state != QUEUE_PENDING || j->run_at > now || (o->model && strcmp(o->model, j->model)))
            continue;
        /* keep the best max_jobs by (runAt, id): insertion into a sorted array */
        if (np == o->max_jobs && !before(j, pick[np - 1]))
            continue;
        size_t k = np < o->max_jobs ? np++ : np - 1;
        while (k > 0 && before(j, pick[k - 1])) {
            pick[k] = pick[k - 1];
            k--;
        }
        pick[k] = j;
    }
    queue_job *out = np ? eg_calloc(np, sizeof *out) : NULL;
    if (np && !out)
        rc = EG_ENOMEM;
    for (size_t i = 0; i < np && !rc; i++) {
        queue_job *j = pick[i];
        char tok[QUEUE_TOKEN_MAX];
        queue_new_token(tok);
        if (!set_str(&j->lease_owner, o->owner) || !set_str(&j->lease_token, tok)) {
            rc = EG_ENOMEM;
            break;
        }
        j->state = QUEUE_LEASED;
        j->attempts++;
        j->lease_until = j->run_at = now + lease_ms;
        j->updated_at = now;
        if ((rc = copy_job(&out[i], j)))
            break;
        *n_out = i + 1;
    }
    pthread_mutex_unlock(&m->mu);
    eg_free(pick);
    if (rc) {
        queue_jobs_free(out, *n_out);
        *n_out = 0;
        return eg_error_oom(err);
    }
    *jobs_out = out;
    return 0;
}

/* The fence: still leased by owner with this token? */
static queue_job *held(mem_store *m, const char *owner, const char *id, const char *token)
{
    queue_job *j = h_get(&m->by_id, id);
    if (!j || j->state != QUEUE_LEASED || !j->lease_owner || !j->lease_token ||
        strcmp(j->lease_owner, owner) || strcmp(j->lease_token, token))
        return NULL;
    return j;
}

static void clear_lease(queue_job *j)
{
    eg_free(j->lease_owner);
    eg_free(j->lease_token);
    j->lease_owner = j->lease_token = NULL;
    j->lease_until = 0;
}

static int mem_heartbeat(queue_store *s, const char *owner, const queue_lease_ref *leases,
                         size_t n, int64_t lease_ms, bool *lost_out, size_t *held_out,
                         eg_error *err)
{
    (void)err;
    mem_store *m = S(s);
    if (!lease_ms)
        lease_ms = s->opts.lease_ms;
    pthread_mutex_lock(&m->mu);
    int64_t now = now_of(m);
    for (size_t i = 0; i < n; i++) {
        queue_job *j = held(m, owner, leases[i].id, leases[i].token);
        if (lost_out)
            lost_out[i] = j == NULL;
        if (!j)
            continue;
        j->lease_until = j->run_at = now + lease_ms;
        j->updated_at = now;
        if (held_out)
            (*held_out)++;
    }
    pthread_mutex_unlock(&m->mu);
    return 0;
}

static int mem_complete(queue_store *s, const char *owner, const queue_lease_ref *leases,
                        size_t n, queue_result_fn write_fn, void *payload,
                        queue_outcome *outcome_out, eg_error *err)
{
    mem_store *m = S(s);
    queue_job **hj = eg_calloc(n, sizeof *hj);
    queue_job *copies = eg_calloc(n, sizeof *copies);
    bool *sup = eg_calloc(n, sizeof *sup);
    size_t *idx = eg_calloc(n, sizeof *idx);
    int rc = 0;
    if (!hj || !copies || !sup || !idx) {
        rc = eg_error_oom(err);
        goto out;
    }
    pthread_mutex_lock(&m->mu);
    size_t nh = 0;
    for (size_t i = 0; i < n; i++) {
        queue_job *j = held(m, owner, leases[i].id, leases[i].token);
        if (outcome_out)
            outcome_out[i] = j ? QUEUE_OUT_OK : QUEUE_OUT_LOST;
        if (!j) {
            /* completed earlier under this very lease (a retried call): report it */
            queue_job *d = h_get(&m->by_id, leases[i].id);
            if (d && outcome_out && (d->state == QUEUE_COMPLETED || d->state == QUEUE_SUPERSEDED) &&
                d->lease_owner && d->lease_token && !strcmp(d->lease_owner, owner) &&
                !strcmp(d->lease_token, leases[i].token))
                outcome_out[i] = d->state == QUEUE_SUPERSEDED ? QUEUE_OUT_SUPERSEDED : QUEUE_OUT_OK;
            continue;
        }
        if ((rc = copy_job(&copies[nh], j))) {
            pthread_mutex_unlock(&m->mu);
            rc = eg_error_oom(err);
            goto out_copies;
        }
        idx[nh] = i;
        hj[nh++] = j;
    }
    if (write_fn && nh) {
        queue_tx tx = {.conn = NULL, .impl = NULL, .store = s};
        rc = write_fn(&tx, copies, nh, sup, payload, err);
        if (rc) {
            pthread_mutex_unlock(&m->mu);
            goto out_copies;
        }
    }
    int64_t now = now_of(m);
    for (size_t k = 0; k < nh; k++) {
        hj[k]->state = sup[k] ? QUEUE_SUPERSEDED : QUEUE_COMPLETED;
        hj[k]->completed_at = hj[k]->updated_at = hj[k]->run_at = now;
        /* owner and token stay: "completed under this lease" (idempotent retry) */
        if (outcome_out)
            outcome_out[idx[k]] = sup[k] ? QUEUE_OUT_SUPERSEDED : QUEUE_OUT_OK;
    }
    pthread_mutex_unlock(&m->mu);
out_copies:
    for (size_t k = 0; k < n; k++)
        queue_job_clear(&copies[k]);
out:
    eg_free(hj);
    eg_free(copies);
    eg_free(sup);
    eg_free(idx);
    return rc;
}

/* Back to pending after a failed or expired attempt, or dead. */
static queue_outcome fail_job(mem_store *m, queue_job *j, const char *error, const char *category,
                              bool permanent, int64_t min_delay, int64_t now)
{
    queue_outcome oc;
    clear_lease(j);
    char buf[2001];
    snprintf(buf, sizeof buf, "%s", error ? error : "");
    set_str(&j->last_error, buf);
    set_str(&j->last_error_category, category);
    j->updated_at = now;
    if (permanent || j->attempts >= j->max_attempts) {
        j->state = QUEUE_DEAD;
        j->run_at = now;
        oc = QUEUE_OUT_DEAD;
    } else {
        int64_t d = queue_backoff_ms(&m->base.opts, j->attempts, jit(m));
        if (d < min_delay)
            d = min_delay;
        j->state = QUEUE_PENDING;
        j->run_at = now + d;
        oc = QUEUE_OUT_RETRY;
    }
    return oc;
}

static int mem_fail(queue_store *s, const char *owner, const queue_failure *fails, size_t n,
                    queue_outcome *outcome_out, eg_error *err)
{
    (void)err;
    mem_store *m = S(s);
    pthread_mutex_lock(&m->mu);
    int64_t now = now_of(m);
    for (size_t i = 0; i < n; i++) {
        queue_job *j = held(m, owner, fails[i].id, fails[i].token);
        queue_outcome oc = QUEUE_OUT_LOST;
        if (j)
            oc = fail_job(m, j, fails[i].error, queue_err_category_name(fails[i].category),
                          fails[i].category == QUEUE_ERR_PERMANENT, fails[i].retry_after_ms, now);
        if (outcome_out)
            outcome_out[i] = oc;
    }
    pthread_mutex_unlock(&m->mu);
    return 0;
}

static int mem_release(queue_store *s, const char *owner, const queue_lease_ref *leases,
                       size_t n, int64_t delay_ms, bool *lost_out, eg_error *err)
{
    (void)err;
    mem_store *m = S(s);
    pthread_mutex_lock(&m->mu);
    int64_t now = now_of(m);
    for (size_t i = 0; i < n; i++) {
        queue_job *j = held(m, owner, leases[i].id, leases[i].token);
        if (lost_out)
            lost_out[i] = j == NULL;
        if (!j)
            continue;
        clear_lease(j);
        j->state = QUEUE_PENDING;
        if (j->attempts > 0)
            j->attempts--;
        j->run_at = now + delay_ms;
        j->updated_at = now;
    }
    pthread_mutex_unlock(&m->mu);
    return 0;
}

static int mem_reclaim(queue_store *s, size_t limit, queue_reclaim_result *out, eg_error *err)
{
    (void)err;
    mem_store *m = S(s);
    pthread_mutex_lock(&m->mu);
    int64_t now = now_of(m);
    size_t done = 0;
    for (size_t i = 0; i < m->n && done < limit; i++) {
        queue_job *j = m->jobs[i];
        if (j->state != QUEUE_LEASED || j->lease_until >= now)
            continue;
        done++;
        if (fail_job(m, j, "lease expired", "expired", false, 0, now) == QUEUE_OUT_DEAD)
            out->dead++;
        else
            out->requeued++;
    }
    pthread_mutex_unlock(&m->mu);
    return 0;
}

static int cmp_model(const void *a, const void *b)
{
    return strcmp(((const queue_model_status *)a)->model, ((const queue_model_status *)b)->model);
}

static int mem_status(queue_store *s, const char *ns, queue_status *out, eg_error *err)
{
    mem_store *m = S(s);
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    int64_t now = now_of(m);
    out->now = now;
    out->oldest_pending_age_ms = -1;
    queue_job *dead[20];
    size_t nd = 0;
    for (size_t i = 0; i < m->n && !rc; i++) {
        queue_job *j = m->jobs[i];
        if (ns && strcmp(ns, j->ns))
            continue;
        out->count[j->state]++;
        if (j->state == QUEUE_PENDING) {
            if (j->run_at <= now) {
                out->ready++;
                if (now - j->run_at > out->oldest_pending_age_ms)
                    out->oldest_pending_age_ms = now - j->run_at;
            } else if (!out->next_run_at || j->run_at < out->next_run_at) {
                out->next_run_at = j->run_at;
            }
        }
        if (j->state == QUEUE_LEASED && j->lease_until < now)
            out->expired_leases++;
        if (j->state == QUEUE_COMPLETED && j->run_at > now - (int64_t)QUEUE_STATUS_BUCKETS * QUEUE_STATUS_BUCKET_MS) {
            int64_t b = (now - j->run_at) / QUEUE_STATUS_BUCKET_MS;
            if (b >= 0 && b < QUEUE_STATUS_BUCKETS)
                out->completed_recent[b]++;
        }
        if (j->state == QUEUE_DEAD && (nd < 20 || dead[nd - 1]->updated_at < j->updated_at)) {
            /* keep the 20 most recently updated, newest first */
            size_t k = nd < 20 ? nd++ : 19;
            while (k > 0 && dead[k - 1]->updated_at < j->updated_at) {
                dead[k] = dead[k - 1];
                k--;
            }
            dead[k] = j;
        }
        size_t mi = 0;
        while (mi < out->nmodels && strcmp(out->models[mi].model, j->model))
            mi++;
        if (mi == out->nmodels) {
            queue_model_status *nm =
                eg_realloc(out->models, (out->nmodels + 1) * sizeof *nm);
            if (!nm) {
                rc = EG_ENOMEM;
                break;
            }
            out->models = nm;
            memset(&nm[mi], 0, sizeof nm[mi]);
            if (!(nm[mi].model = eg_strdup(j->model))) {
                rc = EG_ENOMEM;
                break;
            }
            out->nmodels++;
        }
        out->models[mi].count[j->state]++;
    }
    if (!rc && nd) {
        out->dead = eg_calloc(nd, sizeof *out->dead);
        if (!out->dead)
            rc = EG_ENOMEM;
        for (size_t k = 0; k < nd && !rc; k++) {
            if ((rc = copy_job(&out->dead[k], dead[k])))
                break;
            out->ndead = k + 1;
        }
    }
    pthread_mutex_unlock(&m->mu);
    if (rc) {
        queue_status_clear(out);
        return eg_error_oom(err);
    }
    if (out->nmodels > 1)
        qsort(out->models, out->nmodels, sizeof *out->models, cmp_model);
    return 0;
}

static int cmp_job_id(const void *a, const void *b)
{
    return strcmp((*(queue_job *const *)a)->id, (*(queue_job *const *)b)->id);
}

static int mem_list(queue_store *s, const queue_list_filter *f, queue_job **jobs_out,
                    size_t *n_out, char *next_cursor, eg_error *err)
{
    mem_store *m = S(s);
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    queue_job **match = m->n ? eg_malloc(m->n * sizeof *match) : NULL;
    size_t nm = 0;
    if (m->n && !match)
        rc = EG_ENOMEM;
    for (size_t i = 0; i < m->n && !rc; i++) {
        queue_job *j = m->jobs[i];
        if ((f->state >= 0 && (int)j->state != f->state) || (f->model && strcmp(f->model, j->model)) ||
            (f->ns && strcmp(f->ns, j->ns)) || (f->entity && strcmp(f->entity, j->entity)) ||
            (f->after_id && strcmp(j->id, f->after_id) <= 0))
            continue;
        match[nm++] = j;
    }
    if (!rc && nm > 1)
        qsort(match, nm, sizeof *match, cmp_job_id);
    size_t take = nm < f->limit ? nm : f->limit;
    queue_job *out = take ? eg_calloc(take, sizeof *out) : NULL;
    if (take && !out)
        rc = EG_ENOMEM;
    for (size_t i = 0; i < take && !rc; i++) {
        if ((rc = copy_job(&out[i], match[i])))
            break;
        *n_out = i + 1;
    }
    if (!rc && next_cursor && nm > take)
        snprintf(next_cursor, QUEUE_ID_MAX, "%s", match[take - 1]->id);
    pthread_mutex_unlock(&m->mu);
    eg_free(match);
    if (rc) {
        queue_jobs_free(out, *n_out);
        *n_out = 0;
        return eg_error_oom(err);
    }
    *jobs_out = out;
    return 0;
}

static int mem_retry_dead(queue_store *s, const char *const *ids, size_t n, const char *model,
                          const char *ns, int64_t *count_out, eg_error *err)
{
    (void)err;
    mem_store *m = S(s);
    pthread_mutex_lock(&m->mu);
    int64_t now = now_of(m);
    for (size_t i = 0; i < m->n; i++) {
        queue_job *j = m->jobs[i];
        if (j->state != QUEUE_DEAD || (model && strcmp(model, j->model)) || (ns && strcmp(ns, j->ns)))
            continue;
        if (ids) {
            bool named = false;
            for (size_t k = 0; k < n && !named; k++)
                named = strcmp(ids[k], j->id) == 0;
            if (!named)
                continue;
        }
        j->state = QUEUE_PENDING;
        j->attempts = 0;
        j->run_at = now;
        j->updated_at = now;
        (*count_out)++;
    }
    pthread_mutex_unlock(&m->mu);
    return 0;
}

static int mem_prune(queue_store *s, int64_t older_than_ms, size_t batch, size_t max_batches,
                     int64_t *deleted_out, eg_error *err)
{
    (void)err;
    mem_store *m = S(s);
    for (size_t round = 0; max_batches == 0 || round < max_batches; round++) {
        size_t done = 0;
        pthread_mutex_lock(&m->mu);
        int64_t cutoff = now_of(m) - older_than_ms;
        size_t w = 0;
        for (size_t i = 0; i < m->n; i++) {
            queue_job *j = m->jobs[i];
            bool terminal = j->state == QUEUE_COMPLETED || j->state == QUEUE_SUPERSEDED;
            if (done < batch && terminal && j->updated_at < cutoff) {
                h_del(&m->by_id, j->id);
                h_del(&m->by_key, j->dedupe_key);
                queue_job_clear(j);
                eg_free(j);
                done++;
                continue;
            }
            m->jobs[w++] = j;
        }
        m->n = w;
        pthread_mutex_unlock(&m->mu);
        *deleted_out += (int64_t)done;
        if (done < batch)
            return 0;
    }
    return 0;
}

static int mem_prune_turn(queue_store *s, int64_t hold_ms, bool *won, eg_error *err)
{
    (void)err;
    mem_store *m = S(s);
    pthread_mutex_lock(&m->mu);
    int64_t now = now_of(m);
    *won = false;
    if (hold_ms < 0) {
        m->prune_after = now;
    } else if (m->prune_after <= now) {
        m->prune_after = now + hold_ms;
        *won = true;
    }
    pthread_mutex_unlock(&m->mu);
    return 0;
}

static const queue_store_ops mem_ops = {
    .kind = "memory",
    .free = mem_free,
    .now = mem_now,
    .tx_begin = mem_tx_begin,
    .tx_commit = mem_tx_commit,
    .tx_rollback = mem_tx_rollback,
    .enqueue = mem_enqueue,
    .lease = mem_lease,
    .heartbeat = mem_heartbeat,
    .complete = mem_complete,
    .fail = mem_fail,
    .release = mem_release,
    .reclaim = mem_reclaim,
    .status = mem_status,
    .list = mem_list,
    .retry_dead = mem_retry_dead,
    .prune = mem_prune,
    .prune_turn = mem_prune_turn,
};

int queue_mem_new(queue_store **out, const queue_opts *opts, queue_clock_fn clock, void *clock_ctx,
                  eg_error *err)
{
    if (!out)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "queue_mem_new: NULL out");
    mem_store *m = eg_calloc(1, sizeof *m);
    if (!m)
        return eg_error_oom(err);
    queue_opts def = QUEUE_OPTS_INIT;
    m->base.ops = &mem_ops;
    m->base.opts = opts ? *opts : def;
    m->clock = clock;
    m->clock_ctx = clock_ctx;
    m->jitter = -1;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&m->mu, &a);
    pthread_mutexattr_destroy(&a);
    *out = &m->base;
    return 0;
}

void queue_mem_set_jitter(queue_store *s, double unit)
{
    if (!s || s->ops != &mem_ops)
        return;
    pthread_mutex_lock(&S(s)->mu);
    S(s)->jitter = unit;
    pthread_mutex_unlock(&S(s)->mu);
}
