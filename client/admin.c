/*
 * The admin API's transport (lsmq_admin.h): one blocking TCP exchange per
 * call, without the event loop the producers and consumers use.
 *
 * A call resolves the address, connects without blocking past its
 * deadline, writes the whole frame, then reads frames until the response
 * whose opaque matches the request's (a broker may send requests of its own
 * on any connection; those are skipped). Every wait is a poll() bounded by
 * the time left before the deadline, so timeout_ms covers the whole call.
 *
 * admin__rpc, used by the typed requests in admin_requests.c, insists on
 * SUCCESS and turns the body into standard JSON; every failure is recorded
 * for lsmq_last_error() with the request's name and the address.
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin_internal.h"

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
static int fail(int rc, const char *addr, const proto_cmd *req, const char *detail)
{
    char what[64];

    lsmq__error(-1, "%s to %s: %s", describe_request(req->code, what, sizeof what), addr,
                detail ? detail : lsmq_strerror(rc));
    return rc;
}

int admin__refused(const proto_cmd *resp, const char *addr, const proto_cmd *req)
{
    char what[64];

    lsmq__error(resp->code, "%s to %s: CODE: %d  DESC: %s",
                describe_request(req->code, what, sizeof what), addr, (int)resp->code,
                resp->remark ? resp->remark : "");
    return resp->code == RS_TOPIC_NOT_EXIST || resp->code == RS_QUERY_NOT_FOUND ? LSMQ_ENOTFOUND
                                                                               : LSMQ_EIO;
}

/* ------------------------------------------------------------------ */
/* Blocking socket I/O with a deadline                                 */
/* ------------------------------------------------------------------ */

/* Wait until fd is ready for `events` or the deadline passes. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - lsmq__mono_ms();
        struct pollfd p = {.fd = fd, .events = events};

        if (left <= 0)
            return -ETIMEDOUT;
        int n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (n > 0)
            return 0; /* readiness or an error: the next call tells which */
        if (n == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

/* "host:port" or "[v6]:port" into its parts. */
static int split_addr(const char *addr, char *host, size_t host_cap, const char **port)
{
    const char *colon = strrchr(addr, ':');
    const char *h = addr;
    size_t hlen;

    if (!colon || !colon[1])
        return LSMQ_EINVAL;
    hlen = (size_t)(colon - addr);
    if (hlen >= 2 && addr[0] == '[' && addr[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= host_cap)
        return LSMQ_EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = colon + 1;
    return 0;
}

/* Connect one resolved address without blocking past the deadline. */
static int connect_one(const struct addrinfo *ai, int64_t deadline, int *out)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
    int rc = 0, err = 0;
    socklen_t len = sizeof err;

    if (fd < 0)
        return -errno;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
            goto err;
        }
        if ((rc = wait_fd(fd, POLLOUT, deadline)) != 0)
            goto err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err != 0) {
            rc = -err;
            goto err;
        }
    }
    *out = fd;
    return 0;
err:
    close(fd);
    return rc;
}

/* Connect to addr; on failure errbuf may say why (malformed, unresolvable). */
static int open_conn(const char *addr, int64_t deadline, int *out, char *errbuf, size_t errlen)
{
    char host[ADDR_MAX];
    const char *port;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc;

    if (split_addr(addr, host, sizeof host, &port) != 0) {
        snprintf(errbuf, errlen, "malformed address (want host:port)");
        return LSMQ_EINVAL;
    }
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0 || !res) {
        snprintf(errbuf, errlen, "cannot resolve %.64s: %s", host,
                 gai ? gai_strerror(gai) : "no address");
        return -EHOSTUNREACH;
    }
    rc = -ECONNREFUSED;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next)
        if ((rc = connect_one(ai, deadline, out)) == 0 || rc == -ETIMEDOUT)
            break;
    freeaddrinfo(res);
    return rc;
}

static int send_all(int fd, const uint8_t *p, size_t n, int64_t deadline)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_fd(fd, POLLOUT, deadline);
            if (rc != 0)
                return rc;
        } else {
            return w < 0 ? -errno : -EIO;
        }
    }
    return 0;
}

static int recv_all(int fd, uint8_t *p, size_t n, int64_t deadline)
{
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);

        if (r > 0) {
            p += r;
            n -= (size_t)r;
        } else if (r == 0) {
            return -ECONNRESET;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int rc = wait_fd(fd, POLLIN, deadline);
            if (rc != 0)
                return rc;
        } else {
            return -errno;
        }
    }
    return 0;
}

/* Read one whole frame into a malloc'ed buffer. */
static int read_frame(int fd, int64_t deadline, uint8_t **frame, size_t *frame_len)
{
    uint8_t head[4];
    size_t len = 0;
    int rc;

    if ((rc = recv_all(fd, head, sizeof head, deadline)) != 0)
        return rc;
    rc = proto_frame_check(head, sizeof head, PROTO_FRAME_MAX_DEFAULT, &len);
    if (rc < 0)
        return rc;
    /* The size comes from the peer: fail cleanly rather than abort. */
    uint8_t *buf = malloc(len);
    if (!buf)
        return LSMQ_ENOMEM;
    memcpy(buf, head, sizeof head);
    if ((rc = recv_all(fd, buf + sizeof head, len - sizeof head, deadline)) != 0) {
        free(buf);
        return rc;
    }
    *frame = buf;
    *frame_len = len;
    return 0;
}

/* Read frames until the response to `opaque`; *resp's body is copied out. */
static int read_response(int fd, int64_t deadline, int32_t opaque, proto_cmd **resp,
                         char **body, size_t *body_len, char *errbuf, size_t errlen)
{
    for (;;) {
        uint8_t *frame = NULL;
        size_t len = 0;
        proto_cmd *cmd = NULL;
        int rc = read_frame(fd, deadline, &frame, &len);

        if (rc != 0)
            return rc;
        rc = proto_cmd_decode(frame, len, &cmd, errbuf, errlen);
        if (rc != 0) {
            free(frame);
            return rc;
        }
        if (!proto_cmd_is_response(cmd) || cmd->opaque != opaque) {
            proto_cmd_free(cmd);
            free(frame);
            continue;
        }
        *body = NULL;
        *body_len = cmd->body_len;
        if (cmd->body && cmd->body_len > 0) {
            *body = lsmq__malloc(cmd->body_len + 1);
            memcpy(*body, cmd->body, cmd->body_len);
            (*body)[cmd->body_len] = '\0';
        }
        cmd->body = NULL;
        cmd->body_len = 0;
        free(frame);
        *resp = cmd;
        return 0;
    }
}

int lsmq_admin_call(const char *addr, const proto_cmd *req, const void *body, size_t body_len,
                    int timeout_ms, proto_cmd **resp, char **resp_body, size_t *resp_body_len)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    char *rbody = NULL;
    size_t rlen = 0;
    char errbuf[128] = "";
    int fd = -1, rc;

    if (resp)
        *resp = NULL;
    if (resp_body)
        *resp_body = NULL;
    if (!addr || !*addr || !req || !resp || timeout_ms <= 0 || (body_len && !body)) {
        lsmq__error(-1, "lsmq_admin_call: bad argument");
        return LSMQ_EINVAL;
    }
    int64_t deadline = lsmq__mono_ms() + timeout_ms;
    if ((rc = proto_cmd_encode(req, body, body_len, &out, &out_len)) != 0)
        return fail(rc, addr, req, NULL);
    if ((rc = open_conn(addr, deadline, &fd, errbuf, sizeof errbuf)) != 0) {
        free(out);
        return fail(rc, addr, req, errbuf[0] ? errbuf : NULL);
    }
    rc = send_all(fd, out, out_len, deadline);
    free(out);
    if (rc == 0)
        rc = read_response(fd, deadline, req->opaque, resp, &rbody, &rlen, errbuf,
                           sizeof errbuf);
    close(fd);
    if (rc != 0)
        return fail(rc, addr, req, errbuf[0] ? errbuf : NULL);
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

int lsmq_admin_call_namesrv(const char *namesrv, const proto_cmd *req, const void *body,
                            size_t body_len, int timeout_ms, proto_cmd **resp, char **resp_body,
                            size_t *resp_body_len)
{
    char addr[ADDR_MAX];
    const char *p = namesrv;
    int rc = LSMQ_EINVAL;

    if (!namesrv || !*namesrv) {
        lsmq__error(-1, "no name server address");
        return LSMQ_EINVAL;
    }
    int tried = 0;
    while ((p = next_addr(p, addr, sizeof addr)) != NULL) {
        tried = 1;
        rc = lsmq_admin_call(addr, req, body, body_len, timeout_ms, resp, resp_body,
                             resp_body_len);
        if (rc == 0)
            return 0;
    }
    if (!tried)
        lsmq__error(-1, "no name server address in \"%s\"", namesrv);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Request helper                                                      */
/* ------------------------------------------------------------------ */

int admin__rpc(const char *addr, int namesrv_list, proto_cmd *req, int timeout_ms, json_t **out)
{
    proto_cmd *resp = NULL;
    char *body = NULL, *json = NULL;
    size_t len = 0;
    int rc;

    if (out)
        *out = NULL;
    if (timeout_ms <= 0) {
        proto_cmd_free(req);
        lsmq__error(-1, "timeout must be positive");
        return LSMQ_EINVAL;
    }
    rc = namesrv_list ? lsmq_admin_call_namesrv(addr, req, NULL, 0, timeout_ms, &resp, &body, &len)
                      : lsmq_admin_call(addr, req, NULL, 0, timeout_ms, &resp, &body, &len);
    if (rc != 0)
        goto done;
    if (resp->code != RS_SUCCESS) {
        rc = admin__refused(resp, addr, req);
        goto done;
    }
    if (!out)
        goto done;
    if (!body) {
        rc = fail(LSMQ_ECORRUPT, addr, req, "the response has no body");
        goto done;
    }
    if (lsmq_admin_fastjson_to_json(body, len, &json) != 0 ||
        !(*out = json_loads(json, JSON_DECODE_ANY, NULL)))
        rc = fail(LSMQ_ECORRUPT, addr, req, "the response body does not parse");
done:
    free(json);
    free(body);
    proto_cmd_free(resp);
    proto_cmd_free(req);
    return rc;
}

int admin__bad_body(const char *addr, int32_t code)
{
    char what[64];

    lsmq__error(-1, "%s to %s: unexpected response body",
                describe_request(code, what, sizeof what), addr);
    return LSMQ_ECORRUPT;
}

int admin__rpc_every_namesrv(const char *namesrv, proto_cmd *req, int timeout_ms)
{
    char addr[ADDR_MAX];
    const char *p = namesrv;
    int rc = 0, any = 0;

    while (p && (p = next_addr(p, addr, sizeof addr)) != NULL) {
        proto_cmd *copy = proto_cmd_request(req->code);
        for (size_t i = 0; i < req->n_ext; i++)
            proto_cmd_set(copy, req->ext[i].key, req->ext[i].value);
        int r = admin__rpc(addr, 0, copy, timeout_ms, NULL);
        if (r != 0 && rc == 0)
            rc = r;
        any = 1;
    }
    proto_cmd_free(req);
    if (!any) {
        lsmq__error(-1, "no name server address");
        return LSMQ_EINVAL;
    }
    return rc;
}
