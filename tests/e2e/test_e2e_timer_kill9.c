/*
 * test_e2e_timer_kill9: delayed messages through kill -9. A liblsmq
 * producer gets 100,000 timer messages (TIMER_DELIVER_MS, small bodies)
 * acknowledged by a real mqbroker: the first 2,000 due at once (they move
 * while the rest is sent), the others over a window of about 40 s that
 * opens when the sends should be done. While they come due the broker is
 * killed with SIGKILL and started again on its store 20 times, down for a
 * random while each time so that messages fall due while it is down. Then
 * every queue is read back with raw pulls and:
 *
 *  - every acknowledged message is in its topic exactly once (no loss, no
 *    duplicate), with its TIMER_DELIVER_MS;
 *  - none was stored (made visible) before its due time by the broker's
 *    clock (store timestamp >= TIMER_DELIVER_MS);
 *  - each was stored within PROMPT ms of its due time; when the broker was
 *    down then (or went down before PROMPT passed), within PROMPT ms of the
 *    restart plus the time the backlog ahead of it takes at MIN_RATE
 *    messages a second (the messages due before the restart and not moved
 *    before the kill): due messages are moved at once after a start. Those
 *    due while the sends went on may wait for the sends and their backlog.
 *
 * The broker runs with diskMaxUsedSpaceRatio=99: on a shared machine's
 * fuller disk, disk-pressure retention would remove delivered messages.
 * The broker must exit 0 on the final SIGTERM. Overrides (environment):
 * LSMQ_TIMER_KILL9_COUNT (100000), LSMQ_TIMER_KILL9_CYCLES (20),
 * LSMQ_TIMER_KILL9_SPREAD_MS (40000), LSMQ_TIMER_KILL9_PROMPT_MS (5000),
 * LSMQ_TIMER_KILL9_MIN_RATE (1000, sanitizer builds on two shared cores),
 * LSMQ_TIMER_KILL9_SEED (kill timings).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc.h"
#include "e2e_msg.h"
#include "e2e_time.h"
#include "e2e_topic.h"
#include "lsmq.h"
#include "testsupport.h"
#include "wire.h"

#define TOPIC "TimerKill9"
#define QUEUES 4
#define PRODUCER_GROUP "timer-kill9-pg"
#define VERIFY_GROUP "timer-kill9-verify"
#define IN_FLIGHT 512
#define CALIBRATE_SENDS 2000
#define PULL_BATCH 1024
#define MAX_REPORTED 20
#define MAX_OUTAGES 1000

#define COUNT_DEFAULT 100000
#define CYCLES_DEFAULT 20
#define SPREAD_DEFAULT_MS 40000
#define PROMPT_DEFAULT_MS 5000
#define MIN_RATE_DEFAULT 1000

/* Bounds of the waits (ms). */
#define SEND_WAIT_MS 300000
#define VERIFY_WAIT_MS 30000
#define STOP_WAIT_MS 30000

/* One broker outage, wall clock: killed at down, accepting again at up. */
typedef struct outage {
    int64_t down, up;
    long backlog;      /* due before up, not moved before down */
    int64_t drain_end; /* up + the backlog's time at min_rate */
} outage;

/* What one delayed message became. */
typedef struct sent {
    int64_t due;    /* TIMER_DELIVER_MS sent */
    int64_t stored; /* store timestamp of its delivery; 0 = not seen */
    uint8_t acked;
    uint8_t copies; /* deliveries found in the queues */
} sent;

/* The run; static so library threads never see a dead frame. */
typedef struct run {
    e2e_broker broker;
    lsmq_producer *producer;
    long count;
    int cycles, spread_ms, prompt_ms, min_rate;
    sent *msgs;
    pthread_mutex_t lock;
    pthread_cond_t cv;
    long in_flight, acked, failed;
    char first_error[160];
    outage outages[MAX_OUTAGES];
    int n_outages;
    outage sending; /* the sends: the broker is up but busy with them */
    int64_t next_offset[QUEUES];
} run;

static run the_run;

/*
 * The broker's options: its store may not lose delivered messages to
 * disk-pressure retention (75% of the disk by default) on a shared machine.
 */
static const char *const broker_opts[] = {"--diskMaxUsedSpaceRatio=99", NULL};

static long env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    long n = v ? atol(v) : dflt;

    return n > 0 ? n : dflt;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

/* ------------------------------------------------------------------ */
/* Sending                                                             */
/* ------------------------------------------------------------------ */

static void sent_cb(int rc, const lsmq_send_result *res, void *arg)
{
    run *r = &the_run;
    long i = (long)(intptr_t)arg;

    pthread_mutex_lock(&r->lock);
    if (rc == 0 && res->status == LSMQ_SEND_OK) {
        r->msgs[i].acked = 1;
        r->acked++;
    } else if (r->failed++ == 0) {
        snprintf(r->first_error, sizeof r->first_error, "message %ld: rc %d status %d", i, rc,
                 rc == 0 ? res->status : -1);
    }
    r->in_flight--;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->lock);
}

/* Send message i, due at due, with at most IN_FLIGHT unanswered. */
static void send_one(run *r, long i, int64_t due)
{
    char body[32];
    lsmq_out_message m;
    int rc;

    pthread_mutex_lock(&r->lock);
    while (r->in_flight >= IN_FLIGHT)
        pthread_cond_wait(&r->cv, &r->lock);
    r->in_flight++;
    pthread_mutex_unlock(&r->lock);
    r->msgs[i].due = due;
    memset(&m, 0, sizeof m);
    m.topic = TOPIC;
    m.body = body;
    m.body_len = (size_t)snprintf(body, sizeof body, "tk %ld", i);
    m.deliver_ms = due;
    rc = lsmq_producer_send_async(r->producer, &m, sent_cb, (void *)(intptr_t)i);
    if (rc != 0)
        sent_cb(rc, NULL, (void *)(intptr_t)i);
}

static long in_flight(run *r)
{
    long n;

    pthread_mutex_lock(&r->lock);
    n = r->in_flight;
    pthread_mutex_unlock(&r->lock);
    return n;
}

static void wait_answers(run *r)
{
    int64_t deadline = proto_mono_ms() + SEND_WAIT_MS;

    while (in_flight(r) > 0 && proto_mono_ms() < deadline)
        e2e_sleep_ms(10);
    if (in_flight(r) > 0)
        fail_msg("%ld sends still unanswered after %d s", in_flight(r), SEND_WAIT_MS / 1000);
}

/*
 * The first CALIBRATE_SENDS fall due at once (they move while the rest is
 * sent); their rate places the window, which opens just after the last
 * send. Due times within the window are shuffled against send order.
 */
static int64_t send_all(run *r)
{
    int64_t t0 = proto_wall_ms(), window;
    long first = r->count < CALIBRATE_SENDS ? r->count : CALIBRATE_SENDS;
    double per_ms;

    for (long i = 0; i < first; i++)
        send_one(r, i, t0 + 1000 + i % 500);
    per_ms = (double)first / (double)(proto_wall_ms() - t0 + 1);
    window = proto_wall_ms() + (int64_t)((double)(r->count - first) / per_ms * 1.5) + 1000;
    fprintf(stderr, "calibration: %.1f sends/ms; the window opens in %lld ms\n", per_ms,
            (long long)(window - proto_wall_ms()));
    for (long i = first; i < r->count; i++) {
        long slot = (long)(((uint64_t)i * 7919u) % (uint64_t)r->count);

        send_one(r, i, window + slot * r->spread_ms / r->count);
    }
    wait_answers(r);
    r->sending = (outage){.down = t0, .up = proto_wall_ms()};
    fprintf(stderr, "%ld of %ld acknowledged in %lld ms, %ld failed%s%s; window opens in "
            "%lld ms\n",
            r->acked, r->count, (long long)(proto_wall_ms() - t0), r->failed,
            r->failed ? ", first: " : "", r->first_error, (long long)(window - proto_wall_ms()));
    return window;
}

/* ------------------------------------------------------------------ */
/* Kill cycles                                                         */
/* ------------------------------------------------------------------ */

static void kill_cycles(run *r, int64_t window)
{
    uint64_t rng = (uint64_t)env_long("LSMQ_TIMER_KILL9_SEED", (long)proto_wall_ms()) | 1;
    int period = r->spread_ms / r->cycles;
    int64_t now = proto_wall_ms();

    fprintf(stderr, "kill cycles: %d, period %d ms (LSMQ_TIMER_KILL9_SEED=%llu)\n", r->cycles,
            period, (unsigned long long)rng);
    if (window > now)
        e2e_sleep_ms((int)(window - now));
    for (int c = 1; c <= r->cycles && r->n_outages < MAX_OUTAGES; c++) {
        outage *o = &r->outages[r->n_outages];
        int up_ms = period / 2 + (int)(xorshift(&rng) % (uint64_t)(period / 2 + 1));
        int down_ms = (int)(xorshift(&rng) % (uint64_t)(period / 2 + 1));

        e2e_sleep_ms(up_ms);
        o->down = proto_wall_ms();
        wire_kill9(&r->broker.proc);
        e2e_sleep_ms(down_ms);
        if (e2e_broker_restart(&r->broker, broker_opts) != 0)
            fail_msg("cycle %d: mqbroker did not restart on its store", c);
        o->up = proto_wall_ms();
        r->n_outages++;
        fprintf(stderr, "cycle %d: up %d ms, then down for %lld ms\n", c, up_ms,
                (long long)(o->up - o->down));
    }
}

/* ------------------------------------------------------------------ */
/* Reading back                                                        */
/* ------------------------------------------------------------------ */

/* Record one delivery found in the queues; returns 1 if it is a message of this run. */
static int found(run *r, const proto_record *rec)
{
    char body[32], prop[32];
    long i = -1;
    int used = -1;

    e2e_body(rec, body, sizeof body);
    if (sscanf(body, "tk %ld%n", &i, &used) != 1 || body[used] != '\0' || i < 0 ||
        i >= r->count) {
        fail_msg("a foreign message in %s queue %d offset %lld: '%s'", TOPIC, rec->queue_id,
                 (long long)rec->queue_offset, body);
    }
    if (!e2e_prop(rec, "TIMER_DELIVER_MS", prop, sizeof prop) ||
        strtoll(prop, NULL, 10) != r->msgs[i].due)
        fail_msg("message %ld delivered with TIMER_DELIVER_MS '%s', sent %lld", i, prop,
                 (long long)r->msgs[i].due);
    if (r->msgs[i].copies++ == 0)
        r->msgs[i].stored = rec->store_timestamp;
    return 1;
}

/*
 * One pull over *fd, connecting again (and saying so) while the broker, busy
 * with a backlog after its restart, does not answer within the timeout.
 */
static void pull_call(run *r, int *fd, int q, int64_t offset, proto_cmd **resp,
                      uint8_t **frame)
{
    int64_t deadline = proto_mono_ms() + VERIFY_WAIT_MS;

    for (;;) {
        if (*fd >= 0 && wire_call(*fd, e2e_pull(VERIFY_GROUP, TOPIC, q, offset, PULL_BATCH, 0,
                                                0, NULL),
                                  NULL, 0, resp, frame) == 0)
            return;
        if (proto_mono_ms() > deadline)
            fail_msg("no answer to a pull of queue %d at offset %lld", q, (long long)offset);
        fprintf(stderr, "pull of queue %d at offset %lld: no answer, connecting again\n", q,
                (long long)offset);
        if (*fd >= 0)
            close(*fd);
        e2e_sleep_ms(200);
        *fd = wire_connect(r->broker.proc.port, 10000);
    }
}

/* Pull every queue on from where the last call stopped; returns the records read. */
static long pull_more(run *r)
{
    int fd = wire_connect(r->broker.proc.port, 10000);
    static proto_record recs[PULL_BATCH];
    long total = 0;

    for (int q = 0; q < QUEUES; q++) {
        for (;;) {
            proto_cmd *resp = NULL;
            uint8_t *frame = NULL;
            int64_t offset = r->next_offset[q];
            size_t n;

            pull_call(r, &fd, q, offset, &resp, &frame);
            if (resp->code != RS_SUCCESS) {
                int code = resp->code;

                if (getenv("LSMQ_TIMER_KILL9_TRACE"))
                    fprintf(stderr, "pull q%d@%lld: code %d, min %lld max %lld next %lld\n", q,
                            (long long)offset, code, (long long)e2e_i64(resp, "minOffset"),
                            (long long)e2e_i64(resp, "maxOffset"),
                            (long long)e2e_i64(resp, "nextBeginOffset"));
                if (code != RS_PULL_NOT_FOUND && code != RS_PULL_OFFSET_MOVED &&
                    code != RS_PULL_RETRY_IMMEDIATELY)
                    fail_msg("pull of queue %d at offset %lld: code %d", q, (long long)offset,
                             code);
                proto_cmd_free(resp);
                free(frame);
                break;
            }
            n = e2e_records(resp->body, resp->body_len, recs, PULL_BATCH);
            assert_true(n >= 1);
            for (size_t k = 0; k < n; k++) {
                if (recs[k].queue_offset != r->next_offset[q])
                    fail_msg("queue %d: offset %lld where %lld was expected", q,
                             (long long)recs[k].queue_offset, (long long)r->next_offset[q]);
                total += found(r, &recs[k]);
                r->next_offset[q]++;
            }
            proto_cmd_free(resp);
            free(frame);
        }
    }
    if (fd >= 0)
        close(fd);
    return total;
}

/* ------------------------------------------------------------------ */
/* Checks                                                              */
/* ------------------------------------------------------------------ */

/*
 * Each outage's backlog: the messages due before the restart that were not
 * moved before the kill; and the slowest drain seen (messages a second,
 * -1 when no backlog of 1,000 or more drained between two kills).
 */
static void backlog_of(run *r, outage *o)
{
    o->backlog = 0;
    for (long i = 0; i < r->count; i++) {
        const sent *s = &r->msgs[i];

        if (s->acked && s->copies && s->due < o->up && s->stored >= o->down)
            o->backlog++;
    }
    o->drain_end = o->up + (int64_t)o->backlog * 1000 / r->min_rate;
}

static double outage_backlogs(run *r)
{
    double slowest = -1;

    backlog_of(r, &r->sending);
    for (int k = 0; k < r->n_outages; k++) {
        outage *o = &r->outages[k];
        int64_t last = o->up;

        o->backlog = 0;
        for (long i = 0; i < r->count; i++) {
            const sent *s = &r->msgs[i];

            if (s->acked && s->copies && s->due < o->up && s->stored >= o->down) {
                o->backlog++;
                if (s->stored > last)
                    last = s->stored;
            }
        }
        o->drain_end = o->up + (int64_t)o->backlog * 1000 / r->min_rate;
        /* A drain cut short by the next kill says nothing of the rate. */
        if (o->backlog >= 1000 && (k + 1 == r->n_outages || last < r->outages[k + 1].down)) {
            double rate = (double)o->backlog * 1000.0 / (double)(last - o->up + 1);

            if (slowest < 0 || rate < slowest)
                slowest = rate;
        }
    }
    return slowest;
}

/* The latest store time a message due at `due` may have (see the file comment). */
static int64_t latest_allowed(const run *r, int64_t due)
{
    int64_t t = due;

    /* Messages due while the sends went on may wait for them, and for their backlog. */
    if (due < r->sending.up)
        t = r->sending.drain_end;

    for (int k = 0; k < r->n_outages; k++) {
        const outage *o = &r->outages[k];

        if (o->down <= t + r->prompt_ms && o->drain_end >= t)
            t = o->drain_end;
    }
    return t + r->prompt_ms;
}

/* The outage during which `due` fell, or NULL. */
static const outage *down_at(const run *r, int64_t due)
{
    for (int k = 0; k < r->n_outages; k++)
        if (r->outages[k].down <= due && due < r->outages[k].up)
            return &r->outages[k];
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

static void check_deliveries(run *r)
{
    long lost = 0, dups = 0, early = 0, late = 0, down_due = 0, n_late = 0;
    int64_t *lateness = proto_xcalloc((size_t)r->count, sizeof *lateness);
    int64_t worst_after_up = 0;
    double slowest = outage_backlogs(r);

    for (long i = 0; i < r->count; i++) {
        const sent *s = &r->msgs[i];
        const outage *o;
        int64_t limit;

        if (!s->acked) {
            if (s->copies)
                fprintf(stderr, "message %ld delivered without an acknowledgement\n", i);
            continue;
        }
        if (s->copies == 0) {
            if (lost++ < MAX_REPORTED)
                fprintf(stderr, "LOST message %ld due %lld\n", i, (long long)s->due);
            continue;
        }
        if (s->copies > 1 && dups++ < MAX_REPORTED)
            fprintf(stderr, "DUPLICATE message %ld delivered %d times\n", i, s->copies);
        if (s->stored < s->due && early++ < MAX_REPORTED)
            fprintf(stderr, "EARLY message %ld stored at %lld, due %lld\n", i,
                    (long long)s->stored, (long long)s->due);
        limit = latest_allowed(r, s->due);
        if (s->stored > limit && late++ < MAX_REPORTED)
            fprintf(stderr, "LATE message %ld due %lld stored %lld (limit %lld)\n", i,
                    (long long)s->due, (long long)s->stored, (long long)limit);
        if ((o = down_at(r, s->due)) != NULL) {
            down_due++;
            if (s->stored - o->up > worst_after_up)
                worst_after_up = s->stored - o->up;
        } else {
            lateness[n_late++] = s->stored - s->due;
        }
    }
    qsort(lateness, (size_t)n_late, sizeof *lateness, cmp_i64);
    fprintf(stderr,
            "%ld acknowledged; lost %ld, duplicated %ld, early %ld, late %ld; %ld fell due while "
            "the broker was down (latest %lld ms after its restart; slowest drain of a backlog "
            "%.0f/s); lateness of the others p50 %lld ms, p99 %lld ms, max %lld ms\n",
            r->acked, lost, dups, early, late, down_due, (long long)worst_after_up, slowest,
            n_late ? (long long)lateness[n_late / 2] : 0LL,
            n_late ? (long long)lateness[n_late * 99 / 100] : 0LL,
            n_late ? (long long)lateness[n_late - 1] : 0LL);
    free(lateness);
    if (lost || dups || early || late)
        fail_msg("lost %ld, duplicated %ld, early %ld, late %ld", lost, dups, early, late);
    if (r->n_outages > 0 && down_due == 0)
        fail_msg("no message fell due while the broker was down: the test did not test that");
}

static long delivered_acked(const run *r)
{
    long n = 0;

    for (long i = 0; i < r->count; i++)
        n += r->msgs[i].acked && r->msgs[i].copies > 0;
    return n;
}

/* ------------------------------------------------------------------ */
/* The test                                                            */
/* ------------------------------------------------------------------ */

static void test_timer_kill9(void **state)
{
    run *r = &the_run;
    int64_t t0 = proto_mono_ms(), window, last_due, deadline;
    int status;

    (void)state;
    r->count = env_long("LSMQ_TIMER_KILL9_COUNT", COUNT_DEFAULT);
    r->cycles = (int)env_long("LSMQ_TIMER_KILL9_CYCLES", CYCLES_DEFAULT);
    r->spread_ms = (int)env_long("LSMQ_TIMER_KILL9_SPREAD_MS", SPREAD_DEFAULT_MS);
    r->prompt_ms = (int)env_long("LSMQ_TIMER_KILL9_PROMPT_MS", PROMPT_DEFAULT_MS);
    r->min_rate = (int)env_long("LSMQ_TIMER_KILL9_MIN_RATE", MIN_RATE_DEFAULT);
    r->msgs = proto_xcalloc((size_t)r->count, sizeof *r->msgs);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cv, NULL);

    assert_int_equal(e2e_broker_start(&r->broker, "e2e-timer-kill9", broker_opts), 0);
    assert_true(e2e_topic_create_routed(&r->broker, TOPIC, QUEUES) >= 0);
    assert_int_equal(lsmq_producer_create(r->broker.namesrv, PRODUCER_GROUP, &r->producer), 0);
    assert_int_equal(lsmq_producer_set_send_timeout(r->producer, 10000), 0);
    assert_int_equal(lsmq_producer_start(r->producer), 0);

    window = send_all(r);
    lsmq_producer_destroy(r->producer);
    r->producer = NULL;
    if (r->acked != r->count)
        fail_msg("%ld of %ld sends were not acknowledged (first: %s)", r->count - r->acked,
                 r->count, r->first_error);

    kill_cycles(r, window);

    /* Read the queues until every acknowledged message is there, or long after the last is due. */
    last_due = window + r->spread_ms;
    deadline = (last_due > proto_wall_ms() ? last_due : proto_wall_ms()) + VERIFY_WAIT_MS;
    for (;;) {
        pull_more(r);
        if (delivered_acked(r) == r->acked || proto_wall_ms() > deadline)
            break;
        e2e_sleep_ms(500);
    }
    /* Anything moved twice would land after the first copy: look once more. */
    e2e_sleep_ms(1000);
    pull_more(r);
    check_deliveries(r);

    status = e2e_broker_stop(&r->broker, STOP_WAIT_MS);
    if (status != 0)
        fail_msg("mqbroker exited with status %d after SIGTERM", status);
    fprintf(stderr, "passed in %lld ms\n", (long long)(proto_mono_ms() - t0));
}

static int run_teardown(void **state)
{
    run *r = &the_run;

    (void)state;
    lsmq_producer_destroy(r->producer);
    r->producer = NULL;
    e2e_broker_kill(&r->broker);
    free(r->msgs);
    r->msgs = NULL;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_timer_kill9, run_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
