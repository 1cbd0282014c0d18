/*
 * test_serve_signal.c - `engram serve` on stdio, with in-server workers, shuts
 * down on SIGTERM and SIGINT as `engram worker` does: the leases its workers
 * hold are released, so the jobs are pending again at once with no attempt
 * spent (issue #14 finding 11; before, the signal killed the process and
 * the leases stayed until they expired, each costing an attempt).
 *
 * The real binary on the test Neo4j, a fake OpenAI-compatible provider that
 * answers after 6 s (so a batch is in flight, its leases held, when the
 * signal arrives), stdin a pipe that stays open (the client is still there).
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

/* Start `engram serve --workers 1` with stdin from a pipe; *stdin_w keeps it open. */
static pid_t spawn_serve(const efx *f, const char *base_url, const char *logpath, int *stdin_w)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    const char *bin = getenv("ENGRAM_BIN");
    pid_t pid = fork();
    if (pid != 0) {
        close(p[0]);
        *stdin_w = p[1];
        return pid;
    }
    dup2(p[0], 0);
    close(p[0]);
    close(p[1]);
    efx_child_log(logpath);
    efx_child_env(f, base_url);
    setenv("ENGRAM_NAMESPACE", f->ns, 1);
    setenv("ENGRAM_WORKER_BATCH", "5", 1);
    setenv("ENGRAM_WORKER_SHUTDOWN_MS", "500", 1);
    setenv("ENGRAM_QUEUE_LEASE_MS", "60000", 1); /* an expired lease cannot pass for a released one */
    setenv("ENGRAM_QUEUE_HEARTBEAT_MS", "5000", 1);
    execl(bin, bin, "serve", "--workers", "1", (char *)NULL);
    _exit(127);
}

static void stops_on(int sig, const char *tag)
{
    if (!getenv("ENGRAM_BIN")) {
        skip_rc = 77;
        skip();
    }
    efx f;
    int rc = efx_open(&f, tag, "text-embedding-3-small", NULL, 4);
    if (rc) {
        skip_rc = rc;
        skip();
    }
    const int N = 10;
    assert_int_equal(efx_create_range(&f, 0, N, NULL, 0), 0);
    fake_embed *srv;
    fake_embed_opts fo = {.dims = f.index_dims, .latency_ms = 6000};
    assert_int_equal(fake_embed_start(&srv, &fo), 0);
    const char *dir = eg_testenv_tmpdir(tag);
    char logp[512];
    snprintf(logp, sizeof logp, "%s/serve.log", dir);
    int stdin_w = -1;
    pid_t pid = spawn_serve(&f, fake_embed_openai_url(srv), logp, &stdin_w);
    assert_true(pid > 0);

    /* wait until a batch is in flight: the provider got a request, leases are held */
    int64_t counts[QUEUE_STATE_COUNT];
    fake_embed_stats st = {0};
    for (int i = 0; i < 1500 && st.requests < 1; i++) {
        fake_embed_stats_get(srv, &st);
        eg_sleep_ms(20);
    }
    assert_true(st.requests >= 1);
    assert_int_equal(efx_counts(&f, counts), 0);
    int64_t leased_before = counts[QUEUE_LEASED];
    assert_true(leased_before > 0);

    int64_t t0 = eg_mono_ms();
    assert_int_equal(kill(pid, sig), 0);
    int status = 0;
    pid_t w = 0;
    while ((w = waitpid(pid, &status, WNOHANG)) == 0 && eg_mono_ms() - t0 < 20000)
        eg_sleep_ms(20);
    if (w == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("serve did not stop within 20 s of the signal (log: %s)", logp);
    }
    int64_t dt = eg_mono_ms() - t0;
    close(stdin_w);
    if (!WIFEXITED(status))
        fail_msg("serve died of signal %d instead of shutting down (log: %s)", WTERMSIG(status), logp);
    assert_int_equal(WEXITSTATUS(status), 0);

    /* released, not abandoned: pending at once, no attempt spent */
    assert_int_equal(efx_counts(&f, counts), 0);
    assert_int_equal(counts[QUEUE_LEASED], 0);
    assert_int_equal(counts[QUEUE_PENDING], N);
    queue_list_filter lf = QUEUE_LIST_FILTER_INIT;
    lf.ns = f.ns;
    lf.limit = 100;
    queue_job *jobs = NULL;
    size_t n = 0;
    assert_int_equal(queue_list(f.store, &lf, &jobs, &n, NULL, NULL), 0);
    assert_int_equal(n, (size_t)N);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(jobs[i].attempts, 0);
    queue_jobs_free(jobs, n);
    printf("serve_signal: %s leased_before=%lld stopped_ms=%lld\n", tag, (long long)leased_before,
           (long long)dt);
    fake_embed_stop(srv);
    efx_close(&f);
    eg_testenv_rmtree(dir);
}

static void test_serve_signal__sigterm_releases_leases(void **state)
{
    (void)state;
    stops_on(SIGTERM, "serve-term");
}

static void test_serve_signal__sigint_releases_leases(void **state)
{
    (void)state;
    stops_on(SIGINT, "serve-int");
}

int main(void)
{
    eg_log_set_level(EG_LOG_CRITICAL);
    bolt_config cfg;
    int rc = eg_testenv_neo4j(&cfg);
    if (rc)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serve_signal__sigterm_releases_leases),
        cmocka_unit_test(test_serve_signal__sigint_releases_leases),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc ? rc : skip_rc;
}
