/*
 * schema.h - versioned, idempotent schema migrations recorded in Neo4j.
 *
 * Each module (queue, graph, ...) owns a list of migrations with increasing
 * versions and registers it once with schema_register() (queue:
 * queue_schema_register() in queue/neo4j_store.h).  schema_apply() applies
 * every registered migration that the database has not recorded yet, in
 * registration order, then versions ascending, and records each as
 *
 *   (:SchemaMigration {id: "<module>:<version>", module, version,
 *                      description, checksum, appliedAt})
 *
 * Statements must be idempotent by themselves (CREATE ... IF NOT EXISTS),
 * because Neo4j runs schema commands in their own transactions and a crash
 * can happen between a statement and its record: re-running is then safe.
 *
 * Concurrent starts: an applier first makes sure the bootstrap constraints
 * exist (SchemaMigration.id and SchemaLock.id unique, IF NOT EXISTS, retried
 * on the race where two processes create the same constraint), then opens a
 * transaction on one connection that takes the write lock of
 * (:SchemaLock {id:'engram'}) and keeps it open while it runs the schema
 * commands on a second connection and records them on the first.  A second
 * applier blocks on that lock, then sees the records and has nothing to do.
 *
 * Checksum: SHA-256 of the statements.  A recorded migration whose checksum
 * differs from the code's is reported by status as "changed" and is not
 * re-applied (write a new version instead).
 *
 * Migrations that follow configuration (follows_config, e.g. the vector
 * index, whose statement names the configured size): their statements are
 * run again at every apply - they must be IF NOT EXISTS, so that costs
 * nothing while the object exists - which recreates the object after an
 * operator dropped it to change its configuration, and a checksum that
 * differs means "the configuration changed": the migration is pending, not
 * changed, and is recorded again with the new checksum.  Whether the
 * existing object matches the configuration is for the module to check.
 *
 * Data migrations (run set): a C function that converts data rather than
 * creating schema, for work no single statement can do in bounded
 * transactions (e.g. rewriting every entity's history).  schema_apply runs
 * it in registration order like any other migration, while it holds the
 * lock - so a second applier (another engram starting) waits until the data
 * is converted, and nothing serves writes on half-converted data - after
 * waiting for the indexes the earlier migrations created (the function
 * needs them).  The function commits in batches of its own on connections
 * of the pool and must be idempotent and resumable: a crash leaves the
 * migration unrecorded, and the next apply runs it again over what is
 * left.  It shows progress in log lines (stderr).  Its checksum is that of
 * "run:<module>:<version>" (its code is not text to hash): a data
 * migration is never "changed"; a new conversion is a new version.
 * count (optional) says how much is left to convert: schema_status reports
 * it for a pending data migration (schema_entry.todo).
 *
 * Thread-safety: schema_register is thread-safe; apply/status may run from
 * several threads or processes at once (that is the point).
 */
#ifndef ENGRAM_SCHEMA_SCHEMA_H
#define ENGRAM_SCHEMA_SCHEMA_H

#include "bolt/pool.h"
#include "core/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Build the statements of a migration at apply time (for statements that
 * depend on configuration, e.g. vector index name and dimensions; validate
 * identifiers against ^[A-Za-z_][A-Za-z0-9_]*$ before splicing them).
 * *stmts_out is a *new* array of *new* strings (eg_free each, then the array).
 */
typedef int (*schema_build_fn)(const void *ctx, char ***stmts_out, size_t *n_out, eg_error *err);
/* A data migration (see above): ctx is the module's; 0 or an error code (err filled). */
typedef int (*schema_run_fn)(bolt_pool *p, void *ctx, eg_error *err);
/* What a data migration has left to do (*todo_out, e.g. entities), read-only. */
typedef int (*schema_count_fn)(bolt_pool *p, void *ctx, int64_t *todo_out, eg_error *err);

typedef struct schema_migration {
    int version;                    /* > 0, strictly increasing within a module */
    const char *description;
    const char *const *statements;  /* NULL-terminated static list, or NULL when build or run is set */
    schema_build_fn build;          /* used when statements is NULL */
    bool follows_config;            /* run again at every apply (see above) */
    schema_run_fn run;              /* a data migration: statements and build NULL */
    schema_count_fn count;          /* optional, with run */
} schema_migration;

typedef struct schema_module {
    const char *name;               /* [a-z][a-z0-9_]*, unique: "queue", "graph" */
    const schema_migration *migrations;
    size_t n;
    void *ctx;                      /* passed to build, run and count (borrowed; must outlive the registry) */
} schema_module;

/*
 * Register a module (borrowed: the struct and its tables must stay valid,
 * e.g. static).  Registering the same name again replaces the entry (so a
 * module may re-register with new config); EG_EINVAL on bad versions/names.
 */
int schema_register(const schema_module *m, eg_error *err);
/* Forget all registrations (tests). */
void schema_registry_reset(void);

typedef enum schema_mstate {
    SCHEMA_PENDING = 0,   /* registered, not recorded in the database */
    SCHEMA_APPLIED,       /* recorded with the same checksum */
    SCHEMA_CHANGED,       /* recorded with a different checksum */
    SCHEMA_UNKNOWN        /* recorded, but no registered module has it */
} schema_mstate;

const char *schema_mstate_name(schema_mstate s);

typedef struct schema_entry {
    char id[96];          /* module:version */
    char module[48];
    int version;
    char description[160];
    char checksum[65];
    int64_t applied_at;   /* epoch ms (DB clock); 0 when pending */
    schema_mstate state;
    bool applied_now;     /* apply: applied by this call */
    bool data;            /* a data migration (run) */
    int64_t todo;         /* status: what a pending data migration has left (count); -1 unknown */
} schema_entry;

/*
 * Apply pending migrations (see above).  *entries_out (may be NULL) is a
 * *new* array (eg_free) describing every migration afterwards.
 */
int schema_apply(bolt_pool *p, schema_entry **entries_out, size_t *n_out, eg_error *err);

/* Compare registry and database without changing anything. */
int schema_status(bolt_pool *p, schema_entry **entries_out, size_t *n_out, eg_error *err);

#endif
