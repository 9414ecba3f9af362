/*
 * The libev adapter of a remoting connection (hiredis adapters/libev.h's
 * role): two ev_io watchers, read and write apart, started and stopped
 * when the connection's hooks ask, and a prepare watcher that writes what
 * one loop iteration queued just before the loop waits. When a socket
 * event leaves the connection dead, the owner hears about it through
 * `dead` once the connection code has returned, so it can free the
 * connection safely.
 */
#include <ev.h>
#include <stdlib.h>

#include "client_internal.h"

typedef struct ev_adapter {
    struct ev_loop *loop;
    rconn *c;
    ev_io rev, wev;
    ev_prepare flush;
    rconn_dead_cb *dead;
    void *arg;
} ev_adapter;

static void add_read(void *data)
{
    ev_adapter *a = data;

    ev_io_start(a->loop, &a->rev);
}

static void del_read(void *data)
{
    ev_adapter *a = data;

    ev_io_stop(a->loop, &a->rev);
}

static void add_write(void *data)
{
    ev_adapter *a = data;

    ev_io_start(a->loop, &a->wev);
}

static void del_write(void *data)
{
    ev_adapter *a = data;

    ev_io_stop(a->loop, &a->wev);
}

static void flush_soon(void *data)
{
    ev_adapter *a = data;

    ev_prepare_start(a->loop, &a->flush);
}

static void cleanup(void *data)
{
    ev_adapter *a = data;

    /* Watchers stop before the connection closes its fd. */
    ev_io_stop(a->loop, &a->rev);
    ev_io_stop(a->loop, &a->wev);
    ev_prepare_stop(a->loop, &a->flush);
    free(a);
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    ev_adapter *a = w->data;
    int rc = rconn__on_readable(a->c);

    if (rc != 0)
        a->dead(a->c, rc, a->arg);
}

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    ev_adapter *a = w->data;
    int rc = rconn__on_writable(a->c);

    if (rc != 0)
        a->dead(a->c, rc, a->arg);
}

static void flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    ev_adapter *a = w->data;
    int rc;

    ev_prepare_stop(loop, w);
    rc = rconn__on_writable(a->c);
    if (rc != 0)
        a->dead(a->c, rc, a->arg);
}

void rconn__ev_attach(rconn *c, struct ev_loop *loop, rconn_dead_cb *dead, void *arg)
{
    ev_adapter *a = lsmq__calloc(1, sizeof *a);
    rconn_hooks *h = rconn__hooks(c);

    a->loop = loop;
    a->c = c;
    a->dead = dead;
    a->arg = arg;
    ev_io_init(&a->rev, read_cb, rconn__fd(c), EV_READ);
    ev_io_init(&a->wev, write_cb, rconn__fd(c), EV_WRITE);
    a->rev.data = a;
    a->wev.data = a;
    ev_prepare_init(&a->flush, flush_cb);
    a->flush.data = a;
    h->data = a;
    h->add_read = add_read;
    h->del_read = del_read;
    h->add_write = add_write;
    h->del_write = del_write;
    h->flush_soon = flush_soon;
    h->cleanup = cleanup;
    /* rconn__connect ran before the watchers existed: wait for the connect here. */
    if (rconn__state(c) == RCONN_CONNECTING)
        ev_io_start(loop, &a->wev);
}
