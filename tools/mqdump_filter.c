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
#include <zlib.h>

#include "mqdump.h"
#include "rocketmq_time.h"
#include "props.h"

/* Client compression: sysFlag bits 8-10 hold the type; 0 (old clients) and 3 are zlib. */
#define COMPRESSION_TYPE(f) (((f) & 0x700) >> 8)
#define COMPRESSION_ZLIB 3
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

/* Inflate a zlib stream; 0 and *out malloc'ed, or -1. */
static int inflate_body(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (len > UINT32_MAX || inflateInit(&zs) != Z_OK)
        return -1;
    size_t cap = len * 4 + 64, used = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        abort();
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    int rc = Z_BUF_ERROR;
    do {
        if (cap - used < 4096) {
            if (cap >= INFLATE_MAX_BYTES)
                break;
            cap *= 2;
            uint8_t *nb = realloc(buf, cap);
            if (!nb)
                abort();
            buf = nb;
        }
        zs.next_out = buf + used;
        zs.avail_out = (uInt)(cap - used);
        rc = inflate(&zs, Z_NO_FLUSH);
        used = cap - zs.avail_out;
    } while (rc == Z_OK);
    inflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = used;
    return 0;
}

void mqd_message_body(const proto_record *r, const uint8_t **body, size_t *len,
                      uint8_t **owned)
{
    *body = r->body;
    *len = r->body_len;
    *owned = NULL;
    int type = COMPRESSION_TYPE(r->sys_flag);
    if (!(r->sys_flag & PROTO_SYSFLAG_COMPRESSED) || (type != 0 && type != COMPRESSION_ZLIB))
        return;
    if (inflate_body(r->body, r->body_len, owned, len) == 0) {
        *body = *owned;
        return;
    }
    *len = r->body_len;
    mqd_errorf("topic %.*s queue %d offset %lld: compressed body does not inflate; shown as stored",
               (int)r->topic_len, r->topic, (int)r->queue_id, (long long)r->queue_offset);
}
