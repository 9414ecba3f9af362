/*
 * Body compression (REMOTING.md §4.4): zlib streams (RFC 1950), what Java's
 * Deflater/Inflater and every other client produce and read. Producers
 * compress at level 5 (Java's compressLevel default); consumers inflate
 * with a size cap so a hostile body cannot exhaust memory.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "client_internal.h"

int lsmq__deflate(const void *in, size_t len, int level, uint8_t **out, size_t *out_len)
{
    uLongf cap;
    uint8_t *buf;
    int rc;

    if (len > UINT_MAX / 2)
        return LSMQ_ETOOBIG;
    cap = compressBound((uLong)len);
    buf = lsmq__malloc(cap);
    rc = compress2(buf, &cap, in, (uLong)len, level);
    if (rc != Z_OK) {
        free(buf);
        return rc == Z_MEM_ERROR ? LSMQ_ENOMEM : LSMQ_EINVAL;
    }
    *out = buf;
    *out_len = cap;
    return 0;
}

int lsmq__inflate(const void *in, size_t len, size_t max_out, uint8_t **out, size_t *out_len)
{
    z_stream zs;
    lsmq_buf b = {0};
    int rc = Z_OK, too_big = 0;

    *out = NULL;
    *out_len = 0;
    if (len > UINT_MAX)
        return LSMQ_ETOOBIG;
    memset(&zs, 0, sizeof zs);
    if (inflateInit(&zs) != Z_OK)
        return LSMQ_ENOMEM;
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    lsmq__buf_reserve(&b, len * 4 + 64);
    do {
        if (b.cap - b.len < 4096) {
            if (b.cap >= max_out) {
                too_big = 1;
                break;
            }
            lsmq__buf_reserve(&b, b.cap); /* doubles */
        }
        zs.next_out = b.p + b.len;
        zs.avail_out = (uInt)(b.cap - b.len);
        rc = inflate(&zs, Z_NO_FLUSH);
        b.len = b.cap - zs.avail_out;
        if (b.len > max_out) {
            too_big = 1;
            break;
        }
        /* Z_BUF_ERROR with room left: the input ended before the stream did. */
    } while (rc == Z_OK);
    inflateEnd(&zs);
    if (too_big || rc != Z_STREAM_END) {
        lsmq__buf_free(&b);
        return too_big ? LSMQ_ETOOBIG : LSMQ_ECORRUPT;
    }
    *out = b.p;
    *out_len = b.len;
    return 0;
}
