/*
 * health.c - verdict, JSON report, Prometheus text and the HTTP server.
 */
#include "worker/health.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int worker_health_opts_from_env(worker_health_opts *o, eg_error *err)
{
    memset(o, 0, sizeof *o);
    o->addr = "127.0.0.1";
    o->port = 9477;
    o->cache_ms = 1000;
    o->stall_ms = 300000;
    o->unhealthy_failures = 5;
    const char *v;
    if ((v = getenv("ENGRAM_HEALTH_ADDR")) && *v)
        o->addr = v;
    if ((v = getenv("ENGRAM_HEALTH_TOKEN")) && *v)
        o->token = v;
    struct {
        const char *name;
        long lo, hi, mul;
        void *dst;
        bool is_int;
    } t[] = {
        {"ENGRAM_HEALTH_PORT", -1, 65535, 1, &o->port, true},
        {"ENGRAM_HEALTH_CACHE_MS", 0, 600000, 1, &o->cache_ms, false},
        {"ENGRAM_HEALTH_STALL_SECONDS", 1, 86400L * 30, 1000, &o->stall_ms, false},
        {"ENGRAM_HEALTH_FAILURES", 1, 1000000, 1, &o->unhealthy_failures, true},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (!(v = getenv(t[i].name)) || !*v)
            continue;
        char *end = NULL;
        errno = 0;
        long x = strtol(v, &end, 10);
        if (errno || !end || *end || x < t[i].lo || x > t[i].hi)
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "%s must be an integer in [%ld, %ld]",
                                t[i].name, t[i].lo, t[i].hi);
        if (t[i].is_int)
            *(int *)t[i].dst = (int)x;
        else
            *(int64_t *)t[i].dst = (int64_t)x * t[i].mul;
    }
    return 0;
}

/* ---- the verdict ------------------------------------------------------ */

bool worker_health_evaluate(const worker_health_input *in, json_t **out)
{
    json_t *reasons = json_array();
    json_t *notes = json_array();
    json_t *doc = json_object();
    char b[400];
    bool ok = true;

    if (!in->queue_ok) {
        ok = false;
        snprintf(b, sizeof b, "queue store unavailable: %s", in->queue_error);
        json_array_append_new(reasons, json_string(b));
    }
    const worker_stats *ws = &in->ws;
    /* A completion in the store's newest bucket counts too: it may come
     * from a worker in another process or on another machine. */
    bool recent_success = (in->have_workers && ws->last_success_wall_ms > 0 &&
                           in->now_wall_ms - ws->last_success_wall_ms <= in->stall_ms) ||
                          (in->queue_ok && in->qs.completed_recent[0] > 0);
    if (in->have_workers) {
        if (ws->consecutive_failures >= in->unhealthy_failures) {
            ok = false;
            snprintf(b, sizeof b, "embedding provider failing: %d consecutive failed calls (last: %s error)",
                     ws->consecutive_failures, embed_errkind_name(ws->provider_state));
            json_array_append_new(reasons, json_string(b));
        } else if (ws->provider_state == EMBED_E_QUOTA || ws->provider_state == EMBED_E_AUTH ||
                   ws->provider_state == EMBED_E_CONFIG) {
            ok = false;
            snprintf(b, sizeof b, "embedding provider refuses work (%s error)",
                     embed_errkind_name(ws->provider_state));
            json_array_append_new(reasons, json_string(b));
        }
        if (ws->throttle.paused_remaining_ms > 0) {
            snprintf(b, sizeof b, "provider paused for %lld ms: %s", (long long)ws->throttle.paused_remaining_ms,
                     ws->throttle.pause_reason);
            json_array_append_new(notes, json_string(b));
        }
    }
    if (in->queue_ok) {
        if (in->qs.ready > 0 && in->qs.oldest_pending_age_ms > in->stall_ms && !recent_success) {
            ok = false;
            snprintf(b, sizeof b,
                     "embeddings stalled: %lld jobs ready, the oldest waiting %lld s, no embedding produced "
                     "in the last %lld s%s",
                     (long long)in->qs.ready, (long long)(in->qs.oldest_pending_age_ms / 1000),
                     (long long)(in->stall_ms / 1000),
                     in->have_workers ? "" : " (no workers run in this process; is any worker running?)");
            json_array_append_new(reasons, json_string(b));
        }
        if (in->qs.count[QUEUE_DEAD] > 0) {
            snprintf(b, sizeof b, "%lld dead jobs (see `engram queue dead`)", (long long)in->qs.count[QUEUE_DEAD]);
            json_array_append_new(notes, json_string(b));
        }
    }
    const char *status = !ok ? "unhealthy" : json_array_size(notes) ? "degraded" : "ok";
    json_object_set_new(doc, "status", json_string(status));
    json_object_set_new(doc, "reasons", reasons);
    json_object_set_new(doc, "notes", notes);
    if (in->queue_ok) {
        json_t *q = json_object();
        for (int s = 0; s < QUEUE_STATE_COUNT; s++)
            json_object_set_new(q, queue_state_name((queue_state)s), json_integer(in->qs.count[s]));
        json_object_set_new(q, "ready", json_integer(in->qs.ready));
        json_object_set_new(q, "depth", json_integer(in->qs.count[QUEUE_PENDING] + in->qs.count[QUEUE_LEASED]));
        json_object_set_new(q, "oldestPendingAgeMs",
                            in->qs.oldest_pending_age_ms >= 0 ? json_integer(in->qs.oldest_pending_age_ms)
                                                              : json_null());
        json_object_set_new(q, "expiredLeases", json_integer(in->qs.expired_leases));
        json_object_set_new(doc, "queue", q);
    } else {
        json_object_set_new(doc, "queue", json_pack("{s:s}", "error", in->queue_error));
    }
    if (in->have_workers) {
        json_t *w = json_object();
        json_object_set_new(w, "owner", json_string(ws->owner));
        json_object_set_new(w, "concurrency", json_integer(ws->concurrency));
        json_object_set_new(w, "inFlight", json_integer(ws->in_flight));
        json_object_set_new(w, "completed", json_integer((json_int_t)ws->completed));
        json_object_set_new(w, "failed", json_integer((json_int_t)ws->failed));
        json_object_set_new(w, "dead", json_integer((json_int_t)ws->dead));
        json_object_set_new(w, "superseded", json_integer((json_int_t)ws->superseded));
        json_object_set_new(w, "lastSuccess",
                            ws->last_success_wall_ms ? json_integer(ws->last_success_wall_ms) : json_null());
        json_object_set_new(w, "consecutiveFailures", json_integer(ws->consecutive_failures));
        json_object_set_new(doc, "workers", w);
        json_t *p = json_object();
        json_object_set_new(p, "kind", json_string(ws->provider));
        json_object_set_new(p, "model", json_string(ws->model));
        json_object_set_new(p, "dimensions", json_integer(ws->dims));
        json_object_set_new(p, "state", json_string(embed_errkind_name(ws->provider_state)));
        json_object_set_new(p, "paused", json_boolean(ws->throttle.paused_remaining_ms > 0));
        json_object_set_new(p, "pauseRemainingMs", json_integer(ws->throttle.paused_remaining_ms));
        json_object_set_new(p, "pauseReason", json_string(ws->throttle.pause_reason));
        json_object_set_new(p, "lastErrorKind",
                            ws->last_error[0] ? json_string(embed_errkind_name(ws->provider_state)) : json_null());
        /* Not red (embeddings are produced), but never silent either. */
        json_object_set_new(p, "fallback", ws->fallback[0] ? json_string(ws->fallback) : json_null());
        json_object_set_new(doc, "provider", p);
    } else {
        json_object_set_new(doc, "workers", json_null());
    }
    *out = doc;
    return ok;
}

/* ---- the server ------------------------------------------------------- */

struct worker_health {
    worker_health_opts o;
    queue_store *store;
    worker_manager *m;
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t mu;       /* the cached status */
    queue_status qs;
    bool qs_ok;
    char qs_err[200];
    int64_t qs_at;            /* monotonic ms; 0: never */
};

/* Refresh the cached store status when older than cache_ms; copy scalars out. */
static void gather(worker_health *h, worker_health_input *in)
{
    memset(in, 0, sizeof *in);
    pthread_mutex_lock(&h->mu);
    int64_t now = eg_mono_ms();
    if (h->qs_at == 0 || now - h->qs_at >= h->o.cache_ms) {
        queue_status_clear(&h->qs);
        memset(&h->qs, 0, sizeof h->qs);
        eg_error err;
        eg_error_clear(&err);
        h->qs_ok = queue_status_get(h->store, &h->qs, &err) == 0;
        snprintf(h->qs_err, sizeof h->qs_err, "%.190s", h->qs_ok ? "" : err.message);
        h->qs_at = now;
    }
    in->queue_ok = h->qs_ok;
    snprintf(in->queue_error, sizeof in->queue_error, "%s", h->qs_err);
    in->qs = h->qs;
    in->qs.models = NULL; /* only scalars are used; the arrays stay owned by the cache */
    in->qs.nmodels = 0;
    in->qs.dead = NULL;
    in->qs.ndead = 0;
    pthread_mutex_unlock(&h->mu);
    in->have_workers = h->m != NULL;
    if (h->m)
        worker_manager_get_stats(h->m, &in->ws);
    in->now_wall_ms = eg_wall_ms();
    in->stall_ms = h->o.stall_ms;
    in->unhealthy_failures = h->o.unhealthy_failures;
}

int worker_health_check(worker_health *h, json_t **json_out, bool *healthy_out)
{
    worker_health_input in;
    gather(h, &in);
    *healthy_out = worker_health_evaluate(&in, json_out);
    return *json_out ? 0 : EG_ENOMEM;
}

static void metric(eg_buf *b, const char *name, const char *type, const char *help)
{
    eg_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int worker_health_metrics(worker_health *h, eg_buf *b)
{
    worker_health_input in;
    gather(h, &in);
    json_t *doc = NULL;
    bool ok = worker_health_evaluate(&in, &doc);
    json_decref(doc);
    metric(b, "engram_health_ok", "gauge", "1 when /health answers 200");
    eg_buf_printf(b, "engram_health_ok %d\n", ok ? 1 : 0);
    metric(b, "engram_queue_up", "gauge", "1 when the job store answered");
    eg_buf_printf(b, "engram_queue_up %d\n", in.queue_ok ? 1 : 0);
    if (in.queue_ok) {
        metric(b, "engram_jobs", "gauge", "Embedding jobs in the store by state (all processes)");
        for (int s = 0; s < QUEUE_STATE_COUNT; s++)
            eg_buf_printf(b, "engram_jobs{state=\"%s\"} %lld\n", queue_state_name((queue_state)s),
                          (long long)in.qs.count[s]);
        metric(b, "engram_jobs_ready", "gauge", "Pending jobs whose runAt has passed");
        eg_buf_printf(b, "engram_jobs_ready %lld\n", (long long)in.qs.ready);
        metric(b, "engram_queue_oldest_pending_age_seconds", "gauge", "Age of the oldest ready job");
        eg_buf_printf(b, "engram_queue_oldest_pending_age_seconds %.3f\n",
                      in.qs.oldest_pending_age_ms > 0 ? (double)in.qs.oldest_pending_age_ms / 1000.0 : 0.0);
        metric(b, "engram_queue_expired_leases", "gauge", "Leased jobs past their lease");
        eg_buf_printf(b, "engram_queue_expired_leases %lld\n", (long long)in.qs.expired_leases);
    }
    if (in.have_workers) {
        const worker_stats *w = &in.ws;
        metric(b, "engram_worker_jobs_leased", "gauge", "Jobs leased by this process now");
        eg_buf_printf(b, "engram_worker_jobs_leased %lld\n", (long long)w->in_flight);
        struct {
            const char *name, *help;
            uint64_t v;
        } c[] = {
            {"engram_worker_jobs_leased_total", "Jobs leased by this process", w->leased},
            {"engram_worker_jobs_completed_total", "Jobs completed (vector written or already current)",
             w->completed},
            {"engram_worker_jobs_skipped_total", "Jobs completed without a provider call", w->skipped},
            {"engram_worker_jobs_superseded_total", "Jobs whose entity moved on", w->superseded},
            {"engram_worker_jobs_failed_total", "Jobs failed and rescheduled", w->failed},
            {"engram_worker_jobs_dead_total", "Jobs that ended dead", w->dead},
            {"engram_worker_jobs_released_total", "Jobs given back without spending an attempt", w->released},
            {"engram_worker_leases_lost_total", "Results dropped because the lease was lost", w->lost},
            {"engram_worker_batches_total", "Batches processed", w->batches},
            {"engram_worker_heartbeat_lost_total", "Leases a heartbeat found lost while still in use",
             w->lost_heartbeats},
            {"engram_provider_tokens_total", "Tokens reported by the provider", w->provider_tokens},
        };
        for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
            metric(b, c[i].name, "counter", c[i].help);
            eg_buf_printf(b, "%s %llu\n", c[i].name, (unsigned long long)c[i].v);
        }
        metric(b, "engram_provider_requests_total", "counter", "Provider HTTP requests");
        eg_buf_printf(b, "engram_provider_requests_total %llu\n", (unsigned long long)w->provider_requests);
        metric(b, "engram_provider_errors_total", "counter", "Failed provider calls by error kind");
        for (int k = 1; k < 8; k++)
            eg_buf_printf(b, "engram_provider_errors_total{kind=\"%s\"} %llu\n",
                          embed_errkind_name((embed_errkind)k), (unsigned long long)w->errors_by_kind[k]);
        metric(b, "engram_provider_request_duration_seconds", "histogram", "Provider request latency");
        for (int i = 0; i < WORKER_LAT_BUCKETS; i++)
            eg_buf_printf(b, "engram_provider_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                          worker_latency_bounds[i], (unsigned long long)w->latency_le[i]);
        eg_buf_printf(b, "engram_provider_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                      (unsigned long long)w->latency_count);
        eg_buf_printf(b, "engram_provider_request_duration_seconds_sum %.6f\n", w->latency_sum_s);
        eg_buf_printf(b, "engram_provider_request_duration_seconds_count %llu\n",
                      (unsigned long long)w->latency_count);
        metric(b, "engram_throttle_wait_seconds_total", "counter", "Time workers waited on the rate limiter");
        eg_buf_printf(b, "engram_throttle_wait_seconds_total %.3f\n", (double)w->throttle.waited_us / 1e6);
        metric(b, "engram_throttle_pauses_total", "counter", "Provider pauses (429 Retry-After, refusals)");
        eg_buf_printf(b, "engram_throttle_pauses_total %llu\n", (unsigned long long)w->throttle.pauses);
        metric(b, "engram_provider_paused", "gauge", "1 while every worker is paused");
        eg_buf_printf(b, "engram_provider_paused %d\n", w->throttle.paused_remaining_ms > 0 ? 1 : 0);
        metric(b, "engram_provider_consecutive_failures", "gauge", "Failed provider calls in a row");
        eg_buf_printf(b, "engram_provider_consecutive_failures %d\n", w->consecutive_failures);
        metric(b, "engram_provider_last_success_timestamp_seconds", "gauge", "Wall time of the last success");
        eg_buf_printf(b, "engram_provider_last_success_timestamp_seconds %.3f\n",
                      (double)w->last_success_wall_ms / 1000.0);
        metric(b, "engram_workers", "gauge", "Worker threads in this process");
        eg_buf_printf(b, "engram_workers %d\n", w->concurrency);
    }
    return 0;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type, char *body)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* With a token configured, the request must carry it (compared in constant
 * time, so the token cannot be guessed byte by byte from response times). */
static bool authorized(const worker_health *h, struct MHD_Connection *c)
{
    if (!h->o.token || !h->o.token[0])
        return true;
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!v || strncasecmp(v, "Bearer ", 7) != 0)
        return false;
    v += 7;
    size_t n = strlen(h->o.token);
    return strlen(v) == n && CRYPTO_memcmp(v, h->o.token, n) == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size,
                                  void **con_cls)
{
    (void)version, (void)upload;
    worker_health *h = cls;
    if (!*con_cls) {
        *con_cls = (void *)1; /* first call: headers only */
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0; /* bodies are ignored */
        return MHD_YES;
    }
    if (!authorized(h, c))
        return reply(c, MHD_HTTP_UNAUTHORIZED, "text/plain", "unauthorized: send Authorization: Bearer <token>\n");
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "method not allowed\n");
    if (strcmp(url, "/health") == 0 || strcmp(url, "/healthz") == 0) {
        json_t *doc = NULL;
        bool ok = false;
        worker_health_check(h, &doc, &ok);
        char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        json_decref(doc);
        enum MHD_Result r = reply(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, "application/json",
                                  s ? s : "{\"status\":\"unhealthy\"}");
        eg_free(s);
        return r;
    }
    if (strcmp(url, "/metrics") == 0) {
        eg_buf b = EG_BUF_INIT(4u * 1024u * 1024u);
        worker_health_metrics(h, &b);
        enum MHD_Result r = reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4", b.ptr ? b.ptr : "");
        eg_buf_free(&b);
        return r;
    }
    return reply(c, MHD_HTTP_NOT_FOUND, "text/plain", "not found: try /health or /metrics\n");
}

int worker_health_start(worker_health **out, const worker_health_opts *o, queue_store *store, worker_manager *m,
                        eg_error *err)
{
    *out = NULL;
    worker_health *h = eg_calloc(1, sizeof *h);
    if (!h)
        return eg_error_oom(err);
    h->o = *o;
    h->store = store;
    h->m = m;
    pthread_mutex_init(&h->mu, NULL);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)(o->port > 0 ? o->port : 0));
    if (inet_pton(AF_INET, o->addr ? o->addr : "127.0.0.1", &sa.sin_addr) != 1) {
        pthread_mutex_destroy(&h->mu);
        eg_free(h);
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "ENGRAM_HEALTH_ADDR '%s' is not an IPv4 address",
                            o->addr);
    }
    /* Reachable from other machines: only with a token. */
    if ((ntohl(sa.sin_addr.s_addr) >> 24) != 127 && (!o->token || !o->token[0])) {
        pthread_mutex_destroy(&h->mu);
        eg_free(h);
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "ENGRAM_HEALTH_ADDR %s is not a loopback address: set ENGRAM_HEALTH_TOKEN "
                            "(clients then send Authorization: Bearer <token>) or bind 127.0.0.1",
                            o->addr);
    }
    h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, h,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)10, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
    if (!h->d) {
        pthread_mutex_destroy(&h->mu);
        eg_free(h);
        return eg_error_set(err, EG_EIO, EG_CLASS_CLIENT, "cannot listen on %s:%d for /health",
                            o->addr ? o->addr : "127.0.0.1", o->port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : o->port;
    char p[16];
    snprintf(p, sizeof p, "%d", h->port);
    eg_log_fields(EG_LOG_INFO, "health", "serving /health and /metrics", "addr", o->addr ? o->addr : "127.0.0.1",
                  "port", p, NULL);
    *out = h;
    return 0;
}

int worker_health_port(const worker_health *h) { return h->port; }

void worker_health_stop(worker_health *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    queue_status_clear(&h->qs);
    pthread_mutex_destroy(&h->mu);
    eg_free(h);
}
