/*
 * The two clocks of the tree, in milliseconds: monotonic for deadlines and
 * intervals (never goes back, unrelated to the date), wall for what the
 * protocol stamps (store and born times, data versions).
 *
 * Any thread.
 */
#ifndef LSMQ_PROTO_CLOCK_H
#define LSMQ_PROTO_CLOCK_H

#include <stdint.h>

int64_t proto_mono_ms(void);
int64_t proto_wall_ms(void);

#endif
