/*
 * test_graph_validate.c - input validation/normalisation, configuration
 * from the environment, schema statements.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "graph/graph.h"
#include "graph/graph_int.h"

static json_t *parse(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, JSON_ALLOW_NUL, &e);
    if (j == NULL)
        fail_msg("bad test JSON: %s", e.text);
    return j;
}

static void expect_invalid(const char *input, const char *needle)
{
    json_t *in = parse(input), *out = NULL;
    eg_error err;
    eg_error_clear(&err);
    int rc = graph_validate_entities(in, &out, &err);
    assert_int_equal(rc, EG_EINVAL);
    assert_null(out);
    if (strstr(err.message, needle) == NULL)
        fail_msg("message '%s' lacks '%s'", err.message, needle);
    json_decref(in);
}

static void test_graph_validate__entities_ok_and_normalised(void **state)
{
    (void)state;
    json_t *in = parse("[{\"name\":\"A\",\"entityType\":\"t\",\"observations\":[\"x\",\"y\",\"x\"],"
                       "\"id\":\"ignored\",\"changedBy\":\"me\"},"
                       "{\"name\":\"B\",\"entityType\":\"t\"},"
                       "{\"name\":\"C\",\"entityType\":\"t\",\"observations\":\"[\\\"p\\\",\\\"q\\\"]\"},"
                       "{\"name\":\"D\",\"entityType\":\"t\",\"observations\":\"single\"}]");
    json_t *out = NULL;
    assert_int_equal(graph_validate_entities(in, &out, NULL), 0);
    assert_int_equal(json_array_size(out), 4);
    json_t *a = json_array_get(out, 0);
    assert_int_equal(json_array_size(json_object_get(a, "observations")), 2); /* deduped */
    assert_null(json_object_get(a, "id"));                                    /* dropped */
    assert_string_equal(json_string_value(json_object_get(a, "changedBy")), "me");
    assert_int_equal(json_array_size(json_object_get(json_array_get(out, 1), "observations")), 0);
    json_t *c = json_object_get(json_array_get(out, 2), "observations");
    assert_int_equal(json_array_size(c), 2);
    assert_string_equal(json_string_value(json_array_get(c, 1)), "q");
    json_t *d = json_object_get(json_array_get(out, 3), "observations");
    assert_int_equal(json_array_size(d), 1);
    assert_string_equal(json_string_value(json_array_get(d, 0)), "single");
    json_decref(in);
    json_decref(out);
}

static void test_graph_validate__entities_rejected(void **state)
{
    (void)state;
    expect_invalid("{}", "entities must be an array");
    expect_invalid("[1]", "entities[0] must be an object");
    expect_invalid("[{\"entityType\":\"t\"}]", "entities[0].name");
    expect_invalid("[{\"name\":\"\",\"entityType\":\"t\"}]", "must not be empty");
    expect_invalid("[{\"name\":\"a\\u0000b\",\"entityType\":\"t\"}]", "NUL");
    expect_invalid("[{\"name\":\"a\",\"entityType\":5}]", "entities[0].entityType");
    expect_invalid("[{\"name\":\"a\",\"entityType\":\"t\"},{\"name\":\"b\",\"entityType\":\"t\","
                   "\"observations\":[\"ok\",3]}]",
                   "entities[1].observations[1]");
    expect_invalid("[{\"name\":\"a\",\"entityType\":\"t\",\"observations\":{}}]", "observations");
    expect_invalid("[{\"name\":\"a\",\"entityType\":\"t\",\"changedBy\":7}]", "changedBy");
}

static void test_graph_validate__caps(void **state)
{
    (void)state;
    /* Name longer than the cap. */
    char *big = eg_malloc(GRAPH_MAX_NAME_BYTES + 2);
    memset(big, 'n', GRAPH_MAX_NAME_BYTES + 1);
    big[GRAPH_MAX_NAME_BYTES + 1] = '\0';
    json_t *in = json_pack("[{ssss}]", "name", big, "entityType", "t");
    json_t *out = NULL;
    eg_error err;
    eg_error_clear(&err);
    assert_int_equal(graph_validate_entities(in, &out, &err), EG_EINVAL);
    assert_non_null(strstr(err.message, "too long"));
    json_decref(in);
    eg_free(big);
    /* Too many items per call. */
    in = json_array();
    for (unsigned i = 0; i <= GRAPH_MAX_BATCH; i++)
        json_array_append_new(in, json_pack("{ssss}", "name", "a", "entityType", "t"));
    assert_int_equal(graph_validate_entities(in, &out, &err), EG_ETOOBIG);
    json_decref(in);
}

static void test_graph_validate__relations(void **state)
{
    (void)state;
    json_t *in = parse("[{\"from\":\"a\",\"to\":\"b\",\"relationType\":\"r\",\"strength\":0,"
                       "\"confidence\":1,\"metadata\":{\"k\":[1]}},"
                       "{\"from\":\"a\",\"to\":\"b\",\"relationType\":\"r\",\"metadata\":\"{\\\"x\\\":1}\"}]");
    json_t *out = NULL;
    assert_int_equal(graph_validate_relations(in, false, &out, NULL), 0);
    json_t *r0 = json_array_get(out, 0);
    assert_float_equal(json_number_value(json_object_get(r0, "strength")), 0.0, 0); /* 0 kept */
    assert_true(json_is_object(json_object_get(r0, "metadata")));
    assert_true(json_is_object(json_object_get(json_array_get(out, 1), "metadata"))); /* decoded */
    json_decref(out);
    /* require_fields_only drops the rest. */
    assert_int_equal(graph_validate_relations(in, true, &out, NULL), 0);
    assert_null(json_object_get(json_array_get(out, 0), "strength"));
    json_decref(out);
    json_decref(in);

    static const char *const bad[] = {
        "[{\"from\":\"a\",\"to\":\"b\"}]",
        "[{\"from\":\"a\",\"to\":\"b\",\"relationType\":\"r\",\"strength\":1.5}]",
        "[{\"from\":\"a\",\"to\":\"b\",\"relationType\":\"r\",\"confidence\":-0.1}]",
        "[{\"from\":\"a\",\"to\":\"b\",\"relationType\":\"r\",\"confidence\":\"high\"}]",
        "[{\"from\":\"a\",\"to\":\"b\",\"relationType\":\"r\",\"metadata\":[1]}]",
        "[{\"from\":\"a\",\"to\":\"b\",\"relationType\":\"r\",\"metadata\":\"not json\"}]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        in = parse(bad[i]);
        eg_error err;
        eg_error_clear(&err);
        assert_int_equal(graph_validate_relations(in, false, &out, &err), EG_EINVAL);
        assert_non_null(strstr(err.message, "relations[0]"));
        json_decref(in);
    }
    /* A single object is accepted (update_relation). */
    in = parse("{\"from\":\"a\",\"to\":\"b\",\"relationType\":\"r\"}");
    assert_int_equal(graph_validate_relations(in, false, &out, NULL), 0);
    assert_int_equal(json_array_size(out), 1);
    json_decref(out);
    json_decref(in);
}

static void test_graph_validate__observations(void **state)
{
    (void)state;
    json_t *in = parse("[{\"entityName\":\"a\",\"contents\":[\"x\",\"x\",\"y\"],\"strength\":0.9}]");
    json_t *out = NULL;
    assert_int_equal(graph_validate_observations(in, "contents", &out, NULL), 0);
    assert_int_equal(json_array_size(json_object_get(json_array_get(out, 0), "contents")), 2);
    json_decref(out);
    eg_error err;
    eg_error_clear(&err);
    /* The delete shape needs "observations", not "contents". */
    assert_int_equal(graph_validate_observations(in, "observations", &out, &err), EG_EINVAL);
    assert_non_null(strstr(err.message, "deletions[0].observations"));
    json_decref(in);
    in = parse("[{\"contents\":[\"x\"]}]");
    assert_int_equal(graph_validate_observations(in, "contents", &out, &err), EG_EINVAL);
    assert_non_null(strstr(err.message, "observations[0].entityName"));
    json_decref(in);
}

static void test_graph_validate__opts_from_env(void **state)
{
    (void)state;
    graph_opts o;
    unsetenv("NEO4J_VECTOR_INDEX");
    unsetenv("NEO4J_VECTOR_DIMENSIONS");
    unsetenv("NEO4J_SIMILARITY_FUNCTION");
    unsetenv("ENGRAM_NAMESPACE");
    unsetenv("OPENAI_EMBEDDING_MODEL");
    assert_int_equal(graph_opts_from_env(&o, NULL), 0);
    assert_string_equal(o.vector_index, "entity_embeddings");
    assert_int_equal(o.vector_dimensions, 1536);
    assert_int_equal(o.similarity, GRAPH_SIM_COSINE);
    assert_string_equal(o.ns, "default");
    assert_string_equal(o.embedding_model, "text-embedding-3-small");

    setenv("NEO4J_VECTOR_INDEX", "my_idx", 1);
    setenv("NEO4J_VECTOR_DIMENSIONS", "3072", 1);
    setenv("NEO4J_SIMILARITY_FUNCTION", "euclidean", 1);
    setenv("ENGRAM_NAMESPACE", "proj-a", 1);
    setenv("OPENAI_EMBEDDING_MODEL", "text-embedding-3-large", 1);
    assert_int_equal(graph_opts_from_env(&o, NULL), 0);
    assert_string_equal(o.vector_index, "my_idx");
    assert_int_equal(o.vector_dimensions, 3072);
    assert_int_equal(o.similarity, GRAPH_SIM_EUCLIDEAN);
    assert_string_equal(o.ns, "proj-a");
    assert_string_equal(o.embedding_model, "text-embedding-3-large");

    eg_error err;
    eg_error_clear(&err);
    setenv("NEO4J_VECTOR_INDEX", "bad name; DROP", 1);
    assert_int_equal(graph_opts_from_env(&o, &err), EG_EINVAL);
    setenv("NEO4J_VECTOR_INDEX", "ok", 1);
    setenv("NEO4J_VECTOR_DIMENSIONS", "-5", 1);
    assert_int_equal(graph_opts_from_env(&o, &err), EG_EINVAL);
    assert_non_null(strstr(err.message, "NEO4J_VECTOR_DIMENSIONS"));
    setenv("NEO4J_VECTOR_DIMENSIONS", "12abc", 1);
    assert_int_equal(graph_opts_from_env(&o, &err), EG_EINVAL);
    setenv("NEO4J_VECTOR_DIMENSIONS", "8", 1);
    setenv("NEO4J_SIMILARITY_FUNCTION", "dot", 1);
    assert_int_equal(graph_opts_from_env(&o, &err), EG_EINVAL);
    unsetenv("NEO4J_SIMILARITY_FUNCTION");
    setenv("ENGRAM_SEARCH_SUBSTRING", "0", 1);
    assert_int_equal(graph_opts_from_env(&o, &err), 0);
    assert_false(o.substring_search);
    setenv("ENGRAM_SEARCH_SUBSTRING", "maybe", 1);
    assert_int_equal(graph_opts_from_env(&o, &err), EG_EINVAL);
    unsetenv("ENGRAM_SEARCH_SUBSTRING");
    assert_int_equal(graph_opts_from_env(&o, &err), 0);
    assert_true(o.substring_search);
    assert_int_equal(o.tx_timeout_ms, 60000); /* every graph transaction's tx_timeout */
    setenv("ENGRAM_GRAPH_TX_TIMEOUT_MS", "0", 1); /* the server's own */
    assert_int_equal(graph_opts_from_env(&o, &err), 0);
    assert_int_equal(o.tx_timeout_ms, 0);
    setenv("ENGRAM_GRAPH_TX_TIMEOUT_MS", "2500", 1);
    assert_int_equal(graph_opts_from_env(&o, &err), 0);
    assert_int_equal(o.tx_timeout_ms, 2500);
    setenv("ENGRAM_GRAPH_TX_TIMEOUT_MS", "999", 1); /* below the server's check interval's grain */
    assert_int_equal(graph_opts_from_env(&o, &err), EG_EINVAL);
    assert_non_null(strstr(err.message, "ENGRAM_GRAPH_TX_TIMEOUT_MS"));
    setenv("ENGRAM_GRAPH_TX_TIMEOUT_MS", "-1", 1);
    assert_int_equal(graph_opts_from_env(&o, &err), EG_EINVAL);
    unsetenv("ENGRAM_GRAPH_TX_TIMEOUT_MS");
    assert_int_equal(graph_opts_from_env(&o, &err), 0);
    assert_int_equal(o.index_grace_ms, 60000); /* the indexer's poll leaves newer stale entities alone */
    setenv("ENGRAM_SEARCH_INDEX_GRACE_MS", "0", 1); /* the poll takes every stale entity */
    assert_int_equal(graph_opts_from_env(&o, &err), 0);
    assert_int_equal(o.index_grace_ms, 0);
    setenv("ENGRAM_SEARCH_INDEX_GRACE_MS", "-5", 1);
    assert_int_equal(graph_opts_from_env(&o, &err), EG_EINVAL);
    assert_non_null(strstr(err.message, "ENGRAM_SEARCH_INDEX_GRACE_MS"));
    unsetenv("ENGRAM_SEARCH_INDEX_GRACE_MS");
    unsetenv("NEO4J_VECTOR_INDEX");
    unsetenv("NEO4J_VECTOR_DIMENSIONS");
    unsetenv("NEO4J_SIMILARITY_FUNCTION");
    unsetenv("ENGRAM_NAMESPACE");
    unsetenv("OPENAI_EMBEDDING_MODEL");
}

static void test_graph_validate__schema_statements(void **state)
{
    (void)state;
    graph_opts o = GRAPH_OPTS_INIT;
    o.vector_index = "vec_idx";
    o.vector_dimensions = 768;
    o.similarity = GRAPH_SIM_EUCLIDEAN;
    char **v = NULL;
    size_t n = 0;
    assert_int_equal(graph_schema_statements(&o, 4, &v, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_non_null(strstr(v[0], "CREATE VECTOR INDEX vec_idx IF NOT EXISTS"));
    assert_non_null(strstr(v[0], "`vector.dimensions`: 768"));
    assert_non_null(strstr(v[0], "'euclidean'"));
    graph_strv_free(v, n);
    assert_int_equal(graph_schema_statements(&o, 1, &v, &n, NULL), 0);
    assert_non_null(strstr(v[0], "(e.namespace, e.name) IS UNIQUE"));
    graph_strv_free(v, n);
    assert_int_equal(graph_schema_statements(&o, 3, &v, &n, NULL), 0);
    assert_non_null(strstr(v[0], "e.observations"));
    graph_strv_free(v, n);
    /* The term search's index: the English analyzer, still eventually consistent. */
    assert_int_equal(graph_schema_statements(&o, 7, &v, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_non_null(strstr(v[0], "DROP INDEX entity_fulltext IF EXISTS"));
    assert_non_null(strstr(v[1], "`fulltext.analyzer`: 'english'"));
    assert_non_null(strstr(v[1], "`fulltext.eventually_consistent`: true"));
    graph_strv_free(v, n);
    for (int ver = 1; ver <= GRAPH_SCHEMA_VERSIONS; ver++) {
        assert_int_equal(graph_schema_statements(&o, ver, &v, &n, NULL), 0);
        for (size_t i = 0; i < n; i++)
            assert_true(strstr(v[i], "IF NOT EXISTS") || strstr(v[i], "IF EXISTS")); /* idempotent */
        graph_strv_free(v, n);
    }
    assert_int_equal(graph_schema_statements(&o, 99, &v, &n, NULL), EG_EINVAL);
    o.vector_index = "x) DROP INDEX y //";
    assert_int_equal(graph_schema_statements(&o, 4, &v, &n, NULL), EG_EINVAL);
}

/* CPU seconds used by this process (load on the machine does not count). */
static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An array of n observations "<tag> fact number i". */
static json_t *facts(const char *tag, size_t from, size_t n)
{
    json_t *a = json_array();
    for (size_t i = from; i < from + n; i++) {
        char b[64];
        snprintf(b, sizeof b, "%s fact number %zu", tag, i);
        json_array_append_new(a, json_string(b));
    }
    return a;
}

/*
 * Issue #14 finding 4: de-duplicating 10,000 observations compared each with
 * every kept one (5e7 comparisons per entity, 0.23 s).  Ten entities at the
 * cap must validate in well under a second of CPU, sanitizers included (a
 * hash set does it in a few ms; the quadratic loop took seconds).
 */
static void test_graph_validate__dedupe_is_not_quadratic(void **state)
{
    (void)state;
    json_t *in = json_array();
    for (int e = 0; e < 10; e++) {
        char name[16];
        snprintf(name, sizeof name, "E%d", e);
        json_t *obs = facts("observed", 0, GRAPH_MAX_OBSERVATIONS - 1);
        json_array_append_new(obs, json_string("observed fact number 7")); /* one duplicate */
        json_array_append_new(in, json_pack("{s:s, s:s, s:o}", "name", name, "entityType", "t", "observations", obs));
    }
    json_t *out = NULL;
    double t0 = cpu_seconds();
    assert_int_equal(graph_validate_entities(in, &out, NULL), 0);
    double spent = cpu_seconds() - t0;
    printf("validate: 10 entities x %u observations in %.3f s CPU\n", GRAPH_MAX_OBSERVATIONS, spent);
    assert_int_equal(json_array_size(json_object_get(json_array_get(out, 9), "observations")),
                     GRAPH_MAX_OBSERVATIONS - 1);
    assert_true(spent < 1.0);
    json_decref(in);
    json_decref(out);
}

/* Merging into / removing from a stored list keeps order, adds each new
 * string once, and is linear too. */
static void test_graph_validate__obs_apply(void **state)
{
    (void)state;
    json_t *cur = facts("x", 0, 10000), *in = facts("x", 5000, 10000), *next = NULL, *delta = NULL;
    json_array_append_new(in, json_string("x fact number 14999")); /* repeated within the input */
    double t0 = cpu_seconds();
    assert_int_equal(graph__obs_apply(cur, in, false, &next, &delta, NULL), 0);
    double spent = cpu_seconds() - t0;
    assert_int_equal(json_array_size(next), 15000);
    assert_int_equal(json_array_size(delta), 5000);
    assert_string_equal(json_string_value(json_array_get(next, 0)), "x fact number 0");
    assert_string_equal(json_string_value(json_array_get(next, 10000)), "x fact number 10000");
    assert_string_equal(json_string_value(json_array_get(delta, 4999)), "x fact number 14999");
    assert_true(spent < 1.0);
    json_decref(delta);
    json_t *removed = NULL, *left = NULL;
    assert_int_equal(graph__obs_apply(next, in, true, &left, &removed, NULL), 0);
    assert_int_equal(json_array_size(left), 5000);
    assert_int_equal(json_array_size(removed), 10000);
    assert_string_equal(json_string_value(json_array_get(left, 4999)), "x fact number 4999");
    json_decref(left);
    json_decref(removed);
    json_decref(next);
    json_decref(cur);
    json_decref(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_graph_validate__entities_ok_and_normalised),
        cmocka_unit_test(test_graph_validate__entities_rejected),
        cmocka_unit_test(test_graph_validate__caps),
        cmocka_unit_test(test_graph_validate__dedupe_is_not_quadratic),
        cmocka_unit_test(test_graph_validate__obs_apply),
        cmocka_unit_test(test_graph_validate__relations),
        cmocka_unit_test(test_graph_validate__observations),
        cmocka_unit_test(test_graph_validate__opts_from_env),
        cmocka_unit_test(test_graph_validate__schema_statements),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
