/*
 * Whole-store index consistency, both ways: every stored message has its
 * idx_id, idx_time and idx_key entries, and every entry of those families
 * names a stored message that matches it. Keys are derived here on their
 * own (KEYS split on spaces, UNIQ_KEY) so the check does not trust index/;
 * the families are read entry by entry through the engine's extension API.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_ext.h"
#include "props.h"
#include "testsupport.h"

typedef struct checker {
    const engine_view *v;
    engine_cf id_cf, time_cf, key_cf;
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
    uint8_t *v = NULL;
    int rc = engine_view_get(c->v, cf, key, klen, &v, vlen);
    if (rc != 0 && rc != LSMQ_ENOTFOUND)
        problem(c, "read error: %s", lsmq_strerror(rc));
    return (char *)v;
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
    char *v = get(c, c->key_cf, k, kl, &vlen);
    const uint8_t *u = (const uint8_t *)v;
    if (!v || vlen != 13 || proto_get_u32(u) != queue_id || proto_get_u64(u + 4) != offset ||
        u[12] != kinds_of(r, key, klen))
        problem(c, "message %u:%u:%" PRIu64 " key '%.*s': entry %s", topic_id, queue_id, offset,
                (int)klen, key, v ? "differs" : "missing");
    engine_free(v);
}

/* A stored message must have all its entries. */
static void check_message(checker *c, uint32_t topic_id, uint32_t queue_id, uint64_t offset,
                          const proto_record *r)
{
    uint8_t k[24];
    size_t vlen;
    index_id_key(k, (uint64_t)r->physical_offset);
    char *v = get(c, c->id_cf, k, 8, &vlen);
    const uint8_t *u = (const uint8_t *)v;
    if (!v || vlen != 16 || proto_get_u32(u) != topic_id || proto_get_u32(u + 4) != queue_id ||
        proto_get_u64(u + 8) != offset)
        problem(c, "message %u:%u:%" PRIu64 ": idx_id entry %s", topic_id, queue_id, offset,
                v ? "differs" : "missing");
    engine_free(v);

    index_time_key(k, topic_id, queue_id, (uint64_t)r->store_timestamp, offset);
    v = get(c, c->time_cf, k, 24, &vlen);
    if (!v || vlen != 8 || proto_get_u64((const uint8_t *)v) != (uint64_t)r->physical_offset)
        problem(c, "message %u:%u:%" PRIu64 ": idx_time entry %s", topic_id, queue_id, offset,
                v ? "differs" : "missing");
    engine_free(v);

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
    engine_msg_pos at = {topic_id, queue_id, offset};
    uint8_t *rec = NULL;
    size_t vlen;
    int rc = engine_view_message(c->v, &at, &rec, &vlen);
    if (rc != 0 && rc != LSMQ_ENOTFOUND)
        problem(c, "read error: %s", lsmq_strerror(rc));
    char *v = (char *)rec;
    if (!v || proto_record_decode((const uint8_t *)v, vlen, r) <= 0) {
        problem(c, "%s names %u:%u:%" PRIu64 ": no such message", what, topic_id, queue_id,
                offset);
        engine_free(v);
        return NULL;
    }
    return v;
}

/* A pending message's record an entry names (queue ENGINE_QUEUE_PENDING); NULL when none. */
static char *pending_at(checker *c, uint64_t deliver_ms, uint64_t position, proto_record *r,
                        const char *what)
{
    engine_cf cf;
    uint8_t k[ENGINE_TIMER_KEY_LEN], *v = NULL;
    size_t vlen = 0;
    engine_timer_key(k, (int64_t)deliver_ms, position);
    if (engine_family_find(c->v, "timer", &cf) != 0 ||
        engine_view_get(c->v, cf, k, sizeof k, &v, &vlen) != 0 || vlen <= 8 ||
        proto_record_decode(v + 8, vlen - 8, r) <= 0) {
        problem(c, "%s names pending %" PRIu64 "@%" PRIu64 ": no such message", what, position,
                deliver_ms);
        engine_free(v);
        return NULL;
    }
    return (char *)v;
}

typedef void (*entry_fn)(checker *c, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl);

static void scan(checker *c, engine_cf cf, entry_fn fn)
{
    engine_iter *it = engine_iter_create(c->v, cf, NULL, 0, NULL, 0, ENGINE_ITER_SCAN);
    if (!it) {
        problem(c, "column family %u is missing", cf);
        return;
    }
    for (engine_iter_seek(it, NULL, 0); engine_iter_valid(it); engine_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = engine_iter_key(it, &kl);
        const uint8_t *v = engine_iter_value(it, &vl);
        fn(c, k, kl, v, vl);
    }
    char err[256];
    if (engine_iter_error(it, err, sizeof err) != 0)
        problem(c, "scan error: %s", err);
    engine_iter_destroy(it);
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
    char *m = proto_get_u32(v + 4) == ENGINE_QUEUE_PENDING
                  ? pending_at(c, proto_get_u64(v + 8), proto_get_u64(k), &r, "idx_id")
                  : message_at(c, proto_get_u32(v), proto_get_u32(v + 4), proto_get_u64(v + 8),
                               &r, "idx_id");
    if (m && (uint64_t)r.physical_offset != proto_get_u64(k))
        problem(c, "idx_id %" PRIu64 " names a message at %" PRId64, proto_get_u64(k),
                r.physical_offset);
    engine_free(m);
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
    engine_free(m);
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
    char *m = proto_get_u32(v) == ENGINE_QUEUE_PENDING
                  ? pending_at(c, proto_get_u64(v + 4), position, &r, "idx_key")
                  : message_at(c, topic_id, proto_get_u32(v), proto_get_u64(v + 4), &r,
                               "idx_key");
    if (m && ((uint64_t)r.store_timestamp != store_ms || (uint64_t)r.physical_offset != position ||
              kinds_of(&r, key, klen) != v[12]))
        problem(c, "idx_key '%.*s' disagrees with its message", (int)klen, key);
    engine_free(m);
}

/* A pending message has its idx_id entry (its keys are checked from idx_key's side). */
static void on_timer(checker *c, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
    int64_t due;
    uint64_t pos;
    if (!engine_timer_key_parse(k, kl, &due, &pos) || vl <= 8) {
        problem(c, "timer entry of %zu/%zu bytes", kl, vl);
        return;
    }
    uint8_t ik[8];
    size_t ilen;
    index_id_key(ik, pos);
    char *iv = get(c, c->id_cf, ik, sizeof ik, &ilen);
    const uint8_t *u = (const uint8_t *)iv;
    if (!iv || ilen != 16 || proto_get_u32(u) != proto_get_u32(v) ||
        proto_get_u32(u + 4) != ENGINE_QUEUE_PENDING || proto_get_u64(u + 8) != (uint64_t)due)
        problem(c, "pending %" PRIu64 "@%" PRId64 ": idx_id entry %s", pos, due,
                iv ? "disagrees" : "missing");
    engine_free(iv);
}

size_t test_index_consistency(engine *e, size_t max_report)
{
    engine_view *v;
    assert_int_equal(engine_view_open(e, &v), 0);
    checker c = {.v = v, .max_report = max_report};
    assert_int_equal(engine_family_find(v, INDEX_FAMILY_ID, &c.id_cf), 0);
    assert_int_equal(engine_family_find(v, INDEX_FAMILY_TIME, &c.time_cf), 0);
    assert_int_equal(engine_family_find(v, INDEX_FAMILY_KEY, &c.key_cf), 0);
    scan(&c, ENGINE_CF_MSG, on_msg);
    scan(&c, c.id_cf, on_id);
    scan(&c, c.time_cf, on_time);
    scan(&c, c.key_cf, on_key);
    scan(&c, ENGINE_CF_TIMER, on_timer);
    engine_view_close(v);
    return c.problems;
}
