/*
 * test_bolt_types.c - every PackStream/Cypher type survives `RETURN $x`
 * against a real Neo4j, and graph structures come back with element ids.
 *
 * Method: the value is written once into the parameters and once into a
 * reference buffer; what comes back is re-encoded with bolt_ps_value and
 * must be byte-identical (so ints at every encoding boundary, unicode,
 * 1 MB strings, temporal and spatial structures are all checked exactly).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bolt/conn.h"
#include "core/clock.h"
#include "support/testenv.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bolt_config g_cfg;
static bolt_conn *g_c;

typedef void (*write_fn)(bolt_ps_writer *w, const void *arg);

static void roundtrip(const char *what, write_fn fn, const void *arg)
{
    eg_error err;
    bolt_params *p = bolt_params_new();
    fn(bolt_params_add(p, "x"), arg);
    eg_buf want = EG_BUF_INIT(64u << 20);
    bolt_ps_writer w;
    bolt_ps_writer_init(&w, &want);
    fn(&w, arg);
    assert_int_equal(bolt_ps_writer_error(&w), 0);
    bolt_result *r = NULL;
    if (bolt_conn_run(g_c, "RETURN $x AS x", p, NULL, &r, &err) < 0)
        fail_msg("%s: run: %s %s", what, err.neo4j_code, err.message);
    const bolt_value *rec;
    if (bolt_result_next(r, &rec, &err) != 1)
        fail_msg("%s: no record: %s", what, err.message);
    eg_buf got = EG_BUF_INIT(64u << 20);
    bolt_ps_writer_init(&w, &got);
    bolt_ps_value(&w, bolt_value_at(rec, 0));
    if (got.len != want.len || memcmp(got.ptr, want.ptr, got.len) != 0)
        fail_msg("%s: value changed in the round trip (sent %zu bytes, got %zu, type %s)", what,
                 want.len, got.len, bolt_type_name(bolt_value_type(bolt_value_at(rec, 0))));
    assert_int_equal(bolt_result_next(r, &rec, &err), 0);
    bolt_result_free(r);
    bolt_params_free(p);
    eg_buf_free(&want);
    eg_buf_free(&got);
}

static void w_null(bolt_ps_writer *w, const void *a) { (void)a; bolt_ps_null(w); }
static void w_bool(bolt_ps_writer *w, const void *a) { bolt_ps_bool(w, *(const bool *)a); }
static void w_int(bolt_ps_writer *w, const void *a) { bolt_ps_int(w, *(const int64_t *)a); }
static void w_float(bolt_ps_writer *w, const void *a) { bolt_ps_float(w, *(const double *)a); }
static void w_str(bolt_ps_writer *w, const void *a) { bolt_ps_str(w, (const char *)a); }
static void w_bytes(bolt_ps_writer *w, const void *a) { (void)a; bolt_ps_bytes(w, "\x00\x01\xFE\xFF", 4); }
static void w_list(bolt_ps_writer *w, const void *a)
{
    (void)a;
    bolt_ps_list_begin(w, 5);
    bolt_ps_int(w, 1);
    bolt_ps_str(w, "two");
    bolt_ps_null(w);
    bolt_ps_float(w, 2.5);
    bolt_ps_list_begin(w, 1);
    bolt_ps_bool(w, true);
}
static void w_map1(bolt_ps_writer *w, const void *a)
{
    (void)a;
    bolt_ps_map_begin(w, 1);
    bolt_ps_str(w, "k");
    bolt_ps_list_begin(w, 2);
    bolt_ps_int(w, 1);
    bolt_ps_str(w, "ü");
}
static void w_date(bolt_ps_writer *w, const void *a) { (void)a; bolt_ps_date(w, 20000); }
static void w_time(bolt_ps_writer *w, const void *a) { (void)a; bolt_ps_time(w, 45296789000000LL, 3600); }
static void w_ltime(bolt_ps_writer *w, const void *a) { (void)a; bolt_ps_local_time(w, 45296000000123LL); }
static void w_dt(bolt_ps_writer *w, const void *a) { (void)a; bolt_ps_datetime(w, 1700000000, 123456789, -18000); }
static void w_dtz(bolt_ps_writer *w, const void *a)
{
    (void)a;
    bolt_ps_datetime_zone_id(w, 1700000000, 5, "Europe/Paris");
}
static void w_ldt(bolt_ps_writer *w, const void *a) { (void)a; bolt_ps_local_datetime(w, 1700000000, 42); }
static void w_dur(bolt_ps_writer *w, const void *a) { (void)a; bolt_ps_duration(w, 14, 3, 7200, 5); }
static void w_p2(bolt_ps_writer *w, const void *a) { (void)a; bolt_ps_point2d(w, 4326, 2.35, 48.85); }
static void w_p3(bolt_ps_writer *w, const void *a) { (void)a; bolt_ps_point3d(w, 9157, 1.5, -2.5, 3.25); }

static void test_bolt_types__scalars(void **state)
{
    (void)state;
    roundtrip("null", w_null, NULL);
    bool t = true, f = false;
    roundtrip("true", w_bool, &t);
    roundtrip("false", w_bool, &f);
    static const int64_t ints[] = {0, 1, -1, -16, -17, 127, 128, -128, -129, 32767, 32768, -32768,
                                   -32769, 2147483647LL, 2147483648LL, -2147483648LL, -2147483649LL,
                                   INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "int %lld", (long long)ints[i]);
        roundtrip(what, w_int, &ints[i]);
    }
    static const double fl[] = {0.0, -0.0, 3.141592653589793, -1e-308, 1.7976931348623157e308, INFINITY};
    for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++)
        roundtrip("float", w_float, &fl[i]);
    roundtrip("empty string", w_str, "");
    roundtrip("unicode", w_str, "héllo wörld ✓ 日本語 😀");
    roundtrip("bytes", w_bytes, NULL);
}

static void test_bolt_types__big_string(void **state)
{
    (void)state;
    size_t n = 1u << 20;
    char *s = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)('a' + i % 26);
    s[n] = '\0';
    roundtrip("1 MB string", w_str, s);
    free(s);
}

static void test_bolt_types__collections(void **state)
{
    (void)state;
    roundtrip("list", w_list, NULL);
    roundtrip("map", w_map1, NULL);
    /* Larger map through JSON: compare semantically (key order may change). */
    eg_error err;
    bolt_params *p = bolt_params_new();
    json_t *m = json_pack("{s:i,s:s,s:[b,n],s:{s:f}}", "a", 1, "b", "x", "c", 1, "d", "e", 0.5);
    bolt_params_json(p, "x", m);
    json_t *rows = NULL;
    assert_int_equal(bolt_conn_query_json(g_c, "RETURN $x AS x", p, NULL, &rows, &err), 0);
    assert_true(json_equal(json_object_get(json_array_get(rows, 0), "x"), m));
    json_decref(rows);
    json_decref(m);
    bolt_params_free(p);
}

static void test_bolt_types__temporal_and_spatial(void **state)
{
    (void)state;
    roundtrip("date", w_date, NULL);
    roundtrip("time", w_time, NULL);
    roundtrip("localtime", w_ltime, NULL);
    roundtrip("datetime offset", w_dt, NULL);
    roundtrip("datetime zone id", w_dtz, NULL);
    roundtrip("localdatetime", w_ldt, NULL);
    roundtrip("duration", w_dur, NULL);
    roundtrip("point 2D", w_p2, NULL);
    roundtrip("point 3D", w_p3, NULL);
}

static void test_bolt_types__graph_structures(void **state)
{
    (void)state;
    eg_error err;
    char run[17];
    eg_rand_hex(run, 8);
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "run", run);
    bolt_result *r = NULL;
    assert_int_equal(bolt_conn_begin(g_c, NULL, &err), 0);
    assert_int_equal(bolt_conn_run(g_c,
                                   "CREATE path = (a:BoltTypesTest {run: $run, name: 'a'})"
                                   "-[k:KNOWS {since: 2020}]->(b:BoltTypesTest {run: $run, name: 'b'}) "
                                   "RETURN a, k, b, path",
                                   p, NULL, &r, &err),
                     0);
    const bolt_value *rec;
    assert_int_equal(bolt_result_next(r, &rec, &err), 1);
    const bolt_value *a = bolt_value_at(rec, 0), *k = bolt_value_at(rec, 1), *b = bolt_value_at(rec, 2),
                     *path = bolt_value_at(rec, 3);
    assert_int_equal(bolt_value_type(a), BOLT_NODE);
    assert_int_equal(a->u.node.nlabels, 1);
    assert_string_equal(a->u.node.labels[0].ptr, "BoltTypesTest");
    assert_string_equal(bolt_value_cstr(bolt_value_get(a->u.node.props, "name")), "a");
    assert_true(a->u.node.element_id.len > 0);
    assert_int_equal(bolt_value_type(k), BOLT_RELATIONSHIP);
    assert_string_equal(k->u.rel.type.ptr, "KNOWS");
    assert_int_equal(bolt_value_int(bolt_value_get(k->u.rel.props, "since"), 0), 2020);
    assert_string_equal(k->u.rel.start_element_id.ptr, a->u.node.element_id.ptr);
    assert_string_equal(k->u.rel.end_element_id.ptr, b->u.node.element_id.ptr);
    assert_true(k->u.rel.element_id.len > 0);
    assert_int_equal(bolt_value_type(path), BOLT_PATH);
    assert_int_equal(bolt_value_len(path->u.path.nodes), 2);
    assert_int_equal(bolt_value_len(path->u.path.rels), 1);
    assert_int_equal(bolt_value_type(bolt_value_at(path->u.path.rels, 0)), BOLT_UNBOUND_REL);
    assert_int_equal(bolt_value_len(path->u.path.indices), 2);
    json_t *j = bolt_value_to_json(a);
    assert_non_null(json_object_get(j, "elementId"));
    json_decref(j);
    bolt_result_free(r);
    assert_int_equal(bolt_conn_rollback(g_c, &err), 0);
    json_t *rows;
    assert_int_equal(bolt_conn_query_json(g_c, "MATCH (n:BoltTypesTest {run: $run}) RETURN count(n) AS n",
                                          p, NULL, &rows, &err),
                     0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "n")), 0);
    json_decref(rows);
    bolt_params_free(p);
}

static int setup(void **state)
{
    (void)state;
    eg_error err;
    if (bolt_conn_open(&g_c, &g_cfg, &err) < 0) {
        fprintf(stderr, "connect: %s\n", err.message);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    bolt_conn_free(g_c);
    return 0;
}

int main(void)
{
    int rc = eg_testenv_neo4j(&g_cfg);
    if (rc != 0)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bolt_types__scalars),
        cmocka_unit_test(test_bolt_types__big_string),
        cmocka_unit_test(test_bolt_types__collections),
        cmocka_unit_test(test_bolt_types__temporal_and_spatial),
        cmocka_unit_test(test_bolt_types__graph_structures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
