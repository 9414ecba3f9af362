/*
 * Message identities (REMOTING.md §4.7-4.10): the offset message id that
 * send responses carry, the client unique id (UNIQ_KEY) a producer stamps,
 * the tag hash the consume index stores, and the SEND_BATCH_MESSAGE body.
 *
 * Everything here must agree bit for bit with what Java computes, because
 * clients decode these ids and compare these hashes themselves.
 */
#include "message_id.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "utf8.h"
#include "clock.h"

/* ------------------------------------------------------------------ */
/* Hex                                                                 */
/* ------------------------------------------------------------------ */

/* Upper-case hex, as Java's UtilAll.bytes2string writes it. */
static void hex_encode(const uint8_t *b, size_t n, char *out)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t i;

    for (i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 0xF];
    }
    out[2 * n] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decode 2n hex chars into n bytes; 0 or LSMQ_EINVAL on a non-hex char. */
static int hex_decode(const char *s, size_t n, uint8_t *out)
{
    size_t i;

    for (i = 0; i < n; i++) {
        int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);

        if (hi < 0 || lo < 0)
            return LSMQ_EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Offset message id                                                   */
/* ------------------------------------------------------------------ */

/* ip + int32 port + int64 position; 28 bytes with an IPv6 address. */
#define MSGID_TAIL 12
#define MSGID_MAX_BYTES (16 + MSGID_TAIL)

size_t proto_msgid_encode(const proto_host *store_host, uint64_t log_position, char *out)
{
    uint8_t raw[MSGID_MAX_BYTES];
    size_t ip_len = store_host->v6 ? 16 : 4;

    memcpy(raw, store_host->ip, ip_len);
    proto_put_u32(raw + ip_len, store_host->port);
    proto_put_u64(raw + ip_len + 4, log_position);
    hex_encode(raw, ip_len + MSGID_TAIL, out);
    return 2 * (ip_len + MSGID_TAIL);
}

int proto_msgid_decode(const char *id, size_t len, proto_host *store_host,
                       uint64_t *log_position)
{
    uint8_t raw[MSGID_MAX_BYTES];
    size_t n = len / 2, ip_len;

    /* Java splits by length too: 32 chars is IPv4, 56 is IPv6. */
    if (id == NULL || (len != PROTO_MSGID_V4_LEN && len != PROTO_MSGID_V6_LEN))
        return LSMQ_EINVAL;
    if (hex_decode(id, n, raw) != 0)
        return LSMQ_EINVAL;
    ip_len = n - MSGID_TAIL;
    memset(store_host, 0, sizeof *store_host);
    store_host->v6 = ip_len == 16;
    memcpy(store_host->ip, raw, ip_len);
    store_host->port = proto_get_u32(raw + ip_len);
    *log_position = proto_get_u64(raw + ip_len + 4);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Client unique id                                                    */
/* ------------------------------------------------------------------ */

/* Java's counter is a 16-bit slice of a process-wide AtomicInteger. */
static atomic_uint uniq_counter;

/* The current month in local time, as [start, next) in epoch ms. */
static pthread_mutex_t month_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t month_start_ms;  /* guarded by month_lock */
static int64_t month_next_ms;   /* guarded by month_lock */

/* Local midnight of the 1st of the month holding now, and of the next month. */
static void month_bounds(int64_t now, int64_t *start, int64_t *next)
{
    time_t t = (time_t)(now / 1000);
    struct tm tm;

    localtime_r(&t, &tm);
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1; /* let mktime find the DST state of that midnight */
    *start = (int64_t)mktime(&tm) * 1000;
    tm.tm_mon += 1; /* mktime carries December into January */
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    *next = (int64_t)mktime(&tm) * 1000;
}

/*
 * Milliseconds since the start of the month. Java keeps the low 32 bits
 * (after about 24.8 days the int goes negative), and so do we.
 */
static uint32_t ms_into_month(void)
{
    int64_t now = proto_wall_ms(), diff;

    pthread_mutex_lock(&month_lock);
    /* Recomputed only at a month boundary (or a clock jump), as Java does. */
    if (now >= month_next_ms || now < month_start_ms)
        month_bounds(now, &month_start_ms, &month_next_ms);
    diff = now - month_start_ms;
    pthread_mutex_unlock(&month_lock);
    return (uint32_t)diff;
}

/*
 * Stands in for Java's class-loader hashCode: a value fixed for the life of
 * the process that differs between processes. A static object's address
 * changes from run to run under ASLR and needs no initialisation race; the
 * pid is mixed in for systems without ASLR.
 */
static uint32_t process_value(void)
{
    static const char anchor;
    uint64_t x = (uint64_t)(uintptr_t)&anchor ^ ((uint64_t)getpid() << 32);

    /* splitmix64's finaliser spreads the few changing address bits. */
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 31;
    return (uint32_t)x;
}

void proto_uniq_id_new(const uint8_t ip4[4], char out[33])
{
    uint8_t raw[16];
    unsigned counter = atomic_fetch_add_explicit(&uniq_counter, 1, memory_order_relaxed);
    uint32_t pid = (uint32_t)getpid();

    memcpy(raw, ip4, 4);
    raw[4] = (uint8_t)(pid >> 8); /* Java keeps the pid's low 16 bits */
    raw[5] = (uint8_t)pid;
    proto_put_u32(raw + 6, process_value());
    proto_put_u32(raw + 10, ms_into_month());
    raw[14] = (uint8_t)(counter >> 8);
    raw[15] = (uint8_t)counter;
    hex_encode(raw, sizeof raw, out);
}

/* ------------------------------------------------------------------ */
/* Tag hash                                                            */
/* ------------------------------------------------------------------ */

/*
 * Java String.hashCode over the tag as Java decodes it from UTF-8: one
 * UTF-16 unit per BMP code point, a surrogate pair above U+FFFF, U+FFFD for
 * each malformed piece. Unsigned arithmetic gives int32 wrap-around without
 * undefined behaviour.
 */
int64_t proto_tag_hash(const char *tag, size_t len)
{
    const uint8_t *p = (const uint8_t *)tag;
    uint32_t h = 0, cp;
    size_t i = 0;

    while (i < len) {
        i += proto_utf8_decode(p + i, len - i, &cp);
        if (cp == PROTO_UTF8_BAD)
            cp = PROTO_UTF8_REPLACEMENT;
        if (cp >= 0x10000) {
            cp -= 0x10000;
            h = 31 * h + (0xD800 + (cp >> 10));
            h = 31 * h + (0xDC00 + (cp & 0x3FF));
        } else {
            h = 31 * h + cp;
        }
    }
    /* Java widens the int hash to the long tags code with its sign. */
    return (int64_t)(int32_t)h;
}

/* ------------------------------------------------------------------ */
/* Batch body                                                          */
/* ------------------------------------------------------------------ */

/*
 * Entry layout: TOTALSIZE i32 | MAGICCODE i32 | BODYCRC i32 | FLAG i32 |
 * body length i32 + body | properties length i16 + properties.
 */
#define BATCH_FIXED 22
#define BATCH_OFF_FLAG 12
#define BATCH_OFF_BODY_LEN 16
#define BATCH_OFF_BODY 20

size_t proto_batch_entry_size(const proto_batch_entry *e)
{
    return BATCH_FIXED + (size_t)e->body_len + e->props_len;
}

int proto_batch_next(const uint8_t *body, size_t len, size_t *pos, proto_batch_entry *e)
{
    const uint8_t *p;
    uint32_t total, body_len;
    size_t left;
    unsigned props_len;

    if (*pos == len)
        return 0;
    if (*pos > len || body == NULL)
        return LSMQ_ECORRUPT;
    p = body + *pos;
    left = len - *pos;
    if (left < BATCH_FIXED)
        return LSMQ_ECORRUPT;
    total = proto_get_u32(p);
    if (total > INT32_MAX || total < BATCH_FIXED || total > left)
        return LSMQ_ECORRUPT;
    /*
     * MAGICCODE and BODYCRC are not checked: the Java client writes 0 in
     * both and the broker recomputes the CRC when it stores the message.
     */
    body_len = proto_get_u32(p + BATCH_OFF_BODY_LEN);
    if (body_len > total - BATCH_FIXED) /* also catches a negative Java int */
        return LSMQ_ECORRUPT;
    props_len = (unsigned)p[BATCH_OFF_BODY + body_len] << 8 | p[BATCH_OFF_BODY + body_len + 1];
    if (props_len > PROTO_PROPS_MAX)
        return LSMQ_ECORRUPT; /* a negative Java short */
    if (BATCH_FIXED + body_len + props_len != total)
        return LSMQ_ECORRUPT;

    e->flag = (int32_t)proto_get_u32(p + BATCH_OFF_FLAG);
    e->body = p + BATCH_OFF_BODY;
    e->body_len = body_len;
    e->props = (const char *)(p + BATCH_OFF_BODY + body_len + 2);
    e->props_len = props_len;
    *pos += total;
    return 1;
}

long proto_batch_encode_entry(const proto_batch_entry *e, uint8_t *out, size_t cap)
{
    size_t n = proto_batch_entry_size(e);
    uint8_t *p = out;

    if ((e->body == NULL && e->body_len > 0) || (e->props == NULL && e->props_len > 0))
        return LSMQ_EINVAL;
    if (e->props_len > PROTO_PROPS_MAX || n > INT32_MAX || n > cap)
        return LSMQ_ETOOBIG;
    proto_put_u32(p, (uint32_t)n);
    proto_put_u32(p + 4, 0); /* MAGICCODE, as the Java client writes it */
    proto_put_u32(p + 8, 0); /* BODYCRC, likewise */
    proto_put_u32(p + BATCH_OFF_FLAG, (uint32_t)e->flag);
    proto_put_u32(p + BATCH_OFF_BODY_LEN, e->body_len);
    p += BATCH_OFF_BODY;
    if (e->body_len > 0)
        memcpy(p, e->body, e->body_len);
    p += e->body_len;
    p[0] = (uint8_t)(e->props_len >> 8);
    p[1] = (uint8_t)e->props_len;
    if (e->props_len > 0)
        memcpy(p + 2, e->props, e->props_len);
    return (long)n;
}
