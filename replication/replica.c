/*
 * The replica's follower: a thread with its own libev loop keeps one
 * connection to the master. It says HELLO with the store's applied
 * sequence, then applies the BATCHES the master pushes through
 * engine_apply, in order and each once (a batch it already queued is
 * skipped, a gap breaks the link), and ACKs the durable sequence as the
 * writer reports it (ev_async) and on a timer. A broken link, a silent
 * master or a failed apply end the connection; the follower waits until
 * every apply it queued has completed (so the next HELLO names exactly
 * what is durable), then reconnects with back-off.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "repl_internal.h"
#include "transport.h"

#define TICK_S 0.05
#define HELLO_TIMEOUT_MS 10000

enum follow_state {
    FOLLOW_WAIT,        /* no connection: connect when due, the applies drained and the master known */
    FOLLOW_HELLO,       /* connecting / HELLO sent */
    FOLLOW_STREAMING,   /* applying what the master pushes */
    FOLLOW_FAILED,      /* a batch this store cannot apply: replication stopped */
};

struct repl_replica {
    repl_replica_config cfg;   /* strings point at the copies below */
    char *store_path;
    char *self_addr;
    engine *e;
    pthread_t thread;
    struct ev_loop *loop;
    transport_flusher *flusher;
    ev_async wake;             /* applies done, a new master, stop */
    ev_timer tick;
    /* The loop thread's. */
    enum follow_state state;
    proto_conn *pc;            /* current or dead connection (freed on the next connect) */
    transport_ev io;
    char conn_addr[REPL_ADDR_MAX]; /* the master the connection goes to */
    int64_t next_try_ms;
    uint32_t retry_ms;
    int64_t last_heard_ms;
    int64_t last_ack_ms;
    uint64_t queued_seq;       /* the last sequence handed to engine_apply */
    uint64_t confirmed_since;  /* the store's position when following this master began */
    uint64_t confirmed_seq;    /* the master's confirmed sequence, as last reported */
    bool confirmed_restart;    /* the next report is the first since following began */
    uint64_t acked_sent;       /* the last applied sequence ACKed */
    uint64_t follow_epoch;     /* the master's epoch since HELLO: older frames are refused */
    uint64_t hello_epoch;      /* the store's position's epoch, as the last HELLO said */
    bool failing;              /* the last attempt failed (logged once until one works) */
    bool stale_logged;         /* a stale master was logged (once until one is followed) */
    /* Shared with the writer's callbacks and status readers. */
    pthread_mutex_t lock;
    pthread_cond_t drained;
    bool loop_alive;           /* wake may be sent */
    bool stopping;
    size_t in_flight;          /* applies queued, their done not run yet */
    int apply_error;           /* the first failed apply's code, until the loop sees it */
    char master_addr[REPL_ADDR_MAX];
    uint64_t min_epoch;        /* no master of an older epoch is followed (the controller's) */
    uint64_t epoch;            /* for status: the epoch followed */
    bool master_changed;
    bool connected;
    bool checkpoint_needed;
    int failed;                /* why replication stopped for good (0: it did not) */
    uint64_t master_seq;
    int64_t read_wall_ms;      /* when the last frame from the master came (0: none yet) */
    int64_t write_wall_ms;     /* when the last ACK went to it (0: none yet) */
};

/* ------------------------------------------------------------------ */
/* Cross-thread                                                         */

static void wake(repl_replica *r)
{
    pthread_mutex_lock(&r->lock);
    if (r->loop_alive)
        ev_async_send(r->loop, &r->wake);
    pthread_mutex_unlock(&r->lock);
}

/* Writer thread: one queued apply is durable (or failed). */
static void apply_done(void *ctx, int status)
{
    repl_replica *r = ctx;

    pthread_mutex_lock(&r->lock);
    r->in_flight--;
    if (status != 0 && r->apply_error == 0)
        r->apply_error = status;
    if (r->in_flight == 0)
        pthread_cond_broadcast(&r->drained);
    if (r->loop_alive)
        ev_async_send(r->loop, &r->wake);
    pthread_mutex_unlock(&r->lock);
}

static void set_connected(repl_replica *r, bool on)
{
    pthread_mutex_lock(&r->lock);
    r->connected = on;
    pthread_mutex_unlock(&r->lock);
}

/* The master's confirmed sequence, when a frame of the followed master carries a newer one. */
static void report_confirmed(repl_replica *r, const proto_cmd *cmd)
{
    uint64_t seq = repl__get_u64(cmd, REPL_F_CONFIRMED_SEQ);
    if (seq <= r->confirmed_seq && !r->confirmed_restart)
        return;
    r->confirmed_seq = seq;
    if (r->cfg.confirmed_cb)
        r->cfg.confirmed_cb(r->cfg.ctx, seq, r->confirmed_since, r->confirmed_restart);
    r->confirmed_restart = false;
}

/* A frame from the master: when, and its last sequence if it says, for status. */
static void heard_master(repl_replica *r, const proto_cmd *cmd)
{
    uint64_t seq = repl__get_u64(cmd, REPL_F_MASTER_SEQ);

    r->last_heard_ms = proto_mono_ms();
    pthread_mutex_lock(&r->lock);
    if (seq != 0)
        r->master_seq = seq;
    r->read_wall_ms = proto_wall_ms();
    pthread_mutex_unlock(&r->lock);
    report_confirmed(r, cmd);
}

/* ------------------------------------------------------------------ */
/* The connection                                                       */

/* Retry after the back-off, which doubles up to retry_max_ms. */
static void backoff(repl_replica *r)
{
    r->next_try_ms = proto_mono_ms() + r->retry_ms;
    r->retry_ms = r->retry_ms * 2 > r->cfg.retry_max_ms ? r->cfg.retry_max_ms : r->retry_ms * 2;
}

/* Close the connection (never free it: its callbacks may be on the stack). */
static void hang_up(repl_replica *r, int err, const char *why)
{
    r->state = FOLLOW_WAIT;
    set_connected(r, false);
    transport_ev_close(&r->io);
    proto_conn_fail_all(r->pc, err, why);
}

/* The connection failed: say so once, close it, and retry after the back-off. */
static void drop(repl_replica *r, int err, const char *why)
{
    if (r->state == FOLLOW_WAIT || r->state == FOLLOW_FAILED)
        return;
    if (r->state == FOLLOW_STREAMING)
        proto_log(PROTO_LOG_WARN, "repl: lost master %s at applied seq %" PRIu64 ": %s",
                  r->conn_addr, engine_applied_sequence(r->e), why);
    else if (!r->failing)
        proto_log(PROTO_LOG_WARN, "repl: cannot follow master %s (retrying): %s", r->conn_addr,
                  why);
    r->failing = r->state != FOLLOW_STREAMING;
    hang_up(r, err, why);
    backoff(r);
}

/* A batch this store cannot apply: retrying would fail the same way. Stop, and say so once. */
static void stop_for_good(repl_replica *r, int err)
{
    proto_log(PROTO_LOG_ERROR, "repl: replication stopped at applied seq %" PRIu64
              ": the master sent a batch this store cannot apply (the line above says why)",
              engine_applied_sequence(r->e));
    if (r->state == FOLLOW_HELLO || r->state == FOLLOW_STREAMING)
        hang_up(r, err, "a batch cannot be applied");
    r->state = FOLLOW_FAILED;
    pthread_mutex_lock(&r->lock);
    r->failed = err;
    pthread_mutex_unlock(&r->lock);
}

static void end_cb(transport_ev *a, int err, const char *why, void *arg)
{
    repl_replica *r = arg;

    drop(r, err ? err : -ECONNRESET, why ? why : "the master closed the connection");
}

static void need_checkpoint(repl_replica *r, const char *why)
{
    bool first;

    pthread_mutex_lock(&r->lock);
    first = !r->checkpoint_needed;
    r->checkpoint_needed = true;
    pthread_mutex_unlock(&r->lock);
    if (first) {
        uint64_t epoch = 0, seq = 0;
        engine_position(r->e, &epoch, &seq);
        proto_log(epoch == 0 && seq == 0 ? PROTO_LOG_INFO : PROTO_LOG_WARN,
                  "repl: master %s cannot continue this replica (at epoch %" PRIu64 " seq %" PRIu64
                  "): %s; its store must be made again from a checkpoint",
                  r->conn_addr, epoch, seq, why);
        if (r->cfg.checkpoint_needed_cb)
            r->cfg.checkpoint_needed_cb(r->cfg.ctx);
    }
    r->retry_ms = r->cfg.retry_max_ms;
    r->failing = true; /* said above */
    drop(r, LSMQ_ECLOSED, why);
}

static void send_ack(repl_replica *r)
{
    uint64_t applied = engine_applied_sequence(r->e);
    proto_cmd *req = proto_cmd_request(REPL_RC_ACK);

    repl__set_u64(req, REPL_F_APPLIED_SEQ, applied);
    repl__set_u64(req, REPL_F_LOG_POSITION, engine_next_log_position(r->e));
    repl__set_u64(req, REPL_F_EPOCH, r->follow_epoch);
    if (proto_conn_request(r->pc, req, NULL, 0, 0, NULL, NULL) == 0) {
        r->acked_sent = applied;
        r->last_ack_ms = proto_mono_ms();
        pthread_mutex_lock(&r->lock);
        r->write_wall_ms = proto_wall_ms();
        pthread_mutex_unlock(&r->lock);
    }
    proto_cmd_free(req);
}

/* Queue every batch of a BATCHES body the store does not hold yet. */
static void on_batches(repl_replica *r, const proto_cmd *req)
{
    size_t pos = 0;
    repl_batch b;
    int rc;

    while ((rc = repl__batch_next(req->body, req->body_len, &pos, &b)) == 1) {
        uint64_t last = b.b.seq + b.b.count - 1;
        char why[200];
        if (b.epoch < r->follow_epoch) {
            snprintf(why, sizeof why, "a batch of epoch %" PRIu64 " is older than ours (%" PRIu64 ")",
                     b.epoch, r->follow_epoch);
            drop(r, LSMQ_ECORRUPT, why);
            return;
        }
        if (last <= r->queued_seq)
            continue; /* already queued or applied */
        if (b.b.seq != r->queued_seq + 1) {
            snprintf(why, sizeof why, "batch at seq %" PRIu64 " does not follow seq %" PRIu64,
                     b.b.seq, r->queued_seq);
            drop(r, LSMQ_ECORRUPT, why);
            return;
        }
        pthread_mutex_lock(&r->lock);
        r->in_flight++;
        pthread_mutex_unlock(&r->lock);
        rc = engine_apply(r->e, &b.b, apply_done, r);
        if (rc != 0) {
            pthread_mutex_lock(&r->lock);
            r->in_flight--;
            if (r->in_flight == 0)
                pthread_cond_broadcast(&r->drained);
            pthread_mutex_unlock(&r->lock);
            if (rc == LSMQ_ECORRUPT) {
                stop_for_good(r, rc);
                return;
            }
            snprintf(why, sizeof why, "cannot apply the batch at seq %" PRIu64 ": %s", b.b.seq,
                     lsmq_strerror(rc));
            drop(r, rc, why);
            return;
        }
        r->queued_seq = last;
    }
    if (rc < 0)
        drop(r, rc, "a BATCHES frame does not decode");
}

/* Requests the master starts: batches, heartbeats, the end of the log. */
static void request_cb(proto_conn *c, proto_cmd *req, void *arg)
{
    repl_replica *r = arg;

    if (r->state != FOLLOW_STREAMING || c != r->pc)
        return;
    heard_master(r, req);
    switch (req->code) {
    case REPL_RC_BATCHES:
        on_batches(r, req);
        break;
    case REPL_RC_HEARTBEAT:
        if (repl__get_u64(req, REPL_F_EPOCH) < r->follow_epoch)
            drop(r, LSMQ_ECLOSED, "a heartbeat of an older epoch");
        break;
    case REPL_RC_CHECKPOINT_NEEDED:
        need_checkpoint(r, req->remark ? req->remark : "the log moved past this replica");
        break;
    default:
        break;
    }
}

/* A master of an older epoch than we know: never followed; say so once, retry seldom. */
static void refuse_master(repl_replica *r, const char *why)
{
    if (!r->stale_logged)
        proto_log(PROTO_LOG_WARN, "repl: not following master %s: %s (waiting for a newer one)",
                  r->conn_addr, why);
    r->stale_logged = true;
    r->retry_ms = r->cfg.retry_max_ms;
    r->failing = true;
    drop(r, LSMQ_ECLOSED, why);
}

/*
 * A master of a newer epoch took this store as it stands (HELLO's
 * rebaseSeq): from now on the store stands at rebaseSeq of that master's
 * log and holds its epoch history, both written at once before any of
 * its batches. No apply is in flight (HELLO waits for that). 0 or an error.
 */
static int rebase(repl_replica *r, const proto_cmd *resp, uint64_t epoch, char *why, size_t len)
{
    uint64_t seq = repl__get_u64(resp, REPL_F_REBASE_SEQ);
    engine_epoch_entry h[ENGINE_EPOCHS_KEPT];
    size_t n = 0;

    if (seq == 0)
        return 0;
    if (repl__history_parse(proto_cmd_get(resp, REPL_F_HISTORY), h, &n) != 0) {
        snprintf(why, len, "the epoch history of a rebase does not decode");
        return LSMQ_ECORRUPT;
    }
    int rc = engine_set_position(r->e, epoch, seq, h, n);
    if (rc != 0) {
        snprintf(why, len, "cannot record the rebase to epoch %" PRIu64 " seq %" PRIu64 ": %s",
                 epoch, seq, lsmq_strerror(rc));
        return rc;
    }
    proto_log(PROTO_LOG_INFO, "repl: store rebased on master %s: epoch %" PRIu64 " seq %" PRIu64,
              r->conn_addr, epoch, seq);
    r->queued_seq = seq;
    return 0;
}

static void hello_cb(int rc, proto_reply *reply, const char *why, void *arg)
{
    repl_replica *r = arg;
    char text[300];

    if (r->state != FOLLOW_HELLO) {
        proto_reply_free(reply);
        return;
    }
    if (rc != 0) {
        snprintf(text, sizeof text, "%s", why ? why : lsmq_strerror(rc));
        drop(r, rc, text);
        return;
    }
    const proto_cmd *resp = reply->cmd;
    if (resp->code == REPL_RS_STALE_EPOCH) {
        snprintf(text, sizeof text, "%s", resp->remark ? resp->remark : "stale master epoch");
        proto_reply_free(reply);
        refuse_master(r, text);
        return;
    }
    if (resp->code == REPL_RS_CHECKPOINT_NEEDED) {
        snprintf(text, sizeof text, "%s", resp->remark ? resp->remark : "checkpoint needed");
        proto_reply_free(reply);
        need_checkpoint(r, text);
        return;
    }
    if (resp->code != RS_SUCCESS) {
        snprintf(text, sizeof text, "HELLO refused (code %d): %s", (int)resp->code,
                 resp->remark ? resp->remark : "");
        proto_log(PROTO_LOG_ERROR, "repl: master %s: %s", r->conn_addr, text);
        proto_reply_free(reply);
        r->retry_ms = r->cfg.retry_max_ms;
        r->failing = true;
        drop(r, LSMQ_ECLOSED, text);
        return;
    }
    uint64_t master_seq = repl__get_u64(resp, REPL_F_MASTER_SEQ);
    uint64_t master_epoch = repl__get_u64(resp, REPL_F_EPOCH);
    pthread_mutex_lock(&r->lock);
    uint64_t min_epoch = r->min_epoch;
    pthread_mutex_unlock(&r->lock);
    if (r->hello_epoch > min_epoch)
        min_epoch = r->hello_epoch; /* nor one older than the store's own epoch */
    if (master_epoch < min_epoch) {
        snprintf(text, sizeof text, "stale master epoch %" PRIu64 " (this replica follows epoch %"
                 PRIu64 " or newer)", master_epoch, min_epoch);
        proto_reply_free(reply);
        refuse_master(r, text);
        return;
    }
    rc = rebase(r, resp, master_epoch, text, sizeof text);
    if (rc != 0) {
        proto_reply_free(reply);
        proto_log(PROTO_LOG_ERROR, "repl: master %s: %s", r->conn_addr, text);
        r->failing = true;
        drop(r, rc, text);
        return;
    }
    r->follow_epoch = master_epoch;
    r->stale_logged = false;
    pthread_mutex_lock(&r->lock);
    r->epoch = master_epoch;
    r->master_seq = master_seq;
    r->read_wall_ms = proto_wall_ms();
    r->connected = true;
    r->checkpoint_needed = false;
    pthread_mutex_unlock(&r->lock);
    /* A new master, or a rebase: its sequences count from the store's position now. */
    r->confirmed_since = r->queued_seq;
    r->confirmed_seq = 0;
    r->confirmed_restart = true;
    report_confirmed(r, resp);
    proto_reply_free(reply);
    r->state = FOLLOW_STREAMING;
    r->retry_ms = r->cfg.retry_min_ms;
    r->failing = false;
    r->last_heard_ms = r->last_ack_ms = proto_mono_ms();
    proto_log(PROTO_LOG_INFO, "repl: following master %s from seq %" PRIu64 " (master at %" PRIu64 ")",
              r->conn_addr, r->queued_seq, master_seq);
}

/* Connect and say HELLO; only with no apply in flight, so applied is exact. */
static void connect_master(repl_replica *r)
{
    proto_conn_options o = {.max_frame = REPL_MAX_FRAME, .connecting = 1};
    char why[300];

    pthread_mutex_lock(&r->lock);
    snprintf(r->conn_addr, sizeof r->conn_addr, "%s", r->master_addr);
    r->master_changed = false;
    pthread_mutex_unlock(&r->lock);
    if (r->pc) {
        proto_conn_free(r->pc);
        r->pc = NULL;
    }
    o.name = r->conn_addr;
    r->pc = proto_conn_create(&o);
    proto_conn_set_request_cb(r->pc, request_cb, r);
    r->state = FOLLOW_HELLO;
    r->queued_seq = engine_applied_sequence(r->e);
    if (transport_ev_connect(&r->io, r->pc, r->loop, r->flusher, r->conn_addr,
                             (int)r->cfg.connect_timeout_ms, end_cb, r, why, sizeof why) != 0) {
        proto_conn_fail_all(r->pc, LSMQ_ECLOSED, why);
        if (!r->failing)
            proto_log(PROTO_LOG_WARN, "repl: cannot connect to master %s (retrying): %s",
                      r->conn_addr, why);
        r->failing = true;
        r->state = FOLLOW_WAIT;
        backoff(r);
        return;
    }
    /* The store's position: a former master's is its own epoch and last sequence. */
    uint64_t pos_epoch = 0, pos_seq = r->queued_seq;
    if (engine_position(r->e, &pos_epoch, &pos_seq) != 0)
        pos_epoch = 0, pos_seq = r->queued_seq;
    proto_cmd *req = proto_cmd_request(REPL_RC_HELLO);
    repl__set_u64(req, REPL_F_APPLIED_SEQ, pos_seq);
    repl__set_u64(req, REPL_F_LOG_POSITION, engine_next_log_position(r->e));
    repl__set_u64(req, REPL_F_EPOCH, pos_epoch);
    r->hello_epoch = pos_epoch;
    if (r->self_addr)
        proto_cmd_set(req, REPL_F_REPLICA_ADDR, r->self_addr);
    int64_t deadline = proto_mono_ms() + r->cfg.connect_timeout_ms + HELLO_TIMEOUT_MS;
    if (proto_conn_request(r->pc, req, NULL, 0, deadline, hello_cb, r) != 0)
        drop(r, LSMQ_ECLOSED, "HELLO not sent");
    proto_cmd_free(req);
}

/* ------------------------------------------------------------------ */
/* The loop                                                             */

/* What to do now: the loop's one decision point, run on every wake and tick. */
static void step(repl_replica *r)
{
    int64_t now = proto_mono_ms();
    int apply_error;
    bool changed, known, drained;

    pthread_mutex_lock(&r->lock);
    apply_error = r->apply_error;
    r->apply_error = 0;
    changed = r->master_changed;
    known = r->master_addr[0] != '\0';
    drained = r->in_flight == 0;
    pthread_mutex_unlock(&r->lock);

    if (apply_error == LSMQ_ECORRUPT) {
        stop_for_good(r, apply_error);
    } else if (apply_error) {
        char why[160];
        snprintf(why, sizeof why, "applying a batch failed: %s", lsmq_strerror(apply_error));
        proto_log(PROTO_LOG_ERROR, "repl: %s", why);
        drop(r, apply_error, why);
    }
    if (r->state == FOLLOW_FAILED)
        return;
    if (changed && r->state != FOLLOW_WAIT) {
        drop(r, LSMQ_ECLOSED, "the master moved");
        r->next_try_ms = now;
        r->retry_ms = r->cfg.retry_min_ms;
    } else if (changed) {
        r->next_try_ms = now;
    }
    if (r->state == FOLLOW_STREAMING) {
        if (now - r->last_heard_ms > r->cfg.dead_after_ms) {
            drop(r, -ETIMEDOUT, "the master went silent");
            return;
        }
        uint64_t applied = engine_applied_sequence(r->e);
        if (applied > r->acked_sent || now - r->last_ack_ms >= r->cfg.heartbeat_ms)
            send_ack(r);
        return;
    }
    if (r->state == FOLLOW_WAIT && known && drained && now >= r->next_try_ms)
        connect_master(r);
}

static void wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    repl_replica *r = w->data;
    bool stopping;

    pthread_mutex_lock(&r->lock);
    stopping = r->stopping;
    pthread_mutex_unlock(&r->lock);
    if (stopping) {
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    step(r);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents) { step(w->data); }

static void *replica_thread(void *arg)
{
    repl_replica *r = arg;

    step(r);
    ev_run(r->loop, 0);
    if (r->state == FOLLOW_HELLO || r->state == FOLLOW_STREAMING) {
        transport_ev_flush_now(&r->io);
        hang_up(r, LSMQ_ECLOSED, "stopping");
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Life cycle and status                                                */

/* Free what start made (the thread has ended, nothing is in flight). */
static void replica_free(repl_replica *r)
{
    if (r->pc)
        proto_conn_free(r->pc);
    ev_timer_stop(r->loop, &r->tick);
    ev_async_stop(r->loop, &r->wake);
    transport_flusher_destroy(r->flusher);
    ev_loop_destroy(r->loop);
    pthread_cond_destroy(&r->drained);
    pthread_mutex_destroy(&r->lock);
    free(r->store_path);
    free(r->self_addr);
    free(r);
}

int repl_replica_start(const repl_replica_config *c, engine *e, repl_replica **out)
{
    *out = NULL;
    if (!c->store_path || !engine_is_replica(e))
        return LSMQ_EINVAL;
    repl_replica *r = proto_xcalloc(1, sizeof *r);
    r->cfg = *c;
    r->store_path = proto_xstrdup(c->store_path);
    r->self_addr = c->self_addr ? proto_xstrdup(c->self_addr) : NULL;
    r->cfg.store_path = r->store_path;
    r->cfg.self_addr = r->self_addr;
    r->cfg.master_addr = NULL;
    if (!r->cfg.connect_timeout_ms)
        r->cfg.connect_timeout_ms = 3000;
    if (!r->cfg.retry_min_ms)
        r->cfg.retry_min_ms = 100;
    if (r->cfg.retry_max_ms < r->cfg.retry_min_ms)
        r->cfg.retry_max_ms = r->cfg.retry_min_ms;
    if (!r->cfg.heartbeat_ms)
        r->cfg.heartbeat_ms = 1000;
    if (!r->cfg.dead_after_ms)
        r->cfg.dead_after_ms = 5000;
    r->e = e;
    r->retry_ms = r->cfg.retry_min_ms;
    r->state = FOLLOW_WAIT;
    if (c->master_addr)
        snprintf(r->master_addr, sizeof r->master_addr, "%s", c->master_addr);
    r->min_epoch = c->epoch;
    uint64_t pos_seq;
    if (engine_position(e, &r->follow_epoch, &pos_seq) != 0)
        r->follow_epoch = 0;
    if (r->follow_epoch < r->min_epoch)
        r->follow_epoch = r->min_epoch;
    r->epoch = r->follow_epoch;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->drained, NULL);
    r->loop = ev_loop_new(EVFLAG_AUTO);
    if (!r->loop)
        proto_oom(0);
    r->flusher = transport_flusher_create(r->loop);
    ev_async_init(&r->wake, wake_cb);
    r->wake.data = r;
    ev_async_start(r->loop, &r->wake);
    ev_timer_init(&r->tick, tick_cb, TICK_S, TICK_S);
    r->tick.data = r;
    ev_timer_start(r->loop, &r->tick);
    r->loop_alive = true;
    int rc = pthread_create(&r->thread, NULL, replica_thread, r);
    if (rc != 0) {
        replica_free(r);
        return -rc;
    }
    *out = r;
    return 0;
}

void repl_replica_set_master_epoch(repl_replica *r, const char *addr, uint64_t epoch)
{
    pthread_mutex_lock(&r->lock);
    if (epoch > r->min_epoch) {
        r->min_epoch = epoch;
        r->master_changed = true; /* HELLO again: the master must be of this epoch */
        if (r->loop_alive)
            ev_async_send(r->loop, &r->wake);
        proto_log(PROTO_LOG_INFO, "repl: following epoch %" PRIu64 " or newer", epoch);
    }
    pthread_mutex_unlock(&r->lock);
    repl_replica_set_master(r, addr);
}

void repl_replica_set_master(repl_replica *r, const char *addr)
{
    pthread_mutex_lock(&r->lock);
    if (addr && strcmp(addr, r->master_addr) != 0) {
        snprintf(r->master_addr, sizeof r->master_addr, "%s", addr);
        r->master_changed = true;
        if (r->loop_alive)
            ev_async_send(r->loop, &r->wake);
        proto_log(PROTO_LOG_INFO, "repl: master is %s", r->master_addr);
    }
    pthread_mutex_unlock(&r->lock);
}

void repl_replica_stop(repl_replica *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    pthread_mutex_unlock(&r->lock);
    wake(r);
    pthread_join(r->thread, NULL);
    /* The writer still runs: let the applies queued finish before r goes. */
    pthread_mutex_lock(&r->lock);
    while (r->in_flight > 0)
        pthread_cond_wait(&r->drained, &r->lock);
    r->loop_alive = false;
    pthread_mutex_unlock(&r->lock);
    proto_log(PROTO_LOG_INFO, "repl: replica stopped following at applied seq %" PRIu64,
              engine_applied_sequence(r->e));
    replica_free(r);
}

int repl_replica_status(repl_replica *r, repl_replica_state *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&r->lock);
    snprintf(out->master_addr, sizeof out->master_addr, "%s", r->master_addr);
    out->master_seq = r->master_seq;
    out->connected = r->connected;
    out->checkpoint_needed = r->checkpoint_needed;
    out->error = r->failed;
    out->last_read_ms = r->read_wall_ms;
    out->last_write_ms = r->write_wall_ms;
    pthread_mutex_unlock(&r->lock);
    out->applied_seq = engine_applied_sequence(r->e);
    pthread_mutex_lock(&r->lock);
    out->epoch = r->epoch;
    pthread_mutex_unlock(&r->lock);
    return 0;
}
