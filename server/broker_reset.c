/*
 * INVOKE_BROKER_TO_RESET_OFFSET(222): move a consumer group's offsets in a
 * topic to a point in time (REMOTING.md §3.10), as mqadmin resetOffsetByTime
 * asks.
 *
 * The new offset of each read queue (the queues consumers are given) is
 * computed as the 4.x broker's Broker2Client.resetOffset does: timestamp
 * -1 (any negative, as 5.x) means the max offset, any other the first
 * offset stored at or after it; without isForce a queue only moves back
 * (a committed offset before the target is kept). The 5.x optional
 * queueId / offset fields narrow the reset to one queue and may name the
 * offset outright. An unknown topic or group is refused with 5.x's codes
 * and remarks (TOPIC_NOT_EXIST, SUBSCRIPTION_GROUP_NOT_EXIST). A replica
 * refuses, as upstream's slaves do (SYSTEM_ERROR).
 *
 * Then two things happen, whether or not the group is online:
 *   - every connected member gets a oneway RESET_CONSUMER_CLIENT_OFFSET(220)
 *     with the ResetOffsetBody, so running consumers jump at once;
 *   - the offsets are committed to the store, so a group that is offline
 *     (where 4.x answers CONSUMER_NOT_ONLINE) resumes from them later, and
 *     consumerProgress shows them.
 * The commits go through the writer without blocking the loop; the answer
 * (ResetOffsetBody, fastjson's object-keyed map) is sent once the writer
 * has committed all of them, so a tool that reads the offsets right after
 * sees them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "broker_hdr.h"
#include "broker_internal.h"
#include "log.h"

/* One queue's new offset. */
typedef struct reset_entry {
    uint32_t queue_id;
    uint64_t offset;
} reset_entry;

/* A reset waiting for its commits; answered by the last completion. */
typedef struct reset_job {
    server *srv;
    uint64_t conn_id;
    int32_t opaque;
    size_t pending;   /* commits not yet completed (loop thread) */
    int status;       /* first failure, or 0 */
    char *body;       /* the ResetOffsetBody to answer with */
    size_t body_len;
} reset_job;

/* A commit's outcome, carried from the writer thread to the loop. */
typedef struct reset_done {
    reset_job *job;
    int status;
} reset_done;

typedef struct reset_args {
    const char *topic;
    const char *group;
    int64_t timestamp;
    bool force;
    int32_t queue_id;  /* -1: every read queue */
    int64_t offset;    /* -1: from the timestamp */
} reset_args;

/* The target offset of one queue for the timestamp (-1 or below: max offset). */
static uint64_t offset_for_time(engine *e, const engine_topic_config *tc, uint32_t q,
                                int64_t timestamp)
{
    uint64_t min = 0, max = 0, off = 0;
    engine_queue_offsets_by_id(e, tc->topic_id, q, &min, &max);
    if (timestamp < 0)
        return max;
    engine_view *v;
    int rc = engine_view_open(e, &v);
    if (rc == 0)
        rc = index_search_time(v, tc->topic_id, q, timestamp, INDEX_TIME_LOWER, &off);
    engine_view_close(v);
    return rc == 0 ? off : max;
}

/* Without force a queue only moves back: keep a committed offset before the target. */
static uint64_t apply_force(engine *e, const reset_args *a, uint32_t q, uint64_t target)
{
    uint64_t committed;
    if (a->force || engine_offset_get(e, a->group, strlen(a->group), a->topic,
                                      strlen(a->topic), q, &committed) != 0)
        return target;
    return target < committed ? target : committed;
}

/*
 * The entries to reset; 0, or a response code with the remark written.
 * *out is malloc'ed (*n entries).
 */
static int plan_reset(engine *e, const reset_args *a, const engine_topic_config *tc,
                      reset_entry **out, size_t *n, char *remark)
{
    *out = NULL;
    *n = 0;
    if (a->queue_id >= 0 && (uint32_t)a->queue_id >= tc->read_queue_nums) {
        snprintf(remark, BROKER_REMARK_MAX, "queueId[%d] is illegal, topic:[%s]", a->queue_id,
                 a->topic);
        return RS_INVALID_PARAMETER;
    }
    if (a->queue_id >= 0 && a->offset >= 0) {
        uint64_t min = 0, max = 0;
        engine_queue_offsets_by_id(e, tc->topic_id, (uint32_t)a->queue_id, &min, &max);
        if ((uint64_t)a->offset < min || (uint64_t)a->offset > max) {
            snprintf(remark, BROKER_REMARK_MAX,
                     "Target offset %lld not in consume queue range [%llu-%llu]",
                     (long long)a->offset, (unsigned long long)min, (unsigned long long)max);
            return RS_SYSTEM_ERROR;
        }
    }
    uint32_t first = a->queue_id >= 0 ? (uint32_t)a->queue_id : 0;
    uint32_t last = a->queue_id >= 0 ? first + 1 : tc->read_queue_nums;
    if (last <= first) {
        snprintf(remark, BROKER_REMARK_MAX, "No queues to reset.");
        return RS_SYSTEM_ERROR;
    }
    reset_entry *v = proto_xcalloc(last - first, sizeof *v);
    for (uint32_t q = first; q < last; q++) {
        uint64_t target = a->queue_id >= 0 && a->offset >= 0
                              ? (uint64_t)a->offset
                              : apply_force(e, a, q, offset_for_time(e, tc, q, a->timestamp));
        v[*n] = (reset_entry){q, target};
        (*n)++;
    }
    *out = v;
    return 0;
}

/* {"offsetTable":{{mq}:offset,...}} as fastjson writes a Map<MessageQueue, Long>. */
static void reset_body(const char *broker_name, const char *topic, const reset_entry *v,
                       size_t n, broker_text *t)
{
    broker_text_adds(t, "{\"offsetTable\":{");
    for (size_t i = 0; i < n; i++) {
        if (i)
            broker_text_adds(t, ",");
        json_t *mq = broker_json_mq(broker_name, topic, v[i].queue_id);
        broker_text_add_json(t, mq);
        json_decref(mq);
        char num[32];
        snprintf(num, sizeof num, ":%llu", (unsigned long long)v[i].offset);
        broker_text_adds(t, num);
    }
    broker_text_adds(t, "}}");
}

/* RESET_CONSUMER_CLIENT_OFFSET to the group's connected members; how many got it. */
static size_t notify_members(broker_clients *bc, const reset_args *a, const broker_text *body)
{
    proto_cmd *n = proto_cmd_request(RC_RESET_CONSUMER_CLIENT_OFFSET);
    proto_cmd_set(n, "topic", a->topic);
    proto_cmd_set(n, "group", a->group);
    proto_cmd_set_i64(n, "timestamp", a->timestamp);
    proto_cmd_set_bool(n, "isForce", a->force); /* @CFNotNull in the Java header */
    proto_cmd_set_i64(n, "queueId", a->queue_id);
    size_t sent = broker_clients_send_to_group(bc, a->group, n, body->p, body->len);
    proto_cmd_free(n);
    return sent;
}

/* ---- Commits ---------------------------------------------------------------- */

static void job_finish(reset_job *j)
{
    conn *c = server_conn_find(j->srv, j->conn_id);
    if (c && j->status == 0) {
        server_conn_reply_owned(c, j->opaque, proto_cmd_response(RS_SUCCESS, j->opaque, NULL), j->body,
                         j->body_len);
        j->body = NULL;
    } else if (c) {
        char remark[BROKER_REMARK_MAX];
        snprintf(remark, sizeof remark, "cannot store the reset offsets: %s",
                 lsmq_strerror(j->status));
        server_conn_reply_code(c, j->opaque, broker_store_error_code(j->status), remark);
    }
    free(j->body);
    free(j);
}

/* Loop thread: one commit completed. */
static void commit_done_cb(void *arg)
{
    reset_done *d = arg;
    reset_job *j = d->job;
    if (d->status != 0 && j->status == 0)
        j->status = d->status;
    free(d);
    if (--j->pending == 0)
        job_finish(j);
}

/* Writer thread. */
static void commit_cb(void *ctx, int status)
{
    reset_done *d = ctx;
    d->status = status;
    server_post(d->job->srv, commit_done_cb, d);
}

/* Queue the commits; the job answers when the last one completes. */
static void commit_all(engine *e, const reset_args *a, const reset_entry *v, size_t n,
                       reset_job *j)
{
    j->pending = 1; /* held until every commit is queued */
    for (size_t i = 0; i < n; i++) {
        reset_done *d = proto_xcalloc(1, sizeof *d);
        d->job = j;
        j->pending++;
        int rc = engine_offset_set_async(e, a->group, strlen(a->group), a->topic,
                                         strlen(a->topic), v[i].queue_id, v[i].offset,
                                         commit_cb, d);
        if (rc != 0) {
            free(d);
            j->pending--;
            if (j->status == 0)
                j->status = rc;
            break;
        }
    }
    if (--j->pending == 0)
        job_finish(j);
}

/* ---- The handler -------------------------------------------------------------- */

static int parse_reset(conn *c, const proto_cmd *req, reset_args *a)
{
    char remark[BROKER_REMARK_MAX];
    memset(a, 0, sizeof *a);
    a->topic = broker_require(c, req, "topic");
    a->group = a->topic ? broker_require(c, req, "group") : NULL;
    if (!a->group || broker_require_i64(c, req, "timestamp", &a->timestamp) != 0)
        return -1;
    if (broker__hdr_opt_i32(req, "queueId", NULL, -1, &a->queue_id, remark) ||
        broker__hdr_opt_i64(req, "offset", NULL, -1, &a->offset, remark)) {
        server_conn_reply_code(c, req->opaque, RS_SYSTEM_ERROR, remark);
        return -1;
    }
    a->force = broker__hdr_bool(req, "isForce", NULL, false);
    return 0;
}

static void on_invoke_broker_to_reset_offset(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_admin *ad = ctx;
    engine *e = ad->ctx->engine;
    char remark[BROKER_REMARK_MAX];
    reset_args a;
    if (ad->ctx->replica) {
        broker__reply_code(c, req, RS_SYSTEM_ERROR, "Can not reset offset in slave broker");
        return;
    }
    if (parse_reset(c, req, &a) != 0)
        return;
    engine_topic_config tc;
    if (engine_topic_get(e, a.topic, strlen(a.topic), &tc) != 0) {
        snprintf(remark, sizeof remark, "Topic %.200s does not exist", a.topic);
        server_conn_reply_code(c, req->opaque, RS_TOPIC_NOT_EXIST, remark);
        return;
    }
    if (!broker_group_known(e, ad->clients, a.group)) {
        snprintf(remark, sizeof remark, "Group %.200s does not exist", a.group);
        server_conn_reply_code(c, req->opaque, RS_SUBSCRIPTION_GROUP_NOT_EXIST, remark);
        return;
    }
    reset_entry *v = NULL;
    size_t n = 0;
    int code = plan_reset(e, &a, &tc, &v, &n, remark);
    if (code != 0) {
        server_conn_reply_code(c, req->opaque, code, remark);
        return;
    }
    broker_text body = {0};
    reset_body(ad->ctx->cfg.broker_name, a.topic, v, n, &body);
    size_t told = notify_members(ad->clients, &a, &body);
    proto_log(PROTO_LOG_INFO, "broker: reset offsets of group %s in topic %s to time %lld (force %d, %zu "
             "queues, %zu online consumers told; asked by %s)",
             a.group, a.topic, (long long)a.timestamp, (int)a.force, n, told, server_conn_peer(c));
    reset_job *j = proto_xcalloc(1, sizeof *j);
    *j = (reset_job){.srv = ad->ctx->srv, .conn_id = server_conn_id(c), .opaque = req->opaque,
                     .body = body.p, .body_len = body.len};
    commit_all(e, &a, v, n, j);
    free(v);
}

void broker_reset_register(broker_modules *m)
{
    server_register(m->ctx.srv, RC_INVOKE_BROKER_TO_RESET_OFFSET, on_invoke_broker_to_reset_offset,
                    m->admin);
}
