/*
 * idx_time: (topic id, queue id, store ms, queue offset) -> log position.
 * Answers "offset by timestamp" with one seek, and tells removal which
 * idx_id entries belong to the messages being removed.
 */
#include <string.h>

#include <rocksdb/c.h>

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

void index__time_on_append(void *ctx, engine_batch *b, const engine_stored_msg *m)
{
    uint8_t key[TIME_KEY_LEN], val[8];
    index_time_key(key, m->topic_id, m->queue_id, (uint64_t)m->store_ms, m->queue_offset);
    proto_put_u64(val, m->log_position);
    engine_batch_put(b, ENGINE_CF_IDX_TIME, key, sizeof key, val, sizeof val);
}

/* An iterator over idx_time keys in [lo, hi), by total order (not by prefix). */
typedef struct time_iter {
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it;
    uint8_t hi[TIME_KEY_LEN];
} time_iter;

static void time_iter_open(engine *e, time_iter *ti, const uint8_t *hi, size_t hlen)
{
    memcpy(ti->hi, hi, hlen);
    ti->ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_total_order_seek(ti->ro, 1);
    rocksdb_readoptions_set_iterate_upper_bound(ti->ro, (const char *)ti->hi, hlen);
    ti->it = rocksdb_create_iterator_cf(engine_db(e), ti->ro,
                                        engine_cf_handle(e, ENGINE_CF_IDX_TIME));
}

static void time_iter_close(time_iter *ti)
{
    char *err = NULL;
    rocksdb_iter_get_error(ti->it, &err);
    if (err)
        rocksdb_free(err); /* a failed scan only leaves stale entries behind */
    rocksdb_iter_destroy(ti->it);
    rocksdb_readoptions_destroy(ti->ro);
}

void index__time_on_remove(void *ctx, engine *e, engine_batch *b, uint32_t topic_id,
                           uint32_t queue_id, uint64_t begin_offset, uint64_t end_offset)
{
    uint8_t lo[TIME_KEY_LEN], hi[TIME_KEY_LEN], last[TIME_KEY_LEN];
    index_time_key(lo, topic_id, queue_id, 0, 0);
    index_time_key(hi, topic_id, queue_id, UINT64_MAX, UINT64_MAX);
    time_iter ti;
    time_iter_open(e, &ti, hi, sizeof hi);
    int any = 0;
    /* Store time never decreases with the offset, so the entries of the
     * removed offsets are a prefix of the queue's entries. */
    for (rocksdb_iter_seek(ti.it, (const char *)lo, sizeof lo); rocksdb_iter_valid(ti.it);
         rocksdb_iter_next(ti.it)) {
        size_t klen, vlen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(ti.it, &klen);
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(ti.it, &vlen);
        if (klen != TIME_KEY_LEN || proto_get_u64(k + 16) >= end_offset)
            break;
        if (vlen == 8) {
            uint8_t idkey[ID_KEY_LEN];
            index_id_key(idkey, proto_get_u64(v));
            engine_batch_delete(b, ENGINE_CF_IDX_ID, idkey, sizeof idkey);
        }
        memcpy(last, k, TIME_KEY_LEN);
        any = 1;
    }
    time_iter_close(&ti);
    if (!any)
        return;
    /* The range ends just past the last removed entry. */
    uint8_t end[TIME_KEY_LEN];
    index_time_key(end, topic_id, queue_id, proto_get_u64(last + 8), proto_get_u64(last + 16) + 1);
    engine_batch_delete_range(b, ENGINE_CF_IDX_TIME, lo, sizeof lo, end, sizeof end);
}

void index__time_on_topic_delete(void *ctx, engine *e, engine_batch *b, uint32_t topic_id)
{
    uint8_t lo[4], hi[4];
    proto_put_u32(lo, topic_id);
    proto_put_u32(hi, topic_id + 1);
    time_iter ti;
    time_iter_open(e, &ti, hi, sizeof hi);
    for (rocksdb_iter_seek(ti.it, (const char *)lo, sizeof lo); rocksdb_iter_valid(ti.it);
         rocksdb_iter_next(ti.it)) {
        size_t vlen;
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(ti.it, &vlen);
        if (vlen == 8) {
            uint8_t idkey[ID_KEY_LEN];
            index_id_key(idkey, proto_get_u64(v));
            engine_batch_delete(b, ENGINE_CF_IDX_ID, idkey, sizeof idkey);
        }
    }
    time_iter_close(&ti);
    engine_batch_delete_range(b, ENGINE_CF_IDX_TIME, lo, sizeof lo, hi, sizeof hi);
}

int index_search_time(engine *e, uint32_t topic_id, uint32_t queue_id, int64_t ts_ms,
                      index_time_boundary boundary, uint64_t *offset)
{
    uint64_t min, max;
    int rc = engine_queue_offsets_by_id(e, topic_id, queue_id, &min, &max);
    if (rc != 0)
        return rc;
    if (min >= max) {
        *offset = max;
        return 0;
    }
    if (ts_ms < 0) {
        *offset = min; /* every message is newer, whichever boundary */
        return 0;
    }
    uint64_t ts = (uint64_t)ts_ms;
    uint8_t lo[TIME_KEY_LEN], hi[TIME_KEY_LEN], target[TIME_KEY_LEN];
    index_time_key(lo, topic_id, queue_id, 0, 0);
    index_time_key(hi, topic_id, queue_id, UINT64_MAX, UINT64_MAX);
    engine_db_pin(e);
    time_iter ti;
    time_iter_open(e, &ti, hi, sizeof hi);
    uint64_t found;
    if (boundary == INDEX_TIME_LOWER) {
        index_time_key(target, topic_id, queue_id, ts, 0);
        rocksdb_iter_seek(ti.it, (const char *)target, sizeof target);
        found = max;
        if (rocksdb_iter_valid(ti.it)) {
            size_t klen;
            const uint8_t *k = (const uint8_t *)rocksdb_iter_key(ti.it, &klen);
            found = proto_get_u64(k + 16);
        }
    } else {
        index_time_key(target, topic_id, queue_id, ts, UINT64_MAX);
        rocksdb_iter_seek_for_prev(ti.it, (const char *)target, sizeof target);
        found = min;
        if (rocksdb_iter_valid(ti.it)) {
            size_t klen;
            const uint8_t *k = (const uint8_t *)rocksdb_iter_key(ti.it, &klen);
            if (klen == TIME_KEY_LEN && memcmp(k, lo, 8) == 0)
                found = proto_get_u64(k + 16);
        }
    }
    time_iter_close(&ti);
    engine_db_unpin(e);
    if (found < min)
        found = min;
    if (found > max)
        found = max;
    *offset = found;
    return 0;
}
