/*
 * throttle.h - the process-wide gate in front of the embedding provider.
 *
 * Two token buckets, shared by every worker thread of the process:
 *   requests  refill rpm / 60 s, capacity `burst` (default 1: evenly spaced)
 *   tokens    refill tpm / 60 s, capacity tpm / 60 (one second's worth)
 * plus a pause: a 429 with Retry-After (or a provider-wide error) stops
 * every worker until the pause ends.
 *
 * The token bucket may go into debt: a request waits until the bucket is
 * non-negative, then takes its estimated tokens even if that overdraws, and
 * the debt is repaid by the refill before the next request goes.  So a
 * single request larger than the capacity still passes, and the long-run
 * rate stays at the limit.  With capacity 1 the request bucket guarantees at
 * most rpm requests in any minute (measured over any sliding window).
 *
 * Compatibility: memento's EMBEDDING_RATE_LIMIT_TOKENS (default 20) per
 * EMBEDDING_RATE_LIMIT_INTERVAL (ms, default 60000) limited embedding *calls*;
 * here that becomes the request rate (one request embeds a whole batch).
 *
 *   waiting ──(buckets non-negative, not paused)──► request sent ──► after()
 *      ▲  │                                                            │
 *      │  └──(stop)──► EG_ECANCELED                 429: pause all ◄───┘
 *      └──────────────────── pause ends ◄──────────────────────────────┘
 *
 * Thread-safety: all functions are thread-safe.
 */
#ifndef ENGRAM_WORKER_THROTTLE_H
#define ENGRAM_WORKER_THROTTLE_H

#include "core/err.h"
#include "embed/provider.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct worker_throttle_opts {
    double requests_per_interval; /* 0: unlimited */
    double tokens_per_interval;   /* 0: unlimited */
    int64_t interval_ms;          /* 0: 60000 */
    double burst;                 /* request bucket capacity; 0: 1 */
    int64_t default_pause_ms;     /* 429 without Retry-After; 0: 2000 */
    int64_t max_inline_wait_ms;   /* ENGRAM_MAX_INLINE_WAIT_MS, 30000; <0: no cap.  The gate makes a
                                   * worker (which holds its batch's leases) wait at most this long:
                                   * past it (a long Retry-After) before() refuses at once with the
                                   * pause still to run, and the worker releases its leases until
                                   * then instead of holding them for up to a day */
} worker_throttle_opts;

/*
 * From the environment:
 *   ENGRAM_RATE_LIMIT_RPM, ENGRAM_RATE_LIMIT_TPM (per minute), else
 *   EMBEDDING_RATE_LIMIT_TOKENS per EMBEDDING_RATE_LIMIT_INTERVAL ms as the
 *   request limit; ENGRAM_RATE_LIMIT_BURST.  Defaults by provider kind:
 *   openai 3000 rpm / 1000000 tpm (OpenAI tier 1), others unlimited.
 */
int worker_throttle_opts_from_env(worker_throttle_opts *out, embed_kind kind, eg_error *err);

typedef struct worker_throttle worker_throttle;

/* *out is new (worker_throttle_free). */
int worker_throttle_new(worker_throttle **out, const worker_throttle_opts *o, eg_error *err);
void worker_throttle_free(worker_throttle *t);

/*
 * Wait until a request estimated at est_tokens may go, then take it.
 * Returns 0, or EG_ECANCELED once worker_throttle_stop was called, or
 * EG_ETIMEOUT when deadline_ms (monotonic; 0: none) passes first.
 */
int worker_throttle_acquire(worker_throttle *t, long est_tokens, int64_t deadline_ms);

/* Report a request's outcome: tokens used (debits the difference from the
 * estimate is not attempted; the estimate is an over-estimate), and a
 * rate limit (pauses everyone for retry_after_ms, or the default). */
void worker_throttle_report(worker_throttle *t, const embed_status *st);

/* Pause every worker for ms (extends, never shortens, a current pause). */
void worker_throttle_pause(worker_throttle *t, int64_t ms, const char *why);

/* Wait while paused (for leasing: no point holding leases while paused).
 * Returns 0, EG_ECANCELED after stop, EG_ETIMEOUT at deadline_ms. */
int worker_throttle_wait_unpaused(worker_throttle *t, int64_t deadline_ms);

/* Wake every waiter with EG_ECANCELED from now on. */
void worker_throttle_stop(worker_throttle *t);

typedef struct worker_throttle_stats {
    uint64_t acquired;          /* requests let through */
    uint64_t pauses;            /* pauses started */
    int64_t waited_us;          /* total time callers spent waiting */
    int64_t paused_remaining_ms;/* 0 when not paused */
    char pause_reason[128];
} worker_throttle_stats;

void worker_throttle_get_stats(worker_throttle *t, worker_throttle_stats *out);

/* An embed_gate backed by this throttle (for embed_provider_set_gate).
 * The gate is *borrowed* from t (lives as long as t). */
const embed_gate *worker_throttle_gate(worker_throttle *t);

#endif
