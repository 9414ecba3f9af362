/*
 * What dump and get apply to one message: store-time parsing for the
 * command line, the tag / key / property filters, and inflating the bodies
 * a client compressed (a consumer sees them inflated, so mqdump shows them
 * that way too).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compress.h"
#include "mqdump.h"
#include "rocketmq_time.h"
#include "props.h"

#define INFLATE_MAX_BYTES (64u << 20)

int mqd_parse_time(const char *s, int64_t *ms)
{
    size_t len = strlen(s), digits = strspn(s, "0123456789");
    if (len > 0 && digits == len && len <= 15) {
        *ms = strtoll(s, NULL, 10);
        return 0;
    }
    /* RocketMQ's tools: yyyy-MM-dd#HH:mm:ss:SSS, local time. */
    return rocketmq_time_parse(s, ms);
}

static int equals(const char *a, size_t alen, const char *b)
{
    return strlen(b) == alen && memcmp(a, b, alen) == 0;
}

/* One space-separated word of KEYS is key (RocketMQ's KEY_SEPARATOR). */
static int keys_contain(const char *keys, size_t len, const char *key)
{
    size_t klen = strlen(key), i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && keys[j] != ' ')
            j++;
        if (j - i == klen && memcmp(keys + i, key, klen) == 0)
            return 1;
        i = j + 1;
    }
    return 0;
}

int mqd_match_props(const mqd_opts *o, const proto_record *r)
{
    const char *v;
    size_t vlen;
    if (o->ntags) {
        if (!proto_props_get(r->props, r->props_len, PROTO_PROP_TAGS, &v, &vlen))
            return 0;
        size_t i;
        for (i = 0; i < o->ntags; i++)
            if (equals(v, vlen, o->tags[i]))
                break;
        if (i == o->ntags)
            return 0;
    }
    if (o->key && (!proto_props_get(r->props, r->props_len, PROTO_PROP_KEYS, &v, &vlen) ||
                   !keys_contain(v, vlen, o->key)))
        return 0;
    for (size_t i = 0; i < o->nprops; i++)
        if (!proto_props_get(r->props, r->props_len, o->prop_names[i], &v, &vlen) ||
            !equals(v, vlen, o->prop_values[i]))
            return 0;
    return 1;
}

void mqd_message_body(const proto_record *r, const uint8_t **body, size_t *len,
                      uint8_t **owned)
{
    *body = r->body;
    *len = r->body_len;
    *owned = NULL;
    if (!proto_sysflag_zlib(r->sys_flag))
        return;
    if (proto_inflate(r->body, r->body_len, INFLATE_MAX_BYTES, owned, len) == 0) {
        *body = *owned;
        return;
    }
    *len = r->body_len;
    mqd_errorf("topic %.*s queue %d offset %lld: compressed body does not inflate; shown as stored",
               (int)r->topic_len, r->topic, (int)r->queue_id, (long long)r->queue_offset);
}
