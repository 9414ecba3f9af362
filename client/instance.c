/*
 * mqclient: what every producer and consumer runs on. One I/O thread with
 * its own libev loop (ev_loop_new) owns the connections, timers and all
 * protocol state. Other threads talk to it only through a job queue: a
 * mutex-guarded list plus one ev_async (libev's "queueing from a thread
 * context"), so a burst of posts costs one wake-up.
 *
 * RPCs: the calling thread encodes the frame (so the caller's body need
 * not outlive the call) with an opaque from an instance-wide counter, then
 * posts it; the I/O thread finds or opens the connection to the address (a
 * protocol/conn.h core driven by transport/'s libev adapter), registers the
 * waiter and queues the frame, which the adapter writes with the rest of
 * the iteration's output before the loop sleeps. Replies, timeouts (the
 * adapter's timer) and connection failures complete the waiter exactly
 * once, on the I/O thread. Synchronous calls wait on a condvar for that
 * completion.
 *
 * Shutdown: lsmq__mqc_stop closes the queue to new jobs, then a last job fails
 * every request still waiting with LSMQ_ECLOSED, drops the timers and
 * breaks the loop; the thread is joined before anything is freed.
 */
#include <errno.h>
#include <ev.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "client_internal.h"
#include "transport.h"

#define CONNECT_TIMEOUT_MS 3000
#define ROUTE_CHECK_MS 1000
#define HEARTBEAT_MS 30000

struct mq_job {
    mq_job *next;
    mq_job_fn *fn;
    void *arg;
};

/* A connection: the protocol core, driven on the I/O thread's loop. */
struct conn_entry {
    char *addr;
    proto_conn *pc;
    transport_ev io;
    mqclient *mqc;
    UT_hash_handle hh;
};

struct mq_timer {
    ev_timer w;
    mqclient *mqc;
    mq_job_fn *fn;
    void *arg;
    int oneshot;
    mq_timer *prev, *next;
};

/* ------------------------------------------------------------------ */
/* Creation                                                            */
/* ------------------------------------------------------------------ */

/* Split "a:1;b:2" into addresses; 0 or LSMQ_EINVAL. */
static int parse_namesrv(mqclient *mqc, const char *list)
{
    const char *p = list;

    while (*p) {
        const char *end = strchr(p, ';');
        size_t n = end ? (size_t)(end - p) : strlen(p);

        while (n && (*p == ' ' || *p == '\t'))
            p++, n--;
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n) {
            if (memchr(p, ':', n) == NULL || n > 255)
                return LSMQ_EINVAL;
            mqc->namesrv = proto_xrealloc(mqc->namesrv, (mqc->n_namesrv + 1) * sizeof(char *));
            mqc->namesrv[mqc->n_namesrv++] = proto_xstrndup(p, n);
        }
        if (!end)
            break;
        p = end + 1;
    }
    return mqc->n_namesrv ? 0 : LSMQ_EINVAL;
}

int lsmq__mqc_create(const char *namesrv, const char *instance, mqclient **out, lsmq_errslot *e)
{
    mqclient *mqc;

    *out = NULL;
    if (namesrv == NULL) {
        lsmq__error(e, -1, "no name server address");
        return LSMQ_EINVAL;
    }
    mqc = proto_xcalloc(1, sizeof *mqc);
    pthread_mutex_init(&mqc->lock, NULL);
    pthread_mutex_init(&mqc->routes_lock, NULL);
    pthread_mutex_init(&mqc->down_lock, NULL);
    pthread_mutex_init(&mqc->err_lock, NULL);
    lsmq__err_init(&mqc->err, &mqc->err_lock);
    if (parse_namesrv(mqc, namesrv) != 0) {
        lsmq__error(e, -1, "bad name server list '%s' (want host:port;host:port)", namesrv);
        lsmq__mqc_destroy(mqc);
        return LSMQ_EINVAL;
    }
    atomic_init(&mqc->next_opaque, 1);
    lsmq__local_ip4(mqc->ip4);
    lsmq__mqc_set_instance(mqc, instance);
    *out = mqc;
    return 0;
}

int lsmq__mqc_set_instance(mqclient *mqc, const char *instance)
{
    char ip[INET_ADDRSTRLEN];

    if (mqc->started)
        return LSMQ_EINVAL;
    if (instance && strlen(instance) >= sizeof mqc->instance) {
        lsmq__error(&mqc->err, -1, "instance name too long");
        return LSMQ_EINVAL;
    }
    inet_ntop(AF_INET, mqc->ip4, ip, sizeof ip);
    if (instance && *instance)
        lsmq__strlcpy(mqc->instance, instance, sizeof mqc->instance);
    else
        lsmq__default_instance(mqc->instance, sizeof mqc->instance);
    snprintf(mqc->client_id, sizeof mqc->client_id, "%s@%s", ip, mqc->instance);
    return 0;
}

void lsmq__mqc_set_hooks(mqclient *mqc, const mq_owner_hooks *hooks)
{
    mqc->hooks = *hooks;
}

const char *lsmq__mqc_client_id(const mqclient *mqc) { return mqc->client_id; }
lsmq_errslot *lsmq__mqc_err(mqclient *mqc) { return &mqc->err; }
const uint8_t *lsmq__mqc_ip4(const mqclient *mqc) { return mqc->ip4; }

int lsmq__mqc_in_loop(const mqclient *mqc)
{
    return mqc->started && pthread_equal(pthread_self(), mqc->thread);
}

int lsmq__mqc_running(const mqclient *mqc)
{
    return mqc->started;
}

/* ------------------------------------------------------------------ */
/* Jobs                                                                */
/* ------------------------------------------------------------------ */

static int post_job(mqclient *mqc, mq_job_fn *fn, void *arg, int force)
{
    mq_job *j = proto_xmalloc(sizeof *j);

    j->next = NULL;
    j->fn = fn;
    j->arg = arg;
    pthread_mutex_lock(&mqc->lock);
    if ((mqc->closed && !force) || !mqc->started) {
        pthread_mutex_unlock(&mqc->lock);
        free(j);
        return LSMQ_ECLOSED;
    }
    if (mqc->jobs_tail)
        mqc->jobs_tail->next = j;
    else
        mqc->jobs_head = j;
    mqc->jobs_tail = j;
    pthread_mutex_unlock(&mqc->lock);
    ev_async_send(mqc->loop, (ev_async *)mqc->wake);
    return 0;
}

int lsmq__mqc_post(mqclient *mqc, mq_job_fn *fn, void *arg)
{
    return post_job(mqc, fn, arg, 0);
}

typedef struct post_wait {
    pthread_mutex_t m;
    pthread_cond_t cv;
    int done;
    mq_job_fn *fn;
    void *arg;
} post_wait;

static void post_wait_job(mqclient *mqc, void *arg)
{
    post_wait *pw = arg;

    pw->fn(mqc, pw->arg);
    pthread_mutex_lock(&pw->m);
    pw->done = 1;
    pthread_cond_signal(&pw->cv);
    pthread_mutex_unlock(&pw->m);
}

int lsmq__mqc_post_wait(mqclient *mqc, mq_job_fn *fn, void *arg)
{
    post_wait pw;
    int rc;

    if (lsmq__mqc_in_loop(mqc)) {
        fn(mqc, arg);
        return 0;
    }
    memset(&pw, 0, sizeof pw);
    pthread_mutex_init(&pw.m, NULL);
    pthread_cond_init(&pw.cv, NULL);
    pw.fn = fn;
    pw.arg = arg;
    rc = lsmq__mqc_post(mqc, post_wait_job, &pw);
    if (rc == 0) {
        pthread_mutex_lock(&pw.m);
        while (!pw.done)
            pthread_cond_wait(&pw.cv, &pw.m);
        pthread_mutex_unlock(&pw.m);
    }
    pthread_mutex_destroy(&pw.m);
    pthread_cond_destroy(&pw.cv);
    return rc;
}

/* Run every queued job; the list is swapped out under the lock, run outside it. */
static void wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    mqclient *mqc = w->data;

    for (;;) {
        mq_job *j;

        pthread_mutex_lock(&mqc->lock);
        j = mqc->jobs_head;
        mqc->jobs_head = mqc->jobs_tail = NULL;
        pthread_mutex_unlock(&mqc->lock);
        if (j == NULL)
            return;
        while (j) {
            mq_job *next = j->next;

            j->fn(mqc, j->arg);
            free(j);
            j = next;
        }
    }
}

/* ------------------------------------------------------------------ */
/* Timers                                                              */
/* ------------------------------------------------------------------ */

static void timer_unlink(mq_timer *t)
{
    mqclient *mqc = t->mqc;

    if (t->prev)
        t->prev->next = t->next;
    else
        mqc->timers = t->next;
    if (t->next)
        t->next->prev = t->prev;
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    mq_timer *t = w->data;

    if (t->oneshot) {
        mq_job_fn *fn = t->fn;
        void *arg = t->arg;
        mqclient *mqc = t->mqc;

        timer_unlink(t);
        free(t);
        fn(mqc, arg);
        return;
    }
    t->fn(t->mqc, t->arg);
}

static mq_timer *timer_new(mqclient *mqc, double first_s, double interval_s, mq_job_fn *fn,
                           void *arg, int oneshot)
{
    mq_timer *t = proto_xcalloc(1, sizeof *t);

    t->mqc = mqc;
    t->fn = fn;
    t->arg = arg;
    t->oneshot = oneshot;
    t->next = mqc->timers;
    if (mqc->timers)
        mqc->timers->prev = t;
    mqc->timers = t;
    ev_timer_init(&t->w, timer_cb, first_s, interval_s);
    t->w.data = t;
    ev_timer_start(mqc->loop, &t->w);
    return t;
}

mq_timer *lsmq__mqc_every(mqclient *mqc, int first_ms, int interval_ms, mq_job_fn *fn, void *arg)
{
    return timer_new(mqc, first_ms / 1000.0, interval_ms / 1000.0, fn, arg, 0);
}

void lsmq__mqc_timer_again(mq_timer *t, int in_ms)
{
    /* Fire in in_ms, then keep the interval. */
    ev_timer_stop(t->mqc->loop, &t->w);
    ev_timer_set(&t->w, in_ms / 1000.0, t->w.repeat);
    ev_timer_start(t->mqc->loop, &t->w);
}

void lsmq__mqc_after(mqclient *mqc, int delay_ms, mq_job_fn *fn, void *arg)
{
    timer_new(mqc, delay_ms / 1000.0, 0., fn, arg, 1);
}

/* ------------------------------------------------------------------ */
/* Connections                                                         */
/* ------------------------------------------------------------------ */

static void conn_kill(mqclient *mqc, conn_entry *e, int err, const char *why)
{
    /* Out of the table first, so failure callbacks that resend get a new connection. */
    HASH_DEL(mqc->conns, e);
    if (err != LSMQ_ECLOSED)
        proto_log(PROTO_LOG_INFO, "liblsmq: connection to %s closed: %s", e->addr,
                  why ? why : lsmq_strerror(err));
    transport_ev_close(&e->io);
    proto_conn_fail_all(e->pc, err, why);
    proto_conn_free(e->pc);
    free(e->addr);
    free(e);
}

/* The adapter's last word on a connection: it may go now. */
static void conn_end_cb(transport_ev *a, int err, const char *why, void *arg)
{
    conn_entry *e = arg;

    if (proto_conn_state(e->pc) == PROTO_CONN_CONNECTING)
        lsmq__mqc_mark_down(e->mqc, e->addr, why); /* it never answered the connect */
    conn_kill(e->mqc, e, err ? err : -ECONNRESET, why);
}

/* Answer a request the peer started (REMOTING.md §3.9); req lives during the call. */
static void peer_request_cb(proto_conn *pc, proto_cmd *req, void *arg)
{
    mqclient *mqc = arg;
    proto_cmd *resp = NULL;
    char *body = NULL;
    size_t body_len = 0;
    int served = req->code == RC_NOTIFY_CONSUMER_IDS_CHANGED;

    if (req->code == RC_NOTIFY_CONSUMER_IDS_CHANGED) {
        const char *group = proto_cmd_get(req, "consumerGroup");

        proto_log(PROTO_LOG_DEBUG, "liblsmq: %s: consumer ids of %s changed", proto_conn_name(pc),
                  group ? group : "?");
        if (mqc->hooks.ids_changed)
            mqc->hooks.ids_changed(mqc->hooks.arg, group ? group : "");
    } else if (mqc->hooks.peer_request) {
        served = mqc->hooks.peer_request(mqc->hooks.arg, req, &resp, &body, &body_len);
    }
    if (!served) {
        resp = proto_cmd_response(RS_REQUEST_CODE_NOT_SUPPORTED, req->opaque, NULL);
        proto_cmd_set_remarkf(resp, " request type %d not supported", req->code);
    }
    /* A oneway request's answer is dropped by the connection. */
    if (resp)
        proto_conn_reply(pc, req->opaque, resp, body, body_len, PROTO_SEND_TAKE_BODY);
    else
        free(body);
    proto_cmd_free(resp);
}

/* The open (or opening) connection to addr; NULL with *err and why if none can be made. */
static conn_entry *conn_get(mqclient *mqc, const char *addr, int *err, char *why,
                            size_t why_len)
{
    proto_conn_options o = {.name = addr, .connecting = 1};
    conn_entry *e = NULL;

    HASH_FIND_STR(mqc->conns, addr, e);
    if (e)
        return e;
    e = proto_xcalloc(1, sizeof *e);
    e->pc = proto_conn_create(&o);
    *err = transport_ev_connect(&e->io, e->pc, mqc->loop, mqc->flusher, addr, CONNECT_TIMEOUT_MS,
                                conn_end_cb, e, why, why_len);
    if (*err != 0) {
        proto_conn_free(e->pc);
        free(e);
        return NULL;
    }
    e->addr = proto_xstrdup(addr);
    e->mqc = mqc;
    proto_conn_set_request_cb(e->pc, peer_request_cb, mqc);
    HASH_ADD_KEYPTR(hh, mqc->conns, e->addr, strlen(e->addr), e);
    return e;
}

/* ------------------------------------------------------------------ */
/* RPCs                                                                */
/* ------------------------------------------------------------------ */

typedef struct rpc_job {
    char addr[256];
    uint8_t *frame;
    size_t len;
    int32_t opaque;
    int timeout_ms;
    proto_reply_cb *cb;
    void *arg;
} rpc_job;

static void rpc_job_run(mqclient *mqc, void *arg)
{
    rpc_job *j = arg;
    char why[300];
    int err = 0;
    conn_entry *e = conn_get(mqc, j->addr, &err, why, sizeof why);

    if (e == NULL) {
        lsmq__mqc_mark_down(mqc, j->addr, why);
        free(j->frame);
        if (j->cb)
            j->cb(err, NULL, why, j->arg);
        free(j);
        return;
    }
    if (j->cb)
        proto_conn_expect(e->pc, j->opaque, proto_mono_ms() + j->timeout_ms, j->cb, j->arg);
    proto_conn_send_frame(e->pc, j->frame, j->len);
    free(j);
}

int lsmq__mqc_call(mqclient *mqc, const char *addr, proto_cmd *cmd, const void *body,
              size_t body_len, int timeout_ms, proto_reply_cb *cb, void *arg, lsmq_errslot *e)
{
    rpc_job *j;
    int32_t saved_flag = cmd->flag;
    int rc;

    if (addr == NULL || strlen(addr) >= sizeof j->addr) {
        lsmq__error(e, -1, "bad address");
        return LSMQ_EINVAL;
    }
    j = proto_xcalloc(1, sizeof *j);
    strcpy(j->addr, addr);
    cmd->opaque = (int32_t)atomic_fetch_add(&mqc->next_opaque, 1);
    if (cb == NULL)
        cmd->flag |= PROTO_FLAG_ONEWAY;
    rc = proto_cmd_encode(cmd, body, body_len, &j->frame, &j->len);
    cmd->flag = saved_flag;
    if (rc != 0) {
        lsmq__error(e, -1, "request does not encode: %s", lsmq_strerror(rc));
        free(j);
        return rc;
    }
    j->opaque = cmd->opaque;
    j->timeout_ms = timeout_ms > 0 ? timeout_ms : 3000;
    j->cb = cb;
    j->arg = arg;
    rc = lsmq__mqc_post(mqc, rpc_job_run, j);
    if (rc != 0) {
        lsmq__error(e, -1, "client is shut down");
        free(j->frame);
        free(j);
    }
    return rc;
}

/* A synchronous caller's slot; two references: the caller's and the callback's. */
typedef struct waiter {
    pthread_mutex_t m;
    pthread_cond_t cv;
    atomic_int refs;
    int done;
    int rc;
    proto_reply *reply;
    char err[512];
} waiter;

static void waiter_unref(waiter *w)
{
    if (atomic_fetch_sub(&w->refs, 1) != 1)
        return;
    proto_reply_free(w->reply);
    pthread_mutex_destroy(&w->m);
    pthread_cond_destroy(&w->cv);
    free(w);
}

static void waiter_cb(int rc, proto_reply *reply, const char *why, void *arg)
{
    waiter *w = arg;

    pthread_mutex_lock(&w->m);
    w->rc = rc;
    w->reply = reply;
    if (rc != 0)
        lsmq__strlcpy(w->err, why ? why : lsmq_strerror(rc), sizeof w->err);
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->m);
    waiter_unref(w);
}

int lsmq__mqc_call_sync(mqclient *mqc, const char *addr, proto_cmd *cmd, const void *body,
                   size_t body_len, int timeout_ms, proto_reply **out, lsmq_errslot *e)
{
    waiter *w;
    struct timespec until;
    int rc;

    *out = NULL;
    if (lsmq__mqc_in_loop(mqc)) {
        lsmq__error(e, -1, "synchronous call from the client's own I/O thread (a callback)");
        return LSMQ_EINVAL;
    }
    if (timeout_ms <= 0)
        timeout_ms = 3000;
    w = proto_xcalloc(1, sizeof *w);
    pthread_mutex_init(&w->m, NULL);
    {
        pthread_condattr_t ca;

        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&w->cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    atomic_init(&w->refs, 2);
    rc = lsmq__mqc_call(mqc, addr, cmd, body, body_len, timeout_ms, waiter_cb, w, e);
    if (rc != 0) {
        atomic_store(&w->refs, 1);
        waiter_unref(w);
        return rc;
    }
    /* The I/O thread times the request out; the extra second covers a stalled loop. */
    until = proto_deadline_after(CLOCK_MONOTONIC, (int64_t)timeout_ms + 1000);
    pthread_mutex_lock(&w->m);
    while (!w->done) {
        if (pthread_cond_timedwait(&w->cv, &w->m, &until) == ETIMEDOUT)
            break;
    }
    if (!w->done) {
        rc = -ETIMEDOUT;
        lsmq__error(e, -1, "request to %s timed out", addr);
    } else if (w->rc != 0) {
        rc = w->rc;
        lsmq__error(e, -1, "%s", w->err);
    } else {
        *out = w->reply;
        w->reply = NULL;
    }
    pthread_mutex_unlock(&w->m);
    waiter_unref(w);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Thread                                                              */
/* ------------------------------------------------------------------ */

static void route_timer_cb(mqclient *mqc, void *arg)
{
    lsmq__mqc_route_refresh_all(mqc);
}

static void heartbeat_timer_cb(mqclient *mqc, void *arg)
{
    lsmq__mqc_heartbeat_all(mqc);
}

static void *io_main(void *arg)
{
    mqclient *mqc = arg;

    ev_run(mqc->loop, 0);
    return NULL;
}

int lsmq__mqc_start(mqclient *mqc)
{
    ev_async *wake;
    int rc;

    if (mqc->started)
        return LSMQ_EINVAL;
    mqc->loop = ev_loop_new(EVFLAG_AUTO);
    if (mqc->loop == NULL) {
        lsmq__error(&mqc->err, -1, "cannot create an event loop");
        return -ENOMEM;
    }
    wake = proto_xcalloc(1, sizeof *wake);
    mqc->wake = wake;
    /* Watchers start here, before another thread can post (ev.pod, ev_async). */
    ev_async_init(wake, wake_cb);
    wake->data = mqc;
    ev_async_start(mqc->loop, wake);
    mqc->flusher = transport_flusher_create(mqc->loop);
    lsmq__mqc_every(mqc, ROUTE_CHECK_MS, ROUTE_CHECK_MS, route_timer_cb, NULL);
    lsmq__mqc_every(mqc, HEARTBEAT_MS, HEARTBEAT_MS, heartbeat_timer_cb, NULL);
    mqc->started = 1;
    rc = pthread_create(&mqc->thread, NULL, io_main, mqc);
    if (rc != 0) {
        mqc->started = 0;
        lsmq__error(&mqc->err, -1, "cannot start the I/O thread: %s", strerror(rc));
        return -rc;
    }
    return 0;
}

static void stop_job(mqclient *mqc, void *arg)
{
    conn_entry *e, *tmp;
    mq_timer *list;

    /* Failure callbacks may post or call; both are refused from now on. */
    HASH_ITER(hh, mqc->conns, e, tmp) {
        conn_kill(mqc, e, LSMQ_ECLOSED, "the client is shutting down");
    }
    /*
     * One-shot timers run now, so that what they hold (a queue reference,
     * a context) is released; their owners see they are stopping. Timers
     * those runs add are freed without running.
     */
    list = mqc->timers;
    mqc->timers = NULL;
    while (list) {
        mq_timer *t = list;

        list = t->next;
        ev_timer_stop(mqc->loop, &t->w);
        if (t->oneshot)
            t->fn(mqc, t->arg);
        free(t);
    }
    while (mqc->timers) {
        mq_timer *t = mqc->timers;

        ev_timer_stop(mqc->loop, &t->w);
        timer_unlink(t);
        free(t);
    }
    transport_flusher_destroy(mqc->flusher);
    mqc->flusher = NULL;
    ev_async_stop(mqc->loop, (ev_async *)mqc->wake);
    ev_break(mqc->loop, EVBREAK_ALL);
}

void lsmq__mqc_stop(mqclient *mqc)
{
    if (!mqc->started)
        return;
    pthread_mutex_lock(&mqc->lock);
    mqc->closed = 1;
    pthread_mutex_unlock(&mqc->lock);
    post_job(mqc, stop_job, NULL, 1);
    pthread_join(mqc->thread, NULL);
    mqc->started = 0;
}

void lsmq__mqc_destroy(mqclient *mqc)
{
    size_t i;

    if (mqc == NULL)
        return;
    lsmq__mqc_stop(mqc);
    transport_flusher_destroy(mqc->flusher); /* a loop that never ran keeps its flusher */
    if (mqc->loop)
        ev_loop_destroy(mqc->loop);
    free(mqc->wake);
    lsmq__mqc_routes_free(mqc);
    lsmq__mqc_down_free(mqc);
    for (i = 0; i < mqc->n_namesrv; i++)
        free(mqc->namesrv[i]);
    free(mqc->namesrv);
    pthread_mutex_destroy(&mqc->lock);
    pthread_mutex_destroy(&mqc->routes_lock);
    pthread_mutex_destroy(&mqc->down_lock);
    pthread_mutex_destroy(&mqc->err_lock);
    free(mqc);
}
