/*
 * Edits of a closed store behind the engine's back, for tests that damage
 * a store on purpose (engine_ext.h). The database opens with every family
 * it has, plain options, and takes one synced write.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"

typedef struct edit {
    const char *family;
    const void *key, *end; /* end == NULL: a put of val */
    size_t klen, elen;
    const void *val;
    size_t vlen;
} edit;

static int apply(const char *store_path, const edit *ed, char *errbuf, size_t errlen)
{
    char *db_path = proto_xasprintf("%s/db", store_path);
    rocksdb_options_t *opts = rocksdb_options_create();
    rocksdb_options_set_info_log_level(opts, 4 /* FATAL_LEVEL */);
    char *err = NULL;
    size_t n = 0;
    int rc = 0;
    char **names = rocksdb_list_column_families(opts, db_path, &n, &err);
    rocksdb_t *db = NULL;
    rocksdb_column_family_handle_t **handles = NULL;
    if (!err) {
        const rocksdb_options_t **cf_opts = proto_xcalloc(n, sizeof *cf_opts);
        handles = proto_xcalloc(n, sizeof *handles);
        for (size_t i = 0; i < n; i++)
            cf_opts[i] = opts;
        db = rocksdb_open_column_families(opts, db_path, (int)n, (const char *const *)names,
                                          cf_opts, handles, &err);
        free(cf_opts);
    }
    if (err) {
        rc = engine__rocks_err(err);
        engine__fail(errbuf, errlen, "%s: %s", db_path, engine__one_line(err));
        rocksdb_free(err);
        err = NULL;
        db = NULL;
    }
    size_t at = n;
    for (size_t i = 0; db && i < n; i++)
        if (strcmp(names[i], ed->family) == 0)
            at = i;
    if (db && at == n) {
        engine__fail(errbuf, errlen, "%s has no column family '%s'", db_path, ed->family);
        rc = LSMQ_ENOTFOUND;
    } else if (db) {
        rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
        rocksdb_writeoptions_set_sync(wo, 1);
        if (ed->end)
            rocksdb_delete_range_cf(db, wo, handles[at], ed->key, ed->klen, ed->end, ed->elen,
                                    &err);
        else
            rocksdb_put_cf(db, wo, handles[at], ed->key, ed->klen, ed->val, ed->vlen, &err);
        rocksdb_writeoptions_destroy(wo);
        if (err) {
            rc = engine__rocks_err(err);
            engine__fail(errbuf, errlen, "writing %s: %s", ed->family, engine__one_line(err));
            rocksdb_free(err);
        }
    }
    if (db) {
        for (size_t i = 0; i < n; i++)
            rocksdb_column_family_handle_destroy(handles[i]);
        rocksdb_close(db);
    }
    free(handles);
    if (names)
        rocksdb_list_column_families_destroy(names, n);
    rocksdb_options_destroy(opts);
    free(db_path);
    return rc;
}

int engine_store_put(const char *store_path, const char *family, const void *key, size_t klen,
                     const void *val, size_t vlen, char *errbuf, size_t errlen)
{
    edit ed = {.family = family, .key = key, .klen = klen, .val = val, .vlen = vlen};
    return apply(store_path, &ed, errbuf, errlen);
}

int engine_store_delete_range(const char *store_path, const char *family, const void *begin,
                              size_t blen, const void *end, size_t elen, char *errbuf,
                              size_t errlen)
{
    edit ed = {.family = family, .key = begin, .klen = blen, .end = end, .elen = elen};
    return apply(store_path, &ed, errbuf, errlen);
}
