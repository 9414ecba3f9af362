/*
 * Delayed delivery's bookkeeping: the timer keys, the pending counts of
 * meta "P" (loaded at open, changed by the writer in the batch that adds or
 * moves a pending message, mirrored by a replica) and the earliest due
 * time the writer sleeps towards (found at open with one seek).
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"

void engine_timer_key(uint8_t out[16], int64_t deliver_ms, uint64_t log_position)
{
    proto_put_u64(out, (uint64_t)deliver_ms);
    proto_put_u64(out + 8, log_position);
}

bool engine_timer_key_parse(const uint8_t *k, size_t len, int64_t *deliver_ms,
                            uint64_t *log_position)
{
    if (len != ENGINE_TIMER_KEY_LEN)
        return false;
    *deliver_ms = (int64_t)proto_get_u64(k);
    *log_position = proto_get_u64(k + 8);
    return true;
}

void engine__timers_init(engine *e)
{
    pthread_mutex_init(&e->tm.lock, NULL);
    e->tm.next_due_ms = INT64_MAX;
    e->tm.due_before_move = INT64_MAX;
    e->tm.gen = 1;
}

static void clear_counts(engine *e)
{
    pend_count *c, *tmp;
    pthread_mutex_lock(&e->tm.lock);
    HASH_ITER(hh, e->tm.counts, c, tmp) {
        HASH_DEL(e->tm.counts, c);
        free(c);
    }
    pthread_mutex_unlock(&e->tm.lock);
    atomic_store(&e->tm.total, 0);
    e->tm.w_total = 0;
    e->tm.ntouched = 0;
}

void engine__timers_free(engine *e)
{
    clear_counts(e);
    free(e->tm.touched);
    free(e->tm.moved);
    free(e->tm.buf);
    if (e->tm.ro)
        rocksdb_readoptions_destroy(e->tm.ro);
    pthread_mutex_destroy(&e->tm.lock);
}

/* The count of a topic, made when absent (writer thread, or open). */
static pend_count *count_of(engine *e, uint32_t topic_id)
{
    pend_count *c;
    HASH_FIND(hh, e->tm.counts, &topic_id, sizeof topic_id, c);
    if (c)
        return c;
    c = proto_xcalloc(1, sizeof *c);
    c->topic_id = topic_id;
    pthread_mutex_lock(&e->tm.lock);
    HASH_ADD(hh, e->tm.counts, topic_id, sizeof c->topic_id, c);
    pthread_mutex_unlock(&e->tm.lock);
    return c;
}

static void set_loaded(engine *e, uint32_t topic_id, uint64_t n)
{
    pend_count *c = count_of(e, topic_id);
    uint64_t old = atomic_load(&c->count);
    atomic_store(&c->count, n);
    c->w_count = n;
    e->tm.w_total = e->tm.w_total - old + n;
    atomic_store(&e->tm.total, e->tm.w_total);
}

static int load_counts(engine *e, char *errbuf, size_t errlen)
{
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(e->db, e->ro_default, e->cf[ENGINE_CF_META]);
    rocksdb_iter_seek(it, META_PENDING_KEY, 1);
    for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        if (klen == 0 || k[0] != META_PENDING_KEY[0])
            break;
        if (klen == PENDING_KEY_LEN && vlen == 8)
            set_loaded(e, proto_get_u32((const uint8_t *)k + 1),
                       proto_get_u64((const uint8_t *)v));
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if (err) {
        engine__fail(errbuf, errlen, "reading the pending counts: %s", engine__one_line(err));
        rocksdb_free(err);
        return LSMQ_EIO;
    }
    return 0;
}

/* The first pending entry's due time, or INT64_MAX. */
static int load_next_due(engine *e, char *errbuf, size_t errlen)
{
    e->tm.next_due_ms = INT64_MAX;
    e->tm.next_due_pos = 0;
    if (!e->cf[ENGINE_CF_TIMER])
        return 0;
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(e->db, e->ro_default, e->cf[ENGINE_CF_TIMER]);
    /* A malformed key (none is ever written) is skipped, not waited for. */
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        int64_t due;
        uint64_t pos;
        if (engine_timer_key_parse(k, klen, &due, &pos)) {
            e->tm.next_due_ms = due;
            e->tm.next_due_pos = pos;
            break;
        }
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if (err) {
        engine__fail(errbuf, errlen, "reading the timer family: %s", engine__one_line(err));
        rocksdb_free(err);
        return LSMQ_EIO;
    }
    e->tm.due_before_move = e->tm.next_due_ms;
    return 0;
}

int engine__timers_load(engine *e, char *errbuf, size_t errlen)
{
    clear_counts(e);
    int rc = load_counts(e, errbuf, errlen);
    if (rc == 0 && !e->read_only)
        rc = load_next_due(e, errbuf, errlen);
    return rc;
}

void engine__timers_count(engine *e, uint32_t topic_id, int64_t delta)
{
    pend_count *c = count_of(e, topic_id);
    if (c->w_touched_gen != e->tm.gen) {
        c->w_touched_gen = e->tm.gen;
        if (e->tm.ntouched == e->tm.touched_cap) {
            e->tm.touched_cap = e->tm.touched_cap ? e->tm.touched_cap * 2 : 16;
            e->tm.touched =
                proto_xrealloc(e->tm.touched, e->tm.touched_cap * sizeof *e->tm.touched);
        }
        e->tm.touched[e->tm.ntouched++] = c;
    }
    if (delta < 0 && c->w_count < (uint64_t)-delta)
        delta = -(int64_t)c->w_count; /* never below 0, whatever an old store says */
    c->w_count += (uint64_t)delta;
    e->tm.w_total += (uint64_t)delta;
}

void engine__timers_add_counts(engine *e, rocksdb_writebatch_t *wb)
{
    for (size_t i = 0; i < e->tm.ntouched; i++) {
        pend_count *c = e->tm.touched[i];
        uint8_t key[PENDING_KEY_LEN], val[8];
        key[0] = META_PENDING_KEY[0];
        proto_put_u32(key + 1, c->topic_id);
        if (c->w_count == 0) {
            rocksdb_writebatch_delete_cf(wb, e->cf[ENGINE_CF_META], (const char *)key,
                                         sizeof key);
            continue;
        }
        proto_put_u64(val, c->w_count);
        rocksdb_writebatch_put_cf(wb, e->cf[ENGINE_CF_META], (const char *)key, sizeof key,
                                  (const char *)val, sizeof val);
    }
}

void engine__timers_settle(engine *e, bool ok)
{
    timer_state *tm = &e->tm;
    for (size_t i = 0; i < tm->ntouched; i++) {
        pend_count *c = tm->touched[i];
        if (ok)
            atomic_store(&c->count, c->w_count);
        else
            c->w_count = atomic_load(&c->count);
    }
    if (ok) {
        atomic_store(&tm->total, tm->w_total);
    } else {
        tm->w_total = atomic_load(&tm->total);
        /* The moved entries are still there: look from where the move began. */
        if (tm->due_before_move < tm->next_due_ms)
            tm->next_due_ms = tm->due_before_move;
        tm->next_due_pos = 0;
    }
    tm->due_before_move = tm->next_due_ms;
    tm->ntouched = 0;
    tm->gen++;
    for (size_t i = 0; ok && i < tm->nmoved; i++) {
        topic *t = engine__topics_find_id(e, tm->moved[i].topic_id);
        if (!t)
            continue;
        uint64_t max = atomic_load(&t->queues[tm->moved[i].queue_id].next_offset);
        for (int h = 0; h < e->nexts; h++)
            if (e->exts[h].decl.hook.on_advance)
                e->exts[h].decl.hook.on_advance(&e->exts[h].env, tm->moved[i].topic_id,
                                                tm->moved[i].queue_id, max);
    }
    tm->nmoved = 0;
}

void engine__timers_mirror(engine *e, const uint8_t *key, size_t klen, const uint8_t *val,
                           size_t vlen, bool deleted)
{
    if (klen != PENDING_KEY_LEN || (!deleted && vlen != 8))
        return;
    set_loaded(e, proto_get_u32(key + 1), deleted ? 0 : proto_get_u64(val));
}

uint64_t engine_timer_pending(engine *e, uint32_t topic_id)
{
    pend_count *c;
    pthread_mutex_lock(&e->tm.lock);
    HASH_FIND(hh, e->tm.counts, &topic_id, sizeof topic_id, c);
    uint64_t n = c ? atomic_load(&c->count) : 0;
    pthread_mutex_unlock(&e->tm.lock);
    return n;
}

uint64_t engine_timer_pending_total(engine *e) { return atomic_load(&e->tm.total); }

int engine_view_timers(const engine_view *v, int64_t from_ms, int64_t to_ms,
                       engine_pending_fn fn, void *ctx)
{
    if (from_ms < 0)
        from_ms = 0;
    if (to_ms <= from_ms)
        return 0;
    uint8_t lo[ENGINE_TIMER_KEY_LEN], hi[ENGINE_TIMER_KEY_LEN];
    engine_timer_key(lo, from_ms, 0);
    engine_timer_key(hi, to_ms, 0);
    engine_iter *it = engine_iter_create(v, ENGINE_CF_TIMER, lo, sizeof lo, hi, sizeof hi,
                                         ENGINE_ITER_SCAN);
    if (!it)
        return 0;
    int rc = 0;
    for (engine_iter_seek(it, NULL, 0); rc == 0 && engine_iter_valid(it); engine_iter_next(it)) {
        size_t klen, vlen;
        const uint8_t *k = engine_iter_key(it, &klen);
        const uint8_t *val = engine_iter_value(it, &vlen);
        engine_pending_msg m;
        if (!engine_timer_key_parse(k, klen, &m.deliver_ms, &m.log_position) ||
            vlen <= TIMER_VAL_HEADER)
            continue;
        m.topic_id = proto_get_u32(val);
        m.queue_id = proto_get_u32(val + 4);
        m.record = val + TIMER_VAL_HEADER;
        m.record_len = vlen - TIMER_VAL_HEADER;
        rc = fn(ctx, &m);
    }
    char err[256];
    if (engine_iter_error(it, err, sizeof err) != 0) {
        proto_log(PROTO_LOG_WARN, "engine: listing pending messages failed: %s", err);
        rc = LSMQ_EIO;
    }
    engine_iter_destroy(it);
    return rc;
}
