/*
 * test_e2e_kill9: the crash test. A real mqbroker (embedded name server,
 * fixed ports, one store directory for its whole life) takes load from a
 * liblsmq producer sending synchronously from three threads while a liblsmq
 * push consumer group reads the topic. Three times per run, at a random
 * moment 200-800 ms into the load, the broker is killed with SIGKILL and
 * started again on the same store and ports; the producers keep going
 * (sends fail while it is down; only acknowledged ones count) and the
 * consumer picks up where it was. Afterwards:
 *
 *  - every acknowledged message is in the store at the queue offset its
 *    acknowledgement named, with the body that was sent (checksum) and a
 *    valid body CRC; no offset was acknowledged twice;
 *  - every queue holds contiguous offsets from 0 to its max offset;
 *  - the consumer resumed after each restart and received every
 *    acknowledged message at least once (duplicates allowed, no losses,
 *    never two different bodies for one offset).
 *
 * Run once with flushDiskType=SYNC_FLUSH and once with ASYNC_FLUSH. A
 * process kill leaves the WAL in the OS page cache, so ASYNC_FLUSH may not
 * lose anything acknowledged either. Each run ends with SIGTERM, and the
 * broker must exit 0 (sanitizers clean). A failure lists what was lost as
 * (queue, offset, cycle). KILL9_SEED=<n> replays a run's kill timings.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc.h"
#include "clock.h"
#include "e2e_msg.h"
#include "e2e_topic.h"
#include "lsmq.h"
#include "testsupport.h"
#include "wire.h"

#define TOPIC "Kill9"
#define QUEUES 4
#define PRODUCER_THREADS 3
#define CYCLES 3
#define CONSUMER_GROUP "kill9-cg"
#define PRODUCER_GROUP "kill9-pg"
#define VERIFY_GROUP "kill9-verify"
#define BODY_MAX 256
#define MAX_REPORTED 20

/* Bounds of every wait (ms). */
#define START_WAIT_MS 20000
#define RESUME_WAIT_MS 25000
#define DRAIN_WAIT_MS 30000
#define STOP_WAIT_MS 30000

/* One acknowledged send: where the broker said it stored what. */
typedef struct ack {
    int64_t offset;
    uint64_t sum;
    int32_t queue;
    int16_t cycle;
    int16_t thread;
    int32_t seq;
} ack;

/* A producer thread and the sends it got acknowledged. */
typedef struct prod_thread {
    pthread_t th;
    int id;
    int started;
    uint64_t rng;
    ack *acks;
    size_t n, cap;
    long failed;
} prod_thread;

/* Per-queue checksums by offset; 0 = nothing there. */
typedef struct offset_map {
    uint64_t *sum[QUEUES];
    size_t cap[QUEUES];
} offset_map;

/* What the push consumer received. */
typedef struct received {
    pthread_mutex_t lock;
    offset_map seen;
    long deliveries, dups, conflicts, foreign;
    long per_cycle[CYCLES + 1];
    char first_conflict[128];
} received;

/* Everything one flush mode's run owns; static so library threads never see a dead frame. */
typedef struct run {
    const char *flush;
    e2e_broker broker;
    lsmq_producer *producer;
    lsmq_push_consumer *consumer;
    prod_thread threads[PRODUCER_THREADS];
    atomic_int cycle;
    atomic_int stop;
    atomic_long acked_in_cycle[CYCLES + 1];
    received rx;
    offset_map expected, stored; /* the store check's maps */
} run;

static run the_run;
static uint64_t seed;
static atomic_long log_lines;

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

/* FNV-1a over the body, never 0 (0 marks an empty slot). */
static uint64_t body_sum(const void *body, size_t len)
{
    const uint8_t *p = body;
    uint64_t h = 14695981039346656037ull;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h | 1;
}

/* Grow q's slot array to hold offset; aborts on allocation failure (test memory). */
static void map_reserve(offset_map *m, int q, int64_t offset)
{
    size_t need = (size_t)offset + 1, cap = m->cap[q];

    if (need <= cap)
        return;
    while (cap < need)
        cap = cap ? cap * 2 : 4096;
    m->sum[q] = proto_xrealloc(m->sum[q], cap * sizeof *m->sum[q]);
    memset(m->sum[q] + m->cap[q], 0, (cap - m->cap[q]) * sizeof *m->sum[q]);
    m->cap[q] = cap;
}

static uint64_t map_get(const offset_map *m, int q, int64_t offset)
{
    return offset >= 0 && (size_t)offset < m->cap[q] ? m->sum[q][offset] : 0;
}

static void map_free(offset_map *m)
{
    for (int q = 0; q < QUEUES; q++) {
        free(m->sum[q]);
        m->sum[q] = NULL;
        m->cap[q] = 0;
    }
}

/* Client log lines: the first few of each run are shown, the rest counted. */
static void log_cb(int level, const char *line, void *arg)
{
    (void)arg;
    if (atomic_fetch_add(&log_lines, 1) < 10)
        fprintf(stderr, "liblsmq[%d]: %s\n", level, line);
}

/* ------------------------------------------------------------------ */
/* The broker                                                          */
/* ------------------------------------------------------------------ */

/* Start mqbroker with the run's flush mode: on fresh ports and store, or again on its own. */
static int broker_start(run *r, int again)
{
    char flush[64];
    const char *extra[] = {flush, NULL};

    snprintf(flush, sizeof flush, "--flushDiskType=%s", r->flush);
    return again ? e2e_broker_restart(&r->broker, extra)
                 : e2e_broker_start(&r->broker, "e2e-kill9", extra);
}

/* ------------------------------------------------------------------ */
/* Producers                                                           */
/* ------------------------------------------------------------------ */

static void *producer_main(void *arg)
{
    prod_thread *t = arg;
    run *r = &the_run;
    char body[BODY_MAX];
    int seq = 0;

    /* No cmocka asserts here: they belong to the test's own thread. */
    while (!atomic_load(&r->stop)) {
        int cycle = atomic_load(&r->cycle);
        int len = snprintf(body, sizeof body, "k9 t%d s%d c%d ", t->id, seq, cycle);
        int want = len + (int)(xorshift(&t->rng) % (BODY_MAX - 64));
        lsmq_out_message m;
        lsmq_send_result res;

        for (; len < want; len++)
            body[len] = (char)('a' + xorshift(&t->rng) % 26);
        memset(&m, 0, sizeof m);
        m.topic = TOPIC;
        m.body = body;
        m.body_len = (size_t)len;
        if (lsmq_producer_send(r->producer, &m, &res) == 0) {
            if (t->n == t->cap) {
                t->cap = t->cap ? t->cap * 2 : 4096;
                t->acks = proto_xrealloc(t->acks, t->cap * sizeof *t->acks);
            }
            t->acks[t->n++] = (ack){.offset = res.queue_offset,
                                    .sum = body_sum(body, (size_t)len),
                                    .queue = res.queue_id,
                                    .cycle = (int16_t)cycle,
                                    .thread = (int16_t)t->id,
                                    .seq = seq};
            atomic_fetch_add(&r->acked_in_cycle[cycle], 1);
        } else {
            t->failed++;
            e2e_sleep_ms(20); /* the broker is down: don't spin */
        }
        seq++;
    }
    return NULL;
}

static void producers_start(run *r)
{
    assert_int_equal(lsmq_producer_create(r->broker.namesrv, PRODUCER_GROUP, &r->producer), 0);
    assert_int_equal(lsmq_producer_set_send_timeout(r->producer, 3000), 0);
    assert_int_equal(lsmq_producer_set_compress_threshold(r->producer, 0), 0);
    assert_int_equal(lsmq_producer_start(r->producer), 0);
    for (int i = 0; i < PRODUCER_THREADS; i++) {
        prod_thread *t = &r->threads[i];

        t->id = i;
        t->rng = seed * 31 + (uint64_t)i * 7919 + 1;
        assert_int_equal(pthread_create(&t->th, NULL, producer_main, t), 0);
        t->started = 1;
    }
}

static void producers_stop(run *r)
{
    atomic_store(&r->stop, 1);
    for (int i = 0; i < PRODUCER_THREADS; i++) {
        if (r->threads[i].started)
            pthread_join(r->threads[i].th, NULL);
        r->threads[i].started = 0;
    }
    lsmq_producer_destroy(r->producer);
    r->producer = NULL;
}

static long acked_total(run *r)
{
    long n = 0;

    for (int c = 0; c <= CYCLES; c++)
        n += atomic_load(&r->acked_in_cycle[c]);
    return n;
}

/* ------------------------------------------------------------------ */
/* The consumer                                                        */
/* ------------------------------------------------------------------ */

static int listener(const lsmq_message *m, void *arg)
{
    received *rx = arg;
    size_t len;
    const char *body = lsmq_message_body(m, &len);
    int32_t q = lsmq_message_queue_id(m);
    int64_t off = lsmq_message_queue_offset(m);
    uint64_t sum = body_sum(body, len);
    int t = -1, s = -1, c = -1;
    char head[64];

    snprintf(head, sizeof head, "%.*s", (int)(len < 60 ? len : 60), body);
    pthread_mutex_lock(&rx->lock);
    rx->deliveries++;
    if (sscanf(head, "k9 t%d s%d c%d", &t, &s, &c) != 3 || c < 0 || c > CYCLES || q < 0 ||
        q >= QUEUES || off < 0 || strcmp(lsmq_message_topic(m), TOPIC) != 0) {
        rx->foreign++;
        pthread_mutex_unlock(&rx->lock);
        return LSMQ_CONSUME_SUCCESS;
    }
    rx->per_cycle[c]++;
    map_reserve(&rx->seen, q, off);
    if (rx->seen.sum[q][off] == 0) {
        rx->seen.sum[q][off] = sum;
    } else if (rx->seen.sum[q][off] == sum) {
        rx->dups++;
    } else {
        if (rx->conflicts++ == 0)
            snprintf(rx->first_conflict, sizeof rx->first_conflict,
                     "queue %d offset %lld delivered with two different bodies", q,
                     (long long)off);
    }
    pthread_mutex_unlock(&rx->lock);
    return LSMQ_CONSUME_SUCCESS;
}

static void consumer_start(run *r)
{
    lsmq_push_consumer *c = NULL;

    assert_int_equal(lsmq_push_consumer_create(r->broker.namesrv, CONSUMER_GROUP, &c), 0);
    assert_int_equal(lsmq_push_consumer_subscribe(c, TOPIC, "*"), 0);
    assert_int_equal(lsmq_push_consumer_set_consume_from(c, LSMQ_FROM_FIRST), 0);
    assert_int_equal(lsmq_push_consumer_set_rebalance_interval(c, 1000), 0);
    assert_int_equal(lsmq_push_consumer_set_commit_interval(c, 500), 0);
    assert_int_equal(lsmq_push_consumer_set_listener(c, listener, &r->rx), 0);
    assert_int_equal(lsmq_push_consumer_start(c), 0);
    r->consumer = c;
}

static long rx_cycle(run *r, int cycle)
{
    long n;

    pthread_mutex_lock(&r->rx.lock);
    n = r->rx.per_cycle[cycle];
    pthread_mutex_unlock(&r->rx.lock);
    return n;
}

/* ------------------------------------------------------------------ */
/* Checks                                                              */
/* ------------------------------------------------------------------ */

/* Acknowledged sends per queue by offset; fails on an offset acknowledged twice. */
static void build_expected(run *r, offset_map *exp, long *total)
{
    long twice = 0;

    *total = 0;
    for (int i = 0; i < PRODUCER_THREADS; i++) {
        const prod_thread *t = &r->threads[i];

        for (size_t k = 0; k < t->n; k++) {
            const ack *a = &t->acks[k];

            if (a->queue < 0 || a->queue >= QUEUES || a->offset < 0) {
                fail_msg("%s: acknowledgement names queue %d offset %lld (cycle %d)",
                         r->flush, a->queue, (long long)a->offset, a->cycle);
            }
            map_reserve(exp, a->queue, a->offset);
            if (exp->sum[a->queue][a->offset] != 0 && twice++ < MAX_REPORTED)
                fprintf(stderr, "%s: queue %d offset %lld acknowledged twice (cycle %d)\n",
                        r->flush, a->queue, (long long)a->offset, a->cycle);
            exp->sum[a->queue][a->offset] = a->sum;
            (*total)++;
        }
    }
    if (twice)
        fail_msg("%s: %ld queue offsets were acknowledged for two different sends", r->flush,
                 twice);
}

/*
 * Acknowledged messages the consumer has not received (with the body sent);
 * prints up to `report` of them.
 */
static long missing_in_consumer(run *r, int report)
{
    long missing = 0;

    pthread_mutex_lock(&r->rx.lock);
    for (int i = 0; i < PRODUCER_THREADS; i++) {
        const prod_thread *t = &r->threads[i];

        for (size_t k = 0; k < t->n; k++) {
            const ack *a = &t->acks[k];

            if (map_get(&r->rx.seen, a->queue, a->offset) == a->sum)
                continue;
            if (missing++ < report)
                fprintf(stderr,
                        "%s: consumer never received queue %d offset %lld (cycle %d, "
                        "thread %d seq %d)%s\n",
                        r->flush, a->queue, (long long)a->offset, a->cycle, a->thread, a->seq,
                        map_get(&r->rx.seen, a->queue, a->offset) ? ": a different body" : "");
        }
    }
    pthread_mutex_unlock(&r->rx.lock);
    return missing;
}

/*
 * Pull every queue back from offset 0 with raw pulls: offsets contiguous up
 * to the queue's max offset, body CRCs valid. Fills `stored` with the body
 * checksums found; returns the number of records.
 */
static long pull_store(run *r, offset_map *stored)
{
    int fd = wire_connect(r->broker.proc.port, 10000);
    long total = 0;

    assert_true(fd >= 0);
    for (int q = 0; q < QUEUES; q++) {
        int64_t offset = 0;
        int pulls = 0;

        for (;;) {
            proto_cmd *resp = NULL;
            uint8_t *frame = NULL;
            static proto_record recs[1024];
            size_t n;

            assert_int_equal(wire_call(fd, e2e_pull(VERIFY_GROUP, TOPIC, q, offset, 1024, 0, 0,
                                                    NULL),
                                       NULL, 0, &resp, &frame),
                             0);
            assert_true(++pulls < 100000);
            if (resp->code == RS_PULL_NOT_FOUND) {
                int64_t max = e2e_i64(resp, "maxOffset");

                if (max != offset || e2e_i64(resp, "minOffset") != 0)
                    fail_msg("%s: queue %d read to offset %lld but min/max offsets are "
                             "%lld/%lld",
                             r->flush, q, (long long)offset,
                             (long long)e2e_i64(resp, "minOffset"), (long long)max);
                proto_cmd_free(resp);
                free(frame);
                break;
            }
            if (resp->code != RS_SUCCESS)
                fail_msg("%s: pull of queue %d at offset %lld: code %d %s", r->flush, q,
                         (long long)offset, resp->code, resp->remark ? resp->remark : "");
            n = e2e_records(resp->body, resp->body_len, recs, 1024);
            assert_true(n >= 1);
            for (size_t i = 0; i < n; i++) {
                const proto_record *rec = &recs[i];

                if (rec->queue_offset != offset || rec->queue_id != q)
                    fail_msg("%s: queue %d: expected offset %lld, found queue %d offset %lld "
                             "(a hole or reordering)",
                             r->flush, q, (long long)offset, rec->queue_id,
                             (long long)rec->queue_offset);
                if (proto_record_check_crc(rec) != 0)
                    fail_msg("%s: queue %d offset %lld: body CRC mismatch", r->flush, q,
                             (long long)offset);
                map_reserve(stored, q, offset);
                stored->sum[q][offset] = body_sum(rec->body, rec->body_len);
                offset++;
            }
            if (e2e_i64(resp, "nextBeginOffset") != offset)
                fail_msg("%s: queue %d: nextBeginOffset %lld after reading to %lld", r->flush,
                         q, (long long)e2e_i64(resp, "nextBeginOffset"), (long long)offset);
            proto_cmd_free(resp);
            free(frame);
        }
        total += offset;
    }
    close(fd);
    return total;
}

/* Every acknowledged send is stored at its offset with its body. */
static void check_store(run *r)
{
    offset_map *exp = &r->expected, *stored = &r->stored;
    long acked, n_stored, lost = 0, extra = 0;

    build_expected(r, exp, &acked);
    n_stored = pull_store(r, stored);
    for (int i = 0; i < PRODUCER_THREADS; i++) {
        const prod_thread *t = &r->threads[i];

        for (size_t k = 0; k < t->n; k++) {
            const ack *a = &t->acks[k];
            uint64_t got = map_get(stored, a->queue, a->offset);

            if (got == a->sum)
                continue;
            if (lost++ < MAX_REPORTED)
                fprintf(stderr,
                        "%s: LOST queue %d offset %lld (cycle %d, thread %d seq %d): %s\n",
                        r->flush, a->queue, (long long)a->offset, a->cycle, a->thread, a->seq,
                        got ? "another body is stored there" : "no record there");
        }
    }
    for (int q = 0; q < QUEUES; q++)
        for (size_t off = 0; off < stored->cap[q]; off++)
            if (stored->sum[q][off] && !map_get(exp, q, (int64_t)off))
                extra++;
    fprintf(stderr, "%s: store holds %ld messages: %ld acknowledged, %ld stored but never "
            "acknowledged (in flight at a kill)\n",
            r->flush, n_stored, acked, extra);
    map_free(exp);
    map_free(stored);
    if (lost)
        fail_msg("%s: %ld of %ld acknowledged messages lost or changed in the store", r->flush,
                 lost, acked);
}

/* ------------------------------------------------------------------ */
/* The run                                                             */
/* ------------------------------------------------------------------ */

/* Wait until *cond(r, arg) holds or timeout_ms passes; returns whether it held. */
static int wait_for(run *r, int (*cond)(run *, int), int arg, int timeout_ms)
{
    int64_t deadline = proto_mono_ms() + timeout_ms;

    for (;;) {
        if (cond(r, arg))
            return 1;
        if (proto_mono_ms() >= deadline)
            return 0;
        e2e_sleep_ms(20);
    }
}

/* Producers got at least 50 sends of this cycle acknowledged. */
static int producers_resumed(run *r, int cycle)
{
    return atomic_load(&r->acked_in_cycle[cycle]) >= 50;
}

/* The consumer received messages sent in this cycle. */
static int consumer_resumed(run *r, int cycle)
{
    return rx_cycle(r, cycle) > 0;
}

static int consumer_drained(run *r, int unused)
{
    (void)unused;
    return missing_in_consumer(r, 0) == 0;
}

static void run_mode(const char *flush)
{
    run *r = &the_run;
    uint64_t rng = seed ^ (uint64_t)strlen(flush) * 0x9E3779B97F4A7C15ull;
    int64_t t0 = proto_mono_ms(), load_start;
    long failed = 0;
    int status;

    r->flush = flush;
    pthread_mutex_init(&r->rx.lock, NULL);
    atomic_store(&log_lines, 0);

    assert_int_equal(broker_start(r, 0), 0);
    assert_true(e2e_topic_create_routed(&r->broker, TOPIC, QUEUES) >= 0);
    consumer_start(r);
    producers_start(r);
    if (!wait_for(r, producers_resumed, 0, START_WAIT_MS))
        fail_msg("%s: producers got no acknowledgements at start", flush);
    load_start = proto_mono_ms();

    for (int cycle = 1; cycle <= CYCLES; cycle++) {
        int delay = 200 + (int)(xorshift(&rng) % 601);
        int64_t since = proto_mono_ms() - load_start, t_kill, t_up, t_prod, t_cons;

        if (since < delay)
            e2e_sleep_ms((int)(delay - since));
        t_kill = proto_mono_ms();
        wire_kill9(&r->broker.proc);
        atomic_store(&r->cycle, cycle);
        if (broker_start(r, 1) != 0)
            fail_msg("%s: cycle %d: mqbroker did not restart on its store", flush, cycle);
        t_up = proto_mono_ms();
        if (!wait_for(r, producers_resumed, cycle, RESUME_WAIT_MS))
            fail_msg("%s: cycle %d: producers got no acknowledgements after the restart",
                     flush, cycle);
        t_prod = proto_mono_ms();
        load_start = t_prod;
        if (!wait_for(r, consumer_resumed, cycle, RESUME_WAIT_MS))
            fail_msg("%s: cycle %d: the consumer received nothing sent after the restart",
                     flush, cycle);
        t_cons = proto_mono_ms();
        fprintf(stderr,
                "%s: cycle %d: killed %d ms into the load, restarted in %lld ms, producers "
                "resumed after %lld ms, consumer after %lld ms; %ld acknowledged so far\n",
                flush, cycle, delay, (long long)(t_up - t_kill), (long long)(t_prod - t_up),
                (long long)(t_cons - t_up), acked_total(r));
    }
    e2e_sleep_ms(200 + (int)(xorshift(&rng) % 300));
    producers_stop(r);
    for (int i = 0; i < PRODUCER_THREADS; i++)
        failed += r->threads[i].failed;

    /* The store first (raw pulls), then the consumer, which keeps running meanwhile. */
    check_store(r);

    /* Drain: the consumer must catch up with every acknowledgement. */
    if (!wait_for(r, consumer_drained, 0, DRAIN_WAIT_MS)) {
        long missing = missing_in_consumer(r, MAX_REPORTED);

        fail_msg("%s: the consumer never received %ld acknowledged messages", flush, missing);
    }
    lsmq_push_consumer_destroy(r->consumer);
    r->consumer = NULL;
    fprintf(stderr,
            "%s: %ld sends acknowledged, %ld failed while the broker was down; consumer: %ld "
            "deliveries, %ld duplicates, %ld client log lines\n",
            flush, acked_total(r), failed, r->rx.deliveries, r->rx.dups,
            atomic_load(&log_lines));
    if (r->rx.conflicts)
        fail_msg("%s: %ld conflicting deliveries, first: %s", flush, r->rx.conflicts,
                 r->rx.first_conflict);
    assert_int_equal(r->rx.foreign, 0);

    status = e2e_broker_stop(&r->broker, STOP_WAIT_MS);
    if (status != 0)
        fail_msg("%s: mqbroker exited with status %d after SIGTERM", flush, status);
    fprintf(stderr, "%s: passed in %lld ms\n", flush, (long long)(proto_mono_ms() - t0));
}

/* Whatever a run left behind (also after a failed assertion). */
static int run_teardown(void **state)
{
    run *r = &the_run;

    (void)state;
    if (r->producer)
        producers_stop(r);
    lsmq_push_consumer_destroy(r->consumer);
    r->consumer = NULL;
    e2e_broker_kill(&r->broker);
    for (int i = 0; i < PRODUCER_THREADS; i++)
        free(r->threads[i].acks);
    map_free(&r->rx.seen);
    map_free(&r->expected);
    map_free(&r->stored);
    pthread_mutex_destroy(&r->rx.lock);
    memset(r, 0, sizeof *r);
    return 0;
}

static void test_kill9_sync_flush(void **state)
{
    (void)state;
    run_mode("SYNC_FLUSH");
}

static void test_kill9_async_flush(void **state)
{
    (void)state;
    run_mode("ASYNC_FLUSH");
}

int main(void)
{
    const char *env = getenv("KILL9_SEED");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_kill9_sync_flush, run_teardown),
        cmocka_unit_test_teardown(test_kill9_async_flush, run_teardown),
    };

    seed = env ? strtoull(env, NULL, 10) : (uint64_t)proto_wall_ms() ^ (uint64_t)getpid() << 16;
    if (seed == 0)
        seed = 1;
    fprintf(stderr, "test_e2e_kill9: KILL9_SEED=%llu\n", (unsigned long long)seed);
    lsmq_set_log(log_cb, NULL, LSMQ_LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
