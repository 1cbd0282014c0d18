/*
 * test_pool.c - the connection pool and managed transactions against the
 * scripted fake server.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bolt/pool.h"
#include "core/clock.h"
#include "support/fake_bolt.h"

#include <string.h>

enum { HELLO = 0x01, RESET = 0x0F, RUN = 0x10, BEGIN = 0x11, COMMIT = 0x12, PULL = 0x3F };

#define assert_rc(expr, want)                                                                  \
    do {                                                                                       \
        int rc_ = (expr);                                                                      \
        if (rc_ != (want))                                                                     \
            fail_msg("%s = %d (%s), want %d; err: %s; server: %s", #expr, rc_, eg_strerror(rc_), \
                     (int)(want), err.message, fake_bolt_error(fb) ? fake_bolt_error(fb) : "-"); \
    } while (0)

static bolt_config cfg_for(const fake_bolt *fb)
{
    bolt_config cfg = BOLT_CONFIG_INIT;
    cfg.uri = fake_bolt_uri(fb);
    cfg.user = "neo4j";
    cfg.password = "pw";
    cfg.connect_timeout_ms = 3000;
    return cfg;
}

/* A fake server that greets one connection and then idles, and a pool of one
 * connection on it that waits acquire_timeout_ms for a free one. */
static bolt_pool *one_conn_pool(fake_bolt **fb, int acquire_timeout_ms)
{
    *fb = fake_bolt_new();
    fake_bolt_hello(*fb, 5, 8);
    fake_bolt_sleep(*fb, 300);
    fake_bolt_start(*fb);
    bolt_config cfg = cfg_for(*fb);
    bolt_pool_opts po = BOLT_POOL_OPTS_INIT;
    po.max_size = 1;
    po.acquire_timeout_ms = acquire_timeout_ms;
    bolt_pool *p = NULL;
    eg_error err;
    assert_int_equal(bolt_pool_new(&p, &cfg, &po, &err), 0);
    return p;
}

static void test_bolt_pool__reuses_and_times_out(void **state)
{
    (void)state;
    fake_bolt *fb;
    bolt_pool *p = one_conn_pool(&fb, 100);
    eg_error err;
    bolt_conn *c1, *c2;
    assert_rc(bolt_pool_acquire(p, &c1, &err), 0);
    int64_t t0 = eg_mono_ms();
    assert_rc(bolt_pool_acquire(p, &c2, &err), EG_ETIMEOUT);
    assert_true(eg_mono_ms() - t0 >= 90);
    bolt_pool_release(p, c1);
    assert_rc(bolt_pool_acquire(p, &c2, &err), 0);
    assert_ptr_equal(c1, c2);
    bolt_pool_release(p, c2);
    bolt_pool_stats st;
    bolt_pool_get_stats(p, &st);
    assert_int_equal(st.opened, 1);
    assert_int_equal(st.acquire_timeouts, 1);
    assert_int_equal(st.idle, 1);
    assert_int_equal(st.in_use, 0);
    bolt_pool_free(p);
    assert_int_equal(fake_bolt_wait(fb), 0);
    fake_bolt_free(fb);
}

/* The server drops idle connections (restart): the pool notices and reconnects. */
static int must_not_run(bolt_conn *c, void *payload, eg_error *err)
{
    (void)c;
    (void)err;
    (*(int *)payload)++;
    return 0;
}

/* no_wait: a unit that finds every connection in use fails at once, without
 * counting an acquire timeout and without running; with one free it runs. */
static void test_bolt_pool__no_wait_fails_at_once(void **state)
{
    (void)state;
    fake_bolt *fb;
    bolt_pool *p = one_conn_pool(&fb, 2000);
    eg_error err;
    bolt_conn *c1;
    assert_rc(bolt_pool_acquire(p, &c1, &err), 0);
    bolt_retry_opts r = BOLT_RETRY_OPTS_INIT;
    r.no_wait = true;
    int runs = 0;
    int64_t t0 = eg_mono_ms();
    assert_rc(bolt_pool_execute_read_autocommit(p, NULL, &r, must_not_run, &runs, &err), EG_ETIMEOUT);
    assert_true(eg_mono_ms() - t0 < 1000); /* not the pool's 2 s */
    assert_int_equal(runs, 0);
    bolt_pool_stats st;
    bolt_pool_get_stats(p, &st);
    assert_int_equal(st.acquire_timeouts, 0);
    bolt_pool_release(p, c1);
    assert_rc(bolt_pool_execute_read_autocommit(p, NULL, &r, must_not_run, &runs, &err), 0);
    assert_int_equal(runs, 1);
    bolt_pool_free(p);
    fake_bolt_free(fb);
}

static void test_bolt_pool__replaces_dead_idle_connection(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_hello(fb, 5, 8);
    fake_bolt_close(fb); /* "restart" */
    fake_bolt_accept(fb);
    fake_bolt_hello(fb, 5, 8);
    fake_bolt_expect(fb, RUN);
    fake_bolt_expect(fb, PULL);
    fake_bolt_success(fb, "{\"fields\":[\"x\"]}");
    fake_bolt_record(fb, "[1]");
    fake_bolt_success(fb, "{}");
    fake_bolt_start(fb);
    bolt_config cfg = cfg_for(fb);
    bolt_pool *p;
    eg_error err;
    assert_rc(bolt_pool_new(&p, &cfg, NULL, &err), 0);
    assert_rc(bolt_pool_verify(p, &err), 0);
    eg_sleep_ms(100); /* let the close arrive */
    bolt_conn *c;
    assert_rc(bolt_pool_acquire(p, &c, &err), 0);
    json_t *rows = NULL;
    assert_rc(bolt_conn_query_json(c, "RETURN 1 AS x", NULL, NULL, &rows, &err), 0);
    assert_int_equal(json_array_size(rows), 1);
    json_decref(rows);
    bolt_pool_release(p, c);
    bolt_pool_stats st;
    bolt_pool_get_stats(p, &st);
    assert_int_equal(st.opened, 2);
    assert_int_equal(st.closed, 1);
    bolt_pool_free(p);
    assert_int_equal(fake_bolt_wait(fb), 0);
    fake_bolt_free(fb);
}

static void test_bolt_pool__liveness_ping(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_hello(fb, 5, 8);
    fake_bolt_expect(fb, RESET);
    fake_bolt_success(fb, "{}");
    fake_bolt_start(fb);
    bolt_config cfg = cfg_for(fb);
    bolt_pool_opts po = BOLT_POOL_OPTS_INIT;
    po.liveness_check_ms = 1;
    bolt_pool *p;
    eg_error err;
    assert_rc(bolt_pool_new(&p, &cfg, &po, &err), 0);
    assert_rc(bolt_pool_verify(p, &err), 0);
    eg_sleep_ms(20);
    bolt_conn *c;
    assert_rc(bolt_pool_acquire(p, &c, &err), 0);
    bolt_pool_release(p, c);
    bolt_pool_free(p);
    assert_int_equal(fake_bolt_wait(fb), 0);
    fake_bolt_free(fb);
}

typedef struct work {
    int calls;
} work;

static int unit_of_work(bolt_conn *c, void *payload, eg_error *err)
{
    work *w = payload;
    w->calls++;
    return bolt_conn_exec(c, "MERGE (n:X {id: 1}) SET n.v = 2", NULL, NULL, NULL, err);
}

/* BEGIN+RUN+PULL answered with SUCCESS, FAILURE(code), IGNORED; then RESET. */
static void script_tx_fails(fake_bolt *fb, const char *code)
{
    fake_bolt_expect(fb, BEGIN);
    fake_bolt_expect(fb, RUN);
    fake_bolt_expect(fb, PULL);
    fake_bolt_success(fb, "{}");
    fake_bolt_failure(fb, code, "scripted failure");
    fake_bolt_ignored(fb);
    fake_bolt_expect(fb, RESET);
    fake_bolt_success(fb, "{}");
}

/* BEGIN+RUN+PULL succeed, COMMIT succeeds. */
static void script_tx_commits(fake_bolt *fb)
{
    fake_bolt_expect(fb, BEGIN);
    fake_bolt_expect(fb, RUN);
    fake_bolt_expect(fb, PULL);
    fake_bolt_success(fb, "{}");
    fake_bolt_success(fb, "{\"fields\":[]}");
    fake_bolt_success(fb, "{}");
    fake_bolt_expect(fb, COMMIT);
    fake_bolt_success(fb, "{\"bookmark\":\"b1\"}");
}

/* Start the script, run one managed write that must succeed on its second attempt. */
static void run_write_twice(fake_bolt *fb, bolt_pool **p, bolt_pool_stats *st)
{
    fake_bolt_start(fb);
    bolt_config cfg = cfg_for(fb);
    eg_error err;
    assert_rc(bolt_pool_new(p, &cfg, NULL, &err), 0);
    work w = {0};
    bolt_retry_opts ro = BOLT_RETRY_OPTS_INIT;
    ro.initial_delay_ms = 5;
    assert_rc(bolt_pool_execute_write(*p, NULL, &ro, unit_of_work, &w, &err), 0);
    assert_int_equal(w.calls, 2);
    bolt_pool_get_stats(*p, st);
}

static void test_bolt_pool__execute_write_retries_transient(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_hello(fb, 5, 8);
    script_tx_fails(fb, "Neo.TransientError.Transaction.DeadlockDetected");
    /* second attempt on the same (healthy) connection */
    script_tx_commits(fb);
    bolt_pool *p;
    bolt_pool_stats st;
    run_write_twice(fb, &p, &st);
    assert_int_equal(st.retries, 1);
    assert_int_equal(st.opened, 1);
    bolt_pool_free(p);
    assert_int_equal(fake_bolt_wait(fb), 0);
    fake_bolt_free(fb);
}

static void test_bolt_pool__client_error_not_retried(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_hello(fb, 5, 8);
    script_tx_fails(fb, "Neo.TransientError.Transaction.Terminated");
    fake_bolt_start(fb);
    bolt_config cfg = cfg_for(fb);
    bolt_pool *p;
    eg_error err;
    assert_rc(bolt_pool_new(&p, &cfg, NULL, &err), 0);
    work w = {0};
    assert_rc(bolt_pool_execute_write(p, NULL, NULL, unit_of_work, &w, &err), EG_ECLIENT);
    assert_int_equal(w.calls, 1);
    assert_false(err.retryable);
    bolt_pool_free(p);
    assert_int_equal(fake_bolt_wait(fb), 0);
    fake_bolt_free(fb);
}

/* Connection lost mid-transaction: retried on a new connection. */
static void test_bolt_pool__connection_loss_retried(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_hello(fb, 5, 8);
    fake_bolt_expect(fb, BEGIN);
    fake_bolt_expect(fb, RUN);
    fake_bolt_expect(fb, PULL);
    fake_bolt_accept(fb); /* drops the first connection */
    fake_bolt_hello(fb, 5, 8);
    script_tx_commits(fb);
    bolt_pool *p;
    bolt_pool_stats st;
    run_write_twice(fb, &p, &st);
    assert_int_equal(st.opened, 2);
    bolt_pool_free(p);
    assert_int_equal(fake_bolt_wait(fb), 0);
    fake_bolt_free(fb);
}

static void test_bolt_pool__budget_exhausted(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_hello(fb, 5, 8);
    for (int i = 0; i < 40; i++) {
        script_tx_fails(fb, "Neo.TransientError.General.DatabaseUnavailable");
    }
    fake_bolt_start(fb);
    bolt_config cfg = cfg_for(fb);
    bolt_pool *p;
    eg_error err;
    assert_rc(bolt_pool_new(&p, &cfg, NULL, &err), 0);
    work w = {0};
    bolt_retry_opts ro = BOLT_RETRY_OPTS_INIT;
    ro.initial_delay_ms = 10;
    ro.max_delay_ms = 40;
    ro.max_retry_time_ms = 200;
    int64_t t0 = eg_mono_ms();
    assert_rc(bolt_pool_execute_write(p, NULL, &ro, unit_of_work, &w, &err), EG_ETRANSIENT);
    int64_t took = eg_mono_ms() - t0;
    assert_true(took < 1000);
    /* At least one retry happened and the budget bounded them; on a loaded
     * machine an attempt against the fake server can take most of the
     * 200 ms budget, so more than two attempts are not guaranteed. */
    if (!(w.calls >= 2 && w.calls < 40))
        fail_msg("calls=%d took=%lld err=%s", w.calls, (long long)took, err.message);
    assert_non_null(strstr(err.message, "gave up"));
    bolt_pool_free(p);
    fake_bolt_free(fb); /* the script does not run to its end: not checked */
}

/* AuthorizationExpired: the connection is dropped and the work retried on a new one. */
static void test_bolt_pool__authorization_expired_reconnects(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_hello(fb, 5, 8);
    script_tx_fails(fb, "Neo.ClientError.Security.AuthorizationExpired");
    fake_bolt_accept(fb);
    fake_bolt_hello(fb, 5, 8);
    script_tx_commits(fb);
    bolt_pool *p;
    bolt_pool_stats st;
    run_write_twice(fb, &p, &st);
    assert_int_equal(st.opened, 2);
    assert_int_equal(st.closed, 1);
    bolt_pool_free(p);
    assert_int_equal(fake_bolt_wait(fb), 0);
    fake_bolt_free(fb);
}

static int unit_auto(bolt_conn *c, void *payload, eg_error *err)
{
    work *w = payload;
    w->calls++;
    return bolt_conn_exec(c, "MERGE (n:X {id: 1}) SET n.v = 2", NULL, bolt_conn_unit_opts(c), NULL, err);
}

/*
 * An auto-commit unit: RUN and PULL leave in one write, with the unit's
 * transaction timeout, and no BEGIN or COMMIT is ever sent; a transient
 * FAILURE is retried like a transaction's.
 */
static void test_bolt_pool__autocommit_unit_one_exchange(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_hello(fb, 5, 8);
    fake_bolt_expect(fb, RUN);
    fake_bolt_expect(fb, PULL);
    fake_bolt_failure(fb, "Neo.TransientError.Transaction.DeadlockDetected", "scripted failure");
    fake_bolt_ignored(fb);
    fake_bolt_expect(fb, RESET);
    fake_bolt_success(fb, "{}");
    /* the script answers only once both are in: the client pipelined them */
    fake_bolt_expect(fb, RUN);
    fake_bolt_expect(fb, PULL);
    fake_bolt_success(fb, "{\"fields\":[]}");
    fake_bolt_success(fb, "{\"bookmark\":\"b2\"}");
    fake_bolt_start(fb);
    bolt_config cfg = cfg_for(fb);
    eg_error err;
    bolt_pool *p;
    assert_rc(bolt_pool_new(&p, &cfg, NULL, &err), 0);
    work w = {0};
    bolt_retry_opts ro = BOLT_RETRY_OPTS_INIT;
    ro.initial_delay_ms = 5;
    bolt_tx_opts tx = BOLT_TX_OPTS_INIT;
    tx.timeout_ms = 4321;
    assert_rc(bolt_pool_execute_write_autocommit(p, &tx, &ro, unit_auto, &w, &err), 0);
    assert_int_equal(w.calls, 2);
    bolt_pool_free(p);
    assert_int_equal(fake_bolt_wait(fb), 0);
    size_t n = fake_bolt_nreceived(fb);
    size_t runs = 0;
    for (size_t i = 0; i < n; i++) {
        int sig = fake_bolt_received_sig(fb, i);
        assert_true(sig != BEGIN && sig != COMMIT);
        if (sig != RUN)
            continue;
        runs++;
        const bolt_value *extra = fake_bolt_received_field(fb, i, 2);
        assert_non_null(extra);
        assert_int_equal(bolt_value_int(bolt_value_get(extra, "tx_timeout"), -1), 4321);
    }
    assert_int_equal(runs, 2);
    fake_bolt_free(fb);
}

static int unit_read_two(bolt_conn *c, void *payload, eg_error *err)
{
    work *w = payload;
    w->calls++;
    const char *cy[2] = {"MATCH (n:X) RETURN n.v AS v", "MATCH (n:Y) RETURN n.v AS v"};
    const bolt_params *ps[2] = {NULL, NULL};
    json_t *rows[2] = {NULL, NULL};
    int rc = bolt_conn_query_json_each(c, cy, ps, 2, bolt_conn_unit_opts(c), rows, err);
    json_decref(rows[0]);
    json_decref(rows[1]);
    return rc;
}

/*
 * A read unit as auto-commit queries: its two statements leave pipelined in
 * one write, each in read mode with the unit's timeout, and neither BEGIN
 * nor COMMIT is sent (the COMMIT round trip is what the mode saves).
 */
static void test_bolt_pool__read_autocommit_unit_no_commit(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_hello(fb, 5, 8);
    /* the script answers only once all four are in: the client pipelined them */
    fake_bolt_expect(fb, RUN);
    fake_bolt_expect(fb, PULL);
    fake_bolt_expect(fb, RUN);
    fake_bolt_expect(fb, PULL);
    fake_bolt_success(fb, "{\"fields\":[\"v\"]}");
    fake_bolt_success(fb, "{\"bookmark\":\"b1\"}");
    fake_bolt_success(fb, "{\"fields\":[\"v\"]}");
    fake_bolt_success(fb, "{\"bookmark\":\"b2\"}");
    fake_bolt_start(fb);
    bolt_config cfg = cfg_for(fb);
    eg_error err;
    bolt_pool *p;
    assert_rc(bolt_pool_new(&p, &cfg, NULL, &err), 0);
    work w = {0};
    bolt_tx_opts tx = BOLT_TX_OPTS_INIT;
    tx.timeout_ms = 2345;
    assert_rc(bolt_pool_execute_read_autocommit(p, &tx, NULL, unit_read_two, &w, &err), 0);
    assert_int_equal(w.calls, 1);
    bolt_pool_free(p);
    assert_int_equal(fake_bolt_wait(fb), 0);
    size_t n = fake_bolt_nreceived(fb), runs = 0;
    for (size_t i = 0; i < n; i++) {
        int sig = fake_bolt_received_sig(fb, i);
        assert_true(sig != BEGIN && sig != COMMIT);
        if (sig != RUN)
            continue;
        runs++;
        const bolt_value *extra = fake_bolt_received_field(fb, i, 2);
        assert_non_null(extra);
        assert_int_equal(bolt_value_int(bolt_value_get(extra, "tx_timeout"), -1), 2345);
        assert_string_equal(bolt_value_cstr(bolt_value_get(extra, "mode")), "r");
    }
    assert_int_equal(runs, 2);
    fake_bolt_free(fb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bolt_pool__reuses_and_times_out),
        cmocka_unit_test(test_bolt_pool__no_wait_fails_at_once),
        cmocka_unit_test(test_bolt_pool__replaces_dead_idle_connection),
        cmocka_unit_test(test_bolt_pool__liveness_ping),
        cmocka_unit_test(test_bolt_pool__execute_write_retries_transient),
        cmocka_unit_test(test_bolt_pool__client_error_not_retried),
        cmocka_unit_test(test_bolt_pool__connection_loss_retried),
        cmocka_unit_test(test_bolt_pool__budget_exhausted),
        cmocka_unit_test(test_bolt_pool__authorization_expired_reconnects),
        cmocka_unit_test(test_bolt_pool__autocommit_unit_one_exchange),
        cmocka_unit_test(test_bolt_pool__read_autocommit_unit_no_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
