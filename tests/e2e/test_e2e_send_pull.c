/*
 * test_e2e_send_pull: the broker's data path over the wire. A real mqbroker
 * (embedded name server, fresh store, maxMessageSize 64 KiB) is driven with
 * raw remoting frames:
 *
 *  - SEND_MESSAGE (V1 keys), SEND_MESSAGE_V2 and SEND_BATCH_MESSAGE, then
 *    pulls that decode every record and check offsets, bodies, the
 *    properties the broker adds (UNIQ_KEY, MSG_REGION, TRACE_ON, CLUSTER),
 *    born and store hosts, and that each msgId decodes to the store host and
 *    the record's physical offset;
 *  - auto-create through TBW102 and queue picking for queueId -1;
 *  - every refusal with its code and remark (names, sizes, forbidden
 *    topics, queue ids, bad delays, transactions, malformed headers), and that a
 *    oneway send gets no reply;
 *  - pull statuses (NOT_FOUND, OFFSET_MOVED below and above the queue),
 *    pull checks, maxMsgNums; the runtime info's get counter;
 *  - a tag that matches 1 message in 10,000: delivered, and the consumer
 *    reaches the queue end through PULL_RETRY_IMMEDIATELY answers;
 *  - consumer offsets (query, update, commit through a pull), min/max
 *    offsets, earliest store time and search by timestamp;
 *  - 100,000 pipelined sends over four queues, pulled back: none lost,
 *    per-queue order kept.
 * The broker is stopped with SIGTERM and must exit 0 (sanitizers clean).
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

#include "e2e_msg.h"
#include "e2e_procs.h"
#include "e2e_repl.h"
#include "e2e_reply.h"
#include "testsupport.h"
#include "wire.h"

#define MAX_MESSAGE_SIZE 65536

static e2e_broker broker;
static int fd = -1;

static e2e_reply call(proto_cmd *req, const void *body, size_t len)
{
    return e2e_call(fd, req, body, len);
}

/* Send one V2 message; returns the response (caller frees). */
static e2e_reply send_msg(const char *topic, int queue, const char *body, const char *props)
{
    return call(e2e_send_v2(topic, queue, props), body, strlen(body));
}

static void send_ok(const char *topic, int queue, const char *body, const char *props)
{
    e2e_reply r = send_msg(topic, queue, body, props);
    e2e_expect_code_has(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);
}

static e2e_reply pull(const char *group, const char *topic, int queue, int64_t offset, int max,
                      int flags, const char *sub)
{
    return call(e2e_pull(group, topic, queue, offset, max, flags, 1000, sub), NULL, 0);
}

static int setup(void **state)
{
    char maxsize[64];
    snprintf(maxsize, sizeof maxsize, "--maxMessageSize=%d", MAX_MESSAGE_SIZE);
    const char *extra[] = {maxsize, NULL};
    return e2e_broker_setup(&broker, "e2e-send-pull", extra, &fd);
}

static int teardown(void **state)
{
    return e2e_broker_teardown(&broker, &fd);
}

/* Check a record's fixed fields and the properties the broker adds. */
static void check_record(const proto_record *r, const char *topic, int queue, int64_t offset,
                         const char *body)
{
    char buf[256];
    assert_int_equal(r->topic_len, strlen(topic));
    assert_memory_equal(r->topic, topic, r->topic_len);
    assert_int_equal(r->queue_id, queue);
    assert_int_equal(r->queue_offset, offset);
    assert_string_equal(e2e_body(r, buf, sizeof buf), body);
    assert_true(e2e_prop(r, "MSG_REGION", buf, sizeof buf));
    assert_string_equal(buf, "DefaultRegion");
    assert_true(e2e_prop(r, "TRACE_ON", buf, sizeof buf));
    assert_string_equal(buf, "true");
    assert_true(e2e_prop(r, "CLUSTER", buf, sizeof buf));
    assert_string_equal(buf, "DefaultCluster");
    assert_true(e2e_prop(r, "UNIQ_KEY", buf, sizeof buf));
    assert_int_equal(r->born_host.ip[0], 127);
    assert_int_equal(r->store_host.ip[0], 127);
    assert_int_equal(r->store_host.port, broker.proc.port);
    assert_int_equal(proto_record_check_crc(r), 0);
}

/* The msgId of a send response names the store host and the record's position. */
static void check_msgid(const char *id, const proto_record *r)
{
    proto_host h;
    uint64_t pos;
    assert_int_equal(strlen(id), PROTO_MSGID_V4_LEN);
    assert_int_equal(proto_msgid_decode(id, strlen(id), &h, &pos), 0);
    assert_int_equal(h.ip[0], 127);
    assert_int_equal(h.ip[3], 1);
    assert_int_equal(h.port, broker.proc.port);
    assert_int_equal(pos, (uint64_t)r->physical_offset);
}

/* ------------------------------------------------------------------ */

static void test_send_v2_autocreate_and_pull(void **state)
{
    const char *topic = "SP_V2";
    char ids[3][64], uniq[3][64];
    for (int i = 0; i < 3; i++) {
        char body[32];
        snprintf(body, sizeof body, "v2-body-%d", i);
        e2e_reply r = send_msg(topic, 0, body, "TAGS\001TagA\002KEYS\001k1\002WAIT\001true\002");
        e2e_expect_code_has(&r, RS_SUCCESS, NULL);
        assert_int_equal(e2e_i64(r.cmd, "queueId"), 0);
        assert_int_equal(e2e_i64(r.cmd, "queueOffset"), i);
        assert_string_equal(proto_cmd_get(r.cmd, "MSG_REGION"), "DefaultRegion");
        assert_string_equal(proto_cmd_get(r.cmd, "TRACE_ON"), "true");
        snprintf(ids[i], sizeof ids[i], "%s", proto_cmd_get(r.cmd, "msgId"));
        const char *tid = proto_cmd_get(r.cmd, "transactionId");
        assert_non_null(tid);
        assert_int_equal(strlen(tid), 32); /* a generated UNIQ_KEY */
        snprintf(uniq[i], sizeof uniq[i], "%s", tid);
        e2e_reply_free(&r);
    }
    e2e_reply p = pull("g_v2", topic, 0, 0, 32, 0, NULL);
    e2e_expect_code_has(&p, RS_SUCCESS, "FOUND");
    assert_int_equal(e2e_i64(p.cmd, "nextBeginOffset"), 3);
    assert_int_equal(e2e_i64(p.cmd, "minOffset"), 0);
    assert_int_equal(e2e_i64(p.cmd, "maxOffset"), 3);
    assert_int_equal(e2e_i64(p.cmd, "suggestWhichBrokerId"), 0);
    proto_record recs[8];
    assert_int_equal(e2e_records(p.cmd->body, p.cmd->body_len, recs, 8), 3);
    for (int i = 0; i < 3; i++) {
        char body[32], v[64];
        snprintf(body, sizeof body, "v2-body-%d", i);
        check_record(&recs[i], topic, 0, i, body);
        check_msgid(ids[i], &recs[i]);
        assert_true(e2e_prop(&recs[i], "UNIQ_KEY", v, sizeof v));
        assert_string_equal(v, uniq[i]);
        assert_true(e2e_prop(&recs[i], "TAGS", v, sizeof v));
        assert_string_equal(v, "TagA");
        assert_true(e2e_prop(&recs[i], "KEYS", v, sizeof v));
        assert_string_equal(v, "k1");
    }
    e2e_reply_free(&p);

    /* Auto-created with min(d=4, TBW102's 8) queues: queue 3 exists, 4 does not. */
    p = pull("g_v2", topic, 3, 0, 32, 0, NULL);
    e2e_expect_code_has(&p, RS_PULL_NOT_FOUND, NULL);
    e2e_reply_free(&p);
    p = pull("g_v2", topic, 4, 0, 32, 0, NULL);
    e2e_expect_code_has(&p, RS_INVALID_PARAMETER, "queueId[4] is illegal");
    e2e_reply_free(&p);
}

static void test_send_v1_keeps_client_uniq_key(void **state)
{
    const char *topic = "SP_V1";
    proto_cmd *c = proto_cmd_request(RC_SEND_MESSAGE);
    proto_cmd_set(c, "producerGroup", "pg_v1");
    proto_cmd_set(c, "topic", topic);
    proto_cmd_set(c, "defaultTopic", "TBW102");
    proto_cmd_set_i64(c, "defaultTopicQueueNums", 2);
    proto_cmd_set_i64(c, "queueId", 1);
    proto_cmd_set_i64(c, "sysFlag", 0);
    proto_cmd_set_i64(c, "bornTimestamp", 1234567);
    proto_cmd_set_i64(c, "flag", 77);
    proto_cmd_set(c, "properties", "UNIQ_KEY\001C0A8000100002A9F0000000000000001\002");
    proto_cmd_set_i64(c, "reconsumeTimes", 0);
    e2e_reply r = call(c, "v1-body", 7);
    e2e_expect_code_has(&r, RS_SUCCESS, NULL);
    assert_int_equal(e2e_i64(r.cmd, "queueId"), 1);
    assert_int_equal(e2e_i64(r.cmd, "queueOffset"), 0);
    assert_string_equal(proto_cmd_get(r.cmd, "transactionId"),
                        "C0A8000100002A9F0000000000000001");
    char id[64];
    snprintf(id, sizeof id, "%s", proto_cmd_get(r.cmd, "msgId"));
    e2e_reply_free(&r);

    e2e_reply p = pull("g_v1", topic, 1, 0, 32, 0, NULL);
    e2e_expect_code_has(&p, RS_SUCCESS, "FOUND");
    proto_record rec;
    assert_int_equal(e2e_records(p.cmd->body, p.cmd->body_len, &rec, 1), 1);
    check_record(&rec, topic, 1, 0, "v1-body");
    check_msgid(id, &rec);
    assert_int_equal(rec.flag, 77);
    assert_int_equal(rec.born_timestamp, 1234567);
    char v[64];
    assert_true(e2e_prop(&rec, "UNIQ_KEY", v, sizeof v));
    assert_string_equal(v, "C0A8000100002A9F0000000000000001");
    e2e_reply_free(&p);
}

/* A batch body of n entries "batch-<i>", each with its own TAGS and UNIQ_KEY. */
static uint8_t *batch_body(int n, size_t *len)
{
    uint8_t *buf = malloc((size_t)n * 256);
    assert_non_null(buf);
    *len = 0;
    for (int i = 0; i < n; i++) {
        char body[32], props[128];
        snprintf(body, sizeof body, "batch-%d", i);
        snprintf(props, sizeof props, "TAGS\001Tag%d\002UNIQ_KEY\001BATCHUNIQ%023d\002", i, i);
        proto_batch_entry e = {.flag = i, .body = (const uint8_t *)body,
                               .body_len = (uint32_t)strlen(body), .props = props,
                               .props_len = (uint32_t)strlen(props)};
        long w = proto_batch_encode_entry(&e, buf + *len, (size_t)n * 256 - *len);
        assert_true(w > 0);
        *len += (size_t)w;
    }
    return buf;
}

static proto_cmd *batch_cmd(int code, const char *topic, int queue)
{
    proto_cmd *c = e2e_send_v2(topic, queue, "WAIT\001true\002");
    c->code = code;
    proto_cmd_set(c, "m", "true");
    return c;
}

static void test_send_batch(void **state)
{
    const char *topic = "SP_BATCH";
    size_t len;
    uint8_t *body = batch_body(5, &len);
    send_ok(topic, 2, "before", NULL); /* the batch starts at offset 1 */
    e2e_reply r = call(batch_cmd(RC_SEND_BATCH_MESSAGE, topic, 2), body, len);
    free(body);
    e2e_expect_code_has(&r, RS_SUCCESS, NULL);
    assert_int_equal(e2e_i64(r.cmd, "queueId"), 2);
    assert_int_equal(e2e_i64(r.cmd, "queueOffset"), 1);
    char ids[5 * 33 + 8];
    snprintf(ids, sizeof ids, "%s", proto_cmd_get(r.cmd, "msgId"));
    assert_int_equal(strlen(ids), 5 * 32 + 4);
    e2e_reply_free(&r);

    e2e_reply p = pull("g_batch", topic, 2, 1, 32, 0, NULL);
    e2e_expect_code_has(&p, RS_SUCCESS, NULL);
    proto_record recs[8];
    assert_int_equal(e2e_records(p.cmd->body, p.cmd->body_len, recs, 8), 5);
    char *save = NULL, *id = strtok_r(ids, ",", &save);
    for (int i = 0; i < 5; i++, id = strtok_r(NULL, ",", &save)) {
        char b[32], v[64], want[64];
        snprintf(b, sizeof b, "batch-%d", i);
        check_record(&recs[i], topic, 2, 1 + i, b);
        assert_non_null(id);
        check_msgid(id, &recs[i]);
        assert_int_equal(recs[i].flag, i);
        snprintf(want, sizeof want, "Tag%d", i);
        assert_true(e2e_prop(&recs[i], "TAGS", v, sizeof v));
        assert_string_equal(v, want);
        snprintf(want, sizeof want, "BATCHUNIQ%023d", i);
        assert_true(e2e_prop(&recs[i], "UNIQ_KEY", v, sizeof v));
        assert_string_equal(v, want);
        assert_true(e2e_prop(&recs[i], "WAIT", v, sizeof v)); /* from the batch header */
        assert_string_equal(v, "true");
    }
    e2e_reply_free(&p);

    /* m=true makes a batch on code 310 too. */
    body = batch_body(2, &len);
    r = call(batch_cmd(RC_SEND_MESSAGE_V2, topic, 2), body, len);
    free(body);
    e2e_expect_code_has(&r, RS_SUCCESS, NULL);
    assert_int_equal(e2e_i64(r.cmd, "queueOffset"), 6);
    assert_non_null(strchr(proto_cmd_get(r.cmd, "msgId"), ','));
    e2e_reply_free(&r);
}

static void test_queue_pick(void **state)
{
    int seen[4] = {0};
    for (int i = 0; i < 8; i++) {
        e2e_reply r = send_msg("SP_PICK", -1, "pick", NULL);
        e2e_expect_code_has(&r, RS_SUCCESS, NULL);
        int64_t q = e2e_i64(r.cmd, "queueId");
        assert_true(q >= 0 && q < 4);
        seen[q]++;
        e2e_reply_free(&r);
    }
    for (int q = 0; q < 4; q++)
        assert_true(seen[q] > 0); /* round-robin reaches every write queue */
}

static void expect_send_refused(const char *topic, int queue, const char *body, size_t len,
                                const char *props, int code, const char *remark)
{
    e2e_reply r = call(e2e_send_v2(topic, queue, props), body, len);
    e2e_expect_code_has(&r, code, remark);
    assert_string_equal(proto_cmd_get(r.cmd, "MSG_REGION"), "DefaultRegion");
    e2e_reply_free(&r);
}

static void test_send_refusals(void **state)
{
    char long_topic[140];
    memset(long_topic, 'T', 128);
    long_topic[128] = '\0';
    expect_send_refused("bad topic!", 0, "x", 1, NULL, RS_INVALID_PARAMETER,
                        "illegal characters");
    expect_send_refused(long_topic, 0, "x", 1, NULL, RS_MESSAGE_ILLEGAL, "max length");
    expect_send_refused("SCHEDULE_TOPIC_XXXX", 0, "x", 1, NULL, RS_NO_PERMISSION,
                        "forbidden");
    expect_send_refused("SP_REF", 0, "", 0, NULL, RS_MESSAGE_ILLEGAL, "body is empty");
    /* The queue id is checked once the topic exists, so this one auto-creates it. */
    expect_send_refused("SP_REF_Q", 9, "x", 1, NULL, RS_INVALID_PARAMETER,
                        "queueId[9] is illegal");
    expect_send_refused("SP_REF", 0, "x", 1, "DELAY\001three\002", RS_MESSAGE_ILLEGAL,
                        "invalid DELAY property \"three\"");
    expect_send_refused("SP_REF", 0, "x", 1, "TIMER_DELAY_SEC\001259201\002", RS_MESSAGE_ILLEGAL,
                        "the delay time should not be bigger than the max delay 259200000ms");
    expect_send_refused("SP_REF", 0, "x", 1, "TRAN_MSG\001true\002", RS_NO_PERMISSION,
                        "transaction");

    char *big = malloc(MAX_MESSAGE_SIZE + 1);
    memset(big, 'b', MAX_MESSAGE_SIZE + 1);
    expect_send_refused("SP_REF", 0, big, MAX_MESSAGE_SIZE + 1, NULL, RS_MESSAGE_ILLEGAL,
                        "body size");
    free(big);
    /* Properties over 32767 bytes (a long value, under the frame and body limits). */
    size_t plen = 33000;
    char *props = malloc(plen + 16);
    memcpy(props, "BIG\001", 4);
    memset(props + 4, 'p', plen - 5);
    props[plen - 1] = '\002';
    props[plen] = '\0';
    expect_send_refused("SP_REF", 0, "x", 1, props, RS_MESSAGE_ILLEGAL, "properties length");
    free(props);

    /* Unknown topic whose default topic does not exist. */
    proto_cmd *c = e2e_send_v2("SP_NODEFAULT", 0, NULL);
    proto_cmd_set(c, "c", "NoSuchDefault");
    e2e_reply r = call(c, "x", 1);
    e2e_expect_code_has(&r, RS_TOPIC_NOT_EXIST, "not exist");
    e2e_reply_free(&r);

    /* A mandatory header field missing. */
    c = e2e_send_v2("SP_REF", 0, NULL);
    proto_cmd *bare = proto_cmd_request(RC_SEND_MESSAGE_V2);
    for (size_t i = 0; i < c->n_ext; i++)
        if (strcmp(c->ext[i].key, "b") != 0)
            proto_cmd_set(bare, c->ext[i].key, c->ext[i].value);
    proto_cmd_free(c);
    r = call(bare, "x", 1);
    e2e_expect_code_has(&r, RS_SYSTEM_ERROR, "<topic> is null");
    e2e_reply_free(&r);

    /* A batch to a retry topic. */
    size_t len;
    uint8_t *body = batch_body(2, &len);
    r = call(batch_cmd(RC_SEND_BATCH_MESSAGE, "%RETRY%g_ref", 0), body, len);
    free(body);
    e2e_expect_code_has(&r, RS_MESSAGE_ILLEGAL, "retry topic");
    e2e_reply_free(&r);

    /* Nothing refused was stored, and no topic was created by a refusal. */
    e2e_reply p = pull("g_ref", "SP_REF", 0, 0, 32, 0, NULL);
    e2e_expect_code_has(&p, RS_TOPIC_NOT_EXIST, NULL);
    e2e_reply_free(&p);
}

/* A DELAY of 0 (ali-ons' re-publish) is no delay; other delays: test_e2e_delay. */
static void test_retry_topic_send(void **state)
{
    const char *topic = "%RETRY%g_retry";
    proto_cmd *c = e2e_send_v2(topic, 0, "DELAY\0010\002RETRY_TOPIC\001SP_V2\002");
    proto_cmd_set_i64(c, "j", 1);
    e2e_reply r = call(c, "again", 5);
    e2e_expect_code_has(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);
    e2e_reply p = pull("g_retry", topic, 0, 0, 32, 0, NULL);
    e2e_expect_code_has(&p, RS_SUCCESS, NULL);
    proto_record rec;
    char v[64];
    assert_int_equal(e2e_records(p.cmd->body, p.cmd->body_len, &rec, 1), 1);
    assert_true(e2e_prop(&rec, "DELAY", v, sizeof v));
    assert_string_equal(v, "0");
    assert_true(e2e_prop(&rec, "RETRY_TOPIC", v, sizeof v));
    assert_int_equal(rec.reconsume_times, 1);
    e2e_reply_free(&p);

    /* Past maxReconsumeTimes the message goes to the dead-letter topic. */
    c = e2e_send_v2(topic, 0, "DELAY\0013\002");
    c->version = 409;
    proto_cmd_set_i64(c, "j", 3);
    proto_cmd_set_i64(c, "l", 2);
    r = call(c, "dead", 4);
    e2e_expect_code_has(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);
    p = pull("g_retry", "%DLQ%g_retry", 0, 0, 32, 0, NULL);
    e2e_expect_code_has(&p, RS_SUCCESS, NULL);
    assert_int_equal(e2e_records(p.cmd->body, p.cmd->body_len, &rec, 1), 1);
    assert_string_equal(e2e_body(&rec, v, sizeof v), "dead");
    assert_true(e2e_prop(&rec, "DELAY", v, sizeof v));
    assert_string_equal(v, "-1"); /* as upstream's handleRetryAndDLQ puts it */
    assert_int_equal(rec.reconsume_times, 3);
    e2e_reply_free(&p);
}

static void test_oneway_send_gets_no_reply(void **state)
{
    proto_cmd *c = e2e_send_v2("SP_ONEWAY", 0, NULL);
    c->flag |= PROTO_FLAG_ONEWAY;
    assert_true(wire_send(fd, c, "quiet", 5) != -1);
    proto_cmd_free(c);
    /* A oneway refusal is silent too. */
    c = e2e_send_v2("SP_ONEWAY", 0, "DELAY\001two\002");
    c->flag |= PROTO_FLAG_ONEWAY;
    assert_true(wire_send(fd, c, "quiet", 5) != -1);
    proto_cmd_free(c);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 300), 0);
    e2e_reply p = pull("g_ow", "SP_ONEWAY", 0, 0, 32, 0, NULL);
    e2e_expect_code_has(&p, RS_SUCCESS, NULL);
    proto_record rec;
    assert_int_equal(e2e_records(p.cmd->body, p.cmd->body_len, &rec, 2), 1);
    e2e_reply_free(&p);
}

/* ------------------------------------------------------------------ */

static void expect_pull(const char *topic, int queue, int64_t offset, int code,
                        const char *remark, int64_t next)
{
    e2e_reply p = pull("g_status", topic, queue, offset, 32, 0, NULL);
    e2e_expect_code_has(&p, code, remark);
    assert_int_equal(e2e_i64(p.cmd, "nextBeginOffset"), next);
    assert_true(e2e_i64(p.cmd, "minOffset") >= 0);
    assert_true(e2e_i64(p.cmd, "maxOffset") >= 0);
    assert_int_equal(e2e_i64(p.cmd, "suggestWhichBrokerId"), 0);
    if (code != RS_SUCCESS)
        assert_int_equal(p.cmd->body_len, 0);
    e2e_reply_free(&p);
}

static void test_pull_statuses(void **state)
{
    const char *topic = "SP_STATUS";
    for (int i = 0; i < 3; i++)
        send_ok(topic, 0, "s", NULL);
    expect_pull(topic, 0, 3, RS_PULL_NOT_FOUND, "OFFSET_OVERFLOW_ONE", 3);
    expect_pull(topic, 0, 10, RS_PULL_OFFSET_MOVED, "OFFSET_OVERFLOW_BADLY", 3);
    expect_pull(topic, 0, -5, RS_PULL_OFFSET_MOVED, "OFFSET_TOO_SMALL", 0);
    expect_pull(topic, 1, 0, RS_PULL_NOT_FOUND, "NO_MESSAGE_IN_QUEUE", 0);
    expect_pull(topic, 1, 5, RS_PULL_OFFSET_MOVED, "NO_MESSAGE_IN_QUEUE", 0);

    e2e_reply p = pull("g_status", topic, 0, 0, 2, 0, NULL); /* maxMsgNums */
    e2e_expect_code_has(&p, RS_SUCCESS, NULL);
    proto_record recs[4];
    assert_int_equal(e2e_records(p.cmd->body, p.cmd->body_len, recs, 4), 2);
    assert_int_equal(e2e_i64(p.cmd, "nextBeginOffset"), 2);
    e2e_reply_free(&p);

    p = pull("g_status", "SP_NO_SUCH_TOPIC", 0, 0, 32, 0, NULL);
    e2e_expect_code_has(&p, RS_TOPIC_NOT_EXIST, "not exist");
    e2e_reply_free(&p);
    p = pull("g_status", topic, 9, 0, 32, 0, NULL);
    e2e_expect_code_has(&p, RS_INVALID_PARAMETER, "readQueueNums");
    e2e_reply_free(&p);

    proto_cmd *c = e2e_pull("g_status", topic, 0, 0, 32, E2E_PULL_SUBSCRIPTION, 1000, "a > 1");
    proto_cmd_set(c, "expressionType", "SQL92");
    p = call(c, NULL, 0);
    e2e_expect_code_has(&p, RS_SYSTEM_ERROR, "SQL92 filtering is not enabled");
    e2e_reply_free(&p);

    c = e2e_pull("g_status", topic, 0, 0, 32, 0, 1000, NULL);
    proto_cmd *bare = proto_cmd_request(RC_PULL_MESSAGE);
    for (size_t i = 0; i < c->n_ext; i++)
        if (strcmp(c->ext[i].key, "queueOffset") != 0)
            proto_cmd_set(bare, c->ext[i].key, c->ext[i].value);
    proto_cmd_free(c);
    p = call(bare, NULL, 0);
    e2e_expect_code_has(&p, RS_SYSTEM_ERROR, "<queueOffset> is null");
    e2e_reply_free(&p);

    /* LITE_PULL_MESSAGE is the same request. */
    c = e2e_pull("g_status", topic, 0, 1, 32, 0x10, 1000, NULL);
    c->code = RC_LITE_PULL_MESSAGE;
    p = call(c, NULL, 0);
    e2e_expect_code_has(&p, RS_SUCCESS, NULL);
    assert_int_equal(e2e_i64(p.cmd, "nextBeginOffset"), 3);
    e2e_reply_free(&p);
}

static void test_pull_counts_gets(void **state)
{
    const char *topic = "SP_GETS";
    for (int i = 0; i < 3; i++)
        send_ok(topic, 0, "g", NULL);
    uint64_t before = e2e_gets_total(broker.proc.port);
    e2e_reply p = pull("g_gets", topic, 0, 0, 32, 0, NULL);
    e2e_expect_code_has(&p, RS_SUCCESS, NULL);
    e2e_reply_free(&p);
    p = pull("g_gets", topic, 0, 3, 32, 0, NULL); /* nothing new: nothing counted */
    e2e_expect_code_has(&p, RS_PULL_NOT_FOUND, NULL);
    e2e_reply_free(&p);
    assert_int_equal(e2e_gets_total(broker.proc.port), before + 3);
}

/* ------------------------------------------------------------------ */

#define SPARSE_TOTAL 30000
#define SPARSE_EVERY 10000
#define SPARSE_AT 5000 /* rare tags at 5000, 15000, 25000 */
#define SPARSE_BATCH 500

/* A batch of SPARSE_BATCH messages starting at index `first`. */
static uint8_t *sparse_batch(int first, size_t *len)
{
    uint8_t *buf = malloc(SPARSE_BATCH * 128);
    assert_non_null(buf);
    *len = 0;
    for (int i = first; i < first + SPARSE_BATCH; i++) {
        char body[32], props[64];
        snprintf(body, sizeof body, "sparse-%d", i);
        snprintf(props, sizeof props, "TAGS\001%s\002",
                 i % SPARSE_EVERY == SPARSE_AT ? "Rare" : "Common");
        proto_batch_entry e = {.body = (const uint8_t *)body, .body_len = (uint32_t)strlen(body),
                               .props = props, .props_len = (uint32_t)strlen(props)};
        long w = proto_batch_encode_entry(&e, buf + *len, SPARSE_BATCH * 128 - *len);
        assert_true(w > 0);
        *len += (size_t)w;
    }
    return buf;
}

static void test_sparse_tag_filter(void **state)
{
    const char *topic = "SP_SPARSE";
    for (int first = 0; first < SPARSE_TOTAL; first += SPARSE_BATCH) {
        size_t len;
        uint8_t *body = sparse_batch(first, &len);
        e2e_reply r = call(batch_cmd(RC_SEND_BATCH_MESSAGE, topic, 0), body, len);
        free(body);
        e2e_expect_code_has(&r, RS_SUCCESS, NULL);
        e2e_reply_free(&r);
    }
    int64_t offset = 0;
    int found = 0, retries = 0, pulls = 0;
    for (;;) {
        e2e_reply p = pull("g_sparse", topic, 0, offset, 32, E2E_PULL_SUBSCRIPTION,
                           " Rare || NoSuchTag ");
        pulls++;
        assert_true(pulls < 100);
        int64_t next = e2e_i64(p.cmd, "nextBeginOffset");
        if (p.cmd->code == RS_PULL_NOT_FOUND) {
            assert_int_equal(next, SPARSE_TOTAL);
            e2e_reply_free(&p);
            break;
        }
        if (p.cmd->code == RS_PULL_RETRY_IMMEDIATELY) {
            assert_int_equal(p.cmd->body_len, 0);
            retries++;
        } else {
            e2e_expect_code_has(&p, RS_SUCCESS, NULL);
            proto_record recs[4];
            size_t n = e2e_records(p.cmd->body, p.cmd->body_len, recs, 4);
            assert_true(n >= 1); /* never SUCCESS with nothing */
            for (size_t i = 0; i < n; i++) {
                char want[32], b[32];
                snprintf(want, sizeof want, "sparse-%d", found * SPARSE_EVERY + SPARSE_AT);
                assert_string_equal(e2e_body(&recs[i], b, sizeof b), want);
                assert_int_equal(recs[i].queue_offset, found * SPARSE_EVERY + SPARSE_AT);
                found++;
            }
        }
        assert_true(next > offset); /* every answer makes progress */
        offset = next;
        e2e_reply_free(&p);
    }
    assert_int_equal(found, SPARSE_TOTAL / SPARSE_EVERY);
    assert_true(retries >= 1);
    printf("sparse tag: %d matches in %d messages, %d pulls (%d PULL_RETRY_IMMEDIATELY)\n",
           found, SPARSE_TOTAL, pulls, retries);
}

/* ------------------------------------------------------------------ */

static e2e_reply offset_call(int code, const char *group, const char *topic, int queue)
{
    proto_cmd *c = proto_cmd_request(code);
    if (group)
        proto_cmd_set(c, "consumerGroup", group);
    proto_cmd_set(c, "topic", topic);
    proto_cmd_set_i64(c, "queueId", queue);
    return call(c, NULL, 0);
}

static int64_t query_offset(const char *group, const char *topic, int queue)
{
    e2e_reply r = offset_call(RC_QUERY_CONSUMER_OFFSET, group, topic, queue);
    int64_t v = r.cmd->code == RS_SUCCESS ? e2e_i64(r.cmd, "offset") : -1;
    e2e_reply_free(&r);
    return v;
}

static proto_cmd *update_cmd(const char *group, const char *topic, int queue, int64_t off)
{
    proto_cmd *c = proto_cmd_request(RC_UPDATE_CONSUMER_OFFSET);
    proto_cmd_set(c, "consumerGroup", group);
    proto_cmd_set(c, "topic", topic);
    proto_cmd_set_i64(c, "queueId", queue);
    proto_cmd_set_i64(c, "commitOffset", off);
    return c;
}

/* Oneway commits land asynchronously: poll with a bound, as a client would see it. */
static void wait_offset(const char *group, const char *topic, int queue, int64_t want)
{
    for (int i = 0; i < 200; i++) {
        if (query_offset(group, topic, queue) == want)
            return;
        usleep(10000);
    }
    fail_msg("offset of %s never became %lld", group, (long long)want);
}

static void test_consumer_offsets(void **state)
{
    const char *topic = "SP_OFFSETS";
    for (int i = 0; i < 5; i++)
        send_ok(topic, 0, "o", NULL);
    /* Nothing stored, queue starts at 0: offset 0 unless setZeroIfNotFound=false. */
    assert_int_equal(query_offset("g_off", topic, 0), 0);
    proto_cmd *c = proto_cmd_request(RC_QUERY_CONSUMER_OFFSET);
    proto_cmd_set(c, "consumerGroup", "g_off");
    proto_cmd_set(c, "topic", topic);
    proto_cmd_set_i64(c, "queueId", 0);
    proto_cmd_set(c, "setZeroIfNotFound", "false");
    e2e_reply r = call(c, NULL, 0);
    e2e_expect_code_has(&r, RS_QUERY_NOT_FOUND, "maybe this group consumer boot first");
    e2e_reply_free(&r);

    r = call(update_cmd("g_off", topic, 0, 2), NULL, 0);
    e2e_expect_code_has(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);
    assert_int_equal(query_offset("g_off", topic, 0), 2);

    c = update_cmd("g_off", topic, 0, 4);
    c->flag |= PROTO_FLAG_ONEWAY;
    assert_true(wire_send(fd, c, NULL, 0) != -1);
    proto_cmd_free(c);
    wait_offset("g_off", topic, 0, 4);

    r = call(update_cmd("g_off", topic, 0, -1), NULL, 0); /* ali-ons' "no offset" */
    e2e_expect_code_has(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);
    assert_int_equal(query_offset("g_off", topic, 0), 4);

    r = call(update_cmd("g_off", "SP_NO_SUCH_TOPIC", 0, 1), NULL, 0);
    e2e_expect_code_has(&r, RS_TOPIC_NOT_EXIST, "not exist");
    e2e_reply_free(&r);

    /* A pull with FLAG_COMMIT_OFFSET stores its commitOffset. */
    c = e2e_pull("g_off", topic, 0, 3, 32, E2E_PULL_COMMIT, 1000, NULL);
    proto_cmd_set_i64(c, "commitOffset", 3);
    r = call(c, NULL, 0);
    e2e_expect_code_has(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);
    wait_offset("g_off", topic, 0, 3);
}

static int64_t header_value(int code, const char *topic, int queue, const char *field)
{
    e2e_reply r = offset_call(code, NULL, topic, queue);
    e2e_expect_code_has(&r, RS_SUCCESS, NULL);
    int64_t v = e2e_i64(r.cmd, field);
    e2e_reply_free(&r);
    return v;
}

static int64_t search(const char *topic, int queue, int64_t ts, const char *boundary)
{
    proto_cmd *c = proto_cmd_request(RC_SEARCH_OFFSET_BY_TIMESTAMP);
    proto_cmd_set(c, "topic", topic);
    proto_cmd_set_i64(c, "queueId", queue);
    proto_cmd_set_i64(c, "timestamp", ts);
    if (boundary)
        proto_cmd_set(c, "boundaryType", boundary);
    e2e_reply r = call(c, NULL, 0);
    e2e_expect_code_has(&r, RS_SUCCESS, NULL);
    int64_t v = e2e_i64(r.cmd, "offset");
    e2e_reply_free(&r);
    return v;
}

static void test_queue_positions(void **state)
{
    const char *topic = "SP_TIME";
    int64_t before = proto_wall_ms();
    for (int i = 0; i < 4; i++) {
        send_ok(topic, 0, "t", NULL);
        usleep(20000); /* distinct store times */
    }
    assert_int_equal(header_value(RC_GET_MAX_OFFSET, topic, 0, "offset"), 4);
    assert_int_equal(header_value(RC_GET_MIN_OFFSET, topic, 0, "offset"), 0);
    assert_int_equal(header_value(RC_GET_MAX_OFFSET, topic, 1, "offset"), 0);
    assert_int_equal(header_value(RC_GET_MAX_OFFSET, "SP_NO_SUCH_TOPIC", 0, "offset"), 0);

    e2e_reply p = pull("g_time", topic, 0, 0, 32, 0, NULL);
    proto_record recs[4];
    assert_int_equal(e2e_records(p.cmd->body, p.cmd->body_len, recs, 4), 4);
    int64_t st[4];
    for (int i = 0; i < 4; i++)
        st[i] = recs[i].store_timestamp;
    e2e_reply_free(&p);
    assert_true(st[0] >= before && st[0] < st[1] && st[1] < st[2] && st[2] < st[3]);

    assert_int_equal(header_value(RC_GET_EARLIEST_MSG_STORETIME, topic, 0, "timestamp"), st[0]);
    assert_int_equal(header_value(RC_GET_EARLIEST_MSG_STORETIME, topic, 1, "timestamp"), -1);

    assert_int_equal(search(topic, 0, st[2], NULL), 2);          /* LOWER by default */
    assert_int_equal(search(topic, 0, st[2] - 1, "LOWER"), 2);
    assert_int_equal(search(topic, 0, st[2] + 1, "lower"), 3);
    assert_int_equal(search(topic, 0, st[2], "UPPER"), 2);
    assert_int_equal(search(topic, 0, st[2] + 1, "upper"), 2);   /* case-insensitive */
    assert_int_equal(search(topic, 0, st[3] + 3600000, "LOWER"), 4);
    assert_int_equal(search(topic, 0, st[3] + 3600000, "UPPER"), 3);
    assert_int_equal(search(topic, 0, 0, "LOWER"), 0);
    assert_int_equal(search("SP_NO_SUCH_TOPIC", 0, st[0], NULL), 0);
}

/* ------------------------------------------------------------------ */

#define BULK_TOTAL 100000
#define BULK_QUEUES 4
#define BULK_WINDOW 1024
#define BULK_CHUNK 64
#define BULK_BODY_LEN 11 /* "bulk-%06d" */

/* Read one send response and check it against what its queue expects next. */
static void bulk_ack(int64_t *next_offset)
{
    proto_cmd *resp;
    uint8_t *frame;
    assert_int_equal(wire_recv(fd, &resp, &frame), 0);
    if (resp->code != RS_SUCCESS)
        fail_msg("bulk send refused: %d %s", resp->code, resp->remark ? resp->remark : "");
    int64_t q = e2e_i64(resp, "queueId");
    assert_true(q >= 0 && q < BULK_QUEUES);
    /* Sends on one connection are stored in order, so offsets come in order per queue. */
    assert_int_equal(e2e_i64(resp, "queueOffset"), next_offset[q]);
    next_offset[q]++;
    proto_cmd_free(resp);
    free(frame);
}

static void write_all(const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        assert_true(w > 0);
        p += w;
        len -= (size_t)w;
    }
}

/*
 * Pipelined sends, BULK_WINDOW in flight, written BULK_CHUNK frames at a
 * time. Bodies have a fixed size, so one encoded header per queue serves
 * every frame of that queue (responses are matched by order, not opaque),
 * which keeps the client's own cost out of the measurement.
 */
static void bulk_send(const char *topic)
{
    uint8_t *prefix[BULK_QUEUES];
    size_t prefix_len[BULK_QUEUES];
    for (int q = 0; q < BULK_QUEUES; q++) {
        proto_cmd *c = e2e_send_v2(topic, q, "TAGS\001Bulk\002");
        c->opaque = 1;
        assert_int_equal(proto_cmd_encode_prefix(c, BULK_BODY_LEN, &prefix[q], &prefix_len[q]),
                         0);
        proto_cmd_free(c);
    }
    size_t cap = BULK_CHUNK * (prefix_len[0] + 64 + BULK_BODY_LEN);
    uint8_t *out = malloc(cap);
    assert_non_null(out);
    int64_t next_offset[BULK_QUEUES] = {0};
    int inflight = 0;
    for (int i = 0; i < BULK_TOTAL;) {
        size_t len = 0;
        int n = 0;
        for (; n < BULK_CHUNK && i < BULK_TOTAL; n++, i++) {
            int q = i % BULK_QUEUES;
            memcpy(out + len, prefix[q], prefix_len[q]);
            len += prefix_len[q];
            char body[32];
            snprintf(body, sizeof body, "bulk-%06d", i);
            memcpy(out + len, body, BULK_BODY_LEN);
            len += BULK_BODY_LEN;
        }
        write_all(out, len);
        for (inflight += n; inflight > BULK_WINDOW; inflight--)
            bulk_ack(next_offset);
    }
    for (; inflight > 0; inflight--)
        bulk_ack(next_offset);
    free(out);
    for (int q = 0; q < BULK_QUEUES; q++) {
        free(prefix[q]);
        assert_int_equal(next_offset[q], BULK_TOTAL / BULK_QUEUES);
    }
}

/* Pull a whole queue back and check it holds q, q+4, q+8, ... in order. */
static void bulk_check_queue(const char *topic, int q)
{
    int64_t offset = 0, expect = q;
    while (offset < BULK_TOTAL / BULK_QUEUES) {
        e2e_reply p = pull("g_bulk", topic, q, offset, 1000, 0, NULL);
        e2e_expect_code_has(&p, RS_SUCCESS, NULL);
        proto_record recs[1000];
        size_t n = e2e_records(p.cmd->body, p.cmd->body_len, recs, 1000);
        assert_true(n >= 1);
        for (size_t i = 0; i < n; i++) {
            char want[32], b[32];
            snprintf(want, sizeof want, "bulk-%06lld", (long long)expect);
            assert_int_equal(recs[i].queue_offset, offset + (int64_t)i);
            assert_string_equal(e2e_body(&recs[i], b, sizeof b), want);
            expect += BULK_QUEUES;
        }
        offset += (int64_t)n;
        assert_int_equal(e2e_i64(p.cmd, "nextBeginOffset"), offset);
        e2e_reply_free(&p);
    }
    e2e_reply p = pull("g_bulk", topic, q, offset, 32, 0, NULL);
    e2e_expect_code_has(&p, RS_PULL_NOT_FOUND, NULL);
    e2e_reply_free(&p);
}

static void test_bulk_100k(void **state)
{
    /* The first frame auto-creates the topic (4 queues) before the next is read. */
    const char *topic = "SP_BULK";
    int64_t t0 = (proto_mono_ns() / 1000);
    bulk_send(topic);
    int64_t t1 = (proto_mono_ns() / 1000);
    for (int q = 0; q < BULK_QUEUES; q++)
        bulk_check_queue(topic, q);
    int64_t t2 = (proto_mono_ns() / 1000);
    printf("bulk: %d pipelined sends in %.2f s, pulled back in %.2f s\n", BULK_TOTAL,
           (double)(t1 - t0) / 1e6, (double)(t2 - t1) / 1e6);
}

/*
 * A writer queue of one message: pipelined sends overrun it and get
 * SYSTEM_BUSY with upstream's flow-control remark; nothing refused is
 * stored and everything acknowledged is.
 */
static void test_writer_busy(void **state)
{
    e2e_broker b2;
    const char *extra[] = {"--writerQueueMax=1", NULL};
    assert_int_equal(e2e_broker_start(&b2, "e2e-busy", extra), 0);
    int bfd = wire_connect(b2.proc.port, 20000);
    assert_true(bfd >= 0);
    enum { N = 2000 };
    for (int i = 0; i < N; i++) {
        proto_cmd *c = e2e_send_v2("SP_BUSY", 0, NULL);
        assert_true(wire_send(bfd, c, "busy", 4) != -1);
        proto_cmd_free(c);
    }
    int ok = 0, busy = 0;
    for (int i = 0; i < N; i++) {
        proto_cmd *resp;
        uint8_t *frame;
        assert_int_equal(wire_recv(bfd, &resp, &frame), 0);
        if (resp->code == RS_SUCCESS) {
            ok++;
        } else {
            assert_int_equal(resp->code, RS_SYSTEM_BUSY);
            assert_true(e2e_remark_has(resp, "[PC_SYNCHRONIZED]broker busy"));
            busy++;
        }
        proto_cmd_free(resp);
        free(frame);
    }
    proto_cmd *resp;
    uint8_t *frame;
    proto_cmd *c = proto_cmd_request(RC_GET_MAX_OFFSET);
    proto_cmd_set(c, "topic", "SP_BUSY");
    proto_cmd_set_i64(c, "queueId", 0);
    assert_int_equal(wire_call(bfd, c, NULL, 0, &resp, &frame), 0);
    assert_int_equal(e2e_i64(resp, "offset"), ok);
    proto_cmd_free(resp);
    free(frame);
    close(bfd);
    assert_int_equal(e2e_broker_stop(&b2, 30000), 0);
    printf("writerQueueMax=1: %d of %d pipelined sends stored, %d SYSTEM_BUSY\n", ok, N, busy);
    if (busy == 0)
        skip(); /* the writer kept up with every send: nothing to check */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_v2_autocreate_and_pull),
        cmocka_unit_test(test_send_v1_keeps_client_uniq_key),
        cmocka_unit_test(test_send_batch),
        cmocka_unit_test(test_queue_pick),
        cmocka_unit_test(test_send_refusals),
        cmocka_unit_test(test_retry_topic_send),
        cmocka_unit_test(test_oneway_send_gets_no_reply),
        cmocka_unit_test(test_pull_statuses),
        cmocka_unit_test(test_pull_counts_gets),
        cmocka_unit_test(test_sparse_tag_filter),
        cmocka_unit_test(test_consumer_offsets),
        cmocka_unit_test(test_queue_positions),
        cmocka_unit_test(test_bulk_100k),
        cmocka_unit_test(test_writer_busy),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
