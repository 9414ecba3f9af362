/*
 * Subscription group configs and committed consumer offsets. Writes go
 * through the writer (offset commits ride in its groups); reads are point
 * lookups.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "log.h"

#define GROUP_NAME_MAX 255

static int check_group(const char *group, size_t len)
{
    if (!group || len == 0 || memchr(group, 0, len))
        return LSMQ_EINVAL;
    return len > GROUP_NAME_MAX ? LSMQ_ETOOBIG : 0;
}

int engine_group_put(engine *e, const char *group, size_t group_len, const void *cfg,
                     size_t cfg_len)
{
    int rc = check_group(group, group_len);
    if (rc != 0)
        return rc;
    wctl op = {.kind = WCTL_GROUP_PUT, .name = group, .name_len = group_len, .value = cfg,
               .value_len = cfg_len};
    return engine__writer_control(e, &op);
}

int engine_group_put_async(engine *e, const char *group, size_t group_len, const void *cfg,
                           size_t cfg_len, engine_done_fn done, void *ctx)
{
    int rc = check_group(group, group_len);
    if (rc != 0)
        return rc;
    wctl op = {.kind = WCTL_GROUP_PUT, .name = group, .name_len = group_len, .value = cfg,
               .value_len = cfg_len};
    return engine__writer_control_async(e, &op, done, ctx);
}

int engine_group_delete(engine *e, const char *group, size_t group_len)
{
    int rc = check_group(group, group_len);
    if (rc != 0)
        return rc;
    wctl op = {.kind = WCTL_GROUP_DELETE, .name = group, .name_len = group_len};
    return engine__writer_control(e, &op);
}

int engine_group_delete_async(engine *e, const char *group, size_t group_len,
                              engine_done_fn done, void *ctx)
{
    int rc = check_group(group, group_len);
    if (rc != 0)
        return rc;
    wctl op = {.kind = WCTL_GROUP_DELETE, .name = group, .name_len = group_len};
    return engine__writer_control_async(e, &op, done, ctx);
}

int engine_group_get(engine *e, const char *group, size_t group_len, char **cfg,
                     size_t *cfg_len)
{
    int rc = check_group(group, group_len);
    if (rc != 0)
        return rc;
    if (!e->cf[ENGINE_CF_GROUP])
        return LSMQ_ENOTFOUND; /* a read-only store without groups */
    char *err = NULL;
    engine__pin(e);
    char *v = rocksdb_get_cf(e->db, e->ro_default, e->cf[ENGINE_CF_GROUP], group, group_len,
                             cfg_len, &err);
    engine__unpin(e);
    if (err) {
        proto_log(PROTO_LOG_WARN, "engine: group read failed: %s", err);
        rocksdb_free(err);
        return LSMQ_EIO;
    }
    if (!v)
        return LSMQ_ENOTFOUND;
    *cfg = v;
    return 0;
}

int engine_offset_set(engine *e, const char *group, size_t group_len, const char *topic_name,
                      size_t topic_len, uint32_t queue_id, uint64_t offset)
{
    int rc = check_group(group, group_len);
    if (rc == 0)
        rc = engine__topics_validate_name(topic_name, topic_len);
    if (rc != 0)
        return rc;
    wctl op = {.kind = WCTL_OFFSET_SET, .name = group, .name_len = group_len, .name2 = topic_name,
               .name2_len = topic_len, .queue_id = queue_id, .u64 = offset};
    return engine__writer_control(e, &op);
}

int engine_offset_set_async(engine *e, const char *group, size_t group_len,
                            const char *topic_name, size_t topic_len, uint32_t queue_id,
                            uint64_t offset, void (*done)(void *ctx, int status), void *ctx)
{
    int rc = check_group(group, group_len);
    if (rc == 0)
        rc = engine__topics_validate_name(topic_name, topic_len);
    if (rc != 0)
        return rc;
    wctl op = {.kind = WCTL_OFFSET_SET, .name = group, .name_len = group_len, .name2 = topic_name,
               .name2_len = topic_len, .queue_id = queue_id, .u64 = offset};
    return engine__writer_control_async(e, &op, done, ctx);
}

int engine_offset_get(engine *e, const char *group, size_t group_len, const char *topic_name,
                      size_t topic_len, uint32_t queue_id, uint64_t *offset)
{
    int rc = check_group(group, group_len);
    if (rc != 0)
        return rc;
    uint32_t topic_id;
    if ((rc = engine_topic_id(e, topic_name, topic_len, &topic_id)) != 0)
        return rc;
    if (!e->cf[ENGINE_CF_OFFSET])
        return LSMQ_ENOTFOUND;
    uint8_t key[GROUP_NAME_MAX + 9];
    size_t klen = engine__key_offset(key, sizeof key, group, group_len, topic_id, queue_id);
    char *err = NULL;
    size_t vlen = 0;
    engine__pin(e);
    char *v = rocksdb_get_cf(e->db, e->ro_default, e->cf[ENGINE_CF_OFFSET], (const char *)key,
                             klen, &vlen, &err);
    engine__unpin(e);
    if (err) {
        proto_log(PROTO_LOG_WARN, "engine: offset read failed: %s", err);
        rocksdb_free(err);
        return LSMQ_EIO;
    }
    if (!v)
        return LSMQ_ENOTFOUND;
    rc = vlen == 8 ? 0 : LSMQ_ECORRUPT;
    if (rc == 0)
        *offset = proto_get_u64((const uint8_t *)v);
    rocksdb_free(v);
    return rc;
}

int engine__offsets_delete_topic(engine *e, engine_batch *b, uint32_t topic_id)
{
    /* Offsets are keyed by group first; the family is small, so scan it. */
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(e->db, e->ro_default,
                                                        e->cf[ENGINE_CF_OFFSET]);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        engine_consumer_offset o;
        if (engine__key_offset_parse(k, klen, &o) && o.topic_id == topic_id)
            engine_batch_delete(b, ENGINE_CF_OFFSET, k, klen);
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if (err) {
        proto_log(PROTO_LOG_WARN, "engine: scanning offsets failed: %s", err);
        rocksdb_free(err);
        return LSMQ_EIO;
    }
    return 0;
}
