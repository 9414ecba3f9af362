/*
 * mqadmin message look-ups: queryMsgById, queryMsgByKey,
 * queryMsgByUniqueKey and queryMsgByOffset, with the option letters of
 * upstream's tools/.../command/message/QueryMsgBy*SubCommand. queryMsgById
 * -s true resends what it found to the same topic, as upstream's does;
 * resendDeadLetter (lsmq's own, plainly named) sends dead letters back to
 * their original topic (RETRY_TOPIC) or to -d. The options that push a
 * message to a consumer (-g -d -u) are not offered.
 *
 * As upstream's admin does, queryMsgById takes an offset message id
 * (store host + log position) to the broker it names, and anything else,
 * or an id whose broker is not in the topic's route, as a client message
 * id (UNIQ_KEY) looked up through the brokers' key indexes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "mqadmin.h"

#define UNIQUE_QUERY_MAX 32 /* what upstream's unique-key look-ups ask for */

/* 32 or 56 hex characters: the length of every RocketMQ message id. */
static int looks_like_msg_id(const char *id)
{
    size_t n = strlen(id);

    if (n != 32 && n != 56)
        return 0;
    return strspn(id, "0123456789abcdefABCDEF") == n;
}

/* Is addr the master of a broker group in the topic's route? */
static int route_has_addr(const lsmq_admin_route *r, const char *addr)
{
    for (size_t i = 0; r && i < r->n_brokers; i++) {
        const char *m = lsmq_admin_broker_master(&r->brokers[i]);
        if (m && strcmp(m, addr) == 0)
            return 1;
    }
    return 0;
}

/* Print the messages, or their JSON when --json (`extra` fields added). */
static void print_messages(const mqa_ctx *ctx, lsmq_message **msgs, size_t n, int offset_id,
                           json_t *extra)
{
    if (ctx->json) {
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(a, mqa_message_json(msgs[i], 1));
        json_object_set_new(extra, "messages", a);
        mqa_print_json(extra);
        return;
    }
    json_decref(extra);
    for (size_t i = 0; i < n; i++) {
        if (i)
            printf("\n");
        mqa_print_message(msgs[i], offset_id);
    }
}

/* A key query over the topic's route; MQA_OK with *msgs set, or MQA_FAIL after printing. */
static int run_key_query(const mqa_ctx *ctx, const lsmq_admin_key_query *q,
                         lsmq_message ***msgs, size_t *n)
{
    if (lsmq_admin_query_message_by_key(ctx->admin, ctx->namesrv, q, ctx->timeout_ms, msgs, n) != 0)
        return mqa_fail(ctx);
    return MQA_OK;
}

/* ==== queryMsgById ======================================================== */

static const mqa_opt query_by_id_opts[] = {
    {'t', "topic", 1, MQA_REQUIRED, "topic name"},
    {'i', "msgId", 1, MQA_REQUIRED, "Message Id (several separated by commas)"},
    {'c', "cluster", 1, MQA_OPTIONAL, "Cluster name (accepted; the topic's route is used)"},
    {'f', "bodyFormat", 1, MQA_OPTIONAL, "print message body by the specified format"},
    {'s', "sendMessage", 1, MQA_OPTIONAL, "resend message (true: send it again to its topic)"},
    {0, NULL, 0, 0, NULL},
};

/*
 * Send a copy of m to `dest` through the first master of dest's route,
 * queue 0, and say so. MQA_OK or MQA_FAIL after printing why.
 */
static int resend(const mqa_ctx *ctx, const lsmq_message *m, const char *dest)
{
    lsmq_admin_route *route = NULL;
    const char **addrs = NULL;
    size_t n = 0;
    char id[64] = "";
    int rc = mqa_route_masters(ctx, dest, &route, &addrs, &n);
    if (rc == MQA_OK && n == 0)
        rc = mqa_failf(ctx, "no master broker serves topic %s", dest);
    if (rc == MQA_OK &&
        lsmq_admin_resend_message(ctx->admin, addrs[0], m, dest, 0, ctx->timeout_ms, id,
                                  sizeof id) != 0)
        rc = mqa_fail(ctx);
    if (rc == MQA_OK)
        printf("resent %s to %s: SEND_OK, offsetMsgId %s\n", lsmq_message_id(m), dest, id);
    free(addrs);
    lsmq_admin_route_free(route);
    return rc;
}

/* One id: *msg set (array of 1) or MQA_FAIL after printing why. */
static int find_by_id(const mqa_ctx *ctx, const char *topic, const lsmq_admin_route *r,
                      const char *id, lsmq_message ***msgs, size_t *n)
{
    char addr[128];
    int64_t pos;

    if (lsmq_admin_decode_offset_msg_id(id, addr, sizeof addr, &pos) == 0 &&
        route_has_addr(r, addr)) {
        if (lsmq_admin_view_message(ctx->admin, addr, pos, ctx->timeout_ms, msgs, n) != 0)
            return mqa_fail(ctx);
        return MQA_OK;
    }
    lsmq_admin_key_query q = {.topic = topic, .key = id, .unique_key = 1,
                              .max_num = UNIQUE_QUERY_MAX, .begin_ms = 0,
                              .end_ms = INT64_MAX};
    int rc = run_key_query(ctx, &q, msgs, n);
    if (rc == MQA_OK && *n > 1) { /* keep the oldest, as upstream shows the first */
        lsmq_message **rest = *msgs + 1;
        size_t extra = *n - 1;
        lsmq_message **copy = proto_xmalloc(extra * sizeof *copy);
        memcpy(copy, rest, extra * sizeof *copy);
        lsmq_messages_free(copy, extra);
        *n = 1;
    }
    return rc;
}

/* The next id of a comma-separated list, trimmed, empties skipped (strtok_r's state in *save). */
static char *next_id(char *ids, char **save)
{
    for (char *id = strtok_r(ids, ",", save); id; id = strtok_r(NULL, ",", save)) {
        id += strspn(id, " ");
        id[strcspn(id, " ")] = '\0';
        if (*id)
            return id;
    }
    return NULL;
}

/* A usage error unless every id of -i is a message id; *count: how many it lists. */
static int check_ids(mqa_ctx *ctx, size_t *count)
{
    char *ids = proto_xstrdup(mqa_arg(ctx, 'i')), *save = NULL;
    int rc = MQA_OK;
    *count = 0;
    for (char *id = next_id(ids, &save); id && rc == MQA_OK; id = next_id(NULL, &save)) {
        if (!looks_like_msg_id(id))
            rc = mqa_usage_error(ctx, "'%s' is not a message id (32 or 56 hex characters)", id);
        (*count)++;
    }
    free(ids);
    return rc;
}

static int query_msg_by_id(mqa_ctx *ctx)
{
    const char *topic = mqa_arg(ctx, 't');
    lsmq_admin_route *r = NULL;
    size_t count = 0;
    int rc = check_ids(ctx, &count);
    if (rc == MQA_OK && count == 0)
        rc = mqa_usage_error(ctx, "no message id given");
    if (rc != MQA_OK)
        return rc;
    if (lsmq_admin_get_route(ctx->admin, ctx->namesrv, topic, ctx->timeout_ms, &r) != 0)
        return mqa_fail(ctx);
    int send_again = 0;
    if (mqa_arg_bool(ctx, 's', 0, &send_again) != 0) {
        lsmq_admin_route_free(r);
        return MQA_USAGE;
    }
    json_t *found = json_array();
    char *ids = proto_xstrdup(mqa_arg(ctx, 'i')), *save = NULL;
    int printed = 0;
    for (char *id = next_id(ids, &save); id && rc == MQA_OK; id = next_id(NULL, &save)) {
        lsmq_message **msgs = NULL;
        size_t n = 0;
        rc = find_by_id(ctx, topic, r, id, &msgs, &n);
        if (rc != MQA_OK)
            break;
        if (send_again) {
            rc = resend(ctx, msgs[0], topic);
        } else if (ctx->json) {
            json_array_append_new(found, mqa_message_json(msgs[0], 1));
        } else {
            if (printed++)
                printf("\n");
            mqa_print_message(msgs[0], 1);
        }
        lsmq_messages_free(msgs, n);
    }
    free(ids);
    lsmq_admin_route_free(r);
    if (send_again) {
        json_decref(found);
        return rc;
    }
    if (rc == MQA_OK && ctx->json) {
        json_t *o = json_object();
        json_object_set_new(o, "topic", mqa_json_str(topic));
        json_object_set_new(o, "messages", found);
        mqa_print_json(o);
    } else {
        json_decref(found);
    }
    return rc;
}

/* ==== queryMsgByKey ======================================================= */

static const mqa_opt query_by_key_opts[] = {
    {'t', "topic", 1, MQA_REQUIRED, "Topic name"},
    {'k', "msgKey", 1, MQA_REQUIRED, "Message Key"},
    {'b', "beginTimestamp", 1, MQA_OPTIONAL, "Begin timestamp(ms). default:0, eg:1676730526212"},
    {'e', "endTimestamp", 1, MQA_OPTIONAL,
     "End timestamp(ms). default:Long.MAX_VALUE, eg:1676730526212"},
    {'m', "maxNum", 1, MQA_OPTIONAL,
     "The maximum number of messages returned by the query, default:64"},
    {'c', "cluster", 1, MQA_OPTIONAL, "Cluster name (accepted; the topic's route is used)"},
    {'s', "subExpression", 1, MQA_OPTIONAL, "only messages with these tags (eg: TagA || TagB)"},
    {0, NULL, 0, 0, NULL},
};

/* Move the messages whose tag matches expr to the front, in order; returns how many. */
static size_t front_tags(lsmq_message **msgs, size_t n, const char *expr)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (!mqa_tags_match(msgs[i], expr))
            continue;
        lsmq_message *m = msgs[i];
        memmove(&msgs[kept + 1], &msgs[kept], (i - kept) * sizeof *msgs);
        msgs[kept++] = m;
    }
    return kept;
}

static int query_msg_by_key(mqa_ctx *ctx)
{
    lsmq_admin_key_query q = {.topic = mqa_arg(ctx, 't'), .key = mqa_arg(ctx, 'k')};
    lsmq_message **msgs = NULL;
    size_t n = 0, all = 0;
    int max_num, rc;

    if ((rc = mqa_arg_i64(ctx, 'b', 0, &q.begin_ms)) != 0 ||
        (rc = mqa_arg_i64(ctx, 'e', INT64_MAX, &q.end_ms)) != 0 ||
        (rc = mqa_arg_int(ctx, 'm', 64, &max_num)) != 0)
        return rc;
    if (!*q.key)
        return mqa_usage_error(ctx, "the key is empty");
    q.max_num = max_num;
    if ((rc = run_key_query(ctx, &q, &msgs, &all)) != MQA_OK)
        return rc;
    n = mqa_arg(ctx, 's') ? front_tags(msgs, all, mqa_arg(ctx, 's')) : all;
    if (n == 0) {
        lsmq_messages_free(msgs, all);
        return mqa_failf(ctx, "query message by key finished, but no message with tags %s.",
                         mqa_arg(ctx, 's'));
    }
    if (ctx->json) {
        json_t *o = json_object(), *a = json_array();
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_object();
            json_object_set_new(e, "msgId", mqa_json_str(lsmq_message_id(msgs[i])));
            json_object_set_new(e, "offsetMsgId", mqa_json_str(lsmq_message_offset_id(msgs[i])));
            json_object_set_new(e, "brokerName", mqa_json_str(lsmq_message_broker_name(msgs[i])));
            json_object_set_new(e, "queueId", json_integer(lsmq_message_queue_id(msgs[i])));
            json_object_set_new(e, "queueOffset", json_integer(lsmq_message_queue_offset(msgs[i])));
            json_object_set_new(e, "storeTimestamp",
                                json_integer(lsmq_message_store_timestamp(msgs[i])));
            json_object_set_new(e, "keys", mqa_json_str(lsmq_message_keys(msgs[i])));
            const char *tags = lsmq_message_tags(msgs[i]);
            json_object_set_new(e, "tags", tags ? mqa_json_str(tags) : json_null());
            json_array_append_new(a, e);
        }
        json_object_set_new(o, "topic", mqa_json_str(q.topic));
        json_object_set_new(o, "key", mqa_json_str(q.key));
        json_object_set_new(o, "messages", a);
        mqa_print_json(o);
    } else {
        printf("%-50s %4s %40s\n", "#Message ID", "#QID", "#Offset");
        for (size_t i = 0; i < n; i++)
            printf("%-50s %4d %40lld\n", lsmq_message_id(msgs[i]), lsmq_message_queue_id(msgs[i]),
                   (long long)lsmq_message_queue_offset(msgs[i]));
    }
    lsmq_messages_free(msgs, all);
    return MQA_OK;
}

/* ==== queryMsgByUniqueKey ================================================= */

static const mqa_opt query_by_unique_key_opts[] = {
    {'i', "msgId", 1, MQA_REQUIRED, "Message Id"},
    {'t', "topic", 1, MQA_REQUIRED, "The topic of msg"},
    {'a', "showAll", 0, MQA_OPTIONAL, "Print all message, the limit is 32"},
    {'c', "cluster", 1, MQA_OPTIONAL, "Cluster name (accepted; the topic's route is used)"},
    {0, NULL, 0, 0, NULL},
};

static int query_msg_by_unique_key(mqa_ctx *ctx)
{
    lsmq_admin_key_query q = {.topic = mqa_arg(ctx, 't'), .key = mqa_arg(ctx, 'i'),
                              .unique_key = 1, .max_num = UNIQUE_QUERY_MAX, .begin_ms = 0,
                              .end_ms = INT64_MAX};
    lsmq_message **msgs = NULL;
    size_t n = 0;
    int rc;

    if (!looks_like_msg_id(q.key))
        return mqa_usage_error(ctx, "'%s' is not a message id (32 or 56 hex characters)",
                               q.key);
    if ((rc = run_key_query(ctx, &q, &msgs, &n)) != MQA_OK)
        return rc;
    size_t shown = mqa_arg(ctx, 'a') ? n : 1;
    json_t *o = json_object();
    json_object_set_new(o, "topic", mqa_json_str(q.topic));
    json_object_set_new(o, "msgId", mqa_json_str(q.key));
    print_messages(ctx, msgs, shown, 0, o);
    lsmq_messages_free(msgs, n);
    return MQA_OK;
}

/* ==== queryMsgByOffset ==================================================== */

static const mqa_opt query_by_offset_opts[] = {
    {'t', "topic", 1, MQA_REQUIRED, "topic name"},
    {'b', "brokerName", 1, MQA_REQUIRED, "Broker Name"},
    {'i', "queueId", 1, MQA_REQUIRED, "Queue Id"},
    {'o', "offset", 1, MQA_REQUIRED, "Queue Offset"},
    {'f', "bodyFormat", 1, MQA_OPTIONAL, "print message body by the specified format"},
    {0, NULL, 0, 0, NULL},
};

static int query_msg_by_offset(mqa_ctx *ctx)
{
    const char *topic = mqa_arg(ctx, 't'), *broker = mqa_arg(ctx, 'b');
    lsmq_admin_route *r = NULL;
    lsmq_message **msgs = NULL;
    size_t n = 0;
    int64_t offset;
    int queue_id, rc;

    if ((rc = mqa_arg_int(ctx, 'i', 0, &queue_id)) != 0 ||
        (rc = mqa_arg_i64(ctx, 'o', 0, &offset)) != 0)
        return rc;
    if (queue_id < 0 || offset < 0)
        return mqa_usage_error(ctx, "the queue id and the offset must not be negative");
    if (lsmq_admin_get_route(ctx->admin, ctx->namesrv, topic, ctx->timeout_ms, &r) != 0)
        return mqa_fail(ctx);
    const char *addr = NULL;
    for (size_t i = 0; i < r->n_brokers; i++)
        if (strcmp(r->brokers[i].name, broker) == 0)
            addr = lsmq_admin_broker_master(&r->brokers[i]);
    if (!addr)
        rc = mqa_failf(ctx, "the broker %s is not in the route of topic %s", broker, topic);
    else if (lsmq_admin_query_message_by_offset(ctx->admin, addr, broker, topic, queue_id, offset,
                                                ctx->timeout_ms, &msgs, &n) != 0)
        rc = mqa_fail(ctx);
    if (rc == MQA_OK) {
        json_t *o = json_object();
        json_object_set_new(o, "topic", mqa_json_str(topic));
        print_messages(ctx, msgs, n, 1, o);
    }
    lsmq_messages_free(msgs, n);
    lsmq_admin_route_free(r);
    return rc;
}

/* ==== resendDeadLetter ==================================================== */

static const mqa_opt resend_dead_letter_opts[] = {
    {'t', "topic", 1, MQA_REQUIRED, "the dead-letter topic, %DLQ%<group>"},
    {'i', "msgId", 1, MQA_REQUIRED, "Message Id (several separated by commas)"},
    {'d', "destTopic", 1, MQA_OPTIONAL,
     "send to this topic (default: each message's original topic, its RETRY_TOPIC)"},
    {0, NULL, 0, 0, NULL},
};

static int resend_dead_letter(mqa_ctx *ctx)
{
    const char *topic = mqa_arg(ctx, 't'), *dest = mqa_arg(ctx, 'd');
    size_t count = 0;
    int rc = check_ids(ctx, &count);
    lsmq_admin_route *r = NULL;
    if (rc == MQA_OK &&
        lsmq_admin_get_route(ctx->admin, ctx->namesrv, topic, ctx->timeout_ms, &r) != 0)
        rc = mqa_fail(ctx);
    char *ids = proto_xstrdup(mqa_arg(ctx, 'i')), *save = NULL;
    for (char *id = next_id(ids, &save); id && rc == MQA_OK; id = next_id(NULL, &save)) {
        lsmq_message **msgs = NULL;
        size_t n = 0;
        rc = find_by_id(ctx, topic, r, id, &msgs, &n);
        if (rc != MQA_OK)
            break;
        const char *to = dest ? dest : lsmq_message_property(msgs[0], "RETRY_TOPIC");
        if (!to)
            rc = mqa_failf(ctx, "message %s has no RETRY_TOPIC (not a dead letter?): give -d", id);
        else
            rc = resend(ctx, msgs[0], to);
        lsmq_messages_free(msgs, n);
    }
    free(ids);
    lsmq_admin_route_free(r);
    return rc;
}

const mqa_command mqa_message_commands[] = {
    {"queryMsgById", "Query Message by Id.", query_by_id_opts, query_msg_by_id},
    {"queryMsgByKey", "Query Message by Key.", query_by_key_opts, query_msg_by_key},
    {"queryMsgByUniqueKey", "Query Message by Unique key.", query_by_unique_key_opts,
     query_msg_by_unique_key},
    {"queryMsgByOffset", "Query Message by offset.", query_by_offset_opts, query_msg_by_offset},
    {"resendDeadLetter", "Send dead letters back to their original topic (lsmq).",
     resend_dead_letter_opts, resend_dead_letter},
    {NULL, NULL, NULL, NULL},
};
