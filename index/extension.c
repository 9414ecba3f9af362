/*
 * index/ as an engine extension: its column families with their options,
 * and the hooks that keep them in step with the messages. Two declarations,
 * with and without idx_key (messageIndexEnable); both are static, so an
 * engine_config may point at them for as long as it likes.
 */
#include <stdio.h>

#include "index.h"
#include "index_internal.h"

static const engine_family_decl families[INDEX_FAM_COUNT] = {
    /* Point lookups by log position: whole-key blooms. */
    [INDEX_FAM_ID] = {INDEX_FAMILY_ID,
                      {.write_buffer_bytes = 32u << 20, .bloom_bits_per_key = 10}},
    /* Seeks within one queue: queue-prefix blooms. */
    [INDEX_FAM_TIME] = {INDEX_FAMILY_TIME,
                        {.write_buffer_bytes = 32u << 20, .fixed_prefix_len = 8,
                         .bloom_bits_per_key = 10, .prefix_bloom_only = 1}},
    /*
     * Lookups scan one (topic, key) prefix: prefix blooms make an absent key
     * cost no data-block reads. Keys arrive in random order: a hash of
     * per-key skiplists makes each insert O(1) where one big skiplist costs a
     * cache miss per level. Entries are small and written once: universal
     * compaction's fewer rewrites leave the CPU to the writer
     * (bench/RESULTS.md, Queries).
     */
    [INDEX_FAM_KEY] = {INDEX_FAMILY_KEY,
                       {.write_buffer_bytes = 32u << 20, .prefix = &index__key_prefix,
                        .hash_memtable = 1, .bloom_bits_per_key = 10, .prefix_bloom_only = 1,
                        .universal_compaction = 1}},
};

static bool has_key_index(const engine_ext_env *x) { return x->n_families > INDEX_FAM_KEY; }

static void on_append(const engine_ext_env *x, engine_batch *b, const engine_stored_msg *m)
{
    index__id_on_append(x->families[INDEX_FAM_ID], b, m);
    index__time_on_append(x->families[INDEX_FAM_TIME], b, m);
    if (has_key_index(x))
        index__key_on_append(x->families[INDEX_FAM_KEY], b, m);
}

/* A pending message: found by its position and keys, never by time. */
static void on_pend(const engine_ext_env *x, engine_batch *b, const engine_stored_msg *m)
{
    index__id_on_append(x->families[INDEX_FAM_ID], b, m);
    if (has_key_index(x))
        index__key_on_append(x->families[INDEX_FAM_KEY], b, m);
}

/* Delivered (on_append indexed m) or dropped: the pending entries go. */
static void on_deliver(const engine_ext_env *x, engine_batch *b, uint64_t old_position,
                       int64_t old_store_ms, const engine_stored_msg *m)
{
    uint8_t key[ID_KEY_LEN];
    index_id_key(key, old_position);
    engine_batch_delete(b, x->families[INDEX_FAM_ID], key, sizeof key);
    /* A dropped message's topic is gone, and its key entries with it. */
    if (m && has_key_index(x))
        index__key_on_deliver(x->families[INDEX_FAM_KEY], b, old_position, old_store_ms, m);
}

static void on_remove(const engine_ext_env *x, const engine_view *v, engine_batch *b,
                      uint32_t topic_id, uint32_t queue_id, uint64_t begin_offset,
                      uint64_t end_offset)
{
    index__time_on_remove(x->families[INDEX_FAM_TIME], x->families[INDEX_FAM_ID], v, b,
                          topic_id, queue_id, begin_offset, end_offset);
    if (has_key_index(x))
        index__key_on_remove(x->families[INDEX_FAM_KEY], v, b, topic_id, queue_id,
                             begin_offset, end_offset);
}

static void on_topic_delete(const engine_ext_env *x, const engine_view *v, engine_batch *b,
                            uint32_t topic_id)
{
    index__time_on_topic_delete(x->families[INDEX_FAM_TIME], x->families[INDEX_FAM_ID], v, b,
                                topic_id);
    if (has_key_index(x))
        index__key_on_topic_delete(x->families[INDEX_FAM_KEY], b, topic_id);
}

static int on_open(const engine_ext_env *x, char *errbuf, size_t errlen)
{
    if (!has_key_index(x))
        return 0;
    int rc = index__key_upgrade(x->e, x->families[INDEX_FAM_KEY]);
    if (rc != 0 && errbuf && errlen)
        snprintf(errbuf, errlen, "indexing the keys of stored messages failed: %s",
                 lsmq_strerror(rc));
    return rc;
}

#define INDEX_HOOKS {.on_append = on_append, .on_remove = on_remove, \
                     .on_topic_delete = on_topic_delete, .on_pend = on_pend, \
                     .on_deliver = on_deliver}

static const engine_extension with_keys = {
    .name = "index", .families = families, .n_families = INDEX_FAM_COUNT,
    .on_open = on_open, .hook = INDEX_HOOKS,
};

static const engine_extension without_keys = {
    .name = "index", .families = families, .n_families = INDEX_FAM_KEY,
    .on_open = on_open, .hook = INDEX_HOOKS,
};

int index_declare(engine_config *c, const index_options *o)
{
    return engine_config_add_extension(c, !o || o->key_index ? &with_keys : &without_keys);
}
