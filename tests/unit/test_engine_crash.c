/*
 * test_engine_crash: every acknowledged append survives kill -9.
 *
 * One store directory goes through repeated crash cycles. In each cycle a
 * writer child process (forked first, engine opened in the child only)
 * appends from several threads as fast as it can: single messages and
 * batches, callbacks several in flight and blocking calls. After each
 * acknowledgement with status 0 it writes (topic, queue, offset, body
 * checksum) to a pipe. The parent reads the pipe and kill -9s the child at a
 * random moment 20-300 ms after it started appending, then reaps it.
 *
 * A fresh verifier child then reopens the store (the parent never opens
 * RocksDB) and checks it against the acknowledgements. Every cycle reads
 * back what was stored since the previous check; every FULL_CHECK_EVERY-th
 * cycle and the last one read the whole store against the acknowledgements
 * of all cycles so far (reading everything every time would make the run
 * grow quadratically):
 *  - each acknowledged message is still at its offset, decodes, passes its
 *    body CRC and has the acknowledged body checksum, topic and queue;
 *  - each queue's offsets run contiguously up to its max offset (from its
 *    min offset on full checks), log positions grow along the queue and
 *    store time never goes back;
 *  - the max offset never falls below what an earlier reopen saw;
 *  - the index entries of the newest messages point at them;
 *  - on full checks, all records tile the log positions
 *    [0, engine_next_log_position()), every message has its idx_id,
 *    idx_time and idx_key entries (messages carry KEYS and UNIQ_KEY) and
 *    every entry names a message that matches it;
 *  - an append after the reopen gets offset == the previous max offset and
 *    log position == the previous next log position (appends continue).
 * Acknowledged offsets must never be handed out twice across cycles.
 *
 * This runs with ENGINE_SYNC_FLUSH and with ENGINE_ASYNC_FLUSH: killing the
 * process leaves the WAL it wrote with the OS, so neither mode may lose an
 * acknowledged message here (only a machine crash may cost async writes).
 * The seed is printed; LSMQ_CRASH_SEED=<n> reuses it (kill delays and
 * message mix; thread timing still varies).
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

#define N_CYCLES 20
#define FULL_CHECK_EVERY 4
#define N_WRITERS 3
#define MAX_BATCH 6
#define MAX_INFLIGHT 8
#define BODY_MAX 160
#define KILL_MIN_MS 20
#define KILL_MAX_MS 300
#define READY_TIMEOUT_MS 30000
#define CHILD_TIMEOUT_MS 120000
#define CHILD_ALARM_S 180
#define READ_COUNT 256
#define READ_BYTES (1u << 20)
#define INDEX_TAIL 64
#define MAX_REPORTED 40
#define EXAMPLES 5
#define REOPEN_WRITER 0xff

static const char PROPS[] = "TAGS\001crash\002";
#define PROPS_MAX 96

typedef struct topic_spec {
    const char *name;
    uint32_t queues;
} topic_spec;

static const topic_spec TOPICS[] = {
    {"crash-a", 3},
    {"crash-b", 2},
};
#define N_TOPICS (sizeof TOPICS / sizeof TOPICS[0])
#define N_QUEUES 5

/* What children tell the parent through the pipe; one write() per batch. */
enum ack_kind { ACK_READY = 1, ACK_MSG = 2, ACK_END = 3 };

typedef struct ack_rec {
    uint8_t kind;
    uint8_t topic;
    uint8_t queue;
    uint8_t writer;    /* producer thread, REOPEN_WRITER for the verifier's append */
    uint32_t seq;
    uint64_t offset;   /* ACK_MSG: queue offset; ACK_END: queue max offset */
    uint64_t checksum; /* FNV-1a of the body */
} ack_rec;

/* The parent's record of one acknowledged offset. */
typedef struct ledger_entry {
    uint64_t checksum;
    uint32_t seq;
    uint8_t acked;
    uint8_t cycle;
    uint8_t writer;
} ledger_entry;

typedef struct ledger_queue {
    ledger_entry *at; /* indexed by queue offset */
    uint64_t cap;
    uint64_t end;     /* highest acknowledged offset + 1 */
    uint64_t acked;
} ledger_queue;

typedef struct crash_run {
    char *dir;
    engine_flush_mode mode;
    uint32_t seed;
    uint32_t rng;
    unsigned cycle;
    ledger_queue ledger[N_QUEUES];
    uint64_t seen_max[N_QUEUES]; /* max offset the last verifier left */
    uint64_t acked_total;
    unsigned cycles_with_acks;
    int failed;
    int passed;
    char error[1024];
} crash_run;

/* Static so that memory it points to stays reachable in forked children. */
static crash_run RUN;

/* ---- Small helpers ------------------------------------------------------ */

static uint32_t next_rand(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

static uint64_t fnv1a(const void *p, size_t len)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static unsigned queue_slot(unsigned topic, uint32_t queue)
{
    unsigned slot = 0;
    for (unsigned t = 0; t < topic; t++)
        slot += TOPICS[t].queues;
    return slot + queue;
}

static const char *mode_name(engine_flush_mode mode)
{
    return mode == ENGINE_SYNC_FLUSH ? "SYNC_FLUSH" : "ASYNC_FLUSH";
}

/* write() all of a small buffer; pipes take up to PIPE_BUF bytes at once. */
static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void send_rec(int fd, const ack_rec *recs, size_t n)
{
    if (write_all(fd, recs, n * sizeof *recs) != 0) {
        fprintf(stderr, "crash test child: pipe write failed: %s\n", strerror(errno));
        _exit(4);
    }
}

static int open_store(const char *dir, engine_flush_mode mode, engine **out)
{
    engine_config c;
    test_engine_config(&c, dir);
    c.flush_mode = mode;
    char err[256] = "";
    int rc = index_declare(&c, NULL);
    if (rc == 0)
        rc = engine_open(&c, out, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "crash test child: engine_open(%s): %d %s\n", dir, rc, err);
    return rc;
}

/* Every child dies with the parent and gives up after CHILD_ALARM_S. */
static void child_guard(void)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(CHILD_ALARM_S);
}

/* ---- Writer child ------------------------------------------------------- */

typedef struct crash_writer {
    unsigned id;
    unsigned cycle;
    engine *e;
    int fd;
    uint32_t rng;
    uint32_t next_seq;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned inflight;
} crash_writer;

/* One batch: its bodies live until the append completes. */
typedef struct crash_batch {
    crash_writer *w;
    uint8_t topic;
    uint8_t queue;
    uint32_t first_seq;
    uint32_t n;
    uint64_t checksums[MAX_BATCH];
    engine_msg msgs[MAX_BATCH];
    char bodies[MAX_BATCH][BODY_MAX + 1];
    char props[MAX_BATCH][PROPS_MAX];
} crash_batch;

static void make_batch(crash_writer *w, crash_batch *b)
{
    b->w = w;
    b->topic = (uint8_t)(next_rand(&w->rng) % N_TOPICS);
    b->queue = (uint8_t)(next_rand(&w->rng) % TOPICS[b->topic].queues);
    b->n = next_rand(&w->rng) % 2 ? 1 : 2 + next_rand(&w->rng) % (MAX_BATCH - 1);
    b->first_seq = w->next_seq;
    w->next_seq += b->n;
    for (uint32_t i = 0; i < b->n; i++) {
        char *body = b->bodies[i];
        int head = snprintf(body, BODY_MAX, "c%02u-w%u-s%07u:", w->cycle, w->id,
                            b->first_seq + i);
        uint32_t len = (uint32_t)head + next_rand(&w->rng) % (BODY_MAX - (uint32_t)head);
        for (uint32_t k = (uint32_t)head; k < len; k++)
            body[k] = (char)('!' + next_rand(&w->rng) % 94);
        body[len] = '\0';
        /* Keys shared by many messages and a unique one: each index entry
         * goes in the message's batch. */
        snprintf(b->props[i], PROPS_MAX,
                 "TAGS\001crash\002KEYS\001w%u k%u\002UNIQ_KEY\001c%02u-w%u-s%07u\002", w->id,
                 (b->first_seq + i) % 50, w->cycle, w->id, b->first_seq + i);
        b->msgs[i] = test_msg(body, b->props[i]);
        b->checksums[i] = fnv1a(body, len);
    }
}

/* Tell the parent about an acknowledged batch. */
static void report_batch(const crash_batch *b, uint64_t first_offset)
{
    ack_rec recs[MAX_BATCH];
    memset(recs, 0, sizeof recs);
    for (uint32_t i = 0; i < b->n; i++) {
        recs[i].kind = ACK_MSG;
        recs[i].topic = b->topic;
        recs[i].queue = b->queue;
        recs[i].writer = (uint8_t)b->w->id;
        recs[i].seq = b->first_seq + i;
        recs[i].offset = first_offset + i;
        recs[i].checksum = b->checksums[i];
    }
    send_rec(b->w->fd, recs, b->n);
}

/* Writer thread: only status 0 is an acknowledgement. */
static void crash_append_cb(void *ctx, const engine_append_result *r)
{
    crash_batch *b = ctx;
    crash_writer *w = b->w;
    if (r->status == 0)
        report_batch(b, r->queue_offset);
    free(b);
    pthread_mutex_lock(&w->mu);
    w->inflight--;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Append one batch (b is freed here or by the callback); refusals end the child. */
static void append_or_die(crash_writer *w, crash_batch *b, int blocking)
{
    const char *name = TOPICS[b->topic].name;
    uint32_t queue = b->queue;
    int rc;
    if (blocking) {
        engine_append_result r;
        memset(&r, 0, sizeof r);
        rc = engine_append_wait(w->e, name, strlen(name), queue, b->msgs, b->n, &r);
        if (rc == 0 && r.status == 0)
            report_batch(b, r.queue_offset);
        free(b);
        if (rc == LSMQ_EBUSY || rc == LSMQ_EIO || rc == LSMQ_ENOSPC)
            rc = 0; /* not acknowledged, nothing to check */
    } else {
        pthread_mutex_lock(&w->mu);
        while (w->inflight >= MAX_INFLIGHT)
            pthread_cond_wait(&w->cv, &w->mu);
        w->inflight++;
        pthread_mutex_unlock(&w->mu);
        rc = engine_append(w->e, name, strlen(name), queue, b->msgs, b->n, crash_append_cb, b);
        if (rc != 0)
            free(b);
    }
    if (rc != 0) {
        fprintf(stderr, "crash test writer %u: append to %s:%u refused: %d %s\n", w->id, name,
                queue, rc, lsmq_strerror(rc));
        _exit(3);
    }
}

static void *writer_thread(void *arg)
{
    crash_writer *w = arg;
    for (;;) {
        crash_batch *b = calloc(1, sizeof *b);
        if (!b)
            _exit(5);
        make_batch(w, b);
        append_or_die(w, b, next_rand(&w->rng) % 4 == 0);
    }
    return NULL;
}

/* Child: open the store, append until killed. Never returns. */
static void writer_child_main(const crash_run *run, int fd)
{
    child_guard();
    engine *e = NULL;
    if (open_store(run->dir, run->mode, &e) != 0)
        _exit(2);
    static crash_writer writers[N_WRITERS];
    for (unsigned i = 0; i < N_WRITERS; i++) {
        crash_writer *w = &writers[i];
        w->id = i;
        w->cycle = run->cycle;
        w->e = e;
        w->fd = fd;
        w->rng = (run->seed ^ (run->cycle * 0x9e3779b9u) ^ (i * 0x85ebca6bu)) | 1u;
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cv, NULL);
        pthread_t tid;
        if (pthread_create(&tid, NULL, writer_thread, w) != 0)
            _exit(5);
    }
    ack_rec ready;
    memset(&ready, 0, sizeof ready);
    ready.kind = ACK_READY;
    send_rec(fd, &ready, 1);
    for (;;)
        pause();
}

/* ---- Parent: ledger of acknowledgements --------------------------------- */

static void run_fail(crash_run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void run_fail(crash_run *run, const char *fmt, ...)
{
    if (run->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(run->error, sizeof run->error, fmt, ap);
    va_end(ap);
    run->failed = 1;
}

static ledger_entry *ledger_slot(ledger_queue *lq, uint64_t offset)
{
    if (offset >= lq->cap) {
        uint64_t cap = lq->cap ? lq->cap : 1024;
        while (cap <= offset)
            cap *= 2;
        lq->at = realloc(lq->at, cap * sizeof *lq->at);
        assert_non_null(lq->at);
        memset(lq->at + lq->cap, 0, (cap - lq->cap) * sizeof *lq->at);
        lq->cap = cap;
    }
    return &lq->at[offset];
}

static void ledger_add(crash_run *run, const ack_rec *a)
{
    unsigned slot = queue_slot(a->topic, a->queue);
    ledger_queue *lq = &run->ledger[slot];
    ledger_entry *le = ledger_slot(lq, a->offset);
    if (le->acked) {
        run_fail(run, "%s:%u offset %" PRIu64 " acknowledged twice: cycle %u writer %u seq %u,"
                 " again in cycle %u writer %u seq %u (an offset was handed out again)",
                 TOPICS[a->topic].name, a->queue, a->offset, le->cycle, le->writer, le->seq,
                 run->cycle, a->writer, a->seq);
        return;
    }
    le->acked = 1;
    le->checksum = a->checksum;
    le->seq = a->seq;
    le->cycle = (uint8_t)run->cycle;
    le->writer = a->writer;
    lq->acked++;
    if (a->offset + 1 > lq->end)
        lq->end = a->offset + 1;
    run->acked_total++;
}

static void ledger_free(crash_run *run)
{
    for (unsigned q = 0; q < N_QUEUES; q++)
        free(run->ledger[q].at);
    memset(run->ledger, 0, sizeof run->ledger);
}

/* ---- Parent: reading a child's pipe ------------------------------------- */

typedef struct ack_reader {
    int fd;
    int eof;
    int ready;
    uint64_t acks;
    size_t have;
    uint8_t buf[sizeof(ack_rec) * 512];
} ack_reader;

static void take_rec(crash_run *run, ack_reader *rd, const ack_rec *a)
{
    if (a->topic >= N_TOPICS || a->queue >= TOPICS[a->topic].queues) {
        run_fail(run, "garbled record on the pipe (kind %u topic %u queue %u)", a->kind,
                 a->topic, a->queue);
        return;
    }
    switch (a->kind) {
    case ACK_READY:
        rd->ready = 1;
        break;
    case ACK_MSG:
        rd->acks++;
        ledger_add(run, a);
        break;
    case ACK_END:
        run->seen_max[queue_slot(a->topic, a->queue)] = a->offset;
        break;
    default:
        run_fail(run, "garbled record kind %u on the pipe", a->kind);
    }
}

/* Read until the deadline, EOF, or (if until_ready) the child's READY. */
static void pump(crash_run *run, ack_reader *rd, int64_t deadline_ms, int until_ready)
{
    while (!rd->eof && !(until_ready && rd->ready) && !run->failed) {
        int64_t left = deadline_ms - proto_mono_ms();
        if (left <= 0)
            return;
        struct pollfd p = {.fd = rd->fd, .events = POLLIN};
        int n = poll(&p, 1, (int)(left < 1000 ? left : 1000));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            run_fail(run, "poll: %s", strerror(errno));
            return;
        }
        if (n == 0)
            continue;
        ssize_t got = read(rd->fd, rd->buf + rd->have, sizeof rd->buf - rd->have);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            run_fail(run, "read: %s", strerror(errno));
            return;
        }
        if (got == 0) {
            rd->eof = 1;
            break;
        }
        rd->have += (size_t)got;
        size_t used = 0;
        for (; rd->have - used >= sizeof(ack_rec); used += sizeof(ack_rec)) {
            ack_rec a;
            memcpy(&a, rd->buf + used, sizeof a);
            take_rec(run, rd, &a);
        }
        memmove(rd->buf, rd->buf + used, rd->have - used);
        rd->have -= used;
    }
    if (rd->eof && rd->have != 0)
        run_fail(run, "pipe ended inside a record (%zu stray bytes)", rd->have);
}

static int reap(pid_t pid)
{
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            fail_msg("waitpid(%d): %s", (int)pid, strerror(errno));
        }
    }
    return status;
}

static void describe_status(int status, char *out, size_t cap)
{
    if (WIFEXITED(status))
        snprintf(out, cap, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, cap, "died of signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(out, cap, "ended with wait status 0x%x", (unsigned)status);
}

/* fork with a pipe from the child; the child runs fn and never returns. */
static pid_t spawn(crash_run *run, int *read_fd, void (*fn)(const crash_run *, int))
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        fail_msg("fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        fn(run, fds[1]);
        _exit(99); /* not reached */
    }
    close(fds[1]);
    *read_fd = fds[0];
    return pid;
}

/* ---- Parent: one crash cycle -------------------------------------------- */

static void run_writer_cycle(crash_run *run)
{
    int fd = -1;
    pid_t pid = spawn(run, &fd, writer_child_main);
    ack_reader *rd = calloc(1, sizeof *rd);
    assert_non_null(rd);
    rd->fd = fd;

    pump(run, rd, proto_mono_ms() + READY_TIMEOUT_MS, 1);
    int ready = rd->ready;
    if (ready) {
        int64_t delay = KILL_MIN_MS + next_rand(&run->rng) % (KILL_MAX_MS - KILL_MIN_MS + 1);
        pump(run, rd, proto_mono_ms() + delay, 0);
    }
    kill(pid, SIGKILL);
    /* Whatever the child wrote before it died is still in the pipe. */
    pump(run, rd, proto_mono_ms() + CHILD_TIMEOUT_MS, 0);
    int eof = rd->eof;
    close(rd->fd);
    int status = reap(pid);

    char how[96];
    describe_status(status, how, sizeof how);
    if (!ready)
        run_fail(run, "writer child never started appending; it %s", how);
    else if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
        run_fail(run, "writer child %s before it was killed", how);
    else if (!eof)
        run_fail(run, "pipe from the killed writer child never ended");
    if (rd->acks > 0)
        run->cycles_with_acks++;
    free(rd);
}

/* ---- Verifier child ------------------------------------------------------ */

typedef struct placed_record {
    uint64_t position;
    uint32_t size;
} placed_record;

typedef struct crash_verify {
    const crash_run *run;
    engine *e;
    int fd;
    int full;          /* read the whole store, not just what is new */
    unsigned problems;
    uint64_t max_before[N_QUEUES];
    placed_record *placed;
    size_t n_placed;
    size_t cap_placed;
} crash_verify;

static void problem(crash_verify *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(crash_verify *v, const char *fmt, ...)
{
    v->problems++;
    if (v->problems > MAX_REPORTED) {
        if (v->problems == MAX_REPORTED + 1)
            fprintf(stderr, "[crash %s cycle %u] ... more problems not shown\n",
                    mode_name(v->run->mode), v->run->cycle);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[crash %s cycle %u] ", mode_name(v->run->mode), v->run->cycle);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void place(crash_verify *v, uint64_t position, uint32_t size)
{
    if (v->n_placed == v->cap_placed) {
        v->cap_placed = v->cap_placed ? v->cap_placed * 2 : 65536;
        v->placed = realloc(v->placed, v->cap_placed * sizeof *v->placed);
        if (!v->placed)
            _exit(5);
    }
    v->placed[v->n_placed].position = position;
    v->placed[v->n_placed].size = size;
    v->n_placed++;
}

/* The walk through one queue's stored records. */
typedef struct queue_scan {
    unsigned topic;
    uint32_t queue;
    uint32_t topic_id;
    uint64_t start;    /* first offset scanned */
    uint64_t max;      /* queue max offset */
    uint64_t offset;   /* next offset expected */
    uint64_t *sums;    /* body checksum per offset in [start, max) */
    int have_prev;
    uint64_t prev_position;
    int64_t prev_store_ms;
} queue_scan;

/* Check one stored record at s->offset; 0 to go on, -1 to stop the scan. */
static int check_stored(crash_verify *v, queue_scan *s, const proto_record *rec)
{
    const char *name = TOPICS[s->topic].name;
    if (proto_record_check_crc(rec) != 0)
        problem(v, "%s:%u offset %" PRIu64 ": body CRC mismatch", name, s->queue, s->offset);
    if (rec->queue_id != (int32_t)s->queue || rec->queue_offset != (int64_t)s->offset) {
        problem(v, "%s:%u offset %" PRIu64 ": record says queue %d offset %" PRId64, name,
                s->queue, s->offset, rec->queue_id, rec->queue_offset);
        return -1;
    }
    if (rec->topic_len != strlen(name) || memcmp(rec->topic, name, rec->topic_len) != 0)
        problem(v, "%s:%u offset %" PRIu64 ": record names topic %.*s", name, s->queue,
                s->offset, (int)rec->topic_len, rec->topic);
    if (rec->physical_offset < 0 ||
        (s->have_prev && (uint64_t)rec->physical_offset <= s->prev_position))
        problem(v, "%s:%u offset %" PRIu64 ": log position %" PRId64 " not above %" PRIu64,
                name, s->queue, s->offset, rec->physical_offset, s->prev_position);
    if (s->have_prev && rec->store_timestamp < s->prev_store_ms)
        problem(v, "%s:%u offset %" PRIu64 ": store time %" PRId64 " before previous %" PRId64,
                name, s->queue, s->offset, rec->store_timestamp, s->prev_store_ms);
    s->have_prev = 1;
    s->prev_position = (uint64_t)rec->physical_offset;
    s->prev_store_ms = rec->store_timestamp;
    s->sums[s->offset - s->start] = fnv1a(rec->body, rec->body_len);
    if (v->full)
        place(v, (uint64_t)rec->physical_offset, rec->total_size);

    /* The newest messages are where a torn commit would show. */
    if (s->offset + INDEX_TAIL >= s->max) {
        uint32_t tid = 0, qid = 0;
        uint64_t off = 0;
        int rc = test_locate(v->e, (uint64_t)rec->physical_offset, &tid, &qid, &off);
        if (rc != 0 || tid != s->topic_id || qid != s->queue || off != s->offset)
            problem(v, "%s:%u offset %" PRIu64 ": index_locate(%" PRId64 ") = %d -> %u:%u:%"
                    PRIu64, name, s->queue, s->offset, rec->physical_offset, rc, tid, qid, off);
    }
    return 0;
}

/* Read [s->start, s->max); stops at the first unreadable spot. */
static void scan_queue(crash_verify *v, queue_scan *s)
{
    const char *name = TOPICS[s->topic].name;
    s->offset = s->start;
    while (s->offset < s->max) {
        engine_read_result rr;
        memset(&rr, 0, sizeof rr);
        uint64_t from = s->offset;
        int rc = engine_read(v->e, name, strlen(name), s->queue, from, READ_COUNT, READ_BYTES,
                             &rr);
        if (rc != 0 || rr.status != ENGINE_READ_FOUND || rr.count == 0) {
            problem(v, "%s:%u: read at %" PRIu64 " (max %" PRIu64 ") = %d, status %d, %u "
                    "records: offsets not contiguous", name, s->queue, from, s->max, rc,
                    (int)rr.status, rr.count);
            engine_free(rr.data);
            return;
        }
        size_t at = 0;
        int stop = 0;
        for (uint32_t i = 0; i < rr.count && !stop; i++) {
            proto_record rec;
            long size = proto_record_decode(rr.data + at, rr.len - at, &rec);
            if (size <= 0) {
                problem(v, "%s:%u offset %" PRIu64 ": record does not decode (%ld)", name,
                        s->queue, s->offset, size);
                stop = 1;
                break;
            }
            stop = check_stored(v, s, &rec) != 0;
            at += (size_t)size;
            if (!stop)
                s->offset++;
        }
        if (!stop && rr.next_offset != s->offset) {
            problem(v, "%s:%u: read at %" PRIu64 " says next %" PRIu64 ", records end at %"
                    PRIu64, name, s->queue, from, rr.next_offset, s->offset);
            stop = 1;
        }
        engine_free(rr.data);
        if (stop)
            return;
    }
}

/* One acknowledged message that is missing or differs, for the report. */
static void show_example(const crash_verify *v, const queue_scan *s, uint64_t offset,
                         const ledger_entry *le, const char *what)
{
    fprintf(stderr, "[crash %s cycle %u]   e.g. %s:%u offset %" PRIu64 " %s: acknowledged in"
            " cycle %u by writer %u, seq %u\n", mode_name(v->run->mode), v->run->cycle,
            TOPICS[s->topic].name, s->queue, offset, what, le->cycle, le->writer, le->seq);
}

/* Compare the acknowledgements for offsets >= s->start with what was read. */
static void check_acked(crash_verify *v, const queue_scan *s, const ledger_queue *lq)
{
    uint64_t lost = 0, altered = 0, first_lost = 0, last_lost = 0;
    for (uint64_t o = s->start; o < lq->end; o++) {
        if (!lq->at[o].acked)
            continue;
        if (o >= s->offset) {
            if (lost++ == 0)
                first_lost = o;
            last_lost = o;
        } else if (s->sums[o - s->start] != lq->at[o].checksum) {
            altered++;
        }
    }
    if (!lost && !altered)
        return;
    problem(v, "%s:%u: %" PRIu64 " acknowledged messages LOST (offsets %" PRIu64 "..%" PRIu64
            "), %" PRIu64 " ALTERED; the queue reads up to offset %" PRIu64 ", max offset %"
            PRIu64, TOPICS[s->topic].name, s->queue, lost, first_lost, last_lost, altered,
            s->offset, s->max);
    unsigned shown_lost = 0, shown_altered = 0;
    for (uint64_t o = s->start; o < lq->end; o++) {
        const ledger_entry *le = &lq->at[o];
        if (!le->acked)
            continue;
        if (o >= s->offset && shown_lost < EXAMPLES) {
            shown_lost++;
            show_example(v, s, o, le, "lost");
        } else if (o < s->offset && s->sums[o - s->start] != le->checksum &&
                   shown_altered < EXAMPLES) {
            shown_altered++;
            show_example(v, s, o, le, "altered");
        }
    }
}

static void verify_queue(crash_verify *v, unsigned topic, uint32_t queue)
{
    const char *name = TOPICS[topic].name;
    unsigned slot = queue_slot(topic, queue);
    queue_scan s;
    memset(&s, 0, sizeof s);
    s.topic = topic;
    s.queue = queue;
    uint64_t min = 0;
    int rc = engine_queue_offsets(v->e, name, strlen(name), queue, &min, &s.max);
    if (rc == 0)
        rc = engine_topic_id(v->e, name, strlen(name), &s.topic_id);
    if (rc != 0) {
        problem(v, "%s:%u: queue offsets / topic id: %d %s", name, queue, rc, lsmq_strerror(rc));
        return;
    }
    v->max_before[slot] = s.max;
    if (min != 0)
        problem(v, "%s:%u: min offset %" PRIu64 ", nothing removes messages here", name, queue,
                min);
    uint64_t seen_before = v->run->seen_max[slot];
    if (s.max < seen_before)
        problem(v, "%s:%u: max offset %" PRIu64 " fell below %" PRIu64 " seen after the last"
                " reopen", name, queue, s.max, seen_before);

    /* Without a full check, start where the previous check ended. */
    s.start = v->full || seen_before < min ? min : seen_before;
    if (s.start > s.max)
        s.start = s.max;
    s.sums = calloc(s.max - s.start + 1, sizeof *s.sums);
    if (!s.sums)
        _exit(5);
    scan_queue(v, &s);
    check_acked(v, &s, &v->run->ledger[slot]);
    free(s.sums);
}

static int by_position(const void *a, const void *b)
{
    const placed_record *x = a, *y = b;
    return x->position < y->position ? -1 : x->position > y->position;
}

static void verify_tiling(crash_verify *v)
{
    qsort(v->placed, v->n_placed, sizeof *v->placed, by_position);
    uint64_t expect = 0;
    for (size_t i = 0; i < v->n_placed; i++) {
        if (v->placed[i].position != expect) {
            problem(v, "log position %" PRIu64 " follows a record ending at %" PRIu64 " (%s)",
                    v->placed[i].position, expect,
                    v->placed[i].position < expect ? "overlap" : "hole");
            return;
        }
        expect += v->placed[i].size;
    }
    uint64_t next = engine_next_log_position(v->e);
    if (expect != next)
        problem(v, "records end at log position %" PRIu64 ", engine_next_log_position %" PRIu64,
                expect, next);
}

/* Append one message to a queue: it must continue where the store left off. */
static void append_after_reopen(crash_verify *v, unsigned topic, uint32_t queue)
{
    const char *name = TOPICS[topic].name;
    unsigned slot = queue_slot(topic, queue);
    char body[64];
    snprintf(body, sizeof body, "reopen-c%02u-%s-q%u", v->run->cycle, name, queue);
    engine_msg m = test_msg(body, PROPS);
    uint64_t position = engine_next_log_position(v->e);
    engine_append_result r;
    memset(&r, 0, sizeof r);
    int rc = engine_append_wait(v->e, name, strlen(name), queue, &m, 1, &r);
    if (rc != 0 || r.status != 0) {
        problem(v, "%s:%u: append after reopen failed: %d / %d %s", name, queue, rc, r.status,
                r.error ? r.error : "");
        return;
    }
    if (r.queue_offset != v->max_before[slot])
        problem(v, "%s:%u: append after reopen got offset %" PRIu64 ", max offset was %" PRIu64,
                name, queue, r.queue_offset, v->max_before[slot]);
    if (r.log_position != position)
        problem(v, "%s:%u: append after reopen got log position %" PRIu64 ", next was %" PRIu64,
                name, queue, r.log_position, position);

    ack_rec recs[2];
    memset(recs, 0, sizeof recs);
    recs[0].kind = ACK_MSG;
    recs[0].topic = (uint8_t)topic;
    recs[0].queue = (uint8_t)queue;
    recs[0].writer = REOPEN_WRITER;
    recs[0].seq = v->run->cycle;
    recs[0].offset = r.queue_offset;
    recs[0].checksum = fnv1a(body, strlen(body));
    recs[1] = recs[0];
    recs[1].kind = ACK_END;
    recs[1].offset = r.queue_offset + 1;
    send_rec(v->fd, recs, 2);
}

/* Child: reopen, check everything, append once per queue. Exits 0 when clean. */
static void verifier_child_main(const crash_run *run, int fd)
{
    child_guard();
    engine *e = NULL;
    if (open_store(run->dir, run->mode, &e) != 0)
        _exit(2);
    crash_verify v;
    memset(&v, 0, sizeof v);
    v.run = run;
    v.e = e;
    v.fd = fd;
    v.full = (run->cycle + 1) % FULL_CHECK_EVERY == 0 || run->cycle + 1 == N_CYCLES;
    for (unsigned t = 0; t < N_TOPICS; t++)
        for (uint32_t q = 0; q < TOPICS[t].queues; q++)
            verify_queue(&v, t, q);
    if (v.full && v.problems == 0) {
        verify_tiling(&v);
        size_t bad = test_index_consistency(e, MAX_REPORTED);
        if (bad)
            problem(&v, "%zu index entries disagree with the messages", bad);
    }
    free(v.placed);
    if (v.problems == 0)
        for (unsigned t = 0; t < N_TOPICS; t++)
            for (uint32_t q = 0; q < TOPICS[t].queues; q++)
                append_after_reopen(&v, t, q);
    engine_close(e);
    close(fd);
    exit(v.problems ? 1 : 0);
}

static void run_verifier(crash_run *run)
{
    int fd = -1;
    pid_t pid = spawn(run, &fd, verifier_child_main);
    ack_reader *rd = calloc(1, sizeof *rd);
    assert_non_null(rd);
    rd->fd = fd;
    pump(run, rd, proto_mono_ms() + CHILD_TIMEOUT_MS, 0);
    if (!rd->eof)
        kill(pid, SIGKILL);
    close(rd->fd);
    int status = reap(pid);
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        char how[96];
        describe_status(status, how, sizeof how);
        run_fail(run, "verifier child %s (problems listed above)", how);
    }
    free(rd);
}

/* Child: create the topics once, before the first crash. */
static void setup_child_main(const crash_run *run, int fd)
{
    child_guard();
    engine *e = NULL;
    if (open_store(run->dir, run->mode, &e) != 0)
        _exit(2);
    int failed = 0;
    for (unsigned t = 0; t < N_TOPICS; t++) {
        engine_topic_config tc;
        memset(&tc, 0, sizeof tc);
        snprintf(tc.name, sizeof tc.name, "%s", TOPICS[t].name);
        tc.read_queue_nums = TOPICS[t].queues;
        tc.write_queue_nums = TOPICS[t].queues;
        tc.perm = ENGINE_PERM_READ | ENGINE_PERM_WRITE;
        int rc = engine_topic_put(e, &tc, NULL);
        if (rc != 0) {
            fprintf(stderr, "crash test setup: engine_topic_put(%s): %d\n", tc.name, rc);
            failed = 1;
        }
    }
    engine_close(e);
    close(fd);
    exit(failed);
}

static void run_setup(crash_run *run)
{
    int fd = -1;
    pid_t pid = spawn(run, &fd, setup_child_main);
    close(fd);
    int status = reap(pid);
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        char how[96];
        describe_status(status, how, sizeof how);
        run_fail(run, "setup child %s", how);
    }
}

/* ---- Tests --------------------------------------------------------------- */

static uint32_t pick_seed(engine_flush_mode mode)
{
    const char *env = getenv("LSMQ_CRASH_SEED");
    if (env && *env)
        return (uint32_t)strtoul(env, NULL, 0);
    return (uint32_t)proto_wall_ms() ^ ((uint32_t)getpid() << 16) ^ ((uint32_t)mode << 8);
}

/* A fresh store and an empty ledger for each test. */
static int crash_setup(void **state)
{
    memset(&RUN, 0, sizeof RUN);
    RUN.dir = test_tmpdir("crash");
    *state = &RUN;
    return 0;
}

/* Runs whether or not the test passed; a failed run's store is kept. */
static int crash_teardown(void **state)
{
    crash_run *run = *state;
    ledger_free(run);
    if (run->passed)
        test_rmdir_free(run->dir);
    else
        free(run->dir);
    run->dir = NULL;
    return 0;
}

static void run_crash_test(crash_run *run, engine_flush_mode mode)
{
    run->mode = mode;
    run->seed = pick_seed(mode);
    run->rng = run->seed | 1u;
    print_message("crash %s: seed %u, store %s\n", mode_name(mode), run->seed, run->dir);

    int64_t started = proto_mono_ms();
    run_setup(run);
    for (run->cycle = 0; run->cycle < N_CYCLES && !run->failed; run->cycle++) {
        run_writer_cycle(run);
        if (run->failed)
            break;
        run_verifier(run);
        if (run->failed)
            break;
    }
    if (run->failed)
        fail_msg("crash %s, cycle %u: %s (seed %u, store kept at %s)", mode_name(mode),
                 run->cycle, run->error, run->seed, run->dir);

    print_message("crash %s: %u cycles, %" PRIu64 " acknowledged messages checked, %u cycles"
                  " acknowledged something, %.1f s\n", mode_name(mode), N_CYCLES,
                  run->acked_total, run->cycles_with_acks, (double)(proto_mono_ms() - started) / 1000);
    if (run->cycles_with_acks < N_CYCLES / 2)
        fail_msg("crash %s: only %u of %u cycles acknowledged anything", mode_name(mode),
                 run->cycles_with_acks, N_CYCLES);
    run->passed = 1;
}

static void test_crash_sync_flush(void **state)
{
    run_crash_test(*state, ENGINE_SYNC_FLUSH);
}

static void test_crash_async_flush(void **state)
{
    run_crash_test(*state, ENGINE_ASYNC_FLUSH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crash_sync_flush, crash_setup, crash_teardown),
        cmocka_unit_test_setup_teardown(test_crash_async_flush, crash_setup, crash_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
