/*
 * End-to-end tests of the name server: start the real mqnamesrv, register
 * fake brokers over raw remoting frames, and check routes (both JSON
 * forms, byte for byte), cluster info, topic lists, KV config, write-perm
 * switches, and the three ways a broker goes away (UNREGISTER_BROKER,
 * silence past brokerChannelExpiredTime, its connection closing). Then a
 * real mqbroker: its topics become routable through its embedded name
 * server, and through a standalone one until it stops. Every program must
 * exit 0 on SIGTERM (ASan's leak check runs at their exit).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <zlib.h>

#include "e2e_msg.h"
#include "record.h"
#include "e2e_procs.h"
#include "testsupport.h"
#include "wire.h"
#include "clock.h"

#define V_GO 317     /* Go client: legacy route JSON */
#define V_4_9_8 409  /* standard JSON */
#define RC_ADD_WRITE_PERM 327

static wire_proc namesrv;
static int ns_port;
static int fd_main; /* a long-lived client connection */

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

/* A request with the given version; ext pairs key, value, ..., NULL. */
static proto_cmd *req_new(int code, int version, ...)
{
    proto_cmd *c = proto_cmd_request(code);
    c->version = version;
    va_list ap;
    va_start(ap, version);
    for (const char *k = va_arg(ap, const char *); k; k = va_arg(ap, const char *))
        proto_cmd_set(c, k, va_arg(ap, const char *));
    va_end(ap);
    return c;
}

typedef struct reply {
    proto_cmd *cmd;
    uint8_t *frame;
    char *body; /* NUL-terminated copy, "" when empty */
} reply;

static void reply_free(reply *r)
{
    proto_cmd_free(r->cmd);
    free(r->frame);
    free(r->body);
    memset(r, 0, sizeof *r);
}

static reply call_on(int fd, proto_cmd *req, const void *body, size_t len)
{
    reply r = {0};
    assert_int_equal(wire_call(fd, req, body, len, &r.cmd, &r.frame), 0);
    r.body = calloc(1, r.cmd->body_len + 1);
    if (r.cmd->body_len)
        memcpy(r.body, r.cmd->body, r.cmd->body_len);
    return r;
}

static int connect_ns(int port)
{
    int fd = wire_connect(port, 5000);
    assert_true(fd >= 0);
    return fd;
}

/* topics: "name:read:write:perm,..."; the RegisterBrokerBody JSON (malloc'ed). */
static char *reg_body(const char *topics, int64_t counter)
{
    json_t *table = json_object();
    char *copy = strdup(topics), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char name[128];
        int r, w, p;
        assert_int_equal(sscanf(t, "%127[^:]:%d:%d:%d", name, &r, &w, &p), 4);
        json_object_set_new(table, name,
                            json_pack("{s:{},s:b,s:i,s:i,s:s,s:s,s:i,s:i}", "attributes",
                                      "order", 0, "perm", p, "readQueueNums", r,
                                      "topicFilterType", "SINGLE_TAG", "topicName", name,
                                      "topicSysFlag", 0, "writeQueueNums", w));
    }
    free(copy);
    json_t *root = json_pack("{s:[],s:{s:{s:I,s:I},s:o}}", "filterServerList",
                             "topicConfigSerializeWrapper", "dataVersion", "counter",
                             (json_int_t)counter, "timestamp", (json_int_t)1700000000000,
                             "topicConfigTable", table);
    char *text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    return text;
}

static proto_cmd *reg_req(const char *cluster, const char *name, const char *addr, int64_t id)
{
    char ids[32], ha[96];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    snprintf(ha, sizeof ha, "%s-ha", addr);
    return req_new(RC_REGISTER_BROKER, V_4_9_8, "brokerName", name, "brokerAddr", addr,
                   "clusterName", cluster, "haServerAddr", ha, "brokerId", ids, NULL);
}

/* Register and expect SUCCESS; returns the reply for header checks. */
static reply reg(int fd, const char *cluster, const char *name, const char *addr, int64_t id,
                 const char *topics, int64_t counter)
{
    char *body = reg_body(topics, counter);
    reply r = call_on(fd, reg_req(cluster, name, addr, id), body, strlen(body));
    free(body);
    assert_int_equal(r.cmd->code, RS_SUCCESS);
    return r;
}

static void reg_ok(int fd, const char *cluster, const char *name, const char *addr, int64_t id,
                   const char *topics, int64_t counter)
{
    reply r = reg(fd, cluster, name, addr, id, topics, counter);
    reply_free(&r);
}

static void unreg(int fd, const char *cluster, const char *name, const char *addr, int64_t id)
{
    char ids[32];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    reply r = call_on(fd,
                      req_new(RC_UNREGISTER_BROKER, V_4_9_8, "brokerName", name, "brokerAddr",
                              addr, "clusterName", cluster, "brokerId", ids, NULL),
                      NULL, 0);
    assert_int_equal(r.cmd->code, RS_SUCCESS);
    reply_free(&r);
}

static reply route_v(int fd, const char *topic, int version, const char *std_only)
{
    proto_cmd *req = std_only ? req_new(RC_GET_ROUTEINFO_BY_TOPIC, version, "topic", topic,
                                        "acceptStandardJsonOnly", std_only, NULL)
                              : req_new(RC_GET_ROUTEINFO_BY_TOPIC, version, "topic", topic, NULL);
    return call_on(fd, req, NULL, 0);
}

static int route_code(int port, const char *topic)
{
    int fd = connect_ns(port);
    reply r = route_v(fd, topic, V_4_9_8, NULL);
    int code = r.cmd->code;
    reply_free(&r);
    close(fd);
    return code;
}

/* Poll (bounded) until the route code of topic is `code`; ms taken or -1. */
static long wait_route_code(int port, const char *topic, int code, int timeout_ms)
{
    uint64_t start = (uint64_t)proto_mono_ms();
    while ((uint64_t)proto_mono_ms() - start < (uint64_t)timeout_ms) {
        if (route_code(port, topic) == code)
            return (long)((uint64_t)proto_mono_ms() - start);
        usleep(20000);
    }
    return -1;
}

static json_t *parse_body(const reply *r)
{
    json_error_t err;
    json_t *j = json_loads(r->body, 0, &err);
    if (!j)
        fail_msg("body is not standard JSON (%s): %s", err.text, r->body);
    return j;
}

static bool list_has(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    return false;
}

/* The topicList of a TopicList reply; its brokerAddr (or "") into addr. */
static json_t *topic_list(int fd, proto_cmd *req, char *addr, size_t addr_len)
{
    reply r = call_on(fd, req, NULL, 0);
    assert_int_equal(r.cmd->code, RS_SUCCESS);
    json_t *j = parse_body(&r);
    reply_free(&r);
    json_t *list = json_incref(json_object_get(j, "topicList"));
    if (addr) {
        json_t *a = json_object_get(j, "brokerAddr");
        snprintf(addr, addr_len, "%s", json_is_string(a) ? json_string_value(a) : "");
    }
    json_decref(j);
    assert_true(json_is_array(list));
    return list;
}

/* ------------------------------------------------------------------ */
/* Group setup: one name server for most tests                          */

static int group_setup(void **state)
{
    if (e2e_namesrv_start(&namesrv, 0, NULL) != 0)
        return -1;
    ns_port = namesrv.port;
    fd_main = wire_connect(ns_port, 5000);
    return fd_main >= 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    close(fd_main);
    int status = wire_stop(&namesrv, 10000);
    if (status != 0) {
        fprintf(stderr, "mqnamesrv exited with status %d\n", status);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Routes                                                               */

static void test_route_forms(void **state)
{
    int fd = connect_ns(ns_port); /* the broker's own connection */
    reg_ok(fd, "C1", "broker-x", "10.0.0.5:10911", 0, "RouteT:4:4:6,TBW102:8:8:7", 1);

    /* Legacy form for old clients: bare numeric keys, exact bytes. */
    reply r = route_v(fd_main, "RouteT", V_GO, NULL);
    assert_int_equal(r.cmd->code, RS_SUCCESS);
    assert_string_equal(r.body,
                        "{\"brokerDatas\":[{\"brokerAddrs\":{0:\"10.0.0.5:10911\"},"
                        "\"brokerName\":\"broker-x\",\"cluster\":\"C1\","
                        "\"enableActingMaster\":false}],\"filterServerTable\":{},"
                        "\"queueDatas\":[{\"brokerName\":\"broker-x\",\"perm\":6,"
                        "\"readQueueNums\":4,\"topicSysFlag\":0,\"writeQueueNums\":4}]}");
    reply_free(&r);

    /* Standard form: by version, or asked for explicitly. */
    const char *std =
        "{\"brokerDatas\":[{\"brokerAddrs\":{\"0\":\"10.0.0.5:10911\"},"
        "\"brokerName\":\"broker-x\",\"cluster\":\"C1\",\"enableActingMaster\":false}],"
        "\"filterServerTable\":{},\"queueDatas\":[{\"brokerName\":\"broker-x\",\"perm\":6,"
        "\"readQueueNums\":4,\"topicSysFlag\":0,\"writeQueueNums\":4}]}";
    r = route_v(fd_main, "RouteT", V_4_9_8, NULL);
    assert_int_equal(r.cmd->code, RS_SUCCESS);
    assert_string_equal(r.body, std);
    reply_free(&r);
    r = route_v(fd_main, "RouteT", V_GO, "true");
    assert_string_equal(r.body, std);
    reply_free(&r);

    /* TBW102 is an ordinary registered topic. */
    r = route_v(fd_main, "TBW102", V_4_9_8, NULL);
    assert_int_equal(r.cmd->code, RS_SUCCESS);
    assert_non_null(strstr(r.body, "\"perm\":7,\"readQueueNums\":8"));
    reply_free(&r);

    /* Unknown topic. */
    r = route_v(fd_main, "NoSuchTopic", V_4_9_8, NULL);
    assert_int_equal(r.cmd->code, RS_TOPIC_NOT_EXIST);
    assert_non_null(r.cmd->remark);
    const char *want = "No topic route info in name server for the topic: NoSuchTopic";
    assert_memory_equal(r.cmd->remark, want, strlen(want));
    assert_int_equal(r.cmd->body_len, 0);
    reply_free(&r);

    /* A slave joins: both addresses, sorted; it learns its master. */
    reply s = reg(fd, "C1", "broker-x", "10.0.0.6:10911", 1, "RouteT:4:4:6", 1);
    assert_string_equal(proto_cmd_get(s.cmd, "masterAddr"), "10.0.0.5:10911");
    assert_string_equal(proto_cmd_get(s.cmd, "haServerAddr"), "10.0.0.5:10911-ha");
    reply_free(&s);
    r = route_v(fd_main, "RouteT", V_GO, NULL);
    assert_non_null(strstr(r.body, "{0:\"10.0.0.5:10911\",1:\"10.0.0.6:10911\"}"));
    reply_free(&r);
    r = route_v(fd_main, "RouteT", V_4_9_8, NULL);
    assert_non_null(strstr(r.body, "{\"0\":\"10.0.0.5:10911\",\"1\":\"10.0.0.6:10911\"}"));
    reply_free(&r);

    /* Unregistering the slave keeps the route; the master takes it away. */
    unreg(fd, "C1", "broker-x", "10.0.0.6:10911", 1);
    r = route_v(fd_main, "RouteT", V_GO, NULL);
    assert_non_null(strstr(r.body, "{0:\"10.0.0.5:10911\"}"));
    reply_free(&r);
    unreg(fd, "C1", "broker-x", "10.0.0.5:10911", 0);
    assert_int_equal(route_code(ns_port, "RouteT"), RS_TOPIC_NOT_EXIST);
    assert_int_equal(route_code(ns_port, "TBW102"), RS_TOPIC_NOT_EXIST);
    close(fd);
}

static void test_route_non_ascii(void **state)
{
    int fd = connect_ns(ns_port);
    reg_ok(fd, "C9", "br\xc3\xb8ker", "10.0.9.1:10911", 0, "UniT:1:1:6", 1);
    reply r = route_v(fd_main, "UniT", V_4_9_8, NULL);
    assert_non_null(strstr(r.body, "\"brokerName\":\"br\\u00f8ker\""));
    reply_free(&r);
    r = route_v(fd_main, "UniT", V_GO, NULL);
    assert_non_null(strstr(r.body, "\"brokerName\":\"br\xc3\xb8ker\""));
    reply_free(&r);
    /* The same address comes back under another name: the old name stops routing. */
    reg_ok(fd, "C9", "renamed", "10.0.9.1:10911", 0, "UniT:1:1:6", 1);
    r = route_v(fd_main, "UniT", V_4_9_8, NULL);
    assert_null(strstr(r.body, "br\\u00f8ker"));
    assert_non_null(strstr(r.body, "\"brokerName\":\"renamed\""));
    reply_free(&r);
    unreg(fd, "C9", "renamed", "10.0.9.1:10911", 0);
    assert_int_equal(route_code(ns_port, "UniT"), RS_TOPIC_NOT_EXIST);
    close(fd);
}

static void test_two_brokers_cluster_info_and_lists(void **state)
{
    int fd = connect_ns(ns_port);
    reg_ok(fd, "C2", "broker-b", "10.0.1.2:10911", 0, "Shared:2:2:6,OnlyB:1:1:6", 1);
    reg_ok(fd, "C2", "broker-a", "10.0.1.1:10911", 0, "Shared:4:4:6", 1);
    reg_ok(fd, "C3", "broker-c", "10.0.1.3:10911", 0, "OnlyC:1:1:6", 1);

    /* Route of a topic on two brokers: both, sorted by broker name. */
    reply r = route_v(fd_main, "Shared", V_4_9_8, NULL);
    json_t *j = parse_body(&r);
    json_t *qd = json_object_get(j, "queueDatas"), *bd = json_object_get(j, "brokerDatas");
    assert_int_equal(json_array_size(qd), 2);
    assert_int_equal(json_array_size(bd), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(qd, 0), "brokerName")),
                        "broker-a");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(qd, 1), "readQueueNums")),
                     2);
    json_decref(j);
    reply_free(&r);

    /* ClusterInfo. */
    r = call_on(fd_main, req_new(RC_GET_BROKER_CLUSTER_INFO, V_4_9_8, NULL), NULL, 0);
    assert_int_equal(r.cmd->code, RS_SUCCESS);
    j = parse_body(&r);
    json_t *c2 = json_object_get(json_object_get(j, "clusterAddrTable"), "C2");
    assert_int_equal(json_array_size(c2), 2);
    assert_true(list_has(c2, "broker-a") && list_has(c2, "broker-b"));
    json_t *ba = json_object_get(json_object_get(j, "brokerAddrTable"), "broker-a");
    assert_string_equal(json_string_value(json_object_get(ba, "cluster")), "C2");
    assert_string_equal(json_string_value(json_object_get(json_object_get(ba, "brokerAddrs"), "0")),
                        "10.0.1.1:10911");
    json_decref(j);
    reply_free(&r);
    /* Older clients get the legacy keys there too. */
    r = call_on(fd_main, req_new(RC_GET_BROKER_CLUSTER_INFO, V_GO, NULL), NULL, 0);
    assert_non_null(strstr(r.body, "\"broker-a\":{\"brokerAddrs\":{0:\"10.0.1.1:10911\"}"));
    reply_free(&r);

    /* Topic lists. */
    char addr[64];
    json_t *all = topic_list(fd_main, req_new(RC_GET_ALL_TOPIC_LIST_FROM_NAMESERVER, V_4_9_8,
                                              NULL), addr, sizeof addr);
    assert_string_equal(addr, ""); /* only the system list names a broker */
    assert_true(list_has(all, "Shared") && list_has(all, "OnlyB") && list_has(all, "OnlyC"));
    json_decref(all);
    json_t *c2t = topic_list(fd_main, req_new(RC_GET_TOPICS_BY_CLUSTER, V_4_9_8, "cluster", "C2",
                                              NULL), NULL, 0);
    assert_true(list_has(c2t, "Shared") && list_has(c2t, "OnlyB"));
    assert_false(list_has(c2t, "OnlyC"));
    json_decref(c2t);
    json_t *none = topic_list(fd_main, req_new(RC_GET_TOPICS_BY_CLUSTER, V_4_9_8, "cluster",
                                               "NoCluster", NULL), NULL, 0);
    assert_int_equal(json_array_size(none), 0);
    json_decref(none);
    json_t *sys = topic_list(fd_main, req_new(RC_GET_SYSTEM_TOPIC_LIST_FROM_NS, V_4_9_8, NULL),
                             addr, sizeof addr);
    assert_true(list_has(sys, "C2") && list_has(sys, "broker-a") && list_has(sys, "C3"));
    assert_string_equal(addr, "10.0.1.1:10911"); /* broker-a sorts first */
    json_decref(sys);

    /* A mandatory header missing. */
    r = call_on(fd_main, req_new(RC_GET_TOPICS_BY_CLUSTER, V_4_9_8, NULL), NULL, 0);
    assert_int_equal(r.cmd->code, RS_SYSTEM_ERROR);
    reply_free(&r);

    /* DELETE_TOPIC_IN_NAMESRV, whole and per cluster. */
    r = call_on(fd_main, req_new(RC_DELETE_TOPIC_IN_NAMESRV, V_4_9_8, "topic", "OnlyC", NULL),
                NULL, 0);
    assert_int_equal(r.cmd->code, RS_SUCCESS);
    reply_free(&r);
    assert_int_equal(route_code(ns_port, "OnlyC"), RS_TOPIC_NOT_EXIST);
    reg_ok(fd, "C3", "broker-c", "10.0.1.3:10911", 0, "OnlyC:1:1:6", 2); /* new version: back */
    assert_int_equal(route_code(ns_port, "OnlyC"), RS_SUCCESS);
    r = call_on(fd_main, req_new(RC_DELETE_TOPIC_IN_NAMESRV, V_4_9_8, "topic", "Shared",
                                 "clusterName", "C3", NULL), NULL, 0);
    reply_free(&r);
    assert_int_equal(route_code(ns_port, "Shared"), RS_SUCCESS); /* not on C3 */

    /* Closing the brokers' connection removes all three. */
    close(fd);
    assert_true(wait_route_code(ns_port, "Shared", RS_TOPIC_NOT_EXIST, 3000) >= 0);
    assert_int_equal(route_code(ns_port, "OnlyC"), RS_TOPIC_NOT_EXIST);
    r = call_on(fd_main, req_new(RC_GET_BROKER_CLUSTER_INFO, V_4_9_8, NULL), NULL, 0);
    assert_string_equal(r.body, "{\"brokerAddrTable\":{},\"clusterAddrTable\":{}}");
    reply_free(&r);
}

static void test_write_perm(void **state)
{
    int fd = connect_ns(ns_port);
    reg_ok(fd, "C4", "broker-p", "10.0.2.1:10911", 0, "PermA:2:2:6,PermB:2:2:6", 1);
    reply r = call_on(fd_main, req_new(RC_WIPE_WRITE_PERM_OF_BROKER, V_4_9_8, "brokerName",
                                       "broker-p", NULL), NULL, 0);
    assert_int_equal(r.cmd->code, RS_SUCCESS);
    assert_string_equal(proto_cmd_get(r.cmd, "wipeTopicCount"), "2");
    reply_free(&r);
    r = route_v(fd_main, "PermA", V_4_9_8, NULL);
    assert_non_null(strstr(r.body, "\"perm\":4,"));
    reply_free(&r);
    /* The same DataVersion again does not undo the wipe (as upstream). */
    reg_ok(fd, "C4", "broker-p", "10.0.2.1:10911", 0, "PermA:2:2:6,PermB:2:2:6", 1);
    r = route_v(fd_main, "PermA", V_4_9_8, NULL);
    assert_non_null(strstr(r.body, "\"perm\":4,"));
    reply_free(&r);
    r = call_on(fd_main, req_new(RC_ADD_WRITE_PERM, V_4_9_8, "brokerName", "broker-p", NULL),
                NULL, 0);
    assert_int_equal(r.cmd->code, RS_SUCCESS);
    assert_string_equal(proto_cmd_get(r.cmd, "addTopicCount"), "2");
    reply_free(&r);
    r = route_v(fd_main, "PermB", V_4_9_8, NULL);
    assert_non_null(strstr(r.body, "\"perm\":6,"));
    reply_free(&r);

    /* QUERY_DATA_VERSION: unchanged for the registered version, changed otherwise. */
    const char *dv1 = "{\"counter\":1,\"timestamp\":1700000000000}";
    const char *dv2 = "{\"counter\":2,\"timestamp\":1700000000000}";
    const char *dvs[] = {dv1, dv2};
    const char *want[] = {"false", "true"};
    for (int i = 0; i < 2; i++) {
        r = call_on(fd, req_new(RC_QUERY_DATA_VERSION, V_4_9_8, "brokerName", "broker-p",
                                "brokerAddr", "10.0.2.1:10911", "clusterName", "C4", "brokerId",
                                "0", NULL),
                    dvs[i], strlen(dvs[i]));
        assert_int_equal(r.cmd->code, RS_SUCCESS);
        assert_string_equal(proto_cmd_get(r.cmd, "changed"), want[i]);
        assert_string_equal(r.body, dv1);
        reply_free(&r);
    }
    unreg(fd, "C4", "broker-p", "10.0.2.1:10911", 0);
    close(fd);
}

static void test_kv(void **state)
{
    reply r = call_on(fd_main, req_new(RC_PUT_KV_CONFIG, V_4_9_8, "namespace", "NS1", "key", "k1",
                                       "value", "v1", NULL), NULL, 0);
    assert_int_equal(r.cmd->code, RS_SUCCESS);
    reply_free(&r);
    r = call_on(fd_main, req_new(RC_PUT_KV_CONFIG, V_4_9_8, "namespace", "NS1", "key", "k2",
                                 "value", "v2", NULL), NULL, 0);
    reply_free(&r);
    r = call_on(fd_main, req_new(RC_GET_KV_CONFIG, V_4_9_8, "namespace", "NS1", "key", "k1",
                                 NULL), NULL, 0);
    assert_int_equal(r.cmd->code, RS_SUCCESS);
    assert_string_equal(proto_cmd_get(r.cmd, "value"), "v1");
    reply_free(&r);
    r = call_on(fd_main, req_new(RC_GET_KVLIST_BY_NAMESPACE, V_4_9_8, "namespace", "NS1", NULL),
                NULL, 0);
    assert_int_equal(r.cmd->code, RS_SUCCESS);
    assert_string_equal(r.body, "{\"table\":{\"k1\":\"v1\",\"k2\":\"v2\"}}");
    reply_free(&r);
    for (int i = 1; i <= 2; i++) {
        char key[8];
        snprintf(key, sizeof key, "k%d", i);
        r = call_on(fd_main, req_new(RC_DELETE_KV_CONFIG, V_4_9_8, "namespace", "NS1", "key", key,
                                     NULL), NULL, 0);
        assert_int_equal(r.cmd->code, RS_SUCCESS);
        reply_free(&r);
    }
    r = call_on(fd_main, req_new(RC_GET_KV_CONFIG, V_4_9_8, "namespace", "NS1", "key", "k1",
                                 NULL), NULL, 0);
    assert_int_equal(r.cmd->code, RS_QUERY_NOT_FOUND);
    assert_string_equal(r.cmd->remark, "No config item, Namespace: NS1 Key: k1");
    reply_free(&r);
    r = call_on(fd_main, req_new(RC_GET_KVLIST_BY_NAMESPACE, V_4_9_8, "namespace", "NS1", NULL),
                NULL, 0);
    assert_int_equal(r.cmd->code, RS_QUERY_NOT_FOUND);
    reply_free(&r);
}

/* ------------------------------------------------------------------ */
/* Register body variants                                               */

static void put_i32(uint8_t *p, size_t *pos, int32_t v)
{
    p[(*pos)++] = (uint8_t)((uint32_t)v >> 24);
    p[(*pos)++] = (uint8_t)((uint32_t)v >> 16);
    p[(*pos)++] = (uint8_t)((uint32_t)v >> 8);
    p[(*pos)++] = (uint8_t)v;
}

static void put_part(uint8_t *p, size_t *pos, const char *s)
{
    put_i32(p, pos, (int32_t)strlen(s));
    memcpy(p + *pos, s, strlen(s));
    *pos += strlen(s);
}

static void test_register_crc_and_compressed(void **state)
{
    int fd = connect_ns(ns_port);
    char *body = reg_body("CrcT:3:3:6", 1);
    size_t len = strlen(body);
    char crc[16];

    /* Wrong CRC: refused. */
    snprintf(crc, sizeof crc, "%u", (unsigned)(proto_body_crc(body, len) ^ 1u));
    proto_cmd *req = reg_req("C5", "broker-z", "10.0.3.1:10911", 0);
    proto_cmd_set(req, "bodyCrc32", crc);
    reply r = call_on(fd, req, body, len);
    assert_int_equal(r.cmd->code, RS_SYSTEM_ERROR);
    assert_string_equal(r.cmd->remark, "crc32 not match");
    reply_free(&r);
    assert_int_equal(route_code(ns_port, "CrcT"), RS_TOPIC_NOT_EXIST);

    /* Right CRC: registered. */
    snprintf(crc, sizeof crc, "%u", (unsigned)proto_body_crc(body, len));
    req = reg_req("C5", "broker-z", "10.0.3.1:10911", 0);
    proto_cmd_set(req, "bodyCrc32", crc);
    r = call_on(fd, req, body, len);
    assert_int_equal(r.cmd->code, RS_SUCCESS);
    reply_free(&r);
    free(body);
    assert_int_equal(route_code(ns_port, "CrcT"), RS_SUCCESS);

    /* Garbage JSON: refused with a reason. */
    r = call_on(fd, reg_req("C5", "broker-z", "10.0.3.1:10911", 0), "{nope", 5);
    assert_int_equal(r.cmd->code, RS_SYSTEM_ERROR);
    assert_non_null(r.cmd->remark);
    reply_free(&r);

    /* The compressed form: zlib of length-prefixed parts. */
    uint8_t raw[1024];
    size_t pos = 0;
    put_part(raw, &pos, "{\"counter\":7,\"timestamp\":1700000000001}");
    put_i32(raw, &pos, 2);
    put_part(raw, &pos, "ZipA 5 6 6 SINGLE_TAG {}");
    put_part(raw, &pos, "ZipB 1 1 4 SINGLE_TAG");
    put_part(raw, &pos, "[]");
    uLongf zlen = compressBound(pos);
    uint8_t *z = malloc(zlen);
    assert_int_equal(compress2(z, &zlen, raw, pos, 9), Z_OK);
    req = reg_req("C5", "broker-z", "10.0.3.1:10911", 0);
    proto_cmd_set(req, "compressed", "true");
    r = call_on(fd, req, z, zlen);
    assert_int_equal(r.cmd->code, RS_SUCCESS);
    reply_free(&r);
    r = route_v(fd_main, "ZipA", V_4_9_8, NULL);
    assert_int_equal(r.cmd->code, RS_SUCCESS);
    assert_non_null(strstr(r.body, "\"perm\":6,\"readQueueNums\":5,\"topicSysFlag\":0,"
                                   "\"writeQueueNums\":6"));
    reply_free(&r);
    assert_int_equal(route_code(ns_port, "ZipB"), RS_SUCCESS);

    /* A truncated compressed body is refused, the connection stays usable. */
    req = reg_req("C5", "broker-z", "10.0.3.1:10911", 0);
    proto_cmd_set(req, "compressed", "true");
    r = call_on(fd, req, z, zlen / 2);
    assert_int_equal(r.cmd->code, RS_SYSTEM_ERROR);
    reply_free(&r);
    free(z);

    unreg(fd, "C5", "broker-z", "10.0.3.1:10911", 0);
    assert_int_equal(route_code(ns_port, "ZipA"), RS_TOPIC_NOT_EXIST);
    close(fd);
}

static void test_oneway_gets_no_reply(void **state)
{
    int fd = connect_ns(ns_port);
    reg_ok(fd, "C6", "broker-o", "10.0.4.1:10911", 0, "OneT:1:1:6", 1);
    proto_cmd *req = req_new(RC_UNREGISTER_BROKER, V_4_9_8, "brokerName", "broker-o",
                             "brokerAddr", "10.0.4.1:10911", "clusterName", "C6", "brokerId",
                             "0", NULL);
    req->flag = PROTO_FLAG_ONEWAY;
    assert_true(wire_send(fd, req, NULL, 0) != -1);
    proto_cmd_free(req);
    /* The next frame on this connection is the answer to the next request. */
    reply r = call_on(fd, req_new(RC_GET_ROUTEINFO_BY_TOPIC, V_4_9_8, "topic", "OneT", NULL),
                      NULL, 0);
    assert_int_equal(r.cmd->code, RS_TOPIC_NOT_EXIST);
    reply_free(&r);
    close(fd);
}

/* ------------------------------------------------------------------ */
/* Brokers that go away without saying so                               */

static void test_close_of_registering_connection(void **state)
{
    /* A short-lived registration connection: the broker goes with it. */
    int fd1 = connect_ns(ns_port);
    reg_ok(fd1, "C7", "broker-s", "10.0.5.1:10911", 0, "CloseT:1:1:6", 1);
    assert_int_equal(route_code(ns_port, "CloseT"), RS_SUCCESS);
    close(fd1);
    assert_true(wait_route_code(ns_port, "CloseT", RS_TOPIC_NOT_EXIST, 3000) >= 0);

    /* Re-registered over a newer connection: closing the older one changes nothing. */
    fd1 = connect_ns(ns_port);
    int fd2 = connect_ns(ns_port);
    reg_ok(fd1, "C7", "broker-s", "10.0.5.1:10911", 0, "CloseT:1:1:6", 1);
    reg_ok(fd2, "C7", "broker-s", "10.0.5.1:10911", 0, "CloseT:1:1:6", 1);
    close(fd1);
    usleep(200000);
    assert_int_equal(route_code(ns_port, "CloseT"), RS_SUCCESS);
    /* A client connection that never registered closing changes nothing either. */
    int fd3 = connect_ns(ns_port);
    reply r = route_v(fd3, "CloseT", V_4_9_8, NULL);
    reply_free(&r);
    close(fd3);
    usleep(100000);
    assert_int_equal(route_code(ns_port, "CloseT"), RS_SUCCESS);
    close(fd2);
    assert_true(wait_route_code(ns_port, "CloseT", RS_TOPIC_NOT_EXIST, 3000) >= 0);
}

static void test_expiry(void **state)
{
    wire_proc p = {0};
    const char *extra[] = {"--brokerChannelExpiredTime=1000", "--scanNotActiveBrokerInterval=100",
                           NULL};
    assert_int_equal(e2e_namesrv_start(&p, 0, extra), 0);
    int port = p.port;
    int fd = connect_ns(port); /* stays open: only silence can remove the broker */
    uint64_t t0 = (uint64_t)proto_mono_ms();
    reg_ok(fd, "C8", "broker-e", "10.0.6.1:10911", 0, "ExpT:1:1:6", 1);
    assert_int_equal(route_code(port, "ExpT"), RS_SUCCESS);
    /* Registering again keeps it alive past the first deadline. */
    usleep(700000);
    reg_ok(fd, "C8", "broker-e", "10.0.6.1:10911", 0, "ExpT:1:1:6", 1);
    t0 = (uint64_t)proto_mono_ms();
    usleep(500000);
    assert_true((uint64_t)proto_mono_ms() - t0 < 900); /* else the machine is too slow to tell */
    assert_int_equal(route_code(port, "ExpT"), RS_SUCCESS);
    long waited = wait_route_code(port, "ExpT", RS_TOPIC_NOT_EXIST, 5000);
    assert_true(waited >= 0);
    uint64_t gone_after = (uint64_t)proto_mono_ms() - t0;
    assert_true(gone_after >= 950 && gone_after < 5000);
    close(fd);
    assert_int_equal(wire_stop(&p, 10000), 0);
}

static void test_bad_arguments(void **state)
{
    wire_proc p = {0};
    int port = wire_free_port();
    const char *args[] = {"--noSuchKey=1", NULL};
    /* It exits with status 2 at once, so it never listens. */
    assert_int_not_equal(wire_start(&p, "mqnamesrv", port, args), 0);
}

/* ------------------------------------------------------------------ */
/* A real broker                                                        */

static long wait_route_body(int port, const char *topic, const char *needle, int timeout_ms)
{
    uint64_t start = (uint64_t)proto_mono_ms();
    while ((uint64_t)proto_mono_ms() - start < (uint64_t)timeout_ms) {
        int fd = wire_connect(port, 2000);
        if (fd >= 0) {
            reply r = route_v(fd, topic, V_4_9_8, NULL);
            bool ok = r.cmd->code == RS_SUCCESS && strstr(r.body, needle);
            reply_free(&r);
            close(fd);
            if (ok)
                return (long)((uint64_t)proto_mono_ms() - start);
        }
        usleep(10000);
    }
    return -1;
}

/*
 * wire_start returns once the port accepts, which the kernel does from
 * listen() on, before the broker has opened its store. A broker answers
 * requests (even with REQUEST_CODE_NOT_SUPPORTED) only once its loop runs,
 * which is after its registration thread has started: time routes from then.
 */
static void wait_broker_serving(int port)
{
    int fd = wire_connect(port, 30000);
    assert_true(fd >= 0);
    reply r = call_on(fd, req_new(RC_GET_BROKER_RUNTIME_INFO, V_4_9_8, NULL), NULL, 0);
    reply_free(&r);
    close(fd);
}

static void test_broker_embedded_namesrv(void **state)
{
    e2e_broker b;
    assert_int_equal(e2e_broker_start(&b, "e2e-namesrv", NULL), 0);
    int nsp = b.namesrv_port;
    wait_broker_serving(b.proc.port);
    char needle[96];
    snprintf(needle, sizeof needle, "\"brokerAddrs\":{\"0\":\"127.0.0.1:%d\"}", b.proc.port);
    long ms = wait_route_body(nsp, "TBW102", needle, 1000);
    assert_true(ms >= 0);
    assert_true(wait_route_body(nsp, "DefaultCluster", needle, 1000) >= 0);
    /* TBW102 is inheritable (perm 7) with the default 8 queues. */
    int fd = connect_ns(nsp);
    reply r = route_v(fd, "TBW102", V_GO, NULL);
    assert_non_null(strstr(r.body, "\"perm\":7,\"readQueueNums\":8"));
    reply_free(&r);
    close(fd);
    assert_int_equal(e2e_broker_stop(&b, 20000), 0);
}

/* A send that auto-creates its topic is answered only once the name server
 * routes the topic, so the producer's next route lookup already finds it. */
static void test_auto_created_topic_routable_at_reply(void **state)
{
    e2e_broker b;
    assert_int_equal(e2e_broker_start(&b, "e2e-namesrv-auto", NULL), 0);
    int nsp = b.namesrv_port;
    wait_broker_serving(b.proc.port);
    int bfd = wire_connect(b.proc.port, 5000);
    int nfd = connect_ns(nsp);
    assert_true(bfd >= 0);
    for (int i = 0; i < 5; i++) {
        char topic[64];
        snprintf(topic, sizeof topic, "AutoRoute%d", i);
        proto_cmd *resp;
        uint8_t *frame;
        assert_int_equal(wire_call(bfd, e2e_send_v2(topic, 0, NULL), "x", 1, &resp, &frame), 0);
        assert_int_equal(resp->code, RS_SUCCESS);
        proto_cmd_free(resp);
        free(frame);
        reply r = route_v(nfd, topic, V_GO, NULL);
        assert_int_equal(r.cmd->code, RS_SUCCESS);
        reply_free(&r);
    }
    close(bfd);
    close(nfd);
    assert_int_equal(e2e_broker_stop(&b, 20000), 0);
}

static void test_broker_standalone_namesrvs(void **state)
{
    /* Two name servers; the broker registers with both, every 300 ms. */
    wire_proc na = {0}, nb = {0};
    int pa = wire_free_port(), pb = wire_free_port();
    assert_int_equal(e2e_namesrv_start(&na, pa, NULL), 0);
    assert_int_equal(e2e_namesrv_start(&nb, pb, NULL), 0);
    char *dir = test_tmpdir("e2e-namesrv-standalone");
    wire_proc b = {0};
    int port = wire_free_port();
    char a1[64], a2[600], a3[128], a4[64];
    snprintf(a1, sizeof a1, "--listenPort=%d", port);
    snprintf(a4, sizeof a4, "--haListenPort=%d", wire_free_port());
    snprintf(a2, sizeof a2, "--storePathRootDir=%s", dir);
    snprintf(a3, sizeof a3, "--namesrvAddr=127.0.0.1:%d; 127.0.0.1:%d", pa, pb);
    const char *args[] = {a1, a2, a3, a4, "--brokerIP1=127.0.0.1", "--brokerName=broker-real",
                          "--registerNameServerPeriod=300", NULL};
    assert_int_equal(wire_start(&b, "mqbroker", port, args), 0);
    wait_broker_serving(port);
    char needle[96];
    snprintf(needle, sizeof needle, "\"brokerAddrs\":{\"0\":\"127.0.0.1:%d\"}", port);
    assert_true(wait_route_body(pa, "TBW102", needle, 1000) >= 0);
    assert_true(wait_route_body(pa, "broker-real", needle, 1000) >= 0);
    assert_true(wait_route_body(pb, "TBW102", needle, 1000) >= 0);

    /* A name server restarts empty: the broker reconnects and registers again. */
    assert_int_equal(wire_stop(&nb, 10000), 0);
    assert_int_equal(e2e_namesrv_start(&nb, pb, NULL), 0);
    assert_true(wait_route_body(pb, "TBW102", needle, 5000) >= 0);

    /* SIGTERM: the broker unregisters on its way out (and its connections close). */
    assert_int_equal(wire_stop(&b, 20000), 0);
    assert_true(wait_route_code(pa, "TBW102", RS_TOPIC_NOT_EXIST, 1000) >= 0);
    assert_true(wait_route_code(pb, "TBW102", RS_TOPIC_NOT_EXIST, 1000) >= 0);
    assert_int_equal(wire_stop(&na, 10000), 0);
    assert_int_equal(wire_stop(&nb, 10000), 0);
    test_rmdir_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_forms),
        cmocka_unit_test(test_route_non_ascii),
        cmocka_unit_test(test_two_brokers_cluster_info_and_lists),
        cmocka_unit_test(test_write_perm),
        cmocka_unit_test(test_kv),
        cmocka_unit_test(test_register_crc_and_compressed),
        cmocka_unit_test(test_oneway_gets_no_reply),
        cmocka_unit_test(test_close_of_registering_connection),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_broker_embedded_namesrv),
        cmocka_unit_test(test_auto_created_topic_routable_at_reply),
        cmocka_unit_test(test_broker_standalone_namesrvs),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
