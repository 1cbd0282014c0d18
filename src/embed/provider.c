/*
 * provider.c - configuration, the common batching/bisection layer, helpers.
 *
 * embed_provider_embed walks the batch in order and cuts it into requests
 * that respect max_inputs and max_tokens (estimated).  Each request passes
 * the gate first.  A request rejected as bad input (EMBED_E_INPUT) with more
 * than one text is split in halves and each half retried, recursively, so
 * the culprit ends with a per-input error and its neighbours with vectors:
 * one poisonous entity never blocks the batch it was leased with.
 */
#include "embed/provider_impl.h"

#include "core/alloc.h"
#include "core/env.h"
#include "core/clock.h"
#include "core/log.h"
#include "embed/local_model.h"

#include <errno.h>
#include <openssl/evp.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *embed_kind_name(embed_kind k)
{
    switch (k) {
    case EMBED_PROVIDER_OPENAI: return "openai";
    case EMBED_PROVIDER_OLLAMA: return "ollama";
    case EMBED_PROVIDER_LOCAL: return "local";
    default: return "offline";
    }
}

const char *embed_errkind_name(embed_errkind k)
{
    switch (k) {
    case EMBED_OK: return "ok";
    case EMBED_E_RATE_LIMIT: return "rate_limit";
    case EMBED_E_TRANSIENT: return "transient";
    case EMBED_E_QUOTA: return "quota";
    case EMBED_E_AUTH: return "auth";
    case EMBED_E_CONFIG: return "config";
    case EMBED_E_INPUT: return "input";
    case EMBED_E_CANCELED: return "canceled";
    }
    return "unknown";
}

bool embed_errkind_provider_wide(embed_errkind k)
{
    return k == EMBED_E_RATE_LIMIT || k == EMBED_E_QUOTA || k == EMBED_E_AUTH || k == EMBED_E_CONFIG;
}

void embed_status_clear(embed_status *st)
{
    if (!st)
        return;
    memset(st, 0, sizeof *st);
    st->retry_after_ms = -1;
}

static int kind_code(embed_errkind k)
{
    switch (k) {
    case EMBED_OK: return 0;
    case EMBED_E_RATE_LIMIT:
    case EMBED_E_TRANSIENT: return EG_ETRANSIENT;
    case EMBED_E_QUOTA:
    case EMBED_E_AUTH: return EG_EAUTH;
    case EMBED_E_CONFIG: return EG_EUNSUPPORTED;
    case EMBED_E_INPUT: return EG_EINVAL;
    case EMBED_E_CANCELED: return EG_ECANCELED;
    }
    return EG_EINTERNAL;
}

int embed_status_set(embed_status *st, embed_errkind kind, int http_status, const char *fmt, ...)
{
    if (st) {
        st->kind = kind;
        st->http_status = http_status;
        st->retryable = kind == EMBED_E_RATE_LIMIT || kind == EMBED_E_TRANSIENT ||
                        kind == EMBED_E_CANCELED;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(st->message, sizeof st->message, fmt, ap);
        va_end(ap);
    }
    return kind_code(kind);
}

/* ---- configuration ---------------------------------------------------- */

static const char *env_nonempty(const char *name)
{
    return eg_env_str(name, NULL);
}

static int env_int(const char *name, long lo, long hi, long *out, eg_error *err)
{
    int64_t x;
    int rc = eg_env_int(name, lo, hi, &x, err);
    if (rc == 1)
        *out = (long)x;
    return rc;
}

int embed_config_from_env(embed_config *cfg, eg_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    const char *key = env_nonempty("OPENAI_API_KEY");
    const char *which = env_nonempty("ENGRAM_EMBED_PROVIDER");
    if (eg_env_yes("MOCK_EMBEDDINGS"))
        cfg->kind = EMBED_PROVIDER_OFFLINE;
    else if (!which)
        cfg->kind = key ? EMBED_PROVIDER_OPENAI : EMBED_PROVIDER_LOCAL;
    else if (strcmp(which, "openai") == 0)
        cfg->kind = EMBED_PROVIDER_OPENAI;
    else if (strcmp(which, "ollama") == 0)
        cfg->kind = EMBED_PROVIDER_OLLAMA;
    else if (strcmp(which, "local") == 0)
        cfg->kind = EMBED_PROVIDER_LOCAL;
    else if (strcmp(which, "offline") == 0 || strcmp(which, "mock") == 0)
        cfg->kind = EMBED_PROVIDER_OFFLINE;
    else
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "ENGRAM_EMBED_PROVIDER must be openai, ollama, local or offline");

    switch (cfg->kind) {
    case EMBED_PROVIDER_OPENAI:
        if (!key)
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                                "ENGRAM_EMBED_PROVIDER=openai needs OPENAI_API_KEY");
        cfg->api_key = key;
        cfg->base_url = env_nonempty("OPENAI_BASE_URL");
        if (!cfg->base_url)
            cfg->base_url = "https://api.openai.com/v1";
        cfg->model = env_nonempty("OPENAI_EMBEDDING_MODEL");
        if (!cfg->model)
            cfg->model = "text-embedding-3-small";
        break;
    case EMBED_PROVIDER_OLLAMA:
        cfg->base_url = env_nonempty("OLLAMA_BASE_URL");
        if (!cfg->base_url)
            cfg->base_url = "http://127.0.0.1:11434";
        cfg->model = env_nonempty("ENGRAM_OLLAMA_MODEL");
        if (!cfg->model)
            cfg->model = "nomic-embed-text";
        break;
    case EMBED_PROVIDER_OFFLINE:
        cfg->model = EMBED_OFFLINE_MODEL;
        break;
    case EMBED_PROVIDER_LOCAL: {
        int rc = embed_local_config(cfg, err);
        if (rc)
            return rc;
        /* The default without an account is the real encoder; when its
         * weights were never installed, the n-gram provider keeps engram
         * working, and every place that shows the configuration says so. */
        if (!which && !embed_local_model_installed(cfg->model_dir, cfg->model)) {
            memset(cfg, 0, sizeof *cfg);
            cfg->kind = EMBED_PROVIDER_OFFLINE;
            cfg->model = EMBED_OFFLINE_MODEL;
            cfg->fallback = "the local sentence encoder's weights are not installed (run scripts/install-models.sh, "
                            "or scripts/setup.sh): using the lexical n-gram provider, so semantic search only "
                            "matches words";
        }
        break;
    }
    }

    long v = 0;
    int rc = env_int("ENGRAM_EMBED_DIMENSIONS", 1, 65536, &v, err);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        rc = env_int("NEO4J_VECTOR_DIMENSIONS", 1, 65536, &v, err);
        if (rc < 0)
            return rc;
    }
    if (rc == 1)
        cfg->dimensions = (int)v;
    if (cfg->kind == EMBED_PROVIDER_LOCAL && cfg->dimensions != 0 && cfg->dimensions != EMBED_LOCAL_DIMS)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "the local model %s makes %d-dimensional vectors, but %d dimensions are configured "
                            "(ENGRAM_EMBED_DIMENSIONS / NEO4J_VECTOR_DIMENSIONS)", cfg->model, EMBED_LOCAL_DIMS,
                            cfg->dimensions);
    if (cfg->kind == EMBED_PROVIDER_LOCAL)
        cfg->dimensions = EMBED_LOCAL_DIMS;
    const char *enc = env_nonempty("ENGRAM_EMBED_ENCODING");
    if (enc && strcmp(enc, "float") == 0)
        cfg->float_encoding = true;
    else if (enc && strcmp(enc, "base64") != 0)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "ENGRAM_EMBED_ENCODING must be base64 or float");
    if ((rc = env_int("ENGRAM_EMBED_TIMEOUT_MS", 100, 3600000, &v, err)) < 0)
        return rc;
    if (rc == 1)
        cfg->timeout_ms = (int)v;
    if ((rc = env_int("ENGRAM_EMBED_MAX_INPUTS", 1, EMBED_OPENAI_MAX_INPUTS, &v, err)) < 0)
        return rc;
    if (rc == 1)
        cfg->max_inputs = (int)v;
    if ((rc = env_int("ENGRAM_EMBED_MAX_TOKENS", 1, 100000000, &v, err)) < 0)
        return rc;
    if (rc == 1)
        cfg->max_tokens = v;
    return 0;
}

const char *embed_model_from_env(void)
{
    embed_config c;
    return embed_config_from_env(&c, NULL) == 0 ? c.model : NULL;
}

/* ---- lifecycle -------------------------------------------------------- */

int embed_provider_new(embed_provider **out, const embed_config *cfg, eg_error *err)
{
    *out = NULL;
    embed_provider *p = eg_calloc(1, sizeof *p);
    if (!p)
        return eg_error_oom(err);
    p->kind = cfg->kind;
    p->dims = cfg->dimensions;
    p->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 60000;
    p->max_inputs = cfg->max_inputs > 0 ? cfg->max_inputs
                    : cfg->kind == EMBED_PROVIDER_OLLAMA ? 512
                                                         : EMBED_OPENAI_MAX_INPUTS;
    if (p->max_inputs > EMBED_OPENAI_MAX_INPUTS)
        p->max_inputs = EMBED_OPENAI_MAX_INPUTS;
    p->max_tokens = cfg->max_tokens > 0 ? cfg->max_tokens : EMBED_OPENAI_MAX_TOKENS;
    p->max_input_tokens = cfg->max_input_tokens > 0 ? cfg->max_input_tokens : EMBED_OPENAI_MAX_INPUT_TOKENS;
    p->b64 = !cfg->float_encoding;
    if ((cfg->base_url && !(p->base_url = eg_strdup(cfg->base_url))) ||
        (cfg->api_key && !(p->api_key = eg_strdup(cfg->api_key))) ||
        !(p->model = eg_strdup(cfg->model ? cfg->model : "unknown"))) {
        embed_provider_free(p);
        return eg_error_oom(err);
    }
    /* A trailing slash would double up when paths are appended. */
    if (p->base_url) {
        size_t l = strlen(p->base_url);
        while (l > 0 && p->base_url[l - 1] == '/')
            p->base_url[--l] = '\0';
    }
    int rc;
    switch (p->kind) {
    case EMBED_PROVIDER_OPENAI: rc = embed_openai_init(p, err); break;
    case EMBED_PROVIDER_OLLAMA: rc = embed_ollama_init(p, err); break;
    case EMBED_PROVIDER_LOCAL: rc = embed_local_init(p, cfg, err); break;
    default: rc = embed_offline_init(p, err); break;
    }
    if (rc < 0) {
        embed_provider_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void embed_provider_free(embed_provider *p)
{
    if (!p)
        return;
    if (p->curl)
        curl_easy_cleanup(p->curl);
    embed_local_model_close(p->local);
    eg_free(p->query_prefix);
    eg_free(p->base_url);
    eg_free(p->api_key);
    eg_free(p->model);
    eg_free(p);
}

void embed_provider_set_gate(embed_provider *p, const embed_gate *gate) { p->gate = gate; }
void embed_provider_set_cancel(embed_provider *p, const atomic_int *flag) { p->cancel = flag; }
const char *embed_provider_model(const embed_provider *p) { return p->model; }
int embed_provider_dims(const embed_provider *p) { return p->dims; }
embed_kind embed_provider_kind(const embed_provider *p) { return p->kind; }

/* ---- helpers ---------------------------------------------------------- */

long embed_estimate_tokens(const char *text)
{
    size_t n = strlen(text);
    long t = (long)((n + 2) / 3);
    return t > 0 ? t : 1;
}

void embed_l2_normalize(float *v, int dims)
{
    double s = 0;
    for (int i = 0; i < dims; i++)
        s += (double)v[i] * v[i];
    if (s <= 0)
        return;
    double inv = 1.0 / sqrt(s);
    for (int i = 0; i < dims; i++)
        v[i] = (float)(v[i] * inv);
}

float embed_cosine(const float *a, const float *b, int dims)
{
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < dims; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    if (aa <= 0 || bb <= 0)
        return 0;
    return (float)(ab / (sqrt(aa) * sqrt(bb)));
}

int embed_json_vector(const json_t *arr, float *out, int dims)
{
    if (!json_is_array(arr))
        return EG_EPROTO;
    if ((int)json_array_size(arr) != dims)
        return EG_EINVAL;
    for (int i = 0; i < dims; i++) {
        const json_t *x = json_array_get(arr, (size_t)i);
        if (!json_is_number(x))
            return EG_EPROTO;
        double d = json_number_value(x);
        if (!isfinite(d))
            return EG_EPROTO;
        /* A finite double may still not fit a float: the cast would make it
         * inf (and is undefined past FLT_MAX), so check before and after. */
        if (fabs(d) > FLT_MAX)
            return EG_ETOOBIG;
        out[i] = (float)d;
        if (!isfinite(out[i]))
            return EG_ETOOBIG;
    }
    return 0;
}

int embed_b64_vector(const char *b64, size_t len, float *out, int dims)
{
    size_t want = (size_t)dims * 4;
    if (len % 4 != 0 || len == 0)
        return EG_EPROTO;
    size_t pad = (b64[len - 1] == '=') + (len > 1 && b64[len - 2] == '=');
    size_t got = len / 4 * 3 - pad;
    if (got != want)
        return EG_EINVAL;
    unsigned char *tmp = eg_malloc(len / 4 * 3 + 1);
    if (!tmp)
        return EG_ENOMEM;
    int n = EVP_DecodeBlock(tmp, (const unsigned char *)b64, (int)len);
    if (n < 0 || (size_t)n < want) {
        eg_free(tmp);
        return EG_EPROTO;
    }
    for (int i = 0; i < dims; i++) {
        uint32_t u = (uint32_t)tmp[4 * i] | (uint32_t)tmp[4 * i + 1] << 8 | (uint32_t)tmp[4 * i + 2] << 16 |
                     (uint32_t)tmp[4 * i + 3] << 24;
        float f;
        memcpy(&f, &u, sizeof f);
        if (!isfinite(f)) {
            eg_free(tmp);
            return EG_ETOOBIG;
        }
        out[i] = f;
    }
    eg_free(tmp);
    return 0;
}

int embed_provider_embed_query(embed_provider *p, const char *text, float *out, embed_status *st, eg_error *err)
{
    embed_status batch;
    char *owned = NULL;
    if (p->query_prefix && text && *text) {
        size_t a = strlen(p->query_prefix), b = strlen(text);
        if (!(owned = eg_malloc(a + b + 1)))
            return eg_error_oom(err);
        memcpy(owned, p->query_prefix, a);
        memcpy(owned + a, text, b + 1);
        text = owned;
    }
    int rc = embed_provider_embed(p, &text, 1, out, st, &batch, NULL, NULL, err);
    eg_free(owned);
    if (rc == 0 && st->kind != EMBED_OK)
        rc = eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "the query cannot be embedded: %s", st->message);
    return rc;
}

/* ---- the batching layer ----------------------------------------------- */

typedef struct embed_call {
    embed_provider *p;
    long tokens;
    int requests;
} embed_call;

static int one_request(embed_call *c, const char *const *texts, size_t n, float *out, embed_status *st)
{
    embed_provider *p = c->p;
    long est = 0;
    for (size_t i = 0; i < n; i++)
        est += embed_estimate_tokens(texts[i]);
    const bool gated = p->gate && p->kind != EMBED_PROVIDER_OFFLINE;
    if (gated && p->gate->before) {
        int g = p->gate->before(p->gate->ctx, est);
        if (g < 0)
            return embed_status_set(st, EMBED_E_CANCELED, 0, "canceled before the request was sent");
        if (g > 0) {
            int rc = embed_status_set(st, EMBED_E_RATE_LIMIT, 0,
                                      "provider paused for %d ms more: not waiting inline", g);
            st->retry_after_ms = g;
            return rc;
        }
    }
    if (p->cancel && atomic_load(p->cancel))
        return embed_status_set(st, EMBED_E_CANCELED, 0, "canceled before the request was sent");
    long tokens = 0;
    int64_t t0 = eg_mono_us();
    embed_status_clear(st);
    int rc = p->request(p, texts, n, out, st, &tokens);
    int64_t dt = eg_mono_us() - t0;
    if (p->kind != EMBED_PROVIDER_OFFLINE)
        c->requests++;
    if (rc == 0) {
        if (tokens <= 0)
            tokens = est;
        c->tokens += tokens;
        st->kind = EMBED_OK;
    }
    if (gated && p->gate->after)
        p->gate->after(p->gate->ctx, st, dt, rc == 0 ? tokens : 0);
    return rc;
}

/* Embed texts[0..n) (within limits); bisect on input errors. */
static int embed_range(embed_call *c, const char *const *texts, size_t n, float *out,
                       embed_status *per_input, embed_status *batch)
{
    embed_status st;
    int rc = one_request(c, texts, n, out, &st);
    if (rc == 0) {
        for (size_t i = 0; i < n; i++)
            embed_status_clear(&per_input[i]);
        return 0;
    }
    if (st.kind == EMBED_E_INPUT) {
        if (n == 1) {
            per_input[0] = st;
            return 0;
        }
        size_t h = n / 2;
        int dims = c->p->dims;
        rc = embed_range(c, texts, h, out, per_input, batch);
        if (rc < 0) {
            for (size_t i = h; i < n; i++)
                per_input[i] = *batch;
            return rc;
        }
        return embed_range(c, texts + h, n - h, out + h * (size_t)dims, per_input + h, batch);
    }
    *batch = st;
    for (size_t i = 0; i < n; i++)
        per_input[i] = st;
    return rc;
}

/* Truncate at a UTF-8 boundary at or below max bytes (new memory). */
static char *truncate_utf8(const char *s, size_t max)
{
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return eg_strndup(s, max);
}

int embed_provider_embed(embed_provider *p, const char *const *texts, size_t n, float *out,
                         embed_status *per_input, embed_status *batch, long *tokens_out,
                         int *requests_out, eg_error *err)
{
    embed_call c = {.p = p};
    embed_status_clear(batch);
    if (tokens_out)
        *tokens_out = 0;
    if (requests_out)
        *requests_out = 0;
    if (n == 0)
        return 0;
    /* Inputs the API would reject outright get their error here; long ones
     * are cut to the per-input token limit (estimated). */
    const char **use = eg_calloc(n, sizeof *use);
    char **owned = eg_calloc(n, sizeof *owned);
    size_t *map = eg_calloc(n, sizeof *map);
    float *tmp = NULL;
    int rc = 0;
    if (!use || !owned || !map) {
        rc = eg_error_oom(err);
        goto out;
    }
    size_t m = 0;
    size_t max_bytes = (size_t)p->max_input_tokens * 3;
    for (size_t i = 0; i < n; i++) {
        embed_status_clear(&per_input[i]);
        const char *t = texts[i] ? texts[i] : "";
        if (!*t) {
            embed_status_set(&per_input[i], EMBED_E_INPUT, 0, "empty text cannot be embedded");
            continue;
        }
        if (strlen(t) > max_bytes) {
            if (!(owned[i] = truncate_utf8(t, max_bytes))) {
                rc = eg_error_oom(err);
                goto out;
            }
            t = owned[i];
        }
        use[m] = t;
        map[m] = i;
        m++;
    }
    size_t dims = (size_t)p->dims;
    if (m > 0 && !(tmp = eg_malloc(m * dims * sizeof *tmp))) {
        rc = eg_error_oom(err);
        goto out;
    }
    embed_status *pst = m ? eg_calloc(m, sizeof *pst) : NULL;
    if (m && !pst) {
        rc = eg_error_oom(err);
        goto out;
    }
    if (p->kind == EMBED_PROVIDER_LOCAL) {
        /* In-process: no request limits, no gate, no bisection (the model
         * cannot reject one text); it reports tokens and truncation per input. */
        if (m > 0 && (rc = embed_local_embed(p, use, m, tmp, pst, batch, &c.tokens, err)) < 0)
            for (size_t j = 0; j < m; j++)
                pst[j] = *batch;
    } else {
        size_t start = 0;
        while (start < m) {
            size_t end = start;
            long tok = 0;
            while (end < m && (int)(end - start) < p->max_inputs) {
                long t = embed_estimate_tokens(use[end]);
                if (end > start && tok + t > p->max_tokens)
                    break;
                tok += t;
                end++;
            }
            rc = embed_range(&c, use + start, end - start, tmp + start * dims, pst + start, batch);
            if (rc < 0) {
                for (size_t j = end; j < m; j++)
                    pst[j] = *batch;
                break;
            }
            start = end;
        }
    }
    for (size_t j = 0; j < m; j++) {
        per_input[map[j]] = pst[j];
        if (pst[j].kind == EMBED_OK)
            memcpy(out + map[j] * dims, tmp + j * dims, dims * sizeof *tmp);
    }
    eg_free(pst);
    if (rc < 0)
        eg_error_set(err, rc, batch->retryable ? EG_CLASS_TRANSIENT : EG_CLASS_CLIENT,
                     "embedding provider %s: %s (%s)", embed_kind_name(p->kind),
                     embed_errkind_name(batch->kind), batch->message);
out:
    if (tokens_out)
        *tokens_out = c.tokens;
    if (requests_out)
        *requests_out = c.requests;
    if (owned)
        for (size_t i = 0; i < n; i++)
            eg_free(owned[i]);
    eg_free(owned);
    eg_free(use);
    eg_free(map);
    eg_free(tmp);
    return rc;
}
