/*
 * Reference JSON header codec built on jansson, for differential tests of
 * protocol/header_json_*.c (tests/unit/test_header_json.c, fuzz_frame.c)
 * and for bench/header_bench.c's comparison. Not part of lsmq_protocol:
 * the lsmq_protocol_reference target carries it (and jansson) to them.
 *
 * It is the codec remoting.c had before it got its own reader and writer:
 * json_loadb(text, n, 0) and the same field rules, and json_dumps with
 * JSON_COMPACT | JSON_SORT_KEYS of the same tree. The new code must agree
 * with it on every input: accept exactly what it accepts, decode the same
 * fields, and encode the same bytes.
 */
#ifndef LSMQ_PROTO_HEADER_JSON_REF_H
#define LSMQ_PROTO_HEADER_JSON_REF_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "remoting.h"
#include "utf8.h"

/* What the reference decoder makes of a header. */
typedef struct ref_header {
    int ok;
    int32_t code, language, version, opaque, flag;
    char *remark;
    char **keys, **values;
    size_t n_ext;
} ref_header;

static inline void ref_header_free(ref_header *r)
{
    size_t i;

    for (i = 0; i < r->n_ext; i++) {
        free(r->keys[i]);
        free(r->values[i]);
    }
    free(r->keys);
    free(r->values);
    free(r->remark);
    memset(r, 0, sizeof *r);
}

/* Integer.parseInt grammar within [-max - 1, max]. */
static inline int ref_java_int(const char *s, int64_t max, int64_t *out)
{
    uint64_t acc = 0, limit = (uint64_t)max;
    int neg = 0;

    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    if (*s == '\0')
        return -1;
    if (neg)
        limit++;
    for (; *s != '\0'; s++) {
        unsigned d = (unsigned)(*s - '0');

        if (*s < '0' || *s > '9' || acc > (limit - d) / 10)
            return -1;
        acc = acc * 10 + d;
    }
    *out = neg ? (acc == 0 ? 0 : -(int64_t)(acc - 1) - 1) : (int64_t)acc;
    return 0;
}

static inline int32_t ref_language_number(json_int_t n)
{
    if (n >= 0 && n < 256 && proto_language_from_name(proto_language_name((int)n)) == n)
        return (int32_t)n;
    return proto_language_from_name("OTHER");
}

static inline int ref_int_field(json_t *root, const char *name, int32_t *dst)
{
    json_t *v = json_object_get(root, name);
    int64_t n;

    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_integer(v)) {
        if (json_integer_value(v) < INT32_MIN || json_integer_value(v) > INT32_MAX)
            return -1;
        *dst = (int32_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v) && ref_java_int(json_string_value(v), INT32_MAX, &n) == 0) {
        *dst = (int32_t)n;
        return 0;
    }
    return -1;
}

static inline void ref_format_real(double d, char *buf, size_t n)
{
    int prec;

    for (prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

static inline char *ref_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);

    if (p == NULL)
        abort();
    return memcpy(p, s, n);
}

static inline int ref_fields(json_t *root, ref_header *r)
{
    json_t *v, *ext;
    const char *key;
    char buf[40];
    size_t cap;

    if (ref_int_field(root, "code", &r->code) || ref_int_field(root, "version", &r->version) ||
        ref_int_field(root, "opaque", &r->opaque) || ref_int_field(root, "flag", &r->flag))
        return -1;
    v = json_object_get(root, "language");
    if (json_is_string(v))
        r->language = proto_language_from_name(json_string_value(v));
    else if (json_is_integer(v))
        r->language = ref_language_number(json_integer_value(v));
    else if (v != NULL && !json_is_null(v))
        return -1;
    v = json_object_get(root, "remark");
    if (json_is_string(v))
        r->remark = ref_strdup(json_string_value(v));
    else if (v != NULL && !json_is_null(v))
        return -1;
    ext = json_object_get(root, "extFields");
    if (ext == NULL || json_is_null(ext))
        return 0;
    if (!json_is_object(ext))
        return -1;
    cap = json_object_size(ext) + 1;
    r->keys = calloc(cap, sizeof *r->keys);
    r->values = calloc(cap, sizeof *r->values);
    if (r->keys == NULL || r->values == NULL)
        abort();
    json_object_foreach(ext, key, v) {
        const char *text = buf;

        switch (json_typeof(v)) {
        case JSON_STRING: text = json_string_value(v); break;
        case JSON_INTEGER:
            snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            break;
        case JSON_REAL: ref_format_real(json_real_value(v), buf, sizeof buf); break;
        case JSON_TRUE: text = "true"; break;
        case JSON_FALSE: text = "false"; break;
        case JSON_NULL: continue;
        default: return -1;
        }
        r->keys[r->n_ext] = ref_strdup(key);
        r->values[r->n_ext] = ref_strdup(text);
        r->n_ext++;
    }
    return 0;
}

/* Decode text[0..n) as remoting.c did with jansson; r->ok says whether it was accepted. */
static inline void ref_decode(const char *text, size_t n, ref_header *r)
{
    json_error_t err;
    json_t *root = json_loadb(text, n, 0, &err);

    memset(r, 0, sizeof *r);
    r->language = proto_language_from_name("JAVA");
    if (root == NULL)
        return;
    if (json_is_object(root) && ref_fields(root, r) == 0) {
        r->ok = 1;
    } else {
        ref_header_free(r);
        r->ok = 0;
    }
    json_decref(root);
}

/* s made valid UTF-8 the way remoting.c does (Java's replacement), as a new string. */
static inline char *ref_lossy(const char *s)
{
    size_t len = strlen(s), i, o = 0, used;
    char *out = malloc(len * 3 + 1);
    uint32_t cp;

    if (out == NULL)
        abort();
    for (i = 0; i < len; i += used) {
        used = proto_utf8_decode((const uint8_t *)s + i, len - i, &cp);
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

static inline void ref_put(json_t *obj, const char *key, json_t *v)
{
    char *k = ref_lossy(key);

    if (v == NULL || json_object_set_new(obj, k, v) != 0)
        abort();
    free(k);
}

static inline json_t *ref_text(const char *s)
{
    char *fixed = ref_lossy(s);
    json_t *v = json_string(fixed);

    free(fixed);
    return v;
}

/* The JSON header remoting.c wrote for cmd with jansson (malloc'ed). */
static inline char *ref_encode(const proto_cmd *cmd)
{
    json_t *root = json_object(), *ext;
    char *s;
    size_t i;

    ref_put(root, "code", json_integer(cmd->code));
    ref_put(root, "flag", json_integer(cmd->flag));
    ref_put(root, "language", json_string(proto_language_name(cmd->language)));
    ref_put(root, "opaque", json_integer(cmd->opaque));
    ref_put(root, "version", json_integer(cmd->version));
    ref_put(root, "serializeTypeCurrentRPC", json_string("JSON"));
    if (cmd->remark != NULL)
        ref_put(root, "remark", ref_text(cmd->remark));
    if (cmd->n_ext > 0) {
        ext = json_object();
        for (i = 0; i < cmd->n_ext; i++)
            if (cmd->ext[i].key != NULL && cmd->ext[i].value != NULL)
                ref_put(ext, cmd->ext[i].key, ref_text(cmd->ext[i].value));
        ref_put(root, "extFields", ext);
    }
    s = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    if (s == NULL)
        abort();
    return s;
}

/*
 * Compare a proto_cmd_decode result (rc, cmd) with the reference for the same
 * header text. Returns NULL when they agree, else what differs.
 */
static inline const char *ref_compare(int rc, const proto_cmd *cmd, const ref_header *r)
{
    size_t i;

    if ((rc == 0) != (r->ok != 0))
        return rc == 0 ? "accepted what jansson refuses" : "refused what jansson accepts";
    if (rc != 0)
        return NULL;
    if (cmd->code != r->code || cmd->version != r->version || cmd->opaque != r->opaque ||
        cmd->flag != r->flag || cmd->language != r->language)
        return "fixed field differs";
    if ((cmd->remark == NULL) != (r->remark == NULL) ||
        (cmd->remark != NULL && strcmp(cmd->remark, r->remark) != 0))
        return "remark differs";
    if (cmd->n_ext != r->n_ext)
        return "extFields count differs";
    for (i = 0; i < r->n_ext; i++)
        if (strcmp(cmd->ext[i].key, r->keys[i]) != 0 ||
            strcmp(cmd->ext[i].value, r->values[i]) != 0)
            return "extFields entry differs";
    return NULL;
}

#endif
