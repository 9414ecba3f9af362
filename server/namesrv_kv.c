/*
 * The name server's KV configuration: namespace -> key -> value, set by
 * admin tools (PUT/GET/DELETE_KV_CONFIG, GET_KVLIST_BY_NAMESPACE). The
 * ORDER_TOPIC_CONFIG namespace feeds orderTopicConf in route data and goes
 * back to brokers in the REGISTER_BROKER response. Kept in memory only,
 * like the rest of the name server: admins re-apply it after a restart.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alloc.h"
#include "namesrv_internal.h"

static ns_kv_space *space_get(namesrv *ns, const char *name, bool create)
{
    ns_kv_space *sp = NULL;
    HASH_FIND_STR(ns->kv, name, sp);
    if (sp || !create)
        return sp;
    sp = namesrv__alloc(sizeof *sp);
    sp->name = namesrv__strdup(name);
    HASH_ADD_KEYPTR(hh, ns->kv, sp->name, strlen(sp->name), sp);
    return sp;
}

static void item_drop(ns_kv_space *sp, ns_kv *it)
{
    HASH_DEL(sp->items, it);
    free(it->key);
    free(it->value);
    free(it);
}

static void space_drop(namesrv *ns, ns_kv_space *sp)
{
    ns_kv *it, *tmp;
    HASH_ITER(hh, sp->items, it, tmp)
        item_drop(sp, it);
    HASH_DEL(ns->kv, sp);
    free(sp->name);
    free(sp);
}

void namesrv__kv_free(namesrv *ns)
{
    ns_kv_space *sp, *tmp;
    HASH_ITER(hh, ns->kv, sp, tmp)
        space_drop(ns, sp);
}

const char *namesrv__kv_get(namesrv *ns, const char *space, const char *key)
{
    ns_kv_space *sp = space_get(ns, space, false);
    ns_kv *it = NULL;
    if (sp)
        HASH_FIND_STR(sp->items, key, it);
    return it ? it->value : NULL;
}

char *namesrv__kv_table_json(namesrv *ns, const char *space, size_t *len)
{
    ns_kv_space *sp = space_get(ns, space, false);
    if (!sp || !sp->items)
        return NULL;
    json_t *table = json_object();
    for (ns_kv *it = sp->items; it; it = it->hh.next)
        json_object_set_new(table, it->key, json_string(it->value));
    json_t *root = json_object();
    json_object_set_new(root, "table", table);
    char *text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    if (!text)
        proto_oom(0);
    *len = strlen(text);
    return text;
}

static void on_put_kv_config(server *s, conn *c, proto_cmd *req, void *ctx)
{
    namesrv *ns = ctx;
    const char *space, *key, *value;
    if (!(space = namesrv__need(c, req, "namespace")) || !(key = namesrv__need(c, req, "key")) ||
        !(value = namesrv__need(c, req, "value")))
        return;
    ns_kv_space *sp = space_get(ns, space, true);
    ns_kv *it = NULL;
    HASH_FIND_STR(sp->items, key, it);
    if (!it) {
        it = namesrv__alloc(sizeof *it);
        it->key = namesrv__strdup(key);
        HASH_ADD_KEYPTR(hh, sp->items, it->key, strlen(it->key), it);
    }
    free(it->value);
    it->value = namesrv__strdup(value);
    namesrv__reply_code(c, req, RS_SUCCESS, NULL);
}

static void on_get_kv_config(server *s, conn *c, proto_cmd *req, void *ctx)
{
    namesrv *ns = ctx;
    const char *space, *key;
    if (!(space = namesrv__need(c, req, "namespace")) || !(key = namesrv__need(c, req, "key")))
        return;
    const char *value = namesrv__kv_get(ns, space, key);
    proto_cmd *resp;
    if (value) {
        resp = proto_cmd_response(RS_SUCCESS, req->opaque, NULL);
        proto_cmd_set(resp, "value", value);
    } else {
        resp = proto_cmd_response(RS_QUERY_NOT_FOUND, req->opaque, NULL);
        proto_cmd_set_remarkf(resp, "No config item, Namespace: %s Key: %s", space, key);
    }
    namesrv__reply(c, req, resp, NULL, 0);
}

static void on_delete_kv_config(server *s, conn *c, proto_cmd *req, void *ctx)
{
    namesrv *ns = ctx;
    const char *space, *key;
    if (!(space = namesrv__need(c, req, "namespace")) || !(key = namesrv__need(c, req, "key")))
        return;
    ns_kv_space *sp = space_get(ns, space, false);
    ns_kv *it = NULL;
    if (sp)
        HASH_FIND_STR(sp->items, key, it);
    if (it) {
        item_drop(sp, it);
        if (!sp->items)
            space_drop(ns, sp);
    }
    namesrv__reply_code(c, req, RS_SUCCESS, NULL);
}

static void on_get_kvlist_by_namespace(server *s, conn *c, proto_cmd *req, void *ctx)
{
    namesrv *ns = ctx;
    const char *space = namesrv__need(c, req, "namespace");
    if (!space)
        return;
    size_t len = 0;
    char *text = namesrv__kv_table_json(ns, space, &len);
    if (!text) {
        proto_cmd *resp = proto_cmd_response(RS_QUERY_NOT_FOUND, req->opaque, NULL);
        proto_cmd_set_remarkf(resp, "No config item, Namespace: %s", space);
        namesrv__reply(c, req, resp, NULL, 0);
        return;
    }
    namesrv__reply(c, req, proto_cmd_response(RS_SUCCESS, req->opaque, NULL), text, len);
    free(text);
}

void namesrv__kv_handlers(namesrv *ns)
{
    server_register(ns->srv, RC_PUT_KV_CONFIG, on_put_kv_config, ns);
    server_register(ns->srv, RC_GET_KV_CONFIG, on_get_kv_config, ns);
    server_register(ns->srv, RC_DELETE_KV_CONFIG, on_delete_kv_config, ns);
    server_register(ns->srv, RC_GET_KVLIST_BY_NAMESPACE, on_get_kvlist_by_namespace, ns);
}
