/*
 * The servers an end-to-end test runs: an mqbroker with its embedded name
 * server on free loopback ports over a fresh temporary store, or a lone
 * mqnamesrv; and the wait until a name server routes a topic, which is how
 * a test knows the broker has registered.
 *
 * Extra command-line options are NULL-terminated arrays of "--key=value"
 * strings, appended after the fixture's own (a later option wins).
 * Functions return 0 or -1 unless said otherwise; none of them asserts, so
 * they serve cmocka setup and teardown functions as well as test bodies.
 */
#ifndef LSMQ_TEST_E2E_PROCS_H
#define LSMQ_TEST_E2E_PROCS_H

#include "wire.h"

/* A running mqbroker with an embedded name server. */
typedef struct e2e_broker {
    wire_proc proc;   /* proc.port is the broker's listen port */
    int namesrv_port; /* the embedded name server's */
    int ha_port;      /* where it serves replicas (haListenPort), free like the others */
    char *store_dir;  /* owned; removed by e2e_broker_stop and e2e_broker_kill */
    char addr[32];    /* "127.0.0.1:<listen port>", for liblsmq's admin calls */
    char namesrv[32]; /* "127.0.0.1:<name server port>", for liblsmq clients */
} e2e_broker;

/*
 * Start mqbroker on three free ports (listen, embedded name server, HA) and a new
 * store directory named after tag; returns once the listen port accepts.
 * On failure nothing is left running and the store is removed.
 */
int e2e_broker_start(e2e_broker *b, const char *tag, const char *const *extra);

/*
 * e2e_broker_start's first half: the ports and the store directory, for a
 * test that watches the store while the broker starts (e2e_broker_restart
 * starts it; e2e_broker_kill removes the directory of one never started).
 */
int e2e_broker_init(e2e_broker *b, const char *tag);

/* Start it again on the same ports and store, after wire_kill9(&b->proc). */
int e2e_broker_restart(e2e_broker *b, const char *const *extra);

/*
 * SIGTERM, wait up to timeout_ms, remove the store. Returns the exit status
 * (0 = clean; -1 if it had to be killed) and reports any other on stderr.
 */
int e2e_broker_stop(e2e_broker *b, int timeout_ms);

/*
 * SIGKILL if it still runs, and remove the store: a teardown's cleanup
 * after a failed check. Does nothing on a zeroed or stopped broker.
 */
void e2e_broker_kill(e2e_broker *b);

/*
 * The usual cmocka group set-up: e2e_broker_start, then one connection to
 * the broker (20 s receive timeout) into *fd, which e2e_broker_teardown
 * closes.
 */
int e2e_broker_setup(e2e_broker *b, const char *tag, const char *const *extra, int *fd);

/* Close *fd if open, stop the broker (30 s); 0 on a clean exit, else -1. */
int e2e_broker_teardown(e2e_broker *b, int *fd);

/* Start mqnamesrv listening on port (0 picks a free one into p->port). */
int e2e_namesrv_start(wire_proc *p, int port, const char *const *extra);

/*
 * Ask the name server at namesrv_port for topic's route (a fresh connection
 * each time, so it may be down meanwhile) until the answer's code is `code`.
 * Returns the milliseconds it took, or -1 after timeout_ms.
 */
long e2e_wait_route(int namesrv_port, const char *topic, int code, int timeout_ms);

#endif
