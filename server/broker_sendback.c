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
 * A retry is delivered after a back-off, as upstream's: delay level
 * 3 + reconsumeTimes when the client leaves it to the broker (delayLevel
 * 0), the client's level when positive, clamped to the highest level of
 * messageDelayLevel. A group with a 5.x groupRetryPolicy (EXPONENTIAL, or
 * CUSTOMIZED with its own `next` list; set by updateSubGroup) waits what
 * the policy says instead when the level is left to the broker: upstream
 * applies those policies only through its proxy, lsmq to every client. The
 * retry is appended with engine_append_timed and carries DELAY (or
 * TIMER_OUT_MS), REAL_TOPIC and REAL_QID like any delayed message; a dead
 * letter goes at once, with DELAY=0 as upstream's.
 *
 * The group's config and the retry or dead-letter topic are created when
 * missing; the request then waits for those writes as a job that goes on
 * where it stopped (broker_internal.h). The append goes through the
 * store's writer; its completion is posted back to the loop, which answers
 * the consumer and wakes pulls parked on the target queue.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "broker_hdr.h"
#include "broker_internal.h"
#include "clock.h"
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

struct broker_sendback {
    broker_ctx *ctx;
    broker_meta *meta;        /* groups, %RETRY% and %DLQ% topics created on the way */
    broker_pull *pull;        /* woken after the append */
};

/* Where a send-back stopped while a config write it needs is on its way. */
typedef enum sendback_step {
    SENDBACK_AT_GROUP,        /* the group's config (auto-created) */
    SENDBACK_AT_RETRY_TOPIC,  /* %RETRY%<group> */
    SENDBACK_AT_DLQ,          /* %DLQ%<group>, the record already read */
} sendback_step;

/*
 * One send-back from the request to its answer: it may wait for config
 * writes (broker_internal.h, continuations), then for its append, whose
 * completion answers and frees it.
 */
typedef struct sendback_job {
    broker_wait wait;
    broker_sendback *sb;
    int32_t opaque;
    bool oneway;
    sendback_req r;           /* r.group points at group[] */
    sendback_step at;
    broker_group_config gc;
    engine_topic_config retry;
    uint8_t *rec;             /* the consumed record once read (engine_free) */
    proto_record old;         /* decoded from rec */
    uint32_t queue_id;        /* the append's target */
    char topic[PROTO_TOPIC_MAX + 1];
    broker_delay delay;       /* of a retry; a dead letter has none */
    int status;               /* the append's outcome */
    char error[128];
    char group[];
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

static void sendback_free(sendback_job *j)
{
    engine_free(j->rec);
    free(j);
}

/* Reply unless the request was oneway (a resumed job is outside its dispatch). */
static void sendback_reply(sendback_job *j, conn *c, int32_t code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void sendback_reply(sendback_job *j, conn *c, int32_t code, const char *fmt, ...)
{
    if (j->oneway)
        return;
    char remark[BROKER_REMARK_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(remark, sizeof remark, fmt, ap);
    va_end(ap);
    server_conn_reply_code(c, j->opaque, code, remark);
}

/* Loop thread: the append finished. */
static void sendback_done_cb(void *arg)
{
    sendback_job *j = arg;
    conn *c = j->oneway ? NULL : server_conn_find(j->sb->ctx->srv, j->wait.conn_id);
    if (j->status == 0) {
        if (!j->delay.delayed)
            broker_pull_notify(j->sb->pull, j->topic, j->queue_id);
        if (c)
            server_conn_reply_code(c, j->opaque, RS_SUCCESS, NULL);
    } else {
        proto_log(PROTO_LOG_WARN, "broker: send-back to %s failed: %s", j->topic, j->error);
        if (c)
            server_conn_reply_code(c, j->opaque, broker_store_error_code(j->status), j->error);
    }
    sendback_free(j);
}

/* Writer thread: keep the outcome and hand the job to the loop. */
static void append_cb(void *ctx, const engine_append_result *r)
{
    sendback_job *j = ctx;
    j->status = r->status;
    snprintf(j->error, sizeof j->error, "%s", r->error ? r->error : lsmq_strerror(r->status));
    server_post(j->sb->ctx->srv, sendback_done_cb, j);
}

/*
 * The new record's properties: the old ones without DELAY and the pending
 * pairs of an earlier delay, plus RETRY_TOPIC and ORIGIN_MESSAGE_ID when the
 * message has none yet, then the retry's own delay pairs. Returns the
 * malloc'ed string and its length through *len.
 */
static char *build_props(const sendback_job *j, const char *origin_msgid, uint32_t *len)
{
    const proto_record *old = &j->old;
    broker_delay any = {.delayed = true};
    size_t cap = old->props_len + old->topic_len + PROTO_MSGID_V6_LEN + 64 +
                 BROKER_DELAY_PROPS_ROOM + strlen(j->topic);
    char *buf = proto_xmalloc(cap);
    size_t used = 0;
    bool has_retry_topic = false, has_origin = false;
    proto_props_iter it;
    const char *name, *value;
    size_t nlen, vlen;
    proto_props_iter_init(&it, old->props, old->props_len);
    while (proto_props_next(&it, &name, &nlen, &value, &vlen)) {
        /* The last delivery's DELAY, REAL_TOPIC, ... are replaced by this one's. */
        if (broker_delay_replaces(&any, name, nlen))
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
    if (j->delay.delayed)
        broker_delay_add_props(&j->delay, j->topic, j->queue_id, j->delay.now_ms, buf, cap,
                               &used);
    else /* a dead letter, with the level 0 upstream's send-back gives it */
        proto_props_append(buf, cap, &used, PROTO_PROP_DELAY, strlen(PROTO_PROP_DELAY), "0", 1);
    *len = (uint32_t)used;
    return buf;
}

/*
 * Ensure a retry or dead-letter topic of the group exists with `queues`
 * queues and is writable; its name goes to j->topic. 0, BROKER_WAITING, or
 * -1 once answered with an error.
 */
static int ensure_topic(sendback_job *j, conn *c, const char *prefix, uint32_t queues,
                        engine_topic_config *tc)
{
    int n = snprintf(j->topic, sizeof j->topic, "%s%s", prefix, j->r.group);
    if (n < 0 || n > PROTO_TOPIC_MAX) {
        sendback_reply(j, c, RS_SYSTEM_ERROR, "the group name is too long for topic %s%.32s...",
                       prefix, j->r.group);
        return -1;
    }
    int rc = broker_meta_topic_ensure(j->sb->meta, j->topic, queues,
                                      ENGINE_PERM_READ | ENGINE_PERM_WRITE, tc, &j->wait);
    if (rc == BROKER_WAITING)
        return rc;
    if (rc == LSMQ_EBUSY) {
        sendback_reply(j, c, RS_SYSTEM_BUSY, "%s", BROKER_BUSY_REMARK);
        return -1;
    }
    if (rc != 0) {
        sendback_reply(j, c, RS_SYSTEM_ERROR, "topic[%s] not exist", j->topic);
        return -1;
    }
    if (!(tc->perm & ENGINE_PERM_WRITE)) {
        sendback_reply(j, c, RS_NO_PERMISSION, "the topic[%s] sending message is forbidden",
                       j->topic);
        return -1;
    }
    return 0;
}

/* Build the new record from the old one and queue its append; the job goes with it. */
static void append_copy(sendback_job *j, conn *c)
{
    const proto_record *old = &j->old;
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
    char *props = build_props(j, origin, &m.props_len);
    m.props = props;
    engine *e = j->sb->ctx->engine;
    size_t tlen = strlen(j->topic);
    int rc = j->delay.delayed ? engine_append_timed(e, j->topic, tlen, j->queue_id, &m, 1,
                                                    j->delay.deliver_ms, append_cb, j)
                              : engine_append(e, j->topic, tlen, j->queue_id, &m, 1, append_cb, j);
    free(props); /* the engine copied the message */
    if (rc != 0) {
        sendback_reply(j, c, broker_store_error_code(rc), "%s", lsmq_strerror(rc));
        sendback_free(j);
    }
}

/* The group's config is known: check what is allowed before its retry topic. -1 once answered. */
static int check_group(sendback_job *j, conn *c)
{
    const broker_config *cfg = &j->sb->ctx->cfg;
    if (!(cfg->broker_permission & ENGINE_PERM_WRITE)) {
        sendback_reply(j, c, RS_NO_PERMISSION, "the broker[%s] sending message is forbidden",
                       j->sb->ctx->addr);
        return -1;
    }
    if (j->gc.retry_queue_nums <= 0) { /* the group wants no retries: drop it (§6.7) */
        if (!j->oneway)
            server_conn_reply_code(c, j->opaque, RS_SUCCESS, NULL);
        return -1;
    }
    return 0;
}

/* Read the consumed message by its log position. -1 once answered. */
static int read_record(sendback_job *j, conn *c)
{
    size_t len = 0;
    engine_view *v = NULL;
    int found = j->r.offset >= 0 && engine_view_open(j->sb->ctx->engine, &v) == 0 &&
                index_get_by_position(v, (uint64_t)j->r.offset, &j->rec, &len) == 0;
    engine_view_close(v);
    if (!found || proto_record_decode(j->rec, len, &j->old) < 0) {
        sendback_reply(j, c, RS_SYSTEM_ERROR, "look message by offset failed, %lld",
                       (long long)j->r.offset);
        return -1;
    }
    return 0;
}

/*
 * The target: the DLQ (queue 0) when retries are used up or the client
 * asks for it, else a queue of the retry topic (already ensured).
 */
static bool wants_dlq(const sendback_job *j)
{
    int32_t max = j->r.max_reconsume >= 0 ? j->r.max_reconsume : j->gc.retry_max_times;
    return j->old.reconsume_times >= max || j->r.delay_level < 0;
}

static void pick_retry_queue(sendback_job *j)
{
    snprintf(j->topic, sizeof j->topic, "%s", j->retry.name);
    uint32_t queues = (uint32_t)j->gc.retry_queue_nums;
    if (j->retry.write_queue_nums < queues)
        queues = j->retry.write_queue_nums;
    j->queue_id = queues <= 1 ? 0 : (uint32_t)random() % queues;
}

/* The retry's back-off: the group's retry policy, or a delay level (top of the file). */
static void retry_delay(sendback_job *j)
{
    const broker_config *cfg = &j->sb->ctx->cfg;
    broker_delay *d = &j->delay;
    int32_t times = j->old.reconsume_times;
    d->delayed = true;
    d->now_ms = proto_wall_ms();
    int64_t policy_ms = j->r.delay_level == 0
                            ? broker_retry_policy_delay_ms(&j->gc.retry_policy, times)
                            : -1;
    if (policy_ms >= 0) {
        d->deliver_ms = d->now_ms + policy_ms;
        return;
    }
    int32_t level = j->r.delay_level > 0 ? j->r.delay_level
                                         : 3 + (times < 0 ? 0 : times > 1000 ? 1000 : times);
    d->level = broker_delay_level_clamp(cfg, level);
    d->deliver_ms = d->now_ms + broker_delay_level_ms(cfg, d->level);
}

/* Go on from the step the send-back stopped at, to its append, an answer, or a wait. */
static void sendback_run(sendback_job *j, conn *c)
{
    int rc;
    if (j->at == SENDBACK_AT_GROUP) {
        rc = broker_group_find(j->sb->ctx, j->sb->meta, j->r.group, &j->gc, &j->wait);
        if (rc == BROKER_WAITING)
            return;
        if (rc == LSMQ_EBUSY)
            sendback_reply(j, c, RS_SYSTEM_BUSY, "%s", BROKER_BUSY_REMARK);
        else if (rc != 0)
            sendback_reply(j, c, RS_SUBSCRIPTION_GROUP_NOT_EXIST,
                           "subscription group not exist, %s", j->r.group);
        if (rc != 0 || check_group(j, c) != 0)
            goto done;
        j->at = SENDBACK_AT_RETRY_TOPIC;
    }
    if (j->at == SENDBACK_AT_RETRY_TOPIC) {
        rc = ensure_topic(j, c, BROKER_RETRY_PREFIX, (uint32_t)j->gc.retry_queue_nums, &j->retry);
        if (rc == BROKER_WAITING)
            return;
        if (rc != 0 || read_record(j, c) != 0)
            goto done;
        if (!wants_dlq(j)) {
            pick_retry_queue(j);
            retry_delay(j);
            append_copy(j, c);
            return;
        }
        j->at = SENDBACK_AT_DLQ;
    }
    engine_topic_config dlq;
    rc = ensure_topic(j, c, BROKER_DLQ_PREFIX, 1, &dlq);
    if (rc == BROKER_WAITING)
        return;
    if (rc != 0)
        goto done;
    proto_log(PROTO_LOG_INFO, "broker: message at %lld of group %s goes to %s after %d retries",
             (long long)j->r.offset, j->r.group, j->topic, j->old.reconsume_times);
    j->queue_id = 0;
    append_copy(j, c);
    return;
done:
    sendback_free(j);
}

static void sendback_resume_cb(broker_wait *w, conn *c)
{
    sendback_run(BROKER_JOB_OF(w, sendback_job, wait), c);
}

static void sendback_drop_cb(broker_wait *w)
{
    sendback_free(BROKER_JOB_OF(w, sendback_job, wait));
}

static void on_consumer_send_msg_back(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_sendback *sb = ctx;
    if (sb->ctx->replica) {
        /* Upstream's slave fails the put (SERVICE_NOT_AVAILABLE) and answers SYSTEM_ERROR;
         * the client then sends the message to its retry topic on a master. */
        char remark[BROKER_REMARK_MAX];
        snprintf(remark, sizeof remark, BROKER_REPLICA_REMARK_FMT, sb->ctx->cfg.broker_name,
                 (long long)sb->ctx->cfg.broker_id);
        broker__reply_code(c, req, RS_SYSTEM_ERROR, remark);
        return;
    }
    if (sb->ctx->fenced) {
        char remark[BROKER_REMARK_MAX];
        snprintf(remark, sizeof remark, BROKER_FENCED_REMARK_FMT, sb->ctx->cfg.broker_name);
        broker__reply_code(c, req, RS_SYSTEM_ERROR, remark);
        return;
    }
    sendback_req r;
    if (parse_request(c, req, &r) != 0)
        return;
    size_t glen = strlen(r.group);
    sendback_job *j = proto_xcalloc(1, sizeof *j + glen + 1);
    broker_wait_init(&j->wait, c, sendback_resume_cb, sendback_drop_cb);
    j->sb = ctx;
    j->opaque = req->opaque;
    j->oneway = proto_cmd_is_oneway(req);
    memcpy(j->group, r.group, glen + 1);
    j->r = r;
    j->r.group = j->group;
    j->at = SENDBACK_AT_GROUP;
    sendback_run(j, c);
}

/* Needs meta and pull. */
int broker_sendback_create(broker_modules *m, char *errbuf, size_t errlen)
{
    broker_sendback *sb = proto_xcalloc(1, sizeof *sb);
    sb->ctx = &m->ctx;
    sb->meta = m->meta;
    sb->pull = m->pull;
    m->sendback = sb;
    return 0;
}

void broker_sendback_destroy(broker_modules *m)
{
    free(m->sendback);
    m->sendback = NULL;
}

void broker_sendback_register(broker_modules *m)
{
    server_register(m->ctx.srv, RC_CONSUMER_SEND_MSG_BACK, on_consumer_send_msg_back,
                    m->sendback);
}
