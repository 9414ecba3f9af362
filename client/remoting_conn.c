/*
 * One remoting connection's protocol state, with no event loop: the byte
 * stream in (frames cut with proto_frame_check, decoded with
 * proto_cmd_decode), the frames out, and the requests waiting for their
 * responses, matched by opaque (REMOTING.md §1.6). Like hiredis's async
 * context it asks its owner for readiness through hooks (add_read,
 * add_write, ...) and the libev adapter (adapter_ev.c) answers them.
 *
 * Frames arrive in pieces: `in` keeps the bytes of a frame not yet whole.
 * A whole frame is copied into its own exactly-sized buffer, which the
 * reply owns, because a decoded command's body points into its frame.
 *
 * Callbacks (responses, peer requests) run from rconn__feed and
 * rconn__expire. They may queue more frames on this connection but must
 * not free it; the owner frees a dead connection only after the call that
 * reported it has returned.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "client_internal.h"

#define CONNECT_TIMEOUT_MS 3000
#define READ_CHUNK 65536
#define WRITEV_MAX 64

typedef struct pending {
    int32_t opaque;
    int64_t deadline_ms;
    rpc_cb *cb;
    void *arg;
    UT_hash_handle hh;
} pending;

typedef struct out_chunk {
    struct out_chunk *next;
    uint8_t *data;
    size_t len;
} out_chunk;

struct rconn {
    int fd;
    int state;
    char addr[256];
    int64_t connect_deadline_ms;
    lsmq_buf in;
    out_chunk *out_head, *out_tail;
    size_t out_pos;      /* bytes of out_head already written */
    size_t out_bytes;
    int want_write;      /* write watcher requested */
    pending *pending;
    size_t n_pending;
    rconn_hooks ev;
    rconn_request_cb *on_request;
    void *req_arg;
};

void rpc_reply_free(rpc_reply *r)
{
    if (r == NULL)
        return;
    proto_cmd_free(r->cmd);
    free(r->frame);
    free(r);
}

rconn *rconn__new(const char *addr)
{
    rconn *c = lsmq__calloc(1, sizeof *c);

    c->fd = -1;
    c->state = RCONN_NEW;
    lsmq__strlcpy(c->addr, addr, sizeof c->addr);
    return c;
}

const char *rconn__addr(const rconn *c) { return c->addr; }
int rconn__state(const rconn *c) { return c->state; }
int rconn__fd(const rconn *c) { return c->fd; }
rconn_hooks *rconn__hooks(rconn *c) { return &c->ev; }
size_t rconn__pending(const rconn *c) { return c->n_pending; }
size_t rconn__out_bytes(const rconn *c) { return c->out_bytes; }

void rconn__set_request_cb(rconn *c, rconn_request_cb *cb, void *arg)
{
    c->on_request = cb;
    c->req_arg = arg;
}

void rconn__free(rconn *c)
{
    out_chunk *o, *next;
    pending *p, *tmp;

    if (c == NULL)
        return;
    if (c->ev.cleanup)
        c->ev.cleanup(c->ev.data);
    if (c->fd >= 0)
        close(c->fd);
    for (o = c->out_head; o; o = next) {
        next = o->next;
        free(o->data);
        free(o);
    }
    /* Requests still here were failed by fail_all; this only frees memory. */
    HASH_ITER(hh, c->pending, p, tmp) {
        HASH_DEL(c->pending, p);
        free(p);
    }
    lsmq__buf_free(&c->in);
    free(c);
}

/* ------------------------------------------------------------------ */
/* Connecting                                                          */
/* ------------------------------------------------------------------ */

/* Split "host:port" (the last colon separates, so bare IPv6 needs brackets). */
static int split_addr(const char *addr, char *host, size_t hn, char *port, size_t pn)
{
    const char *colon = strrchr(addr, ':');
    size_t hl;

    if (colon == NULL || colon == addr || colon[1] == '\0')
        return LSMQ_EINVAL;
    hl = (size_t)(colon - addr);
    if (addr[0] == '[' && hl >= 2 && addr[hl - 1] == ']') {
        addr++;
        hl -= 2;
    }
    if (hl >= hn || strlen(colon + 1) >= pn)
        return LSMQ_EINVAL;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    strcpy(port, colon + 1);
    return 0;
}

int rconn__connect(rconn *c, int64_t now_ms)
{
    struct addrinfo hints, *res = NULL;
    char host[256], port[16];
    int fd, one = 1, rc;

    if (split_addr(c->addr, host, sizeof host, port, sizeof port) != 0) {
        lsmq__error(-1, "bad address '%s' (want host:port)", c->addr);
        return LSMQ_EINVAL;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        lsmq__error(-1, "cannot resolve '%s': %s", c->addr, gai_strerror(rc));
        return -EHOSTUNREACH;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        freeaddrinfo(res);
        return rc;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    rc = connect(fd, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (rc != 0 && errno != EINPROGRESS) {
        rc = -errno;
        lsmq__error(-1, "connect to %s: %s", c->addr, strerror(-rc));
        close(fd);
        return rc;
    }
    c->fd = fd;
    c->state = RCONN_CONNECTING;
    c->connect_deadline_ms = now_ms + CONNECT_TIMEOUT_MS;
    /* Writability tells that the connect finished, either way. */
    c->want_write = 1;
    if (c->ev.add_write)
        c->ev.add_write(c->ev.data);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

/* Write what the socket takes; 0, or -errno when the connection broke. */
static int flush_out(rconn *c)
{
    while (c->out_head) {
        struct iovec iov[WRITEV_MAX];
        struct msghdr mh;
        out_chunk *o = c->out_head;
        size_t n = 0, pos = c->out_pos;
        ssize_t w;

        for (; o && n < WRITEV_MAX; o = o->next, n++) {
            iov[n].iov_base = o->data + pos;
            iov[n].iov_len = o->len - pos;
            pos = 0;
        }
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = iov;
        mh.msg_iovlen = n;
        w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -errno;
        }
        c->out_bytes -= (size_t)w;
        while (w > 0) {
            o = c->out_head;
            size_t left = o->len - c->out_pos;

            if ((size_t)w < left) {
                c->out_pos += (size_t)w;
                w = 0;
            } else {
                w -= (ssize_t)left;
                c->out_head = o->next;
                if (c->out_head == NULL)
                    c->out_tail = NULL;
                c->out_pos = 0;
                free(o->data);
                free(o);
            }
        }
    }
    if (c->out_head && !c->want_write) {
        c->want_write = 1;
        if (c->ev.add_write)
            c->ev.add_write(c->ev.data);
    } else if (!c->out_head && c->want_write) {
        c->want_write = 0;
        if (c->ev.del_write)
            c->ev.del_write(c->ev.data);
    }
    return 0;
}

void rconn__enqueue(rconn *c, uint8_t *frame, size_t len)
{
    out_chunk *o = lsmq__malloc(sizeof *o);
    int was_empty = c->out_head == NULL;

    o->next = NULL;
    o->data = frame;
    o->len = len;
    if (c->out_tail)
        c->out_tail->next = o;
    else
        c->out_head = o;
    c->out_tail = o;
    c->out_bytes += len;
    /*
     * Nothing was queued: write before the loop waits again, so the requests
     * queued in one loop iteration leave in one sendmsg; without the hook,
     * write at once. Either way no write watcher is needed unless the socket
     * is full. A failure shows up as a read error.
     */
    if (was_empty && c->state == RCONN_OPEN) {
        if (c->ev.flush_soon)
            c->ev.flush_soon(c->ev.data);
        else
            (void)flush_out(c);
    }
}

void rconn__expect(rconn *c, int32_t opaque, int64_t deadline_ms, rpc_cb *cb, void *arg)
{
    pending *p = lsmq__malloc(sizeof *p), *old = NULL;

    p->opaque = opaque;
    p->deadline_ms = deadline_ms;
    p->cb = cb;
    p->arg = arg;
    HASH_FIND_INT(c->pending, &opaque, old);
    if (old) {
        /* Opaques wrap after 2^32 requests; the old one cannot still be live. */
        HASH_DEL(c->pending, old);
        c->n_pending--;
        old->cb(-ETIMEDOUT, NULL, old->arg);
        free(old);
    }
    HASH_ADD_INT(c->pending, opaque, p);
    c->n_pending++;
}

/* ------------------------------------------------------------------ */
/* Input                                                               */
/* ------------------------------------------------------------------ */

/* Hand one whole frame (taken over) to its waiter or to the request callback. */
static int dispatch_frame(rconn *c, uint8_t *frame, size_t len)
{
    char err[256];
    proto_cmd *cmd = NULL;
    int rc = proto_cmd_decode(frame, len, &cmd, err, sizeof err);
    rpc_reply *r;

    if (rc != 0) {
        lsmq__log(LSMQ_LOG_ERROR, "%s: undecodable frame: %s", c->addr, err);
        free(frame);
        return LSMQ_ECORRUPT;
    }
    r = lsmq__malloc(sizeof *r);
    r->cmd = cmd;
    r->frame = frame;
    if (proto_cmd_is_response(cmd)) {
        pending *p = NULL;
        int32_t op = cmd->opaque;

        HASH_FIND_INT(c->pending, &op, p);
        if (p == NULL) {
            /* Late answer to a request that already timed out. */
            lsmq__log(LSMQ_LOG_DEBUG, "%s: response to unknown opaque %d", c->addr, op);
            rpc_reply_free(r);
            return 0;
        }
        HASH_DEL(c->pending, p);
        c->n_pending--;
        p->cb(0, r, p->arg);
        free(p);
        return 0;
    }
    if (c->on_request)
        c->on_request(c, r, c->req_arg);
    else
        rpc_reply_free(r);
    return 0;
}

int rconn__feed(rconn *c, const uint8_t *buf, size_t len)
{
    size_t used = 0;

    /* Fast path: whole frames straight from buf when nothing is buffered. */
    while (c->in.len == 0 && used < len) {
        size_t flen = 0;
        int rc = proto_frame_check(buf + used, len - used, PROTO_FRAME_MAX_DEFAULT, &flen);

        if (rc < 0) {
            lsmq__log(LSMQ_LOG_ERROR, "%s: bad frame length: %s", c->addr, lsmq_strerror(rc));
            return LSMQ_ECORRUPT;
        }
        if (rc == 0)
            break;
        uint8_t *frame = lsmq__malloc(flen);

        memcpy(frame, buf + used, flen);
        used += flen;
        if ((rc = dispatch_frame(c, frame, flen)) != 0)
            return rc;
    }
    if (used == len)
        return 0;
    lsmq__buf_put(&c->in, buf + used, len - used);
    size_t pos = 0;
    int rc = 0;

    for (;;) {
        size_t flen = 0;
        uint8_t *frame;

        rc = proto_frame_check(c->in.p + pos, c->in.len - pos, PROTO_FRAME_MAX_DEFAULT, &flen);
        if (rc < 0) {
            lsmq__log(LSMQ_LOG_ERROR, "%s: bad frame length: %s", c->addr, lsmq_strerror(rc));
            return LSMQ_ECORRUPT;
        }
        if (rc == 0)
            break;
        frame = lsmq__malloc(flen);
        memcpy(frame, c->in.p + pos, flen);
        pos += flen;
        if ((rc = dispatch_frame(c, frame, flen)) != 0)
            return rc;
    }
    /* One move for the partial frame left, not one per frame. */
    memmove(c->in.p, c->in.p + pos, c->in.len - pos);
    c->in.len -= pos;
    if (c->in.len == 0 && c->in.cap > 4 * READ_CHUNK)
        lsmq__buf_free(&c->in); /* no large buffer kept for an idle connection */
    return 0;
}

int rconn__on_readable(rconn *c)
{
    uint8_t buf[READ_CHUNK];

    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        int rc;

        if (n > 0) {
            if ((rc = rconn__feed(c, buf, (size_t)n)) != 0)
                return rc;
            if ((size_t)n < sizeof buf)
                return 0;
            continue;
        }
        if (n == 0)
            return -ECONNRESET;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        return -errno;
    }
}

int rconn__on_writable(rconn *c)
{
    if (c->state == RCONN_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err != 0) {
            lsmq__error(-1, "connect to %s: %s", c->addr, strerror(err));
            return -err;
        }
        c->state = RCONN_OPEN;
        if (c->ev.add_read)
            c->ev.add_read(c->ev.data);
    }
    return flush_out(c);
}

/* ------------------------------------------------------------------ */
/* Timeouts and failure                                                */
/* ------------------------------------------------------------------ */

int rconn__expire(rconn *c, int64_t now_ms)
{
    pending *p, *tmp, *due = NULL;

    HASH_ITER(hh, c->pending, p, tmp) {
        if (p->deadline_ms <= now_ms) {
            HASH_DEL(c->pending, p);
            c->n_pending--;
            /* Chain through hh.next: the entry is out of the table now. */
            p->hh.next = due;
            due = p;
        }
    }
    /* Callbacks run after the walk, since they may add requests. */
    while (due) {
        p = due;
        due = p->hh.next;
        lsmq__error(-1, "request to %s timed out", c->addr);
        p->cb(-ETIMEDOUT, NULL, p->arg);
        free(p);
    }
    if (c->state == RCONN_CONNECTING && now_ms >= c->connect_deadline_ms) {
        lsmq__error(-1, "connect to %s timed out", c->addr);
        return -ETIMEDOUT;
    }
    return 0;
}

void rconn__fail_all(rconn *c, int err)
{
    pending *all = c->pending, *p, *tmp;

    /* Detach the table first: callbacks may queue requests on c meanwhile. */
    c->pending = NULL;
    c->n_pending = 0;
    c->state = RCONN_CLOSED;
    HASH_ITER(hh, all, p, tmp) {
        HASH_DELETE(hh, all, p);
        lsmq__error(-1, "connection to %s lost: %s", c->addr, lsmq_strerror(err));
        p->cb(err, NULL, p->arg);
        free(p);
    }
}
