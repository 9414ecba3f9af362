/*
 * The controller inside the name server (enableControllerInNamesrv): a raft
 * node (controller/) deciding each broker group's master, and the remoting
 * requests of brokers and mqadmin about it, served on the name server's
 * own port (wire contract: controller/README.md, "The service").
 *
 * Files: namesrv_ctl.c (life cycle, the submit worker, leadership),
 * namesrv_ctl_live.c (the leader's table of brokers heard from and its
 * automatic elections), namesrv_ctl_answer.c (reply fields and bodies),
 * namesrv_ctl_requests.c (the request handlers).
 *
 * Threads: the loop thread, except the worker, which only calls
 * ctl_node_submit (it blocks until the commit) and posts the job back to
 * the loop with server_post. Liveness is the leader's own, never
 * replicated: a new leader starts everyone with a grace of one timeout.
 */
#ifndef LSMQ_SERVER_NAMESRV_CTL_H
#define LSMQ_SERVER_NAMESRV_CTL_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <uthash.h>

#include "controller.h"
#include "namesrv_internal.h"

/* A broker's own heartbeat timeout when it does not send one. */
#define NS_CTL_DEFAULT_TIMEOUT_MS 10000
/* How long the worker waits for one commit. */
#define NS_CTL_SUBMIT_TIMEOUT_MS 3000

/* What the leader last heard from one broker (leader-local). */
typedef struct ns_ctl_live {
    char key[CTL_NAME_MAX + 24]; /* "brokerName/id" */
    char name[CTL_NAME_MAX + 1];
    int64_t id;
    char ha_addr[CTL_ADDR_MAX + 1]; /* "" until a heartbeat names it */
    double last_heard;              /* ev_now() */
    uint32_t timeout_ms;            /* its heartbeatTimeoutMills */
    bool timeout_heard;             /* timeout_ms is its own, not the default */
    uint64_t epoch;                 /* the epoch it says it holds */
    int64_t max_offset;
    bool warned;                    /* "no successor" logged; its next heartbeat clears it */
    UT_hash_handle hh;
} ns_ctl_live;

typedef struct ns_ctl ns_ctl;
typedef struct ns_ctl_job ns_ctl_job;

/* Runs on the loop thread once the job's command was submitted. */
typedef void (*ns_ctl_done_fn)(ns_ctl *sc, ns_ctl_job *job);

/* One command for the worker, and what to do with its outcome. */
struct ns_ctl_job {
    ns_ctl_job *next;
    ns_ctl *sc;
    ctl_cmd cmd;
    int rc;         /* ctl_node_submit's verdict */
    ctl_result res;
    ns_ctl_done_fn done;
    uint64_t conn_id; /* the request answered; 0 for the controller's own */
    int32_t opaque;
    bool oneway;
    int code;                          /* its request code */
    char cluster[CTL_NAME_MAX + 1];    /* ELECT_MASTER: for the answer */
    int64_t old_master;                /* automatic elections: for the log */
    char why[160];
};

struct ns_ctl {
    namesrv *ns;
    ctl_node *node;
    char self_id[CTL_ID_MAX + 1];
    char addr[CTL_ADDR_MAX + 1]; /* our remoting address, as announced */
    ev_timer tick;
    double last_scan;
    bool leader;          /* as of the last tick */
    bool announced;       /* our address is in the state for this term */
    int jobs_in_flight;   /* elections and announcements of the loop itself */
    ns_ctl_live *live;
    /* The worker and its queue. */
    pthread_t worker;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    ns_ctl_job *head, *tail;
    bool stopping;
};

/* ---- namesrv_ctl.c ---- */
int namesrv__ctl_start(namesrv *ns);
void namesrv__ctl_stop(namesrv *ns);
/* Hand job (malloc'ed, owned from here on) to the worker. */
void namesrv__ctl_submit(ns_ctl *sc, ns_ctl_job *job);
ns_ctl_job *namesrv__ctl_job_new(ns_ctl *sc, conn *c, const proto_cmd *req, ns_ctl_done_fn done);
/* The connection a job answers, NULL if gone (or none). */
conn *namesrv__ctl_job_conn(ns_ctl *sc, const ns_ctl_job *job);
/* The leader's remoting address as far as this node knows, "" if none. */
void namesrv__ctl_leader_addr(ns_ctl *sc, char id[CTL_ID_MAX + 1], char addr[CTL_ADDR_MAX + 1]);

/* ---- namesrv_ctl_live.c ---- */
ns_ctl_live *namesrv__ctl_live_get(ns_ctl *sc, const char *name, int64_t id, bool create);
bool namesrv__ctl_alive(ns_ctl *sc, const char *name, int64_t id);
/* The alive member of g's sync state set (not its master) to take over:
 * highest maxOffset, then lowest id; CTL_NO_BROKER if none. */
int64_t namesrv__ctl_successor(ns_ctl *sc, const ctl_group *g);
/* A new term: everyone registered counts as heard now. */
void namesrv__ctl_live_grace(ns_ctl *sc);
/* Elect where a master is missing or silent (leader, every scan). */
void namesrv__ctl_scan(ns_ctl *sc);
void namesrv__ctl_live_free(ns_ctl *sc);

/* ---- namesrv_ctl_answer.c ---- */
/* 2007 with the leader's address. */
void namesrv__ctl_reply_not_leader(ns_ctl *sc, conn *c, int32_t opaque, bool oneway);
/* The group's master, epochs, sync state set and registry, as extFields,
 * and the sync state set body (malloc'ed text into *body). */
void namesrv__ctl_put_state(ns_ctl *sc, proto_cmd *resp, const ctl_group *g, char **body);
/* {"syncStateSet":[..],"syncStateSetEpoch":N} */
char *namesrv__ctl_sync_json(const ctl_group *g);
/* upstream BrokerReplicasInfo.ReplicasInfo of one group. */
json_t *namesrv__ctl_replicas_info(ns_ctl *sc, const ctl_group *g);
/* Send resp (with body, which is freed) unless oneway; frees resp. */
void namesrv__ctl_send(conn *c, int32_t opaque, bool oneway, proto_cmd *resp, char *body);

/* ---- namesrv_ctl_requests.c ---- */
void namesrv__ctl_handlers(ns_ctl *sc, bool on);

#endif
