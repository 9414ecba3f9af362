/*
 * The controller: who is master of each broker group (brokerName), in which
 * epoch, and which replicas are in its sync state set, replicated over three
 * controllers with raft (canonical raft, libraft).
 *
 * Two layers:
 *   - commands (ctl_cmd) and the copy of one group's state (ctl_group):
 *     plain values, fixed-size, no pointers, so nobody wonders who frees;
 *   - the node (ctl_node): one raft member with its own thread, which
 *     replicates commands and applies them, in log order, to its state.
 *
 * Rules the state follows (controller/sm.c):
 *   - register: a broker id (>= 0) and its address join the group (created
 *     on first use); registering an id again updates its address.
 *   - elect: with no master yet and an empty sync state set, only the first
 *     broker registered may become master; otherwise only a member of the
 *     sync state set. broker_id names the candidate, or CTL_NO_BROKER for
 *     "any": the lowest id of the sync state set other than the current
 *     master. The epoch goes up by one and the sync state set becomes the
 *     new master alone.
 *   - alter sync state set: only the current master, giving the current
 *     epoch (an older one is LSMQ_ESTALE), and the new set must hold the
 *     master and registered brokers only.
 *     An elect may carry the epoch it was decided at: applied at another
 *     epoch it is LSMQ_ESTALE (a retried submit cannot elect twice).
 *   - controller address: a controller (raft id "nK") says where it serves
 *     requests (its remoting address), so followers can name the leader's.
 * Refusals: LSMQ_ENOTFOUND (no such group, or broker not registered),
 * LSMQ_EREFUSED (not allowed by the rules above), LSMQ_ESTALE,
 * LSMQ_EINVAL (malformed: negative id, duplicate ids, too many). A refused
 * command changes nothing, on every controller alike.
 *
 * Errors: int, 0 or a negative LSMQ_E* code (errors.h).
 */
#ifndef LSMQ_CONTROLLER_H
#define LSMQ_CONTROLLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CTL_NAME_MAX 127   /* bytes of a brokerName */
#define CTL_ADDR_MAX 127   /* bytes of a broker or controller address */
#define CTL_BROKERS_MAX 32 /* brokers registered in one group */
#define CTL_NO_BROKER (-1) /* "no master", "any candidate" */
#define CTL_ID_MAX 15      /* bytes of a controller id ("n0") */
#define CTL_CONTROLLERS_MAX 9 /* controllers with a known address */
#define CTL_ANY_EPOCH UINT64_MAX /* an elect that does not compare epochs */

typedef struct ctl_broker {
    int64_t id;
    char addr[CTL_ADDR_MAX + 1];
} ctl_broker;

/* One broker group's state, as a value. */
typedef struct ctl_group {
    char name[CTL_NAME_MAX + 1];
    uint64_t epoch;                   /* 0 until the first election, +1 each */
    int64_t master_id;                /* CTL_NO_BROKER before the first election */
    char master_addr[CTL_ADDR_MAX + 1]; /* "" without a master */
    size_t n_brokers;                 /* in registration order */
    ctl_broker brokers[CTL_BROKERS_MAX];
    size_t n_sync;                    /* ascending ids */
    int64_t sync[CTL_BROKERS_MAX];
    uint64_t sync_epoch;              /* +1 at each election and each set change */
} ctl_group;

typedef enum ctl_cmd_type {
    CTL_CMD_REGISTER = 1,
    CTL_CMD_ELECT = 2,
    CTL_CMD_ALTER_SYNC = 3,
    CTL_CMD_CONTROLLER_ADDR = 4, /* name: controller id, addr: its remoting address */
} ctl_cmd_type;

typedef struct ctl_cmd {
    ctl_cmd_type type;
    char name[CTL_NAME_MAX + 1];
    int64_t broker_id;           /* register: the broker; elect: the candidate or
                                  * CTL_NO_BROKER; alter: the master asking */
    char addr[CTL_ADDR_MAX + 1]; /* register, controller address */
    uint64_t epoch;              /* alter: the epoch the master holds */
    uint64_t expect_epoch;       /* elect: only at this epoch (CTL_ANY_EPOCH: any) */
    size_t n_sync;               /* alter: the new sync state set */
    int64_t sync[CTL_BROKERS_MAX];
} ctl_cmd;

/* Build a command; LSMQ_EINVAL when a name or address is empty or too long,
 * or the set too large. */
int ctl_cmd_register(ctl_cmd *c, const char *name, int64_t broker_id, const char *addr);
int ctl_cmd_elect(ctl_cmd *c, const char *name, int64_t candidate); /* any epoch */
int ctl_cmd_elect_at(ctl_cmd *c, const char *name, int64_t candidate, uint64_t expect_epoch);
/* controller_id at most CTL_ID_MAX bytes. */
int ctl_cmd_controller_addr(ctl_cmd *c, const char *controller_id, const char *addr);
int ctl_cmd_alter_sync(ctl_cmd *c, const char *name, int64_t master_id, uint64_t epoch,
                       const int64_t *ids, size_t n);

/* What a submitted command did. */
typedef struct ctl_result {
    uint64_t index;     /* raft log index of the command (0 when not submitted) */
    uint64_t epoch;     /* the group's epoch and master after it (also when refused) */
    int64_t master_id;
    char leader_id[CTL_ID_MAX + 1];     /* with LSMQ_ENOTLEADER: the leader this */
    char leader_addr[CTL_ADDR_MAX + 1]; /* node knows of, "" when none */
} ctl_result;

/* ------------------------------------------------------------------------
 * The node.
 *
 * Threads: ctl_node_start and ctl_node_stop from one thread; every other
 * call from any thread, concurrently. The node runs a libuv loop on a
 * thread of its own, which does all raft I/O (log, snapshots, TCP to the
 * peers) and applies committed commands.
 */
typedef struct ctl_node ctl_node;

typedef struct ctl_node_config {
    const char *self_id;   /* "n0" */
    const char *peers;     /* "n0=127.0.0.1:9880;n1=...;n2=..." (';' or ','),
                            * this node included; ids nK are raft ids K+1 */
    const char *store_dir; /* raft's log, metadata and snapshots; created if missing */
    unsigned election_timeout_ms;  /* 0: 1000 */
    unsigned heartbeat_timeout_ms; /* 0: 100 */
    unsigned snapshot_threshold;   /* log entries between snapshots; 0: 1024 */
    unsigned snapshot_trailing;    /* entries kept after one; 0: 128 */
} ctl_node_config;

/*
 * Start a node: open (or create and bootstrap with the peers) its store,
 * listen on its own address and join the others. Returns LSMQ_EINVAL for a
 * bad configuration, LSMQ_EIO when raft cannot start (store, port).
 */
int ctl_node_start(const ctl_node_config *cfg, ctl_node **out);

/* Leave the group, close the store, join the thread and free the node.
 * Submits still waiting return LSMQ_ECLOSED (or LSMQ_ETIMEDOUT) before it
 * frees anything; no other call may overlap or follow it. NULL is a no-op. */
void ctl_node_stop(ctl_node *n);

/*
 * Replicate cmd and wait until this node has applied it, at most timeout_ms.
 * Returns what the rules said (0 or a refusal listed at the top), or:
 * LSMQ_EINVAL (a command ctl_cmd_* would not build: unknown type, names
 * not NUL-terminated within their limits, too many ids; not submitted),
 * LSMQ_ENOTLEADER (nothing submitted; res names the leader if known),
 * LSMQ_ETIMEDOUT (no answer in time, or leadership lost before the commit:
 * the command may still be applied later), LSMQ_ECLOSED (node stopping).
 * res may be NULL.
 */
int ctl_node_submit(ctl_node *n, const ctl_cmd *cmd, int64_t timeout_ms, ctl_result *res);

/* A copy of a group's state as applied on this node; LSMQ_ENOTFOUND if none. */
int ctl_node_query(ctl_node *n, const char *name, ctl_group *out);

/* The i-th group in name order as applied here; LSMQ_ENOTFOUND past the end.
 * Groups only get added, so a walk may see one twice or miss a new one. */
int ctl_node_query_at(ctl_node *n, size_t i, ctl_group *out);

/* The remoting address a controller announced (CTL_CMD_CONTROLLER_ADDR);
 * LSMQ_ENOTFOUND if none yet. */
int ctl_node_controller_addr(ctl_node *n, const char *id, char addr[CTL_ADDR_MAX + 1]);

/* Whether this node is the raft leader (as of its loop's last turn). */
bool ctl_node_is_leader(ctl_node *n);

/* The leader this node knows of: copies its id and address, false if none.
 * Either buffer may be NULL. */
bool ctl_node_leader(ctl_node *n, char id[CTL_ID_MAX + 1], char addr[CTL_ADDR_MAX + 1]);

/* The raft index of the last command this node applied. */
uint64_t ctl_node_applied_index(ctl_node *n);

/*
 * The whole state in the snapshot encoding (controller/snapshot.c): equal
 * bytes mean equal state. *data is malloc'ed, the caller frees it.
 */
int ctl_node_state_encode(ctl_node *n, uint8_t **data, size_t *len);

#endif
