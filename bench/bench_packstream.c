/*
 * bench_packstream.c - decode (and encode) throughput of Bolt RECORD
 * messages, the hot path when streaming large results.
 *
 * Usage: bench_packstream [records]   (default 1000000)
 * Prints one line per phase: records/s and MB/s.  Each record is
 * RECORD [id:int, name:string, score:float, tags:[str,str], props:{k:v,n:int}],
 * the shape of a typical row; the arena is reset after every record, as a
 * streaming consumer does.
 */
#include "bolt/packstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    eg_buf b = EG_BUF_INIT(0);
    bolt_ps_writer w;
    bolt_ps_writer_init(&w, &b);
    double t0 = now_s();
    size_t *offs = malloc(sizeof *offs * (size_t)(n + 1));
    if (!offs)
        return 1;
    for (long i = 0; i < n; i++) {
        offs[i] = b.len;
        bolt_ps_struct_begin(&w, 0x71, 1);
        bolt_ps_list_begin(&w, 5);
        bolt_ps_int(&w, i);
        bolt_ps_str(&w, "memory-entity-name");
        bolt_ps_float(&w, (double)i * 0.5);
        bolt_ps_list_begin(&w, 2);
        bolt_ps_str(&w, "person");
        bolt_ps_str(&w, "project");
        bolt_ps_map_begin(&w, 2);
        bolt_ps_str(&w, "k");
        bolt_ps_str(&w, "some observation text of moderate length");
        bolt_ps_str(&w, "n");
        bolt_ps_int(&w, 100000 + i);
    }
    offs[n] = b.len;
    double t1 = now_s();
    if (bolt_ps_writer_error(&w))
        return 1;
    bolt_arena *a = bolt_arena_new(0);
    if (!a)
        return 1;
    double t2 = now_s();
    int64_t check = 0;
    for (long i = 0; i < n; i++) {
        const bolt_value *v;
        const uint8_t *p = (const uint8_t *)b.ptr + offs[i];
        if (bolt_ps_decode(p, offs[i + 1] - offs[i], a, 5, &v, NULL, NULL))
            return 1;
        check += bolt_value_int(bolt_value_at(v->u.st.fields[0], 0), 0);
        bolt_arena_reset(a);
    }
    double t3 = now_s();
    double mb = (double)b.len / 1e6;
    printf("encode: %ld records in %.3fs: %.0f records/s, %.0f MB/s\n", n, t1 - t0, n / (t1 - t0),
           mb / (t1 - t0));
    printf("decode: %ld records in %.3fs: %.0f records/s, %.0f MB/s (check %lld)\n", n, t3 - t2,
           n / (t3 - t2), mb / (t3 - t2), (long long)check);
    bolt_arena_free(a);
    eg_buf_free(&b);
    free(offs);
    return 0;
}
