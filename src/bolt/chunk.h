/*
 * chunk.h - Bolt message framing (internal to src/bolt/).
 *
 * On the wire a message is a sequence of chunks, each a 2-byte big-endian
 * length (1..65535) and that many bytes, ended by an empty chunk `00 00`.
 * An empty chunk that arrives where a message would start is a NOOP
 * (keep-alive) and is skipped.
 *
 * Reading is zero-copy in the common case: when the whole message is one
 * chunk that fits in the transport's read buffer (true for nearly every
 * RECORD), the returned pointer points into that buffer.  Only multi-chunk
 * messages are reassembled into the caller's scratch buffer, which is capped
 * (EG_LIMIT_BOLT_MESSAGE) so a peer cannot grow memory without bound.
 *
 * Thread-safety: none (same as the transport).
 */
#ifndef ENGRAM_BOLT_CHUNK_H
#define ENGRAM_BOLT_CHUNK_H

#include "bolt/transport.h"
#include "core/buf.h"

#define BOLT_CHUNK_MAX 65535u

/*
 * Read one message.  *msg is *borrowed*: it points into the transport's
 * buffer or into `scratch`, valid until the next call on either.  An empty
 * message (a lone 00 00 is a NOOP, so this cannot happen) is impossible;
 * *len >= 1 on success.  Errors: transport errors, EG_ETOOBIG above
 * scratch's cap.
 */
int bolt_chunk_read(bolt_tr *t, eg_buf *scratch, const uint8_t **msg, size_t *len, eg_error *err);

/* Append msg[0..len) framed as chunks plus the 00 00 end marker to out. */
int bolt_chunk_frame(eg_buf *out, const void *msg, size_t len);

#endif
