/*
 * test_health.c - /health verdicts and the HTTP server with /metrics.
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
#include "queue/mem_store.h"
#include "support/fake_http.h"
#include "worker/health.h"

static void test_worker_health__verdicts(void **state)
{
    (void)state;
    worker_health_input in;
    memset(&in, 0, sizeof in);
    in.queue_ok = true;
    in.now_wall_ms = 1000000000;
    in.stall_ms = 60000;
    in.unhealthy_failures = 5;
    in.qs.oldest_pending_age_ms = -1;
    json_t *doc = NULL;
    assert_true(worker_health_evaluate(&in, &doc));
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "ok");
    json_decref(doc);

    /* a ready job waiting past the stall limit and nobody working: red */
    in.qs.ready = 3;
    in.qs.count[QUEUE_PENDING] = 3;
    in.qs.oldest_pending_age_ms = 61000;
    assert_false(worker_health_evaluate(&in, &doc));
    char *rs = json_dumps(json_object_get(doc, "reasons"), 0);
    assert_non_null(strstr(rs, "stalled"));
    free(rs);
    json_decref(doc);

    /* ...but fine when the store saw a completion in its newest bucket:
     * a worker in another process is working */
    in.qs.completed_recent[0] = 1;
    assert_true(worker_health_evaluate(&in, &doc));
    json_decref(doc);
    in.qs.completed_recent[0] = 0;
    in.qs.completed_recent[1] = 4; /* older than 5 minutes: no proof of life */
    assert_false(worker_health_evaluate(&in, &doc));
    json_decref(doc);

    /* ...and fine when this process produced an embedding recently */
    in.have_workers = true;
    in.ws.last_success_wall_ms = in.now_wall_ms - 1000;
    assert_true(worker_health_evaluate(&in, &doc));
    json_decref(doc);

    /* provider failing every call: red even though the queue answers; the
     * provider's own text (account details...) is never shown, its kind is */
    in.ws.consecutive_failures = 5;
    in.ws.provider_state = EMBED_E_TRANSIENT;
    snprintf(in.ws.last_error, sizeof in.ws.last_error, "HTTP 500: org-SECRET123 over its budget");
    assert_false(worker_health_evaluate(&in, &doc));
    char *all = json_dumps(doc, 0);
    assert_null(strstr(all, "SECRET123"));
    assert_non_null(strstr(all, "transient"));
    free(all);
    json_decref(doc);
    in.ws.consecutive_failures = 1;

    /* quota: red; dead jobs alone: degraded but 200 */
    in.ws.provider_state = EMBED_E_QUOTA;
    assert_false(worker_health_evaluate(&in, &doc));
    all = json_dumps(doc, 0);
    assert_null(strstr(all, "SECRET123"));
    assert_non_null(strstr(all, "refuses work (quota error)"));
    free(all);
    json_decref(doc);
    in.ws.provider_state = EMBED_OK;
    in.qs.count[QUEUE_DEAD] = 2;
    assert_true(worker_health_evaluate(&in, &doc));
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "degraded");
    json_decref(doc);

    in.queue_ok = false;
    snprintf(in.queue_error, sizeof in.queue_error, "connection refused");
    assert_false(worker_health_evaluate(&in, &doc));
    json_decref(doc);
}

static void put_job(queue_store *q, worker_sink *sink, int i)
{
    char name[32], text[128], hash[65];
    snprintf(name, sizeof name, "h%d", i);
    snprintf(text, sizeof text, "Name: h%d\nType: t\nObservations:\n- fact %d", i, i);
    worker_mem_sink_put(sink, "ns", name, text, hash);
    queue_enqueue_req r = {.ns = "ns", .entity = name, .version = hash, .model = "text-embedding-3-small"};
    queue_enqueue_result res;
    assert_int_equal(queue_enqueue(q, NULL, &r, 1, &res, NULL), 0);
}

static void test_worker_health__goes_red_when_provider_fails_and_back(void **state)
{
    (void)state;
    fake_embed *srv;
    fake_embed_opts fo = {.dims = 16, .fail_all = true};
    assert_int_equal(fake_embed_start(&srv, &fo), 0);
    queue_opts qo = QUEUE_OPTS_INIT;
    qo.backoff_base_ms = 10;
    qo.backoff_cap_ms = 50;
    qo.max_attempts = 1000;
    queue_store *q;
    assert_int_equal(queue_mem_new(&q, &qo, NULL, NULL, NULL), 0);
    worker_sink *sink;
    assert_int_equal(worker_mem_sink_new(&sink, 16, NULL), 0);
    for (int i = 0; i < 20; i++)
        put_job(q, sink, i);
    embed_config ec = {.kind = EMBED_PROVIDER_OPENAI, .base_url = fake_embed_openai_url(srv), .api_key = "k",
                       .model = "text-embedding-3-small", .dimensions = 16, .timeout_ms = 2000};
    worker_opts wo;
    assert_int_equal(worker_opts_from_env(&wo, EMBED_PROVIDER_OFFLINE, NULL), 0);
    wo.concurrency = 2;
    wo.batch = 5;
    wo.poll_ms = 20;
    wo.inline_retries = 0;
    worker_manager *m;
    assert_int_equal(worker_manager_new(&m, &wo, &ec, q, sink, NULL), 0);
    assert_int_equal(worker_manager_start(m, NULL), 0);
    worker_health_opts ho;
    assert_int_equal(worker_health_opts_from_env(&ho, NULL), 0);
    ho.port = 0;
    ho.cache_ms = 0;
    worker_health *h;
    assert_int_equal(worker_health_start(&h, &ho, q, m, NULL), 0);
    int port = worker_health_port(h);
    assert_true(port > 0);
    eg_buf body = EG_BUF_INIT(1u << 20);

    long code = 0;
    for (int i = 0; i < 100 && code != 503; i++) {
        code = fake_http_get(port, "/health", &body);
        eg_sleep_ms(50);
    }
    assert_int_equal(code, 503);
    assert_non_null(strstr(body.ptr, "provider failing"));
    assert_non_null(strstr(body.ptr, "\"depth\""));

    fo.fail_all = false;
    fake_embed_set(srv, &fo);
    for (int i = 0; i < 200 && code != 200; i++) {
        code = fake_http_get(port, "/health", &body);
        eg_sleep_ms(50);
    }
    assert_int_equal(code, 200);
    assert_int_equal(worker_manager_drain(m, 10000), 0);

    assert_int_equal(fake_http_get(port, "/metrics", &body), 200);
    assert_non_null(strstr(body.ptr, "engram_jobs{state=\"completed\"} 20\n"));
    assert_non_null(strstr(body.ptr, "engram_worker_jobs_completed_total 20\n"));
    assert_non_null(strstr(body.ptr, "engram_provider_request_duration_seconds_bucket{le=\"+Inf\"}"));
    assert_non_null(strstr(body.ptr, "engram_provider_errors_total{kind=\"transient\"}"));
    assert_non_null(strstr(body.ptr, "engram_health_ok 1\n"));
    assert_int_equal(fake_http_get(port, "/nope", &body), 404);

    eg_buf_free(&body);
    worker_health_stop(h);
    worker_manager_stop(m, 1000);
    worker_manager_free(m);
    worker_sink_free(sink);
    queue_store_free(q);
    fake_embed_stop(srv);
}

/* GET path with an optional bearer token; the HTTP status, 0 on failure. */
static long get_with_token(int port, const char *path, const char *token)
{
    CURL *c = curl_easy_init();
    char url[128], hdr[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    struct curl_slist *h = NULL;
    if (token) {
        snprintf(hdr, sizeof hdr, "Authorization: Bearer %s", token);
        h = curl_slist_append(h, hdr);
    }
    FILE *devnull = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    long code = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    fclose(devnull);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return code;
}

/* Issue #14 finding 18: a non-loopback bind needs a token, and a token is
 * then required on every request. */
static void test_worker_health__token_and_bind(void **state)
{
    (void)state;
    queue_opts qo = QUEUE_OPTS_INIT;
    queue_store *q;
    assert_int_equal(queue_mem_new(&q, &qo, NULL, NULL, NULL), 0);
    worker_health_opts ho;
    assert_int_equal(worker_health_opts_from_env(&ho, NULL), 0);
    ho.port = 0;
    ho.addr = "0.0.0.0";
    worker_health *h = NULL;
    eg_error err;
    eg_error_clear(&err);
    assert_int_equal(worker_health_start(&h, &ho, q, NULL, &err), EG_EINVAL);
    assert_null(h);
    assert_non_null(strstr(err.message, "ENGRAM_HEALTH_TOKEN"));
    ho.token = "t0ken-for-health";
    assert_int_equal(worker_health_start(&h, &ho, q, NULL, &err), 0);
    int port = worker_health_port(h);
    assert_int_equal(get_with_token(port, "/health", NULL), 401);
    assert_int_equal(get_with_token(port, "/metrics", "wrong-token-12345"), 401);
    assert_int_equal(get_with_token(port, "/metrics", "t0ken-for-health"), 200);
    assert_int_equal(get_with_token(port, "/health", "t0ken-for-health"), 200);
    worker_health_stop(h);
    /* loopback without a token stays open, as before */
    ho.addr = "127.0.0.1";
    ho.token = NULL;
    assert_int_equal(worker_health_start(&h, &ho, q, NULL, &err), 0);
    assert_int_equal(get_with_token(worker_health_port(h), "/health", NULL), 200);
    worker_health_stop(h);
    queue_store_free(q);
}

int main(void)
{
    eg_log_set_level(EG_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_health__verdicts),
        cmocka_unit_test(test_worker_health__goes_red_when_provider_fails_and_back),
        cmocka_unit_test(test_worker_health__token_and_bind),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
