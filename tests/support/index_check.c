/*
 * Whole-store index consistency, both ways: every stored message has its
 * idx_id, idx_time and idx_key entries, and every entry of those families
 * names a stored message that matches it. Keys are derived here on their
 * own (KEYS split on spaces, UNIQ_KEY) so the check does not trust index/.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

#include "props.h"
#include "testsupport.h"

typedef struct checker {
    engine *e;
    rocksdb_readoptions_t *ro;
    const rocksdb_snapshot_t *snap;
    size_t problems;
    size_t max_report;
} checker;

static void problem(checker *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(checker *c, const char *fmt, ...)
{
    if (c->problems++ >= c->max_report)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "index check: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static char *get(checker *c, engine_cf cf, const void *key, size_t klen, size_t *vlen)
{
    char *err = NULL;
    char *v = rocksdb_get_cf(engine_db(c->e), c->ro, engine_cf_handle(c->e, cf), key, klen,
                             vlen, &err);
    if (err) {
        problem(c, "read error: %s", err);
        rocksdb_free(err);
        return NULL;
    }
    return v;
}

/* The kinds a record carries `key` with (0 when it does not carry it). */
static unsigned kinds_of(const proto_record *r, const char *key, size_t klen)
{
    unsigned kinds = 0;
    const char *v;
    size_t vlen;
    if (proto_props_get(r->props, r->props_len, PROTO_PROP_UNIQ_KEY, &v, &vlen) &&
        vlen == klen && memcmp(v, key, klen) == 0)
        kinds |= INDEX_KEY_UNIQ;
    if (proto_props_get(r->props, r->props_len, PROTO_PROP_KEYS, &v, &vlen)) {
        const char *end = v + vlen;
        for (const char *p = v; p <= end;) {
            const char *sp = memchr(p, ' ', (size_t)(end - p));
            const char *w = sp ? sp : end;
            if ((size_t)(w - p) == klen && klen > 0 && memcmp(p, key, klen) == 0)
                kinds |= INDEX_KEY_KEYS;
            p = w + 1;
        }
    }
    return kinds;
}

static void expect_key_entry(checker *c, uint32_t topic_id, uint32_t queue_id, uint64_t offset,
                             const proto_record *r, const char *key, size_t klen)
{
    if (klen == 0 || klen > INDEX_KEY_MAX || memchr(key, 0, klen))
        return;
    uint8_t k[4 + INDEX_KEY_MAX + 1 + 16];
    size_t kl = index_key_key(k, sizeof k, topic_id, key, klen, (uint64_t)r->store_timestamp,
                              (uint64_t)r->physical_offset);
    size_t vlen;
    char *v = get(c, ENGINE_CF_IDX_KEY, k, kl, &vlen);
    const uint8_t *u = (const uint8_t *)v;
    if (!v || vlen != 13 || proto_get_u32(u) != queue_id || proto_get_u64(u + 4) != offset ||
        u[12] != kinds_of(r, key, klen))
        problem(c, "message %u:%u:%" PRIu64 " key '%.*s': entry %s", topic_id, queue_id, offset,
                (int)klen, key, v ? "differs" : "missing");
    rocksdb_free(v);
}

/* A stored message must have all its entries. */
static void check_message(checker *c, uint32_t topic_id, uint32_t queue_id, uint64_t offset,
                          const proto_record *r)
{
    uint8_t k[24];
    size_t vlen;
    index_id_key(k, (uint64_t)r->physical_offset);
    char *v = get(c, ENGINE_CF_IDX_ID, k, 8, &vlen);
    const uint8_t *u = (const uint8_t *)v;
    if (!v || vlen != 16 || proto_get_u32(u) != topic_id || proto_get_u32(u + 4) != queue_id ||
        proto_get_u64(u + 8) != offset)
        problem(c, "message %u:%u:%" PRIu64 ": idx_id entry %s", topic_id, queue_id, offset,
                v ? "differs" : "missing");
    rocksdb_free(v);

    index_time_key(k, topic_id, queue_id, (uint64_t)r->store_timestamp, offset);
    v = get(c, ENGINE_CF_IDX_TIME, k, 24, &vlen);
    if (!v || vlen != 8 || proto_get_u64((const uint8_t *)v) != (uint64_t)r->physical_offset)
        problem(c, "message %u:%u:%" PRIu64 ": idx_time entry %s", topic_id, queue_id, offset,
                v ? "differs" : "missing");
    rocksdb_free(v);

    const char *w;
    size_t wlen;
    if (proto_props_get(r->props, r->props_len, PROTO_PROP_UNIQ_KEY, &w, &wlen))
        expect_key_entry(c, topic_id, queue_id, offset, r, w, wlen);
    if (proto_props_get(r->props, r->props_len, PROTO_PROP_KEYS, &w, &wlen)) {
        const char *end = w + wlen;
        for (const char *p = w; p < end;) {
            const char *sp = memchr(p, ' ', (size_t)(end - p));
            const char *we = sp ? sp : end;
            expect_key_entry(c, topic_id, queue_id, offset, r, p, (size_t)(we - p));
            p = we + 1;
        }
    }
}

/* The stored record an entry names; NULL (and a problem) when there is none. */
static char *message_at(checker *c, uint32_t topic_id, uint32_t queue_id, uint64_t offset,
                        proto_record *r, const char *what)
{
    uint8_t k[16];
    proto_put_u32(k, topic_id);
    proto_put_u32(k + 4, queue_id);
    proto_put_u64(k + 8, offset);
    size_t vlen;
    char *v = get(c, ENGINE_CF_MSG, k, sizeof k, &vlen);
    if (!v || proto_record_decode((const uint8_t *)v, vlen, r) <= 0) {
        problem(c, "%s names %u:%u:%" PRIu64 ": no such message", what, topic_id, queue_id,
                offset);
        rocksdb_free(v);
        return NULL;
    }
    return v;
}

typedef void (*entry_fn)(checker *c, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl);

static void scan(checker *c, engine_cf cf, entry_fn fn)
{
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_total_order_seek(ro, 1);
    rocksdb_readoptions_set_snapshot(ro, c->snap);
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(engine_db(c->e), ro,
                                                        engine_cf_handle(c->e, cf));
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = (const uint8_t *)rocksdb_iter_key(it, &kl);
        const uint8_t *v = (const uint8_t *)rocksdb_iter_value(it, &vl);
        fn(c, k, kl, v, vl);
    }
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
}

static void on_msg(checker *c, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    proto_record r;
    if (kl != 16 || proto_record_decode(v, vl, &r) <= 0) {
        problem(c, "msg entry of %zu bytes does not decode", kl);
        return;
    }
    check_message(c, proto_get_u32(k), proto_get_u32(k + 4), proto_get_u64(k + 8), &r);
}

static void on_id(checker *c, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    if (kl != 8 || vl != 16) {
        problem(c, "idx_id entry of %zu/%zu bytes", kl, vl);
        return;
    }
    proto_record r;
    char *m = message_at(c, proto_get_u32(v), proto_get_u32(v + 4), proto_get_u64(v + 8), &r,
                         "idx_id");
    if (m && (uint64_t)r.physical_offset != proto_get_u64(k))
        problem(c, "idx_id %" PRIu64 " names a message at %" PRId64, proto_get_u64(k),
                r.physical_offset);
    rocksdb_free(m);
}

static void on_time(checker *c, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    if (kl != 24 || vl != 8) {
        problem(c, "idx_time entry of %zu/%zu bytes", kl, vl);
        return;
    }
    proto_record r;
    char *m = message_at(c, proto_get_u32(k), proto_get_u32(k + 4), proto_get_u64(k + 16), &r,
                         "idx_time");
    if (m && ((uint64_t)r.store_timestamp != proto_get_u64(k + 8) ||
              (uint64_t)r.physical_offset != proto_get_u64(v)))
        problem(c, "idx_time entry disagrees with its message");
    rocksdb_free(m);
}

static void on_key(checker *c, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    uint32_t topic_id;
    const char *key;
    size_t klen;
    uint64_t store_ms, position;
    if (index_key_parse(k, kl, &topic_id, &key, &klen, &store_ms, &position) != 0 || vl != 13) {
        problem(c, "idx_key entry of %zu/%zu bytes", kl, vl);
        return;
    }
    proto_record r;
    char *m = message_at(c, topic_id, proto_get_u32(v), proto_get_u64(v + 4), &r, "idx_key");
    if (m && ((uint64_t)r.store_timestamp != store_ms || (uint64_t)r.physical_offset != position ||
              kinds_of(&r, key, klen) != v[12]))
        problem(c, "idx_key '%.*s' disagrees with its message", (int)klen, key);
    rocksdb_free(m);
}

size_t test_index_consistency(engine *e, size_t max_report)
{
    checker c = {.e = e, .ro = rocksdb_readoptions_create(), .max_report = max_report};
    engine_db_pin(e);
    const rocksdb_snapshot_t *snap = rocksdb_create_snapshot(engine_db(e));
    c.snap = snap;
    rocksdb_readoptions_set_snapshot(c.ro, snap);
    scan(&c, ENGINE_CF_MSG, on_msg);
    scan(&c, ENGINE_CF_IDX_ID, on_id);
    scan(&c, ENGINE_CF_IDX_TIME, on_time);
    scan(&c, ENGINE_CF_IDX_KEY, on_key);
    rocksdb_release_snapshot(engine_db(e), snap);
    engine_db_unpin(e);
    rocksdb_readoptions_destroy(c.ro);
    return c.problems;
}
