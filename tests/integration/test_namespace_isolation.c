/*
 * test_namespace_isolation.c - every MCP tool, called from namespace A, sees
 * and changes nothing of namespace B (issue #14, finding 6).
 *
 * Two graph backends (mcp/backend_graph.c) share one Neo4j database, one
 * queue store (on a private queue name) and one vector index; they differ only
 * in their namespace, as two engram servers with different ENGRAM_NAMESPACE
 * would.  Namespace B holds an entity that A never names ("Only-B", with a
 * vector, so the vector index returns it first for the unit probe vector), a
 * name both have ("Shared"), a relation and a dead job.  Then every tool of
 * the registry is called from A (the table below must name each one: a new
 * tool without a case fails the test), twice: with B's names and job ids as
 * arguments, and with none.  After each call:
 *   - the result must not contain any marker of B (its namespace, entity
 *     ids, observation text, entity type, "Only-B", its dead job's id);
 *   - B's snapshot (read_graph, history of "Shared", its jobs with their
 *     states and attempts, the vector of "Only-B") must be unchanged.
 * And the three tools that leaked before the fix say what A has, not B:
 * queue_status counts no dead job, queue_retry_dead revives nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bolt/pool.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "graph/graph.h"
#include "mcp/backend_graph.h"
#include "mcp/tools.h"
#include "queue/job_store.h"
#include "queue/neo4j_store.h"
#include "support/queue_neo4j_fixture.h"
#include "support/testenv.h"

static bolt_pool *g_pool;
static queue_store *g_queue;
static graph_store *g_ga, *g_gb;
static mcp_backend g_a, g_b;
static char g_prefix[32], g_ns_a[48], g_ns_b[48];
static char g_dead_id[QUEUE_ID_MAX];
static char g_b_ids[2][64];
static size_t g_dims;

static json_t *call(const mcp_backend *be, const char *tool, const char *args_json)
{
    json_error_t je;
    json_t *args = json_loads(args_json, 0, &je);
    if (!args)
        fail_msg("%s: bad test arguments %s: %s", tool, args_json, je.text);
    json_t *res = NULL;
    eg_error err;
    eg_error_clear(&err);
    int rc = mcp_tools_call(be, tool, args, NULL, &res, &err);
    json_decref(args);
    if (rc != 0)
        fail_msg("%s %s: rc %d %s", tool, args_json, rc, err.message);
    return res;
}

static json_t *call_ok(const mcp_backend *be, const char *tool, const char *args_json)
{
    json_t *res = call(be, tool, args_json);
    if (json_is_true(json_object_get(res, "isError"))) {
        char *t = json_dumps(res, JSON_COMPACT);
        fail_msg("%s %s failed: %s", tool, args_json, t);
    }
    return res;
}

/* A tool's structuredContent without its timing (which differs call to call). */
static json_t *content_ok(const mcp_backend *be, const char *tool, const char *args_json)
{
    json_t *res = call_ok(be, tool, args_json);
    json_t *sc = json_incref(json_object_get(res, "structuredContent"));
    json_decref(res);
    json_object_del(sc, "timeTaken");
    return sc;
}

/* What B looks like, as text: any change of B shows as a different string. */
static char *snapshot_b(void)
{
    json_t *snap = json_object();
    json_object_set_new(snap, "graph", content_ok(&g_b, "read_graph", "{}"));
    json_object_set_new(snap, "history", content_ok(&g_b, "get_entity_history", "{\"entityName\":\"Shared\"}"));
    json_object_set_new(snap, "vector", content_ok(&g_b, "get_entity_embedding", "{\"entity_name\":\"Only-B\"}"));
    queue_list_filter f = QUEUE_LIST_FILTER_INIT;
    f.ns = g_ns_b;
    f.limit = 1000;
    queue_job *jobs = NULL;
    size_t n = 0;
    eg_error err;
    eg_error_clear(&err);
    assert_int_equal(queue_list(g_queue, &f, &jobs, &n, NULL, &err), 0);
    json_t *jl = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(jl, json_pack("{s:s, s:s, s:i, s:I}", "id", jobs[i].id, "state",
                                            queue_state_name(jobs[i].state), "attempts", jobs[i].attempts,
                                            "runAt", (json_int_t)jobs[i].run_at));
    queue_jobs_free(jobs, n);
    json_object_set_new(snap, "jobs", jl);
    char *s = json_dumps(snap, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(snap);
    return s;
}

/* ---- setup: B with an unnamed entity, a vector, a relation and a dead job ---- */

typedef struct write_arg {
    const char *id, *hash;
    const float *vec;
    graph_write_status st;
} write_arg;

static int write_fn(bolt_conn *c, void *p, eg_error *err)
{
    write_arg *a = p;
    return graph_write_embedding_tx(c, graph_store_opts(g_gb), g_ns_b, a->id, a->hash,
                                    graph_store_opts(g_gb)->embedding_model, a->vec, g_dims, &a->st, err);
}

static void embed_b(const char *name)
{
    eg_error err;
    eg_error_clear(&err);
    bolt_conn *c = NULL;
    assert_int_equal(bolt_pool_acquire(g_pool, &c, &err), 0);
    graph_embed_input in;
    assert_int_equal(graph_load_embed_input_tx(c, g_ns_b, NULL, name, &in, &err), 0);
    bolt_pool_release(g_pool, c);
    assert_true(in.found);
    float *vec = eg_calloc(g_dims, sizeof *vec);
    vec[0] = 1.0f; /* the probe vector diagnose_vector_search uses when A has none */
    write_arg a = {in.entity_id, in.hash, vec, GRAPH_EMBED_GONE};
    assert_int_equal(bolt_pool_execute_write(g_pool, NULL, NULL, write_fn, &a, &err), 0);
    assert_int_equal(a.st, GRAPH_EMBED_WRITTEN);
    eg_free(vec);
    graph_embed_input_clear(&in);
}

/* Lease every job of the private queue (only B's exist yet): the one of
 * Only-B dies (permanent failure), the others are given back. */
static void make_b_job_dead(void)
{
    eg_error err;
    eg_error_clear(&err);
    queue_lease_opts lo = {.owner = "isolation-test", .max_jobs = 100};
    queue_job *jobs = NULL;
    size_t n = 0;
    assert_int_equal(queue_lease(g_queue, &lo, &jobs, &n, &err), 0);
    assert_true(n >= 2);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(jobs[i].ns, g_ns_b);
        /* Only-B's entity job (its observation records' jobs carry "kind") */
        if (jobs[i].payload && strstr(jobs[i].payload, "\"Only-B\"") && !strstr(jobs[i].payload, "\"kind\"")) {
            queue_failure f = {jobs[i].id, jobs[i].lease_token, "b-secret-error", QUEUE_ERR_PERMANENT, 0};
            queue_outcome o;
            assert_int_equal(queue_fail(g_queue, "isolation-test", &f, 1, &o, &err), 0);
            assert_int_equal(o, QUEUE_OUT_DEAD);
            snprintf(g_dead_id, sizeof g_dead_id, "%s", jobs[i].id);
        } else {
            queue_lease_ref r = queue_job_ref(&jobs[i]);
            assert_int_equal(queue_release(g_queue, "isolation-test", &r, 1, 0, NULL, &err), 0);
        }
    }
    queue_jobs_free(jobs, n);
    assert_true(g_dead_id[0]);
}

static int setup(void **state)
{
    (void)state;
    bolt_config cfg = BOLT_CONFIG_INIT;
    int rc = eg_testenv_neo4j(&cfg);
    if (rc != 0)
        exit(rc);
    eg_error err;
    eg_error_clear(&err);
    if (bolt_pool_new(&g_pool, &cfg, NULL, &err) != 0 || bolt_pool_verify(g_pool, &err) != 0) {
        fprintf(stderr, "neo4j: %s\n", err.message);
        return -1;
    }
    char hex[9];
    eg_rand_hex(hex, (sizeof hex - 1) / 2);
    snprintf(g_prefix, sizeof g_prefix, "t%s", hex);
    snprintf(g_ns_a, sizeof g_ns_a, "%s-team-a", g_prefix);
    snprintf(g_ns_b, sizeof g_ns_b, "%s-team-b", g_prefix);
    queue_opts qo = QUEUE_OPTS_INIT;
    snprintf(qo.name, sizeof qo.name, "iso-%s", hex); /* private: lease sees only our jobs */
    if (queue_neo4j_new(&g_queue, g_pool, &qo, &err) != 0 || queue_schema_register(&err) != 0) {
        fprintf(stderr, "queue: %s\n", err.message);
        return -1;
    }
    graph_opts go = GRAPH_OPTS_INIT;
    go.embedding_model = "test-model";
    g_dims = go.vector_dimensions;
    go.ns = g_ns_a;
    if (graph_store_new(&g_ga, g_pool, g_queue, &go, &err) != 0 ||
        graph_schema_apply(g_ga, 120000, &err) != 0) {
        fprintf(stderr, "graph A: %s (%s)\n", err.message, err.neo4j_code);
        return -1;
    }
    go.ns = g_ns_b;
    if (graph_store_new(&g_gb, g_pool, g_queue, &go, &err) != 0) {
        fprintf(stderr, "graph B: %s\n", err.message);
        return -1;
    }
    mcp_graph_deps da = {.graph = g_ga, .queue = g_queue}, db = {.graph = g_gb, .queue = g_queue};
    if (mcp_tools_init(&err) != 0 || mcp_backend_graph_new(&g_a, &da, &err) != 0 ||
        mcp_backend_graph_new(&g_b, &db, &err) != 0) {
        fprintf(stderr, "backends: %s\n", err.message);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mcp_backend_graph_free(&g_a);
    mcp_backend_graph_free(&g_b);
    if (g_pool && g_prefix[0])
        qfx_cleanup_namespaces(g_pool, g_prefix);
    graph_store_free(g_ga);
    graph_store_free(g_gb);
    queue_store_free(g_queue);
    bolt_pool_free(g_pool);
    return 0;
}

/* ---- the calls ---- */

/* Arguments per tool: first with B's names and ids ("%D" = B's dead job id),
 * then with none of B's.  Every registered tool must have a row. */
typedef struct tool_case {
    const char *tool;
    const char *with_b;
    const char *plain;
} tool_case;

static const tool_case g_cases[] = {
    {"read_graph", "{}", "{\"limit\":5}"},
    {"search_nodes", "{\"query\":\"b-secret\"}", "{\"query\":\"\"}"},
    {"open_nodes", "{\"names\":[\"Shared\",\"Only-B\"]}", "{\"names\":[\"Alpha\"]}"},
    {"semantic_search", "{\"query\":\"b-secret-obs\"}", "{\"query\":\"a-obs\"}"},
    {"hybrid_search", "{\"query\":\"b-secret-obs\"}", "{\"query\":\"a-obs\"}"},
    {"get_entity_embedding", "{\"entity_name\":\"Only-B\"}", "{\"entity_name\":\"Alpha\"}"},
    {"get_entity_history", "{\"entityName\":\"Only-B\"}", "{\"entityName\":\"Shared\"}"},
    {"get_relation", "{\"from\":\"Shared\",\"to\":\"Only-B\",\"relationType\":\"knows\"}",
     "{\"from\":\"Alpha\",\"to\":\"Shared\",\"relationType\":\"knows\"}"},
    {"get_relation_history", "{\"from\":\"Shared\",\"to\":\"Only-B\",\"relationType\":\"knows\"}",
     "{\"from\":\"Alpha\",\"to\":\"Shared\",\"relationType\":\"knows\"}"},
    {"get_graph_at_time", "{\"timestamp\":99999999999999}", "{\"timestamp\":1}"},
    {"get_decayed_graph", "{}", "{\"decay_factor\":1}"},
    {"debug_embedding_config", "{}", "{}"},
    {"diagnose_vector_search", "{}", "{}"},
    {"queue_status", "{}", "{}"},
    {"queue_list_jobs", "{\"status\":\"dead\"}", "{}"},
    {"queue_retry_dead", "{\"jobIds\":[\"%D\"]}", "{}"},
    {"force_generate_embedding", "{\"entity_name\":\"Only-B\"}", "{\"limit\":1000}"},
    {"create_entities", "{\"entities\":[{\"name\":\"Shared\",\"entityType\":\"a-type\",\"observations\":[\"a-new\"]}]}",
     "{\"entities\":[{\"name\":\"Beta\",\"entityType\":\"a-type\",\"observations\":[\"a-obs\"]}]}"},
    {"add_observations", "{\"observations\":[{\"entityName\":\"Only-B\",\"contents\":[\"x\"]},"
                         "{\"entityName\":\"Shared\",\"contents\":[\"a-more\"]}]}",
     "{\"observations\":[{\"entityName\":\"Alpha\",\"contents\":[\"a-more\"]}]}"},
    {"create_relations", "{\"relations\":[{\"from\":\"Shared\",\"to\":\"Only-B\",\"relationType\":\"knows\"}]}",
     "{\"relations\":[{\"from\":\"Alpha\",\"to\":\"Beta\",\"relationType\":\"knows\"}]}"},
    {"update_relation", "{\"relation\":{\"from\":\"Shared\",\"to\":\"Only-B\",\"relationType\":\"knows\","
                        "\"strength\":0.1}}",
     "{\"relation\":{\"from\":\"Alpha\",\"to\":\"Beta\",\"relationType\":\"knows\",\"strength\":0.2}}"},
    {"delete_observations", "{\"deletions\":[{\"entityName\":\"Only-B\",\"observations\":[\"b-secret-obs\"]},"
                            "{\"entityName\":\"Shared\",\"observations\":[\"b-secret-obs\"]}]}",
     "{\"deletions\":[{\"entityName\":\"Alpha\",\"observations\":[\"a-more\"]}]}"},
    {"delete_relations", "{\"relations\":[{\"from\":\"Shared\",\"to\":\"Only-B\",\"relationType\":\"knows\"}]}",
     "{\"relations\":[{\"from\":\"Alpha\",\"to\":\"Beta\",\"relationType\":\"knows\"}]}"},
    {"delete_entities", "{\"entityNames\":[\"Only-B\",\"Shared\"]}", "{\"entityNames\":[\"Beta\"]}"},
};

#define N_CASES (sizeof g_cases / sizeof g_cases[0])

static const tool_case *case_of(const char *tool)
{
    for (size_t i = 0; i < N_CASES; i++)
        if (strcmp(g_cases[i].tool, tool) == 0)
            return &g_cases[i];
    return NULL;
}

/* Replace "%D" by B's dead job id. */
static char *expand(const char *args)
{
    const char *d = strstr(args, "%D");
    size_t n = strlen(args) + sizeof g_dead_id;
    char *out = eg_malloc(n);
    if (!d)
        snprintf(out, n, "%s", args);
    else
        snprintf(out, n, "%.*s%s%s", (int)(d - args), args, g_dead_id, d + 2);
    return out;
}

static void assert_no_b(const char *tool, const char *args, const json_t *res, bool named_dead_id)
{
    char *text = json_dumps(res, JSON_COMPACT);
    assert_non_null(text);
    const char *markers[] = {g_ns_b, "b-secret", "b-type", "Only-B", g_b_ids[0], g_b_ids[1],
                             named_dead_id ? NULL : g_dead_id};
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++) {
        if (markers[i] && markers[i][0] && strstr(text, markers[i])) {
            /* Only-B may be echoed back when A itself named it (notFound, skipped...). */
            if (strcmp(markers[i], "Only-B") == 0 && strstr(args, "Only-B"))
                continue;
            fail_msg("%s from namespace A shows B's '%s': %s", tool, markers[i], text);
        }
    }
    free(text);
}

static void test_every_tool_stays_in_its_namespace(void **state)
{
    (void)state;
    /* Every tool of the registry has a case. */
    for (size_t i = 0; i < mcp_tools_count(); i++)
        if (!case_of(mcp_tools_at(i)->name))
            fail_msg("tool %s has no case in test_namespace_isolation.c", mcp_tools_at(i)->name);

    /* B: Shared, Only-B (vector e1), Shared -knows-> Only-B, Only-B's job dead. */
    json_t *r = call_ok(&g_b, "create_entities",
                        "{\"entities\":[{\"name\":\"Shared\",\"entityType\":\"b-type\",\"observations\":"
                        "[\"b-secret-obs\"]},{\"name\":\"Only-B\",\"entityType\":\"b-type\",\"observations\":"
                        "[\"b-secret-obs\"]}]}");
    json_t *ents = json_object_get(json_object_get(r, "structuredContent"), "entities");
    assert_int_equal(json_array_size(ents), 2);
    for (size_t i = 0; i < 2; i++)
        snprintf(g_b_ids[i], sizeof g_b_ids[i], "%s",
                 json_string_value(json_object_get(json_array_get(ents, i), "id")));
    json_decref(r);
    json_decref(call_ok(&g_b, "create_relations",
                        "{\"relations\":[{\"from\":\"Shared\",\"to\":\"Only-B\",\"relationType\":\"knows\"}]}"));
    make_b_job_dead();
    embed_b("Only-B");
    /* The vector index is eventually consistent: wait until B's own probe finds Only-B. */
    bool indexed = false;
    for (int i = 0; i < 100 && !indexed; i++) {
        r = call_ok(&g_b, "diagnose_vector_search", "{}");
        char *t = json_dumps(json_object_get(json_object_get(json_object_get(r, "structuredContent"), "probe"),
                                             "results"),
                             JSON_COMPACT);
        indexed = t && strstr(t, "Only-B");
        free(t);
        json_decref(r);
        if (!indexed)
            eg_sleep_ms(100);
    }
    assert_true(indexed);
    /* A: Alpha, Shared (A's own). */
    json_decref(call_ok(&g_a, "create_entities",
                        "{\"entities\":[{\"name\":\"Alpha\",\"entityType\":\"a-type\",\"observations\":[\"a-obs\"]},"
                        "{\"name\":\"Shared\",\"entityType\":\"a-type\",\"observations\":[\"a-obs\"]}]}"));

    char *before = snapshot_b();
    /* Read-only tools first, then the writes, deletes last: the table's order. */
    for (size_t i = 0; i < N_CASES; i++) {
        for (int pass = 0; pass < 2; pass++) {
            const char *tmpl = pass == 0 ? g_cases[i].with_b : g_cases[i].plain;
            char *args = expand(tmpl);
            json_t *res = call(&g_a, g_cases[i].tool, args);
            assert_no_b(g_cases[i].tool, args, res, strstr(tmpl, "%D") != NULL);
            json_t *sc = json_object_get(res, "structuredContent");
            if (strcmp(g_cases[i].tool, "queue_status") == 0) {
                assert_non_null(sc);
                if (json_integer_value(json_object_get(json_object_get(sc, "counts"), "dead")) != 0 ||
                    json_array_size(json_object_get(sc, "recentDead")) != 0)
                    fail_msg("queue_status from A lists dead jobs: %s", json_dumps(sc, JSON_COMPACT));
            }
            if (strcmp(g_cases[i].tool, "queue_retry_dead") == 0) {
                assert_non_null(sc);
                assert_int_equal(json_integer_value(json_object_get(sc, "retried")), 0);
            }
            if (strcmp(g_cases[i].tool, "diagnose_vector_search") == 0) {
                json_t *probe = json_object_get(sc, "probe");
                assert_true(json_is_true(json_object_get(probe, "ok")));
            }
            json_decref(res);
            char *after = snapshot_b();
            if (strcmp(before, after) != 0)
                fail_msg("%s (%s) from namespace A changed namespace B:\nbefore %s\nafter  %s",
                         g_cases[i].tool, args, before, after);
            free(after);
            eg_free(args);
        }
    }
    free(before);

    /* B still sees its own: the dead job is B's to retry. */
    r = call_ok(&g_b, "queue_status", "{}");
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(r, "structuredContent"), "counts"), "dead")),
                     1);
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_tool_stays_in_its_namespace),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
