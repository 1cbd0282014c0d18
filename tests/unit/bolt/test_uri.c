/*
 * test_uri.c - Bolt URI parsing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bolt/conn.h"
#include "bolt/uri.h"

#include <string.h>

static void test_bolt_uri__schemes_and_defaults(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool routing;
        bolt_tls_mode tls;
    } cases[] = {
        {"bolt://localhost", false, BOLT_TLS_NONE},   {"bolt+s://db.example.com", false, BOLT_TLS_VERIFY},
        {"bolt+ssc://h", false, BOLT_TLS_NOVERIFY},   {"neo4j://h", true, BOLT_TLS_NONE},
        {"neo4j+s://h", true, BOLT_TLS_VERIFY},       {"NEO4J+SSC://h", true, BOLT_TLS_NOVERIFY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bolt_uri u;
        eg_error err;
        assert_int_equal(bolt_uri_parse(&u, cases[i].s, &err), 0);
        assert_int_equal(u.routing, cases[i].routing);
        assert_int_equal(u.tls, cases[i].tls);
        assert_int_equal(u.port, 7687);
        bolt_uri_clear(&u);
    }
}

static void test_bolt_uri__host_port_ipv6(void **state)
{
    (void)state;
    bolt_uri u;
    eg_error err;
    assert_int_equal(bolt_uri_parse(&u, "bolt://127.0.0.1:17687", &err), 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 17687);
    assert_string_equal(u.address, "127.0.0.1:17687");
    bolt_uri_clear(&u);
    assert_int_equal(bolt_uri_parse(&u, "bolt://[::1]:7000/", &err), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    assert_string_equal(u.address, "[::1]:7000");
    bolt_uri_clear(&u);
    assert_int_equal(bolt_uri_parse(&u, "bolt://[fe80::1]", &err), 0);
    assert_string_equal(u.host, "fe80::1");
    assert_int_equal(u.port, 7687);
    bolt_uri_clear(&u);
    /* user info is ignored */
    assert_int_equal(bolt_uri_parse(&u, "bolt://neo4j:pw@db:1234", &err), 0);
    assert_string_equal(u.host, "db");
    assert_int_equal(u.port, 1234);
    bolt_uri_clear(&u);
}

static void test_bolt_uri__routing_context(void **state)
{
    (void)state;
    bolt_uri u;
    eg_error err;
    assert_int_equal(bolt_uri_parse(&u, "neo4j://h:1?region=eu%2Dwest&policy=a%20b", &err), 0);
    assert_int_equal(u.nparams, 2);
    assert_string_equal(u.params[0].key, "region");
    assert_string_equal(u.params[0].value, "eu-west");
    assert_string_equal(u.params[1].value, "a b");
    bolt_uri_clear(&u);
}

static void test_bolt_uri__rejects_malformed(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",           "localhost:7687",      "http://h:7474",   "bolt://",          "bolt://:7687",
        "bolt://h:",  "bolt://h:0",          "bolt://h:70000",  "bolt://h:12a",     "bolt://[::1",
        "bolt://[::1]x", "bolt://h/db",      "bolt://h?x=1",    "neo4j://h?novalue", "neo4j://h?address=x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bolt_uri u;
        eg_error err;
        eg_error_clear(&err);
        int rc = bolt_uri_parse(&u, bad[i], &err);
        if (rc != EG_EINVAL)
            fail_msg("accepted '%s'", bad[i]);
        assert_non_null(strstr(err.message, "URI"));
        bolt_uri_clear(&u);
    }
}

static void test_bolt_uri__redact(void **state)
{
    (void)state;
    char b[128];
    assert_string_equal(bolt_uri_redact("bolt://neo4j:s3cret@db:7687", b, sizeof b), "bolt://***@db:7687");
    /* a password holding '@' or ':' is redacted whole */
    assert_string_equal(bolt_uri_redact("neo4j+s://u:p@ss:w@rd@[::1]:7687?x=1", b, sizeof b),
                        "neo4j+s://***@[::1]:7687?x=1");
    assert_string_equal(bolt_uri_redact("bolt://db:7687", b, sizeof b), "bolt://db:7687");
    /* an '@' after the authority is not user info */
    assert_string_equal(bolt_uri_redact("neo4j://db?policy=a@b", b, sizeof b), "neo4j://db?policy=a@b");
    assert_string_equal(bolt_uri_redact(NULL, b, sizeof b), "");
    char small[12];
    assert_string_equal(bolt_uri_redact("bolt://user:pw@host", small, sizeof small), "bolt://***@");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bolt_uri__schemes_and_defaults),
        cmocka_unit_test(test_bolt_uri__host_port_ipv6),
        cmocka_unit_test(test_bolt_uri__routing_context),
        cmocka_unit_test(test_bolt_uri__rejects_malformed),
        cmocka_unit_test(test_bolt_uri__redact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
