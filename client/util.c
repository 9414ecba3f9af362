/*
 * Small helpers for the whole library: allocation that aborts on failure
 * (internal sizes only; sizes a caller controls are checked before), the
 * clocks, the per-thread "last error" behind lsmq_last_error(), logging,
 * local address discovery and name checks.
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
#include <time.h>
#include <unistd.h>

#include "client_internal.h"

/* ------------------------------------------------------------------ */
/* Memory                                                              */
/* ------------------------------------------------------------------ */

static void oom(size_t n)
{
    fprintf(stderr, "liblsmq: out of memory allocating %zu bytes\n", n);
    abort();
}

void *lsmq__malloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL)
        oom(n);
    return p;
}

void *lsmq__calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (p == NULL)
        oom(n * size);
    return p;
}

void *lsmq__realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    if (q == NULL)
        oom(n);
    return q;
}

char *lsmq__strdup(const char *s)
{
    return lsmq__strndup(s, strlen(s));
}

char *lsmq__strndup(const char *s, size_t n)
{
    char *p = lsmq__malloc(n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

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

void lsmq__buf_reserve(lsmq_buf *b, size_t extra)
{
    size_t want = b->len + extra, cap = b->cap ? b->cap : 256;

    if (want <= b->cap)
        return;
    while (cap < want)
        cap *= 2;
    b->p = lsmq__realloc(b->p, cap);
    b->cap = cap;
}

void lsmq__buf_put(lsmq_buf *b, const void *p, size_t n)
{
    lsmq__buf_reserve(b, n);
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

void lsmq__buf_free(lsmq_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ------------------------------------------------------------------ */
/* Clocks                                                              */
/* ------------------------------------------------------------------ */

int64_t lsmq__mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t lsmq__wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ */
/* Last error                                                          */
/* ------------------------------------------------------------------ */

static _Thread_local int last_code = -1;
static _Thread_local char last_text[512];

void lsmq__error(int broker_code, const char *fmt, ...)
{
    va_list ap;

    last_code = broker_code;
    va_start(ap, fmt);
    vsnprintf(last_text, sizeof last_text, fmt, ap);
    va_end(ap);
}

int lsmq_last_error(const char **text)
{
    if (text)
        *text = last_text[0] ? last_text : "no error";
    return last_code;
}

int lsmq__broker_error(const proto_cmd *resp, const char *what)
{
    int code = resp->code;

    lsmq__error(code, "%s: response code %d%s%s", what, code, resp->remark ? ": " : "",
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

static lsmq_log_fn *log_fn;
static void *log_arg;
static atomic_int log_level = -1; /* -1: not read from the environment yet */

void lsmq_set_log(lsmq_log_fn *fn, void *arg, int level)
{
    log_fn = fn;
    log_arg = arg;
    atomic_store(&log_level, level);
}

static int current_level(void)
{
    int lv = atomic_load(&log_level);

    if (lv < 0) {
        const char *env = getenv("LSMQ_LOG_LEVEL");

        lv = env && *env >= '0' && *env <= '3' ? *env - '0' : LSMQ_LOG_WARN;
        atomic_store(&log_level, lv);
    }
    return lv;
}

void lsmq__log(int level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    char line[1024];
    va_list ap;

    if (level > current_level())
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (log_fn)
        log_fn(level, line, log_arg);
    else
        fprintf(stderr, "liblsmq %s: %s\n", names[level & 3], line);
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
