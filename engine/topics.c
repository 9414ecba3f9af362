/*
 * Topics: the in-memory map (by name and by id) with each queue's published
 * offsets, its persistence in the `topic` family as JSON, and creation,
 * update and deletion, which run on the writer thread so every change to the
 * store passes through one WriteBatch stream.
 *
 * Topic value (JSON): {"id":N,"readQueueNums":N,"writeQueueNums":N,
 * "perm":N,"order":bool,"attributes":"..."}. Topic ids come from the meta
 * "T" sequence and are never reused, so a re-created topic starts empty.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"


topic *engine__topics_find(engine *e, const char *name, size_t len)
{
    topic *t = NULL;
    HASH_FIND(hh, e->topics_by_name, name, len, t);
    return t;
}

topic *engine__topics_find_id(engine *e, uint32_t topic_id)
{
    topic *t = NULL;
    HASH_FIND(hh_id, e->topics_by_id, &topic_id, sizeof topic_id, t);
    return t;
}

int engine__topics_validate_name(const char *name, size_t len)
{
    if (!name || len == 0)
        return LSMQ_EINVAL;
    if (len > PROTO_TOPIC_MAX)
        return LSMQ_ETOOBIG;
    /* RocketMQ's topic character set: ^[%|a-zA-Z0-9_-]+$ */
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                 (ch >= '0' && ch <= '9') || ch == '%' || ch == '|' || ch == '_' || ch == '-';
        if (!ok)
            return LSMQ_EINVAL;
    }
    return 0;
}

void engine__topics_grow_queues(topic *t, uint32_t n)
{
    if (n <= t->nqueues)
        return;
    queue_state *q = proto_xrealloc(t->queues, n * sizeof *q);
    for (uint32_t i = t->nqueues; i < n; i++) {
        atomic_init(&q[i].next_offset, 0);
        atomic_init(&q[i].visible_offset, 0);
        atomic_init(&q[i].written_offset, 0);
        atomic_init(&q[i].min_offset, 0);
        atomic_init(&q[i].last_store_ms, 0);
        q[i].w_next_offset = 0;
        q[i].w_last_store_ms = 0;
        q[i].w_touched_gen = 0;
        q[i].w_moved_gen = 0;
    }
    t->queues = q;
    t->nqueues = n;
}

static uint32_t queue_count(const engine_topic_config *c)
{
    return c->read_queue_nums > c->write_queue_nums ? c->read_queue_nums : c->write_queue_nums;
}

static char *config_to_json(const engine_topic_config *c)
{
    json_t *o = json_pack("{s:I,s:I,s:I,s:I,s:b,s:s}", "id", (json_int_t)c->topic_id,
                          "readQueueNums", (json_int_t)c->read_queue_nums, "writeQueueNums",
                          (json_int_t)c->write_queue_nums, "perm", (json_int_t)c->perm,
                          "order", c->order, "attributes", c->attributes);
    if (!o)
        proto_oom(0);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s)
        proto_oom(0);
    return s;
}

int engine__topic_decode(const char *name, size_t name_len, const char *v, size_t vlen,
                            engine_topic_config *c)
{
    json_error_t jerr;
    json_t *o = json_loadb(v, vlen, 0, &jerr);
    if (!o)
        return LSMQ_ECORRUPT;
    json_int_t id = 0, rq = 0, wq = 0, perm = 6;
    int order = 0;
    const char *attrs = "";
    int rc = json_unpack(o, "{s:I,s:I,s:I,s?I,s?b,s?s}", "id", &id, "readQueueNums", &rq,
                         "writeQueueNums", &wq, "perm", &perm, "order", &order, "attributes",
                         &attrs);
    if (rc == 0 && (id <= 0 || id > UINT32_MAX || rq < 0 || wq < 0 || rq > MAX_QUEUES_PER_TOPIC ||
                    wq > MAX_QUEUES_PER_TOPIC || name_len > PROTO_TOPIC_MAX))
        rc = -1;
    if (rc == 0) {
        memset(c, 0, sizeof *c);
        memcpy(c->name, name, name_len);
        c->topic_id = (uint32_t)id;
        c->read_queue_nums = (uint32_t)rq;
        c->write_queue_nums = (uint32_t)wq;
        c->perm = (uint32_t)perm;
        c->order = order;
        snprintf(c->attributes, sizeof c->attributes, "%s", attrs);
    }
    json_decref(o);
    return rc == 0 ? 0 : LSMQ_ECORRUPT;
}

static topic *topic_new(const engine_topic_config *c)
{
    topic *t = proto_xcalloc(1, sizeof *t);
    t->cfg = *c;
    engine__topics_grow_queues(t, queue_count(c));
    return t;
}

static void topic_free(topic *t)
{
    free(t->queues);
    free(t);
}

void engine__topics_free_all(engine *e)
{
    topic *t, *tmp;
    HASH_ITER(hh, e->topics_by_name, t, tmp) {
        HASH_DELETE(hh, e->topics_by_name, t);
        HASH_DELETE(hh_id, e->topics_by_id, t);
        topic_free(t);
    }
}

static void topic_insert(engine *e, topic *t)
{
    HASH_ADD_KEYPTR(hh, e->topics_by_name, t->cfg.name, strlen(t->cfg.name), t);
    HASH_ADD(hh_id, e->topics_by_id, cfg.topic_id, sizeof t->cfg.topic_id, t);
}

/* Load the high-water marks ("H" keys) into the queues of loaded topics. */
static int load_hwms(engine *e, char *errbuf, size_t errlen)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(e->db, e->ro_default, e->cf[ENGINE_CF_META]);
    size_t stale = 0;
    for (rocksdb_iter_seek(it, "H", 1); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &klen);
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vlen);
        if (klen != HWM_KEY_LEN || k[0] != 'H')
            break;
        if (vlen != 16) {
            snprintf(errbuf, errlen, "corrupt high-water mark record");
            rocksdb_iter_destroy(it);
            return LSMQ_ECORRUPT;
        }
        topic *t = engine__topics_find_id(e, proto_get_u32(k + 1));
        uint32_t qid = proto_get_u32(k + 5);
        if (!t || qid >= MAX_QUEUES_PER_TOPIC) {
            stale++;
            continue;
        }
        engine__topics_grow_queues(t, qid + 1);
        queue_state *q = &t->queues[qid];
        uint64_t next = proto_get_u64(v);
        int64_t last_ms = (int64_t)proto_get_u64(v + 8);
        atomic_store(&q->next_offset, next);
        atomic_store(&q->visible_offset, next);
        atomic_store(&q->written_offset, next);
        atomic_store(&q->last_store_ms, last_ms);
        atomic_store(&q->min_offset, MIN_OFFSET_UNKNOWN);
        q->w_next_offset = next;
        q->w_last_store_ms = last_ms;
    }
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if (err) {
        snprintf(errbuf, errlen, "reading high-water marks: %s", err);
        rocksdb_free(err);
        return LSMQ_EIO;
    }
    if (stale)
        proto_log(PROTO_LOG_WARN, "engine: ignored %zu high-water marks of deleted topics", stale);
    return 0;
}

int engine__topics_load(engine *e, char *errbuf, size_t errlen)
{
    char *err = NULL;
    size_t vlen;
    char *v = rocksdb_get_cf(e->db, e->ro_default, e->cf[ENGINE_CF_META], META_TOPICSEQ_KEY, 1,
                             &vlen, &err);
    if (err) {
        snprintf(errbuf, errlen, "reading topic id sequence: %s", err);
        rocksdb_free(err);
        return LSMQ_EIO;
    }
    e->next_topic_id = (v && vlen == 4) ? proto_get_u32((const uint8_t *)v) : 1;
    rocksdb_free(v);

    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(e->db, e->ro_default, e->cf[ENGINE_CF_TOPIC]);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *val = rocksdb_iter_value(it, &vlen);
        engine_topic_config c;
        if (engine__topic_decode(k, klen, val, vlen, &c) != 0) {
            snprintf(errbuf, errlen, "corrupt topic config for '%.*s'", (int)klen, k);
            rocksdb_iter_destroy(it);
            return LSMQ_ECORRUPT;
        }
        if (c.topic_id >= e->next_topic_id)
            e->next_topic_id = c.topic_id + 1;
        topic_insert(e, topic_new(&c));
    }
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    if (err) {
        snprintf(errbuf, errlen, "reading topics: %s", err);
        rocksdb_free(err);
        return LSMQ_EIO;
    }
    return load_hwms(e, errbuf, errlen);
}

int engine__topics_apply_put(engine *e, const engine_topic_config *c, engine_topic_config *out)
{
    size_t name_len = strnlen(c->name, sizeof c->name);
    topic *t = engine__topics_find(e, c->name, name_len);
    engine_topic_config nc = *c;
    memset(nc.name, 0, sizeof nc.name);
    memcpy(nc.name, c->name, name_len);
    nc.topic_id = t ? t->cfg.topic_id : e->next_topic_id;

    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    char *json = config_to_json(&nc);
    rocksdb_writebatch_put_cf(wb, e->cf[ENGINE_CF_TOPIC], nc.name, name_len, json, strlen(json));
    free(json);
    if (!t) {
        uint8_t seq[4];
        proto_put_u32(seq, nc.topic_id + 1);
        rocksdb_writebatch_put_cf(wb, e->cf[ENGINE_CF_META], META_TOPICSEQ_KEY, 1,
                                  (const char *)seq, 4);
    }
    int rc = engine__writer_write(e, wb, 1);
    rocksdb_writebatch_destroy(wb);
    if (rc != 0)
        return rc;

    if (!t)
        e->next_topic_id++;
    engine__topics_publish_put(e, &nc);
    if (out)
        *out = nc;
    return 0;
}

void engine__topics_publish_put(engine *e, const engine_topic_config *c)
{
    pthread_rwlock_wrlock(&e->topics_lock);
    topic *t = engine__topics_find(e, c->name, strnlen(c->name, sizeof c->name));
    topic *stale = NULL;
    if (t && t->cfg.topic_id != c->topic_id) { /* the id is a hash key: never change it */
        HASH_DELETE(hh, e->topics_by_name, t);
        HASH_DELETE(hh_id, e->topics_by_id, t);
        stale = t;
        t = NULL;
    }
    if (t) {
        engine__topics_grow_queues(t, queue_count(c));
        t->cfg = *c;
    } else {
        topic_insert(e, topic_new(c));
    }
    pthread_rwlock_unlock(&e->topics_lock);
    if (stale)
        topic_free(stale);
}

void engine__topics_publish_delete(engine *e, const char *name, size_t len)
{
    pthread_rwlock_wrlock(&e->topics_lock);
    topic *t = engine__topics_find(e, name, len);
    if (t) {
        HASH_DELETE(hh, e->topics_by_name, t);
        HASH_DELETE(hh_id, e->topics_by_id, t);
    }
    pthread_rwlock_unlock(&e->topics_lock);
    if (t)
        topic_free(t);
}

int engine__topics_apply_delete(engine *e, const char *name, size_t len)
{
    topic *t = engine__topics_find(e, name, len);
    if (!t)
        return LSMQ_ENOTFOUND;
    uint32_t id = t->cfg.topic_id;
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    engine_batch b = {.e = e, .wb = wb};
    rocksdb_writebatch_delete_cf(wb, e->cf[ENGINE_CF_TOPIC], name, len);

    uint8_t lo[MSG_KEY_LEN], hi[MSG_KEY_LEN];
    engine__key_msg(lo, id, 0, 0);
    engine__key_msg(hi, id + 1, 0, 0);
    rocksdb_writebatch_delete_range_cf(wb, e->cf[ENGINE_CF_MSG], (const char *)lo, 4,
                                       (const char *)hi, 4);
    uint8_t hlo[HWM_KEY_LEN], hhi[HWM_KEY_LEN];
    engine__key_hwm(hlo, id, 0);
    engine__key_hwm(hhi, id + 1, 0);
    rocksdb_writebatch_delete_range_cf(wb, e->cf[ENGINE_CF_META], (const char *)hlo, 5,
                                       (const char *)hhi, 5);
    int rc = engine__offsets_delete_topic(e, &b, id);
    engine_view *v = NULL;
    if (rc == 0 && e->nexts)
        rc = engine_view_open(e, &v);
    for (int i = 0; rc == 0 && i < e->nexts; i++) {
        extension *x = &e->exts[i];
        if (x->decl.hook.on_topic_delete)
            x->decl.hook.on_topic_delete(&x->env, v, &b, id);
    }
    engine_view_close(v);
    if (rc == 0)
        rc = engine__writer_write(e, wb, 1);
    rocksdb_writebatch_destroy(wb);
    if (rc != 0)
        return rc;
    engine__topics_publish_delete(e, name, len);
    return 0;
}

/* ---- Public API ---- */

static int check_config(const engine_topic_config *c)
{
    size_t len = strnlen(c->name, sizeof c->name);
    if (len == sizeof c->name)
        return LSMQ_ETOOBIG;
    int rc = engine__topics_validate_name(c->name, len);
    if (rc != 0)
        return rc;
    if (c->read_queue_nums > MAX_QUEUES_PER_TOPIC || c->write_queue_nums > MAX_QUEUES_PER_TOPIC ||
        queue_count(c) == 0)
        return LSMQ_EINVAL;
    if (strnlen(c->attributes, sizeof c->attributes) == sizeof c->attributes)
        return LSMQ_ETOOBIG;
    json_t *attrs = json_string(c->attributes); /* NULL unless valid UTF-8 */
    if (!attrs)
        return LSMQ_EINVAL;
    json_decref(attrs);
    return 0;
}

int engine_topic_put(engine *e, const engine_topic_config *c, engine_topic_config *out)
{
    int rc = check_config(c);
    if (rc != 0)
        return rc;
    wctl op = {.kind = WCTL_TOPIC_PUT, .topic_cfg = c, .topic_out = out};
    return engine__writer_control(e, &op);
}

int engine_topic_put_async(engine *e, const engine_topic_config *c, engine_done_fn done,
                           void *ctx)
{
    int rc = check_config(c);
    if (rc != 0)
        return rc;
    wctl op = {.kind = WCTL_TOPIC_PUT, .topic_cfg = c};
    return engine__writer_control_async(e, &op, done, ctx);
}

int engine_topic_delete(engine *e, const char *name, size_t len)
{
    int rc = engine__topics_validate_name(name, len);
    if (rc != 0)
        return rc;
    wctl op = {.kind = WCTL_TOPIC_DELETE, .name = name, .name_len = len};
    return engine__writer_control(e, &op);
}

int engine_topic_delete_async(engine *e, const char *name, size_t len, engine_done_fn done,
                              void *ctx)
{
    int rc = engine__topics_validate_name(name, len);
    if (rc != 0)
        return rc;
    wctl op = {.kind = WCTL_TOPIC_DELETE, .name = name, .name_len = len};
    return engine__writer_control_async(e, &op, done, ctx);
}

int engine_topic_get(engine *e, const char *name, size_t len, engine_topic_config *out)
{
    pthread_rwlock_rdlock(&e->topics_lock);
    topic *t = engine__topics_find(e, name, len);
    if (t)
        *out = t->cfg;
    pthread_rwlock_unlock(&e->topics_lock);
    return t ? 0 : LSMQ_ENOTFOUND;
}

int engine_topic_id(engine *e, const char *name, size_t len, uint32_t *topic_id)
{
    pthread_rwlock_rdlock(&e->topics_lock);
    topic *t = engine__topics_find(e, name, len);
    if (t)
        *topic_id = t->cfg.topic_id;
    pthread_rwlock_unlock(&e->topics_lock);
    return t ? 0 : LSMQ_ENOTFOUND;
}

int engine_topic_list(engine *e, engine_topic_config **out, size_t *n)
{
    pthread_rwlock_rdlock(&e->topics_lock);
    size_t count = HASH_CNT(hh, e->topics_by_name);
    engine_topic_config *arr = proto_xmalloc(count * sizeof *arr);
    size_t i = 0;
    for (topic *t = e->topics_by_name; t; t = t->hh.next)
        arr[i++] = t->cfg;
    pthread_rwlock_unlock(&e->topics_lock);
    *out = arr;
    *n = count;
    return 0;
}
