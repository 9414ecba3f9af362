#include "errors.h"

#include <string.h>

const char *lsmq_strerror(int err)
{
    switch (err) {
    case LSMQ_OK: return "success";
    case LSMQ_EINVAL: return "invalid argument";
    case LSMQ_ETOOBIG: return "too big";
    case LSMQ_ECORRUPT: return "corrupt record";
    case LSMQ_ENOTFOUND: return "not found";
    case LSMQ_EEXISTS: return "already exists";
    case LSMQ_EBUSY: return "store busy, writer queue full";
    case LSMQ_ENOSPC: return "disk full";
    case LSMQ_EIO: return "storage I/O error";
    case LSMQ_ECLOSED: return "store closed";
    case LSMQ_ENOMEM: return "out of memory";
    case LSMQ_ELOCKED: return "store directory locked by another process";
    case LSMQ_EVERSION: return "unsupported store format version";
    case LSMQ_EREADONLY: return "the store is a replica";
    case LSMQ_ENOTLEADER: return "not the controller leader";
    case LSMQ_ETIMEDOUT: return "timed out, outcome unknown";
    case LSMQ_ESTALE: return "stale epoch";
    case LSMQ_EREFUSED: return "refused by the controller";
    }
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown error";
}
