/*
 * What the controller answers with: the group's state as extFields and
 * bodies (upstream's SyncStateSet and BrokerReplicasInfo JSON shapes), and
 * the "not the leader" answer that names where the leader is.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "namesrv_ctl.h"

void namesrv__ctl_send(conn *c, int32_t opaque, bool oneway, proto_cmd *resp, char *body)
{
    if (c && !oneway)
        server_conn_reply(c, opaque, resp, body, body ? strlen(body) : 0);
    else
        proto_cmd_free(resp);
    free(body);
}

void namesrv__ctl_reply_not_leader(ns_ctl *sc, conn *c, int32_t opaque, bool oneway)
{
    char id[CTL_ID_MAX + 1], addr[CTL_ADDR_MAX + 1];
    namesrv__ctl_leader_addr(sc, id, addr);
    proto_cmd *resp = proto_cmd_response(RS_CONTROLLER_NOT_LEADER, opaque,
                                         "not the controller leader");
    if (addr[0])
        proto_cmd_set(resp, "controllerLeaderAddress", addr);
    namesrv__ctl_send(c, opaque, oneway, resp, NULL);
}

static char *json_text(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s)
        proto_oom(0);
    return s;
}

static json_t *sync_array(const ctl_group *g)
{
    json_t *a = json_array();
    for (size_t i = 0; i < g->n_sync; i++)
        json_array_append_new(a, json_integer(g->sync[i]));
    return a;
}

char *namesrv__ctl_sync_json(const ctl_group *g)
{
    return json_text(json_pack("{s:o,s:I}", "syncStateSet", sync_array(g), "syncStateSetEpoch",
                               (json_int_t)g->sync_epoch));
}

void namesrv__ctl_put_state(ns_ctl *sc, proto_cmd *resp, const ctl_group *g, char **body)
{
    if (g->master_id != CTL_NO_BROKER) {
        proto_cmd_set_i64(resp, "masterBrokerId", g->master_id);
        proto_cmd_set(resp, "masterAddress", g->master_addr);
        ns_ctl_live *m = namesrv__ctl_live_get(sc, g->name, g->master_id, false);
        if (m && m->ha_addr[0])
            proto_cmd_set(resp, "masterHaAddress", m->ha_addr);
    }
    proto_cmd_set_i64(resp, "masterEpoch", (int64_t)g->epoch);
    proto_cmd_set_i64(resp, "syncStateSetEpoch", (int64_t)g->sync_epoch);
    proto_buf ids = {0}, brokers = {0};
    for (size_t i = 0; i < g->n_sync; i++) {
        char one[24];
        snprintf(one, sizeof one, "%s%" PRId64, i ? "," : "", g->sync[i]);
        proto_buf_put(&ids, one, strlen(one));
    }
    for (size_t i = 0; i < g->n_brokers; i++) {
        char one[CTL_ADDR_MAX + 32];
        snprintf(one, sizeof one, "%s%" PRId64 "=%s", i ? "," : "", g->brokers[i].id,
                 g->brokers[i].addr);
        proto_buf_put(&brokers, one, strlen(one));
    }
    proto_buf_put(&ids, "", 1);
    proto_buf_put(&brokers, "", 1);
    proto_cmd_set(resp, "syncStateSet", ids.p);
    proto_cmd_set(resp, "brokers", brokers.p);
    proto_buf_free(&ids);
    proto_buf_free(&brokers);
    if (body)
        *body = namesrv__ctl_sync_json(g);
}

static json_t *replica(ns_ctl *sc, const ctl_group *g, const ctl_broker *b)
{
    return json_pack("{s:s,s:I,s:s,s:b}", "brokerName", g->name, "brokerId", (json_int_t)b->id,
                     "brokerAddress", b->addr, "alive", namesrv__ctl_alive(sc, g->name, b->id));
}

json_t *namesrv__ctl_replicas_info(ns_ctl *sc, const ctl_group *g)
{
    json_t *in = json_array(), *out = json_array();
    for (size_t i = 0; i < g->n_brokers; i++) {
        bool member = false;
        for (size_t k = 0; k < g->n_sync; k++)
            member |= g->sync[k] == g->brokers[i].id;
        json_array_append_new(member ? in : out, replica(sc, g, &g->brokers[i]));
    }
    json_t *info = json_pack("{s:s,s:i,s:I,s:o,s:o}", "masterAddress", g->master_addr,
                             "masterEpoch", (int)g->epoch, "syncStateSetEpoch",
                             (json_int_t)g->sync_epoch, "inSyncReplicas", in,
                             "notInSyncReplicas", out);
    if (g->master_id != CTL_NO_BROKER)
        json_object_set_new(info, "masterBrokerId", json_integer(g->master_id));
    return info;
}
