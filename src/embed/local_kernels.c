/*
 * local_kernels.c - the encoder's numeric kernels.  See local_kernels_int.h
 * for the layout and why this file has its own compiler flags.
 *
 * GEMM blocking: columns in panels of GEMM_NC (a panel of B, K x NC floats,
 * ~384 kB, stays in L2 while every row block of A streams past it), rows in
 * blocks of 4 (four accumulator rows of NC floats stay in L1).  The inner
 * loop is c[r][j] += a[r][k] * b[k][j] over j: contiguous, vectorised.
 */
#include "embed/local_kernels_int.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef ENGRAM_HAVE_OPENBLAS
#include <cblas.h>
#include <pthread.h>

/* One thread per call: engram's parallelism is its workers, each with its
 * own batch; OpenBLAS's own pool would oversubscribe the cores under them. */
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void blas_single_thread(void) { openblas_set_num_threads(1); }
#endif

/* Clones for AVX2+FMA machines and a baseline: one binary, any x86-64.
 * Not under a sanitizer: the clone resolver is an ifunc that the dynamic
 * loader runs before the sanitizer's runtime is set up, and an instrumented
 * resolver crashes there (ThreadSanitizer segfaults at load time). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__)
#define KERNEL_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define KERNEL_CLONES
#endif

#define GEMM_NC 256

KERNEL_CLONES
static void gemm_panel(float *c, const float *a, const float *b, size_t m, size_t n, size_t k, size_t j0,
                       size_t nc)
{
    size_t r = 0;
    for (; r + 4 <= m; r += 4) {
        float *c0 = c + r * n + j0, *c1 = c0 + n, *c2 = c1 + n, *c3 = c2 + n;
        const float *a0 = a + r * k, *a1 = a0 + k, *a2 = a1 + k, *a3 = a2 + k;
        for (size_t p = 0; p < k; p++) {
            const float *bp = b + p * n + j0;
            const float x0 = a0[p], x1 = a1[p], x2 = a2[p], x3 = a3[p];
            for (size_t j = 0; j < nc; j++) {
                const float y = bp[j];
                c0[j] += x0 * y;
                c1[j] += x1 * y;
                c2[j] += x2 * y;
                c3[j] += x3 * y;
            }
        }
    }
    for (; r < m; r++) {
        float *c0 = c + r * n + j0;
        const float *a0 = a + r * k;
        for (size_t p = 0; p < k; p++) {
            const float *bp = b + p * n + j0;
            const float x0 = a0[p];
            for (size_t j = 0; j < nc; j++)
                c0[j] += x0 * bp[j];
        }
    }
}

static void init_bias(float *c, const float *bias, size_t m, size_t n)
{
    for (size_t r = 0; r < m; r++) {
        if (bias)
            memcpy(c + r * n, bias, n * sizeof *c);
        else
            memset(c + r * n, 0, n * sizeof *c);
    }
}

void embed_k__gemm(float *c, const float *a, const float *b, const float *bias, size_t m, size_t n, size_t k)
{
    init_bias(c, bias, m, n);
    for (size_t j0 = 0; j0 < n; j0 += GEMM_NC)
        gemm_panel(c, a, b, m, n, k, j0, n - j0 < GEMM_NC ? n - j0 : GEMM_NC);
}

int embed_k__have_blas(void)
{
#ifdef ENGRAM_HAVE_OPENBLAS
    return 1;
#else
    return 0;
#endif
}

int embed_k__gemm_blas(float *c, const float *a, const float *b, const float *bias, size_t m, size_t n,
                      size_t k)
{
#ifdef ENGRAM_HAVE_OPENBLAS
    pthread_once(&blas_once, blas_single_thread);
    init_bias(c, bias, m, n);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, a, (int)k, b, (int)n,
                1.0f, c, (int)n);
    return 0;
#else
    (void)c, (void)a, (void)b, (void)bias, (void)m, (void)n, (void)k;
    return -1;
#endif
}

/*
 * exp and erf written so that gcc vectorises the loops that call them
 * (libm's erff/expf are scalar calls: they were a fifth of the forward
 * pass).  exp: x = n ln2 + r with |r| <= ln2/2, a degree-6 polynomial for
 * e^r (relative error ~2e-7), 2^n built in the exponent bits.  erf:
 * Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7), far below what
 * float32 activations resolve; the parity tests hold cosine >= 0.9999
 * against ONNX Runtime's exact erf.
 */
static inline float fast_expf(float x)
{
    x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
    const float t = x * 1.44269504088896341f;
    const float nf = t >= 0 ? (float)(int)(t + 0.5f) : (float)(int)(t - 0.5f);
    const float r = x - nf * 0.693145751953125f - nf * 1.42860682030941723212e-6f;
    float p = 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union { uint32_t u; float f; } b = {.u = (uint32_t)((int)nf + 127) << 23};
    return p * b.f;
}

static inline float fast_erff(float x)
{
    const float ax = x < 0 ? -x : x;
    const float t = 1.0f / (1.0f + 0.3275911f * ax);
    float y = 1.061405429f;
    y = y * t - 1.453152027f;
    y = y * t + 1.421413741f;
    y = y * t - 0.284496736f;
    y = y * t + 0.254829592f;
    y = 1.0f - y * t * fast_expf(-ax * ax);
    return x < 0 ? -y : y;
}

/* Softmax of one row in place (the maximum subtracted, for range). */
KERNEL_CLONES
static void softmax_row(float *r, size_t n)
{
    float mx = r[0];
    for (size_t j = 1; j < n; j++)
        mx = r[j] > mx ? r[j] : mx;
    float sum = 0;
    for (size_t j = 0; j < n; j++)
        r[j] = fast_expf(r[j] - mx);
    for (size_t j = 0; j < n; j++)
        sum += r[j];
    const float inv = 1.0f / sum;
    for (size_t j = 0; j < n; j++)
        r[j] *= inv;
}

int embed_k__attention_blas(float *ctx, const float *qkv, size_t len, size_t hidden, size_t heads, float *scratch)
{
#ifdef ENGRAM_HAVE_OPENBLAS
    pthread_once(&blas_once, blas_single_thread);
    const size_t hd = hidden / heads, stride = 3 * hidden;
    const float scale = 1.0f / sqrtf((float)hd);
    float *scores = scratch; /* len x len */
    for (size_t h = 0; h < heads; h++) {
        const float *q = qkv + h * hd, *k = qkv + hidden + h * hd, *v = qkv + 2 * hidden + h * hd;
        /* scores = scale * Q_h K_h^T: the rows of Q and K are strided views of qkv */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)len, (int)len, (int)hd, scale, q, (int)stride, k,
                    (int)stride, 0.0f, scores, (int)len);
        for (size_t i = 0; i < len; i++)
            softmax_row(scores + i * len, len);
        /* ctx_h = P V_h, written into this head's columns of ctx */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)len, (int)hd, (int)len, 1.0f, scores, (int)len,
                    v, (int)stride, 0.0f, ctx + h * hd, (int)hidden);
    }
    return 0;
#else
    (void)ctx, (void)qkv, (void)len, (void)hidden, (void)heads, (void)scratch;
    return -1;
#endif
}

KERNEL_CLONES
void embed_k__attention(float *ctx, const float *qkv, size_t len, size_t hidden, size_t heads, float *scratch)
{
    const size_t hd = hidden / heads, stride = 3 * hidden;
    const float scale = 1.0f / sqrtf((float)hd);
    float *scores = scratch;           /* len x len */
    float *kt = scratch + len * len;   /* hd x len: this head's keys, transposed */
    for (size_t h = 0; h < heads; h++) {
        const size_t qo = h * hd, ko = hidden + h * hd, vo = 2 * hidden + h * hd;
        for (size_t j = 0; j < len; j++)
            for (size_t d = 0; d < hd; d++)
                kt[d * len + j] = qkv[j * stride + ko + d];
        for (size_t i = 0; i < len; i++) {
            float *s = scores + i * len;
            const float *q = qkv + i * stride + qo;
            memset(s, 0, len * sizeof *s);
            for (size_t d = 0; d < hd; d++) {
                const float x = q[d] * scale;
                const float *kr = kt + d * len;
                for (size_t j = 0; j < len; j++)
                    s[j] += x * kr[j];
            }
            softmax_row(s, len);
            float *o = ctx + i * hidden + qo;
            memset(o, 0, hd * sizeof *o);
            for (size_t j = 0; j < len; j++) {
                const float p = s[j];
                const float *v = qkv + j * stride + vo;
                for (size_t d = 0; d < hd; d++)
                    o[d] += p * v[d];
            }
        }
    }
}

void embed_k__add_layernorm(float *x, const float *add, const float *gamma, const float *beta, size_t rows,
                           size_t n, float eps)
{
    for (size_t r = 0; r < rows; r++) {
        float *v = x + r * n;
        if (add) {
            const float *a = add + r * n;
            for (size_t j = 0; j < n; j++)
                v[j] += a[j];
        }
        double mean = 0, var = 0;
        for (size_t j = 0; j < n; j++)
            mean += v[j];
        mean /= (double)n;
        for (size_t j = 0; j < n; j++) {
            double d = v[j] - mean;
            var += d * d;
        }
        var /= (double)n;
        const float inv = (float)(1.0 / sqrt(var + eps)), mu = (float)mean;
        for (size_t j = 0; j < n; j++)
            v[j] = (v[j] - mu) * inv * gamma[j] + beta[j];
    }
}

KERNEL_CLONES
void embed_k__gelu(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = 0.5f * x[i] * (1.0f + fast_erff(x[i] * 0.70710678118654752f));
}
