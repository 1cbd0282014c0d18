/*
 * value.h - decoded PackStream values (read-only trees).
 *
 * Values decoded from the wire live in a bolt_arena owned by whoever decoded
 * them (a record, a result summary, a test).  Every accessor returns
 * *borrowed* data valid until that arena is reset or freed; copy what you
 * keep.  Strings are NOT NUL-terminated on the wire; bolt_value_str returns
 * (ptr, len) and the decoder additionally stores a terminating NUL so `ptr`
 * can be used as a C string when the string has no embedded NUL.
 *
 * Structures with a known tag are decoded into typed values (Node, Date, ...);
 * unknown tags become BOLT_STRUCT with raw fields.  Bolt 4.4 graph
 * structures (3/5/3 fields, no element ids) are accepted too; element ids are
 * then empty strings.
 *
 * Thread-safety: a value tree is immutable; share it read-only.
 */
#ifndef ENGRAM_BOLT_VALUE_H
#define ENGRAM_BOLT_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum bolt_type {
    BOLT_NULL = 0,
    BOLT_BOOL,
    BOLT_INT,
    BOLT_FLOAT,
    BOLT_BYTES,
    BOLT_STRING,
    BOLT_LIST,
    BOLT_MAP,
    BOLT_NODE,               /* 'N' */
    BOLT_RELATIONSHIP,       /* 'R' */
    BOLT_UNBOUND_REL,        /* 'r' */
    BOLT_PATH,               /* 'P' */
    BOLT_DATE,               /* 'D' days */
    BOLT_TIME,               /* 'T' nanos, tz_offset_seconds */
    BOLT_LOCAL_TIME,         /* 't' nanos */
    BOLT_DATETIME,           /* 'I' seconds(UTC), nanos, tz_offset_seconds */
    BOLT_DATETIME_ZONE_ID,   /* 'i' seconds(UTC), nanos, tz_id */
    BOLT_LOCAL_DATETIME,     /* 'd' seconds, nanos */
    BOLT_DURATION,           /* 'E' months, days, seconds, nanos */
    BOLT_POINT2D,            /* 'X' srid, x, y */
    BOLT_POINT3D,            /* 'Y' srid, x, y, z */
    BOLT_LEGACY_DATETIME,    /* 'F' (4.4 without utc patch) seconds(local), nanos, offset */
    BOLT_LEGACY_DATETIME_ZONE_ID, /* 'f' */
    BOLT_STRUCT              /* any other tag: raw fields */
} bolt_type;

typedef struct bolt_value bolt_value;

typedef struct bolt_str {
    const char *ptr; /* NUL-terminated copy in the arena */
    size_t len;
} bolt_str;

typedef struct bolt_map_entry {
    bolt_str key;
    const bolt_value *value;
} bolt_map_entry;

struct bolt_value {
    bolt_type type;
    union {
        bool b;
        int64_t i;
        double f;
        bolt_str s;                       /* STRING, and BYTES (ptr,len) */
        struct { size_t len; const bolt_value *const *items; } list;
        struct { size_t len; const bolt_map_entry *entries; } map;
        struct {
            int64_t id;
            size_t nlabels;
            const bolt_str *labels;
            const bolt_value *props;      /* BOLT_MAP */
            bolt_str element_id;
        } node;
        struct {
            int64_t id, start_id, end_id; /* start/end are 0 for UNBOUND_REL */
            bolt_str type;
            const bolt_value *props;      /* BOLT_MAP */
            bolt_str element_id, start_element_id, end_element_id;
        } rel;
        struct {
            const bolt_value *nodes;      /* BOLT_LIST of BOLT_NODE */
            const bolt_value *rels;       /* BOLT_LIST of BOLT_UNBOUND_REL */
            const bolt_value *indices;    /* BOLT_LIST of BOLT_INT */
        } path;
        struct {
            int64_t seconds;              /* DATETIME*: epoch seconds; LOCAL_DATETIME: local */
            int64_t nanos;                /* TIME/LOCAL_TIME: nanos since midnight */
            int64_t days;                 /* DATE */
            int64_t tz_offset_seconds;    /* TIME, DATETIME, LEGACY_DATETIME */
            bolt_str tz_id;               /* DATETIME_ZONE_ID */
        } temporal;
        struct { int64_t months, days, seconds, nanos; } duration;
        struct { int64_t srid; double x, y, z; } point;
        struct { uint8_t tag; size_t nfields; const bolt_value *const *fields; } st;
    } u;
};

/* Accessors; all tolerate NULL (treated as BOLT_NULL) and wrong types. */
bolt_type bolt_value_type(const bolt_value *v);
const char *bolt_type_name(bolt_type t);
bool bolt_value_is_null(const bolt_value *v);
/* Return def when v is not of the requested type. */
int64_t bolt_value_int(const bolt_value *v, int64_t def);
double bolt_value_float(const bolt_value *v, double def); /* accepts INT too */
bool bolt_value_bool(const bolt_value *v, bool def);
/* Borrowed C string, or NULL when not a string. */
const char *bolt_value_cstr(const bolt_value *v);
bolt_str bolt_value_str(const bolt_value *v);
size_t bolt_value_len(const bolt_value *v);                  /* list items / map entries */
const bolt_value *bolt_value_at(const bolt_value *v, size_t i); /* list item */
const bolt_value *bolt_value_get(const bolt_value *v, const char *key); /* map lookup (last wins) */

/* ---- arena ---- */
typedef struct bolt_arena bolt_arena;
/*
 * New arena (block_size 0: 64 KiB blocks); caller frees with bolt_arena_free.
 * NULL on OOM.  One arena holds at most EG_LIMIT_PS_ARENA bytes.
 */
bolt_arena *bolt_arena_new(size_t block_size);
void bolt_arena_free(bolt_arena *a);
/* Forget all allocations but keep the first block for reuse. */
void bolt_arena_reset(bolt_arena *a);
/* Aligned allocation from the arena; NULL on OOM or when `n` exceeds limits. */
void *bolt_arena_alloc(bolt_arena *a, size_t n);
size_t bolt_arena_used(const bolt_arena *a);

#endif
