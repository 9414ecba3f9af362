/*
 * engine_bench: storage benchmark of the lsmq message store.
 *
 * Drives engine/ and index/ directly (no network) the way the broker does:
 * the store is opened, the index hooks attached, and producer threads call
 * engine_append with a callback, keeping up to --window appends in flight
 * each. --window 1 is a synchronous producer: it waits for every ack.
 * With several producers the callback, which runs on the store's writer
 * thread, only queues the ack for a dispatcher thread that wakes the
 * producers, as the broker's network loop would (--dispatch).
 *
 * Modes:
 *   append  create the topics (untimed), then append --count messages (or
 *           --bytes of bodies), cycling over the queues (or to random queues
 *           with --order random), and time it until the last ack.
 *   read    catch-up consumer: read every queue from offset 0 with
 *           engine_read, at most 32 records per call like a pull, until the
 *           end of the queue; records are decoded and their offsets checked.
 *   reopen  time engine_open on an existing store and report the process's
 *           peak RSS; the store must hold the --queues queues.
 *
 * Queues: N <= 64 is one topic "bench" with N queues; above that, topics
 * "bench-00000", ... of 8 queues each (the last one may hold fewer).
 *
 * Output: one line on stdout that starts with "result " followed by
 * key=value pairs (bench/run.sh parses it); progress and errors go to
 * stderr. MB is 2^20 bytes, as in db_bench. Exit status 0 on success,
 * 1 on a store error, 2 on bad usage. The main keys:
 *   ops, secs, ops_per_s   messages appended (acknowledged) or read, and rate
 *   mb_per_s               body bytes per second; rec_mb_per_s: stored records
 *   steady_ops_per_s       rate over the second half of the run;
 *   tail_ops_per_s         over the last quarter
 *   p50_us, p99_us ...     append latency, engine_append to the ack
 *   batches, msgs_per_batch  groups the writer committed (on_commit hook)
 *   keys_per_msg           RocksDB keys written per message, all families
 *   disk_write_mb          bytes the process wrote to storage (/proc/self/io)
 *   memtable_peak_mb       largest memtable total seen (sampled every 0.5 s)
 *   rss_mb                 peak resident memory of the process (ru_maxrss)
 *   open_secs              engine_open, the index extension declared
 *   cpu_cores              this process's CPU over the timed part, in cores
 *   other_cpu_pct          share of the machine (all CPUs) other processes
 *                          used meanwhile: figures taken on a busy machine
 *                          say so
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "bench_util.h"
#include "engine.h"
#include "errors.h"
#include "index.h"
#include "record.h"

/* ==== Options ============================================================ */

enum bench_mode { MODE_APPEND, MODE_READ, MODE_REOPEN };

typedef struct bench_opts {
    const char *path;
    enum bench_mode mode;
    uint32_t queues;
    uint32_t body_len;
    uint32_t threads;
    uint32_t window;
    uint64_t count;
    uint64_t bytes;          /* when set, count = bytes / body_len */
    double seconds;          /* stop appending after this long; 0 = no limit */
    engine_flush_mode flush;
    int blob;                /* -1 = engine default */
    int universal;           /* -1 = engine default */
    int props;               /* add UNIQ_KEY and WAIT like the Java producer */
    int keys;                /* add KEYS with one key per message */
    int key_index;           /* attach idx_key (messageIndexEnable) */
    uint32_t read_batch;     /* records per engine_read */
    size_t read_bytes;       /* bytes per engine_read */
    double progress_s;       /* print a progress line this often; 0 = never */
    const char *stats_file;  /* dump RocksDB's statistics text here */
    int dispatch;            /* hand acks to a dispatcher thread, as the broker's loop;
                                -1 = only with several threads */
    int random_order;        /* message i goes to a random queue, not queue i mod N */
} bench_opts;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: lsmq-engine-bench --path DIR [options]\n"
        "  --mode append|read|reopen   what to measure (append)\n"
        "  --queues N        queues; N > 64 spreads them as topics x 8 queues (64)\n"
        "  --body BYTES      message body size (1024)\n"
        "  --threads T       appending (or reading) threads (1)\n"
        "  --window W        appends in flight per thread; 1 = wait for each ack (1)\n"
        "  --count N         messages to append (100000)\n"
        "  --bytes N[KMG]    body bytes to append instead of --count\n"
        "  --seconds S       stop appending after S seconds (no limit)\n"
        "  --flush async|sync  flushDiskType of the store (async)\n"
        "  --blob 0|1        integrated blob files for the msg family (engine default)\n"
        "  --universal 0|1   universal compaction for the msg family (engine default)\n"
        "  --props 0|1       UNIQ_KEY and WAIT properties on every message (1)\n"
        "  --keys 0|1        a KEYS property with one key per message (0)\n"
        "  --key-index 0|1   keep the key index (idx_key), as messageIndexEnable (1)\n"
        "  --read-batch N    records per read call (32)\n"
        "  --read-bytes N    bytes per read call (256K)\n"
        "  --order cycle|random  message i goes to queue i mod N, or to a random\n"
        "                    queue (cycle)\n"
        "  --progress S      print appended/s every S seconds to stderr\n"
        "  --stats-file F    write RocksDB's statistics text to F at the end\n"
        "  --dispatch 0|1    1: completions go to one dispatcher thread that wakes the\n"
        "                    producers, as the broker's loop thread does; 0: the\n"
        "                    callback wakes the producer on the writer thread\n"
        "                    (default: 1 with several threads, 0 with one)\n");
}

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("lsmq-engine-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    usage(stderr);
    exit(2);
}

/* Parse an unsigned number with an optional K, M, G or T suffix (powers of 2). */
static uint64_t parse_size(const char *name, const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || s[0] == '-')
        die_usage("%s: not a number: %s", name, s);
    unsigned shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    default: break;
    }
    if (*end == 'i' && shift) end++;
    if (*end == 'B' || *end == 'b') end++;
    if (*end != '\0')
        die_usage("%s: bad suffix: %s", name, s);
    if (shift && v > (UINT64_MAX >> shift))
        die_usage("%s: too large: %s", name, s);
    return (uint64_t)v << shift;
}

static uint32_t parse_u32(const char *name, const char *s, uint32_t min, uint32_t max)
{
    uint64_t v = parse_size(name, s);
    if (v < min || v > max)
        die_usage("%s must be in %" PRIu32 "..%" PRIu32, name, min, max);
    return (uint32_t)v;
}

static int parse_flag(const char *name, const char *s)
{
    if (strcmp(s, "0") == 0) return 0;
    if (strcmp(s, "1") == 0) return 1;
    if (strcmp(s, "-1") == 0 || strcmp(s, "default") == 0) return -1;
    die_usage("%s must be 0 or 1", name);
    return -1;
}

static double parse_secs(const char *name, const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || v < 0)
        die_usage("%s: not a number of seconds: %s", name, s);
    return v;
}

static void parse_opts(int argc, char **argv, bench_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->mode = MODE_APPEND;
    o->queues = 64;
    o->body_len = 1024;
    o->threads = 1;
    o->window = 1;
    o->count = 100000;
    o->flush = ENGINE_ASYNC_FLUSH;
    o->blob = -1;
    o->universal = -1;
    o->props = 1;
    o->key_index = 1;
    o->read_batch = 32;
    o->read_bytes = 256 * 1024;
    o->dispatch = -1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strncmp(a, "--", 2) != 0 || i + 1 >= argc)
            die_usage("expected --option value, got %s", a);
        const char *v = argv[++i];
        if (strcmp(a, "--path") == 0) {
            o->path = v;
        } else if (strcmp(a, "--mode") == 0) {
            if (strcmp(v, "append") == 0) o->mode = MODE_APPEND;
            else if (strcmp(v, "read") == 0) o->mode = MODE_READ;
            else if (strcmp(v, "reopen") == 0) o->mode = MODE_REOPEN;
            else die_usage("--mode must be append, read or reopen");
        } else if (strcmp(a, "--queues") == 0) {
            o->queues = parse_u32(a, v, 1, 8u * 1000 * 1000);
        } else if (strcmp(a, "--body") == 0) {
            o->body_len = parse_u32(a, v, 1, 4u << 20);
        } else if (strcmp(a, "--threads") == 0) {
            o->threads = parse_u32(a, v, 1, 1024);
        } else if (strcmp(a, "--window") == 0) {
            o->window = parse_u32(a, v, 1, 65536);
        } else if (strcmp(a, "--count") == 0) {
            o->count = parse_size(a, v);
        } else if (strcmp(a, "--bytes") == 0) {
            o->bytes = parse_size(a, v);
        } else if (strcmp(a, "--seconds") == 0) {
            o->seconds = parse_secs(a, v);
        } else if (strcmp(a, "--flush") == 0) {
            if (strcmp(v, "async") == 0 || strcmp(v, "ASYNC_FLUSH") == 0)
                o->flush = ENGINE_ASYNC_FLUSH;
            else if (strcmp(v, "sync") == 0 || strcmp(v, "SYNC_FLUSH") == 0)
                o->flush = ENGINE_SYNC_FLUSH;
            else
                die_usage("--flush must be async or sync");
        } else if (strcmp(a, "--blob") == 0) {
            o->blob = parse_flag(a, v);
        } else if (strcmp(a, "--universal") == 0) {
            o->universal = parse_flag(a, v);
        } else if (strcmp(a, "--props") == 0) {
            o->props = parse_flag(a, v) == 1;
        } else if (strcmp(a, "--keys") == 0) {
            o->keys = parse_flag(a, v) == 1;
        } else if (strcmp(a, "--key-index") == 0) {
            o->key_index = parse_flag(a, v) == 1;
        } else if (strcmp(a, "--read-batch") == 0) {
            o->read_batch = parse_u32(a, v, 1, 1u << 20);
        } else if (strcmp(a, "--read-bytes") == 0) {
            o->read_bytes = parse_u32(a, v, 1, 1u << 30);
        } else if (strcmp(a, "--progress") == 0) {
            o->progress_s = parse_secs(a, v);
        } else if (strcmp(a, "--stats-file") == 0) {
            o->stats_file = v;
        } else if (strcmp(a, "--order") == 0) {
            if (strcmp(v, "cycle") == 0) o->random_order = 0;
            else if (strcmp(v, "random") == 0) o->random_order = 1;
            else die_usage("--order must be cycle or random");
        } else if (strcmp(a, "--dispatch") == 0) {
            o->dispatch = parse_flag(a, v);
        } else {
            die_usage("unknown option %s", a);
        }
    }
    if (!o->path)
        die_usage("--path is required");
    /* One producer thread is itself the loop: a dispatcher would add a hop. */
    if (o->dispatch < 0)
        o->dispatch = o->threads > 1;
    if (o->bytes)
        o->count = o->bytes / o->body_len;
    if (o->mode == MODE_APPEND && o->count == 0)
        die_usage("nothing to append (--count 0)");
    if ((uint64_t)o->threads * o->window > 60000)
        die_usage("threads x window must stay under the writer queue (60000)");
}

/* ==== Small utilities ==================================================== */

static double secs_since(uint64_t t0)
{
    return (double)(bench_now_ns() - t0) / 1e9;
}


static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* ru_maxrss is in KiB on Linux */
}

/* Bytes this process caused to be written to storage (/proc/self/io). */
static uint64_t proc_write_bytes(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    if (!f)
        return 0;
    char line[128];
    unsigned long long v = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "write_bytes: %llu", &v) == 1)
            break;
    fclose(f);
    return v;
}

static uint64_t du_total;

static int du_cb(const char *p, const struct stat *st, int type, struct FTW *ftw)
{
    (void)p; (void)ftw;
    if (type == FTW_F)
        du_total += (uint64_t)st->st_blocks * 512u;
    return 0;
}

/* Disk space used under path, like du. */
static uint64_t dir_bytes(const char *path)
{
    du_total = 0;
    nftw(path, du_cb, 32, FTW_PHYS);
    return du_total;
}

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* A well-mixed 64-bit hash (the splitmix64 finalizer). */
static uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static const char *mode_name(enum bench_mode m)
{
    return m == MODE_APPEND ? "append" : m == MODE_READ ? "read" : "reopen";
}

/* ==== Latency histogram ================================================== */

/*
 * Log-linear buckets over nanoseconds: 8 sub-buckets per power of two, so a
 * percentile is reported within 12.5 %.
 */
#define HIST_SUB 8
#define HIST_BUCKETS (64 * HIST_SUB)

typedef struct hist {
    uint64_t n[HIST_BUCKETS];
    uint64_t total;
    uint64_t max;
} hist;

static unsigned hist_index(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned lg = 63u - (unsigned)__builtin_clzll(v);        /* >= 3 */
    unsigned sub = (unsigned)(v >> (lg - 3)) & (HIST_SUB - 1);
    return (lg - 2) * HIST_SUB + sub;
}

static uint64_t hist_value(unsigned idx)
{
    if (idx < HIST_SUB)
        return idx;
    unsigned lg = idx / HIST_SUB + 2, sub = idx % HIST_SUB;
    return ((uint64_t)(HIST_SUB + sub)) << (lg - 3);
}

static void hist_add(hist *h, uint64_t v)
{
    h->n[hist_index(v)]++;
    h->total++;
    if (v > h->max)
        h->max = v;
}

static void hist_merge(hist *into, const hist *h)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        into->n[i] += h->n[i];
    into->total += h->total;
    if (h->max > into->max)
        into->max = h->max;
}

static uint64_t hist_pct(const hist *h, double pct)
{
    if (h->total == 0)
        return 0;
    uint64_t want = (uint64_t)((double)h->total * pct / 100.0);
    if (want >= h->total)
        want = h->total - 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->n[i];
        if (seen > want)
            return hist_value(i);
    }
    return h->max;
}

/* ==== Topics and queues ================================================== */

typedef struct bench_topic {
    char name[32];
    size_t len;
    uint32_t queues;
} bench_topic;

typedef struct layout {
    bench_topic *topics;
    uint32_t n_topics;
    uint32_t queues;
    uint32_t per_topic;  /* queues per topic except maybe the last */
} layout;

static void layout_init(layout *l, uint32_t queues)
{
    l->queues = queues;
    if (queues <= 64) {
        l->per_topic = queues;
        l->n_topics = 1;
    } else {
        l->per_topic = 8;
        l->n_topics = (queues + 7) / 8;
    }
    l->topics = proto_xcalloc(l->n_topics, sizeof(*l->topics));
    for (uint32_t t = 0; t < l->n_topics; t++) {
        bench_topic *bt = &l->topics[t];
        if (l->n_topics == 1)
            bt->len = (size_t)snprintf(bt->name, sizeof(bt->name), "bench");
        else
            bt->len = (size_t)snprintf(bt->name, sizeof(bt->name), "bench-%05" PRIu32, t);
        uint32_t left = queues - t * l->per_topic;
        bt->queues = left < l->per_topic ? left : l->per_topic;
    }
}

/* Queue number q (0..queues-1) as topic + queue id. */
static void layout_queue(const layout *l, uint64_t q, const bench_topic **t, uint32_t *qid)
{
    *t = &l->topics[q / l->per_topic];
    *qid = (uint32_t)(q % l->per_topic);
}

typedef struct topic_setup {
    engine *e;
    layout *l;
    atomic_uint next;
    atomic_int failed;
} topic_setup;

static void *topic_setup_thread(void *arg)
{
    topic_setup *ts = arg;
    for (;;) {
        unsigned t = atomic_fetch_add(&ts->next, 1);
        if (t >= ts->l->n_topics || atomic_load(&ts->failed))
            break;
        const bench_topic *bt = &ts->l->topics[t];
        engine_topic_config c;
        memset(&c, 0, sizeof(c));
        memcpy(c.name, bt->name, bt->len + 1);
        c.read_queue_nums = bt->queues;
        c.write_queue_nums = bt->queues;
        c.perm = ENGINE_PERM_READ | ENGINE_PERM_WRITE;
        int rc = engine_topic_put(ts->e, &c, NULL);
        if (rc != 0) {
            fprintf(stderr, "lsmq-engine-bench: engine_topic_put %s: %s\n", bt->name,
                    lsmq_strerror(rc));
            atomic_store(&ts->failed, 1);
            break;
        }
    }
    return NULL;
}

/* Create (or update) every topic of the layout, from a few threads at once. */
static void topics_create(engine *e, layout *l)
{
    topic_setup ts = { .e = e, .l = l };
    atomic_init(&ts.next, 0);
    atomic_init(&ts.failed, 0);
    unsigned n = l->n_topics < 16 ? l->n_topics : 16;
    pthread_t tid[16];
    for (unsigned i = 0; i < n; i++)
        if (pthread_create(&tid[i], NULL, topic_setup_thread, &ts) != 0)
            bench_die("pthread_create failed");
    for (unsigned i = 0; i < n; i++)
        pthread_join(tid[i], NULL);
    if (atomic_load(&ts.failed))
        bench_die("could not create the topics");
}

/* Check that the store holds every topic and queue of the layout. */
static void topics_check(engine *e, const layout *l)
{
    engine_topic_config *all = NULL;
    size_t n = 0;
    int rc = engine_topic_list(e, &all, &n);
    if (rc != 0)
        bench_die("engine_topic_list: %s", lsmq_strerror(rc));
    uint64_t found_topics = 0, found_queues = 0;
    for (uint32_t t = 0; t < l->n_topics; t++) {
        const bench_topic *bt = &l->topics[t];
        for (size_t i = 0; i < n; i++) {
            if (strcmp(all[i].name, bt->name) != 0)
                continue;
            if (all[i].write_queue_nums < bt->queues)
                bench_die("topic %s has %" PRIu32 " queues, expected %" PRIu32, bt->name,
                    all[i].write_queue_nums, bt->queues);
            found_topics++;
            found_queues += bt->queues;
            break;
        }
    }
    engine_free(all);
    if (found_topics != l->n_topics)
        bench_die("the store holds %" PRIu64 " of the %" PRIu32 " topics (%" PRIu64
            " of %" PRIu32 " queues); run --mode append first",
            found_topics, l->n_topics, found_queues, l->queues);
}

/* ==== Store open and statistics ========================================== */

/* extra: a hooks-only extension to declare as well, or NULL. */
static engine *store_open(const bench_opts *o, const engine_extension *extra, double *open_secs)
{
    engine_config c;
    engine_config_init(&c);
    c.store_path = o->path;
    c.flush_mode = o->flush;
    c.blob_files = o->blob;
    c.universal_compaction = o->universal;
    c.store_host.ip[0] = 127;
    c.store_host.ip[3] = 1;
    c.store_host.port = 10911;

    index_options io = {.key_index = o->key_index};
    if (index_declare(&c, &io) != 0)
        bench_die("index_declare: no room in the engine config");
    if (extra && engine_config_add_extension(&c, extra) != 0)
        bench_die("engine_config_add_extension: no room in the engine config");

    char err[256] = "";
    engine *e = NULL;
    uint64_t t0 = bench_now_ns();
    int rc = engine_open(&c, &e, err, sizeof(err));
    if (open_secs)
        *open_secs = secs_since(t0);
    if (rc != 0)
        bench_die("engine_open %s: %s: %s", o->path, lsmq_strerror(rc), err);
    return e;
}

/* Figures pulled out of RocksDB's statistics text. */
typedef struct db_figures {
    double writes;            /* rocksdb write calls (WriteBatches) */
    double keys;              /* keys written */
    double wal_syncs;
    double stall_pct;
    double msg_comp_write_gb; /* flush + compaction output of the msg family, blobs included */
    double msg_wamp;          /* the Sum row's W-Amp of the msg family (SST bytes only) */
    double pending_bytes;     /* estimated pending compaction bytes, all families */
} db_figures;

/* "300K" -> 300000 (RocksDB's NumberToHumanString). */
static double human_number(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    switch (*end) {
    case 'K': v *= 1e3; break;
    case 'M': v *= 1e6; break;
    case 'G': v *= 1e9; break;
    case 'T': v *= 1e12; break;
    default: break;
    }
    return v;
}

static void parse_dbstats(const char *text, db_figures *f)
{
    const char *p = strstr(text, "Cumulative writes: ");
    if (p) {
        char w[32], k[32];
        if (sscanf(p, "Cumulative writes: %31s writes, %31s keys", w, k) == 2) {
            f->writes = human_number(w);
            f->keys = human_number(k);
        }
    }
    p = strstr(text, "Cumulative WAL: ");
    if (p) {
        char w[32], s[32];
        if (sscanf(p, "Cumulative WAL: %31s writes, %31s syncs", w, s) == 2)
            f->wal_syncs = human_number(s);
    }
    p = strstr(text, "Cumulative stall: ");
    if (p) {
        const char *e = strchr(p, '\n');
        const char *c = strstr(p, ", ");
        if (c && (!e || c < e))
            f->stall_pct = strtod(c + 2, NULL);
    }
}

/*
 * The "Sum" row of a family's compaction stats: Sum files size unit score
 * read rn rnp1 write wnew moved wamp ... rblob wblob. Write(GB) leaves out
 * what went to blob files, so the last column, Wblob(GB), is added to it.
 */
static void parse_cfstats(const char *text, db_figures *f)
{
    const char *p = strstr(text, "\n Sum ");
    if (!p)
        return;
    p++;
    char files[32], unit[16];
    double size, score, rd, rn, rnp1, wr, wnew, moved, wamp;
    if (sscanf(p, " Sum %31s %lf %15s %lf %lf %lf %lf %lf %lf %lf %lf", files, &size, unit,
               &score, &rd, &rn, &rnp1, &wr, &wnew, &moved, &wamp) != 11)
        return;
    f->msg_comp_write_gb = wr;
    f->msg_wamp = wamp;
    const char *eol = strchr(p, '\n');
    if (!eol)
        eol = p + strlen(p);
    const char *last = eol;
    while (last > p && last[-1] == ' ')
        last--;
    while (last > p && last[-1] != ' ')
        last--;
    f->msg_comp_write_gb += strtod(last, NULL);
}

/* Read RocksDB's statistics; write the full text to o->stats_file if set. */
static void db_stats(engine *e, const bench_opts *o, db_figures *f)
{
    memset(f, 0, sizeof(*f));
    char *dbstats = NULL, *cfstats = NULL, *pending = NULL;
    engine_property(e, NULL, "rocksdb.dbstats", &dbstats);
    engine_property(e, "msg", "rocksdb.cfstats-no-file-histogram", &cfstats);
    engine_property(e, NULL, "rocksdb.estimate-pending-compaction-bytes", &pending);
    if (dbstats)
        parse_dbstats(dbstats, f);
    if (cfstats)
        parse_cfstats(cfstats, f);
    if (pending)
        f->pending_bytes = strtod(pending, NULL);
    if (o->stats_file) {
        FILE *out = fopen(o->stats_file, "w");
        if (!out) {
            fprintf(stderr, "lsmq-engine-bench: %s: %s\n", o->stats_file, strerror(errno));
        } else {
            char *all = NULL;
            engine_property(e, NULL, "rocksdb.stats", &all);
            fprintf(out, "%s\n", all ? all : "(rocksdb.stats unavailable)\n");
            if (cfstats)
                fprintf(out, "==== msg family ====\n%s\n", cfstats);
            static const char *props[] = {
                "rocksdb.total-sst-files-size", "rocksdb.live-sst-files-size",
                "rocksdb.total-blob-file-size", "rocksdb.live-blob-file-size",
                "rocksdb.estimate-pending-compaction-bytes", "rocksdb.num-running-compactions",
                "rocksdb.cur-size-all-mem-tables", "rocksdb.block-cache-usage",
                "rocksdb.estimate-table-readers-mem",
            };
            for (size_t i = 0; i < sizeof(props) / sizeof(props[0]); i++) {
                char *v = NULL;
                engine_property(e, "msg", props[i], &v);
                fprintf(out, "msg %s: %s\n", props[i], v ? v : "n/a");
                engine_free(v);
            }
            engine_free(all);
            fclose(out);
        }
    }
    engine_free(dbstats);
    engine_free(cfstats);
    engine_free(pending);
}

/* ==== Progress sampler =================================================== */

/*
 * A thread that samples a completed-operations counter every 100 ms: it
 * prints progress, enforces --seconds, and keeps the samples so the rate
 * over the second half of the run (the steady state) can be reported.
 */
typedef struct sampler {
    engine *e;               /* for memtable sizes; NULL = don't sample them */
    double memtable_peak_mb; /* largest sampled total of all memtables */
    atomic_uint_fast64_t *done;
    atomic_int *stop_flag;   /* set when --seconds is over */
    double seconds;
    double progress_s;
    uint64_t t0;
    atomic_int quit;
    pthread_t tid;
    uint64_t *t;             /* sample times (ns since t0) */
    uint64_t *v;             /* done counter at each sample */
    size_t n, cap;
    pthread_mutex_t mu;
} sampler;

static void sampler_record(sampler *s, uint64_t t, uint64_t v)
{
    pthread_mutex_lock(&s->mu);
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        s->t = proto_xrealloc(s->t, cap * sizeof(*s->t));
        s->v = proto_xrealloc(s->v, cap * sizeof(*s->v));
        s->cap = cap;
    }
    s->t[s->n] = t;
    s->v[s->n] = v;
    s->n++;
    pthread_mutex_unlock(&s->mu);
}

/* Size of every memtable of the store (all families, flushed or not), MB. */
static double memtables_mb(engine *e)
{
    size_t n;
    const char *const *families = engine_families(e, &n);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t bytes;
        if (engine_property_int(e, families[i], "rocksdb.size-all-mem-tables", &bytes) == 0)
            total += bytes;
    }
    return (double)total / 1048576.0;
}

/* Resident memory now (not the peak), MB. */
static double rss_now_mb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return (double)resident * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

static void *sampler_thread(void *arg)
{
    sampler *s = arg;
    pthread_setname_np(pthread_self(), "bench-sampler");
    uint64_t next_print = s->progress_s > 0 ? (uint64_t)(s->progress_s * 1e9) : UINT64_MAX;
    uint64_t last_t = 0, last_v = 0;
    unsigned tick = 0;
    double mem = 0;
    while (!atomic_load(&s->quit)) {
        struct timespec ts = { 0, 100 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        uint64_t t = bench_now_ns() - s->t0;
        uint64_t v = atomic_load(s->done);
        sampler_record(s, t, v);
        if (s->e && ++tick % 5 == 0) {
            mem = memtables_mb(s->e);
            if (mem > s->memtable_peak_mb)
                s->memtable_peak_mb = mem;
        }
        if (t >= next_print) {
            double dt = (double)(t - last_t) / 1e9;
            fprintf(stderr, "progress t=%.1f done=%" PRIu64 " ops_per_s=%.0f rss_mb=%.0f"
                    " peak_rss_mb=%.0f memtables_mb=%.0f\n",
                    (double)t / 1e9, v, dt > 0 ? (double)(v - last_v) / dt : 0.0,
                    rss_now_mb(), peak_rss_mb(), mem);
            last_t = t;
            last_v = v;
            next_print += (uint64_t)(s->progress_s * 1e9);
        }
        if (s->seconds > 0 && (double)t / 1e9 >= s->seconds && s->stop_flag)
            atomic_store(s->stop_flag, 1);
    }
    return NULL;
}

static void sampler_start(sampler *s, engine *e, atomic_uint_fast64_t *done,
                          atomic_int *stop_flag, double seconds, double progress_s)
{
    memset(s, 0, sizeof(*s));
    s->e = e;
    s->done = done;
    s->stop_flag = stop_flag;
    s->seconds = seconds;
    s->progress_s = progress_s;
    atomic_init(&s->quit, 0);
    pthread_mutex_init(&s->mu, NULL);
    s->t0 = bench_now_ns();
    sampler_record(s, 0, atomic_load(done));
    if (pthread_create(&s->tid, NULL, sampler_thread, s) != 0)
        bench_die("pthread_create failed");
}

/* Rate over the last `frac` of the run, from the first sample at or after its start. */
static double sampler_tail_rate(const sampler *s, double frac)
{
    uint64_t end = s->t[s->n - 1], total = s->v[s->n - 1];
    uint64_t from = (uint64_t)((double)end * (1.0 - frac));
    size_t i = 0;
    while (i + 1 < s->n && s->t[i] < from)
        i++;
    if (end <= s->t[i])
        return 0;
    return (double)(total - s->v[i]) / ((double)(end - s->t[i]) / 1e9);
}

/*
 * Stop sampling at end_ns (since t0) with `total` done; return the rates over
 * the second half and over the last quarter of the run.
 */
static void sampler_stop(sampler *s, uint64_t end_ns, uint64_t total, double *half_rate,
                         double *quarter_rate)
{
    atomic_store(&s->quit, 1);
    pthread_join(s->tid, NULL);
    sampler_record(s, end_ns, total);
    *half_rate = sampler_tail_rate(s, 0.5);
    *quarter_rate = sampler_tail_rate(s, 0.25);
    free(s->t);
    free(s->v);
    pthread_mutex_destroy(&s->mu);
}

/* ==== Append ============================================================= */

/*
 * Message bodies: like db_bench's value generator with its default
 * compression ratio 0.5, each 100-byte piece is 50 random printable bytes
 * repeated, so snappy halves them. Bodies are slices of one pool that never
 * changes while appends are in flight.
 */
#define POOL_BYTES (1u << 20)

static uint8_t *body_pool_make(uint32_t body_len)
{
    size_t size = POOL_BYTES + body_len;
    uint8_t *pool = proto_xcalloc(1, size);
    uint64_t seed = 0x9E3779B97F4A7C15ULL;
    for (size_t at = 0; at < size; at += 100) {
        uint8_t raw[50];
        for (size_t k = 0; k < sizeof(raw); k++)
            raw[k] = (uint8_t)(' ' + rng_next(&seed) % 95);
        for (size_t k = 0; k < 100 && at + k < size; k++)
            pool[at + k] = raw[k % sizeof(raw)];
    }
    return pool;
}

struct producer;

/* One append in flight; its address is the callback context. */
typedef struct slot {
    struct producer *owner;
    struct slot *next;
    uint64_t seq;            /* message number, 0..count-1 */
    uint64_t submitted_ns;
    int status;
    char props[96];
    uint32_t props_len;
} slot;

typedef struct bench bench;

typedef struct producer {
    bench *b;
    uint32_t id;
    pthread_t tid;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    slot *slots;
    slot *free_list;         /* producer thread only */
    slot *retry;             /* producer thread only: refused with EBUSY */
    uint32_t in_flight;      /* producer thread only */
    int stopping;            /* producer thread only */
    slot *done;              /* under mu: completed, not yet reaped */
    int waiting;             /* under mu: the producer sleeps on cv */
    hist lat;                /* under mu: submit to ack, ns */
    uint64_t busy;           /* EBUSY refusals */
} producer;

/*
 * The broker's writer never wakes a client itself: it queues completions for
 * the network loop and sends one ev_async per group. The dispatcher thread
 * plays that loop here, so waking 32 producers costs the writer one signal.
 */
typedef struct dispatcher {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    slot *head;              /* under mu: completions not yet delivered */
    int waiting;             /* under mu: the dispatcher sleeps on cv */
    int quit;                /* under mu */
    pthread_t tid;
} dispatcher;

/* Groups the writer committed, counted by an on_commit hook. */
typedef struct commit_count {
    atomic_uint_fast64_t groups;
    atomic_uint_fast64_t msgs;
} commit_count;

static void commit_count_cb(const engine_ext_env *x, uint64_t first_seq, size_t n_msgs)
{
    commit_count *c = x->ctx;
    atomic_fetch_add_explicit(&c->groups, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->msgs, n_msgs, memory_order_relaxed);
}

struct bench {
    const bench_opts *o;
    engine *e;
    commit_count commits;
    layout l;
    uint8_t *pool;
    atomic_uint_fast64_t next;   /* next message number to claim */
    atomic_uint_fast64_t acked;  /* messages acknowledged */
    atomic_int stop;
    dispatcher d;
    pthread_mutex_t err_mu;
    int error;                   /* under err_mu: first failure, 0 if none */
    char error_text[200];        /* under err_mu */
};

/* Record the first failure and stop every producer. */
static void bench_fail(bench *b, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void bench_fail(bench *b, int status, const char *fmt, ...)
{
    pthread_mutex_lock(&b->err_mu);
    if (!b->error) {
        b->error = status;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->error_text, sizeof(b->error_text), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&b->err_mu);
    atomic_store(&b->stop, 1);
}

/* Hand a completed append back to its producer, waking it if it sleeps. */
static void slot_deliver(slot *s, uint64_t t)
{
    producer *p = s->owner;
    pthread_mutex_lock(&p->mu);
    if (s->status == 0)
        hist_add(&p->lat, t - s->submitted_ns);
    s->next = p->done;
    p->done = s;
    if (p->waiting)
        pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void *dispatcher_thread(void *arg)
{
    dispatcher *d = arg;
    pthread_setname_np(pthread_self(), "bench-dispatch");
    for (;;) {
        pthread_mutex_lock(&d->mu);
        while (!d->head && !d->quit) {
            d->waiting = 1;
            pthread_cond_wait(&d->cv, &d->mu);
            d->waiting = 0;
        }
        slot *list = d->head;
        d->head = NULL;
        int quit = d->quit;
        pthread_mutex_unlock(&d->mu);
        if (!list && quit)
            break;
        uint64_t t = bench_now_ns();
        while (list) {
            slot *s = list;
            list = s->next;
            slot_deliver(s, t);
        }
    }
    return NULL;
}

/* Writer thread: keep it short, as the engine asks. */
static void append_cb(void *ctx, const engine_append_result *r)
{
    slot *s = ctx;
    bench *b = s->owner->b;
    s->status = r->status;
    if (r->status == 0)
        atomic_fetch_add(&b->acked, r->n);
    else if (r->status != LSMQ_EBUSY)
        bench_fail(b, r->status, "append failed: %s", r->error ? r->error : "");
    if (!b->o->dispatch) {
        slot_deliver(s, bench_now_ns());
        return;
    }
    dispatcher *d = &b->d;
    pthread_mutex_lock(&d->mu);
    s->next = d->head;
    d->head = s;
    if (d->waiting)
        pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

static void slot_submit(producer *p, slot *s)
{
    bench *b = p->b;
    const bench_opts *o = b->o;
    const bench_topic *t;
    uint32_t qid;
    uint64_t q = o->random_order ? mix64(s->seq) % b->l.queues : s->seq % b->l.queues;
    layout_queue(&b->l, q, &t, &qid);

    engine_msg m;
    memset(&m, 0, sizeof(m));
    m.born_timestamp = proto_wall_ms();
    m.born_host.ip[0] = 127;
    m.born_host.ip[3] = 1;
    m.born_host.port = 40000 + p->id;
    m.prepared_txn_offset = 0;
    m.body = b->pool + (s->seq * 7919u * o->body_len) % POOL_BYTES;
    m.body_len = o->body_len;
    if (o->props || o->keys) {
        int n = 0;
        if (o->props) /* The Java producer's client message id is 32 hex digits. */
            n += snprintf(s->props, sizeof(s->props), "UNIQ_KEY\001%08X%08" PRIX32 "%016" PRIX64
                          "\002WAIT\001true\002", (unsigned)getpid(), p->id, s->seq);
        if (o->keys) /* an order id, say */
            n += snprintf(s->props + n, sizeof(s->props) - (size_t)n,
                          "KEYS\001order-%08X-%012" PRIu64 "\002", p->id, s->seq);
        s->props_len = (uint32_t)n;
        m.props = s->props;
        m.props_len = s->props_len;
    }
    s->status = 0;
    s->submitted_ns = bench_now_ns();
    int rc = engine_append(b->e, t->name, t->len, qid, &m, 1, append_cb, s);
    if (rc != 0) {
        bench_fail(b, rc, "engine_append %s/%" PRIu32 " refused the message", t->name, qid);
        s->next = p->free_list;
        p->free_list = s;
        return;
    }
    p->in_flight++;
}

/* Take the completed appends; wait for one if `block`. */
static void producer_reap(producer *p, int block)
{
    pthread_mutex_lock(&p->mu);
    while (block && !p->done) {
        p->waiting = 1;
        pthread_cond_wait(&p->cv, &p->mu);
        p->waiting = 0;
    }
    slot *list = p->done;
    p->done = NULL;
    pthread_mutex_unlock(&p->mu);

    int busy = 0;
    while (list) {
        slot *s = list;
        list = s->next;
        p->in_flight--;
        if (s->status == LSMQ_EBUSY) {
            p->busy++;
            busy = 1;
            s->next = p->retry;
            p->retry = s;
        } else {
            s->next = p->free_list;
            p->free_list = s;
        }
    }
    if (busy) {
        struct timespec ts = { 0, 100 * 1000 };
        nanosleep(&ts, NULL);
    }
}

static void *producer_thread(void *arg)
{
    producer *p = arg;
    bench *b = p->b;
    pthread_setname_np(pthread_self(), "bench-append");
    for (;;) {
        if (p->retry && !atomic_load(&b->stop)) {
            slot *s = p->retry;
            p->retry = s->next;
            slot_submit(p, s);
            continue;
        }
        if (!p->stopping) {
            if (atomic_load(&b->stop)) {
                p->stopping = 1;
            } else if (p->free_list) {
                uint64_t i = atomic_fetch_add(&b->next, 1);
                if (i >= b->o->count) {
                    p->stopping = 1;
                } else {
                    slot *s = p->free_list;
                    p->free_list = s->next;
                    s->seq = i;
                    slot_submit(p, s);
                    continue;
                }
            }
        }
        if (p->in_flight == 0)
            break;
        producer_reap(p, 1);
    }
    return NULL;
}

static int run_append(const bench_opts *o)
{
    bench b;
    memset(&b, 0, sizeof(b));
    b.o = o;
    atomic_init(&b.next, 0);
    atomic_init(&b.acked, 0);
    atomic_init(&b.stop, 0);
    pthread_mutex_init(&b.err_mu, NULL);
    pthread_mutex_init(&b.d.mu, NULL);
    pthread_cond_init(&b.d.cv, NULL);
    layout_init(&b.l, o->queues);
    b.pool = body_pool_make(o->body_len);

    double open_secs;
    atomic_init(&b.commits.groups, 0);
    atomic_init(&b.commits.msgs, 0);
    engine_extension counter = {.name = "bench-commits", .ctx = &b.commits,
                                .hook.on_commit = commit_count_cb};
    b.e = store_open(o, &counter, &open_secs);
    uint64_t t_setup = bench_now_ns();
    topics_create(b.e, &b.l);
    double setup_secs = secs_since(t_setup);
    double rss_setup = peak_rss_mb();

    producer *ps = proto_xcalloc(o->threads, sizeof(*ps));
    for (uint32_t i = 0; i < o->threads; i++) {
        producer *p = &ps[i];
        p->b = &b;
        p->id = i;
        pthread_mutex_init(&p->mu, NULL);
        pthread_cond_init(&p->cv, NULL);
        p->slots = proto_xcalloc(o->window, sizeof(slot));
        for (uint32_t k = 0; k < o->window; k++) {
            p->slots[k].owner = p;
            p->slots[k].next = p->free_list;
            p->free_list = &p->slots[k];
        }
    }

    if (o->dispatch && pthread_create(&b.d.tid, NULL, dispatcher_thread, &b.d) != 0)
        bench_die("pthread_create failed");
    uint64_t groups0 = atomic_load(&b.commits.groups);
    uint64_t pos0 = engine_next_log_position(b.e);
    uint64_t wr0 = proc_write_bytes();
    sampler smp;
    bench_cpu_mark c0 = bench_cpu_mark_now();
    uint64_t t0 = bench_now_ns();
    sampler_start(&smp, b.e, &b.acked, &b.stop, o->seconds, o->progress_s);
    for (uint32_t i = 0; i < o->threads; i++)
        if (pthread_create(&ps[i].tid, NULL, producer_thread, &ps[i]) != 0)
            bench_die("pthread_create failed");
    for (uint32_t i = 0; i < o->threads; i++)
        pthread_join(ps[i].tid, NULL);
    uint64_t elapsed = bench_now_ns() - t0;
    bench_cpu_mark c1 = bench_cpu_mark_now();
    uint64_t acked = atomic_load(&b.acked);
    double steady, tail;
    sampler_stop(&smp, elapsed, acked, &steady, &tail);
    uint64_t rec_bytes = engine_next_log_position(b.e) - pos0;
    uint64_t groups = atomic_load(&b.commits.groups) - groups0;

    db_figures f;
    db_stats(b.e, o, &f);
    uint64_t wr1 = proc_write_bytes();

    if (o->dispatch) {
        pthread_mutex_lock(&b.d.mu);
        b.d.quit = 1;
        pthread_cond_signal(&b.d.cv);
        pthread_mutex_unlock(&b.d.mu);
        pthread_join(b.d.tid, NULL);
    }
    hist lat;
    memset(&lat, 0, sizeof(lat));
    uint64_t busy = 0;
    for (uint32_t i = 0; i < o->threads; i++) {
        hist_merge(&lat, &ps[i].lat);
        busy += ps[i].busy;
    }
    int error = b.error;
    if (error)
        fprintf(stderr, "lsmq-engine-bench: %s: %s\n", lsmq_strerror(error), b.error_text);

    uint64_t t_close = bench_now_ns();
    engine_close(b.e);
    double close_secs = secs_since(t_close);
    uint64_t store = dir_bytes(o->path);

    double secs = (double)elapsed / 1e9;
    double mb = 1024.0 * 1024.0;
    printf("result mode=append body=%" PRIu32 " queues=%" PRIu32 " topics=%" PRIu32
           " threads=%" PRIu32 " window=%" PRIu32 " flush=%s blob=%d universal=%d"
           " props=%d keys=%d key_index=%d dispatch=%d order=%s ops=%" PRIu64 " secs=%.3f ops_per_s=%.0f mb_per_s=%.1f"
           " rec_mb_per_s=%.1f steady_ops_per_s=%.0f tail_ops_per_s=%.0f p50_us=%.0f"
           " p99_us=%.0f p999_us=%.0f max_us=%.0f busy=%" PRIu64 " batches=%" PRIu64
           " msgs_per_batch=%.1f rocksdb_writes=%.0f keys_per_msg=%.1f wal_syncs=%.0f stall_pct=%.1f msg_wamp=%.1f msg_comp_gb=%.2f"
           " pending_mb=%.0f disk_write_mb=%.0f store_mb=%.0f open_secs=%.3f"
           " setup_secs=%.2f close_secs=%.2f memtable_peak_mb=%.0f rss_setup_mb=%.0f"
           " rss_mb=%.0f cpu_cores=%.2f other_cpu_pct=%.0f error=%d\n",
           o->body_len, o->queues, b.l.n_topics, o->threads, o->window,
           o->flush == ENGINE_SYNC_FLUSH ? "sync" : "async", o->blob, o->universal, o->props,
           o->keys, o->key_index, o->dispatch, o->random_order ? "random" : "cycle", acked, secs, secs > 0 ? (double)acked / secs : 0.0,
           secs > 0 ? (double)acked * o->body_len / mb / secs : 0.0,
           secs > 0 ? (double)rec_bytes / mb / secs : 0.0, steady, tail,
           (double)hist_pct(&lat, 50) / 1e3, (double)hist_pct(&lat, 99) / 1e3,
           (double)hist_pct(&lat, 99.9) / 1e3, (double)lat.max / 1e3, busy, groups,
           groups > 0 ? (double)acked / (double)groups : 0.0, f.writes,
           acked > 0 ? f.keys / (double)acked : 0.0, f.wal_syncs, f.stall_pct,
           f.msg_wamp, f.msg_comp_write_gb, f.pending_bytes / mb,
           (double)(wr1 - wr0) / mb, (double)store / mb, open_secs, setup_secs,
           close_secs, smp.memtable_peak_mb, rss_setup, peak_rss_mb(),
           bench_cpu_self_cores(&c0, &c1), bench_cpu_other_pct(&c0, &c1), error);
    fflush(stdout);

    for (uint32_t i = 0; i < o->threads; i++) {
        pthread_mutex_destroy(&ps[i].mu);
        pthread_cond_destroy(&ps[i].cv);
        free(ps[i].slots);
    }
    free(ps);
    free(b.pool);
    free(b.l.topics);
    pthread_mutex_destroy(&b.err_mu);
    pthread_mutex_destroy(&b.d.mu);
    pthread_cond_destroy(&b.d.cv);
    return error ? 1 : 0;
}

/* ==== Read =============================================================== */

typedef struct reader {
    const bench_opts *o;
    engine *e;
    const layout *l;
    atomic_uint_fast64_t *next_queue;
    atomic_uint_fast64_t *records_done;
    uint64_t records, rec_bytes, body_bytes, calls;
    hist lat;                /* per engine_read call, ns */
    int error;
    pthread_t tid;
} reader;

/* Walk one read result: decode each record and check its queue and offset. */
static int check_records(const engine_read_result *r, uint32_t qid, uint64_t first,
                         uint64_t *body_bytes)
{
    size_t at = 0;
    for (uint32_t i = 0; i < r->count; i++) {
        proto_record rec;
        long n = proto_record_decode(r->data + at, r->len - at, &rec);
        if (n <= 0) {
            fprintf(stderr, "lsmq-engine-bench: record %" PRIu64 " does not decode\n",
                    first + i);
            return LSMQ_ECORRUPT;
        }
        if ((uint32_t)rec.queue_id != qid || (uint64_t)rec.queue_offset != first + i) {
            fprintf(stderr, "lsmq-engine-bench: expected queue %" PRIu32 " offset %" PRIu64
                    ", got queue %" PRId32 " offset %" PRId64 "\n",
                    qid, first + i, rec.queue_id, rec.queue_offset);
            return LSMQ_ECORRUPT;
        }
        *body_bytes += rec.body_len;
        at += (size_t)n;
    }
    if (at != r->len) {
        fprintf(stderr, "lsmq-engine-bench: %zu stray bytes after %" PRIu32 " records\n",
                r->len - at, r->count);
        return LSMQ_ECORRUPT;
    }
    return 0;
}

static void *reader_thread(void *arg)
{
    reader *rd = arg;
    pthread_setname_np(pthread_self(), "bench-read");
    for (;;) {
        uint64_t q = atomic_fetch_add(rd->next_queue, 1);
        if (q >= rd->l->queues)
            break;
        const bench_topic *t;
        uint32_t qid;
        layout_queue(rd->l, q, &t, &qid);
        uint64_t off = 0;
        for (;;) {
            engine_read_result r;
            memset(&r, 0, sizeof(r));
            uint64_t c0 = bench_now_ns();
            int rc = engine_read(rd->e, t->name, t->len, qid, off, rd->o->read_batch,
                                 rd->o->read_bytes, &r);
            hist_add(&rd->lat, bench_now_ns() - c0);
            rd->calls++;
            if (rc != 0) {
                fprintf(stderr, "lsmq-engine-bench: engine_read %s/%" PRIu32 " @%" PRIu64
                        ": %s\n", t->name, qid, off, lsmq_strerror(rc));
                rd->error = rc;
                engine_free(r.data);
                return NULL;
            }
            if (r.status == ENGINE_READ_OFFSET_TOO_SMALL) {
                engine_free(r.data);
                off = r.min_offset;
                continue;
            }
            if (r.status != ENGINE_READ_FOUND || r.count == 0) {
                engine_free(r.data);
                break;
            }
            rc = check_records(&r, qid, off, &rd->body_bytes);
            if (rc != 0) {
                rd->error = rc;
                engine_free(r.data);
                return NULL;
            }
            rd->records += r.count;
            rd->rec_bytes += r.len;
            atomic_fetch_add(rd->records_done, r.count);
            off = r.next_offset;
            uint64_t max = r.max_offset;
            engine_free(r.data);
            if (off >= max)
                break;
        }
    }
    return NULL;
}

static int run_read(const bench_opts *o)
{
    layout l;
    layout_init(&l, o->queues);
    double open_secs;
    engine *e = store_open(o, NULL, &open_secs);
    topics_check(e, &l);

    atomic_uint_fast64_t next_queue, records_done;
    atomic_init(&next_queue, 0);
    atomic_init(&records_done, 0);
    reader *rs = proto_xcalloc(o->threads, sizeof(*rs));
    sampler smp;
    bench_cpu_mark c0 = bench_cpu_mark_now();
    uint64_t t0 = bench_now_ns();
    sampler_start(&smp, e, &records_done, NULL, 0, o->progress_s);
    for (uint32_t i = 0; i < o->threads; i++) {
        rs[i].o = o;
        rs[i].e = e;
        rs[i].l = &l;
        rs[i].next_queue = &next_queue;
        rs[i].records_done = &records_done;
        if (pthread_create(&rs[i].tid, NULL, reader_thread, &rs[i]) != 0)
            bench_die("pthread_create failed");
    }
    for (uint32_t i = 0; i < o->threads; i++)
        pthread_join(rs[i].tid, NULL);
    uint64_t elapsed = bench_now_ns() - t0;
    bench_cpu_mark c1 = bench_cpu_mark_now();

    uint64_t records = 0, rec_bytes = 0, body_bytes = 0, calls = 0;
    int error = 0;
    hist lat;
    memset(&lat, 0, sizeof(lat));
    for (uint32_t i = 0; i < o->threads; i++) {
        records += rs[i].records;
        rec_bytes += rs[i].rec_bytes;
        body_bytes += rs[i].body_bytes;
        calls += rs[i].calls;
        hist_merge(&lat, &rs[i].lat);
        if (rs[i].error && !error)
            error = rs[i].error;
    }
    double steady, tail;
    sampler_stop(&smp, elapsed, records, &steady, &tail);
    db_figures f;
    db_stats(e, o, &f);
    engine_close(e);

    double secs = (double)elapsed / 1e9, mb = 1024.0 * 1024.0;
    printf("result mode=read queues=%" PRIu32 " topics=%" PRIu32 " threads=%" PRIu32
           " batch=%" PRIu32 " ops=%" PRIu64 " calls=%" PRIu64 " secs=%.3f ops_per_s=%.0f"
           " mb_per_s=%.1f rec_mb_per_s=%.1f steady_ops_per_s=%.0f tail_ops_per_s=%.0f"
           " call_p50_us=%.1f"
           " call_p99_us=%.1f open_secs=%.3f rss_mb=%.0f cpu_cores=%.2f other_cpu_pct=%.0f"
           " error=%d\n",
           o->queues, l.n_topics, o->threads, o->read_batch, records, calls, secs,
           secs > 0 ? (double)records / secs : 0.0,
           secs > 0 ? (double)body_bytes / mb / secs : 0.0,
           secs > 0 ? (double)rec_bytes / mb / secs : 0.0, steady, tail,
           (double)hist_pct(&lat, 50) / 1e3, (double)hist_pct(&lat, 99) / 1e3, open_secs,
           peak_rss_mb(), bench_cpu_self_cores(&c0, &c1), bench_cpu_other_pct(&c0, &c1), error);
    fflush(stdout);
    free(rs);
    free(l.topics);
    return error ? 1 : 0;
}

/* ==== Reopen ============================================================= */

static int run_reopen(const bench_opts *o)
{
    struct stat st;
    if (stat(o->path, &st) != 0 || !S_ISDIR(st.st_mode))
        bench_die("%s: no store there; run --mode append first", o->path);
    layout l;
    layout_init(&l, o->queues);
    uint64_t store = dir_bytes(o->path);

    double open_secs;
    bench_cpu_mark c0 = bench_cpu_mark_now();
    engine *e = store_open(o, NULL, &open_secs);
    bench_cpu_mark c1 = bench_cpu_mark_now();
    double rss_open = peak_rss_mb();

    /* Every queue answers: the topic table is complete and usable. */
    uint64_t t1 = bench_now_ns();
    topics_check(e, &l);
    uint64_t msgs = 0;
    for (uint64_t q = 0; q < l.queues; q++) {
        const bench_topic *t;
        uint32_t qid;
        uint64_t lo, hi;
        layout_queue(&l, q, &t, &qid);
        int rc = engine_queue_offsets(e, t->name, t->len, qid, &lo, &hi);
        if (rc != 0)
            bench_die("engine_queue_offsets %s/%" PRIu32 ": %s", t->name, qid, lsmq_strerror(rc));
        msgs += hi - lo;
    }
    double check_secs = secs_since(t1);

    uint64_t t2 = bench_now_ns();
    engine_close(e);
    double close_secs = secs_since(t2);

    printf("result mode=reopen queues=%" PRIu32 " topics=%" PRIu32 " messages=%" PRIu64
           " store_mb=%.0f open_secs=%.3f check_secs=%.3f close_secs=%.3f"
           " rss_open_mb=%.0f rss_mb=%.0f other_cpu_pct=%.0f error=0\n",
           o->queues, l.n_topics, msgs, (double)store / (1024.0 * 1024.0), open_secs,
           check_secs, close_secs, rss_open, peak_rss_mb(), bench_cpu_other_pct(&c0, &c1));
    fflush(stdout);
    free(l.topics);
    return 0;
}

int main(int argc, char **argv)
{
    bench_init("lsmq-engine-bench", 1);
    bench_opts o;
    parse_opts(argc, argv, &o);
    fprintf(stderr, "lsmq-engine-bench: mode=%s path=%s queues=%" PRIu32 " body=%" PRIu32
            " threads=%" PRIu32 " window=%" PRIu32 " count=%" PRIu64 " flush=%s\n",
            mode_name(o.mode), o.path, o.queues, o.body_len, o.threads, o.window, o.count,
            o.flush == ENGINE_SYNC_FLUSH ? "sync" : "async");
    switch (o.mode) {
    case MODE_APPEND: return run_append(&o);
    case MODE_READ: return run_read(&o);
    case MODE_REOPEN: return run_reopen(&o);
    }
    return 2;
}
