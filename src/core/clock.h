/*
 * clock.h - time helpers.
 *
 * Monotonic time is for timeouts and latency; wall time only for display.
 * Lease expiry and runAt are *never* computed from these: they use the
 * database clock (see queue/), so workers on skewed machines agree.
 */
#ifndef ENGRAM_CORE_CLOCK_H
#define ENGRAM_CORE_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

int64_t eg_mono_ms(void);
int64_t eg_mono_us(void);
int64_t eg_wall_ms(void);
/* *ts = CLOCK_MONOTONIC now + ms: the deadline for pthread_cond_timedwait
 * on a condition variable created with that clock. */
void eg_mono_deadline(struct timespec *ts, int64_t ms);
/* Sleep; returns early only when interrupted by a signal is not a concern. */
void eg_sleep_ms(int64_t ms);
/* Uniform random in [0, 1) from a thread-local xorshift seeded from OpenSSL/urandom. */
double eg_rand_unit(void);
/* Fill `out` (2*n+1 bytes) with n random bytes in hex, from OpenSSL's CSPRNG. */
int eg_rand_hex(char *out, size_t n);

#endif
