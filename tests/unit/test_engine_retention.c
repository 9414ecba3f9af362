/*
 * test_engine_retention: retention by age and by disk usage.
 *
 * The engine runs on an injected clock and an injected disk-usage ratio, and
 * its background pass is made rare (once an hour), so each test decides
 * what "now" is and when engine_retention_run() happens. Every appended
 * record is copied into a model as it was stored; one queue of each test
 * carries IPv6 born hosts, which move the store time inside the record.
 * The program proves:
 *
 *  - by age (fileReservedTime = 1 h): exactly the messages whose store time
 *    is before now - 1 h go, queue by queue (a message stored exactly at the
 *    cut-off stays); the min offset moves to the first survivor, reads below
 *    it say OFFSET_TOO_SMALL and point at it, survivors read back byte for
 *    byte; idx_id lookups (index_locate, index_get_by_position) of removed
 *    log positions find nothing while live ones resolve to the same bytes;
 *    index_search_time agrees with a brute-force model over the survivors
 *    and never answers a removed offset; engine_retention_removed() counts
 *    exactly the removed messages;
 *  - after a reopen the min offsets are recomputed from the store, and a
 *    later pass on the reopened store cuts again at the right place;
 *  - high-water marks: queues emptied by retention keep their max offsets,
 *    and the store its next log position, across a reopen; the next append
 *    gets exactly those (no offset, no log position is reused);
 *  - by disk usage (diskMaxUsedSpaceRatio = 75 %): at 90 % a pass removes
 *    the messages stored in the oldest tenth of the stored time span and
 *    nothing newer, a second pass the next tenth of what is left; at 50 %,
 *    or when the usage cannot be read, nothing goes.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testsupport.h"

#define T0_MS INT64_C(1700000000000)
#define MINUTE_MS INT64_C(60000)
#define HOUR_MS (60 * MINUTE_MS)
#define READ_COUNT 32
#define READ_BYTES (1u << 20)
#define BODY_CAP 96
#define MAX_BATCH 4

static const char PROPS[] = "TAGS\001retention\002";

/* ---- Injected clock and disk usage --------------------------------------- */

typedef struct fake_env {
    _Atomic int64_t now_ms;
    _Atomic int usage_permille; /* reported usage in 1/1000; negative: the call fails */
    _Atomic int usage_calls;
    _Atomic int usage_path_mismatch;
    const char *store_path;
} fake_env;

static int fake_clock(void *ctx, int64_t *now_ms)
{
    fake_env *f = ctx;
    *now_ms = atomic_load(&f->now_ms);
    return 0;
}

static int fake_usage(void *ctx, const char *path, double *used_ratio)
{
    fake_env *f = ctx;
    atomic_fetch_add(&f->usage_calls, 1);
    if (!path || strcmp(path, f->store_path) != 0)
        atomic_store(&f->usage_path_mismatch, 1);
    int permille = atomic_load(&f->usage_permille);
    if (permille < 0)
        return LSMQ_EIO;
    *used_ratio = (double)permille / 1000.0;
    return 0;
}

typedef struct fixture {
    char *dir;
    fake_env env;
    engine_config cfg;
    engine *e;
} fixture;

static void fixture_open(fixture *fx, const char *tag, uint32_t reserved_hours)
{
    memset(fx, 0, sizeof *fx);
    fx->dir = test_tmpdir(tag);
    atomic_init(&fx->env.now_ms, T0_MS);
    atomic_init(&fx->env.usage_permille, 500);
    atomic_init(&fx->env.usage_calls, 0);
    atomic_init(&fx->env.usage_path_mismatch, 0);
    fx->env.store_path = fx->dir;
    test_engine_config(&fx->cfg, fx->dir);
    fx->cfg.clock_ms = fake_clock;
    fx->cfg.clock_ctx = &fx->env;
    fx->cfg.disk_usage = fake_usage;
    fx->cfg.disk_usage_ctx = &fx->env;
    fx->cfg.retention_interval_ms = 3600000;
    fx->cfg.file_reserved_hours = reserved_hours;
    fx->cfg.disk_max_used_ratio = 75;
    fx->e = test_engine_open(&fx->cfg);
}

static void fixture_reopen(fixture *fx)
{
    engine_close(fx->e);
    fx->e = test_engine_open(&fx->cfg);
}

static void fixture_close(fixture *fx)
{
    engine_close(fx->e);
    fx->e = NULL;
    test_rmdir_free(fx->dir);
    fx->dir = NULL;
}

static void set_now(fixture *fx, int64_t ms) { atomic_store(&fx->env.now_ms, ms); }

/* ---- Model of what each queue stored ------------------------------------- */

typedef struct rec_copy {
    uint64_t position;
    int64_t store_ms;
    uint8_t *bytes;
    size_t len;
} rec_copy;

/* A queue and every record ever appended to it; recs[i] is offset i. */
typedef struct queue_model {
    const char *topic;
    uint32_t queue;
    uint32_t topic_id;
    rec_copy *recs;
    size_t n;
    size_t cap;
    uint64_t live_from; /* first offset the model says is still stored */
    int born_v6;        /* IPv6 born hosts move the store time inside the record */
} queue_model;

static void model_init(queue_model *q, engine *e, const char *topic, uint32_t queue)
{
    memset(q, 0, sizeof *q);
    q->topic = topic;
    q->queue = queue;
    assert_int_equal(engine_topic_id(e, topic, strlen(topic), &q->topic_id), 0);
}

static void model_free(queue_model *qs, size_t nq)
{
    for (size_t i = 0; i < nq; i++) {
        for (size_t r = 0; r < qs[i].n; r++)
            free(qs[i].recs[r].bytes);
        free(qs[i].recs);
    }
}

static void model_push(queue_model *q, const uint8_t *bytes, size_t len, uint64_t position,
                       int64_t store_ms)
{
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 16;
        q->recs = realloc(q->recs, q->cap * sizeof *q->recs);
        assert_non_null(q->recs);
    }
    rec_copy *r = &q->recs[q->n++];
    r->bytes = malloc(len);
    assert_non_null(r->bytes);
    memcpy(r->bytes, bytes, len);
    r->len = len;
    r->position = position;
    r->store_ms = store_ms;
}

/* Append `count` messages as one batch at clock `ms`, then copy them in from a read. */
static void append_at(fixture *fx, queue_model *q, int64_t ms, uint32_t count)
{
    assert_true(count >= 1 && count <= MAX_BATCH);
    set_now(fx, ms);
    char bodies[MAX_BATCH][BODY_CAP];
    engine_msg msgs[MAX_BATCH];
    for (uint32_t i = 0; i < count; i++) {
        snprintf(bodies[i], BODY_CAP, "%s/%u/%zu at %" PRId64, q->topic, q->queue,
                 q->n + i, ms);
        msgs[i] = test_msg(bodies[i], PROPS);
        if (q->born_v6) {
            msgs[i].born_host.v6 = 1;
            msgs[i].born_host.ip[15] = 1;
        }
    }
    size_t tlen = strlen(q->topic);
    engine_append_result ar;
    memset(&ar, 0, sizeof ar);
    assert_int_equal(engine_append_wait(fx->e, q->topic, tlen, q->queue, msgs, count, &ar), 0);
    assert_int_equal(ar.status, 0);
    assert_int_equal(ar.n, count);
    assert_int_equal(ar.queue_offset, q->n);
    assert_int_equal(ar.store_ms, ms);

    engine_read_result rr;
    assert_int_equal(engine_read(fx->e, q->topic, tlen, q->queue, q->n, count, READ_BYTES, &rr),
                     0);
    assert_int_equal(rr.status, ENGINE_READ_FOUND);
    assert_int_equal(rr.count, count);
    size_t at = 0;
    for (uint32_t i = 0; i < count; i++) {
        proto_record rec;
        long size = proto_record_decode(rr.data + at, rr.len - at, &rec);
        assert_true(size > 0);
        assert_int_equal(rec.queue_offset, q->n);
        assert_int_equal(rec.store_timestamp, ms);
        assert_int_equal(!!(rec.sys_flag & PROTO_SYSFLAG_BORNHOST_V6), !!q->born_v6);
        assert_int_equal(rec.body_len, strlen(bodies[i]));
        assert_memory_equal(rec.body, bodies[i], rec.body_len);
        if (i == 0)
            assert_int_equal(rec.physical_offset, ar.log_position);
        model_push(q, rr.data + at, (size_t)size, (uint64_t)rec.physical_offset, ms);
        at += (size_t)size;
    }
    assert_int_equal(at, rr.len);
    engine_free(rr.data);
}

/* First offset of q whose store time is not before cutoff_ms (n if none). */
static uint64_t first_at_or_after(const queue_model *q, int64_t cutoff_ms)
{
    uint64_t off = q->live_from;
    while (off < q->n && q->recs[off].store_ms < cutoff_ms)
        off++;
    return off;
}

/* Move every queue's live_from past the records stored before cutoff_ms; how many went. */
static uint64_t model_cut(queue_model *qs, size_t nq, int64_t cutoff_ms)
{
    uint64_t removed = 0;
    for (size_t i = 0; i < nq; i++) {
        uint64_t from = first_at_or_after(&qs[i], cutoff_ms);
        removed += from - qs[i].live_from;
        qs[i].live_from = from;
    }
    return removed;
}

/* ---- Checks against the model -------------------------------------------- */

/* LOWER: first live offset stored at or after ts; UPPER: last one at or before ts. */
static uint64_t model_search(const queue_model *q, int64_t ts, index_time_boundary b)
{
    if (q->live_from >= q->n)
        return q->n;
    if (b == INDEX_TIME_LOWER) {
        for (uint64_t o = q->live_from; o < q->n; o++)
            if (q->recs[o].store_ms >= ts)
                return o;
        return q->n;
    }
    uint64_t found = q->live_from;
    for (uint64_t o = q->live_from; o < q->n; o++)
        if (q->recs[o].store_ms <= ts)
            found = o;
    return found;
}

static void check_search(engine *e, const queue_model *q, int64_t ts)
{
    static const index_time_boundary bounds[] = {INDEX_TIME_LOWER, INDEX_TIME_UPPER};
    for (size_t b = 0; b < 2; b++) {
        uint64_t got = UINT64_MAX;
        assert_int_equal(test_search_time(e, q->topic_id, q->queue, ts, bounds[b], &got), 0);
        uint64_t want = model_search(q, ts, bounds[b]);
        if (got != want || got < q->live_from)
            fail_msg("%s:%u index_search_time(%" PRId64 ", %s) = %" PRIu64 ", expected %" PRIu64
                     " (min %" PRIu64 ", max %zu)", q->topic, q->queue, ts,
                     bounds[b] == INDEX_TIME_LOWER ? "LOWER" : "UPPER", got, want,
                     q->live_from, q->n);
    }
}

static void check_searches(engine *e, const queue_model *q)
{
    check_search(e, q, 0);
    check_search(e, q, T0_MS - HOUR_MS);
    check_search(e, q, INT64_MAX);
    for (size_t i = 0; i < q->n; i++) {
        if (i > 0 && q->recs[i].store_ms == q->recs[i - 1].store_ms)
            continue;
        check_search(e, q, q->recs[i].store_ms - 1);
        check_search(e, q, q->recs[i].store_ms);
        check_search(e, q, q->recs[i].store_ms + 1);
    }
}

static void check_below_min(engine *e, const queue_model *q, uint64_t offset)
{
    engine_read_result rr;
    assert_int_equal(engine_read(e, q->topic, strlen(q->topic), q->queue, offset, READ_COUNT,
                                 READ_BYTES, &rr), 0);
    if (rr.status != ENGINE_READ_OFFSET_TOO_SMALL || rr.next_offset != q->live_from)
        fail_msg("%s:%u read at %" PRIu64 " (min %" PRIu64 "): status %d next %" PRIu64,
                 q->topic, q->queue, offset, q->live_from, (int)rr.status, rr.next_offset);
    assert_int_equal(rr.count, 0);
    assert_int_equal(rr.min_offset, q->live_from);
    assert_int_equal(rr.max_offset, q->n);
    engine_free(rr.data);
}

/* Live records read back byte for byte, from min to max. */
static void check_live_reads(engine *e, const queue_model *q)
{
    size_t tlen = strlen(q->topic);
    uint64_t off = q->live_from;
    while (off < q->n) {
        engine_read_result rr;
        assert_int_equal(engine_read(e, q->topic, tlen, q->queue, off, READ_COUNT, READ_BYTES,
                                     &rr), 0);
        if (rr.status != ENGINE_READ_FOUND || rr.count == 0)
            fail_msg("%s:%u read at live offset %" PRIu64 ": status %d, %u records", q->topic,
                     q->queue, off, (int)rr.status, rr.count);
        size_t at = 0;
        for (uint32_t i = 0; i < rr.count; i++, off++) {
            assert_true(off < q->n);
            const rec_copy *want = &q->recs[off];
            if (rr.len - at < want->len || memcmp(rr.data + at, want->bytes, want->len) != 0)
                fail_msg("%s:%u offset %" PRIu64 ": record differs from the one stored",
                         q->topic, q->queue, off);
            at += want->len;
        }
        assert_int_equal(at, rr.len);
        assert_int_equal(rr.next_offset, off);
        engine_free(rr.data);
    }
    engine_read_result end;
    assert_int_equal(engine_read(e, q->topic, tlen, q->queue, q->n, READ_COUNT, READ_BYTES, &end),
                     0);
    assert_int_equal(end.status,
                     q->n ? ENGINE_READ_OFFSET_OVERFLOW_ONE : ENGINE_READ_NO_MESSAGE);
    engine_free(end.data);
}

/* idx_id: removed log positions resolve to nothing, live ones to their record. */
static void check_positions(engine *e, const queue_model *q)
{
    for (uint64_t off = 0; off < q->n; off++) {
        const rec_copy *r = &q->recs[off];
        uint32_t tid = 0, qid = 0;
        uint64_t qoff = 0;
        uint8_t *bytes = NULL;
        size_t len = 0;
        int lrc = test_locate(e, r->position, &tid, &qid, &qoff);
        int grc = test_get_by_position(e, r->position, &bytes, &len);
        if (off < q->live_from) {
            if (lrc != LSMQ_ENOTFOUND || grc != LSMQ_ENOTFOUND)
                fail_msg("%s:%u removed offset %" PRIu64 " (log position %" PRIu64
                         "): index_locate %d, index_get_by_position %d, expected ENOTFOUND",
                         q->topic, q->queue, off, r->position, lrc, grc);
            continue;
        }
        if (lrc != 0 || grc != 0)
            fail_msg("%s:%u live offset %" PRIu64 " (log position %" PRIu64
                     "): index_locate %d, index_get_by_position %d", q->topic, q->queue, off,
                     r->position, lrc, grc);
        assert_int_equal(tid, q->topic_id);
        assert_int_equal(qid, q->queue);
        assert_int_equal(qoff, off);
        assert_int_equal(len, r->len);
        assert_memory_equal(bytes, r->bytes, len);
        engine_free(bytes);
    }
}

/* Everything the store says about q agrees with the model. */
static void check_queue(engine *e, const queue_model *q)
{
    uint64_t min = UINT64_MAX, max = UINT64_MAX;
    assert_int_equal(engine_queue_offsets(e, q->topic, strlen(q->topic), q->queue, &min, &max),
                     0);
    if (min != q->live_from || max != q->n)
        fail_msg("%s:%u offsets [%" PRIu64 ", %" PRIu64 "), expected [%" PRIu64 ", %zu)",
                 q->topic, q->queue, min, max, q->live_from, q->n);
    if (q->live_from > 0) {
        check_below_min(e, q, 0);
        check_below_min(e, q, q->live_from - 1);
    }
    check_live_reads(e, q);
    check_positions(e, q);
    check_searches(e, q);
}

static void check_all(engine *e, const queue_model *qs, size_t nq)
{
    for (size_t i = 0; i < nq; i++)
        check_queue(e, &qs[i]);
}

static void run_retention(fixture *fx)
{
    assert_int_equal(engine_retention_run(fx->e), 0);
}

/* ---- Retention by age ----------------------------------------------------- */

#define AGE_QUEUES 6
#define AGE_TICKS 12
#define TICK_MS (10 * MINUTE_MS)

/*
 * Twelve ticks, ten minutes apart, from T0. AgeA's three queues get 0-2
 * messages per tick (batches of the same store time). AgeB queue 0 is
 * written only in the first ticks (it empties), queue 1 only in the last
 * ones (nothing of it goes), queue 2 never.
 */
static void build_age_store(fixture *fx, queue_model *qs)
{
    test_topic_create(fx->e, "AgeA", 3);
    test_topic_create(fx->e, "AgeB", 3);
    for (uint32_t q = 0; q < 3; q++) {
        model_init(&qs[q], fx->e, "AgeA", q);
        model_init(&qs[3 + q], fx->e, "AgeB", q);
    }
    qs[1].born_v6 = 1;
    for (int64_t k = 0; k < AGE_TICKS; k++) {
        int64_t ms = T0_MS + k * TICK_MS;
        for (uint32_t q = 0; q < 3; q++) {
            uint32_t n = (uint32_t)((k + q) % 3);
            if (n)
                append_at(fx, &qs[q], ms, n);
        }
        if (k <= 3)
            append_at(fx, &qs[3], ms, 2);
        if (k >= 8)
            append_at(fx, &qs[4], ms, 1);
    }
    check_all(fx->e, qs, AGE_QUEUES);
}

static void test_retention_by_age(void **state)
{
    (void)state;
    fixture fx;
    fixture_open(&fx, "ret-age", 1);
    queue_model qs[AGE_QUEUES];
    build_age_store(&fx, qs);
    uint64_t removed = 0;

    /* Cut-off T0: the first tick is exactly at it and must stay. */
    set_now(&fx, T0_MS + HOUR_MS);
    run_retention(&fx);
    assert_int_equal(model_cut(qs, AGE_QUEUES, T0_MS), 0);
    assert_int_equal(engine_retention_removed(fx.e), 0);
    check_all(fx.e, qs, AGE_QUEUES);

    /* Cut-off T0 + 70 min: ticks 0..6 go, tick 7 (stored at the cut-off) stays. */
    set_now(&fx, T0_MS + 130 * MINUTE_MS);
    run_retention(&fx);
    removed += model_cut(qs, AGE_QUEUES, T0_MS + 70 * MINUTE_MS);
    assert_true(removed > 0);
    assert_int_equal(engine_retention_removed(fx.e), removed);
    assert_int_equal(qs[3].live_from, qs[3].n); /* AgeB:0 emptied */
    assert_int_equal(qs[4].live_from, 0);       /* AgeB:1 untouched */
    check_all(fx.e, qs, AGE_QUEUES);

    /* The same pass again removes nothing more. */
    run_retention(&fx);
    assert_int_equal(engine_retention_removed(fx.e), removed);
    check_all(fx.e, qs, AGE_QUEUES);

    /* Later: cut-off T0 + 105 min leaves only the last tick. */
    set_now(&fx, T0_MS + 165 * MINUTE_MS);
    run_retention(&fx);
    removed += model_cut(qs, AGE_QUEUES, T0_MS + 105 * MINUTE_MS);
    assert_int_equal(engine_retention_removed(fx.e), removed);
    check_all(fx.e, qs, AGE_QUEUES);

    model_free(qs, AGE_QUEUES);
    fixture_close(&fx);
}

static void test_retention_reopen(void **state)
{
    (void)state;
    fixture fx;
    fixture_open(&fx, "ret-reopen", 1);
    queue_model qs[AGE_QUEUES];
    build_age_store(&fx, qs);

    set_now(&fx, T0_MS + 130 * MINUTE_MS);
    run_retention(&fx);
    uint64_t removed = model_cut(qs, AGE_QUEUES, T0_MS + 70 * MINUTE_MS);
    assert_int_equal(engine_retention_removed(fx.e), removed);
    uint64_t end = engine_next_log_position(fx.e);

    /* The min offsets come back from the store, not from memory. */
    fixture_reopen(&fx);
    assert_int_equal(engine_retention_removed(fx.e), 0);
    assert_int_equal(engine_next_log_position(fx.e), end);
    check_all(fx.e, qs, AGE_QUEUES);
    run_retention(&fx);
    assert_int_equal(engine_retention_removed(fx.e), 0);
    check_all(fx.e, qs, AGE_QUEUES);

    /* A pass on the reopened store starts from the recomputed min offsets. */
    set_now(&fx, T0_MS + 150 * MINUTE_MS);
    run_retention(&fx);
    removed = model_cut(qs, AGE_QUEUES, T0_MS + 90 * MINUTE_MS);
    assert_true(removed > 0);
    assert_int_equal(engine_retention_removed(fx.e), removed);
    check_all(fx.e, qs, AGE_QUEUES);

    /* New appends continue the queues; a reopen sees the cuts and the appends. */
    append_at(&fx, &qs[3], T0_MS + 151 * MINUTE_MS, 2);
    append_at(&fx, &qs[0], T0_MS + 151 * MINUTE_MS, 1);
    fixture_reopen(&fx);
    check_all(fx.e, qs, AGE_QUEUES);

    model_free(qs, AGE_QUEUES);
    fixture_close(&fx);
}

/* ---- High-water marks ----------------------------------------------------- */

static void test_retention_keeps_high_water_marks(void **state)
{
    (void)state;
    fixture fx;
    fixture_open(&fx, "ret-hwm", 1);
    test_topic_create(fx.e, "HwmT", 2);
    queue_model qs[2];
    model_init(&qs[0], fx.e, "HwmT", 0);
    model_init(&qs[1], fx.e, "HwmT", 1);
    for (int64_t i = 0; i < 5; i++) {
        append_at(&fx, &qs[0], T0_MS + i * 1000, 1 + (uint32_t)(i % 3));
        append_at(&fx, &qs[1], T0_MS + i * 1000 + 500, 1);
    }
    uint64_t old_end = engine_next_log_position(fx.e);
    uint64_t total = qs[0].n + qs[1].n;

    /* Everything is far past fileReservedTime. */
    set_now(&fx, T0_MS + 1000 * HOUR_MS);
    run_retention(&fx);
    assert_int_equal(model_cut(qs, 2, INT64_MAX), total);
    assert_int_equal(engine_retention_removed(fx.e), total);
    assert_int_equal(engine_next_log_position(fx.e), old_end);
    check_all(fx.e, qs, 2);

    fixture_reopen(&fx);
    assert_int_equal(engine_next_log_position(fx.e), old_end);
    check_all(fx.e, qs, 2); /* min == max == the old max, reads below are too small */

    /* The next message continues both sequences; nothing is handed out twice. */
    uint64_t old_max = qs[0].n;
    append_at(&fx, &qs[0], T0_MS + 1000 * HOUR_MS, 1);
    assert_int_equal(qs[0].recs[old_max].position, old_end);
    assert_int_equal(engine_next_log_position(fx.e), old_end + qs[0].recs[old_max].len);
    uint32_t tid, qid;
    uint64_t qoff;
    assert_int_equal(test_locate(fx.e, old_end, &tid, &qid, &qoff), 0);
    assert_int_equal(tid, qs[0].topic_id);
    assert_int_equal(qid, 0);
    assert_int_equal(qoff, old_max);
    check_all(fx.e, qs, 2);

    /* And again after another reopen. */
    fixture_reopen(&fx);
    check_all(fx.e, qs, 2);
    append_at(&fx, &qs[1], T0_MS + 1000 * HOUR_MS + 1, 1);
    assert_int_equal(qs[1].recs[qs[1].n - 1].position, old_end + qs[0].recs[old_max].len);
    check_all(fx.e, qs, 2);

    model_free(qs, 2);
    fixture_close(&fx);
}

/* ---- Retention by disk usage ---------------------------------------------- */

#define DISK_QUEUES 3
#define DISK_MSGS 60

/* The cut-off of one disk pass: the oldest live store time plus a tenth of the span to now. */
static int64_t disk_cutoff(const queue_model *qs, size_t nq, int64_t now_ms)
{
    int64_t oldest = INT64_MAX;
    for (size_t i = 0; i < nq; i++)
        if (qs[i].live_from < qs[i].n && qs[i].recs[qs[i].live_from].store_ms < oldest)
            oldest = qs[i].recs[qs[i].live_from].store_ms;
    assert_true(oldest != INT64_MAX);
    int64_t step = (now_ms - oldest) / 10;
    return oldest + (step > 1 ? step : 1);
}

static void test_retention_by_disk_usage(void **state)
{
    (void)state;
    fixture fx;
    fixture_open(&fx, "ret-disk", 72); /* age alone would remove nothing here */
    test_topic_create(fx.e, "DiskT", DISK_QUEUES);
    queue_model qs[DISK_QUEUES];
    for (uint32_t q = 0; q < DISK_QUEUES; q++)
        model_init(&qs[q], fx.e, "DiskT", q);
    qs[2].born_v6 = 1;
    /* One message a second, round robin; every tenth second a run of two. */
    for (int64_t i = 0; i < DISK_MSGS; i++)
        append_at(&fx, &qs[i % DISK_QUEUES], T0_MS + i * 1000, i % 10 == 0 ? 2 : 1);
    /* "Now" is the newest store time, so the span is the same however it is measured. */
    int64_t now = T0_MS + (DISK_MSGS - 1) * 1000;
    set_now(&fx, now);

    /* Under the limit: nothing goes. */
    atomic_store(&fx.env.usage_permille, 500);
    run_retention(&fx);
    assert_true(atomic_load(&fx.env.usage_calls) > 0);
    assert_int_equal(engine_retention_removed(fx.e), 0);
    check_all(fx.e, qs, DISK_QUEUES);

    /* Usage cannot be read: nothing goes either. */
    atomic_store(&fx.env.usage_permille, -1);
    (void)engine_retention_run(fx.e);
    assert_int_equal(engine_retention_removed(fx.e), 0);
    check_all(fx.e, qs, DISK_QUEUES);

    /* Over the limit: the oldest tenth (T0 .. T0+5.9 s) goes, nothing newer. */
    atomic_store(&fx.env.usage_permille, 900);
    int64_t cutoff = disk_cutoff(qs, DISK_QUEUES, now);
    assert_int_equal(cutoff, T0_MS + 5900);
    run_retention(&fx);
    uint64_t removed = model_cut(qs, DISK_QUEUES, cutoff);
    assert_int_equal(removed, 7); /* seconds 0..5, second 0 holding two */
    assert_int_equal(engine_retention_removed(fx.e), removed);
    check_all(fx.e, qs, DISK_QUEUES);

    /* Still over: the next tenth of what is left. */
    cutoff = disk_cutoff(qs, DISK_QUEUES, now);
    assert_int_equal(cutoff, T0_MS + 6000 + 5300);
    run_retention(&fx);
    removed += model_cut(qs, DISK_QUEUES, cutoff);
    assert_int_equal(removed, 7 + 7); /* seconds 6..11, second 10 holding two */
    assert_int_equal(engine_retention_removed(fx.e), removed);
    check_all(fx.e, qs, DISK_QUEUES);

    /* Back under the limit: nothing more. */
    atomic_store(&fx.env.usage_permille, 500);
    run_retention(&fx);
    assert_int_equal(engine_retention_removed(fx.e), removed);
    check_all(fx.e, qs, DISK_QUEUES);
    assert_int_equal(atomic_load(&fx.env.usage_path_mismatch), 0);

    fixture_reopen(&fx);
    check_all(fx.e, qs, DISK_QUEUES);

    model_free(qs, DISK_QUEUES);
    fixture_close(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retention_by_age),
        cmocka_unit_test(test_retention_reopen),
        cmocka_unit_test(test_retention_keeps_high_water_marks),
        cmocka_unit_test(test_retention_by_disk_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
