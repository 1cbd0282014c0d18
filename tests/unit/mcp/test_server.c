/*
 * test_server.c - the MCP server core against the in-memory backend and a
 * slow test backend: lifecycle, negotiation, pagination, tools/call,
 * cancellation, progress, logging, error paths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "mcp/backend.h"
#include "mcp/jsonrpc.h"
#include "mcp/schema_validate.h"
#include "mcp/server.h"
#include "mcp/tools.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

/* ---- a transport double: collects every emitted message ---- */

typedef struct sink {
    pthread_mutex_t mu;
    json_t *msgs;
} sink;

static void sink_emit(void *ud, const char *msg, size_t len)
{
    sink *k = ud;
    assert_null(memchr(msg, '\n', len)); /* one message per line */
    json_t *v = json_loadb(msg, len, 0, NULL);
    assert_non_null(v);
    pthread_mutex_lock(&k->mu);
    json_array_append_new(k->msgs, v);
    pthread_mutex_unlock(&k->mu);
}

static void sink_init(sink *k)
{
    pthread_mutex_init(&k->mu, NULL);
    k->msgs = json_array();
}

static void sink_free(sink *k)
{
    json_decref(k->msgs);
    pthread_mutex_destroy(&k->mu);
}

/* Response with this integer id, or NULL. Borrowed. */
static json_t *find_resp(sink *k, json_int_t id)
{
    json_t *found = NULL;
    pthread_mutex_lock(&k->mu);
    size_t i;
    json_t *m;
    json_array_foreach(k->msgs, i, m)
    {
        json_t *mid = json_object_get(m, "id");
        if (json_is_integer(mid) && json_integer_value(mid) == id && !json_object_get(m, "method"))
            found = m;
    }
    pthread_mutex_unlock(&k->mu);
    return found;
}

static size_t count_method(sink *k, const char *method)
{
    size_t n = 0;
    pthread_mutex_lock(&k->mu);
    size_t i;
    json_t *m;
    json_array_foreach(k->msgs, i, m)
    {
        const char *mm = json_string_value(json_object_get(m, "method"));
        if (mm && strcmp(mm, method) == 0)
            n++;
    }
    pthread_mutex_unlock(&k->mu);
    return n;
}

static json_t *wait_resp(sink *k, json_int_t id, int ms)
{
    for (int i = 0; i < ms; i += 5) {
        json_t *r = find_resp(k, id);
        if (r)
            return r;
        eg_sleep_ms(5);
    }
    return NULL;
}

static void send(mcp_server *s, const char *text)
{
    mcp_server_handle(s, text, strlen(text));
}

static void sendf(mcp_server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sendf(mcp_server *s, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    send(s, buf);
}

static int err_code(json_t *resp)
{
    return (int)json_integer_value(json_object_get(json_object_get(resp, "error"), "code"));
}

static void init_session(mcp_server *s, sink *k)
{
    send(s, "{\"jsonrpc\":\"2.0\",\"id\":1000,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-06-18\","
            "\"capabilities\":{},\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}");
    assert_non_null(json_object_get(find_resp(k, 1000), "result"));
    send(s, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
}

/* ---- tests ---- */

static void test_mcp_server__version_negotiation(void **state)
{
    (void)state;
    mcp_backend be;
    assert_int_equal(mcp_backend_mem_new(&be, 0, NULL), 0);
    struct {
        const char *sent; /* NULL: no protocolVersion */
        const char *expect;
    } cases[] = {{"2025-11-25", "2025-11-25"}, {"2025-06-18", "2025-06-18"}, {"2025-03-26", "2025-03-26"},
                 {"2024-11-05", "2024-11-05"}, {"1999-01-01", "2025-11-25"}, {"2026-07-28", "2025-11-25"},
                 {NULL, "2025-11-25"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sink k;
        sink_init(&k);
        mcp_server *s = mcp_server_new(NULL, &be, sink_emit, &k, NULL);
        assert_non_null(s);
        if (cases[i].sent)
            sendf(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"%s\"}}",
                  cases[i].sent);
        else
            send(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{}}");
        json_t *res = json_object_get(find_resp(&k, 1), "result");
        assert_non_null(res);
        assert_string_equal(json_string_value(json_object_get(res, "protocolVersion")), cases[i].expect);
        assert_string_equal(mcp_server_protocol_version(s), cases[i].expect);
        assert_non_null(json_object_get(json_object_get(res, "capabilities"), "tools"));
        assert_non_null(json_object_get(json_object_get(res, "capabilities"), "logging"));
        assert_string_equal(json_string_value(json_object_get(json_object_get(res, "serverInfo"), "name")), "engram");
        /* a second initialize is refused */
        send(s, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"initialize\",\"params\":{}}");
        assert_int_equal(err_code(find_resp(&k, 2)), MCP_JSONRPC_INVALID_REQUEST);
        mcp_server_free(s);
        sink_free(&k);
    }
    mcp_backend_mem_free(&be);
}

static void test_mcp_server__lifecycle_and_errors(void **state)
{
    (void)state;
    mcp_backend be;
    assert_int_equal(mcp_backend_mem_new(&be, 0, NULL), 0);
    sink k;
    sink_init(&k);
    mcp_server *s = mcp_server_new(NULL, &be, sink_emit, &k, NULL);
    /* before initialize: ping works, the rest does not */
    send(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}");
    assert_int_equal(json_object_size(json_object_get(find_resp(&k, 1), "result")), 0);
    assert_non_null(json_object_get(find_resp(&k, 1), "result"));
    send(s, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}");
    assert_int_equal(err_code(find_resp(&k, 2)), MCP_JSONRPC_NOT_INITIALIZED);
    init_session(s, &k);
    send(s, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"resources/list\"}");
    assert_int_equal(err_code(find_resp(&k, 3)), MCP_JSONRPC_METHOD_NOT_FOUND);
    /* notifications never get an answer, known or not */
    size_t before = json_array_size(k.msgs);
    send(s, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/whatever\"}");
    send(s, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{\"requestId\":999}}");
    send(s, "{\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{}}"); /* a stray response */
    assert_int_equal(json_array_size(k.msgs), before);
    /* garbage gets a parse error with id null */
    send(s, "{oops");
    json_t *last = json_array_get(k.msgs, json_array_size(k.msgs) - 1);
    assert_true(json_is_null(json_object_get(last, "id")));
    assert_int_equal(err_code(last), MCP_JSONRPC_PARSE_ERROR);
    /* tools/call without a name, with an unknown tool, with bad arguments */
    send(s, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"tools/call\",\"params\":{}}");
    assert_int_equal(err_code(find_resp(&k, 6)), MCP_JSONRPC_INVALID_PARAMS);
    send(s, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"nope\"}}");
    assert_int_equal(err_code(find_resp(&k, 7)), MCP_JSONRPC_INVALID_PARAMS);
    send(s, "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"tools/call\",\"params\":{\"name\":\"open_nodes\",\"arguments\":[1]}}");
    assert_int_equal(err_code(find_resp(&k, 8)), MCP_JSONRPC_INVALID_PARAMS);
    send(s, "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/call\",\"params\":{\"name\":\"open_nodes\",\"arguments\":{}}}");
    json_t *res = json_object_get(find_resp(&k, 9), "result");
    assert_true(json_is_true(json_object_get(res, "isError")));
    const char *text = json_string_value(json_object_get(json_array_get(json_object_get(res, "content"), 0), "text"));
    assert_non_null(strstr(text, "missing required property 'names'"));
    /* logging/setLevel */
    send(s, "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"logging/setLevel\",\"params\":{\"level\":\"loud\"}}");
    assert_int_equal(err_code(find_resp(&k, 10)), MCP_JSONRPC_INVALID_PARAMS);
    send(s, "{\"jsonrpc\":\"2.0\",\"id\":11,\"method\":\"logging/setLevel\",\"params\":{\"level\":\"warning\"}}");
    assert_non_null(json_object_get(find_resp(&k, 11), "result"));
    mcp_server_free(s);
    sink_free(&k);
    mcp_backend_mem_free(&be);
}

static void test_mcp_server__log_forwarding(void **state)
{
    (void)state;
    mcp_backend be;
    assert_int_equal(mcp_backend_mem_new(&be, 0, NULL), 0);
    sink k;
    sink_init(&k);
    mcp_server *s = mcp_server_new(NULL, &be, sink_emit, &k, NULL);
    mcp_server_forward_logs(s);
    init_session(s, &k);
    eg_log_set_level(EG_LOG_OFF - 1); /* keep stderr quiet; critical still passes */
    eg_log(EG_LOG_CRITICAL, "test", "before setLevel");
    assert_int_equal(count_method(&k, "notifications/message"), 0);
    send(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"logging/setLevel\",\"params\":{\"level\":\"error\"}}");
    eg_log(EG_LOG_CRITICAL, "test", "after setLevel");
    assert_int_equal(count_method(&k, "notifications/message"), 1);
    json_t *last = json_array_get(k.msgs, json_array_size(k.msgs) - 1);
    json_t *p = json_object_get(last, "params");
    assert_string_equal(json_string_value(json_object_get(p, "level")), "critical");
    assert_string_equal(json_string_value(json_object_get(p, "logger")), "test");
    assert_string_equal(json_string_value(json_object_get(p, "data")), "after setLevel");
    send(s, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"logging/setLevel\",\"params\":{\"level\":\"emergency\"}}");
    eg_log(EG_LOG_CRITICAL, "test", "filtered");
    assert_int_equal(count_method(&k, "notifications/message"), 1);
    eg_log_set_level(EG_LOG_INFO);
    mcp_server_free(s);
    sink_free(&k);
    mcp_backend_mem_free(&be);
}

static void test_mcp_server__tools_list_pagination(void **state)
{
    (void)state;
    mcp_backend be;
    assert_int_equal(mcp_backend_mem_new(&be, 0, NULL), 0);
    sink k;
    sink_init(&k);
    mcp_server_opts o = {.page_size = 5};
    mcp_server *s = mcp_server_new(&o, &be, sink_emit, &k, NULL);
    init_session(s, &k);
    json_t *names = json_object();
    char cursor[64] = "";
    int pages = 0;
    for (json_int_t id = 1; id < 50; id++) {
        if (cursor[0])
            sendf(s, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":\"tools/list\",\"params\":{\"cursor\":\"%s\"}}",
                  (long long)id, cursor);
        else
            sendf(s, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":\"tools/list\"}", (long long)id);
        json_t *res = json_object_get(find_resp(&k, id), "result");
        assert_non_null(res);
        pages++;
        json_t *tools = json_object_get(res, "tools");
        assert_true(json_array_size(tools) >= 1 && json_array_size(tools) <= 5);
        size_t i;
        json_t *t;
        json_array_foreach(tools, i, t)
        {
            const char *n = json_string_value(json_object_get(t, "name"));
            assert_null(json_object_get(names, n)); /* no tool twice */
            json_object_set_new(names, n, json_true());
            assert_non_null(json_object_get(t, "inputSchema"));
            assert_non_null(json_object_get(t, "outputSchema"));
            json_t *ann = json_object_get(t, "annotations");
            assert_true(json_is_boolean(json_object_get(ann, "readOnlyHint")));
            assert_true(json_is_false(json_object_get(ann, "openWorldHint")));
        }
        const char *next = json_string_value(json_object_get(res, "nextCursor"));
        if (!next)
            break;
        snprintf(cursor, sizeof cursor, "%s", next);
    }
    assert_int_equal(json_object_size(names), mcp_tools_count());
    assert_int_equal(pages, (int)((mcp_tools_count() + 4) / 5));
    const char *memento[] = {"create_entities", "create_relations", "add_observations", "delete_entities",
                             "delete_observations", "delete_relations", "get_relation", "update_relation",
                             "read_graph", "search_nodes", "open_nodes", "semantic_search",
                             "get_entity_embedding", "get_entity_history", "get_relation_history",
                             "get_graph_at_time", "get_decayed_graph", "force_generate_embedding",
                             "debug_embedding_config", "diagnose_vector_search", "hybrid_search"};
    for (size_t i = 0; i < sizeof memento / sizeof memento[0]; i++)
        assert_non_null(json_object_get(names, memento[i]));
    /* bad cursors */
    const char *bad[] = {"\"zzz\"", "\"t0\"", "\"t99999\"", "5", "\"t3x\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sendf(s, "{\"jsonrpc\":\"2.0\",\"id\":%zu,\"method\":\"tools/list\",\"params\":{\"cursor\":%s}}", 100 + i, bad[i]);
        assert_int_equal(err_code(find_resp(&k, (json_int_t)(100 + i))), MCP_JSONRPC_INVALID_PARAMS);
    }
    json_decref(names);
    mcp_server_free(s);
    sink_free(&k);
    mcp_backend_mem_free(&be);
}

/* Every tool, called with plausible arguments: results conform to the outputSchema. */
static void test_mcp_server__every_tool_output_conforms(void **state)
{
    (void)state;
    mcp_backend be;
    assert_int_equal(mcp_backend_mem_new(&be, 0, NULL), 0);
    const char *calls[][2] = {
        {"create_entities", "{\"entities\":[{\"name\":\"Ada\",\"entityType\":\"person\",\"observations\":[\"wrote the first program\"]},"
                            "{\"name\":\"Engine\",\"entityType\":\"machine\",\"observations\":\"[\\\"analytical\\\"]\"}]}"},
        {"create_entities", "{\"entities\":[{\"name\":\"Ada\",\"entityType\":\"person\",\"observations\":[\"mathematician\"]}]}"},
        {"create_relations", "{\"relations\":[{\"from\":\"Ada\",\"to\":\"Engine\",\"relationType\":\"programmed\",\"confidence\":0.9},"
                             "{\"from\":\"Ada\",\"to\":\"Nobody\",\"relationType\":\"knows\"}]}"},
        {"create_relations", "{\"relations\":[{\"from\":\"Ada\",\"to\":\"Engine\",\"relationType\":\"programmed\"}]}"},
        {"add_observations", "{\"observations\":[{\"entityName\":\"Ada\",\"contents\":[\"born 1815\"]}]}"},
        {"delete_observations", "{\"deletions\":[{\"entityName\":\"Ada\",\"observations\":[\"born 1815\"]}]}"},
        {"get_relation", "{\"from\":\"Ada\",\"to\":\"Engine\",\"relationType\":\"programmed\"}"},
        {"get_relation", "{\"from\":\"Ada\",\"to\":\"Engine\",\"relationType\":\"none\"}"},
        {"update_relation", "{\"relation\":{\"from\":\"Ada\",\"to\":\"Engine\",\"relationType\":\"programmed\",\"strength\":\"0.5\"}}"},
        {"read_graph", "{}"},
        {"search_nodes", "{\"query\":\"ada\"}"},
        {"open_nodes", "{\"names\":[\"Ada\",\"Engine\"]}"},
        {"semantic_search", "{\"query\":\"program\",\"min_similarity\":0}"},
        {"hybrid_search", "{\"query\":\"program\",\"semantic_weight\":0.3}"},
        {"get_entity_embedding", "{\"entity_name\":\"Ada\"}"},
        {"get_entity_history", "{\"entityName\":\"Ada\"}"},
        {"get_relation_history", "{\"from\":\"Ada\",\"to\":\"Engine\",\"relationType\":\"programmed\"}"},
        {"get_graph_at_time", "{\"timestamp\":1}"},
        {"get_decayed_graph", "{\"decay_factor\":1,\"reference_time\":4102444800000}"},
        {"force_generate_embedding", "{\"entity_name\":\"Engine\"}"},
        {"debug_embedding_config", "{}"},
        {"diagnose_vector_search", "{}"},
        {"queue_status", "{}"},
        {"queue_list_jobs", "{\"status\":\"completed\",\"limit\":2}"},
        {"queue_retry_dead", "{}"},
        {"delete_relations", "{\"relations\":[{\"from\":\"Ada\",\"to\":\"Engine\",\"relationType\":\"programmed\"}]}"},
        {"delete_entities", "{\"entityNames\":[\"Engine\",\"Ghost\"]}"},
    };
    json_t *seen = json_object();
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        json_t *args = json_loads(calls[i][1], 0, NULL);
        assert_non_null(args);
        json_t *res = NULL;
        eg_error err;
        assert_int_equal(mcp_tools_call(&be, calls[i][0], args, NULL, &res, &err), 0);
        json_decref(args);
        if (json_is_true(json_object_get(res, "isError")))
            fail_msg("%s: %s", calls[i][0],
                     json_string_value(json_object_get(json_array_get(json_object_get(res, "content"), 0), "text")));
        json_t *sc = json_object_get(res, "structuredContent");
        assert_true(json_is_object(sc));
        /* the same JSON as text */
        json_t *again = json_loads(json_string_value(json_object_get(json_array_get(json_object_get(res, "content"), 0), "text")), 0, NULL);
        assert_true(json_equal(again, sc));
        json_decref(again);
        const mcp_tool *t = mcp_tools_find(calls[i][0]);
        json_t *copy = json_deep_copy(sc);
        if (mcp_schema_validate(t->output_schema, &copy, 0, NULL, &err) != 0)
            fail_msg("%s output: %s", calls[i][0], err.message);
        json_decref(copy);
        json_object_set_new(seen, calls[i][0], json_true());
        json_decref(res);
    }
    assert_int_equal(json_object_size(seen), mcp_tools_count()); /* every tool called */
    /* behaviour spot checks */
    json_t *res = NULL;
    json_t *args = json_loads("{\"entityName\":\"Ada\"}", 0, NULL);
    assert_int_equal(mcp_tools_call(&be, "get_entity_history", args, NULL, &res, NULL), 0);
    /* v1 created, v2 merged "mathematician", v3 added, v4 deleted */
    assert_int_equal(json_array_size(json_object_get(json_object_get(res, "structuredContent"), "history")), 4);
    json_decref(res);
    json_decref(args);
    json_decref(seen);
    mcp_backend_mem_free(&be);
}

/* ---- a slow backend for cancellation and progress ---- */

static atomic_int g_slow_started;
static atomic_int g_slow_saw_cancel;

static int slow_read_graph(void *self, const json_t *args, mcp_call_ctx *ctx, json_t **out, eg_error *err)
{
    (void)self;
    (void)args;
    atomic_store(&g_slow_started, 1);
    for (int i = 1; i <= 400; i++) { /* at most ~4 s */
        if (mcp_call_cancelled(ctx)) {
            atomic_store(&g_slow_saw_cancel, 1);
            return EG_ECANCELED;
        }
        mcp_call_progress(ctx, i, 400, i == 1 ? "started" : NULL);
        eg_sleep_ms(10);
    }
    *out = json_pack("{s:[], s:[], s:i}", "entities", "relations", "total", 0);
    (void)err;
    return 0;
}

static void test_mcp_server__cancellation_while_ping_is_served(void **state)
{
    (void)state;
    mcp_backend be = {0};
    be.read_graph = slow_read_graph;
    sink k;
    sink_init(&k);
    mcp_server_opts o = {.workers = 2};
    mcp_server *s = mcp_server_new(&o, &be, sink_emit, &k, NULL);
    init_session(s, &k);
    atomic_store(&g_slow_started, 0);
    atomic_store(&g_slow_saw_cancel, 0);
    send(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"read_graph\",\"_meta\":{\"progressToken\":\"p1\"}}}");
    for (int i = 0; i < 400 && !atomic_load(&g_slow_started); i++)
        eg_sleep_ms(5);
    assert_true(atomic_load(&g_slow_started));
    /* the reader is free: ping answers while the call runs */
    send(s, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}");
    assert_non_null(wait_resp(&k, 2, 1000));
    assert_null(find_resp(&k, 1));
    /* a duplicate id while in flight is refused */
    send(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"read_graph\"}}");
    assert_int_equal(err_code(wait_resp(&k, 1, 1000)), MCP_JSONRPC_INVALID_REQUEST);
    eg_sleep_ms(50);
    assert_true(count_method(&k, "notifications/progress") >= 1);
    send(s, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{\"requestId\":1,\"reason\":\"user\"}}");
    mcp_server_drain(s);
    assert_true(atomic_load(&g_slow_saw_cancel));
    /* only the duplicate-id error carries id 1: the cancelled call sent nothing */
    size_t ones = 0;
    size_t i;
    json_t *m;
    json_array_foreach(k.msgs, i, m) if (json_integer_value(json_object_get(m, "id")) == 1) ones++;
    assert_int_equal(ones, 1);
    /* progress values increase */
    double last = -1;
    json_array_foreach(k.msgs, i, m)
    {
        const char *meth = json_string_value(json_object_get(m, "method"));
        if (meth && !strcmp(meth, "notifications/progress")) {
            json_t *p = json_object_get(m, "params");
            assert_string_equal(json_string_value(json_object_get(p, "progressToken")), "p1");
            double v = json_number_value(json_object_get(p, "progress"));
            assert_true(v > last);
            last = v;
        }
    }
    mcp_server_free(s);
    sink_free(&k);
}

static void test_mcp_server__no_progress_without_token_and_drain_answers(void **state)
{
    (void)state;
    mcp_backend be = {0};
    be.read_graph = slow_read_graph;
    sink k;
    sink_init(&k);
    mcp_server_opts o = {.workers = 1};
    mcp_server *s = mcp_server_new(&o, &be, sink_emit, &k, NULL);
    init_session(s, &k);
    /* string id, no progress token: the result arrives after drain, no progress */
    send(s, "{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"tools/call\",\"params\":{\"name\":\"read_graph\",\"arguments\":\"{}\"}}");
    mcp_server_drain(s);
    assert_int_equal(count_method(&k, "notifications/progress"), 0);
    json_t *last = json_array_get(k.msgs, json_array_size(k.msgs) - 1);
    assert_string_equal(json_string_value(json_object_get(last, "id")), "a");
    assert_non_null(json_object_get(json_object_get(last, "result"), "structuredContent"));
    /* a tool the backend lacks is an isError result, not a crash */
    send(s, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"queue_status\"}}");
    mcp_server_drain(s);
    json_t *r = json_object_get(find_resp(&k, 3), "result");
    assert_true(json_is_true(json_object_get(r, "isError")));
    mcp_server_free(s);
    sink_free(&k);
}

/* The 2026-07-28 era on the same server: no initialize, the version in
 * every request's _meta, results marked complete and carrying our
 * identity, list and discover results cacheable; a legacy session on the
 * same transport keeps working and keeps its own result shapes. */
#define MODERN_META "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"%s\"," \
                    "\"io.modelcontextprotocol/clientCapabilities\":{}}"

static const char *server_name_of(json_t *res)
{
    json_t *info = json_object_get(json_object_get(res, "_meta"), "io.modelcontextprotocol/serverInfo");
    return json_string_value(json_object_get(info, "name"));
}

static void test_mcp_server__modern_era(void **state)
{
    (void)state;
    mcp_backend be;
    assert_int_equal(mcp_backend_mem_new(&be, 0, NULL), 0);
    sink k;
    sink_init(&k);
    mcp_server_opts o = {.instructions = "use me"};
    mcp_server *s = mcp_server_new(&o, &be, sink_emit, &k, NULL);
    assert_non_null(s);

    /* discover, before (and without) any initialize */
    sendf(s, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server/discover\",\"params\":{" MODERN_META "}}",
          "2026-07-28");
    json_t *res = json_object_get(find_resp(&k, 1), "result");
    assert_non_null(res);
    assert_string_equal(json_string_value(json_object_get(res, "resultType")), "complete");
    json_t *sv = json_object_get(res, "supportedVersions");
    assert_string_equal(json_string_value(json_array_get(sv, 0)), "2026-07-28");
    assert_string_equal(json_string_value(json_array_get(sv, 1)), "2025-11-25");
    assert_non_null(json_object_get(json_object_get(res, "capabilities"), "tools"));
    assert_null(json_object_get(json_object_get(res, "capabilities"), "logging"));
    assert_string_equal(json_string_value(json_object_get(res, "instructions")), "use me");
    assert_string_equal(server_name_of(res), "engram");
    assert_true(json_integer_value(json_object_get(res, "ttlMs")) > 0);
    assert_string_equal(json_string_value(json_object_get(res, "cacheScope")), "public");

    /* tools/list and tools/call without a session */
    sendf(s, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\",\"params\":{" MODERN_META "}}",
          "2026-07-28");
    res = json_object_get(find_resp(&k, 2), "result");
    assert_int_equal(json_array_size(json_object_get(res, "tools")), mcp_tools_count());
    assert_string_equal(json_string_value(json_object_get(res, "resultType")), "complete");
    assert_string_equal(json_string_value(json_object_get(res, "cacheScope")), "public");
    assert_true(json_integer_value(json_object_get(res, "ttlMs")) > 0);
    sendf(s,
          "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{\"name\":\"create_entities\","
          "\"arguments\":{\"entities\":[{\"name\":\"m\",\"entityType\":\"t\",\"observations\":[]}]}," MODERN_META "}}",
          "2026-07-28");
    res = json_object_get(wait_resp(&k, 3, 2000), "result");
    assert_non_null(json_object_get(res, "content"));
    assert_false(json_is_true(json_object_get(res, "isError")));
    assert_string_equal(json_string_value(json_object_get(res, "resultType")), "complete");
    assert_string_equal(server_name_of(res), "engram");
    assert_null(json_object_get(res, "ttlMs")); /* tool results are not cacheable */

    /* a version we do not serve: the error lists the ones we do */
    sendf(s, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/list\",\"params\":{" MODERN_META "}}",
          "1900-01-01");
    json_t *e = json_object_get(find_resp(&k, 4), "error");
    assert_int_equal(json_integer_value(json_object_get(e, "code")), MCP_JSONRPC_UNSUPPORTED_VERSION);
    assert_string_equal(json_string_value(json_object_get(json_object_get(e, "data"), "requested")), "1900-01-01");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(json_object_get(e, "data"), "supported"), 0)),
        "2026-07-28");
    /* methods this era removed, and a version that is not a string */
    sendf(s, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\",\"params\":{" MODERN_META "}}", "2026-07-28");
    assert_int_equal(err_code(find_resp(&k, 5)), MCP_JSONRPC_METHOD_NOT_FOUND);
    sendf(s, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"logging/setLevel\",\"params\":{\"level\":\"debug\"," MODERN_META "}}",
          "2026-07-28");
    assert_int_equal(err_code(find_resp(&k, 6)), MCP_JSONRPC_METHOD_NOT_FOUND);
    send(s, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/list\",\"params\":{\"_meta\":{"
            "\"io.modelcontextprotocol/protocolVersion\":7}}}");
    assert_int_equal(err_code(find_resp(&k, 7)), MCP_JSONRPC_INVALID_PARAMS);

    /* a request without the _meta version is legacy: not initialized yet */
    send(s, "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"tools/list\"}");
    assert_int_equal(err_code(find_resp(&k, 8)), MCP_JSONRPC_NOT_INITIALIZED);
    /* a legacy session next to modern requests: each keeps its shapes */
    init_session(s, &k);
    send(s, "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/list\"}");
    res = json_object_get(find_resp(&k, 9), "result");
    assert_non_null(json_object_get(res, "tools"));
    assert_null(json_object_get(res, "resultType"));
    assert_null(json_object_get(res, "ttlMs"));
    sendf(s, "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"server/discover\",\"params\":{" MODERN_META "}}",
          "2026-07-28");
    assert_non_null(json_object_get(find_resp(&k, 10), "result"));
    /* no log notification is ever sent to a modern client that did not ask */
    assert_int_equal(count_method(&k, "notifications/message"), 0);
    mcp_server_free(s);
    sink_free(&k);
    mcp_backend_mem_free(&be);
}

/*
 * Issue 14, finding 8: a result over the message cap (64 MiB) used to be
 * dropped silently and the client waited for ever.  Now the request gets a
 * -32603 error with its id, at the default cap and at a configured one.
 */
static void test_mcp_server__oversized_result_is_answered(void **state)
{
    (void)state;
    mcp_backend be;
    assert_int_equal(mcp_backend_mem_new(&be, 0, NULL), 0);
    sink k;
    sink_init(&k);
    mcp_server *s = mcp_server_new(NULL, &be, sink_emit, &k, NULL);
    init_session(s, &k);
    /* ~36 MB of observations on one entity: read_graph returns them twice
     * (structuredContent and its JSON text), over 64 MiB in all */
    size_t obs = 4000000;
    eg_buf msg = EG_BUF_INIT((size_t)16 << 20);
    for (int call = 0; call < 3; call++) {
        eg_buf_reset(&msg);
        eg_buf_printf(&msg, "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"tools/call\",\"params\":{\"name\":"
                      "\"%s\",\"arguments\":{", 10 + call, call == 0 ? "create_entities" : "add_observations");
        eg_buf_puts(&msg, call == 0 ? "\"entities\":[{\"name\":\"big\",\"entityType\":\"t\",\"observations\":["
                                    : "\"observations\":[{\"entityName\":\"big\",\"contents\":[");
        for (int o = 0; o < 3; o++) {
            eg_buf_printf(&msg, "%s\"%d", o ? "," : "", call * 3 + o);
            for (size_t i = 0; i < obs / 64; i++)
                eg_buf_puts(&msg, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
            eg_buf_puts(&msg, "\"");
        }
        eg_buf_puts(&msg, "]}]}}}");
        mcp_server_handle(s, msg.ptr, msg.len);
        json_t *r = find_resp(&k, 10 + call);
        assert_non_null(json_object_get(r, "result"));
        assert_false(json_is_true(json_object_get(json_object_get(r, "result"), "isError")));
        /* keep the sink small: the big answers are not needed */
        pthread_mutex_lock(&k.mu);
        json_array_clear(k.msgs);
        pthread_mutex_unlock(&k.mu);
    }
    eg_buf_free(&msg);
    send(s, "{\"jsonrpc\":\"2.0\",\"id\":20,\"method\":\"tools/call\",\"params\":{\"name\":\"read_graph\"}}");
    json_t *r = find_resp(&k, 20);
    assert_non_null(r);
    assert_int_equal(err_code(r), MCP_JSONRPC_INTERNAL_ERROR);
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(r, "error"), "message")), "larger than"));
    mcp_server_free(s);
    sink_free(&k);

    /* a configured cap: a small answer passes, a larger one is replaced */
    sink_init(&k);
    mcp_server_opts o = {.max_message_bytes = 4096};
    s = mcp_server_new(&o, &be, sink_emit, &k, NULL);
    init_session(s, &k);
    send(s, "{\"jsonrpc\":\"2.0\",\"id\":21,\"method\":\"ping\"}");
    assert_non_null(json_object_get(find_resp(&k, 21), "result"));
    send(s, "{\"jsonrpc\":\"2.0\",\"id\":22,\"method\":\"tools/list\"}");
    assert_int_equal(err_code(find_resp(&k, 22)), MCP_JSONRPC_INTERNAL_ERROR);
    mcp_server_free(s);
    sink_free(&k);
    mcp_backend_mem_free(&be);
}

/* A tool that can answer nextCursor must accept cursor (issue #14: the
 * history tools returned one their input schemas refused). */
static void test_mcp_server__paged_tools_accept_cursor(void **state)
{
    (void)state;
    assert_int_equal(mcp_tools_init(NULL), 0);
    for (size_t i = 0; i < mcp_tools_count(); i++) {
        const mcp_tool *t = mcp_tools_at(i);
        json_t *out = json_object_get(t->output_schema, "properties");
        json_t *in = json_object_get(t->input_schema, "properties");
        /* vector results are top-k, never paged (search.c drops nextCursor) */
        bool unpaged = !strcmp(t->name, "semantic_search") || !strcmp(t->name, "hybrid_search");
        if (!unpaged && json_object_get(out, "nextCursor") && !json_object_get(in, "cursor"))
            fail_msg("%s returns nextCursor but its inputSchema has no cursor", t->name);
    }
    /* and the call goes through validation */
    mcp_backend be;
    assert_int_equal(mcp_backend_mem_new(&be, 0, NULL), 0);
    json_t *args = json_loads("{\"entityName\":\"Nobody\",\"cursor\":\"o0\",\"limit\":5}", 0, NULL);
    json_t *res = NULL;
    assert_int_equal(mcp_tools_call(&be, "get_entity_history", args, NULL, &res, NULL), 0);
    const char *text = json_string_value(json_object_get(json_array_get(json_object_get(res, "content"), 0), "text"));
    if (strstr(text, "Invalid arguments"))
        fail_msg("cursor refused: %s", text);
    json_decref(res);
    json_decref(args);
    mcp_backend_mem_free(&be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mcp_server__version_negotiation),
        cmocka_unit_test(test_mcp_server__lifecycle_and_errors),
        cmocka_unit_test(test_mcp_server__log_forwarding),
        cmocka_unit_test(test_mcp_server__tools_list_pagination),
        cmocka_unit_test(test_mcp_server__every_tool_output_conforms),
        cmocka_unit_test(test_mcp_server__paged_tools_accept_cursor),
        cmocka_unit_test(test_mcp_server__cancellation_while_ping_is_served),
        cmocka_unit_test(test_mcp_server__no_progress_without_token_and_drain_answers),
        cmocka_unit_test(test_mcp_server__modern_era),
        cmocka_unit_test(test_mcp_server__oversized_result_is_answered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
