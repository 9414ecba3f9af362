/*
 * Remoting commands: the frames RocketMQ clients and servers exchange
 * (REMOTING.md §1). Pure codec, no I/O.
 *
 *   int32 length (bytes after this field) | int32 (serialize type << 24 | header length)
 *   | header (JSON, type 0; or ROCKETMQ binary, type 1) | body
 *
 * Decoding accepts both header types, extFields values of any JSON scalar
 * type (kept as their literal text), unknown fields and any key order.
 * Encoding always writes compact JSON headers with keys sorted and every
 * extFields value a string, which every client parses.
 *
 * Ownership: a proto_cmd owns its strings. A decoded command's body is a
 * view into the frame buffer given to proto_cmd_decode and is valid only as
 * long as that buffer is. Free commands with proto_cmd_free.
 */
#ifndef LSMQ_PROTO_REMOTING_H
#define LSMQ_PROTO_REMOTING_H

#include <stddef.h>
#include <stdint.h>

#include "codes.h"
#include "errors.h"

#define PROTO_FRAME_MAX_DEFAULT (16u * 1024u * 1024u) /* including the length field */
#define PROTO_SERIALIZE_JSON 0
#define PROTO_SERIALIZE_ROCKETMQ 1
#define PROTO_FLAG_RESPONSE 0x1
#define PROTO_FLAG_ONEWAY 0x2

typedef struct proto_ext {
    char *key;
    char *value;
} proto_ext;

typedef struct proto_cmd {
    int32_t code;
    int32_t language;      /* enum proto_language */
    int32_t version;
    int32_t opaque;
    int32_t flag;          /* PROTO_FLAG_* */
    char *remark;          /* NULL when absent */
    proto_ext *ext;        /* extFields, in arrival order; later duplicates win on lookup */
    size_t n_ext;
    size_t cap_ext;
    int serialize_type;    /* of a decoded command */
    const uint8_t *body;   /* decoded: view into the frame; NULL when empty */
    size_t body_len;
} proto_cmd;

/*
 * Frame boundary: given the bytes received so far, set *frame_len to the
 * whole frame's size (length field included) once the 4-byte length is
 * there. Returns 1 when buf holds a whole frame, 0 when more bytes are
 * needed, LSMQ_ETOOBIG when the frame exceeds max_frame, LSMQ_ECORRUPT when
 * the length is impossible (negative, or too small to hold the header word).
 */
int proto_frame_check(const uint8_t *buf, size_t len, size_t max_frame, size_t *frame_len);

/*
 * Decode one whole frame (as delimited by proto_frame_check). On success
 * *out is a new command; on failure returns LSMQ_ECORRUPT (or LSMQ_ENOMEM)
 * and writes a reason into errbuf.
 */
int proto_cmd_decode(const uint8_t *frame, size_t len, proto_cmd **out, char *errbuf,
                     size_t errlen);

void proto_cmd_free(proto_cmd *cmd);

/* A new request (flag 0) or response (flag RESPONSE, given opaque) with our language/version. */
proto_cmd *proto_cmd_request(int32_t code);
proto_cmd *proto_cmd_response(int32_t code, int32_t opaque, const char *remark);

int proto_cmd_is_response(const proto_cmd *cmd);
int proto_cmd_is_oneway(const proto_cmd *cmd);

/* Set the remark (copied; NULL clears it). */
void proto_cmd_set_remark(proto_cmd *cmd, const char *remark);
/* printf-style remark. */
void proto_cmd_set_remarkf(proto_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* extFields: set (replacing an earlier value of the key), typed setters, lookup. */
void proto_cmd_set(proto_cmd *cmd, const char *key, const char *value);
void proto_cmd_set_i64(proto_cmd *cmd, const char *key, int64_t value);
void proto_cmd_set_bool(proto_cmd *cmd, const char *key, int value);
/* The value of key (last occurrence), or NULL. Valid while cmd lives. */
const char *proto_cmd_get(const proto_cmd *cmd, const char *key);
/* The first key present of the two (e.g. V1 "topic" or V2 "b"), or NULL. */
const char *proto_cmd_get2(const proto_cmd *cmd, const char *key, const char *alias);

/*
 * Typed lookups, parsed as Java does (Integer.parseInt, Long.parseLong,
 * Boolean.parseBoolean). Return 0 and set *out; LSMQ_ENOTFOUND when the key
 * is absent; LSMQ_EINVAL when the value does not parse or is out of range.
 */
int proto_cmd_get_i32(const proto_cmd *cmd, const char *key, int32_t *out);
int proto_cmd_get_i64(const proto_cmd *cmd, const char *key, int64_t *out);
/* Absent -> dflt; anything but case-insensitive "true" -> 0. */
int proto_cmd_get_bool(const proto_cmd *cmd, const char *key, int dflt);

/*
 * Encode the frame prefix of cmd for a body of body_len bytes: the length
 * word, header word and JSON header. The body follows it on the wire
 * unchanged (write both with writev). *out is malloc'ed; free it.
 * Returns 0, or LSMQ_ETOOBIG if the frame would exceed the protocol's limits.
 */
int proto_cmd_encode_prefix(const proto_cmd *cmd, size_t body_len, uint8_t **out,
                            size_t *out_len);

/* Convenience: a whole frame (prefix + body) in one malloc'ed buffer. */
int proto_cmd_encode(const proto_cmd *cmd, const void *body, size_t body_len, uint8_t **out,
                     size_t *out_len);

/* LanguageCode name <-> number ("JAVA" <-> 0); unknown names give LANG_OTHER. */
int proto_language_from_name(const char *name);
const char *proto_language_name(int language);

#endif
