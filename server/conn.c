/*
 * One client connection: reads bytes as they come, cuts them into frames
 * (a frame may arrive in many pieces, and one read may hold many frames),
 * decodes and dispatches each, and queues replies as chunks written with
 * writev. A connection whose unsent output passes max_pending_output stops
 * being read until it drains below half of that, so a slow reader cannot
 * make the broker buffer without bound. A bad frame closes this connection
 * only, with one log line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "net_internal.h"

#define READ_CHUNK (64u << 10)

static void read_cb(struct ev_loop *loop, ev_io *w, int revents);
static void write_cb(struct ev_loop *loop, ev_io *w, int revents);
static void process_input(conn *c);

conn *conn__new(server *s, int fd, const char *peer, const uint8_t ip[4], uint32_t port)
{
    conn *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    c->srv = s;
    c->id = s->next_conn_id++;
    c->fd = fd;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    memcpy(c->peer_ip, ip, 4);
    c->peer_port = port;
    c->last_activity = ev_now(s->loop);
    ev_io_init(&c->rio, read_cb, fd, EV_READ);
    ev_io_init(&c->wio, write_cb, fd, EV_WRITE);
    ev_io_start(s->loop, &c->rio);
    c->reading = true;
    return c;
}

uint64_t conn_id(const conn *c) { return c->id; }
const char *conn_peer(const conn *c) { return c->peer; }
int conn_language(const conn *c) { return c->language; }
int conn_version(const conn *c) { return c->version; }
void conn_set_data(conn *c, void *data) { c->data = data; }
void *conn_get_data(const conn *c) { return c->data; }

void conn_peer_host(const conn *c, uint8_t ip[4], uint32_t *port)
{
    memcpy(ip, c->peer_ip, 4);
    *port = c->peer_port;
}

static void set_reading(conn *c, bool on)
{
    if (on == c->reading || c->dead)
        return;
    if (on)
        ev_io_start(c->srv->loop, &c->rio);
    else
        ev_io_stop(c->srv->loop, &c->rio);
    c->reading = on;
}

void conn__close(conn *c)
{
    if (c->dead)
        return;
    server *s = c->srv;
    if (s->close_hook)
        s->close_hook(s, c, s->close_ctx);
    ev_io_stop(s->loop, &c->rio);
    ev_io_stop(s->loop, &c->wio);
    close(c->fd);
    c->fd = -1;
    c->dead = true;
    c->reading = false;
    s->stats.connections_open--;
}

void conn__free(conn *c)
{
    out_chunk *o = c->out_head;
    while (o) {
        out_chunk *next = o->next;
        free(o->data);
        free(o);
        o = next;
    }
    free(c->in);
    free(c);
}

void conn_close_after_write(conn *c)
{
    c->closing = true;
    set_reading(c, false);
    server__want_flush(c->srv, c);
}

/* Write as much queued output as the socket takes. */
void conn__flush(conn *c)
{
    while (c->out_head && !c->dead) {
        struct iovec iov[IOV_BATCH];
        int n = 0;
        for (out_chunk *o = c->out_head; o && n < IOV_BATCH; o = o->next, n++) {
            iov[n].iov_base = o->data + o->off;
            iov[n].iov_len = o->len - o->off;
        }
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                ev_io_start(c->srv->loop, &c->wio);
                return;
            }
            lsmq_log("%s: write to %s failed: %s", c->srv->cfg.name, c->peer, strerror(errno));
            conn__close(c);
            return;
        }
        c->out_bytes -= (size_t)w;
        size_t left = (size_t)w;
        while (left > 0) {
            out_chunk *o = c->out_head;
            size_t avail = o->len - o->off;
            if (left < avail) {
                o->off += left;
                break;
            }
            left -= avail;
            c->out_head = o->next;
            if (!c->out_head)
                c->out_tail = NULL;
            free(o->data);
            free(o);
        }
    }
    if (c->dead)
        return;
    ev_io_stop(c->srv->loop, &c->wio);
    if (c->closing) {
        conn__close(c);
        return;
    }
    if (!c->reading && c->out_bytes <= c->srv->cfg.max_pending_output / 2) {
        set_reading(c, true);
        process_input(c); /* frames that arrived while reading was paused */
    }
}

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    conn *c = (conn *)((char *)w - offsetof(conn, wio));
    conn__flush(c);
}

static void queue_chunk(conn *c, uint8_t *data, size_t len)
{
    out_chunk *o = malloc(sizeof *o);
    if (!o)
        abort();
    o->next = NULL;
    o->data = data;
    o->len = len;
    o->off = 0;
    if (c->out_tail)
        c->out_tail->next = o;
    else
        c->out_head = o;
    c->out_tail = o;
    c->out_bytes += len;
}

static void queue_frame(conn *c, proto_cmd *cmd, void *body, size_t body_len, bool owned)
{
    uint8_t *prefix = NULL;
    size_t prefix_len = 0;
    int rc = proto_cmd_encode_prefix(cmd, body_len, &prefix, &prefix_len);
    proto_cmd_free(cmd);
    if (rc != 0) {
        lsmq_log("%s: dropping an unencodable frame to %s", c->srv->cfg.name, c->peer);
        if (owned)
            free(body);
        return;
    }
    queue_chunk(c, prefix, prefix_len);
    if (body_len) {
        uint8_t *data = owned ? body : malloc(body_len);
        if (!data)
            abort();
        if (!owned)
            memcpy(data, body, body_len);
        queue_chunk(c, data, body_len);
    } else if (owned) {
        free(body);
    }
    server__want_flush(c->srv, c);
    if (c->out_bytes > c->srv->cfg.max_pending_output)
        set_reading(c, false); /* back-pressure: resume once drained */
}

static void reply(conn *c, int32_t opaque, proto_cmd *resp, void *body, size_t len, bool owned)
{
    if (c->dead || c->closing || (c->in_oneway && opaque == c->oneway_opaque)) {
        proto_cmd_free(resp);
        if (owned)
            free(body);
        return;
    }
    resp->opaque = opaque;
    resp->flag |= PROTO_FLAG_RESPONSE;
    queue_frame(c, resp, body, len, owned);
}

void conn_reply(conn *c, int32_t opaque, proto_cmd *resp, const void *body, size_t body_len)
{
    reply(c, opaque, resp, (void *)body, body_len, false);
}

void conn_reply_owned(conn *c, int32_t opaque, proto_cmd *resp, void *body, size_t body_len)
{
    reply(c, opaque, resp, body, body_len, true);
}

void conn_reply_code(conn *c, int32_t opaque, int32_t code, const char *remark)
{
    reply(c, opaque, proto_cmd_response(code, opaque, remark), NULL, 0, false);
}

void conn_send_oneway(conn *c, proto_cmd *req, const void *body, size_t body_len)
{
    if (c->dead || c->closing) {
        proto_cmd_free(req);
        return;
    }
    req->flag = PROTO_FLAG_ONEWAY;
    queue_frame(c, req, (void *)body, body_len, false);
}

/* Decode and dispatch every whole frame in the input buffer. */
static void process_input(conn *c)
{
    server *s = c->srv;
    size_t pos = 0;
    while (!c->dead && !c->closing && c->reading) {
        size_t frame_len = 0;
        int rc = proto_frame_check(c->in + pos, c->in_len - pos, s->cfg.max_frame, &frame_len);
        if (rc == 0)
            break;
        if (rc < 0) {
            s->stats.bad_frames++;
            lsmq_log("%s: closing %s: %s frame (%zu bytes announced)", s->cfg.name, c->peer,
                     rc == LSMQ_ETOOBIG ? "oversized" : "malformed", frame_len);
            conn__close(c);
            return;
        }
        proto_cmd *cmd = NULL;
        char err[128] = "";
        if (proto_cmd_decode(c->in + pos, frame_len, &cmd, err, sizeof err) != 0) {
            s->stats.bad_frames++;
            lsmq_log("%s: closing %s: undecodable frame: %s", s->cfg.name, c->peer, err);
            conn__close(c);
            return;
        }
        server__dispatch(s, c, cmd);
        proto_cmd_free(cmd);
        pos += frame_len;
    }
    if (c->dead)
        return;
    if (pos > 0) {
        memmove(c->in, c->in + pos, c->in_len - pos);
        c->in_len -= pos;
    }
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    conn *c = (conn *)((char *)w - offsetof(conn, rio));
    server *s = c->srv;
    /* Size the buffer for the frame being received, once its length is known. */
    size_t want = READ_CHUNK;
    size_t frame_len = 0;
    if (proto_frame_check(c->in, c->in_len, s->cfg.max_frame, &frame_len) == 0 && frame_len > 0 &&
        frame_len > c->in_len + want)
        want = frame_len - c->in_len;
    if (c->in_cap - c->in_len < want) {
        size_t cap = c->in_len + want;
        uint8_t *nb = realloc(c->in, cap);
        if (!nb)
            abort();
        c->in = nb;
        c->in_cap = cap;
    }
    ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
    if (n == 0) {
        conn__close(c);
        return;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            lsmq_log("%s: read from %s failed: %s", s->cfg.name, c->peer, strerror(errno));
            conn__close(c);
        }
        return;
    }
    c->in_len += (size_t)n;
    c->last_activity = ev_now(loop);
    process_input(c);
    /* Give back a big buffer once the large frame has gone. */
    if (!c->dead && c->in_len == 0 && c->in_cap > 4 * READ_CHUNK) {
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
}
