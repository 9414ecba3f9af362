/*
 * Checkpoints served to replicas: CHECKPOINT_BEGIN makes one
 * (engine_checkpoint: hard links of the store's files under work_dir) and
 * answers its file list; CHECKPOINT_READ answers a chunk of one file with
 * its CRC-32; CHECKPOINT_END, or the connection closing, removes it. One
 * checkpoint per connection; the replica pulls chunk by chunk, so a slow
 * replica costs nothing but its hard links.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "master_internal.h"

void repl__checkpoint_close(repl_link *l)
{
    if (l->cp_fd >= 0)
        close(l->cp_fd);
    l->cp_fd = -1;
    l->cp_file[0] = '\0';
    if (l->cp_dir) {
        int rc = repl__remove_tree(l->cp_dir);
        if (rc != 0)
            proto_log(PROTO_LOG_WARN, "repl: cannot remove checkpoint %s: %s", l->cp_dir,
                      strerror(-rc));
        free(l->cp_dir);
        l->cp_dir = NULL;
    }
}

/* A SYSTEM_ERROR answer: "<what> <name>: <the code's text>". */
static void reply_error(conn *c, int32_t opaque, const char *what, const char *name, int rc)
{
    proto_cmd *resp = proto_cmd_response(RS_SYSTEM_ERROR, opaque, NULL);
    proto_cmd_set_remarkf(resp, "%s %s: %s", what, name, lsmq_strerror(rc));
    server_conn_reply(c, opaque, resp, NULL, 0);
}

static void begin_cb(server *s, conn *c, proto_cmd *req, void *ctx)
{
    repl_master *m = ctx;
    repl_link *l = repl__link_of(m, c);
    const char *addr = proto_cmd_get(req, REPL_F_REPLICA_ADDR);
    uint64_t seq = 0;
    proto_buf list = {0};
    int64_t t0 = proto_mono_ms();

    l->last_heard_ms = t0;
    if (addr && *addr)
        snprintf(l->addr, sizeof l->addr, "%s", addr);
    repl__stream_close(l);
    repl__checkpoint_close(l);
    l->cp_id = ++m->next_cp_id;
    l->cp_dir = proto_xasprintf("%s/cp-%" PRIu64, m->work_dir, l->cp_id);
    int rc = engine_checkpoint(m->e, l->cp_dir, &seq);
    if (rc == 0)
        rc = repl__list_files(l->cp_dir, &list);
    if (rc != 0) {
        proto_log(PROTO_LOG_ERROR, "repl: checkpoint for replica %s failed: %s", l->addr,
                  lsmq_strerror(rc));
        reply_error(c, req->opaque, "cannot make a checkpoint in", m->work_dir, rc);
        repl__checkpoint_close(l);
        proto_buf_free(&list);
        return;
    }
    repl_file *files;
    size_t n = 0;
    uint64_t total = 0;
    if (repl__parse_files((const uint8_t *)list.p, list.len, &files, &n) == 0) {
        for (size_t i = 0; i < n; i++)
            total += files[i].size;
        free(files);
    }
    pthread_mutex_lock(&m->lock);
    l->phase = REPL_PHASE_CHECKPOINT;
    l->in_sync = false;
    l->cp_total = total;
    l->cp_served = 0;
    pthread_mutex_unlock(&m->lock);
    repl__master_recount(m);
    proto_log(PROTO_LOG_INFO,
              "repl: checkpoint at seq %" PRIu64 " for replica %s (%s): %zu files, %" PRIu64
              " MiB, made in %" PRId64 " ms",
              seq, l->addr, l->peer, n, total >> 20, proto_mono_ms() - t0);
    proto_cmd *resp = proto_cmd_response(RS_SUCCESS, req->opaque, NULL);
    repl__set_u64(resp, REPL_F_CHECKPOINT_ID, l->cp_id);
    repl__set_u64(resp, REPL_F_CHECKPOINT_SEQ, seq);
    repl__set_u64(resp, REPL_F_EPOCH, m->epoch);
    size_t len = list.len;
    server_conn_reply_owned(c, req->opaque, resp, proto_buf_take(&list), len);
}

/* The open file `name` of l's checkpoint (kept open between chunks). */
static int open_file(repl_link *l, const char *name)
{
    if (l->cp_fd >= 0 && strcmp(l->cp_file, name) == 0)
        return 0;
    if (l->cp_fd >= 0)
        close(l->cp_fd);
    char *path = proto_xasprintf("%s/%s", l->cp_dir, name);
    l->cp_fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (l->cp_fd < 0)
        return -errno;
    snprintf(l->cp_file, sizeof l->cp_file, "%s", name);
    return 0;
}

static void read_cb(server *s, conn *c, proto_cmd *req, void *ctx)
{
    repl_master *m = ctx;
    repl_link *l = repl__link_of(m, c);
    const char *name = proto_cmd_get(req, REPL_F_FILE);
    int64_t id = 0, offset = -1, length = -1;

    l->last_heard_ms = proto_mono_ms();
    proto_cmd_get_i64(req, REPL_F_CHECKPOINT_ID, &id);
    proto_cmd_get_i64(req, REPL_F_OFFSET, &offset);
    proto_cmd_get_i64(req, REPL_F_LENGTH, &length);
    if (!l->cp_dir || (uint64_t)id != l->cp_id || !name || !repl__safe_name(name) || offset < 0 ||
        length <= 0 || length > (int64_t)REPL_CHUNK_BYTES) {
        server_conn_reply_code(c, req->opaque, RS_INVALID_PARAMETER,
                               "no such checkpoint, file or range");
        return;
    }
    int rc = open_file(l, name);
    if (rc != 0) {
        reply_error(c, req->opaque, "cannot open", name, rc);
        return;
    }
    uint8_t *buf = proto_xmalloc((size_t)length);
    size_t got = 0;
    rc = repl__pread_full(l->cp_fd, buf, (size_t)length, (uint64_t)offset, &got);
    if (rc != 0) {
        free(buf);
        reply_error(c, req->opaque, "cannot read", name, rc);
        return;
    }
    pthread_mutex_lock(&m->lock);
    l->cp_served += got;
    pthread_mutex_unlock(&m->lock);
    proto_cmd *resp = proto_cmd_response(RS_SUCCESS, req->opaque, NULL);
    proto_cmd_set_i64(resp, REPL_F_CRC, repl__crc(0, buf, got));
    server_conn_reply_owned(c, req->opaque, resp, buf, got);
}

static void end_cb(server *s, conn *c, proto_cmd *req, void *ctx)
{
    repl_master *m = ctx;
    repl_link *l = repl__link_of(m, c);

    l->last_heard_ms = proto_mono_ms();
    if (l->cp_dir)
        proto_log(PROTO_LOG_INFO, "repl: replica %s (%s) fetched its checkpoint", l->addr, l->peer);
    repl__checkpoint_close(l);
    pthread_mutex_lock(&m->lock);
    l->phase = REPL_PHASE_HANDSHAKE;
    pthread_mutex_unlock(&m->lock);
    server_conn_reply_code(c, req->opaque, RS_SUCCESS, NULL);
}

void repl__checkpoint_register(repl_master *m)
{
    server_register(m->srv, REPL_RC_CHECKPOINT_BEGIN, begin_cb, m);
    server_register(m->srv, REPL_RC_CHECKPOINT_READ, read_cb, m);
    server_register(m->srv, REPL_RC_CHECKPOINT_END, end_cb, m);
}
