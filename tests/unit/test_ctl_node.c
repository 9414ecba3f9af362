/*
 * Three controllers in one process, each a raft node on a free loopback
 * port with a store in a temporary directory: a leader is elected;
 * commands submitted on it are applied identically everywhere; when it
 * stops the other two elect a new leader and keep taking commands; it
 * restarts from its store and catches up (by snapshot: the others have
 * compacted their logs meanwhile); a stale-epoch alter is refused; and
 * without a quorum nothing is accepted.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testsupport.h"

#include "clock.h"
#include "controller.h"
#include "errors.h"
#include "log.h"

#define N 3
#define SUBMIT_MS 5000
#define ELECT_WAIT_MS 10000
#define CONVERGE_WAIT_MS 10000

static char peers[256];
static char addrs[N][32];
static char *dirs[N];
static ctl_node *nodes[N];

static void pick_ports(void)
{
    int fds[N];
    size_t off = 0;
    for (int i = 0; i < N; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof(a);
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fds[i] >= 0);
        assert_int_equal(bind(fds[i], (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(getsockname(fds[i], (struct sockaddr *)&a, &len), 0);
        snprintf(addrs[i], sizeof(addrs[i]), "127.0.0.1:%u", ntohs(a.sin_port));
        off += (size_t)snprintf(peers + off, sizeof(peers) - off, "%sn%d=%s", i ? ";" : "", i,
                                addrs[i]);
    }
    for (int i = 0; i < N; i++)
        close(fds[i]);
}

static void start(int i)
{
    char id[CTL_ID_MAX + 1];
    snprintf(id, sizeof(id), "n%d", i);
    ctl_node_config cfg = {
        .self_id = id,
        .peers = peers,
        .store_dir = dirs[i],
        .election_timeout_ms = 1000,
        .heartbeat_timeout_ms = 100,
        .snapshot_threshold = 16,
        .snapshot_trailing = 4,
    };
    assert_int_equal(ctl_node_start(&cfg, &nodes[i]), 0);
}

static void stop(int i)
{
    ctl_node_stop(nodes[i]);
    nodes[i] = NULL;
}

static void sleep_ms(int ms)
{
    usleep((useconds_t)ms * 1000);
}

/* The node every running node agrees leads; fails after wait_ms. */
static int wait_leader(int64_t wait_ms)
{
    int64_t until = proto_mono_ms() + wait_ms;
    while (proto_mono_ms() < until) {
        int leader = -1, leaders = 0;
        for (int i = 0; i < N; i++)
            if (nodes[i] && ctl_node_is_leader(nodes[i])) {
                leader = i;
                leaders++;
            }
        bool agreed = leaders == 1;
        for (int i = 0; agreed && i < N; i++) {
            char id[CTL_ID_MAX + 1], want[CTL_ID_MAX + 1];
            snprintf(want, sizeof(want), "n%d", leader);
            if (nodes[i] && (!ctl_node_leader(nodes[i], id, NULL) || strcmp(id, want) != 0))
                agreed = false;
        }
        if (agreed)
            return leader;
        sleep_ms(20);
    }
    fail_msg("no leader within %lld ms", (long long)wait_ms);
    return -1;
}

/* Every running node's state, byte for byte the same; fails after wait_ms. */
static void wait_converged(int64_t wait_ms)
{
    int64_t until = proto_mono_ms() + wait_ms;
    while (proto_mono_ms() < until) {
        uint8_t *first = NULL;
        size_t first_len = 0;
        bool same = true;
        for (int i = 0; i < N; i++) {
            if (!nodes[i])
                continue;
            uint8_t *data;
            size_t len;
            assert_int_equal(ctl_node_state_encode(nodes[i], &data, &len), 0);
            if (!first) {
                first = data;
                first_len = len;
                continue;
            }
            if (len != first_len || memcmp(data, first, len) != 0)
                same = false;
            free(data);
        }
        free(first);
        if (same)
            return;
        sleep_ms(20);
    }
    fail_msg("states differ after %lld ms", (long long)wait_ms);
}

/*
 * Submit on the leader *leader. Should leadership move between finding the
 * leader and submitting (nothing was submitted then), find it again.
 */
static int submit(int *leader, const ctl_cmd *c, ctl_result *res)
{
    int rc = LSMQ_ENOTLEADER;
    for (int tries = 0; tries < 3 && rc == LSMQ_ENOTLEADER; tries++) {
        if (tries > 0)
            *leader = wait_leader(ELECT_WAIT_MS);
        rc = ctl_node_submit(nodes[*leader], c, SUBMIT_MS, res);
    }
    return rc;
}

static void do_register(int *leader, const char *name, int64_t id)
{
    ctl_cmd c;
    char addr[32];
    snprintf(addr, sizeof(addr), "10.1.0.%d:10911", (int)id);
    assert_int_equal(ctl_cmd_register(&c, name, id, addr), 0);
    ctl_result res;
    assert_int_equal(submit(leader, &c, &res), 0);
    assert_true(res.index > 0);
}

static void assert_group(int i, const char *name, uint64_t epoch, int64_t master,
                         size_t n_brokers, size_t n_sync)
{
    ctl_group g;
    assert_int_equal(ctl_node_query(nodes[i], name, &g), 0);
    assert_int_equal(g.epoch, epoch);
    assert_int_equal(g.master_id, master);
    assert_int_equal(g.n_brokers, n_brokers);
    assert_int_equal(g.n_sync, n_sync);
}

static void test_three_controllers(void **state)
{
    pick_ports();
    for (int i = 0; i < N; i++) {
        dirs[i] = test_tmpdir("ctl");
        start(i);
    }

    /* A leader, and the others say who it is. */
    int64_t t0 = proto_mono_ms();
    int leader = wait_leader(ELECT_WAIT_MS);
    print_message("leader n%d after %lld ms\n", leader, (long long)(proto_mono_ms() - t0));
    int follower = (leader + 1) % N;
    ctl_cmd c;
    ctl_result res;
    assert_int_equal(ctl_cmd_register(&c, "broker-a", 0, "10.1.0.0:10911"), 0);
    assert_int_equal(ctl_node_submit(nodes[follower], &c, SUBMIT_MS, &res), LSMQ_ENOTLEADER);
    char want[CTL_ID_MAX + 1];
    snprintf(want, sizeof(want), "n%d", leader);
    assert_string_equal(res.leader_id, want);
    assert_string_equal(res.leader_addr, addrs[leader]);

    /* A command that cannot be encoded never reaches raft. */
    ctl_cmd bad = c;
    bad.type = (ctl_cmd_type)7;
    assert_int_equal(submit(&leader, &bad, &res), LSMQ_EINVAL);

    /* Commands on the leader, applied on all three alike. */
    for (int64_t id = 0; id < 3; id++)
        do_register(&leader, "broker-a", id);
    do_register(&leader, "broker-b", 5);
    assert_int_equal(ctl_cmd_elect(&c, "broker-a", CTL_NO_BROKER), 0);
    assert_int_equal(submit(&leader, &c, &res), 0);
    assert_int_equal(res.epoch, 1);
    assert_int_equal(res.master_id, 0);
    const int64_t all[] = {0, 1, 2};
    assert_int_equal(ctl_cmd_alter_sync(&c, "broker-a", 0, 1, all, 3), 0);
    assert_int_equal(submit(&leader, &c, &res), 0);
    /* A refusal is an answer too, and changes nothing. */
    assert_int_equal(ctl_cmd_elect(&c, "nobody", CTL_NO_BROKER), 0);
    assert_int_equal(submit(&leader, &c, &res), LSMQ_ENOTFOUND);
    /* A controller's address, known everywhere once applied. */
    assert_int_equal(ctl_cmd_controller_addr(&c, "n1", "10.1.1.1:9876"), 0);
    assert_int_equal(submit(&leader, &c, &res), 0);
    wait_converged(CONVERGE_WAIT_MS);
    for (int i = 0; i < N; i++) {
        assert_group(i, "broker-a", 1, 0, 3, 3);
        assert_group(i, "broker-b", 0, CTL_NO_BROKER, 1, 0);
        ctl_group g;
        assert_int_equal(ctl_node_query(nodes[i], "nobody", &g), LSMQ_ENOTFOUND);
        /* Groups by index, in name order. */
        assert_int_equal(ctl_node_query_at(nodes[i], 0, &g), 0);
        assert_string_equal(g.name, "broker-a");
        assert_int_equal(ctl_node_query_at(nodes[i], 1, &g), 0);
        assert_string_equal(g.name, "broker-b");
        assert_int_equal(ctl_node_query_at(nodes[i], 2, &g), LSMQ_ENOTFOUND);
        char addr[CTL_ADDR_MAX + 1];
        assert_int_equal(ctl_node_controller_addr(nodes[i], "n1", addr), 0);
        assert_string_equal(addr, "10.1.1.1:9876");
        assert_int_equal(ctl_node_controller_addr(nodes[i], "n2", addr), LSMQ_ENOTFOUND);
    }

    /* A new master in epoch 2; the old master's alter with epoch 1 is fenced. */
    assert_int_equal(ctl_cmd_elect(&c, "broker-a", 1), 0);
    assert_int_equal(submit(&leader, &c, &res), 0);
    assert_int_equal(res.epoch, 2);
    assert_int_equal(res.master_id, 1);
    assert_int_equal(ctl_cmd_alter_sync(&c, "broker-a", 0, 1, all, 3), 0);
    assert_int_equal(submit(&leader, &c, &res), LSMQ_ESTALE);
    assert_int_equal(res.epoch, 2);
    assert_int_equal(ctl_cmd_alter_sync(&c, "broker-a", 1, 1, all, 3), 0);
    assert_int_equal(submit(&leader, &c, &res), LSMQ_ESTALE);
    wait_converged(CONVERGE_WAIT_MS);
    for (int i = 0; i < N; i++)
        assert_group(i, "broker-a", 2, 1, 3, 1);

    /* The leader goes: the other two elect one of them within seconds. */
    int old = leader;
    stop(old);
    t0 = proto_mono_ms();
    leader = wait_leader(ELECT_WAIT_MS);
    int64_t took = proto_mono_ms() - t0;
    print_message("new leader n%d after %lld ms\n", leader, (long long)took);
    assert_int_not_equal(leader, old);
    assert_true(took < ELECT_WAIT_MS);

    /* ...and keep taking commands: more than a snapshot's worth, so the
     * old leader's log falls behind what the others keep. */
    assert_int_equal(ctl_cmd_alter_sync(&c, "broker-a", 1, 2, all, 3), 0);
    assert_int_equal(submit(&leader, &c, &res), 0);
    for (int64_t id = 10; id < 10 + 24; id++)
        do_register(&leader, "broker-c", id);
    assert_int_equal(ctl_cmd_elect(&c, "broker-c", CTL_NO_BROKER), 0);
    assert_int_equal(submit(&leader, &c, &res), 0);
    assert_int_equal(res.master_id, 10);
    wait_converged(CONVERGE_WAIT_MS);

    /* The old leader restarts from its store and catches up. */
    start(old);
    wait_converged(CONVERGE_WAIT_MS);
    assert_group(old, "broker-a", 2, 1, 3, 3);
    assert_group(old, "broker-c", 1, 10, 24, 1);
    assert_true(ctl_node_applied_index(nodes[old]) >= res.index);
    leader = wait_leader(ELECT_WAIT_MS);
    do_register(&leader, "broker-b", 6);
    wait_converged(CONVERGE_WAIT_MS);
    assert_group(old, "broker-b", 0, CTL_NO_BROKER, 2, 0);

    /* All three stop and start again: the same state from their stores. */
    uint8_t *before;
    size_t before_len;
    assert_int_equal(ctl_node_state_encode(nodes[0], &before, &before_len), 0);
    for (int i = 0; i < N; i++)
        stop(i);
    for (int i = 0; i < N; i++)
        start(i);
    leader = wait_leader(ELECT_WAIT_MS);
    do_register(&leader, "broker-b", 6); /* the same again: no change */
    wait_converged(CONVERGE_WAIT_MS);
    uint8_t *after;
    size_t after_len;
    assert_int_equal(ctl_node_state_encode(nodes[leader], &after, &after_len), 0);
    assert_int_equal(after_len, before_len);
    assert_memory_equal(after, before, before_len);
    free(before);
    free(after);

    /* One node alone has no quorum: nothing is accepted, and it says so. */
    int alone = leader;
    for (int i = 0; i < N; i++)
        if (i != alone)
            stop(i);
    assert_int_equal(ctl_cmd_elect(&c, "broker-b", CTL_NO_BROKER), 0);
    int rc = ctl_node_submit(nodes[alone], &c, 2500, &res);
    print_message("alone: %s\n", lsmq_strerror(rc));
    assert_true(rc == LSMQ_ETIMEDOUT || rc == LSMQ_ENOTLEADER);
    assert_group(alone, "broker-b", 0, CTL_NO_BROKER, 2, 0);
    stop(alone);

    for (int i = 0; i < N; i++)
        test_rmdir_free(dirs[i]);
}

static void test_bad_config(void **state)
{
    char *dir = test_tmpdir("ctl-cfg");
    ctl_node *n = NULL;
    ctl_node_config cfg = {.self_id = "n3", .peers = "n0=127.0.0.1:1;n1=127.0.0.1:2",
                           .store_dir = dir};
    assert_int_equal(ctl_node_start(&cfg, &n), LSMQ_EINVAL); /* not in the list */
    cfg.self_id = "n0";
    cfg.peers = "n0=127.0.0.1:1;n0=127.0.0.1:2";
    assert_int_equal(ctl_node_start(&cfg, &n), LSMQ_EINVAL); /* id twice */
    cfg.peers = "n0=127.0.0.1:1;n1=127.0.0.1:1";
    assert_int_equal(ctl_node_start(&cfg, &n), LSMQ_EINVAL); /* address twice */
    cfg.peers = "n0=127.0.0.1";
    assert_int_equal(ctl_node_start(&cfg, &n), LSMQ_EINVAL); /* no port */
    cfg.peers = "x0=127.0.0.1:1";
    cfg.self_id = "x0";
    assert_int_equal(ctl_node_start(&cfg, &n), LSMQ_EINVAL); /* not nK */
    cfg.peers = "";
    assert_int_equal(ctl_node_start(&cfg, &n), LSMQ_EINVAL);
    assert_null(n);

    /* Its port taken by someone else: raft cannot start, nothing is left over. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    char taken[64];
    snprintf(taken, sizeof(taken), "n0=127.0.0.1:%u", ntohs(a.sin_port));
    cfg.peers = taken;
    cfg.self_id = "n0";
    assert_int_equal(ctl_node_start(&cfg, &n), LSMQ_EIO);
    assert_null(n);
    close(fd);
    test_rmdir_free(dir);
}

int main(void)
{
    if (!getenv("LSMQ_LOG_LEVEL"))
        proto_log_set_level(PROTO_LOG_INFO);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_three_controllers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
