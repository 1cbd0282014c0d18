/*
 * test_route.c - routing tables: parsing, staleness, forgetting and
 * least-connected selection (pure), then a routed pool against scripted fake
 * servers: the ROUTE message layout, writes sent to the table's writer, and a
 * NotALeader answer that makes the pool forget the writer, refresh through
 * the router and retry on the new leader.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bolt/pool.h"
#include "bolt/route.h"
#include "support/fake_bolt.h"

#include <stdio.h>
#include <string.h>

enum { RESET = 0x0F, RUN = 0x10, BEGIN = 0x11, COMMIT = 0x12, PULL = 0x3F, ROUTE = 0x66 };

static json_t *table_json(const char *routers, const char *readers, const char *writers, int ttl)
{
    char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"ttl\": %d, \"db\": \"neo4j\", \"servers\": [{\"role\": \"ROUTE\", \"addresses\": %s},"
             " {\"role\": \"READ\", \"addresses\": %s}, {\"role\": \"WRITE\", \"addresses\": %s}]}",
             ttl, routers, readers, writers);
    json_t *j = json_loads(buf, 0, NULL);
    assert_non_null(j);
    return j;
}

static void test_bolt_route__parse_and_stale(void **state)
{
    (void)state;
    bolt_rt t = {0};
    eg_error err;
    json_t *j = table_json("[\"a:1\", \"b:1\"]", "[\"b:1\", \"c:1\"]", "[\"a:1\"]", 10);
    assert_int_equal(bolt_rt_parse_json(j, 1000, &t, &err), 0);
    json_decref(j);
    assert_string_equal(t.db, "neo4j");
    assert_int_equal(t.routers.n, 2);
    assert_int_equal(t.readers.n, 2);
    assert_int_equal(t.writers.n, 1);
    assert_int_equal(t.expires_ms, 11000);
    assert_false(bolt_rt_stale(&t, false, 10999));
    assert_true(bolt_rt_stale(&t, false, 11000)); /* TTL expired */
    /* The writer fails: writes need a refresh, reads do not. */
    bolt_rt_forget_writer(&t, "a:1");
    assert_true(bolt_rt_stale(&t, false, 2000));
    assert_false(bolt_rt_stale(&t, true, 2000));
    assert_true(bolt_rt_has(&t, "a:1")); /* still a router */
    bolt_rt_forget(&t, "a:1");
    assert_false(bolt_rt_has(&t, "a:1"));
    bolt_rt_forget(&t, "b:1");
    assert_true(bolt_rt_stale(&t, true, 2000)); /* no router left */
    bolt_rt_clear(&t);
    assert_true(bolt_rt_stale(&t, true, 0)); /* never fetched */
}

static void test_bolt_route__parse_rejects(void **state)
{
    (void)state;
    bolt_rt t = {0};
    eg_error err;
    json_t *j = table_json("[]", "[\"b:1\"]", "[\"a:1\"]", 10);
    assert_int_equal(bolt_rt_parse_json(j, 0, &t, &err), EG_EPROTO); /* no router */
    json_decref(j);
    j = json_loads("{\"ttl\": \"x\", \"servers\": []}", 0, NULL);
    assert_int_equal(bolt_rt_parse_json(j, 0, &t, &err), EG_EPROTO);
    json_decref(j);
    /* No writer (an election) and an unknown role are accepted. */
    j = json_loads("{\"ttl\": 5, \"servers\": [{\"role\": \"ROUTE\", \"addresses\": [\"a:1\"]},"
                   " {\"role\": \"FUTURE\", \"addresses\": [\"z:1\"]}]}",
                   0, NULL);
    assert_int_equal(bolt_rt_parse_json(j, 0, &t, &err), 0);
    json_decref(j);
    assert_int_equal(t.writers.n, 0);
    assert_true(bolt_rt_stale(&t, false, 1));
    assert_null(t.db);
    bolt_rt_clear(&t);
}

static size_t fake_in_use(const char *addr, void *ctx)
{
    (void)ctx;
    return strcmp(addr, "a:1") == 0 ? 3 : strcmp(addr, "b:1") == 0 ? 1 : 1;
}

static void test_bolt_route__pick_least_connected(void **state)
{
    (void)state;
    char *v[] = {"a:1", "b:1", "c:1"};
    bolt_addr_list l = {v, 3};
    /* b and c tie at 1: the rotation start decides, a (3) never wins. */
    assert_int_equal(bolt_rt_pick(&l, 0, fake_in_use, NULL), 1);
    assert_int_equal(bolt_rt_pick(&l, 2, fake_in_use, NULL), 2);
    assert_int_equal(bolt_rt_pick(&l, 3, fake_in_use, NULL), 1);
    bolt_addr_list empty = {NULL, 0};
    assert_int_equal(bolt_rt_pick(&empty, 0, fake_in_use, NULL), -1);
}

/* ---- a routed pool against fake servers ---- */

static char *routed_uri(const fake_bolt *fb, char *buf, size_t n)
{
    snprintf(buf, n, "neo4j://127.0.0.1:%d?policy=eu", fake_bolt_port(fb));
    return buf;
}

static char *table_for(char *buf, size_t n, int router, int reader, int writer)
{
    snprintf(buf, n,
             "{\"rt\": {\"ttl\": 300, \"db\": \"neo4j\", \"servers\": ["
             "{\"role\": \"ROUTE\", \"addresses\": [\"127.0.0.1:%d\"]},"
             "{\"role\": \"READ\", \"addresses\": [\"127.0.0.1:%d\"]},"
             "{\"role\": \"WRITE\", \"addresses\": [\"127.0.0.1:%d\"]}]}}",
             router, reader, writer);
    return buf;
}

static int work_fn(bolt_conn *c, void *payload, eg_error *err)
{
    (*(int *)payload)++;
    return bolt_conn_exec(c, "MERGE (n:X {id: 1})", NULL, NULL, NULL, err);
}

static void script_commit(fake_bolt *fb, const char *bookmark)
{
    char bm[128];
    fake_bolt_expect(fb, BEGIN);
    fake_bolt_expect(fb, RUN);
    fake_bolt_expect(fb, PULL);
    fake_bolt_success(fb, "{}");
    fake_bolt_success(fb, "{\"fields\":[]}");
    fake_bolt_success(fb, "{}");
    fake_bolt_expect(fb, COMMIT);
    snprintf(bm, sizeof bm, "{\"bookmark\":\"%s\"}", bookmark);
    fake_bolt_success(fb, bm);
}

static void test_bolt_route__not_a_leader_moves_to_new_writer(void **state)
{
    (void)state;
    fake_bolt *router = fake_bolt_new(), *old = fake_bolt_new(), *leader = fake_bolt_new();
    int pr = fake_bolt_port(router), po = fake_bolt_port(old), pl = fake_bolt_port(leader);
    char t1[512], t2[512], uri[128];
    /* Seed: a fresh connection asks for the first table... */
    fake_bolt_hello(router, 5, 8);
    fake_bolt_expect(router, ROUTE);
    fake_bolt_success(router, table_for(t1, sizeof t1, pr, pr, po));
    /* ...and after NotALeader the router (now a pooled member) gives the second. */
    fake_bolt_accept(router);
    fake_bolt_hello(router, 5, 8);
    fake_bolt_expect(router, ROUTE);
    fake_bolt_success(router, table_for(t2, sizeof t2, pr, pr, pl));
    /* The old leader refuses the write. */
    fake_bolt_hello(old, 5, 8);
    fake_bolt_expect(old, BEGIN);
    fake_bolt_expect(old, RUN);
    fake_bolt_expect(old, PULL);
    fake_bolt_success(old, "{}");
    fake_bolt_failure(old, "Neo.ClientError.Cluster.NotALeader", "No write operations are allowed on this database");
    fake_bolt_ignored(old);
    fake_bolt_expect(old, RESET);
    fake_bolt_success(old, "{}");
    /* The new one commits. */
    fake_bolt_hello(leader, 5, 8);
    script_commit(leader, "bm-1");
    fake_bolt_start(router);
    fake_bolt_start(old);
    fake_bolt_start(leader);

    bolt_config cfg = BOLT_CONFIG_INIT;
    cfg.uri = routed_uri(router, uri, sizeof uri);
    cfg.user = "neo4j";
    cfg.password = "pw";
    cfg.connect_timeout_ms = 3000;
    cfg.imp_user = "alice";
    bolt_pool *p;
    eg_error err;
    assert_int_equal(bolt_pool_new(&p, &cfg, NULL, &err), 0);
    int calls = 0;
    bolt_retry_opts ro = BOLT_RETRY_OPTS_INIT;
    ro.initial_delay_ms = 5;
    int rc = bolt_pool_execute_write(p, NULL, &ro, work_fn, &calls, &err);
    if (rc != 0)
        fail_msg("execute_write: %s %s (router: %s, old: %s, leader: %s)", err.neo4j_code, err.message,
                 fake_bolt_error(router) ? fake_bolt_error(router) : "-",
                 fake_bolt_error(old) ? fake_bolt_error(old) : "-",
                 fake_bolt_error(leader) ? fake_bolt_error(leader) : "-");
    assert_int_equal(calls, 2);
    bolt_pool_free(p);
    assert_int_equal(fake_bolt_wait(router), 0);
    assert_int_equal(fake_bolt_wait(old), 0);
    assert_int_equal(fake_bolt_wait(leader), 0);

    /* ROUTE's layout (4.4+): routing context, bookmarks, {db?, imp_user}. */
    size_t n = fake_bolt_nreceived(router);
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (fake_bolt_received_sig(router, i) != ROUTE)
            continue;
        const bolt_value *ctx = fake_bolt_received_field(router, i, 0);
        char want[64];
        snprintf(want, sizeof want, "127.0.0.1:%d", pr);
        assert_string_equal(bolt_value_cstr(bolt_value_get(ctx, "address")), want);
        assert_string_equal(bolt_value_cstr(bolt_value_get(ctx, "policy")), "eu");
        assert_int_equal(bolt_value_type(fake_bolt_received_field(router, i, 1)), BOLT_LIST);
        const bolt_value *extra = fake_bolt_received_field(router, i, 2);
        assert_int_equal(bolt_value_type(extra), BOLT_MAP);
        assert_string_equal(bolt_value_cstr(bolt_value_get(extra, "imp_user")), "alice");
        assert_null(bolt_value_get(extra, "db")); /* home database */
        seen++;
    }
    assert_int_equal(seen, 2);
    fake_bolt_free(router);
    fake_bolt_free(old);
    fake_bolt_free(leader);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bolt_route__parse_and_stale),
        cmocka_unit_test(test_bolt_route__parse_rejects),
        cmocka_unit_test(test_bolt_route__pick_least_connected),
        cmocka_unit_test(test_bolt_route__not_a_leader_moves_to_new_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
