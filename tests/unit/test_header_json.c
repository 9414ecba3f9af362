/*
 * Differential tests of the JSON header reader and writer
 * (protocol/header_json_*.c) against the jansson codec they replaced,
 * which protocol/reference/header_json_ref.h keeps as a reference: every header
 * must be accepted or refused alike, decode to the same fields, and
 * encode to the same bytes.
 *
 * Inputs are hand-written edge cases plus many generated headers (random
 * field order, duplicates, escapes, Unicode, numbers as strings, nulls,
 * unknown nested fields) and mutations of them. LSMQ_TEST_SEED picks
 * another generator seed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "header_json_ref.h"
#include "errors.h"
#include "remoting.h"

/* ------------------------------------------------------------------ */
/* Checking one input                                                  */
/* ------------------------------------------------------------------ */

static void show(const char *what, const char *text, size_t n)
{
    size_t i;

    fprintf(stderr, "%s: %zu bytes: ", what, n);
    for (i = 0; i < n && i < 600; i++)
        fprintf(stderr, (unsigned char)text[i] >= 0x20 && (unsigned char)text[i] < 0x7F
                            ? "%c" : "\\x%02X", (unsigned char)text[i]);
    fputc('\n', stderr);
}

/* Our encoding of cmd must be the bytes jansson wrote. */
static void check_encode(const proto_cmd *cmd)
{
    uint8_t *out;
    size_t len;
    char *want = ref_encode(cmd);

    assert_int_equal(proto_cmd_encode_prefix(cmd, 0, &out, &len), 0);
    if (len - 8 != strlen(want) || memcmp(out + 8, want, len - 8) != 0) {
        show("encoded", (const char *)out + 8, len - 8);
        show("jansson", want, strlen(want));
        fail_msg("encoding differs from jansson's");
    }
    free(out);
    free(want);
}

/* Decode text[0..n) both ways and compare; returns whether it was accepted. */
static int check_text(const char *text, size_t n)
{
    size_t len = 8 + n;
    uint8_t *f = malloc(len);
    proto_cmd *cmd = NULL;
    ref_header ref;
    char err[128] = "";
    const char *diff;
    int rc;

    assert_non_null(f);
    f[0] = (uint8_t)((len - 4) >> 24);
    f[1] = (uint8_t)((len - 4) >> 16);
    f[2] = (uint8_t)((len - 4) >> 8);
    f[3] = (uint8_t)(len - 4);
    f[4] = 0;
    f[5] = (uint8_t)(n >> 16);
    f[6] = (uint8_t)(n >> 8);
    f[7] = (uint8_t)n;
    if (n > 0)
        memcpy(f + 8, text, n);
    rc = proto_cmd_decode(f, len, &cmd, err, sizeof err);
    ref_decode(text, n, &ref);
    if ((diff = ref_compare(rc, cmd, &ref)) != NULL) {
        show("input", text, n);
        fail_msg("%s (ours: %s)", diff, rc == 0 ? "accepted" : err);
    }
    if (rc == 0)
        check_encode(cmd);
    proto_cmd_free(cmd);
    ref_header_free(&ref);
    free(f);
    return rc == 0;
}

static int check_str(const char *text)
{
    return check_text(text, strlen(text));
}

#define CHECK_LIT(lit) check_text((lit), sizeof(lit) - 1)

/* ------------------------------------------------------------------ */
/* Hand-written cases                                                  */
/* ------------------------------------------------------------------ */

static void test_valid_shapes(void **state)
{
    static const char *const ok[] = {
        "{}",
        " \t\r\n{ } \n",
        "{\"code\":310,\"language\":\"JAVA\",\"opaque\":3,\"flag\":0,\"version\":121}",
        "{\"code\":\"310\",\"opaque\":\"-2147483648\",\"flag\":\"+1\",\"version\":null}",
        "{\"code\":-2147483648,\"flag\":2147483647,\"language\":9,\"remark\":\"\"}",
        "{\"language\":99,\"remark\":null,\"extFields\":null}",
        "{\"language\":-1,\"extFields\":{}}",
        "{\"language\":\"GO\",\"language\":\"CPP\"}",
        "{\"c\\u006fde\":7,\"\\u0065xtFields\":{\"\\u0061\":\"x\"}}",
        "{\"code\":{},\"code\":[1,2],\"code\":5}",
        "{\"extFields\":{\"a\":\"1\"},\"extFields\":{\"b\":\"2\"}}",
        "{\"extFields\":{\"a\":\"1\"},\"extFields\":null}",
        "{\"extFields\":{\"a\":\"1\",\"b\":2,\"a\":null,\"c\":3,\"a\":\"4\"}}",
        "{\"extFields\":{\"a\":{},\"a\":\"ok\"}}",
        "{\"extFields\":{\"a\":[1],\"a\":null}}",
        "{\"extFields\":{\"e\":3,\"f\":0,\"g\":1700000000123,\"h\":-1,\"k\":false,\"m\":true,"
        "\"ratio\":1.5,\"tiny\":0.1,\"big\":9223372036854775807,\"neg\":-9223372036854775808,"
        "\"z\":-0,\"r\":-0.0,\"e1\":1e5,\"e2\":1E-5,\"e3\":2.5e+3,\"u\":1e-400,\"gone\":null}}",
        "{\"remark\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u20AC\\ud83d\\ude00\\u001f\"}",
        "{\"remark\":\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \x7F\"}",
        "{\"unknown\":{\"a\":[1,2,{\"b\":null}],\"c\":true},\"x\":[],\"y\":[[]],\"z\":\"s\"}",
        "{\"serializeTypeCurrentRPC\":\"JSON\",\"extFields\":{\"\":\"empty key\"}}",
        "{\"extFields\":{\"k\\u00e9\":\"v\",\"k\\u00E9\":\"w\"}}",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_true(check_str(ok[i]));
}

/* jansson loses one NUL right after a number or literal; so must we. */
static void test_nul_after_token(void **state)
{
    (void)state;
    assert_true(CHECK_LIT("{\"code\":1\0}"));
    assert_true(CHECK_LIT("{\"a\":true\0,\"b\":null\0 }"));
    assert_true(CHECK_LIT("{\"extFields\":{\"a\":1.5\0,\"b\":false\0}}"));
    assert_true(CHECK_LIT("{\"a\":[1\0,2\0]}"));
    assert_false(CHECK_LIT("{\"code\":1\0\0}"));
    assert_false(CHECK_LIT("{\"code\":1 \0}"));
    assert_false(CHECK_LIT("{\"code\":\"1\"\0}"));
    assert_false(CHECK_LIT("{}\0"));
    assert_false(CHECK_LIT("{\"a\0\":1}"));
    assert_false(CHECK_LIT("{\"code\":-\0}"));
}

static void test_invalid(void **state)
{
    static const char *const bad[] = {
        "", " ", "[]", "[{}]", "\"x\"", "1", "null", "{", "}", "{\"a\"}", "{\"a\":}",
        "{\"a\":1,}", "{,}", "{\"a\":1 \"b\":2}", "{\"a\" 1}", "{'a':1}", "{a:1}",
        "{\"a\":[1,]}", "{\"a\":[,1]}", "{\"a\":[1}", "{\"a\":{]}", "{}}", "{} {}", "{}x",
        "{\"a\":01}", "{\"a\":-01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":1e}", "{\"a\":1e+}",
        "{\"a\":+1}", "{\"a\":-}", "{\"a\":0x10}", "{\"a\":1.5.5}", "{\"a\":Infinity}",
        "{\"a\":NaN}", "{\"a\":tru}", "{\"a\":truex}", "{\"a\":True}", "{\"a\":nul}",
        "{\"a\":9223372036854775808}", "{\"a\":-9223372036854775809}",
        "{\"a\":99999999999999999999}", "{\"a\":1e400}", "{\"a\":-1e400}",
        "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", "{\"a\":\"\\u12g4\"}", "{\"a\":\"\\U0041\"}",
        "{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00\"}", "{\"a\":\"\\ud800\\u0041\"}",
        "{\"a\":\"\\ud800x\"}", "{\"a\":\"\\ud800\\ud800\"}", "{\"a\":\"\\u0000\"}",
        "{\"\\u0000\":1}", "{\"a\":\"x\\u0000y\"}", "{\"a\":\"\x01\"}", "{\"a\":\"\n\"}",
        "{\"a\":\"\x1f\"}", "{\"a\":\"\xFF\"}", "{\"a\":\"\xC0\x80\"}", "{\"a\":\"\xED\xA0\x80\"}",
        "{\"a\":\"\xF4\x90\x80\x80\"}", "{\"a\":\"\xC3\"}", "{\"a\":\"\xE2\x82\"}",
        "{\"a\":\"abc", "{\"a\":\"abc\\", "{\"a\":1}\xC3\xA9", "\xEF\xBB\xBF{}",
        "{\"a\":1}\x0b", "{\"a\":1}\f", "{\"code\":2147483648}", "{\"code\":-2147483649}",
        "{\"code\":\"2147483648\"}", "{\"code\":\" 1\"}", "{\"code\":\"\"}", "{\"code\":1.0}",
        "{\"code\":true}", "{\"code\":[]}", "{\"flag\":{}}", "{\"version\":\"1e3\"}",
        "{\"opaque\":\"0x1\"}", "{\"language\":1.5}", "{\"language\":true}",
        "{\"language\":[]}", "{\"remark\":1}", "{\"remark\":false}", "{\"remark\":{}}",
        "{\"extFields\":[]}", "{\"extFields\":\"a=b\"}", "{\"extFields\":1}",
        "{\"extFields\":{\"a\":{\"b\":\"c\"}}}", "{\"extFields\":{\"a\":[1]}}",
        "{\"extFields\":{\"a\":\"1\",\"a\":{}}}", "{\"extFields\":{\"a\":1,}}",
        "{\"extFields\":{\"a\":1}", "{\"code\":1,\"code\":\"x\"}",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (check_str(bad[i])) {
            show("accepted", bad[i], strlen(bad[i]));
            fail_msg("case %zu should be refused", i);
        }
}

/* {"u":[[...v...]]} or the same under extFields: v at the given depth. */
static char *nested(const char *prefix, size_t prefix_depth, size_t depth, const char *v,
                    size_t *n)
{
    size_t arrays = depth - prefix_depth - 1, i, o = 0, tail = prefix_depth;
    char *s = malloc(strlen(prefix) + 2 * arrays + strlen(v) + tail + 1);

    assert_non_null(s);
    o += (size_t)sprintf(s, "%s", prefix);
    for (i = 0; i < arrays; i++)
        s[o++] = '[';
    o += (size_t)sprintf(s + o, "%s", v);
    for (i = 0; i < arrays; i++)
        s[o++] = ']';
    for (i = 0; i < tail; i++)
        s[o++] = '}';
    *n = o;
    return s;
}

static void test_depth_limit(void **state)
{
    static const struct {
        const char *prefix;
        size_t depth; /* of the value the prefix opens */
    } where[] = {{"{\"u\":", 1}, {"{\"extFields\":{\"a\":", 2}, {"{\"u\":{\"v\":", 2}};
    size_t w, d, n;
    char *s;

    (void)state;
    for (w = 0; w < sizeof where / sizeof where[0]; w++) {
        for (d = 2040; d <= 2052; d++) {
            s = nested(where[w].prefix, where[w].depth, d, "1", &n);
            assert_int_equal(check_text(s, n), d <= 2048 && w != 1);
            free(s);
            s = nested(where[w].prefix, where[w].depth, d, "[]", &n);
            assert_int_equal(check_text(s, n), d <= 2048 && w != 1);
            free(s);
            s = nested(where[w].prefix, where[w].depth, d, "{\"k\":{}}", &n);
            assert_int_equal(check_text(s, n), d + 1 <= 2048 && w != 1);
            free(s);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Generated headers                                                   */
/* ------------------------------------------------------------------ */

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return n ? (uint32_t)(rng_state % n) : 0;
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void sb_fmt(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_fmt(sbuf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sb_put(b, tmp, (size_t)n);
}

static void ws(sbuf *b)
{
    static const char *const pieces[] = {" ", "\t", "\n", "\r", "  ", "\r\n"};

    if (rnd(4) == 0)
        sb_str(b, pieces[rnd(6)]);
}

/* The inside of a string: plain text, escapes, Unicode, now and then something invalid. */
static void gen_string_body(sbuf *b, int allow_bad)
{
    static const char *const good[] = {
        "a", "Topic", "%RETRY%g", " ", "/", "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r",
        "\\t", "\\u0041", "\\u00e9", "\\u00E9", "\\u001f", "\\u0001", "\\u007f", "\\u20ac",
        "\\uFFFF", "\\ud83d\\ude00", "\\uDBFF\\uDFFF", "\xC3\xA9", "\xE2\x82\xAC",
        "\xF0\x9F\x98\x80", "\xF4\x8F\xBF\xBF", "\x7F", "\xEF\xBF\xBD", "0", "-12", "true",
        "\\u005c", "\\u0022", "\xC2\x80", "\xE0\xA0\x80", "\xED\x9F\xBF", "\xEE\x80\x80",
    };
    static const char *const bad[] = {
        "\x01", "\n", "\x1F", "\\x", "\\u12", "\\ud800", "\\udc00", "\\ud800\\u0041",
        "\\u0000", "\xFF", "\xC3", "\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\x80",
        "\xE2\x82", "\\", "\\ud800\\ud800",
    };
    uint32_t i, n = rnd(8);

    for (i = 0; i < n; i++) {
        if (allow_bad && rnd(60) == 0)
            sb_str(b, bad[rnd(sizeof bad / sizeof bad[0])]);
        else
            sb_str(b, good[rnd(sizeof good / sizeof good[0])]);
    }
}

static void gen_string(sbuf *b, int allow_bad)
{
    sb_str(b, "\"");
    gen_string_body(b, allow_bad);
    sb_str(b, "\"");
}

static void maybe_nul(sbuf *b)
{
    if (rnd(40) == 0)
        sb_put(b, "", 1);
}

static void gen_number(sbuf *b)
{
    static const char *const odd[] = {
        "0", "-0", "2147483647", "-2147483648", "2147483648", "-2147483649",
        "9223372036854775807", "-9223372036854775808", "9223372036854775808",
        "-9223372036854775809", "1.5", "-0.0", "0.1", "1e5", "1E-5", "2.5e+3", "1e308",
        "1e309", "-1e400", "1e-400", "123456789012345678901234567890.5", "4.9e-324", "0e0",
    };

    if (rnd(2) == 0)
        sb_str(b, odd[rnd(sizeof odd / sizeof odd[0])]);
    else
        sb_fmt(b, "%d", (int)(rnd(2000) - 1000));
    maybe_nul(b);
}

static void gen_value(sbuf *b, int depth, int allow_bad);

static void gen_container(sbuf *b, int depth, int allow_bad)
{
    uint32_t i, n = rnd(4);
    int obj = rnd(2) == 0;

    sb_str(b, obj ? "{" : "[");
    for (i = 0; i < n; i++) {
        if (i > 0)
            sb_str(b, ",");
        ws(b);
        if (obj) {
            gen_string(b, allow_bad);
            ws(b);
            sb_str(b, ":");
            ws(b);
        }
        gen_value(b, depth + 1, allow_bad);
        ws(b);
    }
    sb_str(b, obj ? "}" : "]");
}

static void gen_value(sbuf *b, int depth, int allow_bad)
{
    switch (rnd(depth < 5 ? 8 : 6)) {
    case 0:
    case 1:
        gen_string(b, allow_bad);
        break;
    case 2:
    case 3:
        gen_number(b);
        break;
    case 4:
        sb_str(b, rnd(3) == 0 ? "null" : rnd(2) ? "true" : "false");
        maybe_nul(b);
        break;
    case 5:
        sb_str(b, "null");
        break;
    default:
        gen_container(b, depth, allow_bad);
        break;
    }
}

/* A key, sometimes spelt with escapes. */
static void gen_key(sbuf *b, const char *name)
{
    size_t i;

    sb_str(b, "\"");
    for (i = 0; name[i] != '\0'; i++) {
        if (rnd(25) == 0)
            sb_fmt(b, rnd(2) ? "\\u%04x" : "\\u%04X", (unsigned char)name[i]);
        else
            sb_put(b, name + i, 1);
    }
    sb_str(b, "\"");
}

/* An int header field's value: mostly good, sometimes not. */
static void gen_int_field(sbuf *b, int allow_bad)
{
    static const char *const strings[] = {
        "\"310\"", "\"-1\"", "\"+7\"", "\"2147483647\"", "\"-2147483648\"", "\"2147483648\"",
        "\"\"", "\"12a\"", "\" 1\"", "\"\\u0031\\u0032\"", "\"-\"", "\"+\"", "\"007\"",
    };

    switch (rnd(allow_bad ? 8 : 5)) {
    case 0:
    case 1:
        sb_fmt(b, "%d", (int)rnd(400));
        maybe_nul(b);
        break;
    case 2:
        sb_str(b, strings[rnd(sizeof strings / sizeof strings[0])]);
        break;
    case 3:
        sb_str(b, "null");
        break;
    case 4:
        gen_number(b);
        break;
    default:
        gen_value(b, 2, allow_bad);
        break;
    }
}

static void gen_language(sbuf *b, int allow_bad)
{
    static const char *const names[] = {"\"JAVA\"", "\"CPP\"", "\"GO\"", "\"NODE_JS\"",
                                        "\"RUST\"", "\"java\"", "\"\"", "\"J\\u0041VA\"",
                                        "null", "0", "13", "14", "-1", "99999999999"};

    if (allow_bad && rnd(6) == 0)
        gen_value(b, 2, allow_bad);
    else
        sb_str(b, names[rnd(sizeof names / sizeof names[0])]);
}

static const char *const ext_keys[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k",
                                       "l", "m", "n", "topic", "queueId", "A", "", "\xC3\xA9",
                                       "k\x7F", "Z/"};

static void gen_ext(sbuf *b, int allow_bad)
{
    uint32_t i, n = rnd(18);

    if (rnd(12) == 0) {
        sb_str(b, rnd(2) ? "null" : "{}");
        return;
    }
    if (allow_bad && rnd(20) == 0) {
        gen_value(b, 2, allow_bad);
        return;
    }
    sb_str(b, "{");
    for (i = 0; i < n; i++) {
        if (i > 0)
            sb_str(b, ",");
        ws(b);
        if (rnd(6) == 0)
            gen_string(b, allow_bad);
        else
            gen_key(b, ext_keys[rnd(sizeof ext_keys / sizeof ext_keys[0])]);
        ws(b);
        sb_str(b, ":");
        ws(b);
        if (rnd(3) == 0)
            gen_value(b, allow_bad ? 2 : 9, allow_bad);
        else
            gen_string(b, allow_bad);
        ws(b);
    }
    sb_str(b, "}");
}

/* A whole header: the known fields in random order, some twice, unknown ones mixed in. */
static void gen_header(sbuf *b, int allow_bad)
{
    static const char *const fields[] = {"code", "language", "version", "opaque", "flag",
                                         "remark", "extFields", "serializeTypeCurrentRPC",
                                         "unknown", "x"};
    uint32_t i, n = rnd(12);

    ws(b);
    sb_str(b, "{");
    for (i = 0; i < n; i++) {
        uint32_t f = rnd(sizeof fields / sizeof fields[0]);

        if (i > 0)
            sb_str(b, ",");
        ws(b);
        gen_key(b, fields[f]);
        ws(b);
        sb_str(b, ":");
        ws(b);
        switch (f) {
        case 0: case 2: case 3: case 4: gen_int_field(b, allow_bad); break;
        case 1: gen_language(b, allow_bad); break;
        case 5:
            if (allow_bad && rnd(8) == 0)
                gen_value(b, 2, allow_bad);
            else if (rnd(5) == 0)
                sb_str(b, "null");
            else
                gen_string(b, allow_bad);
            break;
        case 6: gen_ext(b, allow_bad); break;
        default: gen_value(b, 2, allow_bad); break;
        }
        ws(b);
    }
    sb_str(b, "}");
    ws(b);
}

/* Small damage: truncation, a flipped, inserted or deleted byte. */
static size_t mutate(char *s, size_t n, size_t cap)
{
    static const char ins[] = {'"', '\\', '{', '}', '[', ']', ',', ':', '\0', ' ', 'u', '0',
                               'e', '.', '-', (char)0x80, (char)0xC3, (char)0xED, '\n'};
    size_t at = n ? rnd((uint32_t)n) : 0;

    switch (rnd(4)) {
    case 0:
        return at;
    case 1:
        if (n > 0)
            s[at] = (char)(s[at] ^ (1u << rnd(8)));
        return n;
    case 2:
        if (n + 1 > cap)
            return n;
        memmove(s + at + 1, s + at, n - at);
        s[at] = ins[rnd(sizeof ins)];
        return n + 1;
    default:
        if (n == 0)
            return 0;
        memmove(s + at, s + at + 1, n - at - 1);
        return n - 1;
    }
}

static void seed_rng(uint64_t dflt)
{
    const char *env = getenv("LSMQ_TEST_SEED");

    rng_state = env != NULL ? strtoull(env, NULL, 0) : dflt;
    if (rng_state == 0)
        rng_state = 1;
}

static void test_generated_valid(void **state)
{
    sbuf b = {NULL, 0, 0};
    int i, accepted = 0;

    (void)state;
    seed_rng(0x9E3779B97F4A7C15ull);
    for (i = 0; i < 20000; i++) {
        b.len = 0;
        gen_header(&b, 0);
        accepted += check_text(b.p, b.len);
    }
    /* Only numbers out of int range or bad kinds make the header fail; most pass. */
    assert_true(accepted > 10000);
    free(b.p);
}

static void test_generated_damaged(void **state)
{
    sbuf b = {NULL, 0, 0};
    char *copy;
    size_t n, cap;
    int i, k, accepted = 0, refused = 0;

    (void)state;
    seed_rng(0xD1B54A32D192ED03ull);
    for (i = 0; i < 12000; i++) {
        b.len = 0;
        gen_header(&b, 1);
        if (check_text(b.p, b.len))
            accepted++;
        else
            refused++;
        cap = b.len + 8;
        copy = malloc(cap);
        assert_non_null(copy);
        for (k = 0; k < 3; k++) {
            memcpy(copy, b.p, b.len);
            n = mutate(copy, b.len, cap);
            if (rnd(3) == 0)
                n = mutate(copy, n, cap);
            if (check_text(copy, n))
                accepted++;
            else
                refused++;
        }
        free(copy);
    }
    assert_true(accepted > 1000 && refused > 1000);
    free(b.p);
}

/* ------------------------------------------------------------------ */
/* Encoding commands built through the API                             */
/* ------------------------------------------------------------------ */

/* Raw bytes for keys and values: whatever a binary header could carry. */
static void random_text(char *s, size_t cap)
{
    static const char *const pieces[] = {
        "a", "Z", "/", "\"", "\\", "\b", "\f", "\n", "\r", "\t", "\x01", "\x1F", "\x7F",
        "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xFF", "\xFE", "\xC3", "\xE2\x82",
        "\xED\xA0\x80", "\xC0\xAF", "\xF4\x90\x80\x80", "\x80", "\xEF\xBF\xBD", " ", "0",
    };
    size_t o = 0;
    uint32_t i, n = rnd(6);

    for (i = 0; i < n; i++) {
        const char *p = pieces[rnd(sizeof pieces / sizeof pieces[0])];

        if (o + strlen(p) + 1 > cap)
            break;
        memcpy(s + o, p, strlen(p));
        o += strlen(p);
    }
    s[o] = '\0';
}

/* Append key=value without removing an earlier entry of the key. */
static void push_duplicate(proto_cmd *cmd, const char *key, const char *value)
{
    proto_ext *grown = realloc(cmd->ext, (cmd->n_ext + 1) * sizeof *grown);

    assert_non_null(grown);
    cmd->ext = grown;
    cmd->cap_ext = cmd->n_ext + 1;
    cmd->ext[cmd->n_ext].key = strdup(key);
    cmd->ext[cmd->n_ext].value = strdup(value);
    assert_non_null(cmd->ext[cmd->n_ext].key);
    assert_non_null(cmd->ext[cmd->n_ext].value);
    cmd->n_ext++;
}

static void test_encode_random_commands(void **state)
{
    static const int32_t ints[] = {0, 1, -1, 310, INT32_MAX, INT32_MIN, 1000000};
    char key[64], value[64];
    int i;
    uint32_t k, n;

    (void)state;
    seed_rng(0x2545F4914F6CDD1Dull);
    for (i = 0; i < 5000; i++) {
        proto_cmd *cmd = rnd(2) ? proto_cmd_request((int32_t)rnd(400))
                                : proto_cmd_response(ints[rnd(7)], ints[rnd(7)], NULL);

        cmd->flag = ints[rnd(7)];
        cmd->version = ints[rnd(7)];
        cmd->language = (int32_t)rnd(20) - 3;
        if (rnd(3) == 0) {
            random_text(value, sizeof value);
            proto_cmd_set_remark(cmd, value);
        }
        n = rnd(40);
        for (k = 0; k < n; k++) {
            if (rnd(2))
                snprintf(key, sizeof key, "%s", ext_keys[rnd(sizeof ext_keys / sizeof ext_keys[0])]);
            else
                random_text(key, sizeof key);
            random_text(value, sizeof value);
            if (rnd(4) == 0)
                push_duplicate(cmd, key, value);
            else
                proto_cmd_set(cmd, key, value);
        }
        check_encode(cmd);
        proto_cmd_free(cmd);
    }
}

/* Many extFields entries take the writer's and reader's large-object paths. */
static void test_many_fields(void **state)
{
    sbuf b = {NULL, 0, 0};
    int i;

    (void)state;
    seed_rng(7);
    sb_str(&b, "{\"extFields\":{");
    for (i = 0; i < 3000; i++)
        sb_fmt(&b, "%s\"k%u\":%s", i ? "," : "", rnd(900),
               rnd(7) == 0 ? "null" : rnd(2) ? "\"v\"" : "12");
    sb_str(&b, "}}");
    assert_true(check_text(b.p, b.len));
    free(b.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_shapes),
        cmocka_unit_test(test_nul_after_token),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_generated_valid),
        cmocka_unit_test(test_generated_damaged),
        cmocka_unit_test(test_encode_random_commands),
        cmocka_unit_test(test_many_fields),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
