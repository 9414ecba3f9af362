/*
 * Commands from any thread into raft (ctl_node_submit). The caller encodes
 * its command, queues a request under mu, wakes the loop and waits on
 * cond; the loop hands the request to raft_apply if it leads, and raft's
 * callback (after the entry is committed and applied here) finishes it.
 *
 * A request has two owners until both let go: a caller that times out
 * marks it abandoned and leaves, and the loop frees it when raft is done
 * with it (raft fails pending requests when it loses leadership or
 * closes, so that always happens).
 */
#include "node.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "codec.h"
#include "errors.h"

int ctl_submit__raft_err(ctl_node *n, int raft_rc)
{
    switch (raft_rc) {
    case 0: return 0;
    case RAFT_NOTLEADER: return LSMQ_ENOTLEADER;
    case RAFT_LEADERSHIPLOST: return n->closing ? LSMQ_ECLOSED : LSMQ_ETIMEDOUT;
    case RAFT_SHUTDOWN:
    case RAFT_CANCELED: return LSMQ_ECLOSED;
    case RAFT_NOMEM: return LSMQ_ENOMEM;
    case RAFT_NOSPACE: return LSMQ_ENOSPC;
    case RAFT_TOOBIG: return LSMQ_ETOOBIG;
    default: return LSMQ_EIO;
    }
}

/* Any thread (loop thread in practice): give the request its answer. */
static void finish(ctl_request *req, int rc)
{
    ctl_node *n = req->node;
    pthread_mutex_lock(&n->mu);
    req->rc = rc;
    req->done = true;
    bool abandoned = req->abandoned;
    if (!abandoned)
        pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->mu);
    if (abandoned)
        free(req);
}

static void applied_cb(struct raft_apply *a, int status, void *result)
{
    ctl_request *req = a->data;
    ctl_node *n = req->node;
    if (status == 0) {
        req->res.epoch = n->last_res.epoch;
        req->res.master_id = n->last_res.master_id;
        req->res.index = a->index;
        finish(req, (int)(intptr_t)result);
    } else {
        finish(req, ctl_submit__raft_err(n, status));
    }
}

static void start_one(ctl_node *n, ctl_request *req)
{
    if (raft_state(&n->raft) != RAFT_LEADER) {
        raft_free(req->buf.base);
        req->buf.base = NULL;
        ctl_node__leader_of(n, req->res.leader_id, req->res.leader_addr);
        finish(req, LSMQ_ENOTLEADER);
        return;
    }
    req->apply.data = req;
    int rv = raft_apply(&n->raft, &req->apply, &req->buf, 1, applied_cb);
    if (rv != 0) {
        raft_free(req->buf.base); /* not handed over */
        req->buf.base = NULL;
        if (rv == RAFT_NOTLEADER)
            ctl_node__leader_of(n, req->res.leader_id, req->res.leader_addr);
        finish(req, ctl_submit__raft_err(n, rv));
    }
}

void ctl_submit__drain(ctl_node *n)
{
    pthread_mutex_lock(&n->mu);
    ctl_request *req = n->queue_head;
    n->queue_head = n->queue_tail = NULL;
    bool stopping = n->stopping;
    pthread_mutex_unlock(&n->mu);
    while (req) {
        ctl_request *next = req->next;
        if (stopping) {
            raft_free(req->buf.base);
            finish(req, LSMQ_ECLOSED);
        } else {
            start_one(n, req);
        }
        req = next;
    }
}

int ctl_node_submit(ctl_node *n, const ctl_cmd *cmd, int64_t timeout_ms, ctl_result *res)
{
    if (ctl_cmd_check(cmd) != 0)
        return LSMQ_EINVAL;
    uint8_t *data;
    size_t len;
    ctl_cmd_encode(cmd, &data, &len);
    ctl_request *req = proto_xcalloc(1, sizeof(*req));
    req->node = n;
    req->res.master_id = CTL_NO_BROKER;
    req->buf.base = raft_malloc(len);
    if (!req->buf.base)
        proto_oom(len);
    memcpy(req->buf.base, data, len);
    req->buf.len = len;
    free(data);

    struct timespec deadline = proto_deadline_after(CLOCK_MONOTONIC, timeout_ms);
    pthread_mutex_lock(&n->mu);
    if (n->stopping) {
        pthread_mutex_unlock(&n->mu);
        raft_free(req->buf.base);
        free(req);
        return LSMQ_ECLOSED;
    }
    n->callers++;
    if (n->queue_tail)
        n->queue_tail->next = req;
    else
        n->queue_head = req;
    n->queue_tail = req;
    uv_async_send(&n->wake);
    int wrc = 0;
    while (!req->done && wrc != ETIMEDOUT)
        wrc = pthread_cond_timedwait(&n->cond, &n->mu, &deadline);
    int rc;
    if (req->done) {
        rc = req->rc;
        if (res)
            *res = req->res;
    } else {
        req->abandoned = true;
        rc = LSMQ_ETIMEDOUT;
        if (res) {
            memset(res, 0, sizeof(*res));
            res->master_id = CTL_NO_BROKER;
        }
    }
    bool free_it = req->done;
    n->callers--;
    pthread_cond_broadcast(&n->cond);
    pthread_mutex_unlock(&n->mu);
    if (free_it)
        free(req);
    return rc;
}
