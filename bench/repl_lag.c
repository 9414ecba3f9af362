/*
 * repl_lag: how far a replica trails its master, in time, at a fixed send
 * rate: for every message, from the master's commit to the replica's.
 *
 * One process holds both sides, as the broker would run them but without
 * the network front end: a master store (engine + index extension +
 * repl_master on a loopback haListenPort) and a replica store made from
 * the master's checkpoint (repl_replica_prepare) that follows it over TCP
 * (repl_replica_start), each with its own writer, replication thread and
 * RocksDB, on the same disk. One thread appends --size byte messages to
 * the master on a fixed schedule (a late tick sends what is due at once,
 * so a stall shows as lag, not as a lower rate), cycling over --queues
 * queues of one topic.
 *
 * Why in one process: both ends of the interval are the writers' own
 * moments, read from one monotonic clock, with nothing in between that
 * the target does not name (no client, no pull, no clock skew):
 *   master commit   the master writer's on_write hook for the write that
 *                   holds the message (before its sender hears back);
 *   replica commit  the replica writer's on_advance hook for the applied
 *                   write that moved the message's queue past it (durable
 *                   as the replica's flush mode makes it, and visible to
 *                   pulls from then on);
 *   acknowledged    the master's acked_cb once the replica's ACK covers
 *                   the message's batch: what a SYNC_MASTER send waits for.
 *
 *   lsmq-repl-lag [--rate R] [--seconds S] [--warmup S] [--size B] [--queues Q]
 *                 [--flush async|sync] [--replica-flush async|sync|master] [--dir DIR]
 *
 * Output: one "result mode=lag key=value ..." line on stdout (latencies in
 * ms), progress and errors on stderr. lag_*: master commit to replica
 * commit; ack_*: master commit to acknowledged; late_sends: sends that
 * left more than 1 ms behind their schedule (the sender itself stalled).
 * cpu_cores is this process's CPU over the run, other_cpu_pct what the rest
 * of the machine took. Exit status 0, 1 on a store or replication error
 * or a message the replica never showed, 2 on bad usage.
 */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "bench_util.h"
#include "engine.h"
#include "engine_ext.h"
#include "index.h"
#include "log.h"
#include "repl.h"

#define TOPIC "lag"
#define CATCH_UP_S 30 /* the replica must show every message within this after the last send */

typedef struct lag_opts {
    double rate;
    double seconds;
    double warmup;           /* sent first, not counted */
    uint32_t size;
    uint32_t queues;
    engine_flush_mode flush;
    int replica_flush;       /* -1: as the master */
    const char *dir;
    const char *dump;        /* one line per message here, for a closer look */
} lag_opts;

/* One message's moments (monotonic ns; 0 = not yet). */
typedef struct lag_msg {
    uint64_t sent_ns;
    _Atomic uint64_t commit_ns;   /* master writer */
    _Atomic uint64_t applied_ns;  /* replica writer */
    _Atomic uint64_t last_seq;    /* the master batch holding it */
} lag_msg;

/* One acked_cb: every batch ending at or below seq is on the replica. */
typedef struct lag_ack {
    uint64_t seq;
    uint64_t at_ns;
} lag_ack;

static struct {
    lag_opts o;
    lag_msg *msgs;
    uint64_t n;              /* messages scheduled, warm-up included */
    uint32_t topic_id;
    /* Master writer thread only. */
    uint64_t write_seq, write_ns;
    _Atomic int errors;
    /* Replica writer thread only: the next offset of each queue not yet seen applied. */
    uint64_t *seen;
    _Atomic uint64_t applied_msgs;
    /* The master's replication thread appends; read after the run. */
    lag_ack *acks;
    _Atomic size_t n_acks;
    size_t cap_acks;
} g;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: lsmq-repl-lag [options]\n"
        "  --rate R          messages per second (10000)\n"
        "  --seconds S       measured sending time (30)\n"
        "  --warmup S        sent before, not counted (2)\n"
        "  --size B          body bytes (1024)\n"
        "  --queues Q        queues of the topic (8)\n"
        "  --flush async|sync  the master's flushDiskType (async)\n"
        "  --replica-flush async|sync|master  the replica's (master: the same)\n"
        "  --dir DIR         parent of the scratch stores (${TMPDIR:-/tmp})\n"
        "  --dump FILE       write every message's moments to FILE: index, then the\n"
        "                    monotonic ns of its send, master commit and replica\n"
        "                    commit, then its batch's last master sequence\n");
}

static void parse_opts(int argc, char **argv, lag_opts *o)
{
    static const struct option longs[] = {
        {"rate", required_argument, NULL, 'r'},     {"seconds", required_argument, NULL, 's'},
        {"warmup", required_argument, NULL, 'w'},   {"size", required_argument, NULL, 'b'},
        {"queues", required_argument, NULL, 'q'},   {"flush", required_argument, NULL, 'f'},
        {"replica-flush", required_argument, NULL, 'F'},
        {"dir", required_argument, NULL, 'd'},      {"dump", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (lag_opts){.rate = 10000, .seconds = 30, .warmup = 2, .size = 1024, .queues = 8,
                    .flush = ENGINE_ASYNC_FLUSH, .replica_flush = -1};
    const char *tmp = getenv("TMPDIR");
    o->dir = tmp && *tmp ? tmp : "/tmp";
    int c;
    while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        switch (c) {
        case 'r': o->rate = atof(optarg); break;
        case 's': o->seconds = atof(optarg); break;
        case 'w': o->warmup = atof(optarg); break;
        case 'b': o->size = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'q': o->queues = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'f':
        case 'F':
            if (strcmp(optarg, "sync") == 0 || strcmp(optarg, "async") == 0) {
                int mode = strcmp(optarg, "sync") == 0 ? ENGINE_SYNC_FLUSH : ENGINE_ASYNC_FLUSH;
                if (c == 'f')
                    o->flush = (engine_flush_mode)mode;
                else
                    o->replica_flush = mode;
            } else if (c == 'F' && strcmp(optarg, "master") == 0) {
                o->replica_flush = -1;
            } else {
                usage(stderr);
                exit(2);
            }
            break;
        case 'd': o->dir = optarg; break;
        case 'D': o->dump = optarg; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (o->rate <= 0 || o->seconds <= 0 || o->warmup < 0 || o->queues == 0 ||
        o->queues > 1024 || o->size == 0 || optind != argc) {
        usage(stderr);
        exit(2);
    }
}

/* ==== Hooks ============================================================== */

/* Master writer: the log holds this write now. */
static void master_on_write(const engine_ext_env *x, uint64_t last_seq)
{
    (void)x;
    g.write_seq = last_seq;
    g.write_ns = bench_now_ns();
}

/* Master writer, right after the write's hooks: the message's commit. */
static void append_cb(void *ctx, const engine_append_result *r)
{
    uint64_t i = (uint64_t)(uintptr_t)ctx;
    if (r->status != 0) {
        fprintf(stderr, "lsmq-repl-lag: append %" PRIu64 " failed: %s\n", i,
                lsmq_strerror(r->status));
        atomic_fetch_add(&g.errors, 1);
        return;
    }
    if (r->queue_offset != i / g.o.queues) {
        fprintf(stderr, "lsmq-repl-lag: message %" PRIu64 " got offset %" PRIu64 "\n", i,
                r->queue_offset);
        atomic_fetch_add(&g.errors, 1);
        return;
    }
    atomic_store(&g.msgs[i].last_seq, r->last_seq);
    atomic_store(&g.msgs[i].commit_ns,
                 r->last_seq == g.write_seq ? g.write_ns : bench_now_ns());
}

/* Replica writer: an applied write moved a queue's max offset. */
static void replica_on_advance(const engine_ext_env *x, uint32_t topic_id, uint32_t queue_id,
                               uint64_t max_offset)
{
    (void)x;
    if (topic_id != g.topic_id || queue_id >= g.o.queues)
        return;
    uint64_t now = bench_now_ns(), n = 0;
    for (uint64_t off = g.seen[queue_id]; off < max_offset; off++) {
        uint64_t i = off * g.o.queues + queue_id;
        if (i < g.n) {
            atomic_store(&g.msgs[i].applied_ns, now);
            n++;
        }
    }
    if (max_offset > g.seen[queue_id])
        g.seen[queue_id] = max_offset;
    atomic_fetch_add(&g.applied_msgs, n);
}

/* Master's replication thread: the replica's ACKs moved the acknowledged sequence. */
static void acked_cb(void *ctx, uint64_t seq)
{
    (void)ctx;
    size_t n = atomic_load(&g.n_acks);
    if (n == g.cap_acks)
        return; /* full: the figures say how many were kept */
    g.acks[n] = (lag_ack){.seq = seq, .at_ns = bench_now_ns()};
    atomic_store(&g.n_acks, n + 1);
}

/* ==== Set-up ============================================================= */

static int remove_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static engine *open_store(const char *path, engine_flush_mode flush, bool replica,
                          const engine_extension *own, const engine_extension *repl)
{
    engine_config ec;
    engine_config_init(&ec);
    ec.store_path = path;
    ec.flush_mode = flush;
    ec.replica = replica;
    char err[512] = "";
    engine *e = NULL;
    if (index_declare(&ec, NULL) != 0 || engine_config_add_extension(&ec, own) != 0 ||
        (repl && engine_config_add_extension(&ec, repl) != 0))
        bench_die("cannot declare the extensions");
    int rc = engine_open(&ec, &e, err, sizeof err);
    if (rc != 0)
        bench_die("opening %s: %s", path, err);
    return e;
}

static void sleep_until_ns(uint64_t t)
{
    struct timespec ts = {(time_t)(t / 1000000000u), (long)(t % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* ==== Figures ============================================================ */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0..1) of n sorted values, in ms. */
static double pct_ms(const uint64_t *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    size_t k = (size_t)(q * (double)(n - 1) + 0.5);
    return (double)v[k] / 1e6;
}

static void print_dist(const char *name, uint64_t *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_u64);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)v[i];
    printf(" %s_n=%zu %s_mean_ms=%.3f %s_p50_ms=%.3f %s_p90_ms=%.3f %s_p99_ms=%.3f"
           " %s_p999_ms=%.3f %s_max_ms=%.3f",
           name, n, name, n ? sum / (double)n / 1e6 : 0, name, pct_ms(v, n, 0.5), name,
           pct_ms(v, n, 0.9), name, pct_ms(v, n, 0.99), name, pct_ms(v, n, 0.999), name,
           n ? (double)v[n - 1] / 1e6 : 0);
}

static void dump_msgs(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f)
        bench_die("%s: %s", path, strerror(errno));
    for (uint64_t i = 0; i < g.n; i++)
        fprintf(f, "%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", i,
                g.msgs[i].sent_ns, atomic_load(&g.msgs[i].commit_ns),
                atomic_load(&g.msgs[i].applied_ns), atomic_load(&g.msgs[i].last_seq));
    fclose(f);
}

/* ==== Main =============================================================== */

int main(int argc, char **argv)
{
    bench_init("lsmq-repl-lag", 1);
    parse_opts(argc, argv, &g.o);
    const lag_opts *o = &g.o;
    uint64_t warm = (uint64_t)(o->warmup * o->rate);
    g.n = warm + (uint64_t)(o->seconds * o->rate);
    g.msgs = proto_xcalloc(g.n, sizeof *g.msgs);
    g.seen = proto_xcalloc(o->queues, sizeof *g.seen);
    g.cap_acks = g.n + 1024;
    g.acks = proto_xcalloc(g.cap_acks, sizeof *g.acks);

    char *root = proto_xasprintf("%s/lsmq-repl-lag.XXXXXX", o->dir);
    if (!mkdtemp(root))
        bench_die("mkdtemp %s: %s", root, strerror(errno));
    char *mpath = proto_xasprintf("%s/master", root);
    char *rpath = proto_xasprintf("%s/replica", root);
    char *work = proto_xasprintf("%s/master/ha", root);

    /* The master, its topic, and its replication server. */
    repl_master_config mc;
    repl_master_config_init(&mc);
    mc.host = "127.0.0.1";
    mc.work_dir = work;
    mc.acked_cb = acked_cb;
    repl_master *rm = NULL;
    if (repl_master_create(&mc, &rm) != 0)
        bench_die("repl_master_create failed");
    engine_extension master_ext = {.name = "repl-lag", .hook.on_write = master_on_write};
    engine *me = open_store(mpath, o->flush, false, &master_ext, repl_master_extension(rm));
    engine_topic_config tc = {.read_queue_nums = o->queues, .write_queue_nums = o->queues,
                              .perm = ENGINE_PERM_READ | ENGINE_PERM_WRITE};
    snprintf(tc.name, sizeof tc.name, "%s", TOPIC);
    engine_topic_config made;
    if (engine_topic_put(me, &tc, &made) != 0)
        bench_die("cannot create the topic");
    g.topic_id = made.topic_id;
    char err[512] = "";
    if (repl_master_start(rm, me, err, sizeof err) != 0)
        bench_die("%s", err);

    /* The replica: a checkpoint of the master, then following it. */
    char master_addr[64];
    snprintf(master_addr, sizeof master_addr, "127.0.0.1:%d", repl_master_port(rm));
    repl_replica_config rc;
    repl_replica_config_init(&rc);
    rc.store_path = rpath;
    rc.master_addr = master_addr;
    rc.self_addr = "repl-lag";
    uint64_t cp_seq = 0;
    if (repl_replica_prepare(&rc, false, &cp_seq, err, sizeof err) != 0)
        bench_die("%s", err);
    engine_extension replica_ext = {.name = "repl-lag", .hook.on_advance = replica_on_advance};
    engine_flush_mode rflush = o->replica_flush < 0 ? o->flush
                                                    : (engine_flush_mode)o->replica_flush;
    engine *re = open_store(rpath, rflush, true, &replica_ext, NULL);
    repl_replica *rr = NULL;
    if (repl_replica_start(&rc, re, &rr) != 0)
        bench_die("repl_replica_start failed");
    uint64_t t_wait = bench_now_ns();
    while (repl_master_replicas(rm) == 0) {
        if (bench_now_ns() - t_wait > 10 * 1000000000ull)
            bench_die("the replica did not start following within 10 s");
        usleep(10000);
    }
    fprintf(stderr, "lsmq-repl-lag: replica following from seq %" PRIu64 "; sending %.0f msg/s"
            " for %.1f s (+%.1f s warm-up), %" PRIu32 " B, %" PRIu32 " queues, flush %s/%s\n",
            cp_seq, o->rate, o->seconds, o->warmup, o->size, o->queues,
            o->flush == ENGINE_SYNC_FLUSH ? "sync" : "async",
            rflush == ENGINE_SYNC_FLUSH ? "sync" : "async");

    /* Send on schedule. */
    uint8_t *body = proto_xmalloc(o->size);
    for (uint32_t i = 0; i < o->size; i++)
        body[i] = (uint8_t)('a' + i % 26);
    char props[160];
    uint64_t late = 0;
    uint64_t period_ns = (uint64_t)(1e9 / o->rate);
    uint64_t t0 = bench_now_ns() + 1000000;
    bench_cpu_mark c0 = bench_cpu_mark_now();
    for (uint64_t i = 0; i < g.n && atomic_load(&g.errors) == 0; i++) {
        uint64_t due = t0 + i * period_ns;
        if (bench_now_ns() < due)
            sleep_until_ns(due);
        uint64_t now = bench_now_ns();
        if (i >= warm && now > due + 1000000)
            late++;
        int n = snprintf(props, sizeof props, "UNIQ_KEY\001%08X%024" PRIX64 "\002WAIT\001true\002",
                         (unsigned)getpid(), i);
        engine_msg m = {.body = body, .body_len = o->size, .props = props,
                        .props_len = (uint32_t)n};
        g.msgs[i].sent_ns = now;
        int rc_append = engine_append(me, TOPIC, strlen(TOPIC), (uint32_t)(i % o->queues), &m, 1,
                                      append_cb, (void *)(uintptr_t)i);
        if (rc_append != 0)
            bench_die("append %" PRIu64 ": %s", i, lsmq_strerror(rc_append));
    }
    uint64_t t_sent = bench_now_ns();
    while (atomic_load(&g.applied_msgs) < g.n && atomic_load(&g.errors) == 0 &&
           bench_now_ns() - t_sent < CATCH_UP_S * 1000000000ull)
        usleep(1000);
    bench_cpu_mark c1 = bench_cpu_mark_now();
    usleep(200000); /* the last ACKs */

    if (o->dump)
        dump_msgs(o->dump);

    /* The figures, over the messages after the warm-up. */
    size_t kept = (size_t)(g.n - warm), n_lag = 0, n_ack = 0, missing = 0;
    uint64_t *lag = proto_xcalloc(kept, sizeof *lag);
    uint64_t *ack = proto_xcalloc(kept, sizeof *ack);
    size_t n_acks = atomic_load(&g.n_acks), a = 0;
    for (uint64_t i = warm; i < g.n; i++) {
        uint64_t c = atomic_load(&g.msgs[i].commit_ns), r = atomic_load(&g.msgs[i].applied_ns);
        uint64_t seq = atomic_load(&g.msgs[i].last_seq);
        if (!c || !r) {
            missing++;
            continue;
        }
        lag[n_lag++] = r > c ? r - c : 0;
        while (a < n_acks && g.acks[a].seq < seq)
            a++; /* acks and messages both go up in sequence */
        if (a < n_acks)
            ack[n_ack++] = g.acks[a].at_ns > c ? g.acks[a].at_ns - c : 0;
    }
    double secs = (double)(t_sent - t0) / 1e9;
    printf("result mode=lag rate=%.0f seconds=%.1f size=%" PRIu32 " queues=%" PRIu32
           " flush=%s replica_flush=%s msgs=%zu sent_per_s=%.0f missing=%zu late_sends=%" PRIu64,
           o->rate, o->seconds, o->size, o->queues,
           o->flush == ENGINE_SYNC_FLUSH ? "sync" : "async",
           rflush == ENGINE_SYNC_FLUSH ? "sync" : "async", kept,
           secs > 0 ? (double)g.n / secs : 0, missing, late);
    print_dist("lag", lag, n_lag);
    print_dist("ack", ack, n_ack);
    printf(" cpu_cores=%.2f other_cpu_pct=%.0f errors=%d\n", bench_cpu_self_cores(&c0, &c1),
           bench_cpu_other_pct(&c0, &c1), atomic_load(&g.errors));
    fflush(stdout);

    repl_replica_stop(rr);
    engine_close(re);
    repl_master_stop(rm);
    engine_close(me);
    repl_master_destroy(rm);
    nftw(root, remove_cb, 16, FTW_DEPTH | FTW_PHYS);
    int status = (missing || atomic_load(&g.errors)) ? 1 : 0;
    free(lag);
    free(ack);
    free(body);
    free(g.msgs);
    free(g.seen);
    free(g.acks);
    free(root);
    free(mpath);
    free(rpath);
    free(work);
    return status;
}
