/*
 * value_json.c - decoded values to JSON (bolt_value_to_json).
 *
 * Mapping (what MCP tools hand to agents):
 *   Null/Boolean/Integer/Float/String/List/Map -> the JSON counterpart
 *     (non-finite floats -> null: JSON has no NaN/Infinity; strings with
 *     invalid UTF-8 get U+FFFD for each bad byte, since jansson rejects them)
 *   Bytes -> base64 string
 *   Node  -> {"elementId","labels","properties"}
 *   Relationship -> {"elementId","type","startNodeElementId","endNodeElementId","properties"}
 *   UnboundRelationship -> {"elementId","type","properties"}
 *   Path  -> {"nodes":[...in path order], "relationships":[...with start/end]}
 *   Date/Time/LocalTime/DateTime/LocalDateTime -> ISO-8601 strings
 *     (trailing zeros of the fraction dropped and offsets "Z", "+01:00",
 *     "+01:01:01": the same text as Neo4j's toString(), checked by
 *     tests/integration/test_bolt_value_json.c)
 *   DateTimeZoneId -> UTC instant with the zone: "2024-01-02T03:04:05Z[Europe/Paris]"
 *     (RFC 9557 form; we have no tz database to compute the local offset)
 *   Duration -> ISO "P1Y2M3DT4H5M6.5S", zero as "PT0S"
 *   Point -> {"srid","x","y"[,"z"]}
 *   other structures -> {"tag": n, "fields": [...]}
 * With Bolt 4.4 (no element ids) ids are rendered as decimal strings.
 * Temporal values outside what fits the calendar math (|year| > ~1e9) are
 * rendered as "Type(field,...)" rather than risking overflow.
 */
#include "bolt/packstream.h"
#include "core/alloc.h"

#include <inttypes.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#define NANOS_PER_SEC 1000000000LL
#define MAX_DAYS 400000000000LL /* ~ year 1.1e9: keeps civil math far from overflow */

/* ------------------------------------------------------------- strings */

static bool utf8_valid_at(const unsigned char *s, size_t len, size_t i, size_t *adv)
{
    unsigned char c = s[i];
    if (c < 0x80) {
        *adv = 1;
        return true;
    }
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return false;
    if (len - i - 1 < need)
        return false;
    if (s[i + 1] < lo || s[i + 1] > hi)
        return false;
    for (size_t k = 2; k <= need; k++)
        if ((s[i + k] & 0xC0) != 0x80)
            return false;
    *adv = need + 1;
    return true;
}

static bool utf8_valid(const char *p, size_t len)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0, adv;
    /* ASCII fast path, 8 bytes at a time. */
    while (i + 8 <= len) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & 0x8080808080808080ull)
            break;
        i += 8;
    }
    for (; i < len; i += adv)
        if (!utf8_valid_at(s, len, i, &adv))
            return false;
    return true;
}

/* *new* copy with each invalid byte replaced by U+FFFD (eg_free), or NULL. */
static char *utf8_sanitize(const char *p, size_t len, size_t *out_len)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t cap;
    if (eg_mul_size(&cap, len, 3) || eg_add_size(&cap, cap, 1))
        return NULL;
    char *o = eg_malloc(cap);
    if (!o)
        return NULL;
    size_t n = 0, adv;
    for (size_t i = 0; i < len; i += adv) {
        if (utf8_valid_at(s, len, i, &adv)) {
            memcpy(o + n, s + i, adv);
            n += adv;
        } else {
            memcpy(o + n, "\xEF\xBF\xBD", 3);
            n += 3;
            adv = 1;
        }
    }
    *out_len = n;
    return o;
}

/* New string json; invalid UTF-8 bytes become U+FFFD. NULL on OOM. */
static json_t *jstr(const char *p, size_t len)
{
    if (!p)
        p = "";
    if (utf8_valid(p, len))
        return json_stringn_nocheck(p, len);
    size_t n;
    char *o = utf8_sanitize(p, len, &n);
    if (!o)
        return NULL;
    json_t *j = json_stringn_nocheck(o, n);
    eg_free(o);
    return j;
}

static json_t *jbstr(bolt_str s)
{
    return jstr(s.ptr, s.len);
}

/* Set obj[key] = val (stolen, also on failure); -1 on failure. */
static int jset(json_t *obj, const char *key, size_t klen, json_t *val)
{
    if (!val)
        return -1;
    if (utf8_valid(key, klen))
        return json_object_setn_new_nocheck(obj, key, klen, val);
    size_t n;
    char *k = utf8_sanitize(key, klen, &n);
    if (!k) {
        json_decref(val);
        return -1;
    }
    int rc = json_object_setn_new_nocheck(obj, k, n, val);
    eg_free(k);
    return rc;
}

static int jsetc(json_t *obj, const char *key, json_t *val)
{
    return json_object_set_new(obj, key, val);
}

static json_t *jid(bolt_str element_id, int64_t id)
{
    if (element_id.len)
        return jbstr(element_id);
    char b[24];
    int n = snprintf(b, sizeof b, "%" PRId64, id);
    return json_stringn(b, (size_t)n);
}

static json_t *jfloat(double f)
{
    return isfinite(f) ? json_real(f) : json_null();
}

static json_t *base64(bolt_str s)
{
    if (s.len > (size_t)INT32_MAX / 2)
        return NULL;
    size_t cap = 4 * ((s.len + 2) / 3) + 1;
    unsigned char *o = eg_malloc(cap);
    if (!o)
        return NULL;
    int n = EVP_EncodeBlock(o, (const unsigned char *)s.ptr, (int)s.len);
    json_t *j = n >= 0 ? json_stringn((const char *)o, (size_t)n) : NULL;
    eg_free(o);
    return j;
}

/* ------------------------------------------------------------ temporal */

static int64_t floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

/* Howard Hinnant's days -> civil date; |z| <= MAX_DAYS. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

static size_t fmt_date(char *o, size_t cap, int64_t days)
{
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int n;
    if (y > 9999)
        n = snprintf(o, cap, "+%" PRId64 "-%02u-%02u", y, m, d);
    else if (y < 0)
        n = snprintf(o, cap, "-%04" PRId64 "-%02u-%02u", -y, m, d);
    else
        n = snprintf(o, cap, "%04" PRId64 "-%02u-%02u", y, m, d);
    return (size_t)n;
}

/* ".f..." for 0 < nanos < 1e9, trailing zeros dropped. */
static size_t fmt_frac(char *o, size_t cap, int64_t nanos)
{
    char frac[16];
    snprintf(frac, sizeof frac, "%09d", (int)nanos);
    size_t fl = 9;
    while (fl > 0 && frac[fl - 1] == '0')
        fl--;
    frac[fl] = '\0';
    return (size_t)snprintf(o, cap, ".%s", frac);
}

/*
 * HH:MM:SS[.f...] from seconds of day and nanos in range; the fraction drops
 * trailing zeros, exactly as Neo4j's toString() does.
 */
static size_t fmt_time(char *o, size_t cap, int64_t sod, int64_t nanos)
{
    int n = snprintf(o, cap, "%02d:%02d:%02d", (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60));
    if (nanos)
        n += (int)fmt_frac(o + n, cap - (size_t)n, nanos);
    return (size_t)n;
}

#define MAX_OFFSET (18 * 3600) /* java.time's ZoneOffset range */

static size_t fmt_offset(char *o, size_t cap, int64_t off)
{
    if (off == 0)
        return (size_t)snprintf(o, cap, "Z");
    char sign = off < 0 ? '-' : '+';
    int64_t a = off < 0 ? -off : off;
    int n = snprintf(o, cap, "%c%02d:%02d", sign, (int)(a / 3600), (int)(a / 60 % 60));
    if (a % 60)
        n += snprintf(o + n, cap - (size_t)n, ":%02d", (int)(a % 60));
    return (size_t)n;
}

/* Fold nanos into [0, 1e9) moving whole seconds into *s; false on overflow. */
static bool norm_nanos(int64_t *s, int64_t *nanos)
{
    int64_t carry = floordiv(*nanos, NANOS_PER_SEC);
    int64_t r = *nanos % NANOS_PER_SEC;
    *nanos = r < 0 ? r + NANOS_PER_SEC : r;
    return !__builtin_add_overflow(*s, carry, s);
}

/*
 * Local date-time from local epoch seconds; zone appended by the caller.
 * Returns 0 when the value does not fit the calendar math.
 */
static size_t fmt_local_dt(char *o, size_t cap, int64_t secs, int64_t nanos)
{
    if (!norm_nanos(&secs, &nanos))
        return 0;
    int64_t days = floordiv(secs, 86400);
    if (days > MAX_DAYS || days < -MAX_DAYS)
        return 0;
    int64_t sod = secs - days * 86400;
    size_t n = fmt_date(o, cap, days);
    o[n++] = 'T';
    return n + fmt_time(o + n, cap - n, sod, nanos);
}

static json_t *raw_temporal(const char *name, int nf, int64_t a, int64_t b, int64_t c)
{
    char t[128];
    int n;
    if (nf == 1)
        n = snprintf(t, sizeof t, "%s(%" PRId64 ")", name, a);
    else if (nf == 2)
        n = snprintf(t, sizeof t, "%s(%" PRId64 ",%" PRId64 ")", name, a, b);
    else
        n = snprintf(t, sizeof t, "%s(%" PRId64 ",%" PRId64 ",%" PRId64 ")", name, a, b, c);
    return json_stringn(t, (size_t)n);
}

static json_t *temporal_json(const bolt_value *v)
{
    char t[160];
    size_t n = 0;
    const char *name = bolt_type_name(v->type);
    int64_t s = v->u.temporal.seconds, ns = v->u.temporal.nanos, off = v->u.temporal.tz_offset_seconds;
    switch (v->type) {
    case BOLT_DATE:
        if (v->u.temporal.days > MAX_DAYS || v->u.temporal.days < -MAX_DAYS)
            return raw_temporal(name, 1, v->u.temporal.days, 0, 0);
        n = fmt_date(t, sizeof t, v->u.temporal.days);
        break;
    case BOLT_TIME:
    case BOLT_LOCAL_TIME: {
        bool zoned = v->type == BOLT_TIME;
        if (ns < 0 || ns >= 86400 * NANOS_PER_SEC || (zoned && (off > MAX_OFFSET || off < -MAX_OFFSET)))
            return raw_temporal(name, zoned ? 2 : 1, ns, off, 0);
        n = fmt_time(t, sizeof t, ns / NANOS_PER_SEC, ns % NANOS_PER_SEC);
        if (zoned)
            n += fmt_offset(t + n, sizeof t - n, off);
        break;
    }
    case BOLT_DATETIME:
    case BOLT_LEGACY_DATETIME: {
        /* 'I' carries UTC seconds: shift to local time; 'F' is local already. */
        int64_t local = s;
        if (off > MAX_OFFSET || off < -MAX_OFFSET ||
            (v->type == BOLT_DATETIME && __builtin_add_overflow(s, off, &local)) ||
            !(n = fmt_local_dt(t, sizeof t, local, ns)))
            return raw_temporal(name, 3, s, ns, off);
        n += fmt_offset(t + n, sizeof t - n, off);
        break;
    }
    case BOLT_LOCAL_DATETIME:
        if (!(n = fmt_local_dt(t, sizeof t, s, ns)))
            return raw_temporal(name, 2, s, ns, 0);
        break;
    case BOLT_DATETIME_ZONE_ID:
    case BOLT_LEGACY_DATETIME_ZONE_ID: {
        if (!(n = fmt_local_dt(t, sizeof t, s, ns)))
            return raw_temporal(name, 2, s, ns, 0);
        if (v->type == BOLT_DATETIME_ZONE_ID)
            t[n++] = 'Z';
        /* The zone name can be long: assemble in an eg_buf. */
        eg_buf b = EG_BUF_INIT(0);
        json_t *j = NULL;
        if (eg_buf_append(&b, t, n) == 0 && eg_buf_putc(&b, '[') == 0 &&
            eg_buf_append(&b, v->u.temporal.tz_id.ptr, v->u.temporal.tz_id.len) == 0 &&
            eg_buf_putc(&b, ']') == 0)
            j = jstr(b.ptr, b.len);
        eg_buf_free(&b);
        return j;
    }
    default:
        return NULL;
    }
    return json_stringn(t, n);
}

static json_t *duration_json(const bolt_value *v)
{
    int64_t months = v->u.duration.months, days = v->u.duration.days;
    int64_t s = v->u.duration.seconds, ns = v->u.duration.nanos;
    /* Fold nanos into seconds, then give both the same sign. */
    int64_t carry = ns / NANOS_PER_SEC;
    ns %= NANOS_PER_SEC;
    if (__builtin_add_overflow(s, carry, &s))
        return raw_temporal("Duration", 3, months, days, v->u.duration.seconds);
    if (s > 0 && ns < 0) {
        s--;
        ns += NANOS_PER_SEC;
    } else if (s < 0 && ns > 0) {
        s++;
        ns -= NANOS_PER_SEC;
    }
    char t[192];
    int n = snprintf(t, sizeof t, "P");
    if (months / 12)
        n += snprintf(t + n, sizeof t - (size_t)n, "%" PRId64 "Y", months / 12);
    if (months % 12)
        n += snprintf(t + n, sizeof t - (size_t)n, "%" PRId64 "M", months % 12);
    if (days)
        n += snprintf(t + n, sizeof t - (size_t)n, "%" PRId64 "D", days);
    int64_t h = s / 3600, mi = s % 3600 / 60, sec = s % 60;
    if (h || mi || sec || ns || n == 1) {
        t[n++] = 'T';
        if (h)
            n += snprintf(t + n, sizeof t - (size_t)n, "%" PRId64 "H", h);
        if (mi)
            n += snprintf(t + n, sizeof t - (size_t)n, "%" PRId64 "M", mi);
        if (sec || ns || (!h && !mi)) {
            bool neg = sec < 0 || ns < 0;
            int64_t as = sec < 0 ? -sec : sec, an = ns < 0 ? -ns : ns;
            n += snprintf(t + n, sizeof t - (size_t)n, "%s%" PRId64, neg ? "-" : "", as);
            if (an)
                n += (int)fmt_frac(t + n, sizeof t - (size_t)n, an);
            t[n++] = 'S';
        }
    }
    return json_stringn(t, (size_t)n);
}

/* ---------------------------------------------------------- structures */

static json_t *props_json(const bolt_value *props)
{
    return props ? bolt_value_to_json(props) : json_object();
}

static json_t *node_json(const bolt_value *v)
{
    json_t *o = json_object();
    json_t *labels = json_array();
    if (!o || !labels)
        goto fail;
    for (size_t i = 0; i < v->u.node.nlabels; i++)
        if (json_array_append_new(labels, jbstr(v->u.node.labels[i])))
            goto fail;
    if (jsetc(o, "elementId", jid(v->u.node.element_id, v->u.node.id)))
        goto fail;
    json_t *l = labels;
    labels = NULL;
    if (jsetc(o, "labels", l) || jsetc(o, "properties", props_json(v->u.node.props)))
        goto fail_o;
    return o;
fail:
    json_decref(labels);
fail_o:
    json_decref(o);
    return NULL;
}

/* start/end given explicitly for path segments (unbound rels). */
static json_t *rel_json(const bolt_value *v, json_t *start, json_t *end)
{
    json_t *o = json_object();
    if (!o)
        goto fail;
    if (jsetc(o, "elementId", jid(v->u.rel.element_id, v->u.rel.id)) ||
        jsetc(o, "type", jbstr(v->u.rel.type)))
        goto fail;
    if (v->type == BOLT_RELATIONSHIP) {
        start = jid(v->u.rel.start_element_id, v->u.rel.start_id);
        end = jid(v->u.rel.end_element_id, v->u.rel.end_id);
    }
    if (start) {
        json_t *s = start, *e = end;
        start = end = NULL;
        if (jsetc(o, "startNodeElementId", s)) {
            json_decref(e);
            goto fail;
        }
        if (jsetc(o, "endNodeElementId", e))
            goto fail;
    }
    if (jsetc(o, "properties", props_json(v->u.rel.props)))
        goto fail;
    return o;
fail:
    json_decref(start);
    json_decref(end);
    json_decref(o);
    return NULL;
}

static json_t *path_json(const bolt_value *v)
{
    const bolt_value *nodes = v->u.path.nodes, *rels = v->u.path.rels, *idx = v->u.path.indices;
    size_t nn = bolt_value_len(nodes), nr = bolt_value_len(rels), ni = bolt_value_len(idx);
    json_t *o = json_object(), *jn = json_array(), *jr = json_array();
    if (!o || !jn || !jr)
        goto fail;
    bool ok = nn > 0 && ni % 2 == 0;
    if (ok) {
        /* Walk the segments: indices alternate (rel 1-based, signed for
         * direction) and (node 0-based). */
        const bolt_value *prev = nodes->u.list.items[0];
        if (json_array_append_new(jn, node_json(prev)))
            goto fail;
        for (size_t k = 0; ok && k < ni; k += 2) {
            int64_t ri = idx->u.list.items[k]->u.i, nx = idx->u.list.items[k + 1]->u.i;
            if (ri == 0 || ri > (int64_t)nr || ri < -(int64_t)nr || nx < 0 || nx >= (int64_t)nn) {
                ok = false;
                break;
            }
            const bolt_value *rel = rels->u.list.items[(ri > 0 ? ri : -ri) - 1];
            const bolt_value *next = nodes->u.list.items[nx];
            const bolt_value *s = ri > 0 ? prev : next, *e = ri > 0 ? next : prev;
            json_t *sid = jid(s->u.node.element_id, s->u.node.id);
            json_t *eid = jid(e->u.node.element_id, e->u.node.id);
            if (!sid || !eid) {
                json_decref(sid);
                json_decref(eid);
                goto fail;
            }
            if (json_array_append_new(jr, rel_json(rel, sid, eid)) ||
                json_array_append_new(jn, node_json(next)))
                goto fail;
            prev = next;
        }
    }
    if (!ok) {
        /* Inconsistent indices: show the parts as sent. */
        json_array_clear(jn);
        json_array_clear(jr);
        for (size_t i = 0; i < nn; i++)
            if (json_array_append_new(jn, node_json(nodes->u.list.items[i])))
                goto fail;
        for (size_t i = 0; i < nr; i++)
            if (json_array_append_new(jr, rel_json(rels->u.list.items[i], NULL, NULL)))
                goto fail;
    }
    json_t *a = jn, *b = jr;
    jn = jr = NULL;
    if (jsetc(o, "nodes", a)) {
        json_decref(b);
        goto fail;
    }
    if (jsetc(o, "relationships", b))
        goto fail;
    return o;
fail:
    json_decref(jn);
    json_decref(jr);
    json_decref(o);
    return NULL;
}

static json_t *point_json(const bolt_value *v)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (jsetc(o, "srid", json_integer(v->u.point.srid)) || jsetc(o, "x", jfloat(v->u.point.x)) ||
        jsetc(o, "y", jfloat(v->u.point.y)) ||
        (v->type == BOLT_POINT3D && jsetc(o, "z", jfloat(v->u.point.z)))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *bolt_value_to_json(const bolt_value *v)
{
    if (!v)
        return json_null();
    switch (v->type) {
    case BOLT_NULL:
        return json_null();
    case BOLT_BOOL:
        return json_boolean(v->u.b);
    case BOLT_INT:
        return json_integer(v->u.i);
    case BOLT_FLOAT:
        return jfloat(v->u.f);
    case BOLT_BYTES:
        return base64(v->u.s);
    case BOLT_STRING:
        return jbstr(v->u.s);
    case BOLT_LIST: {
        json_t *a = json_array();
        if (!a)
            return NULL;
        for (size_t i = 0; i < v->u.list.len; i++) {
            if (json_array_append_new(a, bolt_value_to_json(v->u.list.items[i]))) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case BOLT_MAP: {
        json_t *o = json_object();
        if (!o)
            return NULL;
        for (size_t i = 0; i < v->u.map.len; i++) {
            const bolt_map_entry *e = &v->u.map.entries[i];
            /* Later duplicates overwrite earlier ones: last wins. */
            if (jset(o, e->key.ptr, e->key.len, bolt_value_to_json(e->value))) {
                json_decref(o);
                return NULL;
            }
        }
        return o;
    }
    case BOLT_NODE:
        return node_json(v);
    case BOLT_RELATIONSHIP:
    case BOLT_UNBOUND_REL:
        return rel_json(v, NULL, NULL);
    case BOLT_PATH:
        return path_json(v);
    case BOLT_DATE:
    case BOLT_TIME:
    case BOLT_LOCAL_TIME:
    case BOLT_DATETIME:
    case BOLT_DATETIME_ZONE_ID:
    case BOLT_LOCAL_DATETIME:
    case BOLT_LEGACY_DATETIME:
    case BOLT_LEGACY_DATETIME_ZONE_ID:
        return temporal_json(v);
    case BOLT_DURATION:
        return duration_json(v);
    case BOLT_POINT2D:
    case BOLT_POINT3D:
        return point_json(v);
    case BOLT_STRUCT: {
        json_t *o = json_object(), *f = json_array();
        if (!o || !f)
            goto sfail;
        for (size_t i = 0; i < v->u.st.nfields; i++)
            if (json_array_append_new(f, bolt_value_to_json(v->u.st.fields[i])))
                goto sfail;
        if (jsetc(o, "tag", json_integer(v->u.st.tag))) {
            goto sfail;
        }
        json_t *ff = f;
        f = NULL;
        if (jsetc(o, "fields", ff))
            goto sfail;
        return o;
    sfail:
        json_decref(f);
        json_decref(o);
        return NULL;
    }
    }
    return NULL;
}
