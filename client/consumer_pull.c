/*
 * The pull (assign) consumer: the caller chooses the queues; the I/O
 * thread keeps a long-polling pull loop per queue filling a per-queue
 * buffer; poll() hands buffered messages to the caller and moves each
 * queue's position past them; commit() stores the positions with
 * UPDATE_CONSUMER_OFFSET. No heartbeats and no rebalancing: the group's
 * other members are none of its business (Java's lite pull consumer in
 * assign mode).
 *
 * Seek bumps the queue's generation: pull results of an older generation
 * are thrown away and their loop ends, and a loop for the new generation
 * starts at once, without waiting for a long poll of the old one.
 *
 * Brokers: a queue is pulled from the broker its last pull answer
 * suggested, or another of its group while that one is gone
 * (pull_source.c); offsets are committed to and asked of the group's
 * master, or a replica while there is none.
 *
 * Locking: every assigned-queue field is guarded by the consumer's lock,
 * taken by user threads and by the I/O thread alike; it is never held
 * across a call into the mqclient. A queue's pull_source is the I/O
 * thread's alone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client_internal.h"

#define PULL_BATCH 32
#define PULL_SUSPEND_MS 15000
#define PULL_TIMEOUT_MS 30000
#define BUFFER_MAX 1000
#define FLOW_DELAY_MS 50
#define ERROR_DELAY_MS 3000
#define NO_ROUTE_DELAY_MS 1000
#define CALL_TIMEOUT_MS 3000

typedef struct aq {
    char *key;
    lsmq_queue q;
    struct lsmq_pull_consumer *c;
    int refs;
    int dropped;
    int ready;              /* next_offset known for this generation */
    int gen;
    int64_t next_offset;    /* next pull */
    int64_t position;       /* next offset poll returns: what commit stores */
    lsmq_message *head, *tail;
    size_t n_buf;
    pull_source src;        /* I/O thread only */
    UT_hash_handle hh;
    struct aq *all_prev, *all_next;
} aq;

struct lsmq_pull_consumer {
    mqclient *mqc;
    char *group;
    int from;
    int started;
    pthread_mutex_t lock;
    pthread_cond_t cv;      /* messages arrived */
    int stopping;
    aq *assigned;
    aq *all;
    unsigned rr;            /* where the next poll starts, for fairness */
};

/* A pull loop's (or an offset look-up's) handle on its queue and generation. */
typedef struct loop_ctx {
    aq *a;
    int gen;
} loop_ctx;

static const subscription all_sub = {.topic = NULL, .expr = "*", .all = 1};

/* ------------------------------------------------------------------ */
/* Assigned queues (caller holds the lock)                             */
/* ------------------------------------------------------------------ */

static aq *aq_new(lsmq_pull_consumer *c, const lsmq_queue *q)
{
    aq *a = proto_xcalloc(1, sizeof *a);
    char key[600];

    lsmq__mq_key(key, sizeof key, q->topic, q->broker_name, q->queue_id);
    a->key = proto_xstrdup(key);
    a->q = *q;
    a->c = c;
    a->refs = 1;
    a->next_offset = a->position = -1;
    lsmq__pull_source_init(&a->src);
    HASH_ADD_KEYPTR(hh, c->assigned, a->key, strlen(a->key), a);
    a->all_next = c->all;
    if (c->all)
        c->all->all_prev = a;
    c->all = a;
    return a;
}

static void aq_free(aq *a)
{
    lsmq_pull_consumer *c = a->c;

    if (a->all_prev)
        a->all_prev->all_next = a->all_next;
    else
        c->all = a->all_next;
    if (a->all_next)
        a->all_next->all_prev = a->all_prev;
    lsmq__msg_free_list(a->head);
    lsmq__pull_source_free(&a->src);
    free(a->key);
    free(a);
}

static void aq_unref(aq *a)
{
    if (--a->refs == 0)
        aq_free(a);
}

static void aq_clear_buffer(aq *a)
{
    lsmq__msg_free_list(a->head);
    a->head = a->tail = NULL;
    a->n_buf = 0;
}

static loop_ctx *ctx_new(aq *a)
{
    loop_ctx *x = proto_xmalloc(sizeof *x);

    x->a = a;
    x->gen = a->gen;
    a->refs++;
    return x;
}

/* Done with a ctx: drop its reference (takes the lock). */
static void ctx_end(loop_ctx *x)
{
    lsmq_pull_consumer *c = x->a->c;

    pthread_mutex_lock(&c->lock);
    aq_unref(x->a);
    pthread_mutex_unlock(&c->lock);
    free(x);
}

/* Is this ctx still the live one? (caller holds the lock) */
static int ctx_live(const loop_ctx *x)
{
    return !x->a->c->stopping && !x->a->dropped && x->gen == x->a->gen;
}

/* ------------------------------------------------------------------ */
/* Pull loop (I/O thread)                                              */
/* ------------------------------------------------------------------ */

static void pull_now(mqclient *mqc, void *arg);

/* The loop's next pull, after delay_ms (0: now). */
static void pull_after(loop_ctx *x, int delay_ms)
{
    if (delay_ms > 0)
        lsmq__mqc_after(x->a->c->mqc, delay_ms, pull_now, x);
    else
        pull_now(x->a->c->mqc, x);
}

static void pull_cb(int rc, proto_reply *reply, const char *why, void *arg)
{
    loop_ctx *x = arg;
    aq *a = x->a;
    lsmq_pull_consumer *c = a->c;
    pull_result res;
    int prc = -1, delay_ms;

    memset(&res, 0, sizeof res);
    if (rc == 0) {
        int code = reply->cmd->code;

        if (code == RS_SUCCESS || code == RS_PULL_NOT_FOUND || code == RS_PULL_RETRY_IMMEDIATELY ||
            code == RS_PULL_OFFSET_MOVED) {
            prc = lsmq__pull_parse(reply, a->q.broker_name, &all_sub, &res, NULL);
        } else {
            proto_log(PROTO_LOG_WARN, "liblsmq: pull %s:%s:%d: response code %d %s", a->q.topic,
                      a->q.broker_name, (int)a->q.queue_id, code,
                      reply->cmd->remark ? reply->cmd->remark : "");
            proto_reply_free(reply);
        }
    }
    pthread_mutex_lock(&c->lock);
    if (!ctx_live(x) || rc == LSMQ_ECLOSED) {
        pthread_mutex_unlock(&c->lock);
        lsmq__pull_result_free(&res);
        ctx_end(x);
        return;
    }
    pthread_mutex_unlock(&c->lock);
    if (rc != 0)
        proto_log(PROTO_LOG_INFO, "liblsmq: pull %s:%s:%d from %s failed: %s", a->q.topic,
                  a->q.broker_name, (int)a->q.queue_id, a->src.addr, why);
    delay_ms = lsmq__pull_source_done(c->mqc, &a->src, a->q.topic, a->q.broker_name, rc,
                                      prc == 0 ? &res : NULL, ERROR_DELAY_MS);
    if (prc != 0) {
        pull_after(x, delay_ms);
        return;
    }
    pthread_mutex_lock(&c->lock);
    if (!ctx_live(x)) {
        pthread_mutex_unlock(&c->lock);
        lsmq__pull_result_free(&res);
        ctx_end(x);
        return;
    }
    if (res.next_begin >= 0)
        a->next_offset = res.next_begin;
    if (res.head) {
        if (a->tail)
            a->tail->next = res.head;
        else
            a->head = res.head;
        a->tail = res.tail;
        a->n_buf += res.n;
        res.head = res.tail = NULL;
        pthread_cond_broadcast(&c->cv);
    } else if (a->head == NULL && res.next_begin >= 0 &&
               (res.code == RS_PULL_OFFSET_MOVED || res.next_begin > a->position)) {
        /* Nothing buffered: the position follows the queue (moved or filtered entries). */
        a->position = res.next_begin;
    }
    pthread_mutex_unlock(&c->lock);
    lsmq__pull_result_free(&res);
    pull_after(x, delay_ms);
}

static void pull_now(mqclient *mqc, void *arg)
{
    loop_ctx *x = arg;
    aq *a = x->a;
    lsmq_pull_consumer *c = a->c;
    pull_args pa;
    proto_cmd *cmd;
    const char *addr;
    int64_t offset;
    int full;

    pthread_mutex_lock(&c->lock);
    if (!ctx_live(x)) {
        pthread_mutex_unlock(&c->lock);
        ctx_end(x);
        return;
    }
    full = a->n_buf >= BUFFER_MAX;
    offset = a->next_offset;
    pthread_mutex_unlock(&c->lock);
    if (full) {
        lsmq__mqc_after(mqc, FLOW_DELAY_MS, pull_now, x);
        return;
    }
    addr = lsmq__pull_source_next(mqc, &a->src, a->q.topic, a->q.broker_name, a->q.queue_id,
                                  offset, NULL); /* its pulls carry no commit offset */
    if (addr == NULL) {
        lsmq__mqc_route_refresh(mqc, a->q.topic, 0);
        lsmq__mqc_after(mqc, NO_ROUTE_DELAY_MS, pull_now, x);
        return;
    }
    memset(&pa, 0, sizeof pa);
    pa.group = c->group;
    pa.topic = a->q.topic;
    pa.queue_id = a->q.queue_id;
    pa.offset = offset;
    pa.max_msgs = PULL_BATCH;
    pa.suspend_ms = PULL_SUSPEND_MS;
    cmd = lsmq__pull_request(&pa);
    if (lsmq__mqc_call(mqc, addr, cmd, NULL, 0, PULL_TIMEOUT_MS, pull_cb, x, NULL) != 0)
        ctx_end(x);
    proto_cmd_free(cmd);
}

/* Offset known for x's generation: set it and start that generation's loop. */
static void start_at(loop_ctx *x, int64_t offset)
{
    lsmq_pull_consumer *c = x->a->c;
    int live;

    pthread_mutex_lock(&c->lock);
    live = ctx_live(x);
    if (live) {
        x->a->next_offset = x->a->position = offset;
        x->a->ready = 1;
    }
    pthread_mutex_unlock(&c->lock);
    if (live)
        pull_now(c->mqc, x);
    else
        ctx_end(x);
}

/* ------------------------------------------------------------------ */
/* Start offsets (I/O thread)                                          */
/* ------------------------------------------------------------------ */

enum { FIND_COMMITTED, FIND_MAX, FIND_MIN };

static void find_offset(loop_ctx *x, int what);

static void refind_job(mqclient *mqc, void *arg)
{
    find_offset(arg, FIND_COMMITTED);
}

static void find_cb(int rc, proto_reply *reply, const char *why, void *arg)
{
    loop_ctx *x = arg;
    lsmq_pull_consumer *c = x->a->c;
    int64_t off = -1;
    int code = rc == 0 ? reply->cmd->code : -1, live;

    if (rc == 0 && code == RS_SUCCESS && proto_cmd_get_i64(reply->cmd, "offset", &off) == 0 &&
        off >= 0) {
        proto_reply_free(reply);
        start_at(x, off);
        return;
    }
    proto_reply_free(reply);
    if (rc == 0 && (code == RS_QUERY_NOT_FOUND || code == RS_SUCCESS)) {
        /* No committed offset: consume-from decides (§3.3). */
        if (c->from == LSMQ_FROM_FIRST)
            start_at(x, 0);
        else
            find_offset(x, FIND_MAX);
        return;
    }
    pthread_mutex_lock(&c->lock);
    live = ctx_live(x);
    pthread_mutex_unlock(&c->lock);
    if (rc == LSMQ_ECLOSED || !live) {
        ctx_end(x);
        return;
    }
    proto_log(PROTO_LOG_INFO, "liblsmq: offset look-up for %s:%s:%d failed (%d); retrying",
              x->a->q.topic, x->a->q.broker_name, (int)x->a->q.queue_id, rc ? rc : code);
    lsmq__mqc_after(c->mqc, ERROR_DELAY_MS, refind_job, x);
}

static void find_offset(loop_ctx *x, int what)
{
    aq *a = x->a;
    lsmq_pull_consumer *c = a->c;
    char *addr = lsmq__mqc_offset_addr(c->mqc, a->q.topic, a->q.broker_name);
    proto_cmd *cmd;
    int live;

    pthread_mutex_lock(&c->lock);
    live = ctx_live(x);
    pthread_mutex_unlock(&c->lock);
    if (!live) {
        free(addr);
        ctx_end(x);
        return;
    }
    if (addr == NULL) {
        lsmq__mqc_route_refresh(c->mqc, a->q.topic, 0);
        lsmq__mqc_after(c->mqc, NO_ROUTE_DELAY_MS, refind_job, x);
        return;
    }
    if (what == FIND_COMMITTED)
        cmd = lsmq__offset_query_cmd(c->group, a->q.topic, a->q.queue_id);
    else
        cmd = lsmq__offset_max_cmd(a->q.topic, a->q.queue_id);
    if (what == FIND_MIN)
        cmd->code = RC_GET_MIN_OFFSET; /* same header as GET_MAX_OFFSET (§3.7) */
    if (lsmq__mqc_call(c->mqc, addr, cmd, NULL, 0, CALL_TIMEOUT_MS, find_cb, x, NULL) != 0)
        ctx_end(x);
    proto_cmd_free(cmd);
    free(addr);
}

typedef struct begin_job_arg {
    loop_ctx *x;
    int64_t seek;          /* >= 0: a plain offset; LSMQ_OFFSET_*; or -100: committed */
} begin_job_arg;

#define SEEK_COMMITTED (-100)

static void begin_job(mqclient *mqc, void *arg)
{
    begin_job_arg *b = arg;
    loop_ctx *x = b->x;
    int64_t seek = b->seek;

    free(b);
    if (seek >= 0)
        start_at(x, seek);
    else if (seek == LSMQ_OFFSET_FIRST)
        find_offset(x, FIND_MIN);
    else if (seek == LSMQ_OFFSET_LAST)
        find_offset(x, FIND_MAX);
    else
        find_offset(x, FIND_COMMITTED);
}

/* Start a generation's work from a user thread (caller does NOT hold the lock). */
static void post_begin(lsmq_pull_consumer *c, loop_ctx *x, int64_t seek)
{
    begin_job_arg *b = proto_xmalloc(sizeof *b);

    b->x = x;
    b->seek = seek;
    if (lsmq__mqc_post(c->mqc, begin_job, b) != 0) {
        free(b);
        ctx_end(x);
    }
}

/* ------------------------------------------------------------------ */
/* Public API                                                          */
/* ------------------------------------------------------------------ */

int lsmq_pull_consumer_create(const char *namesrv, const char *group,
                              lsmq_pull_consumer **out)
{
    lsmq_pull_consumer *c;
    mqclient *mqc;
    int rc;

    *out = NULL;
    if (!lsmq__valid_name(group, 120))
        return LSMQ_EINVAL; /* no consumer to say more on */
    if ((rc = lsmq__mqc_create(namesrv, NULL, &mqc, NULL)) != 0)
        return rc;
    c = proto_xcalloc(1, sizeof *c);
    c->mqc = mqc;
    c->group = proto_xstrdup(group);
    c->from = LSMQ_FROM_LAST;
    pthread_mutex_init(&c->lock, NULL);
    {
        pthread_condattr_t ca;

        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&c->cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    *out = c;
    return 0;
}

int lsmq_pull_consumer_set_consume_from(lsmq_pull_consumer *c, int from)
{
    if (c == NULL || c->started || (from != LSMQ_FROM_LAST && from != LSMQ_FROM_FIRST))
        return LSMQ_EINVAL;
    c->from = from;
    return 0;
}

int lsmq_pull_consumer_start(lsmq_pull_consumer *c)
{
    int rc;

    if (c == NULL)
        return LSMQ_EINVAL;
    if (c->started) {
        lsmq__error(lsmq__mqc_err(c->mqc), -1, "pull consumer already started");
        return LSMQ_EINVAL;
    }
    if ((rc = lsmq__mqc_start(c->mqc)) != 0)
        return rc;
    c->started = 1;
    return 0;
}

static int check_started(lsmq_pull_consumer *c)
{
    if (c == NULL)
        return LSMQ_EINVAL;
    if (!c->started) {
        lsmq__error(lsmq__mqc_err(c->mqc), -1, "pull consumer not started");
        return LSMQ_EINVAL;
    }
    if (lsmq__mqc_in_loop(c->mqc)) {
        lsmq__error(lsmq__mqc_err(c->mqc), -1, "call from the consumer's own I/O thread");
        return LSMQ_EINVAL;
    }
    return 0;
}

int lsmq_pull_consumer_last_error(lsmq_pull_consumer *c, char *buf, size_t cap)
{
    if (c == NULL) {
        if (buf && cap)
            lsmq__strlcpy(buf, "no consumer", cap);
        return -1;
    }
    return lsmq__err_copy(lsmq__mqc_err(c->mqc), buf, cap);
}

int lsmq_pull_consumer_queues(lsmq_pull_consumer *c, const char *topic, lsmq_queue **queues,
                              size_t *n)
{
    route *r = NULL;
    lsmq_queue *out;
    size_t i;
    int rc;

    *queues = NULL;
    *n = 0;
    if ((rc = check_started(c)) != 0)
        return rc;
    if (!lsmq__valid_name(topic, sizeof out->topic - 1)) {
        lsmq__error(lsmq__mqc_err(c->mqc), -1, "bad topic name");
        return LSMQ_EINVAL;
    }
    if ((rc = lsmq__mqc_route_get(c->mqc, topic, 0, &r, lsmq__mqc_err(c->mqc))) != 0)
        return rc;
    out = proto_xcalloc(r->n_sub ? r->n_sub : 1, sizeof *out);
    for (i = 0; i < r->n_sub; i++) {
        lsmq__strlcpy(out[i].topic, topic, sizeof out[i].topic);
        lsmq__strlcpy(out[i].broker_name, r->brokers[r->sub[i].broker].name,
                      sizeof out[i].broker_name);
        out[i].queue_id = r->sub[i].queue_id;
    }
    *queues = out;
    *n = r->n_sub;
    lsmq__route_unref(r);
    return 0;
}

int lsmq_pull_consumer_assign(lsmq_pull_consumer *c, const lsmq_queue *queues, size_t n)
{
    loop_ctx **fresh;
    size_t i, k = 0;
    aq *a, *tmp;
    int rc;

    if ((rc = check_started(c)) != 0)
        return rc;
    for (i = 0; i < n; i++) {
        if (!lsmq__valid_name(queues[i].topic, sizeof queues[i].topic - 1) ||
            queues[i].queue_id < 0 || queues[i].broker_name[0] == '\0') {
            lsmq__error(lsmq__mqc_err(c->mqc), -1, "bad queue %zu", i);
            return LSMQ_EINVAL;
        }
    }
    fresh = proto_xcalloc(n ? n : 1, sizeof *fresh);
    pthread_mutex_lock(&c->lock);
    HASH_ITER(hh, c->assigned, a, tmp) {
        int keep = 0;

        for (i = 0; i < n && !keep; i++)
            keep = strcmp(a->q.topic, queues[i].topic) == 0 &&
                   strcmp(a->q.broker_name, queues[i].broker_name) == 0 &&
                   a->q.queue_id == queues[i].queue_id;
        if (keep)
            continue;
        a->dropped = 1;
        aq_clear_buffer(a);
        HASH_DEL(c->assigned, a);
        aq_unref(a);
    }
    for (i = 0; i < n; i++) {
        char key[600];

        lsmq__mq_key(key, sizeof key, queues[i].topic, queues[i].broker_name, queues[i].queue_id);
        a = NULL;
        HASH_FIND_STR(c->assigned, key, a);
        if (a == NULL)
            fresh[k++] = ctx_new(aq_new(c, &queues[i]));
    }
    pthread_mutex_unlock(&c->lock);
    /* Routes for the brokers' addresses, before the I/O thread needs them. */
    for (i = 0; i < k; i++) {
        route *r = NULL;

        if (lsmq__mqc_route_get(c->mqc, fresh[i]->a->q.topic, 0, &r, NULL) == 0)
            lsmq__route_unref(r);
        post_begin(c, fresh[i], SEEK_COMMITTED);
    }
    free(fresh);
    return 0;
}

int lsmq_pull_consumer_seek(lsmq_pull_consumer *c, const lsmq_queue *q, int64_t offset)
{
    char key[600];
    loop_ctx *x;
    aq *a = NULL;
    int rc;

    if ((rc = check_started(c)) != 0)
        return rc;
    if (q == NULL || (offset < 0 && offset != LSMQ_OFFSET_FIRST && offset != LSMQ_OFFSET_LAST))
        return LSMQ_EINVAL;
    lsmq__mq_key(key, sizeof key, q->topic, q->broker_name, q->queue_id);
    pthread_mutex_lock(&c->lock);
    HASH_FIND_STR(c->assigned, key, a);
    if (a == NULL) {
        pthread_mutex_unlock(&c->lock);
        lsmq__error(lsmq__mqc_err(c->mqc), -1, "queue %s:%s:%d is not assigned", q->topic,
                    q->broker_name, (int)q->queue_id);
        return LSMQ_ENOTFOUND;
    }
    a->gen++;
    a->ready = 0;
    aq_clear_buffer(a);
    if (offset >= 0)
        a->position = offset;
    x = ctx_new(a);
    pthread_mutex_unlock(&c->lock);
    post_begin(c, x, offset);
    return 0;
}

int lsmq_pull_consumer_poll(lsmq_pull_consumer *c, int timeout_ms, size_t max,
                            lsmq_message ***msgs, size_t *n)
{
    struct timespec until;
    lsmq_message **out;
    size_t got = 0;
    int rc;

    *msgs = NULL;
    *n = 0;
    if ((rc = check_started(c)) != 0)
        return rc;
    if (max == 0)
        return LSMQ_EINVAL;
    until = proto_deadline_after(CLOCK_MONOTONIC, timeout_ms);
    out = proto_xcalloc(max, sizeof *out);
    pthread_mutex_lock(&c->lock);
    for (;;) {
        size_t nq = HASH_COUNT(c->assigned), skip, i;
        aq *a, *tmp;

        /* Start at a different queue each time so none starves. */
        skip = nq ? c->rr++ % nq : 0;
        for (i = 0; i < 2 && got < max; i++) {
            size_t pos = 0;

            HASH_ITER(hh, c->assigned, a, tmp) {
                int first_round = i == 0;

                if ((first_round && pos++ < skip) || (!first_round && pos++ >= skip))
                    continue;
                while (a->head && got < max) {
                    lsmq_message *m = a->head;

                    a->head = m->next;
                    if (a->head == NULL)
                        a->tail = NULL;
                    m->next = NULL;
                    a->n_buf--;
                    a->position = m->queue_offset + 1;
                    out[got++] = m;
                }
            }
        }
        if (got > 0 || timeout_ms <= 0 || c->stopping)
            break;
        if (pthread_cond_timedwait(&c->cv, &c->lock, &until) == ETIMEDOUT)
            timeout_ms = 0; /* one last look, then return */
    }
    pthread_mutex_unlock(&c->lock);
    if (got == 0) {
        free(out);
        return 0;
    }
    *msgs = out;
    *n = got;
    return 0;
}

typedef struct commit_item {
    lsmq_queue q;
    int64_t offset;
} commit_item;

int lsmq_pull_consumer_commit(lsmq_pull_consumer *c)
{
    commit_item *items;
    size_t n = 0, i;
    aq *a, *tmp;
    int rc, first = 0;

    if ((rc = check_started(c)) != 0)
        return rc;
    pthread_mutex_lock(&c->lock);
    items = proto_xcalloc(HASH_COUNT(c->assigned) + 1, sizeof *items);
    HASH_ITER(hh, c->assigned, a, tmp) {
        if (a->position < 0)
            continue;
        items[n].q = a->q;
        items[n++].offset = a->position;
    }
    pthread_mutex_unlock(&c->lock);
    for (i = 0; i < n; i++) {
        char *addr = lsmq__mqc_offset_addr(c->mqc, items[i].q.topic, items[i].q.broker_name);
        proto_cmd *cmd;
        proto_reply *reply = NULL;

        if (addr == NULL) {
            lsmq__error(lsmq__mqc_err(c->mqc), -1, "no route to broker %s", items[i].q.broker_name);
            rc = LSMQ_ENOTFOUND;
        } else {
            cmd = proto_cmd_request(RC_UPDATE_CONSUMER_OFFSET);
            proto_cmd_set(cmd, "consumerGroup", c->group);
            proto_cmd_set(cmd, "topic", items[i].q.topic);
            proto_cmd_set_i64(cmd, "queueId", items[i].q.queue_id);
            proto_cmd_set_i64(cmd, "commitOffset", items[i].offset);
            rc = lsmq__mqc_call_sync(c->mqc, addr, cmd, NULL, 0, CALL_TIMEOUT_MS, &reply,
                                lsmq__mqc_err(c->mqc));
            if (rc == 0 && reply->cmd->code != RS_SUCCESS)
                rc = lsmq__broker_error(lsmq__mqc_err(c->mqc), reply->cmd, "offset commit");
            proto_reply_free(reply);
            proto_cmd_free(cmd);
            free(addr);
        }
        if (rc != 0 && first == 0)
            first = rc;
    }
    free(items);
    return first;
}

int lsmq_pull_consumer_committed(lsmq_pull_consumer *c, const lsmq_queue *q, int64_t *offset)
{
    char *addr;
    proto_cmd *cmd;
    proto_reply *reply = NULL;
    route *r = NULL;
    int rc;

    if ((rc = check_started(c)) != 0)
        return rc;
    if (lsmq__mqc_route_get(c->mqc, q->topic, 0, &r, NULL) == 0)
        lsmq__route_unref(r);
    if ((addr = lsmq__mqc_offset_addr(c->mqc, q->topic, q->broker_name)) == NULL) {
        lsmq__error(lsmq__mqc_err(c->mqc), -1, "no route to broker %s", q->broker_name);
        return LSMQ_ENOTFOUND;
    }
    cmd = lsmq__offset_query_cmd(c->group, q->topic, q->queue_id);
    rc = lsmq__mqc_call_sync(c->mqc, addr, cmd, NULL, 0, CALL_TIMEOUT_MS, &reply,
                             lsmq__mqc_err(c->mqc));
    proto_cmd_free(cmd);
    free(addr);
    if (rc == 0) {
        if (reply->cmd->code == RS_SUCCESS &&
            proto_cmd_get_i64(reply->cmd, "offset", offset) == 0 && *offset >= 0)
            rc = 0;
        else if (reply->cmd->code == RS_SUCCESS || reply->cmd->code == RS_QUERY_NOT_FOUND)
            rc = LSMQ_ENOTFOUND;
        else
            rc = lsmq__broker_error(lsmq__mqc_err(c->mqc), reply->cmd, "offset query");
    }
    proto_reply_free(reply);
    return rc;
}

void lsmq_pull_consumer_destroy(lsmq_pull_consumer *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    c->stopping = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->lock);
    /* Pull loops see stopping and end; the rest are failed with LSMQ_ECLOSED. */
    lsmq__mqc_stop(c->mqc);
    HASH_CLEAR(hh, c->assigned); /* frees the table; the entries go below */
    while (c->all)
        aq_free(c->all);
    lsmq__mqc_destroy(c->mqc);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cv);
    free(c->group);
    free(c);
}
