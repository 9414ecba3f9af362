/* The UTF-8 validity check (utf8.h). */
#include "utf8.h"

#include <string.h>

int proto_utf8_valid(const void *str, size_t len)
{
    const uint8_t *s = str;
    size_t i = 0;
    uint32_t cp;

    while (i < len) {
        /* Eight ASCII bytes at a time: most text is plain ASCII. */
        while (i + 8 <= len) {
            uint64_t w;

            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull)
                break;
            i += 8;
        }
        if (i >= len)
            break;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        i += proto_utf8_decode(s + i, len - i, &cp);
        if (cp == PROTO_UTF8_BAD)
            return 0;
    }
    return 1;
}
