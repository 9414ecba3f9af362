/*
 * mqdump timers: the pending (delayed) messages of a store, in due order,
 * one JSON line each: due time, topic, queue, offset message id (the log
 * position a send answered with), keys, size. Read from the view's timer
 * family (engine_view_timers); nothing is delivered or changed.
 */
#include <string.h>

#include "message_id.h"
#include "mqdump.h"
#include "props.h"

typedef struct timers_ctx {
    const mqd_store *s;
    const engine_topic_config *only; /* --topic, or NULL */
    uint64_t listed;
} timers_ctx;

static int print_pending(void *arg, const engine_pending_msg *m)
{
    timers_ctx *c = arg;
    if (mqd_interrupted || mqd_out_failed())
        return 1;
    if (c->only && m->topic_id != c->only->topic_id)
        return 0;
    proto_record r;
    if (proto_record_decode(m->record, m->record_len, &r) != (long)m->record_len) {
        mqd_errorf("corrupt pending record at log position %llu",
                   (unsigned long long)m->log_position);
        return 0;
    }
    const engine_topic_config *t = mqd_topic_by_id(c->s, m->topic_id);
    char id[PROTO_MSGID_V6_LEN + 1];
    proto_msgid_encode(&r.store_host, m->log_position, id);
    mqd_out_char('{');
    mqd_json_field("deliverMs", 1);
    mqd_out_i64(m->deliver_ms);
    mqd_json_field("topic", 0);
    if (t)
        mqd_json_str(t->name, strlen(t->name));
    else
        mqd_out("null", 4); /* deleted: dropped at its due time */
    mqd_json_field("topicId", 0);
    mqd_out_u64(m->topic_id);
    mqd_json_field("queueId", 0);
    mqd_out_u64(m->queue_id);
    mqd_json_field("logPosition", 0);
    mqd_out_u64(m->log_position);
    mqd_json_field("msgId", 0);
    mqd_json_str(id, strlen(id));
    mqd_json_prop_field(&r, "uniqKey", PROTO_PROP_UNIQ_KEY);
    mqd_json_prop_field(&r, "tags", PROTO_PROP_TAGS);
    mqd_json_prop_field(&r, "keys", PROTO_PROP_KEYS);
    mqd_json_field("storeTimestamp", 0);
    mqd_out_i64(r.store_timestamp);
    mqd_json_field("bodySize", 0);
    mqd_out_u64(r.body_len);
    mqd_json_field("size", 0);
    mqd_out_u64(m->record_len);
    mqd_out("}\n", 2);
    c->listed++;
    return 0;
}

int mqd_cmd_timers(const mqd_store *s, const mqd_opts *o)
{
    timers_ctx c = {.s = s};
    if (o->topic && !(c.only = mqd_topic(s, o->topic))) {
        mqd_errorf("no topic %s in %s", o->topic, o->store_path);
        return MQD_FAIL;
    }
    int64_t before = o->has_due_before ? o->due_before_ms : INT64_MAX;
    int rc = engine_view_timers(s->v, 0, before, print_pending, &c);
    if (rc < 0) {
        mqd_errorf("%s: reading the pending messages failed: %s", o->store_path,
                   lsmq_strerror(rc));
        return MQD_FAIL;
    }
    return mqd_interrupted ? MQD_FAIL : MQD_OK;
}
