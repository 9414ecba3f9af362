/*
 * Registration with the name servers. One thread (never the loop: it does
 * blocking socket I/O) keeps a persistent connection to every address in
 * namesrvAddr and sends REGISTER_BROKER with all topic configs every
 * registerNameServerPeriod, at once when broker_register_now asks (a topic
 * was created), and sooner after a failure. A failed connection is dropped
 * and made again on the next round. Stopping sends UNREGISTER_BROKER.
 *
 * The DataVersion sent moves (counter + 1, timestamp now) only when the
 * topic configs change, so name servers re-read queue data only then.
 *
 * Threads: broker_registrar_start/stop on the loop thread;
 * broker_register_now from any thread (it only signals a condvar).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "broker_internal.h"
#include "log.h"
#include "record.h"

#define CONNECT_TIMEOUT_MS 3000
#define IO_TIMEOUT_MS 3000
#define RETRY_MS 3000         /* after a failed round, instead of the full period */
#define STOP_CONNECT_MS 1000  /* for the UNREGISTER_BROKER at shutdown */

typedef struct ns_peer {
    char host[256];
    char port[16];
    char label[280];  /* "host:port" for log lines */
    int fd;           /* -1 when not connected; changed under the registrar's lock */
    bool busy;        /* a request is in flight on fd */
    bool failing;     /* the last attempt failed (log once per streak) */
    bool ever_ok;
} ns_peer;

struct broker_registrar {
    broker_registration *owner;
    server *srv;
    engine *e;
    broker_config cfg;
    char addr[96];
    char ha_addr[96];
    ns_peer *peers;
    size_t n_peers;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
    bool now;
    uint64_t requested_gen;  /* under lock */
    uint64_t topics_hash;
    int64_t dv_counter;
    int64_t dv_timestamp;
    int32_t opaque;
    struct broker_registrar *next;
};

/* broker_register_now only has the owner: running registrars, by owner. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static broker_registrar *registry;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ */
/* Blocking socket I/O                                                  */

static void set_timeouts(int fd, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* Connect with a timeout (non-blocking connect + poll), then go blocking. */
static int connect_peer(const ns_peer *p, int timeout_ms, char *why, size_t wl)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(p->host, p->port, &hints, &res);
    if (gai != 0) {
        snprintf(why, wl, "cannot resolve: %s", gai_strerror(gai));
        return -1;
    }
    int fd = -1;
    snprintf(why, wl, "no address");
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int err = 0;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            err = errno;
            if (err == EINPROGRESS) {
                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                int n = poll(&pfd, 1, timeout_ms);
                socklen_t sl = sizeof err;
                if (n == 1)
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl);
                else
                    err = n == 0 ? ETIMEDOUT : errno;
            }
        }
        if (err == 0) {
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            set_timeouts(fd, IO_TIMEOUT_MS);
            break;
        }
        snprintf(why, wl, "connect: %s", strerror(err));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int send_all(int fd, const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL); /* no SIGPIPE when the peer went */
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int recv_all(int fd, uint8_t *p, size_t len)
{
    while (len) {
        ssize_t r = recv(fd, p, len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

/* Send req and wait for the response with its opaque. *resp and *frame (which
 * the response's body points into) are the caller's to free. */
static int call(int fd, proto_cmd *req, const void *body, size_t body_len, proto_cmd **resp,
                uint8_t **frame, char *why, size_t wl)
{
    uint8_t *out;
    size_t out_len;
    if (proto_cmd_encode(req, body, body_len, &out, &out_len) != 0) {
        snprintf(why, wl, "request too big to encode");
        return -1;
    }
    int rc = send_all(fd, out, out_len);
    free(out);
    if (rc != 0) {
        snprintf(why, wl, "send: %s", strerror(errno));
        return -1;
    }
    for (;;) {
        uint8_t hdr[4];
        errno = 0;
        if (recv_all(fd, hdr, 4) != 0) {
            snprintf(why, wl, "no response: %s", errno ? strerror(errno) : "connection closed");
            return -1;
        }
        uint32_t len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
                       (uint32_t)hdr[2] << 8 | hdr[3];
        if (len < 4 || len > PROTO_FRAME_MAX_DEFAULT - 4) {
            snprintf(why, wl, "bad frame length %u", len);
            return -1;
        }
        uint8_t *buf = malloc((size_t)len + 4);
        if (!buf)
            abort();
        memcpy(buf, hdr, 4);
        proto_cmd *cmd = NULL;
        if (recv_all(fd, buf + 4, len) != 0 ||
            proto_cmd_decode(buf, (size_t)len + 4, &cmd, why, wl) != 0) {
            if (!cmd && !*why)
                snprintf(why, wl, "truncated response");
            free(buf);
            return -1;
        }
        if (proto_cmd_is_response(cmd) && cmd->opaque == req->opaque) {
            *resp = cmd;
            *frame = buf;
            return 0;
        }
        proto_cmd_free(cmd); /* nothing else is expected; skip it */
        free(buf);
    }
}

/* ------------------------------------------------------------------ */
/* The RegisterBrokerBody                                               */

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static json_t *topic_json(const engine_topic_config *tc)
{
    /* Attributes are stored free-form; only a JSON object fits TopicConfig. */
    json_t *attrs = json_loads(tc->attributes, 0, NULL);
    if (!json_is_object(attrs)) {
        json_decref(attrs);
        attrs = json_object();
    }
    return json_pack("{s:o,s:b,s:i,s:i,s:s,s:s,s:i,s:i}", "attributes", attrs, "order",
                     tc->order != 0, "perm", (int)tc->perm, "readQueueNums",
                     (int)tc->read_queue_nums, "topicFilterType", "SINGLE_TAG", "topicName",
                     tc->name, "topicSysFlag", 0, "writeQueueNums", (int)tc->write_queue_nums);
}

/* The body for this round (malloc'ed text), or NULL when the store failed. */
static char *build_body(broker_registrar *r, size_t *n_topics)
{
    engine_topic_config *tl = NULL;
    size_t n = 0;
    int rc = engine_topic_list(r->e, &tl, &n);
    if (rc != 0) {
        lsmq_log("broker: cannot list topics for the name servers: %s", lsmq_strerror(rc));
        return NULL;
    }
    json_t *table = json_object();
    for (size_t i = 0; i < n; i++) {
        json_t *tc = topic_json(&tl[i]);
        if (!tc || json_object_set_new(table, tl[i].name, tc) != 0)
            lsmq_log("broker: topic '%s' cannot be registered (not UTF-8)", tl[i].name);
    }
    engine_free(tl);
    *n_topics = json_object_size(table);

    char *table_text = json_dumps(table, JSON_COMPACT | JSON_SORT_KEYS);
    if (!table_text)
        abort();
    uint64_t h = fnv1a(table_text);
    free(table_text);
    if (h != r->topics_hash) {
        r->topics_hash = h;
        r->dv_counter++;
        r->dv_timestamp = wall_ms();
    }
    json_t *root = json_pack("{s:[],s:{s:{s:I,s:I},s:o}}", "filterServerList",
                             "topicConfigSerializeWrapper", "dataVersion", "counter",
                             (json_int_t)r->dv_counter, "timestamp",
                             (json_int_t)r->dv_timestamp, "topicConfigTable", table);
    if (!root)
        abort();
    char *text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    if (!text)
        abort();
    return text;
}

/* ------------------------------------------------------------------ */
/* Rounds                                                               */

static void peer_close(broker_registrar *r, ns_peer *p)
{
    pthread_mutex_lock(&r->lock);
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    p->busy = false;
    pthread_mutex_unlock(&r->lock);
}

static proto_cmd *broker_request(broker_registrar *r, int code)
{
    proto_cmd *req = proto_cmd_request(code);
    proto_cmd_set(req, "brokerName", r->cfg.broker_name);
    proto_cmd_set(req, "brokerAddr", r->addr);
    proto_cmd_set(req, "clusterName", r->cfg.broker_cluster_name);
    proto_cmd_set_i64(req, "brokerId", r->cfg.broker_id);
    req->opaque = ++r->opaque;
    return req;
}

static int register_one(broker_registrar *r, ns_peer *p, const char *body, size_t n_topics)
{
    char why[256] = "";
    int ok = 0;
    if (p->fd < 0) {
        int fd = connect_peer(p, CONNECT_TIMEOUT_MS, why, sizeof why);
        pthread_mutex_lock(&r->lock);
        p->fd = fd;
        pthread_mutex_unlock(&r->lock);
    }
    pthread_mutex_lock(&r->lock);
    bool go = p->fd >= 0 && !r->stop;
    p->busy = go; /* from here stop may shut the socket down to cut a wait short */
    pthread_mutex_unlock(&r->lock);
    if (go) {
        size_t len = strlen(body);
        proto_cmd *req = broker_request(r, RC_REGISTER_BROKER);
        proto_cmd_set(req, "haServerAddr", r->ha_addr);
        proto_cmd_set_bool(req, "compressed", 0);
        proto_cmd_set_i64(req, "bodyCrc32", proto_body_crc(body, len));
        proto_cmd *resp = NULL;
        uint8_t *frame = NULL;
        int rc = call(p->fd, req, body, len, &resp, &frame, why, sizeof why);
        proto_cmd_free(req);
        if (rc != 0) {
            peer_close(r, p);
        } else if (resp->code != RS_SUCCESS) {
            snprintf(why, sizeof why, "refused with code %d: %s", (int)resp->code,
                     resp->remark ? resp->remark : "");
        } else {
            ok = 1;
        }
        proto_cmd_free(resp);
        free(frame);
        pthread_mutex_lock(&r->lock);
        p->busy = false;
        pthread_mutex_unlock(&r->lock);
    }
    pthread_mutex_lock(&r->lock);
    bool stopping = r->stop;
    pthread_mutex_unlock(&r->lock);
    if (stopping)
        return -1; /* a round cut short by broker_registrar_stop is not worth a log line */
    if (ok && (p->failing || !p->ever_ok))
        lsmq_log("broker: registered with name server %s (%zu topics)", p->label, n_topics);
    else if (!ok && !p->failing)
        lsmq_log("broker: cannot register with name server %s: %s", p->label, why);
    p->failing = !ok;
    p->ever_ok = p->ever_ok || ok;
    return ok ? 0 : -1;
}

static int register_all(broker_registrar *r)
{
    size_t n_topics = 0;
    char *body = build_body(r, &n_topics);
    if (!body)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < r->n_peers; i++)
        if (register_one(r, &r->peers[i], body, n_topics) != 0)
            rc = -1;
    free(body);
    return rc;
}

/* Oneway, so a name server living in our own (now blocked) loop costs no wait;
 * closing the connection right after removes us there as well. */
static void unregister_all(broker_registrar *r)
{
    for (size_t i = 0; i < r->n_peers; i++) {
        ns_peer *p = &r->peers[i];
        char why[256] = "";
        for (int attempt = 0; attempt < 2; attempt++) {
            if (p->fd < 0) {
                int fd = connect_peer(p, STOP_CONNECT_MS, why, sizeof why);
                pthread_mutex_lock(&r->lock);
                p->fd = fd;
                pthread_mutex_unlock(&r->lock);
                if (fd < 0)
                    break;
            }
            proto_cmd *req = broker_request(r, RC_UNREGISTER_BROKER);
            req->flag = PROTO_FLAG_ONEWAY;
            uint8_t *out;
            size_t out_len;
            int rc = proto_cmd_encode(req, NULL, 0, &out, &out_len);
            proto_cmd_free(req);
            if (rc == 0) {
                rc = send_all(p->fd, out, out_len);
                free(out);
            }
            peer_close(r, p);
            if (rc == 0)
                break;
        }
    }
}

typedef struct registered_msg {
    broker_registration *owner;
    uint64_t gen;
} registered_msg;

static void registered_on_loop(void *arg)
{
    registered_msg *m = arg;
    broker__registered(m->owner, m->gen);
    free(m);
}

/* Tell the loop that registration round `gen` is over (done or failed: nobody
 * waits longer than one round). */
static void post_registered(broker_registrar *r, uint64_t gen)
{
    registered_msg *m = malloc(sizeof *m);
    if (!m)
        abort();
    m->owner = r->owner;
    m->gen = gen;
    server_post(r->srv, registered_on_loop, m);
}

static void *run(void *arg)
{
    broker_registrar *r = arg;
    uint64_t due = 0; /* register at once */
    pthread_mutex_lock(&r->lock);
    while (!r->stop) {
        uint64_t now = mono_ms();
        if (!r->now && now < due) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t wait = due - now;
            ts.tv_sec += (time_t)(wait / 1000);
            ts.tv_nsec += (long)(wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&r->cond, &r->lock, &ts);
            continue;
        }
        r->now = false; /* a request arriving during the round triggers another */
        uint64_t round_gen = r->requested_gen;
        pthread_mutex_unlock(&r->lock);
        int rc = register_all(r);
        if (round_gen)
            post_registered(r, round_gen);
        /* At most 60 s, as upstream: name servers drop brokers silent for 120 s. */
        uint64_t period = r->cfg.register_interval_ms ? r->cfg.register_interval_ms : 30000;
        if (period > 60000)
            period = 60000;
        if (rc != 0 && period > RETRY_MS)
            period = RETRY_MS;
        pthread_mutex_lock(&r->lock);
        due = mono_ms() + period;
    }
    pthread_mutex_unlock(&r->lock);
    unregister_all(r);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Start, stop, now                                                     */

/* "host:port;host:port" into peers; returns how many. */
static size_t parse_addrs(broker_registrar *r, const char *list)
{
    char *copy = strdup(list), *save = NULL;
    if (!copy)
        abort();
    for (char *tok = strtok_r(copy, ";,", &save); tok; tok = strtok_r(NULL, ";,", &save)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n'))
            *--end = 0;
        char *colon = strrchr(tok, ':');
        if (!*tok || !colon || colon == tok || !colon[1] ||
            (size_t)(colon - tok) >= sizeof r->peers[0].host ||
            strlen(colon + 1) >= sizeof r->peers[0].port) {
            if (*tok)
                lsmq_log("broker: ignoring name server address '%s' (want host:port)", tok);
            continue;
        }
        r->peers = realloc(r->peers, (r->n_peers + 1) * sizeof *r->peers);
        if (!r->peers)
            abort();
        ns_peer *p = &r->peers[r->n_peers++];
        memset(p, 0, sizeof *p);
        memcpy(p->host, tok, (size_t)(colon - tok));
        p->host[colon - tok] = 0;
        snprintf(p->port, sizeof p->port, "%s", colon + 1);
        snprintf(p->label, sizeof p->label, "%s:%s", p->host, p->port);
        p->fd = -1;
    }
    free(copy);
    return r->n_peers;
}

broker_registrar *broker_registrar_start(broker_ctx *ctx, broker_registration *owner)
{
    broker_registrar *r = calloc(1, sizeof *r);
    if (!r)
        abort();
    r->owner = owner;
    r->srv = ctx->srv;
    r->e = ctx->engine;
    r->cfg = ctx->cfg;
    snprintf(r->addr, sizeof r->addr, "%s", ctx->addr);
    snprintf(r->ha_addr, sizeof r->ha_addr, "%s:%d", r->cfg.broker_ip1, r->cfg.listen_port + 1);
    if (parse_addrs(r, r->cfg.namesrv_addr) == 0) {
        lsmq_log("broker: no namesrvAddr, not registering with any name server");
        free(r->peers);
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cond, &ca);
    pthread_condattr_destroy(&ca);

    /* Signals belong to the loop thread (ev_signal). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&r->thread, NULL, run, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        lsmq_log("broker: cannot start the registration thread: %s", strerror(rc));
        pthread_cond_destroy(&r->cond);
        pthread_mutex_destroy(&r->lock);
        free(r->peers);
        free(r);
        return NULL;
    }
    pthread_mutex_lock(&registry_lock);
    r->next = registry;
    registry = r;
    pthread_mutex_unlock(&registry_lock);
    return r;
}

void broker_registrar_stop(broker_registrar *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&registry_lock);
    for (broker_registrar **pp = &registry; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);

    pthread_mutex_lock(&r->lock);
    r->stop = true;
    /* A registration waiting on a name server served by our own loop (embedded)
     * would wait out its timeout, since that loop is busy right here. */
    for (size_t i = 0; i < r->n_peers; i++)
        if (r->peers[i].busy && r->peers[i].fd >= 0)
            shutdown(r->peers[i].fd, SHUT_RDWR);
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
    free(r->peers);
    free(r);
}

uint64_t broker_register_now(broker_registration *owner)
{
    uint64_t gen = 0;
    pthread_mutex_lock(&registry_lock);
    for (broker_registrar *r = registry; r; r = r->next) {
        if (r->owner == owner) {
            pthread_mutex_lock(&r->lock);
            r->now = true;
            gen = ++r->requested_gen;
            pthread_cond_signal(&r->cond);
            pthread_mutex_unlock(&r->lock);
        }
    }
    pthread_mutex_unlock(&registry_lock);
    return gen;
}
