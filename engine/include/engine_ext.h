/*
 * engine_ext: extending the store. For index/ and the features that will
 * own column families of their own (delayed messages, transactions), and
 * for tests of the store; server/ and tools/ use engine.h only.
 *
 * An extension declares, before the store opens (engine_config_add_extension):
 * its column families with their options, described in the engine's own
 * terms; hooks that add to every commit of the writer; and an on_open
 * callback that runs once the store is open and before the writer starts
 * (index/ upgrades older stores there). The engine hands out the families'
 * numbers at open (engine_ext_env.families); views read any family with the
 * iterator below.
 *
 * Families found on disk that nobody declares (old stores have an empty
 * `txn` family; a broker without the key index does not declare `idx_key`)
 * open with default options and are left alone. `timer` is the engine's
 * own since delayed delivery (engine_append_timed).
 *
 * Conventions are engine.h's. Declarations, names and prefix extractors
 * are the caller's and must outlive the engine. Threads: hooks run on the
 * writer thread, on_open on the thread in engine_open; an iterator belongs
 * to its view's thread.
 */
#ifndef LSMQ_ENGINE_EXT_H
#define LSMQ_ENGINE_EXT_H

#include "engine.h"

/* The engine's own families; extension families are numbered from ENGINE_CF_COUNT. */
enum {
    ENGINE_CF_MSG = 0, /* topic_id u32, queue_id u32, queue_offset u64 -> stored record */
    ENGINE_CF_TOPIC,   /* topic name -> topic config (JSON) */
    ENGINE_CF_GROUP,   /* group name -> subscription group config */
    ENGINE_CF_OFFSET,  /* group, 0x00, topic_id u32, queue_id u32 -> consumer offset u64 */
    ENGINE_CF_META,    /* store bookkeeping: format version, high-water marks, id sequences */
    ENGINE_CF_TIMER,   /* deliver_ms u64, log_position u64 -> topic_id u32, queue_id u32,
                          the pending record (engine_append_timed) */
    ENGINE_CF_COUNT
};

/* ---- Declaring families ------------------------------------------------- */

/*
 * A computed prefix for prefix blooms and the hash memtable. The name is
 * recorded in the family's table files: keep it while the layout holds.
 */
typedef struct engine_prefix_extractor {
    const char *name;
    /* Length of key's prefix; 0 when the key has none (outside the domain). */
    size_t (*prefix_len)(const uint8_t *key, size_t len);
} engine_prefix_extractor;

/* How a family is stored. Zero everywhere gives the engine's defaults. */
typedef struct engine_family_options {
    size_t write_buffer_bytes;   /* memtable size; 0 = 4 MiB */
    int bloom_bits_per_key;      /* bloom filter in each table file; 0 = none */
    int prefix_bloom_only;       /* the bloom holds key prefixes, not whole keys */
    size_t fixed_prefix_len;     /* the prefix is the first N bytes, */
    const engine_prefix_extractor *prefix; /* or computed; neither = no prefix */
    int hash_memtable;           /* a hash of per-prefix skiplists: O(1) inserts of keys
                                    arriving in random order; total-order scans are slow */
    int universal_compaction;    /* fewer rewrites than leveled compaction */
} engine_family_options;

struct engine_family_decl {
    const char *name;            /* the family's name on disk */
    engine_family_options options;
};

/* ---- Writing ------------------------------------------------------------ */

/* Add to a batch: in hooks, the writer's; in on_open, one's own. Bytes are copied. */
void engine_batch_put(engine_batch *b, engine_cf cf, const void *key, size_t klen,
                      const void *val, size_t vlen);
void engine_batch_delete(engine_batch *b, engine_cf cf, const void *key, size_t klen);
void engine_batch_delete_range(engine_batch *b, engine_cf cf, const void *begin,
                               size_t blen, const void *end, size_t elen);

/*
 * A batch of one's own, written straight to the store: for on_open only,
 * when no writer runs yet. engine_batch_write empties the batch; it returns
 * 0 or LSMQ_ENOSPC / LSMQ_EIO (logged), LSMQ_EINVAL once the writer runs or
 * on a read-only engine, LSMQ_EREADONLY on a replica (whose store changes
 * only by its master's batches; the batch is then kept).
 */
engine_batch *engine_batch_create(engine *e);
size_t engine_batch_count(const engine_batch *b);
int engine_batch_write(engine_batch *b, bool sync);
void engine_batch_destroy(engine_batch *b);

/* Record that the store now has format version v (synced). In on_open only
 * (LSMQ_EINVAL after it, LSMQ_EREADONLY on a replica, as engine_batch_write). */
int engine_set_format_version(engine *e, uint32_t v);

/* ---- Reading any family over a view ------------------------------------ */

/* The number of a family by name, in the view's store; LSMQ_ENOTFOUND when it has none. */
int engine_family_find(const engine_view *v, const char *name, engine_cf *out);

/* Point read: *val malloc'ed (free with engine_free). LSMQ_ENOTFOUND or LSMQ_EIO. */
int engine_view_get(const engine_view *v, engine_cf cf, const void *key, size_t klen,
                    uint8_t **val, size_t *vlen);

/*
 * Stay within the seek key's prefix (the family's prefix extractor): uses
 * the prefix blooms and the hash memtable; the iterator stops being valid
 * where the prefix ends. Without it iterators run in total order.
 */
#define ENGINE_ITER_PREFIX 2

/*
 * An iterator over one family of a view, limited to keys in [lower, upper);
 * either bound may be NULL (open). The bounds are copied. flags:
 * ENGINE_ITER_SCAN, ENGINE_ITER_PREFIX. Positioned nowhere: seek first.
 * NULL when the store has no such family. Destroy it before its view.
 */
typedef struct engine_iter engine_iter;
engine_iter *engine_iter_create(const engine_view *v, engine_cf cf, const void *lower,
                                size_t lower_len, const void *upper, size_t upper_len,
                                unsigned flags);
void engine_iter_destroy(engine_iter *it); /* NULL is fine */
/* First key >= key (clamped to the lower bound); key NULL = the lower bound. */
void engine_iter_seek(engine_iter *it, const void *key, size_t klen);
/* Last key <= key; key NULL = the last key within the bounds. */
void engine_iter_seek_for_prev(engine_iter *it, const void *key, size_t klen);
bool engine_iter_valid(const engine_iter *it);
void engine_iter_next(engine_iter *it);
/* Views valid until the iterator moves or is destroyed. */
const uint8_t *engine_iter_key(const engine_iter *it, size_t *len);
const uint8_t *engine_iter_value(const engine_iter *it, size_t *len);
/* After the iterator stops being valid: 0, or LSMQ_EIO with a message in errbuf. */
int engine_iter_error(const engine_iter *it, char *errbuf, size_t errlen);

/* ---- Editing a closed store (tests that damage a store on purpose) ----- */

/*
 * Put or range-delete keys of one family of a store that no process has
 * open, bypassing every check the engine makes. LSMQ_ELOCKED while open,
 * LSMQ_ENOTFOUND when the store has no such family, LSMQ_EIO otherwise;
 * a message in errbuf.
 */
int engine_store_put(const char *store_path, const char *family, const void *key,
                     size_t klen, const void *val, size_t vlen, char *errbuf, size_t errlen);
int engine_store_delete_range(const char *store_path, const char *family, const void *begin,
                              size_t blen, const void *end, size_t elen, char *errbuf,
                              size_t errlen);

#endif
