/*
 * uri.h - parsing of Bolt connection URIs (internal to src/bolt/).
 *
 *   scheme://[user[:password]@]host[:port][/][?key=value&...]
 *
 * Schemes: bolt, bolt+s, bolt+ssc, neo4j, neo4j+s, neo4j+ssc.  `+s` means TLS
 * verified against the system CAs and the host name, `+ssc` TLS without
 * verification (self-signed certificates accepted).  The neo4j schemes mark
 * the connection as "routed": HELLO then carries a routing context built from
 * the address as written plus the query parameters (percent-decoded).  Hosts
 * may be names, IPv4 addresses or bracketed IPv6 literals ("[::1]:7687").
 * User info in the URI is accepted and ignored (credentials come from
 * bolt_config), so that a URI copied from a tool does not fail to parse.
 *
 * Thread-safety: a parsed bolt_uri is plain data owned by its caller.
 */
#ifndef ENGRAM_BOLT_URI_H
#define ENGRAM_BOLT_URI_H

#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>

#define BOLT_DEFAULT_PORT 7687
#define BOLT_URI_MAX_PARAMS 32

typedef enum bolt_tls_mode {
    BOLT_TLS_NONE = 0,
    BOLT_TLS_VERIFY,   /* +s */
    BOLT_TLS_NOVERIFY  /* +ssc */
} bolt_tls_mode;

typedef struct bolt_uri_param {
    char *key;   /* new, percent-decoded */
    char *value; /* new, percent-decoded */
} bolt_uri_param;

typedef struct bolt_uri {
    bool routing;          /* neo4j* scheme */
    bolt_tls_mode tls;
    char *host;            /* new; without brackets for IPv6 */
    int port;
    char *address;         /* new; "host:port" as given ("[::1]:7687" for IPv6) */
    size_t nparams;
    bolt_uri_param params[BOLT_URI_MAX_PARAMS];
} bolt_uri;

/*
 * Parse `s` into *out (fields are *new*; release with bolt_uri_clear).
 * EG_EINVAL with a message naming the problem on malformed input.
 */
int bolt_uri_parse(bolt_uri *out, const char *s, eg_error *err);
void bolt_uri_clear(bolt_uri *u);

#endif
