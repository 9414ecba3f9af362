/* The benchmark programs' shared helpers (bench_util.h). */
#include "bench_util.h"
#include "clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

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
