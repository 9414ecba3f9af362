/*
 * Waking the pulls parked on queues the store's writer advanced by itself:
 * on a replica every batch from the master, on a master every move of due
 * delayed messages to their queues; and on a controller-mode replica the
 * queues its master's confirmations made readable (broker_ha.c). Sends and send-backs wake their own
 * queue from their completion; these advances have no request behind them,
 * so the engine reports them through its on_advance hook (writer thread).
 * The queues are gathered under a mutex, each once, and handed to the loop
 * with one server_post at a time: a burst of due messages on one queue
 * costs one post, not one per message.
 */
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include "alloc.h"
#include "broker_internal.h"

struct broker_wake {
    broker_modules *m;
    engine_extension ext;
    pthread_mutex_t lock;       /* guards the fields below */
    broker_queue_ref *queues;
    size_t n, cap;
    bool posted;
};

void broker_wake_queues(broker_modules *m, const broker_queue_ref *list, size_t n)
{
    engine *e = m->ctx.engine;
    engine_view *v = NULL;
    if (n == 0 || !e || !m->pull || !broker_pull_parked(m->pull) ||
        engine_view_open(e, &v) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        engine_topic_config tc;
        if (engine_view_topic_by_id(v, list[i].topic_id, &tc) == 0)
            broker_pull_notify(m->pull, tc.name, list[i].queue_id);
    }
    engine_view_close(v);
}

/* Loop thread: take what the writer gathered and wake those queues. */
static void wake_post_cb(void *arg)
{
    broker_wake *w = arg;
    pthread_mutex_lock(&w->lock);
    broker_queue_ref *list = w->queues;
    size_t n = w->n;
    w->queues = NULL;
    w->n = w->cap = 0;
    w->posted = false;
    pthread_mutex_unlock(&w->lock);
    broker_wake_queues(w->m, list, n);
    free(list);
}

void broker_wake_note(void *wake, uint32_t topic_id, uint32_t queue_id)
{
    broker_wake *w = wake;
    bool post = false;
    pthread_mutex_lock(&w->lock);
    size_t i = 0;
    while (i < w->n && (w->queues[i].topic_id != topic_id || w->queues[i].queue_id != queue_id))
        i++;
    if (i == w->n) {
        if (w->n == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 16;
            w->queues = proto_xrealloc(w->queues, w->cap * sizeof *w->queues);
        }
        w->queues[w->n++] = (broker_queue_ref){topic_id, queue_id};
    }
    if (!w->posted)
        post = w->posted = true;
    pthread_mutex_unlock(&w->lock);
    if (post)
        server_post(w->m->ctx.srv, wake_post_cb, w);
}

/* Writer thread: a queue the writer advanced by itself. */
static void on_advance(const engine_ext_env *x, uint32_t topic_id, uint32_t queue_id,
                       uint64_t max_offset)
{
    (void)max_offset;
    broker_wake_note(x->ctx, topic_id, queue_id);
}

int broker_wake_create(broker_modules *m, char *errbuf, size_t errlen)
{
    broker_wake *w = proto_xcalloc(1, sizeof *w);
    w->m = m;
    pthread_mutex_init(&w->lock, NULL);
    w->ext.name = "broker-wake";
    w->ext.ctx = w;
    w->ext.hook.on_advance = on_advance;
    m->wake = w;
    return 0;
}

const engine_extension *broker_wake_extension(const broker_wake *w)
{
    return &w->ext;
}

/* After the store closed: its posts ran (broker__store_close). */
void broker_wake_destroy(broker_modules *m)
{
    broker_wake *w = m->wake;
    if (!w)
        return;
    free(w->queues);
    pthread_mutex_destroy(&w->lock);
    free(w);
    m->wake = NULL;
}
