/*
 * Admin requests about topics and the broker (REMOTING.md §3.10):
 * UPDATE_AND_CREATE_TOPIC, DELETE_TOPIC_IN_BROKER, GET_ALL_TOPIC_CONFIG,
 * GET_TOPIC_CONFIG and GET_BROKER_RUNTIME_INFO. Topic changes are written
 * through the store, answered with the write's outcome once it landed, and
 * announced to the name servers at once, so routes follow without waiting
 * for the 30 s registration. Statistics requests
 * are in broker_admin_stats.c, subscription groups in broker_admin_groups.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "alloc.h"
#include "broker_hdr.h"
#include "broker_internal.h"
#include "log.h"
#include "clock.h"

#define TOPIC_NAME_MAX 127

/* Fixed system topic names (§6.1); rmq_sys_* and the cluster/broker names too. */
static const char *const system_topics[] = {
    "TBW102", "SCHEDULE_TOPIC_XXXX", "BenchmarkTest", "RMQ_SYS_TRANS_HALF_TOPIC",
    "RMQ_SYS_TRANS_OP_HALF_TOPIC", "TRANS_CHECK_MAX_TIME_TOPIC", "RMQ_SYS_TRACE_TOPIC",
    "SELF_TEST_TOPIC", "OFFSET_MOVED_EVENT", "CHECKPOINT_TOPIC", NULL,
};

/* NULL when the name is a valid topic name, else the 5.x TopicValidator remark. */
static const char *topic_name_error(const char *topic)
{
    if (!*topic)
        return "The specified topic is blank.";
    if (!broker__topic_chars_valid(topic))
        return "The specified topic contains illegal characters, allowing only "
               "^[%|a-zA-Z0-9_-]+$";
    if (strlen(topic) > TOPIC_NAME_MAX)
        return "The specified topic is longer than topic max length.";
    return NULL;
}

static bool is_system_topic(const broker_config *cfg, const char *topic)
{
    for (int i = 0; system_topics[i]; i++)
        if (strcmp(topic, system_topics[i]) == 0)
            return true;
    char reply_topic[160];
    snprintf(reply_topic, sizeof reply_topic, "%s_REPLY_TOPIC", cfg->broker_cluster_name);
    return strncmp(topic, "rmq_sys_", 8) == 0 || strcmp(topic, cfg->broker_cluster_name) == 0 ||
           strcmp(topic, cfg->broker_name) == 0 || strcmp(topic, reply_topic) == 0;
}

/*
 * The topic header field, checked as the 5.x broker does: a bad name or a
 * system topic gets INVALID_PARAMETER. NULL after replying.
 */
static const char *checked_topic(const broker_config *cfg, conn *c, const proto_cmd *req)
{
    const char *topic = broker_require(c, req, "topic");
    if (!topic)
        return NULL;
    const char *why = topic_name_error(topic);
    if (why) {
        server_conn_reply_code(c, req->opaque, RS_INVALID_PARAMETER, why);
        return NULL;
    }
    if (is_system_topic(cfg, topic)) {
        char remark[256];
        snprintf(remark, sizeof remark, "The topic[%s] is conflict with system topic.", topic);
        server_conn_reply_code(c, req->opaque, RS_INVALID_PARAMETER, remark);
        return NULL;
    }
    return topic;
}

/* ==== Topic config JSON ==================================================== */

/* "+k=v,+k2=v2" (the 5.x header form the store keeps) as {"k":"v","k2":"v2"}. */
static json_t *attributes_json(const char *attrs)
{
    json_t *o = json_object();
    char *copy = proto_xstrdup(attrs), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*tok == '+')
            tok++;
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok)
            continue;
        *eq = 0;
        json_object_set_new(o, tok, broker_json_str(eq + 1));
    }
    free(copy);
    return o;
}

/* TopicConfig (§5.6). Filter type and sysFlag are not stored: SINGLE_TAG, 0. */
static json_t *topic_json(const engine_topic_config *tc)
{
    json_t *o = json_object();
    json_object_set_new(o, "attributes", attributes_json(tc->attributes));
    json_object_set_new(o, "order", json_boolean(tc->order));
    json_object_set_new(o, "perm", json_integer(tc->perm));
    json_object_set_new(o, "readQueueNums", json_integer(tc->read_queue_nums));
    json_object_set_new(o, "topicFilterType", json_string("SINGLE_TAG"));
    json_object_set_new(o, "topicName", broker_json_str(tc->name));
    json_object_set_new(o, "topicSysFlag", json_integer(0));
    json_object_set_new(o, "writeQueueNums", json_integer(tc->write_queue_nums));
    return o;
}

/* ==== UPDATE_AND_CREATE_TOPIC / DELETE_TOPIC_IN_BROKER ===================== */

/* Header fields into a config; replies and returns -1 when one is missing or bad. */
static int topic_from_header(conn *c, const proto_cmd *req, const char *topic,
                             engine_topic_config *tc)
{
    int32_t rq, wq, perm;
    if (broker_require_i32(c, req, "readQueueNums", &rq) != 0 ||
        broker_require_i32(c, req, "writeQueueNums", &wq) != 0 ||
        broker_require_i32(c, req, "perm", &perm) != 0)
        return -1;
    const char *attrs = proto_cmd_get(req, "attributes");
    const char *why = NULL;
    if (rq < 0 || wq < 0 || (rq == 0 && wq == 0))
        why = "readQueueNums and writeQueueNums must not be negative nor both 0";
    else if (perm < 0 || perm > 7)
        why = "perm must be within 0..7";
    else if (attrs && strlen(attrs) >= sizeof tc->attributes)
        why = "attributes are too long";
    if (why) {
        server_conn_reply_code(c, req->opaque, RS_INVALID_PARAMETER, why);
        return -1;
    }
    memset(tc, 0, sizeof *tc);
    snprintf(tc->name, sizeof tc->name, "%s", topic);
    tc->read_queue_nums = (uint32_t)rq;
    tc->write_queue_nums = (uint32_t)wq;
    tc->perm = (uint32_t)perm;
    tc->order = proto_cmd_get_bool(req, "order", 0);
    snprintf(tc->attributes, sizeof tc->attributes, "%s", attrs ? attrs : "");
    return 0;
}

/* The answer to an update once the write's outcome is known. */
static void topic_updated_cb(conn *c, int32_t opaque, int status, const broker_write *wr)
{
    if (status != 0) {
        server_conn_reply_code(c, opaque,
                        status == LSMQ_EINVAL || status == LSMQ_ETOOBIG ? RS_INVALID_PARAMETER
                                                                        : RS_SYSTEM_ERROR,
                        lsmq_strerror(status));
        return;
    }
    proto_log(PROTO_LOG_INFO, "broker: topic %s set to %u/%u queues, perm %u (asked by %s)", wr->name,
             wr->tc->read_queue_nums, wr->tc->write_queue_nums, wr->tc->perm, server_conn_peer(c));
    server_conn_reply_code(c, opaque, RS_SUCCESS, NULL);
}

static void on_update_and_create_topic(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_admin *ad = ctx;
    engine_topic_config tc;
    const char *topic = checked_topic(&ad->ctx->cfg, c, req);
    if (!topic || topic_from_header(c, req, topic, &tc) != 0)
        return;
    broker_write wr = {.kind = BROKER_TOPIC_PUT, .name = tc.name, .tc = &tc};
    broker_meta_write_answered(ad->meta, c, req, &wr, topic_updated_cb);
}

/* Deleting a topic that is not there succeeds, as in the Java broker. */
static void on_delete_topic_in_broker(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_admin *ad = ctx;
    const char *topic = checked_topic(&ad->ctx->cfg, c, req);
    if (!topic)
        return;
    broker_write wr = {.kind = BROKER_TOPIC_DELETE, .name = topic};
    broker_meta_write_answered(ad->meta, c, req, &wr, broker_answer_delete_cb);
}

/* ==== GET_ALL_TOPIC_CONFIG / GET_TOPIC_CONFIG ============================== */

static void on_get_all_topic_config(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_admin *ad = ctx;
    engine_topic_config *topics = NULL;
    size_t n = 0;
    if (engine_topic_list(ad->ctx->engine, &topics, &n) != 0) {
        server_conn_reply_code(c, req->opaque, RS_SYSTEM_ERROR, "cannot list the topics");
        return;
    }
    json_t *table = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(table, topics[i].name, topic_json(&topics[i]));
    engine_free(topics);
    json_t *body = json_object();
    json_object_set_new(body, "dataVersion", broker_data_version_json(ad->stats));
    json_object_set_new(body, "topicConfigTable", table);
    broker_reply_json(c, req->opaque, body);
}

static void on_get_topic_config(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_admin *ad = ctx;
    const char *topic = broker_require(c, req, "topic");
    if (!topic)
        return;
    engine_topic_config tc;
    if (engine_topic_get(ad->ctx->engine, topic, strlen(topic), &tc) != 0) {
        char remark[400];
        snprintf(remark, sizeof remark, "No topic in this broker. topic: %s", topic);
        server_conn_reply_code(c, req->opaque, RS_TOPIC_NOT_EXIST, remark);
        return;
    }
    broker_reply_json(c, req->opaque, topic_json(&tc));
}

/* ==== GET_BROKER_RUNTIME_INFO ============================================== */

static void kv_u64(json_t *table, const char *key, uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    json_object_set_new(table, key, json_string(buf));
}

static void kv_tps(json_t *table, const char *key, const double tps[3])
{
    char buf[96];
    snprintf(buf, sizeof buf, "%.4f %.4f %.4f", tps[0], tps[1], tps[2]);
    json_object_set_new(table, key, json_string(buf));
}

static void add_counters(json_t *t, const broker_stats_view *v)
{
    kv_u64(t, "msgPutTotalTodayNow", v->put_total);
    kv_u64(t, "msgGetTotalTodayNow", v->get_total);
    kv_u64(t, "msgPutTotalTodayMorning", v->put_today_morning);
    kv_u64(t, "msgGetTotalTodayMorning", v->get_today_morning);
    kv_u64(t, "msgPutTotalYesterdayMorning", v->put_yesterday_morning);
    kv_u64(t, "msgGetTotalYesterdayMorning", v->get_yesterday_morning);
    kv_tps(t, "putTps", v->put_tps);
    /* 4.x's clusterList reads the first spelling, 5.x's the second. */
    kv_tps(t, "getTransferedTps", v->get_tps);
    kv_tps(t, "getTransferredTps", v->get_tps);
    /* No request queues (requests are handled inline): nothing queued, no wait. */
    kv_u64(t, "sendThreadPoolQueueSize", 0);
    kv_u64(t, "pullThreadPoolQueueSize", 0);
    kv_u64(t, "queryThreadPoolQueueSize", 0);
    kv_u64(t, "sendThreadPoolQueueHeadWaitTimeMills", 0);
    kv_u64(t, "pullThreadPoolQueueHeadWaitTimeMills", 0);
    kv_u64(t, "queryThreadPoolQueueHeadWaitTimeMills", 0);
    kv_u64(t, "pageCacheLockTimeMills", 0);
    kv_u64(t, "dispatchBehindBytes", 0);       /* indexes commit with the messages */
}

static void add_runtime(json_t *t, const broker_stats_view *v)
{
    kv_u64(t, "bootTimestamp", (uint64_t)v->boot_ms);
    int64_t up = (proto_wall_ms() - v->boot_ms) / 1000;
    char buf[96];
    snprintf(buf, sizeof buf, "[ %lld days, %lld hours, %lld minutes, %lld seconds ]",
             (long long)(up / 86400), (long long)(up / 3600 % 24), (long long)(up / 60 % 60),
             (long long)(up % 60));
    json_object_set_new(t, "runtime", json_string(buf));
}

static void add_store(json_t *t, const broker_ctx *ctx)
{
    engine *e = ctx->engine;
    uint64_t max = engine_next_log_position(e), min = max;
    int64_t earliest = 0;
    engine_view *v = NULL;
    if (engine_view_open(e, &v) != 0 || index_edge_message(v, 0, &min, &earliest) != 0) {
        min = max; /* an empty store */
        earliest = 0;
    }
    engine_view_close(v);
    kv_u64(t, "commitLogMinOffset", min);
    kv_u64(t, "commitLogMaxOffset", max);
    /* lsmq's own: delayed messages waiting for their due time (mqadmin timerStatus). */
    kv_u64(t, "delayedMessagesPending", engine_timer_pending_total(e));
    kv_u64(t, "earliestMessageTimeStamp", (uint64_t)earliest);
    struct statvfs vfs;
    if (statvfs(ctx->cfg.store_path_root_dir, &vfs) == 0 && vfs.f_blocks > 0) {
        char buf[32];
        snprintf(buf, sizeof buf, "%.4f", 1.0 - (double)vfs.f_bavail / (double)vfs.f_blocks);
        json_object_set_new(t, "commitLogDiskRatio", json_string(buf));
    }
}

static void on_get_broker_runtime_info(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_admin *ad = ctx;
    broker_stats_view v;
    broker_stats_read(ad->stats, &v);
    json_t *t = json_object();
    json_object_set_new(t, "brokerVersionDesc", json_string("V4_9_8"));
    kv_u64(t, "brokerVersion", PROTO_SERVER_VERSION);
    /* 5.x's clusterList #ACTIVATED: true on a master, false on a replica. */
    json_object_set_new(t, "brokerActive", json_string(ad->ctx->replica ? "false" : "true"));
    add_counters(t, &v);
    add_runtime(t, &v);
    add_store(t, ad->ctx);
    json_t *body = json_object();
    json_object_set_new(body, "table", t);
    broker_reply_json(c, req->opaque, body);
}

/* The state of every admin row. Needs meta, stats and clients. */
int broker_admin_create(broker_modules *m, char *errbuf, size_t errlen)
{
    broker_admin *ad = proto_xcalloc(1, sizeof *ad);
    *ad = (broker_admin){.ctx = &m->ctx, .meta = m->meta, .stats = m->stats,
                         .clients = m->clients};
    m->admin = ad;
    return 0;
}

void broker_admin_destroy(broker_modules *m)
{
    free(m->admin);
    m->admin = NULL;
}

void broker_admin_register(broker_modules *m)
{
    server *s = m->ctx.srv;
    server_register(s, RC_UPDATE_AND_CREATE_TOPIC, on_update_and_create_topic, m->admin);
    server_register(s, RC_DELETE_TOPIC_IN_BROKER, on_delete_topic_in_broker, m->admin);
    server_register(s, RC_GET_ALL_TOPIC_CONFIG, on_get_all_topic_config, m->admin);
    server_register(s, BROKER_RC_GET_TOPIC_CONFIG, on_get_topic_config, m->admin);
    server_register(s, RC_GET_BROKER_RUNTIME_INFO, on_get_broker_runtime_info, m->admin);
}
