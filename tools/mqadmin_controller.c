/*
 * mqadmin's controller commands, as upstream prints them:
 * getControllerMetaData (any controller answers), getSyncStateSet (-b one
 * group, or -c every group of a cluster from the name server) and
 * electMaster (a planned switch-over); the last two go to the leader the
 * given controller names.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqadmin.h"

/* -a as upstream reads it: the first address of a "a;b;c" list. */
static const char *ctrl_addr(const mqa_ctx *ctx, char *buf, size_t cap)
{
    const char *a = mqa_arg(ctx, 'a');
    snprintf(buf, cap, "%.*s", (int)strcspn(a, ";"), a);
    return buf;
}

static const mqa_opt meta_opts[] = {
    {'a', "controllerAddress", 1, MQA_REQUIRED, "the address of controller"},
    {0, NULL, 0, 0, NULL},
};

static int get_meta(mqa_ctx *ctx)
{
    lsmq_admin_controller_meta *m = NULL;
    char addr[256];
    if (lsmq_admin_get_controller_meta(ctx->admin, ctrl_addr(ctx, addr, sizeof addr),
                                       ctx->timeout_ms, &m) != 0)
        return mqa_fail(ctx);
    if (ctx->json) {
        json_t *o = json_object();
        json_object_set_new(o, "group", mqa_json_str(m->group));
        json_object_set_new(o, "controllerLeaderId",
                            m->leader_id ? mqa_json_str(m->leader_id) : json_null());
        json_object_set_new(o, "controllerLeaderAddress",
                            m->leader_addr ? mqa_json_str(m->leader_addr) : json_null());
        json_object_set_new(o, "isLeader", json_boolean(m->is_leader));
        json_object_set_new(o, "peers", mqa_json_str(m->peers));
        mqa_print_json(o);
    } else {
        printf("\n#ControllerGroup\t%s", m->group ? m->group : "null");
        printf("\n#ControllerLeaderId\t%s", m->leader_id ? m->leader_id : "null");
        printf("\n#ControllerLeaderAddress\t%s", m->leader_addr ? m->leader_addr : "null");
        for (const char *p = m->peers ? m->peers : ""; *p;) {
            size_t n = strcspn(p, ";");
            if (n)
                printf("\n#Peer:\t%.*s", (int)n, p);
            p += n;
            p += *p ? 1 : 0;
        }
        printf("\n");
    }
    lsmq_admin_controller_meta_free(m);
    return MQA_OK;
}

/* ------------------------------------------------------------------ */
/* getSyncStateSet                                                      */

static const mqa_opt sync_opts[] = {
    {'a', "controllerAddress", 1, MQA_REQUIRED, "the address of controller"},
    {'c', "clusterName", 1, MQA_ONE_OF, "which cluster"},
    {'b', "brokerName", 1, MQA_ONE_OF, "which broker to fetch"},
    {'i', "interval", 1, MQA_OPTIONAL, "the interval(second) of get info"},
    {0, NULL, 0, 0, NULL},
};

static void print_replica(const char *label, const char *name, const lsmq_admin_replica_id *r)
{
    printf("\n%s:\tReplicaIdentity{brokerName='%s', brokerId=%" PRId64
           ", brokerAddress='%s', alive=%s}\n",
           label, name, r->id, r->addr, r->alive ? "true" : "false");
}

static json_t *replicas_json(const lsmq_admin_replica_id *r, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:I,s:o,s:b}", "brokerId", (json_int_t)r[i].id,
                                           "brokerAddress", mqa_json_str(r[i].addr), "alive",
                                           r[i].alive));
    return a;
}

static void print_state(const lsmq_admin_sync_state *s, json_t *table)
{
    if (table) {
        json_t *o = json_object();
        json_object_set_new(o, "masterBrokerId",
                            s->master_id >= 0 ? json_integer(s->master_id) : json_null());
        json_object_set_new(o, "masterAddress", mqa_json_str(s->master_addr));
        json_object_set_new(o, "masterEpoch", json_integer(s->master_epoch));
        json_object_set_new(o, "syncStateSetEpoch", json_integer(s->sync_epoch));
        json_object_set_new(o, "inSyncReplicas", replicas_json(s->in_sync, s->n_in_sync));
        json_object_set_new(o, "notInSyncReplicas",
                            replicas_json(s->not_in_sync, s->n_not_in_sync));
        json_object_set_new(table, s->broker_name, o);
        return;
    }
    printf("\n#brokerName\t%s\n#MasterBrokerId\t%" PRId64 "\n#MasterAddr\t%s\n#MasterEpoch\t%"
           PRId64 "\n#SyncStateSetEpoch\t%" PRId64 "\n#SyncStateSetNums\t%zu\n",
           s->broker_name, s->master_id, s->master_id >= 0 ? s->master_addr : "null",
           s->master_epoch, s->sync_epoch, s->n_in_sync);
    for (size_t i = 0; i < s->n_in_sync; i++)
        print_replica("InSyncReplica", s->broker_name, &s->in_sync[i]);
    for (size_t i = 0; i < s->n_not_in_sync; i++)
        print_replica("NotInSyncReplica", s->broker_name, &s->not_in_sync[i]);
}

static int sync_once(mqa_ctx *ctx)
{
    const char *name = mqa_arg(ctx, 'b'), *cluster = mqa_arg(ctx, 'c');
    lsmq_admin_cluster_info *ci = NULL;
    const char *const *names = &name;
    size_t n_names = 1;
    if (!name) {
        if (lsmq_admin_get_cluster_info(ctx->admin, ctx->namesrv, ctx->timeout_ms, &ci) != 0)
            return mqa_fail(ctx);
        const lsmq_admin_cluster *cl = NULL;
        for (size_t i = 0; i < ci->n_clusters; i++)
            if (strcmp(ci->clusters[i].name, cluster) == 0)
                cl = &ci->clusters[i];
        if (!cl) {
            lsmq_admin_cluster_info_free(ci);
            return mqa_failf(ctx, "no cluster %s at the name server %s", cluster, ctx->namesrv);
        }
        names = (const char *const *)cl->broker_names;
        n_names = cl->n_broker_names;
    }
    lsmq_admin_sync_state *states = NULL;
    size_t n = 0;
    char addr[256];
    int rc = lsmq_admin_get_sync_states(ctx->admin, ctrl_addr(ctx, addr, sizeof addr), names, n_names,
                                        ctx->timeout_ms, &states, &n);
    lsmq_admin_cluster_info_free(ci);
    if (rc != 0)
        return mqa_fail(ctx);
    json_t *table = ctx->json ? json_object() : NULL;
    for (size_t i = 0; i < n; i++)
        print_state(&states[i], table);
    if (table)
        mqa_print_json(json_pack("{s:o}", "replicasInfoTable", table));
    lsmq_admin_sync_states_free(states, n);
    return MQA_OK;
}

static int get_sync_state_set(mqa_ctx *ctx)
{
    return mqa_repeat(ctx, sync_once);
}

/* ------------------------------------------------------------------ */
/* electMaster                                                          */

static const mqa_opt elect_opts[] = {
    {'a', "controllerAddress", 1, MQA_REQUIRED, "the address of controller"},
    {'c', "clusterName", 1, MQA_REQUIRED, "the clusterName of broker"},
    {'N', "brokerName", 1, MQA_REQUIRED, "the broker name of the replicas to switch"}, /* -bn */
    {'b', "brokerId", 1, MQA_REQUIRED, "the id of the broker which requires to become master"},
    {0, NULL, 0, 0, NULL},
};

static int elect_master(mqa_ctx *ctx)
{
    int64_t id;
    int rc = mqa_arg_i64(ctx, 'b', -1, &id);
    if (rc != 0)
        return rc;
    if (id < 0)
        return mqa_usage_error(ctx, "brokerId must be >= 0");
    const char *cluster = mqa_arg(ctx, 'c'), *name = mqa_arg(ctx, 'N');
    lsmq_admin_elect_result r;
    char addr[256];
    if (lsmq_admin_elect_master(ctx->admin, ctrl_addr(ctx, addr, sizeof addr), cluster, name, id,
                                ctx->timeout_ms, &r) != 0)
        return mqa_fail(ctx);
    if (ctx->json) {
        mqa_print_json(json_pack("{s:o,s:o,s:I,s:o,s:I,s:I}", "clusterName", mqa_json_str(cluster),
                                 "brokerName", mqa_json_str(name), "masterBrokerId",
                                 (json_int_t)r.master_id, "masterAddress",
                                 mqa_json_str(r.master_addr), "masterEpoch",
                                 (json_int_t)r.master_epoch, "syncStateSetEpoch",
                                 (json_int_t)r.sync_epoch));
        return MQA_OK;
    }
    printf("\n#ClusterName\t%s", cluster);
    printf("\n#BrokerName\t%s", name);
    printf("\n#BrokerMasterId\t%" PRId64, r.master_id);
    printf("\n#BrokerMasterAddr\t%s", r.master_addr);
    printf("\n#MasterEpoch\t%" PRId64, r.master_epoch);
    printf("\n#SyncStateSetEpoch\t%" PRId64 "\n", r.sync_epoch);
    return MQA_OK;
}

const mqa_command mqa_controller_commands[] = {
    {"getControllerMetaData", "Get controller cluster's metadata.", meta_opts, get_meta},
    {"getSyncStateSet", "Fetch syncStateSet for target brokers.", sync_opts, get_sync_state_set},
    {"electMaster", "Re-elect the specified broker as master.", elect_opts, elect_master},
    {NULL, NULL, NULL, NULL},
};
