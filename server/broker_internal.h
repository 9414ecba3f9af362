/*
 * Cross-file helpers of the broker's handler files that broker.h does not
 * carry: subscription group configs (broker_groups.c), put/get counters
 * (broker_stats.c), the queue-lock query (broker_locks.c) and a few JSON
 * helpers for the bodies the handlers build (broker_json.c).
 *
 * Threads: loop thread only, except where a function says otherwise.
 */
#ifndef LSMQ_SERVER_BROKER_INTERNAL_H
#define LSMQ_SERVER_BROKER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "broker.h"
#include "buf.h"

/* Request codes served here that protocol/codes.h does not list. */
#define BROKER_RC_GET_TOPIC_CONFIG 351
#define BROKER_RC_GET_SUBSCRIPTIONGROUP_CONFIG 352

/* ---- Subscription groups (broker_groups.c) ------------------------------ */

/* RocketMQ 5.x caps group names at 120 characters (REMOTING.md §6.1). */
#define BROKER_GROUP_NAME_MAX 120

/* The fields of a SubscriptionGroupConfig (§5.6) the broker acts on. */
typedef struct broker_group_config {
    char name[256];
    bool consume_enable;            /* consumeEnable */
    bool consume_broadcast_enable;  /* consumeBroadcastEnable */
    bool notify_ids_changed;        /* notifyConsumerIdsChangedEnable */
    int32_t retry_queue_nums;       /* retryQueueNums */
    int32_t retry_max_times;        /* retryMaxTimes */
} broker_group_config;

/*
 * NULL when `name` is a valid group name (^[%|a-zA-Z0-9_-]+$, at most 120
 * characters), else the remark to answer with (static text).
 */
const char *broker_group_name_error(const char *name);

/*
 * The stored config of `group` for the request being handled. When there is
 * none and the broker has autoCreateSubscriptionGroup, one with the defaults
 * is written first, without blocking: BROKER_DEFERRED (broker.h). Returns 0,
 * BROKER_DEFERRED, LSMQ_ENOTFOUND, or a store error.
 */
int broker_group_find_for(broker *b, conn *c, const proto_cmd *req, const char *group,
                          broker_group_config *out);

/*
 * Store a SubscriptionGroupConfig object as an admin sent it (its groupName
 * must be valid); fields it lacks are added with the defaults. BROKER_DEFERRED,
 * then the write's outcome when the request runs again, or LSMQ_EINVAL.
 */
int broker_group_update_from(broker *b, conn *c, const proto_cmd *req, json_t *cfg);

/*
 * Call fn for every stored group config (name and JSON, views valid during
 * the call) in name order. fn returns 0 to go on and must not call the
 * engine (the store is pinned meanwhile). Returns 0 or LSMQ_EIO.
 */
typedef int (*broker_group_visit_fn)(void *ctx, const char *name, size_t name_len,
                                     const char *cfg, size_t cfg_len);
int broker_group_foreach(broker *b, broker_group_visit_fn fn, void *ctx);

/* Is the group known: a stored subscription group config, or online members? */
bool broker_group_known(broker *b, const char *group);

/* ---- Client registry queries (broker_clients.c) -------------------------- */

/* Topics the group's members subscribe to (0 when the group is not online). */
size_t broker_clients_subscription_count(broker *b, const char *group);
/* Call fn for each online consumer group subscribing to `topic`. */
void broker_clients_groups_of_topic(broker *b, const char *topic,
                                    void (*fn)(void *ctx, const char *group), void *ctx);
/*
 * Send a copy of req (header fields and code; the body is copied) as a
 * oneway request to every connected member of a consumer group. Returns
 * how many were sent (0 when the group is not online).
 */
size_t broker_clients_send_to_group(broker *b, const char *group, const proto_cmd *req,
                                    const void *body, size_t body_len);

/* ---- Counters (broker_stats.c) ------------------------------------------ */

typedef struct broker_stats broker_stats;

/* Created by broker_clients_create (before any append: it adds an engine hook). */
broker_stats *broker_stats_create(broker *b);
void broker_stats_destroy(broker_stats *st);
/* The broker's counters (held by the client registry, which lives as long as the broker). */
broker_stats *broker_clients_stats(broker *b);

/* Messages handed to consumers by pulls (for msgGetTotal*). Loop thread. */
void broker_stats_count_get(broker *b, uint64_t n);
/* Topic or group configuration changed: bumps the dataVersion admin bodies carry. */
void broker_stats_config_changed(broker *b);

typedef struct broker_stats_view {
    int64_t boot_ms;
    uint64_t put_total, get_total;              /* since boot */
    uint64_t put_today_morning, get_today_morning;         /* totals at the last midnight */
    uint64_t put_yesterday_morning, get_yesterday_morning; /* totals at the one before */
    double put_tps[3], get_tps[3];              /* over 10 s, 1 min, 10 min */
    uint64_t data_version;                      /* config changes since boot */
    int64_t data_version_ms;                    /* time of the last one (boot time at first) */
} broker_stats_view;
void broker_stats_read(broker *b, broker_stats_view *out);

/* ---- Queue locks (broker_locks.c) --------------------------------------- */

/* Does any client of `group` hold an unexpired queue lock (§6.11)? */
bool broker_locks_group_locked(broker *b, const char *group);

/* ---- Admin files (broker_admin*.c) -------------------------------------- */

void broker_admin_stats_register(broker *b);   /* topic/consume stats, consume-by-who */
void broker_admin_groups_register(broker *b);  /* subscription group admin */
void broker_query_register(broker *b);         /* QUERY_MESSAGE, VIEW_MESSAGE_BY_ID */
void broker_reset_register(broker *b);         /* INVOKE_BROKER_TO_RESET_OFFSET */
void broker_timespan_register(broker *b);      /* QUERY_CONSUME_TIME_SPAN */
/* The DataVersion object ({"counter","timestamp"}) admin bodies carry. */
json_t *broker_data_version_json(broker *b);

/* ---- JSON helpers (broker_json.c) --------------------------------------- */

/* A JSON string of s, or of a lossy copy when s is not valid UTF-8. New reference. */
json_t *broker_json_str(const char *s);
/* Compact, keys sorted (fastjson's SortField order); malloc'ed text or NULL. */
char *broker_json_dump(const json_t *v, size_t *len);
/* {"brokerName":..,"queueId":..,"topic":..}, the MessageQueue object (§5.5). */
json_t *broker_json_mq(const char *broker_name, const char *topic, uint32_t queue_id);

/* A growing text buffer for the bodies jansson cannot write (object-key maps,
 * §5.1): protocol/'s proto_buf (NUL-terminated; free p when done). */
typedef proto_buf broker_text;
void broker_text_add(broker_text *t, const char *s, size_t n);
void broker_text_adds(broker_text *t, const char *s);
/* Append the compact sorted JSON of v (v is not released). */
void broker_text_add_json(broker_text *t, const json_t *v);

/* Reply SUCCESS with a JSON body (v released). */
void broker_reply_json(conn *c, int32_t opaque, json_t *v);
/* Reply `code` with a printf-formatted remark. */
void broker_reply_codef(conn *c, int32_t opaque, int32_t code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The text of a mandatory header field, or NULL after replying SYSTEM_ERROR
 * "the custom field <name> is null" as a Java broker does. */
const char *broker_require(conn *c, const proto_cmd *req, const char *name);
/* The same for integer fields: 0 and *out set, or -1 after replying SYSTEM_ERROR. */
int broker_require_i32(conn *c, const proto_cmd *req, const char *name, int32_t *out);
int broker_require_i64(conn *c, const proto_cmd *req, const char *name, int64_t *out);

#endif
