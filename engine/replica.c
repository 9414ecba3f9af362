/* The replica role: the master's batches applied through the writer. */
#include "internal.h"

int engine_apply(engine *e, const engine_log_batch *b, engine_done_fn done, void *ctx)
{
    (void)e;
    (void)b;
    (void)done;
    (void)ctx;
    return LSMQ_EINVAL;
}

uint64_t engine_applied_sequence(engine *e)
{
    (void)e;
    return 0;
}

int engine_set_applied_sequence(engine *e, uint64_t seq)
{
    (void)e;
    (void)seq;
    return LSMQ_EINVAL;
}

bool engine_is_replica(const engine *e) { return e->cfg.replica; }
