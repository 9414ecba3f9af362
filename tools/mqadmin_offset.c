/*
 * mqadmin resetOffsetByTime: move a consumer group's offsets in a topic to
 * a point in time, with upstream's ResetOffsetByTimeCommand options (-g,
 * -t, -s now|ms|yyyy-MM-dd#HH:mm:ss:SSS, -f force, -b broker, -q queue,
 * -o offset, -c cluster; upstream's deprecated -c "cplus" flag clashes
 * with -c cluster and is not offered).
 *
 * Every master in the topic's route (or just -b) is asked with
 * INVOKE_BROKER_TO_RESET_OFFSET. lsmq brokers tell the group's online
 * consumers and also commit the offsets, so an offline group is reset as
 * well: there is no fallback to the old offline command.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "mqadmin.h"

static const mqa_opt reset_by_time_opts[] = {
    {'g', "group", 1, MQA_REQUIRED, "set the consumer group"},
    {'t', "topic", 1, MQA_REQUIRED, "set the topic"},
    {'s', "timestamp", 1, MQA_REQUIRED,
     "set the timestamp[now|currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]"},
    {'f', "force", 1, MQA_OPTIONAL,
     "set the force rollback by timestamp switch[true|false] (default true)"},
    {'b', "broker", 1, MQA_OPTIONAL, "broker addr"},
    {'q', "queue", 1, MQA_OPTIONAL, "queue id (with -b)"},
    {'o', "offset", 1, MQA_OPTIONAL, "Expect queue offset (with -b and -q)"},
    {'c', "cluster", 1, MQA_OPTIONAL, "Cluster name (accepted; the topic's route is used)"},
    {0, NULL, 0, 0, NULL},
};

static void print_result(const mqa_ctx *ctx, const lsmq_admin_reset *r, const char *ts_text,
                         const lsmq_admin_reset_result *res)
{
    if (ctx->json) {
        json_t *o = json_object(), *a = json_array();
        for (size_t i = 0; res && i < res->n_queues; i++) {
            json_t *e = json_object();
            json_object_set_new(e, "brokerName", mqa_json_str(res->queues[i].mq.broker_name));
            json_object_set_new(e, "queueId", json_integer(res->queues[i].mq.queue_id));
            json_object_set_new(e, "offset", json_integer(res->queues[i].offset));
            json_array_append_new(a, e);
        }
        json_object_set_new(o, "group", mqa_json_str(r->group));
        json_object_set_new(o, "topic", mqa_json_str(r->topic));
        json_object_set_new(o, "timestamp", json_integer(r->timestamp_ms));
        json_object_set_new(o, "force", json_boolean(r->force));
        json_object_set_new(o, "queues", a);
        mqa_print_json(o);
        return;
    }
    printf("start reset consumer offset by specified, group[%s], topic[%s], force[%s], "
           "timestamp(string)[%s], timestamp(long)[%lld]\n",
           r->group, r->topic, r->force ? "true" : "false", ts_text, (long long)r->timestamp_ms);
    printf("%-40s  %-40s  %-40s\n", "#brokerName", "#queueId", "#offset");
    for (size_t i = 0; res && i < res->n_queues; i++)
        printf("%-40s  %-40d  %-40lld\n", res->queues[i].mq.broker_name,
               res->queues[i].mq.queue_id, (long long)res->queues[i].offset);
}

/* -b and -q: one queue of one broker, to -o or to the offset for the time. */
static int reset_one_queue(mqa_ctx *ctx, lsmq_admin_reset *r, const char *broker,
                           const char *ts_text)
{
    lsmq_admin_reset_result *res = NULL;

    if (r->offset < 0 &&
        lsmq_admin_search_offset(ctx->admin, broker, r->topic, r->queue_id, r->timestamp_ms, 0,
                                 ctx->timeout_ms, &r->offset) != 0)
        return mqa_fail(ctx);
    if (!ctx->json)
        printf("start reset consumer offset by specified, group[%s], topic[%s], queueId[%d], "
               "broker[%s], timestamp(string)[%s], timestamp(long)[%lld]\n"
               "reset consumer offset to %lld\n",
               r->group, r->topic, r->queue_id, broker, ts_text, (long long)r->timestamp_ms,
               (long long)r->offset);
    if (lsmq_admin_reset_offset(ctx->admin, broker, r, ctx->timeout_ms, &res) != 0)
        return mqa_fail(ctx);
    if (ctx->json)
        print_result(ctx, r, ts_text, res);
    lsmq_admin_reset_result_free(res);
    return MQA_OK;
}

static int reset_offset_by_time(mqa_ctx *ctx)
{
    lsmq_admin_reset r = {.topic = mqa_arg(ctx, 't'), .group = mqa_arg(ctx, 'g')};
    const char *broker = mqa_arg(ctx, 'b'), *ts_text = mqa_arg(ctx, 's');
    lsmq_admin_reset_result *res = NULL;
    lsmq_admin_route *route_data = NULL;
    const char **addrs = NULL;
    size_t n = 0;
    int queue_id, rc;

    if ((rc = mqa_arg_time(ctx, 's', 1, 0, &r.timestamp_ms)) != 0 ||
        (rc = mqa_arg_bool(ctx, 'f', 1, &r.force)) != 0 ||
        (rc = mqa_arg_int(ctx, 'q', -1, &queue_id)) != 0 ||
        (rc = mqa_arg_i64(ctx, 'o', -1, &r.offset)) != 0)
        return rc;
    if (!*r.group || !*r.topic)
        return mqa_usage_error(ctx, "the group and the topic must not be empty");
    if (mqa_arg(ctx, 'q') && (!broker || queue_id < 0))
        return mqa_usage_error(ctx, "-q wants -b and a queue id of 0 or more");
    if (mqa_arg(ctx, 'o') && (queue_id < 0 || r.offset < 0))
        return mqa_usage_error(ctx, "-o wants -b, -q and an offset of 0 or more");
    r.queue_id = queue_id;
    if (broker && queue_id >= 0)
        return reset_one_queue(ctx, &r, broker, ts_text);
    if (broker) {
        addrs = proto_xcalloc(1, sizeof *addrs);
        addrs[n++] = broker;
    } else if ((rc = mqa_route_masters(ctx, r.topic, &route_data, &addrs, &n)) != MQA_OK) {
        return rc;
    }
    for (size_t i = 0; rc == MQA_OK && i < n; i++)
        if (lsmq_admin_reset_offset(ctx->admin, addrs[i], &r, ctx->timeout_ms, &res) != 0)
            rc = mqa_fail(ctx);
    if (rc == MQA_OK)
        print_result(ctx, &r, ts_text, res);
    lsmq_admin_reset_result_free(res);
    free(addrs);
    lsmq_admin_route_free(route_data);
    return rc;
}

const mqa_command mqa_offset_commands[] = {
    {"resetOffsetByTime", "Reset consumer offset by timestamp(without client restart).",
     reset_by_time_opts, reset_offset_by_time},
    {NULL, NULL, NULL, NULL},
};
