/* Allocation that aborts on failure (alloc.h). */
#include "alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Noreturn void proto_oom(size_t n)
{
    fprintf(stderr, "lsmq: out of memory (%zu bytes)\n", n);
    abort();
}

void *proto_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL)
        proto_oom(n);
    return p;
}

void *proto_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (p == NULL)
        proto_oom(n * size);
    return p;
}

void *proto_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    if (q == NULL)
        proto_oom(n);
    return q;
}

char *proto_xstrdup(const char *s)
{
    return proto_xstrndup(s, strlen(s));
}

char *proto_xstrndup(const char *s, size_t n)
{
    char *p = proto_xmalloc(n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *proto_xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *out = NULL;

    va_start(ap, fmt);
    int n = vasprintf(&out, fmt, ap);
    va_end(ap);
    if (n < 0)
        proto_oom(0);
    return out;
}
