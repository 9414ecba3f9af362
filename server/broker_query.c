/*
 * Message look-ups for admin tools (REMOTING.md §3.10): QUERY_MESSAGE(12)
 * by key or unique key through the key index, and VIEW_MESSAGE_BY_ID(33)
 * by log position (the offset part of an offset message id).
 *
 * Both answer with stored records as the body, concatenated as in a pull
 * response, so clients decode them with the same code. The Java broker
 * streams the records from its commit log; here they are read from the
 * store on the loop thread, like every other read handler.
 *
 * QUERY_MESSAGE follows the 5.x broker: a unique-key query (ext field
 * _UNIQUE_KEY_QUERY=true) ignores maxNum and takes defaultQueryMaxNum (32),
 * and no query returns more than maxMsgsNumBatch (64) messages. Where the
 * Java broker would silently find nothing, an unknown topic, a time range
 * that ends before it begins and a maxNum below 1 are refused with a
 * remark that says which.
 *
 * A delayed message still pending is found by its keys, its unique key
 * and its offset id (the one its send returned), and is shown the way
 * upstream's store holds it until due: in topic SCHEDULE_TOPIC_XXXX, queue
 * level - 1, for a DELAY level, in rmq_sys_wheel_timer, queue 0, for a
 * timer message, with REAL_TOPIC and REAL_QID naming where it will go (the
 * record is re-encoded for the answer; the store keeps it under its real
 * topic). Upstream indexes it under those system topics, so a key query
 * for the real topic finds it only once delivered there; here the broker
 * answers it under the real topic too, and clients that keep only records
 * of the topic they asked for (Java's queryMsgByKey) drop it, as upstream
 * finds none. Once due, the delivered copy has its own offset id and the
 * same unique key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "broker_hdr.h"
#include "broker_internal.h"
#include "props.h"

#define UNIQUE_QUERY_FLAG "_UNIQUE_KEY_QUERY"
#define DEFAULT_QUERY_MAX_NUM 32  /* MessageStoreConfig.defaultQueryMaxNum */
#define MAX_MSGS_NUM_BATCH 64     /* MessageStoreConfig.maxMsgsNumBatch */
/* Stop adding records past this many body bytes (frames stop at 16 MiB). */
#define QUERY_BODY_MAX (12u << 20)

#define NOT_FOUND_REMARK "can not find message, maybe time range not correct"

/*
 * A pending record as upstream shows it (top of the file): *rec is replaced
 * by a malloc'ed copy when it can be re-encoded (engine_free is free(3), so
 * the caller frees either the same way).
 */
static void show_pending(uint8_t **rec, size_t *len)
{
    proto_record r;
    if (proto_record_decode(*rec, *len, &r) < 0)
        return;
    if (broker_delay_is_timer_record(r.props, r.props_len)) {
        r.topic = BROKER_TIMER_TOPIC;
        r.queue_id = 0;
    } else {
        const char *v;
        size_t vl;
        char num[8] = "1";
        if (proto_props_get(r.props, r.props_len, PROTO_PROP_DELAY, &v, &vl) && vl < sizeof num)
            snprintf(num, sizeof num, "%.*s", (int)vl, v);
        int level = atoi(num);
        r.topic = BROKER_SCHEDULE_TOPIC;
        r.queue_id = level > 0 ? level - 1 : 0;
    }
    r.topic_len = (uint32_t)strlen(r.topic);
    size_t size = proto_record_size(&r);
    uint8_t *out = size ? malloc(size) : NULL;
    if (!out || proto_record_encode(&r, out, size) < 0) {
        free(out);
        return;
    }
    engine_free(*rec);
    *rec = out;
    *len = size;
}

/* The body: the records of the hits that are still there, oldest first. */
static void collect_records(const engine_view *v, const index_key_hit *hits, size_t n,
                            broker_text *body, size_t *count)
{
    *count = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t *rec = NULL;
        size_t len = 0;
        if (index_get_by_position(v, hits[i].log_position, &rec, &len) != 0)
            continue; /* removed by retention, or delivered, since the index was read */
        if (hits[i].queue_id == ENGINE_QUEUE_PENDING)
            show_pending(&rec, &len);
        if (*count > 0 && body->len + len > QUERY_BODY_MAX) {
            engine_free(rec);
            break;
        }
        broker_text_add(body, (const char *)rec, len);
        engine_free(rec);
        (*count)++;
    }
}

static void on_query_message(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_ctx *bx = ctx;
    engine *e = bx->engine;
    const char *topic = broker_require(c, req, "topic");
    const char *key = topic ? broker_require(c, req, "key") : NULL;
    int32_t max_num;
    int64_t begin, end;
    if (!key || broker_require_i32(c, req, "maxNum", &max_num) != 0 ||
        broker_require_i64(c, req, "beginTimestamp", &begin) != 0 ||
        broker_require_i64(c, req, "endTimestamp", &end) != 0)
        return;
    const char *flag = proto_cmd_get(req, UNIQUE_QUERY_FLAG);
    bool unique = flag && strcmp(flag, "true") == 0;
    if (unique)
        max_num = DEFAULT_QUERY_MAX_NUM;
    char remark[BROKER_REMARK_MAX];
    uint32_t topic_id;
    if (engine_topic_id(e, topic, strlen(topic), &topic_id) != 0) {
        snprintf(remark, sizeof remark, "topic[%.200s] not exist", topic);
        server_conn_reply_code(c, req->opaque, RS_TOPIC_NOT_EXIST, remark);
        return;
    }
    if (end < begin) {
        snprintf(remark, sizeof remark,
                 "endTimestamp %lld is before beginTimestamp %lld: nothing can match",
                 (long long)end, (long long)begin);
        server_conn_reply_code(c, req->opaque, RS_INVALID_PARAMETER, remark);
        return;
    }
    if (max_num <= 0) {
        snprintf(remark, sizeof remark, "maxNum must be at least 1, not %d", max_num);
        server_conn_reply_code(c, req->opaque, RS_INVALID_PARAMETER, remark);
        return;
    }
    index_key_hit *hits = NULL;
    size_t n = 0;
    engine_view *v;
    int rc = engine_view_open(e, &v);
    if (rc == 0)
        rc = index_query_key(v, topic_id, key, strlen(key),
                             unique ? INDEX_KEY_UNIQ : INDEX_KEY_KEYS, begin, end,
                             max_num < MAX_MSGS_NUM_BATCH ? (size_t)max_num : MAX_MSGS_NUM_BATCH,
                             &hits, &n);
    if (rc != 0)
        engine_view_close(v);
    if (rc == LSMQ_EINVAL) {
        snprintf(remark, sizeof remark, "the key is empty or longer than %d bytes",
                 INDEX_KEY_MAX);
        server_conn_reply_code(c, req->opaque, RS_INVALID_PARAMETER, remark);
        return;
    }
    if (rc != 0) {
        snprintf(remark, sizeof remark, "cannot read the key index: %s", lsmq_strerror(rc));
        server_conn_reply_code(c, req->opaque, RS_SYSTEM_ERROR, remark);
        return;
    }
    broker_text body = {0};
    size_t count = 0;
    collect_records(v, hits, n, &body, &count);
    engine_free(hits);
    uint64_t last_pos = 0;
    int64_t last_ts = 0;
    if (index_edge_message(v, 1, &last_pos, &last_ts) != 0)
        last_pos = 0, last_ts = 0; /* an empty store */
    engine_view_close(v);
    proto_cmd *resp = proto_cmd_response(count ? RS_SUCCESS : RS_QUERY_NOT_FOUND, req->opaque,
                                         count ? NULL : NOT_FOUND_REMARK);
    proto_cmd_set_i64(resp, "indexLastUpdateTimestamp", last_ts);
    proto_cmd_set_i64(resp, "indexLastUpdatePhyoffset", (int64_t)last_pos);
    if (count)
        server_conn_reply_owned(c, req->opaque, resp, body.p, body.len);
    else
        server_conn_reply(c, req->opaque, resp, NULL, 0);
}

static void on_view_message_by_id(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_ctx *bx = ctx;
    int64_t offset;
    if (broker_require_i64(c, req, "offset", &offset) != 0)
        return;
    uint8_t *rec = NULL;
    size_t len = 0;
    engine_view *v = NULL;
    uint32_t topic_id = 0, queue_id = 0;
    uint64_t queue_offset = 0;
    int rc = offset < 0 ? LSMQ_ENOTFOUND : engine_view_open(bx->engine, &v);
    if (rc == 0)
        rc = index_locate(v, (uint64_t)offset, &topic_id, &queue_id, &queue_offset);
    if (rc == 0)
        rc = index_get_by_position(v, (uint64_t)offset, &rec, &len);
    engine_view_close(v);
    if (rc == 0 && queue_id == ENGINE_QUEUE_PENDING)
        show_pending(&rec, &len);
    if (rc != 0) {
        char remark[96];
        snprintf(remark, sizeof remark, "can not find message by the offset, %lld",
                 (long long)offset);
        server_conn_reply_code(c, req->opaque, RS_SYSTEM_ERROR, remark);
        return;
    }
    server_conn_reply_owned(c, req->opaque, proto_cmd_response(RS_SUCCESS, req->opaque, NULL), rec, len);
}

/* Stateless: the handlers get the shared context. */
void broker_query_register(broker_modules *m)
{
    server *s = m->ctx.srv;
    server_register(s, RC_QUERY_MESSAGE, on_query_message, &m->ctx);
    server_register(s, RC_VIEW_MESSAGE_BY_ID, on_view_message_by_id, &m->ctx);
}
