/*
 * PULL_MESSAGE(11) and LITE_PULL_MESSAGE(361): reading a queue, TAG
 * filtering and long polling (REMOTING.md §3.4, §6.5, §6.6).
 *
 * Reading. A pull reads the queue from queueOffset with engine_read, whose
 * result is already the pull body (stored records concatenated). With a tag
 * filter the records are walked one by one, matched by the hash of their
 * TAGS property against the subscription's codes, and the matching ones
 * copied out. A pull never answers SUCCESS with no record: when everything
 * examined was filtered out it answers PULL_RETRY_IMMEDIATELY with
 * nextBeginOffset past the examined records, so a consumer of a sparse tag
 * still moves through the queue; each request examines a bounded number of
 * records so one pull cannot occupy the loop for long.
 *
 * Long polling. A first-time pull that finds nothing new (PULL_NOT_FOUND)
 * and carries FLAG_SUSPEND is parked: its parameters are copied into a
 * `parked` entry listed under its "topic@queue" key and in a min-heap by
 * deadline. A commit to that queue (broker_pull_notify, called by the send
 * completion) re-runs the parked pulls of that queue at once; those that
 * still find nothing they match stay parked, having recorded how far they
 * looked. One ev_timer, armed for the earliest deadline, answers the pulls
 * whose time is up (ev.pod "Be smart about timeouts", method 4, with a
 * heap because clients ask for different timeouts). Wake-ups come only from
 * commits, never from a sweep. A parked pull whose connection has gone is
 * dropped when it is next looked at. At shutdown every parked pull gets
 * PULL_NOT_FOUND with the offsets it saw when parked, since the store may
 * already be closed.
 *
 * Masters and replicas (5.x PullMessageProcessor). suggestWhichBrokerId is
 * the master (0), or with slaveReadEnable the group's brokerId. A replica
 * serves pulls; while its master is online it sends the consumer back to
 * it (suggest 0, and PULL_RETRY_IMMEDIATELY rather than a wait when it
 * has nothing), and without offsetCheckInSlave it never corrects a
 * consumer's offset (PULL_OFFSET_MOVED becomes PULL_RETRY_IMMEDIATELY at
 * the same offset): a replica may be behind its master. Its parked pulls
 * are woken when applied batches move their queue (broker_ha.c); offsets
 * committed with a pull are held in memory (broker_held_offsets.c). A
 * replica may serve a write its master has shipped and not yet published;
 * a consumer that read it there and asks the master for what follows gets
 * PULL_NOT_FOUND (held), not PULL_OFFSET_MOVED back to it (engine_read).
 *
 * Everything here runs on the loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <uthash.h>

#include "alloc.h"
#include "broker_hdr.h"
#include "broker_internal.h"
#include "log.h"
#include "message_id.h"
#include "props.h"

/* PullSysFlag bits (REMOTING.md §3.4). */
#define PULL_FLAG_COMMIT_OFFSET 0x1
#define PULL_FLAG_SUSPEND 0x2
#define PULL_FLAG_SUBSCRIPTION 0x4

/* Transfer limits of one response: upstream's in-memory limits, first record always. */
#define PULL_MAX_BYTES (256u << 10)
#define PULL_MAX_MSGS 8192
/* How much a filtered pull may examine before answering. */
#define SCAN_CHUNK_RECORDS 512
#define SCAN_CHUNK_BYTES (1u << 20)
#define SCAN_MAX_RECORDS 65536
#define SCAN_MAX_BYTES (16u << 20)
/* Once something matched, stop reading further chunks past this many examined. */
#define SCAN_SOFT_RECORDS 4096
/* Longest hold; bounds how long an entry of a vanished connection can linger. */
#define SUSPEND_MAX_MS 60000
/* Timer slack: answer entries due within this many seconds together. */
#define DEADLINE_SLACK_S 0.001

/* The tag codes a pull accepts. `codes` is owned by whoever filled it (see pull_args). */
typedef struct tag_filter {
    bool all;
    const int64_t *codes;
    size_t n;
} tag_filter;

/* What one pull asks for. Strings and codes are views: into the request on
 * first processing, into the parked entry afterwards. */
typedef struct pull_args {
    const char *group;
    const char *topic;
    uint32_t queue_id;
    int64_t offset;
    uint32_t max_nums;
    size_t max_bytes;
    tag_filter filter;
} pull_args;

/* The answer to a pull. body is malloc'ed (or NULL) and goes to the reply. */
typedef struct pull_out {
    int32_t code;
    const char *remark;         /* store status name, static */
    int64_t suggest;            /* suggestWhichBrokerId */
    uint64_t next;
    uint64_t min;
    uint64_t max;
    uint8_t *body;
    size_t len;
    uint32_t count;
} pull_out;

typedef struct waiters waiters;

/* A held pull. The strings and codes live in `data` after the struct. */
typedef struct parked {
    pull_args a;
    uint64_t conn_id;
    int32_t opaque;
    double deadline;            /* ev_now() time */
    size_t heap_at;             /* index in the deadline heap */
    waiters *w;                 /* its queue's list; NULL with short polling */
    struct parked *prev, *next; /* in w's list */
    uint64_t saved_min, saved_max;
    char data[];
} parked;

/* The pulls held on one queue, keyed "topic@queueId" as upstream does. */
struct waiters {
    char *key;
    parked *head;
    UT_hash_handle hh;
};

struct broker_pull {
    broker_ctx *ctx;
    broker_clients *clients;    /* the heartbeat subscriptions that filter pulls */
    broker_stats *stats;        /* counts the messages handed over */
    broker_ha *ha;              /* a replica: is its master online? */
    broker_held_offsets *held;  /* a replica's commits */
    waiters *queues;
    parked **heap;
    size_t n, cap;
    ev_timer timer;
};

/* ------------------------------------------------------------------ */
/* Tag filter                                                          */
/* ------------------------------------------------------------------ */

/* Does the record's tag hash (0 without TAGS) fall in the filter's codes? */
static bool filter_match(const tag_filter *f, const proto_record *r)
{
    if (f->all)
        return true;
    const char *tag = "";
    size_t tlen = 0;
    proto_props_get(r->props, r->props_len, PROTO_PROP_TAGS, &tag, &tlen);
    /* Java keeps the codes as Integer: compare the low 32 bits. */
    int32_t code = (int32_t)proto_tag_hash(tag, tlen);
    for (size_t i = 0; i < f->n; i++)
        if ((int32_t)f->codes[i] == code)
            return true;
    return false;
}

static const char *skip_space(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

static const char *trim_end(const char *p, const char *end)
{
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        end--;
    return end;
}

/*
 * A TAG expression: "*" or empty = everything; else tags split on "||",
 * trimmed, empties dropped (SubscriptionData's rules). *codes is malloc'ed
 * (NULL for "*"); the caller frees it.
 */
static void filter_parse(const char *expr, tag_filter *f, int64_t **codes)
{
    memset(f, 0, sizeof *f);
    *codes = NULL;
    const char *p = expr ? expr : "", *end = p + strlen(p);
    p = skip_space(p, end);
    end = trim_end(p, end);
    if (p == end || (end - p == 1 && *p == '*')) {
        f->all = true;
        return;
    }
    size_t cap = 1;
    for (const char *q = p; (q = strstr(q, "||")) && q < end; q += 2)
        cap++;
    *codes = proto_xmalloc(cap * sizeof **codes);
    while (p < end) {
        const char *sep = strstr(p, "||");
        const char *stop = sep && sep < end ? sep : end;
        const char *s = skip_space(p, stop), *e = trim_end(s, stop);
        if (e > s)
            (*codes)[f->n++] = proto_tag_hash(s, (size_t)(e - s));
        p = stop == end ? end : stop + 2;
    }
    f->codes = *codes;
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

/* Store status -> response code, for a read that examined nothing (§3.4 table). */
static void map_status(const engine_read_result *r, int64_t offset, pull_out *o)
{
    o->min = r->min_offset;
    o->max = r->max_offset;
    o->next = r->next_offset;
    switch (r->status) {
    case ENGINE_READ_NO_MESSAGE:
        o->code = offset != 0 ? RS_PULL_OFFSET_MOVED : RS_PULL_NOT_FOUND;
        o->remark = "NO_MESSAGE_IN_QUEUE";
        o->next = 0;
        break;
    case ENGINE_READ_OFFSET_TOO_SMALL:
        o->code = RS_PULL_OFFSET_MOVED;
        o->remark = "OFFSET_TOO_SMALL";
        break;
    case ENGINE_READ_OFFSET_OVERFLOW_ONE:
        o->code = RS_PULL_NOT_FOUND;
        o->remark = "OFFSET_OVERFLOW_ONE";
        o->next = (uint64_t)offset;
        break;
    case ENGINE_READ_OFFSET_OVERFLOW_BADLY:
        o->code = RS_PULL_OFFSET_MOVED;
        o->remark = "OFFSET_OVERFLOW_BADLY";
        o->next = r->max_offset;
        break;
    default:
        o->code = RS_PULL_NOT_FOUND;
        o->remark = "NO_MATCHED_LOGIC_QUEUE";
        break;
    }
}

/* A negative offset is below any queue's min offset. */
static void pull_negative(engine *e, const pull_args *a, pull_out *o)
{
    uint64_t min = 0, max = 0;
    engine_queue_offsets(e, a->topic, strlen(a->topic), a->queue_id, &min, &max);
    o->code = RS_PULL_OFFSET_MOVED;
    o->remark = max == 0 ? "NO_MESSAGE_IN_QUEUE" : "OFFSET_TOO_SMALL";
    o->min = min;
    o->max = max;
    o->next = max == 0 ? 0 : min;
}

/* Records gathered by a scan. */
typedef struct scan {
    uint8_t *buf;
    size_t len, cap;
    uint32_t count;
    uint64_t next;      /* offset after the last examined record */
    uint64_t examined;
    size_t examined_bytes;
    bool full;          /* a limit stopped the scan */
} scan;

static void scan_append(scan *s, const uint8_t *rec, size_t len)
{
    if (s->len + len > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64u << 10;
        while (cap < s->len + len)
            cap *= 2;
        uint8_t *nb = proto_xrealloc(s->buf, cap);
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, rec, len);
    s->len += len;
    s->count++;
}

/* Walk one chunk of records, keeping the matching ones within the limits. */
static void scan_chunk(scan *s, const pull_args *a, const engine_read_result *r)
{
    size_t pos = 0;
    for (uint32_t i = 0; i < r->count && !s->full; i++) {
        proto_record pr;
        long size = proto_record_decode(r->data + pos, r->len - pos, &pr);
        if (size <= 0)
            break; /* the engine hands out only records that decode */
        if (filter_match(&a->filter, &pr)) {
            if (s->count > 0 && s->len + (size_t)size > a->max_bytes) {
                s->full = true; /* this one is left for the next pull */
                break;
            }
            scan_append(s, r->data + pos, (size_t)size);
        }
        s->next = (uint64_t)pr.queue_offset + 1;
        s->examined++;
        s->examined_bytes += (size_t)size;
        pos += (size_t)size;
        if (s->count >= a->max_nums)
            s->full = true;
    }
}

static bool scan_more(const scan *s)
{
    if (s->full)
        return false;
    if (s->count > 0)
        return s->examined < SCAN_SOFT_RECORDS;
    return s->examined < SCAN_MAX_RECORDS && s->examined_bytes < SCAN_MAX_BYTES;
}

/* The answer once a scan has examined at least one record. */
static void scan_finish(scan *s, const engine_read_result *last, pull_out *o)
{
    o->min = last->min_offset;
    o->max = last->max_offset;
    o->next = s->next;
    if (s->count > 0) {
        o->code = RS_SUCCESS;
        o->remark = "FOUND";
        o->body = s->buf;
        o->len = s->len;
        o->count = s->count;
    } else {
        o->code = RS_PULL_RETRY_IMMEDIATELY;
        o->remark = "NO_MATCHED_MESSAGE";
        free(s->buf);
    }
}

/* An engine error before anything was examined. */
static void read_failed(int rc, const engine_read_result *r, int64_t offset, pull_out *o)
{
    o->min = r->min_offset;
    o->max = r->max_offset;
    if (rc == LSMQ_ECORRUPT) {
        /* Skip the record that does not decode; the consumer moves on. The
         * status name is upstream's for a record that cannot be served. */
        o->code = RS_PULL_RETRY_IMMEDIATELY;
        o->remark = "MESSAGE_WAS_REMOVING";
        o->next = r->next_offset;
        proto_log(PROTO_LOG_WARN, "broker: pull skipped an undecodable record before offset %llu",
                 (unsigned long long)r->next_offset);
        return;
    }
    o->code = rc == LSMQ_ENOTFOUND ? RS_TOPIC_NOT_EXIST : RS_SYSTEM_ERROR;
    o->remark = rc == LSMQ_ENOTFOUND ? "NO_MATCHED_LOGIC_QUEUE" : lsmq_strerror(rc);
    o->next = (uint64_t)offset;
}

/*
 * Run a pull against the store (never suspends). Reads chunk after chunk
 * until the limits are met, the queue ends, or the scan bound is reached.
 */
static void pull_run(engine *e, const pull_args *a, pull_out *o)
{
    memset(o, 0, sizeof *o);
    if (a->offset < 0) {
        pull_negative(e, a, o);
        return;
    }
    scan s = {.next = (uint64_t)a->offset};
    engine_read_result r, last = {0};
    uint64_t cur = (uint64_t)a->offset;
    size_t tlen = strlen(a->topic);
    do {
        uint32_t want = a->filter.all ? a->max_nums - s.count : SCAN_CHUNK_RECORDS;
        size_t bytes = a->filter.all ? a->max_bytes : SCAN_CHUNK_BYTES;
        memset(&r, 0, sizeof r);
        int rc = engine_read(e, a->topic, tlen, a->queue_id, cur, want, bytes, &r);
        if (rc != 0 || r.status != ENGINE_READ_FOUND) {
            if (s.examined > 0)
                break; /* answer with what was examined; the next pull meets it */
            if (rc != 0)
                read_failed(rc, &r, a->offset, o);
            else
                map_status(&r, a->offset, o);
            free(s.buf);
            return;
        }
        if (a->filter.all && s.count == 0) {
            /* Nothing to filter: the read is the body as it stands. engine_free
             * is free(), so the buffer goes to conn_reply_owned without a copy. */
            s.buf = r.data;
            s.len = r.len;
            s.count = r.count;
            s.examined = r.count;
            s.next = r.next_offset;
            last = r;
            break;
        }
        scan_chunk(&s, a, &r);
        engine_free(r.data);
        last = r;
        if (s.next <= cur && !s.full)
            break; /* no progress: never spin on the same records */
        cur = s.next;
    } while (scan_more(&s) && cur < last.max_offset);
    scan_finish(&s, &last, o);
}

/* ------------------------------------------------------------------ */
/* Masters and replicas                                                */
/* ------------------------------------------------------------------ */

/*
 * Where the consumer should pull next, and what a replica changes in the
 * answer (see the top of the file). `requested` is the offset asked for.
 */
static void route_answer(broker_pull *bp, const pull_args *a, int64_t requested, pull_out *o)
{
    const broker_config *cfg = &bp->ctx->cfg;
    engine *e = bp->ctx->engine;
    o->suggest = cfg->slave_read_enable ? broker_group_broker_id(e, a->group) : 0;
    if (!bp->ctx->replica)
        return;
    if (o->code == RS_PULL_OFFSET_MOVED && !cfg->offset_check_in_slave) {
        o->code = RS_PULL_RETRY_IMMEDIATELY;
        o->next = requested < 0 ? 0 : (uint64_t)requested;
        o->suggest = broker_group_broker_id(e, a->group);
    }
    if (broker_ha_master_online(bp->ha)) {
        o->suggest = 0;
        if (o->code != RS_SUCCESS)
            o->code = RS_PULL_RETRY_IMMEDIATELY;
    }
}

/* ------------------------------------------------------------------ */
/* Replies                                                             */
/* ------------------------------------------------------------------ */

/* Every pull code a client accepts carries the four offsets (§3.4). */
static void reply_pull(broker_pull *bp, conn *c, int32_t opaque, pull_out *o)
{
    broker_stats_count_get(bp->stats, o->count);
    proto_cmd *resp = proto_cmd_response(o->code, opaque, o->remark);
    proto_cmd_set_i64(resp, "suggestWhichBrokerId", o->suggest);
    proto_cmd_set_i64(resp, "nextBeginOffset", (int64_t)o->next);
    proto_cmd_set_i64(resp, "minOffset", (int64_t)o->min);
    proto_cmd_set_i64(resp, "maxOffset", (int64_t)o->max);
    if (o->body)
        server_conn_reply_owned(c, opaque, resp, o->body, o->len);
    else
        server_conn_reply(c, opaque, resp, NULL, 0);
    o->body = NULL;
}

/* ------------------------------------------------------------------ */
/* Parked pulls                                                        */
/* ------------------------------------------------------------------ */

static bool heap_less(const parked *x, const parked *y) { return x->deadline < y->deadline; }

static void heap_set(broker_pull *bp, size_t i, parked *p)
{
    bp->heap[i] = p;
    p->heap_at = i;
}

static void heap_up(broker_pull *bp, size_t i)
{
    parked *p = bp->heap[i];
    while (i > 0 && heap_less(p, bp->heap[(i - 1) / 2])) {
        heap_set(bp, i, bp->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(bp, i, p);
}

static void heap_down(broker_pull *bp, size_t i)
{
    parked *p = bp->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        const parked *best = p;
        if (l < bp->n && heap_less(bp->heap[l], best))
            m = l, best = bp->heap[l];
        if (l + 1 < bp->n && heap_less(bp->heap[l + 1], best))
            m = l + 1;
        if (m == i)
            break;
        heap_set(bp, i, bp->heap[m]);
        i = m;
    }
    heap_set(bp, i, p);
}

static void heap_push(broker_pull *bp, parked *p)
{
    if (bp->n == bp->cap) {
        size_t cap = bp->cap ? bp->cap * 2 : 64;
        parked **nh = proto_xrealloc(bp->heap, cap * sizeof *nh);
        bp->heap = nh;
        bp->cap = cap;
    }
    heap_set(bp, bp->n++, p);
    heap_up(bp, bp->n - 1);
}

static void heap_remove(broker_pull *bp, parked *p)
{
    size_t i = p->heap_at;
    parked *last = bp->heap[--bp->n];
    if (i == bp->n)
        return;
    heap_set(bp, i, last);
    heap_up(bp, i);
    heap_down(bp, last->heap_at);
}

/* Arm the one timer for the earliest deadline. */
static void timer_rearm(broker_pull *bp)
{
    struct ev_loop *loop = server_loop(bp->ctx->srv);
    ev_timer_stop(loop, &bp->timer);
    if (bp->n == 0)
        return;
    double in = bp->heap[0]->deadline - ev_now(loop);
    ev_timer_set(&bp->timer, in > 0 ? in : 0, 0);
    ev_timer_start(loop, &bp->timer);
}

static void list_unlink(parked *p)
{
    waiters *w = p->w;
    if (!w)
        return;
    if (p->prev)
        p->prev->next = p->next;
    else
        w->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
}

static void list_push(waiters *w, parked *p)
{
    p->w = w;
    p->prev = NULL;
    p->next = w->head;
    if (w->head)
        w->head->prev = p;
    w->head = p;
}

static void waiters_drop_if_empty(broker_pull *bp, waiters *w)
{
    if (w && !w->head) {
        HASH_DEL(bp->queues, w);
        free(w->key);
        free(w);
    }
}

static waiters *waiters_get(broker_pull *bp, const char *key, bool create)
{
    waiters *w = NULL;
    HASH_FIND_STR(bp->queues, key, w);
    if (w || !create)
        return w;
    w = proto_xcalloc(1, sizeof *w);
    w->key = proto_xstrdup(key);
    HASH_ADD_KEYPTR(hh, bp->queues, w->key, strlen(w->key), w);
    return w;
}

static void queue_key(char *out, size_t len, const char *topic, uint32_t queue_id)
{
    snprintf(out, len, "%s@%u", topic, queue_id);
}

/* Take a parked pull out of every structure and free it. */
static void parked_release(broker_pull *bp, parked *p)
{
    waiters *w = p->w;
    list_unlink(p);
    waiters_drop_if_empty(bp, w);
    heap_remove(bp, p);
    free(p);
}

/* Copy a pull into a parked entry that owns its strings and codes. */
static parked *parked_new(const pull_args *a, const pull_out *o, conn *c, int32_t opaque,
                          double deadline)
{
    size_t glen = strlen(a->group) + 1, tlen = strlen(a->topic) + 1;
    size_t codes = a->filter.all ? 0 : a->filter.n * sizeof(int64_t);
    parked *p = proto_xcalloc(1, sizeof *p + codes + glen + tlen);
    p->a = *a;
    int64_t *cp = (int64_t *)p->data;
    if (codes)
        memcpy(cp, a->filter.codes, codes);
    p->a.filter.codes = codes ? cp : NULL;
    char *g = p->data + codes;
    memcpy(g, a->group, glen);
    memcpy(g + glen, a->topic, tlen);
    p->a.group = g;
    p->a.topic = g + glen;
    p->a.offset = (int64_t)o->next;
    p->conn_id = server_conn_id(c);
    p->opaque = opaque;
    p->deadline = deadline;
    p->saved_min = o->min;
    p->saved_max = o->max;
    return p;
}

static void park(broker_pull *bp, const pull_args *a, const pull_out *o, conn *c,
                 int32_t opaque, int64_t hold_ms)
{
    struct ev_loop *loop = server_loop(bp->ctx->srv);
    double deadline = ev_now(loop) + (double)hold_ms / 1000.0;
    parked *p = parked_new(a, o, c, opaque, deadline);
    if (bp->ctx->cfg.long_polling_enable) {
        char key[PROTO_TOPIC_MAX + 16];
        queue_key(key, sizeof key, a->topic, a->queue_id);
        list_push(waiters_get(bp, key, true), p);
    }
    heap_push(bp, p);
    if (bp->heap[0] == p)
        timer_rearm(bp);
}

/* PULL_NOT_FOUND from what the entry saw when parked (the store may be gone). */
static void reply_saved_not_found(broker_pull *bp, conn *c, const parked *p)
{
    pull_out o = {.code = RS_PULL_NOT_FOUND, .remark = "OFFSET_OVERFLOW_ONE",
                  .next = (uint64_t)p->a.offset, .min = p->saved_min, .max = p->saved_max};
    reply_pull(bp, c, p->opaque, &o);
}

/* Time is up: answer with whatever the queue holds now. */
static void answer_due(broker_pull *bp, parked *p)
{
    conn *c = server_conn_find(bp->ctx->srv, p->conn_id);
    engine *e = bp->ctx->engine;
    if (c && e) {
        pull_out o;
        pull_run(e, &p->a, &o);
        route_answer(bp, &p->a, p->a.offset, &o);
        reply_pull(bp, c, p->opaque, &o);
    } else if (c) {
        reply_saved_not_found(bp, c, p);
    }
    parked_release(bp, p);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    broker_pull *bp = w->data;
    double now = ev_now(loop);
    while (bp->n > 0 && bp->heap[0]->deadline <= now + DEADLINE_SLACK_S)
        answer_due(bp, bp->heap[0]);
    timer_rearm(bp);
}

/*
 * Re-run one woken pull. Returns true when it was answered (or its
 * connection has gone) and false when it stays parked: nothing new, or
 * only records it does not match up to the queue's end, in which case it
 * remembers how far it looked.
 */
static bool wake_one(broker_pull *bp, engine *e, parked *p)
{
    conn *c = server_conn_find(bp->ctx->srv, p->conn_id);
    if (!c)
        return true;
    pull_out o;
    pull_run(e, &p->a, &o);
    bool caught_up = o.code == RS_PULL_RETRY_IMMEDIATELY && o.next >= o.max;
    if (o.code != RS_PULL_NOT_FOUND && !caught_up)
        route_answer(bp, &p->a, p->a.offset, &o);
    if (o.code == RS_PULL_NOT_FOUND || caught_up) {
        p->a.offset = (int64_t)o.next;
        p->saved_min = o.min;
        p->saved_max = o.max;
        return false;
    }
    reply_pull(bp, c, p->opaque, &o);
    return true;
}

bool broker_pull_parked(const broker_pull *bp)
{
    return bp->queues != NULL;
}

void broker_pull_notify(broker_pull *bp, const char *topic, uint32_t queue_id)
{
    engine *e = bp->ctx->engine;
    if (!e || !bp->queues)
        return;
    char key[PROTO_TOPIC_MAX + 16];
    queue_key(key, sizeof key, topic, queue_id);
    waiters *w = waiters_get(bp, key, false);
    if (!w)
        return;
    /* Detach the list: entries that stay parked are pushed back as they go. */
    parked *p = w->head;
    w->head = NULL;
    bool top_changed = false;
    while (p) {
        parked *next = p->next;
        p->prev = p->next = NULL;
        if (wake_one(bp, e, p)) {
            top_changed |= bp->heap[0] == p;
            p->w = NULL; /* already off the list */
            heap_remove(bp, p);
            free(p);
        } else {
            list_push(w, p);
        }
        p = next;
    }
    waiters_drop_if_empty(bp, w);
    if (top_changed)
        timer_rearm(bp);
}

/* Needs clients (subscriptions) and stats. */
int broker_pull_create(broker_modules *m, char *errbuf, size_t errlen)
{
    broker_pull *bp = proto_xcalloc(1, sizeof *bp);
    bp->ctx = &m->ctx;
    bp->clients = m->clients;
    bp->stats = m->stats;
    bp->ha = m->ha;
    bp->held = m->held_offsets;
    ev_timer_init(&bp->timer, timer_cb, 0, 0);
    bp->timer.data = bp;
    m->pull = bp;
    return 0;
}

/* After the store closed: every parked pull is answered with what it saw. */
void broker_pull_destroy(broker_modules *m)
{
    broker_pull *bp = m->pull;
    server *s = bp->ctx->srv;
    ev_timer_stop(server_loop(s), &bp->timer);
    while (bp->n > 0) {
        parked *p = bp->heap[bp->n - 1];
        conn *c = server_conn_find(s, p->conn_id);
        if (c)
            reply_saved_not_found(bp, c, p);
        parked_release(bp, p);
    }
    free(bp->heap);
    free(bp);
    m->pull = NULL;
}

/* ------------------------------------------------------------------ */
/* The handler                                                         */
/* ------------------------------------------------------------------ */

/* The request header as the handler needs it. */
typedef struct pull_hdr {
    pull_args a;
    int32_t sys_flag;
    int64_t commit_offset;
    int64_t suspend_ms;
    int64_t sub_version;
    const char *subscription;
    const char *expression_type;
} pull_hdr;

static int parse_pull(const proto_cmd *req, pull_hdr *h, char *remark)
{
    memset(h, 0, sizeof *h);
    int32_t queue, max_nums, max_bytes;
    if (broker__hdr_str(req, "consumerGroup", NULL, &h->a.group, remark) ||
        broker__hdr_str(req, "topic", NULL, &h->a.topic, remark) ||
        broker__hdr_i32(req, "queueId", NULL, &queue, remark) ||
        broker__hdr_i64(req, "queueOffset", NULL, &h->a.offset, remark) ||
        broker__hdr_i32(req, "maxMsgNums", NULL, &max_nums, remark) ||
        broker__hdr_i32(req, "sysFlag", NULL, &h->sys_flag, remark) ||
        broker__hdr_opt_i64(req, "commitOffset", NULL, -1, &h->commit_offset, remark) ||
        broker__hdr_opt_i64(req, "suspendTimeoutMillis", NULL, 15000, &h->suspend_ms, remark) ||
        broker__hdr_opt_i64(req, "subVersion", NULL, 0, &h->sub_version, remark) ||
        broker__hdr_opt_i32(req, "maxMsgBytes", NULL, 0, &max_bytes, remark))
        return RS_SYSTEM_ERROR;
    if (queue < 0) {
        snprintf(remark, BROKER_REMARK_MAX, "queueId[%d] is illegal, topic:[%s]", queue,
                 h->a.topic);
        return RS_INVALID_PARAMETER;
    }
    h->a.queue_id = (uint32_t)queue;
    h->a.max_nums = max_nums < 1               ? 1
                    : max_nums > PULL_MAX_MSGS ? PULL_MAX_MSGS
                                               : (uint32_t)max_nums;
    h->a.max_bytes = max_bytes > 0 && (uint32_t)max_bytes < PULL_MAX_BYTES ? (size_t)max_bytes
                                                                          : PULL_MAX_BYTES;
    h->subscription = proto_cmd_get(req, "subscription");
    h->expression_type = proto_cmd_get(req, "expressionType");
    return 0;
}

/* Broker and topic permissions, queue range (5.x PullMessageProcessor checks). */
static int check_pull(broker_pull *bp, const pull_hdr *h, const conn *c, char *remark)
{
    const broker_config *cfg = &bp->ctx->cfg;
    if (!(cfg->broker_permission & ENGINE_PERM_READ)) {
        snprintf(remark, BROKER_REMARK_MAX, "the broker[%s] pulling message is forbidden",
                 cfg->broker_name);
        return RS_NO_PERMISSION;
    }
    engine_topic_config tc;
    if (engine_topic_get(bp->ctx->engine, h->a.topic, strlen(h->a.topic), &tc) != 0) {
        snprintf(remark, BROKER_REMARK_MAX, "topic[%.200s] not exist, apply first please!",
                 h->a.topic);
        return RS_TOPIC_NOT_EXIST;
    }
    if (!(tc.perm & ENGINE_PERM_READ)) {
        snprintf(remark, BROKER_REMARK_MAX, "the topic[%s] pulling message is forbidden",
                 h->a.topic);
        return RS_NO_PERMISSION;
    }
    if (h->a.queue_id >= tc.read_queue_nums) {
        snprintf(remark, BROKER_REMARK_MAX,
                 "queueId[%u] is illegal, topic:[%s] topicConfig.readQueueNums:[%u] "
                 "consumer:[%s]",
                 h->a.queue_id, h->a.topic, tc.read_queue_nums, server_conn_peer(c));
        return RS_INVALID_PARAMETER;
    }
    return 0;
}

static bool is_tag_type(const char *type)
{
    return !type || !*type || strcasecmp(type, "TAG") == 0;
}

/*
 * The filter: from the request's subscription with FLAG_SUBSCRIPTION, else
 * from the group's heartbeat subscription; with neither, everything.
 * *owned receives codes the caller must free.
 */
static int build_filter(broker_pull *bp, pull_hdr *h, int64_t **owned, char *remark)
{
    *owned = NULL;
    if (h->sys_flag & PULL_FLAG_SUBSCRIPTION) {
        if (!is_tag_type(h->expression_type)) {
            bool sql = strcasecmp(h->expression_type, "SQL92") == 0;
            snprintf(remark, BROKER_REMARK_MAX,
                     sql ? "SQL92 filtering is not enabled (enablePropertyFilter=false)"
                         : "unknown expression type %.64s",
                     h->expression_type);
            return sql ? RS_SYSTEM_ERROR : RS_SUBSCRIPTION_PARSE_FAILED;
        }
        filter_parse(h->subscription, &h->a.filter, owned);
        return 0;
    }
    const broker_subscription *sub =
        broker_clients_subscription(bp->clients, h->a.group, h->a.topic);
    if (!sub) {
        h->a.filter.all = true;
        return 0;
    }
    if (sub->sql92) {
        snprintf(remark, BROKER_REMARK_MAX,
                 "SQL92 filtering is not enabled (enablePropertyFilter=false)");
        return RS_SYSTEM_ERROR;
    }
    if (sub->sub_version < h->sub_version) {
        snprintf(remark, BROKER_REMARK_MAX, "the consumer's subscription not latest");
        return RS_SUBSCRIPTION_NOT_LATEST;
    }
    h->a.filter.all = sub->all;
    h->a.filter.codes = sub->codes;
    h->a.filter.n = sub->n_codes;
    return 0;
}

/* FLAG_COMMIT_OFFSET: store the consumer's offset without waiting for it (a replica holds it). */
static void commit_from_pull(broker_pull *bp, const pull_hdr *h)
{
    engine *e = bp->ctx->engine;
    if (!(h->sys_flag & PULL_FLAG_COMMIT_OFFSET) || h->commit_offset < 0)
        return;
    if (bp->held) {
        uint64_t stored;
        if (engine_offset_get(e, h->a.group, strlen(h->a.group), h->a.topic, strlen(h->a.topic),
                              h->a.queue_id, &stored) != 0)
            stored = UINT64_MAX;
        broker_held_offset_set(bp->held, h->a.group, h->a.topic, h->a.queue_id,
                               (uint64_t)h->commit_offset, stored);
        return;
    }
    engine_offset_set_async(e, h->a.group, strlen(h->a.group), h->a.topic,
                            strlen(h->a.topic), h->a.queue_id, (uint64_t)h->commit_offset,
                            NULL, NULL);
}

static int64_t hold_ms(const broker_config *cfg, const pull_hdr *h)
{
    int64_t ms = cfg->long_polling_enable ? h->suspend_ms : (int64_t)cfg->short_polling_time_ms;
    return ms < 0 ? 0 : ms > SUSPEND_MAX_MS ? SUSPEND_MAX_MS : ms;
}

static void on_pull_message(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_pull *bp = ctx;
    char remark[BROKER_REMARK_MAX];
    pull_hdr h;
    int64_t *owned = NULL;
    int code = parse_pull(req, &h, remark);
    if (code == 0)
        code = check_pull(bp, &h, c, remark);
    if (code == 0)
        code = build_filter(bp, &h, &owned, remark);
    if (code != 0) {
        broker__reply_code(c, req, code, remark);
        free(owned);
        return;
    }
    commit_from_pull(bp, &h);
    pull_out o;
    pull_run(bp->ctx->engine, &h.a, &o);
    route_answer(bp, &h.a, h.a.offset, &o);
    if (proto_cmd_is_oneway(req)) {
        free(o.body);
    } else if (o.code == RS_PULL_NOT_FOUND && (h.sys_flag & PULL_FLAG_SUSPEND)) {
        park(bp, &h.a, &o, c, req->opaque, hold_ms(&bp->ctx->cfg, &h));
    } else {
        reply_pull(bp, c, req->opaque, &o);
    }
    free(owned);
}

/* LITE_PULL_MESSAGE is the same request from the lite pull consumer. */
void broker_pull_register(broker_modules *m)
{
    server *s = m->ctx.srv;
    server_register(s, RC_PULL_MESSAGE, on_pull_message, m->pull);
    server_register(s, RC_LITE_PULL_MESSAGE, on_pull_message, m->pull);
}
