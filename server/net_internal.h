/* Internals shared by server/net.c and server/conn.c. */
#ifndef LSMQ_SERVER_NET_INTERNAL_H
#define LSMQ_SERVER_NET_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/uio.h>

#include <uthash.h>

#include "net.h"

#define MAX_HANDLER_CODE 1024
#define IOV_BATCH 64

/* One queued output chunk: a frame prefix or a body. */
typedef struct out_chunk {
    struct out_chunk *next;
    uint8_t *data;
    size_t len;
    size_t off;      /* bytes already written */
} out_chunk;

struct conn {
    server *srv;
    uint64_t id;
    int fd;
    ev_io rio;
    ev_io wio;
    bool reading;            /* rio started */
    bool closing;            /* close once output drains */
    bool dead;               /* closed; freed at the end of the loop iteration */
    uint8_t *in;             /* input buffer */
    size_t in_len, in_cap;
    out_chunk *out_head, *out_tail;
    size_t out_bytes;        /* unsent */
    bool flush_pending;      /* on the server's flush list */
    struct conn *flush_next;
    ev_tstamp last_activity;
    char peer[64];
    uint8_t peer_ip[4];
    uint32_t peer_port;
    int language, version;
    bool in_oneway;          /* dispatching a oneway request: its replies are dropped */
    int32_t oneway_opaque;
    void *data;
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
    ev_prepare flush_prep;
    ev_async wakeup;
    ev_timer idle_timer;
    pthread_mutex_t post_lock;
    posted *post_head, *post_tail;
    conn *conns;             /* by id */
    uint64_t next_conn_id;
    conn *flush_list;
    struct {
        server_handler fn;
        void *ctx;
    } handlers[MAX_HANDLER_CODE];
    server_close_hook close_hook;
    void *close_ctx;
    server_stats stats;
};

/* conn.c */
conn *conn__new(server *s, int fd, const char *peer, const uint8_t ip[4], uint32_t port);
void conn__flush(conn *c);
void conn__close(conn *c);
void conn__free(conn *c);
/* net.c */
void server__dispatch(server *s, conn *c, proto_cmd *req);
void server__want_flush(server *s, conn *c);

#endif
