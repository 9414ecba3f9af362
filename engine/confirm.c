/*
 * Confirmed reads (engine_confirm): what a master's readers see waits for
 * the confirmation of the batch that wrote it.
 *
 * Each queue has a visible offset beside its published one; reads stop at
 * the visible one. Without confirmed_reads the writer moves both together.
 * With it, the writer records a mark (batch sequence, queue, offset) per
 * queue it published, in commit order; engine_confirm pops the marks its
 * sequence covers and raises those queues' visible offsets. A confirmation
 * may arrive before the writer has published the batch (a replica can
 * acknowledge a batch while the master still syncs its WAL), so the writer
 * raises the visible offset itself when its batch is already covered.
 *
 * A replica does the same with its master's sequences: each applied group
 * marks the queues it moved with the last master sequence applied, and the
 * master's confirmed sequence (shipped with its batches) releases them.
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"

struct confirm_mark {
    uint64_t seq;
    uint64_t offset;
    uint32_t topic_id;
    uint32_t queue_id;
};

/* Raise, never lower: the writer and engine_confirm may both set it. */
static void raise_visible(queue_state *q, uint64_t offset)
{
    uint64_t cur = atomic_load(&q->visible_offset);
    while (offset > cur && !atomic_compare_exchange_weak(&q->visible_offset, &cur, offset))
        ;
}

static void push_mark(engine *e, const struct confirm_mark *m)
{
    if (e->marks_len == e->marks_cap) {
        size_t cap = e->marks_cap ? e->marks_cap * 2 : 256;
        struct confirm_mark *grown = proto_xmalloc(cap * sizeof *grown);
        for (size_t i = 0; i < e->marks_len; i++)
            grown[i] = e->marks[(e->marks_head + i) % e->marks_cap];
        free(e->marks);
        e->marks = grown;
        e->marks_cap = cap;
        e->marks_head = 0;
    }
    e->marks[(e->marks_head + e->marks_len) % e->marks_cap] = *m;
    e->marks_len++;
}

void engine__confirm_mark(engine *e, uint32_t topic_id, uint32_t queue_id, queue_state *q,
                          uint64_t next_offset, uint64_t seq)
{
    if (!e->cfg.confirmed_reads || seq == 0) {
        raise_visible(q, next_offset);
        return;
    }
    pthread_mutex_lock(&e->confirm_lock);
    if (seq <= e->confirmed_seq)
        raise_visible(q, next_offset);
    else
        push_mark(e, &(struct confirm_mark){seq, next_offset, topic_id, queue_id});
    pthread_mutex_unlock(&e->confirm_lock);
}

static int by_queue(const void *a, const void *b)
{
    const struct confirm_mark *x = a, *y = b;
    if (x->topic_id != y->topic_id)
        return x->topic_id < y->topic_id ? -1 : 1;
    return (x->queue_id > y->queue_id) - (x->queue_id < y->queue_id);
}

void engine_confirm(engine *e, uint64_t seq,
                    void (*moved)(void *ctx, uint32_t topic_id, uint32_t queue_id), void *ctx)
{
    if (!e->cfg.confirmed_reads)
        return;
    struct confirm_mark *out = NULL;
    size_t n = 0;
    pthread_mutex_lock(&e->confirm_lock);
    if (seq > e->confirmed_seq)
        e->confirmed_seq = seq;
    while (e->marks_len > 0 && e->marks[e->marks_head].seq <= seq) {
        if (!out)
            out = proto_xmalloc(e->marks_len * sizeof *out);
        out[n++] = e->marks[e->marks_head];
        e->marks_head = (e->marks_head + 1) % e->marks_cap;
        e->marks_len--;
    }
    pthread_mutex_unlock(&e->confirm_lock);
    if (n == 0)
        return;
    pthread_rwlock_rdlock(&e->topics_lock);
    for (size_t i = 0; i < n; i++) {
        topic *t = engine__topics_find_id(e, out[i].topic_id);
        if (t && out[i].queue_id < t->nqueues)
            raise_visible(&t->queues[out[i].queue_id], out[i].offset);
    }
    pthread_rwlock_unlock(&e->topics_lock);
    if (moved) {
        qsort(out, n, sizeof *out, by_queue);
        for (size_t i = 0; i < n; i++)
            if (i == 0 || by_queue(&out[i - 1], &out[i]) != 0)
                moved(ctx, out[i].topic_id, out[i].queue_id);
    }
    free(out);
}

void engine_confirm_restart(engine *e, uint64_t since)
{
    if (!e->cfg.confirmed_reads)
        return;
    pthread_mutex_lock(&e->confirm_lock);
    for (size_t i = 0; i < e->marks_len; i++)
        e->marks[(e->marks_head + i) % e->marks_cap].seq = since;
    e->confirmed_seq = 0;
    pthread_mutex_unlock(&e->confirm_lock);
}

/*
 * A replica's store may end in batches its master never confirmed: a
 * former master's unacknowledged tail, or what it received last before
 * the master died. Until its master confirms the store's position, no
 * offset of it is readable (a read there is "nothing yet", as for a write
 * under way, which never moves a consumer back).
 */
void engine__confirm_open(engine *e)
{
    if (!e->cfg.confirmed_reads || !e->cfg.replica)
        return;
    uint64_t seq = atomic_load(&e->applied_seq);
    pthread_mutex_lock(&e->confirm_lock);
    topic *t, *tmp;
    HASH_ITER(hh_id, e->topics_by_id, t, tmp) {
        for (uint32_t qid = 0; qid < t->nqueues; qid++) {
            queue_state *q = &t->queues[qid];
            uint64_t next = atomic_load(&q->next_offset);
            atomic_store(&q->visible_offset, 0);
            if (next > 0)
                push_mark(e, &(struct confirm_mark){seq, next, t->cfg.topic_id, qid});
        }
    }
    pthread_mutex_unlock(&e->confirm_lock);
}

void engine__confirm_free(engine *e)
{
    free(e->marks);
    e->marks = NULL;
    e->marks_len = e->marks_cap = e->marks_head = 0;
    pthread_mutex_destroy(&e->confirm_lock);
}
