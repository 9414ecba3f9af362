/*
 * UTF-8 as the protocol needs it: the one decoder and the one validity
 * check of the tree.
 *
 * Peers send bytes that Java turns into Strings with its UTF-8 decoder in
 * REPLACE mode, so wherever lsmq must agree with Java about text (the tag
 * hash, re-encoding a header as JSON) it decodes the same way: each
 * malformed piece becomes one U+FFFD, and the piece is as long as Java's
 * decoder makes it.
 */
#ifndef LSMQ_PROTO_UTF8_H
#define LSMQ_PROTO_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Returned in *cp for a malformed piece; Java shows it as U+FFFD. */
#define PROTO_UTF8_BAD 0xFFFFFFFFu
#define PROTO_UTF8_REPLACEMENT 0xFFFDu

/* Is s[0..len) well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF)? */
int proto_utf8_valid(const void *s, size_t len);

/*
 * Decode the code point at s[0..len) (len >= 1). Returns the number of bytes
 * consumed (>= 1) and sets *cp to the code point, or to PROTO_UTF8_BAD for a
 * malformed piece.
 *
 * A malformed piece is the longest prefix that could still have begun a
 * valid sequence (Unicode's "maximal subpart", which Java's decoder follows
 * since JDK 8), with one exception copied from Java: ED followed by A0..BF,
 * the start of an encoded surrogate, is replaced as a two-byte piece even
 * though ED A0 can begin no valid sequence.
 */
static inline size_t proto_utf8_decode(const uint8_t *s, size_t len, uint32_t *cp)
{
    uint8_t b = s[0], lo = 0x80, hi = 0xBF; /* bounds for the second byte */
    uint32_t c;
    size_t need, i;

    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    if (b >= 0xC2 && b <= 0xDF) {
        need = 1;
        c = b & 0x1Fu;
    } else if (b >= 0xE0 && b <= 0xEF) {
        need = 2;
        c = b & 0x0Fu;
        if (b == 0xE0)
            lo = 0xA0; /* overlong below */
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 3;
        c = b & 0x07u;
        if (b == 0xF0)
            lo = 0x90; /* overlong below */
        if (b == 0xF4)
            hi = 0x8F; /* beyond U+10FFFF above */
    } else {
        *cp = PROTO_UTF8_BAD; /* C0, C1, F5..FF or a stray continuation byte */
        return 1;
    }
    for (i = 1; i <= need; i++) {
        if (i >= len || s[i] < lo || s[i] > hi) {
            *cp = PROTO_UTF8_BAD;
            return i;
        }
        if (b == 0xED && i == 1 && s[i] >= 0xA0) {
            *cp = PROTO_UTF8_BAD; /* a surrogate: Java drops ED and this byte together */
            return 2;
        }
        c = c << 6 | (s[i] & 0x3Fu);
        lo = 0x80;
        hi = 0xBF;
    }
    *cp = c;
    return need + 1;
}

#endif
