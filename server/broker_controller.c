/*
 * Controller mode (enableControllerMode=true): the agent between a broker
 * and the controllers, which decide who is the master of the broker group.
 *
 * The agent owns the broker object. It registers with the controller
 * leader (CONTROLLER_REGISTER_BROKER) and then heartbeats every
 * brokerHeartbeatInterval (BROKER_HEARTBEAT); every answer names the
 * group's master, its epoch, its HA address, the sync state set and the
 * registry, and the agent makes the broker what the answer says:
 *
 *   - this broker is the master in a newer epoch: the broker is built
 *     again as the master (brokerId 0 at the name servers) in that epoch;
 *   - another broker is: a master is built again as a replica of it (its
 *     store finds its place in the new master's log, or is made again from
 *     a checkpoint), a replica follows it;
 *   - building again is broker_destroy + broker_create on the same server:
 *     clients keep their connections, requests in flight are dropped or
 *     answered as at shutdown.
 *
 * Lease. A master takes sends only while a heartbeat it sent less than
 * controllerHeartBeatTimeoutMills - brokerHeartbeatInterval ago was
 * answered: the controller elects another master only after hearing
 * nothing for the whole timeout, so the old one has stopped by then.
 *
 * The sync state set (broker_sync_set.h): a SYNC send waits for every
 * member; the master proposes members in and out as they catch up or fall
 * behind (CONTROLLER_ALTER_SYNC_STATE_SET, one at a time).
 *
 * After an election the leader also pushes the answer's fields to the
 * brokers of the group on their connections (NOTIFY_BROKER_ROLE_CHANGED),
 * so a switch-over does not wait for the next heartbeat.
 *
 * The controllers are tried in turn: a follower answers
 * CONTROLLER_NOT_LEADER (with the leader's address when it knows it) and
 * the next request goes to the leader, or to the next address.
 *
 * Threads: the broker's loop.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alloc.h"
#include "broker.h"
#include "broker_sync_set.h"
#include "clock.h"
#include "codes.h"
#include "conn.h"
#include "log.h"
#include "remoting.h"
#include "transport.h"

#define CONNECT_TIMEOUT_MS 1000
#define ADDR_MAX 256

typedef struct ctl_peer {
    char addr[ADDR_MAX];
    proto_conn *pc;
    transport_ev io;
} ctl_peer;

struct broker_controller {
    broker_config cfg;          /* as configured */
    server *srv;
    struct ev_loop *loop;
    transport_flusher *flusher;
    char self_addr[96];
    char ha_addr[96];
    broker *b;                  /* NULL while none could be built */
    bool master;                /* what b was built as */
    uint64_t epoch;             /* the epoch b serves in */
    char master_ha[ADDR_MAX];   /* a replica's master, as followed */
    ctl_peer *peers;
    size_t n_peers, current;
    bool registered;
    bool in_flight;             /* a register or heartbeat */
    bool altering;              /* an ALTER_SYNC_STATE_SET */
    int64_t lease_until_ms;     /* monotonic; a master's sends stop after it */
    bool fenced;
    bool warned_unreachable;
    bool stopping;
    ev_timer tick;
    ev_timer lease_timer;       /* fires when the lease lapses */
    broker_sync_set sss;
};

/* ==== Links to the controllers ============================================ */

static void peer_end_cb(transport_ev *a, int err, const char *why, void *arg)
{
    ctl_peer *p = arg;
    transport_ev_close(&p->io);
    proto_conn_fail_all(p->pc, err ? err : -ECONNRESET, why);
}

static void peer_forget(ctl_peer *p)
{
    transport_ev_discard(&p->io, &p->pc);
}

static void role_from_answer(broker_controller *bc, const proto_cmd *ans);

/* NOTIFY_BROKER_ROLE_CHANGED, pushed by the leader after an election: act on it at once. */
static void notify_cb(proto_conn *c, proto_cmd *req, void *arg)
{
    broker_controller *bc = arg;
    if (req->code == RC_NOTIFY_BROKER_ROLE_CHANGED && !bc->stopping)
        role_from_answer(bc, req);
}

static proto_conn *peer_conn(broker_controller *bc, ctl_peer *p)
{
    char why[256];
    if (p->pc && proto_conn_state(p->pc) == PROTO_CONN_CLOSED)
        peer_forget(p);
    if (p->pc)
        return p->pc;
    proto_conn_options o = {.name = p->addr, .connecting = 1};
    proto_conn *pc = proto_conn_create(&o);
    proto_conn_set_request_cb(pc, notify_cb, bc);
    if (transport_ev_connect(&p->io, pc, bc->loop, bc->flusher, p->addr, CONNECT_TIMEOUT_MS,
                             peer_end_cb, p, why, sizeof why) != 0) {
        proto_conn_free(pc);
        return NULL;
    }
    p->pc = pc;
    return pc;
}

/* The next controller to ask: the leader it named, else the next address. */
static void next_peer(broker_controller *bc, const char *leader)
{
    for (size_t i = 0; leader && *leader && i < bc->n_peers; i++) {
        if (strcmp(bc->peers[i].addr, leader) == 0) {
            bc->current = i;
            return;
        }
    }
    bc->current = (bc->current + 1) % bc->n_peers;
}

typedef void ctl_answer_fn(broker_controller *bc, proto_reply *reply);

typedef struct ctl_call {
    broker_controller *bc;
    ctl_answer_fn *fn;
    int64_t sent_ms;
    int code;
    size_t peer;                /* the controller it went to */
} ctl_call;

static void call_done(broker_controller *bc, int code);
static void check_lease(broker_controller *bc);

/* A heartbeat sent at sent_ms was answered: the lease runs until the timeout less one interval. */
static void renew_lease(broker_controller *bc, int64_t sent_ms)
{
    bc->lease_until_ms = sent_ms + (int64_t)bc->cfg.controller_heartbeat_timeout_ms -
                         (int64_t)bc->cfg.broker_heartbeat_interval_ms;
    double in = (double)(bc->lease_until_ms - proto_mono_ms()) / 1000.0;
    ev_timer_stop(bc->loop, &bc->lease_timer);
    ev_timer_set(&bc->lease_timer, in > 0 ? in : 0., 0.);
    ev_timer_start(bc->loop, &bc->lease_timer);
    check_lease(bc);
}

static void call_cb(int rc, proto_reply *reply, const char *why, void *arg)
{
    ctl_call *call = arg;
    broker_controller *bc = call->bc;
    int64_t sent = call->sent_ms;
    int code = call->code;
    size_t peer = call->peer;
    ctl_answer_fn *fn = call->fn;
    free(call);
    if (bc->stopping) {
        proto_reply_free(reply);
        return;
    }
    if (rc != 0) {
        ctl_peer *p = &bc->peers[peer];
        if (!bc->warned_unreachable)
            proto_log(PROTO_LOG_WARN, "broker: controller %s: %s", p->addr,
                      why ? why : lsmq_strerror(rc));
        bc->warned_unreachable = true;
        if (p->pc && proto_conn_state(p->pc) != PROTO_CONN_CLOSED)
            peer_end_cb(&p->io, rc, why, p); /* not to be trusted; forgotten at the next use */
        if (bc->current == peer) /* else another answer moved on already */
            next_peer(bc, NULL);
    } else if (reply->cmd->code == RS_CONTROLLER_NOT_LEADER) {
        if (bc->current == peer)
            next_peer(bc, proto_cmd_get(reply->cmd, "controllerLeaderAddress"));
    } else if (reply->cmd->code == RS_CONTROLLER_BROKER_NEED_TO_BE_REGISTERED) {
        bc->registered = false;
    } else if (reply->cmd->code != RS_SUCCESS) {
        proto_log(PROTO_LOG_WARN, "broker: controller %s refused request %d: code %d %s",
                  bc->peers[peer].addr, code, (int)reply->cmd->code,
                  reply->cmd->remark ? reply->cmd->remark : "");
    } else {
        bc->warned_unreachable = false;
        if (code != RC_CONTROLLER_ALTER_SYNC_STATE_SET)
            renew_lease(bc, sent);
        fn(bc, reply);
    }
    proto_reply_free(reply);
    call_done(bc, code);
}

/* Send a request to the current controller; false when it could not be sent. */
static bool call(broker_controller *bc, proto_cmd *req, const void *body, size_t len,
                 ctl_answer_fn *fn)
{
    ctl_peer *p = &bc->peers[bc->current];
    proto_conn *pc = peer_conn(bc, p);
    if (!pc) {
        next_peer(bc, NULL);
        proto_cmd_free(req);
        return false;
    }
    ctl_call *c = proto_xcalloc(1, sizeof *c);
    *c = (ctl_call){bc, fn, proto_mono_ms(), req->code, bc->current};
    int64_t wait = (int64_t)bc->cfg.broker_heartbeat_interval_ms * 2 + CONNECT_TIMEOUT_MS;
    int rc = proto_conn_request(pc, req, body, len, proto_mono_ms() + wait, call_cb, c);
    proto_cmd_free(req);
    if (rc != 0) { /* call_cb will not run */
        free(c);
        next_peer(bc, NULL);
    }
    return rc == 0;
}

/* ==== Roles =============================================================== */

static void build(broker_controller *bc, bool master, uint64_t epoch, const char *master_ha)
{
    broker_config cfg = bc->cfg;
    cfg.controller_epoch = epoch;
    if (master) {
        cfg.broker_id = 0;
    } else {
        cfg.role = BROKER_SLAVE;
        snprintf(cfg.ha_master_address, sizeof cfg.ha_master_address, "%s",
                 master_ha ? master_ha : "");
    }
    if (bc->b) {
        broker_destroy(bc->b);
        bc->b = NULL;
        server_clear_handlers(bc->srv);
    }
    char err[1024] = "";
    if (broker_create(&cfg, bc->srv, &bc->b, err, sizeof err) != 0) {
        proto_log(PROTO_LOG_ERROR, "broker: cannot run as %s in epoch %" PRIu64 ": %s",
                  master ? "master" : "replica", epoch, err);
        bc->b = NULL;
        return;
    }
    bc->master = master;
    bc->epoch = epoch;
    snprintf(bc->master_ha, sizeof bc->master_ha, "%s", master_ha ? master_ha : "");
    bc->fenced = false;
    if (master) {
        broker_sync_set_init(&bc->sss, bc->cfg.broker_id, bc->cfg.ha_max_time_slave_not_catchup_ms);
        broker_set_ack_set(bc->b, NULL, 0);
    }
}

/* A master's ack set follows its sync state set (candidates and proposals included). */
static void apply_ack_set(broker_controller *bc)
{
    const char *addrs[SSS_MAX];
    size_t n = broker_sync_set_ack_addrs(&bc->sss, addrs, SSS_MAX);
    broker_set_ack_set(bc->b, addrs, n);
    broker_replica_state *reps = NULL;
    size_t n_reps = 0;
    uint64_t last = 0;
    if (broker_replicas(bc->b, &reps, &n_reps, &last) == 0)
        broker_sync_set_arm(&bc->sss, last); /* read after the ack set took the candidates in */
    free(reps);
}

static void role_from_answer(broker_controller *bc, const proto_cmd *ans)
{
    int64_t master_id = -1, epoch = 0;
    if (proto_cmd_get_i64(ans, "masterBrokerId", &master_id) != 0)
        master_id = -1;
    if (proto_cmd_get_i64(ans, "masterEpoch", &epoch) != 0)
        epoch = 0;
    const char *master_ha = proto_cmd_get(ans, "masterHaAddress");
    if (master_id < 0)
        return; /* no master yet: stay as we are (a replica answers no sends) */
    if (epoch < (int64_t)bc->epoch)
        return; /* older than what we serve: a late answer */
    if (master_id == bc->cfg.broker_id) {
        if (!bc->b || !bc->master || (uint64_t)epoch != bc->epoch) {
            proto_log(PROTO_LOG_INFO, "broker: %s id %" PRId64 " is the master in epoch %" PRId64,
                      bc->cfg.broker_name, bc->cfg.broker_id, epoch);
            build(bc, true, (uint64_t)epoch, NULL);
        }
        if (bc->b && bc->master) {
            broker_sync_set_registry(&bc->sss, proto_cmd_get(ans, "brokers"));
            broker_sync_set_committed(&bc->sss, proto_cmd_get(ans, "syncStateSet"),
                                      proto_mono_ms());
            apply_ack_set(bc);
        }
        return;
    }
    if (!master_ha || !*master_ha)
        return; /* its HA address is not known yet: ask again next tick */
    if (!bc->b || bc->master) {
        proto_log(PROTO_LOG_INFO, "broker: %s id %" PRId64 " is a replica of %s (epoch %" PRId64
                                  ")",
                  bc->cfg.broker_name, bc->cfg.broker_id, master_ha, epoch);
        build(bc, false, (uint64_t)epoch, master_ha);
    } else if (strcmp(bc->master_ha, master_ha) != 0 || (uint64_t)epoch != bc->epoch) {
        proto_log(PROTO_LOG_INFO, "broker: %s id %" PRId64 " follows %s (epoch %" PRId64 ")",
                  bc->cfg.broker_name, bc->cfg.broker_id, master_ha, epoch);
        broker_follow(bc->b, master_ha, (uint64_t)epoch);
        snprintf(bc->master_ha, sizeof bc->master_ha, "%s", master_ha);
        bc->epoch = (uint64_t)epoch;
    }
}

static void registered_cb(broker_controller *bc, proto_reply *reply)
{
    if (!bc->registered)
        proto_log(PROTO_LOG_INFO, "broker: registered with controller %s",
                  bc->peers[bc->current].addr);
    bc->registered = true;
    role_from_answer(bc, reply->cmd);
}

static void altered_cb(broker_controller *bc, proto_reply *reply)
{
    const char *set = proto_cmd_get(reply->cmd, "syncStateSet");
    char text[256] = "";
    if (reply->cmd->body_len && reply->cmd->body_len < sizeof text) {
        /* The body is {"syncStateSet":[..], ...}: prefer it to the header. */
        json_t *root = json_loadb((const char *)reply->cmd->body, reply->cmd->body_len, 0, NULL);
        json_t *arr = json_object_get(root, "syncStateSet");
        size_t i, len = 0;
        json_t *v;
        json_array_foreach(arr, i, v)
            len += (size_t)snprintf(text + len, sizeof text - len, "%s%" JSON_INTEGER_FORMAT,
                                    i ? "," : "", json_integer_value(v));
        json_decref(root);
        if (len)
            set = text;
    }
    if (set && bc->b && bc->master) {
        proto_log(PROTO_LOG_INFO, "broker: sync state set of %s is now {%s}", bc->cfg.broker_name,
                  set);
        broker_sync_set_committed(&bc->sss, set, proto_mono_ms());
    }
}

static void call_done(broker_controller *bc, int code)
{
    if (code == RC_CONTROLLER_ALTER_SYNC_STATE_SET) {
        bc->altering = false;
        broker_sync_set_proposal_done(&bc->sss);
        if (bc->b && bc->master)
            apply_ack_set(bc);
    } else {
        bc->in_flight = false;
    }
}

/* ==== The tick ============================================================ */

static proto_cmd *group_request(broker_controller *bc, int code)
{
    proto_cmd *req = proto_cmd_request(code);
    proto_cmd_set(req, "clusterName", bc->cfg.broker_cluster_name);
    proto_cmd_set(req, "brokerName", bc->cfg.broker_name);
    proto_cmd_set_i64(req, "brokerId", bc->cfg.broker_id);
    proto_cmd_set(req, "haServerAddr", bc->ha_addr);
    proto_cmd_set_i64(req, "invokeTime", proto_wall_ms());
    return req;
}

static void send_heartbeat(broker_controller *bc)
{
    proto_cmd *req;
    if (!bc->registered) {
        req = group_request(bc, RC_CONTROLLER_REGISTER_BROKER);
        proto_cmd_set(req, "brokerAddress", bc->self_addr);
    } else {
        req = group_request(bc, RC_BROKER_HEARTBEAT);
        proto_cmd_set(req, "brokerAddr", bc->self_addr);
        proto_cmd_set_i64(req, "epoch", (int64_t)bc->epoch);
        uint64_t pos = bc->b ? broker_position(bc->b) : 0;
        proto_cmd_set_i64(req, "maxOffset", (int64_t)pos);
        proto_cmd_set_i64(req, "confirmOffset", (int64_t)pos);
        proto_cmd_set_i64(req, "heartbeatTimeoutMills", bc->cfg.controller_heartbeat_timeout_ms);
    }
    bc->in_flight = call(bc, req, NULL, 0, registered_cb);
}

static void propose_sync_set(broker_controller *bc, const int64_t *ids, size_t n)
{
    char text[256];
    broker_sync_set_format(ids, n, text, sizeof text);
    proto_log(PROTO_LOG_INFO, "broker: proposing sync state set {%s} for %s", text,
              bc->cfg.broker_name);
    apply_ack_set(bc); /* the proposal's members count before the controller decides */
    proto_cmd *req = proto_cmd_request(RC_CONTROLLER_ALTER_SYNC_STATE_SET);
    proto_cmd_set(req, "brokerName", bc->cfg.broker_name);
    proto_cmd_set_i64(req, "masterBrokerId", bc->cfg.broker_id);
    proto_cmd_set_i64(req, "masterEpoch", (int64_t)bc->epoch);
    proto_cmd_set_i64(req, "invokeTime", proto_wall_ms());
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, json_integer(ids[i]));
    json_t *root = json_pack("{s:o,s:I}", "syncStateSet", arr, "syncStateSetEpoch",
                             (json_int_t)bc->epoch);
    char *body = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    bc->altering = call(bc, req, body, strlen(body), altered_cb);
    if (!bc->altering) {
        broker_sync_set_proposal_done(&bc->sss);
        apply_ack_set(bc);
    }
    free(body);
}

static void review_sync_set(broker_controller *bc)
{
    broker_replica_state *reps = NULL;
    size_t n = 0;
    uint64_t last = 0;
    if (broker_replicas(bc->b, &reps, &n, &last) != 0)
        return;
    int64_t proposal[SSS_MAX];
    size_t n_prop = 0;
    bool change =
        broker_sync_set_review(&bc->sss, reps, n, last, proto_mono_ms(), proposal, &n_prop);
    free(reps);
    apply_ack_set(bc); /* new candidates wait for sends from now on */
    if (change && !bc->altering)
        propose_sync_set(bc, proposal, n_prop);
}

static void check_lease(broker_controller *bc)
{
    if (!bc->b || !bc->master)
        return;
    bool lapsed = proto_mono_ms() >= bc->lease_until_ms;
    if (lapsed != bc->fenced) {
        proto_log(lapsed ? PROTO_LOG_WARN : PROTO_LOG_INFO,
                  lapsed ? "broker: master %s lost its controller lease: sends are refused"
                         : "broker: master %s has its controller lease again: sends are taken",
                  bc->cfg.broker_name);
        bc->fenced = lapsed;
        broker_set_fenced(bc->b, lapsed);
    }
}

static void lease_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    check_lease(t->data);
}

static void tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    broker_controller *bc = t->data;
    check_lease(bc);
    if (!bc->in_flight)
        send_heartbeat(bc);
    if (bc->b && bc->master && bc->registered && !bc->fenced)
        review_sync_set(bc);
}

/* ==== Start and stop ====================================================== */

static size_t parse_peers(broker_controller *bc, const char *list)
{
    char *copy = proto_xstrdup(list), *save = NULL;
    for (char *tok = strtok_r(copy, ";, ", &save); tok; tok = strtok_r(NULL, ";, ", &save)) {
        bc->peers = proto_xrealloc(bc->peers, (bc->n_peers + 1) * sizeof *bc->peers);
        ctl_peer *p = &bc->peers[bc->n_peers++];
        memset(p, 0, sizeof *p);
        snprintf(p->addr, sizeof p->addr, "%s", tok);
    }
    free(copy);
    return bc->n_peers;
}

int broker_controller_start(const broker_config *cfg, server *srv, broker_controller **out,
                            char *errbuf, size_t errlen)
{
    int rc = broker_config_check_controller_mode(cfg, errbuf, errlen);
    if (rc != 0)
        return rc;
    broker_controller *bc = proto_xcalloc(1, sizeof *bc);
    bc->cfg = *cfg;
    bc->srv = srv;
    bc->loop = server_loop(srv);
    bc->flusher = server_flusher(srv);
    snprintf(bc->self_addr, sizeof bc->self_addr, "%s:%d", cfg->broker_ip1, cfg->listen_port);
    snprintf(bc->ha_addr, sizeof bc->ha_addr, "%s:%d", cfg->broker_ip1,
             broker_config_ha_port(cfg));
    if (parse_peers(bc, cfg->controller_addr) == 0) {
        snprintf(errbuf, errlen, "controllerAddr '%s' names no controller", cfg->controller_addr);
        free(bc);
        return LSMQ_EINVAL;
    }
    /* Until a controller names a master, a replica that takes no sends. */
    broker_config first = *cfg;
    first.role = BROKER_SLAVE;
    rc = broker_create(&first, srv, &bc->b, errbuf, errlen);
    if (rc != 0) {
        free(bc->peers);
        free(bc);
        return rc;
    }
    ev_timer_init(&bc->tick, tick_cb, 0., (double)cfg->broker_heartbeat_interval_ms / 1000.0);
    bc->tick.data = bc;
    ev_timer_start(bc->loop, &bc->tick);
    ev_init(&bc->lease_timer, lease_timer_cb);
    bc->lease_timer.data = bc;
    *out = bc;
    return 0;
}

void broker_controller_stop(broker_controller *bc)
{
    if (!bc)
        return;
    bc->stopping = true;
    ev_timer_stop(bc->loop, &bc->tick);
    ev_timer_stop(bc->loop, &bc->lease_timer);
    for (size_t i = 0; i < bc->n_peers; i++)
        peer_forget(&bc->peers[i]); /* calls in flight end here, while bc is alive */
    broker_destroy(bc->b);
    free(bc->peers);
    free(bc);
}
