/*
 * Time for the end-to-end tests: protocol's clocks (clock.h: proto_wall_ms
 * where a value is compared with the broker's timestamps, proto_mono_ms and
 * proto_mono_ns for deadlines and latencies) and a sleep. Header-only.
 */
#ifndef LSMQ_TEST_E2E_TIME_H
#define LSMQ_TEST_E2E_TIME_H

#include <unistd.h>

#include "clock.h"

static inline void e2e_sleep_ms(int ms)
{
    usleep((useconds_t)ms * 1000);
}

#endif
