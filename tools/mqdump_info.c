/*
 * mqdump topics, queues and stats: what the store holds, from its topic
 * records, the per-queue high-water marks (engine_view_queues) and
 * RocksDB's own properties.
 * Message counts come from offsets (max offset minus min offset: retention
 * removes only whole prefixes of a queue, so what lies between is stored);
 * `stats --scan` counts by reading every message instead. Pending (delayed)
 * messages are counted apart, from the store's pending counts.
 */
#include <stdlib.h>
#include <string.h>

#include "mqdump.h"

/* RocksDB properties stats shows for each family. */
static const char *const cf_properties[] = {
    "rocksdb.estimate-num-keys",    "rocksdb.total-sst-files-size",
    "rocksdb.live-sst-files-size",  "rocksdb.total-blob-file-size",
    "rocksdb.size-all-mem-tables",  "rocksdb.estimate-live-data-size",
};

static void key_str(const char *name, const char *value, int first)
{
    if (!first)
        mqd_out_char(',');
    mqd_json_str(name, strlen(name));
    mqd_out_char(':');
    mqd_json_str(value, strlen(value));
}

static void key_u64(const char *name, uint64_t value, int first)
{
    if (!first)
        mqd_out_char(',');
    mqd_json_str(name, strlen(name));
    mqd_out_char(':');
    mqd_out_u64(value);
}

static void key_name(const char *name)
{
    mqd_out_char(',');
    mqd_json_str(name, strlen(name));
    mqd_out_char(':');
}

/* Queues of a topic (NULL and 0 when unknown); free with engine_free. */
static engine_queue_info *queues_of(const mqd_store *s, uint32_t topic_id, size_t *n)
{
    engine_queue_info *q = NULL;
    if (engine_view_queues(s->v, topic_id, &q, n) != 0)
        *n = 0;
    return q;
}

/* Messages of a topic; *nq (if not NULL) its queues. */
static uint64_t topic_messages(const mqd_store *s, uint32_t topic_id, size_t *nq)
{
    size_t n;
    engine_queue_info *q = queues_of(s, topic_id, &n);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (q[i].max_offset > q[i].min_offset)
            total += q[i].max_offset - q[i].min_offset;
    engine_free(q);
    if (nq)
        *nq = n;
    return total;
}

int mqd_cmd_topics(const mqd_store *s, const mqd_opts *o)
{
    const engine_topic_config *t = s->topics;
    for (size_t i = 0; i < s->ntopics; i++) {
        size_t nq;
        uint64_t msgs = topic_messages(s, t[i].topic_id, &nq);
        mqd_out_char('{');
        key_str("topic", t[i].name, 1);
        key_u64("id", t[i].topic_id, 0);
        key_u64("readQueueNums", t[i].read_queue_nums, 0);
        key_u64("writeQueueNums", t[i].write_queue_nums, 0);
        key_u64("perm", t[i].perm, 0);
        key_name("order");
        mqd_out_str(t[i].order ? "true" : "false");
        key_str("attributes", t[i].attributes, 0);
        key_u64("queues", nq, 0);
        key_u64("messages", msgs, 0);
        mqd_out("}\n", 2);
    }
    return MQD_OK;
}

/* Store time of the first (last = 0) or last message of a queue; 0 when empty. */
static int queue_edge_time(const mqd_store *s, uint32_t topic_id, uint32_t queue_id, int last,
                           int64_t *ms)
{
    engine_msg_pos lo = {topic_id, queue_id, 0}, hi = {topic_id, queue_id, UINT64_MAX};
    engine_msg_cursor *c;
    if (engine_msg_cursor_open(s->v, &lo, &hi, ENGINE_ITER_LOOKUP, &c) != 0)
        return 0;
    if (last)
        engine_msg_cursor_seek_last(c);
    else
        engine_msg_cursor_seek(c, NULL);
    int found = 0;
    engine_msg_pos at;
    const uint8_t *v;
    size_t len;
    if (engine_msg_cursor_valid(c) && engine_msg_cursor_get(c, &at, &v, &len) == 0) {
        proto_record r;
        if (proto_record_decode(v, len, &r) == (long)len) {
            *ms = r.store_timestamp;
            found = 1;
        }
    }
    engine_msg_cursor_close(c);
    return found;
}

static void key_time(const mqd_store *s, const char *name, uint32_t topic_id,
                     uint32_t queue_id, int last)
{
    int64_t ms;
    key_name(name);
    if (queue_edge_time(s, topic_id, queue_id, last, &ms))
        mqd_out_i64(ms);
    else
        mqd_out("null", 4);
}

int mqd_cmd_queues(const mqd_store *s, const mqd_opts *o)
{
    const engine_topic_config *t = mqd_topic(s, o->arg);
    if (!t) {
        mqd_errorf("no topic '%s' in %s", o->arg, o->store_path);
        return MQD_FAIL;
    }
    size_t nq;
    engine_queue_info *q = queues_of(s, t->topic_id, &nq);
    for (uint32_t i = 0; i < nq; i++) {
        mqd_out_char('{');
        key_str("topic", t->name, 1);
        key_u64("queueId", i, 0);
        key_u64("minOffset", q[i].min_offset, 0);
        key_u64("maxOffset", q[i].max_offset, 0);
        key_u64("messages", q[i].max_offset > q[i].min_offset
                                ? q[i].max_offset - q[i].min_offset : 0, 0);
        key_time(s, "earliestStoreTime", t->topic_id, i, 0);
        key_time(s, "latestStoreTime", t->topic_id, i, 1);
        mqd_out("}\n", 2);
    }
    engine_free(q);
    return MQD_OK;
}

/* Exact messages and record bytes of one topic, by reading them. */
static int scan_topic(const mqd_store *s, uint32_t topic_id, uint64_t *msgs, uint64_t *bytes)
{
    engine_msg_pos lo = {topic_id, 0, 0}, hi = {topic_id + 1, 0, 0};
    engine_msg_cursor *c;
    *msgs = *bytes = 0;
    if (engine_msg_cursor_open(s->v, &lo, topic_id == UINT32_MAX ? NULL : &hi,
                               ENGINE_ITER_SCAN, &c) != 0)
        return 0;
    for (engine_msg_cursor_seek(c, NULL); engine_msg_cursor_valid(c) && !mqd_interrupted;
         engine_msg_cursor_next(c)) {
        engine_msg_pos at;
        const uint8_t *v;
        size_t len;
        engine_msg_cursor_get(c, &at, &v, &len);
        (*msgs)++;
        *bytes += len;
        mqd_progress_add(1, len);
    }
    char err[256];
    int rc = engine_msg_cursor_error(c, err, sizeof err);
    if (rc != 0)
        mqd_errorf("reading messages: %s", err);
    engine_msg_cursor_close(c);
    return rc;
}

int mqd_cmd_stats(const mqd_store *s, const mqd_opts *o)
{
    const engine_topic_config *t = s->topics;
    size_t n = s->ntopics;
    uint64_t total = 0, scanned_total = 0, bytes_total = 0;
    int rc = MQD_OK;

    if (o->scan) {
        uint64_t in_scope = 0;
        for (size_t i = 0; i < n; i++)
            in_scope += topic_messages(s, t[i].topic_id, NULL);
        mqd_progress_start(o->progress, in_scope);
    }
    engine_store_meta meta;
    if (engine_view_meta(s->v, &meta) != 0) {
        mqd_errorf("%s: cannot read the store's bookkeeping", o->store_path);
        return MQD_FAIL;
    }
    mqd_out_char('{');
    key_str("store", o->store_path, 1);
    key_u64("formatVersion", meta.format_version, 0);
    key_u64("nextLogPosition", meta.next_log_position, 0);
    key_name("topics");
    mqd_out_char('[');
    for (size_t i = 0; i < n; i++) {
        uint64_t msgs = topic_messages(s, t[i].topic_id, NULL);
        total += msgs;
        if (i)
            mqd_out_char(',');
        mqd_out_char('{');
        key_str("topic", t[i].name, 1);
        key_u64("id", t[i].topic_id, 0);
        key_u64("messages", msgs, 0);
        key_u64("pendingMessages", engine_timer_pending(s->e, t[i].topic_id), 0);
        key_u64("approxDiskBytes", engine_topic_disk_bytes(s->e, t[i].topic_id), 0);
        if (o->scan) {
            uint64_t smsgs, sbytes;
            if (scan_topic(s, t[i].topic_id, &smsgs, &sbytes) != 0)
                rc = MQD_FAIL;
            key_u64("scannedMessages", smsgs, 0);
            key_u64("bytes", sbytes, 0);
            scanned_total += smsgs;
            bytes_total += sbytes;
        }
        mqd_out_char('}');
    }
    mqd_out_char(']');
    if (o->scan)
        mqd_progress_end();
    key_u64("messages", total, 0);
    /* Delayed messages not yet due (their topics' and any deleted topic's). */
    key_u64("pendingMessages", engine_timer_pending_total(s->e), 0);
    if (o->scan) {
        key_u64("scannedMessages", scanned_total, 0);
        key_u64("bytes", bytes_total, 0);
    }
    key_name("columnFamilies");
    mqd_out_char('{');
    size_t nfam;
    const char *const *families = engine_families(s->e, &nfam);
    for (size_t f = 0; f < nfam; f++) {
        if (f)
            mqd_out_char(',');
        mqd_json_str(families[f], strlen(families[f]));
        mqd_out(":{", 2);
        int first = 1;
        for (size_t p = 0; p < sizeof cf_properties / sizeof cf_properties[0]; p++) {
            uint64_t v;
            if (engine_property_int(s->e, families[f], cf_properties[p], &v) != 0)
                continue;
            key_u64(cf_properties[p], v, first);
            first = 0;
        }
        mqd_out_char('}');
    }
    mqd_out("}}\n", 3);
    if (mqd_interrupted)
        rc = MQD_FAIL;
    return rc;
}
