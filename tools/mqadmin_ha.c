/*
 * mqadmin haStatus: a broker group's replication, as upstream's
 * HAStatusSubCommand prints it (-b one broker, -c every master of a
 * cluster, -i to repeat), with the columns lsmq brokers add: the
 * acknowledged sequence and the lag in messages of each replica; for a
 * replica, the master sequence it has applied and whether it streams.
 */
#include <stdio.h>
#include <stdlib.h>

#include "mqadmin.h"

static const mqa_opt ha_status_opts[] = {
    {'c', "clusterName", 1, MQA_ONE_OF, "which cluster"},
    {'b', "brokerAddr", 1, MQA_ONE_OF, "which broker to fetch"},
    {'i', "interval", 1, MQA_OPTIONAL, "the interval(second) of get info"},
    {0, NULL, 0, 0, NULL},
};

static json_t *status_json(const char *addr, const lsmq_admin_ha_status *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "brokerAddr", mqa_json_str(addr));
    json_object_set_new(o, "master", json_boolean(s->master));
    if (s->role)
        json_object_set_new(o, "brokerRole", mqa_json_str(s->role));
    if (s->master) {
        json_t *list = json_array();
        for (size_t i = 0; i < s->n_replicas; i++) {
            const lsmq_admin_ha_replica *r = &s->replicas[i];
            json_t *ro = json_object();
            json_object_set_new(ro, "addr", mqa_json_str(r->addr ? r->addr : ""));
            json_object_set_new(ro, "ackOffset", json_integer(r->ack_offset));
            json_object_set_new(ro, "ackSequence", json_integer(r->ack_sequence));
            json_object_set_new(ro, "diff", json_integer(r->diff));
            json_object_set_new(ro, "diffMessages", json_integer(r->diff_messages));
            json_object_set_new(ro, "inSync", json_boolean(r->in_sync));
            if (r->phase)
                json_object_set_new(ro, "phase", mqa_json_str(r->phase));
            json_array_append_new(list, ro);
        }
        json_object_set_new(o, "masterCommitLogMaxOffset", json_integer(s->master_max_offset));
        json_object_set_new(o, "masterSequence", json_integer(s->master_sequence));
        json_object_set_new(o, "ackedSequence", json_integer(s->acked_sequence));
        json_object_set_new(o, "inSyncSlaveNums", json_integer(s->in_sync_replicas));
        json_object_set_new(o, "replicas", list);
    } else {
        json_object_set_new(o, "masterAddr", s->master_addr ? mqa_json_str(s->master_addr)
                                                            : json_null());
        json_object_set_new(o, "maxOffset", json_integer(s->max_offset));
        json_object_set_new(o, "appliedSequence", json_integer(s->applied_sequence));
        json_object_set_new(o, "connected", json_boolean(s->connected));
    }
    return o;
}

static void status_print(const char *addr, const lsmq_admin_ha_status *s)
{
    if (s->master) {
        printf("\n#MasterAddr\t%s\n#MasterCommitLogMaxOffset\t%lld\n#MasterSequence\t%lld\n"
               "#SlaveNum\t%zu\n#InSyncSlaveNum\t%d\n",
               addr, (long long)s->master_max_offset, (long long)s->master_sequence,
               s->n_replicas, s->in_sync_replicas);
        printf("%-32s  %-16s %16s %16s %16s %12s %-12s\n", "#SlaveAddr", "#SlaveAckOffset",
               "#Diff", "#DiffMessages", "#AckSequence", "#Status", "#Phase");
        for (size_t i = 0; i < s->n_replicas; i++) {
            const lsmq_admin_ha_replica *r = &s->replicas[i];
            printf("%-32s  %-16lld %16lld %16lld %16lld %12s %-12s\n", r->addr ? r->addr : "",
                   (long long)r->ack_offset, (long long)r->diff, (long long)r->diff_messages,
                   (long long)r->ack_sequence, r->in_sync ? "OK" : "Fall Behind",
                   r->phase ? r->phase : "");
        }
        return;
    }
    printf("\n#MasterAddr\t%s\n", s->master_addr ? s->master_addr : "null");
    printf("#CommitLogMaxOffset\t%lld\n", (long long)s->max_offset);
    printf("#AppliedSequence\t%lld\n", (long long)s->applied_sequence);
    printf("#Connected\t%s\n", s->connected ? "true" : "false");
}

static int status_one(mqa_ctx *ctx, const char *addr, json_t *list)
{
    lsmq_admin_ha_status *s = NULL;
    if (lsmq_admin_get_ha_status(ctx->admin, addr, ctx->timeout_ms, &s) != 0)
        return mqa_fail(ctx);
    if (ctx->json)
        json_array_append_new(list, status_json(addr, s));
    else
        status_print(addr, s);
    lsmq_admin_ha_status_free(s);
    return MQA_OK;
}

static int ha_status_once(mqa_ctx *ctx)
{
    const char *addr = mqa_arg(ctx, 'b'), *cluster = mqa_arg(ctx, 'c');
    json_t *list = json_array();
    int rc = MQA_OK;
    if (addr) {
        rc = status_one(ctx, addr, list);
    } else {
        lsmq_admin_cluster_info *ci = NULL;
        const char **masters = NULL;
        size_t n = 0;
        rc = mqa_cluster_masters(ctx, cluster, &ci, &masters, &n);
        for (size_t i = 0; rc == MQA_OK && i < n; i++)
            rc = status_one(ctx, masters[i], list);
        free(masters);
        lsmq_admin_cluster_info_free(ci);
    }
    if (ctx->json && rc == MQA_OK) {
        json_t *o = json_object();
        json_object_set_new(o, "brokers", list);
        mqa_print_json(o);
    } else {
        json_decref(list);
    }
    return rc;
}

static int ha_status(mqa_ctx *ctx)
{
    return mqa_repeat(ctx, ha_status_once);
}

const mqa_command mqa_ha_commands[] = {
    {"haStatus", "Fetch ha runtime status data.", ha_status_opts, ha_status},
    {NULL, NULL, NULL, NULL},
};
