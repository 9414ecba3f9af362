/*
 * Unit tests for protocol/message_id.h: offset message ids, client unique
 * ids, Java String.hashCode tag hashes (including how Java decodes bad
 * UTF-8) and the SEND_BATCH_MESSAGE entry layout (REMOTING.md §4.7-4.10).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "message_id.h"
#include "clock.h"

/* An exact-size heap copy of p[0..n), so ASan sees overreads. */
static uint8_t *dup_bytes(const void *p, size_t n)
{
    uint8_t *c = malloc(n ? n : 1);

    assert_non_null(c);
    if (n > 0)
        memcpy(c, p, n);
    return c;
}

/* ------------------------------------------------------------------ */
/* Offset message id                                                   */
/* ------------------------------------------------------------------ */

static proto_host host4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint32_t port)
{
    proto_host h;

    memset(&h, 0, sizeof h);
    h.ip[0] = a;
    h.ip[1] = b;
    h.ip[2] = c;
    h.ip[3] = d;
    h.port = port;
    return h;
}

/* §4.8: 10.0.0.5:10911 at offset 4096. */
static void test_msgid_example(void **state)
{
    proto_host h = host4(10, 0, 0, 5, 10911), back;
    char out[PROTO_MSGID_V6_LEN + 1];
    uint64_t pos = 0;

    (void)state;
    assert_int_equal(proto_msgid_encode(&h, 4096, out), 32);
    assert_string_equal(out, "0A00000500002A9F0000000000001000");

    assert_int_equal(proto_msgid_decode(out, 32, &back, &pos), 0);
    assert_int_equal(back.v6, 0);
    assert_memory_equal(back.ip, h.ip, 4);
    assert_int_equal(back.port, 10911);
    assert_int_equal(pos, 4096);

    /* Either case decodes. */
    assert_int_equal(proto_msgid_decode("0a00000500002a9f00000000000010fF", 32, &back, &pos), 0);
    assert_int_equal(pos, 0x10FF);
}

static void test_msgid_v6_round_trip(void **state)
{
    proto_host h, back;
    char out[PROTO_MSGID_V6_LEN + 1];
    uint64_t pos = 0;
    int i;

    (void)state;
    memset(&h, 0, sizeof h);
    h.v6 = 1;
    for (i = 0; i < 16; i++)
        h.ip[i] = (uint8_t)(0xF0 + i);
    h.port = 0xFFFFFFFFu;
    assert_int_equal(proto_msgid_encode(&h, UINT64_MAX - 1, out), 56);
    assert_string_equal(out, "F0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF"
                             "FFFFFFFF"
                             "FFFFFFFFFFFFFFFE");
    assert_int_equal(proto_msgid_decode(out, strlen(out), &back, &pos), 0);
    assert_int_equal(back.v6, 1);
    assert_memory_equal(back.ip, h.ip, 16);
    assert_int_equal(back.port, 0xFFFFFFFFu);
    assert_int_equal(pos, UINT64_MAX - 1);
}

static void test_msgid_rejects(void **state)
{
    static const char good[] = "0A00000500002A9F0000000000001000";
    proto_host h = host4(1, 2, 3, 4, 5);
    uint64_t pos = 77;
    char bad[sizeof good];
    size_t i;

    (void)state;
    assert_int_equal(proto_msgid_decode(good, 31, &h, &pos), LSMQ_EINVAL);
    assert_int_equal(proto_msgid_decode(good, 0, &h, &pos), LSMQ_EINVAL);
    assert_int_equal(proto_msgid_decode(NULL, 32, &h, &pos), LSMQ_EINVAL);
    assert_int_equal(proto_msgid_decode("0A00000500002A9F00000000000010000", 33, &h, &pos),
                     LSMQ_EINVAL);
    /* A non-hex character anywhere. */
    for (i = 0; i < 32; i++) {
        memcpy(bad, good, sizeof good);
        bad[i] = (i % 2) ? 'G' : ' ';
        assert_int_equal(proto_msgid_decode(bad, 32, &h, &pos), LSMQ_EINVAL);
    }
    /* Failures leave the outputs alone. */
    assert_int_equal(h.ip[0], 1);
    assert_int_equal(h.port, 5);
    assert_int_equal(pos, 77);
}

/* ------------------------------------------------------------------ */
/* Client unique id                                                    */
/* ------------------------------------------------------------------ */

static unsigned hex_field(const char *s, size_t n)
{
    char buf[9];

    memcpy(buf, s, n);
    buf[n] = '\0';
    return (unsigned)strtoul(buf, NULL, 16);
}

/* Ms since local midnight on the 1st, computed independently of the codec. */
static int64_t expected_ms_into_month(void)
{
    int64_t now = proto_wall_ms();
    struct tm tm;
    time_t t = (time_t)(now / 1000);

    localtime_r(&t, &tm);
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    return now - (int64_t)mktime(&tm) * 1000;
}

static void test_uniq_id_layout(void **state)
{
    static const uint8_t ip[4] = {192, 168, 0, 1};
    char a[33], b[33];
    unsigned pid16 = (unsigned)getpid() & 0xFFFF;
    uint32_t ms, want;
    size_t i;

    (void)state;
    proto_uniq_id_new(ip, a);
    proto_uniq_id_new(ip, b);
    assert_int_equal(strlen(a), 32);
    for (i = 0; i < 32; i++)
        assert_non_null(strchr("0123456789ABCDEF", a[i]));
    assert_memory_equal(a, "C0A80001", 8);
    assert_int_equal(hex_field(a + 8, 4), pid16);
    /* The per-process value does not change between ids. */
    assert_memory_equal(a + 12, b + 12, 8);
    /* Consecutive ids from one thread differ by one in the counter. */
    assert_int_equal((hex_field(a + 28, 4) + 1) & 0xFFFF, hex_field(b + 28, 4));
    /* The time field is ms into the month, low 32 bits. */
    ms = (uint32_t)hex_field(b + 20, 8);
    want = (uint32_t)expected_ms_into_month();
    assert_true(want - ms < 5000u);
}

#define UNIQ_THREADS 4
#define UNIQ_PER_THREAD 2000

static char uniq_ids[UNIQ_THREADS * UNIQ_PER_THREAD][33];

static void *uniq_worker(void *arg)
{
    size_t base = (size_t)(uintptr_t)arg * UNIQ_PER_THREAD, i;
    static const uint8_t ip[4] = {127, 0, 0, 1};

    for (i = 0; i < UNIQ_PER_THREAD; i++)
        proto_uniq_id_new(ip, uniq_ids[base + i]);
    return NULL;
}

static int cmp_ids(const void *a, const void *b)
{
    return memcmp(a, b, 33);
}

/* Concurrent callers never share a counter value, so ids stay unique. */
static void test_uniq_id_threads(void **state)
{
    pthread_t t[UNIQ_THREADS];
    size_t i, n = UNIQ_THREADS * UNIQ_PER_THREAD;
    unsigned char *seen = calloc(65536, 1);

    (void)state;
    assert_non_null(seen);
    for (i = 0; i < UNIQ_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, uniq_worker, (void *)(uintptr_t)i), 0);
    for (i = 0; i < UNIQ_THREADS; i++)
        pthread_join(t[i], NULL);
    for (i = 0; i < n; i++) {
        unsigned c = hex_field(uniq_ids[i] + 28, 4);

        assert_int_equal(seen[c], 0);
        seen[c] = 1;
    }
    qsort(uniq_ids, n, sizeof uniq_ids[0], cmp_ids);
    for (i = 1; i < n; i++)
        assert_true(memcmp(uniq_ids[i - 1], uniq_ids[i], 33) != 0);
    free(seen);
}

/* ------------------------------------------------------------------ */
/* Tag hash                                                            */
/* ------------------------------------------------------------------ */

/* Reference: String.hashCode over explicit UTF-16 units. */
static int64_t units_hash(const uint16_t *u, size_t n)
{
    uint32_t h = 0;
    size_t i;

    for (i = 0; i < n; i++)
        h = 31 * h + u[i];
    return (int32_t)h;
}

#define TAG(s) (s), (sizeof(s) - 1)

static void test_tag_hash_java_values(void **state)
{
    (void)state;
    assert_int_equal(proto_tag_hash(TAG("TagA")), 2598919);
    assert_int_equal(proto_tag_hash(TAG("TagB")), 2598920);
    assert_int_equal(proto_tag_hash(TAG("null")), 3392903);
    assert_int_equal(proto_tag_hash(TAG("hello")), 99162322);
    /* Wraps to Integer.MIN_VALUE; the long tags code keeps the sign. */
    assert_int_equal(proto_tag_hash(TAG("polygenelubricants")), INT32_MIN);
    assert_true(proto_tag_hash(TAG("polygenelubricants")) < 0);
    assert_int_equal(proto_tag_hash(TAG("")), 0);
    assert_int_equal(proto_tag_hash(NULL, 0), 0);
    /* Only len bytes count. */
    assert_int_equal(proto_tag_hash("TagAxyz", 4), 2598919);
}

static void test_tag_hash_utf16(void **state)
{
    static const uint16_t mixed[] = {'a', 0xD83D, 0xDE00, 'b', 0x4E2D};

    (void)state;
    assert_int_equal(proto_tag_hash(TAG("\xC3\xA9")), 233);            /* é */
    assert_int_equal(proto_tag_hash(TAG("\xE4\xB8\xAD")), 20013);      /* 中 */
    assert_int_equal(proto_tag_hash(TAG("\xF0\x9F\x98\x80")), 1772899); /* U+1F600 as a pair */
    assert_int_equal(proto_tag_hash(TAG("a\xF0\x9F\x98\x80" "b\xE4\xB8\xAD")), 1793360527);
    assert_int_equal(proto_tag_hash(TAG("a\xF0\x9F\x98\x80" "b\xE4\xB8\xAD")),
                     units_hash(mixed, 5));
    /* U+10FFFF, the last code point: DBFF DFFF. */
    {
        static const uint16_t last[] = {0xDBFF, 0xDFFF};

        assert_int_equal(proto_tag_hash(TAG("\xF4\x8F\xBF\xBF")), units_hash(last, 2));
    }
}

/* Malformed bytes count as U+FFFD, one per piece as Java's decoder cuts them. */
static void test_tag_hash_invalid_utf8(void **state)
{
    static const struct {
        const char *bytes;
        size_t len;
        uint16_t units[6];
        size_t n;
    } cases[] = {
        {TAG("\xFF"), {0xFFFD}, 1},
        {TAG("\x80"), {0xFFFD}, 1},
        {TAG("A\xE2\x82"), {'A', 0xFFFD}, 2},          /* truncated at the end */
        {TAG("\xE2\x82" "A"), {0xFFFD, 'A'}, 2},        /* truncated mid-string */
        {TAG("\xE2" "A"), {0xFFFD, 'A'}, 2},
        {TAG("\xC0\xAF"), {0xFFFD, 0xFFFD}, 2},         /* overlong '/' */
        {TAG("\xE0\x80\x80"), {0xFFFD, 0xFFFD, 0xFFFD}, 3},
        {TAG("\xED\xA0\x80"), {0xFFFD, 0xFFFD}, 2},     /* surrogate: Java cuts ED A0 */
        {TAG("\xED\xA0"), {0xFFFD}, 1},
        {TAG("\xED\x9F\xBF"), {0xD7FF}, 1},             /* just below the surrogates */
        {TAG("\xF0\x9F\x98"), {0xFFFD}, 1},
        {TAG("\xF0\x9F\x98" "A"), {0xFFFD, 'A'}, 2},
        {TAG("\xF0\x80\x80\x80"), {0xFFFD, 0xFFFD, 0xFFFD, 0xFFFD}, 4},
        {TAG("\xF4\x90\x80\x80"), {0xFFFD, 0xFFFD, 0xFFFD, 0xFFFD}, 4}, /* > U+10FFFF */
        {TAG("\xF5\x80"), {0xFFFD, 0xFFFD}, 2},
        {TAG("\xEF\xBF\xBD"), {0xFFFD}, 1},             /* a real U+FFFD */
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *copy = dup_bytes(cases[i].bytes, cases[i].len);

        if (proto_tag_hash((const char *)copy, cases[i].len) !=
            units_hash(cases[i].units, cases[i].n))
            fail_msg("case %zu", i);
        free(copy);
    }
}

/* ------------------------------------------------------------------ */
/* Batch body                                                          */
/* ------------------------------------------------------------------ */

/* flag 7, body "hi", props "a\1b\2": 22 + 2 + 4 = 28 bytes. */
static const uint8_t entry_bytes[] = {
    0x00, 0x00, 0x00, 0x1C,  /* TOTALSIZE */
    0x00, 0x00, 0x00, 0x00,  /* MAGICCODE */
    0x00, 0x00, 0x00, 0x00,  /* BODYCRC */
    0x00, 0x00, 0x00, 0x07,  /* FLAG */
    0x00, 0x00, 0x00, 0x02, 'h', 'i',
    0x00, 0x04, 'a', 0x01, 'b', 0x02,
};

static void test_batch_encode_bytes(void **state)
{
    proto_batch_entry e = {7, (const uint8_t *)"hi", 2, "a\001b\002", 4};
    uint8_t out[64];

    (void)state;
    assert_int_equal(proto_batch_entry_size(&e), sizeof entry_bytes);
    assert_int_equal(proto_batch_encode_entry(&e, out, sizeof out), sizeof entry_bytes);
    assert_memory_equal(out, entry_bytes, sizeof entry_bytes);
    /* Exactly enough room is enough; one byte less is not. */
    assert_int_equal(proto_batch_encode_entry(&e, out, sizeof entry_bytes), 28);
    assert_int_equal(proto_batch_encode_entry(&e, out, sizeof entry_bytes - 1), LSMQ_ETOOBIG);
}

static void test_batch_encode_limits(void **state)
{
    static char props[PROTO_PROPS_MAX + 1];
    proto_batch_entry e = {0, NULL, 0, props, PROTO_PROPS_MAX};
    uint8_t *out = malloc(PROTO_PROPS_MAX + 64);

    (void)state;
    assert_non_null(out);
    assert_int_equal(proto_batch_encode_entry(&e, out, PROTO_PROPS_MAX + 64),
                     22 + PROTO_PROPS_MAX);
    e.props_len = PROTO_PROPS_MAX + 1;
    assert_int_equal(proto_batch_encode_entry(&e, out, PROTO_PROPS_MAX + 64), LSMQ_ETOOBIG);
    e.props_len = 0;
    e.body_len = 3; /* body NULL */
    assert_int_equal(proto_batch_encode_entry(&e, out, PROTO_PROPS_MAX + 64), LSMQ_EINVAL);
    free(out);
}

/* Two entries (one with empty body and props) encoded back to back. */
static uint8_t *two_entries(size_t *len, size_t *first)
{
    proto_batch_entry a = {-1, (const uint8_t *)"body-one", 8, "KEYS\001k1\002", 8};
    proto_batch_entry b = {0, NULL, 0, NULL, 0};
    size_t n = proto_batch_entry_size(&a) + proto_batch_entry_size(&b);
    uint8_t *buf = malloc(n);
    long w;

    assert_non_null(buf);
    w = proto_batch_encode_entry(&a, buf, n);
    assert_int_equal(w, 38);
    assert_int_equal(proto_batch_encode_entry(&b, buf + w, n - (size_t)w), 22);
    *first = (size_t)w;
    *len = n;
    return buf;
}

static void test_batch_iterate(void **state)
{
    size_t len, first, pos = 0;
    uint8_t *buf = two_entries(&len, &first);
    proto_batch_entry e;

    (void)state;
    assert_int_equal(proto_batch_next(buf, len, &pos, &e), 1);
    assert_int_equal(pos, first);
    assert_int_equal(e.flag, -1);
    assert_int_equal(e.body_len, 8);
    assert_memory_equal(e.body, "body-one", 8);
    assert_int_equal(e.props_len, 8);
    assert_memory_equal(e.props, "KEYS\001k1\002", 8);
    assert_int_equal(proto_batch_next(buf, len, &pos, &e), 1);
    assert_int_equal(pos, len);
    assert_int_equal(e.flag, 0);
    assert_int_equal(e.body_len, 0);
    assert_int_equal(e.props_len, 0);
    assert_int_equal(proto_batch_next(buf, len, &pos, &e), 0);
    assert_int_equal(proto_batch_next(buf, len, &pos, &e), 0);

    /* An empty body is a clean, empty batch. */
    pos = 0;
    assert_int_equal(proto_batch_next(NULL, 0, &pos, &e), 0);
    free(buf);
}

/* Cut anywhere but an entry boundary, the batch is corrupt; the whole entries before the cut still read. */
static void test_batch_truncated_every_length(void **state)
{
    size_t len, first, cut;
    uint8_t *buf = two_entries(&len, &first);

    (void)state;
    for (cut = 0; cut <= len; cut++) {
        uint8_t *part = dup_bytes(buf, cut);
        proto_batch_entry e;
        size_t pos = 0, n = 0;
        int rc;

        while ((rc = proto_batch_next(part, cut, &pos, &e)) == 1)
            n++;
        if (cut == 0 || cut == first || cut == len) {
            assert_int_equal(rc, 0);
            assert_int_equal(n, cut == 0 ? 0 : cut == first ? 1 : 2);
        } else {
            assert_int_equal(rc, LSMQ_ECORRUPT);
            assert_int_equal(n, cut < first ? 0 : 1);
        }
        free(part);
    }
    free(buf);
}

/* Patch entry_bytes and expect the entry to be refused with *pos unmoved. */
static void expect_batch_reject(size_t at, const uint8_t *bytes, size_t n)
{
    uint8_t *b = dup_bytes(entry_bytes, sizeof entry_bytes);
    proto_batch_entry e;
    size_t pos = 0;

    memcpy(b + at, bytes, n);
    assert_int_equal(proto_batch_next(b, sizeof entry_bytes, &pos, &e), LSMQ_ECORRUPT);
    assert_int_equal(pos, 0);
    free(b);
}

static void test_batch_rejects(void **state)
{
    static const uint8_t total27[] = {0, 0, 0, 27};
    static const uint8_t total29[] = {0, 0, 0, 29};
    static const uint8_t total21[] = {0, 0, 0, 21};
    static const uint8_t neg[] = {0x80, 0, 0, 0};
    static const uint8_t body3[] = {0, 0, 0, 3};
    static const uint8_t body7[] = {0, 0, 0, 7};
    static const uint8_t props_neg[] = {0x80, 0x04};
    static const uint8_t props3[] = {0, 3};
    uint8_t *b;
    proto_batch_entry e;
    size_t pos;

    (void)state;
    expect_batch_reject(0, total27, 4);   /* TOTALSIZE short of its fields */
    expect_batch_reject(0, total29, 4);   /* TOTALSIZE past the body */
    expect_batch_reject(0, total21, 4);   /* below the fixed part */
    expect_batch_reject(0, neg, 4);       /* negative TOTALSIZE */
    expect_batch_reject(16, neg, 4);      /* negative body length */
    expect_batch_reject(16, body3, 4);    /* body length disagrees with TOTALSIZE */
    expect_batch_reject(16, body7, 4);    /* body runs past the entry */
    expect_batch_reject(22, props_neg, 2); /* negative properties length */
    expect_batch_reject(22, props3, 2);   /* properties short of TOTALSIZE */

    /* MAGICCODE and BODYCRC are not checked. */
    b = dup_bytes(entry_bytes, sizeof entry_bytes);
    memset(b + 4, 0xAB, 8);
    pos = 0;
    assert_int_equal(proto_batch_next(b, sizeof entry_bytes, &pos, &e), 1);
    assert_int_equal(e.flag, 7);

    /* A position past the end is the caller's bug, not a clean end. */
    pos = sizeof entry_bytes + 1;
    assert_int_equal(proto_batch_next(b, sizeof entry_bytes, &pos, &e), LSMQ_ECORRUPT);
    free(b);
}

/* A 32767-byte properties string is the largest an entry can carry. */
static void test_batch_props_max(void **state)
{
    size_t n = 22 + PROTO_PROPS_MAX;
    uint8_t *buf = calloc(n, 1);
    proto_batch_entry in = {3, NULL, 0, NULL, PROTO_PROPS_MAX}, out;
    char *props = malloc(PROTO_PROPS_MAX);
    size_t pos = 0;

    (void)state;
    assert_non_null(buf);
    assert_non_null(props);
    memset(props, 'p', PROTO_PROPS_MAX);
    in.props = props;
    assert_int_equal(proto_batch_encode_entry(&in, buf, n), (long)n);
    assert_int_equal(proto_batch_next(buf, n, &pos, &out), 1);
    assert_int_equal(out.props_len, PROTO_PROPS_MAX);
    assert_int_equal(pos, n);
    free(props);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msgid_example),
        cmocka_unit_test(test_msgid_v6_round_trip),
        cmocka_unit_test(test_msgid_rejects),
        cmocka_unit_test(test_uniq_id_layout),
        cmocka_unit_test(test_uniq_id_threads),
        cmocka_unit_test(test_tag_hash_java_values),
        cmocka_unit_test(test_tag_hash_utf16),
        cmocka_unit_test(test_tag_hash_invalid_utf8),
        cmocka_unit_test(test_batch_encode_bytes),
        cmocka_unit_test(test_batch_encode_limits),
        cmocka_unit_test(test_batch_iterate),
        cmocka_unit_test(test_batch_truncated_every_length),
        cmocka_unit_test(test_batch_rejects),
        cmocka_unit_test(test_batch_props_max),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
