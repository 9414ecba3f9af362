/*
 * test_broker_delay: the broker's reading of delays (server/broker_delay.c)
 * and the config keys behind it (server/broker_config.c).
 *
 *  - messageDelayLevel: the default's 18 levels, units s m h d, a custom
 *    table; bad strings (unknown unit, no number, double space, trailing
 *    space, empty, too many levels) are refused with a sentence naming
 *    the string and leave the table as it was;
 *  - DELAY: a level is clamped to the highest, 0 and negative mean none, a
 *    non-number is refused; DELAY wins over the timer properties and drops
 *    them;
 *  - timer properties: TIMER_DELAY_SEC before TIMER_DELAY_MS before
 *    TIMER_DELIVER_MS, __STARTDELIVERTIME last; a due time reached means no
 *    delay; past timerMaxDelaySec refused with upstream's remark;
 *    timerWheelEnable=false refuses; TIMER_OUT_MS means already timed;
 *  - the pairs a pending message carries, and which client pairs they
 *    replace;
 *  - group retry policies: EXPONENTIAL and CUSTOMIZED as upstream computes
 *    them, and no policy (the delay levels) when none is set.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "broker_hdr.h"
#include "broker_internal.h"
#include "clock.h"
#include "props.h"

static broker_config cfg;

static int setup(void **state)
{
    broker_config_init(&cfg);
    return 0;
}

static void set_ok(const char *key, const char *value)
{
    char why[512] = "";
    if (broker_config_set(&cfg, key, value, why, sizeof why) != 0)
        fail_msg("%s=%s refused: %s", key, value, why);
}

static void set_bad(const char *key, const char *value, const char *why_part)
{
    char why[512] = "";
    assert_int_equal(broker_config_set(&cfg, key, value, why, sizeof why), LSMQ_EINVAL);
    if (!strstr(why, why_part))
        fail_msg("%s=%s: \"%s\" does not say \"%s\"", key, value, why, why_part);
}

static void test_default_levels(void **state)
{
    assert_int_equal(cfg.delay_levels, 18);
    assert_int_equal(cfg.delay_level_ms[0], 1000);
    assert_int_equal(cfg.delay_level_ms[2], 10000);
    assert_int_equal(cfg.delay_level_ms[4], 60000);
    assert_int_equal(cfg.delay_level_ms[17], 7200000);
    assert_int_equal(cfg.timer_max_delay_sec, 259200);
    assert_true(cfg.timer_wheel_enable);
    assert_string_equal(cfg.message_delay_level, BROKER_DEFAULT_DELAY_LEVELS);
}

static void test_custom_and_bad_levels(void **state)
{
    set_ok("messageDelayLevel", "1s 2m 3h 1d 0s");
    assert_int_equal(cfg.delay_levels, 5);
    assert_int_equal(cfg.delay_level_ms[1], 120000);
    assert_int_equal(cfg.delay_level_ms[2], 3 * 3600000);
    assert_int_equal(cfg.delay_level_ms[3], 86400000);
    assert_int_equal(cfg.delay_level_ms[4], 0);
    set_bad("messageDelayLevel", "1s 5x", "level 2 ('5x')");
    set_bad("messageDelayLevel", "1s s", "level 2");
    set_bad("messageDelayLevel", "1s  5s", "level 2 ('')");
    set_bad("messageDelayLevel", "1s 5s ", "ends with a space");
    set_bad("messageDelayLevel", "", "empty");
    set_bad("messageDelayLevel", "1S", "not a number followed by s, m, h or d");
    set_bad("messageDelayLevel", "1ms", "level 1");
    char many[512] = "";
    for (int i = 0; i < BROKER_DELAY_LEVELS_MAX + 1; i++)
        strcat(many, i ? " 1s" : "1s");
    set_bad("messageDelayLevel", many, "more than 64 levels");
    /* A refused string leaves the table as it was. */
    assert_int_equal(cfg.delay_levels, 5);
    assert_string_equal(cfg.message_delay_level, "1s 2m 3h 1d 0s");
    set_ok("timerMaxDelaySec", "60");
    assert_int_equal(cfg.timer_max_delay_sec, 60);
}

/* Read a delay from a properties string written with | for 0x01 and ; for 0x02. */
static int delay_of(const char *text, broker_delay *d, char *remark)
{
    char props[512];
    size_t n = strlen(text);
    for (size_t i = 0; i <= n; i++)
        props[i] = text[i] == '|' ? '\001' : text[i] == ';' ? '\002' : text[i];
    return broker_delay_of_props(&cfg, props, n, d, remark);
}

static void test_delay_levels(void **state)
{
    broker_delay d;
    char remark[BROKER_REMARK_MAX] = "";
    assert_int_equal(delay_of("KEYS|k;TAGS|t;", &d, remark), 0);
    assert_false(d.delayed);
    assert_int_equal(d.now_ms, 0); /* no clock read for a plain message */
    int64_t before = proto_wall_ms();
    assert_int_equal(delay_of("DELAY|3;", &d, remark), 0);
    assert_true(d.delayed);
    assert_int_equal(d.level, 3);
    assert_true(d.deliver_ms - d.now_ms == 10000 && d.now_ms >= before);
    assert_int_equal(delay_of("DELAY|99;", &d, remark), 0);
    assert_int_equal(d.level, 18);
    assert_int_equal(d.deliver_ms - d.now_ms, 7200000);
    assert_int_equal(delay_of("DELAY|0;", &d, remark), 0);
    assert_false(d.delayed);
    assert_int_equal(delay_of("DELAY|-1;", &d, remark), 0);
    assert_false(d.delayed);
    assert_int_equal(delay_of("DELAY|x3;", &d, remark), RS_MESSAGE_ILLEGAL);
    assert_non_null(strstr(remark, "invalid DELAY property \"x3\""));
    /* DELAY wins over a timer, whose pairs the pending message drops. */
    assert_int_equal(delay_of("TIMER_DELAY_SEC|5;DELAY|1;", &d, remark), 0);
    assert_int_equal(d.level, 1);
    assert_int_equal(d.deliver_ms - d.now_ms, 1000);
    assert_true(broker_delay_replaces(&d, "TIMER_DELAY_SEC", 15));
    assert_true(broker_delay_replaces(&d, "REAL_TOPIC", 10));
    assert_true(broker_delay_replaces(&d, "DELAY", 5));
    assert_false(broker_delay_replaces(&d, "KEYS", 4));
}

static void test_timers(void **state)
{
    broker_delay d;
    char remark[BROKER_REMARK_MAX] = "";
    char text[256];
    assert_int_equal(delay_of("TIMER_DELAY_SEC|5;TIMER_DELAY_MS|100;", &d, remark), 0);
    assert_true(d.delayed);
    assert_int_equal(d.level, 0);
    assert_int_equal(d.deliver_ms - d.now_ms, 5000);
    assert_int_equal(delay_of("TIMER_DELAY_MS|1234;TIMER_DELIVER_MS|1;", &d, remark), 0);
    assert_int_equal(d.deliver_ms - d.now_ms, 1234); /* exact: no rounding to 1 s */
    int64_t at = proto_wall_ms() + 5000;
    snprintf(text, sizeof text, "TIMER_DELIVER_MS|%lld;__STARTDELIVERTIME|1;", (long long)at);
    assert_int_equal(delay_of(text, &d, remark), 0);
    assert_int_equal(d.deliver_ms, at);
    snprintf(text, sizeof text, "__STARTDELIVERTIME|%lld;", (long long)at);
    assert_int_equal(delay_of(text, &d, remark), 0);
    assert_int_equal(d.deliver_ms, at);
    assert_false(broker_delay_replaces(&d, "TIMER_DELAY_SEC", 15)); /* kept, as upstream */
    /* Reached already: delivered at once. */
    assert_int_equal(delay_of("TIMER_DELIVER_MS|1000;", &d, remark), 0);
    assert_false(d.delayed);
    assert_int_equal(delay_of("TIMER_DELAY_SEC|-5;", &d, remark), 0);
    assert_false(d.delayed);
    assert_int_equal(delay_of("TIMER_DELAY_SEC|-9000000000000000000;", &d, remark), 0);
    assert_false(d.delayed);
    /* Timed once already. */
    assert_int_equal(delay_of("TIMER_DELAY_SEC|5;TIMER_OUT_MS|1;", &d, remark), 0);
    assert_false(d.delayed);
    /* Too far ahead, and nonsense. */
    assert_int_equal(delay_of("TIMER_DELAY_SEC|259201;", &d, remark), RS_MESSAGE_ILLEGAL);
    assert_non_null(strstr(remark, "should not be bigger than the max delay 259200000ms"));
    assert_int_equal(delay_of("TIMER_DELAY_SEC|99999999999999999;", &d, remark),
                     RS_MESSAGE_ILLEGAL);
    assert_int_equal(delay_of("TIMER_DELAY_MS|259200000;", &d, remark), 0);
    assert_int_equal(delay_of("TIMER_DELIVER_MS|soon;", &d, remark), RS_MESSAGE_ILLEGAL);
    assert_non_null(strstr(remark, "TIMER_DELIVER_MS=soon is not a number"));
    cfg.timer_wheel_enable = false;
    assert_int_equal(delay_of("TIMER_DELAY_SEC|5;", &d, remark), RS_SYSTEM_ERROR);
    assert_non_null(strstr(remark, "timerWheelEnable is false"));
    snprintf(text, sizeof text, "__STARTDELIVERTIME|%lld;", (long long)at);
    assert_int_equal(delay_of(text, &d, remark), 0);
    assert_false(d.delayed); /* lsmq's reading of it is a timer's */
}

static void test_pending_props(void **state)
{
    char out[256];
    size_t at = 0;
    broker_delay lvl = {.delayed = true, .level = 4, .deliver_ms = 5, .now_ms = 1};
    broker_delay_add_props(&lvl, "T1", 3, 1, out, sizeof out, &at);
    const char *v;
    size_t vl;
    assert_true(proto_props_get(out, at, "DELAY", &v, &vl) && vl == 1 && v[0] == '4');
    assert_true(proto_props_get(out, at, "REAL_TOPIC", &v, &vl) && vl == 2);
    assert_true(proto_props_get(out, at, "REAL_QID", &v, &vl) && vl == 1 && v[0] == '3');
    assert_false(broker_delay_is_timer_record(out, at));
    at = 0;
    broker_delay tm = {.delayed = true, .deliver_ms = 1700000000123, .now_ms = 1700000000000};
    broker_delay_add_props(&tm, "T2", 0, tm.now_ms, out, sizeof out, &at);
    assert_true(proto_props_get(out, at, "TIMER_OUT_MS", &v, &vl));
    assert_memory_equal(v, "1700000000123", vl);
    assert_true(proto_props_get(out, at, "TIMER_ENQUEUE_MS", &v, &vl));
    assert_false(proto_props_get(out, at, "DELAY", &v, &vl));
    assert_true(broker_delay_is_timer_record(out, at));
}

static void policy_of(const char *json, broker_retry_policy *p)
{
    json_t *o = json_loads(json, 0, NULL);
    assert_non_null(o);
    broker_retry_policy_from_json(o, p);
    json_decref(o);
}

static void test_retry_policies(void **state)
{
    broker_retry_policy p;
    policy_of("{\"groupName\":\"g\"}", &p);
    assert_int_equal(broker_retry_policy_delay_ms(&p, 0), -1);
    policy_of("{\"groupRetryPolicy\":{\"type\":\"CUSTOMIZED\"}}", &p);
    assert_int_equal(broker_retry_policy_delay_ms(&p, 0), -1);
    policy_of("{\"groupRetryPolicy\":{\"type\":\"EXPONENTIAL\",\"exponentialRetryPolicy\":"
              "{\"initial\":1000,\"max\":60000,\"multiplier\":3}}}", &p);
    assert_int_equal(broker_retry_policy_delay_ms(&p, 0), 1000);
    assert_int_equal(broker_retry_policy_delay_ms(&p, 2), 9000);
    assert_int_equal(broker_retry_policy_delay_ms(&p, 10), 60000);
    assert_int_equal(broker_retry_policy_delay_ms(&p, 1000), 60000);
    policy_of("{\"groupRetryPolicy\":{\"type\":\"EXPONENTIAL\"}}", &p);
    assert_int_equal(broker_retry_policy_delay_ms(&p, 1), 10000); /* upstream's defaults */
    policy_of("{\"groupRetryPolicy\":{\"type\":\"CUSTOMIZED\",\"customizedRetryPolicy\":"
              "{\"next\":[1000,2000,3000,4000]}}}", &p);
    assert_int_equal(broker_retry_policy_delay_ms(&p, 0), 3000); /* index reconsume + 2 */
    assert_int_equal(broker_retry_policy_delay_ms(&p, 1), 4000);
    assert_int_equal(broker_retry_policy_delay_ms(&p, 7), 4000);
    assert_int_equal(broker_retry_policy_delay_ms(&p, -1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_default_levels, setup),
        cmocka_unit_test_setup(test_custom_and_bad_levels, setup),
        cmocka_unit_test_setup(test_delay_levels, setup),
        cmocka_unit_test_setup(test_timers, setup),
        cmocka_unit_test_setup(test_pending_props, setup),
        cmocka_unit_test_setup(test_retry_policies, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
