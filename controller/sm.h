/*
 * The controller's state machine: every broker group's registry, master,
 * epoch and sync state set, and the rules of the commands that change them
 * (the list is at the top of controller.h).
 *
 * Deterministic and pure: no I/O, no clock, no randomness; the same
 * commands in the same order give the same state on every controller.
 * Not thread-safe: the node serialises calls.
 */
#ifndef LSMQ_CONTROLLER_SM_H
#define LSMQ_CONTROLLER_SM_H

#include "controller.h"

typedef struct ctl_sm ctl_sm;

ctl_sm *ctl_sm_create(void);
void ctl_sm_destroy(ctl_sm *sm);

/*
 * Apply one command. Returns 0 or the refusal (controller.h); a refused
 * command changes nothing. res (may be NULL) gets the group's epoch and
 * master after it; its other fields are left alone.
 */
int ctl_sm_apply(ctl_sm *sm, const ctl_cmd *c, ctl_result *res);

/* A group by name, NULL if none; valid until the next apply, load or destroy. */
const ctl_group *ctl_sm_find(const ctl_sm *sm, const char *name);

/* The groups in ascending name order (bytewise), for the snapshot. */
size_t ctl_sm_count(const ctl_sm *sm);
const ctl_group *ctl_sm_at(const ctl_sm *sm, size_t i);

/*
 * Add a group as a snapshot holds it, master_addr left to be filled from
 * the registry. Names must come in strictly ascending order and the group
 * must keep the invariants (ctl_sm_group_check); else LSMQ_ECORRUPT and sm
 * is unchanged.
 */
int ctl_sm_load(ctl_sm *sm, const ctl_group *g);

/* The remoting address controller `id` announced, NULL if none; valid
 * until the next apply, load or destroy. */
const char *ctl_sm_controller_addr(const ctl_sm *sm, const char *id);
/* The announced addresses in ascending id order, for the snapshot. */
size_t ctl_sm_controller_count(const ctl_sm *sm);
void ctl_sm_controller_at(const ctl_sm *sm, size_t i, const char **id, const char **addr);
/* Add one as a snapshot holds it: ids strictly ascending, else LSMQ_ECORRUPT. */
int ctl_sm_load_controller(ctl_sm *sm, const char *id, const char *addr);

/*
 * The invariants of a group: a name, at most CTL_BROKERS_MAX brokers with
 * distinct ids >= 0 and addresses; no master, epoch 0 and an empty sync
 * state set together, or a registered master inside an ascending set of
 * registered ids. 0 or LSMQ_ECORRUPT.
 */
int ctl_sm_group_check(const ctl_group *g);

#endif
