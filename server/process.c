/*
 * What the programs mqbroker and mqnamesrv share around their handlers: a
 * remoting server listening on a port, and running the loop until SIGTERM
 * or SIGINT asks for a graceful stop.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "process.h"

void server_process_init(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (!getenv("LSMQ_LOG_LEVEL"))
        proto_log_set_level(PROTO_LOG_INFO);
}

static int listen_with(struct ev_loop *loop, const char *name, int port,
                       transport_flusher *flusher, server **out, int *bound)
{
    server_config sc;
    server_config_init(&sc);
    sc.name = name;
    sc.flusher = flusher;
    *out = NULL;
    int rc = server_create(loop, &sc, out);
    if (rc == 0)
        rc = server_listen(*out, "0.0.0.0", port, bound);
    if (rc != 0 && *out) {
        server_destroy(*out);
        *out = NULL;
    }
    return rc;
}

int server_process_listen(struct ev_loop *loop, const char *name, int port, server **out, int *bound)
{
    return listen_with(loop, name, port, NULL, out, bound);
}

int server_process_listen_beside(server *first, const char *name, int port, server **out,
                                 int *bound)
{
    return listen_with(server_loop(first), name, port, server_flusher(first), out, bound);
}

static void stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    proto_log(PROTO_LOG_INFO, "%s: signal %d, shutting down", (const char *)w->data, w->signum);
    ev_break(loop, EVBREAK_ALL);
}

void server_process_run_until_signal(struct ev_loop *loop, const char *name)
{
    ev_signal sigterm, sigint;
    ev_signal_init(&sigterm, stop_cb, SIGTERM);
    ev_signal_init(&sigint, stop_cb, SIGINT);
    sigterm.data = sigint.data = (void *)name;
    ev_signal_start(loop, &sigterm);
    ev_signal_start(loop, &sigint);
    ev_run(loop, 0);
    ev_signal_stop(loop, &sigterm);
    ev_signal_stop(loop, &sigint);
}
