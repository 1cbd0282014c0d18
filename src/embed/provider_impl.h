/*
 * provider_impl.h - what provider implementations share (internal to embed/).
 *
 * An implementation supplies `request`: one HTTP request (or one local
 * computation) for n texts already within the limits.  It fills all n rows
 * of `out` and returns 0, or fills `st` and returns a negative code.
 *
 * Thread-safety: as provider.h (one provider per thread).
 */
#ifndef ENGRAM_EMBED_PROVIDER_IMPL_H
#define ENGRAM_EMBED_PROVIDER_IMPL_H

#include "core/buf.h"
#include "embed/provider.h"

#include <curl/curl.h>
#include <jansson.h>

struct embed_provider {
    embed_kind kind;
    char *base_url;
    char *api_key;
    char *model;
    int dims;
    bool send_dimensions; /* openai text-embedding-3*, ollama when configured */
    bool b64;             /* openai: ask for encoding_format=base64 (float32, 4x less to parse) */
    int timeout_ms;
    int max_inputs;
    long max_tokens;
    int max_input_tokens;
    const embed_gate *gate;
    const atomic_int *cancel;
    CURL *curl;
    struct embed_local_model *local; /* local: the process's shared model (a reference) */
    char *query_prefix;              /* local: see embed_config.query_prefix */
    int (*request)(embed_provider *p, const char *const *texts, size_t n, float *out,
                   embed_status *st, long *tokens_out);
};

/* The HTTP exchange of one request. */
typedef struct embed_http_reply {
    long status;               /* HTTP status, 0 when no answer */
    eg_buf body;
    int64_t retry_after_ms;    /* -1 when absent */
    int should_retry;          /* -1 absent, 0 false, 1 true */
} embed_http_reply;

/*
 * Take in one response header line ("Name: value\r\n", not NUL-terminated):
 * retry-after-ms (wins), Retry-After in seconds (below a day), x-should-retry,
 * and a status line ("HTTP/...") that starts a new response.  The curl header
 * callback; exposed for the fuzz target.
 */
void embed_http_header_line(embed_http_reply *r, const char *data, size_t n);

/*
 * POST a JSON body to url.  Fills reply (the caller frees reply->body with
 * eg_buf_free).  Returns 0 when an HTTP answer arrived (any status);
 * otherwise fills st (transient or canceled) and returns a negative code.
 */
int embed_http_post(embed_provider *p, const char *url, const char *body,
                    embed_http_reply *reply, embed_status *st);

/* {"model": p->model, "input": [texts]}: *new* JSON (NULL on OOM); callers add fields. */
json_t *embed_request_new(const embed_provider *p, const char *const *texts, size_t n);

/*
 * POST req (*steals* it) to base_url + path.  On a 2xx answer parse it into
 * *doc_out (*new*); otherwise classify (embed_http_classify) or report a
 * transport/JSON failure in st.  Returns 0 or a negative code.
 */
int embed_post_json(embed_provider *p, const char *path, json_t *req, json_t **doc_out, embed_status *st);

/*
 * Classify a non-2xx answer: kind, retryable, retry-after and the provider's
 * error code/message from the JSON body ({"error":{...}} or {"error":"..."}).
 * Returns the negative code matching the kind.
 */
int embed_http_classify(const embed_http_reply *reply, embed_status *st);

/* Copy a JSON array of numbers into out[dims]; EG_EPROTO when it is not one,
 * EG_EINVAL when the length differs from dims, EG_ETOOBIG when a value does
 * not fit a (finite) float: a fault of that input's vector only, which the
 * providers report as EMBED_E_INPUT so that only that input fails. */
int embed_json_vector(const json_t *arr, float *out, int dims);

/* Decode base64 little-endian float32 into out[dims]; EG_EINVAL on a size
 * mismatch, EG_EPROTO when it is not base64, EG_ETOOBIG when it holds
 * non-finite values. */
int embed_b64_vector(const char *b64, size_t len, float *out, int dims);

/* Set st (kind, retryable from kind) and a message; returns the matching code. */
int embed_status_set(embed_status *st, embed_errkind kind, int http_status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

int embed_openai_init(embed_provider *p, eg_error *err);
int embed_ollama_init(embed_provider *p, eg_error *err);
int embed_offline_init(embed_provider *p, eg_error *err);
int embed_local_init(embed_provider *p, const embed_config *cfg, eg_error *err);
/* Fill the local provider's part of cfg from the environment (strings borrowed). */
int embed_local_config(embed_config *cfg, eg_error *err);

/*
 * The local provider's batch: the n texts (none empty) are embedded by the
 * in-process model; per_input[i] gets EMBED_OK with tokens and truncated.
 * Returns 0, or a negative code with batch filled (EG_ENOMEM only).
 */
int embed_local_embed(embed_provider *p, const char *const *texts, size_t n, float *out, embed_status *per_input,
                      embed_status *batch, long *tokens_out, eg_error *err);

/* The offline vector of one text (exported for fake servers in tests). */
void embed_offline_vector(const char *text, int dims, float *out);

#endif
