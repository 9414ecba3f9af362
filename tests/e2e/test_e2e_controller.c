/*
 * End-to-end test of the controller inside mqnamesrv: three name servers
 * with enableControllerInNamesrv on free loopback ports, driven over raw
 * remoting frames by the test playing three brokers of one group (a
 * heartbeat thread speaks for the brokers marked alive). The first broker
 * becomes master at epoch 1; the master's sync state set changes, a stale
 * epoch is fenced; the master goes silent and another member takes over
 * at epoch 2 within its timeout; followers name the leader; the raft
 * leader is killed with SIGKILL and the next one keeps the state and the
 * brokers; mqadmin reads metadata and sync state sets and switches the
 * master; a broker outside the set cannot be elected.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e_time.h"
#include "testsupport.h"
#include "wire.h"

#define N_CTL 3
#define N_BROKERS 3
#define GROUP "broker-g"
#define TIMEOUT_MS 1500 /* the brokers' heartbeatTimeoutMills */

static wire_proc ctl[N_CTL];
static int ctl_port[N_CTL], raft_port[N_CTL];
static char peers[256];
static char *tmp;

/* What the heartbeat thread does and learns. */
static pthread_mutex_t hb_mu = PTHREAD_MUTEX_INITIALIZER;
static bool hb_alive[N_BROKERS + 1]; /* by broker id 1..3 */
static int64_t hb_offset[N_BROKERS + 1];
static int hb_port;                  /* the leader to heartbeat */
static int64_t hb_master = -1;       /* as the last answer said */
static int64_t hb_epoch;
static bool hb_stop;

/* ------------------------------------------------------------------ */
/* Requests                                                             */

static proto_cmd *req_new(int code, ...)
{
    proto_cmd *c = proto_cmd_request(code);
    va_list ap;
    va_start(ap, code);
    for (const char *k = va_arg(ap, const char *); k; k = va_arg(ap, const char *))
        proto_cmd_set(c, k, va_arg(ap, const char *));
    va_end(ap);
    return c;
}

/* One call on connection fd; the response (free it) or NULL. */
static proto_cmd *call_on(int fd, proto_cmd *req, const char *body, char **resp_body)
{
    proto_cmd *resp = NULL;
    uint8_t *frame = NULL;
    if (wire_call(fd, req, body, body ? strlen(body) : 0, &resp, &frame) != 0)
        return NULL;
    if (resp_body) {
        *resp_body = calloc(1, resp->body_len + 1);
        memcpy(*resp_body, resp->body, resp->body_len);
    }
    free(frame);
    return resp;
}

/* One call on a fresh connection. */
static proto_cmd *call(int port, proto_cmd *req, const char *body, char **resp_body)
{
    int fd = wire_connect(port, 4000);
    if (fd < 0) {
        proto_cmd_free(req);
        return NULL;
    }
    proto_cmd *resp = call_on(fd, req, body, resp_body);
    close(fd);
    return resp;
}

static void broker_addr(int64_t id, char *buf, size_t cap)
{
    snprintf(buf, cap, "127.0.0.1:%d", (int)(20910 + id));
}

static proto_cmd *register_broker(int port, int64_t id)
{
    char sid[8], addr[32], ha[32];
    snprintf(sid, sizeof sid, "%" PRId64, id);
    broker_addr(id, addr, sizeof addr);
    snprintf(ha, sizeof ha, "127.0.0.1:%d", (int)(20920 + id));
    return call(port, req_new(RC_CONTROLLER_REGISTER_BROKER, "clusterName", "c1", "brokerName",
                              GROUP, "brokerId", sid, "brokerAddress", addr, "haServerAddr", ha,
                              "invokeTime", "1", NULL),
                NULL, NULL);
}

static proto_cmd *heartbeat(int port, int64_t id, int64_t offset)
{
    char sid[8], addr[32], ha[32], off[24], to[16];
    snprintf(sid, sizeof sid, "%" PRId64, id);
    broker_addr(id, addr, sizeof addr);
    snprintf(ha, sizeof ha, "127.0.0.1:%d", (int)(20920 + id));
    snprintf(off, sizeof off, "%" PRId64, offset);
    snprintf(to, sizeof to, "%d", TIMEOUT_MS);
    return call(port, req_new(RC_BROKER_HEARTBEAT, "clusterName", "c1", "brokerName", GROUP,
                              "brokerAddr", addr, "brokerId", sid, "epoch", "0", "maxOffset", off,
                              "confirmOffset", off, "heartbeatTimeoutMills", to, "haServerAddr",
                              ha, NULL),
                NULL, NULL);
}

static int64_t field_i64(const proto_cmd *c, const char *key)
{
    int64_t v = -1;
    if (proto_cmd_get_i64(c, key, &v) != 0)
        return -1;
    return v;
}

static void *heartbeat_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&hb_mu);
        bool stop = hb_stop;
        int port = hb_port;
        bool alive[N_BROKERS + 1];
        int64_t offset[N_BROKERS + 1];
        memcpy(alive, hb_alive, sizeof alive);
        memcpy(offset, hb_offset, sizeof offset);
        pthread_mutex_unlock(&hb_mu);
        if (stop)
            return NULL;
        for (int64_t id = 1; id <= N_BROKERS; id++) {
            if (!alive[id] || port == 0)
                continue;
            proto_cmd *r = heartbeat(port, id, offset[id]);
            if (r && r->code == RS_SUCCESS) {
                pthread_mutex_lock(&hb_mu);
                hb_master = field_i64(r, "masterBrokerId");
                hb_epoch = field_i64(r, "masterEpoch");
                pthread_mutex_unlock(&hb_mu);
            }
            proto_cmd_free(r);
        }
        e2e_sleep_ms(250);
    }
}

static void hb_set(int64_t id, bool alive, int64_t offset)
{
    pthread_mutex_lock(&hb_mu);
    hb_alive[id] = alive;
    hb_offset[id] = offset;
    pthread_mutex_unlock(&hb_mu);
}

/* Wait (at most ms) until the heartbeat answers say master id at epoch. */
static bool wait_master(int64_t id, int64_t epoch, int ms)
{
    for (int waited = 0; waited < ms; waited += 50) {
        pthread_mutex_lock(&hb_mu);
        bool ok = hb_master == id && hb_epoch == epoch;
        pthread_mutex_unlock(&hb_mu);
        if (ok)
            return true;
        e2e_sleep_ms(50);
    }
    return false;
}

/* ------------------------------------------------------------------ */
/* The controllers                                                      */

static void start_ctl(int i)
{
    char port[32], p[300], self[32], store[512];
    snprintf(port, sizeof port, "--listenPort=%d", ctl_port[i]);
    snprintf(p, sizeof p, "--controllerPeers=%s", peers);
    snprintf(self, sizeof self, "--controllerSelfId=n%d", i);
    snprintf(store, sizeof store, "--controllerStorePath=%s/n%d", tmp, i);
    const char *args[] = {port, "--enableControllerInNamesrv=true", p, self, store, NULL};
    assert_int_equal(wire_start(&ctl[i], "mqnamesrv", ctl_port[i], args), 0);
}

/* The controller (index) that says it leads and names its own address; -1. */
static int find_leader(int ms, int skip)
{
    for (int waited = 0; waited < ms; waited += 100) {
        for (int i = 0; i < N_CTL; i++) {
            if (i == skip)
                continue;
            proto_cmd *r = call(ctl_port[i], req_new(RC_CONTROLLER_GET_METADATA_INFO, NULL),
                                NULL, NULL);
            char want[32];
            snprintf(want, sizeof want, "127.0.0.1:%d", ctl_port[i]);
            const char *addr = r ? proto_cmd_get(r, "controllerLeaderAddress") : NULL;
            bool leads = r && r->code == RS_SUCCESS && proto_cmd_get_bool(r, "isLeader", 0) &&
                         addr && strcmp(addr, want) == 0;
            proto_cmd_free(r);
            if (leads)
                return i;
        }
        e2e_sleep_ms(100);
    }
    return -1;
}

/* Run mqadmin with args; its stdout (malloc'ed) and exit status. */
static char *mqadmin(int *status, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/../tools/mqadmin %s 2>&1", LSMQ_BIN_DIR, args);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t cap = 1 << 16, len = 0;
    char *out = calloc(1, cap);
    size_t n;
    while ((n = fread(out + len, 1, cap - 1 - len, f)) > 0)
        len += n;
    int st = pclose(f);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

/* REGISTER_BROKER as brokerId 0 of GROUP on fd, then the cluster info's body (free it). */
static char *register_as_master(int fd, const char *addr, const char *ha_addr)
{
    proto_cmd *r = call_on(fd, req_new(RC_REGISTER_BROKER, "brokerName", GROUP, "brokerAddr", addr,
                                       "clusterName", "c1", "haServerAddr", ha_addr, "brokerId",
                                       "0", NULL),
                           NULL, NULL);
    assert_int_equal(r->code, RS_SUCCESS);
    proto_cmd_free(r);
    char *body = NULL;
    r = call_on(fd, req_new(RC_GET_BROKER_CLUSTER_INFO, NULL), NULL, &body);
    assert_int_equal(r->code, RS_SUCCESS);
    proto_cmd_free(r);
    return body;
}

/* mqadmin electMaster of broker `id` through the controller on port; its output, printed too. */
static char *mqadmin_elect(int port, int id, int *status)
{
    char args[256];
    snprintf(args, sizeof args, "electMaster -a 127.0.0.1:%d -c c1 -bn " GROUP " -b %d", port, id);
    char *out = mqadmin(status, args);
    printf("%s", out);
    return out;
}

/* ------------------------------------------------------------------ */
/* The test                                                             */

static void test_controller(void **state)
{
    (void)state;
    int64_t t0 = proto_mono_ms();
    tmp = test_tmpdir("ctl");
    for (int i = 0; i < N_CTL; i++) {
        ctl_port[i] = wire_free_port();
        raft_port[i] = wire_free_port();
    }
    snprintf(peers, sizeof peers, "n0=127.0.0.1:%d;n1=127.0.0.1:%d;n2=127.0.0.1:%d",
             raft_port[0], raft_port[1], raft_port[2]);
    for (int i = 0; i < N_CTL; i++)
        start_ctl(i);

    int leader = find_leader(15000, -1);
    assert_true(leader >= 0);
    int follower = (leader + 1) % N_CTL;
    char leader_addr[32];
    snprintf(leader_addr, sizeof leader_addr, "127.0.0.1:%d", ctl_port[leader]);

    /* A follower learns where the leader serves (replicated), and sends
     * brokers there. */
    bool knows = false;
    for (int waited = 0; !knows && waited < 3000; waited += 50) {
        proto_cmd *m = call(ctl_port[follower], req_new(RC_CONTROLLER_GET_METADATA_INFO, NULL),
                            NULL, NULL);
        const char *addr = m ? proto_cmd_get(m, "controllerLeaderAddress") : NULL;
        knows = addr && strcmp(addr, leader_addr) == 0;
        proto_cmd_free(m);
        if (!knows)
            e2e_sleep_ms(50);
    }
    assert_true(knows);
    proto_cmd *r = register_broker(ctl_port[follower], 1);
    assert_non_null(r);
    assert_int_equal(r->code, RS_CONTROLLER_NOT_LEADER);
    assert_string_equal(proto_cmd_get(r, "controllerLeaderAddress"), leader_addr);
    proto_cmd_free(r);

    /* Three brokers register; the first one alive becomes master, epoch 1. */
    for (int64_t id = 1; id <= N_BROKERS; id++) {
        r = register_broker(ctl_port[leader], id);
        assert_non_null(r);
        assert_int_equal(r->code, RS_SUCCESS);
        proto_cmd_free(r);
    }
    hb_port = ctl_port[leader];
    hb_set(1, true, 100);
    hb_set(2, true, 80);
    hb_set(3, true, 90);
    pthread_t hb;
    assert_int_equal(pthread_create(&hb, NULL, heartbeat_main, NULL), 0);
    assert_true(wait_master(1, 1, 4000));
    r = heartbeat(ctl_port[leader], 1, 100);
    assert_int_equal(r->code, RS_SUCCESS);
    assert_string_equal(proto_cmd_get(r, "masterAddress"), "127.0.0.1:20911");
    assert_string_equal(proto_cmd_get(r, "masterHaAddress"), "127.0.0.1:20921");
    assert_string_equal(proto_cmd_get(r, "syncStateSet"), "1");
    assert_string_equal(proto_cmd_get(r, "brokers"),
                        "1=127.0.0.1:20911,2=127.0.0.1:20912,3=127.0.0.1:20913");
    proto_cmd_free(r);

    /* The master widens its sync state set; an older epoch is fenced. */
    char *body = NULL;
    r = call(ctl_port[leader],
             req_new(RC_CONTROLLER_ALTER_SYNC_STATE_SET, "brokerName", GROUP, "masterBrokerId",
                     "1", "masterEpoch", "1", "invokeTime", "1", NULL),
             "{\"syncStateSet\":[1,2,3],\"syncStateSetEpoch\":1}", &body);
    assert_int_equal(r->code, RS_SUCCESS);
    assert_int_equal(field_i64(r, "newSyncStateSetEpoch"), 2);
    assert_string_equal(body, "{\"syncStateSet\":[1,2,3],\"syncStateSetEpoch\":2}");
    proto_cmd_free(r);
    free(body);
    r = call(ctl_port[leader],
             req_new(RC_CONTROLLER_ALTER_SYNC_STATE_SET, "brokerName", GROUP, "masterBrokerId",
                     "1", "masterEpoch", "0", NULL),
             "{\"syncStateSet\":[1],\"syncStateSetEpoch\":2}", NULL);
    assert_int_equal(r->code, RS_CONTROLLER_FENCED_MASTER_EPOCH);
    proto_cmd_free(r);

    /* The master falls silent: broker 3 (the highest offset) takes over. */
    int64_t silent_at = proto_mono_ms();
    hb_set(1, false, 100);
    assert_true(wait_master(3, 2, TIMEOUT_MS + 2000));
    printf("# new master %" PRId64 " ms after the old one fell silent\n",
           proto_mono_ms() - silent_at);

    /* The raft leader dies; another takes over with the state intact. */
    wire_kill9(&ctl[leader]);
    int killed = leader;
    leader = find_leader(15000, killed);
    assert_true(leader >= 0);
    pthread_mutex_lock(&hb_mu);
    hb_port = ctl_port[leader];
    pthread_mutex_unlock(&hb_mu);
    r = call(ctl_port[leader], req_new(RC_CONTROLLER_GET_REPLICA_INFO, "brokerName", GROUP, NULL),
             NULL, NULL);
    assert_int_equal(r->code, RS_SUCCESS);
    assert_int_equal(field_i64(r, "masterBrokerId"), 3);
    assert_int_equal(field_i64(r, "masterEpoch"), 2);
    assert_string_equal(proto_cmd_get(r, "syncStateSet"), "3");
    proto_cmd_free(r);
    /* The grace period and the heartbeats keep broker 3 master. */
    e2e_sleep_ms(TIMEOUT_MS + 1000);
    assert_true(wait_master(3, 2, 1000));

    /* mqadmin, through a follower. */
    int other = (leader + 1) % N_CTL == killed ? (leader + 2) % N_CTL : (leader + 1) % N_CTL;
    snprintf(leader_addr, sizeof leader_addr, "127.0.0.1:%d", ctl_port[leader]);
    char args[512];
    int st;
    snprintf(args, sizeof args, "getControllerMetaData -a '127.0.0.1:%d;127.0.0.1:1'",
             ctl_port[other]);
    char *out = mqadmin(&st, args);
    printf("%s", out);
    assert_int_equal(st, 0);
    char want[128];
    snprintf(want, sizeof want, "#ControllerLeaderAddress\t%s", leader_addr);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "#Peer:\tn0=127.0.0.1:"));
    free(out);

    /* The new master takes broker 2 into its set; mqadmin shows it. */
    r = call(ctl_port[leader],
             req_new(RC_CONTROLLER_ALTER_SYNC_STATE_SET, "brokerName", GROUP, "masterBrokerId",
                     "3", "masterEpoch", "2", NULL),
             "{\"syncStateSet\":[2,3],\"syncStateSetEpoch\":3}", NULL);
    assert_int_equal(r->code, RS_SUCCESS);
    proto_cmd_free(r);
    snprintf(args, sizeof args, "getSyncStateSet -a 127.0.0.1:%d -b " GROUP, ctl_port[other]);
    out = mqadmin(&st, args);
    printf("%s", out);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "#MasterBrokerId\t3\n#MasterAddr\t127.0.0.1:20913\n"
                                "#MasterEpoch\t2\n#SyncStateSetEpoch\t4\n#SyncStateSetNums\t2"));
    /* Broker 1 is still in the new leader's grace (its default timeout). */
    assert_non_null(strstr(out, "NotInSyncReplica:\tReplicaIdentity{brokerName='" GROUP
                                "', brokerId=1, brokerAddress='127.0.0.1:20911', alive="));
    free(out);
    snprintf(args, sizeof args, "getSyncStateSet -a 127.0.0.1:%d -b " GROUP " --json",
             ctl_port[other]);
    out = mqadmin(&st, args);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "\"masterBrokerId\":3"));
    free(out);

    /* A broker outside the set cannot be elected; one inside can. */
    out = mqadmin_elect(ctl_port[other], 1, &st);
    assert_int_equal(st, 1);
    assert_non_null(strstr(out, "CODE: 2012"));
    free(out);
    out = mqadmin_elect(ctl_port[other], 2, &st);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "#BrokerMasterAddr\t127.0.0.1:20912\n#MasterEpoch\t3"));
    free(out);
    assert_true(wait_master(2, 3, 2000));
    /* Straight to the leader too: a non-member, and an unknown group. */
    r = call(ctl_port[leader],
             req_new(RC_CONTROLLER_ELECT_MASTER, "clusterName", "c1", "brokerName", GROUP,
                     "brokerId", "3", "designateElect", "true", NULL),
             NULL, NULL);
    assert_int_equal(r->code, RS_CONTROLLER_ELECT_MASTER_FAILED);
    proto_cmd_free(r);
    r = call(ctl_port[leader],
             req_new(RC_CONTROLLER_ELECT_MASTER, "clusterName", "c1", "brokerName", "nope",
                     "brokerId", "1", NULL),
             NULL, NULL);
    assert_int_equal(r->code, RS_CONTROLLER_ELECT_MASTER_FAILED);
    proto_cmd_free(r);
    /* An unregistered broker's heartbeat. */
    r = call(ctl_port[leader],
             req_new(RC_BROKER_HEARTBEAT, "brokerName", GROUP, "brokerId", "9", NULL), NULL,
             NULL);
    assert_int_equal(r->code, RS_CONTROLLER_BROKER_NEED_TO_BE_REGISTERED);
    proto_cmd_free(r);

    /* Routes take brokerId 0 from the controller: the old master claiming
     * it is left out, the controller's master gets it. (One connection:
     * the name server forgets a broker whose registering connection closes.) */
    int ns_fd = wire_connect(ctl_port[other], 4000);
    assert_true(ns_fd >= 0);
    body = register_as_master(ns_fd, "127.0.0.1:20911", "127.0.0.1:20921");
    assert_null(strstr(body, "20911"));
    free(body);
    /* (Retried: this name server applies the election a moment after the leader.) */
    bool routed = false;
    for (int waited = 0; !routed && waited < 3000; waited += 100) {
        body = register_as_master(ns_fd, "127.0.0.1:20912", "127.0.0.1:20922");
        routed = strstr(body, "\"127.0.0.1:20912\"") != NULL; /* the only address, as 0 */
        if (!routed)
            printf("# cluster info: %s\n", body);
        free(body);
        if (!routed)
            e2e_sleep_ms(100);
    }
    assert_true(routed);
    /* getSyncStateSet -c: the cluster's groups come from the name server. */
    snprintf(args, sizeof args, "getSyncStateSet -a 127.0.0.1:%d -c c1 -n 127.0.0.1:%d",
             ctl_port[other], ctl_port[other]);
    out = mqadmin(&st, args);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "#brokerName\tbroker-g\n#MasterBrokerId\t2\n"));
    free(out);
    close(ns_fd);

    pthread_mutex_lock(&hb_mu);
    hb_stop = true;
    pthread_mutex_unlock(&hb_mu);
    pthread_join(hb, NULL);
    for (int i = 0; i < N_CTL; i++)
        if (i != killed)
            assert_int_equal(wire_stop(&ctl[i], 10000), 0);
    test_rmdir_free(tmp);
    printf("# controller test took %" PRId64 " ms\n", proto_mono_ms() - t0);
}

/* Controller keys that do not go together stop mqnamesrv with status 2. */
static void test_bad_config(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "--enableControllerInNamesrv=true --controllerSelfId=n0",
        "--enableControllerInNamesrv=true --controllerPeers=n0=127.0.0.1:1",
        "--enableControllerInNamesrv=true --controllerPeers=n0=127.0.0.1:1 --controllerSelfId=n5",
        "--enableElectUncleanMaster=true",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "%s/mqnamesrv --listenPort=0 %s >/dev/null 2>&1", LSMQ_BIN_DIR,
                 cases[i]);
        int st = system(cmd);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 2);
    }
    /* Upstream's controllerDLegerPeers shape is read as ours. */
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s/mqnamesrv --listenPort=0 --enableControllerInNamesrv=true "
             "--controllerDLegerPeers='n0-127.0.0.1:1;n1-127.0.0.1:2' "
             "--controllerDLegerSelfId=n5 2>&1", LSMQ_BIN_DIR);
    FILE *f = popen(cmd, "r");
    char line[512] = "";
    assert_non_null(fgets(line, sizeof line, f));
    assert_int_equal(WEXITSTATUS(pclose(f)), 2);
    assert_non_null(strstr(line, "'n0=127.0.0.1:1;n1=127.0.0.1:2'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_controller),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
