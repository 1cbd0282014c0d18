/*
 * queue_neo4j_fixture.h - a pool on the test Neo4j with the queue schema
 * applied, unique queue names, and cleanup of what a test wrote.
 *
 * Thread-safety: qfx_open/qfx_close from the main thread only.
 */
#ifndef ENGRAM_TESTS_QUEUE_NEO4J_FIXTURE_H
#define ENGRAM_TESTS_QUEUE_NEO4J_FIXTURE_H

#include "bolt/pool.h"
#include "queue/job_store.h"

/*
 * Open a pool of max_size connections and apply the schema.  Returns 0, or
 * the exit status the test should end with (77 skip, 1 fail).
 */
int qfx_open(bolt_pool **out, size_t max_size);

/* A fresh queue name "t_<tag>_<random>" into out (QUEUE_NAME_MAX). */
void qfx_queue_name(char *out, const char *tag);

/* Delete every job of queue `name` and its mutex node (batched). */
int qfx_cleanup_queue(bolt_pool *p, const char *name);

/* Delete the graph nodes and jobs of every namespace starting with prefix
 * (what a graph test wrote). */
int qfx_cleanup_namespaces(bolt_pool *p, const char *prefix);

#endif
