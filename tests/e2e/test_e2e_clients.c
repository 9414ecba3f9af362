/*
 * test_e2e_clients: the client registry, queue locks and send-back over the
 * wire, against a real mqbroker (embedded name server, fresh store):
 *
 *  - HEART_BEAT creates the subscription group and %RETRY%<group>;
 *  - GET_CONSUMER_LIST_BY_GROUP with one and two members, and the
 *    NOTIFY_CONSUMER_IDS_CHANGED the first member receives when the second
 *    joins, when it leaves by closing its connection and by
 *    UNREGISTER_CLIENT; an unchanged heartbeat notifies nobody;
 *  - subscription rules (§6.3): absent topics removed, only newer
 *    subVersions replace;
 *  - consumer and producer connection lists, CHECK_CLIENT_CONFIG;
 *  - expiry of silent registrations (a second broker with a short
 *    channelExpiredTimeout);
 *  - LOCK_BATCH_MQ / UNLOCK_BATCH_MQ: owner, refusal, release, expiry
 *    (LSMQ_LOCK_MAX_LIVE_MS shortens the lock lifetime), oneway unlock;
 *  - CONSUMER_SEND_MSG_BACK: retry records (DELAY 3 + reconsumeTimes;
 *    the broker's levels are all 0 s here, test_e2e_delay times them),
 *    then the DLQ after maxReconsumeTimes (header and group setting),
 *    delayLevel < 0, a parked pull on the retry queue woken when the retry
 *    is moved there;
 *  - bad inputs answered with their exact codes and remarks.
 * Each broker is stopped with SIGTERM and must exit 0 (sanitizers clean).
 */
#include <poll.h>
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

#define LOCK_LIVE_MS 1500
#define RC_GET_SUBSCRIPTIONGROUP_CONFIG 352
#define RC_GET_TOPIC_CONFIG 351

static e2e_broker broker;
static e2e_broker expiry_broker; /* test_expiry's own; killed by teardown if a check failed */
static int fd = -1;

/*
 * NOTIFY_CONSUMER_IDS_CHANGED frames that arrived on a socket while a call
 * waited for its response (the broker sends the notify of a heartbeat
 * before answering it), per fd, in arrival order.
 */
#define MAX_FD 1024
#define MAX_PENDING 16
static char pending[MAX_FD][MAX_PENDING][64];
static int n_pending[MAX_FD];

static void keep_notify(int sock, proto_cmd *n)
{
    assert_int_equal(n->code, RC_NOTIFY_CONSUMER_IDS_CHANGED);
    assert_false(proto_cmd_is_response(n));
    assert_true(proto_cmd_is_oneway(n));
    assert_true(sock < MAX_FD && n_pending[sock] < MAX_PENDING);
    const char *g = proto_cmd_get(n, "consumerGroup");
    snprintf(pending[sock][n_pending[sock]++], 64, "%s", g ? g : "(none)");
}

/* Send a request and read until its response, keeping notifications that come first. */
static e2e_reply call_on(int sock, proto_cmd *req, const void *body, size_t len)
{
    e2e_reply r = {0};
    int32_t opaque = wire_send(sock, req, body, len);
    proto_cmd_free(req);
    assert_true(opaque != -1);
    for (;;) {
        assert_int_equal(wire_recv(sock, &r.cmd, &r.frame), 0);
        if (proto_cmd_is_response(r.cmd) && r.cmd->opaque == opaque)
            return r;
        keep_notify(sock, r.cmd);
        proto_cmd_free(r.cmd);
        free(r.frame);
    }
}

static e2e_reply call(proto_cmd *req, const void *body, size_t len)
{
    return call_on(fd, req, body, len);
}

static proto_cmd *req_with(int code, const char *key, const char *value)
{
    proto_cmd *c = proto_cmd_request(code);
    if (key)
        proto_cmd_set(c, key, value);
    return c;
}

/* ---- heartbeats --------------------------------------------------------- */

/* A SubscriptionData object text. */
static void sub_text(char *out, size_t cap, const char *topic, const char *sub, int64_t version)
{
    if (strcmp(sub, "*") == 0) {
        snprintf(out, cap,
                 "{\"topic\":\"%s\",\"subString\":\"*\",\"classFilterMode\":false,"
                 "\"tagsSet\":[],\"codeSet\":[],\"subVersion\":%lld,\"expressionType\":\"TAG\"}",
                 topic, (long long)version);
        return;
    }
    snprintf(out, cap,
             "{\"topic\":\"%s\",\"subString\":\"%s\",\"classFilterMode\":false,"
             "\"tagsSet\":[\"%s\"],\"codeSet\":[%lld],\"subVersion\":%lld}",
             topic, sub, sub, (long long)proto_tag_hash(sub, strlen(sub)), (long long)version);
}

/* HEART_BEAT for one consumer group with `subs` (SubscriptionData texts joined by commas). */
static void heartbeat(int sock, const char *client, const char *group, const char *subs,
                      const char *producer_group)
{
    char body[4096], producers[256] = "";
    if (producer_group)
        snprintf(producers, sizeof producers, "{\"groupName\":\"%s\"}", producer_group);
    if (group)
        snprintf(body, sizeof body,
                 "{\"clientID\":\"%s\",\"consumerDataSet\":[{\"groupName\":\"%s\","
                 "\"consumeType\":\"CONSUME_PASSIVELY\",\"messageModel\":\"CLUSTERING\","
                 "\"consumeFromWhere\":\"CONSUME_FROM_LAST_OFFSET\",\"subscriptionDataSet\":[%s],"
                 "\"unitMode\":false}],\"producerDataSet\":[%s]}",
                 client, group, subs ? subs : "", producers);
    else
        snprintf(body, sizeof body,
                 "{\"clientID\":\"%s\",\"consumerDataSet\":[],\"producerDataSet\":[%s]}", client,
                 producers);
    e2e_reply r = call_on(sock, proto_cmd_request(RC_HEART_BEAT), body, strlen(body));
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    assert_int_equal(r.cmd->body_len, 0);
    assert_int_equal(r.cmd->version, PROTO_SERVER_VERSION);
    e2e_reply_free(&r);
}

/* The next notification on sock (kept earlier or read now) is for group. */
static void expect_notify(int sock, const char *group)
{
    if (n_pending[sock] == 0) {
        proto_cmd *n = NULL;
        uint8_t *frame = NULL;
        if (wire_recv(sock, &n, &frame) != 0)
            fail_msg("no NOTIFY_CONSUMER_IDS_CHANGED for %s arrived", group);
        keep_notify(sock, n);
        proto_cmd_free(n);
        free(frame);
    }
    assert_string_equal(pending[sock][0], group);
    memmove(pending[sock], pending[sock][1], sizeof pending[sock] - sizeof pending[sock][0]);
    n_pending[sock]--;
}

/* Forget notifications kept for a socket being closed. */
static void close_sock(int sock)
{
    n_pending[sock] = 0;
    close(sock);
}

/* Nothing arrives on sock within ms, and nothing was kept for it. */
static void expect_silence(int sock, int ms)
{
    assert_int_equal(n_pending[sock], 0);
    struct pollfd p = {.fd = sock, .events = POLLIN};
    int n = poll(&p, 1, ms);
    if (n != 0) {
        proto_cmd *cmd = NULL;
        uint8_t *frame = NULL;
        if (wire_recv(sock, &cmd, &frame) == 0)
            fail_msg("unexpected frame code %d", cmd->code);
        fail_msg("unexpected data or EOF");
    }
}

/* The consumer id list of a group, sorted and joined with ','; or the error code. */
static int consumer_list(int sock, const char *group, char *out, size_t cap)
{
    e2e_reply r =
        call_on(sock, req_with(RC_GET_CONSUMER_LIST_BY_GROUP, "consumerGroup", group), NULL, 0);
    int code = r.cmd->code;
    out[0] = 0;
    if (code == RS_SUCCESS) {
        json_t *j = e2e_body_json(&r);
        json_t *ids = json_object_get(j, "consumerIdList");
        size_t n = json_array_size(ids);
        const char *v[16];
        for (size_t i = 0; i < n && i < 16; i++)
            v[i] = json_string_value(json_array_get(ids, i));
        for (size_t i = 0; i < n; i++) /* tiny sort */
            for (size_t k = i + 1; k < n; k++)
                if (strcmp(v[k], v[i]) < 0) {
                    const char *t = v[i];
                    v[i] = v[k];
                    v[k] = t;
                }
        for (size_t i = 0; i < n; i++)
            snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? "," : "", v[i]);
        json_decref(j);
    }
    e2e_reply_free(&r);
    return code;
}

static void expect_members(int sock, const char *group, const char *want)
{
    char got[512];
    assert_int_equal(consumer_list(sock, group, got, sizeof got), RS_SUCCESS);
    assert_string_equal(got, want);
}

static int setup(void **state)
{
    char live[32];
    snprintf(live, sizeof live, "%d", LOCK_LIVE_MS);
    setenv("LSMQ_LOCK_MAX_LIVE_MS", live, 1); /* inherited by the broker */
    const char *extra[] = {"--messageDelayLevel=0s 0s 0s 0s 0s 0s", NULL};
    return e2e_broker_setup(&broker, "e2e-clients", extra, &fd);
}

static int teardown(void **state)
{
    e2e_broker_kill(&expiry_broker);
    return e2e_broker_teardown(&broker, &fd);
}

/* ------------------------------------------------------------------------- */

static void test_heartbeat_creates_group_and_retry_topic(void **state)
{
    char s1[512], s2[512], subs[1100];
    sub_text(s1, sizeof s1, "HB_T", "TagA", 100);
    sub_text(s2, sizeof s2, "%RETRY%g_hb", "*", 100);
    snprintf(subs, sizeof subs, "%s,%s", s1, s2);
    heartbeat(fd, "10.0.0.1@1", "g_hb", subs, NULL);
    expect_notify(fd, "g_hb"); /* a new member: the group is told */

    e2e_reply r = call(req_with(RC_GET_TOPIC_CONFIG, "topic", "%RETRY%g_hb"), NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    json_t *tc = e2e_body_json(&r);
    assert_int_equal(json_integer_value(json_object_get(tc, "readQueueNums")), 1);
    assert_int_equal(json_integer_value(json_object_get(tc, "writeQueueNums")), 1);
    assert_int_equal(json_integer_value(json_object_get(tc, "perm")), 6);
    json_decref(tc);
    e2e_reply_free(&r);

    r = call(req_with(RC_GET_SUBSCRIPTIONGROUP_CONFIG, "group", "g_hb"), NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    json_t *g = e2e_body_json(&r);
    assert_string_equal(json_string_value(json_object_get(g, "groupName")), "g_hb");
    assert_int_equal(json_integer_value(json_object_get(g, "retryMaxTimes")), 16);
    assert_int_equal(json_integer_value(json_object_get(g, "retryQueueNums")), 1);
    assert_true(json_is_true(json_object_get(g, "consumeEnable")));
    assert_true(json_is_true(json_object_get(g, "notifyConsumerIdsChangedEnable")));
    json_decref(g);
    e2e_reply_free(&r);
    expect_members(fd, "g_hb", "10.0.0.1@1");
}

static void test_membership_and_notify(void **state)
{
    int a = wire_connect(broker.proc.port, 5000), b = wire_connect(broker.proc.port, 5000);
    assert_true(a >= 0 && b >= 0);
    char s[512];
    sub_text(s, sizeof s, "MB_T", "*", 1);
    heartbeat(a, "10.0.0.1@A", "g_mb", s, NULL);
    expect_notify(a, "g_mb"); /* its own arrival changed the group */
    expect_members(fd, "g_mb", "10.0.0.1@A");

    /* An unchanged heartbeat changes nothing and notifies nobody. */
    heartbeat(a, "10.0.0.1@A", "g_mb", s, NULL);
    expect_silence(a, 300);

    heartbeat(b, "10.0.0.1@B", "g_mb", s, NULL);
    expect_notify(a, "g_mb");
    expect_notify(b, "g_mb");
    expect_members(fd, "g_mb", "10.0.0.1@A,10.0.0.1@B");

    /* B's connection closes: A hears of it and B is gone. */
    close_sock(b);
    expect_notify(a, "g_mb");
    expect_members(fd, "g_mb", "10.0.0.1@A");

    /* A third member leaves by UNREGISTER_CLIENT. */
    int c = wire_connect(broker.proc.port, 5000);
    heartbeat(c, "10.0.0.1@C", "g_mb", s, NULL);
    expect_notify(a, "g_mb");
    expect_notify(c, "g_mb");
    proto_cmd *u = req_with(RC_UNREGISTER_CLIENT, "clientID", "10.0.0.1@C");
    proto_cmd_set(u, "consumerGroup", "g_mb");
    e2e_reply r = call_on(c, u, NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);
    expect_notify(a, "g_mb");
    expect_silence(c, 200);
    expect_members(fd, "g_mb", "10.0.0.1@A");
    close_sock(c);

    /* The last member goes: the group is no longer online. */
    close_sock(a);
    char got[256];
    for (int i = 0; i < 100 && consumer_list(fd, "g_mb", got, sizeof got) == RS_SUCCESS; i++)
        usleep(10000);
    r = call(req_with(RC_GET_CONSUMER_LIST_BY_GROUP, "consumerGroup", "g_mb"), NULL, 0);
    e2e_expect_code(&r, RS_SYSTEM_ERROR, "no consumer for this group, g_mb");
    e2e_reply_free(&r);
}

/* The subscription table of an online group, as GET_CONSUMER_CONNECTION_LIST shows it. */
static json_t *subscription_table(const char *group)
{
    e2e_reply r = call(req_with(RC_GET_CONSUMER_CONNECTION_LIST, "consumerGroup", group), NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    json_t *j = e2e_body_json(&r);
    json_t *t = json_incref(json_object_get(j, "subscriptionTable"));
    json_decref(j);
    e2e_reply_free(&r);
    return t;
}

static void test_subscription_rules(void **state)
{
    int a = wire_connect(broker.proc.port, 5000);
    char s1[512], s2[512], both[1100];
    sub_text(s1, sizeof s1, "SR_1", "TagA", 100);
    sub_text(s2, sizeof s2, "SR_2", "*", 100);
    snprintf(both, sizeof both, "%s,%s", s1, s2);
    heartbeat(a, "10.0.0.2@1", "g_sr", both, NULL);
    expect_notify(a, "g_sr");
    json_t *t = subscription_table("g_sr");
    assert_int_equal(json_object_size(t), 2);
    json_decref(t);

    /* SR_2 is no longer mentioned: removed, and the group is told. */
    heartbeat(a, "10.0.0.2@1", "g_sr", s1, NULL);
    expect_notify(a, "g_sr");
    t = subscription_table("g_sr");
    assert_int_equal(json_object_size(t), 1);
    assert_non_null(json_object_get(t, "SR_1"));
    json_decref(t);

    /* An older subVersion does not replace. */
    sub_text(s1, sizeof s1, "SR_1", "TagB", 50);
    heartbeat(a, "10.0.0.2@1", "g_sr", s1, NULL);
    expect_silence(a, 200);
    t = subscription_table("g_sr");
    json_t *sd = json_object_get(t, "SR_1");
    assert_string_equal(json_string_value(json_object_get(sd, "subString")), "TagA");
    json_decref(t);

    /* A newer one does, and the filter change is announced. */
    sub_text(s1, sizeof s1, "SR_1", "TagB", 200);
    heartbeat(a, "10.0.0.2@1", "g_sr", s1, NULL);
    expect_notify(a, "g_sr");
    t = subscription_table("g_sr");
    sd = json_object_get(t, "SR_1");
    assert_string_equal(json_string_value(json_object_get(sd, "subString")), "TagB");
    assert_int_equal(json_integer_value(json_object_get(sd, "subVersion")), 200);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(sd, "codeSet"), 0)),
                     2598920); /* "TagB".hashCode() */
    assert_string_equal(json_string_value(json_array_get(json_object_get(sd, "tagsSet"), 0)),
                        "TagB");
    json_decref(t);
    close_sock(a);
}

static void test_connection_lists(void **state)
{
    int a = wire_connect(broker.proc.port, 5000);
    char s[512];
    sub_text(s, sizeof s, "CL_T", "TagA", 7);
    proto_cmd *hb = proto_cmd_request(RC_HEART_BEAT);
    hb->language = LANG_GO;
    hb->version = 317;
    char body[2048];
    snprintf(body, sizeof body,
             "{\"clientID\":\"10.0.0.3@9\",\"consumerDataSet\":[{\"groupName\":\"g_cl\","
             "\"consumeType\":\"CONSUME_ACTIVELY\",\"messageModel\":\"BROADCASTING\","
             "\"consumeFromWhere\":\"CONSUME_FROM_FIRST_OFFSET\",\"subscriptionDataSet\":[%s]}],"
             "\"producerDataSet\":[{\"groupName\":\"pg_cl\"}]}",
             s);
    e2e_reply r = call_on(a, hb, body, strlen(body));
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);
    expect_notify(a, "g_cl");

    r = call(req_with(RC_GET_CONSUMER_CONNECTION_LIST, "consumerGroup", "g_cl"), NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    json_t *j = e2e_body_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "consumeType")), "CONSUME_ACTIVELY");
    assert_string_equal(json_string_value(json_object_get(j, "messageModel")), "BROADCASTING");
    assert_string_equal(json_string_value(json_object_get(j, "consumeFromWhere")),
                        "CONSUME_FROM_FIRST_OFFSET");
    json_t *set = json_object_get(j, "connectionSet");
    assert_int_equal(json_array_size(set), 1);
    json_t *cn = json_array_get(set, 0);
    assert_string_equal(json_string_value(json_object_get(cn, "clientId")), "10.0.0.3@9");
    assert_string_equal(json_string_value(json_object_get(cn, "language")), "GO");
    assert_int_equal(json_integer_value(json_object_get(cn, "version")), 317);
    assert_non_null(strstr(json_string_value(json_object_get(cn, "clientAddr")), "127.0.0.1:"));
    json_t *sd = json_object_get(json_object_get(j, "subscriptionTable"), "CL_T");
    assert_int_equal(json_integer_value(json_array_get(json_object_get(sd, "codeSet"), 0)),
                     2598919); /* "TagA".hashCode() */
    json_decref(j);
    e2e_reply_free(&r);

    r = call(req_with(RC_GET_PRODUCER_CONNECTION_LIST, "producerGroup", "pg_cl"), NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    j = e2e_body_json(&r);
    set = json_object_get(j, "connectionSet");
    assert_int_equal(json_array_size(set), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(set, 0), "clientId")),
                        "10.0.0.3@9");
    json_decref(j);
    e2e_reply_free(&r);

    /* Unregistering the producer empties its group. */
    proto_cmd *u = req_with(RC_UNREGISTER_CLIENT, "clientID", "10.0.0.3@9");
    proto_cmd_set(u, "producerGroup", "pg_cl");
    r = call_on(a, u, NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);
    r = call(req_with(RC_GET_PRODUCER_CONNECTION_LIST, "producerGroup", "pg_cl"), NULL, 0);
    e2e_expect_code(&r, RS_SYSTEM_ERROR, "the producer group[pg_cl] not exist");
    e2e_reply_free(&r);

    r = call(req_with(RC_GET_CONSUMER_CONNECTION_LIST, "consumerGroup", "nobody"), NULL, 0);
    e2e_expect_code(&r, RS_CONSUMER_NOT_ONLINE, "the consumer group[nobody] not online");
    e2e_reply_free(&r);
    close_sock(a);
}

static void test_check_client_config(void **state)
{
    const char *tag = "{\"clientId\":\"x@1\",\"group\":\"g\",\"subscriptionData\":"
                      "{\"topic\":\"t\",\"subString\":\"*\",\"expressionType\":\"TAG\"}}";
    e2e_reply r = call(proto_cmd_request(RC_CHECK_CLIENT_CONFIG), tag, strlen(tag));
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);
    const char *sql = "{\"clientId\":\"x@1\",\"group\":\"g\",\"subscriptionData\":"
                      "{\"topic\":\"t\",\"subString\":\"a > 1\",\"expressionType\":\"SQL92\"}}";
    r = call(proto_cmd_request(RC_CHECK_CLIENT_CONFIG), sql, strlen(sql));
    e2e_expect_code(&r, RS_SYSTEM_ERROR, "SQL92 filtering is not enabled");
    e2e_reply_free(&r);
}

static void test_bad_inputs(void **state)
{
    e2e_reply r = call(proto_cmd_request(RC_HEART_BEAT), "not json", 8);
    e2e_expect_code(&r, RS_SYSTEM_ERROR, "HeartbeatData body is not JSON");
    e2e_reply_free(&r);
    r = call(proto_cmd_request(RC_HEART_BEAT), "{\"consumerDataSet\":[]}", 22);
    e2e_expect_code(&r, RS_SYSTEM_ERROR, "HeartbeatData has no clientID");
    e2e_reply_free(&r);
    r = call(proto_cmd_request(RC_GET_CONSUMER_LIST_BY_GROUP), NULL, 0);
    e2e_expect_code(&r, RS_SYSTEM_ERROR, "the custom field <consumerGroup> is null");
    e2e_reply_free(&r);
    r = call(req_with(RC_GET_CONSUMER_LIST_BY_GROUP, "consumerGroup", "nope"), NULL, 0);
    e2e_expect_code(&r, RS_SYSTEM_ERROR, "no consumer for this group, nope");
    e2e_reply_free(&r);
    r = call(proto_cmd_request(RC_UNREGISTER_CLIENT), NULL, 0);
    e2e_expect_code(&r, RS_SYSTEM_ERROR, "the custom field <clientID> is null");
    e2e_reply_free(&r);
    r = call(proto_cmd_request(RC_LOCK_BATCH_MQ), "{}", 2);
    e2e_expect_code(&r, RS_SYSTEM_ERROR,
                    "the body must be a JSON object with consumerGroup, clientId and mqSet");
    e2e_reply_free(&r);
}

/* ---- expiry (its own broker) ---------------------------------------------- */

static void test_expiry(void **state)
{
    const char *extra[] = {"--channelExpiredTimeout=1000", NULL};
    assert_int_equal(e2e_broker_start(&expiry_broker, "e2e-clients-expiry", extra), 0);
    int port = expiry_broker.proc.port;
    int a = wire_connect(port, 5000), b = wire_connect(port, 5000);
    char s[512];
    sub_text(s, sizeof s, "EX_T", "*", 1);
    heartbeat(a, "10.0.0.4@A", "g_ex", s, NULL);
    expect_notify(a, "g_ex");
    heartbeat(b, "10.0.0.4@B", "g_ex", s, "pg_ex");
    expect_notify(a, "g_ex");
    expect_notify(b, "g_ex");
    expect_members(a, "g_ex", "10.0.0.4@A,10.0.0.4@B");

    /* A keeps beating, B falls silent but stays connected. */
    int64_t start = proto_wall_ms();
    bool notified = false;
    while (proto_wall_ms() - start < 4000) {
        heartbeat(a, "10.0.0.4@A", "g_ex", s, NULL);
        struct pollfd p = {.fd = a, .events = POLLIN};
        if (n_pending[a] > 0 || poll(&p, 1, 250) == 1) {
            expect_notify(a, "g_ex");
            notified = true;
            break;
        }
    }
    assert_true(notified);
    expect_members(a, "g_ex", "10.0.0.4@A");
    e2e_reply r = call_on(a, req_with(RC_GET_PRODUCER_CONNECTION_LIST, "producerGroup", "pg_ex"),
                          NULL, 0);
    e2e_expect_code(&r, RS_SYSTEM_ERROR, "the producer group[pg_ex] not exist");
    e2e_reply_free(&r);
    close_sock(a);
    close_sock(b);
    assert_int_equal(e2e_broker_stop(&expiry_broker, 30000), 0);
}

/* ---- locks ---------------------------------------------------------------- */

/* LOCK_BATCH_MQ for queues `qids` (-1 ends) of LK_T; returns a bitmask of the queues granted. */
static unsigned lock_mqs(int code, const char *client, const int *qids)
{
    json_t *set = json_array();
    for (int i = 0; qids[i] >= 0; i++)
        json_array_append_new(set, json_pack("{s:s,s:i,s:s}", "brokerName", "broker-a", "queueId",
                                             qids[i], "topic", "LK_T"));
    json_t *req = json_pack("{s:s,s:s,s:o,s:b}", "consumerGroup", "g_lk", "clientId", client,
                            "mqSet", set, "onlyThisBroker", 0);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    e2e_reply r = call(proto_cmd_request(code), body, strlen(body));
    free(body);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    unsigned mask = 0;
    if (code == RC_LOCK_BATCH_MQ) {
        json_t *j = e2e_body_json(&r);
        size_t i;
        json_t *mq;
        json_array_foreach(json_object_get(j, "lockOKMQSet"), i, mq) {
            assert_string_equal(json_string_value(json_object_get(mq, "topic")), "LK_T");
            assert_string_equal(json_string_value(json_object_get(mq, "brokerName")), "broker-a");
            mask |= 1u << json_integer_value(json_object_get(mq, "queueId"));
        }
        json_decref(j);
    } else {
        assert_int_equal(r.cmd->body_len, 0);
    }
    e2e_reply_free(&r);
    return mask;
}

static void test_locks(void **state)
{
    const int q01[] = {0, 1, -1}, q12[] = {1, 2, -1}, q0[] = {0, -1}, q1[] = {1, -1};
    assert_int_equal(lock_mqs(RC_LOCK_BATCH_MQ, "c1", q01), 0x3);
    /* c2 gets the free queue only. */
    assert_int_equal(lock_mqs(RC_LOCK_BATCH_MQ, "c2", q12), 0x4);
    /* The owner relocks its own queues. */
    assert_int_equal(lock_mqs(RC_LOCK_BATCH_MQ, "c1", q01), 0x3);
    /* c2 cannot release c1's lock. */
    lock_mqs(RC_UNLOCK_BATCH_MQ, "c2", q1);
    assert_int_equal(lock_mqs(RC_LOCK_BATCH_MQ, "c2", q1), 0);
    /* c1 releases queue 1; c2 takes it. */
    lock_mqs(RC_UNLOCK_BATCH_MQ, "c1", q1);
    assert_int_equal(lock_mqs(RC_LOCK_BATCH_MQ, "c2", q1), 0x2);

    /* A oneway unlock is applied and not answered. */
    char body[256];
    snprintf(body, sizeof body,
             "{\"consumerGroup\":\"g_lk\",\"clientId\":\"c2\",\"mqSet\":[{\"brokerName\":"
             "\"broker-a\",\"queueId\":1,\"topic\":\"LK_T\"}]}");
    proto_cmd *u = proto_cmd_request(RC_UNLOCK_BATCH_MQ);
    u->flag |= PROTO_FLAG_ONEWAY;
    assert_true(wire_send(fd, u, body, strlen(body)) != -1);
    proto_cmd_free(u);
    expect_silence(fd, 300);
    assert_int_equal(lock_mqs(RC_LOCK_BATCH_MQ, "c1", q1), 0x2);

    /* Unrenewed locks expire (LSMQ_LOCK_MAX_LIVE_MS) and may be taken. */
    assert_int_equal(lock_mqs(RC_LOCK_BATCH_MQ, "c2", q0), 0);
    usleep((LOCK_LIVE_MS + 600) * 1000);
    assert_int_equal(lock_mqs(RC_LOCK_BATCH_MQ, "c2", q0), 0x1);
    assert_int_equal(lock_mqs(RC_LOCK_BATCH_MQ, "c1", q0), 0);
}

/* ---- send-back ------------------------------------------------------------ */

/* Send one message; returns its log position (from the offset msgId). */
static uint64_t send_one(const char *topic, const char *body, const char *props, char *msgid)
{
    e2e_reply r = call(e2e_send_v2(topic, 0, props), body, strlen(body));
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    const char *id = proto_cmd_get(r.cmd, "msgId");
    proto_host h;
    uint64_t pos = 0;
    assert_int_equal(proto_msgid_decode(id, strlen(id), &h, &pos), 0);
    if (msgid)
        strcpy(msgid, id);
    e2e_reply_free(&r);
    return pos;
}

static e2e_reply send_back(uint64_t offset, const char *group, int delay, int max, int version)
{
    proto_cmd *c = proto_cmd_request(RC_CONSUMER_SEND_MSG_BACK);
    c->version = version;
    proto_cmd_set_i64(c, "offset", (int64_t)offset);
    proto_cmd_set(c, "group", group);
    proto_cmd_set_i64(c, "delayLevel", delay);
    if (max >= 0)
        proto_cmd_set_i64(c, "maxReconsumeTimes", max);
    proto_cmd_set_bool(c, "unitMode", 0);
    return call(c, NULL, 0);
}

static void send_back_ok(uint64_t offset, const char *group, int delay, int max, int version)
{
    e2e_reply r = send_back(offset, group, delay, max, version);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);
}

/*
 * Pull the record at `offset` of queue 0; copies it into *rec (buffer in
 * *keep). A retry is moved to its queue when due (at once here, by the
 * writer), so the pull parks until it is there.
 */
static void pull_one(const char *topic, int64_t offset, e2e_reply *keep, proto_record *rec)
{
    *keep = call(e2e_pull("g_reader", topic, 0, offset, 1,
                          E2E_PULL_SUBSCRIPTION | E2E_PULL_SUSPEND, 5000, "*"),
                 NULL, 0);
    e2e_expect_code(keep, RS_SUCCESS, NULL);
    assert_int_equal(e2e_records(keep->cmd->body, keep->cmd->body_len, rec, 1), 1);
    assert_int_equal(rec->queue_offset, offset);
}

/* delay: the retry's DELAY level, or "0" for a dead letter (at once, as upstream's). */
static void check_copy(const proto_record *r, const char *topic, int reconsume,
                       const proto_record *orig, const char *origin_id, const char *delay)
{
    char v[128];
    assert_int_equal(r->topic_len, strlen(topic));
    assert_memory_equal(r->topic, topic, r->topic_len);
    assert_int_equal(r->reconsume_times, reconsume);
    assert_int_equal(r->body_len, orig->body_len);
    assert_memory_equal(r->body, orig->body, r->body_len);
    assert_int_equal(r->flag, orig->flag);
    assert_int_equal(r->born_timestamp, orig->born_timestamp);
    assert_memory_equal(r->born_host.ip, orig->born_host.ip, 4);
    assert_true(e2e_prop(r, "RETRY_TOPIC", v, sizeof v));
    assert_string_equal(v, "SB_T");
    assert_true(e2e_prop(r, "ORIGIN_MESSAGE_ID", v, sizeof v));
    assert_string_equal(v, origin_id);
    assert_true(e2e_prop(r, "TAGS", v, sizeof v));
    assert_string_equal(v, "TagS");
    assert_true(e2e_prop(r, "DELAY", v, sizeof v));
    assert_string_equal(v, delay);
    assert_int_equal(e2e_prop(r, "REAL_TOPIC", v, sizeof v), strcmp(delay, "0") != 0);
    if (strcmp(delay, "0") != 0)
        assert_string_equal(v, topic);
}

static void test_send_back_retry_then_dlq(void **state)
{
    char msgid[64];
    uint64_t pos = send_one("SB_T", "sb-body", "TAGS\001TagS\002KEYS\001sbk\002", msgid);
    e2e_reply ro;
    proto_record orig;
    pull_one("SB_T", 0, &ro, &orig);

    /* A pull parked on the retry queue is woken by the send-back. */
    int hb = wire_connect(broker.proc.port, 5000); /* creates %RETRY%g_sb */
    heartbeat(hb, "10.0.0.5@1", "g_sb", NULL, NULL);
    close_sock(hb);
    int waiter = wire_connect(broker.proc.port, 5000);
    proto_cmd *pc = e2e_pull("g_sb", "%RETRY%g_sb", 0, 0, 8,
                             E2E_PULL_SUSPEND | E2E_PULL_SUBSCRIPTION, 10000, "*");
    int32_t parked = wire_send(waiter, pc, NULL, 0);
    proto_cmd_free(pc);
    usleep(200000);
    int64_t t0 = proto_wall_ms();
    send_back_ok(pos, "g_sb", 0, 2, 409);
    proto_cmd *woke = NULL;
    uint8_t *wf = NULL;
    assert_int_equal(wire_recv(waiter, &woke, &wf), 0);
    assert_int_equal(woke->opaque, parked);
    assert_int_equal(woke->code, RS_SUCCESS);
    assert_true(proto_wall_ms() - t0 < 2000);
    proto_cmd_free(woke);
    free(wf);
    close_sock(waiter);

    e2e_reply r1;
    proto_record rec1;
    pull_one("%RETRY%g_sb", 0, &r1, &rec1);
    check_copy(&rec1, "%RETRY%g_sb", 1, &orig, msgid, "3");

    /* Retrying the retry: the origin stays the first message. */
    send_back_ok((uint64_t)rec1.physical_offset, "g_sb", 0, 2, 409);
    e2e_reply r2;
    proto_record rec2;
    pull_one("%RETRY%g_sb", 1, &r2, &rec2);
    check_copy(&rec2, "%RETRY%g_sb", 2, &orig, msgid, "4");

    /* reconsumeTimes 2 >= maxReconsumeTimes 2: dead letter, queue 0. */
    send_back_ok((uint64_t)rec2.physical_offset, "g_sb", 0, 2, 409);
    e2e_reply r3;
    proto_record rec3;
    pull_one("%DLQ%g_sb", 0, &r3, &rec3);
    check_copy(&rec3, "%DLQ%g_sb", 3, &orig, msgid, "0");
    e2e_reply tc = call(req_with(RC_GET_TOPIC_CONFIG, "topic", "%DLQ%g_sb"), NULL, 0);
    e2e_expect_code(&tc, RS_SUCCESS, NULL);
    json_t *j = e2e_body_json(&tc);
    assert_int_equal(json_integer_value(json_object_get(j, "perm")), 6);
    assert_int_equal(json_integer_value(json_object_get(j, "writeQueueNums")), 1);
    json_decref(j);
    e2e_reply_free(&tc);

    /* delayLevel < 0 goes straight to the DLQ. */
    send_back_ok(pos, "g_sb", -1, -1, 409);
    e2e_reply r4;
    proto_record rec4;
    pull_one("%DLQ%g_sb", 1, &r4, &rec4);
    check_copy(&rec4, "%DLQ%g_sb", 1, &orig, msgid, "0");

    e2e_reply_free(&ro);
    e2e_reply_free(&r1);
    e2e_reply_free(&r2);
    e2e_reply_free(&r3);
    e2e_reply_free(&r4);
}

static void test_send_back_group_limit(void **state)
{
    /* The group says retryMaxTimes 1; an old client's header limit is ignored. */
    const char *cfg = "{\"groupName\":\"g_lim\",\"retryMaxTimes\":1}";
    e2e_reply r = call(proto_cmd_request(RC_UPDATE_AND_CREATE_SUBSCRIPTIONGROUP), cfg, strlen(cfg));
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);
    uint64_t pos = send_one("SB_T", "lim-body", "TAGS\001TagS\002", NULL);
    send_back_ok(pos, "g_lim", 0, 0, 100); /* max 0 ignored below version 121 */
    e2e_reply rr;
    proto_record rec;
    pull_one("%RETRY%g_lim", 0, &rr, &rec);
    assert_int_equal(rec.reconsume_times, 1);
    send_back_ok((uint64_t)rec.physical_offset, "g_lim", 0, 5, 100);
    e2e_reply rd;
    proto_record dead;
    pull_one("%DLQ%g_lim", 0, &rd, &dead);
    assert_int_equal(dead.reconsume_times, 2);
    e2e_reply_free(&rr);
    e2e_reply_free(&rd);
}

static void test_send_back_refusals(void **state)
{
    e2e_reply r = send_back(999999999, "g_sb", 0, -1, 409);
    e2e_expect_code(&r, RS_SYSTEM_ERROR, "look message by offset failed, 999999999");
    e2e_reply_free(&r);
    proto_cmd *c = proto_cmd_request(RC_CONSUMER_SEND_MSG_BACK);
    proto_cmd_set_i64(c, "offset", 0);
    proto_cmd_set_i64(c, "delayLevel", 0);
    r = call(c, NULL, 0);
    e2e_expect_code(&r, RS_SYSTEM_ERROR, "the custom field <group> is null");
    e2e_reply_free(&r);
    c = proto_cmd_request(RC_CONSUMER_SEND_MSG_BACK);
    proto_cmd_set(c, "offset", "abc");
    proto_cmd_set(c, "group", "g_sb");
    proto_cmd_set_i64(c, "delayLevel", 0);
    r = call(c, NULL, 0);
    assert_int_equal(r.cmd->code, RS_SYSTEM_ERROR);
    assert_non_null(strstr(r.cmd->remark, "<offset>"));
    e2e_reply_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heartbeat_creates_group_and_retry_topic),
        cmocka_unit_test(test_membership_and_notify),
        cmocka_unit_test(test_subscription_rules),
        cmocka_unit_test(test_connection_lists),
        cmocka_unit_test(test_check_client_config),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_locks),
        cmocka_unit_test(test_send_back_retry_then_dlq),
        cmocka_unit_test(test_send_back_group_limit),
        cmocka_unit_test(test_send_back_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
