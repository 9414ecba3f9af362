/*
 * Hostile input on the wire: garbage, truncated, oversized and malformed
 * frames each close only their own connection, unknown request codes get
 * REQUEST_CODE_NOT_SUPPORTED and the connection lives on, pipelined
 * requests are all answered, and through all of it a second connection
 * keeps sending and pulling and the broker stays up and exits cleanly.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "e2e_msg.h"
#include "e2e_procs.h"
#include "testsupport.h"
#include "wire.h"

#define TOPIC "FramesTopic"

static e2e_broker broker;
static int healthy = -1;       /* the connection that must keep working */
static int64_t sent_ok;        /* messages the healthy connection stored */

static int setup(void **state)
{
    return e2e_broker_setup(&broker, "e2e-frames", NULL, &healthy);
}

static int teardown(void **state)
{
    /* A clean exit: no crash, no leak. */
    return e2e_broker_teardown(&broker, &healthy);
}

/* The healthy connection sends one message and reads it back. */
static void check_healthy(void)
{
    proto_cmd *resp;
    uint8_t *frame;
    assert_int_equal(wire_call(healthy, e2e_send_v2(TOPIC, 0, NULL), "ping", 4, &resp, &frame), 0);
    assert_int_equal(resp->code, RS_SUCCESS);
    assert_int_equal(e2e_i64(resp, "queueOffset"), sent_ok);
    proto_cmd_free(resp);
    free(frame);
    sent_ok++;
    assert_int_equal(wire_call(healthy, e2e_pull("frames-g", TOPIC, 0, sent_ok - 1, 1, 0, 0, NULL),
                               NULL, 0, &resp, &frame), 0);
    assert_int_equal(resp->code, RS_SUCCESS);
    proto_record r;
    assert_int_equal(e2e_records(resp->body, resp->body_len, &r, 1), 1);
    assert_int_equal(r.queue_offset, sent_ok - 1);
    proto_cmd_free(resp);
    free(frame);
}

/* True when the broker closed this connection (EOF within timeout_ms). */
static int closed_by_peer(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) <= 0)
        return 0;
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

static int raw_connection(void)
{
    int fd = wire_connect(broker.proc.port, 5000);
    assert_true(fd >= 0);
    return fd;
}

static void write_bytes(int fd, const void *buf, size_t len)
{
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
}

static void test_unknown_codes_keep_the_connection(void **state)
{
    int fd = raw_connection();
    int codes[] = {9999, 777, 13, 0};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        proto_cmd *resp;
        uint8_t *frame;
        assert_int_equal(wire_call(fd, proto_cmd_request(codes[i]), NULL, 0, &resp, &frame), 0);
        assert_int_equal(resp->code, RS_REQUEST_CODE_NOT_SUPPORTED);
        char expect[64];
        snprintf(expect, sizeof expect, " request type %d not supported", codes[i]);
        assert_string_equal(resp->remark, expect);
        proto_cmd_free(resp);
        free(frame);
    }
    /* A oneway unknown request gets nothing back; the next call still works. */
    proto_cmd *ow = proto_cmd_request(4242);
    ow->flag = PROTO_FLAG_ONEWAY;
    assert_true(wire_send(fd, ow, NULL, 0) != -1);
    proto_cmd_free(ow);
    proto_cmd *resp;
    uint8_t *frame;
    assert_int_equal(wire_call(fd, proto_cmd_request(9998), NULL, 0, &resp, &frame), 0);
    assert_string_equal(resp->remark, " request type 9998 not supported");
    proto_cmd_free(resp);
    free(frame);
    close(fd);
    check_healthy();
}

static void test_garbage_closes_only_that_connection(void **state)
{
    /* Text protocols: the first four bytes read as a length far over 16 MiB. */
    int fd = raw_connection();
    const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    write_bytes(fd, http, sizeof http - 1);
    assert_true(closed_by_peer(fd, 5000));
    close(fd);
    check_healthy();

    /* Random bytes. */
    fd = raw_connection();
    uint8_t junk[512];
    srand(7);
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)rand();
    junk[0] = 0x7f; /* a length that cannot be right */
    write_bytes(fd, junk, sizeof junk);
    assert_true(closed_by_peer(fd, 5000));
    close(fd);
    check_healthy();
}

static void test_malformed_frames(void **state)
{
    struct {
        const char *what;
        uint8_t bytes[32];
        size_t len;
    } cases[] = {
        /* negative length */
        {"negative length", {0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 0}, 8},
        /* length too small for the header word */
        {"length 2", {0, 0, 0, 2, 0, 0}, 6},
        /* header length past the end of the frame */
        {"header past frame", {0, 0, 0, 8, 0, 0, 0, 200, '{', '}', 0, 0}, 12},
        /* a JSON header that is not JSON */
        {"bad json", {0, 0, 0, 13, 0, 0, 0, 9, '{', 'n', 'o', 't', ' ', 'j', 's', 'o', 'n'}, 17},
        /* an unknown serialize type */
        {"serialize type 9", {0, 0, 0, 6, 9, 0, 0, 2, '{', '}'}, 10},
        /* a ROCKETMQ header cut short */
        {"short binary header", {0, 0, 0, 7, 1, 0, 0, 3, 0, 10, 0}, 11},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fd = raw_connection();
        write_bytes(fd, cases[i].bytes, cases[i].len);
        if (!closed_by_peer(fd, 5000))
            fail_msg("%s: the broker did not close the connection", cases[i].what);
        close(fd);
        check_healthy();
    }
}

static void test_oversized_frame(void **state)
{
    int fd = raw_connection();
    uint8_t hdr[8] = {0x01, 0x00, 0x00, 0x01, 0, 0, 0, 2}; /* 16 MiB + 1 announced */
    write_bytes(fd, hdr, sizeof hdr);
    assert_true(closed_by_peer(fd, 5000));
    close(fd);
    check_healthy();
}

static void test_truncated_frames(void **state)
{
    proto_cmd *req = e2e_send_v2(TOPIC, 1, NULL);
    req->opaque = 1;
    uint8_t *frame;
    size_t len;
    assert_int_equal(proto_cmd_encode(req, "body", 4, &frame, &len), 0);
    proto_cmd_free(req);

    /* Cut at every length and hang up: nothing is stored, nothing breaks. */
    for (size_t cut = 1; cut < len; cut += (cut < 16 ? 1 : 13)) {
        int fd = raw_connection();
        write_bytes(fd, frame, cut);
        close(fd);
    }
    /* A frame sent in pieces with pauses is one request. */
    int fd = raw_connection();
    for (size_t at = 0; at < len; at += 5) {
        write_bytes(fd, frame + at, len - at < 5 ? len - at : 5);
        usleep(2000);
    }
    proto_cmd *resp;
    uint8_t *rframe;
    assert_int_equal(wire_recv(fd, &resp, &rframe), 0);
    assert_int_equal(resp->code, RS_SUCCESS);
    assert_int_equal(e2e_i64(resp, "queueOffset"), 0);
    proto_cmd_free(resp);
    free(rframe);
    /* A frame left half-sent does not hold up anyone else. */
    write_bytes(fd, frame, len / 2);
    check_healthy();
    close(fd);
    free(frame);

    uint64_t max = 0;
    proto_cmd *q = proto_cmd_request(RC_GET_MAX_OFFSET);
    proto_cmd_set(q, "topic", TOPIC);
    proto_cmd_set_i64(q, "queueId", 1);
    assert_int_equal(wire_call(healthy, q, NULL, 0, &resp, &rframe), 0);
    max = (uint64_t)e2e_i64(resp, "offset");
    proto_cmd_free(resp);
    free(rframe);
    assert_int_equal(max, 1); /* only the whole frame was stored */
}

static void test_pipelined_requests(void **state)
{
    int fd = raw_connection();
    enum { N = 200 };
    size_t total = 0;
    uint8_t *all = NULL;
    for (int i = 0; i < N; i++) {
        proto_cmd *req = e2e_send_v2(TOPIC, 2, NULL);
        req->opaque = 5000 + i;
        uint8_t *frame;
        size_t len;
        char body[16];
        snprintf(body, sizeof body, "p%d", i);
        assert_int_equal(proto_cmd_encode(req, body, strlen(body), &frame, &len), 0);
        proto_cmd_free(req);
        all = realloc(all, total + len);
        memcpy(all + total, frame, len);
        total += len;
        free(frame);
    }
    write_bytes(fd, all, total); /* one write, many frames */
    free(all);
    int seen[N] = {0};
    for (int i = 0; i < N; i++) {
        proto_cmd *resp;
        uint8_t *rframe;
        assert_int_equal(wire_recv(fd, &resp, &rframe), 0);
        int idx = resp->opaque - 5000;
        assert_true(idx >= 0 && idx < N);
        assert_int_equal(resp->code, RS_SUCCESS);
        assert_int_equal(e2e_i64(resp, "queueOffset"), idx); /* stored in request order */
        seen[idx]++;
        proto_cmd_free(resp);
        free(rframe);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], 1);
    close(fd);
    check_healthy();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_codes_keep_the_connection),
        cmocka_unit_test(test_garbage_closes_only_that_connection),
        cmocka_unit_test(test_malformed_frames),
        cmocka_unit_test(test_oversized_frame),
        cmocka_unit_test(test_truncated_frames),
        cmocka_unit_test(test_pipelined_requests),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
