/*
 * The store writer: one thread owns every write.
 *
 * Callers encode their records on their own thread (engine_append) and queue
 * a request. The writer takes everything queued (up to a cap), assigns queue
 * offsets and log positions, stamps them and the store time into the
 * records, lets the hooks add index entries, adds the high-water marks of the
 * touched queues, and commits ONE WriteBatch: one fsync for the whole group
 * in SYNC_FLUSH. Only then does it publish the new offsets and run the
 * completions. If the write fails, nothing is published and every request of
 * the group gets the error.
 *
 * Delayed messages (engine_append_timed) go to the timer family in the
 * group like any append. Each master group first moves the messages that
 * are due (timer_move.c), a bounded number, into the same batch; between
 * groups the writer sleeps no longer than until the earliest due time.
 *
 * Control operations (topic changes, group configs, retention removals) take
 * their own write between groups; consumer offset commits ride in the group.
 * In ASYNC_FLUSH the WAL is synced every flush_interval_ms by wal_sync.c.
 *
 * After a failed write RocksDB's WAL writer must not be used again, so the
 * writer stops writing: requests fail at once with the error (LSMQ_ENOSPC
 * for a full disk) until, at the start of a later group, free space is back
 * and the database reopens cleanly with its state reloaded from disk.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"
#include "clock.h"

#define GROUP_MAX_MSGS 8192
#define GROUP_MAX_BYTES (32u << 20)
#define QUEUE_MAX_BYTES (512u << 20)
#define RECOVER_MIN_FREE_BYTES (16u << 20)
#define RECOVER_RETRY_MS 1000
/* Due messages moved per group at most (and GROUP_MAX_BYTES) when nothing else waits. */
#define TIMER_MOVE_MAX 1024
/*
 * And when appends wait: a group's moves delay every send in it, so a
 * burst of due messages takes small steps between them and a synchronous
 * producer still gets a group every few hundred microseconds. The moves
 * lose little: the groups follow each other at once.
 */
#define TIMER_MOVE_WITH_APPENDS 64
/* The longest sleep towards a due time: a clock that jumps is noticed within it. */
#define TIMER_WAIT_MAX_MS 1000

typedef struct sync_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    int status;
} sync_wait;

typedef struct wreq {
    struct wreq *next;
    const wctl *ctl;          /* NULL for appends */
    sync_wait *wait;          /* control operations: the caller waits here, */
    void (*done)(void *ctx, int status); /* or is called back (writer thread) */
    void *done_ctx;
    wctl own_ctl;             /* an asynchronous control operation's copy */
    engine_topic_config own_cfg; /* and of its topic config */
    int status;
    /* a replica's batch of its master's log: its bytes are `records`, n is 1 */
    bool apply;
    uint64_t log_seq;
    uint32_t log_count;
    /* appends */
    bool timed;               /* engine_append_timed: to the timer family */
    int64_t deliver_ms;
    engine_append_cb cb;
    void *ctx;
    uint32_t n;
    uint32_t queue_id;
    uint32_t topic_len;
    size_t bytes;
    char topic[PROTO_TOPIC_MAX + 1];
    uint64_t *positions;      /* n entries, after the struct */
    uint8_t *records;         /* bytes of encoded records, after positions */
    uint64_t first_offset;
    int64_t first_store_ms;
    uint64_t last_seq;        /* of the committed batch */
} wreq;

typedef struct touched {
    topic *t;
    uint32_t queue_id;
} touched;

struct writer {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    wreq *head, *tail;
    size_t queued_msgs;
    size_t queued_bytes;
    int waiting;               /* the writer sleeps on cond */
    int stopping;
    rocksdb_writebatch_t *wb;
    touched *touched;
    size_t ntouched, touched_cap;
    struct sort_slot *sorted;  /* scratch of sort_group */
    size_t sorted_cap;
    uint32_t gen;
    int64_t last_recover_ms;   /* monotonic */
    uint64_t apply_next;       /* replica, under lock: the master sequence engine_apply takes next */
};

static bool on_writer_thread(engine *e)
{
    return e->w && pthread_equal(pthread_self(), e->w->thread);
}

/* ---- Queueing -------------------------------------------------------- */

/* Link r at the tail; the caller holds w->lock. */
static int push_locked(engine *e, writer *w, wreq *r, uint32_t msgs, size_t bytes)
{
    if (w->stopping)
        return LSMQ_ECLOSED;
    if (!r->ctl && (w->queued_msgs + msgs > e->cfg.writer_queue_max ||
                    w->queued_bytes + bytes > QUEUE_MAX_BYTES))
        return LSMQ_EBUSY;
    r->next = NULL;
    if (w->tail)
        w->tail->next = r;
    else
        w->head = r;
    w->tail = r;
    w->queued_msgs += msgs;
    w->queued_bytes += bytes;
    if (w->waiting)
        pthread_cond_signal(&w->cond);
    return 0;
}

static int enqueue(engine *e, wreq *r, uint32_t msgs, size_t bytes)
{
    writer *w = e->w;
    pthread_mutex_lock(&w->lock);
    int rc = push_locked(e, w, r, msgs, bytes);
    pthread_mutex_unlock(&w->lock);
    return rc;
}

/*
 * Take a group off the queue. Waits for work, at most wait_ms when that is
 * >= 0 (a due time); NULL when stopping with none, or when the wait ran out.
 */
static wreq *take_group(engine *e, writer *w, int64_t wait_ms)
{
    pthread_mutex_lock(&w->lock);
    struct timespec until;
    if (wait_ms > 0)
        until = proto_deadline_after(CLOCK_REALTIME, wait_ms);
    while (!w->head && !w->stopping && wait_ms != 0) {
        w->waiting = 1;
        int rc = 0;
        if (wait_ms < 0)
            pthread_cond_wait(&w->cond, &w->lock);
        else
            rc = pthread_cond_timedwait(&w->cond, &w->lock, &until);
        w->waiting = 0;
        if (rc != 0)
            break;
    }
    wreq *first = w->head, *last = NULL, *r = first;
    size_t msgs = 0, bytes = 0;
    while (r && (msgs < GROUP_MAX_MSGS && bytes < GROUP_MAX_BYTES)) {
        msgs += r->ctl ? 0 : r->n;
        bytes += r->ctl ? 0 : r->bytes;
        last = r;
        r = r->next;
    }
    if (last) {
        w->head = last->next;
        if (!w->head)
            w->tail = NULL;
        last->next = NULL;
    }
    w->queued_msgs -= msgs;
    w->queued_bytes -= bytes;
    pthread_mutex_unlock(&w->lock);
    return first;
}

static bool stopped_and_drained(writer *w)
{
    pthread_mutex_lock(&w->lock);
    bool done = w->stopping && !w->head;
    pthread_mutex_unlock(&w->lock);
    return done;
}

/* ---- Building a group ------------------------------------------------ */

static void touch(writer *w, topic *t, uint32_t qid)
{
    queue_state *q = &t->queues[qid];
    if (q->w_touched_gen == w->gen)
        return;
    q->w_touched_gen = w->gen;
    if (w->ntouched == w->touched_cap) {
        w->touched_cap = w->touched_cap ? w->touched_cap * 2 : 64;
        w->touched = proto_xrealloc(w->touched, w->touched_cap * sizeof *w->touched);
    }
    w->touched[w->ntouched++] = (touched){t, qid};
}

void engine__writer_touch(engine *e, topic *t, uint32_t queue_id)
{
    touch(e->w, t, queue_id);
}

static uint32_t queue_limit(const topic *t)
{
    uint32_t n = t->cfg.read_queue_nums > t->cfg.write_queue_nums ? t->cfg.read_queue_nums
                                                                  : t->cfg.write_queue_nums;
    return n < t->nqueues ? n : t->nqueues;
}

void engine__writer_put_msg(engine *e, engine_batch *b, topic *t, uint32_t queue_id,
                            uint8_t *rec, uint32_t size, int64_t store_ms, engine_stored_msg *m,
                            proto_record *fields)
{
    queue_state *q = &t->queues[queue_id];
    proto_stamp_layout at = proto_record_stamp_layout((int32_t)proto_get_u32(rec + 36));
    uint64_t offset = q->w_next_offset++;
    uint64_t pos = e->w_next_log_position;
    e->w_next_log_position += size;
    proto_record_stamp(rec, &at, (int64_t)offset, (int64_t)pos, store_ms);
    uint8_t key[MSG_KEY_LEN];
    engine__key_msg(key, t->cfg.topic_id, queue_id, offset);
    rocksdb_writebatch_put_cf(b->wb, e->cf[ENGINE_CF_MSG], (const char *)key, sizeof key,
                              (const char *)rec, size);
    *m = (engine_stored_msg){
        .topic_id = t->cfg.topic_id, .queue_id = queue_id, .queue_offset = offset,
        .log_position = pos, .store_ms = store_ms, .record = rec, .record_len = size,
    };
    if (!e->nexts)
        return;
    if (proto_record_decode(rec, size, fields) < 0)
        abort(); /* encoded by the engine a moment ago */
    m->fields = fields;
    for (int h = 0; h < e->nexts; h++)
        if (e->exts[h].decl.hook.on_append)
            e->exts[h].decl.hook.on_append(&e->exts[h].env, b, m);
}

/* Stamp a timed request's records and add them to the timer family. */
static void add_timed(engine *e, writer *w, wreq *r, topic *t, int64_t now_ms)
{
    engine_batch b = {.e = e, .wb = w->wb};
    r->first_offset = 0;
    r->first_store_ms = now_ms;
    uint8_t *rec = r->records;
    for (uint32_t i = 0; i < r->n; i++) {
        uint32_t size = proto_get_u32(rec);
        proto_stamp_layout at = proto_record_stamp_layout((int32_t)proto_get_u32(rec + 36));
        uint64_t pos = e->w_next_log_position;
        e->w_next_log_position += size;
        proto_record_stamp(rec, &at, 0, (int64_t)pos, now_ms);
        r->positions[i] = pos;
        engine__timer_put(e, &b, t->cfg.topic_id, r->queue_id, r->deliver_ms, pos, now_ms, rec,
                          size);
        rec += size;
    }
}

/* Stamp one request's records and add them (and the hooks' entries) to the batch. */
static void add_append(engine *e, writer *w, wreq *r, int64_t now_ms)
{
    topic *t = engine__topics_find(e, r->topic, r->topic_len);
    if (!t || r->queue_id >= queue_limit(t)) {
        r->status = LSMQ_ENOTFOUND;
        return;
    }
    if (r->timed) {
        add_timed(e, w, r, t, now_ms);
        return;
    }
    touch(w, t, r->queue_id);
    queue_state *q = &t->queues[r->queue_id];
    int64_t store_ms = now_ms > q->w_last_store_ms ? now_ms : q->w_last_store_ms;
    engine_batch b = {.e = e, .wb = w->wb};
    r->first_offset = q->w_next_offset;
    r->first_store_ms = store_ms;

    uint8_t *rec = r->records;
    for (uint32_t i = 0; i < r->n; i++) {
        uint32_t size = proto_get_u32(rec);
        engine_stored_msg m;
        proto_record fields;
        engine__writer_put_msg(e, &b, t, r->queue_id, rec, size, store_ms, &m, &fields);
        r->positions[i] = m.log_position;
        rec += size;
    }
    q->w_last_store_ms = store_ms;
}

static void add_offset_set(engine *e, writer *w, wreq *r)
{
    const wctl *op = r->ctl;
    topic *t = engine__topics_find(e, op->name2, op->name2_len);
    if (!t) {
        r->status = LSMQ_ENOTFOUND;
        return;
    }
    uint8_t key[300];
    size_t klen = engine__key_offset(key, sizeof key, op->name, op->name_len, t->cfg.topic_id,
                             op->queue_id);
    if (!klen) {
        r->status = LSMQ_ETOOBIG;
        return;
    }
    uint8_t val[8];
    proto_put_u64(val, op->u64);
    rocksdb_writebatch_put_cf(w->wb, e->cf[ENGINE_CF_OFFSET], (const char *)key, klen,
                              (const char *)val, sizeof val);
}

/* Add the high-water marks of every touched queue and the next log position. */
static void add_marks(engine *e, writer *w)
{
    for (size_t i = 0; i < w->ntouched; i++) {
        topic *t = w->touched[i].t;
        queue_state *q = &t->queues[w->touched[i].queue_id];
        uint8_t key[HWM_KEY_LEN], val[16];
        engine__key_hwm(key, t->cfg.topic_id, w->touched[i].queue_id);
        atomic_store(&q->written_offset, q->w_next_offset);
        proto_put_u64(val, q->w_next_offset);
        proto_put_u64(val + 8, (uint64_t)q->w_last_store_ms);
        rocksdb_writebatch_put_cf(w->wb, e->cf[ENGINE_CF_META], (const char *)key, sizeof key,
                                  (const char *)val, sizeof val);
    }
    engine__timers_add_counts(e, w->wb);
    uint8_t pos[8];
    proto_put_u64(pos, e->w_next_log_position);
    rocksdb_writebatch_put_cf(w->wb, e->cf[ENGINE_CF_META], META_LOGPOS_KEY, 1,
                              (const char *)pos, sizeof pos);
}

/*
 * After the write: publish (ok) or roll back (failed) the touched queues.
 * seq is the batch's last sequence; readers see it once confirmed (confirm.c).
 */
static void settle_marks(engine *e, writer *w, int ok, uint64_t seq)
{
    for (size_t i = 0; i < w->ntouched; i++) {
        topic *t = w->touched[i].t;
        uint32_t qid = w->touched[i].queue_id;
        queue_state *q = &t->queues[qid];
        if (ok) {
            atomic_store(&q->last_store_ms, q->w_last_store_ms);
            atomic_store(&q->next_offset, q->w_next_offset);
            engine__confirm_mark(e, t->cfg.topic_id, qid, q, q->w_next_offset, seq);
        } else {
            q->w_next_offset = atomic_load(&q->next_offset);
            q->w_last_store_ms = atomic_load(&q->last_store_ms);
            atomic_store(&q->written_offset, q->w_next_offset);
        }
    }
    if (ok)
        atomic_store(&e->next_log_position, e->w_next_log_position);
    else
        e->w_next_log_position = atomic_load(&e->next_log_position);
    w->ntouched = 0;
    w->gen++;
    engine__timers_settle(e, ok);
}

/* Tell the extensions that watch the log that it grew. */
static void announce_write(engine *e)
{
    uint64_t last_seq = 0;
    for (int h = 0; h < e->nexts; h++) {
        if (!e->exts[h].decl.hook.on_write)
            continue;
        if (!last_seq) /* only this thread writes: the latest is this write's last */
            last_seq = rocksdb_get_latest_sequence_number(e->db);
        e->exts[h].decl.hook.on_write(&e->exts[h].env, last_seq);
    }
}

/* A failed write or WAL sync: no write touches the WAL again until a reopen. */
static int write_failed(engine *e, char *err, const char *what)
{
    int rc = engine__rocks_err(err);
    atomic_store(&e->write_health, rc);
    proto_log(PROTO_LOG_ERROR, "engine: %s failed, appends get '%s' until it is resolved: %s",
              what, lsmq_strerror(rc), err);
    rocksdb_free(err);
    return rc;
}

/*
 * A master whose log is watched (engine_log_watch) writes a synced batch
 * unsynced, announces it, and only then syncs the WAL: the shipper sends
 * the batch while the fsync runs, so a SYNC_MASTER send waits for the
 * longer of the two rather than for both in turn. Nobody is answered
 * before the sync either way.
 */
int engine__writer_write(engine *e, rocksdb_writebatch_t *wb, int sync)
{
    int health = atomic_load(&e->write_health);
    if (health != 0)
        return health; /* never touch the WAL again after a failed write */
    bool ship_first = sync && atomic_load_explicit(&e->log_watched, memory_order_relaxed);
    char *err = NULL;
    rocksdb_write(e->db, sync && !ship_first ? e->wo_sync : e->wo_async, wb, &err);
    if (err)
        return write_failed(e, err, "write");
    if (!sync)
        atomic_store(&e->wal_dirty, 1);
    if (!e->cfg.replica)
        announce_write(e);
    if (ship_first) {
        rocksdb_flush_wal(e->db, 1, &err);
        if (err)
            return write_failed(e, err, "WAL sync");
    }
    return 0;
}

/*
 * At the start of a group: 0 if writes may proceed. After a write error,
 * retry (at most once a second) by reopening the database once the disk
 * has room again.
 */
static int ensure_writable(engine *e, writer *w)
{
    int health = atomic_load(&e->write_health);
    if (health == 0)
        return 0;
    int64_t now = proto_mono_ms();
    if (now - w->last_recover_ms < RECOVER_RETRY_MS)
        return health;
    w->last_recover_ms = now;
    struct statvfs st;
    if (statvfs(e->store_path, &st) == 0 &&
        (uint64_t)st.f_bavail * st.f_frsize < RECOVER_MIN_FREE_BYTES)
        return health;
    if (engine__reopen(e) != 0)
        return health;
    atomic_store(&e->wal_dirty, 0);
    w->ntouched = 0;
    w->gen++;
    atomic_store(&e->write_health, 0);
    proto_log(PROTO_LOG_INFO, "engine: writes accepted again");
    return 0;
}

static void complete(wreq *r)
{
    if (r->wait) {
        pthread_mutex_lock(&r->wait->lock);
        r->wait->status = r->status;
        r->wait->done = 1;
        pthread_cond_signal(&r->wait->cond);
        pthread_mutex_unlock(&r->wait->lock);
        free(r); /* the control request, not the caller's wait */
        return;
    }
    if (r->ctl || r->apply) {
        if (r->done)
            r->done(r->done_ctx, r->status);
        free(r);
        return;
    }
    engine_append_result res = {
        .status = r->status,
        .error = r->status ? lsmq_strerror(r->status) : NULL,
        .queue_offset = r->first_offset,
        .log_position = r->n ? r->positions[0] : 0,
        .log_positions = r->positions,
        .store_ms = r->first_store_ms,
        .n = r->n,
        .last_seq = r->status == 0 ? r->last_seq : 0,
    };
    r->cb(r->ctx, &res);
    free(r);
}

/* Complete the requests [first, end); those without an error of their own get rc. */
static void complete_run(wreq *first, wreq *end, int rc)
{
    wreq *r = first;
    while (r != end) {
        wreq *next = r->next;
        if (rc != 0 && r->status == 0)
            r->status = rc;
        complete(r);
        r = next;
    }
}

/* Commit the batched requests [first, end) and complete them. */
static void commit_batched(engine *e, writer *w, wreq *first, wreq *end)
{
    int rc = 0;
    size_t msgs = 0;
    uint64_t first_seq = 0, last_seq = 0;
    if (rocksdb_writebatch_count(w->wb) > 0) {
        add_marks(e, w);
        rc = engine__writer_write(e, w->wb, e->cfg.flush_mode == ENGINE_SYNC_FLUSH);
        /* Only this thread writes, so the latest sequence is this batch's last. */
        if (rc == 0) {
            last_seq = rocksdb_get_latest_sequence_number(e->db);
            first_seq = last_seq + 1 - (uint64_t)rocksdb_writebatch_count(w->wb);
        }
        settle_marks(e, w, rc == 0, last_seq);
    } else {
        settle_marks(e, w, 1, 0);
    }
    rocksdb_writebatch_clear(w->wb);
    for (wreq *r = first; r != end; r = r->next) {
        if (!r->ctl && r->status == 0)
            msgs += r->n;
        r->last_seq = last_seq;
    }
    if (rc == 0 && msgs)
        for (int h = 0; h < e->nexts; h++)
            if (e->exts[h].decl.hook.on_commit)
                e->exts[h].decl.hook.on_commit(&e->exts[h].env, first_seq, msgs);
    complete_run(first, end, rc);
}

static int remove_range(engine *e, const wctl *op)
{
    topic *t = engine__topics_find_id(e, op->topic_id);
    if (!t || op->queue_id >= t->nqueues)
        return LSMQ_ENOTFOUND;
    queue_state *q = &t->queues[op->queue_id];
    uint64_t begin = engine__min_offset(e, t, op->queue_id);
    uint64_t end = op->u64 < q->w_next_offset ? op->u64 : q->w_next_offset;
    if (end <= begin)
        return 0;
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    engine_batch b = {.e = e, .wb = wb};
    uint8_t lo[MSG_KEY_LEN], hi[MSG_KEY_LEN];
    engine__key_msg(lo, t->cfg.topic_id, op->queue_id, 0);
    engine__key_msg(hi, t->cfg.topic_id, op->queue_id, end);
    rocksdb_writebatch_delete_range_cf(wb, e->cf[ENGINE_CF_MSG], (const char *)lo, sizeof lo,
                                       (const char *)hi, sizeof hi);
    /* The hooks read the removed messages under a view from before the write. */
    engine_view *v = NULL;
    int rc = e->nexts ? engine_view_open(e, &v) : 0;
    for (int h = 0; rc == 0 && h < e->nexts; h++)
        if (e->exts[h].decl.hook.on_remove)
            e->exts[h].decl.hook.on_remove(&e->exts[h].env, v, &b, t->cfg.topic_id,
                                           op->queue_id, begin, end);
    engine_view_close(v);
    if (rc == 0)
        rc = engine__writer_write(e, wb, 0);
    rocksdb_writebatch_destroy(wb);
    if (rc == 0) {
        atomic_store(&q->min_offset, end);
        atomic_fetch_add(&e->retention_removed, end - begin);
    }
    return rc;
}

static int put_or_delete(engine *e, engine_cf cf, const wctl *op, int del)
{
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    if (del)
        rocksdb_writebatch_delete_cf(wb, e->cf[cf], op->name, op->name_len);
    else
        rocksdb_writebatch_put_cf(wb, e->cf[cf], op->name, op->name_len, op->value,
                                  op->value_len);
    int rc = engine__writer_write(e, wb, 1);
    rocksdb_writebatch_destroy(wb);
    return rc;
}

/* engine_apply's next expected sequence after the applied one changed outside a group. */
static void reset_apply_next(engine *e)
{
    writer *w = e->w;
    pthread_mutex_lock(&w->lock);
    w->apply_next = e->w_applied_seq + 1;
    pthread_mutex_unlock(&w->lock);
}

static int set_applied(engine *e, uint64_t seq)
{
    int rc = engine__replica_record(e, rocksdb_writebatch_create(), seq);
    if (rc == 0)
        reset_apply_next(e);
    return rc;
}

static int set_position(engine *e, const wctl *op)
{
    int rc = engine__epoch_position_now(e, op->epoch, op->u64, op->history, op->history_len);
    if (rc == 0)
        reset_apply_next(e);
    return rc;
}

static int run_control(engine *e, const wctl *op)
{
    switch (op->kind) {
    case WCTL_TOPIC_PUT: return engine__topics_apply_put(e, op->topic_cfg, op->topic_out);
    case WCTL_TOPIC_DELETE: return engine__topics_apply_delete(e, op->name, op->name_len);
    case WCTL_GROUP_PUT: return put_or_delete(e, ENGINE_CF_GROUP, op, 0);
    case WCTL_GROUP_DELETE: return put_or_delete(e, ENGINE_CF_GROUP, op, 1);
    case WCTL_REMOVE: return remove_range(e, op);
    case WCTL_BARRIER: return 0;
    case WCTL_CHECKPOINT: return engine__checkpoint_now(e, op->name, op->u64_out);
    case WCTL_SET_APPLIED: return set_applied(e, op->u64);
    case WCTL_EPOCH_BEGIN: return engine__epoch_begin_now(e, op->u64, op->epoch_out);
    case WCTL_SET_POSITION: return set_position(e, op);
    case WCTL_OFFSET_SET: break; /* batched, never here */
    }
    return LSMQ_EINVAL;
}

/* Complete every request of a group with an error, writing nothing. */
static void fail_group(wreq *group, int rc)
{
    while (group) {
        wreq *next = group->next;
        group->status = rc;
        complete(group);
        group = next;
    }
}

/* ---- Ordering a group ------------------------------------------------ */

typedef struct sort_slot {
    wreq *r;
    uint32_t seq;
} sort_slot;

/* Appends by (topic, queue), offset commits last; arrival order within each. */
static int slot_cmp(const void *pa, const void *pb)
{
    const sort_slot *a = pa, *b = pb;
    int actl = a->r->ctl != NULL, bctl = b->r->ctl != NULL;
    int c = actl - bctl;
    if (c == 0 && !actl) {
        c = strcmp(a->r->topic, b->r->topic);
        if (c == 0)
            c = (a->r->queue_id > b->r->queue_id) - (a->r->queue_id < b->r->queue_id);
    }
    return c != 0 ? c : (a->seq > b->seq) - (a->seq < b->seq);
}

static bool splits_group(const wreq *r)
{
    return r->ctl && r->ctl->kind != WCTL_OFFSET_SET;
}

/*
 * Reorder a group so each queue's appends sit together (each queue's in
 * arrival order, so offsets are unchanged): then consecutive inserts into
 * the `msg` memtable (and an extension's queue-keyed ones) mostly land next
 * to each other, which a skiplist does cheaply, instead of jumping between
 * queues. Control
 * operations other than offset commits stay in place and split the group
 * into runs ordered apart.
 */
static wreq *sort_group(writer *w, wreq *group)
{
    wreq *head = NULL, **link = &head, *r = group;
    while (r) {
        if (splits_group(r)) {
            *link = r;
            link = &r->next;
            r = r->next;
            continue;
        }
        size_t n = 0;
        for (; r && !splits_group(r); r = r->next) {
            if (n == w->sorted_cap) {
                w->sorted_cap = w->sorted_cap ? w->sorted_cap * 2 : 256;
                w->sorted = proto_xrealloc(w->sorted, w->sorted_cap * sizeof *w->sorted);
            }
            w->sorted[n] = (sort_slot){r, (uint32_t)n};
            n++;
        }
        qsort(w->sorted, n, sizeof *w->sorted, slot_cmp);
        for (size_t i = 0; i < n; i++) {
            *link = w->sorted[i].r;
            link = &w->sorted[i].r->next;
        }
    }
    *link = NULL;
    return head;
}

/* ---- A replica's group: batches of its master's log ------------------- */

/* Write the batches added from [first, end) with the applied sequence, then complete them. */
static void commit_applied(engine *e, wreq *first, wreq *end)
{
    int rc = engine__replica_write(e);
    if (rc == 0) {
        for (wreq *r = first; r != end; r = r->next)
            if (r->apply && r->status == 0)
                engine__replica_mirror(e, r->records, r->bytes);
        engine__replica_settle(e);
    } else {
        e->w_applied_seq = atomic_load(&e->applied_seq);
        reset_apply_next(e); /* batches queued behind the failed ones fail too */
    }
    complete_run(first, end, rc);
}

/* Arrival order is the log's order: no sorting. Control operations split the write. */
static void process_replica_group(engine *e, wreq *group)
{
    wreq *first = group;
    wreq *r = group;
    while (r) {
        wreq *next = r->next;
        if (r->apply) {
            if (r->log_seq == e->w_applied_seq + 1) {
                engine__replica_add(e, r->records, r->bytes);
                e->w_applied_seq = r->log_seq + r->log_count - 1;
            } else {
                r->status = LSMQ_EINVAL; /* behind a batch that failed */
            }
        } else {
            commit_applied(e, first, r);
            r->next = NULL;
            r->status = run_control(e, r->ctl);
            complete(r);
            first = next;
        }
        r = next;
    }
    if (first)
        commit_applied(e, first, NULL);
}

static void process_group(engine *e, writer *w, wreq *group)
{
    int health = ensure_writable(e, w);
    if (health != 0) {
        if (e->cfg.replica) {
            e->w_applied_seq = atomic_load(&e->applied_seq);
            reset_apply_next(e);
        }
        fail_group(group, health);
        return;
    }
    if (e->cfg.replica) {
        process_replica_group(e, group);
        return;
    }
    int64_t now_ms = engine__now_ms(e);
    engine_batch b = {.e = e, .wb = w->wb};
    engine__timers_move_due(e, &b, now_ms, group ? TIMER_MOVE_WITH_APPENDS : TIMER_MOVE_MAX,
                            GROUP_MAX_BYTES);
    group = sort_group(w, group);
    wreq *batched_first = group;
    wreq *r = group;
    while (r) {
        wreq *next = r->next;
        if (!r->ctl) {
            add_append(e, w, r, now_ms);
        } else if (r->ctl->kind == WCTL_OFFSET_SET) {
            add_offset_set(e, w, r);
        } else {
            /* Commit what came before, then the control operation alone. */
            commit_batched(e, w, batched_first, r);
            r->next = NULL;
            r->status = run_control(e, r->ctl);
            complete(r);
            batched_first = next;
            now_ms = engine__now_ms(e);
        }
        r = next;
    }
    if (batched_first || rocksdb_writebatch_count(w->wb) > 0)
        commit_batched(e, w, batched_first, NULL); /* the due moves may be alone */
}

/* How long the writer may sleep before a pending message is due: -1 = until work comes. */
static int64_t due_wait_ms(engine *e)
{
    if (e->cfg.replica || e->tm.next_due_ms == INT64_MAX)
        return -1;
    if (atomic_load(&e->write_health) != 0)
        return RECOVER_RETRY_MS;
    int64_t left = e->tm.next_due_ms - engine__now_ms(e);
    return left <= 0 ? 0 : left < TIMER_WAIT_MAX_MS ? left : TIMER_WAIT_MAX_MS;
}

static void *writer_main(void *arg)
{
    engine *e = arg;
    writer *w = e->w;
    for (;;) {
        int64_t wait_ms = due_wait_ms(e);
        wreq *group = take_group(e, w, wait_ms);
        if (group || (wait_ms >= 0 && e->tm.next_due_ms <= engine__now_ms(e)))
            process_group(e, w, group);
        if (!group && stopped_and_drained(w))
            break;
    }
    return NULL;
}

/* ---- Start and stop --------------------------------------------------- */

int engine__writer_start(engine *e)
{
    writer *w = proto_xcalloc(1, sizeof *w);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->wb = rocksdb_writebatch_create();
    w->gen = 1;
    w->apply_next = e->w_applied_seq + 1;
    e->w = w;
    if (pthread_create(&w->thread, NULL, writer_main, e) != 0) {
        rocksdb_writebatch_destroy(w->wb);
        free(w);
        e->w = NULL;
        return LSMQ_EIO;
    }
    return 0;
}

void engine__writer_stop(engine *e)
{
    writer *w = e->w;
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    rocksdb_writebatch_destroy(w->wb);
    free(w->touched);
    free(w->sorted);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    free(w);
    e->w = NULL;
}

/* A replica's writer takes no change of its own: only its master's batches. */
static bool refused_on_replica(const engine *e, const wctl *op)
{
    return e->cfg.replica && op->kind != WCTL_BARRIER && op->kind != WCTL_CHECKPOINT &&
           op->kind != WCTL_SET_APPLIED && op->kind != WCTL_SET_POSITION;
}

int engine__writer_control(engine *e, const wctl *op)
{
    if (e->read_only)
        return LSMQ_EINVAL;
    if (refused_on_replica(e, op))
        return LSMQ_EREADONLY;
    if (on_writer_thread(e))
        return op->kind == WCTL_OFFSET_SET ? LSMQ_EINVAL : run_control(e, op);
    sync_wait wait = {.done = 0, .status = 0};
    pthread_mutex_init(&wait.lock, NULL);
    pthread_cond_init(&wait.cond, NULL);
    wreq *r = proto_xcalloc(1, sizeof *r);
    r->ctl = op;
    r->wait = &wait;
    int rc = enqueue(e, r, 0, 0);
    if (rc != 0) {
        free(r);
    } else {
        pthread_mutex_lock(&wait.lock);
        while (!wait.done)
            pthread_cond_wait(&wait.cond, &wait.lock);
        pthread_mutex_unlock(&wait.lock);
        rc = wait.status;
    }
    pthread_mutex_destroy(&wait.lock);
    pthread_cond_destroy(&wait.cond);
    return rc;
}

int engine__writer_control_async(engine *e, const wctl *op,
                                 void (*done)(void *ctx, int status), void *ctx)
{
    if (e->read_only)
        return LSMQ_EINVAL;
    if (refused_on_replica(e, op))
        return LSMQ_EREADONLY;
    if (op->topic_out || op->u64_out || op->epoch_out || op->history)
        return LSMQ_EINVAL; /* it points into the caller's memory */
    size_t extra = op->name_len + op->name2_len + op->value_len;
    wreq *r = proto_xcalloc(1, sizeof *r + extra);
    r->own_ctl = *op;
    if (op->topic_cfg) {
        r->own_cfg = *op->topic_cfg;
        r->own_ctl.topic_cfg = &r->own_cfg;
    }
    char *p = (char *)(r + 1);
    if (op->name_len) {
        memcpy(p, op->name, op->name_len);
        r->own_ctl.name = p;
        p += op->name_len;
    }
    if (op->name2_len) {
        memcpy(p, op->name2, op->name2_len);
        r->own_ctl.name2 = p;
        p += op->name2_len;
    }
    if (op->value_len) {
        memcpy(p, op->value, op->value_len);
        r->own_ctl.value = p;
    }
    r->ctl = &r->own_ctl;
    r->done = done;
    r->done_ctx = ctx;
    int rc = enqueue(e, r, 0, 0);
    if (rc != 0)
        free(r);
    return rc;
}

/* ---- Appends ---------------------------------------------------------- */

static void fill_record(engine *e, proto_record *pr, const char *topic_name, size_t topic_len,
                        uint32_t queue_id, const engine_msg *m)
{
    memset(pr, 0, sizeof *pr);
    pr->queue_id = (int32_t)queue_id;
    pr->flag = m->flag;
    pr->sys_flag = m->sys_flag;
    pr->born_timestamp = m->born_timestamp;
    pr->born_host = m->born_host;
    pr->store_host = e->cfg.store_host;
    pr->reconsume_times = m->reconsume_times;
    pr->prepared_txn_offset = m->prepared_txn_offset;
    pr->body = m->body;
    pr->body_len = m->body_len;
    pr->topic = topic_name;
    pr->topic_len = (uint32_t)topic_len;
    pr->props = m->props;
    pr->props_len = m->props_len;
}

/* engine_append and engine_append_timed (timed: deliver_ms is the due time). */
static int append_request(engine *e, const char *topic_name, size_t topic_len,
                          uint32_t queue_id, const engine_msg *msgs, uint32_t n, bool timed,
                          int64_t deliver_ms, engine_append_cb cb, void *ctx)
{
    if (!topic_name || topic_len == 0 || n == 0 || !cb || e->read_only)
        return LSMQ_EINVAL;
    if (e->cfg.replica)
        return LSMQ_EREADONLY;
    if (topic_len > PROTO_TOPIC_MAX)
        return LSMQ_ETOOBIG;
    if (n > GROUP_MAX_MSGS)
        return LSMQ_ETOOBIG;

    pthread_rwlock_rdlock(&e->topics_lock);
    topic *t = engine__topics_find(e, topic_name, topic_len);
    int rc = (!t || queue_id >= queue_limit(t)) ? LSMQ_ENOTFOUND : 0;
    pthread_rwlock_unlock(&e->topics_lock);
    if (rc != 0)
        return rc;

    size_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        const engine_msg *m = &msgs[i];
        if ((uint64_t)m->body_len + m->props_len > e->cfg.max_message_size ||
            m->props_len > PROTO_PROPS_MAX)
            return LSMQ_ETOOBIG;
        if ((m->body_len && !m->body) || (m->props_len && !m->props))
            return LSMQ_EINVAL;
        proto_record pr;
        fill_record(e, &pr, topic_name, topic_len, queue_id, m);
        size_t size = proto_record_size(&pr);
        if (size == 0)
            return LSMQ_EINVAL;
        total += size;
    }

    wreq *r = malloc(sizeof *r + n * sizeof(uint64_t) + total);
    if (!r)
        return LSMQ_ENOMEM;
    memset(r, 0, sizeof *r);
    r->timed = timed;
    r->deliver_ms = deliver_ms;
    r->cb = cb;
    r->ctx = ctx;
    r->n = n;
    r->queue_id = queue_id;
    r->topic_len = (uint32_t)topic_len;
    memcpy(r->topic, topic_name, topic_len);
    r->bytes = total;
    r->positions = (uint64_t *)(r + 1);
    r->records = (uint8_t *)(r->positions + n);
    uint8_t *p = r->records;
    for (uint32_t i = 0; i < n; i++) {
        proto_record pr;
        fill_record(e, &pr, topic_name, topic_len, queue_id, &msgs[i]);
        long len = proto_record_encode(&pr, p, total - (size_t)(p - r->records));
        if (len <= 0) {
            free(r);
            return LSMQ_EINVAL;
        }
        p += len;
    }
    rc = enqueue(e, r, n, total);
    if (rc != 0)
        free(r);
    return rc;
}

int engine_append(engine *e, const char *topic_name, size_t topic_len, uint32_t queue_id,
                  const engine_msg *msgs, uint32_t n, engine_append_cb cb, void *ctx)
{
    return append_request(e, topic_name, topic_len, queue_id, msgs, n, false, 0, cb, ctx);
}

int engine_append_timed(engine *e, const char *topic_name, size_t topic_len, uint32_t queue_id,
                        const engine_msg *msgs, uint32_t n, int64_t deliver_ms,
                        engine_append_cb cb, void *ctx)
{
    if (deliver_ms < 0)
        return LSMQ_EINVAL;
    return append_request(e, topic_name, topic_len, queue_id, msgs, n, true, deliver_ms, cb,
                          ctx);
}

/* ---- A replica's batches ---------------------------------------------- */

int engine__writer_apply(engine *e, const engine_log_batch *b, engine_done_fn done, void *ctx)
{
    wreq *r = malloc(sizeof *r + b->len);
    if (!r)
        return LSMQ_ENOMEM;
    memset(r, 0, sizeof *r);
    r->apply = true;
    r->done = done;
    r->done_ctx = ctx;
    r->log_seq = b->seq;
    r->log_count = b->count;
    r->n = 1;
    r->bytes = b->len;
    r->records = (uint8_t *)(r + 1);
    memcpy(r->records, b->data, b->len);

    writer *w = e->w;
    pthread_mutex_lock(&w->lock);
    /* In order, counting what is queued: the writer checks again when it gets there. */
    int rc = b->seq == w->apply_next ? push_locked(e, w, r, 1, b->len) : LSMQ_EINVAL;
    if (rc == 0)
        w->apply_next = b->seq + b->count;
    pthread_mutex_unlock(&w->lock);
    if (rc != 0)
        free(r);
    return rc;
}

typedef struct append_waiter {
    sync_wait wait;
    engine_append_result *out;
} append_waiter;

static void append_wait_cb(void *ctx, const engine_append_result *res)
{
    append_waiter *aw = ctx;
    pthread_mutex_lock(&aw->wait.lock);
    *aw->out = *res;
    aw->out->log_positions = NULL; /* only valid during the callback */
    aw->wait.status = res->status;
    aw->wait.done = 1;
    pthread_cond_signal(&aw->wait.cond);
    pthread_mutex_unlock(&aw->wait.lock);
}

int engine_append_wait(engine *e, const char *topic_name, size_t topic_len, uint32_t queue_id,
                       const engine_msg *msgs, uint32_t n, engine_append_result *out)
{
    engine_append_result local;
    append_waiter aw = {.out = out ? out : &local};
    pthread_mutex_init(&aw.wait.lock, NULL);
    pthread_cond_init(&aw.wait.cond, NULL);
    int rc = engine_append(e, topic_name, topic_len, queue_id, msgs, n, append_wait_cb, &aw);
    if (rc == 0) {
        pthread_mutex_lock(&aw.wait.lock);
        while (!aw.wait.done)
            pthread_cond_wait(&aw.wait.cond, &aw.wait.lock);
        pthread_mutex_unlock(&aw.wait.lock);
        rc = aw.wait.status;
    }
    pthread_mutex_destroy(&aw.wait.lock);
    pthread_cond_destroy(&aw.wait.cond);
    return rc;
}
