/*
 * server.c - MCP lifecycle, dispatch, worker pool, cancellation, progress
 * and log forwarding (see server.h for the state diagram).
 */
#include "mcp/server.h"

#include "core/alloc.h"
#include "core/limits.h"
#include "core/log.h"
#include "mcp/jsonrpc.h"
#include "mcp/tools.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const mcp_protocol_versions[] = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05",
                                             NULL};
const char *const mcp_modern_versions[] = {"2026-07-28", NULL};

/* The modern era's identity key in results. */
#define META_SERVER_INFO "io.modelcontextprotocol/serverInfo"

/* How long a client may consider tools/list and server/discover fresh: the
 * tool set only changes with the binary, so an hour (a restart with a new
 * engram is the only change, and clients re-fetch on an unknown tool). */
#define MODERN_TTL_MS 3600000

/* MCP logging levels (RFC 5424 severities), least severe first. */
static const char *const k_levels[] = {"debug", "info", "notice", "warning", "error",
                                       "critical", "alert", "emergency", NULL};

enum { ST_NEW = 0, ST_INITIALIZING, ST_READY };

struct mcp_call_ctx {
    mcp_server *srv;
    json_t *id;              /* owned */
    char *key;               /* owned: id key in the in-flight list */
    json_t *progress_token;  /* owned or NULL */
    double last_progress;
    atomic_bool cancelled;
    char *tool;              /* owned */
    json_t *args;            /* owned */
    bool modern;             /* a 2026-07-28 request: its result says so */
    struct mcp_call_ctx *next_inflight;
    struct mcp_call_ctx *next_queued;
};

struct mcp_server {
    mcp_server_opts opts;
    const mcp_backend *be;
    mcp_emit_fn emit;
    void *emit_ud;

    pthread_mutex_t mu;
    pthread_cond_t cv_work;  /* queue non-empty or stopping */
    pthread_cond_t cv_idle;  /* in-flight count dropped */
    int state;
    char version[16];
    atomic_int log_level;    /* index into k_levels; -1 = not forwarding */
    bool log_forwarding;
    mcp_call_ctx *inflight;  /* all calls queued or running */
    unsigned n_inflight;
    mcp_call_ctx *q_head, *q_tail;
    bool stopping;
    pthread_t *threads;
    unsigned n_threads;
};

/* ---- output ------------------------------------------------------------ */

/*
 * Serialise msg (stolen) and emit it.  A response that does not fit the
 * message cap (or whose text cannot be built) is replaced by an error
 * answering the same id: a client waiting for an answer always gets one.
 */
static void send_msg(mcp_server *s, json_t *msg)
{
    if (!msg)
        return;
    size_t len = 0;
    size_t max = s->opts.max_message_bytes ? s->opts.max_message_bytes : EG_LIMIT_MCP_RESPONSE;
    char *text = mcp_jsonrpc_dump_max(msg, max, &len);
    if (!text && !json_object_get(msg, "method") && json_object_get(msg, "id")) {
        char m[200];
        snprintf(m, sizeof m,
                 "the result is larger than the %zu bytes one message may carry: ask for less "
                 "(a smaller limit, fewer names, or the next page by cursor)",
                 max);
        EG_WARN("mcp", "a response over %zu bytes was replaced by an error", max);
        json_t *e = mcp_jsonrpc_error(json_object_get(msg, "id"), MCP_JSONRPC_INTERNAL_ERROR, m, NULL);
        text = e ? mcp_jsonrpc_dump_max(e, max, &len) : NULL;
        json_decref(e);
    }
    json_decref(msg);
    if (!text)
        return;
    s->emit(s->emit_ud, text, len);
    eg_free(text);
}

static void send_error(mcp_server *s, json_t *id, int code, const char *message)
{
    send_msg(s, mcp_jsonrpc_error(id, code, message, NULL));
}

/* ---- call context -------------------------------------------------------- */

const struct mcp_grant *mcp_call_grant(const mcp_call_ctx *ctx)
{
    return ctx && ctx->srv ? ctx->srv->opts.grant : NULL;
}

bool mcp_call_cancelled(const mcp_call_ctx *ctx)
{
    return ctx && atomic_load(&((mcp_call_ctx *)ctx)->cancelled);
}

void mcp_call_progress(mcp_call_ctx *ctx, double progress, double total, const char *message)
{
    if (!ctx || !ctx->progress_token || mcp_call_cancelled(ctx))
        return;
    /* MCP: progress MUST increase with each notification. */
    if (progress <= ctx->last_progress)
        progress = ctx->last_progress + 1e-6;
    ctx->last_progress = progress;
    json_t *p = json_pack("{s:O, s:f}", "progressToken", ctx->progress_token, "progress", progress);
    if (!p)
        return;
    if (total > 0)
        json_object_set_new(p, "total", json_real(total));
    if (message)
        json_object_set_new(p, "message", json_string(message));
    send_msg(ctx->srv, mcp_jsonrpc_notification("notifications/progress", p));
}

static void ctx_free(mcp_call_ctx *c)
{
    if (!c)
        return;
    json_decref(c->id);
    json_decref(c->progress_token);
    json_decref(c->args);
    eg_free(c->key);
    eg_free(c->tool);
    eg_free(c);
}

/* Caller holds s->mu. */
static void inflight_remove(mcp_server *s, mcp_call_ctx *c)
{
    for (mcp_call_ctx **pp = &s->inflight; *pp; pp = &(*pp)->next_inflight) {
        if (*pp == c) {
            *pp = c->next_inflight;
            s->n_inflight--;
            break;
        }
    }
    pthread_cond_broadcast(&s->cv_idle);
}

/* serverInfo / Implementation: who we are.  New. */
static json_t *server_info(void)
{
    return json_pack("{s:s, s:s, s:s}", "name", "engram", "title", "engram knowledge-graph memory", "version",
                     ENGRAM_VERSION);
}

/*
 * Make res (may be NULL) a 2026-07-28 result: resultType "complete" (every
 * result carries it) and our identity in _meta (servers SHOULD say who
 * they are on each result); with cacheable, the caching hints the list and
 * discover results MUST carry.
 */
static void modern_complete(json_t *res, bool cacheable)
{
    if (!json_is_object(res))
        return;
    json_object_set_new(res, "resultType", json_string("complete"));
    json_t *meta = json_object_get(res, "_meta");
    if (!json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(res, "_meta", meta);
    }
    json_object_set_new(meta, META_SERVER_INFO, server_info());
    if (cacheable) {
        json_object_set_new(res, "ttlMs", json_integer(MODERN_TTL_MS));
        /* the tool list is the same for every caller */
        json_object_set_new(res, "cacheScope", json_string("public"));
    }
}

static void run_call(mcp_server *s, mcp_call_ctx *c)
{
    json_t *result = NULL;
    eg_error err;
    eg_error_clear(&err);
    int rc = EG_ECANCELED;
    if (!mcp_call_cancelled(c))
        rc = mcp_tools_call(s->be, c->tool, c->args, c, &result, &err);
    if (rc == EG_ECANCELED || mcp_call_cancelled(c)) {
        json_decref(result); /* cancelled: no response at all */
    } else if (rc == EG_ENOTFOUND) {
        char m[300];
        snprintf(m, sizeof m, "Unknown tool: %.200s (call tools/list for the available tools)", c->tool);
        send_error(s, c->id, MCP_JSONRPC_INVALID_PARAMS, m);
    } else if (rc) {
        send_error(s, c->id, MCP_JSONRPC_INTERNAL_ERROR, err.message[0] ? err.message : "internal error");
    } else {
        if (c->modern)
            modern_complete(result, false);
        send_msg(s, mcp_jsonrpc_result(c->id, result));
    }
    /* Leave the in-flight list only after the answer is out, so drain()
     * returning means every response has been written. */
    pthread_mutex_lock(&s->mu);
    inflight_remove(s, c);
    pthread_mutex_unlock(&s->mu);
    ctx_free(c);
}

static void *worker_main(void *arg)
{
    mcp_server *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->q_head && !s->stopping)
            pthread_cond_wait(&s->cv_work, &s->mu);
        if (!s->q_head && s->stopping)
            break;
        mcp_call_ctx *c = s->q_head;
        s->q_head = c->next_queued;
        if (!s->q_head)
            s->q_tail = NULL;
        pthread_mutex_unlock(&s->mu);
        run_call(s, c);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- methods --------------------------------------------------------------- */

static void handle_initialize(mcp_server *s, json_t *id, json_t *params)
{
    pthread_mutex_lock(&s->mu);
    int st = s->state;
    pthread_mutex_unlock(&s->mu);
    if (st != ST_NEW) {
        send_error(s, id, MCP_JSONRPC_INVALID_REQUEST, "already initialized: one initialize per session");
        return;
    }
    json_t *pv = json_object_get(params, "protocolVersion");
    if (pv && !json_is_string(pv)) {
        send_error(s, id, MCP_JSONRPC_INVALID_PARAMS, "protocolVersion must be a string");
        return;
    }
    const char *chosen = mcp_protocol_versions[0];
    if (pv) {
        /* Echo the client's version when we speak it, else offer our newest
         * (the client disconnects if it cannot use it). */
        for (int i = 0; mcp_protocol_versions[i]; i++)
            if (strcmp(json_string_value(pv), mcp_protocol_versions[i]) == 0)
                chosen = mcp_protocol_versions[i];
    }
    json_t *caps = json_pack("{s:{s:b}, s:{}}", "tools", "listChanged", 0, "logging");
    json_t *res = json_pack("{s:s, s:o, s:o}", "protocolVersion", chosen, "capabilities", caps,
                            "serverInfo", server_info());
    if (res && s->opts.instructions)
        json_object_set_new(res, "instructions", json_string(s->opts.instructions));
    pthread_mutex_lock(&s->mu);
    s->state = ST_INITIALIZING;
    snprintf(s->version, sizeof s->version, "%s", chosen);
    pthread_mutex_unlock(&s->mu);
    if (!res) {
        send_error(s, id, MCP_JSONRPC_INTERNAL_ERROR, EG_OOM_TEXT);
        return;
    }
    send_msg(s, mcp_jsonrpc_result(id, res));
}

static void handle_tools_list(mcp_server *s, json_t *id, json_t *params, bool modern)
{
    size_t n = mcp_tools_count();
    size_t start = 0;
    json_t *cursor = json_object_get(params, "cursor");
    if (cursor && !json_is_null(cursor)) {
        /* Cursors are opaque to clients; ours is "t<offset>". */
        const char *cs = json_is_string(cursor) ? json_string_value(cursor) : NULL;
        char *end = NULL;
        unsigned long off = cs && cs[0] == 't' && cs[1] >= '0' && cs[1] <= '9' ? strtoul(cs + 1, &end, 10) : 0;
        if (!cs || !end || *end || off == 0 || off >= n) {
            send_error(s, id, MCP_JSONRPC_INVALID_PARAMS, "invalid cursor: pass back nextCursor unchanged");
            return;
        }
        start = off;
    }
    size_t page = s->opts.page_size ? s->opts.page_size : n;
    size_t stop = start + page < n ? start + page : n;
    json_t *tools = json_array();
    for (size_t i = start; tools && i < stop; i++)
        json_array_append_new(tools, mcp_tool_describe(mcp_tools_at(i)));
    json_t *res = json_pack("{s:o}", "tools", tools);
    if (res && stop < n) {
        char cur[32];
        snprintf(cur, sizeof cur, "t%zu", stop);
        json_object_set_new(res, "nextCursor", json_string(cur));
    }
    if (modern)
        modern_complete(res, true);
    if (!res) {
        send_error(s, id, MCP_JSONRPC_INTERNAL_ERROR, EG_OOM_TEXT);
        return;
    }
    send_msg(s, mcp_jsonrpc_result(id, res));
}

static void handle_tools_call(mcp_server *s, json_t *id, json_t *params, bool modern)
{
    json_t *name = json_object_get(params, "name");
    json_t *args = json_object_get(params, "arguments");
    if (!json_is_string(name)) {
        send_error(s, id, MCP_JSONRPC_INVALID_PARAMS, "tools/call needs params.name (a tool name string)");
        return;
    }
    if (!mcp_tools_find(json_string_value(name))) {
        char m[300];
        snprintf(m, sizeof m, "Unknown tool: %.200s (call tools/list for the available tools)",
                 json_string_value(name));
        send_error(s, id, MCP_JSONRPC_INVALID_PARAMS, m);
        return;
    }
    if (args && !json_is_object(args) && !json_is_null(args) && !json_is_string(args)) {
        send_error(s, id, MCP_JSONRPC_INVALID_PARAMS, "tools/call params.arguments must be an object");
        return;
    }
    mcp_call_ctx *c = eg_calloc(1, sizeof *c);
    if (!c) {
        send_error(s, id, MCP_JSONRPC_INTERNAL_ERROR, EG_OOM_TEXT);
        return;
    }
    c->srv = s;
    c->modern = modern;
    /* The call runs on a pool thread while this one frees the message: the
     * context takes copies, not references.  jansson's reference count is
     * decremented with release order only, so a value whose last reference
     * drops on another thread is freed without synchronising with the
     * reads before (ThreadSanitizer reports it; C11 calls it a race). */
    c->id = json_deep_copy(id);
    c->key = mcp_jsonrpc_id_key(id);
    c->tool = eg_strdup(json_string_value(name));
    if (json_is_string(args)) {
        /* Loose clients send arguments as a JSON string; accept an object. */
        /* Same caps as a whole message, checked before parsing. */
        json_t *parsed = !mcp_jsonrpc_precheck(json_string_value(args), json_string_length(args))
                             ? json_loads(json_string_value(args), JSON_REJECT_DUPLICATES, NULL)
                             : NULL;
        if (json_is_object(parsed)) {
            c->args = parsed;
        } else {
            json_decref(parsed);
            ctx_free(c);
            send_error(s, id, MCP_JSONRPC_INVALID_PARAMS, "tools/call params.arguments must be an object");
            return;
        }
    } else {
        c->args = json_is_object(args) ? json_deep_copy(args) : json_object();
    }
    json_t *meta = json_object_get(params, "_meta");
    json_t *tok = json_object_get(meta, "progressToken");
    bool want_tok = json_is_string(tok) || json_is_integer(tok);
    if (want_tok)
        c->progress_token = json_deep_copy(tok);
    if ((id && !c->id) || !c->key || !c->tool || !c->args || (want_tok && !c->progress_token)) {
        ctx_free(c);
        send_error(s, id, MCP_JSONRPC_INTERNAL_ERROR, EG_OOM_TEXT);
        return;
    }
    unsigned cap = s->opts.max_inflight ? s->opts.max_inflight : 64;
    pthread_mutex_lock(&s->mu);
    const char *why = NULL;
    if (s->stopping)
        why = "server is shutting down";
    else if (s->n_inflight >= cap)
        why = "too many concurrent tool calls; retry when earlier calls finish";
    for (mcp_call_ctx *x = s->inflight; !why && x; x = x->next_inflight)
        if (strcmp(x->key, c->key) == 0)
            why = "a request with this id is still in flight; ids must be unique";
    if (why) {
        pthread_mutex_unlock(&s->mu);
        send_error(s, id, MCP_JSONRPC_INVALID_REQUEST, why);
        ctx_free(c);
        return;
    }
    c->next_inflight = s->inflight;
    s->inflight = c;
    s->n_inflight++;
    if (s->n_threads == 0) {
        pthread_mutex_unlock(&s->mu);
        run_call(s, c);
        return;
    }
    if (s->q_tail)
        s->q_tail->next_queued = c;
    else
        s->q_head = c;
    s->q_tail = c;
    pthread_cond_signal(&s->cv_work);
    pthread_mutex_unlock(&s->mu);
}

static int level_index(const char *name)
{
    for (int i = 0; k_levels[i]; i++)
        if (strcmp(k_levels[i], name) == 0)
            return i;
    return -1;
}

static void handle_set_level(mcp_server *s, json_t *id, json_t *params)
{
    json_t *lv = json_object_get(params, "level");
    int idx = json_is_string(lv) ? level_index(json_string_value(lv)) : -1;
    if (idx < 0) {
        send_error(s, id, MCP_JSONRPC_INVALID_PARAMS,
                   "level must be one of debug, info, notice, warning, error, critical, alert, emergency");
        return;
    }
    atomic_store(&s->log_level, idx);
    send_msg(s, mcp_jsonrpc_result(id, json_object()));
}

void mcp_server_cancel(mcp_server *s, json_t *id)
{
    char *key = mcp_jsonrpc_id_key(id);
    if (!key)
        return;
    pthread_mutex_lock(&s->mu);
    for (mcp_call_ctx *x = s->inflight; x; x = x->next_inflight)
        if (strcmp(x->key, key) == 0)
            atomic_store(&x->cancelled, true);
    pthread_mutex_unlock(&s->mu);
    eg_free(key);
}

static void handle_cancelled(mcp_server *s, json_t *params)
{
    mcp_server_cancel(s, json_object_get(params, "requestId"));
}

/* ---- the modern era (2026-07-28) ------------------------------------------ */

json_t *mcp_modern_version_of(json_t *params)
{
    return json_object_get(json_object_get(params, "_meta"), MCP_META_PROTOCOL_VERSION);
}

bool mcp_version_known(const char *v, bool modern_only)
{
    for (int i = 0; v && mcp_modern_versions[i]; i++)
        if (strcmp(v, mcp_modern_versions[i]) == 0)
            return true;
    for (int i = 0; v && !modern_only && mcp_protocol_versions[i]; i++)
        if (strcmp(v, mcp_protocol_versions[i]) == 0)
            return true;
    return false;
}

json_t *mcp_unsupported_version_error(json_t *id, const char *requested)
{
    /* Legacy versions are listed too: a dual-era client that picks one of
     * those falls back to initialize. */
    json_t *data = json_pack("{s:o, s:s}", "supported", mcp_supported_versions(), "requested", requested);
    return mcp_jsonrpc_error(id, MCP_JSONRPC_UNSUPPORTED_VERSION, "Unsupported protocol version", data);
}

json_t *mcp_supported_versions(void)
{
    json_t *a = json_array();
    for (int i = 0; a && mcp_modern_versions[i]; i++)
        json_array_append_new(a, json_string(mcp_modern_versions[i]));
    for (int i = 0; a && mcp_protocol_versions[i]; i++)
        json_array_append_new(a, json_string(mcp_protocol_versions[i]));
    return a;
}

static void handle_discover(mcp_server *s, json_t *id)
{
    /* No logging capability: the modern era sets log levels per request,
     * which we do not offer (logs go to stderr); no listChanged: there are
     * no subscriptions to deliver it on. */
    json_t *res = json_pack("{s:o, s:{s:{}}}", "supportedVersions", mcp_supported_versions(), "capabilities", "tools");
    if (res && s->opts.instructions)
        json_object_set_new(res, "instructions", json_string(s->opts.instructions));
    modern_complete(res, true);
    if (!res) {
        send_error(s, id, MCP_JSONRPC_INTERNAL_ERROR, EG_OOM_TEXT);
        return;
    }
    send_msg(s, mcp_jsonrpc_result(id, res));
}

/*
 * A request carrying params._meta["io.modelcontextprotocol/protocolVersion"]:
 * served on its own, with no session and no initialize.  The legacy-only
 * methods (ping, logging/setLevel) do not exist in this era.
 */
static void handle_modern(mcp_server *s, json_t *id, const char *method, json_t *params, json_t *version)
{
    if (!json_is_string(version)) {
        send_error(s, id, MCP_JSONRPC_INVALID_PARAMS, "_meta." MCP_META_PROTOCOL_VERSION " must be a string");
        return;
    }
    if (!mcp_version_known(json_string_value(version), true)) {
        send_msg(s, mcp_unsupported_version_error(id, json_string_value(version)));
        return;
    }
    if (strcmp(method, "server/discover") == 0) {
        handle_discover(s, id);
    } else if (strcmp(method, "tools/list") == 0) {
        handle_tools_list(s, id, params, true);
    } else if (strcmp(method, "tools/call") == 0) {
        handle_tools_call(s, id, params, true);
    } else {
        char msg[200];
        snprintf(msg, sizeof msg, "Method not found: %.120s", method);
        send_error(s, id, MCP_JSONRPC_METHOD_NOT_FOUND, msg);
    }
}

void mcp_server_handle(mcp_server *s, const char *data, size_t len)
{
    mcp_msg m;
    mcp_jsonrpc_parse(&m, data, len);
    mcp_server_handle_msg(s, &m);
    mcp_msg_clear(&m);
}

void mcp_server_handle_msg(mcp_server *s, const mcp_msg *in)
{
    const mcp_msg m = *in;
    switch (m.kind) {
    case MCP_MSG_INVALID:
        send_error(s, m.id, m.err_code, m.err_msg);
        break;
    case MCP_MSG_RESPONSE:
        break; /* we never send requests; ignore stray responses */
    case MCP_MSG_NOTIFICATION:
        if (strcmp(m.method, "notifications/initialized") == 0) {
            pthread_mutex_lock(&s->mu);
            if (s->state == ST_INITIALIZING)
                s->state = ST_READY;
            pthread_mutex_unlock(&s->mu);
        } else if (strcmp(m.method, "notifications/cancelled") == 0) {
            handle_cancelled(s, m.params);
        }
        break; /* unknown notifications are ignored, as JSON-RPC requires */
    case MCP_MSG_REQUEST: {
        pthread_mutex_lock(&s->mu);
        int st = s->state;
        pthread_mutex_unlock(&s->mu);
        json_t *modern = mcp_modern_version_of(m.params);
        if (strcmp(m.method, "initialize") == 0) {
            /* initialize selects the legacy era, whatever else it carries */
            handle_initialize(s, m.id, m.params);
        } else if (modern) {
            handle_modern(s, m.id, m.method, m.params, modern);
        } else if (strcmp(m.method, "ping") == 0) {
            send_msg(s, mcp_jsonrpc_result(m.id, json_object()));
        } else if (st == ST_NEW) {
            send_error(s, m.id, MCP_JSONRPC_NOT_INITIALIZED, "server not initialized: send initialize first");
        } else if (strcmp(m.method, "tools/list") == 0) {
            handle_tools_list(s, m.id, m.params, false);
        } else if (strcmp(m.method, "tools/call") == 0) {
            handle_tools_call(s, m.id, m.params, false);
        } else if (strcmp(m.method, "logging/setLevel") == 0) {
            handle_set_level(s, m.id, m.params);
        } else {
            char msg[200];
            snprintf(msg, sizeof msg, "Method not found: %.120s", m.method);
            send_error(s, m.id, MCP_JSONRPC_METHOD_NOT_FOUND, msg);
        }
        break;
    }
    }
}

/* ---- logging ------------------------------------------------------------- */

/*
 * The process has one log sink; the server that forwards is published here
 * under a mutex, so a record logged by another thread (an embedding worker)
 * while the server is being freed never touches freed memory: free()
 * unpublishes under the same mutex first.  The sink emits under this mutex,
 * so an emit callback that logs would deadlock here: only the stdio
 * transport forwards logs, and its emit does not log (the HTTP transport's
 * does, and never forwards).
 */
static pthread_mutex_t g_fwd_mu = PTHREAD_MUTEX_INITIALIZER;
static mcp_server *g_fwd_srv;

static void log_sink(eg_log_level lvl, const char *component, const char *msg, void *payload)
{
    (void)payload;
    pthread_mutex_lock(&g_fwd_mu);
    mcp_server *s = g_fwd_srv;
    int min = s ? atomic_load(&s->log_level) : -1;
    /* eg levels debug..critical map 1:1 onto the first six MCP levels. */
    if (s && min >= 0 && lvl < EG_LOG_OFF && (int)lvl >= min) {
        json_t *p = json_pack("{s:s, s:s, s:s}", "level", k_levels[lvl], "logger",
                              component ? component : "engram", "data", msg ? msg : "");
        send_msg(s, mcp_jsonrpc_notification("notifications/message", p));
    }
    pthread_mutex_unlock(&g_fwd_mu);
}

void mcp_server_forward_logs(mcp_server *s)
{
    pthread_mutex_lock(&g_fwd_mu);
    g_fwd_srv = s;
    s->log_forwarding = true;
    pthread_mutex_unlock(&g_fwd_mu);
    eg_log_set_sink(log_sink, NULL);
}

/* ---- lifecycle --------------------------------------------------------------- */

mcp_server *mcp_server_new(const mcp_server_opts *opts, const mcp_backend *be, mcp_emit_fn emit,
                           void *emit_ud, eg_error *err)
{
    if (mcp_tools_init(err))
        return NULL;
    mcp_server *s = eg_calloc(1, sizeof *s);
    if (!s) {
        eg_error_oom(err);
        return NULL;
    }
    if (opts)
        s->opts = *opts;
    s->be = be;
    s->emit = emit;
    s->emit_ud = emit_ud;
    atomic_init(&s->log_level, -1);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv_work, NULL);
    pthread_cond_init(&s->cv_idle, NULL);
    if (s->opts.workers) {
        s->threads = eg_calloc(s->opts.workers, sizeof *s->threads);
        if (!s->threads) {
            mcp_server_free(s);
            eg_error_oom(err);
            return NULL;
        }
        for (unsigned i = 0; i < s->opts.workers; i++) {
            if (pthread_create(&s->threads[i], NULL, worker_main, s) != 0) {
                mcp_server_free(s);
                eg_error_set(err, EG_EINTERNAL, EG_CLASS_NONE, "cannot start MCP worker thread");
                return NULL;
            }
            s->n_threads++;
        }
    }
    return s;
}

void mcp_server_drain(mcp_server *s)
{
    pthread_mutex_lock(&s->mu);
    while (s->n_inflight > 0)
        pthread_cond_wait(&s->cv_idle, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

void mcp_server_free(mcp_server *s)
{
    if (!s)
        return;
    if (s->log_forwarding) {
        pthread_mutex_lock(&g_fwd_mu);
        if (g_fwd_srv == s)
            g_fwd_srv = NULL;
        pthread_mutex_unlock(&g_fwd_mu);
        eg_log_set_sink(NULL, NULL);
    }
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    for (mcp_call_ctx *x = s->inflight; x; x = x->next_inflight)
        atomic_store(&x->cancelled, true);
    pthread_cond_broadcast(&s->cv_work);
    pthread_mutex_unlock(&s->mu);
    for (unsigned i = 0; i < s->n_threads; i++)
        pthread_join(s->threads[i], NULL);
    eg_free(s->threads);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv_work);
    pthread_cond_destroy(&s->cv_idle);
    eg_free(s);
}

const char *mcp_server_protocol_version(const mcp_server *s)
{
    return s->version;
}
