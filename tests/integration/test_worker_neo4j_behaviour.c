/*
 * test_worker_neo4j_behaviour.c - the worker behaviours that were tested
 * only on the in-memory store, on the real Neo4j store and sink (issue #14,
 * found in review):
 *
 *   - heartbeats keep the leases alive through a provider call longer than
 *     the lease (the expiry sweep runs all along and takes nothing back);
 *   - a vector that is already current is not asked of the provider again;
 *   - a provider out of quota pauses the workers and no job dies or spends
 *     an attempt; work resumes when the account is fixed;
 *   - a graceful stop during slow provider calls releases the leases with
 *     no attempt spent;
 *   - the synchronous wait times out, then the job completes (asynchronous
 *     fallback).
 *
 * A fake OpenAI-compatible provider (tests/support/fake_http.c) on loopback;
 * each test has its own namespace and queue (embed_fixture).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "graph/graph.h"
#include "queue/neo4j_store.h"
#include "support/embed_fixture.h"
#include "support/fake_http.h"
#include "support/queue_neo4j_fixture.h"
#include "support/testenv.h"
#include "worker/manager.h"
#include "worker/neo4j_sink.h"

#define MODEL "text-embedding-3-small"

static int skip_rc;

typedef struct bfx {
    efx f;
    fake_embed *srv;
    embed_config ec;
    worker_sink *sink;
    worker_manager *m;
} bfx;

/* Fixture with N entities (jobs pending) and a fake provider; false: skip. */
static bool open_fx(bfx *b, const char *tag, const queue_opts *qo, const fake_embed_opts *fo, int n)
{
    memset(b, 0, sizeof *b);
    int rc = efx_open(&b->f, tag, MODEL, qo, 8);
    if (rc) {
        skip_rc = rc;
        return false;
    }
    fake_embed_opts o = *fo;
    o.dims = b->f.index_dims;
    assert_int_equal(fake_embed_start(&b->srv, &o), 0);
    b->ec = (embed_config){.kind = EMBED_PROVIDER_OPENAI, .base_url = fake_embed_openai_url(b->srv), .api_key = "k",
                           .model = MODEL, .dimensions = b->f.index_dims, .timeout_ms = 20000};
    if (n > 0)
        assert_int_equal(efx_create_range(&b->f, 0, n, NULL, 0), 0);
    return true;
}

static void start(bfx *b, queue_store *store, int workers, int batch, int64_t error_pause_ms)
{
    eg_error err = {0};
    graph_opts go;
    assert_int_equal(graph_opts_from_env(&go, &err), 0);
    assert_int_equal(worker_neo4j_sink_new(&b->sink, b->f.pool, go.database, go.vector_index, &err), 0);
    worker_opts wo;
    assert_int_equal(worker_opts_from_env(&wo, EMBED_PROVIDER_OPENAI, &err), 0);
    wo.concurrency = workers;
    wo.batch = batch;
    wo.poll_ms = 50;
    wo.retry_base_ms = 20;
    if (error_pause_ms > 0)
        wo.provider_error_pause_ms = error_pause_ms;
    if (worker_manager_new(&b->m, &wo, &b->ec, store ? store : b->f.store, b->sink, &err) ||
        worker_manager_start(b->m, &err))
        fail_msg("manager: %s", err.message);
}

static void stop_manager(bfx *b)
{
    if (b->m)
        worker_manager_stop(b->m, 2000);
    worker_manager_free(b->m);
    worker_sink_free(b->sink);
    b->m = NULL;
    b->sink = NULL;
}

static void close_fx(bfx *b)
{
    stop_manager(b);
    fake_embed_stop(b->srv);
    efx_close(&b->f);
}

static void wait_requests(bfx *b, uint64_t n)
{
    fake_embed_stats st = {0};
    for (int i = 0; i < 1000 && st.requests < n; i++) {
        fake_embed_stats_get(b->srv, &st);
        eg_sleep_ms(10);
    }
    assert_true(st.requests >= n);
}

/* Every job of the fixture's namespace in `store`: their attempts must all be `attempts`. */
static void assert_attempts(bfx *b, queue_store *store, int n, int attempts)
{
    queue_list_filter lf = QUEUE_LIST_FILTER_INIT;
    lf.ns = b->f.ns;
    lf.limit = 1000;
    queue_job *jobs = NULL;
    size_t got = 0;
    assert_int_equal(queue_list(store, &lf, &jobs, &got, NULL, NULL), 0);
    assert_int_equal(got, (size_t)n);
    for (size_t i = 0; i < got; i++)
        if (jobs[i].attempts != attempts)
            fail_msg("job %s: %d attempts, want %d", jobs[i].id, jobs[i].attempts, attempts);
    queue_jobs_free(jobs, got);
}

static void test_worker_neo4j__heartbeat_outlives_a_call_longer_than_the_lease(void **state)
{
    (void)state;
    bfx b;
    queue_opts qo = QUEUE_OPTS_INIT;
    qo.lease_ms = 1500;
    qo.heartbeat_ms = 400;
    qo.reclaim_ms = 200; /* the expiry sweep runs all along */
    fake_embed_opts fo = {.latency_ms = 4000};
    if (!open_fx(&b, "hbeat", &qo, &fo, 3))
        skip();
    start(&b, NULL, 1, 10, 0);
    wait_requests(&b, 1);
    assert_int_equal(worker_manager_drain(b.m, 30000), 0);
    worker_stats ws;
    for (int i = 0; i < 200; i++) { /* the completer counts a moment after the store says done */
        worker_manager_get_stats(b.m, &ws);
        if (ws.completed == 3)
            break;
        eg_sleep_ms(10);
    }
    printf("heartbeat: provider call 4000 ms, lease 1500 ms: completed=%llu lost=%llu lost_heartbeats=%llu\n",
           (unsigned long long)ws.completed, (unsigned long long)ws.lost, (unsigned long long)ws.lost_heartbeats);
    assert_int_equal(ws.completed, 3);
    assert_int_equal(ws.lost, 0);
    assert_int_equal(ws.lost_heartbeats, 0);
    fake_embed_stats st;
    fake_embed_stats_get(b.srv, &st);
    assert_int_equal(st.requests, 1); /* never reclaimed and embedded again */
    assert_attempts(&b, b.f.store, 3, 1);
    efx_report r;
    assert_int_equal(efx_check(&b.f, &r), 0);
    assert_int_equal(r.with_current_vector, 3);
    close_fx(&b);
}

static void test_worker_neo4j__skips_a_current_vector(void **state)
{
    (void)state;
    bfx b;
    fake_embed_opts fo = {0};
    if (!open_fx(&b, "current", NULL, &fo, 2))
        skip();
    start(&b, NULL, 1, 10, 0);
    assert_int_equal(worker_manager_drain(b.m, 30000), 0);
    stop_manager(&b);
    fake_embed_stats st;
    fake_embed_stats_get(b.srv, &st);
    uint64_t before = st.requests;
    /* The same content asked again, through another queue (its own key):
     * the vector is current, so the job completes without a provider call. */
    queue_opts qo2 = b.f.qo;
    snprintf(qo2.name, sizeof qo2.name, "%.40s_b", b.f.queue);
    queue_store *q2 = NULL;
    assert_int_equal(queue_neo4j_new(&q2, b.f.pool, &qo2, NULL), 0);
    bolt_conn *c = NULL;
    assert_int_equal(bolt_pool_acquire(b.f.pool, &c, NULL), 0);
    graph_embed_input in;
    assert_int_equal(graph_load_embed_input_tx(c, b.f.ns, NULL, "ent0", &in, NULL), 0);
    bolt_pool_release(b.f.pool, c);
    assert_true(in.found);
    queue_enqueue_req rq = {.ns = b.f.ns, .entity = in.entity_id, .version = in.content_hash, .model = MODEL};
    queue_enqueue_result res;
    assert_int_equal(queue_enqueue(q2, NULL, &rq, 1, &res, NULL), 0);
    assert_true(res.created);
    graph_embed_input_clear(&in);
    start(&b, q2, 1, 10, 0);
    const char *ids[] = {res.id};
    assert_int_equal(worker_manager_wait_jobs(b.m, ids, 1, 10000), 0);
    worker_stats ws;
    /* the store says done a moment before the completer counts it */
    for (int i = 0; i < 200; i++) {
        worker_manager_get_stats(b.m, &ws);
        if (ws.completed == 1)
            break;
        eg_sleep_ms(10);
    }
    assert_int_equal(ws.skipped, 1);
    assert_int_equal(ws.completed, 1);
    fake_embed_stats_get(b.srv, &st);
    assert_int_equal(st.requests, before);
    stop_manager(&b);
    qfx_cleanup_queue(b.f.pool, qo2.name);
    queue_store_free(q2);
    close_fx(&b);
}

static void test_worker_neo4j__quota_pauses_and_keeps_jobs(void **state)
{
    (void)state;
    bfx b;
    fake_embed_opts fo = {.quota = true};
    if (!open_fx(&b, "quota", NULL, &fo, 5))
        skip();
    start(&b, NULL, 2, 10, 300);
    wait_requests(&b, 1);
    eg_sleep_ms(500);
    worker_stats ws;
    worker_manager_get_stats(b.m, &ws);
    assert_int_equal(ws.provider_state, EMBED_E_QUOTA);
    assert_int_equal(ws.dead, 0);
    assert_true(ws.released >= 5);
    int64_t c[QUEUE_STATE_COUNT];
    assert_int_equal(efx_counts(&b.f, c), 0);
    assert_int_equal(c[QUEUE_DEAD], 0);
    assert_int_equal(c[QUEUE_PENDING] + c[QUEUE_LEASED], 5);
    /* the account is fixed: the work resumes after the pause */
    fo.quota = false;
    fo.dims = b.f.index_dims;
    fake_embed_set(b.srv, &fo);
    assert_int_equal(worker_manager_drain(b.m, 30000), 0);
    assert_int_equal(efx_counts(&b.f, c), 0);
    assert_int_equal(c[QUEUE_COMPLETED], 5);
    assert_attempts(&b, b.f.store, 5, 1); /* the refused ones were released: no attempt spent */
    close_fx(&b);
}

static void test_worker_neo4j__graceful_stop_releases_leases(void **state)
{
    (void)state;
    bfx b;
    fake_embed_opts fo = {.latency_ms = 3000};
    if (!open_fx(&b, "gstop", NULL, &fo, 10))
        skip();
    start(&b, NULL, 2, 5, 0);
    wait_requests(&b, 1); /* a batch in flight; the rest leased or prefetched */
    int64_t c[QUEUE_STATE_COUNT];
    assert_int_equal(efx_counts(&b.f, c), 0);
    assert_true(c[QUEUE_LEASED] > 0);
    int64_t t0 = eg_mono_ms();
    worker_manager_stop(b.m, 200);
    int64_t dt = eg_mono_ms() - t0;
    assert_true(dt < 2000);
    assert_int_equal(efx_counts(&b.f, c), 0);
    printf("graceful stop: %lld ms; pending=%lld leased=%lld completed=%lld dead=%lld\n", (long long)dt,
           (long long)c[QUEUE_PENDING], (long long)c[QUEUE_LEASED], (long long)c[QUEUE_COMPLETED],
           (long long)c[QUEUE_DEAD]);
    assert_int_equal(c[QUEUE_LEASED], 0);
    assert_int_equal(c[QUEUE_PENDING], 10);
    assert_attempts(&b, b.f.store, 10, 0);
    close_fx(&b);
}

static void test_worker_neo4j__sync_wait_times_out_then_completes(void **state)
{
    (void)state;
    bfx b;
    fake_embed_opts fo = {.latency_ms = 600};
    if (!open_fx(&b, "syncwait", NULL, &fo, 0))
        skip();
    start(&b, NULL, 1, 10, 0);
    assert_int_equal(efx_create_range(&b.f, 0, 1, NULL, 0), 0);
    queue_list_filter lf = QUEUE_LIST_FILTER_INIT;
    lf.ns = b.f.ns;
    queue_job *jobs = NULL;
    size_t n = 0;
    assert_int_equal(queue_list(b.f.store, &lf, &jobs, &n, NULL, NULL), 0);
    assert_int_equal(n, 1);
    const char *ids[] = {jobs[0].id};
    worker_manager_notify(b.m);
    assert_int_equal(worker_manager_wait_jobs(b.m, ids, 1, 100), EG_ETIMEOUT);
    assert_int_equal(worker_manager_wait_jobs(b.m, ids, 1, 10000), 0);
    queue_jobs_free(jobs, n);
    efx_report r;
    assert_int_equal(efx_check(&b.f, &r), 0);
    assert_int_equal(r.with_current_vector, 1);
    close_fx(&b);
}

int main(void)
{
    eg_log_set_level(EG_LOG_CRITICAL);
    bolt_config cfg;
    int rc = eg_testenv_neo4j(&cfg);
    if (rc)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_neo4j__heartbeat_outlives_a_call_longer_than_the_lease),
        cmocka_unit_test(test_worker_neo4j__skips_a_current_vector),
        cmocka_unit_test(test_worker_neo4j__quota_pauses_and_keeps_jobs),
        cmocka_unit_test(test_worker_neo4j__graceful_stop_releases_leases),
        cmocka_unit_test(test_worker_neo4j__sync_wait_times_out_then_completes),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc ? rc : skip_rc;
}
