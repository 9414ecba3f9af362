/*
 * engine: the RocksDB message store.
 *
 * Conventions (as in rocksdb/c.h):
 * (1) Opaque types and functions; structs are defined in the .c files.
 * (2) Byte strings travel as pointer + length.
 * (3) Functions return 0 or a negative LSMQ_E* code (protocol/errors.h);
 *     where a message helps, they also fill a caller buffer `errbuf`.
 * (4) Every returned buffer says who frees it and how.
 *
 * Threads: every function may be called from any thread unless it says
 * otherwise. All writes go through one writer thread that drains a bounded
 * queue, assigns queue offsets and log positions, and commits ONE RocksDB
 * WriteBatch per group; completions run on the writer thread, so they must
 * be short (the server hands them to its loop with ev_async_send).
 *
 * Layout on disk: everything lives under config.store_path
 * (storePathRootDir); the RocksDB database is <store_path>/db.
 */
#ifndef LSMQ_ENGINE_H
#define LSMQ_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "record.h"

typedef struct engine engine;

/* ---- Configuration ------------------------------------------------------ */

typedef enum engine_flush_mode {
    ENGINE_ASYNC_FLUSH = 0, /* ack after the write; WAL synced every flush_interval_ms */
    ENGINE_SYNC_FLUSH = 1,  /* ack only after the WAL holding the batch is synced */
} engine_flush_mode;

/* Disk usage as a ratio 0..1 of the filesystem holding the store. Replaceable in tests. */
typedef int (*engine_disk_usage_fn)(void *ctx, const char *path, double *used_ratio);

typedef struct engine_config {
    const char *store_path;          /* storePathRootDir; required */
    engine_flush_mode flush_mode;    /* flushDiskType */
    uint32_t flush_interval_ms;      /* flushIntervalCommitLog, default 500 */
    uint32_t max_message_size;       /* maxMessageSize (body + properties), default 4 MiB */
    uint32_t file_reserved_hours;    /* fileReservedTime, default 72 */
    uint32_t disk_max_used_ratio;    /* diskMaxUsedSpaceRatio in percent, default 75 */
    uint32_t retention_interval_ms;  /* how often retention runs, default 10000 */
    uint32_t writer_queue_max;       /* queued appends before LSMQ_EBUSY, default 65536 */
    uint64_t block_cache_bytes;      /* default 256 MiB */
    int blob_files;                  /* key-value separation for the msg family; -1 = default */
    int universal_compaction;        /* msg family compaction; -1 = default */
    proto_host store_host;           /* stamped into every record (brokerIP1:listenPort) */
    engine_disk_usage_fn disk_usage; /* NULL = statvfs of store_path */
    void *disk_usage_ctx;
    int (*clock_ms)(void *ctx, int64_t *now_ms); /* NULL = wall clock; for tests */
    void *clock_ctx;
} engine_config;

/* Fill c with the defaults above; store_path left NULL. */
void engine_config_init(engine_config *c);

/* ---- Open and close ----------------------------------------------------- */

/*
 * Open (creating if missing) the store under c->store_path and start the
 * writer and housekeeping threads. The config is copied. On failure returns
 * the code and writes a message into errbuf (errlen bytes). LSMQ_ELOCKED when
 * another process has the store open; LSMQ_EVERSION for a newer format.
 */
int engine_open(const engine_config *c, engine **out, char *errbuf, size_t errlen);

/*
 * Stop accepting work, complete everything queued, sync the WAL, close the
 * store and free e. Not to be called from a completion callback.
 */
void engine_close(engine *e);

/*
 * The store format version this build writes (recorded in the store).
 * 1: messages, idx_id, idx_time. 2: idx_key too (index/ upgrades a 1 store).
 */
#define ENGINE_FORMAT_VERSION 2

/* The format version recorded in the opened store (a new store gets the current one). */
uint32_t engine_format_version(engine *e);

/*
 * Record that the store now has format version v (synced). For upgrades run
 * right after engine_open, before any append.
 */
int engine_set_format_version(engine *e, uint32_t v);

/* A line on stderr with a UTC time stamp, as the engine logs its own events. */
void engine_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- Batch hook: indexes and later features add to every commit ------- */

typedef struct engine_batch engine_batch;  /* a WriteBatch being built by the writer */

typedef enum engine_cf {
    ENGINE_CF_MSG, ENGINE_CF_TOPIC, ENGINE_CF_GROUP, ENGINE_CF_OFFSET,
    ENGINE_CF_IDX_ID, ENGINE_CF_IDX_KEY, ENGINE_CF_IDX_TIME, ENGINE_CF_TIMER,
    ENGINE_CF_TXN,
    ENGINE_CF_META, /* store bookkeeping: format version, high-water marks, id sequences */
    ENGINE_CF_COUNT
} engine_cf;

void engine_batch_put(engine_batch *b, engine_cf cf, const void *key, size_t klen,
                      const void *val, size_t vlen);
void engine_batch_delete(engine_batch *b, engine_cf cf, const void *key, size_t klen);
void engine_batch_delete_range(engine_batch *b, engine_cf cf, const void *begin,
                               size_t blen, const void *end, size_t elen);

/* One message as the writer commits it. Pointers valid during the hook call only. */
typedef struct engine_stored_msg {
    uint32_t topic_id;
    uint32_t queue_id;
    uint64_t queue_offset;
    uint64_t log_position;
    int64_t store_ms;
    const uint8_t *record;      /* the stamped record */
    size_t record_len;
    const proto_record *fields; /* decoded views into record */
} engine_stored_msg;

typedef struct engine_hook {
    const char *name;
    void *ctx;
    /* Writer thread: add entries for one appended message to the batch. */
    void (*on_append)(void *ctx, engine_batch *b, const engine_stored_msg *m);
    /*
     * Writer thread: messages [begin_offset, end_offset) of a queue are being
     * removed by retention or topic deletion; add the deletes of their entries.
     * The messages are still readable through engine_read while this runs.
     */
    void (*on_remove)(void *ctx, engine *e, engine_batch *b, uint32_t topic_id,
                      uint32_t queue_id, uint64_t begin_offset, uint64_t end_offset);
    /* Writer thread: a whole topic is being deleted (its id will never return). */
    void (*on_topic_delete)(void *ctx, engine *e, engine_batch *b, uint32_t topic_id);
    /* Writer thread, after a batch is durable per the flush mode. */
    void (*on_commit)(void *ctx, uint64_t batch_seq, size_t n_msgs);
} engine_hook;

/* Register before any append (right after engine_open). At most 8 hooks. */
int engine_add_hook(engine *e, const engine_hook *h);

/* ---- Appends ------------------------------------------------------------ */

/* What a producer supplies for one message; the store fills in the rest. */
typedef struct engine_msg {
    int32_t flag;
    int32_t sys_flag;
    int64_t born_timestamp;
    proto_host born_host;
    int32_t reconsume_times;
    int64_t prepared_txn_offset;
    const void *body;
    uint32_t body_len;
    const char *props;
    uint32_t props_len;
} engine_msg;

typedef struct engine_append_result {
    int status;                 /* 0 or LSMQ_E*: EBUSY, ENOSPC, EIO, ENOTFOUND, ... */
    const char *error;          /* static text or NULL; valid during the callback */
    uint64_t queue_offset;      /* of the first message */
    uint64_t log_position;      /* of the first message */
    const uint64_t *log_positions; /* one per message; valid during the callback */
    int64_t store_ms;           /* of the first message */
    uint32_t n;
} engine_append_result;

typedef void (*engine_append_cb)(void *ctx, const engine_append_result *r);

/*
 * Append n messages (n >= 1) to one queue; they get consecutive offsets.
 * Errors known at once are returned and cb is not called: LSMQ_EINVAL (empty
 * topic name, n == 0), LSMQ_ETOOBIG (topic name over PROTO_TOPIC_MAX, a
 * message over max_message_size), LSMQ_ENOTFOUND (unknown topic or queue),
 * LSMQ_EBUSY (writer queue full), LSMQ_ECLOSED. Otherwise returns 0 and cb
 * runs exactly once on the writer thread with the outcome (0, LSMQ_ENOSPC,
 * LSMQ_EIO, or LSMQ_ENOTFOUND if the topic was deleted meanwhile).
 * The messages are encoded (copied) before this returns: the caller may
 * free or reuse their bodies and properties at once.
 */
int engine_append(engine *e, const char *topic, size_t topic_len, uint32_t queue_id,
                  const engine_msg *msgs, uint32_t n, engine_append_cb cb, void *ctx);

/*
 * Blocking convenience: append and wait for the result. Not on the writer
 * thread. out->log_positions is NULL (the array lived only during the
 * callback); out->log_position is the first message's.
 */
int engine_append_wait(engine *e, const char *topic, size_t topic_len, uint32_t queue_id,
                       const engine_msg *msgs, uint32_t n, engine_append_result *out);

/* ---- Reads -------------------------------------------------------------- */

typedef enum engine_read_status {
    ENGINE_READ_FOUND = 0,
    ENGINE_READ_NO_MESSAGE,        /* queue holds nothing at all */
    ENGINE_READ_OFFSET_TOO_SMALL,  /* offset below the min offset (removed) */
    ENGINE_READ_OFFSET_OVERFLOW_ONE,   /* offset == max offset: nothing new yet */
    ENGINE_READ_OFFSET_OVERFLOW_BADLY, /* offset > max offset */
} engine_read_status;

typedef struct engine_read_result {
    engine_read_status status;
    uint8_t *data;         /* concatenated stored records; free with engine_free */
    size_t len;
    uint32_t count;        /* records in data */
    uint64_t next_offset;  /* offset to read next */
    uint64_t min_offset;
    uint64_t max_offset;   /* next offset to be assigned */
} engine_read_result;

/*
 * Read up to max_count records (and about max_bytes; at least one record is
 * returned when any is there) of one queue from `offset`. Returns 0 with
 * out->status set, or LSMQ_ENOTFOUND (topic or queue), LSMQ_EIO, or
 * LSMQ_ECORRUPT when the record at `offset` does not decode (out->next_offset
 * then names the offset after it, so a reader can skip it). A corrupt record
 * after the first ends the run before it.
 */
int engine_read(engine *e, const char *topic, size_t topic_len, uint32_t queue_id,
                uint64_t offset, uint32_t max_count, size_t max_bytes,
                engine_read_result *out);

/* Same, by topic id (for indexes and tools). */
int engine_read_by_id(engine *e, uint32_t topic_id, uint32_t queue_id, uint64_t offset,
                      uint32_t max_count, size_t max_bytes, engine_read_result *out);

/* Min offset (first live message) and max offset (next to assign) of a queue. */
int engine_queue_offsets(engine *e, const char *topic, size_t topic_len, uint32_t queue_id,
                         uint64_t *min_offset, uint64_t *max_offset);

/* The same by topic id. */
int engine_queue_offsets_by_id(engine *e, uint32_t topic_id, uint32_t queue_id,
                               uint64_t *min_offset, uint64_t *max_offset);

/* Next log position to be assigned (the store's total record bytes so far). */
uint64_t engine_next_log_position(engine *e);

/* Release memory returned by the engine. It is free(3): such buffers may be
 * handed on to code that frees them with free(). */
void engine_free(void *p);

/*
 * Completion of an asynchronous write (topic and group configs, offset
 * commits): runs once on the writer thread with 0 or an LSMQ_E* code. The
 * writer drains its queue before the engine closes, so it always runs.
 */
typedef void (*engine_done_fn)(void *ctx, int status);

/* ---- Topics ------------------------------------------------------------- */

#define ENGINE_PERM_READ 0x4
#define ENGINE_PERM_WRITE 0x2
#define ENGINE_PERM_INHERIT 0x1

typedef struct engine_topic_config {
    char name[PROTO_TOPIC_MAX + 1];
    uint32_t topic_id;          /* assigned by the store, never reused */
    uint32_t read_queue_nums;
    uint32_t write_queue_nums;
    uint32_t perm;              /* ENGINE_PERM_* bits, default RW (6) */
    int order;
    char attributes[256];       /* free-form, stored as given */
} engine_topic_config;

/*
 * Create or update a topic (by name; topic_id ignored on input). Queue
 * counts may grow or shrink; shrinking keeps stored data. Writes go through
 * the writer. On success *out (if not NULL) holds the stored config.
 */
int engine_topic_put(engine *e, const engine_topic_config *c, engine_topic_config *out);

/* Delete a topic: its messages, index entries and consumer offsets go too. */
int engine_topic_delete(engine *e, const char *topic, size_t topic_len);

/* The same two without waiting, for callers that must not block, like the
 * broker's loop: the config is checked and copied, then `done` gets the
 * outcome (LSMQ_ENOTFOUND for a delete of a missing topic). A non-zero
 * return means nothing was queued and `done` will not run. */
int engine_topic_put_async(engine *e, const engine_topic_config *c, engine_done_fn done,
                           void *ctx);
int engine_topic_delete_async(engine *e, const char *topic, size_t topic_len,
                              engine_done_fn done, void *ctx);

int engine_topic_get(engine *e, const char *topic, size_t topic_len, engine_topic_config *out);

/* All topics: *out malloc'ed array of *n configs; free with engine_free. */
int engine_topic_list(engine *e, engine_topic_config **out, size_t *n);

/* ---- Groups and consumer offsets ---------------------------------------- */

/* Subscription group config, stored as the caller's bytes (JSON by convention). */
int engine_group_put(engine *e, const char *group, size_t group_len, const void *cfg,
                     size_t cfg_len);
/* *cfg malloc'ed; free with engine_free. LSMQ_ENOTFOUND when absent. */
int engine_group_get(engine *e, const char *group, size_t group_len, char **cfg,
                     size_t *cfg_len);
int engine_group_delete(engine *e, const char *group, size_t group_len);
/* Without waiting, as engine_topic_put_async. */
int engine_group_put_async(engine *e, const char *group, size_t group_len, const void *cfg,
                           size_t cfg_len, engine_done_fn done, void *ctx);
int engine_group_delete_async(engine *e, const char *group, size_t group_len,
                              engine_done_fn done, void *ctx);

/* Commit a consumer offset (through the writer; returns once committed). */
int engine_offset_set(engine *e, const char *group, size_t group_len, const char *topic,
                      size_t topic_len, uint32_t queue_id, uint64_t offset);
/*
 * The same without waiting: the commit is queued (copies made) and `done`,
 * if not NULL, runs on the writer thread with its outcome. For callers that
 * must not block, like the broker's loop.
 */
int engine_offset_set_async(engine *e, const char *group, size_t group_len,
                            const char *topic, size_t topic_len, uint32_t queue_id,
                            uint64_t offset, engine_done_fn done, void *ctx);
/* LSMQ_ENOTFOUND when the group never committed for that queue. */
int engine_offset_get(engine *e, const char *group, size_t group_len, const char *topic,
                      size_t topic_len, uint32_t queue_id, uint64_t *offset);

/* ---- Retention and health ----------------------------------------------- */

/* Run one retention pass now (also runs every retention_interval_ms). */
int engine_retention_run(engine *e);

/* Messages removed by retention since open (for tests and stats). */
uint64_t engine_retention_removed(engine *e);

/* 0 when appends are accepted, else the code they currently get (ENOSPC, EIO). */
int engine_write_health(engine *e);

/* ---- Introspection (for indexes, tools and tests) ----------------------- */

typedef struct rocksdb_t rocksdb_t;
typedef struct rocksdb_column_family_handle_t rocksdb_column_family_handle_t;

/*
 * The RocksDB handle and a family's handle, owned by e; read-only use.
 * After a disk-full or I/O error the writer reopens the database once space
 * is back, so callers off the writer thread must hold a pin from before
 * they fetch the handles until they are done with them (iterators and
 * snapshots included). Pins nest with nothing: never pin twice, and never
 * wait for the writer (engine_topic_put, engine_offset_set, ...) while
 * pinned. Hooks run on the writer thread and need no pin.
 */
void engine_db_pin(engine *e);
void engine_db_unpin(engine *e);
rocksdb_t *engine_db(engine *e);
rocksdb_column_family_handle_t *engine_cf_handle(engine *e, engine_cf cf);

/* The topic id of a name, or LSMQ_ENOTFOUND. */
int engine_topic_id(engine *e, const char *topic, size_t topic_len, uint32_t *topic_id);

#endif
