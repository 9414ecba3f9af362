/*
 * Message body compression (REMOTING.md §4.4): zlib streams (RFC 1950),
 * what Java's Deflater/Inflater and every other client write and read.
 * Producers compress; consumers, the admin tools and mqdump inflate, and
 * the name server inflates compressed RegisterBrokerBody texts.
 *
 * Conventions: input is pointer + length; output is a new malloc'ed buffer
 * the caller frees. Inflated sizes come from the peer, so inflating is
 * capped and fails cleanly (no abort) when memory runs out. Pure, any thread.
 */
#ifndef LSMQ_PROTO_COMPRESS_H
#define LSMQ_PROTO_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

/*
 * Does a stored message's sysFlag say its body is a zlib stream? Bits 8-10
 * hold the compression type: 0 (clients before 5.x) and 3 are zlib; LZ4
 * and ZSTD bodies are left as they are.
 */
int proto_sysflag_zlib(int32_t sys_flag);

/* Compress at level (Java's default is 5). 0, LSMQ_ETOOBIG or LSMQ_ENOMEM. */
int proto_deflate(const void *in, size_t len, int level, uint8_t **out, size_t *out_len);

/*
 * Inflate a whole zlib stream of at most max_out bytes. Returns 0,
 * LSMQ_ETOOBIG (more than max_out), LSMQ_ECORRUPT (not zlib, or cut short)
 * or LSMQ_ENOMEM.
 */
int proto_inflate(const void *in, size_t len, size_t max_out, uint8_t **out, size_t *out_len);

#endif
