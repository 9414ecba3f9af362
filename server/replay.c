/*
 * Requests kept to run again: a handler that needs something the loop must
 * not wait for (a topic or group config written through the store's writer)
 * keeps its request and returns; once the write lands, the request goes
 * through dispatch again as if it had just arrived, and this time finds what
 * it needs. The copy is the request re-encoded, so it outlives the read
 * buffer its fields point into.
 */
#include <stdlib.h>

#include "log.h"
#include "net_internal.h"

struct server_replay {
    uint64_t conn_id;
    uint8_t *frame;
    size_t len;
};

server_replay *server_replay_keep(conn *c, const proto_cmd *req)
{
    server_replay *r = calloc(1, sizeof *r);
    if (!r)
        abort();
    if (proto_cmd_encode(req, req->body, req->body_len, &r->frame, &r->len) != 0) {
        free(r);
        return NULL;
    }
    r->conn_id = conn_id(c);
    return r;
}

void server_replay_run(server *s, server_replay *r)
{
    conn *c = server_conn_find(s, r->conn_id);
    proto_cmd *cmd = NULL;
    char err[128] = "";
    if (c && proto_cmd_decode(r->frame, r->len, &cmd, err, sizeof err) == 0) {
        proto_conn_deliver(c->pc, cmd);
        proto_cmd_free(cmd);
    } else if (c) {
        lsmq_log("%s: a kept request of %s no longer decodes: %s", s->cfg.name, conn_peer(c),
                 err);
    }
    server_replay_drop(r);
}

void server_replay_drop(server_replay *r)
{
    if (!r)
        return;
    free(r->frame);
    free(r);
}
