/*
 * engine_reader: read-only access to a broker's store, for tools.
 *
 * The store's RocksDB database (<store_path>/db) is opened as a RocksDB
 * secondary instance: it never takes the primary's lock and never writes
 * into the store, so it works the same while the broker runs and after it
 * stopped. The secondary's own files live in a scratch directory made with
 * mkdtemp under $TMPDIR (else /tmp) and removed by engine_reader_close.
 * What the reader sees is the store as of engine_reader_open.
 *
 * Conventions are engine.h's: byte strings as pointer + length, 0 or a
 * negative LSMQ_E* code, messages in a caller's errbuf. Threads: one thread
 * at a time per reader and per iterator.
 */
#ifndef LSMQ_ENGINE_READER_H
#define LSMQ_ENGINE_READER_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"

typedef struct engine_reader engine_reader;
typedef struct engine_reader_iter engine_reader_iter;

/*
 * Open the store under store_path (storePathRootDir). Errors, each with a
 * one-line message in errbuf: LSMQ_ENOTFOUND (no such directory), LSMQ_EINVAL
 * (not a broker store: no db/, no RocksDB database there, or no format
 * version record), LSMQ_EVERSION (written by a newer format), LSMQ_ECORRUPT
 * (the database or its topic records do not read), LSMQ_EIO.
 */
int engine_reader_open(const char *store_path, engine_reader **out, char *errbuf,
                       size_t errlen);

/* Close the database, remove the scratch directory and free r (NULL is fine). */
void engine_reader_close(engine_reader *r);

/* The store's format version and next log position (total record bytes ever stored). */
uint32_t engine_reader_format_version(const engine_reader *r);
uint64_t engine_reader_next_log_position(const engine_reader *r);

/* ---- Topics and queues -------------------------------------------------- */

/* All topics, sorted by name; the array is owned by r and valid until close. */
const engine_topic_config *engine_reader_topics(const engine_reader *r, size_t *n);

/* One topic by name or by id; NULL when absent. Owned by r. */
const engine_topic_config *engine_reader_topic(const engine_reader *r, const char *name,
                                               size_t len);
const engine_topic_config *engine_reader_topic_by_id(const engine_reader *r, uint32_t topic_id);

/* Queues a topic has: its read/write counts, or more when a shrink left stored queues. */
uint32_t engine_reader_queue_count(const engine_reader *r, uint32_t topic_id);

typedef struct engine_reader_queue {
    uint64_t min_offset;   /* first stored offset; == max_offset when nothing is stored */
    uint64_t max_offset;   /* next offset to be assigned (the high-water mark) */
    int64_t last_store_ms; /* store time of the last message appended; 0 if none ever was */
} engine_reader_queue;

/* LSMQ_ENOTFOUND for an unknown topic or a queue past engine_reader_queue_count. */
int engine_reader_queue_info(engine_reader *r, uint32_t topic_id, uint32_t queue_id,
                             engine_reader_queue *out);

/* ---- Keys and values ---------------------------------------------------- */

/* msg family keys (engine/internal.h): topic_id u32, queue_id u32, queue_offset u64. */
#define ENGINE_READER_MSG_KEY_LEN 16
size_t engine_reader_msg_key(uint8_t out[ENGINE_READER_MSG_KEY_LEN], uint32_t topic_id,
                             uint32_t queue_id, uint64_t queue_offset);
/* 0, or LSMQ_ECORRUPT when key is not a msg key. */
int engine_reader_msg_key_decode(const uint8_t *key, size_t len, uint32_t *topic_id,
                                 uint32_t *queue_id, uint64_t *queue_offset);

/*
 * Point read of one family. 0 with *val malloc'ed (free with engine_free),
 * LSMQ_ENOTFOUND, or LSMQ_EIO.
 */
int engine_reader_get(engine_reader *r, engine_cf cf, const void *key, size_t klen, char **val,
                      size_t *vlen);

/* The family's name as stored ("msg", "idx_key", ...). */
const char *engine_reader_cf_name(engine_cf cf);

/*
 * A RocksDB property of a family ("rocksdb.estimate-num-keys", ...): 0 and
 * *value, or LSMQ_ENOTFOUND when RocksDB does not know it.
 */
int engine_reader_cf_property(engine_reader *r, engine_cf cf, const char *name,
                              uint64_t *value);

/* Approximate bytes the family's files hold for keys in [lo, hi). */
uint64_t engine_reader_approx_size(engine_reader *r, engine_cf cf, const void *lo, size_t lo_len,
                                   const void *hi, size_t hi_len);

/* ---- Iteration ---------------------------------------------------------- */

typedef enum engine_reader_mode {
    ENGINE_READER_LOOKUP = 0, /* short reads: use and fill the block cache */
    ENGINE_READER_SCAN = 1,   /* long sequential reads: readahead, leave the cache alone */
} engine_reader_mode;

/*
 * An iterator over family cf limited to keys in [lower, upper); either bound
 * may be NULL (open). The bounds are copied. Positioned nowhere: seek first.
 * Returns NULL when the family is absent from the store.
 */
engine_reader_iter *engine_reader_iter_create(engine_reader *r, engine_cf cf, const void *lower,
                                              size_t lower_len, const void *upper,
                                              size_t upper_len, engine_reader_mode mode);
void engine_reader_iter_destroy(engine_reader_iter *it);

/* First key >= key (clamped to the lower bound); key NULL = the lower bound. */
void engine_reader_iter_seek(engine_reader_iter *it, const void *key, size_t klen);
/* Last key within the bounds. */
void engine_reader_iter_seek_last(engine_reader_iter *it);
int engine_reader_iter_valid(const engine_reader_iter *it);
void engine_reader_iter_next(engine_reader_iter *it);

/* Views valid until the iterator moves or is destroyed. */
const uint8_t *engine_reader_iter_key(const engine_reader_iter *it, size_t *len);
const uint8_t *engine_reader_iter_value(const engine_reader_iter *it, size_t *len);

/* After the iterator stops being valid: 0, or LSMQ_EIO with a message in errbuf. */
int engine_reader_iter_error(const engine_reader_iter *it, char *errbuf, size_t errlen);

#endif
