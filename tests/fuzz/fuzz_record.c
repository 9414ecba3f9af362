/*
 * libFuzzer target for the message encodings: the stored-message record
 * (protocol/record.h), the properties string (props.h), and the batch body,
 * offset message id and tag hash (message_id.h).
 *
 * Every input is read as each of those. Whatever decodes is checked for
 * views that stay inside the input, then re-encoded: a record must decode
 * again to the same fields, a batch entry must encode back to its own bytes
 * (bar the two words the decoder ignores), a message id must print back as
 * the input in upper case. A mismatch aborts, which libFuzzer reports.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "message_id.h"
#include "props.h"
#include "record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_record: %s\n", what);
        abort();
    }
}

/* p[0..n) lies within [lo, hi). */
static int inside(const void *p, size_t n, const void *lo, const void *hi)
{
    const uint8_t *a = p, *l = lo, *h = hi;

    return n == 0 || (a >= l && a <= h && n <= (size_t)(h - a));
}

/* Every pair lies inside the string, is non-empty, and is found again by name. */
static void check_props(const char *props, size_t len)
{
    proto_props_iter it;
    const char *name, *value, *found, *end = props + len;
    size_t nl, vl, fl, pairs = 0;

    if (props == NULL)
        return;
    proto_props_iter_init(&it, props, len);
    while (proto_props_next(&it, &name, &nl, &value, &vl)) {
        must(inside(name, nl, props, end) && inside(value, vl, props, end), "pair outside");
        must(nl > 0 && vl > 0, "empty name or value");
        must(memchr(name, PROTO_PROP_NAME_VALUE_SEP, nl) == NULL, "0x01 in a name");
        must(memchr(name, PROTO_PROP_SEP, nl) == NULL, "0x02 in a name");
        must(memchr(value, PROTO_PROP_SEP, vl) == NULL, "0x02 in a value");
        /* Lookups rescan the string; a few per input keep the fuzzer fast. */
        if (pairs++ < 8 && memchr(name, '\0', nl) == NULL) {
            char *z = strndup(name, nl);

            must(z != NULL, "strndup");
            must(proto_props_get(props, len, z, &found, &fl) == 1, "listed name not found");
            free(z);
        }
    }
    (void)proto_tag_hash(props, len);
}

static void same_record(const proto_record *a, const proto_record *b)
{
    must(a->queue_id == b->queue_id && a->flag == b->flag, "queue id or flag changed");
    must(a->queue_offset == b->queue_offset && a->physical_offset == b->physical_offset,
         "offsets changed");
    must(a->sys_flag == b->sys_flag, "sys flag changed");
    must(a->born_timestamp == b->born_timestamp && a->store_timestamp == b->store_timestamp,
         "timestamps changed");
    must(memcmp(&a->born_host, &b->born_host, sizeof a->born_host) == 0, "born host changed");
    must(memcmp(&a->store_host, &b->store_host, sizeof a->store_host) == 0,
         "store host changed");
    must(a->reconsume_times == b->reconsume_times, "reconsume times changed");
    must(a->prepared_txn_offset == b->prepared_txn_offset, "txn offset changed");
    must(a->body_len == b->body_len && a->topic_len == b->topic_len &&
             a->props_len == b->props_len,
         "lengths changed");
    must(a->body_len == 0 || memcmp(a->body, b->body, a->body_len) == 0, "body changed");
    must(memcmp(a->topic, b->topic, a->topic_len) == 0, "topic changed");
    must(a->props_len == 0 || memcmp(a->props, b->props, a->props_len) == 0, "props changed");
}

/* Re-encode a decoded record, decode it again, then stamp it and read the stamps back. */
static void reencode_record(const proto_record *r)
{
    proto_record copy = *r, back;
    proto_stamp_layout at;
    size_t n = proto_record_size(r);
    uint8_t *buf;

    must(n > 0, "decoded record has no size");
    buf = malloc(n);
    must(buf != NULL, "malloc");
    must(proto_record_encode(&copy, buf, n) == (long)n, "encode");
    must(proto_record_decode(buf, n, &back) == (long)n, "own record refused");
    must(proto_record_check_crc(&back) == 0, "own CRC wrong");
    same_record(r, &back);

    at = proto_record_stamp_layout(back.sys_flag);
    proto_record_stamp(buf, &at, 11, 22, 33);
    must(proto_record_decode(buf, n, &back) == (long)n, "stamped record refused");
    must(back.queue_offset == 11 && back.physical_offset == 22 && back.store_timestamp == 33,
         "stamps misplaced");
    free(buf);
}

static void check_record(const uint8_t *data, size_t size)
{
    const uint8_t *end = data + size;
    proto_record r;
    long n = proto_record_decode(data, size, &r);

    if (n < 0) {
        must(n == LSMQ_ECORRUPT, "unexpected record error");
        return;
    }
    must((size_t)n <= size && (size_t)n == r.total_size, "record size");
    must(inside(r.body, r.body_len, data, end) && inside(r.topic, r.topic_len, data, end) &&
             inside(r.props, r.props_len, data, end),
         "record view outside the input");
    (void)proto_record_check_crc(&r);
    check_props(r.props, r.props_len);
    reencode_record(&r);
}

/* Each entry encodes back to its own bytes, except MAGICCODE and BODYCRC. */
static void check_batch(const uint8_t *data, size_t size)
{
    proto_batch_entry e;
    size_t pos = 0, before;
    uint8_t *buf;
    long n;
    int rc;

    for (;;) {
        before = pos;
        rc = proto_batch_next(data, size, &pos, &e);
        if (rc <= 0) {
            must(rc == 0 || rc == LSMQ_ECORRUPT, "unexpected batch error");
            must(pos == before, "position moved on failure");
            must(rc != 0 || pos == size, "clean end before the end");
            return;
        }
        must(pos > before && pos <= size, "position did not advance");
        must(inside(e.body, e.body_len, data + before, data + pos) &&
                 inside(e.props, e.props_len, data + before, data + pos),
             "entry view outside the entry");
        must(proto_batch_entry_size(&e) == pos - before, "entry size");
        buf = malloc(pos - before);
        must(buf != NULL, "malloc");
        n = proto_batch_encode_entry(&e, buf, pos - before);
        must(n == (long)(pos - before), "entry encode");
        must(memcmp(buf, data + before, 4) == 0, "TOTALSIZE differs");
        must(memcmp(buf + 12, data + before + 12, (size_t)n - 12) == 0, "entry bytes differ");
        free(buf);
        check_props(e.props, e.props_len);
    }
}

/* A decodable id prints back as itself in upper case. */
static void check_msgid(const uint8_t *data, size_t size)
{
    char out[PROTO_MSGID_V6_LEN + 1];
    proto_host h;
    uint64_t pos;
    size_t i;

    if (proto_msgid_decode((const char *)data, size, &h, &pos) != 0)
        return;
    must(proto_msgid_encode(&h, pos, out) == size, "id length");
    for (i = 0; i < size; i++)
        must(out[i] == toupper(data[i]), "id text");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_record(data, size);
    check_batch(data, size);
    check_props((const char *)data, size);
    check_msgid(data, size);
    return 0;
}
