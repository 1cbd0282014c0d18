/*
 * transport.h - the byte stream under Bolt: TCP or TLS, or a memory buffer
 * (internal to src/bolt/).
 *
 * Design: the socket is non-blocking and every wait goes through poll(), so
 * a connect timeout, a TLS handshake timeout and a per-read timeout share
 * one mechanism.  Reads go through a large buffer (BOLT_TR_RBUF): a stream
 * of small RECORD messages is then parsed straight out of that buffer, one
 * recv() per ~256 KiB instead of one per message.  Writes are write-all.
 *
 * A memory transport (bolt_tr_new_mem) serves a fixed byte string and then
 * EOF; the chunk reader and its fuzz target use it, so the same code parses
 * sockets and buffers.
 *
 * TLS (OpenSSL): SNI with the host name (not for IP literals); for
 * BOLT_TLS_VERIFY the chain is checked against the system CA store plus an
 * optional CA file and the certificate must match the host (DNS name or IP
 * address); BOLT_TLS_NOVERIFY skips both (self-signed certificates).
 * SIGPIPE is never raised: plain sockets use send(MSG_NOSIGNAL) and TLS
 * writes run with SIGPIPE blocked for the calling thread.
 *
 * Errors: EG_EIO (class connection) for refused/reset/EOF/TLS failures,
 * EG_ETIMEOUT (class connection) for expired waits.
 *
 * Thread-safety: one thread at a time per transport.
 */
#ifndef ENGRAM_BOLT_TRANSPORT_H
#define ENGRAM_BOLT_TRANSPORT_H

#include "bolt/uri.h"
#include "core/err.h"

#include <stddef.h>
#include <stdint.h>

#define BOLT_TR_RBUF (256u * 1024u)
/* Receive low-water marks below MIN are not worth a setsockopt; MAX caps them. */
#define BOLT_TR_LOWAT_MIN 256u
#define BOLT_TR_LOWAT_MAX (32u * 1024u)
/* The largest mid-stream spin bolt_tr_set_spin accepts. */
#define BOLT_TR_SPIN_MAX_US 10000

typedef struct bolt_tr bolt_tr;

typedef struct bolt_tr_opts {
    int connect_timeout_ms; /* connect + TLS handshake; <= 0: 10000 */
    int read_timeout_ms;    /* each wait for input/output; <= 0: none */
    const char *ca_file;    /* extra CA bundle (VERIFY mode), may be NULL */
    int spin_us;            /* bolt_tr_set_spin; <= 0: never spin */
} bolt_tr_opts;

/* Connect to host:port of `u` (all resolved addresses in turn); *out is new. */
int bolt_tr_connect(bolt_tr **out, const bolt_uri *u, const bolt_tr_opts *opts, eg_error *err);
/* Wrap an already connected socket; takes ownership of fd (closed on failure too). */
int bolt_tr_from_fd(bolt_tr **out, int fd, int read_timeout_ms, eg_error *err);
/* Serve data[0..len) (copied) then EOF. */
int bolt_tr_new_mem(bolt_tr **out, const void *data, size_t len, eg_error *err);
/* Close (TLS close_notify when possible) and free.  Accepts NULL. */
void bolt_tr_free(bolt_tr *t);

void bolt_tr_set_read_timeout(bolt_tr *t, int ms);
int bolt_tr_write(bolt_tr *t, const void *data, size_t len, eg_error *err);
/* Read exactly n bytes into dst. */
int bolt_tr_read(bolt_tr *t, void *dst, size_t n, eg_error *err);
/*
 * Make at least n (<= BOLT_TR_RBUF) bytes available in the read buffer and
 * return a *borrowed* pointer to them (valid until the next read call);
 * does not consume.  Use bolt_tr_consume afterwards.
 */
int bolt_tr_peek(bolt_tr *t, size_t n, const uint8_t **p, eg_error *err);
/* Bytes already buffered (no I/O) and a borrowed pointer to them. */
size_t bolt_tr_buffered(const bolt_tr *t, const uint8_t **p);
void bolt_tr_consume(bolt_tr *t, size_t n);
int bolt_tr_fd(const bolt_tr *t);
/* Size of the read buffer (the largest possible peek). */
size_t bolt_tr_capacity(const bolt_tr *t);
/*
 * The peer owes `replies` more replies, at least `bytes` more bytes beyond
 * what has been consumed (for Bolt: 6 per request still unanswered, the
 * smallest reply).  A read
 * that has to wait on a plain socket then sleeps until that much has arrived
 * (SO_RCVLOWAT) instead of waking for every segment.  An underestimate only
 * costs wake-ups; an overestimate would stall until the read timeout, EOF
 * or an error, so callers must pass a true lower bound.
 */
void bolt_tr_expect(bolt_tr *t, size_t bytes, size_t replies);
/* How many times a read on a plain socket slept waiting for input (tests). */
uint64_t bolt_tr_waits(const bolt_tr *t);
/*
 * Mid-stream spin: once replies have begun to arrive and two or more are
 * owed (bolt_tr_expect), a read that finds nothing retries, yielding the
 * CPU, for at most `us` microseconds (less when this connection's replies
 * have come faster) before it sleeps: on a small VM a wake-up per reply
 * costs the server more than the spin costs us.  The first reply after a
 * send is always waited for asleep.  `us` <= 0 turns it off (the default of
 * bolt_tr_from_fd); capped at BOLT_TR_SPIN_MAX_US.
 */
void bolt_tr_set_spin(bolt_tr *t, int us);

#endif
