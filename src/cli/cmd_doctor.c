/*
 * cmd_doctor.c - `engram doctor`: is this engram ready to run here?
 *
 * Reads NEO4J_URI (default bolt://127.0.0.1:7687), NEO4J_USERNAME (default
 * neo4j), NEO4J_PASSWORD, NEO4J_DATABASE and NEO4J_TRUSTED_CERTIFICATES (as
 * every subcommand does: cli_neo4j_config), connects, and prints the server
 * agent, the negotiated Bolt version, the connection id and what
 * `CALL dbms.components()` reports.  Then, read-only, what an operator asks
 * next: are the schema migrations applied, do the vector and full-text
 * indexes match the configuration, does the embedding configuration agree
 * with the index, and how is the queue doing.  `--json` prints one JSON
 * object on stdout instead.
 *
 * Exit status: 0 ready (a schema not applied yet is fine: the next start
 * applies it), 1 Neo4j unreachable (one line on stderr), 3 reachable but
 * something needs the operator (an index or the embedding configuration
 * disagrees with the configuration, a migration was changed).  The password
 * never appears: error messages come from the server or from our own code,
 * neither of which includes it.
 */
#include "bolt/conn.h"
#include "bolt/pool.h"
#include "cli/cli_neo4j.h"
#include "cli/commands.h"
#include "core/alloc.h"
#include "core/err.h"
#include "embed/provider.h"
#include "graph/graph.h"
#include "queue/neo4j_store.h"
#include "schema/schema.h"
#include "schema/server_version.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: engram doctor [--json]\n\n"
                 "Connects to Neo4j and reports the server agent, Bolt version, connection id\n"
                 "and dbms.components(); then checks, without changing anything, the Neo4j\n"
                 "release (minimum 5.15; tested: 5.26, 2025.10), the schema migrations, the\n"
                 "vector and full-text indexes against the configuration, the\n"
                 "embedding configuration and the queue.  Exit 0 ready, 1 Neo4j unreachable,\n"
                 "3 something needs attention.  Environment: NEO4J_URI (default\n"
                 "bolt://127.0.0.1:7687), NEO4J_USERNAME (default neo4j), NEO4J_PASSWORD,\n"
                 "NEO4J_DATABASE, NEO4J_TRUSTED_CERTIFICATES (CA file for +s URIs), and the\n"
                 "settings of docs/configuration.md.\n");
}

/* One check's outcome: level "ok", "info" (nothing to do now), "warning" (works, but
 * worse than it should: said loudly, exit 0) or "problem" (exit 3). */
static void check_add(json_t *checks, const char *name, const char *level, const char *detail)
{
    json_array_append_new(checks, json_pack("{s:s,s:s,s:s}", "check", name, "level", level, "detail", detail));
}

/* Schema migrations, read-only.  Sets *vector_pending when the vector index
 * migration has not run yet (then a missing index is expected). */
static void check_schema(bolt_pool *pool, json_t *checks, bool *vector_pending)
{
    eg_error err = {0};
    schema_entry *e = NULL;
    size_t n = 0;
    char detail[EG_ERR_MSG_MAX + 128];
    if (cli_schema_register_all(&err) || cli_schema_register_graph(pool, &err) ||
        schema_status(pool, &e, &n, &err)) {
        snprintf(detail, sizeof detail, "cannot read the schema: %s", err.message);
        check_add(checks, "schema", "problem", detail);
        return;
    }
    size_t applied = 0, pending = 0, changed = 0, unknown = 0;
    char pend[256] = "", chg[256] = "", unk[256] = "";
    for (size_t i = 0; i < n; i++) {
        char *list = NULL;
        switch (e[i].state) {
        case SCHEMA_APPLIED: applied++; break;
        case SCHEMA_PENDING: pending++; list = pend; break;
        case SCHEMA_CHANGED: changed++; list = chg; break;
        case SCHEMA_UNKNOWN: unknown++; list = unk; break;
        }
        if (list && strlen(list) + strlen(e[i].id) + 2 < 256)
            snprintf(list + strlen(list), 256 - strlen(list), "%s%s", list[0] ? " " : "", e[i].id);
        if (e[i].state == SCHEMA_PENDING && strcmp(e[i].module, "graph") == 0 && e[i].version == 4)
            *vector_pending = true;
    }
    eg_free(e);
    if (changed) {
        snprintf(detail, sizeof detail,
                 "%zu applied; changed since applied (write a new migration instead): %s", applied, chg);
        check_add(checks, "schema", "problem", detail);
    } else if (pending || unknown) {
        snprintf(detail, sizeof detail, "%zu applied%s%s%s%s", applied,
                 pending ? "; pending (applied at the next start or by `engram schema apply`): " : "", pend,
                 unknown ? "; recorded by a newer engram: " : "", unk);
        check_add(checks, "schema", "info", detail);
    } else {
        snprintf(detail, sizeof detail, "%zu migrations applied", applied);
        check_add(checks, "schema", "ok", detail);
    }
}

/* Vector and full-text indexes against the configuration; the embedding
 * configuration against the vector index. */
static void check_indexes(bolt_pool *pool, json_t *checks, bool vector_pending)
{
    eg_error err = {0};
    char detail[EG_ERR_MSG_MAX + 256];
    graph_opts go;
    graph_store *g = NULL;
    if (cli_graph_opts_from_env(&go, NULL, &err) || graph_store_new(&g, pool, NULL, &go, &err)) {
        snprintf(detail, sizeof detail, "graph configuration: %s", err.message);
        check_add(checks, "indexes", "problem", detail);
        return;
    }
    json_t *rep = NULL;
    int rc = graph_schema_check(g, &rep, &err);
    json_t *vec = json_object_get(rep, "vectorIndex");
    if (rc == 0) {
        const char *sim = json_string_value(json_object_get(vec, "similarity"));
        const char *vstate = json_string_value(json_object_get(vec, "state"));
        const char *fstate = json_string_value(json_object_get(json_object_get(rep, "fulltextIndex"), "state"));
        json_t *ovec = json_object_get(rep, "observationVectorIndex");
        snprintf(detail, sizeof detail,
                 "vector index %s: %lld dimensions, %s, %s; full-text index %s: %s; "
                 "observation vector index %s: %lld dimensions",
                 go.vector_index, (long long)json_integer_value(json_object_get(vec, "dimensions")),
                 sim ? sim : "?", vstate ? vstate : "?", go.fulltext_index, fstate ? fstate : "?",
                 go.obs_vector_index, (long long)json_integer_value(json_object_get(ovec, "dimensions")));
        check_add(checks, "indexes", "ok", detail);
    } else {
        /* before the first start the indexes do not exist yet: expected */
        bool missing = !json_is_string(json_object_get(vec, "state"));
        check_add(checks, "indexes", vector_pending && missing ? "info" : "problem", err.message);
    }
    json_decref(rep);
    {
        graph_vector_model vm;
        eg_error_clear(&err);
        if (graph_vector_model_check(g, false, &vm, &err) != 0)
            check_add(checks, "vector model", "problem", err.message);
        else if (vm.model[0]) {
            snprintf(detail, sizeof detail, "namespace %s holds vectors of %s (%lld dimensions)", go.ns, vm.model,
                     vm.dims);
            check_add(checks, "vector model", "ok", detail);
        } else {
            check_add(checks, "vector model", "info", "no vectors yet: the first engram to start records its model");
        }
    }

    embed_config ec;
    eg_error_clear(&err);
    if (embed_config_from_env(&ec, &err)) {
        snprintf(detail, sizeof detail, "embedding configuration: %s", err.message);
        check_add(checks, "embeddings", "problem", detail);
    } else if (ec.dimensions > 0 && (size_t)ec.dimensions != go.vector_dimensions) {
        snprintf(detail, sizeof detail,
                 "provider %s model %s is configured for %d dimensions but the vector index has %zu "
                 "(ENGRAM_EMBED_DIMENSIONS / NEO4J_VECTOR_DIMENSIONS)",
                 embed_kind_name(ec.kind), ec.model ? ec.model : "?", ec.dimensions, go.vector_dimensions);
        check_add(checks, "embeddings", "problem", detail);
    } else if (ec.fallback) {
        snprintf(detail, sizeof detail, "provider %s, model %s, %zu dimensions: %s", embed_kind_name(ec.kind),
                 ec.model, go.vector_dimensions, ec.fallback);
        check_add(checks, "embeddings", "warning", detail);
    } else {
        char dims[32] = "the model's default";
        if (ec.dimensions > 0)
            snprintf(dims, sizeof dims, "%d", ec.dimensions);
        snprintf(detail, sizeof detail, "provider %s, model %s, %s dimensions%s", embed_kind_name(ec.kind),
                 ec.model ? ec.model : "?", dims,
                 ec.kind == EMBED_PROVIDER_OFFLINE   ? " (lexical n-gram: no account needed)"
                 : ec.kind == EMBED_PROVIDER_LOCAL ? " (sentence encoder in this process: no account needed)"
                                                   : "");
        check_add(checks, "embeddings", "ok", detail);
    }
    graph_store_free(g);
}

/* The queue, as `engram queue status` shows it, in one line. */
static void check_queue(bolt_pool *pool, json_t *checks)
{
    eg_error err = {0};
    char detail[EG_ERR_MSG_MAX + 128];
    queue_opts qo;
    queue_store *qs = NULL;
    queue_status st;
    memset(&st, 0, sizeof st);
    if (queue_opts_from_env(&qo, &err) || queue_neo4j_new(&qs, pool, &qo, &err) ||
        queue_status_get(qs, &st, &err)) {
        snprintf(detail, sizeof detail, "cannot read the queue: %s", err.message);
        check_add(checks, "queue", "problem", detail);
        queue_store_free(qs);
        return;
    }
    snprintf(detail, sizeof detail,
             "queue %s: %lld pending (%lld ready, oldest waiting %.1f s), %lld leased (%lld expired), "
             "%lld completed, %lld dead",
             qo.name, (long long)st.count[QUEUE_PENDING], (long long)st.ready,
             st.oldest_pending_age_ms < 0 ? 0.0 : (double)st.oldest_pending_age_ms / 1000.0,
             (long long)st.count[QUEUE_LEASED], (long long)st.expired_leases,
             (long long)st.count[QUEUE_COMPLETED], (long long)st.count[QUEUE_DEAD]);
    /* dead jobs wait for a person (engram queue list --state dead), but the
     * system runs: information, not a failed check */
    check_add(checks, "queue", st.count[QUEUE_DEAD] ? "info" : "ok", detail);
    queue_status_clear(&st);
    queue_store_free(qs);
}

/* All read-only checks; returns true when one found a problem. */
static bool run_checks(json_t *checks)
{
    eg_error err = {0};
    bolt_pool *pool = NULL;
    if (cli_open_pool(&pool, 2, &err)) {
        check_add(checks, "pool", "problem", err.message);
        return true;
    }
    bool vector_pending = false;
    check_schema(pool, checks, &vector_pending);
    check_indexes(pool, checks, vector_pending);
    check_queue(pool, checks);
    bolt_pool_free(pool);
    bool problem = false;
    size_t i;
    json_t *c;
    json_array_foreach(checks, i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "level")), "problem") == 0)
            problem = true;
    }
    return problem;
}

/*
 * A neo4j:// URI: the routing table the servers hand out (*table_out, new,
 * NULL for bolt://).  A table that cannot be had is a problem: every routed
 * transaction needs one.
 */
static json_t *routing_table(const bolt_config *cfg, json_t *checks)
{
    bolt_pool *p = NULL;
    eg_error err;
    eg_error_clear(&err);
    json_t *t = NULL;
    if (bolt_pool_new(&p, cfg, NULL, &err) == 0 && bolt_pool_is_routed(p)) {
        if (bolt_pool_routing_table(p, NULL, &t, &err) == 0) {
            char detail[256];
            snprintf(detail, sizeof detail, "%zu router(s), %zu reader(s), %zu writer(s) for %s",
                     json_array_size(json_object_get(t, "routers")), json_array_size(json_object_get(t, "readers")),
                     json_array_size(json_object_get(t, "writers")),
                     json_string_value(json_object_get(t, "db")) ? json_string_value(json_object_get(t, "db"))
                                                                 : "the home database");
            check_add(checks, "routing", json_array_size(json_object_get(t, "writers")) ? "ok" : "warning",
                      detail);
        } else {
            check_add(checks, "routing", "problem", err.message);
        }
    }
    bolt_pool_free(p);
    return t;
}

static void print_addrs(const char *label, const json_t *a)
{
    printf("  %-14s", label);
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
    {
        printf("%s%s", i ? ", " : "", json_string_value(v));
    }
    printf("%s\n", json_array_size(a) ? "" : "(none)");
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
    /* The settings every subcommand connects with, so what doctor proves
     * (TLS and its trusted certificates included) holds for them too. */
    bolt_config cfg;
    eg_error perr;
    eg_error_clear(&perr);
    if (cli_neo4j_config(&cfg, &perr)) {
        fprintf(stderr, "engram doctor: %s\n", perr.message);
        return 1;
    }
    char shown_uri[512]; /* credentials in the URI's user info are never printed */
    bolt_uri_redact(cfg.uri, shown_uri, sizeof shown_uri);
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
        fprintf(stderr, "engram doctor: cannot use Neo4j at %s: %s (%s%s%s)\n", shown_uri,
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
    /* The release first: on a server below the minimum the schema checks
     * below only repeat the consequence. */
    json_t *checks = json_array();
    char vdetail[256];
    schema_support sup = schema_server_support(ver, vdetail, sizeof vdetail);
    check_add(checks, "neo4j",
              sup == SCHEMA_SUPPORT_TESTED ? "ok" : sup == SCHEMA_SUPPORT_TOO_OLD ? "problem" : "info", vdetail);
    json_t *rt = routing_table(&cfg, checks);
    bool problem = run_checks(checks);
    if (as_json) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s?,s:O,s:o?,s:o,s:b}", "uri", shown_uri, "server_agent",
                              bolt_conn_server_agent(c), "bolt_version", version, "connection_id",
                              bolt_conn_connection_id(c), "database", cfg.database, "components",
                              rows, "routing", rt, "checks", checks, "ok", !problem);
        rt = NULL;
        checks = NULL; /* owned by o now */
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (s)
            printf("%s\n", s);
        eg_free(s);
        json_decref(o);
    } else {
        printf("uri:            %s\n", shown_uri);
        printf("server agent:   %s\n", bolt_conn_server_agent(c));
        printf("bolt version:   %s\n", version);
        printf("connection id:  %s\n", bolt_conn_connection_id(c));
        if (cfg.database)
            printf("database:       %s\n", cfg.database);
        printf("component:      %s %s (%s)\n", name ? name : "?", ver ? ver : "?", ed ? ed : "?");
        if (rt) {
            const char *db = json_string_value(json_object_get(rt, "db"));
            printf("routing table:  %s, ttl %lld s\n", db ? db : "home database",
                   (long long)json_integer_value(json_object_get(rt, "ttl_s")));
            print_addrs("routers:", json_object_get(rt, "routers"));
            print_addrs("readers:", json_object_get(rt, "readers"));
            print_addrs("writers:", json_object_get(rt, "writers"));
        }
        size_t i;
        json_t *chk;
        json_array_foreach(checks, i, chk)
        {
            char label[24];
            snprintf(label, sizeof label, "%s:", json_string_value(json_object_get(chk, "check")));
            const char *lvl = json_string_value(json_object_get(chk, "level"));
            printf("%-15s %s%s\n", label,
                   strcmp(lvl, "problem") == 0 ? "PROBLEM: " : strcmp(lvl, "warning") == 0 ? "WARNING: " : "",
                   json_string_value(json_object_get(chk, "detail")));
        }
    }
    json_decref(rt);
    json_decref(checks);
    json_decref(rows);
    bolt_conn_free(c);
    return problem ? 3 : 0;
}
