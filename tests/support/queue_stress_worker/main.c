/*
 * queue_stress_worker - the queue stress tests' worker process: a program of
 * the test suite, not a command of the shipped CLI (it was the hidden
 * `engram queue-stress-worker`).  tests/stress/test_queue_stress.c runs
 * several at once (and kills one with SIGKILL), tests/integration/
 * queue_cli.test.sh uses it to make jobs and failures; both find it through
 * ENGRAM_QUEUE_STRESS_WORKER (CMakeLists.txt).  It opens Neo4j as engram does
 * (NEO4J_* settings, src/cli/cli_neo4j.c) and takes the queue settings from
 * ENGRAM_QUEUE_* (docs/queue.md).
 *
 * queue_stress_worker --queue NAME --owner ID [options]: lease and complete
 * until the queue stays empty for --idle-ms, printing one line per event on
 * stdout so a parent process can count every lease across processes:
 *   L <id> <attempts>     a lease was handed to this process
 *   C <id>                completed
 *   X <id>                completion found the lease lost
 * --hold: after the first lease, print "HOLDING" and sleep (the parent
 * kills us with SIGKILL).  --fail: fail every leased job permanently
 * ("F <id>") instead of completing it.  --enqueue N --namespace NS: enqueue N
 * jobs (entities e0..eN-1, version v1, model m) and exit.  Bounded: stops
 * after --max-seconds (default 300).
 */
#include "cli/cli_neo4j.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "queue/neo4j_store.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    eg_log_init_from_env();
    const char *queue_name = NULL, *owner = NULL;
    long long batch = 50, lease_ms = 30000, idle_ms = 2000, max_s = 300, enqueue = 0;
    bool hold = false, fail = false;
    const char *ns = "stress";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool bad = false;
        if (strcmp(a, "--queue") == 0 && v)
            queue_name = argv[++i];
        else if (strcmp(a, "--owner") == 0 && v)
            owner = argv[++i];
        else if (strcmp(a, "--batch") == 0 && v)
            bad = cli_parse_long(argv[++i], &batch) || batch < 1 || batch > QUEUE_LEASE_MAX;
        else if (strcmp(a, "--lease-ms") == 0 && v)
            bad = cli_parse_long(argv[++i], &lease_ms) || lease_ms < 1;
        else if (strcmp(a, "--idle-ms") == 0 && v)
            bad = cli_parse_long(argv[++i], &idle_ms);
        else if (strcmp(a, "--max-seconds") == 0 && v)
            bad = cli_parse_long(argv[++i], &max_s);
        else if (strcmp(a, "--hold") == 0)
            hold = true;
        else if (strcmp(a, "--fail") == 0)
            fail = true;
        else if (strcmp(a, "--enqueue") == 0 && v)
            bad = cli_parse_long(argv[++i], &enqueue) || enqueue > 1000000;
        else if (strcmp(a, "--namespace") == 0 && v)
            ns = argv[++i];
        else
            bad = true;
        if (bad) {
            fprintf(stderr, "queue-stress-worker: bad option '%s'\n", a);
            return 2;
        }
    }
    if (!queue_name || !owner || !queue_name_valid(queue_name)) {
        fprintf(stderr, "queue-stress-worker: --queue and --owner are required\n");
        return 2;
    }
    eg_error err = {0};
    queue_opts qo;
    if (queue_opts_from_env(&qo, &err))
        return cli_fail("queue-stress-worker", &err);
    snprintf(qo.name, sizeof qo.name, "%s", queue_name);
    bolt_pool *pool = NULL;
    queue_store *s = NULL;
    if (cli_open_pool(&pool, 2, &err) || queue_neo4j_new(&s, pool, &qo, &err)) {
        bolt_pool_free(pool);
        return cli_fail("queue-stress-worker", &err);
    }
    int rc = 0;
    if (enqueue > 0) {
        for (long long base = 0; base < enqueue && !rc; base += 500) {
            size_t k = (size_t)(enqueue - base < 500 ? enqueue - base : 500);
            queue_enqueue_req r[500];
            queue_enqueue_result out[500];
            char names[500][24];
            for (size_t i = 0; i < k; i++) {
                snprintf(names[i], sizeof names[i], "e%lld", base + (long long)i);
                r[i] = (queue_enqueue_req){.ns = ns, .entity = names[i], .version = "v1", .model = "m"};
            }
            if (queue_enqueue(s, NULL, r, k, out, &err))
                rc = cli_fail("queue-stress-worker enqueue", &err);
            for (size_t i = 0; i < k && !rc; i++)
                printf("E %s %s\n", out[i].id, out[i].created ? "created" : "existing");
        }
        queue_store_free(s);
        bolt_pool_free(pool);
        return rc;
    }
    int64_t start = eg_mono_ms(), last_work = eg_mono_ms();
    queue_lease_ref *refs = eg_calloc((size_t)batch, sizeof *refs);
    queue_outcome *oc = eg_calloc((size_t)batch, sizeof *oc);
    while (refs && oc && eg_mono_ms() - start < max_s * 1000) {
        queue_lease_opts lo = {.owner = owner, .max_jobs = (size_t)batch, .lease_ms = lease_ms};
        queue_job *jobs = NULL;
        size_t n = 0;
        if (queue_lease(s, &lo, &jobs, &n, &err)) {
            rc = cli_fail("queue-stress-worker lease", &err);
            break;
        }
        for (size_t i = 0; i < n; i++)
            printf("L %s %d\n", jobs[i].id, jobs[i].attempts);
        fflush(stdout);
        if (n && hold) {
            printf("HOLDING\n");
            fflush(stdout);
            for (int64_t t = eg_mono_ms(); eg_mono_ms() - t < max_s * 1000;)
                eg_sleep_ms(100);
            queue_jobs_free(jobs, n);
            break;
        }
        if (n == 0) {
            if (eg_mono_ms() - last_work > idle_ms)
                break;
            eg_sleep_ms(20);
            continue;
        }
        last_work = eg_mono_ms();
        if (fail) {
            for (size_t i = 0; i < n && !rc; i++) {
                queue_failure f = {.id = jobs[i].id, .token = jobs[i].lease_token,
                                   .error = "stress worker: told to fail", .category = QUEUE_ERR_PERMANENT};
                if (queue_fail(s, owner, &f, 1, NULL, &err))
                    rc = cli_fail("queue-stress-worker fail", &err);
                else
                    printf("F %s\n", jobs[i].id);
            }
            fflush(stdout);
            queue_jobs_free(jobs, n);
            if (rc)
                break;
            continue;
        }
        for (size_t i = 0; i < n; i++)
            refs[i] = queue_job_ref(&jobs[i]);
        if (queue_complete(s, owner, refs, n, NULL, NULL, oc, &err)) {
            rc = cli_fail("queue-stress-worker complete", &err);
            queue_jobs_free(jobs, n);
            break;
        }
        for (size_t i = 0; i < n; i++)
            printf("%c %s\n", oc[i] == QUEUE_OUT_OK ? 'C' : 'X', jobs[i].id);
        fflush(stdout);
        queue_jobs_free(jobs, n);
    }
    eg_free(refs);
    eg_free(oc);
    queue_store_free(s);
    bolt_pool_free(pool);
    return rc;
}
