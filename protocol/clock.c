/* The clocks of the tree (clock.h). */
#include "clock.h"

#include <time.h>

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t proto_mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }
int64_t proto_wall_ms(void) { return clock_ms(CLOCK_REALTIME); }

static int64_t clock_ns(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t proto_mono_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

int64_t proto_wall_ns(void) { return clock_ns(CLOCK_REALTIME); }

struct timespec proto_deadline_after(clockid_t clock, int64_t in_ms)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    ts.tv_sec += (time_t)(in_ms / 1000);
    ts.tv_nsec += (long)(in_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}
