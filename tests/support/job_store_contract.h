/*
 * job_store_contract.h - the one contract suite every queue_store must pass.
 *
 * tests/contract/test_job_store_mem.c and test_job_store_neo4j.c each supply
 * a fixture that makes a fresh, empty, isolated store (the Neo4j one uses a
 * unique queue name on the shared database and deletes its jobs afterwards)
 * and run jsc_run().  The tests use real time (short leases and backoffs)
 * so that the same code exercises the database clock in Neo4j.
 *
 * Thread-safety: the suite runs one test at a time; some tests start
 * threads of their own against the store.
 */
#ifndef ENGRAM_TESTS_JOB_STORE_CONTRACT_H
#define ENGRAM_TESTS_JOB_STORE_CONTRACT_H

#include "queue/job_store.h"

typedef struct jsc_fixture {
    const char *name;
    /* Make a fresh empty store with these settings (name is overridden). */
    int (*make)(queue_store **out, const queue_opts *opts, void *ctx);
    /* Remove whatever the store wrote, then free it. */
    void (*destroy)(queue_store *s, void *ctx);
    void *ctx;
    /* The store's leases return a locator (queue_job.locator) and its
     * fenced calls use it: the suite then checks that they do. */
    bool locators;
} jsc_fixture;

/* Run the suite; returns the number of failed tests (cmocka). */
int jsc_run(const jsc_fixture *fx);

#endif
