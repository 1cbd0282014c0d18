/*
 * http_guard.c - Origin, Host and Content-Type checks for the Streamable
 * HTTP transport (see http_int.h).
 *
 * Origins are parsed, never matched by prefix: a prefix test accepted
 * "http://localhost:1@evil.example" (userinfo "localhost:1" on host
 * evil.example) and refused "https://[::1]".  The grammar is the serialised
 * origin of RFC 6454 only; browsers send nothing else.
 */
#include "mcp/http_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* host[:port] starting at p, to the end of the string. */
static bool parse_authority(const char *p, mcp_http_origin *out)
{
    size_t n = 0;
    if (*p == '[') {
        const char *e = strchr(p, ']');
        if (!e || e == p + 1 || (size_t)(e - p - 1) >= sizeof out->host)
            return false;
        for (const char *q = p + 1; q < e; q++) {
            if (!(isxdigit((unsigned char)*q) || *q == ':' || *q == '.'))
                return false;
            out->host[n++] = (char)tolower((unsigned char)*q);
        }
        out->host[n] = '\0';
        struct in6_addr a6;
        if (inet_pton(AF_INET6, out->host, &a6) != 1)
            return false;
        p = e + 1;
    } else {
        while (*p && *p != ':') {
            unsigned char c = (unsigned char)*p;
            if (!(isalnum(c) || c == '-' || c == '.') || n + 1 >= sizeof out->host)
                return false;
            out->host[n++] = (char)tolower(c);
            p++;
        }
        out->host[n] = '\0';
        if (n == 0)
            return false;
    }
    out->port = 0;
    if (*p == ':') {
        p++;
        unsigned v = 0;
        int digits = 0;
        for (; *p >= '0' && *p <= '9'; p++, digits++) {
            v = v * 10 + (unsigned)(*p - '0');
            if (digits > 5 || v > 65535)
                return false;
        }
        if (digits == 0 || v == 0)
            return false;
        out->port = v;
    }
    return *p == '\0';
}

bool mcp_http__parse_origin(const char *o, mcp_http_origin *out)
{
    memset(out, 0, sizeof *out);
    if (!o)
        return false;
    const char *sep = strstr(o, "://");
    if (!sep)
        return false;
    size_t sl = (size_t)(sep - o);
    if (sl == 4 && strncasecmp(o, "http", 4) == 0)
        memcpy(out->scheme, "http", 5);
    else if (sl == 5 && strncasecmp(o, "https", 5) == 0)
        memcpy(out->scheme, "https", 6);
    else
        return false;
    return parse_authority(sep + 3, out);
}

bool mcp_http__parse_host(const char *h, mcp_http_origin *out)
{
    memset(out, 0, sizeof *out);
    return h && parse_authority(h, out);
}

bool mcp_http__name_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcasecmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

static unsigned effective_port(const mcp_http_origin *o)
{
    if (o->port)
        return o->port;
    return strcmp(o->scheme, "https") == 0 ? 443 : 80;
}

/* Call fn on each trimmed, non-empty item of a comma-separated list until it returns true. */
static bool list_any(const char *list, bool (*fn)(const char *item, const void *arg), const void *arg)
{
    char item[300];
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
        }
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n && n < sizeof item) {
            memcpy(item, p, n);
            item[n] = '\0';
            if (fn(item, arg))
                return true;
        }
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

static bool same_origin(const char *item, const void *arg)
{
    const mcp_http_origin *o = arg;
    mcp_http_origin a;
    return mcp_http__parse_origin(item, &a) && strcmp(a.scheme, o->scheme) == 0 && strcmp(a.host, o->host) == 0 &&
           effective_port(&a) == effective_port(o);
}

bool mcp_http__origin_allowed(const char *o, const char *allowed)
{
    mcp_http_origin p;
    if (!mcp_http__parse_origin(o, &p))
        return false;
    return mcp_http__name_is_loopback(p.host) || list_any(allowed, same_origin, &p);
}

bool mcp_http__origin_is_host(const char *o, const char *host)
{
    mcp_http_origin a, h;
    if (!o || !host || !mcp_http__parse_origin(o, &a) || !mcp_http__parse_host(host, &h))
        return false;
    /* We serve plain HTTP: an https origin came through a proxy, which the
     * operator lists in ENGRAM_MCP_ALLOWED_ORIGINS. */
    snprintf(h.scheme, sizeof h.scheme, "http");
    return strcmp(a.scheme, "http") == 0 && strcmp(a.host, h.host) == 0 && effective_port(&a) == effective_port(&h);
}

static bool same_host(const char *item, const void *arg)
{
    const mcp_http_origin *h = arg;
    mcp_http_origin a;
    return mcp_http__parse_host(item, &a) && strcmp(a.host, h->host) == 0;
}

bool mcp_http__host_allowed(const char *h, const char *allowed)
{
    mcp_http_origin p;
    if (!mcp_http__parse_host(h, &p))
        return false;
    return mcp_http__name_is_loopback(p.host) || list_any(allowed, same_host, &p);
}

bool mcp_http__is_json_type(const char *ctype)
{
    if (!ctype)
        return false;
    while (*ctype == ' ' || *ctype == '\t')
        ctype++;
    static const char want[] = "application/json";
    if (strncasecmp(ctype, want, sizeof want - 1) != 0)
        return false;
    const char *p = ctype + sizeof want - 1;
    while (*p == ' ' || *p == '\t')
        p++;
    return *p == '\0' || *p == ';';
}
