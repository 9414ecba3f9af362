/*
 * test_e2e_client_ha: liblsmq's consumers against a broker group of real
 * processes (a standalone mqnamesrv, a SYNC_MASTER and one replica) that
 * loses its master and gets it back.
 *
 *  - a push consumer reads from the master; the master is killed (-9)
 *    with part of the topic still unread, and the consumer reads the rest
 *    from the replica (the brokers' get counters say who served what) and
 *    commits its offsets there; the master comes back, holds the offsets
 *    the consumer reached, and the consumer moves back to it: new messages
 *    are then served by the master alone;
 *  - a pull (assign) consumer the same, with commit() and committed()
 *    answered by the replica while the master is away.
 *
 * Part of the topic is still unread on the broker when the master dies
 * because a consumer stops pulling a queue once about 1000 of its messages
 * wait in memory (flow control), and nothing is consumed until then.
 *
 * Every broker exits 0 on SIGTERM (sanitizers clean).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "clock.h"
#include "e2e_msg.h"
#include "e2e_procs.h"
#include "e2e_repl.h"
#include "e2e_reply.h"
#include "lsmq.h"
#include "testsupport.h"
#include "wire.h"

#define QUEUES 2
#define MESSAGES 2800        /* 1400 a queue: more than the ~1000 a consumer holds */
#define HELD_MIN 1800        /* what the consumers hold before the kill, at least */
#define ROUND 20             /* messages per round once the master is back */
#define MAX_OFFSETS 4096
#define WAIT_MS 60000

static wire_proc namesrv;
static char namesrv_addr[32];
static char arg_ns[64], arg_ha_master[64];
static const char *master_args[] = {"--brokerRole=SYNC_MASTER", arg_ns, NULL};
static const char *replica_args[] = {"--brokerRole=SLAVE", "--brokerId=1", arg_ns, arg_ha_master,
                                     NULL};

/* ---- The broker group ---------------------------------------------------- */

typedef struct group {
    e2e_broker master, replica;
    lsmq_producer *producer;
    const char *topic;
    int64_t end[QUEUES];       /* each queue's max offset: what was sent */
} group;

static void send_messages(group *g, long n);
static void seen_reset(void);

/*
 * A name server of its own, a master and its replica streaming, `topic`
 * created with QUEUES queues, a producer, and MESSAGES messages sent.
 */
static void group_start(group *g, const char *tag, const char *topic)
{
    char tag_m[64], tag_r[64];
    snprintf(tag_m, sizeof tag_m, "%s-m", tag);
    snprintf(tag_r, sizeof tag_r, "%s-r", tag);
    memset(g, 0, sizeof *g);
    g->topic = topic;
    assert_int_equal(e2e_namesrv_start(&namesrv, 0, NULL), 0);
    snprintf(namesrv_addr, sizeof namesrv_addr, "127.0.0.1:%d", namesrv.port);
    snprintf(arg_ns, sizeof arg_ns, "--namesrvAddr=%s", namesrv_addr);
    assert_int_equal(e2e_broker_start(&g->master, tag_m, master_args), 0);
    snprintf(arg_ha_master, sizeof arg_ha_master, "--haMasterAddress=127.0.0.1:%d",
             g->master.ha_port);
    assert_int_equal(e2e_broker_start(&g->replica, tag_r, replica_args), 0);
    e2e_reply r = e2e_call_port(g->master.proc.port, e2e_create_topic(topic, QUEUES, QUEUES, 6),
                                NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);
    assert_true(e2e_wait_route(namesrv.port, topic, RS_SUCCESS, 10000) >= 0);
    assert_true(e2e_wait_caught_up(g->master.proc.port, g->replica.proc.port, WAIT_MS));
    assert_int_equal(lsmq_producer_create(namesrv_addr, "client-ha-pg", &g->producer), 0);
    assert_int_equal(lsmq_producer_set_send_timeout(g->producer, 10000), 0);
    assert_int_equal(lsmq_producer_start(g->producer), 0);
    send_messages(g, MESSAGES);
    seen_reset();
}

/* The replica has everything, then every process exits 0 on SIGTERM. */
static void group_stop(group *g)
{
    lsmq_producer_destroy(g->producer);
    assert_true(e2e_wait_caught_up(g->master.proc.port, g->replica.proc.port, WAIT_MS));
    assert_int_equal(e2e_broker_stop(&g->replica, 30000), 0);
    assert_int_equal(e2e_broker_stop(&g->master, 30000), 0);
    assert_int_equal(wire_stop(&namesrv, 30000), 0);
}

/* Messages a broker's pulls handed over. */
static uint64_t gets(const e2e_broker *b)
{
    return e2e_gets_total(b->proc.port);
}

/* Wait until a broker's get counter has not moved for a while: the consumer holds all it will. */
static uint64_t gets_settled(const e2e_broker *b, uint64_t at_least)
{
    uint64_t last = UINT64_MAX, now = 0;
    for (int waited = 0; waited < WAIT_MS; waited += 500) {
        now = gets(b);
        if (now == last && now >= at_least)
            return now;
        last = now;
        e2e_sleep_ms(500);
    }
    fail_msg("the get counter did not settle at %llu or more (%llu)", (unsigned long long)at_least,
             (unsigned long long)now);
    return 0;
}

/* Both queues' committed offsets of group_name on a broker reach g->end. */
static bool offsets_at_end(const group *g, const e2e_broker *b, const char *group_name)
{
    for (int q = 0; q < QUEUES; q++)
        if (e2e_query_offset(b->proc.port, group_name, g->topic, q) != g->end[q])
            return false;
    return true;
}

static bool wait_offsets_at_end(const group *g, const e2e_broker *b, const char *group_name)
{
    for (int waited = 0; waited < WAIT_MS; waited += 200) {
        if (offsets_at_end(g, b, group_name))
            return true;
        e2e_sleep_ms(200);
    }
    return false;
}

/* ---- Sending ------------------------------------------------------------- */

typedef struct sends {
    atomic_long done, ok;
} sends;

static void sent_cb(int rc, const lsmq_send_result *res, void *arg)
{
    sends *s = arg;
    if (rc == 0 && res->status == LSMQ_SEND_OK)
        atomic_fetch_add(&s->ok, 1);
    atomic_fetch_add(&s->done, 1);
}

/* Messages the topic's queues hold: the sum of their ends. */
static int64_t stored(const group *g)
{
    int64_t n = 0;
    for (int q = 0; q < QUEUES; q++)
        n += g->end[q];
    return n;
}

/*
 * n messages acknowledged SEND_OK, up to 256 in flight (those that fail on
 * a loaded machine are sent again), and all of them on the replica; then
 * g->end is the queues' ends.
 */
static void send_messages(group *g, long n)
{
    sends s = {0};
    for (int attempt = 0; atomic_load(&s.ok) < n; attempt++) {
        long want = n - atomic_load(&s.ok), base = atomic_load(&s.done);
        if (attempt == 5)
            fail_msg("%ld of %ld sends acknowledged", n - want, n);
        for (long i = 0; i < want; i++) {
            while (base + i - atomic_load(&s.done) >= 256)
                e2e_sleep_ms(1);
            char body[64];
            snprintf(body, sizeof body, "ha %ld.%d", i, attempt);
            lsmq_out_message m;
            memset(&m, 0, sizeof m);
            m.topic = g->topic;
            m.body = body;
            m.body_len = strlen(body);
            if (lsmq_producer_send_async(g->producer, &m, sent_cb, &s) != 0)
                atomic_fetch_add(&s.done, 1);
        }
        for (int waited = 0; waited < WAIT_MS && atomic_load(&s.done) < base + want; waited += 10)
            e2e_sleep_ms(10);
    }
    assert_true(e2e_wait_caught_up(g->master.proc.port, g->replica.proc.port, WAIT_MS));
    for (int q = 0; q < QUEUES; q++) {
        g->end[q] = e2e_max_offset(g->master.proc.port, g->topic, q);
        assert_true(g->end[q] < MAX_OFFSETS);
    }
}

/* A round of sends once the master is back; it may take a moment to accept them. */
static void send_round(group *g)
{
    for (int waited = 0; waited < WAIT_MS; waited += 500) {
        lsmq_out_message m;
        lsmq_send_result res;
        memset(&m, 0, sizeof m);
        m.topic = g->topic;
        m.body = "probe";
        m.body_len = 5;
        if (lsmq_producer_send(g->producer, &m, &res) == 0 && res.status == LSMQ_SEND_OK) {
            send_messages(g, ROUND - 1);
            return;
        }
        e2e_sleep_ms(500);
    }
    fail_msg("the master takes no sends");
}

/* ---- What the consumers got ---------------------------------------------- */

static atomic_int seen[QUEUES][MAX_OFFSETS];

static void seen_reset(void)
{
    for (int q = 0; q < QUEUES; q++)
        for (int i = 0; i < MAX_OFFSETS; i++)
            atomic_store(&seen[q][i], 0);
}

static void seen_add(const lsmq_message *m, const char *topic)
{
    int32_t q = lsmq_message_queue_id(m);
    int64_t off = lsmq_message_queue_offset(m);
    if (strcmp(lsmq_message_topic(m), topic) != 0)
        return;
    assert_true(q >= 0 && q < QUEUES && off >= 0 && off < MAX_OFFSETS);
    atomic_fetch_add(&seen[q][off], 1);
}

/* Every message below g->end seen; none more than max_times when max_times > 0. */
static bool seen_all(const group *g, int max_times)
{
    for (int q = 0; q < QUEUES; q++) {
        for (int64_t i = 0; i < g->end[q]; i++) {
            int n = atomic_load(&seen[q][i]);
            if (n == 0)
                return false;
            if (max_times > 0 && n > max_times)
                fail_msg("queue %d offset %lld consumed %d times", q, (long long)i, n);
        }
    }
    return true;
}

/* Listeners wait here until the master is gone, so the consumer holds what it pulled. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open;

static void gate_set(bool open)
{
    pthread_mutex_lock(&gate_lock);
    gate_open = open;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_lock);
}

/* Drives a pull consumer (NULL for a push consumer, which needs no help). */
typedef void poll_fn(const group *g);

/* Wait until every message sent was consumed, at most max_times each (0: any). */
static void wait_consumed(const group *g, poll_fn *poll, int max_times, const char *what)
{
    for (int64_t t0 = proto_mono_ms(); !seen_all(g, max_times);) {
        if (proto_mono_ms() - t0 > WAIT_MS)
            fail_msg("%s was not consumed", what);
        if (poll)
            poll(g);
        else
            e2e_sleep_ms(50);
    }
}

/*
 * The consumer holds what it pulled from the master (from_master
 * messages); kill the master (-9), let it consume, and check that the rest
 * of the topic came from the replica.
 */
static void kill_master_read_replica(group *g, uint64_t from_master, poll_fn *poll,
                                     int max_times)
{
    assert_true(from_master < (uint64_t)stored(g));
    assert_int_equal(gets(&g->replica), 0); /* so far, the master served everything */
    wire_kill9(&g->master.proc);
    gate_set(true);
    wait_consumed(g, poll, max_times, "the rest of the topic, from the replica,");
    uint64_t from_replica = gets(&g->replica);
    fprintf(stderr, "%llu messages came from the master, %llu from the replica\n",
            (unsigned long long)from_master, (unsigned long long)from_replica);
    assert_true(from_replica >= (uint64_t)stored(g) - from_master);
}

/*
 * Rounds of ROUND messages once the master is back, each consumed, until
 * one round is served by the master alone: the consumer has moved back to
 * it. (A pull parked on the replica meanwhile may still serve a round.)
 */
static void expect_back_on_master(group *g, poll_fn *poll, int max_times)
{
    for (int round = 0; round < 12; round++) {
        uint64_t m0 = gets(&g->master), r0 = gets(&g->replica);
        send_round(g);
        wait_consumed(g, poll, max_times, "a round");
        uint64_t m1 = gets(&g->master), r1 = gets(&g->replica);
        fprintf(stderr, "round %d: master served %llu, replica %llu\n", round,
                (unsigned long long)(m1 - m0), (unsigned long long)(r1 - r0));
        if (r1 == r0 && m1 >= m0 + ROUND)
            return;
    }
    fail_msg("the consumer did not move back to the master");
}

/* ---- Push consumer -------------------------------------------------------- */

static int push_listener(const lsmq_message *m, void *arg)
{
    /* A failed test must not leave it waiting forever. */
    struct timespec until = proto_deadline_after(CLOCK_REALTIME, WAIT_MS);
    pthread_mutex_lock(&gate_lock);
    while (!gate_open && pthread_cond_timedwait(&gate_cv, &gate_lock, &until) == 0)
        ;
    pthread_mutex_unlock(&gate_lock);
    seen_add(m, arg);
    return LSMQ_CONSUME_SUCCESS;
}

static void test_push_consumer_follows_replica(void **state)
{
    const char *cg = "client-ha-push-cg";
    group g;
    group_start(&g, "e2e-cha-push", "HaPushT");
    gate_set(false);

    lsmq_push_consumer *c;
    assert_int_equal(lsmq_push_consumer_create(namesrv_addr, cg, &c), 0);
    assert_int_equal(lsmq_push_consumer_subscribe(c, g.topic, "*"), 0);
    assert_int_equal(lsmq_push_consumer_set_listener(c, push_listener, (void *)g.topic), 0);
    assert_int_equal(lsmq_push_consumer_set_consume_from(c, LSMQ_FROM_FIRST), 0);
    assert_int_equal(lsmq_push_consumer_set_commit_interval(c, 500), 0);
    assert_int_equal(lsmq_push_consumer_start(c), 0);

    /* It reads from the master, and holds most of the topic unconsumed. */
    kill_master_read_replica(&g, gets_settled(&g.master, HELD_MIN), NULL, 0);
    /* Its commits reach the replica, which answers for them. */
    assert_true(wait_offsets_at_end(&g, &g.replica, cg));

    /* The master is back: it holds those offsets, and the consumer reads from it again. */
    assert_int_equal(e2e_broker_restart(&g.master, master_args), 0);
    assert_true(e2e_wait_caught_up(g.master.proc.port, g.replica.proc.port, WAIT_MS));
    assert_true(wait_offsets_at_end(&g, &g.master, cg));
    expect_back_on_master(&g, NULL, 0);
    assert_true(wait_offsets_at_end(&g, &g.master, cg));

    lsmq_push_consumer_destroy(c);
    group_stop(&g);
}

/* ---- Pull consumer -------------------------------------------------------- */

static lsmq_pull_consumer *puller;

/* Take what the pull consumer has (a second at most); each message once. */
static void poll_some(const group *g)
{
    lsmq_message **msgs;
    size_t n;
    assert_int_equal(lsmq_pull_consumer_poll(puller, 1000, 256, &msgs, &n), 0);
    for (size_t i = 0; i < n; i++)
        seen_add(msgs[i], g->topic);
    lsmq_messages_free(msgs, n);
}

/* commit() until it succeeds and `b` holds every queue at g->end. */
static bool commit_reaches(const group *g, const e2e_broker *b, const char *cg)
{
    for (int waited = 0; waited < WAIT_MS; waited += 300) {
        if (lsmq_pull_consumer_commit(puller) == 0 && offsets_at_end(g, b, cg))
            return true;
        e2e_sleep_ms(300);
    }
    return false;
}

/* committed() of every queue is its end (asked of whichever broker the consumer picks). */
static void expect_committed_at_end(const group *g, const lsmq_queue *qs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int64_t off = -1;
        assert_int_equal(lsmq_pull_consumer_committed(puller, &qs[i], &off), 0);
        assert_int_equal(off, g->end[qs[i].queue_id]);
    }
}

static void test_pull_consumer_follows_replica(void **state)
{
    const char *cg = "client-ha-pull-cg";
    group g;
    group_start(&g, "e2e-cha-pull", "HaPullT");

    assert_int_equal(lsmq_pull_consumer_create(namesrv_addr, cg, &puller), 0);
    assert_int_equal(lsmq_pull_consumer_set_consume_from(puller, LSMQ_FROM_FIRST), 0);
    assert_int_equal(lsmq_pull_consumer_start(puller), 0);
    lsmq_queue *qs;
    size_t nq;
    assert_int_equal(lsmq_pull_consumer_queues(puller, g.topic, &qs, &nq), 0);
    assert_int_equal(nq, QUEUES);
    assert_int_equal(lsmq_pull_consumer_assign(puller, qs, nq), 0);

    /* It buffers from the master; a first commit goes there too. */
    gets_settled(&g.master, HELD_MIN);
    lsmq_message **msgs;
    size_t n;
    assert_int_equal(lsmq_pull_consumer_poll(puller, 1000, 100, &msgs, &n), 0);
    assert_int_equal(n, 100);
    for (size_t i = 0; i < n; i++)
        seen_add(msgs[i], g.topic);
    lsmq_messages_free(msgs, n);
    assert_int_equal(lsmq_pull_consumer_commit(puller), 0);
    int64_t committed = 0;
    for (int q = 0; q < QUEUES; q++)
        committed += e2e_query_offset(g.master.proc.port, cg, g.topic, q);
    assert_int_equal(committed, 100);

    /* Room in its buffers again: it pulls a little more from the master first. */
    kill_master_read_replica(&g, gets_settled(&g.master, HELD_MIN), poll_some, 1);
    /* Commits and committed() go to the replica while the master is away. */
    assert_true(commit_reaches(&g, &g.replica, cg));
    expect_committed_at_end(&g, qs, nq);

    /* The master is back: it holds those positions, and the consumer reads from it again. */
    assert_int_equal(e2e_broker_restart(&g.master, master_args), 0);
    assert_true(e2e_wait_caught_up(g.master.proc.port, g.replica.proc.port, WAIT_MS));
    assert_true(commit_reaches(&g, &g.master, cg));
    expect_back_on_master(&g, poll_some, 1);
    assert_true(commit_reaches(&g, &g.master, cg));
    expect_committed_at_end(&g, qs, nq);

    free(qs);
    lsmq_pull_consumer_destroy(puller);
    puller = NULL;
    group_stop(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_consumer_follows_replica),
        cmocka_unit_test(test_pull_consumer_follows_replica),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
