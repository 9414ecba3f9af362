/*
 * The raft node's internals, shared by node.c (lifecycle and the loop
 * thread), submit.c (commands from other threads into raft) and fsm.c
 * (raft's state machine callbacks over sm.c).
 *
 * Threads and locks:
 *   - the loop thread owns the libuv loop, raft and everything raft
 *     touches; other threads reach it only through `wake` (uv_async_send);
 *   - state_mu guards sm (written by the loop thread's apply and restore,
 *     read by queries from any thread);
 *   - mu guards the request queue, `stopping`, `callers` and what the loop
 *     publishes each turn (role, leader, applied index); `cond`
 *     (CLOCK_MONOTONIC) signals finished requests and callers leaving.
 */
#ifndef LSMQ_CONTROLLER_NODE_H
#define LSMQ_CONTROLLER_NODE_H

#include <pthread.h>
#include <stdbool.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "controller.h"
#include "peers.h"
#include "sm.h"

/* One submitted command, from ctl_node_submit until both sides let go. */
typedef struct ctl_request {
    struct raft_apply apply; /* apply.data is the request */
    ctl_node *node;
    struct raft_buffer buf;   /* the encoded command, raft_malloc'ed */
    struct ctl_request *next; /* in the queue to the loop */
    bool done;                /* rc and res are final */
    bool abandoned;           /* the submitter gave up: the loop frees it */
    int rc;
    ctl_result res;
} ctl_request;

struct ctl_node {
    ctl_peer peers[CTL_PEERS_MAX];
    size_t n_peers;
    const ctl_peer *self;

    uv_loop_t loop;
    uv_async_t wake;
    uv_check_t publish;
    struct raft_uv_transport transport;
    struct raft_io io;
    struct raft_fsm fsm;
    struct raft raft;
    pthread_t thread;
    bool closing; /* loop thread: raft_close called */

    /* loop thread: the epoch and master after the last applied command
     * (fsm.c), read by its request's callback right after */
    ctl_result last_res;

    pthread_mutex_t state_mu;
    ctl_sm *sm;

    pthread_mutex_t mu;
    pthread_cond_t cond;
    ctl_request *queue_head, *queue_tail;
    bool stopping;
    unsigned callers;
    bool is_leader;
    char leader_id[CTL_ID_MAX + 1];
    char leader_addr[CTL_ADDR_MAX + 1];
    uint64_t applied_index;
};

/* fsm.c: fill n->fsm with the callbacks over n->sm. */
void ctl_fsm__init(ctl_node *n);

/* submit.c, loop thread: run the queued requests (wake's callback). */
void ctl_submit__drain(ctl_node *n);

/* submit.c: a raft error code as an LSMQ_E* one. */
int ctl_submit__raft_err(ctl_node *n, int raft_rc);

/* node.c, loop thread: copy the leader raft knows of into id and addr. */
void ctl_node__leader_of(ctl_node *n, char *id, char *addr);

#endif
