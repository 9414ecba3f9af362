/*
 * Admin statistics over the store (REMOTING.md §3.10, §5.7):
 * GET_TOPIC_STATS_INFO (per-queue min/max offsets and last store time),
 * GET_CONSUME_STATS (per-queue broker and consumer offsets of a group) and
 * QUERY_TOPIC_CONSUME_BY_WHO (groups that consume a topic).
 *
 * TopicStatsTable and ConsumeStats are maps keyed by MessageQueue objects,
 * which fastjson writes with the object itself as the key:
 *   {"offsetTable":{{"brokerName":"b","queueId":0,"topic":"t"}:{...},...}}
 * That is not JSON, so those bodies are assembled as text around pieces
 * jansson writes (§5.1). Java admin tools parse exactly this form.
 *
 * Committed offsets are found by walking a view's consumer offsets
 * (engine_view_offsets), by group then topic id.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "broker_internal.h"

/* One (group, topic id) pair found in the offset family. */
typedef struct offset_ref {
    char *group;
    uint32_t topic_id;
} offset_ref;

typedef struct offset_refs {
    offset_ref *v;
    size_t n, cap;
} offset_refs;

static void refs_add(offset_refs *r, const char *group, size_t glen, uint32_t topic_id)
{
    /* Keys are sorted by group then topic id, so duplicates are adjacent. */
    if (r->n && r->v[r->n - 1].topic_id == topic_id && strlen(r->v[r->n - 1].group) == glen &&
        memcmp(r->v[r->n - 1].group, group, glen) == 0)
        return;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->v = proto_xrealloc(r->v, r->cap * sizeof *r->v);
    }
    r->v[r->n].group = proto_xstrndup(group, glen);
    r->v[r->n++].topic_id = topic_id;
}

static void refs_free(offset_refs *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i].group);
    free(r->v);
}

static int offset_found(void *ctx, const engine_consumer_offset *o)
{
    refs_add(ctx, o->group, o->group_len, o->topic_id);
    return 0;
}

/*
 * Collect the (group, topic id) pairs with committed offsets: of one group
 * (group != NULL) or of all groups. Returns 0 or LSMQ_EIO.
 */
static int offsets_collect(engine *e, const char *group, offset_refs *out)
{
    engine_view *v;
    int rc = engine_view_open(e, &v);
    if (rc == 0)
        rc = engine_view_offsets(v, group, group ? strlen(group) : 0, offset_found, out);
    engine_view_close(v); /* a failed read was logged by the engine */
    return rc;
}

/* Name of a topic id, from a topic list. */
static const engine_topic_config *topic_by_id(const engine_topic_config *list, size_t n,
                                              uint32_t id)
{
    for (size_t i = 0; i < n; i++)
        if (list[i].topic_id == id)
            return &list[i];
    return NULL;
}

/* Store time of the message at `offset`, or 0 when it is not there (any more). */
static int64_t store_time_at(engine *e, const char *topic, uint32_t queue_id, uint64_t offset)
{
    engine_read_result rr;
    memset(&rr, 0, sizeof rr);
    int64_t ts = 0;
    if (engine_read(e, topic, strlen(topic), queue_id, offset, 1, 1, &rr) == 0 &&
        rr.status == ENGINE_READ_FOUND && rr.count > 0) {
        proto_record r;
        if (proto_record_decode(rr.data, rr.len, &r) > 0 && r.queue_offset == (int64_t)offset)
            ts = r.store_timestamp;
    }
    engine_free(rr.data);
    return ts;
}

/* Append `"mq":value` to an object-key map being written (comma handled by *first). */
static void map_entry(broker_text *t, bool *first, const char *broker_name, const char *topic,
                      uint32_t queue_id, json_t *value)
{
    if (!*first)
        broker_text_adds(t, ",");
    *first = false;
    json_t *mq = broker_json_mq(broker_name, topic, queue_id);
    broker_text_add_json(t, mq);
    json_decref(mq);
    broker_text_adds(t, ":");
    broker_text_add_json(t, value);
    json_decref(value);
}

static void reply_text(conn *c, int32_t opaque, broker_text *t)
{
    server_conn_reply_owned(c, opaque, proto_cmd_response(RS_SUCCESS, opaque, NULL), t->p, t->len);
}

/* ==== GET_TOPIC_STATS_INFO ================================================ */

static json_t *queue_stats_json(engine *e, const char *topic, uint32_t q)
{
    uint64_t min = 0, max = 0;
    engine_queue_offsets(e, topic, strlen(topic), q, &min, &max);
    int64_t last = max > 0 ? store_time_at(e, topic, q, max - 1) : 0;
    json_t *o = json_object();
    json_object_set_new(o, "lastUpdateTimestamp", json_integer(last));
    json_object_set_new(o, "maxOffset", json_integer((json_int_t)max));
    json_object_set_new(o, "minOffset", json_integer((json_int_t)min));
    return o;
}

static void on_get_topic_stats_info(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_admin *ad = ctx;
    engine *e = ad->ctx->engine;
    const char *topic = broker_require(c, req, "topic");
    if (!topic)
        return;
    engine_topic_config tc;
    if (engine_topic_get(e, topic, strlen(topic), &tc) != 0) {
        char remark[400];
        snprintf(remark, sizeof remark, "topic[%s] not exist", topic);
        server_conn_reply_code(c, req->opaque, RS_TOPIC_NOT_EXIST, remark);
        return;
    }
    uint32_t queues = tc.read_queue_nums > tc.write_queue_nums ? tc.read_queue_nums
                                                               : tc.write_queue_nums;
    broker_text t = {0};
    broker_text_adds(&t, "{\"offsetTable\":{");
    bool first = true;
    for (uint32_t q = 0; q < queues; q++)
        map_entry(&t, &first, ad->ctx->cfg.broker_name, topic, q, queue_stats_json(e, topic, q));
    broker_text_adds(&t, "}}");
    reply_text(c, req->opaque, &t);
}

/* ==== GET_CONSUME_STATS =================================================== */

/* OffsetWrapper of one queue for a group. */
static json_t *consume_queue_json(engine *e, const char *group, const char *topic, uint32_t q)
{
    uint64_t min = 0, max = 0, committed = 0;
    engine_queue_offsets(e, topic, strlen(topic), q, &min, &max);
    if (engine_offset_get(e, group, strlen(group), topic, strlen(topic), q, &committed) != 0)
        committed = 0;
    int64_t last = committed > 0 ? store_time_at(e, topic, q, committed - 1) : 0;
    json_t *o = json_object();
    json_object_set_new(o, "brokerOffset", json_integer((json_int_t)max));
    json_object_set_new(o, "consumerOffset", json_integer((json_int_t)committed));
    json_object_set_new(o, "lastTimestamp", json_integer(last));
    /* Pull positions are not tracked per client; the commit is the best known. */
    json_object_set_new(o, "pullOffset", json_integer((json_int_t)committed));
    return o;
}

/* Add the queues of one topic, unless the online group does not subscribe to it. */
static void consume_topic(broker_admin *ad, const char *group, const char *topic,
                          broker_text *t, bool *first)
{
    engine *e = ad->ctx->engine;
    engine_topic_config tc;
    if (engine_topic_get(e, topic, strlen(topic), &tc) != 0)
        return; /* as the Java broker: an unknown topic adds nothing */
    if (broker_clients_subscription_count(ad->clients, group) > 0 &&
        !broker_clients_subscription(ad->clients, group, topic))
        return;
    for (uint32_t q = 0; q < tc.read_queue_nums; q++)
        map_entry(t, first, ad->ctx->cfg.broker_name, topic, q,
                  consume_queue_json(e, group, topic, q));
}

/* The topics to report: the header's topic or topicList, else those with offsets. */
static int consume_topics(engine *e, const proto_cmd *req, const char *group, char ***out,
                          size_t *n)
{
    const char *one = proto_cmd_get(req, "topic");
    const char *list = proto_cmd_get(req, "topicList");
    *out = NULL;
    *n = 0;
    if ((one && *one) || (list && *list)) {
        char *copy = proto_xstrdup(one && *one ? one : list), *save = NULL;
        for (char *tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
            *out = proto_xrealloc(*out, (*n + 1) * sizeof **out);
            (*out)[(*n)++] = proto_xstrdup(tok);
        }
        free(copy);
        return 0;
    }
    offset_refs refs = {0};
    engine_topic_config *topics = NULL;
    size_t n_topics = 0;
    int rc = offsets_collect(e, group, &refs);
    if (rc == 0)
        rc = engine_topic_list(e, &topics, &n_topics);
    for (size_t i = 0; rc == 0 && i < refs.n; i++) {
        const engine_topic_config *tc = topic_by_id(topics, n_topics, refs.v[i].topic_id);
        if (!tc)
            continue;
        *out = proto_xrealloc(*out, (*n + 1) * sizeof **out);
        (*out)[(*n)++] = proto_xstrdup(tc->name);
    }
    engine_free(topics);
    refs_free(&refs);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void on_get_consume_stats(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_admin *ad = ctx;
    const char *group = broker_require(c, req, "consumerGroup");
    if (!group)
        return;
    char **topics = NULL;
    size_t n = 0;
    if (consume_topics(ad->ctx->engine, req, group, &topics, &n) != 0) {
        server_conn_reply_code(c, req->opaque, RS_SYSTEM_ERROR, "cannot read the consumer offsets");
        return;
    }
    if (n > 1)
        qsort(topics, n, sizeof *topics, cmp_str);
    broker_text t = {0};
    broker_text_adds(&t, "{\"consumeTps\":0.0,\"offsetTable\":{");
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        consume_topic(ad, group, topics[i], &t, &first);
        free(topics[i]);
    }
    free(topics);
    broker_text_adds(&t, "}}");
    reply_text(c, req->opaque, &t);
}

/* ==== QUERY_TOPIC_CONSUME_BY_WHO ========================================== */

static void add_group_cb(void *ctx, const char *group)
{
    json_t *set = ctx;
    json_object_set_new(set, group, json_true());
}

static void on_query_topic_consume_by_who(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_admin *ad = ctx;
    engine *e = ad->ctx->engine;
    const char *topic = broker_require(c, req, "topic");
    if (!topic)
        return;
    json_t *set = json_object(); /* group names, deduplicated and sorted */
    broker_clients_groups_of_topic(ad->clients, topic, add_group_cb, set);
    uint32_t topic_id = 0;
    offset_refs refs = {0};
    if (engine_topic_id(e, topic, strlen(topic), &topic_id) == 0 &&
        offsets_collect(e, NULL, &refs) == 0) {
        for (size_t i = 0; i < refs.n; i++)
            if (refs.v[i].topic_id == topic_id)
                add_group_cb(set, refs.v[i].group);
    }
    refs_free(&refs);
    const char **names = proto_xcalloc(json_object_size(set) + 1, sizeof *names);
    size_t n = 0;
    const char *key;
    json_t *v;
    json_object_foreach(set, key, v)
        names[n++] = key;
    qsort(names, n, sizeof *names, cmp_str);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, broker_json_str(names[i]));
    free(names);
    json_decref(set);
    json_t *body = json_object();
    json_object_set_new(body, "groupList", list);
    broker_reply_json(c, req->opaque, body);
}

void broker_admin_stats_register(broker_modules *m)
{
    server *s = m->ctx.srv;
    server_register(s, RC_GET_TOPIC_STATS_INFO, on_get_topic_stats_info, m->admin);
    server_register(s, RC_GET_CONSUME_STATS, on_get_consume_stats, m->admin);
    server_register(s, RC_QUERY_TOPIC_CONSUME_BY_WHO, on_query_topic_consume_by_who, m->admin);
}
