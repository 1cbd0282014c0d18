/*
 * throttle.c - token buckets and the shared pause (see throttle.h).
 *
 * One mutex and one condition variable (on CLOCK_MONOTONIC).  Waiters sleep
 * until the earliest time their request could pass; report()/pause()/stop()
 * broadcast so nobody sleeps through a change.
 */
#include "worker/throttle.h"

#include "core/alloc.h"
#include "core/env.h"
#include "core/clock.h"
#include "core/log.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct worker_throttle {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    worker_throttle_opts o;
    double req_level, req_cap, req_rate; /* tokens per ms */
    double tok_level, tok_cap, tok_rate;
    int64_t last_refill_us;
    int64_t paused_until_ms;             /* monotonic */
    char pause_reason[128];
    bool stopped;
    worker_throttle_stats st;
    embed_gate gate;
};

/* Rates, bursts and waits: any non-negative number. */
static int env_rate(const char *name, double *out, eg_error *err)
{
    return eg_env_double(name, 0, INFINITY, out, err);
}

int worker_throttle_opts_from_env(worker_throttle_opts *out, embed_kind kind, eg_error *err)
{
    memset(out, 0, sizeof *out);
    out->interval_ms = 60000;
    out->max_inline_wait_ms = 30000;
    if (kind == EMBED_PROVIDER_OPENAI) {
        out->requests_per_interval = 3000;
        out->tokens_per_interval = 1000000;
    }
    double v;
    int rc;
    double memento_tokens = 0, memento_interval = 0;
    if ((rc = env_rate("EMBEDDING_RATE_LIMIT_TOKENS", &memento_tokens, err)) < 0)
        return rc;
    bool have_memento = rc == 1;
    if ((rc = env_rate("EMBEDDING_RATE_LIMIT_INTERVAL", &memento_interval, err)) < 0)
        return rc;
    if (have_memento || rc == 1) {
        if (!have_memento)
            memento_tokens = 20;
        if (rc != 1)
            memento_interval = 60000;
        if (memento_interval < 1)
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "EMBEDDING_RATE_LIMIT_INTERVAL must be >= 1 ms");
        /* Keep memento's interval so "N per interval" holds exactly. */
        out->requests_per_interval = memento_tokens;
        out->interval_ms = (int64_t)memento_interval;
        out->tokens_per_interval = out->tokens_per_interval * (double)out->interval_ms / 60000.0;
    }
    if ((rc = env_rate("ENGRAM_RATE_LIMIT_RPM", &v, err)) < 0)
        return rc;
    if (rc == 1)
        out->requests_per_interval = v * (double)out->interval_ms / 60000.0;
    if ((rc = env_rate("ENGRAM_RATE_LIMIT_TPM", &v, err)) < 0)
        return rc;
    if (rc == 1)
        out->tokens_per_interval = v * (double)out->interval_ms / 60000.0;
    if ((rc = env_rate("ENGRAM_RATE_LIMIT_BURST", &v, err)) < 0)
        return rc;
    if (rc == 1)
        out->burst = v;
    if ((rc = env_rate("ENGRAM_MAX_INLINE_WAIT_MS", &v, err)) < 0)
        return rc;
    if (rc == 1)
        out->max_inline_wait_ms = v > 0 ? (int64_t)v : -1;
    return 0;
}

static int64_t pause_remaining(worker_throttle *t)
{
    pthread_mutex_lock(&t->mu);
    int64_t rem = t->paused_until_ms - eg_mono_ms();
    pthread_mutex_unlock(&t->mu);
    return rem > 0 ? rem : 0;
}

/* The gate: wait for the buckets and the pause, but no longer than the
 * inline cap; past it return how long to stay away (> 0, see embed_gate). */
static int gate_before(void *ctx, long est)
{
    worker_throttle *t = ctx;
    int64_t cap = t->o.max_inline_wait_ms;
    if (cap <= 0)
        return worker_throttle_acquire(t, est, 0);
    int64_t rem = pause_remaining(t);
    if (rem <= cap) {
        int rc = worker_throttle_acquire(t, est, eg_mono_ms() + cap);
        if (rc != EG_ETIMEOUT)
            return rc;
        rem = pause_remaining(t);
        if (rem <= 0)
            rem = cap; /* the buckets alone kept it waiting: come back later */
    }
    return rem > INT32_MAX ? INT32_MAX : (int)rem;
}

static void gate_after(void *ctx, const embed_status *st, int64_t us, long tokens)
{
    (void)us, (void)tokens;
    worker_throttle_report(ctx, st);
}

int worker_throttle_new(worker_throttle **out, const worker_throttle_opts *o, eg_error *err)
{
    *out = NULL;
    worker_throttle *t = eg_calloc(1, sizeof *t);
    if (!t)
        return eg_error_oom(err);
    t->o = *o;
    if (t->o.interval_ms <= 0)
        t->o.interval_ms = 60000;
    if (t->o.default_pause_ms <= 0)
        t->o.default_pause_ms = 2000;
    double iv = (double)t->o.interval_ms;
    t->req_rate = t->o.requests_per_interval > 0 ? t->o.requests_per_interval / iv : 0;
    t->req_cap = t->o.burst > 0 ? t->o.burst : 1.0;
    t->req_level = t->req_cap;
    t->tok_rate = t->o.tokens_per_interval > 0 ? t->o.tokens_per_interval / iv : 0;
    t->tok_cap = t->o.tokens_per_interval > 0 ? t->o.tokens_per_interval * 1000.0 / iv : 0;
    if (t->tok_cap < 1)
        t->tok_cap = 1;
    t->tok_level = t->tok_cap;
    t->last_refill_us = eg_mono_us();
    pthread_mutex_init(&t->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    t->gate.before = gate_before;
    t->gate.after = gate_after;
    t->gate.ctx = t;
    *out = t;
    return 0;
}

void worker_throttle_free(worker_throttle *t)
{
    if (!t)
        return;
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    eg_free(t);
}

const embed_gate *worker_throttle_gate(worker_throttle *t) { return &t->gate; }

static void refill(worker_throttle *t, int64_t now_us)
{
    double dt_ms = (double)(now_us - t->last_refill_us) / 1000.0;
    if (dt_ms <= 0)
        return;
    t->last_refill_us = now_us;
    if (t->req_rate > 0) {
        t->req_level += dt_ms * t->req_rate;
        if (t->req_level > t->req_cap)
            t->req_level = t->req_cap;
    }
    if (t->tok_rate > 0) {
        t->tok_level += dt_ms * t->tok_rate;
        if (t->tok_level > t->tok_cap)
            t->tok_level = t->tok_cap;
    }
}

/* Sleep on the condvar until monotonic ms `until` (or a broadcast). */
static void wait_until(worker_throttle *t, int64_t until_ms)
{
    struct timespec ts = {.tv_sec = until_ms / 1000, .tv_nsec = (until_ms % 1000) * 1000000};
    pthread_cond_timedwait(&t->cv, &t->mu, &ts);
}

int worker_throttle_acquire(worker_throttle *t, long est_tokens, int64_t deadline_ms)
{
    int64_t start = eg_mono_us();
    int rc = 0;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        if (t->stopped) {
            rc = EG_ECANCELED;
            break;
        }
        int64_t now_us = eg_mono_us();
        int64_t now_ms = now_us / 1000;
        refill(t, now_us);
        int64_t wake = 0;
        if (t->paused_until_ms > now_ms) {
            wake = t->paused_until_ms;
        } else {
            /* Requests need a whole token; tokens may overdraw once >= 0. */
            double need_req = t->req_rate > 0 ? 1.0 - t->req_level : 0;
            double need_tok = t->tok_rate > 0 ? -t->tok_level : 0;
            if (need_req <= 1e-9 && need_tok <= 1e-9) {
                if (t->req_rate > 0)
                    t->req_level -= 1.0;
                if (t->tok_rate > 0)
                    t->tok_level -= (double)(est_tokens > 0 ? est_tokens : 1);
                t->st.acquired++;
                break;
            }
            double ms = 0;
            if (need_req > 0 && need_req / t->req_rate > ms)
                ms = need_req / t->req_rate;
            if (need_tok > 0 && need_tok / t->tok_rate > ms)
                ms = need_tok / t->tok_rate;
            wake = now_ms + (int64_t)ms + 1;
        }
        if (deadline_ms > 0 && now_ms >= deadline_ms) {
            rc = EG_ETIMEOUT;
            break;
        }
        if (deadline_ms > 0 && wake > deadline_ms)
            wake = deadline_ms;
        wait_until(t, wake);
    }
    t->st.waited_us += eg_mono_us() - start;
    pthread_mutex_unlock(&t->mu);
    return rc;
}

int worker_throttle_wait_unpaused(worker_throttle *t, int64_t deadline_ms)
{
    int rc = 0;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        if (t->stopped) {
            rc = EG_ECANCELED;
            break;
        }
        int64_t now = eg_mono_ms();
        if (t->paused_until_ms <= now)
            break;
        if (deadline_ms > 0 && now >= deadline_ms) {
            rc = EG_ETIMEOUT;
            break;
        }
        int64_t wake = t->paused_until_ms;
        if (deadline_ms > 0 && wake > deadline_ms)
            wake = deadline_ms;
        wait_until(t, wake);
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

void worker_throttle_pause(worker_throttle *t, int64_t ms, const char *why)
{
    if (ms <= 0)
        return;
    pthread_mutex_lock(&t->mu);
    int64_t until = eg_mono_ms() + ms;
    bool started = t->paused_until_ms <= eg_mono_ms();
    if (until > t->paused_until_ms) {
        t->paused_until_ms = until;
        snprintf(t->pause_reason, sizeof t->pause_reason, "%s", why ? why : "");
    }
    if (started)
        t->st.pauses++;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    if (started) {
        char b[32];
        snprintf(b, sizeof b, "%lld", (long long)ms);
        eg_log_fields(EG_LOG_WARNING, "throttle", "provider paused for all workers", "pause_ms", b,
                      "reason", why, NULL);
    }
}

void worker_throttle_report(worker_throttle *t, const embed_status *st)
{
    if (st && st->kind == EMBED_E_RATE_LIMIT) {
        int64_t ms = st->retry_after_ms > 0 ? st->retry_after_ms : t->o.default_pause_ms;
        worker_throttle_pause(t, ms, "rate limited (429)");
    }
}

void worker_throttle_stop(worker_throttle *t)
{
    pthread_mutex_lock(&t->mu);
    t->stopped = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

void worker_throttle_get_stats(worker_throttle *t, worker_throttle_stats *out)
{
    pthread_mutex_lock(&t->mu);
    *out = t->st;
    int64_t now = eg_mono_ms();
    out->paused_remaining_ms = t->paused_until_ms > now ? t->paused_until_ms - now : 0;
    snprintf(out->pause_reason, sizeof out->pause_reason, "%s",
             out->paused_remaining_ms ? t->pause_reason : "");
    pthread_mutex_unlock(&t->mu);
}
