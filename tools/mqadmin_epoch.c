/*
 * mqadmin getBrokerEpoch: the epochs each broker of a group (-b) or of
 * every group of a cluster (-c) knows, as upstream's
 * GetBrokerEpochSubCommand prints them; the last entry ends at the
 * store's position (maxOffset). Offsets are the sequences of each epoch's
 * master.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqadmin.h"

static const mqa_opt epoch_opts[] = {
    {'c', "clusterName", 1, MQA_ONE_OF, "which cluster"},
    {'b', "brokerName", 1, MQA_ONE_OF, "which broker to fetch"},
    {'i', "interval", 1, MQA_OPTIONAL, "the interval(second) of get info"},
    {0, NULL, 0, 0, NULL},
};

static json_t *epochs_json(const char *addr, const lsmq_admin_epoch_cache *c)
{
    json_t *list = json_array();
    for (size_t i = 0; i < c->n_epochs; i++)
        json_array_append_new(list, json_pack("{s:I,s:I,s:I}", "epoch",
                                              (json_int_t)c->epochs[i].epoch, "startOffset",
                                              (json_int_t)c->epochs[i].start_offset, "endOffset",
                                              (json_int_t)c->epochs[i].end_offset));
    return json_pack("{s:s,s:s,s:s,s:I,s:o,s:I}", "clusterName", c->cluster, "brokerName",
                     c->broker_name, "brokerAddr", addr, "brokerId", (json_int_t)c->broker_id,
                     "epochList", list, "maxOffset", (json_int_t)c->max_offset);
}

static void epochs_print(const char *addr, const lsmq_admin_epoch_cache *c)
{
    printf("\n#clusterName\t%s\n#brokerName\t%s\n#brokerAddr\t%s\n#brokerId\t%lld", c->cluster,
           c->broker_name, addr, (long long)c->broker_id);
    for (size_t i = 0; i < c->n_epochs; i++)
        printf("\n#Epoch: EpochEntry{epoch=%lld, startOffset=%lld, endOffset=%lld}",
               (long long)c->epochs[i].epoch, (long long)c->epochs[i].start_offset,
               (long long)c->epochs[i].end_offset);
    printf("\n");
}

static int epochs_one(mqa_ctx *ctx, const char *addr, json_t *list)
{
    lsmq_admin_epoch_cache *c = NULL;
    if (lsmq_admin_get_broker_epochs(ctx->admin, addr, ctx->timeout_ms, &c) != 0)
        return mqa_fail(ctx);
    if (ctx->json)
        json_array_append_new(list, epochs_json(addr, c));
    else
        epochs_print(addr, c);
    lsmq_admin_epoch_cache_free(c);
    return MQA_OK;
}

/* Every address of the named group, or of every group of the cluster. */
static int group_epochs(mqa_ctx *ctx, const lsmq_admin_cluster_info *ci, const char *name,
                        json_t *list)
{
    const lsmq_admin_broker *b = lsmq_admin_cluster_info_broker(ci, name);
    if (!b)
        return mqa_failf(ctx, "broker %s not found at the name server", name);
    int rc = MQA_OK;
    for (size_t i = 0; rc == MQA_OK && i < b->n_addrs; i++)
        rc = epochs_one(ctx, b->addrs[i].addr, list);
    return rc;
}

static int get_broker_epoch_once(mqa_ctx *ctx)
{
    const char *name = mqa_arg(ctx, 'b'), *cluster = mqa_arg(ctx, 'c');
    lsmq_admin_cluster_info *ci = NULL;
    if (lsmq_admin_get_cluster_info(ctx->admin, ctx->namesrv, ctx->timeout_ms, &ci) != 0)
        return mqa_fail(ctx);
    json_t *list = json_array();
    int rc = MQA_OK;
    if (name) {
        rc = group_epochs(ctx, ci, name, list);
    } else {
        const lsmq_admin_cluster *cl = lsmq_admin_cluster_info_cluster(ci, cluster);
        if (!cl)
            rc = mqa_failf(ctx, "cluster %s not found at the name server", cluster);
        for (size_t i = 0; rc == MQA_OK && cl && i < cl->n_broker_names; i++)
            rc = group_epochs(ctx, ci, cl->broker_names[i], list);
    }
    if (ctx->json && rc == MQA_OK)
        mqa_print_json(json_pack("{s:o}", "brokers", list));
    else
        json_decref(list);
    lsmq_admin_cluster_info_free(ci);
    return rc;
}

static int get_broker_epoch(mqa_ctx *ctx)
{
    return mqa_repeat(ctx, get_broker_epoch_once);
}

const mqa_command mqa_epoch_commands[] = {
    {"getBrokerEpoch", "Fetch broker epoch entries.", epoch_opts, get_broker_epoch},
    {NULL, NULL, NULL, NULL},
};
