/*
 * test_repl: replication in one process, over real sockets on 127.0.0.1.
 *
 * A master engine (with the index and replication's commit hook) serves on
 * a free port; a replica store is made with repl_replica_prepare (a
 * checkpoint of the master fetched file by file) and follows with
 * repl_replica_start. After each scenario the replica must hold exactly the
 * master's store: every column family compared key by key and value by
 * value (messages, index entries, topics, groups, consumer offsets,
 * high-water marks; test_store_diff), plus the queues' offsets and the next
 * log position as the replica publishes them.
 *
 *   - 12,000 messages over several topics and queues, topic and group
 *     changes, offset commits and a topic deletion stream and match; the
 *     sequence acknowledged to acked_cb reaches every append's last_seq;
 *   - the link cut mid-stream, from both sides (replica stopped and its
 *     store reopened; master stopped and started again) while appends go
 *     on: the replica resumes from its applied sequence, no gap, no
 *     double apply (the engine refuses a batch that does not follow);
 *   - a checkpoint chunk damaged in transit is detected and fetched again;
 *   - a replica behind the retained WAL gets CHECKPOINT_NEEDED, reports
 *     it, and catches up once its store is made again;
 *   - a peer that goes silent without closing is dropped within
 *     dead_after_ms, on either side (a master that stops answering: the
 *     replica reconnects);
 *   - a batch the store cannot apply stops replication, visibly;
 *   - batches and heartbeats of an epoch older than the master's answer
 *     to HELLO break the link (applying nothing), not replication;
 *   - the bodies of the protocol decode what they encode and refuse junk.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "engine_ext.h"
#include "repl.h"
#include "repl_internal.h"
#include "testsupport.h"
#include "wire.h"

#define WAIT_MS 60000

/* ------------------------------------------------------------------ */
/* Fixture                                                              */

typedef struct cluster {
    char *master_dir;
    char *replica_dir;
    engine *master;
    engine *replica;
    repl_master *m;
    repl_replica *r;
    char master_addr[64];
    atomic_uint_fast64_t acked;     /* from acked_cb */
    atomic_int needed;              /* checkpoint_needed_cb calls */
    uint32_t wal_ttl_seconds;
    uint32_t wal_size_limit_mb;
} cluster;

static void acked_cb(void *ctx, uint64_t seq)
{
    cluster *c = ctx;
    uint64_t before = atomic_load(&c->acked);
    assert_true(seq > before); /* it only moves up */
    atomic_store(&c->acked, seq);
}

static void needed_cb(void *ctx)
{
    cluster *c = ctx;
    atomic_fetch_add(&c->needed, 1);
}

static void master_open(cluster *c)
{
    engine_config ec;
    repl_master_config mc;

    if (!c->m) {
        repl_master_config_init(&mc);
        char *work = proto_xasprintf("%s/ha", c->master_dir);
        mc.host = "127.0.0.1";
        mc.port = 0;
        mc.work_dir = work;
        mc.acked_cb = acked_cb;
        mc.ctx = c;
        mc.heartbeat_ms = 200;
        mc.dead_after_ms = 2000;
        assert_int_equal(repl_master_create(&mc, &c->m), 0);
        free(work);
    }
    test_engine_config(&ec, c->master_dir);
    if (c->wal_ttl_seconds || c->wal_size_limit_mb) {
        ec.wal_ttl_seconds = c->wal_ttl_seconds;
        ec.wal_size_limit_mb = c->wal_size_limit_mb;
    }
    assert_int_equal(engine_config_add_extension(&ec, repl_master_extension(c->m)), 0);
    c->master = test_engine_open(&ec);
}

static void master_start(cluster *c)
{
    char err[256] = "";
    int rc = repl_master_start(c->m, c->master, err, sizeof err);
    if (rc != 0)
        fail_msg("repl_master_start: %s", err);
    snprintf(c->master_addr, sizeof c->master_addr, "127.0.0.1:%d", repl_master_port(c->m));
}

static void replica_config(cluster *c, repl_replica_config *rc)
{
    repl_replica_config_init(rc);
    rc->store_path = c->replica_dir;
    rc->master_addr = c->master_addr;
    rc->self_addr = "127.0.0.1:20911";
    rc->retry_min_ms = 20;
    rc->retry_max_ms = 200;
    rc->heartbeat_ms = 200;
    rc->dead_after_ms = 2000;
    rc->prepare_timeout_ms = 30000;
    rc->checkpoint_needed_cb = needed_cb;
    rc->ctx = c;
}

/* Prepare (fetching a checkpoint when needed), open and follow. *seq: prepare's answer. */
static void replica_open(cluster *c, bool refetch, uint64_t *seq)
{
    repl_replica_config rc;
    engine_config ec;
    char err[256] = "";
    uint64_t applied = 0;

    replica_config(c, &rc);
    int rv = repl_replica_prepare(&rc, refetch, &applied, err, sizeof err);
    if (rv != 0)
        fail_msg("repl_replica_prepare: %s (%s)", err, lsmq_strerror(rv));
    assert_true(applied > 0);
    if (seq)
        *seq = applied;
    test_engine_config(&ec, c->replica_dir);
    ec.replica = true;
    c->replica = test_engine_open(&ec);
    assert_int_equal(engine_applied_sequence(c->replica), applied);
    assert_int_equal(repl_replica_start(&rc, c->replica, &c->r), 0);
}

static void replica_close(cluster *c)
{
    repl_replica_stop(c->r);
    c->r = NULL;
    engine_close(c->replica);
    c->replica = NULL;
}

static void cluster_up(cluster *c)
{
    c->master_dir = test_tmpdir("repl-master");
    c->replica_dir = test_tmpdir("repl-replica");
    master_open(c);
    master_start(c);
}

static void cluster_down(cluster *c)
{
    if (c->r || c->replica)
        replica_close(c);
    repl_master_stop(c->m);
    engine_close(c->master);
    repl_master_destroy(c->m);
    test_rmdir_free(c->master_dir);
    test_rmdir_free(c->replica_dir);
}

/* Wait until the replica has applied everything the master committed. */
static void wait_caught_up(cluster *c)
{
    int64_t until = proto_mono_ms() + WAIT_MS;
    uint64_t want = 0;
    repl_replica_state st;

    for (;;) {
        want = engine_last_sequence(c->master);
        assert_int_equal(repl_replica_status(c->r, &st), 0);
        if (st.applied_seq == want)
            return;
        if (proto_mono_ms() > until)
            fail_msg("replica at seq %" PRIu64 ", master at %" PRIu64 " (connected %d)",
                     st.applied_seq, want, st.connected);
        usleep(5000);
    }
}

/* ------------------------------------------------------------------ */
/* Comparing stores                                                     */

/* The replica holds exactly the master's store. Returns the messages it holds. */
static size_t compare_stores(engine *master, engine *replica)
{
    engine_topic_config *topics;
    size_t n, msgs = 0;

    /* Every family, key by key (but the replica's own applied sequence). */
    assert_int_equal(test_store_diff(master, replica, 10), 0);
    /* And what the replica publishes to pulls moved with its applies. */
    assert_int_equal(engine_topic_list(master, &topics, &n), 0);
    for (size_t i = 0; i < n; i++) {
        for (uint32_t q = 0; q < topics[i].read_queue_nums; q++) {
            uint64_t mmin, mmax, rmin, rmax;
            assert_int_equal(engine_queue_offsets_by_id(master, topics[i].topic_id, q, &mmin,
                                                        &mmax), 0);
            assert_int_equal(engine_queue_offsets_by_id(replica, topics[i].topic_id, q, &rmin,
                                                        &rmax), 0);
            assert_int_equal(mmin, rmin);
            assert_int_equal(mmax, rmax);
            msgs += mmax - mmin;
        }
    }
    engine_free(topics);
    assert_int_equal(engine_next_log_position(master), engine_next_log_position(replica));
    assert_int_equal(test_index_consistency(replica, 10), 0);
    return msgs;
}

/* ------------------------------------------------------------------ */
/* Load                                                                 */

static const char *const TOPICS[] = {"ReplA", "ReplB", "ReplC"};
#define N_TOPICS 3
#define QUEUES 4

/* n messages in batches of up to 8 over the topics and queues; the last append's last_seq. */
static uint64_t append_some(engine *e, int n, int salt)
{
    engine_append_result res;
    uint64_t last = 0;
    char body[96], props[96];

    for (int i = 0; i < n;) {
        int batch = 1 + (i + salt) % 8;
        if (batch > n - i)
            batch = n - i;
        engine_msg msgs[8];
        for (int k = 0; k < batch; k++) {
            snprintf(body, sizeof body, "body %d/%d", salt, i + k);
            snprintf(props, sizeof props, "KEYS\001k%d\002UNIQ_KEY\001u%d-%d\002", (i + k) % 97,
                     salt, i + k);
            msgs[k] = test_msg(proto_xstrdup(body), proto_xstrdup(props));
        }
        const char *t = TOPICS[(i / 8) % N_TOPICS];
        int rc = engine_append_wait(e, t, strlen(t), (uint32_t)((i + salt) % QUEUES), msgs,
                                    (uint32_t)batch, &res);
        for (int k = 0; k < batch; k++) {
            free((void *)msgs[k].body);
            free((void *)msgs[k].props);
        }
        assert_int_equal(rc, 0);
        assert_int_equal(res.status, 0);
        assert_true(res.last_seq > last);
        last = res.last_seq;
        i += batch;
    }
    return last;
}

static void create_topics(engine *e)
{
    for (int i = 0; i < N_TOPICS; i++)
        test_topic_create(e, TOPICS[i], QUEUES);
}

/* A thread appending until told to stop, for the cut tests. */
typedef struct loader {
    engine *e;
    atomic_bool stop;
    int rounds;
    pthread_t thread;
} loader;

static void *load_thread(void *arg)
{
    loader *l = arg;
    while (!atomic_load(&l->stop)) {
        append_some(l->e, 200, 1000 + l->rounds);
        l->rounds++;
        usleep(2000);
    }
    return NULL;
}

static void load_start(loader *l, engine *e)
{
    memset(l, 0, sizeof *l);
    l->e = e;
    assert_int_equal(pthread_create(&l->thread, NULL, load_thread, l), 0);
}

static void load_stop(loader *l)
{
    atomic_store(&l->stop, true);
    pthread_join(l->thread, NULL);
}

/* More appends, then the replica must catch up and match; tear down. */
static void finish(cluster *c, int more, int salt)
{
    if (more)
        append_some(c->master, more, salt);
    wait_caught_up(c);
    compare_stores(c->master, c->replica);
    cluster_down(c);
}

/* ------------------------------------------------------------------ */
/* Scenarios                                                            */

static void test_stream_matches(void **state)
{
    cluster c = {0};
    cluster_up(&c);
    create_topics(c.master);
    append_some(c.master, 500, 1); /* some before the checkpoint */
    replica_open(&c, false, NULL);

    uint64_t last = append_some(c.master, 12000, 2);
    wait_caught_up(&c);
    assert_true(compare_stores(c.master, c.replica) >= 12500);
    /* Changes that are not messages ship the same way. */
    test_topic_create(c.master, "ReplLate", 2);
    const char grp[] = "{\"groupName\":\"G1\"}";
    assert_int_equal(engine_group_put(c.master, "G1", 2, grp, strlen(grp)), 0);
    assert_int_equal(engine_offset_set(c.master, "G1", 2, "ReplA", 5, 1, 17), 0);
    assert_int_equal(engine_offset_set(c.master, "G1", 2, "ReplB", 5, 3, 5), 0);
    append_some(c.master, 100, 3);
    assert_int_equal(engine_topic_delete(c.master, "ReplC", 5), 0);
    wait_caught_up(&c);

    compare_stores(c.master, c.replica);
    /* Every append is acknowledged by the replica. */
    int64_t until = proto_mono_ms() + WAIT_MS;
    while (atomic_load(&c.acked) < last && proto_mono_ms() < until)
        usleep(5000);
    assert_true(atomic_load(&c.acked) >= last);
    assert_true(repl_master_acked(c.m) >= last);

    /* Both sides' status. */
    repl_replica_info *infos;
    size_t n;
    assert_int_equal(repl_master_status(c.m, &infos, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(infos[0].addr, "127.0.0.1:20911");
    assert_int_equal(infos[0].phase, REPL_PHASE_STREAMING);
    assert_int_equal(infos[0].acked_seq, engine_last_sequence(c.master));
    assert_int_equal(infos[0].lag_bytes, 0);
    assert_int_equal(infos[0].lag_msgs, 0);
    assert_true(infos[0].in_sync);
    free(infos);
    assert_int_equal(repl_master_replicas(c.m), 1);
    assert_int_equal(repl_master_in_sync(c.m), 1);
    repl_replica_state st;
    assert_int_equal(repl_replica_status(c.r, &st), 0);
    assert_true(st.connected);
    assert_false(st.checkpoint_needed);
    assert_string_equal(st.master_addr, c.master_addr);
    assert_int_equal(st.applied_seq, engine_last_sequence(c.master));
    /* It heard from the master and acknowledged to it, just now (wall clock). */
    int64_t now = proto_wall_ms();
    assert_true(st.last_read_ms > now - 30000 && st.last_read_ms <= now);
    assert_true(st.last_write_ms > now - 30000 && st.last_write_ms <= now);

    /* A replica refuses writes of its own. */
    engine_msg one = test_msg("x", NULL);
    engine_append_result res;
    assert_int_equal(engine_append_wait(c.replica, "ReplA", 5, 0, &one, 1, &res), LSMQ_EREADONLY);
    cluster_down(&c);
}

static void test_resume_after_cuts(void **state)
{
    cluster c = {0};
    loader l;
    uint64_t seq;

    cluster_up(&c);
    create_topics(c.master);
    replica_open(&c, false, NULL);
    load_start(&l, c.master);
    usleep(150 * 1000);

    /* The replica goes away mid-stream and comes back with its store,
     * which it keeps: no checkpoint is fetched. */
    repl_replica_stop(c.r);
    c.r = NULL;
    uint64_t applied = engine_applied_sequence(c.replica);
    engine_close(c.replica);
    c.replica = NULL;
    usleep(100 * 1000);
    replica_open(&c, false, &seq);
    assert_int_equal(seq, applied);
    usleep(150 * 1000);

    /* The master's side of the link goes away and comes back. */
    repl_master_stop(c.m);
    usleep(100 * 1000);
    char err[256] = "";
    assert_int_equal(repl_master_start(c.m, c.master, err, sizeof err), 0);
    /* A new port: the replica learns it as it would from the name server. */
    snprintf(c.master_addr, sizeof c.master_addr, "127.0.0.1:%d", repl_master_port(c.m));
    repl_replica_set_master(c.r, c.master_addr);
    usleep(200 * 1000);

    load_stop(&l);
    assert_true(l.rounds > 0);
    finish(&c, 0, 0);
}

/* Damage the first chunk of the first file once; look at the master's status meanwhile. */
static atomic_int damaged;
static char damaged_file[256];
static repl_master *fetching_from;
static repl_replica_info seen_fetching;
static void damage_once(const char *file, uint64_t offset, uint8_t *data, size_t len)
{
    repl_replica_info *infos;
    size_t n;

    assert_int_equal(repl_master_status(fetching_from, &infos, &n), 0);
    assert_int_equal(n, 1);
    seen_fetching = infos[0];
    free(infos);
    if (len == 0)
        return;
    if (atomic_load(&damaged) == 0) {
        snprintf(damaged_file, sizeof damaged_file, "%s", file);
        data[len / 2] ^= 0x5a;
        atomic_store(&damaged, 1);
    } else if (atomic_load(&damaged) == 1 && offset == 0 && strcmp(file, damaged_file) == 0) {
        atomic_store(&damaged, 2); /* the same chunk, fetched again */
    }
}

static void test_checkpoint_damaged_chunk(void **state)
{
    cluster c = {0};
    cluster_up(&c);
    create_topics(c.master);
    append_some(c.master, 3000, 4);
    fetching_from = c.m;
    repl__test_chunk_hook = damage_once;
    replica_open(&c, false, NULL);
    repl__test_chunk_hook = NULL;
    assert_int_equal(atomic_load(&damaged), 2);
    /* The last chunk's answer was counted before it arrived. */
    assert_int_equal(seen_fetching.phase, REPL_PHASE_CHECKPOINT);
    assert_true(seen_fetching.checkpoint_total > 0);
    assert_int_equal(seen_fetching.checkpoint_bytes, seen_fetching.checkpoint_total);
    assert_string_equal(seen_fetching.addr, "127.0.0.1:20911");
    finish(&c, 300, 5);
}

/* A fetch that died halfway left files under ha/ and no db/: the next one starts clean. */
static void test_prepare_after_crash(void **state)
{
    cluster c = {0};
    cluster_up(&c);
    create_topics(c.master);
    append_some(c.master, 500, 10);
    const char *leftovers[] = {"ha", "ha/incoming", "ha/incoming/db", "ha/old-db"};
    for (size_t i = 0; i < sizeof leftovers / sizeof *leftovers; i++) {
        char *p = proto_xasprintf("%s/%s", c.replica_dir, leftovers[i]);
        assert_int_equal(mkdir(p, 0755), 0);
        free(p);
    }
    char *junk = proto_xasprintf("%s/ha/incoming/db/000001.sst", c.replica_dir);
    FILE *fp = fopen(junk, "w");
    fputs("half a file", fp);
    fclose(fp);
    free(junk);
    replica_open(&c, false, NULL);
    char *incoming = proto_xasprintf("%s/ha/incoming", c.replica_dir);
    char *old = proto_xasprintf("%s/ha/old-db", c.replica_dir);
    assert_int_equal(access(incoming, F_OK), -1);
    assert_int_equal(access(old, F_OK), -1);
    free(incoming);
    free(old);
    finish(&c, 0, 0);
}

static void test_checkpoint_needed(void **state)
{
    cluster c = {0};
    /* Keep the WAL a second only: a replica away longer misses it. */
    c.wal_ttl_seconds = 1;
    c.wal_size_limit_mb = 0;
    c.master_dir = test_tmpdir("repl-master");
    c.replica_dir = test_tmpdir("repl-replica");
    master_open(&c);
    master_start(&c);
    create_topics(c.master);
    append_some(c.master, 200, 6);
    replica_open(&c, false, NULL);
    wait_caught_up(&c);
    replica_close(&c);

    /* While it is away the master writes and flushes, and its old WAL
     * goes (RocksDB purges archived WAL past its TTL at a flush). */
    append_some(c.master, 2000, 7);
    char *flush1 = proto_xasprintf("%s/flush-1", c.master_dir);
    char *flush2 = proto_xasprintf("%s/flush-2", c.master_dir);
    uint64_t cp_seq;
    assert_int_equal(engine_checkpoint(c.master, flush1, &cp_seq), 0);
    sleep(2);
    append_some(c.master, 2000, 8);
    assert_int_equal(engine_checkpoint(c.master, flush2, &cp_seq), 0);
    free(flush1);
    free(flush2);

    replica_open(&c, false, NULL);
    int64_t until = proto_mono_ms() + WAIT_MS;
    repl_replica_state st;
    do {
        usleep(5000);
        assert_int_equal(repl_replica_status(c.r, &st), 0);
    } while (!st.checkpoint_needed && proto_mono_ms() < until);
    assert_true(st.checkpoint_needed);
    assert_int_equal(atomic_load(&c.needed), 1);
    assert_false(st.connected);

    /* The broker's answer: make the store again, then follow. */
    replica_close(&c);
    replica_open(&c, true, NULL);
    finish(&c, 100, 9);
}

/* A fake master on a free port of 127.0.0.1: the replica of c is pointed at it. */
static int fake_master_listen(cluster *c)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sin;
    assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(listen(lfd, 4), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &sl), 0);
    snprintf(c->master_addr, sizeof c->master_addr, "127.0.0.1:%d", ntohs(sin.sin_port));
    return lfd;
}

/* The next connection to the fake master (fails the test after 10 s without one). */
static int fake_master_accept(int lfd)
{
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 10000), 1);
    int fd = accept(lfd, NULL, NULL);
    assert_true(fd >= 0);
    return fd;
}

/* Read the replica's HELLO on fd, answer SUCCESS at epoch, wait until it says it is connected. */
static void fake_master_hello_at(int fd, cluster *c, uint64_t epoch)
{
    proto_cmd *hello;
    uint8_t *frame, *out;
    size_t out_len;
    repl_replica_state st;

    assert_int_equal(wire_recv(fd, &hello, &frame), 0);
    assert_int_equal(hello->code, REPL_RC_HELLO);
    assert_int_equal(strtoull(proto_cmd_get(hello, REPL_F_APPLIED_SEQ), NULL, 10),
                     engine_applied_sequence(c->replica));
    proto_cmd *ok = proto_cmd_response(RS_SUCCESS, hello->opaque, NULL);
    repl__set_u64(ok, REPL_F_EPOCH, epoch);
    assert_int_equal(proto_cmd_encode(ok, NULL, 0, &out, &out_len), 0);
    assert_int_equal(write(fd, out, out_len), (ssize_t)out_len);
    free(out);
    proto_cmd_free(ok);
    proto_cmd_free(hello);
    free(frame);
    int64_t until = proto_mono_ms() + 2000;
    do {
        usleep(5000);
        repl_replica_status(c->r, &st);
    } while (!st.connected && proto_mono_ms() < until);
    assert_true(st.connected);
}

static void fake_master_hello(int fd, cluster *c) { fake_master_hello_at(fd, c, 0); }

/* A replica store that follows the fake master of lfd. */
static int replica_of_fake(cluster *c)
{
    repl_replica_config rc;

    cluster_up(c);
    create_topics(c->master);
    replica_open(c, false, NULL);
    wait_caught_up(c);
    repl_replica_stop(c->r);
    c->r = NULL;
    int lfd = fake_master_listen(c);
    replica_config(c, &rc);
    assert_int_equal(repl_replica_start(&rc, c->replica, &c->r), 0);
    return lfd;
}

/* A master that answers HELLO and then says nothing: the replica gives up on it and comes back. */
static void test_silent_master(void **state)
{
    cluster c = {0};
    int lfd = replica_of_fake(&c);
    int silent = fake_master_accept(lfd);
    fake_master_hello(silent, &c);
    int64_t answered_ms = proto_mono_ms();
    /* ACKs arrive; nothing goes back. The socket stays open. */
    sleep(1);
    repl_replica_state st;
    repl_replica_status(c.r, &st);
    assert_true(st.connected);
    int again = fake_master_accept(lfd);
    /* Back within dead_after_ms (2 s) and its back-off, not at TCP's pace. */
    int64_t gone_after = proto_mono_ms() - answered_ms;
    assert_true(gone_after >= 1500);
    assert_true(gone_after < 8000); /* loose: a loaded machine delays timers */
    close(again);
    close(silent);
    close(lfd);
    cluster_down(&c);
}

/* A batch the store cannot apply stops replication for good, with the reason in the status. */
static void test_unappliable_batch(void **state)
{
    cluster c = {0};
    int lfd = replica_of_fake(&c);
    int fd = fake_master_accept(lfd);
    fake_master_hello(fd, &c);
    /* A WriteBatch of one record whose tag the engine never writes. */
    uint8_t junk[13] = {0};
    junk[8] = 1;      /* count */
    junk[12] = 0x7f;  /* tag */
    uint64_t next = engine_applied_sequence(c.replica) + 1;
    engine_log_batch b = {.seq = next, .count = 1, .data = junk, .len = sizeof junk};
    proto_buf body = {0};
    repl__batch_put(&body, 0, &b);
    proto_cmd *req = proto_cmd_request(REPL_RC_BATCHES);
    req->flag = PROTO_FLAG_ONEWAY;
    assert_true(wire_send(fd, req, body.p, body.len) >= 0);
    proto_cmd_free(req);
    proto_buf_free(&body);
    repl_replica_state st;
    int64_t until = proto_mono_ms() + 5000;
    do {
        usleep(5000);
        repl_replica_status(c.r, &st);
    } while (st.error == 0 && proto_mono_ms() < until);
    assert_int_equal(st.error, LSMQ_ECORRUPT);
    assert_false(st.connected);
    assert_int_equal(st.applied_seq, next - 1);
    /* No second try. */
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 1000), 0);
    close(fd);
    close(lfd);
    cluster_down(&c);
}

/* Accept the replica's next connection and answer its HELLO at epoch. */
static int fake_master_hello_accept_at(int lfd, cluster *c, uint64_t epoch)
{
    int fd = fake_master_accept(lfd);
    fake_master_hello_at(fd, c, epoch);
    return fd;
}

/* A oneway frame from the fake master: BATCHES (with body) or HEARTBEAT at epoch. */
static void fake_master_send(int fd, int code, uint64_t epoch, const proto_buf *body)
{
    proto_cmd *req = proto_cmd_request(code);
    req->flag = PROTO_FLAG_ONEWAY;
    repl__set_u64(req, REPL_F_EPOCH, epoch);
    assert_true(wire_send(fd, req, body ? body->p : NULL, body ? body->len : 0) >= 0);
    proto_cmd_free(req);
}

/*
 * A master of epoch 2 whose frames then come from epoch 1 (a stale master
 * behind the same address): the replica drops the link and says HELLO
 * again, applying nothing, and stays able to follow (no error).
 */
static void test_older_epoch_refused(void **state)
{
    cluster c = {0};
    int lfd = replica_of_fake(&c);
    uint64_t applied = engine_applied_sequence(c.replica);
    repl_replica_state st;

    int fd = fake_master_hello_accept_at(lfd, &c, 2);
    assert_int_equal(repl_replica_status(c.r, &st), 0);
    assert_int_equal(st.epoch, 2);
    /* A batch of epoch 1 (it would not apply anyway: refused before the engine sees it). */
    uint8_t junk[13] = {0};
    junk[8] = 1;
    junk[12] = 0x7f;
    engine_log_batch b = {.seq = applied + 1, .count = 1, .data = junk, .len = sizeof junk};
    proto_buf body = {0};
    repl__batch_put(&body, 1, &b);
    fake_master_send(fd, REPL_RC_BATCHES, 2, &body);
    proto_buf_free(&body);
    int again = fake_master_accept(lfd);
    assert_int_equal(repl_replica_status(c.r, &st), 0);
    assert_int_equal(st.error, 0);
    assert_int_equal(st.applied_seq, applied);
    close(fd);

    /* A heartbeat of epoch 1 likewise. */
    fake_master_hello_at(again, &c, 2);
    fake_master_send(again, REPL_RC_HEARTBEAT, 1, NULL);
    int third = fake_master_accept(lfd);
    assert_int_equal(repl_replica_status(c.r, &st), 0);
    assert_int_equal(st.error, 0);
    close(again);
    close(third);
    close(lfd);
    cluster_down(&c);
}

/* A replica that says HELLO and then nothing: the master drops it. */
static void test_silent_replica(void **state)
{
    cluster c = {0};
    cluster_up(&c);
    create_topics(c.master);
    int fd = wire_connect(repl_master_port(c.m), 5000);
    assert_true(fd >= 0);
    proto_cmd *hello = proto_cmd_request(REPL_RC_HELLO);
    uint64_t hello_seq = engine_last_sequence(c.master);
    proto_cmd_set_i64(hello, REPL_F_APPLIED_SEQ, (int64_t)hello_seq);
    proto_cmd_set(hello, REPL_F_REPLICA_ADDR, "fake:1");
    proto_cmd *resp;
    uint8_t *frame;
    assert_int_equal(wire_call(fd, hello, NULL, 0, &resp, &frame), 0);
    assert_int_equal(resp->code, RS_SUCCESS);
    proto_cmd_free(resp);
    free(frame);
    assert_int_equal(repl_master_replicas(c.m), 1);
    append_some(c.master, 50, 11); /* shipped to it, never acknowledged */
    int64_t start = proto_mono_ms();
    while (repl_master_replicas(c.m) == 1 && proto_mono_ms() - start < 10000)
        usleep(10000);
    int64_t took = proto_mono_ms() - start;
    assert_int_equal(repl_master_replicas(c.m), 0);
    assert_true(took >= 1500 && took < 8000); /* loose: a loaded machine delays timers */
    /* What it held at HELLO counts; what it never acknowledged does not. */
    assert_int_equal(repl_master_acked(c.m), hello_seq);
    close(fd);
    cluster_down(&c);
}

/* ------------------------------------------------------------------ */
/* Bodies                                                               */

static void test_batch_bodies(void **state)
{
    proto_buf body = {0};
    const uint8_t a[] = {1, 2, 3}, b[] = {9};
    engine_log_batch x = {.seq = 10, .count = 3, .data = a, .len = sizeof a};
    engine_log_batch y = {.seq = 13, .count = 1, .data = b, .len = sizeof b};
    repl__batch_put(&body, 7, &x);
    repl__batch_put(&body, 7, &y);

    size_t pos = 0;
    repl_batch got;
    assert_int_equal(repl__batch_next((uint8_t *)body.p, body.len, &pos, &got), 1);
    assert_int_equal(got.epoch, 7);
    assert_int_equal(got.b.seq, 10);
    assert_int_equal(got.b.count, 3);
    assert_int_equal(got.b.len, 3);
    assert_memory_equal(got.b.data, a, 3);
    assert_int_equal(repl__batch_next((uint8_t *)body.p, body.len, &pos, &got), 1);
    assert_int_equal(got.b.seq, 13);
    assert_int_equal(repl__batch_next((uint8_t *)body.p, body.len, &pos, &got), 0);
    /* Cut anywhere inside, the last batch does not decode. */
    for (size_t cut = body.len - 1; cut > REPL_BATCH_HEAD + sizeof a; cut--) {
        pos = 0;
        assert_int_equal(repl__batch_next((uint8_t *)body.p, cut, &pos, &got), 1);
        assert_int_equal(repl__batch_next((uint8_t *)body.p, cut, &pos, &got), LSMQ_ECORRUPT);
    }
    /* A batch of no operations is junk. */
    engine_log_batch z = {.seq = 14, .count = 0, .data = b, .len = 1};
    proto_buf bad = {0};
    repl__batch_put(&bad, 0, &z);
    pos = 0;
    assert_int_equal(repl__batch_next((uint8_t *)bad.p, bad.len, &pos, &got), LSMQ_ECORRUPT);
    proto_buf_free(&bad);
    proto_buf_free(&body);
}

static void test_file_lists(void **state)
{
    repl_file *f;
    size_t n;
    const char good[] = "12 000007.sst\n0 CURRENT\n";
    assert_int_equal(repl__parse_files((const uint8_t *)good, strlen(good), &f, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(f[0].name, "000007.sst");
    assert_int_equal(f[0].size, 12);
    assert_string_equal(f[1].name, "CURRENT");
    assert_int_equal(f[1].size, 0);
    free(f);
    assert_int_equal(repl__parse_files((const uint8_t *)"", 0, &f, &n), 0);
    assert_int_equal(n, 0);
    free(f);
    const char *bad[] = {"12 ../etc/passwd\n", "12 a/b\n", "x CURRENT\n", "12 CURRENT",
                         " CURRENT\n", "12 ..\n", "-1 CURRENT\n", "12 \n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(repl__parse_files((const uint8_t *)bad[i], strlen(bad[i]), &f, &n),
                         LSMQ_ECORRUPT);

    /* A listing of a real directory parses back. */
    char *dir = test_tmpdir("repl-list");
    char *p = proto_xasprintf("%s/data", dir);
    FILE *fp = fopen(p, "w");
    fputs("hello", fp);
    fclose(fp);
    proto_buf list = {0};
    assert_int_equal(repl__list_files(dir, &list), 0);
    assert_int_equal(repl__parse_files((const uint8_t *)list.p, list.len, &f, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(f[0].name, "data");
    assert_int_equal(f[0].size, 5);
    uint32_t crc;
    assert_int_equal(repl__file_crc(p, &crc), 0);
    assert_int_equal(crc, repl__crc_combine(repl__crc(0, "he", 2), repl__crc(0, "llo", 3), 3));
    free(f);
    free(p);
    proto_buf_free(&list);
    test_rmdir_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_bodies),
        cmocka_unit_test(test_file_lists),
        cmocka_unit_test(test_stream_matches),
        cmocka_unit_test(test_resume_after_cuts),
        cmocka_unit_test(test_checkpoint_damaged_chunk),
        cmocka_unit_test(test_prepare_after_crash),
        cmocka_unit_test(test_checkpoint_needed),
        cmocka_unit_test(test_silent_master),
        cmocka_unit_test(test_unappliable_batch),
        cmocka_unit_test(test_silent_replica),
        cmocka_unit_test(test_older_epoch_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
