/*
 * Disk full: on a small tmpfs, appends fail with LSMQ_ENOSPC once space runs
 * out, reads keep working and return every acknowledged message, and
 * appends succeed again once space is back; the store then reopens with
 * everything acknowledged intact. A view opened while the disk is full
 * keeps reading through the recovery: the writer's reopen of the store
 * waits until it is closed, and the append that waits with it succeeds.
 */
#include "testsupport.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#define TOPIC "FullTopic"

static char *mnt;

static int setup(void **state)
{
    mnt = test_tmpdir("diskfull");
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=48m") != 0) {
        fprintf(stderr, "mount tmpfs on %s: %s (this test needs root)\n", mnt, strerror(errno));
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    umount2(mnt, MNT_DETACH);
    test_rmdir_free(mnt);
    return 0;
}

/* Fill the filesystem with a file until write() says ENOSPC, keeping `leave` bytes free. */
static char *fill_disk(const char *dir, size_t leave)
{
    char *path;
    assert_true(asprintf(&path, "%s/filler", dir) > 0);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    static char chunk[1 << 16];
    memset(chunk, 'x', sizeof chunk);
    while (write(fd, chunk, sizeof chunk) > 0) {
    }
    assert_int_equal(errno, ENOSPC);
    off_t size = lseek(fd, 0, SEEK_END);
    assert_int_equal(ftruncate(fd, size > (off_t)leave ? size - (off_t)leave : 0), 0);
    close(fd);
    return path;
}

/* One asynchronous append's outcome. */
typedef struct pending {
    atomic_int done;
    int status;
    uint64_t queue_offset;
} pending;

static void pending_cb(void *ctx, const engine_append_result *r)
{
    pending *p = ctx;
    p->status = r->status;
    p->queue_offset = r->queue_offset;
    atomic_store(&p->done, 1);
}

/* Nonzero once p completed, waiting at most wait_ms. */
static int pending_wait(pending *p, int wait_ms)
{
    for (int waited = 0; !atomic_load(&p->done) && waited < wait_ms; waited += 10)
        usleep(10000);
    return atomic_load(&p->done);
}

static uint64_t view_max(const engine_view *v, uint32_t topic_id)
{
    engine_queue_info q;
    assert_int_equal(engine_view_queue(v, topic_id, 0, &q), 0);
    return q.max_offset;
}

static void test_disk_full_then_recover(void **state)
{
    char *store;
    assert_true(asprintf(&store, "%s/store", mnt) > 0);
    engine_config c;
    test_engine_config(&c, store);
    c.flush_mode = ENGINE_SYNC_FLUSH;
    c.retention_interval_ms = 3600000;
    engine *e = test_engine_open(&c);
    test_topic_create(e, TOPIC, 1);

    char body[1024];
    memset(body, 'b', sizeof body);
    engine_msg m = test_msg("x", NULL);
    m.body = body;
    m.body_len = sizeof body;

    char *filler = fill_disk(mnt, 2u << 20);
    uint64_t acked = 0;
    int rc = 0;
    for (int i = 0; i < 200000; i++) {
        engine_append_result r;
        rc = engine_append_wait(e, TOPIC, strlen(TOPIC), 0, &m, 1, &r);
        if (rc != 0)
            break;
        assert_int_equal(r.queue_offset, acked);
        acked++;
    }
    assert_int_equal(rc, LSMQ_ENOSPC);
    assert_int_equal(engine_write_health(e), LSMQ_ENOSPC);
    printf("disk full after %llu acknowledged messages\n", (unsigned long long)acked);
    assert_true(acked > 0);

    /* Reads keep working while full. */
    uint64_t min, max;
    assert_int_equal(engine_queue_offsets(e, TOPIC, strlen(TOPIC), 0, &min, &max), 0);
    assert_int_equal(max, acked);
    engine_read_result rr;
    assert_int_equal(engine_read(e, TOPIC, strlen(TOPIC), 0, acked - 1, 1, 1 << 20, &rr), 0);
    assert_int_equal(rr.status, ENGINE_READ_FOUND);
    assert_int_equal(rr.count, 1);
    engine_free(rr.data);

    /* A view opened now sees every acknowledged message. */
    uint32_t tid;
    assert_int_equal(engine_topic_id(e, TOPIC, strlen(TOPIC), &tid), 0);
    engine_view *v;
    assert_int_equal(engine_view_open(e, &v), 0);
    assert_int_equal(view_max(v, tid), acked);

    /* Space comes back. While the view is open no append gets through: a
     * group either fails at once (the writer retries the reopen at most once
     * a second) or waits in the reopen until the view closes. */
    assert_int_equal(unlink(filler), 0);
    free(filler);
    pending p;
    for (int tries = 0;; tries++) {
        if (tries == 100)
            fail_msg("no append waited for the view to close");
        memset(&p, 0, sizeof p);
        atomic_init(&p.done, 0);
        assert_int_equal(engine_append(e, TOPIC, strlen(TOPIC), 0, &m, 1, pending_cb, &p), 0);
        if (!pending_wait(&p, 1500))
            break; /* waiting for the view */
        assert_int_equal(p.status, LSMQ_ENOSPC);
        usleep(50000);
    }
    /* The pin keeps the database the view reads open meanwhile. */
    assert_int_equal(view_max(v, tid), acked);
    engine_msg_pos last = {tid, 0, acked - 1};
    uint8_t *rec;
    size_t len;
    assert_int_equal(engine_view_message(v, &last, &rec, &len), 0);
    engine_free(rec);
    engine_view_close(v);
    assert_true(pending_wait(&p, 60000));
    rc = p.status;
    if (rc == 0)
        assert_int_equal(p.queue_offset, acked);

    /* Appends resume (RocksDB may need a moment to recover). */
    for (int tries = 0; tries < 200 && rc != 0; tries++) {
        engine_append_result r;
        rc = engine_append_wait(e, TOPIC, strlen(TOPIC), 0, &m, 1, &r);
        if (rc == 0)
            assert_int_equal(r.queue_offset, acked);
        else
            usleep(50000);
    }
    assert_int_equal(rc, 0);
    acked++;
    assert_int_equal(engine_write_health(e), 0);
    engine_close(e);

    /* Everything acknowledged survives a reopen, offsets continue. */
    e = test_engine_open(&c);
    assert_int_equal(engine_queue_offsets(e, TOPIC, strlen(TOPIC), 0, &min, &max), 0);
    assert_int_equal(max, acked);
    for (uint64_t off = 0; off < acked;) {
        assert_int_equal(engine_read(e, TOPIC, strlen(TOPIC), 0, off, 256, 1 << 20, &rr), 0);
        assert_int_equal(rr.status, ENGINE_READ_FOUND);
        off = rr.next_offset;
        engine_free(rr.data);
    }
    engine_close(e);
    free(store);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disk_full_then_recover),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
