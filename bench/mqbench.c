/*
 * mqbench: benchmark of a running broker through liblsmq, the way users
 * drive it: producers, consumers and the time from publish to consume.
 * bench/broker_bench.sh runs it against mqbroker (with Redis streams as the
 * yardstick); figures are in bench/RESULTS.md.
 *
 *   mqbench produce -n NAMESRV -t TOPIC [--producers N] [--clients K] [--size B]
 *                   [--count N | --seconds S] [--async [--window W] | --chained]
 *                   [--warmup N] [--deliver-in MS]
 *   mqbench consume -n NAMESRV -t TOPIC [--consumer push|pull] [--threads T]
 *                   [--count N] [--idle-ms MS] [--seconds S]
 *   mqbench latency -n NAMESRV -t TOPIC --rate R --seconds S [--size B]
 *   mqbench timer ...     delayed delivery: see mqbench_timer.c
 *
 * produce  N threads send --size byte bodies. A synchronous sender waits for
 *          each answer (lsmq_producer_send), so "50 producers" is 50 sends in
 *          flight, like 50 redis-benchmark clients without pipelining. With
 *          --async each thread keeps up to --window sends in flight. The
 *          threads share K lsmq_producer objects (thread i uses producer
 *          i % K; --clients 0 gives each thread its own). Before the clock
 *          starts each thread sends --warmup messages (routes, connections).
 *          The run ends after --count acknowledged sends or --seconds.
 *          --deliver-in MS makes every send a timer message due MS after
 *          it is sent (TIMER_DELIVER_MS): the pending store's append rate,
 *          and how timer_bench.sh fills a store with pending messages.
 *          --chained keeps the synchronous semantics without the threads:
 *          N chains of asynchronous sends with one in flight each, the next
 *          one leaving from the previous one's callback, as redis-benchmark
 *          drives its clients from one event loop.
 *          Bodies differ per message and compress about 2:1 (half random
 *          bytes, half a copy of them), as db_bench's values do. ops and
 *          msgs_per_s count sends answered SEND_OK; not_ok counts those
 *          stored with another status (a SYNC_MASTER's FLUSH_SLAVE_TIMEOUT
 *          or SLAVE_NOT_AVAILABLE), errors those that failed.
 * consume  catch-up: a new consumer group reads the topic from the first
 *          offset, with a push consumer (listener per message) or a pull
 *          consumer (poll in batches). Ends at --count messages, or when
 *          nothing arrived for --idle-ms; the rate is taken from the start
 *          to the last message.
 * latency  a push consumer subscribes first; once it receives warm-up
 *          messages from every queue, one thread sends asynchronously at
 *          --rate msg/s for --seconds, each body stamped with the send time
 *          (CLOCK_MONOTONIC, same process). The listener records receive
 *          minus send. Sends follow the schedule (a late tick sends what is
 *          due at once), so a stall shows in the latency, not in a lower rate.
 *
 * Output: one line on stdout, "result mode=... key=value ...", that
 * broker_bench.sh parses; progress and errors on stderr. Latencies in ms,
 * MB = 2^20 bytes. cpu_pct is this process's CPU time over the run's wall
 * time (100 = one core); with --broker-pid, broker_cpu_pct is the same for
 * that process (the sum over a comma-separated list: a master and its
 * replicas) over the same interval; machine_cpu_pct is every process's
 * (from /proc/stat), so the difference is what other processes took. Exit status 0, 1 when sends or
 * receives failed, 2 on bad usage or when the clients cannot start.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "bench_util.h"
#include "clock.h"
#include "lsmq.h"
#include "mqbench_timer.h"

/* ==== Options ============================================================ */

enum bench_mode { MODE_PRODUCE, MODE_CONSUME, MODE_LATENCY };

typedef struct bench_opts {
    enum bench_mode mode;
    const char *namesrv;
    const char *topic;
    const char *group;       /* NULL: a fresh "mqbench-<mode>-<pid>" */
    const char *label;       /* echoed in the result line */
    int producers;           /* sending threads */
    int clients;             /* lsmq_producer objects; 0 = one per thread */
    size_t size;             /* body bytes */
    uint64_t count;          /* produce: sends; consume: messages expected */
    double seconds;          /* produce/latency: run length; consume: cap */
    int async;
    int chained;             /* produce: sync senders as callback chains */
    int window;              /* async sends in flight per thread */
    int warmup;              /* untimed sends per producer thread */
    int push;                /* consume: push (1) or pull (0) consumer */
    int threads;             /* push consumer listener threads */
    int idle_ms;             /* consume: stop after this long without messages */
    double rate;             /* latency: messages per second */
    int timeout_ms;          /* send timeout */
    const char *broker_pids; /* "PID[,PID...]"; NULL: do not sample */
    int64_t deliver_in_ms;   /* produce: timed sends due this long after sending; 0 = plain */
} bench_opts;

/* ==== Small helpers ====================================================== */

/*
 * What the library says about the last failure on an object (or, with no
 * object, about rc), in a buffer of the calling thread's own.
 */
static _Thread_local char error_text[512];

static const char *producer_error(lsmq_producer *p, int rc)
{
    if (p == NULL)
        return lsmq_strerror(rc);
    lsmq_producer_last_error(p, error_text, sizeof error_text);
    return error_text;
}

static const char *push_error(lsmq_push_consumer *c, int rc)
{
    if (c == NULL)
        return lsmq_strerror(rc);
    lsmq_push_consumer_last_error(c, error_text, sizeof error_text);
    return error_text;
}

static const char *pull_error(lsmq_pull_consumer *c, int rc)
{
    if (c == NULL)
        return lsmq_strerror(rc);
    lsmq_pull_consumer_last_error(c, error_text, sizeof error_text);
    return error_text;
}

/* The due time of a timed send made now (0: plain), ms since the epoch. */
static int64_t deliver_at(const bench_opts *o)
{
    return o->deliver_in_ms > 0 ? proto_wall_ms() + o->deliver_in_ms : 0;
}

static void sleep_until_ns(uint64_t t)
{
    struct timespec ts = {(time_t)(t / 1000000000u), (long)(t % 1000000000u)};

    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}


/* xorshift64*: cheap per-thread random bytes for bodies. */
static uint64_t rand_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/*
 * Fill body[from..len) so that it compresses about 2:1: the first half of
 * that range random bytes, the second half a copy of the first.
 */
static void body_fill(unsigned char *body, size_t from, size_t len, uint64_t *seed)
{
    size_t n = len - from, half = n / 2, i;

    for (i = 0; i < half; i += 8) {
        uint64_t r = rand_next(seed);
        size_t k = half - i < 8 ? half - i : 8;

        memcpy(body + from + i, &r, k);
    }
    memcpy(body + from + half, body + from, half);
    if (n % 2)
        body[len - 1] = 'x';
}

/* CPU seconds (user + system) of this process. */
static double self_cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds of another process from /proc/PID/stat, or -1. */
static double pid_cpu_s(int pid)
{
    char path[64], buf[1024];
    unsigned long long utime, stime;
    const char *p;
    size_t n;
    FILE *f;

    if (pid <= 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields 14 and 15, counted after the ")" that ends the command name. */
    if ((p = strrchr(buf, ')')) == NULL ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
               &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU seconds of the processes in "PID[,PID...]" together, or -1 (none, or one is gone). */
static double proc_cpu_s(const char *pids)
{
    double sum = 0;
    const char *p = pids;

    if (p == NULL || *p == '\0')
        return -1;
    while (*p) {
        char *end;
        long pid = strtol(p, &end, 10);
        double s = end != p ? pid_cpu_s((int)pid) : -1;

        if (s < 0)
            return -1;
        sum += s;
        p = *end == ',' ? end + 1 : end;
        if (*end != ',' && *end != '\0')
            return -1;
    }
    return sum;
}

/* Busy CPU seconds of the whole machine (all cores) from /proc/stat, or -1. */
static double machine_cpu_s(void)
{
    unsigned long long user, nice, sys, idle, iowait, irq, softirq, steal;
    FILE *f = fopen("/proc/stat", "r");
    int n;

    if (f == NULL)
        return -1;
    n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user, &nice, &sys, &idle,
               &iowait, &irq, &softirq, &steal);
    fclose(f);
    if (n != 8)
        return -1;
    return (double)(user + nice + sys + irq + softirq + steal) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU use over a timed interval: this process, the broker if asked, the machine. */
typedef struct cpu_mark {
    double self_s, broker_s, machine_s;
    uint64_t t_ns;
} cpu_mark;

static cpu_mark cpu_mark_take(const char *broker_pids)
{
    cpu_mark m;

    m.self_s = self_cpu_s();
    m.broker_s = proc_cpu_s(broker_pids);
    m.machine_s = machine_cpu_s();
    m.t_ns = bench_now_ns();
    return m;
}

/*
 * Append " cpu_pct=X [broker_cpu_pct=Y] machine_cpu_pct=Z" for the interval
 * a..b to out: the machine's figure counts every core (200 = two cores
 * busy), so Z - X - Y is what other processes took meanwhile.
 */
static void cpu_format(const cpu_mark *a, const cpu_mark *b, char *out, size_t cap)
{
    double wall = (double)(b->t_ns - a->t_ns) / 1e9;
    size_t n;

    if (wall <= 0)
        wall = 1e-9;
    snprintf(out, cap, " cpu_pct=%.0f", 100 * (b->self_s - a->self_s) / wall);
    n = strlen(out);
    if (a->broker_s >= 0 && b->broker_s >= 0)
        snprintf(out + n, cap - n, " broker_cpu_pct=%.0f",
                 100 * (b->broker_s - a->broker_s) / wall);
    n = strlen(out);
    if (a->machine_s >= 0 && b->machine_s >= 0)
        snprintf(out + n, cap - n, " machine_cpu_pct=%.0f",
                 100 * (b->machine_s - a->machine_s) / wall);
}

/* ==== Latency histogram ================================================== */

/*
 * Log-linear buckets over nanoseconds: values below 128 exactly, above that
 * 64 buckets per power of two (a bucket is at most 1/64 of its value wide,
 * so a percentile is within 1.6%). Counts may be atomic (listeners add from
 * several threads) or plain (one thread each, merged at the end).
 */
#define HIST_SUB_BITS 6
#define HIST_SUB (1 << HIST_SUB_BITS)
#define HIST_BUCKETS ((64 - HIST_SUB_BITS) * HIST_SUB + HIST_SUB)

typedef struct hist {
    _Atomic uint64_t n[HIST_BUCKETS];
    _Atomic uint64_t total;
    _Atomic uint64_t max;
} hist;

static int hist_index(uint64_t v)
{
    int shift;

    if (v < 2 * HIST_SUB)
        return (int)v;
    shift = 63 - __builtin_clzll(v) - HIST_SUB_BITS;
    return shift * HIST_SUB + (int)(v >> shift);
}

/* The middle of a bucket's range. */
static uint64_t hist_value(int idx)
{
    int shift;
    uint64_t low;

    if (idx < 2 * HIST_SUB)
        return (uint64_t)idx;
    shift = idx / HIST_SUB - 1;
    low = (uint64_t)(idx % HIST_SUB + HIST_SUB) << shift;
    return low + ((uint64_t)1 << shift) / 2;
}

static void hist_add(hist *h, uint64_t v)
{
    uint64_t m = atomic_load_explicit(&h->max, memory_order_relaxed);

    atomic_fetch_add_explicit(&h->n[hist_index(v)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->total, 1, memory_order_relaxed);
    while (v > m && !atomic_compare_exchange_weak_explicit(&h->max, &m, v, memory_order_relaxed,
                                                           memory_order_relaxed))
        ;
}

static void hist_merge(hist *into, hist *from)
{
    int i;

    for (i = 0; i < HIST_BUCKETS; i++)
        into->n[i] += from->n[i];
    into->total += from->total;
    if (from->max > into->max)
        into->max = from->max;
}

/* The value at quantile q (0..1), in ns; 0 for an empty histogram. */
static uint64_t hist_quantile(hist *h, double q)
{
    uint64_t rank, seen = 0;
    int i;

    if (h->total == 0)
        return 0;
    rank = (uint64_t)(q * (double)h->total + 0.999999);
    if (rank == 0)
        rank = 1;
    for (i = 0; i < HIST_BUCKETS; i++) {
        seen += h->n[i];
        if (seen >= rank) {
            uint64_t v = hist_value(i);

            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}

/* Append " p50_ms=.. p99_ms=.. p999_ms=.. max_ms=.." to out. */
static void hist_format(hist *h, char *out, size_t cap)
{
    snprintf(out, cap, " p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f",
             (double)hist_quantile(h, 0.50) / 1e6, (double)hist_quantile(h, 0.99) / 1e6,
             (double)hist_quantile(h, 0.999) / 1e6, (double)h->max / 1e6);
}

/* ==== Producers ========================================================== */

/* Create and start one producer; dies when it cannot. */
static lsmq_producer *producer_open(const bench_opts *o, const char *group, int inflight)
{
    lsmq_producer *p = NULL;
    int rc;

    if ((rc = lsmq_producer_create(o->namesrv, group, &p)) != 0 ||
        (rc = lsmq_producer_set_send_timeout(p, o->timeout_ms)) != 0 ||
        (inflight > 0 && (rc = lsmq_producer_set_max_async_inflight(p, inflight)) != 0) ||
        (rc = lsmq_producer_start(p)) != 0)
        bench_die("cannot start a producer: %s", producer_error(p, rc));
    return p;
}

/* One sending thread of produce mode. */
typedef struct sender_thread {
    pthread_t tid;
    int index;
    const bench_opts *o;
    lsmq_producer *p;
    pthread_barrier_t *ready;        /* warm-up done */
    pthread_barrier_t *go;           /* clock started */
    hist lat;                        /* send to answer */
    uint64_t ok, not_ok, errors, warm_ok;
    /* async window */
    pthread_mutex_t lock;
    pthread_cond_t cv;
    int inflight;
} sender_thread;

/* Shared state of a produce run. */
static _Atomic uint64_t claimed;     /* sends started, against --count */
static uint64_t deadline_ns;         /* set before the go barrier */
static atomic_int first_error_logged;

static void log_send_error(int rc, const char *text)
{
    if (atomic_exchange(&first_error_logged, 1) == 0)
        fprintf(stderr, "mqbench: send failed: %s (%s); later failures are only counted\n",
                text, lsmq_strerror(rc));
}

/* Claim the next send; 0 when the run is over. */
static int claim_send(const bench_opts *o)
{
    if (o->count > 0)
        return atomic_fetch_add(&claimed, 1) < o->count;
    return bench_now_ns() < deadline_ns;
}

/*
 * A stored send the broker answered with another status than SEND_OK
 * (FLUSH_SLAVE_TIMEOUT, SLAVE_NOT_AVAILABLE, FLUSH_DISK_TIMEOUT): counted
 * apart (not_ok), not as throughput.
 */
static int confirmed(const lsmq_send_result *res)
{
    return res == NULL || res->status == LSMQ_SEND_OK;
}

typedef struct async_slot {
    sender_thread *t;
    uint64_t t0_ns;
} async_slot;

static void produce_async_cb(int rc, const lsmq_send_result *res, void *arg)
{
    async_slot *s = arg;
    sender_thread *t = s->t;
    uint64_t dt = bench_now_ns() - s->t0_ns;

    if (rc != 0)
        log_send_error(rc, producer_error(t->p, rc));
    pthread_mutex_lock(&t->lock);
    if (rc == 0 && !confirmed(res)) {
        t->not_ok++;
    } else if (rc == 0) {
        t->ok++;
        hist_add(&t->lat, dt);
    } else {
        t->errors++;
    }
    t->inflight--;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->lock);
    free(s);
}

static void *sender_main(void *arg)
{
    sender_thread *t = arg;
    const bench_opts *o = t->o;
    unsigned char *body = proto_xcalloc(1, o->size);
    uint64_t seed = 0x9E3779B97F4A7C15ULL * (uint64_t)(t->index + 1), seq = 0;
    lsmq_out_message m;
    int i, rc;

    memset(&m, 0, sizeof m);
    m.topic = o->topic;
    m.body = body;
    m.body_len = o->size;
    for (i = 0; i < o->warmup; i++) {
        body_fill(body, 0, o->size, &seed);
        if ((rc = lsmq_producer_send(t->p, &m, NULL)) != 0)
            fprintf(stderr, "mqbench: warm-up send failed: %s\n", producer_error(t->p, rc));
        else
            t->warm_ok++;
    }
    pthread_barrier_wait(t->ready);
    pthread_barrier_wait(t->go);
    while (claim_send(o)) {
        /* A sequence number up front, then the compressible filler. */
        seq++;
        memcpy(body, &seq, o->size < 8 ? o->size : 8);
        if (o->size > 8)
            body_fill(body, 8, o->size, &seed);
        m.deliver_ms = deliver_at(o);
        if (!o->async) {
            uint64_t t0 = bench_now_ns();
            lsmq_send_result res;

            memset(&res, 0, sizeof res);
            rc = lsmq_producer_send(t->p, &m, &res);
            if (rc == 0 && !confirmed(&res)) {
                t->not_ok++;
            } else if (rc == 0) {
                hist_add(&t->lat, bench_now_ns() - t0);
                t->ok++;
            } else {
                t->errors++;
                log_send_error(rc, producer_error(t->p, rc));
            }
            continue;
        }
        async_slot *s = proto_xcalloc(1, sizeof *s);

        pthread_mutex_lock(&t->lock);
        while (t->inflight >= o->window)
            pthread_cond_wait(&t->cv, &t->lock);
        t->inflight++;
        pthread_mutex_unlock(&t->lock);
        s->t = t;
        s->t0_ns = bench_now_ns();
        if ((rc = lsmq_producer_send_async(t->p, &m, produce_async_cb, s)) != 0) {
            log_send_error(rc, producer_error(t->p, rc));
            free(s);
            pthread_mutex_lock(&t->lock);
            t->inflight--;
            t->errors++;
            pthread_mutex_unlock(&t->lock);
        }
    }
    pthread_mutex_lock(&t->lock);
    while (t->inflight > 0)
        pthread_cond_wait(&t->cv, &t->lock);
    pthread_mutex_unlock(&t->lock);
    free(body);
    return NULL;
}

/*
 * Chained senders: each chain has one send in flight; its callback, on the
 * producer's I/O thread, records the answer and sends the chain's next
 * message. A chain ends when the run is over or a send cannot be queued.
 */
typedef struct chain_set chain_set;

typedef struct chain {
    chain_set *set;
    lsmq_producer *p;
    unsigned char *body;
    uint64_t seed, seq, t0_ns;
} chain;

struct chain_set {
    const bench_opts *o;
    chain *chains;
    hist *lat;                       /* hist_add is atomic */
    _Atomic uint64_t ok, not_ok, errors;
    pthread_mutex_t lock;            /* live */
    pthread_cond_t cv;
    int live;
};

static void chain_end(chain *ch)
{
    chain_set *cs = ch->set;

    pthread_mutex_lock(&cs->lock);
    cs->live--;
    pthread_cond_signal(&cs->cv);
    pthread_mutex_unlock(&cs->lock);
}

static void chain_cb(int rc, const lsmq_send_result *res, void *arg);

/* Send the chain's next message if the run goes on; else end the chain. */
static void chain_next(chain *ch)
{
    const bench_opts *o = ch->set->o;
    lsmq_out_message m;
    int rc;

    if (!claim_send(o)) {
        chain_end(ch);
        return;
    }
    ch->seq++;
    memcpy(ch->body, &ch->seq, o->size < 8 ? o->size : 8);
    if (o->size > 8)
        body_fill(ch->body, 8, o->size, &ch->seed);
    memset(&m, 0, sizeof m);
    m.topic = o->topic;
    m.body = ch->body;
    m.body_len = o->size;
    m.deliver_ms = deliver_at(o);
    ch->t0_ns = bench_now_ns();
    if ((rc = lsmq_producer_send_async(ch->p, &m, chain_cb, ch)) != 0) {
        log_send_error(rc, producer_error(ch->p, rc));
        atomic_fetch_add(&ch->set->errors, 1);
        chain_end(ch);
    }
}

static void chain_cb(int rc, const lsmq_send_result *res, void *arg)
{
    chain *ch = arg;

    if (rc == 0 && !confirmed(res)) {
        atomic_fetch_add(&ch->set->not_ok, 1);
    } else if (rc == 0) {
        hist_add(ch->set->lat, bench_now_ns() - ch->t0_ns);
        atomic_fetch_add(&ch->set->ok, 1);
    } else {
        log_send_error(rc, producer_error(ch->p, rc));
        atomic_fetch_add(&ch->set->errors, 1);
    }
    chain_next(ch);
}

/* Set up the chains over the producers and warm each up (synchronously). */
static chain_set *chains_create(const bench_opts *o, lsmq_producer **ps, int n_clients,
                                hist *lat, uint64_t *warm)
{
    chain_set *cs = proto_xcalloc(1, sizeof *cs);
    lsmq_out_message m;
    int i, w;

    cs->o = o;
    cs->lat = lat;
    cs->chains = proto_xcalloc((size_t)o->producers, sizeof *cs->chains);
    pthread_mutex_init(&cs->lock, NULL);
    pthread_cond_init(&cs->cv, NULL);
    memset(&m, 0, sizeof m);
    m.topic = o->topic;
    m.body_len = o->size;
    for (i = 0; i < o->producers; i++) {
        chain *ch = &cs->chains[i];

        ch->set = cs;
        ch->p = ps[i % n_clients];
        ch->body = proto_xcalloc(1, o->size);
        ch->seed = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1);
        m.body = ch->body;
        for (w = 0; w < o->warmup; w++) {
            body_fill(ch->body, 0, o->size, &ch->seed);
            if (lsmq_producer_send(ch->p, &m, NULL) == 0)
                (*warm)++;
            else
                fprintf(stderr, "mqbench: warm-up send failed: %s\n",
                        producer_error(ch->p, -1));
        }
    }
    return cs;
}

/* Start every chain and wait until all have ended. */
static void chains_run(chain_set *cs)
{
    int i;

    cs->live = cs->o->producers;
    for (i = 0; i < cs->o->producers; i++)
        chain_next(&cs->chains[i]);
    pthread_mutex_lock(&cs->lock);
    while (cs->live > 0)
        pthread_cond_wait(&cs->cv, &cs->lock);
    pthread_mutex_unlock(&cs->lock);
}

static void chains_destroy(chain_set *cs)
{
    int i;

    for (i = 0; i < cs->o->producers; i++)
        free(cs->chains[i].body);
    pthread_mutex_destroy(&cs->lock);
    pthread_cond_destroy(&cs->cv);
    free(cs->chains);
    free(cs);
}

/* Start the sending threads; returns once all have warmed up. */
static sender_thread *senders_start(const bench_opts *o, lsmq_producer **ps, int n_clients,
                                    pthread_barrier_t *ready, pthread_barrier_t *go)
{
    sender_thread *ts = proto_xcalloc((size_t)o->producers, sizeof *ts);
    int i, rc;

    pthread_barrier_init(ready, NULL, (unsigned)o->producers + 1);
    pthread_barrier_init(go, NULL, (unsigned)o->producers + 1);
    for (i = 0; i < o->producers; i++) {
        sender_thread *t = &ts[i];

        t->index = i;
        t->o = o;
        t->p = ps[i % n_clients];
        t->ready = ready;
        t->go = go;
        pthread_mutex_init(&t->lock, NULL);
        pthread_cond_init(&t->cv, NULL);
        if ((rc = pthread_create(&t->tid, NULL, sender_main, t)) != 0)
            bench_die("pthread_create: %s", strerror(rc));
    }
    pthread_barrier_wait(ready);
    return ts;
}

/* Release the threads (clock started), join them and add up their counts. */
static void senders_finish(const bench_opts *o, sender_thread *ts, pthread_barrier_t *ready,
                           pthread_barrier_t *go, hist *lat, uint64_t *ok, uint64_t *not_ok,
                           uint64_t *errors, uint64_t *warm)
{
    int i;

    pthread_barrier_wait(go);
    for (i = 0; i < o->producers; i++) {
        pthread_join(ts[i].tid, NULL);
        *ok += ts[i].ok;
        *not_ok += ts[i].not_ok;
        *errors += ts[i].errors;
        *warm += ts[i].warm_ok;
        hist_merge(lat, &ts[i].lat);
        pthread_mutex_destroy(&ts[i].lock);
        pthread_cond_destroy(&ts[i].cv);
    }
    pthread_barrier_destroy(ready);
    pthread_barrier_destroy(go);
    free(ts);
}

static int run_produce(const bench_opts *o)
{
    int n_clients = o->clients > 0 && o->clients < o->producers ? o->clients : o->producers;
    lsmq_producer **ps = proto_xcalloc((size_t)n_clients, sizeof *ps);
    uint64_t ok = 0, not_ok = 0, errors = 0, warm = 0;
    hist *lat = proto_xcalloc(1, sizeof *lat);
    char group[96], lat_s[160], cpu_s[128];
    sender_thread *ts = NULL;
    chain_set *cs = NULL;
    pthread_barrier_t ready, go;
    cpu_mark c0, c1;
    double secs;
    int i;

    snprintf(group, sizeof group, "mqbench-produce-%d", (int)getpid());
    for (i = 0; i < n_clients; i++) {
        /* Room for every thread's window (or chain) on a shared producer. */
        int per = (o->producers + n_clients - 1) / n_clients;

        ps[i] = producer_open(o, group, o->async ? per * o->window + 16 : per + 16);
    }
    if (o->chained)
        cs = chains_create(o, ps, n_clients, lat, &warm);
    else
        ts = senders_start(o, ps, n_clients, &ready, &go);
    fprintf(stderr, "mqbench: %d %s producers on %d client(s), %zu B bodies\n", o->producers,
            o->chained ? "chained sync" : o->async ? "async" : "sync", n_clients, o->size);
    c0 = cpu_mark_take(o->broker_pids);
    deadline_ns = c0.t_ns + (uint64_t)(o->seconds * 1e9);
    if (cs) {
        chains_run(cs);
        ok = cs->ok;
        not_ok = cs->not_ok;
        errors = cs->errors;
        chains_destroy(cs);
    } else {
        senders_finish(o, ts, &ready, &go, lat, &ok, &not_ok, &errors, &warm);
    }
    c1 = cpu_mark_take(o->broker_pids);
    secs = (double)(c1.t_ns - c0.t_ns) / 1e9;
    hist_format(lat, lat_s, sizeof lat_s);
    cpu_format(&c0, &c1, cpu_s, sizeof cpu_s);
    printf("result mode=produce label=%s size=%zu producers=%d clients=%d send=%s window=%d "
           "ops=%" PRIu64 " not_ok=%" PRIu64 " errors=%" PRIu64 " warmup_msgs=%" PRIu64
           " secs=%.3f msgs_per_s=%.0f mb_per_s=%.1f%s%s\n",
           o->label, o->size, o->producers, n_clients,
           o->chained ? "chained" : o->async ? "async" : "sync", o->async ? o->window : 1, ok,
           not_ok, errors, warm, secs, (double)ok / secs, (double)ok * (double)o->size / secs / 1048576.0,
           lat_s, cpu_s);
    fflush(stdout);
    for (i = 0; i < n_clients; i++)
        lsmq_producer_destroy(ps[i]);
    free(lat);
    free(ps);
    return errors ? 1 : 0;
}

/* ==== Catch-up consumer ================================================== */

/* Progress of a consume run; the listener updates it from worker threads. */
static _Atomic uint64_t consumed, consumed_bytes, last_consume_ns;

static int consume_listener(const lsmq_message *m, void *arg)
{
    size_t len = 0;

    lsmq_message_body(m, &len);
    atomic_fetch_add_explicit(&consumed_bytes, len, memory_order_relaxed);
    atomic_store_explicit(&last_consume_ns, bench_now_ns(), memory_order_relaxed);
    atomic_fetch_add_explicit(&consumed, 1, memory_order_relaxed);
    return LSMQ_CONSUME_SUCCESS;
}

/* Has the run ended: count reached, idle after the first message, or capped? */
static int consume_done(const bench_opts *o, uint64_t t0)
{
    /* last before now: a listener may stamp a newer time in between. */
    uint64_t n = atomic_load(&consumed), last = atomic_load(&last_consume_ns), now = bench_now_ns();

    if (o->count > 0 && n >= o->count)
        return 1;
    if (n > 0 && now > last && now - last > (uint64_t)o->idle_ms * 1000000u)
        return 1;
    return now - t0 > (uint64_t)(o->seconds * 1e9);
}

/* The consumers below set *end when the run is over, before tearing down. */
static void consume_push(const bench_opts *o, const char *group, cpu_mark *end)
{
    lsmq_push_consumer *c = NULL;
    uint64_t t0 = bench_now_ns();
    int rc;

    if ((rc = lsmq_push_consumer_create(o->namesrv, group, &c)) != 0 ||
        (rc = lsmq_push_consumer_subscribe(c, o->topic, "*")) != 0 ||
        (rc = lsmq_push_consumer_set_consume_from(c, LSMQ_FROM_FIRST)) != 0 ||
        (rc = lsmq_push_consumer_set_threads(c, o->threads)) != 0 ||
        (rc = lsmq_push_consumer_set_listener(c, consume_listener, NULL)) != 0 ||
        (rc = lsmq_push_consumer_start(c)) != 0)
        bench_die("cannot start the push consumer: %s", push_error(c, rc));
    while (!consume_done(o, t0))
        usleep(2000);
    *end = cpu_mark_take(o->broker_pids);
    lsmq_push_consumer_destroy(c);
}

static void consume_pull(const bench_opts *o, const char *group, cpu_mark *end)
{
    lsmq_pull_consumer *c = NULL;
    lsmq_queue *qs = NULL;
    uint64_t t0 = bench_now_ns();
    size_t nq = 0, i;
    int rc;

    if ((rc = lsmq_pull_consumer_create(o->namesrv, group, &c)) != 0 ||
        (rc = lsmq_pull_consumer_set_consume_from(c, LSMQ_FROM_FIRST)) != 0 ||
        (rc = lsmq_pull_consumer_start(c)) != 0 ||
        (rc = lsmq_pull_consumer_queues(c, o->topic, &qs, &nq)) != 0 ||
        (rc = lsmq_pull_consumer_assign(c, qs, nq)) != 0)
        bench_die("cannot start the pull consumer: %s", pull_error(c, rc));
    for (i = 0; i < nq; i++)
        if ((rc = lsmq_pull_consumer_seek(c, &qs[i], LSMQ_OFFSET_FIRST)) != 0)
            bench_die("seek: %s", pull_error(c, rc));
    while (!consume_done(o, t0)) {
        lsmq_message **msgs = NULL;
        size_t n = 0;

        if ((rc = lsmq_pull_consumer_poll(c, 50, 1024, &msgs, &n)) != 0)
            bench_die("poll: %s", pull_error(c, rc));
        for (i = 0; i < n; i++)
            consume_listener(msgs[i], NULL);
        lsmq_messages_free(msgs, n);
    }
    *end = cpu_mark_take(o->broker_pids);
    free(qs);
    lsmq_pull_consumer_destroy(c);
}

static int run_consume(const bench_opts *o)
{
    char group[96], cpu_s[128];
    uint64_t n, bytes, t0, last;
    cpu_mark c0, c1;
    double secs;

    if (o->group)
        snprintf(group, sizeof group, "%s", o->group);
    else
        snprintf(group, sizeof group, "mqbench-consume-%d", (int)getpid());
    c0 = cpu_mark_take(o->broker_pids);
    t0 = c0.t_ns;
    if (o->push)
        consume_push(o, group, &c1);
    else
        consume_pull(o, group, &c1);
    n = atomic_load(&consumed);
    bytes = atomic_load(&consumed_bytes);
    last = atomic_load(&last_consume_ns);
    /* The rate up to the last message, not the idle wait that may follow it. */
    secs = (double)((n > 0 && last > t0 ? last : c1.t_ns) - t0) / 1e9;
    cpu_format(&c0, &c1, cpu_s, sizeof cpu_s);
    printf("result mode=consume label=%s consumer=%s threads=%d ops=%" PRIu64
           " expected=%" PRIu64 " secs=%.3f msgs_per_s=%.0f mb_per_s=%.1f%s\n",
           o->label, o->push ? "push" : "pull", o->push ? o->threads : 1, n, o->count, secs,
           (double)n / secs, (double)bytes / secs / 1048576.0, cpu_s);
    fflush(stdout);
    return o->count > 0 && n < o->count ? 1 : 0;
}

/* ==== Publish-to-consume latency ========================================= */

/*
 * Body layout of a latency message, little-endian host order (one process
 * writes and reads it): magic, phase (0 warm-up, 1 measured), sequence
 * number, send time in CLOCK_MONOTONIC ns; the rest is filler.
 */
#define LAT_MAGIC 0x4C5142514D42454EULL /* "NEBMQBQL" */
#define LAT_HEADER 32
#define LAT_MAX_QUEUES 1024

typedef struct lat_state {
    lsmq_producer *p;
    hist lat;
    _Atomic uint64_t received, warm_received, foreign, dups;
    _Atomic unsigned char *seen;      /* per measured sequence number */
    uint64_t n_planned;
    _Atomic unsigned char warm_queue_seen[LAT_MAX_QUEUES];
    unsigned char warm_queue_sent[LAT_MAX_QUEUES];   /* sending thread only */
    _Atomic uint64_t send_errors;
} lat_state;

static int latency_listener(const lsmq_message *m, void *arg)
{
    lat_state *st = arg;
    uint64_t now = bench_now_ns(), hdr[4];
    size_t len = 0;
    const void *body = lsmq_message_body(m, &len);

    if (len < LAT_HEADER) {
        atomic_fetch_add(&st->foreign, 1);
        return LSMQ_CONSUME_SUCCESS;
    }
    memcpy(hdr, body, sizeof hdr);
    if (hdr[0] != LAT_MAGIC) {
        atomic_fetch_add(&st->foreign, 1);
    } else if (hdr[1] == 0) {
        int32_t q = lsmq_message_queue_id(m);

        if (q >= 0 && q < LAT_MAX_QUEUES)
            atomic_store(&st->warm_queue_seen[q], 1);
        atomic_fetch_add(&st->warm_received, 1);
    } else if (hdr[2] < st->n_planned) {
        if (atomic_exchange(&st->seen[hdr[2]], 1)) {
            atomic_fetch_add(&st->dups, 1);
        } else {
            hist_add(&st->lat, now - hdr[3]);
            atomic_fetch_add(&st->received, 1);
        }
    } else {
        atomic_fetch_add(&st->foreign, 1);
    }
    return LSMQ_CONSUME_SUCCESS;
}

static void lat_stamp(unsigned char *body, uint64_t phase, uint64_t seq)
{
    uint64_t hdr[4] = {LAT_MAGIC, phase, seq, bench_now_ns()};

    memcpy(body, hdr, sizeof hdr);
}

static void latency_send_cb(int rc, const lsmq_send_result *res, void *arg)
{
    lat_state *st = arg;

    if (rc != 0) {
        log_send_error(rc, producer_error(st->p, rc));
        atomic_fetch_add(&st->send_errors, 1);
    }
}

/*
 * Send warm-up messages until the consumer has received one from every
 * queue a warm-up went to, and at least 2 s have passed (the consumer owns
 * every queue and its pulls are parked at the broker). Dies after 60 s.
 */
static void latency_warmup(const bench_opts *o, lsmq_producer *p, lat_state *st,
                           unsigned char *body)
{
    uint64_t t0 = bench_now_ns();
    lsmq_out_message m;
    lsmq_send_result res;
    int sent = 0;

    memset(&m, 0, sizeof m);
    m.topic = o->topic;
    m.body = body;
    m.body_len = o->size;
    for (;;) {
        int all = sent > 0, q;

        lat_stamp(body, 0, (uint64_t)sent);
        if (lsmq_producer_send(p, &m, &res) == 0) {
            sent++;
            if (res.queue_id >= 0 && res.queue_id < LAT_MAX_QUEUES)
                st->warm_queue_sent[res.queue_id] = 1;
        } else {
            fprintf(stderr, "mqbench: warm-up send failed: %s\n", producer_error(p, -1));
        }
        usleep(20000);
        for (q = 0; q < LAT_MAX_QUEUES; q++)
            if (st->warm_queue_sent[q] && !atomic_load(&st->warm_queue_seen[q]))
                all = 0;
        if (all && bench_now_ns() - t0 > 2000000000u)
            break;
        if (bench_now_ns() - t0 > 60000000000u)
            bench_die("the consumer received no warm-up message from some queue within 60 s");
    }
    fprintf(stderr, "mqbench: consumer ready after %d warm-up messages (%.1f s)\n", sent,
            (double)(bench_now_ns() - t0) / 1e9);
}

static int run_latency(const bench_opts *o)
{
    lat_state *st = proto_xcalloc(1, sizeof *st);
    lsmq_push_consumer *c = NULL;
    lsmq_producer *p;
    unsigned char *body = proto_xcalloc(1, o->size);
    uint64_t seed = 0x5DEECE66DULL, i, t0, t_end, t_wait, interval_ns, received;
    char group[96], lat_s[160], cpu_s[128];
    lsmq_out_message m;
    cpu_mark c0, c1;
    double send_secs;
    int rc;

    st->n_planned = (uint64_t)(o->rate * o->seconds);
    st->seen = proto_xcalloc(st->n_planned ? st->n_planned : 1, 1);
    if (o->group)
        snprintf(group, sizeof group, "%s", o->group);
    else
        snprintf(group, sizeof group, "mqbench-latency-%d", (int)getpid());
    if ((rc = lsmq_push_consumer_create(o->namesrv, group, &c)) != 0 ||
        (rc = lsmq_push_consumer_subscribe(c, o->topic, "*")) != 0 ||
        (rc = lsmq_push_consumer_set_consume_from(c, LSMQ_FROM_LAST)) != 0 ||
        (rc = lsmq_push_consumer_set_threads(c, o->threads)) != 0 ||
        (rc = lsmq_push_consumer_set_listener(c, latency_listener, st)) != 0 ||
        (rc = lsmq_push_consumer_start(c)) != 0)
        bench_die("cannot start the push consumer: %s", push_error(c, rc));
    p = producer_open(o, "mqbench-latency", 100000);
    st->p = p;
    body_fill(body, 0, o->size, &seed);
    latency_warmup(o, p, st, body);

    /* Sleep precisely: the default 50 us timer slack is half a tick at 10k/s. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    memset(&m, 0, sizeof m);
    m.topic = o->topic;
    m.body = body;
    m.body_len = o->size;
    interval_ns = (uint64_t)(1e9 / o->rate);
    c0 = cpu_mark_take(o->broker_pids);
    t0 = c0.t_ns;
    for (i = 0; i < st->n_planned; i++) {
        uint64_t due = t0 + i * interval_ns;

        if (bench_now_ns() < due)
            sleep_until_ns(due);
        lat_stamp(body, 1, i);
        if ((rc = lsmq_producer_send_async(p, &m, latency_send_cb, st)) != 0) {
            log_send_error(rc, producer_error(p, rc));
            atomic_fetch_add(&st->send_errors, 1);
        }
    }
    t_end = bench_now_ns();
    send_secs = (double)(t_end - t0) / 1e9;
    /* Wait up to 10 s for the stragglers. */
    t_wait = bench_now_ns();
    while (atomic_load(&st->received) + atomic_load(&st->send_errors) < st->n_planned &&
           bench_now_ns() - t_wait < 10000000000u)
        usleep(1000);
    c1 = cpu_mark_take(o->broker_pids);
    received = atomic_load(&st->received);
    hist_format(&st->lat, lat_s, sizeof lat_s);
    cpu_format(&c0, &c1, cpu_s, sizeof cpu_s);
    printf("result mode=latency label=%s size=%zu rate=%.0f secs=%.3f sent=%" PRIu64
           " send_rate=%.0f send_errors=%" PRIu64 " received=%" PRIu64 " lost=%" PRIu64
           " dups=%" PRIu64 "%s%s\n",
           o->label, o->size, o->rate, send_secs, st->n_planned,
           (double)st->n_planned / send_secs, (uint64_t)atomic_load(&st->send_errors), received,
           st->n_planned - received, (uint64_t)atomic_load(&st->dups), lat_s, cpu_s);
    fflush(stdout);
    lsmq_producer_destroy(p);
    lsmq_push_consumer_destroy(c);
    rc = received < st->n_planned ? 1 : 0;
    free(st->seen);
    free(st);
    free(body);
    return rc;
}

/* ==== Main =============================================================== */

static void usage(void)
{
    fprintf(stderr,
            "usage: mqbench produce -n NAMESRV -t TOPIC [--producers N] [--clients K]\n"
            "                       [--size B] [--count N | --seconds S]\n"
            "                       [--async [--window W] | --chained]\n"
            "                       [--warmup N] [--timeout MS] [--deliver-in MS]\n"
            "       mqbench consume -n NAMESRV -t TOPIC [--consumer push|pull] [--threads T]\n"
            "                       [--count N] [--idle-ms MS] [--seconds S] [--group G]\n"
            "       mqbench latency -n NAMESRV -t TOPIC --rate R --seconds S [--size B]\n"
            "                       [--threads T] [--group G]\n"
            "  common: [--label TEXT] [--broker-pid PID[,PID...]] (report the brokers' CPU use)\n");
    mqbench_timer_usage();
}

static int parse_args(int argc, char **argv, bench_opts *o)
{
    static const struct option longs[] = {
        {"namesrv", required_argument, NULL, 'n'},  {"topic", required_argument, NULL, 't'},
        {"group", required_argument, NULL, 'g'},    {"label", required_argument, NULL, 'L'},
        {"producers", required_argument, NULL, 'P'}, {"clients", required_argument, NULL, 'C'},
        {"size", required_argument, NULL, 's'},     {"count", required_argument, NULL, 'c'},
        {"seconds", required_argument, NULL, 'S'},  {"async", no_argument, NULL, 'a'},
        {"window", required_argument, NULL, 'w'},   {"warmup", required_argument, NULL, 'W'},
        {"consumer", required_argument, NULL, 'k'}, {"threads", required_argument, NULL, 'T'},
        {"idle-ms", required_argument, NULL, 'i'},  {"rate", required_argument, NULL, 'r'},
        {"timeout", required_argument, NULL, 'o'},  {"broker-pid", required_argument, NULL, 'B'},
        {"chained", no_argument, NULL, 'X'},        {"help", no_argument, NULL, 'h'},
        {"deliver-in", required_argument, NULL, 'D'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    memset(o, 0, sizeof *o);
    if (argc < 2)
        return -1;
    if (strcmp(argv[1], "produce") == 0)
        o->mode = MODE_PRODUCE;
    else if (strcmp(argv[1], "consume") == 0)
        o->mode = MODE_CONSUME;
    else if (strcmp(argv[1], "latency") == 0)
        o->mode = MODE_LATENCY;
    else
        return -1;
    o->label = "-";
    o->producers = 1;
    o->clients = 1;
    o->size = 1024;
    o->window = 64;
    o->warmup = 10;
    o->push = 1;
    o->threads = 4;
    o->idle_ms = 2000;
    o->timeout_ms = 3000;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "n:t:g:c:s:h", longs, NULL)) != -1) {
        switch (ch) {
        case 'n': o->namesrv = optarg; break;
        case 't': o->topic = optarg; break;
        case 'g': o->group = optarg; break;
        case 'L': o->label = optarg; break;
        case 'P': o->producers = atoi(optarg); break;
        case 'C': o->clients = atoi(optarg); break;
        case 's': o->size = (size_t)strtoull(optarg, NULL, 10); break;
        case 'c': o->count = strtoull(optarg, NULL, 10); break;
        case 'S': o->seconds = atof(optarg); break;
        case 'a': o->async = 1; break;
        case 'X': o->chained = 1; break;
        case 'w': o->window = atoi(optarg); break;
        case 'W': o->warmup = atoi(optarg); break;
        case 'k':
            if (strcmp(optarg, "push") == 0)
                o->push = 1;
            else if (strcmp(optarg, "pull") == 0)
                o->push = 0;
            else
                return -1;
            break;
        case 'T': o->threads = atoi(optarg); break;
        case 'i': o->idle_ms = atoi(optarg); break;
        case 'r': o->rate = atof(optarg); break;
        case 'o': o->timeout_ms = atoi(optarg); break;
        case 'B': o->broker_pids = optarg; break;
        case 'D': o->deliver_in_ms = strtoll(optarg, NULL, 10); break;
        default: return -1;
        }
    }
    if (!o->namesrv || !o->topic || optind != argc || o->producers < 1 || o->producers > 4096 ||
        o->clients < 0 || o->size < 1 || o->size > 4u << 20 || o->window < 1 ||
        o->warmup < 0 || o->threads < 1 || o->threads > 64 || o->idle_ms < 1 ||
        o->timeout_ms < 1 || strchr(o->label, ' '))
        return -1;
    switch (o->mode) {
    case MODE_PRODUCE:
        if ((o->count == 0) == (o->seconds <= 0) || (o->async && o->chained))
            return -1; /* exactly one of --count and --seconds */
        break;
    case MODE_CONSUME:
        if (o->seconds <= 0)
            o->seconds = 600;
        break;
    case MODE_LATENCY:
        if (o->rate <= 0 || o->seconds <= 0 || o->size < LAT_HEADER)
            return -1;
        break;
    }
    return 0;
}

int main(int argc, char **argv)
{
    bench_init("mqbench", 2);
    bench_opts o;

    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage();
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "timer") == 0)
        return mqbench_timer_main(argc, argv);
    if (parse_args(argc, argv, &o) != 0) {
        usage();
        return 2;
    }
    switch (o.mode) {
    case MODE_PRODUCE: return run_produce(&o);
    case MODE_CONSUME: return run_consume(&o);
    case MODE_LATENCY: return run_latency(&o);
    }
    return 2;
}
