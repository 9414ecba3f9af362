/*
 * QUERY_CONSUME_TIME_SPAN(303): for each write queue of a topic, the store
 * times of its oldest and newest message, of the last message a group
 * consumed and how far behind the group is (REMOTING.md §3.10). The body
 * is QueryConsumeTimeSpanBody as fastjson writes it, the *Str getters of
 * QueueTimeSpan included:
 *   {"consumeTimeSpanSet":[{"consumeTimeStamp":..,"consumeTimeStampStr":..,
 *     "delayTime":..,"maxTimeStamp":..,"maxTimeStampStr":..,
 *     "messageQueue":{..},"minTimeStamp":..,"minTimeStampStr":..}]}
 *
 * Values follow AdminBrokerProcessor.queryConsumeTimeSpan: a missing store
 * time is -1, the consume time is that of the message before the committed
 * offset (the oldest message's time without a commit), and delayTime is
 * now minus the store time of the next message to consume when there is
 * one. Unlike the Java broker, that next message is looked up at the
 * queue's min offset when the commit is missing or trimmed away, rather
 * than reported as a delay of "now".
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "broker_hdr.h"
#include "broker_internal.h"
#include "clock.h"

/* Store time of the message at `offset`, or -1 (getMessageStoreTimeStamp). */
static int64_t store_time_at(engine *e, uint32_t topic_id, uint32_t q, int64_t offset)
{
    if (offset < 0)
        return -1;
    engine_read_result rr = {0};
    int64_t ts = -1;
    proto_record r;
    if (engine_read_by_id(e, topic_id, q, (uint64_t)offset, 1, 1, &rr) == 0 &&
        rr.status == ENGINE_READ_FOUND && rr.count > 0 &&
        proto_record_decode(rr.data, rr.len, &r) > 0 && r.queue_offset == offset)
        ts = r.store_timestamp;
    engine_free(rr.data);
    return ts;
}

/* UtilAll.formatDate(ms, "yyyy-MM-dd#HH:mm:ss:SSS") in local time. */
static json_t *time_str(int64_t ms)
{
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int millis = (int)(ms - (int64_t)secs * 1000);
    struct tm tm;
    char buf[64];
    localtime_r(&secs, &tm);
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%d#%H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ":%03d", millis);
    return json_string(buf);
}

static json_t *queue_span(const broker_ctx *bx, const engine_topic_config *tc,
                          const char *group, uint32_t q, int64_t now)
{
    engine *e = bx->engine;
    uint64_t min = 0, max = 0, committed = 0;
    engine_queue_offsets_by_id(e, tc->topic_id, q, &min, &max);
    int64_t consumer = engine_offset_get(e, group, strlen(group), tc->name, strlen(tc->name), q,
                                         &committed) == 0
                           ? (int64_t)committed
                           : -1;
    int64_t min_time = min < max ? store_time_at(e, tc->topic_id, q, (int64_t)min) : -1;
    int64_t max_time = store_time_at(e, tc->topic_id, q, (int64_t)max - 1);
    int64_t consume_time =
        consumer > 0 ? store_time_at(e, tc->topic_id, q, consumer - 1) : min_time;
    int64_t delay = 0;
    if (consumer < (int64_t)max) {
        int64_t next = consumer > (int64_t)min ? consumer : (int64_t)min;
        int64_t next_time = store_time_at(e, tc->topic_id, q, next);
        if (next_time >= 0)
            delay = now - next_time;
    }
    json_t *o = json_object();
    json_object_set_new(o, "consumeTimeStamp", json_integer(consume_time));
    json_object_set_new(o, "consumeTimeStampStr", time_str(consume_time));
    json_object_set_new(o, "delayTime", json_integer(delay));
    json_object_set_new(o, "maxTimeStamp", json_integer(max_time));
    json_object_set_new(o, "maxTimeStampStr", time_str(max_time));
    json_object_set_new(o, "messageQueue", broker_json_mq(bx->cfg.broker_name, tc->name, q));
    json_object_set_new(o, "minTimeStamp", json_integer(min_time));
    json_object_set_new(o, "minTimeStampStr", time_str(min_time));
    return o;
}

static void on_query_consume_time_span(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_admin *ad = ctx;
    const char *topic = broker_require(c, req, "topic");
    const char *group = topic ? broker_require(c, req, "group") : NULL;
    if (!group)
        return;
    char remark[BROKER_REMARK_MAX];
    engine_topic_config tc;
    if (engine_topic_get(ad->ctx->engine, topic, strlen(topic), &tc) != 0) {
        snprintf(remark, sizeof remark, "topic[%.200s] not exist", topic);
        server_conn_reply_code(c, req->opaque, RS_TOPIC_NOT_EXIST, remark);
        return;
    }
    if (!broker_group_known(ad->ctx->engine, ad->clients, group)) {
        snprintf(remark, sizeof remark, "Group %.200s does not exist", group);
        server_conn_reply_code(c, req->opaque, RS_SUBSCRIPTION_GROUP_NOT_EXIST, remark);
        return;
    }
    int64_t now = proto_wall_ms();
    json_t *set = json_array();
    for (uint32_t q = 0; q < tc.write_queue_nums; q++)
        json_array_append_new(set, queue_span(ad->ctx, &tc, group, q, now));
    json_t *body = json_object();
    json_object_set_new(body, "consumeTimeSpanSet", set);
    broker_reply_json(c, req->opaque, body);
}

void broker_timespan_register(broker_modules *m)
{
    server_register(m->ctx.srv, RC_QUERY_CONSUME_TIME_SPAN, on_query_consume_time_span, m->admin);
}
