/*
 * test_sha256.c - the one SHA-256 helper: known digests, streaming equals
 * one-shot, and a failed allocation is an error with no digest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/sha256.h"

static const char ABC[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
static const char EMPTY[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

static void test_core_sha256__known_digests(void **state)
{
    (void)state;
    char hex[EG_SHA256_HEX_SIZE];
    assert_int_equal(eg_sha256_hex("abc", 3, hex), 0);
    assert_string_equal(hex, ABC);
    assert_int_equal(eg_sha256_hex(NULL, 0, hex), 0);
    assert_string_equal(hex, EMPTY);
    unsigned char md[EG_SHA256_LEN];
    assert_int_equal(eg_sha256_digest("abc", 3, md), 0);
    assert_int_equal(md[0], 0xba);
    assert_int_equal(md[31], 0xad);
}

static void test_core_sha256__streaming_equals_one_shot(void **state)
{
    (void)state;
    eg_sha256 *h;
    assert_int_equal(eg_sha256_new(&h), 0);
    eg_sha256_update(h, "a", 1);
    eg_sha256_update(h, NULL, 0);
    eg_sha256_update(h, "bc", 2);
    char hex[EG_SHA256_HEX_SIZE];
    assert_int_equal(eg_sha256_final_hex(h, hex), 0);
    eg_sha256_free(h);
    assert_string_equal(hex, ABC);
    eg_sha256_free(NULL);
}

static void test_core_sha256__allocation_failure_is_an_error(void **state)
{
    (void)state;
    char hex[EG_SHA256_HEX_SIZE] = "stale";
    eg_alloc_fail_at(1, 0);
    int rc = eg_sha256_hex("abc", 3, hex);
    eg_alloc_fail_at(0, 0);
    assert_int_equal(rc, EG_ENOMEM);
    assert_string_equal(hex, "");
    eg_sha256 *h = (eg_sha256 *)&hex;
    eg_alloc_fail_at(1, 0);
    rc = eg_sha256_new(&h);
    eg_alloc_fail_at(0, 0);
    assert_int_equal(rc, EG_ENOMEM);
    assert_null(h);
}

static void test_core_sha256__hex_encode(void **state)
{
    (void)state;
    const unsigned char in[] = {0x00, 0x0f, 0xa0, 0xff};
    char hex[9];
    eg_hex_encode(in, sizeof in, hex);
    assert_string_equal(hex, "000fa0ff");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core_sha256__known_digests),
        cmocka_unit_test(test_core_sha256__streaming_equals_one_shot),
        cmocka_unit_test(test_core_sha256__allocation_failure_is_an_error),
        cmocka_unit_test(test_core_sha256__hex_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
