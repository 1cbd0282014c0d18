/*
 * http_int.h - internals of the Streamable HTTP transport, shared by its
 * files (internal to src/mcp):
 *
 *   transport_http.c  the daemon: header checks, request routing, limits,
 *                     the reaper, start and shutdown
 *   http_guard.c      Origin, Host and Content-Type parsing (pure; unit
 *                     tests and a fuzzer drive it directly)
 *   http_session.c    the session table, per-client limits, expiry
 *   http_call.c       tools/call jobs on the call threads, SSE streams
 *
 * The header checks parse text a peer controls: no allocation, bounded by
 * the input's length, no state.  Thread-safety of the rest: see
 * mcp_http_state.
 */
#ifndef ENGRAM_MCP_HTTP_INT_H
#define ENGRAM_MCP_HTTP_INT_H

#include "core/buf.h"
#include "mcp/jsonrpc.h"
#include "mcp/server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An origin or Host value taken apart.  host keeps brackets off an IPv6
 * literal; port 0 means none was given. */
typedef struct mcp_http_origin {
    char scheme[8];                          /* "http" or "https", lower case; "" for a Host header */
    char host[256];                          /* lower case */
    unsigned port;
} mcp_http_origin;

/*
 * Parse an Origin header, exactly "scheme://host[:port]" (RFC 6454): scheme
 * http or https, a host name of letters, digits, '-' and '.', or a bracketed
 * IPv6 literal, an optional decimal port 1..65535, and nothing else (no
 * userinfo, path, query or fragment).  false when o is anything else.
 */
bool mcp_http__parse_origin(const char *o, mcp_http_origin *out);

/* Parse a Host header, "host[:port]" with the same host grammar. */
bool mcp_http__parse_host(const char *h, mcp_http_origin *out);

/* localhost, an IPv4 literal in 127.0.0.0/8, or ::1. */
bool mcp_http__name_is_loopback(const char *host);

/*
 * Is origin o allowed: a loopback origin, or one listed in `allowed` (a
 * comma-separated list of origins, NULL: none), compared after parsing
 * (scheme and host case-insensitively, an absent port equal to the
 * scheme's default).  A header that does not parse is refused.
 */
bool mcp_http__origin_allowed(const char *o, const char *allowed);

/*
 * Is Host h acceptable on a loopback bind: a loopback name, or a host listed
 * in `allowed` (comma-separated names, NULL: none).  Refusing other names
 * stops DNS rebinding: a page of evil.example whose name now resolves to
 * 127.0.0.1 still sends "Host: evil.example".
 */
bool mcp_http__host_allowed(const char *h, const char *allowed);

/*
 * Is origin o the server's own as the browser addressed it (Host h): scheme
 * http, the same host and port.  The console's page posts to /mcp from
 * there.  Safe to allow: a loopback bind also checks Host (so a rebinding
 * page's Host is refused), and any other bind requires a bearer token,
 * which a browser never sends on its own.
 */
bool mcp_http__origin_is_host(const char *o, const char *h);

/* Content-Type is application/json (any case, optional parameters). */
bool mcp_http__is_json_type(const char *ctype);

/* ---- the transport's shared state (transport_http.c, http_session.c,
 * http_call.c).  Everything below is guarded by mcp_http_state.mu unless
 * its comment says otherwise. ---- */

/* A session: one server core per client.  refs and dead are guarded by mu. */
typedef struct mcp_http_session {
    char id[65];
    char owner[INET6_ADDRSTRLEN];            /* the client address that made it */
    mcp_server *srv;
    const struct mcp_grant *grant;           /* the token that made it (NULL: no tokens file);
                                                only that token may use it */
    int refs;                                /* requests using it (the table's is implicit) */
    bool dead;
    int64_t last_used;
} mcp_http_session;

/* One TCP connection, for the header deadline. */
typedef struct mcp_http_conn {
    struct mcp_http_conn *prev, *next;
    int fd;
    int64_t accepted;
    bool headers_done;                       /* its first request's headers arrived */
    bool reaped;
} mcp_http_conn;

typedef struct mcp_http_state mcp_http_state;

/*
 * A tools/call running on a call thread.  References: the call thread's
 * (until it finished) and the connection's (the request state in JSON
 * mode, the SSE response in stream mode).
 */
typedef struct mcp_http_job {
    struct mcp_http_job *next_q;             /* call queue */
    struct mcp_http_job *prev_a, *next_a;    /* active list: queued or running */
    mcp_http_state *h;
    struct MHD_Connection *conn;             /* NULL once MHD is done with it */
    int fd;
    mcp_http_session *sess;                  /* a reference, or NULL (own server) */
    mcp_server *srv;                         /* sess->srv, or a server of its own */
    mcp_msg msg;                             /* the parsed message, cleared after the call */
    json_t *id;                              /* request id (own reference) */
    bool sse, modern;
    bool done, suspended, gone;
    int refs;
    eg_buf frames;                           /* SSE: framed events not yet handed to MHD */
    size_t sent;
    char *answer;                            /* JSON: the response text (new), or NULL */
    size_t answer_len;
} mcp_http_job;

typedef struct mcp_http_req {
    eg_buf body;
    size_t reserved;                         /* body-budget bytes this request holds */
    const struct mcp_grant *grant;           /* what its bearer token may do (tokens file), or NULL */
    mcp_http_job *job;                       /* a JSON-mode call of this request (a reference) */
} mcp_http_req;

struct mcp_http_state {
    const mcp_server_opts *opts;
    const mcp_backend *be;
    mcp_http_opts lim;
    const char *token;                       /* bearer token or NULL (borrowed from the caller) */
    const struct mcp_access *access;         /* tokens file or NULL (borrowed): replaces token */
    bool loopback_bind;
    bool console;                            /* serve the console's page (ENGRAM_MCP_CONSOLE, on) */
    char *allowed_origins;                   /* ENGRAM_MCP_ALLOWED_ORIGINS copy, may be NULL */
    char *allowed_hosts;                     /* ENGRAM_MCP_ALLOWED_HOSTS copy, may be NULL */
    pthread_mutex_t mu;
    pthread_cond_t cv;                       /* call queue non-empty, or stopping */
    mcp_http_session **sessions;
    mcp_http_conn *tracks;
    mcp_http_job *q_head, *q_tail, *active;
    pthread_t *workers;
    unsigned n_workers;
    bool stopping;
    size_t held;                             /* request bytes reserved against lim.body_budget */
};

/* ---- answers (transport_http.c).  Every answer >= 400 closes the
 * connection.  body of reply_buf: len bytes; with own, *new* memory the
 * response takes (freed through eg_free), else copied. ---- */
enum MHD_Result mcp_http__reply_buf(struct MHD_Connection *c, unsigned status, const char *ctype, char *body,
                                   size_t len, bool own, const char *session_id);
enum MHD_Result mcp_http__reply(struct MHD_Connection *c, unsigned status, const char *ctype, const char *body,
                               const char *session_id);
/* msg (borrowed; NULL: an empty body) as application/json. */
enum MHD_Result mcp_http__reply_json(struct MHD_Connection *c, unsigned status, json_t *msg);
/* A JSON-RPC error answering request id (borrowed; NULL: null). */
enum MHD_Result mcp_http__reply_error_id(struct MHD_Connection *c, unsigned status, json_t *id, int code,
                                        const char *msg);
enum MHD_Result mcp_http__reply_error(struct MHD_Connection *c, unsigned status, int code, const char *msg);

/* ---- the console's page (http_console.c) ---- */
/* Is url the console's (/console, /console/...). */
bool mcp_http__console_path(const char *url);
/* Answer a request for the console's files: GET or HEAD only, no data, no
 * token needed (the page asks for the token and sends it with every MCP
 * call, where the usual checks apply). */
enum MHD_Result mcp_http__console_reply(struct MHD_Connection *c, const char *url, const char *method);

/* ---- sessions (http_session.c) ---- */
/* Free a session no one uses any more (not in the table, refs 0). */
void mcp_http__session_free(mcp_http_session *s);
/* Drop a request's reference; frees a dead session's last reference. */
void mcp_http__session_release(mcp_http_state *h, mcp_http_session *s);
/* A live session made under the same grant, referenced (release it), or
 * NULL when unknown (another token's session is unknown to this one). */
mcp_http_session *mcp_http__session_get(mcp_http_state *h, const char *id, const struct mcp_grant *grant);
/* Take slot out of the table; returns the session when the caller must free
 * it now (no request uses it), else NULL (its last user frees it).  Caller
 * holds mu. */
mcp_http_session *mcp_http__session_kill_locked(mcp_http_state *h, unsigned slot);
/* A new session of client address owner, referenced once, not yet in the
 * table.  *new*; NULL on OOM. */
mcp_http_session *mcp_http__session_new(mcp_http_state *h, const char *owner, const struct mcp_grant *grant);
/* Put s in the table under the per-client and table limits: NULL, or why
 * not (static text; s is then still the caller's). */
const char *mcp_http__session_add(mcp_http_state *h, mcp_http_session *s);
/* End sessions idle for longer than session_idle_s. */
void mcp_http__sessions_expire(mcp_http_state *h, int64_t now);
/* Remove the session with this id (DELETE); false when unknown. */
bool mcp_http__session_delete(mcp_http_state *h, const char *id);

/* ---- calls (http_call.c) ---- */
/* The emit callback of every server core the transport makes. */
void mcp_http__emit(void *ud, const char *msg, size_t len);
/* Handle m on srv in this thread; the response text (*new*) or NULL. */
char *mcp_http__run_inline(mcp_server *srv, const mcp_msg *m, size_t *len);
/*
 * Run a tools/call on the call threads: as an SSE stream (sse) answered at
 * once, or in JSON mode with the connection suspended until the answer
 * (rs->job).  *Steals* *m and the session reference (sess NULL: srv is the
 * call's own server, freed with it).
 */
enum MHD_Result mcp_http__start_call(mcp_http_state *h, struct MHD_Connection *c, mcp_http_req *rs,
                                    mcp_http_session *sess, mcp_server *srv, mcp_msg *m, bool sse, bool modern);
/* The connection of a JSON-mode call was resumed: queue its answer. */
enum MHD_Result mcp_http__answer_job(struct MHD_Connection *c, mcp_http_req *rs);
void mcp_http__job_unref(mcp_http_job *j);
/* The job's client went away: cancel its call.  Caller holds mu. */
void mcp_http__job_gone_locked(mcp_http_job *j, const char *why);
/* A call thread's loop (arg: the state). */
void *mcp_http__call_thread(void *arg);
/* Cancel running calls, answer queued ones, join the call threads. */
void mcp_http__stop_calls(mcp_http_state *h);
/* JSON-RPC error code of a response text (0: a result, or too large to be an error). */
int mcp_http__answer_error_code(const char *t, size_t len);
/* The status of a 2026-07-28 answer: 400 unsupported version, 404 unknown method, else 200. */
unsigned mcp_http__modern_status(const char *answer, size_t len);

#endif
