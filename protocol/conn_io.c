/*
 * The connection core's bytes (conn.h): frames in, chunks out.
 *
 * Input. Frames arrive in pieces and one read may hold many: `in` keeps
 * what has not been delivered. Its space is sized for the frame being
 * received once its length is known, so a large frame arrives in one
 * buffer, and an emptied large buffer is given back. A request is decoded
 * in place and delivered as a view; a response is given its own frame (the
 * input buffer itself when the frame is all it holds, else a copy), since
 * its callback keeps it.
 *
 * Output. Each frame is queued as chunks, the encoded prefix and the body
 * (taken over, or copied into the chunk's own allocation), and written with
 * writev by the owner; past max_output queued bytes the connection pauses
 * its input until the queue drains below half of that.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "conn_internal.h"

#define READ_CHUNK (64u << 10)

/* ------------------------------------------------------------------ */
/* Input                                                               */
/* ------------------------------------------------------------------ */

uint8_t *proto_conn_input_space(proto_conn *c, size_t *room)
{
    size_t want = READ_CHUNK, frame_len = 0;
    uint8_t *grown;

    if (proto_frame_check(c->in, c->in_len, c->max_frame, &frame_len) == 0 && frame_len > 0 &&
        frame_len > c->in_len + want)
        want = frame_len - c->in_len;
    if (c->in_cap - c->in_len < want) {
        /* The size comes from the peer: fail cleanly rather than abort. */
        if ((grown = realloc(c->in, c->in_len + want)) == NULL)
            return NULL;
        c->in = grown;
        c->in_cap = c->in_len + want;
    }
    *room = c->in_cap - c->in_len;
    return c->in + c->in_len;
}

/* Can frames be delivered in this state? */
static int accepting(const proto_conn *c)
{
    return c->state == PROTO_CONN_OPEN;
}

static int refuse(proto_conn *c, int rc, size_t frame_len)
{
    snprintf(c->error, sizeof c->error, "%s frame (%zu bytes announced)",
             rc == LSMQ_ETOOBIG ? "oversized" : "malformed", frame_len);
    return rc;
}

/* Run the request callback for req, which replies may not answer if it is oneway. */
static void deliver_request(proto_conn *c, proto_cmd *req)
{
    const proto_cmd *outer = c->current;

    if (c->on_request == NULL)
        return;
    c->current = req;
    c->on_request(c, req, c->request_arg);
    c->current = outer;
}

/*
 * A response decoded in place at in[pos..pos+len): give it its own frame.
 * Returns 0, or LSMQ_ENOMEM. *stolen tells that the input buffer went with it.
 */
static int take_response(proto_conn *c, proto_cmd *cmd, size_t pos, size_t len, int *stolen)
{
    pending *p = proto__conn_take_pending(c, cmd->opaque);
    uint8_t *frame;

    *stolen = 0;
    if (p == NULL) {
        proto_cmd_free(cmd); /* late: its request timed out */
        return 0;
    }
    if (pos == 0 && len == c->in_len) {
        frame = c->in; /* the whole buffer is this frame: hand it over, no copy */
        c->in = NULL;
        c->in_len = c->in_cap = 0;
        *stolen = 1;
    } else if ((frame = malloc(len)) != NULL) {
        memcpy(frame, c->in + pos, len);
        if (cmd->body)
            cmd->body = frame + (cmd->body - (c->in + pos));
    } else {
        char why[400];

        proto_cmd_free(cmd);
        snprintf(c->error, sizeof c->error, "no memory for a %zu-byte response", len);
        snprintf(why, sizeof why, "%s from %s", c->error, c->name);
        p->cb(LSMQ_ENOMEM, NULL, why, p->arg);
        free(p);
        return LSMQ_ENOMEM;
    }
    proto__conn_complete(c, p, cmd, frame);
    return 0;
}

int proto__conn_deliver_input(proto_conn *c)
{
    size_t pos = 0, frame_len;
    proto_cmd *cmd;
    char err[128];
    int rc = 0, stolen;

    if (c->delivering)
        return 0; /* the outer call goes on with what is here */
    c->delivering = 1;
    while (accepting(c) && c->in_len > pos) {
        frame_len = 0;
        rc = proto_frame_check(c->in + pos, c->in_len - pos, c->max_frame, &frame_len);
        if (rc == 0)
            break;
        if (rc < 0) {
            refuse(c, rc, frame_len);
            break;
        }
        cmd = NULL;
        err[0] = '\0';
        rc = proto_cmd_decode(c->in + pos, frame_len, &cmd, err, sizeof err);
        if (rc != 0) {
            snprintf(c->error, sizeof c->error, "undecodable frame: %s", err);
            break;
        }
        if (proto_cmd_is_response(cmd)) {
            rc = take_response(c, cmd, pos, frame_len, &stolen);
            if (rc != 0)
                break;
            pos = stolen ? 0 : pos + frame_len;
            continue;
        }
        deliver_request(c, cmd);
        proto_cmd_free(cmd);
        pos += frame_len;
    }
    c->delivering = 0;
    /* One move for what is left, not one per frame. */
    if (pos > 0) {
        memmove(c->in, c->in + pos, c->in_len - pos);
        c->in_len -= pos;
    }
    if (c->in_len == 0 && c->in_cap > 4 * READ_CHUNK) {
        free(c->in); /* no large buffer kept for an idle connection */
        c->in = NULL;
        c->in_cap = 0;
    }
    return rc < 0 ? rc : 0;
}

int proto_conn_input_done(proto_conn *c, size_t n)
{
    c->in_len += n;
    return proto__conn_deliver_input(c);
}

int proto_conn_feed(proto_conn *c, const void *bytes, size_t len)
{
    const uint8_t *p = bytes;
    size_t room, n;
    uint8_t *space;
    int rc;

    while (len > 0) {
        if ((space = proto_conn_input_space(c, &room)) == NULL)
            return LSMQ_ENOMEM;
        n = len < room ? len : room;
        memcpy(space, p, n);
        if ((rc = proto_conn_input_done(c, n)) != 0)
            return rc;
        p += n;
        len -= n;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

static int can_send(const proto_conn *c)
{
    return c->state != PROTO_CONN_CLOSING && c->state != PROTO_CONN_CLOSED;
}

static void queue_chunk(proto_conn *c, out_chunk *o)
{
    int was_empty = c->out_head == NULL;

    o->next = NULL;
    o->off = 0;
    if (c->out_tail)
        c->out_tail->next = o;
    else
        c->out_head = o;
    c->out_tail = o;
    c->out_bytes += o->len;
    if (was_empty && c->state != PROTO_CONN_CONNECTING && c->hooks.want_write)
        c->hooks.want_write(c->hooks.data);
}

static void queue_owned(proto_conn *c, uint8_t *data, size_t len)
{
    out_chunk *o = proto_xmalloc(sizeof *o);

    o->data = data;
    o->len = len;
    queue_chunk(c, o);
}

static void queue_copy(proto_conn *c, const void *data, size_t len)
{
    out_chunk *o = proto_xmalloc(sizeof *o + len);

    memcpy(o->copy, data, len);
    o->data = o->copy;
    o->len = len;
    queue_chunk(c, o);
}

/* Past the limit, stop taking input until the peer has read its answers. */
static void check_backlog(proto_conn *c)
{
    if (c->state != PROTO_CONN_OPEN || c->max_output == 0 || c->out_bytes <= c->max_output)
        return;
    c->state = PROTO_CONN_PAUSED;
    if (c->hooks.want_read)
        c->hooks.want_read(c->hooks.data, 0);
}

int proto_conn_send(proto_conn *c, const proto_cmd *cmd, void *body, size_t body_len, int flags)
{
    int take = (flags & PROTO_SEND_TAKE_BODY) != 0;
    uint8_t *prefix = NULL;
    size_t prefix_len = 0;
    int rc = can_send(c) ? proto_cmd_encode_prefix(cmd, body_len, &prefix, &prefix_len)
                         : LSMQ_ECLOSED;

    if (rc != 0) {
        if (take)
            free(body);
        return rc;
    }
    queue_owned(c, prefix, prefix_len);
    if (body_len > 0 && take)
        queue_owned(c, body, body_len);
    else if (body_len > 0)
        queue_copy(c, body, body_len);
    else if (take)
        free(body);
    check_backlog(c);
    return 0;
}

int proto_conn_reply(proto_conn *c, int32_t opaque, proto_cmd *resp, void *body,
                     size_t body_len, int flags)
{
    /* The sender of a oneway request expects no answer (REMOTING.md §1.6). */
    if (c->current && proto_cmd_is_oneway(c->current) && c->current->opaque == opaque) {
        if (flags & PROTO_SEND_TAKE_BODY)
            free(body);
        return 0;
    }
    resp->opaque = opaque;
    resp->flag |= PROTO_FLAG_RESPONSE;
    return proto_conn_send(c, resp, body, body_len, flags);
}

int proto_conn_send_frame(proto_conn *c, uint8_t *frame, size_t len)
{
    if (!can_send(c)) {
        free(frame);
        return LSMQ_ECLOSED;
    }
    queue_owned(c, frame, len);
    check_backlog(c);
    return 0;
}

size_t proto_conn_output_iov(const proto_conn *c, struct iovec *iov, size_t max)
{
    const out_chunk *o;
    size_t n = 0;

    for (o = c->out_head; o && n < max; o = o->next, n++) {
        iov[n].iov_base = o->data + o->off;
        iov[n].iov_len = o->len - o->off;
    }
    return n;
}

size_t proto_conn_output_bytes(const proto_conn *c) { return c->out_bytes; }

int proto_conn_output_done(proto_conn *c, size_t n)
{
    out_chunk *o;
    size_t left;

    c->out_bytes -= n;
    while (n > 0 && (o = c->out_head) != NULL) {
        left = o->len - o->off;
        if (n < left) {
            o->off += n;
            break;
        }
        n -= left;
        c->out_head = o->next;
        if (c->out_head == NULL)
            c->out_tail = NULL;
        if (o->data != o->copy)
            free(o->data);
        free(o);
    }
    if (c->state != PROTO_CONN_PAUSED || c->out_bytes > c->max_output / 2)
        return 0;
    c->state = PROTO_CONN_OPEN;
    if (c->hooks.want_read)
        c->hooks.want_read(c->hooks.data, 1);
    return proto__conn_deliver_input(c); /* frames that arrived while paused */
}
