/*
 * test_index: the idx_time and idx_id indexes against brute force.
 *
 * Messages go to the queues of three topics on an injected clock that
 * stands still (runs of equal store times, inside batches and across
 * appends), creeps forward, jumps, and now and then goes backwards (the
 * store keeps store time non-decreasing per queue). Each queue is then read
 * back and decoded, and the program proves, live and again after a reopen:
 *
 *  - index_search_time with LOWER gives the first offset whose store time
 *    is >= T (the max offset when every message is older), and with UPPER
 *    the last offset whose store time is <= T (the min offset when every
 *    message is newer), exactly as a brute-force scan over the decoded
 *    records says, for T before everything, after everything, exactly at
 *    each run of equal times and one ms either side; neighbouring queues
 *    never leak into the answer; an empty queue answers its max offset; an
 *    unknown topic or queue gives LSMQ_ENOTFOUND; with messages stored at
 *    time 0, a negative T is still "before every message";
 *  - index_locate of every message's log position (the record's physical
 *    offset) names its topic id, queue and offset, index_get_by_position
 *    returns exactly the bytes engine_read returns, and positions that start
 *    no record (inside a record, the next log position, UINT64_MAX) give
 *    LSMQ_ENOTFOUND.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testsupport.h"

#define T0_MS INT64_C(1700000000000)
#define STEPS 600
#define MAX_BATCH 3
#define READ_COUNT 16
#define READ_BYTES 4096
#define BODY_CAP 64

typedef struct fake_clock {
    _Atomic int64_t now_ms;
} fake_clock;

static int fake_clock_ms(void *ctx, int64_t *now_ms)
{
    fake_clock *c = ctx;
    *now_ms = atomic_load(&c->now_ms);
    return 0;
}

/* One stored record as engine_read returned it. */
typedef struct stored {
    int64_t store_ms;
    uint64_t position;
    uint8_t *bytes;
    size_t len;
} stored;

typedef struct queue_ref {
    const char *topic;
    uint32_t queue;
    uint32_t topic_id;
    stored *recs; /* recs[i] is offset i */
    size_t n;
} queue_ref;

/* IdxA's queues sit next to each other in key order, IdxB and IdxE follow. */
static queue_ref QUEUES[] = {
    {"IdxA", 0, 0, NULL, 0}, {"IdxA", 1, 0, NULL, 0}, {"IdxA", 2, 0, NULL, 0},
    {"IdxB", 0, 0, NULL, 0}, {"IdxE", 0, 0, NULL, 0}, {"IdxE", 1, 0, NULL, 0},
};
#define N_QUEUES (sizeof QUEUES / sizeof QUEUES[0])
#define N_WRITTEN 4 /* the IdxE queues are never written */

static uint32_t next_rand(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

static void append_batch(engine *e, const queue_ref *q, uint32_t n, uint32_t seq)
{
    char bodies[MAX_BATCH][BODY_CAP];
    engine_msg msgs[MAX_BATCH];
    for (uint32_t i = 0; i < n; i++) {
        snprintf(bodies[i], BODY_CAP, "%s:%u #%u.%u", q->topic, q->queue, seq, i);
        msgs[i] = test_msg(bodies[i], "KEYS\001k\002");
    }
    engine_append_result r;
    int rc = engine_append_wait(e, q->topic, strlen(q->topic), q->queue, msgs, n, &r);
    if (rc != 0)
        fail_msg("append to %s:%u = %d", q->topic, q->queue, rc);
}

/* The clock stands still, creeps, jumps or steps back; then a batch goes somewhere. */
static void write_script(engine *e, fake_clock *clk)
{
    uint32_t rng = 0x2545f491u;
    int64_t now = T0_MS;
    for (uint32_t s = 0; s < STEPS; s++) {
        uint32_t r = next_rand(&rng) % 20;
        if (r < 8)
            ; /* stands still */
        else if (r < 13)
            now += 1;
        else if (r < 18)
            now += 1 + (int64_t)(next_rand(&rng) % 50);
        else
            now -= 1 + (int64_t)(next_rand(&rng) % 30);
        atomic_store(&clk->now_ms, now);
        const queue_ref *q = &QUEUES[next_rand(&rng) % N_WRITTEN];
        uint32_t n = 1 + next_rand(&rng) % MAX_BATCH;
        append_batch(e, q, n, s);
        if (s % 25 == 0) /* a long run of single appends at one ms */
            for (uint32_t k = 0; k < 4; k++)
                append_batch(e, q, 1, s * 100 + k);
    }
}

static void free_records(void)
{
    for (size_t i = 0; i < N_QUEUES; i++) {
        for (size_t k = 0; k < QUEUES[i].n; k++)
            free(QUEUES[i].recs[k].bytes);
        free(QUEUES[i].recs);
        QUEUES[i].recs = NULL;
        QUEUES[i].n = 0;
    }
}

/* Read every queue back into QUEUES; store times must not decrease. */
static void load_records(engine *e)
{
    free_records();
    for (size_t i = 0; i < N_QUEUES; i++) {
        queue_ref *q = &QUEUES[i];
        size_t tlen = strlen(q->topic);
        assert_int_equal(engine_topic_id(e, q->topic, tlen, &q->topic_id), 0);
        uint64_t min, max;
        assert_int_equal(engine_queue_offsets(e, q->topic, tlen, q->queue, &min, &max), 0);
        assert_int_equal(min, 0);
        q->recs = calloc(max ? max : 1, sizeof *q->recs);
        assert_non_null(q->recs);
        while (q->n < max) {
            engine_read_result rr;
            assert_int_equal(engine_read(e, q->topic, tlen, q->queue, q->n, READ_COUNT,
                                         READ_BYTES, &rr), 0);
            assert_int_equal(rr.status, ENGINE_READ_FOUND);
            size_t at = 0;
            for (uint32_t k = 0; k < rr.count; k++) {
                proto_record rec;
                long size = proto_record_decode(rr.data + at, rr.len - at, &rec);
                assert_true(size > 0);
                assert_int_equal(rec.queue_offset, q->n);
                stored *s = &q->recs[q->n];
                s->store_ms = rec.store_timestamp;
                s->position = (uint64_t)rec.physical_offset;
                s->len = (size_t)size;
                s->bytes = malloc(s->len);
                assert_non_null(s->bytes);
                memcpy(s->bytes, rr.data + at, s->len);
                if (q->n > 0 && s->store_ms < q->recs[q->n - 1].store_ms)
                    fail_msg("%s:%u offset %zu: store time %" PRId64 " went backwards", q->topic,
                             q->queue, q->n, s->store_ms);
                at += (size_t)size;
                q->n++;
            }
            assert_int_equal(at, rr.len);
            engine_free(rr.data);
        }
    }
}

/* ---- index_search_time ------------------------------------------------------ */

static uint64_t brute_lower(const queue_ref *q, int64_t ts)
{
    for (size_t o = 0; o < q->n; o++)
        if (q->recs[o].store_ms >= ts)
            return o;
    return q->n;
}

static uint64_t brute_upper(const queue_ref *q, int64_t ts)
{
    if (q->n == 0)
        return 0;
    uint64_t found = 0; /* the min offset when every message is newer */
    for (size_t o = 0; o < q->n; o++)
        if (q->recs[o].store_ms <= ts)
            found = o;
    return found;
}

static void check_time(engine *e, const queue_ref *q, int64_t ts)
{
    uint64_t lower = UINT64_MAX, upper = UINT64_MAX;
    assert_int_equal(test_search_time(e, q->topic_id, q->queue, ts, INDEX_TIME_LOWER, &lower),
                     0);
    assert_int_equal(test_search_time(e, q->topic_id, q->queue, ts, INDEX_TIME_UPPER, &upper),
                     0);
    uint64_t want_lower = brute_lower(q, ts), want_upper = brute_upper(q, ts);
    if (lower != want_lower || upper != want_upper)
        fail_msg("%s:%u at %" PRId64 ": LOWER %" PRIu64 " (expected %" PRIu64 "), UPPER %" PRIu64
                 " (expected %" PRIu64 "), %zu messages", q->topic, q->queue, ts, lower,
                 want_lower, upper, want_upper, q->n);
}

static void check_search_time(engine *e)
{
    size_t runs = 0;
    for (size_t i = 0; i < N_QUEUES; i++) {
        const queue_ref *q = &QUEUES[i];
        check_time(e, q, INT64_MIN);
        check_time(e, q, -1);
        check_time(e, q, 0);
        check_time(e, q, T0_MS - 1000);
        check_time(e, q, INT64_MAX);
        for (size_t o = 0; o < q->n; o++) {
            int64_t ms = q->recs[o].store_ms;
            if (o > 0 && ms == q->recs[o - 1].store_ms) {
                if (o == 1 || ms != q->recs[o - 2].store_ms)
                    runs++;
                continue;
            }
            check_time(e, q, ms - 1);
            check_time(e, q, ms);
            check_time(e, q, ms + 1);
        }
        if (q->n) {
            check_time(e, q, q->recs[q->n - 1].store_ms + 1000);
            check_time(e, q, q->recs[0].store_ms - 1000);
        }
    }
    assert_true(runs >= 10); /* the script did make runs of equal store times */

    /* Named cases, spelled out. */
    for (size_t i = 0; i < N_QUEUES; i++) {
        const queue_ref *q = &QUEUES[i];
        uint64_t off;
        if (q->n == 0) {
            assert_int_equal(test_search_time(e, q->topic_id, q->queue, T0_MS,
                                              INDEX_TIME_LOWER, &off), 0);
            assert_int_equal(off, 0);
            assert_int_equal(test_search_time(e, q->topic_id, q->queue, T0_MS,
                                              INDEX_TIME_UPPER, &off), 0);
            assert_int_equal(off, 0);
            continue;
        }
        int64_t first = q->recs[0].store_ms, last = q->recs[q->n - 1].store_ms;
        assert_int_equal(test_search_time(e, q->topic_id, q->queue, first - 1,
                                          INDEX_TIME_LOWER, &off), 0);
        assert_int_equal(off, 0);
        assert_int_equal(test_search_time(e, q->topic_id, q->queue, last + 1,
                                          INDEX_TIME_LOWER, &off), 0);
        assert_int_equal(off, q->n);
        assert_int_equal(test_search_time(e, q->topic_id, q->queue, last + 1,
                                          INDEX_TIME_UPPER, &off), 0);
        assert_int_equal(off, q->n - 1);
        assert_int_equal(test_search_time(e, q->topic_id, q->queue, last,
                                          INDEX_TIME_UPPER, &off), 0);
        assert_int_equal(off, q->n - 1);
    }

    uint64_t off;
    uint32_t unknown = QUEUES[N_QUEUES - 1].topic_id + 100;
    assert_int_equal(test_search_time(e, unknown, 0, T0_MS, INDEX_TIME_LOWER, &off),
                     LSMQ_ENOTFOUND);
    assert_int_equal(test_search_time(e, QUEUES[0].topic_id, 3, T0_MS, INDEX_TIME_LOWER, &off),
                     LSMQ_ENOTFOUND);
    assert_int_equal(test_search_time(e, QUEUES[3].topic_id, 1, T0_MS, INDEX_TIME_UPPER, &off),
                     LSMQ_ENOTFOUND);
}

/* ---- idx_id -------------------------------------------------------------------- */

static void expect_no_position(engine *e, uint64_t position)
{
    uint32_t tid, qid;
    uint64_t off;
    uint8_t *bytes = NULL;
    size_t len = 0;
    int lrc = test_locate(e, position, &tid, &qid, &off);
    int grc = test_get_by_position(e, position, &bytes, &len);
    if (lrc != LSMQ_ENOTFOUND || grc != LSMQ_ENOTFOUND)
        fail_msg("log position %" PRIu64 " starts no record, yet index_locate %d, "
                 "index_get_by_position %d", position, lrc, grc);
}

static void check_positions(engine *e)
{
    uint64_t end = engine_next_log_position(e);
    size_t total = 0;
    uint64_t bytes_total = 0;
    for (size_t i = 0; i < N_QUEUES; i++) {
        const queue_ref *q = &QUEUES[i];
        for (size_t o = 0; o < q->n; o++) {
            const stored *s = &q->recs[o];
            uint32_t tid = 0, qid = 0;
            uint64_t off = 0;
            int rc = test_locate(e, s->position, &tid, &qid, &off);
            if (rc != 0 || tid != q->topic_id || qid != q->queue || off != o)
                fail_msg("index_locate(%" PRIu64 ") = %d -> %u:%u:%" PRIu64
                         ", expected %u:%u:%zu", s->position, rc, tid, qid, off, q->topic_id,
                         q->queue, o);
            uint8_t *bytes = NULL;
            size_t len = 0;
            rc = test_get_by_position(e, s->position, &bytes, &len);
            if (rc != 0)
                fail_msg("index_get_by_position(%" PRIu64 ") = %d", s->position, rc);
            if (len != s->len || memcmp(bytes, s->bytes, len) != 0)
                fail_msg("index_get_by_position(%" PRIu64 ") differs from engine_read's record",
                         s->position);
            engine_free(bytes);
            assert_true(s->position + s->len <= end);
            expect_no_position(e, s->position + 1);
            expect_no_position(e, s->position + s->len / 2);
            total++;
            bytes_total += s->len;
        }
    }
    assert_int_equal(bytes_total, end); /* every record ever written is still here */
    assert_true(total > STEPS);
    expect_no_position(e, end);
    expect_no_position(e, end + 1);
    expect_no_position(e, UINT64_MAX);
}

/* ---- Tests ------------------------------------------------------------------- */

/* A store per test; teardown closes and removes it even when a check failed. */
typedef struct index_fixture {
    char *dir;
    engine_config cfg;
    fake_clock clk;
    engine *e;
} index_fixture;

static int fixture_setup(void **state)
{
    index_fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->dir = test_tmpdir("index");
    test_engine_config(&f->cfg, f->dir);
    f->cfg.retention_interval_ms = 3600000;
    atomic_init(&f->clk.now_ms, T0_MS);
    f->cfg.clock_ms = fake_clock_ms;
    f->cfg.clock_ctx = &f->clk;
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    index_fixture *f = *state;
    if (f->e)
        engine_close(f->e);
    free_records();
    test_rmdir_free(f->dir);
    free(f);
    return 0;
}

static void fixture_reopen(index_fixture *f)
{
    engine_close(f->e);
    f->e = NULL;
    f->e = test_engine_open(&f->cfg);
}

static void test_index_against_brute_force(void **state)
{
    index_fixture *f = *state;
    f->e = test_engine_open(&f->cfg);
    test_topic_create(f->e, "IdxA", 3);
    test_topic_create(f->e, "IdxB", 1);
    test_topic_create(f->e, "IdxE", 2);

    write_script(f->e, &f->clk);
    load_records(f->e);
    for (size_t i = 0; i < N_WRITTEN; i++)
        assert_true(QUEUES[i].n > 0);
    check_search_time(f->e);
    check_positions(f->e);

    /* After a reopen the indexes come from disk. */
    uint64_t end = engine_next_log_position(f->e);
    fixture_reopen(f);
    assert_int_equal(engine_next_log_position(f->e), end);
    load_records(f->e);
    check_search_time(f->e);
    check_positions(f->e);
}

/*
 * Store times start at 0 (the first messages at the epoch), so a search for
 * a negative T has every message newer than T: LOWER and UPPER both give the
 * min offset, not the last message stored at 0.
 */
static void test_index_search_before_epoch(void **state)
{
    index_fixture *f = *state;
    atomic_store(&f->clk.now_ms, 0);
    f->e = test_engine_open(&f->cfg);
    engine *e = f->e;
    test_topic_create(e, "IdxZero", 1);
    queue_ref q = {"IdxZero", 0, 0, NULL, 0};
    for (uint32_t i = 0; i < 3; i++)
        append_batch(e, &q, 1, i);
    atomic_store(&f->clk.now_ms, 5);
    append_batch(e, &q, 2, 3);

    assert_int_equal(engine_topic_id(e, q.topic, strlen(q.topic), &q.topic_id), 0);
    stored recs[5];
    memset(recs, 0, sizeof recs);
    engine_read_result rr;
    assert_int_equal(engine_read(e, q.topic, strlen(q.topic), 0, 0, 5, READ_BYTES, &rr), 0);
    size_t at = 0;
    for (uint32_t k = 0; k < rr.count && k < 5; k++) {
        proto_record rec;
        long size = proto_record_decode(rr.data + at, rr.len - at, &rec);
        if (size <= 0)
            break;
        recs[k].store_ms = rec.store_timestamp;
        at += (size_t)size;
    }
    uint32_t count = rr.count;
    engine_free(rr.data);
    assert_int_equal(count, 5);
    assert_int_equal(at, rr.len);
    assert_int_equal(recs[0].store_ms, 0);
    assert_int_equal(recs[2].store_ms, 0);
    assert_int_equal(recs[3].store_ms, 5);
    q.recs = recs;
    q.n = 5;

    static const int64_t probes[] = {INT64_MIN, -5, -1, 0, 1, 4, 5, 6, INT64_MAX};
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++)
        check_time(e, &q, probes[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_index_against_brute_force, fixture_setup,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(test_index_search_before_epoch, fixture_setup,
                                        fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
