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

#include "engine_ext.h"

#define MIN_OFFSET_UNKNOWN UINT64_MAX
/* Column families of one store: the engine's, the extensions', the undeclared. */
#define ENGINE_MAX_FAMILIES 32
#define MAX_QUEUES_PER_TOPIC 65536

/* One queue of a topic. Published fields are read by any thread. */
typedef struct queue_state {
    _Atomic uint64_t next_offset;  /* published high-water mark: max offset */
    _Atomic uint64_t visible_offset; /* what reads see: next_offset, or less (confirm.c) */
    /*
     * The writer's high-water mark of the write under way, set before it
     * goes to the log: offsets from next_offset up to here are assigned,
     * and may be on a replica already (a write is shipped once on_write
     * announced it), but not published yet. next_offset once settled.
     */
    _Atomic uint64_t written_offset;
    _Atomic uint64_t min_offset;   /* first live offset, or MIN_OFFSET_UNKNOWN */
    _Atomic int64_t last_store_ms; /* store time of the last committed message */
    /* Writer thread only: state of the group being built. */
    uint64_t w_next_offset;
    int64_t w_last_store_ms;
    uint32_t w_touched_gen;        /* == writer generation when already in touched list */
    uint32_t w_moved_gen;          /* == writer generation when a due move advanced it */
} queue_state;

typedef struct topic {
    engine_topic_config cfg;
    uint32_t nqueues;              /* allocated queue states: max(read, write, stored) */
    queue_state *queues;
    UT_hash_handle hh;             /* by name */
    UT_hash_handle hh_id;          /* by topic id */
} topic;

typedef struct writer writer;

/* Pending messages of one topic (timers.c): meta "P" as published and as being written. */
typedef struct pend_count {
    uint32_t topic_id;
    _Atomic uint64_t count;
    uint64_t w_count;              /* writer thread only */
    uint32_t w_touched_gen;
    UT_hash_handle hh;
} pend_count;

/* A queue a due move advanced, for on_advance after the write. */
typedef struct moved_queue {
    uint32_t topic_id;
    uint32_t queue_id;
} moved_queue;

/* Delayed delivery's state (timers.c, timer_move.c). */
typedef struct timer_state {
    pthread_mutex_t lock;          /* guards the shape of `counts` (the writer adds) */
    pend_count *counts;            /* by topic id */
    _Atomic uint64_t total;
    /* Writer thread only. */
    uint64_t w_total;
    pend_count **touched;          /* counts changed by the group being built */
    size_t ntouched, touched_cap;
    uint32_t gen;
    int64_t next_due_ms;           /* <= every pending entry's due time; INT64_MAX: none */
    uint64_t next_due_pos;         /* and no entry of that due time has a smaller position */
    int64_t due_before_move;       /* next_due_ms before the group's move, for a failed write */
    moved_queue *moved;
    size_t nmoved, moved_cap;
    uint8_t *buf;                  /* a moved record being restamped */
    size_t buf_cap;
    rocksdb_readoptions_t *ro;     /* the due scan's bounds */
} timer_state;

/* An extension as this engine runs it: its declaration and what hooks see. */
typedef struct extension {
    engine_extension decl;
    engine_ext_env env;
    engine_cf families[ENGINE_MAX_FAMILIES];
} extension;

struct engine {
    engine_config cfg;
    char *store_path;
    char *db_path;
    bool read_only;
    char *scratch_dir;             /* read-only: the secondary instance's files */
    rocksdb_t *db;
    rocksdb_options_t *db_opts;
    /* Families by number (engine_cf): ENGINE_CF_* first, then each extension's
     * declared ones, then those found on disk that nobody declared. A handle
     * is NULL only for an engine family a read-only store lacks. */
    size_t nfamilies;
    char *cf_names[ENGINE_MAX_FAMILIES];
    rocksdb_options_t *cf_opts[ENGINE_MAX_FAMILIES];
    rocksdb_column_family_handle_t *cf[ENGINE_MAX_FAMILIES];
    uint32_t cf_ids[ENGINE_MAX_FAMILIES]; /* RocksDB's ids, as WriteBatch records name them */
    rocksdb_column_family_handle_t *default_cf; /* RocksDB's own, kept only to close it */
    rocksdb_cache_t *block_cache;
    rocksdb_writeoptions_t *wo_sync;
    rocksdb_writeoptions_t *wo_async;
    rocksdb_readoptions_t *ro_default;

    /* Held for reading around RocksDB use off the writer thread; the writer
     * takes it for writing to reopen the database after a write error. */
    pthread_rwlock_t db_lock;
    _Atomic uint64_t db_generation; /* counts those reopens: a log reader starts over */

    /* Topic map: modified by the writer thread under the write lock. */
    pthread_rwlock_t topics_lock;
    topic *topics_by_name;
    topic *topics_by_id;
    uint32_t next_topic_id;        /* writer thread only after open */

    uint32_t format_version;            /* as recorded in the store */
    _Atomic uint64_t next_log_position; /* published */
    uint64_t w_next_log_position;       /* writer thread only */

    extension exts[ENGINE_MAX_EXTENSIONS];
    int nexts;
    atomic_bool log_watched;       /* replicas read the log now (engine_log_watch) */

    /* Replica: the master sequence applied, as published (durable) and as the
     * writer has it while building a group (writer thread only). */
    _Atomic uint64_t applied_seq;
    uint64_t w_applied_seq;
    struct replica_writer *rw;     /* replica.c's scratch, writer thread only */

    /* Confirmed reads (confirm.c): the queues' published offsets waiting
     * for their batch's confirmation, oldest first, under confirm_lock. */
    pthread_mutex_t confirm_lock;
    struct confirm_mark *marks;
    size_t marks_head, marks_len, marks_cap;
    uint64_t confirmed_seq;

    timer_state tm;

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
 *         "A" -> (replicas) the master sequence applied u64
 *         "R" -> (replicas) the master epoch followed u64, never shipped
 *         "E" -> epoch history: entries of epoch, start_seq, prev_epoch,
 *                prev_end_seq (u64 each), oldest first (epoch.c)
 *         "P" topic_id u32 -> pending messages of the topic u64 (timers.c),
 *                absolute, written in the batch that changes it; absent = 0
 * topic   key: name   value: JSON config (see topics.c)
 * timer   key: deliver_ms u64, log_position u64 (engine_timer_key)
 *         value: topic_id u32, queue_id u32, the stamped record (real topic and
 *         queue id, its own log position, store time = when it was sent,
 *         queue offset 0). Deleted in the batch that delivers it.
 * If you change an encoding, bump ENGINE_FORMAT_VERSION and upgrade old stores
 * in store.c.
 */
#define MSG_KEY_LEN 16
#define HWM_KEY_LEN 9
#define HWM_VAL_LEN 16
#define META_VERSION_KEY "V"
#define META_LOGPOS_KEY "L"
#define META_TOPICSEQ_KEY "T"
#define META_APPLIED_KEY "A"
#define META_FOLLOWED_KEY "R"
#define META_EPOCHS_KEY "E"
#define META_PENDING_KEY "P"
#define PENDING_KEY_LEN 5
#define TIMER_VAL_HEADER 8
size_t engine__key_msg(uint8_t out[MSG_KEY_LEN], uint32_t topic_id, uint32_t queue_id,
                       uint64_t offset);
/* Split a msg key; false when key is not one. */
bool engine__key_msg_parse(const uint8_t *key, size_t len, engine_msg_pos *at);
size_t engine__key_hwm(uint8_t out[HWM_KEY_LEN], uint32_t topic_id, uint32_t queue_id);
/* Offset key into out (cap bytes); returns its length or 0 if it does not fit. */
size_t engine__key_offset(uint8_t *out, size_t cap, const char *group, size_t group_len,
                          uint32_t topic_id, uint32_t queue_id);
/* Split an offset key; false when key is not one. */
bool engine__key_offset_parse(const uint8_t *key, size_t len, engine_consumer_offset *o);

/* ---- families.c: the column families of a store and their options ---- */
/* The engine's own families' names on disk, by ENGINE_CF_*. */
extern const char *const engine__own_cf_names[ENGINE_CF_COUNT];
/* A family's number by name, or -1. */
int engine__family_index(const engine *e, const char *name);
/* Add a family to e's table (name copied, options owned); its number or -1 when full. */
int engine__family_add(engine *e, const char *name, rocksdb_options_t *opts);
/* Live open: the table of the engine's, the extensions' and the undeclared families. */
int engine__families_plan(engine *e, char *errbuf, size_t errlen);
/* Note the RocksDB id of every open family (after opening). */
void engine__families_note_ids(engine *e);
/* A family's number by its RocksDB id, or -1. */
int engine__family_by_id(const engine *e, uint32_t id);
/* Destroy the handles (before rocksdb_close) or the whole table. */
void engine__families_close_handles(engine *e);
void engine__families_free(engine *e);

/* ---- store.c ---- */
/* Map a RocksDB error string to an LSMQ code (ENOSPC, ELOCKED, EIO). */
int engine__rocks_err(const char *err);
/* printf into a caller's error buffer (which may be NULL). */
void engine__fail(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* First line of a RocksDB message, cut in place, so errors stay one line. */
const char *engine__one_line(char *s);
/*
 * Background threads (housekeeper, WAL sync): sleep interval_ms or until
 * engine__bg_stop; false once stopping. They share bg_lock/bg_cond/bg_stop.
 */
bool engine__bg_wait(engine *e, uint32_t interval_ms);
void engine__bg_stop(engine *e);
int64_t engine__now_ms(engine *e);
/* Writer thread: close and reopen the database and reload the state from it. */
int engine__reopen(engine *e);
/*
 * The pin against the writer's reopen after a write error: held around
 * RocksDB use off the writer thread (views hold it). Never wait for the
 * writer while pinned. The writer thread needs none.
 */
void engine__pin(engine *e);
void engine__unpin(engine *e);
/* ---- confirm.c ---- */
/* Writer thread: a queue published next_offset in the batch ending at seq (0: none written). */
void engine__confirm_mark(engine *e, uint32_t topic_id, uint32_t queue_id, queue_state *q,
                          uint64_t next_offset, uint64_t seq);
/* At open: a replica's store is readable only once its master confirms its position. */
void engine__confirm_open(engine *e);
void engine__confirm_free(engine *e);

/* A fresh engine struct (locks initialised) and its release. */
engine *engine__alloc(const char *store_path);
void engine__destroy(engine *e);

/* ---- readonly.c ---- */
/* Remove a read-only engine's scratch directory. */
void engine__readonly_cleanup(engine *e);

/* ---- topics.c ---- */
/* Lookups; caller holds topics_lock (read or write) or is the writer thread. */
topic *engine__topics_find(engine *e, const char *name, size_t len);
topic *engine__topics_find_id(engine *e, uint32_t topic_id);
int engine__topics_load(engine *e, char *errbuf, size_t errlen);
void engine__topics_free_all(engine *e);
int engine__topics_validate_name(const char *name, size_t len);
/* Writer thread: apply a topic put / delete with its own write. */
int engine__topics_apply_put(engine *e, const engine_topic_config *c, engine_topic_config *out);
int engine__topics_apply_delete(engine *e, const char *name, size_t len);
/* Writer thread, after the write: show a stored topic put (create or update,
 * by name) / delete in the map. Takes the write lock. */
void engine__topics_publish_put(engine *e, const engine_topic_config *c);
void engine__topics_publish_delete(engine *e, const char *name, size_t len);
/* Ensure t has at least n queue states; caller holds the write lock. */
void engine__topics_grow_queues(topic *t, uint32_t n);
/* A topic record (key = name, value = JSON) as a config; LSMQ_ECORRUPT. */
int engine__topic_decode(const char *name, size_t name_len, const char *v, size_t vlen,
                         engine_topic_config *c);

/* ---- timers.c: pending counts and the earliest due time ---- */
void engine__timers_init(engine *e);
void engine__timers_free(engine *e);
/* Load "P" and (live, master) the earliest due time; replaces what was loaded. */
int engine__timers_load(engine *e, char *errbuf, size_t errlen);
/* Writer thread: a topic's pending count changes by delta in the group being built. */
void engine__timers_count(engine *e, uint32_t topic_id, int64_t delta);
/* Writer thread: add the changed "P" records to wb. */
void engine__timers_add_counts(engine *e, rocksdb_writebatch_t *wb);
/* Writer thread, after the write: publish (ok) or roll back the group's changes and
 * run on_advance for the queues a due move advanced. */
void engine__timers_settle(engine *e, bool ok);
/* Replica: a "P" record of an applied batch. */
void engine__timers_mirror(engine *e, const uint8_t *key, size_t klen, const uint8_t *val,
                           size_t vlen, bool deleted);

/* ---- timer_move.c (writer thread) ---- */
/* Store one stamped pending record (timed append) in the writer's batch b. */
void engine__timer_put(engine *e, engine_batch *b, uint32_t topic_id, uint32_t queue_id,
                       int64_t deliver_ms, uint64_t log_position, int64_t store_ms,
                       uint8_t *rec, uint32_t size);
/* Move due messages into the writer's batch b, up to max of them and about max_bytes;
 * returns how many went. */
size_t engine__timers_move_due(engine *e, engine_batch *b, int64_t now_ms, size_t max,
                               size_t max_bytes);

/* ---- writer.c ---- */
int engine__writer_start(engine *e);
void engine__writer_stop(engine *e);
typedef enum wctl_kind {
    WCTL_TOPIC_PUT, WCTL_TOPIC_DELETE, WCTL_GROUP_PUT, WCTL_GROUP_DELETE,
    WCTL_OFFSET_SET, WCTL_REMOVE, WCTL_BARRIER,
    WCTL_CHECKPOINT,   /* name: the directory; u64_out: its sequence */
    WCTL_SET_APPLIED,  /* u64: the master sequence a replica's store holds */
    WCTL_EPOCH_BEGIN,  /* u64: the master's new epoch; epoch_out: its history entry */
    WCTL_SET_POSITION  /* u64: seq, epoch, history (may be empty): a replica's position */
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
    uint64_t *u64_out;
    uint64_t epoch;
    const engine_epoch_entry *history;
    size_t history_len;
    engine_epoch_entry *epoch_out;
} wctl;
/* Run a control operation on the writer thread and wait for it. */
int engine__writer_control(engine *e, const wctl *op);
/* Queue one without waiting (strings and topic config copied; no topic_out); done (may be
 * NULL) runs on the writer thread. */
int engine__writer_control_async(engine *e, const wctl *op,
                                 void (*done)(void *ctx, int status), void *ctx);
/* Writer thread: write a batch unless an earlier write failed; records failures. */
int engine__writer_write(engine *e, rocksdb_writebatch_t *wb, int sync);
/* Queue a checked batch of the master's log (engine_apply). */
int engine__writer_apply(engine *e, const engine_log_batch *b, engine_done_fn done, void *ctx);
/* Writer thread: the group being built changes this queue (its mark is written). */
void engine__writer_touch(engine *e, topic *t, uint32_t queue_id);
/*
 * Writer thread: stamp a record (size bytes at rec) as the next message of
 * a touched queue (offset, log position, store_ms), add it to the batch and
 * run the on_append hooks. *m describes it; its fields point at *fields,
 * decoded only when extensions run (else m->fields is NULL).
 */
void engine__writer_put_msg(engine *e, engine_batch *b, topic *t, uint32_t queue_id,
                            uint8_t *rec, uint32_t size, int64_t store_ms, engine_stored_msg *m,
                            proto_record *fields);

/* ---- batch_decode.c: RocksDB's WriteBatch bytes, as the engine writes them ---- */
#define WRITEBATCH_HEADER_LEN 12 /* sequence u64, count u32, little-endian */
typedef enum batch_op_kind { BATCH_PUT, BATCH_DELETE, BATCH_DELETE_RANGE } batch_op_kind;
typedef struct batch_op {
    batch_op_kind kind;
    engine_cf cf;            /* the family, by this store's number */
    const uint8_t *key;      /* a range's begin */
    size_t klen;
    const uint8_t *val;      /* a put's value, a range's end */
    size_t vlen;
} batch_op;
/*
 * Walk the records of a WriteBatch's bytes in order; a nonzero return of fn
 * stops the walk and is returned. LSMQ_ECORRUPT with a message in errbuf
 * when the bytes do not parse, the header's count disagrees, a record names
 * a family this store lacks, or its kind is one the engine never writes.
 */
int engine__batch_walk(const engine *e, const uint8_t *data, size_t len,
                       int (*fn)(void *ctx, const batch_op *op), void *ctx, char *errbuf,
                       size_t errlen);
/* The header's count (data holds at least WRITEBATCH_HEADER_LEN bytes). */
uint32_t engine__batch_count(const uint8_t *data);

/* ---- replica.c: the writer's side of engine_apply (writer thread only) ---- */
/* Add one checked batch to the write being built. */
void engine__replica_add(engine *e, const uint8_t *data, size_t len);
/* Write what was added with the applied sequence e->w_applied_seq, synced in
 * SYNC_FLUSH (0 when nothing was added). */
int engine__replica_write(engine *e);
/* After the write: show one batch's effects in the in-memory state. */
void engine__replica_mirror(engine *e, const uint8_t *data, size_t len);
/* Publish the applied sequence and run on_advance for the queues that moved. */
void engine__replica_settle(engine *e);
/* Record a checkpoint's sequence (with what wb already holds) in one synced write; frees wb. */
int engine__replica_record(engine *e, rocksdb_writebatch_t *wb, uint64_t seq);
void engine__replica_free(engine *e);

/* ---- epoch.c (writer thread) ---- */
/* Append a master's promotion record for epoch (engine_epoch_begin). */
int engine__epoch_begin_now(engine *e, uint64_t epoch, engine_epoch_entry *entry);
/* Write a replica's position (and its master's history when n > 0), synced. */
int engine__epoch_position_now(engine *e, uint64_t epoch, uint64_t seq,
                               const engine_epoch_entry *h, size_t n);

/* ---- checkpoint.c (writer thread) ---- */
int engine__checkpoint_now(engine *e, const char *dir, uint64_t *seq);

/* ---- read.c ---- */
/*
 * The first stored offset of a queue below max, with one seek; max when
 * there is none. Under snap when not NULL (a view's), else as published.
 * The caller holds the pin or is the writer thread.
 */
uint64_t engine__first_offset(engine *e, const rocksdb_snapshot_t *snap, uint32_t topic_id,
                              uint32_t queue_id, uint64_t max);
/* First live offset of a queue (cached; computed with one seek). */
uint64_t engine__min_offset(engine *e, topic *t, uint32_t queue_id);

/* ---- view.c ---- */
struct engine_view {
    engine *e;
    const rocksdb_snapshot_t *snap; /* NULL on a read-only engine: it is frozen */
    rocksdb_readoptions_t *ro;      /* point reads, under the snapshot */
    uint64_t sequence;
};

/* ---- offsets.c ---- */
/* Writer thread: add the deletes of every consumer offset of a topic. */
int engine__offsets_delete_topic(engine *e, engine_batch *b, uint32_t topic_id);

/* ---- wal_sync.c: ASYNC_FLUSH's WAL sync thread (shares bg_lock/bg_cond/bg_stop) ---- */
int engine__wal_sync_start(engine *e);
void engine__wal_sync_stop(engine *e);

/* ---- retention.c ---- */
int engine__retention_start(engine *e);
void engine__retention_stop(engine *e);

#endif
