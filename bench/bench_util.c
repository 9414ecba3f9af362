/* The benchmark programs' shared helpers (bench_util.h). */
#include "bench_util.h"
#include "clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "bench";
static int status = 1;

void bench_init(const char *name, int fail_status)
{
    prog = name;
    status = fail_status;
}

void bench_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(status);
}

uint64_t bench_now_ns(void)
{
    return (uint64_t)proto_mono_ns();
}

bench_cpu_mark bench_cpu_mark_now(void)
{
    bench_cpu_mark m = { 0, 0, bench_now_ns() };
    FILE *f = fopen("/proc/stat", "r");
    if (f) {
        unsigned long long v[8] = { 0 };
        if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]) == 8) {
            /* user nice system idle iowait irq softirq steal: all but idle, iowait */
            double busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]);
            m.machine_busy_s = busy / (double)sysconf(_SC_CLK_TCK);
        }
        fclose(f);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    m.self_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    return m;
}

double bench_cpu_other_pct(const bench_cpu_mark *a, const bench_cpu_mark *b)
{
    double wall = (double)(b->at_ns - a->at_ns) / 1e9;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (wall <= 0 || ncpu <= 0)
        return 0;
    double other = (b->machine_busy_s - a->machine_busy_s) - (b->self_s - a->self_s);
    double pct = 100.0 * other / (wall * (double)ncpu);
    return pct < 0 ? 0 : pct;
}

double bench_cpu_self_cores(const bench_cpu_mark *a, const bench_cpu_mark *b)
{
    double wall = (double)(b->at_ns - a->at_ns) / 1e9;
    return wall > 0 ? (b->self_s - a->self_s) / wall : 0;
}
