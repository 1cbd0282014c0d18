/*
 * schema_validate.c - JSON-Schema subset validation + coercion (see header).
 *
 * The walk collects up to MAX_PROBLEMS messages into one buffer so the model
 * sees every missing field at once instead of fixing them one call at a time.
 */
#include "mcp/schema_validate.h"

#include "core/alloc.h"
#include "core/buf.h"
#include "core/limits.h"
#include "mcp/jsonrpc.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PROBLEMS 5
#define MAX_SCHEMA_DEPTH 32

typedef struct vctx {
    int coerce;
    json_t *notes;
    eg_buf msg;
    int problems;
} vctx;

static void problem(vctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void problem(vctx *c, const char *path, const char *fmt, ...)
{
    c->problems++;
    if (c->problems > MAX_PROBLEMS)
        return;
    if (c->msg.len)
        eg_buf_puts(&c->msg, "; ");
    eg_buf_printf(&c->msg, "%s: ", path[0] ? path : "arguments");
    va_list ap;
    va_start(ap, fmt);
    eg_buf_vprintf(&c->msg, fmt, ap);
    va_end(ap);
}

static void note(vctx *c, const char *path, const char *what)
{
    if (!c->notes)
        return;
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s: %s", path[0] ? path : "arguments", what);
    json_array_append_new(c->notes, json_string(tmp));
}

static int type_matches(const char *t, const json_t *v)
{
    if (strcmp(t, "object") == 0)
        return json_is_object(v);
    if (strcmp(t, "array") == 0)
        return json_is_array(v);
    if (strcmp(t, "string") == 0)
        return json_is_string(v);
    if (strcmp(t, "integer") == 0)
        return json_is_integer(v) || (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v) &&
                                      fabs(json_real_value(v)) < 9.0e15);
    if (strcmp(t, "number") == 0)
        return json_is_number(v);
    if (strcmp(t, "boolean") == 0)
        return json_is_boolean(v);
    if (strcmp(t, "null") == 0)
        return json_is_null(v);
    return 1; /* unknown type names do not constrain */
}

static int schema_allows(const json_t *type, const char *t)
{
    if (json_is_string(type))
        return strcmp(json_string_value(type), t) == 0;
    size_t i;
    json_t *x;
    json_array_foreach(type, i, x) if (json_is_string(x) && strcmp(json_string_value(x), t) == 0) return 1;
    return 0;
}

static int any_type_matches(const json_t *type, const json_t *v)
{
    if (!type)
        return 1;
    if (json_is_string(type))
        return type_matches(json_string_value(type), v);
    if (json_is_array(type)) {
        size_t i;
        json_t *x;
        json_array_foreach(type, i, x) if (json_is_string(x) && type_matches(json_string_value(x), v)) return 1;
        return 0;
    }
    return 1;
}

static const char *kind_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static void type_text(const json_t *type, char *out, size_t n)
{
    if (json_is_string(type)) {
        snprintf(out, n, "%s", json_string_value(type));
        return;
    }
    out[0] = '\0';
    size_t i;
    json_t *x;
    json_array_foreach(type, i, x)
    {
        size_t l = strlen(out);
        snprintf(out + l, n - l, "%s%s", i ? " or " : "", json_is_string(x) ? json_string_value(x) : "?");
    }
}

/* Try to turn a loosely typed value into one the schema's type accepts.
 * Returns a new value or NULL when no unambiguous coercion exists. */
static json_t *coerce_value(const json_t *type, const json_t *v, const char **what)
{
    if (!json_is_string(v))
        return NULL;
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    while (len && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')) {
        s++;
        len--;
    }
    if ((schema_allows(type, "array") && len && s[0] == '[') ||
        (schema_allows(type, "object") && len && s[0] == '{')) {
        /* A string can hide arbitrarily deep JSON: same cap as a message. */
        if (mcp_jsonrpc_depth(s, len, EG_LIMIT_MCP_JSON_DEPTH) > EG_LIMIT_MCP_JSON_DEPTH)
            return NULL;
        json_t *parsed = json_loadb(s, len, JSON_REJECT_DUPLICATES, NULL);
        if (parsed && any_type_matches(type, parsed)) {
            *what = "parsed a JSON string into the expected structure";
            return parsed;
        }
        json_decref(parsed);
        return NULL;
    }
    if ((schema_allows(type, "number") || schema_allows(type, "integer")) && len && len < 64) {
        char tmp[64];
        memcpy(tmp, s, len);
        tmp[len] = '\0';
        char *end = NULL;
        errno = 0;
        double d = strtod(tmp, &end);
        while (end && (*end == ' ' || *end == '\t'))
            end++;
        if (errno == 0 && end && *end == '\0' && end != tmp && isfinite(d) &&
            strpbrk(tmp, "xXnN") == NULL) {
            if (schema_allows(type, "integer") && !schema_allows(type, "number")) {
                if (floor(d) != d || fabs(d) >= 9.0e15)
                    return NULL;
                *what = "converted a numeric string to an integer";
                return json_integer((json_int_t)d);
            }
            *what = "converted a numeric string to a number";
            if (floor(d) == d && fabs(d) < 9.0e15)
                return json_integer((json_int_t)d);
            return json_real(d);
        }
        return NULL;
    }
    if (schema_allows(type, "boolean")) {
        if (len == 4 && strncmp(s, "true", 4) == 0) {
            *what = "converted \"true\" to a boolean";
            return json_true();
        }
        if (len == 5 && strncmp(s, "false", 5) == 0) {
            *what = "converted \"false\" to a boolean";
            return json_false();
        }
    }
    return NULL;
}

static void walk(vctx *c, const json_t *schema, json_t **slot, const char *path, int depth);

static void walk_object(vctx *c, const json_t *schema, json_t *obj, const char *path, int depth)
{
    const json_t *props = json_object_get(schema, "properties");
    const json_t *req = json_object_get(schema, "required");
    const json_t *addl = json_object_get(schema, "additionalProperties");
    char sub[512];
    size_t i;
    json_t *r;
    json_array_foreach(req, i, r)
    {
        if (!json_is_string(r))
            continue;
        const char *name = json_string_value(r);
        if (!json_object_get(obj, name)) {
            const json_t *ps = json_object_get(props, name);
            char tt[64] = "";
            if (ps && json_object_get(ps, "type"))
                type_text(json_object_get(ps, "type"), tt, sizeof tt);
            problem(c, path, "missing required property '%s'%s%s%s", name, tt[0] ? " (" : "", tt,
                    tt[0] ? ")" : "");
        }
    }
    const char *key;
    json_t *val;
    void *tmp;
    json_object_foreach_safe(obj, tmp, key, val)
    {
        snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", key);
        const json_t *ps = json_object_get(props, key);
        if (!ps && json_is_object(addl))
            ps = addl;
        if (!ps) {
            if (json_is_false(addl)) {
                eg_buf allowed = EG_BUF_INIT(400);
                const char *pk;
                const json_t *pv;
                json_object_foreach((json_t *)props, pk, pv)
                {
                    (void)pv;
                    eg_buf_printf(&allowed, "%s%s", allowed.len ? ", " : "", pk);
                }
                problem(c, sub, "unknown property; allowed properties here: %s",
                        allowed.ptr ? allowed.ptr : "(none)");
                eg_buf_free(&allowed);
            }
            continue;
        }
        json_t *v = json_incref(val);
        json_t *before = v;
        walk(c, ps, &v, sub, depth + 1);
        if (v != before)
            json_object_set(obj, key, v);
        json_decref(v);
    }
}

static void walk(vctx *c, const json_t *schema, json_t **slot, const char *path, int depth)
{
    if (!json_is_object(schema) || depth > MAX_SCHEMA_DEPTH)
        return;
    json_t *v = *slot;
    const json_t *type = json_object_get(schema, "type");
    if (type && !any_type_matches(type, v)) {
        const char *what = NULL;
        json_t *nv = c->coerce ? coerce_value(type, v, &what) : NULL;
        if (nv) {
            note(c, path, what);
            json_decref(*slot);
            *slot = v = nv;
        } else {
            char tt[64];
            type_text(type, tt, sizeof tt);
            const char *hint = "";
            if (schema_allows(type, "array") && json_is_string(v))
                hint = "; pass a JSON array, e.g. [\"item\"]";
            problem(c, path, "expected %s but got %s%s", tt, kind_name(v), hint);
            return;
        }
    }
    const json_t *en = json_object_get(schema, "enum");
    if (json_is_array(en)) {
        size_t i;
        json_t *x;
        int ok = 0;
        json_array_foreach(en, i, x) if (json_equal(x, v)) ok = 1;
        if (!ok) {
            char *txt = json_dumps(en, JSON_COMPACT);
            problem(c, path, "must be one of %s", txt ? txt : "the allowed values");
            eg_free(txt);
        }
    }
    if (json_is_number(v)) {
        double d = json_number_value(v);
        const json_t *mn = json_object_get(schema, "minimum");
        const json_t *mx = json_object_get(schema, "maximum");
        if (json_is_number(mn) && d < json_number_value(mn))
            problem(c, path, "must be >= %g (got %g)", json_number_value(mn), d);
        if (json_is_number(mx) && d > json_number_value(mx))
            problem(c, path, "must be <= %g (got %g)", json_number_value(mx), d);
        if (json_is_real(v) && type && schema_allows(type, "integer") && !schema_allows(type, "number")) {
            /* integral real accepted by type_matches: store as integer */
            json_t *iv = json_integer((json_int_t)d);
            if (iv) {
                json_decref(*slot);
                *slot = v = iv;
            }
        }
    }
    if (json_is_string(v)) {
        const json_t *mn = json_object_get(schema, "minLength");
        const json_t *mx = json_object_get(schema, "maxLength");
        size_t n = json_string_length(v);
        if (json_is_integer(mn) && (json_int_t)n < json_integer_value(mn))
            problem(c, path, "must be at least %lld characters",
                    (long long)json_integer_value(mn));
        if (json_is_integer(mx) && (json_int_t)n > json_integer_value(mx))
            problem(c, path, "must be at most %lld characters", (long long)json_integer_value(mx));
    }
    if (json_is_array(v)) {
        const json_t *mn = json_object_get(schema, "minItems");
        const json_t *mx = json_object_get(schema, "maxItems");
        size_t n = json_array_size(v);
        if (json_is_integer(mn) && (json_int_t)n < json_integer_value(mn))
            problem(c, path, "needs at least %lld item(s), got %zu", (long long)json_integer_value(mn), n);
        if (json_is_integer(mx) && (json_int_t)n > json_integer_value(mx))
            problem(c, path, "allows at most %lld items, got %zu", (long long)json_integer_value(mx), n);
        const json_t *items = json_object_get(schema, "items");
        if (json_is_object(items)) {
            char sub[512];
            for (size_t i = 0; i < n; i++) {
                snprintf(sub, sizeof sub, "%s[%zu]", path, i);
                json_t *e = json_incref(json_array_get(v, i));
                json_t *before = e;
                walk(c, items, &e, sub, depth + 1);
                if (e != before)
                    json_array_set(v, i, e);
                json_decref(e);
                if (c->problems > MAX_PROBLEMS)
                    break;
            }
        }
    }
    if (json_is_object(v))
        walk_object(c, schema, v, path, depth);
}

int mcp_schema_validate(const json_t *schema, json_t **inst, int coerce, json_t *notes,
                        eg_error *err)
{
    vctx c = {.coerce = coerce, .notes = notes};
    eg_buf_init(&c.msg, 2000);
    walk(&c, schema, inst, "", 0);
    if (c.problems == 0) {
        eg_buf_free(&c.msg);
        return 0;
    }
    if (c.problems > MAX_PROBLEMS)
        eg_buf_printf(&c.msg, "; and %d more problem(s)", c.problems - MAX_PROBLEMS);
    eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "%s", c.msg.ptr ? c.msg.ptr : "invalid arguments");
    eg_buf_free(&c.msg);
    return EG_EINVAL;
}
