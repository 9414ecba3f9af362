/*
 * The connection core's state, shared by conn.c (states, our requests,
 * deadlines) and conn_io.c (frames in, chunks out). Internal to protocol/.
 */
#ifndef LSMQ_PROTO_CONN_INTERNAL_H
#define LSMQ_PROTO_CONN_INTERNAL_H

#include <uthash.h>

#include "conn.h"

/* A request of ours waiting for its response. */
typedef struct pending {
    int32_t opaque;
    int64_t deadline_ms;
    proto_reply_cb *cb;
    void *arg;
    struct pending *prev, *next; /* the deadline list, earliest first */
    UT_hash_handle hh;           /* by opaque */
} pending;

/* One piece of queued output: an encoded prefix, a body, or a whole frame. */
typedef struct out_chunk {
    struct out_chunk *next;
    uint8_t *data;   /* own allocation, or `copy` below */
    size_t len;
    size_t off;      /* bytes already written */
    uint8_t copy[];  /* a copied body lives in the chunk's own allocation */
} out_chunk;

struct proto_conn {
    enum proto_conn_state state;
    char *name;
    size_t max_frame;
    size_t max_output;
    proto_conn_hooks hooks;
    proto_request_cb *on_request;
    void *request_arg;
    char error[160];

    /* Input: in[0..in_len) holds what has not been delivered yet. */
    uint8_t *in;
    size_t in_len;
    size_t in_cap;
    int delivering;              /* frames are being delivered: no nested delivery */
    const proto_cmd *current;    /* the peer request being delivered, or NULL */

    /* Output. */
    out_chunk *out_head, *out_tail;
    size_t out_bytes;

    /* Our requests. */
    pending *by_opaque;
    pending *first, *last;       /* by deadline */
    size_t n_pending;
    int64_t timer_at;            /* the deadline the owner was last given */
    int32_t next_opaque;
};

/* conn_io.c: deliver the whole frames in the input buffer while the state allows. */
int proto__conn_deliver_input(proto_conn *c);
/* conn.c: the request waiting for this opaque, out of the tables (free it), or NULL. */
pending *proto__conn_take_pending(proto_conn *c, int32_t opaque);
/* conn.c: complete p (freed) with a decoded response (taken) and its frame. */
void proto__conn_complete(proto_conn *c, pending *p, proto_cmd *cmd, uint8_t *frame);

#endif
