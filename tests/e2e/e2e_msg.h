/*
 * Message traffic helpers for the end-to-end tests: build send, pull and
 * topic requests the way the Java client and mqadmin fill their headers,
 * read typed header fields of responses, and split a pull body into
 * records. Header-only (static inline) so each test program takes what it
 * uses.
 */
#ifndef LSMQ_TEST_E2E_MSG_H
#define LSMQ_TEST_E2E_MSG_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e_time.h"
#include "message_id.h"
#include "props.h"
#include "record.h"
#include "remoting.h"
#include "wire.h"

/* PullSysFlag bits. */
#define E2E_PULL_COMMIT 0x1
#define E2E_PULL_SUSPEND 0x2
#define E2E_PULL_SUBSCRIPTION 0x4

/* SEND_MESSAGE_V2 as the Java producer fills it (single-letter keys). */
static inline proto_cmd *e2e_send_v2(const char *topic, int queue, const char *props)
{
    proto_cmd *c = proto_cmd_request(RC_SEND_MESSAGE_V2);
    proto_cmd_set(c, "a", "e2e_producer");
    proto_cmd_set(c, "b", topic);
    proto_cmd_set(c, "c", "TBW102");
    proto_cmd_set_i64(c, "d", 4);
    proto_cmd_set_i64(c, "e", queue);
    proto_cmd_set_i64(c, "f", 0);
    proto_cmd_set_i64(c, "g", proto_wall_ms());
    proto_cmd_set_i64(c, "h", 0);
    if (props)
        proto_cmd_set(c, "i", props);
    proto_cmd_set_i64(c, "j", 0);
    proto_cmd_set_bool(c, "k", 0);
    return c;
}

/* UPDATE_AND_CREATE_TOPIC as mqadmin updateTopic fills it. */
static inline proto_cmd *e2e_create_topic(const char *topic, int read_queues, int write_queues,
                                          int perm)
{
    proto_cmd *c = proto_cmd_request(RC_UPDATE_AND_CREATE_TOPIC);
    proto_cmd_set(c, "topic", topic);
    proto_cmd_set(c, "defaultTopic", "TBW102");
    proto_cmd_set_i64(c, "readQueueNums", read_queues);
    proto_cmd_set_i64(c, "writeQueueNums", write_queues);
    proto_cmd_set_i64(c, "perm", perm);
    proto_cmd_set(c, "topicFilterType", "SINGLE_TAG");
    proto_cmd_set_i64(c, "topicSysFlag", 0);
    proto_cmd_set_bool(c, "order", 0);
    return c;
}

/* PULL_MESSAGE with every mandatory field. */
static inline proto_cmd *e2e_pull(const char *group, const char *topic, int queue,
                                  int64_t offset, int max, int sys_flag, int64_t suspend_ms,
                                  const char *subscription)
{
    proto_cmd *c = proto_cmd_request(RC_PULL_MESSAGE);
    proto_cmd_set(c, "consumerGroup", group);
    proto_cmd_set(c, "topic", topic);
    proto_cmd_set_i64(c, "queueId", queue);
    proto_cmd_set_i64(c, "queueOffset", offset);
    proto_cmd_set_i64(c, "maxMsgNums", max);
    proto_cmd_set_i64(c, "sysFlag", sys_flag);
    proto_cmd_set_i64(c, "commitOffset", 0);
    proto_cmd_set_i64(c, "suspendTimeoutMillis", suspend_ms);
    if (subscription)
        proto_cmd_set(c, "subscription", subscription);
    proto_cmd_set_i64(c, "subVersion", 0);
    proto_cmd_set(c, "expressionType", "TAG");
    return c;
}

/* An int64 header field of a response; -999 when absent (tests compare). */
static inline int64_t e2e_i64(const proto_cmd *c, const char *key)
{
    int64_t v;
    return proto_cmd_get_i64(c, key, &v) == 0 ? v : -999;
}

/* Split a pull body into records; returns how many (stops at cap or a bad one). */
static inline size_t e2e_records(const uint8_t *body, size_t len, proto_record *out, size_t cap)
{
    size_t n = 0, pos = 0;
    while (pos < len && n < cap) {
        long size = proto_record_decode(body + pos, len - pos, &out[n]);
        if (size <= 0)
            return n;
        pos += (size_t)size;
        n++;
    }
    return n;
}

/* Property of a record copied into out (NUL-terminated); false when absent. */
static inline bool e2e_prop(const proto_record *r, const char *name, char *out, size_t cap)
{
    const char *v;
    size_t vl;
    if (!proto_props_get(r->props, r->props_len, name, &v, &vl))
        return false;
    snprintf(out, cap, "%.*s", (int)vl, v);
    return true;
}

/* Body of a record as a NUL-terminated string (truncated to cap). */
static inline const char *e2e_body(const proto_record *r, char *out, size_t cap)
{
    snprintf(out, cap, "%.*s", (int)r->body_len, (const char *)r->body);
    return out;
}

/* Does the remark contain `needle`? */
static inline bool e2e_remark_has(const proto_cmd *c, const char *needle)
{
    return c->remark && strstr(c->remark, needle) != NULL;
}

#endif
