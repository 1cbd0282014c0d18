/*
 * embed_fixture.h - Neo4j fixture for the embedding worker tests.
 *
 * A pool on the test Neo4j with the queue and graph schema applied (the
 * vector index included), a unique namespace and a unique queue name per
 * run (the dev Neo4j is shared), entities written the way the graph writes
 * them (same embedding text and contentHash, job enqueued in the *same*
 * transaction), checks of what the workers stored, and cleanup.
 *
 * Thread-safety: main thread only.
 */
#ifndef ENGRAM_TESTS_EMBED_FIXTURE_H
#define ENGRAM_TESTS_EMBED_FIXTURE_H

#include "bolt/pool.h"
#include "queue/job_store.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct efx {
    bolt_pool *pool;
    queue_store *store;
    queue_opts qo;
    char ns[64];
    char queue[64];
    char model[128];
    int index_dims;          /* dimensions of the vector index */
    char index[128];
    char obs_index[128];     /* the observation records' vector index */
} efx;

/*
 * Open (pool of max_conns, schema, store on a fresh queue).  model is the
 * model jobs are enqueued for.  qo may be NULL (defaults, short backoff).
 * Returns 0, or the exit status to end the test with (77 skip, 1 fail).
 */
int efx_open(efx *f, const char *tag, const char *model, const queue_opts *qo, size_t max_conns);
/* Same on an explicit Neo4j (a private instance). */
int efx_open_cfg(efx *f, const bolt_config *cfg, const char *tag, const char *model, const queue_opts *qo,
                 size_t max_conns);
/* Delete the namespace's entities and the queue's jobs; free everything. */
void efx_close(efx *f);

/* The text entity i gets (name "ent<i>", observations from obs or a default). */
int efx_create_range(efx *f, int from, int to, const char *const *special, int nspecial);
/* Replace entity i's observations with obs (new version, new job). */
int efx_update(efx *f, int i, const char *obs);

typedef struct efx_report {
    int64_t entities;
    int64_t with_current_vector;   /* embeddingHash = contentHash, right model and dims */
    int64_t stale_vector;          /* a vector for another content */
    int64_t no_vector;
} efx_report;
int efx_check(efx *f, efx_report *out);

/* Name of the best vector-index hit within the namespace for text (offline vectors). */
int efx_search_top(efx *f, const char *text, char *name_out, size_t cap);
/* The same on the observation index: text_out gets the best live record's text. */
int efx_obs_search_top(efx *f, const char *text, char *text_out, size_t cap);
/* efx_check on the namespace's live observation records (report.entities: how many). */
int efx_obs_check(efx *f, efx_report *out);

/*
 * In a child process about to exec the engram binary: the environment that
 * points it at the test Neo4j (password in the environment only, never on a
 * command line), at this fixture's queue, and at an OpenAI-compatible fake
 * provider at base_url with the index's dimensions; short lease/heartbeat/
 * backoff settings; debug logs.
 */
void efx_child_env(const efx *f, const char *base_url);

/* In a child about to exec: stdout and stderr to the file path (created or truncated). */
void efx_child_log(const char *path);

/* Job ids read from the workers' logs (strings new, freed by efx_ids_free). */
typedef struct efx_ids {
    char **v;
    size_t n, cap;
} efx_ids;
void efx_ids_add(efx_ids *l, const char *s, size_t len);
void efx_ids_free(efx_ids *l);
void efx_ids_sort(efx_ids *l);
/* On a sorted list: is id in it; how many different ids it holds. */
bool efx_ids_has(const efx_ids *sorted, const char *id);
size_t efx_ids_distinct(const efx_ids *sorted);
/* Append the ids of a worker debug log's "job completed job=<id>" lines. */
void efx_log_completions(const char *path, efx_ids *out);

/* Queue counts by state for this queue. */
int efx_counts(efx *f, int64_t counts[QUEUE_STATE_COUNT]);

#endif
