/*
 * test_bolt_tx.c - transactions and errors against a real Neo4j: commit is
 * visible, rollback is not, a uniqueness violation is a classified client
 * error, bookmarks, failures inside a transaction, streaming with paging,
 * a wrong password, and TLS against a plain-text port.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bolt/conn.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "support/testenv.h"

#include <stdio.h>
#include <string.h>

static bolt_config g_cfg;
static bolt_conn *g_c;
static char g_run[17];

static int64_t count_nodes(const char *tag)
{
    eg_error err;
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "run", g_run);
    bolt_params_str(p, "tag", tag);
    json_t *rows = NULL;
    int rc = bolt_conn_query_json(g_c, "MATCH (n:BoltTxTest {run: $run, tag: $tag}) RETURN count(n) AS n", p,
                                  NULL, &rows, &err);
    bolt_params_free(p);
    if (rc < 0)
        fail_msg("count: %s", err.message);
    int64_t n = json_integer_value(json_object_get(json_array_get(rows, 0), "n"));
    json_decref(rows);
    return n;
}

static void create_in_tx(const char *tag, bool commit, char **bookmark)
{
    eg_error err;
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "run", g_run);
    bolt_params_str(p, "tag", tag);
    assert_int_equal(bolt_conn_begin(g_c, NULL, &err), 0);
    json_t *stats = NULL;
    assert_int_equal(bolt_conn_exec(g_c, "CREATE (:BoltTxTest {run: $run, tag: $tag})", p, NULL, &stats, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(stats, "nodes-created")), 1);
    json_decref(stats);
    /* visible inside its own transaction */
    assert_int_equal(count_nodes(tag), 1);
    if (commit)
        assert_int_equal(bolt_conn_commit(g_c, bookmark, &err), 0);
    else
        assert_int_equal(bolt_conn_rollback(g_c, &err), 0);
    bolt_params_free(p);
}

static void test_bolt_tx__commit_visible_rollback_not(void **state)
{
    (void)state;
    char *bm = NULL;
    create_in_tx("committed", true, &bm);
    assert_non_null(bm);
    assert_true(strlen(bm) > 0);
    assert_int_equal(count_nodes("committed"), 1);
    create_in_tx("rolled-back", false, NULL);
    assert_int_equal(count_nodes("rolled-back"), 0);
    /* A bookmark can be handed to the next transaction. */
    eg_error err;
    bolt_tx_opts o = BOLT_TX_OPTS_INIT;
    const char *bms[] = {bm};
    o.bookmarks = bms;
    o.nbookmarks = 1;
    o.read_only = true;
    o.timeout_ms = 10000;
    json_t *md = json_pack("{s:s}", "test", "bolt_tx");
    o.metadata = md;
    assert_int_equal(bolt_conn_begin(g_c, &o, &err), 0);
    assert_int_equal(count_nodes("committed"), 1);
    assert_int_equal(bolt_conn_commit(g_c, NULL, &err), 0);
    json_decref(md);
    eg_free(bm);
}

static void test_bolt_tx__uniqueness_violation_is_client_error(void **state)
{
    (void)state;
    eg_error err;
    char label[64], cname[64], q[256];
    /* Identifiers built from our own random hex only (never user text). */
    snprintf(label, sizeof label, "BoltUniq_%s", g_run);
    snprintf(cname, sizeof cname, "bolt_uniq_%s", g_run);
    snprintf(q, sizeof q, "CREATE CONSTRAINT %s FOR (n:%s) REQUIRE n.id IS UNIQUE", cname, label);
    assert_int_equal(bolt_conn_exec(g_c, q, NULL, NULL, NULL, &err), 0);
    snprintf(q, sizeof q, "CREATE (:%s {id: 1})", label);
    assert_int_equal(bolt_conn_exec(g_c, q, NULL, NULL, NULL, &err), 0);
    int rc = bolt_conn_exec(g_c, q, NULL, NULL, NULL, &err);
    assert_int_equal(rc, EG_ECLIENT);
    assert_int_equal(err.klass, EG_CLASS_CLIENT);
    assert_false(err.retryable);
    assert_string_equal(err.neo4j_code, "Neo.ClientError.Schema.ConstraintValidationFailed");
    assert_true(strlen(err.message) > 0);
    /* The connection is fine afterwards, also inside a transaction. */
    assert_int_equal(bolt_conn_begin(g_c, NULL, &err), 0);
    assert_int_equal(bolt_conn_exec(g_c, q, NULL, NULL, NULL, &err), EG_ECLIENT);
    assert_int_equal(bolt_conn_commit(g_c, NULL, &err), EG_ECLIENT);
    assert_int_equal(bolt_conn_rollback(g_c, &err), 0);
    snprintf(q, sizeof q, "MATCH (n:%s) DELETE n", label);
    assert_int_equal(bolt_conn_exec(g_c, q, NULL, NULL, NULL, &err), 0);
    snprintf(q, sizeof q, "DROP CONSTRAINT %s", cname);
    assert_int_equal(bolt_conn_exec(g_c, q, NULL, NULL, NULL, &err), 0);
}

static void test_bolt_tx__syntax_error_then_usable(void **state)
{
    (void)state;
    eg_error err;
    bolt_result *r = NULL;
    assert_int_equal(bolt_conn_run(g_c, "RETRUN 1", NULL, NULL, &r, &err), EG_ECLIENT);
    assert_string_equal(err.neo4j_code, "Neo.ClientError.Statement.SyntaxError");
    assert_true(strlen(err.gql_status) > 0); /* 5.7+ sends gql_status */
    json_t *rows = NULL;
    assert_int_equal(bolt_conn_query_json(g_c, "RETURN 41 + 1 AS x", NULL, NULL, &rows, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "x")), 42);
    json_decref(rows);
}

/* bolt_conn_query_json_many: n statements in one round trip, in order; a
 * failure in the middle fails the call and leaves the connection usable.
 * bolt_conn_query_json_each: the same for different statements. */
static void test_bolt_tx__pipelined_many(void **state)
{
    (void)state;
    eg_error err;
    int64_t xs[3] = {1, 2, 5};
    bolt_params *ps[3];
    json_t *rows[3];
    for (int i = 0; i < 3; i++) {
        ps[i] = bolt_params_new();
        bolt_params_int(ps[i], "x", xs[i]);
    }
    assert_int_equal(bolt_conn_begin(g_c, NULL, &err), 0);
    assert_int_equal(bolt_conn_query_json_many(g_c, "RETURN 10 / $x AS y", (const bolt_params *const *)ps, 3, NULL,
                                               rows, &err),
                     0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(json_integer_value(json_object_get(json_array_get(rows[i], 0), "y")), 10 / xs[i]);
        json_decref(rows[i]);
    }
    assert_int_equal(bolt_conn_commit(g_c, NULL, &err), 0);
    /* the middle one divides by zero */
    bolt_params_clear(ps[1]);
    bolt_params_int(ps[1], "x", 0);
    assert_int_equal(bolt_conn_begin(g_c, NULL, &err), 0);
    assert_true(bolt_conn_query_json_many(g_c, "RETURN 10 / $x AS y", (const bolt_params *const *)ps, 3, NULL, rows,
                                          &err) < 0);
    for (int i = 0; i < 3; i++)
        assert_null(rows[i]);
    bolt_conn_rollback(g_c, NULL);
    assert_int_equal(bolt_conn_reset(g_c, &err), 0);
    json_t *one = NULL;
    assert_int_equal(bolt_conn_query_json(g_c, "RETURN 1 AS n", NULL, NULL, &one, &err), 0);
    assert_int_equal(json_array_size(one), 1);
    json_decref(one);
    /* bolt_conn_query_json_each: different statements, one without params */
    const char *cyphers[3] = {"RETURN $x AS a", "UNWIND range(1, $x) AS i RETURN i", "RETURN 7 AS s"};
    const bolt_params *each[3] = {ps[0], ps[2], NULL};
    assert_int_equal(bolt_conn_begin(g_c, NULL, &err), 0);
    assert_int_equal(bolt_conn_query_json_each(g_c, cyphers, each, 3, NULL, rows, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows[0], 0), "a")), 1);
    assert_int_equal(json_array_size(rows[1]), 5);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows[1], 4), "i")), 5);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows[2], 0), "s")), 7);
    for (int i = 0; i < 3; i++)
        json_decref(rows[i]);
    assert_int_equal(bolt_conn_commit(g_c, NULL, &err), 0);
    for (int i = 0; i < 3; i++)
        bolt_params_free(ps[i]);
}

static void test_bolt_tx__paged_stream_and_early_free(void **state)
{
    (void)state;
    eg_error err;
    bolt_tx_opts o = BOLT_TX_OPTS_INIT;
    o.fetch_size = 7;
    bolt_result *r = NULL;
    assert_int_equal(bolt_conn_run(g_c, "UNWIND range(1, 100) AS i RETURN i", NULL, &o, &r, &err), 0);
    const bolt_value *rec;
    int64_t sum = 0;
    int rc;
    while ((rc = bolt_result_next(r, &rec, &err)) == 1)
        sum += bolt_value_int(bolt_value_at(rec, 0), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(sum, 5050);
    bolt_result_free(r);
    /* free after a few records: DISCARD the rest, connection stays usable */
    assert_int_equal(bolt_conn_run(g_c, "UNWIND range(1, 100000) AS i RETURN i", NULL, &o, &r, &err), 0);
    assert_int_equal(bolt_result_next(r, &rec, &err), 1);
    bolt_result_free(r);
    json_t *rows = NULL;
    assert_int_equal(bolt_conn_query_json(g_c, "RETURN 1 AS x", NULL, NULL, &rows, &err), 0);
    json_decref(rows);
    /* pipelined (lazy) queries */
    bolt_result *a, *b;
    assert_int_equal(bolt_conn_run_lazy(g_c, "RETURN 1 AS a", NULL, NULL, &a, &err), 0);
    assert_int_equal(bolt_conn_run_lazy(g_c, "RETURN 2 AS b", NULL, NULL, &b, &err), 0);
    assert_int_equal(bolt_result_next(a, &rec, &err), 1);
    assert_int_equal(bolt_value_int(bolt_value_at(rec, 0), 0), 1);
    /* b's replies come after the rest of a's: a must be finished first */
    assert_int_equal(bolt_result_next(b, &rec, &err), EG_EINVAL);
    assert_int_equal(bolt_result_next(a, &rec, &err), 0);
    assert_int_equal(bolt_result_next(b, &rec, &err), 1);
    assert_int_equal(bolt_value_int(bolt_value_at(rec, 0), 0), 2);
    bolt_result_free(a);
    bolt_result_free(b);
}

static void test_bolt_tx__wrong_password(void **state)
{
    (void)state;
    bolt_config cfg = g_cfg;
    cfg.password = "definitely-not-the-password";
    bolt_conn *c = NULL;
    eg_error err;
    assert_int_equal(bolt_conn_open(&c, &cfg, &err), EG_EAUTH);
    assert_null(c);
    assert_string_equal(err.neo4j_code, "Neo.ClientError.Security.Unauthorized");
    assert_non_null(strstr(err.message, "authentication failed"));
    assert_null(strstr(err.message, cfg.password));
}

static void test_bolt_tx__tls_against_plain_port_fails_cleanly(void **state)
{
    (void)state;
    static const char *schemes[] = {"bolt+ssc", "bolt+s"};
    const char *hostport = strstr(g_cfg.uri, "://");
    if (!hostport || strncmp(g_cfg.uri, "bolt://", 7) != 0)
        skip();
    for (size_t i = 0; i < 2; i++) {
        char uri[256];
        snprintf(uri, sizeof uri, "%s%s", schemes[i], hostport);
        bolt_config cfg = g_cfg;
        cfg.uri = uri;
        cfg.connect_timeout_ms = 5000;
        bolt_conn *c = NULL;
        eg_error err;
        int64_t t0 = eg_mono_ms();
        int rc = bolt_conn_open(&c, &cfg, &err);
        assert_true(rc == EG_EIO || rc == EG_ETIMEOUT);
        assert_null(c);
        assert_non_null(strstr(err.message, "TLS"));
        assert_true(eg_mono_ms() - t0 < 6000);
    }
}

/* Older protocol versions still work against the same server. */
static void test_bolt_tx__older_protocol_versions(void **state)
{
    (void)state;
    static const struct {
        bool disable_5;
        int max_minor;
        int want_major, want_minor;
    } cases[] = {{true, 0, 4, 4}, {false, 1, 5, 1}, {false, 2, 5, 2}, {false, 4, 5, 4}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bolt_config cfg = g_cfg;
        cfg.disable_5 = cases[i].disable_5;
        cfg.max_minor_5 = cases[i].max_minor;
        bolt_conn *c = NULL;
        eg_error err;
        if (bolt_conn_open(&c, &cfg, &err) < 0)
            fail_msg("case %zu: %s", i, err.message);
        int ma, mi;
        bolt_conn_version(c, &ma, &mi);
        assert_int_equal(ma, cases[i].want_major);
        assert_int_equal(mi, cases[i].want_minor);
        bolt_result *r = NULL;
        assert_int_equal(bolt_conn_begin(c, NULL, &err), 0);
        assert_int_equal(bolt_conn_run(c,
                                       "CREATE (n:BoltTxTest {run: $run, tag: 'ver'}) "
                                       "RETURN n, datetime('2024-01-02T03:04:05+01:00') AS d",
                                       NULL, NULL, &r, &err),
                         EG_ECLIENT); /* $run missing: a client error, connection survives */
        assert_int_equal(bolt_conn_rollback(c, &err), 0);
        bolt_params *p = bolt_params_new();
        bolt_params_str(p, "run", g_run);
        assert_int_equal(bolt_conn_begin(c, NULL, &err), 0);
        assert_int_equal(bolt_conn_run(c,
                                       "CREATE (n:BoltTxTest {run: $run, tag: 'ver'}) "
                                       "RETURN n, datetime('2024-01-02T03:04:05+01:00') AS d",
                                       p, NULL, &r, &err),
                         0);
        const bolt_value *rec;
        assert_int_equal(bolt_result_next(r, &rec, &err), 1);
        assert_int_equal(bolt_value_type(bolt_value_at(rec, 0)), BOLT_NODE);
        const bolt_value *d = bolt_value_at(rec, 1);
        assert_int_equal(bolt_value_type(d), BOLT_DATETIME); /* 4.4: via patch_bolt utc */
        assert_int_equal(d->u.temporal.seconds, 1704161045);
        assert_int_equal(d->u.temporal.tz_offset_seconds, 3600);
        bolt_result_free(r);
        assert_int_equal(bolt_conn_rollback(c, &err), 0);
        bolt_params_free(p);
        bolt_conn_free(c);
    }
}

static int setup(void **state)
{
    (void)state;
    eg_error err;
    eg_rand_hex(g_run, 8);
    if (bolt_conn_open(&g_c, &g_cfg, &err) < 0) {
        fprintf(stderr, "connect: %s\n", err.message);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    eg_error err;
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "run", g_run);
    bolt_conn_exec(g_c, "MATCH (n:BoltTxTest {run: $run}) DELETE n", p, NULL, NULL, &err);
    bolt_params_free(p);
    bolt_conn_free(g_c);
    return 0;
}

int main(void)
{
    int rc = eg_testenv_neo4j(&g_cfg);
    if (rc != 0)
        return rc;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bolt_tx__commit_visible_rollback_not),
        cmocka_unit_test(test_bolt_tx__uniqueness_violation_is_client_error),
        cmocka_unit_test(test_bolt_tx__syntax_error_then_usable),
        cmocka_unit_test(test_bolt_tx__paged_stream_and_early_free),
        cmocka_unit_test(test_bolt_tx__pipelined_many),
        cmocka_unit_test(test_bolt_tx__older_protocol_versions),
        cmocka_unit_test(test_bolt_tx__wrong_password),
        cmocka_unit_test(test_bolt_tx__tls_against_plain_port_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
