/*
 * RocksDB's WriteBatch format, read back: a replica learns what a shipped
 * batch of its master changes (topics, high-water marks, removed ranges)
 * from its bytes, and refuses one it could not apply faithfully.
 *
 * A batch is a 12-byte header (sequence u64, count u32, both
 * little-endian) and `count` records, each a tag byte and its fields;
 * integers in fields are varint32 and strings are varint32-length-prefixed.
 * The engine writes only to its named families (never RocksDB's default),
 * so only three tags occur: put (0x05: family, key, value), delete (0x04:
 * family, key) and delete-range (0x0E: family, begin, end). Any other tag
 * (merges, single deletes, transactions, wide columns, the default
 * family's records) is an error: nothing the engine wrote.
 */
#include <stdio.h>

#include "internal.h"

enum {
    TAG_CF_DELETION = 0x04,
    TAG_CF_VALUE = 0x05,
    TAG_CF_RANGE_DELETION = 0x0E,
};

typedef struct cursor {
    const uint8_t *p;
    const uint8_t *end;
} cursor;

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t engine__batch_count(const uint8_t *data) { return get_le32(data + 8); }

/* A varint32: seven bits a byte, low first; false when cut short or too long. */
static bool read_varint32(cursor *c, uint32_t *out)
{
    uint32_t v = 0;
    for (int shift = 0; shift <= 28 && c->p < c->end; shift += 7) {
        uint8_t byte = *c->p++;
        v |= (uint32_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

static bool read_slice(cursor *c, const uint8_t **s, size_t *len)
{
    uint32_t n;
    if (!read_varint32(c, &n) || (size_t)(c->end - c->p) < n)
        return false;
    *s = c->p;
    *len = n;
    c->p += n;
    return true;
}

int engine__batch_walk(const engine *e, const uint8_t *data, size_t len,
                       int (*fn)(void *ctx, const batch_op *op), void *ctx, char *errbuf,
                       size_t errlen)
{
    if (len < WRITEBATCH_HEADER_LEN) {
        engine__fail(errbuf, errlen, "a batch of %zu bytes is shorter than its header", len);
        return LSMQ_ECORRUPT;
    }
    uint32_t count = engine__batch_count(data);
    cursor c = {data + WRITEBATCH_HEADER_LEN, data + len};
    uint32_t seen = 0;
    while (c.p < c.end) {
        size_t at = (size_t)(c.p - data);
        uint8_t tag = *c.p++;
        batch_op op = {0};
        uint32_t cf_id;
        bool ok = read_varint32(&c, &cf_id);
        switch (tag) {
        case TAG_CF_VALUE:
            op.kind = BATCH_PUT;
            ok = ok && read_slice(&c, &op.key, &op.klen) && read_slice(&c, &op.val, &op.vlen);
            break;
        case TAG_CF_DELETION:
            op.kind = BATCH_DELETE;
            ok = ok && read_slice(&c, &op.key, &op.klen);
            break;
        case TAG_CF_RANGE_DELETION:
            op.kind = BATCH_DELETE_RANGE;
            ok = ok && read_slice(&c, &op.key, &op.klen) && read_slice(&c, &op.val, &op.vlen);
            break;
        default:
            engine__fail(errbuf, errlen, "record %u (byte %zu) has tag 0x%02x, which the engine "
                         "never writes", seen, at, tag);
            return LSMQ_ECORRUPT;
        }
        if (!ok) {
            engine__fail(errbuf, errlen, "record %u (byte %zu) is cut short", seen, at);
            return LSMQ_ECORRUPT;
        }
        int cf = engine__family_by_id(e, cf_id);
        if (cf < 0) {
            engine__fail(errbuf, errlen, "record %u names column family id %u, which this store "
                         "does not have", seen, cf_id);
            return LSMQ_ECORRUPT;
        }
        op.cf = (engine_cf)cf;
        seen++;
        int rc = fn ? fn(ctx, &op) : 0;
        if (rc != 0)
            return rc;
    }
    if (seen != count) {
        engine__fail(errbuf, errlen, "the header counts %u records, the batch holds %u", count,
                     seen);
        return LSMQ_ECORRUPT;
    }
    return 0;
}
