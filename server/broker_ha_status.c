/*
 * GET_BROKER_HA_STATUS(907): upstream's HARuntimeInfo body, so upstream's
 * `mqadmin haStatus` reads lsmq's brokers as well as lsmq's own does.
 *
 * Upstream counts in commit-log bytes; lsmq's counterpart is the log
 * position (total record bytes stored), so a master reports its next log
 * position as masterCommitLogMaxOffset and each replica's acknowledged
 * position as slaveAckOffset (diff is the lag in those bytes), and a
 * replica its own next log position as maxOffset and, as lastReadTimestamp
 * and lastWriteTimestamp, when it last heard from its master and last
 * acknowledged to it (wall-clock ms, 0 before the first). Fields of lsmq's own
 * ride along (fastjson readers ignore them): sequences, lag in messages,
 * the replica's phase.
 *
 * {"haClientRuntimeInfo":{...},"haConnectionInfo":[{"addr":..,"diff":..,
 *  "inSync":..,"slaveAckOffset":..,"transferFromWhere":..,
 *  "transferredByteInSecond":..},...],"inSyncSlaveNums":..,"master":..,
 *  "masterCommitLogMaxOffset":..}
 */
#include <stdlib.h>
#include <string.h>

#include "broker_hdr.h"
#include "broker_internal.h"
#include "repl.h"

static json_t *client_info(broker_ctx *ctx, repl_replica *follower, const char *master_ha)
{
    repl_replica_state st;
    memset(&st, 0, sizeof st);
    if (follower)
        repl_replica_status(follower, &st);
    const char *addr = st.master_addr[0] ? st.master_addr : master_ha;
    uint64_t pos = ctx->engine ? engine_next_log_position(ctx->engine) : 0;
    json_t *o = json_object();
    json_object_set_new(o, "activated", json_boolean(st.connected));
    json_object_set_new(o, "appliedSequence", json_integer((json_int_t)st.applied_seq));
    json_object_set_new(o, "checkpointNeeded", json_boolean(st.checkpoint_needed));
    json_object_set_new(o, "connected", json_boolean(st.connected));
    json_object_set_new(o, "epoch", json_integer((json_int_t)st.epoch));
    if (st.error) /* replication stopped for good: say why */
        json_object_set_new(o, "error", json_string(lsmq_strerror(st.error)));
    json_object_set_new(o, "lastReadTimestamp", json_integer((json_int_t)st.last_read_ms));
    json_object_set_new(o, "lastWriteTimestamp", json_integer((json_int_t)st.last_write_ms));
    json_object_set_new(o, "masterAddr", addr && *addr ? broker_json_str(addr) : json_null());
    json_object_set_new(o, "masterFlushOffset", json_integer(0));
    json_object_set_new(o, "masterSequence", json_integer((json_int_t)st.master_seq));
    json_object_set_new(o, "maxOffset", json_integer((json_int_t)pos));
    json_object_set_new(o, "transferredByteInSecond", json_integer(0));
    return o;
}

static json_t *connection_info(const repl_replica_info *ri, uint64_t master_pos)
{
    uint64_t ack_pos = ri->lag_bytes < master_pos ? master_pos - ri->lag_bytes : 0;
    json_t *o = json_object();
    json_object_set_new(o, "ackSequence", json_integer((json_int_t)ri->acked_seq));
    json_object_set_new(o, "addr", broker_json_str(ri->addr[0] ? ri->addr : ri->peer));
    json_object_set_new(o, "diff", json_integer((json_int_t)ri->lag_bytes));
    json_object_set_new(o, "diffMessages", json_integer((json_int_t)ri->lag_msgs));
    json_object_set_new(o, "inSync", json_boolean(ri->in_sync));
    json_object_set_new(o, "peer", broker_json_str(ri->peer));
    json_object_set_new(o, "phase", json_string(repl_phase_name(ri->phase)));
    json_object_set_new(o, "slaveAckOffset", json_integer((json_int_t)ack_pos));
    json_object_set_new(o, "transferFromWhere", json_integer(0));
    json_object_set_new(o, "transferredByteInSecond", json_integer(0));
    return o;
}

static json_t *master_info(broker_ctx *ctx, repl_master *master, json_t *root)
{
    uint64_t pos = engine_next_log_position(ctx->engine);
    repl_replica_info *ri = NULL;
    size_t n = 0, in_sync = 0;
    json_t *list = json_array();
    if (repl_master_status(master, &ri, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            in_sync += ri[i].in_sync;
            json_array_append_new(list, connection_info(&ri[i], pos));
        }
    }
    free(ri);
    json_object_set_new(root, "haConnectionInfo", list);
    json_object_set_new(root, "inSyncSlaveNums", json_integer((json_int_t)in_sync));
    json_object_set_new(root, "masterCommitLogMaxOffset", json_integer((json_int_t)pos));
    json_object_set_new(root, "masterSequence",
                        json_integer((json_int_t)engine_last_sequence(ctx->engine)));
    json_object_set_new(root, "ackedSequence", json_integer((json_int_t)repl_master_acked(master)));
    return root;
}

static void on_get_broker_ha_status(server *s, conn *c, proto_cmd *req, void *arg)
{
    broker_modules *m = arg;
    broker_ctx *ctx = &m->ctx;
    if (!ctx->engine) {
        broker__reply_code(c, req, RS_SYSTEM_ERROR, "the store is not open");
        return;
    }
    repl_master *master;
    repl_replica *follower;
    const char *master_ha;
    broker__ha_parts(m->ha, &master, &follower, &master_ha);
    json_t *root = json_object();
    json_object_set_new(root, "master", json_boolean(!ctx->replica));
    json_object_set_new(root, "brokerRole", json_string(broker_role_name(ctx->cfg.role)));
    json_object_set_new(root, "haServerAddr", broker_json_str(ctx->ha_addr));
    if (master) {
        master_info(ctx, master, root);
        json_object_set_new(root, "haClientRuntimeInfo", client_info(ctx, NULL, ""));
    } else {
        json_object_set_new(root, "haConnectionInfo", json_array());
        json_object_set_new(root, "inSyncSlaveNums", json_integer(0));
        json_object_set_new(root, "masterCommitLogMaxOffset", json_integer(0));
        json_object_set_new(root, "haClientRuntimeInfo", client_info(ctx, follower, master_ha));
    }
    if (proto_cmd_is_oneway(req)) {
        json_decref(root);
        return;
    }
    broker_reply_json(c, req->opaque, root);
}

void broker_ha_register(broker_modules *m)
{
    server_register(m->ctx.srv, BROKER_RC_GET_BROKER_HA_STATUS, on_get_broker_ha_status, m);
}
