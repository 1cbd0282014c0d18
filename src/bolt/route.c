/*
 * route.c - routing table bookkeeping (see route.h).
 */
#include "bolt/route.h"

#include "core/alloc.h"

#include <string.h>

static void list_clear(bolt_addr_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        eg_free(l->v[i]);
    eg_free(l->v);
    l->v = NULL;
    l->n = 0;
}

void bolt_rt_clear(bolt_rt *t)
{
    if (!t)
        return;
    eg_free(t->db);
    list_clear(&t->routers);
    list_clear(&t->readers);
    list_clear(&t->writers);
    memset(t, 0, sizeof *t);
}

static bool list_has(const bolt_addr_list *l, const char *a)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], a) == 0)
            return true;
    return false;
}

/* Append a copy of `a` unless present.  EG_ENOMEM on OOM. */
static int list_add(bolt_addr_list *l, const char *a)
{
    if (list_has(l, a))
        return 0;
    char **nv = eg_realloc(l->v, (l->n + 1) * sizeof *nv);
    if (!nv)
        return EG_ENOMEM;
    l->v = nv;
    if (!(l->v[l->n] = eg_strdup(a)))
        return EG_ENOMEM;
    l->n++;
    return 0;
}

static void list_remove(bolt_addr_list *l, const char *a)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->v[i], a) == 0) {
            eg_free(l->v[i]);
            memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof *l->v);
            l->n--;
            return;
        }
    }
}

int bolt_rt_parse_json(const json_t *rt, int64_t now_ms, bolt_rt *out, eg_error *err)
{
    bolt_rt_clear(out);
    json_t *ttl = json_object_get(rt, "ttl");
    json_t *servers = json_object_get(rt, "servers");
    if (!json_is_object(rt) || !json_is_integer(ttl) || !json_is_array(servers))
        return eg_error_set(err, EG_EPROTO, EG_CLASS_CONNECTION,
                            "malformed routing table (want {ttl, servers})");
    size_t i;
    json_t *s;
    json_array_foreach(servers, i, s) {
        const char *role = json_string_value(json_object_get(s, "role"));
        json_t *addrs = json_object_get(s, "addresses");
        if (!role || !json_is_array(addrs)) {
            bolt_rt_clear(out);
            return eg_error_set(err, EG_EPROTO, EG_CLASS_CONNECTION,
                                "malformed routing table entry (want {addresses, role})");
        }
        bolt_addr_list *l = strcmp(role, "ROUTE") == 0   ? &out->routers
                            : strcmp(role, "READ") == 0  ? &out->readers
                            : strcmp(role, "WRITE") == 0 ? &out->writers
                                                         : NULL;
        if (!l)
            continue; /* a role a newer server knows and we do not: ignore it */
        size_t j;
        json_t *a;
        json_array_foreach(addrs, j, a) {
            const char *as = json_string_value(a);
            if (!as || !*as)
                continue;
            if (list_add(l, as) < 0) {
                bolt_rt_clear(out);
                return eg_error_oom(err);
            }
        }
    }
    if (out->routers.n == 0) {
        bolt_rt_clear(out);
        return eg_error_set(err, EG_EPROTO, EG_CLASS_CONNECTION, "routing table without a router");
    }
    const char *db = json_string_value(json_object_get(rt, "db"));
    if (db && !(out->db = eg_strdup(db))) {
        bolt_rt_clear(out);
        return eg_error_oom(err);
    }
    json_int_t t = json_integer_value(ttl);
    if (t < 0)
        t = 0;
    if (t > 30LL * 24 * 3600)
        t = 30LL * 24 * 3600; /* keep the arithmetic sane on absurd values */
    out->ttl_ms = (int64_t)t * 1000;
    out->expires_ms = now_ms + out->ttl_ms;
    if (out->expires_ms == 0)
        out->expires_ms = 1; /* 0 means "never fetched" */
    return 0;
}

bool bolt_rt_stale(const bolt_rt *t, bool read_only, int64_t now_ms)
{
    if (t->expires_ms == 0 || now_ms >= t->expires_ms || t->routers.n == 0)
        return true;
    return read_only ? t->readers.n == 0 : t->writers.n == 0;
}

void bolt_rt_forget(bolt_rt *t, const char *addr)
{
    list_remove(&t->routers, addr);
    list_remove(&t->readers, addr);
    list_remove(&t->writers, addr);
}

void bolt_rt_forget_writer(bolt_rt *t, const char *addr)
{
    list_remove(&t->writers, addr);
}

bool bolt_rt_has(const bolt_rt *t, const char *addr)
{
    return list_has(&t->routers, addr) || list_has(&t->readers, addr) || list_has(&t->writers, addr);
}

int bolt_rt_pick(const bolt_addr_list *list, size_t start, size_t (*in_use)(const char *addr, void *ctx),
                 void *ctx)
{
    if (list->n == 0)
        return -1;
    int best = -1;
    size_t best_n = 0;
    for (size_t k = 0; k < list->n; k++) {
        size_t i = (start + k) % list->n;
        size_t n = in_use ? in_use(list->v[i], ctx) : 0;
        if (best < 0 || n < best_n) {
            best = (int)i;
            best_n = n;
        }
    }
    return best;
}

static json_t *list_json(const bolt_addr_list *l)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < l->n; i++)
        json_array_append_new(a, json_string(l->v[i]));
    return a;
}

json_t *bolt_rt_to_json(const bolt_rt *t, int64_t now_ms)
{
    return json_pack("{s:s?, s:I, s:I, s:o, s:o, s:o}", "db", t->db, "ttl_s", (json_int_t)(t->ttl_ms / 1000),
                     "expires_in_ms", (json_int_t)(t->expires_ms > now_ms ? t->expires_ms - now_ms : 0),
                     "routers", list_json(&t->routers), "readers", list_json(&t->readers), "writers",
                     list_json(&t->writers));
}
