/*
 * test_worker_neo4j_restart.c - Neo4j restarted while workers run: they
 * recover (pool reconnects, failed completions expire and are reclaimed)
 * and nothing is lost.  Uses a *private* Neo4j ($ENGRAM_NEO4J_LOCAL), never
 * the shared one.  Prints `stress: neo4j_restart jobs=N duplicates=N lost=N`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "graph/graph.h"
#include "support/embed_fixture.h"
#include "support/fake_http.h"
#include "support/testenv.h"
#include "worker/manager.h"
#include "worker/neo4j_sink.h"

#define PW "restart-test-pw"

static int skip_rc;
static char datadir[4096];

static int neo4j_cmd(const char *cmd, char *uri_out, size_t cap)
{
    char line[8192];
    /* --watch-pid: if ctest kills us on a timeout, the JVM stops by itself */
    /* the password in the environment: a command line shows it in ps */
    setenv("NEO4J_PASSWORD", PW, 1);
    snprintf(line, sizeof line, "'%s' %s --data '%s' --watch-pid %ld 2>&1", getenv("ENGRAM_NEO4J_LOCAL"), cmd,
             datadir, (long)getpid());
    FILE *p = popen(line, "r");
    if (!p)
        return -1;
    char buf[1024];
    if (uri_out)
        uri_out[0] = '\0';
    while (fgets(buf, sizeof buf, p)) {
        fputs(buf, stderr);
        if (uri_out && strncmp(buf, "bolt://", 7) == 0) {
            buf[strcspn(buf, "\n")] = '\0';
            snprintf(uri_out, cap, "%.250s", buf);
        }
    }
    return pclose(p);
}

static void test_worker_stress__neo4j_restart(void **state)
{
    (void)state;
    if (!getenv("ENGRAM_NEO4J_LOCAL")) {
        fprintf(stderr, "SKIP: ENGRAM_NEO4J_LOCAL not set (needs a private Neo4j)\n");
        skip_rc = 77;
        skip();
    }
    snprintf(datadir, sizeof datadir, "%s/neo4j", eg_testenv_tmpdir("restart"));
    char uri[256];
    if (neo4j_cmd("start --port 0", uri, sizeof uri) != 0 || !uri[0])
        fail_msg("could not start a private Neo4j");
    bolt_config cfg = BOLT_CONFIG_INIT;
    cfg.uri = uri;
    cfg.auth = BOLT_AUTH_BASIC;
    cfg.user = "neo4j";
    cfg.password = PW;
    efx f;
    queue_opts qo = QUEUE_OPTS_INIT;
    qo.backoff_base_ms = 100;
    qo.backoff_cap_ms = 1000;
    qo.lease_ms = 5000;
    qo.heartbeat_ms = 1000;
    qo.reclaim_ms = 1000;
    assert_int_equal(efx_open_cfg(&f, &cfg, "restart", "text-embedding-3-small", &qo, 8), 0);
    const int N = 600;
    assert_int_equal(efx_create_range(&f, 0, N, NULL, 0), 0);
    fake_embed *srv;
    fake_embed_opts fo = {.dims = f.index_dims, .latency_ms = 150};
    assert_int_equal(fake_embed_start(&srv, &fo), 0);
    embed_config ec = {.kind = EMBED_PROVIDER_OPENAI, .base_url = fake_embed_openai_url(srv), .api_key = "k",
                       .model = "text-embedding-3-small", .dimensions = f.index_dims, .timeout_ms = 10000};
    graph_opts go;
    assert_int_equal(graph_opts_from_env(&go, NULL), 0);
    worker_sink *sink;
    assert_int_equal(worker_neo4j_sink_new(&sink, f.pool, NULL, go.vector_index, NULL), 0);
    worker_opts wo;
    assert_int_equal(worker_opts_from_env(&wo, ec.kind, NULL), 0);
    wo.concurrency = 2;
    wo.batch = 10;
    wo.poll_ms = 50;
    worker_manager *m;
    eg_error err = {0};
    if (worker_manager_new(&m, &wo, &ec, f.store, sink, &err) || worker_manager_start(m, &err))
        fail_msg("manager: %s", err.message);
    worker_stats ws;
    for (int i = 0; i < 600; i++) {
        worker_manager_get_stats(m, &ws);
        if (ws.completed >= 100)
            break;
        eg_sleep_ms(50);
    }
    int64_t done_before = (int64_t)ws.completed;
    int64_t t0 = eg_mono_ms();
    assert_int_equal(neo4j_cmd("restart", NULL, 0), 0);
    int64_t restart_ms = eg_mono_ms() - t0;
    int drc = worker_manager_drain(m, 300000);
    int64_t recovery_ms = eg_mono_ms() - t0;
    worker_manager_stop(m, 2000);
    worker_manager_get_stats(m, &ws);
    int64_t c[QUEUE_STATE_COUNT];
    assert_int_equal(efx_counts(&f, c), 0);
    efx_report rep;
    assert_int_equal(efx_check(&f, &rep), 0);
    int64_t finished = c[QUEUE_COMPLETED] + c[QUEUE_SUPERSEDED] + c[QUEUE_DEAD];
    int64_t dup = (int64_t)(ws.completed + ws.superseded + ws.dead) - finished;
    int64_t lost = (N - c[QUEUE_COMPLETED]) + (rep.entities - rep.with_current_vector);
    printf("stress: neo4j_restart jobs=%d duplicates=%lld lost=%lld completed=%lld dead=%lld "
           "completed_before_restart=%lld restart_seconds=%.1f recovered_seconds=%.1f lost_leases=%llu\n",
           N, (long long)dup, (long long)lost, (long long)c[QUEUE_COMPLETED], (long long)c[QUEUE_DEAD],
           (long long)done_before, (double)restart_ms / 1000.0, (double)recovery_ms / 1000.0,
           (unsigned long long)ws.lost);
    assert_int_equal(drc, 0);
    assert_true(done_before < N);
    assert_int_equal(lost, 0);
    assert_true(dup <= 0); /* a completion whose commit outcome was unknown may count 0, never twice */
    assert_int_equal(c[QUEUE_DEAD], 0);
    worker_manager_free(m);
    worker_sink_free(sink);
    fake_embed_stop(srv);
    efx_close(&f);
    neo4j_cmd("stop", NULL, 0);
}

int main(void)
{
    eg_log_set_level(EG_LOG_CRITICAL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_stress__neo4j_restart),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    if (datadir[0] && getenv("ENGRAM_NEO4J_LOCAL")) {
        neo4j_cmd("stop", NULL, 0);
        if (rc == 0) {
            /* the data lives in <scratch>/neo4j: remove the scratch dir */
            char *slash = strrchr(datadir, '/');
            if (slash)
                *slash = '\0';
            eg_testenv_rmtree(datadir);
        }
    }
    return rc ? rc : skip_rc;
}
