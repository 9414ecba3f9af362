/*
 * test_e2e_query: the broker's query requests against a real mqbroker with
 * an embedded name server and a fresh store, driven through liblsmq's
 * admin API and, where header fields matter, over the raw wire:
 *
 *  - QUERY_MESSAGE by key returns exactly the messages carrying that key
 *    as a KEYS word (not "k10" for "k1", not a unique key), by unique key
 *    exactly the message with that UNIQ_KEY; maxNum keeps the newest; the
 *    time range bounds the store time; refusals say why (unknown topic,
 *    end before begin, maxNum below 1, nothing found);
 *  - VIEW_MESSAGE_BY_ID by log position, and its not-found remark;
 *  - SEARCH_OFFSET_BY_TIMESTAMP: LOWER (or no boundaryType) the first
 *    offset stored at or after the time, UPPER the last at or before it,
 *    the max offset past the end;
 *  - QUERY_CONSUME_TIME_SPAN store times and delay per queue;
 *  - INVOKE_BROKER_TO_RESET_OFFSET for an offline group (committed in the
 *    store), isForce semantics, one queue with an explicit offset, range
 *    and unknown-group refusals, and the oneway RESET_CONSUMER_CLIENT_OFFSET
 *    an online consumer connection receives.
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
#include "lsmq_admin.h"
#include "e2e_procs.h"
#include "testsupport.h"
#include "wire.h"

#define TOPIC "QRY_T"
#define GROUP "QRY_G"
#define TIMEOUT_MS 5000
#define N_MSGS 4

static e2e_broker broker;
static int fd = -1;
static lsmq_admin *admin; /* the handle every admin call goes through */

/* What was sent: queue, offset, log position, store time, keys. */
typedef struct sent_msg {
    int queue;
    int64_t offset;
    int64_t log_position;
    int64_t store_ms;
    const char *keys;
    const char *uniq;
} sent_msg;

static sent_msg sent[N_MSGS] = {
    {0, 0, 0, 0, "k1 shared", "0A0000010000000000000000000000A0"},
    {1, 0, 0, 0, "k2 shared", "0A0000010000000000000000000000A1"},
    {0, 0, 0, 0, "k10", "0A0000010000000000000000000000A2"},
    {1, 0, 0, 0, "k1", "0A0000010000000000000000000000A3"},
};
static int64_t t_mid; /* after sent[2], before sent[3] */

/* The last admin error is `code` and its text contains `needle`. */
static void expect_last_error(int code, const char *needle)
{
    char text[512];
    int got = lsmq_admin_last_error(admin, text, sizeof text);
    if (got != code || (needle && !strstr(text, needle)))
        fail_msg("expected error code %d with \"%s\", got %d \"%s\"", code, needle ? needle : "",
                 got, text);
}

static void send_one(sent_msg *m)
{
    char props[256];
    snprintf(props, sizeof props, "KEYS\001%s\002UNIQ_KEY\001%s\002TAGS\001t\002", m->keys,
             m->uniq);
    e2e_reply r = e2e_call(fd, e2e_send_v2(TOPIC, m->queue, props), "body", 4);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    const char *id = proto_cmd_get(r.cmd, "msgId");
    proto_host h;
    uint64_t pos;
    assert_non_null(id);
    assert_int_equal(proto_msgid_decode(id, strlen(id), &h, &pos), 0);
    m->log_position = (int64_t)pos;
    m->offset = e2e_i64(r.cmd, "queueOffset");
    e2e_reply_free(&r);
}

/* Store time of a sent message, read back by position. */
static int64_t store_time_of(const sent_msg *m)
{
    lsmq_message **msgs = NULL;
    size_t n = 0;
    assert_int_equal(lsmq_admin_view_message(admin, broker.addr, m->log_position, TIMEOUT_MS, &msgs,
                                             &n), 0);
    assert_int_equal(n, 1);
    int64_t ts = lsmq_message_store_timestamp(msgs[0]);
    lsmq_messages_free(msgs, n);
    return ts;
}

static void wait_route(const char *topic)
{
    lsmq_admin_route *r = NULL;
    for (int i = 0; i < 250; i++) {
        if (lsmq_admin_get_route(admin, broker.namesrv, topic, TIMEOUT_MS, &r) == 0) {
            lsmq_admin_route_free(r);
            return;
        }
        usleep(20000);
    }
    fail_msg("no route for %s", topic);
}

static int setup(void **state)
{
    if (lsmq_admin_create(&admin) != 0 || e2e_broker_setup(&broker, "e2e-query", NULL, &fd) != 0)
        return -1;
    lsmq_admin_topic_config tc = {.topic = TOPIC, .read_queue_nums = 2, .write_queue_nums = 2,
                                  .perm = 6};
    if (lsmq_admin_create_topic(admin, broker.addr, &tc, TIMEOUT_MS) != 0)
        return -1;
    for (int i = 0; i < N_MSGS; i++) {
        if (i == 3) {
            usleep(30000);
            t_mid = proto_wall_ms();
            usleep(30000);
        }
        send_one(&sent[i]);
    }
    for (int i = 0; i < N_MSGS; i++)
        sent[i].store_ms = store_time_of(&sent[i]);
    /* A subscription group, so the offline group is known to the broker. */
    const char *cfg = "{\"groupName\":\"" GROUP "\"}";
    e2e_reply r = e2e_call(fd, proto_cmd_request(RC_UPDATE_AND_CREATE_SUBSCRIPTIONGROUP), cfg,
                           strlen(cfg));
    int ok = r.cmd->code == RS_SUCCESS;
    e2e_reply_free(&r);
    return ok ? 0 : -1;
}

static int teardown(void **state)
{
    lsmq_admin_destroy(admin);
    return e2e_broker_teardown(&broker, &fd);
}

/* ---- QUERY_MESSAGE ---------------------------------------------------------- */

/* Query one broker; the returned messages' log positions must be exactly `want` (in order). */
static void expect_query(const char *key, int unique, int32_t max_num, int64_t begin,
                         int64_t end, const int *want, size_t n_want)
{
    lsmq_admin_key_query q = {.topic = TOPIC, .key = key, .unique_key = unique,
                              .max_num = max_num, .begin_ms = begin, .end_ms = end};
    lsmq_message **msgs = NULL;
    size_t n = 0;
    int rc = lsmq_admin_query_message(admin, broker.addr, &q, TIMEOUT_MS, &msgs, &n);
    if (n_want == 0) {
        assert_int_equal(rc, LSMQ_ENOTFOUND);
        expect_last_error(RS_QUERY_NOT_FOUND,
                          "can not find message, maybe time range not correct");
        assert_int_equal(n, 0);
        return;
    }
    assert_int_equal(rc, 0);
    if (n != n_want)
        fail_msg("key %s: %zu messages, wanted %zu", key, n, n_want);
    for (size_t i = 0; i < n; i++) {
        const sent_msg *m = &sent[want[i]];
        assert_int_equal(lsmq_message_commit_log_offset(msgs[i]), m->log_position);
        assert_string_equal(lsmq_message_keys(msgs[i]), m->keys);
        assert_string_equal(lsmq_message_id(msgs[i]), m->uniq);
        assert_int_equal(lsmq_message_queue_offset(msgs[i]), m->offset);
    }
    lsmq_messages_free(msgs, n);
}

static void test_query_by_key(void **state)
{
    expect_query("k1", 0, 64, 0, INT64_MAX, (const int[]){0, 3}, 2);
    expect_query("shared", 0, 64, 0, INT64_MAX, (const int[]){0, 1}, 2);
    expect_query("k10", 0, 64, 0, INT64_MAX, (const int[]){2}, 1);
    expect_query("k2", 0, 64, 0, INT64_MAX, (const int[]){1}, 1);
    /* maxNum keeps the newest */
    expect_query("k1", 0, 1, 0, INT64_MAX, (const int[]){3}, 1);
    /* the time range bounds the store time, inclusively */
    expect_query("k1", 0, 64, t_mid, INT64_MAX, (const int[]){3}, 1);
    expect_query("k1", 0, 64, 0, t_mid, (const int[]){0}, 1);
    expect_query("k1", 0, 64, sent[0].store_ms, sent[0].store_ms, (const int[]){0}, 1);
    /* a unique key is not a KEYS word, nor the other way round */
    expect_query(sent[1].uniq, 0, 64, 0, INT64_MAX, NULL, 0);
    expect_query("nope", 0, 64, 0, INT64_MAX, NULL, 0);
}

static void test_query_by_unique_key(void **state)
{
    for (int i = 0; i < N_MSGS; i++)
        expect_query(sent[i].uniq, 1, 64, 0, INT64_MAX, (const int[]){i}, 1);
    /* maxNum is ignored for unique keys (the broker takes 32) */
    expect_query(sent[2].uniq, 1, 0, 0, INT64_MAX, (const int[]){2}, 1);
    expect_query("k1", 1, 64, 0, INT64_MAX, NULL, 0);
    /* the route-wide call filters the same way */
    lsmq_admin_key_query q = {.topic = TOPIC, .key = sent[3].uniq, .unique_key = 1,
                              .max_num = 32, .begin_ms = 0, .end_ms = INT64_MAX};
    lsmq_message **msgs = NULL;
    size_t n = 0;
    wait_route(TOPIC);
    assert_int_equal(lsmq_admin_query_message_by_key(admin, broker.namesrv, &q, TIMEOUT_MS, &msgs,
                                                     &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(lsmq_message_id(msgs[0]), sent[3].uniq);
    assert_string_equal(lsmq_message_broker_name(msgs[0]), "broker-a");
    lsmq_messages_free(msgs, n);
}

static proto_cmd *query_cmd(const char *topic, const char *key, int max, int64_t begin,
                            int64_t end)
{
    proto_cmd *c = proto_cmd_request(RC_QUERY_MESSAGE);
    proto_cmd_set(c, "topic", topic);
    proto_cmd_set(c, "key", key);
    proto_cmd_set_i64(c, "maxNum", max);
    proto_cmd_set_i64(c, "beginTimestamp", begin);
    proto_cmd_set_i64(c, "endTimestamp", end);
    return c;
}

static void test_query_wire(void **state)
{
    e2e_reply r = e2e_call(fd, query_cmd(TOPIC, "shared", 32, 0, INT64_MAX), NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    proto_record recs[8];
    assert_int_equal(e2e_records(r.cmd->body, r.cmd->body_len, recs, 8), 2);
    assert_int_equal(recs[0].physical_offset, sent[0].log_position);
    assert_int_equal(recs[1].physical_offset, sent[1].log_position);
    /* the newest indexed message: sent[3] */
    assert_int_equal(e2e_i64(r.cmd, "indexLastUpdatePhyoffset"), sent[3].log_position);
    assert_int_equal(e2e_i64(r.cmd, "indexLastUpdateTimestamp"), sent[3].store_ms);
    e2e_reply_free(&r);

    r = e2e_call(fd, query_cmd("QRY_NONE", "k1", 32, 0, INT64_MAX), NULL, 0);
    e2e_expect_code(&r, RS_TOPIC_NOT_EXIST, "topic[QRY_NONE] not exist");
    e2e_reply_free(&r);
    r = e2e_call(fd, query_cmd(TOPIC, "k1", 32, 100, 99), NULL, 0);
    e2e_expect_code(&r, RS_INVALID_PARAMETER,
                    "endTimestamp 99 is before beginTimestamp 100: nothing can match");
    e2e_reply_free(&r);
    r = e2e_call(fd, query_cmd(TOPIC, "k1", 0, 0, INT64_MAX), NULL, 0);
    e2e_expect_code(&r, RS_INVALID_PARAMETER, "maxNum must be at least 1, not 0");
    e2e_reply_free(&r);
    proto_cmd *c = query_cmd(TOPIC, "k1", 0, 0, INT64_MAX);
    proto_cmd_set(c, "_UNIQUE_KEY_QUERY", "true"); /* maxNum does not count then */
    r = e2e_call(fd, c, NULL, 0);
    e2e_expect_code(&r, RS_QUERY_NOT_FOUND, "can not find message, maybe time range not correct");
    assert_true(e2e_i64(r.cmd, "indexLastUpdatePhyoffset") >= 0);
    e2e_reply_free(&r);
    c = proto_cmd_request(RC_QUERY_MESSAGE);
    proto_cmd_set(c, "topic", TOPIC);
    r = e2e_call(fd, c, NULL, 0);
    e2e_expect_code(&r, RS_SYSTEM_ERROR, "the custom field <key> is null");
    e2e_reply_free(&r);
}

/* ---- VIEW_MESSAGE_BY_ID -------------------------------------------------------- */

static void test_view_by_id(void **state)
{
    lsmq_message **msgs = NULL;
    size_t n = 0;
    char id[PROTO_MSGID_V6_LEN + 1];
    proto_host h = {.ip = {127, 0, 0, 1}, .port = (uint32_t)broker.proc.port};
    proto_msgid_encode(&h, (uint64_t)sent[2].log_position, id);
    assert_int_equal(lsmq_admin_view_message_by_id(admin, id, TIMEOUT_MS, &msgs, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(lsmq_message_offset_id(msgs[0]), id);
    assert_string_equal(lsmq_message_property(msgs[0], "UNIQ_KEY"), sent[2].uniq);
    lsmq_messages_free(msgs, n);

    int64_t bad = sent[3].log_position + 1;
    assert_int_equal(lsmq_admin_view_message(admin, broker.addr, bad, TIMEOUT_MS, &msgs, &n),
                     LSMQ_EIO);
    char remark[96];
    snprintf(remark, sizeof remark, "can not find message by the offset, %lld", (long long)bad);
    expect_last_error(RS_SYSTEM_ERROR, remark);
    assert_int_equal(lsmq_admin_view_message_by_id(admin, "not-an-id", TIMEOUT_MS, &msgs, &n),
                     LSMQ_EINVAL);
}

/* ---- SEARCH_OFFSET_BY_TIMESTAMP ------------------------------------------------------- */

static int64_t search(int queue, int64_t ts, int upper)
{
    int64_t off = -1;
    assert_int_equal(lsmq_admin_search_offset(admin, broker.addr, TOPIC, queue, ts, upper,
                                              TIMEOUT_MS, &off), 0);
    return off;
}

static void test_search_offset(void **state)
{
    /* queue 1 holds sent[1] (offset 0) and sent[3] (offset 1), t_mid between them */
    assert_int_equal(search(1, t_mid, 0), 1);
    assert_int_equal(search(1, t_mid, 1), 0);
    assert_int_equal(search(1, sent[1].store_ms, 0), 0);
    assert_int_equal(search(1, sent[3].store_ms, 1), 1);
    assert_int_equal(search(1, sent[3].store_ms, 0), 1);
    /* before everything, after everything */
    assert_int_equal(search(1, 0, 0), 0);
    assert_int_equal(search(1, sent[3].store_ms + 60000, 0), 2);
    assert_int_equal(search(1, sent[3].store_ms + 60000, 1), 1);
    /* no boundaryType field at all means LOWER */
    proto_cmd *c = proto_cmd_request(RC_SEARCH_OFFSET_BY_TIMESTAMP);
    proto_cmd_set(c, "topic", TOPIC);
    proto_cmd_set_i64(c, "queueId", 1);
    proto_cmd_set_i64(c, "timestamp", t_mid);
    e2e_reply r = e2e_call(fd, c, NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    assert_int_equal(e2e_i64(r.cmd, "offset"), 1);
    e2e_reply_free(&r);
}

/* ---- QUERY_CONSUME_TIME_SPAN --------------------------------------------------------- */

static void commit(const char *group, int queue, int64_t offset)
{
    proto_cmd *c = proto_cmd_request(RC_UPDATE_CONSUMER_OFFSET);
    proto_cmd_set(c, "consumerGroup", group);
    proto_cmd_set(c, "topic", TOPIC);
    proto_cmd_set_i64(c, "queueId", queue);
    proto_cmd_set_i64(c, "commitOffset", offset);
    e2e_reply r = e2e_call(fd, c, NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);
}

static int64_t committed(const char *group, int queue)
{
    proto_cmd *c = proto_cmd_request(RC_QUERY_CONSUMER_OFFSET);
    proto_cmd_set(c, "consumerGroup", group);
    proto_cmd_set(c, "topic", TOPIC);
    proto_cmd_set_i64(c, "queueId", queue);
    e2e_reply r = e2e_call(fd, c, NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    int64_t off = e2e_i64(r.cmd, "offset");
    e2e_reply_free(&r);
    return off;
}

static void test_consume_time_span(void **state)
{
    lsmq_admin_time_spans *s = NULL;
    commit(GROUP, 0, 1);
    int64_t before = proto_wall_ms();
    assert_int_equal(lsmq_admin_query_consume_time_span(admin, broker.addr, TOPIC, GROUP,
                                                        TIMEOUT_MS, &s), 0);
    assert_int_equal(s->n_queues, 2);
    const lsmq_admin_time_span *q0 = &s->queues[0], *q1 = &s->queues[1];
    assert_int_equal(q0->mq.queue_id, 0);
    assert_string_equal(q0->mq.broker_name, "broker-a");
    assert_int_equal(q0->min_timestamp, sent[0].store_ms);
    assert_int_equal(q0->max_timestamp, sent[2].store_ms);
    assert_int_equal(q0->consume_timestamp, sent[0].store_ms); /* message before offset 1 */
    assert_true(q0->delay_ms >= before - sent[2].store_ms);    /* next: sent[2] */
    /* queue 1 has no commit: consume time is the oldest message's */
    assert_int_equal(q1->min_timestamp, sent[1].store_ms);
    assert_int_equal(q1->max_timestamp, sent[3].store_ms);
    assert_int_equal(q1->consume_timestamp, sent[1].store_ms);
    lsmq_admin_time_spans_free(s);
    s = NULL;

    assert_int_equal(lsmq_admin_query_consume_time_span(admin, broker.addr, "QRY_NONE", GROUP,
                                                        TIMEOUT_MS, &s),
                     LSMQ_ENOTFOUND);
    expect_last_error(RS_TOPIC_NOT_EXIST, "topic[QRY_NONE] not exist");
    assert_int_equal(lsmq_admin_query_consume_time_span(admin, broker.addr, TOPIC, "QRY_NOBODY",
                                                        TIMEOUT_MS, &s),
                     LSMQ_EIO);
    expect_last_error(RS_SUBSCRIPTION_GROUP_NOT_EXIST, "Group QRY_NOBODY does not exist");
    assert_null(s);
}

/* ---- INVOKE_BROKER_TO_RESET_OFFSET ---------------------------------------------------- */

/* Reset and check the answer's offsets (queue 0, queue 1; -1: not in the answer). */
static void expect_reset(const char *group, int64_t ts, int force, int queue, int64_t offset,
                         int64_t want0, int64_t want1)
{
    lsmq_admin_reset r = {.topic = TOPIC, .group = group, .timestamp_ms = ts, .force = force,
                          .queue_id = queue, .offset = offset};
    lsmq_admin_reset_result *res = NULL;
    assert_int_equal(lsmq_admin_reset_offset(admin, broker.addr, &r, TIMEOUT_MS, &res), 0);
    size_t want_n = (want0 >= 0) + (want1 >= 0);
    assert_int_equal(res->n_queues, want_n);
    for (size_t i = 0; i < res->n_queues; i++) {
        int64_t want = res->queues[i].mq.queue_id == 0 ? want0 : want1;
        assert_string_equal(res->queues[i].mq.topic, TOPIC);
        assert_string_equal(res->queues[i].mq.broker_name, "broker-a");
        assert_int_equal(res->queues[i].offset, want);
    }
    lsmq_admin_reset_result_free(res);
    /* committed in the store by the time the broker answered */
    if (want0 >= 0)
        assert_int_equal(committed(group, 0), want0);
    if (want1 >= 0)
        assert_int_equal(committed(group, 1), want1);
}

static void test_reset_offline_group(void **state)
{
    /* to t_mid: queue 0 holds sent[0] and sent[2], both older -> max (2);
       queue 1 holds sent[1] (older) and sent[3] (newer) -> 1 */
    expect_reset(GROUP, t_mid, 1, -1, -1, 2, 1);
    /* without force a queue never moves forward: -1 (max) keeps 2 and 1 */
    expect_reset(GROUP, -1, 0, -1, -1, 2, 1);
    /* ... but moves back */
    expect_reset(GROUP, 0, 0, -1, -1, 0, 0);
    /* with force, forward to the max */
    expect_reset(GROUP, -1, 1, -1, -1, 2, 2);
    /* one queue, an explicit offset */
    expect_reset(GROUP, 0, 1, 1, 1, -1, 1);
    assert_int_equal(committed(GROUP, 0), 2);
    /* one queue by time */
    expect_reset(GROUP, sent[3].store_ms, 1, 1, -1, -1, 1);

    lsmq_admin_reset r = {.topic = TOPIC, .group = GROUP, .timestamp_ms = 0, .force = 1,
                          .queue_id = 1, .offset = 5};
    lsmq_admin_reset_result *res = NULL;
    assert_int_equal(lsmq_admin_reset_offset(admin, broker.addr, &r, TIMEOUT_MS, &res), LSMQ_EIO);
    expect_last_error(RS_SYSTEM_ERROR, "Target offset 5 not in consume queue range [0-2]");
    r.group = "QRY_NOBODY";
    r.queue_id = -1;
    r.offset = -1;
    assert_int_equal(lsmq_admin_reset_offset(admin, broker.addr, &r, TIMEOUT_MS, &res), LSMQ_EIO);
    expect_last_error(RS_SUBSCRIPTION_GROUP_NOT_EXIST, "Group QRY_NOBODY does not exist");
    r.group = GROUP;
    r.topic = "QRY_NONE";
    assert_int_equal(lsmq_admin_reset_offset(admin, broker.addr, &r, TIMEOUT_MS, &res),
                     LSMQ_ENOTFOUND);
    expect_last_error(RS_TOPIC_NOT_EXIST, "Topic QRY_NONE does not exist");
    assert_null(res);
}

static void test_reset_online_consumer(void **state)
{
    int member = wire_connect(broker.proc.port, 5000);
    assert_true(member >= 0);
    const char *hb =
        "{\"clientID\":\"127.0.0.1@query\",\"consumerDataSet\":[{\"groupName\":\"QRY_LIVE\","
        "\"consumeType\":\"CONSUME_PASSIVELY\",\"messageModel\":\"CLUSTERING\","
        "\"consumeFromWhere\":\"CONSUME_FROM_LAST_OFFSET\",\"subscriptionDataSet\":[{\"topic\":"
        "\"" TOPIC "\",\"subString\":\"*\",\"subVersion\":1}],\"unitMode\":false}],"
        "\"producerDataSet\":[]}";
    e2e_reply r = e2e_call(member, proto_cmd_request(RC_HEART_BEAT), hb, strlen(hb));
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);

    expect_reset("QRY_LIVE", -1, 1, -1, -1, 2, 2);

    /* The member connection gets the oneway reset (after the ids-changed notice). */
    proto_cmd *n = NULL;
    uint8_t *frame = NULL;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(wire_recv(member, &n, &frame), 0);
        if (n->code == RC_RESET_CONSUMER_CLIENT_OFFSET)
            break;
        proto_cmd_free(n);
        free(frame);
        n = NULL;
        frame = NULL;
    }
    assert_non_null(n);
    assert_true(proto_cmd_is_oneway(n));
    assert_string_equal(proto_cmd_get(n, "topic"), TOPIC);
    assert_string_equal(proto_cmd_get(n, "group"), "QRY_LIVE");
    assert_string_equal(proto_cmd_get(n, "timestamp"), "-1");
    assert_string_equal(proto_cmd_get(n, "isForce"), "true");
    char *json = NULL;
    assert_int_equal(lsmq_admin_fastjson_to_json((const char *)n->body, n->body_len, &json), 0);
    json_t *body = json_loads(json, 0, NULL);
    assert_non_null(body);
    json_t *table = json_object_get(body, "offsetTable");
    assert_int_equal(json_object_size(table), 2);
    const char *key;
    json_t *v;
    json_object_foreach(table, key, v) {
        assert_non_null(strstr(key, "\"topic\":\"" TOPIC "\""));
        assert_int_equal(json_integer_value(v), 2);
    }
    json_decref(body);
    free(json);
    proto_cmd_free(n);
    free(frame);
    close(member);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_by_key),
        cmocka_unit_test(test_query_by_unique_key),
        cmocka_unit_test(test_query_wire),
        cmocka_unit_test(test_view_by_id),
        cmocka_unit_test(test_search_offset),
        cmocka_unit_test(test_consume_time_span),
        cmocka_unit_test(test_reset_offline_group),
        cmocka_unit_test(test_reset_online_consumer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
