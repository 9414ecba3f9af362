/*
 * Registration with the name servers, on the broker's own loop. Every
 * address in namesrvAddr gets one connection (the connection core driven by
 * the transport's libev adapter), kept open from round to round. A round
 * sends REGISTER_BROKER with all topic configs to every name server at once
 * and ends when each has answered or failed. Rounds run every
 * registerNameServerPeriod (at most 60 s), at once when broker_register_now
 * asks (a topic was created), and RETRY_MS after a round with a failure. A
 * connection that failed is dropped and made again by the next round.
 *
 * The end of a round is reported with broker__registered, so answers that
 * wait for their topic's route (broker_registration_after) go out once the
 * name servers know it.
 *
 * Stopping happens after the loop has stopped running: each connection
 * moves to the transport's blocking adapter (or a new one is opened) to
 * send UNREGISTER_BROKER oneway, waiting at most STOP_WAIT_MS.
 *
 * The DataVersion sent moves (counter + 1, timestamp now) only when the
 * topic configs change, so name servers re-read queue data only then.
 *
 * Every registration carries haServerAddr, where this broker's replicas
 * connect; a replica's answer names its master (masterAddr, and its
 * haServerAddr), which is passed on with broker__master_heard.
 *
 * Threads: everything on the loop thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alloc.h"
#include "broker_internal.h"
#include "clock.h"
#include "log.h"
#include "record.h"
#include "transport.h"

#define CONNECT_TIMEOUT_MS 3000
#define REQUEST_TIMEOUT_MS 3000
#define RETRY_MS 3000        /* after a failed round, instead of the full period */
#define PERIOD_MAX_MS 60000  /* name servers drop brokers silent for 120 s */
#define STOP_WAIT_MS 1000    /* for each UNREGISTER_BROKER at shutdown */

typedef struct ns_peer {
    broker_registrar *r;
    char addr[280];
    proto_conn *pc;          /* NULL when there is no connection */
    transport_ev io;
    bool failing;            /* the last attempt failed (log once per streak) */
    bool ever_ok;
} ns_peer;

struct broker_registrar {
    broker_registration *owner;
    broker_ctx *ctx;         /* its engine may be replaced (a replica made again) */
    broker_config cfg;
    char addr[96];
    struct ev_loop *loop;
    transport_flusher *flusher;
    ev_timer round_timer;
    ns_peer *peers;
    size_t n_peers;
    bool stopping;
    bool in_round;
    bool again;              /* asked during a round: another one right after it */
    uint64_t requested_gen;  /* the latest broker_register_now */
    uint64_t round_gen;      /* what the running round satisfies */
    size_t round_waiting;    /* name servers that have not answered yet */
    bool round_failed;
    size_t round_topics;
    uint64_t topics_hash;
    int64_t dv_counter;
    int64_t dv_timestamp;
};

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
    if (!r->ctx->engine)
        return NULL;
    int rc = engine_topic_list(r->ctx->engine, &tl, &n);
    if (rc != 0) {
        proto_log(PROTO_LOG_WARN, "broker: cannot list topics for the name servers: %s", lsmq_strerror(rc));
        return NULL;
    }
    json_t *table = json_object();
    for (size_t i = 0; i < n; i++) {
        json_t *tc = topic_json(&tl[i]);
        if (!tc || json_object_set_new(table, tl[i].name, tc) != 0)
            proto_log(PROTO_LOG_WARN, "broker: topic '%s' cannot be registered (not UTF-8)", tl[i].name);
    }
    engine_free(tl);
    *n_topics = json_object_size(table);

    char *table_text = json_dumps(table, JSON_COMPACT | JSON_SORT_KEYS);
    if (!table_text)
        proto_oom(0);
    uint64_t h = fnv1a(table_text);
    free(table_text);
    if (h != r->topics_hash) {
        r->topics_hash = h;
        r->dv_counter++;
        r->dv_timestamp = proto_wall_ms();
    }
    json_t *root = json_pack("{s:[],s:{s:{s:I,s:I},s:o}}", "filterServerList",
                             "topicConfigSerializeWrapper", "dataVersion", "counter",
                             (json_int_t)r->dv_counter, "timestamp",
                             (json_int_t)r->dv_timestamp, "topicConfigTable", table);
    if (!root)
        proto_oom(0);
    char *text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    if (!text)
        proto_oom(0);
    return text;
}

static proto_cmd *broker_request(broker_registrar *r, int code)
{
    proto_cmd *req = proto_cmd_request(code);
    proto_cmd_set(req, "brokerName", r->cfg.broker_name);
    proto_cmd_set(req, "brokerAddr", r->addr);
    proto_cmd_set(req, "clusterName", r->cfg.broker_cluster_name);
    proto_cmd_set_i64(req, "brokerId", r->cfg.broker_id);
    if (r->cfg.enable_controller_mode) /* name servers with a lagging controller trust a newer one */
        proto_cmd_set_i64(req, "controllerEpoch", (int64_t)r->cfg.controller_epoch);
    return req;
}

/* ------------------------------------------------------------------ */
/* Connections                                                          */

/* Forget a connection that died (never from inside its own callbacks). */
static void peer_forget(ns_peer *p)
{
    transport_ev_discard(&p->io, &p->pc);
}

/* Stop using a connection: its requests fail now, its memory goes at the next round. */
static void peer_break(ns_peer *p, int err, const char *why)
{
    transport_ev_close(&p->io);
    proto_conn_fail_all(p->pc, err, why);
}

static void peer_end_cb(transport_ev *a, int err, const char *why, void *arg)
{
    ns_peer *p = arg;

    peer_break(p, err ? err : -ECONNRESET, why);
}

/* A live connection to the peer (connecting or open), or NULL with why set. */
static proto_conn *peer_conn(ns_peer *p, char *why, size_t why_len)
{
    proto_conn_options o = {.name = p->addr, .connecting = 1};
    proto_conn *pc;

    if (p->pc && proto_conn_state(p->pc) == PROTO_CONN_CLOSED)
        peer_forget(p);
    if (p->pc)
        return p->pc;
    pc = proto_conn_create(&o);
    if (transport_ev_connect(&p->io, pc, p->r->loop, p->r->flusher, p->addr, CONNECT_TIMEOUT_MS,
                             peer_end_cb, p, why, why_len) != 0) {
        proto_conn_free(pc);
        return NULL;
    }
    p->pc = pc;
    return p->pc;
}

/* ------------------------------------------------------------------ */
/* Rounds                                                               */

static void schedule(broker_registrar *r, int64_t in_ms)
{
    ev_timer_stop(r->loop, &r->round_timer);
    ev_timer_set(&r->round_timer, (double)in_ms / 1000.0, 0.);
    ev_timer_start(r->loop, &r->round_timer);
}

static void round_end(broker_registrar *r)
{
    int64_t period = r->cfg.register_interval_ms ? r->cfg.register_interval_ms : 30000;

    r->in_round = false;
    if (period > PERIOD_MAX_MS)
        period = PERIOD_MAX_MS;
    if (r->round_failed && period > RETRY_MS)
        period = RETRY_MS;
    schedule(r, r->again ? 0 : period);
    /* Done or failed alike: nobody waits longer than one round. Waiters may ask again. */
    if (r->round_gen)
        broker__registered(r->owner, r->round_gen);
}

/* One name server's outcome: log changes, and end the round with the last one. */
static void peer_outcome(ns_peer *p, bool ok, const char *why)
{
    broker_registrar *r = p->r;

    if (ok && (p->failing || !p->ever_ok))
        proto_log(PROTO_LOG_INFO, "broker: registered with name server %s (%zu topics)", p->addr, r->round_topics);
    else if (!ok && !p->failing)
        proto_log(PROTO_LOG_WARN, "broker: cannot register with name server %s: %s", p->addr, why);
    p->failing = !ok;
    p->ever_ok = p->ever_ok || ok;
    if (!ok)
        r->round_failed = true;
    if (--r->round_waiting == 0)
        round_end(r);
}

static void register_cb(int rc, proto_reply *reply, const char *why, void *arg)
{
    ns_peer *p = arg;
    char text[300];

    if (p->r->stopping) {
        proto_reply_free(reply);
        return; /* a round cut short by stopping is not worth a log line */
    }
    if (rc != 0) {
        if (proto_conn_state(p->pc) != PROTO_CONN_CLOSED)
            peer_break(p, rc, why); /* a timeout: this connection is not to be trusted */
        peer_outcome(p, false, why);
        return;
    }
    if (reply->cmd->code != RS_SUCCESS) {
        snprintf(text, sizeof text, "refused with code %d: %s", (int)reply->cmd->code,
                 reply->cmd->remark ? reply->cmd->remark : "");
        proto_reply_free(reply);
        peer_outcome(p, false, text);
        return;
    }
    const char *master = proto_cmd_get(reply->cmd, "masterAddr");
    const char *master_ha = proto_cmd_get(reply->cmd, "haServerAddr");
    if (master && *master && master_ha && *master_ha)
        broker__master_heard(p->r->owner, master, master_ha);
    proto_reply_free(reply);
    peer_outcome(p, true, NULL);
}

static void round_start(broker_registrar *r)
{
    char why[300];
    size_t len;
    char *body = build_body(r, &r->round_topics);

    r->in_round = true;
    r->again = false;
    r->round_gen = r->requested_gen;
    r->round_failed = body == NULL;
    /* Counted as one until every request is out, so no answer ends the round early. */
    r->round_waiting = 1;
    for (size_t i = 0; body && i < r->n_peers; i++) {
        ns_peer *p = &r->peers[i];
        proto_conn *pc = peer_conn(p, why, sizeof why);
        if (!pc) {
            r->round_waiting++;
            peer_outcome(p, false, why);
            continue;
        }
        len = strlen(body);
        proto_cmd *req = broker_request(r, RC_REGISTER_BROKER);
        proto_cmd_set(req, "haServerAddr", r->ctx->ha_addr); /* set once HA listens */
        proto_cmd_set_bool(req, "compressed", 0);
        proto_cmd_set_i64(req, "bodyCrc32", proto_body_crc(body, len));
        r->round_waiting++;
        /* Still connecting: the connect has its deadline, then the answer its full time. */
        int64_t wait_ms = REQUEST_TIMEOUT_MS +
                          (proto_conn_state(pc) == PROTO_CONN_CONNECTING ? CONNECT_TIMEOUT_MS : 0);
        int rc = proto_conn_request(pc, req, body, len, proto_mono_ms() + wait_ms, register_cb, p);
        proto_cmd_free(req);
        if (rc != 0) {
            snprintf(why, sizeof why, "request not sent: %s", lsmq_strerror(rc));
            peer_outcome(p, false, why);
        }
    }
    free(body);
    if (--r->round_waiting == 0)
        round_end(r);
}

static void round_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    broker_registrar *r = w->data;

    if (!r->in_round && !r->stopping)
        round_start(r);
}

/* ------------------------------------------------------------------ */
/* Start, now, stop                                                     */

/* "host:port;host:port" into peers; returns how many. */
static size_t parse_addrs(broker_registrar *r, const char *list)
{
    char *copy = proto_xstrdup(list), *save = NULL;
    char host[256], port[16];
    for (char *tok = strtok_r(copy, ";,", &save); tok; tok = strtok_r(NULL, ";,", &save)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n'))
            *--end = 0;
        if (transport_split_addr(tok, host, sizeof host, port, sizeof port) != 0) {
            if (*tok)
                proto_log(PROTO_LOG_WARN, "broker: ignoring name server address '%s' (want host:port)", tok);
            continue;
        }
        r->peers = proto_xrealloc(r->peers, (r->n_peers + 1) * sizeof *r->peers);
        ns_peer *p = &r->peers[r->n_peers++];
        memset(p, 0, sizeof *p);
        p->r = r;
        snprintf(p->addr, sizeof p->addr, "%s", tok);
    }
    free(copy);
    return r->n_peers;
}

broker_registrar *broker_registrar_start(broker_ctx *ctx, broker_registration *owner)
{
    broker_registrar *r = proto_xcalloc(1, sizeof *r);
    r->owner = owner;
    r->ctx = ctx;
    r->cfg = ctx->cfg;
    snprintf(r->addr, sizeof r->addr, "%s", ctx->addr);
    if (parse_addrs(r, r->cfg.namesrv_addr) == 0) {
        proto_log(PROTO_LOG_INFO, "broker: no namesrvAddr, not registering with any name server");
        free(r->peers);
        free(r);
        return NULL;
    }
    r->loop = server_loop(ctx->srv);
    r->flusher = server_flusher(ctx->srv); /* one per loop */
    ev_init(&r->round_timer, round_timer_cb);
    r->round_timer.data = r;
    schedule(r, 0); /* the first round as soon as the loop runs */
    return r;
}

uint64_t broker_register_now(broker_registrar *r)
{
    if (!r || r->stopping)
        return 0;
    r->requested_gen++;
    if (r->in_round)
        r->again = true;
    else
        schedule(r, 0); /* this loop iteration's other requests join the same round */
    return r->requested_gen;
}

/*
 * UNREGISTER_BROKER to one name server, oneway, in blocking mode: on the
 * connection there is, else (or when that fails) on a new one. Closing the
 * connection right after removes us from a name server as well, even from
 * one living in our own (now stopped) loop.
 */
static void unregister_one(broker_registrar *r, ns_peer *p)
{
    int64_t deadline = proto_mono_ms() + STOP_WAIT_MS;
    char why[300];

    for (int attempt = 0; attempt < 2; attempt++) {
        transport_sync *s = NULL;
        if (p->pc && proto_conn_state(p->pc) == PROTO_CONN_OPEN) {
            s = transport_sync_adopt(p->pc, transport_ev_detach(&p->io));
            p->pc = NULL;
        } else {
            peer_forget(p);
            if (transport_sync_connect(p->addr, deadline, &s, why, sizeof why) != 0)
                return;
        }
        proto_cmd *req = broker_request(r, RC_UNREGISTER_BROKER);
        int rc = proto_conn_request(transport_sync_conn(s), req, NULL, 0, 0, NULL, NULL);
        proto_cmd_free(req);
        if (rc == 0)
            rc = transport_sync_flush(s, deadline);
        transport_sync_close(s);
        if (rc == 0)
            return;
    }
}

void broker_registrar_stop(broker_registrar *r)
{
    if (!r)
        return;
    r->stopping = true;
    ev_timer_stop(r->loop, &r->round_timer);
    for (size_t i = 0; i < r->n_peers; i++) {
        unregister_one(r, &r->peers[i]);
        peer_forget(&r->peers[i]);
    }
    free(r->peers);
    free(r);
}
