/* Growable NUL-terminated buffers (buf.h). */
#include "buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "record.h"

void proto_buf_reserve(proto_buf *b, size_t more)
{
    size_t want = b->len + more + 1, cap = b->cap ? b->cap : 256;

    if (want <= b->cap)
        return;
    if (want < b->len)
        proto_oom(SIZE_MAX);
    while (cap < want)
        cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    b->p = proto_xrealloc(b->p, cap);
    b->cap = cap;
}

void proto_buf_put(proto_buf *b, const void *s, size_t n)
{
    proto_buf_reserve(b, n);
    if (n > 0)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void proto_buf_puts(proto_buf *b, const char *s)
{
    proto_buf_put(b, s, strlen(s));
}

void proto_buf_put_u8(proto_buf *b, uint8_t v)
{
    proto_buf_put(b, &v, 1);
}

void proto_buf_put_u16(proto_buf *b, uint16_t v)
{
    uint8_t be[2];

    proto_put_u16(be, v);
    proto_buf_put(b, be, sizeof be);
}

void proto_buf_put_u32(proto_buf *b, uint32_t v)
{
    uint8_t be[4];

    proto_put_u32(be, v);
    proto_buf_put(b, be, sizeof be);
}

void proto_buf_put_u64(proto_buf *b, uint64_t v)
{
    uint8_t be[8];

    proto_put_u64(be, v);
    proto_buf_put(b, be, sizeof be);
}

void proto_buf_put_str16(proto_buf *b, const char *s)
{
    size_t n = strlen(s);

    if (n > UINT16_MAX)
        abort(); /* the length would not fit its u16: a bug, not a condition */
    proto_buf_put_u16(b, (uint16_t)n);
    proto_buf_put(b, s, n);
}

void proto_buf_printf(proto_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort(); /* a bad format string: a bug, not a condition */
    proto_buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *proto_buf_take(proto_buf *b)
{
    char *p;

    proto_buf_reserve(b, 0);
    b->p[b->len] = '\0';
    p = b->p;
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

void proto_buf_free(proto_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
