/*
 * neo4j_store_int.h - internals of the Neo4j job store shared by
 * neo4j_store.c (the hot path: enqueue, claim, heartbeat, complete, fail,
 * release, reclaim; the ops table; the schema) and neo4j_store_admin.c (the
 * operator side: status, list, retry, prune) (private to src/queue/).
 *
 * Not part of the public API: only the .c files of src/queue/ include this.
 *
 * Thread-safety: as neo4j_store.h.
 */
#ifndef ENGRAM_QUEUE_NEO4J_STORE_INT_H
#define ENGRAM_QUEUE_NEO4J_STORE_INT_H

#include "queue/neo4j_store.h"
#include "queue/store_impl.h"

#include "bolt/conn.h"

#include <stdbool.h>
#include <stddef.h>

#define QUEUE_NEO_PFX QUEUE_NEO4J_PFX

/* Step 3 of the locking idiom (neo4j_store.c): after locking candidate `c`,
 * continue with a fresh variable `v` for the same node, matched by element id. */
#define QUEUE_NEO_REREAD(c, v) "WITH elementId(" c ") AS eid MATCH (" v ":EmbedJob) WHERE elementId(" v ") = eid "

typedef struct queue_neo_store {
    struct queue_store base;
    bolt_pool *pool;
    bolt_tx_opts worker_tx; /* the workers' transactions: tx_timeout = opts.tx_timeout_ms */
} queue_neo_store;

/* Options of a worker transaction (see queue_opts.tx_timeout_ms). */
#define QUEUE_NEO_WORKER_TX(s) (&QUEUE_NEO(s)->worker_tx)

#define QUEUE_NEO(s) ((queue_neo_store *)(s))

typedef int (*queue_neo_row_fn)(const bolt_value *rec, void *ctx, eg_error *err);

/* Build-time failure of p (NULL: out of memory) as an error. */
int queue__neo_params_check(bolt_params *p, eg_error *err);

/* Run q with p on c, calling fn for each record (fn may be NULL). */
int queue__neo_run(bolt_conn *c, const char *q, const bolt_params *p, queue_neo_row_fn fn, void *ctx,
                   eg_error *err);

/* Columns of a job in the order decode_job (neo4j_store.c) reads them. */
#define QUEUE_NEO_JOB_COLS                                                                         \
    "j.id, j.namespace, j.entity, j.version, j.model, j.dedupeKey, j.payload, j.state, "           \
    "j.attempts, j.maxAttempts, j.runAt, j.leaseOwner, j.leaseToken, j.leaseUntil, j.lastError, "  \
    "j.lastErrorCategory, j.createdAt, j.updatedAt, j.completedAt, j.seq"

/* A growable array of jobs filled from rows. */
typedef struct queue_neo_job_vec {
    queue_job *v;
    size_t n, cap;
    size_t col;      /* first job column in the row */
    bool locator;    /* the row has elementId(j) after the job columns */
} queue_neo_job_vec;

/* queue_neo_row_fn: append the row's job (columns from jv->col) to the
 * queue_neo_job_vec ctx. */
int queue__neo_push_job_row(const bolt_value *rec, void *ctx, eg_error *err);
/* Free the jobs and empty the vector. */
void queue__neo_job_vec_reset(queue_neo_job_vec *jv);

/* The operator side (neo4j_store_admin.c): entries of the store's ops
 * table (store_impl.h says what each does). */
int queue__neo_status(queue_store *s, const char *ns, queue_status *out, eg_error *err);
int queue__neo_list(queue_store *s, const queue_list_filter *f, queue_job **jobs_out, size_t *n_out,
                    char *next_cursor, eg_error *err);
int queue__neo_retry_dead(queue_store *s, const char *const *ids, size_t n, const char *model,
                          const char *ns, int64_t *count_out, eg_error *err);
int queue__neo_prune(queue_store *s, int64_t older_than_ms, size_t batch, size_t max_batches,
                     int64_t *deleted_out, eg_error *err);
int queue__neo_prune_turn(queue_store *s, int64_t hold_ms, bool *won, eg_error *err);

#endif
