/*
 * Making a replica's store from a checkpoint of its master, before the
 * broker opens it. Blocking, on the caller's thread, over one connection
 * (transport_sync): CHECKPOINT_BEGIN, then every file chunk by chunk,
 * each chunk checked against the CRC-32 the master sent with it, each
 * file against its listed size and, read back from disk once synced,
 * against the CRC of its chunks combined. A bad chunk or file is fetched
 * again.
 *
 * Installing it never leaves a store a replica would follow wrongly:
 *   <store>/ha/incoming/db   the files arrive here; then the engine opens
 *                            this copy and records the checkpoint's
 *                            sequence as its applied sequence;
 *   <store>/db -> <store>/ha/old-db, incoming/db -> <store>/db, then
 *                            old-db is removed.
 * A crash before the second rename leaves the old store or no db/ (the
 * next call fetches again); leftovers under ha/ are removed on every call.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "repl_internal.h"
#include "transport.h"

#define BEGIN_TIMEOUT_MS 120000 /* the master flushes its memtables first */
#define READ_TIMEOUT_MS 30000
#define ATTEMPTS 3               /* per chunk, and per file */
#define PROGRESS_EVERY_MS 2000

/* Where a fetch stands, for the progress lines. */
typedef struct fetch {
    const repl_replica_config *cfg;
    transport_sync *s;
    uint64_t id;
    uint64_t seq;
    uint64_t epoch;             /* the master's, which the store then follows */
    const char *dir;            /* incoming/db */
    uint64_t total_bytes;
    uint64_t done_bytes;
    int64_t start_ms;
    int64_t last_report_ms;
    char *why;                  /* the caller's errbuf */
    size_t why_len;
} fetch;

static bool exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0;
}

static int make_dir(const char *path)
{
    return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -errno;
}

/* ------------------------------------------------------------------ */
/* Stores                                                               */

/* Open the store under store_path as a replica (no broker has it open). */
static int open_store(const char *store_path, engine **e, char *errbuf, size_t errlen)
{
    engine_config ec;

    engine_config_init(&ec);
    ec.store_path = store_path;
    ec.replica = true;
    return engine_open(&ec, e, errbuf, errlen);
}

/*
 * The position of the store under store_path (engine_position): *seq 0
 * when it has none. A store with one (a replica's, or a former master's)
 * is kept: the master's answer to HELLO decides whether it continues.
 */
static int read_position(const char *store_path, uint64_t *epoch, uint64_t *seq, char *errbuf,
                         size_t errlen)
{
    engine *e;
    int rc = open_store(store_path, &e, errbuf, errlen);

    if (rc != 0)
        return rc;
    rc = engine_position(e, epoch, seq);
    if (rc == LSMQ_ENOTFOUND) {
        *epoch = *seq = 0;
        rc = 0;
    } else if (rc != 0) {
        snprintf(errbuf, errlen, "cannot read the position of %s: %s", store_path,
                 lsmq_strerror(rc));
    }
    engine_close(e);
    return rc;
}

/* Record the checkpoint's position in the copy under incoming/ before it becomes db/. */
static int record_position(const char *incoming, uint64_t epoch, uint64_t seq, char *errbuf,
                           size_t errlen)
{
    engine *e;
    int rc = open_store(incoming, &e, errbuf, errlen);

    if (rc != 0)
        return rc;
    rc = engine_set_position(e, epoch, seq, NULL, 0);
    if (rc != 0)
        snprintf(errbuf, errlen, "cannot record the applied sequence in %s: %s", incoming,
                 lsmq_strerror(rc));
    engine_close(e);
    return rc;
}

/* ------------------------------------------------------------------ */
/* The transfer                                                         */

static int call(fetch *f, proto_cmd *req, int64_t timeout_ms, proto_reply **reply)
{
    int rc = transport_sync_call(f->s, req, NULL, 0, proto_mono_ms() + timeout_ms, reply);

    proto_cmd_free(req);
    if (rc != 0) {
        snprintf(f->why, f->why_len, "master %s: %s", f->cfg->master_addr,
                 transport_sync_why(f->s));
        return rc;
    }
    if ((*reply)->cmd->code != RS_SUCCESS) {
        snprintf(f->why, f->why_len, "master %s refused (code %d): %s", f->cfg->master_addr,
                 (int)(*reply)->cmd->code, (*reply)->cmd->remark ? (*reply)->cmd->remark : "");
        proto_reply_free(*reply);
        *reply = NULL;
        return LSMQ_EIO;
    }
    return 0;
}

static void report(fetch *f, bool last)
{
    int64_t now = proto_mono_ms();

    if (!last && now - f->last_report_ms < PROGRESS_EVERY_MS)
        return;
    f->last_report_ms = now;
    double secs = (double)(now - f->start_ms) / 1000.0;
    double mb = (double)f->done_bytes / 1e6;
    proto_log(PROTO_LOG_INFO, "repl: checkpoint %s %.0f%% (%" PRIu64 " of %" PRIu64 " MiB) at %.0f MB/s",
              last ? "fetched," : "fetching,",
              f->total_bytes ? 100.0 * (double)f->done_bytes / (double)f->total_bytes : 100.0,
              f->done_bytes >> 20, f->total_bytes >> 20, secs > 0 ? mb / secs : 0.0);
}

/* One chunk, checked against its CRC; again when it arrives damaged. */
static int read_chunk(fetch *f, const repl_file *file, uint64_t offset, size_t len,
                      proto_reply **out, uint32_t *crc)
{
    for (int attempt = 1;; attempt++) {
        proto_cmd *req = proto_cmd_request(REPL_RC_CHECKPOINT_READ);
        proto_reply *reply;
        int64_t sent_crc = -1;

        repl__set_u64(req, REPL_F_CHECKPOINT_ID, f->id);
        proto_cmd_set(req, REPL_F_FILE, file->name);
        repl__set_u64(req, REPL_F_OFFSET, offset);
        repl__set_u64(req, REPL_F_LENGTH, len);
        int rc = call(f, req, READ_TIMEOUT_MS, &reply);
        if (rc != 0)
            return rc;
        proto_cmd_get_i64(reply->cmd, REPL_F_CRC, &sent_crc);
        /* The body is a view into the reply's own frame. */
        uint8_t *data = (uint8_t *)reply->cmd->body;
        if (repl__test_chunk_hook && data)
            repl__test_chunk_hook(file->name, offset, data, reply->cmd->body_len);
        size_t arrived = reply->cmd->body_len;
        uint32_t got = data ? repl__crc(0, data, arrived) : 0;
        if (arrived == len && sent_crc >= 0 && (uint32_t)sent_crc == got) {
            *out = reply;
            *crc = got;
            return 0;
        }
        proto_reply_free(reply);
        snprintf(f->why, f->why_len,
                 "checkpoint file %s at offset %" PRIu64 ": %zu bytes of %zu arrived, crc %s",
                 file->name, offset, arrived, len,
                 sent_crc >= 0 && (uint32_t)sent_crc == got ? "ok" : "mismatch");
        proto_log(PROTO_LOG_WARN, "repl: %s (attempt %d of %d)", f->why, attempt, ATTEMPTS);
        if (attempt == ATTEMPTS)
            return LSMQ_ECORRUPT;
    }
}

static int write_all(int fd, const uint8_t *p, size_t len, uint64_t offset)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return 0;
}

/*
 * One file into f->dir: chunks in order, synced, then checked on disk.
 * LSMQ_ECORRUPT when what landed does not match (fetch it again), a
 * transport error, or -errno of the local disk (not worth retrying).
 */
static int fetch_file(fetch *f, const repl_file *file, bool *local_error)
{
    char *path = proto_xasprintf("%s/%s", f->dir, file->name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    uint64_t offset = 0;
    uint32_t crc = 0;
    int rc = 0;

    *local_error = false;
    if (fd < 0) {
        rc = -errno;
        goto local;
    }
    while (offset < file->size) {
        size_t len = file->size - offset > REPL_CHUNK_BYTES ? REPL_CHUNK_BYTES
                                                           : (size_t)(file->size - offset);
        proto_reply *reply;
        uint32_t chunk_crc;
        rc = read_chunk(f, file, offset, len, &reply, &chunk_crc);
        if (rc != 0)
            goto out;
        rc = write_all(fd, reply->cmd->body, len, offset);
        proto_reply_free(reply);
        if (rc != 0)
            goto local;
        crc = repl__crc_combine(crc, chunk_crc, len);
        offset += len;
        f->done_bytes += len;
        report(f, false);
    }
    if (fsync(fd) != 0) {
        rc = -errno;
        goto local;
    }
    close(fd);
    fd = -1;
    struct stat st;
    uint32_t on_disk = 0;
    if (stat(path, &st) != 0 || (rc = repl__file_crc(path, &on_disk)) != 0) {
        rc = rc ? rc : -errno;
        goto local;
    }
    if ((uint64_t)st.st_size != file->size || on_disk != crc) {
        snprintf(f->why, f->why_len, "checkpoint file %s: %" PRIu64 " bytes on disk (%" PRIu64
                 " listed), crc %08x (%08x sent)", file->name, (uint64_t)st.st_size, file->size,
                 on_disk, crc);
        rc = LSMQ_ECORRUPT;
    }
    goto out;
local:
    *local_error = true;
    snprintf(f->why, f->why_len, "cannot write %s: %s", path, lsmq_strerror(rc));
out:
    if (fd >= 0)
        close(fd);
    free(path);
    return rc;
}

/* Fetch a whole checkpoint into dir (made here). *local_error: not worth retrying. */
static int fetch_checkpoint(fetch *f, bool *local_error)
{
    proto_cmd *req = proto_cmd_request(REPL_RC_CHECKPOINT_BEGIN);
    proto_reply *reply;
    repl_file *files = NULL;
    size_t n = 0;

    *local_error = false;
    repl__set_u64(req, REPL_F_EPOCH, f->cfg->epoch);
    if (f->cfg->self_addr)
        proto_cmd_set(req, REPL_F_REPLICA_ADDR, f->cfg->self_addr);
    int rc = call(f, req, BEGIN_TIMEOUT_MS, &reply);
    if (rc != 0)
        return rc;
    rc = repl__parse_files(reply->cmd->body, reply->cmd->body_len, &files, &n);
    f->id = repl__get_u64(reply->cmd, REPL_F_CHECKPOINT_ID);
    f->seq = repl__get_u64(reply->cmd, REPL_F_CHECKPOINT_SEQ);
    f->epoch = repl__get_u64(reply->cmd, REPL_F_EPOCH);
    proto_reply_free(reply);
    if (rc == 0 && f->epoch < f->cfg->epoch) {
        snprintf(f->why, f->why_len, "stale master epoch %" PRIu64 " (this replica follows epoch %"
                 PRIu64 " or newer)", f->epoch, f->cfg->epoch);
        free(files);
        return LSMQ_ECLOSED;
    }
    if (rc != 0 || f->seq == 0) {
        snprintf(f->why, f->why_len, "master %s sent an unusable checkpoint list",
                 f->cfg->master_addr);
        free(files);
        return LSMQ_ECORRUPT;
    }
    f->total_bytes = f->done_bytes = 0;
    for (size_t i = 0; i < n; i++)
        f->total_bytes += files[i].size;
    f->start_ms = f->last_report_ms = proto_mono_ms();
    proto_log(PROTO_LOG_INFO,
              "repl: fetching a checkpoint of master %s at seq %" PRIu64 ": %zu files, %" PRIu64 " MiB",
              f->cfg->master_addr, f->seq, n, f->total_bytes >> 20);
    rc = make_dir(f->dir);
    if (rc != 0) {
        *local_error = true;
        snprintf(f->why, f->why_len, "cannot make %s: %s", f->dir, strerror(-rc));
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        for (int attempt = 1;; attempt++) {
            uint64_t before = f->done_bytes;
            rc = fetch_file(f, &files[i], local_error);
            if (rc != LSMQ_ECORRUPT || attempt == ATTEMPTS)
                break;
            proto_log(PROTO_LOG_WARN, "repl: %s: fetching it again", f->why);
            f->done_bytes = before;
        }
    }
    free(files);
    if (rc == 0) {
        report(f, true);
        req = proto_cmd_request(REPL_RC_CHECKPOINT_END);
        repl__set_u64(req, REPL_F_CHECKPOINT_ID, f->id);
        if (call(f, req, READ_TIMEOUT_MS, &reply) == 0)
            proto_reply_free(reply); /* the master also drops it when we hang up */
        rc = repl__sync_dir(f->dir);
        if (rc != 0) {
            *local_error = true;
            snprintf(f->why, f->why_len, "cannot sync %s: %s", f->dir, strerror(-rc));
        }
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* The whole step                                                       */

/* incoming/db becomes db/, the old store goes. */
static int install(const char *store, const char *ha, const char *incoming_db, char *errbuf,
                   size_t errlen)
{
    char *db = proto_xasprintf("%s/db", store);
    char *old = proto_xasprintf("%s/old-db", ha);
    int rc = 0;

    if (exists(db) && rename(db, old) != 0)
        rc = -errno;
    if (rc == 0 && rename(incoming_db, db) != 0)
        rc = -errno;
    if (rc == 0)
        rc = repl__sync_dir(store);
    if (rc == 0)
        rc = repl__sync_dir(ha);
    if (rc != 0)
        snprintf(errbuf, errlen, "cannot install the checkpoint as %s: %s", db, strerror(-rc));
    else
        repl__remove_tree(old);
    free(db);
    free(old);
    return rc;
}

int repl_replica_prepare(const repl_replica_config *c, bool refetch, uint64_t *applied_seq,
                         char *errbuf, size_t errlen)
{
    char *db = proto_xasprintf("%s/db", c->store_path);
    char *ha = proto_xasprintf("%s/ha", c->store_path);
    char *incoming = proto_xasprintf("%s/incoming", ha);
    char *incoming_db = proto_xasprintf("%s/db", incoming);
    char *old = proto_xasprintf("%s/old-db", ha);
    uint32_t retry_min = c->retry_min_ms ? c->retry_min_ms : 100;
    uint32_t retry_max = c->retry_max_ms > retry_min ? c->retry_max_ms : retry_min;
    uint32_t retry = retry_min;
    int64_t deadline = c->prepare_timeout_ms ? proto_mono_ms() + c->prepare_timeout_ms : INT64_MAX;
    uint64_t seq = 0, epoch = 0;
    int rc;

    *applied_seq = 0;
    if ((rc = make_dir(c->store_path)) != 0 || (rc = make_dir(ha)) != 0 ||
        (rc = repl__remove_tree(incoming)) != 0 || (rc = repl__remove_tree(old)) != 0) {
        snprintf(errbuf, errlen, "cannot prepare %s: %s", ha, strerror(-rc));
        goto out;
    }
    if (!refetch && exists(db)) {
        rc = read_position(c->store_path, &epoch, &seq, errbuf, errlen);
        if (rc != 0 || seq > 0) {
            *applied_seq = seq;
            goto out;
        }
        proto_log(PROTO_LOG_WARN, "repl: the store in %s holds no position: replacing it "
                  "with a checkpoint of the master", db);
    }
    if (!c->master_addr || !*c->master_addr) {
        snprintf(errbuf, errlen, "the replica needs a checkpoint and no master address is known");
        rc = LSMQ_EINVAL;
        goto out;
    }
    for (;;) {
        fetch f = {.cfg = c, .dir = incoming_db, .why = errbuf, .why_len = errlen};
        bool local_error = false;
        int64_t connect_by = proto_mono_ms() + (c->connect_timeout_ms ? c->connect_timeout_ms : 3000);
        rc = make_dir(incoming);
        if (rc != 0) {
            snprintf(errbuf, errlen, "cannot make %s: %s", incoming, strerror(-rc));
            goto out;
        }
        rc = transport_sync_connect(c->master_addr, connect_by < deadline ? connect_by : deadline,
                                    &f.s, errbuf, errlen);
        if (rc == 0) {
            rc = fetch_checkpoint(&f, &local_error);
            transport_sync_close(f.s);
        }
        if (rc == 0) {
            seq = f.seq;
            epoch = f.epoch;
            break;
        }
        repl__remove_tree(incoming);
        if (local_error)
            goto out;
        if (proto_mono_ms() + retry >= deadline) {
            rc = -ETIMEDOUT;
            goto out;
        }
        proto_log(PROTO_LOG_WARN, "repl: no checkpoint from master %s yet (retrying in %u ms): %s",
                  c->master_addr, retry, errbuf);
        usleep(retry * 1000u);
        retry = retry * 2 > retry_max ? retry_max : retry * 2;
    }
    rc = record_position(incoming, epoch, seq, errbuf, errlen);
    if (rc == 0)
        rc = install(c->store_path, ha, incoming_db, errbuf, errlen);
    repl__remove_tree(incoming);
    if (rc == 0) {
        *applied_seq = seq;
        proto_log(PROTO_LOG_INFO,
                  "repl: store %s made from the master's checkpoint at epoch %" PRIu64 " seq %" PRIu64,
                  db, epoch, seq);
    }
out:
    free(db);
    free(ha);
    free(incoming);
    free(incoming_db);
    free(old);
    return rc;
}
