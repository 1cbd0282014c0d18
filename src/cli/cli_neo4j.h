/*
 * cli_neo4j.h - what every database-touching subcommand shares: the
 * connection settings from the environment and the schema registry.
 *
 * Environment (memento-mcp compatible names):
 *   NEO4J_URI       default bolt://127.0.0.1:7687
 *   NEO4J_USERNAME  default neo4j
 *   NEO4J_PASSWORD  (never printed)
 *   NEO4J_PASSWORD_FILE  a file whose first line is the password (wins over
 *                   NEO4J_PASSWORD): keeps it out of the environment of
 *                   every process and out of command lines
 *   NEO4J_DATABASE  default: the user's home database
 *   NEO4J_TRUSTED_CERTIFICATES  a PEM file of CA certificates trusted for
 *                   bolt+s:// and neo4j+s:// besides the system's
 *
 * Thread-safety: call from the main thread before starting workers.
 */
#ifndef ENGRAM_CLI_NEO4J_H
#define ENGRAM_CLI_NEO4J_H

#include "bolt/pool.h"
#include "core/err.h"
#include "embed/provider.h"
#include "graph/graph.h"
#include "queue/job_store.h"

/* Fill cfg from the environment; strings are borrowed from getenv (the
 * password from a process-lifetime buffer when read from a file).  EG_EINVAL
 * or EG_EIO when NEO4J_PASSWORD_FILE is set but unreadable or empty. */
int cli_neo4j_config(bolt_config *cfg, eg_error *err);

/* The Neo4j password: NEO4J_PASSWORD_FILE's first line, else NEO4J_PASSWORD,
 * else "" (borrowed).  NULL with err set when the file cannot be read. */
const char *cli_neo4j_password(eg_error *err);

/*
 * Open a pool (max_size connections; 0: default) and verify it connects.
 * *out is *new* (bolt_pool_free).
 */
int cli_open_pool(bolt_pool **out, size_t max_size, eg_error *err);

/* Register the schema migrations that need no settings (queue, ...). */
int cli_schema_register_all(eg_error *err);

/*
 * Register the graph's migrations too: they depend on its settings (vector
 * index name, dimensions, similarity: graph_opts_from_env) and its data
 * migration queues embedding jobs.  pool is borrowed by the graph and queue
 * stores the registry keeps for the process lifetime (the data migration
 * itself runs on the pool schema_apply is given).
 */
int cli_schema_register_graph(bolt_pool *pool, eg_error *err);

/*
 * At startup of anything that uses the database (worker, server): register
 * every module's migrations and apply what is pending (idempotent; safe
 * when several processes start at once).
 */
int cli_schema_startup(bolt_pool *pool, eg_error *err);

/*
 * The graph's settings as they follow from the embedding provider's: the
 * vector index takes the local encoders' fixed dimension (384) unless
 * NEO4J_VECTOR_DIMENSIONS is set, the offline provider
 * takes the index's, and the graph records jobs for the provider's model
 * (so what is queued is what the workers embed).  ec_out (may be NULL)
 * receives the provider's configuration.  Strings point into the
 * environment / static storage.
 */
int cli_graph_opts_from_env(graph_opts *go, embed_config *ec_out, eg_error *err);

/*
 * The provider, graph and queue settings from the environment, made
 * consistent as cli_graph_opts_from_env does; warns (stderr log) when the
 * n-gram provider stands in for the local encoder.
 */
int cli_load_settings(embed_config *ec, graph_opts *go, queue_opts *qo, eg_error *err);

/*
 * The vector index's model against the configured one
 * (graph_vector_model_check through a short-lived graph store): 0, or
 * EG_ECONFLICT with a message that says what to run.
 */
int cli_vector_model_check(bolt_pool *pool, const graph_opts *go, eg_error *err);

/* Format a database timestamp (ms since the epoch, UTC) for tables; 0 is "-". */
void cli_fmt_time(int64_t ms, char *buf, size_t n);

/* Print "engram <cmd>: <message>" for err on stderr; returns 1. */
int cli_fail(const char *cmd, const eg_error *err);

/* A non-negative decimal integer option value: 0 and *out set, or -1 (NULL,
 * not a number, trailing characters, out of range, negative). */
int cli_parse_long(const char *s, long long *out);

#endif
