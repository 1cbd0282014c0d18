/*
 * test_value_json.c - bolt_value_to_json for every value type, and
 * bolt_ps_json (JSON -> PackStream).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "bolt/packstream.h"
#include "core/alloc.h"
#include "unit/bolt/ps_test_util.h"

#include <math.h>
#include <string.h>

static bolt_arena *arena;

static int setup(void **state)
{
    (void)state;
    arena = bolt_arena_new(0);
    return arena ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    bolt_arena_free(arena);
    return 0;
}

/* Decode hex (Bolt major `major`), convert, compare compact sorted JSON. */
static void check_json_major(const char *hex, int major, const char *want)
{
    const bolt_value *v = NULL;
    int rc = ps_decode_hex(hex, arena, major, &v, NULL);
    if (rc)
        fail_msg("decode of %s failed: %d", hex, rc);
    json_t *j = bolt_value_to_json(v);
    assert_non_null(j);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    assert_non_null(s);
    if (strcmp(s, want) != 0)
        fail_msg("%s: got %s want %s", hex, s, want);
    free(s);
    json_decref(j);
}

static void check_json(const char *hex, const char *want)
{
    check_json_major(hex, 5, want);
}

/* Build with the writer, then check. */
static void check_written(void (*write)(bolt_ps_writer *), const char *want)
{
    eg_buf b = EG_BUF_INIT(0);
    bolt_ps_writer w;
    bolt_ps_writer_init(&w, &b);
    write(&w);
    assert_int_equal(bolt_ps_writer_error(&w), 0);
    char *hex = ps_tohex(b.ptr, b.len);
    check_json(hex, want);
    free(hex);
    eg_buf_free(&b);
}

static void test_bolt_value_json__scalars(void **state)
{
    (void)state;
    check_json("C0", "null");
    check_json("C3", "true");
    check_json("C2", "false");
    check_json("F0", "-16");
    check_json("CB 7F FF FF FF FF FF FF FF", "9223372036854775807");
    check_json("C1 3F F8 00 00 00 00 00 00", "1.5");
    check_json("C1 7F F8 00 00 00 00 00 00", "null"); /* NaN */
    check_json("C1 FF F0 00 00 00 00 00 00", "null"); /* -Inf */
    check_json("85 68 65 6C 6C 6F", "\"hello\"");
    check_json("83 61 00 62", "\"a\\u0000b\"");
    check_json("82 61 FF", "\"a\xEF\xBF\xBD\"");   /* invalid UTF-8 replaced */
    check_json("83 ED A0 80", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""); /* surrogate */
    check_json("CC 03 01 02 03", "\"AQID\"");
    check_json("CC 00", "\"\"");
    check_json("CC 04 FF FF FF FF", "\"/////w==\"");
}

static void test_bolt_value_json__collections(void **state)
{
    (void)state;
    check_json("93 01 81 61 90", "[1,\"a\",[]]");
    check_json("A2 81 62 01 81 61 A1 81 63 C0", "{\"a\":{\"c\":null},\"b\":1}");
    check_json("A2 81 61 01 81 61 02", "{\"a\":2}");  /* last duplicate wins */
    check_json("A1 81 FF 01", "{\"\xEF\xBF\xBD\":1}"); /* invalid key */
    check_json("A0", "{}");
}

static void test_bolt_value_json__graph(void **state)
{
    (void)state;
    check_json("B4 4E 01 91 81 41 A1 81 6B 81 76 83 34 3A 78",
               "{\"elementId\":\"4:x\",\"labels\":[\"A\"],\"properties\":{\"k\":\"v\"}}");
    check_json_major("B3 4E 07 90 A0", 4, "{\"elementId\":\"7\",\"labels\":[],\"properties\":{}}");
    check_json("B8 52 01 02 03 81 54 A1 81 77 01 81 31 81 32 81 33",
               "{\"elementId\":\"1\",\"endNodeElementId\":\"3\",\"properties\":{\"w\":1},"
               "\"startNodeElementId\":\"2\",\"type\":\"T\"}");
    check_json_major("B5 52 01 02 03 81 54 A0", 4,
                     "{\"elementId\":\"1\",\"endNodeElementId\":\"3\",\"properties\":{},"
                     "\"startNodeElementId\":\"2\",\"type\":\"T\"}");
    check_json("B4 72 01 81 54 A0 81 31", "{\"elementId\":\"1\",\"properties\":{},\"type\":\"T\"}");
    /* (a)<-[r]-(b): rel index -1 means traversed against its direction */
    check_json("B3 50 92 B4 4E 01 90 A0 81 61 B4 4E 02 90 A0 81 62 91 B4 72 09 81 54 A0 81 78 92 FF 01",
               "{\"nodes\":[{\"elementId\":\"a\",\"labels\":[],\"properties\":{}},"
               "{\"elementId\":\"b\",\"labels\":[],\"properties\":{}}],"
               "\"relationships\":[{\"elementId\":\"x\",\"endNodeElementId\":\"a\",\"properties\":{},"
               "\"startNodeElementId\":\"b\",\"type\":\"T\"}]}");
    check_json("B3 50 92 B4 4E 01 90 A0 81 61 B4 4E 02 90 A0 81 62 91 B4 72 09 81 54 A0 81 78 92 01 01",
               "{\"nodes\":[{\"elementId\":\"a\",\"labels\":[],\"properties\":{}},"
               "{\"elementId\":\"b\",\"labels\":[],\"properties\":{}}],"
               "\"relationships\":[{\"elementId\":\"x\",\"endNodeElementId\":\"b\",\"properties\":{},"
               "\"startNodeElementId\":\"a\",\"type\":\"T\"}]}");
    /* bad indices: parts as sent */
    check_json("B3 50 91 B4 4E 01 90 A0 81 61 91 B4 72 09 81 54 A0 81 78 92 05 07",
               "{\"nodes\":[{\"elementId\":\"a\",\"labels\":[],\"properties\":{}}],"
               "\"relationships\":[{\"elementId\":\"x\",\"properties\":{},\"type\":\"T\"}]}");
    check_json("B3 50 90 90 90", "{\"nodes\":[],\"relationships\":[]}");
}

static void w_temporals(bolt_ps_writer *w)
{
    bolt_ps_list_begin(w, 12);
    bolt_ps_date(w, 0);
    bolt_ps_date(w, -1);
    bolt_ps_date(w, 19723);
    bolt_ps_date(w, -719528);
    bolt_ps_date(w, -719529);
    bolt_ps_date(w, 2932897);
    bolt_ps_time(w, 3723000000000LL, 3600);
    bolt_ps_time(w, 3723500000000LL, -5400);
    bolt_ps_time(w, 0, 0);
    bolt_ps_local_time(w, 1);
    bolt_ps_local_time(w, 86399999999000LL);
    bolt_ps_time(w, 0, 3661);
}

static void test_bolt_value_json__dates_and_times(void **state)
{
    (void)state;
    check_written(w_temporals, "[\"1970-01-01\",\"1969-12-31\",\"2024-01-01\",\"0000-01-01\","
                               "\"-0001-12-31\",\"+10000-01-01\",\"01:02:03+01:00\","
                               "\"01:02:03.5-01:30\",\"00:00:00Z\",\"00:00:00.000000001\","
                               "\"23:59:59.999999\",\"00:00:00+01:01:01\"]");
}

static void w_datetimes(bolt_ps_writer *w)
{
    bolt_ps_list_begin(w, 9);
    bolt_ps_datetime(w, -1, 0, 0);
    bolt_ps_datetime(w, 0, 0, 3600);
    bolt_ps_datetime(w, -1, 500000000, -5400);
    bolt_ps_datetime(w, 1704067200, 123000, 0);
    bolt_ps_datetime_zone_id(w, 0, 0, "Europe/Paris");
    bolt_ps_datetime_zone_id(w, -62135596800LL, 1, "UTC"); /* 0001-01-01 */
    bolt_ps_local_datetime(w, 86401, 0);
    bolt_ps_local_datetime(w, -86401, 1000000);
    /* nanos out of range get folded into seconds */
    bolt_ps_local_datetime(w, 0, -1);
}

static void test_bolt_value_json__datetimes(void **state)
{
    (void)state;
    check_written(w_datetimes, "[\"1969-12-31T23:59:59Z\",\"1970-01-01T01:00:00+01:00\","
                               "\"1969-12-31T22:29:59.5-01:30\",\"2024-01-01T00:00:00.000123Z\","
                               "\"1970-01-01T00:00:00Z[Europe/Paris]\","
                               "\"0001-01-01T00:00:00.000000001Z[UTC]\",\"1970-01-02T00:00:01\","
                               "\"1969-12-30T23:59:59.001\",\"1969-12-31T23:59:59.999999999\"]");
    /* legacy 4.4 structures: seconds are local already */
    check_json_major("B3 46 C9 0E 10 00 C9 0E 10", 4, "\"1970-01-01T01:00:00+01:00\"");
    check_json_major("B3 66 00 00 83 55 54 43", 4, "\"1970-01-01T00:00:00[UTC]\"");
    /* absurd values don't overflow: raw rendering */
    check_json("B3 49 CB 7F FF FF FF FF FF FF FF 00 C9 0E 10", "\"DateTime(9223372036854775807,0,3600)\"");
    check_json("B3 49 00 00 CB 7F FF FF FF FF FF FF FF", "\"DateTime(0,0,9223372036854775807)\"");
    check_json("B1 44 CB 80 00 00 00 00 00 00 00", "\"Date(-9223372036854775808)\"");
    check_json("B1 74 FF", "\"LocalTime(-1)\"");
    check_json("B2 64 CB 80 00 00 00 00 00 00 00 CB 80 00 00 00 00 00 00 00",
               "\"LocalDateTime(-9223372036854775808,-9223372036854775808)\"");
}

static void w_durations(bolt_ps_writer *w)
{
    bolt_ps_list_begin(w, 8);
    bolt_ps_duration(w, 14, 3, 3723, 500000000);
    bolt_ps_duration(w, 0, 0, 0, 0);
    bolt_ps_duration(w, 1, 0, 0, 0);
    bolt_ps_duration(w, 0, 0, -1, 500000000);
    bolt_ps_duration(w, 0, 0, 0, -1);
    bolt_ps_duration(w, -13, -1, -3600, 0);
    bolt_ps_duration(w, 0, 0, 59, 1500000000);
    bolt_ps_duration(w, 0, 2, 0, 0);
}

static void test_bolt_value_json__durations(void **state)
{
    (void)state;
    check_written(w_durations, "[\"P1Y2M3DT1H2M3.5S\",\"PT0S\",\"P1M\",\"PT-0.5S\","
                               "\"PT-0.000000001S\",\"P-1Y-1M-1DT-1H\",\"PT1M0.5S\",\"P2D\"]");
    check_json("B4 45 CB 80 00 00 00 00 00 00 00 CB 80 00 00 00 00 00 00 00 CB 80 00 00 00 00 00 00 00 "
               "CB 80 00 00 00 00 00 00 00",
               "\"Duration(-9223372036854775808,-9223372036854775808,-9223372036854775808)\"");
}

static void test_bolt_value_json__points_and_structs(void **state)
{
    (void)state;
    check_json("B3 58 C9 1C 23 C1 3F F0 00 00 00 00 00 00 C1 40 00 00 00 00 00 00 00",
               "{\"srid\":7203,\"x\":1.0,\"y\":2.0}");
    check_json("B4 59 C9 13 73 C1 3F F0 00 00 00 00 00 00 C1 40 00 00 00 00 00 00 00 "
               "C1 40 08 00 00 00 00 00 00",
               "{\"srid\":4979,\"x\":1.0,\"y\":2.0,\"z\":3.0}");
    check_json("B2 7A 01 C0", "{\"fields\":[1,null],\"tag\":122}");
    check_json("B0 7A", "{\"fields\":[],\"tag\":122}");
    assert_true(json_is_null(bolt_value_to_json(NULL)));
}

static void test_bolt_value_json__ps_json(void **state)
{
    (void)state;
    json_error_t je;
    json_t *j = json_loads("{\"a\":[1,2.5,\"x\",null,true,false,{}],\"b\":-200}", 0, &je);
    assert_non_null(j);
    eg_buf b = EG_BUF_INIT(0);
    bolt_ps_writer w;
    bolt_ps_writer_init(&w, &b);
    bolt_ps_json(&w, j);
    assert_int_equal(bolt_ps_writer_error(&w), 0);
    /* jansson keeps insertion order */
    assert_buf_hex(&b, "A2 81 61 97 01 C1 40 04 00 00 00 00 00 00 81 78 C0 C3 C2 A0 81 62 C9 FF 38");
    /* and back */
    const bolt_value *v;
    assert_int_equal(bolt_ps_decode((const uint8_t *)b.ptr, b.len, arena, 5, &v, NULL, NULL), 0);
    json_t *back = bolt_value_to_json(v);
    assert_true(json_equal(j, back));
    json_decref(back);
    json_decref(j);
    eg_buf_reset(&b);
    bolt_ps_json(&w, NULL);
    assert_buf_hex(&b, "C0");
    /* depth limit applies to the writer too */
    json_t *deep = json_array();
    for (int i = 0; i < 100; i++) {
        json_t *outer = json_array();
        json_array_append_new(outer, deep);
        deep = outer;
    }
    eg_buf_reset(&b);
    bolt_ps_json(&w, deep);
    assert_int_equal(bolt_ps_writer_error(&w), EG_ETOOBIG);
    json_decref(deep);
    eg_buf_free(&b);
}

/* Route jansson through eg_malloc so allocation failures can be injected. */
static void *jmalloc(size_t n)
{
    return eg_malloc(n);
}

static void jfree(void *p)
{
    eg_free(p);
}

static void test_bolt_value_json__alloc_failure_torture(void **state)
{
    (void)state;
    const char *hex = "93 B3 50 92 B4 4E 01 91 81 41 A1 81 6B 81 76 81 61 B4 4E 02 90 A0 81 62 91 B4 72 09 "
                      "81 54 A1 81 77 CC 02 01 02 81 78 92 FF 01 "
                      "A3 81 61 B3 49 01 02 03 81 62 B4 45 01 02 03 04 81 63 B3 58 01 C1 00 00 00 00 00 00 "
                      "00 00 C1 00 00 00 00 00 00 00 00 "
                      "B3 69 01 02 8C 45 75 72 6F 70 65 2F 50 61 72 69 73";
    const bolt_value *v;
    assert_int_equal(ps_decode_hex(hex, arena, 5, &v, NULL), 0);
    json_t *ref = bolt_value_to_json(v);
    assert_non_null(ref);
    json_set_alloc_funcs(jmalloc, jfree);
    int failures = 0;
    for (unsigned long k = 1;; k++) {
        eg_alloc_fail_at(k, 0);
        json_t *j = bolt_value_to_json(v);
        unsigned long made = eg_alloc_fail_at(0, 0);
        if (made < k) {
            assert_non_null(j);
            assert_true(json_equal(j, ref));
            json_decref(j);
            break;
        }
        failures++;
        assert_null(j); /* every failure surfaces; ASan checks nothing leaks */
    }
    json_set_alloc_funcs(malloc, free);
    json_decref(ref);
    assert_true(failures > 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bolt_value_json__scalars),
        cmocka_unit_test(test_bolt_value_json__collections),
        cmocka_unit_test(test_bolt_value_json__graph),
        cmocka_unit_test(test_bolt_value_json__dates_and_times),
        cmocka_unit_test(test_bolt_value_json__datetimes),
        cmocka_unit_test(test_bolt_value_json__durations),
        cmocka_unit_test(test_bolt_value_json__points_and_structs),
        cmocka_unit_test(test_bolt_value_json__ps_json),
        cmocka_unit_test(test_bolt_value_json__alloc_failure_torture),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
