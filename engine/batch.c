/*
 * engine_batch: a RocksDB WriteBatch behind the engine's own type. Hooks
 * add to the writer's batch of the group; an extension's on_open builds
 * and writes its own (the writer has not started then).
 */
#include <stdlib.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"

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

engine_batch *engine_batch_create(engine *e)
{
    engine_batch *b = proto_xmalloc(sizeof *b);
    b->e = e;
    b->wb = rocksdb_writebatch_create();
    return b;
}

size_t engine_batch_count(const engine_batch *b)
{
    return (size_t)rocksdb_writebatch_count(b->wb);
}

int engine_batch_write(engine_batch *b, bool sync)
{
    engine *e = b->e;
    /* Once the writer runs it must be the only one to write: on_commit's
     * sequences and the published offsets rely on it. */
    if (e->read_only || e->w)
        return LSMQ_EINVAL;
    if (e->cfg.replica)
        return LSMQ_EREADONLY; /* a replica's store changes only by its master's batches */
    char *err = NULL;
    rocksdb_write(e->db, sync ? e->wo_sync : e->wo_async, b->wb, &err);
    rocksdb_writebatch_clear(b->wb);
    if (err) {
        int rc = engine__rocks_err(err);
        proto_log(PROTO_LOG_ERROR, "engine: writing a batch failed: %s", err);
        rocksdb_free(err);
        return rc;
    }
    return 0;
}

void engine_batch_destroy(engine_batch *b)
{
    if (!b)
        return;
    rocksdb_writebatch_destroy(b->wb);
    free(b);
}
