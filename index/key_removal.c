/*
 * Removal of idx_key entries. Retention passes the removed offsets of one
 * queue: their messages are read (still there while the hook runs) to learn
 * their keys. A deleted topic's entries share its id prefix: one range.
 */
#include <stdlib.h>

#include "index.h"
#include "index_internal.h"

/* Messages read per step: bounds the memory a large removal needs. */
#define REMOVE_READ_COUNT 1024
#define REMOVE_READ_BYTES (8u << 20)

typedef struct delete_ctx {
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
    engine_batch_delete(dc->b, ENGINE_CF_IDX_KEY, k, klen);
}

void index__key_on_remove(void *ctx, engine *e, engine_batch *b, uint32_t topic_id,
                          uint32_t queue_id, uint64_t begin_offset, uint64_t end_offset)
{
    uint64_t offset = begin_offset;
    while (offset < end_offset) {
        uint64_t want = end_offset - offset;
        engine_read_result rr;
        int rc = engine_read_by_id(e, topic_id, queue_id, offset,
                                   want < REMOVE_READ_COUNT ? (uint32_t)want : REMOVE_READ_COUNT,
                                   REMOVE_READ_BYTES, &rr);
        if (rc == LSMQ_ECORRUPT && rr.next_offset > offset) {
            offset = rr.next_offset; /* its keys are unknown: nothing to delete */
            continue;
        }
        if (rc != 0 || rr.status != ENGINE_READ_FOUND)
            return;
        size_t at = 0;
        for (uint32_t i = 0; i < rr.count; i++) {
            proto_record r;
            long n = proto_record_decode(rr.data + at, rr.len - at, &r);
            if (n <= 0)
                break;
            at += (size_t)n;
            if (r.queue_offset >= 0 && (uint64_t)r.queue_offset >= end_offset)
                break;
            delete_ctx dc = {.b = b, .topic_id = topic_id, .r = &r};
            index__for_each_key(&r, delete_one, &dc);
        }
        engine_free(rr.data);
        if (rr.next_offset <= offset)
            return;
        offset = rr.next_offset;
    }
}

void index__key_on_topic_delete(void *ctx, engine *e, engine_batch *b, uint32_t topic_id)
{
    uint8_t lo[4], hi[4];
    proto_put_u32(lo, topic_id);
    proto_put_u32(hi, topic_id + 1);
    engine_batch_delete_range(b, ENGINE_CF_IDX_KEY, lo, sizeof lo, hi, sizeof hi);
}
