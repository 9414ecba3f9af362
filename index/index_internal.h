/*
 * Shared by the files of index/: the declared families' order, value
 * sizes, and the per-family hook functions extension.c dispatches to.
 * Hook functions run on the writer thread and take the family numbers the
 * engine handed out at open.
 */
#ifndef LSMQ_INDEX_INTERNAL_H
#define LSMQ_INDEX_INTERNAL_H

#include "engine_ext.h"
#include "record.h"

/* The extension's families in declaration order (engine_ext_env.families). */
enum { INDEX_FAM_ID = 0, INDEX_FAM_TIME, INDEX_FAM_KEY, INDEX_FAM_COUNT };

#define ID_KEY_LEN 8
#define ID_VAL_LEN 16
#define TIME_KEY_LEN 24
#define KEY_VAL_LEN 13

/* The store format version from which idx_key is written with every message. */
#define KEY_INDEX_FORMAT_VERSION 2

/* ---- key_prefix.c ---- */
/* idx_key's prefix: topic id + key + its 0x00. */
extern const engine_prefix_extractor index__key_prefix;

/* ---- id_index.c, time_index.c ---- */
void index__id_on_append(engine_cf id_cf, engine_batch *b, const engine_stored_msg *m);
void index__time_on_append(engine_cf time_cf, engine_batch *b, const engine_stored_msg *m);
/* Removing idx_time entries also removes the idx_id entries their values name. */
void index__time_on_remove(engine_cf time_cf, engine_cf id_cf, const engine_view *v,
                           engine_batch *b, uint32_t topic_id, uint32_t queue_id,
                           uint64_t begin_offset, uint64_t end_offset);
void index__time_on_topic_delete(engine_cf time_cf, engine_cf id_cf, const engine_view *v,
                                 engine_batch *b, uint32_t topic_id);

/* ---- key_index.c, key_removal.c, key_upgrade.c ---- */
/* Each indexable key of a record with the INDEX_KEY_* bits it carries (a
 * repeated KEYS word comes again, which rewrites the same entry). */
typedef void (*index_key_fn)(void *ctx, const char *key, size_t key_len, unsigned kinds);
void index__for_each_key(const proto_record *r, index_key_fn fn, void *ctx);

/*
 * Every message of the view in [from, to) (NULL: open) that decodes, in key
 * order: fn(ctx, at, record) until it returns nonzero, which is returned.
 * *undecodable (if not NULL) counts the records skipped; LSMQ_EIO when the
 * messages cannot be read.
 */
typedef int (*index_msg_fn)(void *ctx, const engine_msg_pos *at, const proto_record *r);
int index__for_each_message(const engine_view *v, const engine_msg_pos *from,
                            const engine_msg_pos *to, index_msg_fn fn, void *ctx,
                            uint64_t *undecodable);

void index__key_on_append(engine_cf key_cf, engine_batch *b, const engine_stored_msg *m);
/* Reads the removed messages (still in the view) to find their keys. */
void index__key_on_remove(engine_cf key_cf, const engine_view *v, engine_batch *b,
                          uint32_t topic_id, uint32_t queue_id, uint64_t begin_offset,
                          uint64_t end_offset);
void index__key_on_topic_delete(engine_cf key_cf, engine_batch *b, uint32_t topic_id);
/* A pending message stored at old_position / old_store_ms was delivered as m. */
void index__key_on_deliver(engine_cf key_cf, engine_batch *b, uint64_t old_position,
                           int64_t old_store_ms, const engine_stored_msg *m);

/* Index the messages of a store written before idx_key existed. From on_open. */
int index__key_upgrade(engine *e, engine_cf key_cf);

#endif
