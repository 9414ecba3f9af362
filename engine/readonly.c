/*
 * engine_open_readonly: a broker's store opened for tools. The database
 * (<store_path>/db) is a RocksDB secondary instance with a scratch
 * directory of its own: it never takes the primary's lock and never writes
 * into the store. Every family on disk is opened with plain options and a
 * small block cache; the topic map and high-water marks load as for the
 * live store, so reads and views serve it unchanged. No writer or
 * housekeeping thread ever starts.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"

/* Read-mostly scans do not need the broker's 256 MiB. */
#define READONLY_CACHE_BYTES (32u << 20)
#define OPEN_ATTEMPTS 3

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void engine__readonly_cleanup(engine *e)
{
    if (!e->scratch_dir)
        return;
    nftw(e->scratch_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(e->scratch_dir);
    e->scratch_dir = NULL;
}

static int make_scratch_dir(engine *e, char *errbuf, size_t errlen)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    e->scratch_dir = proto_xasprintf("%s/lsmq-reader-XXXXXX", tmp);
    if (!mkdtemp(e->scratch_dir)) {
        engine__fail(errbuf, errlen, "cannot create a scratch directory under %s: %s", tmp,
                     strerror(errno));
        free(e->scratch_dir);
        e->scratch_dir = NULL;
        return LSMQ_EIO;
    }
    return 0;
}

/* The directory checks that give a clear message before RocksDB gives a vague one. */
static int check_dirs(const char *store_path, const char *db_path, char *errbuf, size_t errlen)
{
    struct stat st;
    if (stat(store_path, &st) != 0) {
        engine__fail(errbuf, errlen, "%s: %s", store_path, strerror(errno));
        return errno == ENOENT ? LSMQ_ENOTFOUND : LSMQ_EIO;
    }
    if (!S_ISDIR(st.st_mode)) {
        engine__fail(errbuf, errlen, "%s is not a directory", store_path);
        return LSMQ_EINVAL;
    }
    if (stat(db_path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        engine__fail(errbuf, errlen, "%s is not a broker store (no db/ directory)", store_path);
        return LSMQ_EINVAL;
    }
    char *current = proto_xasprintf("%s/CURRENT", db_path);
    int missing = stat(current, &st) != 0;
    free(current);
    if (missing) {
        engine__fail(errbuf, errlen, "%s is not a broker store (no RocksDB database in db/)",
                     store_path);
        return LSMQ_EINVAL;
    }
    return 0;
}

static rocksdb_options_t *plain_options(engine *e)
{
    rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(t, e->block_cache);
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_block_based_table_factory(o, t);
    rocksdb_block_based_options_destroy(t);
    return o;
}

/* The family table: the engine's own at their numbers (if the store has them), then the rest. */
static int plan_families(engine *e, char **found, size_t nfound, const char *store_path,
                         char *errbuf, size_t errlen)
{
    bool have[ENGINE_CF_COUNT] = {false};
    for (size_t i = 0; i < nfound; i++)
        for (int cf = 0; cf < ENGINE_CF_COUNT; cf++)
            if (strcmp(found[i], engine__own_cf_names[cf]) == 0)
                have[cf] = true;
    if (!have[ENGINE_CF_META] || !have[ENGINE_CF_TOPIC] || !have[ENGINE_CF_MSG]) {
        engine__fail(errbuf, errlen,
                     "%s is not a broker store (its database lacks the %s family)", store_path,
                     !have[ENGINE_CF_META] ? "meta" : !have[ENGINE_CF_TOPIC] ? "topic" : "msg");
        return LSMQ_EINVAL;
    }
    for (int cf = 0; cf < ENGINE_CF_COUNT; cf++)
        engine__family_add(e, engine__own_cf_names[cf], have[cf] ? plain_options(e) : NULL);
    for (size_t i = 0; i < nfound; i++) {
        if (strcmp(found[i], "default") == 0 || engine__family_index(e, found[i]) >= 0)
            continue;
        if (engine__family_add(e, found[i], plain_options(e)) < 0) {
            engine__fail(errbuf, errlen, "%s has more than %d column families", store_path,
                         ENGINE_MAX_FAMILIES);
            return LSMQ_ECORRUPT;
        }
    }
    return 0;
}

/* Open every family the store has. */
static int open_secondary(engine *e, const char *store_path, char *errbuf, size_t errlen)
{
    char *err = NULL;
    size_t nfound = 0;
    char **found = rocksdb_list_column_families(e->db_opts, e->db_path, &nfound, &err);
    if (err) {
        engine__fail(errbuf, errlen, "%s: corrupt store: %s", store_path, engine__one_line(err));
        rocksdb_free(err);
        if (found) /* an empty list is still allocated */
            rocksdb_list_column_families_destroy(found, nfound);
        return LSMQ_ECORRUPT;
    }
    int rc = plan_families(e, found, nfound, store_path, errbuf, errlen);
    rocksdb_list_column_families_destroy(found, nfound);
    if (rc != 0)
        return rc;

    const char *names[ENGINE_MAX_FAMILIES + 1];
    const rocksdb_options_t *opts[ENGINE_MAX_FAMILIES + 1];
    int which[ENGINE_MAX_FAMILIES + 1];
    rocksdb_column_family_handle_t *handles[ENGINE_MAX_FAMILIES + 1];
    int n = 0;
    names[n] = "default";
    opts[n] = e->db_opts;
    which[n++] = -1;
    for (size_t i = 0; i < e->nfamilies; i++) {
        if (!e->cf_opts[i])
            continue; /* an engine family this store lacks */
        names[n] = e->cf_names[i];
        opts[n] = e->cf_opts[i];
        which[n++] = (int)i;
    }
    /* A running broker may delete a WAL or table file between RocksDB
     * listing and opening it; another attempt finds the current set. */
    for (int attempt = 0; attempt < OPEN_ATTEMPTS; attempt++) {
        if (err) {
            rocksdb_free(err);
            err = NULL;
        }
        e->db = rocksdb_open_as_secondary_column_families(e->db_opts, e->db_path,
                                                          e->scratch_dir, n, names, opts,
                                                          handles, &err);
        if (!err)
            break;
    }
    if (err) {
        engine__fail(errbuf, errlen, "%s: cannot open the store: %s", store_path,
                     engine__one_line(err));
        rocksdb_free(err);
        e->db = NULL;
        return LSMQ_ECORRUPT;
    }
    for (int i = 0; i < n; i++) {
        if (which[i] < 0)
            e->default_cf = handles[i];
        else
            e->cf[which[i]] = handles[i];
    }
    /* Opening replays the primary's WAL; catching up once more narrows the
     * gap to a broker that keeps writing. Failing to is not fatal. */
    rocksdb_try_catch_up_with_primary(e->db, &err);
    if (err) {
        proto_log(PROTO_LOG_WARN, "engine: catching up with the running broker failed: %s",
                  engine__one_line(err));
        rocksdb_free(err);
    }
    return 0;
}

/* A meta record: 0 with *v malloc'ed, LSMQ_ENOTFOUND, or LSMQ_EIO. */
static int get_meta(engine *e, const char *key, char **v, size_t *vlen)
{
    char *err = NULL;
    *v = rocksdb_get_cf(e->db, e->ro_default, e->cf[ENGINE_CF_META], key, 1, vlen, &err);
    if (err) {
        rocksdb_free(err);
        return LSMQ_EIO;
    }
    return *v ? 0 : LSMQ_ENOTFOUND;
}

static int load_version(engine *e, const char *store_path, char *errbuf, size_t errlen)
{
    char *v = NULL;
    size_t vlen = 0;
    int rc = get_meta(e, META_VERSION_KEY, &v, &vlen);
    if (rc == LSMQ_ENOTFOUND) {
        engine__fail(errbuf, errlen, "%s is not a broker store (no format version record)",
                     store_path);
        return LSMQ_EINVAL;
    }
    if (rc != 0) {
        engine__fail(errbuf, errlen, "%s: cannot read the format version", store_path);
        return rc;
    }
    if (vlen != 4) {
        rocksdb_free(v);
        engine__fail(errbuf, errlen, "%s: corrupt store (bad format version record)",
                     store_path);
        return LSMQ_ECORRUPT;
    }
    e->format_version = proto_get_u32((const uint8_t *)v);
    rocksdb_free(v);
    if (e->format_version > ENGINE_FORMAT_VERSION) {
        engine__fail(errbuf, errlen, "%s: store format version %u is newer than this build's %u",
                     store_path, e->format_version, ENGINE_FORMAT_VERSION);
        return LSMQ_EVERSION;
    }
    if (get_meta(e, META_LOGPOS_KEY, &v, &vlen) == 0) {
        if (vlen == 8)
            atomic_store(&e->next_log_position, proto_get_u64((const uint8_t *)v));
        rocksdb_free(v);
    }
    return 0;
}

static int load_topics(engine *e, const char *store_path, char *errbuf, size_t errlen)
{
    char msg[256] = "";
    int rc = engine__topics_load(e, msg, sizeof msg);
    if (rc != 0)
        engine__fail(errbuf, errlen, "%s: %s%s", store_path,
                     rc == LSMQ_ECORRUPT ? "corrupt store: " : "", msg);
    return rc;
}

int engine_open_readonly(const char *store_path, engine **out, char *errbuf, size_t errlen)
{
    *out = NULL;
    if (!store_path || !*store_path) {
        engine__fail(errbuf, errlen, "no store directory given");
        return LSMQ_EINVAL;
    }
    engine *e = engine__alloc(store_path);
    e->read_only = true;
    engine_config_init(&e->cfg);
    int rc = check_dirs(store_path, e->db_path, errbuf, errlen);
    if (rc == 0)
        rc = make_scratch_dir(e, errbuf, errlen);
    if (rc != 0)
        goto err;

    e->block_cache = rocksdb_cache_create_lru(READONLY_CACHE_BYTES);
    e->db_opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(e->db_opts, 0);
    /* Keep every table file open: the broker's compactions may delete one
     * while a view still iterates it. */
    rocksdb_options_set_max_open_files(e->db_opts, -1);
    rocksdb_options_set_info_log_level(e->db_opts, 3 /* ERROR_LEVEL */);
    e->ro_default = rocksdb_readoptions_create();

    if ((rc = open_secondary(e, store_path, errbuf, errlen)) != 0 ||
        (rc = load_version(e, store_path, errbuf, errlen)) != 0 ||
        (rc = load_topics(e, store_path, errbuf, errlen)) != 0 ||
        (rc = engine__timers_load(e, errbuf, errlen)) != 0)
        goto err;
    *out = e;
    return 0;

err:
    engine__destroy(e);
    return rc;
}
