/*
 * Brings a store written before idx_key existed up to date: every stored
 * message gets its key entries, then the store's format version says so.
 * Runs once, from the extension's on_open, before the writer starts.
 */
#include "index.h"
#include "index_internal.h"
#include "log.h"

#define UPGRADE_BATCH_MSGS 4096
#define UPGRADE_LOG_EVERY 1000000

typedef struct upgrade_ctx {
    engine_cf cf;
    engine_batch *b;
    const engine_msg_pos *at;
    const proto_record *r;
    uint64_t indexed;
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

static int index_one(void *ctx, const engine_msg_pos *at, const proto_record *r)
{
    upgrade_ctx *u = ctx;
    u->at = at;
    u->r = r;
    index__for_each_key(r, put_one, u);
    if (++u->indexed % UPGRADE_LOG_EVERY == 0)
        proto_log(PROTO_LOG_INFO, "index: indexing keys: %llu messages done",
                  (unsigned long long)u->indexed);
    return u->indexed % UPGRADE_BATCH_MSGS == 0 ? engine_batch_write(u->b, false) : 0;
}

static int index_all_messages(engine *e, engine_cf key_cf, uint64_t *indexed)
{
    engine_view *v;
    int rc = engine_view_open(e, &v);
    if (rc != 0)
        return rc;
    upgrade_ctx u = {.cf = key_cf, .b = engine_batch_create(e)};
    uint64_t corrupt = 0;
    rc = index__for_each_message(v, NULL, NULL, index_one, &u, &corrupt);
    if (rc == 0)
        rc = engine_batch_write(u.b, true);
    engine_batch_destroy(u.b);
    engine_view_close(v);
    if (corrupt)
        proto_log(PROTO_LOG_WARN, "index: indexing keys: %llu undecodable records skipped",
                  (unsigned long long)corrupt);
    *indexed = u.indexed;
    return rc;
}

int index__key_upgrade(engine *e, engine_cf key_cf)
{
    if (engine_format_version(e) >= KEY_INDEX_FORMAT_VERSION)
        return 0;
    proto_log(PROTO_LOG_INFO,
              "index: store format %u predates the key index: indexing stored messages",
              engine_format_version(e));
    uint64_t n = 0;
    int rc = index_all_messages(e, key_cf, &n);
    if (rc != 0)
        return rc;
    proto_log(PROTO_LOG_INFO, "index: indexing keys: %llu messages indexed", (unsigned long long)n);
    return engine_set_format_version(e, KEY_INDEX_FORMAT_VERSION);
}
