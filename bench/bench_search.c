/*
 * bench_search.c - search_nodes latency at a given graph size, against the
 * namespace scan the substring pass used to be, measured in the same run.
 *
 * Preloads one fresh namespace with `size` entities (batches of 500; 10 of
 * them mention "zanzibar"), then times, interleaved round-robin:
 *   present   search_nodes "zanzibar"     (full-text hits fill the page)
 *   absent    search_nodes "qqvxabsent"   (no hit: the substring pass runs)
 *   fragment  search_nodes "nzib"         (a word fragment: substring hits)
 *   scan      the old substring statement (a CONTAINS scan of the
 *             namespace) for the absent word: the anchor
 * and prints p50/p95 of each and the ratio scan p95 / absent p95.
 *
 * Usage: bench_search [samples=100] [size=100000]
 * Connection from BENCH_NEO4J_URI / _USER / _PASSWORD (bench/run search) or
 * ENGRAM_TEST_NEO4J_*.  The namespace is deleted at the end.  The last
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

/* The substring statement before the trigram index: a scan of the namespace. */
static const char Q_OLD_SCAN[] =
    "MATCH (e:Entity {namespace: $ns}) "
    "WHERE NOT e.name IN $seen AND (toLower(e.name) CONTAINS toLower($q) "
    "OR toLower(e.entityType) CONTAINS toLower($q) "
    "OR any(o IN e.observations WHERE toLower(o) CONTAINS toLower($q))) "
    "RETURN e {.name, .entityType, .observations} AS entity ORDER BY e.name LIMIT $lim";

static const char *const TOPICS[] = {"gardening", "chess openings", "sourdough", "rock climbing",
                                     "jazz piano", "tax returns", "the new office", "bird watching"};

static int preload(graph_store *g, const graph_req *r, long size)
{
    eg_error err;
    long every = size / 10 > 0 ? size / 10 : 1;
    for (long i = 0; i < size;) {
        json_t *batch = json_array();
        for (long j = 0; j < 500 && i < size; j++, i++) {
            char name[32], o1[96], o2[96];
            snprintf(name, sizeof name, "ent-%07ld", i);
            snprintf(o1, sizeof o1, "note %ld about %s", i, TOPICS[i % 8]);
            snprintf(o2, sizeof o2, "%s since %ld", i % every == 3 ? "went to zanzibar" : "has been busy",
                     1990 + i % 30);
            json_array_append_new(batch, json_pack("{sssss[ss]}", "name", name, "entityType", "person",
                                                   "observations", o1, o2));
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
        if (i % 20000 == 0)
            fprintf(stderr, "preloaded %ld/%ld\n", i, size);
    }
    return 0;
}

typedef struct scan_work {
    const char *ns, *q;
    size_t rows;
} scan_work;

static int scan_fn(bolt_conn *c, void *payload, eg_error *err)
{
    scan_work *w = payload;
    bolt_params *p = bolt_params_new();
    bolt_params_str(p, "ns", w->ns);
    bolt_params_str(p, "q", w->q);
    bolt_ps_writer *pw = bolt_params_add(p, "seen");
    bolt_ps_list_begin(pw, 0);
    bolt_params_int(p, "lim", 10);
    json_t *rows = NULL;
    int rc = bolt_conn_query_json(c, Q_OLD_SCAN, p, NULL, &rows, err);
    w->rows = json_array_size(rows);
    json_decref(rows);
    bolt_params_free(p);
    return rc;
}

enum { W_PRESENT, W_ABSENT, W_FRAGMENT, W_SCAN, NW };
static const char *const WNAME[NW] = {"present", "absent", "fragment", "scan"};
static const char *const WQUERY[NW] = {"zanzibar", "qqvxabsent", "nzib", "qqvxabsent"};

int main(int argc, char **argv)
{
    long samples = argc > 1 ? atol(argv[1]) : 100;
    long size = argc > 2 ? atol(argv[2]) : 100000;
    bolt_config cfg = BOLT_CONFIG_INIT;
    if (!bench_graph_config(&cfg) || samples <= 0 || size < 10) {
        fprintf(stderr, "set BENCH_NEO4J_URI/_USER/_PASSWORD or ENGRAM_TEST_NEO4J_*; size >= 10\n");
        return 77;
    }
    eg_error err;
    eg_error_clear(&err);
    bolt_pool *pool = NULL;
    queue_store *q = NULL;
    graph_store *g = NULL;
    if (bench_graph_open(&cfg, &pool, &q, &g, &err) != 0)
        return 1;
    char hex[9], ns[64];
    eg_rand_hex(hex, 4);
    snprintf(ns, sizeof ns, "bench-search-%s", hex);
    graph_req r = GRAPH_REQ_INIT;
    r.ns = ns;
    int status = preload(g, &r, size) == 0 ? 0 : 1;
    bolt_conn *c = NULL;
    if (status == 0 && bolt_pool_acquire(pool, &c, &err) == 0) {
        bolt_conn_exec(c, "CALL db.index.fulltext.awaitEventuallyConsistentIndexRefresh()", NULL, NULL, NULL,
                       &err);
        bolt_pool_release(pool, c);
        eg_sleep_ms(2000);
    }
    int64_t *lat[NW];
    size_t hits[NW] = {0};
    for (int k = 0; k < NW; k++)
        lat[k] = eg_calloc((size_t)samples, sizeof *lat[k]);
    for (long i = 0; i < samples && status == 0; i++) {
        for (int kk = 0; kk < NW && status == 0; kk++) {
            int k = (kk + (int)i) % NW; /* rotate who goes first */
            int64_t t0 = eg_mono_us();
            int rc;
            if (k == W_SCAN) {
                scan_work w = {ns, WQUERY[k], 0};
                rc = bolt_pool_execute_read(pool, NULL, NULL, scan_fn, &w, &err);
                hits[k] = w.rows;
            } else {
                json_t *out = NULL;
                rc = graph_search_nodes(g, &r, WQUERY[k], NULL, &out, &err);
                hits[k] = json_array_size(json_object_get(out, "entities"));
                json_decref(out);
            }
            lat[k][i] = eg_mono_us() - t0;
            if (rc != 0) {
                fprintf(stderr, "%s: %s\n", WNAME[k], err.message);
                status = 1;
            }
        }
    }
    double p50[NW] = {0}, p95[NW] = {0};
    for (int k = 0; k < NW && status == 0; k++) {
        qsort(lat[k], (size_t)samples, sizeof *lat[k], bench_cmp_i64);
        p50[k] = (double)lat[k][samples / 2] / 1000.0;
        p95[k] = (double)lat[k][(samples * 95) / 100] / 1000.0;
        printf("stored=%ld %-8s '%s' hits=%zu p50=%.2f ms p95=%.2f ms\n", size, WNAME[k], WQUERY[k], hits[k],
               p50[k], p95[k]);
    }
    if (status == 0) {
        if (hits[W_PRESENT] != 10 || hits[W_FRAGMENT] != 10 || hits[W_ABSENT] != 0) {
            fprintf(stderr, "wrong hits: present %zu fragment %zu absent %zu\n", hits[W_PRESENT],
                    hits[W_FRAGMENT], hits[W_ABSENT]);
            status = 1;
        }
        printf("{\"bench\":\"search\",\"stored\":%ld,\"samples\":%ld,"
               "\"present_p50_ms\":%.3f,\"present_p95_ms\":%.3f,\"absent_p50_ms\":%.3f,\"absent_p95_ms\":%.3f,"
               "\"fragment_p50_ms\":%.3f,\"fragment_p95_ms\":%.3f,\"old_scan_p50_ms\":%.3f,\"old_scan_p95_ms\":%.3f,"
               "\"scan_over_absent_p95\":%.2f,\"ok\":%s}\n",
               size, samples, p50[W_PRESENT], p95[W_PRESENT], p50[W_ABSENT], p95[W_ABSENT], p50[W_FRAGMENT],
               p95[W_FRAGMENT], p50[W_SCAN], p95[W_SCAN], p95[W_ABSENT] > 0 ? p95[W_SCAN] / p95[W_ABSENT] : 0.0,
               status == 0 ? "true" : "false");
    }
    bolt_pool_execute_write(pool, NULL, NULL, bench_graph_cleanup_fn, ns, &err);
    for (int k = 0; k < NW; k++)
        eg_free(lat[k]);
    graph_store_free(g);
    queue_store_free(q);
    bolt_pool_free(pool);
    return status;
}
