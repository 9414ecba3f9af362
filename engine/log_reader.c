/*
 * The replicated log read back: every batch committed after a sequence, in
 * order, from RocksDB's WAL (rocksdb_get_updates_since), which the store
 * keeps for wal_ttl_seconds / wal_size_limit_mb after its memtables are
 * flushed (archive/).
 *
 * A WAL iterator lists the WAL files when it is made and reads on through
 * them; at the tail it stops (valid no longer) with an ok status, and
 * moving it again reads what was committed since. When the WAL rolled to a
 * file it never listed, or RocksDB finds a hole, its status turns to an
 * error and a new iterator, made at the next sequence wanted, takes over.
 * A new iterator reads its first WAL file from the start up to that
 * sequence, so the reader keeps the one it has whenever it can: it moves
 * it only once the latest sequence says a batch is there to read.
 *
 * RocksDB starts a new iterator at the first batch it still has at or
 * after the sequence asked for, without a word when the files holding that
 * sequence are gone: every batch's first sequence is checked against the
 * one expected, and a jump is LSMQ_ENOTFOUND (the replica needs a
 * checkpoint).
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"

struct engine_log_reader {
    engine *e;
    rocksdb_wal_iterator_t *it;
    uint64_t generation;         /* of the database `it` reads (engine__reopen) */
    uint64_t next_seq;           /* the first sequence of the batch due next */
    rocksdb_writebatch_t *batch; /* the batch read last; its bytes back engine_log_batch */
    uint64_t batch_seq;
    bool held;                   /* read by engine_log_open, not handed out yet */
    int failed;                  /* an error already returned: the reader is spent */
};

uint64_t engine_last_sequence(engine *e)
{
    engine__pin(e);
    uint64_t seq = e->db ? rocksdb_get_latest_sequence_number(e->db) : 0;
    engine__unpin(e);
    return seq;
}

static void drop_iterator(engine_log_reader *r)
{
    if (r->it)
        rocksdb_wal_iter_destroy(r->it);
    r->it = NULL;
}

/* An iterator's error: an I/O error is one; anything else (a hole, a WAL file
 * gone, a record that does not read) means the log cannot serve this
 * position, which a checkpoint mends. Frees err. */
static int wal_error(char *err)
{
    int rc = strstr(err, "IO error") ? LSMQ_EIO : LSMQ_ENOTFOUND;
    proto_log(rc == LSMQ_EIO ? PROTO_LOG_ERROR : PROTO_LOG_WARN,
              "engine: reading the log: %s", engine__one_line(err));
    rocksdb_free(err);
    return rc;
}

/* Take the batch under the iterator. */
static int take(engine_log_reader *r)
{
    r->batch = rocksdb_wal_iter_get_batch(r->it, &r->batch_seq);
    return 1;
}

/* A new iterator at next_seq, on its first batch. 0 when nothing is committed there yet. */
static int start(engine_log_reader *r)
{
    engine *e = r->e;
    if (rocksdb_get_latest_sequence_number(e->db) < r->next_seq)
        return 0;
    char *err = NULL;
    r->it = rocksdb_get_updates_since(e->db, r->next_seq, NULL, &err);
    r->generation = atomic_load(&e->db_generation);
    if (err) {
        drop_iterator(r);
        return wal_error(err);
    }
    if (rocksdb_wal_iter_valid(r->it))
        return take(r);
    rocksdb_wal_iter_status(r->it, &err);
    drop_iterator(r);
    /* Committed, yet no WAL file holds it: flushed and no longer kept. */
    return err ? wal_error(err) : LSMQ_ENOTFOUND;
}

/* Read the next batch into r->batch: 1, 0 (nothing new yet) or an error. Pinned. */
static int read_batch(engine_log_reader *r)
{
    if (!r->e->db)
        return LSMQ_EIO; /* a reopen after a write error failed */
    if (r->it && r->generation != atomic_load(&r->e->db_generation))
        drop_iterator(r); /* made on the database before the reopen */
    if (!r->it)
        return start(r);
    /* Move the iterator only when there is something to read: at the tail it
     * compares the latest sequence twice, and a commit landing in between
     * spends it (TryAgain), when a new one would read its whole WAL file
     * again from the start to find its place: tens of ms on a large file. */
    if (rocksdb_get_latest_sequence_number(r->e->db) < r->next_seq)
        return 0;
    rocksdb_wal_iter_next(r->it);
    if (rocksdb_wal_iter_valid(r->it))
        return take(r);
    char *err = NULL;
    rocksdb_wal_iter_status(r->it, &err);
    if (!err)
        return 0; /* at the tail */
    /* The WAL moved to a file this iterator never listed, or it found a hole:
     * a new one tells which. */
    rocksdb_free(err);
    drop_iterator(r);
    return start(r);
}

/* Check the batch read against the sequence expected, and move on past it. */
static int accept(engine_log_reader *r)
{
    uint64_t count = (uint64_t)rocksdb_writebatch_count(r->batch);
    if (r->batch_seq == r->next_seq) {
        r->next_seq += count;
        return 1;
    }
    if (r->batch_seq < r->next_seq && r->batch_seq + count > r->next_seq) {
        proto_log(PROTO_LOG_WARN, "engine: reading the log: sequence %llu is inside the batch "
                  "at %llu, not after one", (unsigned long long)r->next_seq - 1,
                  (unsigned long long)r->batch_seq);
        return LSMQ_EINVAL;
    }
    proto_log(PROTO_LOG_WARN, "engine: reading the log: the batch after sequence %llu is no "
              "longer kept (the oldest kept starts at %llu)",
              (unsigned long long)r->next_seq - 1, (unsigned long long)r->batch_seq);
    return LSMQ_ENOTFOUND;
}

/* Read and check the next non-empty batch. */
static int advance(engine_log_reader *r)
{
    for (;;) {
        if (r->batch)
            rocksdb_writebatch_destroy(r->batch);
        r->batch = NULL;
        engine__pin(r->e);
        int rc = read_batch(r);
        engine__unpin(r->e);
        if (rc == 1)
            rc = accept(r);
        if (rc != 1 || rocksdb_writebatch_count(r->batch) > 0)
            return rc;
    }
}

int engine_log_open(engine *e, uint64_t after_seq, engine_log_reader **out)
{
    *out = NULL;
    if (e->read_only || after_seq == UINT64_MAX)
        return LSMQ_EINVAL;
    if (after_seq > engine_last_sequence(e))
        return LSMQ_ENOTFOUND; /* ahead of this store: another history */
    engine_log_reader *r = proto_xcalloc(1, sizeof *r);
    r->e = e;
    r->next_seq = after_seq + 1;
    /* Read the first batch now, so a log that no longer reaches after_seq
     * says so here. */
    int rc = advance(r);
    if (rc < 0) {
        engine_log_close(r);
        return rc;
    }
    r->held = rc == 1;
    *out = r;
    return 0;
}

int engine_log_next(engine_log_reader *r, engine_log_batch *b)
{
    if (r->failed)
        return r->failed;
    int rc = 1;
    if (r->held)
        r->held = false;
    else
        rc = advance(r);
    if (rc < 0)
        r->failed = rc;
    if (rc != 1)
        return rc;
    size_t len = 0;
    const char *data = rocksdb_writebatch_data(r->batch, &len);
    b->seq = r->batch_seq;
    b->count = (uint32_t)rocksdb_writebatch_count(r->batch);
    b->data = (const uint8_t *)data;
    b->len = len;
    return 1;
}

void engine_log_close(engine_log_reader *r)
{
    if (!r)
        return;
    drop_iterator(r);
    if (r->batch)
        rocksdb_writebatch_destroy(r->batch);
    free(r);
}

void engine_log_watch(engine *e, bool on)
{
    atomic_store_explicit(&e->log_watched, on, memory_order_relaxed);
}
