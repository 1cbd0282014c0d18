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
 * With --routed 1, round trips and the stream again through two pools of one
 * connection each (as the driver side's maxConnectionPoolSize 1): a bolt://
 * pool ("direct") and a neo4j:// pool to the same server ("routed"; Community
 * answers ROUTE with itself).  Every query borrows a connection and gives it
 * back, as the driver's session.run does.  Round trips alternate blocks of
 * ROUTED_BLOCK queries between the two pools (flipping which goes first), so
 * drift on a shared machine hits both alike; routed_overhead is routed time ÷
 * direct time − 1 over those blocks.  The stream likewise: streams of
 * ROUTED_STREAM_BLOCK rows alternating until each side has read --rows,
 * `--order` (the run number) choosing which starts.  With BENCH_NEO4J_PID
 * (set by bench/run) the same comparison in CPU time, this process's plus
 * the server's (routed_cpu_overhead, routed_stream_cpu_overhead): on a busy
 * shared machine wall time swings by tens of percent between blocks, CPU
 * time much less.
 *
 * One measured run per invocation (bench/bolt.sh alternates both sides and
 * takes medians).  Connection: BENCH_NEO4J_URI (bolt://), BENCH_NEO4J_USER,
 * BENCH_NEO4J_PASSWORD.  Options: --roundtrips N --pipelined N --depth D
 * --rows N --warmup 0|1 --routed 0|1 --order N --spin-us N (the client's
 * mid-stream read spin, bolt_config.read_spin_us; 0 turns it off).  Prints one JSON line on
 * stdout; errors on stderr, exit 1.  Every returned value is checked, so a
 * broken client cannot post a good number.
 *
 * Thread-safety: single-threaded program.
 */
#include "bench_cpu.h"
#include "bolt/conn.h"
#include "bolt/pool.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct bench_opts {
    long roundtrips;
    long pipelined;
    long depth;
    long rows;
    long warmup;
    long routed;
    long order;
    long spin_us;
} bench_opts;

/* Round trips, and streamed rows, per block when direct and routed alternate. */
#define ROUTED_BLOCK 500
#define ROUTED_STREAM_BLOCK 100000

/* Where a workload gets its connection: one open connection, or a pool
 * (borrowed per query and given back, like a driver session). */
typedef struct bench_src {
    bolt_conn *conn;
    bolt_pool *pool;
} bench_src;

/* Wall time and CPU time (this process + the Neo4j server, when
 * BENCH_NEO4J_PID names it) spent on one side of a comparison.  CPU is the
 * figure a busy machine blurs least: waiting for a core costs wall time,
 * not CPU. */
typedef struct bench_cost {
    int64_t us;
    double cpu_s; /* < 0: the server's CPU is unknown */
} bench_cost;

static double process_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_now(void)
{
    double server = server_cpu_s();
    return server < 0 ? -1 : server + process_cpu_s();
}

static void cost_add(bench_cost *c, int64_t t0_us, double cpu0)
{
    c->us += eg_mono_us() - t0_us;
    double cpu1 = cpu0 < 0 ? -1 : cpu_now();
    if (cpu1 < 0 || c->cpu_s < 0)
        c->cpu_s = -1;
    else
        c->cpu_s += cpu1 - cpu0;
}

static int src_get(const bench_src *s, bolt_conn **c, eg_error *err)
{
    if (!s->pool) {
        *c = s->conn;
        return 0;
    }
    return bolt_pool_acquire(s->pool, c, err);
}

static void src_put(const bench_src *s, bolt_conn *c)
{
    if (s->pool)
        bolt_pool_release(s->pool, c);
}

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

/* (a) n sequential auto-commit round trips, values base.., on s; adds their
 * cost to *cost. */
static int roundtrips(const bench_src *s, long base, long n, bench_cost *cost, eg_error *err)
{
    bolt_params *p = bolt_params_new();
    if (!p)
        return eg_error_set(err, EG_ENOMEM, EG_CLASS_CLIENT, "params");
    int rc = 0;
    double cpu0 = cpu_now();
    int64_t t0 = eg_mono_us();
    for (long x = base; x < base + n && rc == 0; x++) {
        bolt_conn *c = NULL;
        bolt_result *res = NULL;
        bolt_params_clear(p);
        bolt_params_int(p, "x", x);
        rc = src_get(s, &c, err);
        if (rc == 0)
            rc = bolt_conn_run(c, "RETURN $x AS x", p, NULL, &res, err);
        if (rc == 0)
            rc = check_int_record(res, x, err);
        bolt_result_free(res);
        if (c)
            src_put(s, c);
    }
    cost_add(cost, t0, cpu0);
    bolt_params_free(p);
    return rc;
}

static double per_second(long n, int64_t us)
{
    return (double)n * 1e6 / (double)(us > 0 ? us : 1);
}

static int bench_roundtrip(const bench_src *s, long n, double *qps_out, eg_error *err)
{
    bench_cost cost = {0};
    int rc = roundtrips(s, 0, n, &cost, err);
    if (rc == 0)
        *qps_out = per_second(n, cost.us);
    return rc;
}

/* n round trips on each of a and b in alternating blocks; the cost of each. */
static int roundtrips_alternating(const bench_src *a, const bench_src *b, long n, bench_cost *a_us,
                                  bench_cost *b_us, eg_error *err)
{
    int rc = 0;
    *a_us = *b_us = (bench_cost){0};
    for (long base = 0, k = 0; base < n && rc == 0; base += ROUTED_BLOCK, k++) {
        long m = n - base < ROUTED_BLOCK ? n - base : ROUTED_BLOCK;
        bool a_first = k % 2 == 0;
        rc = roundtrips(a_first ? a : b, base, m, a_first ? a_us : b_us, err);
        if (rc == 0)
            rc = roundtrips(a_first ? b : a, base, m, a_first ? b_us : a_us, err);
    }
    return rc;
}

/* (b) pipelined in one transaction, windows of `depth`; *cpu_out: CPU
 * microseconds per query of this process and of the server (< 0: unknown). */
static int bench_pipelined(bolt_conn *c, long n, long depth, double *qps_out, double cpu_out[2], eg_error *err)
{
    bolt_result **win = eg_calloc((size_t)depth, sizeof *win);
    bolt_params *p = bolt_params_new();
    if (!win || !p) {
        eg_free(win);
        bolt_params_free(p);
        return eg_error_set(err, EG_ENOMEM, EG_CLASS_CLIENT, "pipeline window");
    }
    double server0 = server_cpu_s(), self0 = process_cpu_s();
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
    double server1 = server0 < 0 ? -1 : server_cpu_s();
    cpu_out[0] = (process_cpu_s() - self0) * 1e6 / (double)n;
    cpu_out[1] = server1 < 0 ? -1 : (server1 - server0) * 1e6 / (double)n;
    bolt_params_free(p);
    eg_free(win);
    if (rc == 0)
        *qps_out = per_second(n, us);
    return rc;
}

/* (c) stream `rows` rows, decode and touch every value; adds the cost to *cost. */
static int stream_rows(const bench_src *s, long rows, bench_cost *cost, eg_error *err)
{
    bolt_params *p = bolt_params_new();
    if (!p)
        return eg_error_set(err, EG_ENOMEM, EG_CLASS_CLIENT, "params");
    bolt_conn *c = NULL;
    bolt_params_int(p, "n", rows);
    bolt_result *res = NULL;
    long count = 0;
    int64_t last = 0;
    size_t sum_len = 0;
    double cpu0 = cpu_now();
    int64_t t0 = eg_mono_us();
    int rc = src_get(s, &c, err);
    if (rc == 0)
        rc = bolt_conn_run(c, "UNWIND range(1, $n) AS i RETURN i, toString(i) AS s", p, NULL, &res, err);
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
    bolt_result_free(res);
    if (c)
        src_put(s, c);
    cost_add(cost, t0, cpu0);
    bolt_params_free(p);
    if (rc == 0 && (count != rows || (rows > 0 && (last != rows || sum_len == 0))))
        rc = eg_error_set(err, EG_EPROTO, EG_CLASS_CLIENT, "stream: %ld of %ld rows, last %lld", count, rows,
                          (long long)last);
    return rc;
}

static int bench_stream(const bench_src *s, long rows, double *rows_s_out, eg_error *err)
{
    bench_cost cost = {0};
    int rc = stream_rows(s, rows, &cost, err);
    if (rc == 0)
        *rows_s_out = per_second(rows, cost.us);
    return rc;
}

static int parse_opts(bench_opts *o, int argc, char **argv)
{
    *o = (bench_opts){ .roundtrips = 20000, .pipelined = 20000, .depth = 100, .rows = 1000000, .warmup = 1,
                       .routed = 0, .order = 1, .spin_us = BOLT_READ_SPIN_DEFAULT_US };
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
        else if (!strcmp(argv[i], "--routed"))
            dst = &o->routed;
        else if (!strcmp(argv[i], "--order"))
            dst = &o->order;
        else if (!strcmp(argv[i], "--spin-us"))
            dst = &o->spin_us;
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

/* The routed figures: direct and routed pools, see the file comment. */
typedef struct routed_figures {
    double direct_qps, routed_qps, overhead, cpu_overhead;
    double direct_rows_s, routed_rows_s, stream_overhead, stream_cpu_overhead;
    bool cpu_known;
} routed_figures;

/* b's cost over a's - 1, in wall time and in CPU time. */
static double over(const bench_cost *a, const bench_cost *b, double *cpu_over, bool *cpu_known)
{
    *cpu_known = a->cpu_s > 0 && b->cpu_s >= 0;
    *cpu_over = *cpu_known ? b->cpu_s / a->cpu_s - 1.0 : 0;
    return (double)b->us / (double)(a->us > 0 ? a->us : 1) - 1.0;
}

static int bench_routed(const bolt_config *base, const bench_opts *o, routed_figures *f, eg_error *err)
{
    char routed_uri[512];
    if (strncmp(base->uri, "bolt://", 7) != 0)
        return eg_error_set(err, EG_EINVAL, EG_CLASS_CLIENT, "--routed needs a bolt:// BENCH_NEO4J_URI");
    snprintf(routed_uri, sizeof routed_uri, "neo4j://%s", base->uri + 7);
    bolt_pool_opts po = BOLT_POOL_OPTS_INIT;
    po.max_size = 1;
    bolt_config dc = *base, rcfg = *base;
    rcfg.uri = routed_uri;
    bench_src d = {0}, r = {0};
    int rc = bolt_pool_new(&d.pool, &dc, &po, err);
    if (rc == 0)
        rc = bolt_pool_new(&r.pool, &rcfg, &po, err);
    double dummy;
    if (rc == 0 && o->warmup) {
        bench_cost a, b;
        rc = roundtrips_alternating(&d, &r, 2000, &a, &b, err);
        if (rc == 0)
            rc = bench_stream(&d, 100000, &dummy, err);
        if (rc == 0)
            rc = bench_stream(&r, 100000, &dummy, err);
    }
    if (rc == 0 && o->roundtrips > 0) {
        bench_cost direct_cost, routed_cost;
        rc = roundtrips_alternating(&d, &r, o->roundtrips, &direct_cost, &routed_cost, err);
        if (rc == 0) {
            f->direct_qps = per_second(o->roundtrips, direct_cost.us);
            f->routed_qps = per_second(o->roundtrips, routed_cost.us);
            f->overhead = over(&direct_cost, &routed_cost, &f->cpu_overhead, &f->cpu_known);
        }
    }
    if (rc == 0 && o->rows > 0) {
        bench_cost direct_cost = {0}, routed_cost = {0};
        for (long done = 0, k = o->order; done < o->rows && rc == 0; k++) {
            long m = o->rows - done < ROUTED_STREAM_BLOCK ? o->rows - done : ROUTED_STREAM_BLOCK;
            bool d_first = k % 2 == 1;
            rc = stream_rows(d_first ? &d : &r, m, d_first ? &direct_cost : &routed_cost, err);
            if (rc == 0)
                rc = stream_rows(d_first ? &r : &d, m, d_first ? &routed_cost : &direct_cost, err);
            done += m;
        }
        if (rc == 0) {
            bool known;
            f->direct_rows_s = per_second(o->rows, direct_cost.us);
            f->routed_rows_s = per_second(o->rows, routed_cost.us);
            f->stream_overhead = over(&direct_cost, &routed_cost, &f->stream_cpu_overhead, &known);
            f->cpu_known = f->cpu_known || known;
        }
    }
    bolt_pool_free(d.pool);
    bolt_pool_free(r.pool);
    return rc;
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
    cfg.read_spin_us = o.spin_us > 0 ? (int)(o.spin_us > BOLT_READ_SPIN_MAX_US ? BOLT_READ_SPIN_MAX_US : o.spin_us)
                                     : -1;

    eg_error err;
    eg_error_clear(&err);
    bolt_conn *c = NULL;
    if (bolt_conn_open(&c, &cfg, &err) != 0) {
        fail("connect", &err);
        return 1;
    }
    bench_src one = {.conn = c};

    double rt = 0, pl = 0, st = 0, dummy = 0, pl_cpu[2] = {0, 0}, dummy_cpu[2];
    int rc = 0;
    if (o.warmup) {
        /* Same warm-up as the driver side: JIT on both ends, caches, plans. */
        rc = bench_roundtrip(&one, 2000, &dummy, &err);
        if (rc == 0)
            rc = bench_pipelined(c, 2000, o.depth, &dummy, dummy_cpu, &err);
        if (rc == 0)
            rc = bench_stream(&one, 100000, &dummy, &err);
        if (rc != 0)
            fail("warm-up", &err);
    }
    if (rc == 0 && o.roundtrips > 0 && (rc = bench_roundtrip(&one, o.roundtrips, &rt, &err)) != 0)
        fail("roundtrip", &err);
    if (rc == 0 && o.pipelined > 0 && (rc = bench_pipelined(c, o.pipelined, o.depth, &pl, pl_cpu, &err)) != 0)
        fail("pipelined", &err);
    if (rc == 0 && o.rows > 0 && (rc = bench_stream(&one, o.rows, &st, &err)) != 0)
        fail("stream", &err);
    routed_figures rf = {0};
    if (rc == 0 && o.routed && (rc = bench_routed(&cfg, &o, &rf, &err)) != 0)
        fail("routed", &err);

    int major = 0, minor = 0;
    bolt_conn_version(c, &major, &minor);
    const char *agent = bolt_conn_server_agent(c);
    if (rc == 0) {
        printf("{\"side\":\"ours\",\"client\":\"engram/%s\",\"server\":\"%s\",\"protocol\":\"%d.%d\"", ENGRAM_VERSION,
               agent ? agent : "", major, minor);
        if (o.roundtrips > 0)
            printf(",\"roundtrip_qps\":%.1f", rt);
        if (o.pipelined > 0) {
            printf(",\"pipelined_qps\":%.1f,\"pipelined_client_cpu_us\":%.1f", pl, pl_cpu[0]);
            if (pl_cpu[1] >= 0)
                printf(",\"pipelined_server_cpu_us\":%.1f", pl_cpu[1]);
        }
        if (o.rows > 0)
            printf(",\"stream_rows_s\":%.1f", st);
        if (o.routed && o.roundtrips > 0)
            printf(",\"pool_roundtrip_qps\":%.1f,\"routed_roundtrip_qps\":%.1f,\"routed_overhead\":%.4f",
                   rf.direct_qps, rf.routed_qps, rf.overhead);
        if (o.routed && o.rows > 0)
            printf(",\"pool_stream_rows_s\":%.1f,\"routed_stream_rows_s\":%.1f,\"routed_stream_overhead\":%.4f",
                   rf.direct_rows_s, rf.routed_rows_s, rf.stream_overhead);
        if (o.routed && rf.cpu_known)
            printf(",\"routed_cpu_overhead\":%.4f,\"routed_stream_cpu_overhead\":%.4f", rf.cpu_overhead,
                   rf.stream_cpu_overhead);
        printf("}\n");
        fflush(stdout);
    }
    bolt_conn_free(c);
    return rc == 0 ? 0 : 1;
}
