/*
 * The blocking adapter of a connection core (transport.h): hiredis's
 * blocking context. A call queues the request, then alternates poll,
 * write and read on the socket until the core has completed the request:
 * with its response, or with -ETIMEDOUT when the deadline passes (the core
 * expires it by the clock this file passes in). Whatever else arrives goes
 * through the core as usual: late responses are dropped, the peer's own
 * requests go to the connection's request callback.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "transport.h"
#include "transport_internal.h"

struct transport_sync {
    proto_conn *conn;
    int fd;
    char why[256];
};

/* Where a call's completion lands. */
typedef struct call_slot {
    int done;
    int rc;
    proto_reply *reply;
    char why[256];
} call_slot;

transport_sync *transport_sync_adopt(proto_conn *conn, int fd)
{
    transport_sync *s = proto_xcalloc(1, sizeof *s);
    proto_conn_hooks none = {0};

    proto_conn_set_hooks(conn, &none); /* nothing to arm: this file polls */
    s->conn = conn;
    s->fd = fd;
    return s;
}

int transport_sync_connect(const char *addr, int64_t deadline_ms, transport_sync **out,
                          char *why, size_t why_len)
{
    proto_conn_options o = {.name = addr};
    int fd = -1, rc;

    *out = NULL;
    if ((rc = transport_connect_wait(addr, deadline_ms, &fd, why, why_len)) != 0)
        return rc;
    *out = transport_sync_adopt(proto_conn_create(&o), fd);
    return 0;
}

void transport_sync_close(transport_sync *s)
{
    if (s == NULL)
        return;
    proto_conn_fail_all(s->conn, LSMQ_ECLOSED, NULL);
    proto_conn_free(s->conn);
    if (s->fd >= 0)
        close(s->fd);
    free(s);
}

proto_conn *transport_sync_conn(transport_sync *s) { return s->conn; }
const char *transport_sync_why(const transport_sync *s) { return s->why; }

static void call_cb(int rc, proto_reply *reply, const char *why, void *arg)
{
    call_slot *slot = arg;

    slot->done = 1;
    slot->rc = rc;
    slot->reply = reply;
    snprintf(slot->why, sizeof slot->why, "%s", why ? why : "");
}

/* The connection cannot go on: say why, and fail what waits on it. */
static int broken(transport_sync *s, int rc, const char *why)
{
    char text[200];

    if (why == NULL)
        why = transport__why(s->conn, rc, text, sizeof text);
    snprintf(s->why, sizeof s->why, "%s", why);
    proto_conn_fail_all(s->conn, rc, s->why);
    return rc;
}

/*
 * Move bytes until *done, or until nothing is left to write when done is
 * NULL. The deadline bounds every wait; at it, the core expires what is due.
 */
static int pump(transport_sync *s, const int *done, int64_t deadline_ms)
{
    for (;;) {
        int out = proto_conn_output_bytes(s->conn) > 0;
        int rc;

        if (done ? *done : !out)
            return 0;
        if (proto_conn_state(s->conn) == PROTO_CONN_CLOSED)
            return LSMQ_ECLOSED;
        rc = transport__wait_fd(s->fd, (short)(POLLIN | (out ? POLLOUT : 0)), deadline_ms);
        if (rc == -ETIMEDOUT) {
            if (done == NULL)
                return broken(s, rc, "write timed out");
            proto_conn_expire(s->conn, proto_mono_ms());
            continue;
        }
        if (rc != 0)
            return broken(s, rc, NULL);
        if (out && (rc = transport__write(s->conn, &s->fd)) != 0 && rc != -EAGAIN)
            return broken(s, rc, NULL);
        rc = transport__read(s->conn, &s->fd);
        if (rc == 0)
            return broken(s, -ECONNRESET, "connection closed by the peer");
        if (rc < 0 && rc != -EAGAIN)
            return broken(s, rc, NULL);
    }
}

int transport_sync_call(transport_sync *s, const proto_cmd *req, const void *body,
                       size_t body_len, int64_t deadline_ms, proto_reply **reply)
{
    call_slot slot = {0};
    uint8_t *frame;
    size_t len;
    int rc;

    *reply = NULL;
    s->why[0] = '\0';
    if ((rc = proto_cmd_encode(req, body, body_len, &frame, &len)) != 0) {
        snprintf(s->why, sizeof s->why, "the request does not encode: %s", lsmq_strerror(rc));
        return rc;
    }
    proto_conn_expect(s->conn, req->opaque, deadline_ms, call_cb, &slot);
    if (slot.done) { /* the connection was closed already */
        free(frame);
        snprintf(s->why, sizeof s->why, "%s", slot.why);
        return slot.rc;
    }
    if ((rc = proto_conn_send_frame(s->conn, frame, len)) != 0)
        return broken(s, rc, "the connection is closed");
    (void)pump(s, &slot.done, deadline_ms);
    if (!slot.done) /* pump failed the connection, and with it the request */
        return broken(s, LSMQ_ECLOSED, NULL);
    if (slot.rc != 0) {
        if (s->why[0] == '\0')
            snprintf(s->why, sizeof s->why, "%s", slot.why);
        return slot.rc;
    }
    *reply = slot.reply;
    return 0;
}

int transport_sync_flush(transport_sync *s, int64_t deadline_ms)
{
    s->why[0] = '\0';
    return pump(s, NULL, deadline_ms);
}
