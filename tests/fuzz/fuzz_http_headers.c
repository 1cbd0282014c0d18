/*
 * fuzz_http_headers.c - libFuzzer target for the HTTP transport's header
 * checks (http_guard.c): the input, split on '\n', gives an Origin, a Host,
 * a Content-Type and an allow-list, each fed to its parser.  The oracle: no
 * crash and no sanitizer report, a parsed host that is a loopback name is
 * always allowed, and an Origin the parser refuses is never allowed.
 */
#include "fuzz.h"
#include "mcp/http_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *field[4] = {buf, NULL, NULL, NULL};
    for (int i = 1; i < 4; i++) {
        char *nl = field[i - 1] ? strchr(field[i - 1], '\n') : NULL;
        if (nl) {
            *nl = '\0';
            field[i] = nl + 1;
        }
    }
    const char *allowed = field[3];
    mcp_http_origin o;
    bool parsed = mcp_http__parse_origin(field[0], &o);
    bool ok = mcp_http__origin_allowed(field[0], allowed);
    if (ok && !parsed)
        abort();
    if (parsed && mcp_http__name_is_loopback(o.host) && !ok)
        abort();
    if (field[1]) {
        bool hp = mcp_http__parse_host(field[1], &o);
        bool hok = mcp_http__host_allowed(field[1], allowed);
        if (hok && !hp)
            abort();
    }
    if (field[2])
        (void)mcp_http__is_json_type(field[2]);
    free(buf);
    return 0;
}
