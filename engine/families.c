/*
 * The column families of a store: the engine's own (msg, topic, group,
 * offset, meta, timer) at fixed numbers, then each extension's declared families
 * in declaration order, then the families found on disk that nobody
 * declared, which open with default options and are left alone. The
 * options come from engine_family_options, the engine's own description,
 * so no RocksDB type reaches an extension.
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"

const char *const engine__own_cf_names[ENGINE_CF_COUNT] = {
    [ENGINE_CF_MSG] = "msg",       [ENGINE_CF_TOPIC] = "topic",
    [ENGINE_CF_GROUP] = "group",   [ENGINE_CF_OFFSET] = "offset",
    [ENGINE_CF_META] = "meta",     [ENGINE_CF_TIMER] = "timer",
};

/* The engine's own families; msg gets more below (msg_options). */
static const engine_family_options own_options[ENGINE_CF_COUNT] = {
    /* Queue-prefix blooms make a pull on an empty or missing queue cheap. */
    [ENGINE_CF_MSG] = {.write_buffer_bytes = 64u << 20, .fixed_prefix_len = 8,
                       .bloom_bits_per_key = 10, .prefix_bloom_only = 1},
    /* Point lookups: whole-key blooms. */
    [ENGINE_CF_OFFSET] = {.write_buffer_bytes = 32u << 20, .bloom_bits_per_key = 10},
};

/* Defaults chosen by bench/run.sh tuning (see bench/RESULTS.md). */
#define DEFAULT_BLOB_FILES 0
#define DEFAULT_UNIVERSAL 0
#define DEFAULT_WRITE_BUFFER_BYTES (4u << 20)
#define HASH_MEMTABLE_BUCKETS (1u << 20)

/* ---- Computed prefixes through RocksDB's slice transform ---- */

static char *prefix_transform(void *state, const char *key, size_t len, size_t *dst_len)
{
    const engine_prefix_extractor *x = state;
    size_t n = x->prefix_len((const uint8_t *)key, len);
    *dst_len = n ? n : len;
    return (char *)key;
}

static unsigned char prefix_in_domain(void *state, const char *key, size_t len)
{
    const engine_prefix_extractor *x = state;
    return x->prefix_len((const uint8_t *)key, len) != 0;
}

static unsigned char prefix_in_range(void *state, const char *key, size_t len) { return 0; }

static const char *prefix_name(void *state)
{
    return ((const engine_prefix_extractor *)state)->name;
}

static void prefix_destroy(void *state) {}

static rocksdb_slicetransform_t *prefix_create(const engine_prefix_extractor *x)
{
    return rocksdb_slicetransform_create((void *)x, prefix_destroy, prefix_transform,
                                         prefix_in_domain, prefix_in_range, prefix_name);
}

/* ---- Options ---- */

/* Bodies are written once and read a few times: big memtables, and optionally
 * key-value separation or universal compaction so compaction rewrites bodies less. */
static void msg_options(engine *e, rocksdb_options_t *o, rocksdb_block_based_table_options_t *t)
{
    rocksdb_options_set_max_write_buffer_number(o, 4);
    rocksdb_options_set_target_file_size_base(o, 64u << 20);
    rocksdb_options_set_max_bytes_for_level_base(o, 256u << 20);
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
}

/* Options of a family of the live store (the defaults for fo == NULL). */
static rocksdb_options_t *family_options(engine *e, engine_cf cf, const engine_family_options *fo)
{
    static const engine_family_options defaults;
    if (!fo)
        fo = &defaults;
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(t, e->block_cache);
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(t, 1);
    rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(t, 1);
    rocksdb_options_set_compression(o, rocksdb_snappy_compression);
    rocksdb_options_set_level_compaction_dynamic_level_bytes(o, 1);
    rocksdb_options_set_write_buffer_size(o, fo->write_buffer_bytes ? fo->write_buffer_bytes
                                                                    : DEFAULT_WRITE_BUFFER_BYTES);
    /* The slice transforms and the filter policy are owned by what they are set on. */
    if (fo->prefix)
        rocksdb_options_set_prefix_extractor(o, prefix_create(fo->prefix));
    else if (fo->fixed_prefix_len)
        rocksdb_options_set_prefix_extractor(
            o, rocksdb_slicetransform_create_fixed_prefix(fo->fixed_prefix_len));
    if (fo->hash_memtable)
        rocksdb_options_set_hash_skip_list_rep(o, HASH_MEMTABLE_BUCKETS, 4, 4);
    if (fo->bloom_bits_per_key > 0) {
        rocksdb_block_based_options_set_filter_policy(
            t, rocksdb_filterpolicy_create_bloom_full(fo->bloom_bits_per_key));
        if (fo->prefix_bloom_only)
            rocksdb_block_based_options_set_whole_key_filtering(t, 0);
    }
    if (fo->universal_compaction)
        rocksdb_options_set_compaction_style(o, rocksdb_universal_compaction);
    if (cf == ENGINE_CF_MSG)
        msg_options(e, o, t);
    rocksdb_options_set_block_based_table_factory(o, t);
    rocksdb_block_based_options_destroy(t);
    return o;
}

/* ---- The table ---- */

int engine__family_index(const engine *e, const char *name)
{
    for (size_t i = 0; i < e->nfamilies; i++)
        if (e->cf_names[i] && strcmp(e->cf_names[i], name) == 0)
            return (int)i;
    return -1;
}

int engine__family_add(engine *e, const char *name, rocksdb_options_t *opts)
{
    if (e->nfamilies >= ENGINE_MAX_FAMILIES) {
        if (opts)
            rocksdb_options_destroy(opts);
        return -1;
    }
    e->cf_names[e->nfamilies] = proto_xstrdup(name);
    e->cf_opts[e->nfamilies] = opts;
    return (int)e->nfamilies++;
}

/* Families the database under e->db_path has; none for a new store. */
static char **list_on_disk(engine *e, size_t *n)
{
    char *err = NULL;
    *n = 0;
    char **names = rocksdb_list_column_families(e->db_opts, e->db_path, n, &err);
    if (err) {
        /* No database yet (or one RocksDB cannot read: opening says why). */
        rocksdb_free(err);
        if (names)
            rocksdb_list_column_families_destroy(names, *n);
        *n = 0;
        return NULL;
    }
    return names;
}

int engine__families_plan(engine *e, char *errbuf, size_t errlen)
{
    for (int i = 0; i < ENGINE_CF_COUNT; i++)
        engine__family_add(e, engine__own_cf_names[i],
                           family_options(e, (engine_cf)i, &own_options[i]));
    for (int x = 0; x < e->nexts; x++) {
        extension *ext = &e->exts[x];
        for (size_t i = 0; i < ext->decl.n_families; i++) {
            const engine_family_decl *d = &ext->decl.families[i];
            if (!d->name || !*d->name || strcmp(d->name, "default") == 0 ||
                engine__family_index(e, d->name) >= 0) {
                engine__fail(errbuf, errlen, "extension %s: column family '%s' is taken",
                             ext->decl.name, d->name ? d->name : "");
                return LSMQ_EINVAL;
            }
            int cf = engine__family_add(e, d->name, family_options(
                                                        e, (engine_cf)e->nfamilies, &d->options));
            if (cf < 0) {
                engine__fail(errbuf, errlen, "more than %d column families", ENGINE_MAX_FAMILIES);
                return LSMQ_ETOOBIG;
            }
            ext->families[i] = (engine_cf)cf;
        }
    }
    size_t n;
    char **found = list_on_disk(e, &n);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (strcmp(found[i], "default") == 0 || engine__family_index(e, found[i]) >= 0)
            continue;
        if (engine__family_add(e, found[i], family_options(e, (engine_cf)e->nfamilies,
                                                                   NULL)) < 0) {
            engine__fail(errbuf, errlen, "the store has more than %d column families",
                         ENGINE_MAX_FAMILIES);
            rc = LSMQ_ETOOBIG;
        }
    }
    if (found)
        rocksdb_list_column_families_destroy(found, n);
    return rc;
}

void engine__families_note_ids(engine *e)
{
    for (size_t i = 0; i < e->nfamilies; i++)
        e->cf_ids[i] = e->cf[i] ? rocksdb_column_family_handle_get_id(e->cf[i]) : UINT32_MAX;
}

int engine__family_by_id(const engine *e, uint32_t id)
{
    for (size_t i = 0; i < e->nfamilies; i++)
        if (e->cf[i] && e->cf_ids[i] == id)
            return (int)i;
    return -1;
}

void engine__families_close_handles(engine *e)
{
    for (size_t i = 0; i < e->nfamilies; i++) {
        if (e->cf[i])
            rocksdb_column_family_handle_destroy(e->cf[i]);
        e->cf[i] = NULL;
    }
    if (e->default_cf)
        rocksdb_column_family_handle_destroy(e->default_cf);
    e->default_cf = NULL;
}

void engine__families_free(engine *e)
{
    engine__families_close_handles(e);
    for (size_t i = 0; i < e->nfamilies; i++) {
        if (e->cf_opts[i])
            rocksdb_options_destroy(e->cf_opts[i]);
        free(e->cf_names[i]);
        e->cf_opts[i] = NULL;
        e->cf_names[i] = NULL;
    }
    e->nfamilies = 0;
}

const char *const *engine_families(const engine *e, size_t *n)
{
    *n = e->nfamilies;
    return (const char *const *)e->cf_names;
}
