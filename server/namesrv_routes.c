/*
 * The client-facing reads: GET_ROUTEINFO_BY_TOPIC (TopicRouteData),
 * GET_BROKER_CLUSTER_INFO (ClusterInfo), the topic lists, and
 * DELETE_TOPIC_IN_NAMESRV.
 *
 * Route data goes out in one of fastjson's two shapes (REMOTING.md §5.1):
 * "standard" (brokerAddrs keys quoted, non-ASCII escaped) when the request's
 * version is >= V4_9_4 (401) or it says acceptStandardJsonOnly=true, and
 * otherwise the legacy form with bare numeric keys, which is what ali-ons,
 * the Go and C++ clients and Java < 4.9.4 get from a Java name server.
 * Lists are sorted by name so answers are stable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alloc.h"
#include "namesrv_internal.h"

/* Appended to TOPIC_NOT_EXIST, as Java's FAQUrl.suggestTodo does. */
#define NS_FAQ_SUFFIX "\nSee http://rocketmq.apache.org/docs/faq/ for further details."

/* The client understands quoted numeric keys (and wants only standard JSON). */
static bool wants_standard(const proto_cmd *req)
{
    return req->version >= 401 || proto_cmd_get_bool(req, "acceptStandardJsonOnly", 0);
}

static int by_queue_broker(const ns_queue *a, const ns_queue *b)
{
    return strcmp(a->broker_name, b->broker_name);
}

static int by_broker_name(const ns_broker *a, const ns_broker *b)
{
    return strcmp(a->name, b->name);
}

static int by_cluster_name(const ns_cluster *a, const ns_cluster *b)
{
    return strcmp(a->name, b->name);
}

static int by_topic_name(const ns_topic *a, const ns_topic *b)
{
    return strcmp(a->name, b->name);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* TopicRouteData of t, or false when no queue data has a live broker (upstream:
 * TOPIC_NOT_EXIST unless both queue data and broker data are found). */
static bool route_json(namesrv *ns, ns_topic *t, bool standard, proto_buf *b)
{
    HASH_SORT(t->queues, by_queue_broker);
    size_t found = 0;
    proto_buf_puts(b, "{\"brokerDatas\":[");
    for (ns_queue *q = t->queues; q; q = q->hh.next) {
        ns_broker *bd = namesrv__broker_get(ns, q->broker_name, NULL, false);
        if (!bd)
            continue;
        if (found++)
            proto_buf_put(b, ",", 1);
        namesrv__buf_broker_data(b, bd, standard);
    }
    if (!found)
        return false;
    proto_buf_puts(b, "],\"filterServerTable\":{}");
    if (ns->cfg.order_message_enable) {
        const char *conf = namesrv__kv_get(ns, NS_ORDER_TOPIC_CONFIG, t->name);
        if (conf) {
            proto_buf_puts(b, ",\"orderTopicConf\":");
            proto_json_put_string(b, conf, standard);
        }
    }
    proto_buf_puts(b, ",\"queueDatas\":[");
    for (ns_queue *q = t->queues; q; q = q->hh.next) {
        if (q != t->queues)
            proto_buf_put(b, ",", 1);
        proto_buf_puts(b, "{\"brokerName\":");
        proto_json_put_string(b, q->broker_name, standard);
        proto_buf_printf(b, ",\"perm\":%d,\"readQueueNums\":%d,\"topicSysFlag\":%d,"
                          "\"writeQueueNums\":%d}",
                       (int)q->perm, (int)q->read_queue_nums, (int)q->topic_sys_flag,
                       (int)q->write_queue_nums);
    }
    proto_buf_puts(b, "]}");
    return true;
}

static void on_get_routeinfo_by_topic(server *s, conn *c, proto_cmd *req, void *ctx)
{
    namesrv *ns = ctx;
    const char *topic = namesrv__need(c, req, "topic");
    if (!topic)
        return;
    ns_topic *t = namesrv__topic_get(ns, topic, false);
    proto_buf b = {0};
    if (!t || !route_json(ns, t, wants_standard(req), &b)) {
        free(b.p);
        proto_cmd *resp = proto_cmd_response(RS_TOPIC_NOT_EXIST, req->opaque, NULL);
        proto_cmd_set_remarkf(resp, "No topic route info in name server for the topic: %s%s",
                              topic, NS_FAQ_SUFFIX);
        namesrv__reply(c, req, resp, NULL, 0);
        return;
    }
    namesrv__reply(c, req, proto_cmd_response(RS_SUCCESS, req->opaque, NULL), b.p, b.len);
    free(b.p);
}

static void on_get_broker_cluster_info(server *s, conn *c, proto_cmd *req, void *ctx)
{
    namesrv *ns = ctx;
    bool standard = wants_standard(req);
    proto_buf b = {0};
    HASH_SORT(ns->brokers, by_broker_name);
    HASH_SORT(ns->clusters, by_cluster_name);
    proto_buf_puts(&b, "{\"brokerAddrTable\":{");
    for (ns_broker *bd = ns->brokers; bd; bd = bd->hh.next) {
        if (bd != ns->brokers)
            proto_buf_put(&b, ",", 1);
        proto_json_put_string(&b, bd->name, standard);
        proto_buf_put(&b, ":", 1);
        namesrv__buf_broker_data(&b, bd, standard);
    }
    proto_buf_puts(&b, "},\"clusterAddrTable\":{");
    for (ns_cluster *cl = ns->clusters; cl; cl = cl->hh.next) {
        if (cl != ns->clusters)
            proto_buf_put(&b, ",", 1);
        proto_json_put_string(&b, cl->name, standard);
        proto_buf_puts(&b, ":[");
        qsort(cl->brokers, cl->n_brokers, sizeof cl->brokers[0], cmp_str);
        for (size_t i = 0; i < cl->n_brokers; i++) {
            if (i)
                proto_buf_put(&b, ",", 1);
            proto_json_put_string(&b, cl->brokers[i], standard);
        }
        proto_buf_put(&b, "]", 1);
    }
    proto_buf_puts(&b, "}}");
    namesrv__reply(c, req, proto_cmd_response(RS_SUCCESS, req->opaque, NULL), b.p, b.len);
    free(b.p);
}

/* Reply with TopicList {"brokerAddr":..,"topicList":[..]} and release `list`. */
static void reply_topic_list(conn *c, proto_cmd *req, json_t *list, const char *broker_addr)
{
    json_t *root = json_object();
    if (broker_addr)
        json_object_set_new(root, "brokerAddr", json_string(broker_addr));
    json_object_set_new(root, "topicList", list);
    char *text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    if (!text)
        proto_oom(0);
    namesrv__reply(c, req, proto_cmd_response(RS_SUCCESS, req->opaque, NULL), text, strlen(text));
    free(text);
}

static bool topic_on_cluster(namesrv *ns, ns_topic *t, const ns_cluster *cl)
{
    for (size_t i = 0; i < cl->n_brokers; i++) {
        ns_queue *q = NULL;
        HASH_FIND_STR(t->queues, cl->brokers[i], q);
        if (q)
            return true;
    }
    return false;
}

static void on_get_all_topic_list_from_nameserver(server *s, conn *c, proto_cmd *req, void *ctx)
{
    namesrv *ns = ctx;
    json_t *list = json_array();
    HASH_SORT(ns->topics, by_topic_name);
    for (ns_topic *t = ns->topics; t; t = t->hh.next)
        json_array_append_new(list, json_string(t->name));
    reply_topic_list(c, req, list, NULL);
}

static void on_get_topics_by_cluster(server *s, conn *c, proto_cmd *req, void *ctx)
{
    namesrv *ns = ctx;
    const char *cluster = namesrv__need(c, req, "cluster");
    if (!cluster)
        return;
    json_t *list = json_array();
    ns_cluster *cl = namesrv__cluster_get(ns, cluster, false);
    HASH_SORT(ns->topics, by_topic_name);
    for (ns_topic *t = ns->topics; cl && t; t = t->hh.next)
        if (topic_on_cluster(ns, t, cl))
            json_array_append_new(list, json_string(t->name));
    reply_topic_list(c, req, list, NULL);
}

/* Upstream's "system topics": every cluster name and broker name (each is a
 * topic on its brokers), with the address of one broker to ask about them. */
static void on_get_system_topic_list_from_ns(server *s, conn *c, proto_cmd *req, void *ctx)
{
    namesrv *ns = ctx;
    json_t *list = json_array();
    HASH_SORT(ns->clusters, by_cluster_name);
    for (ns_cluster *cl = ns->clusters; cl; cl = cl->hh.next) {
        json_array_append_new(list, json_string(cl->name));
        qsort(cl->brokers, cl->n_brokers, sizeof cl->brokers[0], cmp_str);
        for (size_t i = 0; i < cl->n_brokers; i++)
            json_array_append_new(list, json_string(cl->brokers[i]));
    }
    HASH_SORT(ns->brokers, by_broker_name);
    const char *addr = NULL;
    for (ns_broker *bd = ns->brokers; bd && !addr; bd = bd->hh.next)
        if (bd->n_addrs)
            addr = bd->addrs[0].addr;
    reply_topic_list(c, req, list, addr);
}

static void on_delete_topic_in_namesrv(server *s, conn *c, proto_cmd *req, void *ctx)
{
    namesrv *ns = ctx;
    const char *topic = namesrv__need(c, req, "topic");
    if (!topic)
        return;
    const char *cluster = proto_cmd_get(req, "clusterName");
    ns_topic *t = namesrv__topic_get(ns, topic, false);
    if (t && cluster && *cluster) {
        /* 5.x: only the queues on that cluster's brokers go. */
        ns_cluster *cl = namesrv__cluster_get(ns, cluster, false);
        for (size_t i = 0; cl && i < cl->n_brokers; i++) {
            ns_queue *q = NULL;
            HASH_FIND_STR(t->queues, cl->brokers[i], q);
            if (q)
                namesrv__queue_drop(t, q);
        }
        if (!t->queues)
            namesrv__topic_drop(ns, t);
    } else if (t) {
        namesrv__topic_drop(ns, t);
    }
    namesrv__reply_code(c, req, RS_SUCCESS, NULL);
}

void namesrv__routes_handlers(namesrv *ns)
{
    server_register(ns->srv, RC_GET_ROUTEINFO_BY_TOPIC, on_get_routeinfo_by_topic, ns);
    server_register(ns->srv, RC_GET_BROKER_CLUSTER_INFO, on_get_broker_cluster_info, ns);
    server_register(ns->srv, RC_GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
                    on_get_all_topic_list_from_nameserver, ns);
    server_register(ns->srv, RC_GET_TOPICS_BY_CLUSTER, on_get_topics_by_cluster, ns);
    server_register(ns->srv, RC_GET_SYSTEM_TOPIC_LIST_FROM_NS, on_get_system_topic_list_from_ns,
                    ns);
    server_register(ns->srv, RC_DELETE_TOPIC_IN_NAMESRV, on_delete_topic_in_namesrv, ns);
}
