/*
 * Encoder and strict decoder for the stored-message record (REMOTING.md §4.1),
 * plus the stamp helpers the store uses to fill in queue offset, log position
 * and store time after a record has been encoded.
 *
 * The encoder sizes the record first, so its writer needs no bounds checks.
 * The decoder reads through a cursor that refuses to move past the record's
 * own TOTALSIZE: any field that would overrun marks the cursor bad, and the
 * record is rejected once at the end. Nothing here allocates or does I/O.
 */
#include "record.h"

#include <string.h>

#include "byte_reader.h"
#include "errors.h"

/* Offsets of the fields that precede the born host; they never move. */
enum {
    OFF_TOTAL_SIZE = 0,
    OFF_MAGIC = 4,
    OFF_BODY_CRC = 8,
    OFF_QUEUE_ID = 12,
    OFF_FLAG = 16,
    OFF_QUEUE_OFFSET = 20,
    OFF_PHYSICAL_OFFSET = 28,
    OFF_SYS_FLAG = 36,
    OFF_BORN_TIMESTAMP = 40,
    OFF_BORN_HOST = 48,
};

#define HOST_V4_BYTES 4
#define HOST_V6_BYTES 16
/* An IPv6 host field is this much longer than an IPv4 one. */
#define HOST_V6_EXTRA (HOST_V6_BYTES - HOST_V4_BYTES)

static size_t host_addr_bytes(int v6)
{
    return v6 ? HOST_V6_BYTES : HOST_V4_BYTES;
}

static int topic_needs_v2(uint32_t topic_len)
{
    return topic_len > PROTO_TOPIC_V1_MAX;
}

/* ------------------------------------------------------------------ */
/* Size and encode                                                     */
/* ------------------------------------------------------------------ */

size_t proto_record_size(const proto_record *r)
{
    uint64_t n;

    if (r->topic_len == 0 || r->topic_len > PROTO_TOPIC_MAX)
        return 0;
    if (r->props_len > PROTO_PROPS_MAX)
        return 0;

    /* 64-bit sum: body_len alone may be near UINT32_MAX. */
    n = PROTO_RECORD_FIXED_V4;
    n += r->born_host.v6 ? HOST_V6_EXTRA : 0;
    n += r->store_host.v6 ? HOST_V6_EXTRA : 0;
    n += topic_needs_v2(r->topic_len) ? 1 : 0; /* v2 topic length is 2 bytes */
    n += (uint64_t)r->body_len + r->topic_len + r->props_len;
    if (n > INT32_MAX)
        return 0; /* TOTALSIZE is a Java int */
    return (size_t)n;
}

/* Write cursor over a buffer already known to be large enough. */
typedef struct writer {
    uint8_t *p;
} writer;

static void put_u8(writer *w, uint8_t v)
{
    *w->p++ = v;
}

static void put_u16(writer *w, uint16_t v)
{
    proto_put_u16(w->p, v);
    w->p += 2;
}

static void put_u32(writer *w, uint32_t v)
{
    proto_put_u32(w->p, v);
    w->p += 4;
}

static void put_u64(writer *w, uint64_t v)
{
    proto_put_u64(w->p, v);
    w->p += 8;
}

static void put_bytes(writer *w, const void *src, size_t n)
{
    /* memcpy with a NULL source is undefined even for n == 0. */
    if (n > 0)
        memcpy(w->p, src, n);
    w->p += n;
}

static void put_host(writer *w, const proto_host *h)
{
    put_bytes(w, h->ip, host_addr_bytes(h->v6));
    put_u32(w, h->port);
}

/* The view pointers must be usable for the lengths the caller gave. */
static int views_valid(const proto_record *r)
{
    if (r->topic == NULL)
        return 0;
    if (r->body == NULL && r->body_len > 0)
        return 0;
    if (r->props == NULL && r->props_len > 0)
        return 0;
    return 1;
}

/* Derive the fields encode owns: host flags, magic, CRC and total size. */
static void fill_derived(proto_record *r, size_t size)
{
    r->sys_flag &= ~(PROTO_SYSFLAG_BORNHOST_V6 | PROTO_SYSFLAG_STOREHOST_V6);
    if (r->born_host.v6)
        r->sys_flag |= PROTO_SYSFLAG_BORNHOST_V6;
    if (r->store_host.v6)
        r->sys_flag |= PROTO_SYSFLAG_STOREHOST_V6;
    r->magic = topic_needs_v2(r->topic_len) ? PROTO_MAGIC_V2 : PROTO_MAGIC_V1;
    r->body_crc = proto_body_crc(r->body, r->body_len);
    r->total_size = (uint32_t)size;
}

long proto_record_encode(proto_record *r, uint8_t *buf, size_t cap)
{
    size_t size = proto_record_size(r);
    writer w = {buf};

    if (size == 0 || !views_valid(r))
        return LSMQ_EINVAL;
    if (cap < size)
        return LSMQ_ETOOBIG;
    fill_derived(r, size);

    put_u32(&w, r->total_size);
    put_u32(&w, r->magic);
    put_u32(&w, r->body_crc);
    put_u32(&w, (uint32_t)r->queue_id);
    put_u32(&w, (uint32_t)r->flag);
    put_u64(&w, (uint64_t)r->queue_offset);
    put_u64(&w, (uint64_t)r->physical_offset);
    put_u32(&w, (uint32_t)r->sys_flag);
    put_u64(&w, (uint64_t)r->born_timestamp);
    put_host(&w, &r->born_host);
    put_u64(&w, (uint64_t)r->store_timestamp);
    put_host(&w, &r->store_host);
    put_u32(&w, (uint32_t)r->reconsume_times);
    put_u64(&w, (uint64_t)r->prepared_txn_offset);
    put_u32(&w, r->body_len);
    put_bytes(&w, r->body, r->body_len);
    if (r->magic == PROTO_MAGIC_V2)
        put_u16(&w, (uint16_t)r->topic_len);
    else
        put_u8(&w, (uint8_t)r->topic_len);
    put_bytes(&w, r->topic, r->topic_len);
    put_u16(&w, (uint16_t)r->props_len);
    put_bytes(&w, r->props, r->props_len);

    return (long)size;
}

/* ------------------------------------------------------------------ */
/* Decode                                                              */
/* ------------------------------------------------------------------ */

static void get_host(proto_reader *rd, int v6, proto_host *h)
{
    size_t n = host_addr_bytes(v6);
    const uint8_t *at = proto_rd_take(rd, n);

    memset(h, 0, sizeof *h);
    h->v6 = v6;
    if (at)
        memcpy(h->ip, at, n);
    h->port = proto_rd_u32(rd);
}

/*
 * Topic length: v1 stores one byte that Java reads signed, so only 0..127
 * decode there; v2 stores an int16, and we accept no more than the encoder
 * can write. An empty topic is never valid.
 */
static void get_topic(proto_reader *rd, uint32_t magic, proto_record *out)
{
    uint32_t n;

    if (magic == PROTO_MAGIC_V2) {
        n = proto_rd_u16(rd);
        if (n > PROTO_TOPIC_MAX)
            rd->bad = 1;
    } else {
        n = proto_rd_u8(rd);
        if (n > PROTO_TOPIC_V1_MAX)
            rd->bad = 1;
    }
    if (n == 0)
        rd->bad = 1;
    out->topic_len = n;
    out->topic = (const char *)proto_rd_take(rd, n);
}

static void get_props(proto_reader *rd, proto_record *out)
{
    uint32_t n = proto_rd_u16(rd);

    if (n > PROTO_PROPS_MAX) /* a negative Java short */
        rd->bad = 1;
    out->props_len = n;
    out->props = (const char *)proto_rd_take(rd, n);
}

/* Everything after TOTALSIZE and MAGIC, in wire order. */
static void get_fields(proto_reader *rd, proto_record *out)
{
    out->body_crc = proto_rd_u32(rd);
    out->queue_id = (int32_t)proto_rd_u32(rd);
    out->flag = (int32_t)proto_rd_u32(rd);
    out->queue_offset = (int64_t)proto_rd_u64(rd);
    out->physical_offset = (int64_t)proto_rd_u64(rd);
    out->sys_flag = (int32_t)proto_rd_u32(rd);
    out->born_timestamp = (int64_t)proto_rd_u64(rd);
    get_host(rd, (out->sys_flag & PROTO_SYSFLAG_BORNHOST_V6) != 0, &out->born_host);
    out->store_timestamp = (int64_t)proto_rd_u64(rd);
    get_host(rd, (out->sys_flag & PROTO_SYSFLAG_STOREHOST_V6) != 0, &out->store_host);
    out->reconsume_times = (int32_t)proto_rd_u32(rd);
    out->prepared_txn_offset = (int64_t)proto_rd_u64(rd);
    /* A negative Java int here cannot fit: TOTALSIZE is at most INT32_MAX. */
    out->body_len = proto_rd_u32(rd);
    out->body = proto_rd_take(rd, out->body_len);
    get_topic(rd, out->magic, out);
    get_props(rd, out);
}

long proto_record_decode(const uint8_t *buf, size_t len, proto_record *out)
{
    proto_reader rd;

    memset(out, 0, sizeof *out);
    if (len < 8)
        return LSMQ_ECORRUPT;
    out->total_size = proto_get_u32(buf + OFF_TOTAL_SIZE);
    out->magic = proto_get_u32(buf + OFF_MAGIC);
    if (out->total_size > INT32_MAX || out->total_size > len || out->total_size < 8)
        return LSMQ_ECORRUPT;
    if (out->magic != PROTO_MAGIC_V1 && out->magic != PROTO_MAGIC_V2)
        return LSMQ_ECORRUPT;

    /* Bound the cursor by TOTALSIZE, not len: bytes after the record are not ours. */
    rd.p = buf + 8;
    rd.left = out->total_size - 8;
    rd.bad = 0;
    get_fields(&rd, out);

    /* Every field must fit, and together they must fill the record exactly. */
    if (rd.bad || rd.left != 0)
        return LSMQ_ECORRUPT;
    return (long)out->total_size;
}

int proto_record_check_crc(const proto_record *r)
{
    if (r->body == NULL && r->body_len > 0)
        return LSMQ_ECORRUPT;
    return proto_body_crc(r->body, r->body_len) == r->body_crc ? 0 : LSMQ_ECORRUPT;
}

/* ------------------------------------------------------------------ */
/* Stamping                                                            */
/* ------------------------------------------------------------------ */

/*
 * Queue and physical offsets sit before any host field; the store timestamp
 * follows the born host, so it moves when that host is IPv6.
 */
proto_stamp_layout proto_record_stamp_layout(int32_t sys_flag)
{
    proto_stamp_layout at;
    int born_v6 = (sys_flag & PROTO_SYSFLAG_BORNHOST_V6) != 0;

    at.queue_offset_at = OFF_QUEUE_OFFSET;
    at.physical_offset_at = OFF_PHYSICAL_OFFSET;
    at.store_timestamp_at = (uint32_t)(OFF_BORN_HOST + host_addr_bytes(born_v6) + 4);
    return at;
}

void proto_record_stamp(uint8_t *rec, const proto_stamp_layout *at, int64_t queue_offset,
                        int64_t physical_offset, int64_t store_timestamp)
{
    proto_put_u64(rec + at->queue_offset_at, (uint64_t)queue_offset);
    proto_put_u64(rec + at->physical_offset_at, (uint64_t)physical_offset);
    proto_put_u64(rec + at->store_timestamp_at, (uint64_t)store_timestamp);
}
