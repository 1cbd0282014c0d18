/*
 * test_job_store.c - the shared pieces of the job store: settings from the
 * environment, the backoff formula, dedupe keys, names, argument checks.
 */
#include "core/alloc.h"
#include "queue/job_store.h"
#include "queue/mem_store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void unset_all(void)
{
    const char *v[] = {"ENGRAM_QUEUE_NAME", "ENGRAM_QUEUE_LEASE_MS", "ENGRAM_QUEUE_HEARTBEAT_MS",
                       "ENGRAM_QUEUE_MAX_ATTEMPTS", "ENGRAM_QUEUE_BACKOFF_BASE_MS", "ENGRAM_QUEUE_BACKOFF_CAP_MS",
                       "ENGRAM_QUEUE_RETENTION_HOURS", "ENGRAM_QUEUE_PRUNE_BATCH", "ENGRAM_QUEUE_RECLAIM_MS",
                       "ENGRAM_QUEUE_TX_TIMEOUT_MS"};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        unsetenv(v[i]);
}

static void test_queue_job_store__opts_defaults_and_env(void **state)
{
    (void)state;
    unset_all();
    queue_opts o;
    eg_error err = {0};
    assert_int_equal(queue_opts_from_env(&o, &err), 0);
    assert_string_equal(o.name, "default");
    assert_int_equal(o.lease_ms, 30000);
    assert_int_equal(o.heartbeat_ms, 10000);
    assert_int_equal(o.max_attempts, 8);
    assert_int_equal(o.retention_ms, 7LL * 24 * 3600 * 1000);
    assert_int_equal(o.tx_timeout_ms, 30000);
    setenv("ENGRAM_QUEUE_NAME", "tenant-a.embeds", 1);
    setenv("ENGRAM_QUEUE_LEASE_MS", "2000", 1);
    setenv("ENGRAM_QUEUE_HEARTBEAT_MS", "500", 1);
    setenv("ENGRAM_QUEUE_MAX_ATTEMPTS", "3", 1);
    setenv("ENGRAM_QUEUE_BACKOFF_BASE_MS", "100", 1);
    setenv("ENGRAM_QUEUE_BACKOFF_CAP_MS", "1000", 1);
    setenv("ENGRAM_QUEUE_RETENTION_HOURS", "2", 1);
    setenv("ENGRAM_QUEUE_PRUNE_BATCH", "50", 1);
    setenv("ENGRAM_QUEUE_RECLAIM_MS", "250", 1);
    setenv("ENGRAM_QUEUE_TX_TIMEOUT_MS", "5000", 1);
    assert_int_equal(queue_opts_from_env(&o, &err), 0);
    assert_string_equal(o.name, "tenant-a.embeds");
    assert_int_equal(o.lease_ms, 2000);
    assert_int_equal(o.heartbeat_ms, 500);
    assert_int_equal(o.max_attempts, 3);
    assert_int_equal(o.backoff_base_ms, 100);
    assert_int_equal(o.backoff_cap_ms, 1000);
    assert_int_equal(o.retention_ms, 2 * 3600000LL);
    assert_int_equal(o.prune_batch, 50);
    assert_int_equal(o.reclaim_ms, 250);
    assert_int_equal(o.tx_timeout_ms, 5000);
    unset_all();
}

static void test_queue_job_store__opts_rejects_bad_values(void **state)
{
    (void)state;
    queue_opts o;
    const char *bad[][2] = {{"ENGRAM_QUEUE_LEASE_MS", "0"},      {"ENGRAM_QUEUE_LEASE_MS", "-5"},
                            {"ENGRAM_QUEUE_LEASE_MS", "12abc"},  {"ENGRAM_QUEUE_MAX_ATTEMPTS", "100000"},
                            {"ENGRAM_QUEUE_HEARTBEAT_MS", "30000"}, {"ENGRAM_QUEUE_NAME", "bad name"},
                            {"ENGRAM_QUEUE_BACKOFF_CAP_MS", "10"}, {"ENGRAM_QUEUE_TX_TIMEOUT_MS", "999"},
                            {"ENGRAM_QUEUE_TX_TIMEOUT_MS", "0"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unset_all();
        setenv(bad[i][0], bad[i][1], 1);
        eg_error err = {0};
        assert_int_equal(queue_opts_from_env(&o, &err), EG_EINVAL);
        /* the message names the variable */
        assert_non_null(strstr(err.message, bad[i][0]));
    }
    unset_all();
}

static void test_queue_job_store__backoff_grows_jitters_and_caps(void **state)
{
    (void)state;
    queue_opts o = QUEUE_OPTS_INIT;
    o.backoff_base_ms = 1000;
    o.backoff_cap_ms = 60000;
    assert_int_equal(queue_backoff_ms(&o, 1, 0.0), 500);
    assert_int_equal(queue_backoff_ms(&o, 1, 0.999999), 999);
    assert_int_equal(queue_backoff_ms(&o, 2, 0.0), 1000);
    assert_int_equal(queue_backoff_ms(&o, 3, 0.5), 3000);
    for (int n = 1; n < 40; n++) {
        int64_t lo = queue_backoff_ms(&o, n, 0.0), hi = queue_backoff_ms(&o, n, 0.999999);
        assert_true(lo <= hi);
        assert_true(hi <= 60000);
        /* the next attempt's smallest delay is at least this one's largest until the cap */
        if (queue_backoff_ms(&o, n + 1, 0.999999) < 60000 - 1)
            assert_true(queue_backoff_ms(&o, n + 1, 0.0) >= hi);
    }
    assert_int_equal(queue_backoff_ms(&o, 1000, 0.0), 30000); /* huge attempt counts do not overflow */
}

static void test_queue_job_store__dedupe_key(void **state)
{
    (void)state;
    char a[65], b[65], c[65];
    assert_int_equal(queue_dedupe_key(a, "default", "ns", "e", "v1", "m"), 0);
    queue_dedupe_key(b, "default", "ns", "e", "v1", "m");
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), 64);
    queue_dedupe_key(c, "default", "ns", "e", "v2", "m");
    assert_string_not_equal(a, c);
    /* no separator games: ("a","bc") != ("ab","c") */
    queue_dedupe_key(b, "default", "a", "bc", "v", "m");
    queue_dedupe_key(c, "default", "ab", "c", "v", "m");
    assert_string_not_equal(b, c);
    /* the queue is part of the key (issue #14 finding 17); "default" keeps the old keys */
    queue_dedupe_key(b, "other", "ns", "e", "v1", "m");
    assert_string_not_equal(a, b);
    queue_dedupe_key(c, NULL, "ns", "e", "v1", "m");
    assert_string_equal(a, c);
    /* pinned: keys already stored in databases must keep matching */
    assert_string_equal(a, "4f1179843b9881bf4dfb69b5b7ee81de5b86abd2ae8350e58aa775acff60273a");
}

/* A hashing failure is an error and leaves no key: enqueuing under "" would
 * merge every such job into one. */
static void test_queue_job_store__dedupe_key_failure_is_an_error(void **state)
{
    (void)state;
    char a[65] = "stale";
    eg_alloc_fail_at(1, 0);
    int rc = queue_dedupe_key(a, "default", "ns", "e", "v1", "m");
    eg_alloc_fail_at(0, 0);
    assert_int_equal(rc, EG_ENOMEM);
    assert_string_equal(a, "");
}

static void test_queue_job_store__names(void **state)
{
    (void)state;
    for (int s = 0; s < QUEUE_STATE_COUNT; s++)
        assert_int_equal(queue_state_parse(queue_state_name((queue_state)s)), s);
    assert_int_equal(queue_state_parse("running"), -1);
    assert_int_equal(queue_state_parse(NULL), -1);
    assert_true(queue_name_valid("a.b-c_d:1"));
    assert_false(queue_name_valid(""));
    assert_false(queue_name_valid("has space"));
    assert_false(queue_name_valid("x'; DROP"));
}

static void test_queue_job_store__argument_checks(void **state)
{
    (void)state;
    queue_store *s = NULL;
    assert_int_equal(queue_mem_new(&s, NULL, NULL, NULL, NULL), 0);
    queue_job *jobs = NULL;
    size_t n = 0;
    queue_lease_opts lo = {.owner = "", .max_jobs = 1};
    assert_int_equal(queue_lease(s, &lo, &jobs, &n, NULL), EG_EINVAL);
    lo.owner = "w";
    lo.max_jobs = QUEUE_LEASE_MAX + 1;
    assert_int_equal(queue_lease(s, &lo, &jobs, &n, NULL), EG_EINVAL);
    queue_enqueue_req r = {.ns = "n", .entity = "e", .version = NULL, .model = "m"};
    queue_enqueue_result out;
    assert_int_equal(queue_enqueue(s, NULL, &r, 1, &out, NULL), EG_EINVAL);
    queue_lease_ref refs[2] = {{"j1", "t", NULL}, {"j1", "t", NULL}};
    assert_int_equal(queue_complete(s, "w", refs, 2, NULL, NULL, NULL, NULL), EG_EINVAL);
    assert_int_equal(queue_heartbeat(s, "w", refs, 2, 0, NULL, NULL, NULL), EG_EINVAL);
    assert_int_equal(queue_release(s, "w", refs, 2, 0, NULL, NULL), EG_EINVAL);
    queue_list_filter f = QUEUE_LIST_FILTER_INIT;
    f.limit = 5000;
    assert_int_equal(queue_list(s, &f, &jobs, &n, NULL, NULL), EG_EINVAL);
    assert_string_equal(queue_store_kind(s), "memory");
    queue_store_free(s);
    queue_store_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_job_store__opts_defaults_and_env),
        cmocka_unit_test(test_queue_job_store__opts_rejects_bad_values),
        cmocka_unit_test(test_queue_job_store__backoff_grows_jitters_and_caps),
        cmocka_unit_test(test_queue_job_store__dedupe_key),
        cmocka_unit_test(test_queue_job_store__dedupe_key_failure_is_an_error),
        cmocka_unit_test(test_queue_job_store__names),
        cmocka_unit_test(test_queue_job_store__argument_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
