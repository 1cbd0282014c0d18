/*
 * fake_bolt.h - a scripted fake Bolt server for unit tests.
 *
 * The server listens on 127.0.0.1 (ephemeral port) and runs a script in its
 * own thread: accept, answer the handshake, expect messages by signature,
 * send replies built from JSON (SUCCESS/RECORD/FAILURE), NOOPs, raw bytes,
 * pauses, closes and re-accepts.  Every received message is logged (with its
 * raw bytes) so tests can assert what the client sent and in which order.
 * A mismatch (wrong signature, timeout, EOF) stops the script and is
 * reported by fake_bolt_wait / fake_bolt_error.
 *
 * Because the server only answers when its script says so, "expect HELLO,
 * expect LOGON, then reply" proves the client pipelined LOGON behind HELLO:
 * a client that waited for HELLO's reply would time the script out.
 *
 * Reuses the library's own transport and chunk reader, and packstream for
 * building replies.
 *
 * Thread-safety: build the script, fake_bolt_start, then only
 * fake_bolt_wait / accessors from the test thread.
 */
#ifndef ENGRAM_TESTS_FAKE_BOLT_H
#define ENGRAM_TESTS_FAKE_BOLT_H

#include "bolt/value.h"

#include <stddef.h>
#include <stdint.h>

typedef struct fake_bolt fake_bolt;

/* New server listening on 127.0.0.1:0; NULL on failure. */
fake_bolt *fake_bolt_new(void);
void fake_bolt_free(fake_bolt *fb);
int fake_bolt_port(const fake_bolt *fb);
/* "bolt://127.0.0.1:<port>" (borrowed). */
const char *fake_bolt_uri(const fake_bolt *fb);

/* ---- script (call before fake_bolt_start) ---- */
/* Read magic + 4 proposals, reply with the 4 bytes given (e.g. 0x00000805 for 5.8; "HTTP"). */
void fake_bolt_handshake(fake_bolt *fb, uint32_t reply);
/* Expect one message with this signature. */
void fake_bolt_expect(fake_bolt *fb, uint8_t sig);
void fake_bolt_success(fake_bolt *fb, const char *json_map);
void fake_bolt_record(fake_bolt *fb, const char *json_list);
void fake_bolt_failure(fake_bolt *fb, const char *code, const char *message);
void fake_bolt_ignored(fake_bolt *fb);
void fake_bolt_noop(fake_bolt *fb);
void fake_bolt_raw(fake_bolt *fb, const void *bytes, size_t n);
void fake_bolt_sleep(fake_bolt *fb, int ms);
/* Close the current connection. */
void fake_bolt_close(fake_bolt *fb);
/* Close the current connection (if any) and accept the next one. */
void fake_bolt_accept(fake_bolt *fb);
/*
 * Convenience: handshake choosing major.minor, expect HELLO (and LOGON for
 * >= 5.1), reply SUCCESS {server, connection_id} (and SUCCESS for LOGON).
 */
void fake_bolt_hello(fake_bolt *fb, int major, int minor);

/* ---- run ---- */
int fake_bolt_start(fake_bolt *fb);
/* Join the script; 0 when every step ran as expected, else -1 (see error). */
int fake_bolt_wait(fake_bolt *fb);
/* Stop accepting (a blocked accept fails): for tests whose client may never connect. */
void fake_bolt_abort(fake_bolt *fb);
/* NULL, or what went wrong in the script (borrowed). */
const char *fake_bolt_error(const fake_bolt *fb);

/* ---- what the client sent (after fake_bolt_wait) ---- */
/* The 16 proposal bytes of the last handshake. */
const uint8_t *fake_bolt_proposals(const fake_bolt *fb);
size_t fake_bolt_nreceived(const fake_bolt *fb);
/* Signature of message i, or -1. */
int fake_bolt_received_sig(const fake_bolt *fb, size_t i);
/* Field `f` of message i decoded (borrowed from the server's arena), or NULL. */
const bolt_value *fake_bolt_received_field(fake_bolt *fb, size_t i, size_t f);
/* Raw bytes of message i (borrowed). */
const uint8_t *fake_bolt_received_bytes(const fake_bolt *fb, size_t i, size_t *len);

#endif
