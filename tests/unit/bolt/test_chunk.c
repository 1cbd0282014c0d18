/*
 * test_chunk.c - Bolt chunk framing: writer splitting, reader reassembly,
 * NOOP skipping, truncated input, the size cap.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bolt/chunk.h"
#include "core/alloc.h"

#include <stdlib.h>
#include <string.h>

static void test_bolt_chunk__frame_small(void **state)
{
    (void)state;
    eg_buf out = EG_BUF_INIT(1 << 20);
    assert_int_equal(bolt_chunk_frame(&out, "\xB0\x0F", 2), 0);
    assert_int_equal(out.len, 6);
    assert_memory_equal(out.ptr, "\x00\x02\xB0\x0F\x00\x00", 6);
    eg_buf_free(&out);
}

static void test_bolt_chunk__frame_splits_large_and_reads_back(void **state)
{
    (void)state;
    size_t n = 65535 * 2 + 100;
    uint8_t *msg = malloc(n);
    for (size_t i = 0; i < n; i++)
        msg[i] = (uint8_t)(i * 7 + 1);
    eg_buf out = EG_BUF_INIT(1 << 20);
    assert_int_equal(bolt_chunk_frame(&out, msg, n), 0);
    assert_int_equal(out.len, n + 3 * 2 + 2);
    const uint8_t *p = (const uint8_t *)out.ptr;
    assert_int_equal(p[0], 0xFF);
    assert_int_equal(p[1], 0xFF);
    assert_int_equal(p[2 + 65535], 0xFF);
    assert_int_equal(p[2 + 65535 + 1], 0xFF);
    /* two messages back to back with NOOPs around: reassembled in order */
    eg_buf wire = EG_BUF_INIT(1 << 20);
    eg_buf_append(&wire, "\0\0\0\0", 4);
    eg_buf_append(&wire, out.ptr, out.len);
    eg_buf_append(&wire, "\0\0", 2);
    bolt_chunk_frame(&wire, "\xB0\x7E", 2);
    bolt_tr *t;
    eg_error err;
    assert_int_equal(bolt_tr_new_mem(&t, wire.ptr, wire.len, &err), 0);
    eg_buf scratch = EG_BUF_INIT(1 << 20);
    const uint8_t *m;
    size_t len;
    assert_int_equal(bolt_chunk_read(t, &scratch, &m, &len, &err), 0);
    assert_int_equal(len, n);
    assert_memory_equal(m, msg, n);
    assert_int_equal(bolt_chunk_read(t, &scratch, &m, &len, &err), 0);
    assert_int_equal(len, 2);
    assert_memory_equal(m, "\xB0\x7E", 2);
    assert_int_equal(bolt_chunk_read(t, &scratch, &m, &len, &err), EG_EIO);
    bolt_tr_free(t);
    eg_buf_free(&scratch);
    eg_buf_free(&wire);
    eg_buf_free(&out);
    free(msg);
}

static void test_bolt_chunk__multi_small_chunks(void **state)
{
    (void)state;
    static const uint8_t wire[] = {0, 2, 'a', 'b', 0, 1, 'c', 0, 0};
    bolt_tr *t;
    eg_error err;
    assert_int_equal(bolt_tr_new_mem(&t, wire, sizeof wire, &err), 0);
    eg_buf scratch = EG_BUF_INIT(1 << 20);
    const uint8_t *m;
    size_t len;
    assert_int_equal(bolt_chunk_read(t, &scratch, &m, &len, &err), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(m, "abc", 3);
    bolt_tr_free(t);
    eg_buf_free(&scratch);
}

static void test_bolt_chunk__truncated_is_error(void **state)
{
    (void)state;
    static const uint8_t cases[][6] = {{0, 5, 1, 2, 3, 0}, {0, 1, 'x', 0, 0, 0}, {0, 1, 'x', 0, 1, 0}};
    static const size_t lens[] = {5, 3, 5};
    for (size_t i = 0; i < 3; i++) {
        bolt_tr *t;
        eg_error err;
        assert_int_equal(bolt_tr_new_mem(&t, cases[i], lens[i], &err), 0);
        eg_buf scratch = EG_BUF_INIT(1 << 20);
        const uint8_t *m;
        size_t len;
        assert_int_equal(bolt_chunk_read(t, &scratch, &m, &len, &err), EG_EIO);
        bolt_tr_free(t);
        eg_buf_free(&scratch);
    }
}

static void test_bolt_chunk__cap_enforced(void **state)
{
    (void)state;
    /* 3 chunks of 10 bytes with a 16-byte cap */
    uint8_t wire[3 * 12 + 2] = {0};
    for (int i = 0; i < 3; i++)
        wire[i * 12 + 1] = 10;
    bolt_tr *t;
    eg_error err;
    assert_int_equal(bolt_tr_new_mem(&t, wire, sizeof wire, &err), 0);
    eg_buf scratch = EG_BUF_INIT(16);
    const uint8_t *m;
    size_t len;
    assert_int_equal(bolt_chunk_read(t, &scratch, &m, &len, &err), EG_ETOOBIG);
    bolt_tr_free(t);
    eg_buf_free(&scratch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bolt_chunk__frame_small),
        cmocka_unit_test(test_bolt_chunk__frame_splits_large_and_reads_back),
        cmocka_unit_test(test_bolt_chunk__multi_small_chunks),
        cmocka_unit_test(test_bolt_chunk__truncated_is_error),
        cmocka_unit_test(test_bolt_chunk__cap_enforced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
