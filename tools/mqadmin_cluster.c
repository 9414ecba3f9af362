/*
 * mqadmin cluster and broker commands: clusterList (every broker the name
 * server knows, with load figures from each broker's runtime info) and
 * brokerStatus (a broker's runtime info as key: value lines). Option
 * letters and table layouts follow upstream's ClusterListSubCommand (4.9
 * layout, which matches the version lsmq reports) and
 * BrokerStatusSubCommand.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mqadmin.h"
#include "clock.h"

/* A runtime value, or `dflt` when the broker did not send it. */
static const char *kv(const lsmq_admin_kv_table *t, const char *key, const char *dflt)
{
    const char *v = lsmq_admin_kv_table_get(t, key);

    return v ? v : dflt;
}

static long long kv_ll(const lsmq_admin_kv_table *t, const char *key)
{
    const char *v = lsmq_admin_kv_table_get(t, key);

    return v ? strtoll(v, NULL, 10) : 0;
}

/* The first figure of a "1.0 2.0 3.0" TPS value. */
static double kv_tps(const lsmq_admin_kv_table *t, const char *key, const char *alias)
{
    const char *v = lsmq_admin_kv_table_get(t, key);

    if (!v && alias)
        v = lsmq_admin_kv_table_get(t, alias);
    return v ? strtod(v, NULL) : 0;
}

/* ==== clusterList ======================================================== */

static const mqa_opt cluster_list_opts[] = {
    {'m', "moreStats", 0, MQA_OPTIONAL, "Print more stats"},
    {'i', "interval", 1, MQA_OPTIONAL, "specify intervals numbers, it is in seconds"},
    {'c', "clusterName", 1, MQA_OPTIONAL, "which cluster"},
    {0, NULL, 0, 0, NULL},
};

/* The figures of one broker address, as the table and JSON show them. */
typedef struct broker_row {
    double in_tps, out_tps, hour, space;
    long long in_yest, out_yest, in_today, out_today;
} broker_row;

static void row_figures(const lsmq_admin_kv_table *t, broker_row *r)
{
    memset(r, 0, sizeof *r);
    if (!t)
        return;
    r->in_tps = kv_tps(t, "putTps", NULL);
    /* 4.x spells it getTransferedTps, 5.x getTransferredTps. */
    r->out_tps = kv_tps(t, "getTransferredTps", "getTransferedTps");
    long long earliest = kv_ll(t, "earliestMessageTimeStamp");
    if (earliest > 0) {
        r->hour = (double)(proto_wall_ms() - earliest) / 1000.0 / 3600.0;
    }
    r->space = strtod(kv(t, "commitLogDiskRatio", "0"), NULL);
    r->in_yest = kv_ll(t, "msgPutTotalTodayMorning") - kv_ll(t, "msgPutTotalYesterdayMorning");
    r->out_yest = kv_ll(t, "msgGetTotalTodayMorning") - kv_ll(t, "msgGetTotalYesterdayMorning");
    r->in_today = kv_ll(t, "msgPutTotalTodayNow") - kv_ll(t, "msgPutTotalTodayMorning");
    r->out_today = kv_ll(t, "msgGetTotalTodayNow") - kv_ll(t, "msgGetTotalTodayMorning");
}

static void print_row(const mqa_ctx *ctx, const char *cluster, const lsmq_admin_broker *b,
                      const lsmq_admin_addr *a, const lsmq_admin_kv_table *t, const broker_row *r)
{
    char in[96], out[96], hour[32], space[32], id[24];

    snprintf(id, sizeof id, "%lld", (long long)a->id);
    if (mqa_arg(ctx, 'm')) {
        printf("%-16s  %-32s %14lld %14lld %14lld %14lld\n", cluster, b->name, r->in_yest,
               r->out_yest, r->in_today, r->out_today);
        return;
    }
    snprintf(in, sizeof in, "%9.2f(%s,%sms)", r->in_tps, kv(t, "sendThreadPoolQueueSize", "N"),
             kv(t, "sendThreadPoolQueueHeadWaitTimeMills", "N"));
    snprintf(out, sizeof out, "%9.2f(%s,%sms)", r->out_tps,
             kv(t, "pullThreadPoolQueueSize", "N"),
             kv(t, "pullThreadPoolQueueHeadWaitTimeMills", "N"));
    snprintf(hour, sizeof hour, "%2.2f", r->hour);
    snprintf(space, sizeof space, "%.4f", r->space);
    printf("%-16s  %-22s  %-4s  %-22s %-16s %19s %19s %10s %5s %6s\n", cluster, b->name, id,
           a->addr, kv(t, "brokerVersionDesc", ""), in, out, kv(t, "pageCacheLockTimeMills", ""),
           hour, space);
}

static json_t *row_json(const lsmq_admin_broker *b, const lsmq_admin_addr *a,
                        const lsmq_admin_kv_table *t, const broker_row *r)
{
    json_t *o = json_object();

    json_object_set_new(o, "brokerName", mqa_json_str(b->name));
    json_object_set_new(o, "brokerId", json_integer(a->id));
    json_object_set_new(o, "addr", mqa_json_str(a->addr));
    json_object_set_new(o, "reachable", json_boolean(t != NULL));
    json_object_set_new(o, "version", mqa_json_str(kv(t, "brokerVersionDesc", "")));
    json_object_set_new(o, "inTps", json_real(r->in_tps));
    json_object_set_new(o, "outTps", json_real(r->out_tps));
    json_object_set_new(o, "inTotalYest", json_integer(r->in_yest));
    json_object_set_new(o, "outTotalYest", json_integer(r->out_yest));
    json_object_set_new(o, "inTotalToday", json_integer(r->in_today));
    json_object_set_new(o, "outTotalToday", json_integer(r->out_today));
    json_object_set_new(o, "hour", json_real(r->hour));
    json_object_set_new(o, "space", json_real(r->space));
    return o;
}

/* One pass over the clusters: a table, or one line of JSON. */
static int cluster_list_once(mqa_ctx *ctx)
{
    const char *only = mqa_arg(ctx, 'c');
    lsmq_admin_cluster_info *ci = NULL;
    json_t *clusters = json_array();

    if (lsmq_admin_get_cluster_info(ctx->admin, ctx->namesrv, ctx->timeout_ms, &ci) != 0) {
        json_decref(clusters);
        return mqa_fail(ctx);
    }
    if (only && !lsmq_admin_cluster_info_cluster(ci, only)) {
        json_decref(clusters);
        lsmq_admin_cluster_info_free(ci);
        return mqa_failf(ctx, "cluster %s not found", only);
    }
    if (!ctx->json && mqa_arg(ctx, 'm'))
        printf("%-16s  %-32s %14s %14s %14s %14s\n", "#Cluster Name", "#Broker Name",
               "#InTotalYest", "#OutTotalYest", "#InTotalToday", "#OutTotalToday");
    else if (!ctx->json)
        printf("%-16s  %-22s  %-4s  %-22s %-16s %19s %19s %10s %5s %6s\n", "#Cluster Name",
               "#Broker Name", "#BID", "#Addr", "#Version", "#InTPS(LOAD)", "#OutTPS(LOAD)",
               "#PCWait(ms)", "#Hour", "#SPACE");
    for (size_t i = 0; i < ci->n_clusters; i++) {
        const lsmq_admin_cluster *c = &ci->clusters[i];
        if (only && strcmp(c->name, only) != 0)
            continue;
        json_t *brokers = json_array();
        for (size_t j = 0; j < c->n_broker_names; j++) {
            const lsmq_admin_broker *b = lsmq_admin_cluster_info_broker(ci, c->broker_names[j]);
            for (size_t k = 0; b && k < b->n_addrs; k++) {
                lsmq_admin_kv_table *t = NULL;
                broker_row r;
                if (lsmq_admin_get_broker_runtime(ctx->admin, b->addrs[k].addr, ctx->timeout_ms,
                                                  &t) != 0)
                    mqa_warn(ctx);
                row_figures(t, &r);
                if (ctx->json)
                    json_array_append_new(brokers, row_json(b, &b->addrs[k], t, &r));
                else
                    print_row(ctx, c->name, b, &b->addrs[k], t, &r);
                lsmq_admin_kv_table_free(t);
            }
        }
        json_t *o = json_object();
        json_object_set_new(o, "clusterName", mqa_json_str(c->name));
        json_object_set_new(o, "brokers", brokers);
        json_array_append_new(clusters, o);
    }
    if (ctx->json) {
        json_t *o = json_object();
        json_object_set_new(o, "clusters", clusters);
        mqa_print_json(o);
    } else {
        json_decref(clusters);
    }
    fflush(stdout);
    lsmq_admin_cluster_info_free(ci);
    return MQA_OK;
}

static int cluster_list(mqa_ctx *ctx)
{
    return mqa_repeat(ctx, cluster_list_once);
}

/* ==== brokerStatus ======================================================= */

static const mqa_opt broker_status_opts[] = {
    {'b', "brokerAddr", 1, MQA_ONE_OF, "Broker address"},
    {'c', "clusterName", 1, MQA_ONE_OF, "which cluster"},
    {0, NULL, 0, 0, NULL},
};

/* Print (or add to `list`) one broker's runtime info. */
static int broker_status_one(mqa_ctx *ctx, const char *addr, int with_addr, json_t *list)
{
    lsmq_admin_kv_table *t = NULL;

    if (lsmq_admin_get_broker_runtime(ctx->admin, addr, ctx->timeout_ms, &t) != 0)
        return mqa_fail(ctx);
    if (ctx->json) {
        json_t *table = json_object(), *o = json_object();
        for (size_t i = 0; i < t->n; i++)
            json_object_set_new(table, t->kv[i].key, mqa_json_str(t->kv[i].value));
        json_object_set_new(o, "brokerAddr", mqa_json_str(addr));
        json_object_set_new(o, "table", table);
        json_array_append_new(list, o);
    } else {
        for (size_t i = 0; i < t->n; i++) {
            if (with_addr)
                printf("%-24s %-32s: %s\n", addr, t->kv[i].key, t->kv[i].value);
            else
                printf("%-32s: %s\n", t->kv[i].key, t->kv[i].value);
        }
    }
    lsmq_admin_kv_table_free(t);
    return MQA_OK;
}

static int broker_status(mqa_ctx *ctx)
{
    const char *addr = mqa_arg(ctx, 'b'), *cluster = mqa_arg(ctx, 'c');
    json_t *list = json_array();
    int rc = MQA_OK;

    if (addr) {
        rc = broker_status_one(ctx, addr, 0, list);
    } else {
        /* Masters and slaves of every broker group of the cluster. */
        lsmq_admin_cluster_info *ci = NULL;
        if (lsmq_admin_get_cluster_info(ctx->admin, ctx->namesrv, ctx->timeout_ms, &ci) != 0) {
            json_decref(list);
            return mqa_fail(ctx);
        }
        const lsmq_admin_cluster *c = lsmq_admin_cluster_info_cluster(ci, cluster);
        if (!c)
            rc = mqa_failf(ctx, "cluster %s not found", cluster);
        for (size_t i = 0; c && i < c->n_broker_names; i++) {
            const lsmq_admin_broker *b = lsmq_admin_cluster_info_broker(ci, c->broker_names[i]);
            for (size_t k = 0; b && k < b->n_addrs; k++)
                if (broker_status_one(ctx, b->addrs[k].addr, 1, list) != MQA_OK)
                    rc = MQA_FAIL; /* go on with the others, as upstream */
        }
        lsmq_admin_cluster_info_free(ci);
    }
    if (ctx->json && json_array_size(list) > 0) {
        json_t *o = json_object();
        json_object_set_new(o, "brokers", list);
        mqa_print_json(o);
    } else {
        json_decref(list);
    }
    return rc;
}

const mqa_command mqa_cluster_commands[] = {
    {"clusterList", "List cluster infos.", cluster_list_opts, cluster_list},
    {"brokerStatus", "Fetch broker runtime status data.", broker_status_opts, broker_status},
    {NULL, NULL, NULL, NULL},
};
