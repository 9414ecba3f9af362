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

#endif
