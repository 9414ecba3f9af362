/* The master side: being written. */
#include <stdlib.h>

#include "repl.h"

int repl_master_create(const repl_master_config *c, repl_master **out)
{
    (void)c;
    *out = NULL;
    return LSMQ_EINVAL;
}
const engine_extension *repl_master_extension(repl_master *m) { (void)m; return NULL; }
int repl_master_start(repl_master *m, engine *e, char *errbuf, size_t errlen)
{
    (void)m; (void)e; (void)errbuf; (void)errlen;
    return LSMQ_EINVAL;
}
int repl_master_port(const repl_master *m) { (void)m; return 0; }
void repl_master_stop(repl_master *m) { (void)m; }
void repl_master_destroy(repl_master *m) { (void)m; }
size_t repl_master_replicas(repl_master *m) { (void)m; return 0; }
size_t repl_master_in_sync(repl_master *m) { (void)m; return 0; }
uint64_t repl_master_acked(repl_master *m) { (void)m; return 0; }
int repl_master_status(repl_master *m, repl_replica_info **out, size_t *n)
{
    (void)m;
    *out = NULL;
    *n = 0;
    return 0;
}
