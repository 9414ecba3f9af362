/*
 * server/net: the remoting transport on libev. One loop thread accepts
 * connections, reads frames (partial reads, pipelined requests), decodes
 * them and dispatches each request to the handler registered for its code;
 * replies are queued on the connection and written with writev just before
 * the loop sleeps. Unknown codes get REQUEST_CODE_NOT_SUPPORTED; oneway
 * requests never get a reply.
 *
 * Threads: everything here runs on the loop thread except server_post,
 * which any thread may call to run a function on the loop thread (how the
 * store writer's completions come back).
 *
 * Lifetimes: a request (proto_cmd and its body) is valid only during the
 * handler call. A handler that answers later keeps the connection's id
 * (server_conn_id) and the request's opaque, and finds the connection again with
 * server_conn_find, which returns NULL once it has closed.
 */
#ifndef LSMQ_SERVER_NET_H
#define LSMQ_SERVER_NET_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>

#include "remoting.h"
#include "transport.h"

typedef struct server server;
typedef struct conn conn;

typedef struct server_config {
    size_t max_frame;          /* default PROTO_FRAME_MAX_DEFAULT */
    size_t max_pending_output; /* stop reading a connection past this; default 16 MiB */
    double idle_timeout_s;     /* close connections idle this long (nothing in flight); 120 */
    const char *name;          /* for log lines: "broker", "namesrv" */
    /* The loop's flusher (transport.h: one per loop) when another server on
     * the same loop made it and outlives this one; NULL: make one. */
    transport_flusher *flusher;
} server_config;

void server_config_init(server_config *c);

typedef void (*server_handler)(server *s, conn *c, proto_cmd *req, void *ctx);
typedef void (*server_close_hook)(server *s, conn *c, void *ctx);

int server_create(struct ev_loop *loop, const server_config *cfg, server **out);
/* The flusher of the server's loop, for other connections on that loop. */
transport_flusher *server_flusher(server *s);
/* Stop listening, close every connection (after flushing what can be written) and free. */
void server_destroy(server *s);

/* Listen on host:port (port 0 = any; the bound port goes to *bound_port). */
int server_listen(server *s, const char *host, int port, int *bound_port);
/* Stop accepting new connections (graceful shutdown, step one). */
void server_stop_listening(server *s);

void server_register(server *s, int code, server_handler fn, void *ctx);
/* Forget every handler and the close hook (a broker built again registers its own). */
void server_clear_handlers(server *s);
/* Called on the loop thread when a connection closes, before it is freed. */
void server_on_close(server *s, server_close_hook fn, void *ctx);

struct ev_loop *server_loop(server *s);

/* Run fn(arg) on the loop thread soon. Any thread. */
void server_post(server *s, void (*fn)(void *arg), void *arg);
/* Run everything posted so far, now (loop thread; for orderly shutdown). */
void server_run_posted(server *s);

/* Connections. */
uint64_t server_conn_id(const conn *c);
conn *server_conn_find(server *s, uint64_t id);
/* "ip:port" of the peer; valid while the connection lives. */
const char *server_conn_peer(const conn *c);
/* Peer address as a record host (IPv4; IPv6 peers map to 0.0.0.0). */
void server_conn_peer_host(const conn *c, uint8_t ip[4], uint32_t *port);
int server_conn_language(const conn *c);  /* of the last request seen */
int server_conn_version(const conn *c);
/* Per-connection slot for the application (e.g. the client id from a heartbeat). */
void server_conn_set_data(conn *c, void *data);
void *server_conn_get_data(const conn *c);

/*
 * Queue a reply to the request with `opaque` (resp's opaque and response
 * flag are set here). The body is copied. Frees resp. Does nothing for a
 * connection that is closing.
 */
void server_conn_reply(conn *c, int32_t opaque, proto_cmd *resp, const void *body, size_t body_len);
/* The same, taking ownership of a malloc'ed body (no copy): pull responses. */
void server_conn_reply_owned(conn *c, int32_t opaque, proto_cmd *resp, void *body, size_t body_len);
/* Reply with just a code and remark. */
void server_conn_reply_code(conn *c, int32_t opaque, int32_t code, const char *remark);

/* Send a server-initiated oneway request (e.g. NOTIFY_CONSUMER_IDS_CHANGED). Frees req. */
void server_conn_send_oneway(conn *c, proto_cmd *req, const void *body, size_t body_len);

/* Close after the queued output is written. */
void server_conn_close_after_write(conn *c);
/* Close now, dropping what is queued (a peer that stopped answering); the
 * close hook runs. Safe in the connection's own handlers. */
void server_conn_close(conn *c);

/* Counters for stats. */
typedef struct server_stats {
    uint64_t connections_open;
    uint64_t connections_total;
    uint64_t requests;
    uint64_t bad_frames;
} server_stats;
void server_get_stats(server *s, server_stats *out);

#endif
