/*
 * A growable byte buffer, kept NUL-terminated so that text built in it is a
 * C string at every step: JSON bodies written by hand, record lists, frames.
 *
 * Conventions: zero-initialise (proto_buf b = {0}); growth aborts on
 * out-of-memory (alloc.h), since the sizes are ours. p is malloc'ed and
 * belongs to the buffer until proto_buf_free, or to whoever takes it (then
 * reset the buffer to {0}). Not thread-safe: one owner at a time.
 */
#ifndef LSMQ_PROTO_BUF_H
#define LSMQ_PROTO_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct proto_buf {
    char *p;      /* NULL until the first byte; then p[len] == '\0' */
    size_t len;
    size_t cap;
} proto_buf;

/* Room for `more` bytes after len (and the NUL). */
void proto_buf_reserve(proto_buf *b, size_t more);
void proto_buf_put(proto_buf *b, const void *s, size_t n);
void proto_buf_puts(proto_buf *b, const char *s);
/* Integers big-endian, for binary encodings (read back with byte_reader.h). */
void proto_buf_put_u8(proto_buf *b, uint8_t v);
void proto_buf_put_u16(proto_buf *b, uint16_t v);
void proto_buf_put_u32(proto_buf *b, uint32_t v);
void proto_buf_put_u64(proto_buf *b, uint64_t v);
/* s as u16 length + its bytes, no NUL (proto_rd_str16 reads it back); s
 * must be shorter than 64 KiB, a longer one aborts (a bug of the caller). */
void proto_buf_put_str16(proto_buf *b, const char *s);
void proto_buf_printf(proto_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The text, never NULL ("" for an empty buffer); the buffer is reset and the caller frees it. */
char *proto_buf_take(proto_buf *b);
void proto_buf_free(proto_buf *b);

#endif
