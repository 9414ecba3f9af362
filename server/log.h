/* One-line log messages on stderr with a UTC timestamp. Any thread. */
#ifndef LSMQ_SERVER_LOG_H
#define LSMQ_SERVER_LOG_H

void lsmq_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
