/*
 * test_bolt_value_json.c - our JSON rendering of temporal values agrees
 * with Neo4j's own toString() (the oracle), against a real server.
 *
 * Each case runs `RETURN <expr> AS v, toString(<expr>) AS s` and compares
 * bolt_value_to_json(v) with s.  Where our format differs from java.time's
 * by design (DateTimeZoneId: we render the UTC instant plus [zone], having
 * no tz database), the expected text is given explicitly.  Negative epoch
 * seconds, sub-second parts, offsets with minutes and seconds, years
 * outside 0000-9999 and negative durations are all covered.
 *
 * Graph values: a path created and read back (against its direction) in a
 * transaction that is rolled back must render nodes in path order and
 * relationships with the start/end element ids Neo4j itself reports.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "bolt/conn.h"
#include "core/clock.h"
#include "support/testenv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bolt_config g_cfg;
static bolt_conn *g_c;

static int setup(void **state)
{
    (void)state;
    eg_error err;
    if (bolt_conn_open(&g_c, &g_cfg, &err) < 0) {
        fprintf(stderr, "connect: %s\n", err.message);
        return -1;
    }
    int major = 0, minor = 0;
    bolt_conn_version(g_c, &major, &minor);
    return major == (g_cfg.disable_5 ? 4 : 5) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    bolt_conn_free(g_c);
    return 0;
}

/* Run the expression; return our JSON (new, free()) and Neo4j's toString (new). */
static void eval(const char *expr, char **ours, char **theirs)
{
    char q[512];
    snprintf(q, sizeof q, "RETURN %s AS v, toString(%s) AS s", expr, expr);
    eg_error err;
    bolt_result *r = NULL;
    if (bolt_conn_run(g_c, q, NULL, NULL, &r, &err) < 0)
        fail_msg("%s: %s %s", expr, err.neo4j_code, err.message);
    const bolt_value *rec;
    if (bolt_result_next(r, &rec, &err) != 1)
        fail_msg("%s: no record: %s", expr, err.message);
    json_t *j = bolt_value_to_json(bolt_value_at(rec, 0));
    assert_non_null(j);
    assert_true(json_is_string(j));
    *ours = strdup(json_string_value(j));
    json_decref(j);
    const char *s = bolt_value_cstr(bolt_value_at(rec, 1));
    assert_non_null(s);
    *theirs = strdup(s);
    assert_int_equal(bolt_result_next(r, &rec, &err), 0);
    bolt_result_free(r);
}

static void check_same(const char *expr)
{
    char *ours, *theirs;
    eval(expr, &ours, &theirs);
    if (strcmp(ours, theirs) != 0)
        fail_msg("%s: ours %s, Neo4j %s", expr, ours, theirs);
    free(ours);
    free(theirs);
}

static void check_ours(const char *expr, const char *want)
{
    char *ours, *theirs;
    eval(expr, &ours, &theirs);
    if (strcmp(ours, want) != 0)
        fail_msg("%s: ours %s, want %s (Neo4j says %s)", expr, ours, want, theirs);
    free(ours);
    free(theirs);
}

static void test_bolt_value_json__dates(void **state)
{
    (void)state;
    check_same("date('2024-02-29')");
    check_same("date('1969-12-31')");
    check_same("date('1900-03-01')");
    check_same("date('0001-01-01')");
    check_same("date('-0001-12-31')");
    check_same("date('+12345-06-07')");
}

static void test_bolt_value_json__times(void **state)
{
    (void)state;
    check_same("localtime('12:34:56.123456789')");
    check_same("localtime('12:34:56.5')");
    check_same("localtime('00:00:01.000001')");
    check_same("time('12:34:56.789+01:00')");
    check_same("time('23:59:59-05:30')");
    check_same("time('01:02:03Z')");
}

static void test_bolt_value_json__datetimes(void **state)
{
    (void)state;
    check_same("datetime('2024-01-02T03:04:05.123+01:00')");
    check_same("datetime('1969-12-31T23:59:59.999Z')");
    check_same("datetime('1960-06-15T12:00:01-03:30')");
    check_same("datetime('1970-01-01T00:00:01+14:00')");
    check_same("datetime({epochSeconds: -1, nanosecond: 1})");
    check_same("localdatetime('1955-11-05T06:15:01.000000001')");
    check_same("localdatetime('2024-12-31T23:59:59')");
    /* zone ids: we render the UTC instant and the zone (RFC 9557) */
    check_ours("datetime('2024-07-01T12:00:01[Europe/Paris]')", "2024-07-01T10:00:01Z[Europe/Paris]");
    check_ours("datetime('1969-12-31T20:00:01.5[America/New_York]')",
               "1970-01-01T01:00:01.5Z[America/New_York]");
}

static void test_bolt_value_json__durations(void **state)
{
    (void)state;
    check_same("duration('P1Y2M3DT4H5M6.5S')");
    check_same("duration('PT0S')");
    check_same("duration('P14D')");
    check_same("duration('PT-1.5S')");
    check_same("duration('PT90M')");
    check_same("duration({months: -13, days: -1, seconds: -3600})");
    check_same("duration('PT0.000000001S')");
    check_same("duration.between(datetime('2024-01-01T00:00:00Z'), datetime('2023-12-31T23:59:58.5Z'))");
}

/* String at index i of a list value (borrowed). */
static const char *str_at(const bolt_value *list, size_t i)
{
    const char *s = bolt_value_cstr(bolt_value_at(list, i));
    assert_non_null(s);
    return s;
}

static void test_bolt_value_json__graph(void **state)
{
    (void)state;
    eg_error err;
    char run[17];
    eg_rand_hex(run, (sizeof run - 1) / 2);
    assert_int_equal(bolt_conn_begin(g_c, NULL, &err), 0);
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "run", run);
    bolt_result *r = NULL;
    /* (a)-[:PS_JSON_R]->(b), read back from b: the relationship is traversed
     * against its direction, so the path's index is negative. */
    const char *q = "CREATE (a:PsJsonTest {run: $run, name: 'a'})-[:PS_JSON_R {w: 1}]->"
                    "(b:PsJsonTest {run: $run, name: 'b'}) "
                    "WITH a, b MATCH p = (b)<-[:PS_JSON_R]-(a) "
                    "RETURN p, [n IN nodes(p) | elementId(n)] AS ns, "
                    "[x IN relationships(p) | [elementId(x), elementId(startNode(x)), "
                    "elementId(endNode(x))]] AS rs, a";
    if (bolt_conn_run(g_c, q, p, NULL, &r, &err) < 0)
        fail_msg("run: %s %s", err.neo4j_code, err.message);
    const bolt_value *rec;
    assert_int_equal(bolt_result_next(r, &rec, &err), 1);
    json_t *j = bolt_value_to_json(bolt_value_at(rec, 0));
    assert_non_null(j);
    const bolt_value *ns = bolt_value_at(rec, 1);
    const bolt_value *rs = bolt_value_at(bolt_value_at(rec, 2), 0);
    json_t *nodes = json_object_get(j, "nodes"), *rels = json_object_get(j, "relationships");
    assert_int_equal(json_array_size(nodes), 2);
    assert_int_equal(json_array_size(rels), 1);
    /* nodes in path order: b first */
    for (size_t i = 0; i < 2; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(nodes, i), "elementId")),
                            str_at(ns, i));
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(nodes, 0),
                                                                          "properties"),
                                                          "name")),
                        "b");
    json_t *rel = json_array_get(rels, 0);
    assert_string_equal(json_string_value(json_object_get(rel, "elementId")), str_at(rs, 0));
    assert_string_equal(json_string_value(json_object_get(rel, "startNodeElementId")), str_at(rs, 1));
    assert_string_equal(json_string_value(json_object_get(rel, "endNodeElementId")), str_at(rs, 2));
    assert_string_equal(json_string_value(json_object_get(rel, "type")), "PS_JSON_R");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(rel, "properties"), "w")), 1);
    json_decref(j);
    /* a plain node */
    j = bolt_value_to_json(bolt_value_at(rec, 3));
    assert_string_equal(json_string_value(json_object_get(j, "elementId")), str_at(rs, 1));
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "labels"), 0)), "PsJsonTest");
    json_decref(j);
    assert_int_equal(bolt_result_next(r, &rec, &err), 0);
    bolt_result_free(r);
    bolt_params_free(p);
    assert_int_equal(bolt_conn_rollback(g_c, &err), 0);
}

int main(void)
{
    int rc = eg_testenv_neo4j(&g_cfg);
    if (rc)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bolt_value_json__dates),
        cmocka_unit_test(test_bolt_value_json__times),
        cmocka_unit_test(test_bolt_value_json__datetimes),
        cmocka_unit_test(test_bolt_value_json__durations),
        cmocka_unit_test(test_bolt_value_json__graph),
    };
    rc = cmocka_run_group_tests_name("bolt 5", tests, setup, teardown);
    /* Bolt 4.4 carries the same temporals (UTC DateTime via patch_bolt, or
     * the legacy 'F'/'f' structures); graph element ids are not sent there. */
    g_cfg.disable_5 = true;
    const struct CMUnitTest tests44[] = {
        cmocka_unit_test(test_bolt_value_json__dates),
        cmocka_unit_test(test_bolt_value_json__times),
        cmocka_unit_test(test_bolt_value_json__datetimes),
        cmocka_unit_test(test_bolt_value_json__durations),
    };
    rc |= cmocka_run_group_tests_name("bolt 4.4", tests44, setup, teardown) != 0;
    return rc;
}
