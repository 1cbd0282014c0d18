/*
 * beside.c - a read unit run on a second connection while the caller runs
 * its own statements (graph_int.h, graph__beside_start).
 *
 * Why: Bolt answers one statement at a time per connection, so the legs of
 * a search (the entity and the observation vector indexes, the keyword
 * legs) ran one after the other even when Neo4j had a core idle.  Each leg
 * is already its own auto-commit statement (graph__read), so running one on
 * another connection changes no isolation the search had.
 *
 * Why the helper never waits for a connection: the caller holds one while
 * it waits for the helper, so callers that each held one and waited for a
 * second could empty the pool and wait on each other until the acquire
 * timeout.  A helper that finds no free connection gives up at once and the
 * join runs its work on the caller's connection, after the caller's own.
 */
#include "graph/graph_int.h"
#include "core/log.h"
#include <string.h>

static int beside_unit(bolt_conn *c, void *payload, eg_error *err)
{
    graph_beside *b = payload;
    b->ran = true;
    return b->fn(c, b->payload, err);
}

static void *beside_main(void *arg)
{
    graph_beside *b = arg;
    bolt_tx_opts tx = BOLT_TX_OPTS_INIT;
    tx.database = b->g->opts.database;
    tx.timeout_ms = b->g->opts.tx_timeout_ms;
    tx.read_only = true;
    bolt_retry_opts r = BOLT_RETRY_OPTS_INIT;
    r.no_wait = true;
    r.max_retry_time_ms = 1; /* one attempt: the caller's unit retries whole */
    b->rc = bolt_pool_execute_read_autocommit(b->g->pool, &tx, &r, beside_unit, b, &b->err);
    return NULL;
}

void graph__beside_start(graph_beside *b, graph_store *g, bolt_work_fn fn, void *payload)
{
    memset(b, 0, sizeof *b);
    b->g = g;
    b->fn = fn;
    b->payload = payload;
    eg_error_clear(&b->err);
    b->started = pthread_create(&b->thread, NULL, beside_main, b) == 0;
}

int graph__beside_join(graph_beside *b, bolt_conn *c, eg_error *err)
{
    if (b->started) {
        pthread_join(b->thread, NULL);
        b->started = false;
        if (b->ran) {
            if (b->rc < 0)
                eg_error_copy(err, &b->err);
            return b->rc;
        }
        if (c != NULL)
            EG_DEBUG("graph", "a search leg runs after the others: %s", b->err.message);
    }
    return c != NULL ? b->fn(c, b->payload, err) : 0;
}
