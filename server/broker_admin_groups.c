/*
 * Subscription group administration (REMOTING.md §3.10, §5.6):
 * UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, GET_ALL_SUBSCRIPTIONGROUP_CONFIG,
 * GET_SUBSCRIPTIONGROUP_CONFIG and DELETE_SUBSCRIPTIONGROUP. The configs
 * themselves live in the store's `group` family (broker_groups.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_internal.h"
#include "log.h"

static void on_update_group(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker *b = ctx;
    json_t *cfg = req->body ? json_loadb((const char *)req->body, req->body_len, 0, NULL) : NULL;
    if (!json_is_object(cfg)) {
        conn_reply_code(c, req->opaque, RS_SYSTEM_ERROR,
                        "the body is not a SubscriptionGroupConfig JSON object");
        json_decref(cfg);
        return;
    }
    const char *name = json_string_value(json_object_get(cfg, "groupName"));
    const char *why = broker_group_name_error(name);
    if (why) {
        conn_reply_code(c, req->opaque, RS_INVALID_PARAMETER, why);
        json_decref(cfg);
        return;
    }
    int rc = broker_group_update_from(b, c, req, cfg);
    if (rc == 0)
        lsmq_log("broker: updated subscription group %s (asked by %s)", name, conn_peer(c));
    json_decref(cfg); /* name points into it */
    if (rc == BROKER_DEFERRED)
        return; /* runs again once written */
    if (rc != 0) {
        conn_reply_code(c, req->opaque, RS_SYSTEM_ERROR, lsmq_strerror(rc));
        return;
    }
    conn_reply_code(c, req->opaque, RS_SUCCESS, NULL);
}

/* DataVersion (§5.5, 4.x form) of the broker's configuration. */
json_t *broker_data_version_json(broker *b)
{
    broker_stats_view v;
    broker_stats_read(b, &v);
    json_t *o = json_object();
    json_object_set_new(o, "counter", json_integer((json_int_t)v.data_version));
    json_object_set_new(o, "timestamp", json_integer(v.data_version_ms));
    return o;
}

/* Add one stored group to the table; a config that does not parse is skipped. */
static int add_group_cb(void *ctx, const char *name, size_t name_len, const char *cfg,
                        size_t cfg_len)
{
    json_t *table = ctx;
    json_t *o = json_loadb(cfg, cfg_len, 0, NULL);
    char *key = strndup(name, name_len);
    if (!key)
        abort();
    if (json_is_object(o))
        json_object_set(table, key, o);
    else
        lsmq_log("broker: stored config of group %s is not JSON; not listed", key);
    free(key);
    json_decref(o);
    return 0;
}

static void on_get_all_groups(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker *b = ctx;
    json_t *table = json_object();
    if (broker_group_foreach(b, add_group_cb, table) != 0) {
        json_decref(table);
        conn_reply_code(c, req->opaque, RS_SYSTEM_ERROR, "cannot read the subscription groups");
        return;
    }
    json_t *body = json_object();
    json_object_set_new(body, "dataVersion", broker_data_version_json(b));
    json_object_set_new(body, "subscriptionGroupTable", table);
    broker_reply_json(c, req->opaque, body);
}

static void on_get_group(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker *b = ctx;
    const char *group = broker_require(c, req, "group");
    if (!group)
        return;
    char *text = NULL;
    size_t len = 0;
    if (engine_group_get(broker_engine(b), group, strlen(group), &text, &len) != 0) {
        char remark[400];
        snprintf(remark, sizeof remark, "the consumer group[%s] not exist", group);
        conn_reply_code(c, req->opaque, RS_SUBSCRIPTION_GROUP_NOT_EXIST, remark);
        return;
    }
    conn_reply(c, req->opaque, proto_cmd_response(RS_SUCCESS, req->opaque, NULL), text, len);
    engine_free(text);
}

/*
 * cleanOffset is accepted but the group's committed offsets stay: the
 * engine has no call to drop a group's offsets yet.
 */
static void on_delete_group(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker *b = ctx;
    const char *group = broker_require(c, req, "groupName");
    if (!group)
        return;
    broker_answer_delete(c, req, broker_group_delete_for(b, c, req, group),
                         "subscription group", group);
}

void broker_admin_groups_register(broker *b)
{
    server *s = broker_server(b);
    server_register(s, RC_UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, on_update_group, b);
    server_register(s, RC_GET_ALL_SUBSCRIPTIONGROUP_CONFIG, on_get_all_groups, b);
    server_register(s, BROKER_RC_GET_SUBSCRIPTIONGROUP_CONFIG, on_get_group, b);
    server_register(s, RC_DELETE_SUBSCRIPTIONGROUP, on_delete_group, b);
}
