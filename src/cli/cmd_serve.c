/*
 * cmd_serve.c - `engram serve`: run the MCP server.
 *
 * stdout carries nothing but MCP messages (stdio transport); every log line
 * goes to stderr.  The process exits when the client closes stdin, after
 * the in-flight tool calls have answered.
 *
 * Backends: `neo4j` (default; NEO4J_* environment, see docs/configuration.md)
 * or `memory` (nothing persisted; for trying engram and for client tests
 * without a database).
 */
#include "cli/commands.h"
#include "core/err.h"
#include "core/log.h"
#include "mcp/backend.h"
#include "mcp/server.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void serve_usage(FILE *out)
{
    fprintf(out,
            "usage: engram serve [options]\n\n"
            "Run the MCP server.  stdout carries only MCP messages; logs go to stderr.\n\n"
            "options:\n"
            "  --transport stdio|http   transport (default stdio; http = Streamable HTTP on 127.0.0.1)\n"
            "  --port N                 HTTP port (default 8765)\n"
            "  --backend neo4j|memory   storage (default neo4j, or ENGRAM_BACKEND)\n"
            "  --threads N              concurrent tool calls (default 4)\n"
            "  --workers N              in-server embedding workers (default 1; 0 = none)\n"
            "  -h, --help               this help\n\n"
            "environment: NEO4J_URI, NEO4J_USERNAME, NEO4J_PASSWORD, NEO4J_DATABASE,\n"
            "  ENGRAM_NAMESPACE, ENGRAM_MCP_PAGE_SIZE (tools/list page size, default all),\n"
            "  ENGRAM_MCP_ALLOWED_ORIGINS (extra HTTP origins, comma separated),\n"
            "  ENGRAM_LOG_LEVEL, ENGRAM_LOG_FORMAT, DEBUG.\n");
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
    char *end = NULL;
    unsigned long v = s ? strtoul(s, &end, 10) : 0;
    if (!s || !*s || *end || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

int cli_cmd_serve(int argc, char **argv)
{
    const char *transport = "stdio";
    const char *backend = getenv("ENGRAM_BACKEND") ? getenv("ENGRAM_BACKEND") : "neo4j";
    unsigned port = 8765, threads = 4, workers = 1, page = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            serve_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--transport") && v) {
            transport = v;
            i++;
        } else if (!strcmp(a, "--backend") && v) {
            backend = v;
            i++;
        } else if (!strcmp(a, "--port") && v && parse_uint(v, 65535, &port) == 0) {
            i++;
        } else if (!strcmp(a, "--threads") && v && parse_uint(v, 64, &threads) == 0 && threads > 0) {
            i++;
        } else if (!strcmp(a, "--workers") && v && parse_uint(v, 256, &workers) == 0) {
            i++;
        } else {
            fprintf(stderr, "engram serve: bad option '%s'\n", a);
            serve_usage(stderr);
            return 2;
        }
    }
    if (getenv("ENGRAM_MCP_PAGE_SIZE") && parse_uint(getenv("ENGRAM_MCP_PAGE_SIZE"), 1000, &page) != 0) {
        fprintf(stderr, "engram serve: ENGRAM_MCP_PAGE_SIZE must be a number 0..1000\n");
        return 2;
    }
    if (strcmp(transport, "stdio") != 0 && strcmp(transport, "http") != 0) {
        fprintf(stderr, "engram serve: unknown transport '%s' (use stdio or http)\n", transport);
        return 2;
    }
    /* A client that vanishes must not kill us mid-write; write() reports EPIPE. */
    signal(SIGPIPE, SIG_IGN);

    eg_error err;
    eg_error_clear(&err);
    mcp_backend be;
    int rc;
    if (!strcmp(backend, "memory")) {
        rc = mcp_backend_mem_new(&be, 0, &err);
    } else {
        fprintf(stderr, "engram serve: backend '%s' is not available (use memory)\n", backend);
        return 2;
    }
    if (rc) {
        fprintf(stderr, "engram serve: %s\n", err.message);
        return 1;
    }
    (void)workers;
    mcp_server_opts opts = {
        .workers = threads,
        .page_size = page,
        .instructions = "engram is a long-term knowledge-graph memory. Store facts with create_entities "
                        "/ add_observations / create_relations; recall with search_nodes, "
                        "semantic_search or open_nodes.",
    };
    if (!strcmp(transport, "http"))
        rc = mcp_http_serve(&opts, &be, port, &err);
    else
        rc = mcp_stdio_serve(&opts, &be, STDIN_FILENO, STDOUT_FILENO, &err);
    mcp_backend_mem_free(&be);
    if (rc) {
        EG_ERROR("serve", "%s", err.message);
        return 1;
    }
    return 0;
}
