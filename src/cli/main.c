/*
 * main.c - the engram program: dispatches to subcommands.
 */
#include "cli/commands.h"
#include "core/log.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

const cli_command cli_commands[] = {
    {"doctor", "check Neo4j, the schema, the indexes, the embedding configuration and the queue", cli_cmd_doctor},
    {"serve", "run the MCP server (stdio or Streamable HTTP)", cli_cmd_serve},
    {"console", "serve the console: a web page to search and look at the memory and its queue", cli_cmd_console},
    {"schema", "apply or show the database schema migrations", cli_cmd_schema},
    {"queue", "embedding job queue: status, list, retry, prune", cli_cmd_queue},
    {"worker", "run embedding workers (standalone process; any number, any machine)", cli_cmd_worker},
    {"reembed", "enqueue embedding jobs for entities without a current vector (--missing|--all)",
     cli_cmd_reembed},
    {"migrate", "move a memento-mcp graph in the same Neo4j into engram's model (memento)", cli_cmd_migrate},
    {"import", "load JSON lines: the official memory server's memory.jsonl, or an engram export", cli_cmd_import},
    {"export", "write a namespace as JSON lines (lossless engram format, or the official format)", cli_cmd_export},
    {"setup", "add this engram to Claude Desktop's or Cursor's MCP configuration (shows the change)", cli_cmd_setup},
    {NULL, NULL, NULL},
};

static void usage(FILE *out)
{
    fprintf(out,
            "engram %s - knowledge-graph memory for LLM agents (MCP server on Neo4j)\n\n"
            "usage: engram <command> [options]\n"
            "       engram --help | --version\n\n"
            "commands:\n",
            ENGRAM_VERSION);
    for (const cli_command *c = cli_commands; c->name; c++)
        fprintf(out, "  %-10s %s\n", c->name, c->summary);
    fprintf(out, "\nRun 'engram <command> --help' for a command's options.\n"
                 "Configuration comes from the environment (NEO4J_URI, NEO4J_USERNAME,\n"
                 "NEO4J_PASSWORD, ...); see docs/configuration.md.\n");
}

int main(int argc, char **argv)
{
    eg_log_init_from_env();
    /* libcurl's global init is not thread-safe on every build: do it once,
     * here, before any worker thread exists. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = 2;
    if (argc < 2) {
        usage(stderr);
        goto out;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        rc = 0;
        goto out;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        /* what a bug report needs: the release, the exact source, how it was built */
        printf(
            "engram %s\nrevision %s\nbuild %s\nmodels ENGRAM_MODEL_DIR, else ~/.local/share/engram/models, else %s\n",
            ENGRAM_VERSION, ENGRAM_GIT_REV, ENGRAM_BUILD_OPTIONS, ENGRAM_SYSTEM_MODEL_DIR);
        rc = 0;
        goto out;
    }
    for (const cli_command *c = cli_commands; c->name; c++) {
        if (strcmp(argv[1], c->name) == 0) {
            rc = c->run(argc - 1, argv + 1);
            goto out;
        }
    }
    fprintf(stderr, "engram: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
out:
    curl_global_cleanup();
    return rc;
}
