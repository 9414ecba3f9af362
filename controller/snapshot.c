/*
 * The whole state's encoding (codec.h): what raft stores as a snapshot and
 * sends to a controller too far behind for the log.
 */
#include "codec.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "byte_reader.h"
#include "errors.h"

#define STATE_MAGIC 'S'

void ctl_state_encode(const ctl_sm *sm, uint8_t **data, size_t *len)
{
    proto_buf w = {0};
    size_t n = ctl_sm_count(sm);
    proto_buf_put_u8(&w, STATE_MAGIC);
    proto_buf_put_u8(&w, CTL_STATE_VERSION);
    proto_buf_put_u32(&w, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        const ctl_group *g = ctl_sm_at(sm, i);
        proto_buf_put_str16(&w, g->name);
        proto_buf_put_u64(&w, g->epoch);
        proto_buf_put_u64(&w, (uint64_t)g->master_id);
        proto_buf_put_u8(&w, (uint8_t)g->n_brokers);
        for (size_t b = 0; b < g->n_brokers; b++) {
            proto_buf_put_u64(&w, (uint64_t)g->brokers[b].id);
            proto_buf_put_str16(&w, g->brokers[b].addr);
        }
        proto_buf_put_u8(&w, (uint8_t)g->n_sync);
        for (size_t s = 0; s < g->n_sync; s++)
            proto_buf_put_u64(&w, (uint64_t)g->sync[s]);
        proto_buf_put_u64(&w, g->sync_epoch);
    }
    size_t n_ctls = ctl_sm_controller_count(sm);
    proto_buf_put_u8(&w, (uint8_t)n_ctls);
    for (size_t i = 0; i < n_ctls; i++) {
        const char *id, *addr;
        ctl_sm_controller_at(sm, i, &id, &addr);
        proto_buf_put_str16(&w, id);
        proto_buf_put_str16(&w, addr);
    }
    *len = w.len;
    *data = (uint8_t *)proto_buf_take(&w);
}

/* One group into g; false when the input runs out or a count is too big. */
static bool read_group(proto_reader *r, ctl_group *g, uint8_t version)
{
    memset(g, 0, sizeof(*g));
    proto_rd_str16(r, g->name, CTL_NAME_MAX);
    g->epoch = proto_rd_u64(r);
    g->master_id = (int64_t)proto_rd_u64(r);
    g->n_brokers = proto_rd_u8(r);
    if (g->n_brokers > CTL_BROKERS_MAX)
        return false;
    for (size_t b = 0; b < g->n_brokers; b++) {
        g->brokers[b].id = (int64_t)proto_rd_u64(r);
        proto_rd_str16(r, g->brokers[b].addr, CTL_ADDR_MAX);
    }
    g->n_sync = proto_rd_u8(r);
    if (g->n_sync > CTL_BROKERS_MAX)
        return false;
    for (size_t s = 0; s < g->n_sync; s++)
        g->sync[s] = (int64_t)proto_rd_u64(r);
    /* Version 1 kept no count of set changes: start from the epoch. */
    g->sync_epoch = version >= 2 ? proto_rd_u64(r) : g->epoch;
    return !r->bad;
}

/* Version 2's controller addresses. */
static int read_controllers(proto_reader *r, ctl_sm *sm)
{
    size_t n = proto_rd_u8(r);
    if (r->bad || n > CTL_CONTROLLERS_MAX)
        return LSMQ_ECORRUPT;
    for (size_t i = 0; i < n; i++) {
        char id[CTL_ID_MAX + 1], addr[CTL_ADDR_MAX + 1];
        proto_rd_str16(r, id, CTL_ID_MAX);
        proto_rd_str16(r, addr, CTL_ADDR_MAX);
        if (r->bad || ctl_sm_load_controller(sm, id, addr) != 0)
            return LSMQ_ECORRUPT;
    }
    return 0;
}

int ctl_state_decode(const uint8_t *data, size_t len, ctl_sm **out)
{
    proto_reader r = {data, len, 0};
    if (proto_rd_u8(&r) != STATE_MAGIC)
        return LSMQ_ECORRUPT;
    uint8_t version = proto_rd_u8(&r);
    if (r.bad)
        return LSMQ_ECORRUPT;
    if (version > CTL_STATE_VERSION)
        return LSMQ_EVERSION;
    if (version < 1)
        return LSMQ_ECORRUPT;
    uint32_t n = proto_rd_u32(&r);
    ctl_sm *sm = ctl_sm_create();
    ctl_group *g = proto_xmalloc(sizeof(*g));
    int rc = r.bad ? LSMQ_ECORRUPT : 0;
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        if (!read_group(&r, g, version) || ctl_sm_load(sm, g) != 0)
            rc = LSMQ_ECORRUPT;
    }
    if (rc == 0 && version >= 2)
        rc = read_controllers(&r, sm);
    if (rc == 0 && r.left != 0)
        rc = LSMQ_ECORRUPT;
    free(g);
    if (rc != 0) {
        ctl_sm_destroy(sm);
        return rc;
    }
    *out = sm;
    return 0;
}
