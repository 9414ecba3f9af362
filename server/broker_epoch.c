/*
 * GET_BROKER_EPOCH_CACHE(1007): the epochs this broker's store knows, as
 * upstream's EpochEntryCache, so `mqadmin getBrokerEpoch` (upstream's and
 * lsmq's) reads them.
 *
 * Upstream counts in commit-log offsets; lsmq's are the sequences of each
 * epoch's master: an entry starts at the sequence of its master's
 * promotion record and ends where the next entry's master stood when it
 * was promoted; the last ends at the store's position (maxOffset).
 *
 * {"clusterName":..,"brokerName":..,"brokerId":..,
 *  "epochList":[{"epoch":..,"startOffset":..,"endOffset":..},...],"maxOffset":..}
 */
#include "broker_hdr.h"
#include "broker_internal.h"

static void on_get_broker_epoch_cache(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_modules *m = ctx;
    engine *e = m->ctx.engine;
    if (!e) {
        broker__reply_code(c, req, RS_SYSTEM_ERROR, "the store is not open");
        return;
    }
    engine_epoch_entry hist[ENGINE_EPOCHS_KEPT];
    size_t n = 0;
    uint64_t epoch = 0, pos = 0;
    int rc = engine_epoch_history(e, hist, &n);
    if (rc == 0 && engine_position(e, &epoch, &pos) == LSMQ_ENOTFOUND)
        pos = 0;
    if (rc != 0) {
        broker__reply_code(c, req, RS_SYSTEM_ERROR, lsmq_strerror(rc));
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        uint64_t end = i + 1 < n ? hist[i + 1].prev_end_seq : pos;
        json_array_append_new(list, json_pack("{s:I,s:I,s:I}", "epoch", (json_int_t)hist[i].epoch,
                                              "startOffset", (json_int_t)hist[i].start_seq,
                                              "endOffset", (json_int_t)end));
    }
    const broker_config *cfg = &m->ctx.cfg;
    json_t *root = json_pack("{s:s,s:s,s:I,s:o,s:I}", "clusterName", cfg->broker_cluster_name,
                             "brokerName", cfg->broker_name, "brokerId",
                             (json_int_t)cfg->broker_id, "epochList", list, "maxOffset",
                             (json_int_t)pos);
    if (proto_cmd_is_oneway(req)) {
        json_decref(root);
        return;
    }
    broker_reply_json(c, req->opaque, root);
}

void broker_epoch_register(broker_modules *m)
{
    server_register(m->ctx.srv, RC_GET_BROKER_EPOCH_CACHE, on_get_broker_epoch_cache, m);
}
