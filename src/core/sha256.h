/*
 * sha256.h - SHA-256 digests, one-shot and streaming, as hex or raw bytes.
 *
 * One home for what engram hashes: dedupe keys, embedding-text hashes,
 * schema checksums, restore ids, token digests and model files.  Every
 * caller needs the same care (an OpenSSL failure is an error, never an
 * empty or partial digest), so it is written once.
 *
 * The hasher is allocated through eg_malloc, so the torture tests' failure
 * hook reaches hashing too.  A failed update latches: later updates are
 * no-ops and eg_sha256_final returns the error, so a caller can feed
 * several parts and check once.
 *
 * Thread-safety: a hasher belongs to one thread at a time; the one-shot
 * functions are thread-safe.
 */
#ifndef ENGRAM_CORE_SHA256_H
#define ENGRAM_CORE_SHA256_H

#include <stddef.h>

#define EG_SHA256_LEN 32      /* bytes of a digest */
#define EG_SHA256_HEX_SIZE 65 /* 64 lowercase hex digits and the NUL */

typedef struct eg_sha256 eg_sha256;

/* *out = a *new* hasher (eg_sha256_free).  0 or EG_ENOMEM. */
int eg_sha256_new(eg_sha256 **out);

/* Feed n bytes (data may be NULL when n == 0).  A failure latches. */
void eg_sha256_update(eg_sha256 *h, const void *data, size_t n);

/*
 * Finish: md gets the digest (raw) or hex the digest (lowercase, NUL-
 * terminated).  0, or the first error met (EG_ENOMEM, EG_EINTERNAL), in
 * which case md/hex hold nothing usable (hex is set to "").  A hasher is
 * finished once.
 */
int eg_sha256_final(eg_sha256 *h, unsigned char md[EG_SHA256_LEN]);
int eg_sha256_final_hex(eg_sha256 *h, char hex[EG_SHA256_HEX_SIZE]);

/* Release h (NULL is fine). */
void eg_sha256_free(eg_sha256 *h);

/* One-shot digests of n bytes: 0, EG_ENOMEM or EG_EINTERNAL (hex is "" then). */
int eg_sha256_digest(const void *data, size_t n, unsigned char md[EG_SHA256_LEN]);
int eg_sha256_hex(const void *data, size_t n, char hex[EG_SHA256_HEX_SIZE]);

/* hex = the n bytes of in as 2n lowercase hex digits and a NUL. */
void eg_hex_encode(const unsigned char *in, size_t n, char *hex);

#endif
