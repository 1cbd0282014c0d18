/*
 * bench_routed_tx.c - what routing costs a managed transaction: the same
 * managed read (`RETURN $x`) and write (MERGE one node) transactions through
 * a bolt:// pool and a neo4j:// pool to the same single Neo4j, alternating
 * rounds so that drift hits both alike.  Prints one JSON line:
 *   {"tx": N, "direct_read_ms", "routed_read_ms", "direct_write_ms",
 *    "routed_write_ms", "routed_read_overhead", "routed_write_overhead"}
 * (overhead = routed time / direct time - 1).
 *
 * Usage: bench_routed_tx [transactions per round] [rounds]
 * Connection from ENGRAM_TEST_NEO4J_URI (a bolt:// URI) / _USER / _PASSWORD.
 */
#include "bolt/pool.h"
#include "core/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_fn(bolt_conn *c, void *payload, eg_error *err)
{
    bolt_params *p = bolt_params_new();
    bolt_params_int(p, "x", *(long *)payload);
    int rc = bolt_conn_exec(c, "RETURN $x AS x", p, NULL, NULL, err);
    bolt_params_free(p);
    return rc;
}

static int write_fn(bolt_conn *c, void *payload, eg_error *err)
{
    bolt_params *p = bolt_params_new();
    bolt_params_int(p, "x", *(long *)payload % 100);
    int rc = bolt_conn_exec(c, "MERGE (n:BenchRoutedTx {k: $x}) SET n.v = coalesce(n.v, 0) + 1", p, NULL, NULL,
                            err);
    bolt_params_free(p);
    return rc;
}

/* n transactions; returns elapsed ms or -1. */
static int64_t run(bolt_pool *p, bool write, long n)
{
    int64_t t0 = eg_mono_ms();
    for (long i = 0; i < n; i++) {
        eg_error err;
        int rc = write ? bolt_pool_execute_write(p, NULL, NULL, write_fn, &i, &err)
                       : bolt_pool_execute_read(p, NULL, NULL, read_fn, &i, &err);
        if (rc != 0) {
            fprintf(stderr, "transaction failed: %s %s\n", err.neo4j_code, err.message);
            return -1;
        }
    }
    return eg_mono_ms() - t0;
}

/* Mean µs of one acquire + release over n cycles (no query). */
static double acquire_us(bolt_pool *p, long n)
{
    int64_t t0 = eg_mono_us();
    for (long i = 0; i < n; i++) {
        bolt_conn *c;
        eg_error err;
        if (bolt_pool_acquire(p, &c, &err) != 0)
            return -1;
        bolt_pool_release(p, c);
    }
    return (double)(eg_mono_us() - t0) / (double)n;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000;
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    const char *uri = getenv("ENGRAM_TEST_NEO4J_URI");
    if (!uri || strncmp(uri, "bolt://", 7) != 0) {
        fprintf(stderr, "set ENGRAM_TEST_NEO4J_URI (bolt://...) /_USER/_PASSWORD\n");
        return 77;
    }
    char routed[512];
    snprintf(routed, sizeof routed, "neo4j://%s", uri + 7);
    bolt_config cfg = BOLT_CONFIG_INIT;
    cfg.user = getenv("ENGRAM_TEST_NEO4J_USER");
    cfg.password = getenv("ENGRAM_TEST_NEO4J_PASSWORD");
    bolt_pool *pd, *pr;
    eg_error err;
    cfg.uri = uri;
    if (bolt_pool_new(&pd, &cfg, NULL, &err) != 0)
        return 1;
    cfg.uri = routed;
    if (bolt_pool_new(&pr, &cfg, NULL, &err) != 0)
        return 1;
    /* warm both (connections, routing table, query plans) */
    if (run(pd, false, 200) < 0 || run(pr, false, 200) < 0 || run(pd, true, 200) < 0 || run(pr, true, 200) < 0)
        return 1;
    int64_t dr = 0, rr = 0, dw = 0, rw = 0;
    for (int r = 0; r < rounds; r++) {
        int64_t a = run(pd, false, n), b = run(pr, false, n), c = run(pd, true, n), d = run(pr, true, n);
        if (a < 0 || b < 0 || c < 0 || d < 0)
            return 1;
        dr += a;
        rr += b;
        dw += c;
        rw += d;
    }
    double da = 0, ra = 0;
    for (int r = 0; r < rounds; r++) {
        da += acquire_us(pd, 20000);
        ra += acquire_us(pr, 20000);
    }
    bolt_conn *c;
    if (bolt_pool_acquire(pd, &c, &err) == 0) {
        bolt_conn_exec(c, "MATCH (n:BenchRoutedTx) DELETE n", NULL, NULL, NULL, &err);
        bolt_pool_release(pd, c);
    }
    printf("{\"tx\": %ld, \"rounds\": %d, \"direct_read_ms\": %lld, \"routed_read_ms\": %lld, "
           "\"direct_write_ms\": %lld, \"routed_write_ms\": %lld, \"routed_read_overhead\": %.4f, "
           "\"routed_write_overhead\": %.4f, \"direct_acquire_us\": %.3f, \"routed_acquire_us\": %.3f}\n",
           n, rounds, (long long)dr, (long long)rr, (long long)dw, (long long)rw,
           dr ? (double)rr / (double)dr - 1.0 : 0.0, dw ? (double)rw / (double)dw - 1.0 : 0.0, da / rounds,
           ra / rounds);
    bolt_pool_free(pd);
    bolt_pool_free(pr);
    return 0;
}
