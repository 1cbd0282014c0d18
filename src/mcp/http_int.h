/*
 * http_int.h - the request-header checks of the Streamable HTTP transport
 * (http_guard.c), apart from the daemon so that unit tests and the fuzzer
 * drive them directly.  Internal to src/mcp.
 *
 * Everything here parses text a peer controls: no allocation, bounded by
 * the input's length, no state.
 *
 * Thread-safety: all functions are pure and reentrant.
 */
#ifndef ENGRAM_MCP_HTTP_INT_H
#define ENGRAM_MCP_HTTP_INT_H

#include <stdbool.h>
#include <stddef.h>

/* An origin or Host value taken apart.  host keeps brackets off an IPv6
 * literal; port 0 means none was given. */
typedef struct mcp_http_origin {
    char scheme[8];  /* "http" or "https", lower case; "" for a Host header */
    char host[256];  /* lower case */
    unsigned port;
} mcp_http_origin;

/*
 * Parse an Origin header, exactly "scheme://host[:port]" (RFC 6454): scheme
 * http or https, a host name of letters, digits, '-' and '.', or a bracketed
 * IPv6 literal, an optional decimal port 1..65535, and nothing else (no
 * userinfo, path, query or fragment).  false when o is anything else.
 */
bool mcp_http_parse_origin(const char *o, mcp_http_origin *out);

/* Parse a Host header, "host[:port]" with the same host grammar. */
bool mcp_http_parse_host(const char *h, mcp_http_origin *out);

/* localhost, an IPv4 literal in 127.0.0.0/8, or ::1. */
bool mcp_http_name_is_loopback(const char *host);

/*
 * Is origin o allowed: a loopback origin, or one listed in `allowed` (a
 * comma-separated list of origins, NULL: none), compared after parsing
 * (scheme and host case-insensitively, an absent port equal to the
 * scheme's default).  A header that does not parse is refused.
 */
bool mcp_http_origin_allowed(const char *o, const char *allowed);

/*
 * Is Host h acceptable on a loopback bind: a loopback name, or a host listed
 * in `allowed` (comma-separated names, NULL: none).  Refusing other names
 * stops DNS rebinding: a page of evil.example whose name now resolves to
 * 127.0.0.1 still sends "Host: evil.example".
 */
bool mcp_http_host_allowed(const char *h, const char *allowed);

/* Content-Type is application/json (any case, optional parameters). */
bool mcp_http_is_json_type(const char *ctype);

#endif
