/*
 * A read cursor over a bounded byte string, for the decoders of protocol/
 * (the stored record, the ROCKETMQ binary header) and of the libraries on
 * top of it (the controller's command and state). Once a read would
 * overrun, `bad` sticks and later reads return zeros (NULL for take, an
 * empty string for str16), so a decoder checks once, at the end of a step.
 * Integers are big-endian. Header-only.
 *
 *   proto_reader rd = {data, len, 0};
 *   uint32_t n = proto_rd_u32(&rd);
 *   ...
 *   if (rd.bad) return LSMQ_ECORRUPT;
 */
#ifndef LSMQ_PROTO_BYTE_READER_H
#define LSMQ_PROTO_BYTE_READER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "record.h"

typedef struct proto_reader {
    const uint8_t *p;
    size_t left;
    int bad;
} proto_reader;

static inline const uint8_t *proto_rd_take(proto_reader *rd, size_t n)
{
    const uint8_t *at;

    if (rd->bad || n > rd->left) {
        rd->bad = 1;
        return NULL;
    }
    at = rd->p;
    rd->p += n;
    rd->left -= n;
    return at;
}

static inline uint8_t proto_rd_u8(proto_reader *rd)
{
    const uint8_t *at = proto_rd_take(rd, 1);

    return at ? at[0] : 0;
}

static inline uint16_t proto_rd_u16(proto_reader *rd)
{
    const uint8_t *at = proto_rd_take(rd, 2);

    return at ? proto_get_u16(at) : 0;
}

static inline uint32_t proto_rd_u32(proto_reader *rd)
{
    const uint8_t *at = proto_rd_take(rd, 4);

    return at ? proto_get_u32(at) : 0;
}

static inline uint64_t proto_rd_u64(proto_reader *rd)
{
    const uint8_t *at = proto_rd_take(rd, 8);

    return at ? proto_get_u64(at) : 0;
}

/*
 * A string written by proto_buf_put_str16 (u16 length + bytes) into
 * out[max + 1], NUL-terminated. Empty, longer than max or holding a NUL
 * byte sets bad (out is then "").
 */
static inline void proto_rd_str16(proto_reader *rd, char *out, size_t max)
{
    uint16_t n = proto_rd_u16(rd);
    const uint8_t *at = NULL;

    if (n == 0 || n > max)
        rd->bad = 1;
    else
        at = proto_rd_take(rd, n);
    if (!at || memchr(at, 0, n)) {
        rd->bad = 1;
        out[0] = '\0';
        return;
    }
    memcpy(out, at, n);
    out[n] = '\0';
}

#endif
