/*
 * PULL_MESSAGE (REMOTING.md §3.4) and the offset look-ups around it
 * (QUERY_CONSUMER_OFFSET, GET_MAX_OFFSET, §3.3 and §3.7). Pure: builds
 * request headers and turns replies into results.
 *
 * Pulls always carry the subscription (FLAG_SUBSCRIPTION, as ali-ons
 * does) so the broker filters by what this request says rather than by
 * what the last heartbeat registered; the client checks tags again to
 * drop hash collisions (§6.6).
 */
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

#define PULL_FLAG_COMMIT_OFFSET 0x1
#define PULL_FLAG_SUSPEND 0x2
#define PULL_FLAG_SUBSCRIPTION 0x4
#define PULL_FLAG_LITE 0x10

proto_cmd *lsmq__pull_request(const pull_args *a)
{
    proto_cmd *cmd = proto_cmd_request(a->lite ? RC_LITE_PULL_MESSAGE : RC_PULL_MESSAGE);
    int flag = PULL_FLAG_SUBSCRIPTION;

    if (a->commit_offset > 0)
        flag |= PULL_FLAG_COMMIT_OFFSET;
    if (a->suspend_ms > 0)
        flag |= PULL_FLAG_SUSPEND;
    if (a->lite)
        flag |= PULL_FLAG_LITE;
    proto_cmd_set(cmd, "consumerGroup", a->group);
    proto_cmd_set(cmd, "topic", a->topic);
    proto_cmd_set_i64(cmd, "queueId", a->queue_id);
    proto_cmd_set_i64(cmd, "queueOffset", a->offset);
    proto_cmd_set_i64(cmd, "maxMsgNums", a->max_msgs);
    proto_cmd_set_i64(cmd, "sysFlag", flag);
    proto_cmd_set_i64(cmd, "commitOffset", a->commit_offset > 0 ? a->commit_offset : 0);
    proto_cmd_set_i64(cmd, "suspendTimeoutMillis", a->suspend_ms > 0 ? a->suspend_ms : 0);
    proto_cmd_set(cmd, "subscription", a->sub ? a->sub->expr : "*");
    proto_cmd_set_i64(cmd, "subVersion", a->sub ? a->sub->version : 0);
    proto_cmd_set(cmd, "expressionType", "TAG");
    return cmd;
}

int lsmq__pull_parse(proto_reply *reply, const char *broker_name, const subscription *sub,
                pull_result *out, lsmq_errslot *e)
{
    proto_cmd *cmd = reply->cmd;
    lsmq_message *m, *next, *keep_tail = NULL;
    int rc = 0;

    memset(out, 0, sizeof *out);
    out->code = cmd->code;
    out->next_begin = out->min_offset = out->max_offset = -1;
    out->suggest = 0; /* the master, when a broker does not say */
    proto_cmd_get_i64(cmd, "suggestWhichBrokerId", &out->suggest);
    proto_cmd_get_i64(cmd, "nextBeginOffset", &out->next_begin);
    proto_cmd_get_i64(cmd, "minOffset", &out->min_offset);
    proto_cmd_get_i64(cmd, "maxOffset", &out->max_offset);
    if (cmd->code == RS_SUCCESS) {
        long n = lsmq__msg_decode_all(cmd->body, cmd->body_len, broker_name, &out->head,
                                      &out->tail);

        if (n < 0)
            rc = (int)n;
        if (out->next_begin < 0) {
            lsmq__error(e, -1, "pull response without nextBeginOffset");
            rc = LSMQ_ECORRUPT;
        }
    }
    proto_reply_free(reply);
    if (rc != 0) {
        lsmq__pull_result_free(out);
        out->code = -1;
        return rc;
    }
    /* Re-check tags: the broker matched hash codes only. */
    m = out->head;
    out->head = NULL;
    for (; m; m = next) {
        next = m->next;
        m->next = NULL;
        if (!lsmq__sub_match(sub, m->tags)) {
            lsmq__msg_free(m);
            continue;
        }
        if (keep_tail)
            keep_tail->next = m;
        else
            out->head = m;
        keep_tail = m;
        out->n++;
    }
    out->tail = keep_tail;
    return 0;
}

void lsmq__pull_result_free(pull_result *r)
{
    lsmq__msg_free_list(r->head);
    r->head = r->tail = NULL;
    r->n = 0;
}

proto_cmd *lsmq__offset_query_cmd(const char *group, const char *topic, int32_t queue_id)
{
    proto_cmd *cmd = proto_cmd_request(RC_QUERY_CONSUMER_OFFSET);

    proto_cmd_set(cmd, "consumerGroup", group);
    proto_cmd_set(cmd, "topic", topic);
    proto_cmd_set_i64(cmd, "queueId", queue_id);
    return cmd;
}

proto_cmd *lsmq__offset_max_cmd(const char *topic, int32_t queue_id)
{
    proto_cmd *cmd = proto_cmd_request(RC_GET_MAX_OFFSET);

    proto_cmd_set(cmd, "topic", topic);
    proto_cmd_set_i64(cmd, "queueId", queue_id);
    return cmd;
}

proto_cmd *lsmq__offset_search_cmd(const char *topic, const char *broker, int32_t queue_id,
                              int64_t ms)
{
    proto_cmd *cmd = proto_cmd_request(RC_SEARCH_OFFSET_BY_TIMESTAMP);

    proto_cmd_set(cmd, "topic", topic);
    proto_cmd_set_i64(cmd, "queueId", queue_id);
    proto_cmd_set_i64(cmd, "timestamp", ms);
    /* As Java's searchOffset: 5.x brokers read both; 4.x ignores them. */
    proto_cmd_set(cmd, "brokerName", broker);
    proto_cmd_set(cmd, "boundaryType", "LOWER");
    return cmd;
}
