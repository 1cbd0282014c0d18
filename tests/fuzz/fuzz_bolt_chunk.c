/*
 * fuzz_bolt_chunk.c - the chunk reader over arbitrary bytes: every message
 * it returns lies inside the input (or the scratch buffer) and has a
 * positive length; it never reads past the end or loops forever.
 */
#include "fuzz.h"
#include "bolt/chunk.h"
#include "core/buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bolt_tr *t;
    if (bolt_tr_new_mem(&t, data, size, NULL) < 0)
        return 0;
    eg_buf scratch = EG_BUF_INIT(1u << 20);
    size_t total = 0;
    for (int i = 0; i < 100000; i++) {
        const uint8_t *m;
        size_t len;
        if (bolt_chunk_read(t, &scratch, &m, &len, NULL) < 0)
            break;
        if (len == 0 || len > size)
            abort();
        total += len;
        volatile uint8_t sink = m[0] ^ m[len - 1];
        (void)sink;
    }
    if (total > size)
        abort();
    bolt_tr_free(t);
    eg_buf_free(&scratch);
    return 0;
}
