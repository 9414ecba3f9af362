/*
 * Unit tests for protocol/remoting.h: frame boundaries, JSON headers in the
 * shapes each client writes (Java, ali-ons, C++, Go), hand-built ROCKETMQ
 * binary headers, hostile lengths, Java's extFields parse rules and the
 * compact sorted JSON the encoder writes (REMOTING.md §1).
 *
 * Frames are decoded from exact-size heap copies so ASan catches any read
 * past the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "errors.h"
#include "remoting.h"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* An exact-size heap copy of p[0..n), so ASan sees overreads. */
static uint8_t *dup_bytes(const void *p, size_t n)
{
    uint8_t *c = malloc(n ? n : 1);

    assert_non_null(c);
    if (n > 0)
        memcpy(c, p, n);
    return c;
}

/* A frame: length word, header word (type << 24 | hlen), header, body. */
static uint8_t *make_frame(int type, const void *hdr, size_t hlen, const void *body,
                           size_t blen, size_t *len)
{
    size_t n = 8 + hlen + blen;
    uint8_t *f = malloc(n);

    assert_non_null(f);
    f[0] = (uint8_t)((n - 4) >> 24);
    f[1] = (uint8_t)((n - 4) >> 16);
    f[2] = (uint8_t)((n - 4) >> 8);
    f[3] = (uint8_t)(n - 4);
    f[4] = (uint8_t)type;
    f[5] = (uint8_t)(hlen >> 16);
    f[6] = (uint8_t)(hlen >> 8);
    f[7] = (uint8_t)hlen;
    if (hlen > 0)
        memcpy(f + 8, hdr, hlen);
    if (blen > 0)
        memcpy(f + 8 + hlen, body, blen);
    *len = n;
    return f;
}

/* Decode a frame holding the given JSON header and no body. */
static int decode_json_text(const char *json, proto_cmd **out)
{
    size_t len;
    uint8_t *f = make_frame(PROTO_SERIALIZE_JSON, json, strlen(json), NULL, 0, &len);
    char err[128] = "";
    int rc = proto_cmd_decode(f, len, out, err, sizeof err);

    if (rc != 0)
        assert_true(err[0] != '\0'); /* every failure says why */
    free(f);
    return rc;
}

static proto_cmd *must_decode_json(const char *json)
{
    proto_cmd *cmd = NULL;

    assert_int_equal(decode_json_text(json, &cmd), 0);
    assert_non_null(cmd);
    return cmd;
}

/* Decode a frame holding the given binary header and no body. */
static int decode_binary(const uint8_t *hdr, size_t hlen, proto_cmd **out)
{
    size_t len;
    uint8_t *f = make_frame(PROTO_SERIALIZE_ROCKETMQ, hdr, hlen, NULL, 0, &len);
    char err[128] = "";
    int rc = proto_cmd_decode(f, len, out, err, sizeof err);

    if (rc != 0)
        assert_true(err[0] != '\0');
    free(f);
    return rc;
}

static void assert_ext(const proto_cmd *cmd, const char *key, const char *want)
{
    const char *v = proto_cmd_get(cmd, key);

    if (want == NULL) {
        assert_null(v);
        return;
    }
    assert_non_null(v);
    assert_string_equal(v, want);
}

/* The JSON header text of an encoded frame, NUL-terminated (malloc'ed). */
static char *header_of(const uint8_t *frame, size_t len)
{
    size_t hlen = (size_t)frame[5] << 16 | (size_t)frame[6] << 8 | frame[7];
    char *s = malloc(hlen + 1);

    assert_true(8 + hlen <= len);
    assert_int_equal(frame[4], 0); /* always a JSON header */
    assert_non_null(s);
    memcpy(s, frame + 8, hlen);
    s[hlen] = '\0';
    return s;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The §1.2 example: GET_ROUTEINFO_BY_TOPIC for TopicTest, a 131-byte header. */
static const char route_header[] =
    "{\"code\":105,\"extFields\":{\"topic\":\"TopicTest\"},\"flag\":0,\"language\":\"JAVA\","
    "\"opaque\":0,\"serializeTypeCurrentRPC\":\"JSON\",\"version\":409}";

/* ------------------------------------------------------------------ */
/* Frame boundaries                                                    */
/* ------------------------------------------------------------------ */

static void test_frame_example_prefix(void **state)
{
    static const uint8_t want[] = {0x00, 0x00, 0x00, 0x87, 0x00, 0x00, 0x00,
                                   0x83, 0x7B, 0x22, 0x63, 0x6F};
    size_t len, flen = 0;
    uint8_t *f = make_frame(0, route_header, strlen(route_header), NULL, 0, &len);

    (void)state;
    assert_int_equal(strlen(route_header), 131);
    assert_memory_equal(f, want, sizeof want);
    assert_int_equal(proto_frame_check(f, len, PROTO_FRAME_MAX_DEFAULT, &flen), 1);
    assert_int_equal(flen, 139);
    free(f);
}

/* Every prefix is "need more"; the whole frame, and more, is one frame. */
static void test_frame_check_every_length(void **state)
{
    size_t len, i, flen;
    uint8_t *f = make_frame(0, route_header, strlen(route_header), "xyz", 3, &len);
    uint8_t *more;

    (void)state;
    for (i = 0; i < len; i++) {
        uint8_t *part = dup_bytes(f, i);

        flen = 0;
        assert_int_equal(proto_frame_check(part, i, PROTO_FRAME_MAX_DEFAULT, &flen), 0);
        if (i >= 4)
            assert_int_equal(flen, len);
        free(part);
    }
    assert_int_equal(proto_frame_check(f, len, PROTO_FRAME_MAX_DEFAULT, &flen), 1);
    assert_int_equal(flen, len);

    more = malloc(len + 5);
    assert_non_null(more);
    memcpy(more, f, len);
    memset(more + len, 0xAB, 5);
    assert_int_equal(proto_frame_check(more, len + 5, PROTO_FRAME_MAX_DEFAULT, &flen), 1);
    assert_int_equal(flen, len);
    free(more);
    free(f);
}

static void test_frame_check_bad_lengths(void **state)
{
    static const uint8_t neg[] = {0x80, 0, 0, 0};
    static const uint8_t minus1[] = {0xFF, 0xFF, 0xFF, 0xFF};
    static const uint8_t three[] = {0, 0, 0, 3};
    static const uint8_t zero[] = {0, 0, 0, 0};
    static const uint8_t four[] = {0, 0, 0, 4, 0, 0, 0, 0};
    size_t flen = 0;

    (void)state;
    assert_int_equal(proto_frame_check(neg, 4, PROTO_FRAME_MAX_DEFAULT, &flen), LSMQ_ECORRUPT);
    assert_int_equal(proto_frame_check(minus1, 4, PROTO_FRAME_MAX_DEFAULT, &flen),
                     LSMQ_ECORRUPT);
    assert_int_equal(proto_frame_check(three, 4, PROTO_FRAME_MAX_DEFAULT, &flen),
                     LSMQ_ECORRUPT);
    assert_int_equal(proto_frame_check(zero, 4, PROTO_FRAME_MAX_DEFAULT, &flen), LSMQ_ECORRUPT);
    /* The smallest frame: a header word and nothing else. */
    assert_int_equal(proto_frame_check(four, 8, PROTO_FRAME_MAX_DEFAULT, &flen), 1);
    assert_int_equal(flen, 8);
}

static void test_frame_check_too_big(void **state)
{
    uint8_t w[4];
    size_t flen = 0;
    uint32_t at_max = PROTO_FRAME_MAX_DEFAULT - 4; /* the limit includes the length field */

    (void)state;
    w[0] = (uint8_t)(at_max >> 24);
    w[1] = (uint8_t)(at_max >> 16);
    w[2] = (uint8_t)(at_max >> 8);
    w[3] = (uint8_t)at_max;
    assert_int_equal(proto_frame_check(w, 4, PROTO_FRAME_MAX_DEFAULT, &flen), 0);
    assert_int_equal(flen, PROTO_FRAME_MAX_DEFAULT);
    w[3]++;
    assert_int_equal(proto_frame_check(w, 4, PROTO_FRAME_MAX_DEFAULT, &flen), LSMQ_ETOOBIG);
    /* A caller's smaller limit applies too. */
    assert_int_equal(proto_frame_check(w, 4, 1024, &flen), LSMQ_ETOOBIG);
    /* Largest Java int: too big, not corrupt. */
    w[0] = 0x7F;
    w[1] = w[2] = w[3] = 0xFF;
    assert_int_equal(proto_frame_check(w, 4, PROTO_FRAME_MAX_DEFAULT, &flen), LSMQ_ETOOBIG);
}

/* ------------------------------------------------------------------ */
/* Frame decode                                                        */
/* ------------------------------------------------------------------ */

static void test_decode_example(void **state)
{
    proto_cmd *cmd = must_decode_json(route_header);

    (void)state;
    assert_int_equal(cmd->code, RC_GET_ROUTEINFO_BY_TOPIC);
    assert_int_equal(cmd->language, LANG_JAVA);
    assert_int_equal(cmd->version, 409);
    assert_int_equal(cmd->opaque, 0);
    assert_int_equal(cmd->flag, 0);
    assert_null(cmd->remark);
    assert_int_equal(cmd->n_ext, 1);
    assert_ext(cmd, "topic", "TopicTest");
    assert_int_equal(cmd->serialize_type, PROTO_SERIALIZE_JSON);
    assert_null(cmd->body);
    assert_int_equal(cmd->body_len, 0);
    assert_false(proto_cmd_is_response(cmd));
    assert_false(proto_cmd_is_oneway(cmd));
    proto_cmd_free(cmd);
}

static void test_decode_body_is_view(void **state)
{
    size_t len;
    uint8_t *f = make_frame(0, route_header, strlen(route_header), "hello", 5, &len);
    proto_cmd *cmd = NULL;

    (void)state;
    assert_int_equal(proto_cmd_decode(f, len, &cmd, NULL, 0), 0);
    assert_ptr_equal(cmd->body, f + 8 + strlen(route_header));
    assert_int_equal(cmd->body_len, 5);
    assert_memory_equal(cmd->body, "hello", 5);
    proto_cmd_free(cmd);
    free(f);
}

/* A frame cut anywhere no longer matches its length field. */
static void test_decode_truncated_every_length(void **state)
{
    size_t len, i;
    uint8_t *f = make_frame(0, route_header, strlen(route_header), "body", 4, &len);

    (void)state;
    for (i = 0; i < len; i++) {
        uint8_t *part = dup_bytes(f, i);
        proto_cmd *cmd = (proto_cmd *)1;
        char err[96] = "";

        assert_int_equal(proto_cmd_decode(part, i, &cmd, err, sizeof err), LSMQ_ECORRUPT);
        assert_null(cmd);
        assert_true(err[0] != '\0');
        free(part);
    }
    free(f);
}

static void test_decode_bad_frame_lengths(void **state)
{
    size_t len;
    uint8_t *f = make_frame(0, route_header, strlen(route_header), NULL, 0, &len);
    uint8_t *c;
    proto_cmd *cmd = NULL;
    char err[96];

    (void)state;
    /* Header length one past the frame, and the largest 24-bit value. */
    c = dup_bytes(f, len);
    c[7]++;
    assert_int_equal(proto_cmd_decode(c, len, &cmd, err, sizeof err), LSMQ_ECORRUPT);
    c[5] = c[6] = c[7] = 0xFF;
    assert_int_equal(proto_cmd_decode(c, len, &cmd, err, sizeof err), LSMQ_ECORRUPT);
    free(c);

    /* Negative length field. */
    c = dup_bytes(f, len);
    c[0] = 0x80;
    assert_int_equal(proto_cmd_decode(c, len, &cmd, err, sizeof err), LSMQ_ECORRUPT);
    free(c);

    /* Length field larger than the bytes given. */
    c = dup_bytes(f, len);
    c[3]++;
    assert_int_equal(proto_cmd_decode(c, len, &cmd, err, sizeof err), LSMQ_ECORRUPT);
    free(c);

    /* Unknown serialize types. */
    c = dup_bytes(f, len);
    c[4] = 2;
    assert_int_equal(proto_cmd_decode(c, len, &cmd, err, sizeof err), LSMQ_ECORRUPT);
    c[4] = 0xFF;
    assert_int_equal(proto_cmd_decode(c, len, &cmd, NULL, 0), LSMQ_ECORRUPT);
    free(c);
    assert_null(cmd);
    free(f);
}

/* The header length may be zero, but an empty JSON header does not parse. */
static void test_decode_empty_header(void **state)
{
    size_t len;
    uint8_t *f = make_frame(0, NULL, 0, "b", 1, &len);
    proto_cmd *cmd = NULL;

    (void)state;
    assert_int_equal(proto_cmd_decode(f, len, &cmd, NULL, 0), LSMQ_ECORRUPT);
    free(f);
}

/* ------------------------------------------------------------------ */
/* JSON headers from each client                                       */
/* ------------------------------------------------------------------ */

/* ali-ons copies numbers and booleans into extFields unquoted (§1.3). */
static void test_json_alions_scalars(void **state)
{
    proto_cmd *cmd = must_decode_json(
        "{\"code\":310,\"language\":\"JAVA\",\"opaque\":3,\"flag\":0,\"version\":121,"
        "\"extFields\":{\"a\":\"PG\",\"b\":\"T\",\"e\":3,\"f\":0,\"g\":1700000000123,"
        "\"h\":-1,\"k\":false,\"m\":true,\"l\":16,\"ratio\":1.5,\"tiny\":0.1,"
        "\"big\":9223372036854775807,\"gone\":null}}");
    int32_t i32;
    int64_t i64;

    (void)state;
    assert_int_equal(cmd->code, RC_SEND_MESSAGE_V2);
    assert_int_equal(cmd->version, 121);
    assert_int_equal(cmd->opaque, 3);
    assert_ext(cmd, "a", "PG");
    assert_ext(cmd, "e", "3");
    assert_ext(cmd, "f", "0");
    assert_ext(cmd, "g", "1700000000123");
    assert_ext(cmd, "h", "-1");
    assert_ext(cmd, "k", "false");
    assert_ext(cmd, "m", "true");
    assert_ext(cmd, "l", "16");
    assert_ext(cmd, "ratio", "1.5");
    assert_ext(cmd, "tiny", "0.1");
    assert_ext(cmd, "big", "9223372036854775807");
    assert_ext(cmd, "gone", NULL);
    assert_int_equal(cmd->n_ext, 12);

    assert_int_equal(proto_cmd_get_i32(cmd, "e", &i32), 0);
    assert_int_equal(i32, 3);
    assert_int_equal(proto_cmd_get_i64(cmd, "g", &i64), 0);
    assert_int_equal(i64, 1700000000123LL);
    assert_int_equal(proto_cmd_get_bool(cmd, "m", 0), 1);
    assert_int_equal(proto_cmd_get_bool(cmd, "k", 1), 0);
    assert_int_equal(proto_cmd_get_i32(cmd, "ratio", &i32), LSMQ_EINVAL);
    assert_int_equal(proto_cmd_get_i32(cmd, "gone", &i32), LSMQ_ENOTFOUND);
    proto_cmd_free(cmd);
}

/* jsoncpp FastWriter: remark "" always, numbers in extFields, a final newline. */
static void test_json_cpp_newline(void **state)
{
    proto_cmd *cmd = must_decode_json(
        "{\"code\":310,\"extFields\":{\"AccessKey\":\"\",\"OnsChannel\":\"\",\"Signature\":\"\","
        "\"a\":\"PG\",\"b\":\"TopicTest\",\"d\":4,\"e\":1,\"h\":0},\"flag\":0,"
        "\"language\":\"CPP\",\"opaque\":12,\"remark\":\"\",\"serializeTypeCurrentRPC\":\"JSON\","
        "\"version\":333}\n");

    (void)state;
    assert_int_equal(cmd->language, LANG_CPP);
    assert_int_equal(cmd->version, 333);
    assert_int_equal(cmd->opaque, 12);
    assert_non_null(cmd->remark);
    assert_string_equal(cmd->remark, "");
    assert_ext(cmd, "AccessKey", "");
    assert_ext(cmd, "d", "4");
    assert_ext(cmd, "b", "TopicTest");
    proto_cmd_free(cmd);

    cmd = must_decode_json(" \t{\"code\":34}\r\n \n");
    assert_int_equal(cmd->code, RC_HEART_BEAT);
    proto_cmd_free(cmd);
}

/* jsoniter: struct field order, string values, optional fields present as "". */
static void test_json_go(void **state)
{
    proto_cmd *cmd = must_decode_json(
        "{\"code\":11,\"language\":\"GO\",\"version\":317,\"opaque\":9,\"flag\":0,"
        "\"remark\":\"\",\"extFields\":{\"consumerGroup\":\"g1\",\"topic\":\"t1\","
        "\"queueId\":\"0\",\"queueOffset\":\"42\",\"maxMsgNums\":\"32\",\"sysFlag\":\"2\","
        "\"commitOffset\":\"0\",\"suspendTimeoutMillis\":\"20000\",\"subscription\":\"*\","
        "\"subVersion\":\"0\",\"expressionType\":\"\",\"bname\":\"\"}}");
    int64_t off;

    (void)state;
    assert_int_equal(cmd->code, RC_PULL_MESSAGE);
    assert_int_equal(cmd->language, LANG_GO);
    assert_int_equal(cmd->version, 317);
    assert_int_equal(cmd->n_ext, 12);
    assert_int_equal(proto_cmd_get_i64(cmd, "queueOffset", &off), 0);
    assert_int_equal(off, 42);
    assert_ext(cmd, "expressionType", "");
    /* Arrival order is kept. */
    assert_string_equal(cmd->ext[0].key, "consumerGroup");
    assert_string_equal(cmd->ext[11].key, "bname");
    proto_cmd_free(cmd);
}

static void test_json_duplicates_last_wins(void **state)
{
    proto_cmd *cmd = must_decode_json(
        "{\"code\":1,\"code\":2,\"extFields\":{\"a\":\"1\",\"a\":\"2\",\"b\":\"x\","
        "\"b\":null},\"opaque\":5,\"opaque\":6}");

    (void)state;
    assert_int_equal(cmd->code, 2);
    assert_int_equal(cmd->opaque, 6);
    assert_ext(cmd, "a", "2");
    assert_ext(cmd, "b", NULL); /* a later null makes the key absent */
    proto_cmd_free(cmd);

    /* A second extFields object replaces the first. */
    cmd = must_decode_json("{\"extFields\":{\"a\":\"1\"},\"extFields\":{\"b\":\"2\"}}");
    assert_ext(cmd, "a", NULL);
    assert_ext(cmd, "b", "2");
    proto_cmd_free(cmd);
}

static void test_json_unknown_fields_and_defaults(void **state)
{
    proto_cmd *cmd = must_decode_json(
        "{\"zzz\":{\"x\":[1,2,{\"y\":null}]},\"code\":26,\"unknown\":[true],\"n\":null,"
        "\"remark\":null,\"extFields\":null,\"language\":null,\"serializeTypeCurrentRPC\":"
        "\"ROCKETMQ\"}");

    (void)state;
    assert_int_equal(cmd->code, RC_GET_BROKER_CONFIG);
    assert_null(cmd->remark);
    assert_int_equal(cmd->n_ext, 0);
    assert_int_equal(cmd->language, LANG_JAVA);
    proto_cmd_free(cmd);

    /* Everything left out keeps Java's initial value. */
    cmd = must_decode_json("{}");
    assert_int_equal(cmd->code, 0);
    assert_int_equal(cmd->language, LANG_JAVA);
    assert_int_equal(cmd->version, 0);
    assert_int_equal(cmd->opaque, 0);
    assert_int_equal(cmd->flag, 0);
    assert_null(cmd->remark);
    assert_int_equal(cmd->n_ext, 0);
    proto_cmd_free(cmd);
}

static void test_json_field_forms(void **state)
{
    proto_cmd *cmd;

    (void)state;
    /* fastjson turns a numeric string into an int; so do we. */
    cmd = must_decode_json("{\"code\":\"10\",\"opaque\":-2147483648,\"flag\":3,"
                           "\"language\":\"NODE_JS\",\"remark\":\"caf\\u00e9 \\\"q\\\"\"}");
    assert_int_equal(cmd->code, 10);
    assert_int_equal(cmd->opaque, INT32_MIN);
    assert_true(proto_cmd_is_response(cmd));
    assert_true(proto_cmd_is_oneway(cmd));
    assert_int_equal(cmd->language, LANG_NODE_JS);
    assert_string_equal(cmd->remark, "caf\xC3\xA9 \"q\"");
    proto_cmd_free(cmd);

    cmd = must_decode_json("{\"language\":\"COBOL\"}");
    assert_int_equal(cmd->language, LANG_OTHER);
    proto_cmd_free(cmd);
    cmd = must_decode_json("{\"language\":9}");
    assert_int_equal(cmd->language, LANG_GO);
    proto_cmd_free(cmd);
    cmd = must_decode_json("{\"language\":99}");
    assert_int_equal(cmd->language, LANG_OTHER);
    proto_cmd_free(cmd);
}

static void test_json_rejects(void **state)
{
    static const char *const bad[] = {
        "[1,2]",
        "\"str\"",
        "42",
        "{\"code\":1",
        "{\"code\":1}x",
        "{\"code\":1} {}",
        "{\"code\":1.5}",
        "{\"code\":2147483648}",
        "{\"opaque\":-2147483649}",
        "{\"code\":\"ten\"}",
        "{\"code\":true}",
        "{\"flag\":[1]}",
        "{\"language\":{}}",
        "{\"remark\":5}",
        "{\"extFields\":[]}",
        "{\"extFields\":\"a=b\"}",
        "{\"extFields\":{\"a\":{\"b\":\"c\"}}}",
        "{\"extFields\":{\"a\":[1]}}",
        "{\"extFields\":{\"a\":\"x\\u0000y\"}}",
        "{\"extFields\":{\"a\":99999999999999999999}}",
        "{\"remark\":\"\xC3\x28\"}",
        "{code:1}",
        "",
        "   ",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        proto_cmd *cmd = (proto_cmd *)1;

        if (decode_json_text(bad[i], &cmd) != LSMQ_ECORRUPT)
            fail_msg("accepted header %zu: %s", i, bad[i]);
        assert_null(cmd);
    }
}

/* ------------------------------------------------------------------ */
/* ROCKETMQ binary headers                                             */
/* ------------------------------------------------------------------ */

/*
 * code 310, language GO (9), version 317, opaque 0x01020304, flag 2 (oneway),
 * remark "hi", extFields {a: "1", bb: "22"}.
 */
static const uint8_t bin_header[] = {
    0x01, 0x36,             /* code 310 */
    0x09,                   /* language GO */
    0x01, 0x3D,             /* version 317 */
    0x01, 0x02, 0x03, 0x04, /* opaque */
    0x00, 0x00, 0x00, 0x02, /* flag */
    0x00, 0x00, 0x00, 0x02, /* remark length */
    'h', 'i',
    0x00, 0x00, 0x00, 0x12, /* extFields length: 2+1+4+1 + 2+2+4+2 = 18 */
    0x00, 0x01, 'a', 0x00, 0x00, 0x00, 0x01, '1',
    0x00, 0x02, 'b', 'b', 0x00, 0x00, 0x00, 0x02, '2', '2',
};

static void test_binary_decode(void **state)
{
    proto_cmd *cmd = NULL;

    (void)state;
    assert_int_equal(decode_binary(bin_header, sizeof bin_header, &cmd), 0);
    assert_int_equal(cmd->serialize_type, PROTO_SERIALIZE_ROCKETMQ);
    assert_int_equal(cmd->code, 310);
    assert_int_equal(cmd->language, LANG_GO);
    assert_int_equal(cmd->version, 317);
    assert_int_equal(cmd->opaque, 0x01020304);
    assert_int_equal(cmd->flag, 2);
    assert_true(proto_cmd_is_oneway(cmd));
    assert_string_equal(cmd->remark, "hi");
    assert_int_equal(cmd->n_ext, 2);
    assert_ext(cmd, "a", "1");
    assert_ext(cmd, "bb", "22");
    proto_cmd_free(cmd);
}

/* Every strict prefix of the header, sent as a whole header, is refused. */
static void test_binary_truncated_every_length(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bin_header; i++) {
        proto_cmd *cmd = (proto_cmd *)1;

        assert_int_equal(decode_binary(bin_header, i, &cmd), LSMQ_ECORRUPT);
        assert_null(cmd);
    }
}

/* Signed fields, null remark, unknown language, and map semantics for duplicates. */
static void test_binary_java_semantics(void **state)
{
    static const uint8_t h[] = {
        0xFF, 0xFF,             /* code -1 */
        200,                    /* no such language */
        0x80, 0x00,             /* version -32768 */
        0xFF, 0xFF, 0xFF, 0xFE, /* opaque -2 */
        0x00, 0x00, 0x00, 0x01, /* flag: response */
        0x00, 0x00, 0x00, 0x00, /* remark: null */
        0x00, 0x00, 0x00, 0x36, /* extFields: 54 bytes below */
        0x00, 0x01, 'b', 0x00, 0x00, 0x00, 0x01, 'x',      /* b=x   (8)  */
        0x00, 0x01, 'c', 0x00, 0x00, 0x00, 0x01, 'y',      /* c=y   (8)  */
        0x00, 0x01, 'b', 0x00, 0x00, 0x00, 0x02, 'z', 'z', /* b=zz  (9)  */
        0x00, 0x01, 'c', 0x00, 0x00, 0x00, 0x00,           /* c=null (7) */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 'v',           /* null key (7) */
        0x00, 0x01, 'd', 0x00, 0x00, 0x00, 0x00,           /* d=null (7) */
        0x00, 0x01, 'e', 0x00, 0x00, 0x00, 0x01, 'w',      /* e=w   (8)  */
    };
    proto_cmd *cmd = NULL;

    (void)state;
    assert_int_equal(decode_binary(h, sizeof h, &cmd), 0);
    assert_int_equal(cmd->code, -1);
    assert_int_equal(cmd->language, LANG_OTHER);
    assert_int_equal(cmd->version, -32768);
    assert_int_equal(cmd->opaque, -2);
    assert_true(proto_cmd_is_response(cmd));
    assert_null(cmd->remark);
    assert_ext(cmd, "b", "zz");
    assert_ext(cmd, "c", NULL);
    assert_ext(cmd, "d", NULL);
    assert_ext(cmd, "e", "w");
    /* One entry per key, each where its last occurrence was. */
    assert_int_equal(cmd->n_ext, 2);
    assert_string_equal(cmd->ext[0].key, "b");
    assert_string_equal(cmd->ext[1].key, "e");
    proto_cmd_free(cmd);
}

static void test_binary_empty_ext(void **state)
{
    static const uint8_t h[] = {0, 34, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0,
                                0, 0, 0, 0, 0, 0, 0, 0};
    proto_cmd *cmd = NULL;

    (void)state;
    assert_int_equal(decode_binary(h, sizeof h, &cmd), 0);
    assert_int_equal(cmd->code, 34);
    assert_int_equal(cmd->opaque, 7);
    assert_int_equal(cmd->language, LANG_JAVA);
    assert_int_equal(cmd->n_ext, 0);
    assert_null(cmd->remark);
    proto_cmd_free(cmd);
}

/* Patch one byte range of bin_header and expect a refusal. */
static void expect_binary_reject(size_t at, const uint8_t *bytes, size_t n, size_t len)
{
    uint8_t h[sizeof bin_header + 4];
    proto_cmd *cmd = (proto_cmd *)1;

    memset(h, 0, sizeof h);
    memcpy(h, bin_header, sizeof bin_header);
    memcpy(h + at, bytes, n);
    assert_int_equal(decode_binary(h, len, &cmd), LSMQ_ECORRUPT);
    assert_null(cmd);
}

static void test_binary_rejects(void **state)
{
    static const uint8_t neg32[] = {0x80, 0, 0, 0};
    static const uint8_t minus1[] = {0xFF, 0xFF, 0xFF, 0xFF};
    static const uint8_t neg16[] = {0xFF, 0xFF};
    static const uint8_t big16[] = {0x00, 0x02};
    static const uint8_t ext19[] = {0, 0, 0, 0x13};
    static const uint8_t ext17[] = {0, 0, 0, 0x11};
    static const uint8_t nul = 0;
    const size_t n = sizeof bin_header;

    (void)state;
    expect_binary_reject(13, neg32, 4, n);     /* negative remark length */
    expect_binary_reject(13, minus1, 4, n);
    expect_binary_reject(19, neg32, 4, n);     /* negative extFields length */
    expect_binary_reject(19, ext19, 4, n);     /* extFields past the header */
    expect_binary_reject(19, ext17, 4, n);     /* last entry overruns the block */
    expect_binary_reject(23, neg16, 2, n);     /* negative key length */
    expect_binary_reject(23, big16, 2, n);     /* key swallows the value length */
    expect_binary_reject(26, minus1, 4, n);    /* negative value length */
    expect_binary_reject(25, &nul, 1, n);      /* NUL in a key */
    expect_binary_reject(30, &nul, 1, n);      /* NUL in a value */
    expect_binary_reject(17, &nul, 1, n);      /* NUL in the remark */
    expect_binary_reject(n, &nul, 1, n + 1);   /* a byte after the extFields block */
}

/* ------------------------------------------------------------------ */
/* Encode                                                              */
/* ------------------------------------------------------------------ */

static void test_encode_matches_java_example(void **state)
{
    proto_cmd *cmd = proto_cmd_request(RC_GET_ROUTEINFO_BY_TOPIC);
    uint8_t *out;
    size_t len;
    char *hdr;

    (void)state;
    proto_cmd_set(cmd, "topic", "TopicTest");
    assert_int_equal(proto_cmd_encode(cmd, NULL, 0, &out, &len), 0);
    assert_int_equal(len, 139);
    assert_int_equal(be32(out), 135);
    assert_int_equal(be32(out + 4), 131);
    hdr = header_of(out, len);
    assert_string_equal(hdr, route_header);
    free(hdr);
    free(out);
    proto_cmd_free(cmd);
}

static void test_encode_response(void **state)
{
    proto_cmd *cmd = proto_cmd_response(RS_SUCCESS, 7, NULL);
    uint8_t *out;
    size_t len;
    char *hdr;

    (void)state;
    assert_true(proto_cmd_is_response(cmd));
    proto_cmd_set(cmd, "queueId", "1");
    proto_cmd_set(cmd, "msgId", "0A00000500002A9F0000000000001000");
    proto_cmd_set_i64(cmd, "queueOffset", 9007199254740993LL);
    assert_int_equal(proto_cmd_encode(cmd, NULL, 0, &out, &len), 0);
    hdr = header_of(out, len);
    assert_string_equal(hdr,
                        "{\"code\":0,\"extFields\":{\"msgId\":\"0A00000500002A9F0000000000001000\","
                        "\"queueId\":\"1\",\"queueOffset\":\"9007199254740993\"},\"flag\":1,"
                        "\"language\":\"JAVA\",\"opaque\":7,\"serializeTypeCurrentRPC\":\"JSON\","
                        "\"version\":409}");
    free(hdr);
    free(out);
    proto_cmd_free(cmd);
}

static void test_encode_remark(void **state)
{
    proto_cmd *cmd = proto_cmd_response(RS_SYSTEM_ERROR, -5, "first");
    uint8_t *out;
    size_t len;
    char *hdr;

    (void)state;
    assert_string_equal(cmd->remark, "first");
    proto_cmd_set_remarkf(cmd, "topic %s: \"%d\"\n", "T\\1", 42);
    assert_int_equal(proto_cmd_encode(cmd, NULL, 0, &out, &len), 0);
    hdr = header_of(out, len);
    assert_string_equal(hdr, "{\"code\":1,\"flag\":1,\"language\":\"JAVA\",\"opaque\":-5,"
                             "\"remark\":\"topic T\\\\1: \\\"42\\\"\\n\","
                             "\"serializeTypeCurrentRPC\":\"JSON\",\"version\":409}");
    free(hdr);
    free(out);

    /* Clearing the remark drops the field. */
    proto_cmd_set_remark(cmd, NULL);
    assert_null(cmd->remark);
    assert_int_equal(proto_cmd_encode(cmd, NULL, 0, &out, &len), 0);
    hdr = header_of(out, len);
    assert_null(strstr(hdr, "remark"));
    free(hdr);
    free(out);
    proto_cmd_free(cmd);
}

/* Decoded numbers and booleans go back out as strings (the Go client needs that). */
static void test_encode_round_trip(void **state)
{
    proto_cmd *in = must_decode_json(
        "{\"code\":310,\"language\":\"CPP\",\"opaque\":77,\"flag\":2,\"version\":121,"
        "\"remark\":\"r\",\"extFields\":{\"e\":3,\"k\":false,\"s\":\"x\\ty\"}}");
    proto_cmd *back = NULL;
    uint8_t *out;
    size_t len;
    char *hdr;

    (void)state;
    assert_int_equal(proto_cmd_encode(in, "BODY", 4, &out, &len), 0);
    hdr = header_of(out, len);
    assert_string_equal(hdr, "{\"code\":310,\"extFields\":{\"e\":\"3\",\"k\":\"false\","
                             "\"s\":\"x\\ty\"},\"flag\":2,\"language\":\"CPP\",\"opaque\":77,"
                             "\"remark\":\"r\",\"serializeTypeCurrentRPC\":\"JSON\","
                             "\"version\":121}");
    assert_int_equal(proto_cmd_decode(out, len, &back, NULL, 0), 0);
    assert_int_equal(back->code, 310);
    assert_int_equal(back->language, LANG_CPP);
    assert_int_equal(back->opaque, 77);
    assert_int_equal(back->flag, 2);
    assert_int_equal(back->version, 121);
    assert_string_equal(back->remark, "r");
    assert_ext(back, "e", "3");
    assert_ext(back, "k", "false");
    assert_ext(back, "s", "x\ty");
    assert_int_equal(back->body_len, 4);
    assert_memory_equal(back->body, "BODY", 4);
    proto_cmd_free(back);
    free(hdr);
    free(out);
    proto_cmd_free(in);
}

/* A binary header round-trips into an equivalent JSON one. */
static void test_encode_binary_as_json(void **state)
{
    proto_cmd *cmd = NULL, *back = NULL;
    uint8_t *out;
    size_t len;

    (void)state;
    assert_int_equal(decode_binary(bin_header, sizeof bin_header, &cmd), 0);
    assert_int_equal(proto_cmd_encode(cmd, NULL, 0, &out, &len), 0);
    assert_int_equal(proto_cmd_decode(out, len, &back, NULL, 0), 0);
    assert_int_equal(back->serialize_type, PROTO_SERIALIZE_JSON);
    assert_int_equal(back->code, 310);
    assert_int_equal(back->language, LANG_GO);
    assert_int_equal(back->version, 317);
    assert_int_equal(back->opaque, 0x01020304);
    assert_int_equal(back->flag, 2);
    assert_string_equal(back->remark, "hi");
    assert_ext(back, "a", "1");
    assert_ext(back, "bb", "22");
    proto_cmd_free(back);
    proto_cmd_free(cmd);
    free(out);
}

/* Bytes that are not UTF-8 (possible from a binary header) go out as U+FFFD. */
static void test_encode_invalid_utf8(void **state)
{
    proto_cmd *cmd = proto_cmd_request(RC_HEART_BEAT);
    uint8_t *out;
    size_t len;
    char *hdr;

    (void)state;
    proto_cmd_set_remark(cmd, "a\xFF" "b");
    proto_cmd_set(cmd, "k\xC3", "\xE2\x82");
    assert_int_equal(proto_cmd_encode(cmd, NULL, 0, &out, &len), 0);
    hdr = header_of(out, len);
    assert_non_null(strstr(hdr, "\"remark\":\"a\xEF\xBF\xBD" "b\""));
    assert_non_null(strstr(hdr, "\"extFields\":{\"k\xEF\xBF\xBD\":\"\xEF\xBF\xBD\"}"));
    free(hdr);
    free(out);
    proto_cmd_free(cmd);
}

static void test_encode_prefix_and_limits(void **state)
{
    proto_cmd *cmd = proto_cmd_request(RC_SEND_MESSAGE_V2);
    uint8_t *out = NULL;
    size_t len, hlen, room;

    (void)state;
    cmd->opaque = 99;
    assert_int_equal(proto_cmd_encode_prefix(cmd, 1000, &out, &len), 0);
    hlen = be32(out + 4);
    assert_int_equal(len, 8 + hlen);
    assert_int_equal(be32(out), 4 + hlen + 1000);
    free(out);

    /* The whole frame may reach 16 MiB, length field included, and no more. */
    room = PROTO_FRAME_MAX_DEFAULT - 8 - hlen;
    assert_int_equal(proto_cmd_encode_prefix(cmd, room, &out, &len), 0);
    assert_int_equal(be32(out) + 4, PROTO_FRAME_MAX_DEFAULT);
    free(out);
    out = NULL;
    assert_int_equal(proto_cmd_encode_prefix(cmd, room + 1, &out, &len), LSMQ_ETOOBIG);
    assert_null(out);
    assert_int_equal(proto_cmd_encode_prefix(cmd, SIZE_MAX, &out, &len), LSMQ_ETOOBIG);
    assert_int_equal(proto_cmd_encode(cmd, NULL, 5, &out, &len), LSMQ_EINVAL);
    proto_cmd_free(cmd);
}

/* ------------------------------------------------------------------ */
/* Building commands and typed lookups                                 */
/* ------------------------------------------------------------------ */

static void test_request_defaults(void **state)
{
    proto_cmd *cmd = proto_cmd_request(RC_HEART_BEAT);

    (void)state;
    assert_int_equal(cmd->code, RC_HEART_BEAT);
    assert_int_equal(cmd->flag, 0);
    assert_int_equal(cmd->opaque, 0);
    assert_int_equal(cmd->language, LANG_JAVA);
    assert_int_equal(cmd->version, PROTO_SERVER_VERSION);
    assert_null(cmd->remark);
    assert_int_equal(cmd->n_ext, 0);
    assert_false(proto_cmd_is_response(cmd));
    proto_cmd_free(cmd);
    proto_cmd_free(NULL);
}

static void test_set_and_get(void **state)
{
    proto_cmd *cmd = proto_cmd_request(RC_PULL_MESSAGE);
    int64_t v;

    (void)state;
    proto_cmd_set(cmd, "topic", "A");
    proto_cmd_set(cmd, "b", "B");
    proto_cmd_set(cmd, "topic", "C"); /* replaces */
    assert_int_equal(cmd->n_ext, 2);
    assert_ext(cmd, "topic", "C");
    assert_string_equal(proto_cmd_get2(cmd, "topic", "b"), "C");
    assert_string_equal(proto_cmd_get2(cmd, "nope", "b"), "B");
    assert_null(proto_cmd_get2(cmd, "nope", "nada"));

    proto_cmd_set_i64(cmd, "min", INT64_MIN);
    proto_cmd_set_i64(cmd, "max", INT64_MAX);
    proto_cmd_set_bool(cmd, "t", 5);
    proto_cmd_set_bool(cmd, "f", 0);
    assert_ext(cmd, "min", "-9223372036854775808");
    assert_ext(cmd, "max", "9223372036854775807");
    assert_ext(cmd, "t", "true");
    assert_ext(cmd, "f", "false");
    assert_int_equal(proto_cmd_get_i64(cmd, "min", &v), 0);
    assert_int_equal(v, INT64_MIN);

    proto_cmd_set(cmd, "b", NULL); /* unset */
    assert_ext(cmd, "b", NULL);
    assert_int_equal(cmd->n_ext, 5);
    proto_cmd_free(cmd);
}

/* Integer.parseInt / Long.parseLong: optional sign, ASCII digits, in range. */
static void test_java_integer_parsing(void **state)
{
    static const struct {
        const char *text;
        int rc;
        int32_t value;
    } i32[] = {
        {"0", 0, 0},           {"-0", 0, 0},
        {"+5", 0, 5},          {"007", 0, 7},
        {"2147483647", 0, INT32_MAX},
        {"-2147483648", 0, INT32_MIN},
        {"2147483648", LSMQ_EINVAL, 0},
        {"-2147483649", LSMQ_EINVAL, 0},
        {"99999999999999999999999", LSMQ_EINVAL, 0},
        {"", LSMQ_EINVAL, 0},  {"+", LSMQ_EINVAL, 0},
        {"-", LSMQ_EINVAL, 0}, {"+-1", LSMQ_EINVAL, 0},
        {" 1", LSMQ_EINVAL, 0}, {"1 ", LSMQ_EINVAL, 0},
        {"1.0", LSMQ_EINVAL, 0}, {"0x10", LSMQ_EINVAL, 0},
        {"1e3", LSMQ_EINVAL, 0}, {"\xEF\xBC\x91", LSMQ_EINVAL, 0}, /* fullwidth 1 */
    };
    proto_cmd *cmd = proto_cmd_request(0);
    int32_t got;
    int64_t got64;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof i32 / sizeof i32[0]; i++) {
        proto_cmd_set(cmd, "k", i32[i].text);
        got = 12345;
        if (proto_cmd_get_i32(cmd, "k", &got) != i32[i].rc)
            fail_msg("parseInt(\"%s\")", i32[i].text);
        if (i32[i].rc == 0)
            assert_int_equal(got, i32[i].value);
    }
    assert_int_equal(proto_cmd_get_i32(cmd, "absent", &got), LSMQ_ENOTFOUND);

    proto_cmd_set(cmd, "k", "9223372036854775807");
    assert_int_equal(proto_cmd_get_i64(cmd, "k", &got64), 0);
    assert_int_equal(got64, INT64_MAX);
    assert_int_equal(proto_cmd_get_i32(cmd, "k", &got), LSMQ_EINVAL);
    proto_cmd_set(cmd, "k", "-9223372036854775808");
    assert_int_equal(proto_cmd_get_i64(cmd, "k", &got64), 0);
    assert_int_equal(got64, INT64_MIN);
    proto_cmd_set(cmd, "k", "9223372036854775808");
    assert_int_equal(proto_cmd_get_i64(cmd, "k", &got64), LSMQ_EINVAL);
    proto_cmd_set(cmd, "k", "-9223372036854775809");
    assert_int_equal(proto_cmd_get_i64(cmd, "k", &got64), LSMQ_EINVAL);
    proto_cmd_set(cmd, "k", "18446744073709551616");
    assert_int_equal(proto_cmd_get_i64(cmd, "k", &got64), LSMQ_EINVAL);
    proto_cmd_set(cmd, "k", "+1700000000123");
    assert_int_equal(proto_cmd_get_i64(cmd, "k", &got64), 0);
    assert_int_equal(got64, 1700000000123LL);
    assert_int_equal(proto_cmd_get_i64(cmd, "absent", &got64), LSMQ_ENOTFOUND);
    proto_cmd_free(cmd);
}

/* Boolean.parseBoolean: only case-insensitive "true" is true. */
static void test_java_bool_parsing(void **state)
{
    static const struct {
        const char *text;
        int value;
    } cases[] = {
        {"true", 1}, {"TRUE", 1}, {"tRuE", 1}, {"false", 0}, {"1", 0},
        {"yes", 0},  {"", 0},     {"true ", 0}, {"truex", 0}, {"tru", 0},
    };
    proto_cmd *cmd = proto_cmd_request(0);
    size_t i;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        proto_cmd_set(cmd, "k", cases[i].text);
        assert_int_equal(proto_cmd_get_bool(cmd, "k", 1), cases[i].value);
    }
    assert_int_equal(proto_cmd_get_bool(cmd, "absent", 1), 1);
    assert_int_equal(proto_cmd_get_bool(cmd, "absent", 0), 0);
    proto_cmd_free(cmd);
}

static void test_language_table(void **state)
{
    (void)state;
    assert_int_equal(proto_language_from_name("JAVA"), LANG_JAVA);
    assert_int_equal(proto_language_from_name("CPP"), LANG_CPP);
    assert_int_equal(proto_language_from_name("GO"), LANG_GO);
    assert_int_equal(proto_language_from_name("NODE_JS"), LANG_NODE_JS);
    assert_int_equal(proto_language_from_name("RUST"), LANG_RUST);
    assert_int_equal(proto_language_from_name("java"), LANG_OTHER); /* enum names are exact */
    assert_int_equal(proto_language_from_name(""), LANG_OTHER);
    assert_int_equal(proto_language_from_name(NULL), LANG_OTHER);
    assert_string_equal(proto_language_name(LANG_JAVA), "JAVA");
    assert_string_equal(proto_language_name(LANG_DOTNET), "DOTNET");
    assert_string_equal(proto_language_name(LANG_OTHER), "OTHER");
    assert_string_equal(proto_language_name(LANG_NODE_JS), "NODE_JS");
    assert_string_equal(proto_language_name(14), "OTHER");
    assert_string_equal(proto_language_name(-1), "OTHER");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_example_prefix),
        cmocka_unit_test(test_frame_check_every_length),
        cmocka_unit_test(test_frame_check_bad_lengths),
        cmocka_unit_test(test_frame_check_too_big),
        cmocka_unit_test(test_decode_example),
        cmocka_unit_test(test_decode_body_is_view),
        cmocka_unit_test(test_decode_truncated_every_length),
        cmocka_unit_test(test_decode_bad_frame_lengths),
        cmocka_unit_test(test_decode_empty_header),
        cmocka_unit_test(test_json_alions_scalars),
        cmocka_unit_test(test_json_cpp_newline),
        cmocka_unit_test(test_json_go),
        cmocka_unit_test(test_json_duplicates_last_wins),
        cmocka_unit_test(test_json_unknown_fields_and_defaults),
        cmocka_unit_test(test_json_field_forms),
        cmocka_unit_test(test_json_rejects),
        cmocka_unit_test(test_binary_decode),
        cmocka_unit_test(test_binary_truncated_every_length),
        cmocka_unit_test(test_binary_java_semantics),
        cmocka_unit_test(test_binary_empty_ext),
        cmocka_unit_test(test_binary_rejects),
        cmocka_unit_test(test_encode_matches_java_example),
        cmocka_unit_test(test_encode_response),
        cmocka_unit_test(test_encode_remark),
        cmocka_unit_test(test_encode_round_trip),
        cmocka_unit_test(test_encode_binary_as_json),
        cmocka_unit_test(test_encode_invalid_utf8),
        cmocka_unit_test(test_encode_prefix_and_limits),
        cmocka_unit_test(test_request_defaults),
        cmocka_unit_test(test_set_and_get),
        cmocka_unit_test(test_java_integer_parsing),
        cmocka_unit_test(test_java_bool_parsing),
        cmocka_unit_test(test_language_table),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
