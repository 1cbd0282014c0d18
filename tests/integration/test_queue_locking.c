/*
 * test_queue_locking.c - the Neo4j behaviour the queue's claim relies on.
 *
 * The claim and every fenced update lock a job by writing a property with
 * the value it already has (SET j.queue = j.queue): no change, no index
 * update, but the write lock is taken, so a concurrent writer waits until
 * we commit.  If a Neo4j version ever skipped the lock for equal-value
 * writes, the queue would silently lose its atomicity; this test fails
 * instead.  It also pins the negative case (REMOVE of an absent property
 * takes no lock) so the test can fail, and that a fresh variable matched by
 * element id after the lock reads the committed state.  Whether a writer
 * waits is asked of the server (SHOW TRANSACTIONS: "Blocked by"), not
 * inferred from timings, so a loaded machine cannot change the verdict.
 */
#include "core/clock.h"
#include "support/testenv.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bolt_config g_cfg;
static char g_key[40];

typedef struct arg {
    int64_t waited_ms;
    int rc;
    atomic_bool done;
} arg;

/* A second connection and the probe's key as $k (for the threads). */
static int open_probe(bolt_conn **c, bolt_params **pr)
{
    eg_error err = {0};
    int rc = bolt_conn_open(c, &g_cfg, &err);
    if (rc)
        return rc;
    *pr = bolt_params_new();
    bolt_params_str(*pr, "k", g_key);
    return 0;
}

static void *other_writer(void *p)
{
    arg *a = p;
    bolt_conn *c = NULL;
    bolt_params *pr = NULL;
    eg_error err = {0};
    if ((a->rc = open_probe(&c, &pr)))
        return NULL;
    int64_t t0 = eg_mono_ms();
    a->rc = bolt_conn_begin(c, NULL, &err);
    if (!a->rc)
        a->rc = bolt_conn_exec(c, "MATCH (n:QueueLockProbe {k: $k}) SET n.other = 1 /* probe-other */", pr, NULL,
                               NULL, &err);
    if (!a->rc)
        a->rc = bolt_conn_commit(c, NULL, &err);
    a->waited_ms = eg_mono_ms() - t0;
    bolt_params_free(pr);
    bolt_conn_free(c);
    atomic_store(&a->done, true);
    return NULL;
}

/*
 * Wait (at most 10 s) until the server shows a transaction running the
 * statement tagged `marker` blocked on a lock: 1 when seen, 0 when *done
 * turned true first (it never blocked), -1 on timeout or error.  Asking
 * the server, not sleeping, keeps the probes' verdicts true on a loaded
 * machine, where the other thread may need seconds to get to its statement.
 */
static int wait_blocked(const char *marker, atomic_bool *done)
{
    bolt_conn *c = NULL;
    eg_error err = {0};
    if (bolt_conn_open(&c, &g_cfg, &err))
        return -1;
    bolt_params *pr = bolt_params_new();
    bolt_params_str(pr, "m", marker);
    int res = -1;
    for (int64_t end = eg_mono_ms() + 10000; eg_mono_ms() < end;) {
        json_t *rows = NULL;
        if (bolt_conn_query_json(c,
                                 "SHOW TRANSACTIONS YIELD currentQuery, status "
                                 "WHERE currentQuery CONTAINS $m AND status STARTS WITH 'Blocked' "
                                 "RETURN count(*) AS n",
                                 pr, NULL, &rows, &err))
            break;
        json_int_t n = json_integer_value(json_object_get(json_array_get(rows, 0), "n"));
        json_decref(rows);
        if (n > 0) {
            res = 1;
            break;
        }
        if (done && atomic_load(done)) {
            res = 0;
            break;
        }
        eg_sleep_ms(20);
    }
    bolt_params_free(pr);
    bolt_conn_free(c);
    return res;
}

/* Hold `stmt` uncommitted until another writer of the same node is seen
 * blocked (then 300 ms more) or has finished: 1 when it blocked, 0 when it
 * finished while we held the statement's locks, -1 when the probe failed;
 * *waited_ms: how long the other writer took. */
static int probe(bolt_conn *c, const char *stmt, int64_t *waited_ms)
{
    eg_error err = {0};
    bolt_params *pr = bolt_params_new();
    bolt_params_str(pr, "k", g_key);
    if (bolt_conn_begin(c, NULL, &err) || bolt_conn_exec(c, stmt, pr, NULL, NULL, &err)) {
        fprintf(stderr, "probe: %s\n", err.message);
        bolt_params_free(pr);
        return -1;
    }
    arg a = {0};
    pthread_t th;
    pthread_create(&th, NULL, other_writer, &a);
    int blocked = wait_blocked("probe-other", &a.done);
    if (blocked == 1)
        eg_sleep_ms(300);
    bolt_conn_commit(c, NULL, &err);
    pthread_join(th, NULL);
    bolt_params_free(pr);
    *waited_ms = a.waited_ms;
    return a.rc ? -1 : blocked;
}

/*
 * The second half of the idiom: after the lock, a *fresh* variable matched
 * by element id reads what the other transaction committed while we waited,
 * where the candidate variable may still answer from the value it read
 * before the lock.  The holder changes `state` and commits after 500 ms;
 * the claimer, blocked on the lock meanwhile, must see the new value.
 */
typedef struct reread_arg {
    char fresh[32], cached[32];
    int rc;
} reread_arg;

static void *claimer(void *p)
{
    reread_arg *a = p;
    bolt_conn *c = NULL;
    bolt_params *pr = NULL;
    eg_error err = {0};
    if ((a->rc = open_probe(&c, &pr)))
        return NULL;
    json_t *rows = NULL;
    a->rc = bolt_conn_query_json(c,
                                 "CYPHER runtime = slotted MATCH (c:QueueLockProbe {k: $k}) "
                                 "WHERE c.state = 'pending' "
                                 "SET c.queue = c.queue "
                                 "WITH c, elementId(c) AS eid "
                                 "MATCH (j:QueueLockProbe) WHERE elementId(j) = eid "
                                 "RETURN j.state AS fresh, c.state AS cached /* probe-claimer */",
                                 pr, NULL, &rows, &err);
    json_t *row = json_array_get(rows, 0);
    const char *fresh = json_string_value(json_object_get(row, "fresh"));
    const char *cached = json_string_value(json_object_get(row, "cached"));
    snprintf(a->fresh, sizeof a->fresh, "%s", fresh ? fresh : "(none)");
    snprintf(a->cached, sizeof a->cached, "%s", cached ? cached : "(none)");
    json_decref(rows);
    bolt_params_free(pr);
    bolt_conn_free(c);
    return NULL;
}

static int fresh_reread(bolt_conn *c)
{
    eg_error err = {0};
    bolt_params *pr = bolt_params_new();
    bolt_params_str(pr, "k", g_key);
    bolt_conn_exec(c, "MATCH (n:QueueLockProbe {k: $k}) SET n.state = 'pending'", pr, NULL, NULL, &err);
    int rc = bolt_conn_begin(c, NULL, &err);
    if (!rc)
        rc = bolt_conn_exec(c, "MATCH (n:QueueLockProbe {k: $k}) SET n.queue = n.queue", pr, NULL, NULL, &err);
    reread_arg a = {0};
    pthread_t th;
    pthread_create(&th, NULL, claimer, &a);
    /* the claimer has read 'pending' and waits for our lock */
    int blocked = rc ? -1 : wait_blocked("probe-claimer", NULL);
    if (!rc)
        rc = bolt_conn_exec(c, "MATCH (n:QueueLockProbe {k: $k}) SET n.state = 'leased'", pr, NULL, NULL, &err);
    if (!rc)
        rc = bolt_conn_commit(c, NULL, &err);
    pthread_join(th, NULL);
    bolt_params_free(pr);
    printf("after the lock: fresh re-read by element id saw '%s' (the candidate variable: '%s')\n", a.fresh,
           a.cached);
    if (rc || a.rc) {
        fprintf(stderr, "FAIL: fresh re-read probe failed: %s\n", err.message);
        return 1;
    }
    if (blocked != 1) {
        fprintf(stderr, "FAIL: the claimer was never seen waiting for the lock: the probe cannot tell\n");
        return 1;
    }
    if (strcmp(a.fresh, "leased") != 0) {
        fprintf(stderr, "FAIL: a fresh variable read '%s' after the lock, not the committed 'leased': "
                        "the queue's lock-then-recheck is unsafe on this Neo4j\n",
                a.fresh);
        return 1;
    }
    return 0;
}

int main(void)
{
    int rc = eg_testenv_neo4j(&g_cfg);
    if (rc)
        return rc;
    char hex[13];
    eg_rand_hex(hex, 6);
    snprintf(g_key, sizeof g_key, "probe_%s", hex);
    bolt_conn *c = NULL;
    eg_error err = {0};
    if (bolt_conn_open(&c, &g_cfg, &err)) {
        fprintf(stderr, "FAIL: %s\n", err.message);
        return 1;
    }
    bolt_params *pr = bolt_params_new();
    bolt_params_str(pr, "k", g_key);
    bolt_conn_exec(c, "CREATE (:QueueLockProbe {k: $k, queue: 'q'})", pr, NULL, NULL, &err);
    int64_t same_value = 0, same_const = 0, remove_absent = 0;
    int same_value_blocks =
        probe(c, "CYPHER runtime = slotted MATCH (j:QueueLockProbe {k: $k}) SET j.queue = j.queue", &same_value);
    int same_const_blocks =
        probe(c, "CYPHER runtime = slotted MATCH (j:QueueLockProbe {k: $k}) SET j.queue = 'q'", &same_const);
    int remove_absent_blocks =
        probe(c, "CYPHER runtime = slotted MATCH (j:QueueLockProbe {k: $k}) REMOVE j.absent", &remove_absent);
    int reread_fails = fresh_reread(c);
    bolt_conn_exec(c, "MATCH (n:QueueLockProbe {k: $k}) DELETE n", pr, NULL, NULL, &err);
    bolt_params_free(pr);
    bolt_conn_free(c);
    printf("equal-value SET blocked the other writer %lld ms (constant: %lld ms); REMOVE of an absent "
           "property: %lld ms\n",
           (long long)same_value, (long long)same_const, (long long)remove_absent);
    int fails = reread_fails;
    if (same_value_blocks != 1 || same_const_blocks != 1) {
        fprintf(stderr, "FAIL: an equal-value SET did not take the write lock: the queue's claim is unsafe "
                        "on this Neo4j\n");
        fails++;
    }
    if (remove_absent_blocks != 0) {
        fprintf(stderr, "FAIL: the negative control blocked too, or its probe failed (%d, %lld ms): the probe "
                        "cannot tell\n",
                remove_absent_blocks, (long long)remove_absent);
        fails++;
    }
    return fails ? 1 : 0;
}
