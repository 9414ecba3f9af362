/*
 * Retention: messages older than fileReservedTime hours go, and while the
 * disk is fuller than diskMaxUsedSpaceRatio the oldest tenth of the stored
 * time span goes each pass. Per queue, store time never decreases with the
 * offset, so the cut is found by binary search over the queue's records and
 * removed as one range (WCTL_REMOVE on the writer), index entries with it.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"

typedef struct queue_ref {
    uint32_t topic_id;
    uint32_t queue_id;
    uint64_t min_offset;
    uint64_t max_offset;
} queue_ref;

static int statvfs_usage(void *ctx, const char *path, double *ratio)
{
    struct statvfs st;
    if (statvfs(path, &st) != 0 || st.f_blocks == 0)
        return LSMQ_EIO;
    *ratio = 1.0 - (double)st.f_bavail / (double)st.f_blocks;
    return 0;
}

/* Store time of the record at offset, or -1 if it cannot be read. */
static int64_t store_ms_at(engine *e, uint32_t topic_id, uint32_t queue_id, uint64_t offset)
{
    uint8_t key[MSG_KEY_LEN];
    engine__key_msg(key, topic_id, queue_id, offset);
    char *err = NULL;
    size_t len = 0;
    char *v = rocksdb_get_cf(e->db, e->ro_default, e->cf[ENGINE_CF_MSG], (const char *)key,
                             sizeof key, &len, &err);
    if (err) {
        rocksdb_free(err);
        return -1;
    }
    int64_t ms = -1;
    proto_record pr;
    if (v && proto_record_decode((const uint8_t *)v, len, &pr) == (long)len)
        ms = pr.store_timestamp;
    rocksdb_free(v);
    return ms;
}

/*
 * Store time of the first readable record at or after offset (below hi); a
 * corrupt record is as old as the next good one, since store time never
 * decreases with the offset. -1 if none is readable.
 */
static int64_t store_ms_from(engine *e, const queue_ref *q, uint64_t offset, uint64_t hi)
{
    for (; offset < hi; offset++) {
        int64_t ms = store_ms_at(e, q->topic_id, q->queue_id, offset);
        if (ms >= 0)
            return ms;
    }
    return -1;
}

/* First offset in [min, max) whose store time is >= cutoff_ms (max if none). */
static uint64_t cut_offset(engine *e, const queue_ref *q, int64_t cutoff_ms)
{
    uint64_t lo = q->min_offset, hi = q->max_offset;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int64_t ms = store_ms_from(e, q, mid, hi);
        if (ms < 0) /* nothing readable from mid on: treat as new, keep it */
            ms = cutoff_ms;
        if (ms < cutoff_ms)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static queue_ref *snapshot_queues(engine *e, size_t *n)
{
    size_t cap = 256, len = 0;
    queue_ref *refs = proto_xmalloc(cap * sizeof *refs);
    engine__pin(e);
    pthread_rwlock_rdlock(&e->topics_lock);
    for (topic *t = e->topics_by_name; t; t = t->hh.next) {
        for (uint32_t qid = 0; qid < t->nqueues; qid++) {
            uint64_t max = atomic_load(&t->queues[qid].next_offset);
            if (max == 0)
                continue;
            uint64_t min = engine__min_offset(e, t, qid);
            if (min >= max)
                continue;
            if (len == cap) {
                cap *= 2;
                refs = proto_xrealloc(refs, cap * sizeof *refs);
            }
            refs[len++] = (queue_ref){t->cfg.topic_id, qid, min, max};
        }
    }
    pthread_rwlock_unlock(&e->topics_lock);
    engine__unpin(e);
    *n = len;
    return refs;
}

#define REMOVE_STEP 65536

static int remove_before(engine *e, const queue_ref *q, int64_t cutoff_ms)
{
    engine__pin(e);
    int64_t first = store_ms_from(e, q, q->min_offset, q->max_offset);
    uint64_t end = first < 0 || first >= cutoff_ms ? q->min_offset : cut_offset(e, q, cutoff_ms);
    engine__unpin(e); /* never wait for the writer while pinned */
    /* In steps: index hooks read the removed messages on the writer thread,
     * and appends wait meanwhile. */
    for (uint64_t at = q->min_offset; at < end;) {
        at = end - at > REMOVE_STEP ? at + REMOVE_STEP : end;
        wctl op = {.kind = WCTL_REMOVE, .topic_id = q->topic_id, .queue_id = q->queue_id,
                   .u64 = at};
        int rc = engine__writer_control(e, &op);
        if (rc != 0)
            return rc == LSMQ_ENOTFOUND ? 0 : rc; /* topic deleted meanwhile */
    }
    return 0;
}

static int remove_all_before(engine *e, const queue_ref *refs, size_t n, int64_t cutoff_ms)
{
    for (size_t i = 0; i < n; i++) {
        int rc = remove_before(e, &refs[i], cutoff_ms);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Oldest first-record store time over all queues, or -1 if the store is empty. */
static int64_t oldest_store_ms(engine *e, const queue_ref *refs, size_t n)
{
    int64_t oldest = -1;
    engine__pin(e);
    for (size_t i = 0; i < n; i++) {
        int64_t ms = store_ms_from(e, &refs[i], refs[i].min_offset, refs[i].max_offset);
        if (ms >= 0 && (oldest < 0 || ms < oldest))
            oldest = ms;
    }
    engine__unpin(e);
    return oldest;
}

int engine_retention_run(engine *e)
{
    if (e->read_only)
        return LSMQ_EINVAL;
    if (e->cfg.replica)
        return LSMQ_EREADONLY; /* its master's removals arrive in its batches */
    int64_t now = engine__now_ms(e);
    size_t n;
    queue_ref *refs = snapshot_queues(e, &n);
    int rc = 0;

    if (e->cfg.file_reserved_hours > 0) {
        int64_t cutoff = now - (int64_t)e->cfg.file_reserved_hours * 3600 * 1000;
        rc = remove_all_before(e, refs, n, cutoff);
    }

    double used = 0;
    engine_disk_usage_fn usage = e->cfg.disk_usage ? e->cfg.disk_usage : statvfs_usage;
    if (rc == 0 && e->cfg.disk_max_used_ratio > 0 &&
        usage(e->cfg.disk_usage_ctx, e->store_path, &used) == 0 &&
        used * 100.0 > (double)e->cfg.disk_max_used_ratio) {
        free(refs);
        refs = snapshot_queues(e, &n);
        int64_t oldest = oldest_store_ms(e, refs, n);
        if (oldest >= 0) {
            int64_t step = (now - oldest) / 10;
            int64_t cutoff = oldest + (step > 1 ? step : 1);
            proto_log(PROTO_LOG_INFO,
                      "engine: disk %.0f%% used (limit %u%%): removing messages stored before %lld",
                      used * 100.0, e->cfg.disk_max_used_ratio, (long long)cutoff);
            rc = remove_all_before(e, refs, n, cutoff);
            if (rc == 0) /* Range deletes free space only once compacted. */
                rocksdb_compact_range_cf(e->db, e->cf[ENGINE_CF_MSG], NULL, 0, NULL, 0);
        }
    }
    free(refs);
    return rc;
}

static void *housekeeper_main(void *arg)
{
    engine *e = arg;
    uint32_t interval = e->cfg.retention_interval_ms ? e->cfg.retention_interval_ms : 10000;
    while (engine__bg_wait(e, interval)) {
        int rc = engine_retention_run(e);
        if (rc != 0 && rc != LSMQ_ECLOSED)
            proto_log(PROTO_LOG_WARN, "engine: retention pass failed: %s", lsmq_strerror(rc));
    }
    return NULL;
}

int engine__retention_start(engine *e)
{
    if (e->cfg.replica)
        return 0;
    if (pthread_create(&e->housekeeper_thread, NULL, housekeeper_main, e) != 0)
        return LSMQ_EIO;
    e->housekeeper_started = true;
    return 0;
}

void engine__retention_stop(engine *e)
{
    if (!e->housekeeper_started)
        return;
    engine__bg_stop(e);
    pthread_join(e->housekeeper_thread, NULL);
    e->housekeeper_started = false;
}
