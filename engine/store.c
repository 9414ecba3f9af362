/*
 * Opening and closing the live store: directories, the database with every
 * column family (families.c), the format version, recovery of the
 * high-water marks, the extensions' on_open, and the reopen after a write
 * error. Shared helpers of engine/ (errors, clock, background waits) too.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"
#include "clock.h"

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

const char *engine__one_line(char *s)
{
    char *nl = strchr(s, '\n');
    if (nl)
        *nl = 0;
    return s;
}

int64_t engine__now_ms(engine *e)
{
    int64_t ms;
    if (e->cfg.clock_ms && e->cfg.clock_ms(e->cfg.clock_ctx, &ms) == 0)
        return ms;
    return proto_wall_ms();
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
    struct timespec ts = proto_deadline_after(CLOCK_REALTIME, interval_ms);
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

/* A u64 meta record into *out (left alone when absent). */
static int load_meta_u64(engine *e, const char *key, const char *what, uint64_t *out,
                         char *errbuf, size_t errlen)
{
    char *err = NULL;
    size_t vlen = 0;
    char *v = rocksdb_get_cf(e->db, e->ro_default, e->cf[ENGINE_CF_META], key, 1, &vlen, &err);
    if (err) {
        engine__fail(errbuf, errlen, "reading %s: %s", what, err);
        rocksdb_free(err);
        return LSMQ_EIO;
    }
    if (v && vlen == 8)
        *out = proto_get_u64((const uint8_t *)v);
    rocksdb_free(v);
    return 0;
}

/* Read the format version, the next log position and a replica's applied
 * sequence; write the version for a new store. */
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

    uint64_t logpos = 0, applied = 0;
    int rc = load_meta_u64(e, META_LOGPOS_KEY, "the log position", &logpos, errbuf, errlen);
    if (rc == 0)
        rc = load_meta_u64(e, META_APPLIED_KEY, "the applied sequence", &applied, errbuf, errlen);
    if (rc != 0)
        return rc;
    atomic_store(&e->next_log_position, logpos);
    e->w_next_log_position = logpos;
    atomic_store(&e->applied_seq, applied);
    e->w_applied_seq = applied;
    return 0;
}

static void close_db(engine *e)
{
    engine__families_close_handles(e);
    if (e->db)
        rocksdb_close(e->db);
    e->db = NULL;
}

/* Open the database and every family of e's table with its options. */
static int open_db(engine *e, char *errbuf, size_t errlen)
{
    const char *names[ENGINE_MAX_FAMILIES + 1];
    const rocksdb_options_t *opts[ENGINE_MAX_FAMILIES + 1];
    rocksdb_column_family_handle_t *handles[ENGINE_MAX_FAMILIES + 1];
    names[0] = "default";
    opts[0] = e->db_opts;
    for (size_t i = 0; i < e->nfamilies; i++) {
        names[i + 1] = e->cf_names[i];
        opts[i + 1] = e->cf_opts[i];
    }
    char *err = NULL;
    e->db = rocksdb_open_column_families(e->db_opts, e->db_path, (int)e->nfamilies + 1, names,
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
    e->default_cf = handles[0];
    for (size_t i = 0; i < e->nfamilies; i++)
        e->cf[i] = handles[i + 1];
    engine__families_note_ids(e);
    return 0;
}

int engine__reopen(engine *e)
{
    char err[512] = "";
    pthread_rwlock_wrlock(&e->db_lock);
    pthread_rwlock_wrlock(&e->topics_lock);
    close_db(e);
    engine__topics_free_all(e);
    int rc = open_db(e, err, sizeof err);
    if (rc == 0)
        rc = load_meta(e, err, sizeof err);
    if (rc == 0)
        rc = engine__topics_load(e, err, sizeof err);
    if (rc == 0)
        rc = engine__timers_load(e, err, sizeof err);
    atomic_fetch_add(&e->db_generation, 1);
    pthread_rwlock_unlock(&e->topics_lock);
    pthread_rwlock_unlock(&e->db_lock);
    if (rc != 0)
        proto_log(PROTO_LOG_ERROR, "engine: reopening the store failed: %s", err);
    else
        proto_log(PROTO_LOG_INFO, "engine: store reopened after a write error");
    return rc;
}

void engine__pin(engine *e) { pthread_rwlock_rdlock(&e->db_lock); }

void engine__unpin(engine *e) { pthread_rwlock_unlock(&e->db_lock); }

uint32_t engine_format_version(engine *e) { return e->format_version; }

bool engine_is_readonly(const engine *e) { return e->read_only; }

int engine_set_format_version(engine *e, uint32_t v)
{
    if (e->read_only || e->w) /* on_open only: the writer must be the only one to write */
        return LSMQ_EINVAL;
    if (e->cfg.replica)
        return LSMQ_EREADONLY; /* its master's batches upgrade it */
    uint8_t buf[4];
    proto_put_u32(buf, v);
    char *err = NULL;
    engine__pin(e);
    rocksdb_put_cf(e->db, e->wo_sync, e->cf[ENGINE_CF_META], META_VERSION_KEY, 1,
                   (const char *)buf, sizeof buf, &err);
    engine__unpin(e);
    if (err) {
        int rc = engine__rocks_err(err);
        proto_log(PROTO_LOG_ERROR, "engine: recording format version %u failed: %s", v, err);
        rocksdb_free(err);
        return rc;
    }
    e->format_version = v;
    return 0;
}

engine *engine__alloc(const char *store_path)
{
    engine *e = proto_xcalloc(1, sizeof *e);
    pthread_rwlock_init(&e->topics_lock, NULL);
    pthread_rwlock_init(&e->db_lock, NULL);
    pthread_mutex_init(&e->bg_lock, NULL);
    pthread_mutex_init(&e->confirm_lock, NULL);
    pthread_cond_init(&e->bg_cond, NULL);
    e->store_path = proto_xstrdup(store_path);
    e->db_path = proto_xasprintf("%s/db", store_path);
    engine__timers_init(e);
    return e;
}

void engine__destroy(engine *e)
{
    engine__topics_free_all(e);
    close_db(e);
    engine__families_free(e);
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
    engine__readonly_cleanup(e);
    engine__replica_free(e);
    engine__confirm_free(e);
    engine__timers_free(e);
    pthread_rwlock_destroy(&e->topics_lock);
    pthread_rwlock_destroy(&e->db_lock);
    pthread_mutex_destroy(&e->bg_lock);
    pthread_cond_destroy(&e->bg_cond);
    free(e->store_path);
    free(e->db_path);
    free(e);
}

/* Copy the declared extensions; their families get numbers in engine__families_plan. */
static int take_extensions(engine *e, const engine_config *c, char *errbuf, size_t errlen)
{
    for (size_t i = 0; i < c->n_extensions && i < ENGINE_MAX_EXTENSIONS; i++) {
        const engine_extension *d = c->extensions[i];
        if (!d || d->n_families > ENGINE_MAX_FAMILIES) {
            engine__fail(errbuf, errlen, "extension %zu is missing or declares too much", i);
            return LSMQ_EINVAL;
        }
        extension *x = &e->exts[e->nexts++];
        x->decl = *d;
        x->env = (engine_ext_env){.name = d->name, .ctx = d->ctx, .e = e,
                                  .families = x->families, .n_families = d->n_families};
    }
    return 0;
}

/* Run the extensions' on_open callbacks, in declaration order. */
static int run_on_open(engine *e, char *errbuf, size_t errlen)
{
    for (int i = 0; i < e->nexts; i++) {
        extension *x = &e->exts[i];
        if (!x->decl.on_open)
            continue;
        int rc = x->decl.on_open(&x->env, errbuf, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void set_db_options(rocksdb_options_t *o)
{
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_create_missing_column_families(o, 1);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1)
        cpus = 1;
    rocksdb_options_increase_parallelism(o, (int)cpus);
    rocksdb_options_set_max_background_jobs(o, (int)(cpus < 2 ? 2 : cpus * 2));
    rocksdb_options_set_bytes_per_sync(o, 1u << 20);
    rocksdb_options_set_max_total_wal_size(o, 512u << 20);
    rocksdb_options_set_keep_log_file_num(o, 5);
    rocksdb_options_set_max_open_files(o, 1024);
    /* One writer thread: concurrent memtable inserts buy nothing, and a
     * hash memtable (index/'s idx_key) does not support them. */
    rocksdb_options_set_allow_concurrent_memtable_write(o, 0);
    /* RocksDB's info LOG shares the store's disk; this RocksDB build asserts
     * when a log line follows a failed one, which a full disk causes. Keep
     * only fatal lines there: the engine logs its own events to stderr. */
    rocksdb_options_set_info_log_level(o, 4 /* FATAL_LEVEL */);
}

int engine_open(const engine_config *c, engine **out, char *errbuf, size_t errlen)
{
    *out = NULL;
    if (!c || !c->store_path || !*c->store_path) {
        engine__fail(errbuf, errlen, "storePathRootDir is not set");
        return LSMQ_EINVAL;
    }
    engine *e = engine__alloc(c->store_path);
    e->cfg = *c;
    e->cfg.store_path = NULL;
    int rc = mkdir_p(e->store_path);
    if (rc != 0) {
        engine__fail(errbuf, errlen, "cannot create %s: %s", e->store_path, lsmq_strerror(rc));
        goto err;
    }

    e->block_cache = rocksdb_cache_create_lru(c->block_cache_bytes ? c->block_cache_bytes
                                                                   : (8u << 20));
    e->db_opts = rocksdb_options_create();
    set_db_options(e->db_opts);
    /* Replicas catch up from the WAL: archive it rather than delete it. */
    rocksdb_options_set_WAL_ttl_seconds(e->db_opts, c->wal_ttl_seconds);
    rocksdb_options_set_WAL_size_limit_MB(e->db_opts, c->wal_size_limit_mb);
    if ((rc = take_extensions(e, c, errbuf, errlen)) != 0 ||
        (rc = engine__families_plan(e, errbuf, errlen)) != 0 ||
        (rc = open_db(e, errbuf, errlen)) != 0)
        goto err;

    e->wo_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(e->wo_sync, 1);
    e->wo_async = rocksdb_writeoptions_create();
    e->ro_default = rocksdb_readoptions_create();

    if ((rc = load_meta(e, errbuf, errlen)) != 0 ||
        (rc = engine__topics_load(e, errbuf, errlen)) != 0 ||
        (rc = engine__timers_load(e, errbuf, errlen)) != 0 ||
        (rc = run_on_open(e, errbuf, errlen)) != 0)
        goto err;
    engine__confirm_open(e);
    if ((rc = engine__writer_start(e)) != 0) {
        engine__fail(errbuf, errlen, "cannot start the writer thread");
        goto err;
    }
    if ((rc = engine__retention_start(e)) != 0 || (rc = engine__wal_sync_start(e)) != 0) {
        engine__retention_stop(e);
        engine__writer_stop(e);
        engine__fail(errbuf, errlen, "cannot start the housekeeping threads");
        goto err;
    }
    *out = e;
    return 0;

err:
    engine__destroy(e);
    return rc;
}

void engine_close(engine *e)
{
    if (!e)
        return;
    if (!e->read_only) {
        engine__retention_stop(e);
        engine__wal_sync_stop(e);
        engine__writer_stop(e);
        char *err = NULL;
        if (atomic_load(&e->write_health) == 0 && e->db)
            rocksdb_flush_wal(e->db, 1, &err);
        if (err) {
            proto_log(PROTO_LOG_ERROR, "engine: closing: WAL sync failed: %s", err);
            rocksdb_free(err);
        }
    }
    engine__destroy(e);
}

void engine_free(void *p) { free(p); }

uint64_t engine_next_log_position(engine *e) { return atomic_load(&e->next_log_position); }

int engine_write_health(engine *e) { return atomic_load(&e->write_health); }

uint64_t engine_retention_removed(engine *e) { return atomic_load(&e->retention_removed); }
