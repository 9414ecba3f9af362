/*
 * The controller's requests (upstream codes): brokers register, heartbeat
 * and report their sync state set; mqadmin reads metadata and replica
 * state and asks for planned elections. Whatever needs the raft leader is
 * answered by it only: a follower says RS_CONTROLLER_NOT_LEADER and where
 * the leader serves. Commands go to the worker; the reply follows when the
 * job comes back to the loop.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "errors.h"
#include "log.h"
#include "namesrv_ctl.h"

/* The raft group's name in GET_METADATA_INFO answers. */
#define NS_CTL_GROUP "lsmq-controller"

static void reply_code(conn *c, const proto_cmd *req, int32_t code, const char *remark)
{
    namesrv__ctl_send(c, req->opaque, proto_cmd_is_oneway(req),
                      proto_cmd_response(code, req->opaque, remark), NULL);
}

static bool leader_or_redirect(ns_ctl *sc, conn *c, const proto_cmd *req)
{
    if (ctl_node_is_leader(sc->node))
        return true;
    namesrv__ctl_reply_not_leader(sc, c, req->opaque, proto_cmd_is_oneway(req));
    return false;
}

/* A mandatory extField; absent: RS_CONTROLLER_INVALID_REQUEST. */
static const char *need(conn *c, const proto_cmd *req, const char *key)
{
    const char *v = proto_cmd_get(req, key);
    if (v && *v)
        return v;
    char remark[96];
    snprintf(remark, sizeof remark, "the field <%s> is missing", key);
    reply_code(c, req, RS_CONTROLLER_INVALID_REQUEST, remark);
    return NULL;
}

static bool need_id(conn *c, const proto_cmd *req, const char *key, int64_t *id)
{
    if (!need(c, req, key))
        return false;
    if (proto_cmd_get_i64(req, key, id) == 0 && *id >= 0)
        return true;
    char remark[96];
    snprintf(remark, sizeof remark, "the field <%s> is not a broker id", key);
    reply_code(c, req, RS_CONTROLLER_INVALID_REQUEST, remark);
    return false;
}

static bool registered(const ctl_group *g, int64_t id, const char **addr)
{
    for (size_t i = 0; i < g->n_brokers; i++) {
        if (g->brokers[i].id == id) {
            if (addr)
                *addr = g->brokers[i].addr;
            return true;
        }
    }
    return false;
}

static bool in_sync(const ctl_group *g, int64_t id)
{
    for (size_t i = 0; i < g->n_sync; i++)
        if (g->sync[i] == id)
            return true;
    return false;
}

/* A submit that did not reach the rules: not leader, timeout, stopping. 
 * Answered here; true when so. */
static bool answer_unsubmitted(ns_ctl *sc, conn *c, ns_ctl_job *job)
{
    if (job->rc == LSMQ_ENOTLEADER) {
        namesrv__ctl_reply_not_leader(sc, c, job->opaque, job->oneway);
        return true;
    }
    if (job->rc == LSMQ_ETIMEDOUT || job->rc == LSMQ_ECLOSED) {
        char remark[128];
        snprintf(remark, sizeof remark, "the controller did not commit in time (%s)",
                 lsmq_strerror(job->rc));
        namesrv__ctl_send(c, job->opaque, job->oneway,
                          proto_cmd_response(RS_SYSTEM_ERROR, job->opaque, remark), NULL);
        return true;
    }
    return false;
}

/* Heard from a broker now (register or heartbeat). */
static ns_ctl_live *heard(ns_ctl *sc, const proto_cmd *req, const char *name, int64_t id)
{
    ns_ctl_live *l = namesrv__ctl_live_get(sc, name, id, true);
    l->last_heard = ev_now(sc->ns->loop);
    l->warned = false;
    const char *ha = proto_cmd_get(req, "haServerAddr");
    if (ha && *ha)
        snprintf(l->ha_addr, sizeof l->ha_addr, "%s", ha);
    return l;
}

/* The state answer of REGISTER, HEARTBEAT and GET_REPLICA_INFO. */
static void reply_state(ns_ctl *sc, conn *c, int32_t opaque, bool oneway, const char *name)
{
    ctl_group g;
    if (ctl_node_query(sc->node, name, &g) != 0) {
        namesrv__ctl_send(c, opaque, oneway,
                          proto_cmd_response(RS_CONTROLLER_BROKER_METADATA_NOT_EXIST, opaque,
                                             "no such broker group"), NULL);
        return;
    }
    proto_cmd *resp = proto_cmd_response(RS_SUCCESS, opaque, NULL);
    char *body = NULL;
    namesrv__ctl_put_state(sc, resp, &g, &body);
    namesrv__ctl_send(c, opaque, oneway, resp, body);
}

/* ------------------------------------------------------------------ */
/* CONTROLLER_REGISTER_BROKER                                           */

static void register_done(ns_ctl *sc, ns_ctl_job *job)
{
    conn *c = namesrv__ctl_job_conn(sc, job);
    if (!c || answer_unsubmitted(sc, c, job))
        return;
    if (job->rc != 0) {
        char remark[160];
        snprintf(remark, sizeof remark, "registration refused: %s", lsmq_strerror(job->rc));
        namesrv__ctl_send(c, job->opaque, job->oneway,
                          proto_cmd_response(RS_CONTROLLER_INVALID_REQUEST, job->opaque, remark),
                          NULL);
        return;
    }
    reply_state(sc, c, job->opaque, job->oneway, job->cmd.name);
}

static void on_register(server *s, conn *c, proto_cmd *req, void *ctx)
{
    ns_ctl *sc = ctx;
    const char *name, *addr;
    int64_t id;
    if (!leader_or_redirect(sc, c, req) || !(name = need(c, req, "brokerName")) ||
        !need_id(c, req, "brokerId", &id) || !(addr = need(c, req, "brokerAddress")))
        return;
    ns_ctl_job *job = namesrv__ctl_job_new(sc, c, req, register_done);
    if (ctl_cmd_register(&job->cmd, name, id, addr) != 0) {
        free(job);
        reply_code(c, req, RS_CONTROLLER_INVALID_REQUEST, "brokerName or brokerAddress too long");
        return;
    }
    heard(sc, req, name, id);
    ctl_group g;
    const char *known;
    if (ctl_node_query(sc->node, name, &g) == 0 && registered(&g, id, &known) &&
        strcmp(known, addr) == 0) {
        free(job); /* nothing to replicate: the same broker again */
        reply_state(sc, c, req->opaque, proto_cmd_is_oneway(req), name);
        return;
    }
    namesrv__ctl_submit(sc, job);
}

/* ------------------------------------------------------------------ */
/* BROKER_HEARTBEAT: the leader's own table only                        */

static void on_heartbeat(server *s, conn *c, proto_cmd *req, void *ctx)
{
    ns_ctl *sc = ctx;
    const char *name;
    int64_t id;
    if (!leader_or_redirect(sc, c, req) || !(name = need(c, req, "brokerName")) ||
        !need_id(c, req, "brokerId", &id))
        return;
    ctl_group g;
    if (ctl_node_query(sc->node, name, &g) != 0 || !registered(&g, id, NULL)) {
        reply_code(c, req, RS_CONTROLLER_BROKER_NEED_TO_BE_REGISTERED,
                   "broker not registered with the controller");
        return;
    }
    ns_ctl_live *l = heard(sc, req, name, id);
    int64_t v;
    if (proto_cmd_get_i64(req, "epoch", &v) == 0 && v >= 0)
        l->epoch = (uint64_t)v;
    if (proto_cmd_get_i64(req, "maxOffset", &v) == 0)
        l->max_offset = v;
    if (proto_cmd_get_i64(req, "heartbeatTimeoutMills", &v) == 0 && v > 0 && v <= UINT32_MAX) {
        l->timeout_ms = (uint32_t)v;
        l->timeout_heard = true;
    }
    reply_state(sc, c, req->opaque, proto_cmd_is_oneway(req), name);
}

/* ------------------------------------------------------------------ */
/* CONTROLLER_ALTER_SYNC_STATE_SET                                      */

static void alter_done(ns_ctl *sc, ns_ctl_job *job)
{
    conn *c = namesrv__ctl_job_conn(sc, job);
    if (!c || answer_unsubmitted(sc, c, job))
        return;
    ctl_group g;
    if (job->rc == 0 && ctl_node_query(sc->node, job->cmd.name, &g) == 0) {
        proto_cmd *resp = proto_cmd_response(RS_SUCCESS, job->opaque, NULL);
        proto_cmd_set_i64(resp, "newSyncStateSetEpoch", (int64_t)g.sync_epoch);
        namesrv__ctl_send(c, job->opaque, job->oneway, resp, namesrv__ctl_sync_json(&g));
        return;
    }
    char remark[160];
    if (job->rc == LSMQ_ESTALE) {
        snprintf(remark, sizeof remark, "master epoch %" PRIu64 " is older than %" PRIu64,
                 job->cmd.epoch, job->res.epoch);
        namesrv__ctl_send(c, job->opaque, job->oneway,
                          proto_cmd_response(RS_CONTROLLER_FENCED_MASTER_EPOCH, job->opaque,
                                             remark), NULL);
        return;
    }
    snprintf(remark, sizeof remark, "sync state set refused (%s): only the current master, "
             "at its epoch, with registered brokers including itself", lsmq_strerror(job->rc));
    namesrv__ctl_send(c, job->opaque, job->oneway,
                      proto_cmd_response(RS_CONTROLLER_ALTER_SYNC_STATE_SET_FAILED, job->opaque,
                                         remark), NULL);
}

/* {"syncStateSet":[ids]} into ids; false when it is not that. */
static bool parse_sync_body(const proto_cmd *req, int64_t *ids, size_t *n)
{
    json_error_t err;
    json_t *root = req->body_len ? json_loadb((const char *)req->body, req->body_len, 0, &err)
                                 : NULL;
    json_t *set = json_object_get(root, "syncStateSet");
    bool ok = json_is_array(set) && json_array_size(set) <= CTL_BROKERS_MAX;
    size_t i;
    json_t *v;
    *n = 0;
    json_array_foreach(ok ? set : NULL, i, v) {
        if (!json_is_integer(v)) {
            ok = false;
            break;
        }
        ids[(*n)++] = json_integer_value(v);
    }
    json_decref(root);
    return ok;
}

static void on_alter(server *s, conn *c, proto_cmd *req, void *ctx)
{
    ns_ctl *sc = ctx;
    const char *name;
    int64_t master, epoch;
    if (!leader_or_redirect(sc, c, req) || !(name = need(c, req, "brokerName")) ||
        !need_id(c, req, "masterBrokerId", &master) || !need_id(c, req, "masterEpoch", &epoch))
        return;
    int64_t ids[CTL_BROKERS_MAX];
    size_t n;
    if (!parse_sync_body(req, ids, &n)) {
        reply_code(c, req, RS_CONTROLLER_INVALID_REQUEST,
                   "the body is not {\"syncStateSet\":[ids],...}");
        return;
    }
    ns_ctl_job *job = namesrv__ctl_job_new(sc, c, req, alter_done);
    if (ctl_cmd_alter_sync(&job->cmd, name, master, (uint64_t)epoch, ids, n) != 0) {
        free(job);
        reply_code(c, req, RS_CONTROLLER_INVALID_REQUEST, "brokerName too long");
        return;
    }
    namesrv__ctl_submit(sc, job);
}

/* ------------------------------------------------------------------ */
/* CONTROLLER_ELECT_MASTER: a planned switch-over                       */

static void reply_elect_failed(conn *c, int32_t opaque, bool oneway, const char *remark)
{
    namesrv__ctl_send(c, opaque, oneway,
                      proto_cmd_response(RS_CONTROLLER_ELECT_MASTER_FAILED, opaque, remark), NULL);
}

static void elect_done(ns_ctl *sc, ns_ctl_job *job)
{
    conn *c = namesrv__ctl_job_conn(sc, job);
    if (job->rc == 0)
        proto_log(PROTO_LOG_WARN, "controller: %s: elected broker %" PRId64 " master at epoch %"
                  PRIu64 ", replacing %" PRId64 ": asked by an admin", job->cmd.name,
                  job->res.master_id, job->res.epoch, job->old_master);
    if (!c || answer_unsubmitted(sc, c, job))
        return;
    ctl_group g;
    if (job->rc != 0 || ctl_node_query(sc->node, job->cmd.name, &g) != 0) {
        char remark[160];
        snprintf(remark, sizeof remark, "election refused: %s",
                 job->rc == LSMQ_ESTALE ? "the group's epoch moved meanwhile"
                                        : lsmq_strerror(job->rc));
        reply_elect_failed(c, job->opaque, job->oneway, remark);
        return;
    }
    proto_cmd *resp = proto_cmd_response(RS_SUCCESS, job->opaque, NULL);
    proto_cmd_set_i64(resp, "masterBrokerId", g.master_id);
    proto_cmd_set(resp, "masterAddress", g.master_addr);
    proto_cmd_set_i64(resp, "masterEpoch", (int64_t)g.epoch);
    proto_cmd_set_i64(resp, "syncStateSetEpoch", (int64_t)g.sync_epoch);
    /* upstream BrokerMemberGroup: the group's brokers by id. */
    json_t *addrs = json_object();
    for (size_t i = 0; i < g.n_brokers; i++) {
        char key[24];
        snprintf(key, sizeof key, "%" PRId64, g.brokers[i].id);
        json_object_set_new(addrs, key, json_string(g.brokers[i].addr));
    }
    json_t *body = json_pack("{s:s,s:s,s:o}", "cluster", job->cluster, "brokerName", g.name,
                             "brokerAddrs", addrs);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        proto_oom(0);
    namesrv__ctl_send(c, job->opaque, job->oneway, resp, text);
}

static void on_elect(server *s, conn *c, proto_cmd *req, void *ctx)
{
    ns_ctl *sc = ctx;
    const char *name, *cluster;
    if (!leader_or_redirect(sc, c, req) || !(cluster = need(c, req, "clusterName")) ||
        !(name = need(c, req, "brokerName")))
        return;
    int64_t id = CTL_NO_BROKER;
    if (proto_cmd_get(req, "brokerId") && proto_cmd_get_i64(req, "brokerId", &id) != 0) {
        reply_code(c, req, RS_CONTROLLER_INVALID_REQUEST, "brokerId is not a number");
        return;
    }
    bool oneway = proto_cmd_is_oneway(req);
    ctl_group g;
    char remark[160] = "";
    if (ctl_node_query(sc->node, name, &g) != 0) {
        snprintf(remark, sizeof remark, "no broker group %s", name);
        reply_elect_failed(c, req->opaque, oneway, remark);
        return;
    }
    if (id < 0) {
        id = namesrv__ctl_successor(sc, &g);
        if (id == CTL_NO_BROKER) {
            reply_elect_failed(c, req->opaque, oneway,
                               "no alive member of the sync state set to elect");
            return;
        }
    } else if (!registered(&g, id, NULL)) {
        snprintf(remark, sizeof remark, "broker %" PRId64 " is not registered in %s", id, name);
    } else if (!in_sync(&g, id)) {
        snprintf(remark, sizeof remark, "broker %" PRId64 " is not in the sync state set of %s",
                 id, name);
    } else if (!namesrv__ctl_alive(sc, name, id)) {
        snprintf(remark, sizeof remark, "broker %" PRId64 " is not alive", id);
    }
    if (remark[0]) {
        reply_elect_failed(c, req->opaque, oneway, remark);
        return;
    }
    ns_ctl_job *job = namesrv__ctl_job_new(sc, c, req, elect_done);
    ctl_cmd_elect_at(&job->cmd, name, id, g.epoch);
    job->old_master = g.master_id;
    snprintf(job->cluster, sizeof job->cluster, "%s", cluster);
    namesrv__ctl_submit(sc, job);
}

/* ------------------------------------------------------------------ */
/* Reads                                                                */

static void on_get_replica_info(server *s, conn *c, proto_cmd *req, void *ctx)
{
    ns_ctl *sc = ctx;
    const char *name;
    if (!leader_or_redirect(sc, c, req) || !(name = need(c, req, "brokerName")))
        return;
    reply_state(sc, c, req->opaque, proto_cmd_is_oneway(req), name);
}

static void on_get_metadata(server *s, conn *c, proto_cmd *req, void *ctx)
{
    ns_ctl *sc = ctx;
    char id[CTL_ID_MAX + 1], addr[CTL_ADDR_MAX + 1];
    namesrv__ctl_leader_addr(sc, id, addr);
    proto_cmd *resp = proto_cmd_response(RS_SUCCESS, req->opaque, NULL);
    proto_cmd_set(resp, "group", NS_CTL_GROUP);
    if (id[0])
        proto_cmd_set(resp, "controllerLeaderId", id);
    if (addr[0])
        proto_cmd_set(resp, "controllerLeaderAddress", addr);
    proto_cmd_set_bool(resp, "isLeader", ctl_node_is_leader(sc->node));
    proto_cmd_set(resp, "peers", sc->ns->cfg.controller_peers);
    namesrv__ctl_send(c, req->opaque, proto_cmd_is_oneway(req), resp, NULL);
}

/* Body: a JSON list of brokerNames; answer upstream's BrokerReplicasInfo. */
static void on_get_sync_state_data(server *s, conn *c, proto_cmd *req, void *ctx)
{
    ns_ctl *sc = ctx;
    if (!leader_or_redirect(sc, c, req))
        return;
    json_error_t err;
    json_t *names = req->body_len
                        ? json_loadb((const char *)req->body, req->body_len, 0, &err)
                        : NULL;
    if (!json_is_array(names)) {
        json_decref(names);
        reply_code(c, req, RS_CONTROLLER_INVALID_REQUEST, "the body is not a list of brokerNames");
        return;
    }
    json_t *table = json_object();
    size_t i;
    json_t *v;
    json_array_foreach(names, i, v) {
        ctl_group g;
        if (json_is_string(v) && ctl_node_query(sc->node, json_string_value(v), &g) == 0)
            json_object_set_new(table, g.name, namesrv__ctl_replicas_info(sc, &g));
    }
    json_decref(names);
    json_t *body = json_pack("{s:o}", "replicasInfoTable", table);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        proto_oom(0);
    namesrv__ctl_send(c, req->opaque, proto_cmd_is_oneway(req),
                      proto_cmd_response(RS_SUCCESS, req->opaque, NULL), text);
}

void namesrv__ctl_handlers(ns_ctl *sc, bool on)
{
    server *s = sc->ns->srv;
    void *ctx = on ? sc : NULL;
    server_register(s, RC_CONTROLLER_REGISTER_BROKER, on ? on_register : NULL, ctx);
    server_register(s, RC_BROKER_HEARTBEAT, on ? on_heartbeat : NULL, ctx);
    server_register(s, RC_CONTROLLER_ALTER_SYNC_STATE_SET, on ? on_alter : NULL, ctx);
    server_register(s, RC_CONTROLLER_ELECT_MASTER, on ? on_elect : NULL, ctx);
    server_register(s, RC_CONTROLLER_GET_REPLICA_INFO, on ? on_get_replica_info : NULL, ctx);
    server_register(s, RC_CONTROLLER_GET_METADATA_INFO, on ? on_get_metadata : NULL, ctx);
    server_register(s, RC_CONTROLLER_GET_SYNC_STATE_DATA, on ? on_get_sync_state_data : NULL,
                    ctx);
}
