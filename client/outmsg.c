/*
 * Outgoing messages on the wire (REMOTING.md §3.1, §4.4-4.7, §4.9): the
 * properties string, the SEND_MESSAGE_V2 header with its one-letter keys
 * (what the Java client sends by default), body compression, and the
 * SEND_BATCH_MESSAGE body. Pure: no I/O; the producer picks the queue
 * (header "e") per attempt.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"
#include "message_id.h"
#include "props.h"

#define MAX_BODY (4u * 1024u * 1024u)
#define COMPRESS_LEVEL 5
#define SYSFLAG_ZLIB 0x300 /* compression type 3 in bits 8-10 (Java 4.9.4+) */
#define RETRY_TOPIC_MAX 255

static int has_sep(const char *s)
{
    return s && (strchr(s, PROTO_PROP_NAME_VALUE_SEP) || strchr(s, PROTO_PROP_SEP));
}

int lsmq__outmsg_check(const lsmq_out_message *m, lsmq_errslot *e)
{
    int retry;

    if (m == NULL) {
        lsmq__error(e, -1, "no message");
        return LSMQ_EINVAL;
    }
    retry = m->topic && strncmp(m->topic, RETRY_PREFIX, strlen(RETRY_PREFIX)) == 0;
    if (!lsmq__valid_name(m->topic, retry ? RETRY_TOPIC_MAX : LSMQ_TOPIC_MAX)) {
        lsmq__error(e, -1, "bad topic name '%s' (want [%%|a-zA-Z0-9_-], at most %d bytes)",
                    m->topic ? m->topic : "(null)", LSMQ_TOPIC_MAX);
        return LSMQ_EINVAL;
    }
    if (m->body == NULL || m->body_len == 0) {
        lsmq__error(e, -1, "the message body is empty");
        return LSMQ_EINVAL;
    }
    if (m->body_len > MAX_BODY) {
        lsmq__error(e, -1, "body of %zu bytes is over the %u-byte limit", m->body_len, MAX_BODY);
        return LSMQ_ETOOBIG;
    }
    if (m->n_properties > 0 && m->properties == NULL) {
        lsmq__error(e, -1, "n_properties set without properties");
        return LSMQ_EINVAL;
    }
    if (m->delay_level < 0 || m->deliver_ms < 0 || m->delay_ms < 0) {
        lsmq__error(e, -1, "negative delay level, delivery time or delay");
        return LSMQ_EINVAL;
    }
    if ((m->delay_level > 0) + (m->deliver_ms > 0) + (m->delay_ms > 0) > 1) {
        lsmq__error(e, -1, "set one of delay_level, deliver_ms and delay_ms");
        return LSMQ_EINVAL;
    }
    if (has_sep(m->tags) || has_sep(m->keys)) {
        lsmq__error(e, -1, "tags and keys must not contain bytes 1 or 2");
        return LSMQ_EINVAL;
    }
    return 0;
}

/* The UNIQ_KEY among the user's properties, or NULL. */
static const char *user_uniq(const lsmq_out_message *m)
{
    size_t i;
    const char *v = NULL;

    for (i = 0; i < m->n_properties; i++)
        if (m->properties[i].name && strcmp(m->properties[i].name, PROTO_PROP_UNIQ_KEY) == 0)
            v = m->properties[i].value;
    return v;
}

static int put(char *buf, size_t *used, const char *name, const char *value, lsmq_errslot *e)
{
    int rc = proto_props_append(buf, PROTO_PROPS_MAX, used, name, strlen(name), value,
                                strlen(value));

    if (rc == LSMQ_ETOOBIG)
        lsmq__error(e, -1, "properties exceed %d bytes", PROTO_PROPS_MAX);
    else if (rc != 0)
        lsmq__error(e, -1, "bad property '%s' (empty, or contains bytes 1 or 2)", name);
    return rc;
}

int lsmq__outmsg_props(const lsmq_out_message *m, const char *uniq, char **out, size_t *out_len,
                  lsmq_errslot *e)
{
    char *buf = proto_xmalloc(PROTO_PROPS_MAX + 1);
    size_t used = 0, i;
    char num[24];
    int rc = 0;

    for (i = 0; rc == 0 && i < m->n_properties; i++) {
        const lsmq_property *p = &m->properties[i];

        if (p->name == NULL || p->value == NULL) {
            lsmq__error(e, -1, "property %zu has no name or value", i);
            rc = LSMQ_EINVAL;
            break;
        }
        rc = put(buf, &used, p->name, p->value, e);
    }
    /* System properties after the user's: a decoder keeps the last of a name. */
    if (rc == 0 && m->tags && *m->tags)
        rc = put(buf, &used, PROTO_PROP_TAGS, m->tags, e);
    if (rc == 0 && m->keys && *m->keys)
        rc = put(buf, &used, PROTO_PROP_KEYS, m->keys, e);
    if (rc == 0 && m->delay_level > 0) {
        snprintf(num, sizeof num, "%d", m->delay_level);
        rc = put(buf, &used, PROTO_PROP_DELAY, num, e);
    }
    if (rc == 0 && m->deliver_ms > 0) {
        snprintf(num, sizeof num, "%lld", (long long)m->deliver_ms);
        rc = put(buf, &used, PROTO_PROP_TIMER_DELIVER_MS, num, e);
    }
    if (rc == 0 && m->delay_ms > 0) {
        snprintf(num, sizeof num, "%lld", (long long)m->delay_ms);
        rc = put(buf, &used, PROTO_PROP_TIMER_DELAY_MS, num, e);
    }
    if (rc == 0)
        rc = put(buf, &used, PROTO_PROP_WAIT, "true", e);
    if (rc == 0 && uniq && user_uniq(m) == NULL)
        rc = put(buf, &used, PROTO_PROP_UNIQ_KEY, uniq, e);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    buf[used] = '\0';
    *out = buf;
    *out_len = used;
    return 0;
}

/* Header fields every send carries (SendMessageRequestHeaderV2). */
static proto_cmd *send_header(int code, const char *group, const char *topic, int sys_flag,
                              int32_t flag, const char *props)
{
    proto_cmd *cmd = proto_cmd_request(code);

    proto_cmd_set(cmd, "a", group);
    proto_cmd_set(cmd, "b", topic);
    proto_cmd_set(cmd, "c", DEFAULT_TOPIC);
    proto_cmd_set_i64(cmd, "d", DEFAULT_TOPIC_QUEUES);
    proto_cmd_set_i64(cmd, "e", -1);
    proto_cmd_set_i64(cmd, "f", sys_flag);
    proto_cmd_set_i64(cmd, "g", proto_wall_ms());
    proto_cmd_set_i64(cmd, "h", flag);
    proto_cmd_set(cmd, "i", props);
    proto_cmd_set_i64(cmd, "j", 0);
    proto_cmd_set_bool(cmd, "k", 0);
    return cmd;
}

static void uniq_of(const lsmq_out_message *m, const uint8_t ip4[4], char out[33])
{
    const char *u = user_uniq(m);

    if (u)
        lsmq__strlcpy(out, u, 33);
    else
        proto_uniq_id_new(ip4, out);
}

int lsmq__outmsg_build(const lsmq_out_message *m, const char *group, size_t compress_threshold,
                  const uint8_t ip4[4], const outmsg_extra *extra, send_req *out, lsmq_errslot *e)
{
    char *props = NULL;
    size_t props_len;
    int sys_flag = 0, rc;

    memset(out, 0, sizeof *out);
    if ((rc = lsmq__outmsg_check(m, e)) != 0)
        return rc;
    out->n_msgs = 1;
    out->uniq = proto_xcalloc(1, sizeof *out->uniq);
    uniq_of(m, ip4, out->uniq[0]);
    if ((rc = lsmq__outmsg_props(m, out->uniq[0], &props, &props_len, e)) != 0) {
        lsmq__send_req_free(out);
        return rc;
    }
    lsmq__strlcpy(out->topic, m->topic, sizeof out->topic);
    if (compress_threshold > 0 && m->body_len >= compress_threshold &&
        proto_deflate(m->body, m->body_len, COMPRESS_LEVEL, &out->body, &out->body_len) == 0) {
        sys_flag |= PROTO_SYSFLAG_COMPRESSED | SYSFLAG_ZLIB;
    } else {
        out->body = proto_xmalloc(m->body_len);
        memcpy(out->body, m->body, m->body_len);
        out->body_len = m->body_len;
    }
    out->cmd = send_header(RC_SEND_MESSAGE_V2, group, m->topic, sys_flag, m->flag, props);
    if (extra) {
        proto_cmd_set_i64(out->cmd, "j", extra->reconsume_times);
        proto_cmd_set_i64(out->cmd, "l", extra->max_reconsume_times);
    }
    free(props);
    return 0;
}

int lsmq__outmsg_build_batch(const lsmq_out_message *msgs, size_t n, const char *group,
                        const uint8_t ip4[4], send_req *out, lsmq_errslot *e)
{
    proto_buf body = {0};
    size_t i;
    int rc = 0;

    memset(out, 0, sizeof *out);
    if (msgs == NULL || n == 0) {
        lsmq__error(e, -1, "empty batch");
        return LSMQ_EINVAL;
    }
    out->n_msgs = n;
    out->uniq = proto_xcalloc(n, sizeof *out->uniq);
    for (i = 0; i < n; i++) {
        const lsmq_out_message *m = &msgs[i];
        proto_batch_entry entry;
        char *props = NULL;
        size_t props_len = 0;
        long w;

        if ((rc = lsmq__outmsg_check(m, e)) != 0)
            break;
        if (strcmp(m->topic, msgs[0].topic) != 0) {
            lsmq__error(e, -1, "a batch must have one topic ('%s' and '%s')", msgs[0].topic,
                        m->topic);
            rc = LSMQ_EINVAL;
            break;
        }
        if (strncmp(m->topic, RETRY_PREFIX, strlen(RETRY_PREFIX)) == 0 || m->delay_level ||
            m->deliver_ms || m->delay_ms) {
            lsmq__error(e, -1, "batches cannot go to retry topics or be delayed");
            rc = LSMQ_EINVAL;
            break;
        }
        uniq_of(m, ip4, out->uniq[i]);
        if ((rc = lsmq__outmsg_props(m, out->uniq[i], &props, &props_len, e)) != 0)
            break;
        entry.flag = m->flag;
        entry.body = m->body;
        entry.body_len = (uint32_t)m->body_len;
        entry.props = props;
        entry.props_len = (uint32_t)props_len;
        proto_buf_reserve(&body, proto_batch_entry_size(&entry));
        w = proto_batch_encode_entry(&entry, (uint8_t *)body.p + body.len, body.cap - body.len);
        free(props);
        if (w < 0) {
            rc = (int)w;
            lsmq__error(e, -1, "batch entry %zu does not encode", i);
            break;
        }
        body.len += (size_t)w;
        if (body.len > MAX_BODY) {
            lsmq__error(e, -1, "batch of %zu bytes is over the %u-byte limit", body.len, MAX_BODY);
            rc = LSMQ_ETOOBIG;
            break;
        }
    }
    if (rc != 0) {
        proto_buf_free(&body);
        lsmq__send_req_free(out);
        return rc;
    }
    lsmq__strlcpy(out->topic, msgs[0].topic, sizeof out->topic);
    out->body = (uint8_t *)body.p;
    out->body_len = body.len;
    /* The batch's own properties: WAIT only (§4.7); entries carry the rest. */
    out->cmd = send_header(RC_SEND_BATCH_MESSAGE, group, msgs[0].topic, 0, 0,
                           PROTO_PROP_WAIT "\001true\002");
    proto_cmd_set_bool(out->cmd, "m", 1);
    return 0;
}

void lsmq__outmsg_set_queue(send_req *r, int32_t queue_id)
{
    proto_cmd_set_i64(r->cmd, "e", queue_id);
}

void lsmq__send_req_free(send_req *r)
{
    proto_cmd_free(r->cmd);
    free(r->body);
    free(r->uniq);
    memset(r, 0, sizeof *r);
}
