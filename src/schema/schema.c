/*
 * schema.c - the migration registry and runner (see schema.h).
 */
#include "schema/schema.h"

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/sha256.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define SCHEMA_MAX_MODULES 16

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static const schema_module *reg[SCHEMA_MAX_MODULES];
static size_t nreg;

static bool name_ok(const char *s)
{
    if (!s || !*s || strlen(s) >= 40 || !(*s >= 'a' && *s <= 'z'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

int schema_register(const schema_module *m, eg_error *err)
{
    if (!m || !name_ok(m->name) || (m->n && !m->migrations))
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "schema_register: bad module");
    for (size_t i = 0; i < m->n; i++) {
        const schema_migration *g = &m->migrations[i];
        int kinds = (g->statements != NULL) + (g->build != NULL) + (g->run != NULL);
        if (g->version <= 0 || (i && g->version <= m->migrations[i - 1].version) || kinds != 1 ||
            (g->run && g->follows_config) || (g->count && !g->run))
            return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT,
                                "schema_register: module %s migration %zu: versions must increase "
                                "and a migration needs one of statements, build or run (run without "
                                "follows_config; count only with run)",
                                m->name, i);
    }
    pthread_mutex_lock(&reg_mu);
    int rc = 0;
    size_t i = 0;
    while (i < nreg && strcmp(reg[i]->name, m->name))
        i++;
    if (i < nreg)
        reg[i] = m;
    else if (nreg < SCHEMA_MAX_MODULES)
        reg[nreg++] = m;
    else
        rc = eg_error_set(err, EG_ETOOBIG, EG_CLASS_CLIENT, "schema_register: too many modules");
    pthread_mutex_unlock(&reg_mu);
    return rc;
}

void schema_registry_reset(void)
{
    pthread_mutex_lock(&reg_mu);
    nreg = 0;
    pthread_mutex_unlock(&reg_mu);
}

const char *schema_mstate_name(schema_mstate s)
{
    switch (s) {
    case SCHEMA_PENDING: return "pending";
    case SCHEMA_APPLIED: return "applied";
    case SCHEMA_CHANGED: return "changed";
    case SCHEMA_UNKNOWN: return "unknown";
    }
    return "?";
}

/* ---- statements and checksums ---- */

typedef struct stmts {
    char **v;
    size_t n;
    bool owned;
} stmts;

static void stmts_free(stmts *s)
{
    if (s->owned) {
        for (size_t i = 0; i < s->n; i++)
            eg_free(s->v[i]);
        eg_free(s->v);
    }
    memset(s, 0, sizeof *s);
}

/* A data migration's one "statement": what its checksum is of (schema.h). */
static int run_stmt(const schema_module *m, const schema_migration *g, stmts *out, eg_error *err)
{
    char line[96];
    snprintf(line, sizeof line, "run:%s:%d", m->name, g->version);
    out->owned = true;
    out->v = eg_calloc(1, sizeof *out->v);
    if (out->v)
        out->v[0] = eg_strdup(line);
    if (!out->v || !out->v[0]) {
        eg_free(out->v);
        memset(out, 0, sizeof *out);
        return eg_error_oom(err);
    }
    out->n = 1;
    return 0;
}

static int render(const schema_module *m, const schema_migration *g, stmts *out, eg_error *err)
{
    memset(out, 0, sizeof *out);
    if (g->run)
        return run_stmt(m, g, out, err);
    if (g->statements) {
        size_t n = 0;
        while (g->statements[n])
            n++;
        out->v = (char **)g->statements;
        out->n = n;
        return 0;
    }
    out->owned = true;
    return g->build(m->ctx, &out->v, &out->n, err);
}

/* The migration's checksum: its statements, each followed by "\n;\n".  A
 * failure is an error: an empty checksum would read as "changed". */
static int checksum(const stmts *s, char out[EG_SHA256_HEX_SIZE], eg_error *err)
{
    eg_sha256 *h;
    int rc = eg_sha256_new(&h);
    if (rc)
        return eg_error_oom(err);
    for (size_t i = 0; i < s->n; i++) {
        eg_sha256_update(h, s->v[i], strlen(s->v[i]));
        eg_sha256_update(h, "\n;\n", 3);
    }
    rc = eg_sha256_final_hex(h, out);
    eg_sha256_free(h);
    return rc ? eg_error_set(err, rc, EG_CLASS_NONE, "schema: cannot checksum a migration") : 0;
}

/* ---- database side ---- */

typedef struct recorded {
    char id[96];
    char checksum[65];
    int64_t applied_at;
    bool matched;
} recorded;

typedef struct rec_list {
    recorded *v;
    size_t n;
} rec_list;

static int run_discard(bolt_conn *c, const char *q, const bolt_params *p, eg_error *err)
{
    return bolt_conn_exec(c, q, p, NULL, NULL, err);
}

static int read_recorded(bolt_conn *c, rec_list *out, eg_error *err)
{
    out->v = NULL;
    out->n = 0;
    bolt_result *r = NULL;
    int rc = bolt_conn_run(c, "MATCH (m:SchemaMigration) RETURN m.id, m.checksum, m.appliedAt ORDER BY m.id",
                           NULL, NULL, &r, err);
    if (rc)
        return rc;
    const bolt_value *rec;
    while ((rc = bolt_result_next(r, &rec, err)) == 1) {
        recorded *nv = eg_realloc(out->v, (out->n + 1) * sizeof *nv);
        if (!nv) {
            rc = eg_error_oom(err);
            break;
        }
        out->v = nv;
        recorded *x = &nv[out->n++];
        memset(x, 0, sizeof *x);
        const char *id = bolt_value_cstr(bolt_value_at(rec, 0));
        const char *ck = bolt_value_cstr(bolt_value_at(rec, 1));
        snprintf(x->id, sizeof x->id, "%s", id ? id : "");
        snprintf(x->checksum, sizeof x->checksum, "%s", ck ? ck : "");
        x->applied_at = bolt_value_int(bolt_value_at(rec, 2), 0);
    }
    bolt_result_free(r);
    if (rc < 0) {
        eg_free(out->v);
        out->v = NULL;
        out->n = 0;
        return rc;
    }
    return 0;
}

static const char *const BOOTSTRAP[] = {
    "CREATE CONSTRAINT schema_migration_id IF NOT EXISTS FOR (m:SchemaMigration) REQUIRE m.id IS UNIQUE",
    "CREATE CONSTRAINT schema_lock_id IF NOT EXISTS FOR (l:SchemaLock) REQUIRE l.id IS UNIQUE",
};

typedef struct stmt_ctx {
    const char *q;
} stmt_ctx;

static int stmt_work(bolt_conn *c, void *payload, eg_error *err)
{
    return run_discard(c, ((stmt_ctx *)payload)->q, NULL, err);
}

/*
 * Run one schema statement in its own transaction.  Two processes creating
 * the same constraint at once can make the loser fail with "equivalent
 * constraint already exists" even with IF NOT EXISTS; re-running it is then
 * a no-op, so retry a few times.
 */
static int run_schema_stmt(bolt_pool *p, const char *q, eg_error *err)
{
    int rc = 0;
    for (int attempt = 0; attempt < 5; attempt++) {
        stmt_ctx sc = {q};
        eg_error_clear(err);
        rc = bolt_pool_execute_write(p, NULL, NULL, stmt_work, &sc, err);
        if (!rc)
            return 0;
        if (!err || !(strstr(err->neo4j_code, "Schema.") || err->retryable))
            return rc;
        eg_sleep_ms(50 + (int64_t)(eg_rand_unit() * 200));
    }
    return rc;
}

/* Snapshot the registry. */
static size_t reg_snapshot(const schema_module **out)
{
    pthread_mutex_lock(&reg_mu);
    size_t n = nreg;
    memcpy(out, reg, n * sizeof *out);
    pthread_mutex_unlock(&reg_mu);
    return n;
}

static size_t total_migrations(const schema_module **mods, size_t nm)
{
    size_t t = 0;
    for (size_t i = 0; i < nm; i++)
        t += mods[i]->n;
    return t;
}

/* Build entries for registry x database; marks matched records. */
static int build_entries(const schema_module **mods, size_t nm, rec_list *recs,
                         schema_entry **out, size_t *n_out, eg_error *err)
{
    size_t cap = total_migrations(mods, nm) + recs->n;
    schema_entry *e = eg_calloc(cap ? cap : 1, sizeof *e);
    if (!e)
        return eg_error_oom(err);
    size_t n = 0;
    for (size_t i = 0; i < nm; i++) {
        for (size_t k = 0; k < mods[i]->n; k++) {
            const schema_migration *g = &mods[i]->migrations[k];
            schema_entry *x = &e[n++];
            snprintf(x->id, sizeof x->id, "%s:%d", mods[i]->name, g->version);
            snprintf(x->module, sizeof x->module, "%s", mods[i]->name);
            snprintf(x->description, sizeof x->description, "%s", g->description ? g->description : "");
            x->version = g->version;
            x->data = g->run != NULL;
            x->todo = -1;
            stmts st;
            int rc = render(mods[i], g, &st, err);
            if (rc) {
                eg_free(e);
                return rc;
            }
            rc = checksum(&st, x->checksum, err);
            stmts_free(&st);
            if (rc) {
                eg_free(e);
                return rc;
            }
            x->state = SCHEMA_PENDING;
            for (size_t r = 0; r < recs->n; r++) {
                if (strcmp(recs->v[r].id, x->id) == 0) {
                    recs->v[r].matched = true;
                    x->applied_at = recs->v[r].applied_at;
                    if (strcmp(recs->v[r].checksum, x->checksum) == 0)
                        x->state = SCHEMA_APPLIED;
                    else
                        x->state = g->follows_config ? SCHEMA_PENDING : SCHEMA_CHANGED;
                }
            }
        }
    }
    for (size_t r = 0; r < recs->n; r++) {
        if (recs->v[r].matched)
            continue;
        schema_entry *x = &e[n++];
        snprintf(x->id, sizeof x->id, "%s", recs->v[r].id);
        snprintf(x->checksum, sizeof x->checksum, "%s", recs->v[r].checksum);
        x->applied_at = recs->v[r].applied_at;
        x->state = SCHEMA_UNKNOWN;
    }
    *out = e;
    *n_out = n;
    return 0;
}

/*
 * A recorded migration of a module this binary registers, at a version it
 * does not have: a newer engram upgraded the database.  This one still
 * starts (migrations are additive: new indexes, new properties), but data
 * written the newer way may not be understood here - say so once per start
 * rather than fail silently later.  Records of modules this process does not
 * register (e.g. the graph's, seen from a queue-only tool) are not news.
 */
static void warn_newer(const schema_module **mods, size_t nm, const schema_entry *e, size_t ne)
{
    for (size_t i = 0; i < ne; i++) {
        if (e[i].state != SCHEMA_UNKNOWN)
            continue;
        for (size_t m = 0; m < nm; m++) {
            size_t ln = strlen(mods[m]->name);
            if (strncmp(e[i].id, mods[m]->name, ln) == 0 && e[i].id[ln] == ':') {
                EG_WARN("schema",
                        "the database has migration %s, which this engram does not know: a newer engram "
                        "upgraded it; upgrade this one too (docs/operations.md, Upgrades)",
                        e[i].id);
                break;
            }
        }
    }
}

static int bootstrap(bolt_pool *p, eg_error *err)
{
    for (size_t i = 0; i < sizeof BOOTSTRAP / sizeof BOOTSTRAP[0]; i++) {
        int rc = run_schema_stmt(p, BOOTSTRAP[i], err);
        if (rc) {
            eg_error_prefix(err, "schema bootstrap");
            return rc;
        }
    }
    return 0;
}

static int await_indexes(bolt_pool *p, eg_error *err)
{
    return run_schema_stmt(p, "CALL db.awaitIndexes(300)", err);
}

int schema_apply(bolt_pool *p, schema_entry **entries_out, size_t *n_out, eg_error *err)
{
    if (entries_out)
        *entries_out = NULL;
    if (n_out)
        *n_out = 0;
    if (!p)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "schema_apply: NULL pool");
    int rc = bootstrap(p, err);
    if (rc)
        return rc;
    const schema_module *mods[SCHEMA_MAX_MODULES];
    size_t nm = reg_snapshot(mods);

    /* The lock: a transaction holding SchemaLock's write lock until commit. */
    bolt_conn *lk = NULL;
    if ((rc = bolt_pool_acquire(p, &lk, err)))
        return rc;
    rec_list recs = {0};
    schema_entry *e = NULL;
    size_t ne = 0;
    char holder[64];
    snprintf(holder, sizeof holder, "pid %ld", (long)getpid());
    bolt_params *bp = bolt_params_new();
    if (!bp) {
        rc = eg_error_oom(err);
        goto out;
    }
    bolt_params_str(bp, "holder", holder);
    if ((rc = bolt_conn_begin(lk, NULL, err)) ||
        (rc = run_discard(lk,
                          "MERGE (l:SchemaLock {id: 'engram'}) "
                          "SET l.holder = $holder, l.at = timestamp(), l.n = coalesce(l.n, 0) + 1",
                          bp, err)) ||
        (rc = read_recorded(lk, &recs, err)) ||
        (rc = build_entries(mods, nm, &recs, &e, &ne, err)))
        goto out;
    warn_newer(mods, nm, e, ne);

    /* Apply what is pending, in order, on other connections. */
    size_t idx = 0;
    bool any = false;
    for (size_t i = 0; i < nm && !rc; i++) {
        for (size_t k = 0; k < mods[i]->n && !rc; k++, idx++) {
            const schema_migration *g = &mods[i]->migrations[k];
            /* applied, but following configuration: run again (a no-op
             * unless the object was dropped), record nothing new */
            bool rerun = g->follows_config && e[idx].state == SCHEMA_APPLIED;
            if (e[idx].state != SCHEMA_PENDING && !rerun)
                continue;
            if (g->run) {
                /* It reads through the indexes earlier migrations made:
                 * wait until they are online. */
                if (any && (rc = await_indexes(p, err)))
                    break;
                EG_INFO("schema", "migration %s (%s): converting data", e[idx].id, e[idx].description);
                rc = g->run(p, mods[i]->ctx, err);
                if (rc)
                    eg_error_prefix(err, "migration %s", e[idx].id);
            } else {
                stmts st;
                if ((rc = render(mods[i], g, &st, err)))
                    break;
                for (size_t s = 0; s < st.n && !rc; s++) {
                    rc = run_schema_stmt(p, st.v[s], err);
                    if (rc)
                        eg_error_prefix(err, "migration %s statement %zu", e[idx].id, s + 1);
                }
                stmts_free(&st);
            }
            /* A re-run does not wait for indexes: mostly it created nothing,
             * and waiting would make every start wait for any index still
             * populating (the graph awaits its own after applying). */
            if (!rc && !rerun) {
                any = true;
                e[idx].applied_now = true;
                EG_INFO("schema", "applied migration %s (%s)", e[idx].id, e[idx].description);
            }
        }
    }
    if (!rc && any)
        rc = await_indexes(p, err);
    /* Record them under the lock, then commit (which releases it). */
    for (size_t i = 0; i < ne && !rc; i++) {
        if (!e[i].applied_now)
            continue;
        bolt_params_clear(bp);
        bolt_params_str(bp, "id", e[i].id);
        bolt_params_str(bp, "module", e[i].module);
        bolt_params_int(bp, "version", e[i].version);
        bolt_params_str(bp, "description", e[i].description);
        bolt_params_str(bp, "checksum", e[i].checksum);
        rc = run_discard(lk,
                         /* SET, not ON CREATE SET: a migration that follows
                          * configuration is recorded again with its new checksum */
                         "MERGE (m:SchemaMigration {id: $id}) "
                         "SET m.module = $module, m.version = $version, "
                         "  m.description = $description, m.checksum = $checksum, "
                         "  m.appliedAt = timestamp()",
                         bp, err);
        e[i].state = SCHEMA_APPLIED;
    }
    if (!rc)
        rc = bolt_conn_commit(lk, NULL, err);
    if (!rc && any) {
        /* applied_at from the database for what we just recorded */
        eg_free(recs.v);
        recs.v = NULL;
        recs.n = 0;
        if (!read_recorded(lk, &recs, NULL))
            for (size_t i = 0; i < ne; i++)
                for (size_t r = 0; r < recs.n; r++)
                    if (strcmp(recs.v[r].id, e[i].id) == 0)
                        e[i].applied_at = recs.v[r].applied_at;
    }
out:
    if (rc && lk && bolt_conn_in_tx(lk))
        bolt_conn_rollback(lk, NULL);
    bolt_pool_release(p, lk);
    bolt_params_free(bp);
    eg_free(recs.v);
    if (!rc && entries_out) {
        *entries_out = e;
        if (n_out)
            *n_out = ne;
    } else {
        eg_free(e);
    }
    return rc;
}

typedef struct status_ctx {
    rec_list recs;
} status_ctx;

static int status_work(bolt_conn *c, void *payload, eg_error *err)
{
    status_ctx *s = payload;
    eg_free(s->recs.v);
    s->recs.v = NULL;
    s->recs.n = 0;
    return read_recorded(c, &s->recs, err);
}

int schema_status(bolt_pool *p, schema_entry **entries_out, size_t *n_out, eg_error *err)
{
    if (!p || !entries_out || !n_out)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "schema_status: NULL argument");
    *entries_out = NULL;
    *n_out = 0;
    status_ctx s = {0};
    int rc = bolt_pool_execute_read(p, NULL, NULL, status_work, &s, err);
    const schema_module *mods[SCHEMA_MAX_MODULES];
    size_t nm = reg_snapshot(mods);
    if (!rc)
        rc = build_entries(mods, nm, &s.recs, entries_out, n_out, err);
    eg_free(s.recs.v);
    /* What each pending data migration has left (build_entries lists the
     * registered migrations first, in registry order). */
    size_t idx = 0;
    for (size_t i = 0; i < nm && !rc; i++) {
        for (size_t k = 0; k < mods[i]->n && !rc; k++, idx++) {
            const schema_migration *g = &mods[i]->migrations[k];
            if (g->count && (*entries_out)[idx].state == SCHEMA_PENDING)
                rc = g->count(p, mods[i]->ctx, &(*entries_out)[idx].todo, err);
        }
    }
    if (rc) {
        eg_free(*entries_out);
        *entries_out = NULL;
        *n_out = 0;
    }
    return rc;
}
