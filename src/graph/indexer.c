/*
 * indexer.c - deferred upkeep of the substring pass's TEXT index
 * (graph.h: graph_search_index_stale, graph_indexer_start).
 *
 * Why deferred: Neo4j maintains a TEXT index (Lucene) inside the committing
 * transaction and refreshes its reader on every commit that touched it.
 * On a 2-core machine that refresh cost more than all the rest of a
 * one-entity create (docs/data-model.md, keyword search).
 * So a one-entity write (create_entities of one name, add/delete
 * observations) does not set searchText: it labels the node :SearchStale,
 * which only touches the label lookup index.  The substring pass reads the
 * TEXT index *and* every :SearchStale entity of the namespace, both checked
 * against the live fields, so a search right after a write still finds it.
 * This thread brings the stale entities' searchText up to date in batches:
 * one Lucene refresh per batch instead of one per call.
 *
 * Bulk writes (create_entities of many names, restore, migration) set
 * searchText in their own transaction: their one refresh is already shared.
 */
#include "graph/graph_int.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/*
 * Lock each stale entity first (lockSeq, as every writer does), then read
 * its fields through a fresh variable: a write that committed while we
 * waited for the lock is what gets indexed, and a write that comes after
 * us labels the node stale again.
 */
static const char Q_INDEX_STALE[] =
    "MATCH (s:Entity:" GRAPH_SEARCH_STALE_LABEL ") WITH s LIMIT $max "
    "SET s.lockSeq = coalesce(s.lockSeq, 0) + 1 "
    "WITH elementId(s) AS eid MATCH (e:Entity) WHERE elementId(e) = eid "
    "SET " GRAPH_SEARCH_SET("e") " "
    "REMOVE e:" GRAPH_SEARCH_STALE_LABEL " "
    "RETURN count(e) AS n";

typedef struct index_work {
    size_t max;
    size_t done;
} index_work;

static int index_fn(bolt_conn *c, void *payload, eg_error *err)
{
    index_work *w = payload;
    bolt_params *p = graph__params(err);
    if (p == NULL)
        return EG_ENOMEM;
    bolt_params_int(p, "max", (int64_t)w->max);
    json_t *rows = NULL;
    int rc = graph__q_params(c, Q_INDEX_STALE, p, &rows, err);
    w->done = rc == 0 ? (size_t)graph__jint(json_array_get(rows, 0), "n", 0) : 0;
    json_decref(rows);
    return rc;
}

int graph_search_index_stale(graph_store *g, size_t max, size_t *indexed, eg_error *err)
{
    if (indexed)
        *indexed = 0;
    if (g == NULL || max == 0)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "search index: bad arguments");
    index_work w = {max, 0};
    int rc = graph__write(g, index_fn, &w, err);
    if (rc == 0 && indexed)
        *indexed = w.done;
    return rc;
}

/* ---- the thread ---- */

#define INDEX_BATCH 500

typedef struct graph_indexer {
    graph_store *g;
    int64_t linger_ms, poll_ms;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool poked;      /* mu */
    atomic_bool quit; /* read unlocked by the batch loop */
} graph_indexer;

/* Wait until the deadline passes or the indexer stops; mu held. */
static void wait_until(graph_indexer *ix, const struct timespec *ts)
{
    while (!atomic_load(&ix->quit) && pthread_cond_timedwait(&ix->cv, &ix->mu, ts) != ETIMEDOUT)
        ;
}

static void *indexer_main(void *arg)
{
    graph_indexer *ix = arg;
    int64_t backoff = 0;
    pthread_mutex_lock(&ix->mu);
    while (!atomic_load(&ix->quit)) {
        struct timespec ts;
        if (!ix->poked) {
            /* the poll finds what other processes left stale (one that
             * died between its write and its batch, or runs no indexer) */
            eg_mono_deadline(&ts, backoff > 0 ? backoff : ix->poll_ms);
            while (!atomic_load(&ix->quit) && !ix->poked)
                if (pthread_cond_timedwait(&ix->cv, &ix->mu, &ts) == ETIMEDOUT)
                    break;
        }
        if (atomic_load(&ix->quit))
            break;
        if (ix->poked && ix->linger_ms > 0) {
            /* the writes of the next linger_ms share this batch's refresh */
            eg_mono_deadline(&ts, ix->linger_ms);
            wait_until(ix, &ts);
        }
        ix->poked = false;
        pthread_mutex_unlock(&ix->mu);
        size_t n = 0;
        eg_error err;
        eg_error_clear(&err);
        int rc;
        do
            rc = graph_search_index_stale(ix->g, INDEX_BATCH, &n, &err);
        while (rc == 0 && n == INDEX_BATCH && !atomic_load(&ix->quit));
        if (rc != 0) {
            backoff = backoff ? (backoff * 2 > 30000 ? 30000 : backoff * 2) : 500;
            /* nothing is lost: the entities stay stale, and searchable */
            eg_log_fields(EG_LOG_WARNING, "graph", "search index upkeep failed; retrying", "error",
                          err.message, NULL);
        } else {
            backoff = 0;
        }
        pthread_mutex_lock(&ix->mu);
    }
    pthread_mutex_unlock(&ix->mu);
    return NULL;
}

int graph_indexer_start(graph_store *g, int64_t linger_ms, int64_t poll_ms, eg_error *err)
{
    if (g == NULL || linger_ms < 0 || poll_ms <= 0)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "search indexer: bad arguments");
    if (g->indexer != NULL)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "search indexer already running");
    graph_indexer *ix = eg_calloc(1, sizeof *ix);
    if (ix == NULL)
        return eg_error_oom(err);
    ix->g = g;
    ix->linger_ms = linger_ms;
    ix->poll_ms = poll_ms;
    ix->poked = true; /* a first pass at start: what an earlier process left */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&ix->mu, NULL);
    pthread_cond_init(&ix->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&ix->th, NULL, indexer_main, ix) != 0) {
        pthread_cond_destroy(&ix->cv);
        pthread_mutex_destroy(&ix->mu);
        eg_free(ix);
        return eg_error_set(err, EG_EINTERNAL, EG_CLASS_CLIENT, "search indexer: cannot start a thread");
    }
    g->indexer = ix;
    return 0;
}

void graph__indexer_poke(graph_store *g)
{
    graph_indexer *ix = g ? g->indexer : NULL;
    if (ix == NULL)
        return;
    pthread_mutex_lock(&ix->mu);
    ix->poked = true;
    pthread_cond_signal(&ix->cv);
    pthread_mutex_unlock(&ix->mu);
}

void graph_indexer_stop(graph_store *g)
{
    graph_indexer *ix = g ? g->indexer : NULL;
    if (ix == NULL)
        return;
    pthread_mutex_lock(&ix->mu);
    atomic_store(&ix->quit, true);
    pthread_cond_signal(&ix->cv);
    pthread_mutex_unlock(&ix->mu);
    pthread_join(ix->th, NULL);
    pthread_cond_destroy(&ix->cv);
    pthread_mutex_destroy(&ix->mu);
    g->indexer = NULL;
    eg_free(ix);
}
