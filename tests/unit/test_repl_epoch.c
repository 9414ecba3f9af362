/*
 * test_repl_epoch: failover between stores, in one process over real
 * sockets on 127.0.0.1. Each store ("node") runs as a master (engine +
 * repl_master at an epoch) or a replica (repl_replica_prepare, engine with
 * config.replica, repl_replica_start), and changes role between scenes as
 * a broker rebuilt by its controller would.
 *
 *   - promotion and rebase: a replica promoted at epoch 2 writes its
 *     promotion record and more; the old master, back as its replica,
 *     stands exactly at the promotion point and is rebased (no
 *     checkpoint), then holds exactly the new master's store and history;
 *   - divergence: the old master wrote batches its replica never got; back
 *     as a replica of the promoted one it is sent to a checkpoint, and its
 *     extra batches are gone;
 *   - stale masters: a replica told to follow epoch 2 refuses a master of
 *     epoch 1, and a master asked by a store of a newer epoch answers
 *     "stale master epoch"; neither side streams; a master drops a
 *     follower whose ACK names a newer epoch than its own;
 *   - the acknowledgement set: with {R1} of two replicas, R2 away holds
 *     nothing back and R1 away holds the acknowledged sequence; an empty
 *     set acknowledges every write as it is written;
 *   - the epoch history header field decodes what it encodes and refuses junk.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "repl.h"
#include "repl_internal.h"
#include "testsupport.h"
#include "wire.h"

#define WAIT_MS 60000

/* ------------------------------------------------------------------ */
/* Nodes                                                                */

typedef struct node {
    char *dir;
    const char *self;         /* the address it announces as a replica */
    engine *e;
    repl_master *m;           /* as a master */
    repl_replica *r;          /* as a replica */
    char addr[64];            /* its haListenPort, as a master */
    atomic_uint_fast64_t acked;
    atomic_int needed;
} node;

static void acked_cb(void *ctx, uint64_t seq)
{
    node *n = ctx;
    assert_true(seq > atomic_load(&n->acked)); /* it only moves up */
    atomic_store(&n->acked, seq);
}

static void needed_cb(void *ctx)
{
    node *n = ctx;
    atomic_fetch_add(&n->needed, 1);
}

static void node_init(node *n, const char *tag, const char *self)
{
    memset(n, 0, sizeof *n);
    n->dir = test_tmpdir(tag);
    n->self = self;
}

static void as_master(node *n, uint64_t epoch)
{
    repl_master_config mc;
    engine_config ec;
    char err[256] = "";

    repl_master_config_init(&mc);
    char *work = proto_xasprintf("%s/ha", n->dir);
    mc.host = "127.0.0.1";
    mc.work_dir = work;
    mc.epoch = epoch;
    mc.acked_cb = acked_cb;
    mc.ctx = n;
    mc.heartbeat_ms = 200;
    mc.dead_after_ms = 2000;
    assert_int_equal(repl_master_create(&mc, &n->m), 0);
    free(work);
    atomic_store(&n->acked, 0);
    test_engine_config(&ec, n->dir);
    assert_int_equal(engine_config_add_extension(&ec, repl_master_extension(n->m)), 0);
    n->e = test_engine_open(&ec);
    int rc = repl_master_start(n->m, n->e, err, sizeof err);
    if (rc != 0)
        fail_msg("repl_master_start: %s", err);
    assert_int_equal(repl_master_epoch(n->m), epoch);
    snprintf(n->addr, sizeof n->addr, "127.0.0.1:%d", repl_master_port(n->m));
}

static void replica_config(node *n, const node *master, uint64_t epoch, repl_replica_config *rc)
{
    repl_replica_config_init(rc);
    rc->store_path = n->dir;
    rc->master_addr = master->addr;
    rc->self_addr = n->self;
    rc->epoch = epoch;
    rc->retry_min_ms = 20;
    rc->retry_max_ms = 200;
    rc->heartbeat_ms = 200;
    rc->dead_after_ms = 2000;
    rc->prepare_timeout_ms = 30000;
    rc->checkpoint_needed_cb = needed_cb;
    rc->ctx = n;
}

/* Prepare (a checkpoint only when the store has no position), open, follow. *seq: prepare's. */
static void as_replica(node *n, const node *master, uint64_t epoch, bool refetch, uint64_t *seq)
{
    repl_replica_config rc;
    engine_config ec;
    char err[256] = "";
    uint64_t at = 0;

    replica_config(n, master, epoch, &rc);
    int rv = repl_replica_prepare(&rc, refetch, &at, err, sizeof err);
    if (rv != 0)
        fail_msg("repl_replica_prepare: %s (%s)", err, lsmq_strerror(rv));
    assert_true(at > 0);
    if (seq)
        *seq = at;
    atomic_store(&n->needed, 0);
    test_engine_config(&ec, n->dir);
    ec.replica = true;
    n->e = test_engine_open(&ec);
    assert_int_equal(repl_replica_start(&rc, n->e, &n->r), 0);
}

static void node_stop(node *n)
{
    if (n->r)
        repl_replica_stop(n->r);
    n->r = NULL;
    if (n->m)
        repl_master_stop(n->m);
    if (n->e)
        engine_close(n->e);
    n->e = NULL;
    repl_master_destroy(n->m);
    n->m = NULL;
}

static void node_free(node *n)
{
    node_stop(n);
    test_rmdir_free(n->dir);
}

/* Until the replica has applied all the master wrote, at the master's epoch. */
static void wait_caught_up(node *replica, node *master)
{
    int64_t until = proto_mono_ms() + WAIT_MS;
    repl_replica_state st;

    for (;;) {
        uint64_t want = engine_last_sequence(master->e);
        assert_int_equal(repl_replica_status(replica->r, &st), 0);
        if (st.applied_seq == want && st.connected && st.epoch == repl_master_epoch(master->m))
            return;
        if (proto_mono_ms() > until)
            fail_msg("replica at epoch %" PRIu64 " seq %" PRIu64 ", master at %" PRIu64
                     " seq %" PRIu64 " (connected %d)",
                     st.epoch, st.applied_seq, repl_master_epoch(master->m), want, st.connected);
        usleep(5000);
    }
}

static void wait_needed(node *n)
{
    int64_t until = proto_mono_ms() + WAIT_MS;
    while (atomic_load(&n->needed) == 0 && proto_mono_ms() < until)
        usleep(5000);
    assert_int_equal(atomic_load(&n->needed), 1);
}

static void wait_acked(node *master, uint64_t want)
{
    int64_t until = proto_mono_ms() + WAIT_MS;
    while ((repl_master_acked(master->m) < want || atomic_load(&master->acked) < want) &&
           proto_mono_ms() < until)
        usleep(5000);
    assert_true(repl_master_acked(master->m) >= want);
    assert_true(atomic_load(&master->acked) >= want); /* acked_cb said so too */
}

/* The same store and the same epoch history. */
static void assert_same(engine *a, engine *b)
{
    engine_epoch_entry ha[ENGINE_EPOCHS_KEPT], hb[ENGINE_EPOCHS_KEPT];
    size_t na, nb;

    assert_int_equal(test_store_diff(a, b, 10), 0);
    assert_int_equal(engine_next_log_position(a), engine_next_log_position(b));
    assert_int_equal(engine_epoch_history(a, ha, &na), 0);
    assert_int_equal(engine_epoch_history(b, hb, &nb), 0);
    assert_int_equal(na, nb);
    assert_memory_equal(ha, hb, na * sizeof *ha);
    assert_int_equal(test_index_consistency(b, 10), 0);
}

static void position(engine *e, uint64_t *epoch, uint64_t *seq)
{
    assert_int_equal(engine_position(e, epoch, seq), 0);
}

/* ------------------------------------------------------------------ */
/* Load                                                                 */

static const char *const TOPICS[] = {"EpochA", "EpochB"};

static uint64_t append_some(engine *e, int n, int salt)
{
    engine_append_result res;
    char body[64], props[96];

    for (int i = 0; i < n; i++) {
        snprintf(body, sizeof body, "body %d/%d", salt, i);
        snprintf(props, sizeof props, "KEYS\001k%d\002UNIQ_KEY\001u%d-%d\002", i % 31, salt, i);
        engine_msg msg = test_msg(body, props);
        const char *t = TOPICS[i % 2];
        assert_int_equal(engine_append_wait(e, t, strlen(t), (uint32_t)(i % 4), &msg, 1, &res), 0);
        assert_int_equal(res.status, 0);
    }
    return engine_last_sequence(e);
}

static void create_topics(engine *e)
{
    test_topic_create(e, TOPICS[0], 4);
    test_topic_create(e, TOPICS[1], 4);
}

/* M (epoch 1) with R following it, both holding the same n messages. */
static void group_up(node *m, node *r, int n)
{
    node_init(m, "epoch-m", "127.0.0.1:20911");
    node_init(r, "epoch-r", "127.0.0.1:20912");
    as_master(m, 1);
    create_topics(m->e);
    append_some(m->e, n, 1);
    as_replica(r, m, 1, false, NULL);
    wait_caught_up(r, m);
}

/* ------------------------------------------------------------------ */
/* Scenarios                                                            */

static void test_promotion_and_rebase(void **state)
{
    node m, r;
    uint64_t epoch, seq, m_seq, r_seq;
    group_up(&m, &r, 300);

    /* The replica stands in M's log at epoch 1, where M stands. */
    position(r.e, &epoch, &r_seq);
    assert_int_equal(epoch, 1);
    position(m.e, &epoch, &m_seq);
    assert_int_equal(epoch, 1);
    assert_int_equal(r_seq, m_seq);
    node_stop(&m);
    node_stop(&r);

    /* R promoted at epoch 2: its promotion record names where it stood. */
    as_master(&r, 2);
    engine_epoch_entry h[ENGINE_EPOCHS_KEPT];
    size_t n;
    assert_int_equal(engine_epoch_history(r.e, h, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(h[1].epoch, 2);
    assert_int_equal(h[1].prev_epoch, 1);
    assert_int_equal(h[1].prev_end_seq, m_seq);
    assert_int_equal(h[1].start_seq, engine_last_sequence(r.e));
    position(r.e, &epoch, &seq);
    assert_int_equal(epoch, 2);
    append_some(r.e, 200, 2);

    /* M back as R's replica: it keeps its store and is rebased. */
    as_replica(&m, &r, 2, false, &seq);
    assert_int_equal(seq, m_seq);
    wait_caught_up(&m, &r);
    assert_int_equal(atomic_load(&m.needed), 0);
    position(m.e, &epoch, &seq);
    assert_int_equal(epoch, 2);
    assert_int_equal(seq, engine_last_sequence(r.e));
    append_some(r.e, 50, 3);
    wait_caught_up(&m, &r);
    assert_same(r.e, m.e);

    /* A restart keeps the rebased position: it follows on, no checkpoint. */
    node_stop(&m);
    append_some(r.e, 20, 4);
    as_replica(&m, &r, 2, false, NULL);
    wait_caught_up(&m, &r);
    assert_int_equal(atomic_load(&m.needed), 0);
    assert_same(r.e, m.e);
    node_free(&m);
    node_free(&r);
}

static void test_divergence(void **state)
{
    node m, r;
    uint64_t epoch, seq, m_seq;
    group_up(&m, &r, 200);

    /* R stops following; M writes on (batches R never gets), then stops. */
    node_stop(&r);
    m_seq = append_some(m.e, 100, 5);
    node_stop(&m);

    as_master(&r, 2);
    append_some(r.e, 100, 6);

    /* M keeps its store at prepare, but HELLO sends it to a checkpoint. */
    as_replica(&m, &r, 2, false, &seq);
    assert_int_equal(seq, m_seq);
    wait_needed(&m);
    repl_replica_state st;
    assert_int_equal(repl_replica_status(m.r, &st), 0);
    assert_true(st.checkpoint_needed);
    assert_false(st.connected);
    node_stop(&m);

    as_replica(&m, &r, 2, true, &seq);
    position(m.e, &epoch, &seq);
    assert_int_equal(epoch, 2);
    append_some(r.e, 30, 7);
    wait_caught_up(&m, &r);
    assert_same(r.e, m.e); /* M's extra batches are gone */
    assert_int_equal(atomic_load(&m.needed), 0);
    node_free(&m);
    node_free(&r);
}

/* The replica neither streams nor needs a checkpoint, and applies nothing. */
static void assert_refused(node *replica, uint64_t applied)
{
    repl_replica_state st;
    usleep(800 * 1000);
    assert_int_equal(repl_replica_status(replica->r, &st), 0);
    assert_false(st.connected);
    assert_false(st.checkpoint_needed);
    assert_int_equal(st.applied_seq, applied);
    assert_int_equal(atomic_load(&replica->needed), 0);
}

static void test_stale_master(void **state)
{
    node m, r;
    uint64_t seq;
    group_up(&m, &r, 50);
    node_stop(&r);

    /* Told to follow epoch 2 or newer, R refuses M at epoch 1. */
    as_replica(&r, &m, 2, false, &seq);
    append_some(m.e, 20, 8);
    assert_refused(&r, seq);
    node_stop(&r);

    /* A store of epoch 2 asks M (epoch 1): M is the stale one (962). */
    as_master(&r, 2);
    node_stop(&r);
    as_replica(&r, &m, 0, false, NULL);
    assert_refused(&r, engine_applied_sequence(r.e));

    /* A follower whose ACK comes from a newer epoch: M drops it at once. */
    int fd = wire_connect(repl_master_port(m.m), 5000);
    assert_true(fd >= 0);
    proto_cmd *hello = proto_cmd_request(REPL_RC_HELLO);
    uint64_t at = engine_last_sequence(m.e);
    repl__set_u64(hello, REPL_F_APPLIED_SEQ, at);
    repl__set_u64(hello, REPL_F_EPOCH, 1);
    proto_cmd *resp;
    uint8_t *frame;
    assert_int_equal(wire_call(fd, hello, NULL, 0, &resp, &frame), 0);
    assert_int_equal(resp->code, RS_SUCCESS);
    proto_cmd_free(resp);
    free(frame);
    assert_int_equal(repl_master_replicas(m.m), 1);
    proto_cmd *ack = proto_cmd_request(REPL_RC_ACK);
    ack->flag = PROTO_FLAG_ONEWAY;
    repl__set_u64(ack, REPL_F_APPLIED_SEQ, at);
    repl__set_u64(ack, REPL_F_EPOCH, 2);
    assert_true(wire_send(fd, ack, NULL, 0) >= 0);
    proto_cmd_free(ack);
    int64_t until = proto_mono_ms() + 1000; /* well before dead_after_ms */
    while (repl_master_replicas(m.m) == 1 && proto_mono_ms() < until)
        usleep(5000);
    assert_int_equal(repl_master_replicas(m.m), 0);
    close(fd);

    /* The controller names a master of the right epoch: it is followed. */
    node_stop(&m);
    as_master(&m, 3); /* M at epoch 3 saw nothing of epoch 2: R diverged */
    repl_replica_set_master_epoch(r.r, m.addr, 3);
    wait_needed(&r);
    node_free(&m);
    node_free(&r);
}

static void test_ack_set(void **state)
{
    node m, r1, r2;
    group_up(&m, &r1, 20);
    node_init(&r2, "epoch-r2", "127.0.0.1:20913");
    as_replica(&r2, &m, 1, false, NULL);
    wait_caught_up(&r2, &m);

    const char *set[] = {r1.self};
    repl_master_set_ack_set(m.m, set, 1);
    wait_acked(&m, engine_last_sequence(m.e));

    /* R2 is not in the set: without it every write is still acknowledged. */
    node_stop(&r2);
    uint64_t last = append_some(m.e, 20, 9);
    assert_int_equal(repl_master_last_seq(m.m), last);
    wait_acked(&m, last);

    /* R1 is: away, it holds the acknowledged sequence where it left it. */
    node_stop(&r1);
    uint64_t held = repl_master_acked(m.m);
    last = append_some(m.e, 20, 10);
    usleep(500 * 1000);
    assert_int_equal(repl_master_acked(m.m), held);
    as_replica(&r1, &m, 1, false, NULL);
    wait_acked(&m, last);

    /* The set is the master alone: each write is acknowledged as written. */
    node_stop(&r1);
    repl_master_set_ack_set(m.m, NULL, 0);
    last = append_some(m.e, 5, 11);
    wait_acked(&m, last);
    node_free(&m);
    node_free(&r1);
    node_free(&r2);
}

static void test_history_text(void **state)
{
    engine_epoch_entry h[3] = {{1, 5, 0, 4}, {2, 90, 1, 88}, {7, 1000, 2, 999}};
    engine_epoch_entry back[ENGINE_EPOCHS_KEPT];
    char text[REPL_HISTORY_TEXT_MAX];
    size_t n;

    repl__history_format(text, sizeof text, h, 3);
    assert_string_equal(text, "1:5:0:4,2:90:1:88,7:1000:2:999");
    assert_int_equal(repl__history_parse(text, back, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(back, h, sizeof h);
    assert_int_equal(repl__history_parse("", back, &n), 0);
    assert_int_equal(n, 0);
    const char *junk[] = {"1:2:3", "1:2:3:4,", "1:2:3:x", "2:1:1:1,1:1:1:1", "-1:2:3:4",
                          "1:2:3:4;2:3:4:5"};
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++)
        assert_int_equal(repl__history_parse(junk[i], back, &n), LSMQ_ECORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_history_text),
        cmocka_unit_test(test_promotion_and_rebase),
        cmocka_unit_test(test_divergence),
        cmocka_unit_test(test_stale_master),
        cmocka_unit_test(test_ack_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
