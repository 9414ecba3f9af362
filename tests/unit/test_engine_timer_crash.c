/*
 * test_engine_timer_crash: delayed messages survive kill -9 exactly once.
 *
 * One store goes through crash cycles. In each, a writer child (forked
 * first, engine opened in the child only) sends delayed messages from two
 * threads, due 0-150 ms ahead on the real clock, while its writer moves the
 * ones that fall due (and those earlier cycles left pending, found at
 * open). Each acknowledged message is reported on a pipe; the parent
 * kill -9s the child 50-400 ms after its first acknowledgement. Then a
 * verifier child reopens the store, lets every pending message fall due
 * and checks: each acknowledged message
 * is in its queue exactly once, no message at all is there twice, none was
 * stored before its due time, body and properties are as sent, offsets are
 * contiguous, the pending count is 0 and the index agrees with the store.
 * Runs in SYNC_FLUSH and ASYNC_FLUSH (a killed process leaves its WAL to the
 * OS). LSMQ_CRASH_SEED=<n> reuses a seed.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testsupport.h"
#include "clock.h"

#define N_CYCLES 6
#define N_WRITERS 2
#define MAX_BATCH 4
#define MAX_DELAY_MS 150
#define KILL_MIN_MS 50
#define KILL_MAX_MS 400
#define CHILD_ALARM_S 120
#define FIRST_ACK_LIMIT_MS 30000
#define SETTLE_LIMIT_MS 60000
#define MAX_SEQ (1u << 20)

static const char *const TOPICS[] = {"tcrash-a", "tcrash-b"};
#define N_TOPICS 2
#define N_QUEUES 2

typedef struct ack_rec {
    uint8_t kind; /* 1 ready, 2 message */
    uint8_t writer;
    uint16_t n;
    uint32_t first_seq;
} ack_rec;

typedef struct run_state {
    char *dir;
    engine_flush_mode mode;
    uint32_t seed;
    unsigned cycle;
    /* acked[cycle][writer]: one byte per seq, 1 when acknowledged */
    uint8_t *acked[N_CYCLES][N_WRITERS];
    uint64_t acked_total;
} run_state;

static run_state RUN;

static uint32_t next_rand(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static int open_store(engine **out)
{
    engine_config c;
    test_engine_config(&c, RUN.dir);
    c.flush_mode = RUN.mode;
    c.disk_max_used_ratio = 0; /* retention would remove messages on a full shared disk */
    char err[256] = "";
    int rc = index_declare(&c, NULL);
    if (rc == 0)
        rc = engine_open(&c, out, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "timer crash child: engine_open: %d %s\n", rc, err);
    return rc;
}

static void send_all(int fd, const void *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            _exit(4);
        p = (const char *)p + n;
        len -= (size_t)n;
    }
}

/* ---- Writer child ------------------------------------------------------- */

typedef struct tc_writer {
    unsigned id;
    engine *e;
    int fd;
    uint32_t rng;
    uint32_t next_seq;
} tc_writer;

typedef struct tc_batch {
    tc_writer *w;
    uint32_t first_seq;
    uint32_t n;
    engine_msg msgs[MAX_BATCH];
    char bodies[MAX_BATCH][64];
    char props[MAX_BATCH][96];
} tc_batch;

static void batch_cb(void *ctx, const engine_append_result *r)
{
    tc_batch *b = ctx;
    if (r->status == 0) {
        ack_rec a = {.kind = 2, .writer = (uint8_t)b->w->id, .n = (uint16_t)b->n,
                     .first_seq = b->first_seq};
        send_all(b->w->fd, &a, sizeof a);
    }
    free(b);
}

static void *writer_thread(void *arg)
{
    tc_writer *w = arg;
    for (;;) {
        tc_batch *b = calloc(1, sizeof *b);
        if (!b)
            _exit(5);
        b->w = w;
        b->n = 1 + next_rand(&w->rng) % MAX_BATCH;
        b->first_seq = w->next_seq;
        w->next_seq += b->n;
        if (w->next_seq >= MAX_SEQ)
            _exit(6);
        int64_t due = proto_wall_ms() + (int64_t)(next_rand(&w->rng) % MAX_DELAY_MS);
        for (uint32_t i = 0; i < b->n; i++) {
            snprintf(b->bodies[i], sizeof b->bodies[i], "c%02u-w%u-s%07u|%" PRId64, RUN.cycle,
                     w->id, b->first_seq + i, due);
            snprintf(b->props[i], sizeof b->props[i],
                     "KEYS\001w%u\002UNIQ_KEY\001c%02u-w%u-s%07u\002", w->id, RUN.cycle, w->id,
                     b->first_seq + i);
            b->msgs[i] = test_msg(b->bodies[i], b->props[i]);
        }
        const char *topic = TOPICS[next_rand(&w->rng) % N_TOPICS];
        uint32_t queue = next_rand(&w->rng) % N_QUEUES;
        int rc = engine_append_timed(w->e, topic, strlen(topic), queue, b->msgs, b->n, due,
                                     batch_cb, b);
        if (rc == LSMQ_EBUSY) {
            free(b);
            usleep(1000);
        } else if (rc != 0) {
            fprintf(stderr, "timer crash writer: refused: %s\n", lsmq_strerror(rc));
            _exit(3);
        }
    }
    return NULL;
}

static void writer_child(int fd)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(CHILD_ALARM_S);
    engine *e = NULL;
    if (open_store(&e) != 0)
        _exit(2);
    /* Ready before the first ack can be written. */
    ack_rec ready = {.kind = 1};
    send_all(fd, &ready, sizeof ready);
    static tc_writer writers[N_WRITERS];
    for (unsigned i = 0; i < N_WRITERS; i++) {
        writers[i] = (tc_writer){.id = i, .e = e, .fd = fd,
                                 .rng = (RUN.seed ^ (RUN.cycle * 0x9e3779b9u) ^ (i + 1)) | 1u};
        pthread_t tid;
        if (pthread_create(&tid, NULL, writer_thread, &writers[i]) != 0)
            _exit(5);
    }
    for (;;)
        pause();
}

/* ---- Parent: one cycle -------------------------------------------------- */

static void note_ack(const ack_rec *a)
{
    uint8_t *acked = RUN.acked[RUN.cycle][a->writer];
    for (uint32_t i = 0; i < a->n; i++) {
        assert_true(a->first_seq + i < MAX_SEQ);
        acked[a->first_seq + i] = 1;
        RUN.acked_total++;
    }
}

/* Read acks until the deadline (or EOF when deadline < 0). */
static void read_acks(int fd, int64_t deadline)
{
    for (;;) {
        int wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - proto_mono_ms();
            if (left <= 0)
                return;
            wait = (int)left;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, wait);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return;
        ack_rec a;
        ssize_t n = read(fd, &a, sizeof a);
        if (n <= 0)
            return;
        assert_int_equal(n, sizeof a); /* pipe writes of this size are atomic */
        if (a.kind == 2)
            note_ack(&a);
    }
}

static void run_cycle(uint32_t *rng)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        writer_child(p[1]);
    }
    close(p[1]);
    ack_rec ready;
    assert_int_equal(read(p[0], &ready, sizeof ready), sizeof ready);
    assert_int_equal(ready.kind, 1);
    /* On a loaded machine the first ack may take a while: the kill comes after it. */
    uint64_t before = RUN.acked_total;
    int64_t limit = proto_mono_ms() + FIRST_ACK_LIMIT_MS;
    while (RUN.acked_total == before && proto_mono_ms() < limit)
        read_acks(p[0], proto_mono_ms() + 10);
    read_acks(p[0], proto_mono_ms() + KILL_MIN_MS + next_rand(rng) % (KILL_MAX_MS - KILL_MIN_MS));
    kill(pid, SIGKILL);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    read_acks(p[0], -1); /* what the child wrote before it died */
    close(p[0]);
}

/* ---- Verifier child ----------------------------------------------------- */

static int verify_failed;

static void bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void bad(const char *fmt, ...)
{
    if (verify_failed++ >= 20)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("timer crash verify: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void check_record(const proto_record *r, uint8_t *seen[N_CYCLES][N_WRITERS])
{
    unsigned c, w, s;
    int64_t due;
    char body[64] = "";
    memcpy(body, r->body, r->body_len < 63 ? r->body_len : 63);
    if (sscanf(body, "c%02u-w%u-s%07u|%" SCNd64, &c, &w, &s, &due) != 4 || c >= N_CYCLES ||
        w >= N_WRITERS || s >= MAX_SEQ) {
        bad("unexpected body '%s'", body);
        return;
    }
    if (r->store_timestamp < due)
        bad("%s stored at %" PRId64 ", before it was due", body, r->store_timestamp);
    if (seen[c][w][s]++)
        bad("%s delivered twice", body);
    char uniq[64];
    snprintf(uniq, sizeof uniq, "UNIQ_KEY\001c%02u-w%u-s%07u\002", c, w, s);
    if (!r->props || !memmem(r->props, r->props_len, uniq, strlen(uniq)))
        bad("%s lost its properties", body);
}

static void verify_child(void)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(CHILD_ALARM_S);
    engine *e = NULL;
    if (open_store(&e) != 0)
        _exit(2);
    int64_t limit = proto_mono_ms() + SETTLE_LIMIT_MS;
    while (engine_timer_pending_total(e) > 0 && proto_mono_ms() < limit) {
        engine_offset_set(e, "kick", 4, TOPICS[0], strlen(TOPICS[0]), 0, 0);
        usleep(5000);
    }
    if (engine_timer_pending_total(e) != 0)
        bad("%" PRIu64 " still pending", engine_timer_pending_total(e));
    static uint8_t *seen[N_CYCLES][N_WRITERS];
    for (unsigned c = 0; c < N_CYCLES; c++)
        for (unsigned w = 0; w < N_WRITERS; w++)
            seen[c][w] = calloc(MAX_SEQ, 1);
    uint64_t delivered = 0;
    for (unsigned t = 0; t < N_TOPICS; t++)
        for (uint32_t q = 0; q < N_QUEUES; q++) {
            uint64_t off = 0;
            for (;;) {
                engine_read_result rr;
                if (engine_read(e, TOPICS[t], strlen(TOPICS[t]), q, off, 512, 1u << 20, &rr) !=
                    0) {
                    bad("read %s:%u@%" PRIu64 " failed", TOPICS[t], q, off);
                    break;
                }
                if (rr.status != ENGINE_READ_FOUND)
                    break;
                size_t at = 0;
                for (uint32_t i = 0; i < rr.count; i++) {
                    proto_record r;
                    long len = proto_record_decode(rr.data + at, rr.len - at, &r);
                    if (len <= 0 || r.queue_offset != (int64_t)(off + i)) {
                        bad("%s:%u@%" PRIu64 " does not decode or is out of place", TOPICS[t],
                            q, off + i);
                        break;
                    }
                    check_record(&r, seen);
                    delivered++;
                    at += (size_t)len;
                }
                off = rr.next_offset;
                engine_free(rr.data);
            }
        }
    uint64_t acked = 0;
    for (unsigned c = 0; c < N_CYCLES; c++)
        for (unsigned w = 0; w < N_WRITERS; w++)
            for (uint32_t s = 0; s < MAX_SEQ; s++)
                if (RUN.acked[c][w][s]) {
                    acked++;
                    if (!seen[c][w][s])
                        bad("c%02u-w%u-s%07u acknowledged but never delivered", c, w, s);
                }
    size_t problems = test_index_consistency(e, 10);
    if (problems)
        bad("%zu index problems", problems);
    fprintf(stderr, "timer crash verify: %" PRIu64 " acknowledged, %" PRIu64 " delivered\n",
            acked, delivered);
    engine_close(e);
    _exit(verify_failed ? 1 : 0);
}

static void crash_run(engine_flush_mode mode)
{
    memset(&RUN, 0, sizeof RUN);
    RUN.dir = test_tmpdir("timercrash");
    RUN.mode = mode;
    const char *s = getenv("LSMQ_CRASH_SEED");
    RUN.seed = s ? (uint32_t)strtoul(s, NULL, 10) : (uint32_t)proto_wall_ms() ^ (uint32_t)getpid();
    fprintf(stderr, "timer crash test (%s): seed %u\n",
            mode == ENGINE_SYNC_FLUSH ? "SYNC_FLUSH" : "ASYNC_FLUSH", RUN.seed);
    for (unsigned c = 0; c < N_CYCLES; c++)
        for (unsigned w = 0; w < N_WRITERS; w++)
            RUN.acked[c][w] = calloc(MAX_SEQ, 1);
    /* The topics, made once by a child (the parent never opens RocksDB). */
    pid_t pid = fork();
    if (pid == 0) {
        engine *e = NULL;
        if (open_store(&e) != 0)
            _exit(2);
        for (unsigned t = 0; t < N_TOPICS; t++) {
            engine_topic_config tc = {.read_queue_nums = N_QUEUES, .write_queue_nums = N_QUEUES,
                                      .perm = 6};
            snprintf(tc.name, sizeof tc.name, "%s", TOPICS[t]);
            if (engine_topic_put(e, &tc, NULL) != 0)
                _exit(3);
        }
        engine_close(e);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    uint32_t rng = RUN.seed | 1u;
    for (RUN.cycle = 0; RUN.cycle < N_CYCLES; RUN.cycle++)
        run_cycle(&rng);
    assert_true(RUN.acked_total > 0);
    pid = fork();
    if (pid == 0)
        verify_child();
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    for (unsigned c = 0; c < N_CYCLES; c++)
        for (unsigned w = 0; w < N_WRITERS; w++)
            free(RUN.acked[c][w]);
    test_rmdir_free(RUN.dir);
}

static void test_sync_flush(void **state) { crash_run(ENGINE_SYNC_FLUSH); }
static void test_async_flush(void **state) { crash_run(ENGINE_ASYNC_FLUSH); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_flush),
        cmocka_unit_test(test_async_flush),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
