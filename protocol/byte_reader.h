/*
 * A read cursor over a bounded byte string, for protocol's decoders (the
 * stored record, the ROCKETMQ binary header). Once a read would overrun,
 * `bad` sticks and later reads return zeros (NULL for take), so a decoder
 * checks once, at the end of a step. Integers are big-endian.
 * Internal to protocol/; header-only.
 */
#ifndef LSMQ_PROTO_BYTE_READER_H
#define LSMQ_PROTO_BYTE_READER_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"

typedef struct byte_reader {
    const uint8_t *p;
    size_t left;
    int bad;
} byte_reader;

static inline const uint8_t *br_take(byte_reader *rd, size_t n)
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

static inline uint8_t br_u8(byte_reader *rd)
{
    const uint8_t *at = br_take(rd, 1);

    return at ? at[0] : 0;
}

static inline uint16_t br_u16(byte_reader *rd)
{
    const uint8_t *at = br_take(rd, 2);

    return at ? (uint16_t)(at[0] << 8 | at[1]) : 0;
}

static inline uint32_t br_u32(byte_reader *rd)
{
    const uint8_t *at = br_take(rd, 4);

    return at ? proto_get_u32(at) : 0;
}

static inline uint64_t br_u64(byte_reader *rd)
{
    const uint8_t *at = br_take(rd, 8);

    return at ? proto_get_u64(at) : 0;
}

#endif
