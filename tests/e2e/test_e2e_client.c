/*
 * test_e2e_client: liblsmq against a real mqbroker (embedded name server,
 * fresh store), through the public API only:
 *
 *  - 100,000 messages from four producers (ordered sync sends, async sends,
 *    batches, plain sync sends) through a push consumer group of two:
 *    none lost, each queue's messages delivered in queue order;
 *  - a group of three that rebalances as members join and leave while
 *    messages flow: none lost, every member gets a share;
 *  - offset resume: a consumer destroyed and started again (same group)
 *    carries on where it stopped;
 *  - RECONSUME_LATER: the message comes back through %RETRY%<group> with
 *    its original topic and reconsume count 1;
 *  - broadcasting: two members each get every message, offsets in local
 *    files that a restart resumes from;
 *  - tag subscriptions ("TagA || TagC") filter what a consumer sees;
 *  - the pull (assign) consumer: assign, poll, commit, committed, seek;
 *  - batch results, ordered (selector) sends, oneway sends, compressed
 *    bodies, error codes.
 * The broker is stopped with SIGTERM and must exit 0 (sanitizers clean).
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

#include "e2e_topic.h"
#include "lsmq.h"
#include "testsupport.h"
#include "wire.h"

#define MAX_QUEUES 16
#define MAX_PRODUCERS 4

static e2e_broker broker;

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static lsmq_producer *new_producer_window(const char *group, int window)
{
    lsmq_producer *p = NULL;

    assert_int_equal(lsmq_producer_create(broker.namesrv, group, &p), 0);
    assert_int_equal(lsmq_producer_set_send_timeout(p, 10000), 0);
    if (window)
        assert_int_equal(lsmq_producer_set_max_async_inflight(p, window), 0);
    assert_int_equal(lsmq_producer_start(p), 0);
    return p;
}

static lsmq_producer *new_producer(const char *group)
{
    return new_producer_window(group, 0);
}

static lsmq_out_message out_msg(const char *topic, const char *body)
{
    lsmq_out_message m;

    memset(&m, 0, sizeof m);
    m.topic = topic;
    m.body = body;
    m.body_len = strlen(body);
    return m;
}

static void send_sync(lsmq_producer *p, const char *topic, const char *body)
{
    lsmq_out_message m = out_msg(topic, body);
    lsmq_send_result r;
    int rc = lsmq_producer_send(p, &m, &r);

    if (rc != 0) {
        char text[512];

        lsmq_producer_last_error(p, text, sizeof text);
        fail_msg("send to %s failed: %d %s", topic, rc, text);
    }
}

/* ------------------------------------------------------------------ */
/* Tracking what consumers receive                                     */
/* ------------------------------------------------------------------ */

/* Bodies are "p<producer> s<seq> ..."; every (producer, seq) must arrive. */
typedef struct tracker {
    pthread_mutex_t lock;
    int producers, per_producer;
    unsigned char *seen;
    long distinct, total, dups, order_errors, foreign;
    int ordered[MAX_PRODUCERS]; /* producers whose sends to a queue are in order */
} tracker;

/* One push consumer instance and what it saw, per queue. */
typedef struct member {
    tracker *t;
    lsmq_push_consumer *c;
    char name[32];
    long received;
    int64_t last_offset[MAX_QUEUES];
    int last_seq[MAX_QUEUES][MAX_PRODUCERS];
} member;

static void tracker_init(tracker *t, int producers, int per_producer)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->lock, NULL);
    t->producers = producers;
    t->per_producer = per_producer;
    t->seen = calloc((size_t)producers * (size_t)per_producer, 1);
}

static void tracker_free(tracker *t)
{
    free(t->seen);
    pthread_mutex_destroy(&t->lock);
}

static long tracker_distinct(tracker *t)
{
    long n;

    pthread_mutex_lock(&t->lock);
    n = t->distinct;
    pthread_mutex_unlock(&t->lock);
    return n;
}

/* Wait until every message was seen, or timeout_ms. */
static int tracker_wait(tracker *t, long want, int timeout_ms)
{
    int64_t deadline = proto_mono_ms() + timeout_ms;

    while (tracker_distinct(t) < want && proto_mono_ms() < deadline)
        e2e_sleep_ms(20);
    return tracker_distinct(t) >= want;
}

static void member_reset(member *mb, tracker *t, const char *name)
{
    memset(mb, 0, sizeof *mb);
    mb->t = t;
    snprintf(mb->name, sizeof mb->name, "%s", name);
    for (int q = 0; q < MAX_QUEUES; q++) {
        mb->last_offset[q] = -1;
        for (int p = 0; p < MAX_PRODUCERS; p++)
            mb->last_seq[q][p] = -1;
    }
}

static int tracking_listener(const lsmq_message *m, void *arg)
{
    member *mb = arg;
    tracker *t = mb->t;
    size_t len;
    const char *body = lsmq_message_body(m, &len);
    int32_t q = lsmq_message_queue_id(m);
    int64_t off = lsmq_message_queue_offset(m);
    int p = -1, s = -1;
    char buf[64];

    snprintf(buf, sizeof buf, "%.*s", (int)(len < 60 ? len : 60), body);
    pthread_mutex_lock(&t->lock);
    t->total++;
    mb->received++;
    if (sscanf(buf, "p%d s%d", &p, &s) != 2 || p < 0 || p >= t->producers || s < 0 ||
        s >= t->per_producer || q < 0 || q >= MAX_QUEUES) {
        t->foreign++;
        pthread_mutex_unlock(&t->lock);
        return LSMQ_CONSUME_SUCCESS;
    }
    /* Per-queue order: within one member, offsets only go up. */
    if (off <= mb->last_offset[q])
        t->order_errors++;
    mb->last_offset[q] = off;
    if (t->ordered[p]) {
        if (s <= mb->last_seq[q][p])
            t->order_errors++;
        mb->last_seq[q][p] = s;
    }
    if (t->seen[(size_t)p * t->per_producer + s]++)
        t->dups++;
    else
        t->distinct++;
    pthread_mutex_unlock(&t->lock);
    return LSMQ_CONSUME_SUCCESS;
}

static void start_member(member *mb, const char *group, const char *topic, int model,
                         const char *offset_dir)
{
    lsmq_push_consumer *c = NULL;

    assert_int_equal(lsmq_push_consumer_create(broker.namesrv, group, &c), 0);
    assert_int_equal(lsmq_push_consumer_subscribe(c, topic, "*"), 0);
    assert_int_equal(lsmq_push_consumer_set_consume_from(c, LSMQ_FROM_FIRST), 0);
    assert_int_equal(lsmq_push_consumer_set_model(c, model), 0);
    assert_int_equal(lsmq_push_consumer_set_rebalance_interval(c, 1000), 0);
    assert_int_equal(lsmq_push_consumer_set_commit_interval(c, 500), 0);
    assert_int_equal(lsmq_push_consumer_set_instance_name(c, mb->name), 0);
    if (offset_dir)
        assert_int_equal(lsmq_push_consumer_set_offset_dir(c, offset_dir), 0);
    assert_int_equal(lsmq_push_consumer_set_listener(c, tracking_listener, mb), 0);
    assert_int_equal(lsmq_push_consumer_start(c), 0);
    mb->c = c;
}

static void stop_member(member *mb)
{
    lsmq_push_consumer_destroy(mb->c);
    mb->c = NULL;
}

/* ------------------------------------------------------------------ */
/* 100,000 messages                                                    */
/* ------------------------------------------------------------------ */

#define BULK_TOPIC "E2eBulk"
#define BULK_PER_PRODUCER 25000

typedef struct bulk_producer {
    lsmq_producer *p;
    int id;
    int mode; /* 0 ordered sync, 1 async, 2 batch, 3 sync */
    atomic_long acked;
    atomic_long failed;
} bulk_producer;

static void bulk_async_cb(int rc, const lsmq_send_result *res, void *arg)
{
    bulk_producer *bp = arg;

    if (rc == 0)
        atomic_fetch_add(&bp->acked, 1);
    else
        atomic_fetch_add(&bp->failed, 1);
}

static void *bulk_thread(void *arg)
{
    bulk_producer *bp = arg;
    lsmq_producer *p = bp->p;
    char body[160], key[32];
    int s;

    /* No cmocka asserts here: they must run on the test's own thread. */
    for (s = 0; s < BULK_PER_PRODUCER;) {
        if (bp->mode == 2) {
            lsmq_out_message msgs[100];
            lsmq_send_result res[100];
            char bodies[100][48];
            int n = 0;

            for (; n < 100 && s < BULK_PER_PRODUCER; n++, s++) {
                snprintf(bodies[n], sizeof bodies[n], "p%d s%d batch payload", bp->id, s);
                msgs[n] = out_msg(BULK_TOPIC, bodies[n]);
            }
            if (lsmq_producer_send_batch(p, msgs, (size_t)n, res) == 0)
                atomic_fetch_add(&bp->acked, n);
            else
                atomic_fetch_add(&bp->failed, n);
            continue;
        }
        snprintf(body, sizeof body, "p%d s%d %.*s", bp->id, s, 60,
                 "................................................................");
        lsmq_out_message m = out_msg(BULK_TOPIC, body);

        if (bp->mode == 0) {
            lsmq_send_result r;

            snprintf(key, sizeof key, "order-%d", s % 37);
            if (lsmq_producer_send_select(p, &m, lsmq_select_by_hash, key, &r) == 0)
                atomic_fetch_add(&bp->acked, 1);
            else
                atomic_fetch_add(&bp->failed, 1);
        } else if (bp->mode == 1) {
            if (lsmq_producer_send_async(p, &m, bulk_async_cb, bp) != 0)
                atomic_fetch_add(&bp->failed, 1);
        } else {
            if (lsmq_producer_send(p, &m, NULL) == 0)
                atomic_fetch_add(&bp->acked, 1);
            else
                atomic_fetch_add(&bp->failed, 1);
        }
        s++;
    }
    return NULL;
}

static void test_bulk_100k(void **state)
{
    static member members[2];
    bulk_producer bps[MAX_PRODUCERS];
    pthread_t threads[MAX_PRODUCERS];
    static tracker t; /* static: listeners may outlive a failed assertion */
    int64_t start;
    int i;

    e2e_topic_create_routed(&broker, BULK_TOPIC, 8);
    tracker_init(&t, MAX_PRODUCERS, BULK_PER_PRODUCER);
    t.ordered[0] = t.ordered[2] = t.ordered[3] = 1; /* async sends may interleave */
    member_reset(&members[0], &t, "bulk-a");
    member_reset(&members[1], &t, "bulk-b");
    start_member(&members[0], "e2e-bulk", BULK_TOPIC, LSMQ_CLUSTERING, NULL);
    start_member(&members[1], "e2e-bulk", BULK_TOPIC, LSMQ_CLUSTERING, NULL);
    e2e_sleep_ms(2500); /* let the group settle: per-member order checks need stable owners */

    start = proto_mono_ms();
    for (i = 0; i < MAX_PRODUCERS; i++) {
        char group[32];

        snprintf(group, sizeof group, "bulk-pg-%d", i);
        bps[i].p = new_producer_window(group, 2000);
        bps[i].id = i;
        bps[i].mode = i;
        atomic_init(&bps[i].acked, 0);
        atomic_init(&bps[i].failed, 0);
        assert_int_equal(pthread_create(&threads[i], NULL, bulk_thread, &bps[i]), 0);
    }
    for (i = 0; i < MAX_PRODUCERS; i++) {
        pthread_join(threads[i], NULL);
        lsmq_producer_destroy(bps[i].p); /* waits for the async sends */
        assert_int_equal(atomic_load(&bps[i].failed), 0);
        assert_int_equal(atomic_load(&bps[i].acked), BULK_PER_PRODUCER);
    }
    fprintf(stderr, "bulk: 100000 sent in %lld ms\n", (long long)(proto_mono_ms() - start));
    if (!tracker_wait(&t, (long)MAX_PRODUCERS * BULK_PER_PRODUCER, 40000))
        fail_msg("only %ld of 100000 messages arrived", tracker_distinct(&t));
    fprintf(stderr, "bulk: all received after %lld ms (%ld deliveries, %ld duplicates, "
            "member a %ld, member b %ld)\n", (long long)(proto_mono_ms() - start), t.total, t.dups,
            members[0].received, members[1].received);
    assert_int_equal(t.order_errors, 0);
    assert_int_equal(t.foreign, 0);
    /* Both members of the stable group took part. */
    assert_true(members[0].received > 0 && members[1].received > 0);
    stop_member(&members[0]);
    stop_member(&members[1]);
    tracker_free(&t);
}

/* ------------------------------------------------------------------ */
/* Rebalance on join and leave                                         */
/* ------------------------------------------------------------------ */

#define RB_TOPIC "E2eRebalance"
#define RB_COUNT 3000

typedef struct paced {
    lsmq_producer *p;
    const char *topic;
    int producer, count, pause_every, pause_ms;
    atomic_int sent;
} paced;

static void *paced_thread(void *arg)
{
    paced *pc = arg;
    char body[64];

    for (int s = 0; s < pc->count; s++) {
        lsmq_out_message m;

        snprintf(body, sizeof body, "p%d s%d", pc->producer, s);
        m = out_msg(pc->topic, body);
        while (lsmq_producer_send(pc->p, &m, NULL) != 0)
            e2e_sleep_ms(50); /* counted as lost by the test if it never goes */
        atomic_store(&pc->sent, s + 1);
        if (pc->pause_every && s % pc->pause_every == 0)
            e2e_sleep_ms(pc->pause_ms);
    }
    return NULL;
}

static void test_rebalance_join_leave(void **state)
{
    static member mb[3];
    paced pc = {.topic = RB_TOPIC, .producer = 0, .count = RB_COUNT, .pause_every = 100,
                .pause_ms = 200};
    pthread_t th;
    static tracker t; /* static: listeners may outlive a failed assertion */

    e2e_topic_create_routed(&broker, RB_TOPIC, 8);
    tracker_init(&t, 1, RB_COUNT);
    member_reset(&mb[0], &t, "rb-a");
    member_reset(&mb[1], &t, "rb-b");
    member_reset(&mb[2], &t, "rb-c");
    start_member(&mb[0], "e2e-rebalance", RB_TOPIC, LSMQ_CLUSTERING, NULL);
    atomic_init(&pc.sent, 0);
    pc.p = new_producer("paced-pg");
    assert_int_equal(pthread_create(&th, NULL, paced_thread, &pc), 0);

    /* Two members join while messages flow... */
    while (atomic_load(&pc.sent) < RB_COUNT / 4)
        e2e_sleep_ms(10);
    start_member(&mb[1], "e2e-rebalance", RB_TOPIC, LSMQ_CLUSTERING, NULL);
    start_member(&mb[2], "e2e-rebalance", RB_TOPIC, LSMQ_CLUSTERING, NULL);
    /* ...then one leaves. */
    while (atomic_load(&pc.sent) < RB_COUNT * 2 / 3)
        e2e_sleep_ms(10);
    stop_member(&mb[1]);
    pthread_join(th, NULL);
    lsmq_producer_destroy(pc.p);

    if (!tracker_wait(&t, RB_COUNT, 20000))
        fail_msg("only %ld of %d messages arrived", tracker_distinct(&t), RB_COUNT);
    fprintf(stderr, "rebalance: a %ld, b %ld, c %ld, %ld duplicates\n", mb[0].received,
            mb[1].received, mb[2].received, t.dups);
    /* The newcomers got a share: the group did rebalance. */
    assert_true(mb[1].received > 0);
    assert_true(mb[2].received > 0);
    stop_member(&mb[0]);
    stop_member(&mb[2]);
    tracker_free(&t);
}

/* ------------------------------------------------------------------ */
/* Offset resume                                                       */
/* ------------------------------------------------------------------ */

#define RESUME_TOPIC "E2eResume"

static void test_offset_resume(void **state)
{
    static member mb;
    lsmq_producer *p;
    char body[64];
    static tracker t; /* static: listeners may outlive a failed assertion */
    int s;

    e2e_topic_create_routed(&broker, RESUME_TOPIC, 4);
    tracker_init(&t, 1, 400);
    p = new_producer("resume-pg");
    for (s = 0; s < 200; s++) {
        snprintf(body, sizeof body, "p0 s%d", s);
        send_sync(p, RESUME_TOPIC, body);
    }
    member_reset(&mb, &t, "resume-1");
    start_member(&mb, "e2e-resume", RESUME_TOPIC, LSMQ_CLUSTERING, NULL);
    assert_true(tracker_wait(&t, 200, 15000));
    stop_member(&mb); /* commits its offsets */

    for (; s < 400; s++) {
        snprintf(body, sizeof body, "p0 s%d", s);
        send_sync(p, RESUME_TOPIC, body);
    }
    member_reset(&mb, &t, "resume-2");
    start_member(&mb, "e2e-resume", RESUME_TOPIC, LSMQ_CLUSTERING, NULL);
    assert_true(tracker_wait(&t, 400, 15000));
    e2e_sleep_ms(500); /* anything redelivered would show up by now */
    /* The second life started where the first stopped: nothing twice. */
    assert_int_equal(t.dups, 0);
    assert_int_equal(mb.received, 200);
    stop_member(&mb);
    lsmq_producer_destroy(p);
    tracker_free(&t);
}

/* ------------------------------------------------------------------ */
/* RECONSUME_LATER                                                     */
/* ------------------------------------------------------------------ */

#define RETRY_TOPIC_NAME "E2eRetry"

typedef struct retry_state {
    pthread_mutex_t lock;
    int first_seen, second_seen, others;
    int second_reconsume;
    char second_topic[64];
    char first_id[64], second_id[64];
} retry_state;

static int retry_listener(const lsmq_message *m, void *arg)
{
    retry_state *rs = arg;
    size_t len;
    const char *body = lsmq_message_body(m, &len);
    int later = 0;

    pthread_mutex_lock(&rs->lock);
    if (len == 9 && memcmp(body, "try-again", 9) == 0) {
        if (lsmq_message_reconsume_times(m) == 0) {
            rs->first_seen++;
            snprintf(rs->first_id, sizeof rs->first_id, "%s", lsmq_message_id(m));
            later = 1;
        } else {
            rs->second_seen++;
            rs->second_reconsume = lsmq_message_reconsume_times(m);
            snprintf(rs->second_topic, sizeof rs->second_topic, "%s", lsmq_message_topic(m));
            snprintf(rs->second_id, sizeof rs->second_id, "%s", lsmq_message_id(m));
        }
    } else {
        rs->others++;
    }
    pthread_mutex_unlock(&rs->lock);
    return later ? LSMQ_RECONSUME_LATER : LSMQ_CONSUME_SUCCESS;
}

static void test_reconsume_later(void **state)
{
    /* Static: a listener must never see a dead stack frame, even after a failure. */
    static retry_state rs;
    lsmq_push_consumer *c = NULL;
    lsmq_producer *p;
    int64_t deadline;
    int done;

    memset(&rs, 0, sizeof rs);
    pthread_mutex_init(&rs.lock, NULL);
    e2e_topic_create_routed(&broker, RETRY_TOPIC_NAME, 2);
    assert_int_equal(lsmq_push_consumer_create(broker.namesrv, "e2e-retry", &c), 0);
    assert_int_equal(lsmq_push_consumer_subscribe(c, RETRY_TOPIC_NAME, "*"), 0);
    assert_int_equal(lsmq_push_consumer_set_consume_from(c, LSMQ_FROM_FIRST), 0);
    assert_int_equal(lsmq_push_consumer_set_retry_delay_level(c, 1), 0);
    assert_int_equal(lsmq_push_consumer_set_rebalance_interval(c, 1000), 0);
    assert_int_equal(lsmq_push_consumer_set_listener(c, retry_listener, &rs), 0);
    assert_int_equal(lsmq_push_consumer_start(c), 0);

    p = new_producer("retry-pg");
    send_sync(p, RETRY_TOPIC_NAME, "try-again");
    send_sync(p, RETRY_TOPIC_NAME, "fine");
    for (deadline = proto_mono_ms() + 20000; proto_mono_ms() < deadline; e2e_sleep_ms(50)) {
        pthread_mutex_lock(&rs.lock);
        done = rs.second_seen && rs.others; /* the two messages may come in any order */
        pthread_mutex_unlock(&rs.lock);
        if (done)
            break;
    }
    lsmq_push_consumer_destroy(c);
    lsmq_producer_destroy(p);
    /* Checked with the consumer gone, so a failure leaves nothing running. */
    assert_int_equal(rs.first_seen, 1);
    assert_int_equal(rs.second_seen, 1);
    assert_int_equal(rs.second_reconsume, 1);
    /* Delivered from %RETRY%e2e-retry but shown with its own topic and id. */
    assert_string_equal(rs.second_topic, RETRY_TOPIC_NAME);
    assert_string_equal(rs.second_id, rs.first_id);
    assert_int_equal(rs.others, 1);
    pthread_mutex_destroy(&rs.lock);
}

/* ------------------------------------------------------------------ */
/* Broadcasting                                                        */
/* ------------------------------------------------------------------ */

#define BCAST_TOPIC "E2eBroadcast"

static void test_broadcast(void **state)
{
    static member mb[2];
    static tracker ta, tb;
    char *dir_a = test_tmpdir("bcast-a"), *dir_b = test_tmpdir("bcast-b");
    char path[1024], body[64];
    lsmq_producer *p;
    int s;

    e2e_topic_create_routed(&broker, BCAST_TOPIC, 4);
    tracker_init(&ta, 1, 300);
    tracker_init(&tb, 1, 300);
    member_reset(&mb[0], &ta, "bc-a");
    member_reset(&mb[1], &tb, "bc-b");
    start_member(&mb[0], "e2e-bcast", BCAST_TOPIC, LSMQ_BROADCASTING, dir_a);
    start_member(&mb[1], "e2e-bcast", BCAST_TOPIC, LSMQ_BROADCASTING, dir_b);
    p = new_producer("bcast-pg");
    for (s = 0; s < 200; s++) {
        snprintf(body, sizeof body, "p0 s%d", s);
        send_sync(p, BCAST_TOPIC, body);
    }
    /* Every member gets every message. */
    assert_true(tracker_wait(&ta, 200, 15000));
    assert_true(tracker_wait(&tb, 200, 15000));
    stop_member(&mb[0]);
    snprintf(path, sizeof path, "%s/e2e-bcast.offsets.json", dir_a);
    assert_int_equal(access(path, F_OK), 0);

    /* Member a restarts from its file: only the new messages. */
    for (; s < 300; s++) {
        snprintf(body, sizeof body, "p0 s%d", s);
        send_sync(p, BCAST_TOPIC, body);
    }
    member_reset(&mb[0], &ta, "bc-a");
    start_member(&mb[0], "e2e-bcast", BCAST_TOPIC, LSMQ_BROADCASTING, dir_a);
    assert_true(tracker_wait(&ta, 300, 15000));
    assert_true(tracker_wait(&tb, 300, 15000));
    e2e_sleep_ms(300);
    assert_int_equal(mb[0].received, 100);
    assert_int_equal(ta.dups, 0);
    assert_int_equal(tb.dups, 0);
    stop_member(&mb[0]);
    stop_member(&mb[1]);
    lsmq_producer_destroy(p);
    tracker_free(&ta);
    tracker_free(&tb);
    test_rmdir_free(dir_a);
    test_rmdir_free(dir_b);
}

/* ------------------------------------------------------------------ */
/* Pull consumer, batches, ordered sends                               */
/* ------------------------------------------------------------------ */

#define PULL_TOPIC "E2ePull"

static void test_pull_consumer(void **state)
{
    lsmq_pull_consumer *c = NULL;
    lsmq_producer *p;
    lsmq_queue *qs = NULL;
    lsmq_message **msgs;
    lsmq_out_message batch[10];
    lsmq_send_result res[10];
    char bodies[10][16];
    size_t n, nq, got = 0, i, compressed = 0;
    int64_t deadline, off;
    int64_t last[MAX_QUEUES];

    e2e_topic_create_routed(&broker, PULL_TOPIC, 2);
    p = new_producer("pull-pg");
    for (i = 0; i < 10; i++) {
        snprintf(bodies[i], sizeof bodies[i], "b%zu", i);
        batch[i] = out_msg(PULL_TOPIC, bodies[i]);
    }
    /* A batch lands on one queue with consecutive offsets. */
    assert_int_equal(lsmq_producer_send_batch(p, batch, 10, res), 0);
    for (i = 1; i < 10; i++) {
        assert_int_equal(res[i].queue_id, res[0].queue_id);
        assert_int_equal(res[i].queue_offset, res[0].queue_offset + (int64_t)i);
        assert_int_not_equal(strcmp(res[i].msg_id, res[0].msg_id), 0);
        assert_int_equal(strlen(res[i].offset_msg_id), 32);
    }
    /* Ordered sends: one key, one queue. */
    for (i = 0; i < 5; i++) {
        lsmq_send_result r;
        lsmq_out_message m = out_msg(PULL_TOPIC, "keyed");

        assert_int_equal(lsmq_producer_send_select(p, &m, lsmq_select_by_hash, "k", &r), 0);
        assert_int_equal(r.queue_id, lsmq_select_by_hash(2, &m, "k"));
    }
    /* A body over the threshold travels zlib-compressed and comes back whole. */
    {
        static char big[10000];
        lsmq_out_message m;

        for (i = 0; i < sizeof big; i++)
            big[i] = (char)('a' + i % 13);
        m = out_msg(PULL_TOPIC, "");
        m.body = big;
        m.body_len = sizeof big;
        assert_int_equal(lsmq_producer_send(p, &m, NULL), 0);
    }
    /* Oneway: no answer, but it arrives all the same. */
    {
        lsmq_out_message m = out_msg(PULL_TOPIC, "oneway");

        assert_int_equal(lsmq_producer_send_oneway(p, &m), 0);
    }

    assert_int_equal(lsmq_pull_consumer_create(broker.namesrv, "e2e-pull", &c), 0);
    assert_int_equal(lsmq_pull_consumer_set_consume_from(c, LSMQ_FROM_FIRST), 0);
    assert_int_equal(lsmq_pull_consumer_start(c), 0);
    assert_int_equal(lsmq_pull_consumer_queues(c, PULL_TOPIC, &qs, &nq), 0);
    assert_int_equal(nq, 2);
    assert_int_equal(lsmq_pull_consumer_assign(c, qs, nq), 0);
    for (i = 0; i < MAX_QUEUES; i++)
        last[i] = -1;
    for (deadline = proto_mono_ms() + 10000; got < 17 && proto_mono_ms() < deadline;) {
        assert_int_equal(lsmq_pull_consumer_poll(c, 500, 4, &msgs, &n), 0);
        assert_true(n <= 4);
        for (i = 0; i < n; i++) {
            int32_t q = lsmq_message_queue_id(msgs[i]);

            size_t len;
            const char *body = lsmq_message_body(msgs[i], &len);

            assert_true(lsmq_message_queue_offset(msgs[i]) > last[q]);
            last[q] = lsmq_message_queue_offset(msgs[i]);
            if (len == 10000) {
                assert_true(lsmq_message_sys_flag(msgs[i]) & 0x1); /* was compressed */
                for (size_t k = 0; k < len; k++)
                    assert_int_equal(body[k], (char)('a' + k % 13));
                compressed++;
            }
        }
        got += n;
        lsmq_messages_free(msgs, n);
    }
    assert_int_equal(got, 17);
    assert_int_equal(compressed, 1);
    assert_int_equal(lsmq_pull_consumer_commit(c), 0);
    for (i = 0; i < nq; i++) {
        assert_int_equal(lsmq_pull_consumer_committed(c, &qs[i], &off), 0);
        assert_int_equal(off, last[qs[i].queue_id] + 1);
    }
    /* Seek back to the start of one queue: its messages come again. */
    assert_int_equal(lsmq_pull_consumer_seek(c, &qs[0], LSMQ_OFFSET_FIRST), 0);
    got = 0;
    for (deadline = proto_mono_ms() + 10000; got < (size_t)(last[qs[0].queue_id] + 1) &&
                                      proto_mono_ms() < deadline;) {
        assert_int_equal(lsmq_pull_consumer_poll(c, 500, 100, &msgs, &n), 0);
        for (i = 0; i < n; i++)
            assert_int_equal(lsmq_message_queue_id(msgs[i]), qs[0].queue_id);
        got += n;
        lsmq_messages_free(msgs, n);
    }
    assert_int_equal(got, (size_t)(last[qs[0].queue_id] + 1));
    assert_int_equal(lsmq_pull_consumer_seek(c, &qs[0], 1), 0);
    {
        lsmq_queue other = qs[0];

        other.queue_id = 99;
        assert_int_equal(lsmq_pull_consumer_seek(c, &other, 0), LSMQ_ENOTFOUND);
    }
    free(qs);
    lsmq_pull_consumer_destroy(c);
    lsmq_producer_destroy(p);
}

#define TAG_TOPIC "E2eTags"

static int tag_listener(const lsmq_message *m, void *arg)
{
    member *mb = arg;

    pthread_mutex_lock(&mb->t->lock);
    mb->received++;
    if (!lsmq_message_tags(m) || strcmp(lsmq_message_tags(m), "TagB") == 0)
        mb->t->foreign++; /* not subscribed: must never arrive */
    else
        mb->t->distinct++;
    pthread_mutex_unlock(&mb->t->lock);
    return LSMQ_CONSUME_SUCCESS;
}

static void test_tag_filter(void **state)
{
    static tracker t;
    static member mb;
    lsmq_push_consumer *c = NULL;
    lsmq_producer *p;
    const char *tags[] = {"TagA", "TagB", "TagC", NULL};

    e2e_topic_create_routed(&broker, TAG_TOPIC, 2);
    tracker_init(&t, 1, 1);
    member_reset(&mb, &t, "tags");
    assert_int_equal(lsmq_push_consumer_create(broker.namesrv, "e2e-tags", &c), 0);
    assert_int_equal(lsmq_push_consumer_subscribe(c, TAG_TOPIC, "TagA || TagC"), 0);
    assert_int_equal(lsmq_push_consumer_set_consume_from(c, LSMQ_FROM_FIRST), 0);
    assert_int_equal(lsmq_push_consumer_set_listener(c, tag_listener, &mb), 0);
    assert_int_equal(lsmq_push_consumer_start(c), 0);
    p = new_producer("tags-pg");
    for (int i = 0; i < 40; i++) {
        lsmq_out_message m = out_msg(TAG_TOPIC, "tagged");

        m.tags = tags[i % 4];
        assert_int_equal(lsmq_producer_send(p, &m, NULL), 0);
    }
    /* 10 each of TagA and TagC; TagB and untagged ones filtered out. */
    assert_true(tracker_wait(&t, 20, 15000));
    e2e_sleep_ms(300);
    lsmq_push_consumer_destroy(c);
    lsmq_producer_destroy(p);
    assert_int_equal(t.distinct, 20);
    assert_int_equal(t.foreign, 0);
    tracker_free(&t);
}

static void test_errors(void **state)
{
    lsmq_producer *p = new_producer("err-pg");
    lsmq_out_message m = out_msg("bad topic!", "x");
    lsmq_send_result r;
    char text[512];

    assert_int_equal(lsmq_producer_send(p, &m, &r), LSMQ_EINVAL);
    assert_int_equal(lsmq_producer_last_error(p, text, sizeof text), -1);
    assert_non_null(strstr(text, "topic"));
    m = out_msg("E2eErr", "");
    assert_int_equal(lsmq_producer_send(p, &m, &r), LSMQ_EINVAL);
    lsmq_producer_destroy(p);

    /* Nothing listens there: a transport error, quickly. */
    assert_int_equal(lsmq_producer_create("127.0.0.1:1", "err-pg", &p), 0);
    assert_int_equal(lsmq_producer_set_send_timeout(p, 1000), 0);
    assert_int_equal(lsmq_producer_start(p), 0);
    m = out_msg("E2eErr", "x");
    assert_true(lsmq_producer_send(p, &m, &r) < 0);
    lsmq_producer_destroy(p);
    assert_int_equal(lsmq_producer_create("no-port", "g", &p), LSMQ_EINVAL);
}

/* ------------------------------------------------------------------ */

static int setup(void **state)
{
    return e2e_broker_start(&broker, "e2e-client", NULL);
}

static int teardown(void **state)
{
    return e2e_broker_stop(&broker, 30000) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_pull_consumer),
        cmocka_unit_test(test_reconsume_later),
        cmocka_unit_test(test_tag_filter),
        cmocka_unit_test(test_offset_resume),
        cmocka_unit_test(test_broadcast),
        cmocka_unit_test(test_rebalance_join_leave),
        cmocka_unit_test(test_bulk_100k),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
