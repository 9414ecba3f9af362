/*
 * Views: a RocksDB snapshot plus the pin against the writer's reopen, and
 * the reads made under one: point reads and iterators over any family
 * (engine_ext.h) and the message cursor (engine.h). A read-only engine is
 * frozen at its open (a secondary instance only moves when told to catch
 * up, and snapshots are not supported there), so its views read it as is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"

#define SCAN_READAHEAD_BYTES (4u << 20)
#define SNAPSHOT_ATTEMPTS 16

/* ---- Views ---- */

/*
 * Take a snapshot and learn its sequence: the latest sequence read on both
 * sides of the snapshot's creation, unchanged, is the snapshot's. Only the
 * writer commits, so a retry is rare; past the attempts the sequence read
 * before is a lower bound (engine.h).
 */
static const rocksdb_snapshot_t *snapshot_at(engine *e, uint64_t *sequence)
{
    for (int i = 0;; i++) {
        uint64_t before = rocksdb_get_latest_sequence_number(e->db);
        const rocksdb_snapshot_t *snap = rocksdb_create_snapshot(e->db);
        uint64_t after = rocksdb_get_latest_sequence_number(e->db);
        if (before == after || i == SNAPSHOT_ATTEMPTS) {
            *sequence = before;
            return snap;
        }
        rocksdb_release_snapshot(e->db, snap);
    }
}

int engine_view_open(engine *e, engine_view **out)
{
    *out = NULL;
    engine__pin(e);
    if (!e->db) { /* a reopen after a write error failed */
        engine__unpin(e);
        return LSMQ_EIO;
    }
    engine_view *v = proto_xcalloc(1, sizeof *v);
    v->e = e;
    v->ro = rocksdb_readoptions_create();
    if (e->read_only) {
        v->sequence = rocksdb_get_latest_sequence_number(e->db);
    } else {
        v->snap = snapshot_at(e, &v->sequence);
        rocksdb_readoptions_set_snapshot(v->ro, v->snap);
    }
    *out = v;
    return 0;
}

void engine_view_close(engine_view *v)
{
    if (!v)
        return;
    rocksdb_readoptions_destroy(v->ro);
    if (v->snap)
        rocksdb_release_snapshot(v->e->db, v->snap);
    engine__unpin(v->e);
    free(v);
}

engine *engine_view_engine(const engine_view *v) { return v->e; }

uint64_t engine_view_sequence(const engine_view *v) { return v->sequence; }

/* Read options under the view's snapshot; the caller destroys them. */
static rocksdb_readoptions_t *view_readoptions(const engine_view *v)
{
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    if (v->snap)
        rocksdb_readoptions_set_snapshot(ro, v->snap);
    return ro;
}

int engine_family_find(const engine_view *v, const char *name, engine_cf *out)
{
    int i = engine__family_index(v->e, name);
    if (i < 0 || !v->e->cf[i])
        return LSMQ_ENOTFOUND;
    *out = (engine_cf)i;
    return 0;
}

int engine_view_get(const engine_view *v, engine_cf cf, const void *key, size_t klen,
                    uint8_t **val, size_t *vlen)
{
    *val = NULL;
    *vlen = 0;
    if (cf >= v->e->nfamilies || !v->e->cf[cf])
        return LSMQ_ENOTFOUND;
    char *err = NULL;
    char *got = rocksdb_get_cf(v->e->db, v->ro, v->e->cf[cf], key, klen, vlen, &err);
    if (err) {
        proto_log(PROTO_LOG_WARN, "engine: reading %s failed: %s", v->e->cf_names[cf], err);
        rocksdb_free(err);
        return LSMQ_EIO;
    }
    if (!got)
        return LSMQ_ENOTFOUND;
    /* RocksDB's copy is malloc'ed (db/c.cc CopyString): engine_free releases it. */
    *val = (uint8_t *)got;
    return 0;
}

/* ---- Iterators ---- */

struct engine_iter {
    rocksdb_iterator_t *it;
    rocksdb_readoptions_t *ro;
    char *lower, *upper; /* the bounds the read options point at */
    size_t lower_len;
};

static char *copy_bound(const void *key, size_t len)
{
    char *c = proto_xmalloc(len ? len : 1);
    memcpy(c, key, len);
    return c;
}

engine_iter *engine_iter_create(const engine_view *v, engine_cf cf, const void *lower,
                                size_t lower_len, const void *upper, size_t upper_len,
                                unsigned flags)
{
    if (cf >= v->e->nfamilies || !v->e->cf[cf])
        return NULL;
    engine_iter *it = proto_xcalloc(1, sizeof *it);
    it->ro = view_readoptions(v);
    if (lower) {
        it->lower = copy_bound(lower, lower_len);
        it->lower_len = lower_len;
        rocksdb_readoptions_set_iterate_lower_bound(it->ro, it->lower, lower_len);
    }
    if (upper) {
        it->upper = copy_bound(upper, upper_len);
        rocksdb_readoptions_set_iterate_upper_bound(it->ro, it->upper, upper_len);
    }
    if (flags & ENGINE_ITER_PREFIX)
        rocksdb_readoptions_set_prefix_same_as_start(it->ro, 1);
    else
        rocksdb_readoptions_set_total_order_seek(it->ro, 1);
    if (flags & ENGINE_ITER_SCAN) {
        rocksdb_readoptions_set_readahead_size(it->ro, SCAN_READAHEAD_BYTES);
        rocksdb_readoptions_set_fill_cache(it->ro, 0);
    }
    it->it = rocksdb_create_iterator_cf(v->e->db, it->ro, v->e->cf[cf]);
    return it;
}

void engine_iter_destroy(engine_iter *it)
{
    if (!it)
        return;
    rocksdb_iter_destroy(it->it); /* before the bounds it points at */
    rocksdb_readoptions_destroy(it->ro);
    free(it->lower);
    free(it->upper);
    free(it);
}

void engine_iter_seek(engine_iter *it, const void *key, size_t klen)
{
    if (key)
        rocksdb_iter_seek(it->it, key, klen);
    else if (it->lower)
        rocksdb_iter_seek(it->it, it->lower, it->lower_len);
    else
        rocksdb_iter_seek_to_first(it->it);
}

void engine_iter_seek_for_prev(engine_iter *it, const void *key, size_t klen)
{
    if (key)
        rocksdb_iter_seek_for_prev(it->it, key, klen);
    else
        rocksdb_iter_seek_to_last(it->it);
}

bool engine_iter_valid(const engine_iter *it) { return rocksdb_iter_valid(it->it) != 0; }

void engine_iter_next(engine_iter *it) { rocksdb_iter_next(it->it); }

const uint8_t *engine_iter_key(const engine_iter *it, size_t *len)
{
    return (const uint8_t *)rocksdb_iter_key(it->it, len);
}

const uint8_t *engine_iter_value(const engine_iter *it, size_t *len)
{
    return (const uint8_t *)rocksdb_iter_value(it->it, len);
}

int engine_iter_error(const engine_iter *it, char *errbuf, size_t errlen)
{
    char *err = NULL;
    rocksdb_iter_get_error(it->it, &err);
    if (!err)
        return 0;
    engine__fail(errbuf, errlen, "%s", engine__one_line(err));
    rocksdb_free(err);
    return LSMQ_EIO;
}

/* ---- Messages ---- */

struct engine_msg_cursor {
    engine_iter *it;
};

static void msg_key(uint8_t k[MSG_KEY_LEN], const engine_msg_pos *at)
{
    engine__key_msg(k, at->topic_id, at->queue_id, at->queue_offset);
}

int engine_msg_cursor_open(const engine_view *v, const engine_msg_pos *from,
                           const engine_msg_pos *to, unsigned flags, engine_msg_cursor **out)
{
    uint8_t lo[MSG_KEY_LEN], hi[MSG_KEY_LEN];
    if (from)
        msg_key(lo, from);
    if (to)
        msg_key(hi, to);
    /* Within one queue the queue-prefix blooms of the msg family apply. */
    if (from && to && from->topic_id == to->topic_id && from->queue_id == to->queue_id)
        flags |= ENGINE_ITER_PREFIX;
    engine_iter *it = engine_iter_create(v, ENGINE_CF_MSG, from ? lo : NULL, sizeof lo,
                                         to ? hi : NULL, sizeof hi, flags);
    if (!it)
        return LSMQ_ENOTFOUND;
    engine_msg_cursor *c = proto_xmalloc(sizeof *c);
    c->it = it;
    *out = c;
    return 0;
}

void engine_msg_cursor_close(engine_msg_cursor *c)
{
    if (!c)
        return;
    engine_iter_destroy(c->it);
    free(c);
}

void engine_msg_cursor_seek(engine_msg_cursor *c, const engine_msg_pos *at)
{
    uint8_t k[MSG_KEY_LEN];
    if (at)
        msg_key(k, at);
    engine_iter_seek(c->it, at ? k : NULL, sizeof k);
}

void engine_msg_cursor_seek_last(engine_msg_cursor *c)
{
    engine_iter_seek_for_prev(c->it, NULL, 0);
}

bool engine_msg_cursor_valid(const engine_msg_cursor *c) { return engine_iter_valid(c->it); }

void engine_msg_cursor_next(engine_msg_cursor *c) { engine_iter_next(c->it); }

int engine_msg_cursor_get(const engine_msg_cursor *c, engine_msg_pos *at, const uint8_t **rec,
                          size_t *len)
{
    size_t klen;
    const uint8_t *k = engine_iter_key(c->it, &klen);
    *rec = engine_iter_value(c->it, len);
    return engine__key_msg_parse(k, klen, at) ? 0 : LSMQ_ECORRUPT;
}

int engine_msg_cursor_error(const engine_msg_cursor *c, char *errbuf, size_t errlen)
{
    return engine_iter_error(c->it, errbuf, errlen);
}

int engine_view_message(const engine_view *v, const engine_msg_pos *at, uint8_t **rec,
                        size_t *len)
{
    uint8_t k[MSG_KEY_LEN];
    msg_key(k, at);
    return engine_view_get(v, ENGINE_CF_MSG, k, sizeof k, rec, len);
}
