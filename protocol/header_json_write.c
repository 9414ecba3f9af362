/*
 * Writer for JSON remoting headers (header_json.h): the bytes
 * json_dumps(JSON_COMPACT | JSON_SORT_KEYS) gave for the header remoting.c
 * used to build with jansson:
 *
 *   - keys sorted bytewise at both levels; an extFields key set twice keeps
 *     its last value;
 *   - text made valid UTF-8 first, each malformed piece one U+FFFD, as Java
 *     decodes it (keys before sorting, since that can make two keys equal);
 *   - escapes \" \\ \b \f \n \r \t, other bytes below 0x20 as \u00XX in
 *     upper case hex; '/' and non-ASCII text written as they are.
 */
#include "header_json.h"

#include <stdlib.h>
#include <string.h>

#include "utf8.h"

typedef struct obuf {
    char *data;
    size_t len, cap;
    int failed;
} obuf;

static int reserve(obuf *b, size_t more)
{
    size_t cap;
    char *grown;

    if (b->failed)
        return -1;
    if (b->cap - b->len >= more)
        return 0;
    cap = b->cap * 2 > b->len + more ? b->cap * 2 : b->len + more;
    if (cap < b->len || (grown = realloc(b->data, cap)) == NULL) {
        b->failed = 1;
        return -1;
    }
    b->data = grown;
    b->cap = cap;
    return 0;
}

static void put(obuf *b, const char *s, size_t n)
{
    if (reserve(b, n) == 0) {
        memcpy(b->data + b->len, s, n);
        b->len += n;
    }
}

static void put_int(obuf *b, long long v)
{
    char tmp[24], *p = tmp + sizeof tmp;
    unsigned long long u = v < 0 ? 0 - (unsigned long long)v : (unsigned long long)v;

    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    put(b, p, (size_t)(tmp + sizeof tmp - p));
}

/* Bytes that go out as they are: printable ASCII but the quote and backslash. */
static int plain(unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

static void put_escape(obuf *b, unsigned char c)
{
    static const char hex[] = "0123456789ABCDEF";
    char seq[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

    switch (c) {
    case '"': put(b, "\\\"", 2); break;
    case '\\': put(b, "\\\\", 2); break;
    case '\b': put(b, "\\b", 2); break;
    case '\f': put(b, "\\f", 2); break;
    case '\n': put(b, "\\n", 2); break;
    case '\r': put(b, "\\r", 2); break;
    case '\t': put(b, "\\t", 2); break;
    default: put(b, seq, 6); break;
    }
}

/* s as a JSON string, malformed UTF-8 replaced on the way. */
static void put_string(obuf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), i = 0, start, used;
    uint32_t cp;

    put(b, "\"", 1);
    while (i < n) {
        for (start = i; i < n && plain(p[i]); i++)
            ;
        put(b, s + start, i - start);
        if (i == n)
            break;
        if (p[i] < 0x80) {
            put_escape(b, p[i++]);
            continue;
        }
        used = proto_utf8_decode(p + i, n - i, &cp);
        if (cp == PROTO_UTF8_BAD)
            put(b, "\xEF\xBF\xBD", 3);
        else
            put(b, s + i, used);
        i += used;
    }
    put(b, "\"", 1);
}

/* A string literal, its length taken at compile time. */
#define PUT_LIT(b, lit) put((b), (lit), sizeof(lit) - 1)

static void put_key(obuf *b, const char *key)
{
    put_string(b, key);
    put(b, ":", 1);
}

/* s with every malformed UTF-8 piece replaced by U+FFFD, as a new string. */
static char *utf8_lossy(const char *s)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t len = strlen(s), i, o = 0, used;
    uint32_t cp;
    char *out;

    /* Each bad piece is at least one byte and becomes three. */
    if (len > (SIZE_MAX - 1) / 3 || (out = malloc(len * 3 + 1)) == NULL)
        return NULL;
    for (i = 0; i < len; i += used) {
        used = proto_utf8_decode(p + i, len - i, &cp);
        if (cp == PROTO_UTF8_BAD) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
        } else {
            memcpy(out + o, s + i, used);
            o += used;
        }
    }
    out[o] = '\0';
    return out;
}

/* An extFields entry on its way out: its key as it will be written. */
typedef struct ext_out {
    const char *key;
    char *fixed; /* owned copy behind key when the original was malformed */
    const char *value;
    size_t pos;
} ext_out;

static int ext_out_cmp(const void *a, const void *b)
{
    const ext_out *x = a, *y = b;
    int c = strcmp(x->key, y->key);

    if (c != 0)
        return c;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Sorted by key, then arrival: insertion sort for the usual handful of fields. */
static void sort_ext(ext_out *e, size_t n)
{
    size_t i, j;
    ext_out t;

    if (n > 32) {
        qsort(e, n, sizeof *e, ext_out_cmp);
        return;
    }
    for (i = 1; i < n; i++) {
        t = e[i];
        for (j = i; j > 0 && strcmp(e[j - 1].key, t.key) > 0; j--)
            e[j] = e[j - 1];
        e[j] = t;
    }
}

static void put_ext(obuf *b, const proto_cmd *cmd)
{
    ext_out small[32], *e = small;
    size_t i, n = 0, first = 1;

    if (cmd->n_ext > sizeof small / sizeof small[0]) {
        if (cmd->n_ext > SIZE_MAX / sizeof *e || (e = malloc(cmd->n_ext * sizeof *e)) == NULL) {
            b->failed = 1;
            return;
        }
    }
    for (i = 0; i < cmd->n_ext; i++) {
        const char *key = cmd->ext[i].key;

        if (key == NULL || cmd->ext[i].value == NULL)
            continue;
        e[n].fixed = NULL;
        if (!proto_utf8_valid(key, strlen(key)) && (e[n].fixed = utf8_lossy(key)) == NULL)
            b->failed = 1;
        e[n].key = e[n].fixed != NULL ? e[n].fixed : key;
        e[n].value = cmd->ext[i].value;
        e[n].pos = i;
        n++;
    }
    sort_ext(e, n);
    put(b, "{", 1);
    for (i = 0; i < n; i++) {
        /* Only the last of equal keys is written: it was set last. */
        if (i + 1 < n && strcmp(e[i].key, e[i + 1].key) == 0)
            continue;
        if (!first)
            put(b, ",", 1);
        first = 0;
        put_key(b, e[i].key);
        put_string(b, e[i].value);
    }
    put(b, "}", 1);
    for (i = 0; i < n; i++)
        free(e[i].fixed);
    if (e != small)
        free(e);
}

uint8_t *proto__hj_write_header(const proto_cmd *cmd, size_t front, size_t *len)
{
    obuf b = {NULL, 0, 0, 0};

    if (reserve(&b, front + 256) != 0)
        return NULL;
    b.len = front;
    /* Keys in sorted order: code, extFields, flag, language, opaque, remark, ser..., version. */
    PUT_LIT(&b, "{\"code\":");
    put_int(&b, cmd->code);
    if (cmd->n_ext > 0) {
        PUT_LIT(&b, ",\"extFields\":");
        put_ext(&b, cmd);
    }
    PUT_LIT(&b, ",\"flag\":");
    put_int(&b, cmd->flag);
    PUT_LIT(&b, ",\"language\":");
    put_string(&b, proto_language_name(cmd->language));
    PUT_LIT(&b, ",\"opaque\":");
    put_int(&b, cmd->opaque);
    if (cmd->remark != NULL) {
        PUT_LIT(&b, ",\"remark\":");
        put_string(&b, cmd->remark);
    }
    PUT_LIT(&b, ",\"serializeTypeCurrentRPC\":\"JSON\",\"version\":");
    put_int(&b, cmd->version);
    PUT_LIT(&b, "}");
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    *len = b.len - front;
    return (uint8_t *)b.data;
}
