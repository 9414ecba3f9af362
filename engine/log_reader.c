/*
 * The replicated log read back: the batches committed after a sequence,
 * in order, from RocksDB's WAL (rocksdb_get_updates_since).
 */
#include "internal.h"

uint64_t engine_last_sequence(engine *e) { return rocksdb_get_latest_sequence_number(e->db); }

int engine_log_open(engine *e, uint64_t after_seq, engine_log_reader **out)
{
    (void)e;
    (void)after_seq;
    *out = NULL;
    return LSMQ_EINVAL;
}

int engine_log_next(engine_log_reader *r, engine_log_batch *b)
{
    (void)r;
    (void)b;
    return LSMQ_EINVAL;
}

void engine_log_close(engine_log_reader *r) { (void)r; }
