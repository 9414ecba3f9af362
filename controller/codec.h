/*
 * The controller's two encodings: a command (a raft log entry) and the
 * whole state (a raft snapshot). Big-endian, strings as u16 length + bytes.
 *
 * Command, version 2:
 *   u8 'C' | u8 version | u8 type | str name | by type:
 *     REGISTER    u64 broker_id | str addr
 *     ELECT       u64 candidate (two's complement, -1 any) | u64 expect_epoch
 *                 (UINT64_MAX: any; version 1 has no such field: any)
 *     ALTER_SYNC  u64 master_id | u64 epoch | u8 n | n x u64 id
 *     CONTROLLER_ADDR (version 2 on; name is the controller id)
 *                 u64 0 | str addr
 *   then zero bytes up to a multiple of 8: raft's TCP transport lays
 *   entries out at 8-byte boundaries and reads past one that is not.
 * State, version 2:
 *   u8 'S' | u8 version | u32 groups | per group, names ascending:
 *     str name | u64 epoch | u64 master_id (-1 none) |
 *     u8 brokers | brokers x (u64 id | str addr) | u8 n_sync | n_sync x u64 id |
 *     u64 sync_epoch (version 2; version 1 starts it at the epoch)
 *   | u8 controllers | per controller, ids ascending: str id | str addr
 *   (version 1 ends after the groups: no controller addresses)
 *
 * Raft keeps both on disk and ships them between controllers of possibly
 * different builds: any change to either layout must bump its version and
 * keep decoding the old ones (a log written by version 1 is replayed after
 * an upgrade). Decoders refuse truncated input, trailing bytes, unknown
 * magic, type or version, padding that is not zeros up to a multiple of
 * 8 (commands), counts and lengths over the limits of
 * controller.h and, for the state, groups that break ctl_sm_group_check.
 */
#ifndef LSMQ_CONTROLLER_CODEC_H
#define LSMQ_CONTROLLER_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "controller.h"
#include "sm.h"

#define CTL_CMD_VERSION 2
#define CTL_STATE_VERSION 2

/* Whether c can be encoded: a known type, NUL-terminated name (and
 * address for REGISTER) within their limits, at most CTL_BROKERS_MAX ids.
 * 0 or LSMQ_EINVAL. The rules (sm.c) judge the rest. */
int ctl_cmd_check(const ctl_cmd *c);

/* A checked command; *data is malloc'ed, the caller frees it. */
void ctl_cmd_encode(const ctl_cmd *c, uint8_t **data, size_t *len);
/* 0, LSMQ_EVERSION (a newer version) or LSMQ_ECORRUPT. */
int ctl_cmd_decode(const uint8_t *data, size_t len, ctl_cmd *c);

/* *data is malloc'ed, the caller frees it. */
void ctl_state_encode(const ctl_sm *sm, uint8_t **data, size_t *len);
/* A new state machine in *out, or LSMQ_EVERSION / LSMQ_ECORRUPT. */
int ctl_state_decode(const uint8_t *data, size_t len, ctl_sm **out);

#endif
