/*
 * test_job_store_neo4j.c - the job store contract suite on real Neo4j.
 *
 * Each test gets its own queue name (and namespace) on the test database,
 * and its jobs are deleted afterwards, so it can share a database.
 */
#include "queue/neo4j_store.h"
#include "support/job_store_contract.h"
#include "support/queue_neo4j_fixture.h"

#include <stdio.h>

static bolt_pool *g_pool;

static int make(queue_store **out, const queue_opts *opts, void *ctx)
{
    (void)ctx;
    queue_opts o = *opts;
    qfx_queue_name(o.name, "contract");
    return queue_neo4j_new(out, g_pool, &o, NULL);
}

static void destroy(queue_store *s, void *ctx)
{
    (void)ctx;
    qfx_cleanup_queue(g_pool, queue_store_opts(s)->name);
    queue_store_free(s);
}

int main(void)
{
    int rc = qfx_open(&g_pool, 24);
    if (rc)
        return rc;
    jsc_fixture fx = {.name = "job_store_contract_neo4j", .make = make, .destroy = destroy,
                     .locators = true};
    rc = jsc_run(&fx);
    bolt_pool_free(g_pool);
    return rc;
}
