/*
 * One client connection of a server: the connection core (protocol/conn.h)
 * cuts and decodes frames and queues replies, the libev adapter
 * (transport/transport.h) reads, writes them just before the loop sleeps and
 * pauses reading while a slow reader's unsent output is over
 * max_pending_output. A bad frame closes this connection only, with one
 * log line. A closed connection stays in memory, unreachable through
 * server_conn_find, until the end of the loop iteration, since callbacks
 * further up the stack may still hold it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "log.h"
#include "net_internal.h"

static void request_cb(proto_conn *pc, proto_cmd *req, void *arg)
{
    conn *c = arg;

    server__dispatch(c->srv, c, req);
}

static void end_cb(transport_ev *a, int err, const char *why, void *arg)
{
    conn *c = arg;
    server *s = c->srv;

    if (err == LSMQ_ECORRUPT || err == LSMQ_ETOOBIG) {
        s->stats.bad_frames++;
        proto_log(PROTO_LOG_WARN, "%s: closing %s: %s", s->cfg.name, c->peer, why);
    } else if (err != 0) {
        proto_log(PROTO_LOG_WARN, "%s: connection %s failed: %s", s->cfg.name, c->peer, why);
    }
    server__conn_close(c);
}

conn *server__conn_new(server *s, int fd, const char *peer, const uint8_t ip[4], uint32_t port)
{
    conn *c = proto_xcalloc(1, sizeof *c);
    proto_conn_options o = {.name = peer, .max_frame = s->cfg.max_frame,
                            .max_output = s->cfg.max_pending_output};

    c->srv = s;
    c->id = s->next_conn_id++;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    memcpy(c->peer_ip, ip, 4);
    c->peer_port = port;
    c->pc = proto_conn_create(&o);
    proto_conn_set_request_cb(c->pc, request_cb, c);
    transport_ev_attach(&c->io, c->pc, s->loop, s->flusher, fd, 0, end_cb, c);
    return c;
}

uint64_t server_conn_id(const conn *c) { return c->id; }
const char *server_conn_peer(const conn *c) { return c->peer; }
int server_conn_language(const conn *c) { return c->language; }
int server_conn_version(const conn *c) { return c->version; }
void server_conn_set_data(conn *c, void *data) { c->data = data; }
void *server_conn_get_data(const conn *c) { return c->data; }

void server_conn_peer_host(const conn *c, uint8_t ip[4], uint32_t *port)
{
    memcpy(ip, c->peer_ip, 4);
    *port = c->peer_port;
}

void server__conn_close(conn *c)
{
    server *s = c->srv;

    if (proto_conn_state(c->pc) == PROTO_CONN_CLOSED)
        return;
    if (s->close_hook)
        s->close_hook(s, c, s->close_ctx);
    transport_ev_close(&c->io);
    proto_conn_fail_all(c->pc, LSMQ_ECLOSED, NULL);
    s->stats.connections_open--;
    c->reap_next = s->reap;
    s->reap = c;
}

void server__conn_reap(server *s)
{
    while (s->reap) {
        conn *c = s->reap;

        s->reap = c->reap_next;
        HASH_DEL(s->conns, c);
        proto_conn_free(c->pc);
        free(c);
    }
}

void server_conn_close_after_write(conn *c)
{
    proto_conn_close_after_write(c->pc);
}

void server_conn_close(conn *c) { server__conn_close(c); }

/* A frame over the protocol's limits is dropped with a line; closing is silent. */
static void sent(conn *c, int rc)
{
    if (rc == LSMQ_ETOOBIG)
        proto_log(PROTO_LOG_WARN, "%s: dropping an unencodable frame to %s", c->srv->cfg.name, c->peer);
}

void server_conn_reply(conn *c, int32_t opaque, proto_cmd *resp, const void *body, size_t body_len)
{
    sent(c, proto_conn_reply(c->pc, opaque, resp, (void *)body, body_len, 0));
    proto_cmd_free(resp);
}

void server_conn_reply_owned(conn *c, int32_t opaque, proto_cmd *resp, void *body, size_t body_len)
{
    sent(c, proto_conn_reply(c->pc, opaque, resp, body, body_len, PROTO_SEND_TAKE_BODY));
    proto_cmd_free(resp);
}

void server_conn_reply_code(conn *c, int32_t opaque, int32_t code, const char *remark)
{
    server_conn_reply(c, opaque, proto_cmd_response(code, opaque, remark), NULL, 0);
}

void server_conn_send_oneway(conn *c, proto_cmd *req, const void *body, size_t body_len)
{
    req->flag = PROTO_FLAG_ONEWAY;
    sent(c, proto_conn_send(c->pc, req, (void *)body, body_len, 0));
    proto_cmd_free(req);
}
