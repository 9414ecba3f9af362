/*
 * Broker addresses an mqclient could not connect to lately. A consumer
 * reads a queue from the broker id its last pull answer suggested; when
 * that broker does not take connections (a master killed, a link cut) and
 * the name server has not said so yet, the route still lists it. Such an
 * address is marked here for DOWN_MS after each failed connect, and
 * lsmq__route_pick passes it over while its broker group has another
 * address; once the mark runs out the next request tries it again.
 *
 * Only failed connects mark: a connection that was open and then closed
 * says nothing about the next one, and a slow answer is not a dead broker.
 *
 * Marked from the I/O thread (instance.c), read from any thread: the
 * table has its own lock.
 */
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

#define DOWN_MS 10000

struct addr_down {
    char *addr;
    int64_t until_ms;
    UT_hash_handle hh;
};

void lsmq__mqc_mark_down(mqclient *mqc, const char *addr, const char *why)
{
    int64_t now = proto_mono_ms();
    addr_down *d, *tmp;
    int fresh = 0;

    pthread_mutex_lock(&mqc->down_lock);
    HASH_ITER(hh, mqc->down, d, tmp) {
        if (d->until_ms > now || strcmp(d->addr, addr) == 0)
            continue;
        HASH_DEL(mqc->down, d);
        free(d->addr);
        free(d);
    }
    HASH_FIND_STR(mqc->down, addr, d);
    if (d == NULL) {
        d = proto_xcalloc(1, sizeof *d);
        d->addr = proto_xstrdup(addr);
        HASH_ADD_KEYPTR(hh, mqc->down, d->addr, strlen(d->addr), d);
    }
    fresh = d->until_ms <= now;
    d->until_ms = now + DOWN_MS;
    pthread_mutex_unlock(&mqc->down_lock);
    if (fresh)
        proto_log(PROTO_LOG_INFO, "liblsmq: %s is unreachable (%s); reads go to another broker "
                  "of its group for %d s", addr, why ? why : "connect failed", DOWN_MS / 1000);
}

int lsmq__mqc_addr_down(mqclient *mqc, const char *addr)
{
    int64_t now = proto_mono_ms();
    addr_down *d = NULL;
    int down;

    pthread_mutex_lock(&mqc->down_lock);
    HASH_FIND_STR(mqc->down, addr, d);
    down = d && d->until_ms > now;
    pthread_mutex_unlock(&mqc->down_lock);
    return down;
}

void lsmq__mqc_down_free(mqclient *mqc)
{
    addr_down *d, *tmp;

    HASH_ITER(hh, mqc->down, d, tmp) {
        HASH_DEL(mqc->down, d);
        free(d->addr);
        free(d);
    }
}
