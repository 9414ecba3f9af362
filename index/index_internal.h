/* Hook functions of index/, registered by index_attach. Writer thread only. */
#ifndef LSMQ_INDEX_INTERNAL_H
#define LSMQ_INDEX_INTERNAL_H

#include "engine.h"

#define ID_KEY_LEN 8
#define ID_VAL_LEN 16
#define TIME_KEY_LEN 24

void index__id_on_append(void *ctx, engine_batch *b, const engine_stored_msg *m);
void index__time_on_append(void *ctx, engine_batch *b, const engine_stored_msg *m);
/* Removing idx_time entries also removes the idx_id entries their values name. */
void index__time_on_remove(void *ctx, engine *e, engine_batch *b, uint32_t topic_id,
                           uint32_t queue_id, uint64_t begin_offset, uint64_t end_offset);
void index__time_on_topic_delete(void *ctx, engine *e, engine_batch *b, uint32_t topic_id);

#endif
