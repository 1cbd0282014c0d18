/*
 * pool.c - connection pool, routing and managed transactions (see pool.h).
 *
 * A bolt:// pool is one per-server pool (`spool`).  A neo4j:// pool is a set
 * of them, one per cluster member, plus a routing table per database
 * (route.h) and the bookmarks of its commits; docs/internals/bolt.md
 * ("Routing") describes refreshes, access modes and failover.  Locks: the
 * routing mutex `rmu` (tables, members, bookmarks) may be held while taking
 * a member's mutex, never the other way round; `refresh_mu` serialises
 * ROUTE round trips, which run with neither held.
 *
 * Per-server bookkeeping under one mutex: `idle` is a LIFO stack (the most recently
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
#include "bolt/route.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------- one server's pool */

static char *dup_opt(const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *d = eg_strdup(s);
    if (!d)
        *oom = true;
    return d;
}

typedef struct spool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bolt_config cfg;          /* the pool's, with uri = this server's */
    char *uri;                /* owned (routed servers), else NULL */
    char *address;            /* owned; routing table address, NULL for bolt:// */
    const bolt_pool_opts *opts;
    bolt_conn **idle;
    size_t nidle;
    size_t in_use;
    bool active;              /* in a routing table; an inactive pool keeps nothing idle */
    bolt_pool_stats st;
} spool;

static void spool_free(spool *sp)
{
    if (!sp)
        return;
    if (sp->idle) {
        for (size_t i = 0; i < sp->nidle; i++)
            bolt_conn_free(sp->idle[i]);
        pthread_mutex_destroy(&sp->mu);
        pthread_cond_destroy(&sp->cv);
    }
    eg_free(sp->idle);
    eg_free(sp->uri);
    eg_free(sp->address);
    eg_free(sp);
}

/* New server pool; `uri` and `address` are copied (NULL: the config's uri). */
static spool *spool_new(const bolt_config *cfg, const bolt_pool_opts *opts, const char *uri, const char *address)
{
    spool *sp = eg_calloc(1, sizeof *sp);
    if (!sp)
        return NULL;
    sp->cfg = *cfg;
    sp->opts = opts;
    sp->active = true;
    bool oom = false;
    if (uri)
        sp->cfg.uri = sp->uri = dup_opt(uri, &oom);
    sp->address = dup_opt(address, &oom);
    sp->idle = eg_calloc(opts->max_size, sizeof *sp->idle);
    if (oom || !sp->idle) {
        eg_free(sp->idle);
        sp->idle = NULL;
        spool_free(sp);
        return NULL;
    }
    pthread_mutex_init(&sp->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sp->cv, &ca);
    pthread_condattr_destroy(&ca);
    return sp;
}

/* Close a connection that held a slot (outside the lock). */
static void drop(spool *sp, bolt_conn *c)
{
    bolt_conn_free(c);
    pthread_mutex_lock(&sp->mu);
    sp->in_use--;
    sp->st.closed++;
    pthread_cond_signal(&sp->cv);
    pthread_mutex_unlock(&sp->mu);
}

/* Is this idle connection fit to hand out?  May ping (I/O). */
static bool healthy(spool *sp, bolt_conn *c, int64_t now)
{
    if (c->defunct)
        return false;
    if (now - c->created_ms > sp->opts->max_lifetime_ms)
        return false;
    bool ping = bolt_conn__probe_suspicious(c) ||
                (sp->opts->liveness_check_ms >= 0 && now - c->idle_since_ms > sp->opts->liveness_check_ms);
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

/* wait: whether to wait for a connection when all max_size are in use (else fail at once). */
static int spool_acquire_wait(spool *sp, bool wait, bolt_conn **out, eg_error *err)
{
    *out = NULL;
    int timeout_ms = wait ? sp->opts->acquire_timeout_ms : 0;
    int64_t deadline = eg_mono_ms() + timeout_ms;
    pthread_mutex_lock(&sp->mu);
    for (;;) {
        if (sp->nidle > 0) {
            bolt_conn *c = sp->idle[--sp->nidle];
            sp->in_use++;
            pthread_mutex_unlock(&sp->mu);
            if (healthy(sp, c, eg_mono_ms())) {
                c->owner = sp;
                c->owner_fails = c->nfailures;
                *out = c;
                return 0;
            }
            drop(sp, c);
            pthread_mutex_lock(&sp->mu);
            continue;
        }
        if (sp->in_use < sp->opts->max_size) {
            sp->in_use++; /* reserve the slot while connecting */
            pthread_mutex_unlock(&sp->mu);
            bolt_conn *c = NULL;
            int rc = bolt_conn_open(&c, &sp->cfg, err);
            pthread_mutex_lock(&sp->mu);
            if (rc < 0) {
                sp->in_use--;
                pthread_cond_signal(&sp->cv);
                pthread_mutex_unlock(&sp->mu);
                return rc;
            }
            sp->st.opened++;
            pthread_mutex_unlock(&sp->mu);
            c->owner = sp;
            c->owner_fails = c->nfailures;
            *out = c;
            return 0;
        }
        struct timespec ts;
        ts_at(&ts, deadline);
        int w = wait ? pthread_cond_timedwait(&sp->cv, &sp->mu, &ts) : ETIMEDOUT;
        if (w == ETIMEDOUT && sp->nidle == 0 && sp->in_use >= sp->opts->max_size) {
            if (wait) /* a caller that chose not to wait did not time out */
                sp->st.acquire_timeouts++;
            pthread_mutex_unlock(&sp->mu);
            return eg_error_set(err, EG_ETIMEOUT, EG_CLASS_CLIENT,
                                "no Neo4j connection became free within %d ms (pool size %zu)", timeout_ms,
                                sp->opts->max_size);
        }
    }
}

static int spool_acquire(spool *sp, bolt_conn **out, eg_error *err)
{
    return spool_acquire_wait(sp, true, out, err);
}

static void spool_release(spool *sp, bolt_conn *c)
{
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
    if (keep && now - c->created_ms > sp->opts->max_lifetime_ms)
        keep = false;
    if (keep && sp->address) {
        pthread_mutex_lock(&sp->mu);
        keep = sp->active; /* a member that left the routing table keeps nothing */
        pthread_mutex_unlock(&sp->mu);
    }
    if (!keep) {
        drop(sp, c);
        return;
    }
    c->idle_since_ms = now;
    pthread_mutex_lock(&sp->mu);
    sp->idle[sp->nidle++] = c;
    sp->in_use--;
    pthread_cond_signal(&sp->cv);
    pthread_mutex_unlock(&sp->mu);
}

/* Mark a server pool (in)active; going inactive closes its idle connections. */
static void spool_set_active(spool *sp, bool active)
{
    bolt_conn *victims[64];
    size_t nv = 0;
    pthread_mutex_lock(&sp->mu);
    sp->active = active;
    if (!active) {
        while (sp->nidle > 0 && nv < sizeof victims / sizeof victims[0]) {
            victims[nv++] = sp->idle[--sp->nidle];
            sp->st.closed++;
        }
        pthread_cond_broadcast(&sp->cv);
    }
    pthread_mutex_unlock(&sp->mu);
    for (size_t i = 0; i < nv; i++)
        bolt_conn_free(victims[i]);
}

static size_t spool_in_use(spool *sp)
{
    pthread_mutex_lock(&sp->mu);
    size_t n = sp->in_use;
    pthread_mutex_unlock(&sp->mu);
    return n;
}

/* --------------------------------------------------------- the pool */

#define BOOKMARKS_MAX 16

typedef struct rtable {
    char *key;       /* requested database, "" for the home database */
    bolt_rt t;
} rtable;

struct bolt_pool {
    bolt_config cfg;   /* strings below are owned copies */
    char *s[8];
    bolt_pool_opts opts;
    bool routed;
    spool *direct;     /* bolt://: the single server */
    /* neo4j:// (see the file comment).  Lock order: rmu, then a spool's mu. */
    bolt_uri seed;     /* routing context sent with ROUTE */
    char *scheme;      /* "neo4j", "neo4j+s", ... */
    char *query;       /* raw query string (without '?'), or NULL */
    pthread_mutex_t rmu;
    pthread_mutex_t refresh_mu; /* one refresh at a time; never held with rmu across I/O */
    spool **servers;   /* every server ever routed to (inactive ones keep nothing) */
    size_t nservers;
    rtable *tables;
    size_t ntables;
    char *bookmarks[BOOKMARKS_MAX];
    size_t nbookmarks;
    size_t rr;         /* rotates the tie-break of least-connected selection */
    uint64_t retries, refreshes;
};

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
    p->cfg.imp_user = p->s[7] = dup_opt(cfg->imp_user, &oom);
    if (oom) {
        bolt_pool_free(p);
        return eg_error_oom(err);
    }
    /* An unparsable URI fails at the first connection, as it always did. */
    eg_error pe;
    if (bolt_uri_parse(&p->seed, p->cfg.uri, &pe) == 0 && p->seed.routing) {
        const char *sep = strstr(p->cfg.uri, "://");
        const char *q = strchr(p->cfg.uri, '?');
        p->scheme = eg_strndup(p->cfg.uri, (size_t)(sep - p->cfg.uri));
        p->query = q && q[1] ? eg_strdup(q + 1) : NULL;
        if (!p->scheme || (q && q[1] && !p->query)) {
            bolt_pool_free(p);
            return eg_error_oom(err);
        }
        p->routed = true;
        pthread_mutex_init(&p->rmu, NULL);
        pthread_mutex_init(&p->refresh_mu, NULL);
    } else {
        bolt_uri_clear(&p->seed);
        if (!(p->direct = spool_new(&p->cfg, &p->opts, NULL, NULL))) {
            bolt_pool_free(p);
            return eg_error_oom(err);
        }
    }
    *out = p;
    return 0;
}

void bolt_pool_free(bolt_pool *p)
{
    if (!p)
        return;
    spool_free(p->direct);
    if (p->routed) {
        for (size_t i = 0; i < p->nservers; i++)
            spool_free(p->servers[i]);
        for (size_t i = 0; i < p->ntables; i++) {
            eg_free(p->tables[i].key);
            bolt_rt_clear(&p->tables[i].t);
        }
        for (size_t i = 0; i < p->nbookmarks; i++)
            eg_free(p->bookmarks[i]);
        pthread_mutex_destroy(&p->rmu);
        pthread_mutex_destroy(&p->refresh_mu);
    }
    eg_free(p->servers);
    eg_free(p->tables);
    eg_free(p->scheme);
    eg_free(p->query);
    bolt_uri_clear(&p->seed);
    if (p->s[2])
        memset(p->s[2], 0, strlen(p->s[2])); /* do not leave the password in freed memory */
    if (p->s[3])
        memset(p->s[3], 0, strlen(p->s[3]));
    for (size_t i = 0; i < sizeof p->s / sizeof p->s[0]; i++)
        eg_free(p->s[i]);
    eg_free(p);
}

bool bolt_pool_is_routed(const bolt_pool *p)
{
    return p && p->routed;
}

/* ------------------------------------------------------------ routing */

/* Under rmu.  The table for database `key` ("" = home), created empty. */
static rtable *table_get(bolt_pool *p, const char *key)
{
    for (size_t i = 0; i < p->ntables; i++)
        if (strcmp(p->tables[i].key, key) == 0)
            return &p->tables[i];
    rtable *nt = eg_realloc(p->tables, (p->ntables + 1) * sizeof *nt);
    if (!nt)
        return NULL;
    p->tables = nt;
    rtable *t = &p->tables[p->ntables];
    memset(t, 0, sizeof *t);
    if (!(t->key = eg_strdup(key)))
        return NULL;
    p->ntables++;
    return t;
}

/* Under rmu.  The server pool for `addr`, created on first use. */
static spool *server_get(bolt_pool *p, const char *addr)
{
    for (size_t i = 0; i < p->nservers; i++)
        if (strcmp(p->servers[i]->address, addr) == 0)
            return p->servers[i];
    size_t n = strlen(p->scheme) + strlen(addr) + (p->query ? strlen(p->query) : 0) + 8;
    char *uri = eg_malloc(n);
    if (!uri)
        return NULL;
    snprintf(uri, n, "%s://%s%s%s", p->scheme, addr, p->query ? "?" : "", p->query ? p->query : "");
    spool **ns = eg_realloc(p->servers, (p->nservers + 1) * sizeof *ns);
    spool *sp = ns ? spool_new(&p->cfg, &p->opts, uri, addr) : NULL;
    eg_free(uri);
    if (ns)
        p->servers = ns;
    if (!sp)
        return NULL;
    p->servers[p->nservers++] = sp;
    return sp;
}

static size_t in_use_cb(const char *addr, void *ctx)
{
    bolt_pool *p = ctx;
    for (size_t i = 0; i < p->nservers; i++)
        if (strcmp(p->servers[i]->address, addr) == 0)
            return spool_in_use(p->servers[i]);
    return 0;
}

/* Under rmu: servers in no table any more stop keeping connections. */
static void sync_active(bolt_pool *p)
{
    for (size_t i = 0; i < p->nservers; i++) {
        bool in = false;
        for (size_t j = 0; j < p->ntables && !in; j++)
            in = bolt_rt_has(&p->tables[j].t, p->servers[i]->address);
        spool *sp = p->servers[i];
        pthread_mutex_lock(&sp->mu);
        bool was = sp->active;
        pthread_mutex_unlock(&sp->mu);
        if (was != in) {
            EG_DEBUG("bolt", "routing: server %s %s", sp->address, in ? "joined" : "left the routing table");
            spool_set_active(sp, in);
        }
    }
}

/* A server failed to answer: forget it everywhere (the drivers' behaviour). */
static void forget_server(bolt_pool *p, const char *addr)
{
    pthread_mutex_lock(&p->rmu);
    for (size_t i = 0; i < p->ntables; i++)
        bolt_rt_forget(&p->tables[i].t, addr);
    sync_active(p);
    pthread_mutex_unlock(&p->rmu);
}

static void forget_writer(bolt_pool *p, const char *addr)
{
    pthread_mutex_lock(&p->rmu);
    for (size_t i = 0; i < p->ntables; i++)
        bolt_rt_forget_writer(&p->tables[i].t, addr);
    sync_active(p);
    pthread_mutex_unlock(&p->rmu);
}

/* Under rmu: copies of the current bookmarks (new strings in *out, count returned). */
static size_t bookmarks_copy(bolt_pool *p, char **out)
{
    size_t n = 0;
    for (size_t i = 0; i < p->nbookmarks; i++)
        if ((out[n] = eg_strdup(p->bookmarks[i])))
            n++;
    return n;
}

static void bookmarks_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        eg_free(v[i]);
}

/*
 * A transaction that waited for `sent` committed with `bm`: bm supersedes
 * them (the server applied them before it ran), so they are replaced.  The
 * set stays small: it holds one bookmark per concurrent line of writes.
 * Takes ownership of bm.
 */
static void bookmarks_replace(bolt_pool *p, char *const *sent, size_t nsent, char *bm)
{
    pthread_mutex_lock(&p->rmu);
    for (size_t k = 0; k < nsent; k++) {
        for (size_t i = 0; i < p->nbookmarks; i++) {
            if (strcmp(p->bookmarks[i], sent[k]) == 0) {
                eg_free(p->bookmarks[i]);
                memmove(&p->bookmarks[i], &p->bookmarks[i + 1], (p->nbookmarks - i - 1) * sizeof(char *));
                p->nbookmarks--;
                break;
            }
        }
    }
    if (p->nbookmarks == BOOKMARKS_MAX) {
        eg_free(p->bookmarks[0]); /* the oldest */
        memmove(&p->bookmarks[0], &p->bookmarks[1], (BOOKMARKS_MAX - 1) * sizeof(char *));
        p->nbookmarks--;
    }
    p->bookmarks[p->nbookmarks++] = bm;
    pthread_mutex_unlock(&p->rmu);
}

/* ROUTE through one router's pool (or a fresh connection to the seed when sp is NULL). */
static int route_via(bolt_pool *p, spool *sp, const char *key, json_t **rt, eg_error *err)
{
    char *bms[BOOKMARKS_MAX];
    pthread_mutex_lock(&p->rmu);
    size_t nbm = bookmarks_copy(p, bms);
    pthread_mutex_unlock(&p->rmu);
    bolt_conn *c = NULL;
    int rc = sp ? spool_acquire(sp, &c, err) : bolt_conn_open(&c, &p->cfg, err);
    if (rc == 0)
        rc = bolt_conn__route(c, &p->seed, (const char *const *)bms, nbm, key, p->cfg.imp_user, rt, err);
    bookmarks_free(bms, nbm);
    if (sp && c)
        spool_release(sp, c);
    else
        bolt_conn_free(c);
    return rc;
}

/* A ROUTE failure that another router may not have (connection lost, server busy or not ready). */
static bool try_next_router(const eg_error *e)
{
    return e->klass == EG_CLASS_CONNECTION || e->retryable ||
           strcmp(e->neo4j_code, "Neo.ClientError.Cluster.NotALeader") == 0 ||
           strncmp(e->neo4j_code, "Neo.TransientError.", 19) == 0;
}

/* Ask the routers (then the seed) for the table of `key`.  Holds refresh_mu. */
static int refresh(bolt_pool *p, const char *key, eg_error *err)
{
    char *routers[32];
    size_t nr = 0;
    pthread_mutex_lock(&p->rmu);
    rtable *t = table_get(p, key);
    if (t)
        for (size_t i = 0; i < t->t.routers.n && nr < 32; i++)
            if ((routers[nr] = eg_strdup(t->t.routers.v[i])))
                nr++;
    p->refreshes++;
    pthread_mutex_unlock(&p->rmu);
    if (!t)
        return eg_error_oom(err);
    json_t *rt = NULL;
    eg_error e;
    eg_error_clear(&e);
    int rc = -1;
    const char *from = NULL;
    for (size_t i = 0; i < nr && rc != 0; i++) {
        pthread_mutex_lock(&p->rmu);
        spool *sp = server_get(p, routers[i]);
        pthread_mutex_unlock(&p->rmu);
        if (!sp) {
            rc = eg_error_oom(&e);
            break;
        }
        eg_error_clear(&e);
        rc = route_via(p, sp, key, &rt, &e);
        if (rc == 0) {
            from = routers[i];
        } else if (try_next_router(&e)) {
            EG_DEBUG("bolt", "routing: router %s failed (%s%s%s); trying the next", routers[i], e.neo4j_code,
                     e.neo4j_code[0] ? ": " : "", e.message);
            forget_server(p, routers[i]);
        } else {
            break;
        }
    }
    if (rc != 0 && (nr == 0 || try_next_router(&e))) {
        /* Every router is gone: back to the seed, on a fresh connection so
         * that its name is resolved again (the cluster may have moved). */
        if (nr > 0)
            EG_DEBUG("bolt", "routing: no router answered; asking the seed %s", p->seed.address);
        eg_error_clear(&e);
        rc = route_via(p, NULL, key, &rt, &e);
        if (rc == 0)
            from = p->seed.address;
    }
    if (rc == 0) {
        bolt_rt nt = {0};
        rc = bolt_rt_parse_json(rt, eg_mono_ms(), &nt, &e);
        if (rc == 0) {
            pthread_mutex_lock(&p->rmu);
            t = table_get(p, key); /* the array may have moved */
            if (t) {
                bolt_rt_clear(&t->t);
                t->t = nt;
                sync_active(p);
            } else {
                bolt_rt_clear(&nt);
            }
            pthread_mutex_unlock(&p->rmu);
            EG_DEBUG("bolt", "routing: table for %s from %s: %zu routers, %zu readers, %zu writers, ttl %llds",
                     key[0] ? key : "the home database", from, nt.routers.n, nt.readers.n, nt.writers.n,
                     (long long)(nt.ttl_ms / 1000));
        }
    }
    json_decref(rt);
    bookmarks_free(routers, nr);
    if (rc != 0) {
        eg_error_copy(err, &e);
        if (e.klass == EG_CLASS_CONNECTION || e.code == 0) {
            /* ServiceUnavailable in the drivers' terms: retryable. */
            err->klass = EG_CLASS_CONNECTION;
            err->retryable = true;
        }
        eg_error_prefix(err, "no routing table for %s (%zu router%s and the seed %s tried)",
                        key[0] ? key : "the home database", nr, nr == 1 ? "" : "s", p->seed.address);
        return rc < 0 ? rc : EG_EIO;
    }
    return 0;
}

/* Make sure the table of `key` can route this access mode. */
static int ensure_table(bolt_pool *p, const char *key, bool read_only, bool force, eg_error *err)
{
    pthread_mutex_lock(&p->rmu);
    rtable *t = table_get(p, key);
    bool stale = !t || force || bolt_rt_stale(&t->t, read_only, eg_mono_ms());
    pthread_mutex_unlock(&p->rmu);
    if (!t)
        return eg_error_oom(err);
    if (!stale)
        return 0;
    pthread_mutex_lock(&p->refresh_mu);
    pthread_mutex_lock(&p->rmu);
    t = table_get(p, key);
    /* Another thread may have refreshed while this one waited. */
    stale = force || !t || bolt_rt_stale(&t->t, read_only, eg_mono_ms());
    pthread_mutex_unlock(&p->rmu);
    int rc = stale ? refresh(p, key, err) : 0;
    pthread_mutex_unlock(&p->refresh_mu);
    return rc;
}

static int route_acquire(bolt_pool *p, bool read_only, const char *db, bool wait, bolt_conn **out,
                         eg_error *err)
{
    *out = NULL;
    const char *key = db ? db : "";
    eg_error e;
    eg_error_clear(&e);
    for (int attempt = 0; attempt < 8; attempt++) {
        int rc = ensure_table(p, key, read_only, false, err);
        if (rc < 0)
            return rc;
        pthread_mutex_lock(&p->rmu);
        rtable *t = table_get(p, key);
        const bolt_addr_list *l = t ? (read_only ? &t->t.readers : &t->t.writers) : NULL;
        int i = l ? bolt_rt_pick(l, p->rr++, in_use_cb, p) : -1;
        spool *sp = i >= 0 ? server_get(p, l->v[i]) : NULL;
        if (sp)
            spool_set_active(sp, true);
        pthread_mutex_unlock(&p->rmu);
        if (!sp)
            continue; /* emptied by another thread meanwhile: refresh again */
        eg_error_clear(&e);
        rc = spool_acquire_wait(sp, wait, out, &e);
        if (rc == 0)
            return 0;
        if (e.klass != EG_CLASS_CONNECTION) {
            eg_error_copy(err, &e);
            return rc;
        }
        EG_DEBUG("bolt", "routing: %s unreachable (%s); forgetting it", sp->address, e.message);
        forget_server(p, sp->address);
    }
    if (e.code == 0)
        eg_error_set(&e, EG_EIO, EG_CLASS_CONNECTION, "no %s server available", read_only ? "read" : "write");
    eg_error_copy(err, &e);
    err->retryable = true;
    return e.code;
}

/* What a routed connection saw tells the table something (release time). */
static void route_feedback(bolt_pool *p, bolt_conn *c)
{
    spool *sp = c->owner;
    if (!sp || !sp->address)
        return;
    if (c->defunct && c->dead_err.klass == EG_CLASS_CONNECTION) {
        EG_DEBUG("bolt", "routing: lost the connection to %s; forgetting the server", sp->address);
        forget_server(p, sp->address);
    } else if (c->nfailures != c->owner_fails) {
        const char *code = c->fail.neo4j_code;
        if (strcmp(code, "Neo.ClientError.Cluster.NotALeader") == 0 ||
            strcmp(code, "Neo.ClientError.General.ForbiddenOnReadOnlyDatabase") == 0) {
            EG_DEBUG("bolt", "routing: %s is no longer a writer (%s)", sp->address, code);
            forget_writer(p, sp->address);
        } else if (strcmp(code, "Neo.TransientError.General.DatabaseUnavailable") == 0) {
            forget_server(p, sp->address);
        }
    }
    if (c->bookmark) {
        char *bm = c->bookmark;
        c->bookmark = NULL;
        bookmarks_replace(p, NULL, 0, bm);
    }
}

/* ------------------------------------------------------------ public */

int bolt_pool_acquire(bolt_pool *p, bolt_conn **out, eg_error *err)
{
    if (!p->routed)
        return spool_acquire(p->direct, out, err);
    return route_acquire(p, false, p->cfg.database, true, out, err);
}

static int acquire_mode_wait(bolt_pool *p, bool read_only, const char *database, bool wait, bolt_conn **out,
                             eg_error *err)
{
    if (!p->routed)
        return spool_acquire_wait(p->direct, wait, out, err);
    return route_acquire(p, read_only, database ? database : p->cfg.database, wait, out, err);
}

int bolt_pool_acquire_mode(bolt_pool *p, bool read_only, const char *database, bolt_conn **out, eg_error *err)
{
    return acquire_mode_wait(p, read_only, database, true, out, err);
}

void bolt_pool_release(bolt_pool *p, bolt_conn *c)
{
    if (!c)
        return;
    if (p->routed)
        route_feedback(p, c);
    spool_release(c->owner ? (spool *)c->owner : p->direct, c);
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

static void add_stats(bolt_pool_stats *out, spool *sp)
{
    pthread_mutex_lock(&sp->mu);
    out->opened += sp->st.opened;
    out->closed += sp->st.closed;
    out->acquire_timeouts += sp->st.acquire_timeouts;
    out->retries += sp->st.retries;
    out->idle += sp->nidle;
    out->in_use += sp->in_use;
    pthread_mutex_unlock(&sp->mu);
}

void bolt_pool_get_stats(bolt_pool *p, bolt_pool_stats *out)
{
    memset(out, 0, sizeof *out);
    if (p->routed) {
        pthread_mutex_lock(&p->rmu);
        for (size_t i = 0; i < p->nservers; i++)
            add_stats(out, p->servers[i]);
        out->retries += p->retries;
        pthread_mutex_unlock(&p->rmu);
    } else {
        add_stats(out, p->direct);
    }
    out->size = out->idle + out->in_use;
}

int bolt_pool_routing_table(bolt_pool *p, const char *database, json_t **out, eg_error *err)
{
    *out = NULL;
    if (!p->routed)
        return eg_error_set(err, EG_EUNSUPPORTED, EG_CLASS_CLIENT,
                            "not a routing URI (neo4j://, neo4j+s://, neo4j+ssc://)");
    const char *key = database ? database : p->cfg.database ? p->cfg.database : "";
    int rc = ensure_table(p, key, false, true, err);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&p->rmu);
    rtable *t = table_get(p, key);
    *out = t ? bolt_rt_to_json(&t->t, eg_mono_ms()) : NULL;
    pthread_mutex_unlock(&p->rmu);
    return *out ? 0 : eg_error_oom(err);
}

/* ------------------------------------------------------- managed tx */

/* autocommit: no BEGIN/COMMIT; fn runs its statement (a write unit: exactly
 * one) with the unit's options (bolt_conn_unit_opts), each committed by the
 * server at its PULL. */
static int execute(bolt_pool *p, const bolt_tx_opts *tx, const bolt_retry_opts *retry, bool read_only,
                   bool autocommit, bolt_work_fn fn, void *payload, eg_error *err)
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
        const char *server = NULL;
        char *sent[BOOKMARKS_MAX + 8];
        size_t nsent = 0;
        if (p->routed) {
            /* Causal consistency across members: wait for what this pool
             * has seen committed (plus the caller's own bookmarks). */
            pthread_mutex_lock(&p->rmu);
            nsent = bookmarks_copy(p, sent);
            pthread_mutex_unlock(&p->rmu);
            for (size_t i = 0; tx && i < tx->nbookmarks && nsent < BOOKMARKS_MAX + 8; i++)
                if ((sent[nsent] = eg_strdup(tx->bookmarks[i])))
                    nsent++;
            o.bookmarks = (const char *const *)sent;
            o.nbookmarks = nsent;
        }
        int rc = acquire_mode_wait(p, read_only, o.database, !r.no_wait, &c, &e);
        if (rc == 0) {
            server = c->owner ? ((spool *)c->owner)->address : NULL;
            if (autocommit) {
                c->unit_opts = &o;
                rc = fn(c, payload, &e);
                c->unit_opts = NULL;
                if (rc >= 0 && c->tx != BOLT_TX_NONE)
                    rc = eg_error_set(&e, EG_EINVAL, EG_CLASS_CLIENT,
                                      "an auto-commit unit of work left a transaction open");
                if (rc >= 0 && p->routed && c->bookmark) {
                    char *bm = c->bookmark; /* recorded here, not again on release */
                    c->bookmark = NULL;
                    bookmarks_replace(p, sent, nsent, bm);
                }
            } else {
                rc = bolt_conn_begin(c, &o, &e);
                if (rc == 0)
                    rc = fn(c, payload, &e);
            }
            if (rc >= 0 && !autocommit) {
                char *bm = NULL;
                int crc = bolt_conn_commit(c, p->routed ? &bm : NULL, &e);
                if (crc < 0)
                    rc = crc;
                if (bm) {
                    eg_free(c->bookmark); /* recorded here, not again on release */
                    c->bookmark = NULL;
                    bookmarks_replace(p, sent, nsent, bm);
                }
            }
            bolt_pool_release(p, c);
        }
        bookmarks_free(sent, nsent);
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
        if (p->routed) {
            pthread_mutex_lock(&p->rmu);
            p->retries++;
            pthread_mutex_unlock(&p->rmu);
        } else {
            pthread_mutex_lock(&p->direct->mu);
            p->direct->st.retries++;
            pthread_mutex_unlock(&p->direct->mu);
        }
        /* Warn on the third failure and every tenth after it; debug otherwise. */
        eg_log(attempt == 3 || (attempt > 3 && attempt % 10 == 0) ? EG_LOG_WARNING : EG_LOG_DEBUG, "bolt",
               "retrying a managed transaction in %lld ms (attempt %d%s%s failed: %s%s%s)", (long long)wait,
               attempt, server ? " on " : "", server ? server : "", e.neo4j_code, e.neo4j_code[0] ? ": " : "",
               e.message);
        eg_sleep_ms(wait);
        delay *= r.multiplier;
        if (delay > (double)r.max_delay_ms)
            delay = (double)r.max_delay_ms;
    }
}

int bolt_pool_execute_write(bolt_pool *p, const bolt_tx_opts *tx, const bolt_retry_opts *retry,
                            bolt_work_fn fn, void *payload, eg_error *err)
{
    return execute(p, tx, retry, false, false, fn, payload, err);
}

int bolt_pool_execute_write_autocommit(bolt_pool *p, const bolt_tx_opts *tx, const bolt_retry_opts *retry,
                                       bolt_work_fn fn, void *payload, eg_error *err)
{
    return execute(p, tx, retry, false, true, fn, payload, err);
}

int bolt_pool_execute_read_autocommit(bolt_pool *p, const bolt_tx_opts *tx, const bolt_retry_opts *retry,
                                      bolt_work_fn fn, void *payload, eg_error *err)
{
    return execute(p, tx, retry, true, true, fn, payload, err);
}

int bolt_pool_execute_read(bolt_pool *p, const bolt_tx_opts *tx, const bolt_retry_opts *retry,
                           bolt_work_fn fn, void *payload, eg_error *err)
{
    return execute(p, tx, retry, true, false, fn, payload, err);
}
