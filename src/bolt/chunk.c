/*
 * chunk.c - see chunk.h.
 */
#include "bolt/chunk.h"

#include <string.h>

static size_t be16(const uint8_t *p)
{
    return ((size_t)p[0] << 8) | p[1];
}

int bolt_chunk_read(bolt_tr *t, eg_buf *scratch, const uint8_t **msg, size_t *len, eg_error *err)
{
    const uint8_t *p;
    size_t n;
    int rc;
    for (;;) {
        rc = bolt_tr_peek(t, 2, &p, err);
        if (rc < 0)
            return rc;
        n = be16(p);
        if (n > 0)
            break;
        bolt_tr_consume(t, 2); /* NOOP */
    }
    /* Fast path: one chunk followed by the end marker, all in the buffer.
     * Asking for n+4 bytes never blocks on bytes the server does not owe
     * us: after a chunk comes either the end marker or another header. */
    if (n + 4 <= bolt_tr_capacity(t)) {
        rc = bolt_tr_peek(t, n + 4, &p, err);
        if (rc < 0)
            return rc;
        if (p[n + 2] == 0 && p[n + 3] == 0) {
            *msg = p + 2;
            *len = n;
            bolt_tr_consume(t, n + 4);
            return 0;
        }
    }
    eg_buf_reset(scratch);
    while (n > 0) {
        bolt_tr_consume(t, 2);
        rc = eg_buf_reserve(scratch, n);
        if (rc < 0)
            return eg_error_set(err, rc, EG_CLASS_CONNECTION,
                                rc == EG_ETOOBIG ? "Bolt message larger than the limit"
                                                 : EG_OOM_TEXT " reading a Bolt message");
        /* Read straight into the reserved tail (eg_buf_reserve made room). */
        rc = bolt_tr_read(t, scratch->ptr + scratch->len, n, err);
        if (rc < 0)
            return rc;
        scratch->len += n;
        scratch->ptr[scratch->len] = '\0';
        rc = bolt_tr_peek(t, 2, &p, err);
        if (rc < 0)
            return rc;
        n = be16(p);
    }
    bolt_tr_consume(t, 2);
    *msg = (const uint8_t *)scratch->ptr;
    *len = scratch->len;
    return 0;
}

int bolt_chunk_frame(eg_buf *out, const void *msg, size_t len)
{
    const uint8_t *p = msg;
    size_t nchunks = len / BOLT_CHUNK_MAX + 1;
    int rc = eg_buf_reserve(out, len + 2 * nchunks + 2);
    if (rc < 0)
        return rc;
    while (len > 0) {
        size_t k = len > BOLT_CHUNK_MAX ? BOLT_CHUNK_MAX : len;
        uint8_t hdr[2] = {(uint8_t)(k >> 8), (uint8_t)k};
        eg_buf_append(out, hdr, 2);
        eg_buf_append(out, p, k);
        p += k;
        len -= k;
    }
    return eg_buf_append(out, "\0\0", 2);
}
