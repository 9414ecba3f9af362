/*
 * Brings a store written before idx_key existed up to date: every stored
 * message gets its key entries, then the store's format version says so.
 * Runs once, from the extension's on_open, before the writer starts.
 */
#include "index.h"
#include "index_internal.h"

#define UPGRADE_BATCH_MSGS 4096
#define UPGRADE_LOG_EVERY 1000000

typedef struct upgrade_ctx {
    engine_cf cf;
    engine_batch *b;
    const engine_msg_pos *at;
    const proto_record *r;
} upgrade_ctx;

static void put_one(void *ctx, const char *key, size_t key_len, unsigned kinds)
{
    upgrade_ctx *u = ctx;
    uint8_t k[4 + INDEX_KEY_MAX + 1 + 16], v[KEY_VAL_LEN];
    size_t klen = index_key_key(k, sizeof k, u->at->topic_id, key, key_len,
                                (uint64_t)u->r->store_timestamp, (uint64_t)u->r->physical_offset);
    proto_put_u32(v, u->at->queue_id);
    proto_put_u64(v + 4, u->at->queue_offset);
    v[12] = (uint8_t)kinds;
    engine_batch_put(u->b, u->cf, k, klen, v, sizeof v);
}

static int index_all_messages(engine *e, engine_cf key_cf, uint64_t *indexed)
{
    engine_view *v;
    int rc = engine_view_open(e, &v);
    if (rc != 0)
        return rc;
    engine_msg_cursor *c;
    if ((rc = engine_msg_cursor_open(v, NULL, NULL, ENGINE_ITER_SCAN, &c)) != 0) {
        engine_view_close(v);
        return rc;
    }
    engine_batch *b = engine_batch_create(e);
    uint64_t n = 0, corrupt = 0;
    for (engine_msg_cursor_seek(c, NULL); engine_msg_cursor_valid(c);
         engine_msg_cursor_next(c)) {
        engine_msg_pos at;
        const uint8_t *rec;
        size_t len;
        proto_record r;
        if (engine_msg_cursor_get(c, &at, &rec, &len) != 0 ||
            proto_record_decode(rec, len, &r) <= 0) {
            corrupt++;
            continue;
        }
        upgrade_ctx u = {.cf = key_cf, .b = b, .at = &at, .r = &r};
        index__for_each_key(&r, put_one, &u);
        if (++n % UPGRADE_BATCH_MSGS == 0 && (rc = engine_batch_write(b, false)) != 0)
            break;
        if (n % UPGRADE_LOG_EVERY == 0)
            engine_log("indexing keys: %llu messages done", (unsigned long long)n);
    }
    char err[256];
    if (engine_msg_cursor_error(c, err, sizeof err) != 0) {
        engine_log("indexing keys: reading messages failed: %s", err);
        rc = LSMQ_EIO;
    }
    if (rc == 0)
        rc = engine_batch_write(b, true);
    engine_batch_destroy(b);
    engine_msg_cursor_close(c);
    engine_view_close(v);
    if (corrupt)
        engine_log("indexing keys: %llu undecodable records skipped",
                   (unsigned long long)corrupt);
    *indexed = n;
    return rc;
}

int index__key_upgrade(engine *e, engine_cf key_cf)
{
    if (engine_format_version(e) >= KEY_INDEX_FORMAT_VERSION)
        return 0;
    engine_log("store format %u predates the key index: indexing stored messages",
               engine_format_version(e));
    uint64_t n = 0;
    int rc = index_all_messages(e, key_cf, &n);
    if (rc != 0)
        return rc;
    engine_log("indexing keys: %llu messages indexed", (unsigned long long)n);
    return engine_set_format_version(e, KEY_INDEX_FORMAT_VERSION);
}
