/*
 * SEND_MESSAGE(10), SEND_MESSAGE_V2(310) and SEND_BATCH_MESSAGE(320)
 * (REMOTING.md §3.1, §4.7).
 *
 * A send is checked on the loop thread in the order of the 5.x broker
 * (header, topic name, forbidden topics, sizes, then the topic itself,
 * auto-created through its defaultTopic), its properties are completed
 * with what the broker adds (MSG_REGION, TRACE_ON, CLUSTER, a UNIQ_KEY when
 * the client sent none), and the messages go to the engine's writer. The
 * writer's completion comes back to the loop through server_post, which
 * answers the producer if its connection is still open and wakes the pulls
 * parked on that queue. On a SYNC_MASTER the answer also waits until
 * inSyncReplicas replicas have persisted the batch holding the messages
 * (broker_ha_await): FLUSH_SLAVE_TIMEOUT when none confirmed within
 * syncFlushTimeout, SLAVE_NOT_AVAILABLE when too few are in sync to wait
 * for; either way the message stays stored and the answer carries its ids,
 * as upstream's does. A replica refuses sends as upstream's slaves do
 * (SERVICE_NOT_AVAILABLE), with a remark that says it is a replica.
 *
 * Delays (broker_delay.c says which properties and how): a delayed
 * message gets the properties upstream's delivered one carries (DELAY or
 * TIMER_OUT_MS, REAL_TOPIC, REAL_QID) and goes to engine_append_timed; the
 * answer is SEND_OK with the offset id of the pending record, queue offset
 * 0 (the real one is given when it is due). A plain send pays one byte test
 * per property for this. As upstream: a batch whose header asks for a delay
 * is refused (the entries' own DELAY is not read: they go at once), and a
 * send to a %RETRY% topic is delayed like any other: a client that
 * re-publishes a failed message puts DELAY=3+reconsumeTimes on it. A retry
 * send whose reconsumeTimes is over maxReconsumeTimes goes to
 * %DLQ%<group> at once with DELAY=-1, as upstream's handleRetryAndDLQ does.
 * Transaction half messages are refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "broker_hdr.h"
#include "broker_internal.h"
#include "message_id.h"
#include "props.h"

#define MSG_REGION_VALUE "DefaultRegion"
#define TRACE_ON_VALUE "true"
/* Room for MSG_REGION, TRACE_ON, CLUSTER and UNIQ_KEY pairs, and a DLQ's DELAY. */
#define ADDED_PROPS_ROOM (64 + 128 + 128 + 64 + 16)
/* Most messages the store takes in one append (engine writer's group limit). */
#define BATCH_MAX_MSGS 8192
/* maxReconsumeTimes of a retry send that does not say: the group's retryMaxTimes. */
#define GROUP_MAX_RECONSUME (-1)
/* Request version from which maxReconsumeTimes in the header is honoured (V3_4_9). */
#define VERSION_HONOURS_MAX_RECONSUME 121

/* Topics a producer may not send to (REMOTING.md §3.1). */
static const char *const forbidden_topics[] = {
    "SCHEDULE_TOPIC_XXXX", "RMQ_SYS_TRANS_HALF_TOPIC", "RMQ_SYS_TRANS_OP_HALF_TOPIC",
    "TRANS_CHECK_MAX_TIME_TOPIC", "SELF_TEST_TOPIC", "OFFSET_MOVED_EVENT", NULL,
};

/* Properties the broker sets itself; a client's values are replaced. */
static const char *const broker_owned_props[] = {"MSG_REGION", "TRACE_ON", "CLUSTER", NULL};

/* The parsed send header (V1 and V2 alike). Strings are views into the
 * request, except the topic, which a DLQ diversion may rewrite. */
typedef struct send_hdr {
    const char *group;
    char topic[PROTO_TOPIC_MAX + 2]; /* may be rewritten to a DLQ topic */
    const char *default_topic;
    int32_t default_queue_nums;
    int32_t queue_id;
    int32_t sys_flag;
    int64_t born_ts;
    int32_t flag;
    const char *props;
    size_t props_len;
    int32_t reconsume_times;
    int32_t max_reconsume_times;
    bool batch;
    bool retry;
    bool dlq;                        /* diverted to %DLQ%<group>: DELAY=-1, at once */
    broker_delay delay;              /* of a single message (a delayed batch is refused) */
} send_hdr;

/* The send module: what its handlers and completions use. */
struct broker_send {
    broker_ctx *ctx;
    broker_meta *meta;                  /* auto-created topics */
    broker_pull *pull;                  /* woken after a commit */
    broker_registration *registration;  /* answers after a new topic's registration */
    broker_ha *ha;                      /* SYNC_MASTER: answers after the replicas' */
    broker_locks *locks;                /* an orderly group's retries go to its DLQ */
    uint32_t next_queue_pick;           /* round robin for queueId < 0 */
};

/* One send waiting for the writer. Freed on the loop thread after the reply. */
typedef struct send_job {
    broker_send *bs;
    uint64_t conn_id;
    int32_t opaque;
    bool oneway;
    uint32_t queue_id;
    bool pending;               /* appended for later: nothing to wake */
    int status;
    uint64_t queue_offset;
    uint64_t last_seq;          /* of the committed batch holding the messages */
    broker_ack_wait ack;        /* SYNC_MASTER: waiting for the replicas */
    int32_t code;               /* the answer's code once stored (replicas may change it) */
    char *uniq_key;             /* transactionId of a single message, or NULL */
    uint64_t register_gen;      /* answer after this name-server registration */
    char topic[PROTO_TOPIC_MAX + 1];
    uint32_t n;
    uint64_t positions[];       /* log position of each message */
} send_job;

/* Messages of one request, with the properties the broker built for them. */
typedef struct send_msgs {
    engine_msg *msgs;
    char **props;               /* one malloc'ed buffer per message */
    uint32_t n;
    char *first_uniq;           /* UNIQ_KEY of message 0 (malloc'ed) */
} send_msgs;

/* ------------------------------------------------------------------ */
/* Replies                                                             */
/* ------------------------------------------------------------------ */

/* Ext fields every send response carries; the Java client reads them unconditionally. */
static void add_region_fields(proto_cmd *resp)
{
    proto_cmd_set(resp, "MSG_REGION", MSG_REGION_VALUE);
    proto_cmd_set(resp, "TRACE_ON", TRACE_ON_VALUE);
}

static void send_fail(conn *c, const proto_cmd *req, int32_t code, const char *remark)
{
    if (proto_cmd_is_oneway(req))
        return;
    proto_cmd *resp = proto_cmd_response(code, req->opaque, remark);
    add_region_fields(resp);
    server_conn_reply(c, req->opaque, resp, NULL, 0);
}

/* Remark for an engine error; the code comes from broker_store_error_code. */
static void store_error_remark(int err, const char *topic, char *out, size_t len)
{
    switch (err) {
    case LSMQ_EBUSY:
        snprintf(out, len, "%s", BROKER_BUSY_REMARK);
        break;
    case LSMQ_ENOSPC:
        snprintf(out, len, "service not available now: the disk is full, messages are refused "
                           "until space is freed");
        break;
    case LSMQ_ECLOSED:
        snprintf(out, len, "service not available now: the broker is shutting down");
        break;
    case LSMQ_ETOOBIG:
        snprintf(out, len, "the message is too big: body plus properties over maxMessageSize");
        break;
    case LSMQ_ENOTFOUND:
        snprintf(out, len, "topic[%s] not exist, apply first please!", topic);
        break;
    default:
        snprintf(out, len, "the store could not write the message: %s", lsmq_strerror(err));
        break;
    }
}

/* Comma-joined offset message ids of the stored messages. */
static char *join_msg_ids(const proto_host *store_host, const uint64_t *positions, uint32_t n)
{
    char *ids = proto_xmalloc((size_t)n * (PROTO_MSGID_V6_LEN + 1) + 1);
    size_t at = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (i > 0)
            ids[at++] = ',';
        at += proto_msgid_encode(store_host, positions[i], ids + at);
    }
    ids[at] = '\0';
    return ids;
}

static void reply_stored(conn *c, send_job *j)
{
    proto_cmd *resp = proto_cmd_response(j->code, j->opaque, NULL);
    char *ids = join_msg_ids(&j->bs->ctx->store_host, j->positions, j->n);
    proto_cmd_set(resp, "msgId", ids);
    free(ids);
    proto_cmd_set_i64(resp, "queueId", j->queue_id);
    proto_cmd_set_i64(resp, "queueOffset", (int64_t)j->queue_offset);
    if (j->uniq_key)
        proto_cmd_set(resp, "transactionId", j->uniq_key);
    add_region_fields(resp);
    server_conn_reply(c, j->opaque, resp, NULL, 0);
}

static void reply_store_error(conn *c, send_job *j)
{
    char remark[BROKER_REMARK_MAX];
    store_error_remark(j->status, j->topic, remark, sizeof remark);
    proto_cmd *resp = proto_cmd_response(broker_store_error_code(j->status), j->opaque, remark);
    add_region_fields(resp);
    server_conn_reply(c, j->opaque, resp, NULL, 0);
}

/* Loop thread: answer the producer and wake the queue's pulls. */
static void send_finish_cb(void *arg)
{
    send_job *j = arg;
    conn *c = j->oneway ? NULL : server_conn_find(j->bs->ctx->srv, j->conn_id);
    if (c && j->status == 0)
        reply_stored(c, j);
    else if (c)
        reply_store_error(c, j);
    if (j->status == 0 && !j->pending)
        broker_pull_notify(j->bs->pull, j->topic, j->queue_id);
    free(j->uniq_key);
    free(j);
}

/*
 * Loop thread: stored, and on a SYNC_MASTER confirmed (or not) by the
 * replicas. If a topic was created just before (this send's, typically),
 * wait until the name servers know it, so the producer's next route lookup
 * finds it.
 */
static void send_replicated(send_job *j)
{
    if (j->status == 0 && !j->oneway)
        broker_registration_after(j->bs->registration, j->register_gen, send_finish_cb, j);
    else
        send_finish_cb(j);
}

static void send_acked_cb(broker_ack_wait *w)
{
    send_job *j = BROKER_JOB_OF(w, send_job, ack);
    j->code = w->code;
    send_replicated(j);
}

/* Loop thread: the writer has finished this send. */
static void send_done_cb(void *arg)
{
    send_job *j = arg;
    if (j->status == 0 && !j->oneway && broker_ha_sync(j->bs->ha))
        broker_ha_await(j->bs->ha, &j->ack, j->last_seq, send_acked_cb);
    else
        send_replicated(j);
}

/* Writer thread: keep the outcome and hand the job back to the loop. */
static void append_cb(void *ctx, const engine_append_result *r)
{
    send_job *j = ctx;
    j->status = r->status;
    if (r->status == 0) {
        j->queue_offset = r->queue_offset;
        j->last_seq = r->last_seq;
        for (uint32_t i = 0; i < j->n && i < r->n; i++)
            j->positions[i] = r->log_positions ? r->log_positions[i] : r->log_position + i;
    }
    server_post(j->bs->ctx->srv, send_done_cb, j);
}

/* ------------------------------------------------------------------ */
/* Header and checks                                                   */
/* ------------------------------------------------------------------ */

/* Read the V1 or V2 header; 0, or a response code with the remark set. */
static int parse_header(const proto_cmd *req, send_hdr *h, char *remark)
{
    memset(h, 0, sizeof *h);
    const char *topic;
    if (broker__hdr_str(req, "producerGroup", "a", &h->group, remark) ||
        broker__hdr_str(req, "topic", "b", &topic, remark) ||
        broker__hdr_str(req, "defaultTopic", "c", &h->default_topic, remark) ||
        broker__hdr_i32(req, "defaultTopicQueueNums", "d", &h->default_queue_nums, remark) ||
        broker__hdr_i32(req, "queueId", "e", &h->queue_id, remark) ||
        broker__hdr_i32(req, "sysFlag", "f", &h->sys_flag, remark) ||
        broker__hdr_i64(req, "bornTimestamp", "g", &h->born_ts, remark) ||
        broker__hdr_i32(req, "flag", "h", &h->flag, remark) ||
        broker__hdr_opt_i32(req, "reconsumeTimes", "j", 0, &h->reconsume_times, remark) ||
        broker__hdr_opt_i32(req, "maxReconsumeTimes", "l", GROUP_MAX_RECONSUME,
                            &h->max_reconsume_times, remark))
        return RS_SYSTEM_ERROR;
    if (strlen(topic) > PROTO_TOPIC_MAX) {
        snprintf(remark, BROKER_REMARK_MAX,
                 "The specified topic is longer than topic max length %d.", PROTO_TOPIC_MAX);
        return RS_MESSAGE_ILLEGAL;
    }
    strcpy(h->topic, topic);
    h->props = proto_cmd_get2(req, "properties", "i");
    if (!h->props)
        h->props = "";
    h->props_len = strlen(h->props);
    h->batch = req->code == RC_SEND_BATCH_MESSAGE || broker__hdr_bool(req, "batch", "m", false);
    h->retry = broker__is_retry_topic(h->topic);
    if (req->version < VERSION_HONOURS_MAX_RECONSUME ||
        !proto_cmd_get2(req, "maxReconsumeTimes", "l"))
        h->max_reconsume_times = GROUP_MAX_RECONSUME;
    return 0;
}

/* Topic name, forbidden topics and length (5.x msgCheck and store checks). */
static int check_topic_name(const send_hdr *h, char *remark)
{
    if (!broker__topic_chars_valid(h->topic)) {
        snprintf(remark, BROKER_REMARK_MAX,
                 "The specified topic[%.200s] contains illegal characters, allowing only "
                 "^[%%|a-zA-Z0-9_-]+$",
                 h->topic);
        return RS_INVALID_PARAMETER;
    }
    for (int i = 0; forbidden_topics[i]; i++) {
        if (strcmp(h->topic, forbidden_topics[i]) == 0) {
            snprintf(remark, BROKER_REMARK_MAX, "Sending message to topic[%s] is forbidden.",
                     h->topic);
            return RS_NO_PERMISSION;
        }
    }
    if (!h->retry && strlen(h->topic) > PROTO_TOPIC_V1_MAX) {
        snprintf(remark, BROKER_REMARK_MAX,
                 "The specified topic is longer than topic max length %d.", PROTO_TOPIC_V1_MAX);
        return RS_MESSAGE_ILLEGAL;
    }
    return 0;
}

static bool is_name_in(const char *name, size_t len, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (strlen(list[i]) == len && memcmp(list[i], name, len) == 0)
            return true;
    return false;
}

/*
 * What a single message asks for in time (broker_delay.c); a batch header
 * that asks for a delay is refused as upstream's store refuses it.
 */
static int check_delay(const broker_config *cfg, send_hdr *h, char *remark)
{
    int code = broker_delay_of_props(cfg, h->props, h->props_len, &h->delay, remark);
    if (code == 0 && h->batch && h->delay.delayed) {
        snprintf(remark, BROKER_REMARK_MAX,
                 "the message is illegal: a batch cannot be delayed (DELAY or TIMER_* in the "
                 "batch's properties); send delayed messages one by one");
        code = RS_MESSAGE_ILLEGAL;
    }
    return code;
}

/* Transaction half messages are refused as upstream does with rejectTransactionMessage. */
static int check_transaction(const broker_config *cfg, const send_hdr *h, char *remark)
{
    if (h->retry)
        return 0; /* upstream exempts re-published retries as well */
    const char *v;
    size_t vlen;
    bool tran = proto_props_get(h->props, h->props_len, "TRAN_MSG", &v, &vlen) && vlen == 4 &&
                strncasecmp(v, "true", 4) == 0;
    if (tran || (h->sys_flag & PROTO_SYSFLAG_TXN_MASK) == PROTO_SYSFLAG_TXN_PREPARED) {
        snprintf(remark, BROKER_REMARK_MAX,
                 "the broker[%s] sending transaction message is forbidden",
                 cfg->broker_name);
        return RS_NO_PERMISSION;
    }
    return 0;
}

static int check_body(const broker_config *cfg, size_t body_len, size_t props_len, char *remark)
{
    uint32_t max = cfg->max_message_size;
    if (body_len == 0) {
        snprintf(remark, BROKER_REMARK_MAX, "the message body is empty");
        return RS_MESSAGE_ILLEGAL;
    }
    if (body_len > max) {
        snprintf(remark, BROKER_REMARK_MAX,
                 "the message body size %zu is over the limit maxMessageSize %u", body_len, max);
        return RS_MESSAGE_ILLEGAL;
    }
    if (props_len > PROTO_PROPS_MAX) {
        snprintf(remark, BROKER_REMARK_MAX,
                 "the message properties length %zu is over the limit %d", props_len,
                 PROTO_PROPS_MAX);
        return RS_MESSAGE_ILLEGAL;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Topics                                                              */
/* ------------------------------------------------------------------ */

/*
 * A retry send past maxReconsumeTimes (the request's, else the group's
 * retryMaxTimes) goes to the group's dead-letter topic, and so does every
 * retry of a group that holds queue locks: an orderly consumer hands a
 * message back only once its local retries are used up (upstream's
 * handleRetryAndDLQ).
 */
static bool needs_dlq(broker_send *bs, const send_hdr *h)
{
    if (!h->retry)
        return false;
    const char *group = h->topic + sizeof BROKER_RETRY_PREFIX - 1;
    int32_t max = h->max_reconsume_times != GROUP_MAX_RECONSUME
                      ? h->max_reconsume_times
                      : broker_group_retry_max_times(bs->ctx->engine, group);
    return h->reconsume_times > max || broker_locks_group_locked(bs->locks, group);
}

/* %DLQ%<group> of a %RETRY%<group> topic; out has PROTO_TOPIC_MAX + 2 bytes. */
static void dlq_name(const send_hdr *h, char *out)
{
    snprintf(out, PROTO_TOPIC_MAX + 2, "%s%s", BROKER_DLQ_PREFIX,
             h->topic + sizeof BROKER_RETRY_PREFIX - 1);
}

/*
 * Send to the dead-letter topic, queue 0, at once with DELAY=-1 (5.x
 * handleRetryAndDLQ).
 */
static void divert_to_dlq(send_hdr *h, const char *dlq)
{
    strcpy(h->topic, dlq);
    h->queue_id = 0;
    h->dlq = true;
    memset(&h->delay, 0, sizeof h->delay);
}

/*
 * Find the topic, behind a write of it on its way; when absent and the
 * send's defaultTopic is an inheritable topic (or TBW102 with
 * autoCreateTopicEnable), create it with min(defaultTopicQueueNums,
 * default's write queues) queues. Retry topics fall back to one queue.
 * 0 and *tc, BROKER_WAITING, or an error (LSMQ_EBUSY: too many waiting).
 */
static int resolve_topic(broker_send *bs, const send_hdr *h, engine_topic_config *tc,
                         broker_wait *w)
{
    const broker_config *cfg = &bs->ctx->cfg;
    engine *e = bs->ctx->engine;
    int rc = broker_meta_topic_wait(bs->meta, h->topic, w);
    if (rc != 0)
        return rc;
    if (engine_topic_get(e, h->topic, strlen(h->topic), tc) == 0)
        return 0;
    const char *def_topic = h->default_topic;
    engine_topic_config def;
    rc = LSMQ_ENOTFOUND;
    if (def_topic && *def_topic && engine_topic_get(e, def_topic, strlen(def_topic), &def) == 0) {
        uint32_t perm = def.perm;
        if (strcmp(def_topic, BROKER_DEFAULT_TOPIC) == 0 && !cfg->auto_create_topic_enable)
            perm = ENGINE_PERM_READ | ENGINE_PERM_WRITE; /* not inheritable */
        uint32_t want = h->default_queue_nums > 0 ? (uint32_t)h->default_queue_nums : 1;
        uint32_t queues = want < def.write_queue_nums ? want : def.write_queue_nums;
        if (queues == 0)
            queues = 1;
        if (perm & ENGINE_PERM_INHERIT)
            rc = broker_meta_topic_ensure(bs->meta, h->topic, queues,
                                          perm & ~(uint32_t)ENGINE_PERM_INHERIT, tc, w);
    }
    if (rc < 0 && rc != LSMQ_EBUSY && h->retry)
        rc = broker_meta_topic_ensure(bs->meta, h->topic, 1, ENGINE_PERM_READ | ENGINE_PERM_WRITE,
                                      tc, w);
    return rc;
}

/* An ordered topic takes sends only while the broker is writable. */
static int check_writable(const broker_config *cfg, const engine_topic_config *tc, char *remark)
{
    if (tc->order && !(cfg->broker_permission & ENGINE_PERM_WRITE)) {
        snprintf(remark, BROKER_REMARK_MAX, "the broker[%s] sending message is forbidden",
                 cfg->broker_name);
        return RS_NO_PERMISSION;
    }
    return 0;
}

/* The answer when a topic could not be had: busy, or `missing` (it is not there). */
static int topic_refusal(int rc, const char *topic, int32_t missing, char *remark)
{
    if (rc == LSMQ_EBUSY) {
        snprintf(remark, BROKER_REMARK_MAX, "%s", BROKER_BUSY_REMARK);
        return RS_SYSTEM_BUSY;
    }
    snprintf(remark, BROKER_REMARK_MAX, "topic[%s] not exist, apply first please!", topic);
    return missing;
}

/* The queue to write: the requested one if it exists, else a round-robin pick. */
static int pick_queue(broker_send *bs, const send_hdr *h, const engine_topic_config *tc,
                      const conn *c, uint32_t *queue, char *remark)
{
    uint32_t limit = tc->read_queue_nums > tc->write_queue_nums ? tc->read_queue_nums
                                                                : tc->write_queue_nums;
    if (h->queue_id >= 0 && (uint32_t)h->queue_id < limit) {
        *queue = (uint32_t)h->queue_id;
        return 0;
    }
    if (h->queue_id < 0 && tc->write_queue_nums > 0) {
        *queue = bs->next_queue_pick++ % tc->write_queue_nums;
        return 0;
    }
    snprintf(remark, BROKER_REMARK_MAX,
             "request queueId[%d] is illegal, topic:[%s] topicConfig.writeQueueNums:[%u] "
             "topicConfig.readQueueNums:[%u] producer:[%s]",
             h->queue_id, h->topic, tc->write_queue_nums, tc->read_queue_nums, server_conn_peer(c));
    return RS_INVALID_PARAMETER;
}

/* ------------------------------------------------------------------ */
/* Properties                                                          */
/* ------------------------------------------------------------------ */

/* Append one raw pair; values may hold 0x01 (only the first splits), so no checks. */
static void put_pair(char *out, size_t *len, const char *name, size_t nlen, const char *value,
                     size_t vlen)
{
    memcpy(out + *len, name, nlen);
    *len += nlen;
    out[(*len)++] = PROTO_PROP_NAME_VALUE_SEP;
    memcpy(out + *len, value, vlen);
    *len += vlen;
    out[(*len)++] = PROTO_PROP_SEP;
}

/* Does this pair stay in the stored properties? */
static bool keep_prop(const char *name, size_t nlen, const send_hdr *h)
{
    if (is_name_in(name, nlen, broker_owned_props))
        return false;
    if (h->delay.delayed && broker_delay_replaces(&h->delay, name, nlen))
        return false;
    return !(h->dlq && nlen == 5 && memcmp(name, PROTO_PROP_DELAY, 5) == 0);
}

/* Does the properties string hold a pair named name[0..nlen)? */
static bool has_prop(const char *props, size_t len, const char *name, size_t nlen)
{
    proto_props_iter it;
    const char *n, *v;
    size_t nl, vl;
    proto_props_iter_init(&it, props, len);
    while (proto_props_next(&it, &n, &nl, &v, &vl))
        if (nl == nlen && memcmp(n, name, nlen) == 0)
            return true;
    return false;
}

/* The message's own pairs, less those the broker sets. */
static void copy_own_props(char *out, size_t *at, const char *own, size_t own_len,
                           const send_hdr *h)
{
    proto_props_iter it;
    const char *n, *v;
    size_t nl, vl;
    proto_props_iter_init(&it, own, own_len);
    while (proto_props_next(&it, &n, &nl, &v, &vl))
        if (keep_prop(n, nl, h))
            put_pair(out, at, n, nl, v, vl);
}

/*
 * The batch header's pairs the entry lacks: upstream appends the batch's
 * properties (WAIT, ...) to every entry. A batch-level UNIQ_KEY is skipped
 * so that each message keeps its own.
 */
static void copy_batch_props(char *out, size_t *at, const char *batch, size_t batch_len,
                             const char *own, size_t own_len, const send_hdr *h)
{
    proto_props_iter it;
    const char *n, *v;
    size_t nl, vl;
    size_t uniq_len = strlen(PROTO_PROP_UNIQ_KEY);
    proto_props_iter_init(&it, batch, batch_len);
    while (proto_props_next(&it, &n, &nl, &v, &vl)) {
        bool uniq = nl == uniq_len && memcmp(n, PROTO_PROP_UNIQ_KEY, nl) == 0;
        if (!uniq && keep_prop(n, nl, h) && !has_prop(own, own_len, n, nl))
            put_pair(out, at, n, nl, v, vl);
    }
}

/*
 * The stored properties of one message: its own pairs, the batch header's
 * pairs it lacks, a UNIQ_KEY when it has none (as 5.x does), then
 * MSG_REGION, TRACE_ON and CLUSTER, and what a delay or a DLQ diversion
 * adds. Returns a malloc'ed buffer, its length in *len, and the message's
 * UNIQ_KEY (malloc'ed) in *uniq if wanted.
 */
static char *build_props(const broker_ctx *ctx, const char *own, size_t own_len,
                         const char *batch, size_t batch_len, const send_hdr *h, uint32_t queue,
                         size_t *len, char **uniq)
{
    size_t cap = own_len + batch_len + ADDED_PROPS_ROOM;
    if (h->delay.delayed)
        cap += BROKER_DELAY_PROPS_ROOM + strlen(h->topic);
    char *out = proto_xmalloc(cap);
    size_t at = 0;
    copy_own_props(out, &at, own, own_len, h);
    copy_batch_props(out, &at, batch, batch_len, own, own_len, h);
    const char *uv;
    size_t ul;
    char fresh[33];
    if (!proto_props_get(own, own_len, PROTO_PROP_UNIQ_KEY, &uv, &ul)) {
        proto_uniq_id_new(ctx->store_host.ip, fresh);
        uv = fresh;
        ul = strlen(fresh);
        put_pair(out, &at, PROTO_PROP_UNIQ_KEY, strlen(PROTO_PROP_UNIQ_KEY), uv, ul);
    }
    if (uniq)
        *uniq = proto_xstrndup(uv, ul);
    const char *cluster = ctx->cfg.broker_cluster_name;
    put_pair(out, &at, "MSG_REGION", 10, MSG_REGION_VALUE, strlen(MSG_REGION_VALUE));
    put_pair(out, &at, "TRACE_ON", 8, TRACE_ON_VALUE, strlen(TRACE_ON_VALUE));
    put_pair(out, &at, "CLUSTER", 7, cluster, strlen(cluster));
    if (h->delay.delayed)
        broker_delay_add_props(&h->delay, h->topic, queue, h->delay.now_ms, out, cap, &at);
    if (h->dlq)
        put_pair(out, &at, PROTO_PROP_DELAY, 5, "-1", 2);
    *len = at;
    return out;
}

static void send_msgs_free(send_msgs *sm)
{
    for (uint32_t i = 0; i < sm->n; i++)
        free(sm->props[i]);
    free(sm->props);
    free(sm->msgs);
    free(sm->first_uniq);
    memset(sm, 0, sizeof *sm);
}

static void send_msgs_alloc(send_msgs *sm, uint32_t n)
{
    sm->msgs = proto_xcalloc(n, sizeof *sm->msgs);
    sm->props = proto_xcalloc(n, sizeof *sm->props);
    sm->n = n;
}

/* Fill message i: common fields from the header, props built from own + batch. */
static int fill_msg(const broker_ctx *ctx, const send_hdr *h, const proto_host *born, send_msgs *sm,
                    uint32_t i, int32_t flag, const uint8_t *body, uint32_t body_len,
                    const char *own, size_t own_len, const char *batch, size_t batch_len,
                    uint32_t queue, char *remark)
{
    size_t plen = 0;
    sm->props[i] = build_props(ctx, own, own_len, batch, batch_len, h, queue, &plen,
                               i == 0 ? &sm->first_uniq : NULL);
    if (plen > PROTO_PROPS_MAX) {
        snprintf(remark, BROKER_REMARK_MAX,
                 "the message properties length %zu is over the limit %d", plen,
                 PROTO_PROPS_MAX);
        return RS_MESSAGE_ILLEGAL;
    }
    engine_msg *m = &sm->msgs[i];
    m->flag = flag;
    m->sys_flag = h->sys_flag & ~(PROTO_SYSFLAG_BORNHOST_V6 | PROTO_SYSFLAG_STOREHOST_V6);
    m->born_timestamp = h->born_ts;
    m->born_host = *born;
    m->reconsume_times = h->reconsume_times;
    m->body = body;
    m->body_len = body_len;
    m->props = sm->props[i];
    m->props_len = (uint32_t)plen;
    return 0;
}

/* One message from the request body. */
static int prepare_single(const broker_ctx *ctx, const send_hdr *h, const proto_cmd *req,
                          const proto_host *born, uint32_t queue, send_msgs *sm, char *remark)
{
    send_msgs_alloc(sm, 1);
    return fill_msg(ctx, h, born, sm, 0, h->flag, req->body, (uint32_t)req->body_len, h->props,
                    h->props_len, "", 0, queue, remark);
}

/* Count the entries of a batch body, checking each (§4.7). */
static int count_batch(const broker_ctx *ctx, const send_hdr *h, const proto_cmd *req, uint32_t *n,
                       char *remark)
{
    size_t pos = 0;
    proto_batch_entry e;
    int rc;
    *n = 0;
    while ((rc = proto_batch_next(req->body, req->body_len, &pos, &e)) == 1) {
        int code = check_body(&ctx->cfg, e.body_len, e.props_len, remark);
        if (code != 0)
            return code;
        if (++*n > BATCH_MAX_MSGS) {
            snprintf(remark, BROKER_REMARK_MAX, "the batch holds more than %d messages",
                     BATCH_MAX_MSGS);
            return RS_MESSAGE_ILLEGAL;
        }
    }
    if (rc < 0 || *n == 0) {
        snprintf(remark, BROKER_REMARK_MAX, rc < 0 ? "the batch body is malformed"
                                                   : "the batch holds no message");
        return RS_MESSAGE_ILLEGAL;
    }
    return 0;
}

/* Every entry of a batch, each its own message. */
static int prepare_batch(const broker_ctx *ctx, const send_hdr *h, const proto_cmd *req,
                         const proto_host *born, uint32_t queue, send_msgs *sm, char *remark)
{
    uint32_t n;
    int code = count_batch(ctx, h, req, &n, remark);
    if (code != 0)
        return code;
    send_msgs_alloc(sm, n);
    size_t pos = 0;
    proto_batch_entry e;
    for (uint32_t i = 0; i < n && proto_batch_next(req->body, req->body_len, &pos, &e) == 1;
         i++) {
        code = fill_msg(ctx, h, born, sm, i, e.flag, e.body, e.body_len, e.props, e.props_len,
                        h->props, h->props_len, queue, remark);
        if (code != 0)
            return code;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Storing                                                             */
/* ------------------------------------------------------------------ */

/* Everything that can be refused before the topic is looked up. */
static int precheck(const broker_config *cfg, send_hdr *h, const proto_cmd *req,
                    char *remark)
{
    int code = check_topic_name(h, remark);
    if (code == 0 && h->batch && h->retry) {
        snprintf(remark, BROKER_REMARK_MAX, "batch messages cannot be sent to a retry topic [%s]",
                 h->topic);
        code = RS_MESSAGE_ILLEGAL;
    }
    if (code == 0 && h->batch && req->body_len == 0) {
        snprintf(remark, BROKER_REMARK_MAX, "the batch holds no message");
        code = RS_MESSAGE_ILLEGAL;
    }
    if (code == 0)
        code = check_body(cfg, req->body_len, h->batch ? 0 : h->props_len, remark);
    if (code == 0)
        code = check_delay(cfg, h, remark);
    if (code == 0)
        code = check_transaction(cfg, h, remark);
    return code;
}

static send_job *job_new(broker_send *bs, conn *c, const proto_cmd *req, const send_hdr *h,
                         uint32_t queue, send_msgs *sm)
{
    send_job *j = proto_xcalloc(1, sizeof *j + sm->n * sizeof(uint64_t));
    j->bs = bs;
    j->conn_id = server_conn_id(c);
    j->opaque = req->opaque;
    j->oneway = proto_cmd_is_oneway(req);
    j->queue_id = queue;
    j->pending = h->delay.delayed;
    j->code = RS_SUCCESS;
    j->n = sm->n;
    j->register_gen = broker_registration_topics_gen(bs->registration);
    strcpy(j->topic, h->topic);
    if (!h->batch) {
        j->uniq_key = sm->first_uniq; /* the job owns it now */
        sm->first_uniq = NULL;
    }
    return j;
}

/*
 * The topic is there: pick the queue, build the messages and hand them to
 * the writer (append_cb -> send_done_cb -> send_finish_cb answer). Refusals
 * are answered here.
 */
static void send_append(broker_send *bs, conn *c, const proto_cmd *req, const send_hdr *h,
                        const engine_topic_config *tc)
{
    char remark[BROKER_REMARK_MAX];
    send_msgs sm = {0};
    uint32_t queue = 0;
    int code = check_writable(&bs->ctx->cfg, tc, remark);
    if (code == 0)
        code = pick_queue(bs, h, tc, c, &queue, remark);
    if (code == 0) {
        proto_host born = {.port = 0};
        server_conn_peer_host(c, born.ip, &born.port);
        code = h->batch ? prepare_batch(bs->ctx, h, req, &born, queue, &sm, remark)
                        : prepare_single(bs->ctx, h, req, &born, queue, &sm, remark);
    }
    if (code != 0) {
        send_msgs_free(&sm);
        send_fail(c, req, code, remark);
        return;
    }
    send_job *j = job_new(bs, c, req, h, queue, &sm);
    engine *e = bs->ctx->engine;
    int rc = h->delay.delayed
                 ? engine_append_timed(e, h->topic, strlen(h->topic), queue, sm.msgs, sm.n,
                                       h->delay.deliver_ms, append_cb, j)
                 : engine_append(e, h->topic, strlen(h->topic), queue, sm.msgs, sm.n, append_cb, j);
    send_msgs_free(&sm); /* the engine copied the messages */
    if (rc != 0) {
        store_error_remark(rc, h->topic, remark, sizeof remark);
        free(j->uniq_key);
        free(j);
        send_fail(c, req, broker_store_error_code(rc), remark);
    }
}

/* ------------------------------------------------------------------ */
/* Sends that wait for their topic                                     */
/* ------------------------------------------------------------------ */

/* Where a waiting send stopped. */
typedef enum send_step {
    SEND_AT_DLQ,     /* its dead-letter topic is being created */
    SEND_AT_TOPIC,   /* its topic is being created or written */
} send_step;

/*
 * A send whose topic has a config write on its way or must be created
 * first (broker_internal.h, continuations). It owns a deep copy of the
 * request; h's views point into that copy.
 */
typedef struct send_wait {
    broker_wait wait;
    broker_send *bs;
    proto_cmd *req;
    send_hdr h;
    send_step at;
} send_wait;

static void send_wait_free(send_wait *sw)
{
    broker__cmd_copy_free(sw->req);
    free(sw);
}

/* Go on from the step the send stopped at, to the append, a refusal, or another wait. */
static void send_wait_run(send_wait *sw, conn *c)
{
    broker_send *bs = sw->bs;
    char remark[BROKER_REMARK_MAX];
    engine_topic_config tc;
    int rc, code;
    if (sw->at == SEND_AT_DLQ) {
        char dlq[PROTO_TOPIC_MAX + 2];
        dlq_name(&sw->h, dlq);
        rc = broker_meta_topic_ensure(bs->meta, dlq, 1, ENGINE_PERM_READ | ENGINE_PERM_WRITE,
                                      &tc, &sw->wait);
        if (rc == BROKER_WAITING)
            return;
        if (rc != 0) {
            code = topic_refusal(rc, dlq, RS_SYSTEM_ERROR, remark);
            send_fail(c, sw->req, code, remark);
            send_wait_free(sw);
            return;
        }
        divert_to_dlq(&sw->h, dlq);
        sw->at = SEND_AT_TOPIC;
    }
    rc = resolve_topic(bs, &sw->h, &tc, &sw->wait);
    if (rc == BROKER_WAITING)
        return;
    if (rc == 0) {
        send_append(bs, c, sw->req, &sw->h, &tc);
    } else {
        code = topic_refusal(rc, sw->h.topic, RS_TOPIC_NOT_EXIST, remark);
        send_fail(c, sw->req, code, remark);
    }
    send_wait_free(sw);
}

static void send_resume_cb(broker_wait *w, conn *c)
{
    send_wait_run(BROKER_JOB_OF(w, send_wait, wait), c);
}

static void send_drop_cb(broker_wait *w)
{
    send_wait_free(BROKER_JOB_OF(w, send_wait, wait));
}

/*
 * Keep the send until its topic can be had: copy the request, and take
 * the header's views again from the copy (the same fields, so the same
 * result), keeping the topic and queue a DLQ diversion may have set.
 */
static void send_wait_start(broker_send *bs, conn *c, const proto_cmd *req, const send_hdr *h,
                            send_step at)
{
    send_wait *sw = proto_xcalloc(1, sizeof *sw);
    broker_wait_init(&sw->wait, c, send_resume_cb, send_drop_cb);
    sw->bs = bs;
    sw->req = broker__cmd_copy(req);
    char remark[BROKER_REMARK_MAX];
    parse_header(sw->req, &sw->h, remark);
    strcpy(sw->h.topic, h->topic);
    sw->h.queue_id = h->queue_id;
    sw->h.dlq = h->dlq;
    sw->h.delay = h->delay; /* due from the send's arrival, not its resumption */
    sw->at = at;
    send_wait_run(sw, c);
}

/* ------------------------------------------------------------------ */
/* The handler                                                         */
/* ------------------------------------------------------------------ */

/*
 * The hot path stays free of copies: only a send whose topic (or
 * dead-letter topic) is not ready at once becomes a send_wait.
 */
static void on_send_message(server *s, conn *c, proto_cmd *req, void *ctx)
{
    broker_send *bs = ctx;
    char remark[BROKER_REMARK_MAX];
    send_hdr h;
    engine_topic_config tc;
    if (bs->ctx->replica) {
        snprintf(remark, sizeof remark, BROKER_REPLICA_REMARK_FMT, bs->ctx->cfg.broker_name,
                 (long long)bs->ctx->cfg.broker_id);
        send_fail(c, req, RS_SERVICE_NOT_AVAILABLE, remark);
        return;
    }
    if (bs->ctx->fenced) {
        snprintf(remark, sizeof remark, BROKER_FENCED_REMARK_FMT, bs->ctx->cfg.broker_name);
        send_fail(c, req, RS_SERVICE_NOT_AVAILABLE, remark);
        return;
    }
    int code = parse_header(req, &h, remark);
    if (code == 0)
        code = precheck(&bs->ctx->cfg, &h, req, remark);
    if (code != 0) {
        send_fail(c, req, code, remark);
        return;
    }
    if (needs_dlq(bs, &h)) {
        char dlq[PROTO_TOPIC_MAX + 2];
        dlq_name(&h, dlq);
        if (!broker_meta_topic_ready(bs->meta, dlq, &tc)) {
            send_wait_start(bs, c, req, &h, SEND_AT_DLQ);
            return;
        }
        divert_to_dlq(&h, dlq);
    }
    if (!broker_meta_topic_ready(bs->meta, h.topic, &tc)) {
        send_wait_start(bs, c, req, &h, SEND_AT_TOPIC);
        return;
    }
    send_append(bs, c, req, &h, &tc);
}

/* Needs meta, locks, pull, registration and ha. */
int broker_send_create(broker_modules *m, char *errbuf, size_t errlen)
{
    broker_send *bs = proto_xcalloc(1, sizeof *bs);
    bs->ctx = &m->ctx;
    bs->ha = m->ha;
    bs->locks = m->locks;
    bs->meta = m->meta;
    bs->pull = m->pull;
    bs->registration = m->registration;
    m->send = bs;
    return 0;
}

/* Sends in flight hold bs: by now the store has closed and their completions ran. */
void broker_send_destroy(broker_modules *m)
{
    free(m->send);
    m->send = NULL;
}

/* SEND_MESSAGE_V2 and SEND_BATCH_MESSAGE are the same request with other headers. */
void broker_send_register(broker_modules *m)
{
    server *s = m->ctx.srv;
    server_register(s, RC_SEND_MESSAGE, on_send_message, m->send);
    server_register(s, RC_SEND_MESSAGE_V2, on_send_message, m->send);
    server_register(s, RC_SEND_BATCH_MESSAGE, on_send_message, m->send);
}
