/*
 * ASYNC_FLUSH's periodic WAL sync, on a thread of its own: appends acked
 * after the write never queue behind an fsync on the writer thread, which
 * would show as a latency spike every flushIntervalCommitLog.
 */
#include "internal.h"
#include "log.h"

static void sync_now(engine *e)
{
    engine__pin(e); /* the writer may reopen the database after an error */
    /* After a failed write this RocksDB must not touch its WAL again. */
    if (atomic_load(&e->write_health) == 0) {
        char *err = NULL;
        rocksdb_flush_wal(e->db, 1, &err);
        if (err) {
            int rc = engine__rocks_err(err);
            atomic_store(&e->write_health, rc);
            proto_log(PROTO_LOG_ERROR,
                      "engine: WAL sync failed, appends get '%s' until it is resolved: %s",
                      lsmq_strerror(rc), err);
            rocksdb_free(err);
        }
    }
    engine__unpin(e);
}

static void *wal_sync_main(void *arg)
{
    engine *e = arg;
    uint32_t interval = e->cfg.flush_interval_ms ? e->cfg.flush_interval_ms : 500;
    while (engine__bg_wait(e, interval))
        if (atomic_exchange(&e->wal_dirty, 0))
            sync_now(e);
    return NULL;
}

int engine__wal_sync_start(engine *e)
{
    if (e->cfg.flush_mode != ENGINE_ASYNC_FLUSH)
        return 0;
    if (pthread_create(&e->wal_sync_thread, NULL, wal_sync_main, e) != 0)
        return LSMQ_EIO;
    e->wal_sync_started = true;
    return 0;
}

void engine__wal_sync_stop(engine *e)
{
    if (!e->wal_sync_started)
        return;
    engine__bg_stop(e);
    pthread_join(e->wal_sync_thread, NULL);
    e->wal_sync_started = false;
}
