/*
 * The lifecycle mqbroker and mqnamesrv share: the process set-up, a
 * listening server, and the loop run until SIGTERM or SIGINT.
 */
#ifndef LSMQ_SERVER_PROCESS_H
#define LSMQ_SERVER_PROCESS_H

#include <ev.h>

#include "net.h"

/* At the start of main: SIGPIPE ignored (a peer that went away is an error
 * return, not a signal), and the log at INFO unless LSMQ_LOG_LEVEL says. */
void server_process_init(void);

/* A server named `name` (for log lines) listening on 0.0.0.0:port (0 picks
 * a free port, into *bound). 0, or an error with nothing left open. */
int server_process_listen(struct ev_loop *loop, const char *name, int port, server **out, int *bound);
/* The same for a second server on the loop, sharing first's flusher (first
 * must be destroyed after it). */
int server_process_listen_beside(server *first, const char *name, int port, server **out,
                                 int *bound);

/* Run the loop until SIGTERM or SIGINT, which is logged as `name`'s. */
void server_process_run_until_signal(struct ev_loop *loop, const char *name);

#endif
