/*
 * bench_cpu.h - the Neo4j server's CPU time, for benchmarks that compare
 * two passes on one server.  Header-only (each bench is one program).
 */
#ifndef ENGRAM_BENCH_CPU_H
#define ENGRAM_BENCH_CPU_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"

/* CPU seconds the Neo4j process has used so far (utime + stime from
 * /proc/PID/stat), or -1 when BENCH_NEO4J_PID is unset or unreadable.
 * Server CPU per job is the figure concurrency cannot blur: a pass that
 * waits on a lock is slow without costing CPU, a pass that does more work
 * costs CPU whether or not it waits. */
static inline double server_cpu_s(void)
{
    const char *pid = getenv("BENCH_NEO4J_PID");
    if (!pid || !*pid)
        return -1;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%s/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* fields after the parenthesised command name; utime and stime are the
     * 14th and 15th fields of the line, the 12th and 13th after ") " */
    const char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    p += 2;
    unsigned long long ut = 0, st = 0;
    for (int field = 3; field <= 15 && *p; field++) {
        if (field == 14)
            ut = strtoull(p, NULL, 10);
        if (field == 15)
            st = strtoull(p, NULL, 10);
        const char *sp = strchr(p, ' ');
        if (!sp)
            break;
        p = sp + 1;
    }
    long hz = sysconf(_SC_CLK_TCK);
    return hz > 0 ? (double)(ut + st) / (double)hz : -1;
}

/*
 * Wait until the Neo4j server is idle again (below `idle_cores` of CPU over
 * a 250 ms interval, at most max_s seconds) and return the seconds until it
 * went idle - the last, quiet interval not counted; 0 when the server's pid
 * is unknown.  Vector writes leave work behind: Neo4j refreshes the vector
 * index after every committed transaction, so each batch becomes a Lucene
 * segment of its own, and Lucene merges those segments - rebuilding their
 * HNSW graphs - on background threads, for seconds after the last write
 * (55% of the server's CPU in a JFR profile of bench/run queue on
 * 2025.10.1).  A benchmark that compares two passes must charge each pass
 * with its own merges and must not start the next one while they run.
 */
static inline double server_settle(double idle_cores, int max_s)
{
    if (server_cpu_s() < 0)
        return 0;
    int64_t t0 = eg_mono_us();
    for (int i = 0; i < max_s * 4; i++) {
        int64_t t = eg_mono_us();
        double c0 = server_cpu_s();
        eg_sleep_ms(250);
        if ((server_cpu_s() - c0) / ((double)(eg_mono_us() - t) / 1e6) < idle_cores)
            return (double)(t - t0) / 1e6;
    }
    return (double)(eg_mono_us() - t0) / 1e6;
}

#endif
