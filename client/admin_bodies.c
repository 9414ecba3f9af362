/*
 * Admin response bodies (REMOTING.md §5) -> the result structs of
 * lsmq_admin.h, plus their lookups and release functions.
 *
 * Bodies arrive here already rewritten as standard JSON by
 * admin_fastjson.c, so a MessageQueue map key is a string holding the
 * queue's JSON ("{\"brokerName\":\"b\",\"queueId\":0,\"topic\":\"t\"}")
 * and a broker id key is a string of digits. Parsing is lenient the way
 * the Java tools are: unknown fields are ignored, numbers may come as
 * JSON strings, and absent optional fields take Java's defaults.
 *
 * Results that accumulate over brokers (topic stats, consume stats,
 * consumer connections) are kept sorted and free of duplicates after every
 * merge, so callers can print them as they are.
 */
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"

/* ------------------------------------------------------------------ */
/* Field helpers                                                       */
/* ------------------------------------------------------------------ */

/* A copy of a string field, or of dflt when absent or not a string. */
static char *dup_field(json_t *o, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(o, key));

    return proto_xstrdup(v ? v : dflt);
}

int lsmq__admin_i64_field(json_t *o, const char *key, int64_t *out)
{
    json_t *v = json_object_get(o, key);

    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        *out = (int64_t)json_real_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        char *end;
        long long n = strtoll(json_string_value(v), &end, 10);
        if (end != json_string_value(v) && *end == '\0') {
            *out = n;
            return 0;
        }
    }
    return -1;
}

static int64_t i64_or(json_t *o, const char *key, int64_t dflt)
{
    int64_t v;

    return lsmq__admin_i64_field(o, key, &v) == 0 ? v : dflt;
}

static double real_or(json_t *o, const char *key, double dflt)
{
    json_t *v = json_object_get(o, key);

    if (json_is_number(v))
        return json_number_value(v);
    if (json_is_string(v))
        return strtod(json_string_value(v), NULL);
    return dflt;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Java's MessageQueue.compareTo: topic, broker name, queue id. */
static int cmp_mq(const void *a, const void *b)
{
    const lsmq_admin_mq *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);

    if (c == 0)
        c = strcmp(x->broker_name, y->broker_name);
    if (c == 0)
        c = (x->queue_id > y->queue_id) - (x->queue_id < y->queue_id);
    return c;
}

/* A MessageQueue map key (its JSON text) into mq. 0 or -1. */
static int parse_mq_key(const char *key, lsmq_admin_mq *mq)
{
    json_t *o = json_loads(key, 0, NULL);
    int64_t qid;
    int rc = -1;

    if (json_is_object(o) && json_is_string(json_object_get(o, "topic")) &&
        json_is_string(json_object_get(o, "brokerName")) &&
        lsmq__admin_i64_field(o, "queueId", &qid) == 0) {
        mq->topic = dup_field(o, "topic", "");
        mq->broker_name = dup_field(o, "brokerName", "");
        mq->queue_id = (int32_t)qid;
        rc = 0;
    }
    json_decref(o);
    return rc;
}

int lsmq__admin_parse_mq_key(const char *key, lsmq_admin_mq *mq)
{
    return parse_mq_key(key, mq);
}

int lsmq__admin_cmp_mq(const void *a, const void *b)
{
    return cmp_mq(a, b);
}

static void mq_clear(lsmq_admin_mq *mq)
{
    free(mq->topic);
    free(mq->broker_name);
}

void lsmq_admin_mqs_free(lsmq_admin_mq *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        mq_clear(&v[i]);
    free(v);
}

void lsmq_admin_strings_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

/* ------------------------------------------------------------------ */
/* BrokerData, ClusterInfo, TopicRouteData                             */
/* ------------------------------------------------------------------ */

static int cmp_addr(const void *a, const void *b)
{
    const lsmq_admin_addr *x = a, *y = b;

    return (x->id > y->id) - (x->id < y->id);
}

static int cmp_broker(const void *a, const void *b)
{
    return strcmp(((const lsmq_admin_broker *)a)->name, ((const lsmq_admin_broker *)b)->name);
}

static void broker_clear(lsmq_admin_broker *b)
{
    free(b->cluster);
    free(b->name);
    for (size_t i = 0; i < b->n_addrs; i++)
        free(b->addrs[i].addr);
    free(b->addrs);
}

/* BrokerData into b; name_hint names it when the object does not. */
static int parse_broker(json_t *bd, const char *name_hint, lsmq_admin_broker *b)
{
    json_t *addrs = json_object_get(bd, "brokerAddrs");
    const char *key;
    json_t *v;

    memset(b, 0, sizeof *b);
    if (!json_is_object(bd))
        return -1;
    b->name = dup_field(bd, "brokerName", name_hint ? name_hint : "");
    b->cluster = dup_field(bd, "cluster", "");
    b->addrs = proto_xcalloc(json_object_size(addrs) + 1, sizeof *b->addrs);
    json_object_foreach(addrs, key, v) {
        char *end;
        long long id = strtoll(key, &end, 10);
        if (end == key || *end || !json_is_string(v))
            continue;
        b->addrs[b->n_addrs].id = id;
        b->addrs[b->n_addrs++].addr = proto_xstrdup(json_string_value(v));
    }
    qsort(b->addrs, b->n_addrs, sizeof *b->addrs, cmp_addr);
    return 0;
}

static int cmp_cluster(const void *a, const void *b)
{
    return strcmp(((const lsmq_admin_cluster *)a)->name, ((const lsmq_admin_cluster *)b)->name);
}

int lsmq__admin_parse_cluster_info(json_t *body, lsmq_admin_cluster_info **out)
{
    json_t *brokers = json_object_get(body, "brokerAddrTable");
    json_t *clusters = json_object_get(body, "clusterAddrTable");
    lsmq_admin_cluster_info *ci;
    const char *key;
    json_t *v;

    if (!json_is_object(body))
        return LSMQ_ECORRUPT;
    ci = proto_xcalloc(1, sizeof *ci);
    ci->brokers = proto_xcalloc(json_object_size(brokers) + 1, sizeof *ci->brokers);
    json_object_foreach(brokers, key, v) {
        if (parse_broker(v, key, &ci->brokers[ci->n_brokers]) == 0)
            ci->n_brokers++;
    }
    qsort(ci->brokers, ci->n_brokers, sizeof *ci->brokers, cmp_broker);
    ci->clusters = proto_xcalloc(json_object_size(clusters) + 1, sizeof *ci->clusters);
    json_object_foreach(clusters, key, v) {
        lsmq_admin_cluster *c = &ci->clusters[ci->n_clusters++];
        size_t i;
        json_t *name;

        c->name = proto_xstrdup(key);
        c->broker_names = proto_xcalloc(json_array_size(v) + 1, sizeof *c->broker_names);
        json_array_foreach(v, i, name) {
            if (json_is_string(name))
                c->broker_names[c->n_broker_names++] = proto_xstrdup(json_string_value(name));
        }
        qsort(c->broker_names, c->n_broker_names, sizeof *c->broker_names, cmp_str);
    }
    qsort(ci->clusters, ci->n_clusters, sizeof *ci->clusters, cmp_cluster);
    /* 4.x name servers may omit BrokerData.cluster: take it from the cluster table. */
    for (size_t i = 0; i < ci->n_clusters; i++)
        for (size_t j = 0; j < ci->clusters[i].n_broker_names; j++) {
            lsmq_admin_broker *b = (lsmq_admin_broker *)lsmq_admin_cluster_info_broker(
                ci, ci->clusters[i].broker_names[j]);
            if (b && !*b->cluster) {
                free(b->cluster);
                b->cluster = proto_xstrdup(ci->clusters[i].name);
            }
        }
    *out = ci;
    return 0;
}

void lsmq_admin_cluster_info_free(lsmq_admin_cluster_info *ci)
{
    if (!ci)
        return;
    for (size_t i = 0; i < ci->n_brokers; i++)
        broker_clear(&ci->brokers[i]);
    free(ci->brokers);
    for (size_t i = 0; i < ci->n_clusters; i++) {
        free(ci->clusters[i].name);
        lsmq_admin_strings_free(ci->clusters[i].broker_names, ci->clusters[i].n_broker_names);
    }
    free(ci->clusters);
    free(ci);
}

const lsmq_admin_broker *lsmq_admin_cluster_info_broker(const lsmq_admin_cluster_info *ci,
                                                        const char *name)
{
    for (size_t i = 0; ci && name && i < ci->n_brokers; i++)
        if (strcmp(ci->brokers[i].name, name) == 0)
            return &ci->brokers[i];
    return NULL;
}

const lsmq_admin_cluster *lsmq_admin_cluster_info_cluster(const lsmq_admin_cluster_info *ci,
                                                          const char *name)
{
    for (size_t i = 0; ci && name && i < ci->n_clusters; i++)
        if (strcmp(ci->clusters[i].name, name) == 0)
            return &ci->clusters[i];
    return NULL;
}

const char *lsmq_admin_broker_master(const lsmq_admin_broker *b)
{
    for (size_t i = 0; b && i < b->n_addrs; i++)
        if (b->addrs[i].id == 0)
            return b->addrs[i].addr;
    return NULL;
}

int lsmq_admin_cluster_masters(const lsmq_admin_cluster_info *ci, const char *cluster,
                               const char ***addrs, size_t *n)
{
    const lsmq_admin_cluster *c = lsmq_admin_cluster_info_cluster(ci, cluster);

    if (!addrs || !n)
        return LSMQ_EINVAL;
    *addrs = NULL;
    *n = 0;
    if (!c)
        return LSMQ_ENOTFOUND;
    *addrs = proto_xcalloc(c->n_broker_names + 1, sizeof **addrs);
    for (size_t i = 0; i < c->n_broker_names; i++) {
        const char *m =
            lsmq_admin_broker_master(lsmq_admin_cluster_info_broker(ci, c->broker_names[i]));
        if (m)
            (*addrs)[(*n)++] = m;
    }
    return 0;
}

static int cmp_queue_data(const void *a, const void *b)
{
    return strcmp(((const lsmq_admin_queue_data *)a)->broker_name,
                  ((const lsmq_admin_queue_data *)b)->broker_name);
}

int lsmq__admin_parse_route(json_t *body, lsmq_admin_route **out)
{
    json_t *brokers = json_object_get(body, "brokerDatas");
    json_t *queues = json_object_get(body, "queueDatas");
    const char *conf = json_string_value(json_object_get(body, "orderTopicConf"));
    lsmq_admin_route *r;
    size_t i;
    json_t *v;

    if (!json_is_object(body) || !json_is_array(brokers) || !json_is_array(queues))
        return LSMQ_ECORRUPT;
    r = proto_xcalloc(1, sizeof *r);
    r->brokers = proto_xcalloc(json_array_size(brokers) + 1, sizeof *r->brokers);
    json_array_foreach(brokers, i, v) {
        if (parse_broker(v, NULL, &r->brokers[r->n_brokers]) == 0)
            r->n_brokers++;
    }
    qsort(r->brokers, r->n_brokers, sizeof *r->brokers, cmp_broker);
    r->queues = proto_xcalloc(json_array_size(queues) + 1, sizeof *r->queues);
    json_array_foreach(queues, i, v) {
        lsmq_admin_queue_data *q = &r->queues[r->n_queues++];
        q->broker_name = dup_field(v, "brokerName", "");
        q->read_queue_nums = (int32_t)i64_or(v, "readQueueNums", 0);
        q->write_queue_nums = (int32_t)i64_or(v, "writeQueueNums", 0);
        q->perm = (int32_t)i64_or(v, "perm", 0);
        /* Before 4.9.0 the field was spelled topicSynFlag. */
        q->topic_sys_flag = (int32_t)i64_or(v, "topicSysFlag", i64_or(v, "topicSynFlag", 0));
    }
    qsort(r->queues, r->n_queues, sizeof *r->queues, cmp_queue_data);
    r->order_topic_conf = conf ? proto_xstrdup(conf) : NULL;
    *out = r;
    return 0;
}

void lsmq_admin_route_free(lsmq_admin_route *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_brokers; i++)
        broker_clear(&r->brokers[i]);
    free(r->brokers);
    for (size_t i = 0; i < r->n_queues; i++)
        free(r->queues[i].broker_name);
    free(r->queues);
    free(r->order_topic_conf);
    free(r);
}

/* ------------------------------------------------------------------ */
/* TopicList, GroupList, KVTable                                       */
/* ------------------------------------------------------------------ */

int lsmq__admin_parse_strings(json_t *body, const char *field, char ***out, size_t *n)
{
    json_t *list = json_object_get(body, field);
    size_t i;
    json_t *v;

    if (!json_is_array(list))
        return LSMQ_ECORRUPT;
    *out = proto_xcalloc(json_array_size(list) + 1, sizeof **out);
    *n = 0;
    json_array_foreach(list, i, v) {
        if (json_is_string(v))
            (*out)[(*n)++] = proto_xstrdup(json_string_value(v));
    }
    return 0;
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const lsmq_admin_kv *)a)->key, ((const lsmq_admin_kv *)b)->key);
}

int lsmq__admin_parse_kv_table(json_t *body, lsmq_admin_kv_table **out)
{
    json_t *table = json_object_get(body, "table");
    const char *key;
    json_t *v;

    if (!json_is_object(table))
        return LSMQ_ECORRUPT;
    lsmq_admin_kv_table *t = proto_xcalloc(1, sizeof *t);
    t->kv = proto_xcalloc(json_object_size(table) + 1, sizeof *t->kv);
    json_object_foreach(table, key, v) {
        lsmq_admin_kv *e = &t->kv[t->n++];
        e->key = proto_xstrdup(key);
        if (json_is_string(v)) {
            e->value = proto_xstrdup(json_string_value(v));
        } else {
            e->value = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            if (!e->value)
                e->value = proto_xstrdup("");
        }
    }
    qsort(t->kv, t->n, sizeof *t->kv, cmp_kv);
    *out = t;
    return 0;
}

void lsmq_admin_kv_table_free(lsmq_admin_kv_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->kv[i].key);
        free(t->kv[i].value);
    }
    free(t->kv);
    free(t);
}

const char *lsmq_admin_kv_table_get(const lsmq_admin_kv_table *t, const char *key)
{
    lsmq_admin_kv probe = {.key = (char *)key};
    const lsmq_admin_kv *e;

    if (!t || !key || t->n == 0)
        return NULL;
    e = bsearch(&probe, t->kv, t->n, sizeof *t->kv, cmp_kv);
    return e ? e->value : NULL;
}

/* ------------------------------------------------------------------ */
/* MessageQueue-keyed tables                                           */
/* ------------------------------------------------------------------ */

/*
 * The slot for mq in an array of `size`-byte elements that start with an
 * lsmq_admin_mq: an existing one (its old mq is freed and replaced) or a
 * new one at the end. *arr grows as needed.
 */
static void *mq_slot(void **arr, size_t *n, size_t size, lsmq_admin_mq *mq)
{
    char *base = *arr;

    for (size_t i = 0; i < *n; i++) {
        lsmq_admin_mq *old = (lsmq_admin_mq *)(base + i * size);
        if (cmp_mq(old, mq) == 0) {
            mq_clear(old);
            memset(old, 0, size);
            *old = *mq;
            return old;
        }
    }
    base = proto_xrealloc(base, (*n + 1) * size);
    *arr = base;
    lsmq_admin_mq *slot = (lsmq_admin_mq *)(base + (*n)++ * size);
    memset(slot, 0, size);
    *slot = *mq;
    return slot;
}

/* Every key of body's offsetTable names a queue and every value is an object. */
static int offset_table_valid(json_t *body)
{
    json_t *table = json_object_get(body, "offsetTable");
    const char *key;
    json_t *v;

    if (!json_is_object(table))
        return 0;
    json_object_foreach(table, key, v) {
        lsmq_admin_mq mq;
        if (!json_is_object(v) || parse_mq_key(key, &mq) != 0)
            return 0;
        mq_clear(&mq);
    }
    return 1;
}

/*
 * Merge a valid offsetTable into an array of `size`-byte rows that each start
 * with their lsmq_admin_mq: fill sets a row's figures from its JSON value.
 * The rows end sorted by queue.
 */
static void merge_offset_table(json_t *body, void **rows, size_t *n, size_t size,
                               void (*fill)(void *row, json_t *v))
{
    const char *key;
    json_t *v;

    json_object_foreach(json_object_get(body, "offsetTable"), key, v) {
        lsmq_admin_mq mq;
        parse_mq_key(key, &mq);
        fill(mq_slot(rows, n, size, &mq), v);
    }
    if (*n > 1)
        qsort(*rows, *n, size, cmp_mq);
}

static void free_offset_rows(void *rows, size_t n, size_t size)
{
    for (size_t i = 0; i < n; i++)
        mq_clear((lsmq_admin_mq *)((char *)rows + i * size));
    free(rows);
}

static void fill_topic_offset(void *row, json_t *v)
{
    lsmq_admin_topic_offset *o = row;
    o->min_offset = i64_or(v, "minOffset", 0);
    o->max_offset = i64_or(v, "maxOffset", 0);
    o->last_update_ms = i64_or(v, "lastUpdateTimestamp", 0);
}

int lsmq__admin_merge_topic_stats(json_t *body, lsmq_admin_topic_stats **stats)
{
    /* Check the whole table first, so a bad body leaves *stats untouched. */
    if (!offset_table_valid(body))
        return LSMQ_ECORRUPT;
    if (!*stats)
        *stats = proto_xcalloc(1, sizeof **stats);
    lsmq_admin_topic_stats *s = *stats;
    merge_offset_table(body, (void **)&s->queues, &s->n_queues, sizeof *s->queues,
                       fill_topic_offset);
    s->put_tps += real_or(body, "topicPutTps", 0);
    return 0;
}

void lsmq_admin_topic_stats_free(lsmq_admin_topic_stats *s)
{
    if (!s)
        return;
    free_offset_rows(s->queues, s->n_queues, sizeof *s->queues);
    free(s);
}

static void fill_consume_offset(void *row, json_t *v)
{
    lsmq_admin_consume_offset *o = row;
    o->broker_offset = i64_or(v, "brokerOffset", 0);
    o->consumer_offset = i64_or(v, "consumerOffset", 0);
    o->pull_offset = i64_or(v, "pullOffset", 0);
    o->last_timestamp = i64_or(v, "lastTimestamp", 0);
}

int lsmq__admin_merge_consume_stats(json_t *body, lsmq_admin_consume_stats **stats)
{
    if (!offset_table_valid(body))
        return LSMQ_ECORRUPT;
    if (!*stats)
        *stats = proto_xcalloc(1, sizeof **stats);
    lsmq_admin_consume_stats *s = *stats;
    merge_offset_table(body, (void **)&s->queues, &s->n_queues, sizeof *s->queues,
                       fill_consume_offset);
    s->consume_tps += real_or(body, "consumeTps", 0);
    return 0;
}

void lsmq_admin_consume_stats_free(lsmq_admin_consume_stats *s)
{
    if (!s)
        return;
    free_offset_rows(s->queues, s->n_queues, sizeof *s->queues);
    free(s);
}

int lsmq__admin_parse_running_mqs(json_t *body, lsmq_admin_mq **mqs, size_t *n)
{
    json_t *table = json_object_get(body, "mqTable");
    const char *key;
    json_t *v;

    if (!json_is_object(table))
        return LSMQ_ECORRUPT;
    *mqs = proto_xcalloc(json_object_size(table) + 1, sizeof **mqs);
    *n = 0;
    json_object_foreach(table, key, v) {
        if (parse_mq_key(key, &(*mqs)[*n]) == 0)
            (*n)++;
    }
    qsort(*mqs, *n, sizeof **mqs, cmp_mq);
    return 0;
}

/* ------------------------------------------------------------------ */
/* ConsumerConnection                                                  */
/* ------------------------------------------------------------------ */

static int cmp_conn(const void *a, const void *b)
{
    return strcmp(((const lsmq_admin_connection *)a)->client_id,
                  ((const lsmq_admin_connection *)b)->client_id);
}

static int cmp_sub(const void *a, const void *b)
{
    return strcmp(((const lsmq_admin_subscription *)a)->topic,
                  ((const lsmq_admin_subscription *)b)->topic);
}

/* Replace an empty string field with the body's value of key. */
static void take_if_empty(char **field, json_t *body, const char *key)
{
    const char *v = json_string_value(json_object_get(body, key));

    if (v && !**field) {
        free(*field);
        *field = proto_xstrdup(v);
    }
}

static void add_connection(lsmq_admin_consumer_connection *cc, json_t *c)
{
    const char *id = json_string_value(json_object_get(c, "clientId"));

    if (!id)
        return;
    for (size_t i = 0; i < cc->n_conns; i++)
        if (strcmp(cc->conns[i].client_id, id) == 0)
            return;
    cc->conns = proto_xrealloc(cc->conns, (cc->n_conns + 1) * sizeof *cc->conns);
    lsmq_admin_connection *e = &cc->conns[cc->n_conns++];
    e->client_id = proto_xstrdup(id);
    e->client_addr = dup_field(c, "clientAddr", "");
    e->language = dup_field(c, "language", "");
    e->version = (int32_t)i64_or(c, "version", 0);
}

static void add_subscription(lsmq_admin_consumer_connection *cc, const char *topic, json_t *sd)
{
    for (size_t i = 0; i < cc->n_subs; i++)
        if (strcmp(cc->subs[i].topic, topic) == 0)
            return;
    cc->subs = proto_xrealloc(cc->subs, (cc->n_subs + 1) * sizeof *cc->subs);
    lsmq_admin_subscription *e = &cc->subs[cc->n_subs++];
    e->topic = dup_field(sd, "topic", topic);
    e->sub_string = dup_field(sd, "subString", "*");
    e->expression_type = dup_field(sd, "expressionType", "TAG");
}

int lsmq__admin_merge_consumer_connection(json_t *body, lsmq_admin_consumer_connection **cc)
{
    json_t *conns = json_object_get(body, "connectionSet");
    json_t *subs = json_object_get(body, "subscriptionTable");
    const char *key;
    size_t i;
    json_t *v;

    if (!json_is_object(body) || (conns && !json_is_array(conns)) ||
        (subs && !json_is_object(subs)))
        return LSMQ_ECORRUPT;
    if (!*cc) {
        *cc = proto_xcalloc(1, sizeof **cc);
        (*cc)->consume_type = proto_xstrdup("");
        (*cc)->message_model = proto_xstrdup("");
        (*cc)->consume_from_where = proto_xstrdup("");
    }
    lsmq_admin_consumer_connection *c = *cc;
    json_array_foreach(conns, i, v) add_connection(c, v);
    json_object_foreach(subs, key, v) add_subscription(c, key, v);
    take_if_empty(&c->consume_type, body, "consumeType");
    take_if_empty(&c->message_model, body, "messageModel");
    take_if_empty(&c->consume_from_where, body, "consumeFromWhere");
    if (c->n_conns > 1)
        qsort(c->conns, c->n_conns, sizeof *c->conns, cmp_conn);
    if (c->n_subs > 1)
        qsort(c->subs, c->n_subs, sizeof *c->subs, cmp_sub);
    return 0;
}

void lsmq_admin_consumer_connection_free(lsmq_admin_consumer_connection *cc)
{
    if (!cc)
        return;
    for (size_t i = 0; i < cc->n_conns; i++) {
        free(cc->conns[i].client_id);
        free(cc->conns[i].client_addr);
        free(cc->conns[i].language);
    }
    free(cc->conns);
    for (size_t i = 0; i < cc->n_subs; i++) {
        free(cc->subs[i].topic);
        free(cc->subs[i].sub_string);
        free(cc->subs[i].expression_type);
    }
    free(cc->subs);
    free(cc->consume_type);
    free(cc->message_model);
    free(cc->consume_from_where);
    free(cc);
}
