/*
 * The two clocks of the tree, in milliseconds: monotonic for deadlines and
 * intervals (never goes back, unrelated to the date), wall for what the
 * protocol stamps (store and born times, data versions) and the date.
 *
 * Any thread.
 */
#ifndef LSMQ_PROTO_CLOCK_H
#define LSMQ_PROTO_CLOCK_H

#include <stdint.h>
#include <time.h>

int64_t proto_mono_ms(void);
int64_t proto_mono_ns(void); /* the same clock, for measuring short spans */
int64_t proto_wall_ms(void);
int64_t proto_wall_ns(void); /* the wall clock finer, to compare with a due time sub-ms */

/*
 * The absolute time in_ms from now on `clock`, for pthread_cond_timedwait:
 * CLOCK_REALTIME for a default condition variable, CLOCK_MONOTONIC for one
 * made with pthread_condattr_setclock.
 */
struct timespec proto_deadline_after(clockid_t clock, int64_t in_ms);

#endif
