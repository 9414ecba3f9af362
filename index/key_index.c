/*
 * idx_key: (topic id, key, store ms, log position) -> (queue id, queue
 * offset, kinds). One entry per distinct key of a message: the words of
 * KEYS and its UNIQ_KEY. The key is stored whole, so lookups are exact.
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "index.h"
#include "index_internal.h"
#include "props.h"
#include "log.h"

size_t index_key_key(uint8_t *out, size_t cap, uint32_t topic_id, const char *key,
                     size_t key_len, uint64_t store_ms, uint64_t log_position)
{
    size_t len = 4 + key_len + 1 + 16;
    if (len > cap)
        return 0;
    proto_put_u32(out, topic_id);
    memcpy(out + 4, key, key_len);
    out[4 + key_len] = 0;
    proto_put_u64(out + 5 + key_len, ~store_ms);
    proto_put_u64(out + 13 + key_len, ~log_position);
    return len;
}

int index_key_parse(const uint8_t *k, size_t len, uint32_t *topic_id, const char **key,
                    size_t *key_len, uint64_t *store_ms, uint64_t *log_position)
{
    const uint8_t *nul = len > 4 ? memchr(k + 4, 0, len - 4) : NULL;
    if (!nul || (size_t)(k + len - nul) != 17)
        return LSMQ_ECORRUPT;
    *topic_id = proto_get_u32(k);
    *key = (const char *)k + 4;
    *key_len = (size_t)(nul - k) - 4;
    *store_ms = ~proto_get_u64(nul + 1);
    *log_position = ~proto_get_u64(nul + 9);
    return 0;
}

static int word_equals(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* A key is indexed when it is non-empty, not too long, and has no NUL (the separator). */
static int indexable(const char *key, size_t len)
{
    return len > 0 && len <= INDEX_KEY_MAX && memchr(key, 0, len) == NULL;
}

void index__for_each_key(const proto_record *r, index_key_fn fn, void *ctx)
{
    const char *uniq = NULL, *keys = NULL;
    size_t uniq_len = 0, keys_len = 0;
    if (!proto_props_get(r->props, r->props_len, PROTO_PROP_UNIQ_KEY, &uniq, &uniq_len) ||
        !indexable(uniq, uniq_len))
        uniq = NULL;
    int uniq_in_keys = 0;
    if (proto_props_get(r->props, r->props_len, PROTO_PROP_KEYS, &keys, &keys_len)) {
        /* Words of KEYS, split on single spaces as the clients do; a repeated
         * word is reported again, which only rewrites the same entry. */
        const char *p = keys, *end = keys + keys_len;
        while (p < end) {
            const char *sp = memchr(p, ' ', (size_t)(end - p));
            const char *wend = sp ? sp : end;
            size_t wlen = (size_t)(wend - p);
            if (indexable(p, wlen)) {
                unsigned kinds = INDEX_KEY_KEYS;
                if (uniq && word_equals(p, wlen, uniq, uniq_len)) {
                    kinds |= INDEX_KEY_UNIQ;
                    uniq_in_keys = 1;
                }
                fn(ctx, p, wlen, kinds);
            }
            p = wend + 1;
        }
    }
    if (uniq && !uniq_in_keys)
        fn(ctx, uniq, uniq_len, INDEX_KEY_UNIQ);
}

int index__for_each_message(const engine_view *v, const engine_msg_pos *from,
                            const engine_msg_pos *to, index_msg_fn fn, void *ctx,
                            uint64_t *undecodable)
{
    engine_msg_cursor *c;
    int rc = engine_msg_cursor_open(v, from, to, ENGINE_ITER_SCAN, &c);
    if (rc != 0)
        return rc;
    for (engine_msg_cursor_seek(c, NULL); rc == 0 && engine_msg_cursor_valid(c);
         engine_msg_cursor_next(c)) {
        engine_msg_pos at;
        const uint8_t *rec;
        size_t len;
        proto_record r;
        if (engine_msg_cursor_get(c, &at, &rec, &len) != 0 ||
            proto_record_decode(rec, len, &r) <= 0) {
            if (undecodable)
                (*undecodable)++;
            continue;
        }
        rc = fn(ctx, &at, &r);
    }
    char err[256];
    if (engine_msg_cursor_error(c, err, sizeof err) != 0) {
        proto_log(PROTO_LOG_WARN, "index: reading messages failed: %s", err);
        rc = LSMQ_EIO;
    }
    engine_msg_cursor_close(c);
    return rc;
}

typedef struct put_ctx {
    engine_cf cf;
    engine_batch *b;
    const engine_stored_msg *m;
} put_ctx;

static void put_one(void *ctx, const char *key, size_t key_len, unsigned kinds)
{
    put_ctx *pc = ctx;
    uint8_t k[4 + INDEX_KEY_MAX + 1 + 16], v[KEY_VAL_LEN];
    size_t klen = index_key_key(k, sizeof k, pc->m->topic_id, key, key_len,
                                (uint64_t)pc->m->store_ms, pc->m->log_position);
    proto_put_u32(v, pc->m->queue_id);
    proto_put_u64(v + 4, pc->m->queue_offset);
    v[12] = (uint8_t)kinds;
    engine_batch_put(pc->b, pc->cf, k, klen, v, sizeof v);
}

void index__key_on_append(engine_cf key_cf, engine_batch *b, const engine_stored_msg *m)
{
    put_ctx pc = {.cf = key_cf, .b = b, .m = m};
    index__for_each_key(m->fields, put_one, &pc);
}

/* Hits as the scan finds them, newest first. */
typedef struct hit_list {
    index_key_hit *v;
    size_t n, cap;
} hit_list;

static int hit_push(hit_list *l, const index_key_hit *h)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        index_key_hit *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return LSMQ_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *h;
    return 0;
}

int index_query_key(const engine_view *v, uint32_t topic_id, const char *key, size_t key_len,
                    unsigned kinds, int64_t begin_ms, int64_t end_ms, size_t max_hits,
                    index_key_hit **hits, size_t *n)
{
    *hits = NULL;
    *n = 0;
    if (!indexable(key, key_len))
        return LSMQ_EINVAL;
    if (end_ms < begin_ms || end_ms < 0 || max_hits == 0)
        return 0;
    uint64_t lo_ms = begin_ms < 0 ? 0 : (uint64_t)begin_ms;
    size_t cap = 4 + key_len + 1 + 16;
    /* Newest first: from (end_ms, newest position) to past (lo_ms, oldest). */
    uint8_t *from = proto_xmalloc(cap), *to = proto_xmalloc(cap);
    hit_list l = {0};
    int rc = 0;
    size_t klen = index_key_key(from, cap, topic_id, key, key_len, (uint64_t)end_ms, UINT64_MAX);
    index_key_key(to, cap, topic_id, key, key_len, lo_ms, 0);

    engine_cf cf;
    engine_iter *it = NULL;
    if (engine_family_find(v, INDEX_FAMILY_KEY, &cf) == 0)
        it = engine_iter_create(v, cf, NULL, 0, NULL, 0, ENGINE_ITER_PREFIX);
    if (!it)
        goto out; /* no key index: no hits */
    for (engine_iter_seek(it, from, klen); engine_iter_valid(it) && l.n < max_hits;
         engine_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = engine_iter_key(it, &kl);
        const uint8_t *val = engine_iter_value(it, &vl);
        if (kl != klen || memcmp(k, to, klen) > 0)
            break; /* another key, or older than begin_ms */
        if (vl != KEY_VAL_LEN || !(val[12] & kinds))
            continue;
        index_key_hit h = {
            .queue_id = proto_get_u32(val),
            .queue_offset = proto_get_u64(val + 4),
            .store_ms = (int64_t)~proto_get_u64(k + 5 + key_len),
            .log_position = ~proto_get_u64(k + 13 + key_len),
            .kinds = val[12],
        };
        if ((rc = hit_push(&l, &h)) != 0)
            break;
    }
    if (engine_iter_error(it, NULL, 0) != 0 && rc == 0)
        rc = LSMQ_EIO;
    engine_iter_destroy(it);
out:
    free(from);
    free(to);
    if (rc != 0) {
        free(l.v);
        return rc;
    }
    for (size_t i = 0; i < l.n / 2; i++) { /* oldest first */
        index_key_hit t = l.v[i];
        l.v[i] = l.v[l.n - 1 - i];
        l.v[l.n - 1 - i] = t;
    }
    *hits = l.v;
    *n = l.n;
    return 0;
}
