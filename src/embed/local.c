/*
 * local.c - the `local` provider: the in-process sentence encoder behind
 * the provider interface.
 *
 * Every provider of a process opens the same loaded model (local_model.c
 * shares it), so N workers cost one copy of the weights.  Nothing here
 * touches the network, so the throttle's gate is not consulted and no
 * request is counted; the cost is CPU on the calling worker thread.
 */
#include "embed/provider_impl.h"

#include "core/alloc.h"
#include "core/log.h"
#include "embed/local_model.h"

#include <stdlib.h>
#include <string.h>

int embed_local_config(embed_config *cfg, eg_error *err)
{
    const char *m = getenv("ENGRAM_LOCAL_MODEL");
    cfg->model = embed_local_model_canonical(m && *m ? m : EMBED_LOCAL_DEFAULT_MODEL);
    if (!cfg->model)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "ENGRAM_LOCAL_MODEL must be %s (minilm) or %s (bge)", EMBED_LOCAL_MINILM,
                            EMBED_LOCAL_BGE);
    const char *e = getenv("ENGRAM_LOCAL_ENGINE");
    if (!e || !*e || strcmp(e, "auto") == 0)
        cfg->local_engine = EMBED_LOCAL_ENGINE_AUTO;
    else if (strcmp(e, "plain") == 0)
        cfg->local_engine = EMBED_LOCAL_ENGINE_PLAIN;
    else if (strcmp(e, "blas") == 0)
        cfg->local_engine = EMBED_LOCAL_ENGINE_BLAS;
    else
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "ENGRAM_LOCAL_ENGINE must be auto, plain or blas");
    const char *d = getenv("ENGRAM_MODEL_DIR");
    cfg->model_dir = d && *d ? d : NULL;
    /* bge was trained with an instruction before short retrieval queries;
     * MiniLM with none.  An explicit (possibly empty) setting wins. */
    const char *q = getenv("ENGRAM_LOCAL_QUERY_PREFIX");
    if (q)
        cfg->query_prefix = *q ? q : NULL;
    else
        cfg->query_prefix = strcmp(cfg->model, EMBED_LOCAL_BGE) == 0 ? EMBED_LOCAL_BGE_QUERY_PREFIX : NULL;
    return 0;
}

int embed_local_init(embed_provider *p, const embed_config *cfg, eg_error *err)
{
    int rc = embed_local_model_open(&p->local, cfg->model_dir, p->model, err);
    if (rc == 0)
        rc = embed_local_model_set_engine(p->local, (embed_local_engine)cfg->local_engine, err);
    if (rc == 0 && cfg->query_prefix && !(p->query_prefix = eg_strdup(cfg->query_prefix)))
        rc = eg_error_oom(err);
    if (rc)
        return rc;
    p->dims = embed_local_model_dims(p->local);
    return 0;
}

int embed_local_embed(embed_provider *p, const char *const *texts, size_t n, float *out, embed_status *per_input,
                      embed_status *batch, long *tokens_out, eg_error *err)
{
    int *ntok = eg_malloc(n * sizeof *ntok);
    bool *cut = eg_malloc(n * sizeof *cut);
    int rc;
    if (!ntok || !cut) {
        rc = eg_error_oom(err);
    } else if (p->cancel && atomic_load(p->cancel)) {
        rc = EG_ECANCELED;
    } else {
        rc = embed_local_model_embed(p->local, texts, n, out, ntok, cut, err);
    }
    if (rc == 0) {
        long total = 0;
        for (size_t i = 0; i < n; i++) {
            embed_status_clear(&per_input[i]);
            per_input[i].tokens = ntok[i];
            per_input[i].truncated = cut[i];
            total += ntok[i];
        }
        *tokens_out += total;
    } else if (rc == EG_ECANCELED) {
        embed_status_set(batch, EMBED_E_CANCELED, 0, "canceled before the local model ran");
    } else {
        /* Only memory can fail here: worth retrying later, not the texts' fault. */
        embed_status_set(batch, EMBED_E_TRANSIENT, 0, "local model %s: %s", p->model,
                         err ? err->message : "failed");
    }
    eg_free(ntok);
    eg_free(cut);
    return rc;
}
