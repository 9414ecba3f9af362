/*
 * mqnamesrv: the lsmq name server program.
 *
 *   mqnamesrv [-c namesrv.conf] [--listenPort=9876]
 *             [--brokerChannelExpiredTime=ms] [--scanNotActiveBrokerInterval=ms]
 *             [--orderMessageEnable=true]
 *             [--enableControllerInNamesrv=true --controllerPeers=n0=h:p;n1=h:p;n2=h:p
 *              --controllerSelfId=n0 [--controllerStorePath=dir]
 *              [--scanInactiveMasterInterval=ms]]
 *
 * Brokers register with it; clients ask it for routes. SIGTERM or SIGINT:
 * stop accepting, flush what is queued, exit 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "namesrv.h"
#include "process.h"

int main(int argc, char **argv)
{
    namesrv_config cfg;
    namesrv_config_init(&cfg);
    char err[1024] = "";
    if (namesrv_config_parse_args(&cfg, argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "mqnamesrv: %s\n", err);
        return 2;
    }
    server_process_init();
    struct ev_loop *loop = ev_default_loop(0);

    server *srv;
    int bound = 0;
    int rc = server_process_listen(loop, "namesrv", cfg.listen_port, &srv, &bound);
    if (rc != 0) {
        fprintf(stderr, "mqnamesrv: cannot listen on port %d: %s\n", cfg.listen_port,
                lsmq_strerror(rc));
        ev_loop_destroy(loop);
        return 1;
    }
    cfg.listen_port = bound; /* --listenPort=0 picks a free port */
    namesrv *ns;
    rc = namesrv_create(srv, &cfg, &ns);
    if (rc != 0) {
        fprintf(stderr, "mqnamesrv: cannot start: %s\n", lsmq_strerror(rc));
        server_destroy(srv);
        ev_loop_destroy(loop);
        return 1;
    }
    printf("name server listening on 0.0.0.0:%d (broker expiry %u ms, scan every %u ms)%s\n",
           bound, cfg.broker_expire_ms, cfg.scan_interval_ms,
           cfg.enable_controller ? ", controller on" : "");
    fflush(stdout);

    server_process_run_until_signal(loop, "namesrv");

    server_stop_listening(srv);
    namesrv_destroy(ns); /* unhooks itself, so closing connections below is safe */
    server_destroy(srv);
    ev_loop_destroy(loop);
    proto_log(PROTO_LOG_INFO, "namesrv: stopped");
    return 0;
}
