/*
 * Message look-ups of the admin API (lsmq_admin.h, "Broker: messages"):
 * VIEW_MESSAGE_BY_ID by log position or offset message id, QUERY_MESSAGE
 * by key on one broker or over a topic's route, and a consumer-less
 * PULL_MESSAGE for reading a queue at an offset.
 *
 * Every answer that carries messages carries stored records back to back
 * (REMOTING.md §4.1); they become lsmq_message objects with the decoder
 * the consumers use (message.c), so bodies are inflated the same way.
 *
 * The route-wide key query filters as MQAdminImpl.queryMessage does: a
 * broker's key index may return messages whose key only collides (the Java
 * index is a hash), so only messages of the topic that carry the key
 * exactly are kept.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"
#include "message_id.h"

#define TOOLS_CONSUMER_GROUP "TOOLS_CONSUMER" /* MixAll.TOOLS_CONSUMER_GROUP */
#define PULL_FLAG_SUBSCRIPTION 0x4
#define KEY_SEPARATOR ' '                    /* MessageConst.KEY_SEPARATOR */

static int empty(const char *s)
{
    return !s || !*s;
}

/* ------------------------------------------------------------------ */
/* Records and hosts                                                   */
/* ------------------------------------------------------------------ */

static void append_msg(lsmq_message ***msgs, size_t *n, lsmq_message *m)
{
    *msgs = proto_xrealloc(*msgs, (*n + 1) * sizeof **msgs);
    (*msgs)[(*n)++] = m;
}

int lsmq_admin_decode_messages(const void *body, size_t len, const char *broker_name,
                               lsmq_message ***msgs, size_t *n)
{
    const uint8_t *p = body;
    size_t pos = 0;

    if (!msgs || !n || (len && !body))
        return LSMQ_EINVAL;
    *msgs = NULL;
    *n = 0;
    while (pos < len) {
        proto_record rec;
        lsmq_message *m = NULL;
        long size = proto_record_decode(p + pos, len - pos, &rec);

        if (size <= 0 || lsmq__msg_decode(&rec, broker_name, &m) != 0) {
            lsmq_messages_free(*msgs, *n);
            *msgs = NULL;
            *n = 0;
            return LSMQ_ECORRUPT;
        }
        pos += (size_t)size;
        append_msg(msgs, n, m);
    }
    return 0;
}

static const char *host_text(const proto_host *h, char *buf, size_t cap)
{
    char ip[64] = "?";

    inet_ntop(h->v6 ? AF_INET6 : AF_INET, h->ip, ip, sizeof ip);
    snprintf(buf, cap, "%s:%u", ip, (unsigned)h->port);
    return buf;
}

const char *lsmq_admin_message_born_host(const lsmq_message *m, char *buf, size_t cap)
{
    return host_text(&m->born_host, buf, cap);
}

const char *lsmq_admin_message_store_host(const lsmq_message *m, char *buf, size_t cap)
{
    return host_text(&m->store_host, buf, cap);
}

int lsmq_admin_decode_offset_msg_id(const char *msg_id, char *addr, size_t addr_cap,
                                    int64_t *log_position)
{
    proto_host h;
    uint64_t pos;

    if (!msg_id || !addr || !log_position ||
        proto_msgid_decode(msg_id, strlen(msg_id), &h, &pos) != 0 || pos > INT64_MAX)
        return LSMQ_EINVAL;
    if (h.v6) {
        char ip[64] = "?";
        inet_ntop(AF_INET6, h.ip, ip, sizeof ip);
        snprintf(addr, addr_cap, "[%s]:%u", ip, (unsigned)h.port);
    } else {
        host_text(&h, addr, addr_cap);
    }
    *log_position = (int64_t)pos;
    return 0;
}

/* ------------------------------------------------------------------ */
/* One exchange whose body is records                                  */
/* ------------------------------------------------------------------ */

/*
 * Send req (freed here); *resp holds the answer, whatever its code, and
 * *body its body. 0, or a transport error (recorded).
 */
static int exchange(lsmq_admin *a, const char *addr, proto_cmd *req, int timeout_ms,
                    proto_cmd **resp, char **body, size_t *len)
{
    int rc = lsmq_admin_call(a, addr, req, NULL, 0, timeout_ms, resp, body, len);

    proto_cmd_free(req);
    return rc;
}

/* A refusal recorded on the handle; needs the request for its name. */
static int refused(lsmq_admin *a, const proto_cmd *resp, const char *addr, int32_t code)
{
    proto_cmd *req = proto_cmd_request(code);
    int rc = lsmq__admin_refused(a, resp, addr, req);

    proto_cmd_free(req);
    return rc;
}

/* The records of a response from addr, decoded; a failure is recorded on the handle. */
static int decode_records(lsmq_admin *a, const char *addr, const char *body, size_t len,
                          const char *broker_name, lsmq_message ***msgs, size_t *n)
{
    int rc = lsmq_admin_decode_messages(body, len, broker_name, msgs, n);

    if (rc != 0)
        lsmq__error(&a->err, -1, "the records from %s do not decode", addr);
    return rc;
}

/* ------------------------------------------------------------------ */
/* VIEW_MESSAGE_BY_ID                                                  */
/* ------------------------------------------------------------------ */

int lsmq_admin_view_message(lsmq_admin *a, const char *broker_addr, int64_t log_position,
                            int timeout_ms, lsmq_message ***msgs, size_t *n)
{
    proto_cmd *resp = NULL;
    char *body = NULL;
    size_t len = 0;
    int rc;

    if (empty(broker_addr) || !msgs || !n)
        return lsmq__admin_bad_arg(a, __func__);
    *msgs = NULL;
    *n = 0;
    proto_cmd *req = proto_cmd_request(RC_VIEW_MESSAGE_BY_ID);
    proto_cmd_set_i64(req, "offset", log_position);
    rc = exchange(a, broker_addr, req, timeout_ms, &resp, &body, &len);
    if (rc == 0 && resp->code != RS_SUCCESS)
        rc = refused(a, resp, broker_addr, RC_VIEW_MESSAGE_BY_ID);
    else if (rc == 0 && (rc = decode_records(a, broker_addr, body, len, "", msgs, n)) == 0 &&
             *n != 1) {
        lsmq_messages_free(*msgs, *n);
        *msgs = NULL;
        *n = 0;
        rc = lsmq__admin_bad_body(a, broker_addr, RC_VIEW_MESSAGE_BY_ID);
    }
    free(body);
    proto_cmd_free(resp);
    return rc;
}

int lsmq_admin_view_message_by_id(lsmq_admin *a, const char *offset_msg_id, int timeout_ms,
                                  lsmq_message ***msgs, size_t *n)
{
    char addr[128];
    int64_t pos;

    if (!msgs || !n)
        return lsmq__admin_bad_arg(a, __func__);
    *msgs = NULL;
    *n = 0;
    if (lsmq_admin_decode_offset_msg_id(offset_msg_id, addr, sizeof addr, &pos) != 0) {
        lsmq__error(&a->err, -1, "'%.80s' is not an offset message id (32 or 56 hex characters)",
                    offset_msg_id ? offset_msg_id : "");
        return LSMQ_EINVAL;
    }
    return lsmq_admin_view_message(a, addr, pos, timeout_ms, msgs, n);
}

/* ------------------------------------------------------------------ */
/* QUERY_MESSAGE                                                       */
/* ------------------------------------------------------------------ */

/* One broker's answer, appended to *msgs (broker_name stamped on each). */
static int query_one(lsmq_admin *a, const char *addr, const char *broker_name,
                     const lsmq_admin_key_query *q, int timeout_ms, lsmq_message ***msgs,
                     size_t *n)
{
    proto_cmd *resp = NULL;
    char *body = NULL;
    size_t len = 0;
    lsmq_message **got = NULL;
    size_t n_got = 0;
    int rc;

    proto_cmd *req = proto_cmd_request(RC_QUERY_MESSAGE);
    proto_cmd_set(req, "topic", q->topic);
    proto_cmd_set(req, "key", q->key);
    proto_cmd_set_i64(req, "maxNum", q->max_num);
    proto_cmd_set_i64(req, "beginTimestamp", q->begin_ms);
    proto_cmd_set_i64(req, "endTimestamp", q->end_ms);
    proto_cmd_set(req, "_UNIQUE_KEY_QUERY", q->unique_key ? "true" : "false");
    rc = exchange(a, addr, req, timeout_ms, &resp, &body, &len);
    if (rc == 0 && resp->code != RS_SUCCESS)
        rc = refused(a, resp, addr, RC_QUERY_MESSAGE);
    else if (rc == 0)
        rc = decode_records(a, addr, body, len, broker_name, &got, &n_got);
    for (size_t i = 0; i < n_got; i++)
        append_msg(msgs, n, got[i]);
    free(got);
    free(body);
    proto_cmd_free(resp);
    return rc;
}

static int valid_query(const lsmq_admin_key_query *q)
{
    return q && !empty(q->topic) && !empty(q->key);
}

int lsmq_admin_query_message(lsmq_admin *a, const char *broker_addr, const lsmq_admin_key_query *q,
                             int timeout_ms, lsmq_message ***msgs, size_t *n)
{
    if (empty(broker_addr) || !valid_query(q) || !msgs || !n)
        return lsmq__admin_bad_arg(a, __func__);
    return query_one(a, broker_addr, "", q, timeout_ms, msgs, n);
}

/* Does m really carry the key (MQAdminImpl's check after the query)? */
static int carries_key(const lsmq_message *m, const lsmq_admin_key_query *q)
{
    if (q->unique_key)
        return strcmp(lsmq_message_id(m), q->key) == 0;
    if (!m->keys || strcmp(m->queue_topic, q->topic) != 0)
        return 0;
    size_t klen = strlen(q->key);
    for (const char *p = m->keys; *p;) {
        const char *end = strchr(p, KEY_SEPARATOR);
        size_t wlen = end ? (size_t)(end - p) : strlen(p);
        if (wlen == klen && memcmp(p, q->key, klen) == 0)
            return 1;
        p += wlen;
        if (*p)
            p++;
    }
    return 0;
}

static int cmp_store_time(const void *a, const void *b)
{
    const lsmq_message *x = *(lsmq_message *const *)a, *y = *(lsmq_message *const *)b;

    if (x->store_timestamp != y->store_timestamp)
        return x->store_timestamp < y->store_timestamp ? -1 : 1;
    return (x->commit_log_offset > y->commit_log_offset) -
           (x->commit_log_offset < y->commit_log_offset);
}

/* Keep the messages that carry the key; free the others. */
static void keep_matches(const lsmq_admin_key_query *q, lsmq_message **v, size_t *n)
{
    size_t kept = 0;

    for (size_t i = 0; i < *n; i++) {
        if (carries_key(v[i], q))
            v[kept++] = v[i];
        else
            lsmq__msg_free(v[i]);
    }
    *n = kept;
}

int lsmq_admin_query_message_by_key(lsmq_admin *a, const char *namesrv,
                                    const lsmq_admin_key_query *q, int timeout_ms,
                                    lsmq_message ***msgs, size_t *n)
{
    lsmq_admin_route *rt = NULL;
    int rc, answered = 0, last_err = 0;

    if (!valid_query(q) || !msgs || !n)
        return lsmq__admin_bad_arg(a, __func__);
    *msgs = NULL;
    *n = 0;
    if ((rc = lsmq_admin_get_route(a, namesrv, q->topic, timeout_ms, &rt)) != 0)
        return rc;
    for (size_t i = 0; i < rt->n_brokers; i++) {
        const char *addr = lsmq_admin_broker_master(&rt->brokers[i]);
        if (!addr)
            continue;
        rc = query_one(a, addr, rt->brokers[i].name, q, timeout_ms, msgs, n);
        if (rc == 0 || rc == LSMQ_ENOTFOUND)
            answered = 1;
        else
            last_err = rc;
    }
    lsmq_admin_route_free(rt);
    keep_matches(q, *msgs, n);
    if (*n == 0) {
        free(*msgs);
        *msgs = NULL;
        if (!answered && last_err)
            return last_err; /* every broker refused: its error is the last one recorded */
        lsmq__error(&a->err, RS_QUERY_NOT_FOUND, "query message by key finished, but no message.");
        return LSMQ_ENOTFOUND;
    }
    qsort(*msgs, *n, sizeof **msgs, cmp_store_time);
    return 0;
}

/* ------------------------------------------------------------------ */
/* PULL_MESSAGE                                                        */
/* ------------------------------------------------------------------ */

/* Is tag one of the "A || B" expression's tags? */
static int tag_in_expression(const char *tag, const char *expr)
{
    size_t tlen = tag ? strlen(tag) : 0;

    if (!tag)
        return 0;
    while (*expr) {
        const char *end = strstr(expr, "||");
        size_t n = end ? (size_t)(end - expr) : strlen(expr);
        const char *a = expr, *z = expr + n;
        while (a < z && (*a == ' ' || *a == '\t'))
            a++;
        while (z > a && (z[-1] == ' ' || z[-1] == '\t'))
            z--;
        if ((size_t)(z - a) == tlen && memcmp(a, tag, tlen) == 0)
            return 1;
        expr = end ? end + 2 : expr + n;
    }
    return 0;
}

static int takes_all(const char *expr)
{
    return !expr || !*expr || strcmp(expr, "*") == 0;
}

static int64_t header_i64(const proto_cmd *resp, const char *key)
{
    int64_t v = 0;

    return proto_cmd_get_i64(resp, key, &v) == 0 ? v : 0;
}

int lsmq_admin_pull(lsmq_admin *a, const char *broker_addr, const char *broker_name,
                    const char *topic, int32_t queue_id, int64_t offset, int32_t max_nums,
                    const char *sub_expression, int timeout_ms, lsmq_admin_pull_result **out)
{
    proto_cmd *resp = NULL;
    char *body = NULL;
    size_t len = 0;
    int rc;

    if (empty(broker_addr) || empty(topic) || queue_id < 0 || max_nums < 1 || !out)
        return lsmq__admin_bad_arg(a, __func__);
    *out = NULL;
    proto_cmd *req = proto_cmd_request(RC_PULL_MESSAGE);
    proto_cmd_set(req, "consumerGroup", TOOLS_CONSUMER_GROUP);
    proto_cmd_set(req, "topic", topic);
    proto_cmd_set_i64(req, "queueId", queue_id);
    proto_cmd_set_i64(req, "queueOffset", offset);
    proto_cmd_set_i64(req, "maxMsgNums", max_nums);
    proto_cmd_set_i64(req, "sysFlag", PULL_FLAG_SUBSCRIPTION);
    proto_cmd_set_i64(req, "commitOffset", 0);
    proto_cmd_set_i64(req, "suspendTimeoutMillis", 0);
    proto_cmd_set(req, "subscription", takes_all(sub_expression) ? "*" : sub_expression);
    proto_cmd_set_i64(req, "subVersion", 0);
    proto_cmd_set(req, "expressionType", "TAG");
    rc = exchange(a, broker_addr, req, timeout_ms, &resp, &body, &len);
    if (rc != 0)
        return rc;
    switch (resp->code) {
    case RS_SUCCESS:
    case RS_PULL_NOT_FOUND:
    case RS_PULL_RETRY_IMMEDIATELY:
    case RS_PULL_OFFSET_MOVED:
        break;
    default:
        rc = refused(a, resp, broker_addr, RC_PULL_MESSAGE);
        goto done;
    }
    lsmq_admin_pull_result *r = proto_xcalloc(1, sizeof *r);
    r->code = resp->code;
    r->next_begin_offset = header_i64(resp, "nextBeginOffset");
    r->min_offset = header_i64(resp, "minOffset");
    r->max_offset = header_i64(resp, "maxOffset");
    if (r->code == RS_SUCCESS &&
        (rc = decode_records(a, broker_addr, body, len, broker_name ? broker_name : "",
                             &r->msgs, &r->n)) != 0) {
        free(r);
        goto done;
    }
    if (!takes_all(sub_expression)) {
        size_t kept = 0;
        for (size_t i = 0; i < r->n; i++) {
            if (tag_in_expression(r->msgs[i]->tags, sub_expression))
                r->msgs[kept++] = r->msgs[i];
            else
                lsmq__msg_free(r->msgs[i]);
        }
        r->n = kept;
        if (kept == 0 && r->code == RS_SUCCESS)
            r->code = RS_PULL_RETRY_IMMEDIATELY; /* Java's NO_MATCHED_MSG */
    }
    *out = r;
done:
    free(body);
    proto_cmd_free(resp);
    return rc;
}

void lsmq_admin_pull_result_free(lsmq_admin_pull_result *r)
{
    if (!r)
        return;
    lsmq_messages_free(r->msgs, r->n);
    free(r);
}

int lsmq_admin_query_message_by_offset(lsmq_admin *a, const char *broker_addr,
                                       const char *broker_name, const char *topic, int32_t queue_id,
                                       int64_t offset, int timeout_ms, lsmq_message ***msgs,
                                       size_t *n)
{
    lsmq_admin_pull_result *r = NULL;
    int rc;

    if (!msgs || !n)
        return lsmq__admin_bad_arg(a, __func__);
    *msgs = NULL;
    *n = 0;
    rc = lsmq_admin_pull(a, broker_addr, broker_name, topic, queue_id, offset, 1, NULL, timeout_ms,
                         &r);
    if (rc != 0)
        return rc;
    if (r->code != RS_SUCCESS || r->n == 0 || r->msgs[0]->queue_offset != offset) {
        lsmq__error(&a->err, r->code,
                    "no message at offset %lld of queue %d of %s (queue offsets %lld..%lld)",
                    (long long)offset, (int)queue_id, topic, (long long)r->min_offset,
                    (long long)r->max_offset);
        lsmq_admin_pull_result_free(r);
        return LSMQ_ENOTFOUND;
    }
    *msgs = r->msgs;
    *n = 1;
    for (size_t i = 1; i < r->n; i++)
        lsmq__msg_free(r->msgs[i]);
    free(r);
    return 0;
}
