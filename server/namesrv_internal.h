/*
 * Internals shared by the name server's files (namesrv*.c): the route
 * tables, the JSON text helpers and the per-file handler registration.
 *
 * The tables mirror RocketMQ's RouteInfoManager:
 *   clusters  cluster name -> broker names
 *   brokers   broker name  -> BrokerData (cluster, addresses by broker id)
 *   topics    topic        -> broker name -> QueueData
 *   live      broker addr  -> last registration, its connection, DataVersion
 * Everything lives on the loop thread, so nothing here is locked. Strings
 * are owned by the struct holding them; allocation failure aborts (sizes
 * are small and chosen by us, not by peers). As in the broker (broker.h),
 * a request handler is named on_<request>, other callbacks end in _cb.
 */
#ifndef LSMQ_SERVER_NAMESRV_INTERNAL_H
#define LSMQ_SERVER_NAMESRV_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uthash.h>

#include "fastjson.h"
#include "namesrv.h"

/* 4.x admin code missing from codes.h: give back the write bit wiped by 205. */
#define NS_RC_ADD_WRITE_PERM_OF_BROKER 327

/* KV namespace whose entries become TopicRouteData.orderTopicConf. */
#define NS_ORDER_TOPIC_CONFIG "ORDER_TOPIC_CONFIG"

/* A broker's DataVersion; 4.x brokers send no stateVersion. */
typedef struct ns_version {
    int64_t counter;
    int64_t timestamp;
    int64_t state_version;
    bool has_state;
} ns_version;

typedef struct ns_addr {
    int64_t id;   /* 0 = master */
    char *addr;   /* "ip:port" */
} ns_addr;

typedef struct ns_broker {
    char *name;
    char *cluster;
    ns_addr *addrs;          /* kept sorted by id */
    size_t n_addrs, cap_addrs;
    UT_hash_handle hh;
} ns_broker;

typedef struct ns_cluster {
    char *name;
    char **brokers;          /* broker names, no duplicates */
    size_t n_brokers, cap_brokers;
    UT_hash_handle hh;
} ns_cluster;

typedef struct ns_queue {
    char *broker_name;
    int32_t read_queue_nums;
    int32_t write_queue_nums;
    int32_t perm;
    int32_t topic_sys_flag;
    UT_hash_handle hh;
} ns_queue;

typedef struct ns_topic {
    char *name;
    ns_queue *queues;        /* by broker name */
    UT_hash_handle hh;
} ns_topic;

typedef struct ns_live {
    char *addr;              /* key */
    char *cluster;
    char *broker_name;
    int64_t broker_id;
    char *ha_addr;
    double last_update;      /* ev_now() of the last registration */
    uint64_t conn_id;        /* connection of the last registration */
    ns_version version;
    UT_hash_handle hh;
} ns_live;

typedef struct ns_kv {
    char *key;
    char *value;
    UT_hash_handle hh;
} ns_kv;

typedef struct ns_kv_space {
    char *name;
    ns_kv *items;
    UT_hash_handle hh;
} ns_kv_space;

struct namesrv {
    server *srv;
    struct ev_loop *loop;
    namesrv_config cfg;
    ev_timer scan;
    ns_cluster *clusters;
    ns_broker *brokers;
    ns_topic *topics;
    ns_live *live;
    ns_kv_space *kv;
    struct ns_ctl *ctl;      /* the controller (namesrv_ctl.h), NULL unless enabled */
};

/* ---- namesrv.c: tables ---- */
char *namesrv__strdup(const char *s);
void *namesrv__alloc(size_t n);           /* zeroed; aborts on failure */
ns_cluster *namesrv__cluster_get(namesrv *ns, const char *name, bool create);
ns_broker *namesrv__broker_get(namesrv *ns, const char *name, const char *cluster, bool create);
/* Drop bd with its queue data and cluster entry; returns how many topics went with it. */
size_t namesrv__broker_drop(namesrv *ns, ns_broker *bd);
/* A registration named another cluster for this broker name: move it there. */
void namesrv__broker_set_cluster(namesrv *ns, ns_broker *bd, const char *cluster);
const char *namesrv__broker_addr(const ns_broker *bd, int64_t id);
/* Set id -> addr; an entry with the same address under another id goes (slave became master). */
void namesrv__broker_set_addr(ns_broker *bd, int64_t id, const char *addr, bool *was_new);
/* Remove the entries of bd for `addr`; returns how many went. */
size_t namesrv__broker_remove_addr(ns_broker *bd, const char *addr);
ns_topic *namesrv__topic_get(namesrv *ns, const char *name, bool create);
void namesrv__topic_drop(namesrv *ns, ns_topic *t);
void namesrv__queue_drop(ns_topic *t, ns_queue *q);
void namesrv__live_drop(namesrv *ns, ns_live *l);
/* A broker has gone (expired, connection closed): forget its address everywhere. */
void namesrv__remove_broker_addr(namesrv *ns, const char *addr, const char *why);

/* ---- reply helpers (namesrv.c) ---- */
/* Reply unless the request was oneway; frees resp either way. */
void namesrv__reply(conn *c, const proto_cmd *req, proto_cmd *resp, const void *body, size_t len);
void namesrv__reply_code(conn *c, const proto_cmd *req, int32_t code, const char *remark);
/* A mandatory extField; when absent, answers SYSTEM_ERROR like Java's header decoder. */
const char *namesrv__need(conn *c, const proto_cmd *req, const char *key);

/* ---- JSON text built by hand (namesrv_json.c): for maps with numeric keys ----
 * Text goes into protocol/'s proto_buf; strings with proto_json_put_string,
 * ascii_only for fastjson's BrowserCompatible ("standard") route form. */
/* BrokerData object; standard = quoted numeric brokerAddrs keys. */
void namesrv__buf_broker_data(proto_buf *b, const ns_broker *bd, bool standard);
void namesrv__buf_version(proto_buf *b, const ns_version *v);

/* ---- the controller's say on routes (namesrv_ctl.c) ---- */
/* With the controller on: a group it gave a master to, registering as
 * brokerId 0 from another address, must not take the route's id 0 -
 * unless it says an epoch newer than this node's state (which lags). */
bool namesrv__ctl_refuses_master(namesrv *ns, const char *broker_name, const char *addr,
                                 int64_t epoch, char *master, size_t master_len);

/* ---- per-file handler registration ---- */
void namesrv__register_handlers(namesrv *ns);  /* namesrv_register.c */
void namesrv__routes_handlers(namesrv *ns);    /* namesrv_routes.c */
void namesrv__kv_handlers(namesrv *ns);        /* namesrv_kv.c */
void namesrv__kv_free(namesrv *ns);
/* The value of namespace/key, or NULL; valid until the KV table changes. */
const char *namesrv__kv_get(namesrv *ns, const char *space, const char *key);
/* KVTable JSON of a namespace (malloc'ed), or NULL when it is empty or absent. */
char *namesrv__kv_table_json(namesrv *ns, const char *space, size_t *len);

#endif
