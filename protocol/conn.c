/*
 * The connection core's states, our requests and their deadlines
 * (conn.h). Requests waiting for a response are in a hash by opaque, to
 * match responses, and in a list ordered by deadline, to expire them from
 * its head; a new request goes in from the tail, where requests with equal
 * timeouts belong, so keeping the order costs nothing in the usual case.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "conn_internal.h"

/* ------------------------------------------------------------------ */
/* Life                                                                */
/* ------------------------------------------------------------------ */

proto_conn *proto_conn_create(const proto_conn_options *opts)
{
    proto_conn *c = proto_xcalloc(1, sizeof *c);

    c->name = proto_xstrdup(opts->name ? opts->name : "?");
    c->max_frame = opts->max_frame ? opts->max_frame : PROTO_FRAME_MAX_DEFAULT;
    c->max_output = opts->max_output;
    c->state = opts->connecting ? PROTO_CONN_CONNECTING : PROTO_CONN_OPEN;
    c->timer_at = INT64_MAX;
    c->next_opaque = 1;
    return c;
}

void proto_conn_free(proto_conn *c)
{
    out_chunk *o, *next;
    pending *p, *tmp;

    if (c == NULL)
        return;
    for (o = c->out_head; o; o = next) {
        next = o->next;
        if (o->data != o->copy)
            free(o->data);
        free(o);
    }
    /* Requests still here were never failed: the owner chose to drop them. */
    HASH_ITER(hh, c->by_opaque, p, tmp) {
        HASH_DEL(c->by_opaque, p);
        free(p);
    }
    free(c->in);
    free(c->name);
    free(c);
}

void proto_conn_set_hooks(proto_conn *c, const proto_conn_hooks *hooks)
{
    c->hooks = *hooks;
}

void proto_conn_set_request_cb(proto_conn *c, proto_request_cb *cb, void *arg)
{
    c->on_request = cb;
    c->request_arg = arg;
}

enum proto_conn_state proto_conn_state(const proto_conn *c) { return c->state; }
const char *proto_conn_name(const proto_conn *c) { return c->name; }
const char *proto_conn_error(const proto_conn *c) { return c->error; }
size_t proto_conn_pending(const proto_conn *c) { return c->n_pending; }

void proto_conn_connected(proto_conn *c)
{
    if (c->state != PROTO_CONN_CONNECTING)
        return;
    c->state = PROTO_CONN_OPEN;
    if (c->hooks.want_read)
        c->hooks.want_read(c->hooks.data, 1);
    if (c->out_head && c->hooks.want_write)
        c->hooks.want_write(c->hooks.data);
}

void proto_conn_close_after_write(proto_conn *c)
{
    if (c->state == PROTO_CONN_CLOSING || c->state == PROTO_CONN_CLOSED)
        return;
    c->state = PROTO_CONN_CLOSING;
    if (c->hooks.want_read)
        c->hooks.want_read(c->hooks.data, 0);
    /* Even with nothing queued: the owner learns there that it may close. */
    if (c->hooks.want_write)
        c->hooks.want_write(c->hooks.data);
}

/* ------------------------------------------------------------------ */
/* Waiting requests                                                    */
/* ------------------------------------------------------------------ */

static void list_remove(proto_conn *c, pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        c->first = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        c->last = p->prev;
    p->prev = p->next = NULL;
}

/* Out of the hash and the list; the caller completes and frees it. */
static void unlink_pending(proto_conn *c, pending *p)
{
    HASH_DEL(c->by_opaque, p);
    list_remove(c, p);
    c->n_pending--;
}

/* Tell the owner when the earliest deadline moved earlier (or went away). */
static void retime(proto_conn *c)
{
    int64_t at = c->first ? c->first->deadline_ms : INT64_MAX;

    if (at == c->timer_at)
        return;
    c->timer_at = at;
    if (c->hooks.deadline)
        c->hooks.deadline(c->hooks.data, at);
}

void proto_conn_expect(proto_conn *c, int32_t opaque, int64_t deadline_ms, proto_reply_cb *cb,
                       void *arg)
{
    pending *p, *old = NULL, *at;
    char why[200];

    if (c->state == PROTO_CONN_CLOSED) {
        snprintf(why, sizeof why, "connection to %s is closed", c->name);
        cb(LSMQ_ECLOSED, NULL, why, arg);
        return;
    }
    HASH_FIND_INT(c->by_opaque, &opaque, old);
    if (old) {
        /* Opaques wrap after 2^32 requests; the old one cannot still be live. */
        unlink_pending(c, old);
        snprintf(why, sizeof why, "request to %s timed out", c->name);
        old->cb(-ETIMEDOUT, NULL, why, old->arg);
        free(old);
    }
    p = proto_xcalloc(1, sizeof *p);
    p->opaque = opaque;
    p->deadline_ms = deadline_ms;
    p->cb = cb;
    p->arg = arg;
    HASH_ADD_INT(c->by_opaque, opaque, p);
    for (at = c->last; at && at->deadline_ms > deadline_ms; at = at->prev)
        ;
    p->prev = at;
    p->next = at ? at->next : c->first;
    if (p->next)
        p->next->prev = p;
    else
        c->last = p;
    if (at)
        at->next = p;
    else
        c->first = p;
    c->n_pending++;
    if (deadline_ms < c->timer_at)
        retime(c);
}

pending *proto__conn_take_pending(proto_conn *c, int32_t opaque)
{
    pending *p = NULL;

    HASH_FIND_INT(c->by_opaque, &opaque, p);
    if (p)
        unlink_pending(c, p);
    return p;
}

void proto__conn_complete(proto_conn *c, pending *p, proto_cmd *cmd, uint8_t *frame)
{
    proto_reply *r = proto_xmalloc(sizeof *r);

    r->cmd = cmd;
    r->frame = frame;
    p->cb(0, r, NULL, p->arg);
    free(p);
}

int proto_conn_request(proto_conn *c, proto_cmd *req, const void *body, size_t body_len,
                       int64_t deadline_ms, proto_reply_cb *cb, void *arg)
{
    int32_t flag = req->flag;
    uint8_t *frame;
    size_t len;
    int rc;

    if (c->state == PROTO_CONN_CLOSING || c->state == PROTO_CONN_CLOSED)
        return LSMQ_ECLOSED;
    req->opaque = c->next_opaque++;
    if (c->next_opaque <= 0)
        c->next_opaque = 1;
    if (cb == NULL)
        req->flag |= PROTO_FLAG_ONEWAY;
    rc = proto_cmd_encode(req, body, body_len, &frame, &len);
    req->flag = flag;
    if (rc != 0)
        return rc;
    if (cb)
        proto_conn_expect(c, req->opaque, deadline_ms, cb, arg);
    return proto_conn_send_frame(c, frame, len);
}

int64_t proto_conn_expire(proto_conn *c, int64_t now_ms)
{
    pending *due = NULL, *p;
    char why[200];

    /* Detach first: callbacks may send new requests meanwhile. */
    while (c->first && c->first->deadline_ms <= now_ms) {
        p = c->first;
        unlink_pending(c, p);
        p->next = due;
        due = p;
    }
    /* The new deadline goes to the owner before callbacks can add earlier ones. */
    retime(c);
    snprintf(why, sizeof why, "request to %s timed out", c->name);
    while (due) {
        p = due;
        due = p->next;
        p->cb(-ETIMEDOUT, NULL, why, p->arg);
        free(p);
    }
    return c->timer_at;
}

void proto_conn_fail_all(proto_conn *c, int err, const char *why)
{
    pending *all = c->first, *p;
    char text[256];

    if (c->state == PROTO_CONN_CLOSED)
        return;
    c->state = PROTO_CONN_CLOSED;
    if (why == NULL) {
        snprintf(text, sizeof text, "connection to %s closed: %s", c->name, lsmq_strerror(err));
        why = text;
    }
    /* Detach everything first: callbacks may try to send (and are refused). */
    HASH_CLEAR(hh, c->by_opaque);
    c->first = c->last = NULL;
    c->n_pending = 0;
    retime(c);
    while (all) {
        p = all;
        all = p->next;
        p->cb(err, NULL, why, p->arg);
        free(p);
    }
}

void proto_reply_free(proto_reply *r)
{
    if (r == NULL)
        return;
    proto_cmd_free(r->cmd);
    free(r->frame);
    free(r);
}
