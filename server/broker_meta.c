/*
 * Topic and subscription group config writes made from handlers without
 * blocking the loop, and the requests that wait on them (the continuation
 * contract is in broker_internal.h).
 *
 * A write goes to the store's writer (a synced write). Requests that need
 * its name meanwhile wait behind it: their jobs' broker_wait entries are
 * listed on the write in arrival order. When it lands, the loop first
 * takes the write off its name, then resumes the waiters one by one; each
 * re-runs the step that waited. That step may start the next write of the
 * name (an update that had only waited behind another) or wait behind one
 * an earlier waiter just started, so the ones after it stay behind in
 * turn and nothing overtakes. Writes of one name run one at a time.
 *
 * A waiter that is resumed learns the landed write's outcome through its
 * own fields (landed_key, landed_status, owner): an update or delete sees
 * its own outcome once, and everybody who waited for a creation that
 * failed sees that failure.
 *
 * Names are keyed with a kind letter: "T<topic>" and "G<group>".
 *
 * A replica's configs change only through its master's log: the engine
 * refuses the writes (LSMQ_EREADONLY), and admin requests are answered as
 * upstream's slaves answer them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "broker_internal.h"
#include "log.h"
#include "uthash.h"

/* One write in flight, and the requests waiting behind it. */
typedef struct meta_write {
    UT_hash_handle hh;
    broker_meta *m;
    broker_write_kind kind;
    bool creation;              /* an ensure: log it and route the new topic */
    int status;                 /* set by the writer thread */
    engine_topic_config tc;     /* BROKER_TOPIC_PUT */
    broker_wait *owner;         /* the waiter whose own update or delete it is */
    broker_wait *head, **tail;
    char key[];
} meta_write;

struct broker_meta {
    broker_ctx *ctx;
    broker_stats *stats;
    broker_registration *registration;
    meta_write *writes;  /* by key */
    size_t waiting;      /* waiters behind all writes (at most keptRequestsMax) */
};

void broker_wait_init(broker_wait *w, const conn *c, broker_resume_cb resume_cb,
                      broker_drop_cb drop_cb)
{
    memset(w, 0, sizeof *w);
    w->conn_id = server_conn_id(c);
    w->resume_cb = resume_cb;
    w->drop_cb = drop_cb;
}

int broker_meta_create(broker_modules *m, char *errbuf, size_t errlen)
{
    broker_meta *mt = proto_xcalloc(1, sizeof *mt);
    mt->ctx = &m->ctx;
    mt->stats = m->stats;
    mt->registration = m->registration;
    m->meta = mt;
    return 0;
}

/* After the store closed and its completions ran, nothing is left in flight. */
void broker_meta_destroy(broker_modules *m)
{
    broker_meta *mt = m->meta;
    meta_write *mw, *tmp;
    HASH_ITER(hh, mt->writes, mw, tmp) {
        HASH_DEL(mt->writes, mw);
        for (broker_wait *w = mw->head, *next; w; w = next) {
            next = w->next;
            w->drop_cb(w);
        }
        free(mw);
    }
    free(mt);
    m->meta = NULL;
}

/* Topic names are at most 127 bytes, group names at most 255 (the store's limits). */
#define KEY_MAX 258

static int make_key(char *key, char kind, const char *name)
{
    int n = snprintf(key, KEY_MAX, "%c%s", kind, name);
    return n < 0 || n >= KEY_MAX ? LSMQ_ETOOBIG : 0;
}

static meta_write *write_of(broker_meta *m, const char *key)
{
    meta_write *mw = NULL;
    HASH_FIND_STR(m->writes, key, mw);
    return mw;
}

/*
 * Waiting jobs hold copies in memory while their connections go on being
 * read: past keptRequestsMax, a request that would wait is answered
 * SYSTEM_BUSY instead (a client retries it), as a full writer queue is.
 */
static bool too_many_waiting(const broker_meta *m)
{
    return m->waiting >= m->ctx->cfg.kept_requests_max;
}

/* Queue w behind write mw; `owner` when mw is w's own update or delete. */
static int queue_behind(broker_meta *m, meta_write *mw, broker_wait *w, bool owner)
{
    if (too_many_waiting(m))
        return LSMQ_EBUSY;
    w->next = NULL;
    w->landed_key = NULL;
    w->landed_status = 0;
    w->owner = false;
    *mw->tail = w;
    mw->tail = &w->next;
    if (owner)
        mw->owner = w;
    m->waiting++;
    return BROKER_WAITING;
}

/* Side effects of a landed write that every waiter relies on. */
static void after_write(broker_meta *m, const meta_write *mw)
{
    const char *name = mw->key + 1;
    if (mw->status != 0) {
        proto_log(PROTO_LOG_WARN, "broker: writing the config of %s failed: %s", name, lsmq_strerror(mw->status));
        return;
    }
    broker_stats_config_changed(m->stats);
    switch (mw->kind) {
    case BROKER_TOPIC_PUT:
        if (mw->creation)
            proto_log(PROTO_LOG_INFO, "broker: created topic %s (%u queues, perm %u)", name,
                     mw->tc.write_queue_nums, mw->tc.perm);
        broker_registration_topics_changed(m->registration, mw->creation);
        break;
    case BROKER_TOPIC_DELETE:
        broker_registration_topics_changed(m->registration, false);
        break;
    case BROKER_GROUP_PUT:
        if (mw->creation)
            proto_log(PROTO_LOG_INFO, "broker: created subscription group %s", name);
        break;
    case BROKER_GROUP_DELETE:
        break;
    }
}

/* Loop thread: the write landed; resume its waiters in order. */
static void write_landed_cb(void *arg)
{
    meta_write *mw = arg;
    broker_meta *m = mw->m;
    HASH_DEL(m->writes, mw);
    bool open = m->ctx->engine != NULL; /* NULL once the broker is shutting down */
    if (open)
        after_write(m, mw);
    for (broker_wait *w = mw->head, *next; w; w = next) {
        next = w->next; /* w may wait again, elsewhere, or be freed */
        m->waiting--;
        conn *c = open ? server_conn_find(m->ctx->srv, w->conn_id) : NULL;
        if (c) {
            w->landed_key = mw->key;
            w->landed_status = mw->status;
            w->owner = w == mw->owner;
            w->resume_cb(w, c);
        } else {
            w->drop_cb(w);
        }
    }
    free(mw);
}

/* Writer thread. */
static void write_cb(void *ctx, int status)
{
    meta_write *mw = ctx;
    mw->status = status;
    server_post(mw->m->ctx->srv, write_landed_cb, mw);
}

static int queue_engine_write(broker_meta *m, meta_write *mw, const char *json,
                              size_t json_len)
{
    engine *e = m->ctx->engine;
    const char *name = mw->key + 1;
    if (!e)
        return LSMQ_ECLOSED;
    switch (mw->kind) {
    case BROKER_TOPIC_PUT: return engine_topic_put_async(e, &mw->tc, write_cb, mw);
    case BROKER_TOPIC_DELETE:
        return engine_topic_delete_async(e, name, strlen(name), write_cb, mw);
    case BROKER_GROUP_PUT:
        return engine_group_put_async(e, name, strlen(name), json, json_len, write_cb, mw);
    case BROKER_GROUP_DELETE:
        return engine_group_delete_async(e, name, strlen(name), write_cb, mw);
    }
    return LSMQ_EINVAL;
}

/* A new write of `key`, with w behind it. BROKER_WAITING or an error (nothing queued). */
static int start_write(broker_meta *m, const char *key, broker_write_kind kind, bool creation,
                       const engine_topic_config *tc, const char *json, size_t json_len,
                       broker_wait *w)
{
    if (too_many_waiting(m))
        return LSMQ_EBUSY;
    size_t klen = strlen(key);
    meta_write *mw = proto_xcalloc(1, sizeof *mw + klen + 1);
    memcpy(mw->key, key, klen + 1);
    mw->m = m;
    mw->kind = kind;
    mw->creation = creation;
    mw->tail = &mw->head;
    if (tc)
        mw->tc = *tc;
    /* The completion is posted, so it cannot land before mw is listed below. */
    int rc = queue_engine_write(m, mw, json, json_len);
    if (rc != 0) {
        free(mw);
        return rc;
    }
    HASH_ADD_KEYPTR(hh, m->writes, mw->key, klen, mw);
    return queue_behind(m, mw, w, !creation);
}

/* Behind the write of `key` on its way, else a new write described by the arguments. */
static int write_or_wait(broker_meta *m, const char *key, broker_write_kind kind,
                         bool creation, const engine_topic_config *tc, const char *json,
                         size_t json_len, broker_wait *w)
{
    meta_write *mw = write_of(m, key);
    if (mw) /* resumed after it; an update or delete then starts its own */
        return queue_behind(m, mw, w, false);
    return start_write(m, key, kind, creation, tc, json, json_len, w);
}

/* Resumed after its own write of `key`: that write's outcome, once. */
static bool own_outcome(broker_wait *w, const char *key, int *status)
{
    if (!w->landed_key || !w->owner || strcmp(w->landed_key, key) != 0)
        return false;
    *status = w->landed_status;
    w->owner = false; /* a later write of the same name is a new one */
    return true;
}

/* Resumed after a write of `key` that failed: its error (a failed creation). */
static int failed_creation(const broker_wait *w, const char *key)
{
    return w->landed_key && w->landed_status != 0 && strcmp(w->landed_key, key) == 0
               ? w->landed_status
               : 0;
}

bool broker_meta_topic_ready(broker_meta *m, const char *topic, engine_topic_config *out)
{
    if (m->writes) { /* only then can the topic have a write on its way */
        char key[KEY_MAX];
        if (make_key(key, 'T', topic) != 0 || write_of(m, key))
            return false;
    }
    return engine_topic_get(m->ctx->engine, topic, strlen(topic), out) == 0;
}

int broker_meta_topic_wait(broker_meta *m, const char *topic, broker_wait *w)
{
    char key[KEY_MAX];
    if (make_key(key, 'T', topic) != 0)
        return LSMQ_ETOOBIG;
    meta_write *mw = write_of(m, key);
    return mw ? queue_behind(m, mw, w, false) : 0;
}

/*
 * The store shows a new topic as soon as the writer has stored it, a
 * moment before the loop hears of it; a request that came later must still
 * not overtake the ones waiting for it, so a write on its way is waited
 * for even when the topic is already readable.
 */
int broker_meta_topic_ensure(broker_meta *m, const char *topic, uint32_t queues,
                             uint32_t perm, engine_topic_config *out, broker_wait *w)
{
    engine_topic_config tc;
    char key[KEY_MAX];
    if (make_key(key, 'T', topic) != 0)
        return LSMQ_ETOOBIG;
    meta_write *mw = write_of(m, key);
    if (mw)
        return queue_behind(m, mw, w, false);
    if (engine_topic_get(m->ctx->engine, topic, strlen(topic), out ? out : &tc) == 0)
        return 0;
    memset(&tc, 0, sizeof tc);
    if (strlen(topic) >= sizeof tc.name)
        return LSMQ_ETOOBIG;
    int rc = failed_creation(w, key);
    if (rc != 0)
        return rc;
    strcpy(tc.name, topic);
    tc.read_queue_nums = tc.write_queue_nums = queues;
    tc.perm = perm;
    return start_write(m, key, BROKER_TOPIC_PUT, true, &tc, NULL, 0, w);
}

int broker_meta_group_create(broker_meta *m, const char *group, const char *json,
                             size_t json_len, broker_wait *w)
{
    char key[KEY_MAX];
    if (make_key(key, 'G', group) != 0)
        return LSMQ_ETOOBIG;
    int rc = failed_creation(w, key);
    if (rc != 0)
        return rc;
    return write_or_wait(m, key, BROKER_GROUP_PUT, true, NULL, json, json_len, w);
}

int broker_meta_write(broker_meta *m, const broker_write *wr, broker_wait *w)
{
    char key[KEY_MAX];
    bool topic = wr->kind == BROKER_TOPIC_PUT || wr->kind == BROKER_TOPIC_DELETE;
    if (make_key(key, topic ? 'T' : 'G', wr->name) != 0)
        return LSMQ_ETOOBIG;
    int status;
    if (own_outcome(w, key, &status))
        return status;
    return write_or_wait(m, key, wr->kind, false, wr->tc, wr->json, wr->json_len, w);
}

/* ==== Requests answered with their own write's outcome ===================== */

typedef struct answer_job {
    broker_wait wait;
    broker_meta *m;
    int32_t opaque;
    bool oneway;
    broker_answer_cb answer_cb;
    broker_write wr;            /* its views point into the fields below */
    engine_topic_config tc;
    char *json;
    char name[];
} answer_job;

static void answer_job_free(answer_job *j)
{
    free(j->json);
    free(j);
}

/* Run the write, or look at its outcome when resumed; answer once it is known. */
static void answer_step(answer_job *j, conn *c)
{
    int rc = broker_meta_write(j->m, &j->wr, &j->wait);
    if (rc == BROKER_WAITING)
        return;
    if (!j->oneway && rc == LSMQ_EBUSY) /* too many waiting, or the writer's queue is full */
        server_conn_reply_code(c, j->opaque, RS_SYSTEM_BUSY, BROKER_BUSY_REMARK);
    else if (!j->oneway)
        j->answer_cb(c, j->opaque, rc, &j->wr);
    answer_job_free(j);
}

static void answer_resume_cb(broker_wait *w, conn *c)
{
    answer_step(BROKER_JOB_OF(w, answer_job, wait), c);
}

static void answer_drop_cb(broker_wait *w)
{
    answer_job_free(BROKER_JOB_OF(w, answer_job, wait));
}

void broker_meta_write_answered(broker_meta *m, conn *c, const proto_cmd *req,
                                const broker_write *wr, broker_answer_cb answer_cb)
{
    if (m->ctx->replica) {
        if (!proto_cmd_is_oneway(req))
            server_conn_reply_code(c, req->opaque, RS_SYSTEM_ERROR,
                                   "Can't modify topic or subscription group from slave broker, "
                                   "please execute it from master broker.");
        return;
    }
    size_t nlen = strlen(wr->name);
    answer_job *j = proto_xcalloc(1, sizeof *j + nlen + 1);
    broker_wait_init(&j->wait, c, answer_resume_cb, answer_drop_cb);
    j->m = m;
    j->opaque = req->opaque;
    j->oneway = proto_cmd_is_oneway(req);
    j->answer_cb = answer_cb;
    memcpy(j->name, wr->name, nlen + 1);
    j->wr = (broker_write){.kind = wr->kind, .name = j->name};
    if (wr->tc) {
        j->tc = *wr->tc;
        j->wr.tc = &j->tc;
    }
    if (wr->json) {
        j->json = proto_xmalloc(wr->json_len);
        memcpy(j->json, wr->json, wr->json_len);
        j->wr.json = j->json;
        j->wr.json_len = wr->json_len;
    }
    answer_step(j, c);
}

void broker_answer_delete_cb(conn *c, int32_t opaque, int status, const broker_write *wr)
{
    if (status != 0 && status != LSMQ_ENOTFOUND) {
        server_conn_reply_code(c, opaque, RS_SYSTEM_ERROR, lsmq_strerror(status));
        return;
    }
    if (status == 0)
        proto_log(PROTO_LOG_INFO, "broker: %s %s deleted (asked by %s)",
                 wr->kind == BROKER_TOPIC_DELETE ? "topic" : "subscription group", wr->name,
                 server_conn_peer(c));
    server_conn_reply_code(c, opaque, RS_SUCCESS, NULL);
}
