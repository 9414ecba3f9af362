/*
 * The controller's encodings (controller/codec.h): commands and the whole
 * state round-trip, and every truncated, padded or malformed input is
 * refused rather than half-read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "codec.h"
#include "errors.h"
#include "sm.h"

static void roundtrip_cmd(const ctl_cmd *c)
{
    uint8_t *data;
    size_t len;
    ctl_cmd_encode(c, &data, &len);
    ctl_cmd back;
    assert_int_equal(ctl_cmd_decode(data, len, &back), 0);
    assert_int_equal(back.type, c->type);
    assert_string_equal(back.name, c->name);
    assert_int_equal(back.broker_id, c->broker_id);
    assert_string_equal(back.addr, c->addr);
    assert_int_equal(back.epoch, c->epoch);
    assert_int_equal(back.expect_epoch, c->expect_epoch);
    assert_int_equal(back.n_sync, c->n_sync);
    for (size_t i = 0; i < c->n_sync; i++)
        assert_int_equal(back.sync[i], c->sync[i]);

    /* Every proper prefix is refused, and so is one byte more. */
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(ctl_cmd_decode(data, cut, &back), LSMQ_ECORRUPT);
    assert_int_equal(len % 8, 0);
    uint8_t *longer = calloc(1, len + 8);
    memcpy(longer, data, len);
    assert_int_equal(ctl_cmd_decode(longer, len + 1, &back), LSMQ_ECORRUPT);
    assert_int_equal(ctl_cmd_decode(longer, len + 8, &back), LSMQ_ECORRUPT);
    free(longer);
    free(data);
}

/* What cannot be encoded is caught before. */
static void test_cmd_check(void **state)
{
    ctl_cmd c;
    assert_int_equal(ctl_cmd_register(&c, "b", 1, "h:1"), 0);
    assert_int_equal(ctl_cmd_check(&c), 0);
    c.type = (ctl_cmd_type)0;
    assert_int_equal(ctl_cmd_check(&c), LSMQ_EINVAL);
    c.type = CTL_CMD_REGISTER;
    c.addr[0] = '\0';
    assert_int_equal(ctl_cmd_check(&c), LSMQ_EINVAL);
    assert_int_equal(ctl_cmd_elect(&c, "b", 1), 0);
    memset(c.name, 'x', sizeof(c.name)); /* no NUL */
    assert_int_equal(ctl_cmd_check(&c), LSMQ_EINVAL);
    assert_int_equal(ctl_cmd_alter_sync(&c, "b", 1, 1, NULL, 0), 0);
    assert_int_equal(ctl_cmd_check(&c), 0); /* empty: the rules refuse it */
    c.n_sync = CTL_BROKERS_MAX + 1;
    assert_int_equal(ctl_cmd_check(&c), LSMQ_EINVAL);
}

/* Padding is zeros up to a multiple of 8, nothing else. */
static void test_cmd_padding(void **state)
{
    ctl_cmd c;
    assert_int_equal(ctl_cmd_elect(&c, "abcd", 1), 0); /* 3 + 6 + 8 + 8 = 25 bytes: 7 of padding */
    uint8_t *data;
    size_t len;
    ctl_cmd_encode(&c, &data, &len);
    assert_int_equal(len, 32);
    ctl_cmd back;
    for (size_t i = 25; i < 32; i++) {
        data[i] = 1;
        assert_int_equal(ctl_cmd_decode(data, len, &back), LSMQ_ECORRUPT);
        data[i] = 0;
    }
    assert_int_equal(ctl_cmd_decode(data, len, &back), 0);
    assert_int_equal(ctl_cmd_decode(data, 25, &back), LSMQ_ECORRUPT); /* unpadded */
    free(data);
}

static void test_cmd_roundtrip(void **state)
{
    ctl_cmd c;
    assert_int_equal(ctl_cmd_register(&c, "broker-a", 3, "192.168.1.3:10911"), 0);
    roundtrip_cmd(&c);
    assert_int_equal(ctl_cmd_elect(&c, "broker-a", CTL_NO_BROKER), 0);
    roundtrip_cmd(&c);
    assert_int_equal(ctl_cmd_elect(&c, "broker-a", 7), 0);
    roundtrip_cmd(&c);
    const int64_t ids[] = {0, 5, 1};
    assert_int_equal(ctl_cmd_alter_sync(&c, "broker-a", 5, 0xfedcba9876ULL, ids, 3), 0);
    roundtrip_cmd(&c);
    int64_t many[CTL_BROKERS_MAX];
    for (int i = 0; i < CTL_BROKERS_MAX; i++)
        many[i] = 1000 + i;
    assert_int_equal(ctl_cmd_alter_sync(&c, "b", 1000, 9, many, CTL_BROKERS_MAX), 0);
    roundtrip_cmd(&c);
}

/* Version 2: elections compare epochs, controllers announce addresses. */
static void test_cmd_v2(void **state)
{
    ctl_cmd c;
    assert_int_equal(ctl_cmd_elect_at(&c, "b", 3, 7), 0);
    roundtrip_cmd(&c);
    assert_int_equal(ctl_cmd_elect(&c, "b", 3), 0);
    assert_true(c.expect_epoch == CTL_ANY_EPOCH);
    roundtrip_cmd(&c);
    assert_int_equal(ctl_cmd_controller_addr(&c, "n1", "10.0.0.1:9876"), 0);
    roundtrip_cmd(&c);
    assert_int_equal(ctl_cmd_controller_addr(&c, "n1234567890123456", "h:1"), LSMQ_EINVAL);
    assert_int_equal(ctl_cmd_controller_addr(&c, "n1", ""), LSMQ_EINVAL);

    /* An election written by version 1 still decodes, comparing no epoch. */
    const uint8_t v1[] = {'C', 1, CTL_CMD_ELECT, 0, 1, 'b', 0, 0, 0, 0, 0, 0, 0, 5, 0, 0};
    assert_int_equal(ctl_cmd_decode(v1, sizeof(v1), &c), 0);
    assert_int_equal(c.type, CTL_CMD_ELECT);
    assert_int_equal(c.broker_id, 5);
    assert_true(c.expect_epoch == CTL_ANY_EPOCH);
    /* Version 1 had no controller addresses. */
    const uint8_t v1addr[] = {'C', 1, CTL_CMD_CONTROLLER_ADDR, 0, 1, 'n', 0, 0, 0, 0, 0, 0, 0, 0,
                              0, 1, 'h', 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(ctl_cmd_decode(v1addr, sizeof(v1addr), &c), LSMQ_ECORRUPT);
}

/* The fixed layout of version 2, byte for byte. */
static void test_cmd_layout(void **state)
{
    ctl_cmd c;
    assert_int_equal(ctl_cmd_register(&c, "ab", 258, "h:1"), 0);
    uint8_t *data;
    size_t len;
    ctl_cmd_encode(&c, &data, &len);
    const uint8_t want[] = {'C', 2, 1, 0, 2, 'a', 'b', 0, 0, 0, 0, 0, 0, 1, 2,
                            0, 3, 'h', ':', '1', 0, 0, 0, 0};
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(data, want, len);
    free(data);
}

/* Decode w's bytes, padded with zeros as the encoder does. */
static int decode_bytes(proto_buf *w)
{
    static const uint8_t zeros[8];
    ctl_cmd c;
    size_t len = w->len;
    if (len % 8)
        proto_buf_put(w, zeros, 8 - len % 8);
    int rc = ctl_cmd_decode((const uint8_t *)w->p, w->len, &c);
    w->len = len;
    return rc;
}

static void test_cmd_bad(void **state)
{
    proto_buf w = {0};
    /* The base: a valid ELECT, then variations. */
    proto_buf_put_u8(&w, 'C');
    proto_buf_put_u8(&w, 1);
    proto_buf_put_u8(&w, CTL_CMD_ELECT);
    proto_buf_put_str16(&w, "b");
    proto_buf_put_u64(&w, 1);
    assert_int_equal(decode_bytes(&w), 0);

    w.p[0] = 'X';
    assert_int_equal(decode_bytes(&w), LSMQ_ECORRUPT);
    w.p[0] = 'C';
    w.p[1] = 3;
    assert_int_equal(decode_bytes(&w), LSMQ_EVERSION);
    w.p[1] = 0;
    assert_int_equal(decode_bytes(&w), LSMQ_ECORRUPT);
    w.p[1] = 1;
    w.p[2] = 5;
    assert_int_equal(decode_bytes(&w), LSMQ_ECORRUPT);
    w.p[2] = 0;
    assert_int_equal(decode_bytes(&w), LSMQ_ECORRUPT);
    w.p[2] = CTL_CMD_ELECT;
    w.p[5] = 0; /* a NUL inside the name */
    assert_int_equal(decode_bytes(&w), LSMQ_ECORRUPT);
    proto_buf_free(&w);

    /* An empty name; a name one byte over the limit (the buffer is empty again after a free). */
    proto_buf_put_u8(&w, 'C');
    proto_buf_put_u8(&w, 1);
    proto_buf_put_u8(&w, CTL_CMD_ELECT);
    proto_buf_put_u16(&w, 0);
    proto_buf_put_u64(&w, 1);
    assert_int_equal(decode_bytes(&w), LSMQ_ECORRUPT);
    proto_buf_free(&w);
    char name[CTL_NAME_MAX + 2];
    memset(name, 'n', CTL_NAME_MAX + 1);
    name[CTL_NAME_MAX + 1] = '\0';
    proto_buf_put_u8(&w, 'C');
    proto_buf_put_u8(&w, 1);
    proto_buf_put_u8(&w, CTL_CMD_ELECT);
    proto_buf_put_str16(&w, name);
    proto_buf_put_u64(&w, 1);
    assert_int_equal(decode_bytes(&w), LSMQ_ECORRUPT);
    proto_buf_free(&w);

    /* A sync state set with more ids than the limit (all present). */
    proto_buf_put_u8(&w, 'C');
    proto_buf_put_u8(&w, 1);
    proto_buf_put_u8(&w, CTL_CMD_ALTER_SYNC);
    proto_buf_put_str16(&w, "b");
    proto_buf_put_u64(&w, 0);
    proto_buf_put_u64(&w, 1);
    proto_buf_put_u8(&w, CTL_BROKERS_MAX + 1);
    for (int i = 0; i < CTL_BROKERS_MAX + 1; i++)
        proto_buf_put_u64(&w, (uint64_t)i);
    assert_int_equal(decode_bytes(&w), LSMQ_ECORRUPT);
    proto_buf_free(&w);
}

static ctl_sm *sample_state(void)
{
    ctl_sm *sm = ctl_sm_create();
    ctl_cmd c;
    const char *names[] = {"zeta", "alpha", "mid"};
    for (int g = 0; g < 3; g++) {
        for (int64_t id = 0; id < 3; id++) {
            char addr[32];
            snprintf(addr, sizeof(addr), "10.0.%d.%d:10911", g, (int)id);
            ctl_cmd_register(&c, names[g], id, addr);
            assert_int_equal(ctl_sm_apply(sm, &c, NULL), 0);
        }
        if (g == 2)
            continue; /* "mid" never elects: no master */
        ctl_cmd_elect(&c, names[g], CTL_NO_BROKER);
        assert_int_equal(ctl_sm_apply(sm, &c, NULL), 0);
        const int64_t set[] = {0, 2};
        ctl_cmd_alter_sync(&c, names[g], 0, 1, set, 2);
        assert_int_equal(ctl_sm_apply(sm, &c, NULL), 0);
    }
    return sm;
}

static void test_state_roundtrip(void **state)
{
    ctl_sm *sm = sample_state();
    uint8_t *data;
    size_t len;
    ctl_state_encode(sm, &data, &len);

    ctl_sm *back;
    assert_int_equal(ctl_state_decode(data, len, &back), 0);
    assert_int_equal(ctl_sm_count(back), 3);
    for (size_t i = 0; i < 3; i++) {
        const ctl_group *a = ctl_sm_at(sm, i), *b = ctl_sm_at(back, i);
        assert_string_equal(a->name, b->name);
        assert_int_equal(a->epoch, b->epoch);
        assert_int_equal(a->sync_epoch, b->sync_epoch);
        assert_int_equal(a->master_id, b->master_id);
        assert_string_equal(a->master_addr, b->master_addr);
        assert_int_equal(a->n_brokers, b->n_brokers);
        assert_int_equal(a->n_sync, b->n_sync);
        assert_memory_equal(a->sync, b->sync, a->n_sync * sizeof(a->sync[0]));
    }
    assert_string_equal(ctl_sm_find(back, "zeta")->master_addr, "10.0.0.0:10911");
    uint8_t *again;
    size_t again_len;
    ctl_state_encode(back, &again, &again_len);
    assert_int_equal(again_len, len);
    assert_memory_equal(again, data, len);
    free(again);

    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(ctl_state_decode(data, cut, &back) != 0, 1);
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, data, len);
    longer[len] = 0;
    assert_int_equal(ctl_state_decode(longer, len + 1, &back), LSMQ_ECORRUPT);
    free(longer);
    ctl_sm_destroy(back);
    free(data);
    ctl_sm_destroy(sm);

    /* The empty state. */
    sm = ctl_sm_create();
    ctl_state_encode(sm, &data, &len);
    assert_int_equal(len, 7); /* no groups, no controllers */
    assert_int_equal(ctl_state_decode(data, len, &back), 0);
    assert_int_equal(ctl_sm_count(back), 0);
    ctl_sm_destroy(back);
    free(data);
    ctl_sm_destroy(sm);
}

/* One group, written field by field so each can be made wrong. */
typedef struct raw_group {
    const char *name;
    uint64_t epoch;
    int64_t master;
    size_t n_brokers;
    int64_t ids[4];
    size_t n_sync;
    int64_t sync[4];
} raw_group;

static int decode_groups(const raw_group *gs, size_t n)
{
    proto_buf w = {0};
    proto_buf_put_u8(&w, 'S');
    proto_buf_put_u8(&w, 1);
    proto_buf_put_u32(&w, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        proto_buf_put_str16(&w, gs[i].name);
        proto_buf_put_u64(&w, gs[i].epoch);
        proto_buf_put_u64(&w, (uint64_t)gs[i].master);
        proto_buf_put_u8(&w, (uint8_t)gs[i].n_brokers);
        for (size_t b = 0; b < gs[i].n_brokers; b++) {
            proto_buf_put_u64(&w, (uint64_t)gs[i].ids[b]);
            proto_buf_put_str16(&w, "h:1");
        }
        proto_buf_put_u8(&w, (uint8_t)gs[i].n_sync);
        for (size_t s = 0; s < gs[i].n_sync; s++)
            proto_buf_put_u64(&w, (uint64_t)gs[i].sync[s]);
    }
    ctl_sm *sm = NULL;
    int rc = ctl_state_decode((const uint8_t *)w.p, w.len, &sm);
    ctl_sm_destroy(sm);
    proto_buf_free(&w);
    return rc;
}

static void test_state_bad(void **state)
{
    const raw_group ok = {"b", 2, 1, 2, {0, 1}, 2, {0, 1}};
    assert_int_equal(decode_groups(&ok, 1), 0);
    const raw_group none = {"c", 0, CTL_NO_BROKER, 1, {4}, 0, {0}};
    const raw_group two[] = {ok, none};
    assert_int_equal(decode_groups(two, 2), 0);

    const raw_group unsorted[] = {none, ok};
    assert_int_equal(decode_groups(unsorted, 2), LSMQ_ECORRUPT);
    const raw_group twice[] = {ok, ok};
    assert_int_equal(decode_groups(twice, 2), LSMQ_ECORRUPT);

    raw_group g = ok;
    g.master = 7; /* not registered */
    assert_int_equal(decode_groups(&g, 1), LSMQ_ECORRUPT);
    g = ok;
    g.epoch = 0; /* a master without an epoch */
    assert_int_equal(decode_groups(&g, 1), LSMQ_ECORRUPT);
    g = ok;
    g.sync[0] = 1;
    g.sync[1] = 0; /* not ascending */
    assert_int_equal(decode_groups(&g, 1), LSMQ_ECORRUPT);
    g = ok;
    g.n_sync = 1;
    g.sync[0] = 0; /* the master outside its own set */
    assert_int_equal(decode_groups(&g, 1), LSMQ_ECORRUPT);
    g = ok;
    g.ids[1] = 0; /* a broker id twice */
    assert_int_equal(decode_groups(&g, 1), LSMQ_ECORRUPT);
    g = none;
    g.n_sync = 1;
    g.sync[0] = 4; /* a set without a master */
    assert_int_equal(decode_groups(&g, 1), LSMQ_ECORRUPT);
    g = ok;
    g.ids[0] = -3;
    g.sync[0] = -3;
    assert_int_equal(decode_groups(&g, 1), LSMQ_ECORRUPT);

    const uint8_t newer[] = {'S', 3, 0, 0, 0, 0};
    ctl_sm *sm = NULL;
    assert_int_equal(ctl_state_decode(newer, sizeof(newer), &sm), LSMQ_EVERSION);
    const uint8_t magic[] = {'C', 1, 0, 0, 0, 0};
    assert_int_equal(ctl_state_decode(magic, sizeof(magic), &sm), LSMQ_ECORRUPT);
    /* Many groups announced, none present. */
    const uint8_t claims[] = {'S', 1, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(ctl_state_decode(claims, sizeof(claims), &sm), LSMQ_ECORRUPT);
    assert_null(sm);
}

/* Controller addresses travel in the snapshot; version 1 has none. */
static void test_state_controllers(void **state)
{
    ctl_sm *sm = ctl_sm_create();
    ctl_cmd c;
    assert_int_equal(ctl_cmd_controller_addr(&c, "n2", "h2:9876"), 0);
    assert_int_equal(ctl_sm_apply(sm, &c, NULL), 0);
    assert_int_equal(ctl_cmd_controller_addr(&c, "n0", "h0:9876"), 0);
    assert_int_equal(ctl_sm_apply(sm, &c, NULL), 0);
    assert_int_equal(ctl_cmd_controller_addr(&c, "n2", "h2b:9876"), 0);
    assert_int_equal(ctl_sm_apply(sm, &c, NULL), 0);
    uint8_t *data;
    size_t len;
    ctl_state_encode(sm, &data, &len);
    ctl_sm *back = NULL;
    assert_int_equal(ctl_state_decode(data, len, &back), 0);
    assert_int_equal(ctl_sm_controller_count(back), 2);
    assert_string_equal(ctl_sm_controller_addr(back, "n0"), "h0:9876");
    assert_string_equal(ctl_sm_controller_addr(back, "n2"), "h2b:9876");
    assert_null(ctl_sm_controller_addr(back, "n1"));
    ctl_sm_destroy(back);
    for (size_t cut = 0; cut < len; cut++) {
        back = NULL;
        assert_int_equal(ctl_state_decode(data, cut, &back), LSMQ_ECORRUPT);
    }
    free(data);

    const uint8_t v1[] = {'S', 1, 0, 0, 0, 0};
    back = NULL;
    assert_int_equal(ctl_state_decode(v1, sizeof(v1), &back), 0);
    assert_int_equal(ctl_sm_controller_count(back), 0);
    ctl_sm_destroy(back);
    /* Out of order ids. */
    const uint8_t unsorted[] = {'S', 2, 0, 0, 0, 0, 2, 0, 2, 'n', '1', 0, 1, 'h',
                                0, 2, 'n', '0', 0, 1, 'h'};
    back = NULL;
    assert_int_equal(ctl_state_decode(unsorted, sizeof(unsorted), &back), LSMQ_ECORRUPT);
    ctl_sm_destroy(sm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cmd_roundtrip),
        cmocka_unit_test(test_cmd_layout),
        cmocka_unit_test(test_cmd_v2),
        cmocka_unit_test(test_state_controllers),
        cmocka_unit_test(test_cmd_padding),
        cmocka_unit_test(test_cmd_check),
        cmocka_unit_test(test_cmd_bad),
        cmocka_unit_test(test_state_roundtrip),
        cmocka_unit_test(test_state_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
