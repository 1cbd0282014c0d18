/*
 * ps_test_util.h - helpers shared by the PackStream unit tests: hex
 * vectors, encode/decode shortcuts.  Header-only (tests link one .c each).
 */
#ifndef ENGRAM_TEST_PS_TEST_UTIL_H
#define ENGRAM_TEST_PS_TEST_UTIL_H

#include "bolt/packstream.h"
#include "core/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parse "C8 80 ..." (spaces optional) into a malloc'd buffer. */
static inline uint8_t *ps_hex(const char *hex, size_t *len)
{
    size_t cap = strlen(hex) / 2 + 1, n = 0;
    uint8_t *o = malloc(cap);
    for (const char *p = hex; *p;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        unsigned v;
        if (sscanf(p, "%2x", &v) != 1)
            abort();
        o[n++] = (uint8_t)v;
        p += 2;
    }
    *len = n;
    return o;
}

static inline char *ps_tohex(const void *p, size_t n)
{
    char *o = malloc(n * 3 + 1);
    o[0] = '\0';
    for (size_t i = 0; i < n; i++)
        sprintf(o + i * 3, i + 1 < n ? "%02X " : "%02X", ((const uint8_t *)p)[i]);
    return o;
}

/* Compare the buffer to a hex vector; cmocka-friendly message on mismatch. */
#define assert_buf_hex(buf, hex)                                                                   \
    do {                                                                                           \
        size_t exp_len_;                                                                           \
        uint8_t *exp_ = ps_hex((hex), &exp_len_);                                                  \
        char *got_ = ps_tohex((buf)->ptr, (buf)->len);                                             \
        char *want_ = ps_tohex(exp_, exp_len_);                                                    \
        assert_string_equal(got_, want_);                                                          \
        free(got_);                                                                                \
        free(want_);                                                                               \
        free(exp_);                                                                                \
    } while (0)

/* Decode a hex vector; returns the rc, *out valid until the arena resets. */
static inline int ps_decode_hex(const char *hex, bolt_arena *a, int major, const bolt_value **out,
                                size_t *used)
{
    size_t n;
    uint8_t *b = ps_hex(hex, &n);
    int rc = bolt_ps_decode(b, n, a, major, out, used, NULL);
    free(b);
    return rc;
}

#endif
