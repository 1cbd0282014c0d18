/*
 * test_env.c - typed environment reads: unset leaves the default, a valid
 * value is taken, anything else is an error naming the variable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/env.h"

#define VAR "ENGRAM_TEST_ENV_VALUE"

static void test_core_env__int(void **state)
{
    (void)state;
    eg_error err;
    int64_t v = 7;
    unsetenv(VAR);
    assert_int_equal(eg_env_int(VAR, 1, 10, &v, &err), 0);
    setenv(VAR, "", 1);
    assert_int_equal(eg_env_int(VAR, 1, 10, &v, &err), 0);
    assert_int_equal(v, 7);
    setenv(VAR, "10", 1);
    assert_int_equal(eg_env_int(VAR, 1, 10, &v, &err), 1);
    assert_int_equal(v, 10);
    const char *bad[] = {"11", "0", "-1", "3x", "x", " 4 ", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv(VAR, bad[i], 1);
        v = 7;
        assert_int_equal(eg_env_int(VAR, 1, 10, &v, &err), EG_EINVAL);
        assert_int_equal(v, 7);
        assert_non_null(strstr(err.message, VAR " must be an integer in 1..10"));
    }
    unsetenv(VAR);
}

static void test_core_env__double(void **state)
{
    (void)state;
    eg_error err;
    double v = 0.5;
    setenv(VAR, "0.25", 1);
    assert_int_equal(eg_env_double(VAR, 0, 1, &v, &err), 1);
    assert_true(v == 0.25);
    const char *bad[] = {"1.5", "nan", "-0.1", "abc", "0.5s"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv(VAR, bad[i], 1);
        assert_int_equal(eg_env_double(VAR, 0, 1, &v, &err), EG_EINVAL);
        assert_non_null(strstr(err.message, VAR " must be a number in 0..1"));
    }
    assert_true(v == 0.25);
    unsetenv(VAR);
}

static void test_core_env__bool_and_str(void **state)
{
    (void)state;
    eg_error err;
    bool b = false;
    const char *yes[] = {"1", "TRUE", "yes", "On"}, *no[] = {"0", "false", "NO", "off"};
    for (size_t i = 0; i < 4; i++) {
        setenv(VAR, yes[i], 1);
        assert_int_equal(eg_env_bool(VAR, &b, &err), 1);
        assert_true(b);
        setenv(VAR, no[i], 1);
        assert_int_equal(eg_env_bool(VAR, &b, &err), 1);
        assert_false(b);
    }
    setenv(VAR, "maybe", 1);
    assert_int_equal(eg_env_bool(VAR, &b, &err), EG_EINVAL);
    assert_false(eg_env_yes(VAR)); /* the lenient reading: not a yes-word, so off */
    setenv(VAR, "Yes", 1);
    assert_true(eg_env_yes(VAR));
    setenv(VAR, "maybe", 1);
    assert_string_equal(eg_env_str(VAR, "d"), "maybe");
    setenv(VAR, "", 1);
    assert_string_equal(eg_env_str(VAR, "d"), "d");
    unsetenv(VAR);
    assert_null(eg_env_str(VAR, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core_env__int),
        cmocka_unit_test(test_core_env__double),
        cmocka_unit_test(test_core_env__bool_and_str),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
