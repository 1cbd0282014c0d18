/*
 * cmd_io.c - `engram export` and `engram import`: a namespace's memory out
 * as JSON lines, and back in (the official memory server's memory.jsonl,
 * or engram's own lossless format with history).
 *
 * Import reads the file more than once (it must be a regular file): a
 * first pass checks every line, so that `--on-error abort` writes nothing
 * when one line is malformed and `--dry-run` can count; then the writes, in
 * batches of one transaction each (official: entities, then relations, so
 * a relation may come before its entities in the file; engram: in file
 * order, which the export makes entities-first).  Re-importing the same
 * file changes nothing.
 */
#include "cli/cli_neo4j.h"
#include "cli/commands.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "graph/graph.h"
#include "queue/neo4j_store.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- export ---------------------------------------------------------------- */

static void export_usage(FILE *f)
{
    fprintf(f, "usage: engram export [--format engram|official] [--namespace NS] [--output FILE] [--vectors]\n"
               "  --format engram    lossless: live graph, full history, relation metadata (default)\n"
               "  --format official  the official memory server's memory.jsonl (live entities and relations)\n"
               "  --namespace NS     default ENGRAM_NAMESPACE\n"
               "  --output FILE      written to FILE.partial, renamed to FILE when complete (default stdout)\n"
               "  --vectors          engram format: each entity's vector and its model\n"
               "The export is one read transaction in constant memory; writes committed while it\n"
               "runs may or may not be in it (Neo4j reads are read committed, not a snapshot).\n");
}

static int write_line(void *ctx, const json_t *line, eg_error *err)
{
    FILE *f = ctx;
    if (json_dumpf(line, f, JSON_COMPACT | JSON_ENSURE_ASCII) != 0 || fputc('\n', f) == EOF)
        return eg_error_set(err, EG_EIO, EG_CLASS_CLIENT, "export: write failed: %s", strerror(errno));
    return 0;
}

/* Pool, queue store and graph store for namespace ns (NULL: configured), schema checked. */
static int open_graph(const char *ns, bolt_pool **pool, queue_store **qs, graph_store **g, graph_opts *go,
                      eg_error *err)
{
    embed_config ec;
    queue_opts qo;
    int rc = cli_load_settings(&ec, go, &qo, err);
    if (rc == 0 && ns)
        go->ns = ns;
    if (rc == 0)
        rc = cli_open_pool(pool, 2, err);
    if (rc == 0)
        rc = cli_schema_startup(*pool, err);
    if (rc == 0)
        rc = queue_neo4j_new(qs, *pool, &qo, err);
    if (rc == 0)
        rc = graph_store_new(g, *pool, *qs, go, err);
    return rc;
}

int cli_cmd_export(int argc, char **argv)
{
    graph_export_opts eo = {GRAPH_EXPORT_ENGRAM, false};
    const char *ns = NULL, *output = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            export_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--format") && v && (!strcmp(v, "engram") || !strcmp(v, "official"))) {
            eo.format = !strcmp(v, "official") ? GRAPH_EXPORT_OFFICIAL : GRAPH_EXPORT_ENGRAM;
            i++;
        } else if (!strcmp(a, "--namespace") && v) {
            ns = argv[++i];
        } else if (!strcmp(a, "--output") && v) {
            output = argv[++i];
        } else if (!strcmp(a, "--vectors")) {
            eo.vectors = true;
        } else {
            fprintf(stderr, "engram export: bad option '%s'\n", a);
            export_usage(stderr);
            return 2;
        }
    }
    if (eo.vectors && eo.format == GRAPH_EXPORT_OFFICIAL) {
        fprintf(stderr, "engram export: --vectors needs --format engram\n");
        return 2;
    }
    eg_error err;
    eg_error_clear(&err);
    bolt_pool *pool = NULL;
    queue_store *qs = NULL;
    graph_store *g = NULL;
    graph_opts go;
    int rc = open_graph(ns, &pool, &qs, &g, &go, &err);
    char partial[4096] = "";
    FILE *f = stdout;
    if (rc == 0 && output) {
        snprintf(partial, sizeof partial, "%s.partial", output);
        if (!(f = fopen(partial, "w")))
            rc = eg_error_set(&err, EG_EIO, EG_CLASS_CLIENT, "cannot write %s: %s", partial, strerror(errno));
    }
    graph_export_stats st;
    memset(&st, 0, sizeof st);
    int64_t t0 = eg_mono_ms();
    if (rc == 0)
        rc = graph_export(g, NULL, &eo, write_line, f, &st, &err);
    if (f && f != stdout) {
        if (fclose(f) != 0 && rc == 0)
            rc = eg_error_set(&err, EG_EIO, EG_CLASS_CLIENT, "cannot write %s: %s", partial, strerror(errno));
        if (rc == 0 && rename(partial, output) != 0)
            rc = eg_error_set(&err, EG_EIO, EG_CLASS_CLIENT, "cannot rename %s: %s", partial, strerror(errno));
        if (rc != 0)
            unlink(partial); /* never leave a half export looking like a whole one */
    } else if (f == stdout && fflush(stdout) != 0 && rc == 0) {
        rc = eg_error_set(&err, EG_EIO, EG_CLASS_CLIENT, "export: write failed: %s", strerror(errno));
    }
    if (rc == 0)
        fprintf(stderr,
                "export: namespace=%s format=%s entities=%lld entity_versions=%lld relations=%lld "
                "relation_versions=%lld seconds=%.1f\n",
                go.ns, eo.format == GRAPH_EXPORT_OFFICIAL ? "official" : "engram", (long long)st.entities,
                (long long)st.entity_versions, (long long)st.relations, (long long)st.relation_versions,
                (double)(eg_mono_ms() - t0) / 1000.0);
    graph_store_free(g);
    queue_store_free(qs);
    bolt_pool_free(pool);
    return rc ? cli_fail("export", &err) : 0;
}

/* ---- import ---------------------------------------------------------------- */

static void import_usage(FILE *f)
{
    fprintf(f, "usage: engram import FILE [--format auto|official|engram] [--namespace NS]\n"
               "                     [--on-error skip|abort] [--dry-run] [--batch N] [--json]\n"
               "  FILE               JSON lines: the official memory server's memory.jsonl, or an\n"
               "                     `engram export` file (auto-detected from its first line)\n"
               "  --namespace NS     default ENGRAM_NAMESPACE\n"
               "  --on-error skip    report malformed lines (with their numbers) and import the rest (default)\n"
               "  --on-error abort   report them and write nothing\n"
               "  --dry-run          check the file and count what would change; write nothing\n"
               "  --batch N          records per transaction (default 500, at most 5000)\n"
               "  --json             print the summary as JSON\n"
               "Official lines merge like create_entities: a new entity is created, an existing one gains\n"
               "the observations it lacks.  Importing the same file again changes nothing.\n");
}

enum { FMT_AUTO, FMT_OFFICIAL, FMT_ENGRAM };

typedef struct import_run {
    const char *path;
    FILE *f;
    int fmt;
    bool abort_on_error, dry, json, tty;
    size_t batch;
    off_t size;
    graph_store *g;
    graph_req req;
    char source_ns[512];
    /* counts */
    int64_t lines, malformed, entity_lines, relation_lines, history_lines;
    int64_t created, updated, unchanged, rel_created, rel_existing, rel_skipped, jobs;
    int64_t would_create, would_add_obs;
    graph_restore_stats rs;
    graph_obs_convert_stats conv; /* the restored history's observation records */
    int64_t t0, last_progress;
    int pass, passes;
} import_run;

static void progress(import_run *r, bool final)
{
    int64_t now = eg_mono_ms();
    if (!final && now - r->last_progress < (r->tty ? 200 : 5000))
        return;
    r->last_progress = now;
    off_t at = ftello(r->f);
    double frac = r->size > 0 && at >= 0 ? (double)at / (double)r->size : 1.0;
    if (frac > 1)
        frac = 1;
    if (r->tty) {
        char bar[31];
        for (int i = 0; i < 30; i++)
            bar[i] = i < (int)(frac * 30) ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\rimport pass %d/%d [%s] %3.0f%%%s", r->pass, r->passes, bar, frac * 100, final ? "\n" : "");
    } else {
        fprintf(stderr, "import: pass %d/%d %.0f%% (%.1f s)\n", r->pass, r->passes, frac * 100,
                (double)(now - r->t0) / 1000.0);
    }
}

/*
 * Read the next line into *line (getline's buffer); parse it.  Returns 1
 * with *rec (new) or NULL for a blank line, 0 at EOF, -1 on a read error.
 * why is set when the line is not JSON.
 */
static int next_record(import_run *r, char **line, size_t *cap, json_t **rec, char *why, size_t wcap)
{
    *rec = NULL;
    why[0] = '\0';
    errno = 0;
    ssize_t n = getline(line, cap, r->f);
    if (n < 0)
        return errno ? -1 : 0;
    r->lines++;
    char *s = *line;
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    size_t k = 0;
    while (s[k] == ' ' || s[k] == '\t')
        k++;
    if (!s[k])
        return 1;
    json_error_t je;
    *rec = json_loadb(s, (size_t)n, 0, &je);
    if (!*rec)
        snprintf(why, wcap, "not JSON (%s at column %d)", je.text, je.column);
    return 1;
}

/* The official format's check; *clean (new) is what create_* takes. */
static int check_official(const json_t *rec, json_t **clean, char *why, size_t cap)
{
    *clean = NULL;
    const char *type = json_string_value(json_object_get(rec, "type"));
    if (!json_is_object(rec) || !type) {
        snprintf(why, cap, "not an object with a \"type\"");
        return -1;
    }
    if (!strcmp(type, "entity")) {
        const json_t *name = json_object_get(rec, "name"), *et = json_object_get(rec, "entityType"),
                     *obs = json_object_get(rec, "observations");
        bool ok = json_is_string(name) && json_string_length(name) > 0 && (!et || json_is_string(et)) &&
                  (!obs || json_is_array(obs));
        size_t i;
        json_t *o;
        json_array_foreach(obs, i, o) ok = ok && json_is_string(o);
        if (!ok) {
            snprintf(why, cap, "entity needs a non-empty \"name\", a string \"entityType\" and \"observations\" "
                               "as a list of strings");
            return -1;
        }
        *clean = json_pack("{s:O, s:s, s:o}", "name", name, "entityType", et ? json_string_value(et) : "",
                           "observations", obs ? json_incref((json_t *)obs) : json_array());
        return 0;
    }
    if (!strcmp(type, "relation")) {
        const json_t *from = json_object_get(rec, "from"), *to = json_object_get(rec, "to"),
                     *rt = json_object_get(rec, "relationType");
        if (!json_is_string(from) || !json_is_string(to) || !json_is_string(rt) || !json_string_length(from) ||
            !json_string_length(to) || !json_string_length(rt)) {
            snprintf(why, cap, "relation needs non-empty \"from\", \"to\" and \"relationType\" strings");
            return -1;
        }
        *clean = json_pack("{s:O, s:O, s:O}", "from", from, "to", to, "relationType", rt);
        return 0;
    }
    snprintf(why, cap, "unknown type '%.40s' (entity or relation)", type);
    return -1;
}

/* The first record decides the format (an engram export starts with its header). */
static int detect(import_run *r, eg_error *err)
{
    char *line = NULL, why[200];
    size_t cap = 0;
    json_t *rec = NULL;
    int got;
    while ((got = next_record(r, &line, &cap, &rec, why, sizeof why)) == 1 && !rec && !why[0])
        ;
    const char *type = json_string_value(json_object_get(rec, "type"));
    if (type && !strcmp(type, "engram-export")) {
        if (json_integer_value(json_object_get(rec, "format")) != 1) {
            json_decref(rec);
            eg_free(line);
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "%s: an engram export of an unknown format version",
                                r->path);
        }
        const char *rec_ns = json_string_value(json_object_get(rec, "namespace"));
        snprintf(r->source_ns, sizeof r->source_ns, "%s", rec_ns ? rec_ns : "");
        if (r->fmt == FMT_AUTO)
            r->fmt = FMT_ENGRAM;
    }
    if (r->fmt == FMT_AUTO)
        r->fmt = FMT_OFFICIAL;
    json_decref(rec);
    eg_free(line);
    r->lines = 0;
    return fseeko(r->f, 0, SEEK_SET) == 0 ? 0
                                          : eg_error_set(err, EG_EIO, EG_CLASS_CLIENT, "%s: cannot rewind", r->path);
}

/* Report one malformed line (the first 20 in full, then a count). */
static void report(import_run *r, const char *why)
{
    r->malformed++;
    if (r->malformed <= 20)
        fprintf(stderr, "%s:%lld: %s\n", r->path, (long long)r->lines, why);
    else if (r->malformed == 21)
        fprintf(stderr, "%s: more malformed lines follow; only the count is reported\n", r->path);
}

/* A record's verdict: 1 usable (*clean set), 0 skip silently (blank, header), -1 malformed (why). */
static int classify(import_run *r, json_t *rec, json_t **clean, char *why, size_t cap)
{
    *clean = NULL;
    if (!rec)
        return why[0] ? -1 : 0;
    const char *type = json_string_value(json_object_get(rec, "type"));
    if (r->fmt == FMT_ENGRAM) {
        if (type && !strcmp(type, "engram-export"))
            return r->lines == 1 ? 0 : (snprintf(why, cap, "a second header"), -1);
        if (graph_restore_check(rec, why, cap) != 0)
            return -1;
        *clean = json_incref(rec);
        return 1;
    }
    return check_official(rec, clean, why, cap) == 0 ? 1 : -1;
}

/* Pass 1: check every line, count by kind. */
static int check_pass(import_run *r, eg_error *err)
{
    char *line = NULL, why[240];
    size_t cap = 0;
    int got;
    json_t *rec = NULL;
    r->pass = 1;
    while ((got = next_record(r, &line, &cap, &rec, why, sizeof why)) == 1) {
        json_t *clean = NULL;
        int v = classify(r, rec, &clean, why, sizeof why);
        if (v < 0) {
            report(r, why);
        } else if (v > 0) {
            const char *type = json_string_value(json_object_get(clean, "type"));
            if (r->fmt == FMT_OFFICIAL)
                type = json_object_get(clean, "name") ? "entity" : "relation";
            if (!strcmp(type, "entity"))
                r->entity_lines++;
            else if (!strcmp(type, "relation"))
                r->relation_lines++;
            else
                r->history_lines++;
        }
        json_decref(clean);
        json_decref(rec);
        progress(r, false);
    }
    eg_free(line);
    if (got < 0)
        return eg_error_set(err, EG_EIO, EG_CLASS_CLIENT, "%s: read error: %s", r->path, strerror(errno));
    progress(r, true);
    return 0;
}

/* Dry run, official entities: how many are new, how many observations would be added. */
static int dry_count(import_run *r, json_t *batch, eg_error *err)
{
    json_t *names = json_array(), *out = NULL;
    size_t i;
    json_t *e;
    json_array_foreach(batch, i, e) json_array_append(names, json_object_get(e, "name"));
    graph_page page = GRAPH_PAGE_INIT;
    page.limit = json_array_size(names) + 1;
    page.max_bytes = (size_t)256 << 20;
    int rc = graph_open_nodes(r->g, &r->req, names, &page, &out, err);
    json_decref(names);
    if (rc != 0)
        return rc;
    json_t *have = json_object();
    json_array_foreach(json_object_get(out, "entities"), i, e)
        json_object_set(have, json_string_value(json_object_get(e, "name")), json_object_get(e, "observations"));
    json_array_foreach(batch, i, e)
    {
        json_t *obs = json_object_get(have, json_string_value(json_object_get(e, "name")));
        if (!obs) {
            r->would_create++;
            continue;
        }
        size_t k, m;
        json_t *o, *x;
        json_array_foreach(json_object_get(e, "observations"), k, o)
        {
            bool found = false;
            json_array_foreach(obs, m, x) found = found || json_equal(o, x);
            r->would_add_obs += !found;
        }
    }
    json_decref(have);
    json_decref(out);
    return 0;
}

/* Write (or, dry, count) one batch of clean records of one kind. */
static int flush(import_run *r, const char *kind, json_t *batch, eg_error *err)
{
    if (json_array_size(batch) == 0)
        return 0;
    int rc = 0;
    json_t *out = NULL;
    if (r->fmt == FMT_ENGRAM) {
        if (!r->dry)
            rc = graph_restore(r->g, &r->req, r->source_ns[0] ? r->source_ns : NULL, kind, batch, &r->rs, err);
    } else if (!strcmp(kind, "entity")) {
        if (r->dry) {
            rc = dry_count(r, batch, err);
        } else if ((rc = graph_create_entities(r->g, &r->req, batch, &out, err)) == 0) {
            r->created += (int64_t)json_array_size(json_object_get(out, "created"));
            r->updated += (int64_t)json_array_size(json_object_get(out, "updated"));
            r->unchanged += (int64_t)json_array_size(json_object_get(out, "unchanged"));
            r->jobs += (int64_t)json_array_size(json_object_get(out, "jobIds"));
        }
    } else if (!r->dry && (rc = graph_create_relations(r->g, &r->req, batch, &out, err)) == 0) {
        r->rel_created += (int64_t)json_array_size(json_object_get(out, "relations"));
        r->rel_existing += (int64_t)json_array_size(json_object_get(out, "existing"));
        size_t i;
        json_t *s;
        json_array_foreach(json_object_get(out, "skipped"), i, s)
        {
            r->rel_skipped++;
            if (r->rel_skipped <= 20)
                fprintf(stderr, "%s: relation %s -[%s]-> %s skipped: %s\n", r->path,
                        json_string_value(json_object_get(s, "from")),
                        json_string_value(json_object_get(s, "relationType")),
                        json_string_value(json_object_get(s, "to")), json_string_value(json_object_get(s, "reason")));
        }
    }
    json_decref(out);
    json_array_clear(batch);
    return rc;
}

/*
 * A write pass.  only: for the official format, the kind this pass takes
 * ("entity" first, then "relation"); NULL: every record in file order.
 */
static int write_pass(import_run *r, const char *only, eg_error *err)
{
    if (fseeko(r->f, 0, SEEK_SET) != 0)
        return eg_error_set(err, EG_EIO, EG_CLASS_CLIENT, "%s: cannot rewind", r->path);
    r->lines = 0;
    r->pass++;
    char *line = NULL, why[240], kind[32] = "";
    size_t cap = 0;
    json_t *batch = json_array(), *rec = NULL;
    int got, rc = batch ? 0 : eg_error_oom(err);
    while (rc == 0 && (got = next_record(r, &line, &cap, &rec, why, sizeof why)) == 1) {
        json_t *clean = NULL;
        if (classify(r, rec, &clean, why, sizeof why) > 0) {
            const char *k = r->fmt == FMT_OFFICIAL ? (json_object_get(clean, "name") ? "entity" : "relation")
                                                   : json_string_value(json_object_get(clean, "type"));
            if (!only || !strcmp(k, only)) {
                if (strcmp(k, kind) != 0 || json_array_size(batch) >= r->batch) {
                    rc = flush(r, kind, batch, err);
                    snprintf(kind, sizeof kind, "%s", k);
                }
                if (rc == 0)
                    json_array_append(batch, clean);
            }
        }
        json_decref(clean);
        json_decref(rec);
        progress(r, false);
    }
    if (rc == 0)
        rc = flush(r, kind, batch, err);
    json_decref(batch);
    eg_free(line);
    if (rc == 0)
        progress(r, true);
    return rc;
}

static void summary(import_run *r)
{
    const char *fmt = r->fmt == FMT_ENGRAM ? "engram" : "official";
    double s = (double)((eg_mono_ms() - r->t0) / 10) / 100.0; /* to the hundredth */
    json_t *j = json_pack("{s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:f}", "format", fmt, "dryRun", r->dry, "lines",
                          (json_int_t)r->lines, "malformed", (json_int_t)r->malformed, "entityLines",
                          (json_int_t)r->entity_lines, "relationLines", (json_int_t)r->relation_lines, "historyLines",
                          (json_int_t)r->history_lines, "seconds", s);
    if (!j)
        return;
    if (r->dry && r->fmt == FMT_OFFICIAL) {
        json_object_set_new(j, "wouldCreateEntities", json_integer(r->would_create));
        json_object_set_new(j, "wouldAddObservations", json_integer(r->would_add_obs));
    } else if (!r->dry && r->fmt == FMT_OFFICIAL) {
        json_object_set_new(j, "entitiesCreated", json_integer(r->created));
        json_object_set_new(j, "entitiesUpdated", json_integer(r->updated));
        json_object_set_new(j, "entitiesUnchanged", json_integer(r->unchanged));
        json_object_set_new(j, "relationsCreated", json_integer(r->rel_created));
        json_object_set_new(j, "relationsExisting", json_integer(r->rel_existing));
        json_object_set_new(j, "relationsSkipped", json_integer(r->rel_skipped));
        json_object_set_new(j, "jobs", json_integer(r->jobs));
        json_object_set_new(j, "entitiesPerSecond",
                            json_real(s > 0 ? round((double)r->entity_lines / s * 10.0) / 10.0 : 0));
    } else if (!r->dry) {
        json_object_set_new(j, "entitiesRestored", json_integer(r->rs.entities));
        json_object_set_new(j, "entitiesExisting", json_integer(r->rs.entities_existing));
        json_object_set_new(j, "entityVersionsRestored", json_integer(r->rs.entity_versions));
        json_object_set_new(j, "relationsRestored", json_integer(r->rs.relations));
        json_object_set_new(j, "relationsExisting", json_integer(r->rs.relations_existing));
        json_object_set_new(j, "relationsSkipped", json_integer(r->rs.relations_skipped));
        json_object_set_new(j, "relationVersionsRestored", json_integer(r->rs.relation_versions));
        json_object_set_new(j, "observationRecords", json_integer(r->conv.records));
        json_object_set_new(j, "jobs", json_integer(r->rs.jobs + r->conv.jobs));
    }
    /* 12 significant digits: a hundredth of a second prints as 72.96, not
     * as the nearest double's 72.959999999999994 */
    const size_t real_fmt = JSON_REAL_PRECISION(12);
    if (r->json) {
        json_dumpf(j, stdout, JSON_COMPACT | real_fmt);
        fputc('\n', stdout);
    } else {
        fputs("import:", stdout);
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v)
        {
            char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | real_fmt);
            printf(" %s=%s", k, t ? t : "?");
            eg_free(t);
        }
        fputc('\n', stdout);
    }
    json_decref(j);
}

int cli_cmd_import(int argc, char **argv)
{
    import_run r;
    memset(&r, 0, sizeof r);
    r.batch = 500;
    const char *ns = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        long n;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            import_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--format") && v &&
                   (!strcmp(v, "auto") || !strcmp(v, "official") || !strcmp(v, "engram"))) {
            r.fmt = !strcmp(v, "official") ? FMT_OFFICIAL : !strcmp(v, "engram") ? FMT_ENGRAM : FMT_AUTO;
            i++;
        } else if (!strcmp(a, "--namespace") && v) {
            ns = argv[++i];
        } else if (!strcmp(a, "--on-error") && v && (!strcmp(v, "skip") || !strcmp(v, "abort"))) {
            r.abort_on_error = !strcmp(v, "abort");
            i++;
        } else if (!strcmp(a, "--dry-run")) {
            r.dry = true;
        } else if (!strcmp(a, "--json")) {
            r.json = true;
        } else if (!strcmp(a, "--batch") && v && (n = strtol(v, &end, 10)) >= 1 && n <= 5000 && !*end) {
            r.batch = (size_t)n;
            i++;
        } else if (a[0] != '-' && !r.path) {
            r.path = a;
        } else {
            fprintf(stderr, "engram import: bad option '%s'\n", a);
            import_usage(stderr);
            return 2;
        }
    }
    if (!r.path) {
        import_usage(stderr);
        return 2;
    }
    r.f = fopen(r.path, "r");
    struct stat st;
    if (!r.f || fstat(fileno(r.f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "engram import: %s: %s\n", r.path,
                r.f ? "not a regular file (import reads it twice)" : strerror(errno));
        if (r.f)
            fclose(r.f);
        return 2;
    }
    r.size = st.st_size;
    r.tty = isatty(2);
    r.t0 = r.last_progress = eg_mono_ms();
    eg_error err;
    eg_error_clear(&err);
    int rc = detect(&r, &err);
    r.passes = r.dry ? 2 : r.fmt == FMT_OFFICIAL ? 3 : 2;
    if (rc == 0)
        rc = check_pass(&r, &err);
    if (rc == 0 && r.malformed > 0 && r.abort_on_error) {
        fprintf(stderr, "import: %lld malformed line(s) and --on-error abort: nothing was written\n",
                (long long)r.malformed);
        fclose(r.f);
        return 1;
    }
    bolt_pool *pool = NULL;
    queue_store *qs = NULL;
    graph_opts go;
    if (rc == 0)
        rc = open_graph(ns, &pool, &qs, &r.g, &go, &err);
    r.req.ns = go.ns;
    if (rc == 0 && r.fmt == FMT_OFFICIAL) {
        rc = write_pass(&r, "entity", &err);
        if (rc == 0 && !r.dry)
            rc = write_pass(&r, "relation", &err);
    } else if (rc == 0) {
        rc = write_pass(&r, NULL, &err);
        /* The export keeps every version's observation list; records are
         * made from them once the whole history is in (an entity's versions
         * may span batches).  Importing again converts what an interrupted
         * import left. */
        if (rc == 0 && !r.dry)
            rc = graph_obs_convert(r.g, go.ns, 0, &r.conv, &err);
    }
    fclose(r.f);
    graph_store_free(r.g);
    queue_store_free(qs);
    bolt_pool_free(pool);
    if (rc)
        return cli_fail("import", &err);
    summary(&r);
    return r.malformed > 0 ? 3 : 0;
}
