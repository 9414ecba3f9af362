/*
 * test_e2e_failover: automatic failover under load, against real
 * processes: three mqnamesrv with the embedded controller (a raft group)
 * and three mqbrokers of one group (broker-a) in controller mode, which
 * the controller makes master or replica.
 *
 *  - nemesis: producers send unique bodies synchronously while a push
 *    consumer reads; in each cycle (LSMQ_FAILOVER_CYCLES, default 20) the
 *    master is killed (-9), another must be elected and take sends within
 *    10 s, and the killed broker comes back on its store as a caught-up
 *    replica of the new master. Every fifth cycle (LSMQ_FAILOVER_CTL_EVERY)
 *    the raft leader among the controllers is killed too, right after the
 *    broker, and restarted once the new master is in place.
 *  - switch-over: the controller leader is asked to make a caught-up
 *    replica master (CONTROLLER_ELECT_MASTER, designateElect); it must
 *    become master with no gap of 2 s or more between SEND_OKs.
 *
 * Both end the same way: the load stops, every replica catches up, the
 * consumer drains, and the history (e2e_history.h) is checked against
 * every broker's copy of the topic: no acknowledged message lost or moved,
 * no (queue, offset) holding different bodies on two brokers, every
 * acknowledged message consumed. One summary line per test:
 *
 *   failover: cycles=N acknowledged=A lost=L conflicts=C duplicates=D
 *             consumed=K worst_unavailable_ms=W mean_unavailable_ms=M
 *
 * Every process exits 0 on SIGTERM at the end (sanitizers clean).
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

#include <cmocka.h>

#include "clock.h"
#include "e2e_history.h"
#include "e2e_msg.h"
#include "e2e_procs.h"
#include "e2e_repl.h"
#include "e2e_reply.h"
#include "e2e_time.h"
#include "lsmq.h"
#include "testsupport.h"
#include "wire.h"

#define NODES 3               /* controllers, and brokers */
#define BROKER_NAME "broker-a"
#define CLUSTER_NAME "DefaultCluster"
#define TOPIC "FailoverT"
#define QUEUES 4
#define PRODUCERS 3
#define SEND_TIMEOUT_MS 3000
#define SEND_PAUSE_US 5000    /* between two sends of a producer */
#define FAIL_PAUSE_US 20000   /* after a failed send */
#define NEW_MASTER_MS 10000   /* a killed master replaced, and sends taken, within */
#define START_MS 30000        /* the first master, the route, the first SEND_OK */
#define CATCH_UP_MS 60000
#define DRAIN_MS 30000
#define SWITCH_GAP_MAX_MS 2000
#define CYCLES_DEFAULT 20
#define CTL_KILL_EVERY 5      /* cycles (LSMQ_FAILOVER_CTL_EVERY; 0: never) */
#define CLIENT_LOG_MAX 300    /* liblsmq log lines shown */

/* ---- The processes ---------------------------------------------------------- */

/* An mqnamesrv with the embedded controller. */
typedef struct controller {
    wire_proc proc;
    int port;        /* name server and controller requests */
    int raft_port;
    char *store_dir; /* survives restarts; owned */
} controller;

typedef struct cluster {
    controller ctl[NODES];
    e2e_broker broker[NODES]; /* broker[i] has brokerId i + 1 */
    char peers[256];          /* controllerPeers */
    char addrs[128];          /* the name servers' (and controllers') addresses */
} cluster;

static cluster cl;

/* A free port none of the cluster's processes uses. */
static int fresh_port(void)
{
    for (;;) {
        int p = wire_free_port(), taken = p <= 0;
        for (int i = 0; i < NODES && !taken; i++) {
            const e2e_broker *b = &cl.broker[i];
            taken = p == b->proc.port || p == b->ha_port || p == b->namesrv_port ||
                    p == cl.ctl[i].port || p == cl.ctl[i].raft_port;
        }
        if (!taken)
            return p;
    }
}

static int controller_start(int i)
{
    controller *c = &cl.ctl[i];
    char peers[300], self[64], store[600];
    snprintf(peers, sizeof peers, "--controllerPeers=%s", cl.peers);
    snprintf(self, sizeof self, "--controllerSelfId=n%d", i);
    snprintf(store, sizeof store, "--controllerStorePath=%s", c->store_dir);
    const char *args[] = {"--enableControllerInNamesrv=true", peers, self, store, NULL};
    return e2e_namesrv_start(&c->proc, c->port, args);
}

static int broker_start(int i)
{
    char id[32], ctl[160], ns[160];
    snprintf(id, sizeof id, "--brokerId=%d", i + 1);
    snprintf(ctl, sizeof ctl, "--controllerAddr=%s", cl.addrs);
    snprintf(ns, sizeof ns, "--namesrvAddr=%s", cl.addrs);
    const char *args[] = {"--brokerName=" BROKER_NAME,
                          "--brokerClusterName=" CLUSTER_NAME,
                          id,
                          "--brokerRole=SYNC_MASTER",
                          "--enableControllerMode=true",
                          ctl,
                          ns,
                          "--controllerHeartBeatTimeoutMills=3000",
                          "--brokerHeartbeatInterval=500",
                          "--haMaxTimeSlaveNotCatchup=3000",
                          /* The fixture starts the embedded one; these use the three above. */
                          "--embeddedNamesrv=false",
                          NULL};
    return e2e_broker_restart(&cl.broker[i], args);
}

/* Ports, store directories and the address lists; nothing started. */
static void cluster_init(void)
{
    memset(&cl, 0, sizeof cl);
    for (int i = 0; i < NODES; i++)
        assert_int_equal(e2e_broker_init(&cl.broker[i], "e2e-fo-broker"), 0);
    size_t np = 0, na = 0;
    for (int i = 0; i < NODES; i++) {
        controller *c = &cl.ctl[i];
        c->port = fresh_port();
        c->raft_port = fresh_port();
        c->store_dir = test_tmpdir("e2e-fo-ctl");
        np += (size_t)snprintf(cl.peers + np, sizeof cl.peers - np, "%sn%d=127.0.0.1:%d",
                               i ? ";" : "", i, c->raft_port);
        na += (size_t)snprintf(cl.addrs + na, sizeof cl.addrs - na, "%s127.0.0.1:%d",
                               i ? ";" : "", c->port);
    }
}

/* Everything still running killed, every store removed: a failed test's cleanup. */
static void cluster_kill(void)
{
    for (int i = 0; i < NODES; i++) {
        e2e_broker_kill(&cl.broker[i]);
        wire_kill9(&cl.ctl[i].proc);
        test_rmdir_free(cl.ctl[i].store_dir);
        cl.ctl[i].store_dir = NULL;
    }
}

/* SIGTERM to every process, brokers first; each must exit 0. */
static void cluster_stop(void)
{
    int bad = 0;
    for (int i = 0; i < NODES; i++)
        if (e2e_broker_stop(&cl.broker[i], 30000) != 0)
            bad++;
    for (int i = 0; i < NODES; i++) {
        int status = wire_stop(&cl.ctl[i].proc, 30000);
        if (status != 0) {
            fprintf(stderr, "mqnamesrv n%d exited with status %d\n", i, status);
            bad++;
        }
        test_rmdir_free(cl.ctl[i].store_dir);
        cl.ctl[i].store_dir = NULL;
    }
    assert_int_equal(bad, 0);
}

/* ---- Asking the controllers ------------------------------------------------- */

/* Who the controllers say is master. */
typedef struct master_info {
    int64_t id;    /* brokerId, 1..NODES */
    int64_t epoch;
    char addr[64];
    int in_sync;   /* brokers in the sync state set, the master included */
} master_info;

/* How many ids a "1,2,3" list names. */
static int ids_count(const char *list)
{
    if (!list || !*list)
        return 0;
    int n = 1;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    return n;
}

/* req (taken) to controller i over a new connection; the response or NULL (down, no answer). */
static proto_cmd *controller_call(int i, proto_cmd *req, uint8_t **frame)
{
    proto_cmd *resp = NULL;
    int fd = cl.ctl[i].proc.pid > 0 ? wire_connect(cl.ctl[i].port, 3000) : -1;
    if (fd < 0) {
        proto_cmd_free(req);
        return NULL;
    }
    if (wire_call(fd, req, NULL, 0, &resp, frame) != 0)
        resp = NULL;
    close(fd);
    return resp;
}

/* Controller i's answer to req (taken) has code `code`; with flag, also that flag true. */
static bool controller_answers(int i, proto_cmd *req, int code, const char *flag)
{
    uint8_t *frame = NULL;
    proto_cmd *resp = controller_call(i, req, &frame);
    bool yes = resp && resp->code == code && (!flag || proto_cmd_get_bool(resp, flag, 0));
    proto_cmd_free(resp);
    free(frame);
    return yes;
}

/*
 * The index of the raft leader among the controllers, or -1: the one whose
 * metadata says isLeader, or else the one that answers a replica-info
 * request itself (followers answer CONTROLLER_NOT_LEADER).
 */
static int controller_leader(void)
{
    for (int i = 0; i < NODES; i++)
        if (controller_answers(i, proto_cmd_request(RC_CONTROLLER_GET_METADATA_INFO), RS_SUCCESS,
                               "isLeader"))
            return i;
    for (int i = 0; i < NODES; i++) {
        proto_cmd *req = proto_cmd_request(RC_CONTROLLER_GET_REPLICA_INFO);
        proto_cmd_set(req, "brokerName", BROKER_NAME);
        if (controller_answers(i, req, RS_SUCCESS, NULL))
            return i;
    }
    return -1;
}

/* CONTROLLER_GET_REPLICA_INFO of broker-a from the leader: true when it names a master. */
static bool master_query(master_info *out)
{
    for (int i = 0; i < NODES; i++) {
        proto_cmd *req = proto_cmd_request(RC_CONTROLLER_GET_REPLICA_INFO);
        proto_cmd_set(req, "brokerName", BROKER_NAME);
        uint8_t *frame = NULL;
        proto_cmd *resp = controller_call(i, req, &frame);
        bool found = false;
        if (resp && resp->code == RS_SUCCESS) {
            out->id = e2e_i64(resp, "masterBrokerId");
            out->epoch = e2e_i64(resp, "masterEpoch");
            const char *addr = proto_cmd_get(resp, "masterAddress");
            snprintf(out->addr, sizeof out->addr, "%s", addr ? addr : "");
            out->in_sync = ids_count(proto_cmd_get(resp, "syncStateSet"));
            found = out->id >= 1 && out->id <= NODES;
        }
        proto_cmd_free(resp);
        free(frame);
        if (found)
            return true;
    }
    return false;
}

/* Wait up to timeout_ms for a master other than not_id (0: any) in an epoch above min_epoch. */
static bool wait_master(master_info *out, int64_t not_id, int64_t min_epoch, int timeout_ms)
{
    for (int64_t t0 = proto_mono_ms(); proto_mono_ms() - t0 < timeout_ms; e2e_sleep_ms(50))
        if (master_query(out) && out->id != not_id && out->epoch > min_epoch)
            return true;
    return false;
}

/* ---- Replication status ----------------------------------------------------- */

/* GET_BROKER_HA_STATUS of the broker on port (decref it), or NULL. */
static json_t *ha_status(int port)
{
    int fd = wire_connect(port, 5000);
    if (fd < 0)
        return NULL;
    proto_cmd *resp = NULL;
    uint8_t *frame = NULL;
    json_t *j = NULL;
    if (wire_call(fd, proto_cmd_request(E2E_RC_GET_BROKER_HA_STATUS), NULL, 0, &resp, &frame) == 0 &&
        resp->code == RS_SUCCESS)
        j = json_loadb((const char *)resp->body, resp->body_len, 0, NULL);
    proto_cmd_free(resp);
    free(frame);
    close(fd);
    return j;
}

/* The broker on replica_port streams from the master on master_port and has all it committed. */
static bool replica_caught_up(int master_port, int replica_port)
{
    json_t *m = ha_status(master_port), *r = ha_status(replica_port);
    json_t *c = json_object_get(r, "haClientRuntimeInfo");
    bool done = m && r && json_is_true(json_object_get(m, "master")) &&
                json_is_false(json_object_get(r, "master")) &&
                json_is_true(json_object_get(c, "connected")) &&
                e2e_jint(c, "appliedSequence") >= e2e_jint(m, "masterSequence");
    json_decref(m);
    json_decref(r);
    return done;
}

/*
 * Wait until every broker but the master (index) is a caught-up replica of
 * it and the controllers hold all of them in the sync state set: then any
 * replica may take over.
 */
static bool wait_replicas_caught_up(int master, int timeout_ms)
{
    for (int64_t t0 = proto_mono_ms(); proto_mono_ms() - t0 < timeout_ms; e2e_sleep_ms(100)) {
        master_info m;
        bool all = master_query(&m) && m.id == master + 1 && m.in_sync == NODES;
        for (int i = 0; i < NODES && all; i++)
            if (i != master)
                all = replica_caught_up(cl.broker[master].proc.port, cl.broker[i].proc.port);
        if (all)
            return true;
    }
    return false;
}

/* What the controllers and the brokers say, on stderr: for a failure's message. */
static void group_report(void)
{
    master_info m;
    if (master_query(&m))
        fprintf(stderr, "controllers: master broker %lld (%s), epoch %lld, %d in sync\n",
                (long long)m.id, m.addr, (long long)m.epoch, m.in_sync);
    else
        fprintf(stderr, "controllers: no leader answers, or no master\n");
    for (int i = 0; i < NODES; i++) {
        json_t *j = cl.broker[i].proc.pid > 0 ? ha_status(cl.broker[i].proc.port) : NULL;
        char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        fprintf(stderr, "broker %d: %s\n", i + 1, text ? text : "down or no HA status");
        free(text);
        json_decref(j);
    }
}

/* ---- Load: producers and a push consumer ------------------------------------ */

typedef struct load {
    e2e_history *history;
    lsmq_producer *producer[PRODUCERS];
    pthread_t thread[PRODUCERS];
    int threads;      /* started */
    atomic_bool stop;
    lsmq_push_consumer *consumer;
} load;

static load ld;
static atomic_long client_log_lines;

static void client_log_cb(int level, const char *line, void *arg)
{
    (void)level;
    (void)arg;
    if (atomic_fetch_add(&client_log_lines, 1) < CLIENT_LOG_MAX)
        fprintf(stderr, "lsmq: %s\n", line);
}

/* A failed send on stderr, at most one a second per producer: the outage's timeline. */
static void send_failure_report(long t, int rc, const lsmq_send_result *res, int64_t *last_ms)
{
    int64_t now = proto_mono_ms();
    if (now - *last_ms < 1000)
        return;
    *last_ms = now;
    char why[256];
    if (rc == 0)
        snprintf(why, sizeof why, "stored with status %d", res->status);
    else
        lsmq_producer_last_error(ld.producer[t], why, sizeof why);
    fprintf(stderr, "producer %ld: send failed (%d): %s\n", t, rc, why);
}

/* Producer t: "p<t>-<n>" synchronously until told to stop, each outcome in the history. */
static void *produce(void *arg)
{
    long t = (long)(intptr_t)arg;
    int64_t last_report_ms = 0;
    for (long n = 0; !atomic_load(&ld.stop); n++) {
        char body[48];
        snprintf(body, sizeof body, "p%ld-%ld", t, n);
        lsmq_out_message m;
        memset(&m, 0, sizeof m);
        m.topic = TOPIC;
        m.body = body;
        m.body_len = strlen(body);
        lsmq_send_result res;
        int rc = lsmq_producer_send(ld.producer[t], &m, &res);
        if (rc == 0 && res.status == LSMQ_SEND_OK) {
            e2e_history_acked(ld.history, body, res.queue_id, res.queue_offset,
                              res.offset_msg_id);
        } else {
            e2e_history_failed(ld.history);
            send_failure_report(t, rc, &res, &last_report_ms);
            usleep(FAIL_PAUSE_US);
        }
        usleep(SEND_PAUSE_US);
    }
    return NULL;
}

static int consume_cb(const lsmq_message *m, void *arg)
{
    size_t len;
    const void *body = lsmq_message_body(m, &len);
    if (strcmp(lsmq_message_topic(m), TOPIC) == 0)
        e2e_history_consumed(arg, body, len);
    return LSMQ_CONSUME_SUCCESS;
}

static void consumer_start(void)
{
    lsmq_push_consumer *c;
    assert_int_equal(lsmq_push_consumer_create(cl.addrs, "failover-cg", &c), 0);
    ld.consumer = c;
    assert_int_equal(lsmq_push_consumer_subscribe(c, TOPIC, "*"), 0);
    assert_int_equal(lsmq_push_consumer_set_listener(c, consume_cb, ld.history), 0);
    assert_int_equal(lsmq_push_consumer_set_consume_from(c, LSMQ_FROM_FIRST), 0);
    assert_int_equal(lsmq_push_consumer_set_commit_interval(c, 1000), 0);
    assert_int_equal(lsmq_push_consumer_start(c), 0);
}

/* The consumer, then PRODUCERS threads; returns once the first SEND_OK is in. */
static void load_start(void)
{
    memset(&ld, 0, sizeof ld);
    ld.history = e2e_history_create();
    atomic_store(&client_log_lines, 0);
    lsmq_set_log(client_log_cb, NULL, LSMQ_LOG_WARN);
    consumer_start();
    for (long t = 0; t < PRODUCERS; t++) {
        char group[32];
        snprintf(group, sizeof group, "failover-pg%ld", t);
        assert_int_equal(lsmq_producer_create(cl.addrs, group, &ld.producer[t]), 0);
        assert_int_equal(lsmq_producer_set_send_timeout(ld.producer[t], SEND_TIMEOUT_MS), 0);
        assert_int_equal(lsmq_producer_set_retries(ld.producer[t], 2), 0);
        assert_int_equal(lsmq_producer_start(ld.producer[t]), 0);
        assert_int_equal(pthread_create(&ld.thread[t], NULL, produce, (void *)(intptr_t)t), 0);
        ld.threads++;
    }
    for (int64_t t0 = proto_mono_ms(); e2e_history_acked_count(ld.history) == 0;
         e2e_sleep_ms(50))
        if (proto_mono_ms() - t0 > START_MS)
            fail_msg("no SEND_OK within %d ms of starting the load", START_MS);
}

/* The producers stop and are destroyed; the consumer keeps reading. */
static void load_stop_producers(void)
{
    atomic_store(&ld.stop, true);
    for (int t = 0; t < ld.threads; t++)
        pthread_join(ld.thread[t], NULL);
    ld.threads = 0;
    for (int t = 0; t < PRODUCERS; t++) {
        lsmq_producer_destroy(ld.producer[t]);
        ld.producer[t] = NULL;
    }
}

/* Whatever load_start left; the history too. */
static void load_free(void)
{
    load_stop_producers();
    lsmq_push_consumer_destroy(ld.consumer);
    ld.consumer = NULL;
    e2e_history_destroy(ld.history);
    ld.history = NULL;
    lsmq_set_log(NULL, NULL, LSMQ_LOG_WARN);
}

/* ---- Set-up and the end of a run -------------------------------------------- */

/* UPDATE_AND_CREATE_TOPIC on broker i; its response code (-1: no answer). */
static int topic_create(int i)
{
    int fd = wire_connect(cl.broker[i].proc.port, 10000);
    if (fd < 0)
        return -1;
    proto_cmd *resp = NULL;
    uint8_t *frame = NULL;
    int code = -1;
    if (wire_call(fd, e2e_create_topic(TOPIC, QUEUES, QUEUES, 6), NULL, 0, &resp, &frame) == 0)
        code = resp->code;
    proto_cmd_free(resp);
    free(frame);
    close(fd);
    return code;
}

/* Create the topic on broker i, asking again until it answers SUCCESS; false after timeout_ms. */
static bool topic_create_retried(int i, int timeout_ms)
{
    for (int64_t t0 = proto_mono_ms(); proto_mono_ms() - t0 < timeout_ms; e2e_sleep_ms(100))
        if (topic_create(i) == RS_SUCCESS)
            return true;
    return false;
}

/*
 * Controllers, then broker 1 alone (the first to register becomes master in
 * epoch 1) and the topic created there (replicas refuse configuration
 * writes and take them from their master's log), then the other two
 * brokers; the topic routed and both replicas caught up. Returns the
 * master's index.
 */
static int cluster_start(void)
{
    cluster_init();
    for (int i = 0; i < NODES; i++)
        assert_int_equal(controller_start(i), 0);
    assert_int_equal(broker_start(0), 0);
    master_info m;
    if (!wait_master(&m, 0, 0, START_MS))
        fail_msg("the controllers elected no master within %d ms", START_MS);
    fprintf(stderr, "first master: broker %lld (%s) in epoch %lld\n", (long long)m.id, m.addr,
            (long long)m.epoch);
    assert_int_equal(m.id, 1);
    int master = (int)m.id - 1;
    if (!topic_create_retried(master, START_MS))
        fail_msg("the master, broker %d, did not create topic %s", master + 1, TOPIC);
    for (int i = 1; i < NODES; i++)
        assert_int_equal(broker_start(i), 0);
    assert_true(e2e_wait_route(cl.ctl[0].port, TOPIC, RS_SUCCESS, START_MS) >= 0);
    if (!wait_replicas_caught_up(master, CATCH_UP_MS)) {
        group_report();
        fail_msg("the replicas did not catch up with broker %d", master + 1);
    }
    return master;
}

/* The consumer has every acknowledged body, or DRAIN_MS have passed. */
static void drain_consumer(void)
{
    for (int64_t t0 = proto_mono_ms(); !e2e_history_all_consumed(ld.history); e2e_sleep_ms(100))
        if (proto_mono_ms() - t0 > DRAIN_MS)
            break;
}

/* Unavailability after each master kill. */
typedef struct outages {
    int cycles;
    int late;      /* cycles whose new master took sends after NEW_MASTER_MS */
    int64_t worst_ms, total_ms;
} outages;

/*
 * Stop the load, let the replicas catch up and the consumer drain, check
 * the history against every broker, print the summary and assert on it.
 */
static void finish_and_check(const outages *o)
{
    load_stop_producers();
    master_info m;
    if (!wait_master(&m, 0, 0, NEW_MASTER_MS))
        fail_msg("no master at the end");
    if (!wait_replicas_caught_up((int)m.id - 1, CATCH_UP_MS)) {
        group_report();
        fail_msg("the replicas did not catch up with broker %lld at the end", (long long)m.id);
    }
    drain_consumer();
    lsmq_push_consumer_destroy(ld.consumer);
    ld.consumer = NULL;

    int ports[NODES];
    for (int i = 0; i < NODES; i++)
        ports[i] = cl.broker[i].proc.port;
    e2e_history_report r;
    int rc = e2e_history_check(ld.history, TOPIC, QUEUES, ports, NODES, &r);
    fprintf(stderr,
            "failover: cycles=%d acknowledged=%ld lost=%ld conflicts=%ld duplicates=%ld "
            "consumed=%ld worst_unavailable_ms=%lld mean_unavailable_ms=%lld\n",
            o->cycles, r.acknowledged, r.lost, r.conflicts, r.duplicates, r.consumed,
            (long long)o->worst_ms, (long long)(o->cycles ? o->total_ms / o->cycles : 0));
    fprintf(stderr, "failover: %ld sends failed or were not SEND_OK\n", r.failed);
    assert_int_equal(rc, 0);
    assert_true(r.acknowledged > 0);
    assert_int_equal(r.lost, 0);
    assert_int_equal(r.conflicts, 0);
    assert_int_equal(r.consumed, r.acknowledged);
}

static int cluster_teardown(void **state)
{
    (void)state;
    load_free();
    cluster_kill();
    return 0;
}

/* ---- Nemesis: kill the master ------------------------------------------------ */

static int cycles_wanted(void)
{
    const char *v = getenv("LSMQ_FAILOVER_CYCLES");
    int n = v ? atoi(v) : CYCLES_DEFAULT;
    return n > 0 ? n : CYCLES_DEFAULT;
}

/* Every how many cycles the controller leader dies too (0: never). */
static int ctl_kill_every(void)
{
    const char *v = getenv("LSMQ_FAILOVER_CTL_EVERY");
    int n = v ? atoi(v) : CTL_KILL_EVERY;
    return n >= 0 ? n : CTL_KILL_EVERY;
}

/*
 * Wait until a SEND_OK stored by the broker on port (port < 0: any broker
 * but the one on -port) arrives after t0; its time, or -1 after timeout_ms
 * from t0.
 */
static int64_t wait_ack_from(int64_t t0, int port, int timeout_ms)
{
    for (;; e2e_sleep_ms(10)) {
        int64_t at = e2e_history_first_ack(ld.history, t0, port);
        if (at >= 0)
            return at;
        if (proto_mono_ms() - t0 > timeout_ms)
            return -1;
    }
}

/*
 * One cycle: kill the master (and the controller leader when kill_ctl),
 * a new master in a later epoch takes sends within NEW_MASTER_MS, the
 * killed ones come back, and every replica catches up. Adds the
 * unavailability to *o.
 */
static void failover_cycle(int cycle, bool kill_ctl, outages *o)
{
    master_info old, now;
    if (!wait_master(&old, 0, 0, NEW_MASTER_MS))
        fail_msg("cycle %d: no master to kill", cycle);
    int victim = (int)old.id - 1, leader = kill_ctl ? controller_leader() : -1;
    if (kill_ctl && leader < 0)
        fail_msg("cycle %d: no controller says it leads", cycle);

    int64_t t0 = proto_mono_ms();
    wire_kill9(&cl.broker[victim].proc);
    if (leader >= 0)
        wire_kill9(&cl.ctl[leader].proc);
    /* Late is a failure judged at the end, after the history check; never is one now. */
    int64_t served = wait_ack_from(t0, -cl.broker[victim].proc.port, CATCH_UP_MS);
    bool elected = wait_master(&now, old.id, old.epoch, CATCH_UP_MS);
    if (served < 0 || !elected || served - t0 > NEW_MASTER_MS)
        group_report();
    if (served < 0 || !elected)
        fail_msg("cycle %d: broker %lld (epoch %lld) killed%s: no new master serving within "
                 "%d ms (elected: %s, a SEND_OK elsewhere: %s)",
                 cycle, (long long)old.id, (long long)old.epoch,
                 leader >= 0 ? " with the controller leader" : "", CATCH_UP_MS,
                 elected ? "yes" : "no", served < 0 ? "no" : "yes");
    int64_t unavailable = served - t0;
    if (unavailable > NEW_MASTER_MS) {
        fprintf(stderr, "cycle %d: LATE: the new master took sends after %lld ms (limit %d)\n",
                cycle, (long long)unavailable, NEW_MASTER_MS);
        o->late++;
    }
    o->cycles++;
    o->total_ms += unavailable;
    if (unavailable > o->worst_ms)
        o->worst_ms = unavailable;

    if (leader >= 0)
        assert_int_equal(controller_start(leader), 0);
    assert_int_equal(broker_start(victim), 0);
    int64_t t1 = proto_mono_ms();
    if (!wait_replicas_caught_up((int)now.id - 1, CATCH_UP_MS)) {
        group_report();
        fail_msg("cycle %d: broker %d did not rejoin as a caught-up replica of broker %lld",
                 cycle, victim + 1, (long long)now.id);
    }
    fprintf(stderr,
            "cycle %d: broker %lld (epoch %lld) killed%s; broker %lld master in epoch %lld; "
            "unavailable %lld ms; replicas caught up %lld ms after the restart\n",
            cycle, (long long)old.id, (long long)old.epoch,
            leader >= 0 ? " with controller leader" : "", (long long)now.id,
            (long long)now.epoch, (long long)unavailable, (long long)(proto_mono_ms() - t1));
}

static void test_failover_nemesis(void **state)
{
    (void)state;
    cluster_start();
    load_start();
    outages o = {0};
    int cycles = cycles_wanted(), every = ctl_kill_every();
    for (int c = 1; c <= cycles; c++)
        failover_cycle(c, every > 0 && c % every == 0, &o);
    finish_and_check(&o);
    if (o.late > 0)
        fail_msg("%d of %d cycles had no new master taking sends within %d ms", o.late, o.cycles,
                 NEW_MASTER_MS);
    load_free();
    cluster_stop();
}

/* ---- Planned switch-over ----------------------------------------------------- */

/* CONTROLLER_ELECT_MASTER of broker_id, designated, at the controller leader; its code. */
static int elect_master(int64_t broker_id)
{
    for (int i = 0; i < NODES; i++) {
        proto_cmd *req = proto_cmd_request(RC_CONTROLLER_ELECT_MASTER);
        proto_cmd_set(req, "clusterName", CLUSTER_NAME);
        proto_cmd_set(req, "brokerName", BROKER_NAME);
        proto_cmd_set_i64(req, "brokerId", broker_id);
        proto_cmd_set_bool(req, "designateElect", 1);
        uint8_t *frame = NULL;
        proto_cmd *resp = controller_call(i, req, &frame);
        int code = resp ? resp->code : -1;
        if (resp && code != RS_SUCCESS && code != RS_CONTROLLER_NOT_LEADER)
            fprintf(stderr, "elect broker %lld at n%d: code %d %s\n", (long long)broker_id, i,
                    code, resp->remark ? resp->remark : "");
        proto_cmd_free(resp);
        free(frame);
        if (code != -1 && code != RS_CONTROLLER_NOT_LEADER)
            return code;
    }
    return -1;
}

static void test_planned_switch_over(void **state)
{
    (void)state;
    int master = cluster_start();
    load_start();
    e2e_sleep_ms(3000);
    assert_true(wait_replicas_caught_up(master, CATCH_UP_MS));
    master_info old, now;
    assert_true(wait_master(&old, 0, 0, NEW_MASTER_MS));
    int target = (master + 1) % NODES;

    int64_t t0 = proto_mono_ms();
    assert_int_equal(elect_master(target + 1), RS_SUCCESS);
    if (!wait_master(&now, old.id, old.epoch, NEW_MASTER_MS) || now.id != target + 1)
        fail_msg("broker %d did not become master", target + 1);
    /* Late or never, the history is checked before the verdict on the gap. */
    int64_t served = wait_ack_from(t0, cl.broker[target].proc.port, CATCH_UP_MS);
    if (served < 0 || served - t0 > NEW_MASTER_MS) {
        group_report();
        fprintf(stderr, "switch-over: broker %d, master in epoch %lld, took no send within %d ms\n",
                target + 1, (long long)now.epoch, NEW_MASTER_MS);
    }
    e2e_sleep_ms(3000);
    int64_t gap = e2e_history_max_gap_ms(ld.history, t0 - 1000, proto_mono_ms());
    fprintf(stderr,
            "switch-over: broker %lld (epoch %lld) to broker %lld (epoch %lld); first SEND_OK "
            "from it after %lld ms; longest gap between SEND_OKs %lld ms\n",
            (long long)old.id, (long long)old.epoch, (long long)now.id, (long long)now.epoch,
            (long long)(served - t0), (long long)gap);
    outages o = {.cycles = 1, .worst_ms = gap, .total_ms = gap};
    finish_and_check(&o);
    assert_true(served >= 0 && served - t0 <= NEW_MASTER_MS);
    assert_true(gap < SWITCH_GAP_MAX_MS);
    load_free();
    cluster_stop();
}

/* LSMQ_FAILOVER_TESTS, a cmocka pattern ("*switch*"), runs only the tests it matches. */
int main(void)
{
    if (getenv("LSMQ_FAILOVER_TESTS"))
        cmocka_set_test_filter(getenv("LSMQ_FAILOVER_TESTS"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_failover_nemesis, cluster_teardown),
        cmocka_unit_test_teardown(test_planned_switch_over, cluster_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
