/*
 * engine: the RocksDB message store.
 *
 * Conventions (as in rocksdb/c.h):
 * (1) Opaque types and functions; structs are defined in the .c files,
 *     except plain data the caller fills or reads (configs, results).
 * (2) Byte strings travel as pointer + length.
 * (3) Functions return 0 or a negative LSMQ_E* code (protocol/errors.h);
 *     where a message helps, they also fill a caller buffer `errbuf`.
 * (4) Every returned buffer says who frees it and how; pointers into a
 *     view or a cursor say until when they are valid.
 * (5) No RocksDB type or handle crosses this header. Column families,
 *     their options and reads of any family are for extensions (index/)
 *     and live in engine_ext.h; server/ and tools/ use this header only.
 *
 * Two ways in: engine_open opens the broker's store for writing (writer and
 * housekeeping threads); engine_open_readonly opens a store directory for
 * tools, beside a running broker or not, and never writes to it. Both give
 * an `engine` and both hand out views (engine_view_open): a consistent
 * snapshot that the admin, query and tool reads go through. The pull path
 * (engine_read) reads the published state directly, without a snapshot.
 * With config.replica, engine_open opens a replica's store, which changes
 * only by its master's batches ("Replication" below).
 *
 * Threads: every function may be called from any thread unless it says
 * otherwise. All writes go through one writer thread that drains a bounded
 * queue, assigns queue offsets and log positions, and commits ONE RocksDB
 * WriteBatch per group; completions run on the writer thread, so they must
 * be short (the server hands them to its loop with ev_async_send). A view
 * belongs to the thread that opened it and must not be held while waiting
 * for the writer (engine_topic_put, engine_offset_set, ...): after a write
 * error the writer reopens the database once every view is closed.
 *
 * Layout on disk: everything lives under config.store_path
 * (storePathRootDir); the RocksDB database is <store_path>/db.
 */
#ifndef LSMQ_ENGINE_H
#define LSMQ_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "record.h"

typedef struct engine engine;
typedef struct engine_view engine_view;
typedef struct engine_extension engine_extension;

/* ---- Configuration ------------------------------------------------------ */

typedef enum engine_flush_mode {
    ENGINE_ASYNC_FLUSH = 0, /* ack after the write; WAL synced every flush_interval_ms */
    ENGINE_SYNC_FLUSH = 1,  /* ack only after the WAL holding the batch is synced */
} engine_flush_mode;

/* Disk usage as a ratio 0..1 of the filesystem holding the store. Replaceable in tests. */
typedef int (*engine_disk_usage_fn)(void *ctx, const char *path, double *used_ratio);

#define ENGINE_MAX_EXTENSIONS 8

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
    /* What index/ and later features add to the store: column families and
     * hooks (engine_config_add_extension). Each must outlive the engine. */
    const engine_extension *extensions[ENGINE_MAX_EXTENSIONS];
    size_t n_extensions;
    /* Replication (the "Replication" section below). */
    bool replica;                    /* a replica: refuses its own writes, applies its master's */
    bool confirmed_reads;            /* reads see only what engine_confirm released */
    uint32_t wal_ttl_seconds;        /* WAL kept for replicas to catch up from; default 3600 */
    uint32_t wal_size_limit_mb;      /* and at most this much of it; default 4096 */
} engine_config;

/* Fill c with the defaults above; store_path left NULL, no extensions. */
void engine_config_init(engine_config *c);

/* Declare an extension (engine_ext.h) for engine_open. LSMQ_ETOOBIG past the limit. */
int engine_config_add_extension(engine_config *c, const engine_extension *x);

/* ---- Open and close ----------------------------------------------------- */

/*
 * Open (creating if missing) the store under c->store_path with the
 * declared extensions' families, run their on_open callbacks, and start the
 * writer and housekeeping threads (a replica, c->replica, has no
 * retention thread). The config is copied. On failure returns
 * the code and writes a message into errbuf (errlen bytes). LSMQ_ELOCKED
 * when another process has the store open; LSMQ_EVERSION for a newer
 * format; an extension's on_open error as it returned it.
 */
int engine_open(const engine_config *c, engine **out, char *errbuf, size_t errlen);

/*
 * Open the store under store_path (storePathRootDir) read-only, as a RocksDB
 * secondary instance: it never takes the broker's lock and never writes
 * into the store, so it works the same while the broker runs and after it
 * stopped. Its own files live in a scratch directory made with mkdtemp
 * under $TMPDIR (else /tmp) and removed by engine_close. What it sees is
 * the store as of this call. Every column family on disk is opened, so
 * index queries (index.h) run over its views. Writes (appends, topic,
 * group and offset changes, retention) return LSMQ_EINVAL.
 * Errors, each with a one-line message in errbuf: LSMQ_ENOTFOUND (no such
 * directory), LSMQ_EINVAL (not a broker store: no db/, no RocksDB database
 * there, a database without the engine's families, or no format version
 * record), LSMQ_EVERSION (written by a newer format), LSMQ_ECORRUPT (the
 * database or its topic records do not read), LSMQ_EIO.
 */
int engine_open_readonly(const char *store_path, engine **out, char *errbuf, size_t errlen);

/*
 * Stop accepting work, complete everything queued, sync the WAL, close the
 * store and free e (NULL is fine). Not to be called from a completion
 * callback or with a view open.
 */
void engine_close(engine *e);

/* Nonzero for an engine from engine_open_readonly. */
bool engine_is_readonly(const engine *e);

/*
 * The store format version this build writes (recorded in the store).
 * 1: messages, idx_id, idx_time. 2: idx_key too (index/ upgrades a 1 store).
 * Delayed messages (the `timer` family, meta "P") came without a new
 * version: older stores have an empty `timer` family and no "P" records.
 */
#define ENGINE_FORMAT_VERSION 2

/* The format version recorded in the opened store (a new store gets the current one). */
uint32_t engine_format_version(engine *e);

/* ---- Extensions and hooks ----------------------------------------------- */

/*
 * An extension (engine_ext.h) declares column families and hooks; index/
 * is one. The hooks below are the part other code may use on its own: an
 * extension without families sees every commit, as the broker's statistics
 * do. Every extension is declared in engine_config before engine_open.
 */

typedef struct engine_batch engine_batch; /* a WriteBatch being built by the writer */

/* A column family's number in one open store (engine_ext.h). */
typedef uint32_t engine_cf;

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

/* What a hook knows of its extension in this engine. Owned by the engine. */
typedef struct engine_ext_env {
    const char *name;
    void *ctx;                  /* the declaration's ctx */
    engine *e;
    const engine_cf *families;  /* the numbers of the declared families, in order */
    size_t n_families;
} engine_ext_env;

typedef struct engine_hook {
    /* Writer thread: add entries for one appended message to the batch. */
    void (*on_append)(const engine_ext_env *x, engine_batch *b, const engine_stored_msg *m);
    /*
     * Writer thread: messages [begin_offset, end_offset) of a queue are being
     * removed by retention; add the deletes of their entries. v is a view
     * from just before the removal (the messages are still in it).
     */
    void (*on_remove)(const engine_ext_env *x, const engine_view *v, engine_batch *b,
                      uint32_t topic_id, uint32_t queue_id, uint64_t begin_offset,
                      uint64_t end_offset);
    /* Writer thread: a whole topic is being deleted (its id will never return). */
    void (*on_topic_delete)(const engine_ext_env *x, const engine_view *v, engine_batch *b,
                            uint32_t topic_id);
    /*
     * Writer thread, after a batch holding n_msgs messages is durable per
     * the flush mode. first_seq is the batch's first RocksDB sequence (a
     * batch of N operations uses N sequences), as engine_log_next hands it
     * out. Masters only.
     */
    void (*on_commit)(const engine_ext_env *x, uint64_t first_seq, size_t n_msgs);
    /*
     * Writer thread, master only: after every write of the store (a group of
     * appends and offset commits, a topic or group change, a retention
     * removal), before its callers learn the outcome; last_seq is its last
     * sequence. The log (engine_log_next) holds it now: a shipper waits
     * for this rather than polling. It may not be synced yet: in ASYNC_FLUSH
     * until the periodic sync; in SYNC_FLUSH, while the log is watched
     * (engine_log_watch), the writer writes unsynced, runs this, then
     * syncs, so that replicas receive the batch while the fsync runs (the
     * callers learn the outcome after the sync).
     */
    void (*on_write)(const engine_ext_env *x, uint64_t last_seq);
    /*
     * Writer thread: on a replica, an applied batch of the master's log is
     * written (as engine_apply says) and moved this queue's max offset (the
     * next offset to assign) to max_offset; on a master, a due move of
     * delayed messages (engine_append_timed) did. Once per queue per write,
     * after the published offsets moved: a pull parked on the queue may be
     * answered now. (A replica's writer runs no other hook; a master wakes
     * its pulls from its sends, and from this for its delayed messages.)
     */
    void (*on_advance)(const engine_ext_env *x, uint32_t topic_id, uint32_t queue_id,
                       uint64_t max_offset);
    /*
     * Writer thread, master: a pending message was stored (engine_append_timed):
     * m->queue_id == ENGINE_QUEUE_PENDING, m->queue_offset == deliver_ms,
     * m->log_position its own, m->topic_id the real one. on_append does not
     * run for it, only for its delivery.
     */
    void (*on_pend)(const engine_ext_env *x, engine_batch *b, const engine_stored_msg *m);
    /*
     * Writer thread, master: the pending message stored at old_position with
     * old_store_ms was delivered as m (on_append ran for m just before), or
     * dropped because its topic is gone (m == NULL).
     */
    void (*on_deliver)(const engine_ext_env *x, engine_batch *b, uint64_t old_position,
                       int64_t old_store_ms, const engine_stored_msg *m);
} engine_hook;

/* A column family an extension declares (engine_ext.h). */
typedef struct engine_family_decl engine_family_decl;

struct engine_extension {
    const char *name;
    void *ctx;
    const engine_family_decl *families;
    size_t n_families;
    /*
     * Once the store is open, before the writer starts and before anything
     * else runs on it: upgrades and checks (engine_ext.h has the writes it
     * may make). Nonzero fails engine_open with that code (and the message
     * put in errbuf).
     */
    int (*on_open)(const engine_ext_env *x, char *errbuf, size_t errlen);
    engine_hook hook;
};

/* ---- Appends ------------------------------------------------------------ */

/* Queue id of a pending message (engine_append_timed) in index entries and hooks. */
#define ENGINE_QUEUE_PENDING UINT32_MAX

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
    uint64_t last_seq;          /* the last RocksDB sequence of the committed batch holding
                                   the messages (engine_log_next); 0 on failure */
} engine_append_result;

typedef void (*engine_append_cb)(void *ctx, const engine_append_result *r);

/*
 * Append n messages (n >= 1) to one queue; they get consecutive offsets.
 * Errors known at once are returned and cb is not called: LSMQ_EINVAL (empty
 * topic name, n == 0, a read-only engine), LSMQ_EREADONLY (a replica), LSMQ_ETOOBIG (topic name over
 * PROTO_TOPIC_MAX, a message over max_message_size), LSMQ_ENOTFOUND (unknown
 * topic or queue), LSMQ_EBUSY (writer queue full), LSMQ_ECLOSED. Otherwise
 * returns 0 and cb runs exactly once on the writer thread with the outcome
 * (0, LSMQ_ENOSPC, LSMQ_EIO, or LSMQ_ENOTFOUND if the topic was deleted
 * meanwhile). The messages are encoded (copied) before this returns: the
 * caller may free or reuse their bodies and properties at once.
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

/* ---- Delayed delivery --------------------------------------------------- */

/*
 * Append n messages to be delivered to topic/queue_id at deliver_ms (engine
 * clock, ms since the epoch). Same errors and callback contract as
 * engine_append, plus LSMQ_EINVAL for a negative deliver_ms. The result:
 * queue_offset 0, log_position(s) of the pending records (they make the
 * offset message ids), store_ms now, last_seq. deliver_ms <= now is fine:
 * the message moves in the writer's next group.
 *
 * A pending record waits in the `timer` family. When the engine clock
 * reaches deliver_ms, the master's writer appends it to its queue like any
 * append (new queue offset, new log position, store time = the move's) and
 * deletes the pending entry in the same batch, due order first, at most a
 * bounded number per group so appends keep flowing. A replica never moves:
 * it applies its master's moves. A message whose topic was deleted is
 * dropped at its due time.
 */
int engine_append_timed(engine *e, const char *topic, size_t topic_len, uint32_t queue_id,
                        const engine_msg *msgs, uint32_t n, int64_t deliver_ms,
                        engine_append_cb cb, void *ctx);

/* Pending messages of one topic (from "P"), and of the whole store. Any thread. */
uint64_t engine_timer_pending(engine *e, uint32_t topic_id);
uint64_t engine_timer_pending_total(engine *e);

/* One pending message as a view sees it; pointers valid during the call. */
typedef struct engine_pending_msg {
    int64_t deliver_ms;
    uint64_t log_position;      /* its own, as engine_append_timed returned it */
    uint32_t topic_id;          /* the real topic (it may have been deleted since) */
    uint32_t queue_id;          /* the real queue */
    const uint8_t *record;      /* as stored: real topic, store time = when sent */
    size_t record_len;
} engine_pending_msg;

/*
 * The view's pending messages due in [from_ms, to_ms), in due order:
 * fn(ctx, m) for each until it returns nonzero, which is returned.
 * LSMQ_EIO when the family cannot be read; a store without it has none.
 */
typedef int (*engine_pending_fn)(void *ctx, const engine_pending_msg *m);
int engine_view_timers(const engine_view *v, int64_t from_ms, int64_t to_ms,
                       engine_pending_fn fn, void *ctx);

/* Timer-family keys (deliver_ms u64 BE, log_position u64 BE), for mqdump and tests. */
#define ENGINE_TIMER_KEY_LEN 16
void engine_timer_key(uint8_t out[16], int64_t deliver_ms, uint64_t log_position);
bool engine_timer_key_parse(const uint8_t *k, size_t len, int64_t *deliver_ms,
                            uint64_t *log_position);

/* ---- The pull path ------------------------------------------------------ */

typedef enum engine_read_status {
    ENGINE_READ_FOUND = 0,
    ENGINE_READ_NO_MESSAGE,        /* queue holds nothing at all */
    ENGINE_READ_OFFSET_TOO_SMALL,  /* offset below the min offset (removed) */
    /* offset == max offset, or up to the end of a write under way: nothing new yet */
    ENGINE_READ_OFFSET_OVERFLOW_ONE,
    ENGINE_READ_OFFSET_OVERFLOW_BADLY, /* offset > max offset, beyond any write under way */
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
 * returned when any is there) of one queue from `offset`, as the writer has
 * published them (no snapshot: this is the hot path). Returns 0 with
 * out->status set, or LSMQ_ENOTFOUND (topic or queue), LSMQ_EIO, or
 * LSMQ_ECORRUPT when the record at `offset` does not decode (out->next_offset
 * then names the offset after it, so a reader can skip it). A corrupt record
 * after the first ends the run before it.
 *
 * A master's write reaches its log, and may be shipped to a replica and
 * read there, before the writer publishes it (on_write). An offset past
 * max_offset that such a write has assigned is OVERFLOW_ONE (with
 * next_offset = offset, max_offset still the published one), not
 * OVERFLOW_BADLY: a consumer that came from a replica with those messages
 * waits for what follows instead of being sent back to them.
 */
int engine_read(engine *e, const char *topic, size_t topic_len, uint32_t queue_id,
                uint64_t offset, uint32_t max_count, size_t max_bytes,
                engine_read_result *out);

/* Same, by topic id. */
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

/* The current config (not a view's). */
int engine_topic_get(engine *e, const char *topic, size_t topic_len, engine_topic_config *out);

/* All topics now: *out malloc'ed array of *n configs; free with engine_free. */
int engine_topic_list(engine *e, engine_topic_config **out, size_t *n);

/* The topic id of a name, or LSMQ_ENOTFOUND. */
int engine_topic_id(engine *e, const char *topic, size_t topic_len, uint32_t *topic_id);

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

/* ---- Views: consistent reads ------------------------------------------- */

/*
 * A view is a pinned, consistent snapshot of the whole store: messages,
 * topics, groups, consumer offsets, high-water marks and the extensions'
 * families as of one committed sequence. On a live engine it holds a
 * RocksDB snapshot and the pin against the writer's reopen after a write
 * error; a read-only engine is frozen at its open, so its views see that.
 * Creating one costs about a microsecond: fine on admin, query and tool
 * paths, not per pull. Close it on the thread that opened it, and never
 * wait for the writer while it is open.
 */
int engine_view_open(engine *e, engine_view **out); /* 0, or LSMQ_EIO (no database) */
void engine_view_close(engine_view *v);             /* NULL is fine */
engine *engine_view_engine(const engine_view *v);

/*
 * The RocksDB sequence the view sees: every batch whose sequences are at
 * or below it is in the view, none after. (Should the writer commit
 * throughout the view's opening, it is a lower bound: a later batch may be
 * in the view too.) The committed batches after a sequence are read in
 * order with engine_log_open; on a replica the sequences are its own, not
 * its master's (engine_applied_sequence is the master's).
 */
uint64_t engine_view_sequence(const engine_view *v);

/* Store bookkeeping as the view sees it. */
typedef struct engine_store_meta {
    uint32_t format_version;
    uint64_t next_log_position; /* total record bytes ever stored */
} engine_store_meta;
int engine_view_meta(const engine_view *v, engine_store_meta *out);

/* All topics, sorted by name: *out malloc'ed array of *n (free with engine_free). */
int engine_view_topics(const engine_view *v, engine_topic_config **out, size_t *n);
/*
 * One topic by name or id; LSMQ_ENOTFOUND when the view has none. By id,
 * the name comes from the engine's current topics (a topic's name and id
 * never change), so a topic deleted since the view opened is not found.
 */
int engine_view_topic(const engine_view *v, const char *name, size_t len,
                      engine_topic_config *out);
int engine_view_topic_by_id(const engine_view *v, uint32_t topic_id, engine_topic_config *out);

typedef struct engine_queue_info {
    uint64_t min_offset;   /* first stored offset; == max_offset when nothing is stored */
    uint64_t max_offset;   /* next offset to be assigned (the high-water mark) */
    int64_t last_store_ms; /* store time of the last message appended; 0 if none ever was */
    bool in_config;        /* queue id below the topic's read/write queue counts */
} engine_queue_info;

/*
 * One queue. LSMQ_ENOTFOUND for an unknown topic, or a queue id past the
 * topic's queue counts that holds no high-water mark (a shrink keeps the
 * queues that hold data: they are found, with in_config false).
 */
int engine_view_queue(const engine_view *v, uint32_t topic_id, uint32_t queue_id,
                      engine_queue_info *out);
/*
 * Every queue of a topic: its read/write counts, or more when a shrink left
 * stored queues. *out malloc'ed array indexed by queue id (free with
 * engine_free; NULL when *n is 0). LSMQ_ENOTFOUND for an unknown topic.
 */
int engine_view_queues(const engine_view *v, uint32_t topic_id, engine_queue_info **out,
                       size_t *n);

/* The position of one message: queue and offset. */
typedef struct engine_msg_pos {
    uint32_t topic_id;
    uint32_t queue_id;
    uint64_t queue_offset;
} engine_msg_pos;

/*
 * One stored record, as stored (it may not decode). *rec malloc'ed (free
 * with engine_free). LSMQ_ENOTFOUND when the view has no message there.
 */
int engine_view_message(const engine_view *v, const engine_msg_pos *at, uint8_t **rec,
                        size_t *len);

typedef enum engine_iter_flags {
    ENGINE_ITER_LOOKUP = 0, /* short reads: use and fill the block cache */
    ENGINE_ITER_SCAN = 1,   /* long sequential reads: readahead, leave the cache alone */
} engine_iter_flags;

/*
 * Messages of the view in key order (topic id, queue id, queue offset),
 * limited to [from, to); either may be NULL (open). Positioned nowhere:
 * seek first. flags: ENGINE_ITER_*. Close it before its view.
 */
typedef struct engine_msg_cursor engine_msg_cursor;
int engine_msg_cursor_open(const engine_view *v, const engine_msg_pos *from,
                           const engine_msg_pos *to, unsigned flags, engine_msg_cursor **out);
void engine_msg_cursor_close(engine_msg_cursor *c); /* NULL is fine */
/* First message at or after `at` (clamped to `from`); NULL = the start of the range. */
void engine_msg_cursor_seek(engine_msg_cursor *c, const engine_msg_pos *at);
/* The last message of the range. */
void engine_msg_cursor_seek_last(engine_msg_cursor *c);
bool engine_msg_cursor_valid(const engine_msg_cursor *c);
void engine_msg_cursor_next(engine_msg_cursor *c);
/*
 * The message under the cursor: its position and its record as stored
 * (the record valid until the cursor moves). LSMQ_ECORRUPT when the stored
 * key is not a message key (*at untouched; the record is still given).
 */
int engine_msg_cursor_get(const engine_msg_cursor *c, engine_msg_pos *at, const uint8_t **rec,
                          size_t *len);
/* After the cursor stops being valid: 0, or LSMQ_EIO with a message in errbuf. */
int engine_msg_cursor_error(const engine_msg_cursor *c, char *errbuf, size_t errlen);

/*
 * Every subscription group config: fn(ctx, name, cfg) for each, by name.
 * The bytes are valid during the call. A nonzero return from fn stops the
 * walk and is returned; LSMQ_EIO when the family cannot be read.
 */
typedef int (*engine_group_fn)(void *ctx, const char *name, size_t name_len, const char *cfg,
                               size_t cfg_len);
int engine_view_groups(const engine_view *v, engine_group_fn fn, void *ctx);

/* One committed consumer offset. The group bytes are valid during the call. */
typedef struct engine_consumer_offset {
    const char *group;
    size_t group_len;
    uint32_t topic_id;
    uint32_t queue_id;
    uint64_t offset;
} engine_consumer_offset;
typedef int (*engine_offset_fn)(void *ctx, const engine_consumer_offset *o);

/*
 * Committed consumer offsets, by group then topic id then queue id: of one
 * group (group != NULL) or of every group. As engine_view_groups otherwise.
 */
int engine_view_offsets(const engine_view *v, const char *group, size_t group_len,
                        engine_offset_fn fn, void *ctx);

/* ---- Retention and health ----------------------------------------------- */

/* Run one retention pass now (also runs every retention_interval_ms).
 * LSMQ_EREADONLY on a replica: it never runs its own retention. */
int engine_retention_run(engine *e);

/* Messages removed by retention since open (for tests and stats). */
uint64_t engine_retention_removed(engine *e);

/* 0 when appends are accepted, else the code they currently get (ENOSPC, EIO). */
int engine_write_health(engine *e);

/* ---- Replication -------------------------------------------------------- */

/*
 * The replicated log is RocksDB's WAL: every change of the store is one
 * WriteBatch committed by the writer, and a batch of N operations takes the
 * N sequences after the previous one. A master hands out the batches
 * committed after a sequence (engine_log_*), keeping its WAL for
 * wal_ttl_seconds / wal_size_limit_mb so a replica that fell behind catches
 * up from it; a replica that is new or too far behind starts from a
 * checkpoint of the master (engine_checkpoint), then applies the master's
 * batches in order through its own writer (engine_apply), each exactly
 * once: the master sequence it has applied is written in the same write,
 * synced as the replica's flush_mode says (SYNC_FLUSH: before anyone hears
 * of it; ASYNC_FLUSH: handed to the OS, which keeps it through a crash of
 * the process but not of the machine, and synced every flush_interval_ms,
 * as upstream's slaves do). A replica's own RocksDB sequences are its own;
 * the master's are only ever seen as b->seq and engine_applied_sequence.
 *
 * A master's on_write hook says when the log grew (a shipper's wake-up).
 * On a replica (engine_config.replica) appends, topic, group and offset
 * writes and retention return LSMQ_EREADONLY; reads, views and index
 * queries work as on a master and see each applied batch once its `done`
 * runs. Extensions' hooks do not run on a replica (the shipped batches
 * already hold their entries) except on_advance.
 */

/* RocksDB's latest sequence: the last operation committed to this store. */
uint64_t engine_last_sequence(engine *e);

/* One committed batch of the log. */
typedef struct engine_log_batch {
    uint64_t seq;        /* the sequence of its first operation */
    uint32_t count;      /* operations in it: the next batch starts at seq + count */
    const uint8_t *data; /* the WriteBatch's bytes (RocksDB's format, 12-byte header) */
    size_t len;
} engine_log_batch;

/*
 * A reader of every batch committed after after_seq, in order (master
 * side). after_seq must end a batch (the last sequence of a batch, a
 * checkpoint's sequence, an applied sequence; 0 for the start of the log),
 * else LSMQ_EINVAL. LSMQ_ENOTFOUND when the retained WAL no longer reaches
 * after_seq + 1, or after_seq lies ahead of this store's log: the replica
 * must start from a checkpoint. LSMQ_EINVAL on a read-only engine; LSMQ_EIO.
 * Any thread but the writer's; a reader belongs to one thread at a time.
 * Close it before the engine.
 */
typedef struct engine_log_reader engine_log_reader;
int engine_log_open(engine *e, uint64_t after_seq, engine_log_reader **out);
/*
 * The next batch: 1 and *b filled (b->data owned by the reader, valid until
 * the next call on it); 0 when nothing more is committed yet (call again
 * later: it resumes where it stopped); LSMQ_ENOTFOUND when the WAL moved
 * past the next batch before it was read; LSMQ_EIO. After an error the
 * reader is spent: close it.
 */
int engine_log_next(engine_log_reader *r, engine_log_batch *b);
void engine_log_close(engine_log_reader *r); /* NULL is fine */

/*
 * A shipper says whether replicas read the log now. While on, a SYNC_FLUSH
 * write is announced (on_write) before its WAL sync rather than after, so
 * it travels while the fsync runs; either way nobody learns its outcome
 * before the sync. Off by default: a master without replicas keeps the
 * plain synced write. Any thread.
 */
void engine_log_watch(engine *e, bool on);

/*
 * Confirmed reads (engine_config.confirmed_reads): a master whose replicas
 * may take over with a shorter log (controller mode) lets readers see a
 * message only once its batch is confirmed, so no consumer moves past an
 * offset that a new master may give to another message. Until then a read
 * at those offsets is OVERFLOW_ONE, as for a write under way. Releases
 * every write whose batch's last sequence (engine_append_result.last_seq)
 * is at most seq, and calls moved(ctx, topic_id, queue_id) for each queue
 * that moved (after the release, once per queue). Without confirmed_reads
 * writes are readable once published and this does nothing. Any thread;
 * moved runs on the caller's.
 */
void engine_confirm(engine *e, uint64_t seq,
                    void (*moved)(void *ctx, uint32_t topic_id, uint32_t queue_id), void *ctx);

/*
 * A replica follows a master whose log numbers this store's batches anew
 * from `since` (its position now): every write not released yet waits for
 * a confirmation of `since` or later, and confirmations start over.
 * A replica's store opens with nothing readable until such a confirmation
 * (it may end in batches its master never confirmed). Any thread.
 */
void engine_confirm_restart(engine *e, uint64_t since);

/*
 * A checkpoint of the store into dir, which must not exist (its parent
 * must; on the store's filesystem the files are hard links): the files a
 * replica's <store_path>/db is made of. *seq is the last sequence it holds,
 * exactly: engine_log_open(e, *seq) continues it. On a replica *seq is the
 * master sequence it has applied. The writer pauses for the final flush
 * and the links (the memtables are flushed first, outside it). Not on the
 * writer thread. LSMQ_EEXISTS, LSMQ_EINVAL (read-only engine), LSMQ_ENOSPC,
 * LSMQ_EIO.
 */
int engine_checkpoint(engine *e, const char *dir, uint64_t *seq);

/*
 * Replica only (else LSMQ_EINVAL). Queue a batch of the master's log for
 * the writer; it writes the batch and, in the same write (synced in
 * SYNC_FLUSH), b->seq + b->count - 1 as the applied sequence (several
 * queued batches share one write). b->seq must be the applied sequence +
 * 1, counting batches still queued (a checkpoint's sequence is exact, so
 * the first batch after it follows it too). The bytes are checked and
 * copied before this returns.
 * Refused at once, nothing queued: LSMQ_EINVAL (out of order, b->count not
 * the header's), LSMQ_ECORRUPT (the batch holds what a replica cannot
 * apply: bytes that do not parse, a column family this store lacks, an
 * operation the engine never writes; retrying will not help, the log line
 * says which), LSMQ_EVERSION (a store format newer than this build's),
 * LSMQ_EBUSY (queue full), LSMQ_ECLOSED. Otherwise returns 0 and `done`
 * (may be NULL) runs once on the writer thread: 0 once the batch is
 * written as the flush mode says and the replica's state shows it;
 * LSMQ_ENOSPC / LSMQ_EIO when the write failed (batches queued after it
 * then fail with LSMQ_EINVAL: resume from engine_applied_sequence).
 */
int engine_apply(engine *e, const engine_log_batch *b, engine_done_fn done, void *ctx);

/* The master sequence this store has applied (written as engine_apply says); 0: none. */
uint64_t engine_applied_sequence(engine *e);

/*
 * A replica store just made from a checkpoint holding the master's
 * sequence seq: record it (synced), before the first engine_apply. Replica
 * only (else LSMQ_EINVAL); LSMQ_EIO, LSMQ_ENOSPC.
 */
int engine_set_applied_sequence(engine *e, uint64_t seq);

/* Nonzero for an engine opened with engine_config.replica. */
bool engine_is_replica(const engine *e);

/* ---- Epochs (failover) -------------------------------------------------- */

/*
 * A controller numbers a broker group's masters by epoch; each master's
 * sequences are its own, so a store's place in the group is a position
 * (epoch, seq): for a replica the epoch of the master it follows and the
 * master sequence it applied; for a store last run as a master (even if
 * opened with config.replica since) its epoch and engine_last_sequence.
 * A master entering a newer epoch writes a promotion record into its
 * epoch history, which ships in checkpoints like any meta value.
 */
#define ENGINE_EPOCHS_KEPT 16

typedef struct engine_epoch_entry {
    uint64_t epoch;
    uint64_t start_seq;     /* its first own sequence: the promotion record's */
    uint64_t prev_epoch;    /* the store's position when it was promoted: */
    uint64_t prev_end_seq;  /* epoch and sequence */
} engine_epoch_entry;

/*
 * The store's position. LSMQ_ENOTFOUND when it has none: no applied
 * sequence and no history (a new store, or one that never knew epochs and
 * never followed a master). LSMQ_EIO, LSMQ_ECORRUPT. Any thread.
 */
int engine_position(engine *e, uint64_t *epoch, uint64_t *seq);

/*
 * The epochs this store knows, oldest first, at most ENGINE_EPOCHS_KEPT
 * (out has room for that many): its own promotions and those of the
 * masters it was made from or rebased on. The end of entry i is entry
 * i+1's prev_end_seq; of the last, the store's position. Any thread.
 */
int engine_epoch_history(engine *e, engine_epoch_entry *out, size_t *n);

/*
 * A master entering epoch (newer than its position's): append {epoch,
 * start_seq, position} to the history in one synced write of one
 * operation, whose sequence is start_seq (*entry, may be NULL). The older
 * entries beyond ENGINE_EPOCHS_KEPT go. LSMQ_EINVAL on a replica or when
 * epoch is not newer; LSMQ_EIO, LSMQ_ENOSPC. Not on the writer thread.
 */
int engine_epoch_begin(engine *e, uint64_t epoch, engine_epoch_entry *entry);

/*
 * Replica only (else LSMQ_EINVAL): the store now stands at (epoch, seq)
 * of its master's log (a checkpoint's, or the point it was rebased on),
 * and, when n > 0, holds the master's epoch history: all of it in one
 * synced write, before the first engine_apply from there. LSMQ_EIO,
 * LSMQ_ENOSPC. Not on the writer thread.
 */
int engine_set_position(engine *e, uint64_t epoch, uint64_t seq,
                        const engine_epoch_entry *history, size_t n);

/* ---- Introspection (tools, benchmarks) ---------------------------------- */

/* The column families the store has open, by name ("msg", "idx_key", ...). Owned by e. */
const char *const *engine_families(const engine *e, size_t *n);

/*
 * A RocksDB property ("rocksdb.stats", "rocksdb.estimate-num-keys", ...) of
 * the whole database (family NULL) or of one family by name. The text form
 * is malloc'ed (free with engine_free). LSMQ_ENOTFOUND when RocksDB does
 * not know it or the family is absent.
 */
int engine_property(engine *e, const char *family, const char *name, char **value);
int engine_property_int(engine *e, const char *family, const char *name, uint64_t *value);

/* Approximate bytes the table files hold for one topic's messages. */
uint64_t engine_topic_disk_bytes(engine *e, uint32_t topic_id);

#endif
