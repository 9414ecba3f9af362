/*
 * idx_time: (topic id, queue id, store ms, queue offset) -> log position.
 * Answers "offset by timestamp" with one seek, and tells removal which
 * idx_id entries belong to the messages being removed.
 */
#include <string.h>

#include "index.h"
#include "index_internal.h"

size_t index_time_key(uint8_t out[24], uint32_t topic_id, uint32_t queue_id, uint64_t store_ms,
                      uint64_t queue_offset)
{
    proto_put_u32(out, topic_id);
    proto_put_u32(out + 4, queue_id);
    proto_put_u64(out + 8, store_ms);
    proto_put_u64(out + 16, queue_offset);
    return TIME_KEY_LEN;
}

void index__time_on_append(engine_cf time_cf, engine_batch *b, const engine_stored_msg *m)
{
    uint8_t key[TIME_KEY_LEN], val[8];
    index_time_key(key, m->topic_id, m->queue_id, (uint64_t)m->store_ms, m->queue_offset);
    proto_put_u64(val, m->log_position);
    engine_batch_put(b, time_cf, key, sizeof key, val, sizeof val);
}

/* The idx_id entry an idx_time value names goes with it. */
static void delete_id_of(engine_cf id_cf, engine_batch *b, const uint8_t *v, size_t vlen)
{
    if (vlen != 8)
        return;
    uint8_t idkey[ID_KEY_LEN];
    index_id_key(idkey, proto_get_u64(v));
    engine_batch_delete(b, id_cf, idkey, sizeof idkey);
}

void index__time_on_remove(engine_cf time_cf, engine_cf id_cf, const engine_view *v,
                           engine_batch *b, uint32_t topic_id, uint32_t queue_id,
                           uint64_t begin_offset, uint64_t end_offset)
{
    uint8_t lo[TIME_KEY_LEN], hi[TIME_KEY_LEN], last[TIME_KEY_LEN];
    index_time_key(lo, topic_id, queue_id, 0, 0);
    index_time_key(hi, topic_id, queue_id, UINT64_MAX, UINT64_MAX);
    engine_iter *it = engine_iter_create(v, time_cf, NULL, 0, hi, sizeof hi, ENGINE_ITER_LOOKUP);
    if (!it)
        return;
    int any = 0;
    /* Store time never decreases with the offset, so the entries of the
     * removed offsets are a prefix of the queue's entries. */
    for (engine_iter_seek(it, lo, sizeof lo); engine_iter_valid(it); engine_iter_next(it)) {
        size_t klen, vlen;
        const uint8_t *k = engine_iter_key(it, &klen);
        const uint8_t *val = engine_iter_value(it, &vlen);
        if (klen != TIME_KEY_LEN || proto_get_u64(k + 16) >= end_offset)
            break;
        delete_id_of(id_cf, b, val, vlen);
        memcpy(last, k, TIME_KEY_LEN);
        any = 1;
    }
    /* A failed scan only leaves stale entries behind. */
    engine_iter_destroy(it);
    if (!any)
        return;
    /* The range ends just past the last removed entry. */
    uint8_t end[TIME_KEY_LEN];
    index_time_key(end, topic_id, queue_id, proto_get_u64(last + 8), proto_get_u64(last + 16) + 1);
    engine_batch_delete_range(b, time_cf, lo, sizeof lo, end, sizeof end);
}

void index__time_on_topic_delete(engine_cf time_cf, engine_cf id_cf, const engine_view *v,
                                 engine_batch *b, uint32_t topic_id)
{
    uint8_t lo[4], hi[4];
    proto_put_u32(lo, topic_id);
    proto_put_u32(hi, topic_id + 1);
    engine_iter *it = engine_iter_create(v, time_cf, NULL, 0, hi, sizeof hi, ENGINE_ITER_LOOKUP);
    if (it) {
        for (engine_iter_seek(it, lo, sizeof lo); engine_iter_valid(it); engine_iter_next(it)) {
            size_t vlen;
            const uint8_t *val = engine_iter_value(it, &vlen);
            delete_id_of(id_cf, b, val, vlen);
        }
        engine_iter_destroy(it);
    }
    engine_batch_delete_range(b, time_cf, lo, sizeof lo, hi, sizeof hi);
}

int index_search_time(const engine_view *v, uint32_t topic_id, uint32_t queue_id,
                      int64_t ts_ms, index_time_boundary boundary, uint64_t *offset)
{
    engine_queue_info q;
    int rc = engine_view_queue(v, topic_id, queue_id, &q);
    if (rc == 0 && !q.in_config)
        rc = LSMQ_ENOTFOUND;
    if (rc != 0)
        return rc;
    uint64_t min = q.min_offset, max = q.max_offset;
    if (min >= max) {
        *offset = max;
        return 0;
    }
    if (ts_ms < 0) {
        *offset = min; /* every message is newer, whichever boundary */
        return 0;
    }
    engine_cf cf;
    if ((rc = engine_family_find(v, INDEX_FAMILY_TIME, &cf)) != 0)
        return rc;
    uint64_t ts = (uint64_t)ts_ms;
    uint8_t lo[TIME_KEY_LEN], hi[TIME_KEY_LEN], target[TIME_KEY_LEN];
    index_time_key(lo, topic_id, queue_id, 0, 0);
    index_time_key(hi, topic_id, queue_id, UINT64_MAX, UINT64_MAX);
    engine_iter *it = engine_iter_create(v, cf, NULL, 0, hi, sizeof hi, ENGINE_ITER_LOOKUP);
    if (!it)
        return LSMQ_ENOTFOUND;
    uint64_t found;
    size_t klen;
    if (boundary == INDEX_TIME_LOWER) {
        index_time_key(target, topic_id, queue_id, ts, 0);
        engine_iter_seek(it, target, sizeof target);
        found = max;
        if (engine_iter_valid(it)) {
            const uint8_t *k = engine_iter_key(it, &klen);
            found = proto_get_u64(k + 16);
        }
    } else {
        index_time_key(target, topic_id, queue_id, ts, UINT64_MAX);
        engine_iter_seek_for_prev(it, target, sizeof target);
        found = min;
        if (engine_iter_valid(it)) {
            const uint8_t *k = engine_iter_key(it, &klen);
            if (klen == TIME_KEY_LEN && memcmp(k, lo, 8) == 0)
                found = proto_get_u64(k + 16);
        }
    }
    engine_iter_destroy(it);
    if (found < min)
        found = min;
    if (found > max)
        found = max;
    *offset = found;
    return 0;
}
