/*
 * batch.c - one leased batch of the worker manager (manager_int.h): load
 * texts, embed them, then finish it (complete in one transaction, fail,
 * release).  The threads that drive batches are in manager.c.
 */
#include "worker/manager_int.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

/* ---- helpers ---------------------------------------------------------- */

static void stats_provider(worker_manager *m, int rc, const embed_status *batch, int requests, long tokens,
                           int64_t us)
{
    pthread_mutex_lock(&m->mu);
    m->st.provider_requests += (uint64_t)requests;
    m->st.provider_tokens += (uint64_t)(tokens > 0 ? tokens : 0);
    if (requests > 0) {
        /* one observation per call (the common case is one request per call) */
        double s = (double)us / 1e6 / requests;
        for (int r = 0; r < requests; r++) {
            for (int i = 0; i < WORKER_LAT_BUCKETS; i++)
                if (s <= worker_latency_bounds[i])
                    m->st.latency_le[i]++;
            m->st.latency_count++;
            m->st.latency_sum_s += s;
        }
    }
    if (rc == 0) {
        m->st.consecutive_failures = 0;
        m->st.last_success_wall_ms = eg_wall_ms();
        m->st.provider_state = EMBED_OK;
    } else if (batch->kind != EMBED_E_CANCELED) {
        m->st.provider_errors++;
        m->st.consecutive_failures++;
        m->st.last_failure_wall_ms = eg_wall_ms();
        if ((unsigned)batch->kind < 8)
            m->st.errors_by_kind[batch->kind]++;
        m->st.provider_state = batch->kind;
        snprintf(m->st.last_error, sizeof m->st.last_error, "%s: %.200s", embed_errkind_name(batch->kind),
                 batch->message);
    }
    pthread_mutex_unlock(&m->mu);
}

static void remember_done(worker_manager *m, const char *id)
{
    /* caller holds m->mu */
    snprintf(m->recent[m->recent_next % WORKER_RECENT_MAX], QUEUE_ID_MAX, "%s", id);
    m->recent_next++;
}

/* Sleep up to ms, waking early on stop/abort (checked every 50 ms). */
static void nap(worker_manager *m, int64_t ms, bool wake_on_stop)
{
    int64_t end = eg_mono_ms() + ms;
    while (!atomic_load(&m->abort_flag) && !(wake_on_stop && atomic_load(&m->stopping))) {
        int64_t left = end - eg_mono_ms();
        if (left <= 0)
            break;
        eg_sleep_ms(left < 50 ? left : 50);
    }
}

static void log_job(eg_log_level lvl, const char *msg, const queue_job *j, const char *error)
{
    char att[16];
    snprintf(att, sizeof att, "%d", j->attempts);
    eg_log_fields(lvl, "worker", msg, "job", j->id, "namespace", j->ns, "entity", j->entity, "attempt", att,
                  "model", j->model, "error", error, NULL);
}

/* ---- the completion transaction --------------------------------------- */

typedef struct complete_ctx {
    worker_manager *m;
    queue_job *jobs;       /* the batch */
    worker_item *items;
    float *vecs;           /* one row per job (rows of non-EMBED jobs unused) */
    bool *done;            /* jobs to complete */
    size_t n;
    const embed_status *per; /* each job's provider outcome (tokens, truncation) */
} complete_ctx;

static int write_results(queue_tx *tx, const queue_job *held, size_t nheld, bool *superseded_out,
                         void *payload, eg_error *err)
{
    complete_ctx *c = payload;
    worker_write *ws = nheld ? eg_calloc(nheld, sizeof *ws) : NULL;
    size_t *wmap = nheld ? eg_calloc(nheld, sizeof *wmap) : NULL;
    bool *sup = nheld ? eg_calloc(nheld, sizeof *sup) : NULL;
    if (nheld && (!ws || !wmap || !sup)) {
        eg_free(ws);
        eg_free(wmap);
        eg_free(sup);
        return eg_error_oom(err);
    }
    size_t nw = 0;
    for (size_t h = 0; h < nheld; h++) {
        superseded_out[h] = false;
        size_t i;
        for (i = 0; i < c->n; i++)
            if (c->done[i] && strcmp(c->jobs[i].id, held[h].id) == 0)
                break;
        if (i == c->n)
            continue;
        switch (c->items[i].state) {
        case WORKER_LOAD_STALE:
        case WORKER_LOAD_GONE: superseded_out[h] = true; break;
        case WORKER_LOAD_CURRENT: break;
        case WORKER_LOAD_EMBED:
            ws[nw].job = &held[h];
            ws[nw].vec = c->vecs + i * (size_t)c->m->dims;
            ws[nw].dims = c->m->dims;
            ws[nw].tokens = c->per[i].tokens;
            ws[nw].truncated = c->per[i].truncated;
            wmap[nw] = h;
            nw++;
            break;
        }
    }
    int rc = nw ? worker_sink_write(c->m->sink, tx, ws, nw, sup, err) : 0;
    if (rc == 0)
        for (size_t k = 0; k < nw; k++)
            superseded_out[wmap[k]] = sup[k];
    eg_free(ws);
    eg_free(wmap);
    eg_free(sup);
    return rc;
}

/* ---- one batch -------------------------------------------------------- */

typedef enum route {
    ROUTE_COMPLETE = 0,
    ROUTE_FAIL_PERMANENT,
    ROUTE_FAIL_TRANSIENT,
    ROUTE_RELEASE
} route;

/* One leased batch on its way: prepared (texts, vectors) by the worker
 * thread, finished (completion transaction, failures, releases) by the
 * worker's completer thread, so the next batch's provider call overlaps the
 * previous batch's database work. */
struct worker_batch {
    queue_job *jobs;
    size_t n;
    worker_item *items;
    route *rt;
    embed_status *per;
    bool *done;
    float *vecs;
    const char **texts;
    size_t *tmap;
    float *tvecs;
    embed_status *tper;
    queue_lease_ref *refs;
    queue_failure *fails;
    queue_outcome *outs;
    bool *lost;
    char (*msgs)[300];
    size_t ntexts;     /* texts[0..ntexts) need vectors */
    bool loaded;       /* step 1 succeeded; false: every job is routed already */
    int64_t release_delay;
    int64_t tb0, tb1, tb2;
};

static void batch_free(worker_batch *b)
{
    if (!b)
        return;
    worker_items_clear(b->items, b->n);
    eg_free(b->items);
    eg_free(b->rt);
    eg_free(b->per);
    eg_free(b->done);
    eg_free(b->vecs);
    eg_free(b->texts);
    eg_free(b->tmap);
    eg_free(b->tvecs);
    eg_free(b->tper);
    eg_free(b->refs);
    eg_free(b->fails);
    eg_free(b->outs);
    eg_free(b->lost);
    eg_free(b->msgs);
    queue_jobs_free(b->jobs, b->n);
    eg_free(b);
}

/* Step 1: load texts (no transaction open).  Takes the jobs array.  NULL
 * only when even the state could not be allocated. */
worker_batch *worker__batch_load(worker_thread *w, queue_job *jobs, size_t n)
{
    worker_manager *m = w->m;
    worker_batch *b = eg_calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->jobs = jobs;
    b->n = n;
    int64_t tb0 = eg_mono_us(), tb1 = tb0;
    b->tb0 = tb0;
    eg_error err;
    eg_error_clear(&err);
    size_t dims = (size_t)m->dims;
    worker_item *items = b->items = eg_calloc(n, sizeof *items);
    route *rt = b->rt = eg_calloc(n, sizeof *rt);
    embed_status *per = b->per = eg_calloc(n, sizeof *per);
    bool *done = b->done = eg_calloc(n, sizeof *done);
    float *vecs = b->vecs = eg_malloc(n * dims * sizeof *vecs);
    const char **texts = b->texts = eg_calloc(n, sizeof *texts);
    size_t *tmap = b->tmap = eg_calloc(n, sizeof *tmap);
    float *tvecs = b->tvecs = eg_malloc(n * dims * sizeof *tvecs);
    embed_status *tper = b->tper = eg_calloc(n, sizeof *tper);
    queue_lease_ref *refs = b->refs = eg_calloc(n, sizeof *refs);
    queue_failure *fails = b->fails = eg_calloc(n, sizeof *fails);
    queue_outcome *outs = b->outs = eg_calloc(n, sizeof *outs);
    bool *lost = b->lost = eg_calloc(n, sizeof *lost);
    char (*msgs)[300] = b->msgs = eg_calloc(n, sizeof *msgs);
    if (!items || !rt || !per || !done || !vecs || !texts || !tmap || !tvecs || !tper || !refs || !fails ||
        !outs || !lost || !msgs) {
        EG_ERROR("worker", EG_OOM_TEXT " for a batch of %zu; releasing", n);
        for (size_t i = 0; i < n; i++)
            if (rt)
                rt[i] = ROUTE_RELEASE;
        b->release_delay = 1000;
        b->tb1 = b->tb2 = eg_mono_us();
        return b;
    }
    for (size_t i = 0; i < n; i++)
        items[i].job = &jobs[i];

    /* 1. texts, outside any transaction */
    if (worker_sink_load(m->sink, items, n, m->dims, &err) < 0) {
        eg_log_fields(EG_LOG_WARNING, "worker", "loading entities failed; releasing batch", "error",
                      err.message, NULL);
        for (size_t i = 0; i < n; i++)
            rt[i] = ROUTE_RELEASE;
        b->release_delay = 1000;
        b->tb1 = b->tb2 = eg_mono_us();
        return b;
    }
    tb1 = eg_mono_us();
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        rt[i] = ROUTE_COMPLETE;
        if (items[i].state == WORKER_LOAD_EMBED) {
            texts[k] = items[i].text;
            tmap[k] = i;
            k++;
        }
    }
    b->ntexts = k;
    b->loaded = true;
    b->tb1 = tb1;
    return b;
}

/* Step 2: vectors for the loaded texts (no transaction open), retried in
 * place; routes every job that could not get one. */
void worker__batch_embed(worker_thread *w, worker_batch *b)
{
    if (!b->loaded)
        return;
    worker_manager *m = w->m;
    eg_error err;
    eg_error_clear(&err);
    size_t dims = (size_t)m->dims;
    route *rt = b->rt;
    embed_status *per = b->per;
    float *vecs = b->vecs;
    const char **texts = b->texts;
    size_t *tmap = b->tmap;
    float *tvecs = b->tvecs;
    embed_status *tper = b->tper;
    size_t k = b->ntexts;
    embed_status batch;
    embed_status_clear(&batch);
    int64_t release_delay = 0;

    /* 2. vectors, outside any transaction, retried in place */
    if (k > 0) {
        int rc = 0;
        for (int attempt = 0;; attempt++) {
            long tokens = 0;
            int requests = 0;
            int64_t t0 = eg_mono_us();
            rc = embed_provider_embed(w->p, texts, k, tvecs, tper, &batch, &tokens, &requests, &err);
            stats_provider(m, rc, &batch, requests, tokens, eg_mono_us() - t0);
            if (rc == 0 || atomic_load(&m->abort_flag) || attempt >= m->o.inline_retries)
                break;
            /* Waits while this batch's leases are held are capped: a long
             * Retry-After (up to a day) releases them instead (rate limit)
             * or fails them with that delay (transient). */
            int64_t cap = m->o.throttle.max_inline_wait_ms;
            bool long_wait = cap > 0 && batch.retry_after_ms > cap;
            if (batch.kind == EMBED_E_RATE_LIMIT) {
                if (long_wait)
                    break;
                /* the throttle paused everyone; the next acquire waits */
                continue;
            }
            if (batch.kind != EMBED_E_TRANSIENT || !batch.retryable || long_wait)
                break;
            int64_t d = m->o.retry_base_ms << attempt;
            if (d > 8000)
                d = 8000;
            d = d / 2 + (int64_t)(eg_rand_unit() * (double)(d / 2));
            if (batch.retry_after_ms > d)
                d = batch.retry_after_ms;
            nap(m, d, false);
        }
        for (size_t j = 0; j < k; j++) {
            size_t i = tmap[j];
            per[i] = tper[j];
            if (rc < 0 && tper[j].kind == EMBED_OK)
                per[i] = batch;
            if (per[i].kind == EMBED_OK) {
                memcpy(vecs + i * dims, tvecs + j * dims, dims * sizeof *vecs);
                /* A non-finite value would fail the whole completing
                 * transaction (and cost every job of the batch an
                 * attempt): fail only this input, whatever provider made it. */
                bool finite = true;
                for (size_t d = 0; d < dims && finite; d++)
                    finite = isfinite(vecs[i * dims + d]);
                if (finite)
                    continue;
                embed_status_clear(&per[i]);
                per[i].kind = EMBED_E_INPUT;
                snprintf(per[i].message, sizeof per[i].message, "the provider's vector holds a non-finite value");
            }
            switch (per[i].kind) {
            case EMBED_E_INPUT: rt[i] = ROUTE_FAIL_PERMANENT; break;
            case EMBED_E_TRANSIENT: rt[i] = ROUTE_FAIL_TRANSIENT; break;
            case EMBED_E_RATE_LIMIT:
                rt[i] = ROUTE_RELEASE;
                if (per[i].retry_after_ms > release_delay)
                    release_delay = per[i].retry_after_ms;
                if (release_delay < 1000)
                    release_delay = 1000;
                break;
            case EMBED_E_QUOTA:
            case EMBED_E_AUTH:
            case EMBED_E_CONFIG:
                rt[i] = ROUTE_RELEASE;
                release_delay = m->o.provider_error_pause_ms;
                break;
            default: rt[i] = ROUTE_RELEASE; break;
            }
        }
        if (rc < 0 && embed_errkind_provider_wide(batch.kind) && batch.kind != EMBED_E_RATE_LIMIT) {
            char why[200];
            /* The kind only: the reason is shown by /health, the text is logged with the failure. */
            snprintf(why, sizeof why, "provider %s error", embed_errkind_name(batch.kind));
            eg_log_fields(EG_LOG_WARNING, "worker", "the provider refuses work", "kind",
                          embed_errkind_name(batch.kind), "error", batch.message, NULL);
            worker_throttle_pause(m->throttle, m->o.provider_error_pause_ms, why);
        }
    }

    b->release_delay = release_delay;
    b->tb2 = eg_mono_us();
}

/* Steps 3 to 5: complete, fail, release; then forget the leases.  Frees b. */
void worker__batch_finish(worker_manager *m, worker_batch *b)
{
    queue_job *jobs = b->jobs;
    size_t n = b->n;
    worker_item *items = b->items;
    route *rt = b->rt;
    embed_status *per = b->per;
    bool *done = b->done;
    float *vecs = b->vecs;
    queue_lease_ref *refs = b->refs;
    queue_failure *fails = b->fails;
    queue_outcome *outs = b->outs;
    bool *lost = b->lost;
    char (*msgs)[300] = b->msgs;
    int64_t release_delay = b->release_delay;
    int64_t tb0 = b->tb0, tb1 = b->tb1, tb2 = b->tb2, tb3;
    eg_error err;
    eg_error_clear(&err);
    worker__mark_finishing(m, jobs, n);
    /* 3. complete in one transaction (queue fence + version fence) */
    size_t nc = 0;
    for (size_t i = 0; i < n; i++) {
        if (done)
            done[i] = rt && rt[i] == ROUTE_COMPLETE;
        if (done && done[i])
            nc++;
    }
    if (nc > 0) {
        complete_ctx cc = {m, jobs, items, vecs, done, n, per};
        size_t r = 0;
        size_t *cmap = eg_calloc(nc, sizeof *cmap);
        for (size_t i = 0; i < n && cmap; i++)
            if (done[i]) {
                refs[r] = queue_job_ref(&jobs[i]);
                cmap[r++] = i;
            }
        int rc = -1;
        for (int attempt = 0; cmap && attempt < 3; attempt++) {
            eg_error_clear(&err);
            rc = queue_complete(m->store, m->owner, refs, nc, write_results, &cc, outs, &err);
            if (rc == 0 || atomic_load(&m->abort_flag))
                break;
            eg_log_fields(EG_LOG_WARNING, "worker", "completing a batch failed; retrying", "error",
                          err.message, NULL);
            nap(m, 1000 << attempt, false);
        }
        pthread_mutex_lock(&m->mu);
        for (size_t r2 = 0; r2 < nc && cmap; r2++) {
            const queue_job *j = &jobs[cmap[r2]];
            if (rc < 0) {
                /* Nothing committed: the lease expires and the job is redone. */
                continue;
            }
            switch (outs[r2]) {
            case QUEUE_OUT_OK:
                if (items[cmap[r2]].state == WORKER_LOAD_CURRENT)
                    m->st.skipped++;
                m->st.completed++;
                remember_done(m, j->id);
                break;
            case QUEUE_OUT_SUPERSEDED:
                m->st.superseded++;
                remember_done(m, j->id);
                break;
            case QUEUE_OUT_LOST: m->st.lost++; break;
            default: break;
            }
        }
        pthread_mutex_unlock(&m->mu);
        if (rc < 0)
            eg_log_fields(EG_LOG_ERROR, "worker", "could not complete batch; leases will expire", "error",
                          err.message, NULL);
        for (size_t r2 = 0; r2 < nc && cmap && rc == 0; r2++) {
            const queue_job *j = &jobs[cmap[r2]];
            if (outs[r2] == QUEUE_OUT_LOST)
                log_job(EG_LOG_WARNING, "lease lost before completion; result dropped", j, NULL);
            else if (outs[r2] == QUEUE_OUT_SUPERSEDED)
                log_job(EG_LOG_DEBUG, "job superseded (entity changed, or its namespace holds another model)", j,
                        NULL);
            else if (per[cmap[r2]].truncated)
                log_job(EG_LOG_INFO, "completed; the text was cut to the model's token limit (embeddingTruncated)",
                        j, NULL);
            else if (eg_log_enabled(EG_LOG_DEBUG))
                log_job(EG_LOG_DEBUG, "job completed", j, NULL);
        }
        eg_free(cmap);
        pthread_cond_broadcast(&m->done_cv);
    }
    tb3 = eg_mono_us();
    (void)tb0;
    if (eg_log_enabled(EG_LOG_DEBUG)) {
        char a[24], lb[24], c[24], d[24];
        snprintf(a, sizeof a, "%zu", n);
        snprintf(lb, sizeof lb, "%lld", (long long)(tb1 - tb0) / 1000);
        snprintf(c, sizeof c, "%lld", (long long)(tb2 - tb1) / 1000);
        snprintf(d, sizeof d, "%lld", (long long)(tb3 - tb2) / 1000);
        eg_log_fields(EG_LOG_DEBUG, "worker", "batch timings", "jobs", a, "load_ms", lb, "embed_ms", c,
                      "complete_ms", d, NULL);
    }

    /* 4. failures */
    size_t nf = 0;
    for (size_t i = 0; rt && i < n; i++) {
        if (rt[i] != ROUTE_FAIL_PERMANENT && rt[i] != ROUTE_FAIL_TRANSIENT)
            continue;
        snprintf(msgs[nf], sizeof msgs[0], "%s: %s", embed_errkind_name(per[i].kind), per[i].message);
        fails[nf].id = jobs[i].id;
        fails[nf].token = jobs[i].lease_token;
        fails[nf].error = msgs[nf];
        fails[nf].category = rt[i] == ROUTE_FAIL_PERMANENT ? QUEUE_ERR_PERMANENT : QUEUE_ERR_TRANSIENT;
        fails[nf].retry_after_ms = per[i].retry_after_ms > 0 ? per[i].retry_after_ms : 0;
        nf++;
    }
    if (nf > 0) {
        eg_error_clear(&err);
        int rc = queue_fail(m->store, m->owner, fails, nf, outs, &err);
        size_t f = 0;
        for (size_t i = 0; i < n; i++) {
            if (rt[i] != ROUTE_FAIL_PERMANENT && rt[i] != ROUTE_FAIL_TRANSIENT)
                continue;
            if (rc == 0) {
                pthread_mutex_lock(&m->mu);
                if (outs[f] == QUEUE_OUT_DEAD)
                    m->st.dead++;
                else if (outs[f] == QUEUE_OUT_RETRY)
                    m->st.failed++;
                else
                    m->st.lost++;
                pthread_mutex_unlock(&m->mu);
                /* LOST: the lease was no longer ours (reclaimed after a
                 * cut or a stall), so the failure was not recorded and the
                 * job's new owner decides: saying "will retry" would send
                 * whoever reads the log after a network cut the wrong way. */
                log_job(outs[f] == QUEUE_OUT_DEAD ? EG_LOG_ERROR : EG_LOG_WARNING,
                        outs[f] == QUEUE_OUT_DEAD   ? "job dead"
                        : outs[f] == QUEUE_OUT_LOST ? "job failed; lease lost (another worker owns the job now)"
                                                    : "job failed; will retry",
                        &jobs[i], msgs[f]);
            }
            f++;
        }
        if (rc < 0)
            eg_log_fields(EG_LOG_ERROR, "worker", "recording failures failed; leases will expire", "error",
                          err.message, NULL);
    }

    /* 5. releases (no attempt spent) */
    size_t nr = 0;
    for (size_t i = 0; rt && refs && i < n; i++)
        if (rt[i] == ROUTE_RELEASE) {
            refs[nr] = queue_job_ref(&jobs[i]);
            nr++;
        }
    if (nr > 0) {
        eg_error_clear(&err);
        if (queue_release(m->store, m->owner, refs, nr, release_delay, lost, &err) == 0) {
            pthread_mutex_lock(&m->mu);
            m->st.released += nr;
            pthread_mutex_unlock(&m->mu);
        } else {
            eg_log_fields(EG_LOG_WARNING, "worker", "releasing leases failed; they will expire", "error",
                          err.message, NULL);
        }
    }

    worker__unregister_leases(m, jobs, n);
    pthread_mutex_lock(&m->mu);
    m->st.batches++;
    pthread_mutex_unlock(&m->mu);
    batch_free(b);
}
