/*
 * cmd_migrate.c - `engram migrate memento`: move a memento-mcp graph that
 * lives in the same Neo4j into engram's model (src/graph/migrate.c), with a
 * read-only plan first (--dry-run) and a summary line (or --json).
 */
#include "cli/cli_neo4j.h"
#include "cli/commands.h"
#include "core/log.h"
#include "embed/provider.h"
#include "graph/graph.h"
#include "queue/neo4j_store.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void migrate_usage(FILE *f)
{
    fprintf(f,
            "usage: engram migrate memento [options]\n\n"
            "Convert the memento-mcp graph in the configured Neo4j (NEO4J_URI, ...) into engram's\n"
            "model, in place: one live entity per name with its versions as history, observations\n"
            "as lists, one live relation per (from, to, type) with its versions, and an embedding\n"
            "job per entity.  Stop memento-mcp first.  Safe to run again (it continues where it\n"
            "stopped, and does nothing once everything is migrated).\n\n"
            "options:\n"
            "  --namespace NS   target namespace (default ENGRAM_NAMESPACE, \"default\")\n"
            "  --batch N        names or relation groups per transaction (default 200)\n"
            "  --dry-run        only count what would be migrated; change nothing\n"
            "  --json           print the summary as JSON\n");
}

static json_t *stats_json(const graph_migrate_stats *s, bool plan, const char *ns)
{
    if (plan)
        return json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I}", "mode", "dry-run", "namespace", ns, "mementoNodes",
                         (json_int_t)s->memento_nodes, "names", (json_int_t)s->names, "duplicateNames",
                         (json_int_t)s->duplicate_names, "conflicts", (json_int_t)s->conflicts,
                         "relationships", (json_int_t)s->relationships);
    return json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "mode", "migrate", "namespace", ns,
                     "names", (json_int_t)s->names, "entities", (json_int_t)s->entities, "history",
                     (json_int_t)s->history, "duplicates", (json_int_t)s->duplicates, "conflicts",
                     (json_int_t)s->conflicts, "observationRecords", (json_int_t)s->records, "jobs",
                     (json_int_t)s->jobs, "relationships", (json_int_t)s->relationships, "relations",
                     (json_int_t)s->relations, "relationHistory", (json_int_t)s->relation_history);
}

static void on_progress(void *ctx, const graph_migrate_stats *s, bool final)
{
    if (!*(bool *)ctx)
        return;
    fprintf(stderr, "\rmigrate: %lld names, %lld entities, %lld history, %lld relations%s", (long long)s->names,
            (long long)s->entities, (long long)s->history, (long long)s->relations, final ? "\n" : "");
    fflush(stderr);
}

int cli_cmd_migrate(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        migrate_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "memento") != 0) {
        fprintf(stderr, "engram migrate: unknown source '%s' (only memento)\n", argv[1]);
        return 2;
    }
    bool dry = false, json_out = false;
    const char *ns = NULL;
    long batch = 200;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            migrate_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--dry-run")) {
            dry = true;
        } else if (!strcmp(a, "--json")) {
            json_out = true;
        } else if (!strcmp(a, "--namespace") && v) {
            ns = argv[++i];
        } else if (!strcmp(a, "--batch") && v && (batch = strtol(v, &end, 10)) >= 1 && batch <= 1000 && !*end) {
            i++;
        } else {
            fprintf(stderr, "engram migrate: bad option '%s'\n", a);
            migrate_usage(stderr);
            return 2;
        }
    }
    eg_error err;
    eg_error_clear(&err);
    embed_config ec;
    graph_opts go;
    queue_opts qo;
    if (cli_load_settings(&ec, &go, &qo, &err))
        return cli_fail("migrate", &err);
    if (ns)
        go.ns = ns;
    bolt_pool *pool = NULL;
    queue_store *qs = NULL;
    graph_store *g = NULL;
    int rc = 0;
    if (cli_open_pool(&pool, 2, &err) || cli_schema_startup(pool, &err) || queue_neo4j_new(&qs, pool, &qo, &err) ||
        graph_store_new(&g, pool, qs, &go, &err)) {
        rc = cli_fail("migrate", &err);
        goto out;
    }
    graph_migrate_stats st;
    bool tty = !json_out && isatty(2);
    if (dry)
        rc = graph_migrate_memento_plan(g, go.ns, &st, &err);
    else
        rc = graph_migrate_memento(g, go.ns, (size_t)batch, on_progress, &tty, &st, &err);
    if (rc) {
        rc = cli_fail("migrate", &err);
        goto out;
    }
    if (json_out) {
        json_t *j = stats_json(&st, dry, go.ns);
        if (j)
            json_dumpf(j, stdout, JSON_COMPACT);
        fputc('\n', stdout);
        json_decref(j);
    } else if (dry) {
        printf("migrate (dry run): namespace=%s memento_nodes=%lld names=%lld duplicate_names=%lld "
               "conflicts=%lld relationships=%lld\n",
               go.ns, (long long)st.memento_nodes, (long long)st.names, (long long)st.duplicate_names,
               (long long)st.conflicts, (long long)st.relationships);
    } else {
        printf("migrate: namespace=%s names=%lld entities=%lld history=%lld duplicates=%lld conflicts=%lld "
               "observation_records=%lld jobs=%lld relationships=%lld relations=%lld relation_history=%lld\n",
               go.ns, (long long)st.names, (long long)st.entities, (long long)st.history, (long long)st.duplicates,
               (long long)st.conflicts, (long long)st.records, (long long)st.jobs, (long long)st.relationships,
               (long long)st.relations, (long long)st.relation_history);
    }
    if (!dry && st.conflicts > 0)
        fprintf(stderr, "migrate: %lld name(s) already existed in namespace %s and were left as memento nodes "
                        "(see the warnings above)\n",
                (long long)st.conflicts, go.ns);
out:
    graph_store_free(g);
    queue_store_free(qs);
    bolt_pool_free(pool);
    return rc;
}
