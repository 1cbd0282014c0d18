/*
 * manager.h - the embedding job manager: N worker threads and a heartbeat.
 *
 * Each worker thread loops:
 *
 *   wait while the provider is paused
 *   lease up to `batch` jobs of the provider's model  ──(none)──► sleep poll_ms
 *   load texts through the sink            (no transaction held)     or notify
 *     STALE/GONE ─► complete as superseded     CURRENT ─► complete, no write
 *   embed the rest with the provider       (no transaction held; through the
 *                                           shared throttle; transient errors
 *                                           retried in place up to
 *                                           `inline_retries` times)
 *   complete the batch in one transaction: queue fence + sink write with
 *     version fencing (moved-on entities end SUPERSEDED)
 *   route failures: input error ─► fail(permanent) ─► DEAD
 *                   transient    ─► fail(transient) ─► PENDING later / DEAD at max
 *                   rate limit   ─► release(after Retry-After), no attempt spent
 *                   quota/auth/config ─► release(provider_error_pause), pause
 *                                  everyone, health red
 *                   shutdown     ─► release(0)
 *
 * With `pipeline` (default) each worker is three threads joined by one-slot
 * hand-offs: the worker thread leases and loads texts, the embedder calls
 * the provider, the completer runs the completion transaction.  Batch k+1
 * loads while batch k is being embedded and batch k-1 completed, so provider
 * time and database time overlap (a worker holds at most one batch per stage).
 *
 * A heartbeat thread extends every lease the process holds each
 * heartbeat_ms and reclaims expired leases (any process's) every
 * reclaim_ms, so jobs of a worker killed with kill -9 come back.
 *
 * Shutdown (worker_manager_stop): stop leasing; in-flight batches get until
 * the deadline to finish; then provider calls are aborted, the throttle
 * wakes everyone, and leases not completed are released (no attempt spent).
 *
 * Use in a server (engram serve --workers N) or a standalone process
 * (engram worker):
 *
 *   worker_opts wo; worker_opts_from_env(&wo, NULL);  wo.concurrency = N;
 *   embed_config ec; embed_config_from_env(&ec, NULL);
 *   worker_manager *m;
 *   worker_manager_new(&m, &wo, &ec, store, sink, &err);   // borrowed store/sink
 *   worker_manager_start(m, &err);     // checks dims against the index
 *   ... worker_manager_notify(m) after enqueuing (wakes idle workers) ...
 *   worker_manager_stop(m, deadline_ms); worker_manager_free(m);
 *
 * Any mix of in-server and standalone workers against one Neo4j is safe:
 * the queue's atomic claim and fencing make them independent.
 *
 * Thread-safety: all worker_manager_* functions are thread-safe except
 * _free (after _stop, from one thread).
 */
#ifndef ENGRAM_WORKER_MANAGER_H
#define ENGRAM_WORKER_MANAGER_H

#include "core/err.h"
#include "embed/provider.h"
#include "queue/job_store.h"
#include "worker/sink.h"
#include "worker/throttle.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct worker_opts {
    int concurrency;            /* ENGRAM_WORKERS, default 2 (local provider: cores - 1, 1..8) */
    int batch;                  /* jobs per lease = inputs per provider call; ENGRAM_WORKER_BATCH, 100 */
    int64_t poll_ms;            /* idle poll; ENGRAM_WORKER_POLL_MS, 1000 */
    int64_t lease_ms;           /* 0: the store's */
    int64_t heartbeat_ms;       /* 0: the store's */
    int64_t reclaim_ms;         /* 0: the store's; <0: never */
    int64_t prune_tick_ms;      /* how often this manager asks for the queue's prune turn
                                 * (queue_prune_tick; the store's prune_interval_ms decides who
                                 * prunes); 0: 30000; <0: never */
    int inline_retries;         /* ENGRAM_EMBED_RETRIES, 2 */
    int64_t retry_base_ms;      /* 500 (doubling, capped at 8000) */
    int64_t provider_error_pause_ms; /* quota/auth/config; ENGRAM_PROVIDER_ERROR_PAUSE_MS, 60000 */
    int64_t stop_deadline_ms;   /* ENGRAM_WORKER_SHUTDOWN_MS, 10000 */
    int unhealthy_failures;     /* consecutive failed provider calls for red; 5 */
    int64_t stall_ms;           /* ENGRAM_HEALTH_STALL_SECONDS x 1000, 300000 */
    bool sync;                  /* ENGRAM_EMBED_SYNC (0): mutations wait for their vectors (the
                                   server calls worker_manager_wait_jobs after commit) */
    int64_t sync_timeout_ms;    /* ENGRAM_EMBED_SYNC_TIMEOUT_MS, 5000: then asynchronous */
    int prefetch;               /* ENGRAM_WORKER_PREFETCH, 2: batches leased per claim */
    int64_t linger_ms;          /* ENGRAM_WORKER_LINGER_MS, 50 (0 with ENGRAM_EMBED_SYNC): an idle
                                   worker woken by a write waits this long before it leases, so
                                   the jobs of a burst of calls share one claim and one commit;
                                   each later write restarts the wait ... */
    int64_t linger_max_ms;      /* ... up to ENGRAM_WORKER_LINGER_MAX_MS, 1000, after the first */
    bool pipeline;              /* ENGRAM_WORKER_PIPELINE, 1: embedder + completer thread per worker
                                   (load k+1 | embed k | complete k-1) */
    const char *owner;          /* NULL: host:pid:random */
    worker_throttle_opts throttle; /* from worker_throttle_opts_from_env */
    bool own_throttle;          /* set by worker_opts_from_env */
} worker_opts;

/*
 * Defaults, then the environment (ENGRAM_WORKERS, ENGRAM_WORKER_BATCH,
 * ENGRAM_WORKER_POLL_MS, ENGRAM_EMBED_RETRIES, ENGRAM_PROVIDER_ERROR_PAUSE_MS,
 * ENGRAM_WORKER_SHUTDOWN_MS, ENGRAM_HEALTH_STALL_SECONDS, ENGRAM_WORKER_PIPELINE,
 * ENGRAM_WORKER_LINGER_MS, ENGRAM_WORKER_LINGER_MAX_MS,
 * ENGRAM_EMBED_SYNC, ENGRAM_EMBED_SYNC_TIMEOUT_MS,
 * ENGRAM_HEALTH_FAILURES, and the rate limits of throttle.h for `kind`).
 */
int worker_opts_from_env(worker_opts *out, embed_kind kind, eg_error *err);

typedef struct worker_manager worker_manager;

/*
 * New manager (not started).  store and sink are *borrowed* and must
 * outlive the manager; ecfg strings are copied (by the providers).
 * Creates one provider per worker and the process's throttle.
 */
int worker_manager_new(worker_manager **out, const worker_opts *o, const embed_config *ecfg,
                       queue_store *store, worker_sink *sink, eg_error *err);

/*
 * Check the provider's dimensions against the sink's vector index
 * (EG_EINVAL with a clear message on mismatch), then start the threads.
 */
int worker_manager_start(worker_manager *m, eg_error *err);

/* Wake idle workers (call after enqueuing). */
void worker_manager_notify(worker_manager *m);

/*
 * Synchronous mode: wait until the jobs `ids` (n) were completed or
 * superseded by this process's workers, at most timeout_ms.  Returns 0, or
 * EG_ETIMEOUT (the jobs stay queued: asynchronous fallback).
 */
int worker_manager_wait_jobs(worker_manager *m, const char *const *ids, size_t n, int64_t timeout_ms);

/* Stop: see above.  deadline_ms < 0: the configured one.  Idempotent. */
void worker_manager_stop(worker_manager *m, int64_t deadline_ms);
void worker_manager_free(worker_manager *m);

/* Wait until no job is pending or leased in the store and no batch of
 * this manager is still finishing (or timeout).  For `engram worker
 * --drain`, tests and benchmarks.  0 or EG_ETIMEOUT. */
int worker_manager_drain(worker_manager *m, int64_t timeout_ms);

#define WORKER_LAT_BUCKETS 12

typedef struct worker_stats {
    uint64_t leased, completed, superseded, skipped, failed, dead, released, lost;
    uint64_t batches;
    uint64_t lost_heartbeats;            /* leases a heartbeat found gone while still in use */
    uint64_t provider_requests, provider_errors, provider_tokens;
    uint64_t errors_by_kind[8];          /* indexed by embed_errkind */
    uint64_t latency_le[WORKER_LAT_BUCKETS]; /* cumulative counts per bucket */
    uint64_t latency_count;
    double latency_sum_s;
    int64_t in_flight;                   /* jobs leased now by this process */
    int consecutive_failures;
    int64_t last_success_wall_ms;        /* 0: never */
    int64_t last_failure_wall_ms;
    char last_error[256];
    embed_errkind provider_state;        /* kind of the last provider outcome */
    int64_t started_wall_ms;
    int concurrency;
    worker_throttle_stats throttle;
    char model[128];
    int dims;
    char provider[16];
    char fallback[256];                  /* why the n-gram provider stands in for the encoder; "" */
    char owner[128];
} worker_stats;

/* Upper bounds (seconds) of the latency histogram buckets. */
extern const double worker_latency_bounds[WORKER_LAT_BUCKETS];

void worker_manager_get_stats(worker_manager *m, worker_stats *out);

/* The model id the workers lease jobs for (borrowed; = the provider's). */
const char *worker_manager_model(const worker_manager *m);

/* Borrowed: the queue store the manager works (for health). */
queue_store *worker_manager_store(worker_manager *m);
const worker_opts *worker_manager_opts(worker_manager *m);

#endif
