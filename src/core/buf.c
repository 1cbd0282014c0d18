/*
 * buf.c - growable capped buffer.
 */
#include "core/buf.h"
#include "core/alloc.h"
#include "core/err.h"

#include <stdio.h>
#include <string.h>

void eg_buf_init(eg_buf *b, size_t max)
{
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void eg_buf_free(eg_buf *b)
{
    if (!b)
        return;
    eg_free(b->ptr);
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
}

void eg_buf_reset(eg_buf *b)
{
    b->len = 0;
    if (b->ptr)
        b->ptr[0] = '\0';
}

int eg_buf_reserve(eg_buf *b, size_t extra)
{
    size_t need;
    if (eg_add_size(&need, b->len, extra) || eg_add_size(&need, need, 1))
        return EG_ETOOBIG;
    if (b->max && need - 1 > b->max)
        return EG_ETOOBIG;
    if (need <= b->cap)
        return 0;
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap < need) {
        if (ncap > ((size_t)-1) / 2) {
            ncap = need;
            break;
        }
        ncap *= 2;
    }
    if (b->max && ncap > b->max + 1)
        ncap = b->max + 1;
    char *p = eg_realloc(b->ptr, ncap);
    if (!p)
        return EG_ENOMEM;
    b->ptr = p;
    b->cap = ncap;
    return 0;
}

int eg_buf_append(eg_buf *b, const void *data, size_t n)
{
    int rc = eg_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->ptr + b->len, data, n);
    b->len += n;
    b->ptr[b->len] = '\0';
    return 0;
}

int eg_buf_puts(eg_buf *b, const char *s)
{
    return eg_buf_append(b, s, strlen(s));
}

int eg_buf_putc(eg_buf *b, char c)
{
    return eg_buf_append(b, &c, 1);
}

int eg_buf_vprintf(eg_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return EG_EINVAL;
    if ((size_t)n < sizeof small)
        return eg_buf_append(b, small, (size_t)n);
    int rc = eg_buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int eg_buf_printf(eg_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = eg_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void eg_buf_consume(eg_buf *b, size_t n)
{
    if (n >= b->len) {
        eg_buf_reset(b);
        return;
    }
    memmove(b->ptr, b->ptr + n, b->len - n);
    b->len -= n;
    b->ptr[b->len] = '\0';
}

char *eg_buf_detach(eg_buf *b, size_t *len_out)
{
    char *p = b->ptr;
    size_t len = b->len;
    if (!p) {
        p = eg_malloc(1);
        if (!p)
            return NULL;
        p[0] = '\0';
    }
    b->ptr = NULL;
    b->len = 0;
    b->cap = 0;
    if (len_out)
        *len_out = len;
    return p;
}
