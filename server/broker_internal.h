/*
 * Inside the broker: the module table, the context the modules share,
 * the continuation contract of requests that must wait, and what the
 * modules offer one another.
 *
 * Modules. Each request family is a module: a row {name, create,
 * register_handlers, stop, destroy} of the table in broker.c. broker_create
 * runs every create in table order, then every register_handlers;
 * broker_destroy runs every stop in reverse order, then every destroy in
 * reverse order. The store comes first but for the counters, whose commit
 * hook it declares when it opens the engine, and which have no stop: so the
 * store's stop (close the engine: its writer drains and the completions it
 * posted run) comes after every other module's stop and before any module
 * is destroyed: completions always find the state they touch.
 *
 *   row            file(s)                 requests / role
 *   stats          broker_stats.c          put/get counters (engine commit hook)
 *   ha             broker_ha.c             master or replica: before the store opens
 *                                          (a replica's store from a checkpoint)
 *   wake           broker_wake.c           wakes pulls on queues the writer advanced
 *                                          itself (replica batches, due delayed messages)
 *   store          broker.c                opens the engine, system topics
 *   registration   broker_registration.c,  REGISTER_BROKER to the name servers;
 *                  broker_register.c       answers that wait for a registration
 *   meta           broker_meta.c,          topic and subscription group config
 *                  broker_groups.c         writes, and the requests waiting on them
 *   clients        broker_clients.c        HEART_BEAT, UNREGISTER_CLIENT, connection lists
 *   locks          broker_locks.c          LOCK_BATCH_MQ, UNLOCK_BATCH_MQ
 *   pull           broker_pull.c           PULL_MESSAGE, LITE_PULL_MESSAGE, long polling
 *   send           broker_send.c           SEND_MESSAGE(_V2), SEND_BATCH_MESSAGE
 *   sendback       broker_sendback.c       CONSUMER_SEND_MSG_BACK
 *   ha-serve       broker_ha.c,            replication runs; SYNC_MASTER sends wait
 *                  broker_ha_wait.c,       for replicas; GET_BROKER_HA_STATUS
 *                  broker_ha_status.c
 *   epoch          broker_epoch.c          GET_BROKER_EPOCH_CACHE (the store's epochs)
 *   offsets        broker_offsets.c,       consumer offsets, queue positions (a
 *                  broker_held_offsets.c   replica holds commits in memory)
 *   admin          broker_admin.c          topic admin, GET_BROKER_RUNTIME_INFO
 *   admin-stats    broker_admin_stats.c    topic/consume statistics
 *   admin-groups   broker_admin_groups.c   subscription group admin
 *   query          broker_query.c          QUERY_MESSAGE, VIEW_MESSAGE_BY_ID
 *   reset          broker_reset.c          INVOKE_BROKER_TO_RESET_OFFSET
 *   timespan       broker_timespan.c       QUERY_CONSUME_TIME_SPAN
 *   timer-status   broker_timer_status.c   LSMQ_GET_TIMER_STATUS (pending delayed messages)
 *
 * A module's create reads the shared context and the modules created
 * before it (the fields of broker_modules already set) and keeps typed
 * pointers to what it uses in its own state; that state is the ctx its
 * handlers receive from the server. Handlers reach nothing else.
 *
 * Continuations. A handler never blocks the loop. When a request needs a
 * topic or group config write first (an auto-created topic, a %RETRY% or
 * %DLQ% topic, an auto-created group, an admin update or delete), it moves
 * what it still needs into a job of its own (an owned copy of the request's
 * parts, or a deep copy of the request), embeds a broker_wait in it, and
 * hands the waiter to the config module (broker_meta_*). The call returns
 * BROKER_WAITING: the handler returns at once and leaves the job alone.
 * When the write lands, the config module calls the waiter's resume_cb on
 * the loop thread with the request's connection, and the job goes on from
 * the step where it stopped (steps are written to be run again: a resumed
 * step calls the config module again and sees the outcome, see
 * broker_meta_write). If the connection closed meanwhile, or the broker
 * is shutting down, drop_cb runs instead. Exactly one of the two runs for
 * each time a waiter was queued; the job frees itself in either (or hands
 * itself on, as a send-back does to its append). Requests that wait for
 * one name resume in arrival order, so a producer's pipelined sends to a
 * topic being created are stored in the order they came. At most
 * keptRequestsMax waiters are queued at once: past that the config
 * functions return LSMQ_EBUSY and the request is answered SYSTEM_BUSY.
 * A store commit continues the same way through its completion (the
 * send's append_cb -> send_done_cb -> send_finish_cb).
 *
 * Conventions: module states are opaque outside their file (broker_admin,
 * shared by the admin files, is the exception); names are NUL-terminated,
 * bodies pointer + length. Functions return 0 or a negative LSMQ_E* code;
 * BROKER_WAITING is a third, positive outcome of the config functions
 * only. Returned pointers are owned by the module that returns them and
 * valid as each function says; jobs are freed by their own callbacks.
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
#include "engine.h"
#include "index.h"

#define BROKER_DEFAULT_TOPIC "TBW102"
#define BROKER_RETRY_PREFIX "%RETRY%"
#define BROKER_DLQ_PREFIX "%DLQ%"

/* Request codes served here that protocol/codes.h does not list. */
#define BROKER_RC_GET_TOPIC_CONFIG 351
#define BROKER_RC_GET_SUBSCRIPTIONGROUP_CONFIG 352
#define BROKER_RC_GET_BROKER_HA_STATUS 907
/* A response code protocol/codes.h does not list: a SYNC_MASTER send no replica confirmed in time. */
#define BROKER_RS_FLUSH_SLAVE_TIMEOUT 12

/* The remark of SYSTEM_BUSY, for a full writer queue and too many waiting requests. */
#define BROKER_BUSY_REMARK "[PC_SYNCHRONIZED]broker busy, start flow control for a while"

/* ==== The shared context ================================================== */

/*
 * The services every module uses, owned by the broker and valid until
 * broker_destroy returns. Modules read it; only the store row writes it.
 */
typedef struct broker_ctx {
    broker_config cfg;       /* as given to broker_create */
    server *srv;
    engine *engine;          /* NULL once shutdown closed the store: late work checks it */
    char addr[96];           /* "brokerIP1:listenPort" */
    char ha_addr[96];        /* "brokerIP1:haListenPort", where replicas connect */
    proto_host store_host;   /* the same, as stamped into stored records */
    bool replica;            /* brokerRole=SLAVE: the store changes only through the master's log */
    bool fenced;             /* controller mode: a master without its lease takes no sends */
} broker_ctx;

/* The remark of a send a master without its controller lease refuses. */
#define BROKER_FENCED_REMARK_FMT                                                            \
    "service not available now: master %s has lost its controller lease (a new master may be " \
    "elected), send to another broker"


/* The remark of a request a replica refuses because it writes (sends, send-backs). */
#define BROKER_REPLICA_REMARK_FMT                                                          \
    "service not available now: broker %s is a replica (brokerRole=SLAVE, brokerId %lld), "  \
    "messages are put to its master"

/* Map an engine error to a response code (remarks are the caller's). */
int broker_store_error_code(int lsmq_err);

/* ==== The module table (broker.c) ========================================= */

typedef struct broker_stats broker_stats;
typedef struct broker_registration broker_registration;
typedef struct broker_meta broker_meta;
typedef struct broker_clients broker_clients;
typedef struct broker_locks broker_locks;
typedef struct broker_pull broker_pull;
typedef struct broker_send broker_send;
typedef struct broker_sendback broker_sendback;
typedef struct broker_admin broker_admin;
typedef struct broker_ha broker_ha;
typedef struct broker_held_offsets broker_held_offsets;
typedef struct broker_wake broker_wake;

/* Every module, set in table order by the creates; NULL before and after. */
typedef struct broker_modules {
    broker_ctx ctx;
    broker_stats *stats;
    broker_ha *ha;
    broker_wake *wake;
    broker_registration *registration;
    broker_meta *meta;
    broker_clients *clients;
    broker_locks *locks;
    broker_pull *pull;
    broker_send *send;
    broker_sendback *sendback;
    broker_admin *admin;     /* shared by the admin rows: admin, admin-*, reset, timespan */
    broker_held_offsets *held_offsets; /* a replica's; NULL on a master */
} broker_modules;

/*
 * One row. create builds the module from m (the context and the modules
 * before it) and stores it in its own field of m; 0, or an error with
 * errbuf set. register_handlers puts its handlers on m->ctx.srv. stop runs
 * while the store is still open (end what would outlive it); destroy after
 * the store closed and every completion ran. NULL columns are skipped.
 */
typedef struct broker_module {
    const char *name;
    int (*create)(broker_modules *m, char *errbuf, size_t errlen);
    void (*register_handlers)(broker_modules *m);
    void (*stop)(broker_modules *m);
    void (*destroy)(broker_modules *m);
} broker_module;

/*
 * The store row's open and close (broker.c), also for a replica made again
 * from a checkpoint while it runs: open sets m->ctx.engine (0, or an
 * error with errbuf set); close drains the writer, runs its completions
 * and leaves m->ctx.engine NULL.
 */
int broker__store_open(broker_modules *m, char *errbuf, size_t errlen);
void broker__store_close(broker_modules *m);

int broker_stats_create(broker_modules *m, char *errbuf, size_t errlen);
void broker_stats_destroy(broker_modules *m);
/* The put counter's commit hook, for the store to declare; lives as long as st. */
const engine_extension *broker_stats_extension(const broker_stats *st);
int broker_wake_create(broker_modules *m, char *errbuf, size_t errlen);
void broker_wake_destroy(broker_modules *m);
/* The on_advance hook, for the store to declare on masters and replicas; lives as long as w. */
const engine_extension *broker_wake_extension(const broker_wake *w);
/* A queue by ids, as the engine's hooks name it. */
typedef struct broker_queue_ref {
    uint32_t topic_id;
    uint32_t queue_id;
} broker_queue_ref;
/* Loop thread: wake the pulls parked on these queues (when any is parked). */
void broker_wake_queues(broker_modules *m, const broker_queue_ref *list, size_t n);
/* Any thread: wake the pulls parked on this queue soon (a broker_wake; engine_confirm's moved). */
void broker_wake_note(void *wake, uint32_t topic_id, uint32_t queue_id);
int broker_registration_create(broker_modules *m, char *errbuf, size_t errlen);
void broker_registration_stop(broker_modules *m);
void broker_registration_destroy(broker_modules *m);
int broker_meta_create(broker_modules *m, char *errbuf, size_t errlen);
void broker_meta_destroy(broker_modules *m);
int broker_clients_create(broker_modules *m, char *errbuf, size_t errlen);
void broker_clients_register(broker_modules *m);
void broker_clients_destroy(broker_modules *m);
int broker_locks_create(broker_modules *m, char *errbuf, size_t errlen);
void broker_locks_register(broker_modules *m);
void broker_locks_destroy(broker_modules *m);
int broker_pull_create(broker_modules *m, char *errbuf, size_t errlen);
void broker_pull_register(broker_modules *m);
void broker_pull_destroy(broker_modules *m);
int broker_send_create(broker_modules *m, char *errbuf, size_t errlen);
void broker_send_register(broker_modules *m);
void broker_send_destroy(broker_modules *m);
int broker_sendback_create(broker_modules *m, char *errbuf, size_t errlen);
void broker_sendback_register(broker_modules *m);
void broker_sendback_destroy(broker_modules *m);
void broker_offsets_register(broker_modules *m);
int broker_ha_create(broker_modules *m, char *errbuf, size_t errlen);
void broker_ha_destroy(broker_modules *m);
int broker_ha_start(broker_modules *m, char *errbuf, size_t errlen);
void broker_ha_register(broker_modules *m);
/* broker_epoch.c: GET_BROKER_EPOCH_CACHE. */
void broker_epoch_register(broker_modules *m);
void broker_ha_stop(broker_modules *m);
int broker_admin_create(broker_modules *m, char *errbuf, size_t errlen);
void broker_admin_register(broker_modules *m);
void broker_admin_destroy(broker_modules *m);
void broker_admin_stats_register(broker_modules *m);
void broker_admin_groups_register(broker_modules *m);
void broker_query_register(broker_modules *m);
void broker_reset_register(broker_modules *m);
void broker_timespan_register(broker_modules *m);
void broker_timer_status_register(broker_modules *m);

/* ==== Continuations: requests that wait for a config write ================ */

typedef struct broker_wait broker_wait;
/* The write landed and the request's connection is open: go on. Loop thread. */
typedef void (*broker_resume_cb)(broker_wait *w, conn *c);
/* The connection closed meanwhile, or the broker is shutting down: free the job. */
typedef void (*broker_drop_cb)(broker_wait *w);

/* Embedded in a job; the job owns it. Fields below `next` are the config module's. */
struct broker_wait {
    uint64_t conn_id;
    broker_resume_cb resume_cb;
    broker_drop_cb drop_cb;
    broker_wait *next;        /* behind the same write */
    const char *landed_key;   /* the write that landed: valid while resume_cb runs */
    int landed_status;
    bool owner;               /* it was the write this waiter asked for itself */
};

void broker_wait_init(broker_wait *w, const conn *c, broker_resume_cb resume_cb,
                      broker_drop_cb drop_cb);
/* The job a waiter is embedded in, from inside its callbacks. */
#define BROKER_JOB_OF(w, type, member) ((type *)(void *)((char *)(w) - offsetof(type, member)))

/* Returned by the config functions when the waiter was queued (not an error). */
#define BROKER_WAITING 1

/* ==== Config writes (broker_meta.c) ======================================= */

/*
 * Writes of one name (topic or group) run one at a time through the
 * store's writer; a request that needs a name while a write of it is on
 * its way waits behind that write. Every function taking a broker_wait
 * returns 0 or an error when it is done now (the waiter untouched),
 * BROKER_WAITING when the waiter was queued, or LSMQ_EBUSY when
 * keptRequestsMax waiters are queued already.
 */

/*
 * The hot path: true and *out when the topic is stored and no write of it
 * is on its way, so a request may use it at once. No allocation.
 */
bool broker_meta_topic_ready(broker_meta *m, const char *topic, engine_topic_config *out);
/* Wait behind a write of the topic on its way; 0 when there is none. */
int broker_meta_topic_wait(broker_meta *m, const char *topic, broker_wait *w);
/*
 * The topic, created with `queues` queues and `perm` when missing (out may
 * be NULL): 0 and *out once it is there; the error of a creation the
 * waiter waited for and that failed.
 */
int broker_meta_topic_ensure(broker_meta *m, const char *topic, uint32_t queues,
                             uint32_t perm, engine_topic_config *out, broker_wait *w);
/* Create a missing group with `json` (the config text): as ensure, for groups. */
int broker_meta_group_create(broker_meta *m, const char *group, const char *json,
                             size_t json_len, broker_wait *w);

typedef enum broker_write_kind {
    BROKER_TOPIC_PUT,      /* tc: create or update */
    BROKER_TOPIC_DELETE,
    BROKER_GROUP_PUT,      /* json: a SubscriptionGroupConfig */
    BROKER_GROUP_DELETE,
} broker_write_kind;

/* A write asked for by a request. Views, copied where they must outlive the call. */
typedef struct broker_write {
    broker_write_kind kind;
    const char *name;                   /* topic or group */
    const engine_topic_config *tc;      /* BROKER_TOPIC_PUT */
    const char *json;                   /* BROKER_GROUP_PUT */
    size_t json_len;
} broker_write;

/*
 * A write of the request's own: BROKER_WAITING, or an error now. Call it
 * again from the resumed step: it returns the write's outcome (0, or e.g.
 * LSMQ_ENOTFOUND for a delete of a missing name) once, or queues the write
 * if the waiter had only waited behind someone else's write of the name.
 */
int broker_meta_write(broker_meta *m, const broker_write *wr, broker_wait *w);

/*
 * A request answered with the outcome of its own write: runs the write as
 * a job of its own (wr is copied) and calls answer_cb once the outcome is
 * known, now (an error) or when it landed. LSMQ_EBUSY (too many waiting,
 * or a full writer queue) is answered SYSTEM_BUSY here, without answer_cb.
 * answer_cb is not called for a oneway request (the write still happens),
 * nor when the connection closed meanwhile.
 */
typedef void (*broker_answer_cb)(conn *c, int32_t opaque, int status, const broker_write *wr);
void broker_meta_write_answered(broker_meta *m, conn *c, const proto_cmd *req,
                                const broker_write *wr, broker_answer_cb answer_cb);
/* The answer of a delete: deleting what is not there succeeds, as in the Java broker. */
void broker_answer_delete_cb(conn *c, int32_t opaque, int status, const broker_write *wr);

/* ==== Replication (broker_ha.c, broker_ha_wait.c) ========================= */

/*
 * For the store row, before engine_open: a replica's engine config
 * (replica, WAL retention) and the extensions replication needs (the
 * master's commit hook, the replica's queue-advance hook).
 */
int broker_ha_declare(broker_ha *h, engine_config *ec);

/* A replica streaming from its master right now (false on a master). */
bool broker_ha_master_online(broker_ha *h);

/*
 * A SYNC_MASTER send waiting until inSyncReplicas replicas persisted the
 * batch holding it. Embedded in the send's job; fields are broker_ha's.
 */
typedef struct broker_ack_wait broker_ack_wait;
/* Loop thread, exactly once per broker_ha_await: w->code says how it ended. */
typedef void (*broker_acked_cb)(broker_ack_wait *w);
struct broker_ack_wait {
    uint64_t seq;               /* the last sequence of the batch holding the send */
    double deadline;            /* ev_now() time */
    int32_t code;               /* RS_SUCCESS, BROKER_RS_FLUSH_SLAVE_TIMEOUT, RS_SLAVE_NOT_AVAILABLE */
    broker_acked_cb done_cb;
    broker_ack_wait *prev, *next;
};

/* Do sends wait for replicas (brokerRole=SYNC_MASTER)? The ASYNC path asks only this. */
bool broker_ha_sync(const broker_ha *h);
/* Controller mode (broker.h's broker_follow, broker_set_ack_set, broker_replicas, broker_position). */
void broker_ha_follow(broker_ha *h, const char *ha_addr, uint64_t epoch);
void broker_ha_set_ack_set(broker_ha *h, const char *const *addrs, size_t n);
int broker_ha_replicas(broker_ha *h, broker_replica_state **out, size_t *n, uint64_t *last_seq);
uint64_t broker_ha_position(broker_ha *h);
/*
 * Wait for seq to be acknowledged by inSyncReplicas replicas, at most
 * syncFlushTimeout: done_cb with RS_SUCCESS once it is, with
 * BROKER_RS_FLUSH_SLAVE_TIMEOUT when the time passed first, at once with
 * RS_SLAVE_NOT_AVAILABLE when fewer replicas are in sync than it needs
 * (upstream's isSlaveOK), and with BROKER_RS_FLUSH_SLAVE_TIMEOUT at
 * shutdown. Waiters are kept in sequence order and released together: one
 * acknowledgement answers every send it covers.
 */
void broker_ha_await(broker_ha *h, broker_ack_wait *w, uint64_t seq, broker_acked_cb done_cb);

/* broker_ha.c, for broker_ha_status.c: the replication objects (NULL when absent). */
struct repl_master;
struct repl_replica;
void broker__ha_parts(broker_ha *h, struct repl_master **master,
                      struct repl_replica **follower, const char **master_ha);
/*
 * broker_ha_forward.c: offer the held offsets to the master at
 * master_addr (its remoting address) as UPDATE_CONSUMER_OFFSET requests,
 * on a connection of their own; one forward at a time (a call while one
 * runs does nothing). Loop thread.
 */
typedef struct broker_forward broker_forward;
broker_forward *broker__forward_new(void);
void broker__forward_offsets(broker_forward *f, broker_ctx *ctx, broker_held_offsets *held,
                             const char *master_addr);
void broker__forward_free(broker_forward *f); /* ends a forward that runs */

/* broker_ha_wait.c, for broker_ha.c. */
typedef struct broker_ack_waits broker_ack_waits;
broker_ack_waits *broker__ack_waits_new(server *srv, uint32_t timeout_ms);
/* The acknowledged sequence moved to seq: release what it covers. */
void broker__ack_waits_acked(broker_ack_waits *aw, uint64_t seq);
void broker__ack_waits_add(broker_ack_waits *aw, broker_ack_wait *w);
/* Release every waiter with code (shutdown). */
void broker__ack_waits_flush(broker_ack_waits *aw, int32_t code);
void broker__ack_waits_free(broker_ack_waits *aw);

/* ==== Offsets a replica holds (broker_held_offsets.c) ===================== */

/*
 * A replica's store changes only through its master's log, so consumer
 * offsets committed to a replica (clients commit there when the master is
 * gone, as with upstream's slaves) are held in memory. A held offset
 * answers queries until the master's own value for that queue changes
 * (the master has heard from the consumer again), and is offered to the
 * master when it is back (broker_ha.c), so a commit made meanwhile is not
 * lost.
 */
broker_held_offsets *broker_held_offsets_new(void);
void broker_held_offsets_free(broker_held_offsets *h);
/* Hold `offset`; `stored` is the store's value then (UINT64_MAX: none). */
void broker_held_offset_set(broker_held_offsets *h, const char *group, const char *topic,
                            uint32_t queue_id, uint64_t offset, uint64_t stored);
/*
 * The held offset when there is one and the store still holds `stored`
 * (what it held when the offset was held): true and *out. A held offset
 * the store has moved past since is forgotten.
 */
bool broker_held_offset_get(broker_held_offsets *h, const char *group, const char *topic,
                            uint32_t queue_id, uint64_t stored, uint64_t *out);
/* Every held offset: fn(ctx, group, topic, queue, offset, stored), stored as
 * at broker_held_offset_set; fn returns true to forget it. */
typedef bool (*broker_held_fn)(void *ctx, const char *group, const char *topic,
                               uint32_t queue_id, uint64_t offset, uint64_t stored);
void broker_held_offsets_each(broker_held_offsets *h, broker_held_fn fn, void *ctx);
size_t broker_held_offsets_count(const broker_held_offsets *h);

/* ==== Registration with the name servers ================================== */

/* broker_registration.c: generations, and answers that wait for one. */

/* A topic config was stored or deleted: register now. `created` makes
 * later send answers wait for that registration. */
void broker_registration_topics_changed(broker_registration *r, bool created);
/* Generation of the registration asked for by the latest topic creation. */
uint64_t broker_registration_topics_gen(broker_registration *r);
/*
 * Run fn(arg) once a registration of generation `gen` or later has
 * finished (at once if it has, or once registration stopped). A send that
 * auto-created its topic is answered this way, so the topic is routable
 * when the producer hears back, as with the Java broker.
 */
void broker_registration_after(broker_registration *r, uint64_t gen, void (*fn)(void *arg),
                               void *arg);
/* Registration `gen` finished (called by the registrar, on the loop). */
void broker__registered(broker_registration *r, uint64_t gen);
/*
 * A replica's master, as the name servers answer REGISTER_BROKER
 * (masterAddr, haServerAddr): fn(ctx, master_addr, ha_addr) on the loop
 * after each registration that named one. One listener (the ha-serve row).
 */
typedef void (*broker_master_fn)(void *ctx, const char *master_addr, const char *ha_addr);
void broker_registration_on_master(broker_registration *r, broker_master_fn fn, void *ctx);
/* Register again now (a replica that does not know its master yet asks often). */
void broker_registration_again(broker_registration *r);
/* Called by the registrar with a name server's answer. */
void broker__master_heard(broker_registration *r, const char *master_addr, const char *ha_addr);

/* broker_register.c: the registrar that talks to the name servers, on the loop. */
typedef struct broker_registrar broker_registrar;
/* NULL when namesrvAddr names no name server. ctx must outlive it. */
broker_registrar *broker_registrar_start(broker_ctx *ctx, broker_registration *owner);
/* Sends UNREGISTER_BROKER (blocking, a second at most per name server); after the loop stopped. */
void broker_registrar_stop(broker_registrar *r);
/*
 * Ask r to register now (in the next loop iteration; the requests of one
 * iteration share a round). Returns the generation of that registration
 * (0 when r is NULL: no name servers). Loop thread.
 */
uint64_t broker_register_now(broker_registrar *r);

/* ==== Delivery in time (broker_delay.c) ==================================== */

/* What a message asks for in time. */
typedef struct broker_delay {
    bool delayed;          /* pending until deliver_ms (engine_append_timed) */
    int32_t level;         /* the DELAY level it came from (clamped), else 0 (a timer) */
    int64_t deliver_ms;    /* wall clock, ms since the epoch */
    int64_t now_ms;        /* when it was read (0 for a message without delay pairs) */
} broker_delay;

/*
 * Read DELAY, TIMER_DELAY_SEC, TIMER_DELAY_MS, TIMER_DELIVER_MS and
 * __STARTDELIVERTIME in one pass (a plain message costs one byte test per
 * pair). 0 and *d (d->delayed false: deliver now), or a response code with
 * the remark (BROKER_REMARK_MAX bytes) set: MESSAGE_ILLEGAL for a bad value
 * or a due time past timerMaxDelaySec, SYSTEM_ERROR when timerWheelEnable
 * is false.
 */
int broker_delay_of_props(const broker_config *cfg, const char *props, size_t len,
                          broker_delay *d, char *remark);
/* A level clamped to the highest messageDelayLevel names; its delay (0 for level < 1). */
int32_t broker_delay_level_clamp(const broker_config *cfg, int32_t level);
int64_t broker_delay_level_ms(const broker_config *cfg, int32_t level);
/* Is this client pair replaced by what broker_delay_add_props adds to a delayed message? */
bool broker_delay_replaces(const broker_delay *d, const char *name, size_t nlen);
/* Room broker_delay_add_props needs beside the topic's length. */
#define BROKER_DELAY_PROPS_ROOM 160
/*
 * The pairs a pending message carries, as upstream's delivered one does:
 * DELAY (level) or TIMER_OUT_MS and TIMER_ENQUEUE_MS (timer), then
 * REAL_TOPIC and REAL_QID.
 */
void broker_delay_add_props(const broker_delay *d, const char *topic, uint32_t queue_id,
                            int64_t now_ms, char *out, size_t cap, size_t *at);
/* A pending record from a timer (TIMER_OUT_MS) rather than a delay level. */
bool broker_delay_is_timer_record(const char *props, size_t len);

/* Upstream's topics a pending message is shown in (queries). */
#define BROKER_SCHEDULE_TOPIC "SCHEDULE_TOPIC_XXXX"
#define BROKER_TIMER_TOPIC "rmq_sys_wheel_timer"

/* A group's 5.x groupRetryPolicy (SubscriptionGroupConfig JSON). */
enum { BROKER_RETRY_LEVELS = 0, BROKER_RETRY_EXPONENTIAL, BROKER_RETRY_CUSTOMIZED };
typedef struct broker_retry_policy {
    int kind;              /* BROKER_RETRY_LEVELS: none set, the delay levels apply */
    int64_t initial_ms, max_ms, multiplier;          /* EXPONENTIAL */
    int64_t next_ms[BROKER_DELAY_LEVELS_MAX];        /* CUSTOMIZED */
    uint32_t n_next;
} broker_retry_policy;

/* Parse groupRetryPolicy of a group's JSON object (absent or odd: BROKER_RETRY_LEVELS). */
void broker_retry_policy_from_json(json_t *group, broker_retry_policy *out);
/* The policy's wait before retry number reconsume_times + 1, or -1 for BROKER_RETRY_LEVELS. */
int64_t broker_retry_policy_delay_ms(const broker_retry_policy *p, int32_t reconsume_times);

/* ==== Subscription groups (broker_groups.c) =============================== */

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
    broker_retry_policy retry_policy; /* groupRetryPolicy (5.x) */
} broker_group_config;

/*
 * NULL when `name` is a valid group name (^[%|a-zA-Z0-9_-]+$, at most 120
 * characters), else the remark to answer with (static text).
 */
const char *broker_group_name_error(const char *name);

/*
 * The stored config of `group`. When there is none and the broker has
 * autoCreateSubscriptionGroup, one with the defaults is written first
 * (w waits for it). 0, BROKER_WAITING, LSMQ_ENOTFOUND, LSMQ_EBUSY, or the
 * error of a creation that failed.
 */
int broker_group_find(broker_ctx *ctx, broker_meta *m, const char *group,
                      broker_group_config *out, broker_wait *w);

/* The brokerId a group's config names for its pulls (0, the master, when none). */
int64_t broker_group_broker_id(engine *e, const char *group);

/*
 * The text to store for a SubscriptionGroupConfig object an admin sent
 * (its groupName valid): the fields it lacks are added with the defaults.
 * malloc'ed, length in *len; NULL (LSMQ_EINVAL) when cfg is not such an object.
 */
char *broker_group_json_from(json_t *cfg, size_t *len);
/* retryMaxTimes of a stored group, 16 for one not stored yet. Loop thread. */
int32_t broker_group_retry_max_times(engine *e, const char *group);

/*
 * Call fn for every stored group config (name and JSON, views valid during
 * the call) in name order. fn returns 0 to go on and must not call the
 * engine (the store is pinned meanwhile). Returns 0 or LSMQ_EIO.
 */
typedef int (*broker_group_visit_fn)(void *ctx, const char *name, size_t name_len,
                                     const char *cfg, size_t cfg_len);
int broker_group_foreach(engine *e, broker_group_visit_fn fn, void *ctx);

/* Is the group known: a stored subscription group config, or online members? */
bool broker_group_known(engine *e, broker_clients *bc, const char *group);

/* ==== Client registry (broker_clients.c) ================================== */

/* Subscription of a group for a topic, from heartbeats (NULL when none). */
typedef struct broker_subscription {
    char topic[256];
    char sub_string[1024];
    int sql92;
    int64_t sub_version;
    int64_t *codes;        /* tag hash codes; NULL/0 for "*" */
    size_t n_codes;
    bool all;              /* "*" or empty */
} broker_subscription;
/*
 * Owned by the registry and valid until the group's next heartbeat,
 * unregister, close or expiry: a caller that keeps a filter past the
 * current callback copies it (a parked pull does).
 */
const broker_subscription *broker_clients_subscription(broker_clients *bc, const char *group,
                                                       const char *topic);
/* Does the group have any registered member (heartbeat)? */
bool broker_clients_group_known(broker_clients *bc, const char *group);
/* Topics the group's members subscribe to (0 when the group is not online). */
size_t broker_clients_subscription_count(broker_clients *bc, const char *group);
/* Call fn for each online consumer group subscribing to `topic`. */
void broker_clients_groups_of_topic(broker_clients *bc, const char *topic,
                                    void (*fn)(void *ctx, const char *group), void *ctx);
/*
 * Send a copy of req (header fields and code; the body is copied) as a
 * oneway request to every connected member of a consumer group. Returns
 * how many were sent (0 when the group is not online).
 */
size_t broker_clients_send_to_group(broker_clients *bc, const char *group, const proto_cmd *req,
                                    const void *body, size_t body_len);

/* ==== Long polling (broker_pull.c) ======================================== */

/* Wake the pulls parked on (topic, queue): called after a commit to that queue. */
void broker_pull_notify(broker_pull *bp, const char *topic, uint32_t queue_id);
/* Is any pull parked on a queue now (nothing to wake otherwise)? */
bool broker_pull_parked(const broker_pull *bp);

/* ==== Counters (broker_stats.c) =========================================== */

/* Messages handed to consumers by pulls (for msgGetTotal*). */
void broker_stats_count_get(broker_stats *st, uint64_t n);
/* Topic or group configuration changed: bumps the dataVersion admin bodies carry. */
void broker_stats_config_changed(broker_stats *st);

typedef struct broker_stats_view {
    int64_t boot_ms;
    uint64_t put_total, get_total;              /* since boot */
    uint64_t put_today_morning, get_today_morning;         /* totals at the last midnight */
    uint64_t put_yesterday_morning, get_yesterday_morning; /* totals at the one before */
    double put_tps[3], get_tps[3];              /* over 10 s, 1 min, 10 min */
    uint64_t data_version;                      /* config changes since boot */
    int64_t data_version_ms;                    /* time of the last one (boot time at first) */
} broker_stats_view;
void broker_stats_read(broker_stats *st, broker_stats_view *out);
/* The DataVersion object ({"counter","timestamp"}) admin bodies carry. */
json_t *broker_data_version_json(broker_stats *st);

/* ==== Queue locks (broker_locks.c) ======================================== */

/* Does any client of `group` hold an unexpired queue lock (§6.11)? */
bool broker_locks_group_locked(broker_locks *bl, const char *group);

/* ==== The admin rows' state (broker_admin.c) ============================== */

/* What admin requests read and write; the ctx of every admin row's handlers. */
struct broker_admin {
    broker_ctx *ctx;
    broker_meta *meta;
    broker_stats *stats;
    broker_clients *clients;
};

/* ==== JSON helpers (broker_json.c) ======================================== */

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
