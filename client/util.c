/*
 * Small helpers for the whole library: strings, the error slots behind each
 * object's last error (lsmq_producer_last_error, ...), logging, local
 * address discovery and name checks. Allocation, clocks and buffers are
 * protocol/'s (alloc.h, clock.h, buf.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client_internal.h"

/* ------------------------------------------------------------------ */
/* Strings                                                             */
/* ------------------------------------------------------------------ */

void lsmq__strlcpy(char *dst, const char *src, size_t n)
{
    size_t len = strlen(src);

    if (n == 0)
        return;
    if (len >= n)
        len = n - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* ------------------------------------------------------------------ */
/* Last error                                                          */
/* ------------------------------------------------------------------ */

void lsmq__err_init(lsmq_errslot *e, pthread_mutex_t *lock)
{
    e->lock = lock;
    e->code = -1;
    e->text[0] = '\0';
}

void lsmq__error(lsmq_errslot *e, int broker_code, const char *fmt, ...)
{
    char text[sizeof e->text];
    va_list ap;

    if (e == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (e->lock)
        pthread_mutex_lock(e->lock);
    e->code = broker_code;
    memcpy(e->text, text, sizeof text);
    if (e->lock)
        pthread_mutex_unlock(e->lock);
}

int lsmq__err_copy(lsmq_errslot *e, char *buf, size_t cap)
{
    int code;

    if (e->lock)
        pthread_mutex_lock(e->lock);
    code = e->code;
    if (buf && cap > 0)
        lsmq__strlcpy(buf, e->text[0] ? e->text : "no error", cap);
    if (e->lock)
        pthread_mutex_unlock(e->lock);
    return code;
}

int lsmq__broker_error(lsmq_errslot *e, const proto_cmd *resp, const char *what)
{
    int code = resp->code;

    lsmq__error(e, code, "%s: response code %d%s%s", what, code, resp->remark ? ": " : "",
                resp->remark ? resp->remark : "");
    switch (code) {
    case RS_TOPIC_NOT_EXIST:
    case RS_QUERY_NOT_FOUND:
        return LSMQ_ENOTFOUND;
    case RS_SYSTEM_BUSY:
        return LSMQ_EBUSY;
    case RS_MESSAGE_ILLEGAL:
    case RS_INVALID_PARAMETER:
        return LSMQ_EINVAL;
    default:
        return LSMQ_EIO;
    }
}

/* ------------------------------------------------------------------ */
/* Logging                                                             */
/* ------------------------------------------------------------------ */

/* The library's lines go through protocol's logger (log.h), whose levels
 * are the same numbers as enum lsmq_log_level. */
_Static_assert((int)LSMQ_LOG_ERROR == (int)PROTO_LOG_ERROR && (int)LSMQ_LOG_DEBUG == (int)PROTO_LOG_DEBUG,
               "liblsmq's log levels are protocol's");

void lsmq_set_log(lsmq_log_fn *fn, void *arg, int level)
{
    proto_log_set_sink(fn, arg);
    proto_log_set_level(level);
}

/* ------------------------------------------------------------------ */
/* Identity                                                            */
/* ------------------------------------------------------------------ */

void lsmq__local_ip4(uint8_t ip[4])
{
    struct ifaddrs *all = NULL, *it;

    ip[0] = 127, ip[1] = 0, ip[2] = 0, ip[3] = 1;
    if (getifaddrs(&all) != 0)
        return;
    for (it = all; it; it = it->ifa_next) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)it->ifa_addr;

        if (!sin || sin->sin_family != AF_INET || !(it->ifa_flags & IFF_UP) ||
            (it->ifa_flags & IFF_LOOPBACK))
            continue;
        memcpy(ip, &sin->sin_addr, 4);
        break;
    }
    freeifaddrs(all);
}

int lsmq__valid_name(const char *name, size_t max)
{
    size_t n;

    if (name == NULL || (n = strlen(name)) == 0 || n > max)
        return 0;
    for (; *name; name++) {
        char ch = *name;

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '%' || ch == '|' || ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

void lsmq__default_instance(char *out, size_t n)
{
    static atomic_uint counter;

    /* Unique per object so several clients of one process get distinct ids. */
    snprintf(out, n, "%d#%u", (int)getpid(), atomic_fetch_add(&counter, 1) + 1);
}
