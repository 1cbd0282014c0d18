/*
 * bench_bolt.c - our side of `bench/run bolt`: engram's Bolt client doing the
 * same three workloads as bench/js/bolt.js (the official JavaScript driver).
 *
 *   roundtrip : N sequential auto-commit `RETURN $x` (bolt_conn_run: RUN+PULL
 *               in one write, wait for the record and the summary)
 *   pipelined : N `RETURN $x` in one explicit transaction, queued with
 *               bolt_conn_run_lazy in windows of DEPTH, flushed once per
 *               window, then read in order.  Windows keep both socket buffers
 *               from filling up while neither side reads.
 *   stream    : one `UNWIND range(1, $n) AS i RETURN i, toString(i) AS s`,
 *               every record decoded and touched (PULL batches of 1000, the
 *               JavaScript driver's default fetch size)
 *
 * One measured run per invocation (bench/bolt.sh alternates both sides and
 * takes medians).  Connection: BENCH_NEO4J_URI, BENCH_NEO4J_USER,
 * BENCH_NEO4J_PASSWORD.  Options: --roundtrips N --pipelined N --depth D
 * --rows N --warmup 0|1.  Prints one JSON line on stdout; errors on stderr,
 * exit 1.  Every returned value is checked, so a broken client cannot post a
 * good number.
 *
 * Thread-safety: single-threaded program.
 */
#include "bolt/conn.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bench_opts {
    long roundtrips;
    long pipelined;
    long depth;
    long rows;
    long warmup;
} bench_opts;

static int fail(const char *what, const eg_error *err)
{
    fprintf(stderr, "bench_bolt: %s: %s%s%s\n", what, err && err->message[0] ? err->message : "failed",
            err && err->neo4j_code[0] ? " " : "", err ? err->neo4j_code : "");
    return -1;
}

static int check_int_record(bolt_result *res, long want, eg_error *err)
{
    const bolt_value *rec = NULL;
    int rc = bolt_result_next(res, &rec, err);
    if (rc != 1)
        return rc < 0 ? rc : eg_error_set(err, EG_EPROTO, EG_CLASS_CLIENT, "no record for %ld", want);
    if (bolt_value_len(rec) != 1 || bolt_value_int(bolt_value_at(rec, 0), -1) != want)
        return eg_error_set(err, EG_EPROTO, EG_CLASS_CLIENT, "wrong value for %ld", want);
    rc = bolt_result_next(res, &rec, err);
    if (rc != 0)
        return rc < 0 ? rc : eg_error_set(err, EG_EPROTO, EG_CLASS_CLIENT, "extra record for %ld", want);
    return 0;
}

/* (a) sequential auto-commit round trips; *qps_out = queries per second. */
static int bench_roundtrip(bolt_conn *c, long n, double *qps_out, eg_error *err)
{
    bolt_params *p = bolt_params_new();
    if (!p)
        return eg_error_set(err, EG_ENOMEM, EG_CLASS_CLIENT, "params");
    int rc = 0;
    int64_t t0 = eg_mono_us();
    for (long x = 0; x < n && rc == 0; x++) {
        bolt_result *res = NULL;
        bolt_params_clear(p);
        bolt_params_int(p, "x", x);
        rc = bolt_conn_run(c, "RETURN $x AS x", p, NULL, &res, err);
        if (rc == 0)
            rc = check_int_record(res, x, err);
        bolt_result_free(res);
    }
    int64_t us = eg_mono_us() - t0;
    bolt_params_free(p);
    if (rc == 0)
        *qps_out = (double)n * 1e6 / (double)(us > 0 ? us : 1);
    return rc;
}

/* (b) pipelined in one transaction, windows of `depth`. */
static int bench_pipelined(bolt_conn *c, long n, long depth, double *qps_out, eg_error *err)
{
    bolt_result **win = eg_calloc((size_t)depth, sizeof *win);
    bolt_params *p = bolt_params_new();
    if (!win || !p) {
        eg_free(win);
        bolt_params_free(p);
        return eg_error_set(err, EG_ENOMEM, EG_CLASS_CLIENT, "pipeline window");
    }
    int64_t t0 = eg_mono_us();
    int rc = bolt_conn_begin(c, NULL, err);
    for (long base = 0; base < n && rc == 0; base += depth) {
        long m = n - base < depth ? n - base : depth;
        long queued = 0;
        for (long i = 0; i < m && rc == 0; i++) {
            bolt_params_clear(p);
            bolt_params_int(p, "x", base + i);
            rc = bolt_conn_run_lazy(c, "RETURN $x AS x", p, NULL, &win[i], err);
            if (rc == 0)
                queued++;
        }
        if (rc == 0)
            rc = bolt_conn_flush(c, err);
        for (long i = 0; i < queued; i++) {
            if (rc == 0)
                rc = check_int_record(win[i], base + i, err);
            bolt_result_free(win[i]);
            win[i] = NULL;
        }
    }
    if (rc == 0)
        rc = bolt_conn_commit(c, NULL, err);
    else if (bolt_conn_in_tx(c))
        (void)bolt_conn_rollback(c, NULL);
    int64_t us = eg_mono_us() - t0;
    bolt_params_free(p);
    eg_free(win);
    if (rc == 0)
        *qps_out = (double)n * 1e6 / (double)(us > 0 ? us : 1);
    return rc;
}

/* (c) stream `rows` rows, decode and touch every value. */
static int bench_stream(bolt_conn *c, long rows, double *rows_s_out, eg_error *err)
{
    bolt_params *p = bolt_params_new();
    if (!p)
        return eg_error_set(err, EG_ENOMEM, EG_CLASS_CLIENT, "params");
    bolt_params_int(p, "n", rows);
    bolt_result *res = NULL;
    long count = 0;
    int64_t last = 0;
    size_t sum_len = 0;
    int64_t t0 = eg_mono_us();
    int rc = bolt_conn_run(c, "UNWIND range(1, $n) AS i RETURN i, toString(i) AS s", p, NULL, &res, err);
    while (rc == 0) {
        const bolt_value *rec = NULL;
        int r = bolt_result_next(res, &rec, err);
        if (r < 0)
            rc = r;
        if (r <= 0)
            break;
        last = bolt_value_int(bolt_value_at(rec, 0), -1);
        sum_len += bolt_value_str(bolt_value_at(rec, 1)).len;
        count++;
    }
    int64_t us = eg_mono_us() - t0;
    bolt_result_free(res);
    bolt_params_free(p);
    if (rc == 0 && (count != rows || (rows > 0 && (last != rows || sum_len == 0))))
        rc = eg_error_set(err, EG_EPROTO, EG_CLASS_CLIENT, "stream: %ld of %ld rows, last %lld", count, rows,
                          (long long)last);
    if (rc == 0)
        *rows_s_out = (double)rows * 1e6 / (double)(us > 0 ? us : 1);
    return rc;
}

static int parse_opts(bench_opts *o, int argc, char **argv)
{
    *o = (bench_opts){ .roundtrips = 20000, .pipelined = 20000, .depth = 100, .rows = 1000000, .warmup = 1 };
    for (int i = 1; i < argc; i += 2) {
        long *dst = NULL;
        if (!strcmp(argv[i], "--roundtrips"))
            dst = &o->roundtrips;
        else if (!strcmp(argv[i], "--pipelined"))
            dst = &o->pipelined;
        else if (!strcmp(argv[i], "--depth"))
            dst = &o->depth;
        else if (!strcmp(argv[i], "--rows"))
            dst = &o->rows;
        else if (!strcmp(argv[i], "--warmup"))
            dst = &o->warmup;
        char *end = NULL;
        if (!dst || i + 1 >= argc) {
            fprintf(stderr, "bench_bolt: bad option %s\n", argv[i]);
            return -1;
        }
        *dst = strtol(argv[i + 1], &end, 10);
        if (!*argv[i + 1] || *end || *dst < 0) {
            fprintf(stderr, "bench_bolt: bad value for %s: %s\n", argv[i], argv[i + 1]);
            return -1;
        }
    }
    if (o->depth < 1 || o->depth > 100000) {
        fprintf(stderr, "bench_bolt: --depth must be in 1..100000\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    bench_opts o;
    if (parse_opts(&o, argc, argv) != 0)
        return 2;
    const char *uri = getenv("BENCH_NEO4J_URI");
    if (!uri || !*uri) {
        fprintf(stderr, "bench_bolt: BENCH_NEO4J_URI is not set\n");
        return 2;
    }
    const char *user = getenv("BENCH_NEO4J_USER");
    const char *pw = getenv("BENCH_NEO4J_PASSWORD");
    bolt_config cfg = BOLT_CONFIG_INIT;
    cfg.uri = uri;
    cfg.auth = BOLT_AUTH_BASIC;
    cfg.user = user && *user ? user : "neo4j";
    cfg.password = pw ? pw : "";

    eg_error err;
    eg_error_clear(&err);
    bolt_conn *c = NULL;
    if (bolt_conn_open(&c, &cfg, &err) != 0) {
        fail("connect", &err);
        return 1;
    }

    double rt = 0, pl = 0, st = 0, dummy = 0;
    int rc = 0;
    if (o.warmup) {
        /* Same warm-up as the driver side: JIT on both ends, caches, plans. */
        rc = bench_roundtrip(c, 2000, &dummy, &err);
        if (rc == 0)
            rc = bench_pipelined(c, 2000, o.depth, &dummy, &err);
        if (rc == 0)
            rc = bench_stream(c, 100000, &dummy, &err);
        if (rc != 0)
            fail("warm-up", &err);
    }
    if (rc == 0 && o.roundtrips > 0 && (rc = bench_roundtrip(c, o.roundtrips, &rt, &err)) != 0)
        fail("roundtrip", &err);
    if (rc == 0 && o.pipelined > 0 && (rc = bench_pipelined(c, o.pipelined, o.depth, &pl, &err)) != 0)
        fail("pipelined", &err);
    if (rc == 0 && o.rows > 0 && (rc = bench_stream(c, o.rows, &st, &err)) != 0)
        fail("stream", &err);

    int major = 0, minor = 0;
    bolt_conn_version(c, &major, &minor);
    const char *agent = bolt_conn_server_agent(c);
    if (rc == 0) {
        printf("{\"side\":\"ours\",\"client\":\"engram/%s\",\"server\":\"%s\",\"protocol\":\"%d.%d\"", ENGRAM_VERSION,
               agent ? agent : "", major, minor);
        if (o.roundtrips > 0)
            printf(",\"roundtrip_qps\":%.1f", rt);
        if (o.pipelined > 0)
            printf(",\"pipelined_qps\":%.1f", pl);
        if (o.rows > 0)
            printf(",\"stream_rows_s\":%.1f", st);
        printf("}\n");
        fflush(stdout);
    }
    bolt_conn_free(c);
    return rc == 0 ? 0 : 1;
}
