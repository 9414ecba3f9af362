/*
 * The controller's admin requests: its metadata (any controller answers),
 * and, from the leader it names, the groups' sync state sets and planned
 * elections. Like upstream's admin, the leader is found by asking the
 * given controller for the metadata first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"
#include "alloc.h"
#include "clock.h"

/* A malloc'ed copy of an extField, or NULL when absent. */
static char *field_dup(const proto_cmd *c, const char *key)
{
    const char *v = proto_cmd_get(c, key);
    return v ? proto_xstrdup(v) : NULL;
}

/* Send req (+ body) to addr and require SUCCESS; *resp and *body for the caller. */
static int call_ok(lsmq_admin *a, const char *addr, proto_cmd *req, const char *body,
                   int timeout_ms, proto_cmd **resp, char **resp_body)
{
    int rc = lsmq_admin_call(a, addr, req, body, body ? strlen(body) : 0, timeout_ms, resp,
                             resp_body, NULL);
    if (rc == 0 && (*resp)->code != RS_SUCCESS) {
        rc = lsmq__admin_refused(a, *resp, addr, req);
        proto_cmd_free(*resp);
        free(*resp_body);
        *resp = NULL;
        *resp_body = NULL;
    }
    proto_cmd_free(req);
    return rc;
}

int lsmq_admin_get_controller_meta(lsmq_admin *a, const char *ctrl_addr, int timeout_ms,
                                   lsmq_admin_controller_meta **out)
{
    if (!ctrl_addr || !*ctrl_addr || !out)
        return lsmq__admin_bad_arg(a, __func__);
    *out = NULL;
    proto_cmd *resp = NULL;
    char *body = NULL;
    int rc = call_ok(a, ctrl_addr, proto_cmd_request(RC_CONTROLLER_GET_METADATA_INFO), NULL,
                     timeout_ms, &resp, &body);
    if (rc != 0)
        return rc;
    lsmq_admin_controller_meta *m = proto_xcalloc(1, sizeof *m);
    m->group = field_dup(resp, "group");
    m->leader_id = field_dup(resp, "controllerLeaderId");
    m->leader_addr = field_dup(resp, "controllerLeaderAddress");
    m->is_leader = proto_cmd_get_bool(resp, "isLeader", 0);
    m->peers = field_dup(resp, "peers");
    proto_cmd_free(resp);
    free(body);
    *out = m;
    return 0;
}

void lsmq_admin_controller_meta_free(lsmq_admin_controller_meta *m)
{
    if (!m)
        return;
    free(m->group);
    free(m->leader_id);
    free(m->leader_addr);
    free(m->peers);
    free(m);
}

/* The leader's address into buf, from ctrl_addr's metadata. */
static int find_leader(lsmq_admin *a, const char *ctrl_addr, int timeout_ms, char *buf,
                       size_t cap)
{
    lsmq_admin_controller_meta *m = NULL;
    int rc = lsmq_admin_get_controller_meta(a, ctrl_addr, timeout_ms, &m);
    if (rc != 0)
        return rc;
    if (!m->leader_addr || !*m->leader_addr) {
        lsmq__error(&a->err, -1, "the controller at %s knows no leader yet", ctrl_addr);
        rc = LSMQ_ENOTLEADER;
    } else {
        snprintf(buf, cap, "%s", m->leader_addr);
    }
    lsmq_admin_controller_meta_free(m);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Sync state sets                                                      */

static int parse_replicas(json_t *list, lsmq_admin_replica_id **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!list || json_is_null(list))
        return 0;
    if (!json_is_array(list))
        return -1;
    size_t i;
    json_t *r;
    *out = proto_xcalloc(json_array_size(list) + 1, sizeof **out);
    json_array_foreach(list, i, r) {
        lsmq_admin_replica_id *id = &(*out)[(*n)++];
        const char *addr = json_string_value(json_object_get(r, "brokerAddress"));
        if (lsmq__admin_i64_field(r, "brokerId", &id->id) != 0)
            return -1;
        id->addr = proto_xstrdup(addr ? addr : "");
        id->alive = json_is_true(json_object_get(r, "alive"));
    }
    return 0;
}

static int parse_state(const char *name, json_t *info, lsmq_admin_sync_state *s)
{
    s->broker_name = proto_xstrdup(name);
    const char *addr = json_string_value(json_object_get(info, "masterAddress"));
    s->master_addr = proto_xstrdup(addr ? addr : "");
    if (lsmq__admin_i64_field(info, "masterBrokerId", &s->master_id) != 0)
        s->master_id = -1;
    if (lsmq__admin_i64_field(info, "masterEpoch", &s->master_epoch) != 0 ||
        lsmq__admin_i64_field(info, "syncStateSetEpoch", &s->sync_epoch) != 0)
        return -1;
    if (parse_replicas(json_object_get(info, "inSyncReplicas"), &s->in_sync, &s->n_in_sync) != 0 ||
        parse_replicas(json_object_get(info, "notInSyncReplicas"), &s->not_in_sync,
                       &s->n_not_in_sync) != 0)
        return -1;
    return 0;
}

static int cmp_state(const void *x, const void *y)
{
    return strcmp(((const lsmq_admin_sync_state *)x)->broker_name,
                  ((const lsmq_admin_sync_state *)y)->broker_name);
}

int lsmq_admin_get_sync_states(lsmq_admin *a, const char *ctrl_addr,
                               const char *const *broker_names, size_t n_names, int timeout_ms,
                               lsmq_admin_sync_state **out, size_t *n)
{
    if (!ctrl_addr || !*ctrl_addr || !out || !n || (n_names && !broker_names))
        return lsmq__admin_bad_arg(a, __func__);
    *out = NULL;
    *n = 0;
    char leader[256];
    int rc = find_leader(a, ctrl_addr, timeout_ms, leader, sizeof leader);
    if (rc != 0)
        return rc;
    json_t *names = json_array();
    for (size_t i = 0; i < n_names; i++)
        json_array_append_new(names, json_string(broker_names[i]));
    char *req_body = json_dumps(names, JSON_COMPACT);
    json_decref(names);
    if (!req_body)
        proto_oom(0);
    proto_cmd *resp = NULL;
    char *body = NULL;
    rc = call_ok(a, leader, proto_cmd_request(RC_CONTROLLER_GET_SYNC_STATE_DATA), req_body,
                 timeout_ms, &resp, &body);
    free(req_body);
    if (rc != 0)
        return rc;
    json_t *root = body ? json_loads(body, 0, NULL) : NULL;
    json_t *table = json_object_get(root, "replicasInfoTable");
    if (!json_is_object(table)) {
        rc = lsmq__admin_bad_body(a, leader, RC_CONTROLLER_GET_SYNC_STATE_DATA);
        goto done;
    }
    lsmq_admin_sync_state *states = proto_xcalloc(json_object_size(table) + 1, sizeof *states);
    size_t count = 0;
    const char *key;
    json_t *info;
    json_object_foreach(table, key, info) {
        if (parse_state(key, info, &states[count++]) != 0) {
            lsmq_admin_sync_states_free(states, count);
            rc = lsmq__admin_bad_body(a, leader, RC_CONTROLLER_GET_SYNC_STATE_DATA);
            goto done;
        }
    }
    qsort(states, count, sizeof *states, cmp_state);
    *out = states;
    *n = count;
done:
    json_decref(root);
    proto_cmd_free(resp);
    free(body);
    return rc;
}

static void replicas_free(lsmq_admin_replica_id *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(r[i].addr);
    free(r);
}

void lsmq_admin_sync_states_free(lsmq_admin_sync_state *s, size_t n)
{
    if (!s)
        return;
    for (size_t i = 0; i < n; i++) {
        free(s[i].broker_name);
        free(s[i].master_addr);
        replicas_free(s[i].in_sync, s[i].n_in_sync);
        replicas_free(s[i].not_in_sync, s[i].n_not_in_sync);
    }
    free(s);
}

/* ------------------------------------------------------------------ */
/* Elections                                                            */

int lsmq_admin_elect_master(lsmq_admin *a, const char *ctrl_addr, const char *cluster,
                            const char *broker_name, int64_t broker_id, int timeout_ms,
                            lsmq_admin_elect_result *out)
{
    if (!ctrl_addr || !*ctrl_addr || !cluster || !broker_name || !*broker_name || !out)
        return lsmq__admin_bad_arg(a, __func__);
    memset(out, 0, sizeof *out);
    char leader[256];
    int rc = find_leader(a, ctrl_addr, timeout_ms, leader, sizeof leader);
    if (rc != 0)
        return rc;
    proto_cmd *req = proto_cmd_request(RC_CONTROLLER_ELECT_MASTER);
    proto_cmd_set(req, "clusterName", cluster);
    proto_cmd_set(req, "brokerName", broker_name);
    proto_cmd_set_i64(req, "brokerId", broker_id);
    proto_cmd_set_bool(req, "designateElect", broker_id >= 0);
    proto_cmd_set_i64(req, "invokeTime", proto_wall_ms());
    proto_cmd *resp = NULL;
    char *body = NULL;
    rc = call_ok(a, leader, req, NULL, timeout_ms, &resp, &body);
    if (rc != 0)
        return rc;
    if (proto_cmd_get_i64(resp, "masterBrokerId", &out->master_id) != 0 ||
        proto_cmd_get_i64(resp, "masterEpoch", &out->master_epoch) != 0)
        rc = lsmq__admin_bad_body(a, leader, RC_CONTROLLER_ELECT_MASTER);
    proto_cmd_get_i64(resp, "syncStateSetEpoch", &out->sync_epoch);
    const char *addr = proto_cmd_get(resp, "masterAddress");
    snprintf(out->master_addr, sizeof out->master_addr, "%s", addr ? addr : "");
    proto_cmd_free(resp);
    free(body);
    return rc;
}
