/*
 * The broker: RocketMQ's broker requests over the engine, as a table of
 * modules (one request family each) on one server loop. This header is
 * what a program needs to run a broker: its configuration and
 * broker_create/broker_destroy. The modules, the context they share and
 * the continuation contract of requests that wait are in
 * broker_internal.h.
 *
 * Conventions:
 *   - broker is opaque; broker_create builds it and broker_destroy frees it.
 *   - Functions return 0 or a negative LSMQ_E* code (protocol/errors.h);
 *     errors meant for a person go to a caller's errbuf.
 *   - Threads: broker_create and broker_destroy run on the loop thread of
 *     the server they are given, before the loop runs and after it stopped.
 *
 * Naming across server/ (broker and name server): a request handler is
 * named after its request code, on_<request> (RC_SEND_MESSAGE is served by
 * on_send_message, RC_REGISTER_BROKER by on_register_broker); every other
 * function handed over to be called later (writer completions, posted
 * work, timers, close hooks, continuations) ends in _cb.
 */
#ifndef LSMQ_SERVER_BROKER_H
#define LSMQ_SERVER_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net.h"

/* brokerRole: a master (ASYNC or SYNC: does a send wait for a replica?) or a replica. */
typedef enum broker_role {
    BROKER_ASYNC_MASTER = 0,       /* answer sends after the local write (the default) */
    BROKER_SYNC_MASTER,            /* answer sends once inSyncReplicas replicas persisted them */
    BROKER_SLAVE,                  /* a replica: applies its master's log, serves reads */
} broker_role;

/* Most delay levels messageDelayLevel may name. */
#define BROKER_DELAY_LEVELS_MAX 64
#define BROKER_DEFAULT_DELAY_LEVELS "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"

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
    /* Replication (broker_ha.c). */
    broker_role role;                   /* brokerRole, ASYNC_MASTER */
    int ha_listen_port;                 /* haListenPort; 0 = listenPort + 1 */
    char ha_master_address[256];        /* haMasterAddress "host:port"; "" = ask the name server */
    uint32_t in_sync_replicas;          /* inSyncReplicas: replicas (the master not counted)
                                           a SYNC_MASTER send waits for, 1 */
    uint32_t sync_flush_timeout_ms;     /* syncFlushTimeout: how long such a send waits, 5000 */
    bool slave_read_enable;             /* slaveReadEnable: a group's brokerId may name a replica */
    bool offset_check_in_slave;         /* offsetCheckInSlave: a replica corrects pull offsets */
    uint32_t ha_max_gap_bytes;          /* haMaxGapNotInSync: further behind is not in sync, 256 MiB */
    uint32_t wal_ttl_seconds;           /* walTtlSeconds: WAL kept for replicas to catch up, 3600 */
    uint32_t wal_size_limit_mb;         /* walSizeLimitMB: and at most this much of it, 4096 */
    /* Controller mode: a controller decides who is master (broker_controller.c). */
    bool enable_controller_mode;        /* enableControllerMode */
    char controller_addr[1024];         /* controllerAddr, "host:port;host:port" */
    uint32_t controller_heartbeat_timeout_ms; /* controllerHeartBeatTimeoutMills, 10000 */
    uint32_t broker_heartbeat_interval_ms;    /* brokerHeartbeatInterval, 1000 */
    uint32_t ha_max_time_slave_not_catchup_ms;/* haMaxTimeSlaveNotCatchup: leaves the sync
                                                 state set after, 15000 */
    /* Delayed delivery (broker_delay.c). */
    char message_delay_level[512];      /* messageDelayLevel, "1s 5s 10s 30s 1m ... 2h" */
    int64_t delay_level_ms[BROKER_DELAY_LEVELS_MAX]; /* parsed from it: level i+1's delay */
    uint32_t delay_levels;              /* how many levels it names (18 by default) */
    uint32_t timer_max_delay_sec;       /* timerMaxDelaySec: longest timer delay, 259200 */
    bool timer_wheel_enable;            /* timerWheelEnable: take 5.x timer messages, true */
    uint32_t timer_precision_ms;        /* timerPrecisionMs: accepted; delivery is ms-exact */
    /* Set by the controller agent for the broker it builds, not configuration keys. */
    uint64_t controller_epoch;          /* the epoch this broker serves in (0: no controller) */
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
 * Refuse combinations that cannot work (a SLAVE with brokerId 0, a master
 * with brokerId > 0, haListenPort equal to listenPort, ...): LSMQ_EINVAL
 * with a sentence in errbuf saying which keys and what to change.
 */
int broker_config_check(const broker_config *c, char *errbuf, size_t errlen);
/* The same for enableControllerMode: what the controller agent needs before it builds a broker. */
int broker_config_check_controller_mode(const broker_config *c, char *errbuf, size_t errlen);
/* "ASYNC_MASTER", "SYNC_MASTER" or "SLAVE" (static). */
const char *broker_role_name(broker_role r);
/* The port replicas connect to: haListenPort, else listenPort + 1. */
int broker_config_ha_port(const broker_config *c);

/*
 * Command line: -c FILE, -n 'addr;addr', --key=value for any key,
 * --embedded-namesrv. Later settings win. Returns 0 or an error with errbuf set.
 */
int broker_config_parse_args(broker_config *c, int argc, char **argv, char *errbuf,
                             size_t errlen);

typedef struct broker broker;

/*
 * Create the broker's modules in table order (the store under
 * storePathRootDir first, registration with the name servers among them)
 * and register their handlers on srv, which must outlive the broker.
 * Returns 0 and *out, or an error with errbuf set (nothing is left behind).
 */
int broker_create(const broker_config *cfg, server *srv, broker **out, char *errbuf,
                  size_t errlen);
/*
 * Shut the modules down in reverse table order: registration ends
 * (UNREGISTER_BROKER), the store closes after its writer drained and the
 * completions ran, requests still waiting are dropped, parked pulls are
 * answered. Then frees. Loop thread, with the loop stopped.
 */
void broker_destroy(broker *b);

/* ---- What the controller agent (broker_controller.c) drives ----------- */

/* A master that has lost its lease refuses sends until it is renewed (SERVICE_NOT_AVAILABLE). */
void broker_set_fenced(broker *b, bool fenced);
/* True for a replica (brokerRole=SLAVE). */
bool broker_is_replica(const broker *b);
/*
 * Where the store stands in its epoch: a master's own last sequence, a
 * replica's applied master sequence (what the controller compares).
 */
uint64_t broker_position(broker *b);
/* A replica follows the master at haAddr in epoch (reconnects when either changes). */
void broker_follow(broker *b, const char *ha_addr, uint64_t epoch);
/*
 * A master in controller mode acknowledges a SYNC send once every replica
 * named (by its broker address) has it; none: at once.
 */
void broker_set_ack_set(broker *b, const char *const *addrs, size_t n);

/* What a master knows of one replica, for the sync state set. */
typedef struct broker_replica_state {
    char addr[128];             /* its broker address, as it announced it */
    uint64_t acked_seq;         /* the last master sequence it has applied */
    bool streaming;             /* following the log now (not fetching a checkpoint) */
    bool in_sync;               /* within haMaxGapNotInSync */
} broker_replica_state;
/* A master's replicas (*out malloc'ed, free()) and its own last sequence; replicas: none. */
int broker_replicas(broker *b, broker_replica_state **out, size_t *n, uint64_t *last_seq);

/*
 * Controller mode: the agent that builds the broker in the role the
 * controller gives it (broker_controller.c). Start on the loop thread
 * before it runs (the broker starts as a replica until a controller
 * names the master); stop after the loop stopped (destroys the broker).
 */
typedef struct broker_controller broker_controller;
int broker_controller_start(const broker_config *cfg, server *srv, broker_controller **out,
                            char *errbuf, size_t errlen);
void broker_controller_stop(broker_controller *bc);

#endif
