/*
 * test_access.c - the tokens file (mcp/access.h) and what a grant allows
 * through the server core: namespaces, read-only tokens, the default
 * namespace, and partitions of the in-memory backend that never mix.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/alloc.h"
#include "mcp/access.h"
#include "mcp/backend.h"
#include "mcp/server.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOK_A "team-a-token-0123456789"
#define TOK_B "team-b-token-0123456789"
#define TOK_R "reader-token-0123456789"

static const char FILE_OK[] =
    "{\"tokens\":["
    "{\"name\":\"team-a\",\"token\":\"" TOK_A "\",\"namespaces\":[\"team-a\"],\"write\":true},"
    "{\"name\":\"team-b\",\"token\":\"" TOK_B "\",\"namespaces\":[\"team-b\",\"default\"],\"write\":true},"
    "{\"name\":\"audit\",\"token\":\"" TOK_R "\",\"namespaces\":[\"team-a\",\"team-b\"]}"
    "]}";

static void test_access__parse_and_find(void **state)
{
    (void)state;
    mcp_access *a = NULL;
    eg_error err = {0};
    assert_int_equal(mcp_access_parse(&a, FILE_OK, "default", &err), 0);
    assert_int_equal(mcp_access_count(a), 3);
    const mcp_grant *ga = mcp_access_find(a, TOK_A), *gb = mcp_access_find(a, TOK_B), *gr = mcp_access_find(a, TOK_R);
    assert_non_null(ga);
    assert_non_null(gb);
    assert_non_null(gr);
    assert_null(mcp_access_find(a, "team-a-token-012345678"));   /* a prefix */
    assert_null(mcp_access_find(a, TOK_A "x"));
    assert_null(mcp_access_find(a, NULL));
    assert_string_equal(mcp_grant_name(ga), "team-a");
    assert_true(mcp_grant_can_write(ga));
    assert_false(mcp_grant_can_write(gr)); /* write defaults to false */
    /* default: the configured namespace when allowed, else the first */
    assert_string_equal(mcp_grant_namespace(ga, NULL), "team-a");
    assert_string_equal(mcp_grant_namespace(gb, NULL), "default");
    assert_string_equal(mcp_grant_namespace(gr, "team-b"), "team-b");
    assert_null(mcp_grant_namespace(ga, "team-b"));
    assert_null(mcp_grant_namespace(ga, "default"));
    char *d = mcp_grant_describe(gr);
    assert_string_equal(d, "team-a, team-b");
    eg_free(d);
    mcp_access_free(a);
}

static void test_access__malformed_files_are_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "[]",
        "{\"tokens\":[]}",
        "{\"tokens\":[{\"token\":\"short\",\"namespaces\":[\"a\"]}]}",
        "{\"tokens\":[{\"token\":\"" TOK_A "\",\"namespaces\":[]}]}",
        "{\"tokens\":[{\"token\":\"" TOK_A "\"}]}",
        "{\"tokens\":[{\"token\":\"" TOK_A "\",\"namespaces\":[\"\"]}]}",
        "{\"tokens\":[{\"token\":\"" TOK_A "\",\"namespaces\":[\"a\"],\"write\":\"yes\"}]}",
        "{\"tokens\":[{\"token\":\"" TOK_A "\",\"namespaces\":[\"a\"],\"admin\":true}]}",
        "{\"tokens\":[{\"token\":\"has space in it 12345\",\"namespaces\":[\"a\"]}]}",
        "{\"tokens\":[{\"token\":\"" TOK_A "\",\"namespaces\":[\"a\"]},"
        "{\"token\":\"" TOK_A "\",\"namespaces\":[\"b\"]}]}",
        "{\"tokens\":[{\"token\":\"" TOK_A "\",\"namespaces\":[\"a\"]}],\"tokens\":[]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mcp_access *a = NULL;
        eg_error err = {0};
        int rc = mcp_access_parse(&a, bad[i], "default", &err);
        if (rc != EG_EINVAL)
            fail_msg("case %zu accepted: %s", i, bad[i]);
        assert_null(a);
        /* the message never repeats a token */
        assert_null(strstr(err.message, TOK_A));
    }
}

static void test_access__file_permissions(void **state)
{
    (void)state;
    char path[] = "/tmp/engram-tokens-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, FILE_OK, strlen(FILE_OK)), (ssize_t)strlen(FILE_OK));
    close(fd);
    mcp_access *a = NULL;
    eg_error err = {0};
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(mcp_access_load(&a, path, "default", &err), 0);
    mcp_access_free(a);
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(mcp_access_load(&a, path, "default", &err), EG_EINVAL);
    assert_non_null(strstr(err.message, "chmod 600"));
    unlink(path);
    assert_int_equal(mcp_access_load(&a, path, "default", &err), EG_EIO);
}

/* ---- through the server core, on the in-memory backend ---- */

typedef struct sink {
    pthread_mutex_t mu;
    json_t *last;
} sink;

static void sink_emit(void *ud, const char *msg, size_t len)
{
    sink *k = ud;
    json_t *j = json_loadb(msg, len, 0, NULL);
    pthread_mutex_lock(&k->mu);
    json_decref(k->last);
    k->last = j;
    pthread_mutex_unlock(&k->mu);
}

/* tools/call name(args) on s; the CallToolResult (new), or NULL. */
static json_t *call(mcp_server *s, sink *k, const char *name, const char *args)
{
    static int id = 100;
    char buf[2048];
    snprintf(buf, sizeof buf,
             "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"tools/call\",\"params\":{\"name\":\"%s\",\"arguments\":%s}}",
             ++id, name, args);
    mcp_server_handle(s, buf, strlen(buf));
    pthread_mutex_lock(&k->mu);
    json_t *res = json_incref(json_object_get(k->last, "result"));
    pthread_mutex_unlock(&k->mu);
    return res;
}

static bool is_error(json_t *res)
{
    return json_is_true(json_object_get(res, "isError"));
}

static const char *text_of(json_t *res)
{
    return json_string_value(json_object_get(json_array_get(json_object_get(res, "content"), 0), "text"));
}

static mcp_server *server_for(const mcp_backend *be, const mcp_grant *g, sink *k)
{
    mcp_server_opts o = {.grant = g};
    mcp_server *s = mcp_server_new(&o, be, sink_emit, k, NULL);
    assert_non_null(s);
    const char *init = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":"
                       "\"2025-06-18\",\"capabilities\":{},\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}";
    mcp_server_handle(s, init, strlen(init));
    const char *done = "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}";
    mcp_server_handle(s, done, strlen(done));
    return s;
}

static size_t entities_in(json_t *res)
{
    return json_array_size(json_object_get(json_object_get(res, "structuredContent"), "entities"));
}

static void test_access__grants_through_the_server(void **state)
{
    (void)state;
    mcp_access *a = NULL;
    assert_int_equal(mcp_access_parse(&a, FILE_OK, "default", NULL), 0);
    mcp_backend be;
    assert_int_equal(mcp_backend_mem_new(&be, 0, NULL), 0);
    sink k = {.mu = PTHREAD_MUTEX_INITIALIZER};
    mcp_server *sa = server_for(&be, mcp_access_find(a, TOK_A), &k);
    mcp_server *sb = server_for(&be, mcp_access_find(a, TOK_B), &k);
    mcp_server *sr = server_for(&be, mcp_access_find(a, TOK_R), &k);
    mcp_server *stdio = server_for(&be, NULL, &k);

    /* team A writes without naming a namespace: its only one, team-a */
    json_t *r = call(sa, &k, "create_entities",
                     "{\"entities\":[{\"name\":\"Alice\",\"entityType\":\"person\",\"observations\":[\"on team A\"]}]}");
    assert_false(is_error(r));
    json_decref(r);
    /* team B writes to its default (the configured namespace, which it has) */
    r = call(sb, &k, "create_entities",
             "{\"entities\":[{\"name\":\"Bob\",\"entityType\":\"person\",\"observations\":[\"on team B\"]}]}");
    assert_false(is_error(r));
    json_decref(r);
    /* each sees only its own */
    r = call(sa, &k, "read_graph", "{}");
    assert_int_equal(entities_in(r), 1);
    assert_non_null(strstr(text_of(r), "Alice"));
    json_decref(r);
    r = call(sb, &k, "search_nodes", "{\"query\":\"team\"}");
    assert_int_equal(entities_in(r), 1);
    assert_non_null(strstr(text_of(r), "Bob"));
    json_decref(r);
    /* a namespace outside the grant: refused, nothing runs */
    r = call(sa, &k, "read_graph", "{\"namespace\":\"default\"}");
    assert_true(is_error(r));
    assert_non_null(strstr(text_of(r), "not open to this token"));
    assert_non_null(strstr(text_of(r), "team-a"));
    json_decref(r);
    r = call(sb, &k, "create_entities",
             "{\"namespace\":\"team-a\",\"entities\":[{\"name\":\"Mallory\",\"entityType\":\"x\",\"observations\":[]}]}");
    assert_true(is_error(r));
    json_decref(r);
    r = call(sa, &k, "open_nodes", "{\"names\":[\"Mallory\"]}");
    assert_int_equal(entities_in(r), 0);
    json_decref(r);
    /* the read-only token reads both teams, writes nowhere */
    r = call(sr, &k, "open_nodes", "{\"namespace\":\"team-a\",\"names\":[\"Alice\"]}");
    assert_int_equal(entities_in(r), 1);
    json_decref(r);
    r = call(sr, &k, "add_observations",
             "{\"namespace\":\"team-a\",\"observations\":[{\"entityName\":\"Alice\",\"contents\":[\"x\"]}]}");
    assert_true(is_error(r));
    assert_non_null(strstr(text_of(r), "may only read"));
    json_decref(r);
    r = call(sr, &k, "queue_retry_dead", "{\"namespace\":\"team-a\"}");
    assert_true(is_error(r));
    json_decref(r);
    /* its default is its first namespace (it lacks the configured one) */
    r = call(sr, &k, "read_graph", "{}");
    assert_int_equal(entities_in(r), 1);
    assert_non_null(strstr(text_of(r), "Alice"));
    json_decref(r);
    /* stdio: any namespace */
    r = call(stdio, &k, "read_graph", "{\"namespace\":\"team-b\"}");
    assert_false(is_error(r));
    assert_int_equal(entities_in(r), 0);
    json_decref(r);
    r = call(stdio, &k, "read_graph", "{\"namespace\":\"team-a\"}");
    assert_int_equal(entities_in(r), 1);
    json_decref(r);
    /* a namespace must be a non-empty string */
    r = call(stdio, &k, "read_graph", "{\"namespace\":\"\"}");
    assert_true(is_error(r));
    json_decref(r);

    mcp_server_free(sa);
    mcp_server_free(sb);
    mcp_server_free(sr);
    mcp_server_free(stdio);
    json_decref(k.last);
    mcp_backend_mem_free(&be);
    mcp_access_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_access__parse_and_find),
        cmocka_unit_test(test_access__malformed_files_are_refused),
        cmocka_unit_test(test_access__file_permissions),
        cmocka_unit_test(test_access__grants_through_the_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
