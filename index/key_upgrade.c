/*
 * Brings a store written before idx_key existed up to date: every stored
 * message gets its key entries, then the store's format version says so.
 * Runs once, at attach time, before the broker accepts any append.
 */
#include <rocksdb/c.h>

#include "index.h"
#include "index_internal.h"

#define UPGRADE_BATCH_MSGS 4096
#define UPGRADE_LOG_EVERY 1000000

typedef struct upgrade_ctx {
    engine *e;
    rocksdb_writebatch_t *wb;
    uint32_t topic_id;
    uint32_t queue_id;
    uint64_t queue_offset;
    const proto_record *r;
} upgrade_ctx;

static void put_one(void *ctx, const char *key, size_t key_len, unsigned kinds)
{
    upgrade_ctx *u = ctx;
    uint8_t k[4 + INDEX_KEY_MAX + 1 + 16], v[KEY_VAL_LEN];
    size_t klen = index_key_key(k, sizeof k, u->topic_id, key, key_len,
                                (uint64_t)u->r->store_timestamp, (uint64_t)u->r->physical_offset);
    proto_put_u32(v, u->queue_id);
    proto_put_u64(v + 4, u->queue_offset);
    v[12] = (uint8_t)kinds;
    rocksdb_writebatch_put_cf(u->wb, engine_cf_handle(u->e, ENGINE_CF_IDX_KEY), (const char *)k,
                              klen, (const char *)v, sizeof v);
}

static int write_batch(engine *e, rocksdb_writebatch_t *wb, int sync)
{
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(wo, sync);
    char *err = NULL;
    rocksdb_write(engine_db(e), wo, wb, &err);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_writebatch_clear(wb);
    if (err) {
        engine_log("indexing keys failed: %s", err);
        rocksdb_free(err);
        return LSMQ_EIO;
    }
    return 0;
}

static int index_all_messages(engine *e, uint64_t *indexed)
{
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_total_order_seek(ro, 1);
    rocksdb_readoptions_set_fill_cache(ro, 0);
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(engine_db(e), ro, engine_cf_handle(e, ENGINE_CF_MSG));
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    upgrade_ctx u = {.e = e, .wb = wb};
    uint64_t n = 0, corrupt = 0;
    int rc = 0;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
        proto_record r;
        if (kl != 16 || proto_record_decode(v, vl, &r) <= 0) {
            corrupt++;
            continue;
        }
        u.topic_id = proto_get_u32(k);
        u.queue_id = proto_get_u32(k + 4);
        u.queue_offset = proto_get_u64(k + 8);
        u.r = &r;
        index__for_each_key(&r, put_one, &u);
        if (++n % UPGRADE_BATCH_MSGS == 0 && (rc = write_batch(e, wb, 0)) != 0)
            break;
        if (n % UPGRADE_LOG_EVERY == 0)
            engine_log("indexing keys: %llu messages done", (unsigned long long)n);
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    if (err) {
        engine_log("indexing keys: reading messages failed: %s", err);
        rocksdb_free(err);
        rc = LSMQ_EIO;
    }
    if (rc == 0)
        rc = write_batch(e, wb, 1);
    rocksdb_writebatch_destroy(wb);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    if (corrupt)
        engine_log("indexing keys: %llu undecodable records skipped",
                   (unsigned long long)corrupt);
    *indexed = n;
    return rc;
}

int index__key_upgrade(engine *e)
{
    if (engine_format_version(e) >= KEY_INDEX_FORMAT_VERSION)
        return 0;
    engine_log("store format %u predates the key index: indexing stored messages",
               engine_format_version(e));
    uint64_t n = 0;
    engine_db_pin(e);
    int rc = index_all_messages(e, &n);
    engine_db_unpin(e);
    if (rc != 0)
        return rc;
    engine_log("indexing keys: %llu messages indexed", (unsigned long long)n);
    return engine_set_format_version(e, KEY_INDEX_FORMAT_VERSION);
}
