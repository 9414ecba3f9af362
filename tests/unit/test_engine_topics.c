/*
 * test_engine_topics: topic configs, consumer offsets, subscription groups,
 * bad input and damaged stores.
 *
 * The program proves:
 *
 *  - topics: engine_topic_put creates and updates (queue counts grow, and a
 *    shrink keeps the data of the hidden queues); perm, order and attributes
 *    come back from engine_topic_get / engine_topic_list / engine_topic_id,
 *    also after a reopen (attributes with quotes, backslashes, newlines and
 *    UTF-8 byte for byte); bad names (empty, 256 characters, characters
 *    outside RocketMQ's set) and zero queues are refused and create nothing;
 *    attributes that are not UTF-8 are stored as given or refused, and 256
 *    unterminated attribute bytes are refused, without taking the process
 *    down (these two run in a child process);
 *  - deleting a topic takes its messages, index entries and consumer offsets
 *    with it (checked through the API and by scanning the column families);
 *    a re-created topic gets a new id, starts at queue offset 0 and finds
 *    none of the old data, while log positions keep growing; topic ids are
 *    never reused, not even across a reopen after the newest topic is gone;
 *  - consumer offsets round-trip and survive a reopen in both flush modes;
 *    unknown topics give LSMQ_ENOTFOUND; group configs round-trip as bytes;
 *  - the asynchronous topic and group writes store what they were given
 *    (copied at the call), report each outcome once (LSMQ_ENOTFOUND for a
 *    delete of a missing topic), refuse bad input before queueing anything,
 *    and one queued right before engine_close still lands;
 *  - bad appends (unknown topic or queue, empty or 256-character topic name,
 *    a message over max_message_size, n == 0) fail at once with the right
 *    code, run no callback and write nothing;
 *  - a stored record overwritten with garbage behind the engine's back is
 *    returned as stored, proto_record_decode reports LSMQ_ECORRUPT for it,
 *    and reads, index lookups, appends and a retention pass still work
 *    (nothing crashes);
 *  - opening: a second open of a live store gives LSMQ_ELOCKED with a
 *    message saying the store is in use, no store path gives LSMQ_EINVAL,
 *    a store of format version 99 gives LSMQ_EVERSION and is left intact;
 *  - store time never goes backwards within a queue, even when the clock
 *    does, also across a reopen.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine_ext.h"
#include "testsupport.h"

#define T0_MS INT64_C(1700000000000)
#define READ_BYTES (1u << 20)

/* ---- Injected clock ------------------------------------------------------- */

typedef struct fake_clock {
    _Atomic int64_t now_ms;
} fake_clock;

static int fake_clock_ms(void *ctx, int64_t *now_ms)
{
    fake_clock *c = ctx;
    *now_ms = atomic_load(&c->now_ms);
    return 0;
}

static void use_fake_clock(engine_config *cfg, fake_clock *clk, int64_t start_ms)
{
    atomic_init(&clk->now_ms, start_ms);
    cfg->clock_ms = fake_clock_ms;
    cfg->clock_ctx = clk;
}

/* ---- Small helpers -------------------------------------------------------- */

static engine_topic_config topic_cfg(const char *name, uint32_t read_queues,
                                     uint32_t write_queues, uint32_t perm, int order,
                                     const char *attributes)
{
    engine_topic_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.name, sizeof c.name, "%s", name);
    c.read_queue_nums = read_queues;
    c.write_queue_nums = write_queues;
    c.perm = perm;
    c.order = order;
    snprintf(c.attributes, sizeof c.attributes, "%s", attributes);
    return c;
}

static void assert_topic_equal(const engine_topic_config *got, const engine_topic_config *want)
{
    assert_string_equal(got->name, want->name);
    assert_int_equal(got->read_queue_nums, want->read_queue_nums);
    assert_int_equal(got->write_queue_nums, want->write_queue_nums);
    assert_int_equal(got->perm, want->perm);
    assert_int_equal(!!got->order, !!want->order);
    assert_string_equal(got->attributes, want->attributes);
}

/* Stored config of a topic, which must exist. */
static engine_topic_config get_topic(engine *e, const char *name)
{
    engine_topic_config c;
    memset(&c, 0, sizeof c);
    int rc = engine_topic_get(e, name, strlen(name), &c);
    if (rc != 0)
        fail_msg("engine_topic_get(%s) = %d", name, rc);
    return c;
}

static uint32_t topic_id_of(engine *e, const char *name)
{
    uint32_t id = 0;
    assert_int_equal(engine_topic_id(e, name, strlen(name), &id), 0);
    assert_true(id != 0);
    return id;
}

/* Append one message with this body; returns its queue offset. */
static uint64_t append_one(engine *e, const char *topic, uint32_t queue, const char *body,
                           uint64_t *log_position)
{
    engine_msg m = test_msg(body, NULL);
    engine_append_result r;
    memset(&r, 0, sizeof r);
    int rc = engine_append_wait(e, topic, strlen(topic), queue, &m, 1, &r);
    if (rc != 0)
        fail_msg("append to %s:%u = %d (%s)", topic, queue, rc, lsmq_strerror(rc));
    if (log_position)
        *log_position = r.log_position;
    return r.queue_offset;
}

static void queue_offsets(engine *e, const char *topic, uint32_t queue, uint64_t *min,
                          uint64_t *max)
{
    int rc = engine_queue_offsets(e, topic, strlen(topic), queue, min, max);
    if (rc != 0)
        fail_msg("engine_queue_offsets(%s:%u) = %d", topic, queue, rc);
}

/* The stored record at an offset; *len its size; free with engine_free. */
static uint8_t *read_one(engine *e, const char *topic, uint32_t queue, uint64_t offset,
                         size_t *len)
{
    engine_read_result rr;
    assert_int_equal(engine_read(e, topic, strlen(topic), queue, offset, 1, READ_BYTES, &rr), 0);
    if (rr.status != ENGINE_READ_FOUND || rr.count != 1)
        fail_msg("read %s:%u at %" PRIu64 ": status %d, %u records", topic, queue, offset,
                 (int)rr.status, rr.count);
    *len = rr.len;
    return rr.data;
}

/* Decode the record at an offset into rec (views into *keep; free it with engine_free). */
static void read_decoded(engine *e, const char *topic, uint32_t queue, uint64_t offset,
                         proto_record *rec, uint8_t **keep)
{
    size_t len;
    *keep = read_one(e, topic, queue, offset, &len);
    long size = proto_record_decode(*keep, len, rec);
    if (size <= 0 || (size_t)size != len)
        fail_msg("%s:%u offset %" PRIu64 " does not decode (%ld of %zu bytes)", topic, queue,
                 offset, size, len);
}

static engine *reopen(engine *e, const engine_config *cfg)
{
    engine_close(e);
    return test_engine_open(cfg);
}

static void fill_name(char *buf, size_t len)
{
    memset(buf, 'a', len);
}

/* ---- Writing behind the engine's back into a closed store ----------------- */

static void raw_put(const char *store, const char *family, const void *key, size_t klen,
                    const void *val, size_t vlen)
{
    char err[256] = "";
    if (engine_store_put(store, family, key, klen, val, vlen, err, sizeof err) != 0)
        fail_msg("put into %s of %s: %s", family, store, err);
}

static void raw_put_msg(const char *store, uint32_t topic_id, uint32_t queue, uint64_t offset,
                        const void *val, size_t vlen)
{
    uint8_t key[16];
    proto_put_u32(key, topic_id);
    proto_put_u32(key + 4, queue);
    proto_put_u64(key + 8, offset);
    raw_put(store, "msg", key, sizeof key, val, vlen);
}

static void raw_put_version(const char *store, uint32_t version)
{
    uint8_t v[4];
    proto_put_u32(v, version);
    raw_put(store, "meta", "V", 1, v, sizeof v);
}

/* ---- Scanning a live engine's families for a topic id --------------------- */

typedef enum id_at { ID_KEY_PREFIX, ID_VALUE_PREFIX, ID_OFFSET_KEY, ID_HWM_KEY } id_at;

/* Entries of one family that name topic_id (where `at` says the id sits). */
static size_t count_naming(engine *e, const char *family, id_at at, uint32_t topic_id)
{
    size_t n = 0;
    engine_view *v;
    engine_cf cf;
    assert_int_equal(engine_view_open(e, &v), 0);
    assert_int_equal(engine_family_find(v, family, &cf), 0);
    engine_iter *it = engine_iter_create(v, cf, NULL, 0, NULL, 0, ENGINE_ITER_LOOKUP);
    assert_non_null(it);
    for (engine_iter_seek(it, NULL, 0); engine_iter_valid(it); engine_iter_next(it)) {
        size_t klen, vlen;
        const uint8_t *k = engine_iter_key(it, &klen);
        const uint8_t *val = engine_iter_value(it, &vlen);
        switch (at) {
        case ID_KEY_PREFIX:
            n += klen >= 4 && proto_get_u32(k) == topic_id;
            break;
        case ID_VALUE_PREFIX:
            n += vlen >= 4 && proto_get_u32(val) == topic_id;
            break;
        case ID_OFFSET_KEY:
            n += klen >= 9 && k[klen - 9] == 0 && proto_get_u32(k + klen - 8) == topic_id;
            break;
        case ID_HWM_KEY:
            n += klen == 9 && k[0] == 'H' && proto_get_u32(k + 1) == topic_id;
            break;
        }
    }
    char err[256];
    int rc = engine_iter_error(it, err, sizeof err);
    engine_iter_destroy(it);
    engine_view_close(v);
    if (rc != 0)
        fail_msg("scanning %s: %s", family, err);
    return n;
}

/* Nothing in the store refers to topic_id any more. */
static void assert_no_trace(engine *e, uint32_t topic_id)
{
    size_t msgs = count_naming(e, "msg", ID_KEY_PREFIX, topic_id);
    size_t times = count_naming(e, INDEX_FAMILY_TIME, ID_KEY_PREFIX, topic_id);
    size_t ids = count_naming(e, INDEX_FAMILY_ID, ID_VALUE_PREFIX, topic_id);
    size_t offs = count_naming(e, "offset", ID_OFFSET_KEY, topic_id);
    size_t hwms = count_naming(e, "meta", ID_HWM_KEY, topic_id);
    if (msgs || times || ids || offs || hwms)
        fail_msg("topic id %u left behind %zu msg, %zu idx_time, %zu idx_id, %zu offset, "
                 "%zu high-water mark entries", topic_id, msgs, times, ids, offs, hwms);
}

/* ---- Topics: create, update, list ----------------------------------------- */

static void test_topic_create_update(void **state)
{
    (void)state;
    char *dir = test_tmpdir("topics-put");
    engine_config cfg;
    test_engine_config(&cfg, dir);
    engine *e = test_engine_open(&cfg);

    engine_topic_config a = topic_cfg("TopA", 2, 2, ENGINE_PERM_READ | ENGINE_PERM_WRITE, 0, "");
    engine_topic_config b = topic_cfg("TopB", 4, 2, ENGINE_PERM_READ, 1,
                                      "+message.type=FIFO,q=\"x\",bs=\\,nl=\n,u=\xc3\xa9");
    engine_topic_config out;
    memset(&out, 0, sizeof out);
    a.topic_id = 12345; /* ignored on input */
    assert_int_equal(engine_topic_put(e, &a, &out), 0);
    assert_topic_equal(&out, &a);
    uint32_t id_a = out.topic_id;
    assert_true(id_a != 0 && id_a != 12345);
    assert_int_equal(engine_topic_put(e, &b, &out), 0);
    assert_topic_equal(&out, &b);
    uint32_t id_b = out.topic_id;
    assert_true(id_b != 0 && id_b != id_a);

    engine_topic_config got = get_topic(e, "TopA");
    assert_topic_equal(&got, &a);
    assert_int_equal(got.topic_id, id_a);
    got = get_topic(e, "TopB");
    assert_topic_equal(&got, &b);
    assert_int_equal(got.topic_id, id_b);
    assert_int_equal(topic_id_of(e, "TopA"), id_a);
    assert_int_equal(topic_id_of(e, "TopB"), id_b);
    assert_int_equal(engine_topic_get(e, "TopC", 4, &got), LSMQ_ENOTFOUND);
    assert_int_equal(engine_topic_get(e, "Top", 3, &got), LSMQ_ENOTFOUND);
    uint32_t id;
    assert_int_equal(engine_topic_id(e, "TopC", 4, &id), LSMQ_ENOTFOUND);

    engine_topic_config *list = NULL;
    size_t n = 0;
    assert_int_equal(engine_topic_list(e, &list, &n), 0);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        const engine_topic_config *want = strcmp(list[i].name, "TopA") == 0 ? &a : &b;
        assert_topic_equal(&list[i], want);
        assert_int_equal(list[i].topic_id, want == &a ? id_a : id_b);
    }
    engine_free(list);

    /* Growing TopA opens queues 2 and 3; queue 0 keeps its messages. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(append_one(e, "TopA", 0, "before growing", NULL), (uint64_t)i);
    engine_msg m = test_msg("x", NULL);
    assert_int_equal(engine_append_wait(e, "TopA", 4, 3, &m, 1, NULL), LSMQ_ENOTFOUND);
    a = topic_cfg("TopA", 4, 4, ENGINE_PERM_READ | ENGINE_PERM_WRITE | ENGINE_PERM_INHERIT, 1,
                  "+delay.level=3");
    assert_int_equal(engine_topic_put(e, &a, &out), 0);
    assert_int_equal(out.topic_id, id_a);
    assert_topic_equal(&out, &a);
    assert_int_equal(append_one(e, "TopA", 3, "after growing", NULL), 0);
    uint64_t min, max;
    queue_offsets(e, "TopA", 0, &min, &max);
    assert_int_equal(min, 0);
    assert_int_equal(max, 3);

    /* Everything comes back from the store. */
    e = reopen(e, &cfg);
    got = get_topic(e, "TopA");
    assert_topic_equal(&got, &a);
    assert_int_equal(got.topic_id, id_a);
    got = get_topic(e, "TopB");
    assert_topic_equal(&got, &b);
    assert_int_equal(got.topic_id, id_b);
    assert_int_equal(engine_topic_list(e, &list, &n), 0);
    assert_int_equal(n, 2);
    engine_free(list);
    queue_offsets(e, "TopA", 0, &min, &max);
    assert_int_equal(max, 3);
    queue_offsets(e, "TopA", 3, &min, &max);
    assert_int_equal(max, 1);

    /* Shrinking hides queue 3 but keeps its data, also across a reopen. */
    engine_topic_config shrunk = topic_cfg("TopA", 1, 1, ENGINE_PERM_READ | ENGINE_PERM_WRITE,
                                           0, "");
    assert_int_equal(engine_topic_put(e, &shrunk, &out), 0);
    assert_int_equal(out.topic_id, id_a);
    assert_int_equal(engine_append_wait(e, "TopA", 4, 3, &m, 1, NULL), LSMQ_ENOTFOUND);
    assert_int_equal(engine_queue_offsets(e, "TopA", 4, 3, &min, &max), LSMQ_ENOTFOUND);
    e = reopen(e, &cfg);
    got = get_topic(e, "TopA");
    assert_topic_equal(&got, &shrunk);
    assert_int_equal(engine_queue_offsets(e, "TopA", 4, 3, &min, &max), LSMQ_ENOTFOUND);
    assert_int_equal(engine_topic_put(e, &a, NULL), 0);
    queue_offsets(e, "TopA", 3, &min, &max);
    assert_int_equal(min, 0);
    assert_int_equal(max, 1);
    proto_record rec;
    uint8_t *keep;
    read_decoded(e, "TopA", 3, 0, &rec, &keep);
    assert_int_equal(rec.body_len, strlen("after growing"));
    assert_memory_equal(rec.body, "after growing", rec.body_len);
    engine_free(keep);
    assert_int_equal(append_one(e, "TopA", 3, "after regrowing", NULL), 1);

    engine_close(e);
    test_rmdir_free(dir);
}

static void test_topic_bad_names(void **state)
{
    (void)state;
    char *dir = test_tmpdir("topics-names");
    engine_config cfg;
    test_engine_config(&cfg, dir);
    engine *e = test_engine_open(&cfg);
    const uint32_t rw = ENGINE_PERM_READ | ENGINE_PERM_WRITE;

    engine_topic_config c = topic_cfg("", 1, 1, rw, 0, "");
    assert_int_equal(engine_topic_put(e, &c, NULL), LSMQ_EINVAL);

    /* 256 characters fill the name array with no terminator. */
    memset(&c, 0, sizeof c);
    fill_name(c.name, sizeof c.name);
    c.read_queue_nums = c.write_queue_nums = 1;
    c.perm = rw;
    assert_int_equal(engine_topic_put(e, &c, NULL), LSMQ_ETOOBIG);

    static const char *const bad[] = {"a b", "a/b", "a\\b", "a\tb", "topic?", "a:b", "a\nb"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = topic_cfg(bad[i], 1, 1, rw, 0, "");
        int rc = engine_topic_put(e, &c, NULL);
        if (rc != LSMQ_EINVAL)
            fail_msg("engine_topic_put(\"%s\") = %d, expected LSMQ_EINVAL", bad[i], rc);
    }

    c = topic_cfg("NoQueues", 0, 0, rw, 0, "");
    assert_int_equal(engine_topic_put(e, &c, NULL), LSMQ_EINVAL);
    c = topic_cfg("AbsurdQueues", UINT32_MAX, UINT32_MAX, rw, 0, "");
    assert_true(engine_topic_put(e, &c, NULL) != 0);

    /* The longest legal name, and every legal character. */
    memset(&c, 0, sizeof c);
    fill_name(c.name, PROTO_TOPIC_MAX);
    c.read_queue_nums = c.write_queue_nums = 1;
    c.perm = rw;
    assert_int_equal(engine_topic_put(e, &c, NULL), 0);
    char longest[PROTO_TOPIC_MAX + 1];
    fill_name(longest, PROTO_TOPIC_MAX);
    longest[PROTO_TOPIC_MAX] = '\0';
    assert_int_equal(append_one(e, longest, 0, "long topic", NULL), 0);
    proto_record rec;
    uint8_t *keep;
    read_decoded(e, longest, 0, 0, &rec, &keep);
    assert_int_equal(rec.magic, PROTO_MAGIC_V2); /* over 127 bytes: the v2 layout */
    assert_int_equal(rec.topic_len, PROTO_TOPIC_MAX);
    assert_memory_equal(rec.topic, longest, PROTO_TOPIC_MAX);
    engine_free(keep);
    engine_topic_config legal = topic_cfg("%RETRY%g|x_y-Z09", 1, 1, rw, 0, "");
    assert_int_equal(engine_topic_put(e, &legal, NULL), 0);

    engine_topic_config *list = NULL;
    size_t n = 0;
    assert_int_equal(engine_topic_list(e, &list, &n), 0);
    assert_int_equal(n, 2);
    engine_free(list);
    engine_topic_config got;
    assert_int_equal(engine_topic_get(e, "a b", 3, &got), LSMQ_ENOTFOUND);
    assert_int_equal(engine_topic_get(e, "NoQueues", 8, &got), LSMQ_ENOTFOUND);

    char long_name[PROTO_TOPIC_MAX + 1];
    fill_name(long_name, sizeof long_name);
    assert_int_equal(engine_topic_delete(e, "", 0), LSMQ_EINVAL);
    assert_int_equal(engine_topic_delete(e, "a b", 3), LSMQ_EINVAL);
    assert_int_equal(engine_topic_delete(e, long_name, sizeof long_name), LSMQ_ETOOBIG);
    assert_int_equal(engine_topic_delete(e, "Missing", 7), LSMQ_ENOTFOUND);
    assert_int_equal(engine_topic_delete(e, long_name, PROTO_TOPIC_MAX), 0);
    assert_int_equal(engine_topic_list(e, &list, &n), 0);
    assert_int_equal(n, 1);
    engine_free(list);

    engine_close(e);
    test_rmdir_free(dir);
}

/* ---- Topics: attributes that are not a tidy C string ---------------------- */

/*
 * engine_topic_put runs in a child process (this program re-executed), so
 * an abort or a sanitizer report there is seen here as a failure instead of
 * ending the whole run. The child's exit status says what the put did.
 */
enum attr_outcome {
    ATTR_STORED = 10,  /* put returned 0 and the bytes came back, also after a reopen */
    ATTR_REFUSED = 11, /* put returned LSMQ_EINVAL or LSMQ_ETOOBIG and stored nothing */
    ATTR_WRONG = 12,   /* anything else */
};

static const char ATTR_NOT_UTF8[] = "tag=\xff\xfe\xc3(";

/* Child side: put topic "Attr" with the attributes named by `kind`. */
static int attributes_child(const char *dir, const char *kind)
{
    engine_config cfg;
    test_engine_config(&cfg, dir);
    engine_topic_config c = topic_cfg("Attr", 1, 1, ENGINE_PERM_READ | ENGINE_PERM_WRITE, 0, "");
    if (strcmp(kind, "not-utf8") == 0)
        snprintf(c.attributes, sizeof c.attributes, "%s", ATTR_NOT_UTF8);
    else if (strcmp(kind, "unterminated") == 0)
        memset(c.attributes, 'x', sizeof c.attributes); /* 256 bytes, no terminator */
    else
        return ATTR_WRONG;
    engine *e = NULL;
    char err[256];
    if (engine_open(&cfg, &e, err, sizeof err) != 0)
        return ATTR_WRONG;
    int rc = engine_topic_put(e, &c, NULL);
    int outcome = ATTR_WRONG;
    engine_topic_config got;
    if (rc == LSMQ_EINVAL || rc == LSMQ_ETOOBIG) {
        if (engine_topic_get(e, "Attr", 4, &got) == LSMQ_ENOTFOUND)
            outcome = ATTR_REFUSED;
    } else if (rc == 0 && strcmp(kind, "not-utf8") == 0) {
        engine_close(e);
        e = NULL;
        if (engine_open(&cfg, &e, err, sizeof err) == 0 &&
            engine_topic_get(e, "Attr", 4, &got) == 0 &&
            strcmp(got.attributes, ATTR_NOT_UTF8) == 0)
            outcome = ATTR_STORED;
    }
    engine_close(e);
    return outcome;
}

/* Parent side: run the child on a fresh store; its outcome, or fail if it died. */
static int run_attributes_child(const char *kind)
{
    char *dir = test_tmpdir("topics-attr");
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl("/proc/self/exe", "test_engine_topics", "--attributes-child", dir, kind,
              (char *)NULL);
        _exit(127);
    }
    int status = 0;
    pid_t waited = waitpid(pid, &status, 0);
    test_rmdir_free(dir);
    assert_int_equal(waited, pid);
    if (WIFSIGNALED(status))
        fail_msg("engine_topic_put with %s attributes killed the process (signal %d)", kind,
                 WTERMSIG(status));
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (code != ATTR_STORED && code != ATTR_REFUSED)
        fail_msg("engine_topic_put with %s attributes: the child exited with %d (%s)", kind,
                 code, code == ATTR_WRONG ? "unexpected result" : "crashed or sanitizer report");
    return code;
}

/* Free-form attributes need not be UTF-8: store them as given, or refuse them; never abort. */
static void test_topic_attributes_not_utf8(void **state)
{
    (void)state;
    run_attributes_child("not-utf8");
}

/* 256 attribute bytes with no terminator are refused like a 256-character name. */
static void test_topic_attributes_unterminated(void **state)
{
    (void)state;
    assert_int_equal(run_attributes_child("unterminated"), ATTR_REFUSED);
}

/* ---- Topics: delete and re-create ----------------------------------------- */

typedef struct sent {
    uint32_t queue;
    uint64_t offset;
    uint64_t position;
} sent;

static void test_topic_delete_recreate(void **state)
{
    (void)state;
    char *dir = test_tmpdir("topics-delete");
    engine_config cfg;
    test_engine_config(&cfg, dir);
    fake_clock clk;
    use_fake_clock(&cfg, &clk, T0_MS);
    engine *e = test_engine_open(&cfg);
    test_topic_create(e, "Re", 2);
    test_topic_create(e, "Keep", 1);
    uint32_t old_id = topic_id_of(e, "Re");
    uint32_t keep_id = topic_id_of(e, "Keep");

    sent re[6], keep[3];
    for (int i = 0; i < 6; i++) {
        re[i].queue = i < 4 ? 0 : 1;
        re[i].offset = append_one(e, "Re", re[i].queue, "old", &re[i].position);
    }
    for (int i = 0; i < 3; i++) {
        keep[i].queue = 0;
        keep[i].offset = append_one(e, "Keep", 0, "kept", &keep[i].position);
    }
    assert_int_equal(engine_offset_set(e, "G1", 2, "Re", 2, 0, 2), 0);
    assert_int_equal(engine_offset_set(e, "G1", 2, "Re", 2, 1, 1), 0);
    assert_int_equal(engine_offset_set(e, "G2", 2, "Re", 2, 0, 4), 0);
    assert_int_equal(engine_offset_set(e, "G1", 2, "Keep", 4, 0, 3), 0);
    assert_int_equal(engine_group_put(e, "G1", 2, "{}", 2), 0);

    assert_int_equal(engine_topic_delete(e, "Re", 2), 0);
    uint64_t end = engine_next_log_position(e);
    engine_topic_config got;
    uint64_t off, min, max;
    uint32_t id;
    assert_int_equal(engine_topic_get(e, "Re", 2, &got), LSMQ_ENOTFOUND);
    assert_int_equal(engine_topic_id(e, "Re", 2, &id), LSMQ_ENOTFOUND);
    assert_int_equal(engine_queue_offsets(e, "Re", 2, 0, &min, &max), LSMQ_ENOTFOUND);
    assert_int_equal(engine_offset_get(e, "G1", 2, "Re", 2, 0, &off), LSMQ_ENOTFOUND);
    assert_int_equal(engine_offset_set(e, "G1", 2, "Re", 2, 0, 9), LSMQ_ENOTFOUND);
    assert_int_equal(test_search_time(e, old_id, 0, T0_MS, INDEX_TIME_LOWER, &off),
                     LSMQ_ENOTFOUND);
    engine_msg m = test_msg("x", NULL);
    assert_int_equal(engine_append_wait(e, "Re", 2, 0, &m, 1, NULL), LSMQ_ENOTFOUND);
    assert_int_equal(engine_topic_delete(e, "Re", 2), LSMQ_ENOTFOUND);
    assert_no_trace(e, old_id);

    /* Re-created later: a new id, empty queues, none of the old offsets. */
    atomic_store(&clk.now_ms, T0_MS + 5000);
    test_topic_create(e, "Re", 2);
    uint32_t new_id = topic_id_of(e, "Re");
    assert_true(new_id != old_id && new_id != keep_id);
    for (uint32_t q = 0; q < 2; q++) {
        queue_offsets(e, "Re", q, &min, &max);
        assert_int_equal(min, 0);
        assert_int_equal(max, 0);
        engine_read_result rr;
        assert_int_equal(engine_read(e, "Re", 2, q, 0, 8, READ_BYTES, &rr), 0);
        assert_int_equal(rr.status, ENGINE_READ_NO_MESSAGE);
        engine_free(rr.data);
        assert_int_equal(engine_offset_get(e, "G1", 2, "Re", 2, q, &off), LSMQ_ENOTFOUND);
        assert_int_equal(test_search_time(e, new_id, q, T0_MS, INDEX_TIME_LOWER, &off), 0);
        assert_int_equal(off, 0);
    }
    assert_int_equal(engine_offset_get(e, "G2", 2, "Re", 2, 0, &off), LSMQ_ENOTFOUND);

    uint64_t pos;
    assert_int_equal(append_one(e, "Re", 0, "new", &pos), 0);
    assert_int_equal(pos, end);
    for (int i = 0; i < 6; i++)
        assert_true(pos > re[i].position);
    proto_record rec;
    uint8_t *keep_buf;
    read_decoded(e, "Re", 0, 0, &rec, &keep_buf);
    assert_int_equal(rec.physical_offset, pos);
    assert_memory_equal(rec.body, "new", 3);
    engine_free(keep_buf);
    /* idx_time of the new topic knows only the new message. */
    assert_int_equal(test_search_time(e, new_id, 0, T0_MS, INDEX_TIME_LOWER, &off), 0);
    assert_int_equal(off, 0);
    assert_int_equal(test_search_time(e, new_id, 0, T0_MS, INDEX_TIME_UPPER, &off), 0);
    assert_int_equal(off, 0);
    assert_int_equal(test_search_time(e, new_id, 0, T0_MS + 5000, INDEX_TIME_UPPER, &off), 0);
    assert_int_equal(off, 0);
    assert_int_equal(test_search_time(e, new_id, 0, T0_MS + 5001, INDEX_TIME_LOWER, &off), 0);
    assert_int_equal(off, 1);

    for (int pass = 0; pass < 2; pass++) {
        /* Old log positions resolve to nothing; Keep is untouched. */
        for (int i = 0; i < 6; i++) {
            uint32_t tid, qid;
            uint8_t *bytes = NULL;
            size_t len;
            assert_int_equal(test_locate(e, re[i].position, &tid, &qid, &off), LSMQ_ENOTFOUND);
            assert_int_equal(test_get_by_position(e, re[i].position, &bytes, &len),
                             LSMQ_ENOTFOUND);
        }
        for (int i = 0; i < 3; i++) {
            uint32_t tid, qid;
            assert_int_equal(test_locate(e, keep[i].position, &tid, &qid, &off), 0);
            assert_int_equal(tid, keep_id);
            assert_int_equal(off, keep[i].offset);
        }
        queue_offsets(e, "Keep", 0, &min, &max);
        assert_int_equal(max, 3);
        assert_int_equal(engine_offset_get(e, "G1", 2, "Keep", 4, 0, &off), 0);
        assert_int_equal(off, 3);
        assert_int_equal(topic_id_of(e, "Re"), new_id);
        queue_offsets(e, "Re", 0, &min, &max);
        assert_int_equal(max, 1);
        queue_offsets(e, "Re", 1, &min, &max);
        assert_int_equal(max, 0);
        assert_int_equal(engine_offset_get(e, "G1", 2, "Re", 2, 0, &off), LSMQ_ENOTFOUND);
        assert_no_trace(e, old_id);
        char *gcfg;
        size_t glen;
        assert_int_equal(engine_group_get(e, "G1", 2, &gcfg, &glen), 0);
        engine_free(gcfg);
        if (pass == 0)
            e = reopen(e, &cfg);
    }
    assert_int_equal(append_one(e, "Re", 0, "new again", &pos), 1);
    assert_true(pos > end);

    engine_close(e);
    test_rmdir_free(dir);
}

static void test_topic_ids_never_reused(void **state)
{
    (void)state;
    char *dir = test_tmpdir("topics-ids");
    engine_config cfg;
    test_engine_config(&cfg, dir);
    engine *e = test_engine_open(&cfg);
    uint32_t ids[6];
    size_t n = 0;

    test_topic_create(e, "IdA", 1);
    test_topic_create(e, "IdB", 1);
    test_topic_create(e, "IdC", 1);
    ids[n++] = topic_id_of(e, "IdA");
    ids[n++] = topic_id_of(e, "IdB");
    ids[n++] = topic_id_of(e, "IdC");
    append_one(e, "IdC", 0, "c", NULL);

    /* The newest topic goes; after a reopen its id must still not come back. */
    assert_int_equal(engine_topic_delete(e, "IdC", 3), 0);
    e = reopen(e, &cfg);
    test_topic_create(e, "IdD", 1);
    ids[n++] = topic_id_of(e, "IdD");
    assert_int_equal(engine_topic_delete(e, "IdD", 3), 0);
    assert_int_equal(engine_topic_delete(e, "IdA", 3), 0);
    e = reopen(e, &cfg);
    test_topic_create(e, "IdA", 1);
    ids[n++] = topic_id_of(e, "IdA");
    test_topic_create(e, "IdC", 1);
    ids[n++] = topic_id_of(e, "IdC");
    uint64_t min, max;
    queue_offsets(e, "IdC", 0, &min, &max);
    assert_int_equal(max, 0);

    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (ids[i] == ids[j])
                fail_msg("topic id %u handed out twice (creations %zu and %zu)", ids[i], i, j);
    engine_close(e);
    test_rmdir_free(dir);
}

/* ---- Consumer offsets and groups ------------------------------------------ */

static void expect_offset(engine *e, const char *group, const char *topic, uint32_t queue,
                          uint64_t want)
{
    uint64_t got = 0;
    int rc = engine_offset_get(e, group, strlen(group), topic, strlen(topic), queue, &got);
    if (rc != 0 || got != want)
        fail_msg("offset of %s on %s:%u: rc %d, %" PRIu64 ", expected %" PRIu64, group, topic,
                 queue, rc, got, want);
}

static void expect_group(engine *e, const char *group, const void *cfg, size_t cfg_len)
{
    char *got = NULL;
    size_t len = 0;
    assert_int_equal(engine_group_get(e, group, strlen(group), &got, &len), 0);
    assert_int_equal(len, cfg_len);
    assert_memory_equal(got, cfg, len);
    engine_free(got);
}

static void run_offsets_and_groups(engine_flush_mode mode)
{
    char *dir = test_tmpdir("topics-offsets");
    engine_config cfg;
    test_engine_config(&cfg, dir);
    cfg.flush_mode = mode;
    engine *e = test_engine_open(&cfg);
    test_topic_create(e, "OffT", 3);
    test_topic_create(e, "OffU", 1);
    const uint64_t big = UINT64_C(1) << 40;

    assert_int_equal(engine_offset_set(e, "CG", 2, "OffT", 4, 0, 10), 0);
    assert_int_equal(engine_offset_set(e, "CG", 2, "OffT", 4, 1, 0), 0);
    assert_int_equal(engine_offset_set(e, "CG", 2, "OffT", 4, 2, big), 0);
    assert_int_equal(engine_offset_set(e, "CG2", 3, "OffT", 4, 0, 7), 0);
    assert_int_equal(engine_offset_set(e, "CG", 2, "OffU", 4, 0, 5), 0);
    assert_int_equal(engine_offset_set(e, "CG", 2, "OffT", 4, 0, 11), 0); /* overwrite */

    static const char cfg1[] = "{\"groupName\":\"CG\",\"retryMaxTimes\":16}";
    static const char cfg2[] = "{\"groupName\":\"CG\",\"retryMaxTimes\":3}\0tail";
    assert_int_equal(engine_group_put(e, "CG", 2, cfg1, sizeof cfg1 - 1), 0);
    expect_group(e, "CG", cfg1, sizeof cfg1 - 1);
    assert_int_equal(engine_group_put(e, "CG", 2, cfg2, sizeof cfg2 - 1), 0);
    assert_int_equal(engine_group_put(e, "Gone", 4, cfg1, sizeof cfg1 - 1), 0);
    expect_group(e, "Gone", cfg1, sizeof cfg1 - 1);
    assert_int_equal(engine_group_delete(e, "Gone", 4), 0);

    for (int pass = 0; pass < 2; pass++) {
        expect_offset(e, "CG", "OffT", 0, 11);
        expect_offset(e, "CG", "OffT", 1, 0);
        expect_offset(e, "CG", "OffT", 2, big);
        expect_offset(e, "CG2", "OffT", 0, 7);
        expect_offset(e, "CG", "OffU", 0, 5);
        uint64_t off;
        assert_int_equal(engine_offset_get(e, "CG2", 3, "OffT", 4, 1, &off), LSMQ_ENOTFOUND);
        assert_int_equal(engine_offset_get(e, "Nobody", 6, "OffT", 4, 0, &off), LSMQ_ENOTFOUND);
        assert_int_equal(engine_offset_get(e, "C", 1, "OffT", 4, 0, &off), LSMQ_ENOTFOUND);
        assert_int_equal(engine_offset_get(e, "CG", 2, "NoTopic", 7, 0, &off), LSMQ_ENOTFOUND);
        assert_int_equal(engine_offset_set(e, "CG", 2, "NoTopic", 7, 0, 1), LSMQ_ENOTFOUND);
        assert_int_equal(engine_offset_get(e, "CG", 2, "NoTopic", 7, 0, &off), LSMQ_ENOTFOUND);

        expect_group(e, "CG", cfg2, sizeof cfg2 - 1);
        char *got = NULL;
        size_t len;
        assert_int_equal(engine_group_get(e, "Gone", 4, &got, &len), LSMQ_ENOTFOUND);
        assert_int_equal(engine_group_get(e, "Never", 5, &got, &len), LSMQ_ENOTFOUND);
        assert_int_equal(engine_group_put(e, "", 0, cfg1, 3), LSMQ_EINVAL);
        assert_int_equal(engine_group_get(e, "", 0, &got, &len), LSMQ_EINVAL);
        if (pass == 0)
            e = reopen(e, &cfg);
    }

    /* A commit right before close is not lost. */
    assert_int_equal(engine_offset_set(e, "CG", 2, "OffT", 4, 1, 42), 0);
    e = reopen(e, &cfg);
    expect_offset(e, "CG", "OffT", 1, 42);

    engine_close(e);
    test_rmdir_free(dir);
}

static void test_offsets_async_flush(void **state)
{
    (void)state;
    run_offsets_and_groups(ENGINE_ASYNC_FLUSH);
}

static void test_offsets_sync_flush(void **state)
{
    (void)state;
    run_offsets_and_groups(ENGINE_SYNC_FLUSH);
}

/* ---- Writes that do not wait ---------------------------------------------- */

/* Outcomes of asynchronous writes, in completion order. */
typedef struct outcomes {
    pthread_mutex_t lock;
    int status[8];
    int n;
} outcomes;

static void record_outcome(void *ctx, int status)
{
    outcomes *o = ctx;
    pthread_mutex_lock(&o->lock);
    if (o->n < 8)
        o->status[o->n] = status;
    o->n++;
    pthread_mutex_unlock(&o->lock);
}

/* A synchronous write queued behind the asynchronous ones waits for them. */
static void wait_behind(engine *e)
{
    assert_int_equal(engine_group_put(e, "Barrier", 7, "{}", 2), 0);
}

static void test_async_topic_and_group_writes(void **state)
{
    (void)state;
    char *dir = test_tmpdir("topics-async");
    engine_config cfg;
    test_engine_config(&cfg, dir);
    engine *e = test_engine_open(&cfg);
    outcomes o = {.n = 0};
    pthread_mutex_init(&o.lock, NULL);

    engine_topic_config tc;
    memset(&tc, 0, sizeof tc);
    strcpy(tc.name, "AsyncT");
    tc.read_queue_nums = tc.write_queue_nums = 4;
    tc.perm = ENGINE_PERM_READ | ENGINE_PERM_WRITE;
    assert_int_equal(engine_topic_put_async(e, &tc, record_outcome, &o), 0);
    memset(&tc, 0xAB, sizeof tc); /* the engine kept its own copy */
    static const char gcfg[] = "{\"groupName\":\"AG\"}";
    assert_int_equal(engine_group_put_async(e, "AG", 2, gcfg, sizeof gcfg - 1, record_outcome, &o),
                     0);
    assert_int_equal(engine_topic_delete_async(e, "NoSuch", 6, record_outcome, &o), 0);
    wait_behind(e);
    assert_int_equal(o.n, 3);
    assert_int_equal(o.status[0], 0);
    assert_int_equal(o.status[1], 0);
    assert_int_equal(o.status[2], LSMQ_ENOTFOUND);
    engine_topic_config got;
    assert_int_equal(engine_topic_get(e, "AsyncT", 6, &got), 0);
    assert_int_equal(got.write_queue_nums, 4);
    expect_group(e, "AG", gcfg, sizeof gcfg - 1);

    /* Refused before anything is queued: no callback runs. */
    memset(&tc, 0, sizeof tc);
    strcpy(tc.name, "Bad Name");
    tc.read_queue_nums = tc.write_queue_nums = 1;
    assert_int_equal(engine_topic_put_async(e, &tc, record_outcome, &o), LSMQ_EINVAL);
    strcpy(tc.name, "ZeroQueues");
    tc.read_queue_nums = tc.write_queue_nums = 0;
    assert_int_equal(engine_topic_put_async(e, &tc, record_outcome, &o), LSMQ_EINVAL);
    assert_int_equal(engine_group_put_async(e, "", 0, gcfg, 3, record_outcome, &o), LSMQ_EINVAL);
    assert_int_equal(engine_topic_delete_async(e, "", 0, record_outcome, &o), LSMQ_EINVAL);

    /* Deletes, then a reopen: what landed is stored. */
    assert_int_equal(engine_topic_delete_async(e, "AsyncT", 6, record_outcome, &o), 0);
    assert_int_equal(engine_group_delete_async(e, "AG", 2, record_outcome, &o), 0);
    wait_behind(e);
    assert_int_equal(o.n, 5);
    assert_int_equal(o.status[3], 0);
    assert_int_equal(o.status[4], 0);
    e = reopen(e, &cfg);
    assert_int_equal(engine_topic_get(e, "AsyncT", 6, &got), LSMQ_ENOTFOUND);
    char *text = NULL;
    size_t len;
    assert_int_equal(engine_group_get(e, "AG", 2, &text, &len), LSMQ_ENOTFOUND);

    /* Queued right before close: the close drains it and its callback runs. */
    strcpy(tc.name, "LastT");
    tc.read_queue_nums = tc.write_queue_nums = 1;
    assert_int_equal(engine_topic_put_async(e, &tc, record_outcome, &o), 0);
    engine_close(e);
    assert_int_equal(o.n, 6);
    assert_int_equal(o.status[5], 0);
    e = test_engine_open(&cfg);
    assert_int_equal(engine_topic_get(e, "LastT", 5, &got), 0);
    engine_close(e);
    pthread_mutex_destroy(&o.lock);
    test_rmdir_free(dir);
}

/* ---- Bad appends ----------------------------------------------------------- */

typedef struct store_marks {
    uint64_t max[3];
    uint64_t end;
} store_marks;

static store_marks marks_of(engine *e)
{
    store_marks s;
    uint64_t min;
    queue_offsets(e, "Bad", 0, &min, &s.max[0]);
    queue_offsets(e, "Bad", 1, &min, &s.max[1]);
    queue_offsets(e, "Other", 0, &min, &s.max[2]);
    s.end = engine_next_log_position(e);
    return s;
}

static void count_cb(void *ctx, const engine_append_result *r)
{
    (void)r;
    atomic_fetch_add((_Atomic int *)ctx, 1);
}

typedef struct bad_append {
    const char *label;
    const char *topic;
    size_t topic_len;
    uint32_t queue;
    const engine_msg *msgs;
    uint32_t n;
    int want;
} bad_append;

static void test_bad_appends(void **state)
{
    (void)state;
    char *dir = test_tmpdir("topics-badappend");
    engine_config cfg;
    test_engine_config(&cfg, dir);
    cfg.max_message_size = 1024;
    engine *e = test_engine_open(&cfg);
    test_topic_create(e, "Bad", 2);
    test_topic_create(e, "Other", 1);
    append_one(e, "Bad", 0, "good", NULL);
    append_one(e, "Other", 0, "good", NULL);
    store_marks before = marks_of(e);

    static char big[2048], props[64];
    memset(big, 'b', sizeof big);
    memset(props, 'p', sizeof props);
    char long_topic[PROTO_TOPIC_MAX + 1];
    fill_name(long_topic, sizeof long_topic);

    engine_msg good = test_msg("fine", NULL);
    engine_msg over = good;
    over.body = big;
    over.body_len = 1025;
    engine_msg over_props = good; /* 1000 + 25 */
    over_props.body = big;
    over_props.body_len = 1000;
    over_props.props = props;
    over_props.props_len = 25;
    engine_msg no_body = good;
    no_body.body = NULL;
    engine_msg batch[3] = {good, good, over};

    const bad_append cases[] = {
        {"unknown topic", "Nope", 4, 0, &good, 1, LSMQ_ENOTFOUND},
        {"queue id == queue count", "Bad", 3, 2, &good, 1, LSMQ_ENOTFOUND},
        {"queue id far out", "Bad", 3, UINT32_MAX, &good, 1, LSMQ_ENOTFOUND},
        {"prefix of a topic name", "Ba", 2, 0, &good, 1, LSMQ_ENOTFOUND},
        {"empty topic name", "", 0, 0, &good, 1, LSMQ_EINVAL},
        {"256-character topic", long_topic, sizeof long_topic, 0, &good, 1, LSMQ_ETOOBIG},
        {"body over max_message_size", "Bad", 3, 0, &over, 1, LSMQ_ETOOBIG},
        {"body + props over max_message_size", "Bad", 3, 0, &over_props, 1, LSMQ_ETOOBIG},
        {"one message of a batch too big", "Bad", 3, 1, batch, 3, LSMQ_ETOOBIG},
        {"n == 0", "Bad", 3, 0, &good, 0, LSMQ_EINVAL},
        {"n == 0 on an unknown topic", "Nope", 4, 0, &good, 0, LSMQ_EINVAL},
        {"NULL body with a length", "Bad", 3, 0, &no_body, 1, LSMQ_EINVAL},
    };
    _Atomic int callbacks = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bad_append *c = &cases[i];
        int rc = engine_append(e, c->topic, c->topic_len, c->queue, c->msgs, c->n, count_cb,
                               &callbacks);
        int rc_wait = engine_append_wait(e, c->topic, c->topic_len, c->queue, c->msgs, c->n,
                                         NULL);
        if (rc != c->want || rc_wait != c->want)
            fail_msg("%s: engine_append %d, engine_append_wait %d, expected %d (%s)", c->label,
                     rc, rc_wait, c->want, lsmq_strerror(c->want));
    }
    /* A round trip through the writer: anything queued by mistake is committed by now. */
    assert_int_equal(engine_group_put(e, "barrier", 7, "{}", 2), 0);
    assert_int_equal(atomic_load(&callbacks), 0);
    store_marks after = marks_of(e);
    assert_memory_equal(&after, &before, sizeof after);

    /* The limit itself is allowed. */
    engine_msg exact = good;
    exact.body = big;
    exact.body_len = 1024;
    engine_msg exact_props = over_props;
    exact_props.props_len = 24;
    engine_append_result r;
    assert_int_equal(engine_append_wait(e, "Bad", 3, 1, &exact, 1, &r), 0);
    assert_int_equal(r.queue_offset, before.max[1]);
    assert_int_equal(r.log_position, before.end);
    assert_int_equal(engine_append_wait(e, "Bad", 3, 1, &exact_props, 1, &r), 0);
    assert_int_equal(r.queue_offset, before.max[1] + 1);

    engine_close(e);
    test_rmdir_free(dir);
}

/* ---- A corrupt stored record ----------------------------------------------- */

#define COR_MSGS 6

static void test_corrupt_record(void **state)
{
    (void)state;
    char *dir = test_tmpdir("topics-corrupt");
    engine_config cfg;
    test_engine_config(&cfg, dir);
    cfg.retention_interval_ms = 3600000;
    fake_clock clk;
    use_fake_clock(&cfg, &clk, T0_MS);
    engine *e = test_engine_open(&cfg);
    test_topic_create(e, "Cor", 1);
    uint32_t tid = topic_id_of(e, "Cor");
    uint8_t *orig[COR_MSGS];
    size_t orig_len[COR_MSGS];
    uint64_t pos[COR_MSGS];
    for (int i = 0; i < COR_MSGS; i++) {
        atomic_store(&clk.now_ms, T0_MS + i);
        char body[32];
        snprintf(body, sizeof body, "message %d", i);
        assert_int_equal(append_one(e, "Cor", 0, body, &pos[i]), (uint64_t)i);
        orig[i] = read_one(e, "Cor", 0, (uint64_t)i, &orig_len[i]);
    }
    engine_close(e);

    /* Offset 2: not a record at all; 3: a record cut short; 4: a bad magic. */
    static const char junk[] = "this is not a record";
    uint8_t *flipped = malloc(orig_len[4]);
    assert_non_null(flipped);
    memcpy(flipped, orig[4], orig_len[4]);
    flipped[4] ^= 0xff;
    raw_put_msg(dir, tid, 0, 2, junk, sizeof junk - 1);
    raw_put_msg(dir, tid, 0, 3, orig[3], 30);
    raw_put_msg(dir, tid, 0, 4, flipped, orig_len[4]);
    const uint8_t *stored[COR_MSGS] = {orig[0], orig[1], (const uint8_t *)junk, orig[3],
                                       flipped, orig[5]};
    const size_t stored_len[COR_MSGS] = {orig_len[0], orig_len[1], sizeof junk - 1, 30,
                                         orig_len[4], orig_len[5]};

    e = test_engine_open(&cfg);
    uint64_t min, max;
    queue_offsets(e, "Cor", 0, &min, &max);
    assert_int_equal(min, 0);
    assert_int_equal(max, COR_MSGS);
    for (int i = 0; i < COR_MSGS; i++) {
        size_t len;
        if (i >= 2 && i <= 4) {
            /* The engine refuses to hand out a record that does not decode and
             * names the offset after it, so a reader can skip it. */
            engine_read_result bad;
            assert_int_equal(engine_read(e, "Cor", 3, 0, (uint64_t)i, 1, READ_BYTES, &bad),
                             LSMQ_ECORRUPT);
            assert_int_equal(bad.next_offset, (uint64_t)i + 1);
            assert_null(bad.data);
        } else {
            uint8_t *got = read_one(e, "Cor", 0, (uint64_t)i, &len);
            assert_int_equal(len, stored_len[i]);
            assert_memory_equal(got, stored[i], len);
            proto_record rec;
            assert_int_equal(proto_record_decode(got, len, &rec), (long)len);
            engine_free(got);
        }

        /* The index still points at the slot; whatever it hands back is the stored bytes. */
        uint8_t *by_pos = NULL;
        int rc = test_get_by_position(e, pos[i], &by_pos, &len);
        if (rc == 0) {
            assert_int_equal(len, stored_len[i]);
            assert_memory_equal(by_pos, stored[i], len);
            engine_free(by_pos);
        } else if (!(i >= 2 && i <= 4 && rc == LSMQ_ECORRUPT)) {
            fail_msg("index_get_by_position of offset %d = %d", i, rc);
        }
    }

    /* A multi-record read starts with the intact records; walking it never overruns. */
    engine_read_result rr;
    assert_int_equal(engine_read(e, "Cor", 3, 0, 0, 16, READ_BYTES, &rr), 0);
    assert_int_equal(rr.status, ENGINE_READ_FOUND);
    assert_int_equal(rr.count, 2);
    assert_int_equal(rr.next_offset, 2);
    assert_true(rr.len >= orig_len[0] + orig_len[1]);
    assert_memory_equal(rr.data, orig[0], orig_len[0]);
    assert_memory_equal(rr.data + orig_len[0], orig[1], orig_len[1]);
    size_t at = 0;
    for (uint32_t i = 0; i < rr.count && at < rr.len; i++) {
        proto_record rec;
        long size = proto_record_decode(rr.data + at, rr.len - at, &rec);
        if (size <= 0)
            break;
        at += (size_t)size;
    }
    assert_int_equal(at, orig_len[0] + orig_len[1]);
    engine_free(rr.data);

    /* Index searches, appends and a retention pass carry on. */
    uint64_t off;
    assert_int_equal(test_search_time(e, tid, 0, T0_MS + 2, INDEX_TIME_LOWER, &off), 0);
    assert_int_equal(off, 2);
    atomic_store(&clk.now_ms, T0_MS + 10);
    assert_int_equal(append_one(e, "Cor", 0, "after", NULL), COR_MSGS);
    proto_record rec;
    uint8_t *keep;
    read_decoded(e, "Cor", 0, COR_MSGS, &rec, &keep);
    assert_int_equal(rec.queue_offset, COR_MSGS);
    engine_free(keep);
    /* Retention takes a corrupt record to be as old as the next good one, so a
     * damaged queue still expires: everything here is long past the limit. */
    atomic_store(&clk.now_ms, T0_MS + INT64_C(1000) * 3600 * 1000);
    assert_int_equal(engine_retention_run(e), 0);
    queue_offsets(e, "Cor", 0, &min, &max);
    assert_int_equal(max, COR_MSGS + 1);
    assert_int_equal(min, COR_MSGS + 1);
    e = reopen(e, &cfg);
    queue_offsets(e, "Cor", 0, &min, &max);
    assert_int_equal(max, COR_MSGS + 1);

    engine_close(e);
    free(flipped);
    for (int i = 0; i < COR_MSGS; i++)
        engine_free(orig[i]);
    test_rmdir_free(dir);
}

/* ---- Opening ---------------------------------------------------------------- */

static void test_open_twice_is_locked(void **state)
{
    (void)state;
    char *dir = test_tmpdir("topics-lock");
    engine_config cfg;
    test_engine_config(&cfg, dir);
    engine *e = test_engine_open(&cfg);
    test_topic_create(e, "Locked", 1);

    static char sentinel;
    engine *second = (engine *)(void *)&sentinel; /* engine_open must reset it to NULL */
    char err[256] = "";
    assert_int_equal(engine_open(&cfg, &second, err, sizeof err), LSMQ_ELOCKED);
    assert_null(second);
    if (!strstr(err, "in use"))
        fail_msg("the error does not say the store is in use: \"%s\"", err);

    /* The first engine is unharmed, and the store opens again once it is closed. */
    assert_int_equal(append_one(e, "Locked", 0, "still here", NULL), 0);
    e = reopen(e, &cfg);
    uint64_t min, max;
    queue_offsets(e, "Locked", 0, &min, &max);
    assert_int_equal(max, 1);
    engine_close(e);
    test_rmdir_free(dir);
}

static void test_open_without_store_path(void **state)
{
    (void)state;
    engine_config cfg;
    engine_config_init(&cfg);
    static char sentinel;
    engine *e = (engine *)(void *)&sentinel; /* engine_open must reset it to NULL */
    char err[256] = "";
    assert_int_equal(engine_open(&cfg, &e, err, sizeof err), LSMQ_EINVAL);
    assert_null(e);
    assert_true(err[0] != '\0');
    cfg.store_path = "";
    err[0] = '\0';
    assert_int_equal(engine_open(&cfg, &e, err, sizeof err), LSMQ_EINVAL);
    assert_null(e);
    assert_true(err[0] != '\0');
}

static void test_open_newer_version(void **state)
{
    (void)state;
    char *dir = test_tmpdir("topics-version");
    engine_config cfg;
    test_engine_config(&cfg, dir);
    engine *e = test_engine_open(&cfg);
    test_topic_create(e, "Versioned", 1);
    append_one(e, "Versioned", 0, "v1", NULL);
    engine_close(e);

    raw_put_version(dir, 99);
    static char sentinel;
    e = (engine *)(void *)&sentinel;
    char err[256] = "";
    assert_int_equal(engine_open(&cfg, &e, err, sizeof err), LSMQ_EVERSION);
    assert_null(e);
    if (!strstr(err, "99"))
        fail_msg("the error does not name the store's version: \"%s\"", err);

    /* The refused store was left as it was. */
    raw_put_version(dir, ENGINE_FORMAT_VERSION);
    e = test_engine_open(&cfg);
    uint64_t min, max;
    queue_offsets(e, "Versioned", 0, &min, &max);
    assert_int_equal(max, 1);
    engine_close(e);
    test_rmdir_free(dir);
}

/* ---- Store time ------------------------------------------------------------- */

typedef struct clock_step {
    int64_t clock_ms;
    uint32_t n;
} clock_step;

static void test_store_time_never_backwards(void **state)
{
    (void)state;
    char *dir = test_tmpdir("topics-clock");
    engine_config cfg;
    test_engine_config(&cfg, dir);
    fake_clock clk;
    use_fake_clock(&cfg, &clk, 0);
    engine *e = test_engine_open(&cfg);
    test_topic_create(e, "Clk", 2);

    static const clock_step steps[] = {
        {5000, 1}, {3000, 1}, {6000, 2}, {1000, 3}, {6000, 1}, {7000, 1}, {0, 2}, {7001, 1},
    };
    engine_msg msgs[3] = {test_msg("a", NULL), test_msg("b", NULL), test_msg("c", NULL)};
    int64_t expect[16];
    size_t n = 0;
    int64_t high = INT64_MIN;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        atomic_store(&clk.now_ms, steps[i].clock_ms);
        if (steps[i].clock_ms > high)
            high = steps[i].clock_ms;
        engine_append_result r;
        assert_int_equal(engine_append_wait(e, "Clk", 3, 0, msgs, steps[i].n, &r), 0);
        assert_int_equal(r.store_ms, high);
        for (uint32_t k = 0; k < steps[i].n; k++)
            expect[n++] = high;
        /* The other queue is written too, with the clock as it is. */
        assert_int_equal(engine_append_wait(e, "Clk", 3, 1, msgs, 1, NULL), 0);
    }

    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            /* A reopen with the clock far back: the queue's last store time is remembered. */
            e = reopen(e, &cfg);
            atomic_store(&clk.now_ms, 10);
            assert_int_equal(engine_append_wait(e, "Clk", 3, 0, msgs, 2, NULL), 0);
            expect[n++] = high;
            expect[n++] = high;
            assert_int_equal(engine_append_wait(e, "Clk", 3, 1, msgs, 1, NULL), 0);
        }
        for (uint32_t q = 0; q < 2; q++) {
            uint64_t min, max;
            queue_offsets(e, "Clk", q, &min, &max);
            int64_t prev = INT64_MIN;
            for (uint64_t off = min; off < max; off++) {
                proto_record rec;
                uint8_t *keep;
                read_decoded(e, "Clk", q, off, &rec, &keep);
                if (rec.store_timestamp < prev)
                    fail_msg("Clk:%u offset %" PRIu64 ": store time %" PRId64
                             " before the previous %" PRId64, q, off, rec.store_timestamp, prev);
                if (q == 0 && rec.store_timestamp != expect[off])
                    fail_msg("Clk:0 offset %" PRIu64 ": store time %" PRId64 ", expected %" PRId64,
                             off, rec.store_timestamp, expect[off]);
                prev = rec.store_timestamp;
                engine_free(keep);
            }
            if (q == 0)
                assert_int_equal(max, n);
        }
    }
    engine_close(e);
    test_rmdir_free(dir);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--attributes-child") == 0)
        return attributes_child(argv[2], argv[3]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_topic_create_update),
        cmocka_unit_test(test_topic_bad_names),
        cmocka_unit_test(test_topic_attributes_not_utf8),
        cmocka_unit_test(test_topic_attributes_unterminated),
        cmocka_unit_test(test_topic_delete_recreate),
        cmocka_unit_test(test_topic_ids_never_reused),
        cmocka_unit_test(test_offsets_async_flush),
        cmocka_unit_test(test_offsets_sync_flush),
        cmocka_unit_test(test_async_topic_and_group_writes),
        cmocka_unit_test(test_bad_appends),
        cmocka_unit_test(test_corrupt_record),
        cmocka_unit_test(test_open_twice_is_locked),
        cmocka_unit_test(test_open_without_store_path),
        cmocka_unit_test(test_open_newer_version),
        cmocka_unit_test(test_store_time_never_backwards),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
