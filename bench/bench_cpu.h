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

#endif
