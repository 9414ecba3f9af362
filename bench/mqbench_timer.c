/*
 * mqbench timer: delayed delivery (5.x timer messages, TIMER_DELIVER_MS)
 * through liblsmq. bench/timer_bench.sh runs it against mqbroker and
 * upstream RocketMQ; figures are in bench/RESULTS.md, "Delayed delivery".
 *
 *   mqbench timer -n NAMESRV -t TOPIC --rate R --seconds S [--lead-ms L]
 *   mqbench timer -n NAMESRV -t TOPIC --burst N --plain-topic T2 [--lead-ms L]
 *                 [--plain-producers P] [--window W (timed sends in flight, 256)]
 *   common: [--size B] [--threads T] [--drain-s D] [--label TEXT] [--timeout MS]
 *
 * A push consumer subscribes first and is warmed up with plain messages
 * until it has received one from every queue. Every timed message carries
 * its due time (ms since the epoch) as TIMER_DELIVER_MS and in its body;
 * the listener takes lateness = receive wall clock (CLOCK_REALTIME) minus
 * that due time. Broker and client share the machine's clock, so a negative
 * lateness is a message delivered early.
 *
 * rate   R messages fall due per second for S seconds, due times spread
 *        evenly; each is sent asynchronously --lead-ms (default 2000) before
 *        its due time, so the lateness measures delivery, not sending
 *        (send_lag_max_ms says how far sending fell behind its schedule;
 *        past the lead time it would count too).
 * burst  N messages all due at the same millisecond, --lead-ms after the
 *        start (the sends must finish before it: sent_before_due says whether
 *        they did). moves_per_s is N over the time from the first to the last
 *        delivery. Meanwhile --plain-producers threads send plain messages
 *        synchronously to --plain-topic from the end of the timed sends until
 *        the burst is delivered and 2 s more; their rate and p99 send time
 *        before the due time and during the burst show whether sends starve.
 *
 * Output: one line on stdout, "result mode=timer ...", lateness in ms from
 * exact order statistics (p50, p90, p99, max, and min: most early), early =
 * deliveries before the due time, lost = timed messages not received within
 * --drain-s (default 10) after the last due time. Exit status 0, 1 when some
 * were lost or early or sends failed, 2 on bad usage.
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
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "bench_util.h"
#include "clock.h"
#include "lsmq.h"
#include "mqbench_timer.h"

typedef struct timer_opts {
    const char *namesrv, *topic, *plain_topic, *label;
    double rate, seconds;
    uint64_t burst;
    int64_t lead_ms;
    size_t size;
    int threads, plain_producers, window, timeout_ms, drain_s;
} timer_opts;

/*
 * Body header, host order (one process writes and reads it): magic, run id
 * and phase (run << 8 | phase: 0 warm-up, 1 timed, 2 plain), sequence
 * number, due time. A new group may start at a queue's first offset (as
 * upstream's CONSUME_FROM_LAST_OFFSET does while the queue is young): the
 * run id keeps an earlier run's messages out of the figures.
 */
#define TB_MAGIC 0x52454D4954514D42ULL /* "BMQTIMER" */
#define TB_HEADER 32
#define TB_MAX_QUEUES 1024
/* Plain send times, 1 ms buckets up to 10 s, per phase of the burst. */
#define TB_LAT_BUCKETS 10001

enum plain_phase { PHASE_BEFORE, PHASE_DURING, PHASE_AFTER, PHASE_N };

typedef struct timer_state {
    const timer_opts *o;
    uint64_t n;                            /* timed messages planned */
    _Atomic unsigned char *seen;           /* per sequence number */
    int32_t *late_us;                      /* per sequence number, once seen */
    _Atomic uint64_t received, dups, foreign, warm_received;
    _Atomic int64_t first_recv_ns, last_recv_ns;
    _Atomic int64_t all_received_ns;       /* 0 until received == n */
    _Atomic unsigned char warm_seen[TB_MAX_QUEUES];
    unsigned char warm_sent[TB_MAX_QUEUES];
    _Atomic uint64_t send_ok, send_not_ok, send_errors;
    _Atomic int first_error_logged;
    lsmq_producer *p;
    /* timed sends in flight: a window of our own, as mqbench produce --async keeps */
    pthread_mutex_t lock;
    pthread_cond_t cv;
    int inflight;
    /* burst: the plain producers */
    int64_t due_ms;                        /* the burst's due time */
    _Atomic int plain_stop;
    _Atomic uint64_t plain_ok[PHASE_N], plain_errors;
    _Atomic uint32_t plain_lat_ms[PHASE_N][TB_LAT_BUCKETS];
} timer_state;

static _Thread_local char err_text[512];

static int64_t wall_ns(void) { return proto_wall_ns(); }

static void sleep_until_wall_ns(int64_t t)
{
    struct timespec ts = {(time_t)(t / 1000000000), (long)(t % 1000000000)};

    while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static void atomic_min_i64(_Atomic int64_t *a, int64_t v)
{
    int64_t cur = atomic_load(a);

    while ((cur == 0 || v < cur) && !atomic_compare_exchange_weak(a, &cur, v))
        ;
}

static void atomic_max_i64(_Atomic int64_t *a, int64_t v)
{
    int64_t cur = atomic_load(a);

    while (v > cur && !atomic_compare_exchange_weak(a, &cur, v))
        ;
}

/* Bodies differ per message and compress about 2:1, as mqbench produce's. */
static void body_filler(unsigned char *body, size_t len, uint64_t seed)
{
    size_t half = (len - TB_HEADER) / 2, i;

    for (i = 0; i < half; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        body[TB_HEADER + i] = (unsigned char)seed;
    }
    memcpy(body + TB_HEADER + half, body + TB_HEADER, half);
    if ((len - TB_HEADER) % 2)
        body[len - 1] = 'x';
}

static uint64_t run_id;

static void stamp(unsigned char *body, uint64_t phase, uint64_t seq, int64_t due_ms)
{
    uint64_t hdr[4] = {TB_MAGIC, run_id << 8 | phase, seq, (uint64_t)due_ms};

    memcpy(body, hdr, sizeof hdr);
}

/* ==== Consumer =========================================================== */

static void record_timed(timer_state *st, uint64_t seq, int64_t due_ms, int64_t now)
{
    int64_t d_ns = now - due_ms * 1000000, us;
    uint64_t got;

    if (atomic_exchange(&st->seen[seq], 1)) {
        atomic_fetch_add(&st->dups, 1);
        return;
    }
    /* Floor division: any delivery before the due time stays negative. */
    us = d_ns >= 0 ? d_ns / 1000 : -((-d_ns + 999) / 1000);
    if (us > INT32_MAX)
        us = INT32_MAX;
    if (us < -INT32_MAX)
        us = -INT32_MAX;
    st->late_us[seq] = (int32_t)us;
    atomic_min_i64(&st->first_recv_ns, now);
    atomic_max_i64(&st->last_recv_ns, now);
    got = atomic_fetch_add(&st->received, 1) + 1;
    if (got == st->n)
        atomic_store(&st->all_received_ns, now);
}

static int timer_listener(const lsmq_message *m, void *arg)
{
    timer_state *st = arg;
    int64_t now = wall_ns();
    uint64_t hdr[4];
    size_t len = 0;
    const void *body = lsmq_message_body(m, &len);

    if (len < TB_HEADER) {
        atomic_fetch_add(&st->foreign, 1);
        return LSMQ_CONSUME_SUCCESS;
    }
    memcpy(hdr, body, sizeof hdr);
    if (hdr[0] != TB_MAGIC || hdr[1] >> 8 != run_id) {
        atomic_fetch_add(&st->foreign, 1);
    } else if ((hdr[1] & 0xFF) == 0) {
        int32_t q = lsmq_message_queue_id(m);

        if (q >= 0 && q < TB_MAX_QUEUES)
            atomic_store(&st->warm_seen[q], 1);
        atomic_fetch_add(&st->warm_received, 1);
    } else if ((hdr[1] & 0xFF) == 1 && hdr[2] < st->n) {
        record_timed(st, hdr[2], (int64_t)hdr[3], now);
    } else {
        atomic_fetch_add(&st->foreign, 1);
    }
    return LSMQ_CONSUME_SUCCESS;
}

static lsmq_push_consumer *consumer_start(const timer_opts *o, timer_state *st)
{
    lsmq_push_consumer *c = NULL;
    char group[96];
    int rc;

    snprintf(group, sizeof group, "mqbench-timer-%d", (int)getpid());
    if ((rc = lsmq_push_consumer_create(o->namesrv, group, &c)) != 0 ||
        (rc = lsmq_push_consumer_subscribe(c, o->topic, "*")) != 0 ||
        (rc = lsmq_push_consumer_set_consume_from(c, LSMQ_FROM_LAST)) != 0 ||
        (rc = lsmq_push_consumer_set_threads(c, o->threads)) != 0 ||
        (rc = lsmq_push_consumer_set_listener(c, timer_listener, st)) != 0 ||
        (rc = lsmq_push_consumer_start(c)) != 0) {
        if (c != NULL)
            lsmq_push_consumer_last_error(c, err_text, sizeof err_text);
        bench_die("cannot start the push consumer: %s", c ? err_text : lsmq_strerror(rc));
    }
    return c;
}

/*
 * Plain warm-up sends until the consumer has received one from every queue
 * they went to and 2 s have passed (its pulls are parked at the broker).
 */
static void warmup(const timer_opts *o, timer_state *st, unsigned char *body)
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

        stamp(body, 0, (uint64_t)sent, 0);
        if (lsmq_producer_send(st->p, &m, &res) == 0) {
            sent++;
            if (res.queue_id >= 0 && res.queue_id < TB_MAX_QUEUES)
                st->warm_sent[res.queue_id] = 1;
        }
        usleep(20000);
        for (q = 0; q < TB_MAX_QUEUES; q++)
            if (st->warm_sent[q] && !atomic_load(&st->warm_seen[q]))
                all = 0;
        if (all && bench_now_ns() - t0 > 2000000000u)
            break;
        if (bench_now_ns() - t0 > 60000000000u)
            bench_die("the consumer received no warm-up message from some queue within 60 s");
    }
    fprintf(stderr, "mqbench: consumer ready after %d warm-up messages (%.1f s)\n", sent,
            (double)(bench_now_ns() - t0) / 1e9);
}

/* ==== Timed sends ======================================================== */

static void timed_send_cb(int rc, const lsmq_send_result *res, void *arg)
{
    timer_state *st = arg;

    pthread_mutex_lock(&st->lock);
    st->inflight--;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->lock);
    if (rc != 0) {
        if (atomic_exchange(&st->first_error_logged, 1) == 0) {
            lsmq_producer_last_error(st->p, err_text, sizeof err_text);
            fprintf(stderr, "mqbench: timed send failed: %s (%s); later ones are only counted\n",
                    err_text, lsmq_strerror(rc));
        }
        atomic_fetch_add(&st->send_errors, 1);
    } else if (res != NULL && res->status != LSMQ_SEND_OK) {
        atomic_fetch_add(&st->send_not_ok, 1);
    } else {
        atomic_fetch_add(&st->send_ok, 1);
    }
}

static void send_timed(timer_state *st, unsigned char *body, uint64_t seq, int64_t due_ms)
{
    const timer_opts *o = st->o;
    lsmq_out_message m;
    int rc;

    memset(&m, 0, sizeof m);
    m.topic = o->topic;
    m.body = body;
    m.body_len = o->size;
    m.deliver_ms = due_ms;
    stamp(body, 1, seq, due_ms);
    pthread_mutex_lock(&st->lock);
    while (st->inflight >= o->window)
        pthread_cond_wait(&st->cv, &st->lock);
    st->inflight++;
    pthread_mutex_unlock(&st->lock);
    if ((rc = lsmq_producer_send_async(st->p, &m, timed_send_cb, st)) != 0)
        timed_send_cb(rc, NULL, st);
}

/* All answered (or failed), at most 60 s. */
static void wait_answers(timer_state *st)
{
    uint64_t t0 = bench_now_ns();

    while (atomic_load(&st->send_ok) + atomic_load(&st->send_not_ok) +
                   atomic_load(&st->send_errors) < st->n &&
           bench_now_ns() - t0 < 60000000000u)
        usleep(1000);
}

/* Until every timed message arrived or drain_s after last_due_ms. */
static void wait_received(timer_state *st, int64_t last_due_ms)
{
    int64_t until = (last_due_ms + (int64_t)st->o->drain_s * 1000) * 1000000;

    while (atomic_load(&st->received) + atomic_load(&st->send_errors) < st->n &&
           wall_ns() < until)
        usleep(1000);
}

/* ==== Results ============================================================ */

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

    return (x > y) - (x < y);
}

/*
 * Append lateness order statistics (ms) and the early count to out;
 * returns the number of early deliveries.
 */
static uint64_t lateness_format(timer_state *st, char *out, size_t cap)
{
    uint64_t i, k = 0, early = 0;
    int32_t *v = proto_xcalloc(st->n ? st->n : 1, sizeof *v);

    for (i = 0; i < st->n; i++)
        if (atomic_load(&st->seen[i])) {
            v[k] = st->late_us[i];
            early += v[k] < 0;
            k++;
        }
    if (k == 0) {
        snprintf(out, cap, " early=0");
        free(v);
        return 0;
    }
    qsort(v, k, sizeof *v, cmp_i32);
#define AT(q) ((double)v[(uint64_t)((q) * (double)(k - 1) + 0.5)] / 1000.0)
    snprintf(out, cap,
             " early=%" PRIu64 " min_ms=%.3f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f"
             " p999_ms=%.3f max_ms=%.3f",
             early, (double)v[0] / 1000.0, AT(0.50), AT(0.90), AT(0.99), AT(0.999),
             (double)v[k - 1] / 1000.0);
#undef AT
    free(v);
    return early;
}

/* The p99 of one phase's plain send times, ms (1 ms buckets). */
static int plain_p99(timer_state *st, int ph)
{
    uint64_t total = 0, seen = 0, rank;
    int i;

    for (i = 0; i < TB_LAT_BUCKETS; i++)
        total += atomic_load(&st->plain_lat_ms[ph][i]);
    if (total == 0)
        return 0;
    rank = (total * 99 + 99) / 100;
    for (i = 0; i < TB_LAT_BUCKETS; i++) {
        seen += atomic_load(&st->plain_lat_ms[ph][i]);
        if (seen >= rank)
            return i;
    }
    return TB_LAT_BUCKETS - 1;
}

/* ==== Rate schedule ====================================================== */

static int run_rate(const timer_opts *o, timer_state *st, unsigned char *body)
{
    int64_t first_due_ms, last_due_ms = 0, lag_max_ns = 0;
    uint64_t i, received, early;
    char lat_s[256];
    bench_cpu_mark c0, c1;
    double span;

    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    c0 = bench_cpu_mark_now();
    first_due_ms = wall_ns() / 1000000 + o->lead_ms + 200;
    for (i = 0; i < st->n; i++) {
        int64_t due_ms = first_due_ms + (int64_t)((double)i * 1000.0 / o->rate);
        int64_t send_at = (due_ms - o->lead_ms) * 1000000, now = wall_ns();

        if (now < send_at)
            sleep_until_wall_ns(send_at);
        else if (now - send_at > lag_max_ns)
            lag_max_ns = now - send_at;
        send_timed(st, body, i, due_ms);
        last_due_ms = due_ms;
    }
    wait_answers(st);
    wait_received(st, last_due_ms);
    c1 = bench_cpu_mark_now();
    received = atomic_load(&st->received);
    early = lateness_format(st, lat_s, sizeof lat_s);
    span = (double)(atomic_load(&st->last_recv_ns) - atomic_load(&st->first_recv_ns)) / 1e9;
    printf("result mode=timer kind=rate label=%s size=%zu rate=%.0f secs=%.0f lead_ms=%" PRId64
           " sent=%" PRIu64 " send_ok=%" PRIu64 " send_not_ok=%" PRIu64 " send_errors=%" PRIu64
           " send_lag_max_ms=%.1f received=%" PRIu64 " lost=%" PRIu64 " dups=%" PRIu64
           " foreign=%" PRIu64 " deliver_per_s=%.0f%s cpu_pct=%.0f others_pct=%.0f\n",
           o->label, o->size, o->rate, o->seconds, o->lead_ms, st->n,
           (uint64_t)atomic_load(&st->send_ok), (uint64_t)atomic_load(&st->send_not_ok),
           (uint64_t)atomic_load(&st->send_errors), (double)lag_max_ns / 1e6, received,
           st->n - received, (uint64_t)atomic_load(&st->dups),
           (uint64_t)atomic_load(&st->foreign),
           span > 0 ? (double)(received - 1) / span : 0.0, lat_s,
           100 * bench_cpu_self_cores(&c0, &c1), bench_cpu_other_pct(&c0, &c1));
    fflush(stdout);
    return received < st->n || early > 0 || atomic_load(&st->send_errors) > 0 ? 1 : 0;
}

/* ==== Burst ============================================================== */

typedef struct plain_thread {
    pthread_t tid;
    timer_state *st;
    lsmq_producer *p;
    int index;
} plain_thread;

static int plain_phase_now(timer_state *st, int64_t now)
{
    if (atomic_load(&st->all_received_ns) != 0)
        return PHASE_AFTER;
    return now >= st->due_ms * 1000000 ? PHASE_DURING : PHASE_BEFORE;
}

static void *plain_main(void *arg)
{
    plain_thread *t = arg;
    timer_state *st = t->st;
    unsigned char *body = proto_xcalloc(1, st->o->size);
    lsmq_out_message m;
    uint64_t seq = 0;

    body_filler(body, st->o->size, 0xA5A5A5A5ULL + (uint64_t)t->index);
    memset(&m, 0, sizeof m);
    m.topic = st->o->plain_topic;
    m.body = body;
    m.body_len = st->o->size;
    while (!atomic_load(&st->plain_stop)) {
        int64_t t0 = wall_ns(), t1;
        lsmq_send_result res;
        uint64_t ms;

        stamp(body, 2, seq++, 0);
        if (lsmq_producer_send(t->p, &m, &res) != 0 || res.status != LSMQ_SEND_OK) {
            atomic_fetch_add(&st->plain_errors, 1);
            continue;
        }
        t1 = wall_ns();
        ms = (uint64_t)(t1 - t0) / 1000000;
        int ph = plain_phase_now(st, t1);

        atomic_fetch_add(&st->plain_ok[ph], 1);
        atomic_fetch_add(&st->plain_lat_ms[ph][ms < TB_LAT_BUCKETS ? ms : TB_LAT_BUCKETS - 1], 1);
    }
    free(body);
    return NULL;
}

static lsmq_producer *producer_new(const timer_opts *o, const char *group, int inflight)
{
    lsmq_producer *p = NULL;
    int rc;

    if ((rc = lsmq_producer_create(o->namesrv, group, &p)) != 0 ||
        (rc = lsmq_producer_set_send_timeout(p, o->timeout_ms)) != 0 ||
        (rc = lsmq_producer_set_max_async_inflight(p, inflight)) != 0 ||
        (rc = lsmq_producer_start(p)) != 0) {
        if (p != NULL)
            lsmq_producer_last_error(p, err_text, sizeof err_text);
        bench_die("cannot start a producer: %s", p ? err_text : lsmq_strerror(rc));
    }
    return p;
}

static int run_burst(const timer_opts *o, timer_state *st, unsigned char *body)
{
    plain_thread *pt = proto_xcalloc((size_t)o->plain_producers, sizeof *pt);
    lsmq_producer *pp = producer_new(o, "mqbench-timer-plain", 16);
    int64_t t_plain0, t_sent, due_ns, t_all, t_stop;
    uint64_t i, received, early;
    char lat_s[256];
    bench_cpu_mark c0, c1;
    double span, before_s, during_s;
    int k;

    st->due_ms = wall_ns() / 1000000 + o->lead_ms;
    due_ns = st->due_ms * 1000000;
    c0 = bench_cpu_mark_now();
    for (i = 0; i < st->n; i++)
        send_timed(st, body, i, st->due_ms);
    wait_answers(st);
    t_sent = wall_ns();
    fprintf(stderr, "mqbench: %" PRIu64 " timed sends answered %.1f s %s the due time\n", st->n,
            (double)llabs(due_ns - t_sent) / 1e9, t_sent <= due_ns ? "before" : "AFTER");
    /* Plain sends from now on; one warm-up send resolves the route first. */
    {
        lsmq_out_message m;

        memset(&m, 0, sizeof m);
        m.topic = o->plain_topic;
        m.body = body;
        m.body_len = o->size;
        if (lsmq_producer_send(pp, &m, NULL) != 0)
            bench_die("the plain topic %s takes no sends", o->plain_topic);
    }
    t_plain0 = wall_ns();
    for (k = 0; k < o->plain_producers; k++) {
        pt[k].st = st;
        pt[k].p = pp;
        pt[k].index = k;
        if (pthread_create(&pt[k].tid, NULL, plain_main, &pt[k]) != 0)
            bench_die("pthread_create failed");
    }
    wait_received(st, st->due_ms);
    t_all = atomic_load(&st->all_received_ns);
    t_stop = (t_all ? t_all : wall_ns()) + 2000000000;
    if (wall_ns() < t_stop)
        sleep_until_wall_ns(t_stop);
    atomic_store(&st->plain_stop, 1);
    for (k = 0; k < o->plain_producers; k++)
        pthread_join(pt[k].tid, NULL);
    c1 = bench_cpu_mark_now();
    received = atomic_load(&st->received);
    early = lateness_format(st, lat_s, sizeof lat_s);
    span = (double)(atomic_load(&st->last_recv_ns) - atomic_load(&st->first_recv_ns)) / 1e9;
    before_s = (double)(due_ns - t_plain0) / 1e9;
    during_s = (double)((t_all ? t_all : atomic_load(&st->last_recv_ns)) - due_ns) / 1e9;
    printf("result mode=timer kind=burst label=%s size=%zu burst=%" PRIu64 " lead_ms=%" PRId64
           " send_ok=%" PRIu64 " send_not_ok=%" PRIu64 " send_errors=%" PRIu64
           " sent_before_due=%d sent_margin_s=%.1f received=%" PRIu64 " lost=%" PRIu64
           " dups=%" PRIu64 " move_secs=%.3f moves_per_s=%.0f plain_producers=%d"
           " plain_before_per_s=%.0f plain_during_per_s=%.0f plain_before_p99_ms=%d"
           " plain_during_p99_ms=%d plain_errors=%" PRIu64 "%s cpu_pct=%.0f others_pct=%.0f\n",
           o->label, o->size, st->n, o->lead_ms, (uint64_t)atomic_load(&st->send_ok),
           (uint64_t)atomic_load(&st->send_not_ok), (uint64_t)atomic_load(&st->send_errors),
           t_sent <= due_ns, (double)(due_ns - t_sent) / 1e9, received, st->n - received,
           (uint64_t)atomic_load(&st->dups), span, span > 0 ? (double)(received - 1) / span : 0.0,
           o->plain_producers,
           before_s > 0 ? (double)atomic_load(&st->plain_ok[PHASE_BEFORE]) / before_s : 0.0,
           during_s > 0 ? (double)atomic_load(&st->plain_ok[PHASE_DURING]) / during_s : 0.0,
           plain_p99(st, PHASE_BEFORE), plain_p99(st, PHASE_DURING),
           (uint64_t)atomic_load(&st->plain_errors), lat_s,
           100 * bench_cpu_self_cores(&c0, &c1), bench_cpu_other_pct(&c0, &c1));
    fflush(stdout);
    lsmq_producer_destroy(pp);
    free(pt);
    return received < st->n || early > 0 || atomic_load(&st->send_errors) > 0 ? 1 : 0;
}

/* ==== Options and entry ================================================== */

static int parse(int argc, char **argv, timer_opts *o)
{
    static const struct option longs[] = {
        {"namesrv", required_argument, NULL, 'n'},   {"topic", required_argument, NULL, 't'},
        {"rate", required_argument, NULL, 'r'},      {"seconds", required_argument, NULL, 'S'},
        {"burst", required_argument, NULL, 'b'},     {"lead-ms", required_argument, NULL, 'l'},
        {"size", required_argument, NULL, 's'},      {"threads", required_argument, NULL, 'T'},
        {"drain-s", required_argument, NULL, 'd'},   {"label", required_argument, NULL, 'L'},
        {"timeout", required_argument, NULL, 'o'},   {"window", required_argument, NULL, 'w'},
        {"plain-topic", required_argument, NULL, 'p'},
        {"plain-producers", required_argument, NULL, 'P'},
        {NULL, 0, NULL, 0},
    };
    int ch;

    memset(o, 0, sizeof *o);
    o->label = "-";
    o->lead_ms = 2000;
    o->size = 1024;
    o->threads = 4;
    o->plain_producers = 4;
    o->window = 256;
    o->timeout_ms = 10000;
    o->drain_s = 10;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "n:t:", longs, NULL)) != -1) {
        switch (ch) {
        case 'n': o->namesrv = optarg; break;
        case 't': o->topic = optarg; break;
        case 'r': o->rate = atof(optarg); break;
        case 'S': o->seconds = atof(optarg); break;
        case 'b': o->burst = strtoull(optarg, NULL, 10); break;
        case 'l': o->lead_ms = strtoll(optarg, NULL, 10); break;
        case 's': o->size = (size_t)strtoull(optarg, NULL, 10); break;
        case 'T': o->threads = atoi(optarg); break;
        case 'd': o->drain_s = atoi(optarg); break;
        case 'L': o->label = optarg; break;
        case 'o': o->timeout_ms = atoi(optarg); break;
        case 'w': o->window = atoi(optarg); break;
        case 'p': o->plain_topic = optarg; break;
        case 'P': o->plain_producers = atoi(optarg); break;
        default: return -1;
        }
    }
    if (!o->namesrv || !o->topic || optind != argc || o->size < TB_HEADER ||
        o->size > 4u << 20 || o->threads < 1 || o->threads > 64 || o->lead_ms < 0 ||
        o->window < 1 || o->timeout_ms < 1 || o->drain_s < 0 || strchr(o->label, ' '))
        return -1;
    if (o->burst > 0)
        return o->rate > 0 || !o->plain_topic || o->plain_producers < 1 ? -1 : 0;
    return o->rate > 0 && o->seconds > 0 ? 0 : -1;
}

void mqbench_timer_usage(void)
{
    fprintf(stderr,
            "       mqbench timer -n NAMESRV -t TOPIC --rate R --seconds S [--lead-ms L]\n"
            "       mqbench timer -n NAMESRV -t TOPIC --burst N --plain-topic T2\n"
            "                     [--plain-producers P] [--window W] [--lead-ms L]\n"
            "         timer common: [--size B] [--threads T] [--drain-s D] [--label TEXT]\n"
            "                       [--timeout MS]\n");
}

int mqbench_timer_main(int argc, char **argv)
{
    timer_opts o;
    timer_state *st;
    lsmq_push_consumer *c;
    unsigned char *body;
    int rc;

    if (parse(argc, argv, &o) != 0) {
        mqbench_timer_usage();
        return 2;
    }
    run_id = ((uint64_t)wall_ns() ^ (uint64_t)getpid() << 32) & 0xFFFFFFFFFFFFFFULL;
    st = proto_xcalloc(1, sizeof *st);
    st->o = &o;
    if (o.burst == 0)
        o.window = 1 << 30; /* on a schedule: a stall shows as lateness, not as a wait */
    pthread_mutex_init(&st->lock, NULL);
    pthread_cond_init(&st->cv, NULL);
    st->n = o.burst > 0 ? o.burst : (uint64_t)(o.rate * o.seconds);
    st->seen = proto_xcalloc(st->n, 1);
    st->late_us = proto_xcalloc(st->n, sizeof *st->late_us);
    body = proto_xcalloc(1, o.size);
    body_filler(body, o.size, 0x5DEECE66DULL);
    c = consumer_start(&o, st);
    st->p = producer_new(&o, "mqbench-timer", 100000);
    warmup(&o, st, body);
    rc = o.burst > 0 ? run_burst(&o, st, body) : run_rate(&o, st, body);
    lsmq_producer_destroy(st->p);
    lsmq_push_consumer_destroy(c);
    free(body);
    free(st->late_us);
    free((void *)st->seen);
    free(st);
    return rc;
}
