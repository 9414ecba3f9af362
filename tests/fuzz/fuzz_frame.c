/*
 * libFuzzer target for the remoting frame codec (protocol/remoting.h).
 *
 * Each input is tried three ways: as a frame on the wire (through
 * proto_frame_check, and raw, whatever its length field claims), and as
 * the header of a well-formed frame of each serialize type, so mutations
 * reach the JSON and binary parsers without first having to get two length
 * fields right. Every command that decodes is re-encoded; our own output
 * must decode again and encode to the same bytes, and the typed getters
 * must agree with each other. JSON headers are also decoded with the
 * jansson codec the reader and writer replaced (header_json_ref.h): both
 * must accept the same headers and give the same fields, and every decoded
 * command must encode to the bytes jansson wrote. The input also goes
 * through the connection core (protocol/conn.h) whole, in pieces of every
 * few sizes, and with back-pressure pausing it: each way must deliver the
 * same requests and responses and end with the same verdict. Any
 * disagreement aborts, which libFuzzer reports as a crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "errors.h"
#include "header_json_ref.h"
#include "remoting.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_frame: %s\n", what);
        abort();
    }
}

/* Get-i32 success implies get-i64 success with the same value. */
static void check_getters(const proto_cmd *cmd)
{
    size_t i;

    for (i = 0; i < cmd->n_ext; i++) {
        const char *key = cmd->ext[i].key;
        int32_t v32;
        int64_t v64;
        int rc32 = proto_cmd_get_i32(cmd, key, &v32);
        int rc64 = proto_cmd_get_i64(cmd, key, &v64);

        must(cmd->ext[i].value != NULL, "decoded entry without a value");
        must(proto_cmd_get(cmd, key) != NULL, "decoded key not found");
        must(rc32 == 0 || rc32 == LSMQ_EINVAL, "get_i32 code");
        must(rc64 == 0 || rc64 == LSMQ_EINVAL, "get_i64 code");
        if (rc32 == 0)
            must(rc64 == 0 && v64 == v32, "get_i32 and get_i64 disagree");
        (void)proto_cmd_get_bool(cmd, key, 0);
        if (proto_cmd_get(cmd, "\x01no-such-key") == NULL)
            must(proto_cmd_get2(cmd, "\x01no-such-key", key) == proto_cmd_get(cmd, key),
                 "get2 fallback");
    }
}

static void same_fields(const proto_cmd *a, const proto_cmd *b)
{
    must(a->code == b->code, "code changed");
    must(a->flag == b->flag, "flag changed");
    must(a->opaque == b->opaque, "opaque changed");
    must(a->version == b->version, "version changed");
    must(a->language == b->language, "language changed");
    must((a->remark == NULL) == (b->remark == NULL), "remark presence changed");
    must(a->body_len == b->body_len, "body length changed");
    if (a->body_len > 0)
        must(memcmp(a->body, b->body, a->body_len) == 0, "body changed");
}

/*
 * Encode, decode, encode again: the second encoding must equal the first,
 * and the fixed fields must survive.
 */
static void check_reencode(const proto_cmd *cmd)
{
    uint8_t *enc1, *enc2, *prefix;
    size_t len1, len2, plen, flen = 0;
    proto_cmd *back = NULL;
    char err[128];

    must(proto_cmd_encode(cmd, cmd->body, cmd->body_len, &enc1, &len1) == 0, "encode");
    must(proto_frame_check(enc1, len1, PROTO_FRAME_MAX_DEFAULT, &flen) == 1 && flen == len1,
         "own frame not whole");
    if (proto_cmd_decode(enc1, len1, &back, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_frame: own output refused: %s\n", err);
        abort();
    }
    same_fields(cmd, back);
    must(proto_cmd_encode(back, back->body, back->body_len, &enc2, &len2) == 0, "re-encode");
    must(len1 == len2 && memcmp(enc1, enc2, len1) == 0, "encoding not stable");

    must(proto_cmd_encode_prefix(cmd, cmd->body_len, &prefix, &plen) == 0, "prefix");
    must(plen + cmd->body_len == len1 && memcmp(prefix, enc1, plen) == 0,
         "prefix differs from whole frame");
    free(prefix);
    free(enc2);
    free(enc1);
    proto_cmd_free(back);
}

/* A frame whose prefix proto_cmd_decode accepts and whose header is JSON. */
static int is_json_frame(const uint8_t *frame, size_t len, size_t *hlen)
{
    uint32_t length, word;

    if (len < 8)
        return 0;
    length = (uint32_t)frame[0] << 24 | (uint32_t)frame[1] << 16 | (uint32_t)frame[2] << 8 |
             frame[3];
    word = (uint32_t)frame[4] << 24 | (uint32_t)frame[5] << 16 | (uint32_t)frame[6] << 8 |
           frame[7];
    *hlen = word & 0xFFFFFFu;
    return length == len - 4 && word >> 24 == PROTO_SERIALIZE_JSON && *hlen <= len - 8;
}

/* The decode of a JSON header must match the jansson reference exactly. */
static void check_against_jansson(const uint8_t *frame, size_t len, int rc,
                                  const proto_cmd *cmd)
{
    ref_header ref;
    const char *diff;
    size_t hlen;

    if (rc == LSMQ_ENOMEM || !is_json_frame(frame, len, &hlen))
        return;
    ref_decode((const char *)frame + 8, hlen, &ref);
    if ((diff = ref_compare(rc, cmd, &ref)) != NULL) {
        fprintf(stderr, "fuzz_frame: JSON header differs from jansson: %s\n", diff);
        abort();
    }
    ref_header_free(&ref);
}

/* Our header text for cmd must be the bytes jansson's json_dumps wrote. */
static void check_encode_against_jansson(const proto_cmd *cmd)
{
    uint8_t *prefix;
    size_t plen;
    char *want = ref_encode(cmd);

    must(proto_cmd_encode_prefix(cmd, 0, &prefix, &plen) == 0, "prefix for jansson");
    must(plen - 8 == strlen(want) && memcmp(prefix + 8, want, plen - 8) == 0,
         "encoding differs from jansson's");
    free(prefix);
    free(want);
}

static void decode_one(const uint8_t *frame, size_t len)
{
    proto_cmd *cmd = (proto_cmd *)1;
    char err[128];
    int rc = proto_cmd_decode(frame, len, &cmd, err, sizeof err);

    check_against_jansson(frame, len, rc, rc == 0 ? cmd : NULL);
    if (rc != 0) {
        must(cmd == NULL, "failed decode left a command");
        must(rc == LSMQ_ECORRUPT || rc == LSMQ_ENOMEM, "unexpected decode error");
        return;
    }
    must(cmd->body == NULL || (cmd->body >= frame && cmd->body + cmd->body_len == frame + len),
         "body outside the frame");
    check_getters(cmd);
    check_reencode(cmd);
    check_encode_against_jansson(cmd);
    proto_cmd_free(cmd);
}

/* data as the header of a frame of the given serialize type, body "B". */
static void decode_as_header(int type, const uint8_t *data, size_t size)
{
    size_t n = 8 + size + 1;
    uint8_t *f;

    if (size > 0xFFFFFF)
        return;
    f = malloc(n);
    must(f != NULL, "malloc");
    f[0] = (uint8_t)((n - 4) >> 24);
    f[1] = (uint8_t)((n - 4) >> 16);
    f[2] = (uint8_t)((n - 4) >> 8);
    f[3] = (uint8_t)(n - 4);
    f[4] = (uint8_t)type;
    f[5] = (uint8_t)(size >> 16);
    f[6] = (uint8_t)(size >> 8);
    f[7] = (uint8_t)size;
    if (size > 0)
        memcpy(f + 8, data, size);
    f[n - 1] = 'B';
    decode_one(f, n);
    free(f);
}

/* What one run of the connection core delivered. */
typedef struct fed {
    size_t requests, responses, failed;
    int rc;
} fed;

static void fed_request_cb(proto_conn *c, proto_cmd *req, void *arg)
{
    fed *f = arg;
    proto_cmd *resp = proto_cmd_response(RS_SUCCESS, 0, NULL);

    f->requests++;
    /* An answer of a few hundred bytes, so back-pressure has output to count. */
    proto_conn_reply(c, req->opaque, resp, (void *)"0123456789abcdef", 16, 0);
    proto_cmd_free(resp);
}

static void fed_reply_cb(int rc, proto_reply *reply, const char *why, void *arg)
{
    fed *f = arg;

    if (rc == 0)
        f->responses++;
    else
        f->failed++;
    proto_reply_free(reply);
}

/* Write off everything queued, as a socket that keeps up would. */
static int drain(proto_conn *c)
{
    struct iovec iov[16];
    size_t n, i, bytes;
    int rc = 0;

    while (rc == 0 && (n = proto_conn_output_iov(c, iov, 16)) > 0) {
        for (i = 0, bytes = 0; i < n; i++)
            bytes += iov[i].iov_len;
        rc = proto_conn_output_done(c, bytes);
    }
    return rc;
}

/* Feed data in pieces of step bytes (0: whole); max_output > 0 pauses and drains. */
static fed feed_conn(const uint8_t *data, size_t size, size_t step, size_t max_output)
{
    proto_conn_options o = {.name = "fuzz", .max_output = max_output};
    proto_conn *c = proto_conn_create(&o);
    fed f = {0, 0, 0, 0};
    size_t pos = 0;

    proto_conn_set_request_cb(c, fed_request_cb, &f);
    for (int32_t op = 0; op < 16; op++)
        proto_conn_expect(c, op, INT64_MAX, fed_reply_cb, &f);
    while (pos < size && f.rc == 0) {
        size_t n = step == 0 || size - pos < step ? size - pos : step;

        f.rc = proto_conn_feed(c, data + pos, n);
        pos += n;
        if (f.rc == 0 && max_output > 0)
            f.rc = drain(c);
    }
    if (f.rc == 0)
        f.rc = drain(c);
    must(f.rc == 0 || f.rc == LSMQ_ECORRUPT || f.rc == LSMQ_ETOOBIG || f.rc == LSMQ_ENOMEM,
         "connection core error code");
    proto_conn_fail_all(c, LSMQ_ECLOSED, NULL);
    must(proto_conn_pending(c) == 0, "requests left after fail_all");
    must(f.responses + f.failed == 16, "a request completed twice or never");
    proto_conn_free(c);
    return f;
}

static void check_conn(const uint8_t *data, size_t size)
{
    static const size_t steps[] = {1, 3, 7, 64};
    fed whole = feed_conn(data, size, 0, 0);

    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        fed part = feed_conn(data, size, steps[i], i % 2 ? 64 : 0);

        must(part.rc == whole.rc, "verdict depends on how the bytes arrive");
        must(part.requests == whole.requests && part.responses == whole.responses,
             "frames depend on how the bytes arrive");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t flen = 0;
    int rc = proto_frame_check(data, size, PROTO_FRAME_MAX_DEFAULT, &flen);

    must(rc == 0 || rc == 1 || rc == LSMQ_ECORRUPT || rc == LSMQ_ETOOBIG, "frame check code");
    if (rc == 1) {
        must(flen >= 8 && flen <= size, "frame length out of range");
        decode_one(data, flen);
    }
    decode_one(data, size);
    decode_as_header(0, data, size);
    decode_as_header(1, data, size);
    check_conn(data, size);
    return 0;
}
