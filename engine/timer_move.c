/*
 * The writer's side of delayed delivery: storing a pending record, and the
 * due move. Both add to the group's batch, so a pending entry and its
 * delivery (or its drop) commit in one WriteBatch with the marks and the
 * counts: a crash can neither lose nor duplicate a delayed message.
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"

static void run_on_pend(engine *e, engine_batch *b, const engine_stored_msg *m)
{
    for (int h = 0; h < e->nexts; h++)
        if (e->exts[h].decl.hook.on_pend)
            e->exts[h].decl.hook.on_pend(&e->exts[h].env, b, m);
}

void engine__timer_put(engine *e, engine_batch *b, uint32_t topic_id, uint32_t queue_id,
                       int64_t deliver_ms, uint64_t log_position, int64_t store_ms,
                       uint8_t *rec, uint32_t size)
{
    uint8_t key[ENGINE_TIMER_KEY_LEN], head[TIMER_VAL_HEADER];
    engine_timer_key(key, deliver_ms, log_position);
    proto_put_u32(head, topic_id);
    proto_put_u32(head + 4, queue_id);
    const char *kp[1] = {(const char *)key}, *vp[2] = {(const char *)head, (const char *)rec};
    size_t ks[1] = {sizeof key}, vs[2] = {sizeof head, size};
    rocksdb_writebatch_putv_cf(b->wb, e->cf[ENGINE_CF_TIMER], 1, kp, ks, 2, vp, vs);
    engine__timers_count(e, topic_id, 1);
    if (deliver_ms < e->tm.next_due_ms) {
        e->tm.next_due_ms = deliver_ms;
        e->tm.next_due_pos = 0;
    }
    if (!e->nexts)
        return;
    proto_record fields;
    if (proto_record_decode(rec, size, &fields) < 0)
        abort(); /* encoded by engine_append_timed a moment ago */
    engine_stored_msg m = {
        .topic_id = topic_id, .queue_id = ENGINE_QUEUE_PENDING,
        .queue_offset = (uint64_t)deliver_ms, .log_position = log_position,
        .store_ms = store_ms, .record = rec, .record_len = size, .fields = &fields,
    };
    run_on_pend(e, b, &m);
}

static void run_on_deliver(engine *e, engine_batch *b, uint64_t old_position,
                           int64_t old_store_ms, const engine_stored_msg *m)
{
    for (int h = 0; h < e->nexts; h++)
        if (e->exts[h].decl.hook.on_deliver)
            e->exts[h].decl.hook.on_deliver(&e->exts[h].env, b, old_position, old_store_ms, m);
}

static uint8_t *scratch(timer_state *tm, size_t size)
{
    if (size > tm->buf_cap) {
        tm->buf_cap = size > 2 * tm->buf_cap ? size : 2 * tm->buf_cap;
        tm->buf = proto_xrealloc(tm->buf, tm->buf_cap);
    }
    return tm->buf;
}

static void note_moved(timer_state *tm, queue_state *q, uint32_t topic_id, uint32_t queue_id)
{
    if (q->w_moved_gen == tm->gen)
        return;
    q->w_moved_gen = tm->gen;
    if (tm->nmoved == tm->moved_cap) {
        tm->moved_cap = tm->moved_cap ? tm->moved_cap * 2 : 16;
        tm->moved = proto_xrealloc(tm->moved, tm->moved_cap * sizeof *tm->moved);
    }
    tm->moved[tm->nmoved++] = (moved_queue){topic_id, queue_id};
}

/* The topic a pending message goes to, with room for its queue; NULL when it is gone. */
static topic *target_of(engine *e, uint32_t topic_id, uint32_t queue_id)
{
    topic *t = engine__topics_find_id(e, topic_id);
    if (t && queue_id >= t->nqueues) {
        if (queue_id >= MAX_QUEUES_PER_TOPIC)
            return NULL;
        /* The topic shrank since the send: deliver anyway, as a shrink keeps data. */
        pthread_rwlock_wrlock(&e->topics_lock);
        engine__topics_grow_queues(t, queue_id + 1);
        pthread_rwlock_unlock(&e->topics_lock);
    }
    return t;
}

/* Deliver (or drop) one due entry: restamp, append, delete the entry. */
static void move_one(engine *e, engine_batch *b, const uint8_t *key, size_t klen,
                     const uint8_t *val, size_t vlen, int64_t now_ms)
{
    int64_t due;
    uint64_t old_pos;
    rocksdb_writebatch_delete_cf(b->wb, e->cf[ENGINE_CF_TIMER], (const char *)key, klen);
    if (!engine_timer_key_parse(key, klen, &due, &old_pos) || vlen <= TIMER_VAL_HEADER) {
        proto_log(PROTO_LOG_WARN, "engine: dropping a malformed timer entry");
        return;
    }
    uint32_t topic_id = proto_get_u32(val), queue_id = proto_get_u32(val + 4);
    uint32_t size = (uint32_t)(vlen - TIMER_VAL_HEADER);
    engine__timers_count(e, topic_id, -1);
    uint8_t *rec = scratch(&e->tm, size);
    memcpy(rec, val + TIMER_VAL_HEADER, size);
    proto_record fields;
    topic *t = target_of(e, topic_id, queue_id);
    if (!t || proto_record_decode(rec, size, &fields) <= 0) {
        if (t)
            proto_log(PROTO_LOG_ERROR, "engine: a pending message at log position %llu does "
                      "not decode: dropped", (unsigned long long)old_pos);
        run_on_deliver(e, b, old_pos, 0, NULL);
        return;
    }
    int64_t old_store_ms = fields.store_timestamp;
    engine__writer_touch(e, t, queue_id);
    queue_state *q = &t->queues[queue_id];
    int64_t store_ms = now_ms > q->w_last_store_ms ? now_ms : q->w_last_store_ms;
    q->w_last_store_ms = store_ms;
    engine_stored_msg m;
    engine__writer_put_msg(e, b, t, queue_id, rec, size, store_ms, &m, &fields);
    note_moved(&e->tm, q, topic_id, queue_id);
    run_on_deliver(e, b, old_pos, old_store_ms, &m);
}

/* The first due time at or after from_ms, or INT64_MAX (INT64_MIN on a read error). */
static int64_t first_due_from(engine *e, int64_t from_ms)
{
    uint8_t lo[ENGINE_TIMER_KEY_LEN];
    engine_timer_key(lo, from_ms, 0);
    rocksdb_readoptions_set_iterate_lower_bound(e->tm.ro, (const char *)lo, sizeof lo);
    rocksdb_readoptions_set_iterate_upper_bound(e->tm.ro, NULL, 0);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(e->db, e->tm.ro, e->cf[ENGINE_CF_TIMER]);
    int64_t due = INT64_MAX;
    uint64_t pos;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        if (engine_timer_key_parse(k, klen, &due, &pos))
            break; /* a malformed key (none is ever written) is skipped */
        due = INT64_MAX;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if (err) {
        proto_log(PROTO_LOG_WARN, "engine: reading the timer family: %s", err);
        rocksdb_free(err);
        return from_ms; /* look again next time */
    }
    return due;
}

size_t engine__timers_move_due(engine *e, engine_batch *b, int64_t now_ms, size_t max,
                               size_t max_bytes)
{
    timer_state *tm = &e->tm;
    if (tm->next_due_ms > now_ms || now_ms < 0 || !e->cf[ENGINE_CF_TIMER])
        return 0;
    if (!tm->ro)
        tm->ro = rocksdb_readoptions_create();
    tm->due_before_move = tm->next_due_ms;
    /* Only tombstones lie before the next due key (a burst of one due time leaves
     * many): start past them rather than skip them again in every group. */
    uint8_t lo[ENGINE_TIMER_KEY_LEN], hi[ENGINE_TIMER_KEY_LEN];
    engine_timer_key(lo, tm->next_due_ms < 0 ? 0 : tm->next_due_ms,
                     tm->next_due_ms < 0 ? 0 : tm->next_due_pos);
    engine_timer_key(hi, now_ms + 1, 0);
    rocksdb_readoptions_set_iterate_lower_bound(tm->ro, (const char *)lo, sizeof lo);
    rocksdb_readoptions_set_iterate_upper_bound(tm->ro, (const char *)hi, sizeof hi);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(e->db, tm->ro, e->cf[ENGINE_CF_TIMER]);
    size_t n = 0, bytes = 0;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it) && n < max && bytes < max_bytes;
         rocksdb_iter_next(it), n++) {
        size_t klen, vlen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
        move_one(e, b, k, klen, v, vlen, now_ms);
        bytes += vlen;
    }
    bool more = rocksdb_iter_valid(it);
    int64_t more_due = now_ms;
    uint64_t more_pos = 0;
    if (more) {
        size_t klen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        if (!engine_timer_key_parse(k, klen, &more_due, &more_pos)) {
            more_due = now_ms;
            more_pos = 0;
        }
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if (err) {
        proto_log(PROTO_LOG_WARN, "engine: reading the timer family: %s", err);
        rocksdb_free(err);
        return n; /* next_due_ms stays: the next group tries again */
    }
    /* The group's timed appends come after this and lower it again if need be. */
    tm->next_due_ms = more ? more_due : first_due_from(e, now_ms + 1);
    tm->next_due_pos = more ? more_pos : 0;
    return n;
}
