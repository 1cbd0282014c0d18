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
 * us labels the node stale again.  The fresh read also requires the label
 * still: another process's indexer that held the lock before us has
 * indexed the entity already, and a second TEXT-index write would only add
 * a refresh.  `$ns` null takes every namespace; `$grace` (ms) leaves alone
 * what was written more recently, which its writer's indexer is about to
 * take (updatedAt is set by both writes that label an entity stale).
 * n counts the entities taken: a full batch means look again.
 */
static const char Q_INDEX_STALE[] =
    "MATCH (s:Entity:" GRAPH_SEARCH_STALE_LABEL ") "
    "WHERE ($ns IS NULL OR s.namespace IN $ns) AND coalesce(s.updatedAt, 0) <= timestamp() - $grace "
    "WITH s LIMIT $max "
    "SET s.lockSeq = coalesce(s.lockSeq, 0) + 1 "
    "WITH elementId(s) AS eid "
    "OPTIONAL MATCH (e:Entity:" GRAPH_SEARCH_STALE_LABEL ") WHERE elementId(e) = eid "
    "FOREACH (_ IN CASE WHEN e IS NULL THEN [] ELSE [1] END | "
    "SET " GRAPH_SEARCH_SET("e") " "
    "REMOVE e:" GRAPH_SEARCH_STALE_LABEL ") "
    "RETURN count(eid) AS n";

typedef struct index_work {
    const json_t *ns; /* borrowed; NULL: every namespace */
    int64_t grace_ms;
    size_t max;
    size_t taken;
} index_work;

static int index_fn(bolt_conn *c, void *payload, eg_error *err)
{
    index_work *w = payload;
    bolt_params *p = graph__params(err);
    if (p == NULL)
        return EG_ENOMEM;
    if (w->ns)
        bolt_params_json(p, "ns", w->ns);
    else
        bolt_params_null(p, "ns");
    bolt_params_int(p, "grace", w->grace_ms);
    bolt_params_int(p, "max", (int64_t)w->max);
    json_t *rows = NULL;
    int rc = graph__q_params(c, Q_INDEX_STALE, p, &rows, err);
    w->taken = rc == 0 ? (size_t)graph__jint(json_array_get(rows, 0), "n", 0) : 0;
    json_decref(rows);
    return rc;
}

/* Batches of `max` until one comes back short or the indexer stops. */
static int index_batches(graph_store *g, const json_t *ns, int64_t grace_ms, size_t max, const atomic_bool *quit,
                         eg_error *err)
{
    index_work w = {ns, grace_ms, max, 0};
    int rc;
    do
        rc = graph__write(g, index_fn, &w, err);
    while (rc == 0 && w.taken == max && !atomic_load(quit));
    return rc;
}

int graph_search_index_stale(graph_store *g, size_t max, size_t *indexed, eg_error *err)
{
    if (indexed)
        *indexed = 0;
    if (g == NULL || max == 0)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "search index: bad arguments");
    index_work w = {NULL, 0, max, 0};
    int rc = graph__write(g, index_fn, &w, err);
    if (rc == 0 && indexed)
        *indexed = w.taken;
    return rc;
}

/* ---- the thread ---- */

#define INDEX_BATCH 500
/* Namespaces remembered between batches; a process writing to more in one
 * linger leaves the rest to the poll (still searchable meanwhile). */
#define INDEX_MAX_POKED 1024

typedef struct graph_indexer {
    graph_store *g;
    int64_t linger_ms, poll_ms, grace_ms;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    json_t *poked;    /* mu: array of the namespaces written since the last batch */
    atomic_bool quit; /* read unlocked by the batch loop */
} graph_indexer;

/* Wait until the deadline passes or the indexer stops; mu held. */
static void wait_until(graph_indexer *ix, const struct timespec *ts)
{
    while (!atomic_load(&ix->quit) && pthread_cond_timedwait(&ix->cv, &ix->mu, ts) != ETIMEDOUT)
        ;
}

/* Adds ns to the list unless it is there already or the list is full. */
static void remember_ns(json_t *list, const char *ns)
{
    size_t i;
    json_t *x;
    if (ns == NULL || json_array_size(list) >= INDEX_MAX_POKED)
        return;
    json_array_foreach(list, i, x) if (strcmp(json_string_value(x), ns) == 0) return;
    json_array_append_new(list, json_string(ns)); /* out of memory: the poll takes it */
}

static void log_failure(const char *what, const eg_error *err)
{
    /* nothing is lost: the entities stay stale, and searchable */
    eg_log_fields(EG_LOG_WARNING, "graph", "search index upkeep failed; retrying", "pass", what, "error",
                  err->message, NULL);
}

static void *indexer_main(void *arg)
{
    graph_indexer *ix = arg;
    int64_t backoff = 0;
    int64_t next_poll = eg_mono_ms(); /* a first pass at start: what earlier processes left */
    pthread_mutex_lock(&ix->mu);
    while (!atomic_load(&ix->quit)) {
        struct timespec ts;
        /* the poll runs on its own clock: a process that writes all the
         * time is poked all the time, and must still take what others left */
        int64_t wake = backoff > 0 ? eg_mono_ms() + backoff : next_poll;
        /* a poke ends the wait, but not a backoff's */
        while (!atomic_load(&ix->quit) && (backoff > 0 || json_array_size(ix->poked) == 0) && eg_mono_ms() < wake) {
            eg_mono_deadline(&ts, wake - eg_mono_ms());
            if (pthread_cond_timedwait(&ix->cv, &ix->mu, &ts) == ETIMEDOUT)
                break;
        }
        if (atomic_load(&ix->quit))
            break;
        json_t *ns = NULL;
        if (json_array_size(ix->poked) > 0) {
            if (ix->linger_ms > 0) {
                /* the writes of the next linger_ms share this batch's refresh */
                eg_mono_deadline(&ts, ix->linger_ms);
                wait_until(ix, &ts);
            }
            ns = json_copy(ix->poked); /* out of memory: the poll takes them */
            json_array_clear(ix->poked);
        }
        bool poll = eg_mono_ms() >= next_poll;
        pthread_mutex_unlock(&ix->mu);
        eg_error err;
        eg_error_clear(&err);
        int rc = 0;
        if (ns != NULL && (rc = index_batches(ix->g, ns, 0, INDEX_BATCH, &ix->quit, &err)) != 0)
            log_failure("written", &err);
        if (rc == 0 && poll) {
            if ((rc = index_batches(ix->g, NULL, ix->grace_ms, INDEX_BATCH, &ix->quit, &err)) != 0)
                log_failure("poll", &err);
            else
                next_poll = eg_mono_ms() + ix->poll_ms;
        }
        pthread_mutex_lock(&ix->mu);
        if (rc != 0 && ns != NULL) {
            /* the namespaces are retried with the next batch */
            size_t i;
            json_t *x;
            json_array_foreach(ns, i, x) remember_ns(ix->poked, json_string_value(x));
        }
        json_decref(ns);
        backoff = rc != 0 ? (backoff ? (backoff * 2 > 30000 ? 30000 : backoff * 2) : 500) : 0;
    }
    pthread_mutex_unlock(&ix->mu);
    return NULL;
}

int graph_indexer_start(graph_store *g, int64_t linger_ms, int64_t poll_ms, int64_t grace_ms, eg_error *err)
{
    if (g == NULL || linger_ms < 0 || poll_ms <= 0 || grace_ms < 0)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "search indexer: bad arguments");
    if (g->indexer != NULL)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "search indexer already running");
    graph_indexer *ix = eg_calloc(1, sizeof *ix);
    if (ix == NULL || (ix->poked = json_array()) == NULL) {
        eg_free(ix);
        return eg_error_oom(err);
    }
    ix->g = g;
    ix->linger_ms = linger_ms;
    ix->poll_ms = poll_ms;
    ix->grace_ms = grace_ms;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&ix->mu, NULL);
    pthread_cond_init(&ix->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&ix->th, NULL, indexer_main, ix) != 0) {
        pthread_cond_destroy(&ix->cv);
        pthread_mutex_destroy(&ix->mu);
        json_decref(ix->poked);
        eg_free(ix);
        return eg_error_set(err, EG_EINTERNAL, EG_CLASS_CLIENT, "search indexer: cannot start a thread");
    }
    g->indexer = ix;
    return 0;
}

void graph__indexer_poke(graph_store *g, const char *ns)
{
    graph_indexer *ix = g ? g->indexer : NULL;
    if (ix == NULL || ns == NULL)
        return;
    pthread_mutex_lock(&ix->mu);
    remember_ns(ix->poked, ns);
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
    json_decref(ix->poked);
    g->indexer = NULL;
    eg_free(ix);
}
