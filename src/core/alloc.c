/*
 * alloc.c - allocation wrappers with a fault-injection hook for tests.
 */
#include "core/alloc.h"
#include "core/err.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_ulong alloc_count;
static atomic_ulong fail_at_count; /* 0 = never fail */
static atomic_int fail_sticky;

static int should_fail(void)
{
    unsigned long target = atomic_load_explicit(&fail_at_count, memory_order_relaxed);
    unsigned long n = atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed) + 1;
    if (target == 0)
        return 0;
    if (n == target)
        return 1;
    return n > target && atomic_load_explicit(&fail_sticky, memory_order_relaxed);
}

unsigned long eg_alloc_fail_at(unsigned long fail_at, int sticky)
{
    unsigned long n = atomic_exchange(&alloc_count, 0);
    atomic_store(&fail_sticky, sticky);
    atomic_store(&fail_at_count, fail_at);
    return n;
}

void *eg_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *eg_calloc(size_t nmemb, size_t size)
{
    if (should_fail())
        return NULL;
    if (nmemb == 0 || size == 0)
        nmemb = size = 1;
    return calloc(nmemb, size);
}

void *eg_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void eg_free(void *p)
{
    free(p);
}

/*
 * jansson allocates through this layer too, so the failure hook reaches
 * JSON building and parsing (most of what a tool call allocates), and
 * json_dumps memory is released with eg_free like everything else.  A
 * constructor, because it must run before the first JSON value exists and
 * engram has several entry points (the CLI, every test, fuzz and bench
 * binary); json_set_alloc_funcs only stores two pointers.
 */
__attribute__((constructor)) static void route_jansson(void)
{
    json_set_alloc_funcs(eg_malloc, eg_free);
}

void *eg_memdup(const void *p, size_t n)
{
    void *q = eg_malloc(n);
    if (q && n)
        memcpy(q, p, n);
    return q;
}

char *eg_strndup(const char *s, size_t n)
{
    if (!s)
        return NULL;
    size_t len = strnlen(s, n);
    char *q = eg_malloc(len + 1);
    if (!q)
        return NULL;
    memcpy(q, s, len);
    q[len] = '\0';
    return q;
}

char *eg_strdup(const char *s)
{
    if (!s)
        return NULL;
    return eg_memdup(s, strlen(s) + 1);
}

int eg_add_size(size_t *out, size_t a, size_t b)
{
    if (__builtin_add_overflow(a, b, out))
        return EG_ETOOBIG;
    return 0;
}

int eg_mul_size(size_t *out, size_t a, size_t b)
{
    if (__builtin_mul_overflow(a, b, out))
        return EG_ETOOBIG;
    return 0;
}
