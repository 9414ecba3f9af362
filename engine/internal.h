/*
 * Engine internals shared by the files of engine/. Nothing outside engine/
 * includes this header.
 */
#ifndef LSMQ_ENGINE_INTERNAL_H
#define LSMQ_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <rocksdb/c.h>
#include <uthash.h>

#include "engine.h"

#define ENGINE_MAX_HOOKS 8
#define MIN_OFFSET_UNKNOWN UINT64_MAX

/* One queue of a topic. Published fields are read by any thread. */
typedef struct queue_state {
    _Atomic uint64_t next_offset;  /* published high-water mark: max offset */
    _Atomic uint64_t min_offset;   /* first live offset, or MIN_OFFSET_UNKNOWN */
    _Atomic int64_t last_store_ms; /* store time of the last committed message */
    /* Writer thread only: state of the group being built. */
    uint64_t w_next_offset;
    int64_t w_last_store_ms;
    uint32_t w_touched_gen;        /* == writer generation when already in touched list */
} queue_state;

typedef struct topic {
    engine_topic_config cfg;
    uint32_t nqueues;              /* allocated queue states: max(read, write, stored) */
    queue_state *queues;
    UT_hash_handle hh;             /* by name */
    UT_hash_handle hh_id;          /* by topic id */
} topic;

typedef struct writer writer;

struct engine {
    engine_config cfg;
    char *store_path;
    char *db_path;
    rocksdb_t *db;
    rocksdb_options_t *db_opts;
    rocksdb_options_t *cf_opts[ENGINE_CF_COUNT];
    rocksdb_column_family_handle_t *cf[ENGINE_CF_COUNT];
    rocksdb_cache_t *block_cache;
    rocksdb_writeoptions_t *wo_sync;
    rocksdb_writeoptions_t *wo_async;
    rocksdb_readoptions_t *ro_default;

    /* Held for reading around RocksDB use off the writer thread; the writer
     * takes it for writing to reopen the database after a write error. */
    pthread_rwlock_t db_lock;

    /* Topic map: modified by the writer thread under the write lock. */
    pthread_rwlock_t topics_lock;
    topic *topics_by_name;
    topic *topics_by_id;
    uint32_t next_topic_id;        /* writer thread only after open */

    uint32_t format_version;            /* as recorded in the store */
    _Atomic uint64_t next_log_position; /* published */
    uint64_t w_next_log_position;       /* writer thread only */

    engine_hook hooks[ENGINE_MAX_HOOKS];
    int nhooks;

    writer *w;
    _Atomic int write_health;      /* 0 or the code appends currently get */
    _Atomic uint64_t retention_removed;

    pthread_t housekeeper_thread;
    bool housekeeper_started;
    pthread_t wal_sync_thread;
    bool wal_sync_started;
    _Atomic int wal_dirty;         /* ASYNC_FLUSH: written since the last WAL sync */
    pthread_mutex_t bg_lock;
    pthread_cond_t bg_cond;
    bool bg_stop;
};

/* The writer's batch; a thin wrapper so hooks never see RocksDB types. */
struct engine_batch {
    engine *e;
    rocksdb_writebatch_t *wb;
};

/* ---- keys.c: key and value encodings (big-endian) ----
 * msg     key: topic_id u32, queue_id u32, queue_offset u64
 * offset  key: group bytes, 0x00, topic_id u32, queue_id u32   value: offset u64
 * meta    "V" -> format version u32; "L" -> next log position u64;
 *         "T" -> next topic id u32;
 *         "H" topic_id u32 queue_id u32 -> next offset u64, last store ms i64
 * topic   key: name   value: JSON config (see topics.c)
 * If you change an encoding, bump ENGINE_FORMAT_VERSION and upgrade old stores
 * in store.c.
 */
#define MSG_KEY_LEN 16
#define HWM_KEY_LEN 9
size_t key_msg(uint8_t out[MSG_KEY_LEN], uint32_t topic_id, uint32_t queue_id, uint64_t offset);
size_t key_hwm(uint8_t out[HWM_KEY_LEN], uint32_t topic_id, uint32_t queue_id);
/* Offset key into out (cap bytes); returns its length or 0 if it does not fit. */
size_t key_offset(uint8_t *out, size_t cap, const char *group, size_t group_len,
                  uint32_t topic_id, uint32_t queue_id);
extern const char META_VERSION_KEY[1], META_LOGPOS_KEY[1], META_TOPICSEQ_KEY[1];

/* ---- key_prefix.c ---- */
/* Prefix extractor of idx_key: topic id + key + its 0x00 (layout in index/index.h). */
rocksdb_slicetransform_t *key_index_prefix_create(void);

/* ---- store.c ---- */
/* The column families' names on disk, by engine_cf ("default" is RocksDB's own). */
extern const char *const engine__cf_names[ENGINE_CF_COUNT];
/* Map a RocksDB error string to an LSMQ code (ENOSPC, ELOCKED, EIO). */
int engine__rocks_err(const char *err);
/* printf into a caller's error buffer (which may be NULL). */
void engine__fail(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * Background threads (housekeeper, WAL sync): sleep interval_ms or until
 * engine__bg_stop; false once stopping. They share bg_lock/bg_cond/bg_stop.
 */
bool engine__bg_wait(engine *e, uint32_t interval_ms);
void engine__bg_stop(engine *e);
int64_t engine__now_ms(engine *e);
/* Writer thread: close and reopen the database and reload the state from it. */
int engine__reopen(engine *e);

/* ---- topics.c ---- */
/* Lookups; caller holds topics_lock (read or write) or is the writer thread. */
topic *topics__find(engine *e, const char *name, size_t len);
topic *topics__find_id(engine *e, uint32_t topic_id);
int topics__load(engine *e, char *errbuf, size_t errlen);
void topics__free_all(engine *e);
int topics__validate_name(const char *name, size_t len);
/* Writer thread: apply a topic put / delete with its own write. */
int topics__apply_put(engine *e, const engine_topic_config *c, engine_topic_config *out);
int topics__apply_delete(engine *e, const char *name, size_t len);
/* Ensure t has at least n queue states; caller holds the write lock. */
int topics__grow_queues(topic *t, uint32_t n);

/* ---- writer.c ---- */
int writer__start(engine *e);
void writer__stop(engine *e);
typedef enum wctl_kind {
    WCTL_TOPIC_PUT, WCTL_TOPIC_DELETE, WCTL_GROUP_PUT, WCTL_GROUP_DELETE,
    WCTL_OFFSET_SET, WCTL_REMOVE, WCTL_BARRIER
} wctl_kind;
typedef struct wctl {
    wctl_kind kind;
    const engine_topic_config *topic_cfg;
    engine_topic_config *topic_out;
    const char *name;
    size_t name_len;
    const char *name2;
    size_t name2_len;
    const void *value;
    size_t value_len;
    uint32_t topic_id;
    uint32_t queue_id;
    uint64_t u64;
} wctl;
/* Run a control operation on the writer thread and wait for it. */
int writer__control(engine *e, const wctl *op);
/* Queue one without waiting (strings and topic config copied; no topic_out); done (may be
 * NULL) runs on the writer thread. */
int writer__control_async(engine *e, const wctl *op, void (*done)(void *ctx, int status),
                          void *ctx);
bool writer__on_writer_thread(engine *e);
/* Writer thread: write a batch unless an earlier write failed; records failures. */
int writer__write(engine *e, rocksdb_writebatch_t *wb, int sync);

/* ---- read.c ---- */
/* First live offset of a queue (cached; computed with one seek). */
uint64_t read__min_offset(engine *e, topic *t, uint32_t queue_id);

/* ---- offsets.c ---- */
/* Writer thread: add the deletes of every consumer offset of a topic. */
int offsets__delete_topic(engine *e, engine_batch *b, uint32_t topic_id);

/* ---- wal_sync.c: ASYNC_FLUSH's WAL sync thread (shares bg_lock/bg_cond/bg_stop) ---- */
int wal_sync__start(engine *e);
void wal_sync__stop(engine *e);

/* ---- retention.c ---- */
int retention__start(engine *e);
void retention__stop(engine *e);

#endif
