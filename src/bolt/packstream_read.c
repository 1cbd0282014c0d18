/*
 * packstream_read.c - PackStream v1 decoder (packstream.h, bolt_ps_decode).
 * The writer is packstream_write.c.
 *
 * Decoder: recursive descent over (p, end) writing into caller-provided
 * bolt_value slots, so a list of n items costs one arena allocation (values
 * and item pointers together) and a scalar costs none.  Every declared size
 * is checked against the bytes that remain before anything is allocated
 * from it: a list of n items needs at least n bytes, a map of n entries at
 * least 2n, a string of n bytes exactly n.  So a tiny input can never make
 * us allocate much, whatever it declares.  Depth is bounded by
 * EG_LIMIT_PS_DEPTH (each list/map/struct is one level), so the recursion is
 * bounded too.
 *
 * Typed structures are decoded field by field with the type each field must
 * have; a known tag with the wrong field count or a wrong field type is a
 * protocol error (EG_EPROTO).  Unknown tags stay raw (BOLT_STRUCT), which is
 * also how Bolt messages (SUCCESS 0x70, RECORD 0x71, ...) come out.
 */
#include "bolt/packstream.h"
#include "bolt/arena_int.h"
#include "core/limits.h"

#include <string.h>

/* --------------------------------------------------------------- decoder */

typedef struct dec {
    const uint8_t *p;
    const uint8_t *end;
    bolt_arena *a;
    int major;
    const char *why; /* static text of the first failure */
} dec;

static const char empty_str[1] = "";

static int dfail(dec *d, int code, const char *why)
{
    d->why = why;
    return code;
}

#define NEED(d, n) ((size_t)((d)->end - (d)->p) >= (n))

static inline uint64_t get_be(const uint8_t *p, unsigned width)
{
    switch (width) {
    case 1:
        return p[0];
    case 2: {
        uint16_t v;
        memcpy(&v, p, 2);
        return __builtin_bswap16(v);
    }
    case 4: {
        uint32_t v;
        memcpy(&v, p, 4);
        return __builtin_bswap32(v);
    }
    default: {
        uint64_t v;
        memcpy(&v, p, 8);
        return __builtin_bswap64(v);
    }
    }
}

/* Read a 1/2/4-byte unsigned size that follows a marker. */
static inline int read_size(dec *d, unsigned width, size_t *n)
{
    if (!NEED(d, width))
        return dfail(d, EG_EPROTO, "truncated size");
    *n = (size_t)get_be(d->p, width);
    d->p += width;
    return 0;
}

static int dec_value(dec *d, bolt_value *dst, unsigned depth);

/* String/bytes body of n bytes: NUL-terminated copy in the arena. */
static inline int dec_bytes(dec *d, bolt_str *out, size_t n)
{
    if (n > EG_LIMIT_PS_STRING)
        return dfail(d, EG_ETOOBIG, "string or bytes too long");
    if (!NEED(d, n))
        return dfail(d, EG_EPROTO, "string or bytes longer than the input");
    char *s = bolt_arena__alloc_bytes(d->a, n + 1);
    if (!s)
        return dfail(d, EG_ENOMEM, EG_OOM_TEXT);
    memcpy(s, d->p, n);
    s[n] = '\0';
    d->p += n;
    out->ptr = s;
    out->len = n;
    return 0;
}

/* The size in the marker of a value that must be of one kind: a tiny
 * marker (high nibble tiny, size in the low one) or one of the three sized
 * markers from sized (8-, 16- and 32-bit size after it).  Anything else
 * fails with what. */
static int read_sized_marker(dec *d, uint8_t tiny, uint8_t sized, const char *what, size_t *n)
{
    if (!NEED(d, 1))
        return dfail(d, EG_EPROTO, "truncated");
    uint8_t m = *d->p++;
    if ((m & 0xF0) == tiny) {
        *n = m & 0x0F;
        return 0;
    }
    if (m >= sized && m <= sized + 2)
        return read_size(d, 1u << (m - sized), n);
    return dfail(d, EG_EPROTO, what);
}

/* A value that must be a String (map keys, labels, types, ids). */
static int dec_str(dec *d, bolt_str *out)
{
    size_t n;
    int rc = read_sized_marker(d, 0x80, 0xD0, "expected a string", &n);
    return rc ? rc : dec_bytes(d, out, n);
}

static int dec_list(dec *d, bolt_value *dst, size_t n, unsigned depth)
{
    if (depth >= EG_LIMIT_PS_DEPTH)
        return dfail(d, EG_EPROTO, "nesting too deep");
    if (n > EG_LIMIT_PS_ITEMS)
        return dfail(d, EG_ETOOBIG, "list too long");
    if (!NEED(d, n))
        return dfail(d, EG_EPROTO, "list longer than the input");
    dst->type = BOLT_LIST;
    dst->u.list.len = n;
    dst->u.list.items = NULL;
    if (n == 0)
        return 0;
    /* One allocation: n values, then n pointers to them. */
    bolt_value *vals = bolt_arena__alloc(d->a, n * (sizeof(bolt_value) + sizeof(bolt_value *)));
    if (!vals)
        return dfail(d, EG_ENOMEM, EG_OOM_TEXT);
    const bolt_value **items = (const bolt_value **)(vals + n);
    for (size_t i = 0; i < n; i++) {
        items[i] = &vals[i];
        int rc = dec_value(d, &vals[i], depth + 1);
        if (rc)
            return rc;
    }
    dst->u.list.items = items;
    return 0;
}

static int dec_map(dec *d, bolt_value *dst, size_t n, unsigned depth)
{
    if (depth >= EG_LIMIT_PS_DEPTH)
        return dfail(d, EG_EPROTO, "nesting too deep");
    if (n > EG_LIMIT_PS_ITEMS)
        return dfail(d, EG_ETOOBIG, "map too long");
    if (n > ((size_t)(d->end - d->p)) / 2)
        return dfail(d, EG_EPROTO, "map longer than the input");
    dst->type = BOLT_MAP;
    dst->u.map.len = n;
    dst->u.map.entries = NULL;
    if (n == 0)
        return 0;
    bolt_value *vals = bolt_arena__alloc(d->a, n * (sizeof(bolt_value) + sizeof(bolt_map_entry)));
    if (!vals)
        return dfail(d, EG_ENOMEM, EG_OOM_TEXT);
    bolt_map_entry *ents = (bolt_map_entry *)(vals + n);
    for (size_t i = 0; i < n; i++) {
        int rc = dec_str(d, &ents[i].key);
        if (rc)
            return rc;
        ents[i].value = &vals[i];
        if ((rc = dec_value(d, &vals[i], depth + 1)))
            return rc;
    }
    dst->u.map.entries = ents;
    return 0;
}

/*
 * Field helpers for typed structures.  Scalar fields decode into a stack
 * temporary (scalars never touch the arena) and are type-checked.
 */
static int f_scalar(dec *d, bolt_value *t, bolt_type want, unsigned depth)
{
    int rc = dec_value(d, t, depth);
    if (rc)
        return rc;
    if (t->type != want)
        return dfail(d, EG_EPROTO, "structure field has the wrong type");
    return 0;
}

static int f_int(dec *d, int64_t *out, unsigned depth)
{
    bolt_value t;
    int rc = f_scalar(d, &t, BOLT_INT, depth);
    if (!rc)
        *out = t.u.i;
    return rc;
}

static int f_float(dec *d, double *out, unsigned depth)
{
    bolt_value t;
    int rc = f_scalar(d, &t, BOLT_FLOAT, depth);
    if (!rc)
        *out = t.u.f;
    return rc;
}

/* A value of type `want` stored in a fresh arena slot. */
static int f_typed(dec *d, const bolt_value **out, bolt_type want, unsigned depth)
{
    bolt_value *v = bolt_arena__alloc(d->a, sizeof *v);
    if (!v)
        return dfail(d, EG_ENOMEM, EG_OOM_TEXT);
    int rc = dec_value(d, v, depth);
    if (rc)
        return rc;
    if (v->type != want)
        return dfail(d, EG_EPROTO, "structure field has the wrong type");
    *out = v;
    return 0;
}

static int f_labels(dec *d, bolt_value *dst, unsigned depth)
{
    size_t n;
    int rc = read_sized_marker(d, 0x90, 0xD4, "node labels must be a list", &n);
    if (rc)
        return rc;
    if (depth >= EG_LIMIT_PS_DEPTH)
        return dfail(d, EG_EPROTO, "nesting too deep");
    if (n > EG_LIMIT_PS_ITEMS)
        return dfail(d, EG_ETOOBIG, "list too long");
    if (!NEED(d, n))
        return dfail(d, EG_EPROTO, "list longer than the input");
    bolt_str *labels = NULL;
    if (n) {
        labels = bolt_arena__alloc(d->a, n * sizeof *labels);
        if (!labels)
            return dfail(d, EG_ENOMEM, EG_OOM_TEXT);
        for (size_t i = 0; i < n; i++)
            if ((rc = dec_str(d, &labels[i])))
                return rc;
    }
    dst->u.node.nlabels = n;
    dst->u.node.labels = labels;
    return 0;
}

static int list_all(dec *d, const bolt_value *list, bolt_type want)
{
    for (size_t i = 0; i < list->u.list.len; i++)
        if (list->u.list.items[i]->type != want)
            return dfail(d, EG_EPROTO, "path list item has the wrong type");
    return 0;
}

static const bolt_str no_id = {empty_str, 0};

static int dec_struct(dec *d, bolt_value *dst, size_t n, unsigned depth)
{
    if (depth >= EG_LIMIT_PS_DEPTH)
        return dfail(d, EG_EPROTO, "nesting too deep");
    if (!NEED(d, 1))
        return dfail(d, EG_EPROTO, "truncated structure tag");
    uint8_t tag = *d->p++;
    if (!NEED(d, n))
        return dfail(d, EG_EPROTO, "structure longer than the input");
    unsigned fd = depth + 1;
    bool v4 = d->major == 4;
    int rc = 0;
#define F(call)                                                                                    \
    do {                                                                                           \
        if ((rc = (call)))                                                                         \
            return rc;                                                                             \
    } while (0)
#define COUNT(k)                                                                                   \
    do {                                                                                           \
        if (n != (k))                                                                              \
            return dfail(d, EG_EPROTO, "wrong field count for structure");                        \
    } while (0)
    switch (tag) {
    case 'N':
        COUNT(v4 ? 3u : 4u);
        dst->type = BOLT_NODE;
        F(f_int(d, &dst->u.node.id, fd));
        F(f_labels(d, dst, fd));
        F(f_typed(d, &dst->u.node.props, BOLT_MAP, fd));
        if (v4)
            dst->u.node.element_id = no_id;
        else
            F(dec_str(d, &dst->u.node.element_id));
        return 0;
    case 'R':
        COUNT(v4 ? 5u : 8u);
        dst->type = BOLT_RELATIONSHIP;
        F(f_int(d, &dst->u.rel.id, fd));
        F(f_int(d, &dst->u.rel.start_id, fd));
        F(f_int(d, &dst->u.rel.end_id, fd));
        F(dec_str(d, &dst->u.rel.type));
        F(f_typed(d, &dst->u.rel.props, BOLT_MAP, fd));
        if (v4) {
            dst->u.rel.element_id = dst->u.rel.start_element_id = dst->u.rel.end_element_id = no_id;
        } else {
            F(dec_str(d, &dst->u.rel.element_id));
            F(dec_str(d, &dst->u.rel.start_element_id));
            F(dec_str(d, &dst->u.rel.end_element_id));
        }
        return 0;
    case 'r':
        COUNT(v4 ? 3u : 4u);
        dst->type = BOLT_UNBOUND_REL;
        dst->u.rel.start_id = dst->u.rel.end_id = 0;
        dst->u.rel.start_element_id = dst->u.rel.end_element_id = no_id;
        F(f_int(d, &dst->u.rel.id, fd));
        F(dec_str(d, &dst->u.rel.type));
        F(f_typed(d, &dst->u.rel.props, BOLT_MAP, fd));
        if (v4)
            dst->u.rel.element_id = no_id;
        else
            F(dec_str(d, &dst->u.rel.element_id));
        return 0;
    case 'P':
        COUNT(3u);
        dst->type = BOLT_PATH;
        F(f_typed(d, &dst->u.path.nodes, BOLT_LIST, fd));
        F(list_all(d, dst->u.path.nodes, BOLT_NODE));
        F(f_typed(d, &dst->u.path.rels, BOLT_LIST, fd));
        F(list_all(d, dst->u.path.rels, BOLT_UNBOUND_REL));
        F(f_typed(d, &dst->u.path.indices, BOLT_LIST, fd));
        F(list_all(d, dst->u.path.indices, BOLT_INT));
        return 0;
    case 'D':
        COUNT(1u);
        memset(&dst->u.temporal, 0, sizeof dst->u.temporal);
        dst->type = BOLT_DATE;
        F(f_int(d, &dst->u.temporal.days, fd));
        return 0;
    case 'T':
        COUNT(2u);
        memset(&dst->u.temporal, 0, sizeof dst->u.temporal);
        dst->type = BOLT_TIME;
        F(f_int(d, &dst->u.temporal.nanos, fd));
        F(f_int(d, &dst->u.temporal.tz_offset_seconds, fd));
        return 0;
    case 't':
        COUNT(1u);
        memset(&dst->u.temporal, 0, sizeof dst->u.temporal);
        dst->type = BOLT_LOCAL_TIME;
        F(f_int(d, &dst->u.temporal.nanos, fd));
        return 0;
    case 'I':
    case 'F':
        COUNT(3u);
        memset(&dst->u.temporal, 0, sizeof dst->u.temporal);
        dst->type = tag == 'I' ? BOLT_DATETIME : BOLT_LEGACY_DATETIME;
        F(f_int(d, &dst->u.temporal.seconds, fd));
        F(f_int(d, &dst->u.temporal.nanos, fd));
        F(f_int(d, &dst->u.temporal.tz_offset_seconds, fd));
        return 0;
    case 'i':
    case 'f':
        COUNT(3u);
        memset(&dst->u.temporal, 0, sizeof dst->u.temporal);
        dst->type = tag == 'i' ? BOLT_DATETIME_ZONE_ID : BOLT_LEGACY_DATETIME_ZONE_ID;
        F(f_int(d, &dst->u.temporal.seconds, fd));
        F(f_int(d, &dst->u.temporal.nanos, fd));
        F(dec_str(d, &dst->u.temporal.tz_id));
        return 0;
    case 'd':
        COUNT(2u);
        memset(&dst->u.temporal, 0, sizeof dst->u.temporal);
        dst->type = BOLT_LOCAL_DATETIME;
        F(f_int(d, &dst->u.temporal.seconds, fd));
        F(f_int(d, &dst->u.temporal.nanos, fd));
        return 0;
    case 'E':
        COUNT(4u);
        dst->type = BOLT_DURATION;
        F(f_int(d, &dst->u.duration.months, fd));
        F(f_int(d, &dst->u.duration.days, fd));
        F(f_int(d, &dst->u.duration.seconds, fd));
        F(f_int(d, &dst->u.duration.nanos, fd));
        return 0;
    case 'X':
    case 'Y':
        COUNT(tag == 'X' ? 3u : 4u);
        dst->type = tag == 'X' ? BOLT_POINT2D : BOLT_POINT3D;
        dst->u.point.z = 0;
        F(f_int(d, &dst->u.point.srid, fd));
        F(f_float(d, &dst->u.point.x, fd));
        F(f_float(d, &dst->u.point.y, fd));
        if (tag == 'Y')
            F(f_float(d, &dst->u.point.z, fd));
        return 0;
    default:
        break;
    }
#undef COUNT
    dst->type = BOLT_STRUCT;
    dst->u.st.tag = tag;
    dst->u.st.nfields = n;
    dst->u.st.fields = NULL;
    if (n == 0)
        return 0;
    bolt_value *vals = bolt_arena__alloc(d->a, n * (sizeof(bolt_value) + sizeof(bolt_value *)));
    if (!vals)
        return dfail(d, EG_ENOMEM, EG_OOM_TEXT);
    const bolt_value **fields = (const bolt_value **)(vals + n);
    for (size_t i = 0; i < n; i++) {
        fields[i] = &vals[i];
        F(dec_value(d, &vals[i], fd));
    }
#undef F
    dst->u.st.fields = fields;
    return 0;
}

static int dec_value(dec *d, bolt_value *dst, unsigned depth)
{
    if (__builtin_expect(d->p >= d->end, 0))
        return dfail(d, EG_EPROTO, "truncated");
    uint8_t m = *d->p++;
    /* Tiny ints first: the most common values in records. */
    if (m < 0x80 || m >= 0xF0) {
        dst->type = BOLT_INT;
        dst->u.i = (int8_t)m;
        return 0;
    }
    size_t n;
    int rc;
    switch (m >> 4) {
    case 0x8:
        dst->type = BOLT_STRING;
        return dec_bytes(d, &dst->u.s, m & 0x0F);
    case 0x9:
        return dec_list(d, dst, m & 0x0F, depth);
    case 0xA:
        return dec_map(d, dst, m & 0x0F, depth);
    case 0xB:
        return dec_struct(d, dst, m & 0x0F, depth);
    default:
        break;
    }
    switch (m) {
    case 0xC0:
        dst->type = BOLT_NULL;
        return 0;
    case 0xC1: {
        if (!NEED(d, 8))
            return dfail(d, EG_EPROTO, "truncated float");
        uint64_t bits = get_be(d->p, 8);
        d->p += 8;
        dst->type = BOLT_FLOAT;
        memcpy(&dst->u.f, &bits, 8);
        return 0;
    }
    case 0xC2:
    case 0xC3:
        dst->type = BOLT_BOOL;
        dst->u.b = m == 0xC3;
        return 0;
    case 0xC8:
    case 0xC9:
    case 0xCA:
    case 0xCB: {
        unsigned width = 1u << (m - 0xC8);
        if (!NEED(d, width))
            return dfail(d, EG_EPROTO, "truncated integer");
        uint64_t u = get_be(d->p, width);
        d->p += width;
        /* Sign-extend from width bytes (shift in unsigned, convert once). */
        unsigned shift = 64 - 8 * width;
        dst->type = BOLT_INT;
        dst->u.i = (int64_t)(u << shift) >> shift;
        return 0;
    }
    case 0xCC:
    case 0xCD:
    case 0xCE:
        if ((rc = read_size(d, 1u << (m - 0xCC), &n)))
            return rc;
        dst->type = BOLT_BYTES;
        return dec_bytes(d, &dst->u.s, n);
    case 0xD0:
    case 0xD1:
    case 0xD2:
        if ((rc = read_size(d, 1u << (m - 0xD0), &n)))
            return rc;
        dst->type = BOLT_STRING;
        return dec_bytes(d, &dst->u.s, n);
    case 0xD4:
    case 0xD5:
    case 0xD6:
        if ((rc = read_size(d, 1u << (m - 0xD4), &n)))
            return rc;
        return dec_list(d, dst, n, depth);
    case 0xD8:
    case 0xD9:
    case 0xDA:
        if ((rc = read_size(d, 1u << (m - 0xD8), &n)))
            return rc;
        return dec_map(d, dst, n, depth);
    default:
        return dfail(d, EG_EPROTO, "reserved marker");
    }
}

int bolt_ps_decode(const uint8_t *p, size_t len, bolt_arena *arena, int bolt_major,
                   const bolt_value **out, size_t *used, eg_error *err)
{
    if (out)
        *out = NULL;
    if (used)
        *used = 0;
    if ((!p && len) || !arena || !out)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "packstream: bad arguments");
    if (!p)
        p = (const uint8_t *)empty_str;
    dec d = {p, p + len, arena, bolt_major, NULL};
    bolt_value *root = bolt_arena__alloc(arena, sizeof *root);
    if (!root)
        return eg_error_oom(err);
    int rc = dec_value(&d, root, 0);
    if (rc) {
        eg_class k = rc == EG_EPROTO ? EG_CLASS_CONNECTION : EG_CLASS_CLIENT;
        return eg_error_set(err, rc, k, "packstream: %s at byte %zu", d.why ? d.why : "error",
                            (size_t)(d.p - p));
    }
    *out = root;
    if (used)
        *used = (size_t)(d.p - p);
    return 0;
}
