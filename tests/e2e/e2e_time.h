/*
 * Clocks for the end-to-end tests: wall-clock milliseconds where a value is
 * compared with the broker's timestamps, monotonic ones for deadlines and
 * latencies. Header-only (static inline).
 */
#ifndef LSMQ_TEST_E2E_TIME_H
#define LSMQ_TEST_E2E_TIME_H

#include <stdint.h>
#include <time.h>
#include <unistd.h>

/* Wall-clock milliseconds, as the broker stamps messages. */
static inline int64_t e2e_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic milliseconds, for deadlines. */
static inline int64_t e2e_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic microseconds, for latency measurements. */
static inline int64_t e2e_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline void e2e_sleep_ms(int ms)
{
    usleep((useconds_t)ms * 1000);
}

#endif
