/*
 * test_job_store_mem.c - the job store contract suite on the in-memory store.
 */
#include "support/job_store_contract.h"
#include "queue/mem_store.h"

static int make(queue_store **out, const queue_opts *opts, void *ctx)
{
    (void)ctx;
    return queue_mem_new(out, opts, NULL, NULL, NULL);
}

static void destroy(queue_store *s, void *ctx)
{
    (void)ctx;
    queue_store_free(s);
}

int main(void)
{
    jsc_fixture fx = {.name = "job_store_contract_memory", .make = make, .destroy = destroy};
    return jsc_run(&fx);
}
