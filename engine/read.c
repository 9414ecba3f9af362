/*
 * Reads: a run of one queue's stored records from an offset, returned
 * concatenated as a pull response body needs them, and the queue's min and
 * max offsets. Reads never take the writer's path; they see only what the
 * writer has published, and how far the write under way reaches (an offset
 * within it is "nothing yet", not a bad offset).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "log.h"

uint64_t engine__first_offset(engine *e, const rocksdb_snapshot_t *snap, uint32_t topic_id,
                             uint32_t queue_id, uint64_t max)
{
    if (max == 0)
        return 0;
    uint8_t lo[MSG_KEY_LEN], hi[MSG_KEY_LEN];
    engine__key_msg(lo, topic_id, queue_id, 0);
    engine__key_msg(hi, topic_id, queue_id, max);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi, sizeof hi);
    rocksdb_readoptions_set_prefix_same_as_start(ro, 1);
    if (snap)
        rocksdb_readoptions_set_snapshot(ro, snap);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(e->db, ro, e->cf[ENGINE_CF_MSG]);
    rocksdb_iter_seek(it, (const char *)lo, sizeof lo);
    uint64_t off = max;
    if (rocksdb_iter_valid(it)) {
        size_t klen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        if (klen == MSG_KEY_LEN)
            off = proto_get_u64(k + 8);
    }
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    return off < max ? off : max;
}

uint64_t engine__min_offset(engine *e, topic *t, uint32_t queue_id)
{
    queue_state *q = &t->queues[queue_id];
    uint64_t min = atomic_load(&q->min_offset);
    if (min != MIN_OFFSET_UNKNOWN)
        return min;
    uint64_t found =
        engine__first_offset(e, NULL, t->cfg.topic_id, queue_id, atomic_load(&q->next_offset));
    uint64_t expected = MIN_OFFSET_UNKNOWN;
    if (!atomic_compare_exchange_strong(&q->min_offset, &expected, found))
        return expected; /* retention set it meanwhile; trust that */
    return found;
}

typedef struct queue_view {
    uint32_t topic_id;
    uint64_t min_offset;
    uint64_t max_offset;
    uint64_t written_offset; /* max_offset, or beyond it while a write is under way */
} queue_view;

/* Resolve a queue under the topics lock; LSMQ_ENOTFOUND if absent. */
static int view_queue(engine *e, topic *t, uint32_t queue_id, queue_view *v)
{
    if (!t || queue_id >= t->nqueues)
        return LSMQ_ENOTFOUND;
    uint32_t limit = t->cfg.read_queue_nums > t->cfg.write_queue_nums ? t->cfg.read_queue_nums
                                                                      : t->cfg.write_queue_nums;
    if (queue_id >= limit)
        return LSMQ_ENOTFOUND;
    v->topic_id = t->cfg.topic_id;
    v->max_offset = atomic_load(&t->queues[queue_id].visible_offset);
    /* Loaded after max_offset: the writer moves it first, and back only when it fails. */
    v->written_offset = atomic_load(&t->queues[queue_id].written_offset);
    v->min_offset = engine__min_offset(e, t, queue_id);
    return 0;
}

/* Copy records from offset on; the iterator sees only keys of this queue. */
static int read_records(engine *e, const queue_view *v, uint32_t queue_id, uint64_t offset,
                        uint32_t max_count, size_t max_bytes, engine_read_result *out)
{
    uint8_t lo[MSG_KEY_LEN], hi[MSG_KEY_LEN];
    engine__key_msg(lo, v->topic_id, queue_id, offset);
    engine__key_msg(hi, v->topic_id, queue_id, v->max_offset);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_iterate_upper_bound(ro, (const char *)hi, sizeof hi);
    rocksdb_readoptions_set_prefix_same_as_start(ro, 1);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(e->db, ro, e->cf[ENGINE_CF_MSG]);

    size_t cap = 0, len = 0;
    uint8_t *buf = NULL;
    uint32_t count = 0;
    uint64_t expect = offset;
    int rc = 0;
    for (rocksdb_iter_seek(it, (const char *)lo, sizeof lo);
         rocksdb_iter_valid(it) && count < max_count; rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        const char *val = rocksdb_iter_value(it, &vlen);
        uint64_t off = proto_get_u64(k + 8);
        if (count == 0 && off != expect)
            expect = off; /* retention removed the start meanwhile */
        if (off != expect)
            break;
        proto_record pr;
        if (proto_record_decode((const uint8_t *)val, vlen, &pr) != (long)vlen) {
            /* Hand out the good records before it; report it when it comes first. */
            if (count == 0) {
                proto_log(PROTO_LOG_WARN, "engine: corrupt record at topic %u queue %u offset %llu",
                          v->topic_id, queue_id, (unsigned long long)off);
                out->next_offset = off + 1;
                rc = LSMQ_ECORRUPT;
            }
            break;
        }
        if (count > 0 && len + vlen > max_bytes)
            break;
        if (len + vlen > cap) {
            size_t ncap = cap ? cap * 2 : 4096;
            while (ncap < len + vlen)
                ncap *= 2;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                rc = LSMQ_ENOMEM;
                break;
            }
            buf = nb;
            cap = ncap;
        }
        memcpy(buf + len, val, vlen);
        len += vlen;
        count++;
        expect++;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    if (err) {
        proto_log(PROTO_LOG_WARN, "engine: read failed: %s", err);
        rocksdb_free(err);
        rc = LSMQ_EIO;
    }
    if (rc != 0) {
        free(buf);
        out->data = NULL;
        out->len = 0;
        out->count = 0;
        return rc;
    }
    out->data = buf;
    out->len = len;
    out->count = count;
    out->next_offset = count ? expect : offset;
    return 0;
}

static int read_queue(engine *e, const queue_view *v, uint32_t queue_id, uint64_t offset,
                      uint32_t max_count, size_t max_bytes, engine_read_result *out)
{
    memset(out, 0, sizeof *out);
    out->min_offset = v->min_offset;
    out->max_offset = v->max_offset;
    out->next_offset = offset;
    if (offset >= v->max_offset && offset <= v->written_offset &&
        v->written_offset > v->max_offset) {
        /*
         * Offsets of a write under way: the log holds them and a replica
         * may have served them already (a master's write is announced to
         * its shipper, on_write, before it is published; under SYNC_FLUSH
         * before its sync), so a consumer that read them there asks for
         * what follows. Nothing new yet, as at max_offset; not an offset
         * to correct, which would send it back to read them again. The
         * same for offsets written but not confirmed yet (confirm.c), of
         * a queue that may look empty to readers.
         */
        out->status = ENGINE_READ_OFFSET_OVERFLOW_ONE;
        return 0;
    }
    if (v->max_offset == 0) {
        out->status = ENGINE_READ_NO_MESSAGE;
        out->next_offset = 0;
        return 0;
    }
    if (offset < v->min_offset) {
        out->status = ENGINE_READ_OFFSET_TOO_SMALL;
        out->next_offset = v->min_offset;
        return 0;
    }
    if (offset == v->max_offset) {
        out->status = ENGINE_READ_OFFSET_OVERFLOW_ONE;
        return 0;
    }
    if (offset > v->max_offset) {
        out->status = ENGINE_READ_OFFSET_OVERFLOW_BADLY;
        out->next_offset = v->max_offset;
        return 0;
    }
    if (max_count == 0)
        max_count = 1;
    int rc = read_records(e, v, queue_id, offset, max_count, max_bytes, out);
    if (rc != 0)
        return rc;
    if (out->count == 0) {
        /* Everything from offset on was removed between the view and the read. */
        out->status = ENGINE_READ_OFFSET_TOO_SMALL;
        out->next_offset = v->max_offset;
    }
    return 0;
}

int engine_read(engine *e, const char *topic_name, size_t topic_len, uint32_t queue_id,
                uint64_t offset, uint32_t max_count, size_t max_bytes, engine_read_result *out)
{
    queue_view v;
    engine__pin(e);
    pthread_rwlock_rdlock(&e->topics_lock);
    int rc = view_queue(e, engine__topics_find(e, topic_name, topic_len), queue_id, &v);
    pthread_rwlock_unlock(&e->topics_lock);
    if (rc == 0)
        rc = read_queue(e, &v, queue_id, offset, max_count, max_bytes, out);
    engine__unpin(e);
    return rc;
}

int engine_read_by_id(engine *e, uint32_t topic_id, uint32_t queue_id, uint64_t offset,
                      uint32_t max_count, size_t max_bytes, engine_read_result *out)
{
    queue_view v;
    engine__pin(e);
    pthread_rwlock_rdlock(&e->topics_lock);
    int rc = view_queue(e, engine__topics_find_id(e, topic_id), queue_id, &v);
    pthread_rwlock_unlock(&e->topics_lock);
    if (rc == 0)
        rc = read_queue(e, &v, queue_id, offset, max_count, max_bytes, out);
    engine__unpin(e);
    return rc;
}

int engine_queue_offsets(engine *e, const char *topic_name, size_t topic_len, uint32_t queue_id,
                         uint64_t *min_offset, uint64_t *max_offset)
{
    queue_view v;
    engine__pin(e);
    pthread_rwlock_rdlock(&e->topics_lock);
    int rc = view_queue(e, engine__topics_find(e, topic_name, topic_len), queue_id, &v);
    pthread_rwlock_unlock(&e->topics_lock);
    engine__unpin(e);
    if (rc != 0)
        return rc;
    *min_offset = v.min_offset;
    *max_offset = v.max_offset;
    return 0;
}

int engine_queue_offsets_by_id(engine *e, uint32_t topic_id, uint32_t queue_id,
                               uint64_t *min_offset, uint64_t *max_offset)
{
    queue_view v;
    engine__pin(e);
    pthread_rwlock_rdlock(&e->topics_lock);
    int rc = view_queue(e, engine__topics_find_id(e, topic_id), queue_id, &v);
    pthread_rwlock_unlock(&e->topics_lock);
    engine__unpin(e);
    if (rc != 0)
        return rc;
    *min_offset = v.min_offset;
    *max_offset = v.max_offset;
    return 0;
}
