/*
 * The server side of the transport: listening socket, dispatch table,
 * cross-thread posting, the idle sweep, and freeing closed connections once
 * per loop iteration. Connections are in conn.c; their replies are written
 * just before the loop sleeps by the transport flusher.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alloc.h"
#include "log.h"
#include "net_internal.h"

void server_config_init(server_config *c)
{
    memset(c, 0, sizeof *c);
    c->max_frame = PROTO_FRAME_MAX_DEFAULT;
    c->max_pending_output = 16u << 20;
    c->idle_timeout_s = 120;
    c->name = "server";
}

/* Last before the loop sleeps (after the flusher): free what closed this iteration. */
static void reap_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    server__conn_reap((server *)((char *)w - offsetof(server, reap_prep)));
}

static void wakeup_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    server *s = (server *)((char *)w - offsetof(server, wakeup));
    pthread_mutex_lock(&s->post_lock);
    posted *p = s->post_head;
    s->post_head = s->post_tail = NULL;
    pthread_mutex_unlock(&s->post_lock);
    while (p) {
        posted *next = p->next;
        p->fn(p->arg);
        free(p);
        p = next;
    }
}

void server_run_posted(server *s)
{
    wakeup_cb(s->loop, &s->wakeup, 0);
}

void server_post(server *s, void (*fn)(void *), void *arg)
{
    posted *p = proto_xmalloc(sizeof *p);
    p->next = NULL;
    p->fn = fn;
    p->arg = arg;
    pthread_mutex_lock(&s->post_lock);
    if (s->post_tail)
        s->post_tail->next = p;
    else
        s->post_head = p;
    s->post_tail = p;
    pthread_mutex_unlock(&s->post_lock);
    ev_async_send(s->loop, &s->wakeup);
}

static void idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    server *s = (server *)((char *)w - offsetof(server, idle_timer));
    ev_tstamp now = ev_now(loop);
    conn *c, *tmp;
    HASH_ITER(hh, s->conns, c, tmp) {
        /* Never cut a connection that still has output going out. */
        if (proto_conn_state(c->pc) != PROTO_CONN_CLOSED && proto_conn_output_bytes(c->pc) == 0 &&
            now - transport_ev_last_read(&c->io) > s->cfg.idle_timeout_s) {
            proto_log(PROTO_LOG_INFO, "%s: closing idle connection %s", s->cfg.name, c->peer);
            server__conn_close(c);
        }
    }
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    server *s = (server *)((char *)w - offsetof(server, accept_io));
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(s->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                proto_log(PROTO_LOG_WARN, "%s: accept: %s", s->cfg.name, strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char peer[64] = "?";
        uint8_t ip[4] = {0, 0, 0, 0};
        uint32_t port = 0;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
            memcpy(ip, &sin->sin_addr, 4);
            port = ntohs(sin->sin_port);
            char a[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &sin->sin_addr, a, sizeof a);
            snprintf(peer, sizeof peer, "%s:%u", a, port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
            port = ntohs(sin6->sin6_port);
            char a[INET6_ADDRSTRLEN];
            inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof a);
            snprintf(peer, sizeof peer, "%s:%u", a, port);
        }
        conn *c = server__conn_new(s, fd, peer, ip, port);
        HASH_ADD(hh, s->conns, id, sizeof c->id, c);
        s->stats.connections_open++;
        s->stats.connections_total++;
    }
}

transport_flusher *server_flusher(server *s) { return s->flusher; }

int server_create(struct ev_loop *loop, const server_config *cfg, server **out)
{
    server *s = proto_xcalloc(1, sizeof *s);
    s->loop = loop;
    if (cfg)
        s->cfg = *cfg;
    else
        server_config_init(&s->cfg);
    s->listen_fd = -1;
    s->next_conn_id = 1;
    pthread_mutex_init(&s->post_lock, NULL);
    s->owns_flusher = s->cfg.flusher == NULL;
    s->flusher = s->owns_flusher ? transport_flusher_create(loop) : s->cfg.flusher;
    ev_prepare_init(&s->reap_prep, reap_cb);
    ev_set_priority(&s->reap_prep, EV_MINPRI);
    ev_prepare_start(loop, &s->reap_prep);
    ev_async_init(&s->wakeup, wakeup_cb);
    ev_async_start(loop, &s->wakeup);
    double sweep = s->cfg.idle_timeout_s > 10 ? 10 : s->cfg.idle_timeout_s / 2;
    if (s->cfg.idle_timeout_s > 0) {
        ev_timer_init(&s->idle_timer, idle_cb, sweep, sweep);
        ev_timer_start(loop, &s->idle_timer);
    }
    *out = s;
    return 0;
}

int server_listen(server *s, const char *host, int port, int *bound_port)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    if (!host || !*host || strcmp(host, "0.0.0.0") == 0)
        sin.sin_addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
        return LSMQ_EINVAL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(fd, 1024) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    if (bound_port) {
        socklen_t sl = sizeof sin;
        getsockname(fd, (struct sockaddr *)&sin, &sl);
        *bound_port = ntohs(sin.sin_port);
    }
    s->listen_fd = fd;
    ev_io_init(&s->accept_io, accept_cb, fd, EV_READ);
    ev_io_start(s->loop, &s->accept_io);
    s->listening = true;
    return 0;
}

void server_stop_listening(server *s)
{
    if (!s->listening)
        return;
    ev_io_stop(s->loop, &s->accept_io);
    close(s->listen_fd);
    s->listen_fd = -1;
    s->listening = false;
}

void server_destroy(server *s)
{
    if (!s)
        return;
    server_stop_listening(s);
    conn *c, *tmp;
    HASH_ITER(hh, s->conns, c, tmp) {
        transport_ev_flush_now(&c->io);
        server__conn_close(c);
    }
    server__conn_reap(s);
    ev_prepare_stop(s->loop, &s->reap_prep);
    if (s->owns_flusher)
        transport_flusher_destroy(s->flusher);
    ev_async_stop(s->loop, &s->wakeup);
    if (s->cfg.idle_timeout_s > 0)
        ev_timer_stop(s->loop, &s->idle_timer);
    /* Run what was posted last so nothing posted leaks. */
    wakeup_cb(s->loop, &s->wakeup, 0);
    pthread_mutex_destroy(&s->post_lock);
    free(s);
}

void server_register(server *s, int code, server_handler fn, void *ctx)
{
    if (code >= 0 && code < MAX_HANDLER_CODE) {
        s->handlers[code].fn = fn;
        s->handlers[code].ctx = ctx;
    }
}

void server_clear_handlers(server *s)
{
    memset(s->handlers, 0, sizeof s->handlers);
    s->close_hook = NULL;
    s->close_ctx = NULL;
}

void server_on_close(server *s, server_close_hook fn, void *ctx)
{
    s->close_hook = fn;
    s->close_ctx = ctx;
}

struct ev_loop *server_loop(server *s) { return s->loop; }

conn *server_conn_find(server *s, uint64_t id)
{
    conn *c = NULL;
    HASH_FIND(hh, s->conns, &id, sizeof id, c);
    if (c == NULL)
        return NULL;
    enum proto_conn_state st = proto_conn_state(c->pc);
    return st == PROTO_CONN_CLOSING || st == PROTO_CONN_CLOSED ? NULL : c;
}

void server_get_stats(server *s, server_stats *out) { *out = s->stats; }

void server__dispatch(server *s, conn *c, proto_cmd *req)
{
    s->stats.requests++;
    c->language = req->language;
    c->version = req->version;
    int code = req->code;
    if (code >= 0 && code < MAX_HANDLER_CODE && s->handlers[code].fn) {
        /* A oneway request's replies are dropped by the connection (REMOTING.md §1.6). */
        s->handlers[code].fn(s, c, req, s->handlers[code].ctx);
        return;
    }
    if (proto_cmd_is_oneway(req))
        return;
    char remark[64];
    snprintf(remark, sizeof remark, " request type %d not supported", code);
    server_conn_reply_code(c, req->opaque, RS_REQUEST_CODE_NOT_SUPPORTED, remark);
}
