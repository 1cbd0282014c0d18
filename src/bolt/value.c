/*
 * value.c - decoded value accessors and the bump arena behind them.
 *
 * The arena hands out memory by bumping a pointer inside big blocks, so a
 * decoded record costs a handful of pointer bumps and no malloc; reset makes
 * the whole tree disappear at once while keeping the first block, so a
 * streaming loop that resets per record never touches the heap at all.
 * The fast path is inline in arena_int.h; this file holds the slow paths.
 */
#include "bolt/arena_int.h"
#include "bolt/value.h"
#include "core/alloc.h"
#include "core/limits.h"

#include <string.h>

#define BOLT_ARENA_DEFAULT_BLOCK (64u * 1024u)
#define BOLT_ARENA_MIN_BLOCK 256u

static char *block_data(bolt_arena_block *b)
{
    return (char *)(b + 1);
}

bolt_arena *bolt_arena_new(size_t block_size)
{
    if (block_size == 0)
        block_size = BOLT_ARENA_DEFAULT_BLOCK;
    if (block_size < BOLT_ARENA_MIN_BLOCK)
        block_size = BOLT_ARENA_MIN_BLOCK;
    if (block_size > EG_LIMIT_PS_ARENA)
        block_size = EG_LIMIT_PS_ARENA;
    bolt_arena *a = eg_malloc(sizeof *a);
    if (!a)
        return NULL;
    bolt_arena_block *b = eg_malloc(sizeof *b + block_size);
    if (!b) {
        eg_free(a);
        return NULL;
    }
    b->next = NULL;
    b->size = block_size;
    a->first = b;
    a->more = NULL;
    a->block_size = block_size;
    a->used = 0;
    a->reserved = 0;
    a->cur = block_data(b);
    a->end = a->cur + block_size;
    return a;
}

static void free_more(bolt_arena *a)
{
    bolt_arena_block *b = a->more;
    while (b) {
        bolt_arena_block *next = b->next;
        eg_free(b);
        b = next;
    }
    a->more = NULL;
    a->reserved = 0;
}

void bolt_arena_free(bolt_arena *a)
{
    if (!a)
        return;
    free_more(a);
    eg_free(a->first);
    eg_free(a);
}

void bolt_arena_reset(bolt_arena *a)
{
    if (!a)
        return;
    free_more(a);
    a->used = 0;
    a->cur = block_data(a->first);
    a->end = a->cur + a->first->size;
}

size_t bolt_arena_used(const bolt_arena *a)
{
    return a ? a->used : 0;
}

void *bolt_arena_alloc(bolt_arena *a, size_t n)
{
    if (!a)
        return NULL;
    return bolt_arena__alloc(a, n);
}

void *bolt_arena__grow(bolt_arena *a, size_t n, size_t align)
{
    /* n + align - 1 leaves room to align inside a fresh block (malloc
     * alignment already suffices, but stay honest). */
    size_t need = n + align - 1;
    if (n > EG_LIMIT_PS_ARENA || a->reserved + a->first->size + need > EG_LIMIT_PS_ARENA)
        return NULL;
    bool dedicated = need > a->block_size / 2;
    size_t size = dedicated ? need : a->block_size;
    bolt_arena_block *b = eg_malloc(sizeof *b + size);
    if (!b)
        return NULL;
    b->size = size;
    b->next = a->more;
    a->more = b;
    a->reserved += size;
    uintptr_t c = ((uintptr_t)block_data(b) + (align - 1)) & ~(uintptr_t)(align - 1);
    a->used += n;
    if (!dedicated) {
        /* The rest of the old block is abandoned: cheaper than a free list. */
        a->cur = (char *)(c + n);
        a->end = block_data(b) + size;
    }
    return (void *)c;
}

/* ---- accessors ---- */

bolt_type bolt_value_type(const bolt_value *v)
{
    return v ? v->type : BOLT_NULL;
}

const char *bolt_type_name(bolt_type t)
{
    static const char *const names[] = {
        [BOLT_NULL] = "Null",
        [BOLT_BOOL] = "Boolean",
        [BOLT_INT] = "Integer",
        [BOLT_FLOAT] = "Float",
        [BOLT_BYTES] = "Bytes",
        [BOLT_STRING] = "String",
        [BOLT_LIST] = "List",
        [BOLT_MAP] = "Map",
        [BOLT_NODE] = "Node",
        [BOLT_RELATIONSHIP] = "Relationship",
        [BOLT_UNBOUND_REL] = "UnboundRelationship",
        [BOLT_PATH] = "Path",
        [BOLT_DATE] = "Date",
        [BOLT_TIME] = "Time",
        [BOLT_LOCAL_TIME] = "LocalTime",
        [BOLT_DATETIME] = "DateTime",
        [BOLT_DATETIME_ZONE_ID] = "DateTimeZoneId",
        [BOLT_LOCAL_DATETIME] = "LocalDateTime",
        [BOLT_DURATION] = "Duration",
        [BOLT_POINT2D] = "Point2D",
        [BOLT_POINT3D] = "Point3D",
        [BOLT_LEGACY_DATETIME] = "LegacyDateTime",
        [BOLT_LEGACY_DATETIME_ZONE_ID] = "LegacyDateTimeZoneId",
        [BOLT_STRUCT] = "Structure",
    };
    if ((unsigned)t >= sizeof names / sizeof names[0])
        return "Unknown";
    return names[t];
}

bool bolt_value_is_null(const bolt_value *v)
{
    return !v || v->type == BOLT_NULL;
}

int64_t bolt_value_int(const bolt_value *v, int64_t def)
{
    return v && v->type == BOLT_INT ? v->u.i : def;
}

double bolt_value_float(const bolt_value *v, double def)
{
    if (!v)
        return def;
    if (v->type == BOLT_FLOAT)
        return v->u.f;
    if (v->type == BOLT_INT)
        return (double)v->u.i;
    return def;
}

bool bolt_value_bool(const bolt_value *v, bool def)
{
    return v && v->type == BOLT_BOOL ? v->u.b : def;
}

const char *bolt_value_cstr(const bolt_value *v)
{
    return v && v->type == BOLT_STRING ? v->u.s.ptr : NULL;
}

bolt_str bolt_value_str(const bolt_value *v)
{
    if (v && (v->type == BOLT_STRING || v->type == BOLT_BYTES))
        return v->u.s;
    bolt_str none = {NULL, 0};
    return none;
}

size_t bolt_value_len(const bolt_value *v)
{
    if (!v)
        return 0;
    if (v->type == BOLT_LIST)
        return v->u.list.len;
    if (v->type == BOLT_MAP)
        return v->u.map.len;
    return 0;
}

const bolt_value *bolt_value_at(const bolt_value *v, size_t i)
{
    if (!v || v->type != BOLT_LIST || i >= v->u.list.len)
        return NULL;
    return v->u.list.items[i];
}

const bolt_value *bolt_value_get(const bolt_value *v, const char *key)
{
    if (!v || v->type != BOLT_MAP || !key)
        return NULL;
    size_t klen = strlen(key);
    /* Scan backwards: the last duplicate wins, as PackStream specifies. */
    for (size_t i = v->u.map.len; i-- > 0;) {
        const bolt_map_entry *e = &v->u.map.entries[i];
        if (e->key.len == klen && memcmp(e->key.ptr, key, klen) == 0)
            return e->value;
    }
    return NULL;
}
