/*
 * Delayed messages in the admin API: LSMQ_GET_TIMER_STATUS (pending counts,
 * lsmq's own request) and the resend of a message, a dead letter most of
 * all, as a plain SEND_MESSAGE of a copy without its retry and delay pairs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"
#include "clock.h"
#include "props.h"

/* Pairs a resent copy leaves out: the retry's and the delay's, and what the broker sets. */
static const char *const dropped_props[] = {
    "DELAY", "TIMER_DELIVER_MS", "TIMER_DELAY_SEC", "TIMER_DELAY_MS", "TIMER_OUT_MS",
    "TIMER_ENQUEUE_MS", "TIMER_DEQUEUE_MS", "TIMER_ROLL_TIMES", "__STARTDELIVERTIME",
    "REAL_TOPIC", "REAL_QID", "RETRY_TOPIC", "MSG_REGION", "TRACE_ON", "CLUSTER", NULL,
};

static int parse_timer_status(json_t *body, lsmq_admin_timer_status **out)
{
    json_t *list = json_object_get(body, "topics");
    int64_t total;
    if (!json_is_object(body) || !json_is_array(list) ||
        lsmq__admin_i64_field(body, "pendingTotal", &total) != 0)
        return LSMQ_ECORRUPT;
    lsmq_admin_timer_status *s = proto_xcalloc(1, sizeof *s);
    s->pending_total = total;
    size_t i, n = json_array_size(list);
    json_t *t;
    s->topics = n ? proto_xcalloc(n, sizeof *s->topics) : NULL;
    json_array_foreach(list, i, t) {
        const char *name = json_string_value(json_object_get(t, "topic"));
        int64_t pending;
        if (!name || lsmq__admin_i64_field(t, "pending", &pending) != 0) {
            lsmq_admin_timer_status_free(s);
            return LSMQ_ECORRUPT;
        }
        s->topics[s->n_topics].topic = proto_xstrdup(name);
        s->topics[s->n_topics++].pending = pending;
    }
    *out = s;
    return 0;
}

int lsmq_admin_get_timer_status(lsmq_admin *a, const char *broker_addr, const char *topic,
                                int timeout_ms, lsmq_admin_timer_status **out)
{
    if (!broker_addr || !*broker_addr || !out)
        return lsmq__admin_bad_arg(a, __func__);
    *out = NULL;
    proto_cmd *req = proto_cmd_request(RC_LSMQ_GET_TIMER_STATUS);
    if (topic && *topic)
        proto_cmd_set(req, "topic", topic);
    json_t *body = NULL;
    int rc = lsmq__admin_rpc(a, broker_addr, 0, req, timeout_ms, &body);
    if (rc == 0 && parse_timer_status(body, out) != 0)
        rc = lsmq__admin_bad_body(a, broker_addr, RC_LSMQ_GET_TIMER_STATUS);
    json_decref(body);
    return rc;
}

void lsmq_admin_timer_status_free(lsmq_admin_timer_status *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_topics; i++)
        free(s->topics[i].topic);
    free(s->topics);
    free(s);
}

static bool is_dropped(const char *name)
{
    for (int i = 0; dropped_props[i]; i++)
        if (strcmp(dropped_props[i], name) == 0)
            return true;
    return false;
}

/* The copy's properties string (malloc'ed, NUL-terminated). */
static char *resent_props(const lsmq_message *m)
{
    size_t cap = 1;
    size_t n = lsmq_message_property_count(m);
    for (size_t i = 0; i < n; i++) {
        const char *v = NULL;
        const char *name = lsmq_message_property_at(m, i, &v);
        if (name && v)
            cap += strlen(name) + strlen(v) + 2;
    }
    char *out = proto_xmalloc(cap);
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        const char *v = NULL;
        const char *name = lsmq_message_property_at(m, i, &v);
        if (name && v && !is_dropped(name))
            proto_props_append(out, cap, &used, name, strlen(name), v, strlen(v));
    }
    out[used] = '\0';
    return out;
}

int lsmq_admin_resend_message(lsmq_admin *a, const char *broker_addr, const lsmq_message *m,
                              const char *topic, int32_t queue_id, int timeout_ms,
                              char *offset_msg_id, size_t cap)
{
    if (!broker_addr || !*broker_addr || !m || !topic || !*topic || queue_id < 0)
        return lsmq__admin_bad_arg(a, __func__);
    size_t body_len = 0;
    const void *body = lsmq_message_body(m, &body_len);
    char *props = resent_props(m);
    proto_cmd *req = proto_cmd_request(RC_SEND_MESSAGE);
    proto_cmd_set(req, "producerGroup", "LSMQ_ADMIN_RESEND_GROUP");
    proto_cmd_set(req, "topic", topic);
    proto_cmd_set(req, "defaultTopic", "TBW102");
    proto_cmd_set_i64(req, "defaultTopicQueueNums", 4);
    proto_cmd_set_i64(req, "queueId", queue_id);
    proto_cmd_set_i64(req, "sysFlag", 0); /* the body was inflated by the accessor */
    proto_cmd_set_i64(req, "bornTimestamp", proto_wall_ms());
    proto_cmd_set_i64(req, "flag", lsmq_message_flag(m));
    proto_cmd_set(req, "properties", props);
    proto_cmd_set_i64(req, "reconsumeTimes", 0);
    free(props);
    proto_cmd *resp = NULL;
    int rc = lsmq_admin_call(a, broker_addr, req, body, body_len, timeout_ms, &resp, NULL, NULL);
    if (rc == 0 && resp->code != RS_SUCCESS)
        rc = lsmq__admin_refused(a, resp, broker_addr, req);
    if (rc == 0 && offset_msg_id && cap > 0) {
        const char *id = proto_cmd_get(resp, "msgId");
        snprintf(offset_msg_id, cap, "%s", id ? id : "");
    }
    proto_cmd_free(resp);
    proto_cmd_free(req);
    return rc;
}
