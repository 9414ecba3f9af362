/*
 * SYNC_MASTER sends waiting for their replicas (broker_ha_await).
 *
 * A stored send joins a list kept in sequence order; it comes out when the
 * sequence acknowledged by inSyncReplicas replicas reaches its own, or
 * when syncFlushTimeout passes. Acknowledgements arrive as one number, so
 * one of them releases every send at the head of the list it covers: many
 * sends share one round trip to the replica as they share one fsync.
 * Sends join in commit order (their completions come in that order), so
 * joining is an append and deadlines fall in list order; one ev_timer is
 * armed for the head's deadline. Should a send join out of order it is
 * put in its place, and the timer then looks at the whole list.
 *
 * Everything here runs on the loop thread.
 */
#include <stdlib.h>

#include "alloc.h"
#include "broker_internal.h"

struct broker_ack_waits {
    server *srv;
    double timeout_s;
    broker_ack_wait *head, *tail;
    bool unordered;             /* a waiter joined out of deadline order */
    ev_timer timer;
};

static void unlink_waiter(broker_ack_waits *aw, broker_ack_wait *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        aw->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        aw->tail = w->prev;
    w->prev = w->next = NULL;
}

static void release(broker_ack_waits *aw, broker_ack_wait *w, int32_t code)
{
    unlink_waiter(aw, w);
    w->code = code;
    w->done_cb(w);
}

/* Arm the timer for the earliest deadline; stop it when nothing waits. */
static void rearm(broker_ack_waits *aw)
{
    struct ev_loop *loop = server_loop(aw->srv);
    ev_timer_stop(loop, &aw->timer);
    if (!aw->head)
        return;
    double first = aw->head->deadline;
    if (aw->unordered)
        for (const broker_ack_wait *w = aw->head; w; w = w->next)
            if (w->deadline < first)
                first = w->deadline;
    double in = first - ev_now(loop);
    ev_timer_set(&aw->timer, in > 0 ? in : 0, 0);
    ev_timer_start(loop, &aw->timer);
}

/* Time is up for the waiters whose deadline passed: FLUSH_SLAVE_TIMEOUT. */
static void timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    broker_ack_waits *aw = t->data;
    double now = ev_now(loop);
    for (broker_ack_wait *w = aw->head, *next; w; w = next) {
        next = w->next;
        if (w->deadline <= now)
            release(aw, w, BROKER_RS_FLUSH_SLAVE_TIMEOUT);
        else if (!aw->unordered)
            break;
    }
    if (!aw->head)
        aw->unordered = false;
    rearm(aw);
}

broker_ack_waits *broker__ack_waits_new(server *srv, uint32_t timeout_ms)
{
    broker_ack_waits *aw = proto_xcalloc(1, sizeof *aw);
    aw->srv = srv;
    aw->timeout_s = (double)timeout_ms / 1000.0;
    ev_timer_init(&aw->timer, timer_cb, 0, 0);
    aw->timer.data = aw;
    return aw;
}

void broker__ack_waits_add(broker_ack_waits *aw, broker_ack_wait *w)
{
    w->deadline = ev_now(server_loop(aw->srv)) + aw->timeout_s;
    broker_ack_wait *after = aw->tail;
    while (after && after->seq > w->seq)
        after = after->prev;
    if (after != aw->tail)
        aw->unordered = true;
    w->prev = after;
    w->next = after ? after->next : aw->head;
    if (w->next)
        w->next->prev = w;
    else
        aw->tail = w;
    if (after)
        after->next = w;
    else
        aw->head = w;
    if (!ev_is_active(&aw->timer))
        rearm(aw);
}

void broker__ack_waits_acked(broker_ack_waits *aw, uint64_t seq)
{
    bool any = false;
    while (aw->head && aw->head->seq <= seq) {
        release(aw, aw->head, RS_SUCCESS);
        any = true;
    }
    if (any) {
        if (!aw->head)
            aw->unordered = false;
        rearm(aw);
    }
}

void broker__ack_waits_flush(broker_ack_waits *aw, int32_t code)
{
    while (aw->head)
        release(aw, aw->head, code);
    aw->unordered = false;
    ev_timer_stop(server_loop(aw->srv), &aw->timer);
}

/* Nothing may wait any more (flushed at stop). */
void broker__ack_waits_free(broker_ack_waits *aw)
{
    if (!aw)
        return;
    ev_timer_stop(server_loop(aw->srv), &aw->timer);
    free(aw);
}
