/*
 * Heartbeats (REMOTING.md §3.2, §5.4): every 30 s, and when a consumer
 * starts or meets a new broker, the client sends its HeartbeatData to
 * every broker address of every topic it uses (slaves included), so that
 * each broker knows every member of the group for GET_CONSUMER_LIST_BY_GROUP.
 * On shutdown UNREGISTER_CLIENT tells the brokers at once, so the rest of
 * the group rebalances without waiting for the 120 s expiry.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "client_internal.h"

#define HEARTBEAT_TIMEOUT_MS 3000

static json_t *sub_json(const subscription *s)
{
    json_t *o = json_object(), *tags = json_array(), *codes = json_array();
    size_t i;

    for (i = 0; i < s->n_tags; i++) {
        json_array_append_new(tags, json_string(s->tags[i]));
        json_array_append_new(codes, json_integer(s->codes[i]));
    }
    json_object_set_new(o, "classFilterMode", json_false());
    json_object_set_new(o, "codeSet", codes);
    json_object_set_new(o, "expressionType", json_string("TAG"));
    json_object_set_new(o, "subString", json_string(s->expr));
    json_object_set_new(o, "subVersion", json_integer(s->version));
    json_object_set_new(o, "tagsSet", tags);
    json_object_set_new(o, "topic", json_string(s->topic));
    return o;
}

char *lsmq__hb_json(const char *client_id, const char *producer_group, const hb_consumer *consumer)
{
    json_t *root = json_object(), *producers = json_array(), *consumers = json_array();
    char *text;

    if (producer_group) {
        json_t *p = json_object();

        json_object_set_new(p, "groupName", json_string(producer_group));
        json_array_append_new(producers, p);
    }
    if (consumer) {
        json_t *c = json_object(), *subs = json_array();
        size_t i;

        for (i = 0; i < consumer->n_subs; i++)
            json_array_append_new(subs, sub_json(consumer->subs[i]));
        json_object_set_new(c, "consumeFromWhere",
                            json_string(consumer->from_timestamp ? "CONSUME_FROM_TIMESTAMP"
                                        : consumer->from_first   ? "CONSUME_FROM_FIRST_OFFSET"
                                                                 : "CONSUME_FROM_LAST_OFFSET"));
        json_object_set_new(c, "consumeType", json_string(consumer->passive
                                                              ? "CONSUME_PASSIVELY"
                                                              : "CONSUME_ACTIVELY"));
        json_object_set_new(c, "groupName", json_string(consumer->group));
        json_object_set_new(c, "messageModel", json_string(consumer->broadcasting
                                                               ? "BROADCASTING"
                                                               : "CLUSTERING"));
        json_object_set_new(c, "subscriptionDataSet", subs);
        json_object_set_new(c, "unitMode", json_false());
        json_array_append_new(consumers, c);
    }
    json_object_set_new(root, "clientID", json_string(client_id));
    json_object_set_new(root, "consumerDataSet", consumers);
    json_object_set_new(root, "producerDataSet", producers);
    /* Compact, no whitespace: what every broker's parser takes (§5.1). */
    text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    return text;
}

static void heartbeat_cb(int rc, proto_reply *reply, const char *why, void *arg)
{
    char *addr = arg;

    if (rc != 0)
        proto_log(PROTO_LOG_INFO, "liblsmq: heartbeat to %s failed: %s", addr, why);
    else if (reply->cmd->code != RS_SUCCESS)
        proto_log(PROTO_LOG_WARN, "liblsmq: heartbeat to %s refused: code %d %s", addr, reply->cmd->code,
                  reply->cmd->remark ? reply->cmd->remark : "");
    proto_reply_free(reply);
    free(addr);
}

void lsmq__mqc_heartbeat_all(mqclient *mqc)
{
    char **addrs, *body;
    size_t n, i;

    if (mqc->hooks.heartbeat_json == NULL ||
        (body = mqc->hooks.heartbeat_json(mqc->hooks.arg)) == NULL)
        return;
    n = lsmq__mqc_broker_addrs(mqc, &addrs);
    for (i = 0; i < n; i++) {
        proto_cmd *cmd = proto_cmd_request(RC_HEART_BEAT);
        char *addr = proto_xstrdup(addrs[i]);

        if (lsmq__mqc_call(mqc, addrs[i], cmd, body, strlen(body), HEARTBEAT_TIMEOUT_MS,
                      heartbeat_cb, addr, NULL) != 0)
            free(addr);
        proto_cmd_free(cmd);
    }
    lsmq__mqc_addrs_free(addrs, n);
    free(body);
}

int lsmq__mqc_heartbeat_sync(mqclient *mqc, int timeout_ms, lsmq_errslot *e)
{
    char **addrs, *body;
    size_t n, i;
    int rc = 0;

    if (mqc->hooks.heartbeat_json == NULL ||
        (body = mqc->hooks.heartbeat_json(mqc->hooks.arg)) == NULL)
        return 0;
    n = lsmq__mqc_broker_addrs(mqc, &addrs);
    for (i = 0; i < n; i++) {
        proto_cmd *cmd = proto_cmd_request(RC_HEART_BEAT);
        proto_reply *reply = NULL;
        lsmq_errslot err;
        int r;

        lsmq__err_init(&err, NULL);
        r = lsmq__mqc_call_sync(mqc, addrs[i], cmd, body, strlen(body), timeout_ms, &reply, &err);
        proto_cmd_free(cmd);
        if (r == 0 && reply->cmd->code != RS_SUCCESS)
            r = lsmq__broker_error(&err, reply->cmd, "heartbeat");
        if (r != 0) {
            proto_log(PROTO_LOG_WARN, "liblsmq: heartbeat to %s: %s", addrs[i], err.text);
            if (rc == 0) {
                rc = r;
                lsmq__error(e, err.code, "heartbeat to %s: %s", addrs[i], err.text);
            }
        }
        proto_reply_free(reply);
    }
    lsmq__mqc_addrs_free(addrs, n);
    free(body);
    return rc;
}

void lsmq__mqc_unregister(mqclient *mqc, const char *producer_group, const char *consumer_group,
                     int timeout_ms)
{
    char **addrs;
    size_t n = lsmq__mqc_broker_addrs(mqc, &addrs), i;

    for (i = 0; i < n; i++) {
        proto_cmd *cmd = proto_cmd_request(RC_UNREGISTER_CLIENT);
        proto_reply *reply = NULL;

        proto_cmd_set(cmd, "clientID", lsmq__mqc_client_id(mqc));
        if (producer_group)
            proto_cmd_set(cmd, "producerGroup", producer_group);
        if (consumer_group)
            proto_cmd_set(cmd, "consumerGroup", consumer_group);
        if (lsmq__mqc_call_sync(mqc, addrs[i], cmd, NULL, 0, timeout_ms, &reply, NULL) != 0)
            proto_log(PROTO_LOG_INFO, "liblsmq: unregister from %s failed", addrs[i]);
        proto_reply_free(reply);
        proto_cmd_free(cmd);
    }
    lsmq__mqc_addrs_free(addrs, n);
}
