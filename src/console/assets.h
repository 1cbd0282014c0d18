/*
 * assets.h - the console's files (console/), bundled into the binary at
 * build time (console_assets.S, made by the build from core/embedded.S.in),
 * and the table that names them by URL path.
 *
 * The graph library (cytoscape, from npm, installed by scripts/setup.sh in
 * console/node_modules) is bundled when it was there at configure time;
 * otherwise a stand-in script tells the page to draw no graph, and
 * `engram --version` says so.
 */
#ifndef ENGRAM_CONSOLE_ASSETS_H
#define ENGRAM_CONSOLE_ASSETS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct console_asset {
    const char *path;              /* below /console/, e.g. "app.js"; "" is the page */
    const unsigned char *data;     /* static, never freed */
    size_t len;
    const char *content_type;
} console_asset;

/* Fill *out with the asset at path (below /console/); false when there is
 * none.  Never allocates: the bytes are static. */
bool console_asset_find(const char *path, console_asset *out);

/* Was the graph library found at build time. */
bool console_has_graph_library(void);

#endif
