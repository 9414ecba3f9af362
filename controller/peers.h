/*
 * The controllers of a group, as configured: "n0=host:port;n1=host:port;..."
 * (';' or ',' between entries). An id is "n" and a number K; its raft id
 * is K + 1, since raft reserves 0.
 */
#ifndef LSMQ_CONTROLLER_PEERS_H
#define LSMQ_CONTROLLER_PEERS_H

#include <stddef.h>
#include <stdint.h>

#include "controller.h"

#define CTL_PEERS_MAX 9

typedef struct ctl_peer {
    char id[CTL_ID_MAX + 1];
    uint64_t raft_id;
    char addr[CTL_ADDR_MAX + 1];
} ctl_peer;

/*
 * Parse s into out[CTL_PEERS_MAX]. LSMQ_EINVAL (with one log line) for an
 * empty list, a malformed entry or id, an address without host or port,
 * or an id or address given twice.
 */
int ctl_peers_parse(const char *s, ctl_peer *out, size_t *n);

/* The peer with that id or raft id, NULL if none. */
const ctl_peer *ctl_peers_by_id(const ctl_peer *p, size_t n, const char *id);
const ctl_peer *ctl_peers_by_raft_id(const ctl_peer *p, size_t n, uint64_t raft_id);

#endif
