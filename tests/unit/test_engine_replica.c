/*
 * test_engine_replica: the engine's side of replication, on real stores.
 *
 *  - the log: a reader from any batch boundary hands out every committed
 *    batch in order, contiguous, the last ending at engine_last_sequence;
 *    at the tail it says "nothing yet" and resumes with what comes later,
 *    across a WAL roll (a flush); an append's last_seq ends the batch that
 *    holds it, and on_write reports the end of every write;
 *  - the WAL kept for replicas: with retention a reader from the start
 *    still reads after the memtables were flushed; without it the log no
 *    longer reaches the start and both engine_log_open and a reader that
 *    fell behind say LSMQ_ENOTFOUND;
 *  - the whole path: a master (with index/) takes appends to several topics
 *    and queues, topic creation, update and deletion, group and offset
 *    writes and a retention pass; a replica made from a checkpoint taken in
 *    the middle applies every batch after the checkpoint's sequence and
 *    then holds exactly the master's store (every family, key by key), the
 *    same topics, queue offsets and last store times, consumer offsets,
 *    next log position and index; what it applies is readable with
 *    engine_read at once, and on_advance names each queue that grew;
 *  - order: a batch that does not follow the applied sequence (early,
 *    twice, after a gap) is refused, as are malformed batches, ones naming
 *    a family the store lacks and a newer store format; the applied sequence survives a
 *    reopen and applying continues;
 *  - refusals: a replica takes no append, topic, group, offset or
 *    retention write of its own (LSMQ_EREADONLY); a master takes no
 *    engine_apply;
 *  - a write under way: shipped to a replica before its master publishes
 *    it, its message is served there; the master answers a read of the
 *    offset after it with "nothing yet" (OVERFLOW_ONE), not with a
 *    correction back to the message, which would make a consumer that
 *    moved from the replica read it twice;
 *  - epochs: a store's position is none, then a master's (epoch, last
 *    sequence) after each promotion record (one synced operation, the
 *    newest 16 kept, each naming the position before it), and stays that
 *    when the store reopens as a replica; a replica's position is what
 *    engine_set_position wrote, with the history it was given, across a
 *    reopen; a master sets no position and a replica begins no epoch.
 * The replica's crash is test_engine_replica_crash.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine_ext.h"
#include "testsupport.h"

#define T0_MS INT64_C(1700000000000)
#define HOUR_MS INT64_C(3600000)
#define READ_COUNT 64
#define READ_BYTES (1u << 20)

/* ---- Fixtures -------------------------------------------------------------- */

static int fake_clock(void *ctx, int64_t *now_ms)
{
    *now_ms = atomic_load((_Atomic int64_t *)ctx);
    return 0;
}

static void master_config(engine_config *c, const char *path, _Atomic int64_t *clock)
{
    test_engine_config(c, path);
    c->retention_interval_ms = 3600000; /* passes run when the test says */
    c->file_reserved_hours = 1;
    c->disk_max_used_ratio = 0;
    if (clock) {
        c->clock_ms = fake_clock;
        c->clock_ctx = clock;
    }
}

/* Append one message with a key to the index and wait; its result. */
static engine_append_result append(engine *e, const char *topic, uint32_t queue,
                                   const char *body)
{
    char props[128];
    snprintf(props, sizeof props, "KEYS\001k-%s\002TAGS\001t\002", body);
    engine_msg m = test_msg(body, props);
    engine_append_result r;
    int rc = engine_append_wait(e, topic, strlen(topic), queue, &m, 1, &r);
    if (rc != 0)
        fail_msg("append to %s/%u: %s", topic, queue, lsmq_strerror(rc));
    return r;
}

static char *make_replica_dir(void)
{
    return test_tmpdir("replica");
}

/* A checkpoint of master as the store of a new replica under dir; its sequence. */
static uint64_t checkpoint_into(engine *master, const char *dir)
{
    char *db = NULL;
    assert_true(asprintf(&db, "%s/db", dir) > 0);
    uint64_t seq = 0;
    assert_int_equal(engine_checkpoint(master, db, &seq), 0);
    free(db);
    return seq;
}

static engine *open_replica(const char *dir, engine_config *c)
{
    test_engine_config(c, dir);
    c->replica = true;
    return test_engine_open(c);
}

/* ---- Applying -------------------------------------------------------------- */

/*
 * Apply every batch the master's log has after the replica's applied
 * sequence, all queued at once (they share writes); returns how many.
 */
static size_t follow(engine *master, engine *replica)
{
    engine_log_reader *r = NULL;
    assert_int_equal(engine_log_open(master, engine_applied_sequence(replica), &r), 0);
    test_applied w;
    test_applied_init(&w);
    size_t n = 0;
    uint64_t expect = engine_applied_sequence(replica) + 1;
    engine_log_batch b;
    int rc;
    while ((rc = engine_log_next(r, &b)) == 1) {
        assert_int_equal(b.seq, expect);
        expect = b.seq + b.count;
        assert_int_equal(engine_apply(replica, &b, test_applied_cb, &w), 0);
        n++;
    }
    assert_int_equal(rc, 0);
    engine_log_close(r);
    assert_int_equal(test_applied_wait(&w, n), 0);
    test_applied_destroy(&w);
    assert_int_equal(engine_applied_sequence(replica), engine_last_sequence(master));
    return n;
}

/* ---- The log --------------------------------------------------------------- */

static void note_write(const engine_ext_env *x, uint64_t last_seq)
{
    atomic_store((_Atomic uint64_t *)x->ctx, last_seq);
}

static void test_log_reads_in_order_and_resumes(void **state)
{
    (void)state;
    char *dir = test_tmpdir("log");
    engine_config c;
    master_config(&c, dir, NULL);
    _Atomic uint64_t written = 0;
    engine_extension watcher = {.name = "log-watch", .ctx = &written,
                                .hook.on_write = note_write};
    assert_int_equal(engine_config_add_extension(&c, &watcher), 0);
    engine *e = test_engine_open(&c);
    test_topic_create(e, "LogTopic", 2);
    assert_int_equal(atomic_load(&written), engine_last_sequence(e)); /* every write says so */
    engine_append_result first = append(e, "LogTopic", 0, "one");
    assert_int_equal(atomic_load(&written), first.last_seq);
    append(e, "LogTopic", 1, "two");
    assert_int_equal(engine_offset_set(e, "LogGroup", 8, "LogTopic", 8, 0, 1), 0);
    assert_int_equal(atomic_load(&written), engine_last_sequence(e));

    /* From the start: contiguous batches up to the latest sequence. */
    engine_log_reader *r = NULL;
    assert_int_equal(engine_log_open(e, 0, &r), 0);
    engine_log_batch b;
    uint64_t expect = 1;
    bool saw_first = false;
    int rc;
    while ((rc = engine_log_next(r, &b)) == 1) {
        assert_int_equal(b.seq, expect);
        assert_true(b.count > 0);
        assert_true(b.len >= 12);
        expect = b.seq + b.count;
        saw_first |= b.seq + b.count - 1 == first.last_seq;
    }
    assert_int_equal(rc, 0);
    assert_true(saw_first); /* last_seq ends a batch */
    assert_int_equal(expect - 1, engine_last_sequence(e));

    /* At the tail: nothing, then what comes next. */
    assert_int_equal(engine_log_next(r, &b), 0);
    engine_append_result third = append(e, "LogTopic", 0, "three");
    assert_int_equal(engine_log_next(r, &b), 1);
    assert_int_equal(b.seq, expect);
    assert_int_equal(b.seq + b.count - 1, third.last_seq);
    expect = b.seq + b.count;
    assert_int_equal(engine_log_next(r, &b), 0);

    /* A flush rolls the WAL to a file the reader never listed: it follows. */
    char *cp = test_tmpdir("cp");
    char *cp_db = NULL;
    assert_true(asprintf(&cp_db, "%s/db", cp) > 0);
    uint64_t cp_seq = 0;
    assert_int_equal(engine_checkpoint(e, cp_db, &cp_seq), 0);
    assert_int_equal(cp_seq, engine_last_sequence(e));
    assert_int_equal(engine_checkpoint(e, cp_db, &cp_seq), LSMQ_EEXISTS);
    for (int i = 0; i < 5; i++) {
        char body[16];
        snprintf(body, sizeof body, "after-%d", i);
        engine_append_result res = append(e, "LogTopic", (uint32_t)i % 2, body);
        assert_int_equal(engine_log_next(r, &b), 1);
        assert_int_equal(b.seq, expect);
        assert_int_equal(b.seq + b.count - 1, res.last_seq);
        expect = b.seq + b.count;
    }
    engine_log_close(r);

    /* From a batch boundary in the middle; from inside a batch is refused. */
    assert_int_equal(engine_log_open(e, third.last_seq, &r), 0);
    assert_int_equal(engine_log_next(r, &b), 1);
    assert_int_equal(b.seq, third.last_seq + 1);
    engine_log_close(r);
    assert_int_equal(engine_log_open(e, third.last_seq - 1, &r), LSMQ_EINVAL);
    /* Ahead of the store: another history. */
    assert_int_equal(engine_log_open(e, engine_last_sequence(e) + 10, &r), LSMQ_ENOTFOUND);

    engine_close(e);
    free(cp_db);
    test_rmdir_free(cp);
    test_rmdir_free(dir);
}

/* Flush the memtables (a checkpoint does) so older WAL files are done with. */
static void flush(engine *e)
{
    char *cp = test_tmpdir("flush");
    char *db = NULL;
    assert_true(asprintf(&db, "%s/db", cp) > 0);
    uint64_t seq;
    assert_int_equal(engine_checkpoint(e, db, &seq), 0);
    free(db);
    test_rmdir_free(cp);
}

static void test_log_retention_and_gap(void **state)
{
    (void)state;
    /* Kept: a reader from the start reads past flushed memtables. */
    char *dir = test_tmpdir("kept");
    engine_config c;
    master_config(&c, dir, NULL);
    engine *e = test_engine_open(&c);
    test_topic_create(e, "Kept", 1);
    append(e, "Kept", 0, "a");
    flush(e);
    append(e, "Kept", 0, "b");
    flush(e);
    engine_log_reader *r = NULL;
    assert_int_equal(engine_log_open(e, 0, &r), 0);
    engine_log_batch b;
    uint64_t expect = 1;
    int rc;
    while ((rc = engine_log_next(r, &b)) == 1) {
        assert_int_equal(b.seq, expect);
        expect = b.seq + b.count;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(expect - 1, engine_last_sequence(e));
    engine_log_close(r);
    engine_close(e);
    test_rmdir_free(dir);

    /* Not kept: the start is gone once flushed, for a new reader and for
     * one that stopped before it. */
    dir = test_tmpdir("gone");
    master_config(&c, dir, NULL);
    c.wal_ttl_seconds = 0;
    c.wal_size_limit_mb = 0;
    e = test_engine_open(&c);
    test_topic_create(e, "Gone", 1);
    append(e, "Gone", 0, "a");
    engine_log_reader *behind = NULL;
    assert_int_equal(engine_log_open(e, engine_last_sequence(e), &behind), 0);
    for (int i = 0; i < 3; i++) {
        append(e, "Gone", 0, "b");
        flush(e);
    }
    rc = engine_log_open(e, 0, &r);
    assert_int_equal(rc, LSMQ_ENOTFOUND);
    rc = engine_log_next(behind, &b);
    assert_int_equal(rc, LSMQ_ENOTFOUND);
    assert_int_equal(engine_log_next(behind, &b), LSMQ_ENOTFOUND); /* spent */
    engine_log_close(behind);
    engine_close(e);
    test_rmdir_free(dir);
}

/* ---- The whole path --------------------------------------------------------- */

typedef struct advance_log {
    pthread_mutex_t lock;
    size_t n;
    struct {
        uint32_t topic_id, queue_id;
        uint64_t max;
    } at[64];
} advance_log;

static void record_advance(const engine_ext_env *x, uint32_t topic_id, uint32_t queue_id,
                           uint64_t max_offset)
{
    advance_log *l = x->ctx;
    pthread_mutex_lock(&l->lock);
    if (l->n < 64) {
        l->at[l->n].topic_id = topic_id;
        l->at[l->n].queue_id = queue_id;
        l->at[l->n].max = max_offset;
        l->n++;
    }
    pthread_mutex_unlock(&l->lock);
}

/* The last on_advance for the queue said max. */
static bool advanced(advance_log *l, uint32_t topic_id, uint32_t queue_id, uint64_t max)
{
    pthread_mutex_lock(&l->lock);
    uint64_t last = UINT64_MAX;
    for (size_t i = 0; i < l->n; i++)
        if (l->at[i].topic_id == topic_id && l->at[i].queue_id == queue_id)
            last = l->at[i].max;
    pthread_mutex_unlock(&l->lock);
    return last == max;
}

static void put_group(engine *e, const char *group, const char *cfg)
{
    assert_int_equal(engine_group_put(e, group, strlen(group), cfg, strlen(cfg)), 0);
}

static void set_offset(engine *e, const char *group, const char *topic, uint32_t q,
                       uint64_t off)
{
    assert_int_equal(engine_offset_set(e, group, strlen(group), topic, strlen(topic), q, off), 0);
}

/* Topics, queues and what the pull path reads agree between the two. */
static void compare_state(engine *m, engine *r)
{
    engine_topic_config *tm = NULL, *tr = NULL;
    size_t nm = 0, nr = 0;
    engine_view *vm = NULL, *vr = NULL;
    assert_int_equal(engine_view_open(m, &vm), 0);
    assert_int_equal(engine_view_open(r, &vr), 0);
    assert_int_equal(engine_view_topics(vm, &tm, &nm), 0);
    assert_int_equal(engine_view_topics(vr, &tr, &nr), 0);
    assert_int_equal(nm, nr);
    for (size_t i = 0; i < nm; i++) {
        assert_memory_equal(&tm[i], &tr[i], sizeof tm[i]);
        engine_topic_config live;
        assert_int_equal(engine_topic_get(r, tm[i].name, strlen(tm[i].name), &live), 0);
        assert_memory_equal(&live, &tm[i], sizeof live);
        engine_queue_info *qm = NULL, *qr = NULL;
        size_t qn = 0, rn = 0;
        assert_int_equal(engine_view_queues(vm, tm[i].topic_id, &qm, &qn), 0);
        assert_int_equal(engine_view_queues(vr, tm[i].topic_id, &qr, &rn), 0);
        assert_int_equal(qn, rn);
        for (size_t q = 0; q < qn; q++) {
            assert_int_equal(qm[q].min_offset, qr[q].min_offset);
            assert_int_equal(qm[q].max_offset, qr[q].max_offset);
            assert_int_equal(qm[q].last_store_ms, qr[q].last_store_ms);
            uint64_t mmin, mmax, rmin, rmax;
            if (engine_queue_offsets_by_id(m, tm[i].topic_id, (uint32_t)q, &mmin, &mmax) != 0)
                continue; /* past the topic's queue counts */
            assert_int_equal(engine_queue_offsets_by_id(r, tm[i].topic_id, (uint32_t)q, &rmin,
                                                        &rmax), 0);
            assert_int_equal(mmin, rmin);
            assert_int_equal(mmax, rmax);
            engine_read_result a, b;
            assert_int_equal(engine_read_by_id(m, tm[i].topic_id, (uint32_t)q, mmin, READ_COUNT,
                                               READ_BYTES, &a), 0);
            assert_int_equal(engine_read_by_id(r, tm[i].topic_id, (uint32_t)q, mmin, READ_COUNT,
                                               READ_BYTES, &b), 0);
            assert_int_equal(a.status, b.status);
            assert_int_equal(a.count, b.count);
            assert_int_equal(a.len, b.len);
            if (a.len)
                assert_memory_equal(a.data, b.data, a.len);
            engine_free(a.data);
            engine_free(b.data);
        }
        engine_free(qm);
        engine_free(qr);
    }
    engine_free(tm);
    engine_free(tr);
    engine_view_close(vm);
    engine_view_close(vr);
    assert_int_equal(engine_next_log_position(m), engine_next_log_position(r));
    assert_int_equal(test_store_diff(m, r, 20), 0);
    assert_int_equal(test_index_consistency(r, 20), 0);
}

static void test_replica_holds_the_masters_store(void **state)
{
    (void)state;
    _Atomic int64_t clock = T0_MS;
    char *mdir = test_tmpdir("master");
    char *rdir = make_replica_dir();
    engine_config mc;
    master_config(&mc, mdir, &clock);
    engine *m = test_engine_open(&mc);

    /* Before the checkpoint, at T0. */
    test_topic_create(m, "TopicA", 4);
    test_topic_create(m, "TopicB", 2);
    test_topic_create(m, "TopicC", 1);
    char body[32];
    for (int i = 0; i < 24; i++) {
        snprintf(body, sizeof body, "old-%d", i);
        append(m, i % 3 == 2 ? "TopicB" : "TopicA", (uint32_t)i % 2, body);
    }
    append(m, "TopicC", 0, "c0");
    put_group(m, "GroupOne", "{\"groupName\":\"GroupOne\"}");
    set_offset(m, "GroupOne", "TopicA", 0, 3);
    set_offset(m, "GroupOne", "TopicC", 0, 1);

    uint64_t cp_seq = checkpoint_into(m, rdir);
    assert_int_equal(cp_seq, engine_last_sequence(m));

    /* After it: more of everything, two hours later, and a retention pass. */
    for (int i = 0; i < 6; i++) {
        snprintf(body, sizeof body, "mid-%d", i);
        append(m, "TopicA", 2 + (uint32_t)i % 2, body);
    }
    atomic_store(&clock, T0_MS + 2 * HOUR_MS);
    for (int i = 0; i < 10; i++) {
        snprintf(body, sizeof body, "new-%d", i);
        append(m, "TopicA", (uint32_t)i % 4, body);
    }
    assert_int_equal(engine_topic_delete(m, "TopicC", 6), 0);
    test_topic_create(m, "TopicD", 3);
    test_topic_create(m, "TopicA", 6); /* grows */
    append(m, "TopicA", 5, "on-a-new-queue");
    for (int i = 0; i < 5; i++) {
        snprintf(body, sizeof body, "d-%d", i);
        append(m, "TopicD", (uint32_t)i % 3, body);
    }
    assert_int_equal(engine_group_delete(m, "GroupOne", 8), 0);
    put_group(m, "GroupTwo", "{\"groupName\":\"GroupTwo\"}");
    set_offset(m, "GroupTwo", "TopicA", 1, 7);
    set_offset(m, "GroupTwo", "TopicD", 2, 1);
    assert_int_equal(engine_retention_run(m), 0);
    assert_true(engine_retention_removed(m) >= 24); /* every T0 message of A and B */
    uint64_t min_a0, max_a0;
    assert_int_equal(engine_queue_offsets(m, "TopicA", 6, 0, &min_a0, &max_a0), 0);
    assert_true(min_a0 > 0 && min_a0 < max_a0);

    /* The replica: the checkpoint, its sequence, then the log after it. */
    advance_log adv = {.n = 0};
    pthread_mutex_init(&adv.lock, NULL);
    engine_extension watcher = {.name = "advance", .ctx = &adv,
                                .hook.on_advance = record_advance};
    engine_config rc;
    test_engine_config(&rc, rdir);
    rc.replica = true;
    assert_int_equal(engine_config_add_extension(&rc, &watcher), 0);
    engine *r = test_engine_open(&rc);
    assert_true(engine_is_replica(r));
    assert_false(engine_is_replica(m));
    assert_int_equal(engine_applied_sequence(r), 0);
    assert_int_equal(engine_set_applied_sequence(r, cp_seq), 0);
    assert_int_equal(engine_applied_sequence(r), cp_seq);
    uint32_t id;
    assert_int_equal(engine_topic_id(r, "TopicC", 6, &id), 0); /* as of the checkpoint */
    assert_int_equal(engine_topic_id(r, "TopicD", 6, &id), LSMQ_ENOTFOUND);

    assert_true(follow(m, r) > 20);
    assert_int_equal(engine_topic_id(r, "TopicC", 6, &id), LSMQ_ENOTFOUND);
    compare_state(m, r);
    uint64_t min_r, max_r;
    assert_int_equal(engine_queue_offsets(r, "TopicA", 6, 0, &min_r, &max_r), 0);
    assert_int_equal(min_r, min_a0);
    uint64_t off;
    assert_int_equal(engine_offset_get(r, "GroupTwo", 8, "TopicA", 6, 1, &off), 0);
    assert_int_equal(off, 7);
    char *g = NULL;
    size_t glen;
    assert_int_equal(engine_group_get(r, "GroupOne", 8, &g, &glen), LSMQ_ENOTFOUND);
    uint32_t d_id;
    assert_int_equal(engine_topic_id(r, "TopicD", 6, &d_id), 0);
    assert_true(advanced(&adv, d_id, 2, 1));

    /* What it applies is readable at once, and on_advance names the queue. */
    uint32_t a_id;
    assert_int_equal(engine_topic_id(r, "TopicA", 6, &a_id), 0);
    uint64_t before_min, before_max;
    assert_int_equal(engine_queue_offsets(r, "TopicA", 6, 3, &before_min, &before_max), 0);
    append(m, "TopicA", 3, "fresh-1");
    append(m, "TopicA", 3, "fresh-2");
    follow(m, r);
    engine_read_result rr;
    assert_int_equal(engine_read(r, "TopicA", 6, 3, before_max, READ_COUNT, READ_BYTES, &rr), 0);
    assert_int_equal(rr.status, ENGINE_READ_FOUND);
    assert_int_equal(rr.count, 2);
    assert_int_equal(rr.max_offset, before_max + 2);
    engine_free(rr.data);
    assert_true(advanced(&adv, a_id, 3, before_max + 2));
    compare_state(m, r);

    /* A replica's checkpoint carries the master sequence it applied. */
    char *r2dir = make_replica_dir();
    uint64_t r2_seq = checkpoint_into(r, r2dir);
    assert_int_equal(r2_seq, engine_applied_sequence(r));

    engine_close(r);
    engine_close(m);
    pthread_mutex_destroy(&adv.lock);
    test_rmdir_free(r2dir);
    test_rmdir_free(rdir);
    test_rmdir_free(mdir);
}

/* ---- Order and malformed batches ------------------------------------------- */

typedef struct saved_batch {
    engine_log_batch b;
    uint8_t *bytes;
} saved_batch;

static size_t save_log(engine *m, uint64_t after, saved_batch *out, size_t cap)
{
    engine_log_reader *r = NULL;
    assert_int_equal(engine_log_open(m, after, &r), 0);
    size_t n = 0;
    engine_log_batch b;
    while (n < cap && engine_log_next(r, &b) == 1) {
        out[n].bytes = malloc(b.len);
        memcpy(out[n].bytes, b.data, b.len);
        out[n].b = b;
        out[n].b.data = out[n].bytes;
        n++;
    }
    engine_log_close(r);
    return n;
}

/* A master with one topic of one queue, and a checkpoint of it for a replica. */
typedef struct pair {
    char *mdir, *rdir;
    engine *m;
    uint64_t cp_seq;
} pair;

static pair pair_start(const char *topic)
{
    pair p = {.mdir = test_tmpdir("master"), .rdir = make_replica_dir()};
    engine_config mc;
    master_config(&mc, p.mdir, NULL);
    p.m = test_engine_open(&mc);
    test_topic_create(p.m, topic, 1);
    p.cp_seq = checkpoint_into(p.m, p.rdir);
    return p;
}

static void pair_end(pair *p)
{
    engine_close(p->m);
    test_rmdir_free(p->rdir);
    test_rmdir_free(p->mdir);
}

/* The meta family's id in b: the cf of its put of "L", the next log position.
 * Records are tag 0x05, varint cf, varint-length key, varint-length value;
 * every length here is under 128. */
static uint8_t meta_cf_id(const engine_log_batch *b)
{
    const uint8_t *p = b->data + 12, *end = b->data + b->len;
    while (p < end) {
        assert_int_equal(p[0], 0x05);
        uint8_t cf = p[1], klen = p[2];
        const uint8_t *key = p + 3;
        uint8_t vlen = key[klen];
        if (klen == 1 && key[0] == 'L')
            return cf;
        p = key + klen + 1 + vlen;
    }
    fail_msg("no log position in the batch");
    return 0;
}

static void test_apply_in_order_only(void **state)
{
    (void)state;
    pair p = pair_start("Ordered");
    engine *m = p.m;
    const char *rdir = p.rdir;
    uint64_t cp_seq = p.cp_seq;
    for (int i = 0; i < 4; i++)
        append(m, "Ordered", 0, "x");
    saved_batch s[8];
    size_t n = save_log(m, cp_seq, s, 8);
    assert_int_equal(n, 4);

    engine_config rc;
    engine *r = open_replica(rdir, &rc);
    assert_int_equal(engine_set_applied_sequence(r, cp_seq), 0);
    assert_int_equal(engine_apply(r, &s[1].b, NULL, NULL), LSMQ_EINVAL); /* early */
    assert_int_equal(test_apply_wait(r, &s[0].b), 0);
    assert_int_equal(engine_apply(r, &s[0].b, NULL, NULL), LSMQ_EINVAL); /* twice */
    assert_int_equal(engine_apply(r, &s[2].b, NULL, NULL), LSMQ_EINVAL); /* a gap */
    assert_int_equal(engine_applied_sequence(r), s[0].b.seq + s[0].b.count - 1);

    /* Malformed: a count that is not the header's, a tag the engine never
     * writes, a family this store does not have. */
    engine_log_batch bad = s[1].b;
    bad.count++;
    assert_int_equal(engine_apply(r, &bad, NULL, NULL), LSMQ_EINVAL);
    uint8_t *copy = malloc(s[1].b.len);
    memcpy(copy, s[1].b.data, s[1].b.len);
    bad = s[1].b;
    bad.data = copy;
    copy[12] = 0x02; /* a merge */
    assert_int_equal(engine_apply(r, &bad, NULL, NULL), LSMQ_ECORRUPT);
    memcpy(copy, s[1].b.data, s[1].b.len);
    assert_true(copy[12] == 0x05 && copy[13] < 0x80);
    copy[13] = 0x7f; /* column family 127 */
    assert_int_equal(engine_apply(r, &bad, NULL, NULL), LSMQ_ECORRUPT);
    bad.len = 20; /* cut short */
    memcpy(copy, s[1].b.data, s[1].b.len);
    assert_int_equal(engine_apply(r, &bad, NULL, NULL), LSMQ_ECORRUPT);
    free(copy);
    /* A store format this build does not know. */
    uint8_t newer[] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
                       0x05, meta_cf_id(&s[1].b), 1, 'V', 4, 0, 0, 0, 99};
    bad = (engine_log_batch){.seq = s[1].b.seq, .count = 1, .data = newer, .len = sizeof newer};
    assert_int_equal(engine_apply(r, &bad, NULL, NULL), LSMQ_EVERSION);
    assert_int_equal(engine_applied_sequence(r), s[0].b.seq + s[0].b.count - 1);

    /* Still in order after all that; and across a reopen. */
    assert_int_equal(test_apply_wait(r, &s[1].b), 0);
    assert_int_equal(test_apply_wait(r, &s[2].b), 0);
    engine_close(r);
    r = open_replica(rdir, &rc);
    assert_int_equal(engine_applied_sequence(r), s[2].b.seq + s[2].b.count - 1);
    assert_int_equal(engine_apply(r, &s[2].b, NULL, NULL), LSMQ_EINVAL);
    assert_int_equal(test_apply_wait(r, &s[3].b), 0);
    uint64_t min, max;
    assert_int_equal(engine_queue_offsets(r, "Ordered", 7, 0, &min, &max), 0);
    assert_int_equal(max, 4);
    compare_state(m, r);

    for (size_t i = 0; i < n; i++)
        free(s[i].bytes);
    engine_close(r);
    pair_end(&p);
}

/* ---- Refusals ------------------------------------------------------------ */

static void done_never(void *ctx, int status)
{
    (void)ctx;
    (void)status;
    fail_msg("a refused write completed");
}

static void test_refusals(void **state)
{
    (void)state;
    pair p = pair_start("Refused");
    engine *m = p.m;
    const char *rdir = p.rdir;
    uint64_t cp_seq = p.cp_seq;
    saved_batch s[1];
    append(m, "Refused", 0, "x");
    assert_int_equal(save_log(m, cp_seq, s, 1), 1);
    /* A master applies nothing. */
    assert_int_equal(engine_apply(m, &s[0].b, NULL, NULL), LSMQ_EINVAL);
    assert_int_equal(engine_set_applied_sequence(m, 5), LSMQ_EINVAL);

    engine_config rc;
    engine *r = open_replica(rdir, &rc);
    engine_msg msg = test_msg("body", NULL);
    engine_append_result res;
    assert_int_equal(engine_append_wait(r, "Refused", 7, 0, &msg, 1, &res), LSMQ_EREADONLY);
    engine_topic_config tc;
    memset(&tc, 0, sizeof tc);
    snprintf(tc.name, sizeof tc.name, "Other");
    tc.read_queue_nums = tc.write_queue_nums = 1;
    tc.perm = 6;
    assert_int_equal(engine_topic_put(r, &tc, NULL), LSMQ_EREADONLY);
    assert_int_equal(engine_topic_put_async(r, &tc, done_never, NULL), LSMQ_EREADONLY);
    assert_int_equal(engine_topic_delete(r, "Refused", 7), LSMQ_EREADONLY);
    assert_int_equal(engine_topic_delete_async(r, "Refused", 7, done_never, NULL),
                     LSMQ_EREADONLY);
    assert_int_equal(engine_group_put(r, "G", 1, "{}", 2), LSMQ_EREADONLY);
    assert_int_equal(engine_group_put_async(r, "G", 1, "{}", 2, done_never, NULL),
                     LSMQ_EREADONLY);
    assert_int_equal(engine_group_delete(r, "G", 1), LSMQ_EREADONLY);
    assert_int_equal(engine_offset_set(r, "G", 1, "Refused", 7, 0, 1), LSMQ_EREADONLY);
    assert_int_equal(engine_offset_set_async(r, "G", 1, "Refused", 7, 0, 1, done_never, NULL),
                     LSMQ_EREADONLY);
    assert_int_equal(engine_retention_run(r), LSMQ_EREADONLY);
    /* Reads work as on a master. */
    uint32_t id;
    assert_int_equal(engine_topic_id(r, "Refused", 7, &id), 0);
    engine_read_result rr;
    assert_int_equal(engine_read(r, "Refused", 7, 0, 0, 1, READ_BYTES, &rr), 0);
    assert_int_equal(rr.status, ENGINE_READ_NO_MESSAGE);
    engine_close(r);

    /* Tools' read-only engines read no log. */
    engine *ro = NULL;
    char err[256];
    assert_int_equal(engine_open_readonly(rdir, &ro, err, sizeof err), 0);
    engine_log_reader *lr = NULL;
    assert_int_equal(engine_log_open(ro, 0, &lr), LSMQ_EINVAL);
    assert_int_equal(engine_apply(ro, &s[0].b, NULL, NULL), LSMQ_EINVAL);
    engine_close(ro);

    free(s[0].bytes);
    pair_end(&p);
}

/* ---- A write under way ------------------------------------------------------ */

/*
 * What a replica and its master say about a queue while the master's write
 * of the message at `offset` is under way: on_write runs after the write
 * reached the log and before the writer publishes it (before the WAL sync
 * of a SYNC_FLUSH master whose log is watched). A helper thread does the
 * shipping, since the log is not read on the writer's thread.
 */
typedef struct underway {
    engine *master, *replica;
    engine_log_reader *log;
    const char *topic;
    uint32_t queue;
    uint64_t offset;
    atomic_bool armed;
    int rc_ship, rc_reads;
    engine_read_result on_replica, next_on_master, beyond_on_master;
} underway;

static void *ship_and_read(void *arg)
{
    underway *u = arg;
    size_t tlen = strlen(u->topic);
    test_applied w;
    test_applied_init(&w);
    engine_log_batch b;
    size_t n = 0;
    int rc;
    while ((rc = engine_log_next(u->log, &b)) == 1 &&
           (rc = engine_apply(u->replica, &b, test_applied_cb, &w)) == 0)
        n++;
    u->rc_ship = rc == 0 ? test_applied_wait(&w, n) : rc;
    test_applied_destroy(&w);
    u->rc_reads = engine_read(u->replica, u->topic, tlen, u->queue, u->offset, READ_COUNT,
                              READ_BYTES, &u->on_replica) ||
                  engine_read(u->master, u->topic, tlen, u->queue, u->offset + 1, READ_COUNT,
                              READ_BYTES, &u->next_on_master) ||
                  engine_read(u->master, u->topic, tlen, u->queue, u->offset + 2, READ_COUNT,
                              READ_BYTES, &u->beyond_on_master);
    return NULL;
}

static void read_while_written(const engine_ext_env *x, uint64_t last_seq)
{
    (void)last_seq;
    underway *u = x->ctx;
    if (!atomic_exchange(&u->armed, false))
        return;
    pthread_t th;
    if (pthread_create(&th, NULL, ship_and_read, u) != 0)
        abort();
    pthread_join(th, NULL);
}

/* Append one message to u's queue, shipping it and reading around it meanwhile. */
static void append_underway(underway *u, engine *master, uint32_t queue, uint64_t offset)
{
    memset(&u->on_replica, 0, sizeof u->on_replica);
    u->queue = queue;
    u->offset = offset;
    u->rc_ship = u->rc_reads = -1;
    atomic_store(&u->armed, true);
    engine_append_result r = append(master, u->topic, queue, "under way");
    assert_int_equal(r.queue_offset, offset);
    assert_false(atomic_load(&u->armed));
    assert_int_equal(u->rc_ship, 0);
    assert_int_equal(u->rc_reads, 0);
    /* The replica serves the message already... */
    assert_int_equal(u->on_replica.status, ENGINE_READ_FOUND);
    assert_int_equal(u->on_replica.count, 1);
    assert_int_equal(u->on_replica.next_offset, offset + 1);
    engine_free(u->on_replica.data);
    /* ...and a consumer that read it there and asks its master for the next
     * one is told to wait for it, not sent back to read it again. */
    assert_int_equal(u->next_on_master.status, ENGINE_READ_OFFSET_OVERFLOW_ONE);
    assert_int_equal(u->next_on_master.next_offset, offset + 1);
    assert_int_equal(u->next_on_master.max_offset, offset); /* not published yet */
    assert_int_equal(u->next_on_master.count, 0);
    /* Beyond that write the offset is bad: the answer is the published end
     * (of an empty queue, as published: no message at all). */
    assert_int_equal(u->beyond_on_master.status,
                     offset == 0 ? ENGINE_READ_NO_MESSAGE : ENGINE_READ_OFFSET_OVERFLOW_BADLY);
    assert_int_equal(u->beyond_on_master.next_offset, offset);
}

static void test_offsets_of_a_write_under_way(void **state)
{
    (void)state;
    char *mdir = test_tmpdir("master"), *rdir = make_replica_dir();
    underway u = {.topic = "WayTopic"};
    engine_config mc, rc;
    master_config(&mc, mdir, NULL);
    engine_extension probe = {.name = "under-way", .ctx = &u,
                              .hook.on_write = read_while_written};
    assert_int_equal(engine_config_add_extension(&mc, &probe), 0);
    engine *m = test_engine_open(&mc);
    test_topic_create(m, u.topic, 2);
    append(m, u.topic, 0, "first");
    checkpoint_into(m, rdir);
    engine *r = open_replica(rdir, &rc);
    u.master = m;
    u.replica = r;
    assert_int_equal(engine_log_open(m, engine_applied_sequence(r), &u.log), 0);

    /* Queue 0 holds a message; the second is being written. */
    append_underway(&u, m, 0, 1);
    /* Queue 1 is empty: its first message is being written. */
    append_underway(&u, m, 1, 0);

    /* Once published, the next offset is the queue's end, and past it is bad again. */
    engine_read_result res;
    assert_int_equal(engine_read(m, u.topic, 8, 0, 2, READ_COUNT, READ_BYTES, &res), 0);
    assert_int_equal(res.status, ENGINE_READ_OFFSET_OVERFLOW_ONE);
    assert_int_equal(res.max_offset, 2);
    assert_int_equal(engine_read(m, u.topic, 8, 0, 3, READ_COUNT, READ_BYTES, &res), 0);
    assert_int_equal(res.status, ENGINE_READ_OFFSET_OVERFLOW_BADLY);
    assert_int_equal(res.next_offset, 2);
    assert_int_equal(engine_read(m, u.topic, 8, 1, 2, READ_COUNT, READ_BYTES, &res), 0);
    assert_int_equal(res.status, ENGINE_READ_OFFSET_OVERFLOW_BADLY);
    assert_int_equal(res.next_offset, 1);

    engine_log_close(u.log);
    engine_close(r);
    engine_close(m);
    test_rmdir_free(rdir);
    test_rmdir_free(mdir);
}

static void test_epochs(void **state)
{
    (void)state;
    pair p = pair_start("Epochs");
    engine *m = p.m;
    uint64_t epoch, seq;
    engine_epoch_entry h[ENGINE_EPOCHS_KEPT], x;
    size_t n;

    assert_int_equal(engine_position(m, &epoch, &seq), LSMQ_ENOTFOUND);
    assert_int_equal(engine_epoch_history(m, h, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(engine_epoch_begin(m, 0, NULL), LSMQ_EINVAL);
    uint64_t before = engine_last_sequence(m);
    assert_int_equal(engine_epoch_begin(m, 1, &x), 0);
    assert_int_equal(x.epoch, 1);
    assert_int_equal(x.start_seq, before + 1);
    assert_int_equal(engine_last_sequence(m), before + 1); /* one operation */
    assert_int_equal(x.prev_epoch, 0);
    assert_int_equal(x.prev_end_seq, before);
    assert_int_equal(engine_epoch_begin(m, 1, NULL), LSMQ_EINVAL);
    append(m, "Epochs", 0, "in epoch 1");
    assert_int_equal(engine_position(m, &epoch, &seq), 0);
    assert_int_equal(epoch, 1);
    assert_int_equal(seq, engine_last_sequence(m));
    for (uint64_t e = 2; e <= 21; e++) {
        uint64_t end = engine_last_sequence(m);
        assert_int_equal(engine_epoch_begin(m, e, &x), 0);
        assert_int_equal(x.prev_epoch, e - 1);
        assert_int_equal(x.prev_end_seq, end);
    }
    assert_int_equal(engine_epoch_history(m, h, &n), 0);
    assert_int_equal(n, ENGINE_EPOCHS_KEPT);
    assert_int_equal(h[0].epoch, 21 - ENGINE_EPOCHS_KEPT + 1);
    assert_memory_equal(&h[n - 1], &x, sizeof x);
    assert_int_equal(engine_set_position(m, 30, 5, NULL, 0), LSMQ_EINVAL);

    /* Last a master: reopened as a replica it still stands where it wrote last. */
    uint64_t m_last = engine_last_sequence(m);
    engine_close(m);
    engine_config rc;
    p.m = m = open_replica(p.mdir, &rc);
    assert_int_equal(engine_position(m, &epoch, &seq), 0);
    assert_int_equal(epoch, 21);
    assert_int_equal(seq, m_last);
    assert_int_equal(engine_epoch_begin(m, 22, NULL), LSMQ_EINVAL);

    /* Rebased: the given position and history, kept across a reopen. */
    engine_epoch_entry given[2] = {{21, 100, 20, 99}, {22, 180, 21, m_last}};
    assert_int_equal(engine_set_position(m, 22, 180, given, 2), 0);
    assert_int_equal(engine_applied_sequence(m), 180);
    engine_close(m);
    p.m = m = open_replica(p.mdir, &rc);
    assert_int_equal(engine_position(m, &epoch, &seq), 0);
    assert_int_equal(epoch, 22);
    assert_int_equal(seq, 180);
    assert_int_equal(engine_epoch_history(m, h, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(h, given, sizeof given);

    /* A replica made from a checkpoint: the position set_position names. */
    engine *r = open_replica(p.rdir, &rc);
    assert_int_equal(engine_set_position(r, 3, p.cp_seq, NULL, 0), 0);
    assert_int_equal(engine_position(r, &epoch, &seq), 0);
    assert_int_equal(epoch, 3);
    assert_int_equal(seq, p.cp_seq);
    engine_close(r);
    pair_end(&p);
}

/* Whether queue 0 of topic holds a readable message at offset. */
static bool readable_at(engine *e, const char *topic, uint64_t offset)
{
    engine_read_result rr;
    assert_int_equal(engine_read(e, topic, strlen(topic), 0, offset, 8, 1 << 20, &rr), 0);
    if (rr.status == ENGINE_READ_FOUND)
        engine_free(rr.data);
    else
        assert_int_equal(rr.status, ENGINE_READ_OFFSET_OVERFLOW_ONE);
    return rr.status == ENGINE_READ_FOUND;
}

/*
 * A replica with confirmed reads: its store opens with nothing readable
 * (never a correction back either); a restart renumbers what it held to the
 * position following began at, which a confirmation of that position
 * releases; what it applies later is readable once the master's confirmed
 * sequence covers its batch.
 */
static void test_replica_confirmed_reads(void **state)
{
    pair p = pair_start("Conf");
    append(p.m, "Conf", 0, "before-open");
    engine_config rc;
    test_engine_config(&rc, p.rdir);
    rc.replica = true;
    rc.confirmed_reads = true;
    engine *r = test_engine_open(&rc);
    follow(p.m, r);
    engine_close(r);

    r = test_engine_open(&rc);
    assert_false(readable_at(r, "Conf", 0));
    uint64_t since = engine_applied_sequence(r);
    engine_confirm_restart(r, since);
    engine_confirm(r, since - 1, NULL, NULL);
    assert_false(readable_at(r, "Conf", 0));
    engine_confirm(r, since, NULL, NULL);
    assert_true(readable_at(r, "Conf", 0));

    engine_append_result a = append(p.m, "Conf", 0, "after-open");
    follow(p.m, r);
    assert_false(readable_at(r, "Conf", 1));
    engine_confirm(r, a.last_seq, NULL, NULL);
    assert_true(readable_at(r, "Conf", 1));
    engine_close(r);
    pair_end(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_reads_in_order_and_resumes),
        cmocka_unit_test(test_log_retention_and_gap),
        cmocka_unit_test(test_replica_holds_the_masters_store),
        cmocka_unit_test(test_apply_in_order_only),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_offsets_of_a_write_under_way),
        cmocka_unit_test(test_epochs),
        cmocka_unit_test(test_replica_confirmed_reads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
