/*
 * Subscription group configs (REMOTING.md §5.6, §6.2). The store keeps each
 * group's SubscriptionGroupConfig as JSON text in the `group` family, the
 * same object an admin sends and GET_ALL_SUBSCRIPTIONGROUP_CONFIG returns,
 * so fields lsmq does not act on survive a round trip. Unknown groups are
 * created with the defaults on first use when autoCreateSubscriptionGroup
 * is on; a replica, which cannot write, uses the defaults without storing
 * them (its master stores the group when the group uses the master).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "broker_hdr.h"
#include "broker_internal.h"
#include "log.h"

const char *broker_group_name_error(const char *name)
{
    if (!name || !*name)
        return "The specified group is blank.";
    if (!broker__topic_chars_valid(name)) /* groups follow the topic character rule */
        return "The specified group contains illegal characters, allowing only "
               "^[%|a-zA-Z0-9_-]+$";
    if (strlen(name) > BROKER_GROUP_NAME_MAX)
        return "The specified group is longer than group max length 120.";
    return NULL;
}

/* A SubscriptionGroupConfig with the Java defaults (4.x field set). */
static json_t *group_defaults(const char *name)
{
    json_t *o = json_object();
    json_object_set_new(o, "brokerId", json_integer(0));
    json_object_set_new(o, "consumeBroadcastEnable", json_true());
    json_object_set_new(o, "consumeEnable", json_true());
    json_object_set_new(o, "consumeFromMinEnable", json_true());
    json_object_set_new(o, "consumeMessageOrderly", json_false());
    json_object_set_new(o, "consumeTimeoutMinute", json_integer(15));
    json_object_set_new(o, "groupName", broker_json_str(name));
    json_object_set_new(o, "groupSysFlag", json_integer(0));
    json_object_set_new(o, "notifyConsumerIdsChangedEnable", json_true());
    json_object_set_new(o, "retryMaxTimes", json_integer(16));
    json_object_set_new(o, "retryQueueNums", json_integer(1));
    json_object_set_new(o, "whichBrokerWhenConsumeSlowly", json_integer(1));
    return o;
}

static bool get_bool(json_t *o, const char *key, bool dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

static int32_t get_i32(json_t *o, const char *key, int32_t dflt)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return dflt;
    json_int_t n = json_integer_value(v);
    return n < INT32_MIN || n > INT32_MAX ? dflt : (int32_t)n;
}

/* Parse stored JSON into the fields the broker uses; absent ones keep the defaults. */
static void group_from_json(const char *name, const char *text, size_t len,
                            broker_group_config *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", name);
    json_t *o = json_loadb(text, len, 0, NULL);
    if (!json_is_object(o))
        proto_log(PROTO_LOG_WARN, "broker: stored config of group %s is not a JSON object; using defaults", name);
    out->consume_enable = get_bool(o, "consumeEnable", true);
    out->consume_broadcast_enable = get_bool(o, "consumeBroadcastEnable", true);
    out->notify_ids_changed = get_bool(o, "notifyConsumerIdsChangedEnable", true);
    out->retry_queue_nums = get_i32(o, "retryQueueNums", 1);
    out->retry_max_times = get_i32(o, "retryMaxTimes", 16);
    broker_retry_policy_from_json(o, &out->retry_policy);
    json_decref(o);
}

int broker_group_find(broker_ctx *ctx, broker_meta *m, const char *group,
                      broker_group_config *out, broker_wait *w)
{
    engine *e = ctx->engine;
    if (!group || !*group || !e)
        return LSMQ_ENOTFOUND;
    char *text = NULL;
    size_t len = 0;
    int rc = engine_group_get(e, group, strlen(group), &text, &len);
    if (rc == 0) {
        group_from_json(group, text, len, out);
        engine_free(text);
        return 0;
    }
    if (rc != LSMQ_ENOTFOUND)
        return rc;
    if (!ctx->cfg.auto_create_subscription_group)
        return LSMQ_ENOTFOUND;
    json_t *o = group_defaults(group);
    size_t n = 0;
    char *json = broker_json_dump(o, &n);
    json_decref(o);
    if (!json)
        proto_oom(0);
    if (ctx->replica) {
        group_from_json(group, json, n, out);
        free(json);
        return 0;
    }
    rc = broker_meta_group_create(m, group, json, n, w);
    free(json);
    if (rc != 0 && rc != BROKER_WAITING && rc != LSMQ_EBUSY)
        proto_log(PROTO_LOG_WARN, "broker: cannot create subscription group %s: %s", group, lsmq_strerror(rc));
    return rc;
}

int64_t broker_group_broker_id(engine *e, const char *group)
{
    char *text = NULL;
    size_t len = 0;
    int64_t id = 0;
    if (!e || engine_group_get(e, group, strlen(group), &text, &len) != 0)
        return 0;
    json_t *o = json_loadb(text, len, 0, NULL);
    json_t *v = json_object_get(o, "brokerId");
    if (json_is_integer(v) && json_integer_value(v) >= 0)
        id = (int64_t)json_integer_value(v);
    json_decref(o);
    engine_free(text);
    return id;
}

int32_t broker_group_retry_max_times(engine *e, const char *group)
{
    char *text = NULL;
    size_t len = 0;
    broker_group_config gc;
    if (!e || engine_group_get(e, group, strlen(group), &text, &len) != 0)
        return 16; /* the default of a group created on first use */
    group_from_json(group, text, len, &gc);
    engine_free(text);
    return gc.retry_max_times;
}

char *broker_group_json_from(json_t *cfg, size_t *len)
{
    const char *name = json_string_value(json_object_get(cfg, "groupName"));
    if (!json_is_object(cfg) || broker_group_name_error(name))
        return NULL;
    json_t *defaults = group_defaults(name);
    json_object_update_missing(cfg, defaults);
    json_decref(defaults);
    char *json = broker_json_dump(cfg, len);
    if (!json)
        proto_oom(0);
    return json;
}

int broker_group_foreach(engine *e, broker_group_visit_fn fn, void *ctx)
{
    if (!e)
        return LSMQ_ECLOSED;
    engine_view *v;
    int rc = engine_view_open(e, &v);
    if (rc == 0)
        rc = engine_view_groups(v, fn, ctx);
    engine_view_close(v); /* a failed read was logged by the engine */
    return rc < 0 ? rc : 0;
}

bool broker_group_known(engine *e, broker_clients *bc, const char *group)
{
    char *cfg = NULL;
    size_t len = 0;
    int rc = engine_group_get(e, group, strlen(group), &cfg, &len);
    engine_free(cfg);
    return rc == 0 || broker_clients_group_known(bc, group);
}
