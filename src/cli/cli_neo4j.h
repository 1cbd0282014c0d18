/*
 * cli_neo4j.h - what every database-touching subcommand shares: the
 * connection settings from the environment and the schema registry.
 *
 * Environment (memento-mcp compatible names):
 *   NEO4J_URI       default bolt://127.0.0.1:7687
 *   NEO4J_USERNAME  default neo4j
 *   NEO4J_PASSWORD  (never printed)
 *   NEO4J_DATABASE  default: the user's home database
 *
 * Thread-safety: call from the main thread before starting workers.
 */
#ifndef ENGRAM_CLI_NEO4J_H
#define ENGRAM_CLI_NEO4J_H

#include "bolt/pool.h"
#include "core/err.h"

/* Fill cfg from the environment; strings are borrowed from getenv. */
void cli_neo4j_config(bolt_config *cfg);

/*
 * Open a pool (max_size connections; 0: default) and verify it connects.
 * *out is *new* (bolt_pool_free).
 */
int cli_open_pool(bolt_pool **out, size_t max_size, eg_error *err);

/* Register every module's schema migrations (queue, graph, ...). */
int cli_schema_register_all(eg_error *err);

/* Print "engram <cmd>: <message>" for err on stderr; returns 1. */
int cli_fail(const char *cmd, const eg_error *err);

#endif
