/*
 * liblsmq's I/O-free parts: queue allocation (AllocateMessageQueueAveragely
 * against §6.3's algorithm written out independently here), route JSON in
 * both brokerAddrs forms, received-message decoding with decompression,
 * send and batch encoding, the offsets file, subscriptions, heartbeat JSON
 * and the connection core's frame matching fed byte by byte; which broker
 * of a group a consumer reads from and commits to.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "client_internal.h"
#include "fastjson.h"
#include "message_id.h"
#include "props.h"
#include "record.h"
#include "testsupport.h"

/* ------------------------------------------------------------------ */
/* Rebalance                                                           */
/* ------------------------------------------------------------------ */

/* §6.3 step by step, kept deliberately literal. */
static void reference_allocate(int n, int c, int i, int *out, int *count)
{
    int mod = n % c, size, start, k;

    if (n <= c)
        size = 1;
    else if (mod > 0 && i < mod)
        size = n / c + 1;
    else
        size = n / c;
    start = (mod > 0 && i < mod) ? i * size : i * size + mod;
    *count = 0;
    for (k = 0; k < size && start + k < n; k++)
        out[(*count)++] = start + k;
}

static void test_allocate_matches_reference(void **state)
{
    int n, c, i;

    for (n = 0; n <= 70; n++) {
        for (c = 1; c <= 24; c++) {
            int owner[80];

            memset(owner, -1, sizeof owner);
            for (i = 0; i < c; i++) {
                int ref[80], ref_n, k;
                size_t start, count;

                reference_allocate(n, c, i, ref, &ref_n);
                lsmq__rb_allocate((size_t)n, (size_t)c, i, &start, &count);
                assert_int_equal((int)count, ref_n);
                for (k = 0; k < ref_n; k++) {
                    assert_int_equal((int)start + k, ref[k]);
                    /* Every queue has exactly one owner. */
                    assert_int_equal(owner[ref[k]], -1);
                    owner[ref[k]] = i;
                }
            }
            for (i = 0; i < n; i++)
                assert_true(owner[i] >= 0);
        }
    }
}

static void test_allocate_edges(void **state)
{
    size_t start, count;

    lsmq__rb_allocate(8, 3, -1, &start, &count); /* not in the list */
    assert_int_equal(count, 0);
    lsmq__rb_allocate(8, 3, 3, &start, &count);  /* past the list */
    assert_int_equal(count, 0);
    lsmq__rb_allocate(8, 0, 0, &start, &count);
    assert_int_equal(count, 0);
    lsmq__rb_allocate(8, 3, 0, &start, &count);  /* 3,3,2 */
    assert_int_equal(start, 0);
    assert_int_equal(count, 3);
    lsmq__rb_allocate(8, 3, 2, &start, &count);
    assert_int_equal(start, 6);
    assert_int_equal(count, 2);
    lsmq__rb_allocate(2, 5, 4, &start, &count);  /* more consumers than queues */
    assert_int_equal(count, 0);
    lsmq__rb_allocate(2, 5, 1, &start, &count);
    assert_int_equal(start, 1);
    assert_int_equal(count, 1);
}

static void test_consumer_ids(void **state)
{
    const char *body = "{\"consumerIdList\":[\"10.0.0.2@9\",\"10.0.0.1@7\",\"10.0.0.10@1\"]}";
    char **ids;
    size_t n;

    assert_int_equal(lsmq__rb_parse_ids((const uint8_t *)body, strlen(body), &ids, &n, NULL), 0);
    assert_int_equal(n, 3);
    /* String order, as Java sorts: '0' < '@', so "10.0.0.10@1" < "10.0.0.1@7". */
    assert_string_equal(ids[0], "10.0.0.10@1");
    assert_string_equal(ids[1], "10.0.0.1@7");
    assert_string_equal(ids[2], "10.0.0.2@9");
    assert_int_equal(lsmq__rb_index_of(ids, n, "10.0.0.2@9"), 2);
    assert_int_equal(lsmq__rb_index_of(ids, n, "nobody"), -1);
    lsmq__rb_free_ids(ids, n);
    assert_int_equal(lsmq__rb_parse_ids((const uint8_t *)"{}", 2, &ids, &n, NULL), LSMQ_ECORRUPT);
    assert_int_equal(lsmq__rb_parse_ids((const uint8_t *)"nope", 4, &ids, &n, NULL), LSMQ_ECORRUPT);
}

/* ------------------------------------------------------------------ */
/* Routes                                                              */
/* ------------------------------------------------------------------ */

#define ROUTE_TAIL                                                                           \
    "\"filterServerTable\":{},\"queueDatas\":["                                              \
    "{\"brokerName\":\"broker-b\",\"perm\":6,\"readQueueNums\":2,\"topicSysFlag\":0,"        \
    "\"writeQueueNums\":3},"                                                                 \
    "{\"brokerName\":\"broker-a\",\"perm\":6,\"readQueueNums\":4,\"topicSysFlag\":0,"        \
    "\"writeQueueNums\":4}]}"

static const char *route_standard =
    "{\"brokerDatas\":["
    "{\"brokerAddrs\":{\"0\":\"10.0.0.6:10911\",\"1\":\"10.0.0.7:10911\"},"
    "\"brokerName\":\"broker-b\",\"cluster\":\"DefaultCluster\",\"enableActingMaster\":false},"
    "{\"brokerAddrs\":{\"0\":\"10.0.0.5:10911\"},\"brokerName\":\"broker-a\","
    "\"cluster\":\"DefaultCluster\"}]," ROUTE_TAIL;

static const char *route_legacy =
    "{\"brokerDatas\":["
    "{\"brokerAddrs\":{0:\"10.0.0.6:10911\",1:\"10.0.0.7:10911\"},"
    "\"brokerName\":\"broker-b\",\"cluster\":\"DefaultCluster\"},"
    "{\"brokerAddrs\":{0:\"10.0.0.5:10911\"},\"brokerName\":\"broker-a\","
    "\"cluster\":\"DefaultCluster\"}]," ROUTE_TAIL;

/* Whitespace where fastjson never puts it, but a hand-written server might. */
static const char *route_spaced =
    "{ \"brokerDatas\" : [\n"
    " { \"brokerAddrs\" : { 0 : \"10.0.0.6:10911\" , 1 : \"10.0.0.7:10911\" },\n"
    "   \"brokerName\" : \"broker-b\" },\n"
    " { \"brokerAddrs\" : {  0:\"10.0.0.5:10911\"}, \"brokerName\":\"broker-a\" } ],\n"
    ROUTE_TAIL;

static void check_route(const char *json)
{
    char err[256] = "";
    route *r = NULL;
    size_t i;

    assert_int_equal(lsmq__route_parse(json, strlen(json), &r, err, sizeof err), 0);
    assert_int_equal(r->n_brokers, 2);
    /* Sorted by name. */
    assert_string_equal(r->brokers[0].name, "broker-a");
    assert_string_equal(r->brokers[1].name, "broker-b");
    assert_string_equal(lsmq__route_master(r, 0), "10.0.0.5:10911");
    assert_string_equal(lsmq__route_master(r, 1), "10.0.0.6:10911");
    assert_int_equal(r->brokers[1].n_addrs, 2);
    assert_int_equal(lsmq__route_broker_index(r, "broker-b"), 1);
    assert_int_equal(lsmq__route_broker_index(r, "broker-c"), -1);
    /* Publish: 4 of a, then 3 of b. Subscribe: 4 of a, then 2 of b. */
    assert_int_equal(r->n_pub, 7);
    assert_int_equal(r->n_sub, 6);
    for (i = 0; i < 4; i++) {
        assert_int_equal(r->pub[i].broker, 0);
        assert_int_equal(r->pub[i].queue_id, (int)i);
        assert_int_equal(r->sub[i].broker, 0);
    }
    for (i = 4; i < 7; i++) {
        assert_int_equal(r->pub[i].broker, 1);
        assert_int_equal(r->pub[i].queue_id, (int)(i - 4));
    }
    assert_int_equal(r->sub[5].broker, 1);
    assert_int_equal(r->sub[5].queue_id, 1);
    assert_false(r->from_default);
    lsmq__route_unref(r);
}

static void test_route_forms(void **state)
{
    check_route(route_standard);
    check_route(route_legacy);
    check_route(route_spaced);
}

static void test_route_normalise(void **state)
{
    const char *in = "{\"a\":\"{0:\\\"x\\\",1:2}\",\"b\":[0,1,{2:\"c\",-3:[4,5]}],7:{8:9}}";
    char *out = NULL;

    assert_int_equal(proto_fastjson_to_json(in, strlen(in), &out), 0);

    /* Strings and array values untouched; bare keys quoted at any depth. */
    assert_string_equal(out,
                        "{\"a\":\"{0:\\\"x\\\",1:2}\",\"b\":[0,1,{\"2\":\"c\",\"-3\":[4,5]}],"
                        "\"7\":{\"8\":9}}");
    free(out);
}

static void test_route_perms_and_order_conf(void **state)
{
    const char *json =
        "{\"brokerDatas\":["
        "{\"brokerAddrs\":{\"1\":\"10.0.0.9:10911\"},\"brokerName\":\"slave-only\"},"
        "{\"brokerAddrs\":{\"0\":\"10.0.0.5:10911\"},\"brokerName\":\"ro\"},"
        "{\"brokerAddrs\":{\"0\":\"10.0.0.6:10911\"},\"brokerName\":\"wo\"}],"
        "\"queueDatas\":["
        "{\"brokerName\":\"slave-only\",\"perm\":6,\"readQueueNums\":2,\"writeQueueNums\":2},"
        "{\"brokerName\":\"ro\",\"perm\":4,\"readQueueNums\":2,\"writeQueueNums\":2},"
        "{\"brokerName\":\"wo\",\"perm\":2,\"readQueueNums\":3,\"writeQueueNums\":3},"
        "{\"brokerName\":\"ghost\",\"perm\":6,\"readQueueNums\":9,\"writeQueueNums\":9}]}";
    char err[256];
    route *r = NULL;

    assert_int_equal(lsmq__route_parse(json, strlen(json), &r, err, sizeof err), 0);
    /* Writable with a master: only "wo". Readable: "ro" and "slave-only". */
    assert_int_equal(r->n_pub, 3);
    assert_string_equal(r->brokers[r->pub[0].broker].name, "wo");
    assert_int_equal(r->n_sub, 4);
    assert_string_equal(r->brokers[r->sub[0].broker].name, "ro");
    assert_string_equal(r->brokers[r->sub[2].broker].name, "slave-only");
    assert_null(lsmq__route_master(r, (uint32_t)lsmq__route_broker_index(r, "slave-only")));
    lsmq__route_unref(r);

    json = "{\"brokerDatas\":[{\"brokerAddrs\":{\"0\":\"a:1\"},\"brokerName\":\"x\"},"
           "{\"brokerAddrs\":{\"0\":\"b:1\"},\"brokerName\":\"y\"}],"
           "\"orderTopicConf\":\"y:2;x:1\",\"queueDatas\":["
           "{\"brokerName\":\"x\",\"perm\":6,\"readQueueNums\":8,\"writeQueueNums\":8}]}";
    assert_int_equal(lsmq__route_parse(json, strlen(json), &r, err, sizeof err), 0);
    assert_int_equal(r->n_pub, 3); /* orderTopicConf wins: y0 y1 x0 */
    assert_string_equal(r->brokers[r->pub[0].broker].name, "y");
    assert_int_equal(r->pub[1].queue_id, 1);
    assert_string_equal(r->brokers[r->pub[2].broker].name, "x");
    lsmq__route_unref(r);
}

static void test_route_default_and_errors(void **state)
{
    const char *tbw =
        "{\"brokerDatas\":[{\"brokerAddrs\":{0:\"10.0.0.5:10911\"},\"brokerName\":\"a\"}],"
        "\"queueDatas\":[{\"brokerName\":\"a\",\"perm\":7,\"readQueueNums\":8,"
        "\"writeQueueNums\":8}]}";
    char err[256];
    route *r = NULL;

    assert_int_equal(lsmq__route_parse(tbw, strlen(tbw), &r, err, sizeof err), 0);
    assert_int_equal(r->n_pub, 8);
    lsmq__route_as_default(r);
    assert_true(r->from_default);
    assert_int_equal(r->n_pub, DEFAULT_TOPIC_QUEUES);
    lsmq__route_unref(r);

    assert_int_equal(lsmq__route_parse("[1,2]", 5, &r, err, sizeof err), LSMQ_ECORRUPT);
    assert_int_equal(lsmq__route_parse("{\"brokerDatas\":[]}", 18, &r, err, sizeof err),
                     LSMQ_ECORRUPT);
    assert_int_equal(lsmq__route_parse("{\"brokerDat", 11, &r, err, sizeof err), LSMQ_ECORRUPT);
    assert_null(r);
}

/* ------------------------------------------------------------------ */
/* Which broker of a group: reads and offsets                         */
/* ------------------------------------------------------------------ */

/* A group of a master (0) and replicas 1 and 3 (2 left the group), listed out of order. */
static const char *route_group =
    "{\"brokerDatas\":["
    "{\"brokerAddrs\":{\"3\":\"r3:1\",\"0\":\"m:1\",\"1\":\"r1:1\"},\"brokerName\":\"g\"},"
    "{\"brokerAddrs\":{\"2\":\"x2:1\",\"1\":\"x1:1\"},\"brokerName\":\"headless\"}],"
    "\"queueDatas\":["
    "{\"brokerName\":\"g\",\"perm\":6,\"readQueueNums\":4,\"writeQueueNums\":4},"
    "{\"brokerName\":\"headless\",\"perm\":6,\"readQueueNums\":2,\"writeQueueNums\":2}]}";

/* The addresses a test says are down: a NULL-terminated list. */
static int listed_down(void *arg, const char *addr)
{
    for (const char *const *p = arg; *p; p++)
        if (strcmp(*p, addr) == 0)
            return 1;
    return 0;
}

/* lsmq__route_pick's address for want, with its id checked against expect_id. */
static const char *pick(const route *r, const char *name, int64_t want, const char *const *down,
                        int64_t expect_id)
{
    int64_t id = -7;
    const char *addr = lsmq__route_pick(r, (uint32_t)lsmq__route_broker_index(r, name), want,
                                        down ? listed_down : NULL, (void *)down, &id);

    assert_int_equal(id, expect_id);
    return addr;
}

static void test_route_pick(void **state)
{
    char err[256];
    route *r = NULL;

    assert_int_equal(lsmq__route_parse(route_group, strlen(route_group), &r, err, sizeof err), 0);
    /* What was suggested, when the route has it. */
    assert_string_equal(pick(r, "g", 0, NULL, 0), "m:1");
    assert_string_equal(pick(r, "g", 1, NULL, 1), "r1:1");
    assert_string_equal(pick(r, "g", 3, NULL, 3), "r3:1");
    /* A replica that left: the next one (Java's brokerId + 1) ... */
    assert_string_equal(pick(r, "g", 2, NULL, 3), "r3:1");
    /* ... else the lowest id, the master when there is one. */
    assert_string_equal(pick(r, "g", 7, NULL, 0), "m:1");
    /* No master: the lowest replica, whatever was asked for. */
    assert_string_equal(pick(r, "headless", 0, NULL, 1), "x1:1");
    assert_string_equal(pick(r, "headless", 5, NULL, 1), "x1:1");
    /* Producers still see only masters: headless has no publish queue. */
    assert_int_equal(r->n_pub, 4);
    assert_int_equal(r->n_sub, 6);

    /* Unreachable addresses are passed over while the group has another. */
    const char *const master_down[] = {"m:1", NULL};
    assert_string_equal(pick(r, "g", 0, master_down, 1), "r1:1");
    assert_string_equal(pick(r, "g", 3, master_down, 3), "r3:1");
    const char *const two_down[] = {"m:1", "r1:1", NULL};
    assert_string_equal(pick(r, "g", 0, two_down, 3), "r3:1");
    assert_string_equal(pick(r, "g", 1, two_down, 3), "r3:1");
    /* Every one down: what would be picked without marks (a connect may work again). */
    const char *const all_down[] = {"m:1", "r1:1", "r3:1", "x1:1", "x2:1", NULL};
    assert_string_equal(pick(r, "g", 0, all_down, 0), "m:1");
    assert_string_equal(pick(r, "g", 2, all_down, 3), "r3:1");
    assert_string_equal(pick(r, "headless", 0, all_down, 1), "x1:1");

    /* No such broker. */
    int64_t id = -7;
    assert_null(lsmq__route_pick(r, (uint32_t)r->n_brokers, 0, NULL, NULL, &id));
    assert_int_equal(id, -7);
    lsmq__route_unref(r);
}

static void test_route_masterless(void **state)
{
    char err[256];
    route *r = NULL;

    assert_int_equal(lsmq__route_parse(route_group, strlen(route_group), &r, err, sizeof err), 0);
    assert_true(lsmq__route_masterless(r));
    lsmq__route_unref(r);
    /* A group whose queues are not the topic's does not count. */
    const char *json =
        "{\"brokerDatas\":[{\"brokerAddrs\":{\"0\":\"m:1\",\"1\":\"r:1\"},\"brokerName\":\"a\"},"
        "{\"brokerAddrs\":{\"1\":\"x:1\"},\"brokerName\":\"b\"}],"
        "\"queueDatas\":[{\"brokerName\":\"a\",\"perm\":6,\"readQueueNums\":4,"
        "\"writeQueueNums\":4}]}";
    assert_int_equal(lsmq__route_parse(json, strlen(json), &r, err, sizeof err), 0);
    assert_false(lsmq__route_masterless(r));
    lsmq__route_unref(r);
}

/* ------------------------------------------------------------------ */
/* Received messages                                                   */
/* ------------------------------------------------------------------ */

/* Encode one stored record into b. */
static void put_record(proto_buf *b, const char *topic, const void *body, size_t body_len,
                       int32_t sys_flag, const char *props, int64_t queue_offset,
                       int64_t log_pos, int32_t reconsume)
{
    proto_record r;
    long n;

    memset(&r, 0, sizeof r);
    r.queue_id = 3;
    r.flag = 77;
    r.queue_offset = queue_offset;
    r.physical_offset = log_pos;
    r.sys_flag = sys_flag;
    r.born_timestamp = 1700000000000;
    r.born_host.ip[0] = 10, r.born_host.ip[3] = 2, r.born_host.port = 5555;
    r.store_timestamp = 1700000000123;
    r.store_host.ip[0] = 10, r.store_host.ip[3] = 5, r.store_host.port = 10911;
    r.reconsume_times = reconsume;
    r.body = body;
    r.body_len = (uint32_t)body_len;
    r.topic = topic;
    r.topic_len = (uint32_t)strlen(topic);
    r.props = props;
    r.props_len = (uint32_t)strlen(props);
    proto_buf_reserve(b, proto_record_size(&r));
    n = proto_record_encode(&r, (uint8_t *)b->p + b->len, b->cap - b->len);
    assert_true(n > 0);
    b->len += (size_t)n;
}

static void test_message_decode(void **state)
{
    char big[10000];
    uint8_t *z;
    size_t zlen, len, i;
    proto_buf b = {0};
    lsmq_message *head = NULL, *tail = NULL, *m;
    const char *props = "TAGS\001TagA\002KEYS\001k1 k2\002UNIQ_KEY\001"
                        "0A0000020000AAAA0000000000000001\002color\001red\002";
    const char *retry_props = "RETRY_TOPIC\001Orders\002TAGS\001TagB\002";
    const void *body;
    const char *name, *value;

    for (i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 7);
    assert_int_equal(proto_deflate(big, sizeof big, 5, &z, &zlen), 0);
    assert_true(zlen < sizeof big);
    /* zlib body with Java 4.9.4+'s type bits, then a legacy (type 0) one, then plain. */
    put_record(&b, "Orders", z, zlen, PROTO_SYSFLAG_COMPRESSED | 0x300, props, 42, 4096, 0);
    put_record(&b, "Orders", z, zlen, PROTO_SYSFLAG_COMPRESSED, "", 43, 5000, 0);
    put_record(&b, "%RETRY%g1", "hello", 5, 0, retry_props, 7, 6000, 2);
    free(z);

    assert_int_equal(lsmq__msg_decode_all((const uint8_t *)b.p, b.len, "broker-a", &head, &tail),
                     3);
    m = head;
    assert_string_equal(lsmq_message_topic(m), "Orders");
    assert_string_equal(lsmq_message_tags(m), "TagA");
    assert_string_equal(lsmq_message_keys(m), "k1 k2");
    assert_string_equal(lsmq_message_property(m, "color"), "red");
    assert_null(lsmq_message_property(m, "colour"));
    assert_string_equal(lsmq_message_id(m), "0A0000020000AAAA0000000000000001");
    assert_string_equal(lsmq_message_offset_id(m), "0A00000500002A9F0000000000001000");
    assert_string_equal(lsmq_message_broker_name(m), "broker-a");
    assert_int_equal(lsmq_message_queue_id(m), 3);
    assert_int_equal(lsmq_message_queue_offset(m), 42);
    assert_int_equal(lsmq_message_commit_log_offset(m), 4096);
    assert_int_equal(lsmq_message_flag(m), 77);
    assert_int_equal(lsmq_message_born_timestamp(m), 1700000000000);
    assert_int_equal(lsmq_message_store_timestamp(m), 1700000000123);
    body = lsmq_message_body(m, &len);
    assert_int_equal(len, sizeof big);
    assert_memory_equal(body, big, sizeof big);
    assert_int_equal(lsmq_message_property_count(m), 4);
    name = lsmq_message_property_at(m, 3, &value);
    assert_string_equal(name, "color");
    assert_string_equal(value, "red");
    assert_null(lsmq_message_property_at(m, 4, &value));

    m = m->next; /* legacy compression type 0 is zlib too */
    body = lsmq_message_body(m, &len);
    assert_int_equal(len, sizeof big);
    assert_memory_equal(body, big, sizeof big);
    assert_null(lsmq_message_tags(m));
    assert_string_equal(lsmq_message_id(m), lsmq_message_offset_id(m)); /* no UNIQ_KEY */

    m = m->next; /* a retry shows its original topic */
    assert_string_equal(lsmq_message_topic(m), "Orders");
    assert_string_equal(m->queue_topic, "%RETRY%g1");
    assert_int_equal(lsmq_message_reconsume_times(m), 2);
    body = lsmq_message_body(m, &len);
    assert_int_equal(len, 5);
    assert_memory_equal(body, "hello", 5);
    assert_null(m->next);
    lsmq__msg_free_list(head);

    /* A truncated last record keeps the ones before it. */
    head = tail = NULL;
    assert_int_equal(lsmq__msg_decode_all((const uint8_t *)b.p, b.len - 3, "broker-a", &head,
                                          &tail), 2);
    lsmq__msg_free_list(head);
    head = tail = NULL;
    assert_int_equal(lsmq__msg_decode_all((const uint8_t *)b.p, 10, "broker-a", &head, &tail),
                     LSMQ_ECORRUPT);
    assert_null(head);
    proto_buf_free(&b);
}

static void test_message_bad_compression(void **state)
{
    proto_buf b = {0};
    lsmq_message *head = NULL, *tail = NULL;
    const void *body;
    size_t len;

    /* Claims zlib but is not: delivered as stored. LZ4 (type 1): as stored too. */
    put_record(&b, "T", "not zlib", 8, PROTO_SYSFLAG_COMPRESSED | 0x300, "", 0, 100, 0);
    put_record(&b, "T", "lz4data", 7, PROTO_SYSFLAG_COMPRESSED | 0x100, "", 1, 200, 0);
    assert_int_equal(lsmq__msg_decode_all((const uint8_t *)b.p, b.len, "b", &head, &tail), 2);
    body = lsmq_message_body(head, &len);
    assert_int_equal(len, 8);
    assert_memory_equal(body, "not zlib", 8);
    body = lsmq_message_body(head->next, &len);
    assert_int_equal(len, 7);
    assert_int_equal(lsmq_message_sys_flag(head->next), PROTO_SYSFLAG_COMPRESSED | 0x100);
    lsmq__msg_free_list(head);
    proto_buf_free(&b);
}

static void test_inflate_limits(void **state)
{
    char buf[100000];
    uint8_t *z, *out;
    size_t zlen, olen;

    memset(buf, 'x', sizeof buf);
    assert_int_equal(proto_deflate(buf, sizeof buf, 5, &z, &zlen), 0);
    assert_int_equal(proto_inflate(z, zlen, 1000, &out, &olen), LSMQ_ETOOBIG);
    assert_int_equal(proto_inflate(z, zlen / 2, 1 << 20, &out, &olen), LSMQ_ECORRUPT);
    assert_int_equal(proto_inflate(z, zlen, 1 << 20, &out, &olen), 0);
    assert_int_equal(olen, sizeof buf);
    free(out);
    free(z);
}

/* ------------------------------------------------------------------ */
/* Sending                                                             */
/* ------------------------------------------------------------------ */

static const uint8_t ip4[4] = {10, 0, 0, 2};

static void test_send_encoding(void **state)
{
    lsmq_property user[] = {{"color", "red"}, {"size", "XL"}};
    lsmq_out_message m;
    send_req req;
    char big[5000];
    const char *v;
    size_t vl;
    uint8_t *plain;
    size_t plain_len;
    int32_t f;

    memset(&m, 0, sizeof m);
    m.topic = "Orders";
    m.tags = "TagA";
    m.keys = "k1";
    m.body = "hi";
    m.body_len = 2;
    m.properties = user;
    m.n_properties = 2;
    m.delay_level = 3;
    assert_int_equal(lsmq__outmsg_build(&m, "pg", 4096, ip4, NULL, &req, NULL), 0);
    assert_int_equal(req.cmd->code, RC_SEND_MESSAGE_V2);
    assert_string_equal(proto_cmd_get(req.cmd, "a"), "pg");
    assert_string_equal(proto_cmd_get(req.cmd, "b"), "Orders");
    assert_string_equal(proto_cmd_get(req.cmd, "c"), "TBW102");
    assert_string_equal(proto_cmd_get(req.cmd, "f"), "0");
    v = proto_cmd_get(req.cmd, "i");
    assert_true(proto_props_get(v, strlen(v), "TAGS", &v, &vl));
    assert_int_equal(vl, 4);
    v = proto_cmd_get(req.cmd, "i");
    assert_true(proto_props_get(v, strlen(v), "UNIQ_KEY", &v, &vl));
    assert_int_equal(vl, 32);
    assert_memory_equal(v, req.uniq[0], 32);
    assert_memory_equal(req.uniq[0], "0A000002", 8); /* our IP leads the id */
    v = proto_cmd_get(req.cmd, "i");
    assert_true(proto_props_get(v, strlen(v), "DELAY", &v, &vl));
    assert_memory_equal(v, "3", 1);
    v = proto_cmd_get(req.cmd, "i");
    assert_true(proto_props_get(v, strlen(v), "size", &v, &vl));
    assert_int_equal(req.body_len, 2);
    lsmq__outmsg_set_queue(&req, 5);
    assert_string_equal(proto_cmd_get(req.cmd, "e"), "5");
    lsmq__send_req_free(&req);

    /* At the threshold: zlib with COMPRESSED_FLAG | 0x300. */
    memset(big, 'q', sizeof big);
    m.body = big;
    m.body_len = 4096;
    m.delay_level = 0;
    assert_int_equal(lsmq__outmsg_build(&m, "pg", 4096, ip4, NULL, &req, NULL), 0);
    assert_int_equal(proto_cmd_get_i32(req.cmd, "f", &f), 0);
    assert_int_equal(f, 0x301);
    assert_true(req.body_len < 4096);
    assert_int_equal(proto_inflate(req.body, req.body_len, 1 << 20, &plain, &plain_len), 0);
    assert_int_equal(plain_len, 4096);
    assert_memory_equal(plain, big, 4096);
    free(plain);
    lsmq__send_req_free(&req);
    m.body_len = 4095;
    assert_int_equal(lsmq__outmsg_build(&m, "pg", 4096, ip4, NULL, &req, NULL), 0);
    assert_string_equal(proto_cmd_get(req.cmd, "f"), "0");
    lsmq__send_req_free(&req);

    /* A user UNIQ_KEY is kept (re-published retries keep theirs). */
    {
        lsmq_property own[] = {{"UNIQ_KEY", "MYID"}};

        m.properties = own;
        m.n_properties = 1;
        assert_int_equal(lsmq__outmsg_build(&m, "pg", 0, ip4, NULL, &req, NULL), 0);
        assert_string_equal(req.uniq[0], "MYID");
        v = proto_cmd_get(req.cmd, "i");
        assert_non_null(strstr(v, "UNIQ_KEY\001MYID\002"));
        assert_null(strstr(strstr(v, "MYID") + 4, "UNIQ_KEY"));
        lsmq__send_req_free(&req);
    }

    /* Timer forms: TIMER_DELIVER_MS absolute, TIMER_DELAY_MS relative. */
    m.n_properties = 0;
    m.deliver_ms = 1786000000123LL;
    assert_int_equal(lsmq__outmsg_build(&m, "pg", 0, ip4, NULL, &req, NULL), 0);
    v = proto_cmd_get(req.cmd, "i");
    assert_true(proto_props_get(v, strlen(v), "TIMER_DELIVER_MS", &v, &vl));
    assert_int_equal(vl, 13);
    assert_memory_equal(v, "1786000000123", 13);
    v = proto_cmd_get(req.cmd, "i");
    assert_false(proto_props_get(v, strlen(v), "TIMER_DELAY_MS", &v, &vl));
    assert_false(proto_props_get(v, strlen(v), "DELAY", &v, &vl));
    lsmq__send_req_free(&req);
    m.deliver_ms = 0;
    m.delay_ms = 2500;
    assert_int_equal(lsmq__outmsg_build(&m, "pg", 0, ip4, NULL, &req, NULL), 0);
    v = proto_cmd_get(req.cmd, "i");
    assert_true(proto_props_get(v, strlen(v), "TIMER_DELAY_MS", &v, &vl));
    assert_int_equal(vl, 4);
    assert_memory_equal(v, "2500", 4);
    v = proto_cmd_get(req.cmd, "i");
    assert_false(proto_props_get(v, strlen(v), "TIMER_DELIVER_MS", &v, &vl));
    lsmq__send_req_free(&req);
    /* Two forms at once, or a negative one, are refused. */
    m.delay_level = 2;
    assert_int_equal(lsmq__outmsg_build(&m, "pg", 0, ip4, NULL, &req, NULL), LSMQ_EINVAL);
    m.delay_level = 0;
    m.deliver_ms = 1786000000123LL;
    assert_int_equal(lsmq__outmsg_build(&m, "pg", 0, ip4, NULL, &req, NULL), LSMQ_EINVAL);
    m.delay_ms = -1;
    m.deliver_ms = 0;
    assert_int_equal(lsmq__outmsg_build(&m, "pg", 0, ip4, NULL, &req, NULL), LSMQ_EINVAL);
    m.delay_ms = 0;

    /* Refusals. */
    m.topic = "bad topic";
    assert_int_equal(lsmq__outmsg_build(&m, "pg", 0, ip4, NULL, &req, NULL), LSMQ_EINVAL);
    m.topic = "Orders";
    m.body_len = 0;
    assert_int_equal(lsmq__outmsg_build(&m, "pg", 0, ip4, NULL, &req, NULL), LSMQ_EINVAL);
    m.body_len = 5u * 1024u * 1024u;
    assert_int_equal(lsmq__outmsg_build(&m, "pg", 0, ip4, NULL, &req, NULL), LSMQ_ETOOBIG);
    m.body_len = 2;
    m.tags = "a\001b";
    assert_int_equal(lsmq__outmsg_build(&m, "pg", 0, ip4, NULL, &req, NULL), LSMQ_EINVAL);
}

static void test_batch_encoding(void **state)
{
    lsmq_out_message msgs[3];
    send_req req;
    proto_batch_entry e;
    size_t pos = 0, i;
    const char *v;
    size_t vl;
    int rc;

    memset(msgs, 0, sizeof msgs);
    for (i = 0; i < 3; i++) {
        msgs[i].topic = "Batch";
        msgs[i].body = i == 1 ? "second body" : "b";
        msgs[i].body_len = strlen(msgs[i].body);
        msgs[i].flag = (int32_t)i + 10;
    }
    msgs[2].tags = "T2";
    assert_int_equal(lsmq__outmsg_build_batch(msgs, 3, "pg", ip4, &req, NULL), 0);
    assert_int_equal(req.cmd->code, RC_SEND_BATCH_MESSAGE);
    assert_string_equal(proto_cmd_get(req.cmd, "m"), "true");
    assert_int_equal(req.n_msgs, 3);
    for (i = 0; (rc = proto_batch_next(req.body, req.body_len, &pos, &e)) == 1; i++) {
        assert_int_equal(e.flag, (int32_t)i + 10);
        assert_int_equal(e.body_len, msgs[i].body_len);
        assert_memory_equal(e.body, msgs[i].body, e.body_len);
        assert_true(proto_props_get(e.props, e.props_len, "UNIQ_KEY", &v, &vl));
        assert_memory_equal(v, req.uniq[i], 32);
        assert_int_equal(proto_props_get(e.props, e.props_len, "TAGS", &v, &vl), i == 2);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(i, 3);
    assert_int_not_equal(strcmp(req.uniq[0], req.uniq[1]), 0);
    lsmq__send_req_free(&req);

    msgs[1].topic = "Other";
    assert_int_equal(lsmq__outmsg_build_batch(msgs, 3, "pg", ip4, &req, NULL), LSMQ_EINVAL);
    msgs[1].topic = "Batch";
    msgs[1].delay_level = 2;
    assert_int_equal(lsmq__outmsg_build_batch(msgs, 3, "pg", ip4, &req, NULL), LSMQ_EINVAL);
    msgs[1].delay_level = 0;
    msgs[2].deliver_ms = 1786000000123LL;
    assert_int_equal(lsmq__outmsg_build_batch(msgs, 3, "pg", ip4, &req, NULL), LSMQ_EINVAL);
    msgs[2].deliver_ms = 0;
    msgs[0].delay_ms = 10;
    assert_int_equal(lsmq__outmsg_build_batch(msgs, 3, "pg", ip4, &req, NULL), LSMQ_EINVAL);
    assert_int_equal(lsmq__outmsg_build_batch(msgs, 0, "pg", ip4, &req, NULL), LSMQ_EINVAL);
}

static void test_select_by_hash(void **state)
{
    lsmq_out_message m;

    memset(&m, 0, sizeof m);
    /* "TagA".hashCode() = 2598919 (§4.10); 2598919 % 8 = 7. */
    assert_int_equal(lsmq_select_by_hash(8, &m, "TagA"), 2598919 % 8);
    /* A negative hash: "polygenelubricants".hashCode() = Integer.MIN_VALUE would stay
     * negative in Java; ours must still be in range. */
    assert_true(lsmq_select_by_hash(7, &m, "polygenelubricants") >= 0);
    assert_true(lsmq_select_by_hash(7, &m, "zzzzzzzzzz") < 7);
    assert_int_equal(lsmq_select_by_hash(5, &m, "k"), lsmq_select_by_hash(5, &m, "k"));
}

/* ------------------------------------------------------------------ */
/* Offsets, subscriptions, heartbeat                                   */
/* ------------------------------------------------------------------ */

static void test_offset_file(void **state)
{
    char *dir = test_tmpdir("client-offsets");
    char path[1024];
    offset_store a, b;
    ostore_entry *e;
    proto_cmd *cmd;
    FILE *f;

    snprintf(path, sizeof path, "%s/g.offsets.json", dir);
    lsmq__ostore_init(&a);
    lsmq__ostore_init(&b);
    assert_int_equal(lsmq__ostore_load_file(&b, path, NULL), LSMQ_ENOTFOUND);
    lsmq__ostore_update(&a, "Orders", "broker-a", 0, 17);
    lsmq__ostore_update(&a, "Orders", "broker-a", 1, 0);
    lsmq__ostore_update(&a, "%RETRY%g", "broker-b", 0, 123456789012LL);
    lsmq__ostore_update(&a, "Unset", "broker-b", 0, -1); /* not written */
    assert_true(lsmq__ostore_find(&a, "Orders", "broker-a", 0)->dirty);
    assert_int_equal(lsmq__ostore_save_file(&a, path, NULL), 0);
    assert_int_equal(access(path, F_OK), 0);
    {
        char tmp[1100];

        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        assert_int_not_equal(access(tmp, F_OK), 0); /* renamed into place */
    }
    assert_int_equal(lsmq__ostore_load_file(&b, path, NULL), 0);
    assert_int_equal(HASH_COUNT(b.map), 3);
    e = lsmq__ostore_find(&b, "Orders", "broker-a", 0);
    assert_non_null(e);
    assert_int_equal(e->offset, 17);
    assert_false(e->dirty);
    assert_int_equal(lsmq__ostore_find(&b, "Orders", "broker-a", 1)->offset, 0);
    assert_int_equal(lsmq__ostore_find(&b, "%RETRY%g", "broker-b", 0)->offset, 123456789012LL);
    assert_null(lsmq__ostore_find(&b, "Unset", "broker-b", 0));

    cmd = lsmq__ostore_commit_cmd("g", e);
    assert_int_equal(cmd->code, RC_UPDATE_CONSUMER_OFFSET);
    assert_string_equal(proto_cmd_get(cmd, "commitOffset"), "17");
    assert_string_equal(proto_cmd_get(cmd, "queueId"), "0");
    proto_cmd_free(cmd);

    lsmq__ostore_remove(&b, "Orders", "broker-a", 0);
    assert_null(lsmq__ostore_find(&b, "Orders", "broker-a", 0));
    lsmq__ostore_clear(&b);

    f = fopen(path, "w");
    fputs("{\"version\":1,\"offsets\":[{\"topic\":", f);
    fclose(f);
    assert_int_equal(lsmq__ostore_load_file(&b, path, NULL), LSMQ_ECORRUPT);
    lsmq__ostore_clear(&a);
    lsmq__ostore_clear(&b);
    test_rmdir_free(dir);
}

static void test_subscription(void **state)
{
    subscription *s;

    assert_int_equal(lsmq__sub_parse("T", " TagA ||TagB||  || TagC ", &s, NULL), 0);
    assert_false(s->all);
    assert_int_equal(s->n_tags, 3);
    assert_string_equal(s->tags[1], "TagB");
    assert_int_equal(s->codes[0], 2598919);
    assert_true(lsmq__sub_match(s, "TagC"));
    assert_false(lsmq__sub_match(s, "TagD"));
    assert_false(lsmq__sub_match(s, NULL));
    lsmq__sub_free(s);
    assert_int_equal(lsmq__sub_parse("T", "*", &s, NULL), 0);
    assert_true(s->all && lsmq__sub_match(s, NULL));
    lsmq__sub_free(s);
    assert_int_equal(lsmq__sub_parse("T", NULL, &s, NULL), 0);
    assert_true(s->all);
    lsmq__sub_free(s);
    assert_int_equal(lsmq__sub_parse("T", " || ", &s, NULL), LSMQ_EINVAL);
    assert_int_equal(lsmq__sub_parse("bad topic", "*", &s, NULL), LSMQ_EINVAL);
}

static void test_heartbeat_json(void **state)
{
    subscription *subs[2];
    hb_consumer hc;
    json_t *root, *c, *sd;
    char *text;

    assert_int_equal(lsmq__sub_parse("Orders", "TagA || TagB", &subs[0], NULL), 0);
    assert_int_equal(lsmq__sub_parse("%RETRY%g", "*", &subs[1], NULL), 0);
    memset(&hc, 0, sizeof hc);
    hc.group = "g";
    hc.passive = 1;
    hc.subs = subs;
    hc.n_subs = 2;
    text = lsmq__hb_json("10.0.0.2@1#1", NULL, &hc);
    assert_null(strstr(text, "\": ")); /* compact (§5.1) */
    assert_null(strstr(text, ", "));
    root = json_loads(text, 0, NULL);
    assert_non_null(root);
    assert_string_equal(json_string_value(json_object_get(root, "clientID")), "10.0.0.2@1#1");
    assert_int_equal(json_array_size(json_object_get(root, "producerDataSet")), 0);
    c = json_array_get(json_object_get(root, "consumerDataSet"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "consumeType")),
                        "CONSUME_PASSIVELY");
    assert_string_equal(json_string_value(json_object_get(c, "messageModel")), "CLUSTERING");
    assert_string_equal(json_string_value(json_object_get(c, "consumeFromWhere")),
                        "CONSUME_FROM_LAST_OFFSET");
    sd = json_array_get(json_object_get(c, "subscriptionDataSet"), 0);
    assert_string_equal(json_string_value(json_object_get(sd, "subString")), "TagA || TagB");
    assert_int_equal(json_integer_value(json_array_get(json_object_get(sd, "codeSet"), 0)),
                     2598919);
    assert_int_equal(json_array_size(json_object_get(sd, "tagsSet")), 2);
    json_decref(root);
    free(text);
    text = lsmq__hb_json("id", "pg", NULL);
    assert_non_null(strstr(text, "\"producerDataSet\":[{\"groupName\":\"pg\"}]"));
    free(text);
    hc.from_first = 1;
    hc.from_timestamp = 1;
    text = lsmq__hb_json("id", NULL, &hc);
    assert_non_null(strstr(text, "\"consumeFromWhere\":\"CONSUME_FROM_TIMESTAMP\""));
    free(text);
    lsmq__sub_free(subs[0]);
    lsmq__sub_free(subs[1]);
}

/* ResetOffsetBody as Java brokers write it (MessageQueue object keys), and the CPP form. */
static void test_reset_body(void **state)
{
    static const char java[] =
        "{\"offsetTable\":{{\"brokerName\":\"b\",\"queueId\":1,\"topic\":\"T\"}:17,"
        "{\"brokerName\":\"b\",\"queueId\":0,\"topic\":\"T\"}:0,"
        "{\"brokerName\":\"b\",\"queueId\":0,\"topic\":\"Other\"}:5}}";
    static const char cpp[] =
        "{\"offsetTable\":[{\"brokerName\":\"b2\",\"offset\":9,\"queueId\":3,\"topic\":\"T\"}]}";
    reset_entry *v;
    size_t n, i;
    int seen = 0;

    assert_int_equal(lsmq__reset_parse_body((const uint8_t *)java, strlen(java), "T", &v, &n, NULL),
                     0);
    assert_int_equal(n, 2); /* the other topic's queue is left out */
    for (i = 0; i < n; i++) {
        assert_string_equal(v[i].broker, "b");
        if (v[i].queue_id == 1 && v[i].offset == 17)
            seen |= 1;
        if (v[i].queue_id == 0 && v[i].offset == 0)
            seen |= 2;
    }
    assert_int_equal(seen, 3);
    free(v);
    assert_int_equal(lsmq__reset_parse_body((const uint8_t *)cpp, strlen(cpp), "T", &v, &n, NULL),
                     0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].broker, "b2");
    assert_int_equal(v[0].queue_id, 3);
    assert_int_equal(v[0].offset, 9);
    free(v);
    assert_int_equal(lsmq__reset_parse_body(NULL, 0, "T", &v, &n, NULL), 0);
    assert_int_equal(n, 0);
    assert_int_equal(lsmq__reset_parse_body((const uint8_t *)"{\"offsetTable\":", 15, "T", &v, &n,
                                            NULL), LSMQ_ECORRUPT);
    assert_null(v);
}

/* ------------------------------------------------------------------ */
/* Pull replies                                                        */
/* ------------------------------------------------------------------ */

/* A reply as the connection core would hand it over. */
static proto_reply *make_reply(proto_cmd *cmd, const void *body, size_t len)
{
    proto_reply *r = proto_xcalloc(1, sizeof *r);
    size_t flen;
    char err[128];

    assert_int_equal(proto_cmd_encode(cmd, body, len, &r->frame, &flen), 0);
    assert_int_equal(proto_cmd_decode(r->frame, flen, &r->cmd, err, sizeof err), 0);
    proto_cmd_free(cmd);
    return r;
}

static void test_pull_codec(void **state)
{
    subscription *sub;
    pull_args a;
    proto_cmd *cmd;
    pull_result res;
    proto_buf b = {0};
    int32_t flag;

    assert_int_equal(lsmq__sub_parse("T", "TagA", &sub, NULL), 0);
    memset(&a, 0, sizeof a);
    a.group = "g";
    a.topic = "T";
    a.queue_id = 2;
    a.offset = 100;
    a.max_msgs = 32;
    a.commit_offset = 90;
    a.suspend_ms = 15000;
    a.sub = sub;
    cmd = lsmq__pull_request(&a);
    assert_int_equal(cmd->code, RC_PULL_MESSAGE);
    assert_int_equal(proto_cmd_get_i32(cmd, "sysFlag", &flag), 0);
    assert_int_equal(flag, 0x7); /* commit | suspend | subscription */
    assert_string_equal(proto_cmd_get(cmd, "subscription"), "TagA");
    assert_string_equal(proto_cmd_get(cmd, "queueOffset"), "100");
    proto_cmd_free(cmd);

    /* Two records, one with another tag: the client re-check drops it. */
    put_record(&b, "T", "x", 1, 0, "TAGS\001TagA\002", 100, 1, 0);
    put_record(&b, "T", "y", 1, 0, "TAGS\001TagZ\002", 101, 2, 0);
    cmd = proto_cmd_response(RS_SUCCESS, 1, NULL);
    proto_cmd_set_i64(cmd, "nextBeginOffset", 102);
    proto_cmd_set_i64(cmd, "minOffset", 0);
    proto_cmd_set_i64(cmd, "maxOffset", 102);
    proto_cmd_set_i64(cmd, "suggestWhichBrokerId", 0);
    assert_int_equal(lsmq__pull_parse(make_reply(cmd, b.p, b.len), "b", sub, &res, NULL), 0);
    assert_int_equal(res.code, RS_SUCCESS);
    assert_int_equal(res.n, 1);
    assert_int_equal(res.next_begin, 102);
    assert_int_equal(res.head->queue_offset, 100);
    assert_ptr_equal(res.head, res.tail);
    assert_int_equal(res.suggest, 0);
    lsmq__pull_result_free(&res);

    /* Where to pull next: the broker's word, the master when it says nothing. */
    cmd = proto_cmd_response(RS_PULL_RETRY_IMMEDIATELY, 1, NULL);
    proto_cmd_set_i64(cmd, "nextBeginOffset", 102);
    proto_cmd_set_i64(cmd, "suggestWhichBrokerId", 1);
    assert_int_equal(lsmq__pull_parse(make_reply(cmd, NULL, 0), "b", sub, &res, NULL), 0);
    assert_int_equal(res.suggest, 1);

    cmd = proto_cmd_response(RS_PULL_NOT_FOUND, 1, "OFFSET_OVERFLOW_ONE");
    proto_cmd_set_i64(cmd, "nextBeginOffset", 102);
    assert_int_equal(lsmq__pull_parse(make_reply(cmd, NULL, 0), "b", sub, &res, NULL), 0);
    assert_int_equal(res.code, RS_PULL_NOT_FOUND);
    assert_int_equal(res.n, 0);
    assert_int_equal(res.suggest, 0);

    /* SUCCESS without offsets is unusable. */
    cmd = proto_cmd_response(RS_SUCCESS, 1, NULL);
    assert_int_equal(lsmq__pull_parse(make_reply(cmd, b.p, b.len), "b", sub, &res, NULL),
                     LSMQ_ECORRUPT);
    proto_buf_free(&b);
    lsmq__sub_free(sub);
}

/* ------------------------------------------------------------------ */
/* Connection core, as liblsmq uses it                                 */
/* ------------------------------------------------------------------ */

typedef struct seen {
    int calls;
    int rc;
    int code;
    int requests;
    int req_code;
} seen;

static void seen_cb(int rc, proto_reply *reply, const char *why, void *arg)
{
    seen *s = arg;

    s->calls++;
    s->rc = rc;
    s->code = reply ? reply->cmd->code : -1;
    proto_reply_free(reply);
}

static void request_cb(proto_conn *c, proto_cmd *req, void *arg)
{
    seen *s = arg;

    s->requests++;
    s->req_code = req->code;
}

static void frame_of(proto_cmd *cmd, uint8_t **out, size_t *len)
{
    assert_int_equal(proto_cmd_encode(cmd, "body", 4, out, len), 0);
    proto_cmd_free(cmd);
}

static void test_conn_matching(void **state)
{
    proto_conn_options o = {.name = "127.0.0.1:1"};
    proto_conn *c = proto_conn_create(&o);
    seen a = {0}, b = {0}, req = {0};
    uint8_t *f1, *f2, *f3, both[512];
    size_t l1, l2, l3, i;
    proto_cmd *cmd;

    proto_conn_set_request_cb(c, request_cb, &req);
    proto_conn_expect(c, 5, INT64_MAX, seen_cb, &a);
    proto_conn_expect(c, 6, INT64_MAX, seen_cb, &b);
    assert_int_equal(proto_conn_pending(c), 2);
    frame_of(proto_cmd_response(RS_SYSTEM_BUSY, 6, "busy"), &f1, &l1);
    frame_of(proto_cmd_response(RS_SUCCESS, 5, NULL), &f2, &l2);
    cmd = proto_cmd_request(RC_NOTIFY_CONSUMER_IDS_CHANGED);
    cmd->opaque = 5; /* the broker's own counter: must not match our request 5 */
    frame_of(cmd, &f3, &l3);

    /* Byte by byte: responses out of order, matched by opaque. */
    for (i = 0; i < l1; i++)
        assert_int_equal(proto_conn_feed(c, f1 + i, 1), 0);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.code, RS_SYSTEM_BUSY);
    assert_int_equal(a.calls, 0);
    /* A peer request and a response in one read. */
    memcpy(both, f3, l3);
    memcpy(both + l3, f2, l2);
    assert_int_equal(proto_conn_feed(c, both, 7), 0);
    assert_int_equal(proto_conn_feed(c, both + 7, l3 + l2 - 7), 0);
    assert_int_equal(req.requests, 1);
    assert_int_equal(req.req_code, RC_NOTIFY_CONSUMER_IDS_CHANGED);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.code, RS_SUCCESS);
    assert_int_equal(proto_conn_pending(c), 0);
    /* A late answer to nobody is dropped quietly. */
    assert_int_equal(proto_conn_feed(c, f2, l2), 0);
    assert_int_equal(a.calls, 1);

    /* Deadlines and failure. */
    a.calls = b.calls = 0;
    proto_conn_expect(c, 7, 1000, seen_cb, &a);
    proto_conn_expect(c, 8, 5000, seen_cb, &b);
    assert_int_equal(proto_conn_expire(c, 999), 1000);
    assert_int_equal(a.calls, 0);
    assert_int_equal(proto_conn_expire(c, 1000), 5000);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.rc, -ETIMEDOUT);
    proto_conn_fail_all(c, -ECONNRESET, NULL);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.rc, -ECONNRESET);
    assert_int_equal(proto_conn_pending(c), 0);
    proto_conn_free(c);

    /* Garbage length kills the connection. */
    {
        uint8_t bad[8] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};

        c = proto_conn_create(&o);
        assert_int_equal(proto_conn_feed(c, bad, sizeof bad), LSMQ_ECORRUPT);
        proto_conn_free(c);
    }
    free(f1);
    free(f2);
    free(f3);
}

/* Expected failures log; keep the output clean (and run the log path). */
static void quiet_log(int level, const char *line, void *arg)
{
    (void)level;
    (void)line;
    (void)arg;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allocate_matches_reference),
        cmocka_unit_test(test_allocate_edges),
        cmocka_unit_test(test_consumer_ids),
        cmocka_unit_test(test_route_forms),
        cmocka_unit_test(test_route_normalise),
        cmocka_unit_test(test_route_perms_and_order_conf),
        cmocka_unit_test(test_route_default_and_errors),
        cmocka_unit_test(test_route_pick),
        cmocka_unit_test(test_route_masterless),
        cmocka_unit_test(test_message_decode),
        cmocka_unit_test(test_message_bad_compression),
        cmocka_unit_test(test_inflate_limits),
        cmocka_unit_test(test_send_encoding),
        cmocka_unit_test(test_batch_encoding),
        cmocka_unit_test(test_select_by_hash),
        cmocka_unit_test(test_offset_file),
        cmocka_unit_test(test_subscription),
        cmocka_unit_test(test_heartbeat_json),
        cmocka_unit_test(test_reset_body),
        cmocka_unit_test(test_pull_codec),
        cmocka_unit_test(test_conn_matching),
    };

    lsmq_set_log(quiet_log, NULL, LSMQ_LOG_DEBUG);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
