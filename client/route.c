/*
 * TopicRouteData (REMOTING.md §5.2): parse the name server's JSON into the
 * queue lists producers and consumers use. Pure: no I/O.
 *
 * Name servers send brokerAddrs either as standard JSON ({"0":"ip:port"})
 * or, to old clients, in fastjson's legacy form with bare numeric keys
 * ({0:"ip:port"}), which no standard parser takes. protocol/'s fastjson
 * reader quotes such keys first, so both forms parse the same way.
 *
 * Queue lists follow the Java client: publish queues are the writable
 * (perm & 2) queues of brokers with a master (id 0), subscribe queues the
 * readable (perm & 4) ones, both ordered by broker name, then queue id. An
 * orderTopicConf ("broker:n;broker:n") replaces the publish list.
 *
 * Every address of a broker group is kept (brokerId -> address): sends go
 * to its master only, reads may go to any of them (lsmq__route_pick).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "client_internal.h"

#include "fastjson.h"

#define PERM_WRITE 2
#define PERM_READ 4

/* ------------------------------------------------------------------ */
/* Parsing                                                             */
/* ------------------------------------------------------------------ */

static int broker_cmp(const void *a, const void *b)
{
    const route_broker *x = a, *y = b;

    return strcmp(x->name, y->name);
}

int lsmq__route_broker_index(const route *r, const char *name)
{
    size_t lo = 0, hi = r->n_brokers;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(r->brokers[mid].name, name);

        if (c == 0)
            return (int)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

const char *lsmq__route_master(const route *r, uint32_t broker)
{
    const route_broker *b;
    size_t i;

    if (broker >= r->n_brokers)
        return NULL;
    b = &r->brokers[broker];
    for (i = 0; i < b->n_addrs; i++)
        if (b->ids[i] == 0)
            return b->addrs[i];
    return NULL;
}

/*
 * Broker choice for reads (MQClientInstance.findBrokerAddressInSubscribe
 * with onlyThisBroker false): the wanted id, for a replica the next one,
 * else the group's lowest id, which is the master when it is there. An
 * address down() calls unreachable is passed over while another will do.
 */
static const char *addr_of(const route_broker *b, int64_t id, route_down_fn *down, void *arg,
                           int64_t *got)
{
    size_t i;

    for (i = 0; i < b->n_addrs; i++) {
        if (b->ids[i] != id || (down && down(arg, b->addrs[i])))
            continue;
        *got = id;
        return b->addrs[i];
    }
    return NULL;
}

static const char *lowest_of(const route_broker *b, route_down_fn *down, void *arg, int64_t *got)
{
    const char *best = NULL;
    size_t i;

    for (i = 0; i < b->n_addrs; i++) {
        if ((down && down(arg, b->addrs[i])) || (best && b->ids[i] >= *got))
            continue;
        best = b->addrs[i];
        *got = b->ids[i];
    }
    return best;
}

static const char *pick_once(const route_broker *b, int64_t want, route_down_fn *down, void *arg,
                             int64_t *got)
{
    const char *addr = addr_of(b, want, down, arg, got);

    if (addr == NULL && want != 0)
        addr = addr_of(b, want + 1, down, arg, got);
    if (addr == NULL)
        addr = lowest_of(b, down, arg, got);
    return addr;
}

const char *lsmq__route_pick(const route *r, uint32_t broker, int64_t want, route_down_fn *down,
                             void *arg, int64_t *id)
{
    const char *addr;
    int64_t got = -1;

    if (broker >= r->n_brokers)
        return NULL;
    addr = pick_once(&r->brokers[broker], want, down, arg, &got);
    if (addr == NULL && down)
        addr = pick_once(&r->brokers[broker], want, NULL, NULL, &got); /* all down: try anyway */
    if (id)
        *id = got;
    return addr;
}

int lsmq__route_masterless(const route *r)
{
    size_t i;

    for (i = 0; i < r->n_brokers; i++)
        if (r->brokers[i].has_qd && lsmq__route_master(r, (uint32_t)i) == NULL)
            return 1;
    return 0;
}

static int json_int(json_t *obj, const char *key, int dflt)
{
    json_t *v = json_object_get(obj, key);

    if (json_is_integer(v))
        return (int)json_integer_value(v);
    if (json_is_string(v))
        return atoi(json_string_value(v));
    return dflt;
}

static int parse_brokers(route *r, json_t *arr, char *errbuf, size_t errlen)
{
    size_t i, n = json_array_size(arr);

    r->brokers = proto_xcalloc(n, sizeof *r->brokers);
    for (i = 0; i < n; i++) {
        json_t *bd = json_array_get(arr, i), *addrs, *v;
        const char *name = json_string_value(json_object_get(bd, "brokerName"));
        const char *cluster = json_string_value(json_object_get(bd, "cluster"));
        route_broker *b;
        const char *key;

        if (name == NULL || *name == '\0' || lsmq__route_broker_index(r, name) >= 0)
            continue; /* unnamed or duplicate: unusable */
        b = &r->brokers[r->n_brokers++];
        b->name = proto_xstrdup(name);
        b->cluster = proto_xstrdup(cluster ? cluster : "");
        addrs = json_object_get(bd, "brokerAddrs");
        b->ids = proto_xcalloc(json_object_size(addrs), sizeof *b->ids);
        b->addrs = proto_xcalloc(json_object_size(addrs), sizeof *b->addrs);
        json_object_foreach(addrs, key, v) {
            char *end;
            long long id = strtoll(key, &end, 10);

            if (!json_is_string(v) || *end != '\0' || end == key)
                continue;
            b->ids[b->n_addrs] = id;
            b->addrs[b->n_addrs++] = proto_xstrdup(json_string_value(v));
        }
        /* Keep the array sorted as we go so lsmq__route_broker_index works for dup checks. */
        qsort(r->brokers, r->n_brokers, sizeof *r->brokers, broker_cmp);
    }
    if (r->n_brokers == 0) {
        snprintf(errbuf, errlen, "route has no broker data");
        return LSMQ_ECORRUPT;
    }
    return 0;
}

static void push_mq(route_mq **list, size_t *n, uint32_t broker, int32_t qid)
{
    *list = proto_xrealloc(*list, (*n + 1) * sizeof **list);
    (*list)[*n].broker = broker;
    (*list)[*n].queue_id = qid;
    (*n)++;
}

/* Rebuild pub from the brokers' queue data (also used after lsmq__route_as_default). */
static void build_pub(route *r)
{
    size_t i;

    free(r->pub);
    r->pub = NULL;
    r->n_pub = 0;
    for (i = 0; i < r->n_brokers; i++) {
        route_broker *b = &r->brokers[i];
        int q;

        if (!b->has_qd || !(b->perm & PERM_WRITE) || lsmq__route_master(r, (uint32_t)i) == NULL)
            continue;
        for (q = 0; q < b->write_queues; q++)
            push_mq(&r->pub, &r->n_pub, (uint32_t)i, q);
    }
}

static void parse_order_conf(route *r, const char *conf)
{
    const char *p = conf;

    free(r->pub);
    r->pub = NULL;
    r->n_pub = 0;
    while (*p) {
        const char *end = strchr(p, ';'), *colon;
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char name[256];

        colon = memchr(p, ':', n);
        if (colon && (size_t)(colon - p) < sizeof name) {
            int idx, q, nums = atoi(colon + 1);

            memcpy(name, p, (size_t)(colon - p));
            name[colon - p] = '\0';
            idx = lsmq__route_broker_index(r, name);
            for (q = 0; idx >= 0 && q < nums; q++)
                push_mq(&r->pub, &r->n_pub, (uint32_t)idx, q);
        }
        if (!end)
            break;
        p = end + 1;
    }
}

int lsmq__route_parse(const char *json, size_t len, route **out, char *errbuf, size_t errlen)
{
    char *text = NULL;
    json_error_t jerr;
    json_t *root = NULL, *qds;
    route *r;
    size_t i;
    const char *order;
    int rc;

    *out = NULL;
    if (proto_fastjson_to_json(json, len, &text) != 0) {
        snprintf(errbuf, errlen, "route is not JSON (nor fastjson)");
        return LSMQ_ECORRUPT;
    }
    root = json_loads(text, 0, &jerr);
    free(text);
    if (!json_is_object(root)) {
        snprintf(errbuf, errlen, "route is not a JSON object: %s", jerr.text);
        json_decref(root);
        return LSMQ_ECORRUPT;
    }
    r = proto_xcalloc(1, sizeof *r);
    atomic_init(&r->refs, 1);
    r->json = proto_xstrndup(json, len);
    rc = parse_brokers(r, json_object_get(root, "brokerDatas"), errbuf, errlen);
    if (rc != 0)
        goto fail;
    qds = json_object_get(root, "queueDatas");
    for (i = 0; i < json_array_size(qds); i++) {
        json_t *qd = json_array_get(qds, i);
        const char *name = json_string_value(json_object_get(qd, "brokerName"));
        int idx = name ? lsmq__route_broker_index(r, name) : -1;
        route_broker *b;

        if (idx < 0)
            continue; /* queue data of a broker with no address: unusable */
        b = &r->brokers[idx];
        b->has_qd = 1;
        b->read_queues = json_int(qd, "readQueueNums", 0);
        b->write_queues = json_int(qd, "writeQueueNums", 0);
        b->perm = json_int(qd, "perm", 6);
    }
    build_pub(r);
    for (i = 0; i < r->n_brokers; i++) {
        route_broker *b = &r->brokers[i];
        int q;

        if (!b->has_qd || !(b->perm & PERM_READ))
            continue;
        for (q = 0; q < b->read_queues; q++)
            push_mq(&r->sub, &r->n_sub, (uint32_t)i, q);
    }
    order = json_string_value(json_object_get(root, "orderTopicConf"));
    if (order && *order)
        parse_order_conf(r, order);
    json_decref(root);
    *out = r;
    return 0;
fail:
    json_decref(root);
    lsmq__route_unref(r);
    return rc;
}

void lsmq__route_as_default(route *r)
{
    size_t i;

    /* Java's producer: min(defaultTopicQueueNums, readQueueNums) on each broker. */
    for (i = 0; i < r->n_brokers; i++) {
        route_broker *b = &r->brokers[i];
        int n = b->read_queues < DEFAULT_TOPIC_QUEUES ? b->read_queues : DEFAULT_TOPIC_QUEUES;

        b->read_queues = b->write_queues = n;
    }
    r->from_default = 1;
    build_pub(r);
}

route *lsmq__route_ref(route *r)
{
    atomic_fetch_add(&r->refs, 1);
    return r;
}

void lsmq__route_unref(route *r)
{
    size_t i, j;

    if (r == NULL || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    for (i = 0; i < r->n_brokers; i++) {
        route_broker *b = &r->brokers[i];

        for (j = 0; j < b->n_addrs; j++)
            free(b->addrs[j]);
        free(b->addrs);
        free(b->ids);
        free(b->name);
        free(b->cluster);
    }
    free(r->brokers);
    free(r->pub);
    free(r->sub);
    free(r->json);
    free(r);
}
