/* zlib bodies (compress.h). */
#include "compress.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "errors.h"
#include "record.h"

#define COMPRESSION_TYPE(flag) (((flag) & 0x700) >> 8)
#define COMPRESSION_ZLIB 3

int proto_sysflag_zlib(int32_t sys_flag)
{
    int type = COMPRESSION_TYPE(sys_flag);

    return (sys_flag & PROTO_SYSFLAG_COMPRESSED) && (type == 0 || type == COMPRESSION_ZLIB);
}

int proto_deflate(const void *in, size_t len, int level, uint8_t **out, size_t *out_len)
{
    uLongf cap;
    uint8_t *buf;
    int rc;

    if (len > UINT_MAX / 2)
        return LSMQ_ETOOBIG;
    cap = compressBound((uLong)len);
    if ((buf = malloc(cap)) == NULL)
        return LSMQ_ENOMEM;
    rc = compress2(buf, &cap, in, (uLong)len, level);
    if (rc != Z_OK) {
        free(buf);
        return rc == Z_MEM_ERROR ? LSMQ_ENOMEM : LSMQ_EINVAL;
    }
    *out = buf;
    *out_len = cap;
    return 0;
}

int proto_inflate(const void *in, size_t len, size_t max_out, uint8_t **out, size_t *out_len)
{
    /* One byte past max_out is room enough to tell "too big" from "just fits". */
    size_t limit = max_out < SIZE_MAX ? max_out + 1 : max_out;
    size_t cap = len <= (SIZE_MAX - 64) / 4 ? len * 4 + 64 : limit, used = 0;
    uint8_t *buf, *grown;
    z_stream zs;
    int rc;

    *out = NULL;
    *out_len = 0;
    if (len > UINT_MAX)
        return LSMQ_ETOOBIG;
    if (cap > limit)
        cap = limit;
    memset(&zs, 0, sizeof zs);
    if (inflateInit(&zs) != Z_OK)
        return LSMQ_ENOMEM;
    if ((buf = malloc(cap)) == NULL) {
        inflateEnd(&zs);
        return LSMQ_ENOMEM;
    }
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    do {
        if (used == cap) {
            if (cap >= limit)
                break;
            cap = cap > limit / 2 ? limit : cap * 2;
            if ((grown = realloc(buf, cap)) == NULL) {
                rc = Z_MEM_ERROR;
                break;
            }
            buf = grown;
        }
        zs.next_out = buf + used;
        zs.avail_out = cap - used > UINT_MAX ? UINT_MAX : (uInt)(cap - used);
        rc = inflate(&zs, Z_NO_FLUSH);
        used = (size_t)(zs.next_out - buf);
        /* Z_BUF_ERROR with room left: the input ended before the stream did. */
    } while (rc == Z_OK || (rc == Z_BUF_ERROR && used == cap));
    inflateEnd(&zs);
    if (rc == Z_STREAM_END && used <= max_out) {
        *out = buf;
        *out_len = used;
        return 0;
    }
    free(buf);
    if (used > max_out)
        return LSMQ_ETOOBIG;
    return rc == Z_MEM_ERROR ? LSMQ_ENOMEM : LSMQ_ECORRUPT;
}
