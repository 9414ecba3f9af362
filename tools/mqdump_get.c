/*
 * mqdump get ID: one message by its offset message id (store host + log
 * position, resolved through the position index) or by its unique key
 * (UNIQ_KEY, through the key index). Both are 32 hex characters for IPv4
 * hosts, so an id is tried as an offset message id first, accepted only
 * when the message at that log position has that store host, then as a
 * unique key under every topic. Every match is printed as one JSON line,
 * in dump's shape; a pending (delayed) message as it waits, with queue
 * offset 0 and the store time of its send.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "message_id.h"
#include "mqdump.h"
#include "props.h"

/* Read and decode one message; *buf holds its bytes (free it). 0 or -1. */
static int load_message(const mqd_store *s, const engine_msg_pos *at, uint8_t **buf,
                        proto_record *r)
{
    size_t len;
    if (engine_view_message(s->v, at, buf, &len) != 0)
        return -1;
    if (proto_record_decode(*buf, len, r) != (long)len) {
        mqd_errorf("corrupt record at topic id %u queue %u offset %llu", at->topic_id,
                   at->queue_id, (unsigned long long)at->queue_offset);
        engine_free(*buf);
        *buf = NULL;
        return -1;
    }
    return 0;
}

/* A message an index entry names, pending or not; as load_message. */
static int load_indexed(const mqd_store *s, const engine_msg_pos *at, uint64_t pos,
                        uint8_t **buf, proto_record *r)
{
    if (at->queue_id != ENGINE_QUEUE_PENDING)
        return load_message(s, at, buf, r);
    size_t len;
    if (index_get_by_position(s->v, pos, buf, &len) != 0)
        return -1;
    if (proto_record_decode(*buf, len, r) != (long)len) {
        mqd_errorf("corrupt pending record at log position %llu", (unsigned long long)pos);
        engine_free(*buf);
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
static int get_by_offset_id(const mqd_store *s, const char *id)
{
    proto_host host;
    uint64_t pos;
    engine_msg_pos at;
    if (proto_msgid_decode(id, strlen(id), &host, &pos) != 0 ||
        index_locate(s->v, pos, &at.topic_id, &at.queue_id, &at.queue_offset) != 0)
        return 0;
    uint8_t *buf;
    proto_record r;
    if (load_indexed(s, &at, pos, &buf, &r) != 0)
        return 0;
    int found = (uint64_t)r.physical_offset == pos && same_host(&r.store_host, &host);
    if (found)
        print_record(&r);
    engine_free(buf);
    return found;
}

/* Messages of one topic whose UNIQ_KEY is key, printed newest first; returns how many. */
static int get_by_uniq_key_in(const mqd_store *s, uint32_t topic_id, const char *key)
{
    size_t klen = strlen(key), n = 0;
    index_key_hit *hits = NULL;
    if (index_query_key(s->v, topic_id, key, klen, INDEX_KEY_UNIQ, INT64_MIN, INT64_MAX,
                        SIZE_MAX, &hits, &n) != 0)
        return 0;
    int found = 0;
    for (size_t i = n; i-- > 0;) {
        engine_msg_pos at = {topic_id, hits[i].queue_id, hits[i].queue_offset};
        uint8_t *buf;
        proto_record r;
        if (load_indexed(s, &at, hits[i].log_position, &buf, &r) != 0)
            continue;
        const char *u;
        size_t ulen;
        /* The index may only point at messages carrying the key; check anyway. */
        if (proto_props_get(r.props, r.props_len, PROTO_PROP_UNIQ_KEY, &u, &ulen) &&
            ulen == klen && memcmp(u, key, klen) == 0) {
            print_record(&r);
            found++;
        }
        engine_free(buf);
    }
    engine_free(hits);
    return found;
}

static int get_by_uniq_key(const mqd_store *s, const char *key)
{
    int found = 0;
    for (size_t i = 0; i < s->ntopics; i++)
        found += get_by_uniq_key_in(s, s->topics[i].topic_id, key);
    return found;
}

int mqd_cmd_get(const mqd_store *s, const mqd_opts *o)
{
    const char *id = o->arg;
    if (!*id) {
        mqd_errorf("empty id");
        return MQD_USAGE;
    }
    if (get_by_offset_id(s, id) || get_by_uniq_key(s, id))
        return MQD_OK;
    /* Unique keys are upper-case hex; accept them typed in lower case. */
    char *upper = proto_xstrdup(id);
    for (char *p = upper; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    int found = strcmp(upper, id) != 0 && get_by_uniq_key(s, upper);
    free(upper);
    if (found)
        return MQD_OK;

    uint64_t keys = 0;
    engine_property_int(s->e, INDEX_FAMILY_KEY, "rocksdb.estimate-num-keys", &keys);
    mqd_errorf("no message with offset message id or unique key %s in %s%s", id, o->store_path,
               keys ? "" : " (the store's key index is empty)");
    return MQD_FAIL;
}
