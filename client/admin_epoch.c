/*
 * GET_BROKER_EPOCH_CACHE (1007): the epochs a broker's store knows
 * (upstream's EpochEntryCache), for getBrokerEpoch.
 */
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"

static int parse_epochs(json_t *body, lsmq_admin_epoch_cache *c)
{
    json_t *list = json_object_get(body, "epochList");
    const char *cluster = json_string_value(json_object_get(body, "clusterName"));
    const char *name = json_string_value(json_object_get(body, "brokerName"));
    c->cluster = proto_xstrdup(cluster ? cluster : "");
    c->broker_name = proto_xstrdup(name ? name : "");
    if (lsmq__admin_i64_field(body, "brokerId", &c->broker_id) != 0 ||
        lsmq__admin_i64_field(body, "maxOffset", &c->max_offset) != 0 || !json_is_array(list))
        return -1;
    size_t i, n = json_array_size(list);
    json_t *e;
    c->epochs = n ? proto_xcalloc(n, sizeof *c->epochs) : NULL;
    json_array_foreach(list, i, e) {
        lsmq_admin_epoch *x = &c->epochs[c->n_epochs++];
        if (lsmq__admin_i64_field(e, "epoch", &x->epoch) != 0 ||
            lsmq__admin_i64_field(e, "startOffset", &x->start_offset) != 0 ||
            lsmq__admin_i64_field(e, "endOffset", &x->end_offset) != 0)
            return -1;
    }
    return 0;
}

int lsmq_admin_get_broker_epochs(lsmq_admin *a, const char *broker_addr, int timeout_ms,
                                 lsmq_admin_epoch_cache **out)
{
    json_t *body = NULL;
    if (!broker_addr || !*broker_addr || !out)
        return lsmq__admin_bad_arg(a, __func__);
    *out = NULL;
    int rc = lsmq__admin_rpc(a, broker_addr, 0, proto_cmd_request(RC_GET_BROKER_EPOCH_CACHE),
                             timeout_ms, &body);
    if (rc == 0) {
        lsmq_admin_epoch_cache *c = proto_xcalloc(1, sizeof *c);
        if (parse_epochs(body, c) != 0) {
            lsmq_admin_epoch_cache_free(c);
            rc = lsmq__admin_bad_body(a, broker_addr, RC_GET_BROKER_EPOCH_CACHE);
        } else {
            *out = c;
        }
    }
    json_decref(body);
    return rc;
}

void lsmq_admin_epoch_cache_free(lsmq_admin_epoch_cache *c)
{
    if (!c)
        return;
    free(c->cluster);
    free(c->broker_name);
    free(c->epochs);
    free(c);
}
