/*
 * The prefix of the idx_key family: topic id (4 bytes) then the key up to
 * and including its 0x00 terminator. Entries of one key in one topic share
 * it, so a key lookup is a prefix scan with a bloom filter in front. The
 * name is recorded in table files: keep it if the layout is kept.
 */
#include <string.h>

#include "index_internal.h"

static size_t key_prefix_len(const uint8_t *key, size_t len)
{
    if (len <= 4)
        return 0;
    const uint8_t *nul = memchr(key + 4, 0, len - 4);
    return nul ? (size_t)(nul - key) + 1 : 0;
}

const engine_prefix_extractor index__key_prefix = {
    .name = "lsmq.idx_key.topic_key",
    .prefix_len = key_prefix_len,
};
