/*
 * liblsmq admin API — blocking calls for administration tools (mqadmin):
 * cluster and route look-ups on name servers, topic creation and deletion,
 * and the statistics brokers keep about topics and consumer groups
 * (REMOTING.md §3.10, §3.11, §5).
 *
 * @section conventions Conventions
 *
 * (1) Every call is blocking: it opens one TCP connection to the address it
 *     is given, sends one request, waits for the matching response and
 *     closes the connection. timeout_ms bounds the whole exchange (connect,
 *     write, read); it must be > 0. No thread, no event loop, no state is
 *     shared between calls, so every function may be called from any
 *     thread, concurrently.
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
 *     After any failure lsmq_last_error() on the same thread returns the
 *     RocketMQ response code (or -1 for a failure that is not a refusal)
 *     and a text naming the request, the address and, for refusals,
 *     "CODE: <code>  DESC: <remark>" as the Java tools print it.
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
int lsmq_admin_call(const char *addr, const proto_cmd *req, const void *body, size_t body_len,
                    int timeout_ms, proto_cmd **resp, char **resp_body, size_t *resp_body_len);

/**
 * lsmq_admin_call on a name server list (Conventions (2)). @return as
 * lsmq_admin_call; when every server failed, the last server's error.
 */
int lsmq_admin_call_namesrv(const char *namesrv, const proto_cmd *req, const void *body,
                            size_t body_len, int timeout_ms, proto_cmd **resp, char **resp_body,
                            size_t *resp_body_len);

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
int lsmq_admin_get_cluster_info(const char *namesrv, int timeout_ms,
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
int lsmq_admin_get_route(const char *namesrv, const char *topic, int timeout_ms,
                         lsmq_admin_route **out);
void lsmq_admin_route_free(lsmq_admin_route *r);

/**
 * The topics the name server knows (GET_ALL_TOPIC_LIST_FROM_NAMESERVER), or
 * with cluster != NULL those on that cluster's brokers (GET_TOPICS_BY_CLUSTER).
 * @param[out] topics malloc'ed array of *n malloc'ed strings, in the
 *             server's order; release with lsmq_admin_strings_free.
 */
int lsmq_admin_get_topic_list(const char *namesrv, const char *cluster, int timeout_ms,
                              char ***topics, size_t *n);

/** Release an array of strings returned by this API (NULL is fine). */
void lsmq_admin_strings_free(char **v, size_t n);

/**
 * DELETE_TOPIC_IN_NAMESRV on every server of the list (not just the first
 * that answers). With cluster != NULL only that cluster's queues go.
 * @return 0 when every server succeeded, else the first error.
 */
int lsmq_admin_delete_topic_in_namesrv(const char *namesrv, const char *topic,
                                       const char *cluster, int timeout_ms);

/**
 * A name server KV entry (GET_KV_CONFIG).
 * @param[out] value malloc'ed; free() it.
 * @return 0, LSMQ_ENOTFOUND (no such entry), or an error.
 */
int lsmq_admin_get_kv_config(const char *namesrv, const char *ns, const char *key,
                             int timeout_ms, char **value);

/** PUT_KV_CONFIG on every server of the list. @return 0 or the first error. */
int lsmq_admin_put_kv_config(const char *namesrv, const char *ns, const char *key,
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
int lsmq_admin_create_topic(const char *broker_addr, const lsmq_admin_topic_config *tc,
                            int timeout_ms);

/** DELETE_TOPIC_IN_BROKER: the topic, its messages and its offsets. */
int lsmq_admin_delete_topic_in_broker(const char *broker_addr, const char *topic,
                                      int timeout_ms);

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
int lsmq_admin_get_topic_stats(const char *broker_addr, const char *topic, int timeout_ms,
                               lsmq_admin_topic_stats **stats);
void lsmq_admin_topic_stats_free(lsmq_admin_topic_stats *s);

/**
 * The consumer groups of a topic known to one broker
 * (QUERY_TOPIC_CONSUME_BY_WHO). Release with lsmq_admin_strings_free.
 */
int lsmq_admin_get_topic_groups(const char *broker_addr, const char *topic, int timeout_ms,
                                char ***groups, size_t *n);

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
int lsmq_admin_get_broker_runtime(const char *broker_addr, int timeout_ms,
                                  lsmq_admin_kv_table **out);
void lsmq_admin_kv_table_free(lsmq_admin_kv_table *t);

/** The value of key, or NULL. Valid while t lives. */
const char *lsmq_admin_kv_table_get(const lsmq_admin_kv_table *t, const char *key);

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
int lsmq_admin_get_consume_stats(const char *broker_addr, const char *group, const char *topic,
                                 int timeout_ms, lsmq_admin_consume_stats **stats);
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
int lsmq_admin_get_consumer_connection(const char *broker_addr, const char *group,
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
int lsmq_admin_get_consumer_queues(const char *broker_addr, const char *group,
                                   const char *client_id, int timeout_ms, lsmq_admin_mq **mqs,
                                   size_t *n);

#ifdef __cplusplus
}
#endif

#endif
