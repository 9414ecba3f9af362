/*
 * Unit tests for protocol/errors.h: the LSMQ_E* codes stay in their reserved
 * range, and lsmq_strerror describes each of them and plain -errno values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <string.h>

#include <cmocka.h>

#include "errors.h"

static const int all_codes[] = {
    LSMQ_EINVAL, LSMQ_ETOOBIG, LSMQ_ECORRUPT, LSMQ_ENOTFOUND, LSMQ_EEXISTS, LSMQ_EBUSY,
    LSMQ_ENOSPC, LSMQ_EIO,     LSMQ_ECLOSED,  LSMQ_ENOMEM,   LSMQ_ELOCKED, LSMQ_EVERSION,
    LSMQ_EREADONLY, LSMQ_ENOTLEADER, LSMQ_ETIMEDOUT, LSMQ_ESTALE, LSMQ_EREFUSED,
};
#define NCODES (sizeof all_codes / sizeof all_codes[0])

static void test_success(void **state)
{
    assert_int_equal(LSMQ_OK, 0);
    assert_string_equal(lsmq_strerror(LSMQ_OK), "success");
}

static void test_codes_reserved_range(void **state)
{
    /* Below any -errno value (the strerror branch stops at -4095), and distinct. */
    for (size_t i = 0; i < NCODES; i++) {
        assert_true(all_codes[i] < -4096);
        for (size_t j = i + 1; j < NCODES; j++)
            assert_int_not_equal(all_codes[i], all_codes[j]);
    }
    assert_int_equal(LSMQ_EINVAL, -30000);
}

static void test_every_code_described(void **state)
{
    for (size_t i = 0; i < NCODES; i++) {
        const char *s = lsmq_strerror(all_codes[i]);

        assert_non_null(s);
        assert_true(strlen(s) > 0);
        assert_string_not_equal(s, "unknown error");
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(s, lsmq_strerror(all_codes[j]));
    }
    assert_string_equal(lsmq_strerror(LSMQ_ECORRUPT), "corrupt record");
    assert_string_equal(lsmq_strerror(LSMQ_ENOSPC), "disk full");
}

static void test_errno_values(void **state)
{
    assert_string_equal(lsmq_strerror(-ENOENT), strerror(ENOENT));
    assert_string_equal(lsmq_strerror(-EIO), strerror(EIO));
    assert_string_equal(lsmq_strerror(-ENOSPC), strerror(ENOSPC));
}

static void test_unknown_values(void **state)
{
    assert_string_equal(lsmq_strerror(1), "unknown error");
    assert_string_equal(lsmq_strerror(30000), "unknown error");
    assert_string_equal(lsmq_strerror(-4096), "unknown error");
    /* Just past the last code: add a new code to all_codes and make it LSMQ_ELAST. */
    assert_int_equal(LSMQ_ELAST, all_codes[NCODES - 1]);
    assert_string_equal(lsmq_strerror(LSMQ_ELAST + 1), "unknown error");
    assert_string_equal(lsmq_strerror(LSMQ_EINVAL - 1), "unknown error");
    assert_string_equal(lsmq_strerror(-2147483647 - 1), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success),
        cmocka_unit_test(test_codes_reserved_range),
        cmocka_unit_test(test_every_code_described),
        cmocka_unit_test(test_errno_values),
        cmocka_unit_test(test_unknown_values),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
