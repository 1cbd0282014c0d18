/*
 * ollama.c - Ollama's native POST {base}/api/embed.
 *
 * Body {model, input:[...], truncate:true[, dimensions]}; the answer's
 * `embeddings` is always a 2-D array in input order.  Ollama does not report
 * dimensions up front, so the configured value (ENGRAM_EMBED_DIMENSIONS /
 * NEO4J_VECTOR_DIMENSIONS, default 768 for nomic-embed-text) is checked
 * against every answer.
 */
#include "embed/provider_impl.h"

#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ollama_request(embed_provider *p, const char *const *texts, size_t n, float *out,
                          embed_status *st, long *tokens_out)
{
    json_t *req = embed_request_new(p, texts, n);
    if (!req)
        return embed_status_set(st, EMBED_E_TRANSIENT, 0, EG_OOM_TEXT);
    json_object_set_new(req, "truncate", json_true());
    if (p->send_dimensions)
        json_object_set_new(req, "dimensions", json_integer(p->dims));
    json_t *doc = NULL;
    int rc = embed_post_json(p, "/api/embed", req, &doc, st);
    if (rc < 0)
        return rc;
    json_t *embs = json_object_get(doc, "embeddings");
    rc = 0;
    if (!json_is_array(embs) || json_array_size(embs) != n) {
        rc = embed_status_set(st, EMBED_E_TRANSIENT, 200,
                              "provider returned %zu embeddings for %zu inputs",
                              json_is_array(embs) ? json_array_size(embs) : 0, n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *emb = json_array_get(embs, i);
        int v = embed_json_vector(emb, out + i * (size_t)p->dims, p->dims);
        if (v == EG_EINVAL) {
            rc = embed_status_set(st, EMBED_E_CONFIG, 200,
                                  "provider returned %zu dimensions, configured %d (set "
                                  "ENGRAM_EMBED_DIMENSIONS to match the model and the vector index)",
                                  json_array_size(emb), p->dims);
            goto done;
        }
        if (v == EG_ETOOBIG) {
            rc = embed_status_set(st, EMBED_E_INPUT, 200, "embedding %zu holds a value outside the float range",
                                  i);
            goto done;
        }
        if (v < 0) {
            rc = embed_status_set(st, EMBED_E_TRANSIENT, 200, "embedding %zu is not a number array",
                                  i);
            goto done;
        }
        /* Ollama models are not all normalised; cosine does not care, dot
         * products and our offline vectors expect unit length. */
        embed_l2_normalize(out + i * (size_t)p->dims, p->dims);
    }
    json_t *pec = json_object_get(doc, "prompt_eval_count");
    if (json_is_integer(pec) && tokens_out)
        *tokens_out = (long)json_integer_value(pec);
done:
    json_decref(doc);
    return rc;
}

int embed_ollama_init(embed_provider *p, eg_error *err)
{
    if (!p->base_url)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "ollama provider needs a base URL");
    if (p->dims == 0)
        p->dims = 768;
    else
        p->send_dimensions = getenv("ENGRAM_OLLAMA_SEND_DIMENSIONS") != NULL;
    p->request = ollama_request;
    return 0;
}
