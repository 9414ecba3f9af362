/*
 * The read-only store reader (reader.h): a RocksDB secondary instance over
 * <store_path>/db with a scratch directory of its own, and an engine struct
 * that holds only the database handles, so the topic and high-water-mark
 * loading of topics.c and the min-offset seek of read.c serve it unchanged.
 * No writer or housekeeping thread ever starts; nothing writes to the store.
 */
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "reader.h"

_Static_assert(ENGINE_READER_MSG_KEY_LEN == MSG_KEY_LEN, "msg key length");


/* Read-mostly scans do not need the broker's 256 MiB. */
#define READER_CACHE_BYTES (32u << 20)
#define SCAN_READAHEAD_BYTES (4u << 20)
#define OPEN_ATTEMPTS 3

struct engine_reader {
    engine e; /* db handles, topic map and queue states; no writer */
    char *scratch_dir;
    rocksdb_options_t *db_opts;
    rocksdb_options_t *cf_opts;
    rocksdb_cache_t *cache;
    rocksdb_column_family_handle_t *default_cf;
    engine_topic_config *sorted; /* topics by name */
    size_t ntopics;
    uint32_t format_version;
};

struct engine_reader_iter {
    rocksdb_iterator_t *it;
    rocksdb_readoptions_t *ro;
    char *lower, *upper; /* the bounds the read options point at */
    size_t lower_len;
};


/* First line of a RocksDB message, so errors stay one line. */
static const char *one_line(char *s)
{
    char *nl = strchr(s, '\n');
    if (nl)
        *nl = 0;
    return s;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static int make_scratch_dir(engine_reader *r, char *errbuf, size_t errlen)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    if (asprintf(&r->scratch_dir, "%s/lsmq-reader-XXXXXX", tmp) < 0)
        abort();
    if (!mkdtemp(r->scratch_dir)) {
        engine__fail(errbuf, errlen, "cannot create a scratch directory under %s: %s", tmp,
             strerror(errno));
        free(r->scratch_dir);
        r->scratch_dir = NULL;
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
    char *current;
    if (asprintf(&current, "%s/CURRENT", db_path) < 0)
        abort();
    int missing = stat(current, &st) != 0;
    free(current);
    if (missing) {
        engine__fail(errbuf, errlen, "%s is not a broker store (no RocksDB database in db/)",
             store_path);
        return LSMQ_EINVAL;
    }
    return 0;
}

static int family_index(const char *name)
{
    for (int i = 0; i < ENGINE_CF_COUNT; i++)
        if (strcmp(name, engine__cf_names[i]) == 0)
            return i;
    return -1;
}

/* Open the families the store has; the engine's own must all be there. */
static int open_secondary(engine_reader *r, const char *store_path, char *errbuf,
                          size_t errlen)
{
    char *err = NULL;
    size_t nfound = 0;
    char **found = rocksdb_list_column_families(r->db_opts, r->e.db_path, &nfound, &err);
    if (err) {
        engine__fail(errbuf, errlen, "%s: corrupt store: %s", store_path, one_line(err));
        rocksdb_free(err);
        if (found) /* an empty list is still allocated */
            rocksdb_list_column_families_destroy(found, nfound);
        return LSMQ_ECORRUPT;
    }
    const char *names[ENGINE_CF_COUNT + 1];
    const rocksdb_options_t *opts[ENGINE_CF_COUNT + 1];
    int which[ENGINE_CF_COUNT + 1];
    rocksdb_column_family_handle_t *handles[ENGINE_CF_COUNT + 1];
    int n = 0, has_meta = 0, has_topic = 0, has_msg = 0;
    names[n] = "default";
    opts[n] = r->cf_opts;
    which[n++] = -1;
    for (size_t i = 0; i < nfound; i++) {
        int cf = family_index(found[i]);
        if (cf < 0)
            continue;
        has_meta |= cf == ENGINE_CF_META;
        has_topic |= cf == ENGINE_CF_TOPIC;
        has_msg |= cf == ENGINE_CF_MSG;
        names[n] = engine__cf_names[cf];
        opts[n] = r->cf_opts;
        which[n++] = cf;
    }
    rocksdb_list_column_families_destroy(found, nfound);
    if (!has_meta || !has_topic || !has_msg) {
        engine__fail(errbuf, errlen, "%s is not a broker store (its database lacks the %s family)",
             store_path, !has_meta ? "meta" : !has_topic ? "topic" : "msg");
        return LSMQ_EINVAL;
    }
    /* A running broker may delete a WAL or table file between RocksDB
     * listing and opening it; another attempt finds the current set. */
    for (int attempt = 0; attempt < OPEN_ATTEMPTS; attempt++) {
        if (err) {
            rocksdb_free(err);
            err = NULL;
        }
        r->e.db = rocksdb_open_as_secondary_column_families(r->db_opts, r->e.db_path,
                                                            r->scratch_dir, n, names, opts,
                                                            handles, &err);
        if (!err)
            break;
    }
    if (err) {
        engine__fail(errbuf, errlen, "%s: cannot open the store: %s", store_path, one_line(err));
        rocksdb_free(err);
        r->e.db = NULL;
        return LSMQ_ECORRUPT;
    }
    for (int i = 0; i < n; i++) {
        if (which[i] < 0)
            r->default_cf = handles[i];
        else
            r->e.cf[which[i]] = handles[i];
    }
    /* Opening replays the primary's WAL; catching up once more narrows the
     * gap to a broker that keeps writing. Failing to is not fatal. */
    rocksdb_try_catch_up_with_primary(r->e.db, &err);
    if (err) {
        engine_log("catching up with the running broker failed: %s", one_line(err));
        rocksdb_free(err);
    }
    return 0;
}

static int load_version(engine_reader *r, const char *store_path, char *errbuf, size_t errlen)
{
    char *v = NULL;
    size_t vlen = 0;
    int rc = engine_reader_get(r, ENGINE_CF_META, META_VERSION_KEY, 1, &v, &vlen);
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
        free(v);
        engine__fail(errbuf, errlen, "%s: corrupt store (bad format version record)", store_path);
        return LSMQ_ECORRUPT;
    }
    r->format_version = proto_get_u32((const uint8_t *)v);
    free(v);
    if (r->format_version > ENGINE_FORMAT_VERSION) {
        engine__fail(errbuf, errlen, "%s: store format version %u is newer than this build's %u",
             store_path, r->format_version, ENGINE_FORMAT_VERSION);
        return LSMQ_EVERSION;
    }
    if (engine_reader_get(r, ENGINE_CF_META, META_LOGPOS_KEY, 1, &v, &vlen) == 0) {
        if (vlen == 8)
            atomic_store(&r->e.next_log_position, proto_get_u64((const uint8_t *)v));
        free(v);
    }
    return 0;
}

static int cmp_topic_name(const void *a, const void *b)
{
    return strcmp(((const engine_topic_config *)a)->name, ((const engine_topic_config *)b)->name);
}

static int load_topics(engine_reader *r, const char *store_path, char *errbuf, size_t errlen)
{
    char msg[256] = "";
    int rc = topics__load(&r->e, msg, sizeof msg);
    if (rc != 0) {
        engine__fail(errbuf, errlen, "%s: %s%s", store_path, rc == LSMQ_ECORRUPT ? "corrupt store: " : "",
             msg);
        return rc;
    }
    r->ntopics = HASH_CNT(hh, r->e.topics_by_name);
    r->sorted = calloc(r->ntopics ? r->ntopics : 1, sizeof *r->sorted);
    if (!r->sorted)
        abort();
    size_t i = 0;
    for (topic *t = r->e.topics_by_name; t; t = t->hh.next)
        r->sorted[i++] = t->cfg;
    qsort(r->sorted, r->ntopics, sizeof *r->sorted, cmp_topic_name);
    return 0;
}

int engine_reader_open(const char *store_path, engine_reader **out, char *errbuf, size_t errlen)
{
    *out = NULL;
    if (!store_path || !*store_path) {
        engine__fail(errbuf, errlen, "no store directory given");
        return LSMQ_EINVAL;
    }
    engine_reader *r = calloc(1, sizeof *r);
    if (!r)
        abort();
    pthread_rwlock_init(&r->e.topics_lock, NULL);
    pthread_rwlock_init(&r->e.db_lock, NULL);
    r->e.store_path = strdup(store_path);
    if (!r->e.store_path || asprintf(&r->e.db_path, "%s/db", store_path) < 0)
        abort();
    int rc = check_dirs(store_path, r->e.db_path, errbuf, errlen);
    if (rc == 0)
        rc = make_scratch_dir(r, errbuf, errlen);
    if (rc != 0)
        goto err;

    r->cache = rocksdb_cache_create_lru(READER_CACHE_BYTES);
    rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(t, r->cache);
    r->cf_opts = rocksdb_options_create();
    rocksdb_options_set_block_based_table_factory(r->cf_opts, t);
    rocksdb_block_based_options_destroy(t);
    r->db_opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(r->db_opts, 0);
    /* Keep every table file open: the broker's compactions may delete one
     * while this reader still iterates it. */
    rocksdb_options_set_max_open_files(r->db_opts, -1);
    rocksdb_options_set_info_log_level(r->db_opts, 3 /* ERROR_LEVEL */);
    r->e.ro_default = rocksdb_readoptions_create();

    if ((rc = open_secondary(r, store_path, errbuf, errlen)) != 0 ||
        (rc = load_version(r, store_path, errbuf, errlen)) != 0 ||
        (rc = load_topics(r, store_path, errbuf, errlen)) != 0)
        goto err;
    *out = r;
    return 0;

err:
    engine_reader_close(r);
    return rc;
}

void engine_reader_close(engine_reader *r)
{
    if (!r)
        return;
    topics__free_all(&r->e);
    for (int i = 0; i < ENGINE_CF_COUNT; i++)
        if (r->e.cf[i])
            rocksdb_column_family_handle_destroy(r->e.cf[i]);
    if (r->default_cf)
        rocksdb_column_family_handle_destroy(r->default_cf);
    if (r->e.db)
        rocksdb_close(r->e.db);
    if (r->e.ro_default)
        rocksdb_readoptions_destroy(r->e.ro_default);
    if (r->cf_opts)
        rocksdb_options_destroy(r->cf_opts);
    if (r->db_opts)
        rocksdb_options_destroy(r->db_opts);
    if (r->cache)
        rocksdb_cache_destroy(r->cache);
    if (r->scratch_dir) {
        nftw(r->scratch_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(r->scratch_dir);
    }
    pthread_rwlock_destroy(&r->e.topics_lock);
    pthread_rwlock_destroy(&r->e.db_lock);
    free(r->sorted);
    free(r->e.store_path);
    free(r->e.db_path);
    free(r);
}

uint32_t engine_reader_format_version(const engine_reader *r) { return r->format_version; }

uint64_t engine_reader_next_log_position(const engine_reader *r)
{
    return atomic_load(&r->e.next_log_position);
}

/* ---- Topics and queues ---- */

const engine_topic_config *engine_reader_topics(const engine_reader *r, size_t *n)
{
    *n = r->ntopics;
    return r->sorted;
}

const engine_topic_config *engine_reader_topic(const engine_reader *r, const char *name,
                                               size_t len)
{
    for (size_t i = 0; i < r->ntopics; i++)
        if (strlen(r->sorted[i].name) == len && memcmp(r->sorted[i].name, name, len) == 0)
            return &r->sorted[i];
    return NULL;
}

const engine_topic_config *engine_reader_topic_by_id(const engine_reader *r, uint32_t topic_id)
{
    for (size_t i = 0; i < r->ntopics; i++)
        if (r->sorted[i].topic_id == topic_id)
            return &r->sorted[i];
    return NULL;
}

uint32_t engine_reader_queue_count(const engine_reader *r, uint32_t topic_id)
{
    topic *t = topics__find_id((engine *)&r->e, topic_id);
    return t ? t->nqueues : 0;
}

int engine_reader_queue_info(engine_reader *r, uint32_t topic_id, uint32_t queue_id,
                             engine_reader_queue *out)
{
    topic *t = topics__find_id(&r->e, topic_id);
    if (!t || queue_id >= t->nqueues)
        return LSMQ_ENOTFOUND;
    queue_state *q = &t->queues[queue_id];
    out->max_offset = atomic_load(&q->next_offset);
    out->min_offset = read__min_offset(&r->e, t, queue_id);
    out->last_store_ms = atomic_load(&q->last_store_ms);
    return 0;
}

/* ---- Keys and values ---- */

size_t engine_reader_msg_key(uint8_t out[ENGINE_READER_MSG_KEY_LEN], uint32_t topic_id,
                             uint32_t queue_id, uint64_t queue_offset)
{
    return key_msg(out, topic_id, queue_id, queue_offset);
}

int engine_reader_msg_key_decode(const uint8_t *key, size_t len, uint32_t *topic_id,
                                 uint32_t *queue_id, uint64_t *queue_offset)
{
    if (len != MSG_KEY_LEN)
        return LSMQ_ECORRUPT;
    *topic_id = proto_get_u32(key);
    *queue_id = proto_get_u32(key + 4);
    *queue_offset = proto_get_u64(key + 8);
    return 0;
}

int engine_reader_get(engine_reader *r, engine_cf cf, const void *key, size_t klen, char **val,
                      size_t *vlen)
{
    *val = NULL;
    *vlen = 0;
    if (cf >= ENGINE_CF_COUNT || !r->e.cf[cf])
        return LSMQ_ENOTFOUND;
    char *err = NULL;
    char *v = rocksdb_get_cf(r->e.db, r->e.ro_default, r->e.cf[cf], key, klen, vlen, &err);
    if (err) {
        rocksdb_free(err);
        return LSMQ_EIO;
    }
    if (!v)
        return LSMQ_ENOTFOUND;
    /* RocksDB's copy is malloc'ed (db/c.cc CopyString): free() releases it. */
    *val = v;
    return 0;
}

const char *engine_reader_cf_name(engine_cf cf)
{
    return cf < ENGINE_CF_COUNT ? engine__cf_names[cf] : "?";
}

int engine_reader_cf_property(engine_reader *r, engine_cf cf, const char *name, uint64_t *value)
{
    if (cf >= ENGINE_CF_COUNT || !r->e.cf[cf])
        return LSMQ_ENOTFOUND;
    return rocksdb_property_int_cf(r->e.db, r->e.cf[cf], name, value) == 0 ? 0 : LSMQ_ENOTFOUND;
}

uint64_t engine_reader_approx_size(engine_reader *r, engine_cf cf, const void *lo, size_t lo_len,
                                   const void *hi, size_t hi_len)
{
    if (cf >= ENGINE_CF_COUNT || !r->e.cf[cf])
        return 0;
    const char *start = lo, *limit = hi;
    uint64_t size = 0;
    char *err = NULL;
    rocksdb_approximate_sizes_cf(r->e.db, r->e.cf[cf], 1, &start, &lo_len, &limit, &hi_len, &size,
                                 &err);
    if (err) {
        rocksdb_free(err);
        return 0;
    }
    return size;
}

/* ---- Iteration ---- */

static char *copy_bound(const void *key, size_t len)
{
    char *c = malloc(len ? len : 1);
    if (!c)
        abort();
    memcpy(c, key, len);
    return c;
}

engine_reader_iter *engine_reader_iter_create(engine_reader *r, engine_cf cf, const void *lower,
                                              size_t lower_len, const void *upper,
                                              size_t upper_len, engine_reader_mode mode)
{
    if (cf >= ENGINE_CF_COUNT || !r->e.cf[cf])
        return NULL;
    engine_reader_iter *it = calloc(1, sizeof *it);
    if (!it)
        abort();
    it->ro = rocksdb_readoptions_create();
    if (lower) {
        it->lower = copy_bound(lower, lower_len);
        it->lower_len = lower_len;
        rocksdb_readoptions_set_iterate_lower_bound(it->ro, it->lower, lower_len);
    }
    if (upper) {
        it->upper = copy_bound(upper, upper_len);
        rocksdb_readoptions_set_iterate_upper_bound(it->ro, it->upper, upper_len);
    }
    if (mode == ENGINE_READER_SCAN) {
        rocksdb_readoptions_set_readahead_size(it->ro, SCAN_READAHEAD_BYTES);
        rocksdb_readoptions_set_fill_cache(it->ro, 0);
    }
    it->it = rocksdb_create_iterator_cf(r->e.db, it->ro, r->e.cf[cf]);
    return it;
}

void engine_reader_iter_destroy(engine_reader_iter *it)
{
    if (!it)
        return;
    rocksdb_iter_destroy(it->it); /* before the bounds it points at */
    rocksdb_readoptions_destroy(it->ro);
    free(it->lower);
    free(it->upper);
    free(it);
}

void engine_reader_iter_seek(engine_reader_iter *it, const void *key, size_t klen)
{
    if (key)
        rocksdb_iter_seek(it->it, key, klen);
    else if (it->lower)
        rocksdb_iter_seek(it->it, it->lower, it->lower_len);
    else
        rocksdb_iter_seek_to_first(it->it);
}

void engine_reader_iter_seek_last(engine_reader_iter *it) { rocksdb_iter_seek_to_last(it->it); }

int engine_reader_iter_valid(const engine_reader_iter *it) { return rocksdb_iter_valid(it->it); }

void engine_reader_iter_next(engine_reader_iter *it) { rocksdb_iter_next(it->it); }

const uint8_t *engine_reader_iter_key(const engine_reader_iter *it, size_t *len)
{
    return (const uint8_t *)rocksdb_iter_key(it->it, len);
}

const uint8_t *engine_reader_iter_value(const engine_reader_iter *it, size_t *len)
{
    return (const uint8_t *)rocksdb_iter_value(it->it, len);
}

int engine_reader_iter_error(const engine_reader_iter *it, char *errbuf, size_t errlen)
{
    char *err = NULL;
    rocksdb_iter_get_error(it->it, &err);
    if (!err)
        return 0;
    engine__fail(errbuf, errlen, "%s", one_line(err));
    rocksdb_free(err);
    return LSMQ_EIO;
}
