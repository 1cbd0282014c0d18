/*
 * test_params.c - bolt_params: entries, final map encoding, sticky errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "bolt/params_int.h"
#include "core/alloc.h"
#include "unit/bolt/ps_test_util.h"

#include <string.h>

static void encode(const bolt_params *p, eg_buf *b, int want_rc)
{
    eg_buf_reset(b);
    bolt_ps_writer w;
    bolt_ps_writer_init(&w, b);
    assert_int_equal(bolt_params__encode(p, &w), want_rc);
    assert_int_equal(bolt_ps_writer_error(&w), want_rc);
}

static void test_bolt_params__null_is_empty_map(void **state)
{
    (void)state;
    eg_buf b = EG_BUF_INIT(0);
    encode(NULL, &b, 0);
    assert_buf_hex(&b, "A0");
    bolt_params *p = bolt_params_new();
    encode(p, &b, 0);
    assert_buf_hex(&b, "A0");
    assert_int_equal(bolt_params__count(p), 0);
    bolt_params_free(p);
    bolt_params_free(NULL);
    eg_buf_free(&b);
}

static void test_bolt_params__all_kinds(void **state)
{
    (void)state;
    bolt_params *p = bolt_params_new();
    bolt_params_null(p, "n");
    bolt_params_bool(p, "b", true);
    bolt_params_int(p, "i", 128);
    bolt_params_float(p, "f", 1.5);
    bolt_params_str(p, "s", "x");
    bolt_params_str(p, "z", NULL);
    bolt_params_strn(p, "sn", "abc", 2);
    json_t *j = json_pack("{s:i}", "k", 1);
    bolt_params_json(p, "j", j);
    json_decref(j);
    double d[2] = {1.0, 2.0};
    bolt_params_float_list(p, "v", d, 2);
    float fl[1] = {0.5f};
    bolt_params_float32_list(p, "w", fl, 1);
    bolt_ps_writer *w = bolt_params_add(p, "raw");
    assert_non_null(w);
    bolt_ps_date(w, 1);
    assert_int_equal(bolt_params_error(p), 0);
    assert_int_equal(bolt_params__count(p), 11);
    eg_buf b = EG_BUF_INIT(0);
    encode(p, &b, 0);
    assert_buf_hex(&b, "AB 81 6E C0 81 62 C3 81 69 C9 00 80 81 66 C1 3F F8 00 00 00 00 00 00 "
                       "81 73 81 78 81 7A C0 82 73 6E 82 61 62 81 6A A1 81 6B 01 "
                       "81 76 92 C1 3F F0 00 00 00 00 00 00 C1 40 00 00 00 00 00 00 00 "
                       "81 77 91 C1 3F E0 00 00 00 00 00 00 83 72 61 77 B1 44 01");
    /* decodes as a map */
    bolt_arena *a = bolt_arena_new(0);
    const bolt_value *v;
    assert_int_equal(bolt_ps_decode((const uint8_t *)b.ptr, b.len, a, 5, &v, NULL, NULL), 0);
    assert_int_equal(bolt_value_len(v), 11);
    assert_int_equal(bolt_value_int(bolt_value_get(v, "i"), 0), 128);
    assert_int_equal(bolt_value_type(bolt_value_get(v, "raw")), BOLT_DATE);
    bolt_arena_free(a);
    /* clear and reuse */
    bolt_params_clear(p);
    bolt_params_int(p, "x", 1);
    encode(p, &b, 0);
    assert_buf_hex(&b, "A1 81 78 01");
    /* encoding twice gives the same bytes (params are not consumed) */
    encode(p, &b, 0);
    assert_buf_hex(&b, "A1 81 78 01");
    bolt_params_free(p);
    eg_buf_free(&b);
}

static void test_bolt_params__more_than_15_entries(void **state)
{
    (void)state;
    bolt_params *p = bolt_params_new();
    for (int i = 0; i < 300; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        bolt_params_int(p, k, i);
    }
    eg_buf b = EG_BUF_INIT(0);
    encode(p, &b, 0);
    assert_int_equal((uint8_t)b.ptr[0], 0xD9);
    assert_int_equal((uint8_t)b.ptr[1], 0x01);
    assert_int_equal((uint8_t)b.ptr[2], 0x2C);
    bolt_params_free(p);
    eg_buf_free(&b);
}

static void test_bolt_params__sticky_error(void **state)
{
    (void)state;
    bolt_params *p = bolt_params_new();
    bolt_params_int(p, "ok", 1);
    bolt_params_int(p, NULL, 2);
    assert_int_equal(bolt_params_error(p), EG_EINVAL);
    assert_null(bolt_params_add(p, "later"));
    bolt_params_int(p, "later", 3); /* no-op */
    eg_buf b = EG_BUF_INIT(0);
    encode(p, &b, EG_EINVAL);
    assert_int_equal(b.len, 0);
    bolt_params_float_list(p, "v", NULL, 3);
    assert_int_equal(bolt_params_error(p), EG_EINVAL);
    bolt_params_clear(p);
    assert_int_equal(bolt_params_error(p), 0);
    bolt_params_float_list(p, "v", NULL, 3);
    assert_int_equal(bolt_params_error(p), EG_EINVAL);
    assert_int_equal(bolt_params_error(NULL), EG_EINVAL);
    assert_null(bolt_params_add(NULL, "x"));
    bolt_params_free(p);
    eg_buf_free(&b);
}

static void test_bolt_params__alloc_failures(void **state)
{
    (void)state;
    int failures = 0;
    for (unsigned long k = 1;; k++) {
        eg_alloc_fail_at(k, 0);
        bolt_params *p = bolt_params_new();
        int rc = EG_ENOMEM;
        if (p) {
            for (int i = 0; i < 50; i++)
                bolt_params_str(p, "key", "a value that takes up some room in the buffer");
            rc = bolt_params_error(p);
        }
        unsigned long made = eg_alloc_fail_at(0, 0);
        bolt_params_free(p);
        if (made < k) {
            assert_int_equal(rc, 0);
            break;
        }
        failures++;
        assert_int_equal(rc, EG_ENOMEM);
    }
    assert_true(failures >= 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bolt_params__null_is_empty_map),
        cmocka_unit_test(test_bolt_params__all_kinds),
        cmocka_unit_test(test_bolt_params__more_than_15_entries),
        cmocka_unit_test(test_bolt_params__sticky_error),
        cmocka_unit_test(test_bolt_params__alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
