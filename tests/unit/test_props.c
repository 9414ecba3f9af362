/*
 * Unit tests for protocol/props.h: the properties string of REMOTING.md §4.5,
 * decoded with the Java client's rules (split on 0x02, skip segments under 3
 * bytes, first 0x01 splits, name and value non-empty).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "errors.h"
#include "props.h"

/* Expected pairs, in order, for one properties string. */
typedef struct pair {
    const char *name;
    const char *value;
} pair;

/*
 * Iterate s[0..len) from an exact-size heap copy (so ASan sees any overread)
 * and compare with want[0..count).
 */
static void check_pairs(const char *s, size_t len, const pair *want, size_t count)
{
    char *copy = malloc(len ? len : 1);
    proto_props_iter it;
    const char *n, *v;
    size_t nl, vl, i = 0;

    assert_non_null(copy);
    if (len > 0)
        memcpy(copy, s, len);
    proto_props_iter_init(&it, copy, len);
    while (proto_props_next(&it, &n, &nl, &v, &vl)) {
        assert_true(i < count);
        assert_int_equal(nl, strlen(want[i].name));
        assert_memory_equal(n, want[i].name, nl);
        assert_int_equal(vl, strlen(want[i].value));
        assert_memory_equal(v, want[i].value, vl);
        i++;
    }
    assert_int_equal(i, count);
    /* An exhausted iterator stays exhausted. */
    assert_int_equal(proto_props_next(&it, &n, &nl, &v, &vl), 0);
    free(copy);
}

/* sizeof a string literal minus its NUL: the literal's exact bytes. */
#define LIT(s) (s), (sizeof(s) - 1)

/* ------------------------------------------------------------------ */
/* Iterator                                                            */
/* ------------------------------------------------------------------ */

static void test_iter_java_encoding(void **state)
{
    static const pair want[] = {{"WAIT", "true"}, {"TAGS", "TagA"}, {"KEYS", "k1"}};

    check_pairs(LIT("WAIT\001true\002TAGS\001TagA\002KEYS\001k1\002"), want, 3);
}

static void test_iter_missing_trailing_separator(void **state)
{
    static const pair want[] = {{"a", "b"}, {"cc", "dd"}};

    check_pairs(LIT("a\001b\002cc\001dd"), want, 2);
}

static void test_iter_empty(void **state)
{
    proto_props_iter it;
    const char *n, *v;
    size_t nl, vl;

    check_pairs("", 0, NULL, 0);
    proto_props_iter_init(&it, NULL, 0);
    assert_int_equal(proto_props_next(&it, &n, &nl, &v, &vl), 0);
    check_pairs(LIT("\002"), NULL, 0);
    check_pairs(LIT("\002\002\002\002"), NULL, 0);
    check_pairs(LIT("\001"), NULL, 0);
}

static void test_iter_short_segments_ignored(void **state)
{
    static const pair want[] = {{"x", "y"}, {"k", "v"}};

    /* "a\001" and "ab" are under 3 bytes; "x\001y" is exactly 3. */
    check_pairs(LIT("a\001\002ab\002x\001y\002\002q\002k\001v"), want, 2);
    check_pairs(LIT("ab"), NULL, 0);
    check_pairs(LIT("\001b"), NULL, 0);
    check_pairs(LIT("a\001"), NULL, 0);
}

static void test_iter_empty_name_or_value_ignored(void **state)
{
    static const pair want[] = {{"good", "1"}};

    check_pairs(LIT("\001abc\002abc\001\002good\0011\002\001\001\001\002"), want, 1);
}

static void test_iter_segment_without_separator_ignored(void **state)
{
    static const pair want[] = {{"k", "v"}};

    /* A segment with no 0x01 must not borrow the next segment's. */
    check_pairs(LIT("abcdef\002k\001v\002"), want, 1);
    check_pairs(LIT("abcdef"), NULL, 0);
}

static void test_iter_value_keeps_later_separators(void **state)
{
    static const pair want[] = {{"k", "v\001w"}, {"n", "\001"}};

    /* Only the first 0x01 splits; "n\001\001" has the one-byte value 0x01. */
    check_pairs(LIT("k\001v\001w\002n\001\001\002"), want, 2);
}

static void test_iter_is_a_view(void **state)
{
    static const char s[] = "ab\001cd\002";
    proto_props_iter it;
    const char *n, *v;
    size_t nl, vl;

    proto_props_iter_init(&it, s, sizeof s - 1);
    assert_int_equal(proto_props_next(&it, &n, &nl, &v, &vl), 1);
    assert_ptr_equal(n, s);
    assert_ptr_equal(v, s + 3);
    assert_int_equal(nl, 2);
    assert_int_equal(vl, 2);
}

static void test_iter_respects_length(void **state)
{
    static const pair want[] = {{"a", "b"}, {"c", "d"}};

    /* Bytes past len are never part of the string, separators or not. */
    check_pairs("a\001b\002c\001dEXTRA", 7, want, 2);
    check_pairs("a\001b\002c\001d\002e\001f\002", 7, want, 2);
    check_pairs("a\001b\002c\001d\002", 6, want, 1);
}

/* ------------------------------------------------------------------ */
/* Get                                                                 */
/* ------------------------------------------------------------------ */

static void test_get_present_and_absent(void **state)
{
    static const char s[] = "WAIT\001true\002TAGS\001TagA\002KEYS\001k1 k2\002";
    const char *v = NULL;
    size_t vl = 0;

    assert_int_equal(proto_props_get(s, sizeof s - 1, PROTO_PROP_TAGS, &v, &vl), 1);
    assert_int_equal(vl, 4);
    assert_memory_equal(v, "TagA", 4);
    assert_int_equal(proto_props_get(s, sizeof s - 1, PROTO_PROP_KEYS, &v, &vl), 1);
    assert_int_equal(vl, 5);
    assert_memory_equal(v, "k1 k2", 5);
    assert_int_equal(proto_props_get(s, sizeof s - 1, PROTO_PROP_WAIT, &v, &vl), 1);
    assert_ptr_equal(v, s + 5);

    assert_int_equal(proto_props_get(s, sizeof s - 1, PROTO_PROP_UNIQ_KEY, &v, &vl), 0);
    assert_int_equal(proto_props_get(s, sizeof s - 1, PROTO_PROP_DELAY, &v, &vl), 0);
    assert_int_equal(proto_props_get("", 0, PROTO_PROP_TAGS, &v, &vl), 0);
    assert_int_equal(proto_props_get(NULL, 0, PROTO_PROP_TAGS, &v, &vl), 0);
}

static void test_get_exact_name_only(void **state)
{
    static const char s[] = "KEYS\001k\002TAGSX\001t\002XTAGS\001t\002v\001TAGS\002";
    const char *v;
    size_t vl;

    /* Prefixes, extensions and values equal to the name do not match. */
    assert_int_equal(proto_props_get(s, sizeof s - 1, "KEY", &v, &vl), 0);
    assert_int_equal(proto_props_get(s, sizeof s - 1, "KEYSS", &v, &vl), 0);
    assert_int_equal(proto_props_get(s, sizeof s - 1, "TAGS", &v, &vl), 0);
    assert_int_equal(proto_props_get(s, sizeof s - 1, "keys", &v, &vl), 0);
    assert_int_equal(proto_props_get(s, sizeof s - 1, "KEYS", &v, &vl), 1);
}

static void test_get_duplicate_keeps_last(void **state)
{
    static const char s[] = "DELAY\0013\002TAGS\001x\002DELAY\0015\002";
    const char *v;
    size_t vl;

    assert_int_equal(proto_props_get(s, sizeof s - 1, PROTO_PROP_DELAY, &v, &vl), 1);
    assert_int_equal(vl, 1);
    assert_int_equal(v[0], '5');
}

static void test_get_skips_ignored_segments(void **state)
{
    static const char s[] = "TAGS\001\002KEYS\001k\002";
    const char *v;
    size_t vl;

    /* "TAGS\001" has an empty value, so Java never sees TAGS. */
    assert_int_equal(proto_props_get(s, sizeof s - 1, PROTO_PROP_TAGS, &v, &vl), 0);
    /* And an ignored later duplicate does not hide the earlier good one. */
    assert_int_equal(proto_props_get(LIT("TAGS\001a\002TAGS\001"), PROTO_PROP_TAGS, &v, &vl), 1);
    assert_int_equal(vl, 1);
    assert_int_equal(v[0], 'a');
}

/* ------------------------------------------------------------------ */
/* Append                                                              */
/* ------------------------------------------------------------------ */

static void test_append_builds_java_string(void **state)
{
    char buf[64];
    size_t used = 0;
    static const pair want[] = {{"WAIT", "true"}, {"TAGS", "TagA"}};

    assert_int_equal(proto_props_append(buf, sizeof buf, &used, "WAIT", 4, "true", 4), 0);
    assert_int_equal(used, 10);
    assert_int_equal(proto_props_append(buf, sizeof buf, &used, "TAGS", 4, "TagA", 4), 0);
    assert_int_equal(used, 20);
    assert_memory_equal(buf, "WAIT\001true\002TAGS\001TagA\002", 20);
    check_pairs(buf, used, want, 2);
}

static void test_append_after_existing(void **state)
{
    char buf[32];
    size_t used = 4;
    const char *v;
    size_t vl;

    memcpy(buf, "k\001v\002", 4);
    assert_int_equal(proto_props_append(buf, sizeof buf, &used, "MSG_REGION", 10, "R", 1), 0);
    assert_int_equal(used, 4 + 13);
    assert_int_equal(proto_props_get(buf, used, "MSG_REGION", &v, &vl), 1);
    assert_int_equal(proto_props_get(buf, used, "k", &v, &vl), 1);
}

static void test_append_exact_fit_and_overflow(void **state)
{
    char buf[8];
    size_t used = 2;

    memset(buf, 'Z', sizeof buf);
    /* 2 used + "ab\001cd\002" (6) = 8: fits exactly. */
    assert_int_equal(proto_props_append(buf, sizeof buf, &used, "ab", 2, "cd", 2), 0);
    assert_int_equal(used, 8);
    assert_memory_equal(buf + 2, "ab\001cd\002", 6);

    /* One byte short: refused, nothing written, used unchanged. */
    memset(buf, 'Z', sizeof buf);
    used = 3;
    assert_int_equal(proto_props_append(buf, sizeof buf, &used, "ab", 2, "cd", 2),
                     LSMQ_ETOOBIG);
    assert_int_equal(used, 3);
    for (size_t i = 0; i < sizeof buf; i++)
        assert_int_equal(buf[i], 'Z');

    /* Each of name, value and separators alone can be what does not fit. */
    used = 0;
    assert_int_equal(proto_props_append(buf, 3, &used, "abcd", 4, "x", 1), LSMQ_ETOOBIG);
    assert_int_equal(proto_props_append(buf, 3, &used, "a", 1, "wxyz", 4), LSMQ_ETOOBIG);
    assert_int_equal(proto_props_append(buf, 3, &used, "a", 1, "b", 1), LSMQ_ETOOBIG);
    assert_int_equal(proto_props_append(buf, 4, &used, "a", 1, "b", 1), 0);
    assert_int_equal(used, 4);

    /* A full buffer, and a used count already past cap. */
    assert_int_equal(proto_props_append(buf, 4, &used, "a", 1, "b", 1), LSMQ_ETOOBIG);
    used = 9;
    assert_int_equal(proto_props_append(buf, sizeof buf, &used, "a", 1, "b", 1),
                     LSMQ_ETOOBIG);
    assert_int_equal(used, 9);
}

static void test_append_rejects_bad_parts(void **state)
{
    char buf[64];
    size_t used = 0;

    assert_int_equal(proto_props_append(buf, sizeof buf, &used, "", 0, "v", 1), LSMQ_EINVAL);
    assert_int_equal(proto_props_append(buf, sizeof buf, &used, "k", 1, "", 0), LSMQ_EINVAL);
    assert_int_equal(proto_props_append(buf, sizeof buf, &used, NULL, 0, "v", 1), LSMQ_EINVAL);
    assert_int_equal(proto_props_append(buf, sizeof buf, &used, "k", 1, NULL, 0), LSMQ_EINVAL);
    assert_int_equal(proto_props_append(buf, sizeof buf, &used, "a\001b", 3, "v", 1),
                     LSMQ_EINVAL);
    assert_int_equal(proto_props_append(buf, sizeof buf, &used, "a\002b", 3, "v", 1),
                     LSMQ_EINVAL);
    assert_int_equal(proto_props_append(buf, sizeof buf, &used, "k", 1, "v\001w", 3),
                     LSMQ_EINVAL);
    assert_int_equal(proto_props_append(buf, sizeof buf, &used, "k", 1, "v\002", 2),
                     LSMQ_EINVAL);
    assert_int_equal(used, 0);
}

static void test_append_roundtrip_many(void **state)
{
    char buf[4096], name[16], value[32];
    size_t used = 0;
    proto_props_iter it;
    const char *n, *v;
    size_t nl, vl;
    int i;

    for (i = 0; i < 100; i++) {
        int nlen = snprintf(name, sizeof name, "P%d", i);
        int vlen = snprintf(value, sizeof value, "value-%d", i * 7);
        assert_int_equal(proto_props_append(buf, sizeof buf, &used, name, (size_t)nlen, value,
                                            (size_t)vlen),
                         0);
    }
    proto_props_iter_init(&it, buf, used);
    for (i = 0; proto_props_next(&it, &n, &nl, &v, &vl); i++) {
        int nlen = snprintf(name, sizeof name, "P%d", i);
        int vlen = snprintf(value, sizeof value, "value-%d", i * 7);
        assert_int_equal(nl, (size_t)nlen);
        assert_memory_equal(n, name, nl);
        assert_int_equal(vl, (size_t)vlen);
        assert_memory_equal(v, value, vl);
    }
    assert_int_equal(i, 100);
    assert_int_equal(proto_props_get(buf, used, "P42", &v, &vl), 1);
    assert_int_equal(vl, 9);
    assert_memory_equal(v, "value-294", 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iter_java_encoding),
        cmocka_unit_test(test_iter_missing_trailing_separator),
        cmocka_unit_test(test_iter_empty),
        cmocka_unit_test(test_iter_short_segments_ignored),
        cmocka_unit_test(test_iter_empty_name_or_value_ignored),
        cmocka_unit_test(test_iter_segment_without_separator_ignored),
        cmocka_unit_test(test_iter_value_keeps_later_separators),
        cmocka_unit_test(test_iter_is_a_view),
        cmocka_unit_test(test_iter_respects_length),
        cmocka_unit_test(test_get_present_and_absent),
        cmocka_unit_test(test_get_exact_name_only),
        cmocka_unit_test(test_get_duplicate_keeps_last),
        cmocka_unit_test(test_get_skips_ignored_segments),
        cmocka_unit_test(test_append_builds_java_string),
        cmocka_unit_test(test_append_after_existing),
        cmocka_unit_test(test_append_exact_fit_and_overflow),
        cmocka_unit_test(test_append_rejects_bad_parts),
        cmocka_unit_test(test_append_roundtrip_many),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
