/*
 * test_e2e_repl_catchup: a replica started from nothing against a master
 * that already holds a large store, real processes on loopback. The store
 * is 200 MiB of message bodies that do not compress (LSMQ_CATCHUP_MIB
 * sets another size: bench/repl_catchup.sh runs 1 GiB on a Release build).
 *
 *  - the replica's store is made from a checkpoint of the master's: the
 *    files come in under its ha/ directory, about the master's size, before
 *    its db/ appears;
 *  - messages the master takes all the while (a producer keeps sending)
 *    reach the replica through the log it follows after the checkpoint,
 *    and so do those sent once it has caught up: queue ends equal and the
 *    two stores identical key by key;
 *  - both brokers exit 0 on SIGTERM.
 *
 * It prints one line with the figures:
 *   catch-up: <MiB> MiB checkpoint in <s> s, <MB/s> MB/s; caught up <s> s after start
 * (from the replica's start until its db/ is there, and until it has
 * applied all the master committed).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"
#include "e2e_msg.h"
#include "e2e_procs.h"
#include "e2e_repl.h"
#include "e2e_reply.h"
#include "testsupport.h"
#include "wire.h"

#define DEFAULT_MIB 200
#define BODY_BYTES (1u << 20)
#define IN_FLIGHT 4 /* fill sends on the wire at a time */
#define QUEUES 4
#define WAIT_MS 120000
#define BIG_TOPIC "CatchUpBigT"
#define LIVE_TOPIC "CatchUpLiveT"
#define AFTER_SENDS 200

static e2e_broker master, replica;

/* ---- The master's store: bodies that do not compress ------------------------ */

static uint64_t rng_state = 88172645463325252ull;

static void random_fill(uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 8 <= n; i += 8) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        memcpy(p + i, &rng_state, 8);
    }
}

static size_t size_mib(void)
{
    const char *s = getenv("LSMQ_CATCHUP_MIB");
    long v = s ? strtol(s, NULL, 10) : 0;
    return v > 0 ? (size_t)v : DEFAULT_MIB;
}

/* mib sends of 1 MiB each to BIG_TOPIC, IN_FLIGHT at a time, all SUCCESS. */
static void fill(size_t mib)
{
    static uint8_t body[BODY_BYTES];
    int fd = wire_connect(master.proc.port, 60000);
    assert_true(fd >= 0);
    size_t sent = 0, answered = 0;
    while (answered < mib) {
        while (sent < mib && sent - answered < IN_FLIGHT) {
            random_fill(body, sizeof body);
            proto_cmd *c = e2e_send_v2(BIG_TOPIC, (int)(sent % QUEUES), NULL);
            int32_t opaque = wire_send(fd, c, body, sizeof body);
            proto_cmd_free(c);
            assert_true(opaque >= 0);
            sent++;
        }
        e2e_reply r = {0};
        assert_int_equal(wire_recv(fd, &r.cmd, &r.frame), 0);
        e2e_expect_code(&r, RS_SUCCESS, NULL);
        e2e_reply_free(&r);
        answered++;
    }
    close(fd);
}

/* ---- A producer that keeps sending while the replica starts ----------------- */

typedef struct live_load {
    pthread_t th;
    atomic_int stop;
    atomic_long sent;  /* answered SUCCESS */
    atomic_long other; /* anything else, or no answer */
} live_load;

static void *live_main(void *arg)
{
    live_load *l = arg;
    int fd = wire_connect(master.proc.port, 20000);
    if (fd < 0) {
        atomic_fetch_add(&l->other, 1);
        return NULL;
    }
    char body[64];
    for (long i = 0; !atomic_load(&l->stop); i++) {
        int n = snprintf(body, sizeof body, "sent during the catch-up %ld", i);
        proto_cmd *resp = NULL;
        uint8_t *frame = NULL;
        if (wire_call(fd, e2e_send_v2(LIVE_TOPIC, (int)(i % QUEUES), NULL), body, (size_t)n,
                      &resp, &frame) == 0 &&
            resp->code == RS_SUCCESS)
            atomic_fetch_add(&l->sent, 1);
        else
            atomic_fetch_add(&l->other, 1);
        proto_cmd_free(resp);
        free(frame);
        e2e_sleep_ms(2);
    }
    close(fd);
    return NULL;
}

/* ---- Watching the replica's store while it starts ----------------------------- */

typedef struct watch {
    pthread_t th;
    const char *store;
    uint64_t ha_peak;     /* most bytes seen under ha/ */
    int64_t installed_ms; /* proto_mono_ms when db/CURRENT appeared, 0 if not yet */
} watch;

static void *watch_main(void *arg)
{
    watch *w = arg;
    char ha[1100], current[1100];
    snprintf(ha, sizeof ha, "%s/ha", w->store);
    snprintf(current, sizeof current, "%s/db/CURRENT", w->store);
    struct stat st;
    for (int64_t t0 = proto_mono_ms(); proto_mono_ms() - t0 < WAIT_MS;) {
        uint64_t b = test_dir_bytes(ha, 3);
        if (b > w->ha_peak)
            w->ha_peak = b;
        if (stat(current, &st) == 0) {
            w->installed_ms = proto_mono_ms();
            break;
        }
        e2e_sleep_ms(5);
    }
    return NULL;
}

/* ---- The test ------------------------------------------------------------------ */

static void test_catch_up_from_a_checkpoint(void **state)
{
    size_t mib = size_mib();
    const char *m_args[] = {"--brokerRole=ASYNC_MASTER", NULL};
    assert_int_equal(e2e_broker_start(&master, "e2e-catchup-m", m_args), 0);
    const char *topics[] = {BIG_TOPIC, LIVE_TOPIC};
    for (int i = 0; i < 2; i++) {
        e2e_reply r = e2e_call_port(master.proc.port, e2e_create_topic(topics[i], QUEUES, QUEUES, 6),
                                    NULL, 0);
        e2e_expect_code(&r, RS_SUCCESS, NULL);
        e2e_reply_free(&r);
    }
    int64_t t = proto_mono_ms();
    fill(mib);
    fprintf(stderr, "filled the master with %zu MiB in %.1f s\n", mib,
            (double)(proto_mono_ms() - t) / 1000.0);

    live_load live = {0};
    assert_int_equal(pthread_create(&live.th, NULL, live_main, &live), 0);
    e2e_sleep_ms(100);

    assert_int_equal(e2e_broker_init(&replica, "e2e-catchup-r"), 0);
    char ha_master[64], ns[64];
    snprintf(ha_master, sizeof ha_master, "--haMasterAddress=127.0.0.1:%d", master.ha_port);
    snprintf(ns, sizeof ns, "--namesrvAddr=%s", master.namesrv);
    const char *r_args[] = {"--brokerRole=SLAVE", "--brokerId=1", ha_master, ns, NULL};
    watch w = {.store = replica.store_dir};
    assert_int_equal(pthread_create(&w.th, NULL, watch_main, &w), 0);
    int64_t t0 = proto_mono_ms();
    long sent_before = atomic_load(&live.sent);
    int started = e2e_broker_restart(&replica, r_args);
    pthread_join(w.th, NULL);
    long sent_during = atomic_load(&live.sent) - sent_before;
    if (started != 0)
        fail_msg("the replica did not start");

    /* Made from a checkpoint: the files came in under ha/ first. */
    assert_true(w.installed_ms > 0);
    char db[1100];
    snprintf(db, sizeof db, "%s/db", replica.store_dir);
    uint64_t installed = test_dir_bytes(db, 1);
    fprintf(stderr, "replica: %llu bytes seen under ha/ at most, db/ of %llu bytes\n",
            (unsigned long long)w.ha_peak, (unsigned long long)installed);
    assert_true(w.ha_peak >= (uint64_t)mib << 19); /* at least half the bodies */
    assert_true(installed >= (uint64_t)mib << 20);

    assert_true(e2e_wait_caught_up(master.proc.port, replica.proc.port, WAIT_MS));
    int64_t t_caught = proto_mono_ms();
    double cp_s = (double)(w.installed_ms - t0) / 1000.0;
    printf("catch-up: %.0f MiB checkpoint in %.2f s, %.0f MB/s; caught up %.2f s after start\n",
           (double)installed / (1 << 20), cp_s, (double)installed / 1e6 / cp_s,
           (double)(t_caught - t0) / 1000.0);
    fflush(stdout);

    /* It follows: the sends made during the fetch, then more. */
    atomic_store(&live.stop, 1);
    pthread_join(live.th, NULL);
    assert_int_equal(atomic_load(&live.other), 0);
    assert_true(sent_during > 0);
    int fd = wire_connect(master.proc.port, 20000);
    assert_true(fd >= 0);
    for (int i = 0; i < AFTER_SENDS; i++) {
        char body[64];
        int n = snprintf(body, sizeof body, "sent after the catch-up %d", i);
        e2e_reply r = e2e_call(fd, e2e_send_v2(LIVE_TOPIC, i % QUEUES, NULL), body, (size_t)n);
        e2e_expect_code(&r, RS_SUCCESS, NULL);
        e2e_reply_free(&r);
    }
    close(fd);
    assert_true(e2e_wait_caught_up(master.proc.port, replica.proc.port, WAIT_MS));
    int64_t live_total = 0;
    for (int q = 0; q < QUEUES; q++) {
        for (int i = 0; i < 2; i++)
            assert_int_equal(e2e_max_offset(replica.proc.port, topics[i], q),
                             e2e_max_offset(master.proc.port, topics[i], q));
        live_total += e2e_max_offset(replica.proc.port, LIVE_TOPIC, q);
    }
    assert_int_equal(live_total, atomic_load(&live.sent) + AFTER_SENDS);
    assert_int_equal(test_store_dir_diff(master.store_dir, replica.store_dir, 10), 0);

    assert_int_equal(e2e_broker_stop(&replica, 30000), 0);
    assert_int_equal(e2e_broker_stop(&master, 30000), 0);
}

/* A failed check leaves the brokers running: kill them and remove their stores. */
static int teardown(void **state)
{
    e2e_broker_kill(&replica);
    e2e_broker_kill(&master);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_catch_up_from_a_checkpoint, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
