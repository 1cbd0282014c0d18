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
 * must carry it: missing -> 400, unknown -> 404.  Each session belongs to
 * the client address that made it: one address holds at most
 * sessions_per_client (making one more retires that address's own least
 * recently used idle session), and the table (`sessions`) never evicts
 * another client's session: when it is full of live ones, 503.  Sessions
 * idle for session_idle_s expire.
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
 * Thread-safety: one mutex (http_state.mu) guards the session table, the
 * call queue, the job states and the connection list; sessions and jobs
 * are reference-counted.  Lock order: http_state.mu, then an mcp_server's,
 * then MHD's own.
 */
#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/limits.h"
#include "core/log.h"
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

typedef struct session {
    char id[65];
    char owner[INET6_ADDRSTRLEN]; /* the client address that made it */
    mcp_server *srv;
    int refs; /* requests using it; the table's own reference is implicit */
    bool dead;
    int64_t last_used;
} session;

/* One TCP connection, for the header deadline. */
typedef struct conn_track {
    struct conn_track *prev, *next;
    int fd;
    int64_t accepted;
    bool headers_done; /* its first request's headers arrived */
    bool reaped;
} conn_track;

typedef struct http_state http_state;

/*
 * A tools/call running on a call thread.  References: the call thread's
 * (until it finished) and the connection's (the request state in JSON
 * mode, the SSE response in stream mode).
 */
typedef struct http_job {
    struct http_job *next_q;             /* call queue */
    struct http_job *prev_a, *next_a;    /* active list: queued or running */
    http_state *h;
    struct MHD_Connection *conn;         /* NULL once MHD is done with it */
    int fd;
    session *sess;                       /* a reference, or NULL (own server) */
    mcp_server *srv;                     /* sess->srv, or a server of its own */
    mcp_msg msg;                         /* the parsed message, cleared after the call */
    json_t *id;                          /* request id (own reference) */
    bool sse, modern;
    bool done, suspended, gone;
    int refs;
    eg_buf frames;                       /* SSE: framed events not yet handed to MHD */
    size_t sent;
    char *answer;                        /* JSON: the response text (new), or NULL */
    size_t answer_len;
} http_job;

typedef struct req_state {
    eg_buf body;
    size_t reserved; /* body-budget bytes this request holds */
    http_job *job;   /* a JSON-mode call of this request (a reference) */
} req_state;

struct http_state {
    const mcp_server_opts *opts;
    const mcp_backend *be;
    mcp_http_opts lim;
    const char *token; /* bearer token or NULL (borrowed from the caller) */
    bool loopback_bind;
    char *allowed_origins; /* ENGRAM_MCP_ALLOWED_ORIGINS copy, may be NULL */
    char *allowed_hosts;   /* ENGRAM_MCP_ALLOWED_HOSTS copy, may be NULL */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* call queue non-empty, or stopping */
    session **sessions;
    conn_track *tracks;
    http_job *q_head, *q_tail, *active;
    pthread_t *workers;
    unsigned n_workers;
    bool stopping;
    size_t held; /* request bytes reserved against lim.body_budget */
};

/* The job whose output this thread is producing (the inline ones too). */
static _Thread_local http_job *tl_job;

/* ---- answers ------------------------------------------------------------ */

/* Queue an answer.  body: len bytes; with own, *new* memory the response
 * takes (freed by MHD through eg_free), else copied.  Every answer >= 400
 * closes the connection: a refused client gets nothing more on it. */
static enum MHD_Result reply_buf(struct MHD_Connection *c, unsigned status, const char *ctype, char *body,
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

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *ctype, const char *body,
                             const char *session_id)
{
    return reply_buf(c, status, ctype, (char *)body, body ? strlen(body) : 0, false, session_id);
}

/* msg (borrowed; NULL: an empty body) as an application/json answer. */
static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, json_t *msg)
{
    size_t len = 0;
    char *t = msg ? mcp_jsonrpc_dump(msg, &len) : NULL;
    if (!t)
        return reply(c, status, "application/json", "", NULL);
    return reply_buf(c, status, "application/json", t, len, true, NULL);
}

/* A JSON-RPC error answering request id (NULL: null) as the whole body. */
static enum MHD_Result reply_error_id(struct MHD_Connection *c, unsigned status, json_t *id, int code,
                                      const char *msg)
{
    json_t *e = mcp_jsonrpc_error(id, code, msg, NULL);
    enum MHD_Result r = reply_json(c, status, e);
    json_decref(e);
    return r;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, int code, const char *msg)
{
    return reply_error_id(c, status, NULL, code, msg);
}

/* ---- output of the server core ---------------------------------------------- */

/* The core builds notifications as {"jsonrpc","method",...} and responses
 * as {"jsonrpc","id",...} (jsonrpc.c; jansson keeps insertion order), so
 * the prefix tells them apart without parsing a possibly large text. */
static bool is_notification_text(const char *msg, size_t len)
{
    static const char p[] = "{\"jsonrpc\":\"2.0\",\"method\":";
    return len >= sizeof p - 1 && memcmp(msg, p, sizeof p - 1) == 0;
}

static void http_emit(void *ud, const char *msg, size_t len)
{
    (void)ud;
    http_job *j = tl_job;
    if (!j)
        return; /* not part of a request (e.g. a log record from another thread) */
    if (j->sse) {
        http_state *h = j->h;
        pthread_mutex_lock(&h->mu);
        if (eg_buf_puts(&j->frames, "event: message\ndata: ") != 0 || eg_buf_append(&j->frames, msg, len) != 0 ||
            eg_buf_puts(&j->frames, "\n\n") != 0)
            EG_WARN("mcp-http", "an SSE event did not fit the stream buffer and was dropped");
        if (j->suspended && j->conn) {
            j->suspended = false;
            MHD_resume_connection(j->conn);
        }
        pthread_mutex_unlock(&h->mu);
        return;
    }
    /* JSON mode: the one response is the answer; progress cannot ride along. */
    if (is_notification_text(msg, len))
        return;
    char *t = eg_malloc(len + 1);
    if (!t)
        return;
    memcpy(t, msg, len);
    t[len] = '\0';
    eg_free(j->answer);
    j->answer = t;
    j->answer_len = len;
}

/* ---- header checks ------------------------------------------------------------ */

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
static bool hold(http_state *h, req_state *rs, size_t total)
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

static void release(http_state *h, req_state *rs)
{
    pthread_mutex_lock(&h->mu);
    h->held -= rs->reserved;
    rs->reserved = 0;
    pthread_mutex_unlock(&h->mu);
}

/* ---- sessions ---------------------------------------------------------------------- */

static void session_free(session *s)
{
    mcp_server_free(s->srv);
    eg_free(s);
}

static void session_release(http_state *h, session *s)
{
    pthread_mutex_lock(&h->mu);
    bool free_it = --s->refs == 0 && s->dead;
    pthread_mutex_unlock(&h->mu);
    if (free_it)
        session_free(s);
}

/* Find and reference a live session; NULL when unknown. */
static session *session_get(http_state *h, const char *id)
{
    session *found = NULL;
    pthread_mutex_lock(&h->mu);
    for (unsigned i = 0; i < h->lim.sessions; i++) {
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

/* Detach a session from the table; the caller frees it (returned) when no
 * request uses it, else its last user does.  Caller holds mu. */
static session *session_kill_locked(http_state *h, unsigned slot)
{
    session *s = h->sessions[slot];
    h->sessions[slot] = NULL;
    s->dead = true;
    return s->refs == 0 ? s : NULL;
}

static session *session_new(http_state *h, const char *owner)
{
    session *s = eg_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    mcp_server_opts o = *h->opts;
    o.workers = 0; /* inline: the thread that handles a message runs its call */
    s->srv = mcp_server_new(&o, h->be, http_emit, NULL, NULL);
    if (!s->srv || eg_rand_hex(s->id, 32) != 0) {
        mcp_server_free(s->srv);
        eg_free(s);
        return NULL;
    }
    snprintf(s->owner, sizeof s->owner, "%s", owner);
    s->refs = 1;
    s->last_used = eg_mono_ms();
    return s;
}

/*
 * Put s in the table.  A client at its quota gives up its own least
 * recently used idle session; another client's session is never taken,
 * so a full table of live sessions answers 503.  NULL on success, else why.
 */
static const char *session_add(http_state *h, session *s)
{
    const char *why = NULL;
    session *evicted = NULL;
    pthread_mutex_lock(&h->mu);
    unsigned mine = 0, free_slot = h->lim.sessions;
    int lru = -1;
    for (unsigned i = 0; i < h->lim.sessions; i++) {
        session *x = h->sessions[i];
        if (!x) {
            if (free_slot == h->lim.sessions)
                free_slot = i;
            continue;
        }
        if (strcmp(x->owner, s->owner) != 0)
            continue;
        mine++;
        if (x->refs == 0 && (lru < 0 || x->last_used < h->sessions[lru]->last_used))
            lru = (int)i;
    }
    if (mine >= h->lim.sessions_per_client) {
        if (lru < 0) {
            why = "too many MCP sessions from this client, all of them busy; retry later";
        } else {
            EG_INFO("mcp-http", "client %s is at its session limit (%u): ending its least recently used session",
                    s->owner, h->lim.sessions_per_client);
            evicted = session_kill_locked(h, (unsigned)lru);
            free_slot = (unsigned)lru;
        }
    } else if (free_slot == h->lim.sessions) {
        why = "too many MCP sessions on this server; retry later (idle sessions expire)";
    }
    if (!why)
        h->sessions[free_slot] = s;
    pthread_mutex_unlock(&h->mu);
    if (evicted)
        session_free(evicted);
    return why;
}

/* Sessions idle for longer than session_idle_s end (the reaper, once a second). */
static void sessions_expire(http_state *h, int64_t now)
{
    session *gone[32];
    unsigned n = 0;
    pthread_mutex_lock(&h->mu);
    for (unsigned i = 0; i < h->lim.sessions && n < 32; i++) {
        session *x = h->sessions[i];
        if (x && x->refs == 0 && now - x->last_used > (int64_t)h->lim.session_idle_s * 1000) {
            session *f = session_kill_locked(h, i);
            if (f)
                gone[n++] = f;
        }
    }
    pthread_mutex_unlock(&h->mu);
    for (unsigned i = 0; i < n; i++)
        session_free(gone[i]);
}

/* ---- calls --------------------------------------------------------------------------- */

static void job_free(http_job *j)
{
    mcp_msg_clear(&j->msg);
    json_decref(j->id);
    if (j->sess)
        session_release(j->h, j->sess);
    else
        mcp_server_free(j->srv);
    eg_buf_free(&j->frames);
    eg_free(j->answer);
    eg_free(j);
}

static void job_unref(http_job *j)
{
    http_state *h = j->h;
    pthread_mutex_lock(&h->mu);
    bool last = --j->refs == 0;
    pthread_mutex_unlock(&h->mu);
    if (last)
        job_free(j);
}

/* The job's client went away: no one waits for its answer.  Caller holds mu. */
static void job_gone_locked(http_job *j, const char *why)
{
    if (j->gone || j->done)
        return;
    j->gone = true;
    EG_INFO("mcp-http", "cancelling a tools/call: %s", why);
    mcp_server_cancel(j->srv, j->id);
}

/* The call ended (or never ran): wake its connection.  Caller holds mu. */
static void job_finish_locked(http_state *h, http_job *j)
{
    j->done = true;
    if (j->prev_a)
        j->prev_a->next_a = j->next_a;
    else
        h->active = j->next_a;
    if (j->next_a)
        j->next_a->prev_a = j->prev_a;
    j->prev_a = j->next_a = NULL;
    if (j->suspended && j->conn) {
        j->suspended = false;
        MHD_resume_connection(j->conn);
    }
}

static void *call_thread(void *arg)
{
    http_state *h = arg;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (!h->q_head && !h->stopping)
            pthread_cond_wait(&h->cv, &h->mu);
        http_job *j = h->q_head;
        if (!j)
            break; /* stopping, nothing queued */
        h->q_head = j->next_q;
        if (!h->q_head)
            h->q_tail = NULL;
        if (!h->stopping && !j->gone) {
            pthread_mutex_unlock(&h->mu);
            tl_job = j;
            mcp_server_handle_msg(j->srv, &j->msg);
            tl_job = NULL;
            mcp_msg_clear(&j->msg); /* the tree can be large: free it before the answer goes out */
            pthread_mutex_lock(&h->mu);
        } else if (!j->sse && !j->gone) {
            json_t *e = mcp_jsonrpc_error(j->id, MCP_JSONRPC_INTERNAL_ERROR, "server is shutting down", NULL);
            j->answer = e ? mcp_jsonrpc_dump(e, &j->answer_len) : NULL;
            json_decref(e);
        }
        job_finish_locked(h, j);
        bool last = --j->refs == 0;
        if (last) {
            pthread_mutex_unlock(&h->mu);
            job_free(j);
            pthread_mutex_lock(&h->mu);
        }
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/*
 * A job for the call threads, taking the parsed message (*m is emptied)
 * and the session reference (sess NULL: srv is its own, freed with it).
 * NULL when out of memory (m and the session are then released).
 */
static http_job *job_new(http_state *h, struct MHD_Connection *c, session *sess, mcp_server *srv, mcp_msg *m,
                         bool sse, bool modern)
{
    http_job *j = eg_calloc(1, sizeof *j);
    if (!j) {
        mcp_msg_clear(m);
        if (sess)
            session_release(h, sess);
        else
            mcp_server_free(srv);
        return NULL;
    }
    j->h = h;
    j->conn = c;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    j->fd = ci ? ci->connect_fd : -1;
    j->sess = sess;
    j->srv = srv;
    j->msg = *m;
    memset(m, 0, sizeof *m);
    j->id = json_incref(j->msg.id);
    j->sse = sse;
    j->modern = modern;
    j->refs = 2; /* the call thread's and the connection's */
    eg_buf_init(&j->frames, (size_t)EG_LIMIT_MCP_RESPONSE + 4096);
    return j;
}

/* Queue j for the call threads; with suspend, park the connection until
 * the answer is ready (JSON mode).  false when the server is stopping. */
static bool job_submit(http_state *h, http_job *j, bool suspend)
{
    pthread_mutex_lock(&h->mu);
    if (h->stopping) {
        pthread_mutex_unlock(&h->mu);
        return false;
    }
    j->next_a = h->active;
    if (h->active)
        h->active->prev_a = j;
    h->active = j;
    if (h->q_tail)
        h->q_tail->next_q = j;
    else
        h->q_head = j;
    h->q_tail = j;
    if (suspend) {
        /* under mu: the call thread cannot resume before we suspended */
        j->suspended = true;
        MHD_suspend_connection(j->conn);
    }
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    return true;
}

/* ---- SSE ------------------------------------------------------------------------------ */

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    http_job *j = cls;
    http_state *h = j->h;
    ssize_t n;
    pthread_mutex_lock(&h->mu);
    if (j->sent < j->frames.len) {
        size_t k = j->frames.len - j->sent;
        if (k > max)
            k = max;
        memcpy(buf, j->frames.ptr + j->sent, k);
        j->sent += k;
        if (j->sent == j->frames.len) {
            eg_buf_reset(&j->frames);
            j->sent = 0;
        }
        n = (ssize_t)k;
    } else if (j->done) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        /* nothing yet: park the connection until the call emits or ends */
        j->suspended = true;
        MHD_suspend_connection(j->conn);
        n = 0;
    }
    pthread_mutex_unlock(&h->mu);
    return n;
}

/* MHD is done with the stream: finished, or the client went away. */
static void sse_free(void *cls)
{
    http_job *j = cls;
    http_state *h = j->h;
    pthread_mutex_lock(&h->mu);
    j->conn = NULL;
    j->suspended = false;
    job_gone_locked(j, "the client closed its event stream");
    pthread_mutex_unlock(&h->mu);
    job_unref(j);
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
 * Run a tools/call on the call threads: as an SSE stream (sse) answered at
 * once, or in JSON mode with the connection suspended until the answer
 * (rs->job).  Takes *m and the session reference (sess NULL: srv is the
 * call's own server).
 */
static enum MHD_Result start_call(http_state *h, struct MHD_Connection *c, req_state *rs, session *sess,
                                  mcp_server *srv, mcp_msg *m, bool sse, bool modern)
{
    http_job *j = job_new(h, c, sess, srv, m, sse, modern);
    if (!j)
        return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, MCP_JSONRPC_INTERNAL_ERROR, "out of memory");
    if (!sse) {
        rs->job = j;
        if (!job_submit(h, j, true)) {
            rs->job = NULL;
            j->refs = 1;
            job_unref(j);
            return reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, MCP_JSONRPC_INTERNAL_ERROR, "server is shutting down");
        }
        return MHD_YES;
    }
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_read, j, sse_free);
    if (!r) {
        j->refs = 1;
        job_unref(j);
        return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, MCP_JSONRPC_INTERNAL_ERROR, "out of memory");
    }
    /* The response owns the connection's reference from here (sse_free). */
    if (!job_submit(h, j, false)) {
        pthread_mutex_lock(&h->mu);
        j->done = true;
        j->refs--; /* the call thread's, which never comes */
        pthread_mutex_unlock(&h->mu);
    }
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* JSON-RPC error code of a response text (0: a result, or too large to be an error). */
static int answer_error_code(const char *t, size_t len)
{
    if (!t || len > 65536)
        return 0;
    json_t *v = json_loadb(t, len, 0, NULL);
    int code = (int)json_integer_value(json_object_get(json_object_get(v, "error"), "code"));
    json_decref(v);
    return code;
}

static unsigned modern_status(const char *answer, size_t len)
{
    int code = answer_error_code(answer, len);
    return code == MCP_JSONRPC_UNSUPPORTED_VERSION ? MHD_HTTP_BAD_REQUEST
           : code == MCP_JSONRPC_METHOD_NOT_FOUND  ? MHD_HTTP_NOT_FOUND
                                                   : MHD_HTTP_OK;
}

/* The connection was resumed: its call has answered (or was cancelled). */
static enum MHD_Result answer_job(struct MHD_Connection *c, req_state *rs)
{
    http_job *j = rs->job;
    char *t = j->answer;
    size_t len = j->answer_len;
    j->answer = NULL;
    if (!t)
        return reply(c, MHD_HTTP_ACCEPTED, NULL, NULL, NULL); /* cancelled: no answer expected */
    unsigned status = j->modern ? modern_status(t, len) : MHD_HTTP_OK;
    return reply_buf(c, status, "application/json", t, len, true, NULL);
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

/* Handle m on srv in this thread; the response text (new) or NULL. */
static char *run_inline(mcp_server *srv, const mcp_msg *m, size_t *len)
{
    http_job local;
    memset(&local, 0, sizeof local);
    tl_job = &local;
    mcp_server_handle_msg(srv, m);
    tl_job = NULL;
    *len = local.answer_len;
    return local.answer;
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
static enum MHD_Result handle_modern_post(http_state *h, struct MHD_Connection *c, req_state *rs, mcp_msg *m,
                                          json_t *version)
{
    char why[300];
    if (!modern_headers_ok(c, m, version, why, sizeof why))
        return reply_error_id(c, MHD_HTTP_BAD_REQUEST, m->id, MCP_JSONRPC_HEADER_MISMATCH, why);
    mcp_server_opts o = *h->opts;
    o.workers = 0; /* inline: the thread that handles the message runs the call */
    mcp_server *srv = mcp_server_new(&o, h->be, http_emit, NULL, NULL);
    if (!srv)
        return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, MCP_JSONRPC_INTERNAL_ERROR, "out of memory");
    if (is_call(m))
        return start_call(h, c, rs, NULL, srv, m, wants_stream(c, m), true);
    size_t len = 0;
    char *t = run_inline(srv, m, &len);
    mcp_server_free(srv);
    if (m->kind != MCP_MSG_REQUEST || !t) {
        eg_free(t);
        return reply(c, MHD_HTTP_ACCEPTED, NULL, NULL, NULL);
    }
    return reply_buf(c, modern_status(t, len), "application/json", t, len, true, NULL);
}

static enum MHD_Result handle_post_msg(http_state *h, struct MHD_Connection *c, req_state *rs, mcp_msg *m)
{
    const char *sid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "MCP-Session-Id");
    bool is_init = m->kind == MCP_MSG_REQUEST && strcmp(m->method, "initialize") == 0;
    if (m->kind == MCP_MSG_INVALID) /* framing errors need no session: answer them directly */
        return reply_error_id(c, MHD_HTTP_BAD_REQUEST, m->id, m->err_code, m->err_msg);
    json_t *modern = NULL;
    if ((m->kind == MCP_MSG_REQUEST || m->kind == MCP_MSG_NOTIFICATION) && !is_init)
        modern = mcp_modern_version_of(m->params);
    if (modern)
        return handle_modern_post(h, c, rs, m, modern);
    session *s = NULL;
    bool fresh = false;
    if (sid) {
        s = session_get(h, sid);
        if (!s)
            return reply_error(c, MHD_HTTP_NOT_FOUND, MCP_JSONRPC_INVALID_REQUEST,
                               "unknown or expired MCP-Session-Id: initialize a new session");
    } else if (is_init) {
        char owner[INET6_ADDRSTRLEN];
        client_addr(c, owner, sizeof owner);
        s = session_new(h, owner);
        fresh = true;
        if (!s)
            return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, MCP_JSONRPC_INTERNAL_ERROR, "out of memory");
    } else {
        return reply_error(c, MHD_HTTP_BAD_REQUEST, MCP_JSONRPC_INVALID_REQUEST,
                           "missing MCP-Session-Id header (send initialize first)");
    }
    if (!fresh && is_call(m))
        return start_call(h, c, rs, s, s->srv, m, wants_stream(c, m), false);
    size_t len = 0;
    char *t = run_inline(s->srv, m, &len);
    enum MHD_Result ret;
    if (m->kind != MCP_MSG_REQUEST) {
        eg_free(t);
        ret = reply(c, MHD_HTTP_ACCEPTED, NULL, NULL, NULL);
    } else if (!t) {
        ret = reply(c, MHD_HTTP_ACCEPTED, NULL, NULL, NULL); /* cancelled: no answer expected */
    } else if (fresh && answer_error_code(t, len) == 0) {
        const char *why = session_add(h, s);
        if (why) {
            eg_free(t);
            ret = reply_error_id(c, MHD_HTTP_SERVICE_UNAVAILABLE, m->id, MCP_JSONRPC_INTERNAL_ERROR, why);
            fresh = true; /* not registered: freed below */
        } else {
            ret = reply_buf(c, MHD_HTTP_OK, "application/json", t, len, true, s->id);
            fresh = false; /* the table has it */
        }
    } else {
        ret = reply_buf(c, MHD_HTTP_OK, "application/json", t, len, true, NULL);
    }
    if (fresh) {
        session_free(s);
        return ret;
    }
    session_release(h, s);
    return ret;
}

/* The body is complete: parse it once, free it, and serve the message. */
static enum MHD_Result handle_post(http_state *h, struct MHD_Connection *c, req_state *rs)
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
static void headers_arrived(http_state *h, struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_track *t = ci ? ci->socket_context : NULL;
    if (!t)
        return;
    pthread_mutex_lock(&h->mu);
    t->headers_done = true;
    pthread_mutex_unlock(&h->mu);
}

static enum MHD_Result handle_delete(http_state *h, struct MHD_Connection *c)
{
    const char *sid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "MCP-Session-Id");
    session *f = NULL;
    bool found = false;
    pthread_mutex_lock(&h->mu);
    for (unsigned i = 0; sid && i < h->lim.sessions; i++)
        if (h->sessions[i] && strcmp(h->sessions[i]->id, sid) == 0) {
            f = session_kill_locked(h, i);
            found = true;
            break;
        }
    pthread_mutex_unlock(&h->mu);
    if (f)
        session_free(f);
    return reply(c, found ? MHD_HTTP_NO_CONTENT : MHD_HTTP_NOT_FOUND, NULL, NULL, NULL);
}

/*
 * MHD's first call: the headers are in, no body byte has been read.  Every
 * refusal happens here.  Returns the result of a queued answer, or MHD_YES
 * with nothing queued to go on reading a POST body.
 */
static enum MHD_Result check_headers(http_state *h, struct MHD_Connection *c, const char *url, const char *method,
                                     req_state *rs)
{
    if (!auth_ok(h, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization")))
        return reply_error(c, MHD_HTTP_UNAUTHORIZED, MCP_JSONRPC_INVALID_REQUEST,
                           "missing or wrong bearer token (Authorization: Bearer ...)");
    if (strcmp(url, HTTP_PATH) != 0)
        return reply(c, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n", NULL);
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
    if (h->loopback_bind && host && !mcp_http_host_allowed(host, h->allowed_hosts))
        return reply_error(c, MHD_HTTP_FORBIDDEN, MCP_JSONRPC_INVALID_REQUEST,
                           "Host not allowed (a loopback server answers loopback names only; see "
                           "ENGRAM_MCP_ALLOWED_HOSTS)");
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    if (origin && !mcp_http_origin_allowed(origin, h->allowed_origins))
        return reply_error(c, MHD_HTTP_FORBIDDEN, MCP_JSONRPC_INVALID_REQUEST, "Origin not allowed");
    const char *pv = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "MCP-Protocol-Version");
    if (pv && !mcp_version_known(pv, false)) {
        json_t *e = mcp_unsupported_version_error(NULL, pv);
        enum MHD_Result r = reply_json(c, MHD_HTTP_BAD_REQUEST, e);
        json_decref(e);
        return r;
    }
    if (strcmp(method, "GET") == 0)
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "no server-initiated stream\n", NULL);
    if (strcmp(method, "DELETE") == 0)
        return handle_delete(h, c);
    if (strcmp(method, "POST") != 0)
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "use POST\n", NULL);
    if (!mcp_http_is_json_type(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type")))
        return reply_error(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, MCP_JSONRPC_INVALID_REQUEST,
                           "Content-Type must be application/json");
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl) {
        char *end = NULL;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno || end == cl || *end || cl[0] == '-' || n > EG_LIMIT_MCP_HTTP_BODY)
            return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, MCP_JSONRPC_INVALID_REQUEST, "message too large");
        if (!hold(h, rs, (size_t)n))
            return reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, MCP_JSONRPC_INTERNAL_ERROR,
                               "the server holds too many request bodies right now; retry");
        if (n && eg_buf_reserve(&rs->body, (size_t)n) != 0)
            return reply_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, MCP_JSONRPC_INTERNAL_ERROR, "out of memory");
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    http_state *h = cls;
    req_state *rs = *con_cls;
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
        return answer_job(c, rs);
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
    http_state *h = cls;
    req_state *rs = *con_cls;
    if (!rs)
        return;
    if (rs->job)
        job_unref(rs->job);
    release(h, rs);
    eg_buf_free(&rs->body);
    eg_free(rs);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    http_state *h = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_track *t = eg_calloc(1, sizeof *t);
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
    conn_track *t = *socket_context;
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
static void reap(http_state *h, int64_t now)
{
    unsigned late = 0;
    pthread_mutex_lock(&h->mu);
    for (conn_track *t = h->tracks; t; t = t->next) {
        if (!t->headers_done && !t->reaped && t->fd >= 0 &&
            now - t->accepted > (int64_t)h->lim.header_timeout_s * 1000) {
            shutdown(t->fd, SHUT_RDWR); /* MHD sees the end and closes it */
            t->reaped = true;
            late++;
        }
    }
    for (http_job *j = h->active; j; j = j->next_a) {
        if (!j->suspended || j->done || j->gone || j->fd < 0)
            continue;
        struct pollfd p = {.fd = j->fd, .events = POLLRDHUP};
        if (poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
            job_gone_locked(j, "the client closed its connection");
    }
    pthread_mutex_unlock(&h->mu);
    if (late)
        EG_DEBUG("mcp-http", "closed %u connection(s) that did not send their headers within %u s", late,
                 h->lim.header_timeout_s);
}

/* ---- the daemon -------------------------------------------------------------------------- */

static void mhd_log(void *cls, const char *fmt, va_list ap)
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
    const char *v = getenv(name);
    if (!v || !*v)
        return 0;
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-' || x < min || x > max)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "%s must be an integer in %u..%u", name, min, max);
    *out = (unsigned)x;
    return 0;
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
        o.per_ip = 32;
    if (!o.header_timeout_s)
        o.header_timeout_s = 5;
    if (!o.idle_timeout_s)
        o.idle_timeout_s = 60;
    if (!o.sessions)
        o.sessions = 256;
    if (!o.sessions_per_client)
        o.sessions_per_client = 16;
    if (!o.session_idle_s)
        o.session_idle_s = 3600;
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

static volatile sig_atomic_t g_stop;
static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* Stop the call threads: cancel what runs, answer what waits, join. */
static void stop_calls(http_state *h)
{
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    for (http_job *j = h->active; j; j = j->next_a)
        mcp_server_cancel(j->srv, j->id);
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    for (unsigned i = 0; i < h->n_workers; i++)
        pthread_join(h->workers[i], NULL);
    h->n_workers = 0;
}

static void state_free(http_state *h)
{
    for (unsigned i = 0; h->sessions && i < h->lim.sessions; i++)
        if (h->sessions[i]) {
            session *f = session_kill_locked(h, i);
            if (f)
                session_free(f);
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
    http_state h;
    memset(&h, 0, sizeof h);
    h.opts = opts ? opts : &defaults;
    h.be = be;
    h.lim = with_defaults(ho);
    h.token = token;
    h.loopback_bind = mcp_http_host_is_loopback(host);
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
        return eg_error_set(err, EG_ENOMEM, EG_CLASS_NONE, "out of memory");
    }
    for (; h.n_workers < nw; h.n_workers++)
        if (pthread_create(&h.workers[h.n_workers], NULL, call_thread, &h) != 0) {
            stop_calls(&h);
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
        stop_calls(&h);
        state_free(&h);
        return eg_error_set(err, EG_EIO, EG_CLASS_CONNECTION, "cannot listen on %s%s%s:%u", v6 ? "[" : "", host,
                            v6 ? "]" : "", port);
    }
    EG_INFO("mcp-http", "serving MCP on http://%s%s%s:%u%s (%s; %u call threads, %u connections, %u per client)",
            v6 ? "[" : "", host, v6 ? "]" : "", port, HTTP_PATH,
            token ? "bearer token required" : "no authentication: loopback only", nw, h.lim.max_connections,
            h.lim.per_ip);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int64_t last_expiry = eg_mono_ms();
    while (!g_stop) {
        eg_sleep_ms(HTTP_REAP_MS);
        int64_t now = eg_mono_ms();
        reap(&h, now);
        if (now - last_expiry >= 1000) {
            sessions_expire(&h, now);
            last_expiry = now;
        }
    }
    EG_INFO("mcp-http", "stopping");
    /* No new connections; then no call runs or waits (every suspended
     * connection has been resumed by its call's end), so MHD may stop,
     * and the caller may free the backend once we return. */
    MHD_socket lfd = MHD_quiesce_daemon(d);
    stop_calls(&h);
    MHD_stop_daemon(d);
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
    state_free(&h);
    return 0;
}
