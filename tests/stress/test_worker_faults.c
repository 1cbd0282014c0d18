/*
 * test_worker_faults.c - the job manager on Neo4j under provider faults.
 *
 *   provider_faults  20% 500s and 10% 429 with Retry-After: every job
 *                    completes, the request rate never exceeds the limit
 *   poison           one input the provider always rejects ends dead alone
 *   health           /health 503 while the provider fails every call, 200
 *                    again once it recovers
 *
 * Each prints `stress: NAME jobs=N duplicates=N lost=N ...` where
 * duplicates = completions reported by workers beyond one per job, and
 * lost = jobs not finished plus entities without a current vector.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "graph/graph.h"
#include "support/embed_fixture.h"
#include "support/fake_http.h"
#include "support/testenv.h"
#include "worker/health.h"
#include "worker/manager.h"
#include "worker/neo4j_sink.h"

static int skip_rc;

typedef struct run {
    efx f;
    fake_embed *srv;
    worker_sink *sink;
    worker_manager *m;
    embed_config ec;
    worker_opts wo;
} run;

static bool run_open(run *r, const char *tag, const fake_embed_opts *fo_in)
{
    memset(r, 0, sizeof *r);
    queue_opts qo = QUEUE_OPTS_INIT;
    qo.backoff_base_ms = 100;
    qo.backoff_cap_ms = 1000;
    int rc = efx_open(&r->f, tag, "text-embedding-3-small", &qo, 12);
    if (rc) {
        skip_rc = rc;
        return false;
    }
    fake_embed_opts fo = *fo_in;
    fo.dims = r->f.index_dims;
    assert_int_equal(fake_embed_start(&r->srv, &fo), 0);
    r->ec = (embed_config){.kind = EMBED_PROVIDER_OPENAI, .base_url = fake_embed_openai_url(r->srv),
                           .api_key = "sk-fake", .model = "text-embedding-3-small",
                           .dimensions = r->f.index_dims, .timeout_ms = 10000};
    assert_int_equal(worker_opts_from_env(&r->wo, EMBED_PROVIDER_OFFLINE, NULL), 0);
    r->wo.poll_ms = 50;
    graph_opts go;
    assert_int_equal(graph_opts_from_env(&go, NULL), 0);
    assert_int_equal(worker_neo4j_sink_new(&r->sink, r->f.pool, go.database, go.vector_index, NULL), 0);
    return true;
}

static void run_start(run *r)
{
    eg_error err = {0};
    if (worker_manager_new(&r->m, &r->wo, &r->ec, r->f.store, r->sink, &err) || worker_manager_start(r->m, &err))
        fail_msg("manager: %s", err.message);
}

static void run_close(run *r)
{
    worker_manager_stop(r->m, 2000);
    worker_manager_free(r->m);
    worker_sink_free(r->sink);
    fake_embed_stop(r->srv);
    efx_close(&r->f);
}

/* duplicates and lost, as defined above */
static void outcome(run *r, int64_t jobs, int64_t *dup, int64_t *lost, int64_t c[QUEUE_STATE_COUNT])
{
    worker_stats ws;
    worker_manager_get_stats(r->m, &ws);
    assert_int_equal(efx_counts(&r->f, c), 0);
    int64_t finished = c[QUEUE_COMPLETED] + c[QUEUE_SUPERSEDED] + c[QUEUE_DEAD];
    *dup = (int64_t)(ws.completed + ws.superseded + ws.dead) - finished;
    efx_report rep;
    assert_int_equal(efx_check(&r->f, &rep), 0);
    *lost = (jobs - finished) + (rep.entities - rep.with_current_vector) - c[QUEUE_DEAD];
}

static void test_worker_stress__provider_faults(void **state)
{
    (void)state;
    run r;
    fake_embed_opts fo = {.latency_ms = 10, .p500 = 0.2, .p429 = 0.1, .retry_after_ms = 300, .seed = 42};
    if (!run_open(&r, "faults", &fo))
        skip();
    const int N = 400;
    assert_int_equal(efx_create_range(&r.f, 0, N, NULL, 0), 0);
    r.wo.concurrency = 4;
    r.wo.batch = 10;
    r.wo.throttle.requests_per_interval = 20; /* 20 requests per second */
    r.wo.throttle.interval_ms = 1000;
    r.wo.throttle.tokens_per_interval = 0;
    int64_t t0 = eg_mono_ms();
    run_start(&r);
    assert_int_equal(worker_manager_drain(r.m, 240000), 0);
    int64_t dt = eg_mono_ms() - t0;
    int64_t dup, lost, c[QUEUE_STATE_COUNT];
    outcome(&r, N, &dup, &lost, c);
    fake_embed_stats st;
    fake_embed_stats_get(r.srv, &st);
    uint64_t peak = fake_embed_max_in_window(r.srv, 1000);
    worker_stats ws;
    worker_manager_get_stats(r.m, &ws);
    printf("stress: provider_faults jobs=%d duplicates=%lld lost=%lld completed=%lld dead=%lld requests=%llu "
           "e500=%llu e429=%llu peak_requests_per_1s=%llu limit=20 pauses=%llu seconds=%.1f\n",
           N, (long long)dup, (long long)lost, (long long)c[QUEUE_COMPLETED], (long long)c[QUEUE_DEAD],
           (unsigned long long)st.requests, (unsigned long long)st.e500, (unsigned long long)st.e429,
           (unsigned long long)peak, (unsigned long long)ws.throttle.pauses, (double)dt / 1000.0);
    assert_int_equal(c[QUEUE_COMPLETED], N);
    assert_int_equal(c[QUEUE_DEAD], 0);
    assert_int_equal(dup, 0);
    assert_int_equal(lost, 0);
    assert_true(st.e500 > 0 && st.e429 > 0);
    assert_true(peak <= 20);
    run_close(&r);
}

static void test_worker_stress__poison(void **state)
{
    (void)state;
    run r;
    fake_embed_opts fo = {.latency_ms = 5, .poison = "POISONPILL"};
    if (!run_open(&r, "poison", &fo))
        skip();
    const int N = 200;
    const char *special[] = {NULL, NULL, NULL, NULL, NULL, NULL, NULL, "swallowed a POISONPILL"};
    assert_int_equal(efx_create_range(&r.f, 0, N, special, 8), 0);
    r.wo.concurrency = 2;
    r.wo.batch = 50;
    run_start(&r);
    assert_int_equal(worker_manager_drain(r.m, 120000), 0);
    int64_t dup, lost, c[QUEUE_STATE_COUNT];
    outcome(&r, N, &dup, &lost, c);
    fake_embed_stats st;
    fake_embed_stats_get(r.srv, &st);
    printf("stress: poison jobs=%d duplicates=%lld lost=%lld completed=%lld dead=%lld requests=%llu e400=%llu\n", N,
           (long long)dup, (long long)lost, (long long)c[QUEUE_COMPLETED], (long long)c[QUEUE_DEAD],
           (unsigned long long)st.requests, (unsigned long long)st.e400);
    assert_int_equal(c[QUEUE_DEAD], 1);
    assert_int_equal(c[QUEUE_COMPLETED], N - 1);
    assert_int_equal(dup, 0);
    assert_int_equal(lost, 0);
    run_close(&r);
}

static void test_worker_stress__health_red_while_provider_fails(void **state)
{
    (void)state;
    run r;
    fake_embed_opts fo = {.fail_all = true};
    if (!run_open(&r, "health", &fo))
        skip();
    const int N = 50;
    assert_int_equal(efx_create_range(&r.f, 0, N, NULL, 0), 0);
    r.wo.concurrency = 2;
    r.wo.batch = 10;
    r.wo.inline_retries = 0;
    run_start(&r);
    worker_health_opts ho;
    assert_int_equal(worker_health_opts_from_env(&ho, NULL), 0);
    ho.port = 0;
    ho.cache_ms = 200;
    worker_health *h;
    assert_int_equal(worker_health_start(&h, &ho, r.f.store, r.m, NULL), 0);
    eg_buf body = EG_BUF_INIT(1u << 20);
    long code = 0;
    int64_t t0 = eg_mono_ms();
    while (code != 503 && eg_mono_ms() - t0 < 30000) {
        code = fake_http_get(worker_health_port(h), "/health", &body);
        eg_sleep_ms(100);
    }
    int64_t red_after = eg_mono_ms() - t0;
    assert_int_equal(code, 503);
    assert_non_null(strstr(body.ptr, "provider failing"));
    fo.fail_all = false;
    fo.dims = r.f.index_dims;
    fake_embed_set(r.srv, &fo);
    t0 = eg_mono_ms();
    while (code != 200 && eg_mono_ms() - t0 < 60000) {
        code = fake_http_get(worker_health_port(h), "/health", &body);
        eg_sleep_ms(100);
    }
    int64_t green_after = eg_mono_ms() - t0;
    assert_int_equal(code, 200);
    assert_int_equal(worker_manager_drain(r.m, 120000), 0);
    assert_int_equal(fake_http_get(worker_health_port(h), "/metrics", &body), 200);
    int64_t dup, lost, c[QUEUE_STATE_COUNT];
    outcome(&r, N, &dup, &lost, c);
    printf("stress: health jobs=%d duplicates=%lld lost=%lld red_after_ms=%lld green_after_ms=%lld dead=%lld\n", N,
           (long long)dup, (long long)lost, (long long)red_after, (long long)green_after,
           (long long)c[QUEUE_DEAD]);
    assert_non_null(strstr(body.ptr, "engram_health_ok 1"));
    assert_int_equal(lost, 0);
    assert_int_equal(dup, 0);
    eg_buf_free(&body);
    worker_health_stop(h);
    run_close(&r);
}

int main(void)
{
    eg_log_set_level(EG_LOG_CRITICAL);
    bolt_config cfg;
    int rc = eg_testenv_neo4j(&cfg);
    if (rc)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_stress__provider_faults),
        cmocka_unit_test(test_worker_stress__poison),
        cmocka_unit_test(test_worker_stress__health_red_while_provider_fails),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc ? rc : skip_rc;
}
