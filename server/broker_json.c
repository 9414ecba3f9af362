/*
 * Small helpers for the JSON bodies the broker writes and the header fields
 * it requires. Bodies go out compact with keys sorted, as fastjson writes
 * them (REMOTING.md §5.1); maps keyed by MessageQueue objects are not JSON
 * at all, so those are assembled as text around jansson-written pieces.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "broker_hdr.h"
#include "broker_internal.h"

json_t *broker_json_str(const char *s)
{
    json_t *v = json_string(s ? s : "");
    if (v)
        return v;
    /* Client-supplied names need not be UTF-8; keep the ASCII, mark the rest. */
    char *copy = proto_xstrdup(s);
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    v = json_string(copy);
    free(copy);
    return v;
}

char *broker_json_dump(const json_t *v, size_t *len)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (text && len)
        *len = strlen(text);
    return text;
}

json_t *broker_json_mq(const char *broker_name, const char *topic, uint32_t queue_id)
{
    json_t *mq = json_object();
    json_object_set_new(mq, "brokerName", broker_json_str(broker_name));
    json_object_set_new(mq, "queueId", json_integer(queue_id));
    json_object_set_new(mq, "topic", broker_json_str(topic));
    return mq;
}

void broker_text_add(broker_text *t, const char *s, size_t n) { proto_buf_put(t, s, n); }

void broker_text_adds(broker_text *t, const char *s) { proto_buf_puts(t, s); }

void broker_text_add_json(broker_text *t, const json_t *v)
{
    size_t n = 0;
    char *text = broker_json_dump(v, &n);
    if (!text)
        proto_oom(0);
    broker_text_add(t, text, n);
    free(text);
}

void broker_reply_json(conn *c, int32_t opaque, json_t *v)
{
    size_t n = 0;
    char *text = broker_json_dump(v, &n);
    json_decref(v);
    if (!text)
        proto_oom(0);
    server_conn_reply_owned(c, opaque, proto_cmd_response(RS_SUCCESS, opaque, NULL), text, n);
}

void broker_reply_codef(conn *c, int32_t opaque, int32_t code, const char *fmt, ...)
{
    char remark[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(remark, sizeof remark, fmt, ap);
    va_end(ap);
    server_conn_reply_code(c, opaque, code, remark);
}

/* The header readers of broker_hdr.c, answering SYSTEM_ERROR with their remark. */
const char *broker_require(conn *c, const proto_cmd *req, const char *name)
{
    char remark[BROKER_REMARK_MAX];
    const char *v = NULL;
    if (broker__hdr_str(req, name, NULL, &v, remark) == 0)
        return v;
    server_conn_reply_code(c, req->opaque, RS_SYSTEM_ERROR, remark);
    return NULL;
}

int broker_require_i32(conn *c, const proto_cmd *req, const char *name, int32_t *out)
{
    char remark[BROKER_REMARK_MAX];
    if (broker__hdr_i32(req, name, NULL, out, remark) == 0)
        return 0;
    server_conn_reply_code(c, req->opaque, RS_SYSTEM_ERROR, remark);
    return -1;
}

int broker_require_i64(conn *c, const proto_cmd *req, const char *name, int64_t *out)
{
    char remark[BROKER_REMARK_MAX];
    if (broker__hdr_i64(req, name, NULL, out, remark) == 0)
        return 0;
    server_conn_reply_code(c, req->opaque, RS_SYSTEM_ERROR, remark);
    return -1;
}
