/*
 * provider.h - embedding providers behind one interface.
 *
 * A provider turns a batch of texts into float32 vectors of a fixed
 * dimension, or into per-input errors.  Four implementations:
 *
 *   openai   POST {OPENAI_BASE_URL}/embeddings (any OpenAI-compatible server)
 *   ollama   POST {OLLAMA_BASE_URL}/api/embed
 *   local    built in, no network: a real sentence encoder computed in
 *            this process (all-MiniLM-L6-v2 or bge-small-en-v1.5, 384
 *            dimensions) from weights the setup installed (local_model.h)
 *   offline  built in, no network: hashed word and character-trigram
 *            features, L2-normalised.  Deterministic and lexically
 *            meaningful (texts sharing words score higher): the fallback
 *            when the local encoder's weights are not installed.
 *
 * The common layer (provider.c) does what every HTTP provider needs:
 *   - splits a batch into requests within the API's limits (inputs per
 *     request, estimated tokens per request, bytes per input);
 *   - asks an optional *gate* before every HTTP request (the process's
 *     throttle: token buckets, Retry-After pause, cancellation) and tells it
 *     what happened afterwards (latency, tokens, rate limits);
 *   - bisects a multi-input request that the API rejected as bad input, so
 *     one poisonous text gets its own per-input error and the others still
 *     get vectors;
 *   - validates every response (count, index mapping, dimension, finite
 *     numbers) before a vector leaves the module.
 *
 * Error classification (embed_status.kind), decided from HTTP status, the
 * error body's `code`/`type` and the headers the official SDKs obey
 * (x-should-retry first, then retry-after-ms, then Retry-After):
 *
 *   kind                 retry?   scope      examples
 *   EMBED_E_RATE_LIMIT   yes      provider   429 rate_limit_exceeded (pause everyone)
 *   EMBED_E_TRANSIENT    yes      request    5xx, 408, 409, timeouts, connection
 *                                            errors, malformed JSON on 200
 *   EMBED_E_QUOTA        no*      provider   429 insufficient_quota (billing)
 *   EMBED_E_AUTH         no*      provider   401, 403
 *   EMBED_E_CONFIG       no*      provider   wrong dimensions, unknown model (404)
 *   EMBED_E_INPUT        no       input      400 for one text (after bisection), empty text
 *   EMBED_E_CANCELED     yes      request    the gate refused (shutdown)
 *
 *   * "no" means: retrying the same request soon is pointless.  The jobs are
 *     not at fault, so the worker fails them with a long backoff instead of
 *     killing them, and health turns red until an operator fixes the account
 *     or the configuration.
 *
 * Ownership: embed_provider_new returns a *new* provider freed with
 * embed_provider_free.  embed_config strings are *borrowed* by
 * embed_config_from_env (they point into the environment or static text)
 * and copied by embed_provider_new.
 *
 * Thread-safety: one provider per thread (each owns a libcurl easy handle).
 * Create as many as there are workers; they may share one gate.
 */
#ifndef ENGRAM_EMBED_PROVIDER_H
#define ENGRAM_EMBED_PROVIDER_H

#include "core/err.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum embed_kind {
    EMBED_PROVIDER_OFFLINE = 0,
    EMBED_PROVIDER_OPENAI,
    EMBED_PROVIDER_OLLAMA,
    EMBED_PROVIDER_LOCAL
} embed_kind;

/* The offline provider's model id (what its jobs and vectors are tagged with). */
#define EMBED_OFFLINE_MODEL "engram-offline-ngram-v1"

/* OpenAI's documented request limits. */
#define EMBED_OPENAI_MAX_INPUTS 2048
#define EMBED_OPENAI_MAX_TOKENS 300000
#define EMBED_OPENAI_MAX_INPUT_TOKENS 8192

typedef struct embed_config {
    embed_kind kind;
    const char *base_url;     /* openai: ".../v1"; ollama: "http://host:11434" */
    const char *api_key;      /* openai only; never logged */
    const char *model;        /* model name sent to the API */
    int dimensions;           /* 0: the model's default */
    int timeout_ms;           /* per HTTP request; 0: 60000 */
    int max_inputs;           /* per request; 0: 2048 (openai) / 512 (ollama) */
    long max_tokens;          /* estimated tokens per request; 0: 300000 */
    int max_input_tokens;     /* per input, longer text is truncated; 0: 8192 */
    bool float_encoding;      /* openai: ask for JSON floats instead of base64 (ENGRAM_EMBED_ENCODING=float) */
    const char *model_dir;    /* local: the models directory; NULL: embed_local_model_dir() */
    int local_engine;         /* local: an embed_local_engine (ENGRAM_LOCAL_ENGINE) */
    const char *query_prefix; /* local: prepended to search queries (bge's instruction); NULL: none */
    const char *fallback;     /* static: why the n-gram provider runs although the local encoder is
                                 the default (its weights are not installed); NULL otherwise */
} embed_config;

/*
 * Fill cfg from the environment (strings borrowed):
 *   ENGRAM_EMBED_PROVIDER  openai | ollama | local | offline (default: openai
 *                          when OPENAI_API_KEY is set, otherwise local when
 *                          the local model's weights are installed, otherwise
 *                          offline, with cfg->fallback saying why)
 *   ENGRAM_LOCAL_MODEL     local: all-MiniLM-L6-v2 (minilm) | bge-small-en-v1.5
 *                          (bge); default EMBED_LOCAL_DEFAULT_MODEL
 *   ENGRAM_LOCAL_ENGINE    local: auto | plain | blas
 *   ENGRAM_LOCAL_QUERY_PREFIX  local: text put before search queries
 *                          (default: bge's retrieval instruction; empty: none)
 *   ENGRAM_MODEL_DIR       local: where the weights are (local_model.h)
 *   MOCK_EMBEDDINGS=true   forces offline (memento compatibility)
 *   OPENAI_API_KEY, OPENAI_EMBEDDING_MODEL (text-embedding-3-small),
 *   OPENAI_BASE_URL (https://api.openai.com/v1)
 *   OLLAMA_BASE_URL (http://127.0.0.1:11434), ENGRAM_OLLAMA_MODEL (nomic-embed-text)
 *   ENGRAM_EMBED_DIMENSIONS, else NEO4J_VECTOR_DIMENSIONS, else the model's
 *   default (offline: 1536, matching memento's index)
 *   ENGRAM_EMBED_TIMEOUT_MS, ENGRAM_EMBED_MAX_INPUTS, ENGRAM_EMBED_MAX_TOKENS,
 *   ENGRAM_EMBED_ENCODING (base64 | float; default base64, as the official
 *   SDKs do: a quarter of the bytes and no float parsing)
 * Returns EG_EINVAL for an unknown provider name or a malformed number, and
 * for openai without a key.
 */
int embed_config_from_env(embed_config *cfg, eg_error *err);

/*
 * The model id jobs must carry for the configured provider (what
 * embed_config_from_env + embed_provider_model would give): the graph must
 * enqueue with this model or no worker will lease the jobs.  Borrowed
 * (environment or static); NULL when the configuration is invalid.
 */
const char *embed_model_from_env(void);

/* Static name: "offline", "openai", "ollama", "local". */
const char *embed_kind_name(embed_kind k);

typedef enum embed_errkind {
    EMBED_OK = 0,
    EMBED_E_RATE_LIMIT,
    EMBED_E_TRANSIENT,
    EMBED_E_QUOTA,
    EMBED_E_AUTH,
    EMBED_E_CONFIG,
    EMBED_E_INPUT,
    EMBED_E_CANCELED
} embed_errkind;

typedef struct embed_status {
    embed_errkind kind;
    bool retryable;          /* retrying the same work later may succeed */
    int64_t retry_after_ms;  /* from the headers; -1 when absent */
    int http_status;         /* 0 when no HTTP answer */
    char code[64];           /* provider error code, e.g. insufficient_quota */
    char message[256];       /* never contains the API key */
    int tokens;              /* local: tokens the model read for this input (0: not known) */
    bool truncated;          /* local: the input was cut to the model's token limit */
} embed_status;

/* Static name: "ok", "rate_limit", "transient", "quota", "auth", "config", "input", "canceled". */
const char *embed_errkind_name(embed_errkind k);
/* True for kinds that concern the whole provider, not the texts. */
bool embed_errkind_provider_wide(embed_errkind k);
void embed_status_clear(embed_status *st);

/*
 * The gate: the process's throttle, consulted around every HTTP request.
 * before() blocks until the request may go; it returns 0, EG_ECANCELED
 * when the process is shutting down, or a positive number of milliseconds
 * when it will not wait that long inline (a long pause): the request is not
 * sent and the call fails as EMBED_E_RATE_LIMIT with that retry_after_ms,
 * so the caller can give its work back instead of holding it.  after() reports the outcome (st->kind
 * EMBED_E_RATE_LIMIT with retry_after_ms asks the gate to pause everyone).
 * Both are called from worker threads and must be thread-safe.
 */
typedef struct embed_gate {
    int (*before)(void *ctx, long est_tokens);
    void (*after)(void *ctx, const embed_status *st, int64_t latency_us, long tokens);
    void *ctx;
} embed_gate;

typedef struct embed_provider embed_provider;

/* New provider (see ownership above).  Validates the config (e.g. `dimensions`
 * with a model that cannot shorten vectors). */
int embed_provider_new(embed_provider **out, const embed_config *cfg, eg_error *err);
void embed_provider_free(embed_provider *p);

/* Borrowed gate (NULL: none).  Set before use. */
void embed_provider_set_gate(embed_provider *p, const embed_gate *gate);
/* Abort an in-flight HTTP transfer when *flag becomes true (NULL: never). */
void embed_provider_set_cancel(embed_provider *p, const atomic_int *flag);

/* Model id (borrowed, stable for the provider's life) and vector dimension. */
const char *embed_provider_model(const embed_provider *p);
int embed_provider_dims(const embed_provider *p);
embed_kind embed_provider_kind(const embed_provider *p);

/*
 * Embed n texts.  `out` is caller-allocated: n * dims floats; row i is the
 * vector of texts[i] when per_input[i].kind == EMBED_OK.  per_input
 * (caller-allocated, n entries) receives each input's outcome.
 * Returns 0 when every input has an outcome in per_input (some may be
 * EMBED_E_INPUT); otherwise a negative code, with `batch` describing the
 * failure (its kind is provider-wide or transient) and per_input entries
 * of inputs that got no vector set to the same status.
 * tokens_out (may be NULL) receives the tokens the provider reported (or
 * the estimate), and requests_out (may be NULL) the number of HTTP requests.
 */
int embed_provider_embed(embed_provider *p, const char *const *texts, size_t n, float *out,
                         embed_status *per_input, embed_status *batch, long *tokens_out,
                         int *requests_out, eg_error *err);

/*
 * Embed one search query into out (dims floats).  Equal to a one-text
 * embed_provider_embed, except that a local model trained with a query
 * instruction (bge) gets it prepended (embed_config.query_prefix): queries
 * and stored texts are embedded as the model was trained to compare them.
 * Returns 0 with st->kind EMBED_OK, or a negative code with st describing
 * the failure.
 */
int embed_provider_embed_query(embed_provider *p, const char *text, float *out, embed_status *st, eg_error *err);

/* Rough token count of a text (bytes / 3, rounded up, at least 1): an
 * over-estimate for English, so requests stay within token limits. */
long embed_estimate_tokens(const char *text);

/* L2-normalise in place (a zero vector stays zero). */
void embed_l2_normalize(float *v, int dims);

/* Cosine similarity of two vectors (0 when either is zero). */
float embed_cosine(const float *a, const float *b, int dims);

#endif
