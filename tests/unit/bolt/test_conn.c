/*
 * test_conn.c - the Bolt connection against the scripted fake server:
 * version negotiation, HELLO/LOGON, streaming, paging, failures, pipelining,
 * transactions, dropped connections and timeouts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "bolt/conn.h"
#include "core/alloc.h"
#include "support/fake_bolt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { HELLO = 0x01, GOODBYE = 0x02, RESET = 0x0F, RUN = 0x10, BEGIN = 0x11, COMMIT = 0x12,
       ROLLBACK = 0x13, DISCARD = 0x2F, PULL = 0x3F, LOGON = 0x6A };

/* Like assert_int_equal, but shows the error message and the fake server's complaint. */
#define assert_rc(expr, want)                                                                  \
    do {                                                                                       \
        int rc_ = (expr);                                                                      \
        if (rc_ != (want))                                                                     \
            fail_msg("%s = %d (%s), want %d; err: %s; server: %s", #expr, rc_, eg_strerror(rc_), \
                     (int)(want), err.message, fb && fake_bolt_error(fb) ? fake_bolt_error(fb) : "-"); \
    } while (0)

static bolt_config cfg_for(const fake_bolt *fb)
{
    bolt_config cfg = BOLT_CONFIG_INIT;
    cfg.uri = fake_bolt_uri(fb);
    cfg.user = "neo4j";
    cfg.password = "s3cret";
    cfg.connect_timeout_ms = 3000;
    return cfg;
}

static const char *fstr(fake_bolt *fb, size_t msg, const char *key)
{
    return bolt_value_cstr(bolt_value_get(fake_bolt_received_field(fb, msg, 0), key));
}

static void test_bolt_conn__negotiates_5_8_with_logon(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_hello(fb, 5, 8);
    fake_bolt_start(fb);
    bolt_config cfg = cfg_for(fb);
    bolt_conn *c = NULL;
    eg_error err;
    assert_rc(bolt_conn_open(&c, &cfg, &err), 0);
    int ma, mi;
    bolt_conn_version(c, &ma, &mi);
    assert_int_equal(ma, 5);
    assert_int_equal(mi, 8);
    assert_string_equal(bolt_conn_server_agent(c), "Neo4j/5.26.0");
    assert_string_equal(bolt_conn_connection_id(c), "bolt-7");
    bolt_conn_free(c);
    assert_int_equal(fake_bolt_wait(fb), 0);
    const uint8_t *p = fake_bolt_proposals(fb);
    static const uint8_t want[16] = {0, 8, 8, 5, 0, 0, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(p, want, 16);
    /* HELLO: agent info, no credentials; LOGON: the credentials. */
    assert_int_equal(fake_bolt_received_sig(fb, 0), HELLO);
    assert_non_null(fstr(fb, 0, "user_agent"));
    const bolt_value *agent = bolt_value_get(fake_bolt_received_field(fb, 0, 0), "bolt_agent");
    assert_non_null(bolt_value_cstr(bolt_value_get(agent, "product")));
    assert_null(fstr(fb, 0, "scheme"));
    assert_null(fstr(fb, 0, "credentials"));
    assert_null(bolt_value_get(fake_bolt_received_field(fb, 0, 0), "routing"));
    assert_int_equal(fake_bolt_received_sig(fb, 1), LOGON);
    assert_string_equal(fstr(fb, 1, "scheme"), "basic");
    assert_string_equal(fstr(fb, 1, "principal"), "neo4j");
    assert_string_equal(fstr(fb, 1, "credentials"), "s3cret");
    fake_bolt_free(fb);
}

static void test_bolt_conn__5_0_sends_auth_in_hello(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_hello(fb, 5, 0);
    fake_bolt_start(fb);
    bolt_config cfg = cfg_for(fb);
    cfg.max_minor_5 = 0; /* still proposes 5.8..5.0: server picks 5.0 */
    bolt_conn *c = NULL;
    eg_error err;
    assert_rc(bolt_conn_open(&c, &cfg, &err), 0);
    int ma, mi;
    bolt_conn_version(c, &ma, &mi);
    assert_int_equal(ma * 10 + mi, 50);
    bolt_conn_free(c);
    assert_int_equal(fake_bolt_wait(fb), 0);
    assert_string_equal(fstr(fb, 0, "scheme"), "basic");
    assert_string_equal(fstr(fb, 0, "credentials"), "s3cret");
    assert_null(bolt_value_get(fake_bolt_received_field(fb, 0, 0), "bolt_agent"));
    assert_true(fake_bolt_nreceived(fb) == 1 || fake_bolt_received_sig(fb, 1) != LOGON);
    fake_bolt_free(fb);
}

static void test_bolt_conn__max_minor_hook_limits_proposal(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_hello(fb, 5, 2);
    fake_bolt_start(fb);
    bolt_config cfg = cfg_for(fb);
    cfg.max_minor_5 = 2;
    bolt_conn *c = NULL;
    eg_error err;
    assert_rc(bolt_conn_open(&c, &cfg, &err), 0);
    bolt_conn_free(c);
    assert_int_equal(fake_bolt_wait(fb), 0);
    static const uint8_t want[8] = {0, 2, 2, 5, 0, 0, 4, 4};
    assert_memory_equal(fake_bolt_proposals(fb), want, 8);
    fake_bolt_free(fb);
}

static void test_bolt_conn__negotiates_4_4(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_hello(fb, 4, 4);
    fake_bolt_start(fb);
    bolt_config cfg = cfg_for(fb);
    cfg.disable_5 = true;
    bolt_conn *c = NULL;
    eg_error err;
    assert_rc(bolt_conn_open(&c, &cfg, &err), 0);
    int ma, mi;
    bolt_conn_version(c, &ma, &mi);
    assert_int_equal(ma * 10 + mi, 44);
    bolt_conn_free(c);
    assert_int_equal(fake_bolt_wait(fb), 0);
    static const uint8_t want[16] = {0, 0, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_memory_equal(fake_bolt_proposals(fb), want, 16);
    assert_string_equal(fstr(fb, 0, "principal"), "neo4j");
    fake_bolt_free(fb);
}

static void test_bolt_conn__no_common_version(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_handshake(fb, 0);
    fake_bolt_start(fb);
    bolt_config cfg = cfg_for(fb);
    bolt_conn *c = NULL;
    eg_error err;
    assert_rc(bolt_conn_open(&c, &cfg, &err), EG_EUNSUPPORTED);
    assert_null(c);
    assert_int_equal(fake_bolt_wait(fb), 0);
    fake_bolt_free(fb);
}

static void test_bolt_conn__http_port_detected(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_handshake(fb, 0x48545450u);
    fake_bolt_start(fb);
    bolt_config cfg = cfg_for(fb);
    bolt_conn *c = NULL;
    eg_error err;
    assert_rc(bolt_conn_open(&c, &cfg, &err), EG_EPROTO);
    assert_non_null(strstr(err.message, "HTTP"));
    assert_int_equal(fake_bolt_wait(fb), 0);
    fake_bolt_free(fb);
}

static void test_bolt_conn__bad_credentials_is_eauth(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_handshake(fb, 0x00000805);
    fake_bolt_expect(fb, HELLO);
    fake_bolt_expect(fb, LOGON);
    fake_bolt_success(fb, "{\"server\":\"Neo4j/5.26.0\",\"connection_id\":\"bolt-1\"}");
    fake_bolt_failure(fb, "Neo.ClientError.Security.Unauthorized",
                      "The client is unauthorized due to authentication failure.");
    fake_bolt_close(fb);
    fake_bolt_start(fb);
    bolt_config cfg = cfg_for(fb);
    bolt_conn *c = NULL;
    eg_error err;
    assert_rc(bolt_conn_open(&c, &cfg, &err), EG_EAUTH);
    assert_string_equal(err.neo4j_code, "Neo.ClientError.Security.Unauthorized");
    assert_non_null(strstr(err.message, "unauthorized"));
    assert_null(strstr(err.message, "s3cret"));
    assert_int_equal(fake_bolt_wait(fb), 0);
    fake_bolt_free(fb);
}

static void test_bolt_conn__routing_context_for_neo4j_scheme(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_hello(fb, 5, 8);
    fake_bolt_start(fb);
    char uri[128];
    snprintf(uri, sizeof uri, "neo4j://127.0.0.1:%d?region=eu%%2Dwest&policy=x", fake_bolt_port(fb));
    bolt_config cfg = cfg_for(fb);
    cfg.uri = uri;
    bolt_conn *c = NULL;
    eg_error err;
    assert_rc(bolt_conn_open(&c, &cfg, &err), 0);
    bolt_conn_free(c);
    assert_int_equal(fake_bolt_wait(fb), 0);
    const bolt_value *routing = bolt_value_get(fake_bolt_received_field(fb, 0, 0), "routing");
    assert_int_equal(bolt_value_len(routing), 3);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", fake_bolt_port(fb));
    assert_string_equal(bolt_value_cstr(bolt_value_get(routing, "address")), addr);
    assert_string_equal(bolt_value_cstr(bolt_value_get(routing, "region")), "eu-west");
    fake_bolt_free(fb);
}

/* RUN+PULL pipelined, records, NOOPs before and between messages. */
static void test_bolt_conn__run_streams_records_skipping_noops(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_hello(fb, 5, 8);
    fake_bolt_expect(fb, RUN);
    fake_bolt_expect(fb, PULL);
    fake_bolt_noop(fb);
    fake_bolt_noop(fb);
    fake_bolt_success(fb, "{\"fields\":[\"a\",\"b\"],\"t_first\":1}");
    fake_bolt_noop(fb);
    fake_bolt_record(fb, "[1,\"one\"]");
    fake_bolt_noop(fb);
    fake_bolt_record(fb, "[2,\"two\"]");
    fake_bolt_success(fb, "{\"type\":\"r\",\"bookmark\":\"bm:1\"}");
    fake_bolt_expect(fb, GOODBYE);
    fake_bolt_start(fb);
    bolt_config cfg = cfg_for(fb);
    bolt_conn *c = NULL;
    eg_error err;
    assert_rc(bolt_conn_open(&c, &cfg, &err), 0);
    bolt_params *p = bolt_params_new();
    bolt_params_int(p, "x", 42);
    bolt_result *r = NULL;
    assert_rc(bolt_conn_run(c, "RETURN $x", p, NULL, &r, &err), 0);
    assert_int_equal(bolt_result_nfields(r), 2);
    assert_string_equal(bolt_result_field(r, 1), "b");
    assert_int_equal(bolt_result_field_index(r, "b"), 1);
    assert_int_equal(bolt_result_field_index(r, "zz"), -1);
    const bolt_value *rec;
    assert_rc(bolt_result_next(r, &rec, &err), 1);
    assert_int_equal(bolt_value_int(bolt_value_at(rec, 0), 0), 1);
    assert_rc(bolt_result_next(r, &rec, &err), 1);
    assert_string_equal(bolt_value_cstr(bolt_value_at(rec, 1)), "two");
    assert_rc(bolt_result_next(r, &rec, &err), 0);
    assert_string_equal(bolt_value_cstr(bolt_value_get(bolt_result_summary(r), "type")), "r");
    bolt_result_free(r);
    assert_string_equal(bolt_conn_last_bookmark(c), "bm:1");
    bolt_params_free(p);
    bolt_conn_free(c);
    assert_int_equal(fake_bolt_wait(fb), 0);
    /* RUN: query, params {x:42}, extra {} ; PULL {n:1000} */
    assert_string_equal(bolt_value_cstr(fake_bolt_received_field(fb, 2, 0)), "RETURN $x");
    assert_int_equal(bolt_value_int(bolt_value_get(fake_bolt_received_field(fb, 2, 1), "x"), 0), 42);
    assert_int_equal(bolt_value_int(bolt_value_get(fake_bolt_received_field(fb, 3, 0), "n"), 0), 1000);
    fake_bolt_free(fb);
}

static void test_bolt_conn__failure_ignored_reset(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_hello(fb, 5, 8);
    fake_bolt_expect(fb, RUN);
    fake_bolt_expect(fb, PULL);
    fake_bolt_failure(fb, "Neo.ClientError.Statement.SyntaxError", "Invalid input 'RETRUN'");
    fake_bolt_ignored(fb);
    fake_bolt_expect(fb, RESET);
    fake_bolt_success(fb, "{}");
    /* The connection is READY again. */
    fake_bolt_expect(fb, RUN);
    fake_bolt_expect(fb, PULL);
    fake_bolt_success(fb, "{\"fields\":[\"x\"]}");
    fake_bolt_record(fb, "[1]");
    fake_bolt_success(fb, "{}");
    fake_bolt_start(fb);
    bolt_config cfg = cfg_for(fb);
    bolt_conn *c = NULL;
    eg_error err;
    assert_rc(bolt_conn_open(&c, &cfg, &err), 0);
    bolt_result *r = NULL;
    assert_rc(bolt_conn_run(c, "RETRUN 1", NULL, NULL, &r, &err), EG_ECLIENT);
    assert_null(r);
    assert_int_equal(err.klass, EG_CLASS_CLIENT);
    assert_false(err.retryable);
    assert_string_equal(err.neo4j_code, "Neo.ClientError.Statement.SyntaxError");
    assert_false(bolt_conn_is_defunct(c));
    json_t *rows = NULL;
    assert_rc(bolt_conn_query_json(c, "RETURN 1 AS x", NULL, NULL, &rows, &err), 0);
    assert_int_equal(json_array_size(rows), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "x")), 1);
    json_decref(rows);
    bolt_conn_free(c);
    assert_int_equal(fake_bolt_wait(fb), 0);
    fake_bolt_free(fb);
}

static void test_bolt_conn__transient_failure_is_retryable(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_hello(fb, 5, 8);
    fake_bolt_expect(fb, RUN);
    fake_bolt_expect(fb, PULL);
    fake_bolt_success(fb, "{\"fields\":[\"x\"]}");
    fake_bolt_failure(fb, "Neo.TransientError.Transaction.DeadlockDetected", "deadlock");
    fake_bolt_expect(fb, RESET);
    fake_bolt_success(fb, "{}");
    fake_bolt_start(fb);
    bolt_config cfg = cfg_for(fb);
    bolt_conn *c = NULL;
    eg_error err;
    assert_rc(bolt_conn_open(&c, &cfg, &err), 0);
    bolt_result *r = NULL;
    assert_rc(bolt_conn_run(c, "MATCH (n) SET n.x = 1", NULL, NULL, &r, &err), 0);
    const bolt_value *rec;
    assert_rc(bolt_result_next(r, &rec, &err), EG_ETRANSIENT);
    assert_true(err.retryable);
    assert_int_equal(err.klass, EG_CLASS_TRANSIENT);
    /* Sticky on the result. */
    assert_rc(bolt_result_next(r, &rec, &err), EG_ETRANSIENT);
    bolt_result_free(r);
    assert_false(bolt_conn_is_defunct(c));
    bolt_conn_free(c);
    assert_int_equal(fake_bolt_wait(fb), 0);
    fake_bolt_free(fb);
}

static void test_bolt_conn__pull_pages_with_has_more(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_hello(fb, 5, 8);
    fake_bolt_expect(fb, RUN);
    fake_bolt_expect(fb, PULL);
    fake_bolt_success(fb, "{\"fields\":[\"i\"]}");
    fake_bolt_record(fb, "[1]");
    fake_bolt_record(fb, "[2]");
    fake_bolt_success(fb, "{\"has_more\":true}");
    fake_bolt_expect(fb, PULL);
    fake_bolt_record(fb, "[3]");
    fake_bolt_record(fb, "[4]");
    fake_bolt_success(fb, "{\"has_more\":true}");
    fake_bolt_expect(fb, PULL);
    fake_bolt_record(fb, "[5]");
    fake_bolt_success(fb, "{\"type\":\"r\"}");
    fake_bolt_start(fb);
    bolt_config cfg = cfg_for(fb);
    bolt_conn *c = NULL;
    eg_error err;
    assert_rc(bolt_conn_open(&c, &cfg, &err), 0);
    bolt_tx_opts o = BOLT_TX_OPTS_INIT;
    o.fetch_size = 2;
    bolt_result *r = NULL;
    assert_rc(bolt_conn_run(c, "UNWIND range(1,5) AS i RETURN i", NULL, &o, &r, &err), 0);
    const bolt_value *rec;
    int64_t sum = 0, n = 0;
    int rc;
    while ((rc = bolt_result_next(r, &rec, &err)) == 1) {
        sum += bolt_value_int(bolt_value_at(rec, 0), 0);
        n++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(n, 5);
    assert_int_equal(sum, 15);
    bolt_result_free(r);
    bolt_conn_free(c);
    assert_int_equal(fake_bolt_wait(fb), 0);
    assert_int_equal(bolt_value_int(bolt_value_get(fake_bolt_received_field(fb, 3, 0), "n"), 0), 2);
    assert_int_equal(bolt_value_int(bolt_value_get(fake_bolt_received_field(fb, 4, 0), "n"), 0), 2);
    fake_bolt_free(fb);
}

static void test_bolt_conn__free_unread_result_discards(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_hello(fb, 5, 8);
    fake_bolt_expect(fb, RUN);
    fake_bolt_expect(fb, PULL);
    fake_bolt_success(fb, "{\"fields\":[\"i\"]}");
    fake_bolt_record(fb, "[1]");
    fake_bolt_success(fb, "{\"has_more\":true}");
    fake_bolt_expect(fb, DISCARD);
    fake_bolt_success(fb, "{\"type\":\"r\"}");
    fake_bolt_expect(fb, RUN);
    fake_bolt_expect(fb, PULL);
    fake_bolt_success(fb, "{\"fields\":[]}");
    fake_bolt_success(fb, "{\"stats\":{\"nodes-created\":3}}");
    fake_bolt_start(fb);
    bolt_config cfg = cfg_for(fb);
    bolt_conn *c = NULL;
    eg_error err;
    assert_rc(bolt_conn_open(&c, &cfg, &err), 0);
    bolt_tx_opts o = BOLT_TX_OPTS_INIT;
    o.fetch_size = 1;
    bolt_result *r = NULL;
    assert_rc(bolt_conn_run(c, "UNWIND range(1,5) AS i RETURN i", NULL, &o, &r, &err), 0);
    bolt_result_free(r);
    json_t *stats = NULL;
    assert_rc(bolt_conn_exec(c, "CREATE (),(),()", NULL, NULL, &stats, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(stats, "nodes-created")), 3);
    json_decref(stats);
    bolt_conn_free(c);
    assert_int_equal(fake_bolt_wait(fb), 0);
    assert_int_equal(bolt_value_int(bolt_value_get(fake_bolt_received_field(fb, 4, 0), "n"), 0), -1);
    /* exec pulls everything at once */
    assert_int_equal(bolt_value_int(bolt_value_get(fake_bolt_received_field(fb, 6, 0), "n"), 0), -1);
    fake_bolt_free(fb);
}

static void test_bolt_conn__tx_begin_pipelined_commit_bookmark(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_hello(fb, 5, 8);
    /* BEGIN, RUN and PULL all arrive before the server answers anything. */
    fake_bolt_expect(fb, BEGIN);
    fake_bolt_expect(fb, RUN);
    fake_bolt_expect(fb, PULL);
    fake_bolt_success(fb, "{}");
    fake_bolt_success(fb, "{\"fields\":[\"x\"],\"qid\":0}");
    fake_bolt_record(fb, "[7]");
    fake_bolt_success(fb, "{}");
    fake_bolt_expect(fb, COMMIT);
    fake_bolt_success(fb, "{\"bookmark\":\"FB:kcwQ\"}");
    fake_bolt_start(fb);
    bolt_config cfg = cfg_for(fb);
    bolt_conn *c = NULL;
    eg_error err;
    assert_rc(bolt_conn_open(&c, &cfg, &err), 0);
    bolt_tx_opts o = BOLT_TX_OPTS_INIT;
    const char *bms[] = {"FB:old"};
    o.bookmarks = bms;
    o.nbookmarks = 1;
    o.timeout_ms = 5000;
    o.database = "neo4j";
    o.read_only = true;
    json_t *meta = json_pack("{s:s}", "app", "engram");
    o.metadata = meta;
    assert_rc(bolt_conn_begin(c, &o, &err), 0);
    assert_true(bolt_conn_in_tx(c));
    json_t *rows = NULL;
    assert_rc(bolt_conn_query_json(c, "RETURN 7 AS x", NULL, NULL, &rows, &err), 0);
    json_decref(rows);
    char *bm = NULL;
    assert_rc(bolt_conn_commit(c, &bm, &err), 0);
    assert_string_equal(bm, "FB:kcwQ");
    eg_free(bm);
    assert_false(bolt_conn_in_tx(c));
    bolt_conn_free(c);
    json_decref(meta);
    assert_int_equal(fake_bolt_wait(fb), 0);
    const bolt_value *b = fake_bolt_received_field(fb, 2, 0);
    assert_string_equal(bolt_value_cstr(bolt_value_get(b, "mode")), "r");
    assert_string_equal(bolt_value_cstr(bolt_value_get(b, "db")), "neo4j");
    assert_int_equal(bolt_value_int(bolt_value_get(b, "tx_timeout"), 0), 5000);
    assert_string_equal(bolt_value_cstr(bolt_value_at(bolt_value_get(b, "bookmarks"), 0)), "FB:old");
    assert_string_equal(bolt_value_cstr(bolt_value_get(bolt_value_get(b, "tx_metadata"), "app")), "engram");
    /* RUN inside a transaction has an empty extra map. */
    assert_int_equal(bolt_value_len(fake_bolt_received_field(fb, 3, 2)), 0);
    fake_bolt_free(fb);
}

static void test_bolt_conn__failure_in_tx_kills_tx(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_hello(fb, 5, 8);
    fake_bolt_expect(fb, BEGIN);
    fake_bolt_expect(fb, RUN);
    fake_bolt_expect(fb, PULL);
    fake_bolt_success(fb, "{}");
    fake_bolt_failure(fb, "Neo.ClientError.Schema.ConstraintValidationFailed", "already exists");
    fake_bolt_ignored(fb);
    fake_bolt_expect(fb, RESET);
    fake_bolt_success(fb, "{}");
    fake_bolt_start(fb);
    bolt_config cfg = cfg_for(fb);
    bolt_conn *c = NULL;
    eg_error err;
    assert_rc(bolt_conn_open(&c, &cfg, &err), 0);
    assert_rc(bolt_conn_begin(c, NULL, &err), 0);
    assert_rc(bolt_conn_exec(c, "CREATE (:U {id:1})", NULL, NULL, NULL, &err), EG_ECLIENT);
    assert_true(bolt_conn_in_tx(c));
    /* A later query must not silently run outside the transaction. */
    assert_rc(bolt_conn_exec(c, "RETURN 1", NULL, NULL, NULL, &err), EG_ECLIENT);
    assert_rc(bolt_conn_commit(c, NULL, &err), EG_ECLIENT);
    assert_string_equal(err.neo4j_code, "Neo.ClientError.Schema.ConstraintValidationFailed");
    assert_rc(bolt_conn_rollback(c, &err), 0);
    assert_false(bolt_conn_in_tx(c));
    bolt_conn_free(c);
    assert_int_equal(fake_bolt_wait(fb), 0);
    fake_bolt_free(fb);
}

static void test_bolt_conn__lazy_runs_are_pipelined(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_hello(fb, 5, 8);
    fake_bolt_expect(fb, RUN);
    fake_bolt_expect(fb, PULL);
    fake_bolt_expect(fb, RUN);
    fake_bolt_expect(fb, PULL);
    fake_bolt_success(fb, "{\"fields\":[\"a\"]}");
    fake_bolt_record(fb, "[1]");
    fake_bolt_success(fb, "{}");
    fake_bolt_success(fb, "{\"fields\":[\"b\"]}");
    fake_bolt_record(fb, "[2]");
    fake_bolt_success(fb, "{}");
    fake_bolt_start(fb);
    bolt_config cfg = cfg_for(fb);
    bolt_conn *c = NULL;
    eg_error err;
    assert_rc(bolt_conn_open(&c, &cfg, &err), 0);
    bolt_result *r1 = NULL, *r2 = NULL;
    assert_rc(bolt_conn_run_lazy(c, "RETURN 1 AS a", NULL, NULL, &r1, &err), 0);
    assert_rc(bolt_conn_run_lazy(c, "RETURN 2 AS b", NULL, NULL, &r2, &err), 0);
    assert_rc(bolt_conn_flush(c, &err), 0);
    const bolt_value *rec;
    /* Reading out of order is refused, not silently mixed up. */
    assert_rc(bolt_result_next(r2, &rec, &err), EG_EINVAL);
    assert_rc(bolt_result_next(r1, &rec, &err), 1);
    assert_string_equal(bolt_result_field(r1, 0), "a");
    assert_rc(bolt_result_next(r1, &rec, &err), 0);
    assert_rc(bolt_result_next(r2, &rec, &err), 1);
    assert_int_equal(bolt_value_int(bolt_value_at(rec, 0), 0), 2);
    assert_rc(bolt_result_next(r2, &rec, &err), 0);
    bolt_result_free(r1);
    bolt_result_free(r2);
    bolt_conn_free(c);
    assert_int_equal(fake_bolt_wait(fb), 0);
    fake_bolt_free(fb);
}

static void test_bolt_conn__lazy_failure_fails_later_ones(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_hello(fb, 5, 8);
    fake_bolt_expect(fb, RUN);
    fake_bolt_expect(fb, PULL);
    fake_bolt_expect(fb, RUN);
    fake_bolt_expect(fb, PULL);
    fake_bolt_failure(fb, "Neo.ClientError.Statement.SyntaxError", "bad");
    fake_bolt_ignored(fb);
    fake_bolt_ignored(fb);
    fake_bolt_ignored(fb);
    fake_bolt_expect(fb, RESET);
    fake_bolt_success(fb, "{}");
    fake_bolt_start(fb);
    bolt_config cfg = cfg_for(fb);
    bolt_conn *c = NULL;
    eg_error err;
    assert_rc(bolt_conn_open(&c, &cfg, &err), 0);
    bolt_result *r1 = NULL, *r2 = NULL;
    assert_rc(bolt_conn_run_lazy(c, "RETRUN 1", NULL, NULL, &r1, &err), 0);
    assert_rc(bolt_conn_run_lazy(c, "RETURN 2", NULL, NULL, &r2, &err), 0);
    const bolt_value *rec;
    assert_rc(bolt_result_next(r1, &rec, &err), EG_ECLIENT);
    assert_rc(bolt_result_next(r2, &rec, &err), EG_ECLIENT);
    assert_string_equal(err.neo4j_code, "Neo.ClientError.Statement.SyntaxError");
    bolt_result_free(r2);
    bolt_result_free(r1);
    bolt_conn_free(c);
    assert_int_equal(fake_bolt_wait(fb), 0);
    fake_bolt_free(fb);
}

/*
 * A window of pipelined queries allocates about one result struct per query:
 * results take their arenas from the connection's cache when their replies
 * arrive, not two fresh 64 KiB arenas each when queued (which made a window
 * of 100 lazy runs cost 400 allocations).
 */
static void test_bolt_conn__lazy_window_reuses_arenas(void **state)
{
    (void)state;
    enum { N = 40 };
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_hello(fb, 5, 8);
    for (int i = 0; i < N; i++) {
        fake_bolt_expect(fb, RUN);
        fake_bolt_expect(fb, PULL);
    }
    for (int i = 0; i < N; i++) {
        char rec[32];
        snprintf(rec, sizeof rec, "[%d]", i);
        fake_bolt_success(fb, "{\"fields\":[\"x\"]}");
        fake_bolt_record(fb, rec);
        fake_bolt_success(fb, "{\"type\":\"r\"}");
    }
    fake_bolt_start(fb);
    bolt_config cfg = cfg_for(fb);
    bolt_conn *c = NULL;
    eg_error err;
    assert_rc(bolt_conn_open(&c, &cfg, &err), 0);
    bolt_result *res[N];
    (void)eg_alloc_fail_at(0, 0); /* start counting */
    for (int i = 0; i < N; i++)
        assert_rc(bolt_conn_run_lazy(c, "RETURN $x AS x", NULL, NULL, &res[i], &err), 0);
    assert_rc(bolt_conn_flush(c, &err), 0);
    for (int i = 0; i < N; i++) {
        const bolt_value *rec;
        assert_rc(bolt_result_next(res[i], &rec, &err), 1);
        assert_int_equal(bolt_value_int(bolt_value_at(rec, 0), -1), i);
        assert_string_equal(bolt_result_field(res[i], 0), "x");
        assert_rc(bolt_result_next(res[i], &rec, &err), 0);
        assert_string_equal(bolt_value_cstr(bolt_value_get(bolt_result_summary(res[i]), "type")), "r");
        bolt_result_free(res[i]);
    }
    unsigned long allocs = eg_alloc_fail_at(0, 0);
    /* N result structs plus a few buffer and queue growths. */
    if (allocs > N + N / 2)
        fail_msg("%lu allocations for %d pipelined queries", allocs, N);
    bolt_conn_free(c);
    assert_int_equal(fake_bolt_wait(fb), 0);
    fake_bolt_free(fb);
}

static void test_bolt_conn__drop_mid_stream_makes_defunct(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_hello(fb, 5, 8);
    fake_bolt_expect(fb, RUN);
    fake_bolt_expect(fb, PULL);
    fake_bolt_success(fb, "{\"fields\":[\"i\"]}");
    fake_bolt_record(fb, "[1]");
    fake_bolt_raw(fb, "\x00\x05\xB1\x71\x91", 5); /* half a record */
    fake_bolt_close(fb);
    fake_bolt_start(fb);
    bolt_config cfg = cfg_for(fb);
    bolt_conn *c = NULL;
    eg_error err;
    assert_rc(bolt_conn_open(&c, &cfg, &err), 0);
    bolt_result *r = NULL;
    assert_rc(bolt_conn_run(c, "UNWIND range(1,9) AS i RETURN i", NULL, NULL, &r, &err), 0);
    const bolt_value *rec;
    assert_rc(bolt_result_next(r, &rec, &err), 1);
    int rc = bolt_result_next(r, &rec, &err);
    assert_int_equal(rc, EG_EIO);
    assert_int_equal(err.klass, EG_CLASS_CONNECTION);
    assert_true(err.retryable);
    assert_true(bolt_conn_is_defunct(c));
    bolt_result_free(r);
    assert_rc(bolt_conn_run(c, "RETURN 1", NULL, NULL, &r, &err), EG_ECLOSED);
    assert_rc(bolt_conn_reset(c, &err), EG_ECLOSED);
    bolt_conn_free(c);
    assert_int_equal(fake_bolt_wait(fb), 0);
    fake_bolt_free(fb);
}

static void test_bolt_conn__read_timeout(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_hello(fb, 5, 8);
    fake_bolt_expect(fb, RUN);
    fake_bolt_expect(fb, PULL);
    fake_bolt_sleep(fb, 600);
    fake_bolt_start(fb);
    bolt_config cfg = cfg_for(fb);
    cfg.read_timeout_ms = 150;
    bolt_conn *c = NULL;
    eg_error err;
    assert_rc(bolt_conn_open(&c, &cfg, &err), 0);
    bolt_result *r = NULL;
    assert_rc(bolt_conn_run(c, "CALL apoc.util.sleep(10000)", NULL, NULL, &r, &err), EG_ETIMEOUT);
    assert_int_equal(err.klass, EG_CLASS_CONNECTION);
    assert_true(bolt_conn_is_defunct(c));
    bolt_conn_free(c);
    assert_int_equal(fake_bolt_wait(fb), 0);
    fake_bolt_free(fb);
}

static void test_bolt_conn__reset_cancels_stream(void **state)
{
    (void)state;
    fake_bolt *fb = fake_bolt_new();
    fake_bolt_hello(fb, 5, 8);
    fake_bolt_expect(fb, RUN);
    fake_bolt_expect(fb, PULL);
    fake_bolt_success(fb, "{\"fields\":[\"i\"]}");
    fake_bolt_record(fb, "[1]");
    fake_bolt_success(fb, "{\"has_more\":true}");
    fake_bolt_expect(fb, RESET);
    fake_bolt_success(fb, "{}");
    fake_bolt_start(fb);
    bolt_config cfg = cfg_for(fb);
    bolt_conn *c = NULL;
    eg_error err;
    assert_rc(bolt_conn_open(&c, &cfg, &err), 0);
    bolt_tx_opts o = BOLT_TX_OPTS_INIT;
    o.fetch_size = 1;
    bolt_result *r = NULL;
    assert_rc(bolt_conn_run(c, "UNWIND range(1,9) AS i RETURN i", NULL, &o, &r, &err), 0);
    const bolt_value *rec;
    assert_rc(bolt_result_next(r, &rec, &err), 1);
    /* the PULL SUCCESS {has_more} is still unread: reset consumes it */
    assert_rc(bolt_conn_reset(c, &err), 0);
    assert_rc(bolt_result_next(r, &rec, &err), EG_ECANCELED);
    bolt_result_free(r);
    bolt_conn_free(c);
    assert_int_equal(fake_bolt_wait(fb), 0);
    fake_bolt_free(fb);
}

static void test_bolt_conn__bad_uri_and_refused(void **state)
{
    (void)state;
    bolt_config cfg = BOLT_CONFIG_INIT;
    bolt_conn *c = NULL;
    eg_error err;
    fake_bolt *fb = NULL;
    cfg.uri = "http://127.0.0.1:7474";
    assert_rc(bolt_conn_open(&c, &cfg, &err), EG_EINVAL);
    /* A port nothing listens on: find one by binding and closing. */
    fb = fake_bolt_new();
    char uri[64];
    snprintf(uri, sizeof uri, "%s", fake_bolt_uri(fb));
    fake_bolt_free(fb);
    fb = NULL;
    cfg.uri = uri;
    cfg.connect_timeout_ms = 2000;
    assert_rc(bolt_conn_open(&c, &cfg, &err), EG_EIO);
    assert_int_equal(err.klass, EG_CLASS_CONNECTION);
    assert_null(c);
}

/* Allocation N fails, for every N: no crash, no leak (ASan), a clean error. */
static void test_bolt_conn__allocation_failures(void **state)
{
    (void)state;
    bool reached_end = false;
    for (unsigned long i = 1; i < 2000 && !reached_end; i++) {
        fake_bolt *fb = fake_bolt_new();
        fake_bolt_hello(fb, 5, 8);
        fake_bolt_expect(fb, RUN);
        fake_bolt_expect(fb, PULL);
        fake_bolt_success(fb, "{\"fields\":[\"x\"]}");
        fake_bolt_record(fb, "[{\"a\":[1,2,\"three\"]}]");
        fake_bolt_success(fb, "{\"type\":\"r\"}");
        fake_bolt_start(fb);
        bolt_config cfg = cfg_for(fb);
        eg_error err;
        if (getenv("TORTURE_DEBUG"))
            fprintf(stderr, "iteration %lu\n", i);
        eg_alloc_fail_at(i, 0);
        bolt_conn *c = NULL;
        int rc = bolt_conn_open(&c, &cfg, &err);
        if (rc == 0) {
            bolt_params *p = bolt_params_new();
            if (p)
                bolt_params_int(p, "x", 1);
            json_t *rows = NULL;
            rc = bolt_conn_query_json(c, "RETURN $x AS x", p, NULL, &rows, &err);
            json_decref(rows);
            bolt_params_free(p);
        }
        if (rc < 0)
            assert_true(err.code != 0);
        bolt_conn_free(c);
        unsigned long used = eg_alloc_fail_at(0, 0);
        reached_end = used < i && rc == 0;
        fake_bolt_abort(fb); /* the client may never have connected */
        fake_bolt_wait(fb);  /* the script may fail: the client gave up */
        fake_bolt_free(fb);
    }
    assert_true(reached_end);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bolt_conn__negotiates_5_8_with_logon),
        cmocka_unit_test(test_bolt_conn__5_0_sends_auth_in_hello),
        cmocka_unit_test(test_bolt_conn__max_minor_hook_limits_proposal),
        cmocka_unit_test(test_bolt_conn__negotiates_4_4),
        cmocka_unit_test(test_bolt_conn__no_common_version),
        cmocka_unit_test(test_bolt_conn__http_port_detected),
        cmocka_unit_test(test_bolt_conn__bad_credentials_is_eauth),
        cmocka_unit_test(test_bolt_conn__routing_context_for_neo4j_scheme),
        cmocka_unit_test(test_bolt_conn__run_streams_records_skipping_noops),
        cmocka_unit_test(test_bolt_conn__failure_ignored_reset),
        cmocka_unit_test(test_bolt_conn__transient_failure_is_retryable),
        cmocka_unit_test(test_bolt_conn__pull_pages_with_has_more),
        cmocka_unit_test(test_bolt_conn__free_unread_result_discards),
        cmocka_unit_test(test_bolt_conn__tx_begin_pipelined_commit_bookmark),
        cmocka_unit_test(test_bolt_conn__failure_in_tx_kills_tx),
        cmocka_unit_test(test_bolt_conn__lazy_runs_are_pipelined),
        cmocka_unit_test(test_bolt_conn__lazy_failure_fails_later_ones),
        cmocka_unit_test(test_bolt_conn__lazy_window_reuses_arenas),
        cmocka_unit_test(test_bolt_conn__drop_mid_stream_makes_defunct),
        cmocka_unit_test(test_bolt_conn__read_timeout),
        cmocka_unit_test(test_bolt_conn__reset_cancels_stream),
        cmocka_unit_test(test_bolt_conn__bad_uri_and_refused),
        cmocka_unit_test(test_bolt_conn__allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
