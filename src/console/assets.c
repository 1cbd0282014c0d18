/*
 * assets.c - the console's files by path (the bytes are bundled by the
 * build: console_assets.S, see core/embedded.h).
 */
#include "console/assets.h"

#include "core/embedded.h"

#include <stdint.h>
#include <string.h>

EG_EMBEDDED(console_index_html);
EG_EMBEDDED(console_app_js);
EG_EMBEDDED(console_app_css);
EG_EMBEDDED(console_graph_js);

bool console_asset_find(const char *path, console_asset *out)
{
    const struct {
        const char *path;
        const unsigned char *data;
        const uint64_t *size;
        const char *type;
    } table[] = {
        {"", console_index_html, &console_index_html_size, "text/html; charset=utf-8"},
        {"index.html", console_index_html, &console_index_html_size, "text/html; charset=utf-8"},
        {"app.js", console_app_js, &console_app_js_size, "text/javascript; charset=utf-8"},
        {"app.css", console_app_css, &console_app_css_size, "text/css; charset=utf-8"},
        {"graph.js", console_graph_js, &console_graph_js_size, "text/javascript; charset=utf-8"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(path, table[i].path) == 0) {
            *out = (console_asset){table[i].path, table[i].data, (size_t)*table[i].size, table[i].type};
            return true;
        }
    return false;
}

bool console_has_graph_library(void)
{
#ifdef ENGRAM_CONSOLE_GRAPH
    return true;
#else
    return false;
#endif
}
