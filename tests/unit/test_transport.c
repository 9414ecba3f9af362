/*
 * The transport adapters around the connection core (transport/transport.h)
 * against a real server (server/net.h) on a loop thread of its own:
 *  - blocking: a call gets its answer while a request the server sends
 *    first is skipped; a call the server never answers times out at its
 *    deadline; a refused connect fails at once; a peer that sends garbage
 *    fails the call with the connection core's reason;
 *  - libev: requests on a loop get their answers, one that gets none
 *    fails by the adapter's timer, and a connect to a closed port ends the
 *    connection with the error;
 *  - a connection moves from the loop to blocking I/O and goes on working.
 */
#include "testsupport.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "server_thread.h"
#include "transport.h"

#define RC_ECHO 1    /* answered at once, body echoed */
#define RC_SILENT 2  /* never answered */
#define RC_CHATTY 3  /* a oneway request of the server's own first, then the answer */

typedef server_thread fixture;

static void on_echo(server *s, conn *c, proto_cmd *req, void *ctx)
{
    server_conn_reply(c, req->opaque, proto_cmd_response(RS_SUCCESS, req->opaque, NULL), req->body,
               req->body_len);
}

static void on_silent(server *s, conn *c, proto_cmd *req, void *ctx) {}

static void on_chatty(server *s, conn *c, proto_cmd *req, void *ctx)
{
    proto_cmd *note = proto_cmd_request(RC_NOTIFY_CONSUMER_IDS_CHANGED);

    note->opaque = req->opaque; /* the server's counter may well collide with ours */
    server_conn_send_oneway(c, note, NULL, 0);
    on_echo(s, c, req, ctx);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);

    if (server_thread_open(f, NULL) != 0)
        return -1;
    server_register(f->srv, RC_ECHO, on_echo, f);
    server_register(f->srv, RC_SILENT, on_silent, f);
    server_register(f->srv, RC_CHATTY, on_chatty, f);
    server_thread_run(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    server_thread_close(*state);
    free(*state);
    return 0;
}

/* A port nothing listens on (bound, then closed). */
static int closed_port(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    server *s;
    int port = 0;

    assert_int_equal(server_create(loop, NULL, &s), 0);
    assert_int_equal(server_listen(s, "127.0.0.1", 0, &port), 0);
    server_destroy(s);
    ev_loop_destroy(loop);
    return port;
}

/* ------------------------------------------------------------------ */
/* Blocking                                                            */
/* ------------------------------------------------------------------ */

static void test_sync_call(void **state)
{
    fixture *f = *state;
    char why[256] = "";
    transport_sync *s = NULL;
    proto_reply *reply = NULL;
    proto_cmd *req = proto_cmd_request(RC_CHATTY);
    int64_t t0;

    assert_int_equal(transport_sync_connect(f->addr, proto_mono_ms() + 2000, &s, why, sizeof why),
                     0);
    req->opaque = 7;
    assert_int_equal(transport_sync_call(s, req, "ping", 4, proto_mono_ms() + 2000, &reply), 0);
    assert_true(proto_cmd_is_response(reply->cmd));
    assert_int_equal(reply->cmd->opaque, 7);
    assert_int_equal(reply->cmd->body_len, 4);
    assert_memory_equal(reply->cmd->body, "ping", 4);
    proto_reply_free(reply);

    /* No answer: the call ends at its deadline, not later. */
    req->code = RC_SILENT;
    req->opaque = 8;
    t0 = proto_mono_ms();
    assert_int_equal(transport_sync_call(s, req, NULL, 0, t0 + 300, &reply), -ETIMEDOUT);
    assert_null(reply);
    assert_true(proto_mono_ms() - t0 >= 290);
    assert_true(proto_mono_ms() - t0 < 1500);
    assert_non_null(strstr(transport_sync_why(s), "timed out"));
    transport_sync_close(s);
    proto_cmd_free(req);

    /* Nobody there. */
    {
        char addr[64];

        snprintf(addr, sizeof addr, "127.0.0.1:%d", closed_port());
        assert_int_equal(transport_sync_connect(addr, proto_mono_ms() + 2000, &s, why, sizeof why),
                         -ECONNREFUSED);
    }
    assert_int_equal(transport_sync_connect("no-port", proto_mono_ms() + 100, &s, why, sizeof why),
                     LSMQ_EINVAL);
    assert_non_null(strstr(why, "host:port"));
}

/* A peer that sends garbage: the call fails with the core's verdict, in its words. */
static void test_sync_garbage(void **state)
{
    static const uint8_t huge[8] = {0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    static const uint8_t junk[12] = {0, 0, 0, 8, 0, 0, 0, 4, '{', '{', '{', '{'};
    static const struct {
        const uint8_t *bytes;
        size_t len;
        int rc;
        const char *why;
    } cases[] = {{huge, sizeof huge, LSMQ_ETOOBIG, "oversized frame"},
                 {junk, sizeof junk, LSMQ_ECORRUPT, "undecodable frame"}};
    proto_cmd *req = proto_cmd_request(RC_ECHO);

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int sv[2];
        transport_sync *s;
        proto_reply *reply = (proto_reply *)1;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
        assert_int_equal(write(sv[1], cases[i].bytes, cases[i].len), (ssize_t)cases[i].len);
        s = transport_sync_adopt(proto_conn_create(&(proto_conn_options){.name = "pair"}), sv[0]);
        assert_int_equal(transport_sync_call(s, req, NULL, 0, proto_mono_ms() + 2000, &reply),
                         cases[i].rc);
        assert_null(reply);
        assert_non_null(strstr(transport_sync_why(s), cases[i].why));
        transport_sync_close(s);
        close(sv[1]);
    }
    proto_cmd_free(req);
}

/* ------------------------------------------------------------------ */
/* libev                                                               */
/* ------------------------------------------------------------------ */

/* One client connection on a loop of the test's own. */
typedef struct evclient {
    struct ev_loop *loop;
    transport_flusher *flusher;
    proto_conn *pc;
    transport_ev io;
    int ended;
    int end_err;
    char end_why[256];
    int answers;
    int timeouts;
    int last_rc;
} evclient;

static void end_cb(transport_ev *a, int err, const char *why, void *arg)
{
    evclient *c = arg;

    c->ended = 1;
    c->end_err = err;
    snprintf(c->end_why, sizeof c->end_why, "%s", why);
    transport_ev_close(a);
    proto_conn_fail_all(c->pc, err ? err : -ECONNRESET, why);
    ev_break(c->loop, EVBREAK_ALL);
}

static void answer_cb(int rc, proto_reply *reply, const char *why, void *arg)
{
    evclient *c = arg;

    c->last_rc = rc;
    if (rc == 0)
        c->answers++;
    else if (rc == -ETIMEDOUT)
        c->timeouts++;
    proto_reply_free(reply);
    ev_break(c->loop, EVBREAK_ALL);
}

static void evclient_open(evclient *c, const char *addr)
{
    proto_conn_options o = {.name = addr, .connecting = 1};
    char why[256];

    memset(c, 0, sizeof *c);
    c->loop = ev_loop_new(EVFLAG_AUTO);
    c->flusher = transport_flusher_create(c->loop);
    c->pc = proto_conn_create(&o);
    assert_int_equal(transport_ev_connect(&c->io, c->pc, c->loop, c->flusher, addr, 1000, end_cb,
                                          c, why, sizeof why),
                     0);
}

static void evclient_close(evclient *c)
{
    transport_ev_close(&c->io);
    proto_conn_fail_all(c->pc, LSMQ_ECLOSED, NULL);
    proto_conn_free(c->pc);
    transport_flusher_destroy(c->flusher);
    ev_loop_destroy(c->loop);
}

static void guard_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

/* Run the loop until a callback breaks it (or 5 s pass). */
static void run_until_break(evclient *c)
{
    ev_timer guard;

    ev_timer_init(&guard, guard_cb, 5., 0.);
    ev_timer_start(c->loop, &guard);
    ev_run(c->loop, 0);
    ev_timer_stop(c->loop, &guard);
}

static void test_ev_requests(void **state)
{
    fixture *f = *state;
    evclient c;
    proto_cmd *req = proto_cmd_request(RC_ECHO);
    int i;

    evclient_open(&c, f->addr);
    /* Queued before the connect finished: they leave once it has, in one write. */
    for (i = 0; i < 3; i++)
        assert_int_equal(proto_conn_request(c.pc, req, "x", 1, proto_mono_ms() + 2000,
                                            answer_cb, &c),
                         0);
    while (c.answers < 3 && !c.ended)
        run_until_break(&c);
    assert_int_equal(c.answers, 3);

    /* One the server never answers fails by the adapter's timer. */
    req->code = RC_SILENT;
    assert_int_equal(proto_conn_request(c.pc, req, NULL, 0, proto_mono_ms() + 200, answer_cb,
                                        &c),
                     0);
    run_until_break(&c);
    assert_int_equal(c.timeouts, 1);
    assert_int_equal(c.last_rc, -ETIMEDOUT);
    assert_false(c.ended);

    /* The connection moves to blocking I/O and goes on. */
    {
        int fd = transport_ev_detach(&c.io);
        transport_sync *s = transport_sync_adopt(c.pc, fd);
        proto_reply *reply = NULL;

        req->code = RC_ECHO;
        req->opaque = 99;
        assert_int_equal(transport_sync_call(s, req, "y", 1, proto_mono_ms() + 2000, &reply), 0);
        assert_int_equal(reply->cmd->opaque, 99);
        proto_reply_free(reply);
        transport_sync_close(s);
        c.pc = proto_conn_create(&(proto_conn_options){.name = "spare"});
    }
    proto_cmd_free(req);
    evclient_close(&c);
}

static void test_ev_connect_refused(void **state)
{
    evclient c;
    char addr[64];
    proto_cmd *req = proto_cmd_request(RC_ECHO);

    snprintf(addr, sizeof addr, "127.0.0.1:%d", closed_port());
    evclient_open(&c, addr);
    assert_int_equal(proto_conn_request(c.pc, req, NULL, 0, proto_mono_ms() + 2000, answer_cb,
                                        &c),
                     0);
    run_until_break(&c);
    assert_true(c.ended);
    assert_int_equal(c.end_err, -ECONNREFUSED);
    assert_non_null(strstr(c.end_why, addr));
    assert_int_equal(c.last_rc, -ECONNREFUSED); /* the waiting request failed with it */
    proto_cmd_free(req);
    evclient_close(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sync_call, setup, teardown),
        cmocka_unit_test(test_sync_garbage),
        cmocka_unit_test_setup_teardown(test_ev_requests, setup, teardown),
        cmocka_unit_test(test_ev_connect_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
