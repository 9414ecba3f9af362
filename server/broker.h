/*
 * The broker: request handlers over the engine, the client registry, long
 * polling, and registration with the name servers. Every handler runs on
 * the loop thread; store writes complete on the engine's writer thread and
 * come back to the loop through server_post.
 *
 * Files (one request family each):
 *   broker_config.c    broker.conf / --key=value parsing
 *   broker.c           broker_create/destroy, system topics, handler registration
 *   broker_send.c      SEND_MESSAGE, SEND_MESSAGE_V2, SEND_BATCH_MESSAGE
 *   broker_pull.c      PULL_MESSAGE / LITE_PULL_MESSAGE, tag filter, long polling
 *   broker_offsets.c   QUERY/UPDATE_CONSUMER_OFFSET, GET_MIN/MAX_OFFSET,
 *                      SEARCH_OFFSET_BY_TIMESTAMP, GET_EARLIEST_MSG_STORETIME
 *   broker_clients.c   HEART_BEAT, UNREGISTER_CLIENT, GET_CONSUMER_LIST_BY_GROUP,
 *                      NOTIFY_CONSUMER_IDS_CHANGED, connection lists, client expiry
 *   broker_locks.c     LOCK_BATCH_MQ, UNLOCK_BATCH_MQ
 *   broker_sendback.c  CONSUMER_SEND_MSG_BACK (retry and DLQ topics)
 *   broker_admin.c     topic create/delete/list, runtime info, topic and consume stats
 *   broker_query.c     QUERY_MESSAGE (by key / unique key), VIEW_MESSAGE_BY_ID
 *   broker_reset.c     INVOKE_BROKER_TO_RESET_OFFSET (tells online consumers, commits)
 *   broker_timespan.c  QUERY_CONSUME_TIME_SPAN
 *   broker_register.c  REGISTER_BROKER to every name server every 30 s (on the loop)
 */
#ifndef LSMQ_SERVER_BROKER_H
#define LSMQ_SERVER_BROKER_H

#include <stdbool.h>
#include <stdint.h>

#include "engine.h"
#include "index.h"
#include "net.h"

#define BROKER_DEFAULT_TOPIC "TBW102"
#define BROKER_RETRY_PREFIX "%RETRY%"
#define BROKER_DLQ_PREFIX "%DLQ%"

typedef struct broker_config {
    char broker_cluster_name[128]; /* brokerClusterName, DefaultCluster */
    char broker_name[128];         /* brokerName, broker-a */
    int64_t broker_id;             /* brokerId, 0 */
    char namesrv_addr[1024];       /* namesrvAddr, "host:port;host:port" */
    char broker_ip1[64];           /* brokerIP1, the advertised address; default first non-loopback or 127.0.0.1 */
    int listen_port;               /* listenPort, 10911 */
    char store_path_root_dir[1024];/* storePathRootDir, $HOME/store */
    int flush_disk_type_sync;      /* flushDiskType=SYNC_FLUSH */
    uint32_t flush_interval_commit_log; /* flushIntervalCommitLog, 500 ms */
    bool auto_create_topic_enable;      /* autoCreateTopicEnable, true */
    bool auto_create_subscription_group;/* autoCreateSubscriptionGroup, true */
    bool message_index_enable;          /* messageIndexEnable: key index, true */
    uint32_t default_topic_queue_nums;  /* defaultTopicQueueNums, 8 */
    uint32_t file_reserved_time;        /* fileReservedTime hours, 72 */
    uint32_t disk_max_used_space_ratio; /* diskMaxUsedSpaceRatio, 75 */
    uint32_t max_message_size;          /* maxMessageSize, 4 MiB */
    uint32_t broker_permission;         /* brokerPermission, 6 */
    uint32_t register_interval_ms;      /* registerNameServerPeriod, 30000 */
    uint32_t channel_expired_timeout_ms;/* channelExpiredTimeout (clients), 120000 */
    bool long_polling_enable;           /* longPollingEnable, true */
    uint32_t short_polling_time_ms;     /* shortPollingTimeMills, 1000 */
    uint64_t block_cache_bytes;         /* rocksdbBlockCacheSize, 256 MiB */
    bool embedded_namesrv;              /* embeddedNamesrv / --embedded-namesrv */
    int embedded_namesrv_port;          /* embeddedNamesrvPort, 9876 */
    uint32_t writer_queue_max;          /* writerQueueMax, 65536 */
    uint32_t kept_requests_max;         /* keptRequestsMax, 65536 (waiting for config writes) */
} broker_config;

void broker_config_init(broker_config *c);
/*
 * Apply `key=value` (broker.conf syntax, RocketMQ key names). Returns 0,
 * LSMQ_ENOTFOUND for an unknown key, LSMQ_EINVAL for a bad value; errbuf says which.
 */
int broker_config_set(broker_config *c, const char *key, const char *value, char *errbuf,
                      size_t errlen);
/* Load a broker.conf file (key=value lines, # comments). */
int broker_config_load(broker_config *c, const char *path, char *errbuf, size_t errlen);
/*
 * Command line: -c FILE, -n 'addr;addr', --key=value for any key,
 * --embedded-namesrv. Later settings win. Returns 0 or an error with errbuf set.
 */
int broker_config_parse_args(broker_config *c, int argc, char **argv, char *errbuf,
                             size_t errlen);

typedef struct broker broker;

/* Opens the engine under storePathRootDir and registers every handler on srv. */
int broker_create(const broker_config *cfg, server *srv, broker **out, char *errbuf,
                  size_t errlen);
/* Stops registration, answers parked pulls, closes the engine. Loop thread. */
void broker_destroy(broker *b);

/* Accessors for the handler files. broker_engine is NULL once shutdown has
 * closed the store: completions that still arrive must not touch it. */
engine *broker_engine(broker *b);
server *broker_server(broker *b);
const broker_config *broker_cfg(broker *b);
/* "brokerIP1:listenPort" */
const char *broker_addr(broker *b);
/* The store host stamped into records (brokerIP1:listenPort). */
const proto_host *broker_store_host(broker *b);

/* ---- Per-file registration, called by broker_create. ---- */
void broker_send_register(broker *b);
void broker_pull_register(broker *b);
void broker_offsets_register(broker *b);
void broker_clients_register(broker *b);
void broker_locks_register(broker *b);
void broker_sendback_register(broker *b);
void broker_admin_register(broker *b);

/* ---- Shared services ---- */

/*
 * Configs written from handlers without blocking the loop (broker_meta.c).
 * The *_for calls take the request being handled. When they return
 * BROKER_DEFERRED, a write went to the store's writer (or one of the same
 * name was already on its way) and the request was kept: the handler must
 * return at once without answering, and the request is dispatched again,
 * from the start, once the write has landed. (With too many requests kept
 * already, BROKER_DEFERRED means it was answered SYSTEM_BUSY instead.)
 */
#define BROKER_DEFERRED (-29000)

/*
 * Find a topic; when absent and `default_topic` is an inheritable topic (or
 * TBW102 with autoCreateTopicEnable), create it with min(queue_nums, default's
 * write queues) queues; the broker registers with the name servers once it
 * is stored. Returns 0 and fills *out, BROKER_DEFERRED, LSMQ_ENOTFOUND, or
 * the error of a creation that failed.
 */
int broker_topic_get_or_create_for(broker *b, conn *c, const proto_cmd *req, const char *topic,
                                   const char *default_topic, uint32_t queue_nums,
                                   engine_topic_config *out);
/* BROKER_DEFERRED when a write of the topic's config is on its way: req
 * then runs after the requests already waiting for it, in order. Else 0. */
int broker_topic_wait_for(broker *b, conn *c, const proto_cmd *req, const char *topic);
/* Create the topic if missing with the given queues and perm: 0 (*out
 * filled, out may be NULL), BROKER_DEFERRED, or an error. */
int broker_topic_ensure_for(broker *b, conn *c, const proto_cmd *req, const char *topic,
                            uint32_t queues, uint32_t perm, engine_topic_config *out);
/* Store tc (create or update), or delete a topic: BROKER_DEFERRED, and when
 * the request runs again, the write's outcome (a delete of a missing topic
 * gives LSMQ_ENOTFOUND). */
int broker_topic_update_for(broker *b, conn *c, const proto_cmd *req,
                            const engine_topic_config *tc);
int broker_topic_delete_for(broker *b, conn *c, const proto_cmd *req, const char *topic);
/* Answer a delete request from its *_delete_for outcome: nothing yet when
 * deferred; deleting what is not there succeeds, as in the Java broker. */
void broker_answer_delete(conn *c, const proto_cmd *req, int rc, const char *what,
                          const char *name);
/* Subscription group configs (JSON text), the same way. create_for is the
 * auto-creation of a missing group: when it failed, the request sees the error. */
int broker_group_create_for(broker *b, conn *c, const proto_cmd *req, const char *group,
                            const char *json, size_t json_len);
int broker_group_update_for(broker *b, conn *c, const proto_cmd *req, const char *group,
                            const char *json, size_t json_len);
int broker_group_delete_for(broker *b, conn *c, const proto_cmd *req, const char *group);

typedef struct broker_meta broker_meta;
broker_meta *broker_meta_create(broker *b);
void broker_meta_destroy(broker_meta *m);
broker_meta *broker_meta_state(broker *b);
/* A topic config was stored or deleted: register with the name servers now;
 * `created` makes later send answers wait for that registration. */
void broker__topics_changed(broker *b, bool created);

/* Wake the pulls parked on (topic, queue): called after a commit to that
 * queue. Loop thread only. */
void broker_pull_notify(broker *b, const char *topic, uint32_t queue_id);

/*
 * Register with the name servers now (in the next loop iteration; requests
 * of one iteration share a round). Returns the generation of that
 * registration (0 when the broker has no name servers: r is NULL). Loop
 * thread.
 */
typedef struct broker_registrar broker_registrar;
uint64_t broker_register_now(broker_registrar *r);
/*
 * Loop thread: run fn(arg) once a registration of generation `gen` or later
 * has finished (at once if it has). A send that auto-created its topic is
 * answered this way, so the topic is routable when the producer hears back,
 * as with the Java broker, which registers before it replies.
 */
void broker_after_register(broker *b, uint64_t gen, void (*fn)(void *arg), void *arg);
/* Generation of the registration asked for by the latest topic creation. */
uint64_t broker_topics_register_gen(broker *b);
/* Loop thread: registration `gen` finished (called by the registrar). */
void broker__registered(broker *b, uint64_t gen);

/* Map an engine error to a response code and remark. */
int broker_store_error_code(int lsmq_err);

/* Private state of the handler files, created/destroyed by broker.c. */
typedef struct broker_clients broker_clients;
typedef struct broker_pull broker_pull;
typedef struct broker_locks broker_locks;
typedef struct broker_registrar broker_registrar;
broker_clients *broker_clients_state(broker *b);
broker_pull *broker_pull_state(broker *b);
broker_locks *broker_locks_state(broker *b);

broker_clients *broker_clients_create(broker *b);
void broker_clients_destroy(broker_clients *bc);
broker_pull *broker_pull_create(broker *b);
void broker_pull_destroy(broker_pull *bp);
broker_locks *broker_locks_create(broker *b);
void broker_locks_destroy(broker_locks *bl);
broker_registrar *broker_registrar_start(broker *b);
void broker_registrar_stop(broker_registrar *r); /* sends UNREGISTER_BROKER */

/* Subscription of a group for a topic, from heartbeats (NULL when none). */
typedef struct broker_subscription {
    char topic[256];
    char sub_string[1024];
    int sql92;
    int64_t sub_version;
    int64_t *codes;        /* tag hash codes; NULL/0 for "*" */
    size_t n_codes;
    bool all;              /* "*" or empty */
} broker_subscription;
const broker_subscription *broker_clients_subscription(broker *b, const char *group,
                                                       const char *topic);
/* Does the group have any registered member (heartbeat)? */
bool broker_clients_group_known(broker *b, const char *group);

#endif
