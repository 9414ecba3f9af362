/*
 * test_e2e_reset: retroactive consumption with liblsmq against a real
 * mqbroker (embedded name server, fresh store).
 *
 * Messages go out in two halves with a recorded instant T between them
 * (sleeps on both sides, so every store time of the first half is before T
 * and every one of the second at or after it). Then:
 *
 *  - online reset: a push consumer group consumes both halves; the test
 *    sends INVOKE_BROKER_TO_RESET_OFFSET(T) over the wire; the broker
 *    answers with the new offsets and tells the consumer
 *    (RESET_CONSUMER_CLIENT_OFFSET); the consumer receives the second half
 *    again, each queue starting exactly at its first message stored at or
 *    after T, nothing of the first half, in queue order;
 *  - offline reset: the same group, stopped, is reset to T again; a new
 *    member resumes from the committed offsets at the second half;
 *  - a new group with LSMQ_FROM_TIMESTAMP and consume timestamp T starts
 *    each queue at its first message stored at or after T.
 * The broker is stopped with SIGTERM and must exit 0 (sanitizers clean).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "e2e_topic.h"
#include "lsmq.h"
#include "testsupport.h"
#include "wire.h"

#define QUEUES 2
#define HALF 20
#define TOTAL (2 * HALF)
#define MARGIN_MS 50

static e2e_broker broker;

/* The topic both halves went to, T, and where each message landed. */
static char topic[64];
static int64_t t_split;
static int32_t sent_queue[TOTAL];
static int64_t sent_offset[TOTAL];

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* One request to the broker over a fresh connection; the response code, body copied out. */
static int broker_call(proto_cmd *req, char **body)
{
    int fd = wire_connect(broker.proc.port, 10000);
    proto_cmd *resp = NULL;
    uint8_t *frame = NULL;
    int code;

    assert_true(fd >= 0);
    assert_int_equal(wire_call(fd, req, NULL, 0, &resp, &frame), 0);
    code = resp->code;
    if (body) {
        *body = calloc(1, resp->body_len + 1);
        if (resp->body_len)
            memcpy(*body, resp->body, resp->body_len);
    }
    proto_cmd_free(resp);
    free(frame);
    close(fd);
    return code;
}

/* INVOKE_BROKER_TO_RESET_OFFSET, as mqadmin resetOffsetByTime sends it; the response code. */
static int reset_by_time(const char *group, int64_t ms, char **body)
{
    proto_cmd *req = proto_cmd_request(RC_INVOKE_BROKER_TO_RESET_OFFSET);

    proto_cmd_set(req, "topic", topic);
    proto_cmd_set(req, "group", group);
    proto_cmd_set_i64(req, "timestamp", ms);
    proto_cmd_set_bool(req, "isForce", 1);
    return broker_call(req, body);
}

/* ------------------------------------------------------------------ */
/* What a consumer received                                            */
/* ------------------------------------------------------------------ */

typedef struct delivery {
    int idx;          /* message index from the body, -1 if foreign */
    int32_t queue;
    int64_t offset;
    int64_t stored;   /* broker store time */
} delivery;

typedef struct dlog {
    pthread_mutex_t lock;
    delivery d[16 * TOTAL];
    int n;
} dlog;

static void dlog_init(dlog *l)
{
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->lock, NULL);
}

static void dlog_clear(dlog *l)
{
    pthread_mutex_lock(&l->lock);
    l->n = 0;
    pthread_mutex_unlock(&l->lock);
}

static int logging_listener(const lsmq_message *m, void *arg)
{
    dlog *l = arg;
    size_t len;
    const char *body = lsmq_message_body(m, &len);
    char text[16] = "";
    delivery d;

    if (len < sizeof text)
        memcpy(text, body, len);
    d.idx = -1;
    if (sscanf(text, "m%d", &d.idx) != 1 || d.idx < 0 || d.idx >= TOTAL)
        d.idx = -1;
    d.queue = lsmq_message_queue_id(m);
    d.offset = lsmq_message_queue_offset(m);
    d.stored = lsmq_message_store_timestamp(m);
    pthread_mutex_lock(&l->lock);
    if (l->n < (int)(sizeof l->d / sizeof l->d[0]))
        l->d[l->n++] = d;
    pthread_mutex_unlock(&l->lock);
    return LSMQ_CONSUME_SUCCESS;
}

/* Distinct messages in [from, to) delivered so far. */
static int dlog_distinct(dlog *l, int from, int to)
{
    unsigned char seen[TOTAL] = {0};
    int i, n = 0;

    pthread_mutex_lock(&l->lock);
    for (i = 0; i < l->n; i++) {
        int x = l->d[i].idx;

        if (x >= from && x < to && !seen[x]) {
            seen[x] = 1;
            n++;
        }
    }
    pthread_mutex_unlock(&l->lock);
    return n;
}

static void dlog_wait(dlog *l, int from, int to, int timeout_ms)
{
    int64_t deadline = proto_mono_ms() + timeout_ms;

    while (dlog_distinct(l, from, to) < to - from && proto_mono_ms() < deadline)
        e2e_sleep_ms(20);
}

/*
 * What a consumer got since the log was cleared must be exactly the second
 * half: each queue from its first message stored at or after T, in queue
 * order, with nothing of the first half.
 */
static void expect_second_half(dlog *l, const char *what)
{
    int64_t first_after[QUEUES], last_seen[QUEUES];
    int q, i;

    for (q = 0; q < QUEUES; q++) {
        first_after[q] = -1;
        last_seen[q] = -1;
    }
    for (i = HALF; i < TOTAL; i++) {
        q = sent_queue[i];
        if (first_after[q] < 0 || sent_offset[i] < first_after[q])
            first_after[q] = sent_offset[i];
    }
    dlog_wait(l, HALF, TOTAL, 20000);
    e2e_sleep_ms(500); /* anything earlier arriving late shows up here */
    assert_int_equal(dlog_distinct(l, HALF, TOTAL), HALF);
    pthread_mutex_lock(&l->lock);
    for (i = 0; i < l->n; i++) {
        const delivery *d = &l->d[i];

        if (d->idx < HALF || d->stored < t_split)
            fail_msg("%s: message %d (queue %d offset %lld, stored %lld) is from before T=%lld",
                     what, d->idx, (int)d->queue, (long long)d->offset, (long long)d->stored,
                     (long long)t_split);
        assert_true(d->queue >= 0 && d->queue < QUEUES);
        if (last_seen[d->queue] < 0 && d->offset != first_after[d->queue])
            fail_msg("%s: queue %d restarted at offset %lld, the first message at or after T "
                     "is at %lld", what, (int)d->queue, (long long)d->offset,
                     (long long)first_after[d->queue]);
        if (last_seen[d->queue] >= 0 && d->offset <= last_seen[d->queue])
            fail_msg("%s: queue %d offset %lld after %lld", what, (int)d->queue,
                     (long long)d->offset, (long long)last_seen[d->queue]);
        last_seen[d->queue] = d->offset;
    }
    pthread_mutex_unlock(&l->lock);
}

static lsmq_push_consumer *start_consumer(const char *group, const char *instance, int from,
                                          int64_t ts, dlog *l)
{
    lsmq_push_consumer *c = NULL;

    assert_int_equal(lsmq_push_consumer_create(broker.namesrv, group, &c), 0);
    assert_int_equal(lsmq_push_consumer_set_instance_name(c, instance), 0);
    assert_int_equal(lsmq_push_consumer_set_consume_from(c, from), 0);
    if (ts >= 0)
        assert_int_equal(lsmq_push_consumer_set_consume_timestamp(c, ts), 0);
    assert_int_equal(lsmq_push_consumer_set_rebalance_interval(c, 1000), 0);
    assert_int_equal(lsmq_push_consumer_set_commit_interval(c, 500), 0);
    assert_int_equal(lsmq_push_consumer_subscribe(c, topic, "*"), 0);
    assert_int_equal(lsmq_push_consumer_set_listener(c, logging_listener, l), 0);
    assert_int_equal(lsmq_push_consumer_start(c), 0);
    return c;
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static void send_half(lsmq_producer *p, int from)
{
    int i;

    for (i = from; i < from + HALF; i++) {
        char body[16];
        lsmq_out_message m;
        lsmq_send_result r;

        snprintf(body, sizeof body, "m%03d", i);
        memset(&m, 0, sizeof m);
        m.topic = topic;
        m.body = body;
        m.body_len = strlen(body);
        assert_int_equal(lsmq_producer_send(p, &m, &r), 0);
        assert_true(r.queue_id >= 0 && r.queue_id < QUEUES);
        sent_queue[i] = r.queue_id;
        sent_offset[i] = r.queue_offset;
    }
}

/* Two halves with T between them. */
static int produce(void **state)
{
    lsmq_producer *p = NULL;

    snprintf(topic, sizeof topic, "ResetT%lld", (long long)(proto_wall_ms() % 1000000));
    e2e_topic_create_routed(&broker, topic, QUEUES);
    assert_int_equal(lsmq_producer_create(broker.namesrv, "ResetP", &p), 0);
    assert_int_equal(lsmq_producer_start(p), 0);
    send_half(p, 0);
    e2e_sleep_ms(MARGIN_MS);
    t_split = proto_wall_ms();
    e2e_sleep_ms(MARGIN_MS);
    send_half(p, HALF);
    lsmq_producer_destroy(p);
    return 0;
}

static void test_reset_online_then_offline(void **state)
{
    const char *group = "ResetG";
    lsmq_push_consumer *c;
    char *body = NULL;
    dlog l;
    int code;

    dlog_init(&l);
    c = start_consumer(group, "reset1", LSMQ_FROM_FIRST, -1, &l);
    dlog_wait(&l, 0, TOTAL, 20000);
    assert_int_equal(dlog_distinct(&l, 0, TOTAL), TOTAL);
    e2e_sleep_ms(300);

    /* Online: the broker tells the running consumer. */
    dlog_clear(&l);
    code = reset_by_time(group, t_split, &body);
    if (code != 0)
        fail_msg("INVOKE_BROKER_TO_RESET_OFFSET answered %d: %s", code, body);
    assert_non_null(strstr(body, "offsetTable"));
    free(body);
    expect_second_half(&l, "online reset");
    lsmq_push_consumer_destroy(c);

    /* Offline: the broker commits; a new member resumes from there. */
    code = reset_by_time(group, t_split, &body);
    if (code != 0)
        fail_msg("reset of an offline group answered %d: %s", code, body);
    free(body);
    dlog_clear(&l);
    c = start_consumer(group, "reset2", LSMQ_FROM_LAST, -1, &l);
    expect_second_half(&l, "offline reset");
    lsmq_push_consumer_destroy(c);
    pthread_mutex_destroy(&l.lock);
}

static void test_new_group_from_timestamp(void **state)
{
    lsmq_push_consumer *c;
    dlog l;

    dlog_init(&l);
    c = start_consumer("ResetTsG", "ts1", LSMQ_FROM_TIMESTAMP, t_split, &l);
    expect_second_half(&l, "consume from timestamp");
    lsmq_push_consumer_destroy(c);
    pthread_mutex_destroy(&l.lock);
}

static void test_timestamp_api(void **state)
{
    lsmq_push_consumer *c = NULL;
    lsmq_pull_consumer *pc = NULL;

    assert_int_equal(lsmq_push_consumer_create(broker.namesrv, "ResetApiG", &c), 0);
    assert_int_equal(lsmq_push_consumer_set_consume_timestamp(c, -1), LSMQ_EINVAL);
    assert_int_equal(lsmq_push_consumer_set_consume_from(c, 7), LSMQ_EINVAL);
    assert_int_equal(lsmq_push_consumer_set_consume_from(c, LSMQ_FROM_TIMESTAMP), 0);
    lsmq_push_consumer_destroy(c);
    /* The pull consumer positions queues itself (seek); it has no timestamp mode. */
    assert_int_equal(lsmq_pull_consumer_create(broker.namesrv, "ResetApiG", &pc), 0);
    assert_int_equal(lsmq_pull_consumer_set_consume_from(pc, LSMQ_FROM_TIMESTAMP), LSMQ_EINVAL);
    lsmq_pull_consumer_destroy(pc);
}

/* ------------------------------------------------------------------ */

static int setup(void **state)
{
    return e2e_broker_start(&broker, "e2e-reset", NULL);
}

static int teardown(void **state)
{
    return e2e_broker_stop(&broker, 30000) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timestamp_api),
        cmocka_unit_test_setup(test_reset_online_then_offline, produce),
        cmocka_unit_test(test_new_group_from_timestamp),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
