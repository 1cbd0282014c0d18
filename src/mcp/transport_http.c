/*
 * transport_http.c - MCP Streamable HTTP transport (libmicrohttpd), the
 * plain-JSON subset: one endpoint, POST only, one JSON response per request.
 *
 *   POST /mcp   request       -> 200 application/json (the response)
 *               notification  -> 202, no body
 *               or response
 *   GET  /mcp                 -> 405 (no server-initiated SSE stream)
 *   DELETE /mcp + session id  -> 204 (session ended) / 404
 *   GET /console/...          -> the console's page (http_console.c)
 *   anything else             -> 404
 *
 * Sessions: an `initialize` POST without MCP-Session-Id creates a session
 * (one mcp_server each, so lifecycle state and log level are per client)
 * and returns its id (32 random hex bytes) in MCP-Session-Id.  Later POSTs
 * must carry it: missing -> 400, unknown -> 404.  Each session belongs to
 * the client address that made it, with per-client and table limits that
 * never evict an active session or another client's (http_session.c).
 *
 * Headers before bodies (security review finding 1): everything that can
 * refuse a request is decided in MHD's first call, when the headers are in
 * and no body byte has been read: bearer token (401), path (404), Host on a
 * loopback bind (403, DNS rebinding), Origin (403), MCP-Protocol-Version
 * (400), method (405), Content-Type application/json (415), Content-Length
 * over EG_LIMIT_MCP_HTTP_BODY (413), and the global body budget (503).  A
 * refusal is queued before the body, so MHD never reads the upload and
 * closes the connection (every answer >= 400 says "Connection: close").  A
 * body without a length is capped while it streams: past the cap or the
 * budget the connection is closed.
 *
 * Connection model (finding 2): MHD's internal polling threads (epoll,
 * io_threads of them) hold every connection, so an idle or slow client
 * costs a socket and MHD's per-connection pool (32 KiB), not a thread.
 * Limits: max_connections in all, per_ip per client address, a header
 * deadline (header_timeout_s from accept to the end of the first request's
 * headers, enforced by the main thread's reaper with shutdown(2), because
 * MHD's own timeout only measures inactivity and a byte every few seconds
 * would hold a slot for ever), and idle_timeout_s of silence.
 * Cheap messages (initialize, ping, tools/list, notifications) are answered
 * in the polling thread.  A tools/call becomes a job for the call threads
 * (opts->workers of them) and its connection is suspended until the answer
 * is ready, so a slow call never blocks a polling thread.
 *
 * SSE: a tools/call that carries _meta.progressToken from a client that
 * accepts text/event-stream is answered as a stream (progress
 * notifications as they happen, then the response): MHD's content reader
 * hands over the frames the job has emitted and suspends the connection
 * while there are none; the job resumes it when it emits.
 *
 * Calls end with their client (finding 12): while a call's connection is
 * suspended, the reaper polls its socket; a client that hung up cancels the
 * call (mcp_server_cancel), as does an SSE response that MHD tears down.
 * At shutdown every call is cancelled and the call threads are joined
 * before MHD stops and before the caller frees the backend.
 *
 * Modern era (2026-07-28): a message that names that version in _meta is
 * served on its own, with no session, by a server core made for it.
 *
 * Memory: request bodies held at once (reading, parsed, or running) are
 * bounded by body_budget; a message is parsed once (mcp_server_handle_msg)
 * and its body freed before the call runs.
 *
 * Files: this one is the daemon; the session table is http_session.c, the
 * call threads and SSE streams http_call.c, the header parsers
 * http_guard.c (http_int.h lists them).
 *
 * Thread-safety: one mutex (mcp_http_state.mu) guards the session table,
 * the call queue, the job states and the connection list; sessions and
 * jobs are reference-counted.  Lock order: mcp_http_state.mu, then an
 * mcp_server's, then MHD's own.
 */
#include "core/alloc.h"
#include "core/env.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/limits.h"
#include "core/log.h"
#include "mcp/access.h"
#include "mcp/http_int.h"
#include "mcp/jsonrpc.h"
#include "mcp/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTP_PATH "/mcp"
#define HTTP_MHD_POOL_BYTES (32u * 1024u) /* MHD's per-connection memory (headers, read buffer) */
#define HTTP_REAP_MS 100                  /* how often the main thread looks at deadlines */

/* ---- answers ------------------------------------------------------------ */

/* Queue an answer.  body: len bytes; with own, *new* memory the response
 * takes (freed by MHD through eg_free), else copied.  Every answer >= 400
 * closes the connection: a refused client gets nothing more on it. */
enum MHD_Result mcp_http__reply_buf(struct MHD_Connection *c, unsigned status, const char *ctype, char *body,
                                   size_t len, bool own, const char *session_id)
{
    struct MHD_Response *r =
        own ? MHD_create_response_from_buffer_with_free_callback(len, body, eg_free)
            : MHD_create_response_from_buffer(len, (void *)(body ? body : ""), MHD_RESPMEM_MUST_COPY);
    if (!r) {
        if (own)
            eg_free(body);
        return MHD_NO;
    }
    if (ctype)
        MHD_add_response_header(r, "Content-Type", ctype);
    if (session_id)
        MHD_add_response_header(r, "MCP-Session-Id", session_id);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, "Allow", "POST, DELETE");
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"engram\"");
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
        MHD_add_response_header(r, "Retry-After", "1");
    if (status >= 400)
        MHD_add_response_header(r, "Connection", "close");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result mcp_http__reply(struct MHD_Connection *c, unsigned status, const char *ctype, const char *body,
                               const char *session_id)
{
    return mcp_http__reply_buf(c, status, ctype, (char *)body, body ? strlen(body) : 0, false, session_id);
}

/* msg (borrowed; NULL: an empty body) as an application/json answer. */
enum MHD_Result mcp_http__reply_json(struct MHD_Connection *c, unsigned status, json_t *msg)
{
    size_t len = 0;
    char *t = msg ? mcp_jsonrpc_dump(msg, &len) : NULL;
    if (!t)
        return mcp_http__reply(c, status, "application/json", "", NULL);
    return mcp_http__reply_buf(c, status, "application/json", t, len, true, NULL);
}

/* A JSON-RPC error answering request id (NULL: null) as the whole body. */
enum MHD_Result mcp_http__reply_error_id(struct MHD_Connection *c, unsigned status, json_t *id, int code,
                                        const char *msg)
{
    json_t *e = mcp_jsonrpc_error(id, code, msg, NULL);
    enum MHD_Result r = mcp_http__reply_json(c, status, e);
    json_decref(e);
    return r;
}

enum MHD_Result mcp_http__reply_error(struct MHD_Connection *c, unsigned status, int code, const char *msg)
{
    return mcp_http__reply_error_id(c, status, NULL, code, msg);
}

/* ---- header checks ------------------------------------------------------------ */

/* The token after "Bearer ", or NULL. */
static const char *bearer_of(const char *authz)
{
    if (!authz || strncasecmp(authz, "Bearer ", 7) != 0)
        return NULL;
    const char *given = authz + 7;
    while (*given == ' ')
        given++;
    return given;
}

/*
 * "Bearer <token>" with the right token, or with a token of the tokens file
 * (its grant goes to *grant).  CRYPTO_memcmp so that the time taken does
 * not tell how much of a guess was right.
 */
static bool auth_ok(const mcp_http_state *h, const char *authz, const mcp_grant **grant)
{
    *grant = NULL;
    if (h->access) {
        *grant = mcp_access_find(h->access, bearer_of(authz));
        return *grant != NULL;
    }
    if (!h->token)
        return true;
    const char *given = bearer_of(authz);
    if (!given)
        return false;
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

/* The client's address as text (for per-client session limits). */
static void client_addr(struct MHD_Connection *c, char *out, size_t n)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, n, "?");
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, (socklen_t)n);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out, (socklen_t)n);
}

/* ---- request memory ------------------------------------------------------------- */

/* Raise what rs holds against the body budget to total bytes; false when
 * the budget cannot give that much now. */
static bool hold(mcp_http_state *h, mcp_http_req *rs, size_t total)
{
    if (total <= rs->reserved)
        return true;
    bool ok;
    pthread_mutex_lock(&h->mu);
    size_t need = total - rs->reserved;
    ok = h->held + need <= h->lim.body_budget;
    if (ok) {
        h->held += need;
        rs->reserved = total;
    }
    pthread_mutex_unlock(&h->mu);
    return ok;
}

static void release(mcp_http_state *h, mcp_http_req *rs)
{
    pthread_mutex_lock(&h->mu);
    h->held -= rs->reserved;
    rs->reserved = 0;
    pthread_mutex_unlock(&h->mu);
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

static bool is_call(const mcp_msg *m)
{
    return m->kind == MCP_MSG_REQUEST && strcmp(m->method, "tools/call") == 0;
}

/*
 * A message that names a 2026-07-28 version in _meta: served on its own,
 * with no session (an MCP-Session-Id header is ignored, none is minted) by
 * a server core made for this one message, after checking the headers.
 * Status codes as that revision's transport says: 400 for header and
 * version errors, 404 for an unknown method, 202 for notifications.  Not
 * offered: cancelling a request from another POST (each request has its
 * own core).  Takes *m.
 */
static enum MHD_Result handle_modern_post(mcp_http_state *h, struct MHD_Connection *c, mcp_http_req *rs, mcp_msg *m,
                                          json_t *version)
{
    char why[300];
    if (!modern_headers_ok(c, m, version, why, sizeof why))
        return mcp_http__reply_error_id(c, MHD_HTTP_BAD_REQUEST, m->id, MCP_JSONRPC_HEADER_MISMATCH, why);
    mcp_server_opts o = *h->opts;
    o.workers = 0; /* inline: the thread that handles the message runs the call */
    o.grant = rs->grant;
    mcp_server *srv = mcp_server_new(&o, h->be, mcp_http__emit, NULL, NULL);
    if (!srv)
        return mcp_http__reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, MCP_JSONRPC_INTERNAL_ERROR, EG_OOM_TEXT);
    if (is_call(m))
        return mcp_http__start_call(h, c, rs, NULL, srv, m, wants_stream(c, m), true);
    size_t len = 0;
    char *t = mcp_http__run_inline(srv, m, &len);
    mcp_server_free(srv);
    if (m->kind != MCP_MSG_REQUEST || !t) {
        eg_free(t);
        return mcp_http__reply(c, MHD_HTTP_ACCEPTED, NULL, NULL, NULL);
    }
    return mcp_http__reply_buf(c, mcp_http__modern_status(t, len), "application/json", t, len, true, NULL);
}

static enum MHD_Result handle_post_msg(mcp_http_state *h, struct MHD_Connection *c, mcp_http_req *rs, mcp_msg *m)
{
    const char *sid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "MCP-Session-Id");
    bool is_init = m->kind == MCP_MSG_REQUEST && strcmp(m->method, "initialize") == 0;
    if (m->kind == MCP_MSG_INVALID) /* framing errors need no session: answer them directly */
        return mcp_http__reply_error_id(c, MHD_HTTP_BAD_REQUEST, m->id, m->err_code, m->err_msg);
    json_t *modern = NULL;
    if ((m->kind == MCP_MSG_REQUEST || m->kind == MCP_MSG_NOTIFICATION) && !is_init)
        modern = mcp_modern_version_of(m->params);
    if (modern)
        return handle_modern_post(h, c, rs, m, modern);
    mcp_http_session *s = NULL;
    bool fresh = false;
    if (sid) {
        s = mcp_http__session_get(h, sid, rs->grant);
        if (!s)
            return mcp_http__reply_error(c, MHD_HTTP_NOT_FOUND, MCP_JSONRPC_INVALID_REQUEST,
                                        "unknown or expired MCP-Session-Id: initialize a new session");
    } else if (is_init) {
        char owner[INET6_ADDRSTRLEN];
        client_addr(c, owner, sizeof owner);
        s = mcp_http__session_new(h, owner, rs->grant);
        fresh = true;
        if (!s)
            return mcp_http__reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, MCP_JSONRPC_INTERNAL_ERROR, EG_OOM_TEXT);
    } else {
        return mcp_http__reply_error(c, MHD_HTTP_BAD_REQUEST, MCP_JSONRPC_INVALID_REQUEST,
                                    "missing MCP-Session-Id header (send initialize first)");
    }
    if (!fresh && is_call(m))
        return mcp_http__start_call(h, c, rs, s, s->srv, m, wants_stream(c, m), false);
    size_t len = 0;
    char *t = mcp_http__run_inline(s->srv, m, &len);
    enum MHD_Result ret;
    if (m->kind != MCP_MSG_REQUEST) {
        eg_free(t);
        ret = mcp_http__reply(c, MHD_HTTP_ACCEPTED, NULL, NULL, NULL);
    } else if (!t) {
        ret = mcp_http__reply(c, MHD_HTTP_ACCEPTED, NULL, NULL, NULL); /* cancelled: no answer expected */
    } else if (fresh && mcp_http__answer_error_code(t, len) == 0) {
        const char *why = mcp_http__session_add(h, s);
        if (why) {
            eg_free(t);
            ret = mcp_http__reply_error_id(c, MHD_HTTP_SERVICE_UNAVAILABLE, m->id, MCP_JSONRPC_INTERNAL_ERROR, why);
            fresh = true; /* not registered: freed below */
        } else {
            ret = mcp_http__reply_buf(c, MHD_HTTP_OK, "application/json", t, len, true, s->id);
            fresh = false; /* the table has it */
        }
    } else {
        ret = mcp_http__reply_buf(c, MHD_HTTP_OK, "application/json", t, len, true, NULL);
    }
    if (fresh) {
        mcp_http__session_free(s);
        return ret;
    }
    mcp_http__session_release(h, s);
    return ret;
}

/* The body is complete: parse it once, free it, and serve the message. */
static enum MHD_Result handle_post(mcp_http_state *h, struct MHD_Connection *c, mcp_http_req *rs)
{
    mcp_msg m;
    mcp_jsonrpc_parse(&m, rs->body.ptr ? rs->body.ptr : "", rs->body.len);
    eg_buf_free(&rs->body); /* the budget reservation stays: it covers the parsed tree */
    enum MHD_Result r = handle_post_msg(h, c, rs, &m);
    mcp_msg_clear(&m);
    return r;
}

/* ---- requests ---------------------------------------------------------------------------- */

/* Mark the connection's headers as arrived (the header deadline is met). */
static void headers_arrived(mcp_http_state *h, struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    mcp_http_conn *t = ci ? ci->socket_context : NULL;
    if (!t)
        return;
    pthread_mutex_lock(&h->mu);
    t->headers_done = true;
    pthread_mutex_unlock(&h->mu);
}

static enum MHD_Result handle_delete(mcp_http_state *h, struct MHD_Connection *c)
{
    const char *sid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "MCP-Session-Id");
    bool found = sid && mcp_http__session_delete(h, sid);
    return mcp_http__reply(c, found ? MHD_HTTP_NO_CONTENT : MHD_HTTP_NOT_FOUND, NULL, NULL, NULL);
}

/*
 * MHD's first call: the headers are in, no body byte has been read.  Every
 * refusal happens here.  Returns the result of a queued answer, or MHD_YES
 * with nothing queued to go on reading a POST body.
 */
static enum MHD_Result check_headers(mcp_http_state *h, struct MHD_Connection *c, const char *url, const char *method,
                                     mcp_http_req *rs)
{
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
    if (h->console && mcp_http__console_path(url)) {
        if (h->loopback_bind && host && !mcp_http__host_allowed(host, h->allowed_hosts))
            return mcp_http__reply(c, MHD_HTTP_FORBIDDEN, "text/plain", "Host not allowed\n", NULL);
        return mcp_http__console_reply(c, url, method);
    }
    if (!auth_ok(h, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"), &rs->grant))
        return mcp_http__reply_error(c, MHD_HTTP_UNAUTHORIZED, MCP_JSONRPC_INVALID_REQUEST,
                                    "missing or wrong bearer token (Authorization: Bearer ...)");
    if (strcmp(url, HTTP_PATH) != 0)
        return mcp_http__reply(c, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n", NULL);
    if (h->loopback_bind && host && !mcp_http__host_allowed(host, h->allowed_hosts))
        return mcp_http__reply_error(c, MHD_HTTP_FORBIDDEN, MCP_JSONRPC_INVALID_REQUEST,
                                    "Host not allowed (a loopback server answers loopback names only; see "
                           "ENGRAM_MCP_ALLOWED_HOSTS)");
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    if (origin && !mcp_http__origin_allowed(origin, h->allowed_origins) &&
        !(h->console && mcp_http__origin_is_host(origin, host)))
        return mcp_http__reply_error(c, MHD_HTTP_FORBIDDEN, MCP_JSONRPC_INVALID_REQUEST, "Origin not allowed");
    const char *pv = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "MCP-Protocol-Version");
    if (pv && !mcp_version_known(pv, false)) {
        json_t *e = mcp_unsupported_version_error(NULL, pv);
        enum MHD_Result r = mcp_http__reply_json(c, MHD_HTTP_BAD_REQUEST, e);
        json_decref(e);
        return r;
    }
    if (strcmp(method, "GET") == 0)
        return mcp_http__reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "no server-initiated stream\n", NULL);
    if (strcmp(method, "DELETE") == 0)
        return handle_delete(h, c);
    if (strcmp(method, "POST") != 0)
        return mcp_http__reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "use POST\n", NULL);
    if (!mcp_http__is_json_type(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type")))
        return mcp_http__reply_error(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, MCP_JSONRPC_INVALID_REQUEST,
                                    "Content-Type must be application/json");
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl) {
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno || end == cl || *end || cl[0] == '-' || n > EG_LIMIT_MCP_HTTP_BODY)
            return mcp_http__reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, MCP_JSONRPC_INVALID_REQUEST,
                                        "message too large");
        if (!hold(h, rs, (size_t)n))
            return mcp_http__reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, MCP_JSONRPC_INTERNAL_ERROR,
                                        "the server holds too many request bodies right now; retry");
        if (n && eg_buf_reserve(&rs->body, (size_t)n) != 0)
            return mcp_http__reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, MCP_JSONRPC_INTERNAL_ERROR, EG_OOM_TEXT);
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    mcp_http_state *h = cls;
    mcp_http_req *rs = *con_cls;
    if (!rs) {
        headers_arrived(h, c);
        rs = eg_calloc(1, sizeof *rs);
        if (!rs)
            return MHD_NO;
        eg_buf_init(&rs->body, EG_LIMIT_MCP_HTTP_BODY);
        *con_cls = rs;
        return check_headers(h, c, url, method, rs);
    }
    if (rs->job)
        return mcp_http__answer_job(c, rs);
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        /* Past the cap or the budget: close now, read nothing more. */
        if (rs->body.len + n > EG_LIMIT_MCP_HTTP_BODY || !hold(h, rs, rs->body.len + n) ||
            eg_buf_append(&rs->body, upload_data, n) != 0) {
            EG_WARN("mcp-http", "closing a connection whose request body passed %u bytes or the body budget",
                    EG_LIMIT_MCP_HTTP_BODY);
            return MHD_NO;
        }
        return MHD_YES;
    }
    return handle_post(h, c, rs);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)c;
    (void)toe;
    mcp_http_state *h = cls;
    mcp_http_req *rs = *con_cls;
    if (!rs)
        return;
    if (rs->job)
        mcp_http__job_unref(rs->job);
    release(h, rs);
    eg_buf_free(&rs->body);
    eg_free(rs);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    mcp_http_state *h = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        mcp_http_conn *t = eg_calloc(1, sizeof *t);
        if (!t)
            return; /* untracked: only the idle timeout applies */
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        t->fd = ci ? ci->connect_fd : -1;
        t->accepted = eg_mono_ms();
        pthread_mutex_lock(&h->mu);
        t->next = h->tracks;
        if (h->tracks)
            h->tracks->prev = t;
        h->tracks = t;
        pthread_mutex_unlock(&h->mu);
        *socket_context = t;
        return;
    }
    mcp_http_conn *t = *socket_context;
    if (!t)
        return;
    /* MHD calls this before it closes the socket, so the reaper, which
     * works under the same mutex, never touches a reused descriptor. */
    pthread_mutex_lock(&h->mu);
    if (t->prev)
        t->prev->next = t->next;
    else
        h->tracks = t->next;
    if (t->next)
        t->next->prev = t->prev;
    pthread_mutex_unlock(&h->mu);
    eg_free(t);
    *socket_context = NULL;
}

/*
 * The reaper (main thread, every HTTP_REAP_MS): shut connections that
 * missed the header deadline, and cancel calls whose client hung up (a
 * suspended connection is invisible to MHD, so its socket is polled here).
 */
static void reap(mcp_http_state *h, int64_t now)
{
    unsigned late = 0;
    pthread_mutex_lock(&h->mu);
    for (mcp_http_conn *t = h->tracks; t; t = t->next) {
        if (!t->headers_done && !t->reaped && t->fd >= 0 &&
            now - t->accepted > (int64_t)h->lim.header_timeout_s * 1000) {
            shutdown(t->fd, SHUT_RDWR); /* MHD sees the end and closes it */
            t->reaped = true;
            late++;
        }
    }
    for (mcp_http_job *j = h->active; j; j = j->next_a) {
        if (!j->suspended || j->done || j->gone || j->fd < 0)
            continue;
        struct pollfd p = {.fd = j->fd, .events = POLLRDHUP};
        if (poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
            mcp_http__job_gone_locked(j, "the client closed its connection");
    }
    pthread_mutex_unlock(&h->mu);
    if (late)
        EG_DEBUG("mcp-http", "closed %u connection(s) that did not send their headers within %u s", late,
                 h->lim.header_timeout_s);
}

/* ---- the daemon -------------------------------------------------------------------------- */

/* libmicrohttpd hands us its own printf formats: the attribute says so, so
 * -Wformat=2 checks the vsnprintf below as a forwarded format. */
__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    if (!eg_log_enabled(EG_LOG_DEBUG))
        return;
    char line[300];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    EG_DEBUG("mcp-http", "libmicrohttpd: %s", line);
}

static int env_uint(const char *name, unsigned min, unsigned max, unsigned *out, eg_error *err)
{
    int64_t x;
    int rc = eg_env_int(name, min, max, &x, err);
    if (rc == 1)
        *out = (unsigned)x;
    return rc < 0 ? rc : 0;
}

int mcp_http_opts_from_env(mcp_http_opts *o, eg_error *err)
{
    unsigned mib = (unsigned)(o->body_budget >> 20);
    int rc;
    if ((rc = env_uint("ENGRAM_MCP_HTTP_IO_THREADS", 1, 64, &o->io_threads, err)) ||
        (rc = env_uint("ENGRAM_MCP_HTTP_MAX_CONNECTIONS", 16, 65536, &o->max_connections, err)) ||
        (rc = env_uint("ENGRAM_MCP_HTTP_PER_IP", 1, 65536, &o->per_ip, err)) ||
        (rc = env_uint("ENGRAM_MCP_HTTP_HEADER_TIMEOUT", 1, 300, &o->header_timeout_s, err)) ||
        (rc = env_uint("ENGRAM_MCP_HTTP_IDLE_TIMEOUT", 1, 86400, &o->idle_timeout_s, err)) ||
        (rc = env_uint("ENGRAM_MCP_HTTP_SESSIONS", 1, 65536, &o->sessions, err)) ||
        (rc = env_uint("ENGRAM_MCP_HTTP_SESSIONS_PER_CLIENT", 1, 65536, &o->sessions_per_client, err)) ||
        (rc = env_uint("ENGRAM_MCP_HTTP_SESSION_IDLE", 1, 30u * 86400u, &o->session_idle_s, err)) ||
        (rc = env_uint("ENGRAM_MCP_HTTP_SESSION_ACTIVE", 1, 86400u, &o->session_active_s, err)) ||
        (rc = env_uint("ENGRAM_MCP_HTTP_BODY_BUDGET_MB", EG_LIMIT_MCP_HTTP_BODY >> 20, 65536, &mib, err)))
        return rc;
    o->body_budget = (size_t)mib << 20;
    return 0;
}

/* The limits with their defaults filled in. */
static mcp_http_opts with_defaults(const mcp_http_opts *ho)
{
    mcp_http_opts o;
    memset(&o, 0, sizeof o);
    if (ho)
        o = *ho;
    if (!o.io_threads)
        o.io_threads = 2;
    if (!o.max_connections)
        o.max_connections = 1024;
    if (!o.per_ip)
        o.per_ip = 64;
    if (!o.header_timeout_s)
        o.header_timeout_s = 5;
    if (!o.idle_timeout_s)
        o.idle_timeout_s = 60;
    if (!o.sessions)
        o.sessions = 1024;
    if (!o.sessions_per_client)
        o.sessions_per_client = 64;
    if (!o.session_idle_s)
        o.session_idle_s = 3600;
    if (!o.session_active_s)
        o.session_active_s = 60;
    if (!o.body_budget)
        o.body_budget = (size_t)64 << 20;
    if (o.body_budget < EG_LIMIT_MCP_HTTP_BODY)
        o.body_budget = EG_LIMIT_MCP_HTTP_BODY;
    return o;
}

/* Every connection is a descriptor: raise the soft limit to cover
 * max_connections and what the rest of the process uses (Bolt pool,
 * workers, logs), within the hard limit. */
static void raise_fd_limit(unsigned conns)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)conns + 256;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rlim_t old = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want)
        EG_WARN("mcp-http", "open-file limit %llu (hard) is below the %u connections allowed; raise it (ulimit -n)",
                (unsigned long long)rl.rlim_cur, conns);
    else
        EG_DEBUG("mcp-http", "open-file limit raised from %llu to %llu", (unsigned long long)old,
                 (unsigned long long)rl.rlim_cur);
}

/* Set by the handler on whichever thread takes the signal: a lock-free
 * atomic (see transport_stdio.c). */
static atomic_int g_stop;
static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&g_stop, 1);
}

static void state_free(mcp_http_state *h)
{
    for (unsigned i = 0; h->sessions && i < h->lim.sessions; i++)
        if (h->sessions[i]) {
            mcp_http_session *f = mcp_http__session_kill_locked(h, i);
            if (f)
                mcp_http__session_free(f);
        }
    eg_free(h->sessions);
    eg_free(h->workers);
    eg_free(h->allowed_origins);
    eg_free(h->allowed_hosts);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
}

int mcp_http_serve(const mcp_server_opts *opts, const mcp_backend *be, const mcp_http_opts *ho, eg_error *err)
{
    static const mcp_server_opts defaults = {0};
    const char *host = ho && ho->host && *ho->host ? ho->host : "127.0.0.1";
    unsigned port = ho ? ho->port : 0;
    const char *token = ho && ho->token && *ho->token ? ho->token : NULL;
    const mcp_access *access = ho ? ho->access : NULL;
    /* One address family per daemon: an IPv4 or IPv6 literal, nothing else
     * (a name could resolve to several addresses, some of them public). */
    int crc = mcp_http_check_bind(host, token != NULL || access != NULL, err);
    if (crc)
        return crc;
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    struct sockaddr *bind_addr = NULL;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
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
    mcp_http_state h;
    memset(&h, 0, sizeof h);
    h.opts = opts ? opts : &defaults;
    h.be = be;
    h.lim = with_defaults(ho);
    h.token = token;
    h.access = access;
    h.loopback_bind = mcp_http_host_is_loopback(host);
    const char *con = getenv("ENGRAM_MCP_CONSOLE");
    h.console = !(con && (!strcmp(con, "0") || !strcasecmp(con, "off") || !strcasecmp(con, "false")));
    pthread_mutex_init(&h.mu, NULL);
    pthread_cond_init(&h.cv, NULL);
    const char *ao = getenv("ENGRAM_MCP_ALLOWED_ORIGINS");
    const char *ah = getenv("ENGRAM_MCP_ALLOWED_HOSTS");
    h.allowed_origins = ao ? eg_strdup(ao) : NULL;
    h.allowed_hosts = ah ? eg_strdup(ah) : NULL;
    unsigned nw = h.opts->workers ? h.opts->workers : 4;
    h.sessions = eg_calloc(h.lim.sessions, sizeof *h.sessions);
    h.workers = eg_calloc(nw, sizeof *h.workers);
    if (!h.sessions || !h.workers || (ao && !h.allowed_origins) || (ah && !h.allowed_hosts)) {
        state_free(&h);
        return eg_error_oom(err);
    }
    for (; h.n_workers < nw; h.n_workers++)
        if (pthread_create(&h.workers[h.n_workers], NULL, mcp_http__call_thread, &h) != 0) {
            mcp_http__stop_calls(&h);
            state_free(&h);
            return eg_error_set(err, EG_EINTERNAL, EG_CLASS_NONE, "cannot start the MCP call threads");
        }
    raise_fd_limit(h.lim.max_connections);
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, &h, MHD_OPTION_SOCK_ADDR, bind_addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, &h, MHD_OPTION_NOTIFY_CONNECTION, on_connection, &h,
        MHD_OPTION_THREAD_POOL_SIZE, h.lim.io_threads, MHD_OPTION_CONNECTION_LIMIT, h.lim.max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, h.lim.per_ip, MHD_OPTION_CONNECTION_TIMEOUT, h.lim.idle_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_MHD_POOL_BYTES, MHD_OPTION_LISTEN_BACKLOG_SIZE,
        (unsigned)1024, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
    bool v6 = bind_addr->sa_family == AF_INET6;
    if (!d) {
        mcp_http__stop_calls(&h);
        state_free(&h);
        return eg_error_set(err, EG_EIO, EG_CLASS_CONNECTION, "cannot listen on %s%s%s:%u", v6 ? "[" : "", host,
                            v6 ? "]" : "", port);
    }
    char authn[96];
    if (access)
        snprintf(authn, sizeof authn, "tokens file: %zu tokens, each limited to its namespaces",
                 mcp_access_count(access));
    else
        snprintf(authn, sizeof authn, "%s", token ? "bearer token required" : "no authentication: loopback only");
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned bound = di && di->port ? di->port : port;
    EG_INFO("mcp-http", "serving MCP on http://%s%s%s:%u%s (%s; %u call threads, %u connections, %u per client)",
            v6 ? "[" : "", host, v6 ? "]" : "", bound, HTTP_PATH, authn, nw, h.lim.max_connections, h.lim.per_ip);
    if (h.console)
        EG_INFO("mcp-http",
                "console on http://%s%s%s:%u/console/ (same token as MCP; ENGRAM_MCP_CONSOLE=0 turns it off)",
                v6 ? "[" : "", host, v6 ? "]" : "", bound);
    /* Ours until we return: then the caller's handlers come back, and a
     * second serve in the same process starts unstopped. */
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    atomic_store(&g_stop, 0);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    int64_t last_expiry = eg_mono_ms();
    while (!atomic_load(&g_stop)) {
        eg_sleep_ms(HTTP_REAP_MS);
        int64_t now = eg_mono_ms();
        reap(&h, now);
        if (now - last_expiry >= 1000) {
            mcp_http__sessions_expire(&h, now);
            last_expiry = now;
        }
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    EG_INFO("mcp-http", "stopping");
    /* No new connections; then no call runs or waits (every suspended
     * connection has been resumed by its call's end), so MHD may stop,
     * and the caller may free the backend once we return. */
    MHD_socket lfd = MHD_quiesce_daemon(d);
    mcp_http__stop_calls(&h);
    MHD_stop_daemon(d);
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
    state_free(&h);
    return 0;
}
