/*
 * local_kernels_int.h - the encoder's numeric kernels (internal to embed/).
 *
 * Row-major float32 throughout.  The linear layers are C[M,N] = A[M,K] B[K,N]
 * + bias with B in [in, out] layout; everything else is per token.
 *
 * These functions live in their own file because it is compiled with its
 * own flags (see CMakeLists.txt): -O3 even in Debug builds, so the ASan test
 * suite does not spend minutes in unvectorised loops, and -ffp-contract=fast
 * so multiply-adds become FMAs.  The hot loops are written in "axpy" form
 * (the innermost loop adds a scaled row to a row), which vectorises without
 * -ffast-math: no reduction is reordered, so results do not depend on
 * compiler flags beyond FMA contraction.
 *
 * Thread-safety: pure functions on caller memory.
 */
#ifndef ENGRAM_EMBED_LOCAL_KERNELS_INT_H
#define ENGRAM_EMBED_LOCAL_KERNELS_INT_H

#include <stddef.h>

/* C = A B + bias (bias[N] may be NULL), our own blocked kernel. */
void embed_k__gemm(float *c, const float *a, const float *b, const float *bias, size_t m, size_t n, size_t k);

/* Same through cblas_sgemm on one thread.  Returns 0, or -1 when the build has no BLAS. */
int embed_k__gemm_blas(float *c, const float *a, const float *b, const float *bias, size_t m, size_t n,
                      size_t k);
/* True when built with a BLAS. */
int embed_k__have_blas(void);

/*
 * Self-attention of one text of len tokens.  qkv rows hold [Q | K | V]
 * (3 * hidden floats per token, row stride 3 * hidden); ctx receives
 * len x hidden.  scratch: at least len * len + head_dim * len floats.
 */
void embed_k__attention(float *ctx, const float *qkv, size_t len, size_t hidden, size_t heads, float *scratch);

/* The same through cblas_sgemm (scratch: len * len floats).  Returns 0, or
 * -1 when the build has no BLAS. */
int embed_k__attention_blas(float *ctx, const float *qkv, size_t len, size_t hidden, size_t heads, float *scratch);

/* x = LayerNorm(x + add) per row of n (add may be NULL), eps 1e-12. */
void embed_k__add_layernorm(float *x, const float *add, const float *gamma, const float *beta, size_t rows,
                           size_t n, float eps);

/* x = GELU(x), the exact erf form. */
void embed_k__gelu(float *x, size_t n);

#endif
