/*
 * The broker-facing requests: REGISTER_BROKER (every 30 s from every broker,
 * carrying all its topic configs), UNREGISTER_BROKER, QUERY_DATA_VERSION,
 * and the admin switches WIPE/ADD_WRITE_PERM_OF_BROKER.
 *
 * A RegisterBrokerBody comes as JSON
 *   {"filterServerList":[],"topicConfigSerializeWrapper":{"dataVersion":{...},
 *    "topicConfigTable":{"T":{TopicConfig},...}}}
 * or, with compressed=true, as a zlib stream of big-endian int32-length-
 * prefixed parts (REMOTING.md §3.11). Only a master's (brokerId 0) topics
 * update queue data, and only when its DataVersion moved or it is new, so a
 * wiped write permission survives re-registrations until the broker's
 * topics actually change (as upstream).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alloc.h"
#include "compress.h"
#include "log.h"
#include "namesrv_internal.h"
#include "record.h"

/* Decompressed bodies beyond this are refused: the size comes from a peer. */
#define NS_INFLATE_MAX (64u << 20)

typedef struct reg_topic {
    char *name;
    int32_t read, write, perm, sys_flag;
} reg_topic;

typedef struct reg_body {
    ns_version version;
    reg_topic *topics;
    size_t n, cap;
} reg_body;

static void body_free(reg_body *rb)
{
    for (size_t i = 0; i < rb->n; i++)
        free(rb->topics[i].name);
    free(rb->topics);
}

static reg_topic *body_add(reg_body *rb, const char *name)
{
    if (rb->n == rb->cap) {
        rb->cap = rb->cap ? rb->cap * 2 : 16;
        rb->topics = proto_xrealloc(rb->topics, rb->cap * sizeof *rb->topics);
    }
    reg_topic *t = &rb->topics[rb->n++];
    memset(t, 0, sizeof *t);
    t->name = namesrv__strdup(name);
    t->perm = 6;
    return t;
}

static int32_t json_i32(json_t *o, const char *key, int32_t dflt)
{
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        return (int32_t)json_integer_value(v);
    if (json_is_string(v)) /* lenient: fastjson would coerce */
        return (int32_t)strtol(json_string_value(v), NULL, 10);
    return dflt;
}

static int64_t json_i64(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        return (int64_t)json_integer_value(v);
    if (json_is_string(v))
        return (int64_t)strtoll(json_string_value(v), NULL, 10);
    return 0;
}

static void parse_version(json_t *o, ns_version *v)
{
    memset(v, 0, sizeof *v);
    if (!json_is_object(o))
        return;
    v->counter = json_i64(o, "counter");
    v->timestamp = json_i64(o, "timestamp");
    if (json_object_get(o, "stateVersion")) {
        v->has_state = true;
        v->state_version = json_i64(o, "stateVersion");
    }
}

static int parse_version_text(const void *p, size_t len, ns_version *v)
{
    json_error_t err;
    json_t *o = json_loadb(p, len, 0, &err);
    if (!json_is_object(o)) {
        json_decref(o);
        return -1;
    }
    parse_version(o, v);
    json_decref(o);
    return 0;
}

static int parse_json_body(const uint8_t *p, size_t len, reg_body *rb, char *why, size_t wl)
{
    json_error_t err;
    json_t *root = json_loadb((const char *)p, len, 0, &err);
    if (!json_is_object(root)) {
        snprintf(why, wl, "RegisterBrokerBody is not a JSON object: %.120s", err.text);
        json_decref(root);
        return -1;
    }
    json_t *wrap = json_object_get(root, "topicConfigSerializeWrapper");
    if (json_is_object(wrap)) {
        parse_version(json_object_get(wrap, "dataVersion"), &rb->version);
        json_t *table = json_object_get(wrap, "topicConfigTable");
        const char *key;
        json_t *tc;
        json_object_foreach(table, key, tc) {
            if (!json_is_object(tc))
                continue;
            json_t *n = json_object_get(tc, "topicName");
            reg_topic *t = body_add(rb, json_is_string(n) ? json_string_value(n) : key);
            t->read = json_i32(tc, "readQueueNums", 16);
            t->write = json_i32(tc, "writeQueueNums", 16);
            t->perm = json_i32(tc, "perm", 6);
            t->sys_flag = json_i32(tc, "topicSysFlag", 0);
        }
    }
    json_decref(root);
    return 0;
}

static int take_i32(const uint8_t *p, size_t len, size_t *pos, int32_t *v)
{
    if (len - *pos < 4)
        return -1;
    const uint8_t *q = p + *pos;
    *v = (int32_t)((uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3]);
    *pos += 4;
    return 0;
}

/* A length-prefixed part; *part points into p. */
static int take_part(const uint8_t *p, size_t len, size_t *pos, const uint8_t **part,
                     size_t *part_len)
{
    int32_t n;
    if (take_i32(p, len, pos, &n) != 0 || n < 0 || (size_t)n > len - *pos)
        return -1;
    *part = p + *pos;
    *part_len = (size_t)n;
    *pos += (size_t)n;
    return 0;
}

/* The short TopicConfig form: "name read write perm filterType [attributesJSON]". */
static int parse_short_topic(const uint8_t *p, size_t len, reg_body *rb)
{
    char *s = malloc(len + 1);
    if (!s)
        return -1;
    memcpy(s, p, len);
    s[len] = 0;
    char *save = NULL, *f[4];
    int n = 0;
    for (char *tok = strtok_r(s, " ", &save); tok && n < 4; tok = strtok_r(NULL, " ", &save))
        f[n++] = tok;
    if (n < 4) {
        free(s);
        return -1;
    }
    reg_topic *t = body_add(rb, f[0]);
    t->read = (int32_t)strtol(f[1], NULL, 10);
    t->write = (int32_t)strtol(f[2], NULL, 10);
    t->perm = (int32_t)strtol(f[3], NULL, 10);
    t->sys_flag = 0; /* this form does not carry it */
    free(s);
    return 0;
}

static int parse_compressed_body(const uint8_t *p, size_t len, reg_body *rb, char *why,
                                 size_t wl)
{
    uint8_t *raw = NULL;
    size_t raw_len = 0, pos = 0;
    if (proto_inflate(p, len, NS_INFLATE_MAX, &raw, &raw_len) != 0) {
        snprintf(why, wl, "compressed RegisterBrokerBody does not inflate (zlib, at most %u bytes)",
                 NS_INFLATE_MAX);
        return -1;
    }
    const uint8_t *part;
    size_t part_len;
    int32_t count;
    int rc = -1;
    if (take_part(raw, raw_len, &pos, &part, &part_len) != 0 ||
        parse_version_text(part, part_len, &rb->version) != 0) {
        snprintf(why, wl, "compressed RegisterBrokerBody: bad DataVersion");
        goto out;
    }
    if (take_i32(raw, raw_len, &pos, &count) != 0 || count < 0) {
        snprintf(why, wl, "compressed RegisterBrokerBody: bad topic count");
        goto out;
    }
    for (int32_t i = 0; i < count; i++) {
        if (take_part(raw, raw_len, &pos, &part, &part_len) != 0 ||
            parse_short_topic(part, part_len, rb) != 0) {
            snprintf(why, wl, "compressed RegisterBrokerBody: bad topic config %d", (int)i);
            goto out;
        }
    }
    /* The filter server list and 5.x queue mappings follow; lsmq has no use for them. */
    rc = 0;
out:
    free(raw);
    return rc;
}

/* ------------------------------------------------------------------ */

static bool version_equal(const ns_version *a, const ns_version *b)
{
    return a->counter == b->counter && a->timestamp == b->timestamp &&
           a->state_version == b->state_version;
}

/* Returns true when the topic had no queue data on this broker before. */
static bool update_queue_data(namesrv *ns, const char *broker_name, const reg_topic *rt)
{
    bool added = false;
    ns_topic *t = namesrv__topic_get(ns, rt->name, true);
    ns_queue *q = NULL;
    HASH_FIND_STR(t->queues, broker_name, q);
    if (!q) {
        q = namesrv__alloc(sizeof *q);
        q->broker_name = namesrv__strdup(broker_name);
        HASH_ADD_KEYPTR(hh, t->queues, q->broker_name, strlen(q->broker_name), q);
        added = true;
    }
    q->read_queue_nums = rt->read;
    q->write_queue_nums = rt->write;
    q->perm = rt->perm;
    q->topic_sys_flag = rt->sys_flag;
    return added;
}

static void on_register_broker(server *s, conn *c, proto_cmd *req, void *ctx)
{
    namesrv *ns = ctx;
    const char *name, *addr, *cluster, *ha;
    if (!(name = namesrv__need(c, req, "brokerName")) || !(addr = namesrv__need(c, req, "brokerAddr")) ||
        !(cluster = namesrv__need(c, req, "clusterName")) ||
        !(ha = namesrv__need(c, req, "haServerAddr")) || !namesrv__need(c, req, "brokerId"))
        return;
    int64_t id;
    if (proto_cmd_get_i64(req, "brokerId", &id) != 0) {
        namesrv__reply_code(c, req, RS_SYSTEM_ERROR, "brokerId is not a number");
        return;
    }
    int32_t crc = 0;
    if (proto_cmd_get_i32(req, "bodyCrc32", &crc) == 0 && crc != 0 &&
        (uint32_t)crc != proto_body_crc(req->body, req->body_len)) {
        proto_log(PROTO_LOG_WARN, "namesrv: registration of %s from %s: body crc32 mismatch", addr,
                 server_conn_peer(c));
        namesrv__reply_code(c, req, RS_SYSTEM_ERROR, "crc32 not match");
        return;
    }
    reg_body rb;
    memset(&rb, 0, sizeof rb);
    char why[192] = "";
    int rc = 0;
    if (req->body_len > 0 && proto_cmd_get_bool(req, "compressed", 0))
        rc = parse_compressed_body(req->body, req->body_len, &rb, why, sizeof why);
    else if (req->body_len > 0)
        rc = parse_json_body(req->body, req->body_len, &rb, why, sizeof why);
    if (rc != 0) {
        proto_log(PROTO_LOG_WARN, "namesrv: registration of %s from %s refused: %s", addr, server_conn_peer(c), why);
        namesrv__reply_code(c, req, RS_SYSTEM_ERROR, why);
        body_free(&rb);
        return;
    }

    char ctl_master[128];
    int64_t epoch = 0; /* brokers in controller mode say theirs */
    if (proto_cmd_get_i64(req, "controllerEpoch", &epoch) != 0)
        epoch = 0;
    if (id == 0 &&
        namesrv__ctl_refuses_master(ns, name, addr, epoch, ctl_master, sizeof ctl_master)) {
        /* An old master that has not learnt yet: keep it out of the routes,
         * and answer success so it does not retry in a loop. */
        proto_log(PROTO_LOG_WARN, "namesrv: %s registers as master of %s, but the controller's "
                  "master is %s: not routed", addr, name, ctl_master);
        namesrv__reply_code(c, req, RS_SUCCESS, "not the controller's master");
        body_free(&rb);
        return;
    }

    ns_live *l = NULL;
    HASH_FIND_STR(ns->live, addr, l);
    if (l && strcmp(l->broker_name, name) != 0) {
        /* The process at this address came back under another broker name:
         * its old name must stop routing here. */
        ns_broker *old = namesrv__broker_get(ns, l->broker_name, NULL, false);
        if (old && namesrv__broker_remove_addr(old, addr) > 0 && old->n_addrs == 0)
            namesrv__broker_drop(ns, old);
    }

    ns_broker *bd = namesrv__broker_get(ns, name, cluster, false);
    bool first = bd == NULL, new_addr = false;
    if (!bd)
        bd = namesrv__broker_get(ns, name, cluster, true);
    else
        namesrv__broker_set_cluster(ns, bd, cluster);
    namesrv__broker_set_addr(bd, id, addr, &new_addr);
    first = first || new_addr;

    size_t added = 0;
    if (id == 0 && (first || !l || !version_equal(&l->version, &rb.version))) {
        for (size_t i = 0; i < rb.n; i++)
            added += update_queue_data(ns, name, &rb.topics[i]);
    }
    if (!l) {
        l = namesrv__alloc(sizeof *l);
        l->addr = namesrv__strdup(addr);
        HASH_ADD_KEYPTR(hh, ns->live, l->addr, strlen(l->addr), l);
        proto_log(PROTO_LOG_INFO, "namesrv: broker %s registered: %s id %" PRId64 " of %s, %zu topics, from %s",
                 name, addr, id, cluster, rb.n, server_conn_peer(c));
    } else if (added) {
        proto_log(PROTO_LOG_INFO, "namesrv: broker %s (%s) now routes %zu more topics", name, addr, added);
    }
    free(l->cluster);
    free(l->broker_name);
    free(l->ha_addr);
    l->cluster = namesrv__strdup(cluster);
    l->broker_name = namesrv__strdup(name);
    l->ha_addr = namesrv__strdup(ha);
    l->broker_id = id;
    l->version = rb.version;
    l->last_update = ev_now(ns->loop);
    l->conn_id = server_conn_id(c);
    body_free(&rb);

    proto_cmd *resp = proto_cmd_response(RS_SUCCESS, req->opaque, NULL);
    if (id != 0) {
        /* A slave learns where its master replicates from. */
        const char *master = namesrv__broker_addr(bd, 0);
        ns_live *ml = NULL;
        if (master)
            HASH_FIND_STR(ns->live, master, ml);
        if (ml) {
            proto_cmd_set(resp, "haServerAddr", ml->ha_addr);
            proto_cmd_set(resp, "masterAddr", master);
        }
    }
    size_t kv_len = 0;
    char *kv = namesrv__kv_table_json(ns, NS_ORDER_TOPIC_CONFIG, &kv_len);
    namesrv__reply(c, req, resp, kv, kv_len);
    free(kv);
}

static void on_unregister_broker(server *s, conn *c, proto_cmd *req, void *ctx)
{
    namesrv *ns = ctx;
    const char *name, *addr;
    if (!(name = namesrv__need(c, req, "brokerName")) || !(addr = namesrv__need(c, req, "brokerAddr")) ||
        !namesrv__need(c, req, "clusterName") || !namesrv__need(c, req, "brokerId"))
        return;
    int64_t id;
    if (proto_cmd_get_i64(req, "brokerId", &id) != 0) {
        namesrv__reply_code(c, req, RS_SYSTEM_ERROR, "brokerId is not a number");
        return;
    }
    ns_live *l = NULL;
    HASH_FIND_STR(ns->live, addr, l);
    if (l)
        namesrv__live_drop(ns, l);
    ns_broker *bd = namesrv__broker_get(ns, name, NULL, false);
    size_t gone = 0;
    /* By address, as upstream 5.x does: a demoted master unregistering as brokerId 0
     * must not remove the new master that registered as 0 meanwhile. */
    if (bd && namesrv__broker_remove_addr(bd, addr) > 0 && bd->n_addrs == 0)
        gone = namesrv__broker_drop(ns, bd);
    proto_log(PROTO_LOG_INFO, "namesrv: broker %s (%s id %" PRId64 ") unregistered; %zu topics left without a "
             "route", addr, name, id, gone);
    namesrv__reply_code(c, req, RS_SUCCESS, NULL);
}

static void on_query_data_version(server *s, conn *c, proto_cmd *req, void *ctx)
{
    namesrv *ns = ctx;
    const char *addr;
    if (!namesrv__need(c, req, "brokerName") || !(addr = namesrv__need(c, req, "brokerAddr")) ||
        !namesrv__need(c, req, "clusterName") || !namesrv__need(c, req, "brokerId"))
        return;
    ns_version v;
    if (!req->body_len || parse_version_text(req->body, req->body_len, &v) != 0) {
        namesrv__reply_code(c, req, RS_SYSTEM_ERROR, "QUERY_DATA_VERSION needs a DataVersion body");
        return;
    }
    ns_live *l = NULL;
    HASH_FIND_STR(ns->live, addr, l);
    bool changed = !l || !version_equal(&l->version, &v);
    if (l && !changed)
        l->last_update = ev_now(ns->loop); /* an unchanged broker may skip the full register */
    proto_cmd *resp = proto_cmd_response(RS_SUCCESS, req->opaque, NULL);
    proto_cmd_set_bool(resp, "changed", changed);
    proto_buf b = {0};
    if (l)
        namesrv__buf_version(&b, &l->version);
    namesrv__reply(c, req, resp, b.p, b.len);
    free(b.p);
}

static void write_perm(conn *c, proto_cmd *req, namesrv *ns, bool add)
{
    const char *name = namesrv__need(c, req, "brokerName");
    if (!name)
        return;
    int64_t count = 0;
    ns_topic *t, *tmp;
    HASH_ITER(hh, ns->topics, t, tmp) {
        ns_queue *q = NULL;
        HASH_FIND_STR(t->queues, name, q);
        if (!q)
            continue;
        if (add)
            q->perm |= 2;
        else
            q->perm &= ~2;
        count++;
    }
    proto_log(PROTO_LOG_INFO, "namesrv: %s write permission of broker %s on %" PRId64 " topics",
             add ? "added" : "wiped", name, count);
    proto_cmd *resp = proto_cmd_response(RS_SUCCESS, req->opaque, NULL);
    proto_cmd_set_i64(resp, add ? "addTopicCount" : "wipeTopicCount", count);
    namesrv__reply(c, req, resp, NULL, 0);
}

static void on_wipe_write_perm_of_broker(server *s, conn *c, proto_cmd *req, void *ctx)
{
    write_perm(c, req, ctx, false);
}

static void on_add_write_perm_of_broker(server *s, conn *c, proto_cmd *req, void *ctx)
{
    write_perm(c, req, ctx, true);
}

void namesrv__register_handlers(namesrv *ns)
{
    server_register(ns->srv, RC_REGISTER_BROKER, on_register_broker, ns);
    server_register(ns->srv, RC_UNREGISTER_BROKER, on_unregister_broker, ns);
    server_register(ns->srv, RC_QUERY_DATA_VERSION, on_query_data_version, ns);
    server_register(ns->srv, RC_WIPE_WRITE_PERM_OF_BROKER, on_wipe_write_perm_of_broker, ns);
    server_register(ns->srv, NS_RC_ADD_WRITE_PERM_OF_BROKER, on_add_write_perm_of_broker, ns);
}
