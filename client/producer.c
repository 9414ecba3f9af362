/*
 * The producer (REMOTING.md §3.1, §1.7): sync, async, oneway, batch and
 * selected-queue sends over one mqclient.
 *
 * Queue choice and retries follow the Java producer: round-robin over the
 * topic's writable queues; after a retryable failure (a transport error or
 * one of the retry response codes) the next attempt goes to a queue on
 * another broker when there is one, until `retries` more attempts are
 * spent or the send timeout, which bounds the whole send, has passed.
 * Sends to a selected queue retry on that same queue, to keep key order.
 *
 * Synchronous sends run the attempts on the caller's thread. Asynchronous
 * ones run them as a small state machine on the I/O thread (send_op),
 * which calls the user's callback once at the end.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"
#include "message_id.h"

#define DEFAULT_TIMEOUT_MS 3000
#define DEFAULT_RETRIES 2
#define DEFAULT_COMPRESS 4096
#define DEFAULT_MAX_INFLIGHT 10000
#define UNREGISTER_TIMEOUT_MS 1000

struct lsmq_producer {
    sender s;
    char *group;
    int max_inflight;
    int started;
    atomic_int closing;     /* read unlocked by senders */
    pthread_mutex_t lock;   /* inflight */
    pthread_cond_t cv;
    int inflight;
};

/* ------------------------------------------------------------------ */
/* Shared send logic                                                   */
/* ------------------------------------------------------------------ */

void lsmq__sender_init(sender *s, mqclient *mqc, const char *group)
{
    memset(s, 0, sizeof *s);
    s->mqc = mqc;
    lsmq__strlcpy(s->group, group, sizeof s->group);
    s->timeout_ms = DEFAULT_TIMEOUT_MS;
    s->retries = DEFAULT_RETRIES;
    s->compress_threshold = DEFAULT_COMPRESS;
    atomic_init(&s->rr, (unsigned)proto_mono_ms());
}

/* Response codes after which Java's producer tries another queue (§1.7). */
static int retryable_code(int code)
{
    switch (code) {
    case RS_TOPIC_NOT_EXIST:
    case RS_SERVICE_NOT_AVAILABLE:
    case RS_SYSTEM_ERROR:
    case RS_SYSTEM_BUSY:
    case RS_NO_PERMISSION:
    case 1500: /* GO_AWAY */
        return 1;
    default:
        return 0;
    }
}

/* Codes that mean "stored" (§3.1 send response). */
static int stored_code(int code)
{
    return code == RS_SUCCESS || code == RS_FLUSH_DISK_TIMEOUT || code == 12 ||
           code == RS_SLAVE_NOT_AVAILABLE;
}

/* Index into r->pub of the next queue, avoiding a broker if possible. */
static long select_queue(sender *s, const route *r, const char *avoid)
{
    size_t i;

    if (r->n_pub == 0)
        return -1;
    for (i = 0; i < r->n_pub; i++) {
        size_t idx = atomic_fetch_add(&s->rr, 1) % r->n_pub;

        if (avoid == NULL || strcmp(r->brokers[r->pub[idx].broker].name, avoid) != 0)
            return (long)idx;
    }
    return (long)(atomic_fetch_add(&s->rr, 1) % r->n_pub);
}

/* Fill the results of a stored send from the broker's header. */
static void fill_results(const send_req *req, const route *r, const route_mq *q,
                         const proto_cmd *resp, lsmq_send_result *res)
{
    const char *ids = proto_cmd_get(resp, "msgId");
    int32_t qid = q->queue_id;
    int64_t off = -1;
    size_t i;

    if (res == NULL)
        return;
    proto_cmd_get_i32(resp, "queueId", &qid);
    proto_cmd_get_i64(resp, "queueOffset", &off);
    for (i = 0; i < req->n_msgs; i++) {
        lsmq_send_result *x = &res[i];
        const char *comma = ids ? strchr(ids, ',') : NULL;
        size_t n = ids ? (comma ? (size_t)(comma - ids) : strlen(ids)) : 0;

        memset(x, 0, sizeof *x);
        x->status = resp->code;
        lsmq__strlcpy(x->msg_id, req->uniq[i], sizeof x->msg_id);
        if (n >= sizeof x->offset_msg_id)
            n = sizeof x->offset_msg_id - 1;
        if (ids)
            memcpy(x->offset_msg_id, ids, n);
        x->offset_msg_id[n] = '\0';
        lsmq__strlcpy(x->broker_name, r->brokers[q->broker].name, sizeof x->broker_name);
        x->queue_id = qid;
        x->queue_offset = off >= 0 ? off + (int64_t)i : -1;
        if (ids)
            ids = comma ? comma + 1 : NULL;
    }
}

/* Topic route for publishing, with at least one writable queue. */
static int publish_route(sender *s, const char *topic, route **out, lsmq_errslot *e)
{
    route *r = NULL;
    int rc = lsmq__mqc_route_get(s->mqc, topic, 1, &r, e);

    if (rc != 0)
        return rc;
    if (r->n_pub == 0) {
        lsmq__route_unref(r);
        lsmq__mqc_route_suspect(s->mqc, topic); /* a master may be on its way (failover) */
        lsmq__error(e, RS_NO_PERMISSION, "topic %s has no writable queue", topic);
        return LSMQ_ENOTFOUND;
    }
    *out = r;
    return 0;
}

/* The queue a selector picked, checked. */
static long selected_queue(const route *r, const lsmq_out_message *m,
                           lsmq_queue_selector *selector, void *arg, lsmq_errslot *e)
{
    int idx = selector((int)r->n_pub, m, arg);

    if (idx < 0 || (size_t)idx >= r->n_pub) {
        lsmq__error(e, -1, "selector returned queue %d of %zu", idx, r->n_pub);
        return -1;
    }
    return idx;
}

/*
 * After a failed attempt: ask for the route again (its master may have
 * moved) and take a newer one already fetched, unless the queue was
 * selected by the caller (its index belongs to this route).
 */
static route *route_after_failure(sender *s, const char *topic, route *r, long fixed)
{
    lsmq__mqc_route_suspect(s->mqc, topic);
    if (fixed >= 0)
        return r;
    route *now = lsmq__mqc_route_cached(s->mqc, topic);
    if (now == NULL || now == r || now->n_pub == 0) {
        lsmq__route_unref(now);
        return r;
    }
    lsmq__route_unref(r);
    return now;
}

int lsmq__sender_send(sender *s, send_req *req, const lsmq_out_message *m,
                 lsmq_queue_selector *selector, void *sel_arg, lsmq_send_result *res,
                 lsmq_errslot *e)
{
    int64_t deadline = proto_mono_ms() + s->timeout_ms;
    char avoid[LSMQ_BROKER_NAME_MAX] = "";
    route *r = NULL;
    long fixed = -1;
    int attempt, rc;

    if ((rc = publish_route(s, req->topic, &r, e)) != 0)
        return rc;
    if (selector && (fixed = selected_queue(r, m, selector, sel_arg, e)) < 0) {
        lsmq__route_unref(r);
        return LSMQ_EINVAL;
    }
    for (attempt = 0; attempt <= s->retries; attempt++) {
        int64_t left = deadline - proto_mono_ms();
        long qi = fixed >= 0 ? fixed : select_queue(s, r, avoid[0] ? avoid : NULL);
        const route_mq *q = &r->pub[qi];
        const char *addr = lsmq__route_master(r, q->broker);
        proto_reply *reply = NULL;

        if (left <= 0) {
            if (attempt == 0 || rc == 0)
                rc = -ETIMEDOUT;
            lsmq__error(e, -1, "send to %s timed out after %d attempt(s)", req->topic, attempt);
            break;
        }
        lsmq__strlcpy(avoid, r->brokers[q->broker].name, sizeof avoid);
        lsmq__outmsg_set_queue(req, q->queue_id);
        rc = lsmq__mqc_call_sync(s->mqc, addr, req->cmd, req->body, req->body_len, (int)left,
                                 &reply, e);
        if (rc != 0) {
            r = route_after_failure(s, req->topic, r, fixed);
            continue; /* transport failure: another broker */
        }
        if (stored_code(reply->cmd->code)) {
            fill_results(req, r, q, reply->cmd, res);
            proto_reply_free(reply);
            lsmq__route_unref(r);
            return 0;
        }
        rc = lsmq__broker_error(e, reply->cmd, "send");
        if (!retryable_code(reply->cmd->code)) {
            proto_reply_free(reply);
            break;
        }
        proto_reply_free(reply);
        r = route_after_failure(s, req->topic, r, fixed);
    }
    lsmq__route_unref(r);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Asynchronous sends                                                  */
/* ------------------------------------------------------------------ */

typedef struct send_op {
    lsmq_producer *p;
    send_req req;
    route *r;
    int attempt;
    int64_t deadline;
    char avoid[LSMQ_BROKER_NAME_MAX];
    long qi;
    int last_rc;
    lsmq_send_cb *cb;
    void *arg;
} send_op;

static void inflight_done(lsmq_producer *p)
{
    pthread_mutex_lock(&p->lock);
    p->inflight--;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->lock);
}

/* The end of an asynchronous send: a failure is recorded on the producer first. */
static void op_finish(send_op *op, int rc, const char *why, const lsmq_send_result *res)
{
    lsmq_producer *p = op->p;

    if (rc != 0 && why)
        lsmq__error(lsmq__mqc_err(p->s.mqc), -1, "send to %s failed: %s", op->req.topic, why);
    op->cb(rc, res, op->arg);
    lsmq__route_unref(op->r);
    lsmq__send_req_free(&op->req);
    free(op);
    inflight_done(p);
}

static void op_attempt(send_op *op);

static void op_reply_cb(int rc, proto_reply *reply, const char *why, void *arg)
{
    send_op *op = arg;
    const route_mq *q = &op->r->pub[op->qi];

    if (rc == 0) {
        int code = reply->cmd->code;

        if (stored_code(code)) {
            lsmq_send_result res;

            fill_results(&op->req, op->r, q, reply->cmd, &res);
            proto_reply_free(reply);
            op_finish(op, 0, NULL, &res);
            return;
        }
        /* A refusal goes on the producer as it is, with its response code. */
        rc = lsmq__broker_error(lsmq__mqc_err(op->p->s.mqc), reply->cmd, "send");
        proto_reply_free(reply);
        why = NULL;
        if (!retryable_code(code)) {
            op->last_rc = rc;
            op_finish(op, rc, NULL, NULL);
            return;
        }
    }
    op->last_rc = rc;
    op->attempt++;
    lsmq__mqc_route_suspect(op->p->s.mqc, op->req.topic);
    if (rc == LSMQ_ECLOSED || op->attempt > op->p->s.retries ||
        proto_mono_ms() >= op->deadline) {
        op_finish(op, rc, why, NULL);
        return;
    }
    op_attempt(op);
}

/* Queue one attempt; 0, or the error that kept it from leaving (recorded in e). */
static int op_send(send_op *op, lsmq_errslot *e)
{
    sender *s = &op->p->s;
    int64_t left = op->deadline - proto_mono_ms();
    const route_mq *q;

    op->qi = select_queue(s, op->r, op->avoid[0] ? op->avoid : NULL);
    q = &op->r->pub[op->qi];
    lsmq__strlcpy(op->avoid, op->r->brokers[q->broker].name, sizeof op->avoid);
    lsmq__outmsg_set_queue(&op->req, q->queue_id);
    return lsmq__mqc_call(s->mqc, lsmq__route_master(op->r, q->broker), op->req.cmd, op->req.body,
                     op->req.body_len, left > 0 ? (int)left : 1, op_reply_cb, op, e);
}

/* A retry, on the I/O thread; a failure to queue it ends the op. */
static void op_attempt(send_op *op)
{
    int rc = op_send(op, lsmq__mqc_err(op->p->s.mqc));

    if (rc != 0) {
        op->last_rc = rc;
        op_finish(op, rc, NULL, NULL);
    }
}

/* ------------------------------------------------------------------ */
/* Public API                                                          */
/* ------------------------------------------------------------------ */

static char *producer_heartbeat(void *arg)
{
    lsmq_producer *p = arg;

    return lsmq__hb_json(lsmq__mqc_client_id(p->s.mqc), p->group, NULL);
}

int lsmq_producer_create(const char *namesrv, const char *group, lsmq_producer **out)
{
    lsmq_producer *p;
    mqclient *mqc;
    int rc;

    *out = NULL;
    if (!lsmq__valid_name(group, 255))
        return LSMQ_EINVAL; /* no producer to say more on */
    if ((rc = lsmq__mqc_create(namesrv, NULL, &mqc, NULL)) != 0)
        return rc;
    p = proto_xcalloc(1, sizeof *p);
    lsmq__sender_init(&p->s, mqc, group);
    p->group = proto_xstrdup(group);
    p->max_inflight = DEFAULT_MAX_INFLIGHT;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cv, NULL);
    *out = p;
    return 0;
}

#define BEFORE_START(p)                                                                      \
    do {                                                                                     \
        if ((p) == NULL)                                                                     \
            return LSMQ_EINVAL;                                                              \
        if ((p)->started) {                                                                  \
            lsmq__error(lsmq__mqc_err((p)->s.mqc), -1, "setting must be changed before start");   \
            return LSMQ_EINVAL;                                                              \
        }                                                                                    \
    } while (0)

int lsmq_producer_set_send_timeout(lsmq_producer *p, int timeout_ms)
{
    BEFORE_START(p);
    if (timeout_ms <= 0)
        return LSMQ_EINVAL;
    p->s.timeout_ms = timeout_ms;
    return 0;
}

int lsmq_producer_set_retries(lsmq_producer *p, int retries)
{
    BEFORE_START(p);
    if (retries < 0)
        return LSMQ_EINVAL;
    p->s.retries = retries;
    return 0;
}

int lsmq_producer_set_compress_threshold(lsmq_producer *p, size_t bytes)
{
    BEFORE_START(p);
    p->s.compress_threshold = bytes;
    return 0;
}

int lsmq_producer_set_instance_name(lsmq_producer *p, const char *name)
{
    BEFORE_START(p);
    return lsmq__mqc_set_instance(p->s.mqc, name);
}

int lsmq_producer_set_max_async_inflight(lsmq_producer *p, int n)
{
    BEFORE_START(p);
    if (n <= 0)
        return LSMQ_EINVAL;
    p->max_inflight = n;
    return 0;
}

int lsmq_producer_start(lsmq_producer *p)
{
    mq_owner_hooks hooks;
    int rc;

    if (p == NULL)
        return LSMQ_EINVAL;
    if (p->started) {
        lsmq__error(lsmq__mqc_err(p->s.mqc), -1, "producer already started");
        return LSMQ_EINVAL;
    }
    memset(&hooks, 0, sizeof hooks);
    hooks.arg = p;
    hooks.heartbeat_json = producer_heartbeat;
    lsmq__mqc_set_hooks(p->s.mqc, &hooks);
    if ((rc = lsmq__mqc_start(p->s.mqc)) != 0)
        return rc;
    p->started = 1;
    return 0;
}

void lsmq_producer_destroy(lsmq_producer *p)
{
    struct timespec until;

    if (p == NULL)
        return;
    if (p->started) {
        pthread_mutex_lock(&p->lock);
        atomic_store(&p->closing, 1);
        until = proto_deadline_after(CLOCK_REALTIME, (int64_t)p->s.timeout_ms + 1000);
        while (p->inflight > 0) {
            if (pthread_cond_timedwait(&p->cv, &p->lock, &until) == ETIMEDOUT)
                break;
        }
        pthread_mutex_unlock(&p->lock);
        lsmq__mqc_unregister(p->s.mqc, p->group, NULL, UNREGISTER_TIMEOUT_MS);
    }
    /* Fails what is still in flight; those callbacks run before this returns. */
    lsmq__mqc_destroy(p->s.mqc);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cv);
    free(p->group);
    free(p);
}

static int check_running(lsmq_producer *p)
{
    if (p == NULL)
        return LSMQ_EINVAL;
    if (!p->started || atomic_load(&p->closing)) {
        lsmq__error(lsmq__mqc_err(p->s.mqc), -1,
                    p->started ? "producer is being destroyed" : "producer not started");
        return p->started ? LSMQ_ECLOSED : LSMQ_EINVAL;
    }
    if (lsmq__mqc_in_loop(p->s.mqc)) {
        lsmq__error(lsmq__mqc_err(p->s.mqc), -1,
                    "synchronous send from the producer's own callback");
        return LSMQ_EINVAL;
    }
    return 0;
}

int lsmq_producer_last_error(lsmq_producer *p, char *buf, size_t cap)
{
    if (p == NULL) {
        if (buf && cap)
            lsmq__strlcpy(buf, "no producer", cap);
        return -1;
    }
    return lsmq__err_copy(lsmq__mqc_err(p->s.mqc), buf, cap);
}

int lsmq_producer_send(lsmq_producer *p, const lsmq_out_message *m, lsmq_send_result *res)
{
    send_req req;
    int rc;

    if ((rc = check_running(p)) != 0)
        return rc;
    rc = lsmq__outmsg_build(m, p->group, p->s.compress_threshold, lsmq__mqc_ip4(p->s.mqc), NULL,
                            &req, lsmq__mqc_err(p->s.mqc));
    if (rc != 0)
        return rc;
    rc = lsmq__sender_send(&p->s, &req, m, NULL, NULL, res, lsmq__mqc_err(p->s.mqc));
    lsmq__send_req_free(&req);
    return rc;
}

int lsmq_producer_send_select(lsmq_producer *p, const lsmq_out_message *m,
                              lsmq_queue_selector *selector, void *arg,
                              lsmq_send_result *res)
{
    send_req req;
    int rc;

    if ((rc = check_running(p)) != 0)
        return rc;
    if (selector == NULL) {
        lsmq__error(lsmq__mqc_err(p->s.mqc), -1, "no selector");
        return LSMQ_EINVAL;
    }
    rc = lsmq__outmsg_build(m, p->group, p->s.compress_threshold, lsmq__mqc_ip4(p->s.mqc), NULL,
                            &req, lsmq__mqc_err(p->s.mqc));
    if (rc != 0)
        return rc;
    rc = lsmq__sender_send(&p->s, &req, m, selector, arg, res, lsmq__mqc_err(p->s.mqc));
    lsmq__send_req_free(&req);
    return rc;
}

int lsmq_select_by_hash(int n_queues, const lsmq_out_message *m, void *arg)
{
    const char *key = arg;
    int64_t h = key ? proto_tag_hash(key, strlen(key)) : 0;

    /* Java: Math.abs(key.hashCode()) % size; abs(MIN_VALUE) stays negative there. */
    if (h < 0)
        h = -h;
    return n_queues > 0 ? (int)(h % n_queues) : 0;
}

int lsmq_producer_send_batch(lsmq_producer *p, const lsmq_out_message *msgs, size_t n,
                             lsmq_send_result *res)
{
    send_req req;
    int rc;

    if ((rc = check_running(p)) != 0)
        return rc;
    if ((rc = lsmq__outmsg_build_batch(msgs, n, p->group, lsmq__mqc_ip4(p->s.mqc), &req,
                                  lsmq__mqc_err(p->s.mqc))) != 0)
        return rc;
    rc = lsmq__sender_send(&p->s, &req, NULL, NULL, NULL, res, lsmq__mqc_err(p->s.mqc));
    lsmq__send_req_free(&req);
    return rc;
}

int lsmq_producer_send_oneway(lsmq_producer *p, const lsmq_out_message *m)
{
    send_req req;
    route *r = NULL;
    long qi;
    int rc;

    if ((rc = check_running(p)) != 0)
        return rc;
    rc = lsmq__outmsg_build(m, p->group, p->s.compress_threshold, lsmq__mqc_ip4(p->s.mqc), NULL,
                            &req, lsmq__mqc_err(p->s.mqc));
    if (rc != 0)
        return rc;
    if ((rc = publish_route(&p->s, req.topic, &r, lsmq__mqc_err(p->s.mqc))) == 0) {
        qi = select_queue(&p->s, r, NULL);
        lsmq__outmsg_set_queue(&req, r->pub[qi].queue_id);
        rc = lsmq__mqc_call(p->s.mqc, lsmq__route_master(r, r->pub[qi].broker), req.cmd, req.body,
                       req.body_len, p->s.timeout_ms, NULL, NULL, lsmq__mqc_err(p->s.mqc));
        lsmq__route_unref(r);
    }
    lsmq__send_req_free(&req);
    return rc;
}

int lsmq_producer_send_async(lsmq_producer *p, const lsmq_out_message *m, lsmq_send_cb *cb,
                             void *arg)
{
    struct timespec until;
    send_op *op;
    int rc;

    if (p == NULL)
        return LSMQ_EINVAL;
    if (!p->started || atomic_load(&p->closing) || cb == NULL) {
        lsmq__error(lsmq__mqc_err(p->s.mqc), -1, "producer not running, or no callback");
        return p->started && cb ? LSMQ_ECLOSED : LSMQ_EINVAL;
    }
    op = proto_xcalloc(1, sizeof *op);
    rc = lsmq__outmsg_build(m, p->group, p->s.compress_threshold, lsmq__mqc_ip4(p->s.mqc), NULL,
                       &op->req, lsmq__mqc_err(p->s.mqc));
    if (rc == 0 && !lsmq__mqc_in_loop(p->s.mqc))
        rc = publish_route(&p->s, op->req.topic, &op->r, lsmq__mqc_err(p->s.mqc));
    else if (rc == 0 && (op->r = lsmq__mqc_route_cached(p->s.mqc, op->req.topic)) == NULL) {
        /* On the I/O thread we cannot wait for a look-up. */
        lsmq__mqc_route_refresh(p->s.mqc, op->req.topic, 1);
        lsmq__error(lsmq__mqc_err(p->s.mqc), -1, "no route for %s yet (first send from a callback)",
                    op->req.topic);
        rc = LSMQ_ENOTFOUND;
    }
    if (rc == 0 && op->r->n_pub == 0) {
        lsmq__mqc_route_suspect(p->s.mqc, op->req.topic);
        lsmq__error(lsmq__mqc_err(p->s.mqc), RS_NO_PERMISSION, "topic %s has no writable queue",
                    op->req.topic);
        rc = LSMQ_ENOTFOUND;
    }
    if (rc != 0) {
        lsmq__route_unref(op->r);
        lsmq__send_req_free(&op->req);
        free(op);
        return rc;
    }
    /* Room in the in-flight window (never wait on the I/O thread). */
    pthread_mutex_lock(&p->lock);
    until = proto_deadline_after(CLOCK_REALTIME, p->s.timeout_ms);
    while (p->inflight >= p->max_inflight && !lsmq__mqc_in_loop(p->s.mqc)) {
        if (pthread_cond_timedwait(&p->cv, &p->lock, &until) == ETIMEDOUT)
            break;
    }
    if (p->inflight >= p->max_inflight) {
        pthread_mutex_unlock(&p->lock);
        lsmq__error(lsmq__mqc_err(p->s.mqc), -1, "%d asynchronous sends in flight", p->inflight);
        lsmq__route_unref(op->r);
        lsmq__send_req_free(&op->req);
        free(op);
        return LSMQ_EBUSY;
    }
    p->inflight++;
    pthread_mutex_unlock(&p->lock);
    op->p = p;
    op->cb = cb;
    op->arg = arg;
    op->deadline = proto_mono_ms() + p->s.timeout_ms;
    /* The first attempt leaves from here; if it cannot, cb is not called. */
    rc = op_send(op, lsmq__mqc_err(p->s.mqc));
    if (rc != 0) {
        lsmq__route_unref(op->r);
        lsmq__send_req_free(&op->req);
        free(op);
        inflight_done(p);
    }
    return rc;
}
