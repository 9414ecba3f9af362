/*
 * The master's side of following: a HELLO opens a log reader after the
 * replica's applied sequence (or is answered CHECKPOINT_NEEDED / DIVERGED);
 * from then on the committed batches are pushed as oneway BATCHES frames,
 * at most a window of bytes (and of batches) ahead of the replica's ACKs,
 * which also say how far it is, and so how far the acknowledged sequence
 * of the group is. Quiet links get heartbeats; silent ones are dropped.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "master_internal.h"

/* A checkpoint fetch silent this long is gone (its hard links go with it). */
#define CHECKPOINT_SILENCE_MS 60000
/* A replica of a newer epoch retries until it is moved: its refusal is logged this seldom. */
#define STALE_LOG_EVERY_MS 60000

void repl__stream_close(repl_link *l)
{
    engine_log_close(l->reader);
    l->reader = NULL;
    free(l->q);
    l->q = NULL;
    l->q_len = l->q_head = l->q_cap = 0;
    l->unacked_bytes = 0;
    l->unacked_batches = 0;
}

/* Update what status readers see of l. */
static void publish(repl_link *l, repl_phase phase, uint64_t acked, uint64_t position)
{
    repl_master *m = l->m;
    uint64_t master_position = engine_next_log_position(m->e);
    uint64_t lag = master_position > position ? master_position - position : 0;

    pthread_mutex_lock(&m->lock);
    l->phase = phase;
    l->acked_seq = acked;
    l->replica_position = position;
    l->in_sync = phase == REPL_PHASE_STREAMING && lag <= m->cfg.max_gap_bytes;
    if (phase == REPL_PHASE_STREAMING)
        repl__ack_set_note(m, l->addr, acked);
    pthread_mutex_unlock(&m->lock);
}

/* ------------------------------------------------------------------ */
/* Shipping                                                             */

static void inflight_push(repl_link *l, uint64_t last_seq, uint32_t bytes, uint32_t batches)
{
    if (l->q_len == l->q_cap) {
        size_t cap = l->q_cap ? l->q_cap * 2 : 64;
        repl_inflight *q = proto_xmalloc(cap * sizeof *q);
        for (size_t i = 0; i < l->q_len; i++)
            q[i] = l->q[(l->q_head + i) % l->q_cap];
        free(l->q);
        l->q = q;
        l->q_head = 0;
        l->q_cap = cap;
    }
    l->q[(l->q_head + l->q_len) % l->q_cap] =
        (repl_inflight){.last_seq = last_seq, .bytes = bytes, .batches = batches};
    l->q_len++;
    l->unacked_bytes += bytes;
    l->unacked_batches += batches;
}

/* The frames whose last batch the replica has persisted leave the window. */
static void inflight_ack(repl_link *l, uint64_t acked)
{
    while (l->q_len > 0 && l->q[l->q_head].last_seq <= acked) {
        l->unacked_bytes -= l->q[l->q_head].bytes;
        l->unacked_batches -= l->q[l->q_head].batches;
        l->q_head = (l->q_head + 1) % l->q_cap;
        l->q_len--;
    }
}

static bool window_open(const repl_link *l)
{
    return l->unacked_bytes < l->m->cfg.window_bytes &&
           l->unacked_batches < REPL_WINDOW_BATCHES;
}

/* The log no longer holds what the replica needs next: tell it, and part. */
static void send_checkpoint_needed(repl_link *l, const char *why)
{
    proto_log(PROTO_LOG_WARN, "repl: replica %s (%s) needs a checkpoint: %s", l->addr, l->peer,
              why);
    proto_cmd *req = proto_cmd_request(REPL_RC_CHECKPOINT_NEEDED);
    proto_cmd_set_remark(req, why);
    server_conn_send_oneway(l->c, req, NULL, 0);
    server_conn_close_after_write(l->c);
    repl__stream_close(l);
    publish(l, REPL_PHASE_HANDSHAKE, l->acked_seq, l->replica_position);
    repl__master_recount(l->m);
}

static void send_frame(repl_link *l, proto_buf *body, uint64_t last_seq, uint32_t batches)
{
    proto_cmd *req = proto_cmd_request(REPL_RC_BATCHES);
    repl__set_u64(req, REPL_F_MASTER_SEQ, engine_last_sequence(l->m->e));
    repl__set_u64(req, REPL_F_CONFIRMED_SEQ, atomic_load(&l->m->acked));
    server_conn_send_oneway(l->c, req, body->p, body->len);
    inflight_push(l, last_seq, (uint32_t)body->len, batches);
    l->shipped_seq = last_seq;
    l->last_sent_ms = proto_mono_ms();
    body->len = 0;
}

/* Ship l's log as far as its window allows. */
static void ship(repl_link *l)
{
    repl_master *m = l->m;
    proto_buf body = {0};
    engine_log_batch b;
    int rc = 0;

    while (l->reader && window_open(l)) {
        uint32_t batches = 0;
        uint64_t last = 0;
        while (body.len < REPL_FRAME_BYTES && l->unacked_batches + batches < REPL_WINDOW_BATCHES) {
            rc = engine_log_next(l->reader, &b);
            if (rc != 1)
                break;
            repl__batch_put(&body, m->epoch, &b);
            batches++;
            last = b.seq + b.count - 1;
        }
        if (batches)
            send_frame(l, &body, last, batches);
        if (rc != 1)
            break; /* nothing more committed yet, or the reader failed */
    }
    proto_buf_free(&body);
    if (rc == LSMQ_ENOTFOUND) {
        char why[160];
        snprintf(why, sizeof why, "the retained log moved past seq %" PRIu64, l->shipped_seq + 1);
        send_checkpoint_needed(l, why);
    } else if (rc < 0) {
        proto_log(PROTO_LOG_ERROR, "repl: reading the log for replica %s failed: %s", l->addr,
                  lsmq_strerror(rc));
        server_conn_close(l->c);
    }
}

void repl__ship_all(repl_master *m)
{
    /* Links only go away in close hooks, which shipping may run (a failed read). */
    repl_link *next;
    for (repl_link *l = m->links; l; l = next) {
        next = l->next;
        if (l->phase == REPL_PHASE_STREAMING)
            ship(l);
    }
}

/* ------------------------------------------------------------------ */
/* Requests                                                             */

/*
 * A replica at the master's epoch: follow from its applied sequence, if
 * the retained log holds what comes next. NULL and l->reader open: go.
 */
static proto_cmd *same_epoch(repl_link *l, const proto_cmd *req, uint64_t applied)
{
    repl_master *m = l->m;
    uint64_t last = engine_last_sequence(m->e);
    proto_cmd *resp;
    int rc;

    if (applied == 0)
        return proto_cmd_response(REPL_RS_CHECKPOINT_NEEDED, req->opaque,
                                  "the replica holds no applied sequence");
    if (applied > last) {
        proto_log(PROTO_LOG_ERROR,
                  "repl: replica %s (%s) applied seq %" PRIu64 " but the master is at %" PRIu64
                  ": their stores diverged, refusing it",
                  l->addr, l->peer, applied, last);
        resp = proto_cmd_response(REPL_RS_DIVERGED, req->opaque, NULL);
        proto_cmd_set_remarkf(resp, "replica at seq %" PRIu64 " is ahead of the master (%" PRIu64 ")",
                              applied, last);
        return resp;
    }
    rc = engine_log_open(m->e, applied, &l->reader);
    if (rc == 0)
        return NULL;
    l->reader = NULL;
    if (rc == LSMQ_ENOTFOUND) {
        proto_log(PROTO_LOG_WARN,
                  "repl: replica %s (%s) at seq %" PRIu64 " is behind the retained log: it needs a checkpoint",
                  l->addr, l->peer, applied);
        resp = proto_cmd_response(REPL_RS_CHECKPOINT_NEEDED, req->opaque, NULL);
        proto_cmd_set_remarkf(resp, "the retained log no longer reaches seq %" PRIu64, applied + 1);
    } else if (rc == LSMQ_EINVAL) {
        resp = proto_cmd_response(REPL_RS_DIVERGED, req->opaque, NULL);
        proto_cmd_set_remarkf(resp, "seq %" PRIu64 " ends no batch of the master's log", applied);
    } else {
        resp = proto_cmd_response(RS_SYSTEM_ERROR, req->opaque, NULL);
        proto_cmd_set_remarkf(resp, "cannot read the log: %s", lsmq_strerror(rc));
    }
    return resp;
}

/*
 * A replica of an older epoch. Standing exactly where this master stood
 * when it was promoted (a replica that followed the old master that far,
 * or the old master itself with nothing more), it holds what this master
 * held then: it continues after the promotion record, rebased into this
 * master's sequences (*rebase_seq). Anywhere else it diverged: checkpoint.
 */
static proto_cmd *older_epoch(repl_link *l, const proto_cmd *req, uint64_t epoch, uint64_t seq,
                              uint64_t *rebase_seq)
{
    repl_master *m = l->m;
    const engine_epoch_entry *p = &m->promotion;
    proto_cmd *resp;
    int rc;

    if (p->epoch == m->epoch && p->epoch != 0 && epoch == p->prev_epoch &&
        seq == p->prev_end_seq) {
        rc = engine_log_open(m->e, p->start_seq, &l->reader);
        if (rc == 0) {
            *rebase_seq = p->start_seq;
            return NULL;
        }
        l->reader = NULL;
        resp = proto_cmd_response(rc == LSMQ_ENOTFOUND ? REPL_RS_CHECKPOINT_NEEDED : RS_SYSTEM_ERROR,
                                  req->opaque, NULL);
        proto_cmd_set_remarkf(resp, "cannot read the log after the promotion record: %s",
                              lsmq_strerror(rc));
        return resp;
    }
    resp = proto_cmd_response(REPL_RS_CHECKPOINT_NEEDED, req->opaque, NULL);
    if (epoch == 0 && seq == 0) { /* a new store: nothing diverged */
        proto_cmd_set_remark(resp, "the replica's store holds nothing yet");
        return resp;
    }
    proto_log(PROTO_LOG_WARN,
              "repl: replica %s (%s) at epoch %" PRIu64 " seq %" PRIu64 " diverged from epoch %" PRIu64
              " at seq %" PRIu64 ": it needs a checkpoint",
              l->addr, l->peer, epoch, seq, p->prev_epoch, p->prev_end_seq);
    proto_cmd_set_remarkf(resp, "diverged from epoch %" PRIu64 " at sequence %" PRIu64
                          " (the replica is at epoch %" PRIu64 " sequence %" PRIu64 ")",
                          p->prev_epoch, p->prev_end_seq, epoch, seq);
    return resp;
}

static void hello_cb(server *s, conn *c, proto_cmd *req, void *ctx)
{
    repl_master *m = ctx;
    repl_link *l = repl__link_of(m, c);
    uint64_t applied = repl__get_u64(req, REPL_F_APPLIED_SEQ);
    uint64_t epoch = repl__get_u64(req, REPL_F_EPOCH);
    uint64_t last = engine_last_sequence(m->e);
    uint64_t rebase_seq = 0;
    const char *addr = proto_cmd_get(req, REPL_F_REPLICA_ADDR);
    proto_cmd *resp;

    l->last_heard_ms = proto_mono_ms();
    l->epoch = epoch;
    if (addr && *addr)
        snprintf(l->addr, sizeof l->addr, "%s", addr);
    repl__stream_close(l);
    if (epoch > m->epoch) {
        int64_t now = proto_mono_ms();
        if (m->stale_logged_ms == 0 || now - m->stale_logged_ms >= STALE_LOG_EVERY_MS) {
            m->stale_logged_ms = now;
            proto_log(PROTO_LOG_WARN,
                  "repl: replica %s (%s) is at epoch %" PRIu64 ", newer than this master's %" PRIu64
                  ": this master is stale",
                  l->addr, l->peer, epoch, m->epoch);
        }
        resp = proto_cmd_response(REPL_RS_STALE_EPOCH, req->opaque, NULL);
        proto_cmd_set_remarkf(resp, "stale master epoch %" PRIu64 " (the replica is at %" PRIu64 ")",
                              m->epoch, epoch);
    } else if (epoch == m->epoch) {
        resp = same_epoch(l, req, applied);
    } else {
        resp = older_epoch(l, req, epoch, applied, &rebase_seq);
    }
    if (!resp) {
        uint64_t from = rebase_seq ? rebase_seq : applied;
        resp = proto_cmd_response(RS_SUCCESS, req->opaque, NULL);
        repl__set_u64(resp, REPL_F_MASTER_SEQ, last);
        repl__set_u64(resp, REPL_F_CONFIRMED_SEQ, atomic_load(&m->acked));
        repl__set_u64(resp, REPL_F_EPOCH, m->epoch);
        if (rebase_seq) {
            engine_epoch_entry h[ENGINE_EPOCHS_KEPT];
            size_t n = 0;
            char text[REPL_HISTORY_TEXT_MAX];
            repl__set_u64(resp, REPL_F_REBASE_SEQ, rebase_seq);
            if (engine_epoch_history(m->e, h, &n) == 0 && n > 0) {
                repl__history_format(text, sizeof text, h, n);
                proto_cmd_set(resp, REPL_F_HISTORY, text);
            }
        }
        l->shipped_seq = from;
        l->last_sent_ms = proto_mono_ms();
        l->epoch = m->epoch;
        publish(l, REPL_PHASE_STREAMING, from, repl__get_u64(req, REPL_F_LOG_POSITION));
        if (rebase_seq)
            proto_log(PROTO_LOG_INFO,
                      "repl: replica %s (%s) at epoch %" PRIu64 " seq %" PRIu64
                      " rebased to epoch %" PRIu64 " seq %" PRIu64 " (master at %" PRIu64 ")",
                      l->addr, l->peer, epoch, applied, m->epoch, rebase_seq, last);
        else
            proto_log(PROTO_LOG_INFO,
                      "repl: replica %s (%s) follows from seq %" PRIu64 " (master at %" PRIu64 ")",
                      l->addr, l->peer, applied, last);
    }
    server_conn_reply(c, req->opaque, resp, NULL, 0);
    repl__master_recount(m);
    if (l->reader)
        ship(l);
}

static void ack_cb(server *s, conn *c, proto_cmd *req, void *ctx)
{
    repl_master *m = ctx;
    repl_link *l = repl__link_of(m, c);
    uint64_t applied = repl__get_u64(req, REPL_F_APPLIED_SEQ);

    l->last_heard_ms = proto_mono_ms();
    if (l->phase != REPL_PHASE_STREAMING)
        return;
    if (repl__get_u64(req, REPL_F_EPOCH) > m->epoch) {
        proto_log(PROTO_LOG_WARN, "repl: replica %s acknowledges at epoch %" PRIu64
                  ", newer than this master's %" PRIu64 ": this master is stale, dropping it",
                  l->addr, repl__get_u64(req, REPL_F_EPOCH), m->epoch);
        server_conn_close(c);
        return;
    }
    if (applied > l->shipped_seq) {
        proto_log(PROTO_LOG_WARN, "repl: replica %s acknowledged seq %" PRIu64
                  " beyond what it was sent (%" PRIu64 "): dropping it",
                  l->addr, applied, l->shipped_seq);
        server_conn_close(c);
        return;
    }
    if (applied < l->acked_seq)
        applied = l->acked_seq;
    inflight_ack(l, applied);
    publish(l, REPL_PHASE_STREAMING, applied, repl__get_u64(req, REPL_F_LOG_POSITION));
    repl__master_recount(m);
    ship(l);
}

void repl__stream_tick(repl_master *m, int64_t now_ms)
{
    repl_link *next;

    for (repl_link *l = m->links; l; l = next) {
        next = l->next;
        /* A checkpoint fetch asks chunk by chunk, and may pause to write one. */
        int64_t limit = l->phase == REPL_PHASE_CHECKPOINT && m->cfg.dead_after_ms < CHECKPOINT_SILENCE_MS
                            ? CHECKPOINT_SILENCE_MS
                            : m->cfg.dead_after_ms;
        if (now_ms - l->last_heard_ms > limit) {
            proto_log(PROTO_LOG_WARN, "repl: replica %s (%s) silent for %" PRId64 " ms: dropping it",
                      l->addr, l->peer, now_ms - l->last_heard_ms);
            server_conn_close(l->c);
            continue;
        }
        if (l->phase != REPL_PHASE_STREAMING)
            continue;
        /* The master moves on while a replica may not: in sync is as of now. */
        bool was_in_sync = l->in_sync;
        publish(l, l->phase, l->acked_seq, l->replica_position);
        if (l->in_sync != was_in_sync)
            repl__master_recount(m);
        if (now_ms - l->last_sent_ms >= m->cfg.heartbeat_ms) {
            proto_cmd *req = proto_cmd_request(REPL_RC_HEARTBEAT);
            repl__set_u64(req, REPL_F_MASTER_SEQ, engine_last_sequence(m->e));
            repl__set_u64(req, REPL_F_CONFIRMED_SEQ, atomic_load(&m->acked));
            repl__set_u64(req, REPL_F_EPOCH, m->epoch);
            server_conn_send_oneway(l->c, req, NULL, 0);
            l->last_sent_ms = now_ms;
        }
    }
}

void repl__stream_register(repl_master *m)
{
    server_register(m->srv, REPL_RC_HELLO, hello_cb, m);
    server_register(m->srv, REPL_RC_ACK, ack_cb, m);
}
