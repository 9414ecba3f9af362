/*
 * Reader for JSON remoting headers (header_json.h). One pass over the text,
 * no tree: scalars are kept as views into the text, nested values the
 * header does not use are only validated, and only extFields' members are
 * collected. What it accepts follows jansson 2.14's loader rule for rule:
 *
 *   - whitespace is space, tab, LF and CR;
 *   - the whole text must be valid UTF-8 (no overlongs, surrogates or code
 *     points above U+10FFFF), and raw control bytes may not occur in strings;
 *   - escapes are \" \\ \/ \b \f \n \r \t and \uXXXX; a high surrogate must
 *     be followed by an escaped low one, a low one may not stand alone, and
 *     \u0000 is refused (no JSON_ALLOW_NUL);
 *   - integers must fit a long long, reals must not overflow a double;
 *   - no value may sit deeper than HJ_MAX_DEPTH (the root is at depth 1);
 *   - only whitespace may follow the root value.
 *
 * One quirk is reproduced on purpose: jansson pushes back the byte after a
 * number or a literal, and a pushed-back NUL byte is lost, so a single NUL
 * right after such a token is skipped ({"a":1<NUL>} loads).
 */
#include "header_json.h"

#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

typedef struct lexer {
    const unsigned char *p, *end;
} lexer;

static int peek(const lexer *lx)
{
    return lx->p < lx->end ? *lx->p : -1;
}

static void skip_ws(lexer *lx)
{
    while (lx->p < lx->end &&
           (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\n' || *lx->p == '\r'))
        lx->p++;
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The code unit of "\uXXXX" at p (p[0] == '\\' assumed), or -1. */
static long escape_unit(const unsigned char *p, const unsigned char *end)
{
    long v = 0;
    int i, h;

    if (end - p < 6 || p[1] != 'u')
        return -1;
    for (i = 2; i < 6; i++) {
        if ((h = hex_value(p[i])) < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

/* The jansson quirk described at the top: a NUL after a number or literal vanishes. */
static void drop_pushed_back_nul(lexer *lx)
{
    if (lx->p < lx->end && *lx->p == '\0')
        lx->p++;
}

/* A string; lx->p at its opening quote. */
static int scan_string(lexer *lx, hj_value *v)
{
    const unsigned char *p = lx->p + 1, *start = p, *end = lx->end;
    int escaped = 0;
    uint32_t cp;
    long u, lo;

    for (;;) {
        if (p >= end)
            return LSMQ_EINVAL;
        if (*p == '"')
            break;
        if (*p < 0x20)
            return LSMQ_EINVAL;
        if (*p < 0x80 && *p != '\\') {
            p++;
            continue;
        }
        if (*p >= 0x80) {
            p += proto_utf8_decode(p, (size_t)(end - p), &cp);
            if (cp == PROTO_UTF8_BAD)
                return LSMQ_EINVAL;
            continue;
        }
        escaped = 1;
        if (p + 1 >= end)
            return LSMQ_EINVAL;
        if (strchr("\"\\/bfnrt", p[1]) != NULL && p[1] != '\0') {
            p += 2;
            continue;
        }
        if ((u = escape_unit(p, end)) < 0 || u == 0)
            return LSMQ_EINVAL;
        p += 6;
        if (u >= 0xDC00 && u <= 0xDFFF)
            return LSMQ_EINVAL;
        if (u >= 0xD800 && u <= 0xDBFF) {
            if (p >= end || *p != '\\' || (lo = escape_unit(p, end)) < 0xDC00 || lo > 0xDFFF)
                return LSMQ_EINVAL;
            p += 6;
        }
    }
    v->type = HJ_STRING;
    v->escaped = escaped;
    v->s = (const char *)start;
    v->len = (size_t)(p - start);
    lx->p = p + 1;
    return 0;
}

/* strtod on the number text, refusing overflow as jansson does. */
static int read_real(const unsigned char *s, size_t n, double *out)
{
    char small[64], *buf = small, *dot;
    double d;

    if (n >= sizeof small && (buf = malloc(n + 1)) == NULL)
        return LSMQ_ENOMEM;
    memcpy(buf, s, n);
    buf[n] = '\0';
    /* jansson hands strtod the locale's decimal point; so must we to read alike. */
    if (*localeconv()->decimal_point != '.' && (dot = memchr(buf, '.', n)) != NULL)
        *dot = *localeconv()->decimal_point;
    errno = 0;
    d = strtod(buf, NULL);
    if (buf != small)
        free(buf);
    if ((d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE)
        return LSMQ_EINVAL;
    *out = d;
    return 0;
}

/* A number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int scan_number(lexer *lx, hj_value *v)
{
    const unsigned char *start = lx->p, *p = lx->p, *end = lx->end;
    unsigned long long acc = 0, limit = (unsigned long long)LLONG_MAX;
    int neg = 0, real = 0, rc;

    if (*p == '-') {
        neg = 1;
        limit++; /* two's complement reaches one further below zero */
        p++;
    }
    if (p < end && *p == '0') {
        p++;
        if (p < end && is_digit(*p))
            return LSMQ_EINVAL;
    } else if (p < end && is_digit(*p)) {
        for (; p < end && is_digit(*p); p++) {
            unsigned d = (unsigned)(*p - '0');

            if (acc > (limit - d) / 10)
                acc = limit + 1; /* sticky overflow; only refused if it stays an integer */
            else
                acc = acc * 10 + d;
        }
    } else {
        return LSMQ_EINVAL;
    }
    if (p < end && *p == '.') {
        real = 1;
        if (++p >= end || !is_digit(*p))
            return LSMQ_EINVAL;
        while (p < end && is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        real = 1;
        if (++p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !is_digit(*p))
            return LSMQ_EINVAL;
        while (p < end && is_digit(*p))
            p++;
    }
    if (real) {
        if ((rc = read_real(start, (size_t)(p - start), &v->d)) != 0)
            return rc;
        v->type = HJ_REAL;
    } else {
        if (acc > limit)
            return LSMQ_EINVAL;
        v->type = HJ_INT;
        v->i = neg ? (acc == 0 ? 0 : -(long long)(acc - 1) - 1) : (long long)acc;
    }
    lx->p = p;
    drop_pushed_back_nul(lx);
    return 0;
}

/* true, false or null: jansson reads a whole run of letters, then compares. */
static int scan_literal(lexer *lx, hj_value *v)
{
    const unsigned char *start = lx->p;
    size_t n;

    while (lx->p < lx->end && is_alpha(*lx->p))
        lx->p++;
    n = (size_t)(lx->p - start);
    if (n == 4 && memcmp(start, "true", 4) == 0)
        v->type = HJ_TRUE;
    else if (n == 5 && memcmp(start, "false", 5) == 0)
        v->type = HJ_FALSE;
    else if (n == 4 && memcmp(start, "null", 4) == 0)
        v->type = HJ_NULL;
    else
        return LSMQ_EINVAL;
    drop_pushed_back_nul(lx);
    return 0;
}

static int scan_scalar(lexer *lx, hj_value *v)
{
    int c = peek(lx);

    if (c == '"')
        return scan_string(lx, v);
    if (c == '-' || is_digit(c))
        return scan_number(lx, v);
    if (is_alpha(c))
        return scan_literal(lx, v);
    return LSMQ_EINVAL;
}

/*
 * Validate the array or object at lx->p, itself at `depth`, without keeping
 * anything. Iterative, with one bit per open container, so hostile nesting
 * costs no stack.
 */
static int skip_nested(lexer *lx, unsigned depth)
{
    unsigned char is_obj[HJ_MAX_DEPTH / 8 + 1];
    unsigned level = 0; /* open containers; their members sit at depth + level */
    hj_value v;
    int obj, c, rc;

open:
    obj = *lx->p == '{';
    if (obj)
        is_obj[level / 8] |= (unsigned char)(1u << level % 8);
    else
        is_obj[level / 8] &= (unsigned char)~(1u << level % 8);
    level++;
    lx->p++;
    skip_ws(lx);
    if (peek(lx) == (obj ? '}' : ']')) {
        lx->p++;
        goto close;
    }
member:
    if (obj) {
        if (peek(lx) != '"' || (rc = scan_string(lx, &v)) != 0)
            return LSMQ_EINVAL;
        skip_ws(lx);
        if (peek(lx) != ':')
            return LSMQ_EINVAL;
        lx->p++;
        skip_ws(lx);
    }
    if (depth + level > HJ_MAX_DEPTH)
        return LSMQ_EINVAL;
    c = peek(lx);
    if (c == '{' || c == '[')
        goto open;
    if ((rc = scan_scalar(lx, &v)) != 0)
        return rc;
next:
    skip_ws(lx);
    c = peek(lx);
    if (c == ',') {
        lx->p++;
        skip_ws(lx);
        goto member;
    }
    if (c != (obj ? '}' : ']'))
        return LSMQ_EINVAL;
    lx->p++;
close:
    if (--level == 0)
        return 0;
    obj = (is_obj[(level - 1) / 8] >> (level - 1) % 8) & 1;
    goto next;
}

/* Any value at `depth`: scalars are kept, containers only validated. */
static int read_value(lexer *lx, unsigned depth, hj_value *v)
{
    int c = peek(lx);

    if (depth > HJ_MAX_DEPTH)
        return LSMQ_EINVAL;
    memset(v, 0, sizeof *v);
    if (c == '{' || c == '[') {
        v->type = c == '{' ? HJ_OBJECT : HJ_ARRAY;
        return skip_nested(lx, depth);
    }
    return scan_scalar(lx, v);
}

/* Decoded copy of an escaped key in the scratch area, so keys compare bytewise. */
static int unescape_key(hj_header *h, hj_value *key, size_t text_len)
{
    if (h->scratch == NULL && (h->scratch = malloc(text_len + 1)) == NULL)
        return LSMQ_ENOMEM;
    key->len = proto__hj_string_copy(key, h->scratch + h->scratch_used);
    key->s = h->scratch + h->scratch_used;
    key->escaped = 0;
    h->scratch_used += key->len + 1;
    return 0;
}

static int push_member(hj_header *h, const hj_value *key, const hj_value *value)
{
    hj_member *grown;
    size_t cap;

    if (h->n_members == h->cap_members) {
        cap = h->cap_members * 2;
        if (cap > SIZE_MAX / sizeof *grown)
            return LSMQ_ENOMEM;
        if (h->members == h->inline_members) {
            if ((grown = malloc(cap * sizeof *grown)) != NULL)
                memcpy(grown, h->members, h->n_members * sizeof *grown);
        } else {
            grown = realloc(h->members, cap * sizeof *grown);
        }
        if (grown == NULL)
            return LSMQ_ENOMEM;
        h->members = grown;
        h->cap_members = cap;
    }
    h->members[h->n_members].key = *key;
    h->members[h->n_members].value = *value;
    h->n_members++;
    return 0;
}

/* The object value of extFields (at depth 2; its members at 3), collected. */
static int read_ext(hj_header *h, lexer *lx, size_t text_len)
{
    hj_value key, value;
    int rc, c;

    h->n_members = 0;
    lx->p++;
    skip_ws(lx);
    if (peek(lx) == '}') {
        lx->p++;
        return 0;
    }
    for (;;) {
        if (peek(lx) != '"' || (rc = scan_string(lx, &key)) != 0)
            return LSMQ_EINVAL;
        if (key.escaped && (rc = unescape_key(h, &key, text_len)) != 0)
            return rc;
        skip_ws(lx);
        if (peek(lx) != ':')
            return LSMQ_EINVAL;
        lx->p++;
        skip_ws(lx);
        if ((rc = read_value(lx, 3, &value)) != 0 || (rc = push_member(h, &key, &value)) != 0)
            return rc;
        skip_ws(lx);
        c = peek(lx);
        if (c != '}' && c != ',')
            return LSMQ_EINVAL;
        lx->p++;
        if (c == '}')
            return 0;
        skip_ws(lx);
    }
}

static int key_is(const hj_value *key, const char *name, size_t n)
{
    return key->len == n && memcmp(key->s, name, n) == 0;
}

/* Where a root member's value goes, or NULL for keys remoting ignores. */
static hj_value *root_slot(hj_header *h, const hj_value *raw)
{
    hj_value key = *raw;
    char buf[64];

    /* An escaped key can only spell a field name if it is short: each letter is <= 6 bytes. */
    if (key.escaped) {
        if (key.len >= sizeof buf)
            return NULL;
        key.len = proto__hj_string_copy(raw, buf);
        key.s = buf;
    }
    switch (key.len) {
    case 4:
        return key_is(&key, "code", 4) ? &h->code : key_is(&key, "flag", 4) ? &h->flag : NULL;
    case 6:
        return key_is(&key, "opaque", 6)   ? &h->opaque
               : key_is(&key, "remark", 6) ? &h->remark
                                           : NULL;
    case 7:
        return key_is(&key, "version", 7) ? &h->version : NULL;
    case 8:
        return key_is(&key, "language", 8) ? &h->language : NULL;
    case 9:
        return key_is(&key, "extFields", 9) ? &h->ext : NULL;
    default:
        return NULL;
    }
}

/* One root member; lx->p at its key. */
static int read_root_member(hj_header *h, lexer *lx, size_t text_len)
{
    hj_value key, value, *slot;
    int rc;

    if (peek(lx) != '"' || scan_string(lx, &key) != 0)
        return LSMQ_EINVAL;
    slot = root_slot(h, &key);
    skip_ws(lx);
    if (peek(lx) != ':')
        return LSMQ_EINVAL;
    lx->p++;
    skip_ws(lx);
    if (slot == &h->ext && peek(lx) == '{') {
        memset(&h->ext, 0, sizeof h->ext);
        h->ext.type = HJ_OBJECT;
        return read_ext(h, lx, text_len);
    }
    if ((rc = read_value(lx, 2, &value)) != 0)
        return rc;
    if (slot == &h->ext)
        h->n_members = 0; /* a later extFields replaces the earlier one */
    if (slot != NULL)
        *slot = value;
    return 0;
}

static int same_key(const hj_member *a, const hj_member *b)
{
    return a->key.len == b->key.len && memcmp(a->key.s, b->key.s, a->key.len) == 0;
}

typedef struct member_ref {
    const hj_member *m;
    size_t pos;
} member_ref;

static int member_ref_cmp(const void *a, const void *b)
{
    const member_ref *x = a, *y = b;
    size_t n = x->m->key.len < y->m->key.len ? x->m->key.len : y->m->key.len;
    int c = memcmp(x->m->key.s, y->m->key.s, n);

    if (c != 0)
        return c;
    if (x->m->key.len != y->m->key.len)
        return x->m->key.len < y->m->key.len ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Large objects: sort so each key's occurrences are adjacent, O(n log n). */
static int collapse_sorted(hj_header *h)
{
    size_t n = h->n_members, i, j, kept = 0;
    member_ref *refs = malloc(n * sizeof *refs);
    unsigned char *drop = calloc(n, 1);

    if (refs == NULL || drop == NULL) {
        free(refs);
        free(drop);
        return LSMQ_ENOMEM;
    }
    for (i = 0; i < n; i++) {
        refs[i].m = &h->members[i];
        refs[i].pos = i;
    }
    qsort(refs, n, sizeof *refs, member_ref_cmp);
    for (i = 0; i < n; i = j) {
        for (j = i + 1; j < n && same_key(refs[i].m, refs[j].m); j++)
            drop[refs[j].pos] = 1;
        h->members[refs[i].pos].value = refs[j - 1].m->value;
    }
    for (i = 0; i < n; i++)
        if (!drop[i])
            h->members[kept++] = h->members[i];
    h->n_members = kept;
    free(refs);
    free(drop);
    return 0;
}

/* Duplicate keys: the first occurrence stays in place and takes the last value. */
static int collapse_duplicates(hj_header *h)
{
    size_t i, j, kept = 0;

    if (h->n_members > 32)
        return collapse_sorted(h);
    for (i = 0; i < h->n_members; i++) {
        for (j = 0; j < kept; j++)
            if (same_key(&h->members[j], &h->members[i]))
                break;
        if (j < kept)
            h->members[j].value = h->members[i].value;
        else
            h->members[kept++] = h->members[i];
    }
    h->n_members = kept;
    return 0;
}

int proto__hj_read_header(hj_header *h, const char *text, size_t n)
{
    lexer lx = {(const unsigned char *)text, (const unsigned char *)text + n};
    int rc, c;

    memset(h, 0, offsetof(hj_header, inline_members));
    h->members = h->inline_members;
    h->cap_members = HJ_INLINE_MEMBERS;
    skip_ws(&lx);
    if (peek(&lx) != '{')
        return LSMQ_EINVAL; /* jansson loads a root array, but it is no header either */
    lx.p++;
    skip_ws(&lx);
    if (peek(&lx) == '}') {
        lx.p++;
    } else {
        for (;;) {
            if ((rc = read_root_member(h, &lx, n)) != 0)
                return rc;
            skip_ws(&lx);
            c = peek(&lx);
            if (c != '}' && c != ',')
                return LSMQ_EINVAL;
            lx.p++;
            if (c == '}')
                break;
            skip_ws(&lx);
        }
    }
    skip_ws(&lx);
    if (lx.p != lx.end)
        return LSMQ_EINVAL;
    return h->n_members > 1 ? collapse_duplicates(h) : 0;
}

void proto__hj_header_release(hj_header *h)
{
    if (h->members != h->inline_members)
        free(h->members);
    free(h->scratch);
    h->members = h->inline_members;
    h->scratch = NULL;
}

/* UTF-8 bytes of code point cp at dst; returns how many. */
static size_t put_utf8(uint32_t cp, char *dst)
{
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        dst[0] = (char)(0xC0 | cp >> 6);
        dst[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        dst[0] = (char)(0xE0 | cp >> 12);
        dst[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        dst[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    dst[0] = (char)(0xF0 | cp >> 18);
    dst[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    dst[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    dst[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The string was validated by scan_string, so every escape here is well formed. */
size_t proto__hj_string_copy(const hj_value *v, char *dst)
{
    const unsigned char *p = (const unsigned char *)v->s, *end = p + v->len;
    size_t o = 0;
    long u;

    if (!v->escaped) {
        memcpy(dst, v->s, v->len);
        dst[v->len] = '\0';
        return v->len;
    }
    while (p < end) {
        if (*p != '\\') {
            dst[o++] = (char)*p++;
            continue;
        }
        switch (p[1]) {
        case 'b': dst[o++] = '\b'; break;
        case 'f': dst[o++] = '\f'; break;
        case 'n': dst[o++] = '\n'; break;
        case 'r': dst[o++] = '\r'; break;
        case 't': dst[o++] = '\t'; break;
        case 'u':
            u = escape_unit(p, end);
            if (u >= 0xD800 && u <= 0xDBFF) {
                u = 0x10000 + ((u - 0xD800) << 10) + (escape_unit(p + 6, end) - 0xDC00);
                p += 6;
            }
            o += put_utf8((uint32_t)u, dst + o);
            p += 6;
            continue;
        default: dst[o++] = (char)p[1]; break; /* " \ / */
        }
        p += 2;
    }
    dst[o] = '\0';
    return o;
}
