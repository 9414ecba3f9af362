/*
 * The log of every lsmq library and program: one line per event.
 *
 * A line goes to the sink when its level is at or above the current one
 * (ERROR is the most severe). The default sink writes to stderr with a UTC
 * time stamp and the level:
 *
 *   2026-12-07 14:00:00.123 INFO broker: created topic T (8 queues, perm 6)
 *
 * Callers name their component at the start of the text ("engine: ",
 * "broker: ", "liblsmq: "). The level starts from the environment variable
 * LSMQ_LOG_LEVEL (0-3) if set, else WARN, so a library linked into someone
 * else's program stays quiet; the servers raise it to INFO at start.
 * liblsmq's lsmq_set_log routes the same lines to its user.
 *
 * Threads: proto_log from any thread; set the sink and level before other
 * threads log (the level may change at any time).
 */
#ifndef LSMQ_PROTO_LOG_H
#define LSMQ_PROTO_LOG_H

#include <stdbool.h>

/* The same numbers as liblsmq's enum lsmq_log_level. */
typedef enum proto_log_level {
    PROTO_LOG_ERROR = 0,
    PROTO_LOG_WARN = 1,
    PROTO_LOG_INFO = 2,
    PROTO_LOG_DEBUG = 3,
} proto_log_level;

/* A sink gets each line without its time stamp; `line` is valid during the call. */
typedef void proto_log_sink(int level, const char *line, void *arg);

/* Route lines to fn (NULL: back to stderr). */
void proto_log_set_sink(proto_log_sink *fn, void *arg);
/* Log lines at `level` and more severe ones. */
void proto_log_set_level(int level);
/* Would a line at `level` be logged? (to skip building an expensive one) */
bool proto_log_enabled(int level);

void proto_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
