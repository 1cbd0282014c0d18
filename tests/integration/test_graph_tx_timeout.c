/*
 * test_graph_tx_timeout.c - an engram server whose link to Neo4j dies
 * between a write and its COMMIT must not hold that entity's locks for ever.
 *
 * Server A reaches Neo4j through a Bolt proxy of ours (tests/support/
 * bolt_cluster.h, one member) that swallows A's COMMIT: Neo4j sees A's
 * create_entities transaction (of two names: one new name is a single
 * auto-commit statement, with no COMMIT to lose) open, holding the name in the unique
 * constraint, and then silence, as when a link is cut between the statement
 * and COMMIT (TCP may take hours to tell the server).  Server B, on a
 * direct connection, then creates the same name and must wait for A's
 * locks.  With the store's transaction timeout (graph_opts.tx_timeout_ms,
 * 2 s here) the server ends A's transaction and B's create goes through a
 * few seconds later; without it B would wait until A's connection is gone.
 * The test bounds B's wait, so a missing timeout fails instead of hanging.
 */
#include "core/clock.h"
#include "graph/graph.h"
#include "support/bolt_cluster.h"
#include "support/testenv.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

enum { TX_TIMEOUT_MS = 2000 };

static bolt_config g_cfg;
static bolt_pool *g_direct;
static char g_ns[32];

typedef struct creator {
    graph_store *g;
    const char *who;
    int rc;
    bool created;
    atomic_bool done;
} creator;

static void *create_thread(void *p)
{
    creator *cr = p;
    graph_req req = GRAPH_REQ_INIT;
    req.ns = g_ns;
    /* Two names: a create of one new name is a single auto-commit statement
     * (no COMMIT to lose); two take a transaction, whose COMMIT can be cut. */
    json_t *ents = json_pack("[{s:s, s:s, s:[s]}, {s:s, s:s, s:[]}]", "name", "Contested", "entityType", "thing",
                             "observations", cr->who, "name", cr->who, "entityType", "server", "observations");
    json_t *out = NULL;
    eg_error err;
    eg_error_clear(&err);
    cr->rc = graph_create_entities(cr->g, &req, ents, &out, &err);
    if (cr->rc)
        fprintf(stderr, "%s: create: %s %.120s\n", cr->who, err.neo4j_code, err.message);
    json_t *created = json_object_get(out, "created");
    cr->created = json_is_array(created) ? json_array_size(created) == 2 : json_integer_value(created) == 2;
    json_decref(out);
    json_decref(ents);
    atomic_store(&cr->done, true);
    return NULL;
}

static bool create_done(void *c) { return atomic_load(&((creator *)c)->done); }

static void test_graph_tx_timeout__cut_server_releases_the_entity(void **state)
{
    (void)state;
    eg_error err;
    /* B, the healthy server, keeps the default timeout: time spent waiting
     * for A's lock counts against B's own (the server would end B's wait
     * with TransactionTimedOutClientConfiguration at A's 2 s). */
    graph_opts ob = GRAPH_OPTS_INIT;
    ob.embedding_model = "test-model";
    graph_opts o = ob;
    o.tx_timeout_ms = TX_TIMEOUT_MS;

    graph_store *b = NULL, *a = NULL;
    assert_int_equal(graph_store_new(&b, g_direct, NULL, &ob, &err), 0);
    assert_int_equal(graph_schema_apply(b, 120000, &err), 0);
    bolt_cluster *cl = bolt_cluster_new(g_cfg.uri, 1);
    assert_non_null(cl);
    bolt_pool *pa = NULL;
    assert_int_equal(bolt_cluster_member_pool(cl, 0, &g_cfg, 2, &pa, &err), 0);
    assert_int_equal(graph_store_new(&a, pa, NULL, &o, &err), 0);

    /* A's create: its statement runs (the name's lock is A's), its COMMIT never arrives. */
    creator ca = {.g = a, .who = "server-a"}, cb = {.g = b, .who = "server-b"};
    bolt_cluster_contention ct;
    bolt_cluster_contend(cl, create_thread, &ca, create_thread, &cb, create_done, &ct);
    fprintf(stderr, "graph tx timeout: B waited %lld ms for A's locks (created %d); A: rc %d, created %d\n",
            (long long)ct.waited_ms, cb.created, ca.rc, ca.created);

    assert_true(ct.stalled);                        /* A was inside its create transaction */
    assert_true(ct.b_done);                         /* B was not held until A's link went away */
    assert_true(ct.waited_ms >= TX_TIMEOUT_MS / 2); /* ... and did wait on A's lock: the scenario happened */
    assert_int_equal(cb.rc, 0);
    assert_true(cb.created);                  /* A's uncommitted create was rolled back: the entity is B's */

    /* One entity of that name, holding B's observation. */
    graph_req req = GRAPH_REQ_INIT;
    req.ns = g_ns;
    json_t *names = json_pack("[s]", "Contested"), *got = NULL;
    assert_int_equal(graph_open_nodes(b, &req, names, NULL, &got, &err), 0);
    json_t *ents = json_object_get(got, "entities");
    assert_int_equal(json_array_size(ents), 1);
    json_t *obs = json_object_get(json_array_get(ents, 0), "observations");
    bool has_b = false;
    size_t i;
    json_t *v;
    json_array_foreach(obs, i, v) has_b = has_b || strcmp(json_string_value(v), "server-b") == 0;
    assert_true(has_b);
    json_decref(got);
    json_decref(names);

    graph_store_free(a);
    bolt_pool_free(pa);
    bolt_cluster_free(cl);
    graph_store_free(b);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    int rc = eg_testenv_neo4j(&g_cfg);
    if (rc != 0)
        return rc;
    eg_error err;
    eg_error_clear(&err);
    if (bolt_pool_new(&g_direct, &g_cfg, NULL, &err) != 0 || bolt_pool_verify(g_direct, &err) != 0) {
        fprintf(stderr, "neo4j: %s\n", err.message);
        return 1;
    }
    char hex[9];
    eg_rand_hex(hex, (sizeof hex - 1) / 2);
    snprintf(g_ns, sizeof g_ns, "txtimeout-%s", hex);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_graph_tx_timeout__cut_server_releases_the_entity),
    };
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    bolt_pool_free(g_direct);
    return rc;
}
