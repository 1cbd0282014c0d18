/*
 * cmd_doctor.c - `engram doctor`: prove the Neo4j connection works.
 *
 * Reads NEO4J_URI (default bolt://127.0.0.1:7687), NEO4J_USERNAME (default
 * neo4j), NEO4J_PASSWORD and NEO4J_DATABASE, connects, and prints the server
 * agent, the negotiated Bolt version, the connection id and what
 * `CALL dbms.components()` reports.  `--json` prints one JSON object on
 * stdout instead.  On failure: one line on stderr and exit status 1 (the
 * password never appears: error messages come from the server or from our
 * own code, neither of which includes it).
 */
#include "bolt/conn.h"
#include "cli/commands.h"
#include "core/err.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: engram doctor [--json]\n\n"
                 "Connects to Neo4j and reports the server agent, Bolt version, connection id\n"
                 "and dbms.components().  Environment: NEO4J_URI (default\n"
                 "bolt://127.0.0.1:7687), NEO4J_USERNAME (default neo4j), NEO4J_PASSWORD,\n"
                 "NEO4J_DATABASE.\n");
}

int cli_cmd_doctor(int argc, char **argv)
{
    bool as_json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            as_json = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "engram doctor: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    bolt_config cfg = BOLT_CONFIG_INIT;
    cfg.uri = env_or("NEO4J_URI", "bolt://127.0.0.1:7687");
    cfg.user = env_or("NEO4J_USERNAME", "neo4j");
    cfg.password = env_or("NEO4J_PASSWORD", "");
    cfg.database = env_or("NEO4J_DATABASE", NULL);
    cfg.auth = BOLT_AUTH_BASIC;
    cfg.connect_timeout_ms = 10000;
    cfg.read_timeout_ms = 30000;

    eg_error err;
    eg_error_clear(&err);
    bolt_conn *c = NULL;
    json_t *rows = NULL;
    int rc = bolt_conn_open(&c, &cfg, &err);
    if (rc == 0)
        rc = bolt_conn_query_json(c, "CALL dbms.components() YIELD name, versions, edition "
                                     "RETURN name, versions[0] AS version, edition",
                                  NULL, NULL, &rows, &err);
    if (rc < 0) {
        fprintf(stderr, "engram doctor: cannot use Neo4j at %s: %s (%s%s%s)\n", cfg.uri,
                err.message, eg_strerror(rc), err.neo4j_code[0] ? ", " : "", err.neo4j_code);
        bolt_conn_free(c);
        return 1;
    }
    int major = 0, minor = 0;
    bolt_conn_version(c, &major, &minor);
    char version[16];
    snprintf(version, sizeof version, "%d.%d", major, minor);
    json_t *comp = json_array_get(rows, 0);
    const char *name = json_string_value(json_object_get(comp, "name"));
    const char *ver = json_string_value(json_object_get(comp, "version"));
    const char *ed = json_string_value(json_object_get(comp, "edition"));
    if (as_json) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s?,s:O}", "uri", cfg.uri, "server_agent",
                              bolt_conn_server_agent(c), "bolt_version", version, "connection_id",
                              bolt_conn_connection_id(c), "database", cfg.database, "components",
                              rows);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(o);
    } else {
        printf("uri:            %s\n", cfg.uri);
        printf("server agent:   %s\n", bolt_conn_server_agent(c));
        printf("bolt version:   %s\n", version);
        printf("connection id:  %s\n", bolt_conn_connection_id(c));
        if (cfg.database)
            printf("database:       %s\n", cfg.database);
        printf("component:      %s %s (%s)\n", name ? name : "?", ver ? ver : "?", ed ? ed : "?");
    }
    json_decref(rows);
    bolt_conn_free(c);
    return 0;
}
