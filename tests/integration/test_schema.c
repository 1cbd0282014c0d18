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
#include "core/log.h"
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
    int recs = count_records();
    printf("stress: schema_concurrent_apply jobs=2 duplicates=%d lost=%d appliers=%d\n", recs > 2 ? recs - 2 : 0,
           recs < 2 ? 2 - recs : 0, T);
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

/* Warnings seen by the log sink while a test runs. */
static char g_warned[2048];

static void warn_sink(eg_log_level lvl, const char *component, const char *msg, void *payload)
{
    (void)payload;
    if (lvl == EG_LOG_WARNING && strcmp(component, "schema") == 0) {
        size_t used = strlen(g_warned);
        snprintf(g_warned + used, sizeof g_warned - used, "%s\n", msg);
    }
}

static void record_migration(const char *id, const char *module)
{
    bolt_conn *c = NULL;
    eg_error err = {0};
    assert_int_equal(bolt_pool_acquire(g_pool, &c, &err), 0);
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "id", id);
    bolt_params_str(p, "m", module);
    assert_int_equal(bolt_conn_exec(c,
                                    "CREATE (:SchemaMigration {id: $id, module: $m, version: 99, "
                                    "checksum: 'from-a-newer-engram', appliedAt: timestamp()})",
                                    p, NULL, NULL, &err),
                     0);
    bolt_params_free(p);
    bolt_pool_release(g_pool, c);
}

/* A migration recorded by a newer engram for a module this one knows is
 * shown as unknown and warned about at apply; one of a module this process
 * does not register is shown but not warned about. */
static void test_schema__newer_migration_is_reported(void **state)
{
    (void)state;
    char newer[96], foreign_mod[48], foreign[96];
    snprintf(newer, sizeof newer, "%s:99", g_mod);
    snprintf(foreign_mod, sizeof foreign_mod, "%s_other", g_mod);
    snprintf(foreign, sizeof foreign, "%s:99", foreign_mod);
    record_migration(newer, g_mod);
    record_migration(foreign, foreign_mod);
    g_warned[0] = '\0';
    eg_log_set_sink(warn_sink, NULL);
    schema_entry *e = NULL;
    size_t n = 0;
    eg_error err = {0};
    int rc = schema_apply(g_pool, &e, &n, &err);
    eg_log_set_sink(NULL, NULL);
    assert_int_equal(rc, 0);
    int unknown = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(e[i].id, newer) == 0 || strcmp(e[i].id, foreign) == 0)
            unknown += e[i].state == SCHEMA_UNKNOWN;
    eg_free(e);
    assert_int_equal(unknown, 2);
    assert_non_null(strstr(g_warned, newer));
    assert_null(strstr(g_warned, foreign));
}

/* ---- a migration that follows configuration ---- */

static char g_cfg_mod[56];
static char g_cfg_idx[72];
static const char *g_cfg_prop = "a";   /* "configuration": the indexed property */
static schema_migration g_cfg_migs[1];
static schema_module g_cfg_module;

static int build_cfg(const void *ctx, char ***out, size_t *n, eg_error *err)
{
    (void)ctx;
    char **v = eg_calloc(1, sizeof *v);
    char buf[256];
    snprintf(buf, sizeof buf, "CREATE INDEX %s IF NOT EXISTS FOR (n:%s) ON (n.%s)", g_cfg_idx, g_label,
             g_cfg_prop);
    if (!v || !(v[0] = eg_strdup(buf))) {
        eg_free(v);
        return eg_error_set(err, EG_ENOMEM, EG_CLASS_NONE, "oom");
    }
    *out = v;
    *n = 1;
    return 0;
}

/* The indexed property of g_cfg_idx, or "" when the index does not exist. */
static void cfg_index_prop(char *out, size_t cap)
{
    bolt_conn *c = NULL;
    eg_error err = {0};
    assert_int_equal(bolt_pool_acquire(g_pool, &c, &err), 0);
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "name", g_cfg_idx);
    json_t *rows = NULL;
    assert_int_equal(bolt_conn_query_json(c,
                                          "SHOW INDEXES YIELD name, properties WHERE name = $name "
                                          "RETURN properties[0] AS prop",
                                          p, NULL, &rows, &err),
                     0);
    const char *prop = json_string_value(json_object_get(json_array_get(rows, 0), "prop"));
    snprintf(out, cap, "%s", prop ? prop : "");
    json_decref(rows);
    bolt_params_free(p);
    bolt_pool_release(g_pool, c);
}

static schema_mstate cfg_state(bool apply, bool *applied_now)
{
    schema_entry *e = NULL;
    size_t n = 0;
    eg_error err = {0};
    int rc = apply ? schema_apply(g_pool, &e, &n, &err) : schema_status(g_pool, &e, &n, &err);
    assert_int_equal(rc, 0);
    schema_mstate st = SCHEMA_UNKNOWN;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(e[i].module, g_cfg_mod) == 0) {
            st = e[i].state;
            if (applied_now)
                *applied_now = e[i].applied_now;
        }
    }
    eg_free(e);
    return st;
}

/* A changed configuration makes the migration pending, not "changed"; it is
 * recorded again; an object an operator dropped comes back with the new
 * configuration at the next apply. */
static void test_schema__follows_config(void **state)
{
    (void)state;
    char prop[32];
    bool now = false;
    g_cfg_prop = "a"; /* what the earlier tests applied */
    assert_int_equal(cfg_state(true, &now), SCHEMA_APPLIED);
    cfg_index_prop(prop, sizeof prop);
    assert_string_equal(prop, "a");

    g_cfg_prop = "b";
    assert_int_equal(cfg_state(false, NULL), SCHEMA_PENDING);
    assert_int_equal(cfg_state(true, &now), SCHEMA_APPLIED);
    assert_true(now); /* recorded again with the new checksum */
    assert_int_equal(cfg_state(false, NULL), SCHEMA_APPLIED);
    cfg_index_prop(prop, sizeof prop);
    assert_string_equal(prop, "a"); /* IF NOT EXISTS: the old index stays until dropped */

    bolt_conn *c = NULL;
    eg_error err = {0};
    assert_int_equal(bolt_pool_acquire(g_pool, &c, &err), 0);
    char q[128];
    snprintf(q, sizeof q, "DROP INDEX %s", g_cfg_idx);
    assert_int_equal(bolt_conn_exec(c, q, NULL, NULL, NULL, &err), 0);
    bolt_pool_release(g_pool, c);
    cfg_index_prop(prop, sizeof prop);
    assert_string_equal(prop, "");
    assert_int_equal(cfg_state(true, &now), SCHEMA_APPLIED);
    assert_false(now); /* nothing new to record ... */
    cfg_index_prop(prop, sizeof prop);
    assert_string_equal(prop, "b"); /* ... but the dropped index is back, as configured now */
}

/* ---- a data migration (run, count) ---- */

static char g_data_mod[48];
static int g_data_runs;      /* how often run was called */
static bool g_data_fail;     /* run fails (a crash halfway) */
static schema_migration g_data_migs[1];
static schema_module g_data_module;

static int data_run(bolt_pool *p, void *ctx, eg_error *err)
{
    assert_ptr_equal(p, g_pool);
    assert_ptr_equal(ctx, &g_data_runs);
    g_data_runs++;
    if (g_data_fail)
        return eg_error_set(err, EG_EIO, EG_CLASS_DATABASE, "interrupted");
    return 0;
}

static int data_count(bolt_pool *p, void *ctx, int64_t *todo, eg_error *err)
{
    (void)p;
    (void)ctx;
    (void)err;
    *todo = 7;
    return 0;
}

static const schema_entry *find_entry(const schema_entry *e, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(e[i].id, id) == 0)
            return &e[i];
    fail_msg("no entry %s", id);
    return NULL;
}

/* A migration that is a C function: pending with what it has left, run
 * under the lock, not recorded when it fails (run again next time), never
 * run again once recorded; the registry refuses mixed or odd ones. */
static void test_schema__data_migration(void **state)
{
    (void)state;
    eg_error err = {0};
    char id[96];
    snprintf(g_data_mod, sizeof g_data_mod, "%s_data", g_mod);
    snprintf(id, sizeof id, "%s:1", g_data_mod);
    static const char *const stmts[] = {"RETURN 1", NULL};
    schema_migration bad[] = {
        {.version = 1, .description = "both", .statements = stmts, .run = data_run},
        {.version = 1, .description = "configured", .run = data_run, .follows_config = true},
        {.version = 1, .description = "count alone", .statements = stmts, .count = data_count},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        schema_module m = {.name = g_data_mod, .migrations = &bad[i], .n = 1};
        assert_int_equal(schema_register(&m, &err), EG_EINVAL);
    }
    g_data_migs[0] = (schema_migration){.version = 1, .description = "convert", .run = data_run,
                                        .count = data_count};
    g_data_module = (schema_module){.name = g_data_mod, .migrations = g_data_migs, .n = 1, .ctx = &g_data_runs};
    assert_int_equal(schema_register(&g_data_module, &err), 0);

    schema_entry *e = NULL;
    size_t n = 0;
    assert_int_equal(schema_status(g_pool, &e, &n, &err), 0);
    const schema_entry *x = find_entry(e, n, id);
    assert_int_equal(x->state, SCHEMA_PENDING);
    assert_true(x->data);
    assert_int_equal(x->todo, 7);
    eg_free(e);

    g_data_fail = true;
    assert_int_not_equal(schema_apply(g_pool, &e, &n, &err), 0);
    assert_non_null(strstr(err.message, id));
    assert_int_equal(g_data_runs, 1);
    assert_int_equal(schema_status(g_pool, &e, &n, &err), 0);
    assert_int_equal(find_entry(e, n, id)->state, SCHEMA_PENDING); /* not recorded: runs again */
    eg_free(e);

    g_data_fail = false;
    assert_int_equal(schema_apply(g_pool, &e, &n, &err), 0);
    x = find_entry(e, n, id);
    assert_int_equal(g_data_runs, 2);
    assert_true(x->applied_now);
    assert_int_equal(x->state, SCHEMA_APPLIED);
    assert_int_equal(strlen(x->checksum), 64);
    eg_free(e);

    assert_int_equal(schema_apply(g_pool, &e, &n, &err), 0);
    assert_int_equal(g_data_runs, 2); /* recorded: never again */
    eg_free(e);
    assert_int_equal(schema_status(g_pool, &e, &n, &err), 0);
    x = find_entry(e, n, id);
    assert_int_equal(x->state, SCHEMA_APPLIED);
    assert_int_equal(x->todo, -1); /* nothing left to ask about */
    eg_free(e);
}

static void cleanup(void)
{
    bolt_conn *c = NULL;
    eg_error err = {0};
    if (bolt_pool_acquire(g_pool, &c, &err))
        return;
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "m", g_mod);
    bolt_conn_exec(c, "MATCH (m:SchemaMigration) WHERE m.module STARTS WITH $m DELETE m", p, NULL, NULL, &err);
    char q[128];
    snprintf(q, sizeof q, "DROP INDEX %s IF EXISTS", g_idx);
    bolt_conn_exec(c, q, NULL, NULL, NULL, &err);
    snprintf(q, sizeof q, "DROP INDEX %s IF EXISTS", g_cfg_idx);
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
    snprintf(g_cfg_mod, sizeof g_cfg_mod, "%s_cfg", g_mod);
    snprintf(g_cfg_idx, sizeof g_cfg_idx, "schema_test_cfg_idx_%s", hex);
    g_cfg_migs[0] = (schema_migration){.version = 1, .description = "index on the configured property",
                                       .build = build_cfg, .follows_config = true};
    g_cfg_module = (schema_module){.name = g_cfg_mod, .migrations = g_cfg_migs, .n = 1};
    if (queue_schema_register(&err) || schema_register(&g_module, &err) || schema_register(&g_cfg_module, &err)) {
        fprintf(stderr, "FAIL: register: %s\n", err.message);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema__concurrent_apply),
        cmocka_unit_test(test_schema__idempotent_and_status),
        cmocka_unit_test(test_schema__newer_migration_is_reported),
        cmocka_unit_test(test_schema__follows_config),
        cmocka_unit_test(test_schema__data_migration),
    };
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    cleanup();
    bolt_pool_free(g_pool);
    return rc;
}
