/*
 * manager.c - worker threads, heartbeat, routing of outcomes (manager.h).
 *
 * A batch's own steps (load, embed, complete, fail, release) are in batch.c;
 * the state both files share is in manager_int.h.
 */
#include "worker/manager_int.h"

#include "core/alloc.h"
#include "core/env.h"
#include "core/clock.h"
#include "core/log.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

const double worker_latency_bounds[WORKER_LAT_BUCKETS] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                          1,    2.5,   5,    10,  30,   60};

/* ---- options ---------------------------------------------------------- */

int worker_opts_from_env(worker_opts *o, embed_kind kind, eg_error *err)
{
    memset(o, 0, sizeof *o);
    /* The local encoder computes on the worker's thread: one worker per
     * core but one, which is left to Neo4j and the server.  On 2 cores one
     * worker beat two and four (bench/run pipeline with the local provider,
     * docs/operations.md).  A remote provider waits on the network, so two
     * workers overlap its calls whatever the cores. */
    if (kind == EMBED_PROVIDER_LOCAL) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        o->concurrency = cores > 2 ? (int)(cores - 1 > 8 ? 8 : cores - 1) : 1;
    } else {
        o->concurrency = 2;
    }
    o->batch = 100;
    o->poll_ms = 1000;
    o->inline_retries = 2;
    o->retry_base_ms = 500;
    o->provider_error_pause_ms = 60000;
    o->stop_deadline_ms = 10000;
    o->unhealthy_failures = 5;
    o->stall_ms = 300000;
    o->pipeline = true;
    o->sync_timeout_ms = 5000;
    o->prefetch = 2;
    o->linger_ms = 50;
    o->linger_max_ms = 1000;
    int64_t v;
    int rc;
#define ENV(name, lo, hi, field)                                  \
    if ((rc = eg_env_int(name, lo, hi, &v, err)) < 0)             \
        return rc;                                                \
    if (rc == 1)                                                  \
        o->field = v;
    ENV("ENGRAM_WORKERS", 0, 256, concurrency)
    ENV("ENGRAM_WORKER_BATCH", 1, QUEUE_LEASE_MAX, batch)
    ENV("ENGRAM_WORKER_POLL_MS", 10, 600000, poll_ms)
    ENV("ENGRAM_EMBED_RETRIES", 0, 20, inline_retries)
    ENV("ENGRAM_PROVIDER_ERROR_PAUSE_MS", 100, 86400000, provider_error_pause_ms)
    ENV("ENGRAM_WORKER_SHUTDOWN_MS", 0, 600000, stop_deadline_ms)
    ENV("ENGRAM_HEALTH_FAILURES", 1, 1000000, unhealthy_failures)
    ENV("ENGRAM_WORKER_PIPELINE", 0, 1, pipeline)
    ENV("ENGRAM_WORKER_PREFETCH", 1, 10, prefetch)
    ENV("ENGRAM_WORKER_LINGER_MS", 0, 10000, linger_ms)
    ENV("ENGRAM_WORKER_LINGER_MAX_MS", 0, 60000, linger_max_ms)
    ENV("ENGRAM_EMBED_SYNC_TIMEOUT_MS", 0, 600000, sync_timeout_ms)
#undef ENV
    o->sync = eg_env_yes("ENGRAM_EMBED_SYNC");
    /* A caller waiting for its vectors must not also wait out the linger. */
    if (o->sync && getenv("ENGRAM_WORKER_LINGER_MS") == NULL)
        o->linger_ms = 0;
    if ((rc = eg_env_int("ENGRAM_HEALTH_STALL_SECONDS", 1, 86400 * 30, &v, err)) < 0)
        return rc;
    if (rc == 1)
        o->stall_ms = v * 1000;
    return worker_throttle_opts_from_env(&o->throttle, kind, err);
}

/* ---- helpers ---------------------------------------------------------- */

static int register_leases(worker_manager *m, const queue_job *jobs, size_t n)
{
    pthread_mutex_lock(&m->mu);
    /* Counted even when they cannot be tracked (no memory for the table):
     * each batch is unregistered once either way, and stop waits for the
     * in-flight count to reach zero. */
    m->st.leased += n;
    m->st.in_flight += (int64_t)n;
    if (m->nactive + n > m->capactive) {
        size_t nc = (m->nactive + n) * 2;
        worker_active_lease *a = eg_realloc(m->active, nc * sizeof *a);
        if (!a) {
            pthread_mutex_unlock(&m->mu);
            return EG_ENOMEM;
        }
        m->active = a;
        m->capactive = nc;
    }
    for (size_t i = 0; i < n; i++) {
        worker_active_lease *a = &m->active[m->nactive++];
        snprintf(a->id, sizeof a->id, "%s", jobs[i].id);
        snprintf(a->token, sizeof a->token, "%s", jobs[i].lease_token ? jobs[i].lease_token : "");
        a->lost = false;
        a->finishing = false;
    }
    pthread_mutex_unlock(&m->mu);
    return 0;
}

/* The registered lease of job j (under m->mu), or NULL if it is untracked. */
static worker_active_lease *find_lease(worker_manager *m, const queue_job *j)
{
    for (size_t k = 0; k < m->nactive; k++)
        if (strcmp(m->active[k].id, j->id) == 0 &&
            strcmp(m->active[k].token, j->lease_token ? j->lease_token : "") == 0)
            return &m->active[k];
    return NULL;
}

void worker__mark_finishing(worker_manager *m, const queue_job *jobs, size_t n)
{
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < n; i++) {
        worker_active_lease *a = find_lease(m, &jobs[i]);
        if (a)
            a->finishing = true;
    }
    pthread_mutex_unlock(&m->mu);
}

void worker__unregister_leases(worker_manager *m, const queue_job *jobs, size_t n)
{
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < n; i++) {
        worker_active_lease *a = find_lease(m, &jobs[i]);
        if (a)
            *a = m->active[--m->nactive];
    }
    /* Every lease unregistered was registered once: a negative count would
     * let worker_manager_stop return while batches still run. */
    assert(m->st.in_flight >= (int64_t)n);
    m->st.in_flight -= (int64_t)n;
    pthread_mutex_unlock(&m->mu);
}

/* ---- threads ---------------------------------------------------------- */

/*
 * Wait up to `ms` for a notify (a committed write) or stop.  One woken
 * worker answers a notify (notify_served): the others would only run an
 * empty claim.  The one that answers lingers first (linger_ms after the
 * last notify, at most linger_max_ms after the first) so the jobs of the
 * calls that follow are leased, embedded and committed together: with
 * sequential single-entity writes every job would otherwise cost its own claim, its own vector-index commit, and
 * time on the database the writes are waiting for.
 */
static void idle_wait(worker_manager *m, int64_t ms)
{
    pthread_mutex_lock(&m->mu);
    struct timespec ts;
    eg_mono_deadline(&ts, ms);
    bool answered = false;
    while (!atomic_load(&m->stopping)) {
        if (m->notify_served != m->notify_seq) {
            m->notify_served = m->notify_seq;
            answered = true;
            break;
        }
        if (pthread_cond_timedwait(&m->idle_cv, &m->mu, &ts) == ETIMEDOUT)
            break;
    }
    if (answered && m->o.linger_ms > 0) {
        /* Debounce: each later write restarts the window, up to
         * linger_max_ms after the first, so while an agent keeps writing
         * the workers take its jobs in a few large batches (one vector
         * index commit each) instead of competing with every call. */
        int64_t first = eg_mono_ms(), last = first;
        int64_t cap = m->o.linger_max_ms > m->o.linger_ms ? m->o.linger_max_ms : m->o.linger_ms;
        uint64_t seen = m->notify_seq;
        while (!atomic_load(&m->stopping)) {
            int64_t until = last + m->o.linger_ms < first + cap ? last + m->o.linger_ms : first + cap;
            int64_t left = until - eg_mono_ms();
            if (left <= 0)
                break;
            eg_mono_deadline(&ts, left);
            pthread_cond_timedwait(&m->idle_cv, &m->mu, &ts);
            if (m->notify_seq != seen) {
                seen = m->notify_seq;
                last = eg_mono_ms();
            }
        }
        m->notify_served = m->notify_seq;
    }
    pthread_mutex_unlock(&m->mu);
}

static void stage_init(worker_stage *st)
{
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
}

static void stage_destroy(worker_stage *st)
{
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
}

/* Hand b to the stage; waits while it is busy with the previous batch. */
static void stage_put(worker_stage *st, worker_batch *b)
{
    pthread_mutex_lock(&st->mu);
    while (st->slot)
        pthread_cond_wait(&st->cv, &st->mu);
    st->slot = b;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

/* In the stage's thread: the next batch, or NULL once told to quit and idle. */
static worker_batch *stage_take(worker_stage *st)
{
    pthread_mutex_lock(&st->mu);
    while (!st->slot && !st->quit)
        pthread_cond_wait(&st->cv, &st->mu);
    worker_batch *b = st->slot;
    pthread_mutex_unlock(&st->mu);
    return b;
}

/* In the stage's thread: done with the batch taken; the slot is free. */
static void stage_done(worker_stage *st)
{
    pthread_mutex_lock(&st->mu);
    st->slot = NULL;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

/* Let the stage finish what it holds, then stop its thread. */
static void stage_stop(worker_stage *st)
{
    if (!st->started)
        return;
    pthread_mutex_lock(&st->mu);
    st->quit = true;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    pthread_join(st->th, NULL);
    st->started = false;
}

static void *completer_main(void *arg)
{
    worker_thread *w = arg;
    worker_batch *b;
    while ((b = stage_take(&w->completer)) != NULL) {
        worker__batch_finish(w->m, b);
        stage_done(&w->completer);
    }
    return NULL;
}

/* Give an embedded batch to the completer (waits while it is busy with the
 * previous one), or finish it here when there is no completer. */
static void hand_off(worker_thread *w, worker_batch *b)
{
    if (!w->completer.started) {
        worker__batch_finish(w->m, b);
        return;
    }
    stage_put(&w->completer, b);
}

static void *embedder_main(void *arg)
{
    worker_thread *w = arg;
    worker_batch *b;
    while ((b = stage_take(&w->embedder)) != NULL) {
        worker__batch_embed(w, b);
        hand_off(w, b);
        stage_done(&w->embedder);
    }
    return NULL;
}

/* Give a loaded batch to the embedder, or embed and hand it off here. */
static void feed(worker_thread *w, worker_batch *b)
{
    if (!w->embedder.started) {
        worker__batch_embed(w, b);
        hand_off(w, b);
        return;
    }
    stage_put(&w->embedder, b);
}

static void *worker_main(void *arg)
{
    worker_thread *w = arg;
    worker_manager *m = w->m;
    int64_t backoff = 0;
    /* Three stages per worker when pipelined: this thread leases and loads
     * batch k+2 while the embedder waits for the provider on batch k+1 and
     * the completer writes batch k, so the provider is never idle waiting
     * for database work (and the database never waits for the provider). */
    if (m->o.pipeline && pthread_create(&w->completer.th, NULL, completer_main, w) == 0) {
        w->completer.started = true;
        if (pthread_create(&w->embedder.th, NULL, embedder_main, w) == 0)
            w->embedder.started = true;
    }
    while (!atomic_load(&m->stopping)) {
        /* No point holding leases while the provider is paused. */
        if (worker_throttle_wait_unpaused(m->throttle, eg_mono_ms() + 200) == EG_ETIMEOUT)
            continue;
        /* Lease `prefetch` batches in one claim: the claim's commit is paid
         * once, and batch k+1's texts are ready when batch k's vectors are. */
        size_t want = (size_t)m->o.batch * (size_t)(m->o.prefetch > 0 ? m->o.prefetch : 1);
        if (want > QUEUE_LEASE_MAX)
            want = QUEUE_LEASE_MAX;
        queue_lease_opts lo = {.owner = m->owner, .max_jobs = want, .lease_ms = m->o.lease_ms, .model = m->model};
        queue_job *jobs = NULL;
        size_t n = 0;
        eg_error err;
        eg_error_clear(&err);
        if (queue_lease(m->store, &lo, &jobs, &n, &err) < 0) {
            backoff = backoff ? (backoff * 2 > 5000 ? 5000 : backoff * 2) : 200;
            eg_log_fields(EG_LOG_WARNING, "worker", "lease failed; backing off", "error", err.message, NULL);
            idle_wait(m, backoff);
            continue;
        }
        backoff = 0;
        if (n >= want)
            worker_manager_notify(m); /* likely more: wake a second worker to lease too */
        if (n == 0) {
            queue_jobs_free(jobs, n);
            idle_wait(m, m->o.poll_ms);
            continue;
        }
        if (register_leases(m, jobs, n) < 0)
            EG_WARN("worker", EG_OOM_TEXT " tracking leases; %zu jobs run without heartbeat", n);
        size_t bs = (size_t)m->o.batch;
        bool split = n > bs;
        for (size_t off = 0; off < n; off += bs) {
            size_t k = n - off < bs ? n - off : bs;
            queue_job *chunk = jobs;
            if (split) {
                if (!(chunk = eg_malloc(k * sizeof *chunk))) {
                    /* out of memory: drop these leases; they expire and come back */
                    worker__unregister_leases(m, jobs + off, k);
                    for (size_t i = off; i < off + k; i++)
                        queue_job_clear(&jobs[i]);
                    continue;
                }
                memcpy(chunk, jobs + off, k * sizeof *chunk); /* the strings move with the structs */
            }
            if (off > 0 && atomic_load(&m->stopping)) {
                /* shutting down: give back what was not started (no attempt spent) */
                queue_lease_ref *refs = eg_calloc(k, sizeof *refs);
                for (size_t i = 0; refs && i < k; i++) {
                    refs[i] = queue_job_ref(&chunk[i]);
                }
                if (refs && queue_release(m->store, m->owner, refs, k, 0, NULL, NULL) == 0) {
                    pthread_mutex_lock(&m->mu);
                    m->st.released += k;
                    pthread_mutex_unlock(&m->mu);
                }
                eg_free(refs);
                worker__unregister_leases(m, chunk, k);
                queue_jobs_free(chunk, k);
                continue;
            }
            worker_batch *b = worker__batch_load(w, chunk, k);
            if (!b) {
                /* not even the state: forget the leases, they expire and return */
                worker__unregister_leases(m, chunk, k);
                queue_jobs_free(chunk, k);
                continue;
            }
            feed(w, b);
        }
        if (split)
            eg_free(jobs); /* the array only: its strings went with the chunks */
        /* A short lease emptied the due part of the queue: another claim now
         * would find nothing and cost a commit.  Wait for the next write
         * (or the poll, for jobs of other processes and retries). */
        if (n < want)
            idle_wait(m, m->o.poll_ms);
    }
    /* The embedder hands its last batch to the completer: stop it first. */
    stage_stop(&w->embedder);
    stage_stop(&w->completer);
    return NULL;
}

static void *heartbeat_main(void *arg)
{
    worker_manager *m = arg;
    const queue_opts *qo = queue_store_opts(m->store);
    int64_t hb = m->o.heartbeat_ms > 0 ? m->o.heartbeat_ms : qo->heartbeat_ms;
    int64_t reclaim = m->o.reclaim_ms != 0 ? m->o.reclaim_ms : qo->reclaim_ms;
    int64_t next_hb = eg_mono_ms() + hb, next_reclaim = eg_mono_ms();
    int64_t prune_tick = m->o.prune_tick_ms != 0 ? m->o.prune_tick_ms : 30000;
    int64_t next_prune = eg_mono_ms() + (prune_tick > 0 ? prune_tick / 2 : 0);
    for (;;) {
        pthread_mutex_lock(&m->mu);
        bool quit = m->stopped;
        pthread_mutex_unlock(&m->mu);
        if (quit)
            break;
        int64_t now = eg_mono_ms();
        if (now >= next_hb) {
            next_hb = now + hb;
            pthread_mutex_lock(&m->mu);
            size_t n = m->nactive;
            worker_active_lease *snap = n ? eg_malloc(n * sizeof *snap) : NULL;
            if (snap)
                memcpy(snap, m->active, n * sizeof *snap);
            else
                n = 0;
            pthread_mutex_unlock(&m->mu);
            if (n) {
                queue_lease_ref *refs = eg_calloc(n, sizeof *refs);
                bool *lost = eg_calloc(n, sizeof *lost);
                if (refs && lost) {
                    for (size_t i = 0; i < n; i++) {
                        refs[i].id = snap[i].id;
                        refs[i].token = snap[i].token;
                    }
                    eg_error err;
                    eg_error_clear(&err);
                    if (queue_heartbeat(m->store, m->owner, refs, n, m->o.lease_ms, lost, NULL, &err) < 0) {
                        eg_log_fields(EG_LOG_WARNING, "worker", "heartbeat failed", "error", err.message, NULL);
                        next_hb = now + hb / 4 + 1; /* try again soon: leases are at stake */
                    } else {
                        /* A lease its worker finished (or began to finish) while the
                         * heartbeat ran shows as lost: only the ones still registered
                         * and not being finished really are.  The completion may commit
                         * before the worker unregisters, hence the finishing mark.
                         * Logged after unlocking: no I/O under the manager's mutex. */
                        pthread_mutex_lock(&m->mu);
                        for (size_t i = 0; i < n; i++) {
                            bool really = false;
                            for (size_t k = 0; lost[i] && k < m->nactive && !really; k++)
                                really = strcmp(m->active[k].id, snap[i].id) == 0 &&
                                         strcmp(m->active[k].token, snap[i].token) == 0 &&
                                         !m->active[k].finishing;
                            lost[i] = really;
                            if (really)
                                m->st.lost_heartbeats++;
                        }
                        pthread_mutex_unlock(&m->mu);
                        for (size_t i = 0; i < n; i++)
                            if (lost[i])
                                eg_log_fields(EG_LOG_WARNING, "worker", "lease lost (heartbeat)", "job",
                                              snap[i].id, NULL);
                    }
                }
                eg_free(refs);
                eg_free(lost);
            }
            eg_free(snap);
        }
        if (reclaim > 0 && now >= next_reclaim) {
            next_reclaim = now + reclaim;
            queue_reclaim_result rr = {0};
            eg_error err;
            eg_error_clear(&err);
            if (queue_reclaim_expired(m->store, 0, &rr, &err) == 0) {
                if (rr.requeued || rr.dead) {
                    char a[24], b[24];
                    snprintf(a, sizeof a, "%lld", (long long)rr.requeued);
                    snprintf(b, sizeof b, "%lld", (long long)rr.dead);
                    eg_log_fields(EG_LOG_NOTICE, "worker", "reclaimed expired leases", "requeued", a, "dead", b,
                                  NULL);
                }
            }
        }
        if (prune_tick > 0 && now >= next_prune) {
            /* Retention: one process per queue at a time wins the turn; a bounded
             * slice of work (10 batches or 1 s) keeps heartbeats on time. */
            bool ran = false;
            int64_t deleted = 0;
            eg_error err;
            eg_error_clear(&err);
            if (queue_prune_tick(m->store, 10, 1000, &ran, &deleted, &err) < 0)
                eg_log_fields(EG_LOG_WARNING, "worker", "pruning finished jobs failed", "error", err.message, NULL);
            if (ran && deleted > 0) {
                char d[24];
                snprintf(d, sizeof d, "%lld", (long long)deleted);
                eg_log_fields(EG_LOG_INFO, "worker", "pruned finished jobs past the retention", "deleted", d, NULL);
            }
            /* more may remain: come back soon (the turn was handed back if so) */
            next_prune = eg_mono_ms() + (ran && deleted > 0 ? (prune_tick < 1000 ? prune_tick : 1000) : prune_tick);
        }
        int64_t wake = next_hb;
        if (reclaim > 0 && next_reclaim < wake)
            wake = next_reclaim;
        int64_t left = wake - eg_mono_ms();
        if (left > 100)
            left = 100;
        if (left > 0)
            eg_sleep_ms(left);
    }
    return NULL;
}

/* ---- lifecycle -------------------------------------------------------- */

int worker_manager_new(worker_manager **out, const worker_opts *o, const embed_config *ecfg,
                       queue_store *store, worker_sink *sink, eg_error *err)
{
    *out = NULL;
    worker_manager *m = eg_calloc(1, sizeof *m);
    if (!m)
        return eg_error_oom(err);
    m->o = *o;
    if (m->o.batch <= 0)
        m->o.batch = 100;
    if (m->o.batch > QUEUE_LEASE_MAX)
        m->o.batch = QUEUE_LEASE_MAX;
    if (m->o.poll_ms <= 0)
        m->o.poll_ms = 1000;
    if (m->o.retry_base_ms <= 0)
        m->o.retry_base_ms = 500;
    if (m->o.provider_error_pause_ms <= 0)
        m->o.provider_error_pause_ms = 60000;
    if (m->o.unhealthy_failures <= 0)
        m->o.unhealthy_failures = 5;
    if (m->o.stall_ms <= 0)
        m->o.stall_ms = 300000;
    m->store = store;
    m->sink = sink;
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->idle_cv, &ca);
    pthread_cond_init(&m->done_cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&m->stopping, 0);
    if (o->owner && *o->owner) {
        snprintf(m->owner, sizeof m->owner, "%s", o->owner);
    } else {
        char host[64] = "host", rnd[9];
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        eg_rand_hex(rnd, 4);
        snprintf(m->owner, sizeof m->owner, "%s:%d:%s", host, (int)getpid(), rnd);
    }
    m->recent = eg_calloc(WORKER_RECENT_MAX, sizeof *m->recent);
    int rc = 0;
    if (!m->recent) {
        rc = eg_error_oom(err);
        goto fail;
    }
    if ((rc = worker_throttle_new(&m->throttle, &m->o.throttle, err)) < 0)
        goto fail;
    m->nw = o->concurrency > 0 ? o->concurrency : 0;
    m->w = eg_calloc((size_t)(m->nw ? m->nw : 1), sizeof *m->w);
    if (!m->w) {
        rc = eg_error_oom(err);
        goto fail;
    }
    /* Provider 0 always exists: model id and dims come from it. */
    for (int i = 0; i < (m->nw ? m->nw : 1); i++) {
        m->w[i].m = m;
        m->w[i].index = i;
        stage_init(&m->w[i].embedder);
        stage_init(&m->w[i].completer);
        if ((rc = embed_provider_new(&m->w[i].p, ecfg, err)) < 0)
            goto fail;
        embed_provider_set_gate(m->w[i].p, worker_throttle_gate(m->throttle));
        embed_provider_set_cancel(m->w[i].p, &m->abort_flag);
    }
    snprintf(m->model, sizeof m->model, "%s", embed_provider_model(m->w[0].p));
    m->dims = embed_provider_dims(m->w[0].p);
    m->kind = ecfg->kind;
    m->st.concurrency = m->nw;
    snprintf(m->st.model, sizeof m->st.model, "%s", m->model);
    snprintf(m->st.provider, sizeof m->st.provider, "%s", embed_kind_name(m->kind));
    snprintf(m->st.fallback, sizeof m->st.fallback, "%s", ecfg->fallback ? ecfg->fallback : "");
    snprintf(m->st.owner, sizeof m->st.owner, "%s", m->owner);
    m->st.dims = m->dims;
    *out = m;
    return 0;
fail:
    worker_manager_free(m);
    return rc;
}

int worker_manager_start(worker_manager *m, eg_error *err)
{
    int idx = 0;
    int rc = m->sink->vt->index_dims ? m->sink->vt->index_dims(m->sink, &idx, err) : 0;
    if (rc < 0)
        return rc;
    if (idx > 0 && idx != m->dims)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "embedding dimension mismatch: provider %s model %s produces %d dimensions but "
                            "the vector index has %d; set ENGRAM_EMBED_DIMENSIONS (or NEO4J_VECTOR_DIMENSIONS) "
                            "to match, or recreate the index",
                            embed_kind_name(m->kind), m->model, m->dims, idx);
    m->st.started_wall_ms = eg_wall_ms();
    /* On a failure, the threads already running are stopped and joined
     * (stop acts only on a started manager), and no worker runs without
     * the heartbeat that keeps its leases. */
    for (int i = 0; i < m->nw; i++) {
        if (pthread_create(&m->w[i].th, NULL, worker_main, &m->w[i]) != 0) {
            m->started = true;
            worker_manager_stop(m, 0);
            return eg_error_set(err, EG_EINTERNAL, EG_CLASS_NONE, "cannot start worker thread");
        }
        m->w[i].started = true;
    }
    m->started = true;
    if (pthread_create(&m->hb, NULL, heartbeat_main, m) != 0) {
        worker_manager_stop(m, 0);
        return eg_error_set(err, EG_EINTERNAL, EG_CLASS_NONE, "cannot start the heartbeat thread");
    }
    m->hb_started = true;
    char c[16], b[16], d[16];
    snprintf(c, sizeof c, "%d", m->nw);
    snprintf(b, sizeof b, "%d", m->o.batch);
    snprintf(d, sizeof d, "%d", m->dims);
    eg_log_fields(EG_LOG_INFO, "worker", "embedding workers started", "owner", m->owner, "workers", c, "batch",
                  b, "provider", embed_kind_name(m->kind), "model", m->model, "dims", d, NULL);
    return 0;
}

void worker_manager_notify(worker_manager *m)
{
    pthread_mutex_lock(&m->mu);
    m->notify_seq++;
    pthread_cond_broadcast(&m->idle_cv);
    pthread_mutex_unlock(&m->mu);
}

static bool all_done(worker_manager *m, const char *const *ids, size_t n)
{
    size_t lim = m->recent_next < WORKER_RECENT_MAX ? m->recent_next : WORKER_RECENT_MAX;
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t k = 0; k < lim && !found; k++)
            found = strcmp(m->recent[k], ids[i]) == 0;
        if (!found)
            return false;
    }
    return true;
}

int worker_manager_wait_jobs(worker_manager *m, const char *const *ids, size_t n, int64_t timeout_ms)
{
    worker_manager_notify(m);
    int64_t end = eg_mono_ms() + timeout_ms;
    int rc = EG_ETIMEOUT;
    pthread_mutex_lock(&m->mu);
    for (;;) {
        if (all_done(m, ids, n)) {
            rc = 0;
            break;
        }
        int64_t left = end - eg_mono_ms();
        if (left <= 0 || m->nw == 0 || atomic_load(&m->stopping))
            break;
        struct timespec ts;
        eg_mono_deadline(&ts, left);
        pthread_cond_timedwait(&m->done_cv, &m->mu, &ts);
    }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

void worker_manager_stop(worker_manager *m, int64_t deadline_ms)
{
    if (!m || !m->started || m->stopped)
        return;
    if (deadline_ms < 0)
        deadline_ms = m->o.stop_deadline_ms;
    atomic_store(&m->stopping, 1);
    worker_manager_notify(m);
    /* In-flight batches may finish until the deadline. */
    int64_t end = eg_mono_ms() + deadline_ms;
    for (;;) {
        pthread_mutex_lock(&m->mu);
        int64_t inflight = m->st.in_flight;
        pthread_mutex_unlock(&m->mu);
        if (inflight == 0 || eg_mono_ms() >= end)
            break;
        eg_sleep_ms(20);
    }
    /* Then abort provider calls and throttle waits: those batches release. */
    atomic_store(&m->abort_flag, 1);
    worker_throttle_stop(m->throttle);
    for (int i = 0; i < m->nw; i++)
        if (m->w[i].started)
            pthread_join(m->w[i].th, NULL);
    pthread_mutex_lock(&m->mu);
    m->stopped = true;
    pthread_mutex_unlock(&m->mu);
    if (m->hb_started)
        pthread_join(m->hb, NULL);
    worker_stats st;
    worker_manager_get_stats(m, &st);
    char a[24], b[24], c[24];
    snprintf(a, sizeof a, "%llu", (unsigned long long)st.completed);
    snprintf(b, sizeof b, "%llu", (unsigned long long)st.released);
    snprintf(c, sizeof c, "%llu", (unsigned long long)st.dead);
    eg_log_fields(EG_LOG_INFO, "worker", "embedding workers stopped", "completed", a, "released", b, "dead", c,
                  NULL);
}

void worker_manager_free(worker_manager *m)
{
    if (!m)
        return;
    if (m->started && !m->stopped)
        worker_manager_stop(m, 0);
    for (int i = 0; m->w && i < (m->nw ? m->nw : 1); i++) {
        embed_provider_free(m->w[i].p);
        if (m->w[i].m) {
            stage_destroy(&m->w[i].embedder);
            stage_destroy(&m->w[i].completer);
        }
    }
    eg_free(m->w);
    worker_throttle_free(m->throttle);
    eg_free(m->recent);
    eg_free(m->active);
    pthread_cond_destroy(&m->idle_cv);
    pthread_cond_destroy(&m->done_cv);
    pthread_mutex_destroy(&m->mu);
    eg_free(m);
}

int worker_manager_drain(worker_manager *m, int64_t timeout_ms)
{
    int64_t end = eg_mono_ms() + timeout_ms;
    for (;;) {
        queue_status qs;
        memset(&qs, 0, sizeof qs);
        /* The store says "done" as soon as a batch's completion commits;
         * its worker still records failures, releases and stats after
         * that.  Drained means both: nothing left in the store and no
         * batch of ours still finishing, so a caller that reads the
         * stats (or exits) next sees the whole of the work. */
        pthread_mutex_lock(&m->mu);
        int64_t finishing = m->st.in_flight;
        pthread_mutex_unlock(&m->mu);
        if (finishing == 0 && queue_status_get(m->store, &qs, NULL) == 0) {
            int64_t left = qs.count[QUEUE_PENDING] + qs.count[QUEUE_LEASED];
            queue_status_clear(&qs);
            if (left == 0)
                return 0;
        }
        if (eg_mono_ms() >= end)
            return EG_ETIMEOUT;
        eg_sleep_ms(50);
    }
}

void worker_manager_get_stats(worker_manager *m, worker_stats *out)
{
    pthread_mutex_lock(&m->mu);
    *out = m->st;
    pthread_mutex_unlock(&m->mu);
    worker_throttle_get_stats(m->throttle, &out->throttle);
}

queue_store *worker_manager_store(worker_manager *m) { return m->store; }
const char *worker_manager_model(const worker_manager *m) { return m->model; }
const worker_opts *worker_manager_opts(worker_manager *m) { return &m->o; }
