/*
 * The replica role: the master's log applied through this store's writer.
 *
 * engine_apply checks a shipped batch on the caller's thread (it must parse
 * and name only families this store has) and queues it. The writer takes
 * the queued batches of a group, joins their records under one header,
 * adds the applied sequence (meta "A": the last master sequence in the
 * group) and commits it all in ONE write, so the sequence and the batches
 * it names are durable together: a crash at any point leaves the store at
 * a batch boundary that "A" names (RocksDB recovers a prefix of the WAL's
 * writes), and resuming from A + 1 applies nothing twice and skips nothing.
 *
 * The write is synced as the replica's own flush mode says, as upstream's
 * slaves do: SYNC_FLUSH syncs it before anyone hears of it; ASYNC_FLUSH
 * hands it to the OS (it survives the process's crash, not the machine's)
 * and leaves the sync to wal_sync.c, every flush_interval_ms.
 *
 * Only after the write does the writer walk each batch again to show it in
 * memory, as the master's own writer would have after its write: topics
 * created, updated or deleted, the next topic id, each queue's high-water
 * mark and last store time, the min offset a retention range moved, the
 * next log position. Then it publishes the applied sequence and tells the
 * extensions which queues grew (on_advance), and the callers learn the
 * outcome.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"

typedef struct advanced {
    uint32_t topic_id;
    uint32_t queue_id;
} advanced;

struct replica_writer {
    uint8_t *buf;              /* header + the records of the group's batches */
    size_t len, cap;
    uint32_t count;            /* records in buf */
    advanced *adv;             /* queues whose max offset moved in this write */
    size_t nadv, adv_cap;
    uint32_t gen;              /* marks queues already in adv (queue_state.w_touched_gen) */
};

static struct replica_writer *scratch(engine *e)
{
    if (!e->rw) {
        e->rw = proto_xcalloc(1, sizeof *e->rw);
        e->rw->gen = 1;
    }
    return e->rw;
}

void engine__replica_free(engine *e)
{
    if (!e->rw)
        return;
    free(e->rw->buf);
    free(e->rw->adv);
    free(e->rw);
    e->rw = NULL;
}

/* ---- Checking a batch (caller's thread) ---- */

static int check_op(void *ctx, const batch_op *op)
{
    char *why = ctx;
    if (op->cf == ENGINE_CF_META && op->kind == BATCH_PUT && op->klen == 1 &&
        op->key[0] == META_VERSION_KEY[0] && op->vlen == 4 &&
        proto_get_u32(op->val) > ENGINE_FORMAT_VERSION) {
        snprintf(why, 256, "the master writes store format %u, this build knows up to %u",
                 proto_get_u32(op->val), ENGINE_FORMAT_VERSION);
        return LSMQ_EVERSION;
    }
    if (op->cf != ENGINE_CF_TOPIC || op->kind != BATCH_PUT)
        return 0;
    engine_topic_config c;
    if (engine__topic_decode((const char *)op->key, op->klen, (const char *)op->val, op->vlen,
                             &c) != 0) {
        snprintf(why, 256, "the config of topic '%.*s' does not decode", (int)op->klen,
                 (const char *)op->key);
        return LSMQ_ECORRUPT;
    }
    return 0;
}

int engine_apply(engine *e, const engine_log_batch *b, engine_done_fn done, void *ctx)
{
    if (!e->cfg.replica || e->read_only || !b || !b->data || b->len < WRITEBATCH_HEADER_LEN ||
        b->count == 0 || engine__batch_count(b->data) != b->count)
        return LSMQ_EINVAL;
    char why[256] = "";
    int rc = engine__batch_walk(e, b->data, b->len, check_op, why, why, sizeof why);
    if (rc != 0) {
        proto_log(PROTO_LOG_ERROR, "engine: the master's batch at sequence %llu cannot be "
                  "applied: %s", (unsigned long long)b->seq, why);
        return rc;
    }
    return engine__writer_apply(e, b, done, ctx);
}

uint64_t engine_applied_sequence(engine *e) { return atomic_load(&e->applied_seq); }

int engine_set_applied_sequence(engine *e, uint64_t seq)
{
    if (!e->cfg.replica || e->read_only)
        return LSMQ_EINVAL;
    wctl op = {.kind = WCTL_SET_APPLIED, .u64 = seq};
    return engine__writer_control(e, &op);
}

bool engine_is_replica(const engine *e) { return e->cfg.replica; }

/* ---- The write (writer thread) ---- */

void engine__replica_add(engine *e, const uint8_t *data, size_t len)
{
    struct replica_writer *rw = scratch(e);
    size_t records = len - WRITEBATCH_HEADER_LEN;
    size_t need = (rw->len ? rw->len : WRITEBATCH_HEADER_LEN) + records;
    if (need > rw->cap) {
        rw->cap = rw->cap ? rw->cap : 1u << 16;
        while (rw->cap < need)
            rw->cap *= 2;
        rw->buf = proto_xrealloc(rw->buf, rw->cap);
    }
    if (!rw->len) {
        memset(rw->buf, 0, WRITEBATCH_HEADER_LEN); /* RocksDB assigns the sequence */
        rw->len = WRITEBATCH_HEADER_LEN;
    }
    memcpy(rw->buf + rw->len, data + WRITEBATCH_HEADER_LEN, records);
    rw->len += records;
    rw->count += engine__batch_count(data);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

int engine__replica_write(engine *e)
{
    int sync = e->cfg.flush_mode == ENGINE_SYNC_FLUSH;
    struct replica_writer *rw = scratch(e);
    if (!rw->len)
        return 0;
    put_le32(rw->buf + 8, rw->count);
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create_from((const char *)rw->buf, rw->len);
    uint8_t applied[8];
    proto_put_u64(applied, e->w_applied_seq);
    rocksdb_writebatch_put_cf(wb, e->cf[ENGINE_CF_META], META_APPLIED_KEY, 1,
                              (const char *)applied, sizeof applied);
    int rc = engine__writer_write(e, wb, sync);
    rocksdb_writebatch_destroy(wb);
    rw->len = 0;
    rw->count = 0;
    return rc;
}

int engine__replica_record(engine *e, rocksdb_writebatch_t *wb, uint64_t seq)
{
    uint8_t applied[8];
    proto_put_u64(applied, seq);
    rocksdb_writebatch_put_cf(wb, e->cf[ENGINE_CF_META], META_APPLIED_KEY, 1,
                              (const char *)applied, sizeof applied);
    int rc = engine__writer_write(e, wb, 1);
    rocksdb_writebatch_destroy(wb);
    if (rc == 0) {
        e->w_applied_seq = seq;
        atomic_store(&e->applied_seq, seq);
    }
    return rc;
}

/* ---- The in-memory state (writer thread, after the write) ---- */

static void note_advanced(engine *e, topic *t, uint32_t queue_id)
{
    struct replica_writer *rw = scratch(e);
    queue_state *q = &t->queues[queue_id];
    if (q->w_touched_gen == rw->gen)
        return;
    q->w_touched_gen = rw->gen;
    if (rw->nadv == rw->adv_cap) {
        rw->adv_cap = rw->adv_cap ? rw->adv_cap * 2 : 64;
        rw->adv = proto_xrealloc(rw->adv, rw->adv_cap * sizeof *rw->adv);
    }
    rw->adv[rw->nadv++] = (advanced){t->cfg.topic_id, queue_id};
}

/* A high-water mark ("H" topic queue -> next offset, last store ms). */
static void mirror_hwm(engine *e, const batch_op *op)
{
    if (op->vlen != HWM_VAL_LEN)
        return;
    topic *t = engine__topics_find_id(e, proto_get_u32(op->key + 1));
    uint32_t qid = proto_get_u32(op->key + 5);
    if (!t || qid >= MAX_QUEUES_PER_TOPIC)
        return; /* as loading ignores marks of deleted topics */
    if (qid >= t->nqueues) {
        pthread_rwlock_wrlock(&e->topics_lock);
        engine__topics_grow_queues(t, qid + 1);
        pthread_rwlock_unlock(&e->topics_lock);
    }
    queue_state *q = &t->queues[qid];
    uint64_t next = proto_get_u64(op->val);
    int64_t last_ms = (int64_t)proto_get_u64(op->val + 8);
    uint64_t before = atomic_load(&q->next_offset);
    atomic_store(&q->last_store_ms, last_ms);
    atomic_store(&q->next_offset, next);
    if (!e->cfg.confirmed_reads)
        atomic_store(&q->visible_offset, next); /* else once confirmed: settle marks it */
    atomic_store(&q->written_offset, next);
    q->w_next_offset = next;
    q->w_last_store_ms = last_ms;
    if (next > before)
        note_advanced(e, t, qid);
}

static void mirror_meta(engine *e, const batch_op *op)
{
    if (op->klen > 0 && op->key[0] == META_PENDING_KEY[0] && op->kind != BATCH_DELETE_RANGE)
        engine__timers_mirror(e, op->key, op->klen, op->val, op->vlen,
                              op->kind == BATCH_DELETE);
    if (op->kind != BATCH_PUT || op->klen == 0)
        return; /* deletes: the marks of a deleted topic */
    if (op->key[0] == 'H' && op->klen == HWM_KEY_LEN) {
        mirror_hwm(e, op);
    } else if (op->klen == 1 && op->key[0] == META_LOGPOS_KEY[0] && op->vlen == 8) {
        uint64_t pos = proto_get_u64(op->val);
        e->w_next_log_position = pos;
        atomic_store(&e->next_log_position, pos);
    } else if (op->klen == 1 && op->key[0] == META_TOPICSEQ_KEY[0] && op->vlen == 4) {
        e->next_topic_id = proto_get_u32(op->val);
    } else if (op->klen == 1 && op->key[0] == META_VERSION_KEY[0] && op->vlen == 4) {
        e->format_version = proto_get_u32(op->val);
    }
}

/* Retention removed [0, end) of one queue: its first live offset is end. */
static void mirror_cut(engine *e, const batch_op *op)
{
    engine_msg_pos lo, hi;
    if (!engine__key_msg_parse(op->key, op->klen, &lo) ||
        !engine__key_msg_parse(op->val, op->vlen, &hi) || lo.topic_id != hi.topic_id ||
        lo.queue_id != hi.queue_id)
        return; /* a whole topic's range: the topic goes with its record */
    topic *t = engine__topics_find_id(e, lo.topic_id);
    if (t && lo.queue_id < t->nqueues)
        atomic_store(&t->queues[lo.queue_id].min_offset, hi.queue_offset);
}

static int mirror_op(void *ctx, const batch_op *op)
{
    engine *e = ctx;
    switch (op->cf) {
    case ENGINE_CF_TOPIC:
        if (op->kind == BATCH_PUT) {
            engine_topic_config c;
            if (engine__topic_decode((const char *)op->key, op->klen, (const char *)op->val,
                                     op->vlen, &c) == 0)
                engine__topics_publish_put(e, &c);
        } else if (op->kind == BATCH_DELETE) {
            engine__topics_publish_delete(e, (const char *)op->key, op->klen);
        }
        break;
    case ENGINE_CF_META:
        mirror_meta(e, op);
        break;
    case ENGINE_CF_MSG:
        if (op->kind == BATCH_DELETE_RANGE)
            mirror_cut(e, op);
        break;
    default:
        break; /* groups, offsets and the extensions' entries live only on disk */
    }
    return 0;
}

void engine__replica_mirror(engine *e, const uint8_t *data, size_t len)
{
    char why[256];
    /* Checked by engine_apply: the walk cannot fail now. */
    if (engine__batch_walk(e, data, len, mirror_op, e, why, sizeof why) != 0)
        proto_log(PROTO_LOG_ERROR, "engine: an applied batch no longer decodes: %s", why);
}

void engine__replica_settle(engine *e)
{
    struct replica_writer *rw = scratch(e);
    atomic_store(&e->applied_seq, e->w_applied_seq);
    for (size_t i = 0; i < rw->nadv; i++) {
        topic *t = engine__topics_find_id(e, rw->adv[i].topic_id);
        if (!t)
            continue; /* deleted later in the same write */
        queue_state *q = &t->queues[rw->adv[i].queue_id];
        uint64_t max = atomic_load(&q->next_offset);
        engine__confirm_mark(e, rw->adv[i].topic_id, rw->adv[i].queue_id, q, max,
                             e->w_applied_seq);
        for (int h = 0; h < e->nexts; h++)
            if (e->exts[h].decl.hook.on_advance)
                e->exts[h].decl.hook.on_advance(&e->exts[h].env, rw->adv[i].topic_id,
                                                rw->adv[i].queue_id, max);
    }
    rw->nadv = 0;
    rw->gen++;
}
