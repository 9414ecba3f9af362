/*
 * The name server's route tables (see namesrv_internal.h for their shape),
 * its life cycle, and the two ways a broker disappears without saying so:
 * its registrations stop (a timer scans every scanNotActiveBrokerInterval
 * for brokers silent longer than brokerChannelExpiredTime) or the
 * connection it last registered over closes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "log.h"
#include "namesrv_ctl.h"
#include "namesrv_internal.h"

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */

void *namesrv__alloc(size_t n)
{
    void *p = proto_xcalloc(1, n);
    return p;
}

char *namesrv__strdup(const char *s)
{
    char *p = proto_xstrdup(s ? s : "");
    return p;
}

void namesrv__reply(conn *c, const proto_cmd *req, proto_cmd *resp, const void *body, size_t len)
{
    /* RocketMQ never answers a oneway request, not even with an error. */
    if (proto_cmd_is_oneway(req)) {
        proto_cmd_free(resp);
        return;
    }
    server_conn_reply(c, req->opaque, resp, body, len);
}

void namesrv__reply_code(conn *c, const proto_cmd *req, int32_t code, const char *remark)
{
    namesrv__reply(c, req, proto_cmd_response(code, req->opaque, remark), NULL, 0);
}

const char *namesrv__need(conn *c, const proto_cmd *req, const char *key)
{
    const char *v = proto_cmd_get(req, key);
    if (v)
        return v;
    char remark[160];
    snprintf(remark, sizeof remark, "the custom field <%s> is null", key);
    namesrv__reply_code(c, req, RS_SYSTEM_ERROR, remark);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Clusters and brokers                                                 */

ns_cluster *namesrv__cluster_get(namesrv *ns, const char *name, bool create)
{
    ns_cluster *cl = NULL;
    HASH_FIND_STR(ns->clusters, name, cl);
    if (cl || !create)
        return cl;
    cl = namesrv__alloc(sizeof *cl);
    cl->name = namesrv__strdup(name);
    HASH_ADD_KEYPTR(hh, ns->clusters, cl->name, strlen(cl->name), cl);
    return cl;
}

static void cluster_free(ns_cluster *cl)
{
    for (size_t i = 0; i < cl->n_brokers; i++)
        free(cl->brokers[i]);
    free(cl->brokers);
    free(cl->name);
    free(cl);
}

static void cluster_add_broker(ns_cluster *cl, const char *broker_name)
{
    for (size_t i = 0; i < cl->n_brokers; i++)
        if (strcmp(cl->brokers[i], broker_name) == 0)
            return;
    if (cl->n_brokers == cl->cap_brokers) {
        cl->cap_brokers = cl->cap_brokers ? cl->cap_brokers * 2 : 4;
        cl->brokers = proto_xrealloc(cl->brokers, cl->cap_brokers * sizeof *cl->brokers);
    }
    cl->brokers[cl->n_brokers++] = namesrv__strdup(broker_name);
}

static void cluster_remove_broker(namesrv *ns, const char *cluster, const char *broker_name)
{
    ns_cluster *cl = namesrv__cluster_get(ns, cluster, false);
    if (!cl)
        return;
    for (size_t i = 0; i < cl->n_brokers; i++) {
        if (strcmp(cl->brokers[i], broker_name) == 0) {
            free(cl->brokers[i]);
            cl->brokers[i] = cl->brokers[--cl->n_brokers];
            break;
        }
    }
    if (cl->n_brokers == 0) {
        HASH_DEL(ns->clusters, cl);
        cluster_free(cl);
    }
}

ns_broker *namesrv__broker_get(namesrv *ns, const char *name, const char *cluster, bool create)
{
    ns_broker *bd = NULL;
    HASH_FIND_STR(ns->brokers, name, bd);
    if (bd || !create)
        return bd;
    bd = namesrv__alloc(sizeof *bd);
    bd->name = namesrv__strdup(name);
    bd->cluster = namesrv__strdup(cluster);
    HASH_ADD_KEYPTR(hh, ns->brokers, bd->name, strlen(bd->name), bd);
    cluster_add_broker(namesrv__cluster_get(ns, cluster, true), name);
    return bd;
}

static void broker_free(ns_broker *bd)
{
    for (size_t i = 0; i < bd->n_addrs; i++)
        free(bd->addrs[i].addr);
    free(bd->addrs);
    free(bd->name);
    free(bd->cluster);
    free(bd);
}

const char *namesrv__broker_addr(const ns_broker *bd, int64_t id)
{
    for (size_t i = 0; i < bd->n_addrs; i++)
        if (bd->addrs[i].id == id)
            return bd->addrs[i].addr;
    return NULL;
}

static void broker_remove_at(ns_broker *bd, size_t i)
{
    free(bd->addrs[i].addr);
    memmove(&bd->addrs[i], &bd->addrs[i + 1], (bd->n_addrs - i - 1) * sizeof bd->addrs[0]);
    bd->n_addrs--;
}

void namesrv__broker_set_addr(ns_broker *bd, int64_t id, const char *addr, bool *was_new)
{
    /* One address is one broker: a slave promoted to master keeps its address. */
    for (size_t i = 0; i < bd->n_addrs;) {
        if (bd->addrs[i].id != id && strcmp(bd->addrs[i].addr, addr) == 0)
            broker_remove_at(bd, i);
        else
            i++;
    }
    size_t i = 0;
    while (i < bd->n_addrs && bd->addrs[i].id < id)
        i++;
    if (i < bd->n_addrs && bd->addrs[i].id == id) {
        *was_new = false;
        if (strcmp(bd->addrs[i].addr, addr) != 0) {
            free(bd->addrs[i].addr);
            bd->addrs[i].addr = namesrv__strdup(addr);
        }
        return;
    }
    *was_new = true;
    if (bd->n_addrs == bd->cap_addrs) {
        bd->cap_addrs = bd->cap_addrs ? bd->cap_addrs * 2 : 2;
        bd->addrs = proto_xrealloc(bd->addrs, bd->cap_addrs * sizeof *bd->addrs);
    }
    memmove(&bd->addrs[i + 1], &bd->addrs[i], (bd->n_addrs - i) * sizeof bd->addrs[0]);
    bd->addrs[i].id = id;
    bd->addrs[i].addr = namesrv__strdup(addr);
    bd->n_addrs++;
}

size_t namesrv__broker_remove_addr(ns_broker *bd, const char *addr)
{
    size_t removed = 0;
    for (size_t i = 0; i < bd->n_addrs;) {
        if (strcmp(bd->addrs[i].addr, addr) == 0) {
            broker_remove_at(bd, i);
            removed++;
        } else {
            i++;
        }
    }
    return removed;
}

size_t namesrv__broker_drop(namesrv *ns, ns_broker *bd)
{
    /* Without a BrokerData its queue data would route to nowhere. */
    size_t gone = 0;
    ns_topic *t, *tmp;
    HASH_ITER(hh, ns->topics, t, tmp) {
        ns_queue *q = NULL;
        HASH_FIND_STR(t->queues, bd->name, q);
        if (q) {
            namesrv__queue_drop(t, q);
            if (!t->queues) {
                namesrv__topic_drop(ns, t);
                gone++;
            }
        }
    }
    cluster_remove_broker(ns, bd->cluster, bd->name);
    HASH_DEL(ns->brokers, bd);
    broker_free(bd);
    return gone;
}

void namesrv__broker_set_cluster(namesrv *ns, ns_broker *bd, const char *cluster)
{
    if (strcmp(bd->cluster, cluster) == 0)
        return;
    proto_log(PROTO_LOG_INFO, "namesrv: broker %s moved from cluster %s to %s", bd->name, bd->cluster, cluster);
    cluster_remove_broker(ns, bd->cluster, bd->name);
    free(bd->cluster);
    bd->cluster = namesrv__strdup(cluster);
    cluster_add_broker(namesrv__cluster_get(ns, cluster, true), bd->name);
}

/* ------------------------------------------------------------------ */
/* Topics and live brokers                                              */

ns_topic *namesrv__topic_get(namesrv *ns, const char *name, bool create)
{
    ns_topic *t = NULL;
    HASH_FIND_STR(ns->topics, name, t);
    if (t || !create)
        return t;
    t = namesrv__alloc(sizeof *t);
    t->name = namesrv__strdup(name);
    HASH_ADD_KEYPTR(hh, ns->topics, t->name, strlen(t->name), t);
    return t;
}

void namesrv__queue_drop(ns_topic *t, ns_queue *q)
{
    HASH_DEL(t->queues, q);
    free(q->broker_name);
    free(q);
}

void namesrv__topic_drop(namesrv *ns, ns_topic *t)
{
    ns_queue *q, *tmp;
    HASH_ITER(hh, t->queues, q, tmp)
        namesrv__queue_drop(t, q);
    HASH_DEL(ns->topics, t);
    free(t->name);
    free(t);
}

void namesrv__live_drop(namesrv *ns, ns_live *l)
{
    HASH_DEL(ns->live, l);
    free(l->addr);
    free(l->cluster);
    free(l->broker_name);
    free(l->ha_addr);
    free(l);
}

void namesrv__remove_broker_addr(namesrv *ns, const char *addr_in, const char *why)
{
    char *addr = namesrv__strdup(addr_in); /* addr_in may belong to the entry dropped below */
    ns_live *l = NULL;
    HASH_FIND_STR(ns->live, addr, l);
    char name[128];
    snprintf(name, sizeof name, "%s", l ? l->broker_name : "?");
    if (l)
        namesrv__live_drop(ns, l);
    size_t gone = 0;
    ns_broker *bd, *tmp;
    HASH_ITER(hh, ns->brokers, bd, tmp) {
        if (namesrv__broker_remove_addr(bd, addr) > 0 && bd->n_addrs == 0)
            gone += namesrv__broker_drop(ns, bd);
    }
    proto_log(PROTO_LOG_INFO, "namesrv: broker %s (%s) removed: %s; %zu topics left without a route", addr,
             name, why, gone);
    free(addr);
}

/* ------------------------------------------------------------------ */
/* Expiry and connection close                                          */

static void scan_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    namesrv *ns = (namesrv *)((char *)w - offsetof(namesrv, scan));
    double now = ev_now(loop);
    ns_live *l, *tmp;
    HASH_ITER(hh, ns->live, l, tmp) {
        double silent_ms = (now - l->last_update) * 1000.0;
        if (silent_ms > (double)ns->cfg.broker_expire_ms) {
            char why[96];
            snprintf(why, sizeof why, "silent for %.0f ms (brokerChannelExpiredTime %u)",
                     silent_ms, ns->cfg.broker_expire_ms);
            /* Only l's entry goes (addresses are unique keys), so tmp stays valid. */
            namesrv__remove_broker_addr(ns, l->addr, why);
        }
    }
}

static void close_cb(server *s, conn *c, void *ctx)
{
    namesrv *ns = ctx;
    uint64_t id = server_conn_id(c);
    ns_live *l, *tmp;
    HASH_ITER(hh, ns->live, l, tmp) {
        /* Only the connection a broker last registered over speaks for it: a
         * broker that re-registered over a new connection survives the old one. */
        if (l->conn_id == id)
            namesrv__remove_broker_addr(ns, l->addr, "its connection closed");
    }
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                           */

static const int all_codes[] = {
    RC_PUT_KV_CONFIG, RC_GET_KV_CONFIG, RC_DELETE_KV_CONFIG, RC_REGISTER_BROKER,
    RC_UNREGISTER_BROKER, RC_GET_ROUTEINFO_BY_TOPIC, RC_GET_BROKER_CLUSTER_INFO,
    RC_WIPE_WRITE_PERM_OF_BROKER, RC_GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
    RC_DELETE_TOPIC_IN_NAMESRV, RC_GET_KVLIST_BY_NAMESPACE, RC_GET_TOPICS_BY_CLUSTER,
    RC_GET_SYSTEM_TOPIC_LIST_FROM_NS, RC_QUERY_DATA_VERSION, NS_RC_ADD_WRITE_PERM_OF_BROKER,
};

int namesrv_create(server *srv, const namesrv_config *cfg, namesrv **out)
{
    namesrv *ns = namesrv__alloc(sizeof *ns);
    ns->srv = srv;
    ns->loop = server_loop(srv);
    if (cfg)
        ns->cfg = *cfg;
    else
        namesrv_config_init(&ns->cfg);
    if (ns->cfg.scan_interval_ms == 0)
        ns->cfg.scan_interval_ms = 5000;
    double every = ns->cfg.scan_interval_ms / 1000.0;
    ev_timer_init(&ns->scan, scan_cb, every, every);
    ev_timer_start(ns->loop, &ns->scan);
    namesrv__register_handlers(ns);
    namesrv__routes_handlers(ns);
    namesrv__kv_handlers(ns);
    server_on_close(srv, close_cb, ns);
    if (ns->cfg.enable_controller) {
        int rc = namesrv__ctl_start(ns);
        if (rc != 0) {
            namesrv_destroy(ns);
            return rc;
        }
    }
    *out = ns;
    return 0;
}

void namesrv_destroy(namesrv *ns)
{
    if (!ns)
        return;
    namesrv__ctl_stop(ns);
    /* The server may outlive us: its connections still close (and call the
     * hook) when it is destroyed, and requests could still arrive. */
    server_on_close(ns->srv, NULL, NULL);
    for (size_t i = 0; i < sizeof all_codes / sizeof all_codes[0]; i++)
        server_register(ns->srv, all_codes[i], NULL, NULL);
    ev_timer_stop(ns->loop, &ns->scan);

    ns_live *l, *ltmp;
    HASH_ITER(hh, ns->live, l, ltmp)
        namesrv__live_drop(ns, l);
    ns_topic *t, *ttmp;
    HASH_ITER(hh, ns->topics, t, ttmp)
        namesrv__topic_drop(ns, t);
    ns_broker *bd, *btmp;
    HASH_ITER(hh, ns->brokers, bd, btmp) {
        HASH_DEL(ns->brokers, bd);
        broker_free(bd);
    }
    ns_cluster *cl, *ctmp;
    HASH_ITER(hh, ns->clusters, cl, ctmp) {
        HASH_DEL(ns->clusters, cl);
        cluster_free(cl);
    }
    namesrv__kv_free(ns);
    free(ns);
}
