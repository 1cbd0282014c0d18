/*
 * test_bolt_pool.c - the pool and managed transactions against a real
 * Neo4j: a provoked deadlock is retried and both sides succeed; eight
 * threads share a pool of four for 500 transactions each; auto-commit
 * units of work.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bolt/pool.h"
#include "core/clock.h"
#include "support/testenv.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static bolt_config g_cfg;
static char g_run[17];

/* ---- deadlock ---- */

typedef struct dl_arg {
    bolt_pool *pool;
    const char *first, *second;
    pthread_barrier_t *barrier;
    int attempts;
    int rc;
    eg_error err;
} dl_arg;

static int lock_node(bolt_conn *c, const char *name, eg_error *err)
{
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "run", g_run);
    bolt_params_str(p, "name", name);
    int rc = bolt_conn_exec(c, "MATCH (n:BoltPoolTest {run: $run, name: $name}) SET n.v = n.v + 1", p, NULL,
                            NULL, err);
    bolt_params_free(p);
    return rc;
}

static int dl_work(bolt_conn *c, void *payload, eg_error *err)
{
    dl_arg *a = payload;
    a->attempts++;
    int rc = lock_node(c, a->first, err);
    if (rc < 0)
        return rc;
    if (a->attempts == 1)
        pthread_barrier_wait(a->barrier); /* both hold their first lock */
    return lock_node(c, a->second, err);
}

static void *dl_thread(void *p)
{
    dl_arg *a = p;
    bolt_retry_opts ro = BOLT_RETRY_OPTS_INIT;
    ro.initial_delay_ms = 20;
    a->rc = bolt_pool_execute_write(a->pool, NULL, &ro, dl_work, a, &a->err);
    return NULL;
}

static void test_bolt_pool__deadlock_retried(void **state)
{
    (void)state;
    eg_error err;
    bolt_pool_opts po = BOLT_POOL_OPTS_INIT;
    po.max_size = 4;
    bolt_pool *pool;
    assert_int_equal(bolt_pool_new(&pool, &g_cfg, &po, &err), 0);
    bolt_conn *c;
    assert_int_equal(bolt_pool_acquire(pool, &c, &err), 0);
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "run", g_run);
    assert_int_equal(bolt_conn_exec(c,
                                    "CREATE (:BoltPoolTest {run: $run, name: 'a', v: 0}), "
                                    "(:BoltPoolTest {run: $run, name: 'b', v: 0})",
                                    p, NULL, NULL, &err),
                     0);
    bolt_pool_release(pool, c);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 2);
    dl_arg a1 = {.pool = pool, .first = "a", .second = "b", .barrier = &bar};
    dl_arg a2 = {.pool = pool, .first = "b", .second = "a", .barrier = &bar};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, dl_thread, &a1);
    pthread_create(&t2, NULL, dl_thread, &a2);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    pthread_barrier_destroy(&bar);
    if (a1.rc != 0 || a2.rc != 0)
        fail_msg("deadlock test: rc %d/%d: %s / %s", a1.rc, a2.rc, a1.err.message, a2.err.message);
    /* One of them hit the deadlock and ran again. */
    assert_true(a1.attempts + a2.attempts >= 3);
    bolt_pool_stats st;
    bolt_pool_get_stats(pool, &st);
    assert_true(st.retries >= 1);
    json_t *rows;
    assert_int_equal(bolt_pool_acquire(pool, &c, &err), 0);
    assert_int_equal(bolt_conn_query_json(c, "MATCH (n:BoltPoolTest {run: $run}) RETURN sum(n.v) AS v", p, NULL,
                                          &rows, &err),
                     0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "v")), 4);
    json_decref(rows);
    bolt_pool_release(pool, c);
    bolt_params_free(p);
    bolt_pool_free(pool);
}

/* ---- concurrency ---- */

#define NTHREADS 8
#define NTX 500

typedef struct cc_arg {
    bolt_pool *pool;
    int id;
    int failures;
    eg_error err;
} cc_arg;

typedef struct cc_work {
    int thread, i;
} cc_work;

static int cc_fn(bolt_conn *c, void *payload, eg_error *err)
{
    cc_work *w = payload;
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "run", g_run);
    bolt_params_int(p, "t", w->thread);
    bolt_params_int(p, "i", w->i);
    int rc = bolt_conn_exec(c,
                            "MERGE (n:BoltPoolCount {run: $run, t: $t}) "
                            "ON CREATE SET n.count = 1 ON MATCH SET n.count = n.count + 1",
                            p, NULL, NULL, err);
    bolt_params_free(p);
    return rc;
}

static void *cc_thread(void *p)
{
    cc_arg *a = p;
    for (int i = 0; i < NTX; i++) {
        cc_work w = {a->id, i};
        eg_error err;
        if (bolt_pool_execute_write(a->pool, NULL, NULL, cc_fn, &w, &err) < 0) {
            a->failures++;
            eg_error_copy(&a->err, &err);
        }
    }
    return NULL;
}

static void test_bolt_pool__eight_threads_share_four(void **state)
{
    (void)state;
    eg_error err;
    bolt_pool_opts po = BOLT_POOL_OPTS_INIT;
    po.max_size = 4;
    bolt_pool *pool;
    assert_int_equal(bolt_pool_new(&pool, &g_cfg, &po, &err), 0);
    cc_arg args[NTHREADS];
    pthread_t th[NTHREADS];
    int64_t t0 = eg_mono_ms();
    for (int i = 0; i < NTHREADS; i++) {
        args[i] = (cc_arg){.pool = pool, .id = i};
        pthread_create(&th[i], NULL, cc_thread, &args[i]);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    int64_t ms = eg_mono_ms() - t0;
    for (int i = 0; i < NTHREADS; i++)
        if (args[i].failures)
            fail_msg("thread %d: %d failures, last: %s", i, args[i].failures, args[i].err.message);
    bolt_pool_stats st;
    bolt_pool_get_stats(pool, &st);
    fprintf(stderr, "# %d transactions in %lld ms (%.0f tx/s), opened %llu, retries %llu\n", NTHREADS * NTX,
            (long long)ms, NTHREADS * NTX * 1000.0 / (double)(ms ? ms : 1), (unsigned long long)st.opened,
            (unsigned long long)st.retries);
    assert_true(st.opened <= 4);
    assert_int_equal(st.in_use, 0);
    assert_true(st.size <= 4);
    bolt_conn *c;
    assert_int_equal(bolt_pool_acquire(pool, &c, &err), 0);
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "run", g_run);
    json_t *rows;
    assert_int_equal(bolt_conn_query_json(c,
                                          "MATCH (n:BoltPoolCount {run: $run}) "
                                          "RETURN count(n) AS nodes, sum(n.count) AS total",
                                          p, NULL, &rows, &err),
                     0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "nodes")), NTHREADS);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "total")), NTHREADS * NTX);
    json_decref(rows);
    bolt_params_free(p);
    bolt_pool_release(pool, c);
    bolt_pool_free(pool);
}

/* ---- auto-commit units ---- */

typedef struct auto_arg {
    int calls;
    int fail_first;           /* this many transient failures before the statement */
    bool open_tx;             /* misbehave: leave a transaction open */
    const bolt_tx_opts *seen; /* bolt_conn_unit_opts inside the unit */
    int64_t seen_timeout_ms;
} auto_arg;

static int auto_work(bolt_conn *c, void *payload, eg_error *err)
{
    auto_arg *a = payload;
    a->calls++;
    a->seen = bolt_conn_unit_opts(c);
    a->seen_timeout_ms = a->seen ? a->seen->timeout_ms : -1;
    if (a->calls <= a->fail_first)
        return eg_error_set(err, EG_ETRANSIENT, EG_CLASS_TRANSIENT, "provoked transient failure %d", a->calls);
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "run", g_run);
    int rc;
    if (a->open_tx) {
        rc = bolt_conn_begin(c, NULL, err);
        if (rc == 0)
            rc = bolt_conn_exec(c, "CREATE (:BoltPoolTest {run: $run, name: 'leaked'})", p, NULL, NULL, err);
        bolt_params_free(p);
        return rc;
    }
    rc = bolt_conn_exec(c, "CREATE (:BoltPoolTest {run: $run, name: 'auto'})", p, a->seen, NULL, err);
    bolt_params_free(p);
    return rc;
}

static int64_t count_named(bolt_pool *pool, const char *name)
{
    eg_error err;
    bolt_conn *c;
    assert_int_equal(bolt_pool_acquire(pool, &c, &err), 0);
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "run", g_run);
    bolt_params_str(p, "name", name);
    json_t *rows = NULL;
    assert_int_equal(
        bolt_conn_query_json(c, "MATCH (n:BoltPoolTest {run: $run, name: $name}) RETURN count(n) AS n", p, NULL,
                             &rows, &err),
        0);
    int64_t n = json_integer_value(json_object_get(json_array_get(rows, 0), "n"));
    json_decref(rows);
    bolt_params_free(p);
    bolt_pool_release(pool, c);
    return n;
}

static int managed_peek(bolt_conn *c, void *payload, eg_error *err)
{
    (void)err;
    *(const bolt_tx_opts **)payload = bolt_conn_unit_opts(c);
    return 0;
}

/*
 * bolt_pool_execute_write_autocommit: the unit's one statement commits by
 * itself (no COMMIT), runs with the unit's options, is retried on a
 * transient failure like any unit, and a unit that opens a transaction
 * fails and commits nothing.  Managed transactions see no unit options.
 */
static void test_bolt_pool__autocommit_unit(void **state)
{
    (void)state;
    eg_error err;
    eg_error_clear(&err);
    bolt_pool *pool;
    bolt_pool_opts po = BOLT_POOL_OPTS_INIT;
    po.max_size = 2;
    assert_int_equal(bolt_pool_new(&pool, &g_cfg, &po, &err), 0);
    bolt_tx_opts tx = BOLT_TX_OPTS_INIT;
    tx.timeout_ms = 7000;
    bolt_retry_opts ro = BOLT_RETRY_OPTS_INIT;
    ro.initial_delay_ms = 5;

    auto_arg a = {0};
    a.fail_first = 2;
    assert_int_equal(bolt_pool_execute_write_autocommit(pool, &tx, &ro, auto_work, &a, &err), 0);
    assert_int_equal(a.calls, 3);
    assert_int_equal(a.seen_timeout_ms, 7000);
    assert_int_equal(count_named(pool, "auto"), 1);

    auto_arg bad = {0};
    bad.open_tx = true;
    eg_error_clear(&err);
    assert_int_equal(bolt_pool_execute_write_autocommit(pool, &tx, &ro, auto_work, &bad, &err), EG_EINVAL);
    assert_int_equal(bad.calls, 1);
    assert_non_null(strstr(err.message, "transaction open"));
    assert_int_equal(count_named(pool, "leaked"), 0);

    /* the connections went back usable: a plain unit runs on them */
    auto_arg again = {0};
    assert_int_equal(bolt_pool_execute_write_autocommit(pool, NULL, NULL, auto_work, &again, &err), 0);
    assert_int_equal(count_named(pool, "auto"), 2);

    const bolt_tx_opts *peek = &tx;
    assert_int_equal(bolt_pool_execute_write(pool, NULL, NULL, managed_peek, &peek, &err), 0);
    assert_null(peek);
    bolt_pool_free(pool);
}

typedef struct read_arg {
    int calls;
    bool write;       /* misbehave: write in a read unit */
    int64_t counts[2];
} read_arg;

static int read_work(bolt_conn *c, void *payload, eg_error *err)
{
    read_arg *a = payload;
    a->calls++;
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "run", g_run);
    const char *count = "MATCH (n:BoltPoolTest {run: $run, name: 'auto'}) RETURN count(n) AS n";
    const char *cy[2] = {count, a->write ? "CREATE (:BoltPoolTest {run: $run, name: 'auto'}) RETURN 1 AS n" : count};
    const bolt_params *ps[2] = {p, p};
    json_t *rows[2] = {NULL, NULL};
    int rc = bolt_conn_query_json_each(c, cy, ps, 2, bolt_conn_unit_opts(c), rows, err);
    for (int i = 0; i < 2; i++) {
        a->counts[i] = json_integer_value(json_object_get(json_array_get(rows[i], 0), "n"));
        json_decref(rows[i]);
    }
    bolt_params_free(p);
    return rc;
}

/*
 * bolt_pool_execute_read_autocommit: several statements, pipelined, each an
 * auto-commit query that sees the committed data; they run in read mode, so
 * a write among them is refused by the server and nothing is written.
 */
static void test_bolt_pool__read_autocommit_unit(void **state)
{
    (void)state;
    eg_error err;
    eg_error_clear(&err);
    bolt_pool *pool;
    assert_int_equal(bolt_pool_new(&pool, &g_cfg, NULL, &err), 0);
    int64_t have = count_named(pool, "auto");
    bolt_tx_opts tx = BOLT_TX_OPTS_INIT;
    tx.timeout_ms = 7000;
    read_arg a = {0};
    assert_int_equal(bolt_pool_execute_read_autocommit(pool, &tx, NULL, read_work, &a, &err), 0);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.counts[0], have);
    assert_int_equal(a.counts[1], have);

    read_arg w = {.write = true};
    eg_error_clear(&err);
    assert_true(bolt_pool_execute_read_autocommit(pool, &tx, NULL, read_work, &w, &err) != 0);
    assert_int_equal(w.calls, 1); /* a client error: not retried */
    assert_int_equal(count_named(pool, "auto"), have);
    /* and the connection went back usable */
    read_arg again = {0};
    assert_int_equal(bolt_pool_execute_read_autocommit(pool, NULL, NULL, read_work, &again, &err), 0);
    assert_int_equal(again.counts[1], have);
    bolt_pool_free(pool);
}

static int teardown(void **state)
{
    (void)state;
    eg_error err;
    bolt_conn *c;
    if (bolt_conn_open(&c, &g_cfg, &err) == 0) {
        bolt_params *p = bolt_params_new();
        bolt_params_str(p, "run", g_run);
        bolt_conn_exec(c, "MATCH (n:BoltPoolTest {run: $run}) DELETE n", p, NULL, NULL, &err);
        bolt_conn_exec(c, "MATCH (n:BoltPoolCount {run: $run}) DELETE n", p, NULL, NULL, &err);
        bolt_params_free(p);
        bolt_conn_free(c);
    }
    return 0;
}

int main(void)
{
    int rc = eg_testenv_neo4j(&g_cfg);
    if (rc != 0)
        return rc;
    eg_rand_hex(g_run, 8);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bolt_pool__deadlock_retried),
        cmocka_unit_test(test_bolt_pool__eight_threads_share_four),
        cmocka_unit_test(test_bolt_pool__autocommit_unit),
        cmocka_unit_test(test_bolt_pool__read_autocommit_unit),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
