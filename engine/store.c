/*
 * Opening and closing the store: directories, RocksDB options per column
 * family, the format version, and recovery of the high-water marks.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

const char *const engine__cf_names[ENGINE_CF_COUNT] = {
    [ENGINE_CF_MSG] = "msg",         [ENGINE_CF_TOPIC] = "topic",
    [ENGINE_CF_GROUP] = "group",     [ENGINE_CF_OFFSET] = "offset",
    [ENGINE_CF_IDX_ID] = "idx_id",   [ENGINE_CF_IDX_KEY] = "idx_key",
    [ENGINE_CF_IDX_TIME] = "idx_time", [ENGINE_CF_TIMER] = "timer",
    [ENGINE_CF_TXN] = "txn",         [ENGINE_CF_META] = "meta",
};

/* Defaults chosen by bench/run.sh tuning (see bench/RESULTS.md). */
#define DEFAULT_BLOB_FILES 0
#define DEFAULT_UNIVERSAL 0

void engine_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", gmtime_r(&now, &tm));
    fprintf(stderr, "%s engine: ", ts);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int engine__rocks_err(const char *err)
{
    if (!err)
        return 0;
    if (strstr(err, "No space left") || strstr(err, "NoSpace") || strstr(err, "no space"))
        return LSMQ_ENOSPC;
    if (strstr(err, "lock") && strstr(err, "LOCK"))
        return LSMQ_ELOCKED;
    return LSMQ_EIO;
}

int64_t engine__now_ms(engine *e)
{
    int64_t ms;
    if (e->cfg.clock_ms && e->cfg.clock_ms(e->cfg.clock_ctx, &ms) == 0)
        return ms;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int mkdir_p(const char *path)
{
    char buf[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf)
        return LSMQ_EINVAL;
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return -errno;
            buf[i] = c;
        }
    }
    return 0;
}

static rocksdb_options_t *cf_options(engine *e, engine_cf cf)
{
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(t, e->block_cache);
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(t, 1);
    rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(t, 1);
    rocksdb_options_set_compression(o, rocksdb_snappy_compression);
    rocksdb_options_set_level_compaction_dynamic_level_bytes(o, 1);

    switch (cf) {
    case ENGINE_CF_MSG: {
        /* Bodies are written once and read a few times: big memtables, and
         * optionally key-value separation or universal compaction so
         * compaction rewrites bodies less. Queue-prefix blooms make a pull on
         * an empty or missing queue cheap. */
        rocksdb_options_set_write_buffer_size(o, 64u << 20);
        rocksdb_options_set_max_write_buffer_number(o, 4);
        rocksdb_options_set_target_file_size_base(o, 64u << 20);
        rocksdb_options_set_max_bytes_for_level_base(o, 256u << 20);
        rocksdb_options_set_prefix_extractor(o, rocksdb_slicetransform_create_fixed_prefix(8));
        rocksdb_block_based_options_set_filter_policy(t, rocksdb_filterpolicy_create_bloom_full(10));
        rocksdb_block_based_options_set_whole_key_filtering(t, 0);
        rocksdb_block_based_options_set_block_size(t, 32u << 10);
        int blob = e->cfg.blob_files >= 0 ? e->cfg.blob_files : DEFAULT_BLOB_FILES;
        if (blob) {
            rocksdb_options_set_enable_blob_files(o, 1);
            rocksdb_options_set_min_blob_size(o, 256);
            rocksdb_options_set_blob_file_size(o, 256u << 20);
            rocksdb_options_set_blob_compression_type(o, rocksdb_snappy_compression);
            rocksdb_options_set_enable_blob_gc(o, 1);
            rocksdb_options_set_blob_gc_age_cutoff(o, 0.25);
        }
        int universal = e->cfg.universal_compaction >= 0 ? e->cfg.universal_compaction
                                                         : DEFAULT_UNIVERSAL;
        if (universal)
            rocksdb_options_set_compaction_style(o, rocksdb_universal_compaction);
        break;
    }
    case ENGINE_CF_IDX_TIME:
        rocksdb_options_set_write_buffer_size(o, 32u << 20);
        rocksdb_options_set_prefix_extractor(o, rocksdb_slicetransform_create_fixed_prefix(8));
        rocksdb_block_based_options_set_filter_policy(t, rocksdb_filterpolicy_create_bloom_full(10));
        rocksdb_block_based_options_set_whole_key_filtering(t, 0);
        break;
    case ENGINE_CF_IDX_KEY:
        /* Lookups scan one (topic, key) prefix: prefix blooms make an absent
         * key cost no data-block reads. */
        rocksdb_options_set_write_buffer_size(o, 32u << 20);
        rocksdb_options_set_prefix_extractor(o, key_index_prefix_create());
        /* Keys arrive in random order: a hash of per-key skiplists makes each
         * insert O(1) where one big skiplist costs a cache miss per level. */
        rocksdb_options_set_hash_skip_list_rep(o, 1u << 20, 4, 4);
        rocksdb_block_based_options_set_filter_policy(t, rocksdb_filterpolicy_create_bloom_full(10));
        rocksdb_block_based_options_set_whole_key_filtering(t, 0);
        /* Entries are small and written once: fewer rewrites than leveled
         * compaction leave the CPU to the writer (bench/RESULTS.md, Queries). */
        rocksdb_options_set_compaction_style(o, rocksdb_universal_compaction);
        break;
    case ENGINE_CF_IDX_ID:
    case ENGINE_CF_OFFSET:
        /* Point lookups: whole-key blooms. */
        rocksdb_options_set_write_buffer_size(o, 32u << 20);
        rocksdb_block_based_options_set_filter_policy(t, rocksdb_filterpolicy_create_bloom_full(10));
        break;
    default:
        rocksdb_options_set_write_buffer_size(o, 4u << 20);
        break;
    }
    rocksdb_options_set_block_based_table_factory(o, t);
    rocksdb_block_based_options_destroy(t);
    return o;
}

void engine__fail(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (!errbuf || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

bool engine__bg_wait(engine *e, uint32_t interval_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += interval_ms / 1000;
    ts.tv_nsec += (long)(interval_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&e->bg_lock);
    if (!e->bg_stop)
        pthread_cond_timedwait(&e->bg_cond, &e->bg_lock, &ts);
    bool go_on = !e->bg_stop;
    pthread_mutex_unlock(&e->bg_lock);
    return go_on;
}

void engine__bg_stop(engine *e)
{
    pthread_mutex_lock(&e->bg_lock);
    e->bg_stop = true;
    pthread_cond_broadcast(&e->bg_cond);
    pthread_mutex_unlock(&e->bg_lock);
}

/* Read the format version and the next log position; write them for a new store. */
static int load_meta(engine *e, char *errbuf, size_t errlen)
{
    char *err = NULL;
    size_t vlen = 0;
    char *v = rocksdb_get_cf(e->db, e->ro_default, e->cf[ENGINE_CF_META], META_VERSION_KEY, 1,
                             &vlen, &err);
    if (err) {
        engine__fail(errbuf, errlen, "reading format version: %s", err);
        rocksdb_free(err);
        return LSMQ_EIO;
    }
    uint32_t version = ENGINE_FORMAT_VERSION;
    if (v) {
        if (vlen != 4) {
            rocksdb_free(v);
            engine__fail(errbuf, errlen, "store format version record is corrupt");
            return LSMQ_ECORRUPT;
        }
        version = proto_get_u32((const uint8_t *)v);
        rocksdb_free(v);
        if (version > ENGINE_FORMAT_VERSION) {
            engine__fail(errbuf, errlen, "store format version %u is newer than this build's %u",
                 version, ENGINE_FORMAT_VERSION);
            return LSMQ_EVERSION;
        }
        e->format_version = version;
    } else {
        e->format_version = ENGINE_FORMAT_VERSION;
        uint8_t buf[4];
        proto_put_u32(buf, ENGINE_FORMAT_VERSION);
        rocksdb_put_cf(e->db, e->wo_sync, e->cf[ENGINE_CF_META], META_VERSION_KEY, 1,
                       (const char *)buf, 4, &err);
        if (err) {
            engine__fail(errbuf, errlen, "writing format version: %s", err);
            int rc = engine__rocks_err(err);
            rocksdb_free(err);
            return rc;
        }
    }

    v = rocksdb_get_cf(e->db, e->ro_default, e->cf[ENGINE_CF_META], META_LOGPOS_KEY, 1, &vlen,
                       &err);
    if (err) {
        engine__fail(errbuf, errlen, "reading log position: %s", err);
        rocksdb_free(err);
        return LSMQ_EIO;
    }
    uint64_t logpos = 0;
    if (v && vlen == 8)
        logpos = proto_get_u64((const uint8_t *)v);
    rocksdb_free(v);
    atomic_store(&e->next_log_position, logpos);
    e->w_next_log_position = logpos;
    return 0;
}

static void close_db(engine *e)
{
    for (int i = 0; i < ENGINE_CF_COUNT; i++) {
        if (e->cf[i])
            rocksdb_column_family_handle_destroy(e->cf[i]);
        e->cf[i] = NULL;
    }
    if (e->db)
        rocksdb_close(e->db);
    e->db = NULL;
}

static void engine_free_handles(engine *e)
{
    close_db(e);
    for (int i = 0; i < ENGINE_CF_COUNT; i++) {
        if (e->cf_opts[i])
            rocksdb_options_destroy(e->cf_opts[i]);
        e->cf_opts[i] = NULL;
    }
    if (e->db_opts)
        rocksdb_options_destroy(e->db_opts);
    if (e->block_cache)
        rocksdb_cache_destroy(e->block_cache);
    if (e->wo_sync)
        rocksdb_writeoptions_destroy(e->wo_sync);
    if (e->wo_async)
        rocksdb_writeoptions_destroy(e->wo_async);
    if (e->ro_default)
        rocksdb_readoptions_destroy(e->ro_default);
}

/* Open the database and its column families with the options in e. */
static int open_db(engine *e, char *errbuf, size_t errlen)
{
    const char *names[ENGINE_CF_COUNT + 1];
    const rocksdb_options_t *opts[ENGINE_CF_COUNT + 1];
    rocksdb_column_family_handle_t *handles[ENGINE_CF_COUNT + 1];
    names[0] = "default";
    opts[0] = e->db_opts;
    for (int i = 0; i < ENGINE_CF_COUNT; i++) {
        names[i + 1] = engine__cf_names[i];
        opts[i + 1] = e->cf_opts[i];
    }
    char *err = NULL;
    e->db = rocksdb_open_column_families(e->db_opts, e->db_path, ENGINE_CF_COUNT + 1, names,
                                         opts, handles, &err);
    if (err) {
        int rc = engine__rocks_err(err);
        engine__fail(errbuf, errlen, "%s: %s", rc == LSMQ_ELOCKED
                 ? "store is in use by another process (broker already running?)"
                 : "cannot open store", err);
        rocksdb_free(err);
        e->db = NULL;
        return rc;
    }
    rocksdb_column_family_handle_destroy(handles[0]);
    for (int i = 0; i < ENGINE_CF_COUNT; i++)
        e->cf[i] = handles[i + 1];
    return 0;
}

int engine__reopen(engine *e)
{
    char err[512] = "";
    pthread_rwlock_wrlock(&e->db_lock);
    pthread_rwlock_wrlock(&e->topics_lock);
    close_db(e);
    topics__free_all(e);
    int rc = open_db(e, err, sizeof err);
    if (rc == 0)
        rc = load_meta(e, err, sizeof err);
    if (rc == 0)
        rc = topics__load(e, err, sizeof err);
    pthread_rwlock_unlock(&e->topics_lock);
    pthread_rwlock_unlock(&e->db_lock);
    if (rc != 0)
        engine_log("reopening the store failed: %s", err);
    else
        engine_log("store reopened after a write error");
    return rc;
}

void engine_db_pin(engine *e) { pthread_rwlock_rdlock(&e->db_lock); }

void engine_db_unpin(engine *e) { pthread_rwlock_unlock(&e->db_lock); }

uint32_t engine_format_version(engine *e) { return e->format_version; }

int engine_set_format_version(engine *e, uint32_t v)
{
    uint8_t buf[4];
    proto_put_u32(buf, v);
    char *err = NULL;
    engine_db_pin(e);
    rocksdb_put_cf(e->db, e->wo_sync, e->cf[ENGINE_CF_META], META_VERSION_KEY, 1,
                   (const char *)buf, sizeof buf, &err);
    engine_db_unpin(e);
    if (err) {
        int rc = engine__rocks_err(err);
        engine_log("recording format version %u failed: %s", v, err);
        rocksdb_free(err);
        return rc;
    }
    e->format_version = v;
    return 0;
}

static void engine_destroy(engine *e)
{
    topics__free_all(e);
    engine_free_handles(e);
    pthread_rwlock_destroy(&e->topics_lock);
    pthread_rwlock_destroy(&e->db_lock);
    pthread_mutex_destroy(&e->bg_lock);
    pthread_cond_destroy(&e->bg_cond);
    free(e->store_path);
    free(e->db_path);
    free(e);
}

int engine_open(const engine_config *c, engine **out, char *errbuf, size_t errlen)
{
    *out = NULL;
    if (!c || !c->store_path || !*c->store_path) {
        engine__fail(errbuf, errlen, "storePathRootDir is not set");
        return LSMQ_EINVAL;
    }
    engine *e = calloc(1, sizeof *e);
    if (!e)
        abort();
    e->cfg = *c;
    e->cfg.store_path = NULL;
    pthread_rwlock_init(&e->topics_lock, NULL);
    pthread_rwlock_init(&e->db_lock, NULL);
    pthread_mutex_init(&e->bg_lock, NULL);
    pthread_cond_init(&e->bg_cond, NULL);
    e->store_path = strdup(c->store_path);
    if (asprintf(&e->db_path, "%s/db", c->store_path) < 0)
        abort();
    int rc = mkdir_p(e->store_path);
    if (rc != 0) {
        engine__fail(errbuf, errlen, "cannot create %s: %s", e->store_path, lsmq_strerror(rc));
        goto err;
    }

    e->block_cache = rocksdb_cache_create_lru(c->block_cache_bytes ? c->block_cache_bytes
                                                                   : (8u << 20));
    e->db_opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(e->db_opts, 1);
    rocksdb_options_set_create_missing_column_families(e->db_opts, 1);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1)
        cpus = 1;
    rocksdb_options_increase_parallelism(e->db_opts, (int)cpus);
    rocksdb_options_set_max_background_jobs(e->db_opts, (int)(cpus < 2 ? 2 : cpus * 2));
    rocksdb_options_set_bytes_per_sync(e->db_opts, 1u << 20);
    rocksdb_options_set_max_total_wal_size(e->db_opts, 512u << 20);
    rocksdb_options_set_keep_log_file_num(e->db_opts, 5);
    rocksdb_options_set_max_open_files(e->db_opts, 1024);
    /* One writer thread: concurrent memtable inserts buy nothing, and the
     * hash memtable of idx_key does not support them. */
    rocksdb_options_set_allow_concurrent_memtable_write(e->db_opts, 0);
    /* RocksDB's info LOG shares the store's disk; this RocksDB build asserts
     * when a log line follows a failed one, which a full disk causes. Keep
     * only fatal lines there: the engine logs its own events to stderr. */
    rocksdb_options_set_info_log_level(e->db_opts, 4 /* FATAL_LEVEL */);
    for (int i = 0; i < ENGINE_CF_COUNT; i++)
        e->cf_opts[i] = cf_options(e, (engine_cf)i);

    if ((rc = open_db(e, errbuf, errlen)) != 0)
        goto err;

    e->wo_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(e->wo_sync, 1);
    e->wo_async = rocksdb_writeoptions_create();
    e->ro_default = rocksdb_readoptions_create();

    if ((rc = load_meta(e, errbuf, errlen)) != 0)
        goto err;
    if ((rc = topics__load(e, errbuf, errlen)) != 0)
        goto err;
    if ((rc = writer__start(e)) != 0) {
        engine__fail(errbuf, errlen, "cannot start the writer thread");
        goto err;
    }
    if ((rc = retention__start(e)) != 0 || (rc = wal_sync__start(e)) != 0) {
        retention__stop(e);
        writer__stop(e);
        engine__fail(errbuf, errlen, "cannot start the housekeeping threads");
        goto err;
    }
    *out = e;
    return 0;

err:
    engine_destroy(e);
    return rc;
}

void engine_close(engine *e)
{
    if (!e)
        return;
    retention__stop(e);
    wal_sync__stop(e);
    writer__stop(e);
    char *err = NULL;
    if (atomic_load(&e->write_health) == 0)
        rocksdb_flush_wal(e->db, 1, &err);
    if (err) {
        engine_log("closing: WAL sync failed: %s", err);
        rocksdb_free(err);
    }
    engine_destroy(e);
}

int engine_add_hook(engine *e, const engine_hook *h)
{
    if (e->nhooks >= ENGINE_MAX_HOOKS)
        return LSMQ_ETOOBIG;
    e->hooks[e->nhooks++] = *h;
    return 0;
}

rocksdb_t *engine_db(engine *e) { return e->db; }

rocksdb_column_family_handle_t *engine_cf_handle(engine *e, engine_cf cf)
{
    return cf < ENGINE_CF_COUNT ? e->cf[cf] : NULL;
}

void engine_free(void *p) { free(p); }

uint64_t engine_next_log_position(engine *e) { return atomic_load(&e->next_log_position); }

int engine_write_health(engine *e) { return atomic_load(&e->write_health); }

uint64_t engine_retention_removed(engine *e) { return atomic_load(&e->retention_removed); }

void engine_batch_put(engine_batch *b, engine_cf cf, const void *key, size_t klen,
                      const void *val, size_t vlen)
{
    rocksdb_writebatch_put_cf(b->wb, b->e->cf[cf], key, klen, val, vlen);
}

void engine_batch_delete(engine_batch *b, engine_cf cf, const void *key, size_t klen)
{
    rocksdb_writebatch_delete_cf(b->wb, b->e->cf[cf], key, klen);
}

void engine_batch_delete_range(engine_batch *b, engine_cf cf, const void *begin, size_t blen,
                               const void *end, size_t elen)
{
    rocksdb_writebatch_delete_range_cf(b->wb, b->e->cf[cf], begin, blen, end, elen);
}
