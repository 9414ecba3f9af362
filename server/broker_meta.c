/*
 * Topic and subscription group configs written from handlers without
 * blocking the loop. Such a write goes to the store's writer (a synced
 * write); the handler keeps its request (server_replay) and returns without
 * answering. When the write lands, the loop dispatches the kept requests
 * again in arrival order; this time the topic or group is there, or, for the
 * request whose own update or delete it was, the outcome is. Writes of one
 * name run one at a time: requests that need a name already being written
 * wait for that write and run again after it.
 *
 * Names are keyed with a kind letter: "T<topic>" and "G<group>".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_internal.h"
#include "log.h"
#include "uthash.h"

typedef enum meta_kind {
    META_TOPIC_PUT, META_TOPIC_DELETE, META_GROUP_PUT, META_GROUP_DELETE
} meta_kind;

typedef struct kept {
    struct kept *next;
    server_replay *r;
    bool owner; /* the request that asked for this write (an update or delete) */
} kept;

/* One write in flight, and the requests waiting for it. */
typedef struct meta_write {
    UT_hash_handle hh;
    broker *b;
    meta_kind kind;
    bool creation;              /* an ensure: log it and route the new topic */
    int status;                 /* set by the writer thread */
    engine_topic_config tc;     /* META_TOPIC_PUT */
    kept *head, **tail;
    char key[];
} meta_write;

/* The outcome a request sees while it runs again. */
typedef struct replay_ctx {
    const char *key;
    int status;
    bool owner;
} replay_ctx;

struct broker_meta {
    broker *b;
    meta_write *writes;  /* by key */
    replay_ctx now;      /* key NULL outside a replay */
    size_t kept;         /* requests kept in all writes (at most keptRequestsMax) */
};

broker_meta *broker_meta_create(broker *b)
{
    broker_meta *m = calloc(1, sizeof *m);
    if (!m)
        abort();
    m->b = b;
    return m;
}

/* After the engine closed and its completions ran, nothing is left in flight. */
void broker_meta_destroy(broker_meta *m)
{
    if (!m)
        return;
    meta_write *w, *tmp;
    HASH_ITER(hh, m->writes, w, tmp) {
        HASH_DEL(m->writes, w);
        for (kept *k = w->head, *next; k; k = next) {
            next = k->next;
            server_replay_drop(k->r);
            free(k);
        }
        free(w);
    }
    free(m);
}

/* Topic names are at most 127 bytes, group names at most 255 (the store's limits). */
#define KEY_MAX 258

static int make_key(char *key, char kind, const char *name)
{
    int n = snprintf(key, KEY_MAX, "%c%s", kind, name);
    return n < 0 || n >= KEY_MAX ? LSMQ_ETOOBIG : 0;
}

/*
 * Kept requests are copies held in memory while their connections go on
 * being read: past keptRequestsMax, a request that would wait is answered
 * SYSTEM_BUSY instead (a client retries it), as a full writer queue is.
 * True then.
 */
static bool too_many_kept(broker_meta *m, conn *c, const proto_cmd *req)
{
    if (m->kept < broker_cfg(m->b)->kept_requests_max)
        return false;
    if (!proto_cmd_is_oneway(req))
        conn_reply_code(c, req->opaque, RS_SYSTEM_BUSY,
                        "[PC_SYNCHRONIZED]broker busy, start flow control for a while");
    return true;
}

/* Keep req behind write w; false when it cannot be copied. */
static bool keep(meta_write *w, conn *c, const proto_cmd *req, bool owner)
{
    server_replay *r = server_replay_keep(c, req);
    if (!r)
        return false;
    broker_meta_state(w->b)->kept++;
    kept *k = calloc(1, sizeof *k);
    if (!k)
        abort();
    k->r = r;
    k->owner = owner;
    *w->tail = k;
    w->tail = &k->next;
    return true;
}

/* Side effects of a landed write that every waiter relies on. */
static void after_write(broker *b, meta_write *w)
{
    const char *name = w->key + 1;
    if (w->status != 0) {
        lsmq_log("broker: writing the config of %s failed: %s", name, lsmq_strerror(w->status));
        return;
    }
    broker_stats_config_changed(b);
    switch (w->kind) {
    case META_TOPIC_PUT:
        if (w->creation)
            lsmq_log("broker: created topic %s (%u queues, perm %u)", name,
                     w->tc.write_queue_nums, w->tc.perm);
        broker__topics_changed(b, w->creation);
        break;
    case META_TOPIC_DELETE:
        broker__topics_changed(b, false);
        break;
    case META_GROUP_PUT:
        if (w->creation)
            lsmq_log("broker: created subscription group %s", name);
        break;
    case META_GROUP_DELETE:
        break;
    }
}

/* Loop thread: the write landed; run its waiters again. */
static void write_landed(void *arg)
{
    meta_write *w = arg;
    broker *b = w->b;
    broker_meta *m = broker_meta_state(b);
    HASH_DEL(m->writes, w);
    bool open = broker_engine(b) != NULL; /* NULL once the broker is shutting down */
    if (open)
        after_write(b, w);
    for (kept *k = w->head, *next; k; k = next) {
        next = k->next;
        m->kept--;
        if (open) {
            m->now = (replay_ctx){w->key, w->status, k->owner};
            server_replay_run(broker_server(b), k->r);
            m->now.key = NULL;
        } else {
            server_replay_drop(k->r);
        }
        free(k);
    }
    free(w);
}

/* Writer thread. */
static void write_done(void *ctx, int status)
{
    meta_write *w = ctx;
    w->status = status;
    server_post(broker_server(w->b), write_landed, w);
}

static int queue_write(broker *b, meta_write *w, const char *json, size_t json_len)
{
    engine *e = broker_engine(b);
    const char *name = w->key + 1;
    switch (w->kind) {
    case META_TOPIC_PUT: return engine_topic_put_async(e, &w->tc, write_done, w);
    case META_TOPIC_DELETE: return engine_topic_delete_async(e, name, strlen(name), write_done, w);
    case META_GROUP_PUT:
        return engine_group_put_async(e, name, strlen(name), json, json_len, write_done, w);
    case META_GROUP_DELETE: return engine_group_delete_async(e, name, strlen(name), write_done, w);
    }
    return LSMQ_EINVAL;
}

/*
 * Keep req until a write of `key` lands: the one in flight, or a new one
 * described by the arguments. Returns BROKER_DEFERRED, or an error when
 * nothing could be queued (then nothing is kept).
 */
static int defer(broker *b, conn *c, const proto_cmd *req, const char *key, meta_kind kind,
                 bool creation, const engine_topic_config *tc, const char *json,
                 size_t json_len)
{
    broker_meta *m = broker_meta_state(b);
    if (too_many_kept(m, c, req))
        return BROKER_DEFERRED; /* answered */
    meta_write *w = NULL;
    HASH_FIND_STR(m->writes, key, w);
    if (w) /* run again after that write; an update or delete then asks for its own */
        return keep(w, c, req, false) ? BROKER_DEFERRED : LSMQ_ENOMEM;
    size_t klen = strlen(key);
    w = calloc(1, sizeof *w + klen + 1);
    if (!w)
        abort();
    memcpy(w->key, key, klen + 1);
    w->b = b;
    w->kind = kind;
    w->creation = creation;
    w->tail = &w->head;
    if (tc)
        w->tc = *tc;
    if (!keep(w, c, req, !creation)) {
        free(w);
        return LSMQ_ENOMEM;
    }
    int rc = queue_write(b, w, json, json_len);
    if (rc != 0) {
        m->kept--;
        server_replay_drop(w->head->r);
        free(w->head);
        free(w);
        return rc;
    }
    HASH_ADD_KEYPTR(hh, m->writes, w->key, klen, w);
    return BROKER_DEFERRED;
}

/*
 * A write of `key` is on its way (or landed, its waiters not yet run
 * again): keep req behind them (or answer it SYSTEM_BUSY, too_many_kept).
 * The store shows the new topic as soon as the writer has stored it, a
 * moment before the loop hears of it, and a request that came later must
 * not overtake the earlier ones kept for it: a producer's messages would
 * leave their order.
 */
static bool wait_in_line(broker *b, conn *c, const proto_cmd *req, const char *key)
{
    broker_meta *m = broker_meta_state(b);
    meta_write *w = NULL;
    HASH_FIND_STR(m->writes, key, w);
    return w && (too_many_kept(m, c, req) || keep(w, c, req, false));
}

/* While req runs again after the write of `key`: that write's outcome, if req asked for it. */
static bool own_outcome(broker *b, const char *key, int *status)
{
    replay_ctx *now = &broker_meta_state(b)->now;
    if (!now->key || !now->owner || strcmp(now->key, key) != 0)
        return false;
    *status = now->status;
    now->owner = false; /* once: a later write of the same name is a new one */
    return true;
}

/* A creation of `key` that failed, seen by the requests that waited for it. */
static int failed_creation(broker *b, const char *key)
{
    replay_ctx *now = &broker_meta_state(b)->now;
    return now->key && now->status != 0 && strcmp(now->key, key) == 0 ? now->status : 0;
}

int broker_topic_wait_for(broker *b, conn *c, const proto_cmd *req, const char *topic)
{
    char key[KEY_MAX];
    if (make_key(key, 'T', topic) != 0)
        return LSMQ_ETOOBIG;
    return wait_in_line(b, c, req, key) ? BROKER_DEFERRED : 0;
}

int broker_topic_ensure_for(broker *b, conn *c, const proto_cmd *req, const char *topic,
                            uint32_t queues, uint32_t perm, engine_topic_config *out)
{
    engine_topic_config tc;
    char key[KEY_MAX];
    if (make_key(key, 'T', topic) != 0)
        return LSMQ_ETOOBIG;
    if (wait_in_line(b, c, req, key))
        return BROKER_DEFERRED;
    if (engine_topic_get(broker_engine(b), topic, strlen(topic), out ? out : &tc) == 0)
        return 0;
    memset(&tc, 0, sizeof tc);
    if (strlen(topic) >= sizeof tc.name)
        return LSMQ_ETOOBIG;
    int rc = failed_creation(b, key);
    if (rc != 0)
        return rc;
    strcpy(tc.name, topic);
    tc.read_queue_nums = tc.write_queue_nums = queues;
    tc.perm = perm;
    return defer(b, c, req, key, META_TOPIC_PUT, true, &tc, NULL, 0);
}

/* An update or delete asked for by req: its outcome when req runs again after it, else queued. */
static int write_for(broker *b, conn *c, const proto_cmd *req, meta_kind kind, const char *name,
                     const engine_topic_config *tc, const char *json, size_t json_len)
{
    char key[KEY_MAX];
    bool topic = kind == META_TOPIC_PUT || kind == META_TOPIC_DELETE;
    if (make_key(key, topic ? 'T' : 'G', name) != 0)
        return LSMQ_ETOOBIG;
    int status;
    if (own_outcome(b, key, &status))
        return status;
    return defer(b, c, req, key, kind, false, tc, json, json_len);
}

int broker_topic_update_for(broker *b, conn *c, const proto_cmd *req,
                            const engine_topic_config *tc)
{
    return write_for(b, c, req, META_TOPIC_PUT, tc->name, tc, NULL, 0);
}

int broker_topic_delete_for(broker *b, conn *c, const proto_cmd *req, const char *topic)
{
    return write_for(b, c, req, META_TOPIC_DELETE, topic, NULL, NULL, 0);
}

int broker_group_create_for(broker *b, conn *c, const proto_cmd *req, const char *group,
                            const char *json, size_t json_len)
{
    char key[KEY_MAX];
    if (make_key(key, 'G', group) != 0)
        return LSMQ_ETOOBIG;
    int rc = failed_creation(b, key);
    if (rc != 0)
        return rc;
    return defer(b, c, req, key, META_GROUP_PUT, true, NULL, json, json_len);
}

int broker_group_update_for(broker *b, conn *c, const proto_cmd *req, const char *group,
                            const char *json, size_t json_len)
{
    return write_for(b, c, req, META_GROUP_PUT, group, NULL, json, json_len);
}

int broker_group_delete_for(broker *b, conn *c, const proto_cmd *req, const char *group)
{
    return write_for(b, c, req, META_GROUP_DELETE, group, NULL, NULL, 0);
}

void broker_answer_delete(conn *c, const proto_cmd *req, int rc, const char *what,
                          const char *name)
{
    if (rc == BROKER_DEFERRED)
        return; /* runs again once written */
    if (rc != 0 && rc != LSMQ_ENOTFOUND) {
        conn_reply_code(c, req->opaque, RS_SYSTEM_ERROR, lsmq_strerror(rc));
        return;
    }
    if (rc == 0)
        lsmq_log("broker: %s %s deleted (asked by %s)", what, name, conn_peer(c));
    conn_reply_code(c, req->opaque, RS_SUCCESS, NULL);
}
