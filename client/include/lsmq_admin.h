/*
 * liblsmq admin API — blocking calls for administration tools (mqadmin):
 * cluster and route look-ups on name servers, topic creation and deletion,
 * the statistics brokers keep about topics and consumer groups, message
 * look-ups (by id, key, unique key, queue offset) and offsets by time
 * (REMOTING.md §3.10, §3.11, §5).
 *
 * @section conventions Conventions
 *
 * (1) Calls go through a handle (lsmq_admin_create), which holds nothing
 *     but the last error of the calls made with it. Every call is blocking:
 *     it opens one TCP connection to the address it is given, sends one
 *     request, waits for the matching response and closes the connection.
 *     timeout_ms bounds the whole exchange (connect, write, read); it must
 *     be > 0. No thread, no event loop, no connection is shared between
 *     calls, so every function may be called from any thread, concurrently,
 *     with one handle or several (the last error is then the last of any).
 *
 * (2) Addresses are "host:port" ("[v6]:port" for IPv6 literals). Where a
 *     parameter is called `namesrv` it is a name server list
 *     "host:port;host:port": the request goes to the first server that
 *     answers at all (a transport failure moves on to the next one; a
 *     refusal does not).
 *
 * (3) Errors follow lsmq.h: 0 on success, a negative code on failure:
 *     - LSMQ_EINVAL      bad argument (NULL, empty name, timeout <= 0,
 *                        malformed address).
 *     - LSMQ_ENOTFOUND   the server answered TOPIC_NOT_EXIST (17) or
 *                        QUERY_NOT_FOUND (22).
 *     - LSMQ_EIO         the server answered with any other non-zero code.
 *     - LSMQ_ECORRUPT    a response frame or body did not parse.
 *     - -ETIMEDOUT, -ECONNREFUSED, ... (-errno) transport failures.
 *     After any failure of a call with a handle, lsmq_admin_last_error()
 *     returns the RocketMQ response code (or -1 for a failure that is not
 *     a refusal) and a text naming the request, the address and, for
 *     refusals, "CODE: <code>  DESC: <remark>" as the Java tools print it.
 *     The pure functions without a handle (decoding) say it by their
 *     return code alone.
 *
 * (4) Results are plain structs allocated by the library. Each result type
 *     has exactly one release function, named after it
 *     (lsmq_admin_route_free, ...); every string and array reachable from
 *     a result belongs to it and lives until that function is called.
 *     Arguments are only read during the call.
 *
 * (5) Statistics of a topic or group spread over several brokers: the
 *     lsmq_admin_get_topic_stats, lsmq_admin_get_consume_stats and
 *     lsmq_admin_get_consumer_connection calls accumulate. Pass a pointer
 *     to NULL to get a new result; pass the same pointer again to merge the
 *     next broker's answer into it.
 *
 * @section caveats Caveats
 *
 * - Nothing is retried: a timeout or a refused connection is reported at
 *   once (except for moving on along a name server list).
 * - Bodies are fastjson text; maps keyed by numbers or MessageQueue
 *   objects, which are not valid JSON, are accepted (see
 *   lsmq_admin_fastjson_to_json).
 * - The library ignores SIGPIPE per write (MSG_NOSIGNAL).
 */
#ifndef LSMQ_CLIENT_LSMQ_ADMIN_H
#define LSMQ_CLIENT_LSMQ_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "lsmq.h"
#include "remoting.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Name server namespace of global order configuration (§6.1). */
#define LSMQ_ADMIN_ORDER_TOPIC_CONFIG "ORDER_TOPIC_CONFIG"

/* ------------------------------------------------------------------ */
/* The handle                                                          */
/* ------------------------------------------------------------------ */

/** What the calls report their failures on. Opaque. */
typedef struct lsmq_admin lsmq_admin;

/**
 * A new handle.
 * @param[out] out destroy it with lsmq_admin_destroy.
 * @return 0, or LSMQ_EINVAL when out is NULL.
 */
int lsmq_admin_create(lsmq_admin **out);
/** Free a handle (NULL is fine). No call with it may be running. */
void lsmq_admin_destroy(lsmq_admin *a);

/**
 * The last failure of a call made with a (Conventions (3)).
 *
 * @param[out] buf if not NULL, receives its description, truncated to cap
 *             bytes and NUL-terminated ("no error" when nothing failed).
 * @return the RocketMQ response code when a server refused the request,
 *         else -1. Any thread.
 */
int lsmq_admin_last_error(lsmq_admin *a, char *buf, size_t cap);

/* ------------------------------------------------------------------ */
/* Any request                                                         */
/* ------------------------------------------------------------------ */

/**
 * Send one request and wait for its response.
 *
 * @param[in] addr "host:port" of a broker or name server (not a list).
 * @param[in] req the request (proto_cmd_request + proto_cmd_set); its
 *            opaque is what the response must echo. Not modified.
 * @param[in] body request body, body_len bytes (NULL when body_len is 0).
 * @param[out] resp the response command, whatever its code; free it with
 *             proto_cmd_free. Its `body`/`body_len` fields are cleared:
 *             the body is returned through resp_body instead.
 * @param[out] resp_body a malloc'ed copy of the response body with a NUL
 *             byte appended (so JSON can be parsed in place), or NULL when
 *             the response has no body; free() it. May be NULL if the
 *             caller does not want the body.
 * @param[out] resp_body_len the body's length without the NUL (may be NULL).
 * @return 0 once a response arrived (check (*resp)->code), LSMQ_EINVAL,
 *         LSMQ_ECORRUPT, LSMQ_ETOOBIG (request or response frame over the
 *         protocol's 16 MiB), LSMQ_ENOMEM (no memory for the response), or
 *         a transport error (-errno). On failure *resp and *resp_body are
 *         NULL.
 */
int lsmq_admin_call(lsmq_admin *a, const char *addr, const proto_cmd *req, const void *body,
                    size_t body_len, int timeout_ms, proto_cmd **resp, char **resp_body,
                    size_t *resp_body_len);

/**
 * lsmq_admin_call on a name server list (Conventions (2)). @return as
 * lsmq_admin_call; when every server failed, the last server's error.
 */
int lsmq_admin_call_namesrv(lsmq_admin *a, const char *namesrv, const proto_cmd *req,
                            const void *body, size_t body_len, int timeout_ms, proto_cmd **resp,
                            char **resp_body, size_t *resp_body_len);

/**
 * Rewrite a fastjson body as standard JSON (REMOTING.md §5.1). Map keys that
 * are not strings become strings: a number key its digits ({0:"a"} ->
 * {"0":"a"}), an object or array key its compact JSON text
 * ({{"queueId":0}:1} -> {"{\"queueId\":0}":1}). Whitespace outside strings
 * is dropped. Pure: no I/O.
 *
 * @param[out] out malloc'ed NUL-terminated JSON text; free() it.
 * @return 0, LSMQ_ECORRUPT (not fastjson, or nested over 128 levels).
 */
int lsmq_admin_fastjson_to_json(const char *text, size_t len, char **out);

/* ------------------------------------------------------------------ */
/* Name server: clusters, routes, topic lists                          */
/* ------------------------------------------------------------------ */

/** One address of a broker group: id 0 is the master, >= 1 slaves. */
typedef struct lsmq_admin_addr {
    int64_t id;
    char *addr;
} lsmq_admin_addr;

/** A broker group (BrokerData): a master and its slaves under one name. */
typedef struct lsmq_admin_broker {
    char *cluster;          /**< "" when the server did not say */
    char *name;
    lsmq_admin_addr *addrs; /**< n_addrs entries, ascending id */
    size_t n_addrs;
} lsmq_admin_broker;

/** A cluster and the names of its broker groups. */
typedef struct lsmq_admin_cluster {
    char *name;
    char **broker_names; /**< n_broker_names names, sorted */
    size_t n_broker_names;
} lsmq_admin_cluster;

/** ClusterInfo (GET_BROKER_CLUSTER_INFO). */
typedef struct lsmq_admin_cluster_info {
    lsmq_admin_broker *brokers;   /**< sorted by name */
    size_t n_brokers;
    lsmq_admin_cluster *clusters; /**< sorted by name */
    size_t n_clusters;
} lsmq_admin_cluster_info;

/**
 * The clusters and brokers registered with the name server.
 * @param[out] out release with lsmq_admin_cluster_info_free.
 * @return 0 or an error (Conventions (3)).
 */
int lsmq_admin_get_cluster_info(lsmq_admin *a, const char *namesrv, int timeout_ms,
                                lsmq_admin_cluster_info **out);
void lsmq_admin_cluster_info_free(lsmq_admin_cluster_info *ci);

/** The broker group called name, or NULL. Valid while ci lives. */
const lsmq_admin_broker *lsmq_admin_cluster_info_broker(const lsmq_admin_cluster_info *ci,
                                                        const char *name);

/** The cluster called name, or NULL. Valid while ci lives. */
const lsmq_admin_cluster *lsmq_admin_cluster_info_cluster(const lsmq_admin_cluster_info *ci,
                                                          const char *name);

/** The master's address (id 0) of a broker group, or NULL. Valid while b lives. */
const char *lsmq_admin_broker_master(const lsmq_admin_broker *b);

/**
 * The master addresses of a cluster's broker groups, in broker name order
 * (groups without a master are skipped).
 * @param[out] addrs malloc'ed array of *n pointers into ci (free() the
 *             array only; the strings live as long as ci).
 * @return 0 (possibly *n == 0), LSMQ_ENOTFOUND when ci has no such cluster.
 */
int lsmq_admin_cluster_masters(const lsmq_admin_cluster_info *ci, const char *cluster,
                               const char ***addrs, size_t *n);

/** Queue counts of a topic on one broker group (QueueData). */
typedef struct lsmq_admin_queue_data {
    char *broker_name;
    int32_t read_queue_nums;
    int32_t write_queue_nums;
    int32_t perm;           /**< 4 read, 2 write, 1 inherit */
    int32_t topic_sys_flag;
} lsmq_admin_queue_data;

/** TopicRouteData (GET_ROUTEINFO_BY_TOPIC). */
typedef struct lsmq_admin_route {
    lsmq_admin_broker *brokers;     /**< sorted by name */
    size_t n_brokers;
    lsmq_admin_queue_data *queues;  /**< sorted by broker name */
    size_t n_queues;
    char *order_topic_conf;         /**< "broker:n;broker:n", or NULL */
} lsmq_admin_route;

/**
 * The route of a topic.
 * @param[out] out release with lsmq_admin_route_free.
 * @return 0, LSMQ_ENOTFOUND (the name server knows no such topic), or
 *         another error.
 */
int lsmq_admin_get_route(lsmq_admin *a, const char *namesrv, const char *topic, int timeout_ms,
                         lsmq_admin_route **out);
void lsmq_admin_route_free(lsmq_admin_route *r);

/**
 * The topics the name server knows (GET_ALL_TOPIC_LIST_FROM_NAMESERVER), or
 * with cluster != NULL those on that cluster's brokers (GET_TOPICS_BY_CLUSTER).
 * @param[out] topics malloc'ed array of *n malloc'ed strings, in the
 *             server's order; release with lsmq_admin_strings_free.
 */
int lsmq_admin_get_topic_list(lsmq_admin *a, const char *namesrv, const char *cluster,
                              int timeout_ms, char ***topics, size_t *n);

/** Release an array of strings returned by this API (NULL is fine). */
void lsmq_admin_strings_free(char **v, size_t n);

/**
 * DELETE_TOPIC_IN_NAMESRV on every server of the list (not just the first
 * that answers). With cluster != NULL only that cluster's queues go.
 * @return 0 when every server succeeded, else the first error.
 */
int lsmq_admin_delete_topic_in_namesrv(lsmq_admin *a, const char *namesrv, const char *topic,
                                       const char *cluster, int timeout_ms);

/**
 * A name server KV entry (GET_KV_CONFIG).
 * @param[out] value malloc'ed; free() it.
 * @return 0, LSMQ_ENOTFOUND (no such entry), or an error.
 */
int lsmq_admin_get_kv_config(lsmq_admin *a, const char *namesrv, const char *ns, const char *key,
                             int timeout_ms, char **value);

/** PUT_KV_CONFIG on every server of the list. @return 0 or the first error. */
int lsmq_admin_put_kv_config(lsmq_admin *a, const char *namesrv, const char *ns, const char *key,
                             const char *value, int timeout_ms);

/* ------------------------------------------------------------------ */
/* Broker: topics                                                      */
/* ------------------------------------------------------------------ */

/** A topic to create or update (UPDATE_AND_CREATE_TOPIC). Zero it first. */
typedef struct lsmq_admin_topic_config {
    const char *topic;
    int32_t read_queue_nums;
    int32_t write_queue_nums;
    int32_t perm;             /**< 6 = read + write */
    int32_t topic_sys_flag;   /**< bit 0 unit topic, bit 1 has unit subscription */
    int order;                /**< non-zero: an order topic */
    const char *attributes;   /**< 5.x "+key=value,-key", or NULL */
} lsmq_admin_topic_config;

/**
 * Create or update a topic on one broker. The broker then registers with
 * its name servers, so the route follows shortly.
 * @return 0, or an error (LSMQ_EIO with INVALID_PARAMETER for a bad name,
 *         a system topic or bad counts).
 */
int lsmq_admin_create_topic(lsmq_admin *a, const char *broker_addr,
                            const lsmq_admin_topic_config *tc, int timeout_ms);

/** DELETE_TOPIC_IN_BROKER: the topic, its messages and its offsets. */
int lsmq_admin_delete_topic_in_broker(lsmq_admin *a, const char *broker_addr, const char *topic,
                                      int timeout_ms);

/**
 * UPDATE_AND_CREATE_SUBSCRIPTIONGROUP: create or replace a subscription
 * group's config on one broker. config_json is upstream's
 * SubscriptionGroupConfig object (groupName, retryMaxTimes,
 * groupRetryPolicy, ...), sent as given.
 */
int lsmq_admin_update_subscription_group(lsmq_admin *a, const char *broker_addr,
                                         const char *config_json, int timeout_ms);

/** A message queue. */
typedef struct lsmq_admin_mq {
    char *topic;
    char *broker_name;
    int32_t queue_id;
} lsmq_admin_mq;

/** Release an array of queues returned by this API (NULL is fine). */
void lsmq_admin_mqs_free(lsmq_admin_mq *v, size_t n);

/** Offsets of one queue (TopicOffset). */
typedef struct lsmq_admin_topic_offset {
    lsmq_admin_mq mq;
    int64_t min_offset;
    int64_t max_offset;
    int64_t last_update_ms; /**< store time of the last message, 0 if none */
} lsmq_admin_topic_offset;

/** TopicStatsTable, possibly merged over brokers (Conventions (5)). */
typedef struct lsmq_admin_topic_stats {
    lsmq_admin_topic_offset *queues; /**< sorted by topic, broker name, queue id */
    size_t n_queues;
    double put_tps;                  /**< sum over brokers (5.x brokers only) */
} lsmq_admin_topic_stats;

/**
 * GET_TOPIC_STATS_INFO of one broker, merged into *stats (a new result
 * when *stats is NULL; release with lsmq_admin_topic_stats_free). A queue
 * already present is replaced. On failure *stats is left as it was.
 * @return 0, LSMQ_ENOTFOUND (the broker has no such topic), or an error.
 */
int lsmq_admin_get_topic_stats(lsmq_admin *a, const char *broker_addr, const char *topic,
                               int timeout_ms, lsmq_admin_topic_stats **stats);
void lsmq_admin_topic_stats_free(lsmq_admin_topic_stats *s);

/**
 * The consumer groups of a topic known to one broker
 * (QUERY_TOPIC_CONSUME_BY_WHO). Release with lsmq_admin_strings_free.
 */
int lsmq_admin_get_topic_groups(lsmq_admin *a, const char *broker_addr, const char *topic,
                                int timeout_ms, char ***groups, size_t *n);

/* ------------------------------------------------------------------ */
/* Broker: runtime and consumers                                       */
/* ------------------------------------------------------------------ */

/** One entry of a KVTable. */
typedef struct lsmq_admin_kv {
    char *key;
    char *value;
} lsmq_admin_kv;

/** KVTable, sorted by key. */
typedef struct lsmq_admin_kv_table {
    lsmq_admin_kv *kv;
    size_t n;
} lsmq_admin_kv_table;

/**
 * GET_BROKER_RUNTIME_INFO: the broker's counters and versions as strings
 * (msgPutTotalTodayNow, putTps, brokerVersionDesc, ...).
 * @param[out] out release with lsmq_admin_kv_table_free.
 */
int lsmq_admin_get_broker_runtime(lsmq_admin *a, const char *broker_addr, int timeout_ms,
                                  lsmq_admin_kv_table **out);
void lsmq_admin_kv_table_free(lsmq_admin_kv_table *t);

/** The value of key, or NULL. Valid while t lives. */
const char *lsmq_admin_kv_table_get(const lsmq_admin_kv_table *t, const char *key);

/* ------------------------------------------------------------------ */
/* Broker: replication (haStatus)                                      */
/* ------------------------------------------------------------------ */

/** What a master knows of one of its replicas (HAConnectionRuntimeInfo). */
typedef struct lsmq_admin_ha_replica {
    char *addr;               /**< the replica broker's address */
    int64_t ack_offset;       /**< slaveAckOffset: the log position it has acknowledged */
    int64_t diff;             /**< bytes behind the master's log */
    int64_t diff_messages;    /**< messages behind (lsmq brokers; -1 when not said) */
    int64_t ack_sequence;     /**< the sequence it acknowledged (lsmq brokers; -1) */
    int in_sync;              /**< inSync: within haMaxGapNotInSync */
    char *phase;              /**< "streaming", "checkpoint", "handshake" (lsmq), or NULL */
} lsmq_admin_ha_replica;

/** HARuntimeInfo: a master's replicas, or a replica's master. */
typedef struct lsmq_admin_ha_status {
    int master;                   /**< the broker is a master */
    char *role;                   /**< "ASYNC_MASTER", "SYNC_MASTER", "SLAVE" (lsmq), or NULL */
    /* A master. */
    int64_t master_max_offset;    /**< masterCommitLogMaxOffset: its next log position */
    int64_t master_sequence;      /**< its last sequence (lsmq; -1) */
    int64_t acked_sequence;       /**< acknowledged by inSyncReplicas replicas (lsmq; -1) */
    int in_sync_replicas;         /**< inSyncSlaveNums */
    lsmq_admin_ha_replica *replicas;
    size_t n_replicas;
    /* A replica. */
    char *master_addr;            /**< its master's HA address, or NULL while unknown */
    int64_t max_offset;           /**< its own next log position */
    int64_t applied_sequence;     /**< the master sequence it has applied (lsmq; -1) */
    int connected;                /**< streaming from its master now */
} lsmq_admin_ha_status;

/**
 * GET_BROKER_HA_STATUS (907), the body upstream's `mqadmin haStatus`
 * reads; lsmq brokers add the sequences and phases above.
 * @param[out] out release with lsmq_admin_ha_status_free.
 */
int lsmq_admin_get_ha_status(lsmq_admin *a, const char *broker_addr, int timeout_ms,
                             lsmq_admin_ha_status **out);
void lsmq_admin_ha_status_free(lsmq_admin_ha_status *s);

/** One epoch a broker's store knows (EpochEntry): its master's sequences. */
typedef struct lsmq_admin_epoch {
    int64_t epoch;
    int64_t start_offset;  /**< the sequence of its master's promotion */
    int64_t end_offset;    /**< where the next epoch took over; the last: maxOffset */
} lsmq_admin_epoch;

/** GET_BROKER_EPOCH_CACHE of a broker (upstream EpochEntryCache). */
typedef struct lsmq_admin_epoch_cache {
    char *cluster;
    char *broker_name;
    int64_t broker_id;
    lsmq_admin_epoch *epochs;  /**< oldest first */
    size_t n_epochs;
    int64_t max_offset;        /**< the store's position in the last epoch */
} lsmq_admin_epoch_cache;

/**
 * GET_BROKER_EPOCH_CACHE (1007) from the broker at broker_addr.
 * @param[out] out release with lsmq_admin_epoch_cache_free.
 */
int lsmq_admin_get_broker_epochs(lsmq_admin *a, const char *broker_addr, int timeout_ms,
                                 lsmq_admin_epoch_cache **out);
void lsmq_admin_epoch_cache_free(lsmq_admin_epoch_cache *c);

/** GET_METADATA_INFO of a controller (upstream GetMetaDataResponseHeader). */
typedef struct lsmq_admin_controller_meta {
    char *group;       /**< the controllers' raft group */
    char *leader_id;   /**< "n0", or NULL while none is known */
    char *leader_addr; /**< the leader's remoting address, or NULL while unknown */
    int is_leader;     /**< the controller asked is the leader */
    char *peers;       /**< "n0=host:port;..." (raft addresses) */
} lsmq_admin_controller_meta;

/**
 * CONTROLLER_GET_METADATA_INFO (1005) from the controller at ctrl_addr.
 * @param[out] out release with lsmq_admin_controller_meta_free.
 */
int lsmq_admin_get_controller_meta(lsmq_admin *a, const char *ctrl_addr, int timeout_ms,
                                   lsmq_admin_controller_meta **out);
void lsmq_admin_controller_meta_free(lsmq_admin_controller_meta *m);

/** One broker of a group as the controller knows it (ReplicaIdentity). */
typedef struct lsmq_admin_replica_id {
    int64_t id;
    char *addr;
    int alive; /**< heard from within its heartbeat timeout */
} lsmq_admin_replica_id;

/** A group's master and sync state set (BrokerReplicasInfo.ReplicasInfo). */
typedef struct lsmq_admin_sync_state {
    char *broker_name;
    int64_t master_id;    /**< -1 before the first election */
    char *master_addr;    /**< "" before the first election */
    int64_t master_epoch;
    int64_t sync_epoch;   /**< syncStateSetEpoch */
    lsmq_admin_replica_id *in_sync, *not_in_sync;
    size_t n_in_sync, n_not_in_sync;
} lsmq_admin_sync_state;

/**
 * CONTROLLER_GET_SYNC_STATE_DATA (1006) of the named groups, asked of the
 * leader (found through ctrl_addr's metadata, as upstream's admin does).
 * Groups the controller does not know are left out.
 * @param[out] out an array of *n, sorted by name; release with
 *             lsmq_admin_sync_states_free.
 */
int lsmq_admin_get_sync_states(lsmq_admin *a, const char *ctrl_addr,
                               const char *const *broker_names, size_t n_names, int timeout_ms,
                               lsmq_admin_sync_state **out, size_t *n);
void lsmq_admin_sync_states_free(lsmq_admin_sync_state *s, size_t n);

/** What CONTROLLER_ELECT_MASTER decided (ElectMasterResponseHeader). */
typedef struct lsmq_admin_elect_result {
    int64_t master_id;
    char master_addr[128];
    int64_t master_epoch;
    int64_t sync_epoch;
} lsmq_admin_elect_result;

/**
 * CONTROLLER_ELECT_MASTER (1002): make broker_id master of broker_name
 * (a planned switch-over), sent to the leader found through ctrl_addr.
 * The controller refuses a broker that is not alive or not in the sync
 * state set (RS_CONTROLLER_ELECT_MASTER_FAILED, see lsmq_admin_last_error).
 */
int lsmq_admin_elect_master(lsmq_admin *a, const char *ctrl_addr, const char *cluster,
                            const char *broker_name, int64_t broker_id, int timeout_ms,
                            lsmq_admin_elect_result *out);

/** A group's position in one queue (OffsetWrapper). */
typedef struct lsmq_admin_consume_offset {
    lsmq_admin_mq mq;
    int64_t broker_offset;   /**< the queue's max offset */
    int64_t consumer_offset; /**< committed offset (0 if none) */
    int64_t pull_offset;     /**< next pull offset the broker knows */
    int64_t last_timestamp;  /**< store time of the last consumed message, 0 if unknown */
} lsmq_admin_consume_offset;

/** ConsumeStats, possibly merged over brokers (Conventions (5)). */
typedef struct lsmq_admin_consume_stats {
    lsmq_admin_consume_offset *queues; /**< sorted by topic, broker name, queue id */
    size_t n_queues;
    double consume_tps;                /**< sum over brokers */
} lsmq_admin_consume_stats;

/**
 * GET_CONSUME_STATS of a group on one broker: the queues of topic, or with
 * topic NULL of every topic the group has offsets for. Merged into *stats
 * as lsmq_admin_get_topic_stats does.
 */
int lsmq_admin_get_consume_stats(lsmq_admin *a, const char *broker_addr, const char *group,
                                 const char *topic, int timeout_ms,
                                 lsmq_admin_consume_stats **stats);
void lsmq_admin_consume_stats_free(lsmq_admin_consume_stats *s);

/** One client connection (Connection). */
typedef struct lsmq_admin_connection {
    char *client_id;
    char *client_addr;
    char *language;  /**< "JAVA", "CPP", ... */
    int32_t version; /**< MQVersion ordinal */
} lsmq_admin_connection;

/** One subscription of a group (SubscriptionData, the fields tools show). */
typedef struct lsmq_admin_subscription {
    char *topic;
    char *sub_string;      /**< "*", "TagA || TagB" or SQL */
    char *expression_type; /**< "TAG" or "SQL92" ("TAG" when not given) */
} lsmq_admin_subscription;

/** ConsumerConnection, possibly merged over brokers (Conventions (5)). */
typedef struct lsmq_admin_consumer_connection {
    lsmq_admin_connection *conns;  /**< sorted by client id, no duplicates */
    size_t n_conns;
    lsmq_admin_subscription *subs; /**< sorted by topic, no duplicates */
    size_t n_subs;
    char *consume_type;            /**< "CONSUME_PASSIVELY", ...; "" if unknown */
    char *message_model;           /**< "CLUSTERING" / "BROADCASTING"; "" if unknown */
    char *consume_from_where;      /**< "" if unknown */
} lsmq_admin_consumer_connection;

/**
 * GET_CONSUMER_CONNECTION_LIST of a group on one broker, merged into *cc.
 * @return 0, or LSMQ_EIO with response code CONSUMER_NOT_ONLINE (206)
 *         when no member of the group is connected to that broker.
 */
int lsmq_admin_get_consumer_connection(lsmq_admin *a, const char *broker_addr, const char *group,
                                       int timeout_ms, lsmq_admin_consumer_connection **cc);
void lsmq_admin_consumer_connection_free(lsmq_admin_consumer_connection *cc);

/**
 * The queues one consumer holds (GET_CONSUMER_RUNNING_INFO, forwarded by
 * the broker to the client; the keys of its mqTable).
 * @param[out] mqs malloc'ed array of *n queues, sorted; release with
 *             lsmq_admin_mqs_free.
 * @return 0, or an error (brokers answer SYSTEM_ERROR when the client is
 *         not connected, REQUEST_CODE_NOT_SUPPORTED when they do not
 *         forward the request).
 */
int lsmq_admin_get_consumer_queues(lsmq_admin *a, const char *broker_addr, const char *group,
                                   const char *client_id, int timeout_ms, lsmq_admin_mq **mqs,
                                   size_t *n);

/* ------------------------------------------------------------------ */
/* Broker: messages                                                    */
/* ------------------------------------------------------------------ */

/*
 * Messages come back as lsmq_message objects (lsmq.h accessors) in a
 * malloc'ed array; release the array and its messages with
 * lsmq_messages_free. Bodies are inflated when they were compressed.
 */

/**
 * Decode stored records laid back to back (a pull, query or view body).
 * broker_name is what lsmq_message_broker_name will say. Pure.
 * @param[out] msgs new array of *n messages (NULL when *n is 0).
 * @return 0, LSMQ_EINVAL, LSMQ_ECORRUPT when a record does not decode
 *         (nothing is kept).
 */
int lsmq_admin_decode_messages(const void *body, size_t len, const char *broker_name,
                               lsmq_message ***msgs, size_t *n);

/** "ip:port" of a message's born or store host, written into buf. */
const char *lsmq_admin_message_born_host(const lsmq_message *m, char *buf, size_t cap);
const char *lsmq_admin_message_store_host(const lsmq_message *m, char *buf, size_t cap);

/**
 * Split an offset message id (32 or 56 hex characters) into the storing
 * broker's "ip:port" and the log position. Pure.
 * @return 0, LSMQ_EINVAL when the text is not an offset message id.
 */
int lsmq_admin_decode_offset_msg_id(const char *msg_id, char *addr, size_t addr_cap,
                                    int64_t *log_position);

/**
 * VIEW_MESSAGE_BY_ID: the message stored at a log position of one broker.
 * @param[out] msgs new array of one message (*n is 1).
 * @return 0, LSMQ_EIO with SYSTEM_ERROR when no message is there, or
 *         another error.
 */
int lsmq_admin_view_message(lsmq_admin *a, const char *broker_addr, int64_t log_position,
                            int timeout_ms, lsmq_message ***msgs, size_t *n);

/**
 * The same by offset message id: the broker is the one the id names.
 * @return as lsmq_admin_view_message; LSMQ_EINVAL for a malformed id.
 */
int lsmq_admin_view_message_by_id(lsmq_admin *a, const char *offset_msg_id, int timeout_ms,
                                  lsmq_message ***msgs, size_t *n);

/** What QUERY_MESSAGE looks for. */
typedef struct lsmq_admin_key_query {
    const char *topic;
    const char *key;     /**< a word of KEYS, or a message id (UNIQ_KEY) */
    int unique_key;      /**< non-zero: key is a message id (brokers then take 32 as max_num) */
    int32_t max_num;     /**< at most this many per broker (brokers cap it at 64) */
    int64_t begin_ms;    /**< store time range, inclusive; 0 and INT64_MAX for any */
    int64_t end_ms;
} lsmq_admin_key_query;

/**
 * QUERY_MESSAGE on one broker: the messages its index holds for the key,
 * as the broker sent them. They are appended to *msgs / *n (start with
 * NULL / 0; on failure nothing is added).
 * @return 0, LSMQ_ENOTFOUND (QUERY_NOT_FOUND, or an unknown topic), or an
 *         error (LSMQ_EIO with INVALID_PARAMETER for an end before the
 *         begin or max_num < 1).
 */
int lsmq_admin_query_message(lsmq_admin *a, const char *broker_addr, const lsmq_admin_key_query *q,
                             int timeout_ms, lsmq_message ***msgs, size_t *n);

/**
 * A key query over every broker in the topic's route, as the Java admin
 * does it: only messages of the topic that really carry the key (a word of
 * KEYS equal to it, or a message id equal to it for unique_key) are kept.
 * Brokers that refuse or cannot be reached are skipped.
 * @param[out] msgs new array of *n messages, by store time then position.
 * @return 0, LSMQ_ENOTFOUND when no broker found a matching message (or
 *         the name server has no route), or another error of the route look-up.
 */
int lsmq_admin_query_message_by_key(lsmq_admin *a, const char *namesrv,
                                    const lsmq_admin_key_query *q, int timeout_ms,
                                    lsmq_message ***msgs, size_t *n);

/** A PULL_MESSAGE answer. */
typedef struct lsmq_admin_pull_result {
    int32_t code;              /**< 0 found, 19 no new message, 20 none matched, 21 offset moved */
    int64_t next_begin_offset;
    int64_t min_offset;
    int64_t max_offset;
    lsmq_message **msgs;       /**< n messages (code 0), after the tag filter */
    size_t n;
} lsmq_admin_pull_result;

/**
 * Pull up to max_nums messages of one queue from `offset` without a
 * consumer (group TOOLS_CONSUMER, no long polling, no commit).
 * sub_expression is NULL or "*" for every message, else tags
 * "TagA || TagB" (filtered by the broker and again here by name).
 * @param[out] out release with lsmq_admin_pull_result_free.
 * @return 0 whatever the pull status (see code), or an error (a refusal
 *         such as TOPIC_NOT_EXIST, a transport failure).
 */
int lsmq_admin_pull(lsmq_admin *a, const char *broker_addr, const char *broker_name,
                    const char *topic, int32_t queue_id, int64_t offset, int32_t max_nums,
                    const char *sub_expression, int timeout_ms, lsmq_admin_pull_result **out);
void lsmq_admin_pull_result_free(lsmq_admin_pull_result *r);

/**
 * The message at a queue offset (a pull of one message).
 * @param[out] msgs new array of one message.
 * @return 0, LSMQ_ENOTFOUND when the queue has no message there, or an error.
 */
int lsmq_admin_query_message_by_offset(lsmq_admin *a, const char *broker_addr,
                                       const char *broker_name, const char *topic, int32_t queue_id,
                                       int64_t offset, int timeout_ms, lsmq_message ***msgs,
                                       size_t *n);

/* ------------------------------------------------------------------ */
/* Broker: offsets by time                                             */
/* ------------------------------------------------------------------ */

/**
 * SEARCH_OFFSET_BY_TIMESTAMP: with upper == 0 (LOWER) the first offset of
 * the queue stored at or after timestamp_ms, the max offset when every
 * message is older; with upper != 0 the last offset stored at or before it.
 */
int lsmq_admin_search_offset(lsmq_admin *a, const char *broker_addr, const char *topic,
                             int32_t queue_id, int64_t timestamp_ms, int upper, int timeout_ms,
                             int64_t *offset);

/** A queue and an offset. */
typedef struct lsmq_admin_queue_offset {
    lsmq_admin_mq mq;
    int64_t offset;
} lsmq_admin_queue_offset;

/** ResetOffsetBody, possibly merged over brokers (Conventions (5)). */
typedef struct lsmq_admin_reset_result {
    lsmq_admin_queue_offset *queues; /**< sorted by topic, broker name, queue id */
    size_t n_queues;
} lsmq_admin_reset_result;

/** What INVOKE_BROKER_TO_RESET_OFFSET resets. */
typedef struct lsmq_admin_reset {
    const char *topic;
    const char *group;
    int64_t timestamp_ms;  /**< -1: every queue's max offset */
    int force;             /**< zero: queues only move back, never forward */
    int32_t queue_id;      /**< -1: every queue; else that queue only */
    int64_t offset;        /**< with a queue_id: that offset; -1 from timestamp_ms */
} lsmq_admin_reset;

/**
 * Reset a group's offsets in a topic on one broker: online consumers are
 * told at once, and the offsets are committed (offline groups too). The
 * new offsets are merged into *result (a new result when *result is NULL;
 * release with lsmq_admin_reset_result_free).
 * @return 0, LSMQ_ENOTFOUND (TOPIC_NOT_EXIST), LSMQ_EIO
 *         (SUBSCRIPTION_GROUP_NOT_EXIST for an unknown group, ...).
 */
int lsmq_admin_reset_offset(lsmq_admin *a, const char *broker_addr, const lsmq_admin_reset *r,
                            int timeout_ms, lsmq_admin_reset_result **result);
void lsmq_admin_reset_result_free(lsmq_admin_reset_result *r);

/** QueueTimeSpan: store times of a queue and of a group's progress in it. */
typedef struct lsmq_admin_time_span {
    lsmq_admin_mq mq;
    int64_t min_timestamp;      /**< oldest message, -1 if none */
    int64_t max_timestamp;      /**< newest message, -1 if none */
    int64_t consume_timestamp;  /**< last consumed message */
    int64_t delay_ms;           /**< now minus the next message's store time, 0 when caught up */
} lsmq_admin_time_span;

typedef struct lsmq_admin_time_spans {
    lsmq_admin_time_span *queues; /**< sorted by topic, broker name, queue id */
    size_t n_queues;
} lsmq_admin_time_spans;

/**
 * QUERY_CONSUME_TIME_SPAN of a group in a topic on one broker, merged into
 * *spans as lsmq_admin_reset_offset merges.
 */
int lsmq_admin_query_consume_time_span(lsmq_admin *a, const char *broker_addr, const char *topic,
                                       const char *group, int timeout_ms,
                                       lsmq_admin_time_spans **spans);
void lsmq_admin_time_spans_free(lsmq_admin_time_spans *s);

/* ------------------------------------------------------------------ */
/* Delayed messages                                                    */
/* ------------------------------------------------------------------ */

/** Pending delayed messages of one topic on one broker. */
typedef struct lsmq_admin_timer_topic {
    char *topic;
    int64_t pending;
} lsmq_admin_timer_topic;

/** What LSMQ_GET_TIMER_STATUS answers (lsmq brokers only). */
typedef struct lsmq_admin_timer_status {
    int64_t pending_total;           /**< every pending message of the broker */
    lsmq_admin_timer_topic *topics;  /**< by name; only topics with pending ones unless asked */
    size_t n_topics;
} lsmq_admin_timer_status;

/**
 * Pending delayed messages on one broker, in all and per topic: for
 * `topic` only (NULL: every topic holding some). lsmq's own request
 * (code 801); upstream brokers answer REQUEST_CODE_NOT_SUPPORTED.
 * @param[out] out release with lsmq_admin_timer_status_free.
 */
int lsmq_admin_get_timer_status(lsmq_admin *a, const char *broker_addr, const char *topic,
                                int timeout_ms, lsmq_admin_timer_status **out);
void lsmq_admin_timer_status_free(lsmq_admin_timer_status *s);

/**
 * Send a copy of message m to `topic` on the broker at broker_addr, queue
 * queue_id: its body, flag, keys, tags, UNIQ_KEY and user properties,
 * without what a retry or a delay added (DELAY, TIMER_*, REAL_TOPIC,
 * REAL_QID, RETRY_TOPIC), so it is delivered at once. This is how a dead
 * letter goes back to its original topic (lsmq_message_property(m,
 * "RETRY_TOPIC")), as upstream's queryMsgById -s resends client-side.
 * @param[out] offset_msg_id the new record's offset id (cap >= 57), or NULL.
 * @return 0 once the broker answered SEND_OK, or an error recorded on a.
 */
int lsmq_admin_resend_message(lsmq_admin *a, const char *broker_addr, const lsmq_message *m,
                              const char *topic, int32_t queue_id, int timeout_ms,
                              char *offset_msg_id, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
