/*
 * test_jsonrpc.c - JSON-RPC framing: classification, ids, caps, errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/alloc.h"
#include "core/limits.h"
#include "mcp/jsonrpc.h"

#include <stdlib.h>
#include <string.h>

static mcp_msg parse(const char *s)
{
    mcp_msg m;
    mcp_jsonrpc_parse(&m, s, strlen(s));
    return m;
}

static void test_mcp_jsonrpc__request_and_notification(void **state)
{
    (void)state;
    mcp_msg m = parse("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}");
    assert_int_equal(m.kind, MCP_MSG_REQUEST);
    assert_string_equal(m.method, "ping");
    assert_int_equal(json_integer_value(m.id), 7);
    mcp_msg_clear(&m);
    m = parse("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
    assert_int_equal(m.kind, MCP_MSG_NOTIFICATION);
    assert_null(m.id);
    mcp_msg_clear(&m);
    m = parse("{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"result\":{}}");
    assert_int_equal(m.kind, MCP_MSG_RESPONSE);
    mcp_msg_clear(&m);
}

static void test_mcp_jsonrpc__invalid_messages(void **state)
{
    (void)state;
    struct {
        const char *text;
        int code;
        int has_id;
    } cases[] = {
        {"not json", MCP_JSONRPC_PARSE_ERROR, 0},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\"", MCP_JSONRPC_PARSE_ERROR, 0},
        {"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", MCP_JSONRPC_INVALID_REQUEST, 0},
        {"42", MCP_JSONRPC_INVALID_REQUEST, 0},
        {"{\"id\":1,\"method\":\"ping\"}", MCP_JSONRPC_INVALID_REQUEST, 1},
        {"{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}", MCP_JSONRPC_INVALID_REQUEST, 1},
        {"{\"jsonrpc\":\"2.0\",\"id\":1}", MCP_JSONRPC_INVALID_REQUEST, 1},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}", MCP_JSONRPC_INVALID_REQUEST, 1},
        {"{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}", MCP_JSONRPC_INVALID_REQUEST, 0},
        {"{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}", MCP_JSONRPC_INVALID_REQUEST, 0},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":[1]}", MCP_JSONRPC_INVALID_REQUEST, 1},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"ping\"}", MCP_JSONRPC_PARSE_ERROR, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mcp_msg m = parse(cases[i].text);
        assert_int_equal(m.kind, MCP_MSG_INVALID);
        assert_int_equal(m.err_code, cases[i].code);
        assert_true(m.err_msg[0] != '\0');
        if (cases[i].has_id)
            assert_non_null(m.id);
        else
            assert_null(m.id);
        mcp_msg_clear(&m);
    }
}

static void test_mcp_jsonrpc__invalid_utf8_and_nul(void **state)
{
    (void)state;
    const char bad[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\xff\xfe\"}";
    mcp_msg m;
    mcp_jsonrpc_parse(&m, bad, sizeof bad - 1);
    assert_int_equal(m.kind, MCP_MSG_INVALID);
    assert_int_equal(m.err_code, MCP_JSONRPC_PARSE_ERROR);
    mcp_msg_clear(&m);
    const char nul[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"a\\u0000b\"}";
    mcp_jsonrpc_parse(&m, nul, sizeof nul - 1);
    assert_int_equal(m.kind, MCP_MSG_INVALID);
    mcp_msg_clear(&m);
}

static void test_mcp_jsonrpc__depth_cap(void **state)
{
    (void)state;
    size_t n = EG_LIMIT_MCP_JSON_DEPTH + 10;
    char *s = malloc(2 * n + 64);
    size_t len = (size_t)sprintf(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{\"a\":");
    for (size_t i = 0; i < n; i++)
        s[len++] = '[';
    for (size_t i = 0; i < n; i++)
        s[len++] = ']';
    s[len++] = '}';
    s[len++] = '}';
    mcp_msg m;
    mcp_jsonrpc_parse(&m, s, len);
    assert_int_equal(m.kind, MCP_MSG_INVALID);
    assert_int_equal(m.err_code, MCP_JSONRPC_INVALID_REQUEST);
    assert_non_null(strstr(m.err_msg, "deep"));
    mcp_msg_clear(&m);
    /* brackets inside strings do not count */
    assert_int_equal(mcp_jsonrpc_depth("{\"a\":\"[[[[[[\\\"[[[\"}", 19, 3), 1);
    free(s);
}

/* A message of n copies of item inside params.a (new, caller frees). */
static char *many(const char *item, size_t n, size_t *len)
{
    size_t il = strlen(item);
    char *s = malloc(n * (il + 1) + 128);
    size_t l = (size_t)sprintf(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{\"a\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            s[l++] = ',';
        memcpy(s + l, item, il);
        l += il;
    }
    l += (size_t)sprintf(s + l, "]}}");
    *len = l;
    return s;
}

/* Issue 14, finding 3: the number of values and containers is capped by
 * the pre-scan, before jansson builds a tree 30-80 times the text. */
static void test_mcp_jsonrpc__value_caps(void **state)
{
    (void)state;
    struct {
        const char *item;
        size_t n;
        const char *why; /* NULL: accepted */
    } cases[] = {
        {"0", EG_LIMIT_MCP_JSON_VALUES - 16, NULL},
        {"0", EG_LIMIT_MCP_JSON_VALUES + 1, "too many JSON values"},
        {"{}", EG_LIMIT_MCP_JSON_CONTAINERS - 16, NULL},
        {"{}", EG_LIMIT_MCP_JSON_CONTAINERS + 1, "too many JSON objects"},
        {"\"a,b,[c]\"", EG_LIMIT_MCP_JSON_CONTAINERS + 1, NULL}, /* commas and brackets in strings do not count */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = 0;
        char *s = many(cases[i].item, cases[i].n, &len);
        assert_true(len <= EG_LIMIT_MCP_LINE);
        mcp_msg m;
        mcp_jsonrpc_parse(&m, s, len);
        if (cases[i].why) {
            assert_int_equal(m.kind, MCP_MSG_INVALID);
            assert_int_equal(m.err_code, MCP_JSONRPC_INVALID_REQUEST);
            assert_non_null(strstr(m.err_msg, cases[i].why));
            assert_null(m.root); /* refused before parsing */
        } else {
            assert_int_equal(m.kind, MCP_MSG_REQUEST);
        }
        mcp_msg_clear(&m);
        free(s);
    }
}

static void test_mcp_jsonrpc__build_and_dump(void **state)
{
    (void)state;
    json_t *id = json_string("x\ny");
    json_t *r = mcp_jsonrpc_error(id, -32601, "nope", NULL);
    size_t len = 0;
    char *t = mcp_jsonrpc_dump(r, &len);
    assert_non_null(t);
    assert_null(memchr(t, '\n', len)); /* one message per line */
    assert_string_equal(t, "{\"jsonrpc\":\"2.0\",\"id\":\"x\\ny\",\"error\":{\"code\":-32601,\"message\":\"nope\"}}");
    eg_free(t);
    json_decref(r);
    char *k1 = mcp_jsonrpc_id_key(id);
    json_t *n = json_integer(5);
    char *k2 = mcp_jsonrpc_id_key(n);
    assert_string_equal(k1, "s:x\ny");
    assert_string_equal(k2, "i:5");
    eg_free(k1);
    eg_free(k2);
    json_decref(n);
    json_decref(id);
    r = mcp_jsonrpc_error(NULL, -32700, "parse", json_string("d"));
    assert_true(json_is_null(json_object_get(r, "id")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "error"), "data")), "d");
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mcp_jsonrpc__request_and_notification),
        cmocka_unit_test(test_mcp_jsonrpc__invalid_messages),
        cmocka_unit_test(test_mcp_jsonrpc__invalid_utf8_and_nul),
        cmocka_unit_test(test_mcp_jsonrpc__depth_cap),
        cmocka_unit_test(test_mcp_jsonrpc__value_caps),
        cmocka_unit_test(test_mcp_jsonrpc__build_and_dump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
