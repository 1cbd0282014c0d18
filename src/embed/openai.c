/*
 * openai.c - POST {base}/embeddings, the OpenAI wire format.
 *
 * Any OpenAI-compatible server works (OPENAI_BASE_URL, e.g. Ollama's /v1,
 * vLLM, LM Studio, Azure-style proxies).  `dimensions` is sent only for
 * text-embedding-3 models (others reject it) and only when it differs from
 * the model's default or was asked for explicitly.  Results are mapped by
 * their `index`, never by position, and every index must appear once.
 */
#include "embed/provider_impl.h"

#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int openai_request_once(embed_provider *p, const char *const *texts, size_t n, float *out,
                               embed_status *st, long *tokens_out)
{
    json_t *req = embed_request_new(p, texts, n);
    if (!req)
        return embed_status_set(st, EMBED_E_TRANSIENT, 0, EG_OOM_TEXT);
    json_object_set_new(req, "encoding_format", json_string(p->b64 ? "base64" : "float"));
    if (p->send_dimensions)
        json_object_set_new(req, "dimensions", json_integer(p->dims));
    json_t *doc = NULL;
    int rc = embed_post_json(p, "/embeddings", req, &doc, st);
    if (rc < 0)
        return rc;
    json_t *data = json_object_get(doc, "data");
    unsigned char *seen = eg_calloc(n ? n : 1, 1);
    if (!seen) {
        rc = embed_status_set(st, EMBED_E_TRANSIENT, 0, EG_OOM_TEXT);
        goto done;
    }
    if (!json_is_array(data) || json_array_size(data) != n) {
        rc = embed_status_set(st, EMBED_E_TRANSIENT, 200,
                              "provider returned %zu embeddings for %zu inputs",
                              json_is_array(data) ? json_array_size(data) : 0, n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(data, i);
        json_t *jidx = json_object_get(item, "index");
        json_int_t idx = json_is_integer(jidx) ? json_integer_value(jidx) : (json_int_t)i;
        if (idx < 0 || (size_t)idx >= n || seen[idx]) {
            rc = embed_status_set(st, EMBED_E_TRANSIENT, 200, "bad or repeated index %lld",
                                  (long long)idx);
            goto done;
        }
        seen[idx] = 1;
        json_t *emb = json_object_get(item, "embedding");
        float *row = out + (size_t)idx * (size_t)p->dims;
        /* base64 when we asked for it; servers that ignore the parameter send floats */
        int v = json_is_string(emb) ? embed_b64_vector(json_string_value(emb), json_string_length(emb), row, p->dims)
                                    : embed_json_vector(emb, row, p->dims);
        if (v == EG_EINVAL) {
            size_t got = json_is_string(emb) ? json_string_length(emb) * 3 / 4 / 4 : json_array_size(emb);
            rc = embed_status_set(st, EMBED_E_CONFIG, 200,
                                  "provider returned %zu dimensions, configured %d (set "
                                  "ENGRAM_EMBED_DIMENSIONS to match the model and the vector index)",
                                  got, p->dims);
            goto done;
        }
        if (v == EG_ETOOBIG) {
            /* one input's vector is unusable: an input error, which the
             * batching layer narrows down to that input */
            rc = embed_status_set(st, EMBED_E_INPUT, 200, "embedding %lld holds a value outside the float range",
                                  (long long)idx);
            goto done;
        }
        if (v < 0) {
            rc = embed_status_set(st, EMBED_E_TRANSIENT, 200, "embedding %lld is not a number array",
                                  (long long)idx);
            goto done;
        }
    }
    json_t *usage = json_object_get(doc, "usage");
    json_t *pt = json_object_get(usage, "prompt_tokens");
    if (json_is_integer(pt) && tokens_out)
        *tokens_out = (long)json_integer_value(pt);
done:
    eg_free(seen);
    json_decref(doc);
    return rc;
}

static int openai_request(embed_provider *p, const char *const *texts, size_t n, float *out, embed_status *st,
                          long *tokens_out)
{
    int rc = openai_request_once(p, texts, n, out, st, tokens_out);
    /* A compatible server that rejects base64: switch to floats for good. */
    if (rc < 0 && p->b64 && st->kind == EMBED_E_INPUT && strstr(st->message, "encoding")) {
        p->b64 = false;
        embed_status_clear(st);
        rc = openai_request_once(p, texts, n, out, st, tokens_out);
    }
    return rc;
}

int embed_openai_init(embed_provider *p, eg_error *err)
{
    if (!p->base_url)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "openai provider needs a base URL");
    bool v3 = strncmp(p->model, "text-embedding-3", 16) == 0;
    int native = strcmp(p->model, "text-embedding-3-large") == 0 ? 3072 : 1536;
    if (p->dims == 0) {
        p->dims = native;
    } else if (p->dims != native) {
        if (!v3 && strcmp(p->model, "text-embedding-ada-002") == 0)
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                                "model %s has %d dimensions and cannot shorten them; configured %d",
                                p->model, native, p->dims);
        p->send_dimensions = v3; /* other compatible servers: trust the configured value */
    }
    if (v3 && p->dims > native)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "model %s has at most %d dimensions", p->model,
                            native);
    p->request = openai_request;
    return 0;
}
