/*
 * Typed reads over a view: the store's bookkeeping, topics, queues (their
 * high-water marks and first stored offsets), subscription groups and
 * consumer offsets, decoded from the engine's families as the view sees
 * them. Callers never meet a key layout (internal.h has them).
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"

int engine_view_meta(const engine_view *v, engine_store_meta *out)
{
    memset(out, 0, sizeof *out);
    uint8_t *val;
    size_t len;
    int rc = engine_view_get(v, ENGINE_CF_META, META_VERSION_KEY, 1, &val, &len);
    if (rc == 0) {
        if (len == 4)
            out->format_version = proto_get_u32(val);
        engine_free(val);
    } else if (rc != LSMQ_ENOTFOUND) {
        return rc;
    }
    rc = engine_view_get(v, ENGINE_CF_META, META_LOGPOS_KEY, 1, &val, &len);
    if (rc == 0) {
        if (len == 8)
            out->next_log_position = proto_get_u64(val);
        engine_free(val);
    }
    return rc == LSMQ_ENOTFOUND ? 0 : rc;
}

/* ---- Topics ---- */

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const engine_topic_config *)a)->name, ((const engine_topic_config *)b)->name);
}

int engine_view_topics(const engine_view *v, engine_topic_config **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    engine_iter *it = engine_iter_create(v, ENGINE_CF_TOPIC, NULL, 0, NULL, 0, ENGINE_ITER_LOOKUP);
    if (!it)
        return LSMQ_EIO;
    size_t cap = 0, len = 0;
    engine_topic_config *arr = NULL;
    int rc = 0;
    for (engine_iter_seek(it, NULL, 0); engine_iter_valid(it); engine_iter_next(it)) {
        size_t klen, vlen;
        const uint8_t *k = engine_iter_key(it, &klen);
        const uint8_t *val = engine_iter_value(it, &vlen);
        if (len == cap) {
            cap = cap ? cap * 2 : 64;
            arr = proto_xrealloc(arr, cap * sizeof *arr);
        }
        if ((rc = engine__topic_decode((const char *)k, klen, (const char *)val, vlen,
                                       &arr[len])) != 0) {
            proto_log(PROTO_LOG_WARN, "engine: corrupt topic config for '%.*s'", (int)klen,
                      (const char *)k);
            break;
        }
        len++;
    }
    if (rc == 0)
        rc = engine_iter_error(it, NULL, 0);
    engine_iter_destroy(it);
    if (rc != 0) {
        free(arr);
        return rc;
    }
    /* Keys are in byte order already; sorting by strcmp says what callers get. */
    if (len)
        qsort(arr, len, sizeof *arr, cmp_name);
    *out = arr;
    *n = len;
    return 0;
}

int engine_view_topic(const engine_view *v, const char *name, size_t len,
                      engine_topic_config *out)
{
    uint8_t *val;
    size_t vlen;
    int rc = engine_view_get(v, ENGINE_CF_TOPIC, name, len, &val, &vlen);
    if (rc != 0)
        return rc;
    rc = engine__topic_decode(name, len, (const char *)val, vlen, out);
    engine_free(val);
    return rc;
}

int engine_view_topic_by_id(const engine_view *v, uint32_t topic_id, engine_topic_config *out)
{
    /* A topic's name never changes and its id is never reused, so the
     * engine's map gives the name; the view gives the config. */
    char name[PROTO_TOPIC_MAX + 1];
    engine *e = v->e;
    pthread_rwlock_rdlock(&e->topics_lock);
    topic *t = engine__topics_find_id(e, topic_id);
    if (t)
        memcpy(name, t->cfg.name, sizeof name);
    pthread_rwlock_unlock(&e->topics_lock);
    if (!t)
        return LSMQ_ENOTFOUND;
    return engine_view_topic(v, name, strlen(name), out);
}

/* ---- Queues ---- */

static uint32_t queue_nums(const engine_topic_config *c)
{
    return c->read_queue_nums > c->write_queue_nums ? c->read_queue_nums : c->write_queue_nums;
}

/* A queue's high-water mark: 0 and the two values, or LSMQ_ENOTFOUND. */
static int read_hwm(const engine_view *v, uint32_t topic_id, uint32_t queue_id, uint64_t *next,
                    int64_t *last_ms)
{
    uint8_t k[HWM_KEY_LEN];
    engine__key_hwm(k, topic_id, queue_id);
    uint8_t *val;
    size_t len;
    int rc = engine_view_get(v, ENGINE_CF_META, k, sizeof k, &val, &len);
    if (rc != 0)
        return rc;
    if (len == HWM_VAL_LEN) {
        *next = proto_get_u64(val);
        *last_ms = (int64_t)proto_get_u64(val + 8);
    } else {
        rc = LSMQ_ECORRUPT;
    }
    engine_free(val);
    return rc;
}

static void fill_min(const engine_view *v, uint32_t topic_id, uint32_t queue_id,
                     engine_queue_info *q)
{
    q->min_offset = engine__first_offset(v->e, v->snap, topic_id, queue_id, q->max_offset);
}

int engine_view_queue(const engine_view *v, uint32_t topic_id, uint32_t queue_id,
                      engine_queue_info *out)
{
    engine_topic_config c;
    int rc = engine_view_topic_by_id(v, topic_id, &c);
    if (rc != 0)
        return rc;
    memset(out, 0, sizeof *out);
    out->in_config = queue_id < queue_nums(&c);
    rc = read_hwm(v, topic_id, queue_id, &out->max_offset, &out->last_store_ms);
    if (rc == LSMQ_ENOTFOUND && out->in_config)
        rc = 0; /* nothing was ever appended */
    if (rc != 0)
        return rc;
    fill_min(v, topic_id, queue_id, out);
    return 0;
}

int engine_view_queues(const engine_view *v, uint32_t topic_id, engine_queue_info **out,
                       size_t *n)
{
    *out = NULL;
    *n = 0;
    engine_topic_config c;
    int rc = engine_view_topic_by_id(v, topic_id, &c);
    if (rc != 0)
        return rc;
    size_t count = queue_nums(&c);
    engine_queue_info *q = proto_xcalloc(count ? count : 1, sizeof *q);
    for (size_t i = 0; i < count; i++)
        q[i].in_config = true;
    uint8_t lo[HWM_KEY_LEN], hi[HWM_KEY_LEN];
    engine__key_hwm(lo, topic_id, 0);
    engine__key_hwm(hi, topic_id, UINT32_MAX);
    engine_iter *it = engine_iter_create(v, ENGINE_CF_META, lo, sizeof lo, hi, sizeof hi,
                                         ENGINE_ITER_LOOKUP);
    if (!it) {
        free(q);
        return LSMQ_EIO;
    }
    for (engine_iter_seek(it, NULL, 0); engine_iter_valid(it); engine_iter_next(it)) {
        size_t klen, vlen;
        const uint8_t *k = engine_iter_key(it, &klen);
        const uint8_t *val = engine_iter_value(it, &vlen);
        uint32_t qid = klen == HWM_KEY_LEN ? proto_get_u32(k + 5) : UINT32_MAX;
        if (vlen != HWM_VAL_LEN || qid >= MAX_QUEUES_PER_TOPIC)
            continue;
        if (qid >= count) { /* a shrink kept this queue's data */
            q = proto_xrealloc(q, (qid + 1) * sizeof *q);
            memset(q + count, 0, (qid + 1 - count) * sizeof *q);
            count = qid + 1;
        }
        q[qid].max_offset = proto_get_u64(val);
        q[qid].last_store_ms = (int64_t)proto_get_u64(val + 8);
    }
    rc = engine_iter_error(it, NULL, 0);
    engine_iter_destroy(it);
    if (rc != 0) {
        free(q);
        return rc;
    }
    for (size_t i = 0; i < count; i++)
        fill_min(v, topic_id, (uint32_t)i, &q[i]);
    *out = count ? q : NULL;
    if (!count)
        free(q);
    *n = count;
    return 0;
}

/* ---- Groups and consumer offsets ---- */

int engine_view_groups(const engine_view *v, engine_group_fn fn, void *ctx)
{
    engine_iter *it = engine_iter_create(v, ENGINE_CF_GROUP, NULL, 0, NULL, 0, ENGINE_ITER_LOOKUP);
    if (!it)
        return 0; /* a read-only store without the family has no groups */
    int rc = 0;
    for (engine_iter_seek(it, NULL, 0); rc == 0 && engine_iter_valid(it); engine_iter_next(it)) {
        size_t klen, vlen;
        const char *k = (const char *)engine_iter_key(it, &klen);
        const char *val = (const char *)engine_iter_value(it, &vlen);
        rc = fn(ctx, k, klen, val, vlen);
    }
    char err[256];
    if (engine_iter_error(it, err, sizeof err) != 0) {
        proto_log(PROTO_LOG_WARN, "engine: listing groups failed: %s", err);
        rc = LSMQ_EIO;
    }
    engine_iter_destroy(it);
    return rc;
}

int engine_view_offsets(const engine_view *v, const char *group, size_t group_len,
                        engine_offset_fn fn, void *ctx)
{
    /* One group's keys share the prefix group bytes + 0x00; the next byte up ends them. */
    uint8_t *lo = NULL, *hi = NULL;
    if (group) {
        lo = proto_xmalloc(group_len + 1);
        hi = proto_xmalloc(group_len + 1);
        memcpy(lo, group, group_len);
        lo[group_len] = 0;
        memcpy(hi, group, group_len);
        hi[group_len] = 1;
    }
    engine_iter *it = engine_iter_create(v, ENGINE_CF_OFFSET, lo, group_len + 1, hi,
                                         group_len + 1, ENGINE_ITER_LOOKUP);
    free(lo);
    free(hi);
    if (!it)
        return 0;
    int rc = 0;
    for (engine_iter_seek(it, NULL, 0); rc == 0 && engine_iter_valid(it); engine_iter_next(it)) {
        size_t klen, vlen;
        const uint8_t *k = engine_iter_key(it, &klen);
        const uint8_t *val = engine_iter_value(it, &vlen);
        engine_consumer_offset o;
        if (!engine__key_offset_parse(k, klen, &o) || vlen != 8)
            continue; /* not an offset record */
        o.offset = proto_get_u64(val);
        rc = fn(ctx, &o);
    }
    char err[256];
    if (engine_iter_error(it, err, sizeof err) != 0) {
        proto_log(PROTO_LOG_WARN, "engine: reading consumer offsets failed: %s", err);
        rc = LSMQ_EIO;
    }
    engine_iter_destroy(it);
    return rc;
}
