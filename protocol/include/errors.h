/*
 * lsmq error codes, shared by every library of the project.
 *
 * Conventions: functions return int, 0 on success and a negative LSMQ_E*
 * code on failure; results travel through out-parameters. The codes live in
 * a reserved range so they never collide with -errno values. "Not found" is
 * a result (LSMQ_ENOTFOUND), not a failure to log.
 */
#ifndef LSMQ_ERRORS_H
#define LSMQ_ERRORS_H

enum lsmq_err {
    LSMQ_OK = 0,
    LSMQ_EINVAL = -30000,   /* bad argument: empty name, bad queue id, ... */
    LSMQ_ETOOBIG,           /* message or name over its size limit */
    LSMQ_ECORRUPT,          /* a stored or received record does not decode */
    LSMQ_ENOTFOUND,         /* no such topic, queue, message or key */
    LSMQ_EEXISTS,           /* already exists */
    LSMQ_EBUSY,             /* writer queue full; retry later */
    LSMQ_ENOSPC,            /* disk full: appends refused, reads still work */
    LSMQ_EIO,               /* storage error other than disk full */
    LSMQ_ECLOSED,           /* the engine is shutting down */
    LSMQ_ENOMEM,            /* allocation sized by the caller failed */
    LSMQ_ELOCKED,           /* store directory in use by another process */
    LSMQ_EVERSION,          /* store written by a newer, unknown format */
    LSMQ_EREADONLY,         /* the store is a replica: it takes only its master's writes */
    LSMQ_ENOTLEADER,        /* this controller is not the raft leader; ask the one it names */
    LSMQ_ETIMEDOUT,         /* no answer in time; what was asked may still happen */
    LSMQ_ESTALE,            /* an epoch older than the current one */
    LSMQ_EREFUSED,          /* the controller's rules refuse the command (see controller.h) */
};
/* The highest code: LSMQ_EINVAL..LSMQ_ELAST are lsmq's. Add new codes above and move it. */
#define LSMQ_ELAST LSMQ_EREFUSED

/* A static, human-readable description of an LSMQ_E* code (or -errno). */
const char *lsmq_strerror(int err);

#endif
