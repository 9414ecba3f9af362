/*
 * Commands: building them (controller.h) and their encoding (codec.h).
 */
#include "codec.h"

#include <stdbool.h>
#include <string.h>

#include "buf.h"
#include "byte_reader.h"
#include "errors.h"

#define CMD_MAGIC 'C'

static int copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strnlen(src, cap) : 0;
    if (n == 0 || n >= cap)
        return LSMQ_EINVAL;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

static int cmd_init(ctl_cmd *c, ctl_cmd_type type, const char *name, int64_t id)
{
    memset(c, 0, sizeof(*c));
    c->type = type;
    c->broker_id = id;
    return copy_str(c->name, sizeof(c->name), name);
}

int ctl_cmd_register(ctl_cmd *c, const char *name, int64_t broker_id, const char *addr)
{
    int rc = cmd_init(c, CTL_CMD_REGISTER, name, broker_id);
    return rc ? rc : copy_str(c->addr, sizeof(c->addr), addr);
}

int ctl_cmd_elect(ctl_cmd *c, const char *name, int64_t candidate)
{
    return ctl_cmd_elect_at(c, name, candidate, CTL_ANY_EPOCH);
}

int ctl_cmd_elect_at(ctl_cmd *c, const char *name, int64_t candidate, uint64_t expect_epoch)
{
    int rc = cmd_init(c, CTL_CMD_ELECT, name, candidate);
    c->expect_epoch = expect_epoch;
    return rc;
}

int ctl_cmd_controller_addr(ctl_cmd *c, const char *controller_id, const char *addr)
{
    memset(c, 0, sizeof(*c));
    c->type = CTL_CMD_CONTROLLER_ADDR;
    int rc = copy_str(c->name, CTL_ID_MAX + 1, controller_id);
    return rc ? rc : copy_str(c->addr, sizeof(c->addr), addr);
}

int ctl_cmd_alter_sync(ctl_cmd *c, const char *name, int64_t master_id, uint64_t epoch,
                       const int64_t *ids, size_t n)
{
    int rc = cmd_init(c, CTL_CMD_ALTER_SYNC, name, master_id);
    if (rc)
        return rc;
    if (n > CTL_BROKERS_MAX)
        return LSMQ_EINVAL;
    c->epoch = epoch;
    c->n_sync = n;
    if (n)
        memcpy(c->sync, ids, n * sizeof(ids[0]));
    return 0;
}

static bool str_ok(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    return n > 0 && n < cap;
}

int ctl_cmd_check(const ctl_cmd *c)
{
    if (!str_ok(c->name, sizeof(c->name)))
        return LSMQ_EINVAL;
    switch (c->type) {
    case CTL_CMD_REGISTER: return str_ok(c->addr, sizeof(c->addr)) ? 0 : LSMQ_EINVAL;
    case CTL_CMD_ELECT: return 0;
    case CTL_CMD_ALTER_SYNC: return c->n_sync <= CTL_BROKERS_MAX ? 0 : LSMQ_EINVAL;
    case CTL_CMD_CONTROLLER_ADDR:
        return str_ok(c->name, CTL_ID_MAX + 1) && str_ok(c->addr, sizeof(c->addr)) ? 0
                                                                                   : LSMQ_EINVAL;
    }
    return LSMQ_EINVAL;
}

void ctl_cmd_encode(const ctl_cmd *c, uint8_t **data, size_t *len)
{
    proto_buf w = {0};
    proto_buf_put_u8(&w, CMD_MAGIC);
    proto_buf_put_u8(&w, CTL_CMD_VERSION);
    proto_buf_put_u8(&w, (uint8_t)c->type);
    proto_buf_put_str16(&w, c->name);
    proto_buf_put_u64(&w, (uint64_t)c->broker_id);
    switch (c->type) {
    case CTL_CMD_REGISTER:
    case CTL_CMD_CONTROLLER_ADDR:
        proto_buf_put_str16(&w, c->addr);
        break;
    case CTL_CMD_ELECT:
        proto_buf_put_u64(&w, c->expect_epoch);
        break;
    case CTL_CMD_ALTER_SYNC:
        proto_buf_put_u64(&w, c->epoch);
        proto_buf_put_u8(&w, (uint8_t)c->n_sync);
        for (size_t i = 0; i < c->n_sync; i++)
            proto_buf_put_u64(&w, (uint64_t)c->sync[i]);
        break;
    }
    static const uint8_t zeros[8];
    if (w.len % 8)
        proto_buf_put(&w, zeros, 8 - w.len % 8);
    *len = w.len;
    *data = (uint8_t *)proto_buf_take(&w);
}

int ctl_cmd_decode(const uint8_t *data, size_t len, ctl_cmd *c)
{
    proto_reader r = {data, len, 0};
    memset(c, 0, sizeof(*c));
    if (proto_rd_u8(&r) != CMD_MAGIC)
        return LSMQ_ECORRUPT;
    uint8_t version = proto_rd_u8(&r);
    if (r.bad)
        return LSMQ_ECORRUPT;
    if (version > CTL_CMD_VERSION)
        return LSMQ_EVERSION;
    if (version < 1)
        return LSMQ_ECORRUPT;
    uint8_t type = proto_rd_u8(&r);
    proto_rd_str16(&r, c->name, CTL_NAME_MAX);
    c->broker_id = (int64_t)proto_rd_u64(&r);
    switch (type) {
    case CTL_CMD_REGISTER:
        c->type = CTL_CMD_REGISTER;
        proto_rd_str16(&r, c->addr, CTL_ADDR_MAX);
        break;
    case CTL_CMD_ELECT:
        c->type = CTL_CMD_ELECT;
        /* Version 1 elections compared no epoch. */
        c->expect_epoch = version >= 2 ? proto_rd_u64(&r) : CTL_ANY_EPOCH;
        break;
    case CTL_CMD_CONTROLLER_ADDR:
        if (version < 2)
            return LSMQ_ECORRUPT;
        c->type = CTL_CMD_CONTROLLER_ADDR;
        proto_rd_str16(&r, c->addr, CTL_ADDR_MAX);
        if (!r.bad && strlen(c->name) > CTL_ID_MAX)
            return LSMQ_ECORRUPT;
        break;
    case CTL_CMD_ALTER_SYNC:
        c->type = CTL_CMD_ALTER_SYNC;
        c->epoch = proto_rd_u64(&r);
        c->n_sync = proto_rd_u8(&r);
        if (c->n_sync > CTL_BROKERS_MAX)
            return LSMQ_ECORRUPT;
        for (size_t i = 0; i < c->n_sync; i++)
            c->sync[i] = (int64_t)proto_rd_u64(&r);
        break;
    default:
        return LSMQ_ECORRUPT;
    }
    if (r.bad || r.left >= 8 || len % 8 != 0)
        return LSMQ_ECORRUPT;
    for (const uint8_t *pad = proto_rd_take(&r, r.left); pad && pad < data + len; pad++)
        if (*pad)
            return LSMQ_ECORRUPT;
    return 0;
}
