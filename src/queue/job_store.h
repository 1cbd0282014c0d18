/*
 * job_store.h - the durable embedding job queue: one interface, two stores.
 *
 * A job asks "embed entity E of namespace N at version/hash V with model M".
 * Its dedupe key is derived from those four values, so the same request is
 * never queued twice.  Jobs live as (:EmbedJob) nodes in Neo4j
 * (queue_neo4j_new, neo4j_store.h) or in memory (queue_mem_new, mem_store.h,
 * a faithful test double used by the worker's unit tests).  Both pass the
 * same contract suite (tests/support/job_store_contract.c, run by
 * tests/contract/test_job_store_{mem,neo4j}.c).
 *
 * State machine (docs/queue.md explains every edge):
 *
 *             enqueue (dedupe key new)
 *                   │
 *                   ▼          lease (runAt <= now; attempts += 1)
 *   ┌──────────► PENDING ─────────────────────────────► LEASED
 *   │   ▲  ▲        │ enqueue of a newer version            │ │ │ │
 *   │   │  │        ▼ of the same entity+model              │ │ │ │
 *   │   │  │    SUPERSEDED ◄──────── complete(superseded) ──┘ │ │ │
 *   │   │  │                                                  │ │ │
 *   │   │  └──── release (attempts -= 1) ─────────────────────┘ │ │
 *   │   └─ fail(transient) / lease expired, attempts < max ─────┘ │
 *   │          runAt = now + backoff          │                   │
 *   │                                         │ attempts >= max,  │ complete
 *   │ retry                                   ▼ or permanent      ▼
 *   └─────────────────────────────────────── DEAD            COMPLETED ──► (pruned
 *                                                                  after retention)
 *
 * Attempts are counted when a job is leased (as graphile-worker, River and
 * Oban do), so a worker that dies mid-job has spent its attempt and a job
 * that kills every worker ends DEAD instead of looping.  release() gives the
 * attempt back.
 *
 * Fencing: every call that changes a leased job (heartbeat, complete, fail,
 * release) names the job id and its lease token and the store's owner; the
 * store changes the job only when, *after taking the job's write lock*, it is
 * still LEASED to that owner with that token.  Otherwise the lease was lost
 * (expired and reclaimed, maybe re-leased): the call reports it and writes
 * nothing for that job.
 *
 * Clock: runAt, leaseUntil and all timestamps are epoch milliseconds from
 * the *database* clock (Cypher timestamp()); the in-memory store uses its
 * own injectable clock.  Durations passed in are relative milliseconds.
 *
 * Transactions (the outbox): enqueue runs inside a transaction the caller
 * opened, so an entity mutation and the jobs it causes commit together.  A
 * queue_tx wraps that transaction: for Neo4j, a bolt_conn inside BEGIN
 * (QUEUE_TX_BOLT(conn)); for the memory store, one from queue_tx_begin.
 * queue_tx_begin/commit/rollback work on both stores (Neo4j: borrows a pooled
 * connection and runs BEGIN/COMMIT).
 *
 * Batches: heartbeat/complete/fail/release name each job at most once per
 * call (EG_EINVAL otherwise).
 *
 * Errors: functions return 0 or a negative EG_E* code and fill err.  A lost
 * lease is *not* an error: it is reported per job (lost_out / outcome).
 * Transient Neo4j errors (deadlocks, lock timeouts, connection loss) inside
 * lease/heartbeat/complete/fail/release/reclaim are retried internally with
 * jittered backoff (bolt_pool_execute_write); they surface only when the
 * retry budget is spent.
 *
 * Thread-safety: a queue_store is thread-safe (any number of threads may
 * call it at once).  A queue_tx belongs to one thread.
 */
#ifndef ENGRAM_QUEUE_JOB_STORE_H
#define ENGRAM_QUEUE_JOB_STORE_H

#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bolt_conn;

/* ---- settings ---- */

#define QUEUE_NAME_MAX 64

typedef struct queue_opts {
    char name[QUEUE_NAME_MAX]; /* ENGRAM_QUEUE_NAME, default "default": partitions claims (one
                                * mutex node and one claim range per name) and part of the
                                * dedupe key.  [A-Za-z0-9_.:-]{1,63} */
    int64_t lease_ms;          /* ENGRAM_QUEUE_LEASE_MS, default 30000 */
    int64_t heartbeat_ms;      /* ENGRAM_QUEUE_HEARTBEAT_MS, default 10000 (<= lease/2) */
    int max_attempts;          /* ENGRAM_QUEUE_MAX_ATTEMPTS, default 8 */
    int64_t backoff_base_ms;   /* ENGRAM_QUEUE_BACKOFF_BASE_MS, default 1000 */
    int64_t backoff_cap_ms;    /* ENGRAM_QUEUE_BACKOFF_CAP_MS, default 3600000 */
    int64_t retention_ms;      /* ENGRAM_QUEUE_RETENTION_HOURS (x 3600000), default 7 days */
    int prune_batch;           /* ENGRAM_QUEUE_PRUNE_BATCH, default 1000 */
    int64_t reclaim_ms;        /* ENGRAM_QUEUE_RECLAIM_MS: sweep interval for workers, default 5000 */
    int64_t prune_interval_ms; /* ENGRAM_QUEUE_PRUNE_INTERVAL_MS: how often (per queue, across all
                                * processes) workers prune after the retention, default 600000 */
    int64_t tx_timeout_ms;     /* ENGRAM_QUEUE_TX_TIMEOUT_MS, default 30000: the server ends a worker
                                * transaction (lease, heartbeat, release, complete, fail, reclaim,
                                * prune) open longer than this, and with it its locks.  A worker
                                * host whose link dies mid-transaction would otherwise hold the
                                * queue's mutex (every claim waits on it) until the server notices
                                * the dead connection, which TCP may take hours to tell it. */
} queue_opts;

#define QUEUE_OPTS_INIT                                                                          \
    {                                                                                            \
        .name = "default", .lease_ms = 30000, .heartbeat_ms = 10000, .max_attempts = 8, .backoff_base_ms = 1000,    \
        .backoff_cap_ms = 3600000, .retention_ms = 7LL * 24 * 3600 * 1000, .prune_batch = 1000,  \
        .reclaim_ms = 5000, .prune_interval_ms = 600000, .tx_timeout_ms = 30000                  \
    }

/*
 * Start from QUEUE_OPTS_INIT and apply the ENGRAM_QUEUE_* environment
 * variables.  EG_EINVAL (with the variable named in err) when one is not a
 * positive integer or heartbeat >= lease.
 */
int queue_opts_from_env(queue_opts *out, eg_error *err);

/* True when s is a valid queue name (see queue_opts.name). */
bool queue_name_valid(const char *s);

/*
 * Delay before retry number `attempts` (1 = after the first failed attempt):
 * min(cap, base * 2^(attempts-1)), then "equal jitter": half of it fixed,
 * half uniformly random.  So delays never shrink from one attempt to the
 * next and never exceed the cap.  `unit` is a random number in [0,1).
 */
int64_t queue_backoff_ms(const queue_opts *o, int attempts, double unit);

/* ---- jobs ---- */

typedef enum queue_state {
    QUEUE_PENDING = 0,
    QUEUE_LEASED,
    QUEUE_COMPLETED,
    QUEUE_DEAD,
    QUEUE_SUPERSEDED,
    QUEUE_STATE_COUNT
} queue_state;

/* "pending", "leased", ... (static). */
const char *queue_state_name(queue_state s);
/* Parse a state name; -1 when unknown. */
int queue_state_parse(const char *s);

typedef enum queue_err_category {
    QUEUE_ERR_TRANSIENT = 0,   /* network, 5xx, 429, Neo4j TransientError: retry later */
    QUEUE_ERR_PERMANENT        /* 4xx, bad input, entity gone: dead at once */
} queue_err_category;

const char *queue_err_category_name(queue_err_category c);

#define QUEUE_ID_MAX 48        /* job id: "j" + 13 hex ms + 16 hex random, NUL */
#define QUEUE_TOKEN_MAX 40     /* lease token: 32 hex + NUL */

/*
 * A job as read from a store.  All strings are *new* (owned by the job);
 * release with queue_job_clear / queue_jobs_free.  Absent values are NULL
 * (strings) or 0 (times).
 */
typedef struct queue_job {
    char *id;
    char *ns;              /* namespace */
    char *entity;          /* entity name / id within the namespace */
    char *version;         /* entity version or content hash the job is for */
    char *model;           /* embedding model */
    char *dedupe_key;
    char *payload;         /* optional opaque text from the enqueuer (e.g. JSON) */
    int64_t seq;           /* entity content version (0: unknown), see queue_enqueue */
    queue_state state;
    int attempts;          /* leases taken so far (including the current one) */
    int max_attempts;
    int64_t run_at;        /* when the next transition is due (epoch ms, DB clock):
                            * pending: not leased before; leased: = lease_until;
                            * completed/superseded/dead: when it got there */
    char *lease_owner;
    char *lease_token;
    int64_t lease_until;
    char *last_error;
    char *last_error_category; /* "transient" | "permanent" | "expired" */
    int64_t created_at, updated_at, completed_at;
    char *locator;         /* where the store keeps this job, if it can say
                            * (Neo4j: the node's element id); set by lease
                            * only, NULL otherwise.  A hint: never trusted
                            * without the id */
} queue_job;

void queue_job_clear(queue_job *j);
/* Free an array of n jobs (and the array).  Accepts NULL. */
void queue_jobs_free(queue_job *jobs, size_t n);

/*
 * The dedupe key of (queue, ns, entity, version, model): a hex SHA-256 of the
 * length-prefixed values, so no separator in a value can make two different
 * requests collide.  The queue name is part of it, so two queues on one
 * database never merge each other's jobs; the "default" queue leaves it out
 * (four values instead of five: no collision is possible), so the keys of
 * jobs written before the queue was part of the key stay valid.  out must
 * hold 65 bytes.  Returns 0, or EG_ENOMEM / EG_EINTERNAL when hashing failed
 * (out is then empty: a caller must not enqueue under it, or every such
 * job would share the key "").
 */
int queue_dedupe_key(char out[65], const char *queue, const char *ns, const char *entity,
                     const char *version, const char *model);

/* ---- the store ---- */

typedef struct queue_store queue_store;

/* Free a store of either kind.  Accepts NULL. */
void queue_store_free(queue_store *s);
/* "neo4j" or "memory" (static). */
const char *queue_store_kind(const queue_store *s);
/* The settings the store was created with (borrowed). */
const queue_opts *queue_store_opts(const queue_store *s);
/* The store's clock now (epoch ms): the database clock for Neo4j. */
int queue_store_now(queue_store *s, int64_t *out, eg_error *err);

/* ---- transactions (the outbox) ---- */

typedef struct queue_tx {
    struct bolt_conn *conn;  /* Neo4j: a connection inside BEGIN (borrowed) */
    void *impl;              /* store-private (memory store's staged writes) */
    queue_store *store;      /* set by queue_tx_begin */
} queue_tx;

/* Wrap a caller's Neo4j connection that is inside BEGIN; the caller commits. */
#define QUEUE_TX_BOLT(c) ((queue_tx){.conn = (c), .impl = NULL, .store = NULL})

/*
 * Begin a transaction on the store; *out is *new* and must be passed to
 * exactly one of queue_tx_commit / queue_tx_rollback (which free it).
 */
int queue_tx_begin(queue_store *s, queue_tx **out, eg_error *err);
int queue_tx_commit(queue_tx *tx, eg_error *err);
void queue_tx_rollback(queue_tx *tx);

/* ---- enqueue ---- */

typedef struct queue_enqueue_req {
    const char *ns;
    const char *entity;
    const char *version;     /* version or content hash */
    const char *model;
    const char *payload;     /* optional, may be NULL */
    int max_attempts;        /* 0: store default */
    int64_t delay_ms;        /* run no earlier than now + delay (0: now) */
    int64_t seq;             /* the entity's content version the job is for,
                              * read under the entity's write lock (> 0); 0:
                              * unknown.  Orders the jobs of one entity: see
                              * queue_enqueue */
} queue_enqueue_req;

typedef struct queue_enqueue_result {
    bool created;                 /* true: a new job; false: the key existed */
    queue_state state;            /* state of the job that has the key now */
    char id[QUEUE_ID_MAX];
    int64_t superseded;           /* older PENDING jobs of the same entity+model superseded */
} queue_enqueue_result;

/* The checks queue_enqueue makes of reqs[0..n) (EG_EINVAL naming the
 * request), for a store's other ways in (queue_neo4j_job_rows). */
int queue_enqueue_check(const queue_enqueue_req *reqs, size_t n, eg_error *err);

/*
 * Enqueue n jobs inside tx (NULL tx: the store runs its own transaction).
 * out[i] reports created vs existing for reqs[i].  An existing key in any
 * state is *not* re-queued: the same content with the same model is either
 * queued, done, or dead (then `queue retry` revives it).  A created job
 * with a known seq supersedes the PENDING jobs of the same (ns, entity,
 * model) whose seq is not newer (<= its own, or unknown): their work is
 * obsolete.  A job never supersedes one for a newer version, so an enqueuer
 * that read the entity before a concurrent change cannot cancel the job of
 * that change (the stale job then runs, is found stale and ends superseded,
 * and the newer one embeds).  A job with seq 0 supersedes nothing.
 * Concurrent enqueues of one key create exactly one job (uniqueness
 * constraint + MERGE in Neo4j).
 */
int queue_enqueue(queue_store *s, queue_tx *tx, const queue_enqueue_req *reqs, size_t n,
                  queue_enqueue_result *out, eg_error *err);

/* ---- lease, heartbeat, complete, fail, release ---- */

typedef struct queue_lease_opts {
    const char *owner;       /* worker identity (required), e.g. host:pid:thread */
    size_t max_jobs;         /* 1..QUEUE_LEASE_MAX */
    int64_t lease_ms;        /* 0: store default */
    const char *model;       /* only jobs for this model; NULL: any */
} queue_lease_opts;

#define QUEUE_LEASE_MAX 1000

/*
 * Lease up to max_jobs PENDING jobs whose runAt has passed, oldest runAt
 * first.  Each leased job gets state LEASED, a fresh lease token,
 * leaseUntil = now + lease_ms and attempts + 1.  *jobs_out is a *new* array
 * (queue_jobs_free) of *n_out jobs; 0 jobs is not an error.  Atomic: no job
 * is ever handed to two owners at once (docs/queue.md, "The claim").
 */
int queue_lease(queue_store *s, const queue_lease_opts *o, queue_job **jobs_out, size_t *n_out,
                eg_error *err);

/* A held lease as the worker names it: borrowed strings.  locator (may be
 * NULL) is the job's queue_job.locator from the lease; with it the store can
 * go straight to the job instead of looking its id up (the Neo4j store
 * still checks the id, so a stale locator only makes the lease "lost"). */
typedef struct queue_lease_ref {
    const char *id;
    const char *token;
    const char *locator;
} queue_lease_ref;

/* The lease ref of a leased job; borrows j's strings. */
queue_lease_ref queue_job_ref(const queue_job *j);

/*
 * Extend the leases still held by `owner` to now + lease_ms (0: default).
 * lost_out[i] (may be NULL) is set true for each lease no longer held;
 * *held_out (may be NULL) counts those extended.
 */
int queue_heartbeat(queue_store *s, const char *owner, const queue_lease_ref *leases, size_t n,
                    int64_t lease_ms, bool *lost_out, size_t *held_out, eg_error *err);

/*
 * The caller's result writer, run inside the completing transaction after
 * the fence: `held` are the jobs still leased by the owner (borrowed; only
 * id, ns, entity, version, model, dedupe_key, payload and lease_token are
 * filled).  Write the results (vectors) through tx; set superseded_out[i]
 * when held[i]'s entity has moved past the job's version (nothing written).
 * Return 0, or an error to roll everything back.
 */
typedef int (*queue_result_fn)(queue_tx *tx, const queue_job *held, size_t n,
                               bool *superseded_out, void *payload, eg_error *err);

typedef enum queue_outcome {
    QUEUE_OUT_OK = 0,          /* completed (or requeued for fail) */
    QUEUE_OUT_SUPERSEDED,      /* complete: the entity moved on */
    QUEUE_OUT_RETRY,           /* fail: back to pending with runAt later */
    QUEUE_OUT_DEAD,            /* fail: permanent or out of attempts */
    QUEUE_OUT_LOST             /* the lease was not held: nothing written */
} queue_outcome;

/*
 * Complete n leased jobs in one transaction: fence, run write_fn (may be
 * NULL) on the held ones, mark them COMPLETED (or SUPERSEDED).
 * outcome_out[i] (may be NULL) says what happened to leases[i].  May be
 * retried as a unit on transient errors, so write_fn must be idempotent.
 */
int queue_complete(queue_store *s, const char *owner, const queue_lease_ref *leases, size_t n,
                   queue_result_fn write_fn, void *payload, queue_outcome *outcome_out,
                   eg_error *err);

typedef struct queue_failure {
    const char *id;
    const char *token;
    const char *error;               /* message kept as lastError (truncated to 2000 bytes) */
    queue_err_category category;
    int64_t retry_after_ms;          /* >0: at least this delay (e.g. HTTP Retry-After) */
} queue_failure;

/*
 * Record failures: transient and attempts < maxAttempts -> PENDING with
 * runAt = now + backoff; otherwise DEAD.  outcome_out[i]: RETRY, DEAD, LOST.
 */
int queue_fail(queue_store *s, const char *owner, const queue_failure *fails, size_t n,
               queue_outcome *outcome_out, eg_error *err);

/*
 * Give leases back (e.g. shutdown, throttled): PENDING, runAt = now +
 * delay_ms, attempts - 1.  lost_out[i] as for heartbeat.
 */
int queue_release(queue_store *s, const char *owner, const queue_lease_ref *leases, size_t n,
                  int64_t delay_ms, bool *lost_out, eg_error *err);

/* ---- maintenance ---- */

typedef struct queue_reclaim_result {
    int64_t requeued;   /* expired leases back to PENDING (attempt spent) */
    int64_t dead;       /* expired with attempts >= maxAttempts */
} queue_reclaim_result;

/*
 * Reclaim up to `limit` (0: 1000) leases whose leaseUntil has passed.
 * Requeued jobs get runAt = now + backoff, lastError "lease expired".
 */
int queue_reclaim_expired(queue_store *s, size_t limit, queue_reclaim_result *out, eg_error *err);

typedef struct queue_model_status {
    char *model;                         /* new */
    int64_t count[QUEUE_STATE_COUNT];
} queue_model_status;

/* Throughput: completed jobs per bucket of QUEUE_STATUS_BUCKET_MS, newest
 * first, over the last QUEUE_STATUS_BUCKETS buckets (an hour). */
#define QUEUE_STATUS_BUCKETS 12
#define QUEUE_STATUS_BUCKET_MS 300000

typedef struct queue_status {
    int64_t now;                         /* store clock when measured */
    int64_t count[QUEUE_STATE_COUNT];
    int64_t ready;                       /* pending with runAt <= now */
    int64_t expired_leases;              /* leased with leaseUntil < now */
    int64_t oldest_pending_age_ms;       /* now - oldest ready job's runAt; -1 none */
    int64_t next_run_at;                 /* earliest future runAt of a pending job; 0 none */
    queue_model_status *models;          /* per model, sorted by name */
    size_t nmodels;
    queue_job *dead;                     /* most recently failed dead jobs (<= 20) */
    size_t ndead;
    int64_t completed_recent[QUEUE_STATUS_BUCKETS]; /* [0]: completed in (now - 5 min, now] */
} queue_status;

/* Fill *out (fields *new*; release with queue_status_clear). */
int queue_status_get(queue_store *s, queue_status *out, eg_error *err);
/* As queue_status_get, counting only the jobs of namespace ns (NULL: all):
 * what a tenant-facing caller (an MCP tool) must use, so that one namespace
 * never sees another's counts or dead jobs. */
int queue_status_get_ns(queue_store *s, const char *ns, queue_status *out, eg_error *err);
void queue_status_clear(queue_status *st);

typedef struct queue_list_filter {
    int state;               /* a queue_state, or -1 for all */
    const char *model;       /* NULL: any */
    const char *ns;          /* NULL: any */
    const char *entity;      /* NULL: any */
    const char *after_id;    /* pagination cursor: ids greater than this; NULL: from start */
    size_t limit;            /* 1..1000; 0: 50 */
} queue_list_filter;

#define QUEUE_LIST_FILTER_INIT {.state = -1}

/*
 * Jobs matching f, ordered by id (ids sort by creation time).  *jobs_out is
 * *new*; when more remain, next_cursor (QUEUE_ID_MAX bytes, may be NULL) gets
 * the id to pass as after_id, else "".
 */
int queue_list(queue_store *s, const queue_list_filter *f, queue_job **jobs_out, size_t *n_out,
               char *next_cursor, eg_error *err);

/*
 * DEAD -> PENDING with attempts 0, runAt now, lastError kept.  ids (n) names
 * the jobs; ids NULL means all dead jobs (of `model` if non-NULL).
 * *count_out (may be NULL) gets how many were revived.
 */
int queue_retry_dead(queue_store *s, const char *const *ids, size_t n, const char *model,
                     int64_t *count_out, eg_error *err);
/* As queue_retry_dead, limited to the jobs of namespace ns (NULL: all): ids
 * of another namespace's jobs are ignored, as unknown ids are. */
int queue_retry_dead_ns(queue_store *s, const char *const *ids, size_t n, const char *model,
                        const char *ns, int64_t *count_out, eg_error *err);

/*
 * Delete COMPLETED and SUPERSEDED jobs whose completedAt/updatedAt is older
 * than now - older_than_ms (<0: the store's retention), `batch` (0:
 * prune_batch) per transaction until none remain.  PENDING, LEASED and DEAD
 * jobs are never pruned.  *deleted_out (may be NULL) counts deletions.
 */
int queue_prune(queue_store *s, int64_t older_than_ms, size_t batch, int64_t *deleted_out,
                eg_error *err);

/*
 * Automatic retention, for workers to call now and then: at most one caller
 * per queue (across every process on the database) wins the turn in each
 * prune_interval_ms (*ran_out true) and deletes, in batches of prune_batch,
 * COMPLETED and SUPERSEDED jobs past the retention, for at most max_batches
 * batches or budget_ms of work.  When it stopped with work left it hands the
 * turn back at once, so the next tick (of any process) goes on.  Claims do
 * not wait for it: pruning touches only finished jobs; the turn is one short
 * write on the queue's node.  *deleted_out (may be NULL) counts deletions.
 */
int queue_prune_tick(queue_store *s, size_t max_batches, int64_t budget_ms, bool *ran_out,
                     int64_t *deleted_out, eg_error *err);

#endif
