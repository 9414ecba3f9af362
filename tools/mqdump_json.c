/*
 * A stored message as one line of JSON, written straight into mqdump's
 * output buffer (no JSON library: a full scan prints millions of these).
 *
 *   {"topic":..,"queueId":..,"queueOffset":..,"msgId":..,"uniqKey":..,
 *    "tags":..,"keys":..,"bornTimestamp":..,"storeTimestamp":..,
 *    "bornHost":"ip:port","storeHost":"ip:port","reconsumeTimes":..,
 *    "sysFlag":..,"flag":..,"commitLogOffset":..,"bodyCRC":..,
 *    "properties":{..},"bodyEncoding":"utf8"|"base64","body":".."}
 *
 * msgId is the offset message id (store host + log position); uniqKey,
 * tags and keys are null when the message lacks them. The body is a JSON
 * string when it is valid UTF-8, else base64, as bodyEncoding says.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "message_id.h"
#include "mqdump.h"
#include "props.h"
#include "utf8.h"

/* Length of the well-formed UTF-8 sequence at s, or 0 if malformed. */
static size_t utf8_seq(const uint8_t *s, size_t len)
{
    uint32_t cp;
    size_t n = proto_utf8_decode(s, len, &cp);
    return cp == PROTO_UTF8_BAD ? 0 : n;
}

static const char hex_digits[] = "0123456789abcdef";

/* Nonzero when one of the eight bytes of w needs a second look: a control
 * character, a quote, a backslash or a non-ASCII byte. */
static int word_needs_care(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t quote = w ^ (ones * '"'), backslash = w ^ (ones * '\\');
    /* (x - ones) & ~x & highs is nonzero when some byte of x is zero (and
     * w - ones * 0x20 likewise when one is below 0x20); false alarms only
     * send a word down the byte-by-byte path. */
    return ((((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) |
             ((w - ones * 0x20) & ~w) | w) & highs) != 0;
}

void mqd_json_str(const char *str, size_t len)
{
    const uint8_t *s = (const uint8_t *)str;
    size_t i = 0, run = 0; /* run: start of bytes still to copy as they are */
    mqd_out_char('"');
    while (i < len) {
        if (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!word_needs_care(w)) {
                i += 8;
                continue;
            }
        }
        uint8_t c = s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        size_t n = c >= 0x80 ? utf8_seq(s + i, len - i) : 0;
        if (n > 0) {
            i += n;
            continue;
        }
        mqd_out(s + run, i - run);
        switch (c) {
        case '"': mqd_out("\\\"", 2); break;
        case '\\': mqd_out("\\\\", 2); break;
        case '\n': mqd_out("\\n", 2); break;
        case '\r': mqd_out("\\r", 2); break;
        case '\t': mqd_out("\\t", 2); break;
        default:
            if (c < 0x20) {
                char esc[6] = {'\\', 'u', '0', '0', hex_digits[c >> 4], hex_digits[c & 15]};
                mqd_out(esc, sizeof esc);
            } else {
                mqd_out("\\ufffd", 6); /* a malformed byte */
            }
        }
        i++;
        run = i;
    }
    mqd_out(s + run, len - run);
    mqd_out_char('"');
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Standard base64 with padding, as a JSON string. */
static void json_base64(const uint8_t *p, size_t len)
{
    char chunk[4096];
    size_t used = 0;
    mqd_out_char('"');
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < len)
            v |= p[i + 2];
        chunk[used++] = b64_alphabet[v >> 18];
        chunk[used++] = b64_alphabet[(v >> 12) & 63];
        chunk[used++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
        chunk[used++] = i + 2 < len ? b64_alphabet[v & 63] : '=';
        if (used + 4 > sizeof chunk) {
            mqd_out(chunk, used);
            used = 0;
        }
    }
    mqd_out(chunk, used);
    mqd_out_char('"');
}

const char *mqd_host_str(const proto_host *h, char *buf, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    if (!inet_ntop(h->v6 ? AF_INET6 : AF_INET, h->ip, ip, sizeof ip))
        snprintf(ip, sizeof ip, "?");
    snprintf(buf, cap, h->v6 ? "[%s]:%u" : "%s:%u", ip, (unsigned)h->port);
    return buf;
}

/* Hosts repeat from message to message: format each distinct one once. */
typedef struct host_cache {
    int valid;
    proto_host host;
    char text[80];
    size_t len;
} host_cache;

static void json_host(host_cache *c, const proto_host *h)
{
    if (!c->valid || memcmp(&c->host, h, sizeof *h) != 0) {
        c->host = *h;
        c->len = strlen(mqd_host_str(h, c->text, sizeof c->text));
        c->valid = 1;
    }
    mqd_json_str(c->text, c->len);
}

void mqd_json_field(const char *name, int first)
{
    if (!first)
        mqd_out_char(',');
    mqd_out_char('"');
    mqd_out_str(name);
    mqd_out("\":", 2);
}

void mqd_json_prop_field(const proto_record *r, const char *json_name, const char *prop)
{
    const char *v;
    size_t vlen;
    mqd_json_field(json_name, 0);
    if (proto_props_get(r->props, r->props_len, prop, &v, &vlen))
        mqd_json_str(v, vlen);
    else
        mqd_out("null", 4);
}

void mqd_json_message(const proto_record *r, const uint8_t *body, size_t body_len)
{
    char id[PROTO_MSGID_V6_LEN + 1];

    mqd_out_char('{');
    mqd_json_field("topic", 1);
    mqd_json_str(r->topic, r->topic_len);
    mqd_json_field("queueId", 0);
    mqd_out_i64(r->queue_id);
    mqd_json_field("queueOffset", 0);
    mqd_out_i64(r->queue_offset);
    mqd_json_field("msgId", 0);
    proto_msgid_encode(&r->store_host, (uint64_t)r->physical_offset, id);
    mqd_json_str(id, strlen(id));
    mqd_json_prop_field(r, "uniqKey", PROTO_PROP_UNIQ_KEY);
    mqd_json_prop_field(r, "tags", PROTO_PROP_TAGS);
    mqd_json_prop_field(r, "keys", PROTO_PROP_KEYS);
    mqd_json_field("bornTimestamp", 0);
    mqd_out_i64(r->born_timestamp);
    mqd_json_field("storeTimestamp", 0);
    mqd_out_i64(r->store_timestamp);
    static host_cache born_hosts, store_hosts;
    mqd_json_field("bornHost", 0);
    json_host(&born_hosts, &r->born_host);
    mqd_json_field("storeHost", 0);
    json_host(&store_hosts, &r->store_host);
    mqd_json_field("reconsumeTimes", 0);
    mqd_out_i64(r->reconsume_times);
    mqd_json_field("sysFlag", 0);
    mqd_out_i64(r->sys_flag);
    mqd_json_field("flag", 0);
    mqd_out_i64(r->flag);
    mqd_json_field("commitLogOffset", 0);
    mqd_out_i64(r->physical_offset);
    mqd_json_field("bodyCRC", 0);
    mqd_out_u64(r->body_crc);

    mqd_json_field("properties", 0);
    mqd_out_char('{');
    proto_props_iter it;
    const char *name, *value;
    size_t name_len, value_len;
    int first = 1;
    proto_props_iter_init(&it, r->props, r->props_len);
    while (proto_props_next(&it, &name, &name_len, &value, &value_len)) {
        if (!first)
            mqd_out_char(',');
        first = 0;
        mqd_json_str(name, name_len);
        mqd_out_char(':');
        mqd_json_str(value, value_len);
    }
    mqd_out_char('}');

    int text = proto_utf8_valid(body, body_len);
    mqd_json_field("bodyEncoding", 0);
    mqd_out_str(text ? "\"utf8\"" : "\"base64\"");
    mqd_json_field("body", 0);
    if (text)
        mqd_json_str((const char *)body, body_len);
    else
        json_base64(body, body_len);
    mqd_out("}\n", 2);
}
