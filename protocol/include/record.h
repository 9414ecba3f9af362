/*
 * The stored-message record: RocketMQ's commit-log / pull-body layout
 * (shared/protocol/REMOTING.md §4.1-4.3). Pure codec, no I/O.
 *
 * Layout (big-endian integers), v1 magic and IPv4 hosts:
 *   0 TOTALSIZE i32 | 4 MAGIC i32 | 8 BODYCRC i32 | 12 QUEUEID i32 | 16 FLAG i32
 *  20 QUEUEOFFSET i64 | 28 PHYSICALOFFSET i64 | 36 SYSFLAG i32
 *  40 BORNTIMESTAMP i64 | 48 BORNHOST (4+4 or 16+4) | STORETIMESTAMP i64
 *   | STOREHOST (4+4 or 16+4) | RECONSUMETIMES i32 | PREPARED_TXN_OFFSET i64
 *   | BODY (i32 len + bytes) | TOPIC (v1: u8 len, v2: i16 len) + bytes
 *   | PROPERTIES (i16 len + bytes)
 * Host widths follow SYSFLAG bits 0x10 (born) and 0x20 (store).
 *
 * Ownership: decoded records point into the caller's buffer (no copies);
 * they are valid as long as that buffer is.
 */
#ifndef LSMQ_PROTO_RECORD_H
#define LSMQ_PROTO_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_MAGIC_V1 0xDAA320A7u
#define PROTO_MAGIC_V2 0xDAA320ABu

/* MessageSysFlag bits (REMOTING.md §4.2). */
#define PROTO_SYSFLAG_COMPRESSED 0x001
#define PROTO_SYSFLAG_MULTI_TAGS 0x002
#define PROTO_SYSFLAG_TXN_MASK 0x00C
#define PROTO_SYSFLAG_TXN_PREPARED 0x004
#define PROTO_SYSFLAG_TXN_COMMIT 0x008
#define PROTO_SYSFLAG_TXN_ROLLBACK 0x00C
#define PROTO_SYSFLAG_BORNHOST_V6 0x010
#define PROTO_SYSFLAG_STOREHOST_V6 0x020

/* Topics up to this length use v1 (1-byte length); longer ones v2. */
#define PROTO_TOPIC_V1_MAX 127
#define PROTO_TOPIC_MAX 255
#define PROTO_PROPS_MAX 32767

/* Fixed part of a v1 record with IPv4 hosts: TOTALSIZE = 91 + body + topic + props. */
#define PROTO_RECORD_FIXED_V4 91

typedef struct proto_host {
    uint8_t ip[16];   /* 4 bytes used for IPv4 */
    uint32_t port;
    int v6;           /* nonzero: 16-byte address */
} proto_host;

/* One record's fields. Pointers are views; lengths are in bytes. */
typedef struct proto_record {
    uint32_t total_size;       /* set by encode, read by decode */
    uint32_t magic;            /* set by encode (v1 unless the topic needs v2) */
    uint32_t body_crc;         /* set by encode from body; read by decode */
    int32_t queue_id;
    int32_t flag;
    int64_t queue_offset;
    int64_t physical_offset;
    int32_t sys_flag;          /* encode sets/clears the two V6 bits from the hosts */
    int64_t born_timestamp;
    proto_host born_host;
    int64_t store_timestamp;
    proto_host store_host;
    int32_t reconsume_times;
    int64_t prepared_txn_offset;
    const uint8_t *body;
    uint32_t body_len;
    const char *topic;
    uint32_t topic_len;
    const char *props;
    uint32_t props_len;
} proto_record;

/* Where the fields the store stamps at append time lie inside one encoded record. */
typedef struct proto_stamp_layout {
    uint32_t queue_offset_at;
    uint32_t physical_offset_at;
    uint32_t store_timestamp_at;
} proto_stamp_layout;

/* CRC-32 (IEEE) of the body with the top bit cleared (REMOTING.md §4.3). */
uint32_t proto_body_crc(const void *body, size_t len);

/*
 * Encoded size of r, or 0 if it cannot be encoded (topic empty or over
 * PROTO_TOPIC_MAX, props over PROTO_PROPS_MAX, total over INT32_MAX).
 */
size_t proto_record_size(const proto_record *r);

/*
 * Encode r into buf (cap bytes). Computes magic, body CRC and total size and
 * writes them back into r. Returns the encoded size (> 0), or LSMQ_EINVAL
 * (unencodable fields) / LSMQ_ETOOBIG (cap too small) as a negative int.
 */
long proto_record_encode(proto_record *r, uint8_t *buf, size_t cap);

/*
 * Decode the record at the start of buf[0..len). Fills out with views into
 * buf. Returns the record's size (its TOTALSIZE), or LSMQ_ECORRUPT if the
 * bytes there are not one whole well-formed record: bad magic, TOTALSIZE past
 * len, a field that overruns TOTALSIZE, fields that do not fill it exactly,
 * an empty topic, a v1 topic over 127 bytes or a v2 one over PROTO_TOPIC_MAX,
 * negative Java lengths. Bytes after the record (the next record of a pull
 * body, say) are not read. Does not check the body CRC; see
 * proto_record_check_crc. On failure out's contents are unspecified.
 */
long proto_record_decode(const uint8_t *buf, size_t len, proto_record *out);

/* 0 if r->body_crc matches the body, LSMQ_ECORRUPT otherwise. */
int proto_record_check_crc(const proto_record *r);

/* Offsets of the stamped fields in an encoded record with this sys_flag. */
proto_stamp_layout proto_record_stamp_layout(int32_t sys_flag);

/* Write queue offset, physical offset and store time into an encoded record. */
void proto_record_stamp(uint8_t *rec, const proto_stamp_layout *at, int64_t queue_offset,
                        int64_t physical_offset, int64_t store_timestamp);

/* Big-endian helpers used by the codecs and the store's key encodings. */
static inline void proto_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v;
}
static inline void proto_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void proto_put_u64(uint8_t *p, uint64_t v)
{
    proto_put_u32(p, (uint32_t)(v >> 32));
    proto_put_u32(p + 4, (uint32_t)v);
}
static inline uint16_t proto_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}
static inline uint32_t proto_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t proto_get_u64(const uint8_t *p)
{
    return (uint64_t)proto_get_u32(p) << 32 | proto_get_u32(p + 4);
}

#endif
