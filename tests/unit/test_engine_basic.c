/*
 * The engine's append and read contract: offsets and log positions of
 * single and batched appends, the read statuses a pull maps to response
 * codes, count and byte bounds, the busy answer of a full writer queue,
 * and the hooks seeing every committed message.
 */
#include "testsupport.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOPIC "BasicTopic"
#define TLEN (sizeof TOPIC - 1)

static char *dir;

static int setup(void **state)
{
    dir = test_tmpdir("basic");
    return 0;
}

static int teardown(void **state)
{
    test_rmdir_free(dir);
    dir = NULL;
    return 0;
}

static engine *open_fresh(engine_config *c, const char *sub)
{
    char *path;
    assert_true(asprintf(&path, "%s/%s", dir, sub) > 0);
    test_engine_config(c, path);
    engine *e = test_engine_open(c);
    free(path);
    c->store_path = NULL; /* the engine keeps its own copy */
    return e;
}

static void test_append_assigns_offsets_and_positions(void **state)
{
    engine_config c;
    engine *e = open_fresh(&c, "positions");
    test_topic_create(e, TOPIC, 2);

    engine_msg one = test_msg("first", "TAGS\001A\002");
    engine_append_result r;
    assert_int_equal(engine_append_wait(e, TOPIC, TLEN, 0, &one, 1, &r), 0);
    assert_int_equal(r.queue_offset, 0);
    assert_int_equal(r.log_position, 0);
    assert_int_equal(r.n, 1);
    uint64_t after_one = engine_next_log_position(e);
    assert_true(after_one == PROTO_RECORD_FIXED_V4 + 5 + TLEN + 7);

    engine_msg batch[3] = {test_msg("b0", NULL), test_msg("b1", NULL), test_msg("b2", NULL)};
    assert_int_equal(engine_append_wait(e, TOPIC, TLEN, 0, batch, 3, &r), 0);
    assert_int_equal(r.queue_offset, 1);
    assert_int_equal(r.log_position, after_one);

    /* Another queue starts at offset 0; log positions keep growing. */
    assert_int_equal(engine_append_wait(e, TOPIC, TLEN, 1, &one, 1, &r), 0);
    assert_int_equal(r.queue_offset, 0);
    assert_true(r.log_position > after_one);

    engine_read_result rr;
    assert_int_equal(engine_read(e, TOPIC, TLEN, 0, 0, 32, 1 << 20, &rr), 0);
    assert_int_equal(rr.status, ENGINE_READ_FOUND);
    assert_int_equal(rr.count, 4);
    assert_int_equal(rr.next_offset, 4);
    size_t at = 0;
    const char *bodies[] = {"first", "b0", "b1", "b2"};
    for (uint32_t i = 0; i < rr.count; i++) {
        proto_record pr;
        long len = proto_record_decode(rr.data + at, rr.len - at, &pr);
        assert_true(len > 0);
        assert_int_equal(proto_record_check_crc(&pr), 0);
        assert_int_equal(pr.queue_offset, i);
        assert_int_equal(pr.queue_id, 0);
        assert_int_equal(pr.body_len, strlen(bodies[i]));
        assert_memory_equal(pr.body, bodies[i], pr.body_len);
        assert_memory_equal(pr.topic, TOPIC, TLEN);
        assert_int_equal(pr.store_host.port, 10911);
        assert_true(pr.store_timestamp > 0);
        at += (size_t)len;
    }
    assert_int_equal(at, rr.len);
    engine_free(rr.data);
    engine_close(e);
}

static void test_read_statuses(void **state)
{
    engine_config c;
    engine *e = open_fresh(&c, "statuses");
    test_topic_create(e, TOPIC, 2);
    engine_read_result rr;

    assert_int_equal(engine_read(e, TOPIC, TLEN, 0, 0, 32, 1 << 20, &rr), 0);
    assert_int_equal(rr.status, ENGINE_READ_NO_MESSAGE);
    assert_null(rr.data);

    engine_msg m = test_msg("x", NULL);
    for (int i = 0; i < 10; i++)
        assert_int_equal(engine_append_wait(e, TOPIC, TLEN, 0, &m, 1, NULL), 0);

    assert_int_equal(engine_read(e, TOPIC, TLEN, 0, 10, 32, 1 << 20, &rr), 0);
    assert_int_equal(rr.status, ENGINE_READ_OFFSET_OVERFLOW_ONE);
    assert_int_equal(rr.max_offset, 10);
    assert_int_equal(engine_read(e, TOPIC, TLEN, 0, 11, 32, 1 << 20, &rr), 0);
    assert_int_equal(rr.status, ENGINE_READ_OFFSET_OVERFLOW_BADLY);
    assert_int_equal(rr.next_offset, 10);

    /* Count bound, then byte bound (which still returns one record). */
    assert_int_equal(engine_read(e, TOPIC, TLEN, 0, 2, 3, 1 << 20, &rr), 0);
    assert_int_equal(rr.count, 3);
    assert_int_equal(rr.next_offset, 5);
    engine_free(rr.data);
    assert_int_equal(engine_read(e, TOPIC, TLEN, 0, 2, 32, 1, &rr), 0);
    assert_int_equal(rr.status, ENGINE_READ_FOUND);
    assert_int_equal(rr.count, 1);
    engine_free(rr.data);

    assert_int_equal(engine_read(e, TOPIC, TLEN, 2, 0, 32, 1 << 20, &rr), LSMQ_ENOTFOUND);
    assert_int_equal(engine_read(e, "Nope", 4, 0, 0, 32, 1 << 20, &rr), LSMQ_ENOTFOUND);
    uint64_t min, max;
    assert_int_equal(engine_queue_offsets(e, TOPIC, TLEN, 0, &min, &max), 0);
    assert_int_equal(min, 0);
    assert_int_equal(max, 10);
    engine_close(e);
}

/* A hook that can stall the writer, to fill its queue deterministically. */
typedef struct stall {
    sem_t entered;
    sem_t release;
    int armed;
    uint64_t appended;
    uint64_t committed;
} stall;

static void stall_on_append(const engine_ext_env *x, engine_batch *b,
                            const engine_stored_msg *m)
{
    stall *s = x->ctx;
    s->appended++;
    if (s->armed) {
        s->armed = 0;
        sem_post(&s->entered);
        sem_wait(&s->release);
    }
}

static void stall_on_commit(const engine_ext_env *x, uint64_t seq, size_t n)
{
    ((stall *)x->ctx)->committed += n;
}

static void count_cb(void *ctx, const engine_append_result *r)
{
    if (r->status == 0)
        __atomic_add_fetch((int *)ctx, 1, __ATOMIC_SEQ_CST);
}

static void test_full_queue_is_busy_and_hooks_see_commits(void **state)
{
    engine_config c;
    char *path;
    assert_true(asprintf(&path, "%s/busy", dir) > 0);
    test_engine_config(&c, path);
    c.writer_queue_max = 8;
    stall s = {.armed = 1};
    sem_init(&s.entered, 0, 0);
    sem_init(&s.release, 0, 0);
    engine_extension h = {.name = "stall", .ctx = &s, .hook.on_append = stall_on_append,
                          .hook.on_commit = stall_on_commit};
    assert_int_equal(engine_config_add_extension(&c, &h), 0);
    engine *e = test_engine_open(&c);
    free(path);
    test_topic_create(e, TOPIC, 1);

    int done = 0;
    engine_msg m = test_msg("y", NULL);
    assert_int_equal(engine_append(e, TOPIC, TLEN, 0, &m, 1, count_cb, &done), 0);
    sem_wait(&s.entered); /* the writer is inside the first group */
    int accepted = 1, busy = 0;
    for (int i = 0; i < 20; i++) {
        int rc = engine_append(e, TOPIC, TLEN, 0, &m, 1, count_cb, &done);
        if (rc == 0)
            accepted++;
        else if (rc == LSMQ_EBUSY)
            busy++;
        else
            fail_msg("unexpected %d", rc);
    }
    assert_int_equal(accepted, 1 + 8);
    assert_int_equal(busy, 20 - 8);
    sem_post(&s.release);
    /* A barrier: a control operation completes after everything before it. */
    test_topic_create(e, "After", 1);
    assert_int_equal(__atomic_load_n(&done, __ATOMIC_SEQ_CST), accepted);
    assert_int_equal(s.appended, (uint64_t)accepted);
    assert_int_equal(s.committed, (uint64_t)accepted);
    uint64_t min, max;
    assert_int_equal(engine_queue_offsets(e, TOPIC, TLEN, 0, &min, &max), 0);
    assert_int_equal(max, (uint64_t)accepted);
    engine_close(e);
    sem_destroy(&s.entered);
    sem_destroy(&s.release);
}

static void test_store_time_and_reopen(void **state)
{
    engine_config c;
    char *path;
    assert_true(asprintf(&path, "%s/reopen", dir) > 0);
    test_engine_config(&c, path);
    c.flush_mode = ENGINE_SYNC_FLUSH;
    engine *e = test_engine_open(&c);
    test_topic_create(e, TOPIC, 1);
    engine_msg m = test_msg("z", NULL);
    engine_append_result r;
    for (int i = 0; i < 5; i++)
        assert_int_equal(engine_append_wait(e, TOPIC, TLEN, 0, &m, 1, &r), 0);
    uint64_t pos = engine_next_log_position(e);
    engine_close(e);

    e = test_engine_open(&c);
    assert_int_equal(engine_next_log_position(e), pos);
    assert_int_equal(engine_append_wait(e, TOPIC, TLEN, 0, &m, 1, &r), 0);
    assert_int_equal(r.queue_offset, 5);
    assert_int_equal(r.log_position, pos);
    engine_close(e);
    free(path);
}

static void offset_done(void *ctx, int status)
{
    __atomic_store_n((int *)ctx, status == 0 ? 1 : -1, __ATOMIC_SEQ_CST);
}

static void test_async_offset_commit(void **state)
{
    engine_config c;
    engine *e = open_fresh(&c, "asyncoffset");
    test_topic_create(e, TOPIC, 2);
    int done = 0;
    assert_int_equal(engine_offset_set_async(e, "g1", 2, TOPIC, TLEN, 1, 42, offset_done, &done),
                     0);
    /* Unknown topic: accepted at once, refused by the writer. */
    int refused = 0;
    assert_int_equal(engine_offset_set_async(e, "g1", 2, "Nope", 4, 0, 1, offset_done, &refused),
                     0);
    test_topic_create(e, "Barrier", 1); /* completes after both */
    assert_int_equal(__atomic_load_n(&done, __ATOMIC_SEQ_CST), 1);
    assert_int_equal(__atomic_load_n(&refused, __ATOMIC_SEQ_CST), -1);
    uint64_t off = 0;
    assert_int_equal(engine_offset_get(e, "g1", 2, TOPIC, TLEN, 1, &off), 0);
    assert_int_equal(off, 42);
    assert_int_equal(engine_offset_set_async(e, "", 0, TOPIC, TLEN, 1, 1, NULL, NULL),
                     LSMQ_EINVAL);
    engine_close(e);
}

/* Queues engine_confirm reported as moved. */
typedef struct moved_list {
    int n;
    uint32_t queue[8];
} moved_list;

static void note_moved(void *ctx, uint32_t topic_id, uint32_t queue_id)
{
    (void)topic_id;
    moved_list *l = ctx;
    if (l->n < 8)
        l->queue[l->n++] = queue_id;
}

/*
 * With confirmed_reads a written message is readable only once its batch is
 * confirmed: before, a read at its offset is OVERFLOW_ONE (nothing yet), and
 * the queue's max offset in the answer excludes it.
 */
static void test_confirmed_reads(void **state)
{
    engine_config c;
    test_engine_config(&c, NULL);
    char *path;
    assert_true(asprintf(&path, "%s/confirmed", dir) > 0);
    c.store_path = path;
    c.confirmed_reads = true;
    engine *e = test_engine_open(&c);
    free(path);
    test_topic_create(e, TOPIC, 2);

    engine_msg m = test_msg("waits", NULL);
    engine_append_result a0, a1;
    assert_int_equal(engine_append_wait(e, TOPIC, TLEN, 0, &m, 1, &a0), 0);
    assert_int_equal(engine_append_wait(e, TOPIC, TLEN, 1, &m, 1, &a1), 0);
    assert_true(a0.last_seq > 0 && a1.last_seq > a0.last_seq);

    engine_read_result rr;
    /* Nothing readable yet, and nothing to correct. */
    assert_int_equal(engine_read(e, TOPIC, TLEN, 0, 0, 32, 1 << 20, &rr), 0);
    assert_int_equal(rr.status, ENGINE_READ_OFFSET_OVERFLOW_ONE);
    assert_int_equal(rr.max_offset, 0);

    /* Confirming the first batch releases queue 0 only. */
    moved_list l = {0};
    engine_confirm(e, a0.last_seq, note_moved, &l);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.queue[0], 0);
    assert_int_equal(engine_read(e, TOPIC, TLEN, 0, 0, 32, 1 << 20, &rr), 0);
    assert_int_equal(rr.status, ENGINE_READ_FOUND);
    assert_int_equal(rr.count, 1);
    engine_free(rr.data);
    assert_int_equal(engine_read(e, TOPIC, TLEN, 1, 0, 32, 1 << 20, &rr), 0);
    assert_int_equal(rr.status, ENGINE_READ_OFFSET_OVERFLOW_ONE);

    /* Past the first message of queue 0, a second unconfirmed one: nothing yet. */
    assert_int_equal(engine_append_wait(e, TOPIC, TLEN, 0, &m, 1, &a0), 0);
    assert_int_equal(engine_read(e, TOPIC, TLEN, 0, 1, 32, 1 << 20, &rr), 0);
    assert_int_equal(rr.status, ENGINE_READ_OFFSET_OVERFLOW_ONE);
    assert_int_equal(rr.max_offset, 1);

    /* A confirmation ahead of the writer: the next write is readable at once. */
    l.n = 0;
    engine_confirm(e, a0.last_seq + 1000, note_moved, &l);
    assert_int_equal(l.n, 2);
    assert_int_equal(engine_append_wait(e, TOPIC, TLEN, 0, &m, 1, &a0), 0);
    assert_int_equal(engine_read(e, TOPIC, TLEN, 0, 1, 32, 1 << 20, &rr), 0);
    assert_int_equal(rr.status, ENGINE_READ_FOUND);
    assert_int_equal(rr.count, 2);
    engine_free(rr.data);
    engine_close(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_assigns_offsets_and_positions),
        cmocka_unit_test(test_read_statuses),
        cmocka_unit_test(test_full_queue_is_busy_and_hooks_see_commits),
        cmocka_unit_test(test_store_time_and_reopen),
        cmocka_unit_test(test_async_offset_commit),
        cmocka_unit_test(test_confirmed_reads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
