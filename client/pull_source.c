/*
 * Which address of its broker group a consumer pulls a queue from, shared
 * by the push consumer's process queues and the pull consumer's loops.
 *
 * As Java's PullAPIWrapper does (updatePullFromWhichNode,
 * recalculatePullFromWhichNode): every pull answer names the brokerId to
 * pull from next (suggestWhichBrokerId: the master, or a replica when the
 * master wants slow consumers elsewhere), and the next pull goes there if
 * the route has it; otherwise to another address of the group
 * (lsmq__route_pick), which is how a consumer keeps reading from a replica
 * while its master is gone, and goes back once the route lists the master
 * again.
 *
 * Beyond Java: an address that refused a connect is passed over for a
 * while (addr_down.c), so a dead master still in the route costs one
 * failed pull, not a stall until the next route refresh; a pull that
 * failed on the wire asks for the route at once and, when another address
 * of the group is there, is retried there without the error delay; and a
 * stand-in replica that keeps sending the consumer to a master it cannot
 * reach is asked again only after a short pause, not in a tight loop.
 *
 * I/O thread only.
 */
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

#define STAND_IN_PAUSE_MS 1000

void lsmq__pull_source_init(pull_source *s)
{
    s->want = 0;
    s->id = -1;
    s->addr = NULL;
}

void lsmq__pull_source_free(pull_source *s)
{
    free(s->addr);
    s->addr = NULL;
}

const char *lsmq__pull_source_next(mqclient *mqc, pull_source *s, const char *topic,
                                   const char *broker, int32_t queue_id, int64_t offset,
                                   int *replica)
{
    int64_t id = -1;
    char *addr = lsmq__mqc_broker_addr(mqc, topic, broker, s->want, &id);

    if (addr == NULL)
        return NULL;
    if (s->addr == NULL || strcmp(s->addr, addr) != 0)
        proto_log(s->addr ? PROTO_LOG_INFO : PROTO_LOG_DEBUG,
                  "liblsmq: %s:%s:%d pulled from %s (brokerId %lld)", topic, broker,
                  (int)queue_id, addr, (long long)id);
    free(s->addr);
    s->addr = addr;
    s->id = id;
    s->offset = offset;
    if (replica)
        *replica = id != 0;
    return addr;
}

int lsmq__pull_source_done(mqclient *mqc, pull_source *s, const char *topic, const char *broker,
                           int rc, const pull_result *res, int error_delay_ms)
{
    char *next;
    int64_t id = -1;
    int elsewhere, stand_in;

    if (rc == 0 && res == NULL)
        return error_delay_ms; /* the broker refused: it is there, try it later */
    if (rc == 0) {
        s->want = res->suggest >= 0 ? res->suggest : 0;
        if (res->code == RS_SUCCESS || res->next_begin > s->offset)
            return 0; /* the queue moves on: no reason to wait */
    } else {
        /* The name server may know already that this broker is gone. */
        lsmq__mqc_route_refresh(mqc, topic, 0);
    }
    next = lsmq__mqc_broker_addr(mqc, topic, broker, s->want, &id);
    elsewhere = next && s->addr && strcmp(next, s->addr) != 0;
    stand_in = next && id != s->want;
    free(next);
    if (rc != 0)
        return elsewhere ? 0 : error_delay_ms;
    return stand_in ? STAND_IN_PAUSE_MS : 0;
}
