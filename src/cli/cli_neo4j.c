/*
 * cli_neo4j.c - shared Neo4j settings for subcommands (see cli_neo4j.h).
 */
#include "cli/cli_neo4j.h"

#include "core/env.h"
#include "core/log.h"

#include "graph/graph.h"
#include "queue/neo4j_store.h"
#include "schema/schema.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

const char *cli_neo4j_password(eg_error *err)
{
    /* read once, on the main thread at start-up, kept for the process */
    static char from_file[1024];
    const char *path = env_or("NEO4J_PASSWORD_FILE", NULL);
    if (!path)
        return env_or("NEO4J_PASSWORD", "");
    FILE *fp = fopen(path, "r");
    if (!fp) {
        eg_error_set(err, EG_EIO, EG_CLASS_CLIENT, "NEO4J_PASSWORD_FILE %s cannot be read: %s", path,
                     strerror(errno));
        return NULL;
    }
    bool got = fgets(from_file, sizeof from_file, fp) != NULL;
    fclose(fp);
    from_file[got ? strcspn(from_file, "\r\n") : 0] = '\0';
    if (!from_file[0]) {
        eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "NEO4J_PASSWORD_FILE %s is empty", path);
        return NULL;
    }
    return from_file;
}

int cli_neo4j_config(bolt_config *cfg, eg_error *err)
{
    bolt_config c = BOLT_CONFIG_INIT;
    c.uri = env_or("NEO4J_URI", "bolt://127.0.0.1:7687");
    c.auth = BOLT_AUTH_BASIC;
    c.user = env_or("NEO4J_USERNAME", "neo4j");
    c.password = cli_neo4j_password(err);
    c.database = env_or("NEO4J_DATABASE", NULL);
    c.ca_file = env_or("NEO4J_TRUSTED_CERTIFICATES", NULL);
    /* Enterprise impersonation: the connection authenticates as NEO4J_USERNAME
     * and every transaction (and ROUTE) runs as this user, so one service
     * account can serve a team with each member's own privileges. */
    c.imp_user = env_or("NEO4J_IMPERSONATED_USER", NULL);
    /* How long a read may spin between replies before it sleeps (see
     * bolt_tr_set_spin); 0 turns spinning off, unset keeps the default. */
    int64_t spin = BOLT_READ_SPIN_DEFAULT_US;
    if (eg_env_int("ENGRAM_NEO4J_READ_SPIN_US", 0, BOLT_READ_SPIN_MAX_US, &spin, err) < 0)
        return EG_EINVAL;
    c.read_spin_us = spin > 0 ? (int)spin : -1;
    *cfg = c;
    return c.password ? 0 : EG_EINVAL;
}

int cli_open_pool(bolt_pool **out, size_t max_size, eg_error *err)
{
    bolt_config cfg;
    if (cli_neo4j_config(&cfg, err))
        return EG_EINVAL;
    bolt_pool_opts po = BOLT_POOL_OPTS_INIT;
    po.max_size = max_size;
    int rc = bolt_pool_new(out, &cfg, &po, err);
    if (rc)
        return rc;
    if ((rc = bolt_pool_verify(*out, err))) {
        bolt_pool_free(*out);
        *out = NULL;
        char shown[512];
        eg_error_prefix(err, "connecting to %s", bolt_uri_redact(cfg.uri, shown, sizeof shown));
    }
    return rc;
}

/* The registry borrows the graph store (options, queue): keep both for the process. */
static graph_store *schema_graph;
static queue_store *schema_queue;

int cli_schema_register_all(eg_error *err)
{
    /* Each module whose migrations need no settings adds its line here. */
    return queue_schema_register(err);
}

int cli_schema_register_graph(bolt_pool *pool, eg_error *err)
{
    if (!schema_graph) {
        graph_opts go;
        embed_config ec;
        eg_error eerr;
        /* The schema needs the index's dimension, which follows a local
         * encoder; a broken embedding setting is reported elsewhere. */
        int rc = cli_graph_opts_from_env(&go, &ec, &eerr) == 0 ? 0 : graph_opts_from_env(&go, err);
        /* The data migration (graph 12) queues the embedding jobs of the
         * observations it converts: the store needs the queue. */
        queue_opts qo;
        if (!rc && !schema_queue && !(rc = queue_opts_from_env(&qo, err)))
            rc = queue_neo4j_new(&schema_queue, pool, &qo, err);
        if (!rc)
            rc = graph_store_new(&schema_graph, pool, schema_queue, &go, err);
        if (rc)
            return rc;
    }
    return graph_schema_register(schema_graph, err);
}

int cli_schema_startup(bolt_pool *pool, eg_error *err)
{
    int rc = cli_schema_register_all(err);
    if (!rc)
        rc = cli_schema_register_graph(pool, err);
    if (!rc)
        rc = schema_apply(pool, NULL, NULL, err);
    if (rc)
        eg_error_prefix(err, "applying the schema");
    return rc;
}

int cli_fail(const char *cmd, const eg_error *err)
{
    fprintf(stderr, "engram %s: %s%s%s%s\n", cmd, err && err->message[0] ? err->message : "failed",
            err && err->neo4j_code[0] ? " (" : "", err && err->neo4j_code[0] ? err->neo4j_code : "",
            err && err->neo4j_code[0] ? ")" : "");
    return 1;
}

int cli_parse_long(const char *s, long long *out)
{
    if (!s)
        return -1;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno || !end || *end || v < 0)
        return -1;
    *out = v;
    return 0;
}

void cli_fmt_time(int64_t ms, char *buf, size_t n)
{
    if (!ms) {
        snprintf(buf, n, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int cli_graph_opts_from_env(graph_opts *go, embed_config *ec_out, eg_error *err)
{
    embed_config ec;
    int rc = embed_config_from_env(&ec, err);
    if (rc == 0)
        rc = graph_opts_from_env(go, err);
    if (rc)
        return rc;
    /* A model with a fixed dimension (the local encoders) sizes the vector
     * index unless the operator sized it; the offline provider takes
     * whatever the index has; for the others the two settings must agree. */
    const char *nd = getenv("NEO4J_VECTOR_DIMENSIONS");
    if (ec.kind == EMBED_PROVIDER_LOCAL && !(nd && *nd))
        go->vector_dimensions = (size_t)ec.dimensions;
    if (ec.dimensions == 0 && ec.kind == EMBED_PROVIDER_OFFLINE)
        ec.dimensions = (int)go->vector_dimensions;
    if (ec.model && ec.model[0])
        go->embedding_model = ec.model;
    if (ec_out)
        *ec_out = ec;
    return 0;
}

int cli_load_settings(embed_config *ec, graph_opts *go, queue_opts *qo, eg_error *err)
{
    int rc = cli_graph_opts_from_env(go, ec, err);
    if (rc == 0)
        rc = queue_opts_from_env(qo, err);
    if (rc)
        return rc;
    if (ec->fallback)
        EG_WARN("embed", "%s", ec->fallback);
    return 0;
}

int cli_vector_model_check(bolt_pool *pool, const graph_opts *go, eg_error *err)
{
    graph_store *g = NULL;
    graph_vector_model vm;
    int rc = graph_store_new(&g, pool, NULL, go, err);
    if (rc == 0)
        rc = graph_vector_model_check(g, true, &vm, err);
    graph_store_free(g);
    return rc;
}
