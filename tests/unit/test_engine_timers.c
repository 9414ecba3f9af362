/*
 * Delayed delivery in the engine (engine_append_timed): a pending message
 * becomes readable in its real queue exactly at its due time on the engine
 * clock (a fake one here), restamped (new offset, log position and store
 * time) with body and properties unchanged; moves run in due order across
 * topics; the pending counts follow; a reopen keeps pending messages, their
 * counts and the next due time; a burst of due messages never starves the
 * appends queued behind it; a deleted topic's pending messages are dropped;
 * a replica applies its master's moves and never moves by itself.
 *
 * The writer is woken after each clock step by a consumer offset commit,
 * which rides in the writer's next group: once it returns, the moves of
 * that group are committed.
 */
#include "testsupport.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "props.h"

#define T0 1700000000000LL

static char *dir;

typedef struct fake_clock {
    _Atomic int64_t now_ms;
} fake_clock;

static fake_clock clk;

static int fake_clock_ms(void *ctx, int64_t *now_ms)
{
    *now_ms = atomic_load(&((fake_clock *)ctx)->now_ms);
    return 0;
}

static int setup(void **state)
{
    dir = test_tmpdir("timers");
    atomic_store(&clk.now_ms, T0);
    return 0;
}

static int teardown(void **state)
{
    test_rmdir_free(dir);
    dir = NULL;
    return 0;
}

static engine *open_store(const char *sub)
{
    char *path;
    assert_true(asprintf(&path, "%s/%s", dir, sub) > 0);
    engine_config c;
    test_engine_config(&c, path);
    c.clock_ms = fake_clock_ms;
    c.clock_ctx = &clk;
    c.disk_max_used_ratio = 0; /* no removals on a shared disk */
    engine *e = test_engine_open(&c);
    free(path);
    return e;
}

/* Let the writer run one group now (it moves what is due in it). */
static void kick(engine *e, const char *topic)
{
    assert_int_equal(engine_offset_set(e, "kick", 4, topic, strlen(topic), 0, 0), 0);
}

static void set_clock(engine *e, const char *topic, int64_t ms)
{
    atomic_store(&clk.now_ms, ms);
    kick(e, topic);
}

static uint32_t topic_id(engine *e, const char *topic)
{
    uint32_t id;
    assert_int_equal(engine_topic_id(e, topic, strlen(topic), &id), 0);
    return id;
}

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    engine_append_result r;
} waiter;

/* Writer thread: hand the outcome to the waiting test. */
static void waiter_cb(void *ctx, const engine_append_result *r)
{
    waiter *w = ctx;
    pthread_mutex_lock(&w->mu);
    w->r = *r;
    w->r.log_positions = NULL;
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static engine_append_result append_timed(engine *e, const char *topic, uint32_t queue,
                                         const engine_msg *m, uint32_t n, int64_t due)
{
    waiter w = {.done = 0};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    assert_int_equal(engine_append_timed(e, topic, strlen(topic), queue, m, n, due, waiter_cb,
                                         &w), 0);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    assert_int_equal(w.r.status, 0);
    return w.r;
}

/* Records of one queue from offset on, decoded into out (at most max). */
static uint32_t read_queue(engine *e, const char *topic, uint32_t queue, uint64_t offset,
                           proto_record *out, uint32_t max, engine_read_result *rr)
{
    assert_int_equal(engine_read(e, topic, strlen(topic), queue, offset, max, 64u << 20, rr),
                     0);
    if (rr->status != ENGINE_READ_FOUND)
        return 0;
    size_t at = 0;
    for (uint32_t i = 0; i < rr->count; i++) {
        long len = proto_record_decode(rr->data + at, rr->len - at, &out[i]);
        assert_true(len > 0);
        at += (size_t)len;
    }
    return rr->count;
}

static void test_delivered_exactly_at_due_time(void **state)
{
    engine *e = open_store("due");
    test_topic_create(e, "TimerA", 2);
    engine_msg plain = test_msg("plain", NULL);
    assert_int_equal(engine_append_wait(e, "TimerA", 6, 0, &plain, 1, NULL), 0);

    engine_msg m[3] = {
        test_msg("d0", "KEYS\001k0\002UNIQ_KEY\001U0\002"),
        test_msg("d1", "KEYS\001k1\002UNIQ_KEY\001U1\002"),
        test_msg("d2", "KEYS\001k2\002UNIQ_KEY\001U2\002"),
    };
    uint64_t pos_before = engine_next_log_position(e);
    engine_append_result r = append_timed(e, "TimerA", 0, m, 3, T0 + 5000);
    assert_int_equal(r.queue_offset, 0);
    assert_int_equal(r.log_position, pos_before);
    assert_int_equal(r.store_ms, T0);
    assert_true(engine_next_log_position(e) > pos_before);
    uint32_t tid = topic_id(e, "TimerA");
    assert_int_equal(engine_timer_pending(e, tid), 3);
    assert_int_equal(engine_timer_pending_total(e), 3);

    proto_record recs[8];
    engine_read_result rr;
    set_clock(e, "TimerA", T0 + 4999);
    assert_int_equal(read_queue(e, "TimerA", 0, 1, recs, 8, &rr), 0);
    assert_int_equal(rr.status, ENGINE_READ_OFFSET_OVERFLOW_ONE);
    assert_int_equal(engine_timer_pending(e, tid), 3);

    uint64_t pos_move = engine_next_log_position(e);
    set_clock(e, "TimerA", T0 + 5000);
    assert_int_equal(read_queue(e, "TimerA", 0, 1, recs, 8, &rr), 3);
    for (uint32_t i = 0; i < 3; i++) {
        assert_int_equal(recs[i].queue_offset, 1 + i);
        assert_int_equal(recs[i].queue_id, 0);
        assert_int_equal(recs[i].store_timestamp, T0 + 5000);
        assert_true((uint64_t)recs[i].physical_offset >= pos_move);
        assert_int_equal(recs[i].body_len, 2);
        assert_memory_equal(recs[i].body, m[i].body, 2);
        assert_int_equal(recs[i].props_len, m[i].props_len);
        assert_memory_equal(recs[i].props, m[i].props, m[i].props_len);
        assert_int_equal(proto_record_check_crc(&recs[i]), 0);
    }
    engine_free(rr.data);
    assert_int_equal(engine_timer_pending(e, tid), 0);
    assert_int_equal(engine_timer_pending_total(e), 0);
    /* Appends continue after the delivered ones. */
    engine_append_result pr;
    assert_int_equal(engine_append_wait(e, "TimerA", 6, 0, &plain, 1, &pr), 0);
    assert_int_equal(pr.queue_offset, 4);
    engine_close(e);
}

typedef struct pending_walk {
    int n;
    char bodies[8][8];
    int64_t due[8];
    uint32_t topic_ids[8];
} pending_walk;

static int note_pending(void *ctx, const engine_pending_msg *m)
{
    pending_walk *w = ctx;
    proto_record r;
    assert_true(proto_record_decode(m->record, m->record_len, &r) > 0);
    assert_int_equal(r.physical_offset, m->log_position);
    assert_true(w->n < 8 && r.body_len < 8);
    memcpy(w->bodies[w->n], r.body, r.body_len);
    w->bodies[w->n][r.body_len] = 0;
    w->due[w->n] = m->deliver_ms;
    w->topic_ids[w->n++] = m->topic_id;
    return 0;
}

static void test_due_order_across_topics(void **state)
{
    engine *e = open_store("order");
    test_topic_create(e, "OrdA", 1);
    test_topic_create(e, "OrdB", 1);
    engine_msg a10 = test_msg("a10", NULL), b20 = test_msg("b20", NULL);
    engine_msg a30 = test_msg("a30", NULL), b5 = test_msg("b5", NULL);
    append_timed(e, "OrdA", 0, &a10, 1, T0 + 10);
    append_timed(e, "OrdB", 0, &b20, 1, T0 + 20);
    append_timed(e, "OrdA", 0, &a30, 1, T0 + 30);
    append_timed(e, "OrdB", 0, &b5, 1, T0 + 5);
    assert_int_equal(engine_timer_pending(e, topic_id(e, "OrdA")), 2);
    assert_int_equal(engine_timer_pending(e, topic_id(e, "OrdB")), 2);

    /* A view lists them in due order, within a due range. */
    pending_walk w = {0};
    engine_view *v;
    assert_int_equal(engine_view_open(e, &v), 0);
    assert_int_equal(engine_view_timers(v, 0, INT64_MAX, note_pending, &w), 0);
    assert_int_equal(w.n, 4);
    const char *want[] = {"b5", "a10", "b20", "a30"};
    for (int i = 0; i < 4; i++)
        assert_string_equal(w.bodies[i], want[i]);
    assert_int_equal(w.due[0], T0 + 5);
    assert_int_equal(w.topic_ids[1], topic_id(e, "OrdA"));
    memset(&w, 0, sizeof w);
    assert_int_equal(engine_view_timers(v, T0 + 10, T0 + 30, note_pending, &w), 0);
    assert_int_equal(w.n, 2);
    assert_string_equal(w.bodies[0], "a10");
    engine_view_close(v);

    set_clock(e, "OrdA", T0 + 100);
    proto_record a[4], b[4];
    engine_read_result ra, rb;
    assert_int_equal(read_queue(e, "OrdA", 0, 0, a, 4, &ra), 2);
    assert_int_equal(read_queue(e, "OrdB", 0, 0, b, 4, &rb), 2);
    assert_memory_equal(b[0].body, "b5", 2);
    assert_memory_equal(a[0].body, "a10", 3);
    assert_memory_equal(b[1].body, "b20", 3);
    assert_memory_equal(a[1].body, "a30", 3);
    /* Log positions follow due times: b5 < a10 < b20 < a30. */
    assert_true(b[0].physical_offset < a[0].physical_offset);
    assert_true(a[0].physical_offset < b[1].physical_offset);
    assert_true(b[1].physical_offset < a[1].physical_offset);
    engine_free(ra.data);
    engine_free(rb.data);
    assert_int_equal(engine_timer_pending_total(e), 0);
    engine_close(e);
}

static void test_reopen_keeps_pending(void **state)
{
    engine *e = open_store("reopen");
    test_topic_create(e, "Reo", 2);
    engine_msg m[2] = {test_msg("soon0", NULL), test_msg("soon1", NULL)};
    engine_msg late = test_msg("late", NULL);
    append_timed(e, "Reo", 1, m, 2, T0 + 10);
    append_timed(e, "Reo", 0, &late, 1, T0 + 1000);
    uint32_t tid = topic_id(e, "Reo");
    engine_close(e);

    e = open_store("reopen");
    assert_int_equal(engine_timer_pending(e, tid), 3);
    assert_int_equal(engine_timer_pending_total(e), 3);
    engine_close(e);

    atomic_store(&clk.now_ms, T0 + 500);
    e = open_store("reopen");
    kick(e, "Reo");
    proto_record recs[4];
    engine_read_result rr;
    assert_int_equal(read_queue(e, "Reo", 1, 0, recs, 4, &rr), 2);
    assert_int_equal(recs[0].store_timestamp, T0 + 500);
    engine_free(rr.data);
    assert_int_equal(read_queue(e, "Reo", 0, 0, recs, 4, &rr), 0);
    assert_int_equal(engine_timer_pending(e, tid), 1);
    engine_close(e);

    /* Each only once, across another reopen. */
    e = open_store("reopen");
    set_clock(e, "Reo", T0 + 1000);
    assert_int_equal(read_queue(e, "Reo", 0, 0, recs, 4, &rr), 1);
    assert_memory_equal(recs[0].body, "late", 4);
    engine_free(rr.data);
    assert_int_equal(read_queue(e, "Reo", 1, 0, recs, 4, &rr), 2);
    engine_free(rr.data);
    assert_int_equal(engine_timer_pending_total(e), 0);
    engine_close(e);
}

static void test_deleted_topic_drops_pending(void **state)
{
    engine *e = open_store("drop");
    test_topic_create(e, "Gone", 1);
    test_topic_create(e, "Kept", 1);
    engine_msg g = test_msg("gone", "UNIQ_KEY\001G1\002");
    engine_msg k = test_msg("kept", NULL);
    engine_append_result rg = append_timed(e, "Gone", 0, &g, 1, T0 + 50);
    append_timed(e, "Kept", 0, &k, 1, T0 + 60);
    uint32_t gid = topic_id(e, "Gone");
    assert_int_equal(engine_topic_delete(e, "Gone", 4), 0);
    /* Nothing of it is found any more, though its entry waits for its due time. */
    uint32_t t, q;
    uint64_t off;
    assert_int_equal(test_locate(e, rg.log_position, &t, &q, &off), LSMQ_ENOTFOUND);
    test_topic_create(e, "Gone", 1); /* a new topic id */
    set_clock(e, "Kept", T0 + 100);
    assert_int_equal(engine_timer_pending(e, gid), 0);
    assert_int_equal(engine_timer_pending_total(e), 0);
    proto_record recs[2];
    engine_read_result rr;
    assert_int_equal(read_queue(e, "Gone", 0, 0, recs, 2, &rr), 0);
    assert_int_equal(read_queue(e, "Kept", 0, 0, recs, 2, &rr), 1);
    engine_free(rr.data);
    assert_int_equal(test_index_consistency(e, 5), 0);
    engine_close(e);
}

/* A topic shrunk below a pending message's queue (and reopened) still gets it. */
static void test_delivered_into_a_queue_shrunk_away(void **state)
{
    engine *e = open_store("shrink");
    test_topic_create(e, "Shr", 4);
    engine_msg m = test_msg("late", NULL);
    append_timed(e, "Shr", 3, &m, 1, T0 + 10);
    engine_topic_config tc;
    assert_int_equal(engine_topic_get(e, "Shr", 3, &tc), 0);
    tc.read_queue_nums = tc.write_queue_nums = 1;
    assert_int_equal(engine_topic_put(e, &tc, NULL), 0);
    uint32_t tid = tc.topic_id;
    engine_close(e);

    e = open_store("shrink");
    set_clock(e, "Shr", T0 + 10);
    assert_int_equal(engine_timer_pending_total(e), 0);
    engine_view *v;
    assert_int_equal(engine_view_open(e, &v), 0);
    engine_msg_pos at = {tid, 3, 0};
    uint8_t *rec;
    size_t len;
    assert_int_equal(engine_view_message(v, &at, &rec, &len), 0);
    proto_record r;
    assert_true(proto_record_decode(rec, len, &r) > 0);
    assert_int_equal(r.queue_id, 3);
    assert_memory_equal(r.body, "late", 4);
    engine_free(rec);
    engine_queue_info qi;
    assert_int_equal(engine_view_queue(v, tid, 3, &qi), 0);
    assert_int_equal(qi.max_offset, 1);
    engine_view_close(v);
    engine_close(e);
}

/* The one hit of key in topic tid (kinds any); its queue, offset and position. */
static index_key_hit one_hit(engine *e, uint32_t tid, const char *key)
{
    index_key_hit *hits;
    size_t n;
    assert_int_equal(test_query_key(e, tid, key, strlen(key), INDEX_KEY_KEYS | INDEX_KEY_UNIQ,
                                    INT64_MIN, INT64_MAX, 16, &hits, &n), 0);
    assert_int_equal(n, 1);
    index_key_hit h = hits[0];
    engine_free(hits);
    return h;
}

static void test_index_finds_pending_then_delivered(void **state)
{
    engine *e = open_store("index");
    test_topic_create(e, "Idx", 2);
    uint32_t tid = topic_id(e, "Idx");
    engine_msg m = test_msg("wait", "KEYSorder-7 otherUNIQ_KEYUQ7");
    engine_append_result r = append_timed(e, "Idx", 1, &m, 1, T0 + 300);
    assert_int_equal(test_index_consistency(e, 5), 0);

    uint32_t t, q;
    uint64_t off;
    assert_int_equal(test_locate(e, r.log_position, &t, &q, &off), 0);
    assert_int_equal(t, tid);
    assert_int_equal(q, ENGINE_QUEUE_PENDING);
    assert_int_equal(off, T0 + 300);
    uint8_t *rec;
    size_t len;
    proto_record pr;
    assert_int_equal(test_get_by_position(e, r.log_position, &rec, &len), 0);
    assert_true(proto_record_decode(rec, len, &pr) > 0);
    assert_int_equal(pr.physical_offset, r.log_position);
    assert_int_equal(pr.store_timestamp, T0);
    assert_int_equal(pr.queue_id, 1);
    assert_memory_equal(pr.body, "wait", 4);
    engine_free(rec);
    const char *keys[] = {"order-7", "other", "UQ7"};
    for (size_t i = 0; i < 3; i++) {
        index_key_hit h = one_hit(e, tid, keys[i]);
        assert_int_equal(h.queue_id, ENGINE_QUEUE_PENDING);
        assert_int_equal(h.queue_offset, T0 + 300);
        assert_int_equal(h.log_position, r.log_position);
        assert_int_equal(h.store_ms, T0);
    }

    set_clock(e, "Idx", T0 + 300);
    assert_int_equal(test_locate(e, r.log_position, &t, &q, &off), LSMQ_ENOTFOUND);
    index_key_hit h = one_hit(e, tid, "UQ7");
    assert_int_equal(h.queue_id, 1);
    assert_int_equal(h.queue_offset, 0);
    assert_int_equal(h.store_ms, T0 + 300);
    assert_true(h.log_position != r.log_position);
    assert_int_equal(one_hit(e, tid, "order-7").log_position, h.log_position);
    assert_int_equal(test_locate(e, h.log_position, &t, &q, &off), 0);
    assert_int_equal(q, 1);
    assert_int_equal(off, 0);
    assert_int_equal(test_get_by_position(e, h.log_position, &rec, &len), 0);
    assert_true(proto_record_decode(rec, len, &pr) > 0);
    assert_int_equal(pr.physical_offset, h.log_position);
    engine_free(rec);
    uint64_t at;
    assert_int_equal(test_search_time(e, tid, 1, T0 + 300, INDEX_TIME_LOWER, &at), 0);
    assert_int_equal(at, 0);
    assert_int_equal(test_index_consistency(e, 5), 0);
    engine_close(e);
}

/* ---- A replica: it applies its master's moves and never moves by itself ---- */

static engine *open_with_clock(const char *sub, fake_clock *fc, bool replica)
{
    char *path;
    assert_true(asprintf(&path, "%s/%s", dir, sub) > 0);
    engine_config c;
    test_engine_config(&c, path);
    c.clock_ms = fake_clock_ms;
    c.clock_ctx = fc;
    c.disk_max_used_ratio = 0;
    c.replica = replica;
    engine *e = test_engine_open(&c);
    free(path);
    return e;
}

/* Apply every batch of the master's log the replica lacks. */
static void follow(engine *master, engine *replica)
{
    engine_log_reader *r = NULL;
    assert_int_equal(engine_log_open(master, engine_applied_sequence(replica), &r), 0);
    engine_log_batch b;
    int rc;
    while ((rc = engine_log_next(r, &b)) == 1)
        assert_int_equal(test_apply_wait(replica, &b), 0);
    assert_int_equal(rc, 0);
    engine_log_close(r);
    assert_int_equal(engine_applied_sequence(replica), engine_last_sequence(master));
}

static void test_replica_applies_moves_only(void **state)
{
    fake_clock mclk, rclk;
    atomic_init(&mclk.now_ms, T0);
    atomic_init(&rclk.now_ms, T0 + 10000); /* long past every due time */
    engine *m = open_with_clock("rm", &mclk, false);
    engine *r = open_with_clock("rr", &rclk, true);
    test_topic_create(m, "Rep", 1);
    engine_msg first = test_msg("first", "UNIQ_KEY\001R1\002");
    engine_msg second = test_msg("second", "UNIQ_KEY\001R2\002");
    append_timed(m, "Rep", 0, &first, 1, T0 + 100);
    append_timed(m, "Rep", 0, &second, 1, T0 + 200);
    follow(m, r);
    uint32_t tid = topic_id(m, "Rep");
    assert_int_equal(engine_timer_pending(r, tid), 2);
    assert_int_equal(engine_timer_pending_total(r), 2);
    uint64_t min, max;
    assert_int_equal(engine_queue_offsets(r, "Rep", 3, 0, &min, &max), 0);
    assert_int_equal(max, 0); /* its own clock says due: it still waits for the master */

    atomic_store(&mclk.now_ms, T0 + 100);
    kick(m, "Rep");
    follow(m, r);
    assert_int_equal(engine_timer_pending(r, tid), 1);
    proto_record recs[2];
    engine_read_result rr;
    assert_int_equal(read_queue(r, "Rep", 0, 0, recs, 2, &rr), 1);
    assert_memory_equal(recs[0].body, "first", 5);
    assert_int_equal(recs[0].store_timestamp, T0 + 100);
    engine_free(rr.data);
    assert_int_equal(test_index_consistency(r, 5), 0);
    engine_close(m);
    engine_close(r);

    /* The replica's store opened as a master: it moves what is due at once. */
    r = open_with_clock("rr", &rclk, false);
    kick(r, "Rep");
    assert_int_equal(engine_timer_pending_total(r), 0);
    assert_int_equal(read_queue(r, "Rep", 0, 1, recs, 2, &rr), 1);
    assert_memory_equal(recs[0].body, "second", 6);
    assert_int_equal(recs[0].store_timestamp, T0 + 10000);
    engine_free(rr.data);
    engine_close(r);
}

/* ---- Hooks ---------------------------------------------------------------- */

typedef struct hook_log {
    int pends, appends, delivered, dropped;
    uint64_t pend_queue, pend_offset, delivered_old_pos;
    int64_t delivered_old_store_ms;
    int advances;
    uint32_t advance_queue;
    uint64_t advance_max;
} hook_log;

static void log_pend(const engine_ext_env *x, engine_batch *b, const engine_stored_msg *m)
{
    hook_log *l = x->ctx;
    l->pends++;
    l->pend_queue = m->queue_id;
    l->pend_offset = m->queue_offset;
}

static void log_append(const engine_ext_env *x, engine_batch *b, const engine_stored_msg *m)
{
    ((hook_log *)x->ctx)->appends++;
}

static void log_deliver(const engine_ext_env *x, engine_batch *b, uint64_t old_position,
                        int64_t old_store_ms, const engine_stored_msg *m)
{
    hook_log *l = x->ctx;
    if (!m) {
        l->dropped++;
        return;
    }
    l->delivered++;
    l->delivered_old_pos = old_position;
    l->delivered_old_store_ms = old_store_ms;
}

static void log_advance(const engine_ext_env *x, uint32_t topic_id, uint32_t queue_id,
                        uint64_t max_offset)
{
    hook_log *l = x->ctx;
    l->advances++;
    l->advance_queue = queue_id;
    l->advance_max = max_offset;
}

static void test_hooks_see_pend_deliver_advance(void **state)
{
    static hook_log l;
    memset(&l, 0, sizeof l);
    static engine_extension x = {.name = "hooklog", .ctx = &l,
                                 .hook = {.on_pend = log_pend, .on_append = log_append,
                                          .on_deliver = log_deliver,
                                          .on_advance = log_advance}};
    char *path;
    assert_true(asprintf(&path, "%s/hooks", dir) > 0);
    engine_config c;
    test_engine_config(&c, path);
    c.clock_ms = fake_clock_ms;
    c.clock_ctx = &clk;
    c.disk_max_used_ratio = 0; /* no removals on a shared disk */
    assert_int_equal(engine_config_add_extension(&c, &x), 0);
    engine *e = test_engine_open(&c);
    free(path);
    test_topic_create(e, "Hk", 2);
    test_topic_create(e, "HkGone", 1);
    engine_msg m = test_msg("h", NULL);
    engine_append_result r = append_timed(e, "Hk", 1, &m, 1, T0 + 40);
    append_timed(e, "HkGone", 0, &m, 1, T0 + 40);
    assert_int_equal(l.pends, 2);
    assert_int_equal(l.appends, 0); /* not for a pending message */
    assert_int_equal(l.pend_queue, ENGINE_QUEUE_PENDING);
    assert_int_equal(l.pend_offset, T0 + 40);
    assert_int_equal(engine_topic_delete(e, "HkGone", 6), 0);
    set_clock(e, "Hk", T0 + 41);
    assert_int_equal(l.appends, 1);
    assert_int_equal(l.delivered, 1);
    assert_int_equal(l.dropped, 1);
    assert_int_equal(l.delivered_old_pos, r.log_position);
    assert_int_equal(l.delivered_old_store_ms, T0);
    assert_int_equal(l.advances, 1); /* a master hears of the queue a move advanced */
    assert_int_equal(l.advance_queue, 1);
    assert_int_equal(l.advance_max, 1);
    engine_close(e);
}

#define BURST 100000
#define BURST_BATCH 1000

static void test_burst_does_not_starve_appends(void **state)
{
    engine *e = open_store("burst");
    test_topic_create(e, "Burst", 1);
    static engine_msg msgs[BURST_BATCH];
    static char bodies[BURST_BATCH][16];
    for (uint32_t sent = 0; sent < BURST; sent += BURST_BATCH) {
        for (uint32_t i = 0; i < BURST_BATCH; i++) {
            snprintf(bodies[i], sizeof bodies[i], "%07u", sent + i);
            msgs[i] = test_msg(bodies[i], NULL);
        }
        append_timed(e, "Burst", 0, msgs, BURST_BATCH, T0 + 7);
    }
    assert_int_equal(engine_timer_pending_total(e), BURST);

    atomic_store(&clk.now_ms, T0 + 7);
    engine_msg plain = test_msg("plain", NULL);
    engine_append_result r;
    assert_int_equal(engine_append_wait(e, "Burst", 5, 0, &plain, 1, &r), 0);
    /* The append went in while the burst was under way (an unbounded move would
     * have put all of it first), and completed before the burst ended. */
    assert_true(r.queue_offset < BURST);
    assert_true(engine_timer_pending_total(e) > 0);

    while (engine_timer_pending_total(e) > 0)
        kick(e, "Burst");
    /* Everything arrived once, in send order (same due time: log position order). */
    uint64_t min, max;
    assert_int_equal(engine_queue_offsets(e, "Burst", 5, 0, &min, &max), 0);
    assert_int_equal(max, BURST + 1);
    static proto_record recs[4096];
    uint32_t next_body = 0;
    int64_t last_store = 0;
    for (uint64_t off = 0; off < max;) {
        engine_read_result rr;
        uint32_t n = read_queue(e, "Burst", 0, off, recs, 4096, &rr);
        assert_true(n > 0);
        for (uint32_t i = 0; i < n; i++) {
            assert_int_equal(recs[i].queue_offset, off + i);
            assert_true(recs[i].store_timestamp >= last_store);
            last_store = recs[i].store_timestamp;
            if (recs[i].body_len == 5)
                continue; /* the plain one */
            char want[16];
            snprintf(want, sizeof want, "%07u", next_body++);
            assert_memory_equal(recs[i].body, want, 7);
        }
        off += n;
        engine_free(rr.data);
    }
    assert_int_equal(next_body, BURST);
    engine_close(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delivered_exactly_at_due_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_due_order_across_topics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_topic_drops_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivered_into_a_queue_shrunk_away, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_index_finds_pending_then_delivered, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_replica_applies_moves_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hooks_see_pend_deliver_advance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_burst_does_not_starve_appends, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
