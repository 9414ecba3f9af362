/*
 * test_engine_replica_crash: a replica killed with -9 while it applies its
 * master's log resumes with no gap and no double apply.
 *
 * Every store is opened in a forked child only (the parent never opens
 * RocksDB, whose thread pools do not survive a fork):
 *  - a builder makes the master: a topic, a checkpoint of it as the
 *    replica's store, then appends of one and of several messages with
 *    bodies numbered in order, a second topic and consumer offsets on the
 *    way; it saves each append's (queue, offset, count, number, last_seq)
 *    and every batch of the log after the checkpoint to files;
 *  - in each cycle an applier opens the replica and applies the saved
 *    batches after its applied sequence, in runs of 1..16 queued at once,
 *    telling the parent after each run; the parent kills it -9 after a
 *    random number of runs, while the next one is being written (a cycle
 *    may also finish the log);
 *  - a verifier then opens the replica and checks it against the applied
 *    sequence A it reports: A never falls and ends a saved batch; each
 *    queue's max offset is exactly what the appends with last_seq <= A put
 *    there, every such message is at its offset with its body, nothing is
 *    after it, the index is consistent; so the store holds exactly the
 *    batches up to A (no gap, none twice);
 *  - at the end the replica applies the rest and equals the master, family
 *    by family.
 * The seed is printed; LSMQ_CRASH_SEED=<n> reuses it.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "testsupport.h"

#define N_APPENDS 1500
#define N_QUEUES 4
#define N_CYCLES 8
#define KILL_MAX_RUNS 30
#define MAX_RUN 16
#define CHILD_ALARM_S 300
#define READ_BYTES (1u << 20)

typedef struct ack {
    uint32_t queue;
    uint32_t n;
    uint64_t offset;
    uint32_t number;   /* of the first message */
    uint64_t last_seq;
} ack;

typedef struct saved {
    uint64_t seq;
    uint32_t count;
    uint32_t len;
    uint8_t *data;
} saved;

/* Static so that the paths stay reachable in forked children. */
static char master_dir[512], replica_dir[512], work_dir[512];
static unsigned seed;

static void child_guard(void)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(CHILD_ALARM_S);
}

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "child: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    _exit(code);
}

static engine *open_store(const char *dir, bool replica)
{
    engine_config c;
    test_engine_config(&c, dir);
    c.replica = replica;
    c.retention_interval_ms = 3600000;
    if (index_declare(&c, NULL) != 0)
        die(2, "index_declare");
    engine *e = NULL;
    char err[256] = "";
    int rc = engine_open(&c, &e, err, sizeof err);
    if (rc != 0)
        die(2, "engine_open(%s): %s", dir, err);
    return e;
}

static char *work_path(const char *name)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", work_dir, name) < 0)
        abort();
    return p;
}

static FILE *work_file(const char *name, const char *mode)
{
    char *p = work_path(name);
    FILE *f = fopen(p, mode);
    if (!f)
        die(3, "%s: %s", p, strerror(errno));
    free(p);
    return f;
}

static void body_of(uint32_t number, char *out, size_t cap)
{
    snprintf(out, cap, "message-%06" PRIu32, number);
}

/* ---- The master ----------------------------------------------------------- */

static void create_topic(engine *e, const char *name, uint32_t queues)
{
    engine_topic_config tc;
    memset(&tc, 0, sizeof tc);
    snprintf(tc.name, sizeof tc.name, "%s", name);
    tc.read_queue_nums = tc.write_queue_nums = queues;
    tc.perm = ENGINE_PERM_READ | ENGINE_PERM_WRITE;
    if (engine_topic_put(e, &tc, NULL) != 0)
        die(4, "topic %s", name);
}

static void builder_main(void)
{
    child_guard();
    engine *m = open_store(master_dir, false);
    create_topic(m, "CrashTopic", N_QUEUES);
    char *db = NULL;
    if (asprintf(&db, "%s/db", replica_dir) < 0)
        abort();
    uint64_t cp_seq = 0;
    if (engine_checkpoint(m, db, &cp_seq) != 0)
        die(4, "checkpoint");
    free(db);

    FILE *acks = work_file("acks", "wb");
    uint32_t number = 0;
    for (uint32_t i = 0; i < N_APPENDS; i++) {
        uint32_t n = i % 7 == 3 ? 3 : 1;
        engine_msg msgs[3];
        char bodies[3][32], props[3][64];
        for (uint32_t k = 0; k < n; k++) {
            body_of(number + k, bodies[k], sizeof bodies[k]);
            snprintf(props[k], sizeof props[k], "KEYS\001key-%u\002", (unsigned)(number + k));
            msgs[k] = test_msg(bodies[k], props[k]);
        }
        engine_append_result r;
        uint32_t q = (uint32_t)rand_r(&seed) % N_QUEUES;
        if (engine_append_wait(m, "CrashTopic", 10, q, msgs, n, &r) != 0)
            die(4, "append %u", i);
        ack a = {.queue = q, .n = n, .offset = r.queue_offset, .number = number,
                 .last_seq = r.last_seq};
        fwrite(&a, sizeof a, 1, acks);
        number += n;
        if (i == N_APPENDS / 3)
            create_topic(m, "SecondTopic", 2);
        if (i % 100 == 99 &&
            engine_offset_set(m, "CrashGroup", 10, "CrashTopic", 10, q, r.queue_offset) != 0)
            die(4, "offset");
    }
    fclose(acks);

    FILE *log = work_file("log", "wb");
    fwrite(&cp_seq, sizeof cp_seq, 1, log);
    engine_log_reader *r = NULL;
    if (engine_log_open(m, cp_seq, &r) != 0)
        die(4, "log_open");
    engine_log_batch b;
    int rc;
    while ((rc = engine_log_next(r, &b)) == 1) {
        uint32_t len = (uint32_t)b.len;
        fwrite(&b.seq, sizeof b.seq, 1, log);
        fwrite(&b.count, sizeof b.count, 1, log);
        fwrite(&len, sizeof len, 1, log);
        fwrite(b.data, 1, b.len, log);
    }
    if (rc != 0)
        die(4, "log_next: %s", lsmq_strerror(rc));
    engine_log_close(r);
    fclose(log);
    engine_close(m);
    _exit(0);
}

/* ---- Reading the saved files --------------------------------------------- */

static saved *load_log(uint64_t *cp_seq, size_t *n)
{
    FILE *f = work_file("log", "rb");
    if (fread(cp_seq, sizeof *cp_seq, 1, f) != 1)
        die(5, "log header");
    size_t cap = 1024;
    saved *s = malloc(cap * sizeof *s);
    *n = 0;
    saved x;
    while (fread(&x.seq, sizeof x.seq, 1, f) == 1) {
        if (fread(&x.count, sizeof x.count, 1, f) != 1 || fread(&x.len, sizeof x.len, 1, f) != 1)
            die(5, "log record");
        x.data = malloc(x.len);
        if (fread(x.data, 1, x.len, f) != x.len)
            die(5, "log bytes");
        if (*n == cap)
            s = realloc(s, (cap *= 2) * sizeof *s);
        s[(*n)++] = x;
    }
    fclose(f);
    return s;
}

static void free_log(saved *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(s[i].data);
    free(s);
}

static ack *load_acks(size_t *n)
{
    FILE *f = work_file("acks", "rb");
    ack *a = malloc(N_APPENDS * sizeof *a);
    *n = fread(a, sizeof *a, N_APPENDS, f);
    fclose(f);
    return a;
}

/* Apply every saved batch after the replica's applied sequence; runs of 1..MAX_RUN,
 * each reported with a byte on fd (if >= 0) once durable. */
static void apply_rest(engine *r, uint64_t cp_seq, const saved *s, size_t n, unsigned *rs,
                       int fd)
{
    if (engine_applied_sequence(r) == 0 && engine_set_applied_sequence(r, cp_seq) != 0)
        die(6, "set_applied");
    size_t i = 0;
    while (i < n && s[i].seq <= engine_applied_sequence(r))
        i++;
    while (i < n) {
        size_t run = 1 + (size_t)rand_r(rs) % MAX_RUN;
        test_applied w;
        test_applied_init(&w);
        size_t queued = 0;
        for (; queued < run && i < n; queued++, i++) {
            engine_log_batch b = {.seq = s[i].seq, .count = s[i].count, .data = s[i].data,
                                  .len = s[i].len};
            int rc = engine_apply(r, &b, test_applied_cb, &w);
            if (rc != 0)
                die(6, "apply at %" PRIu64 ": %s", s[i].seq, lsmq_strerror(rc));
        }
        int rc = test_applied_wait(&w, queued);
        test_applied_destroy(&w);
        if (rc != 0)
            die(6, "applied: %s", lsmq_strerror(rc));
        if (fd >= 0 && write(fd, "+", 1) != 1)
            _exit(7);
    }
}

/* ---- Children ---------------------------------------------------------- */

static void applier_main(int fd, unsigned child_seed)
{
    child_guard();
    uint64_t cp_seq;
    size_t n;
    saved *s = load_log(&cp_seq, &n);
    engine *r = open_store(replica_dir, true);
    apply_rest(r, cp_seq, s, n, &child_seed, fd);
    engine_close(r);
    free_log(s, n);
    _exit(0);
}

/* The replica holds exactly the batches up to its applied sequence. */
static void verifier_main(int fd, uint64_t floor)
{
    child_guard();
    uint64_t cp_seq;
    size_t n, nacks;
    saved *s = load_log(&cp_seq, &n);
    ack *acks = load_acks(&nacks);
    engine *r = open_store(replica_dir, true);
    uint64_t applied = engine_applied_sequence(r);
    if (applied < floor)
        die(8, "applied sequence fell from %" PRIu64 " to %" PRIu64, floor, applied);
    bool boundary = applied == 0 || applied == cp_seq;
    for (size_t i = 0; i < n && !boundary; i++)
        boundary = s[i].seq + s[i].count - 1 == applied;
    if (!boundary)
        die(8, "applied sequence %" PRIu64 " ends no batch", applied);

    uint64_t expect_max[N_QUEUES] = {0};
    for (size_t i = 0; i < nacks; i++)
        if (acks[i].last_seq <= applied)
            expect_max[acks[i].queue] = acks[i].offset + acks[i].n;
    for (uint32_t q = 0; q < N_QUEUES; q++) {
        uint64_t min, max;
        if (engine_queue_offsets(r, "CrashTopic", 10, q, &min, &max) != 0)
            die(8, "queue %u missing", q);
        if (max != expect_max[q])
            die(8, "queue %u: max offset %" PRIu64 ", the applied batches put %" PRIu64, q, max,
                expect_max[q]);
        engine_read_result rr;
        if (engine_read(r, "CrashTopic", 10, q, max, 1, READ_BYTES, &rr) != 0 ||
            rr.status != (max ? ENGINE_READ_OFFSET_OVERFLOW_ONE : ENGINE_READ_NO_MESSAGE))
            die(8, "queue %u: something after the max offset", q);
        engine_free(rr.data);
    }
    for (size_t i = 0; i < nacks; i++) {
        if (acks[i].last_seq > applied)
            continue;
        engine_read_result rr;
        if (engine_read(r, "CrashTopic", 10, acks[i].queue, acks[i].offset, acks[i].n,
                        READ_BYTES, &rr) != 0 || rr.status != ENGINE_READ_FOUND ||
            rr.count != acks[i].n)
            die(8, "append %zu: not at queue %u offset %" PRIu64, i, acks[i].queue,
                acks[i].offset);
        const uint8_t *p = rr.data;
        for (uint32_t k = 0; k < acks[i].n; k++) {
            proto_record rec;
            long len = proto_record_decode(p, rr.len - (size_t)(p - rr.data), &rec);
            char body[32];
            body_of(acks[i].number + k, body, sizeof body);
            if (len <= 0 || rec.body_len != strlen(body) || memcmp(rec.body, body, rec.body_len))
                die(8, "append %zu message %u: wrong record", i, k);
            p += len;
        }
        engine_free(rr.data);
    }
    if (test_index_consistency(r, 10) != 0)
        die(8, "index inconsistent");
    engine_close(r);
    if (write(fd, &applied, sizeof applied) != sizeof applied)
        _exit(7);
    free(acks);
    free_log(s, n);
    _exit(0);
}

static void finisher_main(void)
{
    child_guard();
    uint64_t cp_seq;
    size_t n;
    saved *s = load_log(&cp_seq, &n);
    engine *r = open_store(replica_dir, true);
    unsigned rs = seed;
    apply_rest(r, cp_seq, s, n, &rs, -1);
    engine *m = open_store(master_dir, false);
    if (engine_applied_sequence(r) != engine_last_sequence(m))
        die(9, "applied %" PRIu64 ", the master is at %" PRIu64, engine_applied_sequence(r),
            engine_last_sequence(m));
    size_t diffs = test_store_diff(m, r, 20);
    engine_close(m);
    engine_close(r);
    free_log(s, n);
    _exit(diffs ? 9 : 0);
}

/* ---- The parent --------------------------------------------------------- */

static pid_t spawn(int *fd, void (*run)(int fd, void *arg), void *arg)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        run(p[1], arg);
        _exit(99);
    }
    close(p[1]);
    *fd = p[0];
    return pid;
}

static int reap(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        assert_int_equal(errno, EINTR);
    return status;
}

static void run_builder(int fd, void *arg)
{
    (void)fd;
    (void)arg;
    builder_main();
}

static void run_applier(int fd, void *arg) { applier_main(fd, *(unsigned *)arg); }

static void run_verifier(int fd, void *arg) { verifier_main(fd, *(uint64_t *)arg); }

static void run_finisher(int fd, void *arg)
{
    (void)fd;
    (void)arg;
    finisher_main();
}

static void expect_clean_exit(pid_t pid, const char *what)
{
    int status = reap(pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("%s failed (status %d)", what, status);
}

static void test_replica_survives_kill_9(void **state)
{
    (void)state;
    char *m = test_tmpdir("rcrash-master"), *r = test_tmpdir("rcrash-replica"),
         *w = test_tmpdir("rcrash-work");
    snprintf(master_dir, sizeof master_dir, "%s", m);
    snprintf(replica_dir, sizeof replica_dir, "%s", r);
    snprintf(work_dir, sizeof work_dir, "%s", w);

    int fd;
    pid_t pid = spawn(&fd, run_builder, NULL);
    close(fd);
    expect_clean_exit(pid, "the builder");

    uint64_t floor = 0;
    unsigned kills = 0;
    for (int cycle = 0; cycle < N_CYCLES; cycle++) {
        unsigned child_seed = seed + (unsigned)cycle;
        pid = spawn(&fd, run_applier, &child_seed);
        unsigned runs = 1 + (unsigned)rand_r(&seed) % KILL_MAX_RUNS;
        char done;
        while (runs > 0 && read(fd, &done, 1) == 1)
            runs--;
        if (runs == 0)
            kill(pid, SIGKILL);
        close(fd);
        int status = reap(pid);
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
            kills++;
        else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail_msg("applier failed in cycle %d (status %d)", cycle, status);

        pid = spawn(&fd, run_verifier, &floor);
        uint64_t applied = 0;
        ssize_t got = read(fd, &applied, sizeof applied);
        close(fd);
        expect_clean_exit(pid, "the verifier");
        assert_int_equal(got, sizeof applied);
        printf("cycle %d: applied sequence %" PRIu64 "\n", cycle, applied);
        floor = applied;
    }
    assert_true(kills > 0);

    pid = spawn(&fd, run_finisher, NULL);
    close(fd);
    expect_clean_exit(pid, "the finisher");

    test_rmdir_free(m);
    test_rmdir_free(r);
    test_rmdir_free(w);
}

int main(void)
{
    const char *s = getenv("LSMQ_CRASH_SEED");
    seed = s && *s ? (unsigned)strtoul(s, NULL, 10)
                   : (unsigned)proto_wall_ms() ^ ((unsigned)getpid() << 16);
    printf("seed %u\n", seed);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replica_survives_kill_9),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
