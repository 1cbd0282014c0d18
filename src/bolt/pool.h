/*
 * pool.h - a thread-safe connection pool and managed transactions.
 *
 * The pool hands a connection to one thread at a time.  Release rolls back a
 * forgotten transaction, RESETs a connection that saw a failure, and throws
 * away a DEFUNCT one; so a connection taken from the pool is always READY.
 * A connection idle for longer than `liveness_check_ms` is pinged (RESET)
 * before it is handed out, which is how the pool notices that the server
 * restarted: the ping fails, the connection is dropped and a new one is
 * opened transparently.
 *
 * Managed transactions (bolt_pool_execute_write/_read) run a unit of work
 * inside BEGIN..COMMIT and retry it on retryable errors (transient Neo4j
 * errors, connection failures) with capped, jittered exponential backoff
 * within a total time budget, on a fresh connection when the old one died.
 * The work function may therefore run several times: it must not keep side
 * effects outside the transaction between attempts (reset its outputs at
 * the start).  A COMMIT whose outcome is unknown (connection lost after
 * COMMIT was sent) is retried too, so units of work must be idempotent
 * (MERGE-based) or tolerate that; this matches the official drivers.
 *
 * Thread-safety: all bolt_pool_* functions are thread-safe.
 */
#ifndef ENGRAM_BOLT_POOL_H
#define ENGRAM_BOLT_POOL_H

#include "bolt/conn.h"

typedef struct bolt_pool bolt_pool;

typedef struct bolt_pool_opts {
    size_t max_size;            /* 0: 16 */
    int acquire_timeout_ms;     /* 0: 30000 */
    int liveness_check_ms;      /* idle time after which a RESET ping precedes reuse; 0: 30000; <0 never */
    int64_t max_lifetime_ms;    /* 0: 1 hour */
} bolt_pool_opts;

#define BOLT_POOL_OPTS_INIT {0}

typedef struct bolt_retry_opts {
    int64_t max_retry_time_ms;  /* total budget; 0: 30000 */
    int64_t initial_delay_ms;   /* 0: 50 */
    int64_t max_delay_ms;       /* 0: 2000 */
    double multiplier;          /* 0: 2.0 */
    double jitter;              /* 0: 0.2 (+-20%) */
    /* true: when every connection is in use and the pool is at max_size,
     * the unit fails at once (EG_ETIMEOUT) instead of waiting for one.  For
     * optional parallel work whose caller already holds a connection and
     * can do the work on it: waiting there could deadlock the pool. */
    bool no_wait;
} bolt_retry_opts;

#define BOLT_RETRY_OPTS_INIT {0}

/*
 * New pool (caller frees with bolt_pool_free).  The config strings are
 * copied.  Does not connect; see bolt_pool_verify.
 */
int bolt_pool_new(bolt_pool **out, const bolt_config *cfg, const bolt_pool_opts *opts,
                  eg_error *err);
/* Closes idle connections; connections still borrowed must be released first. */
void bolt_pool_free(bolt_pool *p);

/* Open (or reuse) one connection to prove connectivity and credentials. */
int bolt_pool_verify(bolt_pool *p, eg_error *err);

/*
 * Borrow a READY connection; EG_ETIMEOUT when none frees up in time.  On a
 * routed pool it is a connection to a writer of the configured database.
 */
int bolt_pool_acquire(bolt_pool *p, bolt_conn **out, eg_error *err);
/*
 * The same for an access mode: on a routed pool a reader (read_only) or a
 * writer of `database` (NULL: the configured one); on a bolt:// pool the one
 * server whatever the mode.
 */
int bolt_pool_acquire_mode(bolt_pool *p, bool read_only, const char *database, bolt_conn **out,
                           eg_error *err);
/* Give it back (see the rules above).  Accepts NULL. */
void bolt_pool_release(bolt_pool *p, bolt_conn *c);

/* Was the pool made for a neo4j:// URI (routing)? */
bool bolt_pool_is_routed(const bolt_pool *p);

/*
 * A routed pool's routing table for `database` (NULL: the configured one),
 * fetched afresh: *out (new) is {db, ttl_s, expires_in_ms, routers, readers,
 * writers}.  EG_EUNSUPPORTED on a bolt:// pool.
 */
int bolt_pool_routing_table(bolt_pool *p, const char *database, json_t **out, eg_error *err);

/* Counters for health/metrics (a routed pool sums its servers). */
typedef struct bolt_pool_stats {
    size_t size, idle, in_use;
    uint64_t opened, closed, acquire_timeouts, retries;
} bolt_pool_stats;
void bolt_pool_get_stats(bolt_pool *p, bolt_pool_stats *out);

/* The unit of work: run queries on `c` (a transaction is open). */
typedef int (*bolt_work_fn)(bolt_conn *c, void *payload, eg_error *err);

/*
 * Run `fn` in a write (or read) transaction with retries as described above.
 * tx may be NULL; retry may be NULL (defaults).  Returns fn's result or the
 * commit's; err holds the last error when the budget ran out.
 */
int bolt_pool_execute_write(bolt_pool *p, const bolt_tx_opts *tx, const bolt_retry_opts *retry,
                            bolt_work_fn fn, void *payload, eg_error *err);
int bolt_pool_execute_read(bolt_pool *p, const bolt_tx_opts *tx, const bolt_retry_opts *retry,
                           bolt_work_fn fn, void *payload, eg_error *err);

/*
 * The same for a unit of work that is a single write statement: it runs as
 * an auto-commit query, RUN and PULL in one write and the commit inside the
 * PULL's reply, which saves the round trip of a COMMIT.  `fn` MUST run
 * exactly one statement, with bolt_conn_unit_opts(c) as its options (the
 * database, timeout, metadata and, on a routed pool, the bookmarks `tx`
 * would have given the transaction); it is retried like the others.
 */
int bolt_pool_execute_write_autocommit(bolt_pool *p, const bolt_tx_opts *tx, const bolt_retry_opts *retry,
                                       bolt_work_fn fn, void *payload, eg_error *err);

/*
 * A read unit of work as auto-commit queries: each statement `fn` runs
 * (one or several, pipelined or not, each with bolt_conn_unit_opts(c))
 * commits at its own PULL, on one connection in read mode, so the unit
 * costs no COMMIT round trip.  A read transaction would not give them more:
 * Neo4j's isolation is read committed, so statements of one transaction see
 * each other's commits anyway.  Retried like the others.
 */
int bolt_pool_execute_read_autocommit(bolt_pool *p, const bolt_tx_opts *tx, const bolt_retry_opts *retry,
                                      bolt_work_fn fn, void *payload, eg_error *err);

#endif
