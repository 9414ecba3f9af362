/*
 * test_e2e_repl_crash: a broker group of real processes (a standalone
 * mqnamesrv, a master, replicas), crashed on purpose.
 *
 *  - 100,000 messages through liblsmq to an ASYNC_MASTER with two
 *    replicas, with a subscription group and consumer offsets; then every
 *    replica's store holds exactly the master's (every family, key by key:
 *    messages, index entries, topics, groups, offsets, high-water marks).
 *  - kill -9 a replica mid-stream, start it again on its store: it catches
 *    up with no gap and no double apply (stores identical again).
 *  - kill -9 a new replica while it fetches its first checkpoint (about
 *    64 MiB), start it again: it fetches again and follows.
 *  - kill -9 the SYNC_MASTER under load from liblsmq producers: every
 *    message acknowledged SEND_OK is on the replica, which a consumer
 *    (pulls that go on through the crash) reads to the end; offsets
 *    committed to the replica meanwhile reach the master when it is back.
 *  - scale-out: two broker groups (broker-a, broker-b, a master and a
 *    replica each) in one cluster; a topic created on both masters (as
 *    updateTopic -c does) takes sends on both; when broker-a's master is
 *    killed, broker-b takes every send, and broker-a's replica keeps
 *    serving what broker-a stored.
 *
 * Every broker that is not killed exits 0 on SIGTERM (sanitizers clean).
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
#include <unistd.h>

#include <cmocka.h>

#include "alloc.h"
#include "clock.h"
#include "e2e_msg.h"
#include "e2e_procs.h"
#include "e2e_repl.h"
#include "e2e_reply.h"
#include "lsmq.h"
#include "testsupport.h"
#include "wire.h"

#define RC_UPDATE_SUBSCRIPTION_GROUP 200
#define QUEUES 4
#define WAIT_MS 60000
#define BULK_MESSAGES 100000
#define BULK_IN_FLIGHT 256
#define PRODUCER_THREADS 3
#define BODY_MAX 256

static wire_proc namesrv;
static const char *group_name = "broker-a"; /* brokerName of the nodes node_start makes */
static char namesrv_addr[32];
static char arg_ns[64];

/* ---- A broker group ----------------------------------------------------- */

typedef struct node {
    e2e_broker b;
    int ha_port;
    char args[7][96];
    const char *argv[8];
} node;

/* Start a broker of group_name: the master (id 0) or a replica of `master`. */
static void node_start(node *n, const char *tag, const char *role, int id, const node *master,
                       bool restart)
{
    if (!restart) {
        memset(n, 0, sizeof *n);
        n->ha_port = wire_free_port();
        int i = 0;
        snprintf(n->args[i++], sizeof n->args[0], "--brokerRole=%s", role);
        snprintf(n->args[i++], sizeof n->args[0], "--brokerId=%d", id);
        snprintf(n->args[i++], sizeof n->args[0], "--haListenPort=%d", n->ha_port);
        snprintf(n->args[i++], sizeof n->args[0], "%s", arg_ns);
        snprintf(n->args[i++], sizeof n->args[0], "--brokerName=%s", group_name);
        if (master)
            snprintf(n->args[i++], sizeof n->args[0], "--haMasterAddress=127.0.0.1:%d",
                     master->ha_port);
        for (int k = 0; k < i; k++)
            n->argv[k] = n->args[k];
        n->argv[i] = NULL;
        assert_int_equal(e2e_broker_start(&n->b, tag, n->argv), 0);
    } else {
        assert_int_equal(e2e_broker_restart(&n->b, n->argv), 0);
    }
}

/* The replica has applied everything the master committed and streams. */
static bool wait_caught_up(const node *master, const node *replica)
{
    return e2e_wait_caught_up(master->b.proc.port, replica->b.proc.port, WAIT_MS);
}

/* Every family of the two stores, key by key (both brokers may run). */
static size_t store_diff(const node *a, const node *b)
{
    return test_store_dir_diff(a->b.store_dir, b->b.store_dir, 10);
}

static void create_topic(const node *master, const char *topic)
{
    e2e_reply r = e2e_call_port(master->b.proc.port, e2e_create_topic(topic, QUEUES, QUEUES, 6),
                            NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);
    assert_true(e2e_wait_route(namesrv.port, topic, RS_SUCCESS, 10000) >= 0);
}

/* ---- Load --------------------------------------------------------------- */

typedef struct ack {
    int32_t queue;
    int64_t offset;
    uint64_t sum;
} ack;

typedef struct load {
    lsmq_producer *producer;
    const char *topic;
    atomic_int stop;
    atomic_long sent_ok;
    pthread_t th[PRODUCER_THREADS];
    ack *acks[PRODUCER_THREADS];
    size_t n_acks[PRODUCER_THREADS], cap[PRODUCER_THREADS];
    int ids[PRODUCER_THREADS];
} load;

static load the_load;

static uint64_t body_sum(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
    return h;
}

/* Synchronous sends until stopped; the SEND_OK ones are remembered. */
static void *producer_main(void *arg)
{
    int id = *(int *)arg;
    load *l = &the_load;
    char body[BODY_MAX];
    for (long seq = 0; !atomic_load(&l->stop); seq++) {
        int len = snprintf(body, sizeof body, "crash t%d s%ld %*s", id, seq,
                           (int)(seq % 100), "");
        lsmq_out_message m;
        lsmq_send_result res;
        memset(&m, 0, sizeof m);
        m.topic = l->topic;
        m.body = body;
        m.body_len = (size_t)len;
        if (lsmq_producer_send(l->producer, &m, &res) == 0 && res.status == LSMQ_SEND_OK) {
            if (l->n_acks[id] == l->cap[id]) {
                l->cap[id] = l->cap[id] ? l->cap[id] * 2 : 4096;
                l->acks[id] = proto_xrealloc(l->acks[id], l->cap[id] * sizeof(ack));
            }
            l->acks[id][l->n_acks[id]++] =
                (ack){res.queue_id, res.queue_offset, body_sum(body, (size_t)len)};
            atomic_fetch_add(&l->sent_ok, 1);
        } else {
            e2e_sleep_ms(20); /* the master is down: don't spin */
        }
    }
    return NULL;
}

static void load_start(const char *topic)
{
    load *l = &the_load;
    memset(l, 0, sizeof *l);
    l->topic = topic;
    assert_int_equal(lsmq_producer_create(namesrv_addr, "repl-crash-pg", &l->producer), 0);
    assert_int_equal(lsmq_producer_set_send_timeout(l->producer, 3000), 0);
    assert_int_equal(lsmq_producer_set_compress_threshold(l->producer, 0), 0);
    assert_int_equal(lsmq_producer_start(l->producer), 0);
    for (int i = 0; i < PRODUCER_THREADS; i++) {
        l->ids[i] = i;
        assert_int_equal(pthread_create(&l->th[i], NULL, producer_main, &l->ids[i]), 0);
    }
}

static void load_stop(void)
{
    load *l = &the_load;
    atomic_store(&l->stop, 1);
    for (int i = 0; i < PRODUCER_THREADS; i++)
        pthread_join(l->th[i], NULL);
    lsmq_producer_destroy(l->producer);
    l->producer = NULL;
}

static void load_free(void)
{
    for (int i = 0; i < PRODUCER_THREADS; i++)
        free(the_load.acks[i]);
}

static void wait_sent(long at_least)
{
    for (int waited = 0; waited < WAIT_MS && atomic_load(&the_load.sent_ok) < at_least;
         waited += 10)
        e2e_sleep_ms(10);
    assert_true(atomic_load(&the_load.sent_ok) >= at_least);
}

/* ---- Bulk: 100,000 messages, stores identical ---------------------------- */

typedef struct bulk_state {
    atomic_long done, ok;
} bulk_state;

static void bulk_cb(int rc, const lsmq_send_result *res, void *arg)
{
    bulk_state *s = arg;
    if (rc == 0)
        atomic_fetch_add(&s->ok, 1);
    atomic_fetch_add(&s->done, 1);
}

static void test_bulk_replicas_identical(void **state)
{
    node m, r1, r2;
    node_start(&m, "e2e-rc-bulk-m", "ASYNC_MASTER", 0, NULL, false);
    node_start(&r1, "e2e-rc-bulk-r1", "SLAVE", 1, &m, false);
    node_start(&r2, "e2e-rc-bulk-r2", "SLAVE", 2, NULL, false); /* asks the name server */
    create_topic(&m, "BulkT");
    const char group[] = "{\"groupName\":\"bulk-cg\",\"retryMaxTimes\":3}";
    e2e_reply r = e2e_call_port(m.b.proc.port, proto_cmd_request(RC_UPDATE_SUBSCRIPTION_GROUP),
                            group, strlen(group));
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);

    lsmq_producer *p;
    assert_int_equal(lsmq_producer_create(namesrv_addr, "repl-bulk-pg", &p), 0);
    assert_int_equal(lsmq_producer_start(p), 0);
    bulk_state bs = {0};
    for (long i = 0; i < BULK_MESSAGES; i++) {
        while (i - atomic_load(&bs.done) >= BULK_IN_FLIGHT)
            e2e_sleep_ms(1);
        char body[64], keys[32];
        snprintf(body, sizeof body, "bulk message %ld", i);
        snprintf(keys, sizeof keys, "k%ld", i % 1000);
        lsmq_out_message msg;
        memset(&msg, 0, sizeof msg);
        msg.topic = "BulkT";
        msg.keys = keys;
        msg.body = body;
        msg.body_len = strlen(body);
        if (lsmq_producer_send_async(p, &msg, bulk_cb, &bs) != 0)
            atomic_fetch_add(&bs.done, 1);
    }
    for (int waited = 0; waited < WAIT_MS && atomic_load(&bs.done) < BULK_MESSAGES; waited += 10)
        e2e_sleep_ms(10);
    lsmq_producer_destroy(p);
    assert_int_equal(atomic_load(&bs.ok), BULK_MESSAGES);
    for (int q = 0; q < QUEUES; q++)
        e2e_commit_offset(m.b.proc.port, "bulk-cg", "BulkT", q, 1000 + q);

    assert_true(wait_caught_up(&m, &r1));
    assert_true(wait_caught_up(&m, &r2));
    assert_int_equal(store_diff(&m, &r1), 0);
    assert_int_equal(store_diff(&m, &r2), 0);
    assert_int_equal(e2e_query_offset(r2.b.proc.port, "bulk-cg", "BulkT", 3), 1003);

    assert_int_equal(e2e_broker_stop(&r1.b, 30000), 0);
    assert_int_equal(e2e_broker_stop(&r2.b, 30000), 0);
    assert_int_equal(e2e_broker_stop(&m.b, 30000), 0);
}

/* ---- kill -9 a replica mid-stream ---------------------------------------- */

/* A master (role) and one replica, streaming, with `topic` created and routed. */
static void pair_start(node *m, node *r, const char *tag_m, const char *tag_r, const char *role,
                       const char *topic)
{
    node_start(m, tag_m, role, 0, NULL, false);
    node_start(r, tag_r, "SLAVE", 1, m, false);
    create_topic(m, topic);
    assert_true(wait_caught_up(m, r));
}

/* Both stores identical, then both brokers exit 0 on SIGTERM. */
static void pair_finish(node *m, node *r)
{
    assert_true(wait_caught_up(m, r));
    assert_int_equal(store_diff(m, r), 0);
    assert_int_equal(e2e_broker_stop(&r->b, 30000), 0);
    assert_int_equal(e2e_broker_stop(&m->b, 30000), 0);
}

static void test_kill_replica_mid_stream(void **state)
{
    node m, r1;
    pair_start(&m, &r1, "e2e-rc-stream-m", "e2e-rc-stream-r1", "ASYNC_MASTER", "StreamT");
    load_start("StreamT");
    for (int round = 0; round < 3; round++) {
        wait_sent(atomic_load(&the_load.sent_ok) + 500);
        wire_kill9(&r1.b.proc);
        wait_sent(atomic_load(&the_load.sent_ok) + 500); /* the master goes on alone */
        node_start(&r1, NULL, NULL, 0, NULL, true);
    }
    wait_sent(atomic_load(&the_load.sent_ok) + 500);
    load_stop();
    load_free();
    pair_finish(&m, &r1);
}

/* ---- kill -9 a replica mid-checkpoint ------------------------------------ */

static void test_kill_replica_mid_checkpoint(void **state)
{
    node m, r1;
    node_start(&m, "e2e-rc-cp-m", "ASYNC_MASTER", 0, NULL, false);
    create_topic(&m, "BigT");
    /* About 64 MiB of bodies that do not compress. */
    int fd = wire_connect(m.b.proc.port, 20000);
    assert_true(fd >= 0);
    static char body[64 << 10];
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 1024; i++) {
        for (size_t k = 0; k < sizeof body; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            body[k] = (char)('!' + x % 90);
        }
        e2e_reply r = e2e_call(fd, e2e_send_v2("BigT", i % QUEUES, NULL), body, sizeof body);
        e2e_expect_code(&r, RS_SUCCESS, NULL);
        e2e_reply_free(&r);
    }
    close(fd);

    node_start(&r1, "e2e-rc-cp-r1", "SLAVE", 1, &m, false);
    char ha_dir[1100];
    snprintf(ha_dir, sizeof ha_dir, "%s/ha", r1.b.store_dir);
    uint64_t seen = 0;
    for (int waited = 0; waited < WAIT_MS && (seen = test_dir_bytes(ha_dir, 2)) < (8u << 20);
         waited += 1)
        e2e_sleep_ms(1);
    wire_kill9(&r1.b.proc);
    assert_true(seen >= (8u << 20)); /* killed while the checkpoint came in */
    node_start(&r1, NULL, NULL, 0, NULL, true);
    pair_finish(&m, &r1);
}

/* ---- kill -9 the master under SYNC_MASTER load --------------------------- */

/* Pull one queue of the replica from 0 to its end, as a consumer would. */
static size_t pull_all(int port, const char *topic, int queue, uint64_t **sums)
{
    int fd = wire_connect(port, 10000);
    assert_true(fd >= 0);
    size_t n = 0, cap = 0;
    int64_t offset = 0;
    for (;;) {
        e2e_reply r = e2e_call(fd, e2e_pull("repl-crash-cg", topic, queue, offset, 32, 0, 0,
                                            NULL),
                               NULL, 0);
        if (r.cmd->code != RS_SUCCESS) {
            e2e_reply_free(&r);
            break;
        }
        proto_record recs[32];
        size_t k = e2e_records(r.cmd->body, r.cmd->body_len, recs, 32);
        for (size_t i = 0; i < k; i++) {
            if ((uint64_t)recs[i].queue_offset >= cap) {
                size_t ncap = cap ? cap * 2 : 1024;
                while (ncap <= (uint64_t)recs[i].queue_offset)
                    ncap *= 2;
                *sums = proto_xrealloc(*sums, ncap * sizeof **sums);
                memset(*sums + cap, 0, (ncap - cap) * sizeof **sums);
                cap = ncap;
            }
            (*sums)[recs[i].queue_offset] = body_sum((const char *)recs[i].body, recs[i].body_len);
            n = (size_t)recs[i].queue_offset + 1;
        }
        offset = e2e_i64(r.cmd, "nextBeginOffset");
        e2e_reply_free(&r);
    }
    close(fd);
    return n;
}

static void test_kill_master_under_sync_load(void **state)
{
    node m, r1;
    pair_start(&m, &r1, "e2e-rc-sync-m", "e2e-rc-sync-r1", "SYNC_MASTER", "SyncT");
    load_start("SyncT");
    wait_sent(2000);
    wire_kill9(&m.b.proc);
    e2e_sleep_ms(500);
    load_stop();

    /* Every message acknowledged SEND_OK is on the replica, with its body. */
    size_t lost = 0, acked = 0;
    for (int q = 0; q < QUEUES; q++) {
        uint64_t *sums = NULL;
        size_t n = pull_all(r1.b.proc.port, "SyncT", q, &sums);
        for (int t = 0; t < PRODUCER_THREADS; t++) {
            for (size_t i = 0; i < the_load.n_acks[t]; i++) {
                const ack *a = &the_load.acks[t][i];
                if (a->queue != q)
                    continue;
                acked++;
                if ((uint64_t)a->offset >= n || sums[a->offset] != a->sum) {
                    if (lost++ < 10)
                        fprintf(stderr, "lost: queue %d offset %lld\n", q, (long long)a->offset);
                }
            }
        }
        free(sums);
    }
    load_free();
    fprintf(stderr, "%zu acknowledged messages, %zu missing on the replica\n", acked, lost);
    assert_true(acked >= 2000);
    assert_int_equal(lost, 0);

    /* A consumer's commit goes to the replica while the master is away ... */
    e2e_commit_offset(r1.b.proc.port, "repl-crash-cg", "SyncT", 0, 42);
    assert_int_equal(e2e_query_offset(r1.b.proc.port, "repl-crash-cg", "SyncT", 0), 42);
    /* ... and a pull with nothing to read waits on the replica, */
    uint64_t *sums = NULL;
    int64_t end = (int64_t)pull_all(r1.b.proc.port, "SyncT", 1, &sums);
    free(sums);
    int parked = wire_connect(r1.b.proc.port, 30000);
    assert_true(parked >= 0);
    proto_cmd *pull = e2e_pull("repl-crash-cg", "SyncT", 1, end, 32, E2E_PULL_SUSPEND, 25000,
                               NULL);
    int32_t opaque = wire_send(parked, pull, NULL, 0);
    proto_cmd_free(pull);
    assert_true(opaque >= 0);
    e2e_sleep_ms(200);
    /* ... the master comes back, takes the commit held meanwhile, and a new
     * message wakes that pull as soon as the replica has applied it. */
    node_start(&m, NULL, NULL, 0, NULL, true);
    assert_true(wait_caught_up(&m, &r1));
    int64_t t0 = proto_mono_ms();
    e2e_reply sent = e2e_call_port(m.b.proc.port, e2e_send_v2("SyncT", 1, NULL), "wakes", 5);
    e2e_expect_code(&sent, RS_SUCCESS, NULL);
    e2e_reply_free(&sent);
    e2e_reply woken = {0};
    assert_int_equal(wire_recv(parked, &woken.cmd, &woken.frame), 0);
    assert_int_equal(woken.cmd->opaque, opaque);
    e2e_expect_code(&woken, RS_SUCCESS, NULL);
    assert_true(proto_mono_ms() - t0 < 5000);
    e2e_reply_free(&woken);
    close(parked);
    int64_t got = -1;
    for (int waited = 0; waited < WAIT_MS && got != 42; waited += 100) {
        got = e2e_query_offset(m.b.proc.port, "repl-crash-cg", "SyncT", 0);
        e2e_sleep_ms(100);
    }
    assert_int_equal(got, 42);
    pair_finish(&m, &r1);
}


/* ---- Scale-out: two broker groups ---------------------------------------- */

/*
 * Wait until the name server routes topic to `groups` broker groups: each
 * master registers a new topic on its own, and a producer that fetched the
 * route in between would keep sending to one group until its next refresh.
 */
static bool wait_route_groups(const char *topic, size_t groups)
{
    for (int waited = 0; waited < WAIT_MS; waited += 50) {
        proto_cmd *q = proto_cmd_request(RC_GET_ROUTEINFO_BY_TOPIC);
        q->version = 409; /* standard JSON */
        proto_cmd_set(q, "topic", topic);
        e2e_reply r = e2e_call_port(namesrv.port, q, NULL, 0);
        size_t n = 0;
        if (r.cmd->code == RS_SUCCESS) {
            json_t *j = e2e_body_json(&r);
            n = json_array_size(json_object_get(j, "queueDatas"));
            json_decref(j);
        }
        e2e_reply_free(&r);
        if (n >= groups)
            return true;
        e2e_sleep_ms(50);
    }
    return false;
}

/* Send n messages to TwoT; count where they went; the sends not acknowledged SEND_OK. */
static int send_spread(lsmq_producer *p, int n, int *on_a, int *on_b)
{
    int failed = 0;
    for (int i = 0; i < n; i++) {
        lsmq_out_message m;
        lsmq_send_result res;
        memset(&m, 0, sizeof m);
        m.topic = "TwoT";
        m.body = "spread";
        m.body_len = 6;
        if (lsmq_producer_send(p, &m, &res) != 0 || res.status != LSMQ_SEND_OK) {
            failed++;
            continue;
        }
        *on_a += strcmp(res.broker_name, "broker-a") == 0;
        *on_b += strcmp(res.broker_name, "broker-b") == 0;
    }
    return failed;
}

static void test_two_broker_groups(void **state)
{
    node am, ar, bm, br;
    group_name = "broker-a";
    node_start(&am, "e2e-rc-two-am", "ASYNC_MASTER", 0, NULL, false);
    node_start(&ar, "e2e-rc-two-ar", "SLAVE", 1, &am, false);
    group_name = "broker-b";
    node_start(&bm, "e2e-rc-two-bm", "ASYNC_MASTER", 0, NULL, false);
    node_start(&br, "e2e-rc-two-br", "SLAVE", 1, &bm, false);
    group_name = "broker-a";
    /* updateTopic -c: the topic on every master of the cluster. */
    const node *masters[] = {&am, &bm};
    for (int i = 0; i < 2; i++) {
        e2e_reply r = e2e_call_port(masters[i]->b.proc.port,
                                    e2e_create_topic("TwoT", QUEUES, QUEUES, 6), NULL, 0);
        e2e_expect_code(&r, RS_SUCCESS, NULL);
        e2e_reply_free(&r);
    }
    assert_true(wait_route_groups("TwoT", 2));

    lsmq_producer *p;
    assert_int_equal(lsmq_producer_create(namesrv_addr, "repl-two-pg", &p), 0);
    assert_int_equal(lsmq_producer_start(p), 0);
    int on_a = 0, on_b = 0;
    assert_int_equal(send_spread(p, 400, &on_a, &on_b), 0);
    assert_true(on_a > 100 && on_b > 100);
    assert_true(wait_caught_up(&am, &ar));

    /* broker-a loses its master: broker-b takes every send. */
    wire_kill9(&am.b.proc);
    int after_a = 0, after_b = 0;
    int failed = send_spread(p, 400, &after_a, &after_b);
    lsmq_producer_destroy(p);
    assert_int_equal(failed, 0);
    assert_int_equal(after_b, 400);
    /* broker-a's replica still serves what broker-a stored. */
    int64_t stored = 0;
    for (int q = 0; q < QUEUES; q++)
        stored += e2e_max_offset(ar.b.proc.port, "TwoT", q);
    assert_int_equal(stored, on_a);

    node_start(&am, NULL, NULL, 0, NULL, true);
    assert_true(wait_caught_up(&am, &ar));
    assert_int_equal(e2e_broker_stop(&ar.b, 30000), 0);
    assert_int_equal(e2e_broker_stop(&am.b, 30000), 0);
    assert_int_equal(e2e_broker_stop(&br.b, 30000), 0);
    assert_int_equal(e2e_broker_stop(&bm.b, 30000), 0);
}

static int setup(void **state)
{
    if (e2e_namesrv_start(&namesrv, 0, NULL) != 0)
        return -1;
    snprintf(namesrv_addr, sizeof namesrv_addr, "127.0.0.1:%d", namesrv.port);
    snprintf(arg_ns, sizeof arg_ns, "--namesrvAddr=%s", namesrv_addr);
    return 0;
}

static int teardown(void **state)
{
    return wire_stop(&namesrv, 30000) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bulk_replicas_identical),
        cmocka_unit_test(test_kill_replica_mid_stream),
        cmocka_unit_test(test_kill_replica_mid_checkpoint),
        cmocka_unit_test(test_kill_master_under_sync_load),
        cmocka_unit_test(test_two_broker_groups),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
