/*
 * The broker as a master or a replica of its broker group: two rows of
 * the module table around the store (broker_internal.h).
 *
 *   ha        before the store opens. A master creates its replication
 *             server (repl_master_create: its commit hook is declared with
 *             the store's other extensions). A replica whose master's HA
 *             address is configured (haMasterAddress) makes its store from
 *             a checkpoint of the master when it has none of its own
 *             (repl_replica_prepare); one that must ask the name servers
 *             opens what it has and is made again once it knows.
 *   ha-serve  after the store, the registration and the pulls exist. A
 *             master listens on haListenPort and serves its replicas; a
 *             replica follows its master (repl_replica_start). Stops before
 *             the store closes: replication reads and writes the store.
 *
 * Master. The replication library reports the sequence inSyncReplicas
 * replicas have persisted from its own thread; the number is kept in an
 * atomic and brought to the loop with one post at a time, where it
 * releases the SYNC_MASTER sends it covers (broker_ha_wait.c). A
 * SYNC_MASTER in controller mode also lets consumers read a message only
 * once it is acknowledged (engine_confirm): the controller may elect a
 * replica without the unacknowledged tail, whose offsets the new master
 * then gives to other messages, and a consumer that had read the tail
 * would skip those. Its replicas do the same with the confirmed sequence
 * the master ships, and open with nothing readable until it comes.
 *
 * Replica. The store changes only through the master's log. Parked pulls
 * are woken by the engine's on_advance hook (broker_wake.c). A replica
 * that does not know its master's HA address learns it from the name
 * servers' answers to REGISTER_BROKER. When the
 * master no longer holds the log after the store's applied sequence (or
 * the store holds none) the library says so, and the store is made again
 * from a checkpoint on the loop: the follower stops, the store closes, a
 * checkpoint is fetched (the loop waits: nothing can be served meanwhile)
 * and the store reopens. Offsets committed to a replica are held in memory
 * (broker_held_offsets.c) and offered to the master once it is back.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "broker_internal.h"
#include "log.h"
#include "repl.h"

/* A replica that cannot reach its master at start opens what it has after this. */
#define PREPARE_AT_START_MS 30000
/* Fetching a checkpoint while running gives up after this (the loop waits for it). */
#define PREPARE_RUNNING_MS 120000
/* At most one checkpoint fetch per this many seconds. */
#define RESEED_MIN_INTERVAL_S 30.0
/* How often a replica looks at its link (held offsets go to a master that is back). */
#define LINK_CHECK_S 1.0
/* A replica that does not know its master registers this often (else every 30 s). */
#define ASK_MASTER_EVERY_CHECKS 2
/*
 * Held offsets go to a master that is back once the link has stayed up this
 * long: consumers still running commit to the master themselves within a few
 * seconds (Java every 5 s), their commits reach this store, and the held
 * offsets they overtake are dropped instead of sent after them.
 */
#define FORWARD_AFTER_ONLINE_CHECKS 10

struct broker_ha {
    broker_modules *m;
    broker_ctx *ctx;
    bool replica;
    bool sync;                      /* SYNC_MASTER */
    bool serving;                   /* between ha-serve's start and stop */
    bool controlled;                /* controller mode: the controller names the master */
    uint64_t epoch;                 /* controller mode: the epoch served or followed */
    char work_dir[1100];            /* <store>/ha */
    /* Master. */
    repl_master *master;
    broker_ack_waits *waits;
    _Atomic uint64_t acked;         /* written by the replication thread */
    atomic_bool acked_posted;
    broker_queue_ref *confirmed;    /* loop thread: queues engine_confirm moved */
    size_t n_confirmed, cap_confirmed;
    /* Replica. */
    repl_replica *follower;
    char master_ha[256];            /* the master's HA address: configured or learned */
    char master_addr[256];          /* the master's remoting address, once learned */
    atomic_bool reseed_posted;
    double last_reseed;
    ev_timer reseed_timer;          /* a fetch put off by RESEED_MIN_INTERVAL_S */
    ev_timer link_timer;
    unsigned link_checks;
    unsigned online_checks;         /* link checks in a row that found the master online */
    broker_forward *forward;        /* held offsets to a master that is back */
};

bool broker_ha_sync(const broker_ha *h)
{
    return h->sync;
}

/* ==== Master: acknowledgements ============================================ */

/* Loop thread: a queue whose confirmed messages became readable (engine_confirm). */
static void confirmed_queue(void *ctx, uint32_t topic_id, uint32_t queue_id)
{
    broker_ha *h = ctx;
    if (h->n_confirmed == h->cap_confirmed) {
        h->cap_confirmed = h->cap_confirmed ? h->cap_confirmed * 2 : 16;
        h->confirmed = proto_xrealloc(h->confirmed, h->cap_confirmed * sizeof *h->confirmed);
    }
    h->confirmed[h->n_confirmed++] = (broker_queue_ref){topic_id, queue_id};
}

/*
 * Loop thread: make what the acknowledged sequence covers readable (in
 * controller mode, engine_confirm), then release the sends it covers.
 */
static void acked_post_cb(void *arg)
{
    broker_ha *h = arg;
    atomic_store(&h->acked_posted, false); /* before reading: a later ack posts again */
    if (!h->serving)
        return;
    uint64_t acked = atomic_load(&h->acked);
    h->n_confirmed = 0;
    engine_confirm(h->ctx->engine, acked, confirmed_queue, h);
    broker_wake_queues(h->m, h->confirmed, h->n_confirmed);
    broker__ack_waits_acked(h->waits, acked);
}

/* Replication thread. */
static void acked_cb(void *ctx, uint64_t seq)
{
    broker_ha *h = ctx;
    uint64_t cur = atomic_load(&h->acked);
    while (seq > cur && !atomic_compare_exchange_weak(&h->acked, &cur, seq))
        ;
    if (!atomic_exchange(&h->acked_posted, true))
        server_post(h->ctx->srv, acked_post_cb, h);
}

void broker_ha_await(broker_ha *h, broker_ack_wait *w, uint64_t seq, broker_acked_cb done_cb)
{
    w->seq = seq;
    w->done_cb = done_cb;
    w->prev = w->next = NULL;
    int32_t code = -1;
    if (!h->serving || !h->master)
        code = BROKER_RS_FLUSH_SLAVE_TIMEOUT; /* shutting down: nobody will confirm it */
    else if (atomic_load(&h->acked) >= seq)
        code = RS_SUCCESS;
    else if (!h->controlled && repl_master_in_sync(h->master) < h->ctx->cfg.in_sync_replicas)
        code = RS_SLAVE_NOT_AVAILABLE; /* with a controller the sync state set decides */
    if (code >= 0) {
        w->code = code;
        done_cb(w);
        return;
    }
    broker__ack_waits_add(h->waits, w);
}

/* ==== Replica: confirmations ============================================= */

/*
 * Replication thread: the master confirmed up to seq. Applied here, before
 * the follower applies anything more, so a restart renumbers only what
 * the store held when following began.
 */
static void replica_confirmed_cb(void *ctx, uint64_t seq, uint64_t since, bool restart)
{
    broker_ha *h = ctx;
    if (restart)
        engine_confirm_restart(h->ctx->engine, since);
    engine_confirm(h->ctx->engine, seq, broker_wake_note, h->m->wake);
}

/* ==== Replica: the follower and a store made again ======================== */

static void reseed_cb(void *arg);

/* Replication thread: the master no longer has our place in its log. */
static void checkpoint_needed_cb(void *ctx)
{
    broker_ha *h = ctx;
    if (!atomic_exchange(&h->reseed_posted, true))
        server_post(h->ctx->srv, reseed_cb, h);
}

/* The follower's config; its strings point into h. */
static void follower_config(broker_ha *h, repl_replica_config *rc, uint32_t prepare_ms)
{
    repl_replica_config_init(rc);
    rc->store_path = h->ctx->cfg.store_path_root_dir;
    rc->master_addr = h->master_ha[0] ? h->master_ha : NULL;
    rc->self_addr = h->ctx->addr;
    rc->epoch = h->epoch;
    rc->prepare_timeout_ms = prepare_ms;
    rc->checkpoint_needed_cb = checkpoint_needed_cb;
    rc->confirmed_cb = replica_confirmed_cb;
    rc->ctx = h;
}

static int follower_start(broker_ha *h)
{
    repl_replica_config rc;
    follower_config(h, &rc, 0);
    int err = repl_replica_start(&rc, h->ctx->engine, &h->follower);
    if (err != 0)
        proto_log(PROTO_LOG_ERROR, "broker: cannot follow master %s: %s",
                  h->master_ha[0] ? h->master_ha : "(not known yet)", lsmq_strerror(err));
    return err;
}

/*
 * Make the store again from a checkpoint of the master, on the loop (no
 * request is served meanwhile). A store that cannot open afterwards stops
 * the broker: nothing can be served without one.
 */
static void reseed_cb(void *arg)
{
    broker_ha *h = arg;
    struct ev_loop *loop = server_loop(h->ctx->srv);
    if (!h->serving || !h->master_ha[0]) {
        atomic_store(&h->reseed_posted, false);
        return;
    }
    double wait = h->last_reseed + RESEED_MIN_INTERVAL_S - ev_now(loop);
    if (h->last_reseed > 0 && wait > 0) {
        if (!ev_is_active(&h->reseed_timer)) {
            ev_timer_set(&h->reseed_timer, wait, 0);
            ev_timer_start(loop, &h->reseed_timer);
        }
        return; /* reseed_posted stays set: the timer runs it */
    }
    proto_log(PROTO_LOG_WARN, "broker: master %s no longer holds this replica's place in its "
                              "log: making the store again from a checkpoint (requests wait)",
              h->master_ha);
    repl_replica_stop(h->follower);
    h->follower = NULL;
    broker__store_close(h->m);
    repl_replica_config rc;
    follower_config(h, &rc, PREPARE_RUNNING_MS);
    uint64_t applied = 0;
    char err[512] = "";
    int rc_prep = repl_replica_prepare(&rc, true, &applied, err, sizeof err);
    if (rc_prep != 0)
        proto_log(PROTO_LOG_ERROR, "broker: no checkpoint from master %s: %s", h->master_ha, err);
    else
        proto_log(PROTO_LOG_INFO, "broker: store made from a checkpoint of %s (sequence %llu)",
                  h->master_ha, (unsigned long long)applied);
    if (broker__store_open(h->m, err, sizeof err) != 0) {
        proto_log(PROTO_LOG_ERROR, "broker: the store does not open after the checkpoint: %s; "
                                   "stopping",
                  err);
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    ev_now_update(loop); /* the loop waited */
    h->last_reseed = ev_now(loop);
    atomic_store(&h->reseed_posted, false);
    follower_start(h);
}

static void reseed_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    broker_ha *h = t->data;
    h->last_reseed = 0;
    reseed_cb(h);
}

/* The name servers named our master (registration answers). */
static void master_heard_cb(void *ctx, const char *master_addr, const char *ha_addr)
{
    broker_ha *h = ctx;
    snprintf(h->master_addr, sizeof h->master_addr, "%s", master_addr);
    if (h->controlled || h->ctx->cfg.ha_master_address[0] || strcmp(h->master_ha, ha_addr) == 0)
        return; /* the controller's or configured, or nothing new */
    proto_log(PROTO_LOG_INFO, "broker: master of %s is %s (HA %s), from the name server",
              h->ctx->cfg.broker_name, master_addr, ha_addr);
    snprintf(h->master_ha, sizeof h->master_ha, "%s", ha_addr);
    if (h->follower)
        repl_replica_set_master(h->follower, h->master_ha);
}

bool broker_ha_master_online(broker_ha *h)
{
    repl_replica_state st;
    return h->follower && repl_replica_status(h->follower, &st) == 0 && st.connected;
}

/*
 * Once a second: a master that came back (and stayed) gets the offsets held
 * meanwhile that it has not overtaken;
 * a replica that does not know its master yet asks the name servers again.
 */
static void link_timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    broker_ha *h = t->data;
    if (!h->master_ha[0] && !h->controlled && ++h->link_checks % ASK_MASTER_EVERY_CHECKS == 0)
        broker_registration_again(h->m->registration);
    h->online_checks = broker_ha_master_online(h) ? h->online_checks + 1 : 0;
    if (h->online_checks == FORWARD_AFTER_ONLINE_CHECKS && h->master_addr[0] &&
        broker_held_offsets_count(h->m->held_offsets) > 0)
        broker__forward_offsets(h->forward, h->ctx, h->m->held_offsets, h->master_addr);
}

/* ==== The rows ============================================================ */

int broker_ha_create(broker_modules *m, char *errbuf, size_t errlen)
{
    broker_ha *h = proto_xcalloc(1, sizeof *h);
    const broker_config *cfg = &m->ctx.cfg;
    h->m = m;
    h->ctx = &m->ctx;
    h->replica = m->ctx.replica;
    h->sync = cfg->role == BROKER_SYNC_MASTER;
    h->controlled = cfg->enable_controller_mode;
    h->epoch = cfg->controller_epoch;
    snprintf(h->work_dir, sizeof h->work_dir, "%s/ha", cfg->store_path_root_dir);
    ev_timer_init(&h->reseed_timer, reseed_timer_cb, 0, 0);
    h->reseed_timer.data = h;
    ev_timer_init(&h->link_timer, link_timer_cb, LINK_CHECK_S, LINK_CHECK_S);
    h->link_timer.data = h;
    m->ha = h;
    if (!h->replica) {
        repl_master_config mc;
        repl_master_config_init(&mc);
        mc.port = broker_config_ha_port(cfg);
        mc.work_dir = h->work_dir;
        mc.epoch = h->epoch;
        mc.in_sync = cfg->in_sync_replicas ? cfg->in_sync_replicas : 1;
        mc.max_gap_bytes = cfg->ha_max_gap_bytes;
        mc.acked_cb = acked_cb;
        mc.ctx = h;
        int rc = repl_master_create(&mc, &h->master);
        if (rc != 0) {
            snprintf(errbuf, errlen, "cannot set up replication: %s", lsmq_strerror(rc));
            broker_ha_destroy(m);
            return rc;
        }
        return 0;
    }
    m->held_offsets = broker_held_offsets_new();
    h->forward = broker__forward_new();
    snprintf(h->master_ha, sizeof h->master_ha, "%s", cfg->ha_master_address);
    if (!h->master_ha[0]) {
        proto_log(PROTO_LOG_INFO, "broker: replica %s id %lld: %s", cfg->broker_name,
                  (long long)cfg->broker_id,
                  h->controlled ? "waiting for the controller to name a master"
                                : "asking the name servers for its master");
        return 0;
    }
    repl_replica_config rc;
    follower_config(h, &rc, PREPARE_AT_START_MS);
    uint64_t applied = 0;
    char why[512] = "";
    int err = repl_replica_prepare(&rc, false, &applied, why, sizeof why);
    if (err != 0)
        proto_log(PROTO_LOG_WARN, "broker: replica store not made from master %s yet: %s",
                  h->master_ha, why);
    else
        proto_log(PROTO_LOG_INFO, "broker: replica of %s (HA %s), store at master sequence %llu",
                  cfg->broker_name, h->master_ha, (unsigned long long)applied);
    return 0;
}

int broker_ha_declare(broker_ha *h, engine_config *ec)
{
    ec->replica = h->replica;
    /* A controller may elect a replica without a master's unconfirmed tail. */
    ec->confirmed_reads = h->controlled && h->sync;
    ec->wal_ttl_seconds = h->ctx->cfg.wal_ttl_seconds;
    ec->wal_size_limit_mb = h->ctx->cfg.wal_size_limit_mb;
    /* A replica's parked pulls are woken by broker_wake.c's extension. */
    return h->master ? engine_config_add_extension(ec, repl_master_extension(h->master)) : 0;
}

int broker_ha_start(broker_modules *m, char *errbuf, size_t errlen)
{
    broker_ha *h = m->ha;
    broker_ctx *ctx = &m->ctx;
    struct ev_loop *loop = server_loop(ctx->srv);
    if (h->master) {
        int rc = repl_master_start(h->master, ctx->engine, errbuf, errlen);
        if (rc != 0)
            return rc;
        snprintf(ctx->ha_addr, sizeof ctx->ha_addr, "%s:%d", ctx->cfg.broker_ip1,
                 repl_master_port(h->master));
        h->waits = broker__ack_waits_new(ctx->srv, ctx->cfg.sync_flush_timeout_ms);
        h->serving = true;
        proto_log(PROTO_LOG_INFO, "broker: %s of %s, replicas connect to %s%s",
                  broker_role_name(ctx->cfg.role), ctx->cfg.broker_name, ctx->ha_addr,
                  h->sync ? " (sends wait for them)" : "");
        return 0;
    }
    h->serving = true;
    broker_registration_on_master(m->registration, master_heard_cb, h);
    ev_timer_start(loop, &h->link_timer);
    int rc = follower_start(h);
    if (rc != 0) {
        snprintf(errbuf, errlen, "cannot follow the master: %s", lsmq_strerror(rc));
        broker_ha_stop(m);
    }
    return rc;
}

/* Before the store closes: replication reads and writes it. */
void broker_ha_stop(broker_modules *m)
{
    broker_ha *h = m->ha;
    struct ev_loop *loop = server_loop(m->ctx.srv);
    h->serving = false;
    if (h->master) {
        repl_master_stop(h->master);
        if (h->waits)
            broker__ack_waits_flush(h->waits, BROKER_RS_FLUSH_SLAVE_TIMEOUT);
        return;
    }
    broker_registration_on_master(m->registration, NULL, NULL);
    ev_timer_stop(loop, &h->link_timer);
    ev_timer_stop(loop, &h->reseed_timer);
    broker__forward_free(h->forward); /* a forward still running ends here */
    h->forward = NULL;
    repl_replica_stop(h->follower);
    h->follower = NULL;
}

/* After the store closed: the posts it ran have seen serving false. */
void broker_ha_destroy(broker_modules *m)
{
    broker_ha *h = m->ha;
    if (!h)
        return;
    repl_master_destroy(h->master);
    broker__ack_waits_free(h->waits);
    broker__forward_free(h->forward); /* when ha-serve never started */
    broker_held_offsets_free(m->held_offsets);
    m->held_offsets = NULL;
    free(h->confirmed);
    free(h);
    m->ha = NULL;
}

/* ==== Controller mode ===================================================== */

void broker_ha_follow(broker_ha *h, const char *ha_addr, uint64_t epoch)
{
    if (!h->replica)
        return;
    snprintf(h->master_ha, sizeof h->master_ha, "%s", ha_addr);
    h->epoch = epoch;
    if (h->follower)
        repl_replica_set_master_epoch(h->follower, h->master_ha, epoch);
}

void broker_ha_set_ack_set(broker_ha *h, const char *const *addrs, size_t n)
{
    if (h->master)
        repl_master_set_ack_set(h->master, addrs, n);
}

int broker_ha_replicas(broker_ha *h, broker_replica_state **out, size_t *n, uint64_t *last_seq)
{
    *out = NULL;
    *n = 0;
    *last_seq = 0;
    if (!h->master || !h->serving)
        return LSMQ_EINVAL;
    repl_replica_info *info = NULL;
    size_t count = 0;
    int rc = repl_master_status(h->master, &info, &count);
    if (rc != 0)
        return rc;
    *out = count ? proto_xcalloc(count, sizeof **out) : NULL;
    for (size_t i = 0; i < count; i++) {
        broker_replica_state *r = &(*out)[i];
        snprintf(r->addr, sizeof r->addr, "%s", info[i].addr);
        r->acked_seq = info[i].acked_seq;
        r->streaming = info[i].phase == REPL_PHASE_STREAMING;
        r->in_sync = info[i].in_sync;
    }
    *n = count;
    free(info);
    *last_seq = repl_master_last_seq(h->master);
    return 0;
}

uint64_t broker_ha_position(broker_ha *h)
{
    uint64_t epoch = 0, seq = 0;
    if (!h->ctx->engine || engine_position(h->ctx->engine, &epoch, &seq) != 0)
        return 0;
    return seq;
}

void broker__ha_parts(broker_ha *h, struct repl_master **master,
                      struct repl_replica **follower, const char **master_ha)
{
    *master = h->master;
    *follower = h->follower;
    *master_ha = h->master_ha;
}
