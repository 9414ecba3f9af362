/*
 * What the benchmark programs share: failing with their name on stderr, a
 * monotonic clock in nanoseconds, and how much CPU a run took (this process
 * and the rest of the machine).
 */
#ifndef LSMQ_BENCH_UTIL_H
#define LSMQ_BENCH_UTIL_H

#include <stdint.h>

/* Name the program for bench_die's messages, and the exit status it uses. */
void bench_init(const char *name, int fail_status);

/* Print "<name>: <message>" on stderr and exit with the fail status. */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

uint64_t bench_now_ns(void);

/*
 * CPU time the whole machine was busy (all CPUs, /proc/stat) and this
 * process's own CPU time, in seconds, at one moment: the difference over a
 * run is what other processes took from the cores while we measured.
 */
typedef struct bench_cpu_mark {
    double machine_busy_s;
    double self_s;
    uint64_t at_ns;
} bench_cpu_mark;

bench_cpu_mark bench_cpu_mark_now(void);
/* Share of the machine (all CPUs) other processes used between a and b, percent. */
double bench_cpu_other_pct(const bench_cpu_mark *a, const bench_cpu_mark *b);
/* This process's CPU between a and b, in cores (1.0 = one core busy all the time). */
double bench_cpu_self_cores(const bench_cpu_mark *a, const bench_cpu_mark *b);

#endif
