/*
 * CONSUMER_SEND_MSG_BACK (REMOTING.md §3.5, §6.7): a consumer failed to
 * process a message and hands it back by its log position. The broker
 * writes a new record carrying the same body, flag, born host and time,
 * properties and tags, with RECONSUMETIMES one higher, to the group's retry
 * topic %RETRY%<group>; once the message has been retried maxReconsumeTimes
 * times (or the client asks with delayLevel < 0) it goes to the dead-letter
 * topic %DLQ%<group> instead. The first hand-back records where the message
 * came from in RETRY_TOPIC and ORIGIN_MESSAGE_ID.
 *
 * The append goes through the store's writer; its completion is posted back
 * to the loop, which answers the consumer and wakes pulls parked on the
 * target queue.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_internal.h"
#include "log.h"
#include "message_id.h"
#include "props.h"

#define PROP_RETRY_TOPIC "RETRY_TOPIC"
#define PROP_ORIGIN_MESSAGE_ID "ORIGIN_MESSAGE_ID"
/* Clients from V3_4_9 on may set the retry limit per request (§1.8). */
#define VERSION_HONOURS_MAX_RECONSUME 121

/* The request header (ConsumerSendMsgBackRequestHeader). */
typedef struct sendback_req {
    int64_t offset;           /* log position of the consumed message */
    const char *group;
    int32_t delay_level;
    int32_t max_reconsume;    /* -1: the group's retryMaxTimes */
} sendback_req;

/* An append in flight: what the loop needs to answer when the writer is done. */
typedef struct sendback_job {
    broker *b;
    uint64_t conn_id;
    int32_t opaque;
    uint32_t queue_id;
    int status;
    char error[128];
    char topic[PROTO_TOPIC_MAX + 1];
} sendback_job;

static int parse_request(conn *c, const proto_cmd *req, sendback_req *out)
{
    memset(out, 0, sizeof *out);
    if (broker_require_i64(c, req, "offset", &out->offset) != 0 ||
        !(out->group = broker_require(c, req, "group")) ||
        broker_require_i32(c, req, "delayLevel", &out->delay_level) != 0)
        return -1;
    out->max_reconsume = -1;
    int32_t max = 0;
    if (req->version >= VERSION_HONOURS_MAX_RECONSUME &&
        proto_cmd_get_i32(req, "maxReconsumeTimes", &max) == 0)
        out->max_reconsume = max;
    return 0;
}

/* Loop thread: the append finished. */
static void job_done_on_loop(void *arg)
{
    sendback_job *job = arg;
    conn *c = server_conn_find(broker_server(job->b), job->conn_id);
    if (job->status == 0) {
        broker_pull_notify(job->b, job->topic, job->queue_id);
        if (c)
            conn_reply_code(c, job->opaque, RS_SUCCESS, NULL);
    } else {
        lsmq_log("broker: send-back to %s failed: %s", job->topic, job->error);
        if (c)
            conn_reply_code(c, job->opaque, broker_store_error_code(job->status), job->error);
    }
    free(job);
}

/* Writer thread: keep the outcome and hand the job to the loop. */
static void append_cb(void *ctx, const engine_append_result *r)
{
    sendback_job *job = ctx;
    job->status = r->status;
    snprintf(job->error, sizeof job->error, "%s",
             r->error ? r->error : lsmq_strerror(r->status));
    server_post(broker_server(job->b), job_done_on_loop, job);
}

/*
 * The new record's properties: the old ones without DELAY, plus RETRY_TOPIC
 * and ORIGIN_MESSAGE_ID when the message has none yet. Returns the malloc'ed
 * string and its length through *len.
 */
static char *build_props(const proto_record *old, const char *origin_msgid, uint32_t *len)
{
    size_t cap = old->props_len + old->topic_len + PROTO_MSGID_V6_LEN + 64;
    char *buf = malloc(cap);
    if (!buf)
        abort();
    size_t used = 0;
    bool has_retry_topic = false, has_origin = false;
    proto_props_iter it;
    const char *name, *value;
    size_t nlen, vlen;
    proto_props_iter_init(&it, old->props, old->props_len);
    while (proto_props_next(&it, &name, &nlen, &value, &vlen)) {
        /* Redelivery delays are not implemented yet, so a retry is appended
         * for immediate delivery and a stale DELAY must not travel with it. */
        if (nlen == strlen(PROTO_PROP_DELAY) && memcmp(name, PROTO_PROP_DELAY, nlen) == 0)
            continue;
        if (nlen == strlen(PROP_RETRY_TOPIC) && memcmp(name, PROP_RETRY_TOPIC, nlen) == 0)
            has_retry_topic = true;
        if (nlen == strlen(PROP_ORIGIN_MESSAGE_ID) &&
            memcmp(name, PROP_ORIGIN_MESSAGE_ID, nlen) == 0)
            has_origin = true;
        proto_props_append(buf, cap, &used, name, nlen, value, vlen);
    }
    if (!has_retry_topic)
        proto_props_append(buf, cap, &used, PROP_RETRY_TOPIC, strlen(PROP_RETRY_TOPIC), old->topic,
                           old->topic_len);
    if (!has_origin)
        proto_props_append(buf, cap, &used, PROP_ORIGIN_MESSAGE_ID,
                           strlen(PROP_ORIGIN_MESSAGE_ID), origin_msgid, strlen(origin_msgid));
    *len = (uint32_t)used;
    return buf;
}

/*
 * Ensure a retry or dead-letter topic of the group exists with `queues`
 * queues and is writable. Returns -1 when the request is done: answered
 * with an error, or kept until the topic is stored (it runs again then).
 */
static int ensure_topic(broker *b, conn *c, const proto_cmd *req, const char *prefix,
                        const char *group, uint32_t queues, char *topic,
                        engine_topic_config *tc)
{
    int32_t opaque = req->opaque;
    int n = snprintf(topic, PROTO_TOPIC_MAX + 1, "%s%s", prefix, group);
    if (n < 0 || n > PROTO_TOPIC_MAX) {
        broker_reply_codef(c, opaque, RS_SYSTEM_ERROR,
                           "the group name is too long for topic %s%.32s...", prefix, group);
        return -1;
    }
    int rc = broker_topic_ensure_for(b, c, req, topic, queues,
                                     ENGINE_PERM_READ | ENGINE_PERM_WRITE, tc);
    if (rc == BROKER_DEFERRED)
        return -1;
    if (rc != 0) {
        broker_reply_codef(c, opaque, RS_SYSTEM_ERROR, "topic[%s] not exist", topic);
        return -1;
    }
    if (!(tc->perm & ENGINE_PERM_WRITE)) {
        broker_reply_codef(c, opaque, RS_NO_PERMISSION,
                           "the topic[%s] sending message is forbidden", topic);
        return -1;
    }
    return 0;
}

/*
 * Pick the target: the DLQ (queue 0) when retries are used up or the client
 * asks for it, else a queue of the retry topic (already ensured as `retry`).
 * On failure replies and returns -1.
 */
static int choose_target(broker *b, conn *c, const proto_cmd *req, const sendback_req *r,
                         const broker_group_config *gc, int32_t reconsume_times,
                         const engine_topic_config *retry, char *topic, uint32_t *queue_id)
{
    int32_t max = r->max_reconsume >= 0 ? r->max_reconsume : gc->retry_max_times;
    if (reconsume_times >= max || r->delay_level < 0) {
        engine_topic_config dlq;
        if (ensure_topic(b, c, req, BROKER_DLQ_PREFIX, r->group, 1, topic, &dlq) != 0)
            return -1;
        lsmq_log("broker: message at %lld of group %s goes to %s after %d retries",
                 (long long)r->offset, r->group, topic, reconsume_times);
        *queue_id = 0;
        return 0;
    }
    snprintf(topic, PROTO_TOPIC_MAX + 1, "%s", retry->name);
    uint32_t queues = (uint32_t)gc->retry_queue_nums;
    if (retry->write_queue_nums < queues)
        queues = retry->write_queue_nums;
    *queue_id = queues <= 1 ? 0 : (uint32_t)random() % queues;
    return 0;
}

/* Build the new record from the old one and queue its append. */
static void append_copy(broker *b, conn *c, int32_t opaque, const proto_record *old,
                        const char *topic, uint32_t queue_id)
{
    char origin[PROTO_MSGID_V6_LEN + 1];
    proto_msgid_encode(&old->store_host, (uint64_t)old->physical_offset, origin);
    engine_msg m;
    memset(&m, 0, sizeof m);
    m.flag = old->flag;
    m.sys_flag = old->sys_flag & ~PROTO_SYSFLAG_TXN_MASK;
    m.born_timestamp = old->born_timestamp;
    m.born_host = old->born_host;
    m.reconsume_times = old->reconsume_times + 1;
    m.body = old->body;
    m.body_len = old->body_len;
    char *props = build_props(old, origin, &m.props_len);
    m.props = props;

    sendback_job *job = calloc(1, sizeof *job);
    if (!job)
        abort();
    job->b = b;
    job->conn_id = conn_id(c);
    job->opaque = opaque;
    job->queue_id = queue_id;
    snprintf(job->topic, sizeof job->topic, "%s", topic);
    int rc = engine_append(broker_engine(b), topic, strlen(topic), queue_id, &m, 1, append_cb, job);
    free(props); /* the engine copied the message */
    if (rc != 0) {
        conn_reply_code(c, opaque, broker_store_error_code(rc), lsmq_strerror(rc));
        free(job);
    }
}

static void on_send_msg_back(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker *b = ctx;
    sendback_req r;
    if (parse_request(c, req, &r) != 0)
        return;
    broker_group_config gc;
    int rc = broker_group_find_for(b, c, req, r.group, &gc);
    if (rc == BROKER_DEFERRED)
        return;
    if (rc != 0) {
        broker_reply_codef(c, req->opaque, RS_SUBSCRIPTION_GROUP_NOT_EXIST,
                           "subscription group not exist, %s", r.group);
        return;
    }
    if (!(broker_cfg(b)->broker_permission & ENGINE_PERM_WRITE)) {
        broker_reply_codef(c, req->opaque, RS_NO_PERMISSION,
                           "the broker[%s] sending message is forbidden", broker_addr(b));
        return;
    }
    if (gc.retry_queue_nums <= 0) { /* the group wants no retries: drop it (§6.7) */
        conn_reply_code(c, req->opaque, RS_SUCCESS, NULL);
        return;
    }
    char topic[PROTO_TOPIC_MAX + 1];
    engine_topic_config retry;
    if (ensure_topic(b, c, req, BROKER_RETRY_PREFIX, r.group,
                     (uint32_t)gc.retry_queue_nums, topic, &retry) != 0)
        return;
    uint8_t *rec = NULL;
    size_t len = 0;
    proto_record old;
    engine_view *v = NULL;
    int found = r.offset >= 0 && engine_view_open(broker_engine(b), &v) == 0 &&
                index_get_by_position(v, (uint64_t)r.offset, &rec, &len) == 0;
    engine_view_close(v);
    if (!found || proto_record_decode(rec, len, &old) < 0) {
        broker_reply_codef(c, req->opaque, RS_SYSTEM_ERROR,
                           "look message by offset failed, %lld", (long long)r.offset);
        engine_free(rec);
        return;
    }
    uint32_t queue_id = 0;
    if (choose_target(b, c, req, &r, &gc, old.reconsume_times, &retry, topic,
                      &queue_id) == 0)
        append_copy(b, c, req->opaque, &old, topic, queue_id);
    engine_free(rec);
}

void broker_sendback_register(broker *b)
{
    server_register(broker_server(b), RC_CONSUMER_SEND_MSG_BACK, on_send_msg_back, b);
}
