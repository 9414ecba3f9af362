/*
 * index: secondary indexes over the message store. index/ is an engine
 * extension (engine_ext.h): it declares its column families before the
 * store opens and writes its entries through the writer's hooks, so each
 * entry commits in the same WriteBatch as its message and is removed with
 * it by retention and topic deletion. Queries run over a view
 * (engine_view_open), of the live store or of a read-only open.
 *
 *   idx_id   key: log position u64                         value: topic_id u32, queue_id u32, queue_offset u64
 *   idx_time key: topic_id u32, queue_id u32, store_ms u64, queue_offset u64
 *            value: log position u64 (lets removal find the idx_id entries
 *            without reading the messages)
 *   idx_key  key: topic_id u32, key bytes, 0x00, ~store_ms u64, ~log position u64
 *            value: queue_id u32, queue_offset u64, kinds u8 (INDEX_KEY_* bits)
 *            one entry per distinct key of a message: each word of KEYS
 *            (space-separated) and its UNIQ_KEY. Time and position are
 *            stored inverted (bitwise not), newest first: a lookup that
 *            wants the newest N stops after N, and forward-only scans suit
 *            the family's hash memtable.
 * A pending message (engine_append_timed) has an idx_id entry (topic id,
 * ENGINE_QUEUE_PENDING, deliver_ms) and its idx_key entries (queue id
 * ENGINE_QUEUE_PENDING, queue offset deliver_ms), no idx_time entry; they
 * are replaced by the delivered message's when it moves.
 * All integers big-endian. If you change an encoding, bump
 * ENGINE_FORMAT_VERSION and teach index/'s on_open to upgrade older stores.
 *
 * Conventions are engine.h's: 0 or a negative LSMQ_E* code, results in
 * out-parameters, buffers freed with engine_free. Threads: any thread (a
 * view stays on the thread that opened it).
 */
#ifndef LSMQ_INDEX_H
#define LSMQ_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"

/* The families' names on disk. */
#define INDEX_FAMILY_ID "idx_id"
#define INDEX_FAMILY_TIME "idx_time"
#define INDEX_FAMILY_KEY "idx_key"

typedef struct index_options {
    /* idx_key (messageIndexEnable). Messages stored while it is off are
     * never found by key, as with RocketMQ. */
    int key_index;
} index_options;

/*
 * Declare the index extension in c, before engine_open: idx_id and
 * idx_time always, idx_key when o->key_index (o NULL: every index). When
 * the store opens, a store written before idx_key existed is brought up to
 * date (its messages indexed, with progress in the log) before the writer
 * starts. LSMQ_ETOOBIG when c has no room for another extension.
 */
int index_declare(engine_config *c, const index_options *o);

/*
 * Where the message at a log position lives. LSMQ_ENOTFOUND if no live message has it.
 * A pending message: queue ENGINE_QUEUE_PENDING, queue offset its deliver_ms.
 */
int index_locate(const engine_view *v, uint64_t log_position, uint32_t *topic_id,
                 uint32_t *queue_id, uint64_t *queue_offset);

/*
 * The stored record at a log position, as stored (it may not decode); a
 * pending message's as it waits (read from the timer family).
 * *rec is malloc'ed; free with engine_free.
 */
int index_get_by_position(const engine_view *v, uint64_t log_position, uint8_t **rec,
                          size_t *len);

/*
 * The oldest (newest = 0) or newest (newest = 1) live message of the whole
 * store: its log position and store time. LSMQ_ENOTFOUND when the store
 * holds none.
 */
int index_edge_message(const engine_view *v, int newest, uint64_t *log_position,
                       int64_t *store_ms);

typedef enum index_time_boundary {
    INDEX_TIME_LOWER = 0, /* first offset whose store time >= ts */
    INDEX_TIME_UPPER = 1, /* last offset whose store time <= ts */
} index_time_boundary;

/*
 * Offset of a queue by store time, ms precision. With LOWER: the first offset
 * whose store time >= ts_ms, or the max offset when every message is older.
 * With UPPER: the last offset whose store time <= ts_ms, or the min offset
 * when every message is newer. An empty queue gives its max offset.
 * LSMQ_ENOTFOUND for an unknown topic or a queue past its queue counts.
 */
int index_search_time(const engine_view *v, uint32_t topic_id, uint32_t queue_id,
                      int64_t ts_ms, index_time_boundary boundary, uint64_t *offset);

/* Which property a key came from; a message may carry one key in both. */
#define INDEX_KEY_KEYS 0x1u /* a word of KEYS */
#define INDEX_KEY_UNIQ 0x2u /* the UNIQ_KEY client message id */

/* Keys longer than this are not indexed (RocketMQ clients cap keys far lower). */
#define INDEX_KEY_MAX 4096

typedef struct index_key_hit {
    uint32_t queue_id;
    uint64_t queue_offset;
    uint64_t log_position;
    int64_t store_ms;
    unsigned kinds; /* INDEX_KEY_* bits the message carries the key with */
} index_key_hit;

/*
 * Messages of a topic that carry `key` with any of the `kinds` bits, stored
 * within [begin_ms, end_ms] (inclusive; pass INT64_MIN / INT64_MAX for any
 * time). When more match than max_hits, the newest max_hits are returned.
 * Hits are ordered by store time, then log position, oldest first. *hits is
 * malloc'ed (free with engine_free; NULL when *n is 0). Exact: every hit
 * carries the key; LSMQ_EINVAL for an empty key or one over INDEX_KEY_MAX.
 * A store without idx_key gives no hits. A pending message's hit has queue
 * ENGINE_QUEUE_PENDING and queue offset its deliver_ms.
 */
int index_query_key(const engine_view *v, uint32_t topic_id, const char *key, size_t key_len,
                    unsigned kinds, int64_t begin_ms, int64_t end_ms, size_t max_hits,
                    index_key_hit **hits, size_t *n);

/* Key encodings, for tests that check the families entry by entry. Return the key length. */
size_t index_id_key(uint8_t out[8], uint64_t log_position);
size_t index_time_key(uint8_t out[24], uint32_t topic_id, uint32_t queue_id, uint64_t store_ms,
                      uint64_t queue_offset);
/* 0 when the key does not fit in cap bytes (cap >= key_len + 21 always fits). */
size_t index_key_key(uint8_t *out, size_t cap, uint32_t topic_id, const char *key,
                     size_t key_len, uint64_t store_ms, uint64_t log_position);
/* Split an idx_key key; 0, or LSMQ_ECORRUPT when it has not that layout. */
int index_key_parse(const uint8_t *k, size_t len, uint32_t *topic_id, const char **key,
                    size_t *key_len, uint64_t *store_ms, uint64_t *log_position);

#endif
