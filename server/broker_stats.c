/*
 * Put and get counters for GET_BROKER_RUNTIME_INFO (REMOTING.md §3.10).
 * Puts are counted where they become durable: an engine commit hook on the
 * writer thread adds each batch's message count, so sends, batches and
 * send-backs are all seen without the handlers' help. Gets are counted by
 * the pull code through broker_stats_count_get. A 10 s timer on the loop
 * samples both totals for the 10 s / 1 min / 10 min rates and rolls the
 * "morning" totals over at local midnight, as the Java broker reports them.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "broker_internal.h"
#include "log.h"
#include "clock.h"

#define SAMPLE_INTERVAL_S 10.0
#define SAMPLES 61 /* ten minutes of 10 s samples, plus the newest */

typedef struct sample {
    double at;          /* ev_now */
    uint64_t puts, gets;
} sample;

struct broker_stats {
    broker_ctx *ctx;
    _Atomic uint64_t puts;  /* written by the writer thread */
    uint64_t gets;          /* loop thread */
    int64_t boot_ms;
    uint64_t put_today_morning, get_today_morning;
    uint64_t put_yesterday_morning, get_yesterday_morning;
    int today;              /* local day of year + 1000 * year, for the midnight roll */
    sample ring[SAMPLES];
    int n_samples, newest;
    uint64_t data_version;
    int64_t data_version_ms;
    ev_timer timer;
    engine_extension ext;   /* the commit hook the store declares */
};

static int local_day(void)
{
    time_t now = (time_t)(proto_wall_ms() / 1000);
    struct tm tm;
    localtime_r(&now, &tm);
    return tm.tm_year * 1000 + tm.tm_yday;
}

/* Writer thread: a batch is durable. */
static void commit_cb(const engine_ext_env *x, uint64_t first_seq, size_t n_msgs)
{
    broker_stats *st = x->ctx;
    atomic_fetch_add_explicit(&st->puts, n_msgs, memory_order_relaxed);
}

static void take_sample(broker_stats *st, double now)
{
    st->newest = (st->newest + 1) % SAMPLES;
    sample *s = &st->ring[st->newest];
    s->at = now;
    s->puts = atomic_load_explicit(&st->puts, memory_order_relaxed);
    s->gets = st->gets;
    if (st->n_samples < SAMPLES)
        st->n_samples++;
}

static void roll_day(broker_stats *st)
{
    int day = local_day();
    if (day == st->today)
        return;
    st->today = day;
    st->put_yesterday_morning = st->put_today_morning;
    st->get_yesterday_morning = st->get_today_morning;
    st->put_today_morning = atomic_load_explicit(&st->puts, memory_order_relaxed);
    st->get_today_morning = st->gets;
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    broker_stats *st = (broker_stats *)((char *)w - offsetof(broker_stats, timer));
    take_sample(st, ev_now(loop));
    roll_day(st);
}

/* Before the store: the put counter is a commit hook the store declares. */
int broker_stats_create(broker_modules *m, char *errbuf, size_t errlen)
{
    broker_stats *st = proto_xcalloc(1, sizeof *st);
    st->ctx = &m->ctx;
    atomic_init(&st->puts, 0);
    st->boot_ms = proto_wall_ms();
    st->data_version_ms = st->boot_ms;
    st->today = local_day();
    st->ext = (engine_extension){.name = "broker-stats", .ctx = st,
                                 .hook.on_commit = commit_cb};
    struct ev_loop *loop = server_loop(m->ctx.srv);
    take_sample(st, ev_now(loop));
    ev_timer_init(&st->timer, timer_cb, SAMPLE_INTERVAL_S, SAMPLE_INTERVAL_S);
    ev_timer_start(loop, &st->timer);
    m->stats = st;
    return 0;
}

const engine_extension *broker_stats_extension(const broker_stats *st) { return &st->ext; }

/* After the store closed: the commit hook is not called any more. */
void broker_stats_destroy(broker_modules *m)
{
    broker_stats *st = m->stats;
    ev_timer_stop(server_loop(st->ctx->srv), &st->timer);
    free(st);
    m->stats = NULL;
}

void broker_stats_count_get(broker_stats *st, uint64_t n) { st->gets += n; }

void broker_stats_config_changed(broker_stats *st)
{
    st->data_version++;
    st->data_version_ms = proto_wall_ms();
}

/* Rate over the last `window_s` seconds of samples (the oldest one there is, early on). */
static void rates(const broker_stats *st, double now, uint64_t puts, uint64_t gets,
                  double window_s, double *put_tps, double *get_tps)
{
    const sample *from = NULL;
    for (int i = 0; i < st->n_samples; i++) {
        const sample *s = &st->ring[(st->newest - i + SAMPLES) % SAMPLES];
        from = s;
        if (now - s->at >= window_s)
            break;
    }
    double dt = from ? now - from->at : 0;
    *put_tps = dt > 0 ? (double)(puts - from->puts) / dt : 0;
    *get_tps = dt > 0 ? (double)(gets - from->gets) / dt : 0;
}

void broker_stats_read(broker_stats *st, broker_stats_view *out)
{
    memset(out, 0, sizeof *out);
    roll_day(st);
    out->boot_ms = st->boot_ms;
    out->put_total = atomic_load_explicit(&st->puts, memory_order_relaxed);
    out->get_total = st->gets;
    out->put_today_morning = st->put_today_morning;
    out->get_today_morning = st->get_today_morning;
    out->put_yesterday_morning = st->put_yesterday_morning;
    out->get_yesterday_morning = st->get_yesterday_morning;
    out->data_version = st->data_version;
    out->data_version_ms = st->data_version_ms;
    double now = ev_now(server_loop(st->ctx->srv));
    static const double windows[3] = {10, 60, 600};
    for (int i = 0; i < 3; i++)
        rates(st, now, out->put_total, out->get_total, windows[i], &out->put_tps[i],
              &out->get_tps[i]);
}
