/*
 * test_server_version.c - the Neo4j release policy doctor reports.
 */
#include "schema/server_version.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void expect(const char *version, schema_support want, const char *in_detail)
{
    char detail[256];
    schema_support got = schema_server_support(version, detail, sizeof detail);
    if (got != want)
        fail_msg("%s: got %d, want %d (%s)", version ? version : "NULL", got, want, detail);
    if (!strstr(detail, in_detail))
        fail_msg("%s: '%s' not in '%s'", version ? version : "NULL", in_detail, detail);
}

static void test_schema_server_version__tested_lines(void **state)
{
    (void)state;
    expect("5.26.5", SCHEMA_SUPPORT_TESTED, "5.26 LTS");
    expect("5.26.0", SCHEMA_SUPPORT_TESTED, "baseline");
    expect("2025.10.1", SCHEMA_SUPPORT_TESTED, "compatibility pass");
}

static void test_schema_server_version__minimum(void **state)
{
    (void)state;
    expect("5.15.0", SCHEMA_SUPPORT_UNTESTED, "supported");
    expect("5.14.0", SCHEMA_SUPPORT_TOO_OLD, "older than 5.15");
    expect("4.4.30", SCHEMA_SUPPORT_TOO_OLD, "upgrade Neo4j");
    expect("5.9.0", SCHEMA_SUPPORT_TOO_OLD, "older"); /* 9 < 15: numeric, not text order */
}

static void test_schema_server_version__untested_and_suffixes(void **state)
{
    (void)state;
    expect("5.27-aura", SCHEMA_SUPPORT_UNTESTED, "5.27-aura");
    expect("2025.01.0", SCHEMA_SUPPORT_UNTESTED, "not a release line");
    expect("2026.04.0", SCHEMA_SUPPORT_UNTESTED, "supported");
}

static void test_schema_server_version__unreadable(void **state)
{
    (void)state;
    expect(NULL, SCHEMA_SUPPORT_UNKNOWN, "(none)");
    expect("", SCHEMA_SUPPORT_UNKNOWN, "cannot read");
    expect("five", SCHEMA_SUPPORT_UNKNOWN, "'five'");
    expect("5", SCHEMA_SUPPORT_UNKNOWN, "cannot read");
    expect("5.x", SCHEMA_SUPPORT_UNKNOWN, "cannot read");
    /* a tiny buffer is still terminated */
    char small[8];
    schema_server_support("5.26.5", small, sizeof small);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_int_equal(schema_server_support("5.26.5", NULL, 0), SCHEMA_SUPPORT_TESTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_server_version__tested_lines),
        cmocka_unit_test(test_schema_server_version__minimum),
        cmocka_unit_test(test_schema_server_version__untested_and_suffixes),
        cmocka_unit_test(test_schema_server_version__unreadable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
