/*
 * The client registry (REMOTING.md §3.2, §3.3, §3.9, §6.3): which
 * connections belong to which consumer and producer groups, and what each
 * consumer group subscribes to. Heartbeats register and refresh members;
 * UNREGISTER_CLIENT, a closed connection or a registration silent for
 * channelExpiredTimeout removes them. Whenever a consumer group's
 * membership or subscriptions change, every member connection gets a
 * oneway NOTIFY_CONSUMER_IDS_CHANGED so Java clients rebalance at once.
 * A heartbeat creates a consumer group's missing config and %RETRY% topic
 * first; it then waits for those writes as a job and goes on with the
 * consumer it stopped at (broker_internal.h), answering once all is applied.
 *
 * Everything here lives on the loop thread. A member is keyed by its
 * connection id, never by a conn pointer, so a closed connection can never
 * be written to from here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>

#include "alloc.h"
#include "broker_internal.h"
#include "log.h"
#include "message_id.h"

#define SCAN_INTERVAL_MAX_S 10.0

/* One connection registered under a group. */
typedef struct member {
    uint64_t conn_id;
    char client_id[256];
    char addr[64];
    int language, version;
    double last_seen;            /* ev_now of its last heartbeat */
    struct member *next;
} member;

/* A subscription as the pull code reads it, plus what connection lists report. */
typedef struct sub_entry {
    broker_subscription pub;
    char **tags;
    size_t n_tags;
    char expression_type[32];
    bool class_filter_mode;
    bool seen;                   /* in the heartbeat being applied */
    UT_hash_handle hh;           /* by pub.topic */
} sub_entry;

typedef struct consumer_group {
    char *name;
    member *members;
    char consume_type[32];       /* of the last heartbeat */
    char message_model[32];
    char consume_from_where[64];
    bool notify;                 /* notifyConsumerIdsChangedEnable */
    sub_entry *subs;
    UT_hash_handle hh;
} consumer_group;

typedef struct producer_group {
    char *name;
    member *members;
    UT_hash_handle hh;
} producer_group;

struct broker_clients {
    broker_ctx *ctx;
    broker_meta *meta;           /* groups and %RETRY% topics heartbeats create */
    consumer_group *consumers;
    producer_group *producers;
    ev_timer scan;
    double expire_s;
    int32_t next_opaque;         /* our own counter for broker-initiated requests */
};

/* Who sent a heartbeat: the connection and what the frame says about it. */
typedef struct member_info {
    uint64_t conn_id;
    const char *client_id;
    const char *addr;
    int language, version;
    double now;
} member_info;

static char *xstrdup(const char *s)
{
    char *d = proto_xstrdup(s);
    return d;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* ==== Members ============================================================ */

/* Refresh or add the member for this connection; true when it is new. */
static bool member_upsert(member **list, const member_info *mi)
{
    for (member *m = *list; m; m = m->next) {
        if (m->conn_id != mi->conn_id)
            continue;
        if (strcmp(m->client_id, mi->client_id) != 0)
            proto_log(PROTO_LOG_INFO, "broker: connection %s changed client id %s -> %s", mi->addr, m->client_id,
                     mi->client_id);
        copy_str(m->client_id, sizeof m->client_id, mi->client_id);
        m->language = mi->language;
        m->version = mi->version;
        m->last_seen = mi->now;
        return false;
    }
    member *m = proto_xcalloc(1, sizeof *m);
    m->conn_id = mi->conn_id;
    copy_str(m->client_id, sizeof m->client_id, mi->client_id);
    copy_str(m->addr, sizeof m->addr, mi->addr);
    m->language = mi->language;
    m->version = mi->version;
    m->last_seen = mi->now;
    m->next = *list;
    *list = m;
    return true;
}

/*
 * Remove the members of one connection (conn_id != 0), or those silent since
 * before `expired_before` (conn_id == 0). Returns how many went.
 */
static int members_remove(member **list, uint64_t conn_id, double expired_before,
                          const char *group)
{
    int removed = 0;
    member **pp = list;
    while (*pp) {
        member *m = *pp;
        bool drop = conn_id ? m->conn_id == conn_id : m->last_seen < expired_before;
        if (!drop) {
            pp = &m->next;
            continue;
        }
        if (!conn_id)
            proto_log(PROTO_LOG_INFO, "broker: client %s (%s) of group %s expired", m->client_id, m->addr, group);
        *pp = m->next;
        free(m);
        removed++;
    }
    return removed;
}

static void members_free(member *m)
{
    while (m) {
        member *next = m->next;
        free(m);
        m = next;
    }
}

static json_t *member_json(const member *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "clientAddr", broker_json_str(m->addr));
    json_object_set_new(o, "clientId", broker_json_str(m->client_id));
    json_object_set_new(o, "language", json_string(proto_language_name(m->language)));
    json_object_set_new(o, "version", json_integer(m->version));
    return o;
}

static json_t *members_json(const member *list)
{
    json_t *a = json_array();
    for (const member *m = list; m; m = m->next)
        json_array_append_new(a, member_json(m));
    return a;
}

/* ==== Subscriptions ====================================================== */

static void sub_free(sub_entry *e)
{
    for (size_t i = 0; i < e->n_tags; i++)
        free(e->tags[i]);
    free(e->tags);
    free(e->pub.codes);
    free(e);
}

static void sub_add_tag(sub_entry *e, const char *tag, size_t len)
{
    char **tags = proto_xrealloc(e->tags, (e->n_tags + 1) * sizeof *tags);
    e->tags = tags;
    char *t = proto_xmalloc(len + 1);
    memcpy(t, tag, len);
    t[len] = 0;
    e->tags[e->n_tags++] = t;
}

/* Tags from subString when the client sent no tagsSet: split on "||", trimmed (§6.6). */
static void sub_split_tags(sub_entry *e, const char *s)
{
    while (*s) {
        const char *end = strstr(s, "||");
        size_t n = end ? (size_t)(end - s) : strlen(s);
        const char *a = s, *z = s + n;
        while (a < z && (*a == ' ' || *a == '\t'))
            a++;
        while (z > a && (z[-1] == ' ' || z[-1] == '\t'))
            z--;
        if (z > a)
            sub_add_tag(e, a, (size_t)(z - a));
        s = end ? end + 2 : s + n;
    }
}

/* One codeSet element: a JSON number (Java, ali-ons) or a decimal string (Go). */
static int64_t code_value(json_t *v)
{
    if (json_is_integer(v))
        return json_integer_value(v);
    const char *s = json_string_value(v);
    return s ? strtoll(s, NULL, 10) : 0;
}

/*
 * Tag codes: computed from the tags when there are any (clients derive the
 * codeSet from them with the same hash, and not every client sends numbers),
 * else the client's codeSet as given.
 */
static void sub_fill_codes(sub_entry *e, json_t *code_set)
{
    size_t n = e->n_tags ? e->n_tags : json_is_array(code_set) ? json_array_size(code_set) : 0;
    if (n == 0)
        return;
    e->pub.codes = proto_xcalloc(n, sizeof *e->pub.codes);
    for (size_t i = 0; i < n; i++) {
        if (e->n_tags)
            e->pub.codes[i] = proto_tag_hash(e->tags[i], strlen(e->tags[i]));
        else
            e->pub.codes[i] = code_value(json_array_get(code_set, i));
    }
    e->pub.n_codes = n;
}

/* A SubscriptionData object (§5.4) as an entry; NULL when it has no topic. */
static sub_entry *sub_parse(json_t *sd)
{
    const char *topic = json_string_value(json_object_get(sd, "topic"));
    if (!topic || !*topic)
        return NULL;
    sub_entry *e = proto_xcalloc(1, sizeof *e);
    copy_str(e->pub.topic, sizeof e->pub.topic, topic);
    const char *sub = json_string_value(json_object_get(sd, "subString"));
    copy_str(e->pub.sub_string, sizeof e->pub.sub_string, sub ? sub : "*");
    const char *type = json_string_value(json_object_get(sd, "expressionType"));
    copy_str(e->expression_type, sizeof e->expression_type, type && *type ? type : "TAG");
    e->pub.sql92 = strcmp(e->expression_type, "SQL92") == 0;
    e->pub.sub_version = json_integer_value(json_object_get(sd, "subVersion"));
    e->class_filter_mode = json_is_true(json_object_get(sd, "classFilterMode"));
    e->pub.all = !e->pub.sql92 && (!sub || !*sub || strcmp(sub, "*") == 0);
    if (e->pub.all)
        return e;
    json_t *tags = json_object_get(sd, "tagsSet");
    if (json_is_array(tags)) {
        size_t i;
        json_t *t;
        json_array_foreach(tags, i, t)
            if (json_is_string(t))
                sub_add_tag(e, json_string_value(t), json_string_length(t));
    } else if (!e->pub.sql92) {
        sub_split_tags(e, e->pub.sub_string);
    }
    sub_fill_codes(e, json_object_get(sd, "codeSet"));
    return e;
}

static bool sub_same_filter(const sub_entry *a, const sub_entry *b)
{
    return strcmp(a->pub.sub_string, b->pub.sub_string) == 0 &&
           strcmp(a->expression_type, b->expression_type) == 0;
}

/* Apply one incoming subscription; true when the group's filter for it changed. */
static bool sub_apply(consumer_group *g, sub_entry *in)
{
    sub_entry *old = NULL;
    HASH_FIND(hh, g->subs, in->pub.topic, strlen(in->pub.topic), old);
    in->seen = true;
    if (!old) {
        HASH_ADD_KEYPTR(hh, g->subs, in->pub.topic, strlen(in->pub.topic), in);
        return true;
    }
    old->seen = true;
    /* Only a newer subVersion replaces (§6.3), so members that disagree settle. */
    if (in->pub.sub_version <= old->pub.sub_version) {
        sub_free(in);
        return false;
    }
    bool changed = !sub_same_filter(old, in);
    HASH_DEL(g->subs, old);
    sub_free(old);
    HASH_ADD_KEYPTR(hh, g->subs, in->pub.topic, strlen(in->pub.topic), in);
    return changed;
}

/* Make the group's table what this heartbeat says; true on any change. */
static bool subs_update(consumer_group *g, json_t *set)
{
    bool changed = false;
    sub_entry *e, *tmp;
    HASH_ITER(hh, g->subs, e, tmp)
        e->seen = false;
    size_t i;
    json_t *sd;
    if (json_is_array(set)) {
        json_array_foreach(set, i, sd) {
            sub_entry *in = sub_parse(sd);
            if (in && sub_apply(g, in))
                changed = true;
        }
    }
    /* Topics this heartbeat no longer mentions are unsubscribed (§6.3). */
    HASH_ITER(hh, g->subs, e, tmp) {
        if (e->seen)
            continue;
        HASH_DEL(g->subs, e);
        sub_free(e);
        changed = true;
    }
    return changed;
}

static json_t *sub_json(const sub_entry *e)
{
    json_t *o = json_object();
    json_object_set_new(o, "classFilterMode", json_boolean(e->class_filter_mode));
    json_t *codes = json_array();
    for (size_t i = 0; i < e->pub.n_codes; i++)
        json_array_append_new(codes, json_integer(e->pub.codes[i]));
    json_object_set_new(o, "codeSet", codes);
    json_object_set_new(o, "expressionType", broker_json_str(e->expression_type));
    json_object_set_new(o, "subString", broker_json_str(e->pub.sub_string));
    json_object_set_new(o, "subVersion", json_integer(e->pub.sub_version));
    json_t *tags = json_array();
    for (size_t i = 0; i < e->n_tags; i++)
        json_array_append_new(tags, broker_json_str(e->tags[i]));
    json_object_set_new(o, "tagsSet", tags);
    json_object_set_new(o, "topic", broker_json_str(e->pub.topic));
    return o;
}

/* ==== Groups ============================================================= */

static consumer_group *consumer_find(broker_clients *bc, const char *name)
{
    consumer_group *g = NULL;
    if (name)
        HASH_FIND_STR(bc->consumers, name, g);
    return g;
}

static producer_group *producer_find(broker_clients *bc, const char *name)
{
    producer_group *g = NULL;
    if (name)
        HASH_FIND_STR(bc->producers, name, g);
    return g;
}

static consumer_group *consumer_get(broker_clients *bc, const char *name)
{
    consumer_group *g = consumer_find(bc, name);
    if (g)
        return g;
    g = proto_xcalloc(1, sizeof *g);
    g->name = xstrdup(name);
    g->notify = true;
    HASH_ADD_KEYPTR(hh, bc->consumers, g->name, strlen(g->name), g);
    return g;
}

static producer_group *producer_get(broker_clients *bc, const char *name)
{
    producer_group *g = producer_find(bc, name);
    if (g)
        return g;
    g = proto_xcalloc(1, sizeof *g);
    g->name = xstrdup(name);
    HASH_ADD_KEYPTR(hh, bc->producers, g->name, strlen(g->name), g);
    return g;
}

static void consumer_free(broker_clients *bc, consumer_group *g)
{
    HASH_DEL(bc->consumers, g);
    sub_entry *e, *tmp;
    HASH_ITER(hh, g->subs, e, tmp) {
        HASH_DEL(g->subs, e);
        sub_free(e);
    }
    members_free(g->members);
    free(g->name);
    free(g);
}

static void producer_free(broker_clients *bc, producer_group *g)
{
    HASH_DEL(bc->producers, g);
    members_free(g->members);
    free(g->name);
    free(g);
}

/* NOTIFY_CONSUMER_IDS_CHANGED (oneway) to every member connection (§3.9). */
static void notify_group(broker_clients *bc, consumer_group *g)
{
    if (!g->notify)
        return;
    server *s = bc->ctx->srv;
    for (member *m = g->members; m; m = m->next) {
        conn *c = server_conn_find(s, m->conn_id);
        if (!c)
            continue;
        proto_cmd *n = proto_cmd_request(RC_NOTIFY_CONSUMER_IDS_CHANGED);
        n->opaque = bc->next_opaque++;
        proto_cmd_set(n, "consumerGroup", g->name);
        server_conn_send_oneway(c, n, NULL, 0);
    }
}

/* After members left a consumer group: drop it when empty, else tell the rest. */
static void consumer_members_left(broker_clients *bc, consumer_group *g)
{
    if (!g->members) {
        proto_log(PROTO_LOG_INFO, "broker: consumer group %s has no members left", g->name);
        consumer_free(bc, g);
        return;
    }
    notify_group(bc, g);
}

/*
 * Remove registrations of one connection (conn_id != 0) or every expired one
 * (conn_id == 0), notifying the groups that still have members.
 */
static void remove_members(broker_clients *bc, uint64_t conn_id, double expired_before)
{
    consumer_group *g, *gtmp;
    HASH_ITER(hh, bc->consumers, g, gtmp) {
        if (members_remove(&g->members, conn_id, expired_before, g->name) > 0)
            consumer_members_left(bc, g);
    }
    producer_group *p, *ptmp;
    HASH_ITER(hh, bc->producers, p, ptmp) {
        if (members_remove(&p->members, conn_id, expired_before, p->name) > 0 && !p->members)
            producer_free(bc, p);
    }
}

/* ==== HEART_BEAT ========================================================= */

/*
 * A heartbeat being applied. Its consumer groups may need their config and
 * %RETRY% topic written first; the job then waits (broker_internal.h) and
 * goes on with the consumer it stopped at.
 */
typedef struct heartbeat_job {
    broker_wait wait;
    broker_clients *bc;
    json_t *hb;                  /* the HeartbeatData; the job owns it */
    int32_t opaque;
    bool oneway;
    int language, version;
    size_t consumer;             /* index in consumerDataSet being applied */
    bool have_group;             /* gc holds that consumer's group config */
    broker_group_config gc;
} heartbeat_job;

/* Does the group subscribe to an order topic? Then its retry topic is ordered too (§3.2). */
static bool subscribes_order_topic(engine *e, json_t *set)
{
    size_t i;
    json_t *sd;
    engine_topic_config tc;
    json_array_foreach(set, i, sd) {
        const char *topic = json_string_value(json_object_get(sd, "topic"));
        if (topic && engine_topic_get(e, topic, strlen(topic), &tc) == 0 && tc.order)
            return true;
    }
    return false;
}

/*
 * %RETRY%<group> with the group's retryQueueNums queues, perm RW (§6.7),
 * ordered when the group subscribes to an order topic. BROKER_WAITING or
 * LSMQ_EBUSY when the heartbeat must wait (or cannot); else 0, failures
 * only logged. Run again when resumed.
 */
static int ensure_retry_topic(broker_clients *bc, const broker_group_config *gc, json_t *subs,
                              broker_wait *w)
{
    if (gc->retry_queue_nums <= 0 || bc->ctx->replica)
        return 0; /* a replica has its master's retry topics, or none yet */
    char topic[PROTO_TOPIC_MAX + 1];
    int n = snprintf(topic, sizeof topic, "%s%s", BROKER_RETRY_PREFIX, gc->name);
    if (n < 0 || (size_t)n >= sizeof topic)
        return 0;
    engine_topic_config tc;
    int rc = broker_meta_topic_ensure(bc->meta, topic, (uint32_t)gc->retry_queue_nums,
                                      ENGINE_PERM_READ | ENGINE_PERM_WRITE, &tc, w);
    if (rc == 0 && !tc.order && subscribes_order_topic(bc->ctx->engine, subs)) {
        tc.order = 1;
        broker_write wr = {.kind = BROKER_TOPIC_PUT, .name = topic, .tc = &tc};
        rc = broker_meta_write(bc->meta, &wr, w);
    }
    if (rc == BROKER_WAITING || rc == LSMQ_EBUSY)
        return rc;
    if (rc != 0)
        proto_log(PROTO_LOG_WARN, "broker: cannot create or update %s: %s", topic, lsmq_strerror(rc));
    return 0;
}

static void copy_enum(char *dst, size_t cap, json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    if (v)
        copy_str(dst, cap, v);
}

/* Register the member and its subscriptions under the group; notify on change. */
static void join_consumer_group(broker_clients *bc, const member_info *mi, const char *group,
                                const broker_group_config *gc, json_t *cd)
{
    json_t *subs = json_object_get(cd, "subscriptionDataSet");
    consumer_group *g = consumer_get(bc, group);
    bool changed = member_upsert(&g->members, mi);
    if (changed)
        proto_log(PROTO_LOG_INFO, "broker: consumer %s (%s) joined group %s", mi->client_id, mi->addr, group);
    copy_enum(g->consume_type, sizeof g->consume_type, cd, "consumeType");
    copy_enum(g->message_model, sizeof g->message_model, cd, "messageModel");
    copy_enum(g->consume_from_where, sizeof g->consume_from_where, cd, "consumeFromWhere");
    if (subs_update(g, subs))
        changed = true;
    g->notify = gc->notify_ids_changed;
    if (changed)
        notify_group(bc, g);
}

/*
 * One ConsumerData of a heartbeat (§3.2 step 1): its group config (created
 * when missing), its retry topic, then the registration. BROKER_WAITING or
 * LSMQ_EBUSY when it cannot go on now; 0 once applied or skipped.
 */
static int heartbeat_consumer(heartbeat_job *j, const member_info *mi, json_t *cd)
{
    broker_clients *bc = j->bc;
    const char *group = json_string_value(json_object_get(cd, "groupName"));
    if (!group || !*group)
        return 0;
    if (!j->have_group) {
        int rc = broker_group_find(bc->ctx, bc->meta, group, &j->gc, &j->wait);
        if (rc == BROKER_WAITING || rc == LSMQ_EBUSY)
            return rc;
        if (rc != 0)
            return 0; /* unknown group and no auto-create: skip it, as 5.x does */
        j->have_group = true;
    }
    json_t *subs = json_object_get(cd, "subscriptionDataSet");
    int rc = ensure_retry_topic(bc, &j->gc, subs, &j->wait);
    if (rc != 0)
        return rc;
    join_consumer_group(bc, mi, group, &j->gc, cd);
    return 0;
}

static void heartbeat_producer(broker_clients *bc, const member_info *mi, json_t *pd)
{
    const char *group = json_string_value(json_object_get(pd, "groupName"));
    if (!group || !*group)
        return;
    producer_group *g = producer_get(bc, group);
    if (member_upsert(&g->members, mi))
        proto_log(PROTO_LOG_INFO, "broker: producer %s (%s) joined group %s", mi->client_id, mi->addr, group);
}

static void heartbeat_free(heartbeat_job *j)
{
    json_decref(j->hb);
    free(j);
}

/* Apply the heartbeat from the consumer it stopped at; answer once all is applied. */
static void heartbeat_run(heartbeat_job *j, conn *c)
{
    member_info mi = {.conn_id = server_conn_id(c),
                      .client_id = json_string_value(json_object_get(j->hb, "clientID")),
                      .addr = server_conn_peer(c), .language = j->language, .version = j->version,
                      .now = ev_now(server_loop(j->bc->ctx->srv))};
    size_t i;
    json_t *d;
    json_t *consumers = json_object_get(j->hb, "consumerDataSet");
    size_t n = json_is_array(consumers) ? json_array_size(consumers) : 0;
    for (; j->consumer < n; j->consumer++, j->have_group = false) {
        int rc = heartbeat_consumer(j, &mi, json_array_get(consumers, j->consumer));
        if (rc == BROKER_WAITING)
            return; /* heartbeat_resume_cb goes on from here */
        if (rc == LSMQ_EBUSY) {
            if (!j->oneway)
                server_conn_reply_code(c, j->opaque, RS_SYSTEM_BUSY, BROKER_BUSY_REMARK);
            heartbeat_free(j);
            return;
        }
    }
    json_t *producers = json_object_get(j->hb, "producerDataSet");
    if (json_is_array(producers))
        json_array_foreach(producers, i, d)
            heartbeat_producer(j->bc, &mi, d);
    if (!j->oneway)
        server_conn_reply_code(c, j->opaque, RS_SUCCESS, NULL);
    heartbeat_free(j);
}

static void heartbeat_resume_cb(broker_wait *w, conn *c)
{
    heartbeat_run(BROKER_JOB_OF(w, heartbeat_job, wait), c);
}

static void heartbeat_drop_cb(broker_wait *w)
{
    heartbeat_free(BROKER_JOB_OF(w, heartbeat_job, wait));
}

static void on_heart_beat(server *s, conn *c, proto_cmd *req, void *ctx)
{
    json_t *hb = req->body ? json_loadb((const char *)req->body, req->body_len, 0, NULL) : NULL;
    if (!json_is_object(hb) || !json_string_value(json_object_get(hb, "clientID"))) {
        server_conn_reply_code(c, req->opaque, RS_SYSTEM_ERROR,
                        hb ? "HeartbeatData has no clientID" : "HeartbeatData body is not JSON");
        json_decref(hb);
        return;
    }
    heartbeat_job *j = proto_xcalloc(1, sizeof *j);
    broker_wait_init(&j->wait, c, heartbeat_resume_cb, heartbeat_drop_cb);
    j->bc = ctx;
    j->hb = hb;
    j->opaque = req->opaque;
    j->oneway = proto_cmd_is_oneway(req);
    j->language = req->language;
    j->version = req->version;
    heartbeat_run(j, c);
}

/* ==== UNREGISTER_CLIENT, consumer list, connection lists, client check === */

static void on_unregister_client(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_clients *bc = ctx;
    if (!broker_require(c, req, "clientID"))
        return;
    uint64_t id = server_conn_id(c);
    producer_group *p = producer_find(bc, proto_cmd_get(req, "producerGroup"));
    if (p && members_remove(&p->members, id, 0, p->name) > 0 && !p->members)
        producer_free(bc, p);
    consumer_group *g = consumer_find(bc, proto_cmd_get(req, "consumerGroup"));
    if (g && members_remove(&g->members, id, 0, g->name) > 0) {
        proto_log(PROTO_LOG_INFO, "broker: client %s left consumer group %s", proto_cmd_get(req, "clientID"),
                 g->name);
        consumer_members_left(bc, g);
    }
    server_conn_reply_code(c, req->opaque, RS_SUCCESS, NULL);
}

static void on_get_consumer_list_by_group(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_clients *bc = ctx;
    const char *group = broker_require(c, req, "consumerGroup");
    if (!group)
        return;
    consumer_group *g = consumer_find(bc, group);
    if (!g || !g->members) {
        broker_reply_codef(c, req->opaque, RS_SYSTEM_ERROR, "no consumer for this group, %s",
                           group);
        return;
    }
    json_t *ids = json_array();
    for (member *m = g->members; m; m = m->next)
        json_array_append_new(ids, broker_json_str(m->client_id));
    json_t *body = json_object();
    json_object_set_new(body, "consumerIdList", ids);
    broker_reply_json(c, req->opaque, body);
}

static void on_get_consumer_connection_list(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_clients *bc = ctx;
    const char *group = broker_require(c, req, "consumerGroup");
    if (!group)
        return;
    consumer_group *g = consumer_find(bc, group);
    if (!g || !g->members) {
        broker_reply_codef(c, req->opaque, RS_CONSUMER_NOT_ONLINE,
                           "the consumer group[%s] not online", group);
        return;
    }
    json_t *body = json_object();
    json_object_set_new(body, "connectionSet", members_json(g->members));
    if (g->consume_from_where[0])
        json_object_set_new(body, "consumeFromWhere", json_string(g->consume_from_where));
    if (g->consume_type[0])
        json_object_set_new(body, "consumeType", json_string(g->consume_type));
    if (g->message_model[0])
        json_object_set_new(body, "messageModel", json_string(g->message_model));
    json_t *table = json_object();
    for (sub_entry *e = g->subs; e; e = e->hh.next)
        json_object_set_new(table, e->pub.topic, sub_json(e));
    json_object_set_new(body, "subscriptionTable", table);
    broker_reply_json(c, req->opaque, body);
}

static void on_get_producer_connection_list(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_clients *bc = ctx;
    const char *group = broker_require(c, req, "producerGroup");
    if (!group)
        return;
    producer_group *g = producer_find(bc, group);
    if (!g || !g->members) {
        broker_reply_codef(c, req->opaque, RS_SYSTEM_ERROR, "the producer group[%s] not exist",
                           group);
        return;
    }
    json_t *body = json_object();
    json_object_set_new(body, "connectionSet", members_json(g->members));
    broker_reply_json(c, req->opaque, body);
}

/* TAG subscriptions always pass; property (SQL92) filtering is not built (§3.2). */
static void on_check_client_config(server *s, conn *c, proto_cmd *req, void *ctx)
{
    json_t *body = req->body ? json_loadb((const char *)req->body, req->body_len, 0, NULL) : NULL;
    json_t *sd = json_object_get(body, "subscriptionData");
    const char *type = json_string_value(json_object_get(sd, "expressionType"));
    if (!type || !*type || strcmp(type, "TAG") == 0) {
        server_conn_reply_code(c, req->opaque, RS_SUCCESS, NULL);
    } else if (strcmp(type, "SQL92") == 0) {
        server_conn_reply_code(c, req->opaque, RS_SYSTEM_ERROR, "SQL92 filtering is not enabled");
    } else {
        char remark[128];
        snprintf(remark, sizeof remark,
                 "The broker does not support consumer to filter message by %.64s", type);
        server_conn_reply_code(c, req->opaque, RS_SYSTEM_ERROR, remark);
    }
    json_decref(body);
}

/* ==== Connection close and expiry ======================================== */

static void conn_close_cb(server *s, conn *c, void *ctx)
{
    remove_members(ctx, server_conn_id(c), 0);
}

static void scan_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    broker_clients *bc = (broker_clients *)((char *)w - offsetof(broker_clients, scan));
    remove_members(bc, 0, ev_now(loop) - bc->expire_s);
}

/* ==== Lifecycle and queries ============================================== */

/* Needs meta (heartbeats create groups and %RETRY% topics). */
int broker_clients_create(broker_modules *m, char *errbuf, size_t errlen)
{
    broker_clients *bc = proto_xcalloc(1, sizeof *bc);
    bc->ctx = &m->ctx;
    bc->meta = m->meta;
    bc->next_opaque = 1;
    bc->expire_s = m->ctx.cfg.channel_expired_timeout_ms / 1000.0;
    /* Scan every 10 s as the Java broker does; a short timeout (tests) is
     * scanned more often so a registration never outlives it by much. */
    double every = bc->expire_s / 2 < SCAN_INTERVAL_MAX_S ? bc->expire_s / 2 : SCAN_INTERVAL_MAX_S;
    if (every < 0.05)
        every = 0.05;
    struct ev_loop *loop = server_loop(m->ctx.srv);
    ev_timer_init(&bc->scan, scan_cb, every, every);
    ev_timer_start(loop, &bc->scan);
    m->clients = bc;
    return 0;
}

void broker_clients_destroy(broker_modules *m)
{
    broker_clients *bc = m->clients;
    server *s = bc->ctx->srv;
    /* The server outlives the broker; its closes must not reach freed state. */
    server_on_close(s, NULL, NULL);
    ev_timer_stop(server_loop(s), &bc->scan);
    consumer_group *g, *gtmp;
    HASH_ITER(hh, bc->consumers, g, gtmp)
        consumer_free(bc, g);
    producer_group *p, *ptmp;
    HASH_ITER(hh, bc->producers, p, ptmp)
        producer_free(bc, p);
    free(bc);
    m->clients = NULL;
}

void broker_clients_register(broker_modules *m)
{
    broker_clients *bc = m->clients;
    server *s = m->ctx.srv;
    server_register(s, RC_HEART_BEAT, on_heart_beat, bc);
    server_register(s, RC_UNREGISTER_CLIENT, on_unregister_client, bc);
    server_register(s, RC_GET_CONSUMER_LIST_BY_GROUP, on_get_consumer_list_by_group, bc);
    server_register(s, RC_GET_CONSUMER_CONNECTION_LIST, on_get_consumer_connection_list, bc);
    server_register(s, RC_GET_PRODUCER_CONNECTION_LIST, on_get_producer_connection_list, bc);
    server_register(s, RC_CHECK_CLIENT_CONFIG, on_check_client_config, bc);
    server_on_close(s, conn_close_cb, bc);
}

const broker_subscription *broker_clients_subscription(broker_clients *bc, const char *group,
                                                       const char *topic)
{
    consumer_group *g = consumer_find(bc, group);
    sub_entry *e = NULL;
    if (g && topic)
        HASH_FIND(hh, g->subs, topic, strlen(topic), e);
    return e ? &e->pub : NULL;
}

bool broker_clients_group_known(broker_clients *bc, const char *group)
{
    consumer_group *g = consumer_find(bc, group);
    return g && g->members;
}

size_t broker_clients_subscription_count(broker_clients *bc, const char *group)
{
    consumer_group *g = consumer_find(bc, group);
    return g ? HASH_COUNT(g->subs) : 0;
}

void broker_clients_groups_of_topic(broker_clients *bc, const char *topic,
                                    void (*fn)(void *ctx, const char *group), void *ctx)
{
    if (!topic)
        return;
    for (consumer_group *g = bc->consumers; g; g = g->hh.next) {
        sub_entry *e = NULL;
        HASH_FIND(hh, g->subs, topic, strlen(topic), e);
        if (e)
            fn(ctx, g->name);
    }
}

size_t broker_clients_send_to_group(broker_clients *bc, const char *group, const proto_cmd *req,
                                    const void *body, size_t body_len)
{
    consumer_group *g = consumer_find(bc, group);
    size_t sent = 0;
    for (member *m = g ? g->members : NULL; m; m = m->next) {
        conn *c = server_conn_find(bc->ctx->srv, m->conn_id);
        if (!c)
            continue;
        proto_cmd *copy = proto_cmd_request(req->code);
        copy->opaque = bc->next_opaque++;
        for (size_t i = 0; i < req->n_ext; i++)
            proto_cmd_set(copy, req->ext[i].key, req->ext[i].value);
        server_conn_send_oneway(c, copy, body, body_len);
        sent++;
    }
    return sent;
}
