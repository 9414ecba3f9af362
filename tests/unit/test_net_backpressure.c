/*
 * Write back-pressure in the transport: a client that sends many requests
 * with big answers and reads nothing makes the server stop reading that
 * connection once its unsent output passes max_pending_output, so memory
 * stays bounded; when the client drains its answers, reading resumes and
 * every request is answered, in order.
 */
#include "testsupport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server_thread.h"

#define BIG_REPLY (256u << 10)
#define REQUESTS 200

typedef struct fixture {
    server_thread st;
    uint8_t *big;
} fixture;

static void big_handler(server *s, conn *c, proto_cmd *req, void *ctx)
{
    fixture *f = ctx;
    server_conn_reply(c, req->opaque, proto_cmd_response(RS_SUCCESS, req->opaque, NULL), f->big,
               BIG_REPLY);
}

typedef struct stats_query {
    server *srv;
    server_stats out;
    sem_t done;
} stats_query;

static void read_stats(void *arg)
{
    stats_query *q = arg;
    server_get_stats(q->srv, &q->out);
    sem_post(&q->done);
}

/* Requests the server has dispatched so far, read on its loop thread. */
static uint64_t requests_handled(fixture *f)
{
    stats_query q = {.srv = f->st.srv};
    sem_init(&q.done, 0, 0);
    server_post(f->st.srv, read_stats, &q);
    sem_wait(&q.done);
    sem_destroy(&q.done);
    return q.out.requests;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->big = calloc(1, BIG_REPLY);
    server_config cfg;
    server_config_init(&cfg);
    cfg.max_pending_output = 1u << 20;
    cfg.name = "test";
    if (server_thread_open(&f->st, &cfg) != 0)
        return -1;
    server_register(f->st.srv, 1, big_handler, f);
    server_thread_run(&f->st);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    server_thread_close(&f->st);
    free(f->big);
    free(f);
    return 0;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 64 << 10;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    return fd;
}

static void read_exact(int fd, uint8_t *buf, size_t len)
{
    while (len) {
        ssize_t n = read(fd, buf, len);
        assert_true(n > 0);
        buf += n;
        len -= (size_t)n;
    }
}

static void test_slow_reader_is_paused_then_served(void **state)
{
    fixture *f = *state;
    int fd = connect_to(f->st.port);

    /* All requests in one go; the socket takes them (they are small). */
    uint8_t *frames = NULL;
    size_t total = 0;
    for (int i = 0; i < REQUESTS; i++) {
        proto_cmd *req = proto_cmd_request(1);
        req->opaque = i;
        uint8_t *frame;
        size_t len;
        assert_int_equal(proto_cmd_encode(req, NULL, 0, &frame, &len), 0);
        proto_cmd_free(req);
        frames = realloc(frames, total + len);
        memcpy(frames + total, frame, len);
        total += len;
        free(frame);
    }
    assert_int_equal(write(fd, frames, total), (ssize_t)total);
    free(frames);

    /* Nobody reads: the server must stop well short of all of them. */
    usleep(500 * 1000);
    uint64_t handled = requests_handled(f);
    /* 1 MiB of pending output plus what the kernel buffers is a few dozen replies. */
    assert_true(handled >= 1);
    assert_true(handled < REQUESTS / 2);
    usleep(300 * 1000);
    assert_int_equal(requests_handled(f), handled); /* paused, not merely slow */

    /* Drain: every request is answered, in order. */
    uint8_t *buf = malloc(BIG_REPLY + 4096);
    for (int i = 0; i < REQUESTS; i++) {
        uint8_t len4[4];
        read_exact(fd, len4, 4);
        uint32_t len = (uint32_t)len4[0] << 24 | (uint32_t)len4[1] << 16 |
                       (uint32_t)len4[2] << 8 | len4[3];
        assert_true(len <= BIG_REPLY + 4096);
        memcpy(buf, len4, 4);
        read_exact(fd, buf + 4, len);
        proto_cmd *resp;
        char err[128];
        assert_int_equal(proto_cmd_decode(buf, len + 4, &resp, err, sizeof err), 0);
        assert_int_equal(resp->opaque, i);
        assert_int_equal(resp->body_len, BIG_REPLY);
        proto_cmd_free(resp);
    }
    free(buf);
    assert_int_equal(requests_handled(f), REQUESTS);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_slow_reader_is_paused_then_served, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
