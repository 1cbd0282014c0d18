/*
 * transport_http.c - MCP Streamable HTTP transport (libmicrohttpd), the
 * plain-JSON subset: one endpoint, POST only, one JSON response per request.
 *
 *   POST /mcp   request       -> 200 application/json (the response)
 *               notification  -> 202, no body
 *               or response
 *   GET  /mcp                 -> 405 (no server-initiated SSE stream)
 *   DELETE /mcp + session id  -> 204 (session ended) / 404
 *   anything else             -> 404
 *
 * Sessions: an `initialize` POST without MCP-Session-Id creates a session
 * (one mcp_server each, so lifecycle state and log level are per client)
 * and returns its id (32 random hex bytes) in MCP-Session-Id.  Later POSTs
 * must carry it: missing -> 400, unknown -> 404.  At most HTTP_MAX_SESSIONS
 * live at once (503 beyond; the least recently used idle one is evicted
 * first).
 *
 * Security (MCP 2025-11-25 "Security Warning"): the daemon binds to
 * 127.0.0.1 unless told otherwise, and to a non-loopback address only with
 * a bearer token; with a token every request must carry
 * "Authorization: Bearer <token>" (compared in constant time), else 401
 * with WWW-Authenticate - checked before anything else, so an unauthorised
 * caller learns nothing about sessions.  A present Origin header must be a
 * loopback origin or one listed in ENGRAM_MCP_ALLOWED_ORIGINS (comma
 * separated), else 403 (DNS rebinding); an MCP-Protocol-Version header we
 * do not speak is 400; bodies are capped at EG_LIMIT_MCP_HTTP_BODY (413).
 *
 * Threading: MHD runs one thread per connection; each request runs its
 * message inline in that thread (session servers have workers = 0), so the
 * emit callback collects that thread's output through a thread-local
 * pointer and the answer is one application/json message.  Exception: a
 * tools/call that carries _meta.progressToken from a client that accepts
 * text/event-stream is answered as an SSE stream (progress notifications
 * as they happen, then the response): the call runs in its own thread and
 * MHD's content reader waits for its frames.  Log notifications are not
 * delivered over HTTP.  Cancellation works because a
 * notifications/cancelled POST flags the in-flight call of the session
 * (the cancelled call's stream then ends without a response).
 *
 * Thread-safety: the session table is behind a mutex; sessions are
 * reference-counted so DELETE never frees a server that is still serving.
 */
#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/limits.h"
#include "core/log.h"
#include "mcp/jsonrpc.h"
#include "mcp/server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTTP_MAX_SESSIONS 64
#define HTTP_PATH "/mcp"

typedef struct session {
    char id[65];
    mcp_server *srv;
    int refs;
    bool dead;
    int64_t last_used;
} session;

typedef struct http_state {
    const mcp_server_opts *opts;
    const mcp_backend *be;
    pthread_mutex_t mu;
    session *sessions[HTTP_MAX_SESSIONS];
    char *allowed; /* ENGRAM_MCP_ALLOWED_ORIGINS copy, may be NULL */
    unsigned port;
    const char *token; /* bearer token or NULL (borrowed from the caller) */
} http_state;

typedef struct req_state {
    eg_buf body;
    bool too_big;
} req_state;

/*
 * An SSE response in progress: the call runs in its own thread and appends
 * "event: message" frames; MHD's content reader (the connection thread)
 * waits for them.  Freed by whichever side finishes last.
 */
typedef struct sse_stream {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    eg_buf out;       /* framed events not yet handed to MHD */
    size_t sent;      /* bytes of out already handed over */
    bool done;        /* the call finished: end the stream when out is drained */
    int refs;         /* call thread + MHD response */
    http_state *h;
    session *sess;
    char *body;
    size_t body_len;
} sse_stream;

static _Thread_local json_t *tl_collect;     /* JSON mode: messages of this thread's request */
static _Thread_local sse_stream *tl_stream;  /* SSE mode: the stream of this thread's call */

static void http_emit(void *ud, const char *msg, size_t len)
{
    (void)ud;
    if (tl_stream) {
        sse_stream *st = tl_stream;
        pthread_mutex_lock(&st->mu);
        eg_buf_puts(&st->out, "event: message\ndata: ");
        eg_buf_append(&st->out, msg, len);
        eg_buf_puts(&st->out, "\n\n");
        pthread_cond_broadcast(&st->cv);
        pthread_mutex_unlock(&st->mu);
        return;
    }
    if (!tl_collect)
        return; /* not part of a request (e.g. a log record from another thread) */
    json_t *v = json_loadb(msg, len, 0, NULL);
    if (v)
        json_array_append_new(tl_collect, v);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *ctype, const char *body,
                             const char *session_id)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(body ? strlen(body) : 0, (void *)(body ? body : ""), MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    if (ctype)
        MHD_add_response_header(r, "Content-Type", ctype);
    if (session_id)
        MHD_add_response_header(r, "MCP-Session-Id", session_id);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, "Allow", "POST, DELETE");
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"engram\"");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* msg (borrowed; NULL: an empty body) as an application/json answer,
 * naming session_id when given. */
static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, json_t *msg,
                                  const char *session_id)
{
    char *t = msg ? mcp_jsonrpc_dump(msg, NULL) : NULL;
    enum MHD_Result r = reply(c, status, "application/json", t ? t : "", session_id);
    eg_free(t);
    return r;
}

/* A JSON-RPC error answering request id (NULL: null) as the whole body. */
static enum MHD_Result reply_error_id(struct MHD_Connection *c, unsigned status, json_t *id, int code,
                                      const char *msg)
{
    json_t *e = mcp_jsonrpc_error(id, code, msg, NULL);
    enum MHD_Result r = reply_json(c, status, e, NULL);
    json_decref(e);
    return r;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, int code, const char *msg)
{
    return reply_error_id(c, status, NULL, code, msg);
}

/* The response to request `id` among the messages one call emitted
 * (borrowed), or NULL (a notification, or a cancelled call). */
static json_t *response_for(json_t *collected, json_t *id)
{
    json_t *resp = NULL;
    size_t i;
    json_t *x;
    json_array_foreach(collected, i, x) if (!json_object_get(x, "method") && json_equal(json_object_get(x, "id"), id))
        resp = x;
    return resp;
}

/* "Bearer <token>" with the right token.  CRYPTO_memcmp so that the time
 * taken does not tell how much of a guess was right. */
static bool auth_ok(const http_state *h, const char *authz)
{
    if (!h->token)
        return true;
    if (!authz || strncasecmp(authz, "Bearer ", 7) != 0)
        return false;
    const char *given = authz + 7;
    while (*given == ' ')
        given++;
    size_t n = strlen(h->token);
    return strlen(given) == n && CRYPTO_memcmp(given, h->token, n) == 0;
}

bool mcp_http_host_is_loopback(const char *host)
{
    if (!host)
        return true;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

int mcp_http_check_bind(const char *host, bool have_token, eg_error *err)
{
    struct in6_addr a;
    if (!host || !*host)
        host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &a) != 1 && inet_pton(AF_INET6, host, &a) != 1)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "HTTP host must be an IP address, got '%s'", host);
    if (!have_token && !mcp_http_host_is_loopback(host))
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "refusing to serve MCP on %s without a bearer token (set ENGRAM_MCP_TOKEN or "
                            "ENGRAM_MCP_TOKEN_FILE, or bind to 127.0.0.1)",
                            host);
    return 0;
}

/* Loopback origins are always allowed; others only when listed. */
static bool origin_ok(const http_state *h, const char *origin)
{
    if (!origin)
        return true;
    static const char *const local[] = {"http://localhost", "http://127.0.0.1", "http://[::1]",
                                        "https://localhost", "https://127.0.0.1", NULL};
    for (int i = 0; local[i]; i++) {
        size_t n = strlen(local[i]);
        if (strncasecmp(origin, local[i], n) == 0 && (origin[n] == '\0' || origin[n] == ':'))
            return true;
    }
    if (h->allowed) {
        const char *p = h->allowed;
        while (*p) {
            const char *e = strchr(p, ',');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            while (n && *p == ' ') {
                p++;
                n--;
            }
            if (n && strlen(origin) == n && strncasecmp(origin, p, n) == 0)
                return true;
            if (!e)
                break;
            p = e + 1;
        }
    }
    return false;
}

static void session_release(http_state *h, session *s)
{
    pthread_mutex_lock(&h->mu);
    bool free_it = --s->refs == 0 && s->dead;
    pthread_mutex_unlock(&h->mu);
    if (free_it) {
        mcp_server_free(s->srv);
        eg_free(s);
    }
}

/* Find and reference a live session; NULL when unknown. */
static session *session_get(http_state *h, const char *id)
{
    session *found = NULL;
    pthread_mutex_lock(&h->mu);
    for (int i = 0; i < HTTP_MAX_SESSIONS; i++) {
        session *s = h->sessions[i];
        if (s && !s->dead && strcmp(s->id, id) == 0) {
            s->refs++;
            s->last_used = eg_mono_ms();
            found = s;
            break;
        }
    }
    pthread_mutex_unlock(&h->mu);
    return found;
}

/* Detach a session from the table (freed when its last user leaves). Caller holds mu. */
static void session_kill_locked(http_state *h, int slot)
{
    session *s = h->sessions[slot];
    h->sessions[slot] = NULL;
    s->dead = true;
    if (s->refs == 0) {
        mcp_server_free(s->srv);
        eg_free(s);
    }
}

static session *session_new(http_state *h)
{
    session *s = eg_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    mcp_server_opts o = *h->opts;
    o.workers = 0; /* inline: the connection thread runs the call */
    s->srv = mcp_server_new(&o, h->be, http_emit, NULL, NULL);
    if (!s->srv || eg_rand_hex(s->id, 32) != 0) {
        mcp_server_free(s->srv);
        eg_free(s);
        return NULL;
    }
    s->refs = 1;
    s->last_used = eg_mono_ms();
    return s;
}

/* Put s in the table (evicting the least recently used idle session if full). */
static bool session_add(http_state *h, session *s)
{
    pthread_mutex_lock(&h->mu);
    int slot = -1, lru = -1;
    for (int i = 0; i < HTTP_MAX_SESSIONS; i++) {
        if (!h->sessions[i]) {
            slot = i;
            break;
        }
        if (h->sessions[i]->refs == 0 && (lru < 0 || h->sessions[i]->last_used < h->sessions[lru]->last_used))
            lru = i;
    }
    if (slot < 0 && lru >= 0) {
        EG_INFO("mcp-http", "session table full: evicting the least recently used session");
        session_kill_locked(h, lru);
        slot = lru;
    }
    if (slot >= 0)
        h->sessions[slot] = s;
    pthread_mutex_unlock(&h->mu);
    return slot >= 0;
}

static void stream_unref(sse_stream *st)
{
    pthread_mutex_lock(&st->mu);
    bool last = --st->refs == 0;
    pthread_mutex_unlock(&st->mu);
    if (!last)
        return;
    session_release(st->h, st->sess);
    eg_buf_free(&st->out);
    eg_free(st->body);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
    eg_free(st);
}

static void *stream_call(void *arg)
{
    sse_stream *st = arg;
    tl_stream = st;
    mcp_server_handle(st->sess->srv, st->body, st->body_len);
    tl_stream = NULL;
    pthread_mutex_lock(&st->mu);
    st->done = true;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    stream_unref(st);
    return NULL;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    sse_stream *st = cls;
    pthread_mutex_lock(&st->mu);
    while (st->sent == st->out.len && !st->done)
        pthread_cond_wait(&st->cv, &st->mu);
    ssize_t n;
    if (st->sent < st->out.len) {
        size_t k = st->out.len - st->sent;
        if (k > max)
            k = max;
        memcpy(buf, st->out.ptr + st->sent, k);
        st->sent += k;
        n = (ssize_t)k;
    } else {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    }
    pthread_mutex_unlock(&st->mu);
    return n;
}

static void stream_free(void *cls)
{
    stream_unref(cls);
}

/* True when the client accepts SSE and asked for progress on this call. */
static bool wants_stream(struct MHD_Connection *c, const mcp_msg *m)
{
    const char *acc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept");
    if (!acc || !strstr(acc, "text/event-stream") || m->kind != MCP_MSG_REQUEST ||
        strcmp(m->method, "tools/call") != 0)
        return false;
    json_t *tok = json_object_get(json_object_get(m->params, "_meta"), "progressToken");
    return json_is_string(tok) || json_is_integer(tok);
}

/*
 * Answer a tools/call with progress as an SSE stream: progress
 * notifications as they happen, then the response, then the stream ends.
 * Steals the session reference.
 */
static enum MHD_Result reply_stream(http_state *h, struct MHD_Connection *c, session *sess, const req_state *rs)
{
    sse_stream *st = eg_calloc(1, sizeof *st);
    char *body = st ? eg_memdup(rs->body.ptr, rs->body.len + 1) : NULL;
    if (!st || !body) {
        eg_free(st);
        session_release(h, sess);
        return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, MCP_JSONRPC_INTERNAL_ERROR, "out of memory");
    }
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    eg_buf_init(&st->out, (size_t)4 * EG_LIMIT_MCP_LINE);
    st->h = h;
    st->sess = sess;
    st->body = body;
    st->body_len = rs->body.len;
    st->refs = 2;
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, st, stream_free);
    pthread_t t;
    if (!r || pthread_create(&t, NULL, stream_call, st) != 0) {
        /* Drop both references: the response's (its free callback runs
         * on destroy) and the call thread's that never started. */
        if (r)
            MHD_destroy_response(r);
        else
            stream_unref(st);
        stream_unref(st);
        return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, MCP_JSONRPC_INTERNAL_ERROR, "cannot start call");
    }
    pthread_detach(t);
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- the modern era (2026-07-28) ------------------------------------------ */

/* Header value as the client meant it: "=?base64?...?=" decoded, anything
 * else as is.  Writes into out (n bytes); false when the sentinel does not
 * decode or does not fit, or the value has a byte outside visible ASCII,
 * space and tab (RFC 9110). */
static bool header_value(const char *v, char *out, size_t n)
{
    for (const char *p = v; *p; p++)
        if (!((unsigned char)*p == '\t' || ((unsigned char)*p >= 0x20 && (unsigned char)*p <= 0x7e)))
            return false;
    size_t len = strlen(v);
    if (len >= 11 && strncmp(v, "=?base64?", 9) == 0 && strcmp(v + len - 2, "?=") == 0) {
        const char *b = v + 9;
        size_t bl = len - 11;
        if (bl % 4 != 0 || bl / 4 * 3 + 1 > n)
            return false;
        int got = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)b, (int)bl);
        if (got < 0)
            return false;
        size_t pad = bl >= 1 && b[bl - 1] == '=' ? (bl >= 2 && b[bl - 2] == '=' ? 2 : 1) : 0;
        out[(size_t)got - pad] = 0;
        return strlen(out) == (size_t)got - pad; /* no NUL inside */
    }
    if (len + 1 > n)
        return false;
    memcpy(out, v, len + 1);
    return true;
}

/* The standard headers a modern POST must carry, against its body (the
 * spec's "server validation": an intermediary may have routed on them).
 * false with why filled when one is missing, malformed or different. */
static bool modern_headers_ok(struct MHD_Connection *c, const mcp_msg *m, json_t *version, char *why, size_t n)
{
    const char *pv = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "MCP-Protocol-Version");
    const char *method = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Mcp-Method");
    if (!pv || !json_is_string(version) || strcmp(pv, json_string_value(version)) != 0) {
        snprintf(why, n, "Header mismatch: MCP-Protocol-Version header '%.40s' does not match the body's "
                 "_meta protocolVersion", pv ? pv : "(missing)");
        return false;
    }
    /* Mcp-Method is required on requests; on a notification, if present, it must match. */
    if ((m->kind == MCP_MSG_REQUEST && !method) || (method && strcmp(method, m->method) != 0)) {
        snprintf(why, n, "Header mismatch: Mcp-Method header '%.60s' does not match body method '%.60s'",
                 method ? method : "(missing)", m->method);
        return false;
    }
    if (m->kind == MCP_MSG_REQUEST && strcmp(m->method, "tools/call") == 0) {
        const char *raw = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Mcp-Name");
        const char *body = json_string_value(json_object_get(m->params, "name"));
        char name[512];
        if (!raw || !header_value(raw, name, sizeof name) || !body || strcmp(name, body) != 0) {
            snprintf(why, n, "Header mismatch: Mcp-Name header '%.60s' does not match body params.name '%.60s'",
                     raw ? raw : "(missing)", body ? body : "(missing)");
            return false;
        }
    }
    return true;
}

/*
 * A message that names a 2026-07-28 version in _meta: served on its own,
 * with no session (an MCP-Session-Id header is ignored, none is minted) by
 * a server core made for this one message, after checking the headers.
 * Status codes as that revision's transport says: 400 for header and
 * version errors, 404 for an unknown method, 202 for notifications.  A
 * tools/call with a progressToken that accepts SSE is answered as a stream
 * (progress, then the result); everything else as application/json.  Not
 * offered: cancelling a request from another POST (each request has its
 * own core).
 */
static enum MHD_Result handle_modern_post(http_state *h, struct MHD_Connection *c, const req_state *rs,
                                          const mcp_msg *m, json_t *version)
{
    char why[300];
    if (!modern_headers_ok(c, m, version, why, sizeof why))
        return reply_error_id(c, MHD_HTTP_BAD_REQUEST, m->id, MCP_JSONRPC_HEADER_MISMATCH, why);
    if (wants_stream(c, m)) {
        /* Progress rides on the response stream of its request, as in the
         * initialize era: a session of its own that is never registered
         * (dead from the start), freed when the stream ends. */
        session *one = session_new(h);
        if (!one)
            return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, MCP_JSONRPC_INTERNAL_ERROR, "out of memory");
        one->dead = true;
        return reply_stream(h, c, one, rs);
    }
    mcp_server_opts o = *h->opts;
    o.workers = 0; /* inline: this connection's thread runs the call */
    mcp_server *srv = mcp_server_new(&o, h->be, http_emit, NULL, NULL);
    if (!srv)
        return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, MCP_JSONRPC_INTERNAL_ERROR, "out of memory");
    json_t *collected = json_array();
    tl_collect = collected;
    mcp_server_handle(srv, rs->body.ptr, rs->body.len);
    tl_collect = NULL;
    mcp_server_free(srv);
    enum MHD_Result ret;
    json_t *resp = response_for(collected, m->id);
    if (m->kind != MCP_MSG_REQUEST || !resp) {
        ret = reply(c, MHD_HTTP_ACCEPTED, NULL, NULL, NULL);
    } else {
        json_int_t code = json_integer_value(json_object_get(json_object_get(resp, "error"), "code"));
        unsigned status = code == MCP_JSONRPC_UNSUPPORTED_VERSION ? MHD_HTTP_BAD_REQUEST
                          : code == MCP_JSONRPC_METHOD_NOT_FOUND  ? MHD_HTTP_NOT_FOUND
                                                                  : MHD_HTTP_OK;
        ret = reply_json(c, status, resp, NULL);
    }
    json_decref(collected);
    return ret;
}

static enum MHD_Result handle_post(http_state *h, struct MHD_Connection *c, req_state *rs)
{
    mcp_msg m;
    mcp_jsonrpc_parse(&m, rs->body.ptr ? rs->body.ptr : "", rs->body.len);
    const char *sid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "MCP-Session-Id");
    bool is_init = m.kind == MCP_MSG_REQUEST && strcmp(m.method, "initialize") == 0;
    session *s = NULL;
    bool fresh = false;
    if (m.kind == MCP_MSG_INVALID) {
        /* Framing errors need no session: answer them directly. */
        enum MHD_Result r = reply_error_id(c, MHD_HTTP_BAD_REQUEST, m.id, m.err_code, m.err_msg);
        mcp_msg_clear(&m);
        return r;
    }
    json_t *modern = NULL;
    if ((m.kind == MCP_MSG_REQUEST || m.kind == MCP_MSG_NOTIFICATION) && !is_init)
        modern = mcp_modern_version_of(m.params);
    if (modern) {
        enum MHD_Result r = handle_modern_post(h, c, rs, &m, modern);
        mcp_msg_clear(&m);
        return r;
    }
    if (sid) {
        s = session_get(h, sid);
        if (!s) {
            mcp_msg_clear(&m);
            return reply_error(c, MHD_HTTP_NOT_FOUND, MCP_JSONRPC_INVALID_REQUEST,
                               "unknown or expired MCP-Session-Id: initialize a new session");
        }
    } else if (is_init) {
        s = session_new(h);
        fresh = true;
        if (!s) {
            mcp_msg_clear(&m);
            return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, MCP_JSONRPC_INTERNAL_ERROR, "out of memory");
        }
    } else {
        mcp_msg_clear(&m);
        return reply_error(c, MHD_HTTP_BAD_REQUEST, MCP_JSONRPC_INVALID_REQUEST,
                           "missing MCP-Session-Id header (send initialize first)");
    }
    if (!fresh && wants_stream(c, &m)) {
        mcp_msg_clear(&m);
        return reply_stream(h, c, s, rs);
    }
    json_t *collected = json_array();
    tl_collect = collected;
    mcp_server_handle(s->srv, rs->body.ptr, rs->body.len);
    tl_collect = NULL;
    enum MHD_Result ret;
    if (m.kind != MCP_MSG_REQUEST) {
        ret = reply(c, MHD_HTTP_ACCEPTED, NULL, NULL, NULL);
    } else {
        /* The response is the collected message with our id (progress and
         * log notifications cannot ride along a JSON response). */
        json_t *resp = response_for(collected, m.id);
        bool ok_init = fresh && resp && json_object_get(resp, "result");
        if (fresh && ok_init && !session_add(h, s)) {
            ret = reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, MCP_JSONRPC_INTERNAL_ERROR,
                              "too many MCP sessions; retry later");
            ok_init = false; /* not registered: freed below */
        } else if (!resp) {
            /* cancelled: the client no longer expects an answer */
            ret = reply(c, MHD_HTTP_ACCEPTED, NULL, NULL, NULL);
        } else {
            ret = reply_json(c, MHD_HTTP_OK, resp, ok_init ? s->id : NULL);
        }
        if (fresh && !ok_init) {
            mcp_server_free(s->srv);
            eg_free(s);
            s = NULL;
        }
    }
    json_decref(collected);
    mcp_msg_clear(&m);
    if (s)
        session_release(h, s);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    http_state *h = cls;
    req_state *rs = *con_cls;
    if (!rs) {
        rs = eg_calloc(1, sizeof *rs);
        if (!rs)
            return MHD_NO;
        eg_buf_init(&rs->body, EG_LIMIT_MCP_HTTP_BODY);
        *con_cls = rs;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!rs->too_big && eg_buf_append(&rs->body, upload_data, *upload_data_size) != 0)
            rs->too_big = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (!auth_ok(h, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization")))
        return reply_error(c, MHD_HTTP_UNAUTHORIZED, MCP_JSONRPC_INVALID_REQUEST,
                           "missing or wrong bearer token (Authorization: Bearer ...)");
    if (strcmp(url, HTTP_PATH) != 0)
        return reply(c, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n", NULL);
    if (!origin_ok(h, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin")))
        return reply_error(c, MHD_HTTP_FORBIDDEN, MCP_JSONRPC_INVALID_REQUEST, "Origin not allowed");
    const char *pv = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "MCP-Protocol-Version");
    if (pv && !mcp_version_known(pv, false)) {
        json_t *e = mcp_unsupported_version_error(NULL, pv);
        enum MHD_Result r = reply_json(c, MHD_HTTP_BAD_REQUEST, e, NULL);
        json_decref(e);
        return r;
    }
    if (strcmp(method, "GET") == 0)
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "no server-initiated stream\n", NULL);
    if (strcmp(method, "DELETE") == 0) {
        const char *sid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "MCP-Session-Id");
        bool found = false;
        pthread_mutex_lock(&h->mu);
        for (int i = 0; sid && i < HTTP_MAX_SESSIONS; i++)
            if (h->sessions[i] && strcmp(h->sessions[i]->id, sid) == 0) {
                session_kill_locked(h, i);
                found = true;
            }
        pthread_mutex_unlock(&h->mu);
        return reply(c, found ? MHD_HTTP_NO_CONTENT : MHD_HTTP_NOT_FOUND, NULL, NULL, NULL);
    }
    if (strcmp(method, "POST") != 0)
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "use POST\n", NULL);
    if (rs->too_big)
        return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, MCP_JSONRPC_INVALID_REQUEST, "message too large");
    return handle_post(h, c, rs);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    req_state *rs = *con_cls;
    if (rs) {
        eg_buf_free(&rs->body);
        eg_free(rs);
        *con_cls = NULL;
    }
}

static volatile sig_atomic_t g_stop;
static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

int mcp_http_serve(const mcp_server_opts *opts, const mcp_backend *be, const mcp_http_opts *ho, eg_error *err)
{
    static const mcp_server_opts defaults = {0};
    const char *host = ho && ho->host && *ho->host ? ho->host : "127.0.0.1";
    unsigned port = ho ? ho->port : 0;
    const char *token = ho && ho->token && *ho->token ? ho->token : NULL;
    /* One address family per daemon: an IPv4 or IPv6 literal, nothing else
     * (a name could resolve to several addresses, some of them public). */
    int crc = mcp_http_check_bind(host, token != NULL, err);
    if (crc)
        return crc;
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    struct sockaddr *bind_addr = NULL;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)port);
        bind_addr = (struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)port);
        bind_addr = (struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    }
    http_state h = {.opts = opts ? opts : &defaults, .be = be, .port = port, .token = token};
    pthread_mutex_init(&h.mu, NULL);
    const char *allowed = getenv("ENGRAM_MCP_ALLOWED_ORIGINS");
    h.allowed = allowed ? eg_strdup(allowed) : NULL;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, &h, MHD_OPTION_SOCK_ADDR, bind_addr, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)256, MHD_OPTION_END);
    bool v6 = bind_addr->sa_family == AF_INET6;
    if (!d) {
        eg_free(h.allowed);
        pthread_mutex_destroy(&h.mu);
        return eg_error_set(err, EG_EIO, EG_CLASS_CONNECTION, "cannot listen on %s%s%s:%u", v6 ? "[" : "", host,
                            v6 ? "]" : "", port);
    }
    EG_INFO("mcp-http", "serving MCP on http://%s%s%s:%u%s (%s)", v6 ? "[" : "", host, v6 ? "]" : "", port,
            HTTP_PATH, token ? "bearer token required" : "no authentication: loopback only");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    while (!g_stop)
        eg_sleep_ms(100);
    EG_INFO("mcp-http", "stopping");
    MHD_stop_daemon(d);
    for (int i = 0; i < HTTP_MAX_SESSIONS; i++)
        if (h.sessions[i])
            session_kill_locked(&h, i);
    eg_free(h.allowed);
    pthread_mutex_destroy(&h.mu);
    return 0;
}
