/*
 * test_queue_inline.c - the queue's enqueue inside a caller's statement
 * (QUEUE_NEO4J_ENQUEUE_CALL, queue_neo4j_job_rows): the jobs commit and roll
 * back with the statement's transaction, the row's job id is the job's, a
 * newer version supersedes the older pending job from inside the statement,
 * a second row of one key finds the first one's job, and a store that cannot
 * join a statement (the memory store) says so.  The jobs of fresh subjects
 * (QUEUE_NEO4J_CREATE_FRESH) commit and roll back the same way, hold what the
 * enqueue would have written, and a key that exists after all fails the
 * statement rather than making a second job.
 */
#include "core/clock.h"
#include "queue/mem_store.h"
#include "queue/neo4j_store.h"
#include "support/queue_neo4j_fixture.h"

#include <stdio.h>
#include <string.h>

static int g_fails;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            g_fails++;                                                                             \
        }                                                                                          \
    } while (0)

static const char Q_INLINE[] = QUEUE_NEO4J_PFX "WITH $qjobs AS qrows " QUEUE_NEO4J_ENQUEUE_CALL("qrows")
    "RETURN qres";

static const char Q_FRESH[] = QUEUE_NEO4J_PFX "WITH $qjobs AS qrows " QUEUE_NEO4J_CREATE_FRESH("qrows")
    "RETURN 1 AS done";

/* One statement embedding the clause over `rows` (Q_INLINE, else Q_FRESH),
 * committed or rolled back; *qres (new) its result (Q_INLINE); *code: the
 * Neo4j error code of a failure (may be NULL). */
static int run_stmt(bolt_pool *pool, const char *queue, const json_t *rows, bool inline_enqueue, bool commit,
                    json_t **qres, char *code, size_t code_size)
{
    *qres = NULL;
    bolt_conn *c = NULL;
    eg_error err = {0};
    int rc = bolt_pool_acquire(pool, &c, &err);
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "queue", queue);
    bolt_params_json(p, "qjobs", rows);
    json_t *res = NULL;
    if (rc == 0)
        rc = bolt_conn_begin(c, NULL, &err);
    if (rc == 0)
        rc = bolt_conn_query_json(c, inline_enqueue ? Q_INLINE : Q_FRESH, p, NULL, &res, &err);
    if (rc == 0)
        rc = commit ? bolt_conn_commit(c, NULL, &err) : bolt_conn_rollback(c, &err);
    if (code != NULL)
        snprintf(code, code_size, "%s", rc != 0 ? err.neo4j_code : "");
    if (rc != 0)
        fprintf(stderr, "statement (expected to fail if a test says so): %s\n", err.message);
    else
        *qres = json_incref(json_object_get(json_array_get(res, 0), "qres"));
    json_decref(res);
    bolt_params_free(p);
    bolt_pool_release(pool, c);
    return rc;
}

static int run_inline(bolt_pool *pool, const char *queue, const json_t *rows, bool commit, json_t **qres)
{
    return run_stmt(pool, queue, rows, true, commit, qres, NULL, 0);
}

static int64_t count_state(queue_store *s, const char *ns, queue_state st)
{
    queue_status q;
    eg_error err = {0};
    if (queue_status_get_ns(s, ns, &q, &err) != 0)
        return -1;
    int64_t n = q.count[st];
    queue_status_clear(&q);
    return n;
}

int main(void)
{
    bolt_pool *pool = NULL;
    int rc = qfx_open(&pool, 4);
    if (rc)
        return rc;
    queue_opts qo = QUEUE_OPTS_INIT;
    qfx_queue_name(qo.name, "inline");
    queue_store *s = NULL;
    eg_error err = {0};
    if (queue_neo4j_new(&s, pool, &qo, &err) != 0) {
        fprintf(stderr, "FAIL: %s\n", err.message);
        return 1;
    }
    char ns[32], hex[9];
    eg_rand_hex(hex, 4);
    snprintf(ns, sizeof ns, "inline-%s", hex);
    CHECK(queue_neo4j_inline(s), "a Neo4j store takes jobs in a statement");

    queue_enqueue_req req = {.ns = ns, .entity = "E1", .version = "1", .model = "m", .payload = "{}", .seq = 1};
    json_t *rows = NULL, *qres = NULL;
    CHECK(queue_neo4j_job_rows(s, &req, 1, &rows, &err) == 0 && json_array_size(rows) == 1, "rows: %s",
          err.message);
    const char *row_id = json_string_value(json_object_get(json_array_get(rows, 0), "id"));

    /* rolled back with its statement: no job */
    CHECK(run_inline(pool, qo.name, rows, false, &qres) == 0, "rollback run");
    json_decref(qres);
    CHECK(count_state(s, ns, QUEUE_PENDING) == 0, "a rolled-back statement left a job");

    /* committed: the row's own id, created */
    CHECK(run_inline(pool, qo.name, rows, true, &qres) == 0, "commit run");
    json_t *r0 = json_array_get(qres, 0);
    CHECK(json_is_true(json_object_get(r0, "created")), "not created");
    CHECK(row_id && !strcmp(json_string_value(json_object_get(r0, "id")), row_id), "id is not the row's");
    CHECK(json_integer_value(json_object_get(r0, "sup")) == 0, "superseded something");
    CHECK(count_state(s, ns, QUEUE_PENDING) == 1, "one pending job expected");
    json_decref(qres);

    /* the same key again (new rows, new id): dedupe finds the first job */
    json_t *again = NULL;
    CHECK(queue_neo4j_job_rows(s, &req, 1, &again, &err) == 0, "rows again");
    CHECK(run_inline(pool, qo.name, again, true, &qres) == 0, "dedupe run");
    r0 = json_array_get(qres, 0);
    CHECK(json_is_false(json_object_get(r0, "created")), "a second job for one key");
    CHECK(row_id && !strcmp(json_string_value(json_object_get(r0, "id")), row_id), "dedupe id is not the first job's");
    json_decref(qres);
    json_decref(again);

    /* a newer version supersedes the pending one from inside the statement */
    queue_enqueue_req v2 = req;
    v2.version = "2";
    v2.seq = 2;
    json_t *rows2 = NULL;
    CHECK(queue_neo4j_job_rows(s, &v2, 1, &rows2, &err) == 0, "rows v2");
    CHECK(run_inline(pool, qo.name, rows2, true, &qres) == 0, "v2 run");
    CHECK(json_integer_value(json_object_get(json_array_get(qres, 0), "sup")) == 1, "v2 superseded no job");
    CHECK(count_state(s, ns, QUEUE_SUPERSEDED) == 1 && count_state(s, ns, QUEUE_PENDING) == 1,
          "v1 should be superseded, v2 pending");
    json_decref(qres);
    json_decref(rows2);

    /* an empty list: one row, no job */
    json_t *none = json_array();
    CHECK(run_inline(pool, qo.name, none, true, &qres) == 0 && json_array_size(qres) == 0, "empty list");
    json_decref(qres);
    json_decref(none);

    /* jobs of fresh subjects: rolled back, nothing; committed, the rows' jobs
     * as the enqueue writes them; an existing key refused, not doubled */
    queue_enqueue_req fresh[2] = {
        {.ns = ns, .entity = "F1", .version = "1", .model = "m", .payload = "{\"k\":1}", .seq = 1},
        {.ns = ns, .entity = "F2", .version = "1", .model = "m", .payload = NULL, .seq = 1},
    };
    json_t *frows = NULL;
    CHECK(queue_neo4j_job_rows(s, fresh, 2, &frows, &err) == 0 && json_array_size(frows) == 2, "fresh rows");
    CHECK(run_stmt(pool, qo.name, frows, false, false, &qres, NULL, 0) == 0, "fresh rollback run");
    json_decref(qres);
    int64_t pending = count_state(s, ns, QUEUE_PENDING);
    CHECK(run_stmt(pool, qo.name, frows, false, true, &qres, NULL, 0) == 0, "fresh commit run");
    json_decref(qres);
    CHECK(count_state(s, ns, QUEUE_PENDING) == pending + 2, "two fresh pending jobs expected");
    for (size_t i = 0; i < 2; i++) {
        const json_t *fr = json_array_get(frows, i);
        queue_list_filter f = QUEUE_LIST_FILTER_INIT;
        f.ns = ns;
        f.entity = fresh[i].entity;
        queue_job *jv = NULL;
        size_t nj = 0;
        CHECK(queue_list(s, &f, &jv, &nj, NULL, &err) == 0 && nj == 1, "fresh job %zu: %zu listed", i, nj);
        const queue_job *j = nj == 1 ? &jv[0] : NULL;
        CHECK(j && j->id && !strcmp(j->id, json_string_value(json_object_get(fr, "id"))), "fresh job %zu id", i);
        CHECK(j && j->state == QUEUE_PENDING && j->attempts == 0 && j->seq == 1 && j->max_attempts > 0 &&
                  j->version && !strcmp(j->version, "1") && j->model && !strcmp(j->model, "m"),
              "fresh job %zu fields", i);
        CHECK(j && j->dedupe_key && !strcmp(j->dedupe_key, json_string_value(json_object_get(fr, "key"))),
              "fresh job %zu key", i);
        CHECK(j && (i == 0 ? (j->payload && !strcmp(j->payload, "{\"k\":1}")) : j->payload == NULL),
              "fresh job %zu payload", i);
        queue_jobs_free(jv, nj);
    }
    json_t *dup = NULL;
    char code[128];
    CHECK(queue_neo4j_job_rows(s, fresh, 1, &dup, &err) == 0, "rows of an existing key");
    CHECK(run_stmt(pool, qo.name, dup, false, true, &qres, code, sizeof code) != 0 &&
              strstr(code, "ConstraintValidationFailed") != NULL,
          "a fresh job of an existing key was not refused (%s)", code);
    CHECK(count_state(s, ns, QUEUE_PENDING) == pending + 2, "the refused statement left a job");
    json_decref(dup);
    json_decref(frows);

    /* a bad request is refused as queue_enqueue refuses it */
    queue_enqueue_req bad = req;
    bad.model = NULL;
    json_t *no = NULL;
    CHECK(queue_neo4j_job_rows(s, &bad, 1, &no, &err) == EG_EINVAL && no == NULL, "bad request accepted");

    /* the memory store cannot join a statement */
    queue_store *mem = NULL;
    CHECK(queue_mem_new(&mem, &qo, NULL, NULL, &err) == 0, "memory store");
    CHECK(!queue_neo4j_inline(mem), "the memory store claims to take jobs in a statement");
    CHECK(queue_neo4j_job_rows(mem, &req, 1, &no, &err) == EG_EINVAL, "the memory store made job rows");
    queue_store_free(mem);

    json_decref(rows);
    qfx_cleanup_queue(pool, qo.name);
    queue_store_free(s);
    bolt_pool_free(pool);
    printf("%s (%d failure(s))\n", g_fails ? "FAILED" : "PASSED", g_fails);
    return g_fails ? 1 : 0;
}
