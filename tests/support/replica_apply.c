/* Applying a master's batches to a replica and waiting for them to be durable. */
#include "testsupport.h"

void test_applied_init(test_applied *w)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
}

void test_applied_destroy(test_applied *w)
{
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
}

void test_applied_cb(void *ctx, int status)
{
    test_applied *w = ctx;
    pthread_mutex_lock(&w->lock);
    w->done++;
    if (status != 0) {
        w->failed++;
        w->last_error = status;
    }
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

int test_applied_wait(test_applied *w, size_t n)
{
    pthread_mutex_lock(&w->lock);
    while (w->done < n)
        pthread_cond_wait(&w->cond, &w->lock);
    int rc = w->last_error;
    pthread_mutex_unlock(&w->lock);
    return rc;
}

int test_apply_wait(engine *e, const engine_log_batch *b)
{
    test_applied w;
    test_applied_init(&w);
    int rc = engine_apply(e, b, test_applied_cb, &w);
    if (rc == 0)
        rc = test_applied_wait(&w, 1);
    test_applied_destroy(&w);
    return rc;
}
