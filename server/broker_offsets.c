/*
 * Consumer offsets and queue position queries (REMOTING.md §3.3, §3.7,
 * §6.4): QUERY_CONSUMER_OFFSET(14), UPDATE_CONSUMER_OFFSET(15),
 * GET_MAX_OFFSET(30), GET_MIN_OFFSET(31), GET_EARLIEST_MSG_STORETIME(32)
 * and SEARCH_OFFSET_BY_TIMESTAMP(29).
 *
 * Reads answer at once on the loop thread. An offset commit goes through
 * the writer without blocking the loop (engine_offset_set_async); when the
 * client waits for an answer (it usually sends oneway), the writer's
 * completion is brought back with server_post and answered from there.
 *
 * Unknown topics and queues read as empty (offset 0), as the Java broker's
 * store answers for a consume queue it does not have.
 *
 * A replica cannot write its store: commits sent to it (clients send them
 * there when the master is gone, as to upstream's slaves) are held in
 * memory and answer queries until the master's log speaks for the queue
 * again (broker_held_offsets.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "broker_hdr.h"
#include "broker_internal.h"

#define QUERY_NOT_FOUND_REMARK "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first"
/* Undecodable records skipped while looking for the earliest store time. */
#define EARLIEST_MAX_SKIPS 16

/* A waiting UPDATE_CONSUMER_OFFSET, answered from the commit's completion. */
typedef struct commit_job {
    server *srv;
    uint64_t conn_id;
    int32_t opaque;
    int status;
} commit_job;

static void reply_value(conn *c, const proto_cmd *req, const char *field, int64_t value)
{
    if (proto_cmd_is_oneway(req))
        return;
    proto_cmd *resp = proto_cmd_response(RS_SUCCESS, req->opaque, NULL);
    proto_cmd_set_i64(resp, field, value);
    server_conn_reply(c, req->opaque, resp, NULL, 0);
}

/* topic! and queueId!, common to every request here. */
static int topic_queue(const proto_cmd *req, const char **topic, int32_t *queue, char *remark)
{
    if (broker__hdr_str(req, "topic", NULL, topic, remark) ||
        broker__hdr_i32(req, "queueId", NULL, queue, remark))
        return RS_SYSTEM_ERROR;
    return 0;
}

/* Min and max offset of a queue; an unknown topic or queue reads as empty. */
static void queue_bounds(engine *e, const char *topic, int32_t queue, uint64_t *min,
                         uint64_t *max)
{
    *min = *max = 0;
    if (queue < 0 ||
        engine_queue_offsets(e, topic, strlen(topic), (uint32_t)queue, min, max) != 0)
        *min = *max = 0;
}

/* ------------------------------------------------------------------ */
/* QUERY_CONSUMER_OFFSET                                               */
/* ------------------------------------------------------------------ */

/*
 * No stored offset: a queue that starts at 0 gives 0 (4.x, and 5.x while
 * its first message is in memory), so a new group reads a new topic from
 * the start; setZeroIfNotFound=false or a trimmed queue gives
 * QUERY_NOT_FOUND and the client applies its consumeFromWhere.
 */
static void on_query_consumer_offset(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_modules *m = ctx;
    broker_ctx *bx = &m->ctx;
    char remark[BROKER_REMARK_MAX];
    const char *group, *topic;
    int32_t queue;
    if (broker__hdr_str(req, "consumerGroup", NULL, &group, remark) ||
        topic_queue(req, &topic, &queue, remark)) {
        broker__reply_code(c, req, RS_SYSTEM_ERROR, remark);
        return;
    }
    uint64_t off = 0;
    int rc = queue < 0 ? LSMQ_ENOTFOUND
                       : engine_offset_get(bx->engine, group, strlen(group), topic,
                                           strlen(topic), (uint32_t)queue, &off);
    uint64_t held;
    if (m->held_offsets && queue >= 0 && (rc == 0 || rc == LSMQ_ENOTFOUND) &&
        broker_held_offset_get(m->held_offsets, group, topic, (uint32_t)queue,
                               rc == 0 ? off : UINT64_MAX, &held)) {
        reply_value(c, req, "offset", (int64_t)held);
        return;
    }
    if (rc == 0) {
        reply_value(c, req, "offset", (int64_t)off);
        return;
    }
    if (rc != LSMQ_ENOTFOUND) {
        snprintf(remark, sizeof remark, "cannot read the consumer offset: %s",
                 lsmq_strerror(rc));
        broker__reply_code(c, req, RS_SYSTEM_ERROR, remark);
        return;
    }
    uint64_t min, max;
    queue_bounds(bx->engine, topic, queue, &min, &max);
    if (min == 0 && broker__hdr_bool(req, "setZeroIfNotFound", NULL, true))
        reply_value(c, req, "offset", 0);
    else
        broker__reply_code(c, req, RS_QUERY_NOT_FOUND, QUERY_NOT_FOUND_REMARK);
}

/* ------------------------------------------------------------------ */
/* UPDATE_CONSUMER_OFFSET                                              */
/* ------------------------------------------------------------------ */

/* Loop thread: the commit is durable (or failed); answer if the client is there. */
static void commit_done_cb(void *arg)
{
    commit_job *j = arg;
    conn *c = server_conn_find(j->srv, j->conn_id);
    if (c && j->status == 0) {
        proto_cmd *resp = proto_cmd_response(RS_SUCCESS, j->opaque, NULL);
        server_conn_reply(c, j->opaque, resp, NULL, 0);
    } else if (c) {
        char remark[BROKER_REMARK_MAX];
        snprintf(remark, sizeof remark, "cannot store the consumer offset: %s",
                 lsmq_strerror(j->status));
        server_conn_reply_code(c, j->opaque, broker_store_error_code(j->status), remark);
    }
    free(j);
}

/* Writer thread. */
static void commit_cb(void *ctx, int status)
{
    commit_job *j = ctx;
    j->status = status;
    server_post(j->srv, commit_done_cb, j);
}

/* A replica holds the commit in memory (see the top of the file). */
static void hold_offset(broker_modules *m, conn *c, const proto_cmd *req, const char *group,
                        const char *topic, uint32_t queue, uint64_t commit)
{
    uint64_t stored;
    if (engine_offset_get(m->ctx.engine, group, strlen(group), topic, strlen(topic), queue,
                          &stored) != 0)
        stored = UINT64_MAX;
    broker_held_offset_set(m->held_offsets, group, topic, queue, commit, stored);
    broker__reply_code(c, req, RS_SUCCESS, NULL);
}

static void on_update_consumer_offset(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_modules *m = ctx;
    broker_ctx *bx = &m->ctx;
    engine *e = bx->engine;
    char remark[BROKER_REMARK_MAX];
    const char *group, *topic;
    int32_t queue;
    int64_t commit;
    if (broker__hdr_str(req, "consumerGroup", NULL, &group, remark) ||
        topic_queue(req, &topic, &queue, remark) ||
        broker__hdr_i64(req, "commitOffset", NULL, &commit, remark)) {
        broker__reply_code(c, req, RS_SYSTEM_ERROR, remark);
        return;
    }
    engine_topic_config tc;
    if (engine_topic_get(e, topic, strlen(topic), &tc) != 0) {
        snprintf(remark, sizeof remark, "Topic %.200s not exist!", topic);
        broker__reply_code(c, req, RS_TOPIC_NOT_EXIST, remark);
        return;
    }
    if (queue < 0) {
        snprintf(remark, sizeof remark, "queueId[%d] is illegal, topic:[%s]", queue, topic);
        broker__reply_code(c, req, RS_INVALID_PARAMETER, remark);
        return;
    }
    /* ali-ons commits -1 for queues it has no offset for: nothing to store. */
    if (commit < 0) {
        broker__reply_code(c, req, RS_SUCCESS, NULL);
        return;
    }
    if (m->held_offsets) {
        hold_offset(m, c, req, group, topic, (uint32_t)queue, (uint64_t)commit);
        return;
    }
    commit_job *j = NULL;
    if (!proto_cmd_is_oneway(req)) {
        j = proto_xcalloc(1, sizeof *j);
        *j = (commit_job){.srv = bx->srv, .conn_id = server_conn_id(c), .opaque = req->opaque};
    }
    int rc = engine_offset_set_async(e, group, strlen(group), topic, strlen(topic),
                                     (uint32_t)queue, (uint64_t)commit,
                                     j ? commit_cb : NULL, j);
    if (rc != 0) {
        free(j);
        snprintf(remark, sizeof remark, "cannot store the consumer offset: %s",
                 lsmq_strerror(rc));
        broker__reply_code(c, req, broker_store_error_code(rc), remark);
    }
}

/* ------------------------------------------------------------------ */
/* Queue positions                                                     */
/* ------------------------------------------------------------------ */

static void on_get_max_offset(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_ctx *bx = ctx;
    char remark[BROKER_REMARK_MAX];
    const char *topic;
    int32_t queue;
    if (topic_queue(req, &topic, &queue, remark)) {
        broker__reply_code(c, req, RS_SYSTEM_ERROR, remark);
        return;
    }
    uint64_t min, max;
    queue_bounds(bx->engine, topic, queue, &min, &max);
    reply_value(c, req, "offset", (int64_t)max);
}

static void on_get_min_offset(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_ctx *bx = ctx;
    char remark[BROKER_REMARK_MAX];
    const char *topic;
    int32_t queue;
    if (topic_queue(req, &topic, &queue, remark)) {
        broker__reply_code(c, req, RS_SYSTEM_ERROR, remark);
        return;
    }
    uint64_t min, max;
    queue_bounds(bx->engine, topic, queue, &min, &max);
    reply_value(c, req, "offset", (int64_t)min);
}

/* Store time of the first live record of a queue, or -1 when it has none. */
static int64_t earliest_store_time(engine *e, const char *topic, uint32_t queue)
{
    uint64_t min, max;
    if (engine_queue_offsets(e, topic, strlen(topic), queue, &min, &max) != 0)
        return -1;
    for (int i = 0; i < EARLIEST_MAX_SKIPS && min < max; i++) {
        engine_read_result r = {0};
        int rc = engine_read(e, topic, strlen(topic), queue, min, 1, 1, &r);
        if (rc == LSMQ_ECORRUPT) {
            min = r.next_offset;
            continue;
        }
        if (rc != 0 || r.status != ENGINE_READ_FOUND || r.count == 0) {
            engine_free(r.data);
            return -1;
        }
        proto_record pr;
        int64_t ts = proto_record_decode(r.data, r.len, &pr) > 0 ? pr.store_timestamp : -1;
        engine_free(r.data);
        return ts;
    }
    return -1;
}

static void on_get_earliest_msg_storetime(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_ctx *bx = ctx;
    char remark[BROKER_REMARK_MAX];
    const char *topic;
    int32_t queue;
    if (topic_queue(req, &topic, &queue, remark)) {
        broker__reply_code(c, req, RS_SYSTEM_ERROR, remark);
        return;
    }
    int64_t ts = queue < 0 ? -1 : earliest_store_time(bx->engine, topic, (uint32_t)queue);
    reply_value(c, req, "timestamp", ts);
}

/* LOWER (default): first offset stored at or after the time; UPPER: last at or before. */
static void on_search_offset_by_timestamp(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_ctx *bx = ctx;
    engine *e = bx->engine;
    char remark[BROKER_REMARK_MAX];
    const char *topic;
    int32_t queue;
    int64_t ts;
    if (topic_queue(req, &topic, &queue, remark) ||
        broker__hdr_i64(req, "timestamp", NULL, &ts, remark)) {
        broker__reply_code(c, req, RS_SYSTEM_ERROR, remark);
        return;
    }
    const char *bt = proto_cmd_get(req, "boundaryType");
    index_time_boundary boundary =
        bt && strcasecmp(bt, "upper") == 0 ? INDEX_TIME_UPPER : INDEX_TIME_LOWER;
    uint32_t topic_id;
    uint64_t off = 0;
    engine_view *v = NULL;
    if (queue < 0 || engine_topic_id(e, topic, strlen(topic), &topic_id) != 0 ||
        engine_view_open(e, &v) != 0 ||
        index_search_time(v, topic_id, (uint32_t)queue, ts, boundary, &off) != 0)
        off = 0;
    engine_view_close(v);
    reply_value(c, req, "offset", (int64_t)off);
}

/* The handlers get the shared context; the two of consumer offsets the modules (held offsets). */
void broker_offsets_register(broker_modules *m)
{
    server *s = m->ctx.srv;
    server_register(s, RC_QUERY_CONSUMER_OFFSET, on_query_consumer_offset, m);
    server_register(s, RC_UPDATE_CONSUMER_OFFSET, on_update_consumer_offset, m);
    server_register(s, RC_GET_MAX_OFFSET, on_get_max_offset, &m->ctx);
    server_register(s, RC_GET_MIN_OFFSET, on_get_min_offset, &m->ctx);
    server_register(s, RC_GET_EARLIEST_MSG_STORETIME, on_get_earliest_msg_storetime, &m->ctx);
    server_register(s, RC_SEARCH_OFFSET_BY_TIMESTAMP, on_search_offset_by_timestamp, &m->ctx);
}
