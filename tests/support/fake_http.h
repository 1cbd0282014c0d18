/*
 * fake_http.h - a loopback HTTP server for tests (libmicrohttpd).
 *
 * Two layers:
 *   fake_http    a generic server: every request (method, path, body) goes to
 *                a handler that fills a reply (status, body, extra headers,
 *                delay).  Thread per connection, so delays overlap like a
 *                real server's.  Counts requests.
 *   fake_embed   an embedding API on top: OpenAI `POST /v1/embeddings` and
 *                Ollama `POST /api/embed`, answering deterministic vectors
 *                (the offline provider's, so similarity is meaningful) and,
 *                on demand, faults: latency, a share of 500s and of 429 with
 *                Retry-After, insufficient_quota, malformed JSON, wrong
 *                dimensions, 400 for any input containing a poison marker.
 *                It counts requests and inputs, records the time of every
 *                request (to measure the rate a client kept) and the peak
 *                number of requests in flight.
 *
 * Only binds 127.0.0.1 on an ephemeral port.
 * Thread-safety: handlers run on server threads; fake_embed's settings may
 * be changed while it runs (they are read under its lock).
 */
#ifndef ENGRAM_TESTS_FAKE_HTTP_H
#define ENGRAM_TESTS_FAKE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fake_http fake_http;

#define FAKE_HTTP_MAX_HEADERS 8

typedef struct fake_http_reply {
    int status;                 /* default 200 */
    char *body;                 /* new memory (eg_malloc), freed by the server; NULL: empty */
    const char *content_type;   /* default application/json */
    const char *header_names[FAKE_HTTP_MAX_HEADERS];
    char header_values[FAKE_HTTP_MAX_HEADERS][64];
    int nheaders;
    int delay_ms;               /* sleep before answering */
} fake_http_reply;

typedef void (*fake_http_handler)(void *ctx, const char *method, const char *path, const char *body,
                                  size_t body_len, fake_http_reply *reply);

/* Start on 127.0.0.1:<ephemeral>.  Returns 0 or -1. */
int fake_http_start(fake_http **out, fake_http_handler h, void *ctx);
void fake_http_stop(fake_http *s);
int fake_http_port(const fake_http *s);
/* "http://127.0.0.1:PORT" (borrowed). */
const char *fake_http_url(const fake_http *s);
uint64_t fake_http_requests(const fake_http *s);

/* Add a header to a reply (name must be a string literal or outlive the reply). */
void fake_http_reply_header(fake_http_reply *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * A GET on 127.0.0.1:port/path with libcurl (test client side): the body is
 * appended to `body` (reset first); returns the HTTP status, 0 on failure.
 */
struct eg_buf;
long fake_http_get(int port, const char *path, struct eg_buf *body);

/* ---- the fake embedding API ------------------------------------------- */

typedef struct fake_embed_opts {
    int dims;                 /* dimension of the vectors answered */
    int latency_ms;           /* per request */
    double p500;              /* share of requests answered 500 */
    double p429;              /* share answered 429 rate_limit_exceeded */
    int retry_after_ms;       /* sent with 429 as retry-after-ms (and Retry-After, rounded up) */
    bool quota;               /* answer every request 429 insufficient_quota */
    bool fail_all;            /* answer every request 500 */
    bool malformed;           /* answer 200 with broken JSON */
    int wrong_dims;           /* >0: answer vectors of this size */
    const char *poison;       /* inputs containing this get 400 (whole request, like OpenAI) */
    const char *huge;         /* inputs containing this get a vector whose first value does not fit a
                               * float: 1e39 as JSON, +inf as base64 float32 */
    bool should_retry_false;  /* add x-should-retry: false to errors */
    unsigned seed;            /* for the fault dice; 0: fixed default */
} fake_embed_opts;

typedef struct fake_embed fake_embed;

int fake_embed_start(fake_embed **out, const fake_embed_opts *opts);
void fake_embed_stop(fake_embed *f);
/* Base URL for OPENAI_BASE_URL ("http://127.0.0.1:PORT/v1") and for Ollama
 * ("http://127.0.0.1:PORT"); borrowed. */
const char *fake_embed_openai_url(const fake_embed *f);
const char *fake_embed_ollama_url(const fake_embed *f);
void fake_embed_set(fake_embed *f, const fake_embed_opts *opts);

typedef struct fake_embed_stats {
    uint64_t requests, inputs, ok, e500, e429, e400, max_inflight;
} fake_embed_stats;
void fake_embed_stats_get(fake_embed *f, fake_embed_stats *out);

/*
 * The largest number of requests that *arrived* within any window of
 * window_ms (a sliding window over the recorded arrival times).
 */
uint64_t fake_embed_max_in_window(fake_embed *f, int64_t window_ms);

#endif
