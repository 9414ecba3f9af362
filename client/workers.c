/*
 * The listener worker pool: n threads over one mutex + condvar queue of
 * jobs (redis bio.c's shape). Push consumers hand it one task per queue
 * at a time, so a slow listener holds up its own queue only.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

typedef struct work {
    struct work *next;
    work_fn *fn;
    void *arg;
} work;

struct workers {
    pthread_mutex_t lock;
    pthread_cond_t cv;
    work *head, *tail;
    int stopping;
    int n;
    pthread_t *threads;
};

static void *worker_main(void *arg)
{
    workers *w = arg;

    pthread_mutex_lock(&w->lock);
    for (;;) {
        work *job;

        while (w->head == NULL && !w->stopping)
            pthread_cond_wait(&w->cv, &w->lock);
        job = w->head;
        if (job == NULL)
            break; /* stopping and drained */
        w->head = job->next;
        if (w->head == NULL)
            w->tail = NULL;
        pthread_mutex_unlock(&w->lock);
        job->fn(job->arg);
        free(job);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int lsmq__workers_create(int n, workers **out, lsmq_errslot *e)
{
    workers *w = proto_xcalloc(1, sizeof *w);
    int i, rc;

    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->threads = proto_xcalloc((size_t)n, sizeof *w->threads);
    for (i = 0; i < n; i++) {
        rc = pthread_create(&w->threads[i], NULL, worker_main, w);
        if (rc != 0) {
            lsmq__error(e, -1, "cannot start a worker thread: %s", strerror(rc));
            lsmq__workers_destroy(w);
            return -rc;
        }
        w->n++;
    }
    *out = w;
    return 0;
}

void lsmq__workers_submit(workers *w, work_fn *fn, void *arg)
{
    work *job = proto_xmalloc(sizeof *job);

    job->next = NULL;
    job->fn = fn;
    job->arg = arg;
    pthread_mutex_lock(&w->lock);
    if (w->tail)
        w->tail->next = job;
    else
        w->head = job;
    w->tail = job;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->lock);
}

void lsmq__workers_destroy(workers *w)
{
    int i;

    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->lock);
    for (i = 0; i < w->n; i++)
        pthread_join(w->threads[i], NULL);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cv);
    free(w->threads);
    free(w);
}
