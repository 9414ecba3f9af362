/*
 * The acknowledgement set (controller mode): a batch is acknowledged once
 * every replica the controller lists in the sync state set holds it, not
 * when `in_sync` replicas of any kind do. Members are known by the
 * address they announce (replicaAddr); one that is away holds the set
 * back at what it last acknowledged, so leaving the set is the
 * controller's decision, never a side effect of a dropped link. An empty
 * set is the master alone: every write is acknowledged as it is written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "master_internal.h"

void repl__ack_set_note(repl_master *m, const char *addr, uint64_t acked)
{
    for (size_t i = 0; i < m->ack_n; i++)
        if (strcmp(m->ack_set[i].addr, addr) == 0 && acked > m->ack_set[i].acked)
            m->ack_set[i].acked = acked;
}

uint64_t repl__ack_set_quorum(repl_master *m)
{
    if (m->ack_n == 0)
        return atomic_load(&m->last_seq);
    uint64_t min = UINT64_MAX;
    for (size_t i = 0; i < m->ack_n; i++)
        if (m->ack_set[i].acked < min)
            min = m->ack_set[i].acked;
    return min;
}

void repl__ack_set_free(repl_master *m)
{
    free(m->ack_set);
    m->ack_set = NULL;
    m->ack_n = 0;
}

/* What a member already acknowledged: from the old set, or a streaming link of its address. */
static uint64_t known_acked(repl_master *m, const char *addr)
{
    uint64_t acked = 0;
    for (size_t i = 0; i < m->ack_n; i++)
        if (strcmp(m->ack_set[i].addr, addr) == 0)
            acked = m->ack_set[i].acked;
    for (repl_link *l = m->links; l; l = l->next)
        if (l->phase == REPL_PHASE_STREAMING && strcmp(l->addr, addr) == 0 && l->acked_seq > acked)
            acked = l->acked_seq;
    return acked;
}

void repl_master_set_ack_set(repl_master *m, const char *const *replica_addrs, size_t n)
{
    repl_ack_member *set = n ? proto_xcalloc(n, sizeof *set) : NULL;

    pthread_mutex_lock(&m->lock);
    for (size_t i = 0; i < n; i++) {
        snprintf(set[i].addr, sizeof set[i].addr, "%s", replica_addrs[i] ? replica_addrs[i] : "");
        set[i].acked = known_acked(m, set[i].addr);
    }
    free(m->ack_set);
    m->ack_set = set;
    m->ack_n = n;
    atomic_store(&m->ack_alone, n == 0);
    atomic_store(&m->ack_set_on, true);
    pthread_mutex_unlock(&m->lock);
    /* The replication thread reports the new acknowledged sequence (acked_cb). */
    pthread_mutex_lock(&m->hook_lock);
    if (m->hook_on)
        ev_async_send(m->loop, &m->wake);
    pthread_mutex_unlock(&m->hook_lock);
}
