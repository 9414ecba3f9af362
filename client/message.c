/*
 * Received messages: a pull body is stored records back to back
 * (REMOTING.md §4.1); each becomes a self-contained lsmq_message that owns
 * copies of everything, so it can outlive the reply it came in (push
 * consumers queue messages for the workers, pull consumers hand them to
 * the caller). Pure: no I/O.
 *
 * Like the Java client, zlib bodies are inflated (compression type 0 or 3
 * in sysFlag bits 8-10), a retry delivery shows its original topic (the
 * RETRY_TOPIC property), and the message id is UNIQ_KEY when present.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"
#include "props.h"

/* Inflated bodies larger than this are refused (the broker's limit is 4 MiB). */
#define INFLATE_MAX (64u * 1024u * 1024u)

static void set_body(lsmq_message *m, const proto_record *rec)
{
    if (proto_sysflag_zlib(rec->sys_flag)) {
        uint8_t *out;
        size_t len;
        int rc = proto_inflate(rec->body, rec->body_len, INFLATE_MAX, &out, &len);

        if (rc == 0) {
            m->body = out;
            m->body_len = len;
            return;
        }
        proto_log(PROTO_LOG_WARN, "liblsmq: message %s: compressed body does not inflate (%s); "
                  "delivered as stored", m->offset_id, lsmq_strerror(rc));
    }
    m->body = proto_xmalloc(rec->body_len);
    if (rec->body_len)
        memcpy(m->body, rec->body, rec->body_len);
    m->body_len = rec->body_len;
}

static void set_props(lsmq_message *m, const proto_record *rec)
{
    proto_props_iter it;
    const char *name, *value;
    size_t nl, vl, cap = 0;

    m->props_raw = proto_xstrndup(rec->props ? rec->props : "", rec->props_len);
    m->props_len = rec->props_len;
    proto_props_iter_init(&it, m->props_raw, m->props_len);
    while (proto_props_next(&it, &name, &nl, &value, &vl)) {
        if (m->n_props == cap) {
            cap = cap ? cap * 2 : 8;
            m->names = proto_xrealloc(m->names, cap * sizeof *m->names);
            m->values = proto_xrealloc(m->values, cap * sizeof *m->values);
        }
        m->names[m->n_props] = proto_xstrndup(name, nl);
        m->values[m->n_props++] = proto_xstrndup(value, vl);
    }
    m->tags = lsmq_message_property(m, PROTO_PROP_TAGS);
    m->keys = lsmq_message_property(m, PROTO_PROP_KEYS);
    m->uniq_key = lsmq_message_property(m, PROTO_PROP_UNIQ_KEY);
}

int lsmq__msg_decode(const proto_record *rec, const char *broker_name, lsmq_message **out)
{
    lsmq_message *m = proto_xcalloc(1, sizeof *m);
    const char *retry_topic;

    m->queue_topic = proto_xstrndup(rec->topic, rec->topic_len);
    m->broker_name = proto_xstrdup(broker_name ? broker_name : "");
    m->queue_id = rec->queue_id;
    m->queue_offset = rec->queue_offset;
    m->commit_log_offset = rec->physical_offset;
    m->sys_flag = rec->sys_flag;
    m->flag = rec->flag;
    m->reconsume_times = rec->reconsume_times;
    m->born_timestamp = rec->born_timestamp;
    m->store_timestamp = rec->store_timestamp;
    m->born_host = rec->born_host;
    m->store_host = rec->store_host;
    proto_msgid_encode(&rec->store_host, (uint64_t)rec->physical_offset, m->offset_id);
    set_props(m, rec);
    set_body(m, rec);
    retry_topic = lsmq_message_property(m, "RETRY_TOPIC");
    if (retry_topic && strncmp(m->queue_topic, RETRY_PREFIX, strlen(RETRY_PREFIX)) == 0)
        m->topic = proto_xstrdup(retry_topic);
    else
        m->topic = proto_xstrdup(m->queue_topic);
    *out = m;
    return 0;
}

long lsmq__msg_decode_all(const uint8_t *body, size_t len, const char *broker_name,
                     lsmq_message **head, lsmq_message **tail)
{
    size_t pos = 0;
    long n = 0;

    while (pos < len) {
        proto_record rec;
        lsmq_message *m;
        long size = proto_record_decode(body + pos, len - pos, &rec);

        if (size <= 0) {
            proto_log(PROTO_LOG_ERROR, "liblsmq: pull body from %s: record at byte %zu does not decode",
                      broker_name, pos);
            return n ? n : LSMQ_ECORRUPT;
        }
        pos += (size_t)size;
        lsmq__msg_decode(&rec, broker_name, &m);
        m->next = NULL;
        if (*tail)
            (*tail)->next = m;
        else
            *head = m;
        *tail = m;
        n++;
    }
    return n;
}

void lsmq__msg_free(lsmq_message *m)
{
    size_t i;

    if (m == NULL)
        return;
    for (i = 0; i < m->n_props; i++) {
        free(m->names[i]);
        free(m->values[i]);
    }
    free(m->names);
    free(m->values);
    free(m->props_raw);
    free(m->body);
    free(m->topic);
    free(m->queue_topic);
    free(m->broker_name);
    free(m);
}

void lsmq__msg_free_list(lsmq_message *head)
{
    while (head) {
        lsmq_message *next = head->next;

        lsmq__msg_free(head);
        head = next;
    }
}

void lsmq_messages_free(lsmq_message **msgs, size_t n)
{
    size_t i;

    if (msgs == NULL)
        return;
    for (i = 0; i < n; i++)
        lsmq__msg_free(msgs[i]);
    free(msgs);
}

/* ------------------------------------------------------------------ */
/* Accessors                                                           */
/* ------------------------------------------------------------------ */

const char *lsmq_message_topic(const lsmq_message *m) { return m->topic; }
const char *lsmq_message_tags(const lsmq_message *m) { return m->tags; }
const char *lsmq_message_keys(const lsmq_message *m) { return m->keys; }
const char *lsmq_message_offset_id(const lsmq_message *m) { return m->offset_id; }
const char *lsmq_message_broker_name(const lsmq_message *m) { return m->broker_name; }
int32_t lsmq_message_queue_id(const lsmq_message *m) { return m->queue_id; }
int64_t lsmq_message_queue_offset(const lsmq_message *m) { return m->queue_offset; }
int32_t lsmq_message_reconsume_times(const lsmq_message *m) { return m->reconsume_times; }
int64_t lsmq_message_born_timestamp(const lsmq_message *m) { return m->born_timestamp; }
int64_t lsmq_message_store_timestamp(const lsmq_message *m) { return m->store_timestamp; }
int64_t lsmq_message_commit_log_offset(const lsmq_message *m) { return m->commit_log_offset; }
int32_t lsmq_message_sys_flag(const lsmq_message *m) { return m->sys_flag; }
int32_t lsmq_message_flag(const lsmq_message *m) { return m->flag; }
size_t lsmq_message_property_count(const lsmq_message *m) { return m->n_props; }

const char *lsmq_message_id(const lsmq_message *m)
{
    return m->uniq_key ? m->uniq_key : m->offset_id;
}

const void *lsmq_message_body(const lsmq_message *m, size_t *len)
{
    if (len)
        *len = m->body_len;
    return m->body;
}

const char *lsmq_message_property(const lsmq_message *m, const char *name)
{
    size_t i = m->n_props;

    if (name == NULL)
        return NULL;
    /* The last occurrence wins, as a Java map built in order would keep it. */
    while (i-- > 0)
        if (strcmp(m->names[i], name) == 0)
            return m->values[i];
    return NULL;
}

const char *lsmq_message_property_at(const lsmq_message *m, size_t i, const char **value)
{
    if (i >= m->n_props)
        return NULL;
    if (value)
        *value = m->values[i];
    return m->names[i];
}
