/*
 * idx_id: log position -> (topic id, queue id, queue offset). Resolves the
 * offset message id (store host + log position) to a stored message.
 */
#include <stdlib.h>
#include <string.h>

#include "engine_ext.h"
#include "index.h"
#include "index_internal.h"

size_t index_id_key(uint8_t out[8], uint64_t log_position)
{
    proto_put_u64(out, log_position);
    return ID_KEY_LEN;
}

void index__id_on_append(engine_cf id_cf, engine_batch *b, const engine_stored_msg *m)
{
    uint8_t key[ID_KEY_LEN], val[ID_VAL_LEN];
    index_id_key(key, m->log_position);
    proto_put_u32(val, m->topic_id);
    proto_put_u32(val + 4, m->queue_id);
    proto_put_u64(val + 8, m->queue_offset);
    engine_batch_put(b, id_cf, key, sizeof key, val, sizeof val);
}

int index_locate(const engine_view *v, uint64_t log_position, uint32_t *topic_id,
                 uint32_t *queue_id, uint64_t *queue_offset)
{
    engine_cf cf;
    int rc = engine_family_find(v, INDEX_FAMILY_ID, &cf);
    if (rc != 0)
        return rc;
    uint8_t key[ID_KEY_LEN];
    index_id_key(key, log_position);
    uint8_t *val;
    size_t vlen;
    if ((rc = engine_view_get(v, cf, key, sizeof key, &val, &vlen)) != 0)
        return rc;
    if (vlen == ID_VAL_LEN) {
        *topic_id = proto_get_u32(val);
        *queue_id = proto_get_u32(val + 4);
        *queue_offset = proto_get_u64(val + 8);
    } else {
        rc = LSMQ_ECORRUPT;
    }
    engine_free(val);
    /* A pending message of a deleted topic waits for its due time to be dropped. */
    engine_topic_config tc;
    if (rc == 0 && *queue_id == ENGINE_QUEUE_PENDING &&
        engine_view_topic_by_id(v, *topic_id, &tc) != 0)
        rc = LSMQ_ENOTFOUND;
    return rc;
}

/* A pending message's record: the timer family's value after topic and queue ids. */
static int pending_record(const engine_view *v, uint64_t log_position, int64_t deliver_ms,
                          uint8_t **rec, size_t *len)
{
    engine_cf cf;
    int rc = engine_family_find(v, "timer", &cf);
    if (rc != 0)
        return rc;
    uint8_t key[ENGINE_TIMER_KEY_LEN];
    engine_timer_key(key, deliver_ms, log_position);
    uint8_t *val;
    size_t vlen;
    if ((rc = engine_view_get(v, cf, key, sizeof key, &val, &vlen)) != 0)
        return rc;
    if (vlen <= 8) {
        engine_free(val);
        return LSMQ_ECORRUPT;
    }
    memmove(val, val + 8, vlen - 8);
    *rec = val;
    *len = vlen - 8;
    return 0;
}

int index_get_by_position(const engine_view *v, uint64_t log_position, uint8_t **rec,
                          size_t *len)
{
    /* The view makes the index entry and the message it names one snapshot. */
    engine_msg_pos at;
    int rc = index_locate(v, log_position, &at.topic_id, &at.queue_id, &at.queue_offset);
    if (rc != 0)
        return rc;
    if (at.queue_id == ENGINE_QUEUE_PENDING)
        return pending_record(v, log_position, (int64_t)at.queue_offset, rec, len);
    return engine_view_message(v, &at, rec, len);
}

int index_edge_message(const engine_view *v, int newest, uint64_t *log_position,
                       int64_t *store_ms)
{
    engine_cf cf;
    int rc = engine_family_find(v, INDEX_FAMILY_ID, &cf);
    if (rc != 0)
        return rc;
    engine_iter *it = engine_iter_create(v, cf, NULL, 0, NULL, 0, ENGINE_ITER_LOOKUP);
    if (!it)
        return LSMQ_ENOTFOUND;
    if (newest)
        engine_iter_seek_for_prev(it, NULL, 0);
    else
        engine_iter_seek(it, NULL, 0);
    rc = LSMQ_ENOTFOUND;
    if (engine_iter_valid(it)) {
        size_t klen = 0;
        const uint8_t *k = engine_iter_key(it, &klen);
        if (klen == ID_KEY_LEN) {
            *log_position = proto_get_u64(k);
            rc = 0;
        }
    }
    engine_iter_destroy(it);
    if (rc != 0)
        return rc;
    uint8_t *rec = NULL;
    size_t len = 0;
    proto_record r;
    *store_ms = 0;
    if (index_get_by_position(v, *log_position, &rec, &len) == 0 &&
        proto_record_decode(rec, len, &r) > 0)
        *store_ms = r.store_timestamp;
    engine_free(rec);
    return 0;
}
