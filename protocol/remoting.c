/*
 * Remoting command codec (REMOTING.md §1): frame boundaries, decoding of JSON
 * and ROCKETMQ binary headers into a proto_cmd, extFields lookups parsed the
 * way Java parses them, and encoding of compact JSON headers.
 *
 * Every length in a received frame comes from the peer, so each one is
 * checked against the bytes actually present before it is used, and memory
 * sized by the peer is allocated with a clean LSMQ_ENOMEM on failure. Small
 * allocations whose size lsmq chooses (the command itself, values our own
 * code sets, the encoded header) abort on failure instead: there is nothing
 * sensible to do without a few bytes of memory, and callers stay simple.
 */
#include "remoting.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "byte_reader.h"
#include "header_json.h"
#include "record.h"

/* The header word keeps the serialize type in its top byte. */
#define HEADER_LEN_MASK 0xFFFFFFu
#define FRAME_PREFIX 8 /* length field + header word */

/* ------------------------------------------------------------------ */
/* Allocation                                                          */
/* ------------------------------------------------------------------ */

/* A NUL-terminated copy of s[0..n), or NULL when memory runs out. */
static char *copy_n(const char *s, size_t n)
{
    char *p;

    if (n == SIZE_MAX)
        return NULL;
    p = malloc(n + 1);
    if (p == NULL)
        return NULL;
    if (n > 0)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* Write a reason for a failed decode, when the caller gave a buffer. */
__attribute__((format(printf, 3, 4)))
static int fail(char *errbuf, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (errbuf != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(errbuf, errlen, fmt, ap);
        va_end(ap);
    }
    return LSMQ_ECORRUPT;
}

static int fail_nomem(char *errbuf, size_t errlen)
{
    fail(errbuf, errlen, "out of memory");
    return LSMQ_ENOMEM;
}

/* ------------------------------------------------------------------ */
/* Language codes                                                      */
/* ------------------------------------------------------------------ */

/* Indexed by enum proto_language; the names are Java's enum constants. */
static const char *const language_names[] = {
    "JAVA", "CPP", "DOTNET", "PYTHON", "DELPHI", "ERLANG", "RUBY",
    "OTHER", "HTTP", "GO", "PHP", "OMS", "RUST", "NODE_JS",
};
#define LANGUAGE_COUNT ((int)(sizeof language_names / sizeof language_names[0]))

int proto_language_from_name(const char *name)
{
    int i;

    if (name == NULL)
        return LANG_OTHER;
    for (i = 0; i < LANGUAGE_COUNT; i++)
        if (strcmp(name, language_names[i]) == 0)
            return i;
    return LANG_OTHER;
}

const char *proto_language_name(int language)
{
    if (language < 0 || language >= LANGUAGE_COUNT)
        return language_names[LANG_OTHER];
    return language_names[language];
}

/* A language number from the wire, folded into the table. */
static int32_t language_from_number(int64_t n)
{
    return n >= 0 && n < LANGUAGE_COUNT ? (int32_t)n : LANG_OTHER;
}

/* ------------------------------------------------------------------ */
/* Commands and their extFields                                        */
/* ------------------------------------------------------------------ */

static proto_cmd *cmd_new(int32_t code, int32_t flag, int32_t opaque)
{
    proto_cmd *cmd = proto_xmalloc(sizeof *cmd);

    memset(cmd, 0, sizeof *cmd);
    cmd->code = code;
    cmd->flag = flag;
    cmd->opaque = opaque;
    /* Java and ali-ons both accept JAVA from a server; see remoting.h. */
    cmd->language = LANG_JAVA;
    cmd->version = PROTO_SERVER_VERSION;
    cmd->serialize_type = PROTO_SERIALIZE_JSON;
    return cmd;
}

proto_cmd *proto_cmd_request(int32_t code)
{
    /* The opaque is the caller's: it owns the per-connection counter. */
    return cmd_new(code, 0, 0);
}

proto_cmd *proto_cmd_response(int32_t code, int32_t opaque, const char *remark)
{
    proto_cmd *cmd = cmd_new(code, PROTO_FLAG_RESPONSE, opaque);

    proto_cmd_set_remark(cmd, remark);
    return cmd;
}

void proto_cmd_free(proto_cmd *cmd)
{
    size_t i;

    if (cmd == NULL)
        return;
    for (i = 0; i < cmd->n_ext; i++) {
        free(cmd->ext[i].key);
        free(cmd->ext[i].value);
    }
    free(cmd->ext);
    free(cmd->remark);
    free(cmd);
}

int proto_cmd_is_response(const proto_cmd *cmd)
{
    return (cmd->flag & PROTO_FLAG_RESPONSE) != 0;
}

int proto_cmd_is_oneway(const proto_cmd *cmd)
{
    return (cmd->flag & PROTO_FLAG_ONEWAY) != 0;
}

void proto_cmd_set_remark(proto_cmd *cmd, const char *remark)
{
    free(cmd->remark);
    cmd->remark = remark != NULL ? proto_xstrdup(remark) : NULL;
}

void proto_cmd_set_remarkf(proto_cmd *cmd, const char *fmt, ...)
{
    va_list ap, again;
    int n;
    char *s;

    va_start(ap, fmt);
    va_copy(again, ap);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        /* Only an invalid format gets here; keep the format as the remark. */
        va_end(again);
        proto_cmd_set_remark(cmd, fmt);
        return;
    }
    s = proto_xmalloc((size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, again);
    va_end(again);
    free(cmd->remark);
    cmd->remark = s;
}

/* Make room for one more extFields entry. */
static int ext_reserve(proto_cmd *cmd)
{
    proto_ext *grown;
    size_t cap;

    if (cmd->n_ext < cmd->cap_ext)
        return 0;
    cap = cmd->cap_ext ? cmd->cap_ext * 2 : 8;
    if (cap > SIZE_MAX / sizeof *grown)
        return LSMQ_ENOMEM;
    grown = realloc(cmd->ext, cap * sizeof *grown);
    if (grown == NULL)
        return LSMQ_ENOMEM;
    cmd->ext = grown;
    cmd->cap_ext = cap;
    return 0;
}

/* Append a pair, taking ownership of key and value (freed on failure). */
static int ext_push(proto_cmd *cmd, char *key, char *value)
{
    if (key == NULL || ext_reserve(cmd) != 0) {
        free(key);
        free(value);
        return LSMQ_ENOMEM;
    }
    cmd->ext[cmd->n_ext].key = key;
    cmd->ext[cmd->n_ext].value = value;
    cmd->n_ext++;
    return 0;
}

/* Drop every entry of key, keeping the others in order. */
/* Headers are looked up many times per request: test the first byte before strcmp. */
static inline int key_is(const char *a, const char *b)
{
    return a[0] == b[0] && strcmp(a, b) == 0;
}

static void ext_remove(proto_cmd *cmd, const char *key)
{
    size_t i, kept = 0;

    for (i = 0; i < cmd->n_ext; i++) {
        if (key_is(cmd->ext[i].key, key)) {
            free(cmd->ext[i].key);
            free(cmd->ext[i].value);
            continue;
        }
        cmd->ext[kept++] = cmd->ext[i];
    }
    cmd->n_ext = kept;
}

void proto_cmd_set(proto_cmd *cmd, const char *key, const char *value)
{
    ext_remove(cmd, key);
    if (value == NULL)
        return; /* Java omits null fields; so does an unset key */
    if (ext_push(cmd, proto_xstrdup(key), proto_xstrdup(value)) != 0)
        proto_oom(0);
}

void proto_cmd_set_i64(proto_cmd *cmd, const char *key, int64_t value)
{
    char buf[24];

    snprintf(buf, sizeof buf, "%" PRId64, value);
    proto_cmd_set(cmd, key, buf);
}

void proto_cmd_set_bool(proto_cmd *cmd, const char *key, int value)
{
    proto_cmd_set(cmd, key, value ? "true" : "false");
}

const char *proto_cmd_get(const proto_cmd *cmd, const char *key)
{
    size_t i;

    /* From the end: a later duplicate wins, as in Java's map. */
    for (i = cmd->n_ext; i > 0; i--)
        if (key_is(cmd->ext[i - 1].key, key))
            return cmd->ext[i - 1].value;
    return NULL;
}

const char *proto_cmd_get2(const proto_cmd *cmd, const char *key, const char *alias)
{
    const char *v = proto_cmd_get(cmd, key);

    return v != NULL ? v : proto_cmd_get(cmd, alias);
}

/* ------------------------------------------------------------------ */
/* Typed lookups                                                       */
/* ------------------------------------------------------------------ */

/*
 * Java's Integer.parseInt / Long.parseLong grammar: an optional '+' or '-',
 * then one or more ASCII digits, nothing else (no spaces). The value must
 * lie in [min, max]; min is assumed to be -max - 1.
 */
static int parse_java_integer(const char *s, int64_t max, int64_t *out)
{
    uint64_t acc = 0, limit = (uint64_t)max;
    unsigned d;
    int neg = 0;

    if (*s == '+' || *s == '-') {
        neg = *s == '-';
        s++;
    }
    if (*s == '\0')
        return LSMQ_EINVAL;
    if (neg)
        limit++; /* two's complement reaches one further below zero */
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return LSMQ_EINVAL;
        d = (unsigned)(*s - '0');
        if (acc > (limit - d) / 10)
            return LSMQ_EINVAL;
        acc = acc * 10 + d;
    }
    /* acc <= 2^63 here, so acc - 1 fits an int64 when negating. */
    *out = neg ? (acc == 0 ? 0 : -(int64_t)(acc - 1) - 1) : (int64_t)acc;
    return 0;
}

int proto_cmd_get_i32(const proto_cmd *cmd, const char *key, int32_t *out)
{
    const char *v = proto_cmd_get(cmd, key);
    int64_t n;

    if (v == NULL)
        return LSMQ_ENOTFOUND;
    if (parse_java_integer(v, INT32_MAX, &n) != 0)
        return LSMQ_EINVAL;
    *out = (int32_t)n;
    return 0;
}

int proto_cmd_get_i64(const proto_cmd *cmd, const char *key, int64_t *out)
{
    const char *v = proto_cmd_get(cmd, key);

    if (v == NULL)
        return LSMQ_ENOTFOUND;
    return parse_java_integer(v, INT64_MAX, out);
}

/* ASCII-only case folding, independent of the C locale. */
static int ascii_ieq(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        char x = (*a >= 'A' && *a <= 'Z') ? (char)(*a - 'A' + 'a') : *a;
        char y = (*b >= 'A' && *b <= 'Z') ? (char)(*b - 'A' + 'a') : *b;

        if (x != y)
            return 0;
    }
    return *a == *b;
}

int proto_cmd_get_bool(const proto_cmd *cmd, const char *key, int dflt)
{
    const char *v = proto_cmd_get(cmd, key);

    if (v == NULL)
        return dflt;
    return ascii_ieq(v, "true"); /* Boolean.parseBoolean */
}

/* ------------------------------------------------------------------ */
/* Frame boundaries                                                    */
/* ------------------------------------------------------------------ */

int proto_frame_check(const uint8_t *buf, size_t len, size_t max_frame, size_t *frame_len)
{
    uint32_t length;
    size_t total;

    if (len < 4)
        return 0;
    length = proto_get_u32(buf);
    /* A negative Java int, or too short for the header word that must follow. */
    if (length > INT32_MAX || length < 4)
        return LSMQ_ECORRUPT;
    total = (size_t)length + 4;
    *frame_len = total;
    if (total > max_frame)
        return LSMQ_ETOOBIG;
    return len >= total ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* JSON header                                                         */
/* ------------------------------------------------------------------ */

/*
 * The decoded text of string v: in stack (of stack_len bytes) when it fits,
 * else malloc'ed (free it when the result is not stack). NULL without memory.
 */
static char *string_text(const hj_value *v, char *stack, size_t stack_len)
{
    char *s = v->len < stack_len ? stack : malloc(v->len + 1);

    if (s != NULL)
        proto__hj_string_copy(v, s);
    return s;
}

/*
 * An int header field. Absent or null keeps the default, as fastjson leaves
 * the field's initial value; a decimal string is accepted because fastjson
 * converts one.
 */
static int json_int_field(const hj_value *v, const char *name, int32_t *dst, char *errbuf,
                          size_t errlen)
{
    char stack[64], *s;
    int64_t n;
    int rc;

    switch (v->type) {
    case HJ_ABSENT:
    case HJ_NULL:
        return 0;
    case HJ_INT:
        if (v->i < INT32_MIN || v->i > INT32_MAX)
            return fail(errbuf, errlen, "header field %s out of int range", name);
        *dst = (int32_t)v->i;
        return 0;
    case HJ_STRING:
        if ((s = string_text(v, stack, sizeof stack)) == NULL)
            return fail_nomem(errbuf, errlen);
        rc = parse_java_integer(s, INT32_MAX, &n);
        if (s != stack)
            free(s);
        if (rc != 0)
            break;
        *dst = (int32_t)n;
        return 0;
    default:
        break;
    }
    return fail(errbuf, errlen, "header field %s is not an int", name);
}

/* "language": Java's enum name, or (fastjson allows it) the ordinal. */
static int json_language_field(const hj_value *v, proto_cmd *cmd, char *errbuf, size_t errlen)
{
    char stack[64], *s;

    switch (v->type) {
    case HJ_ABSENT:
    case HJ_NULL:
        return 0;
    case HJ_STRING:
        if ((s = string_text(v, stack, sizeof stack)) == NULL)
            return fail_nomem(errbuf, errlen);
        cmd->language = proto_language_from_name(s);
        if (s != stack)
            free(s);
        return 0;
    case HJ_INT:
        cmd->language = language_from_number(v->i);
        return 0;
    default:
        return fail(errbuf, errlen, "header field language is not a string");
    }
}

static int json_remark_field(const hj_value *v, proto_cmd *cmd, char *errbuf, size_t errlen)
{
    if (v->type == HJ_ABSENT || v->type == HJ_NULL)
        return 0;
    if (v->type != HJ_STRING)
        return fail(errbuf, errlen, "header field remark is not a string");
    if ((cmd->remark = malloc(v->len + 1)) == NULL)
        return fail_nomem(errbuf, errlen);
    proto__hj_string_copy(v, cmd->remark);
    return 0;
}

/*
 * Shortest "%g" text that reads back as the same double: the form
 * JavaScript's number-to-string gives for ordinary values, so a real an
 * ali-ons peer sent comes back as the text it wrote.
 */
static void format_real(double d, char *buf, size_t n)
{
    int prec;

    for (prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

/*
 * The text of one extFields value as a new string: strings decoded,
 * integers and booleans as their JSON literal (the ACL signature is
 * computed over that text), reals in shortest form. Sets *out to NULL for
 * JSON null (absent). LSMQ_ECORRUPT for an object or array.
 */
static int ext_value_text(const hj_value *v, char **out)
{
    char scratch[40];

    *out = NULL;
    switch (v->type) {
    case HJ_STRING:
        if ((*out = malloc(v->len + 1)) == NULL)
            return LSMQ_ENOMEM;
        proto__hj_string_copy(v, *out);
        return 0;
    case HJ_INT:
        snprintf(scratch, sizeof scratch, "%lld", v->i);
        break;
    case HJ_REAL:
        format_real(v->d, scratch, sizeof scratch);
        break;
    case HJ_TRUE:
        snprintf(scratch, sizeof scratch, "true");
        break;
    case HJ_FALSE:
        snprintf(scratch, sizeof scratch, "false");
        break;
    case HJ_NULL:
        return 0;
    default:
        return LSMQ_ECORRUPT; /* object or array: not a header field */
    }
    *out = copy_n(scratch, strlen(scratch));
    return *out != NULL ? 0 : LSMQ_ENOMEM;
}

static int json_ext_field(const hj_header *h, proto_cmd *cmd, char *errbuf, size_t errlen)
{
    const hj_member *m;
    char *value;
    size_t i;
    int rc;

    if (h->ext.type == HJ_ABSENT || h->ext.type == HJ_NULL)
        return 0;
    if (h->ext.type != HJ_OBJECT)
        return fail(errbuf, errlen, "extFields is not an object");
    /* One allocation for the usual dozen entries instead of growing 8, 16, ... */
    if (h->n_members > cmd->cap_ext) {
        proto_ext *room = h->n_members > SIZE_MAX / sizeof *room
                              ? NULL
                              : realloc(cmd->ext, h->n_members * sizeof *room);

        if (room == NULL)
            return fail_nomem(errbuf, errlen);
        cmd->ext = room;
        cmd->cap_ext = h->n_members;
    }
    /* The reader already reduced duplicates as jansson's object does, in arrival order. */
    for (i = 0; i < h->n_members; i++) {
        m = &h->members[i];
        rc = ext_value_text(&m->value, &value);
        if (rc == LSMQ_ECORRUPT)
            return fail(errbuf, errlen, "extFields value of %.*s is not a scalar",
                        (int)(m->key.len < 64 ? m->key.len : 64), m->key.s);
        if (rc != 0)
            return fail_nomem(errbuf, errlen);
        if (value == NULL)
            continue;
        if (ext_push(cmd, copy_n(m->key.s, m->key.len), value) != 0)
            return fail_nomem(errbuf, errlen);
    }
    return 0;
}

static int json_header_fields(const hj_header *h, proto_cmd *cmd, char *errbuf, size_t errlen)
{
    int rc;

    if ((rc = json_int_field(&h->code, "code", &cmd->code, errbuf, errlen)) != 0 ||
        (rc = json_int_field(&h->version, "version", &cmd->version, errbuf, errlen)) != 0 ||
        (rc = json_int_field(&h->opaque, "opaque", &cmd->opaque, errbuf, errlen)) != 0 ||
        (rc = json_int_field(&h->flag, "flag", &cmd->flag, errbuf, errlen)) != 0 ||
        (rc = json_language_field(&h->language, cmd, errbuf, errlen)) != 0 ||
        (rc = json_remark_field(&h->remark, cmd, errbuf, errlen)) != 0)
        return rc;
    return json_ext_field(h, cmd, errbuf, errlen);
}

/*
 * The reader accepts what jansson's json_loadb accepted (header_json.h), so
 * the C++ client's trailing newline is fine; unknown fields are validated
 * and otherwise not read.
 */
static int decode_json(proto_cmd *cmd, const uint8_t *text, size_t n, char *errbuf,
                       size_t errlen)
{
    hj_header h;
    int rc = proto__hj_read_header(&h, (const char *)text, n);

    if (rc == LSMQ_ENOMEM)
        rc = fail_nomem(errbuf, errlen);
    else if (rc != 0)
        rc = fail(errbuf, errlen, "bad JSON header (not one JSON object)");
    else
        rc = json_header_fields(&h, cmd, errbuf, errlen);
    proto__hj_header_release(&h);
    return rc;
}

/* ------------------------------------------------------------------ */
/* ROCKETMQ binary header                                              */
/* ------------------------------------------------------------------ */


/*
 * A length-prefixed string of n bytes as a new C string. Embedded NULs are
 * refused: C callers would see a shorter string than Java does.
 */
static int rd_string(proto_reader *rd, size_t n, char **out, const char *what, char *errbuf,
                     size_t errlen)
{
    const uint8_t *at = proto_rd_take(rd, n);

    *out = NULL;
    if (at == NULL)
        return fail(errbuf, errlen, "%s overruns the header", what);
    if (memchr(at, '\0', n) != NULL)
        return fail(errbuf, errlen, "%s contains a NUL byte", what);
    *out = copy_n((const char *)at, n);
    return *out != NULL ? 0 : fail_nomem(errbuf, errlen);
}

/* An entry's key and position, sorted by dedup_ext. */
typedef struct ext_ref {
    const char *key;
    size_t pos;
} ext_ref;

/* By key, then by position, so the last entry of a key ends its run. */
static int ext_ref_cmp(const void *a, const void *b)
{
    const ext_ref *x = a, *y = b;
    int c = strcmp(x->key, y->key);

    if (c != 0)
        return c;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/*
 * Java loads binary extFields into a HashMap: the last entry of a key wins,
 * and a null (empty) value hides earlier ones. Reduce the entries to that
 * map, each surviving key at the position of its last entry. Sorting keeps
 * this O(n log n) however many duplicates a peer sends.
 */
static int dedup_ext(proto_cmd *cmd)
{
    size_t n = cmd->n_ext, i, kept = 0;
    unsigned char *keep;
    ext_ref *refs;

    refs = malloc((n ? n : 1) * sizeof *refs);
    keep = calloc(n ? n : 1, 1);
    if (refs == NULL || keep == NULL) {
        free(refs);
        free(keep);
        return LSMQ_ENOMEM;
    }
    for (i = 0; i < n; i++) {
        refs[i].key = cmd->ext[i].key;
        refs[i].pos = i;
    }
    qsort(refs, n, sizeof *refs, ext_ref_cmp);
    for (i = 0; i < n; i++) {
        int last = i + 1 == n || strcmp(refs[i].key, refs[i + 1].key) != 0;

        keep[refs[i].pos] = last && cmd->ext[refs[i].pos].value != NULL;
    }
    for (i = 0; i < n; i++) {
        if (keep[i]) {
            cmd->ext[kept++] = cmd->ext[i];
        } else {
            free(cmd->ext[i].key);
            free(cmd->ext[i].value);
        }
    }
    cmd->n_ext = kept;
    free(refs);
    free(keep);
    return 0;
}

/* One extFields entry: int16 key length, key, int32 value length, value. */
static int binary_ext_entry(proto_reader *rd, proto_cmd *cmd, char *errbuf, size_t errlen)
{
    uint16_t klen = proto_rd_u16(rd);
    uint32_t vlen;
    char *key, *value;
    int rc;

    if (rd->bad)
        return fail(errbuf, errlen, "extFields entry overruns its block");
    if (klen > INT16_MAX)
        return fail(errbuf, errlen, "negative extFields key length");
    if ((rc = rd_string(rd, klen, &key, "extFields key", errbuf, errlen)) != 0)
        return rc;
    vlen = proto_rd_u32(rd);
    if (rd->bad || vlen > INT32_MAX) {
        free(key);
        return fail(errbuf, errlen, "bad extFields value length");
    }
    if ((rc = rd_string(rd, vlen, &value, "extFields value", errbuf, errlen)) != 0) {
        free(key);
        return rc;
    }
    if (klen == 0) {
        /* A null key: no header field can name it. */
        free(key);
        free(value);
        return 0;
    }
    if (vlen == 0) {
        free(value);
        value = NULL; /* null: kept until dedup_ext so it can hide earlier entries */
    }
    return ext_push(cmd, key, value) == 0 ? 0 : fail_nomem(errbuf, errlen);
}

static int binary_ext(proto_cmd *cmd, const uint8_t *block, size_t n, char *errbuf,
                      size_t errlen)
{
    proto_reader rd = {block, n, 0};
    int rc;

    while (rd.left > 0)
        if ((rc = binary_ext_entry(&rd, cmd, errbuf, errlen)) != 0)
            return rc;
    return dedup_ext(cmd) == 0 ? 0 : fail_nomem(errbuf, errlen);
}

/* The fixed fields: code, language, version, opaque, flag. */
static void binary_fixed(proto_reader *rd, proto_cmd *cmd)
{
    cmd->code = (int16_t)proto_rd_u16(rd);
    cmd->language = language_from_number(proto_rd_u8(rd));
    cmd->version = (int16_t)proto_rd_u16(rd);
    cmd->opaque = (int32_t)proto_rd_u32(rd);
    cmd->flag = (int32_t)proto_rd_u32(rd);
}

static int decode_binary(proto_cmd *cmd, const uint8_t *h, size_t n, char *errbuf,
                         size_t errlen)
{
    proto_reader rd = {h, n, 0};
    uint32_t rlen, elen;
    const uint8_t *block;
    int rc;

    binary_fixed(&rd, cmd);
    rlen = proto_rd_u32(&rd);
    if (rd.bad)
        return fail(errbuf, errlen, "binary header shorter than 17 bytes");
    if (rlen > INT32_MAX)
        return fail(errbuf, errlen, "negative remark length");
    if (rlen > 0 && (rc = rd_string(&rd, rlen, &cmd->remark, "remark", errbuf, errlen)) != 0)
        return rc;
    elen = proto_rd_u32(&rd);
    if (rd.bad)
        return fail(errbuf, errlen, "binary header ends before the extFields length");
    if (elen > INT32_MAX)
        return fail(errbuf, errlen, "negative extFields length");
    block = proto_rd_take(&rd, elen);
    if (block == NULL)
        return fail(errbuf, errlen, "extFields length %" PRIu32 " overruns the header", elen);
    /* Java ignores anything after the block; no encoder writes it, so refuse it. */
    if (rd.left != 0)
        return fail(errbuf, errlen, "%zu bytes after extFields", rd.left);
    return binary_ext(cmd, block, elen, errbuf, errlen);
}

/* ------------------------------------------------------------------ */
/* Frame decode                                                        */
/* ------------------------------------------------------------------ */

int proto_cmd_decode(const uint8_t *frame, size_t len, proto_cmd **out, char *errbuf,
                     size_t errlen)
{
    uint32_t word, hlen;
    proto_cmd *cmd;
    int rc;

    *out = NULL;
    if (len < FRAME_PREFIX)
        return fail(errbuf, errlen, "frame of %zu bytes is shorter than 8", len);
    if (proto_get_u32(frame) != len - 4)
        return fail(errbuf, errlen, "length field %" PRIu32 " does not match a %zu-byte frame",
                    proto_get_u32(frame), len);
    word = proto_get_u32(frame + 4);
    hlen = word & HEADER_LEN_MASK;
    if (hlen > len - FRAME_PREFIX)
        return fail(errbuf, errlen, "header length %" PRIu32 " exceeds the frame", hlen);

    /* Fields a header leaves out keep Java's initial values: language JAVA, the rest 0. */
    cmd = cmd_new(0, 0, 0);
    cmd->version = 0;
    cmd->serialize_type = (int)(word >> 24);
    if (cmd->serialize_type == PROTO_SERIALIZE_JSON)
        rc = decode_json(cmd, frame + FRAME_PREFIX, hlen, errbuf, errlen);
    else if (cmd->serialize_type == PROTO_SERIALIZE_ROCKETMQ)
        rc = decode_binary(cmd, frame + FRAME_PREFIX, hlen, errbuf, errlen);
    else
        rc = fail(errbuf, errlen, "unknown serialize type %d", cmd->serialize_type);
    if (rc != 0) {
        proto_cmd_free(cmd);
        return rc;
    }
    if (len > FRAME_PREFIX + hlen) {
        cmd->body = frame + FRAME_PREFIX + hlen;
        cmd->body_len = len - FRAME_PREFIX - hlen;
    }
    *out = cmd;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Encode                                                              */
/* ------------------------------------------------------------------ */

/*
 * The JSON header text in a new buffer, after FRAME_PREFIX bytes left for
 * the length and header words, having checked that a frame with it and
 * body_len bytes of body stays within what peers accept.
 */
static int header_text(const proto_cmd *cmd, size_t body_len, uint8_t **buf, size_t *text_len)
{
    size_t n;
    uint8_t *b = proto__hj_write_header(cmd, FRAME_PREFIX, &n);

    if (b == NULL)
        proto_oom(0);
    /* Java's decoder refuses frames over 16 MiB, length field included. */
    if (n > HEADER_LEN_MASK || body_len > PROTO_FRAME_MAX_DEFAULT ||
        FRAME_PREFIX + n + body_len > PROTO_FRAME_MAX_DEFAULT) {
        free(b);
        return LSMQ_ETOOBIG;
    }
    *buf = b;
    *text_len = n;
    return 0;
}

/* Length word and header word (serialize type 0) in front of the header text. */
static void put_prefix(uint8_t *out, size_t text_len, size_t body_len)
{
    proto_put_u32(out, (uint32_t)(4 + text_len + body_len));
    proto_put_u32(out + 4, (uint32_t)text_len);
}

int proto_cmd_encode_prefix(const proto_cmd *cmd, size_t body_len, uint8_t **out,
                            size_t *out_len)
{
    uint8_t *buf;
    size_t n;
    int rc;

    if ((rc = header_text(cmd, body_len, &buf, &n)) != 0)
        return rc;
    put_prefix(buf, n, body_len);
    *out = buf;
    *out_len = FRAME_PREFIX + n;
    return 0;
}

int proto_cmd_encode(const proto_cmd *cmd, const void *body, size_t body_len, uint8_t **out,
                     size_t *out_len)
{
    uint8_t *buf, *whole;
    size_t n;
    int rc;

    if (body == NULL && body_len > 0)
        return LSMQ_EINVAL;
    if ((rc = header_text(cmd, body_len, &buf, &n)) != 0)
        return rc;
    if (body_len > 0) {
        if ((whole = realloc(buf, FRAME_PREFIX + n + body_len)) == NULL)
            proto_oom(0);
        buf = whole;
        memcpy(buf + FRAME_PREFIX + n, body, body_len);
    }
    put_prefix(buf, n, body_len);
    *out = buf;
    *out_len = FRAME_PREFIX + n + body_len;
    return 0;
}
