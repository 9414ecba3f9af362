/*
 * What RocksDB says about the store, for tools and benchmarks: properties
 * of the database or of one family, and the disk space of a topic. Each
 * call holds the pin against the writer's reopen while it asks.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The handle of a family by name (NULL = RocksDB's default family); false when absent. */
static bool family_handle(engine *e, const char *family, rocksdb_column_family_handle_t **h)
{
    if (!family) {
        *h = NULL;
        return true;
    }
    int i = engine__family_index(e, family);
    *h = i >= 0 ? e->cf[i] : NULL;
    return *h != NULL;
}

int engine_property(engine *e, const char *family, const char *name, char **value)
{
    *value = NULL;
    engine__pin(e);
    rocksdb_column_family_handle_t *h;
    if (e->db && family_handle(e, family, &h))
        *value = h ? rocksdb_property_value_cf(e->db, h, name)
                   : rocksdb_property_value(e->db, name);
    engine__unpin(e);
    return *value ? 0 : LSMQ_ENOTFOUND;
}

int engine_property_int(engine *e, const char *family, const char *name, uint64_t *value)
{
    int rc = LSMQ_ENOTFOUND;
    engine__pin(e);
    rocksdb_column_family_handle_t *h;
    if (e->db && family_handle(e, family, &h)) {
        int got = h ? rocksdb_property_int_cf(e->db, h, name, value)
                    : rocksdb_property_int(e->db, name, value);
        rc = got == 0 ? 0 : LSMQ_ENOTFOUND;
    }
    engine__unpin(e);
    return rc;
}

uint64_t engine_topic_disk_bytes(engine *e, uint32_t topic_id)
{
    uint8_t lo[MSG_KEY_LEN], hi[MSG_KEY_LEN];
    engine__key_msg(lo, topic_id, 0, 0);
    size_t hi_len = sizeof hi;
    if (topic_id == UINT32_MAX) /* no next topic: every key starting with the id */
        memset(hi, 0xff, sizeof hi);
    else
        engine__key_msg(hi, topic_id + 1, 0, 0);
    const char *start = (const char *)lo, *limit = (const char *)hi;
    size_t lo_len = sizeof lo;
    uint64_t size = 0;
    char *err = NULL;
    engine__pin(e);
    if (e->db && e->cf[ENGINE_CF_MSG])
        rocksdb_approximate_sizes_cf(e->db, e->cf[ENGINE_CF_MSG], 1, &start, &lo_len, &limit,
                                     &hi_len, &size, &err);
    engine__unpin(e);
    if (err) {
        rocksdb_free(err);
        return 0;
    }
    return size;
}
