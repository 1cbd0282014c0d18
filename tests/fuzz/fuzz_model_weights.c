/*
 * fuzz_model_weights.c - libFuzzer target for the local encoder's weight
 * file readers (embed__onnx_parse, embed__safetensors_parse).
 *
 * Weight files are hash-pinned before parsing, so these parsers only ever
 * see the exact published files in production; the target makes sure that
 * even so no byte sequence can read out of bounds: every tensor that a
 * successful parse returns must lie inside the input, with a size that
 * matches its shape for float tensors.
 */
#include "fuzz.h"
#include "core/alloc.h"
#include "embed/local_weights_int.h"

#include <stdint.h>
#include <stdlib.h>

static void check(int cond)
{
    if (!cond)
        abort();
}

static void verify(const uint8_t *data, size_t size, const embed_tensor *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!t[i].data)
            continue;
        check(t[i].data >= data && t[i].nbytes <= size && t[i].data + t[i].nbytes <= data + size);
        if (t[i].dtype == EMBED_DT_F32)
            check(embed__tensor_numel(&t[i]) * 4 == t[i].nbytes);
        volatile uint8_t sink = 0;
        if (t[i].nbytes)
            sink ^= t[i].data[0] ^ t[i].data[t[i].nbytes - 1];
        (void)sink;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    embed_tensor *t = NULL;
    size_t n = 0;
    eg_error err;
    if (embed__onnx_parse(data, size, &t, &n, &err) == 0)
        verify(data, size, t, n);
    else
        check(t == NULL && n == 0);
    eg_free(t);
    t = NULL;
    if (embed__safetensors_parse(data, size, &t, &n, &err) == 0)
        verify(data, size, t, n);
    else
        check(t == NULL && n == 0);
    eg_free(t);
    return 0;
}
