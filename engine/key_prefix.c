/*
 * The prefix extractor of the idx_key family: topic id (4 bytes) then the key
 * up to and including its 0x00 terminator. Entries of one key in one topic
 * share it, so a key lookup is a prefix scan with a bloom filter in front.
 * The name is recorded in table files: keep it if the layout is kept.
 */
#include <string.h>

#include "internal.h"

static const char *prefix_end(const char *key, size_t len)
{
    if (len <= 4)
        return NULL;
    return memchr(key + 4, 0, len - 4);
}

static char *transform(void *state, const char *key, size_t len, size_t *dst_len)
{
    const char *end = prefix_end(key, len);
    *dst_len = end ? (size_t)(end - key) + 1 : len;
    return (char *)key;
}

static unsigned char in_domain(void *state, const char *key, size_t len)
{
    return prefix_end(key, len) != NULL;
}

static unsigned char in_range(void *state, const char *key, size_t len) { return 0; }

static const char *name(void *state) { return "lsmq.idx_key.topic_key"; }

static void destroy(void *state) {}

rocksdb_slicetransform_t *key_index_prefix_create(void)
{
    return rocksdb_slicetransform_create(NULL, destroy, transform, in_domain, in_range, name);
}
