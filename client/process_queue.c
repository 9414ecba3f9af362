/*
 * A push consumer's process queues: for each assigned message queue, a
 * long-polling pull loop (REMOTING.md §3.4 "What clients do with each pull
 * code") feeding a list of messages, and consume tasks on the worker pool.
 *
 * Order and offsets: a queue has at most one task on the workers at a
 * time, so its messages reach the listener in queue order. The offset to
 * commit is the first message not yet consumed (the task's first while it
 * runs, else the first waiting, else the next pull offset), so a crash or
 * a rebalance redelivers but never skips.
 *
 * RECONSUME_LATER (clustering): the worker sends the message back
 * (CONSUMER_SEND_MSG_BACK, §3.5); if that fails it re-publishes it to
 * %RETRY%<group> itself (§6.7); if that fails too, the message and the
 * rest of its task go back to the head of the queue and are retried a
 * second later. Broadcasting consumers drop failed messages, as Java does.
 *
 * Brokers: a queue is pulled from the broker its last pull answer
 * suggested, or another of its group while that one is gone
 * (pull_source.c); offsets go to the group's master, or to a replica while
 * there is none; send-backs only to the master.
 *
 * Everything here runs on the I/O thread except task_run (a worker).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "client_internal.h"

#define PULL_BATCH 32
#define PULL_SUSPEND_MS 15000
#define PULL_TIMEOUT_MS 30000     /* consumerTimeoutMillisWhenSuspend */
#define PULL_THRESHOLD 1000       /* pullThresholdForQueue */
#define PULL_FLOW_DELAY_MS 50
#define PULL_ERROR_DELAY_MS 3000  /* pullTimeDelayMillsWhenException */
#define NO_ROUTE_DELAY_MS 1000
#define CONSUME_BATCH 32
#define REDO_DELAY_MS 1000
#define SEND_BACK_TIMEOUT_MS 3000

static void dispatch(pq *q);

/* ------------------------------------------------------------------ */
/* Life cycle                                                          */
/* ------------------------------------------------------------------ */

pq *lsmq__push_pq_new(lsmq_push_consumer *c, const subscription *sub, const char *broker,
                 int32_t queue_id)
{
    pq *q = proto_xcalloc(1, sizeof *q);
    char key[600];

    lsmq__mq_key(key, sizeof key, sub->topic, broker, queue_id);
    q->key = proto_xstrdup(key);
    q->topic = proto_xstrdup(sub->topic);
    q->broker = proto_xstrdup(broker);
    q->queue_id = queue_id;
    q->c = c;
    q->sub = sub;
    q->refs = 1; /* the assignment table's */
    q->next_offset = -1;
    lsmq__pull_source_init(&q->src);
    HASH_ADD_KEYPTR(hh, c->pqs, q->key, strlen(q->key), q);
    q->all_next = c->all;
    if (c->all)
        c->all->all_prev = q;
    c->all = q;
    return q;
}

static void pq_free(pq *q)
{
    lsmq_push_consumer *c = q->c;

    if (q->all_prev)
        q->all_prev->all_next = q->all_next;
    else
        c->all = q->all_next;
    if (q->all_next)
        q->all_next->all_prev = q->all_prev;
    lsmq__msg_free_list(q->head);
    lsmq__pull_source_free(&q->src);
    free(q->key);
    free(q->topic);
    free(q->broker);
    free(q);
}

void lsmq__push_pq_unref(pq *q)
{
    if (--q->refs == 0)
        pq_free(q);
}

void lsmq__push_pq_free_all(lsmq_push_consumer *c)
{
    HASH_CLEAR(hh, c->pqs); /* frees the table; the entries go below */
    while (c->all)
        pq_free(c->all);
}

int64_t lsmq__push_pq_commit_offset(const pq *q)
{
    if (q->consuming)
        return q->inflight_first;
    if (q->head)
        return q->head->queue_offset;
    return q->next_offset;
}

/* Record the offset of an idle queue, so that a restart resumes there. */
static void store_offset(pq *q, int force)
{
    lsmq_push_consumer *c = q->c;
    ostore_entry *e;
    int64_t off;

    if (q->dropped || !q->ready)
        return;
    off = lsmq__push_pq_commit_offset(q);
    if (off < 0)
        return;
    e = lsmq__ostore_find(&c->offsets, q->topic, q->broker, q->queue_id);
    if (force || e == NULL || off > e->offset)
        lsmq__ostore_update(&c->offsets, q->topic, q->broker, q->queue_id, off);
}

void lsmq__push_pq_drop(pq *q)
{
    lsmq_push_consumer *c = q->c;
    ostore_entry *e;

    store_offset(q, 0);
    q->dropped = 1;
    HASH_DEL(c->pqs, q);
    if (c->model == LSMQ_CLUSTERING) {
        /* Hand the position over now; the next owner queries it (§6.3). */
        e = lsmq__ostore_find(&c->offsets, q->topic, q->broker, q->queue_id);
        if (e && e->offset >= 0) {
            char *addr = lsmq__mqc_offset_addr(c->mqc, q->topic, q->broker);

            if (addr) {
                proto_cmd *cmd = lsmq__ostore_commit_cmd(c->group, e);

                lsmq__mqc_call(c->mqc, addr, cmd, NULL, 0, SEND_BACK_TIMEOUT_MS, NULL, NULL, NULL);
                proto_cmd_free(cmd);
                free(addr);
            }
        }
        lsmq__ostore_remove(&c->offsets, q->topic, q->broker, q->queue_id);
    }
    proto_log(PROTO_LOG_INFO, "liblsmq: %s: queue %s:%s:%d released", c->group, q->topic, q->broker,
              (int)q->queue_id);
    lsmq__push_pq_unref(q);
}

/* ------------------------------------------------------------------ */
/* Pulling                                                             */
/* ------------------------------------------------------------------ */

static void pull_stop(pq *q)
{
    q->pulling = 0;
    lsmq__push_pq_unref(q);
}

static void pull_now(mqclient *mqc, void *arg);

/* The next pull of q, after delay_ms (0: now). */
static void pull_after(pq *q, int delay_ms)
{
    if (delay_ms > 0)
        lsmq__mqc_after(q->c->mqc, delay_ms, pull_now, q);
    else
        pull_now(q->c->mqc, q);
}

static void pull_cb(int rc, proto_reply *reply, const char *why, void *arg)
{
    pq *q = arg;
    lsmq_push_consumer *c = q->c;
    pull_result res;
    int delay_ms;

    if (c->stopping || q->dropped || rc == LSMQ_ECLOSED) {
        proto_reply_free(reply);
        pull_stop(q);
        return;
    }
    if (rc != 0) {
        proto_log(PROTO_LOG_INFO, "liblsmq: pull %s:%s:%d from %s failed: %s", q->topic, q->broker,
                  (int)q->queue_id, q->src.addr, why);
        pull_after(q, lsmq__pull_source_done(c->mqc, &q->src, q->topic, q->broker, rc, NULL,
                                             PULL_ERROR_DELAY_MS));
        return;
    }
    if (reply->cmd->code != RS_SUCCESS && reply->cmd->code != RS_PULL_NOT_FOUND &&
        reply->cmd->code != RS_PULL_RETRY_IMMEDIATELY && reply->cmd->code != RS_PULL_OFFSET_MOVED) {
        proto_log(PROTO_LOG_WARN, "liblsmq: pull %s:%s:%d: response code %d %s", q->topic, q->broker,
                  (int)q->queue_id, reply->cmd->code,
                  reply->cmd->remark ? reply->cmd->remark : "");
        proto_reply_free(reply);
        lsmq__mqc_after(c->mqc, PULL_ERROR_DELAY_MS, pull_now, q);
        return;
    }
    lsmq_errslot err;

    lsmq__err_init(&err, NULL);
    if (lsmq__pull_parse(reply, q->broker, q->sub, &res, &err) != 0) {
        proto_log(PROTO_LOG_ERROR, "liblsmq: pull %s:%s:%d: %s", q->topic, q->broker, (int)q->queue_id,
                  err.text);
        lsmq__mqc_after(c->mqc, PULL_ERROR_DELAY_MS, pull_now, q);
        return;
    }
    if (res.next_begin >= 0)
        q->next_offset = res.next_begin;
    if (res.code == RS_SUCCESS && res.head) {
        if (q->tail)
            q->tail->next = res.head;
        else
            q->head = res.head;
        q->tail = res.tail;
        q->n_msgs += res.n;
        res.head = res.tail = NULL;
        dispatch(q);
    }
    /* An idle queue's position is the next pull; OFFSET_MOVED may go backwards. */
    store_offset(q, res.code == RS_PULL_OFFSET_MOVED);
    delay_ms = lsmq__pull_source_done(c->mqc, &q->src, q->topic, q->broker, 0, &res,
                                      PULL_ERROR_DELAY_MS);
    lsmq__pull_result_free(&res);
    pull_after(q, delay_ms);
}

static void pull_now(mqclient *mqc, void *arg)
{
    pq *q = arg;
    lsmq_push_consumer *c = q->c;
    ostore_entry *e;
    pull_args a;
    proto_cmd *cmd;
    const char *addr;
    int rc, replica = 0;

    if (c->stopping || q->dropped) {
        pull_stop(q);
        return;
    }
    if (q->n_msgs >= PULL_THRESHOLD) {
        /* Flow control: the listener is behind. */
        lsmq__mqc_after(mqc, PULL_FLOW_DELAY_MS, pull_now, q);
        return;
    }
    addr = lsmq__pull_source_next(mqc, &q->src, q->topic, q->broker, q->queue_id,
                                  q->next_offset, &replica);
    if (addr == NULL) {
        lsmq__mqc_after(mqc, NO_ROUTE_DELAY_MS, pull_now, q);
        return;
    }
    memset(&a, 0, sizeof a);
    a.group = c->group;
    a.topic = q->topic;
    a.queue_id = q->queue_id;
    a.offset = q->next_offset;
    a.max_msgs = PULL_BATCH;
    a.suspend_ms = PULL_SUSPEND_MS;
    a.sub = q->sub;
    /* A replica keeps no offsets from pulls: the periodic commit reaches it. */
    if (c->model == LSMQ_CLUSTERING && !replica &&
        (e = lsmq__ostore_find(&c->offsets, q->topic, q->broker, q->queue_id)) != NULL)
        a.commit_offset = e->offset;
    cmd = lsmq__pull_request(&a);
    rc = lsmq__mqc_call(mqc, addr, cmd, NULL, 0, PULL_TIMEOUT_MS, pull_cb, q, NULL);
    proto_cmd_free(cmd);
    if (rc != 0)
        pull_stop(q);
}

void lsmq__push_pq_start(pq *q)
{
    q->ready = 1;
    if (q->pulling)
        return;
    q->pulling = 1;
    q->refs++;
    pull_now(q->c->mqc, q);
}

/* ------------------------------------------------------------------ */
/* Consuming                                                           */
/* ------------------------------------------------------------------ */

typedef struct consume_task {
    pq *q;
    lsmq_message *msgs;      /* the task's messages, in order */
    lsmq_message *redo;      /* first message to consume again, or NULL */
} consume_task;

/* Retry through the broker: CONSUMER_SEND_MSG_BACK (worker thread). */
static int send_back(lsmq_push_consumer *c, const lsmq_message *m)
{
    /* A write: only a master takes it (Java's findBrokerAddressInPublish). */
    char *addr = lsmq__mqc_master_addr(c->mqc, m->queue_topic, m->broker_name);
    proto_cmd *cmd;
    proto_reply *reply = NULL;
    lsmq_errslot err; /* the library's own retry: logged, not the user's last error */
    int rc;

    lsmq__err_init(&err, NULL);
    if (addr == NULL) {
        /* No master in the route: the store host is the broker that stored it. */
        char ip[INET6_ADDRSTRLEN], buf[INET6_ADDRSTRLEN + 16];

        inet_ntop(m->store_host.v6 ? AF_INET6 : AF_INET, m->store_host.ip, ip, sizeof ip);
        snprintf(buf, sizeof buf, "%s:%u", ip, m->store_host.port);
        addr = proto_xstrdup(buf);
    }
    cmd = proto_cmd_request(RC_CONSUMER_SEND_MSG_BACK);
    proto_cmd_set_i64(cmd, "offset", m->commit_log_offset);
    proto_cmd_set(cmd, "group", c->group);
    proto_cmd_set_i64(cmd, "delayLevel", c->retry_delay_level);
    proto_cmd_set(cmd, "originMsgId", lsmq_message_id(m));
    proto_cmd_set(cmd, "originTopic", m->topic);
    proto_cmd_set_bool(cmd, "unitMode", 0);
    proto_cmd_set_i64(cmd, "maxReconsumeTimes", c->max_reconsume);
    rc = lsmq__mqc_call_sync(c->mqc, addr, cmd, NULL, 0, SEND_BACK_TIMEOUT_MS, &reply, &err);
    proto_cmd_free(cmd);
    if (rc == 0 && reply->cmd->code != RS_SUCCESS)
        rc = lsmq__broker_error(&err, reply->cmd, "send-back");
    if (rc != 0)
        proto_log(PROTO_LOG_WARN, "liblsmq: send-back of %s to %s failed (%s); re-publishing",
                  lsmq_message_id(m), addr, err.text);
    proto_reply_free(reply);
    free(addr);
    return rc;
}

/* Properties a re-published retry sets itself (§6.7). */
static int retry_owned(const char *name)
{
    static const char *const owned[] = {"RETRY_TOPIC", "ORIGIN_MESSAGE_ID", "RECONSUME_TIME",
                                        "MAX_RECONSUME_TIMES", "DELAY", "WAIT", "TRAN_MSG"};
    size_t i;

    for (i = 0; i < sizeof owned / sizeof owned[0]; i++)
        if (strcmp(name, owned[i]) == 0)
            return 1;
    return 0;
}

/* Retry without the broker's help: a new message to %RETRY%<group> (worker thread). */
static int republish(lsmq_push_consumer *c, const lsmq_message *m)
{
    lsmq_property *props = proto_xcalloc(m->n_props + 4, sizeof *props);
    const char *origin = lsmq_message_property(m, "ORIGIN_MESSAGE_ID");
    char times[16], max[16];
    lsmq_out_message om;
    outmsg_extra extra;
    send_req req;
    lsmq_errslot err;
    size_t n = 0, i;
    int rc;

    lsmq__err_init(&err, NULL);
    for (i = 0; i < m->n_props; i++) {
        if (retry_owned(m->names[i]))
            continue;
        props[n].name = m->names[i];
        props[n++].value = m->values[i];
    }
    snprintf(times, sizeof times, "%d", (int)m->reconsume_times + 1);
    snprintf(max, sizeof max, "%d", c->max_reconsume);
    props[n].name = "ORIGIN_MESSAGE_ID";
    props[n++].value = origin ? origin : lsmq_message_id(m);
    props[n].name = "RETRY_TOPIC";
    props[n++].value = m->topic;
    props[n].name = "RECONSUME_TIME";
    props[n++].value = times;
    props[n].name = "MAX_RECONSUME_TIMES";
    props[n++].value = max;
    memset(&om, 0, sizeof om);
    om.topic = c->retry_topic;
    om.body = m->body;
    om.body_len = m->body_len;
    om.properties = props;
    om.n_properties = n;
    om.flag = m->flag;
    om.delay_level = c->retry_delay_level > 0 ? c->retry_delay_level : 3 + m->reconsume_times;
    extra.reconsume_times = m->reconsume_times + 1;
    extra.max_reconsume_times = c->max_reconsume;
    rc = lsmq__outmsg_build(&om, c->inner.group, c->inner.compress_threshold, lsmq__mqc_ip4(c->mqc),
                       &extra, &req, &err);
    if (rc == 0) {
        rc = lsmq__sender_send(&c->inner, &req, &om, NULL, NULL, NULL, &err);
        lsmq__send_req_free(&req);
    }
    if (rc != 0)
        proto_log(PROTO_LOG_WARN, "liblsmq: re-publishing %s to %s failed: %s; retrying locally",
                  lsmq_message_id(m), c->retry_topic, err.text);
    free(props);
    return rc;
}

static void task_done(mqclient *mqc, void *arg);

static void task_run(void *arg)
{
    consume_task *t = arg;
    lsmq_push_consumer *c = t->q->c;
    lsmq_message *m;

    for (m = t->msgs; m; m = m->next) {
        int status = c->listener(m, c->listener_arg);

        if (status == LSMQ_CONSUME_SUCCESS)
            continue;
        if (c->model == LSMQ_BROADCASTING) {
            proto_log(PROTO_LOG_WARN, "liblsmq: broadcast message %s not consumed; dropped",
                      lsmq_message_id(m));
            continue;
        }
        if (send_back(c, m) == 0 || republish(c, m) == 0)
            continue;
        t->redo = m;
        break;
    }
    if (lsmq__mqc_post(c->mqc, task_done, t) != 0) {
        /* Only during a forced stop: nothing on the I/O side can be touched. */
        lsmq__msg_free_list(t->msgs);
        free(t);
        pthread_mutex_lock(&c->lock);
        c->tasks--;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->lock);
    }
}

static void redispatch(mqclient *mqc, void *arg)
{
    pq *q = arg;

    q->hold_until_ms = 0;
    dispatch(q);
    lsmq__push_pq_unref(q);
}

static void task_done(mqclient *mqc, void *arg)
{
    consume_task *t = arg;
    pq *q = t->q;
    lsmq_push_consumer *c = q->c;
    lsmq_message *m = t->msgs, *next;

    while (m && m != t->redo) {
        next = m->next;
        lsmq__msg_free(m);
        m = next;
    }
    q->consuming = 0;
    if (t->redo) {
        size_t n = 0;
        lsmq_message *last = t->redo;

        for (m = t->redo; m; m = m->next, n++)
            last = m;
        last->next = q->head;
        if (q->head == NULL)
            q->tail = last;
        q->head = t->redo;
        q->n_msgs += n;
    }
    store_offset(q, 0);
    if (t->redo) {
        q->hold_until_ms = proto_mono_ms() + REDO_DELAY_MS;
        q->refs++;
        lsmq__mqc_after(mqc, REDO_DELAY_MS, redispatch, q);
    } else {
        dispatch(q);
    }
    free(t);
    pthread_mutex_lock(&c->lock);
    c->tasks--;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->lock);
    lsmq__push_pq_unref(q);
}

static void dispatch(pq *q)
{
    lsmq_push_consumer *c = q->c;
    consume_task *t;
    lsmq_message *last;
    size_t n = 1;

    if (q->consuming || q->head == NULL || c->stopping || q->dropped ||
        (q->hold_until_ms && proto_mono_ms() < q->hold_until_ms))
        return;
    t = proto_xcalloc(1, sizeof *t);
    t->q = q;
    t->msgs = last = q->head;
    while (n < CONSUME_BATCH && last->next) {
        last = last->next;
        n++;
    }
    q->head = last->next;
    if (q->head == NULL)
        q->tail = NULL;
    last->next = NULL;
    q->n_msgs -= n;
    q->consuming = 1;
    q->inflight_first = t->msgs->queue_offset;
    q->refs++;
    pthread_mutex_lock(&c->lock);
    c->tasks++;
    pthread_mutex_unlock(&c->lock);
    lsmq__workers_submit(c->pool, task_run, t);
}
