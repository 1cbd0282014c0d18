/*
 * test_worker_kill9.c - a worker process killed with kill -9 mid-batch
 * loses nothing: its leases expire, another process reclaims and finishes
 * them, and no job is completed twice.
 *
 * Two `engram worker` processes (the real binary) on one queue, a fake
 * provider with 300 ms latency so batches are in flight when the first
 * process is killed.  Completions are counted from the workers' debug logs
 * ("job completed job=<id>").
 * Prints `stress: worker_kill9 jobs=N duplicates=N lost=N ...`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "support/embed_fixture.h"
#include "support/fake_http.h"
#include "support/testenv.h"

static int skip_rc;

static pid_t spawn_worker(const efx *f, const char *base_url, const char *logpath, bool drain)
{
    const char *bin = getenv("ENGRAM_BIN");
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    efx_child_log(logpath);
    efx_child_env(f, base_url);
    if (drain)
        execl(bin, bin, "worker", "--concurrency", "2", "--batch", "20", "--no-health", "--drain", "--max-seconds",
              "180", (char *)NULL);
    else
        execl(bin, bin, "worker", "--concurrency", "2", "--batch", "20", "--no-health", (char *)NULL);
    _exit(127);
}

static void test_worker_stress__kill9_mid_batch_loses_nothing(void **state)
{
    (void)state;
    if (!getenv("ENGRAM_BIN")) {
        skip_rc = 77;
        skip();
    }
    efx f;
    queue_opts qo = QUEUE_OPTS_INIT;
    int rc = efx_open(&f, "kill9", "text-embedding-3-small", &qo, 4);
    if (rc) {
        skip_rc = rc;
        skip();
    }
    const int N = 300;
    assert_int_equal(efx_create_range(&f, 0, N, NULL, 0), 0);
    fake_embed *srv;
    fake_embed_opts fo = {.dims = f.index_dims, .latency_ms = 300};
    assert_int_equal(fake_embed_start(&srv, &fo), 0);
    const char *dir = eg_testenv_tmpdir("kill9");
    char loga[512], logb[512];
    snprintf(loga, sizeof loga, "%s/worker-a.log", dir);
    snprintf(logb, sizeof logb, "%s/worker-b.log", dir);

    pid_t a = spawn_worker(&f, fake_embed_openai_url(srv), loga, false);
    assert_true(a > 0);
    fake_embed_stats st;
    for (int i = 0; i < 600; i++) {
        fake_embed_stats_get(srv, &st);
        if (st.requests >= 4)
            break;
        eg_sleep_ms(20);
    }
    assert_true(st.requests >= 4);
    /* in the middle of a batch: a request is in flight now */
    eg_sleep_ms(150);
    assert_int_equal(kill(a, SIGKILL), 0);
    int status = 0;
    waitpid(a, &status, 0);
    int64_t counts[QUEUE_STATE_COUNT];
    assert_int_equal(efx_counts(&f, counts), 0);
    int64_t leased_at_kill = counts[QUEUE_LEASED], completed_at_kill = counts[QUEUE_COMPLETED];

    int64_t t0 = eg_mono_ms();
    pid_t b = spawn_worker(&f, fake_embed_openai_url(srv), logb, true);
    assert_true(b > 0);
    waitpid(b, &status, 0);
    int64_t dt = eg_mono_ms() - t0;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    efx_ids ids = {0};
    efx_log_completions(loga, &ids);
    size_t from_a = ids.n;
    efx_log_completions(logb, &ids);
    efx_ids_sort(&ids);
    size_t n = ids.n, distinct = efx_ids_distinct(&ids);
    efx_ids_free(&ids);
    assert_int_equal(efx_counts(&f, counts), 0);
    efx_report rep;
    assert_int_equal(efx_check(&f, &rep), 0);
    int64_t lost = (N - counts[QUEUE_COMPLETED]) + (rep.entities - rep.with_current_vector);
    printf("stress: worker_kill9 jobs=%d duplicates=%zu lost=%lld completed=%lld dead=%lld "
           "leased_at_kill=%lld completed_at_kill=%lld completions_logged_a=%zu completions_logged_b=%zu "
           "recovery_seconds=%.1f\n",
           N, n - distinct, (long long)lost, (long long)counts[QUEUE_COMPLETED], (long long)counts[QUEUE_DEAD],
           (long long)leased_at_kill, (long long)completed_at_kill, from_a, n - from_a, (double)dt / 1000.0);
    assert_true(leased_at_kill > 0);
    assert_int_equal(counts[QUEUE_COMPLETED], N);
    assert_int_equal(counts[QUEUE_DEAD], 0);
    assert_int_equal(n - distinct, 0);
    assert_int_equal(distinct, (size_t)N);
    assert_int_equal(lost, 0);
    fake_embed_stop(srv);
    efx_close(&f);
    eg_testenv_rmtree(dir); /* passed: the worker logs are not needed */
}

int main(void)
{
    eg_log_set_level(EG_LOG_CRITICAL);
    bolt_config cfg;
    int rc = eg_testenv_neo4j(&cfg);
    if (rc)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_stress__kill9_mid_batch_loses_nothing),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc ? rc : skip_rc;
}
