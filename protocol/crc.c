/*
 * BODYCRC of a stored message (REMOTING.md §4.3): the IEEE CRC-32 that
 * java.util.zip.CRC32 computes, with the top bit cleared because Java stores
 * it in a signed int and RocketMQ masks it to stay non-negative.
 */
#include "record.h"

#include <zlib.h>

uint32_t proto_body_crc(const void *body, size_t len)
{
    const Bytef *p = body;
    uLong crc = crc32(0L, Z_NULL, 0);

    /* zlib takes a uInt length; feed bodies over 4 GiB in slices. */
    while (len > 0) {
        uInt n = len > 0x40000000u ? 0x40000000u : (uInt)len;
        crc = crc32(crc, p, n);
        p += n;
        len -= n;
    }
    return (uint32_t)crc & 0x7FFFFFFFu;
}
