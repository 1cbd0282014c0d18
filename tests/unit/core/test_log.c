/*
 * test_log.c - the stderr logger: one event is one line in both formats,
 * whatever its message and fields hold (issue #14 finding 18: a value with a
 * newline could forge a log line in the human format).
 *
 * stderr is redirected to a temporary file around each log call.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

/* Log one warning with a message and one field; return what reached stderr (static). */
static const char *captured(const char *msg, const char *value)
{
    static char out[4096];
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    eg_log_fields(EG_LOG_WARNING, "test", msg, "value", value, NULL);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    size_t n = fread(out, 1, sizeof out - 1, tmp);
    out[n] = '\0';
    fclose(tmp);
    return out;
}

static size_t lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_log__human_format_cannot_be_forged(void **state)
{
    (void)state;
    eg_log_set_format(EG_LOG_HUMAN);
    const char *forged = "ok\n2026-01-01T00:00:00.000Z ERROR   engram: forged\r\x1b[2J";
    const char *out = captured(forged, forged);
    assert_int_equal(lines(out), 1);
    assert_non_null(strstr(out, "ok\\n2026-01-01"));
    assert_non_null(strstr(out, "forged\\r\\x1b[2J"));
    assert_non_null(strstr(out, " value=ok\\n"));
    assert_null(strchr(out, '\x1b'));
    assert_null(strchr(out, '\r'));
    /* plain text is unchanged */
    out = captured("worker started", "tab\there");
    assert_non_null(strstr(out, "test: worker started value=tab\there\n"));
}

static void test_log__json_format_one_line(void **state)
{
    (void)state;
    eg_log_set_format(EG_LOG_JSON);
    const char *out = captured("a\nb", "c\nd");
    assert_int_equal(lines(out), 1);
    assert_non_null(strstr(out, "\"msg\":\"a\\nb\""));
    assert_non_null(strstr(out, "\"value\":\"c\\nd\""));
    eg_log_set_format(EG_LOG_HUMAN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log__human_format_cannot_be_forged),
        cmocka_unit_test(test_log__json_format_one_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
