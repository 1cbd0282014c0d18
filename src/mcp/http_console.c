/*
 * http_console.c - the console's page on the MCP HTTP port.
 *
 *   GET /console            -> 308 to /console/ (relative links need the slash)
 *   GET /console/           -> the page
 *   GET /console/<file>     -> app.js, app.css, graph.js (bundled, console/assets.h)
 *
 * The files hold no data, so they are served without a token: the page
 * asks for the token and sends it with each MCP call to /mcp, where every
 * check of the transport applies (token, grant, Origin, limits).  The
 * Content-Security-Policy keeps the page to its own origin: no script,
 * style, font or connection elsewhere, and no framing (clickjacking).
 */
#include "console/assets.h"
#include "mcp/http_int.h"

#include <string.h>

#define CONSOLE_PREFIX "/console"

bool mcp_http__console_path(const char *url)
{
    size_t n = sizeof CONSOLE_PREFIX - 1;
    return url && strncmp(url, CONSOLE_PREFIX, n) == 0 && (url[n] == '\0' || url[n] == '/');
}

static enum MHD_Result reply_asset(struct MHD_Connection *c, const console_asset *a)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", a->content_type);
    /* cytoscape injects one <style> element for its container: inline
     * style is allowed, inline script is not. */
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                            "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
                            "frame-ancestors 'none'");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result mcp_http__console_reply(struct MHD_Connection *c, const char *url, const char *method)
{
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return mcp_http__reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "the console is read with GET\n", NULL);
    const char *rest = url + sizeof CONSOLE_PREFIX - 1;
    if (*rest == '\0') {
        struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (!r)
            return MHD_NO;
        MHD_add_response_header(r, "Location", CONSOLE_PREFIX "/");
        enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_PERMANENT_REDIRECT, r);
        MHD_destroy_response(r);
        return ret;
    }
    console_asset a;
    if (!console_asset_find(rest + 1, &a))
        return mcp_http__reply(c, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n", NULL);
    return reply_asset(c, &a);
}
