/*
 * Typed request-header reads for the broker handlers. A Java broker turns a
 * missing @CFNotNull field or a value Long.parseLong refuses into an
 * exception, which the remoting layer answers with SYSTEM_ERROR and the
 * exception's text; these helpers produce the same code with a remark that
 * names the field, so every handler answers malformed headers alike.
 * Also the deep copy of a request that a handler keeps while it waits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "broker_hdr.h"
#include "broker_internal.h"

/* The key actually present (V1 name first), or NULL. */
static const char *present_key(const proto_cmd *req, const char *key, const char *alias)
{
    if (proto_cmd_get(req, key))
        return key;
    if (alias && proto_cmd_get(req, alias))
        return alias;
    return NULL;
}

static int missing(const char *key, char *remark)
{
    snprintf(remark, BROKER_REMARK_MAX, "the custom field <%s> is null", key);
    return -1;
}

static int unparsable(const proto_cmd *req, const char *key, char *remark)
{
    snprintf(remark, BROKER_REMARK_MAX, "the custom field <%s> has an invalid value \"%.64s\"",
             key, proto_cmd_get(req, key));
    return -1;
}

int broker__hdr_str(const proto_cmd *req, const char *key, const char *alias,
                    const char **out, char *remark)
{
    const char *k = present_key(req, key, alias);
    if (!k)
        return missing(key, remark);
    *out = proto_cmd_get(req, k);
    return 0;
}

int broker__hdr_i32(const proto_cmd *req, const char *key, const char *alias, int32_t *out,
                    char *remark)
{
    const char *k = present_key(req, key, alias);
    if (!k)
        return missing(key, remark);
    return proto_cmd_get_i32(req, k, out) == 0 ? 0 : unparsable(req, k, remark);
}

int broker__hdr_i64(const proto_cmd *req, const char *key, const char *alias, int64_t *out,
                    char *remark)
{
    const char *k = present_key(req, key, alias);
    if (!k)
        return missing(key, remark);
    return proto_cmd_get_i64(req, k, out) == 0 ? 0 : unparsable(req, k, remark);
}

int broker__hdr_opt_i32(const proto_cmd *req, const char *key, const char *alias,
                        int32_t dflt, int32_t *out, char *remark)
{
    const char *k = present_key(req, key, alias);
    if (!k) {
        *out = dflt;
        return 0;
    }
    return proto_cmd_get_i32(req, k, out) == 0 ? 0 : unparsable(req, k, remark);
}

int broker__hdr_opt_i64(const proto_cmd *req, const char *key, const char *alias,
                        int64_t dflt, int64_t *out, char *remark)
{
    const char *k = present_key(req, key, alias);
    if (!k) {
        *out = dflt;
        return 0;
    }
    return proto_cmd_get_i64(req, k, out) == 0 ? 0 : unparsable(req, k, remark);
}

bool broker__hdr_bool(const proto_cmd *req, const char *key, const char *alias, bool dflt)
{
    const char *k = present_key(req, key, alias);
    return k ? proto_cmd_get_bool(req, k, dflt) != 0 : dflt;
}

bool broker__topic_chars_valid(const char *topic)
{
    if (!topic || !*topic)
        return false;
    for (const char *p = topic; *p; p++) {
        char ch = *p;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '%' || ch == '|' || ch == '_' || ch == '-';
        if (!ok)
            return false;
    }
    return true;
}

bool broker__is_retry_topic(const char *topic)
{
    return strncmp(topic, BROKER_RETRY_PREFIX, sizeof BROKER_RETRY_PREFIX - 1) == 0;
}

void broker__reply_code(conn *c, const proto_cmd *req, int32_t code, const char *remark)
{
    if (!proto_cmd_is_oneway(req))
        server_conn_reply_code(c, req->opaque, code, remark);
}

proto_cmd *broker__cmd_copy(const proto_cmd *req)
{
    proto_cmd *copy = proto_cmd_request(req->code);
    copy->language = req->language;
    copy->version = req->version;
    copy->opaque = req->opaque;
    copy->flag = req->flag;
    copy->serialize_type = req->serialize_type;
    if (req->remark)
        proto_cmd_set_remark(copy, req->remark);
    /* In arrival order: a later duplicate replaces an earlier one, as lookups see them. */
    for (size_t i = 0; i < req->n_ext; i++)
        proto_cmd_set(copy, req->ext[i].key, req->ext[i].value);
    if (req->body_len > 0) {
        uint8_t *body = proto_xmalloc(req->body_len);
        memcpy(body, req->body, req->body_len);
        copy->body = body;
        copy->body_len = req->body_len;
    }
    return copy;
}

void broker__cmd_copy_free(proto_cmd *copy)
{
    if (!copy)
        return;
    free((void *)copy->body);
    proto_cmd_free(copy);
}
