/*
 * mqadmin topic commands: updateTopic, deleteTopic, topicList, topicRoute
 * and topicStatus, with upstream's option letters (tools/.../command/topic/
 * in apache/rocketmq) and tables laid out like upstream's; and lsmq's
 * timerStatus (pending delayed messages per topic), which upstream lacks.
 *
 * Cluster-wide operations address the master of every broker group the
 * name server lists for the cluster; per-topic reads address the masters
 * in the topic's route, merging their answers. Unlike upstream,
 * updateTopic returns once the name server routes the topic as configured
 * (or after a bounded wait), so a client started next finds it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "mqadmin.h"
#include "clock.h"

/* "RW-" style, as PermName.perm2String. */
static const char *perm_string(int perm, char buf[4])
{
    buf[0] = perm & 4 ? 'R' : '-';
    buf[1] = perm & 2 ? 'W' : '-';
    buf[2] = perm & 1 ? 'X' : '-';
    buf[3] = '\0';
    return buf;
}

static int is_group_topic(const char *topic)
{
    return strncmp(topic, MQA_RETRY_PREFIX, strlen(MQA_RETRY_PREFIX)) == 0 ||
           strncmp(topic, MQA_DLQ_PREFIX, strlen(MQA_DLQ_PREFIX)) == 0;
}

/* ==== updateTopic ======================================================== */

static const mqa_opt update_topic_opts[] = {
    {'b', "brokerAddr", 1, MQA_ONE_OF, "create topic to which broker"},
    {'c', "clusterName", 1, MQA_ONE_OF, "create topic to which cluster"},
    {'a', "attributes", 1, MQA_OPTIONAL, "attribute(+a=b,+c=d,-e)"},
    {'t', "topic", 1, MQA_REQUIRED, "topic name"},
    {'r', "readQueueNums", 1, MQA_OPTIONAL, "set read queue nums (default 8)"},
    {'w', "writeQueueNums", 1, MQA_OPTIONAL, "set write queue nums (default 8)"},
    {'p', "perm", 1, MQA_OPTIONAL, "set topic's permission(2|4|6), intro[2:W 4:R; 6:RW]"},
    {'o', "order", 1, MQA_OPTIONAL, "set topic's order(true|false)"},
    {'u', "unit", 1, MQA_OPTIONAL, "is unit topic (true|false)"},
    {'s', "hasUnitSub", 1, MQA_OPTIONAL, "has unit sub (true|false)"},
    {0, NULL, 0, 0, NULL},
};

/*
 * Check "+a=b,+c=d,-e" as upstream's AttributeParser does: every item adds
 * (+key=value) or deletes (-key). Calls fn for each item when fn != NULL.
 */
static int walk_attributes(const char *attrs, void (*fn)(const char *item, size_t len, void *arg),
                           void *arg)
{
    const char *p = attrs;

    while (*p) {
        size_t len = strcspn(p, ",");
        const char *eq = memchr(p, '=', len);
        int ok = len >= 2 &&
                 ((p[0] == '+' && eq && eq > p + 1) || (p[0] == '-' && !eq));
        if (!ok)
            return -1;
        if (fn)
            fn(p, len, arg);
        p += len;
        if (*p == ',' && *++p == '\0')
            return -1;
    }
    return 0;
}

/* Java's Map.toString of the parsed attributes: "+a=b, -e=". */
static void print_attribute_cb(const char *item, size_t len, void *arg)
{
    int *first = arg;
    const char *eq = memchr(item, '=', len);

    printf("%s%.*s", *first ? "" : ", ", (int)len, item);
    if (!eq)
        printf("=");
    *first = 0;
}

static void print_topic_config(const lsmq_admin_topic_config *tc)
{
    char perm[4];
    int first = 1;

    printf("TopicConfig [topicName=%s, readQueueNums=%d, writeQueueNums=%d, perm=%s, "
           "topicFilterType=SINGLE_TAG, topicSysFlag=%d, order=%s, attributes={",
           tc->topic, tc->read_queue_nums, tc->write_queue_nums, perm_string(tc->perm, perm),
           tc->topic_sys_flag, tc->order ? "true" : "false");
    if (tc->attributes)
        walk_attributes(tc->attributes, print_attribute_cb, &first);
    printf("}]\n");
}

static json_t *topic_config_json(const lsmq_admin_topic_config *tc)
{
    json_t *o = json_object();

    json_object_set_new(o, "topicName", mqa_json_str(tc->topic));
    json_object_set_new(o, "readQueueNums", json_integer(tc->read_queue_nums));
    json_object_set_new(o, "writeQueueNums", json_integer(tc->write_queue_nums));
    json_object_set_new(o, "perm", json_integer(tc->perm));
    json_object_set_new(o, "topicFilterType", json_string("SINGLE_TAG"));
    json_object_set_new(o, "topicSysFlag", json_integer(tc->topic_sys_flag));
    json_object_set_new(o, "order", json_boolean(tc->order));
    json_object_set_new(o, "attributes", mqa_json_str(tc->attributes ? tc->attributes : ""));
    return o;
}

/* The broker group name owning address addr, or NULL. */
static const char *broker_name_of(const lsmq_admin_cluster_info *ci, const char *addr)
{
    for (size_t i = 0; i < ci->n_brokers; i++)
        for (size_t j = 0; j < ci->brokers[i].n_addrs; j++)
            if (strcmp(ci->brokers[i].addrs[j].addr, addr) == 0)
                return ci->brokers[i].name;
    return NULL;
}

/* Append "name:queues" to conf unless it names that broker already. */
static void conf_add(char *conf, size_t cap, const char *name, int queues)
{
    size_t len = strlen(conf);

    snprintf(conf + len, cap - len, "%s%s:%d", len ? ";" : "", name, queues);
}

/*
 * The global order configuration of the topic in the name servers'
 * ORDER_TOPIC_CONFIG namespace: for a cluster, all its broker groups; for
 * one broker, its entry merged into what is there already.
 */
static int update_order_conf(const mqa_ctx *ctx, const lsmq_admin_topic_config *tc,
                             char *conf, size_t cap)
{
    const char *addr = mqa_arg(ctx, 'b'), *cluster = mqa_arg(ctx, 'c');
    lsmq_admin_cluster_info *ci = NULL;
    int rc = MQA_OK;

    conf[0] = '\0';
    if (lsmq_admin_get_cluster_info(ctx->admin, ctx->namesrv, ctx->timeout_ms, &ci) != 0)
        return mqa_fail(ctx);
    if (cluster) {
        const lsmq_admin_cluster *c = lsmq_admin_cluster_info_cluster(ci, cluster);
        for (size_t i = 0; c && i < c->n_broker_names; i++)
            conf_add(conf, cap, c->broker_names[i], tc->write_queue_nums);
    } else {
        const char *name = broker_name_of(ci, addr);
        char *old = NULL;
        if (!name) {
            rc = mqa_failf(ctx, "no broker with address %s is registered", addr);
            goto done;
        }
        int r = lsmq_admin_get_kv_config(ctx->admin, ctx->namesrv, LSMQ_ADMIN_ORDER_TOPIC_CONFIG,
                                         tc->topic, ctx->timeout_ms, &old);
        if (r != 0 && r != LSMQ_ENOTFOUND) {
            rc = mqa_fail(ctx);
            goto done;
        }
        /* Keep the other brokers' entries, replace this one's. */
        for (char *save = NULL, *e = old ? strtok_r(old, ";", &save) : NULL; e;
             e = strtok_r(NULL, ";", &save)) {
            size_t nlen = strcspn(e, ":");
            if (!(nlen == strlen(name) && strncmp(e, name, nlen) == 0)) {
                size_t len = strlen(conf);
                snprintf(conf + len, cap - len, "%s%s", len ? ";" : "", e);
            }
        }
        free(old);
        conf_add(conf, cap, name, tc->write_queue_nums);
    }
    if (lsmq_admin_put_kv_config(ctx->admin, ctx->namesrv, LSMQ_ADMIN_ORDER_TOPIC_CONFIG, tc->topic,
                                 conf, ctx->timeout_ms) != 0)
        rc = mqa_fail(ctx);
done:
    lsmq_admin_cluster_info_free(ci);
    return rc;
}

/* Does the route show the topic on broker `name` with tc's counts and perm? */
static int route_shows(const lsmq_admin_route *r, const char *name,
                       const lsmq_admin_topic_config *tc)
{
    for (size_t i = 0; i < r->n_queues; i++) {
        const lsmq_admin_queue_data *q = &r->queues[i];
        if (strcmp(q->broker_name, name) == 0)
            return q->read_queue_nums == tc->read_queue_nums &&
                   q->write_queue_nums == tc->write_queue_nums && q->perm == tc->perm;
    }
    return 0;
}

/*
 * Wait (up to ROUTE_WAIT_MS) until the name server's route shows the topic
 * as just configured on every broker in addrs, so that clients started
 * right after mqadmin find it: brokers re-register by themselves, a moment
 * after the change. Returns 1 when it does, 0 after warning that it does not.
 */
#define ROUTE_WAIT_MS 3000
#define ROUTE_POLL_MS 50

static int wait_for_route(const mqa_ctx *ctx, const lsmq_admin_topic_config *tc,
                          const char *const *addrs, size_t n)
{
    lsmq_admin_cluster_info *ci = NULL;
    const char *missing = NULL;

    if (lsmq_admin_get_cluster_info(ctx->admin, ctx->namesrv, ctx->timeout_ms, &ci) != 0) {
        mqa_warn(ctx);
        return 0;
    }
    int64_t start_ms = proto_mono_ms();
    for (;;) {
        lsmq_admin_route *r = NULL;
        missing = NULL;
        if (lsmq_admin_get_route(ctx->admin, ctx->namesrv, tc->topic, ctx->timeout_ms, &r) != 0)
            missing = addrs[0];
        for (size_t i = 0; r && i < n && !missing; i++) {
            const char *name = broker_name_of(ci, addrs[i]);
            if (name && !route_shows(r, name, tc))
                missing = addrs[i];
        }
        lsmq_admin_route_free(r);
        long waited_ms = (long)(proto_mono_ms() - start_ms);
        if (!missing || waited_ms >= ROUTE_WAIT_MS)
            break;
        struct timespec pause = {0, ROUTE_POLL_MS * 1000000L};
        nanosleep(&pause, NULL);
    }
    lsmq_admin_cluster_info_free(ci);
    if (missing)
        fprintf(stderr,
                "mqadmin %s: warning: after %d ms the name server does not route %s to %s "
                "as configured yet\n",
                ctx->cmd, ROUTE_WAIT_MS, tc->topic, missing);
    return !missing;
}

static int update_topic(mqa_ctx *ctx)
{
    lsmq_admin_topic_config tc;
    const char *addr = mqa_arg(ctx, 'b'), *cluster = mqa_arg(ctx, 'c');
    int unit, has_unit_sub, order, rc;

    memset(&tc, 0, sizeof tc);
    tc.topic = mqa_arg(ctx, 't');
    tc.attributes = mqa_arg(ctx, 'a');
    if ((rc = mqa_arg_int(ctx, 'r', 8, &tc.read_queue_nums)) != 0 ||
        (rc = mqa_arg_int(ctx, 'w', 8, &tc.write_queue_nums)) != 0 ||
        (rc = mqa_arg_int(ctx, 'p', 6, &tc.perm)) != 0 ||
        (rc = mqa_arg_bool(ctx, 'o', 0, &order)) != 0 ||
        (rc = mqa_arg_bool(ctx, 'u', 0, &unit)) != 0 ||
        (rc = mqa_arg_bool(ctx, 's', 0, &has_unit_sub)) != 0)
        return rc;
    if (!*tc.topic)
        return mqa_usage_error(ctx, "the topic name is empty");
    if (tc.attributes && walk_attributes(tc.attributes, NULL, NULL) != 0)
        return mqa_usage_error(ctx, "bad attributes '%s': want +key=value or -key, "
                                    "separated by commas", tc.attributes);
    tc.order = order;
    tc.topic_sys_flag = (unit ? 1 : 0) | (has_unit_sub ? 2 : 0);

    lsmq_admin_cluster_info *ci = NULL;
    const char **targets = &addr;
    size_t n = 1;
    if (cluster && (rc = mqa_cluster_masters(ctx, cluster, &ci, &targets, &n)) != 0)
        return rc;
    if (n == 0) {
        rc = mqa_failf(ctx, "cluster %s has no master broker", cluster);
        goto done;
    }
    json_t *created = json_array();
    for (size_t i = 0; i < n; i++) {
        if (lsmq_admin_create_topic(ctx->admin, targets[i], &tc, ctx->timeout_ms) != 0) {
            rc = mqa_fail(ctx);
            continue;
        }
        json_array_append_new(created, mqa_json_str(targets[i]));
        if (!ctx->json)
            printf("create topic to %s success.\n", targets[i]);
    }
    int routed = rc == MQA_OK && wait_for_route(ctx, &tc, targets, n);
    char conf[4096] = "";
    if (rc == MQA_OK && order && (rc = update_order_conf(ctx, &tc, conf, sizeof conf)) == 0 &&
        !ctx->json)
        printf("set %s orderConf. isOrder=true, orderConf=[%s]\n", cluster ? "cluster" : "broker",
               conf);
    if (ctx->json) {
        json_t *o = json_object();
        json_object_set_new(o, "created", created);
        json_object_set_new(o, "topicConfig", topic_config_json(&tc));
        if (order && conf[0])
            json_object_set_new(o, "orderConf", mqa_json_str(conf));
        json_object_set_new(o, "routed", json_boolean(routed));
        json_object_set_new(o, "success", json_boolean(rc == MQA_OK));
        mqa_print_json(o);
    } else {
        json_decref(created);
        if (rc == MQA_OK)
            print_topic_config(&tc);
    }
done:
    if (cluster)
        free(targets);
    lsmq_admin_cluster_info_free(ci);
    return rc;
}

/* ==== deleteTopic ======================================================== */

static const mqa_opt delete_topic_opts[] = {
    {'t', "topic", 1, MQA_REQUIRED, "topic name"},
    {'c', "clusterName", 1, MQA_REQUIRED, "delete topic from which cluster"},
    {0, NULL, 0, 0, NULL},
};

static int delete_topic(mqa_ctx *ctx)
{
    const char *topic = mqa_arg(ctx, 't'), *cluster = mqa_arg(ctx, 'c');
    lsmq_admin_cluster_info *ci = NULL;
    const char **addrs = NULL;
    size_t n = 0;
    int rc;

    if ((rc = mqa_cluster_masters(ctx, cluster, &ci, &addrs, &n)) != 0)
        return rc;
    for (size_t i = 0; i < n && rc == MQA_OK; i++)
        if (lsmq_admin_delete_topic_in_broker(ctx->admin, addrs[i], topic, ctx->timeout_ms) != 0)
            rc = mqa_fail(ctx);
    if (rc == MQA_OK && !ctx->json)
        printf("delete topic [%s] from cluster [%s] success.\n", topic, cluster);
    if (rc == MQA_OK) {
        if (lsmq_admin_delete_topic_in_namesrv(ctx->admin, ctx->namesrv, topic, cluster,
                                               ctx->timeout_ms) != 0)
            rc = mqa_fail(ctx);
        else if (!ctx->json)
            printf("delete topic [%s] from NameServer success.\n", topic);
    }
    if (ctx->json && rc == MQA_OK) {
        json_t *o = json_object();
        json_object_set_new(o, "topic", mqa_json_str(topic));
        json_object_set_new(o, "clusterName", mqa_json_str(cluster));
        json_object_set_new(o, "brokers", mqa_json_strings((char *const *)addrs, n));
        json_object_set_new(o, "namesrvAddr", mqa_json_str(ctx->namesrv));
        mqa_print_json(o);
    }
    free(addrs);
    lsmq_admin_cluster_info_free(ci);
    return rc;
}

/* ==== topicList ========================================================== */

static const mqa_opt topic_list_opts[] = {
    {'c', "clusterModel", 0, MQA_OPTIONAL, "clusterModel"},
    {0, NULL, 0, 0, NULL},
};

/* The cluster of the topic's first broker, and the groups consuming it. */
static void topic_cluster_and_groups(const mqa_ctx *ctx, const lsmq_admin_cluster_info *ci,
                                     const char *topic, const char **cluster, json_t *groups)
{
    lsmq_admin_route *r = NULL;

    *cluster = "";
    if (lsmq_admin_get_route(ctx->admin, ctx->namesrv, topic, ctx->timeout_ms, &r) != 0)
        return;
    if (r->n_brokers > 0) {
        const char *name = r->brokers[0].name;
        for (size_t i = 0; i < ci->n_clusters && !**cluster; i++)
            for (size_t j = 0; j < ci->clusters[i].n_broker_names; j++)
                if (strcmp(ci->clusters[i].broker_names[j], name) == 0)
                    *cluster = ci->clusters[i].name;
    }
    for (size_t i = 0; i < r->n_brokers; i++) {
        const char *m = lsmq_admin_broker_master(&r->brokers[i]);
        char **g = NULL;
        size_t n = 0;
        if (!m || lsmq_admin_get_topic_groups(ctx->admin, m, topic, ctx->timeout_ms, &g, &n) != 0)
            continue;
        for (size_t k = 0; k < n; k++) {
            int dup = 0;
            for (size_t x = 0; x < json_array_size(groups); x++)
                dup |= strcmp(json_string_value(json_array_get(groups, x)), g[k]) == 0;
            if (!dup)
                json_array_append_new(groups, mqa_json_str(g[k]));
        }
        lsmq_admin_strings_free(g, n);
    }
    lsmq_admin_route_free(r);
}

static int topic_list_clusters(mqa_ctx *ctx, char **topics, size_t n)
{
    lsmq_admin_cluster_info *ci = NULL;
    json_t *rows = json_array();

    if (lsmq_admin_get_cluster_info(ctx->admin, ctx->namesrv, ctx->timeout_ms, &ci) != 0) {
        json_decref(rows);
        return mqa_fail(ctx);
    }
    if (!ctx->json)
        printf("%-20s  %-64s  %-64s\n", "#Cluster Name", "#Topic", "#Consumer Group");
    for (size_t i = 0; i < n; i++) {
        const char *cluster;
        json_t *groups = json_array();
        if (is_group_topic(topics[i])) {
            json_decref(groups);
            continue;
        }
        topic_cluster_and_groups(ctx, ci, topics[i], &cluster, groups);
        if (ctx->json) {
            json_t *o = json_object();
            json_object_set_new(o, "clusterName", mqa_json_str(cluster));
            json_object_set_new(o, "topic", mqa_json_str(topics[i]));
            json_object_set_new(o, "groups", groups);
            json_array_append_new(rows, o);
            continue;
        }
        if (json_array_size(groups) == 0)
            printf("%-20.20s  %-64.64s  %-64s\n", cluster, topics[i], "");
        for (size_t k = 0; k < json_array_size(groups); k++)
            printf("%-20.20s  %-64.64s  %-64.64s\n", cluster, topics[i],
                   json_string_value(json_array_get(groups, k)));
        json_decref(groups);
    }
    if (ctx->json) {
        json_t *o = json_object();
        json_object_set_new(o, "topics", rows);
        mqa_print_json(o);
    } else {
        json_decref(rows);
    }
    lsmq_admin_cluster_info_free(ci);
    return MQA_OK;
}

static int topic_list(mqa_ctx *ctx)
{
    char **topics = NULL;
    size_t n = 0;
    int rc = MQA_OK;

    if (lsmq_admin_get_topic_list(ctx->admin, ctx->namesrv, NULL, ctx->timeout_ms, &topics,
                                  &n) != 0)
        return mqa_fail(ctx);
    if (mqa_arg(ctx, 'c')) {
        rc = topic_list_clusters(ctx, topics, n);
    } else if (ctx->json) {
        json_t *o = json_object();
        json_object_set_new(o, "topicList", mqa_json_strings(topics, n));
        mqa_print_json(o);
    } else {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", topics[i]);
    }
    lsmq_admin_strings_free(topics, n);
    return rc;
}

/* ==== topicRoute ========================================================= */

static const mqa_opt topic_route_opts[] = {
    {'t', "topic", 1, MQA_REQUIRED, "topic name"},
    {'l', "list", 0, MQA_OPTIONAL, "Use list format to print data"},
    {0, NULL, 0, 0, NULL},
};

/* TopicRouteData as standard JSON (broker ids as string keys). */
static json_t *route_json(const lsmq_admin_route *r)
{
    json_t *o = json_object(), *brokers = json_array(), *queues = json_array();

    for (size_t i = 0; i < r->n_brokers; i++) {
        const lsmq_admin_broker *b = &r->brokers[i];
        json_t *bd = json_object(), *addrs = json_object();
        for (size_t j = 0; j < b->n_addrs; j++) {
            char id[24];
            snprintf(id, sizeof id, "%lld", (long long)b->addrs[j].id);
            json_object_set_new(addrs, id, mqa_json_str(b->addrs[j].addr));
        }
        json_object_set_new(bd, "brokerAddrs", addrs);
        json_object_set_new(bd, "brokerName", mqa_json_str(b->name));
        json_object_set_new(bd, "cluster", mqa_json_str(b->cluster));
        json_array_append_new(brokers, bd);
    }
    for (size_t i = 0; i < r->n_queues; i++) {
        const lsmq_admin_queue_data *q = &r->queues[i];
        json_t *qd = json_object();
        json_object_set_new(qd, "brokerName", mqa_json_str(q->broker_name));
        json_object_set_new(qd, "perm", json_integer(q->perm));
        json_object_set_new(qd, "readQueueNums", json_integer(q->read_queue_nums));
        json_object_set_new(qd, "topicSysFlag", json_integer(q->topic_sys_flag));
        json_object_set_new(qd, "writeQueueNums", json_integer(q->write_queue_nums));
        json_array_append_new(queues, qd);
    }
    json_object_set_new(o, "brokerDatas", brokers);
    json_object_set_new(o, "filterServerTable", json_object());
    if (r->order_topic_conf)
        json_object_set_new(o, "orderTopicConf", mqa_json_str(r->order_topic_conf));
    json_object_set_new(o, "queueDatas", queues);
    return o;
}

#define ROUTE_FORMAT "%-45s %-32s %-50s %-10s %-11s %-5s\n"

static void print_route_list(const lsmq_admin_route *r)
{
    long total_read = 0, total_write = 0;
    char addrs[512], rq[16], wq[16], perm[16], count[16];

    printf(ROUTE_FORMAT, "#ClusterName", "#BrokerName", "#BrokerAddrs", "#ReadQueue",
           "#WriteQueue", "#Perm");
    for (size_t i = 0; i < r->n_brokers; i++) {
        const lsmq_admin_broker *b = &r->brokers[i];
        const lsmq_admin_queue_data *q = NULL;
        size_t len = 0;
        for (size_t j = 0; j < r->n_queues && !q; j++)
            if (strcmp(r->queues[j].broker_name, b->name) == 0)
                q = &r->queues[j];
        /* Java's Map.toString: {0=addr, 1=addr}. */
        len += (size_t)snprintf(addrs, sizeof addrs, "{");
        for (size_t j = 0; j < b->n_addrs && len < sizeof addrs; j++)
            len += (size_t)snprintf(addrs + len, sizeof addrs - len, "%s%lld=%s", j ? ", " : "",
                                    (long long)b->addrs[j].id, b->addrs[j].addr);
        if (len < sizeof addrs)
            snprintf(addrs + len, sizeof addrs - len, "}");
        snprintf(rq, sizeof rq, "%d", q ? q->read_queue_nums : 0);
        snprintf(wq, sizeof wq, "%d", q ? q->write_queue_nums : 0);
        snprintf(perm, sizeof perm, "%d", q ? q->perm : 0);
        total_read += q ? q->read_queue_nums : 0;
        total_write += q ? q->write_queue_nums : 0;
        printf(ROUTE_FORMAT, b->cluster, b->name, addrs, rq, wq, perm);
    }
    for (int i = 0; i < 158; i++)
        putchar('-');
    putchar('\n');
    snprintf(count, sizeof count, "%zu", r->n_queues);
    snprintf(rq, sizeof rq, "%ld", total_read);
    snprintf(wq, sizeof wq, "%ld", total_write);
    printf(ROUTE_FORMAT, "Total:", count, "", rq, wq, "");
}

static int topic_route(mqa_ctx *ctx)
{
    lsmq_admin_route *r = NULL;

    if (lsmq_admin_get_route(ctx->admin, ctx->namesrv, mqa_arg(ctx, 't'), ctx->timeout_ms, &r) != 0)
        return mqa_fail(ctx);
    if (ctx->json) {
        mqa_print_json(route_json(r));
    } else if (mqa_arg(ctx, 'l')) {
        print_route_list(r);
    } else {
        json_t *o = route_json(r);
        char *text = json_dumps(o, JSON_INDENT(4) | JSON_SORT_KEYS);
        if (text)
            printf("%s\n", text);
        free(text);
        json_decref(o);
    }
    lsmq_admin_route_free(r);
    return MQA_OK;
}

/* ==== topicStatus ======================================================== */

static const mqa_opt topic_status_opts[] = {
    {'t', "topic", 1, MQA_REQUIRED, "topic name"},
    {'c', "cluster", 1, MQA_OPTIONAL, "cluster name: ask its master brokers, not the route's"},
    {0, NULL, 0, 0, NULL},
};

static void print_topic_stats(const mqa_ctx *ctx, const char *topic,
                              const lsmq_admin_topic_stats *s)
{
    char when[64], tps[64];

    if (ctx->json) {
        json_t *o = json_object(), *queues = json_array();
        for (size_t i = 0; s && i < s->n_queues; i++) {
            const lsmq_admin_topic_offset *q = &s->queues[i];
            json_t *e = json_object();
            json_object_set_new(e, "brokerName", mqa_json_str(q->mq.broker_name));
            json_object_set_new(e, "queueId", json_integer(q->mq.queue_id));
            json_object_set_new(e, "minOffset", json_integer(q->min_offset));
            json_object_set_new(e, "maxOffset", json_integer(q->max_offset));
            json_object_set_new(e, "lastUpdateTimestamp", json_integer(q->last_update_ms));
            json_array_append_new(queues, e);
        }
        json_object_set_new(o, "topic", mqa_json_str(topic));
        json_object_set_new(o, "queues", queues);
        json_object_set_new(o, "topicPutTps", json_real(s ? s->put_tps : 0));
        mqa_print_json(o);
        return;
    }
    printf("%-32s  %-4s  %-20s  %-20s    %s\n", "#Broker Name", "#QID", "#Min Offset",
           "#Max Offset", "#Last Updated");
    for (size_t i = 0; s && i < s->n_queues; i++) {
        const lsmq_admin_topic_offset *q = &s->queues[i];
        printf("%-32.32s  %-4d  %-20lld  %-20lld    %s\n", q->mq.broker_name, q->mq.queue_id,
               (long long)q->min_offset, (long long)q->max_offset,
               q->last_update_ms > 0 ? mqa_time(q->last_update_ms, 1, when, sizeof when) : "");
    }
    printf("\nTopic Put TPS: %s\n", mqa_double(s ? s->put_tps : 0, tps, sizeof tps));
}

static int topic_status(mqa_ctx *ctx)
{
    const char *topic = mqa_arg(ctx, 't'), *cluster = mqa_arg(ctx, 'c');
    lsmq_admin_cluster_info *ci = NULL;
    lsmq_admin_route *route = NULL;
    lsmq_admin_topic_stats *stats = NULL;
    const char **addrs = NULL;
    size_t n = 0;
    int rc;

    rc = cluster ? mqa_cluster_masters(ctx, cluster, &ci, &addrs, &n)
                 : mqa_route_masters(ctx, topic, &route, &addrs, &n);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n && rc == MQA_OK; i++)
        if (lsmq_admin_get_topic_stats(ctx->admin, addrs[i], topic, ctx->timeout_ms, &stats) != 0)
            rc = mqa_fail(ctx);
    if (rc == MQA_OK && n == 0)
        rc = mqa_failf(ctx, "no master broker serves topic %s", topic);
    if (rc == MQA_OK)
        print_topic_stats(ctx, topic, stats);
    lsmq_admin_topic_stats_free(stats);
    free(addrs);
    lsmq_admin_route_free(route);
    lsmq_admin_cluster_info_free(ci);
    return rc;
}

/* ==== timerStatus (lsmq) ================================================= */

static const mqa_opt timer_status_opts[] = {
    {'t', "topic", 1, MQA_OPTIONAL, "only this topic (default: every topic with pending ones)"},
    {'c', "clusterName", 1, MQA_OPTIONAL, "the brokers of this cluster (default DefaultCluster)"},
    {'b', "brokerAddr", 1, MQA_OPTIONAL, "only this broker"},
    {0, NULL, 0, 0, NULL},
};

static void print_timer_status(const mqa_ctx *ctx, const char *addr,
                               const lsmq_admin_timer_status *st, json_t *all)
{
    if (ctx->json) {
        json_t *o = json_object(), *list = json_array();
        json_object_set_new(o, "broker", mqa_json_str(addr));
        json_object_set_new(o, "pendingTotal", json_integer(st->pending_total));
        for (size_t i = 0; i < st->n_topics; i++) {
            json_t *t = json_object();
            json_object_set_new(t, "topic", mqa_json_str(st->topics[i].topic));
            json_object_set_new(t, "pending", json_integer(st->topics[i].pending));
            json_array_append_new(list, t);
        }
        json_object_set_new(o, "topics", list);
        json_array_append_new(all, o);
        return;
    }
    for (size_t i = 0; i < st->n_topics; i++)
        printf("%-24s  %-48s  %lld\n", addr, st->topics[i].topic,
               (long long)st->topics[i].pending);
    printf("%-24s  %-48s  %lld\n", addr, "(all topics)", (long long)st->pending_total);
}

/* Pending delayed messages per topic, from each broker's counters (lsmq's own request). */
static int timer_status(mqa_ctx *ctx)
{
    const char *topic = mqa_arg(ctx, 't'), *cluster = mqa_arg(ctx, 'c');
    const char *broker = mqa_arg(ctx, 'b');
    lsmq_admin_cluster_info *ci = NULL;
    lsmq_admin_route *route = NULL;
    const char **addrs = NULL;
    size_t n = 0;
    int rc = MQA_OK;
    if (broker) {
        addrs = proto_xmalloc(sizeof *addrs);
        addrs[n++] = broker;
    } else if (topic && !cluster) {
        rc = mqa_route_masters(ctx, topic, &route, &addrs, &n);
    } else {
        rc = mqa_cluster_masters(ctx, cluster ? cluster : "DefaultCluster", &ci, &addrs, &n);
    }
    json_t *all = json_array();
    if (rc == MQA_OK && !ctx->json)
        printf("%-24s  %-48s  %s\n", "#Broker", "#Topic", "#Pending");
    for (size_t i = 0; i < n && rc == MQA_OK; i++) {
        lsmq_admin_timer_status *st = NULL;
        if (lsmq_admin_get_timer_status(ctx->admin, addrs[i], topic, ctx->timeout_ms, &st) != 0)
            rc = mqa_fail(ctx);
        else
            print_timer_status(ctx, addrs[i], st, all);
        lsmq_admin_timer_status_free(st);
    }
    if (rc == MQA_OK && ctx->json)
        mqa_print_json(all);
    else
        json_decref(all);
    free(addrs);
    lsmq_admin_route_free(route);
    lsmq_admin_cluster_info_free(ci);
    return rc;
}

const mqa_command mqa_topic_commands[] = {
    {"updateTopic", "Update or create topic.", update_topic_opts, update_topic},
    {"deleteTopic", "Delete topic from broker and NameServer.", delete_topic_opts, delete_topic},
    {"topicList", "Fetch all topic list from name server.", topic_list_opts, topic_list},
    {"topicRoute", "Examine topic route info.", topic_route_opts, topic_route},
    {"topicStatus", "Examine topic Status info.", topic_status_opts, topic_status},
    {"timerStatus", "Pending delayed messages per topic (lsmq).", timer_status_opts,
     timer_status},
    {NULL, NULL, NULL, NULL},
};
