/*
 * idx_id: log position -> (topic id, queue id, queue offset). Resolves the
 * offset message id (store host + log position) to a stored message.
 */
#include <stdlib.h>

#include <rocksdb/c.h>

#include "index.h"
#include "index_internal.h"

size_t index_id_key(uint8_t out[8], uint64_t log_position)
{
    proto_put_u64(out, log_position);
    return ID_KEY_LEN;
}

void index__id_on_append(void *ctx, engine_batch *b, const engine_stored_msg *m)
{
    uint8_t key[ID_KEY_LEN], val[ID_VAL_LEN];
    index_id_key(key, m->log_position);
    proto_put_u32(val, m->topic_id);
    proto_put_u32(val + 4, m->queue_id);
    proto_put_u64(val + 8, m->queue_offset);
    engine_batch_put(b, ENGINE_CF_IDX_ID, key, sizeof key, val, sizeof val);
}

static int get_cf(engine *e, rocksdb_readoptions_t *ro, engine_cf cf, const uint8_t *key,
                  size_t klen, char **val, size_t *vlen)
{
    char *err = NULL;
    *val = rocksdb_get_cf(engine_db(e), ro, engine_cf_handle(e, cf), (const char *)key, klen,
                          vlen, &err);
    if (err) {
        rocksdb_free(err);
        return LSMQ_EIO;
    }
    return *val ? 0 : LSMQ_ENOTFOUND;
}

static int locate_with(engine *e, rocksdb_readoptions_t *ro, uint64_t log_position,
                       uint32_t *topic_id, uint32_t *queue_id, uint64_t *queue_offset)
{
    uint8_t key[ID_KEY_LEN];
    index_id_key(key, log_position);
    char *v;
    size_t vlen;
    int rc = get_cf(e, ro, ENGINE_CF_IDX_ID, key, sizeof key, &v, &vlen);
    if (rc != 0)
        return rc;
    if (vlen != ID_VAL_LEN) {
        rocksdb_free(v);
        return LSMQ_ECORRUPT;
    }
    *topic_id = proto_get_u32((const uint8_t *)v);
    *queue_id = proto_get_u32((const uint8_t *)v + 4);
    *queue_offset = proto_get_u64((const uint8_t *)v + 8);
    rocksdb_free(v);
    return 0;
}

int index_locate(engine *e, uint64_t log_position, uint32_t *topic_id, uint32_t *queue_id,
                 uint64_t *queue_offset)
{
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    engine_db_pin(e);
    int rc = locate_with(e, ro, log_position, topic_id, queue_id, queue_offset);
    engine_db_unpin(e);
    rocksdb_readoptions_destroy(ro);
    return rc;
}

int index_get_by_position(engine *e, uint64_t log_position, uint8_t **rec, size_t *len)
{
    /* One snapshot for the index entry and the message it points at. */
    engine_db_pin(e);
    const rocksdb_snapshot_t *snap = rocksdb_create_snapshot(engine_db(e));
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_snapshot(ro, snap);
    uint32_t topic_id, queue_id;
    uint64_t offset;
    int rc = locate_with(e, ro, log_position, &topic_id, &queue_id, &offset);
    if (rc == 0) {
        uint8_t key[16];
        proto_put_u32(key, topic_id);
        proto_put_u32(key + 4, queue_id);
        proto_put_u64(key + 8, offset);
        char *v;
        rc = get_cf(e, ro, ENGINE_CF_MSG, key, sizeof key, &v, len);
        if (rc == 0)
            *rec = (uint8_t *)v;
    }
    rocksdb_readoptions_destroy(ro);
    rocksdb_release_snapshot(engine_db(e), snap);
    engine_db_unpin(e);
    return rc;
}

int index_edge_message(engine *e, int newest, uint64_t *log_position, int64_t *store_ms)
{
    int rc = LSMQ_ENOTFOUND;
    engine_db_pin(e);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf(engine_db(e), ro, engine_cf_handle(e, ENGINE_CF_IDX_ID));
    if (newest)
        rocksdb_iter_seek_to_last(it);
    else
        rocksdb_iter_seek_to_first(it);
    if (rocksdb_iter_valid(it)) {
        size_t klen = 0;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen == ID_KEY_LEN) {
            *log_position = proto_get_u64((const uint8_t *)k);
            rc = 0;
        }
    }
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    engine_db_unpin(e);
    if (rc != 0)
        return rc;
    uint8_t *rec = NULL;
    size_t len = 0;
    proto_record r;
    *store_ms = 0;
    if (index_get_by_position(e, *log_position, &rec, &len) == 0 &&
        proto_record_decode(rec, len, &r) > 0)
        *store_ms = r.store_timestamp;
    engine_free(rec);
    return 0;
}
