/*
 * test_provider.c - embedding providers against the fake HTTP server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "embed/provider_impl.h"
#include "support/fake_http.h"

#define DIMS 64

typedef struct fx {
    fake_embed *srv;
    embed_provider *p;
    float out[16 * DIMS];
    embed_status per[16];
    embed_status batch;
    long tokens;
    int requests;
} fx;

static fx *fx_new(embed_kind kind, const fake_embed_opts *o, int max_inputs, int timeout_ms)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(fake_embed_start(&f->srv, o), 0);
    embed_config c = {.kind = kind, .model = kind == EMBED_PROVIDER_OLLAMA ? "nomic" : "text-embedding-3-small",
                      .dimensions = DIMS, .max_inputs = max_inputs, .timeout_ms = timeout_ms,
                      .api_key = "sk-test-secret"};
    c.base_url = kind == EMBED_PROVIDER_OLLAMA ? fake_embed_ollama_url(f->srv) : fake_embed_openai_url(f->srv);
    eg_error err;
    assert_int_equal(embed_provider_new(&f->p, &c, &err), 0);
    return f;
}

static void fx_free(fx *f)
{
    embed_provider_free(f->p);
    fake_embed_stop(f->srv);
    free(f);
}

static int fx_embed(fx *f, const char *const *texts, size_t n)
{
    return embed_provider_embed(f->p, texts, n, f->out, f->per, &f->batch, &f->tokens, &f->requests, NULL);
}

static void test_embed_provider__offline_is_lexical_and_deterministic(void **state)
{
    (void)state;
    embed_config c = {.kind = EMBED_PROVIDER_OFFLINE, .model = "engram-offline-ngram-v1", .dimensions = 256};
    embed_provider *p;
    assert_int_equal(embed_provider_new(&p, &c, NULL), 0);
    const char *t[] = {"Name: Alice\nType: person\nObservations:\n- loves espresso coffee",
                       "espresso coffee drinks", "Name: Bolt\nType: protocol\n- binary chunked messages",
                       "Name: Alice\nType: person\nObservations:\n- loves espresso coffee"};
    float v[4 * 256];
    embed_status per[4], b;
    assert_int_equal(embed_provider_embed(p, t, 4, v, per, &b, NULL, NULL, NULL), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(per[i].kind, EMBED_OK);
    float same = embed_cosine(v, v + 3 * 256, 256);
    float near = embed_cosine(v + 256, v, 256);
    float far = embed_cosine(v + 256, v + 2 * 256, 256);
    assert_true(same > 0.9999f);
    assert_true(near > far + 0.2f);
    float norm = embed_cosine(v, v, 256);
    assert_true(norm > 0.999f && norm < 1.001f);
    /* morphology: character trigrams relate programmer/programming */
    const char *m[] = {"programmer", "programming", "banana"};
    assert_int_equal(embed_provider_embed(p, m, 3, v, per, &b, NULL, NULL, NULL), 0);
    assert_true(embed_cosine(v, v + 256, 256) > embed_cosine(v, v + 512, 256) + 0.2f);
    embed_provider_free(p);
}

static void test_embed_provider__openai_ok_and_batched(void **state)
{
    (void)state;
    fake_embed_opts o = {.dims = DIMS};
    fx *f = fx_new(EMBED_PROVIDER_OPENAI, &o, 2, 5000);
    const char *t[] = {"one", "two words", "three", "four", "five"};
    assert_int_equal(fx_embed(f, t, 5), 0);
    assert_int_equal(f->requests, 3); /* 2 + 2 + 1 */
    float want[DIMS];
    for (int i = 0; i < 5; i++) {
        assert_int_equal(f->per[i].kind, EMBED_OK);
        embed_offline_vector(t[i], DIMS, want);
        assert_true(embed_cosine(want, f->out + i * DIMS, DIMS) > 0.9999f);
    }
    assert_int_equal(f->tokens, 25); /* usage.prompt_tokens: 5 per input */
    fake_embed_stats st;
    fake_embed_stats_get(f->srv, &st);
    assert_int_equal(st.requests, 3);
    assert_int_equal(st.inputs, 5);
    fx_free(f);
}

static void test_embed_provider__rate_limit_with_retry_after(void **state)
{
    (void)state;
    fake_embed_opts o = {.dims = DIMS, .p429 = 1.0, .retry_after_ms = 1500};
    fx *f = fx_new(EMBED_PROVIDER_OPENAI, &o, 0, 5000);
    const char *t[] = {"a text"};
    assert_int_equal(fx_embed(f, t, 1), EG_ETRANSIENT);
    assert_int_equal(f->batch.kind, EMBED_E_RATE_LIMIT);
    assert_true(f->batch.retryable);
    assert_int_equal(f->batch.retry_after_ms, 1500); /* retry-after-ms wins over Retry-After: 2 */
    assert_int_equal(f->batch.http_status, 429);
    assert_string_equal(f->batch.code, "rate_limit_exceeded");
    assert_int_equal(f->per[0].kind, EMBED_E_RATE_LIMIT);
    fx_free(f);
}

static void test_embed_provider__insufficient_quota_is_not_retried(void **state)
{
    (void)state;
    fake_embed_opts o = {.dims = DIMS, .quota = true};
    fx *f = fx_new(EMBED_PROVIDER_OPENAI, &o, 0, 5000);
    const char *t[] = {"a text"};
    assert_true(fx_embed(f, t, 1) < 0);
    assert_int_equal(f->batch.kind, EMBED_E_QUOTA);
    assert_false(f->batch.retryable);
    assert_true(embed_errkind_provider_wide(f->batch.kind));
    assert_null(strstr(f->batch.message, "sk-test-secret"));
    fx_free(f);
}

static void test_embed_provider__server_error_and_should_retry(void **state)
{
    (void)state;
    fake_embed_opts o = {.dims = DIMS, .fail_all = true};
    fx *f = fx_new(EMBED_PROVIDER_OPENAI, &o, 0, 5000);
    const char *t[] = {"x", "y"};
    assert_int_equal(fx_embed(f, t, 2), EG_ETRANSIENT);
    assert_int_equal(f->batch.kind, EMBED_E_TRANSIENT);
    assert_true(f->batch.retryable);
    assert_int_equal(f->requests, 1); /* no bisection for server errors */
    o.should_retry_false = true;
    fake_embed_set(f->srv, &o);
    assert_true(fx_embed(f, t, 2) < 0);
    assert_false(f->batch.retryable);
    fx_free(f);
}

static void test_embed_provider__malformed_json_is_transient(void **state)
{
    (void)state;
    fake_embed_opts o = {.dims = DIMS, .malformed = true};
    fx *f = fx_new(EMBED_PROVIDER_OPENAI, &o, 0, 5000);
    const char *t[] = {"x"};
    assert_int_equal(fx_embed(f, t, 1), EG_ETRANSIENT);
    assert_int_equal(f->batch.kind, EMBED_E_TRANSIENT);
    assert_non_null(strstr(f->batch.message, "malformed"));
    fx_free(f);
}

static void test_embed_provider__wrong_dimensions_is_config(void **state)
{
    (void)state;
    fake_embed_opts o = {.dims = DIMS, .wrong_dims = 32};
    fx *f = fx_new(EMBED_PROVIDER_OPENAI, &o, 0, 5000);
    const char *t[] = {"x"};
    assert_true(fx_embed(f, t, 1) < 0);
    assert_int_equal(f->batch.kind, EMBED_E_CONFIG);
    assert_non_null(strstr(f->batch.message, "32 dimensions"));
    fx_free(f);
}

static void test_embed_provider__poison_input_is_isolated(void **state)
{
    (void)state;
    fake_embed_opts o = {.dims = DIMS, .poison = "POISON"};
    fx *f = fx_new(EMBED_PROVIDER_OPENAI, &o, 0, 5000);
    const char *t[] = {"good one", "good two", "bad POISON here", "good four", "good five"};
    assert_int_equal(fx_embed(f, t, 5), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(f->per[i].kind, i == 2 ? EMBED_E_INPUT : EMBED_OK);
    assert_false(f->per[2].retryable);
    assert_true(f->requests > 1 && f->requests <= 7);
    fx_free(f);
}

static void test_embed_provider__empty_text_fails_without_request(void **state)
{
    (void)state;
    fake_embed_opts o = {.dims = DIMS};
    fx *f = fx_new(EMBED_PROVIDER_OPENAI, &o, 0, 5000);
    const char *t[] = {"", "text"};
    assert_int_equal(fx_embed(f, t, 2), 0);
    assert_int_equal(f->per[0].kind, EMBED_E_INPUT);
    assert_int_equal(f->per[1].kind, EMBED_OK);
    assert_int_equal(f->requests, 1);
    fx_free(f);
}

static void test_embed_provider__ollama_native(void **state)
{
    (void)state;
    fake_embed_opts o = {.dims = DIMS};
    fx *f = fx_new(EMBED_PROVIDER_OLLAMA, &o, 0, 5000);
    const char *t[] = {"ollama one", "ollama two"};
    assert_int_equal(fx_embed(f, t, 2), 0);
    float want[DIMS];
    embed_offline_vector(t[1], DIMS, want);
    assert_true(embed_cosine(want, f->out + DIMS, DIMS) > 0.9999f);
    assert_int_equal(f->requests, 1);
    fx_free(f);
}

static void test_embed_provider__timeout_is_transient(void **state)
{
    (void)state;
    fake_embed_opts o = {.dims = DIMS, .latency_ms = 1500};
    fx *f = fx_new(EMBED_PROVIDER_OPENAI, &o, 0, 300);
    const char *t[] = {"slow"};
    assert_int_equal(fx_embed(f, t, 1), EG_ETRANSIENT);
    assert_int_equal(f->batch.kind, EMBED_E_TRANSIENT);
    fx_free(f);
}

typedef struct gate_ctx {
    int before, after, refuse;
    long est;
    embed_errkind last;
} gate_ctx;

static int g_before(void *ctx, long est)
{
    gate_ctx *g = ctx;
    g->before++;
    g->est += est;
    return g->refuse ? EG_ECANCELED : 0;
}

static void g_after(void *ctx, const embed_status *st, int64_t us, long tok)
{
    (void)us, (void)tok;
    gate_ctx *g = ctx;
    g->after++;
    g->last = st->kind;
}

static void test_embed_provider__gate_sees_every_request(void **state)
{
    (void)state;
    fake_embed_opts o = {.dims = DIMS};
    fx *f = fx_new(EMBED_PROVIDER_OPENAI, &o, 1, 5000);
    gate_ctx g = {0};
    embed_gate gate = {g_before, g_after, &g};
    embed_provider_set_gate(f->p, &gate);
    const char *t[] = {"abc", "defghi", "j"};
    assert_int_equal(fx_embed(f, t, 3), 0);
    assert_int_equal(g.before, 3);
    assert_int_equal(g.after, 3);
    assert_int_equal(g.est, 1 + 2 + 1);
    g.refuse = 1;
    assert_int_equal(fx_embed(f, t, 3), EG_ECANCELED);
    assert_int_equal(f->batch.kind, EMBED_E_CANCELED);
    fake_embed_stats st;
    fake_embed_stats_get(f->srv, &st);
    assert_int_equal(st.requests, 3);
    fx_free(f);
}

static void test_embed_provider__config_from_env(void **state)
{
    (void)state;
    embed_config c;
    unsetenv("ENGRAM_EMBED_PROVIDER");
    unsetenv("OPENAI_API_KEY");
    setenv("MOCK_EMBEDDINGS", "false", 1);
    setenv("NEO4J_VECTOR_DIMENSIONS", "384", 1);
    /* No account and no local weights: the n-gram fallback, with the reason
     * every status surface shows (the installed case: test_local_model). */
    setenv("ENGRAM_MODEL_DIR", "/nonexistent/engram-models", 1);
    assert_int_equal(embed_config_from_env(&c, NULL), 0);
    assert_int_equal(c.kind, EMBED_PROVIDER_OFFLINE);
    assert_int_equal(c.dimensions, 384);
    assert_non_null(c.fallback);
    assert_non_null(strstr(c.fallback, "install-models.sh"));
    unsetenv("ENGRAM_MODEL_DIR");
    setenv("OPENAI_API_KEY", "sk-x", 1);
    assert_int_equal(embed_config_from_env(&c, NULL), 0);
    assert_int_equal(c.kind, EMBED_PROVIDER_OPENAI);
    assert_string_equal(c.model, "text-embedding-3-small");
    assert_null(c.fallback);
    setenv("MOCK_EMBEDDINGS", "true", 1);
    assert_int_equal(embed_config_from_env(&c, NULL), 0);
    assert_int_equal(c.kind, EMBED_PROVIDER_OFFLINE);
    unsetenv("MOCK_EMBEDDINGS");
    setenv("ENGRAM_EMBED_PROVIDER", "bogus", 1);
    assert_int_equal(embed_config_from_env(&c, NULL), EG_EINVAL);
    unsetenv("ENGRAM_EMBED_PROVIDER");
    unsetenv("OPENAI_API_KEY");
    unsetenv("NEO4J_VECTOR_DIMENSIONS");
    /* ada cannot shorten its vectors */
    embed_config a = {.kind = EMBED_PROVIDER_OPENAI, .base_url = "http://127.0.0.1:1/v1",
                      .model = "text-embedding-ada-002", .dimensions = 256};
    embed_provider *p = NULL;
    assert_int_equal(embed_provider_new(&p, &a, NULL), EG_EINVAL);
    assert_null(p);
}

/* A scripted server: each request gets the next reply of the script. */
typedef struct script {
    int status;
    const char *body;
    const char *hname, *hval;
} script;

static void scripted(void *ctx, const char *method, const char *path, const char *body, size_t len,
                     fake_http_reply *r)
{
    (void)method, (void)path, (void)body, (void)len;
    const script *sc = ctx;
    r->status = sc->status;
    r->body = eg_strdup(sc->body);
    if (sc->hname)
        fake_http_reply_header(r, sc->hname, "%s", sc->hval);
}

static embed_status run_script(const script *sc)
{
    fake_http *h;
    assert_int_equal(fake_http_start(&h, scripted, (void *)sc), 0);
    char url[128];
    snprintf(url, sizeof url, "%s/v1", fake_http_url(h));
    embed_config c = {.kind = EMBED_PROVIDER_OPENAI, .model = "text-embedding-3-small", .dimensions = 8,
                      .base_url = url, .api_key = "k", .timeout_ms = 3000};
    embed_provider *p;
    assert_int_equal(embed_provider_new(&p, &c, NULL), 0);
    const char *t[] = {"x"};
    float v[8];
    embed_status per[1], b;
    int rc = embed_provider_embed(p, t, 1, v, per, &b, NULL, NULL, NULL);
    embed_provider_free(p);
    fake_http_stop(h);
    /* a batch of one: an input error is that input's, the call itself succeeds */
    return rc == 0 ? per[0] : b;
}

static void test_embed_provider__header_semantics(void **state)
{
    (void)state;
    /* Retry-After in seconds alone */
    script s1 = {429, "{\"error\":{\"message\":\"slow down\",\"type\":\"requests\",\"code\":\"rate_limit_exceeded\"}}",
                 "Retry-After", "3"};
    embed_status b = run_script(&s1);
    assert_int_equal(b.kind, EMBED_E_RATE_LIMIT);
    assert_int_equal(b.retry_after_ms, 3000);
    /* the server's x-should-retry: true wins over a 4xx */
    script s2 = {409, "{\"error\":{\"message\":\"conflict\"}}", "x-should-retry", "true"};
    b = run_script(&s2);
    assert_true(b.retryable);
    script s3 = {400, "{\"error\":{\"message\":\"bad\"}}", "x-should-retry", "true"};
    b = run_script(&s3);
    assert_int_equal(b.kind, EMBED_E_TRANSIENT);
    assert_true(b.retryable);
    /* 401 is auth, not retryable; Ollama-style {"error":"..."} bodies are read */
    script s4 = {401, "{\"error\":\"invalid api key\"}", NULL, NULL};
    b = run_script(&s4);
    assert_int_equal(b.kind, EMBED_E_AUTH);
    assert_false(b.retryable);
    assert_non_null(strstr(b.message, "invalid api key"));
    /* a 404 (unknown model) is configuration */
    script s5 = {404, "{\"error\":{\"message\":\"model not found\"}}", NULL, NULL};
    b = run_script(&s5);
    assert_int_equal(b.kind, EMBED_E_CONFIG);
    /* a server rejecting base64 is asked again with floats */
    script s6 = {400, "{\"error\":{\"message\":\"unsupported encoding_format\"}}", NULL, NULL};
    b = run_script(&s6);
    assert_int_equal(b.kind, EMBED_E_INPUT); /* still 400 with floats: the input error stands */
}

/* Issue #14 finding 10: a value that does not fit a float (1e39 as JSON
 * would become inf after the cast; +inf as base64) fails that input only,
 * never the batch, for both wire formats. */
static void test_embed_provider__value_out_of_float_range_fails_one_input(void **state)
{
    (void)state;
    embed_kind kinds[] = {EMBED_PROVIDER_OPENAI, EMBED_PROVIDER_OLLAMA};
    for (size_t k = 0; k < 2; k++) {
        fake_embed_opts o = {.dims = DIMS, .huge = "HUGE"};
        fx *f = fx_new(kinds[k], &o, 0, 5000);
        const char *t[] = {"fine one", "fine two", "a HUGE value", "fine four"};
        assert_int_equal(fx_embed(f, t, 4), 0);
        for (int i = 0; i < 4; i++) {
            assert_int_equal(f->per[i].kind, i == 2 ? EMBED_E_INPUT : EMBED_OK);
            if (i != 2)
                for (int d = 0; d < DIMS; d++)
                    assert_true(isfinite(f->out[i * DIMS + d]));
        }
        assert_non_null(strstr(f->per[2].message, "float range"));
        assert_false(f->per[2].retryable);
        fx_free(f);
    }
    /* the decoders themselves */
    float v[2];
    json_t *a = json_pack("[f, f]", 0.5, 1e39);
    assert_int_equal(embed_json_vector(a, v, 2), EG_ETOOBIG);
    json_decref(a);
    a = json_pack("[f, f]", 0.5, -3.4e38);
    assert_int_equal(embed_json_vector(a, v, 2), 0);
    assert_true(isfinite(v[1]));
    json_decref(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embed_provider__offline_is_lexical_and_deterministic),
        cmocka_unit_test(test_embed_provider__openai_ok_and_batched),
        cmocka_unit_test(test_embed_provider__rate_limit_with_retry_after),
        cmocka_unit_test(test_embed_provider__insufficient_quota_is_not_retried),
        cmocka_unit_test(test_embed_provider__server_error_and_should_retry),
        cmocka_unit_test(test_embed_provider__malformed_json_is_transient),
        cmocka_unit_test(test_embed_provider__wrong_dimensions_is_config),
        cmocka_unit_test(test_embed_provider__poison_input_is_isolated),
        cmocka_unit_test(test_embed_provider__value_out_of_float_range_fails_one_input),
        cmocka_unit_test(test_embed_provider__empty_text_fails_without_request),
        cmocka_unit_test(test_embed_provider__ollama_native),
        cmocka_unit_test(test_embed_provider__timeout_is_transient),
        cmocka_unit_test(test_embed_provider__gate_sees_every_request),
        cmocka_unit_test(test_embed_provider__config_from_env),
        cmocka_unit_test(test_embed_provider__header_semantics),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
