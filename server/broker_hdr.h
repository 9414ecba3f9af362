/*
 * Request-header helpers shared by the broker's handler files: typed reads
 * of extFields with the answer Java gives when a field is missing or does
 * not parse, and the topic-name rules of TopicValidator (REMOTING.md §1.5,
 * §6.1).
 *
 * Every reader takes the field's name and an optional alias (the V2 send
 * header's single letters), uses whichever is present, and on failure
 * writes the SYSTEM_ERROR remark into `remark` and returns -1. Loop thread
 * or any thread: nothing here keeps state. Also the deep copy of a request
 * that a waiting handler keeps.
 */
#ifndef LSMQ_SERVER_BROKER_HDR_H
#define LSMQ_SERVER_BROKER_HDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net.h"
#include "remoting.h"

#define BROKER_REMARK_MAX 768

/* Mandatory fields (@CFNotNull): absent or unparsable -> -1 and a remark. */
int broker__hdr_str(const proto_cmd *req, const char *key, const char *alias,
                    const char **out, char *remark);
int broker__hdr_i32(const proto_cmd *req, const char *key, const char *alias, int32_t *out,
                    char *remark);
int broker__hdr_i64(const proto_cmd *req, const char *key, const char *alias, int64_t *out,
                    char *remark);

/* Optional fields: absent -> dflt; present but unparsable -> -1 and a remark. */
int broker__hdr_opt_i32(const proto_cmd *req, const char *key, const char *alias,
                        int32_t dflt, int32_t *out, char *remark);
int broker__hdr_opt_i64(const proto_cmd *req, const char *key, const char *alias,
                        int64_t dflt, int64_t *out, char *remark);
/* Java Boolean.parseBoolean of the first present key; dflt when absent. */
bool broker__hdr_bool(const proto_cmd *req, const char *key, const char *alias, bool dflt);

/* Only characters of ^[%|a-zA-Z0-9_-]+$ and not empty. */
bool broker__topic_chars_valid(const char *topic);
bool broker__is_retry_topic(const char *topic);

/* Reply with a code and remark unless the request was oneway. */
void broker__reply_code(conn *c, const proto_cmd *req, int32_t code, const char *remark);

/*
 * A deep copy of a request, for a handler that must go on after its call
 * returned: code, flags, opaque, header fields and body, all owned by the
 * copy (its body no longer points into a read buffer). Free it with
 * broker__cmd_copy_free, not proto_cmd_free.
 */
proto_cmd *broker__cmd_copy(const proto_cmd *req);
void broker__cmd_copy_free(proto_cmd *copy);

#endif
