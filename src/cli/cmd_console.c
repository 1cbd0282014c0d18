/*
 * cmd_console.c - `engram console`: the MCP HTTP server, with the console's
 * page, for someone who wants to look at the memory rather than connect an
 * agent.  It is `engram serve --transport http` under a name people find;
 * the page is served by every HTTP server (ENGRAM_MCP_CONSOLE=0 turns it
 * off), so an operator's running server has it too.
 */
#include "cli/commands.h"
#include "core/alloc.h"
#include "core/err.h"

#include <stdio.h>
#include <string.h>

static void console_usage(FILE *out)
{
    fprintf(out,
            "usage: engram console [serve options]\n\n"
            "Serve the console, a web page to look at the memory: search (keyword, semantic,\n"
            "hybrid), entities with their relations, history and neighbourhood graph, and the\n"
            "embedding queue with a retry button for dead jobs.  It is `engram serve --transport\n"
            "http` (same options, same token: ENGRAM_MCP_TOKEN); open the address it logs,\n"
            "http://127.0.0.1:8765/console/ by default.  The page loads nothing from elsewhere.\n");
}

int cli_cmd_console(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            console_usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--transport")) {
            fprintf(stderr, "engram console: the console is served over HTTP only; drop --transport\n");
            return 2;
        }
    }
    /* serve's own argv: its name, the transport, then ours as given */
    char **av = eg_calloc((size_t)argc + 3, sizeof *av);
    if (!av) {
        fprintf(stderr, "engram console: %s\n", EG_OOM_TEXT);
        return 1;
    }
    av[0] = "serve";
    av[1] = "--transport";
    av[2] = "http";
    for (int i = 1; i < argc; i++)
        av[i + 2] = argv[i];
    int rc = cli_cmd_serve(argc + 2, av);
    eg_free(av);
    return rc;
}
