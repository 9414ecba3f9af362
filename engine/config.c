/* Defaults of the engine configuration, named after RocketMQ's broker.conf keys. */
#include <string.h>

#include "engine.h"

void engine_config_init(engine_config *c)
{
    memset(c, 0, sizeof *c);
    c->flush_mode = ENGINE_ASYNC_FLUSH;
    c->flush_interval_ms = 500;
    c->max_message_size = 4u << 20;
    c->file_reserved_hours = 72;
    c->disk_max_used_ratio = 75;
    c->retention_interval_ms = 10000;
    c->writer_queue_max = 65536;
    c->block_cache_bytes = 256u << 20;
    c->blob_files = -1;
    c->universal_compaction = -1;
    c->wal_ttl_seconds = 3600;
    c->wal_size_limit_mb = 4096;
}

int engine_config_add_extension(engine_config *c, const engine_extension *x)
{
    if (c->n_extensions >= ENGINE_MAX_EXTENSIONS)
        return LSMQ_ETOOBIG;
    c->extensions[c->n_extensions++] = x;
    return 0;
}
