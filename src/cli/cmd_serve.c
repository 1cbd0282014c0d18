/*
 * cmd_serve.c - `engram serve`: run the MCP server.
 *
 * stdout carries nothing but MCP messages (stdio transport); every log line
 * goes to stderr.  On stdio the process exits when the client closes stdin
 * or on SIGINT/SIGTERM, after the in-flight tool calls have answered; on HTTP
 * it runs until SIGINT/SIGTERM.  Either way the in-server workers are then
 * stopped, which releases the leases they hold (as `engram worker` does).
 *
 * Backends: `neo4j` (default; NEO4J_* environment, see docs/mcp.md) or
 * `memory` (nothing persisted; for trying engram and for client tests
 * without a database).
 *
 * The Neo4j stack is built bottom-up and torn down in reverse:
 *   pool -> queue store -> graph store (+ schema migrations)
 *        -> [worker sink + worker manager, --workers N]
 *        -> MCP backend -> transport
 * Embedding jobs are enqueued with the provider's model name so that the
 * in-server workers (and any `engram worker` process) lease them.
 */
#include "cli/cli_neo4j.h"
#include "cli/commands.h"
#include "core/err.h"
#include "core/log.h"
#include "embed/provider.h"
#include "graph/graph.h"
#include "mcp/access.h"
#include "mcp/backend.h"
#include "mcp/backend_graph.h"
#include "mcp/server.h"
#include "queue/neo4j_store.h"
#include "worker/health.h"
#include "worker/manager.h"
#include "worker/neo4j_sink.h"

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
            "  --transport stdio|http   transport (default stdio; http = Streamable HTTP)\n"
            "  --host ADDR              HTTP bind address, an IP literal (default 127.0.0.1, or\n"
            "                           ENGRAM_MCP_HOST); other than loopback needs a token\n"
            "  --port N                 HTTP port (default 8765)\n"
            "  --backend neo4j|memory   storage (default neo4j, or ENGRAM_BACKEND)\n"
            "  --threads N              concurrent tool calls (default 4)\n"
            "  --workers N              in-server embedding workers (neo4j; default ENGRAM_WORKERS, 2;\n"
            "                           0 = none, leave the queue to `engram worker` processes)\n"
            "  --health-port P          serve /health and /metrics on 127.0.0.1:P (also\n"
            "                           ENGRAM_HEALTH_PORT; off by default for stdio servers)\n"
            "  -h, --help               this help\n\n"
            "environment: NEO4J_URI, NEO4J_USERNAME, NEO4J_PASSWORD, NEO4J_DATABASE,\n"
            "  ENGRAM_NAMESPACE, ENGRAM_MCP_PAGE_SIZE (tools/list page size, default all),\n"
            "  ENGRAM_MCP_ALLOWED_ORIGINS (extra HTTP origins, comma separated),\n"
            "  ENGRAM_MCP_TOKEN / ENGRAM_MCP_TOKEN_FILE (HTTP bearer token, >= 16 characters;\n"
            "  the file's first line), ENGRAM_MCP_TOKENS_FILE (HTTP: tokens limited to namespaces,\n"
            "  docs/security.md), ENGRAM_MCP_HOST, ENGRAM_MCP_ALLOWED_HOSTS,\n"
            "  ENGRAM_MCP_HTTP_* (connection, session and body limits; docs/security.md),\n"
            "  embedding provider and worker settings (docs/operations.md),\n"
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

/*
 * The HTTP bearer token into out ("" when none): ENGRAM_MCP_TOKEN_FILE's
 * first line (a file keeps it out of the environment of child processes
 * and of `ps e`), else ENGRAM_MCP_TOKEN.  Returns 0, or the exit status 2
 * with a message for an unreadable file or a token shorter than 16
 * characters (a guessable token is worse than none: it looks safe).
 */
static int http_token(char *out, size_t cap)
{
    out[0] = '\0';
    const char *file = getenv("ENGRAM_MCP_TOKEN_FILE");
    if (file && *file) {
        FILE *f = fopen(file, "r");
        if (!f || !fgets(out, (int)cap, f)) {
            fprintf(stderr, "engram serve: cannot read the token from ENGRAM_MCP_TOKEN_FILE\n");
            if (f)
                fclose(f);
            return 2;
        }
        fclose(f);
        out[strcspn(out, "\r\n")] = '\0';
    } else if (getenv("ENGRAM_MCP_TOKEN")) {
        snprintf(out, cap, "%s", getenv("ENGRAM_MCP_TOKEN"));
    }
    size_t n = strlen(out);
    if (n > 0 && n < 16) {
        fprintf(stderr, "engram serve: the HTTP bearer token must have at least 16 characters\n");
        return 2;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)out[i] <= ' ' || (unsigned char)out[i] >= 0x7f) {
            fprintf(stderr, "engram serve: the HTTP bearer token must be printable ASCII without spaces\n");
            return 2;
        }
    return 0;
}

static int run_transport(const mcp_server_opts *opts, const mcp_backend *be, const char *transport,
                         const mcp_http_opts *ho, eg_error *err)
{
    if (!strcmp(transport, "http"))
        return mcp_http_serve(opts, be, ho, err);
    return mcp_stdio_serve(opts, be, STDIN_FILENO, STDOUT_FILENO, err);
}

static int serve_memory(const mcp_server_opts *opts, const char *transport, const mcp_http_opts *hto)
{
    eg_error err;
    eg_error_clear(&err);
    mcp_backend be;
    if (mcp_backend_mem_new(&be, 0, &err))
        return cli_fail("serve", &err);
    EG_INFO("serve", "memory backend: nothing is persisted");
    int rc = run_transport(opts, &be, transport, hto, &err);
    mcp_backend_mem_free(&be);
    return rc ? cli_fail("serve", &err) : 0;
}

static int serve_neo4j(const mcp_server_opts *opts, const char *transport, const mcp_http_opts *hto,
                       unsigned threads, int workers, int health_port)
{
    eg_error err;
    eg_error_clear(&err);
    embed_config ec;
    graph_opts go;
    queue_opts qo;
    worker_opts wo;
    if (cli_load_settings(&ec, &go, &qo, &err) || worker_opts_from_env(&wo, ec.kind, &err))
        return cli_fail("serve", &err);
    bolt_pool *pool = NULL;
    queue_store *qs = NULL;
    graph_store *g = NULL;
    worker_sink *sink = NULL;
    worker_manager *m = NULL;
    worker_health *health = NULL;
    mcp_backend be;
    memset(&be, 0, sizeof be);
    int rc = 1;
    if (workers >= 0)
        wo.concurrency = workers;
    /* Two connections per call thread (a hybrid search runs its keyword legs
     * beside its vector leg, graph__beside), two per worker (lease/load and
     * completion), and a few for the indexer, the schema and health. */
    if (cli_open_pool(&pool, (size_t)threads * 2 + (size_t)wo.concurrency * 2 + 4, &err) ||
        queue_neo4j_new(&qs, pool, &qo, &err) || graph_store_new(&g, pool, qs, &go, &err) ||
        cli_schema_register_all(&err) || graph_schema_apply(g, 0, &err) ||
        graph_indexer_start(g, (int64_t)go.index_linger_ms, (int64_t)go.index_poll_ms, go.index_grace_ms,
                            &err)) {
        cli_fail("serve", &err);
        goto out;
    }
    /* Another model's vectors in the index: serve keyword search and writes
     * (their jobs wait in the queue for the switch), embed no query and
     * write no vector, and say so. */
    static char model_conflict[EG_ERR_MSG_MAX];
    graph_vector_model vm;
    if (graph_vector_model_check(g, true, &vm, &err) != 0) {
        if (err.code != EG_ECONFLICT) {
            cli_fail("serve", &err);
            goto out;
        }
        snprintf(model_conflict, sizeof model_conflict, "%s", err.message);
        EG_WARN("serve", "%s; until then: keyword search only, no embedding workers", model_conflict);
        wo.concurrency = 0;
    }
    if (wo.concurrency > 0) {
        if (worker_neo4j_sink_new(&sink, pool, go.database, go.vector_index, &err) ||
            worker_manager_new(&m, &wo, &ec, qs, sink, &err) || worker_manager_start(m, &err)) {
            cli_fail("serve", &err);
            goto out;
        }
    }
    /* /health and /metrics: on request only (--health-port or
     * ENGRAM_HEALTH_PORT), since several stdio servers of one user would
     * otherwise fight over the default port. */
    if (health_port >= 0 || getenv("ENGRAM_HEALTH_PORT")) {
        worker_health_opts ho;
        if (worker_health_opts_from_env(&ho, &err)) {
            cli_fail("serve", &err);
            goto out;
        }
        if (health_port >= 0)
            ho.port = health_port;
        if (ho.port >= 0 && worker_health_start(&health, &ho, qs, m, &err) < 0)
            eg_log_fields(EG_LOG_WARNING, "serve", "health endpoint not started", "error", err.message, NULL);
    }
    mcp_graph_deps deps = {.graph = g, .queue = qs, .embed = &ec, .workers = m,
                           .sync_timeout_ms = (m && wo.sync) ? wo.sync_timeout_ms : 0,
                           .vector_conflict = model_conflict[0] ? model_conflict : NULL};
    if (mcp_backend_graph_new(&be, &deps, &err)) {
        cli_fail("serve", &err);
        goto out;
    }
    if (wo.sync && !m)
        /* Synchronous mode waits for in-server workers; without them it
         * cannot hold, so say so rather than silently run asynchronously. */
        eg_log_fields(EG_LOG_WARNING, "serve",
                      "ENGRAM_EMBED_SYNC is set but this server runs no workers (--workers 0 / ENGRAM_WORKERS=0): "
                      "mutations return before their embeddings are written (asynchronous mode)",
                      NULL);
    EG_INFO("serve", "neo4j backend: namespace=%s embeddings=%s/%s workers=%d%s", go.ns, embed_kind_name(ec.kind),
            go.embedding_model, wo.concurrency, deps.sync_timeout_ms > 0 ? " (synchronous mode)" : "");
    rc = run_transport(opts, &be, transport, hto, &err) ? cli_fail("serve", &err) : 0;
out:
    worker_health_stop(health);
    mcp_backend_graph_free(&be);
    if (m)
        worker_manager_stop(m, -1);
    worker_manager_free(m);
    worker_sink_free(sink);
    graph_store_free(g);
    queue_store_free(qs);
    bolt_pool_free(pool);
    return rc;
}

int cli_cmd_serve(int argc, char **argv)
{
    const char *transport = "stdio";
    const char *backend = getenv("ENGRAM_BACKEND") ? getenv("ENGRAM_BACKEND") : "neo4j";
    unsigned port = 8765, threads = 4, page = 0;
    const char *host = getenv("ENGRAM_MCP_HOST");
    int workers = -1;     /* -1: ENGRAM_WORKERS */
    int health_port = -1; /* -1: ENGRAM_HEALTH_PORT if set, else no endpoint */
    unsigned uv;
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
        } else if (!strcmp(a, "--host") && v) {
            host = v;
            i++;
        } else if (!strcmp(a, "--port") && v && parse_uint(v, 65535, &port) == 0) {
            i++;
        } else if (!strcmp(a, "--threads") && v && parse_uint(v, 64, &threads) == 0 && threads > 0) {
            i++;
        } else if (!strcmp(a, "--workers") && v && parse_uint(v, 256, &uv) == 0) {
            workers = (int)uv;
            i++;
        } else if (!strcmp(a, "--health-port") && v && parse_uint(v, 65535, &uv) == 0) {
            health_port = (int)uv;
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
    char token[256];
    int trc = http_token(token, sizeof token);
    if (trc)
        return trc;
    mcp_http_opts hto = {.host = host, .port = port, .token = token[0] ? token : NULL};
    eg_error herr;
    eg_error_clear(&herr);
    /* Many teams on one server: each token limited to its namespaces. */
    const char *tokens_file = getenv("ENGRAM_MCP_TOKENS_FILE");
    mcp_access *access = NULL;
    if (tokens_file && *tokens_file && !strcmp(transport, "http")) {
        if (hto.token) {
            fprintf(stderr, "engram serve: set ENGRAM_MCP_TOKENS_FILE or ENGRAM_MCP_TOKEN(_FILE), not both\n");
            return 2;
        }
        const char *ns = getenv("ENGRAM_NAMESPACE") && *getenv("ENGRAM_NAMESPACE") ? getenv("ENGRAM_NAMESPACE")
                                                                                  : "default";
        if (mcp_access_load(&access, tokens_file, ns, &herr)) {
            fprintf(stderr, "engram serve: %s\n", herr.message);
            return 2;
        }
        hto.access = access;
    }
    if (!strcmp(transport, "http") &&
        (mcp_http_check_bind(host, hto.token != NULL || access != NULL, &herr) ||
         mcp_http_opts_from_env(&hto, &herr))) {
        fprintf(stderr, "engram serve: %s\n", herr.message);
        mcp_access_free(access);
        return 2;
    }
    /* A client that vanishes must not kill us mid-write; write() reports EPIPE. */
    signal(SIGPIPE, SIG_IGN);
    mcp_server_opts opts = {
        .workers = threads,
        .page_size = page,
        .instructions = "engram is a long-term knowledge-graph memory. Store facts with create_entities "
                        "/ add_observations / create_relations; recall with search_nodes, "
                        "semantic_search or open_nodes.",
    };
    int rc = 2;
    if (!strcmp(backend, "memory"))
        rc = serve_memory(&opts, transport, &hto);
    else if (!strcmp(backend, "neo4j"))
        rc = serve_neo4j(&opts, transport, &hto, threads, workers, health_port);
    else
        fprintf(stderr, "engram serve: unknown backend '%s' (use neo4j or memory)\n", backend);
    mcp_access_free(access);
    return rc;
}
