/*
 * A push consumer's answers to requests its brokers start (REMOTING.md
 * §3.9), other than NOTIFY_CONSUMER_IDS_CHANGED (instance.c):
 *
 * RESET_CONSUMER_CLIENT_OFFSET(220), oneway: an admin reset the group's
 * offsets of a topic by time; the body maps each queue to its new offset.
 * As Java's MQClientInstance.resetOffset, for each of those queues this
 * consumer holds: the process queue is dropped with its buffered messages
 * (so nothing pulled before the reset is delivered or committed), the new
 * offset goes into the offset store and is committed at once. Java then
 * sleeps 10 s for running listeners; here the queue's new process queue
 * starts pulling from the new offset as soon as the dropped one's listener
 * task has returned (polled), so a queue never has two tasks at a time.
 * Rebalancing waits meanwhile, so it cannot start those queues from a
 * stale committed offset.
 *
 * GET_CONSUMER_STATUS_FROM_CLIENT(221): the offsets this consumer holds for
 * a topic, as a GetConsumerStatusBody (fastjson MessageQueue keys).
 *
 * I/O thread, except lsmq__reset_parse_body (pure).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "client_internal.h"
#include "fastjson.h"

#define RESET_POLL_MS 50
#define COMMIT_TIMEOUT_MS 3000

/* ------------------------------------------------------------------ */
/* ResetOffsetBody (pure)                                              */
/* ------------------------------------------------------------------ */

static int json_i64(json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    if (json_is_string(v)) { /* fastjson may quote longs in some configurations */
        char *end;
        long long x = strtoll(json_string_value(v), &end, 10);

        if (*json_string_value(v) && *end == '\0') {
            *out = x;
            return 0;
        }
    }
    return -1;
}

/* One queue: {"topic":..,"brokerName":..,"queueId":..} plus its offset. */
static void add_entry(json_t *mq, json_t *offset, const char *topic, reset_entry **out,
                      size_t *n)
{
    const char *t = json_string_value(json_object_get(mq, "topic"));
    const char *b = json_string_value(json_object_get(mq, "brokerName"));
    int64_t qid, off;
    reset_entry *e;

    if (!t || !b || strcmp(t, topic) != 0 || json_i64(json_object_get(mq, "queueId"), &qid) ||
        json_i64(offset, &off) || off < 0)
        return;
    *out = proto_xrealloc(*out, (*n + 1) * sizeof **out);
    e = &(*out)[(*n)++];
    lsmq__strlcpy(e->broker, b, sizeof e->broker);
    e->queue_id = (int32_t)qid;
    e->offset = off;
}

int lsmq__reset_parse_body(const uint8_t *body, size_t len, const char *topic, reset_entry **out,
                      size_t *n, lsmq_errslot *e)
{
    char *text = NULL;
    json_t *root = NULL, *table;
    int rc = LSMQ_ECORRUPT;

    *out = NULL;
    *n = 0;
    if (body == NULL || len == 0)
        return 0; /* Java: no body is an empty table */
    if (proto_fastjson_to_json((const char *)body, len, &text) != 0 ||
        (root = json_loads(text, 0, NULL)) == NULL)
        goto out;
    table = json_object_get(root, "offsetTable");
    if (json_is_object(table)) {
        /* ResetOffsetBody: each key is a MessageQueue's JSON text. */
        const char *key;
        json_t *v;

        json_object_foreach(table, key, v) {
            json_t *mq = json_loads(key, 0, NULL);

            if (json_is_object(mq))
                add_entry(mq, v, topic, out, n);
            json_decref(mq);
        }
        rc = 0;
    } else if (json_is_array(table)) {
        /* ResetOffsetBodyForC: [{"brokerName","offset","queueId","topic"}]. */
        size_t i;

        for (i = 0; i < json_array_size(table); i++) {
            json_t *o = json_array_get(table, i);

            if (json_is_object(o))
                add_entry(o, json_object_get(o, "offset"), topic, out, n);
        }
        rc = 0;
    } else if (table == NULL || json_is_null(table)) {
        rc = 0;
    }
out:
    if (rc != 0) {
        lsmq__error(e, -1, "ResetOffsetBody does not parse");
        free(*out);
        *out = NULL;
        *n = 0;
    }
    json_decref(root);
    free(text);
    return rc;
}

/* ------------------------------------------------------------------ */
/* RESET_CONSUMER_CLIENT_OFFSET                                        */
/* ------------------------------------------------------------------ */

/* A reset waiting for the listeners of the queues it dropped. */
typedef struct reset_op {
    lsmq_push_consumer *c;
    const subscription *sub;
    reset_entry *held;   /* the queues this consumer held, with their new offsets */
    pq **old;            /* their dropped process queues (a reference each) */
    size_t n;
} reset_op;

static const subscription *sub_of(lsmq_push_consumer *c, const char *topic)
{
    size_t i;

    for (i = 0; i < c->n_subs; i++)
        if (strcmp(c->subs[i]->topic, topic) == 0)
            return c->subs[i];
    return NULL;
}

/* Drop q without storing its position: the reset decides it. */
static void drop_for_reset(pq *q)
{
    q->dropped = 1;
    lsmq__msg_free_list(q->head);
    q->head = q->tail = NULL;
    q->n_msgs = 0;
    HASH_DEL(q->c->pqs, q); /* the table's reference now belongs to the reset */
}

static void store_and_commit(lsmq_push_consumer *c, const char *topic, const reset_entry *e)
{
    ostore_entry *oe;
    char *addr;

    lsmq__ostore_update(&c->offsets, topic, e->broker, e->queue_id, e->offset);
    if (c->model != LSMQ_CLUSTERING)
        return; /* the periodic commit writes the local file */
    oe = lsmq__ostore_find(&c->offsets, topic, e->broker, e->queue_id);
    if ((addr = lsmq__mqc_offset_addr(c->mqc, topic, e->broker)) != NULL) {
        proto_cmd *cmd = lsmq__ostore_commit_cmd(c->group, oe);

        if (lsmq__mqc_call(c->mqc, addr, cmd, NULL, 0, COMMIT_TIMEOUT_MS, NULL, NULL, NULL) == 0)
            oe->dirty = 0;
        proto_cmd_free(cmd);
        free(addr);
    }
}

static void reset_op_free(reset_op *op)
{
    size_t i;

    for (i = 0; i < op->n; i++)
        lsmq__push_pq_unref(op->old[i]);
    free(op->held);
    free(op->old);
    free(op);
}

/* Start the held queues at their new offsets once no dropped one has a task running. */
static void reset_resume(mqclient *mqc, void *arg)
{
    reset_op *op = arg;
    lsmq_push_consumer *c = op->c;
    size_t i;

    if (!c->stopping) {
        for (i = 0; i < op->n; i++) {
            if (op->old[i]->consuming) {
                lsmq__mqc_after(mqc, RESET_POLL_MS, reset_resume, op);
                return;
            }
        }
        for (i = 0; i < op->n; i++) {
            const reset_entry *e = &op->held[i];
            pq *q = NULL;
            char key[600];

            lsmq__mq_key(key, sizeof key, op->sub->topic, e->broker, e->queue_id);
            HASH_FIND_STR(c->pqs, key, q);
            if (q)
                continue; /* cannot happen while resetting blocks rebalances */
            q = lsmq__push_pq_new(c, op->sub, e->broker, e->queue_id);
            q->next_offset = e->offset;
            proto_log(PROTO_LOG_INFO, "liblsmq: %s: queue %s:%s:%d reset to offset %lld", c->group,
                      op->sub->topic, e->broker, (int)e->queue_id, (long long)e->offset);
            lsmq__push_pq_start(q);
        }
    }
    c->resetting--;
    reset_op_free(op);
    lsmq__push_rebalance_soon(c, 0);
}

/* A reset that arrived while another one was waiting: applied after it, in order. */
typedef struct reset_req {
    lsmq_push_consumer *c;
    char *topic;
    uint8_t *body;
    size_t len;
} reset_req;

static void reset_apply(lsmq_push_consumer *c, const char *topic, const uint8_t *body,
                        size_t len);

static void reset_deferred(mqclient *mqc, void *arg)
{
    reset_req *r = arg;

    if (!r->c->stopping)
        reset_apply(r->c, r->topic, r->body, r->len);
    free(r->topic);
    free(r->body);
    free(r);
}

static void reset_apply(lsmq_push_consumer *c, const char *topic, const uint8_t *body,
                        size_t len)
{
    const subscription *sub = sub_of(c, topic);
    reset_entry *table = NULL;
    reset_op *op;
    size_t n = 0, i;

    if (c->resetting) {
        reset_req *r = proto_xcalloc(1, sizeof *r);

        r->c = c;
        r->topic = proto_xstrdup(topic);
        r->body = proto_xmalloc(len ? len : 1);
        if (len)
            memcpy(r->body, body, len);
        r->len = len;
        lsmq__mqc_after(c->mqc, RESET_POLL_MS, reset_deferred, r);
        return;
    }
    if (sub == NULL)
        return;
    if (lsmq__reset_parse_body(body, len, topic, &table, &n, NULL) != 0) {
        proto_log(PROTO_LOG_WARN, "liblsmq: %s: offset reset of %s: body does not parse", c->group,
                  topic);
        return;
    }
    op = proto_xcalloc(1, sizeof *op);
    op->c = c;
    op->sub = sub;
    op->held = proto_xcalloc(n ? n : 1, sizeof *op->held);
    op->old = proto_xcalloc(n ? n : 1, sizeof *op->old);
    for (i = 0; i < n; i++) {
        pq *q = NULL;
        char key[600];

        lsmq__mq_key(key, sizeof key, topic, table[i].broker, table[i].queue_id);
        HASH_FIND_STR(c->pqs, key, q);
        if (q == NULL)
            continue; /* not ours: its holder resets it (Java does the same) */
        drop_for_reset(q);
        store_and_commit(c, topic, &table[i]);
        op->held[op->n] = table[i];
        op->old[op->n++] = q;
    }
    proto_log(PROTO_LOG_INFO, "liblsmq: %s: offsets of %s reset by the broker: %zu of %zu queues held here",
              c->group, topic, op->n, n);
    free(table);
    c->resetting++;
    reset_resume(c->mqc, op);
}

static void on_reset(lsmq_push_consumer *c, const proto_cmd *req)
{
    const char *group = proto_cmd_get(req, "group");
    const char *topic = proto_cmd_get(req, "topic");

    if (c->stopping || !group || !topic || strcmp(group, c->group) != 0 ||
        sub_of(c, topic) == NULL) {
        proto_log(PROTO_LOG_INFO, "liblsmq: %s: offset reset of group %s topic %s ignored", c->group,
                  group ? group : "?", topic ? topic : "?");
        return;
    }
    proto_log(PROTO_LOG_INFO, "liblsmq: %s: offset reset of %s to timestamp %s", c->group, topic,
              proto_cmd_get(req, "timestamp") ? proto_cmd_get(req, "timestamp") : "?");
    reset_apply(c, topic, req->body, req->body_len);
}

/* ------------------------------------------------------------------ */
/* GET_CONSUMER_STATUS_FROM_CLIENT                                     */
/* ------------------------------------------------------------------ */

/* {"consumerTable":{},"messageQueueTable":{MessageQueue:offset,...}} in fastjson form. */
static char *status_body(lsmq_push_consumer *c, const char *group, const char *topic,
                         size_t *len)
{
    proto_buf b = {0};
    ostore_entry *e, *tmp;
    int first = 1;

    proto_buf_put(&b, "{\"consumerTable\":{},\"messageQueueTable\":{", 41);
    if (group && topic && strcmp(group, c->group) == 0) {
        HASH_ITER(hh, c->offsets.map, e, tmp) {
            json_t *mq;
            char *key, num[32];

            if (e->offset < 0 || strcmp(e->topic, topic) != 0)
                continue;
            mq = json_object();
            json_object_set_new(mq, "brokerName", json_string(e->broker));
            json_object_set_new(mq, "queueId", json_integer(e->queue_id));
            json_object_set_new(mq, "topic", json_string(e->topic));
            key = json_dumps(mq, JSON_COMPACT | JSON_SORT_KEYS);
            json_decref(mq);
            if (key == NULL)
                continue;
            if (!first)
                proto_buf_put(&b, ",", 1);
            first = 0;
            proto_buf_put(&b, key, strlen(key));
            snprintf(num, sizeof num, ":%lld", (long long)e->offset);
            proto_buf_put(&b, num, strlen(num));
            free(key);
        }
    }
    proto_buf_put(&b, "}}", 2);
    *len = b.len;
    return proto_buf_take(&b);
}

/* ------------------------------------------------------------------ */
/* The hook                                                            */
/* ------------------------------------------------------------------ */

int lsmq__push_peer_request(void *arg, const proto_cmd *req, proto_cmd **resp, char **body,
                       size_t *body_len)
{
    lsmq_push_consumer *c = arg;

    *resp = NULL;
    *body = NULL;
    *body_len = 0;
    if (req->code == RC_RESET_CONSUMER_CLIENT_OFFSET) {
        on_reset(c, req);
        return 1; /* oneway: no answer */
    }
    if (req->code == CLIENT_RC_GET_CONSUMER_STATUS_FROM_CLIENT) {
        *body = status_body(c, proto_cmd_get(req, "group"), proto_cmd_get(req, "topic"),
                            body_len);
        *resp = proto_cmd_response(RS_SUCCESS, req->opaque, NULL);
        return 1;
    }
    return 0;
}
