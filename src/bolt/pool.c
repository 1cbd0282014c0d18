/*
 * pool.c - connection pool and managed transactions (see pool.h).
 *
 * Bookkeeping under one mutex: `idle` is a LIFO stack (the most recently
 * used connection is the warmest and least likely to have been dropped by
 * a middlebox), `in_use` counts borrowed connections plus slots reserved by
 * threads that are opening one.  Opening, pinging and closing (network I/O)
 * always happen outside the lock; a condition variable wakes waiters when a
 * connection comes back or a slot frees up.
 *
 * Health on acquire, cheapest first:
 *   1. older than max_lifetime_ms            -> close, try the next
 *   2. socket readable while idle (EOF, RST,
 *      or unsolicited bytes)                 -> RESET ping; failure -> close
 *   3. idle longer than liveness_check_ms    -> RESET ping; failure -> close
 * Step 2 is a zero-timeout poll(): it is what makes a server restart
 * invisible to callers, because the dead connections are discarded before
 * anyone runs a query on them.
 *
 * Retry (bolt_pool_execute_*): attempt = acquire, BEGIN, fn, COMMIT.  On an
 * error with err.retryable (transient Neo4j errors except
 * Transaction.Terminated / LockClientStopped, and connection errors), or
 * Security.AuthorizationExpired (the connection is dropped, a new one logs in), the
 * connection is released (rolled back, or dropped when defunct) and the
 * attempt repeats after a delay: initial_delay * multiplier^n, capped at
 * max_delay, times a random factor in [1-jitter, 1+jitter], as long as the
 * total time stays within max_retry_time_ms.
 */
#include "bolt/pool.h"

#include "bolt/conn_int.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

struct bolt_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bolt_config cfg;   /* strings below are owned copies */
    char *s[7];
    bolt_pool_opts opts;
    bolt_conn **idle;
    size_t nidle;
    size_t in_use;
    bolt_pool_stats st;
};

static char *dup_opt(const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *d = eg_strdup(s);
    if (!d)
        *oom = true;
    return d;
}

int bolt_pool_new(bolt_pool **out, const bolt_config *cfg, const bolt_pool_opts *opts, eg_error *err)
{
    *out = NULL;
    if (!cfg || !cfg->uri)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "no Neo4j URI configured");
    bolt_pool *p = eg_calloc(1, sizeof *p);
    if (!p)
        return eg_error_oom(err);
    p->opts = opts ? *opts : (bolt_pool_opts)BOLT_POOL_OPTS_INIT;
    if (p->opts.max_size == 0)
        p->opts.max_size = 16;
    if (p->opts.acquire_timeout_ms <= 0)
        p->opts.acquire_timeout_ms = 30000;
    if (p->opts.liveness_check_ms == 0)
        p->opts.liveness_check_ms = 30000;
    if (p->opts.max_lifetime_ms <= 0)
        p->opts.max_lifetime_ms = 3600 * 1000;
    p->cfg = *cfg;
    bool oom = false;
    p->cfg.uri = p->s[0] = dup_opt(cfg->uri, &oom);
    p->cfg.user = p->s[1] = dup_opt(cfg->user, &oom);
    p->cfg.password = p->s[2] = dup_opt(cfg->password, &oom);
    p->cfg.token = p->s[3] = dup_opt(cfg->token, &oom);
    p->cfg.user_agent = p->s[4] = dup_opt(cfg->user_agent, &oom);
    p->cfg.database = p->s[5] = dup_opt(cfg->database, &oom);
    p->cfg.ca_file = p->s[6] = dup_opt(cfg->ca_file, &oom);
    p->idle = eg_calloc(p->opts.max_size, sizeof *p->idle);
    if (oom || !p->idle) {
        bolt_pool_free(p);
        return eg_error_oom(err);
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    *out = p;
    return 0;
}

void bolt_pool_free(bolt_pool *p)
{
    if (!p)
        return;
    if (p->idle) {
        for (size_t i = 0; i < p->nidle; i++)
            bolt_conn_free(p->idle[i]);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
    }
    eg_free(p->idle);
    if (p->s[2])
        memset(p->s[2], 0, strlen(p->s[2])); /* do not leave the password in freed memory */
    if (p->s[3])
        memset(p->s[3], 0, strlen(p->s[3]));
    for (size_t i = 0; i < sizeof p->s / sizeof p->s[0]; i++)
        eg_free(p->s[i]);
    eg_free(p);
}

/* Close a connection that held a slot (outside the lock). */
static void drop(bolt_pool *p, bolt_conn *c)
{
    bolt_conn_free(c);
    pthread_mutex_lock(&p->mu);
    p->in_use--;
    p->st.closed++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Is this idle connection fit to hand out?  May ping (I/O). */
static bool healthy(bolt_pool *p, bolt_conn *c, int64_t now)
{
    if (c->defunct)
        return false;
    if (now - c->created_ms > p->opts.max_lifetime_ms)
        return false;
    bool ping = bolt_conn__probe_suspicious(c) ||
                (p->opts.liveness_check_ms >= 0 && now - c->idle_since_ms > p->opts.liveness_check_ms);
    if (ping) {
        eg_error e;
        if (bolt_conn_reset(c, &e) < 0) {
            EG_DEBUG("bolt", "pool: dropping a dead idle connection: %s", e.message);
            return false;
        }
    }
    return true;
}

static void ts_at(struct timespec *ts, int64_t deadline_ms)
{
    ts->tv_sec = (time_t)(deadline_ms / 1000);
    ts->tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
}

int bolt_pool_acquire(bolt_pool *p, bolt_conn **out, eg_error *err)
{
    *out = NULL;
    int64_t deadline = eg_mono_ms() + p->opts.acquire_timeout_ms;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->nidle > 0) {
            bolt_conn *c = p->idle[--p->nidle];
            p->in_use++;
            pthread_mutex_unlock(&p->mu);
            if (healthy(p, c, eg_mono_ms())) {
                *out = c;
                return 0;
            }
            drop(p, c);
            pthread_mutex_lock(&p->mu);
            continue;
        }
        if (p->in_use < p->opts.max_size) {
            p->in_use++; /* reserve the slot while connecting */
            pthread_mutex_unlock(&p->mu);
            bolt_conn *c = NULL;
            int rc = bolt_conn_open(&c, &p->cfg, err);
            pthread_mutex_lock(&p->mu);
            if (rc < 0) {
                p->in_use--;
                pthread_cond_signal(&p->cv);
                pthread_mutex_unlock(&p->mu);
                return rc;
            }
            p->st.opened++;
            pthread_mutex_unlock(&p->mu);
            *out = c;
            return 0;
        }
        struct timespec ts;
        ts_at(&ts, deadline);
        int w = pthread_cond_timedwait(&p->cv, &p->mu, &ts);
        if (w == ETIMEDOUT && p->nidle == 0 && p->in_use >= p->opts.max_size) {
            p->st.acquire_timeouts++;
            pthread_mutex_unlock(&p->mu);
            return eg_error_set(err, EG_ETIMEOUT, EG_CLASS_CLIENT,
                                "no Neo4j connection became free within %d ms (pool size %zu)",
                                p->opts.acquire_timeout_ms, p->opts.max_size);
        }
    }
}

void bolt_pool_release(bolt_pool *p, bolt_conn *c)
{
    if (!c)
        return;
    bool keep = !c->defunct && !c->poisoned && c->nopen == 0;
    if (keep && c->tx != BOLT_TX_NONE) {
        eg_error e;
        keep = bolt_conn_rollback(c, &e) == 0 && !c->defunct;
    }
    if (keep && (c->failed || !bolt_conn__queue_empty(c) || c->out.len > 0)) {
        eg_error e;
        keep = bolt_conn_reset(c, &e) == 0;
    }
    int64_t now = eg_mono_ms();
    if (keep && now - c->created_ms > p->opts.max_lifetime_ms)
        keep = false;
    if (!keep) {
        drop(p, c);
        return;
    }
    c->idle_since_ms = now;
    pthread_mutex_lock(&p->mu);
    p->idle[p->nidle++] = c;
    p->in_use--;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

int bolt_pool_verify(bolt_pool *p, eg_error *err)
{
    bolt_conn *c;
    int rc = bolt_pool_acquire(p, &c, err);
    if (rc < 0)
        return rc;
    bolt_pool_release(p, c);
    return 0;
}

void bolt_pool_get_stats(bolt_pool *p, bolt_pool_stats *out)
{
    pthread_mutex_lock(&p->mu);
    *out = p->st;
    out->idle = p->nidle;
    out->in_use = p->in_use;
    out->size = p->nidle + p->in_use;
    pthread_mutex_unlock(&p->mu);
}

/* ------------------------------------------------------- managed tx */

static int execute(bolt_pool *p, const bolt_tx_opts *tx, const bolt_retry_opts *retry, bool read_only,
                   bolt_work_fn fn, void *payload, eg_error *err)
{
    bolt_retry_opts r = retry ? *retry : (bolt_retry_opts)BOLT_RETRY_OPTS_INIT;
    if (r.max_retry_time_ms <= 0)
        r.max_retry_time_ms = 30000;
    if (r.initial_delay_ms <= 0)
        r.initial_delay_ms = 50;
    if (r.max_delay_ms <= 0)
        r.max_delay_ms = 2000;
    if (r.multiplier <= 0)
        r.multiplier = 2.0;
    if (r.jitter <= 0)
        r.jitter = 0.2;
    bolt_tx_opts o = tx ? *tx : (bolt_tx_opts)BOLT_TX_OPTS_INIT;
    o.read_only = read_only;
    int64_t start = eg_mono_ms();
    double delay = (double)r.initial_delay_ms;
    eg_error e;
    for (int attempt = 1;; attempt++) {
        eg_error_clear(&e);
        bolt_conn *c = NULL;
        int rc = bolt_pool_acquire(p, &c, &e);
        if (rc == 0) {
            rc = bolt_conn_begin(c, &o, &e);
            if (rc == 0)
                rc = fn(c, payload, &e);
            if (rc >= 0) {
                int crc = bolt_conn_commit(c, NULL, &e);
                if (crc < 0)
                    rc = crc;
            }
            bolt_pool_release(p, c);
        }
        if (rc >= 0) {
            if (attempt > 1)
                EG_DEBUG("bolt", "managed transaction succeeded after %d attempts", attempt);
            return rc;
        }
        if (e.code == 0)
            eg_error_set(&e, rc, EG_CLASS_NONE, "unit of work failed (%s)", eg_strerror(rc));
        /* AuthorizationExpired: the connection was dropped on release; a new
         * one authenticates afresh (the official drivers retry it too). */
        bool retryable = e.retryable ||
                         strcmp(e.neo4j_code, "Neo.ClientError.Security.AuthorizationExpired") == 0;
        if (!retryable) {
            eg_error_copy(err, &e);
            return rc;
        }
        double f = 1.0 + r.jitter * (2.0 * eg_rand_unit() - 1.0);
        int64_t wait = (int64_t)(delay * f);
        int64_t elapsed = eg_mono_ms() - start;
        if (elapsed + wait > r.max_retry_time_ms) {
            EG_WARN("bolt", "giving up a managed transaction after %d attempts in %lld ms: %s%s%s",
                    attempt, (long long)elapsed, e.neo4j_code, e.neo4j_code[0] ? ": " : "", e.message);
            eg_error_copy(err, &e);
            eg_error_prefix(err, "gave up after %d attempts", attempt);
            return rc;
        }
        pthread_mutex_lock(&p->mu);
        p->st.retries++;
        pthread_mutex_unlock(&p->mu);
        /* Warn on the third failure and every tenth after it; debug otherwise. */
        eg_log(attempt == 3 || (attempt > 3 && attempt % 10 == 0) ? EG_LOG_WARNING : EG_LOG_DEBUG, "bolt",
               "retrying a managed transaction in %lld ms (attempt %d failed: %s%s%s)", (long long)wait,
               attempt, e.neo4j_code, e.neo4j_code[0] ? ": " : "", e.message);
        eg_sleep_ms(wait);
        delay *= r.multiplier;
        if (delay > (double)r.max_delay_ms)
            delay = (double)r.max_delay_ms;
    }
}

int bolt_pool_execute_write(bolt_pool *p, const bolt_tx_opts *tx, const bolt_retry_opts *retry,
                            bolt_work_fn fn, void *payload, eg_error *err)
{
    return execute(p, tx, retry, false, fn, payload, err);
}

int bolt_pool_execute_read(bolt_pool *p, const bolt_tx_opts *tx, const bolt_retry_opts *retry,
                           bolt_work_fn fn, void *payload, eg_error *err)
{
    return execute(p, tx, retry, true, fn, payload, err);
}
