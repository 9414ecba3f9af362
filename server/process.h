/*
 * The lifecycle mqbroker and mqnamesrv share: open a listening server, run
 * the loop until SIGTERM or SIGINT.
 */
#ifndef LSMQ_SERVER_PROCESS_H
#define LSMQ_SERVER_PROCESS_H

#include <ev.h>

#include "net.h"

/* A server named `name` (for log lines) listening on 0.0.0.0:port (0 picks
 * a free port, into *bound). 0, or an error with nothing left open. */
int process_listen(struct ev_loop *loop, const char *name, int port, server **out, int *bound);

/* Run the loop until SIGTERM or SIGINT, which is logged as `name`'s. */
void process_run_until_signal(struct ev_loop *loop, const char *name);

#endif
