/*
 * Unit tests for protocol/record.h and protocol/crc.c: the stored-message
 * record of REMOTING.md §4.1-4.3. Expected bytes are written out by hand from
 * the reference table, so these tests pin the wire layout, not just a round
 * trip. Decoder tests feed exact-size heap copies so that AddressSanitizer
 * catches any read past the length given.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "errors.h"
#include "props.h"
#include "record.h"

/* ------------------------------------------------------------------ */
/* Fixtures                                                            */
/* ------------------------------------------------------------------ */

static void host_v4(proto_host *h, uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint32_t port)
{
    memset(h, 0, sizeof *h);
    h->ip[0] = a;
    h->ip[1] = b;
    h->ip[2] = c;
    h->ip[3] = d;
    h->port = port;
}

/* 2001:db8::<last> */
static void host_v6(proto_host *h, uint8_t last, uint32_t port)
{
    memset(h, 0, sizeof *h);
    h->ip[0] = 0x20;
    h->ip[1] = 0x01;
    h->ip[2] = 0x0d;
    h->ip[3] = 0xb8;
    h->ip[15] = last;
    h->port = port;
    h->v6 = 1;
}

/* The record behind the hand-written byte vector below. */
static proto_record sample(void)
{
    proto_record r;

    memset(&r, 0, sizeof r);
    r.queue_id = 3;
    r.flag = 7;
    r.queue_offset = 0x0102030405060708LL;
    r.physical_offset = 0x1112131415161718LL;
    r.sys_flag = PROTO_SYSFLAG_MULTI_TAGS;
    r.born_timestamp = 0x0000018B2C3D4E5FLL;
    host_v4(&r.born_host, 10, 0, 0, 1, 54321);
    r.store_timestamp = 0x0000018B2C3D4E60LL;
    host_v4(&r.store_host, 192, 168, 1, 2, 10911);
    r.reconsume_times = 1;
    r.prepared_txn_offset = 0;
    r.body = (const uint8_t *)"hi";
    r.body_len = 2;
    r.topic = "T";
    r.topic_len = 1;
    r.props = "a\001b\002";
    r.props_len = 4;
    return r;
}

/* sample() encoded, field by field from the §4.1 table (v1 magic, IPv4 hosts). */
static const uint8_t sample_bytes[] = {
    /*  0 TOTALSIZE = 91 + 2 + 1 + 4 */ 0x00, 0x00, 0x00, 0x62,
    /*  4 MAGICCODE v1 */ 0xDA, 0xA3, 0x20, 0xA7,
    /*  8 BODYCRC: crc32("hi") = 0xD8932AAC, top bit cleared */ 0x58, 0x93, 0x2A, 0xAC,
    /* 12 QUEUEID */ 0x00, 0x00, 0x00, 0x03,
    /* 16 FLAG */ 0x00, 0x00, 0x00, 0x07,
    /* 20 QUEUEOFFSET */ 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
    /* 28 PHYSICALOFFSET */ 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,
    /* 36 SYSFLAG */ 0x00, 0x00, 0x00, 0x02,
    /* 40 BORNTIMESTAMP */ 0x00, 0x00, 0x01, 0x8B, 0x2C, 0x3D, 0x4E, 0x5F,
    /* 48 BORNHOST 10.0.0.1:54321 */ 10, 0, 0, 1, 0x00, 0x00, 0xD4, 0x31,
    /* 56 STORETIMESTAMP */ 0x00, 0x00, 0x01, 0x8B, 0x2C, 0x3D, 0x4E, 0x60,
    /* 64 STOREHOST 192.168.1.2:10911 */ 192, 168, 1, 2, 0x00, 0x00, 0x2A, 0x9F,
    /* 72 RECONSUMETIMES */ 0x00, 0x00, 0x00, 0x01,
    /* 76 PREPARED TXN OFFSET */ 0, 0, 0, 0, 0, 0, 0, 0,
    /* 84 BODY */ 0x00, 0x00, 0x00, 0x02, 'h', 'i',
    /* 90 TOPIC (1-byte length) */ 0x01, 'T',
    /* 92 PROPERTIES */ 0x00, 0x04, 'a', 0x01, 'b', 0x02,
};

/* Encode r into a fresh exact-size heap buffer; fails the test on error. */
static uint8_t *encode_alloc(proto_record *r, size_t *len)
{
    size_t n = proto_record_size(r);
    uint8_t *buf;
    long got;

    assert_true(n > 0);
    buf = malloc(n);
    assert_non_null(buf);
    got = proto_record_encode(r, buf, n);
    assert_int_equal(got, (long)n);
    *len = n;
    return buf;
}

/* Decode buf[0..len) from an exact-size copy, so overreads trip ASan. */
static long decode_exact(const uint8_t *buf, size_t len, proto_record *out)
{
    uint8_t *copy = malloc(len ? len : 1);
    long rc;

    assert_non_null(copy);
    if (len > 0)
        memcpy(copy, buf, len);
    rc = proto_record_decode(copy, len, out);
    free(copy);
    /* out's views pointed into copy; callers only look at the code. */
    return rc;
}

static void assert_host_equal(const proto_host *a, const proto_host *b)
{
    assert_int_equal(!!a->v6, !!b->v6);
    assert_memory_equal(a->ip, b->ip, a->v6 ? 16 : 4);
    assert_int_equal(a->port, b->port);
}

/* Every field of `got` (decoded) equals `want` (as encode left it). */
static void assert_record_equal(const proto_record *got, const proto_record *want)
{
    assert_int_equal(got->total_size, want->total_size);
    assert_int_equal(got->magic, want->magic);
    assert_int_equal(got->body_crc, want->body_crc);
    assert_int_equal(got->queue_id, want->queue_id);
    assert_int_equal(got->flag, want->flag);
    assert_true(got->queue_offset == want->queue_offset);
    assert_true(got->physical_offset == want->physical_offset);
    assert_int_equal(got->sys_flag, want->sys_flag);
    assert_true(got->born_timestamp == want->born_timestamp);
    assert_host_equal(&got->born_host, &want->born_host);
    assert_true(got->store_timestamp == want->store_timestamp);
    assert_host_equal(&got->store_host, &want->store_host);
    assert_int_equal(got->reconsume_times, want->reconsume_times);
    assert_true(got->prepared_txn_offset == want->prepared_txn_offset);
    assert_int_equal(got->body_len, want->body_len);
    if (want->body_len > 0)
        assert_memory_equal(got->body, want->body, want->body_len);
    assert_int_equal(got->topic_len, want->topic_len);
    assert_memory_equal(got->topic, want->topic, want->topic_len);
    assert_int_equal(got->props_len, want->props_len);
    if (want->props_len > 0)
        assert_memory_equal(got->props, want->props, want->props_len);
}

/* A topic of n bytes: "%RETRY%" then letters, as long retry topics look. */
static void fill_topic(char *t, size_t n)
{
    static const char prefix[] = "%RETRY%";
    for (size_t i = 0; i < n; i++)
        t[i] = i < sizeof prefix - 1 ? prefix[i] : (char)('a' + i % 26);
}

/* ------------------------------------------------------------------ */
/* Body CRC                                                            */
/* ------------------------------------------------------------------ */

static void test_crc_reference_example(void **state)
{
    assert_int_equal(proto_body_crc("Hello RocketMQ", 14), 1774740973u);
}

static void test_crc_clears_top_bit(void **state)
{
    /* The standard check value 0xCBF43926 has the top bit set. */
    assert_int_equal(proto_body_crc("123456789", 9), 0x4BF43926u);
    assert_int_equal(proto_body_crc("hi", 2), 0x58932AACu);
}

static void test_crc_empty(void **state)
{
    assert_int_equal(proto_body_crc("", 0), 0);
    assert_int_equal(proto_body_crc(NULL, 0), 0);
}

/* ------------------------------------------------------------------ */
/* Size and encode                                                     */
/* ------------------------------------------------------------------ */

static void test_size_v1_ipv4(void **state)
{
    proto_record r = sample();

    assert_int_equal(proto_record_size(&r), PROTO_RECORD_FIXED_V4 + 2 + 1 + 4);
    r.body_len = 0;
    r.props_len = 0;
    assert_int_equal(proto_record_size(&r), 91 + 1);
    r.topic_len = 127;
    r.body_len = 1000;
    r.props_len = 300;
    assert_int_equal(proto_record_size(&r), 91 + 127 + 1000 + 300);
}

static void test_size_v2_and_ipv6(void **state)
{
    proto_record r = sample();

    r.topic_len = 128; /* v2: one more length byte */
    assert_int_equal(proto_record_size(&r), 92 + 2 + 128 + 4);
    r.topic_len = 1;
    host_v6(&r.born_host, 1, 1);
    assert_int_equal(proto_record_size(&r), 103 + 2 + 1 + 4);
    host_v6(&r.store_host, 2, 2);
    assert_int_equal(proto_record_size(&r), 115 + 2 + 1 + 4);
}

static void test_size_limits(void **state)
{
    proto_record r = sample();

    r.topic_len = 0;
    assert_int_equal(proto_record_size(&r), 0);
    r.topic_len = PROTO_TOPIC_MAX;
    assert_int_equal(proto_record_size(&r), 92 + 2 + 255 + 4);
    r.topic_len = PROTO_TOPIC_MAX + 1;
    assert_int_equal(proto_record_size(&r), 0);

    r.topic_len = 1;
    r.props_len = PROTO_PROPS_MAX;
    assert_int_equal(proto_record_size(&r), 91 + 2 + 1 + 32767);
    r.props_len = PROTO_PROPS_MAX + 1;
    assert_int_equal(proto_record_size(&r), 0);

    /* TOTALSIZE is an int32: the largest body that still fits, and one more. */
    r.props_len = 0;
    r.body_len = INT32_MAX - 92;
    assert_int_equal(proto_record_size(&r), INT32_MAX);
    r.body_len = INT32_MAX - 91;
    assert_int_equal(proto_record_size(&r), 0);
    r.body_len = UINT32_MAX;
    assert_int_equal(proto_record_size(&r), 0);
}

static void test_encode_reference_bytes(void **state)
{
    proto_record r = sample();
    uint8_t buf[sizeof sample_bytes];

    assert_int_equal(proto_record_encode(&r, buf, sizeof buf), (long)sizeof sample_bytes);
    assert_memory_equal(buf, sample_bytes, sizeof sample_bytes);
    /* Derived fields are written back into r. */
    assert_int_equal(r.total_size, 98);
    assert_int_equal(r.magic, PROTO_MAGIC_V1);
    assert_int_equal(r.body_crc, 0x58932AACu);
    assert_int_equal(r.sys_flag, PROTO_SYSFLAG_MULTI_TAGS);
}

static void test_encode_field_offsets(void **state)
{
    proto_record r = sample();
    size_t n;
    uint8_t *buf;

    /* Negative and all-bits values land at the §4.1 offsets unchanged. */
    r.queue_id = -1;
    r.flag = INT32_MIN;
    r.queue_offset = -2;
    r.physical_offset = INT64_MAX;
    r.born_timestamp = INT64_MIN;
    r.store_timestamp = 1;
    r.reconsume_times = 16;
    r.prepared_txn_offset = 0x0A0B0C0D0E0F1011LL;
    buf = encode_alloc(&r, &n);

    assert_int_equal(proto_get_u32(buf + 0), n);
    assert_int_equal(proto_get_u32(buf + 4), 0xDAA320A7u);
    assert_int_equal(proto_get_u32(buf + 12), 0xFFFFFFFFu);
    assert_int_equal(proto_get_u32(buf + 16), 0x80000000u);
    assert_true(proto_get_u64(buf + 20) == 0xFFFFFFFFFFFFFFFEull);
    assert_true(proto_get_u64(buf + 28) == 0x7FFFFFFFFFFFFFFFull);
    assert_int_equal(proto_get_u32(buf + 36), PROTO_SYSFLAG_MULTI_TAGS);
    assert_true(proto_get_u64(buf + 40) == 0x8000000000000000ull);
    assert_int_equal(proto_get_u32(buf + 52), 54321);
    assert_true(proto_get_u64(buf + 56) == 1);
    assert_int_equal(proto_get_u32(buf + 68), 10911);
    assert_int_equal(proto_get_u32(buf + 72), 16);
    assert_true(proto_get_u64(buf + 76) == 0x0A0B0C0D0E0F1011ull);
    assert_int_equal(proto_get_u32(buf + 84), 2);
    assert_int_equal(buf[88 + 2], 1);
    free(buf);
}

static void test_encode_v2_topic_200(void **state)
{
    char topic[200];
    proto_record r = sample(), d;
    size_t n;
    uint8_t *buf;

    fill_topic(topic, sizeof topic);
    r.topic = topic;
    r.topic_len = sizeof topic;
    buf = encode_alloc(&r, &n);

    /* v2: same fixed part plus one byte for the int16 topic length. */
    assert_int_equal(n, 92 + 2 + 200 + 4);
    assert_int_equal(r.magic, PROTO_MAGIC_V2);
    assert_int_equal(proto_get_u32(buf + 4), 0xDAA320ABu);
    assert_int_equal(buf[90], 0x00);
    assert_int_equal(buf[91], 200);
    assert_memory_equal(buf + 92, topic, 200);
    assert_int_equal(buf[292], 0x00);
    assert_int_equal(buf[293], 4);
    assert_memory_equal(buf + 294, "a\001b\002", 4);

    assert_int_equal(proto_record_decode(buf, n, &d), (long)n);
    assert_record_equal(&d, &r);
    free(buf);
}

static void test_encode_magic_threshold(void **state)
{
    char topic[PROTO_TOPIC_MAX];
    proto_record r = sample();
    uint8_t buf[512];

    fill_topic(topic, sizeof topic);
    r.topic = topic;

    r.topic_len = PROTO_TOPIC_V1_MAX;
    assert_int_equal(proto_record_encode(&r, buf, sizeof buf), 91 + 2 + 127 + 4);
    assert_int_equal(r.magic, PROTO_MAGIC_V1);
    assert_int_equal(buf[90], 127);

    r.topic_len = PROTO_TOPIC_V1_MAX + 1;
    assert_int_equal(proto_record_encode(&r, buf, sizeof buf), 92 + 2 + 128 + 4);
    assert_int_equal(r.magic, PROTO_MAGIC_V2);
    assert_int_equal(buf[90], 0);
    assert_int_equal(buf[91], 128);

    r.topic_len = PROTO_TOPIC_MAX;
    assert_int_equal(proto_record_encode(&r, buf, sizeof buf), 92 + 2 + 255 + 4);
    assert_int_equal(r.magic, PROTO_MAGIC_V2);
}

static void test_encode_refuses_bad_topics(void **state)
{
    char topic[PROTO_TOPIC_MAX + 1];
    proto_record r = sample();
    uint8_t buf[512];

    fill_topic(topic, sizeof topic);
    r.topic = topic;
    r.topic_len = 0;
    assert_int_equal(proto_record_encode(&r, buf, sizeof buf), LSMQ_EINVAL);
    r.topic_len = PROTO_TOPIC_MAX + 1;
    assert_int_equal(proto_record_encode(&r, buf, sizeof buf), LSMQ_EINVAL);
    r.topic = NULL;
    r.topic_len = 1;
    assert_int_equal(proto_record_encode(&r, buf, sizeof buf), LSMQ_EINVAL);
}

static void test_encode_refuses_bad_views(void **state)
{
    proto_record r = sample();
    uint8_t buf[256];

    r.body = NULL;
    assert_int_equal(proto_record_encode(&r, buf, sizeof buf), LSMQ_EINVAL);
    r = sample();
    r.props = NULL;
    assert_int_equal(proto_record_encode(&r, buf, sizeof buf), LSMQ_EINVAL);
    r = sample();
    r.props_len = PROTO_PROPS_MAX + 1;
    assert_int_equal(proto_record_encode(&r, buf, sizeof buf), LSMQ_EINVAL);
    r = sample();
    r.body_len = UINT32_MAX;
    assert_int_equal(proto_record_encode(&r, buf, sizeof buf), LSMQ_EINVAL);
}

static void test_encode_cap_too_small(void **state)
{
    proto_record r = sample();
    uint8_t buf[sizeof sample_bytes];

    memset(buf, 0xEE, sizeof buf);
    assert_int_equal(proto_record_encode(&r, buf, sizeof buf - 1), LSMQ_ETOOBIG);
    assert_int_equal(proto_record_encode(&r, buf, 0), LSMQ_ETOOBIG);
    /* Nothing written on failure. */
    for (size_t i = 0; i < sizeof buf; i++)
        assert_int_equal(buf[i], 0xEE);
    assert_int_equal(proto_record_encode(&r, buf, sizeof buf), (long)sizeof buf);
}

static void test_encode_empty_body_and_props(void **state)
{
    proto_record r = sample(), d;
    uint8_t buf[128];

    r.body = NULL;
    r.body_len = 0;
    r.props = NULL;
    r.props_len = 0;
    assert_int_equal(proto_record_encode(&r, buf, sizeof buf), 92);
    assert_int_equal(r.body_crc, 0);
    assert_int_equal(proto_get_u32(buf + 84), 0);
    assert_int_equal(buf[88], 1);
    assert_int_equal(buf[89], 'T');
    assert_int_equal(buf[90], 0);
    assert_int_equal(buf[91], 0);

    assert_int_equal(proto_record_decode(buf, 92, &d), 92);
    assert_int_equal(d.body_len, 0);
    assert_int_equal(d.props_len, 0);
    assert_int_equal(proto_record_check_crc(&d), 0);
}

static void test_encode_sysflag_v6_bits(void **state)
{
    proto_record r = sample();
    uint8_t buf[256];
    const int32_t other = PROTO_SYSFLAG_COMPRESSED | PROTO_SYSFLAG_TXN_COMMIT | 0x300;

    /* Stale V6 bits with IPv4 hosts are cleared; other bits are kept. */
    r.sys_flag = other | PROTO_SYSFLAG_BORNHOST_V6 | PROTO_SYSFLAG_STOREHOST_V6;
    assert_true(proto_record_encode(&r, buf, sizeof buf) > 0);
    assert_int_equal(r.sys_flag, other);
    assert_int_equal(proto_get_u32(buf + 36), (uint32_t)other);

    host_v6(&r.born_host, 1, 1);
    assert_true(proto_record_encode(&r, buf, sizeof buf) > 0);
    assert_int_equal(r.sys_flag, other | PROTO_SYSFLAG_BORNHOST_V6);

    host_v4(&r.born_host, 1, 2, 3, 4, 5);
    host_v6(&r.store_host, 2, 2);
    assert_true(proto_record_encode(&r, buf, sizeof buf) > 0);
    assert_int_equal(r.sys_flag, other | PROTO_SYSFLAG_STOREHOST_V6);
    assert_int_equal(proto_get_u32(buf + 36), (uint32_t)(other | PROTO_SYSFLAG_STOREHOST_V6));
}

static void test_encode_ipv6_born_host(void **state)
{
    proto_record r = sample(), d;
    size_t n;
    uint8_t *buf;

    host_v6(&r.born_host, 0x42, 40000);
    buf = encode_alloc(&r, &n);
    assert_int_equal(n, 103 + 2 + 1 + 4);

    /* Born host: 16 address bytes + port; everything after moves by 12. */
    assert_memory_equal(buf + 48, r.born_host.ip, 16);
    assert_int_equal(proto_get_u32(buf + 64), 40000);
    assert_true(proto_get_u64(buf + 68) == (uint64_t)r.store_timestamp);
    assert_memory_equal(buf + 76, "\xc0\xa8\x01\x02", 4);
    assert_int_equal(proto_get_u32(buf + 80), 10911);
    assert_int_equal(proto_get_u32(buf + 84), 1);
    assert_int_equal(proto_get_u32(buf + 96), 2);

    assert_int_equal(proto_record_decode(buf, n, &d), (long)n);
    assert_record_equal(&d, &r);
    free(buf);
}

static void test_encode_ipv6_both_hosts(void **state)
{
    proto_record r = sample(), d;
    size_t n;
    uint8_t *buf;

    host_v6(&r.born_host, 0x01, 1111);
    host_v6(&r.store_host, 0x02, 2222);
    buf = encode_alloc(&r, &n);
    assert_int_equal(n, 115 + 2 + 1 + 4);
    assert_int_equal(proto_get_u32(buf + 36),
                     PROTO_SYSFLAG_MULTI_TAGS | PROTO_SYSFLAG_BORNHOST_V6 |
                         PROTO_SYSFLAG_STOREHOST_V6);
    assert_memory_equal(buf + 76, r.store_host.ip, 16);
    assert_int_equal(proto_get_u32(buf + 92), 2222);
    assert_int_equal(proto_get_u32(buf + 96), 1);  /* reconsume times */
    assert_int_equal(proto_get_u32(buf + 108), 2); /* body length */

    assert_int_equal(proto_record_decode(buf, n, &d), (long)n);
    assert_record_equal(&d, &r);
    free(buf);
}

static void test_encode_with_appended_props(void **state)
{
    char props[64];
    size_t used = 0;
    proto_record r = sample(), d;
    uint8_t buf[256];
    const char *v;
    size_t vlen;
    long n;

    assert_int_equal(proto_props_append(props, sizeof props, &used, "TAGS", 4, "TagA", 4), 0);
    assert_int_equal(proto_props_append(props, sizeof props, &used, "KEYS", 4, "k1", 2), 0);
    r.props = props;
    r.props_len = (uint32_t)used;
    n = proto_record_encode(&r, buf, sizeof buf);
    assert_int_equal(n, 91 + 2 + 1 + (long)used);
    assert_int_equal(proto_record_decode(buf, (size_t)n, &d), n);
    assert_int_equal(proto_props_get(d.props, d.props_len, "TAGS", &v, &vlen), 1);
    assert_int_equal(vlen, 4);
    assert_memory_equal(v, "TagA", 4);
}

/* ------------------------------------------------------------------ */
/* Decode                                                              */
/* ------------------------------------------------------------------ */

static void test_decode_reference_bytes(void **state)
{
    proto_record d, want = sample();
    uint8_t scratch[sizeof sample_bytes];

    assert_int_equal(decode_exact(sample_bytes, sizeof sample_bytes, &d),
                     (long)sizeof sample_bytes);
    assert_int_equal(proto_record_decode(sample_bytes, sizeof sample_bytes, &d),
                     (long)sizeof sample_bytes);
    proto_record_encode(&want, scratch, sizeof scratch); /* fills derived fields */
    assert_record_equal(&d, &want);
    /* Views point into the input. */
    assert_ptr_equal(d.body, sample_bytes + 88);
    assert_ptr_equal(d.topic, (const char *)sample_bytes + 91);
    assert_ptr_equal(d.props, (const char *)sample_bytes + 94);
    assert_int_equal(d.born_host.v6, 0);
    assert_int_equal(d.store_host.v6, 0);
}

static void test_decode_every_prefix_fails(void **state)
{
    char topic[200];
    proto_record variants[4], d;

    fill_topic(topic, sizeof topic);
    for (int i = 0; i < 4; i++)
        variants[i] = sample();
    variants[1].topic = topic; /* v2 */
    variants[1].topic_len = sizeof topic;
    host_v6(&variants[2].born_host, 9, 9);
    host_v6(&variants[3].born_host, 9, 9);
    host_v6(&variants[3].store_host, 8, 8);

    for (int i = 0; i < 4; i++) {
        size_t n;
        uint8_t *buf = encode_alloc(&variants[i], &n);

        for (size_t len = 0; len < n; len++)
            assert_int_equal(decode_exact(buf, len, &d), LSMQ_ECORRUPT);
        assert_int_equal(decode_exact(buf, n, &d), (long)n);
        free(buf);
    }
}

/* TOTALSIZE itself shortened or lengthened: the fields no longer fill it. */
static void test_decode_total_size_disagrees(void **state)
{
    uint8_t buf[sizeof sample_bytes + 8];
    proto_record d;
    const size_t n = sizeof sample_bytes;

    memcpy(buf, sample_bytes, n);
    memset(buf + n, 0, 8);

    /* Claims one byte less: the properties overrun it. */
    proto_put_u32(buf, (uint32_t)n - 1);
    assert_int_equal(decode_exact(buf, n, &d), LSMQ_ECORRUPT);
    /* Claims more than there is. */
    proto_put_u32(buf, (uint32_t)n + 1);
    assert_int_equal(decode_exact(buf, n, &d), LSMQ_ECORRUPT);
    /* Claims more and the bytes exist: a byte is left over inside the record. */
    assert_int_equal(decode_exact(buf, n + 1, &d), LSMQ_ECORRUPT);
    /* Absurd sizes. */
    for (uint32_t bad = 0; bad < 8; bad++) {
        proto_put_u32(buf, bad);
        assert_int_equal(decode_exact(buf, n, &d), LSMQ_ECORRUPT);
    }
    proto_put_u32(buf, 0x7FFFFFFFu);
    assert_int_equal(decode_exact(buf, n, &d), LSMQ_ECORRUPT);
    proto_put_u32(buf, 0x80000062u); /* negative as a Java int */
    assert_int_equal(decode_exact(buf, n, &d), LSMQ_ECORRUPT);
    proto_put_u32(buf, 0xFFFFFFFFu);
    assert_int_equal(decode_exact(buf, n, &d), LSMQ_ECORRUPT);
}

static void test_decode_bad_magic(void **state)
{
    static const uint32_t bad[] = {0, 0xCBD43194u /* commit-log blank */, 0xDAA320A8u,
                                   0xDAA320A6u, 0xA720A3DAu};
    uint8_t buf[sizeof sample_bytes];
    proto_record d;

    memcpy(buf, sample_bytes, sizeof buf);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        proto_put_u32(buf + 4, bad[i]);
        assert_int_equal(decode_exact(buf, sizeof buf, &d), LSMQ_ECORRUPT);
    }
}

static void test_decode_bad_lengths(void **state)
{
    uint8_t buf[sizeof sample_bytes];
    proto_record d;

#define RESET() memcpy(buf, sample_bytes, sizeof buf)
    /* Body length past the record, and negative as a Java int. */
    RESET();
    proto_put_u32(buf + 84, 3);
    assert_int_equal(decode_exact(buf, sizeof buf, &d), LSMQ_ECORRUPT);
    RESET();
    proto_put_u32(buf + 84, 1);
    assert_int_equal(decode_exact(buf, sizeof buf, &d), LSMQ_ECORRUPT);
    RESET();
    proto_put_u32(buf + 84, 0x80000000u);
    assert_int_equal(decode_exact(buf, sizeof buf, &d), LSMQ_ECORRUPT);
    RESET();
    proto_put_u32(buf + 84, 0xFFFFFFFFu);
    assert_int_equal(decode_exact(buf, sizeof buf, &d), LSMQ_ECORRUPT);

    /* Topic length: empty, overrunning, over 127 in a v1 record. */
    RESET();
    buf[90] = 0;
    assert_int_equal(decode_exact(buf, sizeof buf, &d), LSMQ_ECORRUPT);
    RESET();
    buf[90] = 2;
    assert_int_equal(decode_exact(buf, sizeof buf, &d), LSMQ_ECORRUPT);
    RESET();
    buf[90] = 0x80;
    assert_int_equal(decode_exact(buf, sizeof buf, &d), LSMQ_ECORRUPT);
    RESET();
    buf[90] = 0xFF;
    assert_int_equal(decode_exact(buf, sizeof buf, &d), LSMQ_ECORRUPT);

    /* Properties length: short, long, negative as a Java short. */
    RESET();
    buf[93] = 3;
    assert_int_equal(decode_exact(buf, sizeof buf, &d), LSMQ_ECORRUPT);
    RESET();
    buf[93] = 5;
    assert_int_equal(decode_exact(buf, sizeof buf, &d), LSMQ_ECORRUPT);
    RESET();
    buf[92] = 0x80;
    assert_int_equal(decode_exact(buf, sizeof buf, &d), LSMQ_ECORRUPT);

    /* V6 flags on IPv4 host bytes: the host fields no longer line up. */
    RESET();
    buf[39] |= PROTO_SYSFLAG_BORNHOST_V6;
    assert_int_equal(decode_exact(buf, sizeof buf, &d), LSMQ_ECORRUPT);
    RESET();
    buf[39] |= PROTO_SYSFLAG_STOREHOST_V6;
    assert_int_equal(decode_exact(buf, sizeof buf, &d), LSMQ_ECORRUPT);
#undef RESET
}

/*
 * Copy src[0..n) into out with `ins` inserted at `at`, and fix TOTALSIZE, so
 * a length field can then be changed to describe the new bytes exactly.
 */
static size_t splice_in(const uint8_t *src, size_t n, size_t at, uint8_t ins, uint8_t *out)
{
    memcpy(out, src, at);
    out[at] = ins;
    memcpy(out + at + 1, src + at, n - at);
    proto_put_u32(out, (uint32_t)n + 1);
    return n + 1;
}

/* A body grown by a byte, with its length field updated, still decodes. */
static void test_decode_splice_control(void **state)
{
    uint8_t buf[sizeof sample_bytes + 1];
    proto_record d;
    size_t n = splice_in(sample_bytes, sizeof sample_bytes, 90, '!', buf);

    proto_put_u32(buf + 84, 3);
    assert_int_equal(decode_exact(buf, n, &d), (long)n);
    assert_int_equal(proto_record_decode(buf, n, &d), (long)n);
    assert_int_equal(d.body_len, 3);
    assert_memory_equal(d.body, "hi!", 3);
    /* Without the length update the extra byte is left over. */
    proto_put_u32(buf + 84, 2);
    assert_int_equal(decode_exact(buf, n, &d), LSMQ_ECORRUPT);
}

/*
 * Lengths the encoder never writes, in records whose sizes are otherwise all
 * consistent: only the limit itself can reject them.
 */
static void test_decode_limits_in_consistent_records(void **state)
{
    char topic[PROTO_TOPIC_MAX];
    static char props[PROTO_PROPS_MAX];
    proto_record r = sample(), d;
    size_t n, m;
    uint8_t *good, *buf;

    fill_topic(topic, sizeof topic);
    memset(props, 'p', sizeof props);

    /* v1, 128-byte topic: Java reads the length byte as -128. */
    r.topic = topic;
    r.topic_len = PROTO_TOPIC_V1_MAX;
    good = encode_alloc(&r, &n);
    buf = malloc(n + 1);
    assert_non_null(buf);
    m = splice_in(good, n, 91 + 127, 'x', buf);
    buf[90] = 128;
    assert_int_equal(decode_exact(buf, m, &d), LSMQ_ECORRUPT);
    free(buf);
    free(good);

    /* Empty topic. */
    buf = malloc(sizeof sample_bytes - 1);
    assert_non_null(buf);
    memcpy(buf, sample_bytes, 91);
    memcpy(buf + 91, sample_bytes + 92, sizeof sample_bytes - 92);
    proto_put_u32(buf, sizeof sample_bytes - 1);
    buf[90] = 0;
    assert_int_equal(decode_exact(buf, sizeof sample_bytes - 1, &d), LSMQ_ECORRUPT);
    free(buf);

    /* v2, 256-byte topic. */
    r.topic_len = PROTO_TOPIC_MAX;
    good = encode_alloc(&r, &n);
    buf = malloc(n + 1);
    assert_non_null(buf);
    m = splice_in(good, n, 92 + 255, 'x', buf);
    buf[90] = 0x01;
    buf[91] = 0x00;
    assert_int_equal(decode_exact(buf, m, &d), LSMQ_ECORRUPT);
    free(buf);
    free(good);

    /* 32768 property bytes: a negative Java short. */
    r = sample();
    r.props = props;
    r.props_len = PROTO_PROPS_MAX;
    good = encode_alloc(&r, &n);
    assert_int_equal(decode_exact(good, n, &d), (long)n);
    buf = malloc(n + 1);
    assert_non_null(buf);
    m = splice_in(good, n, n, 'p', buf);
    buf[92] = 0x80;
    buf[93] = 0x00;
    assert_int_equal(decode_exact(buf, m, &d), LSMQ_ECORRUPT);
    free(buf);
    free(good);
}

/*
 * Rewrite a v1 record as v2 (int16 topic length). Java 5.x decodes v2 whatever
 * the topic length, so a short topic under v2 is still a good record.
 */
static size_t to_v2(const uint8_t *v1, size_t n, size_t topic_len_at, uint8_t *out)
{
    memcpy(out, v1, topic_len_at);
    out[topic_len_at] = 0;
    memcpy(out + topic_len_at + 1, v1 + topic_len_at, n - topic_len_at);
    proto_put_u32(out, (uint32_t)n + 1);
    proto_put_u32(out + 4, PROTO_MAGIC_V2);
    return n + 1;
}

static void test_decode_v2_short_topic(void **state)
{
    uint8_t buf[sizeof sample_bytes + 1];
    proto_record d;
    size_t n = to_v2(sample_bytes, sizeof sample_bytes, 90, buf);

    assert_int_equal(decode_exact(buf, n, &d), (long)n);
    assert_int_equal(proto_record_decode(buf, n, &d), (long)n);
    assert_int_equal(d.magic, PROTO_MAGIC_V2);
    assert_int_equal(d.topic_len, 1);
    assert_memory_equal(d.topic, "T", 1);
    assert_int_equal(d.props_len, 4);

    /* v2 lengths over PROTO_TOPIC_MAX, or zero, are refused. */
    buf[90] = 0x01;
    buf[91] = 0x00;
    assert_int_equal(decode_exact(buf, n, &d), LSMQ_ECORRUPT);
    buf[90] = 0x00;
    buf[91] = 0x00;
    assert_int_equal(decode_exact(buf, n, &d), LSMQ_ECORRUPT);
    buf[90] = 0xFF;
    buf[91] = 0xFF;
    assert_int_equal(decode_exact(buf, n, &d), LSMQ_ECORRUPT);
}

static void test_decode_ignores_bytes_after_record(void **state)
{
    uint8_t buf[2 * sizeof sample_bytes + 3];
    const size_t n = sizeof sample_bytes;
    proto_record d;
    size_t pos = 0, count = 0;
    long got;

    /* Two records then trailing junk, like a pull body walked record by record. */
    memcpy(buf, sample_bytes, n);
    memcpy(buf + n, sample_bytes, n);
    memset(buf + 2 * n, 0xAB, 3);
    while ((got = proto_record_decode(buf + pos, sizeof buf - pos, &d)) > 0) {
        assert_int_equal(got, (long)n);
        pos += (size_t)got;
        count++;
    }
    assert_int_equal(got, LSMQ_ECORRUPT);
    assert_int_equal(count, 2);
    assert_int_equal(pos, 2 * n);
}

/* Tiny deterministic generator so failures reproduce. */
static uint32_t next_rand(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

/*
 * Flip bytes anywhere in valid records: decode must either refuse or return a
 * size within the buffer, and never read outside it (ASan checks that).
 */
static void test_decode_mutations_stay_in_bounds(void **state)
{
    proto_record r[2] = {sample(), sample()}, d;
    uint32_t seed = 12345;

    host_v6(&r[1].born_host, 3, 3);
    host_v6(&r[1].store_host, 4, 4);
    for (int v = 0; v < 2; v++) {
        size_t n;
        uint8_t *good = encode_alloc(&r[v], &n);
        uint8_t *buf = malloc(n);

        assert_non_null(buf);
        for (size_t at = 0; at < n; at++) {
            for (int k = 0; k < 8; k++) {
                long got;

                memcpy(buf, good, n);
                buf[at] ^= (uint8_t)(k < 7 ? 1u << k : (next_rand(&seed) | 1));
                got = proto_record_decode(buf, n, &d);
                assert_true(got == LSMQ_ECORRUPT || (got > 0 && (size_t)got <= n));
                if (got > 0) {
                    assert_true(d.body_len <= n && d.topic_len <= n && d.props_len <= n);
                }
            }
        }
        /* Random garbage of every small length. */
        for (size_t len = 0; len < n; len++) {
            for (size_t i = 0; i < len; i++)
                buf[i] = (uint8_t)next_rand(&seed);
            if (len >= 8)
                proto_put_u32(buf + 4, PROTO_MAGIC_V1);
            long got = decode_exact(buf, len, &d);
            assert_true(got == LSMQ_ECORRUPT || (got > 0 && (size_t)got <= len));
        }
        free(buf);
        free(good);
    }
}

/* ------------------------------------------------------------------ */
/* CRC check                                                           */
/* ------------------------------------------------------------------ */

static void test_check_crc(void **state)
{
    uint8_t buf[sizeof sample_bytes];
    proto_record d;

    memcpy(buf, sample_bytes, sizeof buf);
    assert_int_equal(proto_record_decode(buf, sizeof buf, &d), (long)sizeof buf);
    assert_int_equal(proto_record_check_crc(&d), 0);

    /* A changed body byte still decodes, but the CRC no longer matches. */
    buf[88] = 'H';
    assert_int_equal(proto_record_decode(buf, sizeof buf, &d), (long)sizeof buf);
    assert_int_equal(proto_record_check_crc(&d), LSMQ_ECORRUPT);

    memcpy(buf, sample_bytes, sizeof buf);
    buf[11] ^= 1;
    assert_int_equal(proto_record_decode(buf, sizeof buf, &d), (long)sizeof buf);
    assert_int_equal(proto_record_check_crc(&d), LSMQ_ECORRUPT);
}

static void test_check_crc_on_encoded(void **state)
{
    proto_record r = sample();
    uint8_t buf[256];

    assert_true(proto_record_encode(&r, buf, sizeof buf) > 0);
    assert_int_equal(proto_record_check_crc(&r), 0);
    r.body = (const uint8_t *)"Hello RocketMQ";
    r.body_len = 14;
    r.body_crc = 1774740973u;
    assert_int_equal(proto_record_check_crc(&r), 0);
    r.body_crc |= 0x80000000u; /* the stored value never has the top bit */
    assert_int_equal(proto_record_check_crc(&r), LSMQ_ECORRUPT);
}

/* ------------------------------------------------------------------ */
/* Stamping                                                            */
/* ------------------------------------------------------------------ */

static void test_stamp_layout(void **state)
{
    proto_stamp_layout at = proto_record_stamp_layout(0);

    assert_int_equal(at.queue_offset_at, 20);
    assert_int_equal(at.physical_offset_at, 28);
    assert_int_equal(at.store_timestamp_at, 56);

    /* Only the born host precedes the store timestamp. */
    at = proto_record_stamp_layout(PROTO_SYSFLAG_BORNHOST_V6);
    assert_int_equal(at.queue_offset_at, 20);
    assert_int_equal(at.physical_offset_at, 28);
    assert_int_equal(at.store_timestamp_at, 56 + 12);

    at = proto_record_stamp_layout(PROTO_SYSFLAG_STOREHOST_V6);
    assert_int_equal(at.store_timestamp_at, 56);
    at = proto_record_stamp_layout(PROTO_SYSFLAG_BORNHOST_V6 | PROTO_SYSFLAG_STOREHOST_V6 |
                                   PROTO_SYSFLAG_COMPRESSED | PROTO_SYSFLAG_TXN_MASK);
    assert_int_equal(at.store_timestamp_at, 68);
}

/* Stamp an encoded record; only the 24 stamped bytes may change. */
static void check_stamp(proto_record *r)
{
    size_t n;
    uint8_t *buf = encode_alloc(r, &n);
    uint8_t *before = malloc(n);
    proto_stamp_layout at = proto_record_stamp_layout(r->sys_flag);
    proto_record d;

    assert_non_null(before);
    memcpy(before, buf, n);
    proto_record_stamp(buf, &at, 77, 0x00000001000000FFLL, 1700000000123LL);

    assert_int_equal(proto_record_decode(buf, n, &d), (long)n);
    assert_true(d.queue_offset == 77);
    assert_true(d.physical_offset == 0x00000001000000FFLL);
    assert_true(d.store_timestamp == 1700000000123LL);
    assert_true(d.born_timestamp == r->born_timestamp);
    assert_host_equal(&d.born_host, &r->born_host);
    assert_host_equal(&d.store_host, &r->store_host);
    assert_int_equal(proto_record_check_crc(&d), 0);

    for (size_t i = 0; i < n; i++) {
        int stamped = (i >= at.queue_offset_at && i < at.queue_offset_at + 8) ||
                      (i >= at.physical_offset_at && i < at.physical_offset_at + 8) ||
                      (i >= at.store_timestamp_at && i < at.store_timestamp_at + 8);
        if (!stamped)
            assert_int_equal(buf[i], before[i]);
    }
    free(before);
    free(buf);
}

static void test_stamp_ipv4(void **state)
{
    proto_record r = sample();
    uint8_t buf[sizeof sample_bytes];
    proto_stamp_layout at = proto_record_stamp_layout(0);

    check_stamp(&r);

    /* Against the reference bytes: store time lands at offset 56. */
    memcpy(buf, sample_bytes, sizeof buf);
    proto_record_stamp(buf, &at, -1, 0, 0x0102030405060708LL);
    assert_true(proto_get_u64(buf + 20) == UINT64_MAX);
    assert_true(proto_get_u64(buf + 28) == 0);
    assert_memory_equal(buf + 56, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    assert_memory_equal(buf + 64, sample_bytes + 64, sizeof buf - 64);
}

static void test_stamp_ipv6(void **state)
{
    proto_record r = sample();

    host_v6(&r.born_host, 1, 1);
    check_stamp(&r);
    r = sample();
    host_v6(&r.store_host, 2, 2);
    check_stamp(&r);
    host_v6(&r.born_host, 1, 1);
    check_stamp(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc_reference_example),
        cmocka_unit_test(test_crc_clears_top_bit),
        cmocka_unit_test(test_crc_empty),
        cmocka_unit_test(test_size_v1_ipv4),
        cmocka_unit_test(test_size_v2_and_ipv6),
        cmocka_unit_test(test_size_limits),
        cmocka_unit_test(test_encode_reference_bytes),
        cmocka_unit_test(test_encode_field_offsets),
        cmocka_unit_test(test_encode_v2_topic_200),
        cmocka_unit_test(test_encode_magic_threshold),
        cmocka_unit_test(test_encode_refuses_bad_topics),
        cmocka_unit_test(test_encode_refuses_bad_views),
        cmocka_unit_test(test_encode_cap_too_small),
        cmocka_unit_test(test_encode_empty_body_and_props),
        cmocka_unit_test(test_encode_sysflag_v6_bits),
        cmocka_unit_test(test_encode_ipv6_born_host),
        cmocka_unit_test(test_encode_ipv6_both_hosts),
        cmocka_unit_test(test_encode_with_appended_props),
        cmocka_unit_test(test_decode_reference_bytes),
        cmocka_unit_test(test_decode_every_prefix_fails),
        cmocka_unit_test(test_decode_total_size_disagrees),
        cmocka_unit_test(test_decode_bad_magic),
        cmocka_unit_test(test_decode_bad_lengths),
        cmocka_unit_test(test_decode_splice_control),
        cmocka_unit_test(test_decode_limits_in_consistent_records),
        cmocka_unit_test(test_decode_v2_short_topic),
        cmocka_unit_test(test_decode_ignores_bytes_after_record),
        cmocka_unit_test(test_decode_mutations_stay_in_bounds),
        cmocka_unit_test(test_check_crc),
        cmocka_unit_test(test_check_crc_on_encoded),
        cmocka_unit_test(test_stamp_layout),
        cmocka_unit_test(test_stamp_ipv4),
        cmocka_unit_test(test_stamp_ipv6),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
