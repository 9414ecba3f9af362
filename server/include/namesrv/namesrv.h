/*
 * The name server: brokers register here every 30 s with their topic
 * configs; clients ask it for topic routes and cluster info. State lives
 * in memory only (brokers re-register), on the loop thread.
 *
 * Files: namesrv.c (route tables, expiry, removal on connection close,
 * create/destroy), namesrv_register.c (REGISTER/UNREGISTER_BROKER,
 * QUERY_DATA_VERSION, write-perm switches), namesrv_routes.c
 * (GET_ROUTEINFO_BY_TOPIC, cluster info, topic lists, topic delete),
 * namesrv_kv.c (KV config), namesrv_json.c (hand-built JSON text),
 * namesrv_config.c (options), mqnamesrv.c (the program); with
 * enableControllerInNamesrv, the controller service: namesrv_ctl*.c
 * (namesrv_ctl.h; its one worker thread waits for raft commits).
 *
 * Threads: loop thread only. namesrv_destroy unhooks itself from the
 * server, so the server may be destroyed after it.
 */
#ifndef LSMQ_SERVER_NAMESRV_H
#define LSMQ_SERVER_NAMESRV_H

#include <stdbool.h>
#include <stdint.h>

#include "net.h"

typedef struct namesrv_config {
    int listen_port;                   /* listenPort, 9876 */
    uint32_t broker_expire_ms;         /* brokerChannelExpiredTime, 120000 */
    uint32_t scan_interval_ms;         /* scanNotActiveBrokerInterval, 5000 */
    int order_message_enable;          /* orderMessageEnable, false */

    /* The controller (namesrv_ctl*.c), upstream ControllerConfig names. */
    bool enable_controller;            /* enableControllerInNamesrv, false */
    char controller_peers[1024];       /* controllerPeers "n0=host:port;..." (raft
                                        * addresses); controllerDLegerPeers "n0-host:port;..." */
    char controller_self_id[16];       /* controllerSelfId / controllerDLegerSelfId */
    char controller_store_path[512];   /* controllerStorePath, ~/lsmq/controller */
    uint32_t controller_scan_ms;       /* scanInactiveMasterInterval, 1000 */
} namesrv_config;

void namesrv_config_init(namesrv_config *c);
/* --key=value (RocketMQ namesrv key names) and -c FILE; 0 or an error with errbuf set.
 * The result is checked as a whole too (controller keys that go together). */
int namesrv_config_parse_args(namesrv_config *c, int argc, char **argv, char *errbuf,
                              size_t errlen);

typedef struct namesrv namesrv;

/* Register the name server's handlers on srv (which the caller listens with). */
int namesrv_create(server *srv, const namesrv_config *cfg, namesrv **out);
void namesrv_destroy(namesrv *ns);

#endif
