/*
 * mqdump dump: one pass over the store's messages in key order (topic id,
 * queue id, queue offset), printing the messages the filters let through.
 *
 * The key filters never read what they reject: a queue or offset out of
 * range is skipped with one seek to where the range starts again, and the
 * time filters seek too, because store time never goes backwards within a
 * queue: --begin jumps to the first offset at or after it through the
 * time index (index_search_time), --end leaves a queue at its first later
 * message. The
 * scan itself reads ahead and bypasses the block cache, and the output
 * goes through one big buffer.
 *
 * A record that does not decode is reported on stderr and skipped; a body
 * whose CRC does not match is reported and printed all the same.
 */
#include <stdlib.h>
#include <string.h>

#include "mqdump.h"

typedef struct scan {
    const mqd_opts *o;
    const mqd_store *st;
    engine_msg_cursor *msgs;
    int has_topic;
    uint32_t topic_id;
    /* The queue whose --begin jump was tried, so it is tried once. */
    int jumped;
    uint32_t jumped_topic, jumped_queue;
    uint64_t printed, corrupt, bad_crc;
} scan;

static void seek_msg(scan *s, uint32_t topic_id, uint32_t queue_id, uint64_t offset)
{
    engine_msg_pos at = {topic_id, queue_id, offset};
    engine_msg_cursor_seek(s->msgs, &at);
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

/* First offset of the queue stored at or after --begin, from the time index; 0 if unknown. */
static int begin_offset(scan *s, uint32_t topic_id, uint32_t queue_id, uint64_t *offset)
{
    if (s->o->begin_ms <= 0)
        return 0;
    return index_search_time(s->st->v, topic_id, queue_id, s->o->begin_ms, INDEX_TIME_LOWER,
                             offset) == 0;
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
    engine_msg_pos at;
    const uint8_t *v;
    size_t vlen;
    if (engine_msg_cursor_get(s->msgs, &at, &v, &vlen) != 0) {
        mqd_errorf("skipping a record whose key is not a message key");
        s->corrupt++;
        engine_msg_cursor_next(s->msgs);
        return 1;
    }
    uint32_t tid = at.topic_id, qid = at.queue_id;
    uint64_t off = at.queue_offset;
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

    mqd_progress_add(1, vlen);
    proto_record r;
    if (proto_record_decode(v, vlen, &r) != (long)vlen) {
        const engine_topic_config *t = mqd_topic_by_id(s->st, tid);
        mqd_errorf("corrupt record at topic %s (id %u) queue %u offset %llu: skipped",
                   t ? t->name : "?", tid, qid, (unsigned long long)off);
        s->corrupt++;
        engine_msg_cursor_next(s->msgs);
        return 1;
    }
    if (o->has_begin && r.store_timestamp < o->begin_ms) {
        uint64_t begin;
        int first_try = !s->jumped || s->jumped_topic != tid || s->jumped_queue != qid;
        s->jumped = 1;
        s->jumped_topic = tid;
        s->jumped_queue = qid;
        if (first_try && begin_offset(s, tid, qid, &begin) && begin > off) {
            seek_msg(s, tid, qid, begin);
            return 1;
        }
        engine_msg_cursor_next(s->msgs);
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
    engine_msg_cursor_next(s->msgs);
    return 1;
}

/* Messages the queues in scope hold, for the progress bar. */
static uint64_t count_in_scope(scan *s)
{
    const mqd_opts *o = s->o;
    uint64_t total = 0;
    for (size_t i = 0; i < s->st->ntopics; i++) {
        uint32_t tid = s->st->topics[i].topic_id;
        engine_queue_info *q;
        size_t nq;
        if ((s->has_topic && tid != s->topic_id) ||
            engine_view_queues(s->st->v, tid, &q, &nq) != 0)
            continue;
        for (size_t k = 0; k < nq; k++) {
            if (o->has_queue && k != o->queue_id)
                continue;
            uint64_t lo = q[k].min_offset > o->from_offset ? q[k].min_offset : o->from_offset;
            uint64_t hi = o->has_to_offset && o->to_offset < q[k].max_offset ? o->to_offset
                                                                             : q[k].max_offset;
            if (hi > lo)
                total += hi - lo;
        }
        engine_free(q);
    }
    return total;
}

int mqd_cmd_dump(const mqd_store *st, const mqd_opts *o)
{
    scan s;
    memset(&s, 0, sizeof s);
    s.o = o;
    s.st = st;
    int rc;
    if (o->topic) {
        const engine_topic_config *t = mqd_topic(st, o->topic);
        if (!t) {
            mqd_errorf("no topic '%s' in %s", o->topic, o->store_path);
            return MQD_FAIL;
        }
        s.has_topic = 1;
        s.topic_id = t->topic_id;
        engine_msg_pos lo = {t->topic_id, 0, 0}, hi = {t->topic_id + 1, 0, 0};
        /* Topic ids start at 1, so id + 1 never wraps in practice; a wrap means no bound. */
        rc = engine_msg_cursor_open(st->v, &lo, t->topic_id == UINT32_MAX ? NULL : &hi,
                                    ENGINE_ITER_SCAN, &s.msgs);
    } else {
        rc = engine_msg_cursor_open(st->v, NULL, NULL, ENGINE_ITER_SCAN, &s.msgs);
    }
    if (rc != 0) {
        mqd_errorf("%s has no messages to read", o->store_path);
        return MQD_FAIL;
    }

    mqd_progress_start(o->progress, count_in_scope(&s));
    if (o->has_queue && s.has_topic)
        seek_msg(&s, s.topic_id, o->queue_id, o->from_offset);
    else
        engine_msg_cursor_seek(s.msgs, NULL);
    while (engine_msg_cursor_valid(s.msgs) && !mqd_interrupted && !mqd_out_failed())
        if (!visit(&s))
            break;
    mqd_progress_end();

    char err[512];
    rc = MQD_OK;
    if (engine_msg_cursor_error(s.msgs, err, sizeof err) != 0) {
        mqd_errorf("reading messages: %s", err);
        rc = MQD_FAIL;
    }
    engine_msg_cursor_close(s.msgs);
    if (s.corrupt || s.bad_crc)
        mqd_errorf("%llu corrupt records skipped, %llu bodies with a bad CRC printed",
                   (unsigned long long)s.corrupt, (unsigned long long)s.bad_crc);
    return rc;
}
