/*
 * Internals of the admin API (lsmq_admin.h), shared by its files:
 *   admin.c           the handle, blocking exchanges, lsmq__admin_rpc, error reporting
 *   admin_requests.c  the typed requests
 *   admin_bodies.c    response bodies (JSON) -> result structs, merging,
 *                     release functions
 *   admin_messages.c  message look-ups: view by id, key queries, pulls
 *   admin_offsets.c   offsets by time: search, reset, consume time span
 *   admin_ha.c        a broker's replication state (haStatus)
 *   admin_timers.c    pending delayed messages (timerStatus), resending a message
 * Nothing here is public.
 */
#ifndef LSMQ_CLIENT_ADMIN_INTERNAL_H
#define LSMQ_CLIENT_ADMIN_INTERNAL_H

#include <jansson.h>

#include "client_internal.h"
#include "lsmq_admin.h"

/* Request codes lsmq's codes.h does not list. */
#define ADMIN_RC_GET_CONSUMER_RUNNING_INFO 307

/* The handle: nothing but its last error. */
struct lsmq_admin {
    pthread_mutex_t err_lock;
    lsmq_errslot err;
};

/*
 * Send req to addr (a name server list when namesrv_list), require
 * SUCCESS and, when out is not NULL, parse the body (fastjson) into *out
 * (json_decref it). Frees req. Returns 0 or an error recorded on a.
 */
int lsmq__admin_rpc(lsmq_admin *a, const char *addr, int namesrv_list, proto_cmd *req,
                    int timeout_ms, json_t **out);

/* Send a copy of req to every server of the list; frees req; the first error wins. */
int lsmq__admin_rpc_every_namesrv(lsmq_admin *a, const char *namesrv, proto_cmd *req,
                                  int timeout_ms);

/* Record a refusal (a response with a non-zero code) as Java prints it; the LSMQ_E* code. */
int lsmq__admin_refused(lsmq_admin *a, const proto_cmd *resp, const char *addr,
                        const proto_cmd *req);

/* Record a body that parsed but had the wrong shape; LSMQ_ECORRUPT. */
int lsmq__admin_bad_body(lsmq_admin *a, const char *addr, int32_t code);

/* Record "fn: bad argument" (when there is a handle); LSMQ_EINVAL. */
int lsmq__admin_bad_arg(lsmq_admin *a, const char *fn);

/*
 * Body parsers. Each takes a parsed body and fills (or merges into) a
 * result; returns 0 or LSMQ_ECORRUPT when a required field is missing or
 * has the wrong type. They never take ownership of `body`.
 */
int lsmq__admin_parse_cluster_info(json_t *body, lsmq_admin_cluster_info **out);
int lsmq__admin_parse_route(json_t *body, lsmq_admin_route **out);
int lsmq__admin_parse_strings(json_t *body, const char *field, char ***out, size_t *n);
int lsmq__admin_parse_kv_table(json_t *body, lsmq_admin_kv_table **out);
int lsmq__admin_merge_topic_stats(json_t *body, lsmq_admin_topic_stats **stats);
int lsmq__admin_merge_consume_stats(json_t *body, lsmq_admin_consume_stats **stats);
int lsmq__admin_merge_consumer_connection(json_t *body, lsmq_admin_consumer_connection **cc);
int lsmq__admin_parse_running_mqs(json_t *body, lsmq_admin_mq **mqs, size_t *n);
int lsmq__admin_parse_reset_result(json_t *body, lsmq_admin_reset_result **out);
int lsmq__admin_parse_time_spans(json_t *body, lsmq_admin_time_spans **out);

/* A MessageQueue map key (its JSON text) into mq (strings malloc'ed): 0 or -1. */
int lsmq__admin_parse_mq_key(const char *key, lsmq_admin_mq *mq);
/* A number field (a JSON number or a string of digits): 0 when found, -1 otherwise. */
int lsmq__admin_i64_field(json_t *o, const char *key, int64_t *out);
/* MessageQueue.compareTo over lsmq_admin_mq: topic, broker name, queue id. */
int lsmq__admin_cmp_mq(const void *a, const void *b);

#endif
