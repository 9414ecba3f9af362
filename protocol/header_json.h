/*
 * JSON for remoting headers (internal to protocol/): a reader and a writer
 * specialised for RocketMQ's flat header object, so the hot path does not
 * build a general JSON tree for every frame.
 *
 * The reader accepts exactly the texts jansson 2.14's json_loadb(text, n, 0)
 * accepts and gives the values jansson's object would hold; the writer
 * produces the bytes json_dumps(JSON_COMPACT | JSON_SORT_KEYS) produced for
 * the header tree remoting.c used to build. Peers and our own tests were
 * written against that behaviour, so it is kept byte for byte.
 */
#ifndef LSMQ_PROTO_HEADER_JSON_H
#define LSMQ_PROTO_HEADER_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "remoting.h"

/* jansson's JSON_PARSER_MAX_DEPTH: deeper values are refused. */
#define HJ_MAX_DEPTH 2048

typedef enum hj_type {
    HJ_ABSENT = 0, /* the key did not occur */
    HJ_NULL,
    HJ_FALSE,
    HJ_TRUE,
    HJ_INT,
    HJ_REAL,
    HJ_STRING,
    HJ_OBJECT,
    HJ_ARRAY,
} hj_type;

/* One value. Strings stay undecoded until proto__hj_string_copy. */
typedef struct hj_value {
    hj_type type;
    int escaped;    /* HJ_STRING: text holds backslash escapes */
    const char *s;  /* HJ_STRING: the text between the quotes */
    size_t len;     /* HJ_STRING: its length (>= the decoded length) */
    long long i;    /* HJ_INT */
    double d;       /* HJ_REAL */
} hj_value;

typedef struct hj_member {
    hj_value key; /* always unescaped (escaped keys are decoded into scratch) */
    hj_value value;
} hj_member;

#define HJ_INLINE_MEMBERS 24

/*
 * The root fields remoting reads, each the last occurrence of its key, and
 * the members of extFields when it is an object: one per distinct key, at
 * its first occurrence, holding its last value (jansson's ordered object).
 */
typedef struct hj_header {
    hj_value code, version, opaque, flag, language, remark, ext;
    hj_member *members;
    size_t n_members;
    /* private */
    size_t cap_members;
    char *scratch; /* decoded keys; never more bytes than the text */
    size_t scratch_used;
    hj_member inline_members[HJ_INLINE_MEMBERS];
} hj_header;

/* Parse text[0..n). Returns 0, LSMQ_EINVAL (not JSON, or not a JSON object) or LSMQ_ENOMEM; release h in every case. */
int proto__hj_read_header(hj_header *h, const char *text, size_t n);
void proto__hj_header_release(hj_header *h);

/* Decode string v into dst, which has room for v->len + 1 bytes; returns the length. */
size_t proto__hj_string_copy(const hj_value *v, char *dst);

/*
 * cmd's header as JSON in a new malloc'ed buffer, after `front` bytes left
 * for the caller; *len is the length of the text. NULL when memory runs out.
 */
uint8_t *proto__hj_write_header(const proto_cmd *cmd, size_t front, size_t *len);

#endif
