/*
 * liblsmq internals shared between the files of client/. Nothing here is
 * part of the public API (lsmq.h): every function here is named
 * lsmq__<file's object>_<verb> (lsmq__mqc_call, lsmq__route_parse), so the
 * static library exports nothing outside the lsmq_ prefix.
 *
 * Layers, bottom up (connections themselves are protocol/conn.h's core
 * driven by transport/'s libev adapter; the admin calls use its blocking
 * adapter):
 *   util.c           strings, error slots, logging
 *   instance.c       mqclient: the I/O thread, cross-thread job queue,
 *                    timers, connection table, RPCs from any thread
 *   addr_down.c      broker addresses that refused connects lately
 *   route.c          TopicRouteData JSON -> route, which address of a
 *                    broker group to use (pure)
 *   route_table.c    route cache, name server look-ups, periodic refresh
 *   message.c        received records -> lsmq_message (pure)
 *   outmsg.c         properties, send headers, batch bodies (pure)
 *   subscription.c   tag expressions and matching (pure)
 *   heartbeat.c      HeartbeatData JSON, heartbeats and unregistering
 *   rebalance.c      AllocateMessageQueueAveragely (pure) and the push
 *                    consumer's rebalance
 *   offset_store.c   per-queue offsets in memory and in a local file
 *   pull.c           PULL_MESSAGE request and response
 *   pull_source.c    which broker of its group a queue is pulled from
 *   workers.c        the listener worker pool
 *   consumer_reset.c the push consumer's answers to broker-initiated
 *                    requests: offset resets by time, consumer status
 *   producer.c, consumer_push.c, consumer_pull.c: the public objects.
 *
 * Thread tags used in comments: "I/O thread" = the mqclient's loop thread
 * only; "any thread".
 *
 * Errors: a function that fails for a reason worth words writes them into
 * the lsmq_errslot it is given: the object's own slot (what the user reads with
 * lsmq_producer_last_error & co.) when the call is the user's, a local one
 * that is logged when the work is the library's own (background refreshes,
 * heartbeats). NULL keeps nothing.
 */
#ifndef LSMQ_CLIENT_CLIENT_INTERNAL_H
#define LSMQ_CLIENT_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <uthash.h>

#include "alloc.h"
#include "buf.h"
#include "clock.h"
#include "compress.h"
#include "conn.h"
#include "log.h"
#include "lsmq.h"
#include "message_id.h"
#include "record.h"
#include "remoting.h"

/* ------------------------------------------------------------------ */
/* util.c                                                              */
/* ------------------------------------------------------------------ */

/* An error slot: the code and text of a failure (see Errors above). */
typedef struct lsmq_errslot {
    pthread_mutex_t *lock;  /* an object's slot is shared by threads; a local one is not */
    int code;               /* the broker's response code when it refused, else -1 */
    char text[512];
} lsmq_errslot;

/* A slot with nothing in it; lock NULL for a local slot. */
void lsmq__err_init(lsmq_errslot *e, pthread_mutex_t *lock);
/* Record a failure in e (NULL: nowhere). */
void lsmq__error(lsmq_errslot *e, int broker_code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Map a broker's refusal to an LSMQ_E* code and record it in e. */
int lsmq__broker_error(lsmq_errslot *e, const proto_cmd *resp, const char *what);
/* Copy e's text into buf (cap bytes; "no error" when empty); its code. */
int lsmq__err_copy(lsmq_errslot *e, char *buf, size_t cap);


/* First non-loopback IPv4 address of this host (127.0.0.1 if none). */
void lsmq__local_ip4(uint8_t ip[4]);
/* Topic / group names: [%|a-zA-Z0-9_-]{1,max}. */
int lsmq__valid_name(const char *name, size_t max);
/* Default instance name "<pid>#<n>", n unique in the process. */
void lsmq__default_instance(char *out, size_t n);
/* Copy with truncation, always NUL-terminated. */
void lsmq__strlcpy(char *dst, const char *src, size_t n);

#define RETRY_PREFIX "%RETRY%"
#define DLQ_PREFIX "%DLQ%"
#define DEFAULT_TOPIC "TBW102"
#define DEFAULT_TOPIC_QUEUES 4

/* ------------------------------------------------------------------ */
/* instance.c — mqclient                                               */
/* ------------------------------------------------------------------ */

typedef struct mqclient mqclient;
typedef struct workers workers;
typedef struct route route;
typedef void mq_job_fn(mqclient *mqc, void *arg);

/* Hooks an owner (producer or consumer) gives its mqclient. I/O thread. */
typedef struct mq_owner_hooks {
    void *arg;
    /* HeartbeatData JSON (malloc'ed) or NULL to skip heartbeats. Any thread. */
    char *(*heartbeat_json)(void *arg);
    /* The broker said the group's members changed. */
    void (*ids_changed)(void *arg, const char *group);
    /* A route appeared or changed after a background look-up. */
    void (*route_changed)(void *arg, const char *topic);
    /*
     * A request the broker started, other than NOTIFY_CONSUMER_IDS_CHANGED.
     * Returns 0 when the owner does not serve req->code (the broker gets
     * REQUEST_CODE_NOT_SUPPORTED), else 1 with *resp the response to send
     * (NULL for none) and *body its malloc'ed body (may be NULL).
     */
    int (*peer_request)(void *arg, const proto_cmd *req, proto_cmd **resp, char **body,
                        size_t *body_len);
} mq_owner_hooks;

/* A client for the name server list namesrv; 0 or LSMQ_EINVAL (recorded in e). */
int lsmq__mqc_create(const char *namesrv, const char *instance, mqclient **out, lsmq_errslot *e);
void lsmq__mqc_set_hooks(mqclient *mqc, const mq_owner_hooks *hooks);
/* Instance name (NULL: a default); the client id is "ip@instance". Before start. */
int lsmq__mqc_set_instance(mqclient *mqc, const char *instance);
/* Start the I/O thread; failures go to the client's own slot. */
int lsmq__mqc_start(mqclient *mqc);
/* The client's error slot: the last error of the object that owns it. */
lsmq_errslot *lsmq__mqc_err(mqclient *mqc);
/* Close connections (failing their requests with LSMQ_ECLOSED), join the thread. */
void lsmq__mqc_stop(mqclient *mqc);
void lsmq__mqc_destroy(mqclient *mqc);

const char *lsmq__mqc_client_id(const mqclient *mqc);
const uint8_t *lsmq__mqc_ip4(const mqclient *mqc);
int lsmq__mqc_in_loop(const mqclient *mqc);
int lsmq__mqc_running(const mqclient *mqc);

/* Run fn on the I/O thread. 0, or LSMQ_ECLOSED (fn will not run). Any thread. */
int lsmq__mqc_post(mqclient *mqc, mq_job_fn *fn, void *arg);
/* Same, and wait until it has run. Not on the I/O thread. */
int lsmq__mqc_post_wait(mqclient *mqc, mq_job_fn *fn, void *arg);

/* Timers (I/O thread). A periodic timer lives until lsmq__mqc_stop. */
typedef struct mq_timer mq_timer;
mq_timer *lsmq__mqc_every(mqclient *mqc, int first_ms, int interval_ms, mq_job_fn *fn, void *arg);
void lsmq__mqc_timer_again(mq_timer *t, int in_ms);
/*
 * One-shot: fn(mqc, arg) after delay_ms. At stop, pending ones run at once
 * (so they can release what they hold): fn must check its owner's state.
 */
void lsmq__mqc_after(mqclient *mqc, int delay_ms, mq_job_fn *fn, void *arg);

/*
 * Send a request to addr ("host:port"). cmd is encoded at once (its opaque
 * is overwritten) and stays the caller's. cb NULL makes it oneway. Returns
 * 0 and cb will run exactly once on the I/O thread (proto_reply_cb: a
 * failure comes with its `why`), or an error (recorded in e) and cb will
 * not run. Any thread.
 */
int lsmq__mqc_call(mqclient *mqc, const char *addr, proto_cmd *cmd, const void *body,
              size_t body_len, int timeout_ms, proto_reply_cb *cb, void *arg, lsmq_errslot *e);
/* Same, waiting for the reply (*out, free with proto_reply_free). Not on the I/O thread. */
int lsmq__mqc_call_sync(mqclient *mqc, const char *addr, proto_cmd *cmd, const void *body,
                   size_t body_len, int timeout_ms, proto_reply **out, lsmq_errslot *e);

/* The instance's state, shared by instance.c, route_table.c, heartbeat.c. */
typedef struct route_entry {
    char *topic;
    route *r;              /* NULL until the name server answered */
    int for_publish;       /* fall back to TBW102 when the topic is unknown */
    int fetching;          /* a look-up is in flight (I/O thread) */
    int64_t fetched_ms;    /* last answer, monotonic */
    UT_hash_handle hh;
} route_entry;

typedef struct conn_entry conn_entry;
typedef struct mq_job mq_job;
typedef struct addr_down addr_down;

typedef struct transport_flusher transport_flusher;

struct mqclient {
    struct ev_loop *loop;
    pthread_t thread;
    int started;
    void *wake;             /* ev_async */
    transport_flusher *flusher;
    pthread_mutex_t lock;   /* guards the job queue and closed */
    mq_job *jobs_head, *jobs_tail;
    int closed;             /* no more jobs accepted */
    conn_entry *conns;      /* I/O thread */
    mq_timer *timers;       /* I/O thread */
    char **namesrv;
    size_t n_namesrv;
    atomic_uint ns_next;    /* name server to try first */
    char instance[128];
    char client_id[192];
    uint8_t ip4[4];
    atomic_uint next_opaque;
    mq_owner_hooks hooks;
    pthread_mutex_t routes_lock; /* guards routes (read by user threads) */
    route_entry *routes;
    pthread_mutex_t down_lock;   /* guards down */
    addr_down *down;             /* addr_down.c */
    pthread_mutex_t err_lock;
    lsmq_errslot err;           /* the owning object's last error */
};

/* addr_down.c: a connect to addr failed (I/O thread); why may be NULL. */
void lsmq__mqc_mark_down(mqclient *mqc, const char *addr, const char *why);
/* Did a connect to addr fail within the last few seconds? Any thread. */
int lsmq__mqc_addr_down(mqclient *mqc, const char *addr);
/* Internal to instance.c: free the table. */
void lsmq__mqc_down_free(mqclient *mqc);

/* ------------------------------------------------------------------ */
/* route.c — TopicRouteData                                            */
/* ------------------------------------------------------------------ */

typedef struct route_broker {
    char *name;
    char *cluster;
    size_t n_addrs;
    int64_t *ids;     /* brokerId per address; 0 = master */
    char **addrs;
    int has_qd;       /* the topic has queue data on this broker */
    int read_queues, write_queues, perm;
} route_broker;

/* One queue of the topic: broker index into route.brokers and queue id. */
typedef struct route_mq {
    uint32_t broker;
    int32_t queue_id;
} route_mq;

struct route {
    atomic_int refs;       /* see lsmq__route_ref/lsmq__route_unref */
    route_broker *brokers; /* sorted by name */
    size_t n_brokers;
    route_mq *pub;         /* writable queues with a master, by (broker name, id) */
    size_t n_pub;
    route_mq *sub;         /* readable queues, by (broker name, id) */
    size_t n_sub;
    int from_default;      /* built from TBW102 for auto-create */
    char *json;            /* the body it was parsed from, to notice changes */
};

/*
 * Parse a TopicRouteData body, standard or legacy fastjson (unquoted
 * numeric brokerAddrs keys). Returns 0 and *out (refs 1), or LSMQ_ECORRUPT
 * with errbuf set.
 */
int lsmq__route_parse(const char *json, size_t len, route **out, char *errbuf, size_t errlen);
/* The publish queues Java derives from TBW102's route: min(4, readQueueNums) per broker. */
void lsmq__route_as_default(route *r);
route *lsmq__route_ref(route *r);
void lsmq__route_unref(route *r);
/* Master address of a broker (id 0), or NULL. */
const char *lsmq__route_master(const route *r, uint32_t broker);
/* Is addr unreachable now? (the mqclient's answer: lsmq__mqc_addr_down) */
typedef int route_down_fn(void *arg, const char *addr);
/*
 * The address of a broker group to read from, or to commit offsets to,
 * when brokerId `want` is asked for (Java's findBrokerAddressInSubscribe,
 * onlyThisBroker false): want's address; for a replica (want > 0) the next
 * replica's (want + 1); else the group's lowest brokerId, the master when
 * the route has it. Addresses down(arg, addr) says are unreachable are
 * passed over while the group has another; down NULL: none is. Returns an
 * address owned by r (NULL when the group has none) and its brokerId in
 * *id (may be NULL). Pure.
 */
const char *lsmq__route_pick(const route *r, uint32_t broker, int64_t want, route_down_fn *down,
                             void *arg, int64_t *id);
/* Does a broker group with queues of the topic have no master in r? */
int lsmq__route_masterless(const route *r);
/* Index of a broker by name, or -1. */
int lsmq__route_broker_index(const route *r, const char *name);

/* ------------------------------------------------------------------ */
/* route_table.c                                                       */
/* ------------------------------------------------------------------ */

/* Cached route of a topic (a new reference) or NULL. Any thread. */
route *lsmq__mqc_route_cached(mqclient *mqc, const char *topic);
/*
 * Cached route, or ask the name servers now (blocking; not on the I/O
 * thread). for_publish: fall back to TBW102 when the topic is unknown.
 * Returns 0 and a reference, or an error recorded in e.
 */
int lsmq__mqc_route_get(mqclient *mqc, const char *topic, int for_publish, route **out,
                   lsmq_errslot *e);
/* Ask the name servers in the background and cache the answer. I/O thread. */
void lsmq__mqc_route_refresh(mqclient *mqc, const char *topic, int for_publish);
/*
 * A send could not reach the master of one of topic's queues, or it
 * refused the send as a retry code says (a master moved by failover): look
 * the route up now rather than at the next periodic refresh, at most once
 * a second. Any thread; never waits.
 */
void lsmq__mqc_route_suspect(mqclient *mqc, const char *topic);
/*
 * Called every second (I/O thread): refresh routes older than 30 s, and
 * every second those not known yet or borrowed from TBW102.
 */
void lsmq__mqc_route_refresh_all(mqclient *mqc);
/*
 * The address of a broker group to use for brokerId `want` (0: the master,
 * which offset commits and queries want), from the topic's cached route
 * and the addresses that refused connects lately (lsmq__route_pick).
 * malloc'ed, or NULL when the route does not know the broker; *id (may be
 * NULL) the brokerId chosen. Any thread.
 */
char *lsmq__mqc_broker_addr(mqclient *mqc, const char *topic, const char *broker, int64_t want,
                            int64_t *id);
/*
 * Where a queue's consumer offsets are committed and asked for: the
 * master when the route has it and it takes connections, else a replica
 * (which holds them for the master). malloc'ed or NULL. Any thread.
 */
char *lsmq__mqc_offset_addr(mqclient *mqc, const char *topic, const char *broker);
/* The master's address only (sends, send-backs); malloc'ed or NULL. Any thread. */
char *lsmq__mqc_master_addr(mqclient *mqc, const char *topic, const char *broker);
/*
 * Where to ask for a group's consumer ids among r's brokers: a reachable
 * master, else a reachable replica, else any. Owned by r. Any thread.
 */
const char *lsmq__mqc_list_addr(mqclient *mqc, const route *r);
/* Every distinct broker address of every cached route; free with lsmq__mqc_addrs_free. */
size_t lsmq__mqc_broker_addrs(mqclient *mqc, char ***addrs);
void lsmq__mqc_addrs_free(char **addrs, size_t n);
/* Internal to instance.c/route_table.c: free the table. */
void lsmq__mqc_routes_free(mqclient *mqc);

/* ------------------------------------------------------------------ */
/* message.c — received messages                                       */
/* ------------------------------------------------------------------ */

struct lsmq_message {
    struct lsmq_message *next;   /* in a process queue or result list */
    char *topic;                 /* shown to users: RETRY_TOPIC for retries */
    char *queue_topic;           /* the topic of the queue it came from */
    char *broker_name;
    int32_t queue_id;
    int64_t queue_offset;
    int64_t commit_log_offset;
    int32_t sys_flag;
    int32_t flag;
    int32_t reconsume_times;
    int64_t born_timestamp;
    int64_t store_timestamp;
    proto_host born_host;
    proto_host store_host;
    uint8_t *body;
    size_t body_len;
    char *props_raw;             /* the properties string as stored */
    size_t props_len;
    size_t n_props;
    char **names;
    char **values;
    const char *tags, *keys, *uniq_key; /* into values, or NULL */
    char offset_id[PROTO_MSGID_V6_LEN + 1];
};

/*
 * Decode the concatenated records of a pull body. Messages are appended to
 * the list *head .. *tail (each self-contained, malloc'ed); broker_name names
 * the queue's broker. Returns the number decoded, or LSMQ_ECORRUPT when a
 * record does not decode (the ones before it are kept).
 */
long lsmq__msg_decode_all(const uint8_t *body, size_t len, const char *broker_name,
                     lsmq_message **head, lsmq_message **tail);
/* Decode one record into a new message; 0 or LSMQ_ECORRUPT. */
int lsmq__msg_decode(const proto_record *rec, const char *broker_name, lsmq_message **out);
void lsmq__msg_free(lsmq_message *m);
void lsmq__msg_free_list(lsmq_message *head);

/* ------------------------------------------------------------------ */
/* outmsg.c — outgoing requests                                        */
/* ------------------------------------------------------------------ */

/* Header fields a re-published retry carries (REMOTING.md §6.7). */
typedef struct outmsg_extra {
    int reconsume_times;     /* header j */
    int max_reconsume_times; /* header l */
} outmsg_extra;

/* A send request ready for the wire, queue id still to choose. */
typedef struct send_req {
    proto_cmd *cmd;           /* SEND_MESSAGE_V2 or SEND_BATCH_MESSAGE header */
    uint8_t *body;            /* what goes on the wire (maybe compressed, or a batch) */
    size_t body_len;
    char topic[LSMQ_TOPIC_MAX + 129];
    size_t n_msgs;
    char (*uniq)[33];         /* UNIQ_KEY of each message */
} send_req;

/* Properties string of m plus UNIQ_KEY = uniq (unless m has one) and WAIT=true; malloc'ed. */
int lsmq__outmsg_props(const lsmq_out_message *m, const char *uniq, char **out, size_t *out_len,
                  lsmq_errslot *e);
/* Check a message: topic, body size, delay level. 0 or LSMQ_E* recorded in e. */
int lsmq__outmsg_check(const lsmq_out_message *m, lsmq_errslot *e);
/* Build a single-message request. extra may be NULL. */
int lsmq__outmsg_build(const lsmq_out_message *m, const char *group, size_t compress_threshold,
                  const uint8_t ip4[4], const outmsg_extra *extra, send_req *out, lsmq_errslot *e);
/* Build a batch (SEND_BATCH_MESSAGE) request. */
int lsmq__outmsg_build_batch(const lsmq_out_message *msgs, size_t n, const char *group,
                        const uint8_t ip4[4], send_req *out, lsmq_errslot *e);
void lsmq__outmsg_set_queue(send_req *r, int32_t queue_id);
void lsmq__send_req_free(send_req *r);

/* ------------------------------------------------------------------ */
/* producer.c — the send path, also used by consumers to re-publish    */
/* ------------------------------------------------------------------ */

typedef struct sender {
    mqclient *mqc;
    char group[256];
    int timeout_ms;
    int retries;
    size_t compress_threshold;
    atomic_uint rr;          /* round-robin queue counter */
} sender;

void lsmq__sender_init(sender *s, mqclient *mqc, const char *group);
/*
 * Send req synchronously with the retry rules of lsmq_producer_send.
 * selector: NULL for round-robin, else the queue comes from it and retries
 * stay on that queue. res: req->n_msgs results, may be NULL. Not on the
 * I/O thread.
 */
int lsmq__sender_send(sender *s, send_req *req, const lsmq_out_message *m,
                 lsmq_queue_selector *selector, void *sel_arg, lsmq_send_result *res,
                 lsmq_errslot *e);

/* ------------------------------------------------------------------ */
/* subscription.c                                                      */
/* ------------------------------------------------------------------ */

typedef struct subscription {
    char *topic;
    char *expr;       /* "*" or the tag expression as given */
    int all;          /* "*" */
    size_t n_tags;
    char **tags;
    int64_t *codes;   /* Java String.hashCode of each tag */
    int64_t version;  /* subVersion: ms when built */
} subscription;

int lsmq__sub_parse(const char *topic, const char *expr, subscription **out, lsmq_errslot *e);
void lsmq__sub_free(subscription *s);
/* Does a message with these tags (NULL = none) pass? */
int lsmq__sub_match(const subscription *s, const char *tags);

/* ------------------------------------------------------------------ */
/* heartbeat.c                                                         */
/* ------------------------------------------------------------------ */

typedef struct hb_consumer {
    const char *group;
    int broadcasting;
    int from_first;
    int from_timestamp;           /* CONSUME_FROM_TIMESTAMP (wins over from_first) */
    int passive;                  /* push (CONSUME_PASSIVELY) or pull */
    subscription *const *subs;
    size_t n_subs;
} hb_consumer;

/* HeartbeatData JSON; producer_group or consumer may be NULL. malloc'ed. */
char *lsmq__hb_json(const char *client_id, const char *producer_group, const hb_consumer *consumer);
/* Heartbeat every cached broker (I/O thread), called every 30 s. */
void lsmq__mqc_heartbeat_all(mqclient *mqc);
/* Same, from a user thread, waiting for the answers (at most timeout_ms). */
int lsmq__mqc_heartbeat_sync(mqclient *mqc, int timeout_ms, lsmq_errslot *e);
/* UNREGISTER_CLIENT to every cached broker, waiting at most timeout_ms. */
void lsmq__mqc_unregister(mqclient *mqc, const char *producer_group, const char *consumer_group,
                     int timeout_ms);

/* ------------------------------------------------------------------ */
/* rebalance.c                                                         */
/* ------------------------------------------------------------------ */

/*
 * AllocateMessageQueueAveragely (REMOTING.md §6.3): which of n_queues
 * sorted queues the consumer at index `index` of n_consumers sorted ids
 * gets: [*start, *start + *count). index < 0 (not in the list) gets none.
 */
void lsmq__rb_allocate(size_t n_queues, size_t n_consumers, long index, size_t *start,
                  size_t *count);
/* Index of id in the list once sorted as Java sorts it (strcmp), or -1. */
long lsmq__rb_index_of(char **ids, size_t n, const char *id);
/* Parse {"consumerIdList":[...]} into a sorted malloc'ed array. */
int lsmq__rb_parse_ids(const uint8_t *body, size_t len, char ***ids, size_t *n, lsmq_errslot *e);
void lsmq__rb_free_ids(char **ids, size_t n);

/* ------------------------------------------------------------------ */
/* offset_store.c                                                      */
/* ------------------------------------------------------------------ */

typedef struct ostore_entry {
    char *key;         /* "topic\001broker\001queueId" */
    char *topic;
    char *broker;
    int32_t queue_id;
    int64_t offset;
    int dirty;         /* changed since last persisted */
    UT_hash_handle hh;
} ostore_entry;

typedef struct offset_store {
    ostore_entry *map;
} offset_store;

void lsmq__ostore_init(offset_store *s);
void lsmq__ostore_clear(offset_store *s);
void lsmq__mq_key(char *out, size_t n, const char *topic, const char *broker, int32_t queue_id);
ostore_entry *lsmq__ostore_find(offset_store *s, const char *topic, const char *broker,
                           int32_t queue_id);
void lsmq__ostore_update(offset_store *s, const char *topic, const char *broker, int32_t queue_id,
                    int64_t offset);
void lsmq__ostore_remove(offset_store *s, const char *topic, const char *broker, int32_t queue_id);
/* Local file (broadcasting): write atomically (tmp + rename), read back. */
int lsmq__ostore_save_file(const offset_store *s, const char *path, lsmq_errslot *e);
int lsmq__ostore_load_file(offset_store *s, const char *path, lsmq_errslot *e);
/* The UPDATE_CONSUMER_OFFSET header for one entry. */
proto_cmd *lsmq__ostore_commit_cmd(const char *group, const ostore_entry *e);

/* ------------------------------------------------------------------ */
/* pull.c                                                              */
/* ------------------------------------------------------------------ */

typedef struct pull_args {
    const char *group;
    const char *topic;
    int32_t queue_id;
    int64_t offset;
    int max_msgs;
    int64_t commit_offset;   /* > 0: ask the broker to store it */
    int suspend_ms;          /* > 0: long poll */
    const subscription *sub; /* sent with the request; NULL = "*" */
    int lite;
} pull_args;

typedef struct pull_result {
    int code;                /* response code */
    int64_t next_begin;
    int64_t min_offset;
    int64_t max_offset;
    int64_t suggest;         /* suggestWhichBrokerId: where to pull next (0 = master) */
    lsmq_message *head, *tail;
    size_t n;
} pull_result;

proto_cmd *lsmq__pull_request(const pull_args *a);
/* Parse a pull reply (consumes it). Messages not matching sub are dropped. */
int lsmq__pull_parse(proto_reply *reply, const char *broker_name, const subscription *sub,
                pull_result *out, lsmq_errslot *e);
void lsmq__pull_result_free(pull_result *r);

/*
 * pull_source.c: which address of its broker group a consumer pulls a
 * queue from. I/O thread only.
 */
typedef struct pull_source {
    int64_t want;            /* brokerId the last answer suggested; 0 (master) at first */
    int64_t id;              /* brokerId of the last pull sent */
    char *addr;              /* its address (malloc'ed), NULL before the first */
    int64_t offset;          /* the queue offset it asked for */
} pull_source;

void lsmq__pull_source_init(pull_source *s);
void lsmq__pull_source_free(pull_source *s);
/*
 * The address for the next pull of a queue (topic, broker, queue_id) from `offset`
 * (owned by s, valid until the next call), or NULL when the route does not
 * know the broker. *replica (may be NULL): the address is not the master's,
 * so the pull must not carry a commit offset (Java clears the flag for
 * slaves).
 */
const char *lsmq__pull_source_next(mqclient *mqc, pull_source *s, const char *topic,
                                   const char *broker, int32_t queue_id, int64_t offset,
                                   int *replica);
/*
 * The pull sent to s->addr came back: rc is the transport's result, res the
 * parsed answer (NULL when there is none or the broker refused the pull).
 * Follows the answer's suggestion. Returns the milliseconds to wait before
 * the next pull: 0, error_delay_ms after a failure, or a short pause when
 * the suggested broker cannot be reached and the stand-in had nothing.
 */
int lsmq__pull_source_done(mqclient *mqc, pull_source *s, const char *topic, const char *broker,
                           int rc, const pull_result *res, int error_delay_ms);

/* Offset queries against a broker (blocking or async helpers). */
proto_cmd *lsmq__offset_query_cmd(const char *group, const char *topic, int32_t queue_id);
proto_cmd *lsmq__offset_max_cmd(const char *topic, int32_t queue_id);
/* SEARCH_OFFSET_BY_TIMESTAMP: the first offset stored at or after ms (LOWER). */
proto_cmd *lsmq__offset_search_cmd(const char *topic, const char *broker, int32_t queue_id,
                              int64_t ms);

/* ------------------------------------------------------------------ */
/* Push consumer: consumer_push.c, rebalance.c, process_queue.c        */
/* ------------------------------------------------------------------ */

/*
 * A process queue: one assigned message queue of a push consumer, with
 * the messages pulled and not yet consumed. I/O thread only. Referenced by
 * the assignment table, a pull in flight (or waiting on a timer) and a
 * consume task; freed when the last reference goes, or at destroy.
 */
typedef struct pq {
    char *key;                  /* lsmq__mq_key */
    char *topic;
    char *broker;
    int32_t queue_id;
    struct lsmq_push_consumer *c;
    const subscription *sub;
    int refs;
    int dropped;                /* no longer assigned: stop pulling and committing */
    int ready;                  /* start offset known */
    int64_t next_offset;        /* next pull */
    int pulling;                /* a pull is in flight or scheduled */
    pull_source src;            /* which broker of the group it is pulled from */
    lsmq_message *head, *tail;  /* pulled, waiting for a worker */
    size_t n_msgs;
    int consuming;              /* a task is on the workers */
    int64_t inflight_first;     /* queue offset of the task's first message */
    int64_t hold_until_ms;      /* after a failed retry: no task before this */
    UT_hash_handle hh;          /* assignment table, by key */
    struct pq *all_prev, *all_next;
} pq;

struct lsmq_push_consumer {
    mqclient *mqc;
    sender inner;               /* re-publishes retries when send-back fails */
    char *group;
    char *retry_topic;
    int model, from, n_threads, retry_delay_level, max_reconsume;
    int rebalance_ms, commit_ms;
    int64_t consume_ts_ms;      /* LSMQ_FROM_TIMESTAMP: where new queues start */
    int consume_ts_set;         /* else 30 minutes before start */
    char *offset_dir;
    char *offset_path;
    subscription **subs;        /* fixed at start; the retry topic's included */
    size_t n_subs;
    lsmq_listener_fn *listener;
    void *listener_arg;
    workers *pool;
    int started;
    /* I/O thread */
    pq *pqs;                    /* assignment table */
    pq *all;                    /* every live process queue */
    offset_store offsets;
    int stopping;
    int resetting;              /* offset resets waiting for tasks: no rebalance */
    mq_timer *rebalance_timer;
    /* guarded by lock: tasks on the workers, for destroy to wait on */
    pthread_mutex_t lock;
    pthread_cond_t cv;
    int tasks;
};

/* process_queue.c (I/O thread) */
pq *lsmq__push_pq_new(struct lsmq_push_consumer *c, const subscription *sub, const char *broker,
                 int32_t queue_id);
void lsmq__push_pq_unref(pq *q);
/* The offset to commit: the first message not yet consumed. */
int64_t lsmq__push_pq_commit_offset(const pq *q);
/* Start pulling from q->next_offset. */
void lsmq__push_pq_start(pq *q);
/* Leave the assignment: commit its offset (clustering), stop it. */
void lsmq__push_pq_drop(pq *q);
/* Free every process queue (after the I/O thread stopped). */
void lsmq__push_pq_free_all(struct lsmq_push_consumer *c);

/* rebalance.c (I/O thread) */
void lsmq__push_rebalance(mqclient *mqc, void *arg);
void lsmq__push_rebalance_soon(struct lsmq_push_consumer *c, int delay_ms);

/* consumer_reset.c: broker-initiated requests of a push consumer (mq_owner_hooks.peer_request) */
#define CLIENT_RC_GET_CONSUMER_STATUS_FROM_CLIENT 221
int lsmq__push_peer_request(void *arg, const proto_cmd *req, proto_cmd **resp, char **body,
                       size_t *body_len);
/* Parse a ResetOffsetBody (fastjson, or the ResetOffsetBodyForC array) into the
 * offsets of topic's queues; pure. 0 and a malloc'ed array, or LSMQ_ECORRUPT. */
typedef struct reset_entry {
    char broker[LSMQ_BROKER_NAME_MAX];
    int32_t queue_id;
    int64_t offset;
} reset_entry;
int lsmq__reset_parse_body(const uint8_t *body, size_t len, const char *topic, reset_entry **out,
                      size_t *n, lsmq_errslot *e);

/* ------------------------------------------------------------------ */
/* workers.c                                                           */
/* ------------------------------------------------------------------ */

typedef void work_fn(void *arg);
int lsmq__workers_create(int n, workers **out, lsmq_errslot *e);
/* Queue fn(arg); runs on some worker. Any thread. */
void lsmq__workers_submit(workers *w, work_fn *fn, void *arg);
/* Run what is queued, then join the threads and free. */
void lsmq__workers_destroy(workers *w);

#endif
