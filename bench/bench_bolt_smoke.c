/*
 * bench_bolt_smoke.c - a quick timing check of the Bolt client (not the
 * official benchmark): N sequential `RETURN $x` round trips, and streaming
 * `UNWIND range(1,M) AS i RETURN i, toString(i)`.
 *
 * Usage: bench_bolt_smoke [round_trips] [rows] [fetch_size]
 * Connection from ENGRAM_TEST_NEO4J_URI / _USER / _PASSWORD.
 */
#include "bolt/conn.h"
#include "core/clock.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 20000;
    long rows = argc > 2 ? atol(argv[2]) : 1000000;
    long fetch = argc > 3 ? atol(argv[3]) : 0;
    bolt_config cfg = BOLT_CONFIG_INIT;
    cfg.uri = getenv("ENGRAM_TEST_NEO4J_URI");
    cfg.user = getenv("ENGRAM_TEST_NEO4J_USER");
    cfg.password = getenv("ENGRAM_TEST_NEO4J_PASSWORD");
    if (!cfg.uri) {
        fprintf(stderr, "set ENGRAM_TEST_NEO4J_URI/_USER/_PASSWORD\n");
        return 77;
    }
    eg_error err;
    bolt_conn *c;
    if (bolt_conn_open(&c, &cfg, &err) < 0) {
        fprintf(stderr, "connect: %s\n", err.message);
        return 1;
    }
    bolt_params *p = bolt_params_new();
    int64_t t0 = eg_mono_us();
    for (long i = 0; i < n; i++) {
        bolt_params_clear(p);
        bolt_params_int(p, "x", i);
        bolt_result *r;
        const bolt_value *rec;
        if (bolt_conn_run(c, "RETURN $x", p, NULL, &r, &err) < 0 ||
            bolt_result_next(r, &rec, &err) != 1 || bolt_value_int(bolt_value_at(rec, 0), -1) != i) {
            fprintf(stderr, "round trip %ld failed: %s\n", i, err.message);
            return 1;
        }
        bolt_result_free(r);
    }
    int64_t t1 = eg_mono_us();
    printf("round trips: %ld in %.3f s = %.0f qps\n", n, (t1 - t0) / 1e6, n / ((t1 - t0) / 1e6));
    bolt_params_clear(p);
    bolt_params_int(p, "n", rows);
    bolt_tx_opts o = BOLT_TX_OPTS_INIT;
    o.fetch_size = fetch;
    bolt_result *r;
    t0 = eg_mono_us();
    if (bolt_conn_run(c, "UNWIND range(1, $n) AS i RETURN i, toString(i)", p, &o, &r, &err) < 0) {
        fprintf(stderr, "stream: %s\n", err.message);
        return 1;
    }
    const bolt_value *rec;
    long got = 0;
    int64_t sum = 0;
    int rc;
    while ((rc = bolt_result_next(r, &rec, &err)) == 1) {
        sum += bolt_value_int(bolt_value_at(rec, 0), 0);
        got++;
    }
    t1 = eg_mono_us();
    if (rc < 0 || got != rows) {
        fprintf(stderr, "stream failed after %ld rows: %s\n", got, err.message);
        return 1;
    }
    printf("streaming: %ld rows in %.3f s = %.0f rows/s (checksum %lld)\n", got, (t1 - t0) / 1e6,
           got / ((t1 - t0) / 1e6), (long long)sum);
    bolt_result_free(r);
    bolt_params_free(p);
    bolt_conn_free(c);
    return 0;
}
