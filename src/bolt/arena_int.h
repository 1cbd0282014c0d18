/*
 * arena_int.h - bolt_arena internals shared by value.c and packstream_read.c.
 *
 * Private to src/bolt/: the decoder inlines the bump fast path so that
 * decoding a value costs a pointer compare and an add, not a call.
 *
 * Layout: a first block allocated with the arena (kept across resets), and a
 * list of further blocks (`more`) freed by reset.  cur/end delimit the free
 * space of the block being filled.  Requests larger than half a block get a
 * dedicated block so that the current block keeps being filled.
 *
 * Thread-safety: none (an arena has one owner).
 */
#ifndef ENGRAM_BOLT_ARENA_INT_H
#define ENGRAM_BOLT_ARENA_INT_H

#include "bolt/value.h"

#include <stdint.h>

typedef struct bolt_arena_block {
    struct bolt_arena_block *next;
    size_t size; /* usable bytes after the header */
} bolt_arena_block;

struct bolt_arena {
    char *cur;
    char *end;
    size_t used;              /* bytes handed out since the last reset */
    size_t reserved;          /* bytes held in `more` blocks (cap accounting) */
    size_t block_size;
    bolt_arena_block *first;  /* never freed before bolt_arena_free */
    bolt_arena_block *more;   /* freed by reset */
};

#define BOLT_ARENA_ALIGN 8u

/* Slow paths (value.c); NULL on OOM or when the arena cap is hit. */
void *bolt_arena__grow(bolt_arena *a, size_t n, size_t align);

/* n bytes aligned to 8. */
static inline void *bolt_arena__alloc(bolt_arena *a, size_t n)
{
    uintptr_t c = ((uintptr_t)a->cur + (BOLT_ARENA_ALIGN - 1)) & ~(uintptr_t)(BOLT_ARENA_ALIGN - 1);
    uintptr_t e = (uintptr_t)a->end;
    if (__builtin_expect(c <= e && n <= e - c, 1)) {
        a->cur = (char *)(c + n);
        a->used += n;
        return (void *)c;
    }
    return bolt_arena__grow(a, n, BOLT_ARENA_ALIGN);
}

/* n bytes with no alignment (strings). */
static inline char *bolt_arena__alloc_bytes(bolt_arena *a, size_t n)
{
    if (__builtin_expect(n <= (size_t)(a->end - a->cur), 1)) {
        char *p = a->cur;
        a->cur += n;
        a->used += n;
        return p;
    }
    return bolt_arena__grow(a, n, 1);
}

#endif
