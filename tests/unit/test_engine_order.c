/*
 * test_engine_order: queue order, offset contiguity and log positions under
 * concurrent appends.
 *
 * Eight threads append at the same time to one hot queue that all of them
 * share and to the other queues of three topics. They mix single messages
 * with batches, and blocking engine_append_wait calls with engine_append
 * callbacks kept several in flight per thread. Each body names its thread
 * and that thread's sequence number. Afterwards every queue is read back
 * (once live, once after a clean reopen) and the test proves:
 *
 *  - each queue holds exactly offsets 0..n-1, no gap, no duplicate, and every
 *    acknowledged message is there exactly once, at the queue offset (and,
 *    where the acknowledgement gave one, the log position) it was told;
 *  - every record decodes, passes its body CRC and carries its topic, queue
 *    id, queue offset and the producer's fields unchanged;
 *  - within a queue each thread's messages keep its submission order, and a
 *    message acknowledged before another of its thread was submitted has
 *    the lower log position (commit order; messages in flight together may
 *    share a write group, which the writer orders by queue);
 *  - log positions are cumulative record sizes: sorted, the records tile
 *    [0, engine_next_log_position()) with no hole and no overlap;
 *  - store timestamps never go backwards within a queue.
 *
 * The whole run happens once with ENGINE_ASYNC_FLUSH, once with
 * ENGINE_SYNC_FLUSH.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testsupport.h"

#define N_THREADS 8
#define OPS_PER_THREAD 600
#define MAX_BATCH 8
#define MAX_INFLIGHT 4
#define MAX_MSGS_PER_THREAD (OPS_PER_THREAD * MAX_BATCH)
#define BODY_CAP 64
#define READ_COUNT 48
#define READ_BYTES 4096
#define NO_POSITION UINT64_MAX

static const char PROPS[] = "TAGS\001order\002";

typedef struct topic_spec {
    const char *name;
    uint32_t queues;
} topic_spec;

/* order-hot queue 0 is the queue every thread hammers. */
static const topic_spec TOPICS[] = {
    {"order-hot", 4},
    {"order-wide", 3},
    {"order-one", 1},
};
#define N_TOPICS (sizeof TOPICS / sizeof TOPICS[0])

/* One message a thread submitted, indexed by its sequence number. */
typedef struct sent_msg {
    uint8_t topic;
    uint8_t queue;
    uint8_t acked;            /* set from the acknowledgement */
    uint8_t seen;             /* set when read back */
    uint64_t ack_offset;
    uint64_t ack_position;    /* NO_POSITION when the acknowledgement did not say */
    uint64_t stored_position; /* physical offset found in the stored record */
    uint64_t submit_tick;     /* order_clock before the append call */
    uint64_t ack_tick;        /* order_clock when acknowledged */
} sent_msg;

/* One clock for all threads: orders submissions and acknowledgements. */
static _Atomic uint64_t order_clock;

typedef struct order_thread {
    unsigned id;
    engine *e;
    uint32_t rng;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned inflight;  /* callbacks not yet run; under mu */
    int failed;         /* under mu */
    char error[256];    /* first failure; under mu */
    uint32_t n_sent;    /* worker thread only until joined */
    sent_msg sent[MAX_MSGS_PER_THREAD];
} order_thread;

/* A callback append in flight; keeps its bodies alive until the callback. */
typedef struct pending_append {
    order_thread *t;
    uint32_t first_seq;
    uint32_t n;
    engine_msg msgs[MAX_BATCH];
    char bodies[MAX_BATCH][BODY_CAP];
} pending_append;

/* ---- Messages ----------------------------------------------------------- */

static uint32_t next_rand(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

/* "T<thread>-S<seq>-" then a filler whose length varies with seq. */
static uint32_t make_body(char out[BODY_CAP], unsigned thread, uint32_t seq)
{
    int head = snprintf(out, BODY_CAP, "T%02u-S%06u-", thread, seq);
    uint32_t len = (uint32_t)head + (seq * 7u + thread * 3u) % 41u;
    memset(out + head, 'a' + (int)(seq % 26u), len - (uint32_t)head);
    out[len] = '\0';
    return len;
}

static void fill_msg(engine_msg *m, const char *body, unsigned thread, uint32_t seq)
{
    *m = test_msg(body, PROPS);
    m->flag = (int32_t)thread;
    m->born_timestamp = (int64_t)seq + 1;
}

/* ---- Producer threads --------------------------------------------------- */

static void thread_fail(order_thread *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void thread_fail(order_thread *t, const char *fmt, ...)
{
    pthread_mutex_lock(&t->mu);
    if (!t->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->error, sizeof t->error, fmt, ap);
        va_end(ap);
        t->failed = 1;
    }
    pthread_mutex_unlock(&t->mu);
}

static int thread_failed(order_thread *t)
{
    pthread_mutex_lock(&t->mu);
    int failed = t->failed;
    pthread_mutex_unlock(&t->mu);
    return failed;
}

/* Note what an acknowledgement says about messages first..first+n-1. */
static void record_ack(order_thread *t, uint32_t first, uint32_t n,
                       const engine_append_result *r, int have_positions)
{
    if (r->status != 0) {
        thread_fail(t, "thread %u seq %u (+%u): append failed: %d %s", t->id, first, n,
                    r->status, r->error ? r->error : lsmq_strerror(r->status));
        return;
    }
    if (r->n != n) {
        thread_fail(t, "thread %u seq %u: result says n=%u, appended %u", t->id, first, r->n, n);
        return;
    }
    if (have_positions && (!r->log_positions || r->log_positions[0] != r->log_position)) {
        thread_fail(t, "thread %u seq %u: log_positions missing or disagrees with log_position",
                    t->id, first);
        return;
    }
    uint64_t tick = atomic_fetch_add(&order_clock, 1);
    for (uint32_t i = 0; i < n; i++) {
        sent_msg *s = &t->sent[first + i];
        s->acked = 1;
        s->ack_tick = tick;
        s->ack_offset = r->queue_offset + i;
        if (have_positions)
            s->ack_position = r->log_positions[i];
        else
            s->ack_position = i == 0 ? r->log_position : NO_POSITION;
    }
}

/* Writer thread: an engine_append completed. */
static void order_append_cb(void *ctx, const engine_append_result *r)
{
    pending_append *p = ctx;
    order_thread *t = p->t;
    record_ack(t, p->first_seq, p->n, r, 1);
    free(p);
    pthread_mutex_lock(&t->mu);
    t->inflight--;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void wait_inflight_below(order_thread *t, unsigned limit)
{
    pthread_mutex_lock(&t->mu);
    while (t->inflight >= limit)
        pthread_cond_wait(&t->cv, &t->mu);
    pthread_mutex_unlock(&t->mu);
}

static void append_blocking(order_thread *t, unsigned topic, uint32_t queue, uint32_t first,
                            uint32_t n)
{
    char bodies[MAX_BATCH][BODY_CAP];
    engine_msg msgs[MAX_BATCH];
    for (uint32_t i = 0; i < n; i++) {
        make_body(bodies[i], t->id, first + i);
        fill_msg(&msgs[i], bodies[i], t->id, first + i);
    }
    const char *name = TOPICS[topic].name;
    engine_append_result r;
    memset(&r, 0, sizeof r);
    int rc = engine_append_wait(t->e, name, strlen(name), queue, msgs, n, &r);
    if (rc != 0) {
        thread_fail(t, "thread %u seq %u: engine_append_wait(%s:%u) = %d %s", t->id, first,
                    name, queue, rc, lsmq_strerror(rc));
        return;
    }
    record_ack(t, first, n, &r, 0);
}

static void append_async(order_thread *t, unsigned topic, uint32_t queue, uint32_t first,
                         uint32_t n)
{
    pending_append *p = calloc(1, sizeof *p);
    if (!p) {
        thread_fail(t, "out of memory");
        return;
    }
    p->t = t;
    p->first_seq = first;
    p->n = n;
    for (uint32_t i = 0; i < n; i++) {
        make_body(p->bodies[i], t->id, first + i);
        fill_msg(&p->msgs[i], p->bodies[i], t->id, first + i);
    }
    wait_inflight_below(t, MAX_INFLIGHT);
    pthread_mutex_lock(&t->mu);
    t->inflight++;
    pthread_mutex_unlock(&t->mu);

    const char *name = TOPICS[topic].name;
    int rc = engine_append(t->e, name, strlen(name), queue, p->msgs, n, order_append_cb, p);
    if (rc != 0) {
        pthread_mutex_lock(&t->mu);
        t->inflight--;
        pthread_mutex_unlock(&t->mu);
        free(p);
        thread_fail(t, "thread %u seq %u: engine_append(%s:%u) = %d %s", t->id, first, name,
                    queue, rc, lsmq_strerror(rc));
    }
}

/* About 40% of the traffic goes to the shared hot queue, the rest anywhere. */
static void pick_queue(uint32_t *rng, unsigned *topic, uint32_t *queue)
{
    if (next_rand(rng) % 10 < 4) {
        *topic = 0;
        *queue = 0;
        return;
    }
    *topic = next_rand(rng) % N_TOPICS;
    *queue = next_rand(rng) % TOPICS[*topic].queues;
}

/* Half single messages, half batches of 2..MAX_BATCH. */
static uint32_t pick_batch(uint32_t *rng)
{
    if (next_rand(rng) % 2 == 0)
        return 1;
    return 2 + next_rand(rng) % (MAX_BATCH - 1);
}

static void *order_worker(void *arg)
{
    order_thread *t = arg;
    for (unsigned op = 0; op < OPS_PER_THREAD && !thread_failed(t); op++) {
        unsigned topic;
        uint32_t queue;
        pick_queue(&t->rng, &topic, &queue);
        uint32_t n = pick_batch(&t->rng);
        uint32_t first = t->n_sent;
        for (uint32_t i = 0; i < n; i++) {
            t->sent[first + i].topic = (uint8_t)topic;
            t->sent[first + i].queue = (uint8_t)queue;
            t->sent[first + i].ack_position = NO_POSITION;
        }
        t->n_sent += n;
        uint64_t tick = atomic_fetch_add(&order_clock, 1);
        for (uint32_t i = 0; i < n; i++)
            t->sent[first + i].submit_tick = tick;
        /* A blocking call queues behind this thread's callbacks in flight. */
        if (next_rand(&t->rng) % 3 == 0)
            append_blocking(t, topic, queue, first, n);
        else
            append_async(t, topic, queue, first, n);
    }
    wait_inflight_below(t, 1);
    return NULL;
}

/* ---- Verification ------------------------------------------------------- */

typedef struct placed_record {
    uint64_t position;
    uint32_t size;
} placed_record;

typedef struct verify_state {
    order_thread *threads;
    placed_record *placed;
    size_t n_placed;
    size_t cap_placed;
    uint8_t *reading;   /* the read result being checked, freed by teardown on failure */
} verify_state;

/* Where one queue's walk stands. */
typedef struct queue_walk {
    unsigned topic;
    uint32_t queue;
    uint64_t offset;             /* offset of the record being checked */
    int have_prev;
    uint64_t prev_position;
    int64_t prev_store_ms;
    int have_seq[N_THREADS];
    uint32_t last_seq[N_THREADS];
} queue_walk;

static void place(verify_state *v, uint64_t position, uint32_t size)
{
    if (v->n_placed == v->cap_placed) {
        v->cap_placed = v->cap_placed ? v->cap_placed * 2 : 4096;
        v->placed = realloc(v->placed, v->cap_placed * sizeof *v->placed);
        assert_non_null(v->placed);
    }
    v->placed[v->n_placed].position = position;
    v->placed[v->n_placed].size = size;
    v->n_placed++;
}

/* Thread and sequence named by a body, or fail. */
static void parse_body(const proto_record *rec, const queue_walk *w, unsigned *thread,
                       uint32_t *seq)
{
    char text[BODY_CAP];
    uint32_t len = rec->body_len < BODY_CAP - 1 ? rec->body_len : BODY_CAP - 1;
    memcpy(text, rec->body, len);
    text[len] = '\0';
    if (sscanf(text, "T%u-S%u-", thread, seq) != 2)
        fail_msg("%s:%u offset %" PRIu64 ": body \"%s\" is not one of ours",
                 TOPICS[w->topic].name, w->queue, w->offset, text);
}

static void check_identity(verify_state *v, const queue_walk *w, const proto_record *rec,
                           unsigned thread, uint32_t seq)
{
    const char *where = TOPICS[w->topic].name;
    if (thread >= N_THREADS || seq >= v->threads[thread].n_sent)
        fail_msg("%s:%u offset %" PRIu64 ": thread %u seq %u was never sent", where, w->queue,
                 w->offset, thread, seq);
    char expect[BODY_CAP];
    uint32_t expect_len = make_body(expect, thread, seq);
    if (rec->body_len != expect_len || memcmp(rec->body, expect, expect_len) != 0)
        fail_msg("%s:%u offset %" PRIu64 ": body of thread %u seq %u altered", where, w->queue,
                 w->offset, thread, seq);
    if (rec->flag != (int32_t)thread || rec->born_timestamp != (int64_t)seq + 1)
        fail_msg("%s:%u offset %" PRIu64 ": flag %d / born %" PRId64 " not the producer's",
                 where, w->queue, w->offset, rec->flag, rec->born_timestamp);
    if (rec->props_len != sizeof PROPS - 1 || memcmp(rec->props, PROPS, rec->props_len) != 0)
        fail_msg("%s:%u offset %" PRIu64 ": properties altered", where, w->queue, w->offset);

    sent_msg *s = &v->threads[thread].sent[seq];
    if (s->topic != w->topic || s->queue != w->queue)
        fail_msg("%s:%u offset %" PRIu64 ": thread %u seq %u was sent to %s:%u", where,
                 w->queue, w->offset, thread, seq, TOPICS[s->topic].name, s->queue);
    if (s->seen)
        fail_msg("%s:%u offset %" PRIu64 ": thread %u seq %u stored twice", where, w->queue,
                 w->offset, thread, seq);
    if (!s->acked)
        fail_msg("%s:%u offset %" PRIu64 ": thread %u seq %u stored but never acknowledged",
                 where, w->queue, w->offset, thread, seq);
    if (s->ack_offset != w->offset)
        fail_msg("%s:%u: thread %u seq %u acknowledged at offset %" PRIu64
                 ", stored at %" PRIu64, where, w->queue, thread, seq, s->ack_offset, w->offset);
    if (s->ack_position != NO_POSITION && s->ack_position != (uint64_t)rec->physical_offset)
        fail_msg("%s:%u offset %" PRIu64 ": acknowledged log position %" PRIu64
                 ", stored %" PRId64, where, w->queue, w->offset, s->ack_position,
                 rec->physical_offset);
    s->seen = 1;
    s->stored_position = (uint64_t)rec->physical_offset;
}

static void check_record(verify_state *v, queue_walk *w, const proto_record *rec, long size)
{
    const char *where = TOPICS[w->topic].name;
    if ((long)rec->total_size != size)
        fail_msg("%s:%u offset %" PRIu64 ": total size %u, decoded %ld", where, w->queue,
                 w->offset, rec->total_size, size);
    if (proto_record_check_crc(rec) != 0)
        fail_msg("%s:%u offset %" PRIu64 ": body CRC mismatch", where, w->queue, w->offset);
    if (rec->queue_id != (int32_t)w->queue || rec->queue_offset != (int64_t)w->offset)
        fail_msg("%s:%u offset %" PRIu64 ": record says queue %d offset %" PRId64, where,
                 w->queue, w->offset, rec->queue_id, rec->queue_offset);
    if (rec->topic_len != strlen(where) || memcmp(rec->topic, where, rec->topic_len) != 0)
        fail_msg("%s:%u offset %" PRIu64 ": record names topic %.*s", where, w->queue,
                 w->offset, (int)rec->topic_len, rec->topic);

    unsigned thread;
    uint32_t seq;
    parse_body(rec, w, &thread, &seq);
    check_identity(v, w, rec, thread, seq);

    if (w->have_seq[thread] && seq <= w->last_seq[thread])
        fail_msg("%s:%u offset %" PRIu64 ": thread %u seq %u after its seq %u", where, w->queue,
                 w->offset, thread, seq, w->last_seq[thread]);
    w->have_seq[thread] = 1;
    w->last_seq[thread] = seq;

    if (rec->physical_offset < 0 ||
        (w->have_prev && (uint64_t)rec->physical_offset <= w->prev_position))
        fail_msg("%s:%u offset %" PRIu64 ": log position %" PRId64 " not above the previous %"
                 PRIu64, where, w->queue, w->offset, rec->physical_offset, w->prev_position);
    if (w->have_prev && rec->store_timestamp < w->prev_store_ms)
        fail_msg("%s:%u offset %" PRIu64 ": store time %" PRId64 " before the previous %" PRId64,
                 where, w->queue, w->offset, rec->store_timestamp, w->prev_store_ms);
    w->have_prev = 1;
    w->prev_position = (uint64_t)rec->physical_offset;
    w->prev_store_ms = rec->store_timestamp;
    place(v, (uint64_t)rec->physical_offset, rec->total_size);
}

/* Check every record of one read result, advancing w->offset past each. */
static void check_read_result(verify_state *v, queue_walk *w, const engine_read_result *rr)
{
    size_t at = 0;
    for (uint32_t i = 0; i < rr->count; i++) {
        proto_record rec;
        long size = proto_record_decode(rr->data + at, rr->len - at, &rec);
        if (size <= 0)
            fail_msg("%s:%u offset %" PRIu64 ": record does not decode (%ld)",
                     TOPICS[w->topic].name, w->queue, w->offset, size);
        check_record(v, w, &rec, size);
        at += (size_t)size;
        w->offset++;
    }
    if (at != rr->len)
        fail_msg("%s:%u: read returned %zu bytes, its %u records hold %zu",
                 TOPICS[w->topic].name, w->queue, rr->len, rr->count, at);
}

static void verify_queue(engine *e, verify_state *v, unsigned topic, uint32_t queue)
{
    const char *name = TOPICS[topic].name;
    size_t nlen = strlen(name);
    uint64_t min_off = 0, max_off = 0;
    assert_int_equal(engine_queue_offsets(e, name, nlen, queue, &min_off, &max_off), 0);
    assert_int_equal(min_off, 0);

    queue_walk w;
    memset(&w, 0, sizeof w);
    w.topic = topic;
    w.queue = queue;
    while (w.offset < max_off) {
        engine_read_result rr;
        memset(&rr, 0, sizeof rr);
        uint64_t from = w.offset;
        assert_int_equal(engine_read(e, name, nlen, queue, from, READ_COUNT, READ_BYTES, &rr), 0);
        v->reading = rr.data;
        if (rr.status != ENGINE_READ_FOUND || rr.count == 0 || rr.count > READ_COUNT)
            fail_msg("%s:%u: read at %" PRIu64 " (max %" PRIu64 ") gave status %d, %u records",
                     name, queue, from, max_off, (int)rr.status, rr.count);
        assert_int_equal(rr.min_offset, 0);
        assert_int_equal(rr.max_offset, max_off);
        check_read_result(v, &w, &rr);
        if (rr.next_offset != w.offset)
            fail_msg("%s:%u: read at %" PRIu64 " says next %" PRIu64 ", records end at %" PRIu64,
                     name, queue, from, rr.next_offset, w.offset);
        engine_free(rr.data);
        v->reading = NULL;
    }
    assert_int_equal(w.offset, max_off);

    engine_read_result end;
    memset(&end, 0, sizeof end);
    assert_int_equal(engine_read(e, name, nlen, queue, max_off, READ_COUNT, READ_BYTES, &end), 0);
    v->reading = end.data;
    assert_int_equal(end.status, max_off ? ENGINE_READ_OFFSET_OVERFLOW_ONE : ENGINE_READ_NO_MESSAGE);
    assert_int_equal(end.count, 0);
    engine_free(end.data);
    v->reading = NULL;
}

static int by_position(const void *a, const void *b)
{
    const placed_record *x = a, *y = b;
    return x->position < y->position ? -1 : x->position > y->position;
}

/* Sorted by position the records must cover [0, end) exactly. */
static void verify_tiling(verify_state *v, uint64_t end)
{
    qsort(v->placed, v->n_placed, sizeof *v->placed, by_position);
    uint64_t expect = 0;
    for (size_t i = 0; i < v->n_placed; i++) {
        if (v->placed[i].position != expect)
            fail_msg("log position %" PRIu64 " follows a record ending at %" PRIu64
                     " (%s)", v->placed[i].position, expect,
                     v->placed[i].position < expect ? "overlap" : "hole");
        expect += v->placed[i].size;
    }
    if (expect != end)
        fail_msg("records end at log position %" PRIu64 ", engine_next_log_position %" PRIu64,
                 expect, end);
}

static const sent_msg *by_ack_base;

static int by_ack_tick(const void *pa, const void *pb)
{
    uint64_t a = by_ack_base[*(const uint32_t *)pa].ack_tick;
    uint64_t b = by_ack_base[*(const uint32_t *)pb].ack_tick;
    return (a > b) - (a < b);
}

/*
 * Commit order: a message acknowledged before another was submitted has the
 * lower log position. (Messages in flight together may commit in one group,
 * which the writer orders by queue.) Sweeps the thread's messages in
 * submission order against its acknowledgements in tick order.
 */
static void verify_commit_order(unsigned t, const order_thread *th)
{
    uint32_t *acked = malloc(th->n_sent * sizeof *acked);
    assert_non_null(acked);
    for (uint32_t i = 0; i < th->n_sent; i++)
        acked[i] = i;
    by_ack_base = th->sent;
    qsort(acked, th->n_sent, sizeof *acked, by_ack_tick);
    uint32_t done = 0, highest = 0;
    for (uint32_t seq = 0; seq < th->n_sent; seq++) {
        const sent_msg *s = &th->sent[seq];
        for (; done < th->n_sent && th->sent[acked[done]].ack_tick < s->submit_tick; done++)
            if (th->sent[acked[done]].stored_position >= th->sent[highest].stored_position)
                highest = acked[done];
        if (done > 0 && s->stored_position <= th->sent[highest].stored_position) {
            free(acked);
            fail_msg("thread %u: seq %u, acknowledged before seq %u was submitted, is at log "
                     "position %" PRIu64 ", seq %u at %" PRIu64 ": commit order broken",
                     t, highest, seq, th->sent[highest].stored_position, seq,
                     s->stored_position);
        }
    }
    free(acked);
}

/* Every message acknowledged and seen once; each thread's positions in its order. */
static void verify_all_seen(verify_state *v)
{
    for (unsigned t = 0; t < N_THREADS; t++) {
        order_thread *th = &v->threads[t];
        for (uint32_t seq = 0; seq < th->n_sent; seq++) {
            sent_msg *s = &th->sent[seq];
            if (!s->acked || !s->seen)
                fail_msg("thread %u seq %u (%s:%u): acked %d, found %d", t, seq,
                         TOPICS[s->topic].name, s->queue, s->acked, s->seen);
        }
        verify_commit_order(t, th);
    }
}

static void verify_store(engine *e, verify_state *v)
{
    for (unsigned t = 0; t < N_THREADS; t++)
        for (uint32_t seq = 0; seq < v->threads[t].n_sent; seq++)
            v->threads[t].sent[seq].seen = 0;
    v->n_placed = 0;

    for (unsigned topic = 0; topic < N_TOPICS; topic++)
        for (uint32_t q = 0; q < TOPICS[topic].queues; q++)
            verify_queue(e, v, topic, q);
    verify_all_seen(v);
    verify_tiling(v, engine_next_log_position(e));
}

/* ---- Tests -------------------------------------------------------------- */

/* What a test owns; teardown releases it whether or not the test passed. */
typedef struct order_fixture {
    char *dir;
    engine *e;
    order_thread *threads;
    verify_state verify;
} order_fixture;

static int order_setup(void **state)
{
    order_fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->dir = test_tmpdir("order");
    f->threads = calloc(N_THREADS, sizeof *f->threads);
    assert_non_null(f->threads);
    for (unsigned t = 0; t < N_THREADS; t++) {
        order_thread *th = &f->threads[t];
        th->id = t;
        th->rng = 0x9e3779b9u * (t + 1);
        assert_int_equal(pthread_mutex_init(&th->mu, NULL), 0);
        assert_int_equal(pthread_cond_init(&th->cv, NULL), 0);
    }
    f->verify.threads = f->threads;
    *state = f;
    return 0;
}

static int order_teardown(void **state)
{
    order_fixture *f = *state;
    if (f->verify.reading)
        engine_free(f->verify.reading);
    free(f->verify.placed);
    if (f->e)
        engine_close(f->e);
    for (unsigned t = 0; t < N_THREADS; t++) {
        pthread_mutex_destroy(&f->threads[t].mu);
        pthread_cond_destroy(&f->threads[t].cv);
    }
    free(f->threads);
    test_rmdir_free(f->dir);
    free(f);
    return 0;
}

static void run_producers(engine *e, order_thread *threads)
{
    pthread_t tids[N_THREADS];
    for (unsigned t = 0; t < N_THREADS; t++)
        threads[t].e = e;
    for (unsigned t = 0; t < N_THREADS; t++)
        assert_int_equal(pthread_create(&tids[t], NULL, order_worker, &threads[t]), 0);
    for (unsigned t = 0; t < N_THREADS; t++)
        assert_int_equal(pthread_join(tids[t], NULL), 0);
    for (unsigned t = 0; t < N_THREADS; t++)
        if (threads[t].failed)
            fail_msg("%s", threads[t].error);
}

static uint32_t total_sent(const order_thread *threads)
{
    uint32_t n = 0;
    for (unsigned t = 0; t < N_THREADS; t++)
        n += threads[t].n_sent;
    return n;
}

static void run_order_test(order_fixture *f, engine_flush_mode mode)
{
    engine_config c;
    test_engine_config(&c, f->dir);
    c.flush_mode = mode;
    f->e = test_engine_open(&c);
    for (unsigned t = 0; t < N_TOPICS; t++)
        test_topic_create(f->e, TOPICS[t].name, TOPICS[t].queues);

    run_producers(f->e, f->threads);
    verify_store(f->e, &f->verify);
    uint64_t end = engine_next_log_position(f->e);
    engine_close(f->e);
    f->e = NULL;
    print_message("order %s: %u messages, %" PRIu64 " log bytes\n",
                  mode == ENGINE_SYNC_FLUSH ? "SYNC_FLUSH" : "ASYNC_FLUSH",
                  total_sent(f->threads), end);

    /* A clean reopen must show the very same store. */
    f->e = test_engine_open(&c);
    assert_int_equal(engine_next_log_position(f->e), end);
    verify_store(f->e, &f->verify);
    engine_close(f->e);
    f->e = NULL;
}

static void test_order_async_flush(void **state)
{
    run_order_test(*state, ENGINE_ASYNC_FLUSH);
}

static void test_order_sync_flush(void **state)
{
    run_order_test(*state, ENGINE_SYNC_FLUSH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_order_async_flush, order_setup, order_teardown),
        cmocka_unit_test_setup_teardown(test_order_sync_flush, order_setup, order_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
