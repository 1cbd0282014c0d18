/*
 * clock.c - monotonic/wall clocks, sleeping and randomness.
 */
#include "core/clock.h"
#include "core/err.h"

#include <errno.h>
#include <openssl/rand.h>
#include <stddef.h>
#include <time.h>

int64_t eg_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t eg_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t eg_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void eg_mono_deadline(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    int64_t ns = (int64_t)ts->tv_nsec + (ms % 1000) * 1000000;
    ts->tv_sec += (time_t)(ms / 1000 + ns / 1000000000);
    ts->tv_nsec = (long)(ns % 1000000000);
}

void eg_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static _Thread_local uint64_t rng_state;

double eg_rand_unit(void)
{
    if (rng_state == 0) {
        if (RAND_bytes((unsigned char *)&rng_state, sizeof rng_state) != 1 || rng_state == 0)
            rng_state = (uint64_t)eg_mono_us() * 0x9E3779B97F4A7C15ULL | 1;
    }
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return (double)(x >> 11) / (double)(1ULL << 53);
}

int eg_rand_hex(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char tmp[64];
    if (n > sizeof tmp)
        return EG_EINVAL;
    if (RAND_bytes(tmp, (int)n) != 1)
        return EG_EIO;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[tmp[i] >> 4];
        out[2 * i + 1] = hex[tmp[i] & 15];
    }
    out[2 * n] = '\0';
    return 0;
}
