/*
 * mem_store.h - the in-memory job store: a faithful test double.
 *
 * Same semantics as the Neo4j store (the contract suite proves it): dedupe,
 * atomic lease, fencing, backoff, expiry, status, list, retry, prune.  All
 * state sits behind one mutex, so claims are trivially atomic.  Transactions
 * (queue_tx_begin) stage enqueues and apply them at commit; rollback drops
 * them, like the Neo4j outbox.  Time comes from an injectable clock so unit
 * tests can move time without sleeping.
 *
 * Thread-safety: thread-safe.
 */
#ifndef ENGRAM_QUEUE_MEM_STORE_H
#define ENGRAM_QUEUE_MEM_STORE_H

#include "queue/job_store.h"

/* A clock returning epoch milliseconds. */
typedef int64_t (*queue_clock_fn)(void *ctx);

/*
 * New empty store; *out is *new* (queue_store_free).  opts NULL: defaults.
 * clock NULL: the wall clock.
 */
int queue_mem_new(queue_store **out, const queue_opts *opts, queue_clock_fn clock, void *clock_ctx,
                  eg_error *err);

/*
 * Test hook: make every fail()/reclaim use `unit` instead of a random number
 * for the backoff jitter (unit < 0 restores randomness).
 */
void queue_mem_set_jitter(queue_store *s, double unit);

#endif
