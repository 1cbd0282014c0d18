/*
 * cmd_queue.c - `engram queue status|list|retry|prune` (operators' view of
 * the embedding job queue).  The stress tests' worker process is
 * tests/support/queue_stress_worker/, not part of the CLI.
 *
 * Output: a readable table by default, one JSON document with --json.
 * Settings: ENGRAM_QUEUE_* (docs/queue.md) and NEO4J_* (cli_neo4j.h).
 */
#include "cli/cli_neo4j.h"
#include "cli/commands.h"
#include "core/alloc.h"
#include "queue/neo4j_store.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: engram queue <command> [options] [--json]\n"
            "  status                         counts per state and model, oldest pending age,\n"
            "                                 next scheduled run, dead jobs with their errors\n"
            "  list [--state S] [--model M] [--namespace N] [--entity E]\n"
            "       [--after ID] [--limit N]  jobs ordered by id (creation); --after pages\n"
            "  retry (--all | ID...) [--model M]\n"
            "                                 dead jobs back to pending with attempts reset\n"
            "  prune [--older-than-hours H] [--batch N]\n"
            "                                 delete completed/superseded jobs past retention\n"
            "  --queue NAME                   queue name (default ENGRAM_QUEUE_NAME or 'default')\n");
}

static void fmt_dur(int64_t ms, char *buf, size_t n)
{
    if (ms < 0)
        snprintf(buf, n, "-");
    else if (ms < 1000)
        snprintf(buf, n, "%lldms", (long long)ms);
    else if (ms < 120000)
        snprintf(buf, n, "%.1fs", (double)ms / 1000.0);
    else if (ms < 7200000)
        snprintf(buf, n, "%.1fm", (double)ms / 60000.0);
    else
        snprintf(buf, n, "%.1fh", (double)ms / 3600000.0);
}

static json_t *job_json(const queue_job *j)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(j->id ? j->id : ""));
    json_object_set_new(o, "namespace", j->ns ? json_string(j->ns) : json_null());
    json_object_set_new(o, "entity", j->entity ? json_string(j->entity) : json_null());
    json_object_set_new(o, "version", j->version ? json_string(j->version) : json_null());
    json_object_set_new(o, "model", j->model ? json_string(j->model) : json_null());
    json_object_set_new(o, "state", json_string(queue_state_name(j->state)));
    json_object_set_new(o, "attempts", json_integer(j->attempts));
    json_object_set_new(o, "maxAttempts", json_integer(j->max_attempts));
    json_object_set_new(o, "runAt", json_integer(j->run_at));
    json_object_set_new(o, "leaseOwner", j->lease_owner ? json_string(j->lease_owner) : json_null());
    json_object_set_new(o, "leaseUntil", j->lease_until ? json_integer(j->lease_until) : json_null());
    json_object_set_new(o, "lastError", j->last_error ? json_string(j->last_error) : json_null());
    json_object_set_new(o, "lastErrorCategory",
                        j->last_error_category ? json_string(j->last_error_category) : json_null());
    json_object_set_new(o, "createdAt", json_integer(j->created_at));
    json_object_set_new(o, "updatedAt", json_integer(j->updated_at));
    json_object_set_new(o, "completedAt", j->completed_at ? json_integer(j->completed_at) : json_null());
    return o;
}

static void print_json(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    if (s)
        printf("%s\n", s);
    eg_free(s);
    json_decref(o);
}

static json_t *counts_json(const int64_t *c)
{
    json_t *o = json_object();
    for (int s = 0; s < QUEUE_STATE_COUNT; s++)
        json_object_set_new(o, queue_state_name((queue_state)s), json_integer(c[s]));
    return o;
}

static int do_status(queue_store *s, bool json)
{
    queue_status st;
    eg_error err = {0};
    if (queue_status_get(s, &st, &err))
        return cli_fail("queue status", &err);
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "queue", json_string(queue_store_opts(s)->name));
        json_object_set_new(o, "now", json_integer(st.now));
        json_object_set_new(o, "counts", counts_json(st.count));
        json_object_set_new(o, "ready", json_integer(st.ready));
        json_object_set_new(o, "expiredLeases", json_integer(st.expired_leases));
        json_object_set_new(o, "oldestPendingAgeMs",
                            st.oldest_pending_age_ms >= 0 ? json_integer(st.oldest_pending_age_ms) : json_null());
        json_object_set_new(o, "nextRunAt", st.next_run_at ? json_integer(st.next_run_at) : json_null());
        json_t *models = json_object();
        for (size_t i = 0; i < st.nmodels; i++)
            json_object_set_new(models, st.models[i].model, counts_json(st.models[i].count));
        json_object_set_new(o, "models", models);
        json_t *dead = json_array();
        for (size_t i = 0; i < st.ndead; i++)
            json_array_append_new(dead, job_json(&st.dead[i]));
        json_object_set_new(o, "dead", dead);
        print_json(o);
    } else {
        char age[32], next[32];
        fmt_dur(st.oldest_pending_age_ms, age, sizeof age);
        if (st.next_run_at)
            fmt_dur(st.next_run_at - st.now, next, sizeof next);
        else
            snprintf(next, sizeof next, "-");
        printf("queue %s\n\n", queue_store_opts(s)->name);
        printf("%-22s", "MODEL");
        for (int k = 0; k < QUEUE_STATE_COUNT; k++)
            printf(" %11s", queue_state_name((queue_state)k));
        printf("\n");
        for (size_t i = 0; i < st.nmodels; i++) {
            printf("%-22.22s", st.models[i].model);
            for (int k = 0; k < QUEUE_STATE_COUNT; k++)
                printf(" %11lld", (long long)st.models[i].count[k]);
            printf("\n");
        }
        printf("%-22s", "(all)");
        for (int k = 0; k < QUEUE_STATE_COUNT; k++)
            printf(" %11lld", (long long)st.count[k]);
        printf("\n\nready now: %lld   oldest ready waits: %s   next scheduled run in: %s   "
               "expired leases: %lld\n",
               (long long)st.ready, age, next, (long long)st.expired_leases);
        if (st.ndead) {
            printf("\nDEAD JOBS (most recent first)\n%-30s %-16s %-20s %-8s %-10s %s\n", "ID", "MODEL",
                   "ENTITY", "ATTEMPTS", "CATEGORY", "LAST ERROR");
            for (size_t i = 0; i < st.ndead; i++) {
                const queue_job *j = &st.dead[i];
                printf("%-30s %-16.16s %-20.20s %3d/%-4d %-10s %.80s\n", j->id, j->model, j->entity,
                       j->attempts, j->max_attempts, j->last_error_category ? j->last_error_category : "-",
                       j->last_error ? j->last_error : "");
            }
        }
    }
    queue_status_clear(&st);
    return 0;
}

static int do_list(queue_store *s, queue_list_filter *f, bool json)
{
    queue_job *jobs = NULL;
    size_t n = 0;
    char next[QUEUE_ID_MAX];
    eg_error err = {0};
    if (queue_list(s, f, &jobs, &n, next, &err))
        return cli_fail("queue list", &err);
    if (json) {
        json_t *o = json_object();
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, job_json(&jobs[i]));
        json_object_set_new(o, "jobs", arr);
        json_object_set_new(o, "next", next[0] ? json_string(next) : json_null());
        print_json(o);
    } else {
        printf("%-30s %-10s %-16s %-24s %-8s %-20s %s\n", "ID", "STATE", "MODEL", "NAMESPACE/ENTITY",
               "ATTEMPTS", "RUN AT", "LAST ERROR");
        for (size_t i = 0; i < n; i++) {
            const queue_job *j = &jobs[i];
            char ent[64], when[32];
            snprintf(ent, sizeof ent, "%s/%s", j->ns ? j->ns : "", j->entity ? j->entity : "");
            cli_fmt_time(j->run_at, when, sizeof when);
            printf("%-30s %-10s %-16.16s %-24.24s %3d/%-4d %-20s %.60s\n", j->id,
                   queue_state_name(j->state), j->model, ent, j->attempts, j->max_attempts, when,
                   j->last_error ? j->last_error : "");
        }
        if (next[0])
            printf("\nmore: --after %s\n", next);
    }
    queue_jobs_free(jobs, n);
    return 0;
}

int cli_cmd_queue(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    bool json = false, all = false;
    const char *queue_name = NULL, *model = NULL;
    queue_list_filter f = QUEUE_LIST_FILTER_INIT;
    long long hours = -1, batch = 0, limit = 0;
    const char **ids = eg_calloc((size_t)argc, sizeof *ids);
    size_t nids = 0;
    if (!ids)
        return 1;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool bad = false;
        if (strcmp(a, "--json") == 0)
            json = true;
        else if (strcmp(a, "--all") == 0)
            all = true;
        else if (strcmp(a, "--queue") == 0 && v)
            queue_name = argv[++i];
        else if (strcmp(a, "--model") == 0 && v)
            model = argv[++i];
        else if (strcmp(a, "--state") == 0 && v) {
            f.state = queue_state_parse(argv[++i]);
            bad = f.state < 0;
        } else if (strcmp(a, "--namespace") == 0 && v)
            f.ns = argv[++i];
        else if (strcmp(a, "--entity") == 0 && v)
            f.entity = argv[++i];
        else if (strcmp(a, "--after") == 0 && v)
            f.after_id = argv[++i];
        else if (strcmp(a, "--limit") == 0 && v)
            bad = cli_parse_long(argv[++i], &limit) || limit < 1 || limit > 1000;
        else if (strcmp(a, "--older-than-hours") == 0 && v)
            bad = cli_parse_long(argv[++i], &hours);
        else if (strcmp(a, "--batch") == 0 && v)
            bad = cli_parse_long(argv[++i], &batch) || batch < 1 || batch > 100000;
        else if (a[0] != '-' && strcmp(sub, "retry") == 0)
            ids[nids++] = a;
        else
            bad = true;
        if (bad) {
            fprintf(stderr, "engram queue: bad option '%s'\n", a);
            usage(stderr);
            eg_free(ids);
            return 2;
        }
    }
    f.model = model;
    f.limit = (size_t)limit;
    if (strcmp(sub, "status") && strcmp(sub, "list") && strcmp(sub, "retry") && strcmp(sub, "prune")) {
        usage(stderr);
        eg_free(ids);
        return 2;
    }
    if (strcmp(sub, "retry") == 0 && !all && nids == 0) {
        fprintf(stderr, "engram queue retry: name job ids or pass --all\n");
        eg_free(ids);
        return 2;
    }
    eg_error err = {0};
    queue_opts qo;
    bolt_pool *pool = NULL;
    queue_store *s = NULL;
    int rc = 1;
    if (queue_opts_from_env(&qo, &err)) {
        rc = cli_fail("queue", &err);
        goto out;
    }
    if (queue_name) {
        if (!queue_name_valid(queue_name)) {
            fprintf(stderr, "engram queue: invalid queue name\n");
            rc = 2;
            goto out;
        }
        snprintf(qo.name, sizeof qo.name, "%s", queue_name);
    }
    if (cli_open_pool(&pool, 4, &err) || queue_neo4j_new(&s, pool, &qo, &err)) {
        rc = cli_fail("queue", &err);
        goto out;
    }
    if (strcmp(sub, "status") == 0) {
        rc = do_status(s, json);
    } else if (strcmp(sub, "list") == 0) {
        rc = do_list(s, &f, json);
    } else if (strcmp(sub, "retry") == 0) {
        int64_t count = 0;
        if (queue_retry_dead(s, all ? NULL : ids, all ? 0 : nids, model, &count, &err)) {
            rc = cli_fail("queue retry", &err);
            goto out;
        }
        if (json) {
            json_t *o = json_object();
            json_object_set_new(o, "retried", json_integer(count));
            print_json(o);
        } else {
            printf("retried %lld dead job(s)\n", (long long)count);
        }
        rc = 0;
    } else {
        int64_t deleted = 0;
        int64_t age = hours >= 0 ? hours * 3600000LL : -1;
        if (queue_prune(s, age, (size_t)batch, &deleted, &err)) {
            rc = cli_fail("queue prune", &err);
            goto out;
        }
        if (json) {
            json_t *o = json_object();
            json_object_set_new(o, "deleted", json_integer(deleted));
            print_json(o);
        } else {
            printf("pruned %lld completed/superseded job(s)\n", (long long)deleted);
        }
        rc = 0;
    }
out:
    queue_store_free(s);
    bolt_pool_free(pool);
    eg_free(ids);
    return rc;
}
