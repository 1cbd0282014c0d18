/*
 * buf.h - a growable byte buffer with a hard cap.
 *
 * eg_buf is a small transparent value the caller keeps on the stack or in a
 * struct; only `ptr` and `len` may be read directly.  Every buffer has a cap
 * fixed at init so that input a peer controls can never grow memory without
 * bound (caps live in core/limits.h).  The contents are always NUL-terminated
 * when ptr != NULL, so text can be used as a C string.
 *
 * Failure rule (from curl's dynbuf): an append that fails (EG_ENOMEM or
 * EG_ETOOBIG) leaves the buffer *unchanged*; the caller decides what to do.
 *
 * Thread-safety: none; one owner at a time.
 */
#ifndef ENGRAM_CORE_BUF_H
#define ENGRAM_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct eg_buf {
    char *ptr;
    size_t len;
    size_t cap;
    size_t max;
} eg_buf;

#define EG_BUF_INIT(max_) { NULL, 0, 0, (max_) }

void eg_buf_init(eg_buf *b, size_t max);
/* Release memory; the buffer can be reused after eg_buf_init. Accepts NULL. */
void eg_buf_free(eg_buf *b);
/* Forget the contents, keep the allocation. */
void eg_buf_reset(eg_buf *b);
/* Make room for `extra` more bytes (plus the NUL). */
int eg_buf_reserve(eg_buf *b, size_t extra);
int eg_buf_append(eg_buf *b, const void *data, size_t n);
int eg_buf_puts(eg_buf *b, const char *s);
int eg_buf_putc(eg_buf *b, char c);
int eg_buf_printf(eg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int eg_buf_vprintf(eg_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Drop the first n bytes (memmove). */
void eg_buf_consume(eg_buf *b, size_t n);
/*
 * Hand the contents out: returns *new* memory (NUL-terminated; the caller
 * frees it with eg_free) and leaves the buffer empty.  Never NULL on success:
 * an empty buffer yields "".  Returns NULL only on OOM.
 */
char *eg_buf_detach(eg_buf *b, size_t *len_out);

#endif
