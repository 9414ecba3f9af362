/*
 * Epochs: where a store stands in its broker group's history of masters.
 *
 * Each master numbers its log with its own RocksDB sequences, so after a
 * failover a sequence means nothing without the epoch of the master whose
 * log it counts. A store's position is therefore (epoch, seq):
 *   - a replica's: the epoch it follows (meta "R", its own, never
 *     shipped) and the master sequence it applied (meta "A");
 *   - a store last run as a master: its epoch (the newest entry of its
 *     history, meta "E") and its own last sequence.
 * A store is "last a master" when its newest history entry is newer than
 * the epoch it followed as a replica: a promotion writes a newer entry,
 * and a rebase or a checkpoint sets "R" to the master's epoch, whose
 * entry it then holds too.
 *
 * The history is an ordinary meta value written through the writer, so it
 * travels in checkpoints and matches between a master and its replicas.
 */
#include <string.h>

#include "internal.h"

#define ENTRY_BYTES 32

/* ---- Reading (any thread) ---- */

/* A meta value by key: 1 and a malloc'ed copy (rocksdb_free), 0 when absent, or an error. */
static int get_meta(engine *e, const char *key, char **v, size_t *vlen)
{
    char *err = NULL;
    *v = rocksdb_get_cf(e->db, e->ro_default, e->cf[ENGINE_CF_META], key, 1, vlen, &err);
    if (err) {
        rocksdb_free(err);
        return LSMQ_EIO;
    }
    return *v ? 1 : 0;
}

int engine_epoch_history(engine *e, engine_epoch_entry *out, size_t *n)
{
    char *v;
    size_t vlen;
    *n = 0;
    int rc = get_meta(e, META_EPOCHS_KEY, &v, &vlen);
    if (rc <= 0)
        return rc;
    if (vlen % ENTRY_BYTES != 0 || vlen / ENTRY_BYTES > ENGINE_EPOCHS_KEPT) {
        rocksdb_free(v);
        return LSMQ_ECORRUPT;
    }
    const uint8_t *p = (const uint8_t *)v;
    for (size_t i = 0; i < vlen / ENTRY_BYTES; i++, p += ENTRY_BYTES)
        out[i] = (engine_epoch_entry){.epoch = proto_get_u64(p),
                                      .start_seq = proto_get_u64(p + 8),
                                      .prev_epoch = proto_get_u64(p + 16),
                                      .prev_end_seq = proto_get_u64(p + 24)};
    *n = vlen / ENTRY_BYTES;
    rocksdb_free(v);
    return 0;
}

/* The epoch this store followed as a replica (0: none recorded). */
static int followed_epoch(engine *e, uint64_t *epoch)
{
    char *v;
    size_t vlen;
    *epoch = 0;
    int rc = get_meta(e, META_FOLLOWED_KEY, &v, &vlen);
    if (rc <= 0)
        return rc;
    if (vlen == 8)
        *epoch = proto_get_u64((const uint8_t *)v);
    rocksdb_free(v);
    return vlen == 8 ? 0 : LSMQ_ECORRUPT;
}

int engine_position(engine *e, uint64_t *epoch, uint64_t *seq)
{
    engine_epoch_entry h[ENGINE_EPOCHS_KEPT];
    size_t n;
    uint64_t followed;
    int rc = engine_epoch_history(e, h, &n);
    if (rc == 0)
        rc = followed_epoch(e, &followed);
    if (rc != 0)
        return rc;
    uint64_t applied = engine_applied_sequence(e);
    if (n > 0 && (h[n - 1].epoch > followed || applied == 0)) {
        *epoch = h[n - 1].epoch;
        *seq = engine_last_sequence(e);
        return 0;
    }
    if (applied == 0)
        return LSMQ_ENOTFOUND;
    *epoch = followed;
    *seq = applied;
    return 0;
}

/* ---- Writing (writer thread) ---- */

static void put_u64_meta(engine *e, rocksdb_writebatch_t *wb, const char *key, uint64_t v)
{
    uint8_t b[8];
    proto_put_u64(b, v);
    rocksdb_writebatch_put_cf(wb, e->cf[ENGINE_CF_META], key, 1, (const char *)b, sizeof b);
}

/* The newest ENGINE_EPOCHS_KEPT entries of h into wb. */
static void put_history(engine *e, rocksdb_writebatch_t *wb, const engine_epoch_entry *h,
                        size_t n)
{
    uint8_t buf[ENGINE_EPOCHS_KEPT * ENTRY_BYTES];
    size_t from = n > ENGINE_EPOCHS_KEPT ? n - ENGINE_EPOCHS_KEPT : 0;
    uint8_t *p = buf;
    for (size_t i = from; i < n; i++, p += ENTRY_BYTES) {
        proto_put_u64(p, h[i].epoch);
        proto_put_u64(p + 8, h[i].start_seq);
        proto_put_u64(p + 16, h[i].prev_epoch);
        proto_put_u64(p + 24, h[i].prev_end_seq);
    }
    rocksdb_writebatch_put_cf(wb, e->cf[ENGINE_CF_META], META_EPOCHS_KEY, 1, (const char *)buf,
                              (size_t)(p - buf));
}

int engine__epoch_begin_now(engine *e, uint64_t epoch, engine_epoch_entry *entry)
{
    engine_epoch_entry h[ENGINE_EPOCHS_KEPT + 1];
    size_t n;
    uint64_t pos_epoch = 0, pos_seq = engine_last_sequence(e);
    int rc = engine_epoch_history(e, h, &n);
    if (rc != 0)
        return rc;
    rc = engine_position(e, &pos_epoch, &pos_seq);
    if (rc == LSMQ_ENOTFOUND) /* a store that never knew epochs: epoch 0 up to here */
        rc = 0;
    if (rc != 0)
        return rc;
    if (epoch <= pos_epoch)
        return LSMQ_EINVAL;
    /* One operation: the record's own sequence is the epoch's first. */
    h[n] = (engine_epoch_entry){.epoch = epoch, .start_seq = engine_last_sequence(e) + 1,
                                .prev_epoch = pos_epoch, .prev_end_seq = pos_seq};
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    put_history(e, wb, h, n + 1);
    rc = engine__writer_write(e, wb, 1);
    rocksdb_writebatch_destroy(wb);
    if (rc == 0 && entry)
        *entry = h[n];
    return rc;
}

int engine__epoch_position_now(engine *e, uint64_t epoch, uint64_t seq,
                               const engine_epoch_entry *h, size_t n)
{
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    put_u64_meta(e, wb, META_FOLLOWED_KEY, epoch);
    if (n > 0)
        put_history(e, wb, h, n);
    return engine__replica_record(e, wb, seq);
}

/* ---- The public calls (any thread but the writer's) ---- */

int engine_epoch_begin(engine *e, uint64_t epoch, engine_epoch_entry *entry)
{
    if (e->cfg.replica || e->read_only)
        return LSMQ_EINVAL;
    wctl op = {.kind = WCTL_EPOCH_BEGIN, .u64 = epoch, .epoch_out = entry};
    return engine__writer_control(e, &op);
}

int engine_set_position(engine *e, uint64_t epoch, uint64_t seq,
                        const engine_epoch_entry *history, size_t n)
{
    if (!e->cfg.replica || e->read_only || n > ENGINE_EPOCHS_KEPT || (n > 0 && !history))
        return LSMQ_EINVAL;
    wctl op = {.kind = WCTL_SET_POSITION, .u64 = seq, .epoch = epoch, .history = history,
               .history_len = n};
    return engine__writer_control(e, &op);
}
