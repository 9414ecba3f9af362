/*
 * Subscription group administration (REMOTING.md §3.10, §5.6):
 * UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, GET_ALL_SUBSCRIPTIONGROUP_CONFIG,
 * GET_SUBSCRIPTIONGROUP_CONFIG and DELETE_SUBSCRIPTIONGROUP. The configs
 * themselves live in the store's `group` family (broker_groups.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "broker_internal.h"
#include "log.h"

/* The answer to an update once the write's outcome is known. */
static void group_updated_cb(conn *c, int32_t opaque, int status, const broker_write *wr)
{
    if (status != 0) {
        server_conn_reply_code(c, opaque, RS_SYSTEM_ERROR, lsmq_strerror(status));
        return;
    }
    proto_log(PROTO_LOG_INFO, "broker: updated subscription group %s (asked by %s)", wr->name, server_conn_peer(c));
    server_conn_reply_code(c, opaque, RS_SUCCESS, NULL);
}

static void on_update_and_create_subscriptiongroup(server *s, conn *c, proto_cmd *req,
                                                   void *ctx)
{
    broker_admin *ad = ctx;
    json_t *cfg = req->body ? json_loadb((const char *)req->body, req->body_len, 0, NULL) : NULL;
    if (!json_is_object(cfg)) {
        server_conn_reply_code(c, req->opaque, RS_SYSTEM_ERROR,
                        "the body is not a SubscriptionGroupConfig JSON object");
        json_decref(cfg);
        return;
    }
    const char *name = json_string_value(json_object_get(cfg, "groupName"));
    const char *why = broker_group_name_error(name);
    if (why) {
        server_conn_reply_code(c, req->opaque, RS_INVALID_PARAMETER, why);
        json_decref(cfg);
        return;
    }
    size_t len = 0;
    char *json = broker_group_json_from(cfg, &len);
    if (!json) {
        server_conn_reply_code(c, req->opaque, RS_SYSTEM_ERROR, lsmq_strerror(LSMQ_EINVAL));
        json_decref(cfg);
        return;
    }
    broker_write wr = {.kind = BROKER_GROUP_PUT, .name = name, .json = json, .json_len = len};
    broker_meta_write_answered(ad->meta, c, req, &wr, group_updated_cb);
    free(json);
    json_decref(cfg); /* name points into it */
}

/* DataVersion (§5.5, 4.x form) of the broker's configuration. */
json_t *broker_data_version_json(broker_stats *st)
{
    broker_stats_view v;
    broker_stats_read(st, &v);
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
    char *key = proto_xstrndup(name, name_len);
    if (json_is_object(o))
        json_object_set(table, key, o);
    else
        proto_log(PROTO_LOG_WARN, "broker: stored config of group %s is not JSON; not listed", key);
    free(key);
    json_decref(o);
    return 0;
}

static void on_get_all_subscriptiongroup_config(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_admin *ad = ctx;
    json_t *table = json_object();
    if (broker_group_foreach(ad->ctx->engine, add_group_cb, table) != 0) {
        json_decref(table);
        server_conn_reply_code(c, req->opaque, RS_SYSTEM_ERROR, "cannot read the subscription groups");
        return;
    }
    json_t *body = json_object();
    json_object_set_new(body, "dataVersion", broker_data_version_json(ad->stats));
    json_object_set_new(body, "subscriptionGroupTable", table);
    broker_reply_json(c, req->opaque, body);
}

static void on_get_subscriptiongroup_config(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_admin *ad = ctx;
    const char *group = broker_require(c, req, "group");
    if (!group)
        return;
    char *text = NULL;
    size_t len = 0;
    if (engine_group_get(ad->ctx->engine, group, strlen(group), &text, &len) != 0) {
        char remark[400];
        snprintf(remark, sizeof remark, "the consumer group[%s] not exist", group);
        server_conn_reply_code(c, req->opaque, RS_SUBSCRIPTION_GROUP_NOT_EXIST, remark);
        return;
    }
    server_conn_reply(c, req->opaque, proto_cmd_response(RS_SUCCESS, req->opaque, NULL), text, len);
    engine_free(text);
}

/*
 * cleanOffset is accepted but the group's committed offsets stay: the
 * engine has no call to drop a group's offsets yet.
 */
static void on_delete_subscriptiongroup(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_admin *ad = ctx;
    const char *group = broker_require(c, req, "groupName");
    if (!group)
        return;
    broker_write wr = {.kind = BROKER_GROUP_DELETE, .name = group};
    broker_meta_write_answered(ad->meta, c, req, &wr, broker_answer_delete_cb);
}

void broker_admin_groups_register(broker_modules *m)
{
    server *s = m->ctx.srv;
    server_register(s, RC_UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
                    on_update_and_create_subscriptiongroup, m->admin);
    server_register(s, RC_GET_ALL_SUBSCRIPTIONGROUP_CONFIG, on_get_all_subscriptiongroup_config,
                    m->admin);
    server_register(s, BROKER_RC_GET_SUBSCRIPTIONGROUP_CONFIG, on_get_subscriptiongroup_config,
                    m->admin);
    server_register(s, RC_DELETE_SUBSCRIPTIONGROUP, on_delete_subscriptiongroup, m->admin);
}
