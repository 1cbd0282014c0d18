/*
 * bench_graph_create.c - create_entities latency must not grow with the
 * size of the graph (memento loaded the whole graph on every write).
 *
 * Preloads one fresh namespace per size in `sizes` (batches of 500 entities
 * with two observations each: the bulk rate, entities/s with their records
 * and jobs), then times `samples` single-entity create_entities calls (each
 * with two observations: the entity, a history node, two observation
 * records and three embedding jobs) and as many add_observations calls (one
 * observation to a preloaded entity) per namespace, interleaved round-robin
 * so every size sees the same load on a shared machine, and prints p50/p95
 * per size and the ratio of the last create p50 to the first.
 * Exits 1 when that ratio exceeds `max_ratio` (default 2.0), so it can gate.
 *
 * Usage: bench_graph_create [samples=200] [sizes=1000,10000] [max_ratio=2.0]
 * Connection from BENCH_NEO4J_URI / _USER / _PASSWORD (bench/run graph-create)
 * or ENGRAM_TEST_NEO4J_*.  The namespaces are deleted at the end.  The last
 * stdout line is one JSON object.
 */
#include "bench_graph.h"
#include "bolt/pool.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "graph/graph.h"
#include "queue/neo4j_store.h"
#include "schema/schema.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int preload(graph_store *g, const graph_req *r, long from, long to)
{
    eg_error err;
    for (long i = from; i < to;) {
        json_t *batch = json_array();
        for (long j = 0; j < 500 && i < to; j++, i++) {
            char name[32];
            snprintf(name, sizeof name, "pre-%07ld", i);
            json_array_append_new(batch, json_pack("{sssss[ss]}", "name", name, "entityType",
                                                   "bench", "observations", "preloaded entity",
                                                   "with two observations"));
        }
        json_t *out = NULL;
        eg_error_clear(&err);
        int rc = graph_create_entities(g, r, batch, &out, &err);
        json_decref(batch);
        json_decref(out);
        if (rc != 0) {
            fprintf(stderr, "preload: %s\n", err.message);
            return -1;
        }
    }
    return 0;
}

typedef int (*graph_call_fn)(graph_store *g, const graph_req *r, const json_t *in, json_t **out, eg_error *err);

/* One call of fn on `in` (consumed), its time in *us; an error is printed. */
static int timed(graph_call_fn fn, graph_store *g, const graph_req *r, json_t *in, int64_t *us, const char *what,
                 eg_error *err)
{
    json_t *out = NULL;
    int64_t t0 = eg_mono_us();
    int rc = fn(g, r, in, &out, err);
    *us = eg_mono_us() - t0;
    json_decref(in);
    json_decref(out);
    if (rc != 0)
        fprintf(stderr, "%s: %s\n", what, err->message);
    return rc;
}

int main(int argc, char **argv)
{
    long samples = argc > 1 ? atol(argv[1]) : 200;
    const char *sizes_arg = argc > 2 ? argv[2] : "1000,10000";
    double max_ratio = argc > 3 ? atof(argv[3]) : 2.0;
    bolt_config cfg = BOLT_CONFIG_INIT;
    if (!bench_graph_config(&cfg) || samples <= 0) {
        fprintf(stderr, "set BENCH_NEO4J_URI/_USER/_PASSWORD or ENGRAM_TEST_NEO4J_*\n");
        return 77;
    }
    eg_error err;
    eg_error_clear(&err);
    bolt_pool *pool = NULL;
    queue_store *q = NULL;
    graph_store *g = NULL;
    if (bench_graph_open(&cfg, &pool, &q, &g, &err) != 0)
        return 1;
    char hex[9];
    eg_rand_hex(hex, 4);
    enum { MAXS = 8 };
    char ns[MAXS][64];
    long target[MAXS];
    size_t nsz = 0;
    char sizes[256];
    snprintf(sizes, sizeof sizes, "%s", sizes_arg);
    for (char *tok = strtok(sizes, ","); tok && nsz < MAXS; tok = strtok(NULL, ",")) {
        target[nsz] = atol(tok);
        snprintf(ns[nsz], sizeof ns[nsz], "bench-create-%s-%ld", hex, target[nsz]);
        nsz++;
    }
    int64_t *lat[MAXS] = {0}, *alat[MAXS] = {0};
    int status = 0;
    long loaded = 0;
    int64_t load_us = 0;
    /* One namespace per size, preloaded; then the samples are interleaved
     * round-robin across sizes so that every size sees the same machine load
     * (the box is shared): only the stored size differs between the series. */
    for (size_t k = 0; k < nsz && status == 0; k++) {
        graph_req r = GRAPH_REQ_INIT;
        r.ns = ns[k];
        lat[k] = eg_calloc((size_t)samples, sizeof *lat[k]);
        alat[k] = eg_calloc((size_t)samples, sizeof *alat[k]);
        int64_t t0 = eg_mono_us();
        if (preload(g, &r, 0, target[k]) != 0)
            status = 1;
        load_us += eg_mono_us() - t0;
        loaded += target[k];
    }
    bolt_conn *c = NULL;
    if (status == 0 && bolt_pool_acquire(pool, &c, &err) == 0) {
        /* Let the preload's background index work settle. */
        bolt_conn_exec(c, "CALL db.index.fulltext.awaitEventuallyConsistentIndexRefresh()", NULL,
                       NULL, NULL, &err);
        bolt_pool_release(pool, c);
        eg_sleep_ms(2000);
    }
    for (long i = 0; i < samples && status == 0; i++) {
        for (size_t kk = 0; kk < nsz && status == 0; kk++) {
            size_t k = (kk + (size_t)i) % nsz; /* rotate who goes first */
            graph_req r = GRAPH_REQ_INIT;
            r.ns = ns[k];
            char name[48];
            snprintf(name, sizeof name, "sample-%07ld", i);
            json_t *in = json_pack("[{sssss[ss]}]", "name", name, "entityType", "bench",
                                   "observations", "measured entity", "second observation");
            if (timed(graph_create_entities, g, &r, in, &lat[k][i], "create_entities", &err) != 0) {
                status = 1;
                break;
            }
            char pre[32], text[48];
            snprintf(pre, sizeof pre, "pre-%07ld", i % target[k]);
            snprintf(text, sizeof text, "added while measuring, call %ld", i);
            in = json_pack("[{sss[s]}]", "entityName", pre, "contents", text);
            if (timed(graph_add_observations, g, &r, in, &alat[k][i], "add_observations", &err) != 0)
                status = 1;
        }
    }
    double first_p50 = 0, last_p50 = 0;
    char json_sizes[512] = "";
    size_t jl = 0;
    for (size_t k = 0; k < nsz && status == 0; k++) {
        qsort(lat[k], (size_t)samples, sizeof *lat[k], bench_cmp_i64);
        qsort(alat[k], (size_t)samples, sizeof *alat[k], bench_cmp_i64);
        double p50 = lat[k][samples / 2] / 1000.0, p95 = lat[k][(samples * 95) / 100] / 1000.0;
        double a50 = alat[k][samples / 2] / 1000.0, a95 = alat[k][(samples * 95) / 100] / 1000.0;
        printf("stored=%-7ld samples=%ld create_entities p50=%.2f ms p95=%.2f ms, add_observations p50=%.2f ms "
               "p95=%.2f ms\n",
               target[k], samples, p50, p95, a50, a95);
        if (k == 0)
            first_p50 = p50;
        last_p50 = p50;
        int w = snprintf(json_sizes + jl, sizeof json_sizes - jl,
                         "\"p50_ms_%ld\":%.3f,\"p95_ms_%ld\":%.3f,\"add_p50_ms_%ld\":%.3f,\"add_p95_ms_%ld\":%.3f,",
                         target[k], p50, target[k], p95, target[k], a50, target[k], a95);
        if (w > 0 && (size_t)w < sizeof json_sizes - jl)
            jl += (size_t)w;
    }
    if (status == 0 && first_p50 > 0) {
        double ratio = last_p50 / first_p50;
        printf("p50 ratio last/first = %.2f (limit %.2f) %s\n", ratio, max_ratio,
               ratio <= max_ratio ? "OK" : "FAIL");
        if (ratio > max_ratio)
            status = 1;
        /* Last stdout line: one JSON object (bench/run convention). */
        double eps = load_us > 0 ? (double)loaded / ((double)load_us / 1e6) : 0;
        printf("bulk create (500 per call, two observations each): %.0f entities/s\n", eps);
        printf("{\"bench\":\"graph-create\",\"samples\":%ld,%s\"bulk_entities_s\":%.1f,\"p50_ratio\":%.3f,"
               "\"max_ratio\":%.3f,\"ok\":%s}\n",
               samples, json_sizes, eps, ratio, max_ratio, ratio <= max_ratio ? "true" : "false");
    }
    for (size_t k = 0; k < nsz; k++) {
        bolt_pool_execute_write(pool, NULL, NULL, bench_graph_cleanup_fn, ns[k], &err);
        eg_free(lat[k]);
        eg_free(alat[k]);
    }
    graph_store_free(g);
    queue_store_free(q);
    bolt_pool_free(pool);
    return status;
}
