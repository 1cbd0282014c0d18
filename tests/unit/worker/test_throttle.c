/*
 * test_throttle.c - token buckets, the shared pause, cancellation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "worker/throttle.h"

#define MAXT 400

typedef struct shared {
    worker_throttle *t;
    pthread_mutex_t mu;
    int64_t times[MAXT];
    int n;
    int per_thread;
    long est;
} shared;

static void *grab(void *arg)
{
    shared *s = arg;
    for (int i = 0; i < s->per_thread; i++) {
        if (worker_throttle_acquire(s->t, s->est, 0) != 0)
            break;
        pthread_mutex_lock(&s->mu);
        if (s->n < MAXT)
            s->times[s->n++] = eg_mono_ms();
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int max_in_window(int64_t *t, int n, int64_t w)
{
    qsort(t, (size_t)n, sizeof *t, cmp64);
    int best = 0, lo = 0;
    for (int hi = 0; hi < n; hi++) {
        while (t[hi] - t[lo] >= w)
            lo++;
        if (hi - lo + 1 > best)
            best = hi - lo + 1;
    }
    return best;
}

static void run_threads(shared *s, int nthreads)
{
    pthread_t th[8];
    for (int i = 0; i < nthreads; i++)
        pthread_create(&th[i], NULL, grab, s);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
}

static void test_worker_throttle__unlimited_does_not_wait(void **state)
{
    (void)state;
    worker_throttle_opts o = {0};
    worker_throttle *t;
    assert_int_equal(worker_throttle_new(&t, &o, NULL), 0);
    int64_t t0 = eg_mono_ms();
    for (int i = 0; i < 1000; i++)
        assert_int_equal(worker_throttle_acquire(t, 100, 0), 0);
    assert_true(eg_mono_ms() - t0 < 200);
    worker_throttle_free(t);
}

static void test_worker_throttle__request_rate_holds_across_threads(void **state)
{
    (void)state;
    /* 40 requests per second, 4 threads x 20 = 80 requests: >= ~2 s, and
     * never more than 40 in any 1 s window. */
    worker_throttle_opts o = {.requests_per_interval = 40, .interval_ms = 1000};
    shared s = {.per_thread = 20, .est = 10};
    pthread_mutex_init(&s.mu, NULL);
    assert_int_equal(worker_throttle_new(&s.t, &o, NULL), 0);
    int64_t t0 = eg_mono_ms();
    run_threads(&s, 4);
    int64_t dt = eg_mono_ms() - t0;
    assert_int_equal(s.n, 80);
    assert_true(dt >= 1900);
    assert_true(dt < 4000);
    assert_true(max_in_window(s.times, s.n, 1000) <= 40);
    worker_throttle_free(s.t);
    pthread_mutex_destroy(&s.mu);
}

static void test_worker_throttle__token_rate_with_overdraft(void **state)
{
    (void)state;
    /* 1000 tokens per second, requests of 400: capacity 1000 lets three go
     * (1000 -> 600 -> 200 -> -200), then one per 400 ms. */
    worker_throttle_opts o = {.tokens_per_interval = 1000, .interval_ms = 1000};
    shared s = {.per_thread = 5, .est = 400};
    pthread_mutex_init(&s.mu, NULL);
    assert_int_equal(worker_throttle_new(&s.t, &o, NULL), 0);
    int64_t t0 = eg_mono_ms();
    run_threads(&s, 2);
    int64_t dt = eg_mono_ms() - t0;
    assert_int_equal(s.n, 10);
    /* three at once, the 4th at 0.2 s, then one per 0.4 s: the 10th at 2.6 s */
    assert_true(dt >= 2500);
    assert_true(dt < 5000);
    worker_throttle_free(s.t);
    pthread_mutex_destroy(&s.mu);
}

static void test_worker_throttle__retry_after_pauses_everyone(void **state)
{
    (void)state;
    worker_throttle_opts o = {0};
    worker_throttle *t;
    assert_int_equal(worker_throttle_new(&t, &o, NULL), 0);
    embed_status st;
    embed_status_clear(&st);
    st.kind = EMBED_E_RATE_LIMIT;
    st.retry_after_ms = 300;
    const embed_gate *g = worker_throttle_gate(t);
    g->after(g->ctx, &st, 1000, 0);
    worker_throttle_stats ts;
    worker_throttle_get_stats(t, &ts);
    assert_true(ts.paused_remaining_ms > 200);
    assert_int_equal(ts.pauses, 1);
    assert_non_null(strstr(ts.pause_reason, "429"));
    shared s = {.t = t, .per_thread = 1, .est = 1};
    pthread_mutex_init(&s.mu, NULL);
    int64_t t0 = eg_mono_ms();
    run_threads(&s, 3);
    assert_int_equal(s.n, 3);
    for (int i = 0; i < 3; i++)
        assert_true(s.times[i] - t0 >= 280);
    /* a transient error does not pause */
    st.kind = EMBED_E_TRANSIENT;
    g->after(g->ctx, &st, 1000, 0);
    worker_throttle_get_stats(t, &ts);
    assert_int_equal(ts.paused_remaining_ms, 0);
    worker_throttle_free(t);
    pthread_mutex_destroy(&s.mu);
}

static void *stopper(void *arg)
{
    eg_sleep_ms(100);
    worker_throttle_stop(arg);
    return NULL;
}

static void test_worker_throttle__stop_cancels_waiters_and_deadline(void **state)
{
    (void)state;
    worker_throttle_opts o = {0};
    worker_throttle *t;
    assert_int_equal(worker_throttle_new(&t, &o, NULL), 0);
    worker_throttle_pause(t, 60000, "test");
    int64_t t0 = eg_mono_ms();
    assert_int_equal(worker_throttle_acquire(t, 1, eg_mono_ms() + 100), EG_ETIMEOUT);
    assert_true(eg_mono_ms() - t0 < 1000);
    pthread_t th;
    pthread_create(&th, NULL, stopper, t);
    assert_int_equal(worker_throttle_wait_unpaused(t, 0), EG_ECANCELED);
    pthread_join(th, NULL);
    assert_int_equal(worker_throttle_acquire(t, 1, 0), EG_ECANCELED);
    worker_throttle_free(t);
}

static void test_worker_throttle__env_compat(void **state)
{
    (void)state;
    worker_throttle_opts o;
    unsetenv("ENGRAM_RATE_LIMIT_RPM");
    unsetenv("ENGRAM_RATE_LIMIT_TPM");
    setenv("EMBEDDING_RATE_LIMIT_TOKENS", "20", 1);
    setenv("EMBEDDING_RATE_LIMIT_INTERVAL", "60000", 1);
    assert_int_equal(worker_throttle_opts_from_env(&o, EMBED_PROVIDER_OPENAI, NULL), 0);
    assert_true(o.requests_per_interval == 20 && o.interval_ms == 60000);
    setenv("ENGRAM_RATE_LIMIT_RPM", "120", 1);
    assert_int_equal(worker_throttle_opts_from_env(&o, EMBED_PROVIDER_OPENAI, NULL), 0);
    assert_true(o.requests_per_interval == 120);
    unsetenv("EMBEDDING_RATE_LIMIT_TOKENS");
    unsetenv("EMBEDDING_RATE_LIMIT_INTERVAL");
    unsetenv("ENGRAM_RATE_LIMIT_RPM");
    assert_int_equal(worker_throttle_opts_from_env(&o, EMBED_PROVIDER_OFFLINE, NULL), 0);
    assert_true(o.requests_per_interval == 0 && o.tokens_per_interval == 0);
    setenv("ENGRAM_RATE_LIMIT_TPM", "-3", 1);
    assert_int_equal(worker_throttle_opts_from_env(&o, EMBED_PROVIDER_OPENAI, NULL), EG_EINVAL);
    unsetenv("ENGRAM_RATE_LIMIT_TPM");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_throttle__unlimited_does_not_wait),
        cmocka_unit_test(test_worker_throttle__request_rate_holds_across_threads),
        cmocka_unit_test(test_worker_throttle__token_rate_with_overdraft),
        cmocka_unit_test(test_worker_throttle__retry_after_pauses_everyone),
        cmocka_unit_test(test_worker_throttle__stop_cancels_waiters_and_deadline),
        cmocka_unit_test(test_worker_throttle__env_compat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
