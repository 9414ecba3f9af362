/*
 * test_e2e_admin: the broker's admin requests over the wire, against a real
 * mqbroker with an embedded name server and a fresh store:
 *
 *  - UPDATE_AND_CREATE_TOPIC, GET_TOPIC_CONFIG, GET_ALL_TOPIC_CONFIG, and
 *    the new route showing up at the name server; DELETE_TOPIC_IN_BROKER;
 *  - refusals with their exact codes and remarks (names, system topics,
 *    missing or bad fields);
 *  - GET_TOPIC_STATS_INFO and GET_CONSUME_STATS, whose offset tables are
 *    keyed by MessageQueue objects in fastjson's non-JSON form: the whole
 *    body is walked and every key and value checked;
 *  - GET_BROKER_RUNTIME_INFO counters and store positions;
 *  - subscription group create / get / list / delete;
 *  - QUERY_TOPIC_CONSUME_BY_WHO from heartbeats and committed offsets.
 * The broker is stopped with SIGTERM and must exit 0 (sanitizers clean).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "e2e_msg.h"
#include "e2e_reply.h"
#include "e2e_procs.h"
#include "testsupport.h"
#include "wire.h"

#define RC_GET_TOPIC_CONFIG 351
#define RC_GET_SUBSCRIPTIONGROUP_CONFIG 352
#define MAX_MQS 64

static e2e_broker broker;
static int fd = -1;
static uint64_t messages_sent; /* every append this broker has made */

static e2e_reply call(proto_cmd *req, const void *body, size_t len)
{
    return e2e_call(fd, req, body, len);
}

static proto_cmd *req_with(int code, const char *key, const char *value)
{
    proto_cmd *c = proto_cmd_request(code);
    if (key)
        proto_cmd_set(c, key, value);
    return c;
}

/* Send, expect the code and remark, free. */
static void expect_call(proto_cmd *req, const void *body, size_t len, int code, const char *remark)
{
    e2e_reply r = call(req, body, len);
    e2e_expect_code(&r, code, remark);
    e2e_reply_free(&r);
}

static void send_ok(const char *topic, int queue, const char *body)
{
    e2e_reply r = call(e2e_send_v2(topic, queue, "TAGS\001t\002"), body, strlen(body));
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);
    messages_sent++;
}

/* ---- fastjson object-key maps --------------------------------------------- */

/* One entry of an offsetTable keyed by MessageQueue. */
typedef struct mq_entry {
    char topic[128];
    int queue_id;
    json_t *value;
} mq_entry;

/* Parse one JSON value at *p (jansson stops after it); advances *p. */
static json_t *parse_at(const char **p, const char *end)
{
    json_error_t err;
    json_t *v = json_loadb(*p, (size_t)(end - *p), JSON_DISABLE_EOF_CHECK, &err);
    if (!v)
        fail_msg("bad JSON in map at \"%.40s\": %s", *p, err.text);
    *p += err.position;
    return v;
}

static void expect_char(const char **p, char ch)
{
    if (**p != ch)
        fail_msg("expected '%c' at \"%.40s\"", ch, *p);
    (*p)++;
}

/*
 * Walk `{"<prefix fields>","offsetTable":{{mq}:{...},...}<suffix>}` as the
 * broker writes it: every key must be a MessageQueue object of this broker.
 * Returns the entries (values owned by the caller) and their count.
 */
static size_t parse_mq_map(const e2e_reply *r, const char *before, const char *after,
                           mq_entry *out, size_t cap)
{
    const char *p = (const char *)r->cmd->body, *end = p + r->cmd->body_len;
    size_t blen = strlen(before);
    assert_true(r->cmd->body_len > blen && memcmp(p, before, blen) == 0);
    p += blen;
    size_t n = 0;
    while (*p != '}') {
        if (n)
            expect_char(&p, ',');
        json_t *key = parse_at(&p, end);
        expect_char(&p, ':');
        json_t *value = parse_at(&p, end);
        assert_true(json_is_object(key) && json_is_object(value) && n < cap);
        assert_int_equal(json_object_size(key), 3);
        assert_string_equal(json_string_value(json_object_get(key, "brokerName")), "broker-a");
        snprintf(out[n].topic, sizeof out[n].topic, "%s",
                 json_string_value(json_object_get(key, "topic")));
        out[n].queue_id = (int)json_integer_value(json_object_get(key, "queueId"));
        out[n].value = value;
        json_decref(key);
        n++;
    }
    p++;
    assert_int_equal((size_t)(end - p), strlen(after));
    assert_memory_equal(p, after, strlen(after));
    return n;
}

static void free_entries(mq_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(e[i].value);
}

static json_t *entry_for(mq_entry *e, size_t n, const char *topic, int q)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(e[i].topic, topic) == 0 && e[i].queue_id == q)
            return e[i].value;
    fail_msg("no entry for %s queue %d", topic, q);
    return NULL;
}

static int64_t field(json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

/* ---- setup ---------------------------------------------------------------- */

static int setup(void **state)
{
    return e2e_broker_setup(&broker, "e2e-admin", NULL, &fd);
}

static int teardown(void **state)
{
    return e2e_broker_teardown(&broker, &fd);
}

/* ------------------------------------------------------------------------- */

static void test_topic_create_update_list(void **state)
{
    expect_call(e2e_create_topic("ADM_T", 4, 4, 6), NULL, 0, RS_SUCCESS, NULL);
    e2e_reply r = call(req_with(RC_GET_TOPIC_CONFIG, "topic", "ADM_T"), NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    json_t *tc = e2e_body_json(&r);
    assert_string_equal(json_string_value(json_object_get(tc, "topicName")), "ADM_T");
    assert_int_equal(field(tc, "readQueueNums"), 4);
    assert_int_equal(field(tc, "writeQueueNums"), 4);
    assert_int_equal(field(tc, "perm"), 6);
    assert_int_equal(field(tc, "topicSysFlag"), 0);
    assert_string_equal(json_string_value(json_object_get(tc, "topicFilterType")), "SINGLE_TAG");
    assert_true(json_is_false(json_object_get(tc, "order")));
    json_decref(tc);
    e2e_reply_free(&r);
    assert_true(e2e_wait_route(broker.namesrv_port, "ADM_T", RS_SUCCESS, 5000) >= 0);

    /* Update: more queues, read-only, ordered, with attributes. */
    proto_cmd *c = e2e_create_topic("ADM_T", 8, 6, 4);
    proto_cmd_set_bool(c, "order", 1);
    proto_cmd_set(c, "attributes", "+message.type=FIFO");
    expect_call(c, NULL, 0, RS_SUCCESS, NULL);

    r = call(proto_cmd_request(RC_GET_ALL_TOPIC_CONFIG), NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    json_t *all = e2e_body_json(&r);
    json_t *dv = json_object_get(all, "dataVersion");
    assert_true(field(dv, "counter") >= 2);
    assert_true(field(dv, "timestamp") > 0);
    json_t *table = json_object_get(all, "topicConfigTable");
    assert_non_null(json_object_get(table, "TBW102"));
    tc = json_object_get(table, "ADM_T");
    assert_int_equal(field(tc, "readQueueNums"), 8);
    assert_int_equal(field(tc, "writeQueueNums"), 6);
    assert_int_equal(field(tc, "perm"), 4);
    assert_true(json_is_true(json_object_get(tc, "order")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(tc, "attributes"), "message.type")),
        "FIFO");
    json_decref(all);
    e2e_reply_free(&r);
}

static void test_topic_refusals(void **state)
{
    const char *illegal =
        "The specified topic contains illegal characters, allowing only ^[%|a-zA-Z0-9_-]+$";
    expect_call(e2e_create_topic("bad topic!", 1, 1, 6), NULL, 0, RS_INVALID_PARAMETER, illegal);
    expect_call(e2e_create_topic("", 1, 1, 6), NULL, 0, RS_INVALID_PARAMETER,
                "The specified topic is blank.");
    char longname[200];
    memset(longname, 'x', 128);
    longname[128] = 0;
    expect_call(e2e_create_topic(longname, 1, 1, 6), NULL, 0, RS_INVALID_PARAMETER,
                "The specified topic is longer than topic max length.");
    expect_call(e2e_create_topic("SCHEDULE_TOPIC_XXXX", 1, 1, 6), NULL, 0, RS_INVALID_PARAMETER,
                "The topic[SCHEDULE_TOPIC_XXXX] is conflict with system topic.");
    expect_call(e2e_create_topic("DefaultCluster", 1, 1, 6), NULL, 0, RS_INVALID_PARAMETER,
                "The topic[DefaultCluster] is conflict with system topic.");
    expect_call(e2e_create_topic("ADM_X", 1, 1, 9), NULL, 0, RS_INVALID_PARAMETER,
                "perm must be within 0..7");
    expect_call(e2e_create_topic("ADM_X", 0, 0, 6), NULL, 0, RS_INVALID_PARAMETER,
                "readQueueNums and writeQueueNums must not be negative nor both 0");
    proto_cmd *c = req_with(RC_UPDATE_AND_CREATE_TOPIC, "topic", "ADM_X");
    proto_cmd_set_i64(c, "readQueueNums", 1);
    proto_cmd_set_i64(c, "writeQueueNums", 1);
    expect_call(c, NULL, 0, RS_SYSTEM_ERROR, "the custom field <perm> is null");
    c = e2e_create_topic("ADM_X", 1, 1, 6);
    proto_cmd_set(c, "readQueueNums", "four");
    e2e_reply r = call(c, NULL, 0);
    assert_int_equal(r.cmd->code, RS_SYSTEM_ERROR);
    assert_non_null(strstr(r.cmd->remark, "<readQueueNums>"));
    e2e_reply_free(&r);
    expect_call(proto_cmd_request(RC_UPDATE_AND_CREATE_TOPIC), NULL, 0, RS_SYSTEM_ERROR,
                "the custom field <topic> is null");
    expect_call(req_with(RC_GET_TOPIC_CONFIG, "topic", "ADM_NONE"), NULL, 0, RS_TOPIC_NOT_EXIST,
                "No topic in this broker. topic: ADM_NONE");
    expect_call(req_with(RC_GET_TOPIC_STATS_INFO, "topic", "ADM_NONE"), NULL, 0,
                RS_TOPIC_NOT_EXIST, "topic[ADM_NONE] not exist");
    expect_call(req_with(RC_DELETE_TOPIC_IN_BROKER, "topic", "TBW102"), NULL, 0,
                RS_INVALID_PARAMETER, "The topic[TBW102] is conflict with system topic.");
    expect_call(proto_cmd_request(RC_GET_CONSUME_STATS), NULL, 0, RS_SYSTEM_ERROR,
                "the custom field <consumerGroup> is null");
    /* Nothing was created by the refusals. */
    expect_call(req_with(RC_GET_TOPIC_CONFIG, "topic", "ADM_X"), NULL, 0, RS_TOPIC_NOT_EXIST, NULL);
}

static void test_topic_stats(void **state)
{
    expect_call(e2e_create_topic("ADM_S", 2, 3, 6), NULL, 0, RS_SUCCESS, NULL);
    int64_t before = proto_wall_ms();
    for (int i = 0; i < 3; i++)
        send_ok("ADM_S", 0, "stats-q0");
    send_ok("ADM_S", 2, "stats-q2");
    e2e_reply r = call(req_with(RC_GET_TOPIC_STATS_INFO, "topic", "ADM_S"), NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    mq_entry e[MAX_MQS];
    size_t n = parse_mq_map(&r, "{\"offsetTable\":{", "}", e, MAX_MQS);
    assert_int_equal(n, 3); /* max(read 2, write 3) queues */
    json_t *q0 = entry_for(e, n, "ADM_S", 0), *q1 = entry_for(e, n, "ADM_S", 1),
           *q2 = entry_for(e, n, "ADM_S", 2);
    assert_int_equal(field(q0, "minOffset"), 0);
    assert_int_equal(field(q0, "maxOffset"), 3);
    assert_true(field(q0, "lastUpdateTimestamp") >= before - 1000);
    assert_true(field(q0, "lastUpdateTimestamp") <= proto_wall_ms() + 1000);
    assert_int_equal(field(q1, "maxOffset"), 0);
    assert_int_equal(field(q1, "lastUpdateTimestamp"), 0);
    assert_int_equal(field(q2, "maxOffset"), 1);
    assert_true(field(q2, "lastUpdateTimestamp") > 0);
    free_entries(e, n);
    e2e_reply_free(&r);
}

static void commit_offset(const char *group, const char *topic, int queue, int64_t offset)
{
    proto_cmd *c = req_with(RC_UPDATE_CONSUMER_OFFSET, "consumerGroup", group);
    proto_cmd_set(c, "topic", topic);
    proto_cmd_set_i64(c, "queueId", queue);
    proto_cmd_set_i64(c, "commitOffset", offset);
    expect_call(c, NULL, 0, RS_SUCCESS, NULL);
}

static void test_consume_stats(void **state)
{
    commit_offset("g_cs", "ADM_S", 0, 2);
    /* The store time of the message before the committed offset. */
    e2e_reply p = call(e2e_pull("g_cs", "ADM_S", 0, 1, 1, E2E_PULL_SUBSCRIPTION, 0, "*"), NULL, 0);
    e2e_expect_code(&p, RS_SUCCESS, NULL);
    proto_record rec;
    assert_int_equal(e2e_records(p.cmd->body, p.cmd->body_len, &rec, 1), 1);

    for (int pass = 0; pass < 2; pass++) {
        /* With the topic named, then from the group's committed offsets. */
        proto_cmd *c = req_with(RC_GET_CONSUME_STATS, "consumerGroup", "g_cs");
        if (pass == 0)
            proto_cmd_set(c, "topic", "ADM_S");
        e2e_reply r = call(c, NULL, 0);
        e2e_expect_code(&r, RS_SUCCESS, NULL);
        mq_entry e[MAX_MQS];
        size_t n = parse_mq_map(&r, "{\"consumeTps\":0.0,\"offsetTable\":{", "}", e, MAX_MQS);
        assert_int_equal(n, 2); /* readQueueNums */
        json_t *q0 = entry_for(e, n, "ADM_S", 0), *q1 = entry_for(e, n, "ADM_S", 1);
        assert_int_equal(field(q0, "brokerOffset"), 3);
        assert_int_equal(field(q0, "consumerOffset"), 2);
        assert_int_equal(field(q0, "pullOffset"), 2);
        assert_int_equal(field(q0, "lastTimestamp"), rec.store_timestamp);
        assert_int_equal(field(q1, "brokerOffset"), 0);
        assert_int_equal(field(q1, "consumerOffset"), 0);
        assert_int_equal(field(q1, "lastTimestamp"), 0);
        free_entries(e, n);
        e2e_reply_free(&r);
    }
    e2e_reply_free(&p);

    /* A topic that does not exist adds nothing, as in the Java broker. */
    proto_cmd *c = req_with(RC_GET_CONSUME_STATS, "consumerGroup", "g_cs");
    proto_cmd_set(c, "topic", "ADM_NONE");
    e2e_reply r = call(c, NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    assert_int_equal(r.cmd->body_len, strlen("{\"consumeTps\":0.0,\"offsetTable\":{}}"));
    assert_memory_equal(r.cmd->body, "{\"consumeTps\":0.0,\"offsetTable\":{}}", r.cmd->body_len);
    e2e_reply_free(&r);
}

static const char *kv(json_t *table, const char *key)
{
    const char *v = json_string_value(json_object_get(table, key));
    if (!v)
        fail_msg("runtime info has no %s", key);
    return v;
}

static void test_runtime_info(void **state)
{
    e2e_reply r = call(proto_cmd_request(RC_GET_BROKER_RUNTIME_INFO), NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    json_t *j = e2e_body_json(&r);
    json_t *t = json_object_get(j, "table");
    assert_string_equal(kv(t, "brokerVersionDesc"), "V4_9_8");
    assert_string_equal(kv(t, "brokerVersion"), "409");
    assert_int_equal(strtoull(kv(t, "msgPutTotalTodayNow"), NULL, 10), messages_sent);
    kv(t, "msgGetTotalTodayNow"); /* counted by the pull code */
    assert_true(strtoull(kv(t, "commitLogMaxOffset"), NULL, 10) > 0);
    assert_string_equal(kv(t, "commitLogMinOffset"), "0");
    assert_true(strtoll(kv(t, "earliestMessageTimeStamp"), NULL, 10) > 0);
    int64_t boot = strtoll(kv(t, "bootTimestamp"), NULL, 10);
    assert_true(boot > 0 && boot <= proto_wall_ms());
    double tps[3];
    assert_int_equal(sscanf(kv(t, "putTps"), "%lf %lf %lf", &tps[0], &tps[1], &tps[2]), 3);
    assert_true(tps[2] > 0);
    assert_non_null(strstr(kv(t, "runtime"), "days"));
    kv(t, "getTransferedTps");
    kv(t, "getTransferredTps");
    assert_string_equal(kv(t, "sendThreadPoolQueueHeadWaitTimeMills"), "0");
    assert_string_equal(kv(t, "pullThreadPoolQueueHeadWaitTimeMills"), "0");
    kv(t, "commitLogDiskRatio");
    json_decref(j);
    e2e_reply_free(&r);
}

static void test_subscription_groups(void **state)
{
    const char *cfg = "{\"groupName\":\"g_adm\",\"retryMaxTimes\":3,\"consumeEnable\":false,"
                      "\"custom\":\"kept\"}";
    expect_call(proto_cmd_request(RC_UPDATE_AND_CREATE_SUBSCRIPTIONGROUP), cfg, strlen(cfg),
                RS_SUCCESS, NULL);
    e2e_reply r = call(req_with(RC_GET_SUBSCRIPTIONGROUP_CONFIG, "group", "g_adm"), NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    json_t *g = e2e_body_json(&r);
    assert_int_equal(field(g, "retryMaxTimes"), 3);
    assert_int_equal(field(g, "retryQueueNums"), 1); /* a default filled in */
    assert_true(json_is_false(json_object_get(g, "consumeEnable")));
    assert_true(json_is_true(json_object_get(g, "notifyConsumerIdsChangedEnable")));
    assert_string_equal(json_string_value(json_object_get(g, "custom")), "kept");
    json_decref(g);
    e2e_reply_free(&r);

    r = call(proto_cmd_request(RC_GET_ALL_SUBSCRIPTIONGROUP_CONFIG), NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    json_t *all = e2e_body_json(&r);
    assert_non_null(json_object_get(all, "dataVersion"));
    json_t *table = json_object_get(all, "subscriptionGroupTable");
    assert_int_equal(field(json_object_get(table, "g_adm"), "retryMaxTimes"), 3);
    json_decref(all);
    e2e_reply_free(&r);

    const char *bad = "{\"groupName\":\"bad group\"}";
    expect_call(proto_cmd_request(RC_UPDATE_AND_CREATE_SUBSCRIPTIONGROUP), bad, strlen(bad),
                RS_INVALID_PARAMETER,
                "The specified group contains illegal characters, allowing only "
                "^[%|a-zA-Z0-9_-]+$");
    expect_call(proto_cmd_request(RC_UPDATE_AND_CREATE_SUBSCRIPTIONGROUP), "[1]", 3,
                RS_SYSTEM_ERROR, "the body is not a SubscriptionGroupConfig JSON object");
    expect_call(proto_cmd_request(RC_UPDATE_AND_CREATE_SUBSCRIPTIONGROUP), NULL, 0,
                RS_SYSTEM_ERROR, "the body is not a SubscriptionGroupConfig JSON object");

    proto_cmd *d = req_with(RC_DELETE_SUBSCRIPTIONGROUP, "groupName", "g_adm");
    proto_cmd_set_bool(d, "cleanOffset", 0);
    expect_call(d, NULL, 0, RS_SUCCESS, NULL);
    expect_call(req_with(RC_GET_SUBSCRIPTIONGROUP_CONFIG, "group", "g_adm"), NULL, 0,
                RS_SUBSCRIPTION_GROUP_NOT_EXIST, "the consumer group[g_adm] not exist");
    expect_call(proto_cmd_request(RC_DELETE_SUBSCRIPTIONGROUP), NULL, 0, RS_SYSTEM_ERROR,
                "the custom field <groupName> is null");
}

static void test_query_topic_consume_by_who(void **state)
{
    /* g_cs has an offset on ADM_S; g_who subscribes to it by heartbeat. */
    const char *hb =
        "{\"clientID\":\"10.0.0.9@1\",\"consumerDataSet\":[{\"groupName\":\"g_who\","
        "\"consumeType\":\"CONSUME_PASSIVELY\",\"messageModel\":\"CLUSTERING\","
        "\"consumeFromWhere\":\"CONSUME_FROM_LAST_OFFSET\",\"subscriptionDataSet\":[{\"topic\":"
        "\"ADM_S\",\"subString\":\"*\",\"tagsSet\":[],\"codeSet\":[],\"subVersion\":1}]}],"
        "\"producerDataSet\":[]}";
    int sock = wire_connect(broker.proc.port, 5000);
    e2e_reply r = e2e_call(sock, proto_cmd_request(RC_HEART_BEAT), hb, strlen(hb));
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);
    r = call(req_with(RC_QUERY_TOPIC_CONSUME_BY_WHO, "topic", "ADM_S"), NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    assert_int_equal(r.cmd->body_len, strlen("{\"groupList\":[\"g_cs\",\"g_who\"]}"));
    assert_memory_equal(r.cmd->body, "{\"groupList\":[\"g_cs\",\"g_who\"]}", r.cmd->body_len);
    e2e_reply_free(&r);
    close(sock);
}

static void test_topic_delete(void **state)
{
    expect_call(req_with(RC_DELETE_TOPIC_IN_BROKER, "topic", "ADM_S"), NULL, 0, RS_SUCCESS, NULL);
    expect_call(req_with(RC_GET_TOPIC_CONFIG, "topic", "ADM_S"), NULL, 0, RS_TOPIC_NOT_EXIST,
                "No topic in this broker. topic: ADM_S");
    /* Its offsets went with it. */
    e2e_reply r = call(req_with(RC_GET_CONSUME_STATS, "consumerGroup", "g_cs"), NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    assert_memory_equal(r.cmd->body, "{\"consumeTps\":0.0,\"offsetTable\":{}}", r.cmd->body_len);
    e2e_reply_free(&r);
    /* Deleting again is not an error. (The name server keeps the route until
     * DELETE_TOPIC_IN_NAMESRV, as the Java one does: mqadmin sends both.) */
    expect_call(req_with(RC_DELETE_TOPIC_IN_BROKER, "topic", "ADM_S"), NULL, 0, RS_SUCCESS, NULL);
    expect_call(req_with(RC_DELETE_TOPIC_IN_BROKER, "topic", "bad name"), NULL, 0,
                RS_INVALID_PARAMETER,
                "The specified topic contains illegal characters, allowing only "
                "^[%|a-zA-Z0-9_-]+$");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topic_create_update_list),
        cmocka_unit_test(test_topic_refusals),
        cmocka_unit_test(test_topic_stats),
        cmocka_unit_test(test_consume_stats),
        cmocka_unit_test(test_runtime_info),
        cmocka_unit_test(test_subscription_groups),
        cmocka_unit_test(test_query_topic_consume_by_who),
        cmocka_unit_test(test_topic_delete),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
