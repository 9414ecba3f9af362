/*
 * Writes the seed corpus for the fuzz targets: a few valid frames in the
 * shapes each client sends, bare JSON and binary headers (fuzz_frame also
 * wraps its input as a header), stored records, a batch body, a properties
 * string and message ids.
 *
 *   fuzz_seeds DIR   creates DIR/fuzz_frame/ and DIR/fuzz_record/
 *
 * Seeds are generated rather than checked in so that they follow the codec
 * when the encoders change.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "message_id.h"
#include "props.h"
#include "record.h"
#include "remoting.h"

static const char *frame_dir;
static const char *record_dir;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void write_seed(const char *dir, const char *name, const void *p, size_t n)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL)
        die(path);
    if (n > 0 && fwrite(p, 1, n, f) != n)
        die(path);
    if (fclose(f) != 0)
        die(path);
}

static void make_dir(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die(path);
}

/* A frame around header bytes of the given serialize type and a body. */
static void write_frame(const char *name, int type, const void *hdr, size_t hlen,
                        const char *body)
{
    size_t blen = body ? strlen(body) : 0, n = 8 + hlen + blen;
    uint8_t *f = malloc(n);

    if (f == NULL)
        die("malloc");
    proto_put_u32(f, (uint32_t)(n - 4));
    proto_put_u32(f + 4, (uint32_t)type << 24 | (uint32_t)hlen);
    memcpy(f + 8, hdr, hlen);
    if (blen > 0)
        memcpy(f + 8 + hlen, body, blen);
    write_seed(frame_dir, name, f, n);
    free(f);
}

static void write_cmd(const char *name, const proto_cmd *cmd, const char *body)
{
    uint8_t *out;
    size_t len;

    if (proto_cmd_encode(cmd, body, body ? strlen(body) : 0, &out, &len) != 0)
        die("proto_cmd_encode");
    write_seed(frame_dir, name, out, len);
    free(out);
}

/* ------------------------------------------------------------------ */

static const char *const json_headers[] = {
    /* ali-ons: unquoted numbers and booleans in extFields */
    "{\"code\":310,\"language\":\"JAVA\",\"opaque\":3,\"flag\":0,\"version\":121,"
    "\"extFields\":{\"a\":\"PG\",\"b\":\"TopicTest\",\"c\":\"TBW102\",\"d\":4,\"e\":1,"
    "\"f\":0,\"g\":1700000000123,\"h\":0,\"i\":\"TAGS\\u0001TagA\\u0002\",\"j\":0,"
    "\"k\":false,\"l\":16,\"m\":false}}",
    /* C++: remark "", trailing newline */
    "{\"code\":34,\"extFields\":{\"AccessKey\":\"\",\"OnsChannel\":\"\",\"Signature\":\"\"},"
    "\"flag\":0,\"language\":\"CPP\",\"opaque\":12,\"remark\":\"\","
    "\"serializeTypeCurrentRPC\":\"JSON\",\"version\":333}\n",
    /* Go: struct order, string values */
    "{\"code\":11,\"language\":\"GO\",\"version\":317,\"opaque\":9,\"flag\":0,\"remark\":\"\","
    "\"extFields\":{\"consumerGroup\":\"g\",\"topic\":\"t\",\"queueId\":\"0\","
    "\"queueOffset\":\"42\",\"maxMsgNums\":\"32\",\"sysFlag\":\"2\",\"subscription\":\"*\","
    "\"expressionType\":\"TAG\"}}",
    /* Java response with a remark, unknown fields, duplicates, nulls */
    "{\"code\":17,\"flag\":1,\"language\":\"JAVA\",\"opaque\":-7,\"remark\":\"No topic route "
    "info in name server for the topic: T\",\"x\":[1,{\"y\":null}],\"extFields\":{\"q\":\"1\","
    "\"q\":\"2\",\"n\":null,\"r\":1.5},\"serializeTypeCurrentRPC\":\"JSON\",\"version\":479}",
};

/* code 310, GO, version 317, opaque 0x01020304, oneway, remark "hi", {a:1, bb:22}. */
static const uint8_t binary_header[] = {
    0x01, 0x36, 0x09, 0x01, 0x3D, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x02,
    0x00, 0x00, 0x00, 0x02, 'h', 'i', 0x00, 0x00, 0x00, 0x12,
    0x00, 0x01, 'a', 0x00, 0x00, 0x00, 0x01, '1',
    0x00, 0x02, 'b', 'b', 0x00, 0x00, 0x00, 0x02, '2', '2',
};

static void frame_seeds(void)
{
    proto_cmd *cmd;
    char name[64];
    size_t i;

    cmd = proto_cmd_request(RC_GET_ROUTEINFO_BY_TOPIC);
    proto_cmd_set(cmd, "topic", "TopicTest");
    write_cmd("route_request", cmd, NULL);
    proto_cmd_free(cmd);

    cmd = proto_cmd_response(RS_SUCCESS, 42, "ok");
    proto_cmd_set(cmd, "msgId", "0A00000500002A9F0000000000001000");
    proto_cmd_set_i64(cmd, "queueOffset", 1234567890123LL);
    proto_cmd_set_bool(cmd, "suspend", 1);
    write_cmd("send_response", cmd, "{\"body\":true}");
    proto_cmd_free(cmd);

    for (i = 0; i < sizeof json_headers / sizeof json_headers[0]; i++) {
        snprintf(name, sizeof name, "json_header_%zu", i);
        write_seed(frame_dir, name, json_headers[i], strlen(json_headers[i]));
        snprintf(name, sizeof name, "json_frame_%zu", i);
        write_frame(name, PROTO_SERIALIZE_JSON, json_headers[i], strlen(json_headers[i]),
                    i == 0 ? "message body" : NULL);
    }
    write_seed(frame_dir, "binary_header", binary_header, sizeof binary_header);
    write_frame("binary_frame", PROTO_SERIALIZE_ROCKETMQ, binary_header, sizeof binary_header,
                "body");
}

/* ------------------------------------------------------------------ */

static void write_record(const char *name, proto_record *r)
{
    size_t n = proto_record_size(r);
    uint8_t *buf = malloc(n ? n : 1);

    if (buf == NULL || n == 0 || proto_record_encode(r, buf, n) != (long)n)
        die("proto_record_encode");
    write_seed(record_dir, name, buf, n);
    free(buf);
}

static void record_seeds(void)
{
    static const char props[] = "TAGS\001TagA\002KEYS\001k1 k2\002UNIQ_KEY\001"
                                "7F0000010A2B00000000000000010000\002WAIT\001true\002";
    char long_topic[201];
    proto_record r;
    proto_batch_entry e[2] = {
        {0, (const uint8_t *)"first body", 10, "TAGS\001A\002", 7},
        {5, NULL, 0, "KEYS\001x\002WAIT\001false\002", 18},
    };
    uint8_t batch[128];
    long a, b;
    char id[PROTO_MSGID_V6_LEN + 1];

    memset(&r, 0, sizeof r);
    r.queue_id = 3;
    r.queue_offset = 17;
    r.physical_offset = 4096;
    r.born_timestamp = 1700000000000LL;
    r.store_timestamp = 1700000000005LL;
    r.born_host.ip[0] = 10;
    r.born_host.ip[3] = 7;
    r.born_host.port = 50123;
    r.store_host.ip[0] = 10;
    r.store_host.ip[3] = 5;
    r.store_host.port = 10911;
    r.body = (const uint8_t *)"Hello RocketMQ";
    r.body_len = 14;
    r.topic = "TopicTest";
    r.topic_len = 9;
    r.props = props;
    r.props_len = sizeof props - 1;
    write_record("record_v1", &r);

    memset(long_topic, 'R', 200);
    memcpy(long_topic, "%RETRY%", 7);
    long_topic[200] = '\0';
    r.topic = long_topic;
    r.topic_len = 200;
    r.born_host.v6 = 1;
    r.store_host.v6 = 1;
    r.sys_flag = PROTO_SYSFLAG_COMPRESSED | PROTO_SYSFLAG_TXN_COMMIT;
    write_record("record_v2_ipv6", &r);

    a = proto_batch_encode_entry(&e[0], batch, sizeof batch);
    b = a > 0 ? proto_batch_encode_entry(&e[1], batch + a, sizeof batch - (size_t)a) : -1;
    if (a <= 0 || b <= 0)
        die("proto_batch_encode_entry");
    write_seed(record_dir, "batch", batch, (size_t)(a + b));
    write_seed(record_dir, "props", props, sizeof props - 1);

    proto_msgid_encode(&r.store_host, 987654321, id);
    write_seed(record_dir, "msgid_v6", id, strlen(id));
    r.store_host.v6 = 0;
    proto_msgid_encode(&r.store_host, 4096, id);
    write_seed(record_dir, "msgid_v4", id, strlen(id));
}

int main(int argc, char **argv)
{
    static char fdir[4096], rdir[4096];

    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    snprintf(fdir, sizeof fdir, "%s/fuzz_frame", argv[1]);
    snprintf(rdir, sizeof rdir, "%s/fuzz_record", argv[1]);
    make_dir(argv[1]);
    make_dir(fdir);
    make_dir(rdir);
    frame_dir = fdir;
    record_dir = rdir;
    frame_seeds();
    record_seeds();
    return 0;
}
