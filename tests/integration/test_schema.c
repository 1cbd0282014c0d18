/*
 * test_schema.c - the schema manager against a real Neo4j: idempotent,
 * recorded, and safe when several appliers start at once.
 *
 * Uses a test-only module ("schema_test_<random>") whose statements create
 * an index on a test label, so it never disturbs the shared database's real
 * schema; the module's records and index are dropped afterwards.
 */
#include "core/alloc.h"
#include "core/clock.h"
#include "queue/neo4j_store.h"
#include "schema/schema.h"
#include "support/testenv.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static bolt_pool *g_pool;
static char g_mod[40];
static char g_label[48];
static char g_idx[64];

static int build(const void *ctx, char ***out, size_t *n, eg_error *err)
{
    (void)ctx;
    char **v = eg_calloc(1, sizeof *v);
    char buf[256];
    /* identifiers are ours (hex suffix), validated by construction */
    snprintf(buf, sizeof buf, "CREATE INDEX %s IF NOT EXISTS FOR (n:%s) ON (n.k)", g_idx, g_label);
    if (!v || !(v[0] = eg_strdup(buf))) {
        eg_free(v);
        return eg_error_set(err, EG_ENOMEM, EG_CLASS_NONE, "oom");
    }
    *out = v;
    *n = 1;
    return 0;
}

static const char *const v2_stmts[] = {"RETURN 1", NULL};
static schema_migration g_migs[2];
static schema_module g_module;

static int count_records(void)
{
    bolt_conn *c = NULL;
    eg_error err = {0};
    assert_int_equal(bolt_pool_acquire(g_pool, &c, &err), 0);
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "m", g_mod);
    json_t *rows = NULL;
    assert_int_equal(bolt_conn_query_json(c, "MATCH (m:SchemaMigration {module: $m}) RETURN count(m) AS n",
                                          p, NULL, &rows, &err),
                     0);
    int n = (int)json_integer_value(json_object_get(json_array_get(rows, 0), "n"));
    json_decref(rows);
    bolt_params_free(p);
    bolt_pool_release(g_pool, c);
    return n;
}

static void *applier(void *arg)
{
    pthread_barrier_t *bar = arg;
    pthread_barrier_wait(bar);
    eg_error err = {0};
    intptr_t rc = schema_apply(g_pool, NULL, NULL, &err);
    if (rc)
        fprintf(stderr, "applier: %s %s\n", err.message, err.neo4j_code);
    return (void *)rc;
}

static void test_schema__concurrent_apply(void **state)
{
    (void)state;
    enum { T = 6 };
    pthread_t th[T];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, T);
    for (int i = 0; i < T; i++)
        pthread_create(&th[i], NULL, applier, &bar);
    int failures = 0;
    for (int i = 0; i < T; i++) {
        void *rc = NULL;
        pthread_join(th[i], &rc);
        failures += rc != NULL;
    }
    pthread_barrier_destroy(&bar);
    assert_int_equal(failures, 0);
    assert_int_equal(count_records(), 2);
    printf("stress: schema_concurrent_apply appliers=%d duplicates=%d lost=0\n", T, count_records() - 2);
}

static void test_schema__idempotent_and_status(void **state)
{
    (void)state;
    schema_entry *e = NULL;
    size_t n = 0;
    eg_error err = {0};
    assert_int_equal(schema_apply(g_pool, &e, &n, &err), 0);
    int mine = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(e[i].module, g_mod) == 0) {
            mine++;
            assert_false(e[i].applied_now);
            assert_int_equal(e[i].state, SCHEMA_APPLIED);
            assert_true(e[i].applied_at > 0);
        }
        if (strcmp(e[i].module, "queue") == 0)
            assert_int_equal(e[i].state, SCHEMA_APPLIED);
    }
    assert_int_equal(mine, 2);
    eg_free(e);
    /* a changed statement shows up as "changed" in status, never re-applied */
    static const char *const changed[] = {"RETURN 2", NULL};
    g_migs[1].statements = changed;
    assert_int_equal(schema_status(g_pool, &e, &n, &err), 0);
    bool saw_changed = false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(e[i].module, g_mod) == 0 && e[i].version == 2)
            saw_changed = e[i].state == SCHEMA_CHANGED;
    assert_true(saw_changed);
    eg_free(e);
    g_migs[1].statements = v2_stmts;
    /* the index exists */
    bolt_conn *c = NULL;
    assert_int_equal(bolt_pool_acquire(g_pool, &c, &err), 0);
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "name", g_idx);
    json_t *rows = NULL;
    assert_int_equal(bolt_conn_query_json(c, "SHOW INDEXES YIELD name WHERE name = $name RETURN name", p,
                                          NULL, &rows, &err),
                     0);
    assert_int_equal(json_array_size(rows), 1);
    json_decref(rows);
    bolt_params_free(p);
    bolt_pool_release(g_pool, c);
}

static void cleanup(void)
{
    bolt_conn *c = NULL;
    eg_error err = {0};
    if (bolt_pool_acquire(g_pool, &c, &err))
        return;
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "m", g_mod);
    bolt_conn_exec(c, "MATCH (m:SchemaMigration {module: $m}) DELETE m", p, NULL, NULL, &err);
    char q[128];
    snprintf(q, sizeof q, "DROP INDEX %s IF EXISTS", g_idx);
    bolt_conn_exec(c, q, NULL, NULL, NULL, &err);
    bolt_params_free(p);
    bolt_pool_release(g_pool, c);
}

int main(void)
{
    bolt_config cfg;
    int rc = eg_testenv_neo4j(&cfg);
    if (rc)
        return rc;
    bolt_pool_opts po = BOLT_POOL_OPTS_INIT;
    po.max_size = 16;
    eg_error err = {0};
    if (bolt_pool_new(&g_pool, &cfg, &po, &err) || bolt_pool_verify(g_pool, &err)) {
        fprintf(stderr, "FAIL: %s\n", err.message);
        return 1;
    }
    char hex[9];
    eg_rand_hex(hex, 4);
    snprintf(g_mod, sizeof g_mod, "schema_test_%s", hex);
    snprintf(g_label, sizeof g_label, "SchemaTest_%s", hex);
    snprintf(g_idx, sizeof g_idx, "schema_test_idx_%s", hex);
    g_migs[0] = (schema_migration){.version = 1, .description = "test index", .build = build};
    g_migs[1] = (schema_migration){.version = 2, .description = "no-op", .statements = v2_stmts};
    g_module = (schema_module){.name = g_mod, .migrations = g_migs, .n = 2};
    if (queue_schema_register(&err) || schema_register(&g_module, &err)) {
        fprintf(stderr, "FAIL: register: %s\n", err.message);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema__concurrent_apply),
        cmocka_unit_test(test_schema__idempotent_and_status),
    };
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    cleanup();
    bolt_pool_free(g_pool);
    return rc;
}
