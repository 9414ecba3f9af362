/*
 * The admin API's typed requests (lsmq_admin.h): each builds its header as
 * the Java admin tools do (REMOTING.md §3.10, §3.11), sends it through
 * lsmq__admin_rpc (admin.c) and hands the body to a parser in admin_bodies.c.
 * Arguments are checked here so that a NULL or empty name fails with
 * LSMQ_EINVAL before any connection is made.
 */
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"

static int empty(const char *s)
{
    return !s || !*s;
}

/* ------------------------------------------------------------------ */
/* Name server requests                                                */
/* ------------------------------------------------------------------ */

int lsmq_admin_get_cluster_info(lsmq_admin *a, const char *namesrv, int timeout_ms,
                                lsmq_admin_cluster_info **out)
{
    json_t *body = NULL;
    int rc;

    if (!out)
        return lsmq__admin_bad_arg(a, __func__);
    *out = NULL;
    rc = lsmq__admin_rpc(a, namesrv, 1, proto_cmd_request(RC_GET_BROKER_CLUSTER_INFO), timeout_ms,
                    &body);
    if (rc == 0 && lsmq__admin_parse_cluster_info(body, out) != 0)
        rc = lsmq__admin_bad_body(a, namesrv, RC_GET_BROKER_CLUSTER_INFO);
    json_decref(body);
    return rc;
}

int lsmq_admin_get_route(lsmq_admin *a, const char *namesrv, const char *topic, int timeout_ms,
                         lsmq_admin_route **out)
{
    json_t *body = NULL;
    int rc;

    if (!out || empty(topic))
        return lsmq__admin_bad_arg(a, __func__);
    *out = NULL;
    proto_cmd *req = proto_cmd_request(RC_GET_ROUTEINFO_BY_TOPIC);
    proto_cmd_set(req, "topic", topic);
    rc = lsmq__admin_rpc(a, namesrv, 1, req, timeout_ms, &body);
    if (rc == 0 && lsmq__admin_parse_route(body, out) != 0)
        rc = lsmq__admin_bad_body(a, namesrv, RC_GET_ROUTEINFO_BY_TOPIC);
    json_decref(body);
    return rc;
}

int lsmq_admin_get_topic_list(lsmq_admin *a, const char *namesrv, const char *cluster,
                              int timeout_ms, char ***topics, size_t *n)
{
    json_t *body = NULL;
    proto_cmd *req;
    int rc;

    if (!topics || !n)
        return lsmq__admin_bad_arg(a, __func__);
    *topics = NULL;
    *n = 0;
    if (cluster) {
        req = proto_cmd_request(RC_GET_TOPICS_BY_CLUSTER);
        proto_cmd_set(req, "cluster", cluster);
    } else {
        req = proto_cmd_request(RC_GET_ALL_TOPIC_LIST_FROM_NAMESERVER);
    }
    int32_t code = req->code;
    rc = lsmq__admin_rpc(a, namesrv, 1, req, timeout_ms, &body);
    if (rc == 0 && lsmq__admin_parse_strings(body, "topicList", topics, n) != 0)
        rc = lsmq__admin_bad_body(a, namesrv, code);
    json_decref(body);
    return rc;
}

int lsmq_admin_delete_topic_in_namesrv(lsmq_admin *a, const char *namesrv, const char *topic,
                                       const char *cluster, int timeout_ms)
{
    if (empty(namesrv) || empty(topic))
        return lsmq__admin_bad_arg(a, __func__);
    proto_cmd *req = proto_cmd_request(RC_DELETE_TOPIC_IN_NAMESRV);
    proto_cmd_set(req, "topic", topic);
    if (!empty(cluster))
        proto_cmd_set(req, "clusterName", cluster);
    return lsmq__admin_rpc_every_namesrv(a, namesrv, req, timeout_ms);
}

int lsmq_admin_get_kv_config(lsmq_admin *a, const char *namesrv, const char *ns, const char *key,
                             int timeout_ms, char **value)
{
    proto_cmd *resp = NULL;
    int rc;

    if (empty(ns) || empty(key) || !value || timeout_ms <= 0)
        return lsmq__admin_bad_arg(a, __func__);
    *value = NULL;
    proto_cmd *req = proto_cmd_request(RC_GET_KV_CONFIG);
    proto_cmd_set(req, "namespace", ns);
    proto_cmd_set(req, "key", key);
    rc = lsmq_admin_call_namesrv(a, namesrv, req, NULL, 0, timeout_ms, &resp, NULL, NULL);
    if (rc == 0 && resp->code != RS_SUCCESS)
        rc = lsmq__admin_refused(a, resp, namesrv, req);
    if (rc == 0) {
        const char *v = proto_cmd_get(resp, "value");
        *value = proto_xstrdup(v ? v : "");
    }
    proto_cmd_free(resp);
    proto_cmd_free(req);
    return rc;
}

int lsmq_admin_put_kv_config(lsmq_admin *a, const char *namesrv, const char *ns, const char *key,
                             const char *value, int timeout_ms)
{
    if (empty(namesrv) || empty(ns) || empty(key) || !value)
        return lsmq__admin_bad_arg(a, __func__);
    proto_cmd *req = proto_cmd_request(RC_PUT_KV_CONFIG);
    proto_cmd_set(req, "namespace", ns);
    proto_cmd_set(req, "key", key);
    proto_cmd_set(req, "value", value);
    return lsmq__admin_rpc_every_namesrv(a, namesrv, req, timeout_ms);
}

/* ------------------------------------------------------------------ */
/* Broker requests                                                     */
/* ------------------------------------------------------------------ */

int lsmq_admin_create_topic(lsmq_admin *a, const char *broker_addr,
                            const lsmq_admin_topic_config *tc, int timeout_ms)
{
    if (empty(broker_addr) || !tc || empty(tc->topic))
        return lsmq__admin_bad_arg(a, __func__);
    proto_cmd *req = proto_cmd_request(RC_UPDATE_AND_CREATE_TOPIC);
    proto_cmd_set(req, "topic", tc->topic);
    proto_cmd_set(req, "defaultTopic", "TBW102");
    proto_cmd_set_i64(req, "readQueueNums", tc->read_queue_nums);
    proto_cmd_set_i64(req, "writeQueueNums", tc->write_queue_nums);
    proto_cmd_set_i64(req, "perm", tc->perm);
    proto_cmd_set(req, "topicFilterType", "SINGLE_TAG");
    proto_cmd_set_i64(req, "topicSysFlag", tc->topic_sys_flag);
    proto_cmd_set_bool(req, "order", tc->order);
    if (!empty(tc->attributes))
        proto_cmd_set(req, "attributes", tc->attributes);
    return lsmq__admin_rpc(a, broker_addr, 0, req, timeout_ms, NULL);
}

int lsmq_admin_delete_topic_in_broker(lsmq_admin *a, const char *broker_addr, const char *topic,
                                      int timeout_ms)
{
    if (empty(broker_addr) || empty(topic))
        return lsmq__admin_bad_arg(a, __func__);
    proto_cmd *req = proto_cmd_request(RC_DELETE_TOPIC_IN_BROKER);
    proto_cmd_set(req, "topic", topic);
    return lsmq__admin_rpc(a, broker_addr, 0, req, timeout_ms, NULL);
}

int lsmq_admin_update_subscription_group(lsmq_admin *a, const char *broker_addr,
                                         const char *config_json, int timeout_ms)
{
    if (empty(broker_addr) || empty(config_json))
        return lsmq__admin_bad_arg(a, __func__);
    proto_cmd *req = proto_cmd_request(RC_UPDATE_AND_CREATE_SUBSCRIPTIONGROUP);
    proto_cmd *resp = NULL;
    int rc = lsmq_admin_call(a, broker_addr, req, config_json, strlen(config_json), timeout_ms,
                             &resp, NULL, NULL);
    if (rc == 0 && resp->code != RS_SUCCESS)
        rc = lsmq__admin_refused(a, resp, broker_addr, req);
    proto_cmd_free(resp);
    proto_cmd_free(req);
    return rc;
}

int lsmq_admin_get_topic_stats(lsmq_admin *a, const char *broker_addr, const char *topic,
                               int timeout_ms, lsmq_admin_topic_stats **stats)
{
    json_t *body = NULL;
    int rc;

    if (empty(broker_addr) || empty(topic) || !stats)
        return lsmq__admin_bad_arg(a, __func__);
    proto_cmd *req = proto_cmd_request(RC_GET_TOPIC_STATS_INFO);
    proto_cmd_set(req, "topic", topic);
    rc = lsmq__admin_rpc(a, broker_addr, 0, req, timeout_ms, &body);
    if (rc == 0 && lsmq__admin_merge_topic_stats(body, stats) != 0)
        rc = lsmq__admin_bad_body(a, broker_addr, RC_GET_TOPIC_STATS_INFO);
    json_decref(body);
    return rc;
}

int lsmq_admin_get_topic_groups(lsmq_admin *a, const char *broker_addr, const char *topic,
                                int timeout_ms, char ***groups, size_t *n)
{
    json_t *body = NULL;
    int rc;

    if (empty(broker_addr) || empty(topic) || !groups || !n)
        return lsmq__admin_bad_arg(a, __func__);
    *groups = NULL;
    *n = 0;
    proto_cmd *req = proto_cmd_request(RC_QUERY_TOPIC_CONSUME_BY_WHO);
    proto_cmd_set(req, "topic", topic);
    rc = lsmq__admin_rpc(a, broker_addr, 0, req, timeout_ms, &body);
    if (rc == 0 && lsmq__admin_parse_strings(body, "groupList", groups, n) != 0)
        rc = lsmq__admin_bad_body(a, broker_addr, RC_QUERY_TOPIC_CONSUME_BY_WHO);
    json_decref(body);
    return rc;
}

int lsmq_admin_get_broker_runtime(lsmq_admin *a, const char *broker_addr, int timeout_ms,
                                  lsmq_admin_kv_table **out)
{
    json_t *body = NULL;
    int rc;

    if (empty(broker_addr) || !out)
        return lsmq__admin_bad_arg(a, __func__);
    *out = NULL;
    rc = lsmq__admin_rpc(a, broker_addr, 0, proto_cmd_request(RC_GET_BROKER_RUNTIME_INFO),
                         timeout_ms, &body);
    if (rc == 0 && lsmq__admin_parse_kv_table(body, out) != 0)
        rc = lsmq__admin_bad_body(a, broker_addr, RC_GET_BROKER_RUNTIME_INFO);
    json_decref(body);
    return rc;
}

int lsmq_admin_get_consume_stats(lsmq_admin *a, const char *broker_addr, const char *group,
                                 const char *topic, int timeout_ms,
                                 lsmq_admin_consume_stats **stats)
{
    json_t *body = NULL;
    int rc;

    if (empty(broker_addr) || empty(group) || !stats)
        return lsmq__admin_bad_arg(a, __func__);
    proto_cmd *req = proto_cmd_request(RC_GET_CONSUME_STATS);
    proto_cmd_set(req, "consumerGroup", group);
    if (!empty(topic))
        proto_cmd_set(req, "topic", topic);
    rc = lsmq__admin_rpc(a, broker_addr, 0, req, timeout_ms, &body);
    if (rc == 0 && lsmq__admin_merge_consume_stats(body, stats) != 0)
        rc = lsmq__admin_bad_body(a, broker_addr, RC_GET_CONSUME_STATS);
    json_decref(body);
    return rc;
}

int lsmq_admin_get_consumer_connection(lsmq_admin *a, const char *broker_addr, const char *group,
                                       int timeout_ms, lsmq_admin_consumer_connection **cc)
{
    json_t *body = NULL;
    int rc;

    if (empty(broker_addr) || empty(group) || !cc)
        return lsmq__admin_bad_arg(a, __func__);
    proto_cmd *req = proto_cmd_request(RC_GET_CONSUMER_CONNECTION_LIST);
    proto_cmd_set(req, "consumerGroup", group);
    rc = lsmq__admin_rpc(a, broker_addr, 0, req, timeout_ms, &body);
    if (rc == 0 && lsmq__admin_merge_consumer_connection(body, cc) != 0)
        rc = lsmq__admin_bad_body(a, broker_addr, RC_GET_CONSUMER_CONNECTION_LIST);
    json_decref(body);
    return rc;
}

int lsmq_admin_get_consumer_queues(lsmq_admin *a, const char *broker_addr, const char *group,
                                   const char *client_id, int timeout_ms, lsmq_admin_mq **mqs,
                                   size_t *n)
{
    json_t *body = NULL;
    int rc;

    if (empty(broker_addr) || empty(group) || empty(client_id) || !mqs || !n)
        return lsmq__admin_bad_arg(a, __func__);
    *mqs = NULL;
    *n = 0;
    proto_cmd *req = proto_cmd_request(ADMIN_RC_GET_CONSUMER_RUNNING_INFO);
    proto_cmd_set(req, "consumerGroup", group);
    proto_cmd_set(req, "clientId", client_id);
    proto_cmd_set_bool(req, "jstackEnable", 0);
    rc = lsmq__admin_rpc(a, broker_addr, 0, req, timeout_ms, &body);
    if (rc == 0 && lsmq__admin_parse_running_mqs(body, mqs, n) != 0)
        rc = lsmq__admin_bad_body(a, broker_addr, ADMIN_RC_GET_CONSUMER_RUNNING_INFO);
    json_decref(body);
    return rc;
}
