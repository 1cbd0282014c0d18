/*
 * sink.h - where the job manager reads texts and writes vectors.
 *
 * The worker knows jobs (queue/) and vectors (embed/), not entities.  A sink
 * is the narrow bridge to the entity store, so the manager can be tested on
 * an in-memory sink (worker_mem_sink_new, below) and run on Neo4j through
 * the graph module (worker_neo4j_sink_new, neo4j_sink.h).
 *
 * A job names (namespace, entity id, version, model) and the content hash
 * it is for (worker_job_hash).
 *   load   - outside any transaction: the entity's current embedding text
 *            and content hash, whether it still exists, and whether it
 *            already carries a vector for this hash + model + dims (then the
 *            provider is not called).
 *   write  - inside the queue's completion transaction, after the queue's
 *            lease fence: store the vector only if the entity's content
 *            hash still equals the job's (version fencing); otherwise report
 *            superseded and write nothing.  Must be idempotent (the
 *            transaction may be retried as a whole).
 *   index_dims - the dimension of the vector index, checked against the
 *            provider at startup (0 when unknown or no index).
 *
 * Ownership: worker_sink_free frees the sink (and its private state).
 * Thread-safety: a sink's functions are called from many worker threads at
 * once and must be thread-safe.
 */
#ifndef ENGRAM_WORKER_SINK_H
#define ENGRAM_WORKER_SINK_H

#include "core/err.h"
#include "queue/job_store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum worker_load_state {
    WORKER_LOAD_EMBED = 0,  /* needs a vector: text filled */
    WORKER_LOAD_CURRENT,    /* already has a vector for this hash+model+dims: skip */
    WORKER_LOAD_STALE,      /* entity's content moved past the job: superseded */
    WORKER_LOAD_GONE        /* entity no longer exists: superseded */
} worker_load_state;

/* One leased job as the sink sees it. */
typedef struct worker_item {
    const queue_job *job;     /* borrowed: ns, entity, version (hash), model */
    worker_load_state state;  /* filled by load */
    char *text;               /* new (eg_malloc), filled by load when EMBED */
    char hash[65];            /* the entity's current content hash */
} worker_item;

/* A vector to store, matched to a held job (borrowed pointers). */
typedef struct worker_write {
    const queue_job *job;     /* ns, entity, version (the hash fenced on), model */
    const float *vec;
    int dims;
    int tokens;               /* tokens the model read (0: not known) */
    bool truncated;           /* the text was cut to the model's token limit */
} worker_write;

typedef struct worker_sink worker_sink;

typedef struct worker_sink_vtable {
    int (*load)(worker_sink *s, worker_item *items, size_t n, int dims, eg_error *err);
    int (*write)(worker_sink *s, queue_tx *tx, const worker_write *w, size_t n, bool *superseded_out,
                 eg_error *err);
    int (*index_dims)(worker_sink *s, int *dims_out, eg_error *err);
    void (*free)(worker_sink *s);
} worker_sink_vtable;

struct worker_sink {
    const worker_sink_vtable *vt;
    void *impl;
};

static inline int worker_sink_load(worker_sink *s, worker_item *items, size_t n, int dims, eg_error *err)
{
    return s->vt->load(s, items, n, dims, err);
}
static inline int worker_sink_write(worker_sink *s, queue_tx *tx, const worker_write *w, size_t n,
                                    bool *superseded_out, eg_error *err)
{
    return s->vt->write(s, tx, w, n, superseded_out, err);
}
void worker_sink_free(worker_sink *s);
void worker_items_clear(worker_item *items, size_t n);

/* ---- the in-memory sink (tests, benchmarks) ---- */

/* New empty in-memory entity table; index_dims reports `index_dims` (0: none). */
int worker_mem_sink_new(worker_sink **out, int index_dims, eg_error *err);

/*
 * Create or change an entity: text is copied, its hash computed (sha256
 * hex, written to hash_out when non-NULL, 65 bytes).  Returns 0.
 */
int worker_mem_sink_put(worker_sink *s, const char *ns, const char *entity, const char *text,
                        char *hash_out);
/* Remove an entity. */
void worker_mem_sink_delete(worker_sink *s, const char *ns, const char *entity);

/*
 * Read an entity's stored vector: copies up to cap floats into vec and
 * returns its dims, 0 when none, -1 when no such entity.  emb_hash_out
 * (65 bytes, may be NULL) gets the hash the vector was computed from;
 * writes_out (may be NULL) how many times a vector was written to it.
 */
int worker_mem_sink_vector(worker_sink *s, const char *ns, const char *entity, float *vec, int cap,
                           char *emb_hash_out, int *writes_out);

/* Test hook: make load() sleep ms and then call hook(ctx) (NULL: none), to
 * change entities while a job is in flight. */
void worker_mem_sink_set_load_hook(worker_sink *s, void (*hook)(void *ctx), void *ctx);

/*
 * The content hash a job is fenced on: the "hash" of its JSON payload when
 * present (jobs enqueued by the graph carry version = entity version and
 * payload {"name","hash"}), else its version up to an optional "#suffix".
 * `engram reembed --all` enqueues "<hash>#<tag>" so that a job
 * for content that already has a vector gets a new dedupe key; such a
 * *forced* job (worker_job_forced) is embedded even when the entity's vector
 * is current.  out must hold 65 bytes.
 */
void worker_job_hash(const queue_job *j, char out[65]);
bool worker_job_forced(const queue_job *j);

#endif
