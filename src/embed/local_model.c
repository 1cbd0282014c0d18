/*
 * local_model.c - the in-process BERT sentence encoder: loading, sharing,
 * the forward pass.  See local_model.h for the contract.
 *
 * Loading copies every tensor the forward pass needs out of the mapped file
 * into aligned, owned arrays, in the layout the kernels want:
 *   - linear weights as [in, out] (safetensors stores PyTorch's [out, in]:
 *     transposed here; the ONNX MatMul initializers are [in, out] already);
 *   - Q, K and V of a layer side by side as one [hidden, 3 * hidden] matrix,
 *     so a layer starts with one GEMM instead of three.
 * The file is unmapped afterwards: the process keeps one copy of the weights.
 *
 * Forward pass for a batch: the tokens of all texts are rows of one matrix
 * (no padding); the linear layers run once over all rows, attention runs per
 * text on its own rows.  Batches are cut into groups of at most
 * LOCAL_GROUP_TOKENS tokens so scratch memory stays bounded whatever the
 * caller passes.
 *
 * Sharing: a registry (mutex) maps (dir, name) to a loaded model with a
 * reference count; every worker thread's provider opens the same one.
 */
#include "embed/local_model.h"

#include "core/alloc.h"
#include "core/log.h"
#include "embed/local_kernels_int.h"
#include "embed/local_weights_int.h"
#include "embed/wordpiece.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define HIDDEN 384
#define HEADS 12
#define FFN 1536
#define MAX_POS 512
#define LN_EPS 1e-12f
/* Rows per forward group: 8192 tokens x (3*384 + 1536 + ...) floats ~ 110 MB of scratch at most. */
#define LOCAL_GROUP_TOKENS 4096

typedef enum pooling { POOL_MEAN, POOL_CLS } pooling;

/* What differs between the two models: files, their pinned hashes, format, depth, pooling. */
typedef struct model_spec {
    const char *name;
    const char *weights_file, *weights_sha256;
    const char *vocab_file, *vocab_sha256;
    bool onnx;
    int layers;
    size_t max_tokens;
    pooling pool;
} model_spec;

static const model_spec specs[] = {
    {EMBED_LOCAL_MINILM, "model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
     "vocab.txt", "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3", false, 6, 256, POOL_MEAN},
    {EMBED_LOCAL_BGE, "bge-small-en-v1.5.onnx", "828e1496d7fabb79cfa4dcd84fa38625c0d3d21da474a00f08db0f559940cf35",
     "tokenizer.json", "d241a60d5e8f04cc1b2b3e9ef7a4921b27bf526d9f6050ab90f9267a1f9e5c66", true, 12, 512,
     POOL_CLS},
};

typedef struct layer {
    float *wqkv, *bqkv;      /* [H, 3H], [3H] */
    float *wo, *bo;          /* [H, H] */
    float *ln1_g, *ln1_b;
    float *wi, *bi;          /* [H, FFN] */
    float *wout, *bout;      /* [FFN, H] */
    float *ln2_g, *ln2_b;
} layer;

struct embed_local_model {
    const model_spec *spec;
    char *dir;
    int refs;                /* registry's count, under reg_mu */
    /* An embed_local_engine.  The model is shared by every provider that
     * loaded it, and a provider created later (serve's query provider, on
     * the first semantic search) sets it while workers read it: atomic. */
    atomic_int engine;
    embed_wordpiece *tok;
    float *word, *pos, *type0;   /* [vocab, H], [MAX_POS, H], [H] */
    float *ln_g, *ln_b;
    size_t vocab;
    layer layers[12];
    struct embed_local_model *next;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static embed_local_model *registry;

static const model_spec *spec_find(const char *name)
{
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        if (name && strcmp(specs[i].name, name) == 0)
            return &specs[i];
    return NULL;
}

const char *embed_local_model_canonical(const char *name)
{
    if (!name)
        return NULL;
    if (strcasecmp(name, "minilm") == 0 || strcasecmp(name, EMBED_LOCAL_MINILM) == 0)
        return EMBED_LOCAL_MINILM;
    if (strcasecmp(name, "bge") == 0 || strcasecmp(name, EMBED_LOCAL_BGE) == 0)
        return EMBED_LOCAL_BGE;
    return NULL;
}

const char *embed_local_model_dir(char *buf, size_t n)
{
    const char *d = getenv("ENGRAM_MODEL_DIR");
    bool explicit_dir = d && *d;
    int w;
    if (explicit_dir)
        w = snprintf(buf, n, "%s", d);
    else if ((d = getenv("XDG_DATA_HOME")) && *d)
        w = snprintf(buf, n, "%s/engram/models", d);
    else if ((d = getenv("HOME")) && *d)
        w = snprintf(buf, n, "%s/.local/share/engram/models", d);
    else
        w = -1;
#ifdef ENGRAM_SYSTEM_MODEL_DIR
    /* No models of the user's own: the copy `make install` or the package
     * put under the data directory, if there is one. */
    struct stat st;
    bool own = w > 0 && (size_t)w < n && stat(buf, &st) == 0 && S_ISDIR(st.st_mode);
    if (!explicit_dir && !own && stat(ENGRAM_SYSTEM_MODEL_DIR, &st) == 0 && S_ISDIR(st.st_mode))
        w = snprintf(buf, n, "%s", ENGRAM_SYSTEM_MODEL_DIR);
#endif
    return w > 0 && (size_t)w < n ? buf : NULL;
}

static bool file_exists(const char *dir, const char *name, const char *file)
{
    char path[PATH_MAX];
    struct stat st;
    int w = snprintf(path, sizeof path, "%s/%s/%s", dir, name, file);
    return w > 0 && (size_t)w < sizeof path && stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

bool embed_local_model_installed(const char *dir, const char *name)
{
    char buf[PATH_MAX];
    const model_spec *s = spec_find(name);
    if (!dir)
        dir = embed_local_model_dir(buf, sizeof buf);
    return s && dir && file_exists(dir, s->name, s->weights_file) && file_exists(dir, s->name, s->vocab_file);
}

/* ---- loading ---------------------------------------------------------------- */

static const embed_tensor *tensor_named(const embed_tensor *t, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0)
            return &t[i];
    return NULL;
}

/* Check t is F32 with the given 1- or 2-D shape (d1 == 0: 1-D). */
static int check_shape(const embed_tensor *t, const char *what, int64_t d0, int64_t d1, eg_error *err)
{
    bool ok = t && t->dtype == EMBED_DT_F32 && t->data &&
              (d1 ? (t->ndims == 2 && t->dims[0] == d0 && t->dims[1] == d1)
                  : (t->ndims == 1 && t->dims[0] == d0));
    if (!ok)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "model weights: tensor %s is missing or has an unexpected shape", what);
    return 0;
}

/* Copy n floats from possibly unaligned little-endian bytes. */
static float *copy_floats(const unsigned char *src, size_t n)
{
    float *d = eg_malloc(n * sizeof *d);
    if (d)
        memcpy(d, src, n * sizeof *d);
    return d;
}

/* Copy a [rows, cols] matrix transposed into dst (row stride dst_stride, at column offset). */
static void copy_transposed(float *dst, size_t dst_stride, const unsigned char *src, size_t rows, size_t cols)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            float v;
            memcpy(&v, src + (r * cols + c) * sizeof v, sizeof v);
            dst[c * dst_stride + r] = v;
        }
}

/* Copy a [rows, cols] matrix as is into dst (row stride dst_stride). */
static void copy_rows(float *dst, size_t dst_stride, const unsigned char *src, size_t rows, size_t cols)
{
    for (size_t r = 0; r < rows; r++)
        memcpy(dst + r * dst_stride, src + r * cols * sizeof(float), cols * sizeof(float));
}

/* The tensors one layer needs, found by name (safetensors) or by position (ONNX). */
typedef struct layer_src {
    const embed_tensor *w[6], *b[6];  /* q k v o i out */
    const embed_tensor *ln1_g, *ln1_b, *ln2_g, *ln2_b;
} layer_src;

static const char *const lin_names[6] = {"attention.self.query", "attention.self.key", "attention.self.value",
                                         "attention.output.dense", "intermediate.dense", "output.dense"};

static int layer_sources(const model_spec *s, const embed_tensor *t, size_t n, int li,
                         const embed_tensor *const *matmuls, layer_src *ls)
{
    char nm[EMBED_TENSOR_NAME_MAX];
    for (int j = 0; j < 6; j++) {
        snprintf(nm, sizeof nm, "encoder.layer.%d.%s.bias", li, lin_names[j]);
        ls->b[j] = tensor_named(t, n, nm);
        if (s->onnx) {
            ls->w[j] = matmuls[li * 6 + j];
        } else {
            snprintf(nm, sizeof nm, "encoder.layer.%d.%s.weight", li, lin_names[j]);
            ls->w[j] = tensor_named(t, n, nm);
        }
    }
    snprintf(nm, sizeof nm, "encoder.layer.%d.attention.output.LayerNorm.weight", li);
    ls->ln1_g = tensor_named(t, n, nm);
    snprintf(nm, sizeof nm, "encoder.layer.%d.attention.output.LayerNorm.bias", li);
    ls->ln1_b = tensor_named(t, n, nm);
    snprintf(nm, sizeof nm, "encoder.layer.%d.output.LayerNorm.weight", li);
    ls->ln2_g = tensor_named(t, n, nm);
    snprintf(nm, sizeof nm, "encoder.layer.%d.output.LayerNorm.bias", li);
    ls->ln2_b = tensor_named(t, n, nm);
    return 0;
}

static int load_layer(embed_local_model *m, int li, const layer_src *ls, eg_error *err)
{
    static const size_t in[6] = {HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, FFN};
    static const size_t out[6] = {HIDDEN, HIDDEN, HIDDEN, HIDDEN, FFN, HIDDEN};
    const bool onnx = m->spec->onnx;
    int rc;
    for (int j = 0; j < 6; j++) {
        /* safetensors: PyTorch Linear [out, in]; ONNX MatMul: [in, out]. */
        int64_t d0 = (int64_t)(onnx ? in[j] : out[j]), d1 = (int64_t)(onnx ? out[j] : in[j]);
        if ((rc = check_shape(ls->w[j], "linear weight", d0, d1, err)) ||
            (rc = check_shape(ls->b[j], "linear bias", (int64_t)out[j], 0, err))) {
            eg_error_prefix(err, "layer %d", li);
            return rc;
        }
    }
    if ((rc = check_shape(ls->ln1_g, "LayerNorm", HIDDEN, 0, err)) ||
        (rc = check_shape(ls->ln1_b, "LayerNorm", HIDDEN, 0, err)) ||
        (rc = check_shape(ls->ln2_g, "LayerNorm", HIDDEN, 0, err)) ||
        (rc = check_shape(ls->ln2_b, "LayerNorm", HIDDEN, 0, err)))
        return rc;
    layer *L = &m->layers[li];
    L->wqkv = eg_malloc((size_t)HIDDEN * 3 * HIDDEN * sizeof(float));
    L->bqkv = eg_malloc(3 * HIDDEN * sizeof(float));
    L->wo = eg_malloc((size_t)HIDDEN * HIDDEN * sizeof(float));
    L->wi = eg_malloc((size_t)HIDDEN * FFN * sizeof(float));
    L->wout = eg_malloc((size_t)FFN * HIDDEN * sizeof(float));
    L->bo = copy_floats(ls->b[3]->data, HIDDEN);
    L->bi = copy_floats(ls->b[4]->data, FFN);
    L->bout = copy_floats(ls->b[5]->data, HIDDEN);
    L->ln1_g = copy_floats(ls->ln1_g->data, HIDDEN);
    L->ln1_b = copy_floats(ls->ln1_b->data, HIDDEN);
    L->ln2_g = copy_floats(ls->ln2_g->data, HIDDEN);
    L->ln2_b = copy_floats(ls->ln2_b->data, HIDDEN);
    if (!L->wqkv || !L->bqkv || !L->wo || !L->wi || !L->wout || !L->bo || !L->bi || !L->bout || !L->ln1_g ||
        !L->ln1_b || !L->ln2_g || !L->ln2_b)
        return eg_error_oom(err);
    float *dst[6] = {L->wqkv, L->wqkv + HIDDEN, L->wqkv + 2 * HIDDEN, L->wo, L->wi, L->wout};
    size_t stride[6] = {3 * HIDDEN, 3 * HIDDEN, 3 * HIDDEN, HIDDEN, FFN, HIDDEN};
    for (int j = 0; j < 6; j++) {
        if (onnx)
            copy_rows(dst[j], stride[j], ls->w[j]->data, in[j], out[j]);
        else
            copy_transposed(dst[j], stride[j], ls->w[j]->data, out[j], in[j]);
    }
    for (int j = 0; j < 3; j++)
        memcpy(L->bqkv + j * HIDDEN, ls->b[j]->data, HIDDEN * sizeof(float));
    for (int j = 0; j < 6; j++)
        embed__tensor_release(ls->w[j]);
    return 0;
}

static void model_free(embed_local_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < 12; i++) {
        layer *L = &m->layers[i];
        float *ps[] = {L->wqkv, L->bqkv, L->wo, L->bo, L->ln1_g, L->ln1_b, L->wi, L->bi, L->wout, L->bout,
                       L->ln2_g, L->ln2_b};
        for (size_t j = 0; j < sizeof ps / sizeof ps[0]; j++)
            eg_free(ps[j]);
    }
    eg_free(m->word);
    eg_free(m->pos);
    eg_free(m->type0);
    eg_free(m->ln_g);
    eg_free(m->ln_b);
    embed_wordpiece_free(m->tok);
    eg_free(m->dir);
    eg_free(m);
}

static int load_weights(embed_local_model *m, const embed_tensor *t, size_t n, eg_error *err)
{
    const model_spec *s = m->spec;
    const embed_tensor *word = tensor_named(t, n, "embeddings.word_embeddings.weight");
    const embed_tensor *pos = tensor_named(t, n, "embeddings.position_embeddings.weight");
    const embed_tensor *type = tensor_named(t, n, "embeddings.token_type_embeddings.weight");
    const embed_tensor *lng = tensor_named(t, n, "embeddings.LayerNorm.weight");
    const embed_tensor *lnb = tensor_named(t, n, "embeddings.LayerNorm.bias");
    int rc;
    if (!word || word->ndims != 2 || word->dims[0] < 1000 || word->dims[0] > 1000000)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "model weights: no word embeddings");
    m->vocab = (size_t)word->dims[0];
    if ((rc = check_shape(word, "word embeddings", (int64_t)m->vocab, HIDDEN, err)) ||
        (rc = check_shape(pos, "position embeddings", MAX_POS, HIDDEN, err)) ||
        (rc = check_shape(type, "token type embeddings", 2, HIDDEN, err)) ||
        (rc = check_shape(lng, "embeddings LayerNorm", HIDDEN, 0, err)) ||
        (rc = check_shape(lnb, "embeddings LayerNorm", HIDDEN, 0, err)))
        return rc;
    m->word = copy_floats(word->data, m->vocab * HIDDEN);
    m->pos = copy_floats(pos->data, (size_t)MAX_POS * HIDDEN);
    m->type0 = copy_floats(type->data, HIDDEN);
    m->ln_g = copy_floats(lng->data, HIDDEN);
    m->ln_b = copy_floats(lnb->data, HIDDEN);
    if (!m->word || !m->pos || !m->type0 || !m->ln_g || !m->ln_b)
        return eg_error_oom(err);
    embed__tensor_release(word);
    embed__tensor_release(pos);
    /* ONNX: the layers' matrices are the unnamed-by-module MatMul initializers, in graph order. */
    const embed_tensor *matmuls[12 * 6] = {0};
    if (s->onnx) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (strncmp(t[i].name, "onnx::MatMul_", 13) != 0)
                continue;
            if (k == (size_t)s->layers * 6)
                return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "model weights: too many MatMul tensors");
            matmuls[k++] = &t[i];
        }
        if (k != (size_t)s->layers * 6)
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "model weights: %zu MatMul tensors, expected %d",
                                k, s->layers * 6);
    }
    for (int li = 0; li < s->layers; li++) {
        layer_src ls;
        layer_sources(s, t, n, li, matmuls, &ls);
        if ((rc = load_layer(m, li, &ls, err)) != 0)
            return rc;
    }
    return 0;
}

static int model_load(embed_local_model **out, const char *dir, const model_spec *s, eg_error *err)
{
    char path[PATH_MAX];
    embed_local_model *m = eg_calloc(1, sizeof *m);
    if (!m || !(m->dir = eg_strdup(dir))) {
        eg_free(m);
        return eg_error_oom(err);
    }
    m->spec = s;
    embed_file f = {0};
    embed_tensor *t = NULL;
    size_t n = 0;
    int rc;
    /* The vocabulary first: hash-checked like the weights, then parsed by the tokenizer. */
    snprintf(path, sizeof path, "%s/%s/%s", dir, s->name, s->vocab_file);
    if ((rc = embed__file_map(&f, path, s->vocab_sha256, err)) != 0)
        goto fail;
    embed__file_unmap(&f);
    if ((rc = embed_wordpiece_load(&m->tok, path, err)) != 0)
        goto fail;
    snprintf(path, sizeof path, "%s/%s/%s", dir, s->name, s->weights_file);
    if ((rc = embed__file_map(&f, path, s->weights_sha256, err)) != 0)
        goto fail;
    rc = s->onnx ? embed__onnx_parse(f.data, f.size, &t, &n, err)
                 : embed__safetensors_parse(f.data, f.size, &t, &n, err);
    if (rc == 0)
        rc = load_weights(m, t, n, err);
    eg_free(t);
    embed__file_unmap(&f);
    if (rc)
        goto fail;
    if (embed_wordpiece_vocab_size(m->tok) != m->vocab) {
        rc = eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "model %s: vocabulary has %zu entries, weights %zu",
                          s->name, embed_wordpiece_vocab_size(m->tok), m->vocab);
        goto fail;
    }
    *out = m;
    return 0;
fail:
    eg_error_prefix(err, "local model %s", s->name);
    model_free(m);
    return rc;
}

int embed_local_model_open(embed_local_model **out, const char *dir, const char *name, eg_error *err)
{
    *out = NULL;
    const model_spec *s = spec_find(name);
    if (!s)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "unknown local model '%s' (have %s, %s)",
                            name ? name : "", EMBED_LOCAL_MINILM, EMBED_LOCAL_BGE);
    char buf[PATH_MAX];
    if (!dir && !(dir = embed_local_model_dir(buf, sizeof buf)))
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "no models directory: set ENGRAM_MODEL_DIR or HOME");
    pthread_mutex_lock(&reg_mu);
    for (embed_local_model *m = registry; m; m = m->next) {
        if (m->spec == s && strcmp(m->dir, dir) == 0) {
            m->refs++;
            pthread_mutex_unlock(&reg_mu);
            *out = m;
            return 0;
        }
    }
    /* Loading under the lock: the second worker waits for the first's load
     * instead of loading a second copy. */
    embed_local_model *m = NULL;
    int rc = model_load(&m, dir, s, err);
    if (rc == 0) {
        m->refs = 1;
        m->next = registry;
        registry = m;
        *out = m;
    }
    pthread_mutex_unlock(&reg_mu);
    return rc;
}

void embed_local_model_close(embed_local_model *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&reg_mu);
    if (--m->refs > 0) {
        pthread_mutex_unlock(&reg_mu);
        return;
    }
    for (embed_local_model **pp = &registry; *pp; pp = &(*pp)->next) {
        if (*pp == m) {
            *pp = m->next;
            break;
        }
    }
    pthread_mutex_unlock(&reg_mu);
    model_free(m);
}

const char *embed_local_model_name(const embed_local_model *m) { return m->spec->name; }
int embed_local_model_dims(const embed_local_model *m) { (void)m; return HIDDEN; }
size_t embed_local_model_max_tokens(const embed_local_model *m) { return m->spec->max_tokens; }
const struct embed_wordpiece *embed_local_model_tokenizer(const embed_local_model *m) { return m->tok; }

/* The measured default (docs/internals/encoder.md): OpenBLAS when built in. */
static bool use_blas(const embed_local_model *m)
{
    int e = atomic_load_explicit(&m->engine, memory_order_relaxed);
    return e == EMBED_LOCAL_ENGINE_BLAS || (e == EMBED_LOCAL_ENGINE_AUTO && embed_k__have_blas());
}

int embed_local_model_set_engine(embed_local_model *m, embed_local_engine e, eg_error *err)
{
    if (e == EMBED_LOCAL_ENGINE_BLAS && !embed_k__have_blas())
        return eg_error_set(err, EG_EUNSUPPORTED, EG_CLASS_CLIENT, "this engram was built without OpenBLAS");
    atomic_store_explicit(&m->engine, (int)e, memory_order_relaxed);
    return 0;
}

const char *embed_local_engine_name(const embed_local_model *m) { return use_blas(m) ? "openblas" : "plain"; }

/* ---- forward pass ----------------------------------------------------------- */

static void gemm(const embed_local_model *m, float *c, const float *a, const float *b, const float *bias,
                 size_t rows, size_t n, size_t k)
{
    if (!use_blas(m) || embed_k__gemm_blas(c, a, b, bias, rows, n, k) != 0)
        embed_k__gemm(c, a, b, bias, rows, n, k);
}

/* Embed `count` tokenized texts (all of them within one group). */
static int forward(const embed_local_model *m, const int32_t *const *ids, const size_t *lens, size_t count,
                   float *out, eg_error *err)
{
    size_t rows = 0, maxlen = 0;
    for (size_t i = 0; i < count; i++) {
        rows += lens[i];
        maxlen = lens[i] > maxlen ? lens[i] : maxlen;
    }
    /* x [rows,H], qkv [rows,3H], ctx [rows,H], ffn [rows,FFN], attention scratch. */
    size_t att = maxlen * maxlen + (HIDDEN / HEADS) * maxlen;
    size_t total = rows * (HIDDEN + 3 * HIDDEN + HIDDEN + FFN) + att;
    float *mem = eg_malloc(total * sizeof *mem);
    if (!mem)
        return eg_error_oom(err);
    float *x = mem, *qkv = x + rows * HIDDEN, *ctx = qkv + rows * 3 * HIDDEN, *ffn = ctx + rows * HIDDEN;
    float *scratch = ffn + rows * FFN;
    size_t r = 0;
    for (size_t i = 0; i < count; i++)
        for (size_t p = 0; p < lens[i]; p++, r++) {
            int32_t id = ids[i][p];
            if (id < 0 || (size_t)id >= m->vocab)
                id = 100; /* [UNK]; ids come from our tokenizer, this only guards embed_ids callers */
            const float *w = m->word + (size_t)id * HIDDEN, *ps = m->pos + p * HIDDEN;
            for (size_t j = 0; j < HIDDEN; j++)
                x[r * HIDDEN + j] = w[j] + ps[j] + m->type0[j];
        }
    embed_k__add_layernorm(x, NULL, m->ln_g, m->ln_b, rows, HIDDEN, LN_EPS);
    for (int li = 0; li < m->spec->layers; li++) {
        const layer *L = &m->layers[li];
        gemm(m, qkv, x, L->wqkv, L->bqkv, rows, 3 * HIDDEN, HIDDEN);
        size_t off = 0;
        for (size_t i = 0; i < count; i++) {
            float *cx = ctx + off * HIDDEN;
            const float *in = qkv + off * 3 * HIDDEN;
            /* Long texts: attention is quadratic in length, worth the BLAS call. */
            if (!use_blas(m) || embed_k__attention_blas(cx, in, lens[i], HIDDEN, HEADS, scratch) != 0)
                embed_k__attention(cx, in, lens[i], HIDDEN, HEADS, scratch);
            off += lens[i];
        }
        gemm(m, ffn, ctx, L->wo, L->bo, rows, HIDDEN, HIDDEN); /* ffn as scratch for the projection */
        embed_k__add_layernorm(x, ffn, L->ln1_g, L->ln1_b, rows, HIDDEN, LN_EPS);
        gemm(m, ffn, x, L->wi, L->bi, rows, FFN, HIDDEN);
        embed_k__gelu(ffn, rows * FFN);
        gemm(m, ctx, ffn, L->wout, L->bout, rows, HIDDEN, FFN);
        embed_k__add_layernorm(x, ctx, L->ln2_g, L->ln2_b, rows, HIDDEN, LN_EPS);
    }
    size_t off = 0;
    for (size_t i = 0; i < count; i++) {
        float *v = out + i * HIDDEN;
        if (m->spec->pool == POOL_CLS) {
            memcpy(v, x + off * HIDDEN, HIDDEN * sizeof *v);
        } else {
            double acc[HIDDEN] = {0};
            for (size_t p = 0; p < lens[i]; p++)
                for (size_t j = 0; j < HIDDEN; j++)
                    acc[j] += x[(off + p) * HIDDEN + j];
            for (size_t j = 0; j < HIDDEN; j++)
                v[j] = (float)(acc[j] / (double)lens[i]);
        }
        double s = 0;
        for (size_t j = 0; j < HIDDEN; j++)
            s += (double)v[j] * v[j];
        if (s > 0) {
            float inv = (float)(1.0 / sqrt(s));
            for (size_t j = 0; j < HIDDEN; j++)
                v[j] *= inv;
        }
        off += lens[i];
    }
    eg_free(mem);
    return 0;
}

int embed_local_model_embed_ids(embed_local_model *m, const int32_t *const *ids, const size_t *lens, size_t n,
                                float *out, eg_error *err)
{
    size_t start = 0;
    while (start < n) {
        size_t end = start, tokens = 0;
        while (end < n && (end == start || tokens + lens[end] <= LOCAL_GROUP_TOKENS)) {
            if (lens[end] < 2 || lens[end] > m->spec->max_tokens)
                return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "input %zu has %zu tokens (2..%zu allowed)",
                                    end, lens[end], m->spec->max_tokens);
            tokens += lens[end++];
        }
        int rc = forward(m, ids + start, lens + start, end - start, out + start * HIDDEN, err);
        if (rc)
            return rc;
        start = end;
    }
    return 0;
}

int embed_local_model_embed(embed_local_model *m, const char *const *texts, size_t n, float *out, int *ntokens,
                            bool *truncated, eg_error *err)
{
    if (n == 0)
        return 0;
    const size_t maxt = m->spec->max_tokens;
    int32_t *idbuf = eg_malloc(n * maxt * sizeof *idbuf);
    const int32_t **ids = eg_malloc(n * sizeof *ids);
    size_t *lens = eg_malloc(n * sizeof *lens);
    int rc = 0;
    if (!idbuf || !ids || !lens) {
        rc = eg_error_oom(err);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        bool cut = false;
        const char *t = texts[i] ? texts[i] : "";
        if ((rc = embed_wordpiece_encode(m->tok, t, strlen(t), idbuf + i * maxt, maxt, &lens[i], &cut, err)) != 0)
            goto out;
        ids[i] = idbuf + i * maxt;
        if (ntokens)
            ntokens[i] = (int)lens[i];
        if (truncated)
            truncated[i] = cut;
    }
    rc = embed_local_model_embed_ids(m, ids, lens, n, out, err);
out:
    eg_free(idbuf);
    eg_free(ids);
    eg_free(lens);
    return rc;
}
