/*
 * test_e2e_replication: a broker group of real processes on loopback, a
 * SYNC_MASTER and two replicas: one told its master's HA address
 * (haMasterAddress), one that learns it from the name server and makes its
 * store from a checkpoint of the master.
 *
 *  - the name server lists the group's three brokers under their ids, and
 *    each replica knows its master;
 *  - a send is answered SUCCESS once a replica persisted it, and that
 *    replica serves it to a pull at once (suggestWhichBrokerId 0);
 *  - a SYNC_MASTER with no replica answers SLAVE_NOT_AVAILABLE and keeps
 *    the message; one whose replicas stopped answering answers
 *    FLUSH_SLAVE_TIMEOUT after syncFlushTimeout, and keeps it too;
 *  - replicas refuse sends (SERVICE_NOT_AVAILABLE, "replica" in the remark)
 *    and topic and group writes (upstream's slave remark), and send pulls
 *    that find nothing back to the online master (PULL_RETRY_IMMEDIATELY);
 *  - consumer offsets: the master's reach the replicas; one committed to a
 *    replica is held there until the master's log speaks for the queue;
 *  - GET_BROKER_HA_STATUS on both sides;
 *  - after a few thousand sends every replica has the master's queue
 *    offsets, and every broker exits 0 on SIGTERM.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdbool.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "e2e_msg.h"
#include "e2e_procs.h"
#include "e2e_repl.h"
#include "e2e_reply.h"
#include "testsupport.h"
#include "wire.h"

#define V_4_9_8 409 /* standard JSON bodies */
#define WAIT_MS 30000
#define SYNC_FLUSH_TIMEOUT_MS 1500
#define TOPIC "ReplT"
#define QUEUES 4
#define BULK 3000

static e2e_broker master, r1, r2;
static int ha_port;
static char ha_addr[32];

/* "--key=value" strings the brokers are started with. */
static char arg_ha_port[48], arg_ha_master[64], arg_ns[64], arg_r1_ha[48], arg_r2_ha[48];

/* ---- Helpers ------------------------------------------------------------ */

/* Wait until the master counts `n` replicas in sync; false after WAIT_MS. */
static bool wait_in_sync(int n)
{
    for (int waited = 0; waited < WAIT_MS; waited += 100) {
        json_t *j = e2e_ha_status(master.proc.port);
        int64_t in_sync = e2e_jint(j, "inSyncSlaveNums");
        json_decref(j);
        if (in_sync >= n)
            return true;
        usleep(100 * 1000);
    }
    return false;
}

static bool wait_caught_up(const e2e_broker *replica)
{
    return e2e_wait_caught_up(master.proc.port, replica->proc.port, WAIT_MS);
}

static e2e_reply send_one(int port, const char *topic, int queue, const char *body)
{
    return e2e_call_port(port, e2e_send_v2(topic, queue, NULL), body, strlen(body));
}

/* ---- Set-up ------------------------------------------------------------- */

static int setup(void **state)
{
    ha_port = wire_free_port();
    snprintf(ha_addr, sizeof ha_addr, "127.0.0.1:%d", ha_port);
    snprintf(arg_ha_port, sizeof arg_ha_port, "--haListenPort=%d", ha_port);
    char timeout[48];
    snprintf(timeout, sizeof timeout, "--syncFlushTimeout=%d", SYNC_FLUSH_TIMEOUT_MS);
    const char *m_args[] = {"--brokerRole=SYNC_MASTER", arg_ha_port, timeout, NULL};
    if (e2e_broker_start(&master, "e2e-repl-master", m_args) != 0)
        return -1;
    snprintf(arg_ns, sizeof arg_ns, "--namesrvAddr=%s", master.namesrv);
    snprintf(arg_ha_master, sizeof arg_ha_master, "--haMasterAddress=%s", ha_addr);
    /* Replicas listen on no HA port; theirs only has to differ from listenPort. */
    snprintf(arg_r1_ha, sizeof arg_r1_ha, "--haListenPort=%d", wire_free_port());
    snprintf(arg_r2_ha, sizeof arg_r2_ha, "--haListenPort=%d", wire_free_port());
    const char *r1_args[] = {"--brokerRole=SLAVE", "--brokerId=1", arg_ha_master, arg_ns,
                             arg_r1_ha, NULL};
    const char *r2_args[] = {"--brokerRole=SLAVE", "--brokerId=2", arg_ns, arg_r2_ha, NULL};
    if (e2e_broker_start(&r1, "e2e-repl-r1", r1_args) != 0 ||
        e2e_broker_start(&r2, "e2e-repl-r2", r2_args) != 0)
        return -1;
    int fd = wire_connect(master.proc.port, 10000);
    e2e_reply r = e2e_call(fd, e2e_create_topic(TOPIC, QUEUES, QUEUES, 6), NULL, 0);
    int code = r.cmd->code;
    e2e_reply_free(&r);
    close(fd);
    return code == RS_SUCCESS ? 0 : -1;
}

static int teardown(void **state)
{
    int rc = 0;
    rc |= e2e_broker_stop(&r1, 30000);
    rc |= e2e_broker_stop(&r2, 30000);
    rc |= e2e_broker_stop(&master, 30000);
    return rc == 0 ? 0 : -1;
}

/* ---- Tests -------------------------------------------------------------- */

static void test_registration(void **state)
{
    json_t *addrs = NULL;
    for (int waited = 0; waited < WAIT_MS; waited += 100) {
        proto_cmd *q = proto_cmd_request(RC_GET_BROKER_CLUSTER_INFO);
        q->version = V_4_9_8;
        e2e_reply r = e2e_call_port(master.namesrv_port, q, NULL, 0);
        assert_int_equal(r.cmd->code, RS_SUCCESS);
        json_t *j = e2e_body_json(&r);
        e2e_reply_free(&r);
        json_t *ba = json_object_get(json_object_get(j, "brokerAddrTable"), "broker-a");
        json_decref(addrs);
        addrs = json_incref(json_object_get(ba, "brokerAddrs"));
        json_decref(j);
        if (json_object_size(addrs) == 3)
            break;
        usleep(100 * 1000);
    }
    assert_int_equal(json_object_size(addrs), 3);
    assert_string_equal(json_string_value(json_object_get(addrs, "0")), master.addr);
    assert_string_equal(json_string_value(json_object_get(addrs, "1")), r1.addr);
    assert_string_equal(json_string_value(json_object_get(addrs, "2")), r2.addr);
    json_decref(addrs);

    /* Both replicas follow the master: r2 learned its HA address from the name server. */
    assert_true(wait_in_sync(2));
    json_t *j = e2e_ha_status(r2.proc.port);
    assert_false(json_is_true(json_object_get(j, "master")));
    json_t *client = json_object_get(j, "haClientRuntimeInfo");
    assert_string_equal(json_string_value(json_object_get(client, "masterAddr")), ha_addr);
    assert_true(json_is_true(json_object_get(client, "connected")));
    json_decref(j);
}

static void test_sync_send_waits_for_a_replica(void **state)
{
    assert_true(wait_in_sync(1));
    e2e_reply r = send_one(master.proc.port, TOPIC, 1, "acked by a replica");
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    int64_t offset = e2e_i64(r.cmd, "queueOffset");
    e2e_reply_free(&r);
    assert_true(wait_caught_up(&r1));
    /* The replica serves it, and sends the consumer back to the master. */
    r = e2e_call_port(r1.proc.port, e2e_pull("g_repl", TOPIC, 1, offset, 1, 0, 0, NULL), NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    assert_int_equal(e2e_i64(r.cmd, "suggestWhichBrokerId"), 0);
    proto_record rec;
    char body[64];
    assert_int_equal(e2e_records(r.cmd->body, r.cmd->body_len, &rec, 1), 1);
    assert_string_equal(e2e_body(&rec, body, sizeof body), "acked by a replica");
    e2e_reply_free(&r);
}

static void test_sync_master_without_replica(void **state)
{
    e2e_broker alone;
    char port[48];
    snprintf(port, sizeof port, "--haListenPort=%d", wire_free_port());
    const char *args[] = {"--brokerRole=SYNC_MASTER", port, NULL};
    assert_int_equal(e2e_broker_start(&alone, "e2e-repl-alone", args), 0);
    e2e_reply r = send_one(alone.proc.port, "AloneT", 0, "nobody to confirm");
    e2e_expect_code(&r, RS_SLAVE_NOT_AVAILABLE, NULL);
    assert_non_null(proto_cmd_get(r.cmd, "msgId")); /* stored all the same */
    int64_t offset = e2e_i64(r.cmd, "queueOffset");
    e2e_reply_free(&r);
    r = e2e_call_port(alone.proc.port, e2e_pull("g_alone", "AloneT", 0, offset, 1, 0, 0, NULL),
                  NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);
    assert_int_equal(e2e_broker_stop(&alone, 30000), 0);
}

/* Whether the thread whose stat file is path is stopped (state T). */
static bool thread_stopped(const char *path)
{
    char buf[512] = "";
    FILE *f = fopen(path, "r");
    if (!f)
        return true; /* gone */
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    const char *paren = strrchr(buf, ')');
    return paren && paren[1] == ' ' && paren[2] == 'T';
}

/*
 * Stop a process and wait until every thread of it has stopped: kill()
 * returns before a thread running on another core is halted.
 */
static void stop_process(pid_t pid)
{
    kill(pid, SIGSTOP);
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
    for (int i = 0; i < 1000; i++, e2e_sleep_ms(1)) {
        DIR *d = opendir(dir);
        if (!d)
            return;
        bool all = true;
        for (struct dirent *de; all && (de = readdir(d));) {
            if (de->d_name[0] == '.')
                continue;
            char path[400];
            snprintf(path, sizeof path, "%s/%s/stat", dir, de->d_name);
            all = thread_stopped(path);
        }
        closedir(d);
        if (all)
            return;
    }
    fail_msg("process %d did not stop", (int)pid);
}

static void test_sync_timeout_when_replicas_stall(void **state)
{
    assert_true(wait_in_sync(2));
    stop_process(r1.proc.pid);
    stop_process(r2.proc.pid);
    int64_t t0 = proto_mono_ms();
    e2e_reply r = send_one(master.proc.port, TOPIC, 2, "nobody confirms in time");
    int64_t waited = proto_mono_ms() - t0;
    kill(r1.proc.pid, SIGCONT);
    kill(r2.proc.pid, SIGCONT);
    e2e_expect_code(&r, E2E_RS_FLUSH_SLAVE_TIMEOUT, NULL);
    assert_non_null(proto_cmd_get(r.cmd, "msgId"));
    int64_t offset = e2e_i64(r.cmd, "queueOffset");
    e2e_reply_free(&r);
    assert_true(waited >= SYNC_FLUSH_TIMEOUT_MS - 100);
    assert_true(waited < SYNC_FLUSH_TIMEOUT_MS + 3000);
    /* Stored on the master, and on the replicas once they run again. */
    r = e2e_call_port(master.proc.port, e2e_pull("g_repl", TOPIC, 2, offset, 1, 0, 0, NULL), NULL, 0);
    e2e_expect_code(&r, RS_SUCCESS, NULL);
    e2e_reply_free(&r);
    assert_true(wait_caught_up(&r1));
    assert_true(wait_caught_up(&r2));
    assert_int_equal(e2e_max_offset(r2.proc.port, TOPIC, 2), offset + 1);
}

static void test_replica_refuses_writes(void **state)
{
    e2e_reply r = send_one(r1.proc.port, TOPIC, 0, "to a replica");
    e2e_expect_code_has(&r, RS_SERVICE_NOT_AVAILABLE, "replica");
    e2e_reply_free(&r);
    r = e2e_call_port(r1.proc.port, e2e_create_topic("NotOnReplica", 1, 1, 6), NULL, 0);
    e2e_expect_code(&r, RS_SYSTEM_ERROR,
                    "Can't modify topic or subscription group from slave broker, please "
                    "execute it from master broker.");
    e2e_reply_free(&r);
}

static void test_replica_sends_pulls_back_to_master(void **state)
{
    assert_true(wait_caught_up(&r1));
    int64_t max = e2e_max_offset(r1.proc.port, TOPIC, 3);
    /* Nothing new: with its master online a replica does not hold the pull. */
    e2e_reply r = e2e_call_port(r1.proc.port,
                            e2e_pull("g_repl", TOPIC, 3, max, 1, E2E_PULL_SUSPEND, 5000, NULL),
                            NULL, 0);
    e2e_expect_code(&r, RS_PULL_RETRY_IMMEDIATELY, NULL);
    assert_int_equal(e2e_i64(r.cmd, "suggestWhichBrokerId"), 0);
    e2e_reply_free(&r);
}

static void test_consumer_offsets(void **state)
{
    e2e_commit_offset(master.proc.port, "g_off", TOPIC, 0, 5);
    assert_true(wait_caught_up(&r1));
    assert_int_equal(e2e_query_offset(r1.proc.port, "g_off", TOPIC, 0), 5);
    /* A commit to the replica is held there; the master does not have it. */
    e2e_commit_offset(r1.proc.port, "g_off", TOPIC, 0, 7);
    assert_int_equal(e2e_query_offset(r1.proc.port, "g_off", TOPIC, 0), 7);
    assert_int_equal(e2e_query_offset(master.proc.port, "g_off", TOPIC, 0), 5);
    /* The master's next word wins again. */
    e2e_commit_offset(master.proc.port, "g_off", TOPIC, 0, 9);
    assert_true(wait_caught_up(&r1));
    assert_int_equal(e2e_query_offset(r1.proc.port, "g_off", TOPIC, 0), 9);
}

static void test_ha_status(void **state)
{
    assert_true(wait_in_sync(2));
    json_t *j = e2e_ha_status(master.proc.port);
    assert_true(json_is_true(json_object_get(j, "master")));
    json_t *list = json_object_get(j, "haConnectionInfo");
    assert_int_equal(json_array_size(list), 2);
    bool saw1 = false, saw2 = false;
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c) {
        const char *addr = json_string_value(json_object_get(c, "addr"));
        saw1 |= addr && strcmp(addr, r1.addr) == 0;
        saw2 |= addr && strcmp(addr, r2.addr) == 0;
        assert_true(json_is_true(json_object_get(c, "inSync")));
        assert_non_null(json_object_get(c, "slaveAckOffset"));
        assert_non_null(json_object_get(c, "diff"));
    }
    assert_true(saw1 && saw2);
    assert_true(e2e_jint(j, "masterCommitLogMaxOffset") > 0);
    json_decref(j);
}

static void test_replicas_hold_the_masters_queues(void **state)
{
    int fd = wire_connect(master.proc.port, 20000);
    assert_true(fd >= 0);
    for (int i = 0; i < BULK; i++) {
        char body[32];
        snprintf(body, sizeof body, "bulk %d", i);
        e2e_reply r = e2e_call(fd, e2e_send_v2(TOPIC, i % QUEUES, NULL), body, strlen(body));
        e2e_expect_code(&r, RS_SUCCESS, NULL);
        e2e_reply_free(&r);
    }
    close(fd);
    assert_true(wait_caught_up(&r1));
    assert_true(wait_caught_up(&r2));
    for (int q = 0; q < QUEUES; q++) {
        int64_t want = e2e_max_offset(master.proc.port, TOPIC, q);
        assert_int_equal(e2e_max_offset(r1.proc.port, TOPIC, q), want);
        assert_int_equal(e2e_max_offset(r2.proc.port, TOPIC, q), want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registration),
        cmocka_unit_test(test_sync_send_waits_for_a_replica),
        cmocka_unit_test(test_sync_master_without_replica),
        cmocka_unit_test(test_replica_refuses_writes),
        cmocka_unit_test(test_replica_sends_pulls_back_to_master),
        cmocka_unit_test(test_consumer_offsets),
        cmocka_unit_test(test_ha_status),
        cmocka_unit_test(test_sync_timeout_when_replicas_stall),
        cmocka_unit_test(test_replicas_hold_the_masters_queues),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
