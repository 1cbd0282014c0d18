/*
 * uri.c - see uri.h.
 */
#include "bolt/uri.h"
#include "bolt/conn.h"

#include "core/alloc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    bool routing;
    bolt_tls_mode tls;
} schemes[] = {
    {"bolt", false, BOLT_TLS_NONE},      {"bolt+s", false, BOLT_TLS_VERIFY},
    {"bolt+ssc", false, BOLT_TLS_NOVERIFY}, {"neo4j", true, BOLT_TLS_NONE},
    {"neo4j+s", true, BOLT_TLS_VERIFY},  {"neo4j+ssc", true, BOLT_TLS_NOVERIFY},
};

void bolt_uri_clear(bolt_uri *u)
{
    if (!u)
        return;
    eg_free(u->host);
    eg_free(u->address);
    for (size_t i = 0; i < u->nparams; i++) {
        eg_free(u->params[i].key);
        eg_free(u->params[i].value);
    }
    memset(u, 0, sizeof *u);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Percent-decode s[0..n) into a new string ('+' stays '+': RFC 3986). */
static char *pct_decode(const char *s, size_t n)
{
    char *out = eg_malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval((unsigned char)s[i + 1]) >= 0 &&
            hexval((unsigned char)s[i + 2]) >= 0) {
            out[o++] = (char)(hexval((unsigned char)s[i + 1]) * 16 + hexval((unsigned char)s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

static int parse_query(bolt_uri *u, const char *q, eg_error *err)
{
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t n = amp ? (size_t)(amp - q) : strlen(q);
        if (n > 0) {
            const char *eq = memchr(q, '=', n);
            if (!eq || eq == q)
                return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                                    "invalid URI: query parameter without key=value");
            if (u->nparams == BOLT_URI_MAX_PARAMS)
                return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                                    "invalid URI: more than %d query parameters", BOLT_URI_MAX_PARAMS);
            bolt_uri_param *p = &u->params[u->nparams];
            p->key = pct_decode(q, (size_t)(eq - q));
            p->value = pct_decode(eq + 1, n - (size_t)(eq - q) - 1);
            u->nparams++;
            if (!p->key || !p->value)
                return eg_error_oom(err);
            if (strcmp(p->key, "address") == 0)
                return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                                    "invalid URI: 'address' is reserved in the routing context");
        }
        q += n;
        if (*q == '&')
            q++;
    }
    return 0;
}

int bolt_uri_parse(bolt_uri *out, const char *s, eg_error *err)
{
    memset(out, 0, sizeof *out);
    if (!s || !*s)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "invalid URI: empty");
    const char *sep = strstr(s, "://");
    if (!sep)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "invalid URI: missing scheme (expected bolt:// or neo4j://)");
    size_t slen = (size_t)(sep - s);
    bool found = false;
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        if (strlen(schemes[i].name) == slen && strncasecmp(s, schemes[i].name, slen) == 0) {
            out->routing = schemes[i].routing;
            out->tls = schemes[i].tls;
            found = true;
            break;
        }
    }
    if (!found)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                            "invalid URI: unsupported scheme '%.*s' (use bolt, bolt+s, bolt+ssc, "
                            "neo4j, neo4j+s or neo4j+ssc)",
                            (int)(slen > 32 ? 32 : slen), s);
    const char *auth = sep + 3;
    /* Authority ends at '/', '?' or '#'. */
    size_t alen = strcspn(auth, "/?#");
    const char *rest = auth + alen;
    /* Skip user info: the last '@' inside the authority. */
    const char *host = auth;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@')
            host = p + 1;
    size_t hlen = (size_t)(auth + alen - host);
    const char *hstart, *hend, *portp = NULL;
    if (hlen > 0 && host[0] == '[') {
        const char *rb = memchr(host, ']', hlen);
        if (!rb)
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "invalid URI: unterminated '[' in host");
        hstart = host + 1;
        hend = rb;
        if (rb + 1 < host + hlen) {
            if (rb[1] != ':')
                return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                                    "invalid URI: unexpected text after ']'");
            portp = rb + 2;
        }
    } else {
        const char *colon = memchr(host, ':', hlen);
        hstart = host;
        hend = colon ? colon : host + hlen;
        if (colon)
            portp = colon + 1;
    }
    if (hend == hstart)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "invalid URI: missing host");
    int port = BOLT_DEFAULT_PORT;
    if (portp) {
        const char *pend = host + hlen;
        if (portp == pend)
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "invalid URI: empty port");
        long v = 0;
        for (const char *p = portp; p < pend; p++) {
            if (!isdigit((unsigned char)*p) || v > 65535)
                return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "invalid URI: bad port");
            v = v * 10 + (*p - '0');
        }
        if (v < 1 || v > 65535)
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "invalid URI: port out of range");
        port = (int)v;
    }
    out->port = port;
    out->host = eg_strndup(hstart, (size_t)(hend - hstart));
    if (!out->host)
        return eg_error_oom(err);
    for (const char *p = out->host; *p; p++) {
        if ((unsigned char)*p <= ' ' || *p == '/' || *p == '@') {
            bolt_uri_clear(out);
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "invalid URI: bad character in host");
        }
    }
    bool v6 = strchr(out->host, ':') != NULL;
    size_t addrlen = strlen(out->host) + 16;
    out->address = eg_malloc(addrlen);
    if (!out->address) {
        bolt_uri_clear(out);
        return eg_error_oom(err);
    }
    snprintf(out->address, addrlen, v6 ? "[%s]:%d" : "%s:%d", out->host, port);
    if (*rest == '/') {
        rest++;
        size_t plen = strcspn(rest, "?#");
        if (plen > 0) {
            bolt_uri_clear(out);
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                                "invalid URI: a path is not allowed (select the database with "
                                "NEO4J_DATABASE)");
        }
        rest += plen;
    }
    if (*rest == '?') {
        rest++;
        size_t qlen = strcspn(rest, "#");
        char *q = eg_strndup(rest, qlen);
        if (!q) {
            bolt_uri_clear(out);
            return eg_error_oom(err);
        }
        int rc = parse_query(out, q, err);
        eg_free(q);
        if (rc < 0) {
            bolt_uri_clear(out);
            return rc;
        }
        if (!out->routing && out->nparams > 0) {
            bolt_uri_clear(out);
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                                "invalid URI: query parameters (routing context) need a neo4j:// scheme");
        }
    }
    return 0;
}

char *bolt_uri_redact(const char *uri, char *out, size_t n)
{
    if (n == 0)
        return out;
    if (!uri) {
        snprintf(out, n, "%s", "");
        return out;
    }
    const char *sep = strstr(uri, "://");
    const char *auth = sep ? sep + 3 : uri;
    size_t alen = strcspn(auth, "/?#");
    /* the last '@' of the authority ends the user info (a password may hold '@') */
    const char *at = NULL;
    for (const char *p = auth; p < auth + alen; p++)
        if (*p == '@')
            at = p;
    if (!at)
        snprintf(out, n, "%s", uri);
    else
        snprintf(out, n, "%.*s***%s", (int)(auth - uri), uri, at);
    return out;
}
