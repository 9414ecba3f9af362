/*
 * The master: a thread with its own libev loop serves replicas on
 * haListenPort through server/'s listener (lsmq_net: accept, frames,
 * dispatch by code), so WAL reads and checkpoint files never stall the
 * broker's loop. The engine's write hook wakes the thread (ev_async);
 * master_stream.c ships, master_checkpoint.c serves checkpoints. Status
 * readers on other threads see the links under a lock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "master_internal.h"

/* ------------------------------------------------------------------ */
/* The engine's hooks (writer thread)                                   */

/* A batch with messages: remembered for the lag in messages. */
static void commit_hook(const engine_ext_env *x, uint64_t first_seq, size_t n_msgs)
{
    repl_master *m = x->ctx;

    pthread_mutex_lock(&m->hook_lock);
    m->marks[m->marks_next % REPL_MARKS] = (repl_commit_mark){
        .first_seq = first_seq, .msgs_before = m->msgs_total, .msgs_total = m->msgs_total + n_msgs};
    m->msgs_total += n_msgs;
    m->marks_next++;
    pthread_mutex_unlock(&m->hook_lock);
}

/*
 * Every write (messages, offsets, topics, retention): the log grew, ship it.
 * With no replica streaming there is nobody to ship to, and waking the
 * thread on every write would cost the writer a syscall and a core a
 * context switch. A link counts as streaming before its first read of the
 * log (hello_cb), so a write this skips is one that read will find.
 */
static void write_hook(const engine_ext_env *x, uint64_t last_seq)
{
    repl_master *m = x->ctx;

    atomic_store(&m->last_seq, last_seq);
    /* Acknowledged by the master alone: the thread reports it (acked_cb). */
    if (atomic_load(&m->n_streaming) == 0 && !atomic_load(&m->ack_alone))
        return;
    pthread_mutex_lock(&m->hook_lock);
    if (m->hook_on)
        ev_async_send(m->loop, &m->wake);
    pthread_mutex_unlock(&m->hook_lock);
}

uint64_t repl__msgs_after(repl_master *m, uint64_t seq)
{
    uint64_t after = 0;

    pthread_mutex_lock(&m->hook_lock);
    size_t n = m->marks_next < REPL_MARKS ? m->marks_next : REPL_MARKS;
    /* Newest first: count the batches that start after seq. */
    for (size_t i = 0; i < n; i++) {
        const repl_commit_mark *k = &m->marks[(m->marks_next - 1 - i) % REPL_MARKS];
        if (k->first_seq <= seq) {
            after = m->msgs_total - k->msgs_total;
            goto done;
        }
    }
    /* Older than the ring: everything it remembers, at least. */
    if (n > 0) {
        const repl_commit_mark *oldest = &m->marks[(m->marks_next - n) % REPL_MARKS];
        after = m->msgs_total - oldest->msgs_before;
    }
done:
    pthread_mutex_unlock(&m->hook_lock);
    return after;
}

/* ------------------------------------------------------------------ */
/* Links                                                                */

repl_link *repl__link_of(repl_master *m, conn *c)
{
    repl_link *l = server_conn_get_data(c);

    if (l)
        return l;
    l = proto_xcalloc(1, sizeof *l);
    l->m = m;
    l->c = c;
    l->conn_id = server_conn_id(c);
    l->cp_fd = -1;
    l->last_heard_ms = l->last_sent_ms = proto_mono_ms();
    snprintf(l->peer, sizeof l->peer, "%s", server_conn_peer(c));
    snprintf(l->addr, sizeof l->addr, "%s", l->peer);
    server_conn_set_data(c, l);
    pthread_mutex_lock(&m->lock);
    l->next = m->links;
    m->links = l;
    pthread_mutex_unlock(&m->lock);
    return l;
}

static void close_hook(server *s, conn *c, void *ctx)
{
    repl_master *m = ctx;
    repl_link *l = server_conn_get_data(c);

    if (!l)
        return;
    server_conn_set_data(c, NULL);
    if (l->phase == REPL_PHASE_STREAMING)
        proto_log(PROTO_LOG_INFO, "repl: replica %s (%s) disconnected at seq %llu", l->addr,
                  l->peer, (unsigned long long)l->acked_seq);
    pthread_mutex_lock(&m->lock);
    for (repl_link **p = &m->links; *p; p = &(*p)->next) {
        if (*p == l) {
            *p = l->next;
            break;
        }
    }
    pthread_mutex_unlock(&m->lock);
    repl__stream_close(l);
    repl__checkpoint_close(l);
    free(l);
    repl__master_recount(m);
}

/* The `in_sync`-th highest acknowledged sequence of the streaming links, or
 * the acknowledgement set's (master_ackset.c) once the broker gave one. */
void repl__master_recount(repl_master *m)
{
    uint64_t best[16] = {0}; /* the in_sync highest, descending (in_sync is capped) */
    size_t k = m->cfg.in_sync < 16 ? m->cfg.in_sync : 16;
    size_t streaming = 0, in_sync = 0;

    pthread_mutex_lock(&m->lock);
    for (repl_link *l = m->links; l; l = l->next) {
        if (l->phase != REPL_PHASE_STREAMING)
            continue;
        streaming++;
        if (l->in_sync)
            in_sync++;
        uint64_t v = l->acked_seq;
        for (size_t i = 0; i < k; i++) {
            if (v > best[i]) {
                uint64_t t = best[i];
                best[i] = v;
                v = t;
            }
        }
    }
    uint64_t quorum = atomic_load(&m->ack_set_on) ? repl__ack_set_quorum(m) : best[k - 1];
    pthread_mutex_unlock(&m->lock);
    atomic_store(&m->n_streaming, streaming);
    engine_log_watch(m->e, streaming > 0);
    atomic_store(&m->n_in_sync, in_sync);
    if (quorum > atomic_load(&m->acked)) {
        atomic_store(&m->acked, quorum);
        if (m->cfg.acked_cb)
            m->cfg.acked_cb(m->cfg.ctx, quorum);
    }
}

/* ------------------------------------------------------------------ */
/* The thread                                                           */

static void wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    repl_master *m = w->data;

    if (atomic_load(&m->stopping)) {
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    repl__ship_all(m);
    if (atomic_load(&m->ack_set_on))
        repl__master_recount(m); /* a new set, or a write the master alone acknowledges */
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    repl_master *m = w->data;

    repl__stream_tick(m, proto_mono_ms());
}

static void *master_thread(void *arg)
{
    repl_master *m = arg;

    ev_run(m->loop, 0);
    /* Stopping: the replicas learn it from their closed connections. */
    server_destroy(m->srv);
    m->srv = NULL;
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                           */

int repl_master_create(const repl_master_config *c, repl_master **out)
{
    *out = NULL;
    if (!c->work_dir || !*c->work_dir || c->in_sync == 0)
        return LSMQ_EINVAL;
    repl_master *m = proto_xcalloc(1, sizeof *m);
    m->cfg = *c;
    m->host = c->host ? proto_xstrdup(c->host) : NULL;
    m->work_dir = proto_xstrdup(c->work_dir);
    m->cfg.host = m->host;
    m->cfg.work_dir = m->work_dir;
    if (m->cfg.window_bytes == 0)
        m->cfg.window_bytes = 32u << 20;
    if (m->cfg.heartbeat_ms == 0)
        m->cfg.heartbeat_ms = 1000;
    if (m->cfg.dead_after_ms == 0)
        m->cfg.dead_after_ms = 5000;
    m->marks = proto_xcalloc(REPL_MARKS, sizeof *m->marks);
    pthread_mutex_init(&m->hook_lock, NULL);
    pthread_mutex_init(&m->lock, NULL);
    m->ext.name = "replication";
    m->ext.ctx = m;
    m->ext.hook.on_commit = commit_hook;
    m->ext.hook.on_write = write_hook;
    *out = m;
    return 0;
}

const engine_extension *repl_master_extension(repl_master *m) { return &m->ext; }

/* Remove the checkpoints an earlier run left in work_dir. */
static int clean_work_dir(repl_master *m, char *errbuf, size_t errlen)
{
    int rc = repl__remove_tree(m->work_dir);
    if (rc == 0 && mkdir(m->work_dir, 0755) != 0)
        rc = -errno;
    if (rc != 0)
        snprintf(errbuf, errlen, "replication work directory %s: %s", m->work_dir,
                 strerror(-rc));
    return rc;
}

/*
 * The epoch served: the config's when it is newer than the store's
 * position, after the promotion record (written once, synced); else the
 * store's own (a restart in the same epoch, or a config without epochs).
 */
static int enter_epoch(repl_master *m, engine *e, char *errbuf, size_t errlen)
{
    engine_epoch_entry h[ENGINE_EPOCHS_KEPT];
    uint64_t pos_epoch = 0, pos_seq = 0;
    size_t n = 0;
    int rc = engine_position(e, &pos_epoch, &pos_seq);

    if (rc != 0 && rc != LSMQ_ENOTFOUND)
        goto fail;
    if (m->cfg.epoch > pos_epoch) {
        rc = engine_epoch_begin(e, m->cfg.epoch, NULL);
        if (rc != 0)
            goto fail;
        proto_log(PROTO_LOG_INFO, "repl: master enters epoch %llu (was at epoch %llu seq %llu)",
                  (unsigned long long)m->cfg.epoch, (unsigned long long)pos_epoch,
                  (unsigned long long)pos_seq);
    } else if (m->cfg.epoch && m->cfg.epoch < pos_epoch) {
        proto_log(PROTO_LOG_WARN, "repl: configured epoch %llu is older than the store's %llu: "
                  "serving epoch %llu", (unsigned long long)m->cfg.epoch,
                  (unsigned long long)pos_epoch, (unsigned long long)pos_epoch);
    }
    m->epoch = m->cfg.epoch > pos_epoch ? m->cfg.epoch : pos_epoch;
    rc = engine_epoch_history(e, h, &n);
    if (rc != 0)
        goto fail;
    memset(&m->promotion, 0, sizeof m->promotion);
    if (n > 0 && h[n - 1].epoch == m->epoch)
        m->promotion = h[n - 1];
    return 0;
fail:
    snprintf(errbuf, errlen, "replication: cannot record epoch %llu in the store: %s",
             (unsigned long long)m->cfg.epoch, lsmq_strerror(rc));
    return rc;
}

int repl_master_start(repl_master *m, engine *e, char *errbuf, size_t errlen)
{
    if (m->started)
        return LSMQ_EINVAL;
    int rc = clean_work_dir(m, errbuf, errlen);
    if (rc == 0)
        rc = enter_epoch(m, e, errbuf, errlen);
    if (rc != 0)
        return rc;
    m->e = e;
    atomic_store(&m->last_seq, engine_last_sequence(e));
    atomic_store(&m->stopping, false);
    m->loop = ev_loop_new(EVFLAG_AUTO);
    if (!m->loop) {
        snprintf(errbuf, errlen, "replication: cannot make an event loop");
        return LSMQ_ENOMEM;
    }
    server_config sc;
    server_config_init(&sc);
    sc.name = "repl";
    sc.idle_timeout_s = 0; /* the tick drops silent replicas itself */
    /* A window's worth of frames may wait to go out without pausing ACKs. */
    sc.max_pending_output = (size_t)m->cfg.window_bytes + REPL_MAX_FRAME;
    server_create(m->loop, &sc, &m->srv);
    rc = server_listen(m->srv, m->host, m->cfg.port, &m->port);
    if (rc != 0) {
        snprintf(errbuf, errlen, "replication: cannot listen on %s:%d (haListenPort): %s",
                 m->host && *m->host ? m->host : "0.0.0.0", m->cfg.port, lsmq_strerror(rc));
        server_destroy(m->srv);
        ev_loop_destroy(m->loop);
        m->srv = NULL;
        m->loop = NULL;
        return rc;
    }
    server_on_close(m->srv, close_hook, m);
    repl__stream_register(m);
    repl__checkpoint_register(m);
    ev_async_init(&m->wake, wake_cb);
    m->wake.data = m;
    ev_async_start(m->loop, &m->wake);
    double tick = m->cfg.heartbeat_ms / 1000.0 / 4;
    ev_timer_init(&m->tick, tick_cb, tick, tick);
    m->tick.data = m;
    ev_timer_start(m->loop, &m->tick);
    pthread_mutex_lock(&m->hook_lock);
    m->hook_on = true;
    pthread_mutex_unlock(&m->hook_lock);
    rc = pthread_create(&m->thread, NULL, master_thread, m);
    if (rc != 0) {
        snprintf(errbuf, errlen, "replication: cannot start its thread: %s", strerror(rc));
        pthread_mutex_lock(&m->hook_lock);
        m->hook_on = false;
        pthread_mutex_unlock(&m->hook_lock);
        server_destroy(m->srv);
        ev_loop_destroy(m->loop);
        m->srv = NULL;
        m->loop = NULL;
        return -rc;
    }
    m->started = true;
    proto_log(PROTO_LOG_INFO,
              "repl: master serving replicas on port %d (inSyncReplicas %u, epoch %llu)", m->port,
              m->cfg.in_sync, (unsigned long long)m->epoch);
    if (atomic_load(&m->ack_set_on))
        ev_async_send(m->loop, &m->wake); /* a set given before start: report its sequence */
    return 0;
}

int repl_master_port(const repl_master *m) { return m->port; }

void repl_master_stop(repl_master *m)
{
    if (!m || !m->started)
        return;
    pthread_mutex_lock(&m->hook_lock);
    m->hook_on = false;
    pthread_mutex_unlock(&m->hook_lock);
    atomic_store(&m->stopping, true);
    ev_async_send(m->loop, &m->wake);
    pthread_join(m->thread, NULL);
    ev_loop_destroy(m->loop);
    m->loop = NULL;
    m->started = false;
    repl__remove_tree(m->work_dir);
    proto_log(PROTO_LOG_INFO, "repl: master stopped serving replicas");
}

void repl_master_destroy(repl_master *m)
{
    if (!m)
        return;
    repl_master_stop(m);
    pthread_mutex_destroy(&m->hook_lock);
    pthread_mutex_destroy(&m->lock);
    repl__ack_set_free(m);
    free(m->marks);
    free(m->host);
    free(m->work_dir);
    free(m);
}

/* ------------------------------------------------------------------ */
/* Status (any thread)                                                  */

size_t repl_master_replicas(repl_master *m) { return atomic_load(&m->n_streaming); }
size_t repl_master_in_sync(repl_master *m) { return atomic_load(&m->n_in_sync); }
uint64_t repl_master_acked(repl_master *m) { return atomic_load(&m->acked); }
uint64_t repl_master_last_seq(repl_master *m) { return atomic_load(&m->last_seq); }
uint64_t repl_master_epoch(repl_master *m) { return m->epoch; }

int repl_master_status(repl_master *m, repl_replica_info **out, size_t *n)
{
    repl_replica_info *v = NULL;
    size_t count = 0;
    uint64_t position = m->e ? engine_next_log_position(m->e) : 0;

    pthread_mutex_lock(&m->lock);
    for (repl_link *l = m->links; l; l = l->next)
        count++;
    if (count)
        v = proto_xcalloc(count, sizeof *v);
    size_t i = 0;
    for (repl_link *l = m->links; l; l = l->next, i++) {
        repl_replica_info *r = &v[i];
        snprintf(r->addr, sizeof r->addr, "%s", l->addr);
        snprintf(r->peer, sizeof r->peer, "%s", l->peer);
        r->acked_seq = l->acked_seq;
        r->lag_bytes = position > l->replica_position ? position - l->replica_position : 0;
        r->in_sync = l->in_sync;
        r->phase = l->phase;
        r->epoch = l->epoch;
        r->checkpoint_bytes = l->cp_served < l->cp_total ? l->cp_served : l->cp_total;
        r->checkpoint_total = l->cp_total;
    }
    pthread_mutex_unlock(&m->lock);
    for (i = 0; i < count; i++)
        v[i].lag_msgs = v[i].phase == REPL_PHASE_STREAMING ? repl__msgs_after(m, v[i].acked_seq) : 0;
    *out = v;
    *n = count;
    return 0;
}
