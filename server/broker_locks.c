/*
 * Queue locks for ordered consumption (REMOTING.md §3.6, §6.11).
 * LOCK_BATCH_MQ gives a client the queues of a group that are free, already
 * its own, or held by someone whose lock has not been renewed for the lock
 * lifetime (60 s); a live lock of another client is refused. Owners are
 * client ids, not connections: a Java client keeps its locks across a
 * reconnect, and its relock every 20 s keeps them alive. UNLOCK_BATCH_MQ
 * releases only the caller's own locks.
 *
 * The lifetime can be shortened for tests with the environment variable
 * LSMQ_LOCK_MAX_LIVE_MS, as the Java broker reads the system property
 * rocketmq.broker.rebalance.lockMaxLiveTime. State lives on the loop thread
 * and is not persisted: after a restart clients simply relock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>

#include "alloc.h"
#include "broker_internal.h"
#include "log.h"

#define LOCK_MAX_LIVE_MS_DEFAULT 60000

/* One locked MessageQueue; the key is "topic \001 brokerName \001 queueId". */
typedef struct lock_entry {
    char *key;
    char client_id[256];
    double locked_at;          /* ev_now of the last successful lock */
    UT_hash_handle hh;
} lock_entry;

typedef struct lock_group {
    char *name;
    lock_entry *locks;
    UT_hash_handle hh;
} lock_group;

struct broker_locks {
    broker_ctx *ctx;
    lock_group *groups;
    double max_live_s;
};

/* A parsed Lock/UnlockBatchRequestBody. */
typedef struct lock_request {
    json_t *root;
    const char *group;
    const char *client_id;
    json_t *mqs;               /* array of MessageQueue objects */
} lock_request;

static double max_live_from_env(void)
{
    const char *v = getenv("LSMQ_LOCK_MAX_LIVE_MS");
    char *end = NULL;
    long ms = v ? strtol(v, &end, 10) : 0;
    if (!v || end == v || *end || ms <= 0)
        ms = LOCK_MAX_LIVE_MS_DEFAULT;
    return ms / 1000.0;
}

static double now_s(broker_locks *bl)
{
    return ev_now(server_loop(bl->ctx->srv));
}

static bool expired(const broker_locks *bl, const lock_entry *e, double now)
{
    return now - e->locked_at > bl->max_live_s;
}

static lock_group *group_find(broker_locks *bl, const char *name, bool create)
{
    lock_group *g = NULL;
    HASH_FIND_STR(bl->groups, name, g);
    if (g || !create)
        return g;
    g = proto_xcalloc(1, sizeof *g);
    g->name = proto_xstrdup(name);
    HASH_ADD_KEYPTR(hh, bl->groups, g->name, strlen(g->name), g);
    return g;
}

/* The lock key of a MessageQueue object, or NULL when it lacks topic or queueId. */
static char *mq_key(json_t *mq)
{
    const char *topic = json_string_value(json_object_get(mq, "topic"));
    const char *broker_name = json_string_value(json_object_get(mq, "brokerName"));
    json_t *qid = json_object_get(mq, "queueId");
    if (!topic || !json_is_integer(qid))
        return NULL;
    return proto_xasprintf("%s\001%s\001%lld", topic, broker_name ? broker_name : "",
                           (long long)json_integer_value(qid));
}

/* Try to lock one queue for client; true when the client holds it afterwards. */
static bool lock_one(broker_locks *bl, lock_group *g, char *key, const char *client,
                     double now)
{
    lock_entry *e = NULL;
    HASH_FIND_STR(g->locks, key, e);
    if (!e) {
        e = proto_xcalloc(1, sizeof *e);
        e->key = key;
        snprintf(e->client_id, sizeof e->client_id, "%s", client);
        e->locked_at = now;
        HASH_ADD_KEYPTR(hh, g->locks, e->key, strlen(e->key), e);
        return true;
    }
    free(key);
    if (strcmp(e->client_id, client) != 0) {
        if (!expired(bl, e, now))
            return false;
        proto_log(PROTO_LOG_WARN, "broker: queue lock of group %s taken over from expired %s by %s", g->name,
                 e->client_id, client);
        snprintf(e->client_id, sizeof e->client_id, "%s", client);
    }
    e->locked_at = now;
    return true;
}

static void unlock_one(lock_group *g, char *key, const char *client)
{
    lock_entry *e = NULL;
    HASH_FIND_STR(g->locks, key, e);
    free(key);
    if (!e || strcmp(e->client_id, client) != 0)
        return; /* not held, or someone else's: leave it alone */
    HASH_DEL(g->locks, e);
    free(e->key);
    free(e);
}

/* Parse the body; on failure reply SYSTEM_ERROR and return -1. */
static int parse_request(conn *c, const proto_cmd *req, lock_request *out)
{
    memset(out, 0, sizeof *out);
    out->root = req->body ? json_loadb((const char *)req->body, req->body_len, 0, NULL) : NULL;
    out->group = json_string_value(json_object_get(out->root, "consumerGroup"));
    out->client_id = json_string_value(json_object_get(out->root, "clientId"));
    out->mqs = json_object_get(out->root, "mqSet");
    if (out->group && *out->group && out->client_id && json_is_array(out->mqs))
        return 0;
    server_conn_reply_code(c, req->opaque, RS_SYSTEM_ERROR,
                    "the body must be a JSON object with consumerGroup, clientId and mqSet");
    json_decref(out->root);
    return -1;
}

static void on_lock_batch_mq(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_locks *bl = ctx;
    lock_request lr;
    if (parse_request(c, req, &lr) != 0)
        return;
    lock_group *g = group_find(bl, lr.group, true);
    double now = now_s(bl);
    json_t *ok = json_array();
    size_t i;
    json_t *mq;
    json_array_foreach(lr.mqs, i, mq) {
        char *key = mq_key(mq);
        if (key && lock_one(bl, g, key, lr.client_id, now))
            json_array_append(ok, mq);
    }
    json_t *body = json_object();
    json_object_set_new(body, "lockOKMQSet", ok);
    json_decref(lr.root);
    broker_reply_json(c, req->opaque, body);
}

static void on_unlock_batch_mq(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_locks *bl = ctx;
    lock_request lr;
    if (parse_request(c, req, &lr) != 0)
        return;
    lock_group *g = group_find(bl, lr.group, false);
    size_t i;
    json_t *mq;
    if (g) {
        json_array_foreach(lr.mqs, i, mq) {
            char *key = mq_key(mq);
            if (key)
                unlock_one(g, key, lr.client_id);
        }
    }
    json_decref(lr.root);
    server_conn_reply_code(c, req->opaque, RS_SUCCESS, NULL);
}

bool broker_locks_group_locked(broker_locks *bl, const char *group)
{
    lock_group *g = group ? group_find(bl, group, false) : NULL;
    if (!g)
        return false;
    double now = now_s(bl);
    for (lock_entry *e = g->locks; e; e = e->hh.next)
        if (!expired(bl, e, now))
            return true;
    return false;
}

int broker_locks_create(broker_modules *m, char *errbuf, size_t errlen)
{
    broker_locks *bl = proto_xcalloc(1, sizeof *bl);
    bl->ctx = &m->ctx;
    bl->max_live_s = max_live_from_env();
    m->locks = bl;
    return 0;
}

void broker_locks_destroy(broker_modules *m)
{
    broker_locks *bl = m->locks;
    lock_group *g, *gtmp;
    HASH_ITER(hh, bl->groups, g, gtmp) {
        lock_entry *e, *etmp;
        HASH_ITER(hh, g->locks, e, etmp) {
            HASH_DEL(g->locks, e);
            free(e->key);
            free(e);
        }
        HASH_DEL(bl->groups, g);
        free(g->name);
        free(g);
    }
    free(bl);
    m->locks = NULL;
}

void broker_locks_register(broker_modules *m)
{
    server *s = m->ctx.srv;
    server_register(s, RC_LOCK_BATCH_MQ, on_lock_batch_mq, m->locks);
    server_register(s, RC_UNLOCK_BATCH_MQ, on_unlock_batch_mq, m->locks);
}
