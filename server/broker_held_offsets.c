/*
 * Consumer offsets a replica holds in memory (broker_internal.h says why).
 *
 * Each entry remembers, beside the offset, what the store held for that
 * queue when the offset was committed. While the store still holds that,
 * the master has not heard from the consumer since and the held offset is
 * the newer word; once the master's log brings another value, the master
 * is back in charge and the entry goes.
 *
 * Keyed "group\ntopic\nqueueId"; loop thread only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>

#include "alloc.h"
#include "broker_internal.h"

typedef struct held {
    UT_hash_handle hh;
    uint64_t offset;
    uint64_t stored;            /* the store's value when held; UINT64_MAX: none */
    uint32_t queue_id;
    char *group, *topic;        /* NUL-terminated copies, after the key */
    char key[];
} held;

struct broker_held_offsets {
    held *map;
};

broker_held_offsets *broker_held_offsets_new(void)
{
    return proto_xcalloc(1, sizeof(broker_held_offsets));
}

static void held_drop(broker_held_offsets *h, held *e)
{
    HASH_DEL(h->map, e);
    free(e);
}

void broker_held_offsets_free(broker_held_offsets *h)
{
    if (!h)
        return;
    held *e, *tmp;
    HASH_ITER(hh, h->map, e, tmp)
        held_drop(h, e);
    free(h);
}

/* The key in buf; its length, or 0 when it does not fit. */
static size_t make_key(char *buf, size_t cap, const char *group, const char *topic,
                       uint32_t queue_id)
{
    int n = snprintf(buf, cap, "%s\n%s\n%" PRIu32, group, topic, queue_id);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

#define KEY_CAP 512

void broker_held_offset_set(broker_held_offsets *h, const char *group, const char *topic,
                            uint32_t queue_id, uint64_t offset, uint64_t stored)
{
    char key[KEY_CAP];
    size_t len = make_key(key, sizeof key, group, topic, queue_id);
    if (len == 0)
        return; /* names over the protocol's limits are refused before this */
    held *e = NULL;
    HASH_FIND(hh, h->map, key, len, e);
    if (!e) {
        size_t glen = strlen(group) + 1, tlen = strlen(topic) + 1;
        e = proto_xcalloc(1, sizeof *e + len + 1 + glen + tlen);
        memcpy(e->key, key, len + 1);
        e->group = e->key + len + 1;
        memcpy(e->group, group, glen);
        e->topic = e->group + glen;
        memcpy(e->topic, topic, tlen);
        e->queue_id = queue_id;
        e->stored = stored;
        HASH_ADD(hh, h->map, key, len, e);
    }
    e->offset = offset;
}

bool broker_held_offset_get(broker_held_offsets *h, const char *group, const char *topic,
                            uint32_t queue_id, uint64_t stored, uint64_t *out)
{
    char key[KEY_CAP];
    size_t len = make_key(key, sizeof key, group, topic, queue_id);
    held *e = NULL;
    if (len)
        HASH_FIND(hh, h->map, key, len, e);
    if (!e)
        return false;
    if (e->stored != stored) {
        held_drop(h, e); /* the master's log has spoken since */
        return false;
    }
    *out = e->offset;
    return true;
}

void broker_held_offsets_each(broker_held_offsets *h, broker_held_fn fn, void *ctx)
{
    held *e, *tmp;
    HASH_ITER(hh, h->map, e, tmp)
        if (fn(ctx, e->group, e->topic, e->queue_id, e->offset, e->stored))
            held_drop(h, e);
}

size_t broker_held_offsets_count(const broker_held_offsets *h)
{
    return HASH_COUNT(h->map);
}
