/*
 * GET_BROKER_HA_STATUS (907): a broker's replication state, upstream's
 * HARuntimeInfo body, with the fields lsmq brokers add (sequences, lag in
 * messages, phases) read when present.
 */
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"

#define ADMIN_RC_GET_BROKER_HA_STATUS 907

static int64_t i64_or(json_t *o, const char *key, int64_t dflt)
{
    int64_t v;
    return lsmq__admin_i64_field(o, key, &v) == 0 ? v : dflt;
}

/* A malloc'ed copy of a string field, or NULL when absent or null. */
static char *str_or_null(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? proto_xstrdup(v) : NULL;
}

static int parse_replicas(json_t *list, lsmq_admin_ha_status *s)
{
    if (!list || json_is_null(list))
        return 0;
    if (!json_is_array(list))
        return -1;
    size_t i, n = json_array_size(list);
    json_t *c;
    s->replicas = n ? proto_xcalloc(n, sizeof *s->replicas) : NULL;
    json_array_foreach(list, i, c) {
        if (!json_is_object(c))
            return -1;
        lsmq_admin_ha_replica *r = &s->replicas[s->n_replicas++];
        r->addr = str_or_null(c, "addr");
        r->ack_offset = i64_or(c, "slaveAckOffset", 0);
        r->diff = i64_or(c, "diff", 0);
        r->diff_messages = i64_or(c, "diffMessages", -1);
        r->ack_sequence = i64_or(c, "ackSequence", -1);
        r->in_sync = json_is_true(json_object_get(c, "inSync"));
        r->phase = str_or_null(c, "phase");
    }
    return 0;
}

static int parse_ha_status(json_t *body, lsmq_admin_ha_status **out)
{
    if (!json_is_object(body))
        return LSMQ_ECORRUPT;
    lsmq_admin_ha_status *s = proto_xcalloc(1, sizeof *s);
    s->master = json_is_true(json_object_get(body, "master"));
    s->role = str_or_null(body, "brokerRole");
    s->master_max_offset = i64_or(body, "masterCommitLogMaxOffset", 0);
    s->master_sequence = i64_or(body, "masterSequence", -1);
    s->acked_sequence = i64_or(body, "ackedSequence", -1);
    s->in_sync_replicas = (int)i64_or(body, "inSyncSlaveNums", 0);
    json_t *client = json_object_get(body, "haClientRuntimeInfo");
    if (json_is_object(client)) {
        s->master_addr = str_or_null(client, "masterAddr");
        s->max_offset = i64_or(client, "maxOffset", 0);
        s->applied_sequence = i64_or(client, "appliedSequence", -1);
        s->connected = json_is_true(json_object_get(client, "connected")) ||
                       json_is_true(json_object_get(client, "activated"));
    }
    if (parse_replicas(json_object_get(body, "haConnectionInfo"), s) != 0) {
        lsmq_admin_ha_status_free(s);
        return LSMQ_ECORRUPT;
    }
    *out = s;
    return 0;
}

int lsmq_admin_get_ha_status(lsmq_admin *a, const char *broker_addr, int timeout_ms,
                             lsmq_admin_ha_status **out)
{
    json_t *body = NULL;
    if (!broker_addr || !*broker_addr || !out)
        return lsmq__admin_bad_arg(a, __func__);
    *out = NULL;
    int rc = lsmq__admin_rpc(a, broker_addr, 0, proto_cmd_request(ADMIN_RC_GET_BROKER_HA_STATUS),
                             timeout_ms, &body);
    if (rc == 0 && parse_ha_status(body, out) != 0)
        rc = lsmq__admin_bad_body(a, broker_addr, ADMIN_RC_GET_BROKER_HA_STATUS);
    json_decref(body);
    return rc;
}

void lsmq_admin_ha_status_free(lsmq_admin_ha_status *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_replicas; i++) {
        free(s->replicas[i].addr);
        free(s->replicas[i].phase);
    }
    free(s->replicas);
    free(s->role);
    free(s->master_addr);
    free(s);
}
