/*
 * What the benchmark programs share: failing with their name on stderr, and
 * a monotonic clock in nanoseconds.
 */
#ifndef LSMQ_BENCH_UTIL_H
#define LSMQ_BENCH_UTIL_H

#include <stdint.h>

/* Name the program for bench_die's messages, and the exit status it uses. */
void bench_init(const char *name, int fail_status);

/* Print "<name>: <message>" on stderr and exit with the fail status. */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

uint64_t bench_now_ns(void);

#endif
