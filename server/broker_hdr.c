/*
 * Typed request-header reads for the broker handlers. A Java broker turns a
 * missing @CFNotNull field or a value Long.parseLong refuses into an
 * exception, which the remoting layer answers with SYSTEM_ERROR and the
 * exception's text; these helpers produce the same code with a remark that
 * names the field, so every handler answers malformed headers alike.
 */
#include <stdio.h>
#include <string.h>

#include "broker.h"
#include "broker_hdr.h"

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
        conn_reply_code(c, req->opaque, code, remark);
}
