/*
 * The I/O-free connection core (protocol/conn.h), fed byte vectors: frames
 * in pieces and many per read, responses matched by opaque in any order,
 * requests the peer starts, oneway requests, deadlines by a clock the test
 * turns, the output queue and its back-pressure, closing after the output,
 * and failing every waiting request when the connection dies.
 */
#include "testsupport.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"

/* What the callbacks and hooks saw. */
typedef struct seen {
    int calls;
    int rc;
    int code;
    char why[200];
    size_t body_len;
    char body[64];
    uintptr_t frame;    /* the reply's frame's address (freed since) */
} seen;

typedef struct hooks_seen {
    int reads_on, reads_off, writes;
    int64_t deadline;
    int deadlines;
} hooks_seen;

typedef struct peer_seen {
    int requests;
    int32_t last_code;
    int32_t last_opaque;
    int oneway;
    char body[64];
    int answer;         /* reply at once */
    int close_on;       /* close_after_write when this code arrives */
} peer_seen;

static void want_read(void *data, int on)
{
    hooks_seen *h = data;

    if (on)
        h->reads_on++;
    else
        h->reads_off++;
}

static void want_write(void *data)
{
    ((hooks_seen *)data)->writes++;
}

static void deadline(void *data, int64_t at)
{
    hooks_seen *h = data;

    h->deadline = at;
    h->deadlines++;
}

static void reply_cb(int rc, proto_reply *reply, const char *why, void *arg)
{
    seen *s = arg;

    s->calls++;
    s->rc = rc;
    s->code = reply ? reply->cmd->code : -1;
    s->frame = reply ? (uintptr_t)reply->frame : 0;
    snprintf(s->why, sizeof s->why, "%s", why ? why : "");
    s->body_len = reply && reply->cmd->body ? reply->cmd->body_len : 0;
    if (s->body_len && s->body_len < sizeof s->body) {
        memcpy(s->body, reply->cmd->body, s->body_len);
        s->body[s->body_len] = '\0';
    }
    proto_reply_free(reply);
}

static void request_cb(proto_conn *c, proto_cmd *req, void *arg)
{
    peer_seen *p = arg;

    p->requests++;
    p->last_code = req->code;
    p->last_opaque = req->opaque;
    p->oneway = proto_cmd_is_oneway(req);
    snprintf(p->body, sizeof p->body, "%.*s", (int)req->body_len, (const char *)req->body);
    if (p->answer) {
        proto_cmd *resp = proto_cmd_response(RS_SUCCESS, 0, NULL);

        proto_conn_reply(c, req->opaque, resp, "ok", 2, 0);
        proto_cmd_free(resp);
    }
    if (p->close_on && req->code == p->close_on)
        proto_conn_close_after_write(c);
}

static proto_conn *new_conn(hooks_seen *h, size_t max_output, int connecting)
{
    proto_conn_options o = {.name = "peer:1", .max_output = max_output,
                            .connecting = connecting};
    proto_conn *c = proto_conn_create(&o);
    proto_conn_hooks hooks = {h, want_read, want_write, deadline};

    proto_conn_set_hooks(c, &hooks);
    return c;
}

/* A frame for cmd with body text (cmd freed). */
static uint8_t *frame(proto_cmd *cmd, const char *body, size_t *len)
{
    uint8_t *f;

    assert_int_equal(proto_cmd_encode(cmd, body, body ? strlen(body) : 0, &f, len), 0);
    proto_cmd_free(cmd);
    return f;
}

static uint8_t *response(int32_t code, int32_t opaque, const char *body, size_t *len)
{
    return frame(proto_cmd_response(code, opaque, NULL), body, len);
}

static uint8_t *request(int32_t code, int32_t opaque, int oneway, const char *body, size_t *len)
{
    proto_cmd *cmd = proto_cmd_request(code);

    cmd->opaque = opaque;
    if (oneway)
        cmd->flag |= PROTO_FLAG_ONEWAY;
    return frame(cmd, body, len);
}

/* Everything queued for output, as one byte string (malloc'ed), written off. */
static uint8_t *drain(proto_conn *c, size_t *len)
{
    struct iovec iov[16];
    size_t n, i, total = 0;
    uint8_t *all = NULL;

    while ((n = proto_conn_output_iov(c, iov, 16)) > 0) {
        size_t chunk = 0;

        for (i = 0; i < n; i++) {
            all = realloc(all, total + iov[i].iov_len);
            memcpy(all + total, iov[i].iov_base, iov[i].iov_len);
            total += iov[i].iov_len;
            chunk += iov[i].iov_len;
        }
        assert_int_equal(proto_conn_output_done(c, chunk), 0);
    }
    assert_int_equal(proto_conn_output_bytes(c), 0);
    *len = total;
    return all;
}

/* ------------------------------------------------------------------ */

static void test_partial_and_pipelined_responses(void **state)
{
    hooks_seen h = {0};
    proto_conn *c = new_conn(&h, 0, 0);
    seen a = {0}, b = {0}, d = {0};
    uint8_t *f1, *f2, *f3, both[1024];
    size_t l1, l2, l3, i;

    proto_conn_expect(c, 5, 1000, reply_cb, &a);
    proto_conn_expect(c, 6, 1000, reply_cb, &b);
    proto_conn_expect(c, 7, 1000, reply_cb, &d);
    assert_int_equal(proto_conn_pending(c), 3);
    f1 = response(RS_SYSTEM_BUSY, 6, "busy", &l1);
    f2 = response(RS_SUCCESS, 5, "five", &l2);
    f3 = response(RS_SUCCESS, 7, NULL, &l3);

    /* Byte by byte: nothing until the last byte, then out of order by opaque. */
    for (i = 0; i + 1 < l1; i++) {
        assert_int_equal(proto_conn_feed(c, f1 + i, 1), 0);
        assert_int_equal(b.calls, 0);
    }
    assert_int_equal(proto_conn_feed(c, f1 + i, 1), 0);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.code, RS_SYSTEM_BUSY);
    assert_string_equal(b.body, "busy");
    /* Two frames and a half in one read, the rest in the next. */
    memcpy(both, f2, l2);
    memcpy(both + l2, f3, l3);
    assert_int_equal(proto_conn_feed(c, both, l2 + 3), 0);
    assert_int_equal(a.calls, 1);
    assert_string_equal(a.body, "five");
    assert_int_equal(d.calls, 0);
    assert_int_equal(proto_conn_feed(c, both + l2 + 3, l3 - 3), 0);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.body_len, 0);
    assert_int_equal(proto_conn_pending(c), 0);
    /* A late answer to nobody is dropped quietly. */
    assert_int_equal(proto_conn_feed(c, f2, l2), 0);
    assert_int_equal(a.calls, 1);
    free(f1);
    free(f2);
    free(f3);
    proto_conn_free(c);
}

/* A response read straight into the input space keeps its frame (no copy). */
static void test_response_frame_owned(void **state)
{
    hooks_seen h = {0};
    proto_conn *c = new_conn(&h, 0, 0);
    seen a = {0};
    size_t len, room;
    uint8_t *f = response(RS_SUCCESS, 9, "payload", &len), *space;
    uintptr_t at;

    proto_conn_expect(c, 9, 1000, reply_cb, &a);
    space = proto_conn_input_space(c, &room);
    at = (uintptr_t)space;
    assert_non_null(space);
    assert_true(room >= len);
    memcpy(space, f, len);
    assert_int_equal(proto_conn_input_done(c, len), 0);
    assert_int_equal(a.calls, 1);
    assert_string_equal(a.body, "payload");
    assert_true(a.frame == at); /* the input buffer itself, handed over */
    free(f);
    proto_conn_free(c);
}

/* A large frame's length is known early: the space grows to hold all of it. */
static void test_input_space_fits_large_frame(void **state)
{
    hooks_seen h = {0};
    proto_conn *c = new_conn(&h, 0, 0);
    seen a = {0};
    size_t big = 300000, len, room;
    char *body = malloc(big + 1);
    uint8_t *f, *space;

    memset(body, 'b', big);
    body[big] = '\0';
    f = response(RS_SUCCESS, 3, body, &len);
    proto_conn_expect(c, 3, 1000, reply_cb, &a);
    assert_int_equal(proto_conn_feed(c, f, 100), 0);
    space = proto_conn_input_space(c, &room);
    assert_non_null(space);
    assert_int_equal(room, len - 100);
    memcpy(space, f + 100, len - 100);
    assert_int_equal(proto_conn_input_done(c, len - 100), 0);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.body_len, big);
    free(f);
    free(body);
    proto_conn_free(c);
}

static void test_peer_requests_and_oneway(void **state)
{
    hooks_seen h = {0};
    proto_conn *c = new_conn(&h, 0, 0);
    peer_seen p = {.answer = 1};
    seen mine = {0};
    uint8_t *f1, *f2, *out;
    size_t l1, l2, out_len;
    proto_cmd *resp;
    char err[128];

    proto_conn_set_request_cb(c, request_cb, &p);
    /* The peer's own counter may reuse our opaques: a request never matches a waiter. */
    proto_conn_expect(c, 40, 1000, reply_cb, &mine);
    f1 = request(RC_NOTIFY_CONSUMER_IDS_CHANGED, 40, 0, "ids", &l1);
    assert_int_equal(proto_conn_feed(c, f1, l1), 0);
    assert_int_equal(p.requests, 1);
    assert_int_equal(p.last_code, RC_NOTIFY_CONSUMER_IDS_CHANGED);
    assert_string_equal(p.body, "ids");
    assert_int_equal(mine.calls, 0);
    assert_int_equal(h.writes, 1);
    out = drain(c, &out_len);
    assert_int_equal(proto_cmd_decode(out, out_len, &resp, err, sizeof err), 0);
    assert_true(proto_cmd_is_response(resp));
    assert_int_equal(resp->opaque, 40);
    assert_int_equal(resp->body_len, 2);
    proto_cmd_free(resp);
    free(out);

    /* A oneway request: the callback's reply is dropped. */
    f2 = request(RC_HEART_BEAT, 41, 1, NULL, &l2);
    assert_int_equal(proto_conn_feed(c, f2, l2), 0);
    assert_int_equal(p.requests, 2);
    assert_true(p.oneway);
    assert_int_equal(proto_conn_output_bytes(c), 0);
    /* The next request, not oneway, is answered again. */
    assert_int_equal(proto_conn_feed(c, f1, l1), 0);
    assert_int_equal(p.requests, 3);
    assert_true(proto_conn_output_bytes(c) > 0);
    free(f1);
    free(f2);
    proto_conn_fail_all(c, LSMQ_ECLOSED, NULL);
    proto_conn_free(c);
}

static void test_requests_and_deadlines(void **state)
{
    hooks_seen h = {0};
    proto_conn *c = new_conn(&h, 0, 0);
    seen a = {0}, b = {0}, d = {0};
    proto_cmd *req = proto_cmd_request(RC_HEART_BEAT), *sent;
    uint8_t *out, *f;
    size_t out_len, len, flen = 0;
    char err[128];

    assert_int_equal(proto_conn_request(c, req, "hb", 2, 5000, reply_cb, &a), 0);
    assert_int_equal(h.deadline, 5000);
    /* An earlier deadline moves the owner's timer; a later one does not. */
    proto_conn_expect(c, 100, 1000, reply_cb, &b);
    assert_int_equal(h.deadline, 1000);
    proto_conn_expect(c, 101, 9000, reply_cb, &d);
    assert_int_equal(h.deadline, 1000);
    assert_int_equal(h.deadlines, 2);

    out = drain(c, &out_len);
    assert_int_equal(proto_frame_check(out, out_len, PROTO_FRAME_MAX_DEFAULT, &flen), 1);
    assert_int_equal(proto_cmd_decode(out, out_len, &sent, err, sizeof err), 0);
    assert_int_equal(sent->opaque, req->opaque);
    assert_false(proto_cmd_is_oneway(sent));
    proto_cmd_free(sent);
    free(out);

    /* The clock decides: nothing at 999, the first at 1000, the next deadline said. */
    assert_int_equal(proto_conn_expire(c, 999), 1000);
    assert_int_equal(b.calls, 0);
    assert_int_equal(proto_conn_expire(c, 1000), 5000);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.rc, -ETIMEDOUT);
    assert_non_null(strstr(b.why, "peer:1"));
    assert_int_equal(h.deadline, 5000);
    /* Its late response goes nowhere; the request's own response completes it. */
    f = response(RS_SUCCESS, 100, NULL, &len);
    assert_int_equal(proto_conn_feed(c, f, len), 0);
    free(f);
    assert_int_equal(b.calls, 1);
    f = response(RS_SUCCESS, req->opaque, NULL, &len);
    assert_int_equal(proto_conn_feed(c, f, len), 0);
    free(f);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.rc, 0);

    /* Death fails the rest, once; later requests are refused. */
    proto_conn_fail_all(c, -ECONNRESET, NULL);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.rc, -ECONNRESET);
    assert_int_equal(proto_conn_pending(c), 0);
    assert_int_equal(proto_conn_state(c), PROTO_CONN_CLOSED);
    assert_int_equal(h.deadline, INT64_MAX);
    proto_conn_fail_all(c, -ECONNRESET, NULL);
    assert_int_equal(d.calls, 1);
    assert_int_equal(proto_conn_request(c, req, NULL, 0, 1, reply_cb, &a), LSMQ_ECLOSED);
    proto_conn_expect(c, 7, 1, reply_cb, &a);
    assert_int_equal(a.calls, 2);
    assert_int_equal(a.rc, LSMQ_ECLOSED);
    proto_cmd_free(req);
    proto_conn_free(c);
}

static void test_oneway_request_and_opaque_reuse(void **state)
{
    hooks_seen h = {0};
    proto_conn *c = new_conn(&h, 0, 0);
    proto_cmd *req = proto_cmd_request(RC_UNREGISTER_CLIENT), *sent;
    seen old = {0}, young = {0};
    uint8_t *out;
    size_t out_len;
    char err[128];

    assert_int_equal(proto_conn_request(c, req, NULL, 0, 0, NULL, NULL), 0);
    assert_int_equal(proto_conn_pending(c), 0);
    assert_false(proto_cmd_is_oneway(req)); /* the caller's command is left as it was */
    out = drain(c, &out_len);
    assert_int_equal(proto_cmd_decode(out, out_len, &sent, err, sizeof err), 0);
    assert_true(proto_cmd_is_oneway(sent));
    proto_cmd_free(sent);
    free(out);
    proto_cmd_free(req);

    /* A second waiter on one opaque: the first cannot be alive any more. */
    proto_conn_expect(c, 77, 1000, reply_cb, &old);
    proto_conn_expect(c, 77, 1000, reply_cb, &young);
    assert_int_equal(old.calls, 1);
    assert_int_equal(old.rc, -ETIMEDOUT);
    assert_int_equal(proto_conn_pending(c), 1);
    proto_conn_fail_all(c, LSMQ_ECLOSED, "stopping");
    assert_int_equal(young.rc, LSMQ_ECLOSED);
    assert_string_equal(young.why, "stopping");
    proto_conn_free(c);
}

/* Answers every request with a 600-byte body. */
static void big_answer_cb(proto_conn *c, proto_cmd *req, void *arg)
{
    int *n = arg;
    char *body = malloc(600);
    proto_cmd *resp = proto_cmd_response(RS_SUCCESS, 0, NULL);

    memset(body, 'x', 600);
    (*n)++;
    assert_int_equal(proto_conn_reply(c, req->opaque, resp, body, 600, PROTO_SEND_TAKE_BODY), 0);
    proto_cmd_free(resp);
}

static void test_backpressure_pauses_delivery(void **state)
{
    hooks_seen h = {0};
    proto_conn *c = new_conn(&h, 1000, 0);
    uint8_t *f, *all = NULL;
    size_t len, total = 0;
    struct iovec iov[64];
    size_t n, i, bytes;
    int answered = 0, k;

    proto_conn_set_request_cb(c, big_answer_cb, &answered);
    for (k = 0; k < 5; k++) {
        f = request(RC_HEART_BEAT, k, 0, NULL, &len);
        all = realloc(all, total + len);
        memcpy(all + total, f, len);
        total += len;
        free(f);
    }
    /* All five arrive at once; two answers pass 1000 bytes and the rest wait. */
    assert_int_equal(proto_conn_feed(c, all, total), 0);
    free(all);
    assert_int_equal(answered, 2);
    assert_int_equal(proto_conn_state(c), PROTO_CONN_PAUSED);
    assert_int_equal(h.reads_off, 1);
    /* Writing a little is not enough to resume... */
    n = proto_conn_output_iov(c, iov, 64);
    assert_true(n >= 4);
    assert_int_equal(proto_conn_output_done(c, 100), 0);
    assert_int_equal(proto_conn_state(c), PROTO_CONN_PAUSED);
    /* ...draining below half is: the held-back requests are delivered. */
    n = proto_conn_output_iov(c, iov, 64);
    for (i = 0, bytes = 0; i < n; i++)
        bytes += iov[i].iov_len;
    assert_int_equal(proto_conn_output_done(c, bytes), 0);
    assert_int_equal(h.reads_on, 1);
    assert_true(answered >= 4);
    /* And once more for the last one. */
    n = proto_conn_output_iov(c, iov, 64);
    for (i = 0, bytes = 0; i < n; i++)
        bytes += iov[i].iov_len;
    assert_int_equal(proto_conn_output_done(c, bytes), 0);
    assert_int_equal(answered, 5);
    proto_conn_fail_all(c, LSMQ_ECLOSED, NULL);
    proto_conn_free(c);
}

static void test_connecting_and_closing(void **state)
{
    hooks_seen h = {0};
    proto_conn *c = new_conn(&h, 0, 1);
    peer_seen p = {.close_on = RC_UNREGISTER_CLIENT};
    proto_cmd *req = proto_cmd_request(RC_HEART_BEAT);
    uint8_t *f, *out;
    size_t len, out_len;

    assert_int_equal(proto_conn_state(c), PROTO_CONN_CONNECTING);
    /* Output waits for the connect; no write is asked for yet. */
    assert_int_equal(proto_conn_request(c, req, NULL, 0, 0, NULL, NULL), 0);
    assert_int_equal(h.writes, 0);
    proto_conn_connected(c);
    assert_int_equal(proto_conn_state(c), PROTO_CONN_OPEN);
    assert_int_equal(h.reads_on, 1);
    assert_int_equal(h.writes, 1);
    out = drain(c, &out_len);
    free(out);
    proto_cmd_free(req);

    /* A request asks to close: the frames behind it are not delivered. */
    proto_conn_set_request_cb(c, request_cb, &p);
    f = request(RC_UNREGISTER_CLIENT, 1, 0, NULL, &len);
    {
        size_t l2;
        uint8_t *g = request(RC_HEART_BEAT, 2, 0, NULL, &l2), *both = malloc(len + l2);

        memcpy(both, f, len);
        memcpy(both + len, g, l2);
        assert_int_equal(proto_conn_feed(c, both, len + l2), 0);
        free(both);
        free(g);
    }
    free(f);
    assert_int_equal(p.requests, 1);
    assert_int_equal(proto_conn_state(c), PROTO_CONN_CLOSING);
    assert_int_equal(h.reads_off, 1);
    req = proto_cmd_response(0, 1, NULL);
    assert_int_equal(proto_conn_send(c, req, NULL, 0, 0), LSMQ_ECLOSED);
    proto_cmd_free(req);
    proto_conn_free(c);
}

/* Garbage: the connection refuses it and says why. */
static void test_bad_input(void **state)
{
    hooks_seen h = {0};
    proto_conn *c = new_conn(&h, 0, 0);
    uint8_t negative[8] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    uint8_t huge[8] = {0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    uint8_t junk[12] = {0, 0, 0, 8, 0, 0, 0, 4, '{', '{', '{', '{'};

    assert_int_equal(proto_conn_feed(c, negative, sizeof negative), LSMQ_ECORRUPT);
    assert_non_null(strstr(proto_conn_error(c), "malformed"));
    proto_conn_free(c);
    c = new_conn(&h, 0, 0);
    assert_int_equal(proto_conn_feed(c, huge, sizeof huge), LSMQ_ETOOBIG);
    assert_non_null(strstr(proto_conn_error(c), "oversized"));
    proto_conn_free(c);
    c = new_conn(&h, 0, 0);
    assert_int_equal(proto_conn_feed(c, junk, sizeof junk), LSMQ_ECORRUPT);
    assert_non_null(strstr(proto_conn_error(c), "undecodable"));
    proto_conn_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partial_and_pipelined_responses),
        cmocka_unit_test(test_response_frame_owned),
        cmocka_unit_test(test_input_space_fits_large_frame),
        cmocka_unit_test(test_peer_requests_and_oneway),
        cmocka_unit_test(test_requests_and_deadlines),
        cmocka_unit_test(test_oneway_request_and_opaque_reuse),
        cmocka_unit_test(test_backpressure_pauses_delivery),
        cmocka_unit_test(test_connecting_and_closing),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
