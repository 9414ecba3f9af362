/*
 * A replica offers the consumer offsets it held while its master was away
 * (broker_held_offsets.c) to that master once it is back: one connection
 * to the master's remoting address, one UPDATE_CONSUMER_OFFSET per held
 * offset, closed once every one is answered. A held offset whose queue the
 * master's log has spoken for since it was held is dropped, not sent after
 * it; the others stay until the master's log brings its own value for their
 * queues (the one sent here, or a later one the consumer committed there).
 *
 * One forward at a time, on the loop thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "broker_internal.h"
#include "clock.h"
#include "log.h"
#include "transport.h"

#define CONNECT_TIMEOUT_MS 3000
#define REQUEST_TIMEOUT_MS 5000

struct broker_forward {
    proto_conn *pc;             /* the last forward's connection; NULL before the first */
    transport_ev io;
    bool done;                  /* pc is finished: freed by the next forward or at free */
    char addr[256];
    engine *engine;             /* the replica's store, for what the master said since */
    size_t pending, stored;
};

broker_forward *broker__forward_new(void)
{
    return proto_xcalloc(1, sizeof(broker_forward));
}

/* Stop using the connection (safe inside its callbacks); its memory goes later. */
static void forward_finish(broker_forward *f)
{
    f->done = true;
    transport_ev_close(&f->io);
    proto_conn_fail_all(f->pc, LSMQ_ECLOSED, NULL);
}

static void forward_release(broker_forward *f)
{
    if (!f->pc)
        return;
    if (!f->done)
        forward_finish(f);
    proto_conn_free(f->pc);
    f->pc = NULL;
}

static void end_cb(transport_ev *a, int err, const char *why, void *arg)
{
    broker_forward *f = arg;
    if (f->done)
        return;
    proto_log(PROTO_LOG_WARN, "broker: cannot offer held consumer offsets to master %s: %s",
              f->addr, why);
    forward_finish(f);
}

static void reply_cb(int rc, proto_reply *reply, const char *why, void *arg)
{
    broker_forward *f = arg;
    if (rc == 0 && reply->cmd->code == RS_SUCCESS)
        f->stored++;
    proto_reply_free(reply);
    if (f->done || --f->pending > 0)
        return;
    proto_log(PROTO_LOG_INFO, "broker: master %s took %zu consumer offsets held meanwhile",
              f->addr, f->stored);
    forward_finish(f);
}

static bool queue_one(void *ctx, const char *group, const char *topic, uint32_t queue_id,
                      uint64_t offset, uint64_t stored)
{
    broker_forward *f = ctx;
    uint64_t now;
    if (engine_offset_get(f->engine, group, strlen(group), topic, strlen(topic), queue_id,
                          &now) != 0)
        now = UINT64_MAX;
    if (now != stored)
        return true; /* the master's log has a newer word for the queue: not sent after it */
    proto_cmd *req = proto_cmd_request(RC_UPDATE_CONSUMER_OFFSET);
    proto_cmd_set(req, "consumerGroup", group);
    proto_cmd_set(req, "topic", topic);
    proto_cmd_set_i64(req, "queueId", queue_id);
    proto_cmd_set_i64(req, "commitOffset", (int64_t)offset);
    int64_t deadline = proto_mono_ms() + CONNECT_TIMEOUT_MS + REQUEST_TIMEOUT_MS;
    f->pending++;
    if (proto_conn_request(f->pc, req, NULL, 0, deadline, reply_cb, f) != 0)
        f->pending--;
    proto_cmd_free(req);
    return false; /* kept until the master's log answers for the queue */
}

void broker__forward_offsets(broker_forward *f, broker_ctx *ctx, broker_held_offsets *held,
                             const char *master_addr)
{
    if (f->pc && !f->done)
        return; /* one at a time: the next comeback offers them again */
    forward_release(f);
    char why[256];
    proto_conn_options o = {.name = master_addr, .connecting = 1};
    snprintf(f->addr, sizeof f->addr, "%s", master_addr);
    f->engine = ctx->engine;
    f->pending = f->stored = 0;
    f->done = false;
    f->pc = proto_conn_create(&o);
    if (transport_ev_connect(&f->io, f->pc, server_loop(ctx->srv), server_flusher(ctx->srv),
                             master_addr, CONNECT_TIMEOUT_MS, end_cb, f, why, sizeof why) != 0) {
        proto_log(PROTO_LOG_WARN, "broker: cannot offer held consumer offsets to master %s: %s",
                  master_addr, why);
        proto_conn_free(f->pc);
        f->pc = NULL;
        return;
    }
    f->pending = 1; /* until every request is out */
    broker_held_offsets_each(held, queue_one, f);
    if (--f->pending == 0)
        forward_finish(f);
}

void broker__forward_free(broker_forward *f)
{
    if (!f)
        return;
    forward_release(f);
    free(f);
}
