/*
 * test_e2e_delay: delivery in time through a real mqbroker, with raw
 * remoting frames. The broker runs with messageDelayLevel "1s 2s 3s 4s 5s
 * 6s" and timerMaxDelaySec 60 so every wait is a few seconds:
 *
 *  - a DELAY level: SEND_OK with the pending record's offset id and queue
 *    offset 0; nothing to pull before the due time; a pull parked on the
 *    queue is woken when the message is moved there (never before its due
 *    time, by the broker's clock, and soon after); the delivered record
 *    keeps its UNIQ_KEY and carries DELAY, REAL_TOPIC and REAL_QID, with a
 *    new offset id and the store time of its delivery;
 *  - TIMER_DELIVER_MS, TIMER_DELAY_MS and ali-ons' __STARTDELIVERTIME the
 *    same way (TIMER_OUT_MS set), a due time already past delivered at
 *    once, a level over the highest clamped;
 *  - refusals: past timerMaxDelaySec (upstream's code and remark), a
 *    non-number, a delayed batch; nothing of them stored;
 *  - a pending message found by VIEW_MESSAGE_BY_ID and by unique key,
 *    shown in SCHEDULE_TOPIC_XXXX (queue level - 1) or rmq_sys_wheel_timer,
 *    and counted by LSMQ_GET_TIMER_STATUS;
 *  - CONSUMER_SEND_MSG_BACK: delay level 3 + reconsumeTimes before the
 *    retry is delivered, the dead-letter topic at once past
 *    maxReconsumeTimes, and a group's EXPONENTIAL retry policy instead of
 *    the levels; a client's re-publish to %RETRY% with DELAY is delayed,
 *    one past the group's retryMaxTimes, or of a group holding queue locks
 *    (an orderly consumer), goes to the DLQ at once;
 *  - a dead letter sent back to its original topic through the admin API
 *    (lsmq_admin_resend_message): at once, without its retry pairs;
 *  - a bad messageDelayLevel stops mqbroker at start with a sentence.
 * The broker is stopped with SIGTERM and must exit 0 (sanitizers clean).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "e2e_msg.h"
#include "e2e_procs.h"
#include "e2e_reply.h"
#include "lsmq_admin.h"
#include "testsupport.h"
#include "wire.h"

/* How late a due message may reach a parked pull here (sanitizers, shared machine). */
#define LATE_MAX_MS 1500
#define MAX_DELAY_SEC 60

static e2e_broker broker;
static int fd = -1;

static e2e_reply call(proto_cmd *req, const void *body, size_t len)
{
    return e2e_call(fd, req, body, len);
}

static int setup(void **state)
{
    char max_delay[64];
    snprintf(max_delay, sizeof max_delay, "--timerMaxDelaySec=%d", MAX_DELAY_SEC);
    const char *extra[] = {"--messageDelayLevel=1s 2s 3s 4s 5s 6s", max_delay, NULL};
    return e2e_broker_setup(&broker, "e2e-delay", extra, &fd);
}

static int teardown(void **state)
{
    return e2e_broker_teardown(&broker, &fd);
}

/* Send body with props to topic/queue; SEND_OK expected; the pending record's position. */
static uint64_t send_delayed(const char *topic, int queue, const char *body, const char *props)
{
    e2e_reply r = call(e2e_send_v2(topic, queue, props), body, strlen(body));
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    const char *id = proto_cmd_get(r.cmd, "msgId");
    assert_non_null(id);
    proto_host h;
    uint64_t pos = 0;
    assert_int_equal(proto_msgid_decode(id, strlen(id), &h, &pos), 0);
    assert_int_equal(h.port, broker.proc.port);
    assert_int_equal(e2e_i64(r.cmd, "queueId"), queue);
    e2e_reply_free(&r);
    return pos;
}

static void expect_nothing_at(const char *topic, int queue, int64_t offset)
{
    e2e_reply p = call(e2e_pull("g_peek", topic, queue, offset, 8, 0, 0, NULL), NULL, 0);
    if (p.cmd->code == RS_SUCCESS)
        fail_msg("%s/%d has a message at %lld already", topic, queue, (long long)offset);
    e2e_reply_free(&p);
}

/*
 * Park pulls on topic/queue at offset until a record arrives (10 s at
 * most); copy it into *rec (its buffer stays in *keep) and return the wall
 * time it arrived.
 */
static int64_t await_record(const char *topic, int queue, int64_t offset, e2e_reply *keep,
                            proto_record *rec)
{
    int64_t deadline = proto_mono_ms() + 10000;
    while (proto_mono_ms() < deadline) {
        *keep = call(e2e_pull("g_wait", topic, queue, offset, 1,
                              E2E_PULL_SUSPEND | E2E_PULL_SUBSCRIPTION, 5000, "*"),
                     NULL, 0);
        int64_t now = proto_wall_ms();
        if (keep->cmd->code == RS_SUCCESS) {
            assert_int_equal(e2e_records(keep->cmd->body, keep->cmd->body_len, rec, 1), 1);
            return now;
        }
        e2e_reply_free(keep);
    }
    fail_msg("nothing arrived at %s/%d offset %lld", topic, queue, (long long)offset);
    return 0;
}

static void expect_prop(const proto_record *r, const char *name, const char *want)
{
    char v[256];
    if (!e2e_prop(r, name, v, sizeof v))
        fail_msg("record has no %s", name);
    assert_string_equal(v, want);
}

/* The delivery came when due, not before, and soon after. */
static void check_timing(int64_t sent_ms, int64_t arrived_ms, const proto_record *r,
                         int64_t delay_ms)
{
    if (r->store_timestamp < sent_ms + delay_ms)
        fail_msg("delivered early: stored %lld ms after the send, due after %lld",
                 (long long)(r->store_timestamp - sent_ms), (long long)delay_ms);
    if (arrived_ms > sent_ms + delay_ms + LATE_MAX_MS)
        fail_msg("delivered %lld ms after the send, due after %lld",
                 (long long)(arrived_ms - sent_ms), (long long)delay_ms);
    printf("  due after %lld ms, stored %lld ms after the send, at the consumer after %lld\n",
           (long long)delay_ms, (long long)(r->store_timestamp - sent_ms),
           (long long)(arrived_ms - sent_ms));
    char out_ms[32];
    if (e2e_prop(r, "TIMER_OUT_MS", out_ms, sizeof out_ms)) /* the broker's own due time */
        printf("  stored %lld ms after its due time\n",
               (long long)(r->store_timestamp - strtoll(out_ms, NULL, 10)));
}

/* ------------------------------------------------------------------ */

static void test_delay_level(void **state)
{
    const char *uniq = "0A0000010000000000000000000000D1";
    char props[256];
    snprintf(props, sizeof props, "UNIQ_KEY\001%s\002KEYS\001dk1\002DELAY\0012\002", uniq);
    int64_t t0 = proto_wall_ms();
    uint64_t pending = send_delayed("DT_LEVEL", 1, "level-2", props);
    expect_nothing_at("DT_LEVEL", 1, 0);

    e2e_reply keep;
    proto_record rec;
    int64_t arrived = await_record("DT_LEVEL", 1, 0, &keep, &rec);
    check_timing(t0, arrived, &rec, 2000);
    char v[64];
    assert_string_equal(e2e_body(&rec, v, sizeof v), "level-2");
    assert_int_equal(rec.queue_id, 1);
    assert_int_equal(rec.queue_offset, 0);
    assert_true((uint64_t)rec.physical_offset != pending); /* a record of its own */
    expect_prop(&rec, "UNIQ_KEY", uniq);
    expect_prop(&rec, "DELAY", "2");
    expect_prop(&rec, "REAL_TOPIC", "DT_LEVEL");
    expect_prop(&rec, "REAL_QID", "1");
    expect_prop(&rec, "KEYS", "dk1");
    e2e_reply_free(&keep);
    /* Delivered once. */
    expect_nothing_at("DT_LEVEL", 1, 1);

    /* A level over the highest is clamped to it (6 s here): shown as DELAY=6 while pending. */
    pending = send_delayed("DT_LEVEL", 2, "level-99", "DELAY\00199\002");
    proto_cmd *c = proto_cmd_request(RC_VIEW_MESSAGE_BY_ID);
    proto_cmd_set_i64(c, "offset", (int64_t)pending);
    e2e_reply r = call(c, NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    assert_int_equal(e2e_records(r.cmd->body, r.cmd->body_len, &rec, 1), 1);
    expect_prop(&rec, "DELAY", "6");
    assert_int_equal(rec.queue_id, 5);
    e2e_reply_free(&r);
}

static void test_timer_properties(void **state)
{
    char props[256];
    e2e_reply keep;
    proto_record rec;
    char want[32];

    int64_t t0 = proto_wall_ms();
    int64_t due = t0 + 1500;
    snprintf(props, sizeof props, "TIMER_DELIVER_MS\001%lld\002", (long long)due);
    send_delayed("DT_TIMER", 0, "deliver-ms", props);
    expect_nothing_at("DT_TIMER", 0, 0);
    int64_t arrived = await_record("DT_TIMER", 0, 0, &keep, &rec);
    check_timing(t0, arrived, &rec, 1500);
    assert_true(rec.store_timestamp >= due);
    snprintf(want, sizeof want, "%lld", (long long)due);
    expect_prop(&rec, "TIMER_OUT_MS", want);
    expect_prop(&rec, "TIMER_DELIVER_MS", want);
    expect_prop(&rec, "REAL_TOPIC", "DT_TIMER");
    expect_prop(&rec, "REAL_QID", "0");
    e2e_reply_free(&keep);

    t0 = proto_wall_ms();
    send_delayed("DT_TIMER", 1, "delay-ms", "TIMER_DELAY_MS\0011200\002");
    arrived = await_record("DT_TIMER", 1, 0, &keep, &rec);
    check_timing(t0, arrived, &rec, 1200);
    e2e_reply_free(&keep);

    t0 = proto_wall_ms();
    snprintf(props, sizeof props, "__STARTDELIVERTIME\001%lld\002", (long long)(t0 + 1000));
    send_delayed("DT_TIMER", 2, "ons", props);
    arrived = await_record("DT_TIMER", 2, 0, &keep, &rec);
    check_timing(t0, arrived, &rec, 1000);
    e2e_reply_free(&keep);

    /* A due time already past: stored at once, no timer pairs added. */
    snprintf(props, sizeof props, "TIMER_DELIVER_MS\001%lld\002", (long long)(t0 - 60000));
    send_delayed("DT_TIMER", 3, "past", props);
    e2e_reply p = call(e2e_pull("g_peek", "DT_TIMER", 3, 0, 8, 0, 0, NULL), NULL, 0);
    e2e_expect_code(&p, RS_SUCCESS, NULL);
    assert_int_equal(e2e_records(p.cmd->body, p.cmd->body_len, &rec, 1), 1);
    char v[64];
    assert_false(e2e_prop(&rec, "TIMER_OUT_MS", v, sizeof v));
    e2e_reply_free(&p);
}

static void expect_refused(const char *props, int code, const char *remark_part)
{
    e2e_reply r = call(e2e_send_v2("DT_REFUSED", 0, props), "x", 1);
    e2e_expect_code_has(&r, code, remark_part);
    e2e_reply_free(&r);
}

static void test_refusals(void **state)
{
    char props[128], remark[160];
    snprintf(remark, sizeof remark,
             "timer message illegal, the delay time should not be bigger than the max delay "
             "%dms",
             MAX_DELAY_SEC * 1000);
    snprintf(props, sizeof props, "TIMER_DELAY_SEC\001%d\002", MAX_DELAY_SEC + 1);
    expect_refused(props, RS_MESSAGE_ILLEGAL, remark);
    snprintf(props, sizeof props, "TIMER_DELIVER_MS\001%lld\002",
             (long long)(proto_wall_ms() + (MAX_DELAY_SEC + 5) * 1000));
    expect_refused(props, RS_MESSAGE_ILLEGAL, remark);
    expect_refused("TIMER_DELAY_MS\001soon\002", RS_MESSAGE_ILLEGAL, "is not a number");
    expect_refused("DELAY\001two\002", RS_MESSAGE_ILLEGAL, "invalid DELAY property");

    /* A batch whose header asks for a delay. */
    char body[32] = "b";
    proto_batch_entry e = {.body = (const uint8_t *)body, .body_len = 1, .props = "",
                           .props_len = 0};
    uint8_t buf[256];
    long w = proto_batch_encode_entry(&e, buf, sizeof buf);
    assert_true(w > 0);
    proto_cmd *c = e2e_send_v2("DT_REFUSED", 0, "DELAY\0011\002");
    c->code = RC_SEND_BATCH_MESSAGE;
    proto_cmd_set(c, "m", "true");
    e2e_reply r = call(c, buf, (size_t)w);
    e2e_expect_code_has(&r, RS_MESSAGE_ILLEGAL, "a batch cannot be delayed");
    e2e_reply_free(&r);

    /* Nothing refused was stored: the topic was never even created. */
    e2e_reply p = call(e2e_pull("g_peek", "DT_REFUSED", 0, 0, 8, 0, 0, NULL), NULL, 0);
    e2e_expect_code_has(&p, RS_TOPIC_NOT_EXIST, NULL);
    e2e_reply_free(&p);
}

/* The record of a one-record answer; checks where it says the message waits. */
static void expect_shown_pending(const e2e_reply *r, const char *sys_topic, int queue,
                                 const char *real_topic)
{
    e2e_expect_code(r, RS_SUCCESS, NULL);
    proto_record rec;
    assert_int_equal(e2e_records(r->cmd->body, r->cmd->body_len, &rec, 1), 1);
    assert_int_equal(rec.topic_len, strlen(sys_topic));
    assert_memory_equal(rec.topic, sys_topic, rec.topic_len);
    assert_int_equal(rec.queue_id, queue);
    expect_prop(&rec, "REAL_TOPIC", real_topic);
    expect_prop(&rec, "REAL_QID", "0");
}

static void test_query_pending(void **state)
{
    const char *uniq = "0A0000010000000000000000000000D2";
    char props[256];
    snprintf(props, sizeof props, "UNIQ_KEY\001%s\002KEYS\001pk\002DELAY\0016\002", uniq);
    uint64_t level_pos = send_delayed("DT_QUERY", 0, "pending-level", props);
    uint64_t timer_pos = send_delayed("DT_QUERY", 0, "pending-timer", "TIMER_DELAY_SEC\00130\002");

    proto_cmd *c = proto_cmd_request(RC_VIEW_MESSAGE_BY_ID);
    proto_cmd_set_i64(c, "offset", (int64_t)level_pos);
    e2e_reply r = call(c, NULL, 0);
    expect_shown_pending(&r, "SCHEDULE_TOPIC_XXXX", 5, "DT_QUERY");
    e2e_reply_free(&r);

    c = proto_cmd_request(RC_VIEW_MESSAGE_BY_ID);
    proto_cmd_set_i64(c, "offset", (int64_t)timer_pos);
    r = call(c, NULL, 0);
    expect_shown_pending(&r, "rmq_sys_wheel_timer", 0, "DT_QUERY");
    e2e_reply_free(&r);

    for (int unique = 1; unique >= 0; unique--) { /* by unique key, then by KEYS */
        c = proto_cmd_request(RC_QUERY_MESSAGE);
        proto_cmd_set(c, "topic", "DT_QUERY");
        proto_cmd_set(c, "key", unique ? uniq : "pk");
        proto_cmd_set_i64(c, "maxNum", 32);
        proto_cmd_set_i64(c, "beginTimestamp", 0);
        proto_cmd_set_i64(c, "endTimestamp", INT64_MAX);
        if (unique)
            proto_cmd_set(c, "_UNIQUE_KEY_QUERY", "true");
        r = call(c, NULL, 0);
        expect_shown_pending(&r, "SCHEDULE_TOPIC_XXXX", 5, "DT_QUERY");
        e2e_reply_free(&r);
    }

    /* The counts: this topic, and every topic with pending messages. */
    c = proto_cmd_request(RC_LSMQ_GET_TIMER_STATUS);
    proto_cmd_set(c, "topic", "DT_QUERY");
    r = call(c, NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    json_t *j = e2e_body_json(&r);
    json_t *t = json_array_get(json_object_get(j, "topics"), 0);
    assert_string_equal(json_string_value(json_object_get(t, "topic")), "DT_QUERY");
    assert_int_equal(json_integer_value(json_object_get(t, "pending")), 2);
    assert_true(json_integer_value(json_object_get(j, "pendingTotal")) >= 2);
    json_decref(j);
    e2e_reply_free(&r);
    r = call(proto_cmd_request(RC_LSMQ_GET_TIMER_STATUS), NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    j = e2e_body_json(&r);
    json_t *list = json_object_get(j, "topics");
    bool listed = false;
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *o = json_array_get(list, i);
        assert_true(json_integer_value(json_object_get(o, "pending")) > 0);
        listed |= strcmp(json_string_value(json_object_get(o, "topic")), "DT_QUERY") == 0;
    }
    assert_true(listed);
    json_decref(j);
    e2e_reply_free(&r);
    c = proto_cmd_request(RC_LSMQ_GET_TIMER_STATUS);
    proto_cmd_set(c, "topic", "DT_NO_SUCH_TOPIC");
    r = call(c, NULL, 0);
    e2e_expect_code_has(&r, RS_TOPIC_NOT_EXIST, NULL);
    e2e_reply_free(&r);
}

static void send_back_ok(uint64_t offset, const char *group, int delay, int max)
{
    proto_cmd *c = proto_cmd_request(RC_CONSUMER_SEND_MSG_BACK);
    c->version = 409;
    proto_cmd_set_i64(c, "offset", (int64_t)offset);
    proto_cmd_set(c, "group", group);
    proto_cmd_set_i64(c, "delayLevel", delay);
    if (max >= 0)
        proto_cmd_set_i64(c, "maxReconsumeTimes", max);
    proto_cmd_set_bool(c, "unitMode", 0);
    e2e_reply r = call(c, NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);
}

/* Store a plain message and read it back: its log position. */
static uint64_t stored_plain(const char *topic, const char *body)
{
    send_delayed(topic, 0, body, "TAGS\001TagB\002");
    e2e_reply keep;
    proto_record rec;
    await_record(topic, 0, 0, &keep, &rec);
    uint64_t pos = (uint64_t)rec.physical_offset;
    e2e_reply_free(&keep);
    return pos;
}

static void test_send_back_backoff_and_dlq(void **state)
{
    uint64_t pos = stored_plain("DT_SB", "fails");
    int64_t t0 = proto_wall_ms();
    send_back_ok(pos, "g_dt", 0, 1);
    expect_nothing_at("%RETRY%g_dt", 0, 0);
    e2e_reply keep;
    proto_record rec;
    int64_t arrived = await_record("%RETRY%g_dt", 0, 0, &keep, &rec);
    check_timing(t0, arrived, &rec, 3000); /* level 3 + reconsumeTimes 0 */
    assert_int_equal(rec.reconsume_times, 1);
    expect_prop(&rec, "DELAY", "3");
    expect_prop(&rec, "REAL_TOPIC", "%RETRY%g_dt");
    expect_prop(&rec, "RETRY_TOPIC", "DT_SB");
    uint64_t retry_pos = (uint64_t)rec.physical_offset;
    e2e_reply_free(&keep);

    /* reconsumeTimes 1 >= maxReconsumeTimes 1: the dead-letter topic, at once. */
    send_back_ok(retry_pos, "g_dt", 0, 1);
    e2e_reply p = call(e2e_pull("g_peek", "%DLQ%g_dt", 0, 0, 8, 0, 0, NULL), NULL, 0);
    e2e_expect_code(&p, RS_SUCCESS, NULL);
    assert_int_equal(e2e_records(p.cmd->body, p.cmd->body_len, &rec, 1), 1);
    assert_int_equal(rec.reconsume_times, 2);
    char v[64];
    expect_prop(&rec, "DELAY", "0");
    assert_false(e2e_prop(&rec, "REAL_TOPIC", v, sizeof v));
    expect_prop(&rec, "RETRY_TOPIC", "DT_SB");
    uint64_t dead_pos = (uint64_t)rec.physical_offset;
    e2e_reply_free(&p);

    /* Back to its original topic (RETRY_TOPIC), at once and as a fresh message. */
    lsmq_admin *a = NULL;
    lsmq_message **msgs = NULL;
    size_t n = 0;
    char id[64] = "";
    assert_int_equal(lsmq_admin_create(&a), 0);
    assert_int_equal(lsmq_admin_view_message(a, broker.addr, (int64_t)dead_pos, 5000, &msgs, &n),
                     0);
    const char *origin = lsmq_message_property(msgs[0], "RETRY_TOPIC");
    assert_non_null(origin);
    assert_int_equal(lsmq_admin_resend_message(a, broker.addr, msgs[0], origin, 0, 5000, id,
                                               sizeof id),
                     0);
    assert_int_equal(strlen(id), PROTO_MSGID_V4_LEN);
    lsmq_messages_free(msgs, n);
    lsmq_admin_destroy(a);
    p = call(e2e_pull("g_peek", "DT_SB", 0, 1, 8, 0, 0, NULL), NULL, 0);
    e2e_expect_code(&p, RS_SUCCESS, NULL);
    assert_int_equal(e2e_records(p.cmd->body, p.cmd->body_len, &rec, 1), 1);
    assert_string_equal(e2e_body(&rec, v, sizeof v), "fails");
    assert_int_equal(rec.reconsume_times, 0);
    assert_false(e2e_prop(&rec, "RETRY_TOPIC", v, sizeof v));
    assert_false(e2e_prop(&rec, "DELAY", v, sizeof v));
    expect_prop(&rec, "TAGS", "TagB");
    e2e_reply_free(&p);
}

static void test_group_retry_policy(void **state)
{
    const char *cfg = "{\"groupName\":\"g_exp\",\"groupRetryPolicy\":{\"type\":\"EXPONENTIAL\","
                      "\"exponentialRetryPolicy\":{\"initial\":1500,\"max\":60000,"
                      "\"multiplier\":2}}}";
    e2e_reply r = call(proto_cmd_request(RC_UPDATE_AND_CREATE_SUBSCRIPTIONGROUP), cfg,
                       strlen(cfg));
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);
    uint64_t pos = stored_plain("DT_POLICY", "policy");
    int64_t t0 = proto_wall_ms();
    send_back_ok(pos, "g_exp", 0, -1);
    e2e_reply keep;
    proto_record rec;
    int64_t arrived = await_record("%RETRY%g_exp", 0, 0, &keep, &rec);
    check_timing(t0, arrived, &rec, 1500); /* the policy's 1.5 s, not level 3's 3 s */
    assert_true(arrived - t0 < 3000);
    char v[64];
    assert_true(e2e_prop(&rec, "TIMER_OUT_MS", v, sizeof v));
    e2e_reply_free(&keep);
}

static void test_retry_topic_send_delayed(void **state)
{
    /* A client's re-publish to the retry topic (Java's fallback: DELAY = 3 + reconsumeTimes). */
    proto_cmd *c = e2e_send_v2("%RETRY%g_rt", 0, "DELAY\0011\002RETRY_TOPIC\001DT_RT\002");
    proto_cmd_set_i64(c, "j", 1);
    int64_t t0 = proto_wall_ms();
    e2e_reply r = call(c, "again", 5);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);
    expect_nothing_at("%RETRY%g_rt", 0, 0);
    e2e_reply keep;
    proto_record rec;
    int64_t arrived = await_record("%RETRY%g_rt", 0, 0, &keep, &rec);
    check_timing(t0, arrived, &rec, 1000);
    e2e_reply_free(&keep);

    /* Past maxReconsumeTimes: the dead-letter topic at once, DELAY=-1. */
    c = e2e_send_v2("%RETRY%g_rt", 0, "DELAY\0013\002");
    c->version = 409;
    proto_cmd_set_i64(c, "j", 3);
    proto_cmd_set_i64(c, "l", 2);
    r = call(c, "dead", 4);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);
    e2e_reply p = call(e2e_pull("g_peek", "%DLQ%g_rt", 0, 0, 8, 0, 0, NULL), NULL, 0);
    e2e_expect_code(&p, RS_SUCCESS, NULL);
    assert_int_equal(e2e_records(p.cmd->body, p.cmd->body_len, &rec, 1), 1);
    expect_prop(&rec, "DELAY", "-1");
    e2e_reply_free(&p);
}

/* A retry send of `group` with reconsumeTimes `times` and no maxReconsumeTimes. */
static void send_retry(const char *group, int times, const char *body)
{
    char topic[128];
    snprintf(topic, sizeof topic, "%%RETRY%%%s", group);
    proto_cmd *c = e2e_send_v2(topic, 0, "DELAY\0013\002");
    c->version = 409;
    proto_cmd_set_i64(c, "j", times);
    e2e_reply r = call(c, body, strlen(body));
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);
}

static void expect_dead_letter(const char *group, const char *body)
{
    char dlq[128], v[64];
    snprintf(dlq, sizeof dlq, "%%DLQ%%%s", group);
    e2e_reply p = call(e2e_pull("g_peek", dlq, 0, 0, 8, 0, 0, NULL), NULL, 0);
    e2e_expect_code(&p, RS_SUCCESS, NULL);
    proto_record rec;
    assert_int_equal(e2e_records(p.cmd->body, p.cmd->body_len, &rec, 1), 1);
    assert_string_equal(e2e_body(&rec, v, sizeof v), body);
    e2e_reply_free(&p);
}

static void test_retry_send_dead_letters(void **state)
{
    /* Without maxReconsumeTimes in the request, the group's retryMaxTimes (2) holds. */
    const char *cfg = "{\"groupName\":\"g_max2\",\"retryMaxTimes\":2}";
    e2e_reply r = call(proto_cmd_request(RC_UPDATE_AND_CREATE_SUBSCRIPTIONGROUP), cfg,
                       strlen(cfg));
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);
    send_retry("g_max2", 3, "third");
    expect_dead_letter("g_max2", "third");

    /* An orderly consumer's group holds queue locks: its retries are dead letters at once. */
    const char *lock = "{\"consumerGroup\":\"g_ord\",\"clientId\":\"10.0.0.9@1\","
                       "\"mqSet\":[{\"brokerName\":\"broker-a\",\"queueId\":0,"
                       "\"topic\":\"DT_ORD\"}]}";
    r = call(proto_cmd_request(RC_LOCK_BATCH_MQ), lock, strlen(lock));
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);
    send_retry("g_ord", 1, "orderly");
    expect_dead_letter("g_ord", "orderly");
}

static void test_bad_delay_levels_refused_at_start(void **state)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "%s/mqbroker --listenPort=0 --storePathRootDir=/nonexistent/never "
             "'--messageDelayLevel=1s 5x' 2>&1",
             LSMQ_BIN_DIR);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    char out[4096] = "";
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
    if (!strstr(out, "bad messageDelayLevel '1s 5x': level 2 ('5x')"))
        fail_msg("mqbroker said: %s", out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delay_level),
        cmocka_unit_test(test_timer_properties),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_query_pending),
        cmocka_unit_test(test_send_back_backoff_and_dlq),
        cmocka_unit_test(test_group_retry_policy),
        cmocka_unit_test(test_retry_topic_send_delayed),
        cmocka_unit_test(test_retry_send_dead_letters),
        cmocka_unit_test(test_bad_delay_levels_refused_at_start),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
