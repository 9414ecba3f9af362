/*
 * Removal of idx_key entries. Retention passes the removed offsets of one
 * queue: their messages are read under the hook's view (still there) to
 * learn their keys. A deleted topic's entries share its id prefix: one range.
 */
#include <stdlib.h>

#include "index.h"
#include "index_internal.h"

typedef struct delete_ctx {
    engine_cf cf;
    engine_batch *b;
    uint32_t topic_id;
    const proto_record *r;
} delete_ctx;

static void delete_one(void *ctx, const char *key, size_t key_len, unsigned kinds)
{
    delete_ctx *dc = ctx;
    uint8_t k[4 + INDEX_KEY_MAX + 1 + 16];
    size_t klen = index_key_key(k, sizeof k, dc->topic_id, key, key_len,
                                (uint64_t)dc->r->store_timestamp,
                                (uint64_t)dc->r->physical_offset);
    engine_batch_delete(dc->b, dc->cf, k, klen);
}

void index__key_on_remove(engine_cf key_cf, const engine_view *v, engine_batch *b,
                          uint32_t topic_id, uint32_t queue_id, uint64_t begin_offset,
                          uint64_t end_offset)
{
    engine_msg_pos from = {topic_id, queue_id, begin_offset};
    engine_msg_pos to = {topic_id, queue_id, end_offset};
    engine_msg_cursor *c;
    if (engine_msg_cursor_open(v, &from, &to, ENGINE_ITER_SCAN, &c) != 0)
        return;
    for (engine_msg_cursor_seek(c, NULL); engine_msg_cursor_valid(c);
         engine_msg_cursor_next(c)) {
        engine_msg_pos at;
        const uint8_t *rec;
        size_t len;
        proto_record r;
        /* A record that does not decode has unknown keys: nothing to delete. */
        if (engine_msg_cursor_get(c, &at, &rec, &len) != 0 ||
            proto_record_decode(rec, len, &r) != (long)len)
            continue;
        delete_ctx dc = {.cf = key_cf, .b = b, .topic_id = topic_id, .r = &r};
        index__for_each_key(&r, delete_one, &dc);
    }
    engine_msg_cursor_close(c);
}

void index__key_on_topic_delete(engine_cf key_cf, engine_batch *b, uint32_t topic_id)
{
    uint8_t lo[4], hi[4];
    proto_put_u32(lo, topic_id);
    proto_put_u32(hi, topic_id + 1);
    engine_batch_delete_range(b, key_cf, lo, sizeof lo, hi, sizeof hi);
}
