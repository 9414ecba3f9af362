/*
 * test_key_index: idx_key (and idx_id, idx_time) against a brute-force model
 * through a random workload with restarts, retention and topic deletion.
 *
 * Messages go to the queues of four topics on an injected clock with runs of
 * equal store times. Each carries 0-3 words of KEYS from a small pool (so a
 * key has many messages, in several topics; "k1" is a prefix of "k10";
 * words repeat inside one KEYS) and usually a UNIQ_KEY, which KEYS sometimes
 * repeats. Between rounds the store is reopened, retention by age cuts the
 * older part of every queue, and a topic is deleted and re-created empty.
 * After every round the program proves, for every message ever written:
 *
 *  - a live message is found by each of its keys and by its unique key, with
 *    its queue, offset, log position and store time, and index_locate finds
 *    its log position; a removed one is found by nothing;
 *  - for every (topic, pool key): the hits are exactly the model's live
 *    messages carrying the key in KEYS, oldest first; a cap returns the
 *    newest ones; a time window [b, e] returns exactly those stored within;
 *  - index_search_time with LOWER and UPPER equals the brute-force answer.
 *
 * A second test rebuilds idx_key for a store whose format predates it.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_ext.h"
#include "testsupport.h"

#define T0_MS INT64_C(1700000000000)
#define HOUR_MS INT64_C(3600000)
#define N_TOPICS 4
#define POOL 16
#define MAX_KEYS 3
#define ROUNDS 4
#define STEPS_PER_ROUND 300
#define MAX_MSGS (ROUNDS * STEPS_PER_ROUND * 3 + 16)

static const uint32_t QUEUES_OF[N_TOPICS] = {3, 1, 2, 4};

typedef struct fake_clock {
    _Atomic int64_t now_ms;
} fake_clock;

static int fake_clock_ms(void *ctx, int64_t *now_ms)
{
    *now_ms = atomic_load(&((fake_clock *)ctx)->now_ms);
    return 0;
}

/* A store config in dir whose clock is clk, starting at T0_MS. */
static void config_with_clock(engine_config *cfg, const char *dir, fake_clock *clk)
{
    atomic_init(&clk->now_ms, T0_MS);
    test_engine_config(cfg, dir);
    cfg->clock_ms = fake_clock_ms;
    cfg->clock_ctx = clk;
}

typedef struct model_msg {
    int topic;
    uint32_t topic_id; /* at the time it was written */
    uint32_t queue;
    uint64_t offset;
    int64_t store_ms;
    uint64_t position;
    int nkeys;
    int keys[MAX_KEYS]; /* pool indexes; may repeat */
    bool has_uniq;
    bool uniq_in_keys;  /* KEYS repeats the unique key */
    char uniq[32];
    bool stamped;       /* store_ms and position loaded */
    bool dead;
} model_msg;

typedef struct model {
    model_msg *m;
    size_t n;
    uint32_t topic_id[N_TOPICS]; /* current id of each topic name */
    uint64_t next_offset[N_TOPICS][4];
    uint32_t seq;
} model;

static uint32_t next_rand(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

static void topic_name(int t, char out[8]) { snprintf(out, 8, "KT%d", t); }

static void pool_key(int k, char out[8]) { snprintf(out, 8, "k%d", k); }

/* The properties string of a model message. */
static void build_props(const model_msg *mm, char *out, size_t cap)
{
    size_t used = 0;
    if (mm->nkeys > 0 || mm->uniq_in_keys) {
        used += (size_t)snprintf(out + used, cap - used, "KEYS\001");
        for (int i = 0; i < mm->nkeys; i++) {
            char k[8];
            pool_key(mm->keys[i], k);
            used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? " " : "", k);
        }
        if (mm->uniq_in_keys)
            used += (size_t)snprintf(out + used, cap - used, "%s%s", mm->nkeys ? " " : "",
                                     mm->uniq);
        used += (size_t)snprintf(out + used, cap - used, "\002");
    }
    if (mm->has_uniq)
        used += (size_t)snprintf(out + used, cap - used, "UNIQ_KEY\001%s\002", mm->uniq);
    snprintf(out + used, cap - used, "TAGS\001t%d\002", mm->topic);
}

/* Append a batch of 1-3 random messages to a random queue; record them. */
static void write_step(engine *e, model *md, uint32_t *rng)
{
    int t = (int)(next_rand(rng) % N_TOPICS);
    uint32_t q = next_rand(rng) % QUEUES_OF[t];
    uint32_t n = 1 + next_rand(rng) % 3;
    char props[3][160], bodies[3][32];
    engine_msg msgs[3];
    assert_true(md->n + n <= MAX_MSGS);
    for (uint32_t i = 0; i < n; i++) {
        model_msg *mm = &md->m[md->n + i];
        memset(mm, 0, sizeof *mm);
        mm->topic = t;
        mm->topic_id = md->topic_id[t];
        mm->queue = q;
        mm->offset = md->next_offset[t][q]++;
        mm->nkeys = (int)(next_rand(rng) % (MAX_KEYS + 1));
        for (int k = 0; k < mm->nkeys; k++)
            mm->keys[k] = (int)(next_rand(rng) % POOL);
        if (mm->nkeys == 2 && next_rand(rng) % 4 == 0)
            mm->keys[1] = mm->keys[0]; /* "k3 k3" */
        mm->has_uniq = next_rand(rng) % 8 != 0;
        mm->uniq_in_keys = mm->has_uniq && next_rand(rng) % 6 == 0;
        snprintf(mm->uniq, sizeof mm->uniq, "U%08X%08X", md->seq++, next_rand(rng));
        build_props(mm, props[i], sizeof props[i]);
        snprintf(bodies[i], sizeof bodies[i], "body %u", md->seq);
        msgs[i] = test_msg(bodies[i], props[i]);
    }
    char name[8];
    topic_name(t, name);
    engine_append_result r;
    assert_int_equal(engine_append_wait(e, name, strlen(name), q, msgs, n, &r), 0);
    assert_int_equal(r.queue_offset, md->m[md->n].offset);
    md->n += n;
}

/* Fill in store times and positions from the stored records. */
static void load_stamps(engine *e, model *md)
{
    for (size_t i = 0; i < md->n; i++) {
        model_msg *mm = &md->m[i];
        if (mm->dead || mm->stamped)
            continue;
        engine_read_result rr;
        assert_int_equal(engine_read_by_id(e, mm->topic_id, mm->queue, mm->offset, 1, 1, &rr),
                         0);
        assert_int_equal(rr.status, ENGINE_READ_FOUND);
        proto_record rec;
        assert_true(proto_record_decode(rr.data, rr.len, &rec) > 0);
        assert_int_equal(rec.queue_offset, mm->offset);
        mm->store_ms = rec.store_timestamp;
        mm->position = (uint64_t)rec.physical_offset;
        mm->stamped = true;
        engine_free(rr.data);
    }
}

/* Messages below a queue's min offset, or of a deleted topic, are dead. */
static void mark_dead(engine *e, model *md)
{
    for (size_t i = 0; i < md->n; i++) {
        model_msg *mm = &md->m[i];
        if (mm->dead)
            continue;
        if (mm->topic_id != md->topic_id[mm->topic]) {
            mm->dead = true;
            continue;
        }
        uint64_t min, max;
        assert_int_equal(engine_queue_offsets_by_id(e, mm->topic_id, mm->queue, &min, &max), 0);
        if (mm->offset < min)
            mm->dead = true;
    }
}

static bool carries_key(const model_msg *mm, int k)
{
    for (int i = 0; i < mm->nkeys; i++)
        if (mm->keys[i] == k)
            return true;
    return false;
}

/* Hits must be the model messages of `want` (already in order), exactly. */
static void expect_hits(const index_key_hit *h, size_t n, model_msg **want, size_t nwant,
                        const char *what)
{
    if (n != nwant)
        fail_msg("%s: %zu hits, model says %zu", what, n, nwant);
    for (size_t i = 0; i < n; i++) {
        const model_msg *mm = want[i];
        if (h[i].queue_id != mm->queue || h[i].queue_offset != mm->offset ||
            h[i].log_position != mm->position || h[i].store_ms != mm->store_ms)
            fail_msg("%s: hit %zu is %u/%" PRIu64 "@%" PRIu64 ", model %u/%" PRIu64 "@%" PRIu64,
                     what, i, h[i].queue_id, h[i].queue_offset, h[i].log_position, mm->queue,
                     mm->offset, mm->position);
        assert_true(h[i].kinds & INDEX_KEY_KEYS);
    }
}

static int by_time_then_position(const void *a, const void *b)
{
    const model_msg *x = *(model_msg *const *)a, *y = *(model_msg *const *)b;
    if (x->store_ms != y->store_ms)
        return x->store_ms < y->store_ms ? -1 : 1;
    return x->position < y->position ? -1 : x->position > y->position;
}

static void check_pool_key(engine *e, model *md, int t, int k, uint32_t *rng)
{
    model_msg **want = malloc(md->n * sizeof *want + 1);
    assert_non_null(want);
    size_t nwant = 0;
    for (size_t i = 0; i < md->n; i++)
        if (!md->m[i].dead && md->m[i].topic == t && carries_key(&md->m[i], k))
            want[nwant++] = &md->m[i];
    qsort(want, nwant, sizeof *want, by_time_then_position);
    char key[8], what[64];
    pool_key(k, key);
    snprintf(what, sizeof what, "topic KT%d key %s", t, key);
    uint32_t tid = md->topic_id[t];

    index_key_hit *h;
    size_t n;
    assert_int_equal(test_query_key(e, tid, key, strlen(key), INDEX_KEY_KEYS, INT64_MIN,
                                    INT64_MAX, SIZE_MAX, &h, &n), 0);
    expect_hits(h, n, want, nwant, what);
    engine_free(h);

    /* A cap keeps the newest. */
    size_t cap = 3;
    assert_int_equal(test_query_key(e, tid, key, strlen(key), INDEX_KEY_KEYS, INT64_MIN,
                                    INT64_MAX, cap, &h, &n), 0);
    size_t keep = nwant < cap ? nwant : cap;
    expect_hits(h, n, want + (nwant - keep), keep, what);
    engine_free(h);

    /* A window from one model time to another (inclusive) or around them. */
    if (nwant > 0) {
        int64_t b = want[next_rand(rng) % nwant]->store_ms + (int64_t)(next_rand(rng) % 3) - 1;
        int64_t en = b + (int64_t)(next_rand(rng) % 200);
        size_t lo = 0;
        while (lo < nwant && want[lo]->store_ms < b)
            lo++;
        size_t hi = lo;
        while (hi < nwant && want[hi]->store_ms <= en)
            hi++;
        assert_int_equal(test_query_key(e, tid, key, strlen(key), INDEX_KEY_KEYS, b, en,
                                        SIZE_MAX, &h, &n), 0);
        expect_hits(h, n, want + lo, hi - lo, what);
        engine_free(h);
        /* End before begin: nothing. */
        assert_int_equal(test_query_key(e, tid, key, strlen(key), INDEX_KEY_KEYS, en + 1, b - 1,
                                        SIZE_MAX, &h, &n), 0);
        assert_int_equal(n, 0);
    }
    free(want);
}

static void check_message(engine *e, const model_msg *mm)
{
    index_key_hit *h;
    size_t n;
    if (mm->has_uniq) {
        assert_int_equal(test_query_key(e, mm->topic_id, mm->uniq, strlen(mm->uniq),
                                        INDEX_KEY_UNIQ, INT64_MIN, INT64_MAX, SIZE_MAX, &h, &n),
                         0);
        if (mm->dead) {
            if (n != 0)
                fail_msg("removed message %s still found by its unique key", mm->uniq);
        } else {
            if (n != 1)
                fail_msg("unique key %s: %zu hits", mm->uniq, n);
            assert_int_equal(h[0].queue_offset, mm->offset);
            assert_int_equal(h[0].log_position, mm->position);
            assert_int_equal(h[0].kinds,
                             INDEX_KEY_UNIQ | (mm->uniq_in_keys ? INDEX_KEY_KEYS : 0u));
        }
        engine_free(h);
    }
    uint32_t tid, qid;
    uint64_t off;
    int rc = test_locate(e, mm->position, &tid, &qid, &off);
    if (mm->dead) {
        assert_int_equal(rc, LSMQ_ENOTFOUND);
        return;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(tid, mm->topic_id);
    assert_int_equal(off, mm->offset);
    /* Every key of a live message finds it within its own millisecond. */
    for (int i = 0; i < mm->nkeys; i++) {
        char key[8];
        pool_key(mm->keys[i], key);
        assert_int_equal(test_query_key(e, mm->topic_id, key, strlen(key), INDEX_KEY_KEYS,
                                        mm->store_ms, mm->store_ms, SIZE_MAX, &h, &n), 0);
        bool found = false;
        for (size_t j = 0; j < n; j++)
            found |= h[j].log_position == mm->position;
        assert_true(found);
        engine_free(h);
    }
}

/* Search by time over every queue of every topic, against the model. */
static void check_time_search(engine *e, model *md)
{
    for (int t = 0; t < N_TOPICS; t++)
        for (uint32_t q = 0; q < QUEUES_OF[t]; q++) {
            uint64_t min, max;
            assert_int_equal(engine_queue_offsets_by_id(e, md->topic_id[t], q, &min, &max), 0);
            for (size_t i = 0; i < md->n; i++) {
                const model_msg *mm = &md->m[i];
                if (mm->dead || mm->topic != t || mm->queue != q)
                    continue;
                /* LOWER at its time: the first live offset with that time. */
                uint64_t first = mm->offset, last = mm->offset;
                for (size_t j = 0; j < md->n; j++) {
                    const model_msg *o = &md->m[j];
                    if (o->dead || o->topic != t || o->queue != q || o->store_ms != mm->store_ms)
                        continue;
                    if (o->offset < first)
                        first = o->offset;
                    if (o->offset > last)
                        last = o->offset;
                }
                uint64_t got;
                assert_int_equal(test_search_time(e, md->topic_id[t], q, mm->store_ms,
                                                  INDEX_TIME_LOWER, &got), 0);
                assert_int_equal(got, first);
                assert_int_equal(test_search_time(e, md->topic_id[t], q, mm->store_ms,
                                                  INDEX_TIME_UPPER, &got), 0);
                assert_int_equal(got, last);
            }
        }
}

static void check_all(engine *e, model *md, uint32_t *rng)
{
    load_stamps(e, md);
    mark_dead(e, md);
    for (size_t i = 0; i < md->n; i++)
        check_message(e, &md->m[i]);
    for (int t = 0; t < N_TOPICS; t++)
        for (int k = 0; k < POOL; k++)
            check_pool_key(e, md, t, k, rng);
    check_time_search(e, md);
    assert_int_equal(test_index_consistency(e, 10), 0);
}

static void create_topics(engine *e, model *md)
{
    for (int t = 0; t < N_TOPICS; t++) {
        char name[8];
        topic_name(t, name);
        test_topic_create(e, name, QUEUES_OF[t]);
        assert_int_equal(engine_topic_id(e, name, strlen(name), &md->topic_id[t]), 0);
    }
}

static void test_key_index_against_model(void **state)
{
    char *dir = test_tmpdir("keyidx");
    fake_clock clk;
    engine_config cfg;
    config_with_clock(&cfg, dir, &clk);
    cfg.file_reserved_hours = 1;
    cfg.retention_interval_ms = 3600000;
    model md = {.m = calloc(MAX_MSGS, sizeof(model_msg))};
    assert_non_null(md.m);
    uint32_t rng = 0x9e3779b9u;

    engine *e = test_engine_open(&cfg);
    create_topics(e, &md);
    int64_t round_start = T0_MS;
    for (int round = 0; round < ROUNDS; round++, round_start += 2 * HOUR_MS) {
        int64_t now = round_start;
        for (int s = 0; s < STEPS_PER_ROUND; s++) {
            /* The first steps share the round's first ms: retention cuts there. */
            if (s >= 20 && next_rand(&rng) % 3 == 0)
                now += 1 + (int64_t)(next_rand(&rng) % 40);
            atomic_store(&clk.now_ms, now);
            write_step(e, &md, &rng);
        }
        check_all(e, &md, &rng);

        /* Restart: everything comes from disk. */
        engine_close(e);
        e = test_engine_open(&cfg);
        check_all(e, &md, &rng);

        /* An hour after this round began, retention cuts what is older than
         * an hour: the earlier rounds and the first few ms of this one. */
        atomic_store(&clk.now_ms, round_start + HOUR_MS + 5);
        assert_int_equal(engine_retention_run(e), 0);
        if (engine_retention_removed(e) == 0) /* counted since this open */
            fail_msg("round %d: retention removed nothing", round);
        check_all(e, &md, &rng);

        /* A topic goes and comes back empty under a new id. */
        if (round == 1 || round == 2) {
            int t = round; /* KT1, then KT2 */
            char name[8];
            topic_name(t, name);
            assert_int_equal(engine_topic_delete(e, name, strlen(name)), 0);
            test_topic_create(e, name, QUEUES_OF[t]);
            uint32_t old = md.topic_id[t];
            assert_int_equal(engine_topic_id(e, name, strlen(name), &md.topic_id[t]), 0);
            assert_true(md.topic_id[t] != old);
            memset(md.next_offset[t], 0, sizeof md.next_offset[t]);
            check_all(e, &md, &rng);
        }
    }
    size_t live = 0;
    for (size_t i = 0; i < md.n; i++)
        live += !md.m[i].dead;
    assert_true(live > 0 && live < md.n);
    engine_close(e);
    free(md.m);
    test_rmdir_free(dir);
}

/*
 * In a closed store, delete every idx_key entry and say the store is format
 * 1, as an older build left it.
 */
static void make_format_1(const char *dir)
{
    uint8_t lo[1] = {0}, hi[8], v1[4];
    memset(hi, 0xff, sizeof hi);
    proto_put_u32(v1, 1);
    char err[256] = "";
    if (engine_store_delete_range(dir, INDEX_FAMILY_KEY, lo, 0, hi, sizeof hi, err,
                                  sizeof err) != 0 ||
        engine_store_put(dir, "meta", "V", 1, v1, sizeof v1, err, sizeof err) != 0)
        fail_msg("making %s a format 1 store: %s", dir, err);
}

static void test_key_index_upgrade(void **state)
{
    char *dir = test_tmpdir("keyup");
    fake_clock clk;
    engine_config cfg;
    config_with_clock(&cfg, dir, &clk);
    model md = {.m = calloc(MAX_MSGS, sizeof(model_msg))};
    assert_non_null(md.m);
    uint32_t rng = 0x12345679u;

    engine *e = test_engine_open(&cfg);
    assert_int_equal(engine_format_version(e), ENGINE_FORMAT_VERSION);
    create_topics(e, &md);
    for (int s = 0; s < 200; s++) {
        atomic_store(&clk.now_ms, T0_MS + s / 3);
        write_step(e, &md, &rng);
    }
    load_stamps(e, &md);
    engine_close(e);
    make_format_1(dir);
    char err[256] = "";
    if (engine_open_readonly(dir, &e, err, sizeof err) != 0)
        fail_msg("opening %s read-only: %s", dir, err);
    assert_int_equal(engine_format_version(e), 1);
    index_key_hit *h;
    size_t n;
    assert_int_equal(test_query_key(e, md.topic_id[0], "k1", 2, INDEX_KEY_KEYS, INT64_MIN,
                                    INT64_MAX, SIZE_MAX, &h, &n), 0);
    assert_int_equal(n, 0); /* really gone */
    engine_close(e);

    e = test_engine_open(&cfg); /* the index's on_open indexes the messages */
    assert_int_equal(engine_format_version(e), ENGINE_FORMAT_VERSION);
    check_all(e, &md, &rng);
    engine_close(e);

    e = test_engine_open(&cfg); /* and only once */
    assert_int_equal(engine_format_version(e), ENGINE_FORMAT_VERSION);
    check_all(e, &md, &rng);
    engine_close(e);
    free(md.m);
    test_rmdir_free(dir);
}

static void test_key_index_bad_keys(void **state)
{
    char *dir = test_tmpdir("keybad");
    engine_config cfg;
    test_engine_config(&cfg, dir);
    engine *e = test_engine_open(&cfg);
    test_topic_create(e, "KB", 1);
    uint32_t tid;
    assert_int_equal(engine_topic_id(e, "KB", 2, &tid), 0);
    index_key_hit *h;
    size_t n;
    assert_int_equal(test_query_key(e, tid, "", 0, INDEX_KEY_KEYS, INT64_MIN, INT64_MAX, 10,
                                    &h, &n), LSMQ_EINVAL);
    char *big = malloc(INDEX_KEY_MAX + 2);
    assert_non_null(big);
    memset(big, 'x', INDEX_KEY_MAX + 1);
    assert_int_equal(test_query_key(e, tid, big, INDEX_KEY_MAX + 1, INDEX_KEY_KEYS, INT64_MIN,
                                    INT64_MAX, 10, &h, &n), LSMQ_EINVAL);
    /* A message with an over-long key, empty words and a trailing space:
     * the usable words are indexed, the rest is skipped. */
    big[INDEX_KEY_MAX + 1] = 0;
    size_t plen = strlen(big) + 64;
    char *props = malloc(plen);
    assert_non_null(props);
    snprintf(props, plen, "KEYS\001a  %s b \002UNIQ_KEY\001u1\002", big);
    engine_msg m = test_msg("x", props);
    engine_append_result r;
    assert_int_equal(engine_append_wait(e, "KB", 2, 0, &m, 1, &r), 0);
    const char *words[] = {"a", "b", "u1"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(test_query_key(e, tid, words[i], strlen(words[i]),
                                        INDEX_KEY_KEYS | INDEX_KEY_UNIQ, INT64_MIN, INT64_MAX,
                                        10, &h, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(h[0].log_position, r.log_position);
        engine_free(h);
    }
    /* Kinds are told apart: "a" is not a unique key, "u1" is not in KEYS. */
    assert_int_equal(test_query_key(e, tid, "a", 1, INDEX_KEY_UNIQ, INT64_MIN, INT64_MAX, 10,
                                    &h, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(test_query_key(e, tid, "u1", 2, INDEX_KEY_KEYS, INT64_MIN, INT64_MAX, 10,
                                    &h, &n), 0);
    assert_int_equal(n, 0);
    free(props);
    free(big);
    engine_close(e);
    test_rmdir_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_index_against_model),
        cmocka_unit_test(test_key_index_upgrade),
        cmocka_unit_test(test_key_index_bad_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
