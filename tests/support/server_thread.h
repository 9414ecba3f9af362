/*
 * A server (server/net.h) on 127.0.0.1 with a loop thread of its own, for
 * unit tests that talk to it over real sockets: open it, register the
 * handlers, run it; close stops the thread and frees everything.
 */
#ifndef LSMQ_TEST_SERVER_THREAD_H
#define LSMQ_TEST_SERVER_THREAD_H

#include <pthread.h>

#include "net.h"

typedef struct server_thread {
    struct ev_loop *loop;
    server *srv;
    int port;
    char addr[32];       /* "127.0.0.1:port" */
    pthread_t thread;
    ev_async stop;
} server_thread;

/* Create the server (cfg NULL: defaults) listening on a free port. 0 or -1. */
int server_thread_open(server_thread *t, const server_config *cfg);
/* Run its loop on a new thread (after the handlers are registered). */
void server_thread_run(server_thread *t);
/* Stop the loop, join the thread, destroy the server and the loop. */
void server_thread_close(server_thread *t);

#endif
