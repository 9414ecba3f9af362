/*
 * JSON text the name server writes by hand. jansson only has string keys,
 * and route data needs fastjson's shapes: brokerAddrs keyed by bare
 * numbers ({0:"ip:port"}) for old clients, quoted ({"0":"ip:port"}) for
 * standard-JSON ones. Output is compact with keys in fastjson's sorted
 * order: the Go client splits brokerAddrs by hand and breaks on whitespace.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "namesrv_internal.h"

static void reserve(ns_buf *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    b->p = realloc(b->p, cap);
    if (!b->p)
        abort();
    b->cap = cap;
}

void ns__buf_put(ns_buf *b, const char *s, size_t n)
{
    reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void ns__buf_puts(ns_buf *b, const char *s) { ns__buf_put(b, s, strlen(s)); }

void ns__buf_printf(ns_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* One UTF-8 sequence at s (strict: no overlongs, surrogates or > U+10FFFF).
 * Returns its length and the code point, or 0 when s does not start one. */
static size_t utf8_next(const unsigned char *s, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2, v = c & 0x1Fu, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3, v = c & 0x0Fu, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4, v = c & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0u) != 0x80u)
            return 0; /* also stops at the terminating NUL */
        v = v << 6 | (s[i] & 0x3Fu);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return n;
}

void ns__buf_str(ns_buf *b, const char *str, bool ascii)
{
    const unsigned char *s = (const unsigned char *)str;
    ns__buf_put(b, "\"", 1);
    while (*s) {
        unsigned char c = *s;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            ns__buf_put(b, esc, 2);
            s++;
        } else if (c < 0x20) {
            ns__buf_printf(b, "\\u%04x", c);
            s++;
        } else if (c < 0x80) {
            ns__buf_put(b, (const char *)s, 1);
            s++;
        } else {
            uint32_t cp = 0;
            size_t n = utf8_next(s, &cp);
            if (n == 0) {
                ns__buf_puts(b, "\\ufffd"); /* what Java's decoder would have made of it */
                s++;
            } else if (!ascii) {
                ns__buf_put(b, (const char *)s, n);
                s += n;
            } else if (cp < 0x10000) {
                ns__buf_printf(b, "\\u%04x", (unsigned)cp);
                s += n;
            } else {
                cp -= 0x10000;
                ns__buf_printf(b, "\\u%04x\\u%04x", (unsigned)(0xD800 + (cp >> 10)),
                               (unsigned)(0xDC00 + (cp & 0x3FF)));
                s += n;
            }
        }
    }
    ns__buf_put(b, "\"", 1);
}

void ns__buf_broker_data(ns_buf *b, const ns_broker *bd, bool standard)
{
    /* Fields in fastjson's alphabetical order; 4.x-compatible (no zoneName). */
    ns__buf_puts(b, "{\"brokerAddrs\":{");
    for (size_t i = 0; i < bd->n_addrs; i++) {
        if (i)
            ns__buf_put(b, ",", 1);
        if (standard)
            ns__buf_printf(b, "\"%" PRId64 "\":", bd->addrs[i].id);
        else
            ns__buf_printf(b, "%" PRId64 ":", bd->addrs[i].id);
        ns__buf_str(b, bd->addrs[i].addr, standard);
    }
    ns__buf_puts(b, "},\"brokerName\":");
    ns__buf_str(b, bd->name, standard);
    ns__buf_puts(b, ",\"cluster\":");
    ns__buf_str(b, bd->cluster, standard);
    ns__buf_puts(b, ",\"enableActingMaster\":false}");
}

void ns__buf_version(ns_buf *b, const ns_version *v)
{
    if (v->has_state)
        ns__buf_printf(b, "{\"counter\":%" PRId64 ",\"stateVersion\":%" PRId64
                          ",\"timestamp\":%" PRId64 "}",
                       v->counter, v->state_version, v->timestamp);
    else
        ns__buf_printf(b, "{\"counter\":%" PRId64 ",\"timestamp\":%" PRId64 "}", v->counter,
                       v->timestamp);
}
