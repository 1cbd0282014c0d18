/*
 * test_queue_tx_timeout.c - a worker host whose link dies mid-transaction
 * must not hold the queue's mutex for ever.
 *
 * Worker A reaches Neo4j through a Bolt proxy of ours (tests/support/
 * bolt_cluster.h, one member) that swallows A's COMMIT: Neo4j sees A's
 * lease transaction open, holding the queue's mutex node, and then silence,
 * exactly as when a host's link is cut between its last statement and
 * COMMIT (TCP may take hours to tell the server).  Worker B, on a direct
 * connection, then leases from the same queue.  With the store's
 * transaction timeout (queue_opts.tx_timeout_ms, 2 s here) the server ends
 * A's transaction and B, polling as a worker does, gets every job a few
 * seconds later; without it B would wait until A's connection is gone.  B's
 * wait is bounded by the test, so a missing timeout fails instead of
 * hanging.
 */
#include "core/clock.h"
#include "queue/neo4j_store.h"
#include "support/bolt_cluster.h"
#include "support/queue_neo4j_fixture.h"
#include "support/testenv.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

enum { NJOBS = 10, TX_TIMEOUT_MS = 2000 };

static bolt_pool *g_direct;
static bolt_config g_cfg;

typedef struct leaser {
    queue_store *s;
    const char *owner;
    size_t max;
    bool retry;
    int rc;
    size_t n;
    atomic_bool done;
} leaser;

/* One lease, or (retry) leases as a worker makes them, until one gets jobs
 * or 20 s pass: a lease that waited on the mutex past its own timeout fails
 * (the server ends it too), and the worker's next poll tries again. */
static void *lease_thread(void *p)
{
    leaser *l = p;
    queue_lease_opts o = {.owner = l->owner, .max_jobs = l->max};
    for (int64_t end = eg_mono_ms() + 20000;;) {
        queue_job *jobs = NULL;
        eg_error err;
        eg_error_clear(&err);
        l->n = 0;
        l->rc = queue_lease(l->s, &o, &jobs, &l->n, &err);
        if (l->rc)
            fprintf(stderr, "%s: lease: %s %.120s\n", l->owner, err.neo4j_code, err.message);
        queue_jobs_free(jobs, l->n);
        if (!l->retry || (l->rc == 0 && l->n > 0) || eg_mono_ms() >= end)
            break;
        eg_sleep_ms(100);
    }
    atomic_store(&l->done, true);
    return NULL;
}

static bool lease_done(void *l) { return atomic_load(&((leaser *)l)->done); }

static void test_queue_tx_timeout__cut_worker_releases_the_mutex(void **state)
{
    (void)state;
    eg_error err;
    char qn[QUEUE_NAME_MAX];
    qfx_queue_name(qn, "txtimeout");
    queue_opts o = QUEUE_OPTS_INIT;
    snprintf(o.name, sizeof o.name, "%s", qn);
    o.tx_timeout_ms = TX_TIMEOUT_MS;

    queue_store *b = NULL, *a = NULL;
    assert_int_equal(queue_neo4j_new(&b, g_direct, &o, &err), 0);
    bolt_cluster *cl = bolt_cluster_new(g_cfg.uri, 1);
    assert_non_null(cl);
    bolt_pool *pa = NULL;
    assert_int_equal(bolt_cluster_member_pool(cl, 0, &g_cfg, 2, &pa, &err), 0);
    assert_int_equal(queue_neo4j_new(&a, pa, &o, &err), 0);

    queue_enqueue_req r[NJOBS];
    queue_enqueue_result res[NJOBS];
    char names[NJOBS][16];
    for (int i = 0; i < NJOBS; i++) {
        snprintf(names[i], sizeof names[i], "e%d", i);
        r[i] = (queue_enqueue_req){.ns = "txtimeout", .entity = names[i], .version = "v1", .model = "m"};
    }
    assert_int_equal(queue_enqueue(b, NULL, r, NJOBS, res, &err), 0);

    /* A's lease: its statement runs (the mutex is A's), its COMMIT never arrives. */
    leaser la = {.s = a, .owner = "host-a", .max = 5};
    leaser lb = {.s = b, .owner = "host-b", .max = NJOBS, .retry = true};
    bolt_cluster_contention ct;
    bolt_cluster_contend(cl, lease_thread, &la, lease_thread, &lb, lease_done, &ct);
    fprintf(stderr, "queue tx timeout: B waited %lld ms for A's mutex, leased %zu; A: rc %d, %zu jobs\n",
            (long long)ct.waited_ms, lb.n, la.rc, la.n);

    assert_true(ct.stalled);                        /* A was inside its lease transaction */
    assert_true(ct.b_done);                         /* B was not held until A's link went away */
    assert_true(ct.waited_ms >= TX_TIMEOUT_MS / 2); /* ... and did wait on A's lock: the scenario happened */
    assert_int_equal(lb.rc, 0);
    assert_int_equal(lb.n, NJOBS);         /* A's uncommitted lease was rolled back: every job is B's */
    assert_int_equal(la.n, 0);             /* and none was handed to A as well */

    queue_store_free(a);
    bolt_pool_free(pa);
    bolt_cluster_free(cl);
    queue_store_free(b);
    qfx_cleanup_queue(g_direct, qn);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    int rc = qfx_open(&g_direct, 4);
    if (rc)
        return rc;
    if ((rc = eg_testenv_neo4j(&g_cfg)) != 0)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_tx_timeout__cut_worker_releases_the_mutex),
    };
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    bolt_pool_free(g_direct);
    return rc;
}
