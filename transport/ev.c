/*
 * The libev adapter of a connection core (transport.h): hiredis's
 * adapters/libev.h role, plus what a server needs around it.
 *
 * The core's hooks start and stop the read watcher (back-pressure, closing),
 * put the connection on its loop's flusher (output was queued) and move the
 * timer (a request deadline). The flusher is one ev_prepare per loop: just
 * before the loop sleeps it writes, for every connection that queued
 * output during the iteration, all of it at once, "without any need to use
 * a syscall in order to install the writable event handler" (Redis's
 * handleClientsWithPendingWrites); the write watcher only runs while a
 * socket is full. It drains its list until empty, since a write can end a
 * connection whose owner then queues output on others.
 *
 * A connect started by transport_ev_connect that fails goes on to the next
 * address the name resolved to, on a new socket, until the connect
 * deadline; only the last failure ends the connection.
 *
 * Every path that ends the connection stops the watchers and calls the
 * owner's end callback as its very last step, so the owner may free the
 * memory that holds the adapter right there.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "transport.h"
#include "transport_internal.h"

struct transport_flusher {
    struct ev_loop *loop;
    ev_prepare prep;
    transport_ev *head;
};

/* ------------------------------------------------------------------ */
/* The flusher                                                         */
/* ------------------------------------------------------------------ */

static void flush_add(transport_ev *a)
{
    transport_flusher *f = a->flusher;

    if (a->flush_queued)
        return;
    a->flush_queued = 1;
    a->flush_prev = NULL;
    a->flush_next = f->head;
    if (f->head)
        f->head->flush_prev = a;
    f->head = a;
}

static void flush_remove(transport_ev *a)
{
    transport_flusher *f = a->flusher;

    if (!a->flush_queued)
        return;
    if (a->flush_prev)
        a->flush_prev->flush_next = a->flush_next;
    else
        f->head = a->flush_next;
    if (a->flush_next)
        a->flush_next->flush_prev = a->flush_prev;
    a->flush_prev = a->flush_next = NULL;
    a->flush_queued = 0;
}

static void flush_one(transport_ev *a);

static void prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    transport_flusher *f = w->data;
    transport_ev *a;

    while ((a = f->head) != NULL) {
        flush_remove(a);
        flush_one(a);
    }
}

transport_flusher *transport_flusher_create(struct ev_loop *loop)
{
    transport_flusher *f = proto_xcalloc(1, sizeof *f);

    f->loop = loop;
    ev_prepare_init(&f->prep, prepare_cb);
    f->prep.data = f;
    /* Before the owners' own prepare watchers (a server frees closed connections there). */
    ev_set_priority(&f->prep, EV_MAXPRI);
    ev_prepare_start(loop, &f->prep);
    return f;
}

void transport_flusher_destroy(transport_flusher *f)
{
    if (f == NULL)
        return;
    ev_prepare_stop(f->loop, &f->prep);
    free(f);
}

/* ------------------------------------------------------------------ */
/* Watchers                                                            */
/* ------------------------------------------------------------------ */

/* The connect is over, one way or the other: the other addresses are not needed. */
static void forget_addresses(transport_ev *a)
{
    if (a->addrs)
        freeaddrinfo(a->addrs);
    a->addrs = NULL;
    a->addr_next = NULL;
}

static void stop_watchers(transport_ev *a)
{
    ev_io_stop(a->loop, &a->rio);
    ev_io_stop(a->loop, &a->wio);
    ev_timer_stop(a->loop, &a->timer);
    flush_remove(a);
    forget_addresses(a);
}

/*
 * The connect under way failed: start one to the next address, on a new
 * socket, within the same connect deadline. 0, or -1 when none is left.
 */
static int connect_next(transport_ev *a)
{
    int fd;

    while (a->addr_next) {
        const struct addrinfo *ai = a->addr_next;

        a->addr_next = ai->ai_next;
        if (transport__connect_one(ai, &fd) != 0)
            continue;
        ev_io_stop(a->loop, &a->rio);
        ev_io_stop(a->loop, &a->wio);
        close(a->fd);
        a->fd = fd;
        ev_io_set(&a->rio, fd, EV_READ);
        ev_io_set(&a->wio, fd, EV_WRITE);
        ev_io_start(a->loop, &a->wio);
        return 0;
    }
    return -1;
}

/* The connection ended: the owner hears it last. */
static void end(transport_ev *a, int err, const char *why)
{
    stop_watchers(a);
    a->end(a, err, why, a->arg);
}

static void end_with(transport_ev *a, int err)
{
    char why[200];

    end(a, err, transport__why(a->conn, err, why, sizeof why));
}

static void arm_timer(transport_ev *a)
{
    int64_t at = a->connect_deadline_ms < a->request_deadline_ms ? a->connect_deadline_ms
                                                                 : a->request_deadline_ms;
    double delay;

    ev_timer_stop(a->loop, &a->timer);
    if (at == INT64_MAX || a->fd < 0)
        return;
    delay = (double)(at - proto_mono_ms()) / 1000.0;
    ev_timer_set(&a->timer, delay > 0 ? delay : 0., 0.);
    ev_timer_start(a->loop, &a->timer);
}

/* Write what is queued; on a full socket wait for writability. */
static void flush_one(transport_ev *a)
{
    enum proto_conn_state st = proto_conn_state(a->conn);
    int rc;

    if (a->fd < 0 || st == PROTO_CONN_CONNECTING || st == PROTO_CONN_CLOSED)
        return;
    rc = transport__write(a->conn, &a->fd);
    if (a->fd < 0)
        return; /* its owner closed it from a callback */
    if (rc == -EAGAIN) {
        ev_io_start(a->loop, &a->wio);
        return;
    }
    if (rc != 0) {
        end_with(a, rc);
        return;
    }
    ev_io_stop(a->loop, &a->wio);
    if (proto_conn_state(a->conn) == PROTO_CONN_CLOSING && proto_conn_output_bytes(a->conn) == 0)
        end(a, 0, "closed after writing");
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    transport_ev *a = w->data;
    int rc = transport__read(a->conn, &a->fd);

    if (a->fd < 0)
        return;
    if (rc == 1)
        a->last_read = ev_now(loop);
    else if (rc == 0)
        end(a, 0, "closed by the peer");
    else if (rc != -EAGAIN)
        end_with(a, rc);
}

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    transport_ev *a = w->data;
    char why[300];
    int rc;

    if (proto_conn_state(a->conn) == PROTO_CONN_CONNECTING) {
        if ((rc = transport__connect_result(a->fd)) != 0) {
            if (connect_next(a) == 0)
                return;
            snprintf(why, sizeof why, "connect to %s: %s", proto_conn_name(a->conn),
                     strerror(-rc));
            end(a, rc, why);
            return;
        }
        forget_addresses(a);
        a->connect_deadline_ms = INT64_MAX;
        arm_timer(a);
        proto_conn_connected(a->conn);
    }
    flush_one(a);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    transport_ev *a = w->data;
    int64_t now = proto_mono_ms();
    char why[300];

    if (now >= a->connect_deadline_ms) {
        snprintf(why, sizeof why, "connect to %s timed out", proto_conn_name(a->conn));
        end(a, -ETIMEDOUT, why);
        return;
    }
    a->request_deadline_ms = proto_conn_expire(a->conn, now);
    if (a->fd >= 0)
        arm_timer(a); /* also when the timer fired a little early */
}

/* ------------------------------------------------------------------ */
/* Hooks                                                               */
/* ------------------------------------------------------------------ */

static void want_read_hook(void *data, int on)
{
    transport_ev *a = data;

    if (a->fd < 0)
        return;
    if (on)
        ev_io_start(a->loop, &a->rio);
    else
        ev_io_stop(a->loop, &a->rio);
}

static void want_write_hook(void *data)
{
    transport_ev *a = data;

    if (a->fd >= 0)
        flush_add(a);
}

static void deadline_hook(void *data, int64_t at_ms)
{
    transport_ev *a = data;

    a->request_deadline_ms = at_ms;
    arm_timer(a);
}

/* ------------------------------------------------------------------ */
/* Attach, close, detach                                               */
/* ------------------------------------------------------------------ */

void transport_ev_attach(transport_ev *a, proto_conn *conn, struct ev_loop *loop,
                        transport_flusher *f, int fd, int connect_timeout_ms,
                        transport_ev_end_cb *end_cb, void *arg)
{
    proto_conn_hooks hooks = {a, want_read_hook, want_write_hook, deadline_hook};

    memset(a, 0, sizeof *a);
    a->loop = loop;
    a->conn = conn;
    a->flusher = f;
    a->fd = fd;
    a->end = end_cb;
    a->arg = arg;
    a->connect_deadline_ms = INT64_MAX;
    a->request_deadline_ms = INT64_MAX;
    a->last_read = ev_now(loop);
    ev_io_init(&a->rio, read_cb, fd, EV_READ);
    ev_io_init(&a->wio, write_cb, fd, EV_WRITE);
    ev_init(&a->timer, timer_cb);
    a->rio.data = a->wio.data = a->timer.data = a;
    proto_conn_set_hooks(conn, &hooks);
    switch (proto_conn_state(conn)) {
    case PROTO_CONN_CONNECTING:
        /* Writability says the connect finished, either way. */
        a->connect_deadline_ms = proto_mono_ms() + connect_timeout_ms;
        arm_timer(a);
        ev_io_start(loop, &a->wio);
        break;
    case PROTO_CONN_OPEN:
        ev_io_start(loop, &a->rio);
        /* fall through */
    default:
        if (proto_conn_output_bytes(conn) > 0 || proto_conn_state(conn) == PROTO_CONN_CLOSING)
            flush_add(a);
        break;
    }
}

int transport_ev_connect(transport_ev *a, proto_conn *conn, struct ev_loop *loop,
                         transport_flusher *f, const char *addr, int connect_timeout_ms,
                         transport_ev_end_cb *end_cb, void *arg, char *why, size_t why_len)
{
    struct addrinfo *res;
    const struct addrinfo *ai;
    int fd = -1, rc;

    if ((rc = transport__resolve(addr, &res, why, why_len)) != 0)
        return rc;
    rc = -ECONNREFUSED;
    for (ai = res; ai; ai = ai->ai_next)
        if ((rc = transport__connect_one(ai, &fd)) == 0)
            break;
    if (rc != 0) {
        freeaddrinfo(res);
        snprintf(why, why_len, "connect to %s: %s", addr, strerror(-rc));
        return rc;
    }
    transport_ev_attach(a, conn, loop, f, fd, connect_timeout_ms, end_cb, arg);
    a->addrs = res;
    a->addr_next = ai->ai_next;
    return 0;
}

int transport_ev_detach(transport_ev *a)
{
    proto_conn_hooks none = {0};
    int fd = a->fd;

    if (fd < 0)
        return -1;
    stop_watchers(a);
    proto_conn_set_hooks(a->conn, &none);
    a->fd = -1;
    return fd;
}

void transport_ev_close(transport_ev *a)
{
    int fd = transport_ev_detach(a);

    if (fd >= 0)
        close(fd);
}

void transport_ev_discard(transport_ev *a, proto_conn **conn)
{
    if (!*conn)
        return;
    transport_ev_close(a);
    proto_conn_fail_all(*conn, LSMQ_ECLOSED, NULL);
    proto_conn_free(*conn);
    *conn = NULL;
}

void transport_ev_flush_now(transport_ev *a)
{
    enum proto_conn_state st;

    if (a->fd < 0)
        return;
    st = proto_conn_state(a->conn);
    if (st != PROTO_CONN_CONNECTING && st != PROTO_CONN_CLOSED)
        (void)transport__write(a->conn, &a->fd);
}

ev_tstamp transport_ev_last_read(const transport_ev *a) { return a->last_read; }
