/*
 * manager_int.h - worker manager internals shared by manager.c (threads,
 * heartbeat, lifecycle) and batch.c (one leased batch: load, embed, finish)
 * (private to src/worker/).
 *
 * Not part of the public API: only the .c files of src/worker/ include this.
 *
 * Thread-safety: as the fields' comments say (m->mu guards the active
 * leases, the stats and the recent ids; a stage's slot is under its own mu).
 */
#ifndef ENGRAM_WORKER_MANAGER_INT_H
#define ENGRAM_WORKER_MANAGER_INT_H

#include "worker/manager.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ids of finished jobs remembered for worker_manager_wait_jobs (m->recent) */
#define WORKER_RECENT_MAX 8192

typedef struct worker_active_lease {
    char id[QUEUE_ID_MAX];
    char token[QUEUE_TOKEN_MAX];
    bool lost;
    bool finishing; /* its worker is completing, failing or releasing it */
} worker_active_lease;

typedef struct worker_batch worker_batch;

/* A pipeline stage: a thread that takes one batch at a time from a
 * one-slot hand-off.  The slot stays occupied until the stage has finished
 * with the batch, so the stage before it waits (back-pressure) and a worker
 * never holds more than one batch per stage. */
typedef struct worker_stage {
    pthread_t th;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    worker_batch *slot;
    bool quit;
} worker_stage;

typedef struct worker_thread {
    struct worker_manager *m;
    int index;
    pthread_t th;              /* leases and loads texts */
    bool started;
    embed_provider *p;         /* used by the embedder stage (or th without one) */
    worker_stage embedder;     /* provider calls */
    worker_stage completer;    /* completion transactions, failures, releases */
} worker_thread;

struct worker_manager {
    worker_opts o;
    char owner[128];
    queue_store *store;
    worker_sink *sink;
    worker_throttle *throttle;
    worker_thread *w;
    int nw;
    char model[128];
    int dims;
    embed_kind kind;

    pthread_mutex_t mu;        /* active leases, stats, recent ids */
    pthread_cond_t idle_cv;    /* notify / stop wake idle workers */
    pthread_cond_t done_cv;    /* jobs finished (sync waiters) */
    worker_active_lease *active;
    size_t nactive, capactive;
    worker_stats st;
    char (*recent)[QUEUE_ID_MAX];
    size_t recent_next;
    uint64_t notify_seq;
    uint64_t notify_served;    /* notify_seq a worker has already answered */

    atomic_int stopping;       /* no new leases */
    atomic_int abort_flag;     /* abort provider transfers (deadline passed); read by the
                                * provider threads, set by stop: atomic, not volatile */
    bool started, stopped;
    pthread_t hb;
    bool hb_started;
};

/* Mark the leases of jobs[0..n) as being finished by their worker, before
 * it completes, fails or releases them, so the heartbeat does not count the
 * lease that finishing ends as lost (manager.c). */
void worker__mark_finishing(worker_manager *m, const queue_job *jobs, size_t n);

/* Forget the leases of jobs[0..n) (and their in-flight count) once they are
 * completed, failed, released or dropped (manager.c). */
void worker__unregister_leases(worker_manager *m, const queue_job *jobs, size_t n);

/* One batch (batch.c).  Step 1: load texts (no transaction open).  Takes the
 * jobs array.  NULL only when even the state could not be allocated. */
worker_batch *worker__batch_load(worker_thread *w, queue_job *jobs, size_t n);
/* Step 2: vectors for the loaded texts (no transaction open), retried in
 * place; routes every job that could not get one. */
void worker__batch_embed(worker_thread *w, worker_batch *b);
/* Steps 3 to 5: complete, fail, release; then forget the leases.  Frees b. */
void worker__batch_finish(worker_manager *m, worker_batch *b);

#endif
