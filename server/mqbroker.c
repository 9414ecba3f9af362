/*
 * mqbroker: the lsmq broker program.
 *
 *   mqbroker [-c broker.conf] [-n 'host:port;host:port'] [--key=value ...]
 *            [--embedded-namesrv]
 *
 * With --embedded-namesrv (or embeddedNamesrv=true) a name server runs in
 * the same process on embeddedNamesrvPort, and the broker registers with it.
 * SIGTERM or SIGINT: stop accepting, finish in-flight work, close the store.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "log.h"
#include "namesrv.h"
#include "process.h"

int main(int argc, char **argv)
{
    broker_config cfg;
    broker_config_init(&cfg);
    char err[1024] = "";
    if (broker_config_parse_args(&cfg, argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "mqbroker: %s\n", err);
        return 2;
    }
    server_process_init();
    struct ev_loop *loop = ev_default_loop(0);

    server *ns_srv = NULL;
    namesrv *ns = NULL;
    if (cfg.embedded_namesrv) {
        namesrv_config nc;
        namesrv_config_init(&nc);
        nc.listen_port = cfg.embedded_namesrv_port;
        int bound = 0;
        int rc = server_process_listen(loop, "namesrv", nc.listen_port, &ns_srv, &bound);
        if (rc != 0 || namesrv_create(ns_srv, &nc, &ns) != 0) {
            fprintf(stderr, "mqbroker: cannot start the embedded name server on port %d: %s\n",
                    nc.listen_port, lsmq_strerror(rc));
            return 1;
        }
        if (!cfg.namesrv_addr[0])
            snprintf(cfg.namesrv_addr, sizeof cfg.namesrv_addr, "127.0.0.1:%d", bound);
        printf("name server listening on 127.0.0.1:%d\n", bound);
    }

    server *srv;
    int bound = 0;
    /* The embedded name server, when there is one, outlives the broker's server:
     * they share its flusher, one per loop. */
    int rc = ns_srv ? server_process_listen_beside(ns_srv, "broker", cfg.listen_port, &srv, &bound)
                    : server_process_listen(loop, "broker", cfg.listen_port, &srv, &bound);
    if (rc != 0) {
        fprintf(stderr, "mqbroker: cannot listen on port %d: %s\n", cfg.listen_port,
                lsmq_strerror(rc));
        return 1;
    }
    cfg.listen_port = bound; /* --listenPort=0 picks a free port */
    broker *b = NULL;
    broker_controller *bc = NULL;
    if (cfg.enable_controller_mode ? broker_controller_start(&cfg, srv, &bc, err, sizeof err) != 0
                                   : broker_create(&cfg, srv, &b, err, sizeof err) != 0) {
        fprintf(stderr, "mqbroker: %s\n", err);
        server_destroy(srv);
        return 1;
    }
    printf("broker %s of cluster %s listening on %s:%d, store %s, name servers %s%s%s\n",
           cfg.broker_name, cfg.broker_cluster_name, cfg.broker_ip1, cfg.listen_port,
           cfg.store_path_root_dir, cfg.namesrv_addr[0] ? cfg.namesrv_addr : "(none)",
           bc ? ", controllers " : "", bc ? cfg.controller_addr : "");
    fflush(stdout);

    server_process_run_until_signal(loop, "broker");

    server_stop_listening(srv);
    if (ns_srv)
        server_stop_listening(ns_srv);
    broker_controller_stop(bc);
    broker_destroy(b);
    server_destroy(srv);
    if (ns) {
        namesrv_destroy(ns);
        server_destroy(ns_srv);
    }
    ev_loop_destroy(loop);
    proto_log(PROTO_LOG_INFO, "broker: stopped");
    return 0;
}
