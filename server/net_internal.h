/* Internals shared by server/net.c and server/conn.c. */
#ifndef LSMQ_SERVER_NET_INTERNAL_H
#define LSMQ_SERVER_NET_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include <uthash.h>

#include "net.h"
#include "transport.h"

#define MAX_HANDLER_CODE 1024

/*
 * One accepted connection: the protocol state is the core's (protocol/
 * conn.h), whose state enum is the connection's state; the socket is driven
 * by the libev adapter embedded here.
 */
struct conn {
    server *srv;
    uint64_t id;
    proto_conn *pc;
    transport_ev io;
    char peer[64];
    uint8_t peer_ip[4];
    uint32_t peer_port;
    int language, version;   /* of the last request seen */
    void *data;
    struct conn *reap_next;  /* closed: freed before the loop sleeps */
    UT_hash_handle hh;       /* by id */
};

typedef struct posted {
    struct posted *next;
    void (*fn)(void *);
    void *arg;
} posted;

struct server {
    struct ev_loop *loop;
    server_config cfg;
    int listen_fd;
    ev_io accept_io;
    bool listening;
    transport_flusher *flusher;
    bool owns_flusher;       /* made it (else server_config's, another server's) */
    ev_prepare reap_prep;    /* frees closed connections, after the flusher */
    ev_async wakeup;
    ev_timer idle_timer;
    pthread_mutex_t post_lock;
    posted *post_head, *post_tail;
    conn *conns;             /* by id */
    conn *reap;              /* closed, not yet freed */
    uint64_t next_conn_id;
    struct {
        server_handler fn;
        void *ctx;
    } handlers[MAX_HANDLER_CODE];
    server_close_hook close_hook;
    void *close_ctx;
    server_stats stats;
};

/* conn.c */
conn *server__conn_new(server *s, int fd, const char *peer, const uint8_t ip[4], uint32_t port);
/* Close now: the close hook runs, pending output is dropped, memory goes at reap time. */
void server__conn_close(conn *c);
/* Free the connections closed so far. */
void server__conn_reap(server *s);
/* net.c */
void server__dispatch(server *s, conn *c, proto_cmd *req);

#endif
