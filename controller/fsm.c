/*
 * raft's state machine callbacks (struct raft_fsm, version 1) over the
 * controller's state machine: apply decodes a committed command and runs
 * it; snapshot and restore use the state encoding (codec.h). All run on
 * the loop thread; state_mu keeps queries from other threads out while
 * the state changes.
 */
#include "node.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "errors.h"
#include "log.h"

/*
 * raft treats a non-zero return as a failure of the whole node, so a
 * refused command is still a success here: the verdict travels in
 * *result (as an intptr_t) and, with the group's epoch and master, in
 * last_res, which the request's callback reads right after this call.
 */
static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    ctl_node *n = fsm->data;
    ctl_cmd c;
    ctl_result res;
    memset(&res, 0, sizeof(res));
    res.master_id = CTL_NO_BROKER;
    int rc = ctl_cmd_decode(buf->base, buf->len, &c);
    if (rc == 0) {
        pthread_mutex_lock(&n->state_mu);
        rc = ctl_sm_apply(n->sm, &c, &res);
        pthread_mutex_unlock(&n->state_mu);
    } else {
        /* Every controller skips it alike, so the states stay equal. */
        proto_log(PROTO_LOG_ERROR, "controller: skipping a log entry that does not decode (%s)",
                  lsmq_strerror(rc));
    }
    n->last_res = res;
    *result = (void *)(intptr_t)rc;
    return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    ctl_node *n = fsm->data;
    uint8_t *data;
    size_t len;
    pthread_mutex_lock(&n->state_mu);
    ctl_state_encode(n->sm, &data, &len);
    pthread_mutex_unlock(&n->state_mu);
    struct raft_buffer *b = raft_malloc(sizeof(*b));
    void *copy = raft_malloc(len);
    if (!b || !copy) {
        raft_free(b);
        raft_free(copy);
        free(data);
        return RAFT_NOMEM;
    }
    memcpy(copy, data, len);
    free(data);
    b->base = copy;
    b->len = len;
    *bufs = b; /* raft frees both once the snapshot is stored */
    *n_bufs = 1;
    return 0;
}

/* On success the buffer is ours to free (raft hands it over). */
static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    ctl_node *n = fsm->data;
    ctl_sm *sm;
    int rc = ctl_state_decode(buf->base, buf->len, &sm);
    if (rc != 0) {
        proto_log(PROTO_LOG_ERROR, "controller: snapshot does not decode (%s)",
                  lsmq_strerror(rc));
        return RAFT_MALFORMED;
    }
    pthread_mutex_lock(&n->state_mu);
    ctl_sm *old = n->sm;
    n->sm = sm;
    pthread_mutex_unlock(&n->state_mu);
    ctl_sm_destroy(old);
    raft_free(buf->base);
    proto_log(PROTO_LOG_INFO, "controller: %s restored a snapshot of %zu groups", n->self->id,
              ctl_sm_count(sm));
    return 0;
}

void ctl_fsm__init(ctl_node *n)
{
    memset(&n->fsm, 0, sizeof(n->fsm));
    n->fsm.version = 1;
    n->fsm.data = n;
    n->fsm.apply = fsm_apply;
    n->fsm.snapshot = fsm_snapshot;
    n->fsm.restore = fsm_restore;
}
