/*
 * A checkpoint of the live store (rocksdb_checkpoint_create): hard links to
 * its table files plus its manifest, the files a new replica's db/ is made
 * of. Its sequence must be exact, since the replica continues the master's
 * log right after it: the checkpoint is taken on the writer thread, between
 * two writes, so it holds every batch up to the latest sequence and none
 * after. The memtables are flushed first, outside the writer, so the flush
 * the checkpoint itself makes (and the writer's pause) covers only what
 * came in meanwhile.
 */
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "log.h"

/* Flush every family's memtable and wait; off the writer thread, pinned. */
static int flush_all(engine *e)
{
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(fo, 1);
    char *err = NULL;
    engine__pin(e);
    for (size_t i = 0; i < e->nfamilies && !err; i++)
        if (e->cf[i])
            rocksdb_flush_cf(e->db, fo, e->cf[i], &err);
    engine__unpin(e);
    rocksdb_flushoptions_destroy(fo);
    if (!err)
        return 0;
    int rc = engine__rocks_err(err);
    proto_log(PROTO_LOG_ERROR, "engine: flushing for a checkpoint failed: %s", err);
    rocksdb_free(err);
    return rc;
}

int engine_checkpoint(engine *e, const char *dir, uint64_t *seq)
{
    *seq = 0;
    if (e->read_only || !dir || !*dir)
        return LSMQ_EINVAL;
    struct stat st;
    if (stat(dir, &st) == 0)
        return LSMQ_EEXISTS;
    int rc = flush_all(e);
    if (rc != 0)
        return rc;
    wctl op = {.kind = WCTL_CHECKPOINT, .name = dir, .name_len = strlen(dir), .u64_out = seq};
    return engine__writer_control(e, &op);
}

int engine__checkpoint_now(engine *e, const char *dir, uint64_t *seq)
{
    char *err = NULL;
    rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create(e->db, &err);
    if (!err)
        rocksdb_checkpoint_create(cp, dir, 0 /* flush the memtables first */, &err);
    if (cp)
        rocksdb_checkpoint_object_destroy(cp);
    if (err) {
        int rc = engine__rocks_err(err);
        proto_log(PROTO_LOG_ERROR, "engine: checkpoint into %s failed: %s", dir, err);
        rocksdb_free(err);
        return rc;
    }
    /* A replica's log position is its master's, which its own sequences are not. */
    *seq = e->cfg.replica ? e->w_applied_seq : rocksdb_get_latest_sequence_number(e->db);
    proto_log(PROTO_LOG_INFO, "engine: checkpoint of sequence %llu in %s",
              (unsigned long long)*seq, dir);
    return 0;
}
