/*
 * Removal of idx_key entries. Retention passes the removed offsets of one
 * queue: their messages are read under the hook's view (still there) to
 * learn their keys. A deleted topic's entries share its id prefix: one range
 * (its pending messages' too). A delivered pending message names its keys.
 */
#include <stdlib.h>

#include "index.h"
#include "index_internal.h"

typedef struct delete_ctx {
    engine_cf cf;
    engine_batch *b;
    uint32_t topic_id;
    uint64_t store_ms;
    uint64_t log_position;
} delete_ctx;

static void delete_one(void *ctx, const char *key, size_t key_len, unsigned kinds)
{
    delete_ctx *dc = ctx;
    uint8_t k[4 + INDEX_KEY_MAX + 1 + 16];
    size_t klen = index_key_key(k, sizeof k, dc->topic_id, key, key_len, dc->store_ms,
                                dc->log_position);
    engine_batch_delete(dc->b, dc->cf, k, klen);
}

static int delete_keys_of(void *ctx, const engine_msg_pos *at, const proto_record *r)
{
    delete_ctx *dc = ctx;
    dc->store_ms = (uint64_t)r->store_timestamp;
    dc->log_position = (uint64_t)r->physical_offset;
    index__for_each_key(r, delete_one, dc);
    return 0;
}

void index__key_on_remove(engine_cf key_cf, const engine_view *v, engine_batch *b,
                          uint32_t topic_id, uint32_t queue_id, uint64_t begin_offset,
                          uint64_t end_offset)
{
    engine_msg_pos from = {topic_id, queue_id, begin_offset};
    engine_msg_pos to = {topic_id, queue_id, end_offset};
    delete_ctx dc = {.cf = key_cf, .b = b, .topic_id = topic_id};
    /* A record that does not decode has unknown keys: nothing to delete. A
     * failed read only leaves stale entries, which queries check against
     * the messages. */
    index__for_each_message(v, &from, &to, delete_keys_of, &dc, NULL);
}

void index__key_on_topic_delete(engine_cf key_cf, engine_batch *b, uint32_t topic_id)
{
    uint8_t lo[4], hi[4];
    proto_put_u32(lo, topic_id);
    proto_put_u32(hi, topic_id + 1);
    engine_batch_delete_range(b, key_cf, lo, sizeof lo, hi, sizeof hi);
}

void index__key_on_deliver(engine_cf key_cf, engine_batch *b, uint64_t old_position,
                           int64_t old_store_ms, const engine_stored_msg *m)
{
    /* The delivered message carries the pending one's keys: same properties. */
    delete_ctx dc = {.cf = key_cf, .b = b, .topic_id = m->topic_id,
                     .store_ms = (uint64_t)old_store_ms, .log_position = old_position};
    index__for_each_key(m->fields, delete_one, &dc);
}
