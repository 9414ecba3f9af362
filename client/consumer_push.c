/*
 * The push consumer: subscriptions, the listener, start and destroy, and
 * the periodic offset commit. Rebalancing is in rebalance.c, pulling and
 * consuming in process_queue.c.
 *
 * Clustering consumers also subscribe to %RETRY%<group> ("*"), where
 * messages they asked to reconsume come back (REMOTING.md §5.4, §6.7), and
 * commit offsets to the brokers every 5 s with oneway
 * UPDATE_CONSUMER_OFFSET, and on destroy with answered ones. Broadcasting
 * consumers take every queue and keep offsets in a local file (§6.12).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "client_internal.h"

#define DEFAULT_THREADS 4
#define DEFAULT_MAX_RECONSUME 16
#define DEFAULT_REBALANCE_MS 20000
#define DEFAULT_COMMIT_MS 5000
#define START_TIMEOUT_MS 3000
#define DEFAULT_CONSUME_TS_AGO_MS (30 * 60 * 1000) /* Java's consumeTimestamp default */
#define STOP_TIMEOUT_MS 2000
#define INNER_PRODUCER_GROUP "CLIENT_INNER_PRODUCER"

/* ------------------------------------------------------------------ */
/* Hooks from the mqclient (I/O thread)                                */
/* ------------------------------------------------------------------ */

static char *heartbeat_json(void *arg)
{
    lsmq_push_consumer *c = arg;
    hb_consumer hc;

    memset(&hc, 0, sizeof hc);
    hc.group = c->group;
    hc.broadcasting = c->model == LSMQ_BROADCASTING;
    hc.from_first = c->from == LSMQ_FROM_FIRST;
    hc.from_timestamp = c->from == LSMQ_FROM_TIMESTAMP;
    hc.passive = 1;
    hc.subs = c->subs;
    hc.n_subs = c->n_subs;
    return lsmq__hb_json(lsmq__mqc_client_id(c->mqc), NULL, &hc);
}

static void ids_changed(void *arg, const char *group)
{
    lsmq_push_consumer *c = arg;

    if (strcmp(group, c->group) == 0 || *group == '\0')
        lsmq__push_rebalance_soon(c, 0);
}

static void route_changed(void *arg, const char *topic)
{
    lsmq_push_consumer *c = arg;
    ostore_entry *e, *tmp;

    /*
     * The broker that takes the topic's offsets may be another now (a
     * master gone, or back): the next commit sends them all there, as
     * Java's periodic persistAll would, not only those that moved.
     */
    HASH_ITER(hh, c->offsets.map, e, tmp) {
        if (strcmp(e->topic, topic) == 0)
            e->dirty = 1;
    }
    /* A new broker must know us before we ask it for the group (queued first). */
    lsmq__mqc_heartbeat_all(c->mqc);
    lsmq__push_rebalance_soon(c, 0);
}

/* ------------------------------------------------------------------ */
/* Offsets                                                             */
/* ------------------------------------------------------------------ */

static void commit_job(mqclient *mqc, void *arg)
{
    lsmq_push_consumer *c = arg;
    ostore_entry *e, *tmp;
    int dirty = 0;

    HASH_ITER(hh, c->offsets.map, e, tmp) {
        char *addr;
        proto_cmd *cmd;

        if (!e->dirty || e->offset < 0)
            continue;
        dirty = 1;
        if (c->model == LSMQ_BROADCASTING)
            continue;
        if ((addr = lsmq__mqc_offset_addr(mqc, e->topic, e->broker)) == NULL)
            continue;
        cmd = lsmq__ostore_commit_cmd(c->group, e);
        if (lsmq__mqc_call(mqc, addr, cmd, NULL, 0, STOP_TIMEOUT_MS, NULL, NULL, NULL) == 0)
            e->dirty = 0;
        proto_cmd_free(cmd);
        free(addr);
    }
    if (dirty && c->model == LSMQ_BROADCASTING) {
        lsmq_errslot err;

        lsmq__err_init(&err, NULL);
        if (lsmq__ostore_save_file(&c->offsets, c->offset_path, &err) == 0) {
            HASH_ITER(hh, c->offsets.map, e, tmp)
                e->dirty = 0;
        } else {
            proto_log(PROTO_LOG_WARN, "liblsmq: %s: %s", c->group, err.text);
        }
    }
}

/*
 * Destroy commits every offset with answered requests, all at once, and
 * waits for the answers: one slow broker costs one timeout, not one per queue.
 */
typedef struct final_commits {
    pthread_mutex_t m;
    pthread_cond_t cv;
    int left;
    int failed;
} final_commits;

typedef struct final_arg {
    lsmq_push_consumer *c;
    final_commits *fc;
} final_arg;

static void final_commit_cb(int rc, proto_reply *reply, const char *why, void *arg)
{
    final_commits *fc = arg;

    pthread_mutex_lock(&fc->m);
    if (rc != 0 || reply->cmd->code != RS_SUCCESS)
        fc->failed++;
    fc->left--;
    pthread_cond_signal(&fc->cv);
    pthread_mutex_unlock(&fc->m);
    proto_reply_free(reply);
}

static void final_commit_job(mqclient *mqc, void *arg)
{
    final_arg *fa = arg;
    lsmq_push_consumer *c = fa->c;
    final_commits *fc = fa->fc;
    ostore_entry *e, *tmp;

    if (c->model == LSMQ_BROADCASTING) {
        commit_job(mqc, c);
        return;
    }
    HASH_ITER(hh, c->offsets.map, e, tmp) {
        char *addr;
        proto_cmd *cmd;

        if (e->offset < 0 || (addr = lsmq__mqc_offset_addr(mqc, e->topic, e->broker)) == NULL)
            continue;
        cmd = lsmq__ostore_commit_cmd(c->group, e);
        pthread_mutex_lock(&fc->m);
        fc->left++;
        pthread_mutex_unlock(&fc->m);
        if (lsmq__mqc_call(mqc, addr, cmd, NULL, 0, STOP_TIMEOUT_MS, final_commit_cb, fc,
                           NULL) != 0)
            final_commit_cb(LSMQ_ECLOSED, NULL, "client is shut down", fc);
        proto_cmd_free(cmd);
        free(addr);
    }
}

/* ------------------------------------------------------------------ */
/* Creation and settings                                               */
/* ------------------------------------------------------------------ */

int lsmq_push_consumer_create(const char *namesrv, const char *group,
                              lsmq_push_consumer **out)
{
    lsmq_push_consumer *c;
    mqclient *mqc;
    size_t len;
    int rc;

    *out = NULL;
    if (!lsmq__valid_name(group, 120))
        return LSMQ_EINVAL; /* no consumer to say more on */
    if ((rc = lsmq__mqc_create(namesrv, NULL, &mqc, NULL)) != 0)
        return rc;
    c = proto_xcalloc(1, sizeof *c);
    c->mqc = mqc;
    lsmq__sender_init(&c->inner, mqc, INNER_PRODUCER_GROUP);
    c->group = proto_xstrdup(group);
    len = strlen(RETRY_PREFIX) + strlen(group) + 1;
    c->retry_topic = proto_xmalloc(len);
    snprintf(c->retry_topic, len, "%s%s", RETRY_PREFIX, group);
    c->model = LSMQ_CLUSTERING;
    c->from = LSMQ_FROM_LAST;
    c->n_threads = DEFAULT_THREADS;
    c->max_reconsume = DEFAULT_MAX_RECONSUME;
    c->rebalance_ms = DEFAULT_REBALANCE_MS;
    c->commit_ms = DEFAULT_COMMIT_MS;
    lsmq__ostore_init(&c->offsets);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cv, NULL);
    *out = c;
    return 0;
}

#define BEFORE_START(c)                                                                      \
    do {                                                                                     \
        if ((c) == NULL)                                                                     \
            return LSMQ_EINVAL;                                                              \
        if ((c)->started) {                                                                  \
            lsmq__error(lsmq__mqc_err((c)->mqc), -1, "setting must be changed before start");     \
            return LSMQ_EINVAL;                                                              \
        }                                                                                    \
    } while (0)

int lsmq_push_consumer_set_model(lsmq_push_consumer *c, int model)
{
    BEFORE_START(c);
    if (model != LSMQ_CLUSTERING && model != LSMQ_BROADCASTING)
        return LSMQ_EINVAL;
    c->model = model;
    return 0;
}

int lsmq_push_consumer_set_consume_from(lsmq_push_consumer *c, int from)
{
    BEFORE_START(c);
    if (from != LSMQ_FROM_LAST && from != LSMQ_FROM_FIRST && from != LSMQ_FROM_TIMESTAMP)
        return LSMQ_EINVAL;
    c->from = from;
    return 0;
}

int lsmq_push_consumer_set_consume_timestamp(lsmq_push_consumer *c, int64_t ms)
{
    BEFORE_START(c);
    if (ms < 0)
        return LSMQ_EINVAL;
    c->consume_ts_ms = ms;
    c->consume_ts_set = 1;
    return 0;
}

int lsmq_push_consumer_set_threads(lsmq_push_consumer *c, int n)
{
    BEFORE_START(c);
    if (n < 1 || n > 64)
        return LSMQ_EINVAL;
    c->n_threads = n;
    return 0;
}

int lsmq_push_consumer_set_instance_name(lsmq_push_consumer *c, const char *name)
{
    BEFORE_START(c);
    if (name == NULL || *name == '\0')
        return LSMQ_EINVAL;
    return lsmq__mqc_set_instance(c->mqc, name);
}

int lsmq_push_consumer_set_offset_dir(lsmq_push_consumer *c, const char *dir)
{
    BEFORE_START(c);
    if (dir == NULL || *dir == '\0')
        return LSMQ_EINVAL;
    free(c->offset_dir);
    c->offset_dir = proto_xstrdup(dir);
    return 0;
}

int lsmq_push_consumer_set_retry_delay_level(lsmq_push_consumer *c, int level)
{
    BEFORE_START(c);
    if (level < 0 || level > 18)
        return LSMQ_EINVAL;
    c->retry_delay_level = level;
    return 0;
}

int lsmq_push_consumer_set_max_reconsume_times(lsmq_push_consumer *c, int n)
{
    BEFORE_START(c);
    if (n < 0)
        return LSMQ_EINVAL;
    c->max_reconsume = n;
    return 0;
}

int lsmq_push_consumer_set_rebalance_interval(lsmq_push_consumer *c, int ms)
{
    BEFORE_START(c);
    if (ms < 100)
        return LSMQ_EINVAL;
    c->rebalance_ms = ms;
    return 0;
}

int lsmq_push_consumer_set_commit_interval(lsmq_push_consumer *c, int ms)
{
    BEFORE_START(c);
    if (ms < 100)
        return LSMQ_EINVAL;
    c->commit_ms = ms;
    return 0;
}

int lsmq_push_consumer_subscribe(lsmq_push_consumer *c, const char *topic, const char *expr)
{
    subscription *s;
    size_t i;
    int rc;

    BEFORE_START(c);
    if ((rc = lsmq__sub_parse(topic, expr, &s, lsmq__mqc_err(c->mqc))) != 0)
        return rc;
    for (i = 0; i < c->n_subs; i++) {
        if (strcmp(c->subs[i]->topic, topic) == 0) {
            lsmq__sub_free(c->subs[i]);
            c->subs[i] = s;
            return 0;
        }
    }
    c->subs = proto_xrealloc(c->subs, (c->n_subs + 1) * sizeof *c->subs);
    c->subs[c->n_subs++] = s;
    return 0;
}

int lsmq_push_consumer_set_listener(lsmq_push_consumer *c, lsmq_listener_fn *fn, void *arg)
{
    BEFORE_START(c);
    if (fn == NULL)
        return LSMQ_EINVAL;
    c->listener = fn;
    c->listener_arg = arg;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Start and destroy                                                   */
/* ------------------------------------------------------------------ */

/* mkdir -p; 0 or -errno. */
static int make_dirs(const char *path)
{
    char *p = proto_xstrdup(path), *s;
    int rc = 0;

    for (s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            rc = -errno;
        *s = '/';
    }
    if (rc == 0 && mkdir(p, 0755) != 0 && errno != EEXIST)
        rc = -errno;
    free(p);
    return rc;
}

static int open_offset_file(lsmq_push_consumer *c)
{
    char dir[4096];
    size_t len;
    int rc;

    if (c->offset_dir) {
        lsmq__strlcpy(dir, c->offset_dir, sizeof dir);
    } else {
        const char *home = getenv("HOME");
        const char *id = strchr(lsmq__mqc_client_id(c->mqc), '@');

        snprintf(dir, sizeof dir, "%s/.lsmq_offsets/%s", home && *home ? home : "/tmp",
                 id ? id + 1 : "default");
    }
    if ((rc = make_dirs(dir)) != 0) {
        lsmq__error(lsmq__mqc_err(c->mqc), -1, "cannot create %s: %s", dir, strerror(-rc));
        return rc;
    }
    len = strlen(dir) + strlen(c->group) + 32;
    c->offset_path = proto_xmalloc(len);
    snprintf(c->offset_path, len, "%s/%s.offsets.json", dir, c->group);
    lsmq_errslot err;

    lsmq__err_init(&err, NULL);
    rc = lsmq__ostore_load_file(&c->offsets, c->offset_path, &err);
    if (rc == LSMQ_ECORRUPT)
        proto_log(PROTO_LOG_WARN, "liblsmq: %s; starting without it", err.text);
    return 0;
}

static void start_job(mqclient *mqc, void *arg)
{
    lsmq_push_consumer *c = arg;

    c->rebalance_timer = lsmq__mqc_every(mqc, 0, c->rebalance_ms, lsmq__push_rebalance, c);
    lsmq__mqc_every(mqc, c->commit_ms, c->commit_ms, commit_job, c);
}

int lsmq_push_consumer_start(lsmq_push_consumer *c)
{
    mq_owner_hooks hooks;
    size_t i;
    int rc;

    if (c == NULL)
        return LSMQ_EINVAL;
    if (c->started || c->listener == NULL || c->n_subs == 0) {
        lsmq__error(lsmq__mqc_err(c->mqc), -1,
                    "push consumer already started, or no listener or subscription");
        return LSMQ_EINVAL;
    }
    if (!c->consume_ts_set)
        c->consume_ts_ms = proto_wall_ms() - DEFAULT_CONSUME_TS_AGO_MS;
    if (c->model == LSMQ_CLUSTERING) {
        for (i = 0; i < c->n_subs && strcmp(c->subs[i]->topic, c->retry_topic); i++)
            ;
        if (i == c->n_subs && (rc = lsmq_push_consumer_subscribe(c, c->retry_topic, "*")) != 0)
            return rc;
    } else if ((rc = open_offset_file(c)) != 0) {
        return rc;
    }
    memset(&hooks, 0, sizeof hooks);
    hooks.arg = c;
    hooks.heartbeat_json = heartbeat_json;
    hooks.ids_changed = ids_changed;
    hooks.route_changed = route_changed;
    hooks.peer_request = lsmq__push_peer_request;
    lsmq__mqc_set_hooks(c->mqc, &hooks);
    if ((rc = lsmq__workers_create(c->n_threads, &c->pool, lsmq__mqc_err(c->mqc))) != 0)
        return rc;
    if ((rc = lsmq__mqc_start(c->mqc)) != 0) {
        lsmq__workers_destroy(c->pool);
        c->pool = NULL;
        return rc;
    }
    c->started = 1;
    for (i = 0; i < c->n_subs; i++) {
        route *r = NULL;

        /* Unknown topics are looked up again in the background. */
        if (lsmq__mqc_route_get(c->mqc, c->subs[i]->topic, 0, &r, NULL) == 0)
            lsmq__route_unref(r);
        else
            proto_log(PROTO_LOG_INFO, "liblsmq: %s: no route for %s yet", c->group, c->subs[i]->topic);
    }
    /* Brokers must know us before the first rebalance asks for the group. */
    lsmq__mqc_heartbeat_sync(c->mqc, START_TIMEOUT_MS, NULL);
    lsmq__mqc_post_wait(c->mqc, start_job, c);
    return 0;
}

int lsmq_push_consumer_last_error(lsmq_push_consumer *c, char *buf, size_t cap)
{
    if (c == NULL) {
        if (buf && cap)
            lsmq__strlcpy(buf, "no consumer", cap);
        return -1;
    }
    return lsmq__err_copy(lsmq__mqc_err(c->mqc), buf, cap);
}

static void stop_job(mqclient *mqc, void *arg)
{
    lsmq_push_consumer *c = arg;

    c->stopping = 1;
}

void lsmq_push_consumer_destroy(lsmq_push_consumer *c)
{
    size_t i;

    if (c == NULL)
        return;
    if (c->started) {
        final_commits fc;
        final_arg fa = {c, &fc};

        /* No more pulls or tasks; let the running listeners finish. */
        lsmq__mqc_post_wait(c->mqc, stop_job, c);
        pthread_mutex_lock(&c->lock);
        while (c->tasks > 0)
            pthread_cond_wait(&c->cv, &c->lock);
        pthread_mutex_unlock(&c->lock);
        memset(&fc, 0, sizeof fc);
        pthread_mutex_init(&fc.m, NULL);
        pthread_cond_init(&fc.cv, NULL);
        lsmq__mqc_post_wait(c->mqc, final_commit_job, &fa);
        /* Each request is answered, timed out or failed by the I/O thread. */
        pthread_mutex_lock(&fc.m);
        while (fc.left > 0)
            pthread_cond_wait(&fc.cv, &fc.m);
        pthread_mutex_unlock(&fc.m);
        if (fc.failed)
            proto_log(PROTO_LOG_WARN, "liblsmq: %s: %d final offset commit(s) failed", c->group,
                      fc.failed);
        pthread_mutex_destroy(&fc.m);
        pthread_cond_destroy(&fc.cv);
        if (c->model == LSMQ_CLUSTERING)
            lsmq__mqc_unregister(c->mqc, NULL, c->group, STOP_TIMEOUT_MS / 2);
        lsmq__mqc_stop(c->mqc);
    }
    lsmq__workers_destroy(c->pool);
    lsmq__push_pq_free_all(c);
    lsmq__ostore_clear(&c->offsets);
    for (i = 0; i < c->n_subs; i++)
        lsmq__sub_free(c->subs[i]);
    free(c->subs);
    lsmq__mqc_destroy(c->mqc);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cv);
    free(c->group);
    free(c->retry_topic);
    free(c->offset_dir);
    free(c->offset_path);
    free(c);
}
