/* A server on a loop thread of its own (server_thread.h). */
#include "server_thread.h"

#include <stdio.h>
#include <string.h>

static void stop_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

static void *loop_main(void *arg)
{
    server_thread *t = arg;

    ev_run(t->loop, 0);
    return NULL;
}

int server_thread_open(server_thread *t, const server_config *cfg)
{
    memset(t, 0, sizeof *t);
    t->loop = ev_loop_new(EVFLAG_AUTO);
    if (t->loop == NULL || server_create(t->loop, cfg, &t->srv) != 0)
        return -1;
    if (server_listen(t->srv, "127.0.0.1", 0, &t->port) != 0)
        return -1;
    snprintf(t->addr, sizeof t->addr, "127.0.0.1:%d", t->port);
    ev_async_init(&t->stop, stop_cb);
    ev_async_start(t->loop, &t->stop);
    return 0;
}

void server_thread_run(server_thread *t)
{
    pthread_create(&t->thread, NULL, loop_main, t);
}

void server_thread_close(server_thread *t)
{
    ev_async_send(t->loop, &t->stop);
    pthread_join(t->thread, NULL);
    ev_async_stop(t->loop, &t->stop);
    server_destroy(t->srv);
    ev_loop_destroy(t->loop);
}
