/*
 * test_engine_view: views, the read-only open and extensions.
 *
 * The program proves:
 *
 *  - a view is a snapshot: what is appended, committed, created or deleted
 *    after it opened is not in it (messages, queue offsets, consumer
 *    offsets, groups, topics, the next log position), and a later view
 *    sees all of it; its sequence grows with every commit, and on_commit
 *    reports each batch's first sequence as the one after the last view's;
 *  - a read-only open beside a live engine reads the store as of its open
 *    (topics, queues, messages, index queries over its views, the pull
 *    read), refuses every write with LSMQ_EINVAL, and leaves the store
 *    unchanged for the live engine;
 *  - column families that an extension declared and a later open does not
 *    (old stores' txn, a feature's own) open with the store, show in the family
 *    list and keep their data; a family name already taken fails the open;
 *    an extension's own writes are refused once the writer runs;
 *  - with the key index off (messageIndexEnable=false) a store that has
 *    idx_key opens, new messages get no key entries and old ones keep theirs.
 */
#include "engine_ext.h"
#include "testsupport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOPIC "ViewTopic"
#define TLEN (sizeof TOPIC - 1)

static char *dir;

static int setup(void **state)
{
    dir = test_tmpdir("view");
    return 0;
}

static int teardown(void **state)
{
    test_rmdir_free(dir);
    dir = NULL;
    return 0;
}

/* A fresh store under dir/sub: its path (malloc'ed) and config. */
static char *fresh_config(engine_config *c, const char *sub)
{
    char *path;
    assert_true(asprintf(&path, "%s/%s", dir, sub) > 0);
    test_engine_config(c, path);
    return path;
}

static void append(engine *e, const char *topic, uint32_t queue, const char *body,
                   const char *props)
{
    engine_msg m = test_msg(body, props);
    engine_append_result r;
    assert_int_equal(engine_append_wait(e, topic, strlen(topic), queue, &m, 1, &r), 0);
}

static uint64_t view_max_offset(const engine_view *v, uint32_t topic_id, uint32_t queue)
{
    engine_queue_info q;
    assert_int_equal(engine_view_queue(v, topic_id, queue, &q), 0);
    return q.max_offset;
}

static int count_messages(const engine_view *v, uint32_t topic_id)
{
    engine_msg_pos from = {topic_id, 0, 0}, to = {topic_id + 1, 0, 0};
    engine_msg_cursor *c;
    assert_int_equal(engine_msg_cursor_open(v, &from, &to, ENGINE_ITER_LOOKUP, &c), 0);
    int n = 0;
    for (engine_msg_cursor_seek(c, NULL); engine_msg_cursor_valid(c); engine_msg_cursor_next(c)) {
        engine_msg_pos at;
        const uint8_t *rec;
        size_t len;
        assert_int_equal(engine_msg_cursor_get(c, &at, &rec, &len), 0);
        assert_int_equal(at.topic_id, topic_id);
        proto_record r;
        assert_int_equal(proto_record_decode(rec, len, &r), (long)len);
        assert_int_equal(r.queue_offset, (int64_t)at.queue_offset);
        n++;
    }
    assert_int_equal(engine_msg_cursor_error(c, NULL, 0), 0);
    engine_msg_cursor_close(c);
    return n;
}

static int count_group(void *ctx, const char *name, size_t len, const char *cfg, size_t cfg_len)
{
    (*(int *)ctx)++;
    return 0;
}

typedef struct offset_seen {
    int n;
    uint64_t last;
} offset_seen;

static int see_offset(void *ctx, const engine_consumer_offset *o)
{
    offset_seen *s = ctx;
    assert_int_equal(o->group_len, 2);
    assert_memory_equal(o->group, "g1", 2);
    s->n++;
    s->last = o->offset;
    return 0;
}

static int has_topic(const engine_view *v, const char *name)
{
    engine_topic_config *t;
    size_t n;
    assert_int_equal(engine_view_topics(v, &t, &n), 0);
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        found |= strcmp(t[i].name, name) == 0;
        if (i)
            assert_true(strcmp(t[i - 1].name, t[i].name) < 0);
    }
    engine_free(t);
    return found;
}

/* ---- A view is a snapshot ------------------------------------------------- */

static void test_view_is_a_snapshot(void **state)
{
    engine_config c;
    char *path = fresh_config(&c, "snapshot");
    engine *e = test_engine_open(&c);
    test_topic_create(e, TOPIC, 2);
    uint32_t tid;
    assert_int_equal(engine_topic_id(e, TOPIC, TLEN, &tid), 0);
    for (int i = 0; i < 3; i++)
        append(e, TOPIC, 0, "before", NULL);
    assert_int_equal(engine_offset_set(e, "g1", 2, TOPIC, TLEN, 0, 1), 0);
    assert_int_equal(engine_group_put(e, "g1", 2, "{}", 2), 0);
    uint64_t logpos = engine_next_log_position(e);

    engine_view *old;
    assert_int_equal(engine_view_open(e, &old), 0);
    /* No write fails here, so the writer never waits for the view to close. */
    append(e, TOPIC, 0, "after", NULL);
    append(e, TOPIC, 1, "after", NULL);
    assert_int_equal(engine_offset_set(e, "g1", 2, TOPIC, TLEN, 0, 3), 0);
    assert_int_equal(engine_group_put(e, "g2", 2, "{}", 2), 0);
    test_topic_create(e, "Later", 1);
    engine_view *now;
    assert_int_equal(engine_view_open(e, &now), 0);

    assert_int_equal(view_max_offset(old, tid, 0), 3);
    assert_int_equal(view_max_offset(old, tid, 1), 0);
    assert_int_equal(view_max_offset(now, tid, 0), 4);
    assert_int_equal(view_max_offset(now, tid, 1), 1);
    assert_int_equal(count_messages(old, tid), 3);
    assert_int_equal(count_messages(now, tid), 5);
    engine_msg_pos fourth = {tid, 0, 3};
    uint8_t *rec;
    size_t len;
    assert_int_equal(engine_view_message(old, &fourth, &rec, &len), LSMQ_ENOTFOUND);
    assert_int_equal(engine_view_message(now, &fourth, &rec, &len), 0);
    engine_free(rec);

    offset_seen seen_old = {0}, seen_now = {0};
    assert_int_equal(engine_view_offsets(old, "g1", 2, see_offset, &seen_old), 0);
    assert_int_equal(engine_view_offsets(now, "g1", 2, see_offset, &seen_now), 0);
    assert_int_equal(seen_old.n, 1);
    assert_int_equal(seen_old.last, 1);
    assert_int_equal(seen_now.n, 1);
    assert_int_equal(seen_now.last, 3);
    int groups_old = 0, groups_now = 0;
    assert_int_equal(engine_view_groups(old, count_group, &groups_old), 0);
    assert_int_equal(engine_view_groups(now, count_group, &groups_now), 0);
    assert_int_equal(groups_old, 1);
    assert_int_equal(groups_now, 2);
    assert_false(has_topic(old, "Later"));
    assert_true(has_topic(now, "Later"));
    engine_topic_config tc;
    assert_int_equal(engine_view_topic(old, "Later", 5, &tc), LSMQ_ENOTFOUND);
    assert_int_equal(engine_view_topic(now, "Later", 5, &tc), 0);
    assert_int_equal(tc.read_queue_nums, 1);

    engine_store_meta m_old, m_now;
    assert_int_equal(engine_view_meta(old, &m_old), 0);
    assert_int_equal(engine_view_meta(now, &m_now), 0);
    assert_int_equal(m_old.format_version, ENGINE_FORMAT_VERSION);
    assert_int_equal(m_old.next_log_position, logpos);
    assert_int_equal(m_now.next_log_position, engine_next_log_position(e));
    assert_true(engine_view_sequence(now) > engine_view_sequence(old));
    assert_ptr_equal(engine_view_engine(now), e);

    /* Unknown topics and queues past the counts are not found. */
    engine_queue_info q;
    assert_int_equal(engine_view_queue(now, tid + 100, 0, &q), LSMQ_ENOTFOUND);
    assert_int_equal(engine_view_queue(now, tid, 2, &q), LSMQ_ENOTFOUND);
    engine_view_close(old);
    engine_view_close(now);
    engine_close(e);
    free(path);
}

/* ---- Sequences ------------------------------------------------------------ */

typedef struct commits {
    int n;
    uint64_t first_seq;
    size_t msgs;
} commits;

static void record_commit(const engine_ext_env *x, uint64_t first_seq, size_t n_msgs)
{
    commits *c = x->ctx;
    c->n++;
    c->first_seq = first_seq;
    c->msgs = n_msgs;
}

static void test_sequences(void **state)
{
    engine_config c;
    char *path = fresh_config(&c, "sequence");
    commits seen = {0};
    engine_extension x = {.name = "commits", .ctx = &seen, .hook.on_commit = record_commit};
    assert_int_equal(engine_config_add_extension(&c, &x), 0);
    engine *e = test_engine_open(&c);
    test_topic_create(e, TOPIC, 1);

    for (int i = 0; i < 3; i++) {
        engine_view *before;
        assert_int_equal(engine_view_open(e, &before), 0);
        uint64_t seq = engine_view_sequence(before);
        engine_view_close(before);
        append(e, TOPIC, 0, "m", "KEYS\001a b\002");
        assert_int_equal(seen.n, i + 1);
        assert_int_equal(seen.msgs, 1);
        assert_int_equal(seen.first_seq, seq + 1);
        engine_view *after;
        assert_int_equal(engine_view_open(e, &after), 0);
        /* The batch: the message, its index entries, the marks: several sequences. */
        assert_true(engine_view_sequence(after) > seen.first_seq);
        engine_view_close(after);
    }
    engine_close(e);
    free(path);
}

/* ---- Read-only open ------------------------------------------------------- */

static void test_readonly_beside_live(void **state)
{
    engine_config c;
    char *path = fresh_config(&c, "readonly");
    engine *e = test_engine_open(&c);
    test_topic_create(e, TOPIC, 2);
    uint32_t tid;
    assert_int_equal(engine_topic_id(e, TOPIC, TLEN, &tid), 0);
    for (int i = 0; i < 4; i++)
        append(e, TOPIC, (uint32_t)i % 2, "live", "KEYS\001ro\002");
    uint64_t logpos = engine_next_log_position(e);

    engine *ro;
    char err[256] = "";
    if (engine_open_readonly(path, &ro, err, sizeof err) != 0)
        fail_msg("engine_open_readonly: %s", err);
    assert_true(engine_is_readonly(ro));
    assert_false(engine_is_readonly(e));
    assert_int_equal(engine_format_version(ro), ENGINE_FORMAT_VERSION);
    assert_int_equal(engine_next_log_position(ro), logpos);
    append(e, TOPIC, 0, "unseen", NULL); /* after the open: not in the read-only store */

    engine_view *v;
    assert_int_equal(engine_view_open(ro, &v), 0);
    assert_true(has_topic(v, TOPIC));
    engine_queue_info *q;
    size_t nq;
    assert_int_equal(engine_view_queues(v, tid, &q, &nq), 0);
    assert_int_equal(nq, 2);
    assert_int_equal(q[0].max_offset, 2);
    assert_int_equal(q[1].max_offset, 2);
    assert_int_equal(q[0].min_offset, 0);
    assert_true(q[0].last_store_ms > 0 && q[0].in_config);
    engine_free(q);
    assert_int_equal(count_messages(v, tid), 4);
    uint64_t off;
    assert_int_equal(index_search_time(v, tid, 1, 0, INDEX_TIME_LOWER, &off), 0);
    assert_int_equal(off, 0);
    index_key_hit *hits;
    size_t n;
    assert_int_equal(index_query_key(v, tid, "ro", 2, INDEX_KEY_KEYS, INT64_MIN, INT64_MAX, 100,
                                     &hits, &n), 0);
    assert_int_equal(n, 4);
    uint8_t *rec;
    size_t len;
    assert_int_equal(index_get_by_position(v, hits[3].log_position, &rec, &len), 0);
    engine_free(rec);
    engine_free(hits);
    engine_view_close(v);

    /* The pull read works; writes do not. */
    engine_read_result rr;
    assert_int_equal(engine_read(ro, TOPIC, TLEN, 0, 0, 8, 1 << 20, &rr), 0);
    assert_int_equal(rr.count, 2);
    engine_free(rr.data);
    engine_msg m = test_msg("no", NULL);
    engine_append_result ar;
    assert_int_equal(engine_append_wait(ro, TOPIC, TLEN, 0, &m, 1, &ar), LSMQ_EINVAL);
    engine_topic_config tc;
    assert_int_equal(engine_topic_get(ro, TOPIC, TLEN, &tc), 0);
    assert_int_equal(engine_topic_put(ro, &tc, NULL), LSMQ_EINVAL);
    assert_int_equal(engine_topic_delete(ro, TOPIC, TLEN), LSMQ_EINVAL);
    assert_int_equal(engine_offset_set(ro, "g", 1, TOPIC, TLEN, 0, 1), LSMQ_EINVAL);
    assert_int_equal(engine_group_put(ro, "g", 1, "{}", 2), LSMQ_EINVAL);
    assert_int_equal(engine_retention_run(ro), LSMQ_EINVAL);
    engine_close(ro);

    /* The live store carries on as if nothing had looked. */
    append(e, TOPIC, 1, "still", NULL);
    uint64_t min, max;
    assert_int_equal(engine_queue_offsets(e, TOPIC, TLEN, 0, &min, &max), 0);
    assert_int_equal(max, 3);
    assert_int_equal(test_index_consistency(e, 10), 0);
    engine_close(e);
    free(path);
}

/* ---- Families nobody declares --------------------------------------------- */

static const engine_family_decl feature_families[] = {{"txn", {0}}, {"sched", {0}}};

static int feature_on_open(const engine_ext_env *x, char *errbuf, size_t errlen)
{
    assert_int_equal(x->n_families, 2);
    engine_batch *b = engine_batch_create(x->e);
    engine_batch_put(b, x->families[0], "k", 1, "v", 1);
    assert_int_equal(engine_batch_count(b), 1);
    int rc = engine_batch_write(b, true);
    engine_batch_destroy(b);
    return rc;
}

static const engine_extension feature = {
    .name = "feature", .families = feature_families, .n_families = 2,
    .on_open = feature_on_open,
};

static int family_listed(engine *e, const char *name)
{
    size_t n;
    const char *const *names = engine_families(e, &n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

static void expect_txn_value(engine *e)
{
    engine_view *v;
    engine_cf cf;
    assert_int_equal(engine_view_open(e, &v), 0);
    assert_int_equal(engine_family_find(v, "txn", &cf), 0);
    assert_true(cf >= ENGINE_CF_COUNT);
    uint8_t *val;
    size_t len;
    assert_int_equal(engine_view_get(v, cf, "k", 1, &val, &len), 0);
    assert_int_equal(len, 1);
    assert_memory_equal(val, "v", 1);
    engine_free(val);
    engine_view_close(v);
}

static void test_undeclared_families(void **state)
{
    engine_config c;
    char *path = fresh_config(&c, "families");
    assert_int_equal(engine_config_add_extension(&c, &feature), 0);
    engine *e = test_engine_open(&c);
    assert_true(family_listed(e, "txn") && family_listed(e, "sched"));
    /* Once the writer runs, nothing else writes: a batch of one's own is refused. */
    engine_batch *own = engine_batch_create(e);
    engine_batch_put(own, ENGINE_CF_META, "x", 1, "y", 1);
    assert_int_equal(engine_batch_write(own, true), LSMQ_EINVAL);
    engine_batch_destroy(own);
    assert_int_equal(engine_set_format_version(e, 1), LSMQ_EINVAL);
    assert_int_equal(engine_format_version(e), ENGINE_FORMAT_VERSION);
    test_topic_create(e, TOPIC, 1);
    append(e, TOPIC, 0, "m", NULL);
    engine_close(e);

    /* Opened without the feature: the families come along, untouched. */
    engine_config plain;
    test_engine_config(&plain, path);
    e = test_engine_open(&plain);
    assert_true(family_listed(e, "txn") && family_listed(e, "sched"));
    expect_txn_value(e);
    append(e, TOPIC, 0, "m", NULL);
    engine_view *v;
    engine_cf cf;
    assert_int_equal(engine_view_open(e, &v), 0);
    assert_int_equal(engine_family_find(v, "no-such-family", &cf), LSMQ_ENOTFOUND);
    assert_null(engine_iter_create(v, 9999, NULL, 0, NULL, 0, ENGINE_ITER_LOOKUP));
    engine_view_close(v);
    engine_close(e);

    engine *ro;
    char err[256] = "";
    assert_int_equal(engine_open_readonly(path, &ro, err, sizeof err), 0);
    expect_txn_value(ro);
    engine_close(ro);

    /* A family name already taken fails the open and leaves nothing open. */
    static const engine_family_decl taken[] = {{"msg", {0}}};
    static const engine_extension greedy = {.name = "greedy", .families = taken,
                                            .n_families = 1};
    engine_config bad;
    test_engine_config(&bad, path);
    assert_int_equal(engine_config_add_extension(&bad, &greedy), 0);
    err[0] = 0;
    assert_int_equal(engine_open(&bad, &e, err, sizeof err), LSMQ_EINVAL);
    assert_non_null(strstr(err, "msg"));
    e = test_engine_open(&plain); /* the store is still fine */
    engine_close(e);
    free(path);
}

/* ---- The key index switched off ------------------------------------------- */

static engine *open_key_index(const char *path, int key_index)
{
    engine_config c;
    test_engine_config(&c, path);
    index_options io = {.key_index = key_index};
    assert_int_equal(index_declare(&c, &io), 0);
    engine *e = NULL;
    char err[256] = "";
    if (engine_open(&c, &e, err, sizeof err) != 0)
        fail_msg("engine_open: %s", err);
    return e;
}

static size_t hits_of(engine *e, uint32_t tid, const char *key)
{
    index_key_hit *hits;
    size_t n;
    assert_int_equal(test_query_key(e, tid, key, strlen(key), INDEX_KEY_KEYS, INT64_MIN,
                                    INT64_MAX, 100, &hits, &n), 0);
    engine_free(hits);
    return n;
}

static void test_key_index_off(void **state)
{
    engine_config c;
    char *path = fresh_config(&c, "keyoff");
    engine *e = open_key_index(path, 1);
    test_topic_create(e, TOPIC, 1);
    uint32_t tid;
    assert_int_equal(engine_topic_id(e, TOPIC, TLEN, &tid), 0);
    append(e, TOPIC, 0, "one", "KEYS\001k1\002");
    assert_int_equal(hits_of(e, tid, "k1"), 1);
    engine_close(e);

    e = open_key_index(path, 0);
    assert_true(family_listed(e, INDEX_FAMILY_KEY));
    append(e, TOPIC, 0, "two", "KEYS\001k2\002");
    assert_int_equal(hits_of(e, tid, "k1"), 1);
    assert_int_equal(hits_of(e, tid, "k2"), 0);
    uint64_t off;
    assert_int_equal(test_search_time(e, tid, 0, 0, INDEX_TIME_UPPER, &off), 0);
    engine_close(e);

    e = open_key_index(path, 1);
    assert_int_equal(hits_of(e, tid, "k1"), 1);
    assert_int_equal(hits_of(e, tid, "k2"), 0); /* stored while off: never found by key */
    engine_close(e);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_view_is_a_snapshot),
        cmocka_unit_test(test_sequences),
        cmocka_unit_test(test_readonly_beside_live),
        cmocka_unit_test(test_undeclared_families),
        cmocka_unit_test(test_key_index_off),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
