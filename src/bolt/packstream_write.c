/*
 * packstream_write.c - PackStream v1 writer (packstream.h): values, lists,
 * typed structures, re-encoding of decoded values (bolt_ps_value[_major])
 * and JSON to PackStream (bolt_ps_json).  The decoder is packstream_read.c.
 *
 * Writer: every call reserves its worst-case size in the eg_buf once and then
 * stores big-endian bytes directly (no per-byte appends).  The first failure
 * is kept in w->err and turns every later call into a no-op.
 */
#include "bolt/packstream.h"
#include "core/alloc.h"
#include "core/limits.h"

#include <string.h>

/* ---------------------------------------------------------------- writer */

static inline void put16(uint8_t *p, uint16_t v)
{
    v = __builtin_bswap16(v);
    memcpy(p, &v, 2);
}

static inline void put32(uint8_t *p, uint32_t v)
{
    v = __builtin_bswap32(v);
    memcpy(p, &v, 4);
}

static inline void put64(uint8_t *p, uint64_t v)
{
    v = __builtin_bswap64(v);
    memcpy(p, &v, 8);
}

void bolt_ps_writer_init(bolt_ps_writer *w, eg_buf *buf)
{
    w->buf = buf;
    w->err = buf ? 0 : EG_EINVAL;
}

int bolt_ps_writer_error(const bolt_ps_writer *w)
{
    return w ? w->err : EG_EINVAL;
}

static inline void wfail(bolt_ps_writer *w, int code)
{
    if (!w->err)
        w->err = code;
}

/* Room for n bytes at the end of the buffer, or NULL (error recorded). */
static inline uint8_t *wres(bolt_ps_writer *w, size_t n)
{
    eg_buf *b = w->buf;
    if (__builtin_expect(w->err != 0, 0))
        return NULL;
    if (__builtin_expect(b->cap - b->len <= n, 0)) {
        int rc = eg_buf_reserve(b, n);
        if (rc) {
            w->err = rc;
            return NULL;
        }
    }
    return (uint8_t *)b->ptr + b->len;
}

/* Keep eg_buf's NUL-termination invariant. */
static inline void wcommit(bolt_ps_writer *w, size_t n)
{
    eg_buf *b = w->buf;
    b->len += n;
    b->ptr[b->len] = '\0';
}

static inline size_t enc_int(uint8_t *p, int64_t i)
{
    if (i >= -16 && i <= 127) {
        p[0] = (uint8_t)i;
        return 1;
    }
    if (i >= INT8_MIN && i <= INT8_MAX) {
        p[0] = 0xC8;
        p[1] = (uint8_t)i;
        return 2;
    }
    if (i >= INT16_MIN && i <= INT16_MAX) {
        p[0] = 0xC9;
        put16(p + 1, (uint16_t)i);
        return 3;
    }
    if (i >= INT32_MIN && i <= INT32_MAX) {
        p[0] = 0xCA;
        put32(p + 1, (uint32_t)i);
        return 5;
    }
    p[0] = 0xCB;
    put64(p + 1, (uint64_t)i);
    return 9;
}

/* Exact encoded sizes, so reservations never overshoot a buffer's cap. */
static inline size_t int_len(int64_t i)
{
    if (i >= -16 && i <= 127)
        return 1;
    if (i >= INT8_MIN && i <= INT8_MAX)
        return 2;
    if (i >= INT16_MIN && i <= INT16_MAX)
        return 3;
    if (i >= INT32_MIN && i <= INT32_MAX)
        return 5;
    return 9;
}

static inline size_t hdr_len(size_t n, uint8_t tiny)
{
    if (tiny && n < 16)
        return 1;
    return n <= 0xFF ? 2 : n <= 0xFFFF ? 3 : 5;
}

static inline size_t enc_float(uint8_t *p, double f)
{
    uint64_t bits;
    memcpy(&bits, &f, 8);
    p[0] = 0xC1;
    put64(p + 1, bits);
    return 9;
}

/*
 * Size header: tiny form (tiny | n) when tiny != 0 and n < 16, else the
 * 8/16/32-bit forms m8, m8+1, m8+2.  Returns bytes written (<= 5).
 */
static inline size_t enc_size(uint8_t *p, size_t n, uint8_t tiny, uint8_t m8)
{
    if (tiny && n < 16) {
        p[0] = (uint8_t)(tiny | n);
        return 1;
    }
    if (n <= 0xFF) {
        p[0] = m8;
        p[1] = (uint8_t)n;
        return 2;
    }
    if (n <= 0xFFFF) {
        p[0] = (uint8_t)(m8 + 1);
        put16(p + 1, (uint16_t)n);
        return 3;
    }
    p[0] = (uint8_t)(m8 + 2);
    put32(p + 1, (uint32_t)n);
    return 5;
}

static inline bool size_ok(bolt_ps_writer *w, size_t n)
{
    if (__builtin_expect(n > UINT32_MAX, 0)) {
        wfail(w, EG_ETOOBIG);
        return false;
    }
    return true;
}

void bolt_ps_raw(bolt_ps_writer *w, const void *p, size_t n)
{
    uint8_t *o = wres(w, n);
    if (!o)
        return;
    if (n)
        memcpy(o, p, n);
    wcommit(w, n);
}

void bolt_ps_null(bolt_ps_writer *w)
{
    uint8_t *p = wres(w, 1);
    if (!p)
        return;
    p[0] = 0xC0;
    wcommit(w, 1);
}

void bolt_ps_bool(bolt_ps_writer *w, bool b)
{
    uint8_t *p = wres(w, 1);
    if (!p)
        return;
    p[0] = b ? 0xC3 : 0xC2;
    wcommit(w, 1);
}

void bolt_ps_int(bolt_ps_writer *w, int64_t i)
{
    uint8_t *p = wres(w, int_len(i));
    if (!p)
        return;
    wcommit(w, enc_int(p, i));
}

void bolt_ps_float(bolt_ps_writer *w, double f)
{
    uint8_t *p = wres(w, 9);
    if (!p)
        return;
    wcommit(w, enc_float(p, f));
}

static void write_sized(bolt_ps_writer *w, uint8_t tiny, uint8_t m8, const void *s, size_t n)
{
    if (!size_ok(w, n))
        return;
    size_t total;
    if (eg_add_size(&total, n, hdr_len(n, tiny))) {
        wfail(w, EG_ETOOBIG);
        return;
    }
    uint8_t *p = wres(w, total);
    if (!p)
        return;
    size_t h = enc_size(p, n, tiny, m8);
    if (n)
        memcpy(p + h, s, n);
    wcommit(w, h + n);
}

void bolt_ps_bytes(bolt_ps_writer *w, const void *p, size_t n)
{
    if (!p && n) {
        wfail(w, EG_EINVAL);
        return;
    }
    write_sized(w, 0, 0xCC, p, n);
}

void bolt_ps_str(bolt_ps_writer *w, const char *s)
{
    if (!s) {
        bolt_ps_null(w);
        return;
    }
    write_sized(w, 0x80, 0xD0, s, strlen(s));
}

void bolt_ps_strn(bolt_ps_writer *w, const char *s, size_t n)
{
    if (!s) {
        bolt_ps_null(w);
        return;
    }
    write_sized(w, 0x80, 0xD0, s, n);
}

static inline void write_header(bolt_ps_writer *w, uint8_t tiny, uint8_t m8, size_t n)
{
    if (!size_ok(w, n))
        return;
    uint8_t *p = wres(w, hdr_len(n, tiny));
    if (!p)
        return;
    wcommit(w, enc_size(p, n, tiny, m8));
}

void bolt_ps_list_begin(bolt_ps_writer *w, size_t n)
{
    write_header(w, 0x90, 0xD4, n);
}

void bolt_ps_map_begin(bolt_ps_writer *w, size_t n)
{
    write_header(w, 0xA0, 0xD8, n);
}

void bolt_ps_struct_begin(bolt_ps_writer *w, uint8_t tag, size_t nfields)
{
    if (nfields > 15) {
        wfail(w, EG_EINVAL);
        return;
    }
    uint8_t *p = wres(w, 2);
    if (!p)
        return;
    p[0] = (uint8_t)(0xB0 | nfields);
    p[1] = tag;
    wcommit(w, 2);
}

/* Reserve a list header + `body` bytes of items in one go. */
static uint8_t *reserve_items(bolt_ps_writer *w, size_t n, size_t each, size_t body)
{
    size_t total;
    if (!size_ok(w, n) || (each && eg_mul_size(&body, n, each)) ||
        eg_add_size(&total, body, hdr_len(n, 0x90))) {
        wfail(w, EG_ETOOBIG);
        return NULL;
    }
    return wres(w, total);
}

void bolt_ps_float_list(bolt_ps_writer *w, const double *v, size_t n)
{
    if (!v && n) {
        wfail(w, EG_EINVAL);
        return;
    }
    uint8_t *p = reserve_items(w, n, 9, 0);
    if (!p)
        return;
    uint8_t *o = p + enc_size(p, n, 0x90, 0xD4);
    for (size_t i = 0; i < n; i++)
        o += enc_float(o, v[i]);
    wcommit(w, (size_t)(o - p));
}

void bolt_ps_float32_list(bolt_ps_writer *w, const float *v, size_t n)
{
    if (!v && n) {
        wfail(w, EG_EINVAL);
        return;
    }
    uint8_t *p = reserve_items(w, n, 9, 0);
    if (!p)
        return;
    uint8_t *o = p + enc_size(p, n, 0x90, 0xD4);
    for (size_t i = 0; i < n; i++)
        o += enc_float(o, (double)v[i]);
    wcommit(w, (size_t)(o - p));
}

void bolt_ps_int_list(bolt_ps_writer *w, const int64_t *v, size_t n)
{
    if (!v && n) {
        wfail(w, EG_EINVAL);
        return;
    }
    size_t body = 0;
    for (size_t i = 0; i < n; i++)
        body += int_len(v[i]);
    uint8_t *p = reserve_items(w, n, 0, body);
    if (!p)
        return;
    uint8_t *o = p + enc_size(p, n, 0x90, 0xD4);
    for (size_t i = 0; i < n; i++)
        o += enc_int(o, v[i]);
    wcommit(w, (size_t)(o - p));
}

void bolt_ps_str_list(bolt_ps_writer *w, const char *const *v, size_t n)
{
    if (!v && n) {
        wfail(w, EG_EINVAL);
        return;
    }
    bolt_ps_list_begin(w, n);
    for (size_t i = 0; i < n && !w->err; i++)
        bolt_ps_str(w, v[i]);
}

/* Struct header plus up to 4 integer fields in one reservation. */
static void write_int_struct(bolt_ps_writer *w, uint8_t tag, size_t n, int64_t a, int64_t b, int64_t c,
                             int64_t d)
{
    int64_t f[4] = {a, b, c, d};
    size_t len = 2;
    for (size_t i = 0; i < n; i++)
        len += int_len(f[i]);
    uint8_t *p = wres(w, len);
    if (!p)
        return;
    p[0] = (uint8_t)(0xB0 | n);
    p[1] = tag;
    uint8_t *o = p + 2;
    for (size_t i = 0; i < n; i++)
        o += enc_int(o, f[i]);
    wcommit(w, (size_t)(o - p));
}

void bolt_ps_date(bolt_ps_writer *w, int64_t days)
{
    write_int_struct(w, 'D', 1, days, 0, 0, 0);
}

void bolt_ps_datetime(bolt_ps_writer *w, int64_t epoch_seconds, int64_t nanos, int64_t tz_offset_seconds)
{
    write_int_struct(w, 'I', 3, epoch_seconds, nanos, tz_offset_seconds, 0);
}

void bolt_ps_datetime_zone_id(bolt_ps_writer *w, int64_t epoch_seconds, int64_t nanos, const char *tz_id)
{
    if (!tz_id) {
        wfail(w, EG_EINVAL);
        return;
    }
    bolt_ps_struct_begin(w, 'i', 3);
    bolt_ps_int(w, epoch_seconds);
    bolt_ps_int(w, nanos);
    bolt_ps_str(w, tz_id);
}

void bolt_ps_local_datetime(bolt_ps_writer *w, int64_t seconds, int64_t nanos)
{
    write_int_struct(w, 'd', 2, seconds, nanos, 0, 0);
}

void bolt_ps_time(bolt_ps_writer *w, int64_t nanos, int64_t tz_offset_seconds)
{
    write_int_struct(w, 'T', 2, nanos, tz_offset_seconds, 0, 0);
}

void bolt_ps_local_time(bolt_ps_writer *w, int64_t nanos)
{
    write_int_struct(w, 't', 1, nanos, 0, 0, 0);
}

void bolt_ps_duration(bolt_ps_writer *w, int64_t months, int64_t days, int64_t seconds, int64_t nanos)
{
    write_int_struct(w, 'E', 4, months, days, seconds, nanos);
}

void bolt_ps_point2d(bolt_ps_writer *w, int64_t srid, double x, double y)
{
    uint8_t *p = wres(w, 2 + int_len(srid) + 9 * 2);
    if (!p)
        return;
    p[0] = 0xB3;
    p[1] = 'X';
    uint8_t *o = p + 2;
    o += enc_int(o, srid);
    o += enc_float(o, x);
    o += enc_float(o, y);
    wcommit(w, (size_t)(o - p));
}

void bolt_ps_point3d(bolt_ps_writer *w, int64_t srid, double x, double y, double z)
{
    uint8_t *p = wres(w, 2 + int_len(srid) + 9 * 3);
    if (!p)
        return;
    p[0] = 0xB4;
    p[1] = 'Y';
    uint8_t *o = p + 2;
    o += enc_int(o, srid);
    o += enc_float(o, x);
    o += enc_float(o, y);
    o += enc_float(o, z);
    wcommit(w, (size_t)(o - p));
}

/* ------------------------------------------------------- re-encoding */

static void write_bstr(bolt_ps_writer *w, bolt_str s)
{
    write_sized(w, 0x80, 0xD0, s.ptr, s.len);
}

static void write_value(bolt_ps_writer *w, const bolt_value *v, int major, unsigned depth);

static bool depth_ok(bolt_ps_writer *w, unsigned depth)
{
    if (depth >= EG_LIMIT_PS_DEPTH) {
        wfail(w, EG_ETOOBIG);
        return false;
    }
    return true;
}

static void write_node(bolt_ps_writer *w, const bolt_value *v, int major, unsigned depth)
{
    bolt_ps_struct_begin(w, 'N', major == 4 ? 3 : 4);
    bolt_ps_int(w, v->u.node.id);
    if (depth_ok(w, depth + 1)) {
        bolt_ps_list_begin(w, v->u.node.nlabels);
        for (size_t i = 0; i < v->u.node.nlabels && !w->err; i++)
            write_bstr(w, v->u.node.labels[i]);
    }
    write_value(w, v->u.node.props, major, depth + 1);
    if (major != 4)
        write_bstr(w, v->u.node.element_id);
}

static void write_rel(bolt_ps_writer *w, const bolt_value *v, int major, unsigned depth)
{
    bool unbound = v->type == BOLT_UNBOUND_REL;
    size_t n = unbound ? (major == 4 ? 3 : 4) : (major == 4 ? 5 : 8);
    bolt_ps_struct_begin(w, unbound ? 'r' : 'R', n);
    bolt_ps_int(w, v->u.rel.id);
    if (!unbound) {
        bolt_ps_int(w, v->u.rel.start_id);
        bolt_ps_int(w, v->u.rel.end_id);
    }
    write_bstr(w, v->u.rel.type);
    write_value(w, v->u.rel.props, major, depth + 1);
    if (major == 4)
        return;
    write_bstr(w, v->u.rel.element_id);
    if (!unbound) {
        write_bstr(w, v->u.rel.start_element_id);
        write_bstr(w, v->u.rel.end_element_id);
    }
}

static void write_value(bolt_ps_writer *w, const bolt_value *v, int major, unsigned depth)
{
    if (w->err)
        return;
    if (!v) {
        bolt_ps_null(w);
        return;
    }
    switch (v->type) {
    case BOLT_NULL:
        bolt_ps_null(w);
        return;
    case BOLT_BOOL:
        bolt_ps_bool(w, v->u.b);
        return;
    case BOLT_INT:
        bolt_ps_int(w, v->u.i);
        return;
    case BOLT_FLOAT:
        bolt_ps_float(w, v->u.f);
        return;
    case BOLT_BYTES:
        write_sized(w, 0, 0xCC, v->u.s.ptr, v->u.s.len);
        return;
    case BOLT_STRING:
        write_bstr(w, v->u.s);
        return;
    default:
        break;
    }
    if (!depth_ok(w, depth))
        return;
    switch (v->type) {
    case BOLT_LIST:
        bolt_ps_list_begin(w, v->u.list.len);
        for (size_t i = 0; i < v->u.list.len && !w->err; i++)
            write_value(w, v->u.list.items[i], major, depth + 1);
        return;
    case BOLT_MAP:
        bolt_ps_map_begin(w, v->u.map.len);
        for (size_t i = 0; i < v->u.map.len && !w->err; i++) {
            write_bstr(w, v->u.map.entries[i].key);
            write_value(w, v->u.map.entries[i].value, major, depth + 1);
        }
        return;
    case BOLT_NODE:
        write_node(w, v, major, depth);
        return;
    case BOLT_RELATIONSHIP:
    case BOLT_UNBOUND_REL:
        write_rel(w, v, major, depth);
        return;
    case BOLT_PATH:
        bolt_ps_struct_begin(w, 'P', 3);
        write_value(w, v->u.path.nodes, major, depth + 1);
        write_value(w, v->u.path.rels, major, depth + 1);
        write_value(w, v->u.path.indices, major, depth + 1);
        return;
    case BOLT_DATE:
        bolt_ps_date(w, v->u.temporal.days);
        return;
    case BOLT_TIME:
        bolt_ps_time(w, v->u.temporal.nanos, v->u.temporal.tz_offset_seconds);
        return;
    case BOLT_LOCAL_TIME:
        bolt_ps_local_time(w, v->u.temporal.nanos);
        return;
    case BOLT_DATETIME:
        bolt_ps_datetime(w, v->u.temporal.seconds, v->u.temporal.nanos, v->u.temporal.tz_offset_seconds);
        return;
    case BOLT_LEGACY_DATETIME:
        write_int_struct(w, 'F', 3, v->u.temporal.seconds, v->u.temporal.nanos,
                         v->u.temporal.tz_offset_seconds, 0);
        return;
    case BOLT_DATETIME_ZONE_ID:
    case BOLT_LEGACY_DATETIME_ZONE_ID:
        bolt_ps_struct_begin(w, v->type == BOLT_DATETIME_ZONE_ID ? 'i' : 'f', 3);
        bolt_ps_int(w, v->u.temporal.seconds);
        bolt_ps_int(w, v->u.temporal.nanos);
        write_bstr(w, v->u.temporal.tz_id);
        return;
    case BOLT_LOCAL_DATETIME:
        bolt_ps_local_datetime(w, v->u.temporal.seconds, v->u.temporal.nanos);
        return;
    case BOLT_DURATION:
        bolt_ps_duration(w, v->u.duration.months, v->u.duration.days, v->u.duration.seconds,
                         v->u.duration.nanos);
        return;
    case BOLT_POINT2D:
        bolt_ps_point2d(w, v->u.point.srid, v->u.point.x, v->u.point.y);
        return;
    case BOLT_POINT3D:
        bolt_ps_point3d(w, v->u.point.srid, v->u.point.x, v->u.point.y, v->u.point.z);
        return;
    case BOLT_STRUCT:
        bolt_ps_struct_begin(w, v->u.st.tag, v->u.st.nfields);
        for (size_t i = 0; i < v->u.st.nfields && !w->err; i++)
            write_value(w, v->u.st.fields[i], major, depth + 1);
        return;
    default:
        wfail(w, EG_EINVAL);
        return;
    }
}

void bolt_ps_value(bolt_ps_writer *w, const bolt_value *v)
{
    write_value(w, v, 5, 0);
}

void bolt_ps_value_major(bolt_ps_writer *w, const bolt_value *v, int bolt_major)
{
    write_value(w, v, bolt_major, 0);
}

static void write_json(bolt_ps_writer *w, const json_t *j, unsigned depth)
{
    if (w->err)
        return;
    switch (json_typeof(j)) {
    case JSON_NULL:
        bolt_ps_null(w);
        return;
    case JSON_TRUE:
        bolt_ps_bool(w, true);
        return;
    case JSON_FALSE:
        bolt_ps_bool(w, false);
        return;
    case JSON_INTEGER:
        bolt_ps_int(w, (int64_t)json_integer_value(j));
        return;
    case JSON_REAL:
        bolt_ps_float(w, json_real_value(j));
        return;
    case JSON_STRING:
        bolt_ps_strn(w, json_string_value(j), json_string_length(j));
        return;
    case JSON_ARRAY: {
        if (!depth_ok(w, depth))
            return;
        size_t n = json_array_size(j);
        bolt_ps_list_begin(w, n);
        for (size_t i = 0; i < n && !w->err; i++)
            write_json(w, json_array_get(j, i), depth + 1);
        return;
    }
    case JSON_OBJECT: {
        if (!depth_ok(w, depth))
            return;
        bolt_ps_map_begin(w, json_object_size(j));
        const char *key;
        size_t klen;
        json_t *val;
        json_object_keylen_foreach((json_t *)j, key, klen, val)
        {
            if (w->err)
                return;
            bolt_ps_strn(w, key, klen);
            write_json(w, val, depth + 1);
        }
        return;
    }
    }
    wfail(w, EG_EINVAL);
}

void bolt_ps_json(bolt_ps_writer *w, const json_t *j)
{
    if (!j) {
        bolt_ps_null(w);
        return;
    }
    write_json(w, j, 0);
}
