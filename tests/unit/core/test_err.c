/*
 * test_err.c - error object and Neo4j classification.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "core/err.h"

static void test_core_err__classify_transient(void **state)
{
    (void)state;
    bool retry = false;
    assert_int_equal(eg_error_classify_neo4j("Neo.TransientError.Transaction.DeadlockDetected", &retry),
                     EG_CLASS_TRANSIENT);
    assert_true(retry);
}

static void test_core_err__terminated_is_not_retryable(void **state)
{
    (void)state;
    bool retry = true;
    assert_int_equal(eg_error_classify_neo4j("Neo.TransientError.Transaction.Terminated", &retry),
                     EG_CLASS_CLIENT);
    assert_false(retry);
    retry = true;
    eg_error_classify_neo4j("Neo.TransientError.Transaction.LockClientStopped", &retry);
    assert_false(retry);
}

static void test_core_err__set_neo4j(void **state)
{
    (void)state;
    eg_error e;
    eg_error_clear(&e);
    int rc = eg_error_set_neo4j(&e, "Neo.ClientError.Schema.ConstraintValidationFailed", "22N41",
                                "already exists");
    assert_int_equal(rc, EG_ECLIENT);
    assert_int_equal(e.klass, EG_CLASS_CLIENT);
    assert_false(e.retryable);
    assert_string_equal(e.gql_status, "22N41");
    rc = eg_error_set_neo4j(&e, "Neo.ClientError.Security.Unauthorized", NULL, "bad");
    assert_int_equal(rc, EG_EAUTH);
    rc = eg_error_set_neo4j(&e, "Neo.DatabaseError.General.UnknownError", NULL, "x");
    assert_int_equal(rc, EG_EDATABASE);
}

static void test_core_err__set_and_prefix(void **state)
{
    (void)state;
    eg_error e;
    eg_error_clear(&e);
    assert_int_equal(eg_error_set(&e, EG_EIO, EG_CLASS_CONNECTION, "read: %s", "reset"), EG_EIO);
    assert_true(e.retryable);
    eg_error_prefix(&e, "while %s", "leasing");
    assert_string_equal(e.message, "while leasing: read: reset");
    assert_int_equal(eg_error_set(NULL, EG_EINVAL, EG_CLASS_CLIENT, "x"), EG_EINVAL);
    assert_string_equal(eg_strerror(EG_ETIMEOUT), "EG_ETIMEOUT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_core_err__classify_transient),
        cmocka_unit_test(test_core_err__terminated_is_not_retryable),
        cmocka_unit_test(test_core_err__set_neo4j),
        cmocka_unit_test(test_core_err__set_and_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
