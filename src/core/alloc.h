/*
 * alloc.h - the one allocation layer.
 *
 * All heap memory in engram goes through these wrappers so that tests can make
 * allocation N fail (torture tests) and so that OOM is propagated, never
 * aborted on: every caller checks for NULL and returns EG_ENOMEM.
 *
 * Ownership: eg_malloc/eg_calloc/eg_realloc/eg_strdup/eg_strndup/eg_memdup
 * return *new* memory the caller releases with eg_free (which accepts NULL).
 * jansson allocates through eg_malloc/eg_free as well (set before main), so
 * json_dumps results are released with eg_free.
 *
 * Thread-safety: all functions are thread-safe; the failure hook is a
 * process-wide test facility (set it before starting threads).
 */
#ifndef ENGRAM_CORE_ALLOC_H
#define ENGRAM_CORE_ALLOC_H

#include <stddef.h>

void *eg_malloc(size_t n);
void *eg_calloc(size_t nmemb, size_t size);
void *eg_realloc(void *p, size_t n);
void eg_free(void *p);
char *eg_strdup(const char *s);
char *eg_strndup(const char *s, size_t n);
void *eg_memdup(const void *p, size_t n);

/*
 * Test hook: make the allocation with ordinal `fail_at` (1-based, counted from
 * this call) and, if `sticky`, every later one, return NULL.  fail_at == 0
 * disables failures.  Returns the number of allocations since the last call.
 */
unsigned long eg_alloc_fail_at(unsigned long fail_at, int sticky);

/* Overflow-checked helpers; return 0 on success, EG_ETOOBIG on overflow. */
int eg_add_size(size_t *out, size_t a, size_t b);
int eg_mul_size(size_t *out, size_t a, size_t b);

#endif
