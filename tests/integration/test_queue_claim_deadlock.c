/*
 * test_queue_claim_deadlock.c - a claim that Neo4j aborts as a deadlock
 * victim is retried and loses nothing.
 *
 * Claims serialise on the queue's mutex node and never deadlock each other,
 * but any other transaction that holds a job lock and then asks for the
 * mutex can close a cycle with a claim in flight.  This test builds exactly
 * that cycle, with the claim as the transaction Neo4j aborts:
 *
 *   1. adversary B locks the oldest job J0 (equal-value write: lock only);
 *   2. adversary A locks J10 plus 300 scratch nodes, so that it holds far
 *      more locks than the claim will (Neo4j aborts the "younger"
 *      transaction of a cycle, the one with fewer locks);
 *   3. the claim starts: it takes the mutex and blocks on J0;
 *   4. A asks for the mutex and waits behind the claim;
 *   5. B rolls back: the claim locks J0..J9 and asks for J10, held by A,
 *      which waits for the claim -> DeadlockDetected in the claim;
 *   6. the claim's transaction rolls back, A gets the mutex and commits,
 *      and the store's managed transaction runs the claim again.
 *
 * Checked: queue_lease returns 0 with all 20 jobs (the error never reaches
 * the caller), the pool counted at least one retry, A committed, and every
 * job is then completed exactly once.  Prints
 *   stress: claim_deadlock jobs=N duplicates=N lost=N claim_retries=N ...
 */
#include "core/alloc.h"
#include "core/clock.h"
#include "queue/neo4j_store.h"
#include "support/queue_neo4j_fixture.h"
#include "support/testenv.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NJOBS 20
#define HOLD_IDX 10
#define SCRATCH 300

static int g_failures;

#define CHECK(cond, ...) EG_TEST_CHECK(g_failures, cond, __VA_ARGS__)

static bolt_config g_cfg;
static char g_queue[QUEUE_NAME_MAX];
static char g_run[13];

static int exec1(bolt_conn *c, const char *q, const char *k1, const char *v1, eg_error *err)
{
    bolt_params *p = bolt_params_new();
    if (!p)
        return EG_ENOMEM;
    bolt_params_str(p, k1, v1);
    bolt_params_str(p, "run", g_run);
    int rc = bolt_conn_exec(c, q, p, NULL, NULL, err);
    bolt_params_free(p);
    return rc;
}

/* Lock a job the way the store does: write the value it already has. */
static int lock_job(bolt_conn *c, const char *id, eg_error *err)
{
    return exec1(c, "MATCH (j:EmbedJob {id: $id}) SET j.queue = j.queue", "id", id, err);
}

typedef struct claim_arg {
    queue_store *s;
    queue_job *jobs;
    size_t n;
    int rc;
    eg_error err;
    int64_t ms;
} claim_arg;

static void *claim_thread(void *p)
{
    claim_arg *a = p;
    queue_lease_opts lo = {.owner = "deadlock-claimer", .max_jobs = NJOBS, .lease_ms = 60000};
    int64_t t0 = eg_mono_ms();
    a->rc = queue_lease(a->s, &lo, &a->jobs, &a->n, &a->err);
    a->ms = eg_mono_ms() - t0;
    return NULL;
}

typedef struct mutex_arg {
    bolt_conn *c;
    int rc;
    eg_error err;
} mutex_arg;

/* Adversary A's second step: ask for the queue's mutex (blocks on the claim). */
static void *mutex_thread(void *p)
{
    mutex_arg *a = p;
    a->rc = exec1(a->c, "MATCH (q:EmbedQueue {name: $q}) SET q.claims = q.claims", "q", g_queue, &a->err);
    if (a->rc == 0)
        a->rc = bolt_conn_commit(a->c, NULL, &a->err);
    return NULL;
}

static int enqueue_one(queue_store *s, const char *entity, char *id_out)
{
    queue_enqueue_req r = {.ns = "deadlock", .entity = entity, .version = "v1", .model = "m"};
    queue_enqueue_result out;
    eg_error err = {0};
    if (queue_enqueue(s, NULL, &r, 1, &out, &err)) {
        fprintf(stderr, "enqueue: %s\n", err.message);
        return -1;
    }
    if (id_out)
        memcpy(id_out, out.id, QUEUE_ID_MAX);
    return out.created ? 0 : -1;
}

int main(void)
{
    bolt_pool *pool = NULL;
    int rc = qfx_open(&pool, 8);
    if (rc)
        return rc;
    if ((rc = eg_testenv_neo4j(&g_cfg)))
        return rc;
    eg_rand_hex(g_run, 6);
    qfx_queue_name(g_queue, "deadlock");
    queue_opts o = QUEUE_OPTS_INIT;
    snprintf(o.name, sizeof o.name, "%s", g_queue);
    queue_store *s = NULL;
    eg_error err = {0};
    if (queue_neo4j_new(&s, pool, &o, &err)) {
        fprintf(stderr, "FAIL store: %s\n", err.message);
        return 1;
    }

    /* The mutex node exists once a claim has run: one warm-up job. */
    CHECK(enqueue_one(s, "warmup", NULL) == 0, "warm-up enqueue");
    queue_job *jobs = NULL;
    size_t n = 0;
    queue_lease_opts lo = {.owner = "warmup", .max_jobs = 1, .lease_ms = 60000};
    CHECK(queue_lease(s, &lo, &jobs, &n, &err) == 0 && n == 1, "warm-up lease: %s", err.message);
    if (n == 1) {
        queue_lease_ref ref = queue_job_ref(&jobs[0]);
        queue_outcome oc;
        CHECK(queue_complete(s, "warmup", &ref, 1, NULL, NULL, &oc, &err) == 0 && oc == QUEUE_OUT_OK,
              "warm-up complete");
    }
    queue_jobs_free(jobs, n);

    /* NJOBS jobs with strictly increasing runAt (claim order = this order). */
    char ids[NJOBS][QUEUE_ID_MAX];
    for (int i = 0; i < NJOBS; i++) {
        char ent[16];
        snprintf(ent, sizeof ent, "e%02d", i);
        CHECK(enqueue_one(s, ent, ids[i]) == 0, "enqueue %d", i);
        eg_sleep_ms(3);
    }

    bolt_conn *ca = NULL, *cb = NULL;
    if (bolt_conn_open(&ca, &g_cfg, &err) || bolt_conn_open(&cb, &g_cfg, &err)) {
        fprintf(stderr, "FAIL connect: %s\n", err.message);
        return 1;
    }
    /* Scratch nodes that give A many locks. */
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "run", g_run);
    bolt_params_int(p, "n", SCRATCH);
    CHECK(bolt_conn_exec(ca, "UNWIND range(1, $n) AS i CREATE (:QueueDeadlockScratch {run: $run, i: i})", p,
                         NULL, NULL, &err) == 0,
          "scratch: %s", err.message);
    bolt_params_free(p);

    /* 1. B holds J0. */
    CHECK(bolt_conn_begin(cb, NULL, &err) == 0 && lock_job(cb, ids[0], &err) == 0, "B: %s", err.message);
    /* 2. A holds J10 and the scratch nodes. */
    CHECK(bolt_conn_begin(ca, NULL, &err) == 0 && lock_job(ca, ids[HOLD_IDX], &err) == 0 &&
              exec1(ca, "MATCH (n:QueueDeadlockScratch {run: $run}) SET n.i = n.i", "unused", "", &err) == 0,
          "A: %s", err.message);

    bolt_pool_stats before;
    bolt_pool_get_stats(pool, &before);
    /* 3. The claim takes the mutex and blocks on J0. */
    claim_arg ca_arg = {.s = s};
    pthread_t tc, tm;
    pthread_create(&tc, NULL, claim_thread, &ca_arg);
    eg_sleep_ms(400);
    /* 4. A waits for the mutex behind the claim. */
    mutex_arg ma = {.c = ca};
    pthread_create(&tm, NULL, mutex_thread, &ma);
    eg_sleep_ms(400);
    /* 5. B lets go of J0: the claim runs into J10 and closes the cycle. */
    CHECK(bolt_conn_rollback(cb, &err) == 0, "B rollback: %s", err.message);
    pthread_join(tm, NULL);
    pthread_join(tc, NULL);
    bolt_pool_stats after;
    bolt_pool_get_stats(pool, &after);
    uint64_t retries = after.retries - before.retries;

    CHECK(ca_arg.rc == 0, "the claim surfaced an error: %s %s", ca_arg.err.message, ca_arg.err.neo4j_code);
    CHECK(ma.rc == 0, "adversary A was the victim instead (%s %s): the test did not exercise a claim retry",
          ma.err.message, ma.err.neo4j_code);
    CHECK(retries >= 1, "the claim was not retried (pool retries %llu)", (unsigned long long)retries);
    CHECK(ca_arg.n == NJOBS, "the claim returned %zu of %d jobs", ca_arg.n, NJOBS);

    /* Every job leased once, in order, then completed exactly once. */
    int seen[NJOBS] = {0};
    long long dup = 0;
    queue_lease_ref refs[NJOBS];
    for (size_t i = 0; i < ca_arg.n; i++) {
        refs[i] = queue_job_ref(&ca_arg.jobs[i]);
        for (int k = 0; k < NJOBS; k++)
            if (strcmp(ca_arg.jobs[i].id, ids[k]) == 0 && seen[k]++)
                dup++;
        CHECK(ca_arg.jobs[i].attempts == 1, "job %s attempts %d after a retried claim", ca_arg.jobs[i].id,
              ca_arg.jobs[i].attempts);
    }
    queue_outcome oc[NJOBS];
    long long done = 0;
    if (ca_arg.n) {
        CHECK(queue_complete(s, "deadlock-claimer", refs, ca_arg.n, NULL, NULL, oc, &err) == 0, "complete: %s",
              err.message);
        for (size_t i = 0; i < ca_arg.n; i++)
            done += oc[i] == QUEUE_OUT_OK;
    }
    queue_status st;
    CHECK(queue_status_get(s, &st, &err) == 0, "status: %s", err.message);
    long long completed = (long long)st.count[QUEUE_COMPLETED];
    long long pending = (long long)st.count[QUEUE_PENDING] + (long long)st.count[QUEUE_LEASED];
    queue_status_clear(&st);
    long long lost = NJOBS - done;
    CHECK(completed == NJOBS + 1 && pending == 0, "completed %lld (want %d incl. warm-up), open %lld", completed,
          NJOBS + 1, pending);
    printf("stress: claim_deadlock jobs=%d duplicates=%lld lost=%lld claim_retries=%llu claim_ms=%lld "
           "adversary_committed=%d\n",
           NJOBS, dup, lost, (unsigned long long)retries, (long long)ca_arg.ms, ma.rc == 0);
    fflush(stdout);
    CHECK(dup == 0 && lost == 0, "duplicates %lld lost %lld", dup, lost);
    queue_jobs_free(ca_arg.jobs, ca_arg.n);

    exec1(cb, "MATCH (n:QueueDeadlockScratch {run: $run}) DELETE n", "unused", "", &err);
    bolt_conn_free(ca);
    bolt_conn_free(cb);
    qfx_cleanup_queue(pool, g_queue);
    queue_store_free(s);
    bolt_pool_free(pool);
    fprintf(stderr, "%s (%d failure(s))\n", g_failures ? "FAILED" : "PASSED", g_failures);
    return g_failures ? 1 : 0;
}
