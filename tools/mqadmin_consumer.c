/*
 * mqadmin consumer commands: consumerProgress (a group's offsets against
 * the queues' max offsets, or one summary line per group),
 * consumerConnection (a group's connected clients and subscriptions) and
 * updateSubGroup (a group's config, its groupRetryPolicy included).
 * Option letters and tables follow upstream's ConsumerProgressSubCommand,
 * ConsumerConnectionSubCommand and UpdateSubGroupSubCommand.
 *
 * A group's brokers are found as the Java admin finds them: through the
 * route of its retry topic %RETRY%<group>, which every broker the group
 * talks to creates. When the name server has no such route, every master
 * of every cluster is asked instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "mqadmin.h"

/* Copy the master addresses of a route or a cluster list into a strings array. */
static void add_addr(char ***v, size_t *n, const char *addr)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*v)[i], addr) == 0)
            return;
    *v = proto_xrealloc(*v, (*n + 1) * sizeof **v);
    (*v)[*n] = proto_xstrdup(addr);
    (*n)++;
}

/*
 * The master addresses to ask about a group (see the top of the file).
 * *addrs is released with lsmq_admin_strings_free. 0, or MQA_FAIL after
 * printing why.
 */
static int group_brokers(const mqa_ctx *ctx, const char *group, char ***addrs, size_t *n)
{
    char retry[512];
    lsmq_admin_route *r = NULL;
    lsmq_admin_cluster_info *ci = NULL;

    *addrs = NULL;
    *n = 0;
    int rc = lsmq_admin_get_route(ctx->admin, ctx->namesrv,
                                  mqa_retry_topic(group, retry, sizeof retry), ctx->timeout_ms,
                                  &r);
    if (rc == 0) {
        for (size_t i = 0; i < r->n_brokers; i++) {
            const char *m = lsmq_admin_broker_master(&r->brokers[i]);
            if (m)
                add_addr(addrs, n, m);
        }
        lsmq_admin_route_free(r);
        return MQA_OK;
    }
    if (rc != LSMQ_ENOTFOUND)
        return mqa_fail(ctx);
    if (lsmq_admin_get_cluster_info(ctx->admin, ctx->namesrv, ctx->timeout_ms, &ci) != 0)
        return mqa_fail(ctx);
    for (size_t i = 0; i < ci->n_brokers; i++) {
        const char *m = lsmq_admin_broker_master(&ci->brokers[i]);
        if (m)
            add_addr(addrs, n, m);
    }
    lsmq_admin_cluster_info_free(ci);
    return MQA_OK;
}

/*
 * A group's connections merged over addrs: 0 with *cc set when at least
 * one broker answered (possibly with no connection), else the last
 * broker's error (the admin handle holds it), or LSMQ_ENOTFOUND when addrs
 * is empty.
 */
static int collect_connections(const mqa_ctx *ctx, const char *group, char *const *addrs,
                               size_t n, lsmq_admin_consumer_connection **cc)
{
    int rc = LSMQ_ENOTFOUND;

    *cc = NULL;
    for (size_t i = 0; i < n; i++) {
        int r = lsmq_admin_get_consumer_connection(ctx->admin, addrs[i], group, ctx->timeout_ms,
                                                   cc);
        if (r == 0 || !*cc)
            rc = r;
    }
    return *cc ? 0 : rc;
}

/* ==== consumerProgress =================================================== */

static const mqa_opt consumer_progress_opts[] = {
    {'g', "groupName", 1, MQA_OPTIONAL, "consumer group name"},
    {'t', "topicName", 1, MQA_OPTIONAL, "topic name"},
    {'s', "showClientIP", 1, MQA_OPTIONAL, "Show Client IP per Queue (true|false)"},
    {'c', "cluster", 1, MQA_OPTIONAL, "cluster name: with -t, ask its masters, not the route's"},
    {0, NULL, 0, 0, NULL},
};

/* Which client holds each queue: mq -> client IP (the client id's part before '@'). */
typedef struct queue_owner {
    lsmq_admin_mq mq;
    char ip[64];
} queue_owner;

static void find_owners(const mqa_ctx *ctx, const char *group, char *const *addrs, size_t n,
                        queue_owner **owners, size_t *n_owners)
{
    lsmq_admin_consumer_connection *cc = NULL;

    *owners = NULL;
    *n_owners = 0;
    if (collect_connections(ctx, group, addrs, n, &cc) != 0)
        return;
    for (size_t i = 0; i < cc->n_conns; i++) {
        lsmq_admin_mq *mqs = NULL;
        size_t nm = 0;
        if (lsmq_admin_get_consumer_queues(ctx->admin, addrs[0], group, cc->conns[i].client_id,
                                           ctx->timeout_ms, &mqs, &nm) != 0) {
            mqa_warn(ctx);
            continue;
        }
        *owners = proto_xrealloc(*owners, (*n_owners + nm + 1) * sizeof **owners);
        for (size_t k = 0; k < nm; k++) {
            queue_owner *o = &(*owners)[(*n_owners)++];
            o->mq = mqs[k];
            snprintf(o->ip, sizeof o->ip, "%.*s", (int)strcspn(cc->conns[i].client_id, "@"),
                     cc->conns[i].client_id);
        }
        free(mqs); /* the strings moved into owners */
    }
    lsmq_admin_consumer_connection_free(cc);
}

static const char *owner_of(const queue_owner *owners, size_t n, const lsmq_admin_mq *mq)
{
    for (size_t i = 0; i < n; i++)
        if (owners[i].mq.queue_id == mq->queue_id && strcmp(owners[i].mq.topic, mq->topic) == 0 &&
            strcmp(owners[i].mq.broker_name, mq->broker_name) == 0)
            return owners[i].ip;
    return NULL;
}

static void print_progress(const mqa_ctx *ctx, const char *group,
                           const lsmq_admin_consume_stats *s, int show_ip,
                           const queue_owner *owners, size_t n_owners)
{
    long long diff_total = 0, inflight_total = 0;
    json_t *queues = json_array();
    char when[64];

    if (!ctx->json && show_ip)
        printf("%-64s  %-32s  %-4s  %-20s  %-20s  %-20s %-20s %-20s%s\n", "#Topic",
               "#Broker Name", "#QID", "#Broker Offset", "#Consumer Offset", "#Client IP",
               "#Diff", "#Inflight", "#LastTime");
    else if (!ctx->json)
        printf("%-64s  %-32s  %-4s  %-20s  %-20s  %-20s %-20s%s\n", "#Topic", "#Broker Name",
               "#QID", "#Broker Offset", "#Consumer Offset", "#Diff", "#Inflight", "#LastTime");
    for (size_t i = 0; i < s->n_queues; i++) {
        const lsmq_admin_consume_offset *q = &s->queues[i];
        long long diff = q->broker_offset - q->consumer_offset;
        long long inflight = q->pull_offset - q->consumer_offset;
        const char *ip = show_ip ? owner_of(owners, n_owners, &q->mq) : NULL;
        const char *last =
            q->last_timestamp == 0 ? "N/A" : mqa_time(q->last_timestamp, 0, when, sizeof when);
        diff_total += diff;
        inflight_total += inflight;
        if (ctx->json) {
            json_t *o = json_object();
            json_object_set_new(o, "topic", mqa_json_str(q->mq.topic));
            json_object_set_new(o, "brokerName", mqa_json_str(q->mq.broker_name));
            json_object_set_new(o, "queueId", json_integer(q->mq.queue_id));
            json_object_set_new(o, "brokerOffset", json_integer(q->broker_offset));
            json_object_set_new(o, "consumerOffset", json_integer(q->consumer_offset));
            json_object_set_new(o, "pullOffset", json_integer(q->pull_offset));
            json_object_set_new(o, "diff", json_integer(diff));
            json_object_set_new(o, "inflight", json_integer(inflight));
            json_object_set_new(o, "lastTimestamp", json_integer(q->last_timestamp));
            if (show_ip)
                json_object_set_new(o, "clientIP", ip ? mqa_json_str(ip) : json_null());
            json_array_append_new(queues, o);
        } else if (show_ip) {
            printf("%-64.64s  %-32.32s  %-4d  %-20lld  %-20lld  %-20s %-20lld %-20lld %s\n",
                   q->mq.topic, q->mq.broker_name, q->mq.queue_id, (long long)q->broker_offset,
                   (long long)q->consumer_offset, ip ? ip : "N/A", diff, inflight, last);
        } else {
            printf("%-64.64s  %-32.32s  %-4d  %-20lld  %-20lld  %-20lld %-20lld %s\n",
                   q->mq.topic, q->mq.broker_name, q->mq.queue_id, (long long)q->broker_offset,
                   (long long)q->consumer_offset, diff, inflight, last);
        }
    }
    if (ctx->json) {
        json_t *o = json_object();
        json_object_set_new(o, "group", mqa_json_str(group));
        json_object_set_new(o, "queues", queues);
        json_object_set_new(o, "consumeTps", json_real(s->consume_tps));
        json_object_set_new(o, "diffTotal", json_integer(diff_total));
        json_object_set_new(o, "inflightTotal", json_integer(inflight_total));
        mqa_print_json(o);
        return;
    }
    json_decref(queues);
    printf("\nConsume TPS: %.2f\n", s->consume_tps);
    printf("Consume Diff Total: %lld\n", diff_total);
    printf("Consume Inflight Total: %lld\n", inflight_total);
}

/* consumerProgress -g GROUP [-t TOPIC [-c CLUSTER]] [-s true]. */
static int progress_of_group(mqa_ctx *ctx, const char *group)
{
    const char *topic = mqa_arg(ctx, 't'), *cluster = mqa_arg(ctx, 'c');
    lsmq_admin_consume_stats *stats = NULL;
    queue_owner *owners = NULL;
    char **addrs = NULL;
    size_t n = 0, n_owners = 0;
    int show_ip = 0, rc;

    if ((rc = mqa_arg_bool(ctx, 's', 0, &show_ip)) != 0)
        return rc;
    if (topic) {
        /* The topic's brokers (or the cluster's masters). */
        lsmq_admin_cluster_info *ci = NULL;
        lsmq_admin_route *r = NULL;
        const char **m = NULL;
        size_t nm = 0;
        rc = cluster ? mqa_cluster_masters(ctx, cluster, &ci, &m, &nm)
                     : mqa_route_masters(ctx, topic, &r, &m, &nm);
        for (size_t i = 0; rc == 0 && i < nm; i++)
            add_addr(&addrs, &n, m[i]);
        free(m);
        lsmq_admin_route_free(r);
        lsmq_admin_cluster_info_free(ci);
    } else {
        rc = group_brokers(ctx, group, &addrs, &n);
    }
    for (size_t i = 0; rc == MQA_OK && i < n; i++)
        if (lsmq_admin_get_consume_stats(ctx->admin, addrs[i], group, topic, ctx->timeout_ms,
                                         &stats) != 0)
            rc = mqa_fail(ctx);
    if (rc == MQA_OK && (!stats || stats->n_queues == 0))
        rc = mqa_failf(ctx, "Not found the consumer group consume stats, because return offset "
                            "table is empty, maybe the consumer not consume any message");
    if (rc == MQA_OK) {
        if (show_ip) {
            char **group_addrs = NULL;
            size_t ng = 0;
            if (group_brokers(ctx, group, &group_addrs, &ng) == MQA_OK)
                find_owners(ctx, group, group_addrs, ng, &owners, &n_owners);
            lsmq_admin_strings_free(group_addrs, ng);
        }
        print_progress(ctx, group, stats, show_ip, owners, n_owners);
    }
    for (size_t i = 0; i < n_owners; i++) {
        free(owners[i].mq.topic);
        free(owners[i].mq.broker_name);
    }
    free(owners);
    lsmq_admin_consume_stats_free(stats);
    lsmq_admin_strings_free(addrs, n);
    return rc;
}

/* One summary row for a group (upstream's GroupConsumeInfo). */
static void progress_summary_row(const mqa_ctx *ctx, const char *group, json_t *rows)
{
    lsmq_admin_consume_stats *stats = NULL;
    lsmq_admin_consumer_connection *cc = NULL;
    char **addrs = NULL, version[32] = "";
    size_t n = 0;
    long long diff = 0;
    int tps = 0, count = 0, min_version = -1;
    const char *type = "", *model = "";

    if (group_brokers(ctx, group, &addrs, &n) == MQA_OK) {
        for (size_t i = 0; i < n; i++)
            lsmq_admin_get_consume_stats(ctx->admin, addrs[i], group, NULL, ctx->timeout_ms,
                                         &stats);
        collect_connections(ctx, group, addrs, n, &cc);
    }
    for (size_t i = 0; stats && i < stats->n_queues; i++)
        diff += stats->queues[i].broker_offset - stats->queues[i].consumer_offset;
    tps = stats ? (int)stats->consume_tps : 0;
    if (cc && cc->n_conns > 0) {
        count = (int)cc->n_conns;
        for (size_t i = 0; i < cc->n_conns; i++)
            if (min_version < 0 || cc->conns[i].version < min_version)
                min_version = cc->conns[i].version;
        mqa_version_desc(min_version, version, sizeof version);
        int push = strcmp(cc->consume_type, "CONSUME_ACTIVELY") != 0;
        type = push ? "PUSH" : "PULL";
        model = push ? cc->message_model : "";
    }
    if (ctx->json) {
        json_t *o = json_object();
        json_object_set_new(o, "group", mqa_json_str(group));
        json_object_set_new(o, "count", json_integer(count));
        json_object_set_new(o, "version", count ? mqa_json_str(version) : json_null());
        json_object_set_new(o, "consumeType", mqa_json_str(type));
        json_object_set_new(o, "messageModel", mqa_json_str(model));
        json_object_set_new(o, "consumeTps", json_integer(tps));
        json_object_set_new(o, "diffTotal", json_integer(diff));
        json_array_append_new(rows, o);
    } else {
        printf("%-64.64s  %-6d  %-24s %-5s  %-14s  %-7d  %lld\n", group, count,
               count ? version : "OFFLINE", type, model, tps, diff);
    }
    lsmq_admin_consumer_connection_free(cc);
    lsmq_admin_consume_stats_free(stats);
    lsmq_admin_strings_free(addrs, n);
}

/* consumerProgress without -g: every group that has a retry topic. */
static int progress_of_all(mqa_ctx *ctx)
{
    char **topics = NULL;
    size_t n = 0, plen = strlen(MQA_RETRY_PREFIX);
    json_t *rows = json_array();

    if (lsmq_admin_get_topic_list(ctx->admin, ctx->namesrv, NULL, ctx->timeout_ms, &topics,
                                  &n) != 0) {
        json_decref(rows);
        return mqa_fail(ctx);
    }
    if (!ctx->json)
        printf("%-64s  %-6s  %-24s %-5s  %-14s  %-7s  %s\n", "#Group", "#Count", "#Version",
               "#Type", "#Model", "#TPS", "#Diff Total");
    for (size_t i = 0; i < n; i++)
        if (strncmp(topics[i], MQA_RETRY_PREFIX, plen) == 0 && topics[i][plen])
            progress_summary_row(ctx, topics[i] + plen, rows);
    if (ctx->json) {
        json_t *o = json_object();
        json_object_set_new(o, "groups", rows);
        mqa_print_json(o);
    } else {
        json_decref(rows);
    }
    lsmq_admin_strings_free(topics, n);
    return MQA_OK;
}

static int consumer_progress(mqa_ctx *ctx)
{
    const char *group = mqa_arg(ctx, 'g');

    if (group && !*group)
        return mqa_usage_error(ctx, "the group name is empty");
    return group ? progress_of_group(ctx, group) : progress_of_all(ctx);
}

/* ==== consumerConnection ================================================= */

static const mqa_opt consumer_connection_opts[] = {
    {'g', "consumerGroup", 1, MQA_REQUIRED, "consumer group name"},
    {'b', "brokerAddr", 1, MQA_OPTIONAL, "broker address"},
    {0, NULL, 0, 0, NULL},
};

static void print_connection(const mqa_ctx *ctx, const lsmq_admin_consumer_connection *cc)
{
    char version[32];

    if (ctx->json) {
        json_t *o = json_object(), *conns = json_array(), *subs = json_array();
        for (size_t i = 0; i < cc->n_conns; i++) {
            const lsmq_admin_connection *c = &cc->conns[i];
            json_t *e = json_object();
            json_object_set_new(e, "clientId", mqa_json_str(c->client_id));
            json_object_set_new(e, "clientAddr", mqa_json_str(c->client_addr));
            json_object_set_new(e, "language", mqa_json_str(c->language));
            json_object_set_new(e, "version", json_integer(c->version));
            mqa_version_desc(c->version, version, sizeof version);
            json_object_set_new(e, "versionDesc", mqa_json_str(version));
            json_array_append_new(conns, e);
        }
        for (size_t i = 0; i < cc->n_subs; i++) {
            json_t *e = json_object();
            json_object_set_new(e, "topic", mqa_json_str(cc->subs[i].topic));
            json_object_set_new(e, "subString", mqa_json_str(cc->subs[i].sub_string));
            json_object_set_new(e, "expressionType", mqa_json_str(cc->subs[i].expression_type));
            json_array_append_new(subs, e);
        }
        json_object_set_new(o, "connections", conns);
        json_object_set_new(o, "subscriptions", subs);
        json_object_set_new(o, "consumeType", mqa_json_str(cc->consume_type));
        json_object_set_new(o, "messageModel", mqa_json_str(cc->message_model));
        json_object_set_new(o, "consumeFromWhere", mqa_json_str(cc->consume_from_where));
        mqa_print_json(o);
        return;
    }
    printf("%-36s %-22s %-10s %s\n", "#ClientId", "#ClientAddr", "#Language", "#Version");
    for (size_t i = 0; i < cc->n_conns; i++) {
        const lsmq_admin_connection *c = &cc->conns[i];
        printf("%-36s %-22s %-10s %s\n", c->client_id, c->client_addr, c->language,
               mqa_version_desc(c->version, version, sizeof version));
    }
    printf("\nBelow is subscription:\n");
    printf("%-20s %s\n", "#Topic", "#SubExpression");
    for (size_t i = 0; i < cc->n_subs; i++)
        printf("%-20s %s\n", cc->subs[i].topic, cc->subs[i].sub_string);
    printf("\n");
    printf("ConsumeType: %s\n", cc->consume_type);
    printf("MessageModel: %s\n", cc->message_model);
    printf("ConsumeFromWhere: %s\n", cc->consume_from_where);
}

static int consumer_connection(mqa_ctx *ctx)
{
    const char *group = mqa_arg(ctx, 'g'), *broker = mqa_arg(ctx, 'b');
    lsmq_admin_consumer_connection *cc = NULL;
    char **addrs = NULL;
    size_t n = 0;
    int rc;

    if (!*group)
        return mqa_usage_error(ctx, "the group name is empty");
    if (broker)
        add_addr(&addrs, &n, broker);
    else if ((rc = group_brokers(ctx, group, &addrs, &n)) != MQA_OK)
        return rc;
    rc = collect_connections(ctx, group, addrs, n, &cc);
    if (rc != 0 && n == 0)
        rc = mqa_failf(ctx, "no broker to ask about group %s", group);
    else if (rc != 0)
        rc = mqa_fail(ctx);
    else if (cc->n_conns == 0)
        rc = mqa_failf(ctx, "Not found the consumer group connection of %s", group);
    else
        print_connection(ctx, cc);
    lsmq_admin_consumer_connection_free(cc);
    lsmq_admin_strings_free(addrs, n);
    return rc;
}

/* ==== updateSubGroup ====================================================== */

static const mqa_opt update_sub_group_opts[] = {
    {'b', "brokerAddr", 1, MQA_ONE_OF, "create subscription group to which broker"},
    {'c', "clusterName", 1, MQA_ONE_OF, "create subscription group to which cluster"},
    {'g', "groupName", 1, MQA_REQUIRED, "consumer group name"},
    {'s', "consumeEnable", 1, MQA_OPTIONAL, "consume enable"},
    {'m', "consumeFromMinEnable", 1, MQA_OPTIONAL, "from min offset"},
    {'d', "consumeBroadcastEnable", 1, MQA_OPTIONAL, "broadcast"},
    {'o', "consumeMessageOrderly", 1, MQA_OPTIONAL, "consume message orderly"},
    {'q', "retryQueueNums", 1, MQA_OPTIONAL, "retry queue nums"},
    {'r', "retryMaxTimes", 1, MQA_OPTIONAL, "retry max times"},
    {'p', "groupRetryPolicy", 1, MQA_OPTIONAL,
     "the json string of retry policy ( exp: "
     "{\"type\":\"EXPONENTIAL\",\"exponentialRetryPolicy\":{\"initial\":5000,\"max\":7200000,"
     "\"multiplier\":2}} {\"type\":\"CUSTOMIZED\",\"customizedRetryPolicy\":{\"next\":"
     "[1000,5000,10000]}} )"},
    {'i', "brokerId", 1, MQA_OPTIONAL, "consumer from which broker id"},
    {'w', "whichBrokerWhenConsumeSlowly", 1, MQA_OPTIONAL, "which broker id when consume slowly"},
    {'a', "notifyConsumerIdsChanged", 1, MQA_OPTIONAL, "notify consumerId changed"},
    {0, NULL, 0, 0, NULL},
};

/*
 * The config upstream's command sends: a fresh SubscriptionGroupConfig
 * (broadcast and from-min off), with the options given. NULL after
 * printing why an option is bad (*rc set).
 */
static json_t *sub_group_config(const mqa_ctx *ctx, int *rc)
{
    static const struct { char letter; const char *field; int dflt; } bools[] = {
        {'s', "consumeEnable", 1}, {'m', "consumeFromMinEnable", 0},
        {'d', "consumeBroadcastEnable", 0}, {'o', "consumeMessageOrderly", 0},
        {'a', "notifyConsumerIdsChangedEnable", 1},
    };
    static const struct { char letter; const char *field; int dflt; } ints[] = {
        {'q', "retryQueueNums", 1}, {'r', "retryMaxTimes", 16}, {'i', "brokerId", 0},
        {'w', "whichBrokerWhenConsumeSlowly", 1},
    };
    json_t *o = json_object();
    json_object_set_new(o, "groupName", mqa_json_str(mqa_arg(ctx, 'g')));
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
        int v;
        if ((*rc = mqa_arg_bool(ctx, bools[i].letter, bools[i].dflt, &v)) != 0)
            goto bad;
        json_object_set_new(o, bools[i].field, json_boolean(v));
    }
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        int v;
        if ((*rc = mqa_arg_int(ctx, ints[i].letter, ints[i].dflt, &v)) != 0)
            goto bad;
        json_object_set_new(o, ints[i].field, json_integer(v));
    }
    const char *policy = mqa_arg(ctx, 'p');
    if (policy) {
        json_t *p = json_loads(policy, 0, NULL);
        const char *type = json_string_value(json_object_get(p, "type"));
        if (!json_is_object(p) || !type ||
            (strcmp(type, "EXPONENTIAL") != 0 && strcmp(type, "CUSTOMIZED") != 0)) {
            json_decref(p);
            *rc = mqa_usage_error(ctx, "bad groupRetryPolicy '%s': want a JSON object with "
                                       "\"type\" EXPONENTIAL or CUSTOMIZED", policy);
            goto bad;
        }
        json_object_set_new(o, "groupRetryPolicy", p);
    }
    return o;
bad:
    json_decref(o);
    return NULL;
}

static int update_sub_group(mqa_ctx *ctx)
{
    const char *addr = mqa_arg(ctx, 'b'), *cluster = mqa_arg(ctx, 'c');
    int rc = MQA_OK;
    json_t *cfg = sub_group_config(ctx, &rc);
    if (!cfg)
        return rc;
    char *body = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(cfg);
    lsmq_admin_cluster_info *ci = NULL;
    const char **targets = &addr;
    size_t n = 1;
    if (cluster && (rc = mqa_cluster_masters(ctx, cluster, &ci, &targets, &n)) != 0) {
        free(body);
        return rc;
    }
    if (n == 0)
        rc = mqa_failf(ctx, "cluster %s has no master broker", cluster);
    for (size_t i = 0; i < n; i++) {
        if (lsmq_admin_update_subscription_group(ctx->admin, targets[i], body,
                                                 ctx->timeout_ms) != 0)
            rc = mqa_fail(ctx);
        else
            printf("create subscription group to %s success.\n", targets[i]);
    }
    if (rc == MQA_OK)
        printf("%s\n", body);
    free(body);
    if (cluster)
        free(targets);
    lsmq_admin_cluster_info_free(ci);
    return rc;
}

const mqa_command mqa_consumer_commands[] = {
    {"updateSubGroup", "Update or create subscription group.", update_sub_group_opts,
     update_sub_group},
    {"consumerProgress", "Query consumer's progress, speed.", consumer_progress_opts,
     consumer_progress},
    {"consumerConnection", "Query consumer's socket connection, client version and subscription.",
     consumer_connection_opts, consumer_connection},
    {NULL, NULL, NULL, NULL},
};
