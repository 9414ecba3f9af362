/*
 * Big-endian writing and bounds-checked reading for the controller's
 * encodings (command.c, snapshot.c). Internal, header-only.
 *
 * The writer grows a malloc'ed buffer (sizes are ours: small commands, a
 * state of bounded groups), aborting on out of memory. The reader never
 * reads past its end: once a read fails, `bad` stays set and every later
 * read returns zeros, so a decoder checks once at the end.
 */
#ifndef LSMQ_CONTROLLER_BYTES_H
#define LSMQ_CONTROLLER_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"

typedef struct ctl_wbuf {
    uint8_t *data;
    size_t len, cap;
} ctl_wbuf;

static inline void ctl_w_bytes(ctl_wbuf *w, const void *p, size_t n)
{
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 64;
        while (cap < w->len + n)
            cap *= 2;
        w->data = proto_xrealloc(w->data, cap);
        w->cap = cap;
    }
    if (n)
        memcpy(w->data + w->len, p, n);
    w->len += n;
}

static inline void ctl_w_u8(ctl_wbuf *w, uint8_t v)
{
    ctl_w_bytes(w, &v, 1);
}

static inline void ctl_w_u16(ctl_wbuf *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    ctl_w_bytes(w, b, 2);
}

static inline void ctl_w_u32(ctl_wbuf *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    ctl_w_bytes(w, b, 4);
}

static inline void ctl_w_u64(ctl_wbuf *w, uint64_t v)
{
    ctl_w_u32(w, (uint32_t)(v >> 32));
    ctl_w_u32(w, (uint32_t)v);
}

/* A string as u16 length + bytes (no NUL). */
static inline void ctl_w_str(ctl_wbuf *w, const char *s)
{
    size_t n = strlen(s);
    ctl_w_u16(w, (uint16_t)n);
    ctl_w_bytes(w, s, n);
}

typedef struct ctl_rbuf {
    const uint8_t *p;
    size_t left;
    bool bad;
} ctl_rbuf;

static inline const uint8_t *ctl_r_take(ctl_rbuf *r, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *at = r->p;
    r->p += n;
    r->left -= n;
    return at;
}

static inline uint8_t ctl_r_u8(ctl_rbuf *r)
{
    const uint8_t *b = ctl_r_take(r, 1);
    return b ? b[0] : 0;
}

static inline uint16_t ctl_r_u16(ctl_rbuf *r)
{
    const uint8_t *b = ctl_r_take(r, 2);
    return b ? (uint16_t)(b[0] << 8 | b[1]) : 0;
}

static inline uint32_t ctl_r_u32(ctl_rbuf *r)
{
    const uint8_t *b = ctl_r_take(r, 4);
    return b ? (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3] : 0;
}

static inline uint64_t ctl_r_u64(ctl_rbuf *r)
{
    uint64_t hi = ctl_r_u32(r);
    return hi << 32 | ctl_r_u32(r);
}

/* A string of 1..max bytes without NUL into out[max + 1]; else bad. */
static inline void ctl_r_str(ctl_rbuf *r, char *out, size_t max)
{
    uint16_t n = ctl_r_u16(r);
    const uint8_t *b = n == 0 || n > max ? NULL : ctl_r_take(r, n);
    if (!b || memchr(b, 0, n)) {
        r->bad = true;
        out[0] = '\0';
        return;
    }
    memcpy(out, b, n);
    out[n] = '\0';
}

#endif
