/*
 * Offsets by time in the admin API (lsmq_admin.h, "Broker: offsets by
 * time"): SEARCH_OFFSET_BY_TIMESTAMP, INVOKE_BROKER_TO_RESET_OFFSET and
 * QUERY_CONSUME_TIME_SPAN, with the parsers of their bodies.
 *
 * ResetOffsetBody is a fastjson map keyed by MessageQueue objects
 * ({"offsetTable":{{"brokerName":..}:5}}); lsmq__admin_rpc has already turned
 * each key into a string of the queue's JSON, parsed here once more.
 * Results merge over brokers like the other statistics do: sorted by
 * queue, a queue already present replaced.
 */
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"

static int empty(const char *s)
{
    return !s || !*s;
}


/* ------------------------------------------------------------------ */
/* SEARCH_OFFSET_BY_TIMESTAMP                                          */
/* ------------------------------------------------------------------ */

int lsmq_admin_search_offset(lsmq_admin *a, const char *broker_addr, const char *topic,
                             int32_t queue_id, int64_t timestamp_ms, int upper, int timeout_ms,
                             int64_t *offset)
{
    proto_cmd *resp = NULL;
    int rc;

    if (empty(broker_addr) || empty(topic) || queue_id < 0 || !offset)
        return lsmq__admin_bad_arg(a, __func__);
    proto_cmd *req = proto_cmd_request(RC_SEARCH_OFFSET_BY_TIMESTAMP);
    proto_cmd_set(req, "topic", topic);
    proto_cmd_set_i64(req, "queueId", queue_id);
    proto_cmd_set_i64(req, "timestamp", timestamp_ms);
    proto_cmd_set(req, "boundaryType", upper ? "UPPER" : "LOWER");
    rc = lsmq_admin_call(a, broker_addr, req, NULL, 0, timeout_ms, &resp, NULL, NULL);
    if (rc == 0 && resp->code != RS_SUCCESS)
        rc = lsmq__admin_refused(a, resp, broker_addr, req);
    if (rc == 0 && proto_cmd_get_i64(resp, "offset", offset) != 0)
        rc = lsmq__admin_bad_body(a, broker_addr, RC_SEARCH_OFFSET_BY_TIMESTAMP);
    proto_cmd_free(resp);
    proto_cmd_free(req);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Merging queue rows                                                  */
/* ------------------------------------------------------------------ */

/*
 * Put `row` (elem bytes, starting with an lsmq_admin_mq it owns) into the
 * sorted array *v of *n rows: replacing an equal queue, else inserted.
 */
static void merge_row(void **v, size_t *n, size_t elem, const void *row)
{
    char *base = *v;
    size_t i = 0;

    for (; i < *n; i++) {
        int c = lsmq__admin_cmp_mq(base + i * elem, row);
        if (c == 0) {
            lsmq_admin_mq *old = (lsmq_admin_mq *)(base + i * elem);
            free(old->topic);
            free(old->broker_name);
            memcpy(base + i * elem, row, elem);
            return;
        }
        if (c > 0)
            break;
    }
    base = proto_xrealloc(base, (*n + 1) * elem);
    memmove(base + (i + 1) * elem, base + i * elem, (*n - i) * elem);
    memcpy(base + i * elem, row, elem);
    *v = base;
    (*n)++;
}

/* ------------------------------------------------------------------ */
/* INVOKE_BROKER_TO_RESET_OFFSET                                       */
/* ------------------------------------------------------------------ */

int lsmq__admin_parse_reset_result(json_t *body, lsmq_admin_reset_result **out)
{
    json_t *table = json_object_get(body, "offsetTable"), *v;
    const char *key;
    lsmq_admin_reset_result *r = *out ? *out : proto_xcalloc(1, sizeof *r);

    if (!json_is_object(table)) {
        if (!*out)
            free(r);
        return LSMQ_ECORRUPT;
    }
    json_object_foreach(table, key, v) {
        lsmq_admin_queue_offset row = {0};
        if (!json_is_integer(v) || lsmq__admin_parse_mq_key(key, &row.mq) != 0)
            continue;
        row.offset = (int64_t)json_integer_value(v);
        merge_row((void **)&r->queues, &r->n_queues, sizeof row, &row);
    }
    *out = r;
    return 0;
}

int lsmq_admin_reset_offset(lsmq_admin *a, const char *broker_addr, const lsmq_admin_reset *r,
                            int timeout_ms, lsmq_admin_reset_result **result)
{
    json_t *body = NULL;
    int rc;

    if (empty(broker_addr) || !r || empty(r->topic) || empty(r->group) || !result)
        return lsmq__admin_bad_arg(a, __func__);
    proto_cmd *req = proto_cmd_request(RC_INVOKE_BROKER_TO_RESET_OFFSET);
    proto_cmd_set(req, "topic", r->topic);
    proto_cmd_set(req, "group", r->group);
    proto_cmd_set_i64(req, "timestamp", r->timestamp_ms);
    proto_cmd_set_bool(req, "isForce", r->force);
    proto_cmd_set_i64(req, "queueId", r->queue_id);
    proto_cmd_set_i64(req, "offset", r->offset);
    rc = lsmq__admin_rpc(a, broker_addr, 0, req, timeout_ms, &body);
    if (rc == 0 && lsmq__admin_parse_reset_result(body, result) != 0)
        rc = lsmq__admin_bad_body(a, broker_addr, RC_INVOKE_BROKER_TO_RESET_OFFSET);
    json_decref(body);
    return rc;
}

void lsmq_admin_reset_result_free(lsmq_admin_reset_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_queues; i++) {
        free(r->queues[i].mq.topic);
        free(r->queues[i].mq.broker_name);
    }
    free(r->queues);
    free(r);
}

/* ------------------------------------------------------------------ */
/* QUERY_CONSUME_TIME_SPAN                                             */
/* ------------------------------------------------------------------ */

int lsmq__admin_parse_time_spans(json_t *body, lsmq_admin_time_spans **out)
{
    json_t *set = json_object_get(body, "consumeTimeSpanSet"), *e;
    size_t i;

    if (!json_is_array(set))
        return LSMQ_ECORRUPT;
    lsmq_admin_time_spans *s = *out ? *out : proto_xcalloc(1, sizeof *s);
    json_array_foreach(set, i, e) {
        lsmq_admin_time_span row = {0};
        json_t *mq = json_object_get(e, "messageQueue");
        char *text = json_is_object(mq) ? json_dumps(mq, JSON_COMPACT) : NULL;
        int ok = text && lsmq__admin_parse_mq_key(text, &row.mq) == 0;
        free(text);
        if (!ok)
            continue;
        row.min_timestamp = row.max_timestamp = row.consume_timestamp = -1;
        lsmq__admin_i64_field(e, "minTimeStamp", &row.min_timestamp);
        lsmq__admin_i64_field(e, "maxTimeStamp", &row.max_timestamp);
        lsmq__admin_i64_field(e, "consumeTimeStamp", &row.consume_timestamp);
        lsmq__admin_i64_field(e, "delayTime", &row.delay_ms);
        merge_row((void **)&s->queues, &s->n_queues, sizeof row, &row);
    }
    *out = s;
    return 0;
}

int lsmq_admin_query_consume_time_span(lsmq_admin *a, const char *broker_addr, const char *topic,
                                       const char *group, int timeout_ms,
                                       lsmq_admin_time_spans **spans)
{
    json_t *body = NULL;
    int rc;

    if (empty(broker_addr) || empty(topic) || empty(group) || !spans)
        return lsmq__admin_bad_arg(a, __func__);
    proto_cmd *req = proto_cmd_request(RC_QUERY_CONSUME_TIME_SPAN);
    proto_cmd_set(req, "topic", topic);
    proto_cmd_set(req, "group", group);
    rc = lsmq__admin_rpc(a, broker_addr, 0, req, timeout_ms, &body);
    if (rc == 0 && lsmq__admin_parse_time_spans(body, spans) != 0)
        rc = lsmq__admin_bad_body(a, broker_addr, RC_QUERY_CONSUME_TIME_SPAN);
    json_decref(body);
    return rc;
}

void lsmq_admin_time_spans_free(lsmq_admin_time_spans *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_queues; i++) {
        free(s->queues[i].mq.topic);
        free(s->queues[i].mq.broker_name);
    }
    free(s->queues);
    free(s);
}
