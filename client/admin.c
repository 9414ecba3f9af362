/*
 * The admin API's transport (lsmq_admin.h): one blocking exchange per call,
 * on a connection of its own driven by the transport's blocking adapter
 * (transport/transport.h): connect without blocking past the deadline,
 * send, and wait for the response whose opaque matches the request's (a
 * broker may send requests of its own on any connection; those are
 * skipped). Every wait is bounded by the time left before the deadline, so
 * timeout_ms covers the whole call.
 *
 * lsmq__admin_rpc, used by the typed requests in admin_requests.c, insists on
 * SUCCESS and turns the body into standard JSON; every failure is recorded
 * on the handle (lsmq_admin_last_error) with the request's name and the
 * address.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"
#include "fastjson.h"
#include "transport.h"

#define ADDR_MAX 512

/* ------------------------------------------------------------------ */
/* Names for error texts                                               */
/* ------------------------------------------------------------------ */

static const char *request_name(int32_t code)
{
    switch (code) {
    case RC_UPDATE_AND_CREATE_TOPIC: return "UPDATE_AND_CREATE_TOPIC";
    case RC_GET_BROKER_RUNTIME_INFO: return "GET_BROKER_RUNTIME_INFO";
    case RC_GET_KV_CONFIG: return "GET_KV_CONFIG";
    case RC_PUT_KV_CONFIG: return "PUT_KV_CONFIG";
    case RC_GET_ROUTEINFO_BY_TOPIC: return "GET_ROUTEINFO_BY_TOPIC";
    case RC_GET_BROKER_CLUSTER_INFO: return "GET_BROKER_CLUSTER_INFO";
    case RC_GET_TOPIC_STATS_INFO: return "GET_TOPIC_STATS_INFO";
    case RC_GET_CONSUMER_CONNECTION_LIST: return "GET_CONSUMER_CONNECTION_LIST";
    case RC_GET_ALL_TOPIC_LIST_FROM_NAMESERVER: return "GET_ALL_TOPIC_LIST_FROM_NAMESERVER";
    case RC_GET_CONSUME_STATS: return "GET_CONSUME_STATS";
    case RC_DELETE_TOPIC_IN_BROKER: return "DELETE_TOPIC_IN_BROKER";
    case RC_DELETE_TOPIC_IN_NAMESRV: return "DELETE_TOPIC_IN_NAMESRV";
    case RC_GET_TOPICS_BY_CLUSTER: return "GET_TOPICS_BY_CLUSTER";
    case RC_QUERY_TOPIC_CONSUME_BY_WHO: return "QUERY_TOPIC_CONSUME_BY_WHO";
    case ADMIN_RC_GET_CONSUMER_RUNNING_INFO: return "GET_CONSUMER_RUNNING_INFO";
    case RC_QUERY_MESSAGE: return "QUERY_MESSAGE";
    case RC_VIEW_MESSAGE_BY_ID: return "VIEW_MESSAGE_BY_ID";
    case RC_PULL_MESSAGE: return "PULL_MESSAGE";
    case RC_SEARCH_OFFSET_BY_TIMESTAMP: return "SEARCH_OFFSET_BY_TIMESTAMP";
    case RC_INVOKE_BROKER_TO_RESET_OFFSET: return "INVOKE_BROKER_TO_RESET_OFFSET";
    case RC_QUERY_CONSUME_TIME_SPAN: return "QUERY_CONSUME_TIME_SPAN";
    case RC_CONTROLLER_GET_METADATA_INFO: return "CONTROLLER_GET_METADATA_INFO";
    case RC_CONTROLLER_GET_SYNC_STATE_DATA: return "CONTROLLER_GET_SYNC_STATE_DATA";
    case RC_CONTROLLER_ELECT_MASTER: return "CONTROLLER_ELECT_MASTER";
    case RC_LSMQ_GET_TIMER_STATUS: return "LSMQ_GET_TIMER_STATUS";
    case RC_SEND_MESSAGE: return "SEND_MESSAGE";
    case RC_UPDATE_AND_CREATE_SUBSCRIPTIONGROUP: return "UPDATE_AND_CREATE_SUBSCRIPTIONGROUP";
    default: return NULL;
    }
}

/* "NAME(code)" or "request code" into buf. */
static const char *describe_request(int32_t code, char *buf, size_t cap)
{
    const char *name = request_name(code);

    if (name)
        snprintf(buf, cap, "%s(%d)", name, (int)code);
    else
        snprintf(buf, cap, "request %d", (int)code);
    return buf;
}

/* Record a transport or decoding failure of req at addr and return rc. */
static int fail(lsmq_admin *a, int rc, const char *addr, const proto_cmd *req,
                const char *detail)
{
    char what[64];

    lsmq__error(&a->err, -1, "%s to %s: %s", describe_request(req->code, what, sizeof what),
                addr, detail && *detail ? detail : lsmq_strerror(rc));
    return rc;
}

int lsmq__admin_refused(lsmq_admin *a, const proto_cmd *resp, const char *addr,
                        const proto_cmd *req)
{
    char what[64];

    lsmq__error(&a->err, resp->code, "%s to %s: CODE: %d  DESC: %s",
                describe_request(req->code, what, sizeof what), addr, (int)resp->code,
                resp->remark ? resp->remark : "");
    return resp->code == RS_TOPIC_NOT_EXIST || resp->code == RS_QUERY_NOT_FOUND ? LSMQ_ENOTFOUND
                                                                               : LSMQ_EIO;
}

/* ------------------------------------------------------------------ */
/* The handle                                                          */
/* ------------------------------------------------------------------ */

int lsmq_admin_create(lsmq_admin **out)
{
    lsmq_admin *a;

    if (out == NULL)
        return LSMQ_EINVAL;
    a = proto_xcalloc(1, sizeof *a);
    pthread_mutex_init(&a->err_lock, NULL);
    lsmq__err_init(&a->err, &a->err_lock);
    *out = a;
    return 0;
}

void lsmq_admin_destroy(lsmq_admin *a)
{
    if (a == NULL)
        return;
    pthread_mutex_destroy(&a->err_lock);
    free(a);
}

int lsmq_admin_last_error(lsmq_admin *a, char *buf, size_t cap)
{
    if (a == NULL) {
        if (buf && cap)
            lsmq__strlcpy(buf, "no admin handle", cap);
        return -1;
    }
    return lsmq__err_copy(&a->err, buf, cap);
}

int lsmq__admin_bad_arg(lsmq_admin *a, const char *fn)
{
    if (a)
        lsmq__error(&a->err, -1, "%s: bad argument", fn);
    return LSMQ_EINVAL;
}

/* ------------------------------------------------------------------ */
/* One exchange                                                        */
/* ------------------------------------------------------------------ */

/* The body of r as a malloc'ed NUL-terminated copy (or NULL), cleared from the command. */
static char *take_body(proto_reply *r, size_t *len)
{
    proto_cmd *cmd = r->cmd;
    char *body = NULL;

    *len = cmd->body_len;
    if (cmd->body && cmd->body_len > 0) {
        body = proto_xmalloc(cmd->body_len + 1);
        memcpy(body, cmd->body, cmd->body_len);
        body[cmd->body_len] = '\0';
    }
    cmd->body = NULL;
    cmd->body_len = 0;
    return body;
}

/* An LSMQ_E* code (they run up from LSMQ_EINVAL), not -errno: its text alone says little. */
static int is_lsmq_code(int rc)
{
    return rc >= LSMQ_EINVAL && rc <= LSMQ_ELAST;
}

int lsmq_admin_call(lsmq_admin *a, const char *addr, const proto_cmd *req, const void *body,
                    size_t body_len, int timeout_ms, proto_cmd **resp, char **resp_body,
                    size_t *resp_body_len)
{
    char why[256] = "";
    transport_sync *s = NULL;
    proto_reply *reply = NULL;
    size_t rlen = 0;
    char *rbody;
    int rc;

    if (resp)
        *resp = NULL;
    if (resp_body)
        *resp_body = NULL;
    if (!a || !addr || !*addr || !req || !resp || timeout_ms <= 0 || (body_len && !body))
        return lsmq__admin_bad_arg(a, "lsmq_admin_call");
    int64_t deadline = proto_mono_ms() + timeout_ms;
    /* The text names the request and the address already: add words only
     * where the error code alone would not say what went wrong. */
    if ((rc = transport_sync_connect(addr, deadline, &s, why, sizeof why)) != 0)
        return fail(a, rc, addr, req, rc == LSMQ_EINVAL || rc == -EHOSTUNREACH ? why : NULL);
    rc = transport_sync_call(s, req, body, body_len, deadline, &reply);
    if (rc != 0) {
        fail(a, rc, addr, req, is_lsmq_code(rc) ? transport_sync_why(s) : NULL);
        transport_sync_close(s);
        return rc;
    }
    transport_sync_close(s);
    rbody = take_body(reply, &rlen);
    *resp = reply->cmd;
    reply->cmd = NULL;
    proto_reply_free(reply);
    if (resp_body)
        *resp_body = rbody;
    else
        free(rbody);
    if (resp_body_len)
        *resp_body_len = rlen;
    return 0;
}

/* The next address of a "a;b;c" list into buf; NULL at the end. */
static const char *next_addr(const char *list, char *buf, size_t cap)
{
    while (*list == ';' || *list == ' ')
        list++;
    if (!*list)
        return NULL;
    size_t n = strcspn(list, ";");
    size_t copy = n < cap ? n : cap - 1;
    memcpy(buf, list, copy);
    while (copy > 0 && buf[copy - 1] == ' ')
        copy--;
    buf[copy] = '\0';
    return list + n;
}

int lsmq_admin_call_namesrv(lsmq_admin *a, const char *namesrv, const proto_cmd *req,
                            const void *body, size_t body_len, int timeout_ms, proto_cmd **resp,
                            char **resp_body, size_t *resp_body_len)
{
    char addr[ADDR_MAX];
    const char *p = namesrv;
    int rc = LSMQ_EINVAL;

    if (!a)
        return LSMQ_EINVAL;
    if (!namesrv || !*namesrv) {
        lsmq__error(&a->err, -1, "no name server address");
        return LSMQ_EINVAL;
    }
    int tried = 0;
    while ((p = next_addr(p, addr, sizeof addr)) != NULL) {
        tried = 1;
        rc = lsmq_admin_call(a, addr, req, body, body_len, timeout_ms, resp, resp_body,
                             resp_body_len);
        if (rc == 0)
            return 0;
    }
    if (!tried)
        lsmq__error(&a->err, -1, "no name server address in \"%s\"", namesrv);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Request helper                                                      */
/* ------------------------------------------------------------------ */

int lsmq__admin_rpc(lsmq_admin *a, const char *addr, int namesrv_list, proto_cmd *req,
                    int timeout_ms, json_t **out)
{
    proto_cmd *resp = NULL;
    char *body = NULL, *json = NULL;
    size_t len = 0;
    int rc;

    if (out)
        *out = NULL;
    if (!a) {
        proto_cmd_free(req);
        return LSMQ_EINVAL;
    }
    if (timeout_ms <= 0) {
        proto_cmd_free(req);
        lsmq__error(&a->err, -1, "timeout must be positive");
        return LSMQ_EINVAL;
    }
    rc = namesrv_list
             ? lsmq_admin_call_namesrv(a, addr, req, NULL, 0, timeout_ms, &resp, &body, &len)
             : lsmq_admin_call(a, addr, req, NULL, 0, timeout_ms, &resp, &body, &len);
    if (rc != 0)
        goto done;
    if (resp->code != RS_SUCCESS) {
        rc = lsmq__admin_refused(a, resp, addr, req);
        goto done;
    }
    if (!out)
        goto done;
    if (!body) {
        rc = fail(a, LSMQ_ECORRUPT, addr, req, "the response has no body");
        goto done;
    }
    if (proto_fastjson_to_json(body, len, &json) != 0 ||
        !(*out = json_loads(json, JSON_DECODE_ANY, NULL)))
        rc = fail(a, LSMQ_ECORRUPT, addr, req, "the response body does not parse");
done:
    free(json);
    free(body);
    proto_cmd_free(resp);
    proto_cmd_free(req);
    return rc;
}

int lsmq__admin_bad_body(lsmq_admin *a, const char *addr, int32_t code)
{
    char what[64];

    lsmq__error(&a->err, -1, "%s to %s: unexpected response body",
                describe_request(code, what, sizeof what), addr);
    return LSMQ_ECORRUPT;
}

int lsmq__admin_rpc_every_namesrv(lsmq_admin *a, const char *namesrv, proto_cmd *req,
                                  int timeout_ms)
{
    char addr[ADDR_MAX];
    const char *p = namesrv;
    int rc = 0, any = 0;

    while (p && (p = next_addr(p, addr, sizeof addr)) != NULL) {
        proto_cmd *copy = proto_cmd_request(req->code);
        for (size_t i = 0; i < req->n_ext; i++)
            proto_cmd_set(copy, req->ext[i].key, req->ext[i].value);
        int r = lsmq__admin_rpc(a, addr, 0, copy, timeout_ms, NULL);
        if (r != 0 && rc == 0)
            rc = r;
        any = 1;
    }
    proto_cmd_free(req);
    if (!any) {
        lsmq__error(&a->err, -1, "no name server address");
        return LSMQ_EINVAL;
    }
    return rc;
}

int lsmq_admin_fastjson_to_json(const char *text, size_t len, char **out)
{
    return proto_fastjson_to_json(text, len, out);
}
