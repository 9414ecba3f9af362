/*
 * fastjson text <-> standard JSON (fastjson.h).
 *
 * The reader copies text through a small recursive-descent scanner that
 * writes compact JSON and turns every non-string key into a string: it
 * checks structure only and leaves the rest to the JSON parser the caller
 * runs on the result. The writer is the string literal fastjson writes.
 */
#include "fastjson.h"

#include <stdint.h>
#include <string.h>

#include "errors.h"
#include "utf8.h"

/* ------------------------------------------------------------------ */
/* Reading                                                             */
/* ------------------------------------------------------------------ */

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

/* The next character that is not white space, or -1 at the end. */
static int peek(fj_reader *r)
{
    skip_ws(r);
    return r->p < r->end ? (unsigned char)*r->p : -1;
}

/* A string token, copied with its quotes and escapes as they are. */
static int copy_string(fj_reader *r, proto_buf *out)
{
    const char *start = r->p++;

    while (r->p < r->end && *r->p != '"') {
        if (*r->p == '\\' && r->end - r->p > 1)
            r->p++; /* an escaped character cannot end the string */
        r->p++;
    }
    if (r->p >= r->end)
        return LSMQ_ECORRUPT;
    r->p++;
    proto_buf_put(out, start, (size_t)(r->p - start));
    return 0;
}

static int is_atom_char(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           ch == '-' || ch == '+' || ch == '.';
}

/* A number or true/false/null, copied as it is. */
static int copy_atom(fj_reader *r, proto_buf *out)
{
    const char *start = r->p;

    while (r->p < r->end && is_atom_char(*r->p))
        r->p++;
    if (r->p == start)
        return LSMQ_ECORRUPT;
    proto_buf_put(out, start, (size_t)(r->p - start));
    return 0;
}

static int copy_value(fj_reader *r, proto_buf *out);

/* text as a JSON string: quoted, with its quotes and backslashes escaped. */
static void put_quoted(proto_buf *out, const char *text, size_t len)
{
    size_t i, run = 0;

    proto_buf_put(out, "\"", 1);
    for (i = 0; i < len; i++) {
        if (text[i] != '"' && text[i] != '\\')
            continue;
        proto_buf_put(out, text + run, i - run);
        proto_buf_put(out, "\\", 1);
        run = i;
    }
    proto_buf_put(out, text + run, len - run);
    proto_buf_put(out, "\"", 1);
}

/* An object key: a string as it is, anything else as the string of its text. */
static int copy_key(fj_reader *r, proto_buf *out)
{
    proto_buf key = {0};
    int rc;

    if (peek(r) == '"')
        return copy_string(r, out);
    rc = copy_value(r, &key);
    if (rc == 0)
        put_quoted(out, key.p, key.len);
    proto_buf_free(&key);
    return rc;
}

/* An object or array; `close` is '}' or ']'. */
static int copy_container(fj_reader *r, proto_buf *out, char close)
{
    int rc, ch;

    if (++r->depth > PROTO_FASTJSON_MAX_DEPTH)
        return LSMQ_ECORRUPT;
    proto_buf_put(out, r->p++, 1);
    if (peek(r) == close) {
        proto_buf_put(out, r->p++, 1);
        r->depth--;
        return 0;
    }
    for (;;) {
        if (close == '}') {
            if ((rc = copy_key(r, out)) != 0)
                return rc;
            if (peek(r) != ':')
                return LSMQ_ECORRUPT;
            proto_buf_put(out, r->p++, 1);
        }
        if ((rc = copy_value(r, out)) != 0)
            return rc;
        ch = peek(r);
        if (ch != ',' && ch != close)
            return LSMQ_ECORRUPT;
        proto_buf_put(out, r->p++, 1);
        if (ch == close)
            break;
    }
    r->depth--;
    return 0;
}

static int copy_value(fj_reader *r, proto_buf *out)
{
    switch (peek(r)) {
    case '{': return copy_container(r, out, '}');
    case '[': return copy_container(r, out, ']');
    case '"': return copy_string(r, out);
    case -1: return LSMQ_ECORRUPT;
    default: return copy_atom(r, out);
    }
}

int proto_fastjson_to_json(const char *text, size_t len, char **out)
{
    fj_reader r = {text, text + len, 0};
    proto_buf b = {0};
    int rc;

    if (text == NULL || out == NULL)
        return LSMQ_EINVAL;
    *out = NULL;
    rc = copy_value(&r, &b);
    if (rc == 0 && peek(&r) != -1)
        rc = LSMQ_ECORRUPT;
    if (rc != 0) {
        proto_buf_free(&b);
        return rc;
    }
    *out = proto_buf_take(&b);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

void proto_json_put_string(proto_buf *b, const char *str, int ascii_only)
{
    const uint8_t *s = (const uint8_t *)str;
    size_t len = strlen(str), i = 0, used;
    uint32_t cp;

    proto_buf_put(b, "\"", 1);
    while (i < len) {
        uint8_t c = s[i];

        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};

            proto_buf_put(b, esc, 2);
            i++;
            continue;
        }
        if (c < 0x20) {
            proto_buf_printf(b, "\\u%04x", c);
            i++;
            continue;
        }
        if (c < 0x80) {
            proto_buf_put(b, s + i, 1);
            i++;
            continue;
        }
        used = proto_utf8_decode(s + i, len - i, &cp);
        if (cp == PROTO_UTF8_BAD) {
            proto_buf_puts(b, "\\ufffd"); /* what Java's decoder makes of the piece */
        } else if (!ascii_only) {
            proto_buf_put(b, s + i, used);
        } else if (cp < 0x10000) {
            proto_buf_printf(b, "\\u%04x", (unsigned)cp);
        } else {
            cp -= 0x10000;
            proto_buf_printf(b, "\\u%04x\\u%04x", (unsigned)(0xD800 + (cp >> 10)),
                             (unsigned)(0xDC00 + (cp & 0x3FF)));
        }
        i += used;
    }
    proto_buf_put(b, "\"", 1);
}
