/*
 * Consumer offsets per queue (REMOTING.md §6.4): the next offset to
 * consume, kept in memory on the I/O thread. Clustering consumers persist
 * them to the brokers with UPDATE_CONSUMER_OFFSET (the consumer does the
 * sending; this file builds the header); broadcasting consumers to a local
 * file, which this file reads and writes.
 *
 * File format (version 1), JSON:
 *   {"version":1,"offsets":[{"topic":"T","brokerName":"b","queueId":0,"offset":42},...]}
 * If you change it, bump "version" and keep reading version 1. Writes go
 * to "<path>.tmp", are fsynced, then renamed over the file, so a crash
 * leaves either the old or the new table, never half of one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "client_internal.h"

#define OFFSET_FILE_VERSION 1

void lsmq__ostore_init(offset_store *s)
{
    s->map = NULL;
}

void lsmq__ostore_clear(offset_store *s)
{
    ostore_entry *e, *tmp;

    HASH_ITER(hh, s->map, e, tmp) {
        HASH_DEL(s->map, e);
        free(e->key);
        free(e->topic);
        free(e->broker);
        free(e);
    }
}

void lsmq__mq_key(char *out, size_t n, const char *topic, const char *broker, int32_t queue_id)
{
    /* \001 cannot appear in topic or broker names, so keys never collide. */
    snprintf(out, n, "%s\001%s\001%d", topic, broker, (int)queue_id);
}

ostore_entry *lsmq__ostore_find(offset_store *s, const char *topic, const char *broker,
                           int32_t queue_id)
{
    char key[600];
    ostore_entry *e = NULL;

    lsmq__mq_key(key, sizeof key, topic, broker, queue_id);
    HASH_FIND_STR(s->map, key, e);
    return e;
}

void lsmq__ostore_update(offset_store *s, const char *topic, const char *broker, int32_t queue_id,
                    int64_t offset)
{
    ostore_entry *e = lsmq__ostore_find(s, topic, broker, queue_id);

    if (e == NULL) {
        char key[600];

        lsmq__mq_key(key, sizeof key, topic, broker, queue_id);
        e = proto_xcalloc(1, sizeof *e);
        e->key = proto_xstrdup(key);
        e->topic = proto_xstrdup(topic);
        e->broker = proto_xstrdup(broker);
        e->queue_id = queue_id;
        e->offset = -1;
        HASH_ADD_KEYPTR(hh, s->map, e->key, strlen(e->key), e);
    }
    if (e->offset != offset) {
        e->offset = offset;
        e->dirty = 1;
    }
}

void lsmq__ostore_remove(offset_store *s, const char *topic, const char *broker, int32_t queue_id)
{
    ostore_entry *e = lsmq__ostore_find(s, topic, broker, queue_id);

    if (e == NULL)
        return;
    HASH_DEL(s->map, e);
    free(e->key);
    free(e->topic);
    free(e->broker);
    free(e);
}

int lsmq__ostore_save_file(const offset_store *s, const char *path, lsmq_errslot *err)
{
    json_t *root = json_object(), *arr = json_array();
    const ostore_entry *e, *tmp;
    char tmp_path[4096];
    char *text;
    size_t len, off = 0;
    int fd, rc = 0;

    HASH_ITER(hh, s->map, e, tmp) {
        json_t *o;

        if (e->offset < 0)
            continue;
        o = json_object();
        json_object_set_new(o, "topic", json_string(e->topic));
        json_object_set_new(o, "brokerName", json_string(e->broker));
        json_object_set_new(o, "queueId", json_integer(e->queue_id));
        json_object_set_new(o, "offset", json_integer(e->offset));
        json_array_append_new(arr, o);
    }
    json_object_set_new(root, "version", json_integer(OFFSET_FILE_VERSION));
    json_object_set_new(root, "offsets", arr);
    text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    if (text == NULL)
        return LSMQ_ENOMEM;
    len = strlen(text);
    snprintf(tmp_path, sizeof tmp_path, "%s.tmp", path);
    fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
        lsmq__error(err, -1, "cannot write %s: %s", tmp_path, strerror(errno));
        free(text);
        return rc;
    }
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            rc = -errno;
            break;
        }
        off += (size_t)w;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    close(fd);
    free(text);
    if (rc == 0 && rename(tmp_path, path) != 0)
        rc = -errno;
    if (rc != 0) {
        lsmq__error(err, -1, "cannot write %s: %s", path, strerror(-rc));
        unlink(tmp_path);
    }
    return rc;
}

int lsmq__ostore_load_file(offset_store *s, const char *path, lsmq_errslot *err)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr), *arr;
    size_t i;

    if (root == NULL) {
        if (access(path, F_OK) != 0)
            return LSMQ_ENOTFOUND;
        lsmq__error(err, -1, "offsets file %s: %s (line %d)", path, jerr.text, jerr.line);
        return LSMQ_ECORRUPT;
    }
    if (json_integer_value(json_object_get(root, "version")) != OFFSET_FILE_VERSION) {
        lsmq__error(err, -1, "offsets file %s: unknown version", path);
        json_decref(root);
        return LSMQ_ECORRUPT;
    }
    arr = json_object_get(root, "offsets");
    for (i = 0; i < json_array_size(arr); i++) {
        json_t *o = json_array_get(arr, i);
        const char *topic = json_string_value(json_object_get(o, "topic"));
        const char *broker = json_string_value(json_object_get(o, "brokerName"));
        json_t *qid = json_object_get(o, "queueId"), *off = json_object_get(o, "offset");
        ostore_entry *e;

        if (!topic || !broker || !json_is_integer(qid) || !json_is_integer(off))
            continue;
        lsmq__ostore_update(s, topic, broker, (int32_t)json_integer_value(qid),
                       json_integer_value(off));
        e = lsmq__ostore_find(s, topic, broker, (int32_t)json_integer_value(qid));
        e->dirty = 0;
    }
    json_decref(root);
    return 0;
}

proto_cmd *lsmq__ostore_commit_cmd(const char *group, const ostore_entry *e)
{
    proto_cmd *cmd = proto_cmd_request(RC_UPDATE_CONSUMER_OFFSET);

    proto_cmd_set(cmd, "consumerGroup", group);
    proto_cmd_set(cmd, "topic", e->topic);
    proto_cmd_set_i64(cmd, "queueId", e->queue_id);
    proto_cmd_set_i64(cmd, "commitOffset", e->offset);
    return cmd;
}
