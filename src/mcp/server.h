/*
 * server.h - the MCP server core: lifecycle, version negotiation,
 * dispatch, in-flight requests (cancellation, progress), logging.
 *
 * Transport-agnostic: a transport feeds complete messages to
 * mcp_server_handle() and receives every outgoing message (responses and
 * notifications, one compact JSON text without newline) through the emit
 * callback given at creation.  The emit callback may be called from any
 * thread, so it must serialise writes itself (transport_stdio.c holds a
 * mutex around each line).
 *
 * Lifecycle (per session):
 *
 *   NEW --initialize--> INITIALIZING --notifications/initialized--> READY
 *    | ping: ok            | ping, tools, logging: ok               | same
 *    | others: -32002      | initialize again: -32600               |
 *    +---------------------+--- EOF: drain in-flight calls, stop ---+
 *
 * Requests are answered in the calling (reader) thread except tools/call,
 * which goes to a small worker pool (opts.workers > 0) so that ping and
 * notifications/cancelled are served while a long call runs.  With
 * workers == 0 every call runs inline (deterministic; used by unit tests
 * and the fuzz target).
 *
 * Cancellation: notifications/cancelled{requestId} flags the in-flight call;
 * the backend sees mcp_call_cancelled() and the server drops the response
 * (MCP: "SHOULD NOT send a response for the cancelled request").  Unknown
 * ids and initialize are ignored.
 *
 * Thread-safety: mcp_server_handle() may be called from one reader thread
 * at a time (it is also safe from several); the rest is internal.
 */
#ifndef ENGRAM_MCP_SERVER_H
#define ENGRAM_MCP_SERVER_H

#include "core/err.h"
#include "mcp/backend.h"
#include "mcp/jsonrpc.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct mcp_server mcp_server;

typedef void (*mcp_emit_fn)(void *ud, const char *msg, size_t len);

typedef struct mcp_server_opts {
    unsigned workers;       /* tools/call worker threads; 0 = inline */
    unsigned page_size;     /* tools/list page size; 0 = all tools in one page */
    unsigned max_inflight;  /* concurrent tools/call cap; 0 = 64 */
    const char *instructions; /* optional InitializeResult.instructions (borrowed) */
    size_t max_message_bytes; /* largest outgoing message; 0 = EG_LIMIT_MCP_RESPONSE.  A
                                 response over it becomes a -32603 error for its id */
    const struct mcp_grant *grant; /* the caller's rights (access.h; borrowed, must outlive
                                      the server); NULL: any namespace, writes allowed */
} mcp_server_opts;

/* Protocol versions of the initialize-based (legacy) era we speak, newest
 * first; NULL-terminated. */
extern const char *const mcp_protocol_versions[];

/* Protocol versions of the modern era (2026-07-28: no initialize; every
 * request names its version in params._meta) we serve, newest first;
 * NULL-terminated.  A request whose _meta carries
 * "io.modelcontextprotocol/protocolVersion" is served statelessly under
 * that revision, whether or not a legacy session was initialized on the
 * same transport (a dual-era server, docs/mcp.md). */
extern const char *const mcp_modern_versions[];

/* The _meta key that marks a request of the modern era. */
#define MCP_META_PROTOCOL_VERSION "io.modelcontextprotocol/protocolVersion"

/* The modern-era version a request's params carry (borrowed; any JSON
 * type, for the caller to check), or NULL for an initialize-era request. */
json_t *mcp_modern_version_of(json_t *params);

/* Whether we serve version v: of the modern era only, or of either. */
bool mcp_version_known(const char *v, bool modern_only);

/* Every version we serve, modern first, as a JSON array of strings: what
 * server/discover and an unsupported-version error list.  New (caller
 * owns the reference); NULL on OOM. */
json_t *mcp_supported_versions(void);

/* The -32022 error response to request id (borrowed; NULL: null) naming
 * the version asked for and the ones we serve.  New; NULL on OOM. */
json_t *mcp_unsupported_version_error(json_t *id, const char *requested);

/*
 * New server.  be is borrowed and must outlive the server; emit must not
 * be NULL.  Returns NULL on OOM / thread creation failure (err filled).
 */
mcp_server *mcp_server_new(const mcp_server_opts *opts, const mcp_backend *be, mcp_emit_fn emit,
                           void *emit_ud, eg_error *err);
/* Stop: cancels in-flight calls, joins the workers, frees.  Accepts NULL. */
void mcp_server_free(mcp_server *s);

/* Handle one complete message (len bytes, no trailing newline needed). */
void mcp_server_handle(mcp_server *s, const char *data, size_t len);
/* Handle one message the transport has already parsed (borrowed: the
 * caller clears it afterwards), so that a large message is parsed once.
 * Tool arguments may be modified in place (coercion) by the call. */
void mcp_server_handle_msg(mcp_server *s, const mcp_msg *m);
/* Flag the in-flight call with this request id (borrowed) as cancelled, as
 * notifications/cancelled does: its response is dropped.  Unknown ids are
 * ignored.  A transport calls it when the client went away. */
void mcp_server_cancel(mcp_server *s, json_t *id);
/* Block until no tools/call is queued or running. */
void mcp_server_drain(mcp_server *s);

/*
 * Route eg_log records to the client as notifications/message once the
 * client has chosen a level with logging/setLevel.  Installs the process's
 * single log sink; mcp_server_free() removes it.
 */
void mcp_server_forward_logs(mcp_server *s);

/* Negotiated version ("" before initialize).  Borrowed, stable. */
const char *mcp_server_protocol_version(const mcp_server *s);

/*
 * stdio transport (transport_stdio.c): read newline-delimited messages from
 * in_fd, write to out_fd, until EOF; then drain and return 0.  Lines longer
 * than EG_LIMIT_MCP_LINE are discarded with a -32600 error.
 */
int mcp_stdio_serve(const mcp_server_opts *opts, const mcp_backend *be, int in_fd, int out_fd,
                    eg_error *err);

typedef struct mcp_http_opts {
    const char *host;   /* IPv4 or IPv6 literal to bind; NULL: "127.0.0.1" */
    unsigned port;
    const char *token;  /* when set, every request needs "Authorization: Bearer <token>"
                           (borrowed; never logged).  Required unless host is loopback. */
    const struct mcp_access *access; /* the tokens file (access.h; borrowed): each request's
                                        bearer token selects its grant.  Replaces token. */
    /* Limits; 0 = the default in brackets (environment variable in
     * mcp_http_opts_from_env; docs/security.md says why each is sized so). */
    unsigned io_threads;          /* [2] ENGRAM_MCP_HTTP_IO_THREADS: polling threads */
    unsigned max_connections;     /* [1024] ENGRAM_MCP_HTTP_MAX_CONNECTIONS */
    unsigned per_ip;              /* [64] ENGRAM_MCP_HTTP_PER_IP: connections per client address */
    unsigned header_timeout_s;    /* [5] ENGRAM_MCP_HTTP_HEADER_TIMEOUT: accept to end of headers */
    unsigned idle_timeout_s;      /* [60] ENGRAM_MCP_HTTP_IDLE_TIMEOUT: a connection with no traffic */
    unsigned sessions;            /* [1024] ENGRAM_MCP_HTTP_SESSIONS: live sessions */
    unsigned sessions_per_client; /* [64] ENGRAM_MCP_HTTP_SESSIONS_PER_CLIENT (per address) */
    unsigned session_idle_s;      /* [3600] ENGRAM_MCP_HTTP_SESSION_IDLE: idle sessions expire */
    unsigned session_active_s;    /* [60] ENGRAM_MCP_HTTP_SESSION_ACTIVE: a session used this
                                     recently is active and never evicted */
    size_t body_budget;           /* [64 MiB] ENGRAM_MCP_HTTP_BODY_BUDGET_MB: request bytes held at once */
} mcp_http_opts;

/*
 * Fill the limits of *o (other fields untouched) from the environment
 * variables named above; unset ones stay as they are.  EG_EINVAL for a value
 * that is not a positive integer in range.
 */
int mcp_http_opts_from_env(mcp_http_opts *o, eg_error *err);

/* True when host (an IP literal; NULL = the default) is 127.0.0.0/8 or ::1. */
bool mcp_http_host_is_loopback(const char *host);

/*
 * 0 when mcp_http_serve would accept this host/token pair; else EG_EINVAL
 * with the reason (not an IP literal; not loopback and no token).
 */
int mcp_http_check_bind(const char *host, bool have_token, eg_error *err);

/*
 * Streamable HTTP transport (transport_http.c): POST /mcp on host:port with
 * JSON responses, sessions, Origin/Host checks and, with a token, bearer
 * authentication; tools/call runs on opts->workers call threads (default
 * 4); blocks until SIGINT/SIGTERM.  EG_EINVAL for a host that
 * is not an IP literal, or a non-loopback host without a token.
 */
int mcp_http_serve(const mcp_server_opts *opts, const mcp_backend *be, const mcp_http_opts *ho, eg_error *err);

#endif
