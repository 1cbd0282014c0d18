/*
 * store_impl.h - the job store vtable (for store implementations only).
 *
 * queue_store is opaque to users of job_store.h; each implementation embeds
 * `struct queue_store` as its first member and fills `ops`.  The dispatch
 * functions in job_store.c validate arguments once, so implementations may
 * assume: n > 0 implies arrays non-NULL, owner non-empty, max_jobs in range.
 *
 * Thread-safety: as job_store.h.
 */
#ifndef ENGRAM_QUEUE_STORE_IMPL_H
#define ENGRAM_QUEUE_STORE_IMPL_H

#include "queue/job_store.h"

typedef struct queue_store_ops {
    const char *kind;
    void (*free)(queue_store *s);
    int (*now)(queue_store *s, int64_t *out, eg_error *err);
    int (*tx_begin)(queue_store *s, queue_tx *tx, eg_error *err);
    int (*tx_commit)(queue_store *s, queue_tx *tx, eg_error *err);
    void (*tx_rollback)(queue_store *s, queue_tx *tx);
    int (*enqueue)(queue_store *s, queue_tx *tx, const queue_enqueue_req *reqs, size_t n,
                   queue_enqueue_result *out, eg_error *err);
    int (*lease)(queue_store *s, const queue_lease_opts *o, queue_job **jobs_out, size_t *n_out,
                 eg_error *err);
    int (*heartbeat)(queue_store *s, const char *owner, const queue_lease_ref *leases, size_t n,
                     int64_t lease_ms, bool *lost_out, size_t *held_out, eg_error *err);
    int (*complete)(queue_store *s, const char *owner, const queue_lease_ref *leases, size_t n,
                    queue_result_fn write_fn, void *payload, queue_outcome *outcome_out,
                    eg_error *err);
    int (*fail)(queue_store *s, const char *owner, const queue_failure *fails, size_t n,
                queue_outcome *outcome_out, eg_error *err);
    int (*release)(queue_store *s, const char *owner, const queue_lease_ref *leases, size_t n,
                   int64_t delay_ms, bool *lost_out, eg_error *err);
    int (*reclaim)(queue_store *s, size_t limit, queue_reclaim_result *out, eg_error *err);
    int (*status)(queue_store *s, const char *ns, queue_status *out, eg_error *err);
    int (*list)(queue_store *s, const queue_list_filter *f, queue_job **jobs_out, size_t *n_out,
                char *next_cursor, eg_error *err);
    int (*retry_dead)(queue_store *s, const char *const *ids, size_t n, const char *model,
                      const char *ns, int64_t *count_out, eg_error *err);
    /* max_batches 0: until none remain */
    int (*prune)(queue_store *s, int64_t older_than_ms, size_t batch, size_t max_batches,
                 int64_t *deleted_out, eg_error *err);
    /* Win the prune turn when it is free (its time has come): *won true and the
     * turn is held for hold_ms.  hold_ms < 0: hand the turn back (free now). */
    int (*prune_turn)(queue_store *s, int64_t hold_ms, bool *won, eg_error *err);
} queue_store_ops;

struct queue_store {
    const queue_store_ops *ops;
    queue_opts opts;
};

/* New job id: "j" + 13 hex digits of `now_ms` + 16 random hex (sortable by time). */
void queue_new_id(char out[QUEUE_ID_MAX], int64_t now_ms);
/* New lease token: 32 random hex digits. */
void queue_new_token(char out[QUEUE_TOKEN_MAX]);

#endif
