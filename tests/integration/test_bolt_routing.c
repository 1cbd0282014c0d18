/*
 * test_bolt_routing.c - neo4j:// against the real single Neo4j: Community
 * answers ROUTE with a table naming itself in every role, so the routed pool
 * must fetch it, route writes and reads through it, carry bookmarks from a
 * write into the next read, and survive a table that no longer names a
 * writer (forced refresh).  The graph store and the queue round trips run
 * through neo4j:// in their own suites (see docs/internals/bolt.md).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bolt/pool.h"
#include "core/clock.h"
#include "support/testenv.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static bolt_config g_cfg;
static char g_routed_uri[512];
static char g_run[17];

/* bolt://host:port[...] -> neo4j://host:port?region=test (a routing context parameter) */
static void make_routed_uri(void)
{
    const char *u = g_cfg.uri;
    const char *sep = strstr(u, "://");
    snprintf(g_routed_uri, sizeof g_routed_uri, "neo4j://%s?region=test", sep ? sep + 3 : u);
    char *q = strchr(g_routed_uri + 8, '?');
    /* strip any path or query the bolt URI had */
    char *slash = strchr(g_routed_uri + 8, '/');
    if (slash && slash < q)
        memmove(slash, q, strlen(q) + 1);
}

static bolt_pool *routed_pool(void)
{
    bolt_config c = g_cfg;
    c.uri = g_routed_uri;
    bolt_pool_opts po = BOLT_POOL_OPTS_INIT;
    po.max_size = 4;
    bolt_pool *p = NULL;
    eg_error err;
    int rc = bolt_pool_new(&p, &c, &po, &err);
    if (rc != 0)
        fail_msg("bolt_pool_new: %s", err.message);
    return p;
}

static void test_bolt_routing__table_from_community(void **state)
{
    (void)state;
    bolt_pool *p = routed_pool();
    assert_true(bolt_pool_is_routed(p));
    json_t *t = NULL;
    eg_error err;
    int rc = bolt_pool_routing_table(p, NULL, &t, &err);
    if (rc != 0)
        fail_msg("routing table: %s %s", err.neo4j_code, err.message);
    char *s = json_dumps(t, JSON_COMPACT);
    printf("# routing table: %s\n", s);
    free(s);
    assert_true(json_array_size(json_object_get(t, "routers")) >= 1);
    assert_true(json_array_size(json_object_get(t, "readers")) >= 1);
    assert_int_equal(json_array_size(json_object_get(t, "writers")), 1);
    assert_string_equal(json_string_value(json_object_get(t, "db")), "neo4j");
    assert_true(json_integer_value(json_object_get(t, "ttl_s")) > 0);
    json_decref(t);
    bolt_pool_free(p);
}

static void test_bolt_routing__direct_pool_has_no_table(void **state)
{
    (void)state;
    bolt_pool *p = NULL;
    eg_error err;
    assert_int_equal(bolt_pool_new(&p, &g_cfg, NULL, &err), 0);
    assert_false(bolt_pool_is_routed(p));
    json_t *t = NULL;
    assert_int_equal(bolt_pool_routing_table(p, NULL, &t, &err), EG_EUNSUPPORTED);
    assert_null(t);
    bolt_pool_free(p);
}

typedef struct rw {
    int64_t i;
    int64_t seen;
} rw;

static int write_fn(bolt_conn *c, void *payload, eg_error *err)
{
    rw *w = payload;
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "run", g_run);
    bolt_params_int(p, "i", w->i);
    int rc = bolt_conn_exec(c, "MERGE (n:BoltRoutingTest {run: $run, i: $i})", p, NULL, NULL, err);
    bolt_params_free(p);
    return rc;
}

static int read_fn(bolt_conn *c, void *payload, eg_error *err)
{
    rw *w = payload;
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "run", g_run);
    json_t *rows = NULL;
    int rc = bolt_conn_query_json(c, "MATCH (n:BoltRoutingTest {run: $run}) RETURN count(n) AS n", p, NULL,
                                  &rows, err);
    bolt_params_free(p);
    if (rc == 0)
        w->seen = json_integer_value(json_object_get(json_array_get(rows, 0), "n"));
    json_decref(rows);
    return rc;
}

typedef struct th {
    bolt_pool *p;
    int id, n, failures;
    eg_error err;
} th;

static void *writer_thread(void *arg)
{
    th *t = arg;
    for (int k = 0; k < t->n; k++) {
        rw w = {(int64_t)t->id * 1000 + k, 0};
        eg_error err;
        if (bolt_pool_execute_write(t->p, NULL, NULL, write_fn, &w, &err) != 0) {
            t->failures++;
            eg_error_copy(&t->err, &err);
            continue;
        }
        /* Read-your-writes through a reader (bookmarks carried by the pool). */
        if (bolt_pool_execute_read(t->p, NULL, NULL, read_fn, &w, &err) != 0 || w.seen < k + 1) {
            t->failures++;
            eg_error_copy(&t->err, &err);
        }
    }
    return NULL;
}

static void test_bolt_routing__writes_and_reads_routed(void **state)
{
    (void)state;
    bolt_pool *p = routed_pool();
    eg_rand_hex(g_run, 8);
    enum { NT = 4, NW = 50 };
    pthread_t tid[NT];
    th t[NT];
    for (int i = 0; i < NT; i++) {
        t[i] = (th){.p = p, .id = i, .n = NW};
        pthread_create(&tid[i], NULL, writer_thread, &t[i]);
    }
    for (int i = 0; i < NT; i++) {
        pthread_join(tid[i], NULL);
        if (t[i].failures)
            fail_msg("thread %d: %d failures, last: %s %s", i, t[i].failures, t[i].err.neo4j_code,
                     t[i].err.message);
    }
    rw w = {0, 0};
    eg_error err;
    assert_int_equal(bolt_pool_execute_read(p, NULL, NULL, read_fn, &w, &err), 0);
    assert_int_equal(w.seen, NT * NW);
    bolt_pool_stats st;
    bolt_pool_get_stats(p, &st);
    assert_true(st.size <= 4); /* one server: one pool of at most max_size */
    bolt_conn *c;
    assert_int_equal(bolt_pool_acquire(p, &c, &err), 0);
    bolt_params *pp = bolt_params_new();
    bolt_params_str(pp, "run", g_run);
    assert_int_equal(bolt_conn_exec(c, "MATCH (n:BoltRoutingTest {run: $run}) DELETE n", pp, NULL, NULL, &err), 0);
    bolt_params_free(pp);
    bolt_pool_release(p, c);
    bolt_pool_free(p);
}

static void test_bolt_routing__unknown_database_is_not_retried(void **state)
{
    (void)state;
    bolt_pool *p = routed_pool();
    json_t *t = NULL;
    eg_error err;
    int64_t t0 = eg_mono_ms();
    int rc = bolt_pool_routing_table(p, "nosuchdb", &t, &err);
    assert_true(rc < 0);
    assert_null(t);
    printf("# unknown database: %s %s\n", err.neo4j_code, err.message);
    assert_non_null(strstr(err.neo4j_code, "DatabaseNotFound"));
    assert_true(eg_mono_ms() - t0 < 5000);
    bolt_pool_free(p);
}

int main(void)
{
    int rc = eg_testenv_neo4j(&g_cfg);
    if (rc != 0)
        return rc;
    make_routed_uri();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bolt_routing__table_from_community),
        cmocka_unit_test(test_bolt_routing__direct_pool_has_no_table),
        cmocka_unit_test(test_bolt_routing__writes_and_reads_routed),
        cmocka_unit_test(test_bolt_routing__unknown_database_is_not_retried),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
