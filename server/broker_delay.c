/*
 * Delivery in time, the broker's side: what a message's properties ask for
 * (a DELAY level, the 5.x timer properties, ali-ons' __STARTDELIVERTIME),
 * the properties a pending message carries, and the 5.x group retry
 * policies. Pure functions over the config; the engine keeps the pending
 * messages (engine_append_timed) and moves them when due.
 *
 * Upstream's rules (HookUtils.handleScheduleMessage): a DELAY level above 0
 * wins and the timer properties are dropped; a level over the highest is
 * clamped to it. Else the timer properties, first TIMER_DELAY_SEC, then
 * TIMER_DELAY_MS, then TIMER_DELIVER_MS (absolute); a message that already
 * carries TIMER_OUT_MS was timed once and is not again; a due time not in
 * the future means no delay; more than timerMaxDelaySec ahead is refused.
 * __STARTDELIVERTIME (absolute ms) is lsmq's own reading of what ali-ons
 * sends (not with timerWheelEnable=false); upstream's broker stores it and
 * delivers at once. Upstream rounds timer due times down to
 * timerPrecisionMs (1 s); lsmq keeps the exact ms.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_hdr.h"
#include "broker_internal.h"
#include "clock.h"
#include "props.h"

/* Upstream's remark for a timer message too far ahead (SendMessageProcessor). */
#define TIMER_ILLEGAL_FMT                                                                     \
    "timer message illegal, the delay time should not be bigger than the max delay %lldms; " \
    "or if set del msg, the delay time should be bigger than the current time"

/* The delay-related pairs of one message: views into its properties. */
typedef struct delay_pairs {
    const char *v[6];
    size_t len[6];
} delay_pairs;

enum { P_DELAY, P_DELAY_SEC, P_DELAY_MS, P_DELIVER_MS, P_OUT_MS, P_START };

static const char *const pair_names[] = {
    PROTO_PROP_DELAY, PROTO_PROP_TIMER_DELAY_SEC, PROTO_PROP_TIMER_DELAY_MS,
    PROTO_PROP_TIMER_DELIVER_MS, PROTO_PROP_TIMER_OUT_MS, PROTO_PROP_START_DELIVER_TIME,
};

static bool name_is(const char *name, size_t nlen, const char *want)
{
    return strlen(want) == nlen && memcmp(name, want, nlen) == 0;
}

/* One pass over the properties; the last value of a repeated name wins, as in Java's map. */
static bool find_pairs(const char *props, size_t len, delay_pairs *p)
{
    memset(p, 0, sizeof *p);
    bool any = false;
    proto_props_iter it;
    const char *n, *v;
    size_t nl, vl;
    proto_props_iter_init(&it, props, len);
    while (proto_props_next(&it, &n, &nl, &v, &vl)) {
        if (n[0] != 'D' && n[0] != 'T' && n[0] != '_')
            continue; /* the plain send's cost: one byte per pair */
        for (int i = 0; i < 6; i++) {
            if (name_is(n, nl, pair_names[i])) {
                p->v[i] = v;
                p->len[i] = vl;
                any = true;
            }
        }
    }
    return any;
}

/* A decimal integer filling the whole value (Java's Long.parseLong). */
static bool parse_long(const char *v, size_t len, int64_t *out)
{
    char buf[24];
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, v, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    long long x = strtoll(buf, &end, 10);
    if (errno || *end)
        return false;
    *out = x;
    return true;
}

int32_t broker_delay_level_clamp(const broker_config *cfg, int32_t level)
{
    return level > (int32_t)cfg->delay_levels ? (int32_t)cfg->delay_levels : level;
}

int64_t broker_delay_level_ms(const broker_config *cfg, int32_t level)
{
    level = broker_delay_level_clamp(cfg, level);
    return level >= 1 ? cfg->delay_level_ms[level - 1] : 0;
}

/* The timer properties' due time: 0 and *deliver_ms, or a code with the remark. */
static int timer_due(const broker_config *cfg, const delay_pairs *p, int64_t now_ms,
                     int64_t *deliver_ms, char *remark)
{
    int64_t x = 0;
    int which = p->v[P_DELAY_SEC]    ? P_DELAY_SEC
                : p->v[P_DELAY_MS]   ? P_DELAY_MS
                : p->v[P_DELIVER_MS] ? P_DELIVER_MS
                                     : P_START;
    int64_t max_ms = (int64_t)cfg->timer_max_delay_sec * 1000;
    if (!parse_long(p->v[which], p->len[which], &x)) {
        snprintf(remark, BROKER_REMARK_MAX, "timer message illegal, %s=%.*s is not a number",
                 pair_names[which], (int)(p->len[which] < 32 ? p->len[which] : 32),
                 p->v[which]);
        return RS_MESSAGE_ILLEGAL;
    }
    /* Relative delays past the limit are refused, and negative ones are none, before
     * they can overflow. */
    bool relative = which == P_DELAY_SEC || which == P_DELAY_MS;
    if (relative && x < 0)
        x = 0;
    if ((which == P_DELAY_SEC && x > max_ms / 1000 + 1) || (which == P_DELAY_MS && x > max_ms + 1))
        x = max_ms + 1, which = P_DELAY_MS;
    if (which == P_DELAY_SEC)
        *deliver_ms = now_ms + x * 1000;
    else if (which == P_DELAY_MS)
        *deliver_ms = now_ms + x;
    else
        *deliver_ms = x;
    if (*deliver_ms > now_ms && *deliver_ms - now_ms > max_ms) {
        snprintf(remark, BROKER_REMARK_MAX, TIMER_ILLEGAL_FMT, (long long)max_ms);
        return RS_MESSAGE_ILLEGAL;
    }
    return 0;
}

int broker_delay_of_props(const broker_config *cfg, const char *props, size_t len,
                          broker_delay *d, char *remark)
{
    memset(d, 0, sizeof *d);
    delay_pairs p;
    if (!find_pairs(props, len, &p))
        return 0;
    int64_t now_ms = d->now_ms = proto_wall_ms();
    if (p.v[P_DELAY]) {
        int64_t level;
        if (!parse_long(p.v[P_DELAY], p.len[P_DELAY], &level) || level > INT32_MAX ||
            level < INT32_MIN) {
            snprintf(remark, BROKER_REMARK_MAX, "invalid DELAY property \"%.*s\"",
                     (int)(p.len[P_DELAY] < 32 ? p.len[P_DELAY] : 32), p.v[P_DELAY]);
            return RS_MESSAGE_ILLEGAL;
        }
        if (level > 0) {
            d->level = broker_delay_level_clamp(cfg, (int32_t)level);
            d->deliver_ms = now_ms + broker_delay_level_ms(cfg, d->level);
            d->delayed = true;
            return 0;
        }
    }
    bool timer = p.v[P_DELAY_SEC] || p.v[P_DELAY_MS] || p.v[P_DELIVER_MS];
    if (p.v[P_OUT_MS] || !(timer || p.v[P_START]))
        return 0;
    if (!cfg->timer_wheel_enable && timer) {
        snprintf(remark, BROKER_REMARK_MAX,
                 "accurate timer message is not enabled, timerWheelEnable is false");
        return RS_SYSTEM_ERROR;
    }
    if (!cfg->timer_wheel_enable)
        return 0; /* __STARTDELIVERTIME alone: delivered at once, as upstream does */
    int64_t due;
    int code = timer_due(cfg, &p, now_ms, &due, remark);
    if (code != 0 || due <= now_ms)
        return code; /* a due time already reached: delivered at once, as upstream */
    d->deliver_ms = due;
    d->delayed = true;
    return 0;
}

bool broker_delay_replaces(const broker_delay *d, const char *name, size_t nlen)
{
    if (!d->delayed || (name[0] != 'D' && name[0] != 'T' && name[0] != 'R'))
        return false;
    if (name_is(name, nlen, PROTO_PROP_REAL_TOPIC) || name_is(name, nlen, PROTO_PROP_REAL_QID) ||
        name_is(name, nlen, PROTO_PROP_TIMER_OUT_MS) || name_is(name, nlen, PROTO_PROP_TIMER_ENQUEUE_MS) ||
        name_is(name, nlen, PROTO_PROP_DELAY))
        return true;
    /* A DELAY level wins: the timer properties it overrides are dropped (upstream). */
    return d->level > 0 && (name_is(name, nlen, PROTO_PROP_TIMER_DELAY_SEC) ||
                            name_is(name, nlen, PROTO_PROP_TIMER_DELAY_MS) ||
                            name_is(name, nlen, PROTO_PROP_TIMER_DELIVER_MS));
}

static void put(char *out, size_t cap, size_t *at, const char *name, const char *value)
{
    proto_props_append(out, cap, at, name, strlen(name), value, strlen(value));
}

void broker_delay_add_props(const broker_delay *d, const char *topic, uint32_t queue_id,
                            int64_t now_ms, char *out, size_t cap, size_t *at)
{
    char num[24];
    if (d->level > 0) {
        snprintf(num, sizeof num, "%d", d->level);
        put(out, cap, at, PROTO_PROP_DELAY, num);
    } else {
        snprintf(num, sizeof num, "%lld", (long long)d->deliver_ms);
        put(out, cap, at, PROTO_PROP_TIMER_OUT_MS, num);
        snprintf(num, sizeof num, "%lld", (long long)now_ms);
        put(out, cap, at, PROTO_PROP_TIMER_ENQUEUE_MS, num);
    }
    put(out, cap, at, PROTO_PROP_REAL_TOPIC, topic);
    snprintf(num, sizeof num, "%u", queue_id);
    put(out, cap, at, PROTO_PROP_REAL_QID, num);
}

bool broker_delay_is_timer_record(const char *props, size_t len)
{
    const char *v;
    size_t vl;
    return proto_props_get(props, len, PROTO_PROP_TIMER_OUT_MS, &v, &vl) == 1;
}

/* ==== 5.x group retry policies ============================================ */

int64_t broker_retry_policy_delay_ms(const broker_retry_policy *p, int32_t reconsume_times)
{
    if (p->kind == BROKER_RETRY_EXPONENTIAL) {
        int32_t r = reconsume_times < 0 ? 0 : reconsume_times > 32 ? 32 : reconsume_times;
        int64_t ms = p->initial_ms;
        for (int32_t i = 0; i < r && ms < p->max_ms; i++) {
            if (p->multiplier > 1 && ms > INT64_MAX / p->multiplier)
                return p->max_ms;
            ms *= p->multiplier;
        }
        return ms < p->max_ms ? ms : p->max_ms;
    }
    if (p->kind == BROKER_RETRY_CUSTOMIZED && p->n_next > 0) {
        if (reconsume_times < 0)
            return 0;
        uint32_t i = (uint32_t)reconsume_times + 2;
        return p->next_ms[i < p->n_next ? i : p->n_next - 1];
    }
    return -1;
}

static int64_t get_i64(json_t *o, const char *key, int64_t dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

void broker_retry_policy_from_json(json_t *group, broker_retry_policy *out)
{
    memset(out, 0, sizeof *out);
    json_t *gp = json_object_get(group, "groupRetryPolicy");
    const char *type = json_string_value(json_object_get(gp, "type"));
    if (!json_is_object(gp) || !type)
        return;
    if (strcmp(type, "EXPONENTIAL") == 0) {
        json_t *e = json_object_get(gp, "exponentialRetryPolicy");
        out->kind = BROKER_RETRY_EXPONENTIAL;
        out->initial_ms = get_i64(e, "initial", 5000);
        out->max_ms = get_i64(e, "max", 7200000);
        out->multiplier = get_i64(e, "multiplier", 2);
        if (out->initial_ms < 0 || out->max_ms < 0 || out->multiplier < 1)
            out->kind = BROKER_RETRY_LEVELS; /* nonsense: the delay levels */
        return;
    }
    json_t *next = json_object_get(json_object_get(gp, "customizedRetryPolicy"), "next");
    if (strcmp(type, "CUSTOMIZED") != 0 || !json_is_array(next) || json_array_size(next) == 0)
        return; /* upstream's default customized policy is the default delay levels */
    out->kind = BROKER_RETRY_CUSTOMIZED;
    size_t i;
    json_t *v;
    json_array_foreach(next, i, v) {
        if (out->n_next == BROKER_DELAY_LEVELS_MAX)
            break;
        int64_t ms = json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
        if (ms < 0) {
            out->kind = BROKER_RETRY_LEVELS;
            return;
        }
        out->next_ms[out->n_next++] = ms;
    }
}
