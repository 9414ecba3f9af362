/*
 * mqdump topics, queues and stats: what the store holds, from its topic
 * records, the per-queue high-water marks and RocksDB's own properties.
 * Message counts come from offsets (max offset minus min offset: retention
 * removes only whole prefixes of a queue, so what lies between is stored);
 * `stats --scan` counts by reading every message instead.
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

static uint64_t topic_messages(engine_reader *rd, uint32_t topic_id)
{
    uint64_t total = 0;
    uint32_t nq = engine_reader_queue_count(rd, topic_id);
    for (uint32_t q = 0; q < nq; q++) {
        engine_reader_queue info;
        if (engine_reader_queue_info(rd, topic_id, q, &info) == 0 &&
            info.max_offset > info.min_offset)
            total += info.max_offset - info.min_offset;
    }
    return total;
}

int mqd_cmd_topics(engine_reader *rd, const mqd_opts *o)
{
    size_t n;
    const engine_topic_config *t = engine_reader_topics(rd, &n);
    for (size_t i = 0; i < n; i++) {
        mqd_out_char('{');
        key_str("topic", t[i].name, 1);
        key_u64("id", t[i].topic_id, 0);
        key_u64("readQueueNums", t[i].read_queue_nums, 0);
        key_u64("writeQueueNums", t[i].write_queue_nums, 0);
        key_u64("perm", t[i].perm, 0);
        key_name("order");
        mqd_out_str(t[i].order ? "true" : "false");
        key_str("attributes", t[i].attributes, 0);
        key_u64("queues", engine_reader_queue_count(rd, t[i].topic_id), 0);
        key_u64("messages", topic_messages(rd, t[i].topic_id), 0);
        mqd_out("}\n", 2);
    }
    return MQD_OK;
}

/* Store time of the first (last = 0) or last message of a queue; 0 when empty. */
static int queue_edge_time(engine_reader *rd, uint32_t topic_id, uint32_t queue_id, int last,
                           int64_t *ms)
{
    uint8_t lo[ENGINE_READER_MSG_KEY_LEN], hi[ENGINE_READER_MSG_KEY_LEN];
    engine_reader_msg_key(lo, topic_id, queue_id, 0);
    engine_reader_msg_key(hi, topic_id, queue_id, UINT64_MAX);
    engine_reader_iter *it = engine_reader_iter_create(rd, ENGINE_CF_MSG, lo, sizeof lo, hi,
                                                       sizeof hi, ENGINE_READER_LOOKUP);
    if (!it)
        return 0;
    if (last)
        engine_reader_iter_seek_last(it);
    else
        engine_reader_iter_seek(it, NULL, 0);
    int found = 0;
    if (engine_reader_iter_valid(it)) {
        size_t len;
        const uint8_t *v = engine_reader_iter_value(it, &len);
        proto_record r;
        if (proto_record_decode(v, len, &r) == (long)len) {
            *ms = r.store_timestamp;
            found = 1;
        }
    }
    engine_reader_iter_destroy(it);
    return found;
}

static void key_time(engine_reader *rd, const char *name, uint32_t topic_id, uint32_t queue_id,
                     int last)
{
    int64_t ms;
    key_name(name);
    if (queue_edge_time(rd, topic_id, queue_id, last, &ms))
        mqd_out_i64(ms);
    else
        mqd_out("null", 4);
}

int mqd_cmd_queues(engine_reader *rd, const mqd_opts *o)
{
    const engine_topic_config *t = engine_reader_topic(rd, o->arg, strlen(o->arg));
    if (!t) {
        mqd_errorf("no topic '%s' in %s", o->arg, o->store_path);
        return MQD_FAIL;
    }
    uint32_t nq = engine_reader_queue_count(rd, t->topic_id);
    for (uint32_t q = 0; q < nq; q++) {
        engine_reader_queue info;
        if (engine_reader_queue_info(rd, t->topic_id, q, &info) != 0)
            continue;
        mqd_out_char('{');
        key_str("topic", t->name, 1);
        key_u64("queueId", q, 0);
        key_u64("minOffset", info.min_offset, 0);
        key_u64("maxOffset", info.max_offset, 0);
        key_u64("messages", info.max_offset > info.min_offset ? info.max_offset - info.min_offset
                                                              : 0, 0);
        key_time(rd, "earliestStoreTime", t->topic_id, q, 0);
        key_time(rd, "latestStoreTime", t->topic_id, q, 1);
        mqd_out("}\n", 2);
    }
    return MQD_OK;
}

/* Exact messages and record bytes of one topic, by reading them. */
static int scan_topic(engine_reader *rd, uint32_t topic_id, uint64_t *msgs, uint64_t *bytes)
{
    uint8_t lo[ENGINE_READER_MSG_KEY_LEN], hi[ENGINE_READER_MSG_KEY_LEN];
    engine_reader_msg_key(lo, topic_id, 0, 0);
    engine_reader_msg_key(hi, topic_id + 1, 0, 0);
    engine_reader_iter *it = engine_reader_iter_create(rd, ENGINE_CF_MSG, lo, sizeof lo, hi,
                                                       sizeof hi, ENGINE_READER_SCAN);
    *msgs = *bytes = 0;
    if (!it)
        return 0;
    for (engine_reader_iter_seek(it, NULL, 0); engine_reader_iter_valid(it) && !mqd_interrupted;
         engine_reader_iter_next(it)) {
        size_t len;
        engine_reader_iter_value(it, &len);
        (*msgs)++;
        *bytes += len;
        mqd_progress_add(1, len);
    }
    char err[256];
    int rc = engine_reader_iter_error(it, err, sizeof err);
    if (rc != 0)
        mqd_errorf("reading messages: %s", err);
    engine_reader_iter_destroy(it);
    return rc;
}

int mqd_cmd_stats(engine_reader *rd, const mqd_opts *o)
{
    size_t n;
    const engine_topic_config *t = engine_reader_topics(rd, &n);
    uint64_t total = 0, scanned_total = 0, bytes_total = 0;
    int rc = MQD_OK;

    if (o->scan) {
        uint64_t in_scope = 0;
        for (size_t i = 0; i < n; i++)
            in_scope += topic_messages(rd, t[i].topic_id);
        mqd_progress_start(o->progress, in_scope);
    }
    mqd_out_char('{');
    key_str("store", o->store_path, 1);
    key_u64("formatVersion", engine_reader_format_version(rd), 0);
    key_u64("nextLogPosition", engine_reader_next_log_position(rd), 0);
    key_name("topics");
    mqd_out_char('[');
    for (size_t i = 0; i < n; i++) {
        uint64_t msgs = topic_messages(rd, t[i].topic_id);
        uint8_t lo[ENGINE_READER_MSG_KEY_LEN], hi[ENGINE_READER_MSG_KEY_LEN];
        engine_reader_msg_key(lo, t[i].topic_id, 0, 0);
        engine_reader_msg_key(hi, t[i].topic_id + 1, 0, 0);
        total += msgs;
        if (i)
            mqd_out_char(',');
        mqd_out_char('{');
        key_str("topic", t[i].name, 1);
        key_u64("id", t[i].topic_id, 0);
        key_u64("messages", msgs, 0);
        key_u64("approxDiskBytes",
                engine_reader_approx_size(rd, ENGINE_CF_MSG, lo, sizeof lo, hi, sizeof hi), 0);
        if (o->scan) {
            uint64_t smsgs, sbytes;
            if (scan_topic(rd, t[i].topic_id, &smsgs, &sbytes) != 0)
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
    if (o->scan) {
        key_u64("scannedMessages", scanned_total, 0);
        key_u64("bytes", bytes_total, 0);
    }
    key_name("columnFamilies");
    mqd_out_char('{');
    for (int cf = 0; cf < ENGINE_CF_COUNT; cf++) {
        if (cf)
            mqd_out_char(',');
        const char *name = engine_reader_cf_name((engine_cf)cf);
        mqd_json_str(name, strlen(name));
        mqd_out(":{", 2);
        int first = 1;
        for (size_t p = 0; p < sizeof cf_properties / sizeof cf_properties[0]; p++) {
            uint64_t v;
            if (engine_reader_cf_property(rd, (engine_cf)cf, cf_properties[p], &v) != 0)
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
