/*
 * lsmq-engine-demo: opens a store, appends a few messages to TopicTest and
 * reads them back. Stands in for `mqbroker` until the network front end
 * exists, so the README's run command exercises the real store.
 *
 *   lsmq-engine-demo [--storePathRootDir=DIR] [--count=N] [--flushDiskType=SYNC_FLUSH]
 *                    [--delayMs=MS]
 *
 * With --delayMs the messages are sent delayed (engine_append_timed), due
 * MS from now: a store with pending messages, for mqdump's tests.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "engine.h"
#include "index.h"

static const char *opt(int argc, char **argv, const char *name, const char *dflt)
{
    size_t n = strlen(name);
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], "--", 2) == 0 && strncmp(argv[i] + 2, name, n) == 0 &&
            argv[i][2 + n] == '=')
            return argv[i] + 3 + n;
    return dflt;
}

typedef struct timed_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    int status;
} timed_wait;

static void timed_done_cb(void *ctx, const engine_append_result *r)
{
    timed_wait *w = ctx;
    pthread_mutex_lock(&w->lock);
    w->status = r->status;
    w->done = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* engine_append_timed, waiting for the outcome. */
static int append_delayed(engine *e, const char *topic, uint32_t queue, const engine_msg *m,
                          int64_t deliver_ms)
{
    timed_wait w = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    int rc = engine_append_timed(e, topic, strlen(topic), queue, m, 1, deliver_ms,
                                 timed_done_cb, &w);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&w.lock);
    while (!w.done)
        pthread_cond_wait(&w.cond, &w.lock);
    pthread_mutex_unlock(&w.lock);
    return w.status;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0 || !strchr(argv[i], '=')) {
            fprintf(stderr, "usage: %s [--storePathRootDir=DIR] [--count=N] "
                            "[--flushDiskType=ASYNC_FLUSH|SYNC_FLUSH] [--delayMs=MS]\n",
                    argv[0]);
            return 2;
        }
    }
    const char *home = getenv("HOME");
    char dflt[1024];
    snprintf(dflt, sizeof dflt, "%s/store", home ? home : ".");
    engine_config cfg;
    engine_config_init(&cfg);
    cfg.store_path = opt(argc, argv, "storePathRootDir", dflt);
    cfg.flush_mode = strcmp(opt(argc, argv, "flushDiskType", "ASYNC_FLUSH"), "SYNC_FLUSH") == 0
                         ? ENGINE_SYNC_FLUSH : ENGINE_ASYNC_FLUSH;
    cfg.store_host.ip[0] = 127;
    cfg.store_host.ip[3] = 1;
    cfg.store_host.port = 10911;
    long count = strtol(opt(argc, argv, "count", "1000"), NULL, 10);
    long long delay_ms = strtoll(opt(argc, argv, "delayMs", "0"), NULL, 10);
    if (count <= 0 || delay_ms < 0) {
        fprintf(stderr, "--count must be a positive number\n");
        return 2;
    }

    engine *e;
    char err[512];
    if (index_declare(&cfg, NULL) != 0 || engine_open(&cfg, &e, err, sizeof err) != 0) {
        fprintf(stderr, "cannot open store: %s\n", err);
        return 1;
    }
    const char *topic = "TopicTest";
    engine_topic_config tc;
    if (engine_topic_get(e, topic, strlen(topic), &tc) != 0) {
        memset(&tc, 0, sizeof tc);
        strcpy(tc.name, topic);
        tc.read_queue_nums = tc.write_queue_nums = 4;
        tc.perm = ENGINE_PERM_READ | ENGINE_PERM_WRITE;
        if (engine_topic_put(e, &tc, &tc) != 0) {
            fprintf(stderr, "cannot create %s\n", topic);
            engine_close(e);
            return 1;
        }
    }
    printf("store %s open (topic %s, id %u, %u queues)\n", cfg.store_path, topic, tc.topic_id,
           tc.write_queue_nums);

    int rc = 0;
    for (long i = 0; i < count && rc == 0; i++) {
        char body[64], props[64];
        snprintf(body, sizeof body, "Hello lsmq %ld", i);
        snprintf(props, sizeof props, "TAGS\001TagA\002KEYS\001key-%ld\002", i);
        engine_msg m = {.body = body, .body_len = (uint32_t)strlen(body), .props = props,
                        .props_len = (uint32_t)strlen(props)};
        engine_append_result r;
        if (delay_ms > 0)
            rc = append_delayed(e, topic, (uint32_t)(i % 4), &m, proto_wall_ms() + delay_ms);
        else
            rc = engine_append_wait(e, topic, strlen(topic), (uint32_t)(i % 4), &m, 1, &r);
        if (rc != 0)
            fprintf(stderr, "append failed: %s\n", lsmq_strerror(rc));
    }
    for (uint32_t q = 0; q < 4 && rc == 0; q++) {
        uint64_t min, max;
        engine_queue_offsets(e, topic, strlen(topic), q, &min, &max);
        engine_read_result rr;
        rc = engine_read(e, topic, strlen(topic), q, min, 32, 1 << 20, &rr);
        printf("queue %u: offsets [%llu, %llu), first read returned %u records\n", q,
               (unsigned long long)min, (unsigned long long)max, rc == 0 ? rr.count : 0);
        if (rc == 0)
            engine_free(rr.data);
    }
    printf("appended %ld messages (%llu pending); next log position %llu\n", count,
           (unsigned long long)engine_timer_pending_total(e),
           (unsigned long long)engine_next_log_position(e));
    engine_close(e);
    return rc == 0 ? 0 : 1;
}
