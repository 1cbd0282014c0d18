/*
 * bench_server.h - which Neo4j a benchmark ran on, for its JSON line: the
 * figures differ between releases (the vector index's Lucene, the planner),
 * so a result without the server's version is not comparable.
 * Header-only (each bench is one program).
 */
#ifndef ENGRAM_BENCH_SERVER_H
#define ENGRAM_BENCH_SERVER_H

#include "bolt/conn.h"
#include "bolt/pool.h"

#include <stdio.h>

/* The server's agent string ("Neo4j/5.26.5") into out, or "unknown". */
static inline void bench_server_agent(bolt_pool *pool, char *out, size_t n)
{
    bolt_conn *c = NULL;
    eg_error err = {0};
    snprintf(out, n, "unknown");
    if (bolt_pool_acquire(pool, &c, &err) == 0) {
        const char *a = bolt_conn_server_agent(c);
        if (a)
            snprintf(out, n, "%s", a);
        bolt_pool_release(pool, c);
    }
}

#endif
