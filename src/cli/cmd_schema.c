/*
 * cmd_schema.c - `engram schema apply|status [--json]`.
 *
 * apply: create what the registered modules need (idempotent, safe to run
 * from several processes at once) and record it, data migrations included
 * (their progress goes to stderr); status: compare the code's migrations
 * with what the database recorded, and say what a pending data migration
 * has left.  Exit 0, or 1 on error; status
 * exits 3 when something is pending or changed (scripts can gate on it).
 */
#include "cli/cli_neo4j.h"
#include "cli/commands.h"
#include "core/alloc.h"
#include "schema/schema.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: engram schema apply|status [--json]\n"
               "  apply   apply pending migrations (also done at server/worker start)\n"
               "  status  list migrations: applied, pending, changed, unknown (a pending data\n"
               "          migration says how much it has left to convert)\n");
}

int cli_cmd_schema(int argc, char **argv)
{
    const char *sub = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (!sub)
            sub = argv[i];
        else {
            usage(stderr);
            return 2;
        }
    }
    if (!sub || (strcmp(sub, "apply") && strcmp(sub, "status"))) {
        usage(stderr);
        return 2;
    }
    eg_error err = {0};
    bolt_pool *pool = NULL;
    if (cli_open_pool(&pool, 4, &err) || cli_schema_register_all(&err) ||
        cli_schema_register_graph(pool, &err)) {
        bolt_pool_free(pool);
        return cli_fail("schema", &err);
    }
    schema_entry *e = NULL;
    size_t n = 0;
    int rc = strcmp(sub, "apply") == 0 ? schema_apply(pool, &e, &n, &err)
                                       : schema_status(pool, &e, &n, &err);
    bolt_pool_free(pool);
    if (rc)
        return cli_fail("schema", &err);
    int exit_code = 0;
    json_t *arr = json_array();
    if (!json)
        printf("%-14s %-8s %-20s %-7s %s\n", "MIGRATION", "STATE", "APPLIED", "NOW", "DESCRIPTION");
    for (size_t i = 0; i < n; i++) {
        char when[32];
        cli_fmt_time(e[i].applied_at, when, sizeof when);
        if (e[i].state == SCHEMA_PENDING || e[i].state == SCHEMA_CHANGED)
            exit_code = strcmp(sub, "status") == 0 ? 3 : 0;
        if (json) {
            json_t *x = json_pack("{s:s,s:s,s:i,s:s,s:s,s:s,s:I,s:b,s:b}", "id", e[i].id, "module", e[i].module,
                                  "version", e[i].version, "state", schema_mstate_name(e[i].state), "description",
                                  e[i].description, "checksum", e[i].checksum, "appliedAt",
                                  (json_int_t)e[i].applied_at, "appliedNow", e[i].applied_now, "data", e[i].data);
            /* a pending data migration: how much it has left (entities, for graph 12) */
            if (x && e[i].data && e[i].todo >= 0)
                json_object_set_new(x, "todo", json_integer(e[i].todo));
            json_array_append_new(arr, x);
        } else if (e[i].data && e[i].todo >= 0) {
            printf("%-14s %-8s %-20s %-7s %s: %lld to convert\n", e[i].id, schema_mstate_name(e[i].state), when,
                   e[i].applied_now ? "yes" : "", e[i].description, (long long)e[i].todo);
        } else {
            printf("%-14s %-8s %-20s %-7s %s\n", e[i].id, schema_mstate_name(e[i].state), when,
                   e[i].applied_now ? "yes" : "", e[i].description);
        }
    }
    if (json) {
        char *s = json_dumps(arr, JSON_COMPACT);
        if (s)
            printf("%s\n", s);
        eg_free(s);
    }
    json_decref(arr);
    eg_free(e);
    return exit_code;
}
