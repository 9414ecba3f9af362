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

#include <jansson.h>

#include "record.h"
#include "utf8.h"

/* The header word keeps the serialize type in its top byte. */
#define HEADER_LEN_MASK 0xFFFFFFu
#define FRAME_PREFIX 8 /* length field + header word */

/* ------------------------------------------------------------------ */
/* Allocation                                                          */
/* ------------------------------------------------------------------ */

static void oom_abort(void)
{
    fputs("lsmq: out of memory\n", stderr);
    abort();
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL)
        oom_abort();
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;

    return memcpy(xmalloc(n), s, n);
}

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
    proto_cmd *cmd = xmalloc(sizeof *cmd);

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
    cmd->remark = remark != NULL ? xstrdup(remark) : NULL;
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
    s = xmalloc((size_t)n + 1);
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

/* Append copies of key and value[0..len); LSMQ_ENOMEM if either copy fails. */
static int ext_push_copy(proto_cmd *cmd, const char *key, const char *value, size_t len)
{
    char *v = copy_n(value, len);

    if (v == NULL)
        return LSMQ_ENOMEM;
    return ext_push(cmd, copy_n(key, strlen(key)), v);
}

/* Drop every entry of key, keeping the others in order. */
static void ext_remove(proto_cmd *cmd, const char *key)
{
    size_t i, kept = 0;

    for (i = 0; i < cmd->n_ext; i++) {
        if (strcmp(cmd->ext[i].key, key) == 0) {
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
    if (ext_push(cmd, xstrdup(key), xstrdup(value)) != 0)
        oom_abort();
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
        if (strcmp(cmd->ext[i - 1].key, key) == 0)
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
 * An int header field. Absent or null keeps the default, as fastjson leaves
 * the field's initial value; a decimal string is accepted because fastjson
 * converts one.
 */
static int json_int_field(json_t *root, const char *name, int32_t *dst, char *errbuf,
                          size_t errlen)
{
    json_t *v = json_object_get(root, name);
    int64_t n;

    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_integer(v)) {
        n = json_integer_value(v);
        if (n < INT32_MIN || n > INT32_MAX)
            return fail(errbuf, errlen, "header field %s out of int range", name);
        *dst = (int32_t)n;
        return 0;
    }
    if (json_is_string(v) && parse_java_integer(json_string_value(v), INT32_MAX, &n) == 0) {
        *dst = (int32_t)n;
        return 0;
    }
    return fail(errbuf, errlen, "header field %s is not an int", name);
}

/* "language": Java's enum name, or (fastjson allows it) the ordinal. */
static int json_language_field(json_t *root, proto_cmd *cmd, char *errbuf, size_t errlen)
{
    json_t *v = json_object_get(root, "language");

    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_string(v))
        cmd->language = proto_language_from_name(json_string_value(v));
    else if (json_is_integer(v))
        cmd->language = language_from_number(json_integer_value(v));
    else
        return fail(errbuf, errlen, "header field language is not a string");
    return 0;
}

static int json_remark_field(json_t *root, proto_cmd *cmd, char *errbuf, size_t errlen)
{
    json_t *v = json_object_get(root, "remark");

    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return fail(errbuf, errlen, "header field remark is not a string");
    cmd->remark = copy_n(json_string_value(v), json_string_length(v));
    return cmd->remark != NULL ? 0 : fail_nomem(errbuf, errlen);
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
 * The text of one extFields value: strings as they are, integers and
 * booleans as their JSON literal (the ACL signature is computed over that
 * text), reals in shortest form. Sets *text to NULL for JSON null (absent).
 * scratch holds the text of non-strings.
 */
static int ext_value_text(json_t *v, char *scratch, size_t n, const char **text, size_t *len)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        *text = json_string_value(v);
        *len = json_string_length(v);
        return 0;
    case JSON_INTEGER:
        snprintf(scratch, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        format_real(json_real_value(v), scratch, n);
        break;
    case JSON_TRUE:
        snprintf(scratch, n, "true");
        break;
    case JSON_FALSE:
        snprintf(scratch, n, "false");
        break;
    case JSON_NULL:
        *text = NULL;
        *len = 0;
        return 0;
    default:
        return LSMQ_ECORRUPT; /* object or array: not a header field */
    }
    *text = scratch;
    *len = strlen(scratch);
    return 0;
}

static int json_ext_field(json_t *root, proto_cmd *cmd, char *errbuf, size_t errlen)
{
    json_t *ext = json_object_get(root, "extFields"), *v;
    const char *key, *text;
    char scratch[40];
    size_t len;

    if (ext == NULL || json_is_null(ext))
        return 0;
    if (!json_is_object(ext))
        return fail(errbuf, errlen, "extFields is not an object");
    /* jansson keeps the last of duplicate keys and iterates in arrival order. */
    json_object_foreach(ext, key, v) {
        if (ext_value_text(v, scratch, sizeof scratch, &text, &len) != 0)
            return fail(errbuf, errlen, "extFields value of %.64s is not a scalar", key);
        if (text == NULL)
            continue;
        if (ext_push_copy(cmd, key, text, len) != 0)
            return fail_nomem(errbuf, errlen);
    }
    return 0;
}

static int json_header_fields(json_t *root, proto_cmd *cmd, char *errbuf, size_t errlen)
{
    int rc;

    if ((rc = json_int_field(root, "code", &cmd->code, errbuf, errlen)) != 0 ||
        (rc = json_int_field(root, "version", &cmd->version, errbuf, errlen)) != 0 ||
        (rc = json_int_field(root, "opaque", &cmd->opaque, errbuf, errlen)) != 0 ||
        (rc = json_int_field(root, "flag", &cmd->flag, errbuf, errlen)) != 0 ||
        (rc = json_language_field(root, cmd, errbuf, errlen)) != 0 ||
        (rc = json_remark_field(root, cmd, errbuf, errlen)) != 0)
        return rc;
    return json_ext_field(root, cmd, errbuf, errlen);
}

/*
 * jansson skips whitespace before its end-of-input check, so the C++
 * client's trailing newline is fine; unknown fields are simply not read.
 */
static int decode_json(proto_cmd *cmd, const uint8_t *text, size_t n, char *errbuf,
                       size_t errlen)
{
    json_error_t jerr;
    json_t *root;
    int rc;

    root = json_loadb((const char *)text, n, 0, &jerr);
    if (root == NULL) {
        if (json_error_code(&jerr) == json_error_out_of_memory)
            return fail_nomem(errbuf, errlen);
        return fail(errbuf, errlen, "bad JSON header at byte %d: %s", jerr.position,
                    jerr.text);
    }
    if (!json_is_object(root))
        rc = fail(errbuf, errlen, "JSON header is not an object");
    else
        rc = json_header_fields(root, cmd, errbuf, errlen);
    json_decref(root);
    return rc;
}

/* ------------------------------------------------------------------ */
/* ROCKETMQ binary header                                              */
/* ------------------------------------------------------------------ */

/*
 * Read cursor over the header. Once a read would overrun, `bad` sticks and
 * later reads return zeros, so callers check once per step.
 */
typedef struct reader {
    const uint8_t *p;
    size_t left;
    int bad;
} reader;

static const uint8_t *take(reader *rd, size_t n)
{
    const uint8_t *at;

    if (rd->bad || n > rd->left) {
        rd->bad = 1;
        return NULL;
    }
    at = rd->p;
    rd->p += n;
    rd->left -= n;
    return at;
}

static uint8_t rd_u8(reader *rd)
{
    const uint8_t *at = take(rd, 1);

    return at ? at[0] : 0;
}

static uint16_t rd_u16(reader *rd)
{
    const uint8_t *at = take(rd, 2);

    return at ? (uint16_t)(at[0] << 8 | at[1]) : 0;
}

static uint32_t rd_u32(reader *rd)
{
    const uint8_t *at = take(rd, 4);

    return at ? proto_get_u32(at) : 0;
}

/*
 * A length-prefixed string of n bytes as a new C string. Embedded NULs are
 * refused: C callers would see a shorter string than Java does.
 */
static int rd_string(reader *rd, size_t n, char **out, const char *what, char *errbuf,
                     size_t errlen)
{
    const uint8_t *at = take(rd, n);

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
static int binary_ext_entry(reader *rd, proto_cmd *cmd, char *errbuf, size_t errlen)
{
    uint16_t klen = rd_u16(rd);
    uint32_t vlen;
    char *key, *value;
    int rc;

    if (rd->bad)
        return fail(errbuf, errlen, "extFields entry overruns its block");
    if (klen > INT16_MAX)
        return fail(errbuf, errlen, "negative extFields key length");
    if ((rc = rd_string(rd, klen, &key, "extFields key", errbuf, errlen)) != 0)
        return rc;
    vlen = rd_u32(rd);
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
    reader rd = {block, n, 0};
    int rc;

    while (rd.left > 0)
        if ((rc = binary_ext_entry(&rd, cmd, errbuf, errlen)) != 0)
            return rc;
    return dedup_ext(cmd) == 0 ? 0 : fail_nomem(errbuf, errlen);
}

/* The fixed fields: code, language, version, opaque, flag. */
static void binary_fixed(reader *rd, proto_cmd *cmd)
{
    cmd->code = (int16_t)rd_u16(rd);
    cmd->language = language_from_number(rd_u8(rd));
    cmd->version = (int16_t)rd_u16(rd);
    cmd->opaque = (int32_t)rd_u32(rd);
    cmd->flag = (int32_t)rd_u32(rd);
}

static int decode_binary(proto_cmd *cmd, const uint8_t *h, size_t n, char *errbuf,
                         size_t errlen)
{
    reader rd = {h, n, 0};
    uint32_t rlen, elen;
    const uint8_t *block;
    int rc;

    binary_fixed(&rd, cmd);
    rlen = rd_u32(&rd);
    if (rd.bad)
        return fail(errbuf, errlen, "binary header shorter than 17 bytes");
    if (rlen > INT32_MAX)
        return fail(errbuf, errlen, "negative remark length");
    if (rlen > 0 && (rc = rd_string(&rd, rlen, &cmd->remark, "remark", errbuf, errlen)) != 0)
        return rc;
    elen = rd_u32(&rd);
    if (rd.bad)
        return fail(errbuf, errlen, "binary header ends before the extFields length");
    if (elen > INT32_MAX)
        return fail(errbuf, errlen, "negative extFields length");
    block = take(&rd, elen);
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
 * s with every malformed UTF-8 piece replaced by U+FFFD, as a new string, or
 * NULL when s is already valid. jansson refuses invalid UTF-8, and text from
 * a binary header was never checked.
 */
static char *utf8_lossy(const char *s)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t len = strlen(s), i = 0, o = 0, used;
    uint32_t cp;
    int bad = 0;
    char *out;

    while (i < len) {
        used = proto__utf8_decode(p + i, len - i, &cp);
        bad |= cp == PROTO_UTF8_BAD;
        i += used;
    }
    if (!bad)
        return NULL;
    /* Each bad piece is at least one byte and becomes three. */
    out = xmalloc(len * 3 + 1);
    for (i = 0; i < len; i += used) {
        used = proto__utf8_decode(p + i, len - i, &cp);
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

static json_t *json_text(const char *s)
{
    char *fixed = utf8_lossy(s);
    json_t *v = json_string(fixed != NULL ? fixed : s);

    free(fixed);
    if (v == NULL)
        oom_abort();
    return v;
}

/* Set obj[key] = v (reference stolen); keys are made valid UTF-8 first. */
static void obj_put(json_t *obj, const char *key, json_t *v)
{
    char *fixed = utf8_lossy(key);
    int rc;

    if (v == NULL)
        oom_abort();
    rc = json_object_set_new(obj, fixed != NULL ? fixed : key, v);
    free(fixed);
    if (rc != 0)
        oom_abort();
}

static json_t *ext_json(const proto_cmd *cmd)
{
    json_t *ext = json_object();
    size_t i;

    if (ext == NULL)
        oom_abort();
    /* In order, so a later duplicate overwrites an earlier one, as on lookup. */
    for (i = 0; i < cmd->n_ext; i++)
        if (cmd->ext[i].key != NULL && cmd->ext[i].value != NULL)
            obj_put(ext, cmd->ext[i].key, json_text(cmd->ext[i].value));
    return ext;
}

/*
 * The header as Java's fastjson writes it: the five fixed fields always,
 * remark and extFields only when present, every extFields value a string
 * (the Go client decodes them into map[string]string).
 */
static json_t *header_json(const proto_cmd *cmd)
{
    json_t *root = json_object();

    if (root == NULL)
        oom_abort();
    obj_put(root, "code", json_integer(cmd->code));
    obj_put(root, "flag", json_integer(cmd->flag));
    obj_put(root, "language", json_string(proto_language_name(cmd->language)));
    obj_put(root, "opaque", json_integer(cmd->opaque));
    obj_put(root, "version", json_integer(cmd->version));
    obj_put(root, "serializeTypeCurrentRPC", json_string("JSON"));
    if (cmd->remark != NULL)
        obj_put(root, "remark", json_text(cmd->remark));
    if (cmd->n_ext > 0)
        obj_put(root, "extFields", ext_json(cmd));
    return root;
}

/*
 * The JSON header text (malloc'ed) and its length, after checking that a
 * frame with it and body_len bytes of body stays within what peers accept.
 */
static int header_text(const proto_cmd *cmd, size_t body_len, char **text, size_t *text_len)
{
    json_t *root = header_json(cmd);
    char *s = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    size_t n;

    json_decref(root);
    if (s == NULL)
        oom_abort();
    n = strlen(s);
    /* Java's decoder refuses frames over 16 MiB, length field included. */
    if (n > HEADER_LEN_MASK || body_len > PROTO_FRAME_MAX_DEFAULT ||
        FRAME_PREFIX + n + body_len > PROTO_FRAME_MAX_DEFAULT) {
        free(s);
        return LSMQ_ETOOBIG;
    }
    *text = s;
    *text_len = n;
    return 0;
}

/* Length word, header word (serialize type 0) and header text at out. */
static void put_prefix(uint8_t *out, const char *text, size_t text_len, size_t body_len)
{
    proto_put_u32(out, (uint32_t)(4 + text_len + body_len));
    proto_put_u32(out + 4, (uint32_t)text_len);
    memcpy(out + FRAME_PREFIX, text, text_len);
}

int proto_cmd_encode_prefix(const proto_cmd *cmd, size_t body_len, uint8_t **out,
                            size_t *out_len)
{
    char *text;
    size_t n;
    int rc;

    if ((rc = header_text(cmd, body_len, &text, &n)) != 0)
        return rc;
    *out = xmalloc(FRAME_PREFIX + n);
    put_prefix(*out, text, n, body_len);
    *out_len = FRAME_PREFIX + n;
    free(text);
    return 0;
}

int proto_cmd_encode(const proto_cmd *cmd, const void *body, size_t body_len, uint8_t **out,
                     size_t *out_len)
{
    char *text;
    size_t n;
    int rc;

    if (body == NULL && body_len > 0)
        return LSMQ_EINVAL;
    if ((rc = header_text(cmd, body_len, &text, &n)) != 0)
        return rc;
    *out = xmalloc(FRAME_PREFIX + n + body_len);
    put_prefix(*out, text, n, body_len);
    if (body_len > 0)
        memcpy(*out + FRAME_PREFIX + n, body, body_len);
    *out_len = FRAME_PREFIX + n + body_len;
    free(text);
    return 0;
}
