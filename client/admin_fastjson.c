/*
 * fastjson text -> standard JSON (REMOTING.md §5.1), for admin bodies.
 *
 * Java brokers and name servers serialise maps whose keys are not strings
 * with the key written as it is: {0:"ip:port"} for broker ids, and
 * {{"brokerName":"b","queueId":0,"topic":"t"}:{...}} for MessageQueue keys
 * (TopicStatsTable, ConsumeStats, ConsumerRunningInfo). No JSON parser
 * accepts either, so this file copies the text through a small
 * recursive-descent scanner that writes compact JSON and turns every
 * non-string key into a string: a number key its literal text, an object
 * or array key its own compact JSON text. The callers then parse the
 * result with jansson and, for MessageQueue maps, each key once more.
 *
 * The scanner checks structure (brackets, commas, colons, string ends);
 * jansson checks the rest (number syntax, escapes, UTF-8) afterwards.
 */
#include <string.h>

#include "admin_internal.h"

#define FJ_MAX_DEPTH 128

typedef struct fj_reader {
    const char *p;
    const char *end;
    int depth;
} fj_reader;

static void skip_ws(fj_reader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int peek(fj_reader *r)
{
    skip_ws(r);
    return r->p < r->end ? (unsigned char)*r->p : -1;
}

static void put(lsmq_buf *out, const char *s, size_t n)
{
    lsmq__buf_put(out, s, n);
}

/* A string token, copied with its quotes and escapes untouched. */
static int copy_string(fj_reader *r, lsmq_buf *out)
{
    const char *start = r->p++;

    while (r->p < r->end && *r->p != '"') {
        if (*r->p == '\\' && r->end - r->p > 1)
            r->p++; /* the escaped character cannot end the string */
        r->p++;
    }
    if (r->p >= r->end)
        return LSMQ_ECORRUPT;
    r->p++;
    put(out, start, (size_t)(r->p - start));
    return 0;
}

static int is_atom_char(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           ch == '-' || ch == '+' || ch == '.';
}

/* A number or true/false/null, copied as it is. */
static int copy_atom(fj_reader *r, lsmq_buf *out)
{
    const char *start = r->p;

    while (r->p < r->end && is_atom_char(*r->p))
        r->p++;
    if (r->p == start)
        return LSMQ_ECORRUPT;
    put(out, start, (size_t)(r->p - start));
    return 0;
}

static int copy_value(fj_reader *r, lsmq_buf *out);

/* Write text as a JSON string: quote it, escape quotes and backslashes. */
static void put_as_string(lsmq_buf *out, const uint8_t *text, size_t len)
{
    put(out, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '"' || text[i] == '\\')
            put(out, "\\", 1);
        put(out, (const char *)&text[i], 1);
    }
    put(out, "\"", 1);
}

/* An object key: strings as they are, anything else through put_as_string. */
static int copy_key(fj_reader *r, lsmq_buf *out)
{
    if (peek(r) == '"')
        return copy_string(r, out);
    lsmq_buf key = {0};
    int rc = copy_value(r, &key);
    if (rc == 0)
        put_as_string(out, key.p, key.len);
    lsmq__buf_free(&key);
    return rc;
}

/* An object or array; `close` is '}' or ']'. */
static int copy_container(fj_reader *r, lsmq_buf *out, char close)
{
    int rc = 0;

    if (++r->depth > FJ_MAX_DEPTH)
        return LSMQ_ECORRUPT;
    put(out, r->p++, 1);
    if (peek(r) == close) {
        r->p++;
        put(out, &close, 1);
        r->depth--;
        return 0;
    }
    for (;;) {
        if (close == '}') {
            if ((rc = copy_key(r, out)) != 0)
                return rc;
            if (peek(r) != ':')
                return LSMQ_ECORRUPT;
            put(out, r->p++, 1);
        }
        if ((rc = copy_value(r, out)) != 0)
            return rc;
        int ch = peek(r);
        if (ch == ',') {
            put(out, r->p++, 1);
            continue;
        }
        if (ch != close)
            return LSMQ_ECORRUPT;
        put(out, r->p++, 1);
        r->depth--;
        return 0;
    }
}

static int copy_value(fj_reader *r, lsmq_buf *out)
{
    switch (peek(r)) {
    case '{': return copy_container(r, out, '}');
    case '[': return copy_container(r, out, ']');
    case '"': return copy_string(r, out);
    case -1: return LSMQ_ECORRUPT;
    default: return copy_atom(r, out);
    }
}

int lsmq_admin_fastjson_to_json(const char *text, size_t len, char **out)
{
    fj_reader r = {text, text + len, 0};
    lsmq_buf b = {0};

    if (!text || !out)
        return LSMQ_EINVAL;
    *out = NULL;
    int rc = copy_value(&r, &b);
    if (rc == 0 && peek(&r) != -1)
        rc = LSMQ_ECORRUPT;
    if (rc != 0) {
        lsmq__buf_free(&b);
        return rc;
    }
    put(&b, "", 1);
    *out = (char *)b.p;
    return 0;
}
