/*
 * obs_set.c - sets of observation strings, for de-duplicating and merging
 * observation lists in O(n) expected time.
 *
 * An entity may hold GRAPH_MAX_OBSERVATIONS (10,000) observations and one
 * call may send as many; comparing every new observation with every kept one
 * was quadratic (measured: issue #14, finding 4).  The set is an
 * open-addressing hash table (linear probing, FNV-1a, load <= 1/2) of
 * *borrowed* strings: the JSON arrays the strings live in must outlive it.
 * Strings are compared by length and bytes, so an embedded NUL cannot make
 * two different observations equal.
 *
 * Thread-safety: a set belongs to one thread; graph__obs_apply is reentrant.
 */
#include "graph/graph_int.h"

#include "core/alloc.h"

#include <string.h>

typedef struct slot {
    const char *s; /* NULL: empty */
    size_t len;
    uint64_t hash;
} slot;

struct graph_obs_set {
    slot *slots;
    size_t cap; /* power of two */
    size_t n;
};

static uint64_t fnv1a(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

graph_obs_set *graph__obs_set_new(size_t hint)
{
    graph_obs_set *set = eg_calloc(1, sizeof *set);
    if (set == NULL)
        return NULL;
    size_t cap = 16;
    while (cap < 2 * hint + 2 && cap < ((size_t)1 << 40))
        cap <<= 1;
    set->slots = eg_calloc(cap, sizeof *set->slots);
    if (set->slots == NULL) {
        eg_free(set);
        return NULL;
    }
    set->cap = cap;
    return set;
}

void graph__obs_set_free(graph_obs_set *set)
{
    if (set == NULL)
        return;
    eg_free(set->slots);
    eg_free(set);
}

/* The slot holding (s,len), or the empty slot where it would go. */
static slot *find(const graph_obs_set *set, const char *s, size_t len, uint64_t h)
{
    size_t mask = set->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        slot *sl = &set->slots[i];
        if (sl->s == NULL || (sl->hash == h && sl->len == len && memcmp(sl->s, s, len) == 0))
            return sl;
    }
}

static int grow(graph_obs_set *set)
{
    size_t cap = set->cap * 2;
    slot *old = set->slots, *nw = eg_calloc(cap, sizeof *nw);
    if (nw == NULL)
        return EG_ENOMEM;
    size_t ocap = set->cap;
    set->slots = nw;
    set->cap = cap;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].s)
            *find(set, old[i].s, old[i].len, old[i].hash) = old[i];
    eg_free(old);
    return 0;
}

int graph__obs_set_add(graph_obs_set *set, const char *s, size_t len)
{
    if ((set->n + 1) * 2 > set->cap && grow(set) != 0)
        return EG_ENOMEM;
    uint64_t h = fnv1a(s, len);
    slot *sl = find(set, s, len, h);
    if (sl->s)
        return 0;
    *sl = (slot){s, len, h};
    set->n++;
    return 1;
}

bool graph__obs_set_has(const graph_obs_set *set, const char *s, size_t len)
{
    return find(set, s, len, fnv1a(s, len))->s != NULL;
}

/* Add every string of `list` to the set (non-strings are skipped). */
static int add_all(graph_obs_set *set, const json_t *list)
{
    size_t i;
    json_t *x;
    json_array_foreach(list, i, x)
    {
        if (json_is_string(x) && graph__obs_set_add(set, json_string_value(x), json_string_length(x)) < 0)
            return EG_ENOMEM;
    }
    return 0;
}

int graph__obs_apply(const json_t *cur, const json_t *in, bool remove, json_t **next_out,
                    json_t **delta_out, eg_error *err)
{
    *next_out = *delta_out = NULL;
    json_t *next = json_array(), *delta = json_array();
    graph_obs_set *set = graph__obs_set_new(json_array_size(cur) + json_array_size(in));
    int rc = (next && delta && set) ? 0 : EG_ENOMEM;
    size_t i;
    json_t *x;
    if (rc == 0 && remove) {
        rc = add_all(set, in);
        json_array_foreach(cur, i, x)
        {
            if (rc != 0)
                break;
            bool gone = json_is_string(x) && graph__obs_set_has(set, json_string_value(x), json_string_length(x));
            if (json_array_append(gone ? delta : next, x) != 0)
                rc = EG_ENOMEM;
        }
    } else if (rc == 0) {
        if (json_array_extend(next, (json_t *)cur) != 0)
            rc = EG_ENOMEM;
        if (rc == 0)
            rc = add_all(set, cur);
        json_array_foreach(in, i, x)
        {
            if (rc != 0)
                break;
            if (!json_is_string(x))
                continue;
            int added = graph__obs_set_add(set, json_string_value(x), json_string_length(x));
            if (added < 0 || (added == 1 && (json_array_append(next, x) || json_array_append(delta, x))))
                rc = EG_ENOMEM;
        }
    }
    graph__obs_set_free(set);
    if (rc != 0) {
        json_decref(next);
        json_decref(delta);
        return eg_error_oom(err);
    }
    *next_out = next;
    *delta_out = delta;
    return 0;
}
