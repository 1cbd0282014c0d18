/*
 * bench_graph.h - what the graph benchmarks share: the Neo4j they run on
 * (BENCH_NEO4J_* from bench/run, else ENGRAM_TEST_NEO4J_*), a store with its
 * schema applied, latency sorting, and removal of a benchmark's namespace.
 * Header-only (each bench is one program).
 */
#ifndef ENGRAM_BENCH_GRAPH_H
#define ENGRAM_BENCH_GRAPH_H

#include "bolt/pool.h"
#include "graph/graph.h"
#include "queue/neo4j_store.h"
#include "schema/schema.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static inline int bench_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The connection settings; false when none is given (the bench skips). */
static inline bool bench_graph_config(bolt_config *cfg)
{
    bool bench_env = getenv("BENCH_NEO4J_URI") != NULL;
    cfg->uri = getenv(bench_env ? "BENCH_NEO4J_URI" : "ENGRAM_TEST_NEO4J_URI");
    cfg->user = getenv(bench_env ? "BENCH_NEO4J_USER" : "ENGRAM_TEST_NEO4J_USER");
    cfg->password = getenv(bench_env ? "BENCH_NEO4J_PASSWORD" : "ENGRAM_TEST_NEO4J_PASSWORD");
    return cfg->uri != NULL;
}

/* Pool, queue store and graph store (default options) with the schema applied. */
static inline int bench_graph_open(const bolt_config *cfg, bolt_pool **pool, queue_store **q, graph_store **g,
                                   eg_error *err)
{
    queue_opts qo = QUEUE_OPTS_INIT;
    graph_opts go = GRAPH_OPTS_INIT;
    if (bolt_pool_new(pool, cfg, NULL, err) || queue_neo4j_new(q, *pool, &qo, err) ||
        queue_schema_register(err) || graph_store_new(g, *pool, *q, &go, err) ||
        graph_schema_apply(*g, 120000, err)) {
        fprintf(stderr, "setup: %s\n", err->message);
        return -1;
    }
    return 0;
}

/* Delete a namespace's entities, history and jobs in small transactions
 * (bolt_pool_execute_write work function; payload: the namespace). */
static inline int bench_graph_cleanup_fn(bolt_conn *c, void *payload, eg_error *err)
{
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "ns", (const char *)payload);
    int rc = 0;
    static const char *const qs[] = {
        "MATCH (n:Entity {namespace: $ns}) WITH n LIMIT 5000 DETACH DELETE n RETURN count(*) AS n",
        "MATCH (n:EntityVersion {namespace: $ns}) WITH n LIMIT 5000 DELETE n RETURN count(*) AS n",
        "MATCH (n:ObservationRecord {namespace: $ns}) WITH n LIMIT 5000 DELETE n RETURN count(*) AS n",
        "MATCH (n:EmbedJob) WHERE n.namespace = $ns WITH n LIMIT 5000 DELETE n RETURN count(*) AS n",
    };
    for (size_t i = 0; i < sizeof qs / sizeof *qs && rc == 0; i++)
        for (;;) {
            json_t *rows = NULL;
            rc = bolt_conn_query_json(c, qs[i], p, NULL, &rows, err);
            int64_t n = json_integer_value(json_object_get(json_array_get(rows, 0), "n"));
            json_decref(rows);
            if (rc != 0 || n == 0)
                break;
        }
    bolt_params_free(p);
    return rc;
}

#endif
