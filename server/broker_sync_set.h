/*
 * A master's view of its sync state set in controller mode: which
 * replicas hold everything it acknowledged, so the controller may elect
 * any of them. Pure bookkeeping (no I/O, clock passed in): the controller
 * agent feeds it the committed set, the registry and its replicas' states,
 * and sends the changes it proposes (CONTROLLER_ALTER_SYNC_STATE_SET).
 *
 * The rules, which keep "every acknowledged send is on every member":
 *   - A SYNC send is acknowledged once every replica of the ack set has
 *     it: the committed members, the candidates and the members of a
 *     proposal in flight (the widest set while a change is undecided).
 *   - Joining: a streaming, in-sync replica becomes a candidate first: it
 *     enters the ack set, and only then is the master's last sequence
 *     read (broker_sync_set_arm); once the replica has acknowledged that sequence it
 *     holds every send acknowledged before it entered, and the master
 *     proposes it.
 *   - Leaving: a member that is gone, or has not caught up with what the
 *     master had written a review earlier for haMaxTimeSlaveNotCatchup,
 *     is proposed out; it stays in the ack set until the controller
 *     commits the smaller set.
 */
#ifndef LSMQ_BROKER_SYNC_SET_H
#define LSMQ_BROKER_SYNC_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker.h"

#define SSS_MAX 32

typedef struct sss_broker {
    int64_t id;
    char addr[128];
} sss_broker;

typedef struct sss_candidate {
    int64_t id;
    bool armed;             /* need_seq is set */
    uint64_t need_seq;      /* the master's last sequence once it was in the ack set */
} sss_candidate;

typedef struct sss_track {
    int64_t id;
    int64_t caught_up_ms;   /* the last review that found it caught up */
} sss_track;

typedef struct broker_sync_set {
    int64_t self_id;
    uint32_t not_catchup_ms;
    sss_broker reg[SSS_MAX];        /* the group's brokers, from the controller */
    size_t n_reg;
    int64_t set[SSS_MAX];           /* the committed set, the master included */
    size_t n_set;
    sss_candidate cand[SSS_MAX];
    size_t n_cand;
    sss_track track[SSS_MAX];
    size_t n_track;
    uint64_t prev_last_seq;         /* the master's last sequence at the previous review */
    bool proposing;                 /* an ALTER is in flight */
    int64_t proposal[SSS_MAX];
    size_t n_proposal;
} broker_sync_set;

void broker_sync_set_init(broker_sync_set *s, int64_t self_id, uint32_t not_catchup_ms);

/* The registry as the controller answers it: "1=host:port,2=host:port". */
void broker_sync_set_registry(broker_sync_set *s, const char *brokers);

/* The committed set, "1,2" (ids). Candidates that became members leave the candidates. */
void broker_sync_set_committed(broker_sync_set *s, const char *ids, int64_t now_ms);

/* Parse "1,2" into ids; returns how many (at most cap), -1 when malformed. */
int broker_sync_set_parse_ids(const char *text, int64_t *ids, size_t cap);

/*
 * One review of the replicas. Returns true and fills proposal (ids, the
 * master included) when the set should change and no proposal is in
 * flight; the caller sends it and calls sss_proposal_done.
 */
bool broker_sync_set_review(broker_sync_set *s, const broker_replica_state *reps, size_t n_reps,
                uint64_t last_seq, int64_t now_ms, int64_t *proposal, size_t *n_proposal);

/* After the ack set was applied: candidates not armed yet need what is written now. */
void broker_sync_set_arm(broker_sync_set *s, uint64_t last_seq);

/* The ALTER ended (committed or not); on success the answer's set follows (_committed). */
void broker_sync_set_proposal_done(broker_sync_set *s);

/* The replicas a SYNC send waits for, as addresses (pointers into s); how many. */
size_t broker_sync_set_ack_addrs(const broker_sync_set *s, const char **addrs, size_t cap);

/* "1,2" of the committed set, for logs. */
void broker_sync_set_format(const int64_t *ids, size_t n, char *out, size_t cap);

#endif
