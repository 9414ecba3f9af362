/*
 * mqadmin printMsg: every message of a topic's queues between two points
 * in time, with upstream's PrintMessageSubCommand options (-t topic,
 * -c charset, -s tag expression, -b / -e begin and end, -d print body),
 * and -k to keep only messages with a key.
 *
 * For each queue of each broker in the route the range starts at the
 * queue's min offset, or with -b at the first offset stored at or after
 * the begin time, and ends before its max offset, or with -e before the
 * first offset stored at or after the end time (upstream's searchOffset,
 * LOWER). The queue is then read 32 messages at a time without a consumer
 * group. Unlike upstream, which prints whole batches, nothing at or past
 * the end offset is printed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqadmin.h"

#define PULL_BATCH 32

static const mqa_opt print_msg_opts[] = {
    {'t', "topic", 1, MQA_REQUIRED, "topic name"},
    {'c', "charsetName", 1, MQA_OPTIONAL, "CharsetName(eg: UTF-8,GBK); bodies print as bytes"},
    {'s', "subExpression", 1, MQA_OPTIONAL, "Subscribe Expression(eg: TagA || TagB)"},
    {'b', "beginTimestamp", 1, MQA_OPTIONAL,
     "Begin timestamp[currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]"},
    {'e', "endTimestamp", 1, MQA_OPTIONAL,
     "End timestamp[currentTimeMillis|yyyy-MM-dd#HH:mm:ss:SSS]"},
    {'d', "printBody", 1, MQA_OPTIONAL, "print body"},
    {'k', "msgKey", 1, MQA_OPTIONAL, "only messages with this word in KEYS"},
    {0, NULL, 0, 0, NULL},
};

typedef struct print_opts {
    const char *topic;
    const char *expr;
    const char *key;
    int print_body;
    int has_begin, has_end;
    int64_t begin_ms, end_ms;
} print_opts;

/* The offset range of one queue: [*from, *to). 0, or MQA_FAIL after printing. */
static int queue_range(const mqa_ctx *ctx, const print_opts *po, const char *addr,
                       const lsmq_admin_topic_offset *q, int64_t *from, int64_t *to)
{
    *from = q->min_offset;
    *to = q->max_offset;
    if (po->has_begin && lsmq_admin_search_offset(ctx->admin, addr, po->topic, q->mq.queue_id,
                                                  po->begin_ms, 0, ctx->timeout_ms, from) != 0)
        return mqa_fail(ctx);
    if (po->has_end && lsmq_admin_search_offset(ctx->admin, addr, po->topic, q->mq.queue_id,
                                                po->end_ms, 0, ctx->timeout_ms, to) != 0)
        return mqa_fail(ctx);
    return MQA_OK;
}

/* Read [from, to) of one queue, printing (or collecting into `msgs`) what matches. */
static int print_queue(const mqa_ctx *ctx, const print_opts *po, const char *addr,
                       const lsmq_admin_mq *mq, int64_t from, int64_t to, json_t *msgs)
{
    for (int64_t offset = from; offset < to;) {
        lsmq_admin_pull_result *r = NULL;
        int32_t want = to - offset < PULL_BATCH ? (int32_t)(to - offset) : PULL_BATCH;
        if (lsmq_admin_pull(ctx->admin, addr, mq->broker_name, po->topic, mq->queue_id, offset,
                            want, po->expr, ctx->timeout_ms, &r) != 0)
            return mqa_fail(ctx);
        int64_t next = r->next_begin_offset;
        int32_t code = r->code;
        for (size_t i = 0; i < r->n; i++) {
            if (lsmq_message_queue_offset(r->msgs[i]) >= to)
                break;
            if (po->key && !mqa_keys_contain(r->msgs[i], po->key))
                continue;
            if (msgs)
                json_array_append_new(msgs, mqa_message_json(r->msgs[i], po->print_body));
            else
                mqa_print_message_line(r->msgs[i], po->print_body);
        }
        lsmq_admin_pull_result_free(r);
        if (code == 20 && !msgs) /* PULL_RETRY_IMMEDIATELY: Java's NO_MATCHED_MSG */
            printf("MessageQueue [topic=%s, brokerName=%s, queueId=%d] no matched msg. "
                   "status=NO_MATCHED_MSG, offset=%lld\n",
                   po->topic, mq->broker_name, mq->queue_id, (long long)next);
        if ((code != 0 && code != 20) || next <= offset) {
            if (!msgs)
                printf("MessageQueue [topic=%s, brokerName=%s, queueId=%d] print msg finished. "
                       "status=%s, offset=%lld\n",
                       po->topic, mq->broker_name, mq->queue_id,
                       code == 21 ? "OFFSET_ILLEGAL" : "NO_NEW_MSG", (long long)next);
            break;
        }
        offset = next;
    }
    return MQA_OK;
}

/* Every queue of one broker: its topic stats give the queues and their bounds. */
static int print_broker(const mqa_ctx *ctx, const print_opts *po, const char *addr, json_t *out)
{
    lsmq_admin_topic_stats *stats = NULL;
    int rc = MQA_OK;

    if (lsmq_admin_get_topic_stats(ctx->admin, addr, po->topic, ctx->timeout_ms, &stats) != 0)
        return mqa_fail(ctx);
    for (size_t i = 0; rc == MQA_OK && i < stats->n_queues; i++) {
        const lsmq_admin_topic_offset *q = &stats->queues[i];
        int64_t from, to;
        if ((rc = queue_range(ctx, po, addr, q, &from, &to)) != MQA_OK)
            break;
        json_t *msgs = out ? json_array() : NULL;
        if (!out)
            printf("minOffset=%lld, maxOffset=%lld, MessageQueue [topic=%s, brokerName=%s, "
                   "queueId=%d]\n",
                   (long long)from, (long long)to, q->mq.topic, q->mq.broker_name,
                   q->mq.queue_id);
        rc = print_queue(ctx, po, addr, &q->mq, from, to, msgs);
        if (out) {
            json_t *e = json_object();
            json_object_set_new(e, "brokerName", mqa_json_str(q->mq.broker_name));
            json_object_set_new(e, "queueId", json_integer(q->mq.queue_id));
            json_object_set_new(e, "minOffset", json_integer(from));
            json_object_set_new(e, "maxOffset", json_integer(to));
            json_object_set_new(e, "messages", msgs);
            json_array_append_new(out, e);
        } else {
            printf("--------------------------------------------------------\n");
        }
    }
    lsmq_admin_topic_stats_free(stats);
    return rc;
}

static int print_msg(mqa_ctx *ctx)
{
    print_opts po = {.topic = mqa_arg(ctx, 't'), .expr = mqa_arg(ctx, 's'), .key = mqa_arg(ctx, 'k')};
    lsmq_admin_route *r = NULL;
    const char **addrs = NULL;
    size_t n = 0;
    int rc;

    if ((rc = mqa_arg_time(ctx, 'b', 0, 0, &po.begin_ms)) != 0 ||
        (rc = mqa_arg_time(ctx, 'e', 0, 0, &po.end_ms)) != 0 ||
        (rc = mqa_arg_bool(ctx, 'd', 1, &po.print_body)) != 0)
        return rc;
    po.has_begin = mqa_arg(ctx, 'b') != NULL;
    po.has_end = mqa_arg(ctx, 'e') != NULL;
    if (po.has_begin && po.has_end && po.end_ms < po.begin_ms)
        return mqa_usage_error(ctx, "the end time %lld is before the begin time %lld",
                               (long long)po.end_ms, (long long)po.begin_ms);
    if ((rc = mqa_route_masters(ctx, po.topic, &r, &addrs, &n)) != MQA_OK)
        return rc;
    json_t *queues = ctx->json ? json_array() : NULL;
    for (size_t i = 0; rc == MQA_OK && i < n; i++)
        rc = print_broker(ctx, &po, addrs[i], queues);
    if (rc == MQA_OK && ctx->json) {
        json_t *o = json_object();
        json_object_set_new(o, "topic", mqa_json_str(po.topic));
        json_object_set_new(o, "queues", queues);
        mqa_print_json(o);
    } else {
        json_decref(queues);
    }
    free(addrs);
    lsmq_admin_route_free(r);
    return rc;
}

const mqa_command mqa_print_commands[] = {
    {"printMsg", "Print Message Detail.", print_msg_opts, print_msg},
    {NULL, NULL, NULL, NULL},
};
