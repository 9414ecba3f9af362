/*
 * mqdump dump: one pass over the msg family in key order (topic id, queue
 * id, queue offset), printing the messages the filters let through.
 *
 * The key filters never read what they reject: a queue or offset out of
 * range is skipped with one seek to where the range starts again, and the
 * time filters seek too, because store time never goes backwards within a
 * queue: --begin jumps to the first offset at or after it through the
 * idx_time family, --end leaves a queue at its first later message. The
 * scan itself reads ahead and bypasses the block cache, and the output
 * goes through one big buffer.
 *
 * A record that does not decode is reported on stderr and skipped; a body
 * whose CRC does not match is reported and printed all the same.
 */
#include <stdlib.h>
#include <string.h>

#include "mqdump.h"

#define TIME_KEY_LEN 24 /* idx_time: topic_id u32, queue_id u32, store_ms u64, offset u64 */

typedef struct scan {
    const mqd_opts *o;
    engine_reader *rd;
    engine_reader_iter *msgs;
    engine_reader_iter *times; /* idx_time, for --begin; NULL when absent */
    int has_topic;
    uint32_t topic_id;
    /* The queue whose --begin jump was tried, so it is tried once. */
    int jumped;
    uint32_t jumped_topic, jumped_queue;
    uint64_t printed, corrupt, bad_crc;
} scan;

static void seek_msg(scan *s, uint32_t topic_id, uint32_t queue_id, uint64_t offset)
{
    uint8_t k[ENGINE_READER_MSG_KEY_LEN];
    engine_reader_msg_key(k, topic_id, queue_id, offset);
    engine_reader_iter_seek(s->msgs, k, sizeof k);
}

/* Continue at `offset` in the queue after (topic_id, queue_id); 0 when none is left. */
static int seek_next_queue(scan *s, uint32_t topic_id, uint32_t queue_id, uint64_t offset)
{
    if (queue_id < UINT32_MAX) {
        seek_msg(s, topic_id, queue_id + 1, offset);
        return 1;
    }
    if (topic_id == UINT32_MAX)
        return 0;
    seek_msg(s, topic_id + 1, 0, offset);
    return 1;
}

/* First offset of the queue stored at or after --begin, from idx_time; 0 if unknown. */
static int begin_offset(scan *s, uint32_t topic_id, uint32_t queue_id, uint64_t *offset)
{
    if (!s->times || s->o->begin_ms <= 0)
        return 0;
    uint8_t k[TIME_KEY_LEN];
    proto_put_u32(k, topic_id);
    proto_put_u32(k + 4, queue_id);
    proto_put_u64(k + 8, (uint64_t)s->o->begin_ms);
    proto_put_u64(k + 16, 0);
    engine_reader_iter_seek(s->times, k, sizeof k);
    if (!engine_reader_iter_valid(s->times))
        return 0;
    size_t len;
    const uint8_t *found = engine_reader_iter_key(s->times, &len);
    if (len != TIME_KEY_LEN || memcmp(found, k, 8) != 0)
        return 0; /* nothing that late in this queue, or no index: read on */
    *offset = proto_get_u64(found + 16);
    return 1;
}

static void print_message(scan *s, const proto_record *r)
{
    const uint8_t *body;
    size_t body_len;
    uint8_t *owned;
    mqd_message_body(r, &body, &body_len, &owned);
    if (s->o->format == MQD_FORMAT_RAW) {
        mqd_out(body, body_len);
        mqd_out_char('\n');
    } else {
        mqd_json_message(r, body, body_len);
    }
    free(owned);
    s->printed++;
}

/*
 * Look at the message under the iterator: print it, or move the iterator
 * past what the filters reject. Returns 0 to stop the scan.
 */
static int visit(scan *s)
{
    const mqd_opts *o = s->o;
    size_t klen, vlen;
    const uint8_t *k = engine_reader_iter_key(s->msgs, &klen);
    uint32_t tid, qid;
    uint64_t off;
    if (engine_reader_msg_key_decode(k, klen, &tid, &qid, &off) != 0) {
        mqd_errorf("skipping a msg key of %zu bytes (want %d)", klen, ENGINE_READER_MSG_KEY_LEN);
        s->corrupt++;
        engine_reader_iter_next(s->msgs);
        return 1;
    }
    if (o->has_queue && qid != o->queue_id) {
        if (qid < o->queue_id) {
            seek_msg(s, tid, o->queue_id, o->from_offset);
            return 1;
        }
        if (tid == UINT32_MAX || s->has_topic)
            return 0;
        seek_msg(s, tid + 1, o->queue_id, o->from_offset);
        return 1;
    }
    if (off < o->from_offset) {
        seek_msg(s, tid, qid, o->from_offset);
        return 1;
    }
    if (o->has_to_offset && off >= o->to_offset)
        return seek_next_queue(s, tid, qid, o->from_offset);

    const uint8_t *v = engine_reader_iter_value(s->msgs, &vlen);
    mqd_progress_add(1, vlen);
    proto_record r;
    if (proto_record_decode(v, vlen, &r) != (long)vlen) {
        const engine_topic_config *t = engine_reader_topic_by_id(s->rd, tid);
        mqd_errorf("corrupt record at topic %s (id %u) queue %u offset %llu: skipped",
                   t ? t->name : "?", tid, qid, (unsigned long long)off);
        s->corrupt++;
        engine_reader_iter_next(s->msgs);
        return 1;
    }
    if (o->has_begin && r.store_timestamp < o->begin_ms) {
        uint64_t at;
        int first_try = !s->jumped || s->jumped_topic != tid || s->jumped_queue != qid;
        s->jumped = 1;
        s->jumped_topic = tid;
        s->jumped_queue = qid;
        if (first_try && begin_offset(s, tid, qid, &at) && at > off) {
            seek_msg(s, tid, qid, at);
            return 1;
        }
        engine_reader_iter_next(s->msgs);
        return 1;
    }
    if (o->has_end && r.store_timestamp > o->end_ms)
        return seek_next_queue(s, tid, qid, o->from_offset);
    if (mqd_match_props(o, &r)) {
        if (proto_record_check_crc(&r) != 0) {
            mqd_errorf("body CRC mismatch at topic %.*s queue %u offset %llu",
                       (int)r.topic_len, r.topic, qid, (unsigned long long)off);
            s->bad_crc++;
        }
        print_message(s, &r);
    }
    engine_reader_iter_next(s->msgs);
    return 1;
}

/* Messages the queues in scope hold, for the progress bar. */
static uint64_t count_in_scope(scan *s)
{
    const mqd_opts *o = s->o;
    size_t n;
    const engine_topic_config *topics = engine_reader_topics(s->rd, &n);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (s->has_topic && topics[i].topic_id != s->topic_id)
            continue;
        uint32_t nq = engine_reader_queue_count(s->rd, topics[i].topic_id);
        for (uint32_t q = 0; q < nq; q++) {
            engine_reader_queue info;
            if ((o->has_queue && q != o->queue_id) ||
                engine_reader_queue_info(s->rd, topics[i].topic_id, q, &info) != 0)
                continue;
            uint64_t lo = info.min_offset > o->from_offset ? info.min_offset : o->from_offset;
            uint64_t hi = o->has_to_offset && o->to_offset < info.max_offset ? o->to_offset
                                                                             : info.max_offset;
            if (hi > lo)
                total += hi - lo;
        }
    }
    return total;
}

int mqd_cmd_dump(engine_reader *rd, const mqd_opts *o)
{
    scan s;
    memset(&s, 0, sizeof s);
    s.o = o;
    s.rd = rd;
    uint8_t lo[ENGINE_READER_MSG_KEY_LEN], hi[ENGINE_READER_MSG_KEY_LEN];
    if (o->topic) {
        const engine_topic_config *t = engine_reader_topic(rd, o->topic, strlen(o->topic));
        if (!t) {
            mqd_errorf("no topic '%s' in %s", o->topic, o->store_path);
            return MQD_FAIL;
        }
        s.has_topic = 1;
        s.topic_id = t->topic_id;
        engine_reader_msg_key(lo, t->topic_id, 0, 0);
        engine_reader_msg_key(hi, t->topic_id + 1, 0, 0);
        /* Topic ids start at 1, so id + 1 never wraps in practice; a wrap means no bound. */
        s.msgs = engine_reader_iter_create(rd, ENGINE_CF_MSG, lo, sizeof lo,
                                           t->topic_id == UINT32_MAX ? NULL : hi, sizeof hi,
                                           ENGINE_READER_SCAN);
    } else {
        s.msgs = engine_reader_iter_create(rd, ENGINE_CF_MSG, NULL, 0, NULL, 0,
                                           ENGINE_READER_SCAN);
    }
    if (!s.msgs) {
        mqd_errorf("%s has no msg family", o->store_path);
        return MQD_FAIL;
    }
    if (o->has_begin)
        s.times = engine_reader_iter_create(rd, ENGINE_CF_IDX_TIME, NULL, 0, NULL, 0,
                                            ENGINE_READER_LOOKUP);

    mqd_progress_start(o->progress, count_in_scope(&s));
    if (o->has_queue && s.has_topic)
        seek_msg(&s, s.topic_id, o->queue_id, o->from_offset);
    else
        engine_reader_iter_seek(s.msgs, NULL, 0);
    while (engine_reader_iter_valid(s.msgs) && !mqd_interrupted && !mqd_out_failed())
        if (!visit(&s))
            break;
    mqd_progress_end();

    char err[512];
    int rc = MQD_OK;
    if (engine_reader_iter_error(s.msgs, err, sizeof err) != 0) {
        mqd_errorf("reading messages: %s", err);
        rc = MQD_FAIL;
    }
    engine_reader_iter_destroy(s.msgs);
    engine_reader_iter_destroy(s.times);
    if (s.corrupt || s.bad_crc)
        mqd_errorf("%llu corrupt records skipped, %llu bodies with a bad CRC printed",
                   (unsigned long long)s.corrupt, (unsigned long long)s.bad_crc);
    return rc;
}
