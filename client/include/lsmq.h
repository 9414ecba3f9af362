/*
 * liblsmq — the C client library of lsmq (and of any RocketMQ 4.x/5.x broker
 * that speaks the remoting protocol).
 *
 * @section conventions Conventions
 *
 * (1) Objects are opaque pointers with strict create/destroy pairs:
 *     lsmq_producer_create / lsmq_producer_destroy,
 *     lsmq_push_consumer_create / lsmq_push_consumer_destroy,
 *     lsmq_pull_consumer_create / lsmq_pull_consumer_destroy.
 *     The only structs you fill in are the ones you hand to the library
 *     (lsmq_out_message, lsmq_property, lsmq_queue) or receive results in
 *     (lsmq_send_result). Zero-initialise them before filling, so fields
 *     added later default to "unset".
 *
 * (2) Errors: every function that can fail returns int: 0 on success, a
 *     negative code on failure. Codes are LSMQ_E* from errors.h or -errno:
 *     - LSMQ_EINVAL      bad argument, wrong state (e.g. send before start),
 *                        or a call that would deadlock (see Threads).
 *     - LSMQ_ENOTFOUND   the name server knows no route for the topic.
 *     - LSMQ_ETOOBIG     a body, property set or batch over the limits.
 *     - LSMQ_EBUSY       too many asynchronous sends in flight, or the
 *                        broker answered SYSTEM_BUSY.
 *     - LSMQ_EIO         the broker (or name server) refused the request;
 *                        the object's last error gives its response code
 *                        and remark.
 *     - LSMQ_ECORRUPT    a response did not decode.
 *     - LSMQ_ECLOSED     the object is being destroyed.
 *     - -ETIMEDOUT       no answer within the timeout.
 *     - -ECONNREFUSED, -ECONNRESET, ... transport failures.
 *     Whenever a call on an object fails, the object's last error says
 *     more (lsmq_producer_last_error, lsmq_push_consumer_last_error,
 *     lsmq_pull_consumer_last_error), including the RocketMQ response code
 *     when a server refused. A failed create has no object: its return
 *     code is all there is.
 *
 * (3) Strings are NUL-terminated UTF-8; binary data travels as pointer +
 *     length. The library copies everything you pass in before the call
 *     returns (asynchronous sends included) unless a function says otherwise.
 *
 * (4) Every pointer the library returns states its owner and lifetime below.
 *
 * @section threads Threads
 *
 * Each producer and consumer owns one internal I/O thread running its own
 * event loop; all network I/O, timers, rebalancing and offset bookkeeping
 * happen there. Public functions may be called from any thread unless noted
 * ("any thread"). Synchronous calls block the calling thread until the
 * answer or the timeout. Callbacks run on library threads:
 *   - asynchronous send callbacks run on the producer's I/O thread;
 *   - push-consumer listeners run on the consumer's worker pool
 *     (lsmq_push_consumer_set_threads, default 4 threads).
 * A callback must not call a synchronous function of the object that
 * invoked it from the I/O thread (those return LSMQ_EINVAL there), and must
 * never destroy that object.
 *
 * @section caveats Caveats
 *
 * - Delivery is at least once. A consumer that crashes, or a queue that
 *   moves to another group member during a rebalance, redelivers the
 *   messages consumed since the last committed offset.
 * - Push consumers deliver the messages of one queue in queue order, one
 *   at a time; different queues are consumed in parallel. A listener that
 *   blocks stalls its queue only, but destroy waits for it.
 * - Bodies compressed with LZ4 or ZSTD (Java's rocketmq.message.compressType)
 *   are delivered as received, still compressed; lsmq_message_sys_flag()
 *   tells. zlib bodies (the default of every client) are inflated.
 * - Broker groups with replicas: sends go to masters only (a group with
 *   no master takes none; the producer tries another group's queue).
 *   Consumers pull each queue from the broker the last pull answer
 *   suggested, and commit offsets to the group's master; while the master
 *   is unreachable they pull from and commit to a replica, which holds the
 *   offsets for the master, and they go back once the name server lists
 *   the master again (within a few seconds).
 * - Only TAG subscriptions ("*", "TagA || TagB"); no SQL92.
 * - Broadcasting consumers keep offsets in a local file (see
 *   lsmq_push_consumer_set_offset_dir); two instances of one group in one
 *   process must use different directories or instance names.
 * - Host names in addresses are resolved with getaddrinfo on the I/O
 *   thread; use IP literals where a slow resolver would stall it.
 * - The library ignores SIGPIPE per write (MSG_NOSIGNAL); it installs no
 *   signal handlers.
 */
#ifndef LSMQ_CLIENT_LSMQ_H
#define LSMQ_CLIENT_LSMQ_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Longest id the library returns (offset ids of IPv6 stores are 56 chars). */
#define LSMQ_MSG_ID_MAX 64
/** Longest broker name kept in results (longer names are truncated). */
#define LSMQ_BROKER_NAME_MAX 128
/** Longest topic name (RocketMQ's limit for ordinary topics). */
#define LSMQ_TOPIC_MAX 127

/* ------------------------------------------------------------------ */
/* Errors and logging                                                  */
/* ------------------------------------------------------------------ */

/*
 * Each object keeps the last failure of the calls made on it, and of its
 * asynchronous sends (recorded before their callback runs):
 *   int lsmq_producer_last_error(lsmq_producer *p, char *buf, size_t cap);
 *   int lsmq_push_consumer_last_error(lsmq_push_consumer *c, char *buf, size_t cap);
 *   int lsmq_pull_consumer_last_error(lsmq_pull_consumer *c, char *buf, size_t cap);
 * (declared with their objects below). Each copies the description into
 * buf (cap bytes, truncated and NUL-terminated; "no error" when nothing
 * failed; buf may be NULL) and returns the RocketMQ response code when a
 * broker or name server refused the request (e.g. 17 TOPIC_NOT_EXIST,
 * 2 SYSTEM_BUSY), else -1. Any thread; with calls failing on several
 * threads at once it is the last of them. Failures of the library's own
 * background work (route refreshes, heartbeats) are logged, not kept here.
 */

/** Log levels for lsmq_set_log. */
enum lsmq_log_level { LSMQ_LOG_ERROR = 0, LSMQ_LOG_WARN, LSMQ_LOG_INFO, LSMQ_LOG_DEBUG };

/** A log sink; line has no trailing newline and is valid during the call. */
typedef void lsmq_log_fn(int level, const char *line, void *arg);

/**
 * Route the library's log lines (process-wide). By default lines at WARN
 * and above go to stderr; the environment variable LSMQ_LOG_LEVEL (0-3)
 * changes the default level. fn NULL restores stderr. The sink may be
 * called from any library thread, concurrently. Call it before creating
 * objects; it is not synchronised with running ones.
 */
void lsmq_set_log(lsmq_log_fn *fn, void *arg, int level);

/* ------------------------------------------------------------------ */
/* Outgoing messages                                                   */
/* ------------------------------------------------------------------ */

/** A user property (name and value must be non-empty, without bytes 1 and 2). */
typedef struct lsmq_property {
    const char *name;
    const char *value;
} lsmq_property;

/**
 * A message to send. Only topic and body are required. Nothing is kept
 * after the send call returns (asynchronous sends copy it first).
 */
typedef struct lsmq_out_message {
    const char *topic;                /**< [%|a-zA-Z0-9_-], at most 127 bytes */
    const char *tags;                 /**< one tag, or NULL */
    const char *keys;                 /**< space-separated keys, or NULL */
    const void *body;                 /**< 1 byte .. 4 MiB */
    size_t body_len;
    const lsmq_property *properties;  /**< n_properties user properties, or NULL */
    size_t n_properties;
    int delay_level;                  /**< 0 = none, 1..18 = broker delay level (DELAY) */
    int32_t flag;                     /**< user flag stored with the message */
    /**
     * Deliver at this instant (ms since the epoch, broker's clock; 0 = none):
     * sent as TIMER_DELIVER_MS. A time already past is delivered at once.
     */
    int64_t deliver_ms;
    /** Deliver this many ms after the broker stores it (0 = none): TIMER_DELAY_MS. */
    int64_t delay_ms;
    /*
     * At most one of delay_level, deliver_ms and delay_ms may be set (the
     * send is refused with LSMQ_EINVAL otherwise; a broker would let DELAY
     * win). The broker refuses a timer past its timerMaxDelaySec (3 days by
     * default). A delayed send's result is SEND_OK with the message's id;
     * the message is pulled from its topic when due, with its msgId kept.
     */
} lsmq_out_message;

/** Broker status codes of a stored message (lsmq_send_result.status). */
enum lsmq_send_status {
    LSMQ_SEND_OK = 0,
    LSMQ_SEND_FLUSH_DISK_TIMEOUT = 10,
    LSMQ_SEND_FLUSH_SLAVE_TIMEOUT = 12,
    LSMQ_SEND_SLAVE_NOT_AVAILABLE = 11,
};

/** The outcome of a stored message. */
typedef struct lsmq_send_result {
    int status;                                /**< enum lsmq_send_status */
    char msg_id[LSMQ_MSG_ID_MAX];              /**< the client id (UNIQ_KEY) */
    char offset_msg_id[LSMQ_MSG_ID_MAX];       /**< the store's id (host + log position) */
    char broker_name[LSMQ_BROKER_NAME_MAX];
    int32_t queue_id;
    int64_t queue_offset;
} lsmq_send_result;

/* ------------------------------------------------------------------ */
/* Producer                                                            */
/* ------------------------------------------------------------------ */

typedef struct lsmq_producer lsmq_producer;

/**
 * Create a producer (not started).
 *
 * @param[in] namesrv name servers, "host:port;host:port".
 * @param[in] group producer group name.
 * @param[out] out the producer; destroy it with lsmq_producer_destroy.
 * @return 0, or LSMQ_EINVAL for an empty or malformed namesrv or group.
 * Any thread.
 */
int lsmq_producer_create(const char *namesrv, const char *group, lsmq_producer **out);

/** Timeout of one send, retries included (default 3000 ms). Before start. */
int lsmq_producer_set_send_timeout(lsmq_producer *p, int timeout_ms);
/** Retries on another queue (another broker when there is one) after a
 *  retryable failure; default 2, so up to 3 attempts. Before start. */
int lsmq_producer_set_retries(lsmq_producer *p, int retries);
/** Bodies of at least this many bytes are zlib-compressed (default 4096;
 *  0 disables compression). Before start. */
int lsmq_producer_set_compress_threshold(lsmq_producer *p, size_t bytes);
/** Client instance name, the part after '@' in the client id (default
 *  "<pid>#<n>", unique per object). Before start. */
int lsmq_producer_set_instance_name(lsmq_producer *p, const char *name);
/** Cap on asynchronous sends in flight (default 10000); send_async waits
 *  up to the send timeout for room, then fails with LSMQ_EBUSY. Before start. */
int lsmq_producer_set_max_async_inflight(lsmq_producer *p, int n);

/**
 * Start the I/O thread. Routes are fetched lazily, on the first send to a
 * topic. @return 0, LSMQ_EINVAL if already started, or -errno if the thread
 * could not start. Any thread.
 */
int lsmq_producer_start(lsmq_producer *p);

/** The producer's last error (see "Errors and logging"). Any thread. */
int lsmq_producer_last_error(lsmq_producer *p, char *buf, size_t cap);

/**
 * Destroy the producer: wait (up to the send timeout) for asynchronous
 * sends in flight, fail those still pending with LSMQ_ECLOSED (their
 * callbacks run before this returns), unregister from the brokers, stop
 * the I/O thread and free everything. p may be NULL. Not from a callback
 * of p. Any other thread; no other call on p may be running or follow.
 */
void lsmq_producer_destroy(lsmq_producer *p);

/**
 * Send one message and wait for the broker's answer.
 *
 * The message gets a fresh UNIQ_KEY. The queue is chosen round-robin; on a
 * retryable failure (transport errors, timeouts and the response codes
 * TOPIC_NOT_EXIST, SERVICE_NOT_AVAILABLE, SYSTEM_ERROR, SYSTEM_BUSY,
 * NO_PERMISSION) it is sent again to another queue, preferably on another
 * broker, within the send timeout. A topic unknown to the name server is
 * sent through the TBW102 route so that the broker auto-creates it.
 *
 * @param[out] res filled on success (may be NULL).
 * @return 0 once stored (res->status may still report a flush or slave
 *         timeout), or an error (Conventions (2)). Any thread except p's
 *         I/O thread (a send callback): LSMQ_EINVAL there.
 */
int lsmq_producer_send(lsmq_producer *p, const lsmq_out_message *m, lsmq_send_result *res);

/**
 * Completion of an asynchronous send: rc is 0 and res filled, or rc is an
 * error and res NULL (lsmq_producer_last_error() describes it, as the
 * producer's latest failure). Runs on the
 * producer's I/O thread: keep it short, never block in it. res is valid
 * during the call only.
 */
typedef void lsmq_send_cb(int rc, const lsmq_send_result *res, void *arg);

/**
 * Send one message without waiting. The message is copied; cb is called
 * exactly once, with the same retry rules as lsmq_producer_send, when this
 * returns 0. The first send to a topic blocks for its route. When the
 * in-flight cap is reached it waits for room (up to the send timeout).
 * @return 0 (queued), or an error and cb is never called. Any thread,
 * including a send callback: there it never blocks, so it fails with
 * LSMQ_ENOTFOUND while the topic's route is not known yet (a look-up
 * starts) and with LSMQ_EBUSY at the in-flight cap.
 */
int lsmq_producer_send_async(lsmq_producer *p, const lsmq_out_message *m, lsmq_send_cb *cb,
                             void *arg);

/**
 * Send one message without any answer from the broker (oneway, no retry).
 * Returns once the request is queued for writing; a failure after that is
 * not reported. Any thread except p's I/O thread (LSMQ_EINVAL there).
 */
int lsmq_producer_send_oneway(lsmq_producer *p, const lsmq_out_message *m);

/**
 * Send n messages as one batch (SEND_BATCH_MESSAGE): one request, one
 * queue, consecutive queue offsets. All messages must have the same topic,
 * which must not be a %RETRY% topic, and no delay of any kind. Batches are never
 * compressed. Retries as lsmq_producer_send.
 *
 * @param[out] res n results (may be NULL): msg_id and offset_msg_id of each
 *             message, its queue and its queue offset.
 * @return as lsmq_producer_send; LSMQ_ETOOBIG if the batch exceeds 4 MiB.
 */
int lsmq_producer_send_batch(lsmq_producer *p, const lsmq_out_message *msgs, size_t n,
                             lsmq_send_result *res);

/**
 * Chooses a queue: called with the topic's n_queues writable queues
 * (ordered by broker name, then queue id), returns an index in
 * [0, n_queues). Called on the sending thread; must not block.
 */
typedef int lsmq_queue_selector(int n_queues, const lsmq_out_message *m, void *arg);

/**
 * A selector for ordered sends: arg is a NUL-terminated sharding key and the
 * queue is |Java String.hashCode(key)| % n_queues, as Java's
 * SelectMessageQueueByHash does, so Java and C producers agree.
 */
int lsmq_select_by_hash(int n_queues, const lsmq_out_message *m, void *arg);

/**
 * Send one message to the queue that selector picks, synchronously. On a
 * retryable failure it is retried on the same queue, so that messages of
 * one key stay in order. Otherwise as lsmq_producer_send.
 */
int lsmq_producer_send_select(lsmq_producer *p, const lsmq_out_message *m,
                              lsmq_queue_selector *selector, void *arg,
                              lsmq_send_result *res);

/* ------------------------------------------------------------------ */
/* Received messages                                                   */
/* ------------------------------------------------------------------ */

/**
 * A received message. Read-only. Owned by the library and valid during the
 * listener call (push consumer), or until lsmq_messages_free (pull
 * consumer). Every string returned by the accessors below lives as long as
 * the message. Accessors are safe from any thread while the message lives.
 */
typedef struct lsmq_message lsmq_message;

/** The topic (for a retry delivery, the original topic, as Java shows it). */
const char *lsmq_message_topic(const lsmq_message *m);
/** The TAGS property, or NULL. */
const char *lsmq_message_tags(const lsmq_message *m);
/** The KEYS property, or NULL. */
const char *lsmq_message_keys(const lsmq_message *m);
/** The body, inflated if it was zlib-compressed; *len set if len != NULL. */
const void *lsmq_message_body(const lsmq_message *m, size_t *len);
/** A property by name (user or system, e.g. "UNIQ_KEY"), or NULL. */
const char *lsmq_message_property(const lsmq_message *m, const char *name);
/** Number of properties, and the i-th (0 <= i < count); NULL past the end. */
size_t lsmq_message_property_count(const lsmq_message *m);
const char *lsmq_message_property_at(const lsmq_message *m, size_t i, const char **value);
/** The message id: UNIQ_KEY if the producer set one, else the offset id. */
const char *lsmq_message_id(const lsmq_message *m);
/** The offset message id (store host + log position). */
const char *lsmq_message_offset_id(const lsmq_message *m);
/** Broker name and queue id the message was pulled from. */
const char *lsmq_message_broker_name(const lsmq_message *m);
int32_t lsmq_message_queue_id(const lsmq_message *m);
/** Offset in that queue (of the retry queue for a retry delivery). */
int64_t lsmq_message_queue_offset(const lsmq_message *m);
/** How many times it has been redelivered (0 on first delivery). */
int32_t lsmq_message_reconsume_times(const lsmq_message *m);
/** Producer clock and broker clock, ms since the epoch. */
int64_t lsmq_message_born_timestamp(const lsmq_message *m);
int64_t lsmq_message_store_timestamp(const lsmq_message *m);
/** The log position (commit log offset) in the broker. */
int64_t lsmq_message_commit_log_offset(const lsmq_message *m);
/** MessageSysFlag bits as stored (bit 0: body was compressed). */
int32_t lsmq_message_sys_flag(const lsmq_message *m);
/** The user flag given at send time. */
int32_t lsmq_message_flag(const lsmq_message *m);

/* ------------------------------------------------------------------ */
/* Push consumer                                                       */
/* ------------------------------------------------------------------ */

typedef struct lsmq_push_consumer lsmq_push_consumer;

/** Listener results. */
enum lsmq_consume_status {
    LSMQ_CONSUME_SUCCESS = 0,  /**< consumed; the offset moves past it */
    LSMQ_RECONSUME_LATER = 1,  /**< redeliver later through the retry topic */
};

/**
 * Message listener. Returns LSMQ_CONSUME_SUCCESS or LSMQ_RECONSUME_LATER
 * (any other value counts as RECONSUME_LATER). Runs on a worker thread;
 * m is valid during the call only.
 */
typedef int lsmq_listener_fn(const lsmq_message *m, void *arg);

/** Message models. */
enum lsmq_message_model {
    LSMQ_CLUSTERING = 0,   /**< each message to one member of the group */
    LSMQ_BROADCASTING = 1, /**< each message to every member */
};

/** Where a group starts on a queue for which it has no committed offset. */
enum lsmq_consume_from {
    LSMQ_FROM_LAST = 0,      /**< the queue's end (retry queues: their start) */
    LSMQ_FROM_FIRST = 1,     /**< the queue's start */
    LSMQ_FROM_TIMESTAMP = 2, /**< push consumer only: the first message stored at or
                                  after the consume timestamp (retry queues: their
                                  end), as Java's CONSUME_FROM_TIMESTAMP */
};

/**
 * Create a push consumer (not started).
 * @param[in] namesrv "host:port;host:port". @param[in] group consumer group.
 * @param[out] out destroy with lsmq_push_consumer_destroy.
 * @return 0 or LSMQ_EINVAL. Any thread.
 */
int lsmq_push_consumer_create(const char *namesrv, const char *group,
                              lsmq_push_consumer **out);

/** The following setters must be called before start; LSMQ_EINVAL after. */
int lsmq_push_consumer_set_model(lsmq_push_consumer *c, int model);
int lsmq_push_consumer_set_consume_from(lsmq_push_consumer *c, int from);
/**
 * The consume timestamp of LSMQ_FROM_TIMESTAMP, ms since the epoch (broker
 * store time; Java's consumeTimestamp is the same instant written as local
 * yyyyMMddHHmmss). Default: 30 minutes before start, as Java. It only
 * places queues the group has no committed offset for; to move a running
 * group, reset its offsets by time (see Retroactive consumption below).
 * Unlike Java, the consumer asks for the committed offset with
 * setZeroIfNotFound=false, so that lsmq and 5.x brokers do not answer 0
 * for a queue that still holds its first message. 4.x brokers ignore the
 * flag: there such a queue starts at 0, as it does for Java clients.
 */
int lsmq_push_consumer_set_consume_timestamp(lsmq_push_consumer *c, int64_t ms);
/** Listener worker threads (1..64, default 4). */
int lsmq_push_consumer_set_threads(lsmq_push_consumer *c, int n);
/** See lsmq_producer_set_instance_name. */
int lsmq_push_consumer_set_instance_name(lsmq_push_consumer *c, const char *name);
/** Broadcasting only: directory of the offsets file "<dir>/<group>.offsets.json"
 *  (created if missing; default $HOME/.lsmq_offsets/<instance name>). */
int lsmq_push_consumer_set_offset_dir(lsmq_push_consumer *c, const char *dir);
/** Delay level asked for on RECONSUME_LATER: 0 lets the broker choose
 *  (3 + reconsume times, i.e. 10 s first), 1..18 a fixed level. Default 0. */
int lsmq_push_consumer_set_retry_delay_level(lsmq_push_consumer *c, int level);
/** Redeliveries before the broker moves a message to %DLQ% (default 16). */
int lsmq_push_consumer_set_max_reconsume_times(lsmq_push_consumer *c, int n);
/** Periodic rebalance interval (default 20000 ms); rebalances also follow
 *  the broker's NOTIFY_CONSUMER_IDS_CHANGED. */
int lsmq_push_consumer_set_rebalance_interval(lsmq_push_consumer *c, int ms);
/** Offset commit interval (default 5000 ms). */
int lsmq_push_consumer_set_commit_interval(lsmq_push_consumer *c, int ms);

/*
 * Retroactive consumption: when an admin resets the group's offsets by time
 * (mqadmin resetOffsetByTime, Java's DefaultMQAdminExt.resetOffsetByTimestamp,
 * i.e. INVOKE_BROKER_TO_RESET_OFFSET), the broker sends every online member
 * RESET_CONSUMER_CLIENT_OFFSET with the new offset of each queue. A push
 * consumer then, for the queues of that topic it holds: drops the messages
 * pulled and not yet handed to the listener, stores and commits the new
 * offset, waits for a running listener call of the queue to return (its
 * result no longer moves the offset) and pulls from the new offset.
 * Deliveries of a queue after the reset start exactly at its new offset.
 * (5.x brokers by default reset on their side instead: the next pull of
 * each queue answers PULL_OFFSET_MOVED and the consumer moves there.) A
 * member that was offline resumes from the group's committed offsets,
 * wherever the reset left them (lsmq commits them; for an offline group
 * the admin tools commit them directly). A push consumer also answers
 * GET_CONSUMER_STATUS_FROM_CLIENT with its offsets of a topic.
 */

/**
 * Subscribe to topic with a tag expression: "*" (or NULL/"") for every
 * message, or "TagA || TagB". Subscribing to a topic again replaces its
 * expression. Before start.
 * @return 0, or LSMQ_EINVAL (bad topic name, empty tag set).
 */
int lsmq_push_consumer_subscribe(lsmq_push_consumer *c, const char *topic, const char *expr);

/** Set the listener (required before start). */
int lsmq_push_consumer_set_listener(lsmq_push_consumer *c, lsmq_listener_fn *fn, void *arg);

/**
 * Start: fetch the routes of the subscribed topics, heartbeat the brokers,
 * rebalance and start pulling. Blocks for the first route look-ups (a
 * topic the name server does not know yet is retried every second).
 * @return 0, LSMQ_EINVAL (no subscription or listener, already started),
 * or -errno if a thread could not start. Any thread.
 */
int lsmq_push_consumer_start(lsmq_push_consumer *c);

/** The consumer's last error (see "Errors and logging"). Any thread. */
int lsmq_push_consumer_last_error(lsmq_push_consumer *c, char *buf, size_t cap);

/**
 * Stop and free: stop pulling, wait for running listeners to return,
 * commit the offsets of what was consumed (to the brokers, or the local
 * file when broadcasting), unregister from the brokers so the rest of the
 * group rebalances, stop the threads. Messages pulled but not yet handed
 * to the listener are dropped (they are redelivered from the committed
 * offset). c may be NULL. Not from a listener; no call on c may follow.
 */
void lsmq_push_consumer_destroy(lsmq_push_consumer *c);

/* ------------------------------------------------------------------ */
/* Pull (assign) consumer                                              */
/* ------------------------------------------------------------------ */

typedef struct lsmq_pull_consumer lsmq_pull_consumer;

/** A message queue. */
typedef struct lsmq_queue {
    char topic[LSMQ_TOPIC_MAX + 129];  /* retry topics of long groups are longer */
    char broker_name[LSMQ_BROKER_NAME_MAX];
    int32_t queue_id;
} lsmq_queue;

/** Create a pull consumer (not started). Same arguments as the push consumer. */
int lsmq_pull_consumer_create(const char *namesrv, const char *group,
                              lsmq_pull_consumer **out);
/** Start offset for queues without a committed offset (before start). */
int lsmq_pull_consumer_set_consume_from(lsmq_pull_consumer *c, int from);
/** Start the I/O thread. */
int lsmq_pull_consumer_start(lsmq_pull_consumer *c);

/** The consumer's last error (see "Errors and logging"). Any thread. */
int lsmq_pull_consumer_last_error(lsmq_pull_consumer *c, char *buf, size_t cap);

/**
 * The readable queues of a topic from its route.
 * @param[out] queues malloc'ed array of *n queues (free() it), ordered by
 *             broker name, then queue id.
 * @return 0, LSMQ_ENOTFOUND, or a transport error. Blocks. Any thread.
 */
int lsmq_pull_consumer_queues(lsmq_pull_consumer *c, const char *topic, lsmq_queue **queues,
                              size_t *n);

/**
 * Replace the assignment with these queues. Queues kept from the previous
 * assignment keep their position; new ones start at the group's committed
 * offset, or where set_consume_from says. Dropped queues lose their
 * buffered messages (commit first to keep their positions).
 * @return 0 or LSMQ_EINVAL. Any thread.
 */
int lsmq_pull_consumer_assign(lsmq_pull_consumer *c, const lsmq_queue *queues, size_t n);

/** Offsets for lsmq_pull_consumer_seek besides a plain queue offset. */
#define LSMQ_OFFSET_FIRST (-1)
#define LSMQ_OFFSET_LAST (-2)

/**
 * Move an assigned queue's position: the next poll returns its messages from
 * offset (or the queue's start/end). Buffered messages of that queue are
 * discarded. @return 0, LSMQ_ENOTFOUND (not assigned). Any thread.
 */
int lsmq_pull_consumer_seek(lsmq_pull_consumer *c, const lsmq_queue *q, int64_t offset);

/**
 * Wait up to timeout_ms for messages of the assigned queues.
 * @param[out] msgs malloc'ed array of *n messages (NULL when *n is 0);
 *             release with lsmq_messages_free. Each queue's messages come in
 *             queue order; the queue's position moves past them.
 * @param max most messages to return (> 0).
 * @return 0 (possibly *n == 0 on timeout), LSMQ_EINVAL. Any thread; one
 *         poller at a time.
 */
int lsmq_pull_consumer_poll(lsmq_pull_consumer *c, int timeout_ms, size_t max,
                            lsmq_message ***msgs, size_t *n);

/** Free messages returned by lsmq_pull_consumer_poll (msgs may be NULL). */
void lsmq_messages_free(lsmq_message **msgs, size_t n);

/**
 * Commit the position of every assigned queue to its broker and wait for
 * the answers. @return 0, or the first error. Any thread.
 */
int lsmq_pull_consumer_commit(lsmq_pull_consumer *c);

/**
 * The group's committed offset of a queue, from its broker.
 * @return 0 and *offset, LSMQ_ENOTFOUND when none is stored. Blocks.
 */
int lsmq_pull_consumer_committed(lsmq_pull_consumer *c, const lsmq_queue *q, int64_t *offset);

/** Stop and free; uncommitted positions are lost. c may be NULL. */
void lsmq_pull_consumer_destroy(lsmq_pull_consumer *c);

#ifdef __cplusplus
}
#endif

#endif
