/*
 * fake_http.c - loopback HTTP server and fake embedding API for tests.
 */
#include "fake_http.h" /* same directory: also compiled into bench/bench_pipeline.c */

#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "embed/provider_impl.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fake_http {
    struct MHD_Daemon *d;
    fake_http_handler h;
    void *ctx;
    int port;
    char url[64];
    atomic_uint_fast64_t requests;
};

typedef struct conn_state {
    eg_buf body;
} conn_state;

void fake_http_reply_header(fake_http_reply *r, const char *name, const char *fmt, ...)
{
    if (r->nheaders >= FAKE_HTTP_MAX_HEADERS)
        return;
    r->header_names[r->nheaders] = name;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->header_values[r->nheaders], sizeof r->header_values[0], fmt, ap);
    va_end(ap);
    r->nheaders++;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size,
                                  void **con_cls)
{
    (void)version;
    fake_http *s = cls;
    conn_state *cs = *con_cls;
    if (!cs) {
        cs = eg_calloc(1, sizeof *cs);
        if (!cs)
            return MHD_NO;
        eg_buf_init(&cs->body, 64u * 1024u * 1024u);
        *con_cls = cs;
        return MHD_YES;
    }
    if (*upload_size) {
        if (eg_buf_append(&cs->body, upload, *upload_size) < 0)
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    atomic_fetch_add(&s->requests, 1);
    fake_http_reply r;
    memset(&r, 0, sizeof r);
    r.status = 200;
    s->h(s->ctx, method, url, cs->body.ptr ? cs->body.ptr : "", cs->body.len, &r);
    if (r.delay_ms > 0)
        eg_sleep_ms(r.delay_ms);
    const char *b = r.body ? r.body : "";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(b), (void *)b, MHD_RESPMEM_MUST_COPY);
    eg_free(r.body);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", r.content_type ? r.content_type : "application/json");
    for (int i = 0; i < r.nheaders; i++)
        MHD_add_response_header(resp, r.header_names[i], r.header_values[i]);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)r.status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    conn_state *cs = *con_cls;
    if (cs) {
        eg_buf_free(&cs->body);
        eg_free(cs);
        *con_cls = NULL;
    }
}

int fake_http_start(fake_http **out, fake_http_handler h, void *ctx)
{
    *out = NULL;
    fake_http *s = eg_calloc(1, sizeof *s);
    if (!s)
        return -1;
    s->h = h;
    s->ctx = ctx;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = 0;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                MHD_USE_ERROR_LOG,
                            0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)30, MHD_OPTION_END);
    if (!s->d) {
        eg_free(s);
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
    *out = s;
    return 0;
}

void fake_http_stop(fake_http *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->d);
    eg_free(s);
}

int fake_http_port(const fake_http *s) { return s->port; }
const char *fake_http_url(const fake_http *s) { return s->url; }
uint64_t fake_http_requests(const fake_http *s) { return atomic_load(&((fake_http *)s)->requests); }

static size_t get_body(char *d, size_t s, size_t n, void *ud)
{
    return eg_buf_append(ud, d, s * n) == 0 ? s * n : 0;
}

long fake_http_get(int port, const char *path, eg_buf *body)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *c = curl_easy_init();
    if (!c)
        return 0;
    eg_buf_reset(body);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, get_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    long code = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    return code;
}

/* ---- fake embedding API ----------------------------------------------- */

#define ARRIVALS_MAX 200000

struct fake_embed {
    fake_http *http;
    pthread_mutex_t mu;
    fake_embed_opts o;
    char poison[128];
    char huge[128];
    char openai_url[96];
    fake_embed_stats st;
    uint64_t inflight;
    unsigned rng;
    int64_t *arrivals;
    size_t narrivals;
};

static double dice(fake_embed *f)
{
    /* LCG under the lock: reproducible for a given seed. */
    f->rng = f->rng * 1103515245u + 12345u;
    return (double)((f->rng >> 8) & 0xFFFFFF) / (double)0x1000000;
}

static char *error_body(const char *type, const char *code, const char *msg)
{
    json_t *e = json_pack("{s:{s:s,s:s,s:s,s:n}}", "error", "message", msg, "type", type, "code", code,
                          "param");
    char *s = json_dumps(e, JSON_COMPACT);
    json_decref(e);
    char *r = s ? eg_strdup(s) : NULL;
    free(s);
    return r;
}

static void embed_handler(void *ctx, const char *method, const char *path, const char *body,
                          size_t body_len, fake_http_reply *r)
{
    fake_embed *f = ctx;
    bool ollama = strcmp(path, "/api/embed") == 0;
    if (strcmp(method, "POST") != 0 || (!ollama && strcmp(path, "/v1/embeddings") != 0)) {
        r->status = 404;
        r->body = error_body("invalid_request_error", "not_found", "no such route");
        return;
    }
    pthread_mutex_lock(&f->mu);
    fake_embed_opts o = f->o;
    char poison[128], huge[128];
    memcpy(poison, f->poison, sizeof poison);
    memcpy(huge, f->huge, sizeof huge);
    f->st.requests++;
    f->inflight++;
    if (f->inflight > f->st.max_inflight)
        f->st.max_inflight = f->inflight;
    if (f->narrivals < ARRIVALS_MAX)
        f->arrivals[f->narrivals++] = eg_mono_ms();
    double roll = dice(f);
    pthread_mutex_unlock(&f->mu);

    /* Latency first (the server "works" on it), then the verdict. */
    if (o.latency_ms > 0)
        eg_sleep_ms(o.latency_ms);

    enum { OK, E500, E429, EQUOTA, E400, EMAL } verdict = OK;
    json_error_t jerr;
    json_t *req = json_loadb(body, body_len, 0, &jerr);
    json_t *input = req ? json_object_get(req, "input") : NULL;
    size_t n = json_is_array(input) ? json_array_size(input) : (json_is_string(input) ? 1 : 0);
    if (!req || !input) {
        verdict = E400;
    } else if (o.quota) {
        verdict = EQUOTA;
    } else if (o.fail_all) {
        verdict = E500;
    } else if (roll < o.p500) {
        verdict = E500;
    } else if (roll < o.p500 + o.p429) {
        verdict = E429;
    } else if (o.malformed) {
        verdict = EMAL;
    }
    if (verdict == OK && poison[0]) {
        for (size_t i = 0; i < n; i++) {
            const char *t = json_is_array(input) ? json_string_value(json_array_get(input, i))
                                                 : json_string_value(input);
            if (t && strstr(t, poison))
                verdict = E400;
        }
    }
    int dims = o.wrong_dims > 0 ? o.wrong_dims : o.dims;
    const char *enc = req ? json_string_value(json_object_get(req, "encoding_format")) : NULL;
    bool b64 = !ollama && enc && strcmp(enc, "base64") == 0;
    if (verdict == OK && b64) {
        /* built by hand: big batches of vectors are the benchmark's hot path */
        eg_buf out = EG_BUF_INIT(512u * 1024u * 1024u);
        float *v = eg_malloc((size_t)dims * sizeof *v);
        unsigned char *raw = eg_malloc((size_t)dims * 4);
        char *enc64 = eg_malloc((size_t)dims * 4 / 3 * 4 + 8);
        eg_buf_puts(&out, "{\"object\":\"list\",\"data\":[");
        for (size_t i = 0; i < n && v && raw && enc64; i++) {
            const char *t = json_is_array(input) ? json_string_value(json_array_get(input, i))
                                                 : json_string_value(input);
            embed_offline_vector(t ? t : "", dims, v);
            if (huge[0] && t && strstr(t, huge))
                v[0] = INFINITY;
            for (int k = 0; k < dims; k++) {
                uint32_t u;
                memcpy(&u, &v[k], 4);
                raw[4 * k] = (unsigned char)u;
                raw[4 * k + 1] = (unsigned char)(u >> 8);
                raw[4 * k + 2] = (unsigned char)(u >> 16);
                raw[4 * k + 3] = (unsigned char)(u >> 24);
            }
            EVP_EncodeBlock((unsigned char *)enc64, raw, dims * 4);
            eg_buf_printf(&out, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":\"%s\"}", i ? "," : "",
                          i, enc64);
        }
        eg_buf_printf(&out, "],\"model\":\"fake\",\"usage\":{\"prompt_tokens\":%zu,\"total_tokens\":%zu}}", n * 5,
                      n * 5);
        eg_free(v);
        eg_free(raw);
        eg_free(enc64);
        r->body = eg_buf_detach(&out, NULL);
    } else if (verdict == OK) {
        json_t *resp = json_object();
        json_t *arr = json_array();
        float *v = eg_malloc((size_t)dims * sizeof *v);
        for (size_t i = 0; i < n && v; i++) {
            const char *t = json_is_array(input) ? json_string_value(json_array_get(input, i))
                                                 : json_string_value(input);
            embed_offline_vector(t ? t : "", dims, v);
            json_t *vec = json_array();
            for (int k = 0; k < dims; k++)
                json_array_append_new(vec, json_real(v[k]));
            if (huge[0] && t && strstr(t, huge))
                json_array_set_new(vec, 0, json_real(1e39));
            if (ollama) {
                json_array_append_new(arr, vec);
            } else {
                json_array_append_new(arr, json_pack("{s:s,s:I,s:o}", "object", "embedding", "index",
                                                     (json_int_t)i, "embedding", vec));
            }
        }
        eg_free(v);
        if (ollama) {
            json_object_set_new(resp, "model", json_string("fake"));
            json_object_set_new(resp, "embeddings", arr);
            json_object_set_new(resp, "prompt_eval_count", json_integer((json_int_t)n * 5));
        } else {
            json_object_set_new(resp, "object", json_string("list"));
            json_object_set_new(resp, "data", arr);
            json_object_set_new(resp, "model", json_string("fake"));
            json_object_set_new(resp, "usage", json_pack("{s:I,s:I}", "prompt_tokens", (json_int_t)n * 5,
                                                         "total_tokens", (json_int_t)n * 5));
        }
        char *s = json_dumps(resp, JSON_COMPACT | JSON_REAL_PRECISION(9));
        json_decref(resp);
        r->body = s ? eg_strdup(s) : NULL;
        free(s);
    } else if (verdict == E500) {
        r->status = 500;
        r->body = error_body("server_error", "server_is_overloaded", "try again");
    } else if (verdict == E429) {
        r->status = 429;
        r->body = error_body("requests", "rate_limit_exceeded", "Rate limit reached");
        if (o.retry_after_ms > 0) {
            fake_http_reply_header(r, "retry-after-ms", "%d", o.retry_after_ms);
            fake_http_reply_header(r, "Retry-After", "%d", (o.retry_after_ms + 999) / 1000);
        }
    } else if (verdict == EQUOTA) {
        r->status = 429;
        r->body = error_body("insufficient_quota", "insufficient_quota", "You exceeded your current quota");
    } else if (verdict == E400) {
        r->status = 400;
        r->body = error_body("invalid_request_error", "invalid_input", "input rejected");
    } else {
        r->body = eg_strdup("{\"object\":\"list\",\"data\":[{\"embedding\":[0.1,");
    }
    if (verdict != OK && verdict != EMAL && o.should_retry_false)
        fake_http_reply_header(r, "x-should-retry", "false");
    json_decref(req);
    pthread_mutex_lock(&f->mu);
    f->inflight--;
    f->st.inputs += n;
    if (verdict == OK)
        f->st.ok++;
    else if (verdict == E500)
        f->st.e500++;
    else if (verdict == E429 || verdict == EQUOTA)
        f->st.e429++;
    else if (verdict == E400)
        f->st.e400++;
    pthread_mutex_unlock(&f->mu);
}

void fake_embed_set(fake_embed *f, const fake_embed_opts *opts)
{
    pthread_mutex_lock(&f->mu);
    f->o = *opts;
    f->poison[0] = '\0';
    if (opts->poison)
        snprintf(f->poison, sizeof f->poison, "%s", opts->poison);
    f->o.poison = NULL;
    f->huge[0] = '\0';
    if (opts->huge)
        snprintf(f->huge, sizeof f->huge, "%s", opts->huge);
    f->o.huge = NULL;
    if (opts->seed)
        f->rng = opts->seed;
    pthread_mutex_unlock(&f->mu);
}

int fake_embed_start(fake_embed **out, const fake_embed_opts *opts)
{
    *out = NULL;
    fake_embed *f = eg_calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->arrivals = eg_calloc(ARRIVALS_MAX, sizeof *f->arrivals);
    if (!f->arrivals) {
        eg_free(f);
        return -1;
    }
    pthread_mutex_init(&f->mu, NULL);
    f->rng = 12345u;
    fake_embed_set(f, opts);
    if (fake_http_start(&f->http, embed_handler, f) < 0) {
        pthread_mutex_destroy(&f->mu);
        eg_free(f->arrivals);
        eg_free(f);
        return -1;
    }
    snprintf(f->openai_url, sizeof f->openai_url, "%s/v1", fake_http_url(f->http));
    *out = f;
    return 0;
}

void fake_embed_stop(fake_embed *f)
{
    if (!f)
        return;
    fake_http_stop(f->http);
    pthread_mutex_destroy(&f->mu);
    eg_free(f->arrivals);
    eg_free(f);
}

const char *fake_embed_openai_url(const fake_embed *f) { return f->openai_url; }
const char *fake_embed_ollama_url(const fake_embed *f) { return fake_http_url(f->http); }

void fake_embed_stats_get(fake_embed *f, fake_embed_stats *out)
{
    pthread_mutex_lock(&f->mu);
    *out = f->st;
    pthread_mutex_unlock(&f->mu);
}

uint64_t fake_embed_max_in_window(fake_embed *f, int64_t window_ms)
{
    pthread_mutex_lock(&f->mu);
    uint64_t best = 0;
    size_t lo = 0;
    /* arrivals are appended under the lock in arrival order: sorted */
    for (size_t hi = 0; hi < f->narrivals; hi++) {
        while (f->arrivals[hi] - f->arrivals[lo] >= window_ms)
            lo++;
        if (hi - lo + 1 > best)
            best = hi - lo + 1;
    }
    pthread_mutex_unlock(&f->mu);
    return best;
}
