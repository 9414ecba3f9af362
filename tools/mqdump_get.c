/*
 * mqdump get ID: one message by its offset message id (store host + log
 * position, resolved through idx_id) or by its unique key (UNIQ_KEY,
 * through idx_key). Both are 32 hex characters for IPv4 hosts, so an id is
 * tried as an offset message id first, accepted only when the message at
 * that log position has that store host, then as a unique key under every
 * topic (idx_key keys start with the topic id). Every match is printed as
 * one JSON line, in dump's shape.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "message_id.h"
#include "mqdump.h"
#include "props.h"

#define ID_VAL_LEN 16 /* idx_id value: topic_id u32, queue_id u32, queue_offset u64 */
#define KEY_VAL_LEN 13 /* idx_key value: queue_id u32, queue_offset u64, kinds u8 */
#define KEY_KIND_UNIQ 0x2u

/* Read and decode one message; *buf holds its bytes (free it). 0 or -1. */
static int load_message(engine_reader *rd, uint32_t topic_id, uint32_t queue_id,
                        uint64_t offset, char **buf, proto_record *r)
{
    uint8_t k[ENGINE_READER_MSG_KEY_LEN];
    size_t len;
    engine_reader_msg_key(k, topic_id, queue_id, offset);
    if (engine_reader_get(rd, ENGINE_CF_MSG, k, sizeof k, buf, &len) != 0)
        return -1;
    if (proto_record_decode((const uint8_t *)*buf, len, r) != (long)len) {
        mqd_errorf("corrupt record at topic id %u queue %u offset %llu", topic_id, queue_id,
                   (unsigned long long)offset);
        free(*buf);
        *buf = NULL;
        return -1;
    }
    return 0;
}

static void print_record(const proto_record *r)
{
    const uint8_t *body;
    size_t len;
    uint8_t *owned;
    mqd_message_body(r, &body, &len, &owned);
    mqd_json_message(r, body, len);
    free(owned);
}

static int same_host(const proto_host *a, const proto_host *b)
{
    return a->v6 == b->v6 && a->port == b->port && memcmp(a->ip, b->ip, a->v6 ? 16 : 4) == 0;
}

/* 1 when id is an offset message id of a stored message (printed), else 0. */
static int get_by_offset_id(engine_reader *rd, const char *id)
{
    proto_host host;
    uint64_t pos;
    if (proto_msgid_decode(id, strlen(id), &host, &pos) != 0)
        return 0;
    uint8_t k[8];
    proto_put_u64(k, pos);
    char *v;
    size_t vlen;
    if (engine_reader_get(rd, ENGINE_CF_IDX_ID, k, sizeof k, &v, &vlen) != 0)
        return 0;
    int found = 0;
    if (vlen == ID_VAL_LEN) {
        const uint8_t *p = (const uint8_t *)v;
        char *buf;
        proto_record r;
        if (load_message(rd, proto_get_u32(p), proto_get_u32(p + 4), proto_get_u64(p + 8), &buf,
                         &r) == 0) {
            found = (uint64_t)r.physical_offset == pos && same_host(&r.store_host, &host);
            if (found)
                print_record(&r);
            free(buf);
        }
    }
    free(v);
    return found;
}

/* Messages of one topic whose UNIQ_KEY is key, printed; returns how many. */
static int get_by_uniq_key_in(engine_reader *rd, uint32_t topic_id, const char *key)
{
    size_t klen = strlen(key), plen = 4 + klen + 1;
    uint8_t *lo = malloc(plen), *hi = malloc(plen);
    if (!lo || !hi)
        abort();
    proto_put_u32(lo, topic_id);
    memcpy(lo + 4, key, klen);
    lo[plen - 1] = 0x00; /* the key's terminator: entries follow it */
    memcpy(hi, lo, plen);
    hi[plen - 1] = 0x01;
    engine_reader_iter *it = engine_reader_iter_create(rd, ENGINE_CF_IDX_KEY, lo, plen, hi, plen,
                                                       ENGINE_READER_LOOKUP);
    free(lo);
    free(hi);
    if (!it)
        return 0;
    int found = 0;
    for (engine_reader_iter_seek(it, NULL, 0); engine_reader_iter_valid(it);
         engine_reader_iter_next(it)) {
        size_t vlen;
        const uint8_t *v = engine_reader_iter_value(it, &vlen);
        if (vlen != KEY_VAL_LEN || !(v[12] & KEY_KIND_UNIQ))
            continue;
        char *buf;
        proto_record r;
        if (load_message(rd, topic_id, proto_get_u32(v), proto_get_u64(v + 4), &buf, &r) != 0)
            continue;
        const char *u;
        size_t ulen;
        /* The index may only point at messages carrying the key; check anyway. */
        if (proto_props_get(r.props, r.props_len, PROTO_PROP_UNIQ_KEY, &u, &ulen) &&
            ulen == klen && memcmp(u, key, klen) == 0) {
            print_record(&r);
            found++;
        }
        free(buf);
    }
    char err[256];
    if (engine_reader_iter_error(it, err, sizeof err) != 0)
        mqd_errorf("reading idx_key: %s", err);
    engine_reader_iter_destroy(it);
    return found;
}

static int get_by_uniq_key(engine_reader *rd, const char *key)
{
    size_t n;
    const engine_topic_config *topics = engine_reader_topics(rd, &n);
    int found = 0;
    for (size_t i = 0; i < n; i++)
        found += get_by_uniq_key_in(rd, topics[i].topic_id, key);
    return found;
}

int mqd_cmd_get(engine_reader *rd, const mqd_opts *o)
{
    const char *id = o->arg;
    if (!*id) {
        mqd_errorf("empty id");
        return MQD_USAGE;
    }
    if (get_by_offset_id(rd, id) || get_by_uniq_key(rd, id))
        return MQD_OK;
    /* Unique keys are upper-case hex; accept them typed in lower case. */
    char *upper = strdup(id);
    if (!upper)
        abort();
    for (char *p = upper; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    int found = strcmp(upper, id) != 0 && get_by_uniq_key(rd, upper);
    free(upper);
    if (found)
        return MQD_OK;

    uint64_t keys = 0;
    engine_reader_cf_property(rd, ENGINE_CF_IDX_KEY, "rocksdb.estimate-num-keys", &keys);
    mqd_errorf("no message with offset message id or unique key %s in %s%s", id, o->store_path,
               keys ? "" : " (the store's key index is empty)");
    return MQD_FAIL;
}
