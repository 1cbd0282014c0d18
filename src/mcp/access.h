/*
 * access.h - who may use which namespaces over HTTP: the tokens file.
 *
 * One HTTP server can serve several teams apart.  The tokens file
 * (ENGRAM_MCP_TOKENS_FILE) maps each bearer token to the namespaces it may
 * use and whether it may write:
 *
 *   {"tokens": [
 *     {"name": "team-a", "token": "<secret>", "namespaces": ["team-a"], "write": true},
 *     {"name": "audit",  "token": "<secret>", "namespaces": ["team-a", "team-b"], "write": false}
 *   ]}
 *
 * A request's bearer token selects its grant; the grant travels with the
 * request to the tool call (mcp_server_opts.grant), which refuses a
 * namespace outside the grant and, for a read-only grant, every tool that
 * is not read-only.  A call without a `namespace` argument uses the
 * configured namespace (ENGRAM_NAMESPACE) when the grant includes it, else
 * the grant's first namespace.  Over stdio there is no grant: any namespace.
 *
 * The file holds secrets: it must be a regular file that neither group nor
 * others can read (mode 0600 or stricter), or it is refused.  Tokens are
 * kept only as SHA-256 digests and compared in constant time; the "name" of
 * a grant (optional) is what logs show, never the token.
 *
 * Thread-safety: an mcp_access is immutable after mcp_access_load; any
 * thread may use it and its grants until mcp_access_free.
 */
#ifndef ENGRAM_MCP_ACCESS_H
#define ENGRAM_MCP_ACCESS_H

#include "core/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct mcp_access mcp_access;
typedef struct mcp_grant mcp_grant;

/* Limits of the file: tokens at least this long, at most this many grants. */
#define MCP_ACCESS_MIN_TOKEN 16
#define MCP_ACCESS_MAX_GRANTS 4096
#define MCP_ACCESS_MAX_NAMESPACES 256

/*
 * Parse the tokens file at path.  default_ns is the configured namespace
 * (copied).  *out is *new* (mcp_access_free).  EG_EINVAL with the line of
 * reasoning for a malformed file (bad JSON, a token shorter than
 * MCP_ACCESS_MIN_TOKEN, a duplicate token, a grant without namespaces, a
 * namespace that is empty or longer than 256 bytes) or for a file that
 * group or others can read; EG_EIO when it cannot be read.
 */
int mcp_access_load(mcp_access **out, const char *path, const char *default_ns, eg_error *err);
/* The same from JSON text (tests; no permission check). */
int mcp_access_parse(mcp_access **out, const char *text, const char *default_ns, eg_error *err);
void mcp_access_free(mcp_access *a);
size_t mcp_access_count(const mcp_access *a);

/* The grant of a bearer token (borrowed from a), or NULL for an unknown
 * token.  Every grant is compared, in constant time per grant. */
const mcp_grant *mcp_access_find(const mcp_access *a, const char *token);

/* The grant's name ("grant N" when the file gave none).  Borrowed. */
const char *mcp_grant_name(const mcp_grant *g);
bool mcp_grant_can_write(const mcp_grant *g);
/*
 * The namespace a call runs in: `requested` when the grant includes it,
 * else NULL (refused); with requested NULL, the configured namespace when
 * included, else the grant's first.  Borrowed.
 */
const char *mcp_grant_namespace(const mcp_grant *g, const char *requested);
/* The grant's namespaces, comma-separated, for a message: *new*. */
char *mcp_grant_describe(const mcp_grant *g);

#endif
