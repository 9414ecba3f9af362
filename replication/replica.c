/* The replica side: being written. */
#include <stdlib.h>
#include <string.h>

#include "repl.h"

int repl_replica_prepare(const repl_replica_config *c, bool refetch, uint64_t *applied_seq,
                         char *errbuf, size_t errlen)
{
    (void)c; (void)refetch; (void)errbuf; (void)errlen;
    *applied_seq = 0;
    return LSMQ_EINVAL;
}
int repl_replica_start(const repl_replica_config *c, engine *e, repl_replica **out)
{
    (void)c; (void)e;
    *out = NULL;
    return LSMQ_EINVAL;
}
void repl_replica_set_master(repl_replica *r, const char *addr) { (void)r; (void)addr; }
void repl_replica_stop(repl_replica *r) { (void)r; }
int repl_replica_status(repl_replica *r, repl_replica_state *out)
{
    (void)r;
    memset(out, 0, sizeof(*out));
    return 0;
}
