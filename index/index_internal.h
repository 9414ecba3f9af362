/* Hook functions of index/, registered by index_attach. Writer thread only. */
#ifndef LSMQ_INDEX_INTERNAL_H
#define LSMQ_INDEX_INTERNAL_H

#include "engine.h"
#include "record.h"

#define ID_KEY_LEN 8
#define ID_VAL_LEN 16
#define TIME_KEY_LEN 24
#define KEY_VAL_LEN 13

/* The store format version from which idx_key is written with every message. */
#define KEY_INDEX_FORMAT_VERSION 2

void index__id_on_append(void *ctx, engine_batch *b, const engine_stored_msg *m);
void index__time_on_append(void *ctx, engine_batch *b, const engine_stored_msg *m);
/* Removing idx_time entries also removes the idx_id entries their values name. */
void index__time_on_remove(void *ctx, engine *e, engine_batch *b, uint32_t topic_id,
                           uint32_t queue_id, uint64_t begin_offset, uint64_t end_offset);
void index__time_on_topic_delete(void *ctx, engine *e, engine_batch *b, uint32_t topic_id);

/* Each indexable key of a record with the INDEX_KEY_* bits it carries (a
 * repeated KEYS word comes again, which rewrites the same entry). */
typedef void (*index_key_fn)(void *ctx, const char *key, size_t key_len, unsigned kinds);
void index__for_each_key(const proto_record *r, index_key_fn fn, void *ctx);

void index__key_on_append(void *ctx, engine_batch *b, const engine_stored_msg *m);
/* Reads the removed messages to find their keys. */
void index__key_on_remove(void *ctx, engine *e, engine_batch *b, uint32_t topic_id,
                          uint32_t queue_id, uint64_t begin_offset, uint64_t end_offset);
void index__key_on_topic_delete(void *ctx, engine *e, engine_batch *b, uint32_t topic_id);

/* Index the messages of a store written before idx_key existed. Before any append. */
int index__key_upgrade(engine *e);

#endif
