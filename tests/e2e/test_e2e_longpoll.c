/*
 * test_e2e_longpoll: pulls held by a real mqbroker until their queue gets a
 * message or their suspend time runs out.
 *
 *  - wake latency: a parked pull answers within 100 ms of a send to its
 *    queue (20 rounds, measured from the send's acknowledgement and from
 *    before the send; medians and worst cases are printed);
 *  - a parked pull with no send answers PULL_NOT_FOUND at its
 *    suspendTimeoutMillis (500 ms), with the offsets it asked about;
 *  - eight pulls parked on eight queues of one connection are each woken
 *    by a send to their own queue and by nothing else;
 *  - a parked pull whose tag does not match new messages stays parked, and
 *    is answered by the first message it matches;
 *  - parked pulls whose connection closed are dropped quietly, both when
 *    their queue is written and when their time runs out;
 *  - with longPollingEnable=false a held pull is answered after
 *    shortPollingTimeMills, not by the send;
 *  - SIGTERM with parked pulls: each gets PULL_NOT_FOUND, the broker exits 0
 *    (sanitizers clean).
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
#include "testsupport.h"
#include "wire.h"

#define WAKE_ROUNDS 20
#define WAKE_LIMIT_US 100000
#define LONG_HOLD_MS 10000

static e2e_broker broker;
static int producer = -1; /* sends */
static int consumer = -1; /* parked pulls */

static int setup(void **state)
{
    if (e2e_broker_start(&broker, "e2e-longpoll", NULL) != 0)
        return -1;
    producer = wire_connect(broker.proc.port, 20000);
    consumer = wire_connect(broker.proc.port, 20000);
    return producer >= 0 && consumer >= 0 ? 0 : -1;
}

static int teardown(void **state)
{
    close(producer);
    close(consumer);
    return e2e_broker_stop(&broker, 30000) == 0 ? 0 : -1;
}

/* Is a frame (or EOF) waiting on fd within ms? */
static bool readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) > 0;
}

/* Send one message and return its queue offset. */
static int64_t send_to(int fd, const char *topic, int queue, const char *props)
{
    proto_cmd *resp;
    uint8_t *frame;
    assert_int_equal(wire_call(fd, e2e_send_v2(topic, queue, props), "lp", 2, &resp, &frame),
                     0);
    if (resp->code != RS_SUCCESS)
        fail_msg("send refused: %d %s", resp->code, resp->remark ? resp->remark : "");
    int64_t off = e2e_i64(resp, "queueOffset");
    proto_cmd_free(resp);
    free(frame);
    return off;
}

/* Send a pull that may be held; returns its opaque. */
static int32_t park(int fd, const char *topic, int queue, int64_t offset, int64_t hold_ms,
                    const char *sub)
{
    int flags = E2E_PULL_SUSPEND | (sub ? E2E_PULL_SUBSCRIPTION : 0);
    proto_cmd *c = e2e_pull("g_lp", topic, queue, offset, 32, flags, hold_ms, sub);
    int32_t opaque = wire_send(fd, c, NULL, 0);
    proto_cmd_free(c);
    assert_true(opaque != -1);
    return opaque;
}

/* Read one response (the caller frees both). */
static proto_cmd *recv_resp(int fd, uint8_t **frame)
{
    proto_cmd *resp;
    assert_int_equal(wire_recv(fd, &resp, frame), 0);
    assert_true(proto_cmd_is_response(resp));
    return resp;
}

/* Nothing may arrive on fd within ms; if something does, say what it was. */
static void expect_silent(int fd, int ms)
{
    if (!readable(fd, ms))
        return;
    proto_cmd *resp;
    uint8_t *frame;
    if (wire_recv(fd, &resp, &frame) != 0)
        fail_msg("connection closed or unreadable while a pull should be held");
    fail_msg("unexpected answer: opaque %d code %d remark \"%s\" nextBeginOffset %lld "
             "maxOffset %lld",
             resp->opaque, resp->code, resp->remark ? resp->remark : "",
             (long long)e2e_i64(resp, "nextBeginOffset"), (long long)e2e_i64(resp, "maxOffset"));
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/*
 * Two measures per round: "wake" from the send's acknowledgement (the
 * message is committed) to the pull's answer, which is what long polling
 * adds, and "total" from before the send, which also holds the commit
 * itself (a store stall on a loaded machine shows up there, not in the
 * wake-up). Every wake must be under 100 ms, and so must the median total.
 */
static void test_wake_latency(void **state)
{
    const char *topic = "LP_WAKE";
    int64_t offset = send_to(producer, topic, 0, NULL) + 1;
    int64_t wake[WAKE_ROUNDS], total[WAKE_ROUNDS];
    for (int i = 0; i < WAKE_ROUNDS; i++) {
        int32_t opaque = park(consumer, topic, 0, offset, LONG_HOLD_MS, NULL);
        expect_silent(consumer, 50); /* held, not answered */
        int64_t t0 = (proto_mono_ns() / 1000);
        assert_int_equal(send_to(producer, topic, 0, NULL), offset);
        int64_t acked = (proto_mono_ns() / 1000);
        uint8_t *frame;
        proto_cmd *resp = recv_resp(consumer, &frame);
        int64_t answered = (proto_mono_ns() / 1000);
        wake[i] = answered - acked;
        total[i] = answered - t0;
        assert_int_equal(resp->opaque, opaque);
        assert_int_equal(resp->code, RS_SUCCESS);
        proto_record rec;
        assert_int_equal(e2e_records(resp->body, resp->body_len, &rec, 1), 1);
        assert_int_equal(rec.queue_offset, offset);
        assert_int_equal(e2e_i64(resp, "nextBeginOffset"), offset + 1);
        proto_cmd_free(resp);
        free(frame);
        offset++;
    }
    qsort(wake, WAKE_ROUNDS, sizeof wake[0], cmp_i64);
    qsort(total, WAKE_ROUNDS, sizeof total[0], cmp_i64);
    printf("long-poll wake latency over %d rounds: send ack -> pull answer median %.2f ms, "
           "max %.2f ms; send start -> pull answer median %.2f ms, max %.2f ms\n",
           WAKE_ROUNDS, (double)wake[WAKE_ROUNDS / 2] / 1000.0,
           (double)wake[WAKE_ROUNDS - 1] / 1000.0, (double)total[WAKE_ROUNDS / 2] / 1000.0,
           (double)total[WAKE_ROUNDS - 1] / 1000.0);
    assert_true(wake[WAKE_ROUNDS - 1] < WAKE_LIMIT_US);
    assert_true(total[WAKE_ROUNDS / 2] < WAKE_LIMIT_US);
}

static void test_timeout_answers_not_found(void **state)
{
    const char *topic = "LP_TIMEOUT";
    int64_t offset = send_to(producer, topic, 1, NULL) + 1;
    int64_t t0 = (proto_mono_ns() / 1000);
    int32_t opaque = park(consumer, topic, 1, offset, 500, NULL);
    uint8_t *frame;
    proto_cmd *resp = recv_resp(consumer, &frame);
    int64_t waited_ms = ((proto_mono_ns() / 1000) - t0) / 1000;
    printf("500 ms suspend answered after %lld ms\n", (long long)waited_ms);
    assert_int_equal(resp->opaque, opaque);
    assert_int_equal(resp->code, RS_PULL_NOT_FOUND);
    assert_int_equal(e2e_i64(resp, "nextBeginOffset"), offset);
    assert_int_equal(e2e_i64(resp, "maxOffset"), offset);
    assert_int_equal(e2e_i64(resp, "minOffset"), 0);
    assert_true(waited_ms >= 450 && waited_ms < 1500);
    proto_cmd_free(resp);
    free(frame);

    /* An empty queue at offset 0 is held too (NO_MESSAGE_IN_QUEUE -> PULL_NOT_FOUND). */
    t0 = (proto_mono_ns() / 1000);
    park(consumer, topic, 2, 0, 300, NULL);
    resp = recv_resp(consumer, &frame);
    assert_int_equal(resp->code, RS_PULL_NOT_FOUND);
    assert_true(((proto_mono_ns() / 1000) - t0) / 1000 >= 250);
    proto_cmd_free(resp);
    free(frame);
}

static void test_each_queue_wakes_its_own(void **state)
{
    const char *topic = "LP_MANY";
    enum { NQ = 8 };
    proto_cmd *c = e2e_send_v2(topic, 0, NULL);
    proto_cmd_set_i64(c, "d", NQ);
    proto_cmd *resp;
    uint8_t *frame;
    assert_int_equal(wire_call(producer, c, "x", 1, &resp, &frame), 0);
    assert_int_equal(resp->code, RS_SUCCESS);
    proto_cmd_free(resp);
    free(frame);

    int32_t opaque[NQ];
    for (int q = 0; q < NQ; q++)
        opaque[q] = park(consumer, topic, q, q == 0 ? 1 : 0, LONG_HOLD_MS, NULL);
    expect_silent(consumer, 100);
    const int order[NQ] = {3, 0, 7, 1, 6, 2, 5, 4};
    for (int i = 0; i < NQ; i++) {
        int q = order[i];
        send_to(producer, topic, q, NULL);
        resp = recv_resp(consumer, &frame);
        assert_int_equal(resp->opaque, opaque[q]);
        assert_int_equal(resp->code, RS_SUCCESS);
        proto_record rec;
        assert_int_equal(e2e_records(resp->body, resp->body_len, &rec, 1), 1);
        assert_int_equal(rec.queue_id, q);
        proto_cmd_free(resp);
        free(frame);
        expect_silent(consumer, 30); /* nobody else woke */
    }
}

static void test_filter_keeps_pull_parked(void **state)
{
    const char *topic = "LP_FILTER";
    int64_t offset = send_to(producer, topic, 0, "TAGS\001Common\002") + 1;
    int32_t opaque = park(consumer, topic, 0, offset, LONG_HOLD_MS, "Rare");
    expect_silent(consumer, 50); /* parked before anything else is sent */
    for (int i = 0; i < 3; i++)
        send_to(producer, topic, 0, "TAGS\001Common\002");
    expect_silent(consumer, 150); /* nothing it matches yet */
    int64_t rare = send_to(producer, topic, 0, "TAGS\001Rare\002");
    uint8_t *frame;
    proto_cmd *resp = recv_resp(consumer, &frame);
    assert_int_equal(resp->opaque, opaque);
    assert_int_equal(resp->code, RS_SUCCESS);
    proto_record rec[4];
    assert_int_equal(e2e_records(resp->body, resp->body_len, rec, 4), 1);
    assert_int_equal(rec[0].queue_offset, rare);
    assert_int_equal(e2e_i64(resp, "nextBeginOffset"), rare + 1);
    proto_cmd_free(resp);
    free(frame);
}

static void test_closed_connection(void **state)
{
    const char *topic = "LP_CLOSED";
    int64_t offset = send_to(producer, topic, 0, NULL) + 1;
    int gone = wire_connect(broker.proc.port, 5000);
    int gone2 = wire_connect(broker.proc.port, 5000);
    assert_true(gone >= 0 && gone2 >= 0);
    park(gone, topic, 0, offset, LONG_HOLD_MS, NULL); /* dropped on the send */
    park(gone2, topic, 1, 0, 300, NULL);              /* dropped at its deadline */
    usleep(50000);
    close(gone);
    close(gone2);
    usleep(50000);
    send_to(producer, topic, 0, NULL);
    usleep(400000);
    /* The broker is fine and the message is there for a live consumer. */
    proto_cmd *resp;
    uint8_t *frame;
    assert_int_equal(wire_call(consumer, e2e_pull("g_lp", topic, 0, offset, 32, 0, 0, NULL),
                               NULL, 0, &resp, &frame),
                     0);
    assert_int_equal(resp->code, RS_SUCCESS);
    proto_cmd_free(resp);
    free(frame);
}

static void test_short_polling(void **state)
{
    e2e_broker b2;
    const char *extra[] = {"--longPollingEnable=false", "--shortPollingTimeMills=400", NULL};
    assert_int_equal(e2e_broker_start(&b2, "e2e-shortpoll", extra), 0);
    int fd = wire_connect(b2.proc.port, 10000);
    int pfd = wire_connect(b2.proc.port, 10000);
    int64_t offset = send_to(pfd, "SP_TOPIC", 0, NULL) + 1;
    int64_t t0 = (proto_mono_ns() / 1000);
    park(fd, "SP_TOPIC", 0, offset, LONG_HOLD_MS, NULL);
    usleep(50000);
    send_to(pfd, "SP_TOPIC", 0, NULL);
    expect_silent(fd, 150); /* no wake-up by the send */
    uint8_t *frame;
    proto_cmd *resp = recv_resp(fd, &frame);
    int64_t waited_ms = ((proto_mono_ns() / 1000) - t0) / 1000;
    assert_int_equal(resp->code, RS_SUCCESS); /* re-run at the short-poll deadline */
    assert_true(waited_ms >= 350 && waited_ms < 2000);
    proto_cmd_free(resp);
    free(frame);
    close(fd);
    close(pfd);
    assert_int_equal(e2e_broker_stop(&b2, 30000), 0);
}

static void test_sigterm_with_parked_pulls(void **state)
{
    e2e_broker b2;
    assert_int_equal(e2e_broker_start(&b2, "e2e-lp-term", NULL), 0);
    int fds[2] = {wire_connect(b2.proc.port, 10000), wire_connect(b2.proc.port, 10000)};
    assert_true(fds[0] >= 0 && fds[1] >= 0);
    int64_t offset = send_to(fds[0], "TERM_TOPIC", 0, NULL) + 1;
    int32_t opaque[3];
    opaque[0] = park(fds[0], "TERM_TOPIC", 0, offset, 30000, NULL);
    opaque[1] = park(fds[1], "TERM_TOPIC", 1, 0, 30000, NULL);
    opaque[2] = park(fds[1], "TERM_TOPIC", 0, offset, 30000, "TagX");
    assert_false(readable(fds[0], 100));
    assert_false(readable(fds[1], 10));
    int64_t t0 = (proto_mono_ns() / 1000);
    assert_int_equal(e2e_broker_stop(&b2, 20000), 0);
    printf("SIGTERM with 3 parked pulls: exited 0 after %.0f ms\n",
           (double)((proto_mono_ns() / 1000) - t0) / 1000.0);
    for (int i = 0; i < 3; i++) {
        uint8_t *frame;
        proto_cmd *resp = recv_resp(fds[i == 0 ? 0 : 1], &frame);
        assert_int_equal(resp->code, RS_PULL_NOT_FOUND);
        bool known = resp->opaque == opaque[0] || resp->opaque == opaque[1] ||
                     resp->opaque == opaque[2];
        assert_true(known);
        proto_cmd_free(resp);
        free(frame);
    }
    close(fds[0]);
    close(fds[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wake_latency),
        cmocka_unit_test(test_timeout_answers_not_found),
        cmocka_unit_test(test_each_queue_wakes_its_own),
        cmocka_unit_test(test_filter_keeps_pull_parked),
        cmocka_unit_test(test_closed_connection),
        cmocka_unit_test(test_short_polling),
        cmocka_unit_test(test_sigterm_with_parked_pulls),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
