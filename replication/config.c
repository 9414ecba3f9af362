/*
 * The defaults of the master's and the replica's configs, and the names
 * status texts use.
 */
#include <string.h>

#include "repl.h"

void repl_master_config_init(repl_master_config *c)
{
    memset(c, 0, sizeof(*c));
    c->in_sync = 1;
    c->max_gap_bytes = 256ull << 20;
    c->window_bytes = 32u << 20;
    c->heartbeat_ms = 1000;
    c->dead_after_ms = 5000;
}

void repl_replica_config_init(repl_replica_config *c)
{
    memset(c, 0, sizeof(*c));
    c->connect_timeout_ms = 3000;
    c->retry_min_ms = 100;
    c->retry_max_ms = 5000;
    c->heartbeat_ms = 1000;
    c->dead_after_ms = 5000;
}

const char *repl_phase_name(repl_phase p)
{
    switch (p) {
    case REPL_PHASE_HANDSHAKE:
        return "handshake";
    case REPL_PHASE_CHECKPOINT:
        return "checkpoint";
    case REPL_PHASE_STREAMING:
        return "streaming";
    }
    return "unknown";
}
