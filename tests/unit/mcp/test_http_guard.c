/*
 * test_http_guard.c - the HTTP transport's header checks (http_guard.c):
 * Origin and Host parsed by scheme, host and port rather than matched by
 * prefix (issue 14, finding 14), and the Content-Type test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mcp/http_int.h"

#include <string.h>

static void test_mcp_http__origin_parsed(void **state)
{
    (void)state;
    struct {
        const char *origin;
        bool ok;
    } cases[] = {
        {"http://localhost", true},
        {"http://localhost:6274", true},
        {"https://localhost", true},
        {"HTTP://LocalHost:1", true},
        {"http://127.0.0.1", true},
        {"http://127.1.2.3:8080", true},
        {"https://[::1]", true},
        {"http://[::1]:6274", true},
        {"http://localhost:1@evil.example", false}, /* userinfo: the host is evil.example */
        {"http://localhost.evil.example", false},
        {"http://localhost/", false},
        {"http://localhost/x", false},
        {"http://localhost?x", false},
        {"http://localhost#x", false},
        {"http://localhost:", false},
        {"http://localhost:0", false},
        {"http://localhost:65536", false},
        {"http://localhost:80a", false},
        {"ftp://localhost", false},
        {"localhost", false},
        {"null", false},
        {"", false},
        {"http://", false},
        {"http://[::2]", false},
        {"http://[::1", false},
        {"http://[evil.example]", false},
        {"http://128.0.0.1", false},
        {"http://evil.example", false},
        {"https://app.example", true}, /* listed */
        {"https://APP.example:443", true}, /* the default port is the same origin */
        {"http://app.example", false},    /* another scheme */
        {"https://app.example:8443", false},
        {"http://tool.example:8080", true},
    };
    const char *allowed = " https://app.example , http://tool.example:8080,";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool got = mcp_http__origin_allowed(cases[i].origin, allowed);
        if (got != cases[i].ok)
            fail_msg("Origin '%s': expected %s", cases[i].origin, cases[i].ok ? "allowed" : "refused");
    }
    assert_false(mcp_http__origin_allowed(NULL, NULL));
    /* the console's page posting to its own server (any bind address) */
    assert_true(mcp_http__origin_is_host("http://10.0.0.5:8765", "10.0.0.5:8765"));
    assert_true(mcp_http__origin_is_host("http://Memory.Example", "memory.example:80"));
    assert_true(mcp_http__origin_is_host("http://[fd00::1]:8765", "[fd00::1]:8765"));
    assert_false(mcp_http__origin_is_host("http://10.0.0.5:8766", "10.0.0.5:8765"));
    assert_false(mcp_http__origin_is_host("https://10.0.0.5:8765", "10.0.0.5:8765")); /* a proxy: list it */
    assert_false(mcp_http__origin_is_host("http://evil.example:8765", "10.0.0.5:8765"));
    assert_false(mcp_http__origin_is_host("http://10.0.0.5:8765", NULL));
    assert_false(mcp_http__origin_is_host("null", "10.0.0.5:8765"));
    mcp_http_origin o;
    assert_true(mcp_http__parse_origin("HTTPS://[::1]:6274", &o));
    assert_string_equal(o.scheme, "https");
    assert_string_equal(o.host, "::1");
    assert_int_equal(o.port, 6274);
}

static void test_mcp_http__host_checked(void **state)
{
    (void)state;
    const char *ok[] = {"localhost", "localhost:8765", "127.0.0.1:8765", "127.0.0.2", "[::1]:8765", "LOCALHOST",
                        "mcp.example.com", "mcp.example.com:443"};
    const char *bad[] = {"evil.example", "evil.example:8765", "localhost.evil.example", "localhost:1@evil.example",
                         "", ":8765", "localhost:x", "[::1", "10.0.0.5"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (!mcp_http__host_allowed(ok[i], "mcp.example.com"))
            fail_msg("Host '%s' should be allowed", ok[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (mcp_http__host_allowed(bad[i], "mcp.example.com"))
            fail_msg("Host '%s' should be refused", bad[i]);
    assert_false(mcp_http__host_allowed("mcp.example.com", NULL));
}

static void test_mcp_http__json_content_type(void **state)
{
    (void)state;
    assert_true(mcp_http__is_json_type("application/json"));
    assert_true(mcp_http__is_json_type("Application/JSON"));
    assert_true(mcp_http__is_json_type("application/json; charset=utf-8"));
    assert_true(mcp_http__is_json_type(" application/json ;charset=UTF-8"));
    assert_false(mcp_http__is_json_type(NULL));
    assert_false(mcp_http__is_json_type(""));
    assert_false(mcp_http__is_json_type("text/plain"));
    assert_false(mcp_http__is_json_type("application/jsonx"));
    assert_false(mcp_http__is_json_type("application/json-seq"));
    assert_false(mcp_http__is_json_type("application/x-www-form-urlencoded"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mcp_http__origin_parsed),
        cmocka_unit_test(test_mcp_http__host_checked),
        cmocka_unit_test(test_mcp_http__json_content_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
