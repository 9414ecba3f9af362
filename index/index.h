/*
 * index: secondary indexes over the message store, written through the
 * engine's batch hook so each entry commits in the same WriteBatch as its
 * message, and removed with it by retention and topic deletion.
 *
 *   idx_id   key: log position u64                         value: topic_id u32, queue_id u32, queue_offset u64
 *   idx_time key: topic_id u32, queue_id u32, store_ms u64, queue_offset u64
 *            value: log position u64 (lets removal find the idx_id entries
 *            without reading the messages)
 * All integers big-endian. If you change an encoding, bump
 * ENGINE_FORMAT_VERSION and teach engine_open to upgrade older stores.
 *
 * Threads: any thread, except where a function says otherwise.
 */
#ifndef LSMQ_INDEX_H
#define LSMQ_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"

/* Register the idx_id and idx_time hooks on e; call right after engine_open. */
int index_attach(engine *e);

/* Where the message at a log position lives. LSMQ_ENOTFOUND if no live message has it. */
int index_locate(engine *e, uint64_t log_position, uint32_t *topic_id, uint32_t *queue_id,
                 uint64_t *queue_offset);

/*
 * The stored record at a log position, read under one snapshot with its
 * index entry. *rec is malloc'ed; free with engine_free.
 */
int index_get_by_position(engine *e, uint64_t log_position, uint8_t **rec, size_t *len);

typedef enum index_time_boundary {
    INDEX_TIME_LOWER = 0, /* first offset whose store time >= ts */
    INDEX_TIME_UPPER = 1, /* last offset whose store time <= ts */
} index_time_boundary;

/*
 * Offset of a queue by store time, ms precision. With LOWER: the first offset
 * whose store time >= ts_ms, or the max offset when every message is older.
 * With UPPER: the last offset whose store time <= ts_ms, or the min offset
 * when every message is newer. An empty queue gives its max offset.
 */
int index_search_time(engine *e, uint32_t topic_id, uint32_t queue_id, int64_t ts_ms,
                      index_time_boundary boundary, uint64_t *offset);

/* Key encodings, exposed for tools and tests. Return the key length. */
size_t index_id_key(uint8_t out[8], uint64_t log_position);
size_t index_time_key(uint8_t out[24], uint32_t topic_id, uint32_t queue_id, uint64_t store_ms,
                      uint64_t queue_offset);

#endif
