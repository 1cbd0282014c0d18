/*
 * test_packstream.c - PackStream v1 writer/decoder: golden vectors from the
 * spec, round trips, malformed input, limits and allocation failures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "bolt/packstream.h"
#include "core/alloc.h"
#include "core/limits.h"
#include "unit/bolt/ps_test_util.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct fx {
    eg_buf buf;
    bolt_ps_writer w;
    bolt_arena *a;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    eg_buf_init(&f->buf, 0);
    bolt_ps_writer_init(&f->w, &f->buf);
    f->a = bolt_arena_new(0);
    *state = f;
    return f->a ? 0 : -1;
}

static int teardown(void **state)
{
    fx *f = *state;
    eg_buf_free(&f->buf);
    bolt_arena_free(f->a);
    free(f);
    return 0;
}

static void reset(fx *f)
{
    eg_buf_reset(&f->buf);
    bolt_ps_writer_init(&f->w, &f->buf);
    bolt_arena_reset(f->a);
}

/* Decode the writer's bytes, expecting success and full consumption. */
static const bolt_value *decode_buf(fx *f, int major)
{
    const bolt_value *v = NULL;
    size_t used = 0;
    eg_error e;
    int rc = bolt_ps_decode((const uint8_t *)f->buf.ptr, f->buf.len, f->a, major, &v, &used, &e);
    if (rc)
        fail_msg("decode failed: %s", e.message);
    assert_int_equal(used, f->buf.len);
    return v;
}

/* decode(bytes) -> re-encode must give the same bytes. */
static void assert_reencode_same(fx *f, const uint8_t *p, size_t n, int major)
{
    const bolt_value *v = NULL;
    size_t used = 0;
    assert_int_equal(bolt_ps_decode(p, n, f->a, major, &v, &used, NULL), 0);
    assert_int_equal(used, n);
    eg_buf out = EG_BUF_INIT(0);
    bolt_ps_writer w;
    bolt_ps_writer_init(&w, &out);
    bolt_ps_value_major(&w, v, major);
    assert_int_equal(bolt_ps_writer_error(&w), 0);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.ptr, p, n);
    eg_buf_free(&out);
}

/* ------------------------------------------------------------ golden */

static void test_bolt_packstream__int_boundaries(void **state)
{
    fx *f = *state;
    static const struct {
        int64_t v;
        const char *hex;
    } cases[] = {
        {0, "00"},
        {1, "01"},
        {127, "7F"},
        {-1, "FF"},
        {-16, "F0"},
        {-17, "C8 EF"},
        {-128, "C8 80"},
        {128, "C9 00 80"},
        {-129, "C9 FF 7F"},
        {32767, "C9 7F FF"},
        {-32768, "C9 80 00"},
        {32768, "CA 00 00 80 00"},
        {-32769, "CA FF FF 7F FF"},
        {2147483647LL, "CA 7F FF FF FF"},
        {-2147483648LL, "CA 80 00 00 00"},
        {2147483648LL, "CB 00 00 00 00 80 00 00 00"},
        {-2147483649LL, "CB FF FF FF FF 7F FF FF FF"},
        {INT64_MAX, "CB 7F FF FF FF FF FF FF FF"},
        {INT64_MIN, "CB 80 00 00 00 00 00 00 00"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        reset(f);
        bolt_ps_int(&f->w, cases[i].v);
        assert_buf_hex(&f->buf, cases[i].hex);
        const bolt_value *v = decode_buf(f, 5);
        assert_int_equal(bolt_value_type(v), BOLT_INT);
        assert_true(bolt_value_int(v, 0) == cases[i].v);
    }
}

static void test_bolt_packstream__non_minimal_ints_decode(void **state)
{
    fx *f = *state;
    const bolt_value *v;
    assert_int_equal(ps_decode_hex("C8 01", f->a, 5, &v, NULL), 0);
    assert_int_equal(bolt_value_int(v, 9), 1);
    assert_int_equal(ps_decode_hex("C9 FF FF", f->a, 5, &v, NULL), 0);
    assert_int_equal(bolt_value_int(v, 9), -1);
    assert_int_equal(ps_decode_hex("CB FF FF FF FF FF FF FF FE", f->a, 5, &v, NULL), 0);
    assert_int_equal(bolt_value_int(v, 9), -2);
}

static void test_bolt_packstream__scalars(void **state)
{
    fx *f = *state;
    bolt_ps_null(&f->w);
    bolt_ps_bool(&f->w, true);
    bolt_ps_bool(&f->w, false);
    bolt_ps_float(&f->w, 1.1);
    bolt_ps_float(&f->w, -1.1);
    bolt_ps_float(&f->w, 0.0);
    assert_buf_hex(&f->buf, "C0 C3 C2 C1 3F F1 99 99 99 99 99 9A C1 BF F1 99 99 99 99 99 9A "
                            "C1 00 00 00 00 00 00 00 00");
    const bolt_value *v;
    size_t used;
    const uint8_t *p = (const uint8_t *)f->buf.ptr;
    assert_int_equal(bolt_ps_decode(p, f->buf.len, f->a, 5, &v, &used, NULL), 0);
    assert_int_equal(used, 1);
    assert_true(bolt_value_is_null(v));
    assert_int_equal(bolt_ps_decode(p + 1, 1, f->a, 5, &v, &used, NULL), 0);
    assert_true(bolt_value_bool(v, false));
    assert_int_equal(bolt_ps_decode(p + 2, 1, f->a, 5, &v, &used, NULL), 0);
    assert_false(bolt_value_bool(v, true));
    assert_int_equal(bolt_ps_decode(p + 3, 9, f->a, 5, &v, &used, NULL), 0);
    assert_true(bolt_value_float(v, 0) == 1.1);
    assert_int_equal(bolt_ps_decode(p + 12, 9, f->a, 5, &v, &used, NULL), 0);
    assert_true(bolt_value_float(v, 0) == -1.1);
    /* NaN and infinities survive bit-exactly. */
    reset(f);
    bolt_ps_float(&f->w, INFINITY);
    assert_buf_hex(&f->buf, "C1 7F F0 00 00 00 00 00 00");
    v = decode_buf(f, 5);
    assert_true(isinf(v->u.f) && v->u.f > 0);
}

static void check_sized(fx *f, size_t n, const char *header, void (*write)(fx *, size_t),
                        bolt_type type)
{
    reset(f);
    write(f, n);
    assert_int_equal(bolt_ps_writer_error(&f->w), 0);
    size_t hl;
    uint8_t *h = ps_hex(header, &hl);
    assert_true(f->buf.len >= hl);
    assert_memory_equal(f->buf.ptr, h, hl);
    free(h);
    const bolt_value *v = decode_buf(f, 5);
    assert_int_equal(bolt_value_type(v), type);
    if (type == BOLT_STRING || type == BOLT_BYTES) {
        assert_int_equal(v->u.s.len, n);
        assert_int_equal(v->u.s.ptr[n], '\0');
    } else {
        assert_int_equal(bolt_value_len(v), n);
    }
    assert_reencode_same(f, (const uint8_t *)f->buf.ptr, f->buf.len, 5);
}

static void w_str(fx *f, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, 'x', n);
    s[n] = '\0';
    bolt_ps_str(&f->w, s);
    assert_int_equal(f->buf.len, n + (n < 16 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5));
    free(s);
}

static void w_bytes(fx *f, size_t n)
{
    char *s = calloc(1, n + 1);
    bolt_ps_bytes(&f->w, s, n);
    free(s);
}

static void w_list(fx *f, size_t n)
{
    bolt_ps_list_begin(&f->w, n);
    for (size_t i = 0; i < n; i++)
        bolt_ps_int(&f->w, (int64_t)(i % 100));
}

static void w_map(fx *f, size_t n)
{
    bolt_ps_map_begin(&f->w, n);
    for (size_t i = 0; i < n; i++) {
        char k[32];
        snprintf(k, sizeof k, "k%zu", i);
        bolt_ps_str(&f->w, k);
        bolt_ps_null(&f->w);
    }
}

static void test_bolt_packstream__size_boundaries(void **state)
{
    fx *f = *state;
    check_sized(f, 0, "80", w_str, BOLT_STRING);
    check_sized(f, 15, "8F", w_str, BOLT_STRING);
    check_sized(f, 16, "D0 10", w_str, BOLT_STRING);
    check_sized(f, 255, "D0 FF", w_str, BOLT_STRING);
    check_sized(f, 256, "D1 01 00", w_str, BOLT_STRING);
    check_sized(f, 65535, "D1 FF FF", w_str, BOLT_STRING);
    check_sized(f, 65536, "D2 00 01 00 00", w_str, BOLT_STRING);
    check_sized(f, 0, "CC 00", w_bytes, BOLT_BYTES);
    check_sized(f, 255, "CC FF", w_bytes, BOLT_BYTES);
    check_sized(f, 256, "CD 01 00", w_bytes, BOLT_BYTES);
    check_sized(f, 65535, "CD FF FF", w_bytes, BOLT_BYTES);
    check_sized(f, 65536, "CE 00 01 00 00", w_bytes, BOLT_BYTES);
    check_sized(f, 0, "90", w_list, BOLT_LIST);
    check_sized(f, 15, "9F", w_list, BOLT_LIST);
    check_sized(f, 16, "D4 10", w_list, BOLT_LIST);
    check_sized(f, 255, "D4 FF", w_list, BOLT_LIST);
    check_sized(f, 256, "D5 01 00", w_list, BOLT_LIST);
    check_sized(f, 65535, "D5 FF FF", w_list, BOLT_LIST);
    check_sized(f, 65536, "D6 00 01 00 00", w_list, BOLT_LIST);
    check_sized(f, 0, "A0", w_map, BOLT_MAP);
    check_sized(f, 15, "AF", w_map, BOLT_MAP);
    check_sized(f, 16, "D8 10", w_map, BOLT_MAP);
    check_sized(f, 255, "D8 FF", w_map, BOLT_MAP);
    check_sized(f, 256, "D9 01 00", w_map, BOLT_MAP);
    check_sized(f, 65536, "DA 00 01 00 00", w_map, BOLT_MAP);
}

static void test_bolt_packstream__string_contents(void **state)
{
    fx *f = *state;
    bolt_ps_str(&f->w, "A");
    assert_buf_hex(&f->buf, "81 41");
    reset(f);
    bolt_ps_str(&f->w, "Größenmaßstäbe");
    assert_buf_hex(&f->buf, "D0 12 47 72 C3 B6 C3 9F 65 6E 6D 61 C3 9F 73 74 C3 A4 62 65");
    const bolt_value *v = decode_buf(f, 5);
    assert_string_equal(bolt_value_cstr(v), "Größenmaßstäbe");
    reset(f);
    bolt_ps_strn(&f->w, "a\0b", 3);
    bolt_ps_str(&f->w, NULL);
    assert_buf_hex(&f->buf, "83 61 00 62 C0");
}

static void test_bolt_packstream__structures_golden(void **state)
{
    fx *f = *state;
    static const struct {
        const char *hex;
        bolt_type type;
        int major;
    } cases[] = {
        /* Node(1, ["A"], {k:"v"}, "1") */
        {"B4 4E 01 91 81 41 A1 81 6B 81 76 81 31", BOLT_NODE, 5},
        {"B3 4E 01 91 81 41 A1 81 6B 81 76", BOLT_NODE, 4},
        /* Relationship(1, 2, 3, "T", {}, "1", "2", "3") */
        {"B8 52 01 02 03 81 54 A0 81 31 81 32 81 33", BOLT_RELATIONSHIP, 5},
        {"B5 52 01 02 03 81 54 A0", BOLT_RELATIONSHIP, 4},
        {"B4 72 01 81 54 A0 81 31", BOLT_UNBOUND_REL, 5},
        {"B3 72 01 81 54 A0", BOLT_UNBOUND_REL, 4},
        /* Path([n1, n2], [r], [1, 1]) */
        {"B3 50 92 B4 4E 01 90 A0 81 61 B4 4E 02 90 A0 81 62 91 B4 72 09 81 54 A0 81 78 92 01 01",
         BOLT_PATH, 5},
        {"B3 50 92 B3 4E 01 90 A0 B3 4E 02 90 A0 91 B3 72 09 81 54 A0 92 01 01", BOLT_PATH, 4},
        {"B1 44 C9 4D 0B", BOLT_DATE, 5},
        {"B2 54 CB 00 00 03 62 D4 17 AE 00 C9 0E 10", BOLT_TIME, 5},
        {"B1 74 01", BOLT_LOCAL_TIME, 5},
        {"B3 49 CA 65 92 00 80 00 00", BOLT_DATETIME, 5},
        {"B3 69 FF 00 8C 45 75 72 6F 70 65 2F 50 61 72 69 73", BOLT_DATETIME_ZONE_ID, 5},
        {"B2 64 C9 0E 10 00", BOLT_LOCAL_DATETIME, 5},
        {"B4 45 0E 03 C9 0E 8B CA 1D CD 65 00", BOLT_DURATION, 5},
        {"B3 58 C9 1C 23 C1 3F F0 00 00 00 00 00 00 C1 40 00 00 00 00 00 00 00", BOLT_POINT2D, 5},
        {"B4 59 C9 13 73 C1 3F F0 00 00 00 00 00 00 C1 40 00 00 00 00 00 00 00 "
         "C1 40 08 00 00 00 00 00 00",
         BOLT_POINT3D, 5},
        {"B3 46 C9 0E 10 00 C9 0E 10", BOLT_LEGACY_DATETIME, 4},
        {"B3 66 00 00 83 55 54 43", BOLT_LEGACY_DATETIME_ZONE_ID, 4},
        {"B3 49 01 02 03", BOLT_DATETIME, 4},
        /* Unknown tag and a Bolt message (SUCCESS {}) stay raw. */
        {"B2 7A 01 C0", BOLT_STRUCT, 5},
        {"B1 70 A0", BOLT_STRUCT, 5},
        {"B0 01", BOLT_STRUCT, 5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        reset(f);
        size_t n;
        uint8_t *p = ps_hex(cases[i].hex, &n);
        const bolt_value *v = NULL;
        eg_error e;
        int rc = bolt_ps_decode(p, n, f->a, cases[i].major, &v, NULL, &e);
        if (rc)
            fail_msg("case %zu: %s", i, e.message);
        assert_int_equal(bolt_value_type(v), cases[i].type);
        assert_reencode_same(f, p, n, cases[i].major);
        free(p);
    }
}

static void test_bolt_packstream__structure_fields(void **state)
{
    fx *f = *state;
    const bolt_value *v;
    assert_int_equal(ps_decode_hex("B4 4E 01 92 81 41 81 42 A1 81 6B 81 76 83 34 3A 78", f->a, 5, &v,
                                   NULL),
                     0);
    assert_int_equal(v->u.node.id, 1);
    assert_int_equal(v->u.node.nlabels, 2);
    assert_string_equal(v->u.node.labels[1].ptr, "B");
    assert_string_equal(bolt_value_cstr(bolt_value_get(v->u.node.props, "k")), "v");
    assert_string_equal(v->u.node.element_id.ptr, "4:x");
    /* 4.4 layout: element id empty */
    assert_int_equal(ps_decode_hex("B3 4E 07 90 A0", f->a, 4, &v, NULL), 0);
    assert_int_equal(v->u.node.id, 7);
    assert_int_equal(v->u.node.element_id.len, 0);
    assert_string_equal(v->u.node.element_id.ptr, "");
    assert_int_equal(ps_decode_hex("B8 52 01 02 03 81 54 A0 81 31 81 32 81 33", f->a, 5, &v, NULL), 0);
    assert_int_equal(v->u.rel.start_id, 2);
    assert_int_equal(v->u.rel.end_id, 3);
    assert_string_equal(v->u.rel.type.ptr, "T");
    assert_string_equal(v->u.rel.end_element_id.ptr, "3");
    assert_int_equal(ps_decode_hex("B4 45 0E 03 C9 0E 8B CA 1D CD 65 00", f->a, 5, &v, NULL), 0);
    assert_int_equal(v->u.duration.months, 14);
    assert_int_equal(v->u.duration.days, 3);
    assert_int_equal(v->u.duration.seconds, 3723);
    assert_int_equal(v->u.duration.nanos, 500000000);
    assert_int_equal(ps_decode_hex("B3 49 CA 65 92 00 80 00 00", f->a, 5, &v, NULL), 0);
    assert_int_equal(v->u.temporal.seconds, 1704067200);
    assert_int_equal(ps_decode_hex("B3 69 FF 00 8C 45 75 72 6F 70 65 2F 50 61 72 69 73", f->a, 5, &v,
                                   NULL),
                     0);
    assert_int_equal(v->u.temporal.seconds, -1);
    assert_string_equal(v->u.temporal.tz_id.ptr, "Europe/Paris");
    assert_int_equal(ps_decode_hex("B2 7A 01 C0", f->a, 5, &v, NULL), 0);
    assert_int_equal(v->u.st.tag, 0x7A);
    assert_int_equal(v->u.st.nfields, 2);
    assert_int_equal(bolt_value_int(v->u.st.fields[0], 0), 1);
}

static void test_bolt_packstream__writer_helpers(void **state)
{
    fx *f = *state;
    bolt_ps_date(&f->w, 19723);
    bolt_ps_time(&f->w, 3723000000000LL, 3600);
    bolt_ps_local_time(&f->w, 1);
    bolt_ps_datetime(&f->w, 1704067200, 0, 0);
    bolt_ps_datetime_zone_id(&f->w, -1, 0, "Europe/Paris");
    bolt_ps_local_datetime(&f->w, 3600, 0);
    bolt_ps_duration(&f->w, 14, 3, 3723, 500000000);
    bolt_ps_point2d(&f->w, 7203, 1.0, 2.0);
    bolt_ps_point3d(&f->w, 4979, 1.0, 2.0, 3.0);
    assert_buf_hex(&f->buf, "B1 44 C9 4D 0B "
                            "B2 54 CB 00 00 03 62 D4 17 AE 00 C9 0E 10 "
                            "B1 74 01 "
                            "B3 49 CA 65 92 00 80 00 00 "
                            "B3 69 FF 00 8C 45 75 72 6F 70 65 2F 50 61 72 69 73 "
                            "B2 64 C9 0E 10 00 "
                            "B4 45 0E 03 C9 0E 8B CA 1D CD 65 00 "
                            "B3 58 C9 1C 23 C1 3F F0 00 00 00 00 00 00 C1 40 00 00 00 00 00 00 00 "
                            "B4 59 C9 13 73 C1 3F F0 00 00 00 00 00 00 C1 40 00 00 00 00 00 00 00 "
                            "C1 40 08 00 00 00 00 00 00");
    reset(f);
    double d[2] = {1.0, -2.0};
    float fl[1] = {0.5f};
    int64_t iv[3] = {1, 200, -40000};
    const char *sv[2] = {"a", NULL};
    bolt_ps_float_list(&f->w, d, 2);
    bolt_ps_float32_list(&f->w, fl, 1);
    bolt_ps_int_list(&f->w, iv, 3);
    bolt_ps_str_list(&f->w, sv, 2);
    bolt_ps_struct_begin(&f->w, 0x01, 0);
    assert_buf_hex(&f->buf, "92 C1 3F F0 00 00 00 00 00 00 C1 C0 00 00 00 00 00 00 00 "
                            "91 C1 3F E0 00 00 00 00 00 00 "
                            "93 01 C9 00 C8 CA FF FF 63 C0 "
                            "92 81 61 C0 "
                            "B0 01");
    /* 1536-float vector: one reservation, exact length. */
    reset(f);
    double big[1536];
    for (int i = 0; i < 1536; i++)
        big[i] = i * 0.25;
    bolt_ps_float_list(&f->w, big, 1536);
    assert_int_equal(f->buf.len, 3 + 1536 * 9);
    const bolt_value *v = decode_buf(f, 5);
    assert_int_equal(bolt_value_len(v), 1536);
    assert_true(bolt_value_float(bolt_value_at(v, 1535), 0) == 1535 * 0.25);
}

static void test_bolt_packstream__writer_errors_sticky(void **state)
{
    (void)state;
    eg_buf b = EG_BUF_INIT(4);
    bolt_ps_writer w;
    bolt_ps_writer_init(&w, &b);
    bolt_ps_int(&w, 1);
    assert_int_equal(bolt_ps_writer_error(&w), 0);
    bolt_ps_str(&w, "too long for the cap");
    assert_int_equal(bolt_ps_writer_error(&w), EG_ETOOBIG);
    bolt_ps_null(&w);
    bolt_ps_int(&w, 2);
    assert_int_equal(b.len, 1); /* nothing written after the failure */
    assert_int_equal(bolt_ps_writer_error(&w), EG_ETOOBIG);
    eg_buf_free(&b);

    eg_buf b2 = EG_BUF_INIT(0);
    bolt_ps_writer_init(&w, &b2);
    bolt_ps_struct_begin(&w, 'x', 16);
    assert_int_equal(bolt_ps_writer_error(&w), EG_EINVAL);
    bolt_ps_writer_init(&w, &b2);
    bolt_ps_list_begin(&w, (size_t)UINT32_MAX + 1);
    assert_int_equal(bolt_ps_writer_error(&w), EG_ETOOBIG);
    bolt_ps_writer_init(&w, &b2);
    bolt_ps_list_begin(&w, UINT32_MAX);
    assert_int_equal(bolt_ps_writer_error(&w), 0);
    assert_buf_hex(&b2, "D6 FF FF FF FF");
    eg_buf_free(&b2);
    bolt_ps_writer_init(&w, NULL);
    assert_int_equal(bolt_ps_writer_error(&w), EG_EINVAL);
    bolt_ps_null(&w); /* no crash */
}

/* ------------------------------------------------------------ round trips */

static void write_everything(bolt_ps_writer *w)
{
    bolt_ps_map_begin(w, 12);
    bolt_ps_str(w, "null");
    bolt_ps_null(w);
    bolt_ps_str(w, "ints");
    int64_t iv[] = {0, -16, -17, 127, 128, INT64_MIN, INT64_MAX, 70000};
    bolt_ps_int_list(w, iv, 8);
    bolt_ps_str(w, "f");
    bolt_ps_float(w, -0.0);
    bolt_ps_str(w, "b");
    bolt_ps_bytes(w, "\x00\x01\xff", 3);
    bolt_ps_str(w, "s");
    bolt_ps_str(w, "héllo");
    bolt_ps_str(w, "nested");
    bolt_ps_list_begin(w, 2);
    bolt_ps_map_begin(w, 1);
    bolt_ps_str(w, "x");
    bolt_ps_list_begin(w, 0);
    bolt_ps_bool(w, true);
    bolt_ps_str(w, "date");
    bolt_ps_date(w, -1);
    bolt_ps_str(w, "dt");
    bolt_ps_datetime(w, -86401, 999999999, -3600);
    bolt_ps_str(w, "dtz");
    bolt_ps_datetime_zone_id(w, 0, 1, "America/New_York");
    bolt_ps_str(w, "dur");
    bolt_ps_duration(w, -1, -2, -3, -4);
    bolt_ps_str(w, "p");
    bolt_ps_point3d(w, 9157, -1.5, 2.5, NAN);
    bolt_ps_str(w, "raw");
    bolt_ps_struct_begin(w, 0x7A, 1);
    bolt_ps_str(w, "field");
}

static void test_bolt_packstream__round_trip_everything(void **state)
{
    fx *f = *state;
    write_everything(&f->w);
    assert_int_equal(bolt_ps_writer_error(&f->w), 0);
    const bolt_value *v = decode_buf(f, 5);
    assert_int_equal(bolt_value_len(v), 12);
    assert_true(bolt_value_is_null(bolt_value_get(v, "null")));
    const bolt_value *ints = bolt_value_get(v, "ints");
    assert_true(bolt_value_int(bolt_value_at(ints, 5), 0) == INT64_MIN);
    assert_true(bolt_value_int(bolt_value_at(ints, 6), 0) == INT64_MAX);
    assert_true(signbit(bolt_value_float(bolt_value_get(v, "f"), 1)));
    bolt_str b = bolt_value_str(bolt_value_get(v, "b"));
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.ptr, "\x00\x01\xff", 3);
    assert_string_equal(bolt_value_cstr(bolt_value_get(v, "s")), "héllo");
    const bolt_value *dt = bolt_value_get(v, "dt");
    assert_int_equal(dt->type, BOLT_DATETIME);
    assert_int_equal(dt->u.temporal.seconds, -86401);
    assert_int_equal(dt->u.temporal.nanos, 999999999);
    assert_int_equal(dt->u.temporal.tz_offset_seconds, -3600);
    const bolt_value *p = bolt_value_get(v, "p");
    assert_int_equal(p->type, BOLT_POINT3D);
    assert_true(isnan(p->u.point.z));
    assert_int_equal(bolt_value_get(v, "raw")->type, BOLT_STRUCT);
    assert_reencode_same(f, (const uint8_t *)f->buf.ptr, f->buf.len, 5);
}

static void test_bolt_packstream__duplicate_keys_last_wins(void **state)
{
    fx *f = *state;
    const bolt_value *v;
    assert_int_equal(ps_decode_hex("A2 81 61 01 81 61 02", f->a, 5, &v, NULL), 0);
    assert_int_equal(bolt_value_len(v), 2);
    assert_int_equal(bolt_value_int(bolt_value_get(v, "a"), 0), 2);
    assert_null(bolt_value_get(v, "b"));
    assert_reencode_same(f, (const uint8_t *)"\xA2\x81\x61\x01\x81\x61\x02", 7, 5);
}

static void test_bolt_packstream__accessors_tolerate_wrong_types(void **state)
{
    fx *f = *state;
    const bolt_value *v;
    assert_int_equal(ps_decode_hex("92 81 61 05", f->a, 5, &v, NULL), 0);
    assert_int_equal(bolt_value_int(v, 42), 42);
    assert_null(bolt_value_cstr(v));
    assert_null(bolt_value_get(v, "a"));
    assert_null(bolt_value_at(v, 2));
    assert_int_equal(bolt_value_int(bolt_value_at(v, 1), 0), 5);
    assert_true(bolt_value_float(bolt_value_at(v, 1), 0) == 5.0);
    assert_int_equal(bolt_value_type(NULL), BOLT_NULL);
    assert_true(bolt_value_is_null(NULL));
    assert_int_equal(bolt_value_len(NULL), 0);
    assert_null(bolt_value_str(NULL).ptr);
    assert_string_equal(bolt_type_name(BOLT_DURATION), "Duration");
    assert_string_equal(bolt_type_name((bolt_type)999), "Unknown");
}

/* ------------------------------------------------------------ malformed */

static void test_bolt_packstream__truncated_every_position(void **state)
{
    fx *f = *state;
    write_everything(&f->w);
    static const char *more[] = {
        "B8 52 01 02 03 81 54 A0 81 31 81 32 81 33",
        "B3 50 92 B4 4E 01 90 A0 81 61 B4 4E 02 90 A0 81 62 91 B4 72 09 81 54 A0 81 78 92 01 01",
        "D2 00 00 00 03 61 62 63",
        "CE 00 00 00 02 01 02",
        "DA 00 00 00 01 81 61 C1 3F F1 99 99 99 99 99 9A",
        "D6 00 00 00 02 CB 7F FF FF FF FF FF FF FF CA 80 00 00 00",
        /* 4.4 layouts (decoded with major 4 below) */
        "B3 50 92 B3 4E 01 90 A0 B3 4E 02 90 A0 91 B3 72 09 81 54 A0 92 01 01",
        "B5 52 01 02 03 81 54 A0",
    };
    const size_t first_v4 = 7; /* index k of the first 4.4 vector */
    for (size_t k = 0; k <= sizeof more / sizeof more[0]; k++) {
        size_t n;
        uint8_t *p;
        if (k == 0) {
            n = f->buf.len;
            p = malloc(n);
            memcpy(p, f->buf.ptr, n);
        } else {
            p = ps_hex(more[k - 1], &n);
        }
        for (size_t cut = 0; cut < n; cut++) {
            /* Exact-size heap copy so ASan catches any over-read. */
            uint8_t *q = malloc(cut ? cut : 1);
            memcpy(q, p, cut);
            const bolt_value *v = (const bolt_value *)1;
            bolt_arena_reset(f->a);
            int rc = bolt_ps_decode(q, cut, f->a, k >= first_v4 ? 4 : 5, &v, NULL, NULL);
            assert_int_equal(rc, EG_EPROTO);
            assert_null(v);
            free(q);
        }
        free(p);
    }
}

static void test_bolt_packstream__huge_declared_sizes_fail_fast(void **state)
{
    fx *f = *state;
    static const struct {
        const char *hex;
        int rc;
    } cases[] = {
        {"D2 00 FF FF FF 61 62", EG_EPROTO},  /* 16 MB string, 2 bytes present */
        {"D2 FF FF FF FF 61", EG_ETOOBIG},    /* over the string cap */
        {"CE 07 FF FF FF 00", EG_EPROTO},     /* bytes */
        {"D6 00 FF FF FF 01 02", EG_EPROTO},  /* 16M-1 item list */
        {"D6 FF FF FF FF 01", EG_ETOOBIG},    /* over the item cap */
        {"DA 00 80 00 00 81 61 01", EG_EPROTO},
        {"DA 00 00 00 02 81 61 01 81", EG_EPROTO}, /* 2 entries need 4+ bytes */
        {"D1 FF", EG_EPROTO},
        {"D5 01", EG_EPROTO},
        {"BF 7A 01", EG_EPROTO},                   /* 15 fields, 1 present */
        {"D4 05 01 02", EG_EPROTO},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bolt_arena_reset(f->a);
        const bolt_value *v;
        assert_int_equal(ps_decode_hex(cases[i].hex, f->a, 5, &v, NULL), cases[i].rc);
        assert_true(bolt_arena_used(f->a) < 1024);
    }
}

static void test_bolt_packstream__depth_limit(void **state)
{
    fx *f = *state;
    size_t n = 100000;
    uint8_t *p = malloc(n + 1);
    memset(p, 0x91, n);
    p[n] = 0x00;
    const bolt_value *v;
    /* Exactly EG_LIMIT_PS_DEPTH nested lists decode. */
    assert_int_equal(bolt_ps_decode(p + n - EG_LIMIT_PS_DEPTH, EG_LIMIT_PS_DEPTH + 1, f->a, 5, &v, NULL,
                                    NULL),
                     0);
    /* and re-encode (the writer has the same limit) */
    assert_reencode_same(f, p + n - EG_LIMIT_PS_DEPTH, EG_LIMIT_PS_DEPTH + 1, 5);
    bolt_arena_reset(f->a);
    assert_int_equal(bolt_ps_decode(p + n - EG_LIMIT_PS_DEPTH - 1, EG_LIMIT_PS_DEPTH + 2, f->a, 5, &v,
                                    NULL, NULL),
                     EG_EPROTO);
    assert_int_equal(bolt_ps_decode(p, n + 1, f->a, 5, &v, NULL, NULL), EG_EPROTO);
    /* maps and structures count too */
    memset(p, 0xA1, n);
    for (size_t i = 1; i < n; i += 2)
        p[i] = 0x80; /* key "" */
    assert_int_equal(bolt_ps_decode(p, n, f->a, 5, &v, NULL, NULL), EG_EPROTO);
    memset(p, 0xB1, n);
    for (size_t i = 1; i < n; i += 2)
        p[i] = 0x7A;
    assert_int_equal(bolt_ps_decode(p, n, f->a, 5, &v, NULL, NULL), EG_EPROTO);
    free(p);
}

static void test_bolt_packstream__reserved_markers(void **state)
{
    fx *f = *state;
    static const uint8_t reserved[] = {0xC4, 0xC5, 0xC6, 0xC7, 0xCF, 0xD3, 0xD7, 0xDB, 0xDC, 0xDD, 0xDE,
                                       0xDF, 0xE0, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9,
                                       0xEA, 0xEB, 0xEC, 0xED, 0xEE, 0xEF};
    for (size_t i = 0; i < sizeof reserved; i++) {
        uint8_t in[9] = {reserved[i], 0, 0, 0, 0, 0, 0, 0, 0};
        const bolt_value *v;
        eg_error e;
        assert_int_equal(bolt_ps_decode(in, sizeof in, f->a, 5, &v, NULL, &e), EG_EPROTO);
        assert_non_null(strstr(e.message, "reserved"));
        /* also inside a list */
        uint8_t in2[3] = {0x92, 0x01, reserved[i]};
        assert_int_equal(bolt_ps_decode(in2, sizeof in2, f->a, 5, &v, NULL, NULL), EG_EPROTO);
    }
    /* every other marker is accepted as the start of something */
    for (unsigned m = 0; m < 256; m++) {
        bool res = false;
        for (size_t i = 0; i < sizeof reserved; i++)
            res = res || reserved[i] == m;
        uint8_t in[1] = {(uint8_t)m};
        const bolt_value *v;
        eg_error e;
        int rc = bolt_ps_decode(in, 1, f->a, 5, &v, NULL, &e);
        if (res)
            assert_int_equal(rc, EG_EPROTO);
        else if (rc)
            assert_null(strstr(e.message, "reserved"));
    }
}

static void test_bolt_packstream__typed_structure_violations(void **state)
{
    fx *f = *state;
    static const struct {
        const char *hex;
        int major;
    } bad[] = {
        {"B3 4E 01 90 A0", 5},                    /* 4.4 node on 5.x */
        {"B4 4E 01 90 A0 81 31", 4},              /* 5.x node on 4.4 */
        {"B4 4E 81 31 90 A0 81 31", 5},           /* id not an int */
        {"B4 4E 01 91 01 A0 81 31", 5},           /* label not a string */
        {"B4 4E 01 A0 A0 81 31", 5},              /* labels not a list */
        {"B4 4E 01 90 90 81 31", 5},              /* props not a map */
        {"B4 4E 01 90 A0 01", 5},                 /* element id not a string */
        {"B5 52 01 02 03 81 54 A0", 5},           /* 4.4 rel on 5.x */
        {"B8 52 01 02 03 01 A0 81 31 81 32 81 33", 5},
        {"B3 72 01 81 54 A0", 5},
        {"B2 50 90 90", 5},                       /* path field count */
        {"B3 50 91 01 90 90", 5},                 /* path nodes not nodes */
        {"B3 50 90 91 01 90", 5},
        {"B3 50 90 90 91 81 61", 5},
        {"B3 50 90 90 A0", 5},
        {"B2 44 01 02", 5},                       /* date with 2 fields */
        {"B1 44 C1 00 00 00 00 00 00 00 00", 5},  /* date float */
        {"B1 44 81 61", 5},
        {"B1 54 01", 5},
        {"B2 74 01 02", 5},
        {"B3 49 01 02 81 61", 5},
        {"B3 69 01 02 03", 5},
        {"B2 64 01 C0", 5},
        {"B3 45 01 02 03", 5},
        {"B4 45 01 02 03 C1 00 00 00 00 00 00 00 00", 5},
        {"B3 58 01 02 03", 5},                    /* point coords must be floats */
        {"B3 59 01 C1 00 00 00 00 00 00 00 00 C1 00 00 00 00 00 00 00 00", 5},
        {"B3 46 01 02", 4},
        {"B3 66 01 02 03", 4},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bolt_arena_reset(f->a);
        const bolt_value *v;
        int rc = ps_decode_hex(bad[i].hex, f->a, bad[i].major, &v, NULL);
        if (rc != EG_EPROTO)
            fail_msg("case %zu (%s): rc %d", i, bad[i].hex, rc);
    }
}

static void test_bolt_packstream__decode_args_and_used(void **state)
{
    fx *f = *state;
    const bolt_value *v;
    size_t used = 99;
    assert_int_equal(bolt_ps_decode(NULL, 0, f->a, 5, &v, &used, NULL), EG_EPROTO);
    assert_int_equal(bolt_ps_decode(NULL, 3, f->a, 5, &v, &used, NULL), EG_EINVAL);
    assert_int_equal(bolt_ps_decode((const uint8_t *)"\x01", 1, NULL, 5, &v, &used, NULL), EG_EINVAL);
    /* one value at a time: trailing bytes are left for the caller */
    assert_int_equal(bolt_ps_decode((const uint8_t *)"\x01\x02\x03", 3, f->a, 5, &v, &used, NULL), 0);
    assert_int_equal(used, 1);
}

/* ------------------------------------------------------------ arena */

static void test_bolt_packstream__arena(void **state)
{
    (void)state;
    bolt_arena *a = bolt_arena_new(256);
    assert_non_null(a);
    char *p1 = bolt_arena_alloc(a, 10);
    char *p2 = bolt_arena_alloc(a, 8);
    assert_true(((uintptr_t)p2 & 7) == 0);
    assert_true(p2 >= p1 + 10);
    memset(p1, 1, 10);
    /* big requests get their own block and don't disturb the current one */
    char *big = bolt_arena_alloc(a, 100000);
    memset(big, 2, 100000);
    char *p3 = bolt_arena_alloc(a, 8);
    assert_true(p3 > p2 && p3 < p2 + 256);
    for (int i = 0; i < 1000; i++)
        assert_non_null(bolt_arena_alloc(a, 64));
    assert_true(bolt_arena_used(a) >= 100000 + 64000);
    bolt_arena_reset(a);
    assert_int_equal(bolt_arena_used(a), 0);
    assert_ptr_equal(bolt_arena_alloc(a, 10), p1); /* first block reused */
    assert_null(bolt_arena_alloc(a, (size_t)EG_LIMIT_PS_ARENA + 1));
    assert_null(bolt_arena_alloc(NULL, 1));
    bolt_arena_free(a);
    bolt_arena_free(NULL);
    bolt_arena_reset(NULL);
}

/* ------------------------------------------------------------ alloc failures */

static void test_bolt_packstream__alloc_failure_torture(void **state)
{
    (void)state;
    eg_buf b = EG_BUF_INIT(0);
    bolt_ps_writer w;
    bolt_ps_writer_init(&w, &b);
    write_everything(&w);
    /* plus enough to need several 256-byte blocks */
    bolt_ps_list_begin(&w, 40);
    for (int i = 0; i < 40; i++)
        bolt_ps_str(&w, "a string of some length");
    assert_int_equal(bolt_ps_writer_error(&w), 0);
    /* first value only: the map */
    size_t first_len;
    {
        bolt_arena *a = bolt_arena_new(256);
        const bolt_value *v;
        assert_int_equal(bolt_ps_decode((const uint8_t *)b.ptr, b.len, a, 5, &v, &first_len, NULL), 0);
        bolt_arena_free(a);
    }
    size_t second_off = first_len;
    int failures = 0;
    for (unsigned long k = 1;; k++) {
        eg_alloc_fail_at(k, 0);
        bolt_arena *a = bolt_arena_new(256);
        if (!a) {
            failures++;
            continue;
        }
        const bolt_value *v1 = NULL, *v2 = NULL;
        eg_error e;
        int rc1 = bolt_ps_decode((const uint8_t *)b.ptr, b.len, a, 5, &v1, NULL, &e);
        int rc2 = rc1 ? rc1
                      : bolt_ps_decode((const uint8_t *)b.ptr + second_off, b.len - second_off, a, 5, &v2,
                                       NULL, &e);
        unsigned long made = eg_alloc_fail_at(0, 0);
        size_t len2 = rc2 ? 0 : bolt_value_len(v2);
        bolt_arena_free(a);
        if (made < k) {
            /* no allocation failed this round: everything must have worked */
            assert_int_equal(rc1, 0);
            assert_int_equal(rc2, 0);
            assert_int_equal(len2, 40);
            break;
        }
        failures++;
        assert_true(rc1 == EG_ENOMEM || rc2 == EG_ENOMEM);
        assert_int_equal(e.code, EG_ENOMEM);
    }
    assert_true(failures >= 3); /* the test really injected failures */
    eg_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bolt_packstream__int_boundaries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bolt_packstream__non_minimal_ints_decode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bolt_packstream__scalars, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bolt_packstream__size_boundaries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bolt_packstream__string_contents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bolt_packstream__structures_golden, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bolt_packstream__structure_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bolt_packstream__writer_helpers, setup, teardown),
        cmocka_unit_test(test_bolt_packstream__writer_errors_sticky),
        cmocka_unit_test_setup_teardown(test_bolt_packstream__round_trip_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bolt_packstream__duplicate_keys_last_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bolt_packstream__accessors_tolerate_wrong_types, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bolt_packstream__truncated_every_position, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bolt_packstream__huge_declared_sizes_fail_fast, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bolt_packstream__depth_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bolt_packstream__reserved_markers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bolt_packstream__typed_structure_violations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bolt_packstream__decode_args_and_used, setup, teardown),
        cmocka_unit_test(test_bolt_packstream__arena),
        cmocka_unit_test(test_bolt_packstream__alloc_failure_torture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
